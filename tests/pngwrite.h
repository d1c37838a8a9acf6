/* pngwrite.h - test-time PNG writer (libpng) for every colour type, bit depth
 * and interlacing the reader must normalise, with the pixels the reader
 * should give back. Shared by tests/test_images.c and tests/gen_images.c. */
#ifndef VAE_TEST_PNGWRITE_H
#define VAE_TEST_PNGWRITE_H

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    PV_GREY8, PV_GREY16, PV_GREY4, PV_GREY_ALPHA, PV_GREY_TRNS, PV_RGB8, PV_RGB16, PV_RGBA,
    PV_PALETTE, PV_PALETTE_TRNS, PV_PALETTE_GREY, PV_GREY_INTERLACED, PV_RGB_INTERLACED,
    PV_COUNT
} png_variant;

static const char *const pv_names[PV_COUNT] = {
    "grey8", "grey16", "grey4", "grey-alpha", "grey-trns", "rgb8", "rgb16", "rgba",
    "palette", "palette-trns", "palette-grey", "grey-interlaced", "rgb-interlaced"};

static inline int pv_from_name(const char *s)
{
    for (int i = 0; i < PV_COUNT; i++)
        if (!strcmp(s, pv_names[i])) return i;
    return -1;
}

/* Channels of the normalised image: 1 for grey variants, 3 for colour. */
static inline int pv_channels(int v)
{
    switch (v) {
    case PV_RGB8: case PV_RGB16: case PV_RGBA: case PV_PALETTE: case PV_PALETTE_TRNS:
    case PV_RGB_INTERLACED:
        return 3;
    }
    return 1;
}

/* A small deterministic generator (the tests must not depend on libc rand). */
static inline uint32_t pv_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* libpng failing to write a test file is a broken test machine: stop. */
static inline void pv_png_error(png_structp png, png_const_charp msg)
{
    (void)png;
    fprintf(stderr, "pngwrite: libpng: %s\n", msg);
    exit(3);
}

/* Writes a w x h image of variant v made from seed to path, and fills
 * expect (w*h*pv_channels(v) bytes, interleaved) with the 8-bit pixels the
 * reader must decode: alpha composited on black, v*a/255 rounded. Returns 0
 * or -1 (with a message on stderr). */
