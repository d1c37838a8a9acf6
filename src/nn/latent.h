/*
 * latent.h - the terms between encoder and decoder, each a forward/backward
 * pair written once (float or double, real.h): the reparameterisation
 * z = mu + sigma eps, the Gaussian posterior's KL to N(0,I) and its free-bits
 * mask, the IWAE log-ratio log p(z) - log q(z|x), and the sparse AE's L1
 * penalty on the code. The network (model/net.c) strings them together per
 * latent kind; evaluation (model/eval.c) calls the same functions.
 *
 * The encoder's head row of an image is [mu | logvar] (2d values; hw wide
 * where a flow's parameters follow them, nn/flow.h). K rows of
 * z (or of eps) belong to each image: K = 1 for the VAE, the IWAE's k
 * samples otherwise; row r is a sample of image r / K.
 */
#ifndef VAE_LATENT_H
#define VAE_LATENT_H

#include <stddef.h>

#include "nn/real.h"

/* Clamp range of log sigma^2: exp stays finite and the gradient is zero
 * where the clamp is active (as the forward pass sees a constant there). */
#define VAE_LOGVAR_MIN (-30.0)
#define VAE_LOGVAR_MAX 20.0

static inline real vae__clamp_logvar(real lv)
{
    return lv < (real)VAE_LOGVAR_MIN ? (real)VAE_LOGVAR_MIN
         : lv > (real)VAE_LOGVAR_MAX ? (real)VAE_LOGVAR_MAX : lv;
}

/* KL(N(mu, e^lv) || N(0,1)) of one latent dimension, logvar clamped:
 * 1/2 (mu^2 + e^lv - 1 - lv), in double. The one place the formula is
 * written: training's loss, free bits and evaluation all call it. */
static inline double vae__gauss_kl(real mu, real lv)
{
    real l = vae__clamp_logvar(lv), var = real_exp(l);
    return 0.5 * ((double)mu * mu + var - 1.0 - l);
}

/* ------------------------------------------------------ reparameterisation */

/* z (B*K,d): row r = mu + sigma eps_r with mu, logvar from head row r / K
 * (head (B,hw), eps (B*K,d)); sigma = sqrt(e^logvar), logvar clamped. */
void vae__reparam_forward(real *z, const real *head, int hw, const real *eps, int B, int d, int K);
/* dhead (B,hw) += the gradient through the reparameterisation of dz
 * (B*K,d), summed over each image's K rows: dmu += dz, dlogvar += dz eps
 * sigma / 2, nothing where the clamp holds logvar. It adds: the latent
 * term's own backward (KL, IWAE log-ratio) writes dhead first. */
void vae__reparam_backward(real *dhead, const real *head, int hw, const real *eps, const real *dz,
                           int B, int d, int K);

/* ------------------------------------------------------------ Gaussian KL */

/* The batch's KL(q(z|x) || N(0,I)) from head (B,2d); kl_img (B) gets each
 * image's when not NULL. */
double vae__gauss_kl_forward(const real *head, int B, int d, real *kl_img);
/* dhead (B,2d) = scale * dKL/dhead, written; dimension j left out where
 * mask[j] is 0 (free bits; mask may be NULL) and logvar's gradient zero
 * where the clamp holds it. */
void vae__gauss_kl_backward(real *dhead, const real *head, real scale, const real *mask, int B,
                            int d);

/* Free bits (Kingma et al. 2016): the KL gradient of a latent dimension
 * counts only when the dimension's batch-mean KL is at least `floor` nats.
 * Its forward half: kl_dim (d) = the KL of each dimension summed over a
 * slice's B images (zeros for B = 0) ... */
void vae__free_bits_kl(real *kl_dim, const real *head, int B, int d);
/* ... and the mask vae__gauss_kl_backward applies: mask[j] = 1 when the
 * sum of n slices' kl_dims[s][j], over B_total images, is at least floor
 * per image (summed in slice order: every thread reaches the same mask). */
void vae__free_bits_mask(real *mask, const real *const *kl_dims, int n, int d, int B_total,
                         double floor);

/* ------------------------------------------------------------ IWAE weight */

/* log p(z) - log q(z|x) of one sample, up to the constants that cancel:
 * 1/2 sum_j (logvar_j + eps_j^2 - z_j^2), in double; lv is the image's
 * logvar (clamped here). An importance weight is this minus -log p(x|z). */
