#!/usr/bin/env bash
# mpi_bench.sh - data-parallel training throughput: one process (one thread,
# then all cores as threads) against N ranks under mpirun on this host, same global batch and
# seed. Prints the training images/s of each epoch (the epoch line's own
# figure: training only, no evaluation or start-up) and the allreduce share
# that rank 0 reports, for each run, REPEAT times (take the best on a busy
# machine).
#
#   bench/mpi_bench.sh [--ranks "2 4"] [--epochs N] [--data DIR] [--batch B]
#                      [--repeat K] [--build DIR] [--mpi-flags "..."]
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS="2" EPOCHS=1 DATA=/usr/share/datasets/fashion-mnist BATCH=128 REPEAT=3 BUILD=build
MPI_FLAGS="--bind-to core"
while [ $# -gt 0 ]; do
    case $1 in
    --ranks) RANKS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --mpi-flags) MPI_FLAGS=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "mpi_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
VAE=$BUILD/vae
[ -x "$VAE" ] || { echo "mpi_bench.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] && MPI_FLAGS="$MPI_FLAGS --allow-run-as-root"
T=$(mktemp -d /tmp/vae-mpibench-XXXXXX)
trap 'rm -rf "$T"' EXIT
ARGS="--data $DATA --epochs $EPOCHS --batch $BATCH --quiet --force --out $T/run"
ips() { sed -n 's/^epoch .* \([0-9]*\) img\/s$/\1/p' "$1" | tr '\n' ' '; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); data $DATA, batch $BATCH"
for k in $(seq "$REPEAT"); do
    "$VAE" train $ARGS --threads 1 >"$T/out" 2>"$T/err"
    echo "run $k: 1 process x 1 thread: $(ips "$T/out")img/s"
    "$VAE" train $ARGS --threads "$(nproc)" >"$T/out" 2>"$T/err"
    echo "run $k: 1 process x $(nproc) threads: $(ips "$T/out")img/s"
    for n in $RANKS; do
        mpirun $MPI_FLAGS -np "$n" "$VAE" train $ARGS >"$T/out" 2>"$T/err"
        echo "run $k: $n ranks: $(ips "$T/out")img/s; $(sed -n 's/^data-parallel: [0-9]* steps; //p' "$T/err")"
    done
done
