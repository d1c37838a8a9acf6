/* pngread.c - PNG decoding from memory through libpng, normalised to 8-bit
 * grey or RGB: palettes expanded, 16-bit scaled, interlacing undone, alpha
 * composited onto black. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

#define PNG_MAX_CHUNK (64u << 20) /* ancillary chunks above this are refused */

typedef struct reader {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];  /* libpng's error text */
    char warn[120]; /* its first warning: often the reason for the error */
} reader;

static void mem_read(png_structp png, png_bytep dst, png_size_t n)
{
    reader *r = png_get_io_ptr(png);
    if (n > r->len - r->pos) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(dst, r->buf + r->pos, n);
    r->pos += n;
}

static void on_error(png_structp png, png_const_charp msg)
{
    reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s%s%s%s", msg, r->warn[0] ? " (" : "", r->warn,
             r->warn[0] ? ")" : "");
    png_longjmp(png, 1);
}

/* Warnings (a bad ancillary chunk, ...) do not stop decoding; the first is
 * kept for the message should an error follow. */
static void on_warning(png_structp png, png_const_charp msg)
{
    reader *r = png_get_error_ptr(png);
    if (!r->warn[0]) snprintf(r->warn, sizeof r->warn, "%s", msg);
}

/* Creates the read struct with our limits, or NULL (out of memory). */
static png_structp make_reader(reader *r, png_infop *info)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_warning);
    if (!png) return NULL;
    *info = png_create_info_struct(png);
    if (!*info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return NULL;
    }
    png_set_read_fn(png, r, mem_read);
    png_set_user_limits(png, VAE_MAX_SIDE, VAE_MAX_SIDE);
    png_set_chunk_malloc_max(png, PNG_MAX_CHUNK);
    // only the pixels matter: text, profiles and the rest are skipped unread
    // (libpng would otherwise allocate what a chunk's length claims)
    // (negative: every chunk but IHDR, PLTE, tRNS, IDAT and IEND)
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    return png;
}

static int check_signature(const uint8_t *buf, size_t len, const char *name, vae_error *err)
{
    if (len < 8 || png_sig_cmp((png_const_bytep)buf, 0, 8)) {
        const char *what = len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 ? " (JPEG data)"
                           : len >= 2 && buf[0] == 'G' && buf[1] == 'I' ? " (GIF data?)"
                           : len == 0 ? " (empty file)" : "";
        return vae__error(err, VAE_EFORMAT, "%s: not a PNG file%s", name, what);
    }
    return VAE_OK;
}

/* 1 if the image is grey after expansion: a grey colour type, or a palette
 * whose entries are all grey. */
static int is_grey(png_structp png, png_infop info)
{
    int ct = png_get_color_type(png, info);
    if (!(ct & PNG_COLOR_MASK_COLOR)) return 1;
    if (ct != PNG_COLOR_TYPE_PALETTE) return 0;
    png_colorp pal;
    int np = 0;
    if (!png_get_PLTE(png, info, &pal, &np)) return 0;
    for (int i = 0; i < np; i++)
        if (pal[i].red != pal[i].green || pal[i].red != pal[i].blue) return 0;
    return 1;
}

int vae__png_probe(const uint8_t *buf, size_t len, const char *name, uint32_t *w, uint32_t *h,
                   int *c, vae_error *err)
{
    int rc = check_signature(buf, len, name, err);
    if (rc) return rc;
    reader r = {buf, len, 0, "", ""};
    png_infop info = NULL;
    png_structp png = make_reader(&r, &info);
    if (!png) return vae__error(err, VAE_ENOMEM, "%s: out of memory", name);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return vae__error(err, VAE_EFORMAT, "%s: bad PNG: %s", name, r.msg);
    }
    png_read_info(png, info);
    *w = png_get_image_width(png, info);
    *h = png_get_image_height(png, info);
    *c = is_grey(png, info) ? 1 : 3;
    png_destroy_read_struct(&png, &info, NULL);
    return VAE_OK;
}

int vae__png_decode(const uint8_t *buf, size_t len, const char *name, int c, uint8_t **out,
                    uint32_t *w, uint32_t *h, vae_error *err)
{
    *out = NULL;
    if (c != 1 && c != 3) return vae__error(err, VAE_EINVAL, "%s: channels must be 1 or 3", name);
    int rc = check_signature(buf, len, name, err);
    if (rc) return rc;
    reader r = {buf, len, 0, "", ""};
    png_infop info = NULL;
    png_structp png = make_reader(&r, &info);
    if (!png) return vae__error(err, VAE_ENOMEM, "%s: out of memory", name);
    // assigned after setjmp, so volatile: their values must survive the longjmp
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    uint8_t *volatile pix = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(raw), free(rows), free(pix);
        return vae__error(err, VAE_EFORMAT, "%s: bad PNG: %s", name, r.msg);
    }
    png_read_info(png, info);
    uint32_t W = png_get_image_width(png, info), H = png_get_image_height(png, info);
    if (c == 1 && !is_grey(png, info)) png_error(png, "a colour image where grey was expected");
    png_set_expand(png);   // palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha
    png_set_scale_16(png); // 16 -> 8 bits, rounded (strip_16 would truncate)
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info); // 1 G, 2 GA, 3 RGB, 4 RGBA
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)W * ch) png_error(png, "unexpected row layout");
    raw = malloc(stride * H);
    rows = malloc(H * sizeof *rows);
    pix = malloc((size_t)W * H * c);
    if (!raw || !rows || !pix) {
        png_error(png, "out of memory");
    }
    for (uint32_t y = 0; y < H; y++) rows[y] = raw + (size_t)y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL); // strict: a file cut after the pixels (no IEND) is truncated
    int colour = ch >= 3, alpha = ch == 2 || ch == 4;
    for (size_t i = 0; i < (size_t)W * H; i++) {
        const uint8_t *s = raw + i * ch;
        unsigned a = alpha ? s[ch - 1] : 255;
        for (int k = 0; k < c; k++) {
            unsigned v = s[colour ? k : 0]; // c == 1 here means grey (or a grey palette: R)
            pix[i * c + k] = (uint8_t)((v * a + 127) / 255);
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    *out = pix;
    *w = W;
    *h = H;
    return VAE_OK;
}

int vae_png_decode_image(const void *buf, size_t len, int c, int h, int w, float *out,
                         vae_error *err)
{
    uint32_t pw, ph;
    int pc;
    uint8_t *pix;
    if ((c != 1 && c != 3) || h < 1 || w < 1)
        return vae__error(err, VAE_EINVAL, "PNG: bad image shape %dx%dx%d", c, h, w);
    // the header first: a wrong size is refused before any pixel is allocated
    int rc = vae__png_probe(buf, len, "PNG", &pw, &ph, &pc, err);
    if (rc) return rc;
    if ((int)pw != w || (int)ph != h)
        return vae__error(err, VAE_ESHAPE, "PNG: the image is %ux%u, expected %dx%d", (unsigned)pw,
                          (unsigned)ph, w, h);
    rc = vae__png_decode(buf, len, "PNG", c, &pix, &pw, &ph, err);
    if (rc) return rc;
    for (size_t p = 0; p < (size_t)h * w; p++) // interleaved -> planar, [0, 1] as vae_dataset_batch
        for (int k = 0; k < c; k++) out[(size_t)k * h * w + p] = pix[p * c + k] / 255.0f;
    free(pix);
    return VAE_OK;
}
