/*
 * layers.h - forward/backward pairs of the network's building blocks and the
 * MLP VAE network assembled from them. All buffers are row-major. Parameter
 * gradients are written, not accumulated: one backward per step needs no
 * zeroing pass, and the weight-gradient GEMM need not read its output.
 */
#ifndef VAE_LAYERS_H
#define VAE_LAYERS_H

#include <stddef.h>

#include "real.h"
#include "vae.h"

/* Clamp range of log sigma^2: exp stays finite and the gradient is zero
 * where the clamp is active (as the forward pass sees a constant there). */
#define VAE_LOGVAR_MIN (-30.0)
#define VAE_LOGVAR_MAX 20.0

/* ----------------------------------------------------------------- layers */

/* out (B,OUT) = inp (B,IN) . w^T + b;  w is (OUT,IN) as in nn.Linear. */
void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT);
/* dinp (B,IN) = dout . w (skipped when dinp is NULL); dw = dout^T . inp; db = sum_b dout. */
void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT);

/* x = max(x, 0) in place, n values. */
void vae__relu_forward(real *x, size_t n);
/* dx *= (out > 0), where out is the forward output. */
void vae__relu_backward(real *dx, const real *out, size_t n);

/* ----------------------------------------------------------------- losses */

/* Gaussian posterior. head (B,2d) rows are [mu | logvar]; eps (B,d) ~ N(0,I).
 * z = mu + exp(logvar/2) * eps. Returns sum over the batch of
 * KL(q || N(0,I)) = 1/2 sum_j (mu^2 + e^lv - 1 - lv); kl_img (B) gets each
 * image's KL when not NULL. logvar is clamped to [VAE_LOGVAR_MIN, MAX]. */
double vae__gauss_forward(real *z, const real *head, const real *eps, int B, int d, real *kl_img);
/* dhead (B,2d) = d/dhead of [dz . z + kl_scale * KL]. */
void vae__gauss_backward(real *dhead, const real *head, const real *eps, const real *dz,
                         real kl_scale, int B, int d);

/* Bernoulli negative log-likelihood from logits, stable for any logit:
 * l = max(x,0) - x*t + log(1 + exp(-|x|)). Returns the sum over the batch;
 * rec_img (B) gets each image's sum over its D pixels when not NULL, and
 * prob (B,D) gets sigmoid(x) for the backward pass. */
double vae__bce_logits_forward(const real *logits, const real *target, int B, int D,
                               real *rec_img, real *prob);
/* As vae__bce_logits_forward with one target row (D) for every row of
 * logits: the k samples of one image in evaluation. Serial. */
double vae__bce_logits_rows(const real *logits, const real *target, int B, int D, real *rec_img,
                            real *prob);
/* dlogits = scale * (prob - t), prob from the forward pass. */
void vae__bce_logits_backward(real *dlogits, const real *prob, const real *target, real scale,
                              size_t n);

/* ---------------------------------------------------------------- network */

#define VAE_MAX_LAYERS (2 * VAE_MAX_HIDDEN + 2)

/* The MLP VAE as a list of linear layers: encoder hidden layers 0..k-1
 * (ReLU), the head k (-> [mu | logvar], 2d wide: fc_mu and fc_logvar stacked
 * so one GEMM computes both), decoder hidden layers k+1..2k (ReLU) and the
 * output layer 2k+1 (-> D logits). Parameters live in one flat buffer, each
 * layer's weight (OUT,IN) followed by its bias (OUT). */
typedef struct vae__net {
    int D, d, k, n_layers, max_batch;
    int in[VAE_MAX_LAYERS], out[VAE_MAX_LAYERS];
    size_t w_off[VAE_MAX_LAYERS], b_off[VAE_MAX_LAYERS];
    size_t n_params, n_acts;
    int max_width;
    /* views, set by vae__net_bind */
    real *params, *grads;
    real *act[VAE_MAX_LAYERS]; /* (B, out[l]); ReLU applied for hidden layers */
    real *eps, *z;             /* (B, d) */
    real *dbuf[2];             /* (B, max_width) back-propagation scratch */
    real *prob;                /* (B, D) sigmoid of the logits */
    real *rec_img, *kl_img;    /* (B) per-image terms of the last forward */
} vae__net;

/* Computes the layout for cfg (sizes and offsets only). */
int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch);
/* Points the views into params, grads (n_params each) and acts (n_acts). */
void vae__net_bind(vae__net *net, real *params, real *grads, real *acts);

/* x (B,D) -> act[k] = [mu | logvar] (B,2d). */
void vae__net_encode(vae__net *net, const real *x, int B);
/* z (B,d) -> act[2k+1] = logits (B,D). */
void vae__net_decode(vae__net *net, const real *z, int B);
/* Full loss with noise net->eps: encode, reparameterise, decode, and the
 * per-batch sums *rec and *kl (per image in net->rec_img, net->kl_img). */
void vae__net_forward(vae__net *net, const real *x, const real *target, int B, double *rec,
                      double *kl);
/* Gradients of loss_scale * sum_b (rec_b + beta kl_b) written to net->grads
 * (loss_scale = 1/batch gives the batch mean, also when this call sees only
 * a slice of the batch); needs the activations of the last vae__net_forward. */
void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale);

#endif
