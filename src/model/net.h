/*
 * net.h - the VAE network (MLP or conv) assembled from the nn/ pairs: its
 * layout in flat buffers, the full forward and backward passes, and the
 * table of latent kinds that sits between encoder and decoder.
 */
#ifndef VAE_NET_H
#define VAE_NET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/conv.h"
#include "nn/real.h"
#include "vae.h"

/* ---------------------------------------------------------------- network */

#define VAE_MAX_LAYERS (2 * VAE_MAX_HIDDEN + 2)

/* The VAE as a list of layers: encoder hidden layers 0..k-1 (ReLU), the
 * head k (linear -> [mu | logvar], 2d wide: fc_mu and fc_logvar stacked so
 * one GEMM computes both; for autoencoders -> the d-wide code), decoder layers k+1..2k (ReLU) and the output
 * layer 2k+1 (-> D logits). MLP: every layer is linear. Conv: layers 0..k-1
 * are convolutions, k+1 is linear (z -> the last feature map) and k+2..2k+1
 * transposed convolutions. in/out count the values of an image (C*H*W for
 * feature maps, NCHW), so the layers chain as flat buffers. Parameters live
 * in one flat buffer, each layer's weight followed by its bias. */
enum { VAE_LAYER_LINEAR, VAE_LAYER_CONV, VAE_LAYER_CONVT };

typedef struct vae__net {
    int D, d, k, n_layers, max_batch;
    int kind[VAE_MAX_LAYERS];            /* VAE_LAYER_* */
    int in[VAE_MAX_LAYERS], out[VAE_MAX_LAYERS];
    vae__conv_geom geom[VAE_MAX_LAYERS]; /* of conv and transposed conv layers */
    size_t w_off[VAE_MAX_LAYERS], b_off[VAE_MAX_LAYERS];
    size_t n_params, n_acts, col_size;
    int likelihood;            /* vae_likelihood */
    int sigma_learned, sigma_per_pixel; /* Gaussian: log sigma among the parameters */
    size_t ls_off;             /* where (after the layers), n_ls values */
    int n_ls;
    real ls_fixed;             /* log sigma when fixed */
    real free_bits;            /* > 0: the backward pass applies kl_mask */
    int model;                 /* vae_model_kind */
    int deterministic;         /* an autoencoder: the head is the code (d wide) */
    /* views, set by vae__net_bind */
    real *params, *grads;
    real *act[VAE_MAX_LAYERS]; /* (B, out[l]); ReLU applied for hidden layers */
    real *eps, *z;             /* (B, d) */
    real *dact[VAE_MAX_LAYERS]; /* (B, out[l]) the loss's gradient at layer l's output */
    real *dz;                  /* (B, d) and at z */
    real *prob;                /* (B, D) sigmoid of the logits */
    real *rec_img, *kl_img;    /* (B) per-image terms of the last forward */
    real *col;                 /* (col_size) im2col scratch of the conv layers */
    real *log_sigma;           /* Gaussian: in params when learned, else a copy of ls_fixed */
    real *kl_dim, *kl_mask;    /* (d) free bits: per-dimension KL sums, and which count */
    int n_samples;             /* IWAE: samples per image (decoder rows); else 1 */
    real *xk;                  /* IWAE: (B*K, D) each target repeated K times */
    real *iw;                  /* IWAE: (B*K) normalised importance weights */
    int n_classes;             /* CVAE: label classes C; 0 = unconditional */
    int cond[2];               /* the encoder's and decoder's conditioned layers */
    real *cat[2], *dcat[2];    /* their [input | one-hot] rows and its gradient */
    const uint8_t *labels;     /* CVAE: the batch's labels (set by the caller) */
    int defer_wgrad;           /* backward leaves the linear layers' weight gradients to
                                  vae__net_weight_grad_unit */
    const real *bwd_x;         /* the input and batch size of the last backward */
    int bwd_B;
    atomic_int *ready;         /* when set, the backward pass counts ready[l] up once its
                                  gradient at layer l's output is final: shared by the
                                  slices of a batch, for vae__net_weight_grad_unit */
    double wbound[VAE_MAX_LAYERS]; /* vae__net_wgrad_bounds' */
} vae__net;

