/*
 * vae/model.h - a model: its configuration, training steps, encoding and
 * decoding, checkpoints, and data-parallel training through a callback.
 *
 *     vae_config cfg;
 *     vae_config_default(&cfg);        // 28x28 MLP VAE, latent 20
 *     cfg.latent = 2;
 *     vae_model *m;
 *     vae_error err;
 *     if (vae_model_create(&cfg, 128, 42, &m, &err) != VAE_OK) return err.code;
 *     for (...) vae_model_train_step(m, x, NULL, 128, NULL);  // x: 128 x 784
 *     vae_model_encode(m, x, NULL, 1, mu, NULL);              // mu: 1 x 2
 *     vae_model_decode(m, mu, NULL, 1, image);                // image: 1 x 784
 *     vae_model_save(m, "model.safetensors", NULL);
 *     vae_model_free(m);
 */
#ifndef VAE_API_MODEL_H
#define VAE_API_MODEL_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- config */

#define VAE_MAX_HIDDEN 8

typedef enum {
    VAE_MODEL_VAE = 0,
    VAE_MODEL_AE = 1,        /* deterministic code (tensor fc_code), reconstruction loss only */
    VAE_MODEL_SPARSE_AE = 2, /* AE + l1 * sum |code| */
    VAE_MODEL_DAE = 3,       /* AE that reconstructs the clean input from a corrupted one */
    VAE_MODEL_IWAE = 4,      /* VAE trained on the importance-weighted bound with iwae_k samples */
    VAE_MODEL_CVAE = 5,      /* conditional VAE: a one-hot label joins encoder and decoder */
    VAE_MODEL_VQVAE = 6,     /* vector-quantised AE (van den Oord et al. 2017): a conv encoder's
                              * grid of code_dim vectors, each replaced by its nearest codebook
                              * entry; conv only; latent = code_dim x grid cells */
    VAE_MODEL_HVAE = 7,      /* hierarchical VAE, two stochastic layers (Tomczak & Welling 2018):
                              * q(z2|x) q(z1|x,z2), p(z2) p(z1|z2) p(x|z1,z2); latent is the top
                              * layer z2 (what encode, decode, sample and the pictures see),
                              * latent1 the bottom layer z1; MLP only */
} vae_model_kind;

typedef enum {
    VAE_CODEBOOK_LOSS = 0, /* the codebook learns from ||sg[z_e] - e||^2 through Adam */
    VAE_CODEBOOK_EMA = 1,  /* exponential moving averages of the assigned encoder outputs */
} vae_codebook_update;

typedef enum {
    VAE_NOISE_NONE = 0,
    VAE_NOISE_GAUSSIAN = 1,  /* x + noise_level * N(0, 1), not clipped */
    VAE_NOISE_MASK = 2,      /* each pixel set to 0 with probability noise_level */
} vae_noise;

typedef enum {
    VAE_LIKELIHOOD_BERNOULLI = 0,  /* decoder emits logits; BCE with logits */
    VAE_LIKELIHOOD_GAUSSIAN = 1,   /* decoder emits means; N(mean, sigma^2) per pixel */
    VAE_LIKELIHOOD_CONT_BERNOULLI = 2, /* decoder emits logits; the continuous Bernoulli,
                                        * normalised on [0,1] for grey levels */
} vae_likelihood;

typedef enum {
    VAE_SIGMA_FIXED = 0,          /* the Gaussian's sigma is config.sigma */
    VAE_SIGMA_LEARNED = 1,        /* one learned sigma (tensor log_sigma, shape [1]) */
    VAE_SIGMA_LEARNED_PIXEL = 2,  /* one per pixel (log_sigma, shape [D]) */
} vae_sigma_mode;

typedef enum {
    VAE_ARCH_MLP = 0,   /* fully connected layers, ReLU */
    VAE_ARCH_CONV = 1,  /* stride-2 convolutions down, transposed convolutions up */
} vae_arch;

typedef enum {
    VAE_ACT_RELU = 0,
    VAE_ACT_TANH = 1,     /* as in Burda et al. 2015 */
    VAE_ACT_SOFTPLUS = 2, /* log(1 + e^x) */
    VAE_ACT_GATED = 3,    /* MLP only: (W1 x + b1) * sigmoid(W2 x + b2), the VampPrior paper's
                           * gated dense layer (tensors encoder.i.h and encoder.i.g) */
} vae_activation;

typedef enum {
    VAE_FLOW_NONE = 0,
    VAE_FLOW_PLANAR = 1,      /* z + u tanh(w.z + b), u constrained so that it inverts */
    VAE_FLOW_HOUSEHOLDER = 2, /* reflections (I - 2 v v^T / |v|^2) z: a full-covariance posterior */
} vae_flow;

