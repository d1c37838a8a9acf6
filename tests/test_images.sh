#!/usr/bin/env bash
# test_images.sh VAE TESTS_DATA_DIR - your own images end to end: PNG
# folders of every variant (written at test time by tests/gen_images.c: $GEN,
# or gen_images beside VAE),
# class folders, train/ + test/, CSV files; a few training steps on each, the
# one-line report of what was found, colour pictures for a colour model, the
# split recorded in the checkpoint and used again by reconstruct and --resume.
set -u
VAE=$1
GEN=${GEN:-$(dirname "$VAE")/gen_images}
NAME=test-images
. "$(dirname "$0")/lib.sh"
[ -x "$GEN" ] || { echo "test_images.sh: no generator at $GEN (set GEN)" >&2; exit 1; }

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $2*65536+$3*256+$4 "x" $6*65536+$7*256+$8}'; }
# IHDR colour type: 0 grey, 2 RGB
png_type() { od -An -tu1 -j25 -N1 "$1" | tr -d ' '; }
# train_ok NAME DATA PATTERN [FLAGS...]: a few steps train; the data line matches PATTERN
train_ok() {
    local name=$1 data=$2 pat=$3
    shift 3
    rm -rf "$T/run"
    if ! "$VAE" train --data "$data" --hidden 16 --latent 2 --batch 8 --threads 1 --max-steps 3 \
        --quiet --out "$T/run" "$@" >"$T/out.txt" 2>"$T/err.txt"; then
        bad "$name: train failed: $(cat "$T/err.txt")"
        return
    fi
    local line
    line=$(grep '^data: ' "$T/err.txt")
    if [ "$(grep -c '^data: ' "$T/err.txt")" -ne 1 ] || ! grep -qE -- "$pat" <<<"$line"; then
        bad "$name: data line '$line' lacks /$pat/"
        return
    fi
    [ -s "$T/run/checkpoint.safetensors" ] && ok || bad "$name: no checkpoint"
}

# --- every PNG variant as a flat folder of 24 images of 9x7 (no labels, 10% held out)
for v in grey8 grey16 grey4 grey-alpha grey-trns palette-grey grey-interlaced; do
    "$GEN" folder "$T/$v" "$v" 24 9 7 1
    train_ok "$v" "$T/$v" "^data: PNG folder $T/$v: 22 training \+ 2 test images, 9x7 grey, no labels, test split: held out 10% \(seed 1\)$"
done
for v in rgb8 rgb16 rgba palette palette-trns rgb-interlaced; do
    "$GEN" folder "$T/$v" "$v" 24 9 7 1
    train_ok "$v" "$T/$v" "22 training \+ 2 test images, 9x7 RGB, no labels"
done

# --- class folders, a skipped file, a link inside the folder
"$GEN" classes "$T/cls" rgb8 3 10 8 8 2
printf 'notes\n' >"$T/cls/README.txt"
ln -s ../class-0/img-0000.png "$T/cls/class-1/link.png"
train_ok "class folders" "$T/cls" "27 training \+ 4 test images, 8x8 RGB, labels: 3 classes, test split: held out 12% \(seed 1\); skipped 1 entry that is not \*.png" --test-fraction 0.12
# the split is the checkpoint's: another seed holds out other images
grep -q '"data.split":"held out 12% (seed 1)"' "$T/run/checkpoint.safetensors" && ok || bad "data.split not in the checkpoint"
grep -q 'test_fraction=0.12;split_seed=1' "$T/run/model.safetensors" && ok || bad "data.options not in model.safetensors"
"$VAE" info "$T/run/model.safetensors" | grep -q "^classes *class-0/class-1/class-2$" && ok || bad "info lacks the class names"

# --- train/ + test/ sub-folders give the split; mixed grey and colour -> RGB
mkdir -p "$T/tt"
"$GEN" classes "$T/tt/train" grey8 2 12 6 6 3
"$GEN" classes "$T/tt/test" palette 2 3 6 6 4
train_ok "train/ + test/" "$T/tt" "24 training \+ 6 test images, 6x6 RGB, labels: 2 classes, test split: test/ folder"
expect_fail "--test-fraction with a test/ folder" "--test-fraction does not apply: .* test/ folder" \
    "$VAE" train --data "$T/tt" --test-fraction 0.2 --max-steps 1 --quiet --out "$T/never"

# --- --resize: mixed sizes become one
mkdir -p "$T/sizes"
"$GEN" png "$T/sizes/a.png" rgb8 12 8 1
"$GEN" png "$T/sizes/b.png" grey8 5 5 2
"$GEN" png "$T/sizes/c.png" palette 7 9 3
train_ok "--resize" "$T/sizes" "2 training \+ 1 test images, 10x6 RGB \(resized\)" --resize 10x6

