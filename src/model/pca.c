/* pca.c - principal component analysis as the linear autoencoder baseline:
 * the covariance by BLAS dsyrk, its top eigenvectors by LAPACK dsyevr (both
 * from OpenBLAS), in double precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "internal.h"
#include "model/lapack.h"

#define PCA_MAX_D 16384 /* the covariance is D x D doubles: 2 GiB at this size */
#define PCA_CHUNK 1024  /* rows converted to double at a time */

struct vae_pca {
    int D, K;
    double *mean;   /* D */
    double *eig;    /* K, largest first */
    double *basis;  /* K x D, orthonormal rows */
    double total;   /* trace of the covariance */
};

void vae_pca_free(vae_pca *p)
{
    if (!p) return;
    free(p->mean);
    free(p->eig);
    free(p->basis);
    free(p);
}

int vae_pca_dim(const vae_pca *p) { return p->D; }
int vae_pca_components(const vae_pca *p) { return p->K; }
const double *vae_pca_mean(const vae_pca *p) { return p->mean; }
const double *vae_pca_eigenvalues(const vae_pca *p) { return p->eig; }
const double *vae_pca_basis(const vae_pca *p) { return p->basis; }
double vae_pca_total_variance(const vae_pca *p) { return p->total; }

/* Rows r0..r0+c of x minus the mean, in double: xc (c, D). */
static void centre(double *xc, const float *x, long r0, int c, const double *mean, int D)
{
    for (int i = 0; i < c; i++) {
        const float *row = x + (size_t)(r0 + i) * D;
        double *out = xc + (size_t)i * D;
        for (int j = 0; j < D; j++) out[j] = (double)row[j] - mean[j];
    }
}

/* LAPACK's column j of z (ldz = D) is eigenvector j: row j of the basis in
 * row-major order, smallest eigenvalue (w) first. Reorders them largest
 * first, fixes each one's sign so its largest entry is positive (the
 * eigensolver's signs are arbitrary) and keeps the eigenvalues in p->eig. */
static void order_basis(vae_pca *p, double *w)
{
    int D = p->D, K = p->K;
    for (int a = 0, b = K - 1; a < b; a++, b--) {
        double t = w[a];
        w[a] = w[b], w[b] = t;
        for (int j = 0; j < D; j++) {
            t = p->basis[(size_t)a * D + j];
            p->basis[(size_t)a * D + j] = p->basis[(size_t)b * D + j];
            p->basis[(size_t)b * D + j] = t;
        }
    }
    for (int c = 0; c < K; c++) {
        double *v = p->basis + (size_t)c * D;
        int big = 0;
        for (int j = 1; j < D; j++)
            if (fabs(v[j]) > fabs(v[big])) big = j;
        if (v[big] < 0)
            for (int j = 0; j < D; j++) v[j] = -v[j];
        p->eig[c] = w[c];
    }
}

int vae_pca_fit(const float *x, long n, int D, int K, vae_pca **out, vae_error *err)
{
    if (!out) return vae__error(err, VAE_EINVAL, "PCA: no place for the result");
    *out = NULL;
    if (!x || n < 1) return vae__error(err, VAE_EINVAL, "PCA needs at least one image (n = %ld)", n);
    if (D < 1 || D > PCA_MAX_D)
        return vae__error(err, VAE_EINVAL, "PCA of %d values per image: supported are 1..%d", D,
                          PCA_MAX_D);
    if (K < 1 || K > D)
        return vae__error(err, VAE_EINVAL, "%d components: need 1..%d (the values per image)", K, D);
    vae_pca *p = calloc(1, sizeof *p);
    double *cov = malloc((size_t)D * D * sizeof *cov);
    double *xc = malloc((size_t)PCA_CHUNK * D * sizeof *xc);
    double *w = malloc((size_t)D * sizeof *w);
    int rc = VAE_OK;
    if (p) {
        p->D = D, p->K = K;
        p->mean = calloc((size_t)D, sizeof *p->mean);
        p->eig = malloc((size_t)K * sizeof *p->eig);
        p->basis = malloc((size_t)K * D * sizeof *p->basis);
    }
    if (!p || !cov || !xc || !w || !p->mean || !p->eig || !p->basis) {
        rc = vae__error(err, VAE_ENOMEM, "out of memory for PCA of %d values per image", D);
        goto done;
    }

    // mean, then covariance = (1/n) sum_i (x_i - mean)(x_i - mean)^T, upper triangle
    for (long i = 0; i < n; i++)
        for (int j = 0; j < D; j++) p->mean[j] += x[(size_t)i * D + j];
    for (int j = 0; j < D; j++) p->mean[j] /= (double)n;
    for (long r0 = 0; r0 < n; r0 += PCA_CHUNK) {
        int c = (int)(n - r0 < PCA_CHUNK ? n - r0 : PCA_CHUNK);
        centre(xc, x, r0, c, p->mean, D);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, c, 1.0 / (double)n, xc, D,
                    r0 ? 1.0 : 0.0, cov, D);
    }
    p->total = 0;
    for (int j = 0; j < D; j++) p->total += cov[(size_t)j * D + j];

    // eigenvalues D-K+1..D in ascending order = the K largest
    rc = vae__sym_eigen(cov, D, D - K + 1, D, w, p->basis, "PCA", err);
    if (rc) goto done;
    order_basis(p, w);

