/* test_latent.c - the latent-space arithmetic behind the picture commands
 * (tools/latent.c): the inverse normal CDF against known quantiles and
 * against Phi, KL per dimension, the order by KL, linear and spherical
 * paths, and the two-component PCA on data of known structure. */
#define _DEFAULT_SOURCE /* M_SQRT2 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"
#include "test.h"

/* Standard normal quantiles (as tabulated; 15-16 significant digits). */
static void test_quantiles(void)
{
    static const struct { double p, x; } known[] = {
        {0.5, 0.0},
        {0.975, 1.959963984540054},
        {0.025, -1.959963984540054},
        {0.95, 1.6448536269514722},
        {0.99, 2.3263478740408408},
        {0.999, 3.090232306167813},
        {0.001, -3.090232306167813},
        {1e-5, -4.264890793922825},
        {1e-10, -6.361340902404056},
        {1e-300, -37.0470962993612},
        {0.02425, -1.972961051311885},  // the border between Acklam's regions
        {0.97575, 1.972961051311885},
        {0.8413447460685429, 1.0},      // Phi(1)
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        double x = norm_quantile(known[i].p);
        CHECK_NEAR(x, known[i].x, 1e-13 * (1 + fabs(known[i].x)));
    }
    CHECK(norm_quantile(0) == -INFINITY);
    CHECK(norm_quantile(1) == INFINITY);
    CHECK(isnan(norm_quantile(-0.1)));
    CHECK(isnan(norm_quantile(1.5)));
    CHECK(isnan(norm_quantile(NAN)));
    // Phi(Phi^-1(p)) = p to near rounding over 1e-300..0.5, in both regions,
    // and the quantile is odd about p = 1/2 and increasing
    double worst = 0, prev = -INFINITY;
    int monotone = 1, odd = 1;
    for (double lp = -300; lp <= log10(0.5); lp += 0.0625) {
        double p = pow(10, lp), x = norm_quantile(p);
        double back = 0.5 * erfc(-x / M_SQRT2);
        // Phi's relative condition number is about x²: allow a few ulps of x
        double rel = fabs(back - p) / p / (1 + x * x);
        if (rel > worst) worst = rel;
        if (!(x > prev)) monotone = 0;
        prev = x;
        // 1 - p is exact to eps/p relative: compare where that is small
        if (p > 1e-4 && fabs(norm_quantile(1 - p) + norm_quantile(p)) > 1e-11) odd = 0;
    }
    CHECK(worst < 1e-15);
    CHECK(monotone);
    CHECK(odd);
    printf("inverse normal CDF: worst |Phi(Phi^-1(p)) - p| / (p (1 + x^2)) %.2g\n", worst);
}

static void test_kl(void)
{
    // 2 images, 3 dims: dims 0 and 2 are N(0,1) (KL 0) and a known value
    float mu[6] = {0, 1, 0, 0, -1, 2}, lv[6] = {0, 0, 0, 0, 0, (float)log(0.25)};
    double kl[3];
    vae_kl_per_dim(mu, lv, 2, 3, kl);
    CHECK_NEAR(kl[0], 0, 1e-12);
    CHECK_NEAR(kl[1], 0.5, 1e-7);              // mean of ½·1 and ½·1
    double k2 = 0.5 * (4 + 0.25 - 1 - log(0.25));
    CHECK_NEAR(kl[2], k2 / 2, 1e-6);           // image 0 has KL 0 there
    int order[3];
    vae_kl_per_dim(mu, lv, 2, 3, kl);
    order_by_kl(kl, 3, order);
    CHECK_EQ(order[0], 2);
    CHECK_EQ(order[1], 1);
    CHECK_EQ(order[2], 0);
    double ties[4] = {1, 2, 2, 0};
    int o4[4];
    order_by_kl(ties, 4, o4);
    CHECK(o4[0] == 1 && o4[1] == 2 && o4[2] == 0 && o4[3] == 3); // stable on ties
}