/* Computes the layout for cfg (sizes and offsets only); -1 when the conv
 * architecture does not fit the image size. */
int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch);
/* Points the views into params, grads (n_params each) and acts (n_acts). */
void vae__net_bind(vae__net *net, real *params, real *grads, real *acts);

/* x (B,D) -> act[k] = [mu | logvar] (B,2d). */
void vae__net_encode(vae__net *net, const real *x, int B);
/* z (B,d) -> act[2k+1] = logits (B,D). */
void vae__net_decode(vae__net *net, const real *z, int B);
/* rec_img[r0..r0+rows) = -log p(target | decoder rows r0..) of the last
 * vae__net_decode: many samples scored against one image's pixels. */
void vae__net_rec_rows(vae__net *net, int r0, const real *target, int rows);
/* out (B,D) = the means of p(x|z) from the decoder output of the last
 * vae__net_decode: probabilities for Bernoulli. */
void vae__net_mean(const vae__net *net, real *out, int B);
/* Full loss with noise net->eps: encode, reparameterise, decode, and the
 * per-batch sums *rec and *kl (per image in net->rec_img, net->kl_img);
 * autoencoders decode their code, and *kl is their regulariser. */
void vae__net_forward(vae__net *net, const real *x, const real *target, int B, double *rec,
                      double *kl);
/* Gradients of loss_scale * sum_b (rec_b + beta kl_b) written to net->grads
 * (loss_scale = 1/batch gives the batch mean, also when this call sees only
 * a slice of the batch); needs the activations of the last vae__net_forward. */
void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale);
/* In place of vae__net_backward for a slice with no rows: the weight
 * gradients will see none, and the other slices need not wait for it. */
void vae__net_skip_backward(vae__net *net);
/* The linear layers' weight gradients of n nets' last backward passes (each
 * with defer_wgrad set: slices of one batch), each formed on its own and
 * then summed in net order into grads: the bits a sum of the slices'
 * separate gradients has (as across processes). They come in units, each
 * layer's output rows in VAE_WGRAD_CHUNKS fixed chunks, so the bits do not
 * depend on how many threads share the units or which thread takes which.
 * vae__net_weight_grad_unit writes unit u (0 <= u < vae__net_wgrad_units),
 * with scratch (vae__net_wgrad_scratch bytes; NULL: dense products, only for
 * n = 1), and returns the squared sum of what it wrote. The units come in the
 * order the backward pass finishes their layers; with nets[0]->ready set, a
 * unit first waits until all n slices' backward passes have finished its
 * layer, so threads may start on them while other slices are still on their
 * way back. */
#define VAE_WGRAD_CHUNKS 8
int vae__net_wgrad_units(const vae__net *net);
/* to: NULL puts the unit's rows into grads at their places; otherwise to gets
 * its weight rows, then its bias values (vae__net_wgrad_span's w_len + b_len). */
double vae__net_weight_grad_unit(const vae__net *const *nets, int n, real *grads, int u,
                                 void *scratch, real *to);
size_t vae__net_wgrad_scratch(const vae__net *net);
/* Where unit u's values lie in the flat parameter vector: w_len weights from
 * w_off, b_len biases from b_off. */
typedef struct vae__wgrad_span {
    size_t w_off, w_len, b_off, b_len;
} vae__wgrad_span;
vae__wgrad_span vae__net_wgrad_span(const vae__net *net, int u);
/* The most values a unit has (w_len + b_len). */
size_t vae__net_wgrad_unit_max(const vae__net *net);
/* After the slice's backward pass: wbound[l] for each linear layer l bounds
 * what the slice adds to any value of that layer's weight or bias gradient,
 * rows x max|dout| x max(1, max|input|); infinite, or NaN, when one of them
 * is not finite. */
void vae__net_wgrad_bounds(vae__net *net);

#endif
