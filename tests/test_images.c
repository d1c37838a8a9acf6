/* test_images.c - your own images through the library: PNG decoding of every
 * variant against the pixels written, PNG folders (classes, train/ + test/,
 * order, links, sizes, --resize), CSV parsing, the seeded split and data sets
 * from buffers. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io.h"
#include "pngwrite.h"
#include "test.h"

static char tmpdir[] = "/tmp/vae_test_images.XXXXXX";

static const char *tp(const char *fmt, const char *a)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8], name[256];
    snprintf(name, sizeof name, fmt, a ? a : "");
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void mkd(const char *p) { CHECK(mkdir(p, 0777) == 0); }

static void write_text(const char *p, const char *s)
{
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

static uint8_t *read_all(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    if (n < 0) return free(b), NULL;
    *len = (size_t)n;
    return b;
}

/* ------------------------------------------------------ PNG variants */

/* Every variant decodes to exactly the pixels written, and the probe says
 * the right channel count; a grey image promoted to RGB repeats its level. */
static void test_variants(void)
{
    const int w = 13, h = 7; // odd sizes: 4-bit packing and Adam7 passes with partial blocks
    for (int v = 0; v < PV_COUNT; v++) {
        const char *p = tp("%s.png", pv_names[v]);
        int c = pv_channels(v);
        uint8_t expect[13 * 7 * 3], *got = NULL;
        CHECK_EQ(pv_write(p, v, w, h, (uint64_t)v + 5, expect), 0);
        size_t len;
        uint8_t *buf = read_all(p, &len);
        CHECK(buf != NULL);
        if (!buf) continue;
        uint32_t pw, ph;
        int pc;
        vae_error err;
        CHECK_EQ(vae__png_probe(buf, len, p, &pw, &ph, &pc, &err), VAE_OK);
        CHECK_EQ(pw, w);
        CHECK_EQ(ph, h);
        CHECK_EQ(pc, c);
        CHECK_EQ(vae__png_decode(buf, len, p, c, &got, &pw, &ph, &err), VAE_OK);
        if (got) {
            int same = !memcmp(got, expect, (size_t)w * h * c);
            if (!same) fprintf(stderr, "variant %s: decoded pixels differ\n", pv_names[v]);
            CHECK(same);
            free(got);
        }
        if (c == 1) { // as RGB: each level three times
            CHECK_EQ(vae__png_decode(buf, len, p, 3, &got, &pw, &ph, &err), VAE_OK);
            int same = got != NULL;
            for (int i = 0; same && i < w * h; i++)
                same = got[3 * i] == expect[i] && got[3 * i + 1] == expect[i] && got[3 * i + 2] == expect[i];
            CHECK(same);
            free(got);
        } else { // a colour image cannot be read as grey
            CHECK_EQ(vae__png_decode(buf, len, p, 1, &got, &pw, &ph, &err), VAE_EFORMAT);
            CHECK(got == NULL);
        }
        // every truncation fails cleanly, with a message and no pixels
        int all_fail = 1;
        for (size_t cut = 0; cut < len; cut += 1 + len / 40) {
            got = NULL;
            int rc = vae__png_decode(buf, cut, p, c, &got, &pw, &ph, &err);
            if (rc != VAE_EFORMAT || got || !strstr(err.msg, p)) all_fail = 0, free(got);
        }
        CHECK(all_fail);
        free(buf);
    }
    // a corrupt IDAT CRC and a non-PNG are refused with a message
    const char *p = tp("rgb8.png", NULL);
    size_t len;
    uint8_t *buf = read_all(p, &len), *got = NULL;
    uint32_t pw, ph;
    vae_error err;
    if (buf) {
        buf[len - 20] ^= 0x55; // inside the last IDAT or its CRC
        CHECK_EQ(vae__png_decode(buf, len, p, 3, &got, &pw, &ph, &err), VAE_EFORMAT);
        free(buf);
    }
    const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1};
    CHECK_EQ(vae__png_decode(jpeg, sizeof jpeg, "x.png", 1, &got, &pw, &ph, &err), VAE_EFORMAT);
    CHECK(strstr(err.msg, "not a PNG file (JPEG data)") != NULL);
}

