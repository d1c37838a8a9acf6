/*
 * vae.h - the public API of libvae, a Variational Autoencoder toolkit in C.
 *
 * Conventions
 *   - Every fallible call returns int: VAE_OK (0) or a negative VAE_E* code.
 *     vae_strerror(code) names the code; the detailed one-line message goes to
 *     the vae_error the caller passed (may be NULL) or, for calls on a model,
 *     to vae_model_errmsg(model).
 *   - The library never prints, exits or aborts on bad input.
 *   - Handles are opaque; *_free(NULL) is a no-op.
 *   - Images travel as float rows of D = channels*height*width values in
 *     [0,1], row-major (batch, channel, height, width).
 *   - Enums are append-only.
 */
#ifndef VAE_H
#define VAE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VAE_VERSION "0.2.0" /* 0.2: the model verbs renamed, labels per call (docs/api.md) */

#if defined(__GNUC__)
#define VAE_API __attribute__((visibility("default")))
#else
#define VAE_API
#endif

/* ---------------------------------------------------------------- errors */

#define VAE_ERRNO_MAP(XX)                                  \
    XX(OK, 0, "success")                                   \
    XX(EINVAL, -1, "invalid argument")                     \
    XX(ENOMEM, -2, "out of memory")                        \
    XX(EIO, -3, "input/output error")                      \
    XX(ENOENT, -4, "no such file or directory")            \
    XX(EFORMAT, -5, "malformed or corrupt file")           \
    XX(ESHAPE, -6, "shape mismatch")                       \
    XX(ENUMERIC, -7, "non-finite number")                  \
    XX(EUNSUPPORTED, -8, "unsupported feature")

typedef enum {
#define VAE_XX_(name, code, text) VAE_##name = code,
    VAE_ERRNO_MAP(VAE_XX_)
#undef VAE_XX_
} vae_status;

/* Static English text for a status code ("unknown error" if not one). */
VAE_API const char *vae_strerror(int code);

/* Where calls without a handle put their message. */
typedef struct vae_error {
    int code;
    char msg[512];
} vae_error;

/* ------------------------------------------------------------------- rng */

/* The project's own PRNG (xoshiro256** seeded by splitmix64): the same
 * numbers on every platform and libc. Plain state, so it can be saved. */
typedef struct vae_rng {
    uint64_t s[4];
    int has_spare;  /* Box-Muller makes normals in pairs */
    double spare;
} vae_rng;