done:
    free(cov);
    free(xc);
    free(w);
    if (rc) vae_pca_free(p);
    else *out = p;
    return rc;
}

static int check_args(const vae_pca *p, const void *in, long n, const void *out, vae_error *err)
{
    if (!p || !in || !out || n < 1)
        return vae__error(err, VAE_EINVAL, "PCA: need a fitted model, data and output (n = %ld)", n);
    return VAE_OK;
}

/* codes (c, K) = xc (c, D) . basis^T */
static void project(const vae_pca *p, const double *xc, int c, double *codes)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, p->K, p->D, 1.0, xc, p->D, p->basis,
                p->D, 0.0, codes, p->K);
}

/* out (c, D) = mean + codes (c, K) . basis */
static void unproject(const vae_pca *p, const double *codes, int c, double *out)
{
    for (int i = 0; i < c; i++) memcpy(out + (size_t)i * p->D, p->mean, p->D * sizeof *out);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, p->D, p->K, 1.0, codes, p->K,
                p->basis, p->D, 1.0, out, p->D);
}

int vae_pca_encode(const vae_pca *p, const float *x, long n, float *codes, vae_error *err)
{
    int rc = check_args(p, x, n, codes, err);
    if (rc) return rc;
    double *xc = malloc((size_t)PCA_CHUNK * p->D * sizeof *xc);
    double *cd = malloc((size_t)PCA_CHUNK * p->K * sizeof *cd);
    if (!xc || !cd) {
        free(xc), free(cd);
        return vae__error(err, VAE_ENOMEM, "out of memory for PCA codes");
    }
    for (long r0 = 0; r0 < n; r0 += PCA_CHUNK) {
        int c = (int)(n - r0 < PCA_CHUNK ? n - r0 : PCA_CHUNK);
        centre(xc, x, r0, c, p->mean, p->D);
        project(p, xc, c, cd);
        for (size_t i = 0; i < (size_t)c * p->K; i++) codes[(size_t)r0 * p->K + i] = (float)cd[i];
    }
    free(xc);
    free(cd);
    return VAE_OK;
}

int vae_pca_decode(const vae_pca *p, const float *codes, long n, float *out, vae_error *err)
{
    int rc = check_args(p, codes, n, out, err);
    if (rc) return rc;
    double *cd = malloc((size_t)PCA_CHUNK * p->K * sizeof *cd);
    double *xr = malloc((size_t)PCA_CHUNK * p->D * sizeof *xr);
    if (!cd || !xr) {
        free(cd), free(xr);
        return vae__error(err, VAE_ENOMEM, "out of memory for PCA reconstructions");
    }
    for (long r0 = 0; r0 < n; r0 += PCA_CHUNK) {
        int c = (int)(n - r0 < PCA_CHUNK ? n - r0 : PCA_CHUNK);
        for (size_t i = 0; i < (size_t)c * p->K; i++) cd[i] = codes[(size_t)r0 * p->K + i];
        unproject(p, cd, c, xr);
        for (size_t i = 0; i < (size_t)c * p->D; i++) out[(size_t)r0 * p->D + i] = (float)xr[i];
    }
    free(cd);
    free(xr);
    return VAE_OK;
}

int vae_pca_reconstruct(const vae_pca *p, const float *x, long n, float *out, double *sse,
                        vae_error *err)
{
    int rc = check_args(p, x, n, out ? (const void *)out : (const void *)sse, err);
    if (rc) return rc;
    int D = p->D;
    double *xc = malloc((size_t)PCA_CHUNK * D * sizeof *xc);
    double *cd = malloc((size_t)PCA_CHUNK * p->K * sizeof *cd);
    double *xr = malloc((size_t)PCA_CHUNK * D * sizeof *xr);
    if (!xc || !cd || !xr) {
        free(xc), free(cd), free(xr);
        return vae__error(err, VAE_ENOMEM, "out of memory for PCA reconstructions");
    }
    // all in double: codes are not rounded to float on the way
    for (long r0 = 0; r0 < n; r0 += PCA_CHUNK) {
        int c = (int)(n - r0 < PCA_CHUNK ? n - r0 : PCA_CHUNK);
        centre(xc, x, r0, c, p->mean, D);
        project(p, xc, c, cd);
        unproject(p, cd, c, xr);
        for (int i = 0; i < c; i++) {
            const float *xi = x + (size_t)(r0 + i) * D;
            const double *ri = xr + (size_t)i * D;
            double s = 0;
            for (int j = 0; j < D; j++) {
                double e = (double)xi[j] - ri[j];
                s += e * e;
                if (out) out[(size_t)(r0 + i) * D + j] = (float)ri[j];
            }
            if (sse) sse[r0 + i] = s;
        }
    }
    free(xc);
    free(cd);
    free(xr);
    return VAE_OK;
}
