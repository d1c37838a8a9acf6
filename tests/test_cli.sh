#!/usr/bin/env bash
# test_cli.sh - the vae command line end to end: training on the shipped
# subset, pictures of the expected size, help texts, and bad input (one
# clear line, non-zero exit, no crash, no output left behind).
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-cli
. "$(dirname "$0")/lib.sh"

# PNG width and height from the IHDR chunk
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $2*65536+$3*256+$4 "x" $6*65536+$7*256+$8}'; }
is_png() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' ')" = "89504e470d0a1a0a" ]; }

# --- help lists every option with its default
"$VAE" --help | grep -q "train" && ok || bad "vae --help"
"$VAE" train --help >"$T/h.txt" && ok || bad "train --help exit"
for o in --data --epochs --batch --latent --hidden --lr --seed --threads --out --binarize; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "train --help lacks $o with a default"
done
"$VAE" sample --help | grep -q -- "-n N" && ok || bad "sample --help"
"$VAE" reconstruct --help | grep -q -- "--data" && ok || bad "reconstruct --help"

# --- a short training run writes everything into --out
"$VAE" train --data "$DATA" --epochs 2 --hidden 64 --latent 4 --batch 100 --threads 1 \
    --samples 16 --out "$T/run" >"$T/train.txt" 2>"$T/train_err.txt"
[ $? -eq 0 ] && ok || bad "train exit: $(cat "$T/train_err.txt")"
for f in model.safetensors metrics.jsonl samples.png recon.png; do
    [ -s "$T/run/$f" ] && ok || bad "train did not write $f"
done
[ "$(wc -l <"$T/run/metrics.jsonl")" -eq 2 ] && ok || bad "metrics.jsonl should have 2 lines"
grep -q '"test_loss":' "$T/run/metrics.jsonl" && ok || bad "metrics lack test_loss"
grep -q "epoch 2/2" "$T/train.txt" && ok || bad "no per-epoch line"
ls -A "$T/run" | grep -v '^\.lock$' | grep -q '^\.' && bad "temporary files left in the output directory" || ok
# 16 samples: 4x4 tiles of 28*2 px with 2 px borders -> 4*58+2 = 234
is_png "$T/run/samples.png" && ok || bad "samples.png is not a PNG"
[ "$(png_size "$T/run/samples.png")" = "234x234" ] && ok || bad "samples.png is $(png_size "$T/run/samples.png")"
# 16 reconstructions: 8 columns, 2 blocks of an input and a reconstruction
# row (2*58+2 px), 6 px apart
[ "$(png_size "$T/run/recon.png")" = "466x242" ] && ok || bad "recon.png is $(png_size "$T/run/recon.png")"

M=$T/run/model.safetensors
"$VAE" sample --model "$M" -n 9 --scale 1 -o "$T/s.png" 2>/dev/null && ok || bad "sample"
[ "$(png_size "$T/s.png")" = "92x92" ] && ok || bad "sample -n 9 --scale 1 is $(png_size "$T/s.png")"
"$VAE" reconstruct --model "$M" --data "$DATA" -n 8 -o "$T/r.png" 2>/dev/null && ok || bad "reconstruct"
is_png "$T/r.png" && ok || bad "reconstruct output"
"$VAE" info "$M" >"$T/info.txt" && ok || bad "info"
grep -q "784-64-\[4\]-64-784" "$T/info.txt" && ok || bad "info architecture: $(cat "$T/info.txt")"
grep -q "parameters" "$T/info.txt" && ok || bad "info parameters"
# the checkpoint loads into the PyTorch twin (strict names and shapes), when torch is here
SCRIPTS=$(dirname "$0")/../scripts
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$SCRIPTS/torch_load_check.py" "$M" >/dev/null && ok || bad "PyTorch load_state_dict"
else
    echo "skipped: PyTorch load check (no python3-torch)"
fi
# same seed and threads -> the same checkpoint, bit for bit
"$VAE" train --data "$DATA" --epochs 2 --hidden 64 --latent 4 --batch 100 --threads 1 \
    --samples 16 --out "$T/run2" --quiet >/dev/null 2>&1