/* An IHDR of 100000 x 100000 in a tiny file: refused before allocating. */
static void test_png_limits(void)
{
    const char *p = tp("big.png", NULL);
    uint8_t e[4 * 4];
    CHECK_EQ(pv_write(p, PV_GREY8, 4, 4, 1, e), 0);
    size_t len;
    uint8_t *buf = read_all(p, &len), *got = NULL;
    if (!buf) return;
    // IHDR width and height at bytes 16..23; the CRC is now wrong too, either refusal is right
    const uint8_t big[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};
    memcpy(buf + 16, big, 8);
    uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), buf + 12, 17);
    buf[29] = (uint8_t)(crc >> 24), buf[30] = (uint8_t)(crc >> 16), buf[31] = (uint8_t)(crc >> 8), buf[32] = (uint8_t)crc;
    uint32_t pw, ph;
    vae_error err;
    CHECK_EQ(vae__png_decode(buf, len, p, 1, &got, &pw, &ph, &err), VAE_EFORMAT);
    if (!strstr(err.msg, "exceeds")) fprintf(stderr, "big PNG: %s\n", err.msg);
    CHECK(strstr(err.msg, "exceeds") != NULL || strstr(err.msg, "limit") != NULL);
    CHECK(got == NULL);
    free(buf);
}

/* ------------------------------------------------------- PNG folders */

static void check_pixels(const vae_dataset *ds, size_t i, const uint8_t *hwc, int c, int h, int w)
{
    const uint8_t *img = vae_dataset_images(ds) + i * (size_t)c * h * w;
    int same = 1;
    for (int k = 0; k < c; k++)
        for (int p = 0; p < h * w; p++) same &= img[(size_t)k * h * w + p] == hwc[(size_t)p * c + k];
    CHECK(same);
}

