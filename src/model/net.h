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
#include "nn/perceptual.h"
#include "nn/real.h"
#include "vae.h"

/* ---------------------------------------------------------------- network */

/* The HVAE's four chains (q(z2|x), q(z1|x,z2), p(z1|z2), p(x|z1,z2)) have
 * k + 1 layers each; the other models two. */
#define VAE_MAX_LAYERS (4 * VAE_MAX_HIDDEN + 4)

/* The VAE as a list of layers: encoder hidden layers 0..k-1 (ReLU), the
 * head k (linear -> [mu | logvar], 2d wide: fc_mu and fc_logvar stacked so
 * one GEMM computes both; for autoencoders -> the d-wide code), decoder
 * layers k+1..2k (ReLU) and the output layer 2k+1 (-> D logits). MLP: every layer is linear. Conv: layers 0..k-1
 * are convolutions, k+1 is linear (z -> the last feature map) and k+2..2k+1
 * transposed convolutions. in/out count the values of an image (C*H*W for
 * feature maps, NCHW), so the layers chain as flat buffers. Parameters live
 * in one flat buffer, each layer's weight followed by its bias.
 *
 * The HVAE (MLP only) puts two more chains of k + 1 layers between the
 * encoder and the decoder, so that the decoder stays last (its output layer
 * is always n_layers - 1): q(z1|x,z2) from the rows [x | z2] (layers q1_0 ..
 * q1_0 + k, the last -> [mu1 | logvar1]) and p(z1|z2) from z2 (p1_0 ..
 * p1_0 + k -> [mu1 | logvar1] of the prior); the encoder's head is z2's
 * posterior (d = the top layer's size) and the decoder (from dec0) reads
 * [z1 | z2]. */
enum { VAE_LAYER_LINEAR, VAE_LAYER_CONV, VAE_LAYER_CONVT };

typedef struct vae__net vae__net;

/* A latent kind: what lies between the encoder's head and the decoder, as
 * one forward/backward pair over the net's buffers (the math is nn/latent.c's).
 * Adding a kind (a flow step, a second stochastic layer, a codebook, another
 * prior) is one such pair and one entry in latent_of_model[] (net.c). */
typedef struct vae__latent_kind {
    const char *name;
    int head_per_dim; /* the head's width over d: 2 for [mu | logvar], 1 for a code
                         (a flow's parameters follow, net->flow_params per image) */
    int draws_noise;  /* whether forward reads eps (d values per decoder row) */
    /* head act[k] (B rows) -> z (B * n_samples rows from eps); the
     * regulariser of each image into kl_img, its sum returned */
    double (*forward)(vae__net *net, int B);
    /* after the likelihood filled rec_img (B * n_samples rows): the final
     * per-image terms (NULL: rec_img and kl_img stand) */
    void (*finish)(vae__net *net, int B, double *rec, double *reg);
    /* dlik (B * n_samples, D): reweights the likelihood's gradient before the
     * decoder's backward pass (NULL: none) */
    void (*weigh)(vae__net *net, real *dlik, int B);
    /* dz -> dhead dact[k], for loss_scale * (rec + beta * regulariser) */
    void (*backward)(vae__net *net, int B, real loss_scale, real beta);
} vae__latent_kind;

