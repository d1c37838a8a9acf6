/* conv.c - convolution and transposed convolution layers, forward and
 * backward, as im2col/col2im around one GEMM per group of images (float or
 * double). */
#include <string.h>

#include "nn/conv.h"

int vae__conv_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P)
{
    if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0) return -1;
    if (H + 2 * P < K || W + 2 * P < K) return -1;
    *g = (vae__conv_geom){C, H, W, OC, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1, K, S, P,
                          0, 0, 0};
    return 0;
}

int vae__convt_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P,
                         int OPH, int OPW)
{
    if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0) return -1;
    if (OPH < 0 || OPH >= S || OPW < 0 || OPW >= S) return -1;
    int OH = (H - 1) * S - 2 * P + K + OPH, OW = (W - 1) * S - 2 * P + K + OPW;
    if (OH < 1 || OW < 1) return -1;
    *g = (vae__conv_geom){C, H, W, OC, OH, OW, K, S, P, 1, 0, 0};
    return 0;
}

/* Images go through a layer in groups, side by side in the columns of one
 * product: the first layer's per-image products (C = 1: a 32x16 by 16x196
 * product) ran at a fraction of the GEMM kernels' speed, and the weight
 * gradients gain a long inner dimension. A group's scratch is capped at
 * 2^18 values (1 MB in float: it stays in a core's L2 between im2col and the
 * product; 2^21 measured no faster), so memory stays bounded however large
 * the slice; the group size depends on the geometry only, so a slice's bits
 * depend on its size alone. */
enum { GROUP_VALUES = 1 << 18 };

/* Scratch values per image: its columns, (CKK, OHW) for a convolution and
 * (OCKK, HW) for a transposed one, and one image's worth of planes in
 * (channel, image, pixel) order. */
static size_t col_per_image(const vae__conv_geom *g)
{
    if (g->transposed) return (size_t)g->OC * g->K * g->K * g->H * g->W;
    return (size_t)g->C * g->K * g->K * g->OH * g->OW;
}

static size_t planes_per_image(const vae__conv_geom *g)
{
    size_t a = (size_t)g->C * g->H * g->W, b = (size_t)g->OC * g->OH * g->OW;
    return a > b ? a : b;
}

/* Images per group. */
static int group_size(const vae__conv_geom *g)
{
    size_t n = GROUP_VALUES / (col_per_image(g) + planes_per_image(g));
    return n < 1 ? 1 : n > 65536 ? 65536 : (int)n;
}

size_t vae__conv_col_size(const vae__conv_geom *g, int max_B)
{
    int n = group_size(g);
    if (max_B < n) n = max_B < 1 ? 1 : max_B;
    return (size_t)n * (col_per_image(g) + planes_per_image(g));
}

/* The image side of both layers: a (ch, ih, iw) image and a (gh, gw) grid of
 * kernel positions; col row (c, ki, kj), column (gy, gx) holds the pixel
 * (c, gy*S - P + ki, gx*S - P + kj), zero outside the image. Col rows are ld
 * values apart: a group's images sit side by side, gh*gw columns each. */
typedef struct patch_map {
    int ch, ih, iw, gh, gw, K, S, P;
    int blocked; /* the image in 16-channel blocks (conv.h) */
    size_t ld;
} patch_map;

/* Where channel c of an image of hw pixels starts, and the step from one of
 * its pixels to the next: NCHW, or 16-channel blocks (conv.h). */
static size_t chan_at(int blocked, int c, size_t hw)
{
    enum { N = VAE__CONV_BLOCK };
    return blocked ? (size_t)(c / N) * N * hw + c % N : (size_t)c * hw;
}

static size_t pix_step(int blocked)
{
    return blocked ? VAE__CONV_BLOCK : 1;
}

/* The grid positions g in [*lo, *hi) whose pixel g*S + off falls inside
 * 0..n_img-1: the loops below run without a bounds test per pixel (a third
 * of a conv step went to that test). */
static void inside(int n_grid, int n_img, int S, int off, int *lo, int *hi)
{
    *lo = off >= 0 ? 0 : (-off + S - 1) / S;
    *hi = n_img - 1 - off < 0 ? 0 : (n_img - 1 - off) / S + 1;
    if (*lo > n_grid) *lo = n_grid;
    if (*hi > n_grid) *hi = n_grid;
    if (*hi < *lo) *hi = *lo;
}

/* The loops run over kernel offsets, then channels: col row (c, ki, kj) sits
 * at ((c*K + ki)*K + kj) * ld, and the bounds of an offset (two divisions
 * each way) serve every channel. */
