/*
 * loss.h - the decoder's likelihoods p(x|z) as forward/backward pairs of
 * negative log densities: Bernoulli and continuous Bernoulli from logits,
 * Gaussian from means with a fixed or learned sigma; and the classifier's
 * softmax cross-entropy (float or double).
 */
#ifndef VAE_LOSS_H
#define VAE_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/real.h"

/* Clamp range of a learned Gaussian likelihood's log sigma, likewise: sigma
 * in [e^-7, e^5] keeps the density finite on exactly fitted pixels. */
#define VAE_LOG_SIGMA_MIN (-7.0)
#define VAE_LOG_SIGMA_MAX 5.0

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
/* Its derivative d E[x] / d eta (the perceptual term's chain through it). */
real vae__cb_mean_grad(real eta);

/* prob (B,K) = the softmax of each row of logits (B,K), stable for any
 * logit (the row maximum is subtracted). Serial. */
void vae__softmax_rows(const real *logits, int B, int K, real *prob);
/* Softmax cross-entropy of K-class logits (B,K) against labels (B, each
 * < K): -log softmax(logits)_label, stable for any logit (the row maximum
 * is subtracted). Returns the sum over the batch; prob (B,K) gets the
 * softmax for the backward pass and for the caller's predictions. Serial. */
double vae__softmax_xent_forward(const real *logits, const uint8_t *labels, int B, int K,
                                 real *prob);
/* dlogits (B,K) = scale * (prob - onehot(label)), prob from the forward. */
void vae__softmax_xent_backward(real *dlogits, const real *prob, const uint8_t *labels, real scale,
                                int B, int K);

#endif
