#!/usr/bin/env bash
# test_resume.sh - exact resume and safe stops: a run stopped (at an epoch
# end, mid-epoch, by SIGINT/SIGTERM, by SIGKILL) and resumed ends bit for bit
# where an uninterrupted run does; the last checkpoint always loads.
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-resume
. "$(dirname "$0")/lib.sh"
train() { "$VAE" train --data "$DATA" --hidden 32 --latent 4 --batch 100 --threads 1 --quiet "$@"; }
# metrics without the timing columns
numbers() { sed 's/,"seconds".*//' "$1"; }
same_run() { # same_run NAME DIR_A DIR_B
    cmp -s "$2/model.safetensors" "$3/model.safetensors" && ok || bad "$1: weights differ"
    cmp -s "$2/checkpoint.safetensors" "$3/checkpoint.safetensors" && ok || bad "$1: checkpoints differ"
    [ "$(numbers "$2/metrics.jsonl")" = "$(numbers "$3/metrics.jsonl")" ] && ok || bad "$1: metrics differ"
}

train --epochs 4 --out "$T/straight" >/dev/null 2>&1 && ok || bad "straight run"

# 2 epochs, stop, resume to 4
train --epochs 2 --out "$T/halves" >/dev/null 2>&1
"$VAE" train --resume "$T/halves/checkpoint.safetensors" --epochs 4 --quiet >/dev/null 2>"$T/err" \
    && ok || bad "resume: $(cat "$T/err")"
same_run "2+2 epochs" "$T/straight" "$T/halves"

# stopped inside an epoch (step 7 of 20 per epoch), resumed from the directory
train --epochs 4 --max-steps 7 --out "$T/mid" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && grep -q "stopped (--max-steps) at epoch 1, image 700" "$T/err" && ok || bad "max-steps: $(cat "$T/err")"
"$VAE" train --resume "$T/mid" --quiet >/dev/null 2>&1 && ok || bad "resume mid-epoch"
same_run "mid-epoch" "$T/straight" "$T/mid"

# three threads and dynamic binarisation (the noise and data RNGs resume too)
train --epochs 3 --threads 3 --binarize dynamic --out "$T/dyn" >/dev/null 2>&1
train --epochs 3 --threads 3 --binarize dynamic --max-steps 31 --out "$T/dyn2" >/dev/null 2>&1
"$VAE" train --resume "$T/dyn2" --quiet >/dev/null 2>&1 && ok || bad "resume, 3 threads"
same_run "3 threads, dynamic" "$T/dyn" "$T/dyn2"

