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

void kl_per_dim(const float *mu, const float *logvar, long n, int d, double *kl)
{
    for (int j = 0; j < d; j++) kl[j] = 0;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double m = mu[i * d + j], lv = logvar[i * d + j];
            kl[j] += 0.5 * (m * m + exp(lv) - 1 - lv);
        }
    for (int j = 0; j < d && n > 0; j++) kl[j] /= (double)n;
}

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

/* LAPACK's symmetric eigensolver (in OpenBLAS); the trailing lengths of
 * the three character arguments are gfortran's hidden arguments. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    double *a, const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);

int pca2(const float *x, long n, int d, double *out, double explained[2])
{
    if (n < 2 || d < 2) return VAE_EINVAL;
    double *mean = calloc((size_t)d, sizeof *mean), *cov = calloc((size_t)d * d, sizeof *cov);
    double *w = malloc((size_t)d * sizeof *w), *v = malloc((size_t)2 * d * sizeof *v);
    int *isuppz = malloc(4 * sizeof *isuppz), rc = VAE_OK;
    double *work = NULL;
    int *iwork = NULL;
    if (!mean || !cov || !w || !v || !isuppz) { rc = VAE_ENOMEM; goto done; }
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)n;
    // covariance (upper triangle in column-major = lower in row-major: symmetric anyway)
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double cj = x[i * d + j] - mean[j];
            for (int k = j; k < d; k++) cov[(size_t)j * d + k] += cj * (x[i * d + k] - mean[k]);
        }
    double total = 0;
    for (int j = 0; j < d; j++) {
        for (int k = j; k < d; k++) cov[(size_t)k * d + j] = cov[(size_t)j * d + k] /= (double)(n - 1);
        total += cov[(size_t)j * d + j];
    }
    // the two largest eigenpairs (eigenvalues come back ascending)
    int il = d - 1, iu = d, m = 0, info = 0, lwork = -1, liwork = -1, iw_query;
    double vl = 0, vu = 0, abstol = 0, w_query;
    dsyevr_("V", "I", "U", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, w, v, &d, isuppz,
            &w_query, &lwork, &iw_query, &liwork, &info, 1, 1, 1);
    if (info != 0) { rc = VAE_ENUMERIC; goto done; }
    lwork = (int)w_query, liwork = iw_query;
    work = malloc((size_t)lwork * sizeof *work), iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) { rc = VAE_ENOMEM; goto done; }
    dsyevr_("V", "I", "U", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, w, v, &d, isuppz, work,
            &lwork, iwork, &liwork, &info, 1, 1, 1);
    if (info != 0 || m != 2) { rc = VAE_ENUMERIC; goto done; }
    for (int c = 0; c < 2; c++) {
        double *vc = v + (size_t)(1 - c) * d; // largest first
        int big = 0;
        for (int j = 1; j < d; j++) if (fabs(vc[j]) > fabs(vc[big])) big = j;
        if (vc[big] < 0) for (int j = 0; j < d; j++) vc[j] = -vc[j];
        explained[c] = total > 0 ? w[1 - c] / total : 0;
        for (long i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += (x[i * d + j] - mean[j]) * vc[j];
            out[i * 2 + c] = s;
        }
    }
done:
    free(mean), free(cov), free(w), free(v), free(isuppz), free(work), free(iwork);
    return rc;
}
