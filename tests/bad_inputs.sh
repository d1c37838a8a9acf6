#!/usr/bin/env bash
# bad_inputs.sh VAE TESTS_DATA_DIR - the bad-input suite (reliability.md §7):
# broken IDX/gzip data directories, broken checkpoints, bad flags and
# unwritable outputs, all generated here from the shipped subset and a tiny
# model trained at the start. Every case must exit 1 or 2 (no crash), print
# exactly one stderr line naming the offending file or flag, and leave no
# output behind: nothing in $O, no temporary files anywhere under $T.
# VERBOSE=1 prints each message that passed.
set -u
export LC_ALL=C # byte semantics for ${#h} and the patched headers
VAE=$1
TD=$2
DATA=$TD/fmnist-small
NAME=bad-inputs
. "$(dirname "$0")/lib.sh"
O=$T/o # every output a failing command is asked for goes here; it must stay empty
mkdir -p "$O" "$T/ck" "$T/raw"

# Peak memory: each case's maximum resident set (GNU time's %M) must stay
# under MEM_BOUND_MB (default 400: the shipped subset and a small model take
# about 100); a case that reads a hostile input's claims sets a tighter
# bound for itself with BOUND_MB=N. Not under valgrind or a sanitizer (their
# own memory), nor without /usr/bin/time (apt-get install time).
MEM_BOUND_MB=${MEM_BOUND_MB:-400}
MEASURE=()
if [ -x /usr/bin/time ] && [ "$(head -c 2 "$VAE")" != '#!' ] && ! ldd "$VAE" 2>/dev/null | grep -q libasan; then
    MEASURE=(/usr/bin/time -q -f %M -o "$T/rss.txt")
else
    echo "note: peak memory not checked (valgrind, a sanitizer, or no /usr/bin/time)"
fi
max_rss_kb=0

