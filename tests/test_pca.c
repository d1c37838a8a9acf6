/* test_pca.c - PCA on synthetic data of known rank r: with K >= r
 * components it reconstructs exactly (to float tolerance), with K < r it
 * does not; eigenvalues, basis and codes match what the construction
 * implies; bad arguments give a status and a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "vae.h"

enum { N = 300, D = 40, R = 5 };

/* x_i = c + sum_a s_a u_ia e_a with orthonormal e_a (D-vectors), scales
 * s_a = 2^-a and random coefficients u: rank R around the offset c. The
 * covariance's nonzero eigenvalues are then about s_a^2 Var(u), distinct. */
static void make_data(float *x, double e[R][D])
{
    vae_rng r;
    vae_rng_seed(&r, 99);
    for (int a = 0; a < R; a++) { // Gram-Schmidt on random vectors
        for (int j = 0; j < D; j++) e[a][j] = vae_rng_normal(&r);
        for (int b = 0; b < a; b++) {
            double dot = 0;
            for (int j = 0; j < D; j++) dot += e[a][j] * e[b][j];
            for (int j = 0; j < D; j++) e[a][j] -= dot * e[b][j];
        }
        double nrm = 0;
        for (int j = 0; j < D; j++) nrm += e[a][j] * e[a][j];
        for (int j = 0; j < D; j++) e[a][j] /= sqrt(nrm);
    }
    double c[D];
    for (int j = 0; j < D; j++) c[j] = 0.5 + 0.1 * vae_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        double v[D];
        memcpy(v, c, sizeof v);
        for (int a = 0; a < R; a++) {
            double u = vae_rng_normal(&r) * ldexp(1.0, -a);
            for (int j = 0; j < D; j++) v[j] += u * e[a][j];
        }
        for (int j = 0; j < D; j++) x[i * D + j] = (float)v[j];
    }
}

static double max_abs_err(const float *x, const float *y, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i] - y[i]));
    return m;
}

int main(void)
{
    static float x[N * D], rec[N * D], rec2[N * D], codes[N * D];
    static double e[R][D], sse[N];
    make_data(x, e);
    vae_error err;
    double scale = 0; // the data's magnitude, for the tolerances
    for (int i = 0; i < N * D; i++) scale = fmax(scale, fabs(x[i]));

    for (int K = 1; K <= R + 3; K++) {
        vae_pca *p = NULL;
        CHECK_EQ(vae_pca_fit(x, N, D, K, &p, &err), VAE_OK);
        if (!p) return 1;
        CHECK_EQ(vae_pca_components(p), K);
        CHECK_EQ(vae_pca_dim(p), D);
        CHECK_EQ(vae_pca_reconstruct(p, x, N, rec, sse, &err), VAE_OK);
        double err_max = max_abs_err(x, rec, (size_t)N * D), tot = 0;
        for (int i = 0; i < N; i++) tot += sse[i];
        printf("K=%d: max |x - x'| = %.3g, sse per image %.3g, eigenvalue %d = %.4g\n", K, err_max,
               tot / N, K, vae_pca_eigenvalues(p)[K - 1]);
        if (K >= R) {
            CHECK(err_max < 1e-5 * scale); // exact up to the float data's rounding
        } else {
            // the lost directions carry variance ~ 4^-K: far above rounding
            CHECK(err_max > 1e-2 * ldexp(1.0, -K));
            CHECK(tot / N > 0.1 * vae_pca_eigenvalues(p)[K - 1] / 4);
        }
        // eigenvalues largest first; past the rank they are rounding noise
        const double *ev = vae_pca_eigenvalues(p);
        for (int j = 1; j < K; j++) CHECK(ev[j] <= ev[j - 1]);
        for (int j = R; j < K; j++) CHECK(fabs(ev[j]) < 1e-10);
        // the basis is orthonormal, and the first R rows span the e_a
        const double *V = vae_pca_basis(p);
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++) {
                double dot = 0;
                for (int j = 0; j < D; j++) dot += V[a * D + j] * V[b * D + j];
                CHECK_NEAR(dot, a == b, 1e-10);
            }
        for (int a = 0; a < K && a < R; a++) {
            double in = 0; // squared length of V_a's projection onto span(e)
            for (int b = 0; b < R; b++) {
                double dot = 0;
                for (int j = 0; j < D; j++) dot += V[a * D + j] * e[b][j];
                in += dot * dot;
            }
            CHECK_NEAR(in, 1, 1e-8);
        }
        // the fitted data's total variance is what the eigenvalues add up to
        if (K >= R) {
            double s = 0;
            for (int j = 0; j < K; j++) s += ev[j];
            CHECK_NEAR(s, vae_pca_total_variance(p), 1e-10 * vae_pca_total_variance(p));
        }
        // encode then decode = reconstruct (codes rounded to float on the way)
        CHECK_EQ(vae_pca_encode(p, x, N, codes, &err), VAE_OK);
        CHECK_EQ(vae_pca_decode(p, codes, N, rec2, &err), VAE_OK);
        CHECK(max_abs_err(rec, rec2, (size_t)N * D) < 1e-5 * scale);
        // codes are centred: their mean over the fitted data is 0
        for (int c = 0; c < K; c++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += codes[i * K + c];
            CHECK(fabs(s / N) < 1e-5);
        }
        vae_pca_free(p);
    }

    // bad arguments
    vae_pca *p = (vae_pca *)&err;
    CHECK_EQ(vae_pca_fit(x, N, D, 0, &p, &err), VAE_EINVAL);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "0 components") != NULL);
    CHECK_EQ(vae_pca_fit(x, N, D, D + 1, &p, &err), VAE_EINVAL);
    CHECK_EQ(vae_pca_fit(x, 0, D, 2, &p, &err), VAE_EINVAL);
    CHECK_EQ(vae_pca_fit(NULL, N, D, 2, &p, &err), VAE_EINVAL);
    CHECK_EQ(vae_pca_fit(x, N, 0, 1, &p, &err), VAE_EINVAL);
    CHECK_EQ(vae_pca_fit(x, N, D, 2, &p, &err), VAE_OK);
    CHECK_EQ(vae_pca_reconstruct(p, x, 0, rec, NULL, &err), VAE_EINVAL);
    CHECK_EQ(vae_pca_encode(p, x, N, NULL, &err), VAE_EINVAL);
    vae_pca_free(p);
    vae_pca_free(NULL);

    // K = D on full-rank data: the identity map
    static float y[N * D];
    vae_rng r;
    vae_rng_seed(&r, 5);
    for (int i = 0; i < N * D; i++) y[i] = (float)vae_rng_uniform(&r);
    CHECK_EQ(vae_pca_fit(y, N, D, D, &p, &err), VAE_OK);
    CHECK_EQ(vae_pca_reconstruct(p, y, N, rec, NULL, &err), VAE_OK);
    CHECK(max_abs_err(y, rec, (size_t)N * D) < 1e-6);
    vae_pca_free(p);
    return TEST_REPORT();
}
