#!/usr/bin/env bash
# test_mpi.sh - data-parallel training under mpirun on localhost: 2 ranks
# reproduce one process with the same global batch and seed, resume works
# across rank counts, divergence and different data are caught, a signal to
# one rank stops all ranks after the same step, and a rank killed mid-run or
# frozen ends the job (no hang) with the last checkpoint intact.
#   usage: test_mpi.sh VAE DATA_DIR [MPIRUN]
set -u
VAE=$1
DATA=$2/fmnist-small
MPIRUN=${3:-mpirun}
NAME=test-mpi
. "$(dirname "$0")/lib.sh"
ST_DIFF="python3 $(dirname "$0")/../scripts/st_diff.py"

# localhost, more ranks than cores is fine, root allowed in CI containers,
# no binding (dist.c divides the cores), and shared memory without the
# single-copy mechanism that some containers forbid (ptrace restrictions)
MPI_FLAGS="--oversubscribe --bind-to none"
[ "$(id -u)" -eq 0 ] && MPI_FLAGS="$MPI_FLAGS --allow-run-as-root"
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI's own allocations show up as leaks under LeakSanitizer (the
# sanitizer build); the single-process tests check our code for leaks
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
mpi() { local np=$1; shift; $MPIRUN $MPI_FLAGS -np "$np" "$@"; }

COMMON="--data $DATA --hidden 32 --latent 4 --batch 100 --quiet"
train() { "$VAE" train $COMMON "$@"; }
ptrain() { local np=$1; shift; mpi "$np" "$VAE" train $COMMON "$@"; }
# metrics.jsonl of two runs: training numbers equal, test numbers within 1e-6
# relative. The ranks evaluate their own parts of the test set (each image
# with the noise one process gives it) and the part sums are added in another
# grouping than one process adds its batches.
same_metrics() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert len(a) == len(b), f"{len(a)} vs {len(b)} lines"
for x, y in zip(a, b):
    for k in x:
        if k in ("seconds", "images_per_s"):
            continue
        tol = 1e-6 * max(1.0, abs(x[k])) if k.startswith("test_") else 0.0
        assert abs(x[k] - y[k]) <= tol, f"epoch {x['epoch']} {k}: {x[k]} vs {y[k]}"
PY
}
same_run() { # same_run NAME DIR_A DIR_B: bit-identical weights and Adam state, same metrics
    $ST_DIFF "$2/model.safetensors" "$3/model.safetensors" --tol 0 >"$T/diff" \
        && ok || bad "$1: weights differ: $(tail -1 "$T/diff")"
    $ST_DIFF "$2/checkpoint.safetensors" "$3/checkpoint.safetensors" --tol 0 >"$T/diff" \
        && ok || bad "$1: checkpoint tensors differ: $(tail -1 "$T/diff")"
    same_metrics "$2/metrics.jsonl" "$3/metrics.jsonl" 2>"$T/diff" && ok || bad "$1: metrics differ: $(tail -1 "$T/diff")"
}
steps_of() { "$VAE" info "$1" | awk '/^adam_steps/ {print $2}'; }

# --- 2 ranks x 1 thread = 1 process x 2 threads, bit for bit: both split each
# batch of 100 into the same two halves of 50 rows and add the two half
# gradients once; a + b is exact in either order, so nothing may differ.
train --epochs 2 --threads 2 --out "$T/one2" >/dev/null 2>&1 && ok || bad "1 process run"
ptrain 2 --epochs 2 --threads 1 --out "$T/two" >"$T/two.out" 2>"$T/two.err" \
    && ok || bad "2 ranks: exit $?: $(cat "$T/two.err")"
same_run "2 ranks vs 2 threads" "$T/one2" "$T/two"
[ "$(grep -c '^epoch' "$T/two.out")" -eq 2 ] && ok || bad "2 ranks: rank 0 alone should print the 2 epoch lines: $(cat "$T/two.out")"
grep -q "data-parallel: 2 ranks (2 on this host), 1 thread each; global batch 100, 50 per rank" \
    "$T/two.err" && ok || bad "2 ranks: no layout line: $(cat "$T/two.err")"

