#!/usr/bin/env bash
# bench_conv.sh - vae against its PyTorch twin at realistic sizes, in one run:
# the default conv VAE on Fashion-MNIST, a 64x64 RGB conv VAE (channels
# 32-64-128-256, latent 128) on a generated image set, and the default MLP.
# For each: seconds per epoch (median of the epochs of runs vae, twin, twin,
# vae), useful GFLOP/s against the measured sgemm ceiling, and peak memory.
# The twin runs with 1 or T threads, whichever was faster on a probe of a
# tenth of an epoch of random images of the same shape (the work per image
# does not depend on the pixels); the 64x64 twin trains on such random
# images throughout, as it cannot read PNG folders.
# The twin needs PyTorch from Debian (python3-torch, python3-numpy; as root:
# bash scripts/install-deps.sh --bench); without it the twin's columns are skipped.
#
#   bench/bench_conv.sh [--epochs 2] [--data DIR] [--threads T] [--build DIR]
#                       [--models "conv rgb64 mlp"] [--rgb-images 2048] [--smoke]
#
# --smoke: the shipped subset, 1 epoch, tiny sets: checks that it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=2 DATA=/usr/share/datasets/fashion-mnist BUILD=build THREADS=$(nproc) N=2048
MODELS="conv rgb64 mlp" RGB=2048 SMOKE=0
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --rgb-images) RGB=$2; shift 2 ;;
    --smoke) SMOKE=1 EPOCHS=1 DATA=tests/data/fmnist-small RGB=64 N=256; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench_conv.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PEAK=$BUILD/sgemm_peak GEN=$BUILD/gen_images PY=/usr/bin/python3
for f in "$VAE" "$PEAK" "$GEN"; do
    [ -x "$f" ] || { echo "bench_conv.sh: $f is missing (cmake --build $BUILD)" >&2; exit 1; }
done
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
T=$(mktemp -d /tmp/vae-bench-conv-XXXXXX)
trap 'rm -rf "$T"' EXIT

rss() { awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b > a) ? b : a}'; }
# the machine's limit: OpenBLAS's best kernels for this CPU (bench.sh says why both)
CORETYPES=default
grep -qw avx512f /proc/cpuinfo && CORETYPES="default SKYLAKEX"
peak() {
    local best= c
    for c in $CORETYPES; do
        if [ "$c" = default ]; then best=$(max "$best" "$("$PEAK" "$N" "$THREADS")")
        else best=$(max "$best" "$(OPENBLAS_CORETYPE=$c "$PEAK" "$N" "$THREADS")"); fi
    done
    echo "$best"
}

# useful FLOPs per image, forward and backward: the multiply-adds of the
# forward pass F, twice that backward, less the first layer's input gradient
conv_flop() { # C H W channels(a,b,..) latent
    awk -v C="$1" -v H="$2" -v W="$3" -v ch="$4" -v d="$5" 'BEGIN {
        n = split(ch, o, ","); c = C; h = H; w = W; f = 0
        for (i = 1; i <= n; i++) {
            h = int(h / 2); w = int(w / 2) # kernel 4, stride 2, padding 1
            m = o[i] * c * 16 * h * w; if (i == 1) first = m
            f += 2 * m; c = o[i] # the transposed convolution back up does as much
        }
        flat = c * h * w; f += flat * 2 * d + d * flat
        printf "%.0f", 2 * (3 * f - first) }'
}
mlp_flop() { echo $((2 * (3 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784) - 784 * 400))); }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
PT=$(peak)
echo "sgemm ceiling on $THREADS threads (OpenBLAS, ${N}^3, best of: $CORETYPES): $PT GFLOP/s"
echo "$EPOCHS epoch(s) per run; vae with $THREADS threads"

# the generated 64x64 RGB set: four classes of shapes
if [[ " $MODELS " == *" rgb64 "* ]]; then
    "$GEN" shapes "$T/shapes" $((RGB / 4)) 64 1
fi