#define VAE_FLOW_MAX_STEPS 64
#define VAE_VAMP_MAX_K 4096

/* The conv architecture's layers: kernel 4, stride 2, padding 1 (each
 * halves the image, rounding down; the decoder's output padding restores
 * odd sizes exactly). */
#define VAE_CONV_KERNEL 4
#define VAE_CONV_STRIDE 2
#define VAE_CONV_PAD 1

typedef struct vae_config {
    int channels, height, width;   /* input image shape; D = c*h*w */
    int n_hidden;                  /* encoder hidden layers (decoder mirrors) */
    int hidden[VAE_MAX_HIDDEN];    /* their widths (MLP) or channels (conv), input side first */
    int latent;                    /* d */
    vae_model_kind model;
    vae_likelihood likelihood;
    float beta;                    /* weight of the KL term */
    vae_arch arch;                 /* conv: encoder = the convolutions, then one
                                    * linear layer to [mu | logvar]; decoder = one linear
                                    * layer from z to the last feature map, then transposed
                                    * convolutions back to the image (logits) */
    float sigma;                   /* Gaussian likelihood: sigma, or its start when learned */
    vae_sigma_mode sigma_mode;
    float free_bits;               /* nats per latent dimension: the KL gradient of dimensions
                                    * whose batch-mean KL is below this is dropped (Kingma et
                                    * al. 2016); 0 = off. Reported KL stays the true KL */
    float l1;                      /* sparse AE: weight of sum |code| */
    vae_noise noise;               /* DAE: fresh every training batch */
    float noise_level;             /* its sigma or masking probability */
    int iwae_k;                    /* IWAE: importance samples per image (1..4096) */
    int n_classes;                 /* CVAE: label classes (2..256); labels are 0..n-1 */
    vae_flow flow;                 /* VAE, CVAE: a flow in the posterior, its parameters per image
                                    * from the encoder's head (tensor fc_flow); the KL becomes the
                                    * one-sample estimate log q(z|x) - log p(z) */
    int flow_steps;                /* its steps (1..VAE_FLOW_MAX_STEPS) */
    vae_activation activation;     /* of the hidden layers (encoder and decoder) */
    int vamp_k;                    /* VAE, IWAE: the VampPrior's pseudo-inputs K (tensor
                                    * prior.pseudo_inputs), 1..VAE_VAMP_MAX_K; 0: p(z) = N(0, I).
                                    * The KL becomes the one-sample estimate log q(z|x) - log p(z) */
    /* VQ-VAE (model VAE_MODEL_VQVAE; ignored otherwise) */
    int codebook;                  /* K codes (2..65536) */
    int code_dim;                  /* their dimension, the encoder's channels on the grid */
    float commitment;              /* beta of the commitment loss beta ||z_e - sg[e]||^2 */
    vae_codebook_update codebook_update;
    float ema_decay;               /* of the EMA update and of the usage counts (0, 1) */
    float restart_dead;            /* codes whose EMA usage (assignments per batch) falls below
                                    * this are restarted from random encoder outputs of the
                                    * batch after each step (Jukebox); 0 = off */
    int latent1;                   /* HVAE: the bottom layer z1's dimensions (1..4096); latent is
                                    * the top layer z2's; ignored by the other models */
} vae_config;

/* 1x28x28, MLP, hidden 400, latent 20, VAE, Bernoulli, beta 1 (sigma 0.1,
 * fixed, should a Gaussian likelihood be chosen). */
VAE_API void vae_config_default(vae_config *cfg);

/* Checks ranges; on failure writes which field is wrong to err. */
VAE_API int vae_config_validate(const vae_config *cfg, vae_error *err);

/* Adam hyper-parameters (PyTorch's defaults but lr). */
typedef struct vae_adam {
    float lr, beta1, beta2, eps;
} vae_adam;

VAE_API void vae_adam_default(vae_adam *a); /* 1e-3, 0.9, 0.999, 1e-8 */

/* ------------------------------------------------------------------ model */

typedef struct vae_model vae_model;

/* Loss terms summed over the images of a call (divide by n for per-image
 * nats). loss = rec + beta * kl. For the autoencoders `kl` holds their
 * regulariser instead: sum |code| for the sparse AE (loss = rec + l1 * kl),
 * 0 for the AE and DAE. */
typedef struct vae_stats {
    double loss, rec, kl;
    long n;
} vae_stats;

/* Creates a model with weights initialised as PyTorch's nn.Linear does
 * (U(-1/sqrt(in), 1/sqrt(in)) for weights and biases) from `seed`, which
 * also seeds the training RNG. Buffers for batches up to `max_batch`. */
