#!/usr/bin/env bash
# test_cli_eval.sh VAE TESTS_DATA_DIR - `vae eval` and `vae pca` end to end
# on the shipped subset: help texts, the table, valid JSON that does not
# depend on --threads, the numbers' relations, PCA's error falling with K,
# and its PNG of the expected size.
set -u
VAE=$1
DATA=$2/fmnist-small
NAME=test-cli-eval
. "$(dirname "$0")/lib.sh"

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $2*65536+$3*256+$4 "x" $6*65536+$7*256+$8}'; }
# jget FILE KEY: a top-level number (or null) from our one-line JSON
jget() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a + 0 < b + 0)}'; }

# --- help lists every option with its default
"$VAE" --help | grep -q "eval" && ok || bad "vae --help lacks eval"
"$VAE" --help | grep -q "pca" && ok || bad "vae --help lacks pca"
"$VAE" eval --help >"$T/h.txt" && ok || bad "eval --help exit"
for o in --data --split --k --seed --threads --batch "-n N" --binarize; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "eval --help lacks $o with a default"
done
"$VAE" pca --help >"$T/h.txt" && ok || bad "pca --help exit"
for o in --components --data "-o FILE" --images --scale "-n N"; do
    grep -qE -- "$o .*\[" "$T/h.txt" && ok || bad "pca --help lacks $o with a default"
done

# --- a tiny model
"$VAE" train --data "$DATA" --epochs 1 --hidden 32 --latent 3 --batch 100 --threads 1 --quiet \
    --out "$T/run" >/dev/null 2>"$T/err.txt" || { echo "cannot train: $(cat "$T/err.txt")" >&2; exit 1; }
M=$T/run/model.safetensors

# --- the table
"$VAE" eval --model "$M" --data "$DATA" --k 20 -n 100 >"$T/e.txt" 2>"$T/e_err.txt"
[ $? -eq 0 ] && ok || bad "eval exit: $(cat "$T/e_err.txt")"
for w in "-elbo" "nll" "mse" "active units" "100 images"; do
    grep -q -- "$w" "$T/e.txt" && ok || bad "eval table lacks '$w': $(cat "$T/e.txt")"
done
[ "$(grep -cE '^ +[0-9]+ +[0-9.]+ +[0-9.]+ +(yes|no)$' "$T/e.txt")" -eq 3 ] && ok || bad "eval table: not one row per latent dimension"
grep -q "100/100 images" "$T/e_err.txt" && ok || bad "eval shows no progress: $(cat "$T/e_err.txt")"

# --- JSON: one object, valid, the same on 1 and 2 threads but for the time
for t in 1 2; do
    "$VAE" eval --model "$M" --data "$DATA" --k 30 -n 120 --batch 64 --threads $t --json --quiet \
        >"$T/j$t.json" 2>"$T/j_err.txt" && ok || bad "eval --json exit: $(cat "$T/j_err.txt")"
done
[ "$(wc -l <"$T/j1.json")" -eq 1 ] && ok || bad "eval --json is not one line"
[ -s "$T/j_err.txt" ] && bad "eval --quiet wrote to stderr: $(cat "$T/j_err.txt")" || ok
if /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d["kl_dim"]) == 3' \
    "$T/j1.json" 2>/dev/null; then ok; else [ -x /usr/bin/python3 ] && bad "eval --json is not valid JSON: $(cat "$T/j1.json")" || ok; fi
cmp -s <(sed 's/"seconds":[^}]*//' "$T/j1.json") <(sed 's/"seconds":[^}]*//' "$T/j2.json") && ok ||
    bad "eval differs between 1 and 2 threads: $(cat "$T/j1.json" "$T/j2.json")"
NLL=$(jget "$T/j1.json" nll) ELBO=$(jget "$T/j1.json" neg_elbo) AU=$(jget "$T/j1.json" active_units)
lt "$NLL" "$ELBO" && ok || bad "nll $NLL is not below -elbo $ELBO"
lt 100 "$NLL" && ok || bad "nll $NLL is implausibly small"
[ "$AU" -ge 0 ] && [ "$AU" -le 3 ] && ok || bad "active_units $AU"
# another seed changes the estimate; the KL does not depend on it
"$VAE" eval --model "$M" --data "$DATA" --k 30 -n 120 --batch 64 --seed 2 --json --quiet >"$T/s2.json"
[ "$(jget "$T/s2.json" nll)" != "$NLL" ] && ok || bad "--seed does not change the estimate"
[ "$(jget "$T/s2.json" kl)" = "$(jget "$T/j1.json" kl)" ] && ok || bad "--seed changes the closed-form KL"
# more samples tighten the bound (on average over 120 images)
"$VAE" eval --model "$M" --data "$DATA" --k 1 -n 120 --batch 64 --json --quiet >"$T/k1.json"
lt "$NLL" "$(jget "$T/k1.json" nll)" && ok || bad "nll with k=30 ($NLL) is not below k=1 ($(jget "$T/k1.json" nll))"
# binarisation: a checkpoint's training mode by default, --binarize overrides it
"$VAE" train --data "$DATA" --epochs 1 --hidden 16 --latent 2 --batch 100 --threads 1 --quiet \
    --binarize threshold --out "$T/bin" >/dev/null 2>&1 || bad "train --binarize threshold"