static void im2col(real *col, const real *img, const patch_map *p)
{
    size_t plane_size = (size_t)p->ih * p->iw, ps = pix_step(p->blocked);
    for (int ki = 0; ki < p->K; ki++)
        for (int kj = 0; kj < p->K; kj++) {
            int y0, y1, x0, x1, S = p->S, off = kj - p->P;
            inside(p->gh, p->ih, S, ki - p->P, &y0, &y1);
            inside(p->gw, p->iw, S, off, &x0, &x1);
            for (int c = 0; c < p->ch; c++) {
                const real *plane = img + chan_at(p->blocked, c, plane_size);
                real *rows = col + ((size_t)(c * p->K + ki) * p->K + kj) * p->ld;
                for (int gy = 0; gy < p->gh; gy++) {
                    real *row = rows + (size_t)gy * p->gw;
                    if (gy < y0 || gy >= y1) {
                        memset(row, 0, (size_t)p->gw * sizeof *row);
                        continue;
                    }
                    const real *src = plane + (size_t)(gy * S - p->P + ki) * p->iw * ps;
                    for (int gx = 0; gx < x0; gx++) row[gx] = 0;
                    for (int gx = x0; gx < x1; gx++) row[gx] = src[(size_t)(gx * S + off) * ps];
                    for (int gx = x1; gx < p->gw; gx++) row[gx] = 0;
                }
            }
        }
}

/* The adjoint of im2col: img (zeroed here) gets each col value added back
 * to the pixel it came from. A pixel of channel c takes its values in
 * (ki, kj, gy, gx) order, as when the channel loop was the outer one (the
 * same bits). */
static void col2im(real *img, const real *col, const patch_map *p)
{
    size_t plane_size = (size_t)p->ih * p->iw, ps = pix_step(p->blocked);
    memset(img, 0, (size_t)p->ch * plane_size * sizeof *img);
    for (int ki = 0; ki < p->K; ki++)
        for (int kj = 0; kj < p->K; kj++) {
            int y0, y1, x0, x1, S = p->S, off = kj - p->P;
            inside(p->gh, p->ih, S, ki - p->P, &y0, &y1);
            inside(p->gw, p->iw, S, off, &x0, &x1);
            for (int c = 0; c < p->ch; c++) {
                real *plane = img + chan_at(p->blocked, c, plane_size);
                const real *rows = col + ((size_t)(c * p->K + ki) * p->K + kj) * p->ld;
                for (int gy = y0; gy < y1; gy++) {
                    const real *row = rows + (size_t)gy * p->gw;
                    real *dst = plane + (size_t)(gy * S - p->P + ki) * p->iw * ps;
                    for (int gx = x0; gx < x1; gx++) dst[(size_t)(gx * S + off) * ps] += row[gx];
                }
            }
        }
}

/* n images (n, ch, hw) to planes (ch, n*hw): each channel's planes side by
 * side, the layout of a group's product. */
static void to_planes(real *planes, const real *img, int n, int ch, size_t hw, int blocked)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < ch; c += (int)pix_step(blocked)) {
            const real *src = img + ((size_t)i * ch + c) * hw; // the block's, or the channel's
            real *dst = planes + ((size_t)c * n + i) * hw;
            if (!blocked) {
                memcpy(dst, src, hw * sizeof *dst);
                continue;
            }
            size_t next = (size_t)n * hw; // from one channel's plane to the next's
            for (size_t j = 0; j < hw; j++) // reading the block in memory order
                for (int k = 0; k < VAE__CONV_BLOCK; k++)
                    dst[k * next + j] = src[j * VAE__CONV_BLOCK + k];
        }
}

/* The inverse: planes (ch, n*hw) back to images (n, ch, hw), plus b (ch)
 * when b is not NULL. */
static void from_planes(real *img, const real *planes, const real *b, int n, int ch, size_t hw,
                        int blocked)
{
    size_t ps = pix_step(blocked);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < ch; c++) {
            const real *src = planes + ((size_t)c * n + i) * hw;
            real *dst = img + (size_t)i * ch * hw + chan_at(blocked, c, hw);
            if (b)
                for (size_t j = 0; j < hw; j++) dst[j * ps] = src[j] + b[c];
            else if (ps == 1)
                memcpy(dst, src, hw * sizeof *dst);
            else
                for (size_t j = 0; j < hw; j++) dst[j * ps] = src[j];
        }
}

/* In memory order: a block's 16 biases go to each pixel's 16 values at once
 * (one vector), where a channel at a time took 16 strided passes. */