VAE_API int vae_model_create(const vae_config *cfg, int max_batch, uint64_t seed,
                             vae_model **out, vae_error *err);
VAE_API void vae_model_free(vae_model *m);

VAE_API const char *vae_model_errmsg(const vae_model *m);
VAE_API const vae_config *vae_model_config(const vae_model *m);
VAE_API size_t vae_model_num_params(const vae_model *m);
VAE_API int vae_model_input_size(const vae_model *m);  /* D */
VAE_API int vae_model_max_batch(const vae_model *m);
/* The bytes of activations one more row of max batch adds (for choosing a
 * batch that fits a memory budget). */
VAE_API size_t vae_model_row_bytes(const vae_model *m);
/* Resizes the activation buffers for batches up to max_batch; on failure
 * the model is unchanged. */
VAE_API int vae_model_set_max_batch(vae_model *m, int max_batch);

/* Threads for BLAS and the element-wise loops (process-wide). 0 = all. */
VAE_API void vae_set_threads(int n);

VAE_API void vae_model_set_adam(vae_model *m, const vae_adam *a);
/* The learning rate of the following steps (decay schedules); Adam's other
 * settings and its moments stay. Negative or not finite: ignored. */
VAE_API void vae_model_set_lr(vae_model *m, float lr);
/* The KL weight of the following steps and evaluations (schedules; the
 * configuration's beta until called). Negative or non-finite: ignored. */
VAE_API void vae_model_set_beta(vae_model *m, float beta);
/* Rescale each step's gradient to a global L2 norm of at most max_norm
 * (0, the default, turns clipping off). */
VAE_API void vae_model_set_grad_clip(vae_model *m, float max_norm);
VAE_API long vae_model_step(const vae_model *m);   /* Adam steps taken */
/* The training RNG (reparameterisation noise); savable state. */
VAE_API vae_rng *vae_model_rng(vae_model *m);

/* Labels: the calls below that take rows (images or codes) take `labels`,
 * one per row (0..n_classes-1), for a CVAE; they fail with VAE_EINVAL on a
 * CVAE without labels or with one out of range. Other models ignore them
 * (pass NULL). */
/* Label classes of a CVAE; 0 for unconditional models. */
VAE_API int vae_model_num_classes(const vae_model *m);

/* One training step on x (B x D, values in [0,1], B <= max_batch):
 * forward, backward of the mean per-image loss, one Adam update.
 * Adds the batch's summed terms to *st when st is not NULL. A non-finite
 * loss or gradient returns VAE_ENUMERIC and leaves the weights unchanged. */
VAE_API int vae_model_train_step(vae_model *m, const float *x, const uint8_t *labels, int B,
                                 vae_stats *st);

/* The training objective's terms on x with z sampled from q(z|x) using rng,
 * without a step (the weights are unchanged): what training minimises. The
 * evaluation (ELBO, importance-sampled likelihood) is vae_model_eval. */
VAE_API int vae_model_loss(vae_model *m, const float *x, const uint8_t *labels, int B,
                           vae_rng *rng, vae_stats *st);

/* mu, logvar: B x latent each (either may be NULL). Autoencoders: mu gets
 * the code and logvar zeros (there is no posterior). With a flow, mu is the
 * base posterior's mean moved through the flow (the point the decoder
 * reads) and logvar the base posterior's. HVAE: q(z2|x)'s, the top layer. */
VAE_API int vae_model_encode(vae_model *m, const float *x, const uint8_t *labels, int B,
                             float *mu, float *logvar);
/* z: n x latent drawn from the model's prior p(z): N(0, I) (the n * latent
 * normals of rng in order), or with a VampPrior (cfg.vamp_k) a pseudo-input
 * k chosen uniformly and z = mu_k + sigma_k eps from the encoder's posterior
 * there. An autoencoder's "prior" is N(0, I) too: decode what it gives.
 * HVAE: z2 ~ p(z2), the top layer (vae_model_decode_sample draws z1). */
VAE_API int vae_model_prior_sample(vae_model *m, vae_rng *rng, int n, float *z);
/* z: B x latent -> out: B x D means of p(x|z) (probabilities for Bernoulli;
 * Gaussian means are not clipped to [0,1]). HVAE: z is the top layer z2
 * and z1 the mean of p(z1|z2). */
VAE_API int vae_model_decode(vae_model *m, const float *z, const uint8_t *labels, int B,
                             float *out);
/* As vae_model_decode, but the layers below z are drawn from their priors
 * rather than set to their means: the HVAE's z1 ~ p(z1|z2) (B x latent1
 * normals of rng in order); for every other model it is vae_model_decode
 * (rng unused). What generating samples wants; the pictures decode means. */
