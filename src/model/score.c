/* score.c - the numbers of vae/score.h besides the classifier: feature
 * statistics and the Fréchet distance (in double, square roots by LAPACK),
 * class entropies, the latent codes' k-NN and ridge probes, and the blur and
 * noise that give the distance its reference points. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "internal.h"
#include "model/lapack.h"
#include "nn/real.h"

#define STATS_CHUNK 1024 /* rows converted to double at a time */

int vae_feature_stats(const float *f, long n, int d, double *mean, double *cov, vae_error *err)
{
    if (!f || !mean || !cov || n < 2 || d < 1)
        return vae__error(err, VAE_EINVAL, "feature statistics need at least 2 rows (n = %ld, "
                          "d = %d)", n, d);
    double *xc = malloc((size_t)STATS_CHUNK * d * sizeof *xc);
    if (!xc) return vae__error(err, VAE_ENOMEM, "out of memory for feature statistics");
    memset(mean, 0, (size_t)d * sizeof *mean);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += f[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)n;
    // centred rows, so the sum of products does not cancel against n mean^2
    for (long r0 = 0; r0 < n; r0 += STATS_CHUNK) {
        int c = (int)(n - r0 < STATS_CHUNK ? n - r0 : STATS_CHUNK);
        for (int i = 0; i < c; i++)
            for (int j = 0; j < d; j++)
                xc[(size_t)i * d + j] = (double)f[(size_t)(r0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, c, 1.0 / (double)(n - 1), xc, d,
                    r0 ? 1.0 : 0.0, cov, d);
    }
    for (int i = 0; i < d; i++) // the lower triangle too: callers read whole rows
        for (int j = 0; j < i; j++) cov[(size_t)i * d + j] = cov[(size_t)j * d + i];
    free(xc);
    for (int j = 0; j < d; j++)
        if (!isfinite(mean[j]))
            return vae__error(err, VAE_ENUMERIC, "feature statistics: feature %d is not finite", j);
    return VAE_OK;
}

/* s = a^1/2 (d x d, symmetric) through a's eigenpairs; a is destroyed. */
static int sym_sqrt(double *a, int d, double *s, double *w, double *v, vae_error *err)
{
    int rc = vae__sym_eigen(a, d, 1, d, w, v, "Fréchet distance", err);
    if (rc) return rc;
    // s = V^T diag(sqrt w) V with V's rows the eigenvectors: scale rows, then one product
    double *vs = a; // a is free now
    for (int k = 0; k < d; k++) {
        double r = w[k] > 0 ? sqrt(w[k]) : 0;
        for (int j = 0; j < d; j++) vs[(size_t)k * d + j] = r * v[(size_t)k * d + j];
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, v, d, vs, d, 0.0, s, d);
    return VAE_OK;
}

int vae_frechet_distance(const double *m1, const double *c1, const double *m2, const double *c2,
                         int d, double *out, vae_error *err)
{
    if (!m1 || !c1 || !m2 || !c2 || !out || d < 1)
        return vae__error(err, VAE_EINVAL, "Fréchet distance: missing statistics (d = %d)", d);
    size_t dd = (size_t)d * d;
    double *a = malloc(dd * sizeof *a), *s = malloc(dd * sizeof *s), *t = malloc(dd * sizeof *t);
    double *v = malloc(dd * sizeof *v), *w = malloc((size_t)d * sizeof *w);
    int rc = VAE_OK;
    if (!a || !s || !t || !v || !w) {
        rc = vae__error(err, VAE_ENOMEM, "out of memory for the Fréchet distance (d = %d)", d);
        goto done;
    }
    // tr (c1 c2)^1/2 = tr (c1^1/2 c2 c1^1/2)^1/2: the product is symmetric
    // positive semi-definite, so the symmetric eigensolver takes it
    memcpy(a, c1, dd * sizeof *a);
    if ((rc = sym_sqrt(a, d, s, w, v, err))) goto done;
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d, d, 1.0, c2, d, s, d, 0.0, t, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, s, d, t, d, 0.0, a, d);
    if ((rc = vae__sym_eigen(a, d, 1, d, w, NULL, "Fréchet distance", err))) goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dm = 0;
    for (int k = 0; k < d; k++) tr_sqrt += w[k] > 0 ? sqrt(w[k]) : 0;
    for (int k = 0; k < d; k++) {
        tr1 += c1[(size_t)k * d + k], tr2 += c2[(size_t)k * d + k];
        dm += (m1[k] - m2[k]) * (m1[k] - m2[k]);
    }
    *out = dm + tr1 + tr2 - 2 * tr_sqrt;
    if (*out < 0) *out = 0; // rounding when the two sets are one
    if (!isfinite(*out))
        rc = vae__error(err, VAE_ENUMERIC, "Fréchet distance: the result is not finite");
done:
    free(a), free(s), free(t), free(v), free(w);
    return rc;
}

