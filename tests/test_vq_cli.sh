#!/usr/bin/env bash
# test_vq_cli.sh VAE TESTS_DATA_DIR PNG_CHECK - the VQ-VAE through the CLI on
# the shipped subset: training logs codes_used and perplexity, a run stopped
# mid-epoch and resumed ends in the bytes of a straight run, vae info names
# the codebook, the prior trains and vae sample, eval, reconstruct, codes and
# score work on it (PNGs not blank; score draws through the prior, or refuses
# without one); bad combinations give one clear line and no output.
set -u
VAE=$1
DATA=$2/fmnist-small
PNGCHECK=$3
NAME=test-vq-cli
. "$(dirname "$0")/lib.sh"

# a PNG that png_check reads and finds more than one colour in
png_ok() {
    local info
    info=$("$PNGCHECK" "$1" 2>/dev/null) || { bad "$1: not a PNG"; return; }
    set -- $info
    if [ "${3:-0}" -gt 1 ]; then ok; else bad "$1: blank ($info)"; fi
}

F=(--data "$DATA" --model vqvae --codebook 32 --code-dim 8 --hidden 8,16 --batch 100
   --codebook-update ema --restart-dead 1 --threads 2 --quiet)
"$VAE" train "${F[@]}" --epochs 2 --out "$T/a" >"$T/a.out" 2>"$T/a.err" || bad "train: $(cat "$T/a.err")"
if grep -q '"codes_used":[0-9]*,"perplexity":[0-9.]*}' "$T/a/metrics.jsonl"; then ok
else bad "metrics.jsonl lacks codes_used/perplexity: $(head -1 "$T/a/metrics.jsonl")"; fi
[ "$(wc -l <"$T/a/metrics.jsonl")" -eq 2 ] && ok || bad "metrics.jsonl: not 2 lines"
grep -q "^codebook: [0-9]* of 32 codes used this epoch" "$T/a.err" && ok || bad "no codebook line"

# stopped after 25 steps (mid-epoch 2), resumed: the same bytes
"$VAE" train "${F[@]}" --epochs 2 --max-steps 25 --out "$T/b" >/dev/null 2>&1
"$VAE" train --resume "$T/b" --epochs 2 --quiet >/dev/null 2>"$T/b.err" || bad "resume: $(cat "$T/b.err")"
cmp -s "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors" && ok || bad "resumed checkpoint differs"
cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors" && ok || bad "resumed model differs"

"$VAE" info "$T/a" >"$T/info.txt" 2>&1 || bad "info"
grep -q "^codebook     32 codes of 8" "$T/info.txt" && ok || bad "info: $(cat "$T/info.txt")"

"$VAE" prior train --model "$T/a" --epochs 1 --channels 8 --layers 1 --embed 4 --threads 2 \
    >"$T/p.out" 2>"$T/p.err" || bad "prior train: $(cat "$T/p.err")"
[ -f "$T/a/prior.safetensors" ] && ok || bad "no prior.safetensors"
grep -q "test nll [0-9.]* nats ([0-9.]* bits/cell)" "$T/p.out" && ok || bad "prior: $(cat "$T/p.out")"
"$VAE" sample --model "$T/a" -n 4 --temperature 0.7 -o "$T/s.png" 2>/dev/null || bad "sample"
png_ok "$T/s.png"
"$VAE" reconstruct --model "$T/a" -n 4 -o "$T/r.png" 2>/dev/null || bad "reconstruct"
png_ok "$T/r.png"
"$VAE" codes --model "$T/a" -n 2 -o "$T/c.png" --histogram "$T/h.png" 2>/dev/null || bad "codes"
png_ok "$T/c.png"
png_ok "$T/h.png"
"$VAE" eval --model "$T/a" -n 100 >"$T/e.txt" 2>&1 || bad "eval: $(cat "$T/e.txt")"
grep -q "^recon mse     0\.[0-9]* per pixel (PSNR [0-9.]* dB)" "$T/e.txt" && ok || bad "eval: $(cat "$T/e.txt")"
grep -q "^prior nll     [0-9.]* nats per image, [0-9.]* bits per dim" "$T/e.txt" && ok || bad "eval: $(cat "$T/e.txt")"
"$VAE" eval --model "$T/a" -n 100 --json >"$T/e.json" 2>/dev/null || bad "eval --json"
grep -q '"prior_bits_per_dim":[0-9.]*}' "$T/e.json" && ok || bad "eval --json: $(cat "$T/e.json")"

# the gated PixelCNN: trains, names itself, samples and evaluates through --prior
"$VAE" prior train --model "$T/a" --gated --epochs 1 --channels 8 --layers 2 --embed 4 --threads 2 \
    --out "$T/gp.safetensors" >"$T/gp.out" 2>"$T/gp.err" || bad "prior train --gated: $(cat "$T/gp.err")"
