#!/usr/bin/env bash
# compare_models.sh - trains every member of the model family with one budget
# and seed on the same data and prints a Markdown table of their test numbers:
# reconstruction term, KL (or the member's regulariser), negative ELBO where
# defined, active units and training time.
#
#   bash scripts/compare_models.sh [--epochs 10] [--data DIR] [--vae build/vae] [--out DIR]
set -euo pipefail
EPOCHS=10 DATA=/usr/share/datasets/fashion-mnist VAE=build/vae OUT=runs/compare
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --vae) VAE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--epochs N] [--data DIR] [--vae PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"

# name | flags (the defaults otherwise: MLP 784-400-[20], Bernoulli, batch 128, seed 1)
MEMBERS=(
    "VAE|--model vae"
    "VAE, conv (32,64 channels)|--model vae --arch conv"
    "beta-VAE, beta 4|--model vae --beta 4"
    "VAE, linear warm-up over 5 epochs|--model vae --beta-schedule linear:5"
    "VAE, cyclical beta (period 4 epochs)|--model vae --beta-schedule cyclical:4"
    "VAE, free bits 0.25|--model vae --free-bits 0.25"
    "IWAE, k 5|--model iwae --k 5"
    "CVAE|--model cvae"
    "VAE, continuous Bernoulli|--model vae --likelihood continuous-bernoulli"
    "VAE, Gaussian, learned sigma|--model vae --likelihood gaussian --sigma learned"
    "AE|--model ae"
    "sparse AE, l1 0.01|--model sparse-ae --l1 0.01"
    "denoising AE, mask 0.3|--model dae --noise mask:0.3"
)
printf '| member | flags | test rec | test KL (reg.) | test −ELBO | active units | time (s) |\n'
printf '|---|---|---|---|---|---|---|\n'
for entry in "${MEMBERS[@]}"; do
    name=${entry%%|*} flags=${entry#*|}
    dir=$OUT/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
    rm -rf "$dir"
    # shellcheck disable=SC2086
    "$VAE" train --data "$DATA" --epochs "$EPOCHS" $flags --out "$dir" --quiet >"$dir.log" 2>&1 ||
        { echo "| $name | \`$flags\` | failed: $(tail -1 "$dir.log") |"; continue; }
    last=$(tail -1 "$dir/metrics.jsonl")
    num() { echo "$last" | grep -o "\"$1\":[-0-9.e]*" | cut -d: -f2; }
    secs=$(grep -o '"seconds":[0-9.]*' "$dir/metrics.jsonl" | cut -d: -f2 | paste -sd+ | bc)
    rec=$(num test_rec) kl=$(num test_kl) au=$(num active_units)
    case $flags in
    *"model ae"*|*sparse-ae*|*dae*) elbo="—" ;;
    *iwae*) elbo="$(grep -o 'test: -iwae [0-9.-]*' "$dir.log" | tail -1 | awk '{print $3}') (IWAE bound)" ;;
    *) elbo=$(printf '%.2f' "$(echo "$rec + $kl" | bc -l)") ;;
    esac
    printf '| %s | `%s` | %.2f | %.2f | %s | %s / 20 | %.1f |\n' "$name" "$flags" "$rec" "$kl" "$elbo" "$au" "$secs"
done
