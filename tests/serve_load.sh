#!/usr/bin/env bash
# serve_load.sh - the load test of vae serve (tests/serve_load.js) on an MLP and a conv model
# trained briefly here (the latency is the decoder's, not the weights'): 16 clients, 20 000
# decodes each. Not part of ctest (a minute, and the machine's full attention).
# usage: bash tests/serve_load.sh [BUILD_DIR] [N] [CLIENTS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-20000} C=${3:-16}
T=$(mktemp -d /tmp/vae-serve-load-XXXXXX)
PID=
trap 'kill $PID 2>/dev/null; rm -rf "$T"' EXIT
for arch in mlp conv; do
    "$B/vae" train --data "$ROOT/tests/data/fmnist-small" --arch $arch --epochs 1 --batch 100 \
        --out "$T/$arch" --quiet >/dev/null 2>&1
    "$B/vae" serve --model "$T/$arch" --port 0 >"$T/out.txt" 2>/dev/null &
    PID=$!
    for _ in $(seq 300); do grep -q http:// "$T/out.txt" && break; sleep 0.1; done
    URL=$(grep -o 'http://[^ ]*' "$T/out.txt")
    LATENT=$(curl -s "${URL}api/info" | grep -o '"latent":[0-9]*' | cut -d: -f2)
    printf '%-5s latent %s: ' $arch "$LATENT"
    node "$ROOT/tests/serve_load.js" "$URL" "$LATENT" "$N" "$C"
    kill -INT $PID; wait $PID || true
done