# --- the family members whose steps draw more than the Gaussian noise or need
# labels (IWAE's K samples, the DAE's corruption, the CVAE's labels, the HVAE's two
# layers of noise) shard the
# same way: 2 ranks = 2 threads, bit for bit
for M in "iwae --k 3" "dae --noise mask:0.3" "cvae" "hvae --latent 6,4"; do
    tag=${M%% *}
    train --model $M --epochs 1 --max-steps 6 --threads 2 --out "$T/m1$tag" >/dev/null 2>&1 && ok || bad "$tag: 1 process"
    ptrain 2 --model $M --epochs 1 --max-steps 6 --threads 1 --out "$T/m2$tag" >/dev/null 2>"$T/m.err" \
        && ok || bad "$tag: 2 ranks: $(cat "$T/m.err")"
    $ST_DIFF "$T/m1$tag/checkpoint.safetensors" "$T/m2$tag/checkpoint.safetensors" --tol 0 >"$T/diff" \
        && ok || bad "$tag: 2 ranks vs 2 threads differ: $(tail -1 "$T/diff")"
done
# a VampPrior's: each rank encodes all K pseudo-inputs, while two threads share
# them out and add their gradients at the components before the pass back, so
# the two agree to rounding (the bound of the 1-thread comparison below)
M="hvae --latent 6,4 --prior vamp:3"
train --model $M --epochs 1 --max-steps 6 --threads 2 --out "$T/m1vamp" >/dev/null 2>&1 && ok || bad "vamp: 1 process"
ptrain 2 --model $M --epochs 1 --max-steps 6 --threads 1 --out "$T/m2vamp" >/dev/null 2>"$T/m.err" \
    && ok || bad "vamp: 2 ranks: $(cat "$T/m.err")"
$ST_DIFF "$T/m1vamp/checkpoint.safetensors" "$T/m2vamp/checkpoint.safetensors" --tol 1e-5 >"$T/diff" \
    && ok || bad "vamp: 2 ranks vs 2 threads: $(tail -1 "$T/diff")"
mpi 2 "$VAE" train $COMMON --free-bits 0.5 --out "$T/fb" >/dev/null 2>"$T/fb.err"
[ $? -ne 0 ] && grep -q "free-bits is not supported across MPI ranks" "$T/fb.err" && ok || bad "free bits across ranks: $(cat "$T/fb.err")"

# --- mpirun -np 1 is the plain single-process run, byte for byte
ptrain 1 --epochs 2 --threads 2 --out "$T/np1" >/dev/null 2>&1 && ok || bad "-np 1 run"
cmp -s "$T/one2/checkpoint.safetensors" "$T/np1/checkpoint.safetensors" && ok || bad "-np 1: checkpoint differs"
cmp -s "$T/one2/samples.png" "$T/np1/samples.png" && ok || bad "-np 1: samples differ"

# --- against 1 process x 1 thread the gradient is summed in another order
# (one 100-row GEMM instead of two 50-row ones plus an add): float32 rounding
# differs at ~1e-7 of each gradient value, and Adam turns a relative change
# e of a gradient into about e * lr of a step. After 20 steps at lr 1e-3 the
# weights may differ by ~20 * 1e-3 * 1e-7 = 2e-9, more where a gradient is
# near 0 and Adam's normalised step is sensitive to it (measured: 3.2e-8 for
# 2 ranks, 2.6e-7 for 3); 1e-5, 1% of one Adam step, bounds that with room.
train --epochs 1 --max-steps 20 --threads 1 --out "$T/one1" >/dev/null 2>&1
ptrain 2 --epochs 1 --max-steps 20 --threads 1 --out "$T/two20" >/dev/null 2>&1
$ST_DIFF "$T/one1/model.safetensors" "$T/two20/model.safetensors" --tol 1e-5 >"$T/diff" \
    && ok || bad "2 ranks vs 1 thread, 20 steps: $(tail -1 "$T/diff")"
# and 3 ranks (uneven shards: 33, 33, 34 rows)
ptrain 3 --epochs 1 --max-steps 20 --threads 1 --out "$T/three20" >/dev/null 2>&1
$ST_DIFF "$T/one1/model.safetensors" "$T/three20/model.safetensors" --tol 1e-5 >"$T/diff" \
    && ok || bad "3 ranks vs 1 thread, 20 steps: $(tail -1 "$T/diff")"
[ "$(steps_of "$T/three20/checkpoint.safetensors")" = 20 ] && ok || bad "3 ranks: not at step 20"

# --- dynamic binarisation: every rank draws the whole batch's pixels
train --epochs 1 --threads 2 --binarize dynamic --out "$T/dyn1" >/dev/null 2>&1
ptrain 2 --epochs 1 --threads 1 --binarize dynamic --out "$T/dyn2" >/dev/null 2>&1
same_run "dynamic binarisation" "$T/dyn1" "$T/dyn2"

