#!/usr/bin/env bash
# make_corpus.sh - regenerates the fuzzers' seed corpora in tests/fuzz/corpus/ (printf, gzip -n, the built vae).
# usage: bash tests/fuzz/make_corpus.sh [path/to/vae]   (default: build/vae)
# The same vae binary gives the same bytes; the checkpoints change only when
# training or the checkpoint format does.
set -euo pipefail
export LC_ALL=C # ${#json} must count bytes
cd "$(dirname "$0")/../.."
VAE=$(realpath "${1:-build/vae}")
[ -x "$VAE" ] || { echo "make_corpus.sh: $VAE not found; build first" >&2; exit 2; }
OUT=$PWD/tests/fuzz/corpus
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"/{idx,safetensors,checkpoint,roundtrip,csv,png,json}

# shellcheck disable=SC2059 # the format is the escape being built
byte() { printf "\\x$(printf %02x $(($1 & 255)))"; }
u32be() { byte $(($1 >> 24)); byte $(($1 >> 16)); byte $(($1 >> 8)); byte "$1"; }
u64le() { local i; for ((i = 0; i < 64; i += 8)); do byte $(($1 >> i)); done; }
# n pixel bytes of a fixed pattern
pixels() { local i; for ((i = 0; i < $1; i++)); do byte $((i * 37 + 11)); done; }
gz() { gzip -n -9 -c; }

# ---------------------------------------------------------------- IDX
I=$OUT/idx
img() { printf '\x00\x00\x08\x03'; u32be "$1"; u32be "$2"; u32be "$3"; pixels $(($1 * $2 * $3)); }
lab() { printf '\x00\x00\x08\x01'; u32be "$1"; pixels "$1"; }
img 2 3 3 >"$I/images-2x3x3"
gz <"$I/images-2x3x3" >"$I/images-2x3x3.gz"
lab 2 >"$I/labels-2"
gz <"$I/labels-2" >"$I/labels-2.gz"
img 1 1 1 >"$I/images-1x1x1"
{ printf '\x00\x00\x08\x02'; u32be 2; u32be 2; pixels 4; } >"$I/rank2-2x2"
# hostile: each is one case of reliability.md section 7
head -c -1 "$I/images-2x3x3" >"$I/bad-truncated"
{ cat "$I/images-2x3x3"; printf '\x00'; } >"$I/bad-trailing-byte"
head -c 10 "$I/images-2x3x3" >"$I/bad-cut-in-dims"
{ printf '\x00\x00\x08\x03'; u32be 2; u32be 0; u32be 3; } >"$I/bad-zero-dim"
{ printf '\x00\x00\x08\x03'; u32be 4294967295; u32be 4294967295; u32be 4294967295; } >"$I/bad-huge-dims"
{ printf '\x00\x00\x0d\x03'; u32be 1; u32be 1; u32be 1; printf '\x3f\x80\x00\x00'; } >"$I/bad-float32-type"
{ printf '\x00\x00\x0a\x01'; u32be 1; printf '\x00'; } >"$I/bad-type-0a"
printf '<html><body>404 Not Found</body></html>\n' | gz >"$I/bad-html.gz"
gz <"$I/images-2x3x3.gz" >"$I/bad-double-gzip.gz"
gzsize=$(stat -c %s "$I/images-2x3x3.gz")
head -c $((gzsize - 5)) "$I/images-2x3x3.gz" >"$I/bad-gzip-truncated.gz"
# the CRC-32 in the gzip trailer off by one bit
cp "$I/images-2x3x3.gz" "$I/bad-gzip-crc.gz"
crc0=$(od -An -tu1 -j $((gzsize - 8)) -N1 "$I/images-2x3x3.gz")
byte $((crc0 ^ 1)) | dd of="$I/bad-gzip-crc.gz" bs=1 seek=$((gzsize - 8)) conv=notrunc status=none
# a header that promises 2^32 bytes in a stream that has none of them
{ printf '\x00\x00\x08\x03'; u32be 65536; u32be 256; u32be 256; } | gz >"$I/bad-gzip-lying-header.gz"
# two gzip members (valid), and garbage after the only member
{ head -c 8 "$I/images-2x3x3" | gz; tail -c +9 "$I/images-2x3x3" | gz; } >"$I/two-members.gz"
{ cat "$I/images-2x3x3.gz"; printf 'garbage'; } >"$I/gzip-then-garbage.gz" # zlib skips it: accepted