struct vae__net {
    int D, d, k, n_layers, max_batch;
    int dec0;                  /* the decoder's first layer: k + 1, or the HVAE's 3k + 3 */
    int d1, q1_0, p1_0;        /* HVAE: z1's size and the first layers of q(z1|x,z2) and
                                  p(z1|z2) (d1 = 0: one stochastic layer) */
    int n_noise;               /* noise values per decoder row: d, or the HVAE's d + d1 */
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
    int activation;            /* vae_activation of the hidden layers */
    const vae__latent_kind *latent; /* between head and decoder (from model) */
    int deterministic;         /* an autoencoder: the head is the code (d wide), no eps */
    int flow, flow_steps;      /* vae_flow in the posterior and its steps (0: none) */
    int flow_params;           /* the flow's parameters per image, after [mu | logvar] */
    int n_pseudo;              /* VampPrior: its pseudo-inputs K (0: the prior is N(0, I)) */
    size_t pi_off;             /* where they are in params (K, D), after log sigma */
    real *xin, *dxin;          /* VampPrior: (B + K, D) the encoder's rows [x | pseudo-inputs]
                                  and the gradient there */
    const real *comp;          /* VampPrior: the K components' head rows of the last encode */
    int comp_kept;             /* evaluation: comp (and vamp_tab, vamp_c) stay as they are, the
                                  weights being fixed: encode passes the images alone */
    int vamp_p0, vamp_pn;      /* the pseudo-inputs p0..p0+pn this net encodes after its
                                  images: all K, or a step's thread its share */
    real *comp_share;          /* a step's threads (schedule.c): the K components, each
                                  thread encoding its share into them (NULL: comp is the
                                  net's own act[k] rows) */
    real *dcomp_all;           /* with comp_share: (T, K, out[k]) every thread's gradient at
                                  the components, this net's at dcomp_t; a share's rows are
                                  summed over the T before its encoder pass back */
    int dcomp_t, dcomp_T;
    real *vamp_tab, *vamp_c;   /* nn/prior.h's per-component values (3d,K), (K) */
    real *vamp_work;           /* and its backward's scratch */
    real *fz;                  /* flow: (flow_steps, rows, d) z_0 .. z_{T-1} (z_T is z) */
    real *ld;                  /* flow: (rows) the sum of the steps' log|det| */
    /* views, set by vae__net_bind */
    real *params, *grads;
    real *act[VAE_MAX_LAYERS]; /* (B, out[l]); ReLU applied for hidden layers; between two
                                  conv layers in 16-channel blocks (geom[l].blk_out, conv.h) */
    real *gate[VAE_MAX_LAYERS], *dgate[VAE_MAX_LAYERS]; /* gated hidden layers: act[l] keeps
                                  the linear part's [a | g] (B, out[l]) and gate[l] is the
                                  layer's output (B, out[l] / 2); dgate[l] the gradient there */
    real *eps, *z;             /* (B, d) */
    real *noise;               /* (B, n_noise) the noise the step and evaluation draw: eps
                                  itself, or the HVAE's rows [eps of z2 | eps1 of z1] that
                                  vae__net_sample splits into eps and eps1 */
    real *dec_in, *ddec_in;    /* the decoder's input and its gradient: z and dz, or the
                                  HVAE's rows [z1 | z2] (B, d1 + d) and their gradient */
    /* HVAE: eps1, z1, dz1 (B, d1); q1in (B, D + d) the rows [x | z2] q(z1|x,z2)
     * reads and dq1in (B, d) the gradient at its z2 columns; dp1in (B, d) the gradient at
     * p(z1|z2)'s input; x_enc the images of the last encode */
    real *eps1, *z1, *dz1, *q1in, *dq1in, *dp1in;
    const real *x_enc;
    real *dact[VAE_MAX_LAYERS]; /* (B, out[l]) the loss's gradient at layer l's output; the
                                   conv layers' live only during the backward pass (two
                                   buffers between them: net.c) */
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
    int defer_wgrad;           /* backward leaves the linear layers' weight gradients to
                                  the step's schedule (model/schedule.c) */
    /* VQ-VAE (model/vqnet.c): vq_K codes of vq_C values on a grid of vq_P cells;
     * the codebook and its EMA state live in params from cb_off (their
     * gradient is written by the kind's backward: the codebook loss's, or 0) */
    int vq_K, vq_C, vq_P, vq_ema;
    real vq_commit;
    size_t cb_off;
    real *cb, *ema_count, *ema_sum; /* views into params: (K,C), (K), (K,C) */
    real *codes;               /* (B, P) the last forward's codes */
    real *vq_count, *vq_sum;   /* (K), (K,C) the slice's EMA statistics */
    const vae__percep *percep; /* training's perceptual term on the decoder's mean (set on
                                  the step's workers only: evaluation stays the ELBO) */
    real *pwork;               /* its work area: the mean and its gradient (B, D) each, then
                                  vae__percep_work_size(percep, B) */
    atomic_int *ready;         /* when set, the backward pass counts ready[l] up once its
                                  gradient at layer l's output is final: shared by the
                                  slices of a batch, for the schedule */
};

/* The VQ-VAE's latent kind, layout and buffers (model/vqnet.c). */
extern const vae__latent_kind vae__vq_kind;
int vae__vq_layout(vae__net *net, const vae_config *cfg);
/* Values the VQ state adds to params and to the activations (max_batch rows). */
size_t vae__vq_params(const vae__net *net);
size_t vae__vq_acts(const vae__net *net);
/* Points the VQ views at params + cb_off and acts; returns acts past them. */
real *vae__vq_bind(vae__net *net, real *acts);
/* z (B,d) = the quantised act[k] (codes set): what the decoder reads. */
void vae__vq_point(vae__net *net, int B);

/* Computes the layout for cfg (sizes and offsets only); -1 when the conv
 * architecture does not fit the image size. */
int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch);
/* The bytes of activation buffers (n_acts) one more row of max batch adds. */
size_t vae__net_row_bytes(const vae_config *cfg);
/* Points the views into params, grads (n_params each) and acts (n_acts). */
void vae__net_bind(vae__net *net, real *params, real *grads, real *acts);