static double entropy(const double *p, int K)
{
    double h = 0;
    for (int k = 0; k < K; k++)
        if (p[k] > 0) h -= p[k] * log(p[k]);
    return h;
}

void vae_class_entropy(const float *prob, long n, int K, double *mean_entropy,
                       double *entropy_of_mean)
{
    double *row = calloc((size_t)K, sizeof *row), *mean = calloc((size_t)K, sizeof *mean);
    double h = 0;
    if (!row || !mean || n < 1) {
        *mean_entropy = *entropy_of_mean = NAN;
        free(row), free(mean);
        return;
    }
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < K; k++) row[k] = prob[(size_t)i * K + k], mean[k] += row[k];
        h += entropy(row, K);
    }
    for (int k = 0; k < K; k++) mean[k] /= (double)n;
    *mean_entropy = h / (double)n;
    *entropy_of_mean = entropy(mean, K);
    free(row), free(mean);
}

/* ----------------------------------------------------------- k-NN probe */

#define KNN_BLOCK 64 /* test rows per distance block */

int vae_knn_accuracy(const float *train, const uint8_t *ytr, long ntr, const float *test,
                     const uint8_t *yte, long nte, int d, int k, double *acc, vae_error *err)
{
    if (!train || !ytr || !test || !yte || !acc || ntr < 1 || nte < 1 || d < 1 || k < 1 ||
        k > ntr || k > 1024 || ntr > (1L << 28))
        return vae__error(err, VAE_EINVAL, "k-NN: %ld training and %ld test rows, k = %d: need "
                          "1 <= k <= min(1024, training rows)", ntr, nte, k);
    int T = omp_get_max_threads();
    float *sq = malloc((size_t)ntr * sizeof *sq);
    float *dist = malloc((size_t)T * KNN_BLOCK * ntr * sizeof *dist);
    long *best = malloc((size_t)T * k * sizeof *best);
    if (!sq || !dist || !best) {
        free(sq), free(dist), free(best);
        return vae__error(err, VAE_ENOMEM, "out of memory for k-NN over %ld rows", ntr);
    }
    for (long j = 0; j < ntr; j++) {
        double s = 0;
        for (int q = 0; q < d; q++) s += (double)train[(size_t)j * d + q] * train[(size_t)j * d + q];
        sq[j] = (float)s;
    }
    long right = 0, blocks = (nte + KNN_BLOCK - 1) / KNN_BLOCK;
#pragma omp parallel for num_threads(T) schedule(dynamic) reduction(+ : right)
    for (long b = 0; b < blocks; b++) {
        int t = omp_get_thread_num();
        float *D = dist + (size_t)t * KNN_BLOCK * ntr;
        long *nb = best + (size_t)t * k, i0 = b * KNN_BLOCK;
        int rows = (int)(nte - i0 < KNN_BLOCK ? nte - i0 : KNN_BLOCK);
        // |a - b|^2 = |b|^2 - 2 a.b + |a|^2; the last is the same for a row's
        // every candidate, so the ranking needs only the first two
        vae__sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)ntr, d, 1.0f,
                   test + (size_t)i0 * d, d, train, d, 0.0f, D, (int)ntr);
        for (int i = 0; i < rows; i++) {
            const float *row = D + (size_t)i * ntr;
            int have = 0;
            for (long j = 0; j < ntr; j++) { // insertion into the k best, nearest first
                float dj = sq[j] - 2 * row[j];
                if (have == k && dj >= sq[nb[k - 1]] - 2 * row[nb[k - 1]]) continue;
                int pos = have < k ? have++ : k - 1;
                while (pos > 0 && sq[nb[pos - 1]] - 2 * row[nb[pos - 1]] > dj) {
                    nb[pos] = nb[pos - 1];
                    pos--;
                }
                nb[pos] = j;
            }
            // votes, with a tie going to the class of nearer neighbours
            double votes[256] = {0};
            for (int r = 0; r < have; r++) votes[ytr[nb[r]]] += 1 + 1e-3 * (k - r) / k;
            int cls = 0;
            for (int c = 1; c < 256; c++)
                if (votes[c] > votes[cls]) cls = c;
            right += cls == yte[i0 + i];
        }
    }
    *acc = (double)right / (double)nte;
    free(sq), free(dist), free(best);
    return VAE_OK;
}

/* ---------------------------------------------------------- ridge probe */

