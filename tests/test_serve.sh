#!/usr/bin/env bash
# test_serve.sh - vae serve end to end: a tiny model trained on the shipped
# subset, the server on a free port, every API endpoint with curl (answers,
# PNG sizes and contents through png_check), malformed and hostile requests
# (each a 4xx with a one-line JSON error, the server alive afterwards), and a
# clean stop on SIGINT.
set -u
VAE=$1
DATA=$2/fmnist-small
PNGCHECK=$3
NAME=test-serve
. "$(dirname "$0")/lib.sh"
if "$VAE" serve --help 2>&1 | grep -q "built without libmicrohttpd"; then
    echo "skipped: vae was built without libmicrohttpd"; exit 0
fi
command -v curl >/dev/null || { echo "test_serve.sh: needs curl (bash scripts/install-deps.sh)" >&2; exit 1; }

"$VAE" train --data "$DATA" --epochs 1 --hidden 32 --latent 3 --batch 100 --threads 1 --samples 4 \
    --out "$T/run" --quiet >/dev/null 2>"$T/train_err.txt" || { bad "train: $(cat "$T/train_err.txt")"; report; exit; }

# --- usage errors come before any work
expect_fail "no model" "--model is required" "$VAE" serve
expect_fail "bad bind" "--bind expects an IPv4 or IPv6" "$VAE" serve --model "$T/run" --bind nowhere
expect_fail "bad port" "--port expects a whole number" "$VAE" serve --model "$T/run" --port 70000

# --- start it on any free port; the printed URL says which
"$VAE" serve --model "$T/run" --port 0 >"$T/out.txt" 2>"$T/err.txt" &
PID=$!
for _ in $(seq 200); do grep -q "http://" "$T/out.txt" 2>/dev/null && break; kill -0 $PID 2>/dev/null || break; sleep 0.1; done
U=$(grep -o 'http://[^ ]*' "$T/out.txt")
[ -n "$U" ] && ok || { bad "no URL printed: $(cat "$T/out.txt" "$T/err.txt")"; kill $PID; report; exit; }
case $U in http://127.0.0.1:*) ok ;; *) bad "not on loopback by default: $U" ;; esac

# CODE FILE ARGS...: the status of curl ARGS, the body in $T/FILE
req() { local f=$1; shift; curl -s -o "$T/$f" -w '%{http_code}' "$@"; }
# is_json_error NAME STATUS_EXPECTED ARGS...: a 4xx with one line {"error":"..."}
expect_error() {
    local name=$1 want=$2 code
    shift 2
    code=$(req e.json "$@")
    if [ "$code" != "$want" ]; then bad "$name: status $code, not $want: $(head -c 200 "$T/e.json")"; return; fi
    if [ "$(wc -l <"$T/e.json")" -ne 1 ] || ! grep -qE '^\{"error":".+"\}$' "$T/e.json"; then
        bad "$name: not a one-line JSON error: $(head -c 200 "$T/e.json")"; return
    fi
    ok
}
facts() { "$PNGCHECK" "$T/$1" 2>/dev/null; }

# --- the page and its files
[ "$(req page.html "$U")" = 200 ] && grep -q '<canvas id="map"' "$T/page.html" && ok || bad "GET /"
[ "$(req app.js "${U}app.js")" = 200 ] && grep -q "api/decode" "$T/app.js" && ok || bad "GET /app.js"
[ "$(req style.css "${U}style.css")" = 200 ] && ok || bad "GET /style.css"
curl -s -D - -o /dev/null "$U" | grep -qi "content-security-policy: default-src 'self'" && ok || bad "no CSP header"

# --- info: the facts vae info prints, and what the map needs
[ "$(req info.json "${U}api/info")" = 200 ] && ok || bad "GET /api/info"
grep -q '"latent":3' "$T/info.json" && grep -q '"points":500' "$T/info.json" && ok || bad "info: $(head -c 300 "$T/info.json")"
grep -q '784-32-\[3\]-32-784' "$T/info.json" && ok || bad "info lacks vae info's architecture"
grep -q '"kind":"pca"' "$T/info.json" && grep -q '"order":\[' "$T/info.json" && ok || bad "info: no PCA or KL order"

