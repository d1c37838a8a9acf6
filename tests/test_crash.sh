#!/usr/bin/env bash
# test_crash.sh - crash safety: a run killed with SIGKILL at random moments
# (KILLS times, default 10; --save-every 1 on a tiny model, so kills land
# inside saves too), each kill followed by a load of what is on disk and a
# resume, ends byte for byte where a straight run ends, with no temporary
# left behind. About 10 s on 2 cores.
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-crash
. "$(dirname "$0")/lib.sh"
KILLS=${KILLS:-10}
FLAGS=(--data "$DATA" --hidden 8 --latent 2 --batch 100 --threads 1 --quiet --epochs 3 --save-every 1)
"$VAE" train "${FLAGS[@]}" --out "$T/straight" >/dev/null 2>&1 || bad "the straight run"

R=$T/run
kills=0
for i in $(seq 100); do # each round: start or resume, kill -9 at a random moment
    if [ -f "$R/checkpoint.safetensors" ]; then
        "$VAE" info "$R/checkpoint.safetensors" >/dev/null 2>"$T/err" ||
            { bad "after kill $kills: the checkpoint does not load: $(cat "$T/err")"; break; }
        args=(--resume "$R" --quiet)
    else # a kill before the first checkpoint may leave model.safetensors alone: the
        # guard then asks for --force, as a user would be told
        args=("${FLAGS[@]}" --out "$R" --force)
    fi
    # exec: the signal must reach vae, not a subshell waiting for it
    (exec "$VAE" train "${args[@]}" >/dev/null 2>"$T/err") &
    pid=$!
    sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
    if kill -KILL $pid 2>/dev/null; then
        wait $pid 2>/dev/null
        kills=$((kills + 1))
    else
        wait $pid
        rc=$?
        # "already trained": killed after the last save, writing the pictures
        [ $rc -eq 0 ] || grep -q "already trained 3 epochs" "$T/err" ||
            { bad "round $i: exit $rc: $(cat "$T/err")"; break; }
        [ $kills -lt "$KILLS" ] && rm -rf "$R" # finished: start again for more kills
    fi
    [ $kills -ge "$KILLS" ] && break
done
[ $kills -ge "$KILLS" ] && ok || bad "only $kills kills landed"
# the last resume, to the end
if [ -f "$R/checkpoint.safetensors" ]; then
    "$VAE" train --resume "$R" --quiet >/dev/null 2>"$T/err" || grep -q "already trained 3 epochs" "$T/err" ||
        bad "the final resume: $(cat "$T/err")"
else
    "$VAE" train "${FLAGS[@]}" --out "$R" --force >/dev/null 2>"$T/err" || bad "the final run: $(cat "$T/err")"
fi
cmp -s "$T/straight/checkpoint.safetensors" "$R/checkpoint.safetensors" && ok ||
    bad "after $kills kills: the checkpoint differs from the straight run's"
cmp -s "$T/straight/model.safetensors" "$R/model.safetensors" && ok ||
    bad "after $kills kills: the weights differ from the straight run's"
left=$(ls -A "$R" | grep '\.tmp\.')
[ -z "$left" ] && ok || bad "temporaries left after the resume: $left"
echo "$kills kills"
report
