/* loss.c - the Gaussian posterior (reparameterisation + KL) and the
 * Bernoulli likelihood from logits, forward and backward (float or double). */
#include "layers.h"

static real clamp_logvar(real lv)
{
    return lv < (real)VAE_LOGVAR_MIN ? (real)VAE_LOGVAR_MIN
         : lv > (real)VAE_LOGVAR_MAX ? (real)VAE_LOGVAR_MAX : lv;
}

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
            real l = clamp_logvar(lv[j]);
            real var = real_exp(l);
            zi[j] = mu[j] + real_sqrt(var) * e[j];
            kl += 0.5 * ((double)mu[j] * mu[j] + var - 1.0 - l);
        }
        if (kl_img) kl_img[i] = (real)kl;
        total += kl;
    }
    return total;
}

void vae__gauss_backward(real *dhead, const real *head, const real *eps, const real *dz,
                         real kl_scale, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const real *e = eps + (size_t)i * d, *g = dz + (size_t)i * d;
        real *dmu = dhead + (size_t)i * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = clamp_logvar(lv[j]);
            real var = real_exp(l);
            dmu[j] = g[j] + kl_scale * mu[j];
            // dz/dlv = eps * sigma / 2; dKL/dlv = (e^lv - 1) / 2; zero where clamped
            dlv[j] = l == lv[j] ? (real)0.5 * (g[j] * e[j] * real_sqrt(var) + kl_scale * (var - 1))
                                : 0;
        }
    }
}

double vae__bce_logits_forward(const real *logits, const real *target, int B, int D,
                               real *rec_img)
{
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int i = 0; i < B; i++) {
        const real *x = logits + (size_t)i * D, *t = target + (size_t)i * D;
        double s = 0;
        for (int j = 0; j < D; j++) {
            real a = x[j] > 0 ? x[j] : -x[j];
            s += (x[j] > 0 ? x[j] : 0) - x[j] * t[j] + real_log1p(real_exp(-a));
        }
        if (rec_img) rec_img[i] = (real)s;
        total += s;
    }
    return total;
}

void vae__bce_logits_backward(real *dlogits, const real *logits, const real *target, real scale,
                              size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        // sigmoid written so that exp never overflows
        real x = logits[i];
        real s = x >= 0 ? 1 / (1 + real_exp(-x)) : real_exp(x) / (1 + real_exp(x));
        dlogits[i] = scale * (s - target[i]);
    }
}