# --- a colour model's pictures are colour PNGs, and reconstruct uses the run's split
"$GEN" shapes "$T/shapes" 12 16 5
rm -rf "$T/col"
"$VAE" train --data "$T/shapes" --hidden 32 --latent 4 --batch 16 --threads 1 --epochs 2 --quiet \
    --samples 4 --test-fraction 0.25 --split-seed 9 --out "$T/col" >/dev/null 2>"$T/err.txt" && ok || bad "shapes: $(cat "$T/err.txt")"
grep -q "36 training + 12 test images, 16x16 RGB, labels: 4 classes, test split: held out 25% (seed 9)" "$T/err.txt" && ok || bad "shapes data line: $(cat "$T/err.txt")"
for f in samples recon; do
    [ "$(png_type "$T/col/$f.png")" = 2 ] && ok || bad "$f.png is not RGB (type $(png_type "$T/col/$f.png"))"
done
[ "$(png_size "$T/col/samples.png")" = "70x70" ] && ok || bad "samples.png is $(png_size "$T/col/samples.png")"
"$VAE" sample --model "$T/col/model.safetensors" -n 4 -o "$T/s.png" 2>/dev/null && ok || bad "sample (colour)"
[ "$(png_type "$T/s.png")" = 2 ] && ok || bad "sample of a colour model is not RGB"
"$VAE" reconstruct --model "$T/col/model.safetensors" -n 4 -o "$T/r.png" 2>"$T/err.txt" && ok || bad "reconstruct: $(cat "$T/err.txt")"
grep -q "test split: held out 25% (seed 9)" "$T/err.txt" && ok || bad "reconstruct did not use the run's split: $(cat "$T/err.txt")"
[ "$(png_type "$T/r.png")" = 2 ] && ok || bad "reconstruct of a colour model is not RGB"
# the same test images as the run's: the same bytes as train's recon.png (4 pairs)
cmp -s "$T/r.png" "$T/col/recon.png" && ok || bad "reconstruct's picture differs from train's recon.png (other test images?)"
# --resume on a PNG folder: the fingerprint matches; data flags are fixed by the checkpoint
"$VAE" train --resume "$T/col" --epochs 3 --quiet >/dev/null 2>"$T/err.txt" && ok || bad "resume: $(cat "$T/err.txt")"
expect_fail "resume with --split-seed" "--split-seed cannot be changed when resuming" \
    "$VAE" train --resume "$T/col" --epochs 4 --split-seed 3

# --- over --max-memory: the images go to a mapped temporary file; training is bit-identical
mkdir -p "$T/tmp"
"$GEN" shapes "$T/s64" 10 24 6
for m in mem disk; do
    flag=()
    [ $m = disk ] && flag=(--max-memory 0.01)
    VAE_TMPDIR=$T/tmp "$VAE" train --data "$T/s64" --hidden 8 --latent 2 --batch 8 --threads 1 --epochs 1 --quiet \
        --out "$T/$m" "${flag[@]}" >/dev/null 2>"$T/err_$m.txt" || bad "--max-memory ($m): $(cat "$T/err_$m.txt")"
done
grep -q "images in a temporary file (over --max-memory)" "$T/err_disk.txt" && ok || bad "no temporary file: $(cat "$T/err_disk.txt")"
grep -q "temporary file" "$T/err_mem.txt" && bad "a temporary file without --max-memory" || ok
cmp -s "$T/mem/checkpoint.safetensors" "$T/disk/checkpoint.safetensors" && ok || bad "--max-memory changed the training"
[ -z "$(ls -A "$T/tmp")" ] && ok || bad "temporary files left: $(ls -A "$T/tmp")"
expect_fail "--max-memory where VAE_TMPDIR is missing" "no temporary file can be made in $T/nowhere" \
    env VAE_TMPDIR="$T/nowhere" "$VAE" train --data "$T/s64" --max-memory 0.01 --max-steps 1 --quiet --out "$T/never"
printf '1,2,3,4\n5,6,7,8\n' >"$T/m.csv"
"$VAE" train --data "$T/m.csv" --max-memory 1 --max-steps 1 --quiet --out "$T/csvmem" >/dev/null 2>&1 \
    && ok || bad "--max-memory on a CSV that fits it"
expect_fail "--max-memory on CSV" "m.csv: line 1: the images need more than the 0 MiB .*--max-memory" \
    "$VAE" train --data "$T/m.csv" --max-memory 0.000001 --max-steps 1 --quiet --out "$T/never"

