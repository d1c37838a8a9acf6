#!/usr/bin/env bash
# serve_browser.sh - vae serve's page in headless chromium (tests/serve_browser.js): trains a
# model (or takes one), starts the server on a free port and runs the browser checks, leaving
# screenshots in OUTDIR. The ctest `serve_browser`.
#
# usage: bash tests/serve_browser.sh [--model M] [--data D] [--latent N] [BUILD_DIR [OUTDIR]]
#   needs Debian's chromium and npm's puppeteer-core in tests/browser/node_modules (both
#   installed by `bash scripts/install-deps.sh --test`; $NODE_MODULES names another folder).
#   Without them it exits 77 (ctest: skipped), or 1 when VAE_REQUIRE_BROWSER=1 (scripts/test.sh
#   sets it, so CI cannot skip it). Without --model it trains a VAE on --data (default
#   tests/data/fmnist-small) for a few epochs with --latent (default 2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL= DATA=$ROOT/tests/data/fmnist-small LATENT=2
while [ $# -gt 0 ]; do
    case $1 in
    --model) MODEL=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --latent) LATENT=$2; shift 2 ;;
    *) break ;;
    esac
done
B=$(cd "${1:-$ROOT/build}" && pwd)
OUT=${2:-$(mktemp -d /tmp/vae-serve-shots-XXXXXX)}
mkdir -p "$OUT"
export NODE_PATH=${NODE_MODULES:-$ROOT/tests/browser/node_modules}
missing() { # what is missing: a skip, unless the caller requires the browser test
    echo "serve_browser.sh: $1 (bash scripts/install-deps.sh --test installs it)" >&2
    [ "${VAE_REQUIRE_BROWSER:-0}" = 1 ] && exit 1
    exit 77
}
[ -d "$NODE_PATH/puppeteer-core" ] || missing "no puppeteer-core in $NODE_PATH"
command -v node >/dev/null || missing "no node"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing "no ${CHROMIUM:-/usr/bin/chromium}"
T=$(mktemp -d /tmp/vae-serve-browser-XXXXXX)
trap 'kill $PID 2>/dev/null; rm -rf "$T"' EXIT
PID=
if [ -z "$MODEL" ]; then
    "$B/vae" train --data "$DATA" --epochs 5 --latent "$LATENT" --batch 100 --out "$T/run" --quiet >/dev/null
    MODEL=$T/run
fi
"$B/vae" serve --model "$MODEL" --port 0 >"$T/out.txt" 2>"$T/err.txt" &
PID=$!
for _ in $(seq 300); do grep -q http:// "$T/out.txt" && break; sleep 0.1; done
URL=$(grep -o 'http://[^ ]*' "$T/out.txt")
# a test image's PNG to upload, as a user would save one
curl -s -o "$T/upload-test-image-7.png" "${URL}api/image?i=7"
node "$ROOT/tests/serve_browser.js" "$URL" "$OUT" "$T/upload-test-image-7.png"
echo "screenshots in $OUT"
