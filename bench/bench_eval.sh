#!/usr/bin/env bash
# bench_eval.sh - `vae eval` against the same computation in PyTorch
# (scripts/eval_twin.py) on the same machine, in one run: importance-sampled
# NLL with k samples over the test split, time, images/s, decoder GFLOP/s.
# The twin needs PyTorch from Debian (python3-torch, python3-numpy; as root:
# bash scripts/install-deps.sh --bench); without it the twin's columns are skipped.
#
#   bench/bench_eval.sh [--k 1000] [--model M] [--data DIR] [-n N] [--threads T]
#                       [--build DIR] [--smoke]
#
# Without --model it first trains the default model for 2 epochs. The twin
# is probed on 200 images with 1 and T threads (PyTorch can be slower with
# more) and runs the full evaluation with the faster. --smoke: the shipped
# subset, k = 20, a tiny model: checks that the benchmark runs, not speed.
set -euo pipefail
cd "$(dirname "$0")/.."
K=1000 MODEL= DATA=/usr/share/datasets/fashion-mnist N=0 THREADS=$(nproc) BUILD=build SMOKE=0
while [ $# -gt 0 ]; do
    case $1 in
    --k) K=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --smoke) SMOKE=1 K=20 DATA=tests/data/fmnist-small; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench_eval.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PY=/usr/bin/python3
[ -x "$VAE" ] || { echo "bench_eval.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
T=$(mktemp -d /tmp/vae-bench-eval-XXXXXX)
trap 'rm -rf "$T"' EXIT
jget() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1"; }
rss() { awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }

echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "$MODEL" ]; then
    if [ "$SMOKE" = 1 ]; then
        "$VAE" train --data "$DATA" --epochs 1 --hidden 32 --latent 4 --batch 100 --quiet --out "$T/m" >/dev/null 2>&1
    else
        "$VAE" train --data "$DATA" --epochs 2 --quiet --out "$T/m" >/dev/null 2>&1
    fi
    MODEL=$T/m/model.safetensors
fi
ARCH=$("$VAE" info "$MODEL" | awk '/^architecture/ {print $2}')
# decoder multiply-adds per sample: the widths after [d], in pairs
MACS=$(echo "$ARCH" | awk -F'-' '{dec = 0; for (i = 1; i <= NF; i++) if ($i ~ /\[/) {gsub(/[\[\]]/, "", $i); dec = i}
    for (i = dec; i < NF; i++) s += $i * $(i + 1); print s}')
echo "model: $MODEL ($ARCH); data: $DATA; k = $K; decoder $MACS multiply-adds per sample"

# ours
/usr/bin/time -v "$VAE" eval --model "$MODEL" --data "$DATA" --k "$K" -n "$N" --threads "$THREADS" \
    --json --quiet >"$T/ours.json" 2>"$T/ours.time"
IMAGES=$(jget "$T/ours.json" n) OURS_S=$(jget "$T/ours.json" seconds)
gflops() { awk -v m="$MACS" -v n="$IMAGES" -v k="$K" -v s="$1" 'BEGIN {printf "%.1f", 2 * m * n * k / s * 1e-9}'; }
printf "vae eval (%s threads):   %8.2f s  %7.1f images/s  %6.1f GFLOP/s  nll %.3f  -elbo %.3f  peak RSS %s MB\n" \
    "$THREADS" "$OURS_S" "$(awk -v n="$IMAGES" -v s="$OURS_S" 'BEGIN {print n / s}')" "$(gflops "$OURS_S")" \
    "$(jget "$T/ours.json" nll)" "$(jget "$T/ours.json" neg_elbo)" "$(rss "$T/ours.time")"

# the twin
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "PyTorch twin: skipped (no python3-torch)"
    exit 0
fi
# torch's own threads (OpenMP) and its OpenBLAS's (pthreads) are set apart:
# probe each combination, keep the fastest
BEST= BEST_S=
for t in 1 "$THREADS"; do
    for b in 1 "$THREADS"; do
        OPENBLAS_NUM_THREADS=$b "$PY" scripts/eval_twin.py --model "$MODEL" --data "$DATA" --k "$K" \
            -n 200 --threads "$t" >"$T/probe.json"
        s=$(jget "$T/probe.json" seconds)
        echo "PyTorch twin probe, 200 images, torch threads $t, OpenBLAS threads $b: $s s"
        if [ -z "$BEST_S" ] || awk -v a="$s" -v c="$BEST_S" 'BEGIN {exit !(a < c)}'; then BEST_S=$s BEST="$t $b"; fi
        [ "$b" = "$THREADS" ] && break
    done
    [ "$t" = "$THREADS" ] && break
done
set -- $BEST
BEST_T=$1
OPENBLAS_NUM_THREADS=$2 /usr/bin/time -v "$PY" scripts/eval_twin.py --model "$MODEL" --data "$DATA" --k "$K" -n "$N" \
    --threads "$1" >"$T/twin.json" 2>"$T/twin.time"
TWIN_S=$(jget "$T/twin.json" seconds)
printf "PyTorch twin (%s threads):   %8.2f s  %7.1f images/s  %6.1f GFLOP/s  nll %.3f  -elbo %.3f  peak RSS %s MB\n" \
    "$BEST_T+$2" "$TWIN_S" "$(awk -v n="$IMAGES" -v s="$TWIN_S" 'BEGIN {print n / s}')" "$(gflops "$TWIN_S")" \
    "$(jget "$T/twin.json" nll)" "$(jget "$T/twin.json" neg_elbo)" "$(rss "$T/twin.time")"
echo "speed-up: $(awk -v a="$TWIN_S" -v b="$OURS_S" 'BEGIN {printf "%.2f", a / b}')x (target >= 2x); the NLLs differ by Monte Carlo error only (different noise)"