double vae__iwae_log_ratio(const real *z, const real *eps, const real *lv, int d);
/* The gradient of sum_r c_r * (-log-ratio_r), c_r = scale * w_r, with z
 * and logvar apart (the path through z = mu + sigma eps is
 * vae__reparam_backward's): dz (B*K,d) += c_r z_r, and dhead's [mu | logvar]
 * (B rows, hw wide) is written: 0 for mu, -1/2 sum_r c_r for logvar (0
 * where the clamp holds it). w: (B*K) weights (IWAE: the normalised
 * importance weights), or NULL for all 1. */
void vae__iwae_log_ratio_backward(real *dz, real *dhead, int hw, const real *z, const real *head,
                                  const real *w, real scale, int B, int d, int K);

/* A flow's KL against N(0, I) is estimated as KL(q_0 || N) in closed form
 * + log N(z_0) - log N(z_T) - log det: the same mean as the one-sample
 * log q_T(z_T) - log N(z_T), without the noise of q_0's own terms (none is
 * left for reflections, which keep |z|). This is the closed form's part less
 * its estimate at z_0 (mu, lv: the image's head; eps its noise), which the
 * one-sample estimate is to be added to. */
double vae__flow_base_kl(const real *mu, const real *lv, const real *z0, const real *eps, int d);
/* Its gradient times scale, B images: dz0 (B,d) -= scale z_0 (the path
 * through z_0 = mu + sigma eps is vae__reparam_backward's), and dhead's
 * [mu | logvar] (hw wide) += scale (mu, e^lv / 2), 0 for a clamped logvar. */
void vae__flow_base_kl_backward(real *dz0, real *dhead, int hw, const real *z0, const real *head,
                                real scale, int B, int d);

/* ------------------------------------------- Gaussian to Gaussian (HVAE) */

/* KL(N(mu, e^lv) || N(pmu, e^plv)) of one latent dimension, both logvars
 * clamped: 1/2 (plv - lv + (e^lv + (mu - pmu)^2) e^-plv - 1), in double.
 * The HVAE's bottom-layer KL between q(z1|x,z2) and p(z1|z2); with pmu = 0,
 * plv = 0 it is vae__gauss_kl. */
static inline double vae__gauss_kl2(real mu, real lv, real pmu, real plv)
{
    real l = vae__clamp_logvar(lv), pl = vae__clamp_logvar(plv);
    double dm = (double)mu - pmu;
    return 0.5 * ((double)pl - l + ((double)real_exp(l) + dm * dm) * exp(-(double)pl) - 1.0);
}

/* The batch's KL(q || p) of two diagonal Gaussians given per row: q's rows
 * [mu | logvar] in q (B rows, hq wide), p's in p (B rows, hp wide), d
 * dimensions each; kl_img (B) gets each row's added (NULL: not kept).
 * Returns the batch's sum. */
double vae__gauss_kl2_forward(const real *q, int hq, const real *p, int hp, int B, int d,
                              real *kl_img);
/* dq (B, hq) and dp (B, hp): scale * dKL/d[mu | logvar] of q and of p,
 * written (the other columns left alone); a logvar's gradient is zero where
 * the clamp holds it. */
void vae__gauss_kl2_backward(real *dq, real *dp, const real *q, int hq, const real *p, int hp,
                             real scale, int B, int d);
/* log p(z) - log q(z) of one sample z = mu + sigma eps of q = N(mu, e^lv),
 * p = N(pmu, e^plv), up to the constants that cancel: 1/2 sum_j (lv_j +
 * eps_j^2 - plv_j - (z_j - pmu_j)^2 e^-plv_j), in double, logvars clamped;
 * what the HVAE's importance weights add for z1 (p = N(0, I) gives
 * vae__iwae_log_ratio). */
double vae__gauss_log_ratio2(const real *z, const real *eps, const real *lv, const real *pmu,
                             const real *plv, int d);

/* ---------------------------------------------------------------- L1 */

/* The sparse AE's penalty sum_j |code_j| over a (B,d) code; per_img (B)
 * gets each image's; returns the batch's sum. */
double vae__l1_forward(const real *code, int B, int d, real *per_img);
/* dcode (n) = dz + scale * sign(code), written (scale 0: the plain AE). */
void vae__l1_backward(real *dcode, const real *dz, const real *code, real scale, size_t n);

#endif