static void test_folders(void)
{
    vae_data_options o;
    vae_data_options_default(&o);
    vae_dataset *tr = NULL, *te = NULL;
    vae_error err;
    vae_dataset_info info;
    uint8_t e[6][8 * 8 * 3];

    // class folders created out of order: the data set is in byte order of names
    mkd(tp("cls", NULL));
    mkd(tp("cls/zebra", NULL));
    mkd(tp("cls/Apple", NULL));
    mkd(tp("cls/mouse", NULL));
    CHECK_EQ(pv_write(tp("cls/zebra/b.png", NULL), PV_GREY8, 8, 8, 1, e[0]), 0);
    CHECK_EQ(pv_write(tp("cls/zebra/a.png", NULL), PV_PALETTE_GREY, 8, 8, 2, e[1]), 0);
    CHECK_EQ(pv_write(tp("cls/mouse/x.PNG", NULL), PV_GREY16, 8, 8, 3, e[2]), 0);
    CHECK_EQ(pv_write(tp("cls/Apple/q.png", NULL), PV_GREY_INTERLACED, 8, 8, 4, e[3]), 0);
    CHECK_EQ(pv_write(tp("cls/Apple/p.png", NULL), PV_GREY_ALPHA, 8, 8, 5, e[4]), 0);
    write_text(tp("cls/Apple/notes.txt", NULL), "not an image\n");
    write_text(tp("cls/.DS_Store", NULL), "junk");
    o.test_fraction = 0.2; // 5 images: 1 held out
    CHECK_EQ(vae_data_open(tp("cls", NULL), &o, &tr, &te, &err), VAE_OK);
    if (tr && te) {
        vae_dataset_describe(tr, &info);
        CHECK(!strcmp(info.kind, "PNG folder"));
        CHECK_EQ(info.count + vae_dataset_count(te), 5);
        CHECK_EQ(vae_dataset_count(te), 1);
        CHECK_EQ(info.channels, 1); // a palette of greys stays grey
        CHECK_EQ(info.num_classes, 3);
        CHECK_EQ(info.skipped, 2);
        CHECK(!strcmp(vae_dataset_class_name(tr, 0), "Apple"));
        CHECK(!strcmp(vae_dataset_class_name(tr, 1), "mouse"));
        CHECK(!strcmp(vae_dataset_class_name(tr, 2), "zebra"));
        CHECK(strstr(info.split, "held out") != NULL);
    }
    vae_dataset_free(tr), vae_dataset_free(te);
    // the whole folder in order: Apple/p, Apple/q, mouse/x, zebra/a, zebra/b
    vae_dataset *all = NULL;
    CHECK_EQ(vae__open_pngdir(tp("cls", NULL), &o, &all, &te, &err), VAE_OK);
    CHECK(te == NULL);
    if (all) {
        const int order[5] = {4, 3, 2, 1, 0}, label[5] = {0, 0, 1, 2, 2};
        CHECK_EQ(vae_dataset_count(all), 5);
        for (int i = 0; i < 5; i++) {
            check_pixels(all, (size_t)i, e[order[i]], 1, 8, 8);
            CHECK_EQ(vae_dataset_labels(all)[i], label[i]);
        }
    }
    vae_dataset_free(all);
    tr = te = NULL;
    vae_dataset_free(tr), vae_dataset_free(te);

    // one colour image makes the data set RGB; grey images are repeated into it
    mkd(tp("mixed", NULL));
    CHECK_EQ(pv_write(tp("mixed/1.png", NULL), PV_GREY8, 8, 8, 7, e[0]), 0);
    CHECK_EQ(pv_write(tp("mixed/2.png", NULL), PV_RGBA, 8, 8, 8, e[1]), 0);
    CHECK_EQ(pv_write(tp("mixed/3.png", NULL), PV_PALETTE_TRNS, 8, 8, 9, e[2]), 0);
    mkd(tp("mixed/train", NULL)); // train/ alone is an ordinary class... so mixing is refused
    CHECK_EQ(vae_data_open(tp("mixed", NULL), &o, &tr, &te, &err), VAE_EINVAL);
    CHECK(strstr(err.msg, "holds both images") != NULL);
    CHECK(rmdir(tp("mixed/train", NULL)) == 0);
    CHECK_EQ(vae_data_open(tp("mixed", NULL), &o, &tr, &te, &err), VAE_OK);
    if (tr && te) {
        CHECK_EQ(vae_dataset_count(tr), 2);
        CHECK_EQ(vae_dataset_count(te), 1);
        vae_dataset_describe(tr, &info);
        CHECK_EQ(info.channels, 3);
        CHECK_EQ(info.num_classes, 0);
        CHECK(vae_dataset_labels(tr) == NULL);
    }
    vae_dataset *whole = NULL;
    vae_dataset_free(tr), vae_dataset_free(te);
    // the whole folder through vae__open_pngdir (no split): pixels of all three
    CHECK_EQ(vae__open_pngdir(tp("mixed", NULL), &o, &whole, &te, &err), VAE_OK);
    CHECK(te == NULL);
    if (whole) {
        uint8_t g3[64 * 3];
        for (int p = 0; p < 64; p++) g3[3 * p] = g3[3 * p + 1] = g3[3 * p + 2] = e[0][p];
        check_pixels(whole, 0, g3, 3, 8, 8);
        check_pixels(whole, 1, e[1], 3, 8, 8);
        check_pixels(whole, 2, e[2], 3, 8, 8);
    }
    vae_dataset_free(whole);

    // sizes: mixed without resize is an error naming both files; --resize fixes it
    CHECK_EQ(pv_write(tp("mixed/4.png", NULL), PV_RGB8, 10, 6, 10, e[3]), 0);
    CHECK_EQ(vae_data_open(tp("mixed", NULL), &o, &tr, &te, &err), VAE_ESHAPE);
    CHECK(strstr(err.msg, "4.png: 10x6 pixels, but") && strstr(err.msg, "1.png is 8x8") &&
          strstr(err.msg, "--resize"));
    CHECK(tr == NULL && te == NULL);
    o.resize_w = 5, o.resize_h = 4;
    CHECK_EQ(vae__open_pngdir(tp("mixed", NULL), &o, &whole, &te, &err), VAE_OK);
    if (whole) {
        vae_dataset_describe(whole, &info);
        CHECK(info.width == 5 && info.height == 4 && info.channels == 3 && info.resized);
        CHECK_EQ(info.count, 4);
    }
    vae_dataset_free(whole);
    o.resize_w = o.resize_h = 0;

    // over the memory budget: the same bytes, from a mapped temporary file
    vae_dataset *mem = NULL, *disk = NULL, *dte = NULL;
    CHECK_EQ(vae__open_pngdir(tp("mixed", NULL), &o, &mem, &te, &err), VAE_ESHAPE); // 4.png
    o.resize_w = 8, o.resize_h = 8;
    CHECK_EQ(vae__open_pngdir(tp("mixed", NULL), &o, &mem, &te, &err), VAE_OK);
    o.max_memory = 100; // bytes: 4 images of 8x8x3 do not fit
    CHECK_EQ(vae__open_pngdir(tp("mixed", NULL), &o, &disk, &te, &err), VAE_OK);
    if (mem && disk) {
        vae_dataset_info im, id;
        vae_dataset_describe(mem, &im);
        vae_dataset_describe(disk, &id);
        CHECK(!im.on_disk && id.on_disk);
        CHECK(!memcmp(vae_dataset_images(mem), vae_dataset_images(disk), 4 * 192));
        // the held-out split works on the mapping too, and picks the same images
        vae_dataset *mte = NULL;
        CHECK_EQ(vae__dataset_hold_out(mem, 0.25, 3, &mte, &err), VAE_OK);
        CHECK_EQ(vae__dataset_hold_out(disk, 0.25, 3, &dte, &err), VAE_OK);
        if (mte && dte) {
            CHECK(!memcmp(vae_dataset_images(mte), vae_dataset_images(dte), 192));
            CHECK(!memcmp(vae_dataset_images(mem), vae_dataset_images(disk), 3 * 192));
            vae_dataset_info it;
            vae_dataset_describe(dte, &it);
            CHECK(it.on_disk); // 192 bytes are over 100 too
        }
        vae_dataset_free(mte);
    }
    vae_dataset_free(mem), vae_dataset_free(disk), vae_dataset_free(dte);
    o.max_memory = 0;
    o.resize_w = o.resize_h = 0;

    // train/ + test/ give the split; a test class unknown to train/ is refused
    mkd(tp("split", NULL));
    mkd(tp("split/train", NULL));
    mkd(tp("split/test", NULL));
    mkd(tp("split/train/a", NULL));
    mkd(tp("split/train/b", NULL));
    mkd(tp("split/test/b", NULL));
    CHECK_EQ(pv_write(tp("split/train/a/1.png", NULL), PV_RGB8, 8, 8, 11, e[0]), 0);
    CHECK_EQ(pv_write(tp("split/train/b/1.png", NULL), PV_RGB16, 8, 8, 12, e[1]), 0);
    CHECK_EQ(pv_write(tp("split/test/b/1.png", NULL), PV_RGB_INTERLACED, 8, 8, 13, e[2]), 0);
    write_text(tp("split/README", NULL), "about the data\n");
    CHECK_EQ(vae_data_open(tp("split", NULL), &o, &tr, &te, &err), VAE_OK);
    if (tr && te) {
        vae_dataset_describe(te, &info);
        CHECK(!strcmp(info.split, "test/ folder"));
        CHECK_EQ(info.count, 1);
        CHECK_EQ(info.num_classes, 2);
        CHECK_EQ(vae_dataset_labels(te)[0], 1); // b is class 1, as in train/
        CHECK_EQ(vae_dataset_count(tr), 2);
        check_pixels(tr, 0, e[0], 3, 8, 8);
        check_pixels(tr, 1, e[1], 3, 8, 8);
        check_pixels(te, 0, e[2], 3, 8, 8);
        CHECK_EQ(info.skipped, 1);
    }
    vae_dataset_free(tr), vae_dataset_free(te);
    mkd(tp("split/test/c", NULL));
    CHECK_EQ(pv_write(tp("split/test/c/1.png", NULL), PV_RGB8, 8, 8, 14, e[3]), 0);
    CHECK_EQ(vae_data_open(tp("split", NULL), &o, &tr, &te, &err), VAE_EINVAL);
    CHECK(strstr(err.msg, "class 'c' is not among the training classes") != NULL);

    // links: inside the folder they are followed, outside they are refused
    mkd(tp("links", NULL));
    CHECK_EQ(pv_write(tp("links/a.png", NULL), PV_GREY8, 8, 8, 15, e[0]), 0);
    CHECK(symlink("a.png", tp("links/b.png", NULL)) == 0);
    CHECK_EQ(vae__open_pngdir(tp("links", NULL), &o, &whole, &te, &err), VAE_OK);
    if (whole) {
        CHECK_EQ(vae_dataset_count(whole), 2);
        check_pixels(whole, 1, e[0], 1, 8, 8);
    }
    vae_dataset_free(whole);
    CHECK(symlink(tp("mixed/1.png", NULL), tp("links/c.png", NULL)) == 0);
    CHECK_EQ(vae__open_pngdir(tp("links", NULL), &o, &whole, &te, &err), VAE_EINVAL);
    CHECK(strstr(err.msg, "c.png: a symbolic link pointing outside the data folder") != NULL);
    CHECK(unlink(tp("links/c.png", NULL)) == 0);
    CHECK(symlink("missing.png", tp("links/d.png", NULL)) == 0);
    CHECK_EQ(vae__open_pngdir(tp("links", NULL), &o, &whole, &te, &err), VAE_ENOENT);
    CHECK(strstr(err.msg, "d.png: a symbolic link to nowhere") != NULL);
    CHECK(unlink(tp("links/d.png", NULL)) == 0);

    // an empty folder, a folder of non-images, a .png that is not one, a truncated PNG
    mkd(tp("empty", NULL));
    CHECK_EQ(vae_data_open(tp("empty", NULL), &o, &tr, &te, &err), VAE_EINVAL);
    CHECK(strstr(err.msg, "no *.png images") != NULL);
    write_text(tp("empty/a.txt", NULL), "x");
    CHECK_EQ(vae_data_open(tp("empty", NULL), &o, &tr, &te, &err), VAE_EINVAL);
    write_text(tp("links/fake.png", NULL), "<html>not found</html>");
    CHECK_EQ(vae_data_open(tp("links", NULL), &o, &tr, &te, &err), VAE_EFORMAT);
    CHECK(strstr(err.msg, "fake.png: not a PNG file") != NULL);
    CHECK(unlink(tp("links/fake.png", NULL)) == 0);
    size_t len;
    uint8_t *buf = read_all(tp("links/a.png", NULL), &len);
    if (buf) {
        FILE *f = fopen(tp("links/cut.png", NULL), "wb");
        if (f) fwrite(buf, 1, len - 13, f), fclose(f); // without IEND's last bytes
        free(buf);
    }
    CHECK_EQ(vae_data_open(tp("links", NULL), &o, &tr, &te, &err), VAE_EFORMAT);
    CHECK(strstr(err.msg, "cut.png: bad PNG") != NULL);
}