VAE_API int vae_model_decode_sample(vae_model *m, const float *z, const uint8_t *labels, int B,
                                    vae_rng *rng, float *out);

/* ------------------------------------------------- data-parallel training */

/* libvae does no communication itself; a caller that trains one model in
 * several processes (tools/dist.c does it with MPI) gives each process its
 * rows of every global batch and combines the processes' gradients through
 * a reduce callback, inside the step, before clipping and Adam. Every
 * process then applies the same update, so the weights stay identical. */

/* Called once per step of vae_model_train_step_shard with this process's gradient
 * (grad, n floats: the shard's share, already scaled by 1/B_total, so the
 * sum over the processes is the gradient of the global batch's mean loss)
 * and sums[0..nsums) (the shard's summed reconstruction and KL terms). It
 * must replace both in place by their sums over all processes, the same on
 * every process, and return VAE_OK or a VAE_E* code, which fails the step
 * with the weights unchanged. It runs on the thread that called the step
 * (OpenMP's master thread; the step's other threads wait), so an MPI
 * library initialised with MPI_THREAD_FUNNELED suffices. */
typedef int (*vae_grad_reduce_fn)(void *ctx, float *grad, size_t n, double *sums, int nsums);

/* Sets (fn = NULL: removes) the reduce callback; ctx is passed to it. */
VAE_API void vae_model_set_grad_reduce(vae_model *m, vae_grad_reduce_fn fn, void *ctx);

/* One training step in which this process holds rows [first, first + B) of
 * a global batch of B_total images (x: B x D; B may be 0 when the batch has
 * fewer images than processes, x may then be NULL). The loss is the mean
 * over the global batch. The noise is the global batch's: the RNG draws
 * B_total x latent normals and the shard uses its rows, so the processes
 * together see what one process would. With a reduce callback *st gets the
 * global sums (n += B_total); without one, the shard's (n += B).
 * vae_model_train_step(m, x, l, B, st) is
 * vae_model_train_step_shard(m, x, l, B, 0, B, st); labels: the shard's rows'. */
VAE_API int vae_model_train_step_shard(vae_model *m, const float *x, const uint8_t *labels, int B,
                                       int first, int B_total, vae_stats *st);

/* CRC-32 of the weights, the Adam moments, the step count and the noise
 * RNG's state: two models with the same value continue training identically
 * on the same data. For checking that the processes of a data-parallel run
 * still agree. */
VAE_API uint32_t vae_model_checksum(const vae_model *m);

/* ------------------------------------------------------------- checkpoint */

/* Writes weights as safetensors (names/shapes of the PyTorch twin's
 * nn.Linear modules), the config and the given metadata (NULL-terminated
 * key, value, key, value, ... list; may be NULL) in __metadata__.
 * Atomic: a temporary file in the same directory is fsync'd and renamed. */
VAE_API int vae_model_save(vae_model *m, const char *path, const char *const *meta);

/* As vae_model_save, plus everything training needs to continue exactly:
 * the Adam moments (tensors optim.m.<name>, optim.v.<name>), the Adam
 * settings, the step count, gradient clipping and the training RNG. */
VAE_API int vae_model_save_checkpoint(vae_model *m, const char *path, const char *const *meta);

/* Loads a file written by either; a checkpoint's training state comes back
 * with it (otherwise the moments are zero and the step count is 0). */
VAE_API int vae_model_load(const char *path, int max_batch, vae_model **out, vae_error *err);

/* Metadata value from the loaded checkpoint, or NULL. */
VAE_API const char *vae_model_meta(const vae_model *m, const char *key);

/* ---------------------------------------------------------------- VQ-VAE */

/* The latent size (code_dim x grid cells) a VQ-VAE configuration needs in
 * cfg->latent, and its grid (either pointer may be NULL); 0 when the conv
 * layers do not fit the image. */
VAE_API int vae_config_vq_latent(const vae_config *cfg, int *grid_h, int *grid_w);

/* codes (B x grid cells, row-major over the grid) = the nearest codebook
 * entry of each encoder output of the B images x. VAE_EUNSUPPORTED for
 * other models. */
VAE_API int vae_model_vq_codes(vae_model *m, const float *x, int B, int32_t *codes);
/* out (B x D) = the decoder's means for B grids of codes (each in 0..K-1). */
VAE_API int vae_model_vq_decode(vae_model *m, const int32_t *codes, int B, float *out);
/* counts (K) = how often each code was chosen by the training steps since
 * the last reset (reset != 0 clears the counts after copying them). */
VAE_API int vae_model_vq_usage(vae_model *m, double *counts, int reset);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_MODEL_H */