"$VAE" eval --model "$T/bin/checkpoint.safetensors" --data "$DATA" --k 5 -n 50 --json --quiet >"$T/b1.json"
grep -q '"binarize":"threshold' "$T/b1.json" && ok || bad "eval ignores the checkpoint's binarisation: $(cat "$T/b1.json")"
"$VAE" eval --model "$T/bin" --data "$DATA" --k 5 -n 50 --json --quiet >"$T/b0.json" # the run's model.safetensors
grep -q '"binarize":"threshold' "$T/b0.json" && ok || bad "eval of a run directory ignores its binarisation: $(cat "$T/b0.json")"
"$VAE" eval --model "$T/bin/checkpoint.safetensors" --data "$DATA" --k 5 -n 50 --json --quiet --binarize none >"$T/b2.json"
grep -q '"binarize":"none"' "$T/b2.json" && ok || bad "--binarize none does not override"
lt "$(jget "$T/b1.json" nll)" "$(jget "$T/b2.json" nll)" && ok || bad "binary pixels should cost fewer nats than grey ones"
"$VAE" eval --model "$M" --data "$DATA" --k 5 -n 50 --json --quiet --binarize dynamic --seed 3 >"$T/d1.json"
"$VAE" eval --model "$M" --data "$DATA" --k 5 -n 50 --json --quiet --binarize dynamic --seed 3 >"$T/d2.json"
cmp -s <(sed 's/"seconds":[^}]*//' "$T/d1.json") <(sed 's/"seconds":[^}]*//' "$T/d2.json") && ok || bad "--binarize dynamic is not reproducible"
# --batch auto: 512 rows for a small MLP; a conv model's larger rows get fewer, at least 32
[ "$(jget "$T/b0.json" batch)" = 512 ] && ok || bad "--batch auto for a small MLP: $(jget "$T/b0.json" batch) rows"
"$VAE" train --data "$DATA" --arch conv --hidden 32,64 --latent 3 --max-steps 2 --threads 1 --samples 4 \
    --out "$T/cv" --quiet >/dev/null 2>&1 || bad "train --arch conv --hidden 32,64"
"$VAE" eval --model "$T/cv" --data "$DATA" --k 5 -n 10 --json --quiet >"$T/cv.json"
CB=$(jget "$T/cv.json" batch)
[ "${CB:-0}" -ge 32 ] && [ "${CB:-0}" -lt 512 ] && ok || bad "--batch auto for a 32,64 conv model: $CB rows"
"$VAE" eval --model "$T/cv" --data "$DATA" --k 5 -n 10 --batch 64 --json --quiet >"$T/cv64.json"
[ "$(jget "$T/cv64.json" batch)" = 64 ] && ok || bad "--batch 64 not taken: $(cat "$T/cv64.json")"
"$VAE" eval --model "$M" --data "$DATA" --split train -n 50 --k 5 --quiet >"$T/tr.txt" && ok || bad "eval --split train"
grep -q "train split" "$T/tr.txt" && ok || bad "eval --split train table"

# --- the family: each member with a posterior evaluates to finite numbers whose
# NLL estimate is below its -ELBO; an autoencoder is refused with one line
for F in "--model iwae --k 3" "--model cvae" "--likelihood gaussian --sigma learned-pixel" \
         "--likelihood continuous-bernoulli" "--arch conv --hidden 4,8"; do
    rm -rf "$T/fam"
    "$VAE" train --data "$DATA" $F --hidden 32 --latent 3 --max-steps 10 --threads 1 --samples 4 \
        --out "$T/fam" --quiet >/dev/null 2>&1 || { bad "train $F"; continue; }
    "$VAE" eval --model "$T/fam/model.safetensors" --data "$DATA" --k 20 -n 40 --json --quiet \
        >"$T/fam.json" 2>"$T/fam.err" && ok || bad "eval $F: $(cat "$T/fam.err")"
    lt "$(jget "$T/fam.json" nll)" "$(jget "$T/fam.json" neg_elbo)" && ok || bad "eval $F: nll not below -elbo: $(cat "$T/fam.json")"
done
rm -rf "$T/fam"
"$VAE" train --data "$DATA" --model ae --hidden 32 --latent 3 --max-steps 3 --samples 4 --out "$T/fam" --quiet >/dev/null 2>&1
expect_fail "eval of an autoencoder" "an autoencoder has no posterior" "$VAE" eval --model "$T/fam/model.safetensors" --data "$DATA"

# --- PCA: the error falls with K; the PNG has rows of images and reconstructions
"$VAE" pca --components 5 --data "$DATA" --json -o "$T/p5.png" >"$T/p5.json" 2>"$T/p_err.txt" && ok ||
    bad "pca exit: $(cat "$T/p_err.txt")"
"$VAE" pca --components 50 --data "$DATA" --json --images 8 --scale 1 -o "$T/p50.png" >"$T/p50.json" && ok || bad "pca 50"
lt "$(jget "$T/p50.json" mse)" "$(jget "$T/p5.json" mse)" && ok || bad "pca mse does not fall with K"
lt "$(jget "$T/p5.json" explained_variance)" "$(jget "$T/p50.json" explained_variance)" && ok || bad "explained variance"
lt 0 "$(jget "$T/p5.json" mse)" && ok || bad "pca mse on test images should not be 0"
# 32 images: 8 columns, 4 image rows + 4 reconstruction rows of 28*2+2 px
[ "$(png_size "$T/p5.png")" = "466x466" ] && ok || bad "pca png is $(png_size "$T/p5.png")"
[ "$(png_size "$T/p50.png")" = "242x62" ] && ok || bad "pca --images 8 --scale 1 png is $(png_size "$T/p50.png")"
"$VAE" pca --components 3 --data "$DATA" -n 20 -o "$T/p3.png" >"$T/p3.txt" && ok || bad "pca table"
grep -q "20 test images" "$T/p3.txt" && grep -q "explained" "$T/p3.txt" && ok || bad "pca table: $(cat "$T/p3.txt")"

report