cmp -s "$M" "$T/run2/model.safetensors" && ok || bad "the same seed gave a different checkpoint"
# ... also when the batch is split over threads (3, on any machine)
for r in 3a 3b; do
    "$VAE" train --data "$DATA" --epochs 1 --hidden 64 --latent 4 --batch 100 --threads 3 \
        --samples 4 --out "$T/run$r" --quiet >/dev/null 2>&1
done
cmp -s "$T/run3a/model.safetensors" "$T/run3b/model.safetensors" && ok || bad "3 threads: runs differ"

# --- the conv architecture: trains, describes itself, loads into PyTorch's ConvVAE
"$VAE" train --data "$DATA" --arch conv --hidden 8,16 --latent 4 --max-steps 5 --threads 1 \
    --samples 4 --out "$T/conv" --quiet >/dev/null 2>"$T/conv_err.txt" && ok || bad "conv train: $(cat "$T/conv_err.txt")"
C=$T/conv/model.safetensors
"$VAE" info "$C" | grep -q "conv 1x28x28-8-16-\[4\]-16-8-1x28x28" && ok || bad "conv info: $("$VAE" info "$C")"
"$VAE" sample --model "$C" -n 4 --scale 1 -o "$T/cs.png" 2>/dev/null && ok || bad "conv sample"
[ "$(png_size "$T/cs.png")" = "62x62" ] && ok || bad "conv sample is $(png_size "$T/cs.png")"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$SCRIPTS/torch_load_check.py" "$C" >/dev/null && ok || bad "PyTorch load_state_dict (conv)"
fi
# --- the likelihoods: each trains, and a learned sigma loads into PyTorch as log_sigma
for L in "gaussian" "gaussian --sigma learned-pixel:0.2" "continuous-bernoulli"; do
    "$VAE" train --data "$DATA" --likelihood $L --hidden 32 --latent 2 --max-steps 3 --threads 1 \
        --samples 4 --out "$T/lik" --force --quiet >/dev/null 2>"$T/lik_err.txt" && ok || bad "train --likelihood $L: $(cat "$T/lik_err.txt")"
done
"$VAE" info "$T/lik/model.safetensors" | grep -q "continuous-bernoulli likelihood" && ok || bad "info likelihood"
"$VAE" train --data "$DATA" --likelihood gaussian --sigma learned --hidden 32 --latent 2 --max-steps 3 \
    --threads 1 --samples 4 --out "$T/lik2" --quiet >/dev/null 2>&1 && ok || bad "train --sigma learned"
"$VAE" info "$T/lik2/model.safetensors" | grep -q "sigma .*learned" && ok || bad "info sigma"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$SCRIPTS/torch_load_check.py" "$T/lik2/model.safetensors" >/dev/null && ok || bad "PyTorch load (learned sigma)"
fi
# --- the autoencoders: each trains and loads into PyTorch (fc_code)
for AEM in "ae" "sparse-ae --l1 0.01" "dae --noise mask:0.3" "dae --noise gaussian:0.5" "iwae --k 3"; do
    "$VAE" train --data "$DATA" --model $AEM --hidden 32 --latent 3 --max-steps 3 --threads 2 \
        --samples 4 --out "$T/ae" --force --quiet >/dev/null 2>"$T/ae_err.txt" && ok || bad "train --model $AEM: $(cat "$T/ae_err.txt")"
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        /usr/bin/python3 "$SCRIPTS/torch_load_check.py" "$T/ae/model.safetensors" >/dev/null && ok || bad "PyTorch load (--model $AEM)"
    fi
done
"$VAE" info "$T/ae/model.safetensors" | grep -q "model  *iwae" && ok || bad "info model kind"
# --- posterior collapse is visible: a large beta leaves no active unit, and says so
"$VAE" train --data "$DATA" --beta 50 --hidden 32 --latent 5 --epochs 1 --threads 2 --samples 4 \
    --out "$T/collapse" --quiet >/dev/null 2>"$T/collapse.txt" && ok || bad "beta 50 run"
