#!/usr/bin/env bash
# compare_rich.sh - the richer members against the plain VAE as the
# literature measures them: dynamically binarised Fashion-MNIST, MLP 300-300,
# latent 40 (the HVAE's 40,40), KL warm-up over the first half of the epochs,
# seed 1; then the test NLL by importance sampling (vae eval --k) on the 10 000
# test images. Prints a Markdown table (docs/models.md has the 200-epoch one).
# Row twin: scripts/vae_twin.py's HVAE + VampPrior with hvae-vamp's settings,
# its weights scored by the same vae eval (needs Debian's python3-torch).
# Rows run --jobs at a time with --threads each: on 2 cores, 2 jobs of 1
# thread keep both busy without the threads meeting at barriers.
#
#   bash scripts/compare_rich.sh [--epochs 200] [--k 5000] [--jobs 2] [--threads 1]
#                                [--data DIR] [--vae build/vae] [--out DIR] [--rows "vae vamp ..."]
set -euo pipefail
EPOCHS=200 K=5000 JOBS=2 THREADS=1 DATA=/usr/share/datasets/fashion-mnist VAE=build/vae
OUT=runs/rich ROWS="vae vamp hvae hvae-vamp planar householder"
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --k) K=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --vae) VAE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "compare_rich.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
flags_of() {
    case $1 in
    vae) echo "--latent 40" ;;
    vamp) echo "--latent 40 --prior vamp:500" ;;
    hvae) echo "--model hvae --latent 40,40" ;;
    hvae-vamp) echo "--model hvae --latent 40,40 --prior vamp:500" ;;
    planar) echo "--latent 40 --flow planar:8" ;;
    householder) echo "--latent 40 --flow householder:8" ;;
    twin) flags_of hvae-vamp ;;
    *) echo "compare_rich.sh: unknown row '$1' (vae vamp hvae hvae-vamp planar householder twin)" >&2
       exit 2 ;;
    esac
}
for r in $ROWS; do flags_of "$r" >/dev/null; done
mkdir -p "$OUT"

WARM=$((EPOCHS / 2 > 0 ? EPOCHS / 2 : 1))
train_vae() { # $1: row name, then vae train's extra flags
    local r=$1
    shift
    # shellcheck disable=SC2046
    /usr/bin/time -f "train %e s %M KB" "$VAE" train --data "$DATA" --binarize dynamic \
        --hidden 300,300 --epochs "$EPOCHS" --beta-schedule "linear:$WARM" --seed 1 \
        --threads "$THREADS" --quiet --force $(flags_of "$r") "$@"
}
# shellcheck disable=SC2046 # flags_of's words; vae_twin.py takes vae's flag names
train_twin() { # the twin writes its weights under a 1-step vae model's settings
    train_vae twin --max-steps 1 --out "$OUT/twin-settings" >/dev/null 2>&1 &&
        /usr/bin/time -f "train %e s %M KB" /usr/bin/python3 "$(dirname "$0")/vae_twin.py" \
            --data "$DATA" --hidden 300,300 $(flags_of twin) --binarize dynamic \
            --epochs "$EPOCHS" --beta-schedule "linear:$WARM" --seed 1 --threads "$THREADS" \
            --save "$OUT/twin.safetensors" --meta-from "$OUT/twin-settings/checkpoint.safetensors"
}
row() { # $1: row name; trains, then evaluates, logging to $OUT/$1.log
    local model=$OUT/$1 train=(train_vae "$1" --out "$OUT/$1")
    if [ "$1" = twin ]; then model=$OUT/twin.safetensors train=(train_twin); fi
    "${train[@]}" >"$OUT/$1.log" 2>&1 &&
        /usr/bin/time -f "eval %e s %M KB" "$VAE" eval --model "$model" --binarize dynamic --k "$K" \
            --threads "$THREADS" >>"$OUT/$1.log" 2>&1 ||
        echo "compare_rich.sh: row $1 failed: $(tail -1 "$OUT/$1.log")" >&2
}
n=0
for r in $ROWS; do
    row "$r" &
    n=$((n + 1))
    if [ "$n" -ge "$JOBS" ]; then wait -n || true; n=$((n - 1)); fi
done
wait

val() { grep -o "^$2 *[-0-9.]*" "$OUT/$1.log" | tail -1 | awk '{print $NF}'; }
secs() { grep -o "^$2 [0-9.]* s" "$OUT/$1.log" | awk '{print $2}'; }
base=$(val vae nll 2>/dev/null || true)
printf '| model | flags | test −ELBO | test NLL (k = %s) | NLL − VAE | active units | training (s) |\n' "$K"
printf '|---|---|---|---|---|---|---|\n'
for r in $ROWS; do
    nll=$(val "$r" nll) elbo=$(val "$r" -elbo)
    au=$(grep -o "^active units *[0-9]* of [0-9]*" "$OUT/$r.log" | awk '{print $3 " / " $5}')
    gap=
    if [ -n "$base" ] && [ "$r" != vae ]; then
        gap=$(awk -v a="$nll" -v b="$base" 'BEGIN {printf "%+.2f", a - b}')
    fi
    # shellcheck disable=SC2016 # the backquotes are Markdown's
    printf '| %s | `%s` | %s | %s | %s | %s | %s |\n' "$r" "$(flags_of "$r")" "$elbo" "$nll" "$gap" "$au" \
        "$(secs "$r" train)"
done
