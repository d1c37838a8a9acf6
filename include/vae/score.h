/*
 * vae/score.h - how good samples look: a small convolutional classifier
 * trained on the data set itself, the Fréchet distance between two sets of
 * its penultimate features (FID with this classifier in Inception's place),
 * its confidence and diversity on samples, and the latent codes' k-NN and
 * linear-probe accuracies. Separate from vae/eval.h, which measures the
 * model's density: these numbers need a second network and say nothing
 * about likelihood.
 *
 *     vae_classifier_config cc;
 *     vae_classifier_config_default(&cc);     // 1x28x28, 10 classes
 *     vae_classifier *c;
 *     if (vae_classifier_create(&cc, 128, 1, &c, &err)) ...
 *     for (...) vae_classifier_train_step(c, x, labels, 128, &loss, &right, &err);
 *     vae_classifier_predict(c, x, n, prob, feat, &err);   // feat: n x hidden
 *     vae_feature_stats(feat, n, cc.hidden, mean_a, cov_a, &err);
 *     ...  // the same for a second set
 *     vae_frechet_distance(mean_a, cov_a, mean_b, cov_b, cc.hidden, &fd, &err);
 */
#ifndef VAE_API_SCORE_H
#define VAE_API_SCORE_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ classifier */

/* conv 3x3 stride 1 (conv1 channels) -> ReLU -> conv 3x3 stride 2 (conv2)
 * -> ReLU -> linear (hidden) -> ReLU -> linear (classes), trained with
 * softmax cross-entropy and Adam. The features are the hidden layer's
 * ReLU outputs (the penultimate layer). */
typedef struct vae_classifier_config {
    int channels, height, width; /* the images' shape */
    int classes;                 /* 2..256 */
    int conv1, conv2, hidden;    /* widths */
} vae_classifier_config;

/* 1x28x28, 10 classes, conv1 32, conv2 64, hidden 128. */
VAE_API void vae_classifier_config_default(vae_classifier_config *cfg);

typedef struct vae_classifier vae_classifier;

/* A classifier with PyTorch's default initialisation (U(+-1/sqrt(fan_in)))
 * from seed, buffers for batches up to max_batch, Adam's defaults. */
VAE_API int vae_classifier_create(const vae_classifier_config *cfg, int max_batch, uint64_t seed,
                                  vae_classifier **out, vae_error *err);
VAE_API void vae_classifier_free(vae_classifier *c);
VAE_API const vae_classifier_config *vae_classifier_get_config(const vae_classifier *c);
VAE_API size_t vae_classifier_num_params(const vae_classifier *c);
VAE_API void vae_classifier_set_adam(vae_classifier *c, const vae_adam *a);

/* One Adam step on the mean cross-entropy of B images x (B x D, B <=
 * max_batch) with labels (each < classes), parallel over the batch's rows
 * (the bits depend on the thread count). loss_sum (may be NULL) gets the
 * batch's summed cross-entropy, correct (may be NULL) how many argmaxes
 * were right, both before the update. VAE_EINVAL for bad arguments or a
 * label out of range, VAE_ENUMERIC (weights unchanged) for a non-finite
 * loss. */
VAE_API int vae_classifier_train_step(vae_classifier *c, const float *x, const uint8_t *labels,
                                      int B, double *loss_sum, int *correct, vae_error *err);

/* For n images x (any n >= 1, in blocks of max_batch, parallel): prob
 * (n x classes, may be NULL) the softmax, features (n x hidden, may be
 * NULL) the penultimate layer. */
VAE_API int vae_classifier_predict(vae_classifier *c, const float *x, long n, float *prob,
                                   float *features, vae_error *err);

/* The weights (conv1.weight, ..., fc2.bias under the PyTorch twin's names),
 * the shape and the caller's metadata (NULL-terminated key, value list, may
 * be NULL; "format" and "classifier.*" keys are the library's). Atomic. */
VAE_API int vae_classifier_save(const vae_classifier *c, const char *path,
                                const char *const *meta, vae_error *err);
