/* resize.c - separable resampling of 8-bit images for --resize: area
 * averaging along a shrinking axis, bilinear along a growing one. */
#include <math.h>
#include <stdlib.h>

#include "io/io.h"

/* The source taps of one output pixel along one axis. */
typedef struct taps {
    int first, count;
    float *w; /* count weights, summing to 1 */
} taps;

/* Taps for n_dst outputs from n_src inputs; NULL when out of memory. */
static taps *make_taps(int n_src, int n_dst)
{
    taps *t = calloc((size_t)n_dst, sizeof *t);
    // at most ceil(n_src/n_dst) + 1 taps per output when shrinking, 2 when growing
    int most = n_dst < n_src ? n_src / n_dst + 2 : 2;
    float *w = malloc((size_t)n_dst * most * sizeof *w);
    if (!t || !w) {
        free(t), free(w);
        return NULL;
    }
    double scale = (double)n_src / n_dst;
    for (int j = 0; j < n_dst; j++) {
        taps *o = &t[j];
        o->w = w + (size_t)j * most;
        if (n_dst == n_src) { // identity: exact
            o->first = j, o->count = 1, o->w[0] = 1.0f;
        } else if (n_dst < n_src) { // area: the source interval the output pixel covers
            double a = j * scale, b = (j + 1) * scale;
            int i0 = (int)floor(a), i1 = (int)ceil(b);
            if (i1 > n_src) i1 = n_src;
            o->first = i0, o->count = 0;
            for (int i = i0; i < i1; i++) {
                double lo = a > i ? a : i, hi = b < i + 1 ? b : i + 1;
                o->w[o->count++] = (float)((hi - lo) / scale);
            }
        } else { // bilinear between the two nearest source centres
            double x = (j + 0.5) * scale - 0.5;
            if (x < 0) x = 0;
            int i0 = (int)floor(x);
            if (i0 >= n_src - 1) {
                o->first = n_src - 1, o->count = 1, o->w[0] = 1.0f;
            } else {
                float f = (float)(x - i0);
                o->first = i0, o->count = 2, o->w[0] = 1.0f - f, o->w[1] = f;
            }
        }
    }
    return t;
}

static void free_taps(taps *t)
{
    if (t) free(t[0].w);
    free(t);
}

static uint8_t to_u8(float v)
{
    if (!(v > 0)) return 0;
    if (v >= 255) return 255;
    return (uint8_t)(v + 0.5f);
}

int vae__resize_u8(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh)
{
    taps *tx = make_taps(sw, dw), *ty = make_taps(sh, dh);
    float *mid = malloc((size_t)dw * sh * c * sizeof *mid); // rows resampled, columns not yet
    if (!tx || !ty || !mid) {
        free_taps(tx), free_taps(ty), free(mid);
        return VAE_ENOMEM;
    }
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < c; k++) {
                const taps *t = &tx[x];
                float s = 0;
                for (int i = 0; i < t->count; i++)
                    s += t->w[i] * src[((size_t)y * sw + t->first + i) * c + k];
                mid[((size_t)y * dw + x) * c + k] = s;
            }
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < c; k++) {
                const taps *t = &ty[y];
                float s = 0;
                for (int i = 0; i < t->count; i++)
                    s += t->w[i] * mid[((size_t)(t->first + i) * dw + x) * c + k];
                dst[((size_t)y * dw + x) * c + k] = to_u8(s);
            }
    free_taps(tx), free_taps(ty), free(mid);
    return VAE_OK;
}
