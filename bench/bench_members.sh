#!/usr/bin/env bash
# bench_members.sh - training speed of the richer members (gated layers, the
# VampPrior, planar and Householder flows, the HVAE with and without the
# VampPrior) against the PyTorch twin of the same
# member (scripts/vae_twin.py's RichVAE and HVAE), in one run, beside the plain VAE.
# Each member runs in the order vae, twin, twin, vae on the default MLP
# (784-400-20-400-784, batch 128; the HVAE's layers 20,20) and each side's
# speed is the median of its epochs (a shared host's speed drifts within
# minutes; the interleaving spreads that drift over both sides). The twin's thread count (1 or --threads) is
# picked once, on a short run of the plain VAE.
# The twin needs PyTorch from Debian (python3-torch, python3-numpy; as root:
# bash scripts/install-deps.sh --bench); without it the twin's columns are skipped.
#
#   bench/bench_members.sh [--epochs N] [--data DIR] [--threads T] [--build DIR]
#                          [--members "vae gated vamp planar householder hvae hvae-vamp"]
#                          [--smoke]
#
# --smoke: the shipped test subset, 1 epoch: checks that the benchmark runs
# (CI), not how fast anything is.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=5 DATA=/usr/share/datasets/fashion-mnist BUILD=build THREADS=$(nproc)
MEMBERS="vae gated vamp planar householder hvae hvae-vamp"
while [ $# -gt 0 ]; do
    case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --smoke) EPOCHS=1 DATA=tests/data/fmnist-small; shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench_members.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae PY=/usr/bin/python3
[ -x "$VAE" ] || { echo "bench_members.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
T=$(mktemp -d /tmp/vae-bench-members-XXXXXX)
trap 'rm -rf "$T"' EXIT

# the flags of each member, the same for vae train and the twin (K = 500 as
# the VampPrior paper; 8 flow steps)
flags_of() {
    case $1 in
    vae) echo "" ;;
    gated) echo "--activation gated" ;;
    vamp) echo "--prior vamp:500" ;;
    planar) echo "--flow planar:8" ;;
    householder) echo "--flow householder:8" ;;
    hvae) echo "--model hvae --latent 20,20" ;;
    hvae-vamp) echo "--model hvae --latent 20,20 --prior vamp:500" ;;
    *) echo "bench_members.sh: unknown member '$1' (vae, gated, vamp, planar, householder, hvae," \
            "hvae-vamp)" >&2
       exit 2 ;;
    esac
}
for m in $MEMBERS; do flags_of "$m" >/dev/null; done

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $DATA, $EPOCHS epoch(s) per run, 784-400-20-400-784, batch 128, vae on $THREADS thread(s)"

run_ours() { # $1: member, $2: run name; appends the epochs' seconds to $T/$1.ours
    # shellcheck disable=SC2046
    "$VAE" train --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS" --quiet \
        $(flags_of "$1") --out "$T/$2" >"$T/$2.txt" 2>"$T/$2.err"
    awk -F'"seconds":' '{split($2, a, ","); print a[1]}' "$T/$2/metrics.jsonl" >>"$T/$1.ours"
}
run_twin() { # $1: member, $2: threads, $3: epochs, $4: run name; prints the epochs' seconds
    # shellcheck disable=SC2046
    "$PY" scripts/vae_twin.py --data "$DATA" --epochs "$3" --threads "$2" $(flags_of "$1") \
        >"$T/$4.txt" 2>"$T/$4.err"
    awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i ~ /s,$/) {sub("s,", "", $i); print $i}}' "$T/$4.txt"
}

HAVE_TORCH=0 TT=
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
if [ "$HAVE_TORCH" = 1 ]; then
    best=
    for t in 1 "$THREADS"; do
        s=$(run_twin vae "$t" 1 probe$t | median)
        echo "PyTorch twin (plain VAE), $t thread(s), 1 epoch: $s s"
        if [ -z "$TT" ] || awk -v a="$s" -v b="$best" 'BEGIN {exit !(a < b)}'; then TT=$t best=$s; fi
        [ "$t" = "$THREADS" ] && break
    done
fi

ROWS=
for m in $MEMBERS; do
    run_ours "$m" "$m-ours1"
    if [ "$HAVE_TORCH" = 1 ]; then
        run_twin "$m" "$TT" "$EPOCHS" "$m-twin1" >"$T/$m.twin"
        run_twin "$m" "$TT" "$EPOCHS" "$m-twin2" >>"$T/$m.twin"
    fi
    run_ours "$m" "$m-ours2"
    os=$(median <"$T/$m.ours" | xargs printf "%.3f")
    oe=$(tail -1 "$T/$m-ours1/metrics.jsonl" | sed 's/.*"test_loss":\([0-9.]*\).*/\1/')
    if [ "$HAVE_TORCH" = 1 ]; then
        ts=$(median <"$T/$m.twin" | xargs printf "%.3f")
        te=$(tail -1 "$T/$m-twin1.txt" | sed 's/.*-elbo \([0-9.]*\).*/\1/')
        ratio=$(awk -v a="$ts" -v b="$os" 'BEGIN {printf "%.2fx", a / b}')
        ROWS+="| $m | $(flags_of "$m" | sed "s/^$/(default)/") | $os | $ts | $ratio | $oe | $te |"$'\n'
    else
        ROWS+="| $m | $(flags_of "$m" | sed "s/^$/(default)/") | $os | (no python3-torch) | | $oe | |"$'\n'
    fi
    echo "$m done: vae $os s/epoch$([ "$HAVE_TORCH" = 1 ] && echo ", twin $ts s/epoch")"
done

echo
echo "| member | flags | vae s/epoch ($THREADS threads) | twin s/epoch (${TT:-n/a} thread(s)) | twin / vae | vae test -ELBO | twin test -ELBO |"
echo "|---|---|---|---|---|---|---|"
printf "%s" "$ROWS"
echo "(s/epoch: the median of $((2 * EPOCHS)) epochs each side; test -ELBO after the first run's last epoch; with a flow or the VampPrior it is the one-sample estimate)"