/* Loads a file vae_classifier_save wrote, every name and shape checked. */
VAE_API int vae_classifier_load(const char *path, int max_batch, vae_classifier **out,
                                vae_error *err);
/* A metadata value of a loaded classifier, or NULL. */
VAE_API const char *vae_classifier_meta(const vae_classifier *c, const char *key);

/* ------------------------------------------------------ perceptual loss */

/* The classifier's layers a perceptual term compares (bits). */
enum { VAE_PERCEPTUAL_CONV1 = 1, VAE_PERCEPTUAL_CONV2 = 2, VAE_PERCEPTUAL_FC1 = 4 };
/* Adds weight * sum over the chosen layers of ||phi(x) - phi(xhat)||^2 to
 * each training image's reconstruction term: phi the classifier's feature
 * maps (after ReLU), x the target, xhat the decoder's mean (Bernoulli: the
 * sigmoid of the logits; Gaussian: the mean; continuous Bernoulli: its
 * mean). The gradient reaches the decoder through the classifier, whose
 * weights never change. Training steps only: evaluation stays the ELBO.
 * The classifier must read the model's image shape and outlive the term (or
 * the model); c = NULL removes the term. Errors (VAE_EINVAL): another image
 * shape, no layer or an unknown bit, a weight < 0 or not finite, an IWAE
 * with k > 1 (its samples' bound has no single mean image). */
VAE_API int vae_model_set_perceptual(vae_model *m, const vae_classifier *c, unsigned layers,
                                     float weight);

/* ----------------------------------------------------- Fréchet distance */

/* The mean (d) and the covariance (d x d, divided by n - 1) of n >= 2
 * feature rows f (n x d), in double. */
VAE_API int vae_feature_stats(const float *f, long n, int d, double *mean, double *cov,
                              vae_error *err);

/* The Fréchet distance between the Gaussians N(m1, c1) and N(m2, c2):
 * |m1 - m2|^2 + tr c1 + tr c2 - 2 tr (c1^1/2 c2 c1^1/2)^1/2, the square
 * roots by symmetric eigendecompositions (LAPACK dsyevr; negative
 * eigenvalues from rounding are taken as 0). */
VAE_API int vae_frechet_distance(const double *m1, const double *c1, const double *m2,
                                 const double *c2, int d, double *out, vae_error *err);

/* Over n softmax rows prob (n x K): the mean entropy of a row (low: the
 * classifier is confident) and the entropy of the mean row (high, up to
 * log K: the classes are evenly covered), in nats. */
VAE_API void vae_class_entropy(const float *prob, long n, int K, double *mean_entropy,
                               double *entropy_of_mean);

/* ------------------------------------------------------- latent probes */

/* The share of test rows (nte x d) whose k nearest training rows (ntr x d,
 * Euclidean) vote for their label; a tie goes to the class with the nearer
 * neighbours. */
VAE_API int vae_knn_accuracy(const float *train, const uint8_t *ytr, long ntr, const float *test,
                             const uint8_t *yte, long nte, int d, int k, double *acc,
                             vae_error *err);

/* Ridge regression on one-hot targets, closed form in double: weights
 * W = (X^T X + lambda n I)^-1 X^T Y over the training rows with a constant
 * column appended; the share of test rows whose largest output is their
 * label. Labels < classes. */
VAE_API int vae_ridge_probe_accuracy(const float *train, const uint8_t *ytr, long ntr,
                                     const float *test, const uint8_t *yte, long nte, int d,
                                     int classes, double lambda, double *acc, vae_error *err);

/* ------------------------------------------------- reference degradations */

/* out = x blurred by a Gaussian of standard deviation sigma pixels (a
 * separable kernel of radius ceil(3 sigma), edges replicated), per channel
 * of n images c x h x w. sigma 0 copies. out may not alias x. VAE_ENOMEM. */
VAE_API int vae_images_blur(const float *x, long n, int c, int h, int w, double sigma, float *out,
                            vae_error *err);
/* out = clip(x + sigma N(0, 1), 0, 1) over n x D values, noise from seed. */
VAE_API void vae_images_noise(const float *x, size_t n, double sigma, uint64_t seed, float *out);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_SCORE_H */