static void add_bias(real *out, const real *b, int B, int OC, size_t HW, int blocked)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OC; o += (int)pix_step(blocked)) {
            real *plane = out + ((size_t)i * OC + o) * HW; // the block's, or the channel's
            if (blocked)
                for (size_t j = 0; j < HW; j++)
                    for (int k = 0; k < VAE__CONV_BLOCK; k++)
                        plane[j * VAE__CONV_BLOCK + k] += b[o + k];
            else
                for (size_t j = 0; j < HW; j++) plane[j] += b[o];
        }
}

static void bias_grad(real *db, const real *dout, int B, int OC, size_t HW, int blocked)
{
    size_t ps = pix_step(blocked);
    memset(db, 0, (size_t)OC * sizeof *db);
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OC; o++) {
            const real *plane = dout + (size_t)i * OC * HW + chan_at(blocked, o, HW);
            real s = 0;
            for (size_t j = 0; j < HW; j++) s += plane[j * ps];
            db[o] += s;
        }
}

/* A convolution reads patches of its input on its output grid, for a group
 * of n images. */
static patch_map conv_map(const vae__conv_geom *g, int n)
{
    return (patch_map){g->C, g->H, g->W, g->OH, g->OW, g->K, g->S, g->P, g->blk_in,
                       (size_t)n * g->OH * g->OW};
}

/* A transposed convolution is the adjoint of the convolution from its output
 * back to its input: patches of its output on its input grid. */
static patch_map convt_map(const vae__conv_geom *g, int n)
{
    return (patch_map){g->OC, g->OH, g->OW, g->H, g->W, g->K, g->S, g->P, g->blk_out,
                       (size_t)n * g->H * g->W};
}

/* The scratch of a group of n images: its columns, then its planes. */
static real *planes_of(const vae__conv_geom *g, real *col, int n)
{
    return col + (size_t)n * col_per_image(g);
}

/* The fast path, in the float build; 0 when it did the pass. */
static int fast_forward(real *out, const real *inp, const real *w, const real *b, int B,
                        const vae__conv_geom *g)
{
#ifdef VAE_REAL_DOUBLE
    (void)out, (void)inp, (void)w, (void)b, (void)B, (void)g;
    return -1;
#else
    return vae__conv_fast_forward(out, inp, w, b, B, g);
#endif
}

/* The backward passes the fast path can take: clears *dw and *db when it
 * computed them, *dinp when it computed that; the rest is the caller's. */
static void fast_backward(real **dinp, real **dw, real **db, const real *dout, const real *inp,
                          const real *w, int B, const vae__conv_geom *g)
{
#ifdef VAE_REAL_DOUBLE
    (void)dinp, (void)dw, (void)db, (void)dout, (void)inp, (void)w, (void)B, (void)g;
#else
    if (*dw && !vae__conv_fast_backward_weights(*dw, *db, dout, inp, B, g)) *dw = *db = NULL;
    if (*dinp && !vae__conv_fast_backward_data(*dinp, dout, w, B, g)) *dinp = NULL;
#endif
}

void vae__conv2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                         const vae__conv_geom *g, real *col)
{
    if (!fast_forward(out, inp, w, b, B, g)) return;
    // per group of n images (N = n*OHW columns): col (CKK, N) = im2col(inp);
    // planes (OC, N) = w (OC, CKK) . col; out = planes + b, image by image
    int ckk = g->C * g->K * g->K, ohw = g->OH * g->OW, G = group_size(g);
    size_t in_size = (size_t)g->C * g->H * g->W, out_size = (size_t)g->OC * ohw;
    for (int i0 = 0; i0 < B; i0 += G) {
        int n = B - i0 < G ? B - i0 : G, N = n * ohw;
        patch_map p = conv_map(g, n);
        real *planes = planes_of(g, col, n);
        for (int i = 0; i < n; i++) im2col(col + (size_t)i * ohw, inp + (i0 + i) * in_size, &p);
        real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->OC, N, ckk, 1, w, ckk, col, N, 0,
                  planes, N);
        from_planes(out + i0 * out_size, planes, b, n, g->OC, (size_t)ohw, g->blk_out);
    }
}

