/*
 * prior.h - the VampPrior (Tomczak & Welling 2018) as a forward/backward
 * pair over plain arrays (float or double, real.h): the mixture of the
 * encoder's Gaussian posteriors at K learned pseudo-inputs,
 * p(z) = 1/K sum_k N(z; mu_k, diag e^{logvar_k}), its log-density in a
 * stable log-sum-exp, and the gradient of that log-density with respect to
 * z and to every component's mu and logvar (which model/net.c carries on
 * through the encoder's pass over the pseudo-inputs to the pseudo-inputs).
 *
 * The components are K rows of the encoder's head, [mu | logvar] first in
 * each (hw wide), logvar clamped as everywhere (nn/latent.h). Like
 * vae__iwae_log_ratio, log-densities leave out the -d/2 log 2 pi that
 * every Gaussian log-density of the model carries (it cancels in log p - log q).
 */
#ifndef VAE_PRIOR_H
#define VAE_PRIOR_H

#include "nn/real.h"

/* Per component, what every evaluation of the density reuses, transposed:
 * tab (3d, K) = [mu | iv | live] with iv = e^{-logvar}, live = 1 where the
 * clamp leaves logvar free, and c (K) = -1/2 sum_j logvar_j - log K. */
#define VAE_VAMP_TAB(K, d) (3 * (size_t)(K) * (size_t)(d))
void vae__vamp_prepare(real *tab, real *c, const real *comp, int hw, int K, int d);

/* log p(z) of one z (d values), in double: logsumexp_k (c_k - 1/2 sum_j
 * (z_j - mu_kj)^2 iv_kj), computed in one pass with a running maximum. */
double vae__vamp_log_prior(const real *z, const real *tab, const real *c, int K, int d);

/* The gradient of sum_r s_r log p(z_r) over R rows z (R,d), s_r = scale *
 * w_r (w NULL: all 1): dz (R,d) += s_r dlog p/dz_r, and dcomp (K rows, hw
 * wide) += the sum over r in its mu and logvar columns (logvar's zero where
 * the clamp holds it). With resp_k the component's posterior weight of z:
 * dlog p/dz = -sum_k resp_k (z - mu_k) iv_k, dlog p/dmu_k = resp_k (z -
 * mu_k) iv_k, dlog p/dlogvar_k = resp_k ((z - mu_k)^2 iv_k - 1) / 2.
 * work: vae__vamp_work_size(K, d) values of scratch. */
size_t vae__vamp_work_size(int K, int d);
void vae__vamp_log_prior_backward(real *dz, real *dcomp, int hw, const real *z, const real *tab,
                                  const real *c, const real *w, real scale, int R, int K, int d,
                                  real *work);

#endif
