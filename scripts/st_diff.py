#!/usr/bin/env python3
"""st_diff.py - the largest difference between the F32 tensors of two safetensors files.

Standard library only (json, struct, array). Both files must hold the same tensor names
and shapes; tensors whose name starts with a given prefix can be left out (e.g. the
Adam moments, "optim."). Prints one line per tensor with its max |a - b|, then the
overall maximum, and exits 1 when that exceeds --tol (or on a name/shape mismatch).

usage: st_diff.py A B [--tol T] [--skip PREFIX]
"""
import array
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    base, out = 8 + n, {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {t['dtype']}, not F32")
        b, e = t["data_offsets"]
        vals = array.array("f")
        vals.frombytes(blob[base + b:base + e])
        if sys.byteorder != "little":
            vals.byteswap()
        out[name] = (t["shape"], vals)
    return out


def main(argv):
    args, tol, skip = [], None, None
    i = 1
    while i < len(argv):
        if argv[i] == "--tol":
            tol, i = float(argv[i + 1]), i + 2
        elif argv[i] == "--skip":
            skip, i = argv[i + 1], i + 2
        else:
            args, i = args + [argv[i]], i + 1
    if len(args) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    a, b = load(args[0]), load(args[1])
    if sorted(a) != sorted(b):
        print(f"tensor names differ: {sorted(set(a) ^ set(b))}")
        return 1
    worst = 0.0
    for name in sorted(a):
        if skip and name.startswith(skip):
            continue
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            print(f"{name}: shape {sa} vs {sb}")
            return 1
        d = max((abs(x - y) for x, y in zip(va, vb)), default=0.0)
        worst = max(worst, d)
        print(f"{name}\t{d:.3g}")
    print(f"max |a - b| = {worst:.3g}")
    return 1 if tol is not None and not worst <= tol else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