/* ----------------------------------------------------------------- CSV */

static int csv(const char *text, const vae_data_options *o, vae_dataset **ds, vae_error *err)
{
    return vae__csv_parse(text, strlen(text), "t.csv", o, ds, err);
}

static void csv_bad(const char *text, const vae_data_options *o, const char *msg)
{
    vae_dataset *ds = NULL;
    vae_error err = {0, ""};
    int rc = csv(text, o, &ds, &err);
    CHECK(rc != VAE_OK);
    CHECK(ds == NULL);
    if (!strstr(err.msg, msg)) fprintf(stderr, "CSV message '%s' lacks '%s'\n", err.msg, msg);
    CHECK(strstr(err.msg, msg) != NULL);
    vae_dataset_free(ds);
}

static void test_csv(void)
{
    vae_data_options o;
    vae_data_options_default(&o);
    vae_dataset *ds = NULL;
    vae_error err;
    // BOM, a header (detected), CRLF, spaces, no final newline, 2x2 grey
    CHECK_EQ(csv("\xEF\xBB\xBFp0,p1,p2,p3\r\n0, 255 ,128,7\r\n1,2,3,4.4", &o, &ds, &err), VAE_OK);
    if (ds) {
        CHECK_EQ(vae_dataset_count(ds), 2);
        int c, h, w;
        vae_dataset_shape(ds, &c, &h, &w);
        CHECK(c == 1 && h == 2 && w == 2);
        const uint8_t want[8] = {0, 255, 128, 7, 1, 2, 3, 4};
        CHECK(!memcmp(vae_dataset_images(ds), want, 8));
        CHECK(vae_dataset_labels(ds) == NULL);
    }
    vae_dataset_free(ds);
    // labels first and last; [0,1] scale; trailing blank lines; exponents
    o.csv_label = VAE_CSV_LABEL_FIRST;
    o.csv_scale = 1;
    CHECK_EQ(csv("3,0,1,0.5,1e-1\n9,.2,0.0,1.0,2E-1\n\n\n", &o, &ds, &err), VAE_OK);
    if (ds) {
        const uint8_t want[8] = {0, 255, 128, 26, 51, 0, 255, 51};
        CHECK(!memcmp(vae_dataset_images(ds), want, 8));
        CHECK(vae_dataset_labels(ds)[0] == 3 && vae_dataset_labels(ds)[1] == 9);
        vae_dataset_info info;
        vae_dataset_describe(ds, &info);
        CHECK_EQ(info.num_classes, 10);
    }
    vae_dataset_free(ds);
    o.csv_label = VAE_CSV_LABEL_LAST;
    o.csv_scale = 255;
    o.channels = 3, o.height = 1, o.width = 2;
    CHECK_EQ(csv("1,2,3,4,5,6,0\n", &o, &ds, &err), VAE_OK);
    if (ds) {
        int c, h, w;
        vae_dataset_shape(ds, &c, &h, &w);
        CHECK(c == 3 && h == 1 && w == 2);
        CHECK(vae_dataset_labels(ds)[0] == 0);
    }
    vae_dataset_free(ds);
    csv_bad("1,2,3,4,5,0\n", &o, "rows hold 5 pixel values, but the shape 3x1x2 needs 6");
    o.channels = o.height = o.width = 0;
    csv_bad("1,2,3,4,0\n5,6,7,0\n", &o, "line 2: 4 fields, but line 1 has 5 (a ragged row)");
    csv_bad("1,2,3,4,0\n5,6,7,8,9,0\n", &o, "line 2: 6 fields, but line 1 has 5");
    csv_bad("1,2,3,4,0\n5,,7,8,0\n", &o, "line 2, field 2: '' is an empty field");
    csv_bad("1,2,3,4,0\n5,nan,7,8,0\n", &o, "'nan' is not a finite number");
    csv_bad("1,2,3,4,0\n5,-Infinity,7,8,0\n", &o, "'-Infinity' is not a finite number");
    csv_bad("1,2,3,4,0\n5,0x1p3,7,8,0\n", &o, "'0x1p3' is a hexadecimal number");
    csv_bad("1,2,3,4,0\n5,1e309,7,8,0\n", &o, "'1e309' is outside 0..255");
    csv_bad("1,2,3,4,0\n5,256,7,8,0\n", &o, "'256' is outside 0..255");
    csv_bad("1,2,3,4,0\n5,-1,7,8,0\n", &o, "'-1' is outside 0..255");
    csv_bad("1,2,3,4,0\n5,0,5,7,8,0\n", &o, "line 2: 6 fields, but line 1 has 5 (a ragged row)");
    csv_bad("1,2,3,4,0\n5,0;5,7,8,0\n", &o, "'0;5' is not a number");
    csv_bad("1,2,3,4,0\n\n5,6,7,8,0\n", &o, "line 2: an empty line inside the data");
    csv_bad("1,2,3,4,0\n1,2,3,4,x\n", &o, "label 'x' is not a whole number");
    csv_bad("1,2,3,4,256\n", &o, "label '256' is not a whole number in 0..255");
    csv_bad("1,2,3,0\n", &o, "rows hold 3 pixel values, not a square grey image");
    csv_bad("", &o, "no data rows (empty file)");
    csv_bad("a,b,c,d,label\n", &o, "no data rows");
    o.csv_scale = 1;
    csv_bad("1,2,3,4,0\n", &o, "'2' is outside 0..1");
    o.csv_scale = 255;
    o.csv_header = 0; // told there is none: a text row is an error, not a header
    csv_bad("p0,p1,p2,p3,label\n1,2,3,4,0\n", &o, "line 1, field 1: 'p0' is not a number");
    csv_bad("\x89PNG\r\n\x1a\n....", &o, "a PNG image, not CSV");
    // a CSV file through vae_data_open (gzip too) holds out the test split
    o.csv_header = -1;
    o.csv_label = VAE_CSV_LABEL_NONE;
    FILE *f = fopen(tp("d.csv", NULL), "w");
    if (f) {
        for (int i = 0; i < 10; i++) fprintf(f, "%d,%d,%d,%d\n", i, i + 1, i + 2, i + 3);
        fclose(f);
    }
    vae_dataset *tr = NULL, *te = NULL;
    o.test_fraction = 0.3;
    CHECK_EQ(vae_data_open(tp("d.csv", NULL), &o, &tr, &te, &err), VAE_OK);
    if (tr && te) {
        CHECK_EQ(vae_dataset_count(tr), 7);
        CHECK_EQ(vae_dataset_count(te), 3);
        vae_dataset_info info;
        vae_dataset_describe(te, &info);
        CHECK(!strcmp(info.kind, "CSV"));
        CHECK(!strcmp(info.split, "held out 30% (seed 1)"));
    }
    vae_dataset_free(tr), vae_dataset_free(te);
}

