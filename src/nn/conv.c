/* conv.c - convolution and transposed convolution layers, forward and
 * backward, as im2col/col2im around one GEMM per image (float or double). */
#include <string.h>

#include "nn/conv.h"

int vae__conv_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P)
{
    if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0) return -1;
    if (H + 2 * P < K || W + 2 * P < K) return -1;
    *g = (vae__conv_geom){C, H, W, OC, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1, K, S, P};
    return 0;
}

int vae__convt_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P,
                         int OPH, int OPW)
{
    if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0) return -1;
    if (OPH < 0 || OPH >= S || OPW < 0 || OPW >= S) return -1;
    int OH = (H - 1) * S - 2 * P + K + OPH, OW = (W - 1) * S - 2 * P + K + OPW;
    if (OH < 1 || OW < 1) return -1;
    *g = (vae__conv_geom){C, H, W, OC, OH, OW, K, S, P};
    return 0;
}

size_t vae__conv_col_size(const vae__conv_geom *g)
{
    // a convolution's col is (C*K*K, OH*OW); a transposed one's (OC*K*K, H*W)
    size_t a = (size_t)g->C * g->K * g->K * g->OH * g->OW;
    size_t b = (size_t)g->OC * g->K * g->K * g->H * g->W;
    return a > b ? a : b;
}

/* The image side of both layers: a (ch, ih, iw) image and a (gh, gw) grid of
 * kernel positions; col row (c, ki, kj), column (gy, gx) holds the pixel
 * (c, gy*S - P + ki, gx*S - P + kj), zero outside the image. */
typedef struct patch_map {
    int ch, ih, iw, gh, gw, K, S, P;
} patch_map;

static void im2col(real *col, const real *img, const patch_map *p)
{
    for (int c = 0; c < p->ch; c++)
        for (int ki = 0; ki < p->K; ki++)
            for (int kj = 0; kj < p->K; kj++) {
                const real *plane = img + (size_t)c * p->ih * p->iw;
                for (int gy = 0; gy < p->gh; gy++) {
                    int y = gy * p->S - p->P + ki;
                    real *row = col + (size_t)gy * p->gw;
                    if (y < 0 || y >= p->ih) {
                        memset(row, 0, (size_t)p->gw * sizeof *row);
                        continue;
                    }
                    for (int gx = 0; gx < p->gw; gx++) {
                        int x = gx * p->S - p->P + kj;
                        row[gx] = x >= 0 && x < p->iw ? plane[(size_t)y * p->iw + x] : 0;
                    }
                }
                col += (size_t)p->gh * p->gw;
            }
}

/* The adjoint of im2col: img (zeroed here) gets each col value added back
 * to the pixel it came from. */
static void col2im(real *img, const real *col, const patch_map *p)
{
    memset(img, 0, (size_t)p->ch * p->ih * p->iw * sizeof *img);
    for (int c = 0; c < p->ch; c++)
        for (int ki = 0; ki < p->K; ki++)
            for (int kj = 0; kj < p->K; kj++) {
                real *plane = img + (size_t)c * p->ih * p->iw;
                for (int gy = 0; gy < p->gh; gy++) {
                    int y = gy * p->S - p->P + ki;
                    const real *row = col + (size_t)gy * p->gw;
                    if (y < 0 || y >= p->ih) continue;
                    for (int gx = 0; gx < p->gw; gx++) {
                        int x = gx * p->S - p->P + kj;
                        if (x >= 0 && x < p->iw) plane[(size_t)y * p->iw + x] += row[gx];
                    }
                }
                col += (size_t)p->gh * p->gw;
            }
}

static void add_bias(real *out, const real *b, int B, int OC, size_t HW)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OC; o++) {
            real *plane = out + ((size_t)i * OC + o) * HW;
            for (size_t j = 0; j < HW; j++) plane[j] += b[o];
        }
}

static void bias_grad(real *db, const real *dout, int B, int OC, size_t HW)
{
    memset(db, 0, (size_t)OC * sizeof *db);
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OC; o++) {
            const real *plane = dout + ((size_t)i * OC + o) * HW;
            real s = 0;
            for (size_t j = 0; j < HW; j++) s += plane[j];
            db[o] += s;
        }
}

