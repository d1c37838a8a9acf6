#!/usr/bin/env bash
# test_signals.sh - training runs stopped by two SIGINTs in quick succession,
# again and again, with 1 and 2 threads: every one exits 130 and the
# checkpoint on disk always loads. (A signal delivered to a thread inside
# oneDNN's JIT kernels once corrupted its stack: about 1 such run in 60
# crashed. Now one thread of its own takes the signals.) RUNS sets how many
# runs per thread count [120].
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-signals
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-120}
for th in 1 2; do
    "$VAE" train --data "$DATA" --hidden 32 --latent 4 --batch 100 --threads $th --quiet \
        --epochs 100000 --save-every 1 --max-steps 3 --out "$T/r$th" >/dev/null 2>&1 || bad "setup"
    crashes=0
    for i in $(seq "$RUNS"); do
        before=$(cksum <"$T/r$th/checkpoint.safetensors")
        # exec: the signals must reach vae, not a subshell waiting for it
        (exec "$VAE" train --resume "$T/r$th" --epochs 100000 --save-every 1 --quiet \
            >/dev/null 2>"$T/err") &
        pid=$!
        for _ in $(seq 1000); do
            [ "$(cksum <"$T/r$th/checkpoint.safetensors")" != "$before" ] && break
            sleep 0.01
        done
        kill -INT $pid; sleep "0.0$((RANDOM % 9))"; kill -INT $pid 2>/dev/null
        wait $pid
        rc=$?
        [ $rc -eq 130 ] || { crashes=$((crashes + 1)); echo "run $i, $th thread(s): exit $rc" >&2; }
        "$VAE" info "$T/r$th/checkpoint.safetensors" >/dev/null 2>&1 ||
            { bad "$th thread(s), run $i: the checkpoint does not load"; break; }
    done
    [ $crashes -eq 0 ] && ok || bad "$th thread(s): $crashes of $RUNS runs did not exit 130"
done
report