# --- CSV: labels first/last/none, 0..1 values, a header, gzip
"$GEN" csv "$T/a.csv" 40 16 first 255 1 6
train_ok "CSV, label first, header" "$T/a.csv" "^data: CSV $T/a.csv: 36 training \+ 4 test images, 4x4 grey, labels: 10 classes, test split: held out 10% \(seed 1\)$" --csv-label first
"$GEN" csv "$T/b.csv" 30 12 last 1 0 7
train_ok "CSV, label last, 0..1, shape" "$T/b.csv" "27 training \+ 3 test images, 2x2 RGB, labels: 10 classes" --csv-label last --csv-scale 1 --shape 3x2x2
gzip -c "$T/a.csv" >"$T/a.csv.gz"
train_ok "CSV gzip" "$T/a.csv.gz" "36 training \+ 4 test images, 4x4 grey, labels: 10 classes" --csv-label first
"$GEN" csv "$T/c.csv" 20 25 none 255 0 8
train_ok "CSV no label" "$T/c.csv" "18 training \+ 2 test images, 5x5 grey, no labels"
# reconstruct reads the CSV as the run did (label column, split) from the checkpoint
"$VAE" reconstruct --model "$T/run/model.safetensors" -n 2 -o "$T/rc.png" 2>"$T/err.txt" && ok || bad "CSV reconstruct: $(cat "$T/err.txt")"
expect_fail "--csv-label on a PNG folder" "--csv-label does not apply: .* a PNG folder" \
    "$VAE" train --data "$T/cls" --csv-label first --max-steps 1 --quiet --out "$T/never"
expect_fail "--resize on CSV" "--resize does not apply: .* a CSV file" \
    "$VAE" train --data "$T/c.csv" --resize 4x4 --max-steps 1 --quiet --out "$T/never"
[ -e "$T/never" ] && bad "a refused run created its --out" || ok

# --- the commands that read images default to the model's own data, options and split:
# a PNG-folder model (12 of 48 held out, seed 9) and a CSV model (label first, 10 of 40
# held out, seed 4), with no data flags
"$GEN" csv "$T/own.csv" 40 16 first 255 1 6
"$VAE" train --data "$T/own.csv" --csv-label first --test-fraction 0.25 --split-seed 4 --hidden 16 \
    --latent 2 --batch 8 --threads 1 --epochs 1 --quiet --out "$T/csvrun" >/dev/null 2>"$T/err.txt" ||
    bad "CSV model: $(cat "$T/err.txt")"
for run in col:12 csvrun:10; do
    r=${run%:*} n=${run#*:} M=$T/$r/model.safetensors
    # cmd_ok WHAT CMD...: succeeds and says it read n test images
    cmd_ok() {
        local what=$1
        shift
        if "$@" >"$T/out.txt" 2>"$T/err.txt" && grep -q "^data: .*: $n test images" "$T/err.txt"; then ok
        else bad "$r: $what: $(cat "$T/err.txt")"; fi
    }
    cmd_ok reconstruct "$VAE" reconstruct --model "$M" -n 4 -o "$T/$r-r.png"
    cmd_ok interpolate "$VAE" interpolate --model "$M" --from 0 --to $((n - 1)) -o "$T/$r-i.png"
    cmd_ok traverse "$VAE" traverse --model "$M" --image $((n - 1)) -o "$T/$r-t.png"
    cmd_ok embed "$VAE" embed --model "$T/$r" -o "$T/$r-codes.csv" # the run directory works too
    [ "$(wc -l <"$T/$r-codes.csv")" -eq $((n + 1)) ] && ok || bad "$r: embed wrote $(wc -l <"$T/$r-codes.csv") lines"
    "$VAE" manifold --model "$M" --n 3 -o "$T/$r-m.png" 2>"$T/err.txt" && ok || bad "$r: manifold: $(cat "$T/err.txt")"
    "$VAE" eval --model "$M" --k 2 --json --quiet >"$T/e.json" 2>"$T/err.txt" && ok || bad "$r: eval: $(cat "$T/err.txt")"
    grep -q "\"n\":$n," "$T/e.json" && ok || bad "$r: eval read other images: $(cat "$T/e.json")"
    expect_fail "$r: interpolate past the split" "--to $n is out of range: .* holds $n images" \
        "$VAE" interpolate --model "$M" --from 0 --to $n -o "$T/never.png"
done
"$VAE" eval --model "$T/csvrun" --k 2 --quiet | grep -q "^data .*own.csv (test split: held out 25% (seed 4)), 10 images" &&
    ok || bad "CSV model: eval does not say its split"

# --- --help documents the data flags
"$VAE" train --help >"$T/h.txt"
for o in --test-fraction --split-seed --resize --csv-label --csv-header --csv-scale --shape; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "train --help lacks $o with a default"
done
"$VAE" reconstruct --help | grep -q -- "--csv-label" && ok || bad "reconstruct --help lacks the data flags"
report