# --- codes
[ "$(req codes.json "${U}api/codes?n=5")" = 200 ] && ok || bad "GET /api/codes"
grep -qE '^\{"n":5,"d":3,"index":\[0,100,200,300,400\],"labels":\[[0-9,]+\],"z":\[\[' "$T/codes.json" && ok \
    || bad "codes: $(head -c 300 "$T/codes.json")"
Z=$(grep -oE '"z":\[\[[^]]*\]' "$T/codes.json" | sed 's/"z":\[//') # the first code, [a,b,c]

# --- decode: one code, a batch as a grid, a scale
[ "$(req d.png -X POST -d "{\"z\":$Z}" "${U}api/decode")" = 200 ] && ok || bad "decode: $(cat "$T/d.png")"
set -- $(facts d.png)
[ "${1:-}x${2:-}" = 28x28 ] && ok || bad "decode: a ${1:-?}x${2:-?} PNG, not 28x28"
awk -v s="${4:-0}" 'BEGIN { exit !(s > 5) }' && ok || bad "decode: a blank image (std ${4:-?})"
[ "$(req g.png -X POST -d '{"z":[[0,0,0],[1,0,0],[0,1,0],[0,0,1]],"cols":2,"scale":2}' "${U}api/decode")" = 200 ] && ok || bad "decode a batch"
set -- $(facts g.png)
[ "${1:-}x${2:-}" = 115x115 ] && ok || bad "decode 4 at scale 2 in 2 columns: ${1:-?}x${2:-?}, not 115x115"

# --- interpolate, sample, image, encode (of the test image's own PNG)
[ "$(req i.png -X POST -d '{"a":[-2,0,0],"b":[2,0,0],"steps":6,"slerp":1}' "${U}api/interpolate")" = 200 ] && ok || bad "interpolate"
set -- $(facts i.png)
[ "${1:-}x${2:-}" = 175x30 ] && ok || bad "interpolate 6 steps: ${1:-?}x${2:-?}, not 175x30"
[ "$(req s.json "${U}api/sample?n=2&seed=7")" = 200 ] && grep -qE '^\{"seed":7,"z":\[\[[^]]+\],\[[^]]+\]\]\}$' "$T/s.json" && ok || bad "sample: $(cat "$T/s.json")"
req s2.json "${U}api/sample?n=2&seed=7" >/dev/null; cmp -s "$T/s.json" "$T/s2.json" && ok || bad "sample: the same seed gave other codes"
[ "$(req t.png "${U}api/image?i=0")" = 200 ] && ok || bad "image"
set -- $(facts t.png)
[ "${1:-}x${2:-}" = 28x28 ] && ok || bad "image: ${1:-?}x${2:-?}"
[ "$(req enc.json -X POST --data-binary @"$T/t.png" "${U}api/encode")" = 200 ] && ok || bad "encode: $(cat "$T/enc.json")"
# test image 0's PNG (8 bits, lossless) encodes to its code on the map
python3 - "$T/enc.json" "$T/codes.json" <<'EOF' 2>/dev/null && ok || bad "encode of test image 0 is not its code: $(cat "$T/enc.json")"
import json, sys
e, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(e["z"]) == 3 and len(e["logvar"]) == 3
assert all(abs(a - b) < 1e-4 for a, b in zip(e["z"], c["z"][0]))
EOF

# --- malformed and hostile requests: a 4xx and one JSON line each
expect_error "NaN" 400 -X POST -d '{"z":[NaN,0,0]}' "${U}api/decode"
expect_error "Infinity" 400 -X POST -d '{"z":[Infinity,0,0]}' "${U}api/decode"
expect_error "1e999" 400 -X POST -d '{"z":[1e999,0,0]}' "${U}api/decode"
expect_error "huge z" 400 -X POST -d '{"z":[1e9,0,0]}' "${U}api/decode"
expect_error "wrong length" 400 -X POST -d '{"z":[0,0]}' "${U}api/decode"
expect_error "no z" 400 -X POST -d '{}' "${U}api/decode"
expect_error "bad JSON" 400 -X POST -d '{"z":[0,0,0]' "${U}api/decode"
expect_error "trailing" 400 -X POST -d '{"z":[0,0,0]} {}' "${U}api/decode"
expect_error "string" 400 -X POST -d '{"z":"0,0,0"}' "${U}api/decode"
expect_error "ragged" 400 -X POST -d '{"z":[[0,0,0],[0,0]]}' "${U}api/decode"
expect_error "deep" 400 -X POST -d '{"z":[[[0,0,0]]]}' "${U}api/decode"
expect_error "duplicate key" 400 -X POST -d '{"z":[0,0,0],"z":[0,0,0]}' "${U}api/decode"
expect_error "unknown key" 400 -X POST -d '{"z":[0,0,0],"lable":1}' "${U}api/decode"
expect_error "label, not a CVAE" 400 -X POST -d '{"z":[0,0,0],"label":1}' "${U}api/decode"
expect_error "65 codes" 400 -X POST -d "{\"z\":[$(printf '[0,0,0],%.0s' $(seq 64))[0,0,0]]}" "${U}api/decode"
expect_error "fractional scale" 400 -X POST -d '{"z":[0,0,0],"scale":1.5}' "${U}api/decode"
expect_error "empty body" 400 -X POST "${U}api/decode"
expect_error "binary body" 400 -X POST --data-binary @"$T/t.png" "${U}api/decode"
head -c 300000 /dev/zero | tr '\0' ' ' >"$T/big.txt"
expect_error "huge body" 413 -X POST --data-binary @"$T/big.txt" "${U}api/decode"
expect_error "steps 1" 400 -X POST -d '{"a":[0,0,0],"b":[1,1,1],"steps":1}' "${U}api/interpolate"
expect_error "GET decode" 405 "${U}api/decode"
expect_error "POST info" 405 -X POST -d x "${U}api/info"
expect_error "no endpoint" 404 "${U}api/nothing"
expect_error "no file" 404 "${U}../etc/passwd"
expect_error "codes n=0" 400 "${U}api/codes?n=0"
expect_error "codes n=abc" 400 "${U}api/codes?n=abc"
expect_error "codes n huge" 400 "${U}api/codes?n=99999999999999999999999"
expect_error "unknown query" 400 "${U}api/codes?N=3"
expect_error "sample n=65" 400 "${U}api/sample?n=65"
expect_error "image past the end" 400 "${U}api/image?i=500"
expect_error "image without i" 400 "${U}api/image"
expect_error "not a PNG" 400 -X POST --data-binary 'GIF89a...' "${U}api/encode"
expect_error "empty PNG" 400 -X POST "${U}api/encode"
head -c 100 "$T/t.png" >"$T/cut.png"
expect_error "truncated PNG" 400 -X POST --data-binary @"$T/cut.png" "${U}api/encode"
expect_error "PNG of the wrong size" 400 -X POST --data-binary @"$T/g.png" "${U}api/encode"
expect_error "label on encode" 400 -X POST --data-binary @"$T/t.png" "${U}api/encode?label=1"
head -c 5000000 /dev/zero >"$T/big.bin"
expect_error "huge PNG" 413 -X POST --data-binary @"$T/big.bin" "${U}api/encode"
expect_error "foreign Host" 421 -H "Host: attacker.example:80" "${U}api/info"
# raw HTTP garbage and a client that sends half a request and goes away
printf 'GARBAGE\r\n\r\n' | curl -s --max-time 1 telnet://"${U#http://}" >/dev/null 2>&1
printf 'POST /api/decode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"z":' \
    | curl -s --max-time 1 telnet://"${U#http://}" >/dev/null 2>&1
# a chunked body over the limit has no Content-Length to refuse early: dropped
head -c 300000 /dev/zero | curl -s -o /dev/null -X POST -H 'Transfer-Encoding: chunked' \
    --data-binary @- "${U}api/decode" 2>/dev/null
kill -0 $PID 2>/dev/null && ok || bad "the server died on hostile requests"
[ "$(req after.json "${U}api/info")" = 200 ] && ok || bad "the server stopped answering after hostile requests"

# --- Ctrl-C stops it cleanly: exit 130 (as vae train's), a last line
kill -INT $PID
wait $PID
rc=$?
[ $rc -eq 130 ] && ok || bad "SIGINT: exit $rc, not 130: $(cat "$T/err.txt")"
grep -q "vae serve: stopped" "$T/err.txt" && ok || bad "no 'stopped' line: $(cat "$T/err.txt")"
report