void vae__conv2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, const vae__conv_geom *g, real *col)
{
    fast_backward(&dinp, &dw, &db, dout, inp, w, B, g);
    if (!dinp && !dw && !db) return;
    // per group: planes (OC, N) = dout; dw (OC, CKK) += planes . im2col(inp)^T (skipped when
    // dw is NULL: the frozen classifier's input gradient, or done above); dcol (CKK, N) =
    // w^T . planes, folded back into dinp by col2im
    int ckk = g->C * g->K * g->K, ohw = g->OH * g->OW, G = group_size(g);
    size_t in_size = (size_t)g->C * g->H * g->W, out_size = (size_t)g->OC * ohw;
    if (B < 1 && dw) memset(dw, 0, (size_t)g->OC * ckk * sizeof *dw);
    for (int i0 = 0; i0 < B; i0 += G) {
        int n = B - i0 < G ? B - i0 : G, N = n * ohw;
        patch_map p = conv_map(g, n);
        real *planes = planes_of(g, col, n);
        to_planes(planes, dout + i0 * out_size, n, g->OC, (size_t)ohw, g->blk_out);
        if (dw) {
            for (int i = 0; i < n; i++) im2col(col + (size_t)i * ohw, inp + (i0 + i) * in_size, &p);
            real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->OC, ckk, N, 1, planes, N, col, N,
                      i0 ? 1 : 0, dw, ckk);
        }
        if (!dinp) continue;
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, N, g->OC, 1, w, ckk, planes, N, 0,
                  col, N);
        for (int i = 0; i < n; i++) col2im(dinp + (i0 + i) * in_size, col + (size_t)i * ohw, &p);
    }
    if (db) bias_grad(db, dout, B, g->OC, (size_t)ohw, g->blk_out);
}

/* out = conv_transpose(inp, w), without the bias. */
static void convt_product(real *out, const real *inp, const real *w, int B,
                          const vae__conv_geom *g, real *col)
{
    // per group (N = n*HW columns): planes (C, N) = inp;
    // col (OCKK, N) = w^T (OCKK, C) . planes, scattered into out by col2im
    int okk = g->OC * g->K * g->K, hw = g->H * g->W, G = group_size(g);
    size_t in_size = (size_t)g->C * hw, out_size = (size_t)g->OC * g->OH * g->OW;
    for (int i0 = 0; i0 < B; i0 += G) {
        int n = B - i0 < G ? B - i0 : G, N = n * hw;
        patch_map p = convt_map(g, n);
        real *planes = planes_of(g, col, n);
        to_planes(planes, inp + i0 * in_size, n, g->C, (size_t)hw, g->blk_in);
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, okk, N, g->C, 1, w, okk, planes, N, 0,
                  col, N);
        for (int i = 0; i < n; i++) col2im(out + (i0 + i) * out_size, col + (size_t)i * hw, &p);
    }
}

void vae__convt2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                          const vae__conv_geom *g, real *col)
{
    if (fast_forward(out, inp, w, NULL, B, g)) convt_product(out, inp, w, B, g, col);
    add_bias(out, b, B, g->OC, (size_t)g->OH * g->OW, g->blk_out); // the fast path leaves it to us
}

void vae__convt2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                           const real *w, int B, const vae__conv_geom *g, real *col)
{
    fast_backward(&dinp, &dw, &db, dout, inp, w, B, g);
    if (!dinp && !dw && !db) return;
    // per group: dcol (OCKK, N) = im2col(dout); planes (C, N) = inp;
    // dw (C, OCKK) += planes . dcol^T (skipped when done above); dinp = w (C, OCKK) . dcol,
    // image by image
    int okk = g->OC * g->K * g->K, hw = g->H * g->W, G = group_size(g);
    size_t in_size = (size_t)g->C * hw, out_size = (size_t)g->OC * g->OH * g->OW;
    if (B < 1 && dw) memset(dw, 0, (size_t)g->C * okk * sizeof *dw);
    for (int i0 = 0; i0 < B && (dw || dinp); i0 += G) {
        int n = B - i0 < G ? B - i0 : G, N = n * hw;
        patch_map p = convt_map(g, n);
        real *planes = planes_of(g, col, n);
        for (int i = 0; i < n; i++) im2col(col + (size_t)i * hw, dout + (i0 + i) * out_size, &p);
        if (dw) {
            to_planes(planes, inp + i0 * in_size, n, g->C, (size_t)hw, g->blk_in);
            real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->C, okk, N, 1, planes, N, col,
                      N, i0 ? 1 : 0, dw, okk);
        }
        if (!dinp) continue;
        real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->C, N, okk, 1, w, okk, col, N, 0,
                  planes, N);
        from_planes(dinp + i0 * in_size, planes, NULL, n, g->C, (size_t)hw, g->blk_in);
    }
    if (db) bias_grad(db, dout, B, g->OC, (size_t)g->OH * g->OW, g->blk_out);
}
