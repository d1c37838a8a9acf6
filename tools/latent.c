/* latent.c - latent-space arithmetic for the picture commands (latent.h). */
#define _DEFAULT_SOURCE /* M_PI, M_SQRT2 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"

/* ------------------------------------------------- inverse normal CDF */

double norm_quantile(double p)
{
    // Acklam's coefficients: a rational function in the centre, one in
    // sqrt(-2 log p) in the tails; relative error below 1.15e-9
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    const double plow = 0.02425;
    if (!(p >= 0 && p <= 1)) return NAN;
    if (p == 0) return -INFINITY;
    if (p == 1) return INFINITY;
    double x;
    if (p < plow || p > 1 - plow) {
        double q = sqrt(-2 * log(p < plow ? p : 1 - p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        if (p > plow) x = -x;
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    // one Halley step on f(x) = Phi(x) - p, Phi through erfc (accurate in
    // the lower tail, where 1 + erf would cancel): cubic convergence takes
    // 1e-9 to rounding level
    double e = 0.5 * erfc(-x / M_SQRT2) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    if (isfinite(u)) x = x - u / (1 + x * u / 2);
    return x;
}

/* ---------------------------------------------------------------- KL */


void order_by_kl(const double *kl, int d, int *order)
{
    for (int j = 0; j < d; j++) order[j] = j;
    for (int i = 1; i < d; i++) { // insertion sort: stable, d is small
        int o = order[i], k = i;
        while (k > 0 && kl[order[k - 1]] < kl[o]) order[k] = order[k - 1], k--;
        order[k] = o;
    }
}

/* -------------------------------------------------------------- paths */

void path_point(const float *a, const float *b, int d, double t, int slerp, float *z)
{
    double wa = 1 - t, wb = t;
    if (slerp) {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < d; j++) ab += (double)a[j] * b[j], aa += (double)a[j] * a[j], bb += (double)b[j] * b[j];
        double cosw = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1;
        if (cosw > 1) cosw = 1;
        if (cosw < -1) cosw = -1;
        double w = acos(cosw), s = sin(w);
        if (s > 1e-6) wa = sin((1 - t) * w) / s, wb = sin(t * w) / s;
    }
    for (int j = 0; j < d; j++) z[j] = (float)(wa * a[j] + wb * b[j]);
}

/* ---------------------------------------------------------------- PCA */

int pca2(const float *x, long n, int d, double *out, double explained[2])
{
    if (n < 2 || d < 2) return VAE_EINVAL;
    vae_pca *p;
    vae_error err;
    int rc = vae_pca_fit(x, n, d, 2, &p, &err);
    if (rc) return rc;
    float *codes = malloc((size_t)n * 2 * sizeof *codes);
    rc = codes ? vae_pca_encode(p, x, n, codes, &err) : VAE_ENOMEM;
    for (long i = 0; rc == VAE_OK && i < 2 * n; i++) out[i] = codes[i];
    double total = vae_pca_total_variance(p);
    for (int c = 0; c < 2; c++) explained[c] = total > 0 ? vae_pca_eigenvalues(p)[c] / total : 0;
    free(codes);
    vae_pca_free(p);
    return rc;
}
