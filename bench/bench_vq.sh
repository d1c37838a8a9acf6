#!/usr/bin/env bash
# bench_vq.sh - the VQ-VAE and its PixelCNN prior against their PyTorch twin
# (scripts/vq_twin.py: the same networks and training) on the same machine, in
# one run: seconds per epoch of `vae train --model vqvae --codebook-update ema
# --restart-dead 1` and of `vae prior train` (each counted as vae counts it: a
# VQ-VAE epoch without its test pass, a prior epoch with its test NLL), peak
# resident memory (/usr/bin/time -v), and the test reconstruction term and
# prior NLL as a check that both learned the same. The order is vae, twin (1
# thread), twin (all threads), vae; vae's time is the better of its two runs,
# the twin's the better of its two thread settings (a shared host's speed
# drifts within minutes); the ratio is against that best. vae trains the
# VQ-VAE on all cores and the prior on one, its default (its GEMMs are small:
# more threads spin against each other on a shared machine).
#
#   bench/bench_vq.sh [--epochs 2] [--prior-epochs 2] [--data DIR] [--build DIR] [--smoke]
#
# --smoke: the shipped test subset, 1 epoch of each: checks that it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=2 PEPOCHS=2 DATA=/usr/share/datasets/fashion-mnist BUILD=build
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --prior-epochs) PEPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --smoke) EPOCHS=1 PEPOCHS=1 DATA=tests/data/fmnist-small; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_vq.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PY=/usr/bin/python3 THREADS=$(nproc)
[ -x "$VAE" ] || { echo "bench_vq.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
T=$(mktemp -d /tmp/vae-bench-vq-XXXXXX)
trap 'rm -rf "$T"' EXIT
VQ=(--model vqvae --codebook-update ema --restart-dead 1)

rss() { awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }
mean() { awk '{s += $1; n++} END {if (n) printf "%.3f", s / n}'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b < a) ? b : a}'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b > a) ? b : a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }

ours() { # $1: run number; seconds per epoch into ours.vq / ours.prior
    /usr/bin/time -v "$VAE" train "${VQ[@]}" --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS" \
        --quiet --out "$T/vq$1" >"$T/ours$1.txt" 2>"$T/ours$1.time"
    sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$T/vq$1/metrics.jsonl" | mean >>"$T/ours.vq"
    echo >>"$T/ours.vq"
    /usr/bin/time -v "$VAE" prior train --model "$T/vq$1" --epochs "$PEPOCHS" --threads 1 \
        >"$T/prior$1.txt" 2>"$T/prior$1.time"
    sed -n 's/^epoch .* | \([0-9.]*\)s$/\1/p' "$T/prior$1.txt" | mean >>"$T/ours.prior"
    echo >>"$T/ours.prior"
}
twin() { # $1: threads
    /usr/bin/time -v "$PY" scripts/vq_twin.py --data "$DATA" --epochs "$EPOCHS" \
        --prior-epochs "$PEPOCHS" --threads "$1" >"$T/twin$1.txt" 2>"$T/twin$1.time"
}
twin_s() { # file, vqvae|prior: mean seconds per epoch
    sed -n "s/^$2 epoch .* | \([0-9.]*\) s$/\1/p" "$1" | mean
}
echo "machine: $THREADS cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $DATA; VQ-VAE ${VQ[*]} (conv 32,64, 7x7 codes of 16, K = 128), $EPOCHS epoch(s), batch 128;"
echo "prior: PixelCNN (embedding 32, 64 channels, 4 mask-B layers), $PEPOCHS epoch(s), batch 64"
echo "vae: the VQ-VAE on $THREADS threads, the prior on 1 (its default)"
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
ours 1
if [ "$HAVE_TORCH" = 1 ]; then twin 1; twin "$THREADS"; fi
ours 2
OV=$(min "$(sed -n 1p "$T/ours.vq")" "$(sed -n 2p "$T/ours.vq")")
OP=$(min "$(sed -n 1p "$T/ours.prior")" "$(sed -n 2p "$T/ours.prior")")
ORSS=$(max "$(rss "$T/ours1.time")" "$(rss "$T/prior1.time")")
OREC=$(sed -n 's/.*"test_rec":\([0-9.]*\).*/\1/p' "$T/vq1/metrics.jsonl" | tail -1)
ONLL=$(sed -n 's/^epoch .*test nll \([0-9.]*\) nats.*/\1/p' "$T/prior1.txt" | tail -1)
echo "vae: VQ-VAE $(tr '\n' ' ' <"$T/ours.vq")s per epoch (runs 1, 2); prior $(tr '\n' ' ' <"$T/ours.prior")s per epoch"
echo
echo "| | vae | PyTorch twin (best of 1 and $THREADS threads) | ratio (twin / vae) |"
echo "|---|---|---|---|"
if [ "$HAVE_TORCH" = 1 ]; then
    V1=$(twin_s "$T/twin1.txt" vqvae) VN=$(twin_s "$T/twin$THREADS.txt" vqvae)
    P1=$(twin_s "$T/twin1.txt" prior) PN=$(twin_s "$T/twin$THREADS.txt" prior)
    TV=$(min "$V1" "$VN") TP=$(min "$P1" "$PN") BT=1
    [ "$(awk -v a="$V1" -v b="$VN" -v c="$P1" -v d="$PN" 'BEGIN {print (a + c <= b + d)}')" = 1 ] || BT=$THREADS
    TRSS=$(rss "$T/twin$BT.time")
    TREC=$(sed -n 's/^vqvae epoch .*test rec \([0-9.]*\) .*/\1/p' "$T/twin$BT.txt" | tail -1)
    TNLL=$(sed -n 's/^prior epoch .*test nll \([0-9.]*\) nats.*/\1/p' "$T/twin$BT.txt" | tail -1)
    echo "| VQ-VAE seconds per epoch | $OV | $TV ($V1 on 1, $VN on $THREADS) | $(ratio "$TV" "$OV") |"
    echo "| prior seconds per epoch | $OP | $TP ($P1 on 1, $PN on $THREADS) | $(ratio "$TP" "$OP") |"
    echo "| peak resident memory (MB) | $ORSS | $TRSS ($BT thread(s)) | $(ratio "$TRSS" "$ORSS") |"
    echo "| test rec (nats per image) after $EPOCHS epoch(s) | $OREC | $TREC | |"
    echo "| prior test NLL (nats per grid) after $PEPOCHS epoch(s) | $ONLL | $TNLL | |"
else
    echo "| VQ-VAE seconds per epoch | $OV | (no python3-torch) | |"
    echo "| prior seconds per epoch | $OP | | |"
    echo "| peak resident memory (MB) | $ORSS | | |"
    echo "| test rec (nats per image) after $EPOCHS epoch(s) | $OREC | | |"
    echo "| prior test NLL (nats per grid) after $PEPOCHS epoch(s) | $ONLL | | |"
fi
