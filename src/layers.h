/*
 * layers.h - forward/backward pairs of the network's building blocks and the
 * MLP VAE network assembled from them. All buffers are row-major. Parameter
 * gradients are written, not accumulated: one backward per step needs no
 * zeroing pass, and the weight-gradient GEMM need not read its output.
 */
#ifndef VAE_LAYERS_H
#define VAE_LAYERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conv.h"
#include "real.h"
#include "vae.h"

/* Clamp range of log sigma^2: exp stays finite and the gradient is zero
 * where the clamp is active (as the forward pass sees a constant there). */
#define VAE_LOGVAR_MIN (-30.0)
#define VAE_LOGVAR_MAX 20.0

static inline real vae__clamp_logvar(real lv)
{
    return lv < (real)VAE_LOGVAR_MIN ? (real)VAE_LOGVAR_MIN
         : lv > (real)VAE_LOGVAR_MAX ? (real)VAE_LOGVAR_MAX : lv;
}
/* Clamp range of a learned Gaussian likelihood's log sigma, likewise: sigma
 * in [e^-7, e^5] keeps the density finite on exactly fitted pixels. */
#define VAE_LOG_SIGMA_MIN (-7.0)
#define VAE_LOG_SIGMA_MAX 5.0

/* ----------------------------------------------------------------- layers */

/* out (B,OUT) = inp (B,IN) . w^T + b;  w is (OUT,IN) as in nn.Linear. */
void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT);
/* dinp (B,IN) = dout . w (skipped when dinp is NULL); dw = dout^T . inp; db = sum_b dout. */
void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT);
/* Its two halves: dinp (B,IN) = dout . w ... */
void vae__linear_backward_data(real *dinp, const real *dout, const real *w, int B, int IN, int OUT);
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
 * the first layer's in a trained VAE). work: vae__wgrad_work bytes
 * for the largest B and rows = o1 - o0, kept until the finish. */
typedef struct vae__wgrad_part {
    real *prod, *bias; /* a slice's live units' rows of dout^T inp; all units' bias sums */
    int *idx, n;       /* its live units, in order, and their count */
} vae__wgrad_part;
typedef struct vae__wgrad {
    real *dw, *db, *cols; /* cols: the gathered dout columns */
    vae__wgrad_part part[2]; /* the first two slices' (later slices reuse part[0]) */
    int IN, OUT, o0, o1;
    int slices, done; /* expected, taken (-1: the one slice's product went in place) */
    double ss;
} vae__wgrad;
void vae__wgrad_begin(vae__wgrad *g, real *dw, real *db, int IN, int OUT, int o0, int o1,
                      int slices, void *work);
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

/* The sum of n squares, in double. */
double vae__sum_squares(const real *x, size_t n);
/* The largest |x[i]| of n values (0 for none), or infinity when one is not finite. */
real vae__abs_max(const real *x, size_t n);
/* x += y, n values. */
void vae__add_into(real *restrict x, const real *restrict y, size_t n);

/* ----------------------------------------------------------------- losses */

/* Gaussian posterior. head (B,2d) rows are [mu | logvar]; eps (B,d) ~ N(0,I).
 * z = mu + exp(logvar/2) * eps. Returns sum over the batch of
 * KL(q || N(0,I)) = 1/2 sum_j (mu^2 + e^lv - 1 - lv); kl_img (B) gets each
 * image's KL when not NULL. logvar is clamped to [VAE_LOGVAR_MIN, MAX]. */
double vae__gauss_forward(real *z, const real *head, const real *eps, int B, int d, real *kl_img);
/* dhead (B,2d) = d/dhead of [dz . z + kl_scale * KL], the KL of latent
 * dimension j left out where kl_mask[j] is 0 (free bits; kl_mask may be
 * NULL). */
void vae__gauss_backward(real *dhead, const real *head, const real *eps, const real *dz,
                         real kl_scale, const real *kl_mask, int B, int d);
/* kl_dim (d) = the KL of each latent dimension summed over the batch. */
void vae__gauss_kl_dims(real *kl_dim, const real *head, int B, int d);

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

/* Gaussian negative log density of target under N(mean, sigma^2), summed
 * over pixels: 1/2 log 2 pi + log sigma + (t - mean)^2 / (2 sigma^2).
 * log_sigma holds D values (per_pixel) or one; it is clamped to
 * [VAE_LOG_SIGMA_MIN, MAX]. Returns the batch sum; rec_img as above. */
double vae__gaussian_nll_forward(const real *mean, const real *target, const real *log_sigma,
                                 int per_pixel, int B, int D, real *rec_img);
/* dmean (B,D) = scale * d/dmean; dlog_sigma (D or 1 values, written; may be
 * NULL when sigma is fixed) = scale * d/dlog_sigma summed over the batch. */
void vae__gaussian_nll_backward(real *dmean, real *dlog_sigma, const real *mean,
                                const real *target, const real *log_sigma, int per_pixel,
                                real scale, int B, int D);

/* Continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019) negative log
 * density from logits: the Bernoulli one minus log C(logit), C the
 * normaliser that makes the density integrate to 1 over [0,1]. Arguments as
 * vae__bce_logits_forward (prob gets sigmoid(logits)). */
double vae__cb_forward(const real *logits, const real *target, int B, int D, real *rec_img,
                       real *prob);
void vae__cb_backward(real *dlogits, const real *logits, const real *prob, const real *target,
                      real scale, size_t n);
/* The continuous Bernoulli's mean for a logit. */
real vae__cb_mean(real eta);

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
