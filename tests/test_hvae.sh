#!/usr/bin/env bash
# test_hvae.sh VAE TESTS_DATA_DIR PNG_CHECK - the hierarchical VAE (--model
# hvae) through the CLI on the shipped subset: training with either prior on
# z2, a run stopped mid-epoch and resumed ends in the bytes of a straight run,
# vae info names both layers, eval (k = 5000 too), sample and reconstruct
# work (PNGs not blank); bad combinations give one clear line and no output.
set -u
VAE=$1
DATA=$2/fmnist-small
PNGCHECK=$3
NAME=test-hvae
. "$(dirname "$0")/lib.sh"

png_ok() {
    local info
    info=$("$PNGCHECK" "$1" 2>/dev/null) || { bad "$1: not a PNG"; return; }
    set -- $info
    if [ "${3:-0}" -gt 1 ]; then ok; else bad "$1: blank ($info)"; fi
}

F=(--data "$DATA" --model hvae --latent 6,4 --hidden 16 --batch 100 --threads 2 --quiet)
for prior in standard vamp:5; do
    p=${prior%%:*}
    "$VAE" train "${F[@]}" --prior "$prior" --epochs 1 --out "$T/$p" >/dev/null 2>"$T/$p.err" ||
        bad "train $prior: $(cat "$T/$p.err")"
    grep -q '"test_loss":[0-9.]*' "$T/$p/metrics.jsonl" && ok || bad "$prior: no test -elbo"
    # stopped after 10 steps (mid-epoch 1), resumed: the same bytes
    "$VAE" train "${F[@]}" --prior "$prior" --epochs 1 --max-steps 10 --out "$T/$p-r" >/dev/null 2>&1
    "$VAE" train --resume "$T/$p-r" --epochs 1 --quiet >/dev/null 2>"$T/r.err" || bad "resume: $(cat "$T/r.err")"
    cmp -s "$T/$p/checkpoint.safetensors" "$T/$p-r/checkpoint.safetensors" && ok ||
        bad "$prior: resumed checkpoint differs"
    "$VAE" eval --model "$T/$p" -n 20 --k 100 >"$T/e.txt" 2>&1 || bad "eval: $(cat "$T/e.txt")"
    grep -q "^nll           [0-9.]* nats per image (importance-sampled, k = 100" "$T/e.txt" && ok ||
        bad "$prior eval: $(cat "$T/e.txt")"
    grep -q "^model .*(latent z1 6, z2 4; the units below are z2's)" "$T/e.txt" && ok ||
        bad "$prior eval names the layers: $(head -1 "$T/e.txt")"
    "$VAE" sample --model "$T/$p" -n 4 -o "$T/$p-s.png" 2>/dev/null || bad "sample"
    png_ok "$T/$p-s.png"
    "$VAE" reconstruct --model "$T/$p" -n 4 -o "$T/$p-r.png" 2>/dev/null || bad "reconstruct"
    png_ok "$T/$p-r.png"
done
"$VAE" eval --model "$T/vamp" -n 2 --k 5000 >"$T/e.txt" 2>&1 || bad "eval k 5000: $(cat "$T/e.txt")"
grep -q "k = 5000" "$T/e.txt" && ok || bad "eval k 5000: $(cat "$T/e.txt")"
# the importance-sampled bound is at least the ELBO, per image on average
awk '/^-elbo/{e=$2} /^nll/{n=$2} END{exit !(n <= e)}' "$T/e.txt" && ok || bad "nll above -elbo: $(cat "$T/e.txt")"
"$VAE" info "$T/vamp" >"$T/info.txt" 2>&1 || bad "info"
grep -q "^model        hvae" "$T/info.txt" && ok || bad "info: $(cat "$T/info.txt")"
grep -q "784-16-\[z1 6, z2 4, VampPrior K=5\]-16-784 MLP" "$T/info.txt" && ok || bad "info: $(cat "$T/info.txt")"

# bad combinations: one line, no output
expect_fail one "--model hvae needs two latent sizes" "$VAE" train "${F[@]}" --latent 8 --out "$T/x"
expect_fail two "--latent L1,L2 \(two stochastic layers\) applies to --model hvae only" "$VAE" train --data "$DATA" --latent 4,4 --out "$T/x"
expect_fail conv "--model hvae is built for --arch mlp only" "$VAE" train "${F[@]}" --arch conv --out "$T/x"
expect_fail flow "--flow cannot be combined with --model hvae" "$VAE" train "${F[@]}" --flow planar:2 --out "$T/x"
expect_fail fb "--free-bits cannot be combined with --model hvae" "$VAE" train "${F[@]}" --free-bits 0.1 --out "$T/x"
expect_fail k "--k applies to --model iwae only" "$VAE" train "${F[@]}" --k 3 --out "$T/x"
expect_fail lat0 "--latent" "$VAE" train "${F[@]}" --latent 0,4 --out "$T/x"
[ -e "$T/x" ] && bad "a refused run left $T/x" || ok
report
