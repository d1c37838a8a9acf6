/* latent.c - the latent terms, forward and backward (float or double):
 * reparameterisation, Gaussian KL and free bits, the IWAE log-ratio, a flow's
 * base posterior, the KL and log-ratio between two Gaussians (HVAE), L1. */
#include <stddef.h>

#include "nn/latent.h"

/* ------------------------------------------------------ reparameterisation */

void vae__reparam_forward(real *z, const real *head, int hw, const real *eps, int B, int d, int K)
{
    // head rows are [mu | logvar | ...] (hw wide); eps and z are (B*K,d)
    for (int r = 0; r < B * K; r++) {
        const real *mu = head + (size_t)(r / K) * hw, *lv = mu + d;
        const real *e = eps + (size_t)r * d;
        real *zr = z + (size_t)r * d;
        for (int j = 0; j < d; j++)
            zr[j] = mu[j] + real_sqrt(real_exp(vae__clamp_logvar(lv[j]))) * e[j];
    }
}

void vae__reparam_backward(real *dhead, const real *head, int hw, const real *eps, const real *dz,
                           int B, int d, int K)
{
    for (int b = 0; b < B; b++) {
        const real *lv = head + (size_t)b * hw + d;
        real *dmu = dhead + (size_t)b * hw, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]), sigma = real_sqrt(real_exp(l));
            // the first sample starts the sums: with K = 1 they are dz itself
            size_t r = (size_t)b * K;
            real gm = dz[r * d + j], gl = dz[r * d + j] * eps[r * d + j] * sigma;
            for (int i = 1; i < K; i++) {
                r = (size_t)b * K + i;
                gm += dz[r * d + j];
                gl += dz[r * d + j] * eps[r * d + j] * sigma;
            }
            // dz/dmu = 1; dz/dlv = eps sigma / 2; zero where clamped
            dmu[j] += gm;
            if (l == lv[j]) dlv[j] += (real)0.5 * gl;
        }
    }
}

/* ------------------------------------------------------------ Gaussian KL */

double vae__gauss_kl_forward(const real *head, int B, int d, real *kl_img)
{
    double total = 0;
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        double kl = 0;
        for (int j = 0; j < d; j++) kl += vae__gauss_kl(mu[j], lv[j]);
        if (kl_img) kl_img[i] = (real)kl;
        total += kl;
    }
    return total;
}

void vae__gauss_kl_backward(real *dhead, const real *head, real scale, const real *mask, int B,
                            int d)
{
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        real *dmu = dhead + (size_t)i * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]), ks = mask && !mask[j] ? 0 : scale;
            // dKL/dmu = mu; dKL/dlv = (e^lv - 1) / 2; zero where clamped
            dmu[j] = ks * mu[j];
            dlv[j] = l == lv[j] ? (real)0.5 * (ks * (real_exp(l) - 1)) : 0;
        }
    }
}

void vae__free_bits_kl(real *kl_dim, const real *head, int B, int d)
{
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int i = 0; i < B; i++) s += vae__gauss_kl(head[(size_t)i * 2 * d + j],
                                                       head[(size_t)i * 2 * d + d + j]);
        kl_dim[j] = (real)s;
    }
}

void vae__free_bits_mask(real *mask, const real *const *kl_dims, int n, int d, int B_total,
                         double floor)
{
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int w = 0; w < n; w++) s += kl_dims[w][j];
        mask[j] = B_total > 0 && s / B_total >= floor ? 1 : 0;
    }
}

/* ------------------------------------------------------------ IWAE weight */

double vae__iwae_log_ratio(const real *z, const real *eps, const real *lv, int d)
{
    // log N(z; 0, I) - log N(z; mu, sigma^2) = -z^2/2 + eps^2/2 + log sigma, summed
    double s = 0;
    for (int j = 0; j < d; j++)
        s += 0.5 * ((double)vae__clamp_logvar(lv[j]) + (double)eps[j] * eps[j] -
                    (double)z[j] * z[j]);
    return s;
}

void vae__iwae_log_ratio_backward(real *dz, real *dhead, int hw, const real *z, const real *head,
                                  const real *w, real scale, int B, int d, int K)
{
    for (int b = 0; b < B; b++) {
        const real *lv = head + (size_t)b * hw + d;
        real *dmu = dhead + (size_t)b * hw, *dlv = dmu + d, csum = 0;
        for (int i = 0; i < K; i++) {
            size_t r = (size_t)b * K + i;
            real c = w ? scale * w[r] : scale;
            csum += c;
            for (int j = 0; j < d; j++) dz[r * d + j] += c * z[r * d + j];
        }
        for (int j = 0; j < d; j++) {
            dmu[j] = 0;
            dlv[j] = vae__clamp_logvar(lv[j]) == lv[j] ? (real)-0.5 * csum : 0;
        }
    }
}

