#!/usr/bin/env bash
# test_pictures.sh VAE TESTS_DATA_DIR PNG_CHECK - the picture commands end
# to end: tiny models trained on the shipped subset (latent 2, 5 and 1);
# interpolate, traverse, manifold, embed and curves each write a PNG of the
# size their layout gives and not blank (png_check counts colours and the
# grey-level spread), embed's CSV has a row per test image; bad input gives
# one clear line and no output.
set -u
VAE=$1
DATA=$2/fmnist-small
PNGCHECK=$3
NAME=test-pictures
. "$(dirname "$0")/lib.sh"

# "W H colours std nonwhite" of a PNG (png_check), or nothing
facts() { "$PNGCHECK" "$1" 2>/dev/null; }
# check_png NAME FILE WxH MIN_COLOURS MIN_STD: size exact, content varied
check_png() {
    local name=$1 f=$2 size=$3 mincol=$4 minstd=$5 w h col std nw
    if [ ! -s "$f" ]; then bad "$name: no $f"; return; fi
    read -r w h col std nw <<<"$(facts "$f")"
    [ "${w:-0}x${h:-0}" = "$size" ] && ok || bad "$name: $f is ${w:-?}x${h:-?}, expected $size"
    [ "${col:-0}" -ge "$mincol" ] && ok || bad "$name: $f has ${col:-0} colours (< $mincol): blank?"
    awk -v s="${std:-0}" -v m="$minstd" 'BEGIN { exit !(s >= m) }' && ok ||
        bad "$name: $f grey-level spread ${std:-0} < $minstd: blank?"
}
# the PNG's size from its IHDR chunk, read with od (independent of png_check)
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $2*65536+$3*256+$4 "x" $6*65536+$7*256+$8}'; }

for d in 2 5 1; do
    "$VAE" train --data "$DATA" --epochs 1 --hidden 64 --latent $d --batch 100 --threads 1 \
        --quiet --samples 4 --out "$T/m$d" >/dev/null 2>"$T/err.txt" ||
        { echo "cannot train the latent-$d model: $(cat "$T/err.txt")" >&2; exit 1; }
done
M2=$T/m2/model.safetensors M5=$T/m5/model.safetensors M1=$T/m1/model.safetensors
P=$T/p
mkdir -p "$P"

# --- help texts list every flag with its default
for c in interpolate traverse manifold embed curves; do
    "$VAE" $c --help >"$T/h.txt" && ok || bad "$c --help"
    grep -q "usage: vae $c" "$T/h.txt" && ok || bad "$c --help lacks usage"
done
for o in --steps --scale --data -o; do grep -qE -- "$o .*\[" <("$VAE" interpolate --help) && ok || bad "interpolate --help: $o"; done
for o in --range --steps --image --scale; do grep -qE -- "$o .*\[" <("$VAE" traverse --help) && ok || bad "traverse --help: $o"; done
for o in --n --dims --scale; do grep -qE -- "$o .*\[" <("$VAE" manifold --help) && ok || bad "manifold --help: $o"; done
"$VAE" --help | grep -q manifold && ok || bad "vae --help lacks the picture commands"

# --- interpolate: steps + 2 tiles of 28*scale + 2; width at least 400,
# height the strip + 80 for the title and labels
"$VAE" interpolate --model "$M5" --data "$DATA" --from 3 --to 7 --steps 4 --scale 1 \
    -o "$P/i.png" 2>/dev/null && ok || bad "interpolate"