# a cyclical beta schedule, free bits and a conv net resume exactly too
sched=(--beta-schedule cyclical:30s:0.5 --free-bits 0.1 --arch conv --hidden 4,8 --epochs 2)
train "${sched[@]}" --out "$T/cyc" >/dev/null 2>&1 && ok || bad "cyclical run"
train "${sched[@]}" --max-steps 13 --out "$T/cyc2" >/dev/null 2>&1
"$VAE" train --resume "$T/cyc2" --quiet >/dev/null 2>&1 && ok || bad "resume, cyclical"
same_run "cyclical beta, free bits, conv" "$T/cyc" "$T/cyc2"
# 40 steps: beta restarts at step 30, so it ends low; the first epoch ends at full beta
betas=$(grep -o '"beta":[0-9.e-]*' "$T/cyc/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
[ "$betas" = "1 0.6 " ] && ok || bad "cyclical betas: $betas"

# a learning-rate decay (halved every epoch) resumes exactly, stopped inside epoch 2; it
# changes nothing in epoch 1 and everything after; the log has each epoch's rate, vae info the decay
dec=(--lr-decay step:1:0.5 --epochs 3)
train "${dec[@]}" --out "$T/dec" >/dev/null 2>&1 && ok || bad "lr decay run"
train "${dec[@]}" --max-steps 27 --out "$T/dec2" >/dev/null 2>&1
"$VAE" train --resume "$T/dec2" --quiet >/dev/null 2>&1 && ok || bad "resume, lr decay"
same_run "lr decay" "$T/dec" "$T/dec2"
lrs=$(grep -o '"lr":[0-9.e-]*' "$T/dec/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
[ "$lrs" = "0.001 0.0005 0.00025 " ] && ok || bad "lr decay: rates $lrs"
loss() { sed -n "$2p" "$1/metrics.jsonl" | grep -o '"test_loss":[0-9.]*'; }
[ "$(loss "$T/dec" 1)" = "$(loss "$T/straight" 1)" ] && ok || bad "lr decay: epoch 1 differs"
[ "$(loss "$T/dec" 2)" != "$(loss "$T/straight" 2)" ] && ok || bad "lr decay: epoch 2 as without"
"$VAE" info "$T/dec/checkpoint.safetensors" | grep -q "^lr decay     step:1:0.5 from lr 0.001$" \
    && ok || bad "lr decay: vae info: $("$VAE" info "$T/dec/checkpoint.safetensors")"
expect_fail "lr-decay changed on resume" "--lr-decay cannot be changed" "$VAE" train --resume "$T/dec" --epochs 4 --lr-decay exp:0.9
for v in step:0:0.5 step:2:1.5 step:2 exp:0 exp:-0.1 cosine step:2:0.5x; do
    expect_fail "lr-decay $v" "--lr-decay expects none, step:E:F or exp:G" "$VAE" train --data "$DATA" --lr-decay "$v" --out "$T/x"
done

# validation and early stopping (lr 0.05 stops after epoch 9, best 7): stopped inside
# an epoch after the best and resumed, the run ends as the straight one, model.safetensors
# the best epoch's weights in both; a stopped run refuses to go on unless told
val=(--valid-fraction 0.25 --early-stop 2 --lr 0.05 --epochs 12)
train "${val[@]}" --out "$T/val" >/dev/null 2>"$T/err" && grep -q "stopped early after epoch 9" "$T/err" \
    && ok || bad "early stop: $(cat "$T/err")"
[ "$(grep -c '"valid_loss"' "$T/val/metrics.jsonl")" = 9 ] && ok || bad "early stop: not 9 epochs logged"
grep -q '"epoch":9,.*"best_epoch":7' "$T/val/metrics.jsonl" && ok || bad "early stop: best epoch not 7"
train "${val[@]}" --max-steps 125 --out "$T/val2" >/dev/null 2>&1 # epoch 9 of 15 steps, 8 of them done
"$VAE" train --resume "$T/val2" --quiet >/dev/null 2>&1 && ok || bad "resume, validation"
same_run "validation, early stop" "$T/val" "$T/val2"
# the pictures show the kept model: model.safetensors (epoch 7's weights), not the last
# (epoch 9's, in the checkpoint), drawn as sample and reconstruct draw with train's defaults
# (64 samples, seed 1; 32 test images); a run whose last epoch is its own (straight) too
pics() { # pics NAME MODEL DIR: samples.png and recon.png in DIR are what MODEL draws
    "$VAE" sample --model "$2" -o "$T/s.png" 2>/dev/null && "$VAE" reconstruct --model "$2" -o "$T/r.png" 2>/dev/null
    cmp -s "$3/samples.png" "$T/s.png" && ok || bad "$1: samples.png is not what $2 draws"
    cmp -s "$3/recon.png" "$T/r.png" && ok || bad "$1: recon.png is not what $2 draws"
}
pics "early stop" "$T/val" "$T/val"
pics "early stop, resumed" "$T/val2" "$T/val2"
pics "no validation" "$T/straight" "$T/straight"
"$VAE" sample --model "$T/val/checkpoint.safetensors" -o "$T/last.png" 2>/dev/null
cmp -s "$T/val/samples.png" "$T/last.png" && bad "early stop: samples.png is what the last weights (epoch 9's) draw" || ok
# eval's splits of a model with validation: train is the 1500 images it trained on, valid
# the 500 held out (from model.safetensors or the checkpoint), whose -ELBO is the one training
# logged for the kept epoch 7 (339.385) up to the noise: eval draws other samples (measured:
# 339.88 at k 100; the 1500 training images give 341.16, the test split 347.53)
evj() { "$VAE" eval --k 100 --quiet --json "$@" 2>"$T/err"; }
field() { grep -o "\"$1\":[0-9.]*" | cut -d: -f2; }
[ "$(evj --model "$T/val" --split train | field n)" = 1500 ] && ok || bad "eval --split train: not 1500 images: $(cat "$T/err")"
[ "$(evj --model "$T/val/checkpoint.safetensors" --split valid | field n)" = 500 ] && ok || bad "eval --split valid (checkpoint): not 500 images: $(cat "$T/err")"
e=$(evj --model "$T/val" --split valid | field neg_elbo)
awk -v e="$e" 'BEGIN { d = e - 339.385; exit !(d < 1 && d > -1) }' && ok || bad "eval --split valid: -ELBO $e, not epoch 7's 339.385: $(cat "$T/err")"
expect_fail "eval --split valid without validation" "--split valid: .*straight was trained without --valid-fraction" "$VAE" eval --model "$T/straight" --split valid
[ "$(evj --model "$T/straight" --split train | field n)" = 2000 ] && ok || bad "eval --split train without validation: not 2000 images"
expect_fail "resume an early-stopped run" "stopped early at epoch 9" "$VAE" train --resume "$T/val" --epochs 20
expect_fail "valid-fraction changed on resume" "--valid-fraction cannot be changed" "$VAE" train --resume "$T/val" --valid-fraction 0.1
expect_fail "early-stop without validation" "--early-stop needs --valid-fraction" "$VAE" train --data "$DATA" --early-stop 3 --out "$T/x"

# SIGINT / SIGTERM: finish the step, save, say how to go on, exit 130
for sig in INT TERM; do
    # exec: the signal must reach vae, not a subshell waiting for it
    (exec "$VAE" train --data "$DATA" --hidden 32 --latent 4 --batch 100 --threads 1 --quiet \
        --epochs 100000 --save-every 1 --out "$T/sig$sig" >/dev/null 2>"$T/err") &
    pid=$!
    for _ in $(seq 600); do [ -s "$T/sig$sig/checkpoint.safetensors" ] && break; sleep 0.05; done
    sleep 0.2
    kill -"$sig" $pid
    wait $pid
    rc=$?
    [ $rc -eq 130 ] && ok || bad "SIG$sig: exit $rc"
    grep -q "^interrupted at epoch .* saved .*checkpoint.safetensors" "$T/err" && ok || bad "SIG$sig message: $(cat "$T/err")"
    grep -q "continue with: [^ ]*vae train --resume" "$T/err" && ok || bad "SIG$sig: no resume hint"
    step=$("$VAE" info "$T/sig$sig/checkpoint.safetensors" | awk '/^adam_steps/ {print $2}')
    [ -n "$step" ] && [ "$step" -gt 0 ] && ok || bad "SIG$sig: checkpoint does not load"
    "$VAE" train --resume "$T/sig$sig" --max-steps $((step + 5)) --quiet >/dev/null 2>&1 && ok || bad "SIG$sig: resume"
    after=$("$VAE" info "$T/sig$sig/checkpoint.safetensors" | awk '/^adam_steps/ {print $2}')
    [ "$after" = $((step + 5)) ] && ok || bad "SIG$sig: resumed to step $after, not $((step + 5))"
done
ls -A "$T/sigINT" | grep -q '\.tmp\.' && bad "temporary files left after SIGINT" || ok
# a second SIGINT stops at once, and what is on disk still loads
# (a background job starts with SIGINT ignored until vae installs its handler:
# wait for a new checkpoint, which only the training loop writes)
before=$(cksum <"$T/sigINT/checkpoint.safetensors")
(exec "$VAE" train --resume "$T/sigINT" --epochs 100000 --save-every 1 --quiet >/dev/null 2>&1) &
pid=$!
for _ in $(seq 1200); do [ "$(cksum <"$T/sigINT/checkpoint.safetensors")" != "$before" ] && break; sleep 0.05; done
kill -INT $pid; kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok || bad "double SIGINT: exit $rc"
"$VAE" info "$T/sigINT/checkpoint.safetensors" >/dev/null 2>&1 && ok || bad "double SIGINT: checkpoint"

# SIGKILL at random moments, ten times: the last checkpoint always loads
train --epochs 100000 --save-every 1 --max-steps 1 --out "$T/kill" >/dev/null 2>&1
for i in $(seq 10); do
    "$VAE" train --resume "$T/kill" --max-steps 0 --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 3 + 1))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    "$VAE" info "$T/kill/checkpoint.safetensors" >/dev/null 2>"$T/err" && ok || bad "SIGKILL $i: $(cat "$T/err")"
    "$VAE" info "$T/kill/model.safetensors" >/dev/null 2>&1 && ok || bad "SIGKILL $i: model.safetensors"
done

# what --resume refuses, with one line each
expect_fail "fixed flag" "--lr cannot be changed when resuming" "$VAE" train --resume "$T/halves" --lr 0.1
expect_fail "weights only" "not a training checkpoint" "$VAE" train --resume "$T/halves/model.safetensors" --epochs 9
expect_fail "already done" "already trained 4 epochs; pass --epochs" "$VAE" train --resume "$T/halves"
mkdir -p "$T/other" && cp "$DATA"/t10k-* "$T/other/" && cp "$DATA/t10k-images-idx3-ubyte.gz" "$T/other/train-images-idx3-ubyte.gz"
expect_fail "other data" "not the data this run was trained on" "$VAE" train --resume "$T/halves" --epochs 9 --data "$T/other"
expect_fail "fresh run over a checkpoint" "already holds a checkpoint.*--resume" train --epochs 1 --out "$T/halves"

report
