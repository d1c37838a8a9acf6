/* latent.c - the Gaussian posterior between encoder and decoder:
 * reparameterisation and KL to N(0,I), forward and backward (float or
 * double). */
#include <stddef.h>

#include "nn/latent.h"

double vae__gauss_forward(real *z, const real *head, const real *eps, int B, int d, real *kl_img)
{
    // head is (B,2d) = [mu | logvar]; eps and z are (B,d)
    double total = 0;
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const real *e = eps + (size_t)i * d;
        real *zi = z + (size_t)i * d;
        double kl = 0;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]);
            real var = real_exp(l);
            zi[j] = mu[j] + real_sqrt(var) * e[j];
            kl += 0.5 * ((double)mu[j] * mu[j] + var - 1.0 - l);
        }
        if (kl_img) kl_img[i] = (real)kl;
        total += kl;
    }
    return total;
}

void vae__gauss_kl_dims(real *kl_dim, const real *head, int B, int d)
{
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int i = 0; i < B; i++) {
            const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
            real l = vae__clamp_logvar(lv[j]);
            s += 0.5 * ((double)mu[j] * mu[j] + real_exp(l) - 1.0 - l);
        }
        kl_dim[j] = (real)s;
    }
}

void vae__gauss_backward(real *dhead, const real *head, const real *eps, const real *dz,
                         real kl_scale, const real *kl_mask, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const real *e = eps + (size_t)i * d, *g = dz + (size_t)i * d;
        real *dmu = dhead + (size_t)i * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]);
            real var = real_exp(l), ks = kl_mask && !kl_mask[j] ? 0 : kl_scale;
            dmu[j] = g[j] + ks * mu[j];
            // dz/dlv = eps * sigma / 2; dKL/dlv = (e^lv - 1) / 2; zero where clamped
            dlv[j] = l == lv[j] ? (real)0.5 * (g[j] * e[j] * real_sqrt(var) + ks * (var - 1)) : 0;
        }
    }
}
