/* prior.c - the VampPrior's mixture log-density and its gradient (see
 * prior.h), written once over real. The components are kept transposed
 * (one row of K per latent dimension), so that the loops over the
 * components vectorise: a row's K terms cost about what one component's
 * scalar loop did (they were a third of a VampPrior step's time). */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "nn/latent.h"
#include "nn/prior.h"

enum { BLOCK = 256 }; /* components per block of terms on the stack */

void vae__vamp_prepare(real *tab, real *c, const real *comp, int hw, int K, int d)
{
    real *mu = tab, *iv = tab + (size_t)d * K, *live = iv + (size_t)d * K;
    for (int k = 0; k < K; k++) {
        const real *mk = comp + (size_t)k * hw, *lv = mk + d;
        double s = 0;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]);
            mu[(size_t)j * K + k] = mk[j];
            iv[(size_t)j * K + k] = real_exp(-l);
            live[(size_t)j * K + k] = l == lv[j];
            s += l;
        }
        c[k] = (real)(-0.5 * s - log((double)K));
    }
}

/* t[k - k0] = c_k - 1/2 sum_j (z_j - mu_kj)^2 iv_kj for components k0..k1,
 * summed over j in order as a scalar loop per component would. */
VAE_VECTOR_CLONES
static void terms(double *restrict t, const real *restrict z, const real *restrict tab,
                  const real *restrict c, int K, int d, int k0, int k1)
{
    const real *iv = tab + (size_t)d * K;
    int n = k1 - k0;
    for (int k = 0; k < n; k++) t[k] = 0;
    for (int j = 0; j < d; j++) {
        const real *mj = tab + (size_t)j * K + k0, *ivj = iv + (size_t)j * K + k0;
        double zj = z[j];
#pragma omp simd
        for (int k = 0; k < n; k++) {
            double e = zj - mj[k];
            t[k] += e * e * ivj[k];
        }
    }
    for (int k = 0; k < n; k++) t[k] = c[k0 + k] - 0.5 * t[k];
}

double vae__vamp_log_prior(const real *z, const real *tab, const real *c, int K, int d)
{
    double t[BLOCK], top = -INFINITY, sum = 0; // sum of e^(term - top), rescaled when top rises
    for (int k0 = 0; k0 < K; k0 += BLOCK) {
        int k1 = K - k0 < BLOCK ? K : k0 + BLOCK;
        terms(t, z, tab, c, K, d, k0, k1);
        for (int k = 0; k < k1 - k0; k++) {
            if (t[k] > top) {
                sum = sum * exp(top - t[k]) + 1;
                top = t[k];
            } else {
                sum += exp(t[k] - top);
            }
        }
    }
    return top + log(sum);
}

/* One row's gradient: a_k = s resp_k into the transposed sums dmu, dlv
 * (d,K), and dz (d) -= sum_k a_k (z - mu_k) iv_k. */
VAE_VECTOR_CLONES
static void row_backward(real *restrict dz, real *restrict dmu, real *restrict dlv,
                         const real *restrict z, const real *restrict tab,
                         const real *restrict a, int K, int d)
{
    const real *iv = tab + (size_t)d * K, *live = iv + (size_t)d * K;
    for (int j = 0; j < d; j++) {
        const real *mj = tab + (size_t)j * K, *ivj = iv + (size_t)j * K, *lj = live + (size_t)j * K;
        real *dmj = dmu + (size_t)j * K, *dlj = dlv + (size_t)j * K, zj = z[j], acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int k = 0; k < K; k++) {
            real e = zj - mj[k], g = e * ivj[k], ag = a[k] * g; // dlog N_k / dmu_kj, weighed
            acc += ag;
            dmj[k] += ag;
            dlj[k] += a[k] * (real)0.5 * (e * g - 1) * lj[k];
        }
        dz[j] -= acc;
    }
}

size_t vae__vamp_work_size(int K, int d)
{
    return (size_t)K * (2 * (size_t)d + 1);
}

void vae__vamp_log_prior_backward(real *dz, real *dcomp, int hw, const real *z, const real *tab,
                                  const real *c, const real *w, real scale, int R, int K, int d,
                                  real *work)
{
    real *a = work, *dmu = work + K, *dlv = dmu + (size_t)d * K;
    memset(dmu, 0, 2 * (size_t)d * K * sizeof *dmu);
    for (int r = 0; r < R; r++) {
        const real *zr = z + (size_t)r * d;
        real s = w ? scale * w[r] : scale;
        double t[BLOCK], top = -INFINITY, sum = 0;
        for (int k0 = 0; k0 < K; k0 += BLOCK) {
            int k1 = K - k0 < BLOCK ? K : k0 + BLOCK;
            terms(t, zr, tab, c, K, d, k0, k1);
            for (int k = k0; k < k1; k++) {
                a[k] = (real)t[k - k0];
                top = fmax(top, t[k - k0]);
            }
        }
        for (int k = 0; k < K; k++) sum += exp(a[k] - top);
        double lse = top + log(sum);
        for (int k = 0; k < K; k++) a[k] = s * (real)exp(a[k] - lse); // s resp_k
        row_backward(dz + (size_t)r * d, dmu, dlv, zr, tab, a, K, d);
    }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < d; j++) {
            dcomp[(size_t)k * hw + j] += dmu[(size_t)j * K + k];
            dcomp[(size_t)k * hw + d + j] += dlv[(size_t)j * K + k];
        }
}
