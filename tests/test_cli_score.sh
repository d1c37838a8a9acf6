#!/usr/bin/env bash
# test_cli_score.sh VAE TESTS_DATA_DIR - `vae classifier train` and `vae
# score` end to end on the shipped subset: help texts, the classifier's file
# and its accuracy, the score table and valid JSON with the reference points
# in order. Not under valgrind (training a conv net there takes minutes).
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-cli-score
. "$(dirname "$0")/lib.sh"

jget() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a + 0 < b + 0)}'; }

"$VAE" --help | grep -q "score" && ok || bad "vae --help lacks score"
"$VAE" classifier train --help >"$T/h.txt" && ok || bad "classifier train --help exit"
for o in --data --out --epochs --batch --lr --seed --threads; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "classifier train --help lacks $o with a default"
done
"$VAE" score --help >"$T/h.txt" && ok || bad "score --help exit"
for o in --model --classifier "--n N" "--k K" --seed --threads --batch; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "score --help lacks $o with a default"
done

# --- a classifier (1 epoch: about 72% on the subset) and a tiny model
"$VAE" classifier train --data "$DATA" --epochs 1 --out "$T/c.safetensors" >"$T/c.txt" 2>"$T/c_err.txt" &&
    ok || bad "classifier train exit: $(cat "$T/c_err.txt")"
grep -qE "^test accuracy [0-9.]+% \(500 test images\) after 1 epoch," "$T/c.txt" && ok ||
    bad "classifier train output: $(cat "$T/c.txt")"
grep -q "epoch 1/1 .*test accuracy" "$T/c_err.txt" && ok || bad "no epoch line: $(cat "$T/c_err.txt")"
"$VAE" train --data "$DATA" --epochs 1 --hidden 32 --latent 3 --batch 100 --threads 1 --quiet \
    --out "$T/run" >/dev/null 2>"$T/err.txt" || { echo "cannot train: $(cat "$T/err.txt")" >&2; exit 1; }

# --- the table, and JSON with the reference points
"$VAE" score --model "$T/run" --classifier "$T/c.safetensors" --n 300 >"$T/s.txt" 2>"$T/s_err.txt"
[ $? -eq 0 ] && ok || bad "score exit: $(cat "$T/s_err.txt")"
for w in "frechet" "N = 300" "reconstructions" "mean entropy" "k-NN (k = 5)" "ridge probe"; do
    grep -q -- "$w" "$T/s.txt" && ok || bad "score table lacks '$w': $(cat "$T/s.txt")"
done
"$VAE" score --model "$T/run" --classifier "$T/c.safetensors" --n 300 --reference --json \
    >"$T/s.json" 2>/dev/null && ok || bad "score --json exit"
acc=$(jget "$T/s.json" classifier_test_accuracy)
lt 0.5 "$acc" && ok || bad "classifier accuracy $acc"
lt "$(jget "$T/s.json" fd_train)" "$(jget "$T/s.json" fd_samples)" && ok || bad "samples below the floor"
lt "$(jget "$T/s.json" fd_blur_0.5)" "$(jget "$T/s.json" fd_blur_2)" && ok || bad "blur not rising"
lt "$(jget "$T/s.json" fd_noise_0.05)" "$(jget "$T/s.json" fd_noise_0.2)" && ok || bad "noise not rising"
[ "$(jget "$T/s.json" label_agreement)" = null ] && ok || bad "label agreement for an unconditional model"
lt 0.1 "$(jget "$T/s.json" knn_accuracy)" && ok || bad "k-NN at chance"

report
