/* prior.c - the VampPrior's mixture log-density and its gradient (see
 * prior.h), written once over real. */
#include <math.h>

#include "nn/latent.h"
#include "nn/prior.h"

void vae__vamp_prepare(real *iv, real *c, const real *comp, int hw, int K, int d)
{
    for (int k = 0; k < K; k++) {
        const real *lv = comp + (size_t)k * hw + d;
        double s = 0;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]);
            iv[(size_t)k * d + j] = real_exp(-l);
            s += l;
        }
        c[k] = (real)(-0.5 * s - log((double)K));
    }
}

/* Component k's log term c_k - 1/2 sum_j (z_j - mu_kj)^2 iv_kj. */
static double comp_term(const real *z, const real *comp, int hw, const real *iv, const real *c,
                        int k, int d)
{
    const real *mu = comp + (size_t)k * hw, *ivk = iv + (size_t)k * d;
    double q = 0;
    for (int j = 0; j < d; j++) {
        double e = (double)z[j] - mu[j];
        q += e * e * ivk[j];
    }
    return c[k] - 0.5 * q;
}

double vae__vamp_log_prior(const real *z, const real *comp, int hw, const real *iv, const real *c,
                           int K, int d)
{
    double top = -INFINITY, sum = 0; // sum of e^(term - top), rescaled when top rises
    for (int k = 0; k < K; k++) {
        double t = comp_term(z, comp, hw, iv, c, k, d);
        if (t > top) {
            sum = sum * exp(top - t) + 1;
            top = t;
        } else {
            sum += exp(t - top);
        }
    }
    return top + log(sum);
}

void vae__vamp_log_prior_backward(real *dz, real *dcomp, int hw, const real *z, const real *comp,
                                  const real *iv, const real *c, const real *w, real scale, int R,
                                  int K, int d, real *resp)
{
    for (int r = 0; r < R; r++) {
        const real *zr = z + (size_t)r * d;
        real *dzr = dz + (size_t)r * d, s = w ? scale * w[r] : scale;
        double top = -INFINITY, sum = 0;
        for (int k = 0; k < K; k++) {
            double t = comp_term(zr, comp, hw, iv, c, k, d);
            resp[k] = (real)t;
            top = fmax(top, t);
        }
        for (int k = 0; k < K; k++) sum += exp(resp[k] - top);
        double lse = top + log(sum);
        for (int k = 0; k < K; k++) resp[k] = (real)exp(resp[k] - lse);
        for (int k = 0; k < K; k++) {
            const real *mu = comp + (size_t)k * hw, *lv = mu + d, *ivk = iv + (size_t)k * d;
            real *dmu = dcomp + (size_t)k * hw, *dlv = dmu + d, a = s * resp[k];
            for (int j = 0; j < d; j++) {
                real e = zr[j] - mu[j], g = e * ivk[j]; // dlog N_k / dmu_kj
                dzr[j] -= a * g;
                dmu[j] += a * g;
                if (vae__clamp_logvar(lv[j]) == lv[j]) dlv[j] += a * (real)0.5 * (e * g - 1);
            }
        }
    }
}
