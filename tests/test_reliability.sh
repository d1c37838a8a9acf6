#!/usr/bin/env bash
# test_reliability.sh - what a hostile probe found (issue 24), one case each:
# a CSV cut short when memory runs out, two runs on one --out, stale
# temporaries, SIGHUP and a closed pipe, a directory holding only a
# checkpoint, a symlinked metrics log, a full disk at the first save.
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-reliability
. "$(dirname "$0")/lib.sh"
train() { "$VAE" train --data "$DATA" --hidden 8 --latent 2 --batch 100 --threads 1 --quiet "$@"; }
# wait_file FILE: until FILE exists (at most 30 s)
wait_file() { for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
# a plain build: not a valgrind wrapper script, not linked with ASan (their
# own address space and memory make prlimit meaningless)
plain=1
{ [ "$(head -c 2 "$VAE")" = '#!' ] || ldd "$VAE" 2>/dev/null | grep -q libasan; } && plain=0

# 1. A CSV whose images do not fit the address space: one line naming the
# file, a non-zero exit, no run; never a shorter data set. OpenBLAS loops for
# ever when its start-up buffers do not fit, so the limit is found first: the
# smallest of a few that lets vae read a tiny CSV, plus 32 MB; the big CSV
# needs 51 MB of images.
if [ $plain -eq 1 ] && command -v prlimit >/dev/null; then
    printf '1,2,3,4\n5,6,7,x\n' >"$T/tiny.csv"
    base=
    for mb in 1024 512 448 384 320 256; do
        OMP_NUM_THREADS=1 timeout -s KILL 3 prlimit --as=$((mb << 20)) "$VAE" train --data "$T/tiny.csv" \
            --quiet --out "$T/never" >/dev/null 2>"$T/err"
        grep -q "tiny.csv: line 2" "$T/err" || break
        base=$mb
    done
    row=$(printf '0,%.0s' $(seq 4095))0
    yes "$row" | head -n 12500 | gzip -1 >"$T/big.csv.gz"
    if [ -n "$base" ]; then
        OMP_NUM_THREADS=1 expect_fail "CSV over the address space" "big.csv.gz: .*out of memory" \
            timeout -s KILL 60 prlimit --as=$(((base + 32) << 20)) "$VAE" train --data "$T/big.csv.gz" \
            --epochs 1 --quiet --out "$T/csvrun"
        [ -e "$T/csvrun" ] && bad "the failed CSV run left $T/csvrun" || ok
    else
        bad "vae does not start under a 1 GB address space"
    fi
else
    echo "skipped: the address-space case (valgrind or a sanitizer)"
fi

# 3. Two runs on one --out: one runs, the other is refused naming its PID
(exec "$VAE" train --data "$DATA" --hidden 8 --latent 2 --batch 100 --threads 1 --quiet \
    --epochs 100000 --save-every 1 --out "$T/lock" >/dev/null 2>"$T/lockerr") &
pid=$!
wait_file "$T/lock/checkpoint.safetensors" || bad "the first run did not start"
expect_fail "a second run on one --out" "$T/lock: another vae train \(PID $pid\) is writing into this directory" \
    "$VAE" train --data "$DATA" --epochs 1 --quiet --out "$T/lock" --force
expect_fail "a resume while the run goes on" "another vae train \(PID $pid\)" \
    "$VAE" train --resume "$T/lock" --quiet

# 5. SIGHUP stops like SIGTERM: saved, the message, exit 130
kill -HUP $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok || bad "SIGHUP: exit $rc"
grep -q "^interrupted at epoch .* saved .*checkpoint.safetensors" "$T/lockerr" && ok || bad "SIGHUP message: $(cat "$T/lockerr")"
"$VAE" info "$T/lock/checkpoint.safetensors" >/dev/null 2>&1 && ok || bad "SIGHUP: the checkpoint does not load"

# 4. Stale temporaries: a writer that is gone leaves its temporary (kill -9,
# a double Ctrl-C); the next run in the directory removes it. A live
# writer's (this shell's PID) is kept.
sleep 0 &
dead=$!
wait $dead
printf x >"$T/lock/.checkpoint.safetensors.tmp.$dead.AbCdEf"
printf x >"$T/lock/.model.safetensors.tmp.$dead.GhIjKl"
printf x >"$T/lock/.model.safetensors.tmp.$$.MnOpQr"
"$VAE" train --resume "$T/lock" --max-steps 300 --quiet >/dev/null 2>&1 && ok || bad "resume after SIGHUP"
left=$(ls -A "$T/lock" | grep '\.tmp\.' | tr '\n' ' ')
[ "$left" = ".model.safetensors.tmp.$$.MnOpQr " ] && ok || bad "temporaries after the resume: '$left'"
rm -f "$T/lock/.model.safetensors.tmp.$$.MnOpQr"
# a double SIGINT (the second stops at once, perhaps mid-save); the resume cleans up
before=$(cksum <"$T/lock/checkpoint.safetensors")
(exec "$VAE" train --resume "$T/lock" --epochs 100000 --save-every 1 --quiet >/dev/null 2>&1) &
pid=$!
for _ in $(seq 600); do [ "$(cksum <"$T/lock/checkpoint.safetensors")" != "$before" ] && break; sleep 0.05; done
kill -INT $pid; kill -INT $pid
wait $pid
[ $? -eq 130 ] && ok || bad "double SIGINT: exit status"
step=$("$VAE" info "$T/lock/checkpoint.safetensors" | awk '/^adam_steps/ {print $2}')
"$VAE" train --resume "$T/lock" --max-steps $((step + 2)) --quiet >/dev/null 2>&1 && ok || bad "resume after a double SIGINT"
ls -A "$T/lock" | grep -q '\.tmp\.' && bad "temporaries left after a double SIGINT and a resume" || ok

# 5. A closed standard output (vae train | head -1): training goes on, saves, exits 0
train --epochs 3 --out "$T/pipe" 2>/dev/null | head -1 >/dev/null
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && ok || bad "vae train | head -1: exit $rc"
[ -f "$T/pipe/model.safetensors" ] && [ "$(wc -l <"$T/pipe/metrics.jsonl")" -eq 3 ] && ok ||
    bad "vae train | head -1 did not finish its 3 epochs"

# 6. A directory holding only checkpoint.safetensors is an earlier run too
rm "$T/pipe/model.safetensors"
expect_fail "checkpoint.safetensors alone" "$T/pipe already holds a checkpoint \(checkpoint.safetensors\)" \
    train --epochs 1 --out "$T/pipe"

# 9. A metrics.jsonl that is a symbolic link is replaced, never written through
printf 'precious\n' >"$T/victim"
rm "$T/pipe/metrics.jsonl"
ln -s "$T/victim" "$T/pipe/metrics.jsonl"
"$VAE" train --resume "$T/pipe" --epochs 4 --quiet >/dev/null 2>&1 && ok || bad "resume with a symlinked log"
[ "$(cat "$T/victim")" = precious ] && ok || bad "the symlinked log's target was written"
ln -sf "$T/victim" "$T/pipe/metrics.jsonl"
train --epochs 1 --out "$T/pipe" --force >/dev/null 2>&1 && ok || bad "--force with a symlinked log"
[ "$(cat "$T/victim")" = precious ] && ok || bad "--force: the symlinked log's target was written"
[ ! -L "$T/pipe/metrics.jsonl" ] && [ "$(wc -l <"$T/pipe/metrics.jsonl")" -eq 1 ] && ok ||
    bad "--force: the log is not a fresh file of one line"

# 9. A full disk at the first save (a file-size limit, SIGXFSZ ignored: the
# write fails with EFBIG) leaves no new output directory, no empty log
if [ $plain -eq 1 ] && command -v prlimit >/dev/null; then
    (trap '' XFSZ; exec prlimit --fsize=100000 "$VAE" train --data "$DATA" --hidden 32 --latent 4 \
        --batch 100 --threads 1 --quiet --epochs 1 --out "$T/full/run") >/dev/null 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "run/model.safetensors: write failed" "$T/err" && ok ||
        bad "full disk: exit $rc: $(cat "$T/err")"
    [ ! -e "$T/full/run" ] && ok || bad "full disk left $(ls -A "$T/full/run" | tr '\n' ' ')"
fi
report