# ---------------------------------------------------------------- safetensors
S=$OUT/safetensors
# st JSON [DATA-FILE]: the header padded with spaces to 8 bytes, as the writer does
st() {
    local json=$1
    while (((${#json} + 0) % 8)); do json+=' '; done
    u64le ${#json}
    printf '%s' "$json"
    if [ $# -gt 1 ]; then cat "$2"; fi
}
pixels 64 >"$TMP/d64"
head -c 4 "$TMP/d64" >"$TMP/d4"
head -c 8 "$TMP/d64" >"$TMP/d8"
st '{}' >"$S/empty"
st '{"__metadata__":{"format":"vae-checkpoint","k":"v\u00e9\n\ud83d\ude00"}}' >"$S/metadata-only"
st '{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2,0],"data_offsets":[4,4]}}' \
    "$TMP/d4" >"$S/scalar-and-empty"
st '{"w\"\\\u00e9":{"dtype":"F32","shape":[2,1,1,1,1,1,1,1],"data_offsets":[0,8]}}' "$TMP/d8" >"$S/escaped-name-rank8"
st '{"h":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}' "$TMP/d4" >"$S/unsupported-bf16"
st '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' \
    "$TMP/d4" >"$S/bad-overlap"
{ u64le 8; printf '{}\0\0\0\0\0\0'; } >"$S/bad-nul-padding"
st '{"a":{"dtype":"F32","shape":[1000,1000],"data_offsets":[0,4]}}' "$TMP/d4" >"$S/bad-shape-vs-bytes"
{ u64le -1; printf '{}'; } >"$S/bad-header-length"

# ---------------------------------------------------------------- checkpoints
# Tiny models trained on 3x3 images: ~1-2 KB, so mutations reach the header.
mkdir -p "$TMP/d3"
img 4 3 3 >"$TMP/d3/train-images-idx3-ubyte"
img 2 3 3 >"$TMP/d3/t10k-images-idx3-ubyte"
train() { # train NAME ARGS...: relative --data so the bytes do not depend on $TMP
    local name=$1
    shift
    (cd "$TMP" && "$VAE" train --data d3 --epochs 1 --batch 2 --threads 1 --samples 4 --quiet \
        --out "o-$name" "$@" >"$TMP/log" 2>&1) || { cat "$TMP/log" >&2; exit 1; }
    cp "$TMP/o-$name/model.safetensors" "$OUT/checkpoint/$name"
}
train tiny-h4-z2 --hidden 4 --latent 2
# the resumable checkpoint (Adam moments, RNG state), where this vae writes one
if [ -f "$TMP/o-tiny-h4-z2/checkpoint.safetensors" ]; then
    cp "$TMP/o-tiny-h4-z2/checkpoint.safetensors" "$OUT/checkpoint/tiny-h4-z2-resume"
fi
train tiny-h4,3-z1 --hidden 4,3 --latent 1
train tiny-nohidden-z2 --hidden none --latent 2
# and one at Fashion-MNIST size (22 KB): no hidden layer, 2 latents
ln -s "$PWD/tests/data/fmnist-small" "$TMP/fmnist"
(cd "$TMP" && "$VAE" train --data fmnist --epochs 1 --batch 500 --threads 1 --hidden none --latent 2 \
    --samples 4 --quiet --out o-fmnist >"$TMP/log" 2>&1) || { cat "$TMP/log" >&2; exit 1; }
cp "$TMP/o-fmnist/model.safetensors" "$OUT/checkpoint/fmnist-nohidden-z2"
cp "$OUT/checkpoint/tiny-h4-z2" "$OUT/checkpoint/tiny-h4,3-z1" "$S/"
cp "$S/metadata-only" "$S/empty" "$OUT/checkpoint/"
# regressions (see crashes/README.md): a config of 2e9 parameters with no
# tensors; an invalid channel count
C='"format":"vae-checkpoint","format_version":"1","vae.height":"4096","vae.width":"4096","vae.hidden":"20","vae.latent":"20","vae.model":"vae","vae.likelihood":"bernoulli","vae.beta":"1"'
st "{\"__metadata__\":{$C,\"vae.channels\":\"3\"}}" >"$OUT/checkpoint/checkpoint-oom-huge-config-no-tensors"
st "{\"__metadata__\":{$C,\"vae.channels\":\"2\"}}" >"$OUT/checkpoint/checkpoint-ub-overlapping-vsnprintf-channels-2"

# ---------------------------------------------------------------- round trip
# The byte layout fuzz_roundtrip.c documents at its top.
R=$OUT/roundtrip
printf '\x00' >"$R/nothing"
# 1 tensor "w.0" [2,3] + 1 metadata pair
{ byte 6; printf '\x03w.0\x02\x02\x03'; pixels 24; printf '\x06format\x01x'; } >"$R/one-tensor-one-meta"
# NaN with a payload, -0, a subnormal, +inf in a [4] tensor; a scalar; an empty [0,2]
{ byte 3; printf '\x01a\x01\x04\x01\x00\xc0\x7f\x00\x00\x00\x80\x01\x00\x00\x00\x00\x00\x80\x7f'
  printf '\x01b\x00\x00\x00\x80\xbf\x01c\x02\x00\x02'; } >"$R/special-floats"
# names and metadata that need escaping or are multi-byte UTF-8
# shellcheck disable=SC1003 # the trailing backslashes are data
{ byte 7; printf '\x04"\\\x01\x0a\x01\x01\x00\x00\x00\x00'           # "\<01><0a>, [1]
  printf '\x02\x80\x00\xe9\x80\x01\xf6\x00\x00\x00\x80\x3f'                 # U+E9 U+1F6, scalar
  printf '\x02\x81\xf6\x00\x7f\x03"\x1f\\'; } >"$R/escapes-unicode"     # U+1F600 DEL = "<1f>\\
# 4 tensors, 3 metadata pairs, one rank-8 tensor
{ byte 19; printf '\x01d\x01\x04'; pixels 16; printf '\x01c\x08\x02\x01\x01\x01\x01\x01\x01\x01'; pixels 8
  printf '\x01b\x03\x01\x01\x02'; pixels 8; printf '\x01a\x00'; pixels 4
  printf '\x01k\x01v\x01j\x00\x02ii\x03abc'; } >"$R/full"
# duplicate names: the writer must refuse
{ byte 2; printf '\x01x\x00\x00\x00\x00\x00\x01x\x00\x00\x00\x00\x00'; } >"$R/duplicate-names"

# ---------------------------------------------------------------- CSV
# The first byte picks the options (fuzz_csv.c): 0 none/auto/255, 1 first,
# 2 last, +0x20 values in [0,1], +0x40 shape 3x1x2.
V=$OUT/csv
{ byte 0; printf 'p0,p1,p2,p3\n0,255,128,7\n1,2,3,4\n'; } >"$V/header-2x2"
{ byte 1; printf '3,0,1,2,3\r\n9,4,5,6,7'; } >"$V/label-first-crlf"
{ byte $((2 + 0x20)); printf '\xef\xbb\xbf0.5,.25,1e-1,1,7\n'; } >"$V/label-last-unit-bom"
{ byte 0x40; printf '1,2,3,4,5,6\n6,5,4,3,2,1\n\n'; } >"$V/shape-3x1x2"
{ byte 0; printf '1,2,3,4\n5,nan,7,8\n'; } >"$V/bad-nan"
{ byte 0; printf '1,2,3,4\n5,6,7\n'; } >"$V/bad-ragged"

# ---------------------------------------------------------------- PNG
# Every variant tests/pngwrite.h writes, small (gen_images beside the vae binary).
GEN=$(dirname "$VAE")/gen_images
if [ -x "$GEN" ]; then
    for v in grey8 grey16 grey4 grey-alpha grey-trns rgb8 rgb16 rgba palette palette-trns \
        palette-grey grey-interlaced rgb-interlaced; do
        "$GEN" png "$OUT/png/$v.png" "$v" 5 3 1
    done
    head -c 40 "$OUT/png/rgb8.png" >"$OUT/png/bad-truncated"
    # a regression (crashes/README.md): a chunk length claiming 1.6 GB
    printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x05\x00\x00\x00\x03\x08\x02\x00\x00\x00\xd4\x54\x52\xaf\x62\x4b\x47\x44\x74\x45\x58\x74\x08\x99\x01\x31\x00\xcf\xff\x01\xf3\x0c\x99\x39\x97\xd0\x19\x2d\x3f\xf2\x8c\x03\x1f\x4e\xd4\x02\x38\xd6\xfd\x66\x18\x58\x65\x19\x53\xf5\x49\xf8\x67\xe8\x82\x03\xf7\xeb\x10\x25\x75\x11\x90\x10\x2a\x14\x69\xcb\x34\x70\x1d\xee\x56\x13\xaf\xef\x59\x2e\xaa\x00\x00\x00\x00\x73\x42\x49\x54\xae\x42\x60\x82\x49\x41\x1a\x0a\x00\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60' >"$OUT/png/png-oom-chunk-length-1.6GB"
else
    echo "make_corpus.sh: $GEN not found: no PNG seeds" >&2
fi

# ---------------------------------------------------------------- JSON
# vae serve's request bodies (tools/json.c): what it takes, and near misses
J=$OUT/json
printf '{"z":[0.5,-1,2e-3]}' >"$J/decode"
printf '{"z":[[0,1],[2,3]],"label":3,"scale":2}' >"$J/decode-batch"
printf '{ "a" : [1, 2] , "b":[3,4],"steps":8,"slerp":1 }\n' >"$J/interpolate"
printf '{}' >"$J/empty"
printf '{"z":[NaN]}' >"$J/bad-nan"
printf '{"z":[[1],[2,3]]}' >"$J/bad-ragged"
printf '{"z":[1e999]}' >"$J/bad-huge"

du -sh "$OUT"
find "$OUT" -type f | wc -l
