/* gen_images.c - writes test data sets at test time: PNG files and folders of
 * every variant (tests/pngwrite.h), class folders, CSV files, and a colour
 * data set of shapes. Used by tests/test_images.sh and tests/bad_inputs.sh.
 *
 *   gen_images png FILE VARIANT W H SEED
 *   gen_images folder DIR VARIANT N W H SEED          DIR/img-0000.png ...
 *   gen_images classes DIR VARIANT K N W H SEED       DIR/class-0/img-0000.png ...
 *   gen_images csv FILE N D none|first|last 255|1 HEADER(0|1) SEED
 *   gen_images shapes DIR N SIZE SEED                 DIR/{disc,square,triangle,ring}/ RGB
 *
 * VARIANT is one of pngwrite.h's pv_names (grey8, rgb16, palette, ...). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pngwrite.h"

static void fail(const char *msg, const char *arg)
{
    fprintf(stderr, "gen_images: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static int num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000) fail("not a count", s);
    return (int)v;
}

static void mkdir1(const char *d)
{
    if (mkdir(d, 0777) != 0 && errno != EEXIST) fail("cannot create", d);
}

static int variant(const char *s)
{
    int v = pv_from_name(s);
    if (v < 0) fail("unknown variant", s);
    return v;
}

static void folder(const char *dir, int v, int n, int w, int h, uint64_t seed)
{
    mkdir1(dir);
    uint8_t *e = malloc((size_t)w * h * 3);
    char p[4096];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/img-%04d.png", dir, i);
        if (!e || pv_write(p, v, w, h, seed * 1000003 + (uint64_t)i, e)) fail("cannot write", p);
    }
    free(e);
}

static void write_rgb(const char *path, const uint8_t *pix, int w, int h)
{
    FILE *f = fopen(path, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, pv_png_error, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) fail("cannot write", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f)) fail("cannot write", path);
}

/* Four classes of shapes in random bright colours, sizes and places on black. */
static void shapes(const char *dir, int n, int size, uint64_t seed)
{
    static const char *cls[] = {"disc", "square", "triangle", "ring"};
    mkdir1(dir);
    uint8_t *pix = malloc((size_t)size * size * 3);
    char p[4096];
    uint64_t s = seed * 7919 + 3;
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, cls[k]);
        mkdir1(p);
        for (int i = 0; i < n; i++) {
            memset(pix, 0, (size_t)size * size * 3);
            // a saturated colour: one channel high, one low, one anywhere
            uint8_t col[3];
            int hi = (int)(pv_rand(&s) % 3), lo = (hi + 1 + (int)(pv_rand(&s) % 2)) % 3;
            col[hi] = (uint8_t)(200 + pv_rand(&s) % 56);
            col[lo] = (uint8_t)(pv_rand(&s) % 60);
            col[3 - hi - lo] = (uint8_t)(pv_rand(&s) % 256);
            double r = size * (0.2 + 0.15 * (pv_rand(&s) % 1000) / 1000.0);
            double cx = r + (size - 2 * r) * (pv_rand(&s) % 1000) / 1000.0;
            double cy = r + (size - 2 * r) * (pv_rand(&s) % 1000) / 1000.0;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double dx = x + 0.5 - cx, dy = y + 0.5 - cy, d = sqrt(dx * dx + dy * dy);
                    int in = k == 0 ? d < r
                             : k == 1 ? fabs(dx) < r * 0.8 && fabs(dy) < r * 0.8
                             : k == 2 ? dy < r * 0.8 && dy > -r && fabs(dx) < (dy + r) * 0.6
                                      : d < r && d > r * 0.6;
                    if (in) memcpy(pix + ((size_t)y * size + x) * 3, col, 3);
                }
            snprintf(p, sizeof p, "%s/%s/%04d.png", dir, cls[k], i);
            write_rgb(p, pix, size, size);
        }
    }
    free(pix);
}

static void csv(const char *path, int n, int d, const char *label, int scale, int header, uint64_t seed)
{
    int lab = !strcmp(label, "first") ? 1 : !strcmp(label, "last") ? 2 : 0;
    FILE *f = fopen(path, "w");
    if (!f) fail("cannot write", path);
    uint64_t s = seed + 11;
    if (header) {
        if (lab == 1) fputs("label,", f);
        for (int j = 0; j < d; j++) fprintf(f, "pixel%d%s", j, j + 1 < d ? "," : "");
        fputs(lab == 2 ? ",label\n" : "\n", f);
    }
    for (int i = 0; i < n; i++) {
        if (lab == 1) fprintf(f, "%d,", i % 10);
        for (int j = 0; j < d; j++) {
            unsigned v = pv_rand(&s) & 255;
            if (scale == 255) fprintf(f, "%u", v);
            else fprintf(f, "%.6f", v / 255.0);
            if (j + 1 < d) fputc(',', f);
        }
        if (lab == 2) fprintf(f, ",%d", i % 10);
        fputc('\n', f);
    }
    if (fclose(f)) fail("cannot write", path);
}

int main(int argc, char **argv)
{
    if (argc < 2) fail("usage: see the comment at the top of tests/gen_images.c", NULL);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "png") && argc == 7) {
        int v = variant(argv[3]), w = num(argv[4]), h = num(argv[5]);
        uint8_t *e = malloc((size_t)w * h * 3);
        if (!e || pv_write(argv[2], v, w, h, (uint64_t)num(argv[6]), e)) fail("cannot write", argv[2]);
        free(e);
    } else if (!strcmp(cmd, "folder") && argc == 8) {
        folder(argv[2], variant(argv[3]), num(argv[4]), num(argv[5]), num(argv[6]), (uint64_t)num(argv[7]));
    } else if (!strcmp(cmd, "classes") && argc == 9) {
        int v = variant(argv[3]), k = num(argv[4]);
        mkdir1(argv[2]);
        char p[4096];
        for (int i = 0; i < k; i++) {
            snprintf(p, sizeof p, "%s/class-%d", argv[2], i);
            folder(p, v, num(argv[5]), num(argv[6]), num(argv[7]), (uint64_t)num(argv[8]) * 31 + (uint64_t)i);
        }
    } else if (!strcmp(cmd, "csv") && argc == 9) {
        csv(argv[2], num(argv[3]), num(argv[4]), argv[5], num(argv[6]), num(argv[7]), (uint64_t)num(argv[8]));
    } else if (!strcmp(cmd, "shapes") && argc == 6) {
        shapes(argv[2], num(argv[3]), num(argv[4]), (uint64_t)num(argv[5]));
    } else {
        fail("bad arguments; see the comment at the top of tests/gen_images.c", NULL);
    }
    return 0;
}
