/*
 * layers.h - the network's building blocks as forward/backward pairs: the
 * linear layer (and its weight gradient summed over a batch's slices), ReLU,
 * and the vector helpers they share (float or double, real.h). All buffers
 * are row-major. Parameter gradients are written, not accumulated: one
 * backward per step needs no zeroing pass, and the weight-gradient GEMM need
 * not read its output.
 */
#ifndef VAE_LAYERS_H
#define VAE_LAYERS_H

#include <stddef.h>

#include "nn/real.h"

/* out (B,OUT) = inp (B,IN) . w^T + b;  w is (OUT,IN) as in nn.Linear. */
void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT);
/* dinp (B,IN) = dout . w (skipped when dinp is NULL); dw = dout^T . inp; db = sum_b dout. */
void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT);
/* Its two halves: dinp (B,IN) = dout . w ... */
void vae__linear_backward_data(real *dinp, const real *dout, const real *w, int B, int IN, int OUT);
/* dinp (B, c1-c0) = the gradient at input columns c0..c1 only, written: of a
 * layer over concatenated inputs whose other columns need none (the HVAE's
 * q(z1|x,z2) reads [x | z2] and only z2 takes a gradient). */
void vae__linear_backward_data_cols(real *dinp, const real *dout, const real *w, int B, int IN,
                                    int OUT, int c0, int c1);
/* ... and rows o0..o1 of dw = dout^T . inp and of db = sum_b dout: dw here
 * is (o1-o0, IN) and db (o1-o0). */
void vae__linear_backward_weights(real *dw, real *db, const real *dout, const real *inp, int B,
                                  int IN, int OUT, int o0, int o1);
/* Rows o0..o1 of dw (o1-o0, IN) and db (o1-o0) summed over the slices of a
 * batch: begin, one vae__wgrad_slice per non-empty slice (dout (B,OUT), inp
 * (B,IN)) in order, then finish, which returns the sum of squares of dw and
 * db. The result has the bits of separate products added in slice order,
 * but the units whose dout column is zero on a slice are left out of its
 * product: ReLU units that none of its inputs switched on (about half of
 * the first layer's in a trained VAE; 3.5% of a step, docs/performance.md).
 * work: vae__wgrad_work bytes for the largest B and rows = o1 - o0, kept
 * until the finish. */
typedef struct vae__wgrad {
    real *dw, *db;
    real *prod, *bias, *cols; /* a slice's live units' rows of dout^T inp, all units' bias
                                 sums, and its gathered dout columns */
    int *idx, n;              /* the slice's live units, in order, and their count */
    int IN, OUT, o0, o1;
    int done;                 /* slices taken */
} vae__wgrad;
void vae__wgrad_begin(vae__wgrad *g, real *dw, real *db, int IN, int OUT, int o0, int o1,
                      void *work);
void vae__wgrad_slice(vae__wgrad *g, const real *dout, const real *inp, int B);
double vae__wgrad_finish(vae__wgrad *g);
size_t vae__wgrad_work(int B, int IN, int rows);

/* Whether an element-wise pass over n values runs on this thread alone: in
 * a parallel region (training's slices, evaluation's chunks: a nested
 * region, even one of one thread, costs a team start and lock traffic at
 * every call) or when n is small. */
int vae__serial_here(size_t n);
/* x = max(x, 0) in place, n values. */
void vae__relu_forward(real *x, size_t n);
/* dx *= (out > 0), where out is the forward output. */
void vae__relu_backward(real *dx, const real *out, size_t n);
/* The hidden layers' activation `act` (vae_activation: ReLU, tanh,
 * softplus) in place on n values, and its backward from the forward's
 * output: dx *= f'(x) written as a function of out = f(x). */
void vae__act_forward(int act, real *x, size_t n);
void vae__act_backward(int act, real *dx, const real *out, size_t n);
/* The gated dense layer's gate (Dauphin et al. 2017; the hidden layers of
 * Tomczak & Welling's VampPrior paper): out (B,H) = a * sigmoid(g), where
 * pre (B,2H) holds each row's [a | g], the outputs of the layer's two linear
 * maps stacked as one (2H, IN) weight (as fc_mu and fc_logvar are) ... */
void vae__gate_forward(real *out, const real *pre, int B, int H);
/* ... and its backward: dpre (B,2H) written from dout (B,H): da = dout
 * sigmoid(g), dg = dout a sigmoid(g) (1 - sigmoid(g)). */
void vae__gate_backward(real *dpre, const real *dout, const real *pre, int B, int H);

/* The sum of n squares, in double. */
double vae__sum_squares(const real *x, size_t n);
/* x += y, n values. */
void vae__add_into(real *restrict x, const real *restrict y, size_t n);

#endif