/* A convolution reads patches of its input on its output grid. */
static patch_map conv_map(const vae__conv_geom *g)
{
    return (patch_map){g->C, g->H, g->W, g->OH, g->OW, g->K, g->S, g->P};
}

/* A transposed convolution is the adjoint of the convolution from its output
 * back to its input: patches of its output on its input grid. */
static patch_map convt_map(const vae__conv_geom *g)
{
    return (patch_map){g->OC, g->OH, g->OW, g->H, g->W, g->K, g->S, g->P};
}

void vae__conv2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                         const vae__conv_geom *g, real *col)
{
    // per image: col (CKK, OHW) = im2col(inp); out (OC, OHW) = w (OC, CKK) . col
    patch_map p = conv_map(g);
    int ckk = g->C * g->K * g->K, ohw = g->OH * g->OW;
    for (int i = 0; i < B; i++) {
        im2col(col, inp + (size_t)i * g->C * g->H * g->W, &p);
        real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->OC, ohw, ckk, 1, w, ckk, col, ohw,
                  0, out + (size_t)i * g->OC * ohw, ohw);
    }
    add_bias(out, b, B, g->OC, (size_t)ohw);
}

void vae__conv2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, const vae__conv_geom *g, real *col)
{
    // per image: dw (OC, CKK) += dout (OC, OHW) . col^T;
    // dcol (CKK, OHW) = w^T . dout, folded back into dinp by col2im
    patch_map p = conv_map(g);
    int ckk = g->C * g->K * g->K, ohw = g->OH * g->OW;
    size_t in_size = (size_t)g->C * g->H * g->W;
    if (B < 1 && dw) memset(dw, 0, (size_t)g->OC * ckk * sizeof *dw);
    for (int i = 0; i < B; i++) {
        const real *dout_i = dout + (size_t)i * g->OC * ohw;
        if (dw) {
            im2col(col, inp + (size_t)i * in_size, &p);
            real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->OC, ckk, ohw, 1, dout_i, ohw,
                      col, ohw, i ? 1 : 0, dw, ckk);
        }
        if (!dinp) continue;
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ohw, g->OC, 1, w, ckk, dout_i, ohw,
                  0, col, ohw);
        col2im(dinp + (size_t)i * in_size, col, &p);
    }
    if (db) bias_grad(db, dout, B, g->OC, (size_t)ohw);
}

void vae__convt2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                          const vae__conv_geom *g, real *col)
{
    // per image: col (OCKK, HW) = w^T (OCKK, C) . inp (C, HW), scattered into out by col2im
    patch_map p = convt_map(g);
    int okk = g->OC * g->K * g->K, hw = g->H * g->W;
    size_t out_size = (size_t)g->OC * g->OH * g->OW;
    for (int i = 0; i < B; i++) {
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, okk, hw, g->C, 1, w, okk,
                  inp + (size_t)i * g->C * hw, hw, 0, col, hw);
        col2im(out + (size_t)i * out_size, col, &p);
    }
    add_bias(out, b, B, g->OC, (size_t)g->OH * g->OW);
}

void vae__convt2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                           const real *w, int B, const vae__conv_geom *g, real *col)
{
    // per image: dcol (OCKK, HW) = im2col(dout); dinp (C, HW) = w (C, OCKK) . dcol;
    // dw (C, OCKK) += inp (C, HW) . dcol^T
    patch_map p = convt_map(g);
    int okk = g->OC * g->K * g->K, hw = g->H * g->W;
    size_t out_size = (size_t)g->OC * g->OH * g->OW;
    if (B < 1) memset(dw, 0, (size_t)g->C * okk * sizeof *dw);
    for (int i = 0; i < B; i++) {
        const real *inp_i = inp + (size_t)i * g->C * hw;
        im2col(col, dout + (size_t)i * out_size, &p);
        if (dinp)
            real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->C, hw, okk, 1, w, okk, col, hw,
                      0, dinp + (size_t)i * g->C * hw, hw);
        real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->C, okk, hw, 1, inp_i, hw, col, hw,
                  i ? 1 : 0, dw, okk);
    }
    bias_grad(db, dout, B, g->OC, (size_t)g->OH * g->OW);
}