check_png interpolate "$P/i.png" 400x112 20 10
# the end tiles are the real test images 3 and 7, pixel for pixel: the strip
# (6 tiles of 30 = 182 px) is centred in 400 px at y 62, tiles start 2 px in
test_image() { gzip -dc "$DATA/t10k-images-idx3-ubyte.gz" | od -An -tu1 -v -j$((16 + $1 * 784)) -N784 | xargs; }
tile() { "$PNGCHECK" "$1" "$2" "$3" 28 28 | sed -n 2p; }
[ "$(tile "$P/i.png" 111 64)" = "$(test_image 3)" ] && ok || bad "interpolate: the first tile is not test image 3"
[ "$(tile "$P/i.png" $((111 + 5 * 30)) 64)" = "$(test_image 7)" ] && ok || bad "interpolate: the last tile is not test image 7"
[ "$(tile "$P/i.png" $((111 + 30)) 64)" != "$(test_image 3)" ] && ok || bad "interpolate: the second tile is the input, not a decoding"
"$VAE" interpolate --model "$M5" --data "$DATA" --from 3 --to 7 -o "$P/i10.png" 2>/dev/null
check_png "interpolate default" "$P/i10.png" 730x140 20 10   # 12 tiles of 58
[ "$(png_size "$P/i10.png")" = "730x140" ] && ok || bad "IHDR of i10.png: $(png_size "$P/i10.png")"
"$VAE" interpolate --model "$M5" --data "$DATA" --from 3 --to 7 --slerp -o "$P/is.png" 2>/dev/null
check_png "interpolate --slerp" "$P/is.png" 730x140 20 10
cmp -s "$P/i10.png" "$P/is.png" && bad "--slerp drew the same path as linear" || ok
"$VAE" interpolate --model "$M5" --data "$DATA" --from 3 --to 7 -o "$P/i10b.png" 2>/dev/null
cmp -s "$P/i10.png" "$P/i10b.png" && ok || bad "interpolate is not deterministic"

# image files as the ends: a grey 28x28 PNG and an RGB one, written with
# python's zlib (skipped without python3)
if command -v python3 >/dev/null; then
    python3 - "$T" <<'PY'
import struct, sys, zlib
def png(path, w, h, rows, ctype):
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    raw = b''.join(b'\0' + r for r in rows)
    ihdr = struct.pack('>IIBBBBB', w, h, 8, ctype, 0, 0, 0)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
t = sys.argv[1]
png(t + '/a.png', 28, 28, [bytes(255 if 8 <= x < 20 and 4 <= y < 24 else 0 for x in range(28)) for y in range(28)], 0)
png(t + '/b.png', 28, 28, [bytes(v for x in range(28) for v in ((255, 0, 0) if (x - 14) ** 2 + (y - 14) ** 2 < 80 else (0, 0, 0))) for y in range(28)], 2)
png(t + '/big.png', 30, 28, [bytes(30) for y in range(28)], 0)
PY
    "$VAE" interpolate --model "$M5" --from-image "$T/a.png" --to-image "$T/b.png" -o "$P/if.png" 2>/dev/null &&
        ok || bad "interpolate --from-image --to-image"
    check_png "interpolate image files" "$P/if.png" 730x140 20 10
    "$VAE" interpolate --model "$M5" --data "$DATA" --from-image "$T/a.png" --to 7 -o "$P/if2.png" 2>/dev/null &&
        ok || bad "interpolate --from-image --to"
    check_png "interpolate file to test image" "$P/if2.png" 730x140 20 10
    expect_fail "--from-image of the wrong size" "big.png: the image is 30x28 but the model takes 28x28" \
        "$VAE" interpolate --model "$M5" --from-image "$T/big.png" --to-image "$T/a.png" -o "$P/x.png"
    head -c 60 "$T/a.png" >"$T/cut.png"
    expect_fail "--to-image truncated" "--to-image .*cut.png" \
        "$VAE" interpolate --model "$M5" --from-image "$T/a.png" --to-image "$T/cut.png" -o "$P/x.png"
else
    echo "skipped: --from-image cases (no python3 to write the PNGs)"
fi
expect_fail "--to-image not a PNG" "--to-image .*metrics.jsonl: cannot read it as a PNG image" \
    "$VAE" interpolate --model "$M5" --from 1 --to-image "$T/m5/metrics.jsonl" --data "$DATA" -o "$P/x.png"
expect_fail "--from and --from-image" "give --from or --from-image, not both" \
    "$VAE" interpolate --model "$M5" --from 1 --from-image "$T/m5/metrics.jsonl" --to 2 -o "$P/x.png"

# --- traverse: one row per latent dimension, --steps columns
"$VAE" traverse --model "$M5" --data "$DATA" --steps 7 -o "$P/t.png" 2>/dev/null && ok || bad "traverse"
check_png traverse "$P/t.png" 440x232 20 10        # 7x5 tiles of 30: 212x152
"$VAE" traverse --model "$M2" --data "$DATA" --image 4 --range 2 --scale 2 -o "$P/t2.png" 2>/dev/null &&
    ok || bad "traverse --image"
check_png "traverse --image" "$P/t2.png" 766x198 20 10   # 11x2 tiles of 58