grep -q "warning: only 0 of 5 latent units are active.*posterior collapse" "$T/collapse.txt" && ok || bad "no collapse warning: $(cat "$T/collapse.txt")"
grep -q '"active_units":0' "$T/collapse/metrics.jsonl" && ok || bad "metrics lack active_units 0"
grep -q "warning" "$T/train_err.txt" && bad "warning on a healthy run: $(cat "$T/train_err.txt")" || ok
grep -q '"active_units":[1-9]' "$T/run/metrics.jsonl" && ok || bad "a healthy run has no active units"

# --- the conditional VAE: a class per sample row, or the class asked for
for A in mlp conv; do
    "$VAE" train --data "$DATA" --model cvae --arch $A --latent 3 --max-steps 3 --threads 2 \
        --samples 4 --out "$T/cvae$A" --quiet >/dev/null 2>"$T/cv_err.txt" && ok || bad "train cvae $A: $(cat "$T/cv_err.txt")"
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        /usr/bin/python3 "$SCRIPTS/torch_load_check.py" "$T/cvae$A/model.safetensors" >/dev/null && ok || bad "PyTorch load (cvae $A)"
    fi
done
CV=$T/cvaemlp/model.safetensors
"$VAE" sample --model "$CV" -n 4 --label 9 -o "$T/cv9.png" 2>/dev/null && ok || bad "sample --label"
"$VAE" sample --model "$CV" -n 4 --label 3 -o "$T/cv3.png" 2>/dev/null
cmp -s "$T/cv9.png" "$T/cv3.png" && bad "the label does not change the samples" || ok
"$VAE" reconstruct --model "$CV" --data "$DATA" -n 4 -o "$T/cvr.png" 2>/dev/null && ok || bad "cvae reconstruct"
expect_fail "label out of range" "--label 10: the model has classes 0..9" "$VAE" sample --model "$CV" --label 10 -o "$T/x6.png"
expect_fail "label, unconditional" "not conditional" "$VAE" sample --model "$M" --label 1 -o "$T/x6.png"
rm -rf "$T/nolab"; mkdir "$T/nolab"; cp "$DATA"/*images* "$T/nolab/"
expect_fail "cvae without labels" "has no labels.*--model cvae" "$VAE" train --data "$T/nolab" --model cvae --out "$T/x6"
expect_fail "cvae reconstruct without labels" "has no labels" "$VAE" reconstruct --model "$CV" --data "$T/nolab" -o "$T/x6.png"
[ -e "$T/x6" ] || [ -e "$T/x6.png" ] && bad "output left by a refused cvae command" || ok
expect_fail "iwae k 0" "--k" "$VAE" train --data "$DATA" --model iwae --k 0 --out "$T/x2"
expect_fail "k without iwae" "--k applies to --model iwae only" "$VAE" train --data "$DATA" --k 5 --out "$T/x2"
expect_fail "iwae with beta" "--beta applies to --model vae and cvae only" "$VAE" train --data "$DATA" --model iwae --beta 2 --out "$T/x2"
expect_fail "ae with beta" "--beta applies to --model vae and cvae only" "$VAE" train --data "$DATA" --model ae --beta 4 --out "$T/x2"
expect_fail "ae with free bits" "--free-bits applies to --model vae and cvae only" "$VAE" train --data "$DATA" --model dae --free-bits 1 --out "$T/x2"
# --- flows in the posterior: train (MLP, conv), the checkpoint, eval, a picture, resume
for F in planar:2 householder:3; do
    "$VAE" train --data "$DATA" --flow $F --arch conv --latent 3 --max-steps 3 --threads 2 \
        --samples 4 --out "$T/flowc" --force --quiet >/dev/null 2>"$T/fl_err.txt" && ok || bad "train conv flow $F: $(cat "$T/fl_err.txt")"
    "$VAE" train --data "$DATA" --flow $F --latent 3 --hidden 32 --epochs 1 --max-steps 4 --threads 2 \
        --samples 4 --out "$T/flow" --force --quiet >/dev/null 2>"$T/fl_err.txt" && ok || bad "train flow $F: $(cat "$T/fl_err.txt")"
    "$VAE" info "$T/flow" 2>/dev/null | grep -q "${F%%:*} flow x${F##*:}" && ok || bad "info lacks the flow $F"
    "$VAE" eval --model "$T/flow" --k 20 >"$T/fl_eval.txt" 2>/dev/null && ok || bad "eval flow $F"
    grep -q "^nll" "$T/fl_eval.txt" && ok || bad "eval flow $F: no nll"
    "$VAE" traverse --model "$T/flow" -o "$T/fl_trav.png" 2>/dev/null && is_png "$T/fl_trav.png" && ok || bad "traverse flow $F"
    "$VAE" train --resume "$T/flow" --epochs 2 --quiet >/dev/null 2>"$T/fl_err.txt" && ok || bad "resume flow $F: $(cat "$T/fl_err.txt")"
done
"$VAE" train --data "$DATA" --activation tanh --latent 3 --hidden 32 --max-steps 3 --threads 2 \
    --samples 4 --out "$T/tanh" --quiet >/dev/null 2>"$T/act_err.txt" && ok || bad "train tanh: $(cat "$T/act_err.txt")"
"$VAE" info "$T/tanh" 2>/dev/null | grep -q "(tanh;" && ok || bad "info lacks the activation"
"$VAE" train --data "$DATA" --activation gated --latent 3 --hidden 32,16 --max-steps 3 --threads 2 \
    --samples 4 --out "$T/gated" --quiet >/dev/null 2>"$T/act_err.txt" && ok || bad "train gated: $(cat "$T/act_err.txt")"
"$VAE" info "$T/gated" 2>/dev/null | grep -q "(gated;" && ok || bad "info lacks the gated activation"
"$VAE" train --resume "$T/gated" --max-steps 6 --quiet >/dev/null 2>"$T/act_err.txt" && ok || bad "resume gated: $(cat "$T/act_err.txt")"
"$VAE" eval --model "$T/gated" --k 5 >/dev/null 2>&1 && ok || bad "eval gated"
# the VampPrior: train, info, eval's NLL, samples from the mixture, resume; IWAE with it
"$VAE" train --data "$DATA" --prior vamp:40 --batch 16 --latent 3 --hidden 32 --max-steps 3 --threads 2 \
    --samples 4 --out "$T/vamp" --quiet >/dev/null 2>"$T/vamp_err.txt" && ok || bad "train vamp: $(cat "$T/vamp_err.txt")"
"$VAE" info "$T/vamp" 2>/dev/null | grep -q "VampPrior K=40" && ok || bad "info lacks the VampPrior"
"$VAE" eval --model "$T/vamp" --k 20 >"$T/vamp_eval.txt" 2>/dev/null && grep -q "^nll" "$T/vamp_eval.txt" && ok || bad "eval vamp"
"$VAE" sample --model "$T/vamp" -n 8 -o "$T/vamp_s.png" 2>/dev/null && is_png "$T/vamp_s.png" && ok || bad "sample vamp"
"$VAE" train --resume "$T/vamp" --max-steps 6 --quiet >/dev/null 2>"$T/vamp_err.txt" && ok || bad "resume vamp: $(cat "$T/vamp_err.txt")"
"$VAE" train --data "$DATA" --model iwae --k 3 --prior vamp:4 --latent 3 --hidden 32 --max-steps 3 --threads 2 \
    --samples 4 --out "$T/vamp_iw" --quiet >/dev/null 2>"$T/vamp_err.txt" && ok || bad "train iwae vamp: $(cat "$T/vamp_err.txt")"
expect_fail "vamp 0" "--prior vamp:K" "$VAE" train --data "$DATA" --prior vamp:0 --out "$T/x2"
expect_fail "bad prior" "--prior expects standard or vamp:K" "$VAE" train --data "$DATA" --prior flat --out "$T/x2"
for PM in ae dae sparse-ae; do
    expect_fail "vamp with $PM" "--prior vamp applies to --model vae, iwae and hvae only" "$VAE" train --data "$DATA" --model $PM --prior vamp:3 --out "$T/x2"
done
expect_fail "vamp with free bits" "--free-bits cannot be combined with --prior vamp" "$VAE" train --data "$DATA" --prior vamp:3 --free-bits 0.5 --out "$T/x2"
expect_fail "prior changed on resume" "--prior cannot be changed" "$VAE" train --resume "$T/vamp" --prior standard --epochs 3
expect_fail "gated conv" "--activation gated is a dense layer's" "$VAE" train --data "$DATA" --arch conv --activation gated --out "$T/x2"
expect_fail "bad activation" "--activation expects" "$VAE" train --data "$DATA" --activation gelu --out "$T/x2"
expect_fail "activation changed on resume" "--activation cannot be changed" "$VAE" train --resume "$T/tanh" --activation relu --epochs 3
expect_fail "flow with ae" "--flow applies to --model vae and cvae only" "$VAE" train --data "$DATA" --model ae --flow planar:2 --out "$T/x2"
expect_fail "flow 0 steps" "--flow steps" "$VAE" train --data "$DATA" --flow planar:0 --out "$T/x2"
expect_fail "bad flow" "--flow expects" "$VAE" train --data "$DATA" --flow radial:2 --out "$T/x2"
expect_fail "flow with free bits" "--free-bits cannot be combined with --flow" "$VAE" train --data "$DATA" --flow householder:1 --free-bits 1 --out "$T/x2"
expect_fail "flow changed on resume" "--flow cannot be changed" "$VAE" train --resume "$T/flow" --flow planar:3 --epochs 3
expect_fail "l1 without sparse" "--l1 applies to --model sparse-ae only" "$VAE" train --data "$DATA" --l1 0.1 --out "$T/x2"
expect_fail "noise without dae" "--noise applies to --model dae only" "$VAE" train --data "$DATA" --model ae --noise mask:0.2 --out "$T/x2"
expect_fail "bad noise" "--noise expects" "$VAE" train --data "$DATA" --model dae --noise salt --out "$T/x2"
expect_fail "mask p = 1" "--noise mask:P" "$VAE" train --data "$DATA" --model dae --noise mask:1 --out "$T/x2"
expect_fail "bad model" "--model expects" "$VAE" train --data "$DATA" --model gan --out "$T/x2"
expect_fail "bad schedule" "--beta-schedule expects" "$VAE" train --data "$DATA" --beta-schedule linear:0 --out "$T/x2"

expect_fail "bad likelihood" "--likelihood expects" "$VAE" train --data "$DATA" --likelihood poisson --out "$T/x2"
expect_fail "sigma without gaussian" "--sigma applies to --likelihood gaussian" \
    "$VAE" train --data "$DATA" --sigma 0.2 --out "$T/x2"
expect_fail "zero sigma" "--sigma" "$VAE" train --data "$DATA" --likelihood gaussian --sigma 0 --out "$T/x2"
expect_fail "bad arch" "--arch expects mlp or conv" "$VAE" train --data "$DATA" --arch resnet --out "$T/x2"
expect_fail "conv without layers" "--arch conv needs" "$VAE" train --data "$DATA" --arch conv --hidden none --out "$T/x2"
expect_fail "conv too deep" "5 stride-2 conv layers do not fit a 28x28 image" \
    "$VAE" train --data "$DATA" --arch conv --hidden 4,4,4,4,4 --out "$T/x2"

# --- bad input: one line, non-zero exit, nothing written
expect_fail "missing data dir" "/nonexistent/dir.*dataset-fashion-mnist" \
    "$VAE" train --data /nonexistent/dir --out "$T/x1"
[ -e "$T/x1" ] && bad "output dir created for missing data" || ok
expect_fail "zero batch" "--batch" "$VAE" train --data "$DATA" --batch 0 --out "$T/x2"
expect_fail "negative latent" "--latent" "$VAE" train --data "$DATA" --latent -3 --out "$T/x2"
expect_fail "bad hidden" "--hidden" "$VAE" train --data "$DATA" --hidden 400,,3 --out "$T/x2"
expect_fail "unknown option" "unknown option '--frobnicate'" "$VAE" train --frobnicate
expect_fail "missing value" "needs a value" "$VAE" train --epochs
expect_fail "bad lr" "--lr" "$VAE" train --lr abc
expect_fail "bad binarize" "--binarize" "$VAE" train --binarize sometimes
expect_fail "unknown command" "unknown command" "$VAE" frobnicate
[ -e "$T/x2" ] && bad "output dir created for bad flags" || ok
expect_fail "existing checkpoint" "already holds a checkpoint" \
    "$VAE" train --data "$DATA" --epochs 1 --out "$T/run"
expect_fail "sample without model" "--model is required" "$VAE" sample
expect_fail "not a checkpoint" "$DATA/train-labels-idx1-ubyte.gz" \
    "$VAE" sample --model "$DATA/train-labels-idx1-ubyte.gz" -o "$T/x3.png"
[ -e "$T/x3.png" ] && bad "sample wrote output for a bad model" || ok
printf 'hello' >"$T/tiny.safetensors"
expect_fail "tiny checkpoint" "tiny.safetensors" "$VAE" info "$T/tiny.safetensors"
expect_fail "missing checkpoint" "nope.safetensors" "$VAE" info "$T/nope.safetensors"

# broken data directories built from the shipped subset
mk() { rm -rf "$T/d"; mkdir -p "$T/d"; cp "$DATA"/*.gz "$T/d/"; }
mk; gzip -dc "$DATA/train-images-idx3-ubyte.gz" | head -c 100000 | gzip >"$T/d/train-images-idx3-ubyte.gz"
expect_fail "truncated IDX" "train-images-idx3-ubyte.gz.*truncated" "$VAE" train --data "$T/d" --out "$T/x4"
mk; head -c 20000 "$DATA/train-images-idx3-ubyte.gz" >"$T/d/train-images-idx3-ubyte.gz"
expect_fail "truncated gzip" "train-images-idx3-ubyte.gz" "$VAE" train --data "$T/d" --out "$T/x4"
mk; printf 'not gzip, not idx' >"$T/d/train-images-idx3-ubyte.gz"
expect_fail "corrupt IDX" "train-images-idx3-ubyte.gz" "$VAE" train --data "$T/d" --out "$T/x4"
mk; gzip -dc "$DATA/t10k-labels-idx1-ubyte.gz" | gzip >"$T/d/train-labels-idx1-ubyte.gz"
expect_fail "label count" "train-labels-idx1-ubyte.gz.*500.*2000|2000.*500" "$VAE" train --data "$T/d" --out "$T/x4"
mk; python_free_idx() { printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x0a\x00\x00\x00\x0a'; head -c 200 /dev/zero; }
python_free_idx | gzip >"$T/d/t10k-images-idx3-ubyte.gz"; rm "$T/d/t10k-labels-idx1-ubyte.gz"
expect_fail "mismatched sizes" "10x10.*28x28" "$VAE" train --data "$T/d" --out "$T/x4"
mk; rm "$T/d/t10k-images-idx3-ubyte.gz"
expect_fail "no test split" "t10k-images" "$VAE" train --data "$T/d" --out "$T/x4"
[ -e "$T/x4" ] && bad "output dir created for bad data" || ok
rm -rf "$T/e"; mkdir "$T/e"; cp "$T/d/t10k-images-idx3-ubyte.gz" "$T/e/" 2>/dev/null
python_free_idx | gzip >"$T/e/t10k-images-idx3-ubyte.gz"
expect_fail "reconstruct wrong size" "10x10.*model takes" \
    "$VAE" reconstruct --model "$M" --data "$T/e" -o "$T/x5.png"
[ -e "$T/x5.png" ] && bad "reconstruct wrote output for mismatched data" || ok

# long options are spelled out: a prefix is a mistake, not another flag
expect_fail "abbreviated option" "unknown option '--epoch'; did you mean '--epochs'" \
    "$VAE" train --data "$DATA" --epoch 1 --out "$T/x7"
expect_fail "abbreviated option with =" "unknown option '--lat'; did you mean '--latent'" \
    "$VAE" train --data "$DATA" --lat=3 --out "$T/x7"
[ -e "$T/x7" ] && bad "a refused run created its --out" || ok
# a value that looks like an option is the flag's value, not an option
expect_fail "value like an option" "\-\-epoch: " "$VAE" train --data "--epoch" --out "$T/x7"
# --model and info take a run directory
"$VAE" sample --model "$T/run" -n 4 -o "$T/x8.png" 2>/dev/null && [ -s "$T/x8.png" ] && ok || bad "sample --model RUN_DIR"
"$VAE" info "$T/run" | grep -q "^parameters" && ok || bad "info RUN_DIR"

report