/* ------------------------------------------------ a flow's base posterior */

double vae__flow_base_kl(const real *mu, const real *lv, const real *z0, const real *eps, int d)
{
    double s = vae__iwae_log_ratio(z0, eps, lv, d); // log N(z_0) - log q_0(z_0)
    for (int j = 0; j < d; j++) s += vae__gauss_kl(mu[j], lv[j]);
    return s;
}

void vae__flow_base_kl_backward(real *dz0, real *dhead, int hw, const real *z0, const real *head,
                                real scale, int B, int d)
{
    for (int b = 0; b < B; b++) {
        const real *mu = head + (size_t)b * hw, *lv = mu + d, *z = z0 + (size_t)b * d;
        real *dmu = dhead + (size_t)b * hw, *dlv = dmu + d, *dz = dz0 + (size_t)b * d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]);
            // d/dlv: (e^lv - 1) / 2 from the closed form, + 1/2 from the log-ratio
            dz[j] -= scale * z[j];
            dmu[j] += scale * mu[j];
            if (l == lv[j]) dlv[j] += scale * (real)0.5 * real_exp(l);
        }
    }
}

/* ---------------------------------------------------------------- L1 */

double vae__l1_forward(const real *code, int B, int d, real *per_img)
{
    double total = 0;
    for (int i = 0; i < B; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += real_fabs(code[(size_t)i * d + j]);
        if (per_img) per_img[i] = (real)s;
        total += s;
    }
    return total;
}

void vae__l1_backward(real *dcode, const real *dz, const real *code, real scale, size_t n)
{
    // d|c|/dc = sign(c), taken as 0 at 0
    for (size_t i = 0; i < n; i++)
        dcode[i] = dz[i] + scale * (code[i] > 0 ? 1 : code[i] < 0 ? -1 : 0);
}

/* ------------------------------------------- Gaussian to Gaussian (HVAE) */

double vae__gauss_kl2_forward(const real *q, int hq, const real *p, int hp, int B, int d,
                              real *kl_img)
{
    double total = 0;
    for (int i = 0; i < B; i++) {
        const real *mu = q + (size_t)i * hq, *lv = mu + d;
        const real *pmu = p + (size_t)i * hp, *plv = pmu + d;
        double kl = 0;
        for (int j = 0; j < d; j++) kl += vae__gauss_kl2(mu[j], lv[j], pmu[j], plv[j]);
        if (kl_img) kl_img[i] += (real)kl;
        total += kl;
    }
    return total;
}

void vae__gauss_kl2_backward(real *dq, real *dp, const real *q, int hq, const real *p, int hp,
                             real scale, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const real *mu = q + (size_t)i * hq, *lv = mu + d;
        const real *pmu = p + (size_t)i * hp, *plv = pmu + d;
        real *dmu = dq + (size_t)i * hq, *dlv = dmu + d;
        real *dpmu = dp + (size_t)i * hp, *dplv = dpmu + d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]), pl = vae__clamp_logvar(plv[j]);
            real ipv = real_exp(-pl), dm = mu[j] - pmu[j], var = real_exp(l);
            // dKL/dmu = (mu - pmu) e^-plv = -dKL/dpmu; dKL/dlv = (e^(lv - plv) - 1) / 2;
            // dKL/dplv = (1 - (e^lv + (mu - pmu)^2) e^-plv) / 2; zero where clamped
            dmu[j] = scale * dm * ipv;
            dpmu[j] = -dmu[j];
            dlv[j] = l == lv[j] ? (real)0.5 * scale * (var * ipv - 1) : 0;
            dplv[j] = pl == plv[j] ? (real)0.5 * scale * (1 - (var + dm * dm) * ipv) : 0;
        }
    }
}

double vae__gauss_log_ratio2(const real *z, const real *eps, const real *lv, const real *pmu,
                             const real *plv, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        double l = vae__clamp_logvar(lv[j]), pl = vae__clamp_logvar(plv[j]);
        double dz = (double)z[j] - pmu[j], e = eps[j];
        s += l + e * e - pl - dz * dz * exp(-pl);
    }
    return 0.5 * s;
}
