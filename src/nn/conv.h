/*
 * conv.h - 2-D convolution and transposed convolution, forward and backward,
 * through im2col/col2im and GEMM (float or double, like layers.h). Tensors
 * are NCHW (or in 16-channel blocks, below); weights have nn.Conv2d's
 * (OC, C, K, K) and nn.ConvTranspose2d's (C, OC, K, K) layouts so
 * checkpoints load in PyTorch. Parameter gradients are written, not
 * accumulated, as in layers.h.
 */
#ifndef VAE_CONV_H
#define VAE_CONV_H

#include <stddef.h>

#include "nn/real.h"

/* One layer's geometry: input (C, H, W) -> output (OC, OH, OW), square
 * kernel K, stride S, zero padding P on every side. For a convolution
 * OH = (H + 2P - K) / S + 1; for a transposed convolution
 * OH = (H - 1) S - 2P + K + OPH, the output padding OPH (and OPW for the
 * width) in [0, S). */
typedef struct vae__conv_geom {
    int C, H, W, OC, OH, OW, K, S, P;
    int transposed; /* set by vae__convt_geom_init */
    int blk_in, blk_out; /* the input, the output in 16-channel blocks (below); 0 after init */
} vae__conv_geom;

/* A tensor in 16-channel blocks is oneDNN's nChw16c: per image, channel c of
 * pixel j at (c / 16) * 16 * H * W + j * 16 + c % 16 (C a multiple of 16).
 * Its images lie whole and in order, as in NCHW, so slices of rows and
 * element-wise work are the same; a conv layer feeding another keeps its
 * output so, which oneDNN's kernels read and write without reordering. */
enum { VAE__CONV_BLOCK = 16 };

/* Fills g's output size; returns -1 when the geometry is impossible
 * (empty output, K or S < 1, P < 0, output padding outside [0, S)). */
int vae__conv_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P);
int vae__convt_geom_init(vae__conv_geom *g, int C, int H, int W, int OC, int K, int S, int P,
                         int OPH, int OPW);

/* Scratch values (col) a layer's forward or backward needs for batches of
 * up to max_B images (bounded: the images go in groups of a fixed size). */
size_t vae__conv_col_size(const vae__conv_geom *g, int max_B);

/* out (B,OC,OH,OW) = conv(inp (B,C,H,W), w (OC,C,K,K)) + b (OC). */
void vae__conv2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                         const vae__conv_geom *g, real *col);
/* dinp (B,C,H,W), dw (OC,C,K,K), db (OC) from dout; each skipped when NULL
 * (a frozen layer's data gradient alone needs neither inp nor dw, db). */
void vae__conv2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, const vae__conv_geom *g, real *col);

/* out (B,OC,OH,OW) = conv_transpose(inp (B,C,H,W), w (C,OC,K,K)) + b (OC). */
void vae__convt2d_forward(real *out, const real *inp, const real *w, const real *b, int B,
                          const vae__conv_geom *g, real *col);
/* dinp (B,C,H,W) (skipped when NULL), dw (C,OC,K,K), db (OC) from dout. */
void vae__convt2d_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                           const real *w, int B, const vae__conv_geom *g, real *col);

#ifndef VAE_REAL_DOUBLE
/* The float build's fast path (conv_dnnl.c: oneDNN's primitives, inside a
 * parallel region), for a convolution or a transposed one by g; each
 * returns 0 when done, -1 when the caller must do it. db may be NULL; a
 * transposed layer's forward is taken only with b NULL (the caller adds the
 * bias). */
int vae__conv_fast_forward(float *out, const float *inp, const float *w, const float *b, int B,
                           const vae__conv_geom *g);
int vae__conv_fast_backward_data(float *dinp, const float *dout, const float *w, int B,
                                 const vae__conv_geom *g);
int vae__conv_fast_backward_weights(float *dw, float *db, const float *dout, const float *inp,
                                    int B, const vae__conv_geom *g);
#endif

#endif
