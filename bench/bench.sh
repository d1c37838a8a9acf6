#!/usr/bin/env bash
# bench.sh - vae against its PyTorch twin on the same machine, in one run:
# training throughput, useful GFLOP/s against the measured sgemm ceiling, peak
# memory, final test negative ELBO, and start-up time to a first picture.
#
#   bench/bench.sh [--epochs N] [--data DIR] [--threads T] [--build DIR] [--smoke]
#
# --smoke: the shipped test subset, 1 epoch, a small sgemm: checks that the
# benchmark runs (CI), not how fast anything is.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=10 DATA=/usr/share/datasets/fashion-mnist BUILD=build THREADS=$(nproc) SMOKE=0 N=2048
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --smoke) SMOKE=1 EPOCHS=1 DATA=tests/data/fmnist-small N=256; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PEAK=$BUILD/sgemm_peak PY=/usr/bin/python3
[ -x "$VAE" ] && [ -x "$PEAK" ] || { echo "bench.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
T=$(mktemp -d /tmp/vae-bench-XXXXXX)
trap 'rm -rf "$T"' EXIT

# peak RSS in MB from /usr/bin/time -v output
rss() { awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ms_of() { # median wall time in ms of a command over 5 runs
    for _ in 1 2 3 4 5; do
        local t0 t1
        t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000000))
    done | median
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "data: $DATA, $EPOCHS epoch(s), default model 784-400-20-400-784, batch 128"

# the machine's limit
P1=$("$PEAK" "$N" 1) PT=$("$PEAK" "$N" "$THREADS")
echo "sgemm ceiling (OpenBLAS, ${N}^3): $P1 GFLOP/s on 1 thread, $PT GFLOP/s on $THREADS"
echo "the GEMMs of a training step alone (batch 128 split over $THREADS threads): $("$BUILD/step_gemms" "$THREADS") GFLOP/s"

# ours
/usr/bin/time -v "$VAE" train --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS" --quiet \
    --out "$T/ours" >"$T/ours.txt" 2>"$T/ours.time"
OURS_S=$(awk -F'"seconds":' '{split($2, a, ","); s += a[1]} END {printf "%.3f", s / NR}' "$T/ours/metrics.jsonl")
OURS_ELBO=$(tail -1 "$T/ours/metrics.jsonl" | sed 's/.*"test_loss":\([0-9.]*\).*/\1/')
OURS_RSS=$(rss "$T/ours.time")
IMAGES=$(sed -n 's/.* on \([0-9]*\) images.*/\1/p' "$T/ours.time" | head -1)
# useful work: multiply-adds of the forward pass (sum of in*out over layers) and
# of the backward pass (twice that, less the input layer's input gradient)
MACS_F=$((784 * 400 + 400 * 40 + 20 * 400 + 400 * 784))
FLOP_IMG=$((2 * (MACS_F + 2 * MACS_F - 784 * 400)))
GFLOPS=$(awk -v f="$FLOP_IMG" -v n="$IMAGES" -v s="$OURS_S" 'BEGIN {printf "%.1f", f * n / s * 1e-9}')
FRAC=$(awk -v g="$GFLOPS" -v p="$PT" 'BEGIN {printf "%.0f", 100 * g / p}')

# the twin, with 1 thread and with all (oversubscription can make more slower)
BEST_S= BEST_T= TWIN_ELBO= TWIN_RSS=
if "$PY" -c 'import torch' 2>/dev/null; then
    for t in 1 "$THREADS"; do
        /usr/bin/time -v "$PY" scripts/vae_twin.py --data "$DATA" --epochs "$EPOCHS" --threads "$t" \
            >"$T/twin$t.txt" 2>"$T/twin$t.time"
        s=$(awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i ~ /s,$/) {sub("s,", "", $i); s += $i; n++}} END {printf "%.3f", s / n}' "$T/twin$t.txt")
        echo "PyTorch twin, $t thread(s): $s s/epoch"
        if [ -z "$BEST_S" ] || awk -v a="$s" -v b="$BEST_S" 'BEGIN {exit !(a < b)}'; then
            BEST_S=$s BEST_T=$t
            TWIN_ELBO=$(tail -1 "$T/twin$t.txt" | sed 's/.*-elbo \([0-9.]*\).*/\1/')
            TWIN_RSS=$(rss "$T/twin$t.time")
        fi
        [ "$t" = "$THREADS" ] && break
    done
fi

# start-up to a first picture
SAMPLE_MS=$(ms_of "$VAE" sample --model "$T/ours/model.safetensors" -o "$T/s.png")
TORCH_MS=$("$PY" -c 'import torch' 2>/dev/null && ms_of "$PY" -c 'import torch' || echo "-")

echo
echo "| | vae ($THREADS threads) | PyTorch twin (best: ${BEST_T:-n/a} thread(s)) | ratio |"
echo "|---|---|---|---|"
if [ -n "$BEST_S" ]; then
    echo "| seconds per epoch | $OURS_S | $BEST_S | $(awk -v a="$BEST_S" -v b="$OURS_S" 'BEGIN {printf "%.2fx faster", a / b}') |"
    echo "| images per second | $(awk -v n="$IMAGES" -v s="$OURS_S" 'BEGIN {printf "%.0f", n / s}') | $(awk -v n="$IMAGES" -v s="$BEST_S" 'BEGIN {printf "%.0f", n / s}') | |"
    echo "| peak resident memory (MB) | $OURS_RSS | $TWIN_RSS | $(awk -v a="$TWIN_RSS" -v b="$OURS_RSS" 'BEGIN {printf "%.1fx less", a / b}') |"
    echo "| final test -ELBO (nats) | $OURS_ELBO | $TWIN_ELBO | $(awk -v a="$OURS_ELBO" -v b="$TWIN_ELBO" 'BEGIN {printf "%+.2f", a - b}') |"
else
    echo "| seconds per epoch | $OURS_S | (no python3-torch) | |"
    echo "| peak resident memory (MB) | $OURS_RSS | | |"
    echo "| final test -ELBO (nats) | $OURS_ELBO | | |"
fi
echo "| useful GFLOP/s | $GFLOPS ($FRAC% of the $PT GFLOP/s sgemm ceiling) | | |"
echo "| start-up to first output (ms) | vae sample: $SAMPLE_MS | import torch: $TORCH_MS | |"