static void test_paths(void)
{
    float a[3] = {1, 0, 0}, b[3] = {0, 2, 0}, z[3];
    path_point(a, b, 3, 0, 0, z);
    CHECK(z[0] == 1 && z[1] == 0);
    path_point(a, b, 3, 1, 0, z);
    CHECK(z[0] == 0 && z[1] == 2);
    path_point(a, b, 3, 0.5, 0, z);
    CHECK_NEAR(z[0], 0.5, 1e-7);
    CHECK_NEAR(z[1], 1.0, 1e-7);
    // slerp between orthogonal vectors: weights sin(45°)/sin(90°) each
    path_point(a, b, 3, 0.5, 1, z);
    CHECK_NEAR(z[0], sqrt(0.5), 1e-6);
    CHECK_NEAR(z[1], 2 * sqrt(0.5), 1e-6);
    path_point(a, b, 3, 1, 1, z);
    CHECK_NEAR(z[0], 0, 1e-6);
    CHECK_NEAR(z[1], 2, 1e-6);
    // unit vectors stay on the unit circle along a slerp
    float u[2] = {1, 0}, v[2] = {0.6f, 0.8f};
    double worst = 0;
    for (int k = 0; k <= 10; k++) {
        path_point(u, v, 2, k / 10.0, 1, z);
        double r = sqrt((double)z[0] * z[0] + (double)z[1] * z[1]);
        if (fabs(r - 1) > worst) worst = fabs(r - 1);
    }
    CHECK(worst < 1e-6);
    // (anti)parallel or zero codes fall back to the straight line
    float p[2] = {1, 1}, q[2] = {2, 2}, zero[2] = {0, 0};
    path_point(p, q, 2, 0.5, 1, z);
    CHECK_NEAR(z[0], 1.5, 1e-6);
    path_point(zero, q, 2, 0.25, 1, z);
    CHECK_NEAR(z[1], 0.5, 1e-6);
}

static void test_pca(void)
{
    // points on the plane spanned by e1 = (1,2,0,0)/√5 (spread 3) and
    // e2 = (0,0,2,-1)/√5 (spread 1), shifted by an offset: the components
    // are e1 and e2 (largest entry positive), the projections the centred
    // coefficients, and the two explain all the variance
    enum { N = 200, D = 4 };
    float x[N * D];
    double c1[N], c2[N], out[N * 2], expl[2];
    const double s = 1 / sqrt(5.0), off[D] = {5, -2, 1, 7};
    double m1 = 0, m2 = 0;
    for (int i = 0; i < N; i++) {
        c1[i] = 3 * sin(0.37 * i) + 0.5, c2[i] = cos(1.3 * i) * (i % 3 ? 1 : -0.5);
        m1 += c1[i] / N, m2 += c2[i] / N;
    }
    // make the coefficients uncorrelated over the sample (Gram-Schmidt), so
    // the sample's principal axes are exactly e1 and e2
    double dot = 0, nn = 0;
    for (int i = 0; i < N; i++) dot += (c1[i] - m1) * (c2[i] - m2), nn += (c1[i] - m1) * (c1[i] - m1);
    for (int i = 0; i < N; i++) c2[i] -= dot / nn * (c1[i] - m1);
    for (int i = 0; i < N; i++) {
        double v[D] = {s * c1[i], 2 * s * c1[i], 2 * s * c2[i], -s * c2[i]};
        for (int j = 0; j < D; j++) x[i * D + j] = (float)(v[j] + off[j]);
    }
    CHECK_EQ(pca2(x, N, D, out, expl), VAE_OK);
    CHECK_NEAR(expl[0] + expl[1], 1, 1e-5);
    CHECK(expl[0] > expl[1]);
    double e1 = 0, e2 = 0;
    for (int i = 0; i < N; i++) {
        e1 = fmax(e1, fabs(out[i * 2] - (c1[i] - m1)));
        e2 = fmax(e2, fabs(out[i * 2 + 1] - (c2[i] - m2)));
    }
    CHECK(e1 < 1e-4);
    CHECK(e2 < 1e-4);
    if (e1 >= 1e-4 || e2 >= 1e-4)
        fprintf(stderr, "pca: expl %g %g, out[0..3] %g %g %g %g, want %g %g\n", expl[0], expl[1],
                out[0], out[1], out[2], out[3], c1[0] - m1, c2[0] - m2);
    CHECK_EQ(pca2(x, 1, D, out, expl), VAE_EINVAL);
    CHECK_EQ(pca2(x, N, 1, out, expl), VAE_EINVAL);
}

int main(void)
{
    test_quantiles();
    test_kl();
    test_paths();
    test_pca();
    return TEST_REPORT();
}
