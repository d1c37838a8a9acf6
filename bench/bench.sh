#!/usr/bin/env bash
# bench.sh - vae against its PyTorch twin on the same machine, in one run:
# training throughput, useful GFLOP/s against the measured sgemm ceiling, peak
# memory, final test negative ELBO, and start-up time to a first picture.
# The programs run in the order vae, twin, twin, vae and each one's speed is
# the median of its epochs; the ceiling is measured before and after them and
# the larger counts (a shared host's speed drifts by 20-40% within minutes).
# The twin needs PyTorch from Debian (python3-torch, python3-numpy; as root:
# bash scripts/install-deps.sh --bench); without it the twin's columns are skipped.
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
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
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

# the machine's limit: OpenBLAS's best kernel for this CPU. OpenBLAS 0.3.21
# does not know AMD's Zen 5 and gives it its AVX2 (Haswell) kernels, half the
# speed of its AVX-512 ones there; where the CPU has AVX-512, those count too.
CORETYPES=default
grep -qw avx512f /proc/cpuinfo && CORETYPES="default SKYLAKEX"
peak_of() { # $1: core type, $2: threads
    if [ "$1" = default ]; then "$PEAK" "$N" "$2"; else OPENBLAS_CORETYPE=$1 "$PEAK" "$N" "$2"; fi
}
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b > a) ? b : a}'; }
peak() { # $1: threads; the best over CORETYPES
    local best= c
    for c in $CORETYPES; do best=$(max "$best" "$(peak_of "$c" "$1")"); done
    echo "$best"
}
PT=
for c in $CORETYPES; do
    p=$(peak_of "$c" "$THREADS") PT=$(max "$PT" "$p")
    echo "sgemm ceiling (OpenBLAS, ${N}^3, $c kernels): $(peak_of "$c" 1) GFLOP/s on 1 thread, $p GFLOP/s on $THREADS"
done
echo "the GEMMs of a training step alone (batch 128 split over $THREADS threads): $("$BUILD/step_gemms" "$THREADS") GFLOP/s"

# vae, twin, twin, vae (see the top); the twin's thread count is picked first,
# on a short run of each.
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
PROBE=$((EPOCHS < 2 ? EPOCHS : 2))
run_ours() { # $1: run number
    /usr/bin/time -v "$VAE" train --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS" --quiet \
        --out "$T/ours$1" >"$T/ours$1.txt" 2>"$T/ours$1.time"
    awk -F'"seconds":' '{split($2, a, ","); print a[1]}' "$T/ours$1/metrics.jsonl" >>"$T/ours.s"
}
run_twin() { # $1: threads, $2: epochs, $3: name
    /usr/bin/time -v "$PY" scripts/vae_twin.py --data "$DATA" --epochs "$2" --threads "$1" \
        >"$T/$3.txt" 2>"$T/$3.time"
    awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i ~ /s,$/) {sub("s,", "", $i); print $i}}' "$T/$3.txt"
}
BEST_T=
if [ "$HAVE_TORCH" = 1 ]; then
    for t in 1 "$THREADS"; do
        s=$(run_twin "$t" "$PROBE" probe$t | median)
        echo "PyTorch twin, $t thread(s), $PROBE epoch(s): $s s/epoch (median)"
        if [ -z "$BEST_T" ] || awk -v a="$s" -v b="$BEST_PROBE" 'BEGIN {exit !(a < b)}'; then
            BEST_T=$t BEST_PROBE=$s
        fi
        [ "$t" = "$THREADS" ] && break
    done
