#!/usr/bin/env bash
# same_bits.sh - checks that a refactoring changed no bits: builds OLD_REV in
# a temporary git worktree (Release), trains the same configurations with the
# old and the new vae on tests/data/fmnist-small, and cmp's the checkpoints.
# One line per configuration, then "N passed, N failed"; exit 1 on a failure.
#
#   bash scripts/same_bits.sh [OLD_REV [NEW_BUILD_DIR]]
#
# OLD_REV defaults to 07a5840 (where the architecture work branched from main);
# NEW_BUILD_DIR to build. The old build is kept in $SAME_BITS_CACHE (default
# /tmp/vae-same-bits-<rev>) so a second run does not rebuild it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD_REV=${1:-07a5840}
NEW_BUILD=${2:-$ROOT/build}
REV=$(git -C "$ROOT" rev-parse --short "$OLD_REV")
CACHE=${SAME_BITS_CACHE:-/tmp/vae-same-bits-$REV}
NEW=$NEW_BUILD/vae
DATA=$ROOT/tests/data/fmnist-small
[ -x "$NEW" ] || { echo "no $NEW: build it first" >&2; exit 2; }

OLD=$CACHE/build/vae
if [ ! -x "$OLD" ]; then
    # the worktree holds the old source only while it builds
    SRC=$(mktemp -d /tmp/vae-same-bits-src.XXXXXX)
    git -C "$ROOT" worktree add --detach "$SRC" "$REV" >/dev/null 2>&1
    trap 'git -C "$ROOT" worktree remove --force "$SRC" 2>/dev/null || true' EXIT
    mkdir -p "$CACHE"
    cmake -S "$SRC" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DVAE_BUILD_TESTS=OFF \
        >"$CACHE.log" 2>&1 || { echo "configuring $REV failed: see $CACHE.log" >&2; exit 2; }
    cmake --build "$CACHE/build" -j2 --target vae_cli >>"$CACHE.log" 2>&1 ||
        { echo "building $REV failed: see $CACHE.log" >&2; exit 2; }
    git -C "$ROOT" worktree remove --force "$SRC"
    trap - EXIT
fi

# name | flags (every run adds --data, --seed 5, --epochs 2, --quiet, --out)
CONFIGS=(
    "mlp vae|"
    "threads 1|--threads 1"
    "threads 2|--threads 2"
    "threads 3|--threads 3"
    "conv|--arch conv"
    "iwae k3|--model iwae --k 3"
    "cvae|--model cvae"
    "ae|--model ae"
    "sparse-ae|--model sparse-ae"
    "dae gaussian|--model dae --noise gaussian:0.2"
    "dae mask|--model dae --noise mask:0.3"
    "gaussian fixed|--likelihood gaussian --sigma 0.1"
    "gaussian learned|--likelihood gaussian --sigma learned"
    "gaussian learned-pixel|--likelihood gaussian --sigma learned-pixel"
    "cont. bernoulli|--likelihood continuous-bernoulli"
    "free bits|--free-bits 0.5"
    "clip|--clip-grad 5"
    "binarize|--binarize dynamic"
    "hidden 256,128|--hidden 256,128"
    "beta linear|--beta-schedule linear:2"
    "conv cvae threads 3|--arch conv --model cvae --threads 3"
)
WORK=$(mktemp -d /tmp/vae-same-bits-run.XXXXXX)
pass=0 fail=0
for entry in "${CONFIGS[@]}"; do
    name=${entry%%|*} flags=${entry#*|}
    for side in old new; do
        bin=$OLD; [ $side = new ] && bin=$NEW
        rm -rf "$WORK/$side"
        # shellcheck disable=SC2086
        "$bin" train --data "$DATA" --seed 5 --epochs 2 --quiet $flags --out "$WORK/$side" \
            >"$WORK/$side.log" 2>&1 || echo "($side failed: $(tail -1 "$WORK/$side.log"))"
    done
    if cmp -s "$WORK/old/checkpoint.safetensors" "$WORK/new/checkpoint.safetensors"; then
        printf 'same      %-24s %s\n' "$name" "$flags"
        pass=$((pass + 1))
    else
        printf 'DIFFERENT %-24s %s\n' "$name" "$flags"
        fail=$((fail + 1))
    fi
done
rm -rf "$WORK"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