# expect_fail NAME PATTERN CMD...: stricter than lib.sh's: exit 1 or 2, one
# stderr line matching PATTERN (which names the file or flag), no output, no
# temporary files, peak memory within its bound; at most 20 s (a FIFO must
# not block)
expect_fail() {
    local name=$1 pat=$2 bound=${BOUND_MB:-$MEM_BOUND_MB}
    shift 2
    : >"$T/rss.txt"
    timeout -s KILL 20 "${MEASURE[@]}" "$@" >"$T/out.txt" 2>"$T/err.txt" </dev/null
    local rc=$? lines left tmps rss
    rss=$(tail -1 "$T/rss.txt")
    if [ -n "$rss" ] && [ "$rss" -gt "$max_rss_kb" ] 2>/dev/null; then max_rss_kb=$rss; fi
    lines=$(wc -l <"$T/err.txt")
    left=$(ls -A "$O")
    tmps=$(find "$T" -name '*.tmp*' | head -3)
    rm -rf "$O" && mkdir "$O"
    find "$T" -name '*.tmp*' -exec rm -rf {} + 2>/dev/null
    [ $rc -eq 137 ] && { bad "$name: still running after 20 s (blocked on a FIFO?)"; return; }
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then bad "$name: exit $rc: $(head -c 300 "$T/err.txt")"; return; fi
    if [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(head -c 600 "$T/err.txt")"; return; fi
    if ! grep -qE -- "$pat" "$T/err.txt"; then bad "$name: message '$(cat "$T/err.txt")' lacks /$pat/"; return; fi
    if [ -n "$left" ]; then bad "$name: left output behind: $left"; return; fi
    if [ -n "$tmps" ]; then bad "$name: left temporary files: $tmps"; return; fi
    if [ -n "$rss" ] && [ "$rss" -gt $((bound * 1024)) ] 2>/dev/null; then
        bad "$name: peak memory $((rss / 1024)) MB, over its bound of $bound MB"; return
    fi
    [ -n "${VERBOSE:-}" ] && echo "ok ($rc) $name: $(cat "$T/err.txt")"
    ok
}

# --- byte helpers (printf, od, dd, gzip: no python)
bytes() { local b; for b; do printf "\\x$(printf %02x $((b & 255)))"; done; }
be32() { bytes $(($1 >> 24)) $(($1 >> 16)) $(($1 >> 8)) "$1"; }
le64() { local i; for i in 0 1 2 3 4 5 6 7; do bytes $(($1 >> (8 * i))); done; }
# poke FILE OFFSET BYTE...: overwrites bytes in place
poke() { local f=$1 off=$2; shift 2; bytes "$@" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none; }
# flip FILE OFFSET: inverts one byte
flip() { poke "$1" "$2" $((255 ^ $(od -An -tu1 -j"$2" -N1 "$1"))); }
size() { wc -c <"$1" | tr -d ' '; }
# idx TYPE NDIM DIM...: an IDX header
idx() { local t=$1 n=$2 d; shift 2; bytes 0 0 "$t" "$n"; for d; do be32 "$d"; done; }

# --- data directories: $D is a fresh copy of the subset for each case
D=$T/d
mk() { rm -rf "$D"; mkdir -p "$D"; cp "$DATA"/*.gz "$D/"; }
TI=train-images-idx3-ubyte TL=train-labels-idx1-ubyte SI=t10k-images-idx3-ubyte SL=t10k-labels-idx1-ubyte
for f in $TI $TL $SI $SL; do gzip -dc "$DATA/$f.gz" >"$T/raw/$f"; done
train_bad() { expect_fail "$1" "$2" "$VAE" train --data "$D" --epochs 1 --threads 1 --quiet --out "$O/run"; }
# a raw file is found before the .gz, so these replace the training images
mk; : >"$D/$TI"
train_bad "IDX empty raw file" "$TI: no full IDX header \(file is 0 bytes\)"
mk; : >"$D/$TI.gz"
train_bad "IDX empty .gz file" "$TI.gz: no full IDX header"
mk; gzip -c </dev/null >"$D/$TI.gz"
train_bad "IDX gzip of nothing" "$TI.gz: no full IDX header \(decompressed data is 0 bytes\)"
mk; head -c 10 "$T/raw/$TI" >"$D/$TI"
train_bad "IDX header cut in the dims" "$TI: truncated header"
mk; { bytes 1 2 8 3; tail -c +5 "$T/raw/$TI"; } >"$D/$TI"
train_bad "IDX bad magic" "$TI: not IDX: magic 01 02 08 03"
mk; gzip -c "$DATA/$TI.gz" >"$D/$TI.gz"
train_bad "IDX gzip in gzip" "$TI.gz: .*double-compressed"
mk; printf '<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n' >"$D/$TI.gz"
train_bad "IDX HTML page" "$TI.gz: .*HTML/JSON page"
mk; printf '{"error": "rate limited"}\n' | gzip >"$D/$TI.gz"
train_bad "IDX JSON page (gzip)" "$TI.gz: .*HTML/JSON page"
mk; { idx 13 3 10 2 2; head -c 160 /dev/zero; } >"$D/$TI"
train_bad "IDX float32 type 0x0D" "$TI: IDX type 0x0D \(float32\) is not supported"
mk; { idx 10 3 10 2 2; head -c 40 /dev/zero; } >"$D/$TI"
train_bad "IDX unknown type 0x0A" "$TI: not IDX: unknown type byte 0x0A"
mk; cp "$DATA/$TL.gz" "$D/$TI.gz"
train_bad "IDX labels as images (rank 1)" "$TI.gz: expected 3 dimensions .*found 1"
mk; { idx 8 255; } >"$D/$TI"
train_bad "IDX rank 255" "$TI: expected 3 dimensions .*found 255"
mk; { idx 8 3 0 28 28; } | gzip >"$D/$TI.gz"
train_bad "IDX zero dimension" "$TI.gz: dimension 0 is 0"
mk; idx 8 3 4294967295 4294967295 4294967295 >"$D/$TI"
train_bad "IDX dims overflow 64 bits" "$TI: dimensions declare more than the [0-9]+-byte limit"
mk; { idx 8 3 65535 65535 2; head -c 100 /dev/zero; } | gzip >"$D/$TI.gz"
train_bad "IDX dims over the cap, tiny file" "$TI.gz: dimensions declare more than"
mk; { idx 8 3 1000 1000 1000; head -c 100 /dev/zero; } | gzip >"$D/$TI.gz"
train_bad "IDX gzip header claims 1 GB" "$TI.gz: truncated gzip stream: expected 1000000000 bytes"
mk; head -c -1 "$T/raw/$TI" >"$D/$TI"
train_bad "IDX raw truncated by 1 byte" "$TI: truncated: expected 1568000 bytes of data, got 1567999"
mk; { cat "$T/raw/$TI"; printf 'x'; } >"$D/$TI"
train_bad "IDX raw trailing byte" "$TI: 1 trailing bytes"
mk; { cat "$T/raw/$TI"; head -c 100 /dev/zero; } | gzip >"$D/$TI.gz"
train_bad "IDX gzip trailing bytes" "$TI.gz: trailing bytes after the 1568000 bytes"
mk; head -c 1000 "$T/raw/$TI" | gzip >"$D/$TI.gz"
train_bad "IDX gzip payload truncated" "$TI.gz: truncated gzip stream: expected 1568000 bytes of data, got 984"
mk; head -c -100 "$DATA/$TI.gz" >"$D/$TI.gz"
train_bad "IDX gzip cut by 100 bytes" "$TI.gz: truncated gzip stream"
mk; head -c -4 "$DATA/$TL.gz" >"$D/$TL.gz"
train_bad "IDX gzip without ISIZE (labels)" "$TL.gz: truncated gzip stream"
mk; poke "$D/$TI.gz" 400000 0 255 0 255 0 255 0 255
train_bad "IDX corrupt gzip (bytes overwritten)" "$TI.gz: corrupt gzip data"
mk; flip "$D/$TI.gz" $(($(size "$D/$TI.gz") - 8))
train_bad "IDX gzip CRC flipped" "$TI.gz: corrupt gzip data: incorrect data check"
mk; flip "$D/$TI.gz" $(($(size "$D/$TI.gz") - 3))
train_bad "IDX gzip length flipped" "$TI.gz: corrupt gzip data: incorrect length check"
mk; poke "$D/$TI.gz" 3 255
train_bad "IDX gzip reserved flags" "$TI.gz: corrupt gzip data"
mk; cp "$DATA/$SL.gz" "$D/$TL.gz"
train_bad "labels count mismatch" "$TL.gz: 500 labels but 2000 images"
mk; cp "$DATA/$TI.gz" "$D/$TL.gz"
train_bad "labels wrong rank" "$TL.gz: expected 1 dimensions .*found 3"
mk; { idx 8 1 2000; head -c 1999 /dev/zero; } >"$D/$TL"
train_bad "labels raw truncated" "$TL: truncated"
mk; { idx 8 3 1 5000 5000; head -c 25000000 /dev/zero; } | gzip >"$D/$TI.gz"
train_bad "images too large a side" "$TI.gz: images of 5000x5000 pixels exceed"
mk; { idx 8 3 2 10 10; head -c 200 /dev/zero; } | gzip >"$D/$SI.gz"; rm "$D/$SL.gz"
train_bad "test/train image size mismatch" "$SI.gz: test images are 10x10 but training images .*28x28"
mk; cp "$DATA/$TL.gz" "$D/$SL.gz"
train_bad "test labels count mismatch" "$SL.gz: 2000 labels but 500 images"
mk; head -c 5000 "$DATA/$SI.gz" >"$D/$SI.gz"
train_bad "test images truncated gzip" "$SI.gz: truncated gzip stream"
mk; rm "$D/$SI.gz"
train_bad "missing test split" "$D: no t10k-images-idx3-ubyte\[.gz\]"
mk; rm "$D/$TI.gz"
train_bad "missing training split" "$D: no train-images-idx3-ubyte\[.gz\]"
mk; rm "$D/$TI.gz"; mkdir "$D/$TI.gz"
train_bad "images path is a directory" "$TI.gz: a directory, not a regular file"
mk; rm "$D/$TI.gz"; ln -s "$T/nowhere" "$D/$TI.gz"
train_bad "images path is a dangling link" "$TI.gz: cannot open"
: >"$T/plainfile"
expect_fail "data dir is a file" "$T/plainfile: not a directory" \
    "$VAE" train --data "$T/plainfile" --out "$O/run"
expect_fail "missing data dir" "$T/nonexistent: no such directory.*dataset-fashion-mnist" \
    "$VAE" train --data "$T/nonexistent" --out "$O/run"

# --- checkpoints: a tiny model, then variants of its header and data
"$VAE" train --data "$DATA" --epochs 1 --hidden 8 --latent 2 --batch 100 --threads 1 --quiet \
    --out "$T/m" >/dev/null 2>"$T/err.txt" || { echo "bad_inputs.sh: cannot train the tiny model: $(cat "$T/err.txt")" >&2; exit 1; }
M=$T/m/model.safetensors
hlen() { od -An -tu8 -N8 "$1" | tr -d ' '; }
N=$(hlen "$M")
H=$(tail -c +9 "$M" | head -c "$N" | sed 's/ *$//') # the JSON header, padding cut
tail -c +$((9 + N)) "$M" >"$T/ck/data.bin"
# sub FROM TO: the header with FROM replaced (the case fails if FROM is not there)
sub() {
    [[ $H == *"$1"* ]] || { bad "header lacks '$1' (the writer changed?)"; printf '%s' "$H"; return; }
    printf '%s' "${H/"$1"/"$2"}"
}
# ck NAME HEADER [DATA]: writes $T/ck/NAME.safetensors, the header space-padded
ck() {
    local h=$2 pad
    pad=$(((8 - ${#h} % 8) % 8))
    h=$h$(printf '%*s' $pad '')
    { le64 ${#h}; printf '%s' "$h"; cat "${3:-$T/ck/data.bin}"; } >"$T/ck/$1.safetensors"
}
C=$T/ck
info_bad() { expect_fail "$1" "$C/$2.safetensors: .*$3" "$VAE" info "$C/$2.safetensors"; }

ck roundtrip "$H"
cmp -s "$M" "$C/roundtrip.safetensors" && ok || bad "the header patcher does not reproduce the model file"
: >"$C/empty.safetensors"
info_bad "checkpoint empty" empty "not a safetensors file \(0 bytes"
head -c 7 "$M" >"$C/seven.safetensors"
info_bad "checkpoint 7 bytes" seven "not a safetensors file \(7 bytes"
{ le64 $(($(size "$M") - 7)); tail -c +9 "$M"; } >"$C/hlen_past_eof.safetensors"
info_bad "header length past the end" hlen_past_eof "header length [0-9]+ exceeds the file size"
{ le64 -1; tail -c +9 "$M"; } >"$C/hlen_max.safetensors"
info_bad "header length 2^64-1" hlen_max "header length 18446744073709551615 exceeds the limit"
{ le64 100000001; tail -c +9 "$M"; } >"$C/hlen_100m.safetensors"
info_bad "header length 100,000,001" hlen_100m "header length 100000001 exceeds the limit"
{ le64 0; tail -c +9 "$M"; } >"$C/hlen_zero.safetensors"
info_bad "header length 0" hlen_zero "JSON header is empty"
ck nonutf8 "$(sub '"vae.model":"vae"' $'"vae.model":"v\xffe"')"
info_bad "header not UTF-8" nonutf8 "not valid UTF-8"
ck json_cut "${H:0:${#H}-300}"
{ le64 $((${#H} + 5)); printf '%s' "$H"; head -c 5 /dev/zero; cat "$C/data.bin"; } >"$C/nul_pad.safetensors"
info_bad "header NUL-padded" nul_pad "NUL byte at offset ${#H}"
info_bad "header JSON cut short" json_cut "JSON header ends|invalid JSON"
ck array '[]'
info_bad "header is an array" array "JSON header is not an object"
ck trailing_json "$H x"
info_bad "data after the JSON object" trailing_json "data after the object"
ck dup_tensor "$(sub '}}' '},"fc_mu.bias":{"dtype":"F32","shape":[2],"data_offsets":[53512,53520]}}')"
info_bad "duplicate tensor name" dup_tensor 'duplicate key "fc_mu.bias"'
ck dup_meta "$(sub '{"__metadata__":{' '{"__metadata__":{"vae.latent":"2",')"
info_bad "duplicate metadata key" dup_meta 'duplicate key "vae.latent" in __metadata__'
ck dtype_f33 "$(sub '"dtype":"F32"' '"dtype":"F33"')"
info_bad "unknown dtype F33" dtype_f33 'unknown dtype "F33"'
ck dtype_lower "$(sub '"dtype":"F32"' '"dtype":"f32"')"
info_bad "dtype in lower case" dtype_lower 'unknown dtype "f32"'
ck dtype_f16 "$(sub '"decoder.0.bias":{"dtype":"F32","shape":[8]' '"decoder.0.bias":{"dtype":"F16","shape":[16]')"
info_bad "F16 dtype (unsupported)" dtype_f16 'decoder.0.bias" has dtype F16; only F32 is supported'
ck no_dtype "$(sub '"decoder.0.bias":{"dtype":"F32",' '"decoder.0.bias":{')"
info_bad "tensor without dtype" no_dtype 'decoder.0.bias": missing "dtype"'
ck overlap "$(sub '"data_offsets":[32,96]' '"data_offsets":[0,64]')"
info_bad "overlapping offsets" overlap "overlap tensor"
ck hole "$(sub '"decoder.0.bias":{"dtype":"F32","shape":[8],"data_offsets":[0,32]' \
    '"decoder.0.bias":{"dtype":"F32","shape":[4],"data_offsets":[0,16]')"
info_bad "hole between tensors" hole "leave a hole after tensor"
ck begin_after_end "$(sub '"data_offsets":[32,96]' '"data_offsets":[96,32]')"
info_bad "offsets end before they begin" begin_after_end "end before they begin"
ck offsets3 "$(sub '"data_offsets":[32,96]' '"data_offsets":[32,64,96]')"
info_bad "data_offsets with 3 entries" offsets3 "must have exactly 2 entries"
ck shape_neg "$(sub '"shape":[8,2]' '"shape":[-8,2]')"
info_bad "negative dimension" shape_neg "holds -8, not a non-negative integer"
ck shape_frac "$(sub '"shape":[8,2]' '"shape":[8.0,2]')"
info_bad "fractional dimension" shape_frac "holds 8.0, not a non-negative integer"
ck shape_huge "$(sub '"shape":[8,2]' '"shape":[2,18446744073709551614]')"
info_bad "dimension above 2^53" shape_huge "more than 2\^53"
ck shape_numel "$(sub '"shape":[8,2]' '"shape":[1000,1000]')"
info_bad "shape larger than its bytes" shape_numel "do not match shape \[1000,1000\]"
ck meta_number "$(sub '"format_version":"1"' '"format_version":1')"
info_bad "metadata value not a string" meta_number 'value for "format_version" is not a string'
ck unknown_key "$(sub '"dtype":"F32"' '"dtype":"F32","crc":"0"')"
info_bad "unknown key in a tensor entry" unknown_key 'unknown key "crc"'
{ cat "$M"; printf '12345678'; } >"$C/trailing.safetensors"
info_bad "trailing bytes after the data" trailing "8 trailing bytes after the last tensor"
head -c -4 "$M" >"$C/short.safetensors"
info_bad "data shorter than declared" short "truncated: the tensors need 53584 data bytes, the file has 53580"
ck no_format "$(sub '"format":"vae-checkpoint",' '')"
info_bad "no format metadata" no_format "not a vae checkpoint"
expect_fail "plain safetensors (PyTorch reference file)" "ref_small.safetensors: .*not a vae checkpoint" \
    "$VAE" info "$TD/ref_small.safetensors"
ck version2 "$(sub '"format_version":"1"' '"format_version":"2"')"
info_bad "format_version 2" version2 "checkpoint format version 2"
ck hidden_bad "$(sub '"vae.hidden":"8"' '"vae.hidden":"8,,3"')"
info_bad "vae.hidden 8,,3" hidden_bad "metadata entry vae.hidden is missing or invalid"
ck hidden_zero "$(sub '"vae.hidden":"8"' '"vae.hidden":"0"')"
info_bad "vae.hidden 0" hidden_zero "vae.hidden is missing or invalid"
ck no_latent "$(sub '"vae.latent":"2",' '')"
info_bad "vae.latent missing" no_latent "vae.latent is missing or invalid"
ck hidden_16 "$(sub '"vae.hidden":"8"' '"vae.hidden":"16"')"
info_bad "tensor shapes do not match vae.hidden" hidden_16 "the tensors hold 13396 values, but the model its metadata describes has 26004 parameters"
ck renamed "$(sub '"fc_mu.bias"' '"fc_mu.bias_"')"
info_bad "a tensor is missing" renamed "tensor fc_mu.bias is missing"
cp "$M" "$C/nan.safetensors"
poke "$C/nan.safetensors" $((8 + N + 4)) 0 0 192 127
info_bad "NaN in a weight" nan "decoder.0.bias holds a non-finite value"
cp "$M" "$C/inf.safetensors"
poke "$C/inf.safetensors" $(($(size "$M") - 4)) 0 0 128 255
info_bad "-Inf in a weight" inf "fc_mu.weight holds a non-finite value"
mkdir "$C/dir.safetensors"
info_bad "checkpoint is a directory" dir "not a checkpoint: a directory without model.safetensors"
info_bad "checkpoint missing" missing "cannot open"
# the same checks behind sample and reconstruct, which must not write -o
expect_fail "sample: NaN model" "$C/nan.safetensors: .*non-finite" \
    "$VAE" sample --model "$C/nan.safetensors" -o "$O/s.png"
expect_fail "sample: truncated model" "$C/short.safetensors: truncated" \
    "$VAE" sample --model "$C/short.safetensors" -o "$O/s.png"
expect_fail "reconstruct: F16 model" "$C/dtype_f16.safetensors: .*F16" \
    "$VAE" reconstruct --model "$C/dtype_f16.safetensors" --data "$DATA" -o "$O/r.png"
mk; head -c 5000 "$DATA/$SI.gz" >"$D/$SI.gz"
expect_fail "reconstruct: truncated test images" "$SI.gz: truncated gzip stream" \
    "$VAE" reconstruct --model "$M" --data "$D" -o "$O/r.png"
# a training checkpoint for --resume with NaN in Adam's second moment (last tensor)
cp "$T/m/checkpoint.safetensors" "$C/resume_nan.safetensors"
poke "$C/resume_nan.safetensors" $(($(size "$C/resume_nan.safetensors") - 4)) 0 0 192 127
expect_fail "resume: NaN in optim.v" "$C/resume_nan.safetensors: .*non-finite" \
    "$VAE" train --resume "$C/resume_nan.safetensors" --epochs 2 --out "$O/run"
expect_fail "resume: missing checkpoint" "$C/missing.safetensors" \
    "$VAE" train --resume "$C/missing.safetensors" --epochs 2 --out "$O/run"

# checkpoint entries as strict as the flags they stand for (a resume reads them)
CK=$T/m/checkpoint.safetensors
CN=$(hlen "$CK")
CH=$(tail -c +9 "$CK" | head -c "$CN" | sed 's/ *$//')
tail -c +$((9 + CN)) "$CK" >"$C/ckdata.bin"
# meta_bad NAME KEY VALUE PATTERN: the checkpoint with KEY's value replaced, resumed
meta_bad() {
    local name=$1 key=$2 val=$3 pat=$4 h
    h=$(printf '%s' "$CH" | sed -E "s/\"$key\":\"[^\"]*\"/\"$key\":\"$val\"/")
    [ "$h" != "$CH" ] || { bad "$name: checkpoint header lacks $key"; return; }
    ck "meta_$name" "$h" "$C/ckdata.bin"
    expect_fail "resume: $name" "$C/meta_$name.safetensors: .*$pat" \
        "$VAE" train --resume "$C/meta_$name.safetensors" --epochs 5 --quiet --out "$O/run"
}
meta_bad adam_steps_max train.adam_steps 9223372036854775807 "train.adam_steps is missing or invalid"
meta_bad adam_steps_neg train.adam_steps -1 "train.adam_steps is missing or invalid"
meta_bad threads_neg run.threads -7 "run.threads is '-7', not a whole number in 0..1024"
meta_bad threads_big run.threads 100000 "run.threads is '100000', not a whole number in 0..1024"
meta_bad batch_zero run.batch 0 "run.batch is '0', not a whole number in 1..65536"
meta_bad batch_junk run.batch 12abc "run.batch is '12abc'"
meta_bad epochs_big run.epochs 99999999 "run.epochs is '99999999', not a whole number in 1..1000000"
meta_bad epoch_neg train.epoch -2 "train.epoch is '-2'"
meta_bad seed_neg train.seed -5 "train.seed is '-5'"
meta_bad seed_huge train.seed 99999999999999999999 "train.seed is"
meta_bad cursor_neg run.cursor -1 "run.cursor is '-1'"
meta_bad beta_inf run.beta inf "checkpoint entry run.beta is invalid"
meta_bad beta_big run.beta 1e9 "checkpoint entry run.beta is invalid"
meta_bad sums_nan run.sums "nan,0x0p+0,0x0p+0,0" "checkpoint entry run.sums is invalid"
meta_bad sums_neg run.sums "0x0p+0,0x0p+0,0x0p+0,-4" "checkpoint entry run.sums is invalid"
meta_bad test_loss train.test_neg_elbo "1e999" "checkpoint entry train.test_neg_elbo is invalid"

# an output that is one of the inputs: refused, the input untouched
cp "$M" "$T/keep.safetensors"
expect_fail "sample -o is the model" "-o $M: the same file as the input --model" \
    "$VAE" sample --model "$M" -o "$M"
expect_fail "sample -o is the run's model" "-o $M: the same file as the input --model $T/m" \
    "$VAE" sample --model "$T/m" -o "$M"
cmp -s "$M" "$T/keep.safetensors" && ok || bad "sample -o MODEL changed the model"
expect_fail "curves -o is the log" "-o $T/m/metrics.jsonl: the same file as the input METRICS" \
    "$VAE" curves "$T/m" -o "$T/m/metrics.jsonl"

# FIFOs and devices where a file is read: refused at once, saying what they are
mkfifo "$T/fifo" "$T/fifo.png" "$T/fifo.csv"
mk; rm "$D/$TI.gz"; mkfifo "$D/$TI"
train_bad "FIFO as IDX images" "$D/$TI: a FIFO \(named pipe\), not a regular file"
expect_fail "FIFO as --data *.csv" "$T/fifo.csv: a FIFO \(named pipe\), not a data set" \
    "$VAE" train --data "$T/fifo.csv" --epochs 1 --quiet --out "$O/run"
ln -s /dev/zero "$T/zero.csv"
expect_fail "device as --data *.csv" "$T/zero.csv: a character device, not a data set" \
    "$VAE" train --data "$T/zero.csv" --epochs 1 --quiet --out "$O/run"
expect_fail "FIFO as curves' input" "$T/fifo: a FIFO \(named pipe\), not a regular file" \
    "$VAE" curves "$T/fifo" -o "$O/c.png"
expect_fail "FIFO as --from-image" "--from-image $T/fifo.png: a FIFO" \
    "$VAE" interpolate --model "$M" --from-image "$T/fifo.png" --to-image "$T/fifo.png" -o "$O/i.png"
expect_fail "FIFO as --model" "$T/fifo: a FIFO \(named pipe\), not a regular file" \
    "$VAE" sample --model "$T/fifo" -o "$O/s.png"
expect_fail "FIFO as --resume" "$T/fifo: a FIFO \(named pipe\), not a regular file" \
    "$VAE" train --resume "$T/fifo" --out "$O/run"
expect_fail "device as --model" "/dev/zero: a character device, not a regular file" \
    "$VAE" info /dev/zero

# --- flags (nothing is read or written before they are all checked)
tr_flag() { local name=$1 pat=$2; shift 2; expect_fail "$name" "$pat" "$VAE" train --data "$DATA" --out "$O/run" "$@"; }
tr_flag "--batch 0" "--batch expects" --batch 0
tr_flag "--latent -3" "--latent expects" --latent -3
tr_flag "--latent 100000" "--latent expects" --latent 100000
tr_flag "--hidden 400,,3" "--hidden expects" --hidden 400,,3
tr_flag "--hidden 0" "--hidden expects" --hidden 0
tr_flag "--hidden 400,abc" "--hidden expects" --hidden 400,abc
tr_flag "--lr abc" "--lr expects" --lr abc
tr_flag "--lr -1" "--lr expects" --lr -1
tr_flag "--lr nan" "--lr expects" --lr nan
tr_flag "--epochs 0" "--epochs expects" --epochs 0
tr_flag "--epochs 1e3" "--epochs expects" --epochs 1e3
tr_flag "--beta -1" "--beta expects" --beta -1
tr_flag "--binarize sometimes" "--binarize expects" --binarize sometimes
tr_flag "--binarize threshold:2" "--binarize threshold expects" --binarize threshold:2
tr_flag "--threads -1" "--threads expects" --threads -1
tr_flag "--samples 0" "--samples expects" --samples 0
tr_flag "--seed -5" "--seed expects" --seed -5
tr_flag "unknown option" "unknown option '--frobnicate'" --frobnicate
tr_flag "unknown short option" "unknown option '-x'" -x
tr_flag "value for a switch" "'?--quiet'? (takes|allows|accepts) no (value|argument)" --quiet=3
tr_flag "stray argument" "unexpected argument 'extra'" extra
expect_fail "missing value" "option '--epochs' needs a value" "$VAE" train --out "$O/run" --epochs
expect_fail "unknown command" "unknown command 'frobnicate'" "$VAE" frobnicate
expect_fail "sample -n 0" "-n expects" "$VAE" sample --model "$M" -n 0 -o "$O/s.png"
expect_fail "sample --scale 99" "--scale expects" "$VAE" sample --model "$M" --scale 99 -o "$O/s.png"
expect_fail "sample without --model" "--model is required" "$VAE" sample -o "$O/s.png"
expect_fail "reconstruct --seed (not its flag)" "unknown option '--seed'" \
    "$VAE" reconstruct --model "$M" --seed 3 -o "$O/r.png"
expect_fail "sample unknown short option" "unknown option '-x'" "$VAE" sample --model "$M" -x -o "$O/s.png"
expect_fail "sample --data (not its flag)" "unknown option '--data'" \
    "$VAE" sample --model "$M" --data "$DATA" -o "$O/s.png"
# the hint in a usage error must be a command that works
expect_fail "usage hint" "see 'vae train --help'" "$VAE" train --batch 0 --out "$O/run"
expect_fail "info without a path" "info: expects exactly one checkpoint path" "$VAE" info
expect_fail "info with two paths" "info: expects exactly one checkpoint path" "$VAE" info "$M" "$M"

# --- outputs that cannot be written
expect_fail "sample -o into a missing directory" "$T/nodir/s.png" \
    "$VAE" sample --model "$M" -o "$T/nodir/s.png"
[ -e "$T/nodir" ] && bad "sample created $T/nodir" || ok
expect_fail "reconstruct -o into a missing directory" "$T/nodir/r.png" \
    "$VAE" reconstruct --model "$M" --data "$DATA" -o "$T/nodir/r.png"
mkdir -p "$T/adir"
expect_fail "sample -o is a directory" "$T/adir" "$VAE" sample --model "$M" -o "$T/adir"
[ -z "$(ls -A "$T/adir")" ] && ok || bad "sample -o DIR left files in it: $(ls -A "$T/adir")"
mkdir -p "$T/odir"
expect_fail "sample -o ends in a slash" "$T/odir/: not a file name" "$VAE" sample --model "$M" -o "$T/odir/"
[ -z "$(ls -A "$T/odir")" ] && ok || bad "sample -o DIR/ left files: $(ls -A "$T/odir")"
# an empty path: the message must say which flag (or quote the empty name)
expect_fail "sample -o ''" "(-o|'')" "$VAE" sample --model "$M" -o ''
expect_fail "train --out ''" "(--out|'')" "$VAE" train --data "$DATA" --epochs 1 --quiet --out ''
expect_fail "train --data ''" "(--data|'')" "$VAE" train --data '' --out "$O/run"
# --out creates its missing parents (the README's runs/NAME on a fresh clone)
"$VAE" train --data "$DATA" --epochs 1 --threads 1 --quiet --out "$T/newparent/run" >/dev/null 2>&1 &&
    [ -f "$T/newparent/run/model.safetensors" ] && ok || bad "train --out with a missing parent"
rm -rf "$T/newparent"
touch "$T/afile"
expect_fail "train --out under a file" "$T/afile/run: cannot create the directory $T/afile/run" \
    "$VAE" train --data "$DATA" --epochs 1 --threads 1 --quiet --out "$T/afile/run"
printf 'keep me\n' >"$T/afile"
expect_fail "train --out is a regular file" "$T/afile: not a directory" \
    "$VAE" train --data "$DATA" --epochs 1 --threads 1 --quiet --out "$T/afile"
[ "$(cat "$T/afile")" = "keep me" ] && ok || bad "train --out FILE changed the file"
expect_fail "train --out holds a checkpoint" "$T/m already holds a checkpoint" \
    "$VAE" train --data "$DATA" --epochs 1 --threads 1 --quiet --out "$T/m"
cmp -s "$M" "$C/roundtrip.safetensors" && ok || bad "a refused run changed $M"


# --- picture commands (tools/pictures.c)
"$VAE" train --data "$DATA" --epochs 1 --hidden 8 --latent 1 --batch 100 --threads 1 --quiet \
    --out "$T/m1" >/dev/null 2>"$T/err.txt" || { echo "bad_inputs.sh: cannot train the 1-D model: $(cat "$T/err.txt")" >&2; exit 1; }
M1=$T/m1/model.safetensors
expect_fail "interpolate --from out of range" "--from 500 is out of range: .*holds 500 images" \
    "$VAE" interpolate --model "$M" --data "$DATA" --from 500 --to 0 -o "$O/i.png"
expect_fail "interpolate --steps 0" "--steps expects a whole number in 2\.\.200, not '0'" \
    "$VAE" interpolate --model "$M" --data "$DATA" --from 0 --to 1 --steps 0 -o "$O/i.png"
expect_fail "interpolate -o into a missing directory" "$T/nodir/i.png" \
    "$VAE" interpolate --model "$M" --data "$DATA" --from 0 --to 1 -o "$T/nodir/i.png"
expect_fail "traverse --steps 0" "--steps expects a whole number in 2\.\.100" \
    "$VAE" traverse --model "$M" --data "$DATA" --steps 0 -o "$O/t.png"
expect_fail "traverse --image out of range" "--image 2000 is out of range" \
    "$VAE" traverse --model "$M" --data "$DATA" --image 2000 -o "$O/t.png"
expect_fail "manifold of a 1-D latent" "$M1: manifold needs a latent space of at least 2 dimensions; this model has 1" \
    "$VAE" manifold --model "$M1" -o "$O/m.png"
expect_fail "manifold --dims beyond the latent" "--dims 0,2: this model's latent dimensions are 0\.\.1" \
    "$VAE" manifold --model "$M" --dims 0,2 -o "$O/m.png"
expect_fail "manifold --dims with one index" "--dims expects two different dimension indices" \
    "$VAE" manifold --model "$M" --dims 1 -o "$O/m.png"
expect_fail "embed --plot of a 1-D latent" "$M1: --plot needs a latent space of at least 2 dimensions" \
    "$VAE" embed --model "$M1" --data "$DATA" -o "$O/c.csv" --plot "$O/e.png"
mkdir -p "$T/small" && { idx 8 3 2 10 10; head -c 200 /dev/zero; } >"$T/small/$SI"
expect_fail "embed on 10x10 images" "$SI: images are 1x10x10 but the model takes 1x28x28" \
    "$VAE" embed --model "$M" --data "$T/small" -o "$O/c.csv"
expect_fail "curves of a checkpoint" "$M: binary data, not a metrics log" "$VAE" curves "$M" -o "$O/c.png"
expect_fail "curves of an IDX label file" "t10k-labels-idx1-ubyte: binary data, not a metrics log" \
    "$VAE" curves "$T/raw/$SL" -o "$O/c.png"
printf 'hello\n' >"$T/hello.txt"
expect_fail "curves of a text file" "hello.txt:1: not a vae metrics log line" "$VAE" curves "$T/hello.txt" -o "$O/c.png"
printf '{"epoch":2,"train_loss":1,"train_rec":1,"train_kl":0,"test_loss":1,"test_rec":1,"test_kl":0}\n{"epoch":1,"train_loss":1,"train_rec":1,"train_kl":0,"test_loss":1,"test_rec":1,"test_kl":0}\n' >"$T/order.jsonl"
expect_fail "curves of a log out of order" "order.jsonl:2: epoch 1 follows epoch 2" "$VAE" curves "$T/order.jsonl" -o "$O/c.png"
printf '{"epoch":1,"train_loss":nan,"train_rec":1,"train_kl":0,"test_loss":1,"test_rec":1,"test_kl":0}\n' >"$T/nan.jsonl"
expect_fail "curves of a log with NaN" 'nan.jsonl:1: metrics line without a finite "train_loss"' "$VAE" curves "$T/nan.jsonl" -o "$O/c.png"
expect_fail "curves of a directory without a log" "metrics.jsonl: cannot open the metrics log" "$VAE" curves "$T/adir" -o "$O/c.png"
# --- your own images: PNG folders and CSV files (tests/gen_images.c writes them)
GEN=${GEN:-$(dirname "$VAE")/gen_images} # valgrind.sh wraps vae elsewhere and sets GEN
[ -x "$GEN" ] || bad "no test-image generator at $GEN (build gen_images or set GEN)"
P=$T/png
img_bad() { local name=$1 pat=$2 data=$3; shift 3; expect_fail "$name" "$pat" "$VAE" train --data "$data" --epochs 1 --threads 1 --quiet --out "$O/run" "$@"; }
pk() { rm -rf "$P"; "$GEN" folder "$P" rgb8 6 8 8 1; }
pk; "$GEN" png "$P/big.png" rgb8 9 8 2
img_bad "PNG: mixed sizes without --resize" "$P/img-0000.png: 8x8 pixels, but $P/big.png is 9x8; all images must be one size \(or pass --resize WxH\)" "$P"
pk; printf '<html>404</html>\n' >"$P/fake.png"
img_bad "PNG: a *.png that is not PNG" "$P/fake.png: not a PNG file" "$P"
pk; printf '\xff\xd8\xff\xe0JFIF' >"$P/photo.png"
img_bad "PNG: JPEG data named .png" "$P/photo.png: not a PNG file \(JPEG data\)" "$P"
pk; head -c 60 "$P/img-0001.png" >"$P/cut.png"
img_bad "PNG: truncated" "$P/cut.png: bad PNG: .*truncated" "$P"
pk; head -c -12 "$P/img-0002.png" >"$P/noiend.png"
img_bad "PNG: cut before IEND" "$P/noiend.png: bad PNG" "$P"
pk; cp "$P/img-0003.png" "$P/crc.png"; flip "$P/crc.png" $(($(size "$P/crc.png") - 20))
img_bad "PNG: corrupt IDAT" "$P/crc.png: bad PNG" "$P"
pk; cp "$P/img-0003.png" "$P/huge.png"; poke "$P/huge.png" 16 0 1 134 160 0 1 134 160
img_bad "PNG: IHDR 100000x100000" "$P/huge.png: bad PNG" "$P"
rm -rf "$P"; mkdir -p "$P"
img_bad "PNG: empty folder" "$P: no \*.png images here" "$P"
printf 'x' >"$P/notes.txt"
img_bad "PNG: folder without PNGs" "$P: no \*.png images here" "$P"
pk; "$GEN" png "$T/outside.png" rgb8 8 8 3; ln -s "$T/outside.png" "$P/link.png"
img_bad "PNG: symlink pointing outside" "$P/link.png: a symbolic link pointing outside the data folder" "$P"
pk; ln -s missing.png "$P/dangling.png"
img_bad "PNG: dangling symlink" "$P/dangling.png: a symbolic link to nowhere" "$P"
pk; mkdir "$P/cls"
img_bad "PNG: images beside class folders" "$P: holds both images \(img-0000.png\) and sub-folders \(cls/\)" "$P"
rm -rf "$P"; mkdir -p "$P"; "$GEN" classes "$P/train" grey8 2 4 8 8 1; "$GEN" classes "$P/test" grey8 3 2 8 8 2
img_bad "PNG: test class not in train/" "$P/test/class-2: class 'class-2' is not among the training classes" "$P"
rm -rf "$P/test"; mkdir "$P/test"
img_bad "PNG: empty test/" "$P/test: no \*.png images \(test split\)" "$P"
pk
img_bad "--resize 0x8" "--resize expects WxH" "$P" --resize 0x8
img_bad "--resize 8" "--resize expects WxH" "$P" --resize 8
img_bad "--test-fraction 1" "--test-fraction expects" "$P" --test-fraction 1
img_bad "--test-fraction 0" "--test-fraction expects" "$P" --test-fraction 0
img_bad "--split-seed -1" "--split-seed expects" "$P" --split-seed -1
img_bad "--csv-label on PNG" "--csv-label does not apply: $P is a PNG folder" "$P" --csv-label first
"$GEN" folder "$T/one" grey8 1 8 8 1
img_bad "one image: no split" "cannot be split into training and test images" "$T/one"
C=$T/csv
mkdir -p "$C"
csv_bad() { local name=$1 pat=$2 text=$3; shift 3; printf -- "$text" >"$C/d.csv"; img_bad "CSV: $name" "$C/d.csv: $pat" "$C/d.csv" "$@"; }
csv_bad "ragged row" "line 3: 3 fields, but line 1 has 4 \(a ragged row\)" '1,2,3,4\n5,6,7,8\n9,10,11\n'
csv_bad "empty field" "line 2, field 2: '' is an empty field" '1,2,3,4\n5,,7,8\n'
csv_bad "nan" "line 2, field 3: 'nan' is not a finite number" '1,2,3,4\n5,6,nan,8\n'
csv_bad "inf" "line 1, field 1: '-inf' is not a finite number" '-inf,2,3,4\n5,6,7,8\n' --csv-header no
csv_bad "1e309" "line 2, field 1: '1e309' is outside 0..255" '1,2,3,4\n1e309,6,7,8\n'
csv_bad "256" "line 2, field 4: '256' is outside 0..255 \(--csv-scale 255\)" '1,2,3,4\n5,6,7,256\n'
csv_bad "-1" "line 2, field 2: '-1' is outside 0..255" '1,2,3,4\n5,-1,7,8\n'
csv_bad "1.5 in 0..1" "line 2, field 2: '1.5' is outside 0..1 \\(--csv-scale 1\\)" '1,0,0,0\n0.5,1.5,0,0\n' --csv-scale 1
csv_bad "hex" "line 2, field 1: '0x10' is a hexadecimal number" '1,2,3,4\n0x10,6,7,8\n'
csv_bad "comma decimal" "line 2: 5 fields, but line 1 has 4" '1,2,3,4\n0,5,6,7,8\n'
csv_bad "label 10.5" "line 1, field 1: label '10.5' is not a whole number in 0..255" '10.5,1,2,3,4\n' --csv-label first
csv_bad "not square" "rows hold 3 pixel values, not a square grey image; give the shape \(--shape CxHxW\)" '1,2,3\n'
csv_bad "shape mismatch" "rows hold 4 pixel values, but the shape 3x2x2 needs 12" '1,2,3,4\n' --shape 3x2x2
csv_bad "empty file" "no data rows \(empty file\)" ''
csv_bad "header only" "no data rows" 'a,b,c,d\n'
csv_bad "blank line inside" "line 2: an empty line inside the data" '1,2,3,4\n\n5,6,7,8\n'
printf '1,2,3,4\n' | gzip | head -c 20 >"$C/t.csv.gz"
img_bad "CSV: truncated gzip" "$C/t.csv.gz: truncated gzip stream" "$C/t.csv.gz"
# memory follows the images found, not the text: a 64 MB line of digits
# (64 kB of gzip) is refused after a few kB, not buffered whole
head -c 64000000 /dev/zero | tr '\0' 7 | gzip -1 >"$C/line.csv.gz"
BOUND_MB=160 img_bad "CSV: a 64 MB line (gzip)" "$C/line.csv.gz: line 1: more than 64 bytes per field" "$C/line.csv.gz"
# two rows of 3x1024x1024 with a bad value at the end: 6 MB of images, not a
# reservation of 1024 such rows (3 GiB)
{ for r in 1 2; do head -c 3145727 /dev/zero | tr '\0' 0 | sed 's/0/0,/g'; echo x; done; } >"$C/wide.csv"
BOUND_MB=160 img_bad "CSV: wide rows" "$C/wide.csv: line 2, field 3145728: 'x' is not a number" "$C/wide.csv" --shape 3x1024x1024
# --max-memory bounds a CSV's images too
BOUND_MB=160 img_bad "CSV over --max-memory" "$C/wide.csv: line 2: the images need more than the 1 MiB" "$C/wide.csv" --shape 3x1024x1024 --max-memory 1
printf '1,2,3,4\n5,6,7,8\n' >"$C/ok.csv"
img_bad "--resize on CSV" "--resize does not apply: $C/ok.csv is a CSV file" "$C/ok.csv" --resize 4x4
img_bad "--csv-label middle" "--csv-label expects first, last or none" "$C/d.csv" --csv-label middle
img_bad "--csv-scale 100" "--csv-scale expects 255" "$C/d.csv" --csv-scale 100
img_bad "--csv-header maybe" "--csv-header expects auto, yes or no" "$C/d.csv" --csv-header maybe
img_bad "--shape 2x4x4" "--shape expects CxHxW with C 1 or 3" "$C/d.csv" --shape 2x4x4
img_bad "--shape 1x0x4" "--shape expects CxHxW" "$C/d.csv" --shape 1x0x4
printf 'x' >"$C/d.txt"
img_bad "a file that is not *.csv" "$C/d.txt: not a directory .* nor a \*.csv file" "$C/d.txt"
expect_fail "reconstruct: data flag that does not apply" "--resize does not apply" \
    "$VAE" reconstruct --model "$M" --data "$DATA" --resize 4x4 -o "$O/r.png"
# --- eval and pca (issue 5): flags, data and models, checked before any work
ev() { local name=$1 pat=$2; shift 2; expect_fail "eval $name" "$pat" "$VAE" eval --data "$DATA" --quiet "$@"; }
ev "--k 0" "--k expects a whole number in 1\.\." --model "$M" --k 0
ev "--k abc" "--k expects" --model "$M" --k abc
ev "--k -5" "--k expects" --model "$M" --k -5
ev "--split val" "--split expects test, train or valid, not 'val'" --model "$M" --split val
ev "-n beyond the split" "-n 501: .*$SI.gz holds 500 images" --model "$M" -n 501
ev "--threads -1" "--threads expects" --model "$M" --threads -1
ev "--binarize sometimes" "--binarize expects none, dynamic or threshold" --model "$M" --binarize sometimes
ev "--binarize threshold:3" "--binarize threshold expects a number in \[0, 1\]" --model "$M" --binarize threshold:3
ev "--batch 0" "--batch expects" --model "$M" --batch 0
ev "without --model" "--model is required"
ev "--model ''" "(--model|'')" --model ''
ev "NaN model" "$T/ck/nan.safetensors: .*non-finite" --model "$T/ck/nan.safetensors"
ev "missing model" "$T/ck/missing.safetensors: cannot open" --model "$T/ck/missing.safetensors"
ev "value for a switch" "'?--json'? (takes|allows|accepts) no (value|argument)" --model "$M" --json=1
ev "stray argument" "unexpected argument 'extra'" --model "$M" extra
ev "train's flag" "unknown option '--epochs'" --model "$M" --epochs 3
expect_fail "eval missing data dir" "$T/nonexistent: no such directory" \
    "$VAE" eval --model "$M" --data "$T/nonexistent" --quiet
mk; { idx 8 3 2 10 10; head -c 200 /dev/zero; } | gzip >"$D/$SI.gz"; rm "$D/$SL.gz"
expect_fail "eval images of another size" "$SI.gz: images are 1x10x10 but the model takes 1x28x28|10x10" \
    "$VAE" eval --model "$M" --data "$D" --quiet
pc() { local name=$1 pat=$2; shift 2; expect_fail "pca $name" "$pat" "$VAE" pca --data "$DATA" "$@"; }
pc "without --components" "--components is required" -o "$O/p.png"
pc "--components 0" "--components expects" --components 0 -o "$O/p.png"
pc "--components 785" "--components 785: the images have only 784 values" --components 785 -o "$O/p.png"
pc "-n beyond the split" "-n 501: .*$SI.gz holds 500 images" --components 5 -n 501 -o "$O/p.png"
pc "--images 0" "--images expects" --components 5 --images 0 -o "$O/p.png"
pc "-o ''" "(-o|'')" --components 5 -o ''
pc "-o into a missing directory" "$T/nodir/p.png" --components 5 -o "$T/nodir/p.png"
[ -e "$T/nodir" ] && bad "pca created $T/nodir" || ok
expect_fail "pca missing data dir" "$T/nonexistent: no such directory" \
    "$VAE" pca --components 5 --data "$T/nonexistent" -o "$O/p.png"

# --- classifier train and score (issue 20): flags, labels, files, before any work
cl() { local name=$1 pat=$2; shift 2; expect_fail "classifier $name" "$pat" "$VAE" classifier train --data "$DATA" --quiet "$@"; }
cl "without --out" "--out is required"
cl "--out into a missing directory" "$T/nodir/c.safetensors" --out "$T/nodir/c.safetensors"
cl "--epochs 0" "--epochs expects" --epochs 0 --out "$O/c.safetensors"
mk; rm "$D/$TL.gz"
expect_fail "classifier without labels" "$TI.gz: has no labels, and the classifier needs them" \
    "$VAE" classifier train --data "$D" --quiet --out "$O/c.safetensors"
expect_fail "classifier unknown subcommand" "the one subcommand is 'train'" "$VAE" classifier fit
sc() { local name=$1 pat=$2; shift 2; expect_fail "score $name" "$pat" "$VAE" score --data "$DATA" "$@"; }
sc "without --classifier" "--classifier is required" --model "$M"
sc "--n 1" "--n expects" --model "$M" --classifier "$M" --n 1
sc "a VAE for a classifier" "$M: not a classifier" --model "$M" --classifier "$M"
sc "missing classifier" "$T/ck/missing.safetensors: cannot open" --model "$M" --classifier "$T/ck/missing.safetensors"

[ ${#MEASURE[@]} -gt 0 ] && echo "largest peak memory of a case: $((max_rss_kb / 1024)) MB"
report