fi
run_ours 1
[ "$HAVE_TORCH" = 1 ] && run_twin "$BEST_T" "$EPOCHS" twin1 >"$T/twin.s" && run_twin "$BEST_T" "$EPOCHS" twin2 >>"$T/twin.s"
run_ours 2
# the ceiling again after the runs; the larger of the two counts (the clock drifts too)
PT2=$(peak "$THREADS")
echo "sgemm ceiling on $THREADS threads after the runs: $PT2 GFLOP/s"
PT=$(max "$PT" "$PT2")
mean() { awk '{s += $1} END {printf "%.3f", s / NR}'; }
echo "vae: $(head -n "$EPOCHS" "$T/ours.s" | mean) and $(tail -n "$EPOCHS" "$T/ours.s" | mean) s/epoch (means of runs 1 and 2)"
OURS_S=$(median <"$T/ours.s" | xargs printf "%.3f")
OURS_ELBO=$(tail -1 "$T/ours1/metrics.jsonl" | sed 's/.*"test_loss":\([0-9.]*\).*/\1/')
OURS_RSS=$(rss "$T/ours1.time")
IMAGES=$(sed -n 's/.* on \([0-9]*\) images.*/\1/p' "$T/ours1.time" | head -1)
# useful work: multiply-adds of the forward pass (sum of in*out over layers) and
# of the backward pass (twice that, less the input layer's input gradient)
MACS_F=$((784 * 400 + 400 * 40 + 20 * 400 + 400 * 784))
FLOP_IMG=$((2 * (MACS_F + 2 * MACS_F - 784 * 400)))
GFLOPS=$(awk -v f="$FLOP_IMG" -v n="$IMAGES" -v s="$OURS_S" 'BEGIN {printf "%.1f", f * n / s * 1e-9}')
FRAC=$(awk -v g="$GFLOPS" -v p="$PT" 'BEGIN {printf "%.0f", 100 * g / p}')
BEST_S= TWIN_ELBO= TWIN_RSS=
if [ "$HAVE_TORCH" = 1 ]; then
    echo "PyTorch twin, $BEST_T thread(s): $(head -n "$EPOCHS" "$T/twin.s" | mean) and $(tail -n "$EPOCHS" "$T/twin.s" | mean) s/epoch (means of runs 1 and 2)"
    BEST_S=$(median <"$T/twin.s" | xargs printf "%.3f")
    TWIN_ELBO=$(tail -1 "$T/twin1.txt" | sed 's/.*-elbo \([0-9.]*\).*/\1/')
    TWIN_RSS=$(rss "$T/twin1.time")
fi

# start-up to a first picture
SAMPLE_MS=$(ms_of "$VAE" sample --model "$T/ours/model.safetensors" -o "$T/s.png")
TORCH_MS=$("$PY" -c 'import torch' 2>/dev/null && ms_of "$PY" -c 'import torch' || echo "-")

echo
echo "| | vae ($THREADS threads) | PyTorch twin (best: ${BEST_T:-n/a} thread(s)) | ratio |"
echo "|---|---|---|---|"
if [ -n "$BEST_S" ]; then
    echo "| seconds per epoch (median of $((2 * EPOCHS))) | $OURS_S | $BEST_S | $(awk -v a="$BEST_S" -v b="$OURS_S" 'BEGIN {printf "%.2fx faster", a / b}') |"
    echo "| images per second | $(awk -v n="$IMAGES" -v s="$OURS_S" 'BEGIN {printf "%.0f", n / s}') | $(awk -v n="$IMAGES" -v s="$BEST_S" 'BEGIN {printf "%.0f", n / s}') | |"
    echo "| peak resident memory (MB) | $OURS_RSS | $TWIN_RSS | $(awk -v a="$TWIN_RSS" -v b="$OURS_RSS" 'BEGIN {printf "%.1fx less", a / b}') |"
    echo "| final test -ELBO (nats) | $OURS_ELBO | $TWIN_ELBO | $(awk -v a="$OURS_ELBO" -v b="$TWIN_ELBO" 'BEGIN {printf "%+.2f", a - b}') |"
else
    echo "| seconds per epoch (median of $((2 * EPOCHS))) | $OURS_S | (no python3-torch) | |"
    echo "| peak resident memory (MB) | $OURS_RSS | | |"
    echo "| final test -ELBO (nats) | $OURS_ELBO | | |"
fi
echo "| useful GFLOP/s | $GFLOPS ($FRAC% of the $PT GFLOP/s sgemm ceiling) | | |"
echo "| start-up to first output (ms) | vae sample: $SAMPLE_MS | import torch: $TORCH_MS | |"