"$VAE" traverse --model "$M5" --data "$DATA" --steps 7 --rows 2 -o "$P/t3.png" 2>/dev/null && ok || bad "traverse --rows"
check_png "traverse --rows 2" "$P/t3.png" 440x142 20 10  # 7x2 tiles of 30: 212x62, +64+16
expect_fail "traverse too large" "picture is too large" \
    "$VAE" traverse --model "$M5" --data "$DATA" --steps 100 --scale 16 -o "$P/x.png"

# --- manifold: n x n tiles with margins 86+20 across, 44+64 down
"$VAE" manifold --model "$M2" --n 5 -o "$P/m.png" 2>/dev/null && ok || bad "manifold"
check_png manifold "$P/m.png" 420x260 20 10
"$VAE" manifold --model "$M5" --data "$DATA" -o "$P/m5.png" 2>/dev/null && ok || bad "manifold 5-D"
check_png "manifold 5-D (dims by KL)" "$P/m5.png" 708x710 20 10
"$VAE" manifold --model "$M5" --dims 4,2 --n 6 -o "$P/m42.png" 2>/dev/null && ok || bad "manifold --dims"
check_png "manifold --dims" "$P/m42.png" 420x290 20 10

# --- embed: CSV with a header and one row per test image; the plot
"$VAE" embed --model "$M5" --data "$DATA" -o "$P/c5.csv" --plot "$P/e5.png" 2>/dev/null && ok || bad "embed"
[ "$(wc -l <"$P/c5.csv")" -eq 501 ] && ok || bad "embed CSV has $(wc -l <"$P/c5.csv") lines, expected 501"
[ "$(head -1 "$P/c5.csv")" = "index,label,z0,z1,z2,z3,z4" ] && ok || bad "embed CSV header: $(head -1 "$P/c5.csv")"
awk -F, 'NR > 1 && (NF != 7 || $1 != NR - 2 || $2 !~ /^[0-9]$/) { exit 1 }' "$P/c5.csv" && ok ||
    bad "embed CSV rows malformed"
# the labels are the data set's: the first test label of the subset
first_label=$(gzip -dc "$DATA/t10k-labels-idx1-ubyte.gz" | od -An -tu1 -j8 -N1 | tr -d ' ')
[ "$(sed -n 2p "$P/c5.csv" | cut -d, -f2)" = "$first_label" ] && ok || bad "embed CSV label column"
check_png "embed plot" "$P/e5.png" 860x660 100 10
"$VAE" embed --model "$M2" --data "$DATA" -n 100 -o "$P/c2.csv" --plot "$P/e2.png" 2>/dev/null && ok || bad "embed 2-D"
[ "$(wc -l <"$P/c2.csv")" -eq 101 ] && ok || bad "embed -n 100: $(wc -l <"$P/c2.csv") lines"
check_png "embed 2-D plot" "$P/e2.png" 860x660 100 10
"$VAE" embed --model "$M1" --data "$DATA" -o "$P/c1.csv" 2>/dev/null && ok || bad "embed 1-D CSV"
[ "$(head -1 "$P/c1.csv")" = "index,label,z0" ] && ok || bad "embed 1-D header"

# a data set without labels: an empty label column, one colour, no legend
mkdir -p "$T/nolabels" && cp "$DATA/t10k-images-idx3-ubyte.gz" "$T/nolabels/"
"$VAE" embed --model "$M5" --data "$T/nolabels" -n 50 -o "$P/c0.csv" --plot "$P/e0.png" 2>/dev/null &&
    ok || bad "embed without labels"
[ "$(sed -n 2p "$P/c0.csv" | cut -d, -f1-2)" = "0," ] && ok || bad "embed without labels: $(sed -n 2p "$P/c0.csv")"
check_png "embed plot without labels" "$P/e0.png" 860x660 20 5

# --- curves from the run's metrics log (and from the run directory)
"$VAE" curves "$T/m5/metrics.jsonl" -o "$P/cu.png" 2>/dev/null && ok || bad "curves"
check_png curves "$P/cu.png" 1140x440 50 5
"$VAE" curves "$T/m5" -o "$P/cu2.png" 2>/dev/null && ok || bad "curves RUN_DIR"
cmp -s "$P/cu.png" "$P/cu2.png" && ok || bad "curves of the directory differ from the file's"
# a log whose beta changes gets a third panel
cat >"$P/beta.jsonl" <<'LOG'
{"epoch":1,"step":10,"beta":0.5,"train_loss":300,"train_rec":290,"train_kl":20,"test_loss":280,"test_rec":270,"test_kl":20,"seconds":1,"images_per_s":1000}
{"epoch":2,"step":20,"beta":1,"train_loss":270,"train_rec":255,"train_kl":15,"test_loss":265,"test_rec":250,"test_kl":15,"seconds":1,"images_per_s":1000}