# --- a last batch of 1 image (batch 1999 of 2000): one rank has no rows and
# adds a zero gradient
train --epochs 1 --threads 2 --batch 1999 --out "$T/odd1" >/dev/null 2>&1
ptrain 2 --epochs 1 --threads 1 --batch 1999 --out "$T/odd2" >/dev/null 2>"$T/err" \
    && ok || bad "empty shard: $(cat "$T/err")"
same_run "a rank with an empty shard" "$T/odd1" "$T/odd2"

# --- resume across rank counts: 2 ranks stop mid-epoch, 1 process goes on,
# and the other way round; both end where the straight run ends
ptrain 2 --epochs 2 --threads 1 --max-steps 7 --out "$T/r21" >/dev/null 2>&1
"$VAE" train --resume "$T/r21" --threads 2 --quiet >/dev/null 2>"$T/err" && ok || bad "resume 2 -> 1: $(cat "$T/err")"
same_run "resume 2 ranks -> 1 process" "$T/one2" "$T/r21"
train --epochs 2 --threads 2 --max-steps 7 --out "$T/r12" >/dev/null 2>&1
mpi 2 "$VAE" train --resume "$T/r12" --threads 1 --quiet >/dev/null 2>"$T/err" && ok || bad "resume 1 -> 2: $(cat "$T/err")"
same_run "resume 1 process -> 2 ranks" "$T/one2" "$T/r12"

# --- threads per rank: 2 ranks on this host share its cores
ptrain 2 --epochs 1 --max-steps 2 --out "$T/thr" >/dev/null 2>"$T/err"
want=$(( $(nproc) / 2 )); [ "$want" -ge 1 ] || want=1
grep -q "2 ranks (2 on this host), $want thread" "$T/err" && ok || bad "default threads: $(cat "$T/err")"

# --- a rank whose weights drift is caught at the next check (the test hook
# nudges one gradient value on the last rank at its 3rd step); the checkpoint
# of step 2 stays
VAE_TEST_DIVERGE_AT_STEP=3 ptrain 2 --epochs 1 --threads 1 --save-every 2 --out "$T/div" \
    >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && ok || bad "divergence: exit 0"
grep -q "vae: the ranks' weights diverged by step 4: rank 1 differs from rank 0" "$T/err" \
    && ok || bad "divergence message: $(cat "$T/err")"
[ "$(steps_of "$T/div/checkpoint.safetensors")" = 2 ] && ok || bad "divergence: the step-2 checkpoint is gone"

# --- ranks that see different data are refused before anything is written
mkdir -p "$T/other" && cp "$DATA"/t10k-* "$T/other/" && cp "$DATA/t10k-images-idx3-ubyte.gz" "$T/other/train-images-idx3-ubyte.gz"
$MPIRUN $MPI_FLAGS -np 1 "$VAE" train $COMMON --epochs 1 --out "$T/mixed" : \
    -np 1 "$VAE" train --data "$T/other" --hidden 32 --latent 4 --batch 100 --quiet --epochs 1 \
    --out "$T/mixed" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && ok || bad "different data: exit 0"