int vae_ridge_probe_accuracy(const float *train, const uint8_t *ytr, long ntr, const float *test,
                             const uint8_t *yte, long nte, int d, int classes, double lambda,
                             double *acc, vae_error *err)
{
    if (!train || !ytr || !test || !yte || !acc || ntr < 1 || nte < 1 || d < 1 || d > 8192 ||
        classes < 2 || classes > 256 || !(lambda >= 0))
        return vae__error(err, VAE_EINVAL, "ridge probe: %ld training and %ld test rows of %d, "
                          "%d classes, lambda %g", ntr, nte, d, classes, lambda);
    for (long i = 0; i < ntr; i++)
        if (ytr[i] >= classes)
            return vae__error(err, VAE_EINVAL, "ridge probe: label %d past the %d classes",
                              ytr[i], classes);
    int e = d + 1, K = classes; // the codes with a constant 1 appended
    size_t ee = (size_t)e * e;
    double *A = calloc(ee, sizeof *A), *XY = calloc((size_t)e * K, sizeof *XY);
    double *V = malloc(ee * sizeof *V), *w = malloc((size_t)e * sizeof *w);
    double *W = malloc((size_t)e * K * sizeof *W), *T = malloc((size_t)e * K * sizeof *T);
    double *row = malloc((size_t)e * sizeof *row);
    int rc = VAE_OK;
    if (!A || !XY || !V || !w || !W || !T || !row) {
        rc = vae__error(err, VAE_ENOMEM, "out of memory for the ridge probe (d = %d)", d);
        goto done;
    }
    // A = X^T X + lambda n I (upper triangle), XY = X^T Y
    for (long i = 0; i < ntr; i++) {
        for (int q = 0; q < d; q++) row[q] = train[(size_t)i * d + q];
        row[d] = 1;
        cblas_dsyr(CblasRowMajor, CblasUpper, e, 1.0, row, 1, A, e);
        for (int q = 0; q < e; q++) XY[(size_t)q * K + ytr[i]] += row[q];
    }
    for (int q = 0; q < e; q++) A[(size_t)q * e + q] += lambda * (double)ntr;
    // W = V^T diag(1/w) V XY through A's eigenpairs (the rows of V); a
    // near-zero eigenvalue (a dead latent with lambda 0) is left out
    if ((rc = vae__sym_eigen(A, e, 1, e, w, V, "ridge probe", err))) goto done;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, e, K, e, 1.0, V, e, XY, K, 0.0, T, K);
    double wmax = w[e - 1];
    for (int q = 0; q < e; q++) {
        double inv = w[q] > wmax * 1e-12 ? 1 / w[q] : 0;
        for (int c = 0; c < K; c++) T[(size_t)q * K + c] *= inv;
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, e, K, e, 1.0, V, e, T, K, 0.0, W, K);
    long right = 0;
    for (long i = 0; i < nte; i++) {
        int best = 0;
        double bv = -DBL_MAX;
        for (int c = 0; c < K; c++) {
            double s = W[(size_t)d * K + c];
            for (int q = 0; q < d; q++) s += test[(size_t)i * d + q] * W[(size_t)q * K + c];
            if (s > bv) bv = s, best = c;
        }
        right += best == yte[i];
    }
    *acc = (double)right / (double)nte;
done:
    free(A), free(XY), free(V), free(w), free(W), free(T), free(row);
    return rc;
}

/* ------------------------------------------------------ degradations */

int vae_images_blur(const float *x, long n, int c, int h, int w, double sigma, float *out,
                    vae_error *err)
{
    size_t D = (size_t)c * h * w;
    if (!(sigma > 0)) {
        memcpy(out, x, (size_t)n * D * sizeof *out);
        return VAE_OK;
    }
    int r = (int)ceil(3 * sigma);
    double *k = malloc((size_t)(2 * r + 1) * sizeof *k), s = 0;
    float *tmp = malloc((size_t)h * w * sizeof *tmp);
    if (!k || !tmp) {
        free(k), free(tmp);
        return vae__error(err, VAE_ENOMEM, "out of memory for a blur of sigma %g", sigma);
    }
    for (int i = -r; i <= r; i++) s += k[i + r] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= s;
    for (long p = 0; p < n * c; p++) { // each plane: rows, then columns
        const float *src = x + (size_t)p * h * w;
        float *dst = out + (size_t)p * h * w;
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                double a = 0;
                for (int i = -r; i <= r; i++) {
                    int q = xx + i < 0 ? 0 : xx + i >= w ? w - 1 : xx + i;
                    a += k[i + r] * src[(size_t)y * w + q];
                }
                tmp[(size_t)y * w + xx] = (float)a;
            }
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                double a = 0;
                for (int i = -r; i <= r; i++) {
                    int q = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    a += k[i + r] * tmp[(size_t)q * w + xx];
                }
                dst[(size_t)y * w + xx] = (float)a;
            }
    }
    free(k), free(tmp);
    return VAE_OK;
}

void vae_images_noise(const float *x, size_t n, double sigma, uint64_t seed, float *out)
{
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double v = x[i] + sigma * vae_rng_normal(&rng);
        out[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
}
