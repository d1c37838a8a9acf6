/*
 * latent.h - the terms between encoder and decoder, as forward/backward
 * pairs: the Gaussian posterior's reparameterisation and its KL to N(0,I)
 * (float or double, real.h).
 */
#ifndef VAE_LATENT_H
#define VAE_LATENT_H

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

#endif