grep -q "rank 1 sees different training data than rank 0" "$T/err" && ok || bad "different data message: $(cat "$T/err")"
[ -e "$T/mixed/model.safetensors" ] && bad "different data: a model was written" || ok
# the same training images, other test images (the first 500 training images)
mkdir -p "$T/other2" && cp "$DATA"/* "$T/other2/"
python3 - "$DATA/train-images-idx3-ubyte.gz" "$T/other2/t10k-images-idx3-ubyte.gz" <<'PY'
import gzip, struct, sys
raw = gzip.open(sys.argv[1]).read()
gzip.open(sys.argv[2], "wb").write(struct.pack(">IIII", 2051, 500, 28, 28) + raw[16:16 + 500 * 784])
PY
$MPIRUN $MPI_FLAGS -np 1 "$VAE" train $COMMON --epochs 1 --out "$T/mixed2" : \
    -np 1 "$VAE" train --data "$T/other2" --hidden 32 --latent 4 --batch 100 --quiet --epochs 1 \
    --out "$T/mixed2" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && ok || bad "different test data: exit 0"
grep -q "rank 1 sees different test data than rank 0" "$T/err" && ok || bad "different test data message: $(cat "$T/err")"

# --- SIGTERM to rank 1 alone: the stop travels with the step's sums, both
# ranks stop after the same step (no rank waits forever), rank 0 saves
(exec $MPIRUN $MPI_FLAGS -np 2 "$VAE" train $COMMON --threads 1 --epochs 100000 --save-every 1 \
    --out "$T/term" >/dev/null 2>"$T/term.err") &
mpid=$!
rank_pid() { # rank_pid MPIRUN_PID RANK: the pid of that rank (a child of mpirun on localhost)
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p"
    done
}
for _ in $(seq 600); do [ -s "$T/term/checkpoint.safetensors" ] && break; sleep 0.05; done
sleep 0.3
kill -TERM "$(rank_pid $mpid 1)"
for _ in $(seq 600); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $mpid 2>/dev/null; then bad "SIGTERM to one rank: the job hangs"; kill -9 $mpid; fi
wait $mpid
rc=$?
[ $rc -ne 0 ] && ok || bad "SIGTERM to one rank: exit 0"
grep -q "^interrupted at epoch .* saved .*checkpoint.safetensors" "$T/term.err" && ok || bad "SIGTERM to one rank: $(cat "$T/term.err")"
step=$(steps_of "$T/term/checkpoint.safetensors")
"$VAE" train --resume "$T/term" --max-steps $((step + 3)) --quiet >/dev/null 2>&1 && ok || bad "resume after SIGTERM"
[ "$(steps_of "$T/term/checkpoint.safetensors")" = $((step + 3)) ] && ok || bad "resume after SIGTERM: wrong step"

# --- a rank that hangs without dying (SIGSTOP): the others give up after
# VAE_MPI_TIMEOUT seconds in a collective, the launcher ends the job
(VAE_MPI_TIMEOUT=2 exec $MPIRUN $MPI_FLAGS -np 2 "$VAE" train $COMMON --threads 1 --epochs 100000 \
    --save-every 1 --out "$T/stop" >/dev/null 2>"$T/stop.err") &
mpid=$!
for _ in $(seq 600); do [ -s "$T/stop/checkpoint.safetensors" ] && break; sleep 0.05; done
sleep 0.3
r1=$(rank_pid $mpid 1)
kill -STOP "$r1"
for _ in $(seq 300); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $mpid 2>/dev/null; then bad "SIGSTOP of one rank: the job hangs"; kill -9 $mpid; fi
wait $mpid
[ $? -ne 0 ] && ok || bad "SIGSTOP of one rank: exit 0"
grep -q "^vae: no word from the other ranks for 2 s (in .*): a rank hangs" "$T/stop.err" && ok || bad "SIGSTOP message: $(cat "$T/stop.err")"
for _ in $(seq 100); do kill -0 "$r1" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$r1" 2>/dev/null; then bad "SIGSTOP: the stopped rank was left behind"; kill -9 "$r1"; else ok; fi
"$VAE" info "$T/stop/checkpoint.safetensors" >/dev/null 2>&1 && ok || bad "SIGSTOP: checkpoint"

# --- SIGKILL of rank 1 mid-run: mpirun ends the job with a clear error
# (no hang), and the last checkpoint loads and resumes
(exec $MPIRUN $MPI_FLAGS -np 2 "$VAE" train $COMMON --threads 1 --epochs 100000 --save-every 1 \
    --out "$T/kill" >/dev/null 2>"$T/kill.err") &
mpid=$!
for _ in $(seq 600); do [ -s "$T/kill/checkpoint.safetensors" ] && break; sleep 0.05; done
sleep 0.$((RANDOM % 5 + 1))
kill -9 "$(rank_pid $mpid 1)"
for _ in $(seq 600); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $mpid 2>/dev/null; then bad "SIGKILL of one rank: the job hangs"; kill -9 $mpid; fi
wait $mpid
rc=$?
[ $rc -ne 0 ] && ok || bad "SIGKILL of one rank: exit 0"
grep -q "rank 1 .* exited on signal 9" "$T/kill.err" && ok || bad "SIGKILL message: $(cat "$T/kill.err")"
"$VAE" info "$T/kill/checkpoint.safetensors" >/dev/null 2>"$T/err" && ok || bad "SIGKILL: checkpoint: $(cat "$T/err")"
"$VAE" info "$T/kill/model.safetensors" >/dev/null 2>&1 && ok || bad "SIGKILL: model.safetensors"
step=$(steps_of "$T/kill/checkpoint.safetensors")
mpi 2 "$VAE" train --resume "$T/kill" --threads 1 --max-steps $((step + 3)) --quiet >/dev/null \
    2>"$T/err" && ok || bad "resume after SIGKILL: $(cat "$T/err")"
[ "$(steps_of "$T/kill/checkpoint.safetensors")" = $((step + 3)) ] && ok || bad "resume after SIGKILL: wrong step"

report