ROWS=
bench_model() { # name
    local m=$1 ours twin shape flop
    case $m in
    conv) ours="--data $DATA --arch conv" twin="--arch conv" shape=1,28,28
          flop=$(conv_flop 1 28 28 32,64 20) ;;
    rgb64) ours="--data $T/shapes --arch conv --hidden 32,64,128,256 --latent 128"
           twin="--arch conv --hidden 32,64,128,256 --latent 128" shape=3,64,64
           flop=$(conv_flop 3 64 64 32,64,128,256 128) ;;
    mlp) ours="--data $DATA" twin="" shape=1,28,28 flop=$(mlp_flop) ;;
    *) echo "bench_conv.sh: unknown model '$m' (conv, rgb64, mlp)" >&2; exit 2 ;;
    esac
    run_ours() { # run number
        # shellcheck disable=SC2086
        /usr/bin/time -v "$VAE" train $ours --epochs "$EPOCHS" --threads "$THREADS" --quiet \
            --out "$T/$m.ours$1" >"$T/$m.ours$1.txt" 2>"$T/$m.ours$1.time"
        awk -F'"seconds":' '{split($2, a, ","); print a[1]}' "$T/$m.ours$1/metrics.jsonl" >>"$T/$m.ours.s"
    }
    run_twin() { # threads, epochs, name, data arguments
        local t=$1 e=$2 name=$3; shift 3
        # shellcheck disable=SC2086
        /usr/bin/time -v "$PY" scripts/vae_twin.py $twin "$@" --epochs "$e" --threads "$t" \
            >"$T/$m.$name.txt" 2>"$T/$m.$name.time"
        awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i ~ /s,$/) {sub("s,", "", $i); print $i}}' "$T/$m.$name.txt"
    }
    run_ours 1
    local images twin_data best_t= best_p= s
    images=$(sed -n 's/.* on \([0-9]*\) images.*/\1/p' "$T/$m.ours1.time" | head -1)
    if [ "$m" = rgb64 ]; then twin_data="--random $images --shape $shape"; else twin_data="--data $DATA"; fi
    if [ "$HAVE_TORCH" = 1 ]; then
        for t in 1 "$THREADS"; do
            # shellcheck disable=SC2086
            s=$(run_twin "$t" 1 probe$t --random $(((images + 9) / 10)) --shape "$shape" | median)
            echo "$m: twin probe, $t thread(s): $s s per tenth of an epoch"
            if [ -z "$best_t" ] || awk -v a="$s" -v b="$best_p" 'BEGIN {exit !(a < b)}'; then best_t=$t best_p=$s; fi
            [ "$t" = "$THREADS" ] && break
        done
        # shellcheck disable=SC2086
        run_twin "$best_t" "$EPOCHS" twin1 $twin_data >"$T/$m.twin.s"
        # shellcheck disable=SC2086
        run_twin "$best_t" "$EPOCHS" twin2 $twin_data >>"$T/$m.twin.s"
    fi
    run_ours 2
    local os ts= g frac orss trss=
    os=$(median <"$T/$m.ours.s" | xargs printf "%.3f")
    orss=$(max "$(rss "$T/$m.ours1.time")" "$(rss "$T/$m.ours2.time")")
    g=$(awk -v f="$flop" -v n="$images" -v s="$os" 'BEGIN {printf "%.1f", f * n / s * 1e-9}')
    frac=$(awk -v g="$g" -v p="$PT" 'BEGIN {printf "%.0f", 100 * g / p}')
    echo "$m: vae $(tr '\n' ' ' <"$T/$m.ours.s")s per epoch; $images training images, $(awk -v f="$flop" 'BEGIN {printf "%.1f", f / 1e6}') MFLOP per image"
    if [ "$HAVE_TORCH" = 1 ]; then
        ts=$(median <"$T/$m.twin.s" | xargs printf "%.3f")
        trss=$(max "$(rss "$T/$m.twin1.time")" "$(rss "$T/$m.twin2.time")")
        echo "$m: twin ($best_t thread(s)) $(tr '\n' ' ' <"$T/$m.twin.s")s per epoch"
        ROWS+="| $m | $os | $ts ($best_t) | $(awk -v a="$ts" -v b="$os" 'BEGIN {printf "%.2fx", a / b}') | $g ($frac%) | $orss | $trss | $(awk -v a="$trss" -v b="$orss" 'BEGIN {printf "%.1fx", a / b}') |"$'\n'
    else
        ROWS+="| $m | $os | (no python3-torch) | | $g ($frac%) | $orss | | |"$'\n'
    fi
}
for m in $MODELS; do bench_model "$m"; done
PT2=$(peak)
echo "sgemm ceiling after the runs: $PT2 GFLOP/s (the percentages count the first, $PT)"

echo
echo "| model | vae s/epoch | twin s/epoch (threads) | speed-up | vae useful GFLOP/s (% of ceiling) | vae peak MB | twin peak MB | memory ratio |"
echo "|---|---|---|---|---|---|---|---|"
printf "%s" "$ROWS"