/* ------------------------------------------------ resize, split, buffer */

static void test_resize(void)
{
    uint8_t src[4 * 4], dst[16 * 16];
    for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i * 16);
    CHECK_EQ(vae__resize_u8(src, 4, 4, 1, dst, 4, 4), VAE_OK); // identity
    CHECK(!memcmp(src, dst, 16));
    CHECK_EQ(vae__resize_u8(src, 4, 4, 1, dst, 2, 2), VAE_OK); // area: means of 2x2 blocks
    CHECK_EQ(dst[0], (0 + 16 + 64 + 80 + 2) / 4);
    CHECK_EQ(dst[3], (160 + 176 + 224 + 240 + 2) / 4);
    CHECK_EQ(vae__resize_u8(src, 4, 4, 1, dst, 1, 1), VAE_OK);
    CHECK_EQ(dst[0], 120);
    CHECK_EQ(vae__resize_u8(src, 4, 4, 1, dst, 8, 4), VAE_OK); // bilinear along x only
    CHECK_EQ(dst[0], 0);          // the edge is clamped
    CHECK_EQ(dst[1], 4);          // x = 0.25: 0.75*0 + 0.25*16
    CHECK_EQ(dst[2], 12);         // x = 0.75
    CHECK_EQ(dst[7], 48);         // past the last centre: clamped
    CHECK_EQ(dst[8 * 3 + 3], 212); // row 3 is 192 208 224 240; x = 1.25: 0.75*208 + 0.25*224
    uint8_t rgb[2 * 2 * 3] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}, out[3];
    CHECK_EQ(vae__resize_u8(rgb, 2, 2, 3, out, 1, 1), VAE_OK); // channels stay apart
    CHECK(out[0] == 55 && out[1] == 65 && out[2] == 75);
}

