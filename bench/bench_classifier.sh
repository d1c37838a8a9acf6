#!/usr/bin/env bash
# bench_classifier.sh - `vae classifier train` against its PyTorch twin
# (scripts/classifier_twin.py) on the same machine, in one run: seconds for E
# epochs (training plus each epoch's test accuracy), peak memory, final test
# accuracy. The order is vae, twin (1 thread), twin (all threads), vae; vae's
# time is the better of its two runs, the twin's the better of its two
# thread settings (a shared host's speed drifts within minutes).
# The twin needs PyTorch from Debian (python3-torch, python3-numpy; as root:
# bash scripts/install-deps.sh --bench); without it the twin's columns are skipped.
#
#   bench/bench_classifier.sh [--epochs E] [--data DIR] [--build DIR] [--smoke]
#
# --smoke: the shipped test subset, 1 epoch: checks that it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=2 DATA=/usr/share/datasets/fashion-mnist BUILD=build
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --smoke) EPOCHS=1 DATA=tests/data/fmnist-small; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_classifier.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PY=/usr/bin/python3 THREADS=$(nproc)
[ -x "$VAE" ] || { echo "bench_classifier.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
T=$(mktemp -d /tmp/vae-bench-cls-XXXXXX)
trap 'rm -rf "$T"' EXIT
rss() { awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }
last_s() { sed -n 's/.*  \([0-9.]*\) s$/\1/p' "$1" | tail -1; } # the last epoch line's clock
acc() { sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$1" | tail -1; }
min() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b < a) ? b : a}'; }

ours() { # $1: run number
    /usr/bin/time -v "$VAE" classifier train --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS" \
        --out "$T/c$1.safetensors" 2>"$T/ours$1.txt" >/dev/null
}
twin() { # $1: threads
    /usr/bin/time -v "$PY" scripts/classifier_twin.py --data "$DATA" --epochs "$EPOCHS" --threads "$1" \
        >"$T/twin$1.txt" 2>"$T/twin$1.time"
}
echo "machine: $THREADS cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "data: $DATA, $EPOCHS epoch(s), batch 128"
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
ours 1
if [ "$HAVE_TORCH" = 1 ]; then twin 1; twin "$THREADS"; fi
ours 2
OURS=$(min "$(last_s "$T/ours1.txt")" "$(last_s "$T/ours2.txt")")
echo
echo "| | vae ($THREADS threads) | PyTorch twin | ratio |"
echo "|---|---|---|---|"
if [ "$HAVE_TORCH" = 1 ]; then
    S1=$(last_s "$T/twin1.txt") SN=$(last_s "$T/twin$THREADS.txt")
    BEST=$(min "$S1" "$SN") BT=1
    [ "$BEST" = "$S1" ] || BT=$THREADS
    echo "| seconds for $EPOCHS epoch(s) | $OURS | $BEST ($BT thread(s); $S1 on 1, $SN on $THREADS) | $(awk -v a="$BEST" -v b="$OURS" 'BEGIN {printf "%.2fx faster", a / b}') |"
    echo "| peak resident memory (MB) | $(rss "$T/ours1.txt") | $(rss "$T/twin$BT.time") | $(awk -v a="$(rss "$T/twin$BT.time")" -v b="$(rss "$T/ours1.txt")" 'BEGIN {printf "%.1fx less", a / b}') |"
    echo "| test accuracy (%) | $(acc "$T/ours1.txt") | $(acc "$T/twin$BT.txt") | |"
else
    echo "| seconds for $EPOCHS epoch(s) | $OURS | (no python3-torch) | |"
    echo "| peak resident memory (MB) | $(rss "$T/ours1.txt") | | |"
    echo "| test accuracy (%) | $(acc "$T/ours1.txt") | | |"
fi