/* x (B,D) -> act[k] = [mu | logvar] (B,2d); labels (B): a CVAE's, else NULL.
 * With a VampPrior the pseudo-inputs are encoded too, as vamp_pn more rows
 * after the B images' (net->comp points at the K components); B may be 0.
 * With comp_share the components are complete only once every thread has
 * encoded its share: then vae__net_vamp_ready. */
void vae__net_encode(vae__net *net, const real *x, const uint8_t *labels, int B);
/* The VampPrior's per-component values from the complete components. */
void vae__net_vamp_ready(vae__net *net);
/* The images alone, whatever the prior: act[k] for B rows. */
void vae__net_encode_images(vae__net *net, const real *x, const uint8_t *labels, int B);
/* z (B,d) -> act[n_layers - 1] = logits (B,D); labels as for encode (one per
 * image, n_samples rows each). HVAE: z is the top layer z2, and z1 is the
 * mean of p(z1|z2) (noise1 NULL) or a draw mu + sigma noise1 ((B, d1)
 * normals). */
void vae__net_decode(vae__net *net, const real *z, const uint8_t *labels, int B);
void vae__net_decode_noise(vae__net *net, const real *z, const real *noise1, int B);
/* Decodes the B rows of the last vae__net_sample (dec_in: z, or [z1 | z2]). */
void vae__net_decode_sample(vae__net *net, const uint8_t *labels, int B);
/* rec_img[r0..r0+rows) = -log p(target | decoder rows r0..) of the last
 * vae__net_decode: many samples scored against one image's pixels. */
void vae__net_rec_rows(vae__net *net, int r0, const real *target, int rows);
/* out (B,D) = the means of p(x|z) from the decoder output of the last
 * vae__net_decode: probabilities for Bernoulli. */
void vae__net_mean(const vae__net *net, real *out, int B);
/* z (R rows, K per image) from head rows (out[k] wide: [mu | logvar |
 * flow]) and net->eps: z_0 = mu + sigma eps, then the flow's steps, their
 * log-determinants summed per row into net->ld (without a flow z is z_0).
 * HVAE (K = 1): net->noise is split into eps and eps1 first, and after z2
 * come z1 ~ q(z1|x,z2) (x: the R rows of images, D wide), p(z1|z2)'s head
 * and the decoder's input [z1 | z2] (dec_in); other models ignore x. */
void vae__net_sample(vae__net *net, const real *head, const real *x, int R, int K);
/* log p(z) - log q(z|x) of row r of the last vae__net_sample (up to the
 * constants that cancel): the IWAE log-ratio plus the flow's log-det, with
 * the VampPrior's log p(z) in place of N(0, I)'s when there is one (the
 * components of the last vae__net_encode). HVAE: log p(z2) - log q(z2|x) +
 * log p(z1|z2) - log q(z1|x,z2). */
double vae__net_log_ratio(const vae__net *net, const real *head, int r, int K);
/* z (B,d) = the posterior's point of each image from act[k]: mu, moved by
 * the flow when there is one (its eps = 0 sample); what encode reports and
 * the decoded posterior mean decodes. */
void vae__net_posterior_point(vae__net *net, int B);

/* Full loss with noise net->eps: encode, the latent kind's forward, decode,
 * the likelihood, and the per-batch sums *rec and *kl (per image in
 * net->rec_img, net->kl_img); for autoencoders *kl is their regulariser. */
void vae__net_forward(vae__net *net, const real *x, const real *target, const uint8_t *labels,
                      int B, double *rec, double *kl);
/* Its part after vae__net_encode (and vae__net_vamp_ready). */
void vae__net_forward_encoded(vae__net *net, const real *target, const uint8_t *labels, int B,
                              double *rec, double *kl);
/* Gradients of loss_scale * sum_b (rec_b + beta kl_b) written to net->grads
 * (loss_scale = 1/batch gives the batch mean, also when this call sees only
 * a slice of the batch); needs the activations of the last vae__net_forward
 * on the same x. With defer_wgrad the linear layers' weight gradients are
 * left to vae__net_weight_grad (the step's schedule sums them over slices). */
void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale);
/* Its two parts: down to the head (act[k]), then the encoder. With
 * comp_share every thread's gradient at the components must be in
 * dcomp_all before the second. */
void vae__net_backward_head(vae__net *net, const real *target, int B, real beta, real loss_scale);
void vae__net_backward_encoder(vae__net *net, const real *x, int B);
/* In place of vae__net_backward for a slice with no rows: the weight
 * gradients will see none, and the other slices need not wait for it. */
void vae__net_skip_backward(vae__net *net);

/* One slice's part in a linear layer's weight gradient: what layer l saw in
 * the slice's last pass on input x (B images), and how many rows. */
const real *vae__net_layer_input(const vae__net *net, int l, const real *x);
int vae__net_layer_rows(const vae__net *net, int l, int B);

#endif