static void test_split_and_buffer(void)
{
    enum { N = 50, D = 4 };
    uint8_t img[N * D], lab[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) img[i * D + j] = (uint8_t)i;
        lab[i] = (uint8_t)(i % 7);
    }
    vae_dataset *ds = NULL, *tr = NULL, *te = NULL, *tr2 = NULL, *te2 = NULL;
    vae_error err;
    CHECK_EQ(vae_dataset_from_buffer(img, VAE_DTYPE_U8, N, 1, 2, 2, lab, &ds, &err), VAE_OK);
    if (!ds) return;
    CHECK_EQ(vae_dataset_split(ds, 0.2, 42, &tr, &te, &err), VAE_OK);
    CHECK_EQ(vae_dataset_split(ds, 0.2, 42, &tr2, &te2, &err), VAE_OK);
    if (tr && te && tr2 && te2) {
        CHECK_EQ(vae_dataset_count(te), 10);
        CHECK_EQ(vae_dataset_count(tr), 40);
        CHECK(!memcmp(vae_dataset_images(te), vae_dataset_images(te2), 10 * D)); // seeded
        int seen[N] = {0}, ordered = 1;
        for (int part = 0; part < 2; part++) {
            const vae_dataset *s = part ? te : tr;
            for (size_t i = 0; i < vae_dataset_count(s); i++) {
                int v = vae_dataset_images(s)[i * D];
                seen[v]++;
                CHECK_EQ(vae_dataset_labels(s)[i], v % 7);
                if (i && vae_dataset_images(s)[(i - 1) * D] >= v) ordered = 0;
            }
        }
        int once = 1;
        for (int i = 0; i < N; i++) once &= seen[i] == 1;
        CHECK(once);    // disjoint, and together all of them
        CHECK(ordered); // each part keeps the original order
    }
    vae_dataset_free(tr2), vae_dataset_free(te2);
    CHECK_EQ(vae_dataset_split(ds, 0.2, 43, &tr2, &te2, &err), VAE_OK);
    if (te && te2) CHECK(memcmp(vae_dataset_images(te), vae_dataset_images(te2), 10 * D) != 0);
    // the in-place hold-out used by vae_data_open picks the same images
    vae_dataset *te3 = NULL;
    CHECK_EQ(vae__dataset_hold_out(ds, 0.2, 42, &te3, &err), VAE_OK);
    if (te3 && te && tr) {
        CHECK(!memcmp(vae_dataset_images(te3), vae_dataset_images(te), 10 * D));
        CHECK_EQ(vae_dataset_count(ds), 40);
        CHECK(!memcmp(vae_dataset_images(ds), vae_dataset_images(tr), 40 * D));
    }
    vae_dataset_free(tr), vae_dataset_free(te), vae_dataset_free(tr2), vae_dataset_free(te2);
    vae_dataset_free(te3);
    CHECK_EQ(vae_dataset_split(ds, 1.0, 1, &tr, &te, &err), VAE_EINVAL);
    vae_dataset_free(ds);

    float fl[6] = {0, 1, 0.5f, 0.1f, 0.999f, 0.002f};
    CHECK_EQ(vae_dataset_from_buffer(fl, VAE_DTYPE_F32, 2, 3, 1, 1, NULL, &ds, &err), VAE_OK);
    if (ds) {
        const uint8_t want[6] = {0, 255, 128, 26, 255, 1};
        CHECK(!memcmp(vae_dataset_images(ds), want, 6));
        float batch[6];
        uint32_t idx[2] = {1, 0};
        vae_dataset_batch(ds, idx, 2, VAE_BINARIZE_NONE, 0, NULL, batch);
        CHECK_NEAR(batch[3], 0.0, 0);
        CHECK_NEAR(batch[0], 26 / 255.0, 1e-7);
    }
    vae_dataset_free(ds);
    fl[4] = 0.0f / 0.0f;
    CHECK_EQ(vae_dataset_from_buffer(fl, VAE_DTYPE_F32, 2, 3, 1, 1, NULL, &ds, &err), VAE_ENUMERIC);
    CHECK(strstr(err.msg, "image 1, index 1") != NULL);
    fl[4] = 1.5f;
    CHECK_EQ(vae_dataset_from_buffer(fl, VAE_DTYPE_F32, 2, 3, 1, 1, NULL, &ds, &err), VAE_ENUMERIC);
    CHECK_EQ(vae_dataset_from_buffer(fl, VAE_DTYPE_F32, 2, 2, 1, 1, NULL, &ds, &err), VAE_EINVAL);
    CHECK(ds == NULL);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_variants();
    test_png_limits();
    test_folders();
    test_csv();
    test_resize();
    test_split_and_buffer();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return TEST_REPORT();
}