static inline int pv_write(const char *path, int v, int w, int h, uint64_t seed, uint8_t *expect)
{
    int c = pv_channels(v);
    int ct, depth = 8, interlace = PNG_INTERLACE_NONE;
    switch (v) {
    case PV_GREY8: case PV_GREY_TRNS: ct = PNG_COLOR_TYPE_GRAY; break;
    case PV_GREY16: ct = PNG_COLOR_TYPE_GRAY, depth = 16; break;
    case PV_GREY4: ct = PNG_COLOR_TYPE_GRAY, depth = 4; break;
    case PV_GREY_ALPHA: ct = PNG_COLOR_TYPE_GRAY_ALPHA; break;
    case PV_RGB8: ct = PNG_COLOR_TYPE_RGB; break;
    case PV_RGB16: ct = PNG_COLOR_TYPE_RGB, depth = 16; break;
    case PV_RGBA: ct = PNG_COLOR_TYPE_RGB_ALPHA; break;
    case PV_PALETTE: case PV_PALETTE_TRNS: case PV_PALETTE_GREY: ct = PNG_COLOR_TYPE_PALETTE; break;
    case PV_GREY_INTERLACED: ct = PNG_COLOR_TYPE_GRAY, interlace = PNG_INTERLACE_ADAM7; break;
    case PV_RGB_INTERLACED: ct = PNG_COLOR_TYPE_RGB, interlace = PNG_INTERLACE_ADAM7; break;
    default: return -1;
    }
    uint64_t s = seed * 2654435761u + 17;
    png_color pal[16];
    png_byte pal_alpha[16];
    for (int i = 0; i < 16; i++) {
        pal[i].red = (png_byte)pv_rand(&s), pal[i].green = (png_byte)pv_rand(&s), pal[i].blue = (png_byte)pv_rand(&s);
        if (v == PV_PALETTE_GREY) pal[i].green = pal[i].blue = pal[i].red;
        pal_alpha[i] = i == 0 ? 0 : (png_byte)pv_rand(&s); // entry 0 fully transparent
    }
    int bps = depth == 16 ? 2 : 1;
    int spp = ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_PALETTE ? 1
              : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t rowbytes = (size_t)w * spp * bps;
    png_bytep img = calloc((size_t)h, rowbytes);
    png_bytepp rows = malloc((size_t)h * sizeof *rows);
    if (!img || !rows) return free(img), free(rows), -1;
    png_uint_16 trns_grey = 77;
    for (int y = 0; y < h; y++) {
        rows[y] = img + (size_t)y * rowbytes;
        for (int x = 0; x < w; x++) {
            uint8_t *e = expect + ((size_t)y * w + x) * c;
            png_bytep r = rows[y];
            uint32_t rnd = pv_rand(&s);
            if (v == PV_GREY4) { // 4 bits: two pixels a byte, high nibble first
                unsigned g = rnd & 15;
                r[x / 2] |= (png_byte)(x % 2 ? g : g << 4);
                e[0] = (uint8_t)(g * 17);
            } else if (ct == PNG_COLOR_TYPE_PALETTE) {
                unsigned k = rnd & 15;
                r[x] = (png_byte)k;
                unsigned a = v == PV_PALETTE_TRNS ? pal_alpha[k] : 255;
                e[0] = (uint8_t)((pal[k].red * a + 127) / 255);
                if (c == 3) {
                    e[1] = (uint8_t)((pal[k].green * a + 127) / 255);
                    e[2] = (uint8_t)((pal[k].blue * a + 127) / 255);
                }
            } else if (depth == 16) { // v*257 +- 100 must round back to v (truncation would not)
                for (int k = 0; k < spp; k++) {
                    unsigned b = (rnd >> (8 * k)) & 255;
                    int off = (int)((pv_rand(&s) % 201)) - 100;
                    long val = (long)b * 257 + off;
                    if (val < 0) val = 0;
                    if (val > 65535) val = 65535;
                    r[(x * spp + k) * 2] = (png_byte)(val >> 8);
                    r[(x * spp + k) * 2 + 1] = (png_byte)val;
                    e[k] = (uint8_t)b;
                }
            } else {
                unsigned a = ct & PNG_COLOR_MASK_ALPHA ? (rnd >> 24) & 255 : 255;
                if (ct & PNG_COLOR_MASK_ALPHA && x == 0) a = 0; // fully transparent
                if (ct & PNG_COLOR_MASK_ALPHA && x == 1) a = 255; // opaque
                for (int k = 0; k < c; k++) {
                    unsigned b = (rnd >> (8 * k)) & 255;
                    if (v == PV_GREY_TRNS && x == 2) b = trns_grey; // the transparent grey level
                    r[x * spp + k] = (png_byte)b;
                    unsigned aa = v == PV_GREY_TRNS && b == trns_grey ? 0 : a;
                    e[k] = (uint8_t)((b * aa + 127) / 255);
                }
                if (ct & PNG_COLOR_MASK_ALPHA) r[x * spp + spp - 1] = (png_byte)a;
            }
        }
    }
    FILE *f = fopen(path, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, pv_png_error, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        fprintf(stderr, "pv_write: cannot write %s\n", path);
        if (f) fclose(f);
        png_destroy_write_struct(&png, NULL);
        return free(img), free(rows), -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ct, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, pal, 16);
    if (v == PV_PALETTE_TRNS) png_set_tRNS(png, info, pal_alpha, 16, NULL);
    if (v == PV_GREY_TRNS) {
        png_color_16 t = {0, 0, 0, 0, trns_grey};
        png_set_tRNS(png, info, NULL, 0, &t);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    int bad = fclose(f) != 0;
    free(img), free(rows);
    return bad ? -1 : 0;
}

#endif /* VAE_TEST_PNGWRITE_H */