grep -q "^prior: gated PixelCNN" "$T/gp.err" && ok || bad "prior --gated: $(cat "$T/gp.err")"
"$VAE" sample --model "$T/a" --prior "$T/gp.safetensors" -n 4 -o "$T/gs.png" 2>/dev/null || bad "sample --gated prior"
png_ok "$T/gs.png"
"$VAE" eval --model "$T/a" --prior "$T/gp.safetensors" -n 100 >"$T/ge.txt" 2>&1 || bad "eval: $(cat "$T/ge.txt")"
grep -q "^prior nll     [0-9.]* nats per image" "$T/ge.txt" && ok || bad "eval gated: $(cat "$T/ge.txt")"
expect_fail gated-layers "gated layers 9 are outside 1..8" "$VAE" prior train --model "$T/a" --gated --layers 9 --out "$T/x.safetensors"

# vae score draws a VQ-VAE's samples through its prior: the same seed gives the same
# distance, another temperature another one
"$VAE" classifier train --data "$DATA" --epochs 1 --threads 2 --out "$T/cls.safetensors" \
    >/dev/null 2>"$T/cls.err" || bad "classifier train: $(cat "$T/cls.err")"
for t in 1 1 0.5; do
    "$VAE" score --model "$T/a" --classifier "$T/cls.safetensors" --n 200 --temperature $t \
        --threads 2 --json 2>"$T/sc.err" | sed -n 's/.*"fd_samples":\([0-9.]*\),.*/\1/p' >>"$T/fd.txt"
done
[ "$(wc -l <"$T/fd.txt")" -eq 3 ] && ok || bad "score: $(cat "$T/fd.txt" "$T/sc.err")"
[ "$(sed -n 1p "$T/fd.txt")" = "$(sed -n 2p "$T/fd.txt")" ] && ok || bad "score not repeatable: $(cat "$T/fd.txt")"
[ "$(sed -n 1p "$T/fd.txt")" != "$(sed -n 3p "$T/fd.txt")" ] && ok || bad "score ignores --temperature"
mkdir -p "$T/np" && cp "$T/a/model.safetensors" "$T/np/"
expect_fail score-noprior "np/prior.safetensors: no such prior; .*score draws a VQ-VAE's samples" \
    "$VAE" score --model "$T/np/model.safetensors" --classifier "$T/cls.safetensors" --n 200
[ -s "$T/out.txt" ] && bad "a refused score printed: $(cat "$T/out.txt")" || ok

# bad combinations: one line, no output
expect_fail flow "--flow applies to --model vae and cvae" "$VAE" train "${F[@]}" --flow planar:2 --out "$T/x"
expect_fail beta "--beta applies to --model vae and cvae" "$VAE" train "${F[@]}" --beta 2 --out "$T/x"
expect_fail codebook0 "--codebook expects a whole number in 2..65536, not '0'" "$VAE" train "${F[@]}" --codebook 0 --out "$T/x"
expect_fail mlp "needs --arch conv" "$VAE" train "${F[@]}" --arch mlp --out "$T/x"
expect_fail latent "--latent does not apply to --model vqvae" "$VAE" train "${F[@]}" --latent 4 --out "$T/x"
expect_fail update "--codebook-update expects loss, ema or ema:DECAY" "$VAE" train "${F[@]}" --codebook-update sgd --out "$T/x"
expect_fail notvq "--codebook applies to --model vqvae only" "$VAE" train --data "$DATA" --codebook 16 --out "$T/x"
[ -e "$T/x" ] && bad "a refused run left $T/x" || ok
"$VAE" train --data "$DATA" --epochs 1 --hidden 16 --latent 2 --quiet --out "$T/v" >/dev/null 2>&1
expect_fail prior-notvq "is not a VQ-VAE" "$VAE" prior train --model "$T/v"
expect_fail codes-notvq "is not a VQ-VAE" "$VAE" codes --model "$T/v" -o "$T/x.png"
expect_fail temp-notvq "--prior and --temperature apply to a VQ-VAE only" "$VAE" sample --model "$T/v" --temperature 0.5 -o "$T/x.png"
expect_fail score-notvq "--prior and --temperature apply to a VQ-VAE only" "$VAE" score --model "$T/v" --classifier "$T/cls.safetensors" --temperature 0.5
expect_fail noprior "prior" "$VAE" sample --model "$T/a" --prior "$T/none.safetensors" -o "$T/x.png"
expect_fail prior-sub "expects the subcommand train" "$VAE" prior fit --model "$T/a"
[ -e "$T/x.png" ] && bad "a refused command left $T/x.png" || ok
report