VAE_API void vae_rng_seed(vae_rng *r, uint64_t seed);
VAE_API uint64_t vae_rng_u64(vae_rng *r);
VAE_API double vae_rng_uniform(vae_rng *r);      /* [0, 1), 53 bits */
VAE_API double vae_rng_normal(vae_rng *r);       /* N(0, 1) */
VAE_API uint64_t vae_rng_below(vae_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

/* The state as text (VAE_RNG_TEXT bytes with the NUL) and back, exactly:
 * for checkpoints. vae_rng_parse returns VAE_EINVAL and leaves r alone on
 * malformed text. */
#define VAE_RNG_TEXT 96
VAE_API void vae_rng_format(const vae_rng *r, char out[VAE_RNG_TEXT]);
VAE_API int vae_rng_parse(vae_rng *r, const char *text);

/* ---------------------------------------------------------------- config */

#define VAE_MAX_HIDDEN 8

typedef enum {
    VAE_MODEL_VAE = 0,
    VAE_MODEL_AE = 1,        /* deterministic code (tensor fc_code), reconstruction loss only */
    VAE_MODEL_SPARSE_AE = 2, /* AE + l1 * sum |code| */
    VAE_MODEL_DAE = 3,       /* AE that reconstructs the clean input from a corrupted one */
    VAE_MODEL_IWAE = 4,      /* VAE trained on the importance-weighted bound with iwae_k samples */
    VAE_MODEL_CVAE = 5,      /* conditional VAE: a one-hot label joins encoder and decoder */
} vae_model_kind;

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
/* Resizes the activation buffers for batches up to max_batch; on failure
 * the model is unchanged. */
VAE_API int vae_model_set_max_batch(vae_model *m, int max_batch);

/* Threads for BLAS and the element-wise loops (process-wide). 0 = all. */
VAE_API void vae_set_threads(int n);

VAE_API void vae_model_set_adam(vae_model *m, const vae_adam *a);
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
 * the code and logvar zeros (there is no posterior). */
VAE_API int vae_model_encode(vae_model *m, const float *x, const uint8_t *labels, int B,
                             float *mu, float *logvar);
/* z: B x latent -> out: B x D means of p(x|z) (probabilities for Bernoulli;
 * Gaussian means are not clipped to [0,1]). */
VAE_API int vae_model_decode(vae_model *m, const float *z, const uint8_t *labels, int B,
                             float *out);

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

/* ---------------------------------------------------------------- dataset */

typedef struct vae_dataset vae_dataset;

typedef enum { VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST = 1 } vae_split;

typedef enum {
    VAE_BINARIZE_NONE = 0,      /* grey levels in [0,1] */
    VAE_BINARIZE_DYNAMIC = 1,   /* each pixel ~ Bernoulli(intensity), fresh per batch */
    VAE_BINARIZE_THRESHOLD = 2, /* pixel > threshold -> 1 */
} vae_binarize;

/* Opens one split of an MNIST-layout directory: {train,t10k}-images-idx3-ubyte
 * (raw or .gz) and, when present, the matching -labels-idx1-ubyte[.gz]. */
VAE_API int vae_dataset_open_mnist(const char *dir, vae_split split, vae_dataset **out,
                                   vae_error *err);
VAE_API void vae_dataset_free(vae_dataset *ds);

VAE_API size_t vae_dataset_count(const vae_dataset *ds);
VAE_API void vae_dataset_shape(const vae_dataset *ds, int *c, int *h, int *w);
VAE_API const uint8_t *vae_dataset_images(const vae_dataset *ds); /* N x c*h*w */
VAE_API const uint8_t *vae_dataset_labels(const vae_dataset *ds); /* N, or NULL */
VAE_API const char *vae_dataset_path(const vae_dataset *ds);     /* images file */

/* Fills out (n x D floats) with the images idx[0..n) scaled to [0,1] and
 * binarised as asked (rng is used only by VAE_BINARIZE_DYNAMIC). */
VAE_API void vae_dataset_batch(const vae_dataset *ds, const uint32_t *idx, int n,
                               int binarize, float threshold, vae_rng *rng, float *out);

/* ------------------------------------------------- your own images (data) */

/* How vae_data_open reads a path; vae_data_options_default fills it. */
typedef enum {
    VAE_CSV_LABEL_NONE = 0,  /* every field is a pixel */
    VAE_CSV_LABEL_FIRST = 1, /* the first field of a row is its label (0..255) */
    VAE_CSV_LABEL_LAST = 2,  /* the last field is */
} vae_csv_label;

typedef struct vae_data_options {
    int csv_label;          /* vae_csv_label [NONE] */
    int csv_header;         /* -1: a first row with a non-number field is a header; 0: none; 1: one [-1] */
    int csv_scale;          /* CSV values are 0..255 (255) or 0..1 (1) [255] */
    int channels, height, width; /* CSV image shape; 0: a square grey image from the row length [0] */
    int resize_w, resize_h; /* PNG folders: resize every image to this; 0: all must be one size [0] */
    double test_fraction;   /* data without its own test split: the share held out [0.1] */
    uint64_t split_seed;    /* seeds the held-out shuffle [1] */
    size_t max_memory;      /* PNG folders: image bytes kept in memory; a larger data set is
                               decoded into a temporary file the kernel pages ($VAE_TMPDIR,
                               $TMPDIR or /var/tmp); 0: half the physical memory [0] */
} vae_data_options;

VAE_API void vae_data_options_default(vae_data_options *o);

/* Opens `path` and recognises its layout:
 *   - a directory with {train,t10k}-images-idx3-ubyte[.gz]: MNIST layout;
 *     its t10k files are the test split (without them, one is held out);
 *   - another directory: a folder of PNG images (*.png, any case; other files
 *     are skipped and counted). Sub-folders instead of images are classes
 *     (labels 0.. in byte order of the folder names, which are kept); a train/
 *     and a test/ sub-folder give the split. Images are read in byte order of
 *     their names. Symbolic links must stay inside the folder;
 *   - a file named *.csv or *.csv.gz: CSV, one image per row (docs/data.md).
 * Images are kept as 8-bit grey or RGB (N x C x H x W bytes). Without a test
 * split of its own, a seeded shuffle holds out opt->test_fraction of the
 * images (at least one each side). On success *train and *test are new data
 * sets (free both); on failure both are NULL and err says why. */
VAE_API int vae_data_open(const char *path, const vae_data_options *opt, vae_dataset **train,
                          vae_dataset **test, vae_error *err);

typedef enum { VAE_DTYPE_U8 = 0, VAE_DTYPE_F32 = 1 } vae_dtype;

/* A data set from the caller's memory, without files: n images of c x h x w
 * (c = 1 or 3, row-major N x C x H x W) as bytes 0..255 (VAE_DTYPE_U8) or
 * floats in [0,1] (VAE_DTYPE_F32, rounded to the nearest of 256 levels; a
 * non-finite or out-of-range value is VAE_ENUMERIC). labels (n bytes) may be
 * NULL. The data are copied. */
VAE_API int vae_dataset_from_buffer(const void *data, int dtype, size_t n, int c, int h, int w,
                                    const uint8_t *labels, vae_dataset **out, vae_error *err);

/* Splits ds by a seeded shuffle: round(fraction * n) images (at least 1, at
 * most n - 1) go to *test, the rest to *train, each in ds's order. ds is
 * unchanged (the images are copied). */
VAE_API int vae_dataset_split(const vae_dataset *ds, double fraction, uint64_t seed,
                              vae_dataset **train, vae_dataset **test, vae_error *err);

/* What a data set is, for a one-line report. Strings belong to ds. */
typedef struct vae_dataset_info {
    const char *kind;    /* "IDX", "PNG folder", "CSV" or "buffer" */
    const char *path;    /* what was opened */
    const char *split;   /* where the split came from: "t10k files", "test/ folder", "held out 10% (seed 1)", ... */
    size_t count;
    int channels, height, width;
    int num_classes;     /* 0 when unlabelled; otherwise labels are < num_classes */
    size_t skipped;      /* files in a PNG folder that are not *.png */
    int resized;         /* images were resized (--resize) */
    int on_disk;         /* images live in a mapped temporary file (max_memory) */
} vae_dataset_info;

VAE_API void vae_dataset_describe(const vae_dataset *ds, vae_dataset_info *info);
/* The name of class k (a PNG folder's sub-folder), or NULL. */
VAE_API const char *vae_dataset_class_name(const vae_dataset *ds, int k);

/* ------------------------------------------------------------------ files */

/* Writes len bytes to path crash-safely: a temporary file in the same
 * directory, fsync'd, renamed over path, the directory fsync'd. On failure
 * (a full disk included) path is untouched and no temporary is left. */
VAE_API int vae_write_file(const char *path, const void *data, size_t len, vae_error *err);

/* Removes the temporaries vae_write_file left beside path when its process
 * was killed mid-write (their writer's PID is in their name; those of a
 * running process are kept). Returns how many were removed, or a negative
 * code. */
VAE_API int vae_remove_stale_temps(const char *path, vae_error *err);

/* Reads a whole regular file of at most max bytes into *data (malloc'd,
 * NUL-terminated, caller frees), its length in *len. A FIFO, device,
 * socket or directory is refused without blocking, the message saying what
 * it is. */
VAE_API int vae_read_file(const char *path, size_t max, void **data, size_t *len, vae_error *err);

/* --------------------------------------------------------------- pictures */

/* Writes n images (each c x h x w floats in [0,1], c = 1 or 3) as one PNG
 * grid with `cols` columns, a `border`-pixel gap and each pixel drawn
 * `scale` x `scale`. Atomic like vae_model_save. */
VAE_API int vae_write_png_grid(const char *path, const float *images, int n, int c, int h,
                               int w, int cols, int border, int scale, vae_error *err);

/* ------------------------------------------------------------- evaluation */

/* How vae_model_eval estimates. Image i draws its noise from its own RNG stream,
 * a function of (seed, i) alone, and images are grouped into fixed tiles
 * whatever the thread count: a result depends on the seed, k and the
 * model's max batch (the decoder's GEMM height), not on the threads. */
typedef struct vae_eval_opts {
    int k;          /* importance samples z_1..z_k ~ q(z|x) per image, >= 1 */
    uint64_t seed;  /* noise seed */
    int threads;    /* OpenMP threads over images; 0 = omp_get_max_threads() */
    /* Called on the calling thread between blocks of images (may be NULL). */
    void (*progress)(void *ctx, long done, long total);
    void *progress_ctx;
} vae_eval_opts;

/* k 5000 (the literature's standard for NLL), seed 1, threads 0, no progress. */
VAE_API void vae_eval_opts_default(vae_eval_opts *o);

/* One image's numbers, in nats (sse: summed over its pixels). */
typedef struct vae_eval_image {
    double neg_elbo;  /* rec + kl */
    double rec;       /* -(1/k) sum_i log p(x|z_i): Monte Carlo over the k samples */
    double kl;        /* KL(q(z|x) || N(0,I)), closed form */
    double log_px;    /* log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x); -inf if every weight is 0 */
    double sse;       /* sum over pixels of (x - E[x|z = mu(x)])^2 */
} vae_eval_image;

/* Means over the images of vae_eval_image's fields, plus the latent view. */
typedef struct vae_eval_result {
    long n;           /* images */
    int k, latent;
    double neg_elbo, rec, kl;
    double nll;       /* -mean log_px: the importance-sampled negative log-likelihood */
    double sse;       /* per image */
    double mse;       /* per pixel: sse / D */
    int active_units; /* latents j with Var_x(E_q[z_j|x]) = Var_x(mu_j(x)) > 0.01 */
} vae_eval_result;

/* Evaluates the model on x (n x D floats in [0,1]), parallel over images:
 * the negative ELBO and its terms, the importance-weighted estimate of
 * log p(x) (log-sum-exp accumulated in double), the reconstruction error
 * of the decoded posterior mean and the active units. The k samples of the
 * images of a tile go through the decoder as batches of the model's max
 * batch. Optional outputs (NULL to skip): kl_dim (latent) gets the mean KL
 * of each latent dimension, mu_var (latent) Var_x(mu_j(x)) (population
 * variance), per_image (n) each image's numbers. The weights are unchanged.
 * Returns VAE_EINVAL for bad arguments, VAE_ENOMEM, or VAE_ENUMERIC when a
 * result is NaN (the message names the first such image); the message is
 * in vae_model_errmsg(m). While it runs, OpenBLAS is held to one thread
 * (each GEMM runs whole on one of the evaluation's threads); the process-wide
 * OpenBLAS and OpenMP thread counts are restored before it returns. */
VAE_API int vae_model_eval(vae_model *m, const float *x, const uint8_t *labels, long n,
                           const vae_eval_opts *opt, vae_eval_result *res, double *kl_dim,
                           double *mu_var, vae_eval_image *per_image);

/* kl[j] = the mean over the n rows of KL(N(mu, e^logvar) || N(0, 1)) in
 * dimension j (mu, logvar: n x d, as vae_model_encode gives them; logvar
 * clamped to [-30, 20] as training clamps it), in nats. */
VAE_API void vae_kl_per_dim(const float *mu, const float *logvar, long n, int d, double *kl);

/* log((1/n) sum_i exp(logw[i])) in double, stable for any finite inputs:
 * -inf when every logw[i] is -inf (or n is 0), +inf when one is +inf, NaN
 * only when an input is NaN. */
VAE_API double vae_log_mean_exp(const double *logw, size_t n);

/* ------------------------------------------------------------------- PCA */

/* PCA as the linear autoencoder baseline: the top K eigenvectors of the
 * data's covariance (LAPACK's dsyevr on a covariance built with dsyrk, in
 * double). Encode: c = V^T (x - mean); decode: x' = mean + V c. */
typedef struct vae_pca vae_pca;

/* Fits K components (1 <= K <= D) to x (n x D floats, n >= 1). */
VAE_API int vae_pca_fit(const float *x, long n, int D, int K, vae_pca **out, vae_error *err);
VAE_API void vae_pca_free(vae_pca *p);
VAE_API int vae_pca_dim(const vae_pca *p);         /* D */
VAE_API int vae_pca_components(const vae_pca *p);  /* K */
VAE_API const double *vae_pca_mean(const vae_pca *p);        /* D */
VAE_API const double *vae_pca_eigenvalues(const vae_pca *p); /* K, largest first */
VAE_API const double *vae_pca_basis(const vae_pca *p);       /* K x D, row j = component j */
/* Total variance of the fitted data (the trace of its covariance). */
VAE_API double vae_pca_total_variance(const vae_pca *p);

/* codes (n x K) of x (n x D); either output of reconstruct may be NULL:
 * out (n x D) the reconstructions, sse (n) each image's summed squared
 * error. Return VAE_EINVAL for bad arguments, VAE_ENOMEM. */
VAE_API int vae_pca_encode(const vae_pca *p, const float *x, long n, float *codes, vae_error *err);
VAE_API int vae_pca_decode(const vae_pca *p, const float *codes, long n, float *out,
                           vae_error *err);
VAE_API int vae_pca_reconstruct(const vae_pca *p, const float *x, long n, float *out, double *sse,
                                vae_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VAE_H */