{"epoch":3,"step":30,"beta":1,"train_loss":260,"train_rec":246,"train_kl":14,"test_loss":262,"test_rec":248,"test_kl":14,"seconds":1,"images_per_s":1000}
LOG
"$VAE" curves "$P/beta.jsonl" -o "$P/cb.png" 2>/dev/null && ok || bad "curves with a beta schedule"
check_png "curves with beta" "$P/cb.png" 1700x440 50 5

# --- bad input: one line, non-zero exit, no output file
expect_fail "--from out of range" "--from 500 is out of range.*500 images" \
    "$VAE" interpolate --model "$M5" --data "$DATA" --from 500 --to 1 -o "$P/x.png"
expect_fail "--to out of range" "--to 9999 is out of range" \
    "$VAE" interpolate --model "$M5" --data "$DATA" --from 0 --to 9999 -o "$P/x.png"
expect_fail "--from negative" "--from expects" "$VAE" interpolate --model "$M5" --from -1 --to 1 -o "$P/x.png"
expect_fail "interpolate without --to" "--from and --to \\(or --from-image and --to-image\\) are required" \
    "$VAE" interpolate --model "$M5" --from 1 -o "$P/x.png"
expect_fail "interpolate --steps 0" "--steps expects a whole number in 2\.\.200, not '0'" \
    "$VAE" interpolate --model "$M5" --from 0 --to 1 --steps 0 -o "$P/x.png"
expect_fail "traverse --steps 0" "--steps expects" "$VAE" traverse --model "$M5" --steps 0 -o "$P/x.png"
expect_fail "traverse --range 0" "--range expects" "$VAE" traverse --model "$M5" --range 0 -o "$P/x.png"
expect_fail "traverse --image out of range" "--image 500 is out of range" \
    "$VAE" traverse --model "$M5" --data "$DATA" --image 500 -o "$P/x.png"
expect_fail "manifold on a 1-D latent" "m1/model.safetensors: manifold needs a latent space of at least 2 dimensions; this model has 1" \
    "$VAE" manifold --model "$M1" -o "$P/x.png"
expect_fail "manifold --dims out of range" "--dims 0,5: .*0\.\.4" "$VAE" manifold --model "$M5" --dims 0,5 -o "$P/x.png"
expect_fail "manifold --dims malformed" "--dims expects two different" "$VAE" manifold --model "$M5" --dims 3,3 -o "$P/x.png"
expect_fail "manifold --n 1" "--n expects" "$VAE" manifold --model "$M2" --n 1 -o "$P/x.png"
expect_fail "embed --plot on a 1-D latent" "--plot needs a latent space of at least 2" \
    "$VAE" embed --model "$M1" --data "$DATA" -o "$P/x.csv" --plot "$P/x.png"
expect_fail "curves on a checkpoint" "model.safetensors: binary data, not a metrics log" \
    "$VAE" curves "$M5" -o "$P/x.png"
printf 'epoch,loss\n1,300\n' >"$T/notlog.csv"
expect_fail "curves on a CSV" "notlog.csv:1: not a vae metrics log line" "$VAE" curves "$T/notlog.csv" -o "$P/x.png"
: >"$T/empty.jsonl"
expect_fail "curves on an empty file" "empty.jsonl: no epochs logged" "$VAE" curves "$T/empty.jsonl" -o "$P/x.png"
printf '{"epoch":1,"train_loss":3}\n' >"$T/partial.jsonl"
expect_fail "curves: a line without the terms" 'partial.jsonl:1: metrics line without a finite "train_rec"' \
    "$VAE" curves "$T/partial.jsonl" -o "$P/x.png"
expect_fail "curves on a missing file" "nope.jsonl: cannot open" "$VAE" curves "$T/nope.jsonl" -o "$P/x.png"
expect_fail "curves without a file" "expects exactly one metrics log" "$VAE" curves -o "$P/x.png"
[ -e "$P/x.png" ] || [ -e "$P/x.csv" ] && bad "a failing command left output behind" || ok
ls -A "$P" | grep -q '^\.' && bad "temporary files left behind" || ok

report
