#!/usr/bin/env python3
"""st_check.py - list the tensors and metadata of a safetensors file.

Standard library only (json, struct). Prints one line per tensor (name, dtype,
shape, byte range) in file order, then the metadata, and checks the framing
as the C reader does: header length, duplicate keys, offsets that tile the
data buffer from 0 with no holes, overlaps or trailing bytes. Exits 1 with a
message on a bad file.

usage: st_check.py FILE [--values N]   (--values: first N values of F32 tensors)
"""
import json
import struct
import sys

BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
        "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
        "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
        "I64": 64, "U64": 64}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise ValueError(f"duplicate key {k!r} in the JSON header")
    return dict(pairs)


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--values"):
        sys.exit(__doc__.strip().splitlines()[-1])
    path, nvals = argv[1], int(argv[3]) if len(argv) == 4 else 0
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{len(blob)} bytes: too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"header length {n} exceeds the file size {len(blob)}")
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    pos = 0
    for name, t in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = t["data_offsets"]
        numel = 1
        for d in t["shape"]:
            numel *= d
        if begin != pos or end - begin != numel * BITS[t["dtype"]] // 8:
            raise ValueError(f"tensor {name!r}: bad data_offsets [{begin},{end}]")
        pos = end
        line = f"{name}\t{t['dtype']}\t{t['shape']}\t[{begin},{end})"
        if nvals and t["dtype"] == "F32":
            k = min(nvals, numel)
            line += "\t" + " ".join(f"{v:.9g}" for v in struct.unpack(f"<{k}f", data[begin:begin + 4 * k]))
        print(line)
    if pos != len(data):
        raise ValueError(f"tensors end at {pos} but the data buffer has {len(data)} bytes")
    for k, v in meta.items():
        print(f"meta\t{k}\t{v!r}")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        sys.exit(f"{sys.argv[1]}: {e}")
