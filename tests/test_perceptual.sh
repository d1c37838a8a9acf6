#!/usr/bin/env bash
# test_perceptual.sh - vae train --perceptual: its bad input (one line each,
# nothing written), its effect, bits reproducible for a thread count, exact
# resume with the classifier checked byte for byte, weight 0 the plain run.
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-perceptual
. "$(dirname "$0")/lib.sh"
train() { "$VAE" train --data "$DATA" --hidden 32 --latent 4 --batch 100 --threads 2 --quiet "$@"; }
numbers() { sed 's/,"seconds".*//' "$1"; } # metrics without the timing columns
C=$T/cls.safetensors
"$VAE" classifier train --data "$DATA" --epochs 1 --quiet --out "$C" >/dev/null 2>&1 && ok || bad "classifier"

# bad input: one line naming the problem, no --out left behind
O=$T/never
expect_fail "missing classifier" "nope.safetensors: cannot read the --perceptual classifier" \
    train --epochs 1 --out "$O" --perceptual "$T/nope.safetensors"
expect_fail "unknown layer" "unknown layer 'conv3'" train --epochs 1 --out "$O" --perceptual "$C:conv3"
expect_fail "negative weight" "weight -1: need a number" train --epochs 1 --out "$O" --perceptual "$C:-1"
expect_fail "layers and a bad weight" "weight -0.5" train --epochs 1 --out "$O" --perceptual "$C:fc1:-0.5"
expect_fail "no file" "no classifier file" train --epochs 1 --out "$O" --perceptual ":conv1"
expect_fail "not a classifier" "README.md: not a safetensors file" train --epochs 1 --out "$O" --perceptual "$DATA/README.md"
expect_fail "iwae k > 1" "not --model iwae with --k > 1" \
    train --epochs 1 --out "$O" --model iwae --perceptual "$C"
# another image shape: a 10x10 CSV data set
awk 'BEGIN { srand(1); for (i = 0; i < 20; i++) { l = int(rand() * 10); for (j = 0; j < 100; j++) l = l "," int(rand() * 255); print l } }' >"$T/d.csv"
expect_fail "another image shape" "reads 1x28x28 images, the data are 1x10x10" \
    "$VAE" train --data "$T/d.csv" --csv-label first --epochs 1 --quiet --out "$O" --perceptual "$C"
[ -e "$O" ] && bad "a refused run left $O" || ok

# the term changes training; the same bits again for the thread count
train --epochs 2 --out "$T/plain" >/dev/null 2>&1 && ok || bad "plain run"
train --epochs 2 --out "$T/p1" --perceptual "$C:conv1,fc1:0.05" >/dev/null 2>"$T/err" && ok || bad "perceptual run: $(cat "$T/err")"
train --epochs 2 --out "$T/p2" --perceptual "$C:conv1,fc1:0.05" >/dev/null 2>&1
cmp -s "$T/p1/model.safetensors" "$T/p2/model.safetensors" && ok || bad "perceptual: not reproducible"
[ "$(numbers "$T/p1/metrics.jsonl")" != "$(numbers "$T/plain/metrics.jsonl")" ] && ok || bad "perceptual: no effect"
# weight 0: the plain run's numbers (the checkpoints differ in their metadata only)
train --epochs 2 --out "$T/zero" --perceptual "$C:0" >/dev/null 2>&1
[ "$(numbers "$T/zero/metrics.jsonl")" = "$(numbers "$T/plain/metrics.jsonl")" ] && ok || bad "weight 0 differs from none"
"$VAE" info "$T/p1/model.safetensors" 2>&1 | grep -q "cls.safetensors:conv1,fc1:0.05" && ok || bad "info lacks train.perceptual"

# stopped mid-epoch and resumed: the same bits; the classifier is the checkpoint's
train --epochs 2 --out "$T/mid" --perceptual "$C:conv1,fc1:0.05" --max-steps 7 >/dev/null 2>&1
"$VAE" train --resume "$T/mid" --quiet >/dev/null 2>"$T/err" && ok || bad "resume: $(cat "$T/err")"
cmp -s "$T/p1/model.safetensors" "$T/mid/model.safetensors" && ok || bad "resume: weights differ"
cmp -s "$T/p1/checkpoint.safetensors" "$T/mid/checkpoint.safetensors" && ok || bad "resume: checkpoints differ"
train --epochs 2 --out "$T/mid2" --perceptual "$C:conv1,fc1:0.05" --max-steps 7 >/dev/null 2>&1
expect_fail "resume: --perceptual given" "--perceptual cannot be changed when resuming" \
    "$VAE" train --resume "$T/mid2" --quiet --perceptual "$C"
cp "$C" "$T/cls.keep"
"$VAE" classifier train --data "$DATA" --epochs 1 --seed 2 --quiet --out "$C" >/dev/null 2>&1
expect_fail "resume: another classifier" "cls.safetensors: not the classifier this run was trained with" \
    "$VAE" train --resume "$T/mid2" --quiet
rm "$C"
expect_fail "resume: classifier gone" "cls.safetensors: cannot read the --perceptual classifier" \
    "$VAE" train --resume "$T/mid2" --quiet
report
