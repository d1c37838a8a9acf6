/*
 * vae/eval.h - measuring a model: the ELBO and its terms, the
 * importance-sampled log-likelihood, active units and KL per dimension, and
 * PCA as the linear baseline.
 *
 *     vae_eval_opts o;
 *     vae_eval_opts_default(&o);       // k = 5000
 *     o.k = 100;
 *     vae_eval_result r;
 *     if (vae_model_eval(m, x, NULL, n, &o, &r, NULL, NULL, NULL) == VAE_OK)
 *         printf("NLL %.2f nats, -ELBO %.2f\n", r.nll, r.neg_elbo);
 */
#ifndef VAE_API_EVAL_H
#define VAE_API_EVAL_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    double kl;        /* KL(q(z|x) || N(0,I)): closed form; a flow's estimated from the k samples */
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
 * batch. With a flow the KL is the mean of the k samples' log q(z|x) -
 * log p(z). Optional outputs (NULL to skip): kl_dim (latent) gets the mean KL
 * of each latent dimension (with a flow: of its base posterior), mu_var (latent) Var_x(mu_j(x)) (population
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
#endif /* VAE_API_EVAL_H */
