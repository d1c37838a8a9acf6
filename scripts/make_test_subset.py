#!/usr/bin/env python3
"""make_test_subset.py - cut the small Fashion-MNIST subset the tests ship with.

Reads the full IDX files (default /usr/share/datasets/fashion-mnist, Debian's
dataset-fashion-mnist package) and writes the first 2000 training and the
first 500 test images and labels to tests/data/fmnist-small/ as gzip with
mtime 0 and no file name, so the output is byte-stable. Standard library only.

Usage: scripts/make_test_subset.py [SRC_DIR [OUT_DIR]]
"""
import gzip
import os
import struct
import sys

COUNTS = {"train": 2000, "t10k": 500}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, typ, ndim = struct.unpack_from(">HBB", raw, 0)
    if zero != 0 or typ != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    dims = list(struct.unpack_from(f">{ndim}I", raw, 4))
    body = raw[4 + 4 * ndim:]
    size = 1
    for d in dims:
        size *= d
    if len(body) != size:
        sys.exit(f"{path}: expected {size} data bytes, found {len(body)}")
    return dims, body


def write_idx_gz(path, dims, body):
    header = struct.pack(f">HBB{len(dims)}I", 0, 0x08, len(dims), *dims)
    data = gzip.compress(header + body, compresslevel=9, mtime=0)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    default_out = os.path.join(os.path.dirname(here), "tests", "data", "fmnist-small")
    out = sys.argv[2] if len(sys.argv) > 2 else default_out
    os.makedirs(out, exist_ok=True)
    for prefix, n in COUNTS.items():
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            dims, body = read_idx(os.path.join(src, name))
            if dims[0] < n:
                sys.exit(f"{name}: only {dims[0]} items, {n} wanted")
            per_item = len(body) // dims[0]
            write_idx_gz(os.path.join(out, name), [n] + dims[1:], body[:n * per_item])
            print(f"{os.path.join(out, name)}: {n} items")


if __name__ == "__main__":
    main()
