/* test_grad.c - finite-difference gradient checks, in double precision, of
 * every layer's backward and of the whole VAE loss (seeded, reproducible). */
#include <stdlib.h>
#include <string.h>

#include "nn/conv.h"
#include "nn/flow.h"
#include "model/net.h"
#include "nn/latent.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/perceptual.h"
#include "nn/prior.h"
#include "nn/vq.h"
#include "test.h"

static vae_rng rng;

static double *rand_vec(size_t n, double lo, double hi)
{
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * vae_rng_uniform(&rng);
    return v;
}

/* Largest |a - b| / (|a| + |b|), the denominator at least `floor`: near-zero
 * derivatives are compared absolutely, as central differences of a sum of
 * many terms carry an absolute rounding error. */
static double max_err_floor(const double *a, const double *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / fmax(floor, fabs(a[i]) + fabs(b[i]));
        if (e > worst) worst = e;
    }
    return worst;
}

static double max_rel_err(const double *a, const double *b, size_t n)
{
    return max_err_floor(a, b, n, 1e-6);
}

/* Central differences of f over the n values at p. */
typedef double (*loss_fn)(void *ctx);
static void numeric_grad(double *out, double *p, size_t n, loss_fn f, void *ctx)
{
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double up = f(ctx);
        p[i] = keep - h;
        double down = f(ctx);
        p[i] = keep;
        out[i] = (up - down) / (2 * h);
    }
}

/* ---------------------------------------------------------------- linear */

enum { B = 4, IN = 7, OUT = 5 };
typedef struct { double *inp, *w, *b, *dout, out[B * OUT]; } lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    vae__linear_forward(c->out, c->inp, c->w, c->b, B, IN, OUT);
    double s = 0;
    for (int i = 0; i < B * OUT; i++) s += c->out[i] * c->dout[i];
    return s;
}

static void test_linear(void)
{
    lin_ctx c = {rand_vec(B * IN, -1, 1), rand_vec(OUT * IN, -1, 1), rand_vec(OUT, -1, 1),
                 rand_vec(B * OUT, -1, 1), {0}};
    double dinp[B * IN], dw[OUT * IN], db[OUT], num[OUT * IN];
    for (int i = 0; i < OUT * IN; i++) dw[i] = NAN; // written, not accumulated
    for (int i = 0; i < OUT; i++) db[i] = NAN;
    vae__linear_backward(dinp, dw, db, c.dout, c.inp, c.w, B, IN, OUT);
    numeric_grad(num, c.inp, B * IN, lin_loss, &c);
    CHECK(max_rel_err(dinp, num, B * IN) < 1e-7);
    numeric_grad(num, c.w, OUT * IN, lin_loss, &c);
    CHECK(max_rel_err(dw, num, OUT * IN) < 1e-7);
    numeric_grad(num, c.b, OUT, lin_loss, &c);
    CHECK(max_rel_err(db, num, OUT) < 1e-7);
    free(c.inp), free(c.w), free(c.b), free(c.dout);
}

/* ------------------------------------------------------------------ relu */

typedef struct { double *x, *dout; int n; } relu_ctx;

static double relu_loss(void *p)
{
    relu_ctx *c = p;
    double y[64], s = 0;
    memcpy(y, c->x, c->n * sizeof *y);
    vae__relu_forward(y, c->n);
    for (int i = 0; i < c->n; i++) s += y[i] * c->dout[i];
    return s;
}

static void test_relu(void)
{
    relu_ctx c = {rand_vec(64, -1, 1), rand_vec(64, -1, 1), 64};
    for (int i = 0; i < 64; i++) // keep away from the kink, where no derivative exists
        if (fabs(c.x[i]) < 1e-3) c.x[i] = 0.5;
    double y[64], dx[64], num[64];
    memcpy(y, c.x, sizeof y);
    vae__relu_forward(y, 64);
    memcpy(dx, c.dout, sizeof dx);
    vae__relu_backward(dx, y, 64);
    numeric_grad(num, c.x, 64, relu_loss, &c);
    CHECK(max_rel_err(dx, num, 64) < 1e-8);
    free(c.x), free(c.dout);
}

/* ---------------------------------------------------------------- gauss */

enum { GB = 3, GD = 4 };
typedef struct { double *head, *eps, *dz; double scale; } gauss_ctx;

/* The VAE's latent pair as the network strings it: reparameterisation and
 * KL forward; KL backward, then the reparameterisation's added to it. */
static double gauss_forward(double *z, const double *head, const double *eps, int B, int d)
{
    vae__reparam_forward(z, head, 2 * d, eps, B, d, 1);
    return vae__gauss_kl_forward(head, B, d, NULL);
}

static void gauss_backward(double *dhead, const double *head, const double *eps, const double *dz,
                           double scale, const double *mask, int B, int d)
{
    vae__gauss_kl_backward(dhead, head, scale, mask, B, d);
    vae__reparam_backward(dhead, head, 2 * d, eps, dz, B, d, 1);
}

static double gauss_loss(void *p)
{
    gauss_ctx *c = p;
    double z[GB * GD];
    double kl = gauss_forward(z, c->head, c->eps, GB, GD), s = 0;
    for (int i = 0; i < GB * GD; i++) s += z[i] * c->dz[i];
    return s + c->scale * kl;
}

static void test_gauss(void)
{
    gauss_ctx c = {rand_vec(GB * 2 * GD, -2, 2), rand_vec(GB * GD, -2, 2), rand_vec(GB * GD, -1, 1),
                   0.7};
    c.head[GD + 1] = -35; // a clamped log-variance: no gradient flows there
    double dhead[GB * 2 * GD], num[GB * 2 * GD];
    gauss_backward(dhead, c.head, c.eps, c.dz, c.scale, NULL, GB, GD);
    numeric_grad(num, c.head, GB * 2 * GD, gauss_loss, &c);
    CHECK(max_rel_err(dhead, num, GB * 2 * GD) < 1e-7);
    CHECK(dhead[GD + 1] == 0);
    // free bits: a masked-out dimension keeps only the path through z
    double mask[GD] = {1, 0, 1, 1}, masked[GB * 2 * GD], zs[GB * GD], kld[GD];
    gauss_backward(masked, c.head, c.eps, c.dz, c.scale, mask, GB, GD);
    for (int i = 0; i < GB; i++)
        for (int j = 0; j < GD; j++) {
            double want = j == 1 ? c.dz[i * GD + j] : dhead[i * 2 * GD + j];
            CHECK_NEAR(masked[i * 2 * GD + j], want, 1e-15);
        }
    // per-dimension KL sums add up to the total
    double total = gauss_forward(zs, c.head, c.eps, GB, GD);
    vae__free_bits_kl(kld, c.head, GB, GD);
    CHECK_NEAR(kld[0] + kld[1] + kld[2] + kld[3], total, 1e-12);
    // closed-form KL against a direct evaluation for one dimension
    double head[2] = {0.3, -0.4}, eps[1] = {0}, z[1];
    double kl = gauss_forward(z, head, eps, 1, 1);
    CHECK_NEAR(kl, -0.5 * (1 - 0.4 - 0.09 - exp(-0.4)), 1e-15);
    free(c.head), free(c.eps), free(c.dz);
}

/* ------------------------------------------------ Gaussian to Gaussian */

/* The HVAE's z1 term: KL(q || p) of two diagonal Gaussians per row, q's
 * [mu | logvar] in rows of stride 2 KD + 1 (a column after them that takes
 * no gradient), p's of stride 2 KD. L = scale * sum KL. */
enum { KB = 3, KD = 4, KQ = 2 * KD + 1 };
typedef struct { double *q, *p, scale; } kl2_ctx;

static double kl2_loss(void *v)
{
    kl2_ctx *c = v;
    return c->scale * vae__gauss_kl2_forward(c->q, KQ, c->p, 2 * KD, KB, KD, NULL);
}

static void test_gauss_kl2(void)
{
    kl2_ctx c = {rand_vec(KB * KQ, -1, 1), rand_vec(KB * 2 * KD, -1, 1), 0.7};
    c.q[KD + 1] = -35, c.p[KB * 2 * KD - 1] = 25; // clamped log-variances: no gradient there
    c.q[2 * KQ + KD - 1] = c.p[2 * 2 * KD + KD - 1]; // there mu's gradient is e^-20 (mu - pmu): 0
    double dq[KB * KQ], dp[KB * 2 * KD], nq[KB * KQ], np[KB * 2 * KD];
    for (int i = 0; i < KB * KQ; i++) dq[i] = 123; // the column after [mu | logvar] is left alone
    vae__gauss_kl2_backward(dq, dp, c.q, KQ, c.p, 2 * KD, c.scale, KB, KD);
    numeric_grad(nq, c.q, KB * KQ, kl2_loss, &c);
    numeric_grad(np, c.p, KB * 2 * KD, kl2_loss, &c);
    for (int i = 0; i < KB; i++) dq[i * KQ + 2 * KD] = dq[i * KQ + 2 * KD] == 123 ? 0 : 1;
    CHECK(max_rel_err(dq, nq, KB * KQ) < 1e-7);
    CHECK(max_rel_err(dp, np, KB * 2 * KD) < 1e-7);
    CHECK(dq[KD + 1] == 0 && dp[KB * 2 * KD - 1] == 0);
    // against N(0, I) it is the VAE's KL; by itself, zero
    CHECK_NEAR(vae__gauss_kl2(0.3, -0.4, 0, 0), vae__gauss_kl(0.3, -0.4), 1e-15);
    CHECK_NEAR(vae__gauss_kl2(0.3, -0.4, 0.3, -0.4), 0, 1e-15);
    // one dimension against the direct formula
    double mu = 0.5, lv = 0.2, pm = -0.3, pl = -0.6;
    CHECK_NEAR(vae__gauss_kl2(mu, lv, pm, pl),
               (pl - lv) / 2 + (exp(lv) + (mu - pm) * (mu - pm)) / (2 * exp(pl)) - 0.5,
               1e-15);
    // the log-ratio of a sample: the log-densities written out, and its mean
    // over many samples is -KL (within the Monte Carlo error)
    double q2[2] = {mu, lv}, p2[2] = {pm, pl}, e = 0.8, z = mu + exp(lv / 2) * e;
    double lp = -0.5 * (log(6.283185307179586477) + pl + (z - pm) * (z - pm) / exp(pl));
    double lq = -0.5 * (log(6.283185307179586477) + lv + e * e);
    CHECK_NEAR(vae__gauss_log_ratio2(&z, &e, q2 + 1, p2, p2 + 1, 1), lp - lq, 1e-14);
    double sum = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double ei = vae_rng_normal(&rng), zi = mu + exp(lv / 2) * ei;
        sum += vae__gauss_log_ratio2(&zi, &ei, q2 + 1, p2, p2 + 1, 1);
    }
    CHECK(fabs(sum / n + vae__gauss_kl2(mu, lv, pm, pl)) < 0.01);
    free(c.q), free(c.p);
}

/* -------------------------------------------------------------- VampPrior */

/* K = 3 components in head rows of stride VS (a flow's column after
 * [mu | logvar]), R = 4 rows of z with weights w: L = sum_r s w_r log p(z_r). */
enum { VK = 3, VD = 3, VS = 2 * VD + 1, VR = 4 };
static const double two_pi = 6.283185307179586477;
typedef struct { double *z, *comp, w[VR], s; } vamp_ctx;

static double vamp_loss(void *p)
{
    vamp_ctx *v = p;
    double tab[3 * VK * VD], c[VK], L = 0;
    vae__vamp_prepare(tab, c, v->comp, VS, VK, VD);
    for (int r = 0; r < VR; r++)
        L += v->s * v->w[r] * vae__vamp_log_prior(v->z + r * VD, tab, c, VK, VD);
    return L;
}

static void test_vamp(void)
{
    vamp_ctx v = {rand_vec(VR * VD, -2, 2), rand_vec(VK * VS, -1, 1), {0.1, 0.5, 0.3, 0.1}, -0.7};
    v.comp[1 * VS + VD + 2] = -35; // a clamped log-variance: no gradient flows there
    double tab[3 * VK * VD], c[VK], work[VK * (2 * VD + 1)];
    CHECK_EQ(vae__vamp_work_size(VK, VD), sizeof work / sizeof *work);
    vae__vamp_prepare(tab, c, v.comp, VS, VK, VD);
    // the density against its definition, 1/K sum_k prod_j N(z_j; mu_kj, e^lv_kj),
    // with the -d/2 log 2 pi it leaves out, and at a point far from every
    // component, where the plain sum underflows and the log-sum-exp must not
    for (int r = 0; r < VR; r++) {
        const double *z = v.z + r * VD;
        double sum = 0;
        for (int k = 0; k < VK; k++) {
            double prod = 1;
            for (int j = 0; j < VD; j++) {
                double mu = v.comp[k * VS + j], lv = fmax(v.comp[k * VS + VD + j], VAE_LOGVAR_MIN);
                prod *= exp(-0.5 * (z[j] - mu) * (z[j] - mu) / exp(lv)) / sqrt(two_pi * exp(lv));
            }
            sum += prod / VK;
        }
        CHECK_NEAR(vae__vamp_log_prior(z, tab, c, VK, VD) - 0.5 * VD * log(two_pi),
                   log(sum), 1e-12);
    }
    double far[VD] = {40, -40, 40};
    double lp = vae__vamp_log_prior(far, tab, c, VK, VD);
    CHECK(isfinite(lp) && lp < -100);
    // the gradient with respect to z and to the components' mu and logvar
    double dz[VR * VD], dcomp[VK * VS], nz[VR * VD], nc[VK * VS];
    for (int i = 0; i < VR * VD; i++) dz[i] = 0.25; // added to
    for (int i = 0; i < VK * VS; i++) dcomp[i] = i % VS == 2 * VD ? 12345 : 0;
    vae__vamp_log_prior_backward(dz, dcomp, VS, v.z, tab, c, v.w, v.s, VR, VK, VD, work);
    for (int i = 0; i < VR * VD; i++) dz[i] -= 0.25;
    numeric_grad(nz, v.z, VR * VD, vamp_loss, &v);
    numeric_grad(nc, v.comp, VK * VS, vamp_loss, &v);
    CHECK(max_rel_err(dz, nz, VR * VD) < 1e-7);
    for (int k = 0; k < VK; k++) {
        CHECK(max_rel_err(dcomp + k * VS, nc + k * VS, 2 * VD) < 1e-7);
        CHECK(dcomp[k * VS + 2 * VD] == 12345); // the flow's column is left alone
    }
    CHECK(dcomp[1 * VS + VD + 2] == 0);
    fprintf(stderr, "VampPrior: log-density and gradients (z, mu, logvar) checked\n");
    free(v.z), free(v.comp);
}

/* More components than prior.c's block of terms: the blocks' running
 * log-sum-exp and the backward's two passes over them. */
enum { WK = 300, WD = 2, WR = 2 };
typedef struct { double *z, *comp, *tab, c[WK]; } vamp_wide;

static double vamp_wide_loss(void *p)
{
    vamp_wide *v = p;
    double L = 0;
    for (int r = 0; r < WR; r++) L += vae__vamp_log_prior(v->z + r * WD, v->tab, v->c, WK, WD);
    return L;
}

static void test_vamp_wide(void)
{
    vamp_wide v = {rand_vec(WR * WD, -2, 2), rand_vec(WK * 2 * WD, -1, 1),
                   malloc(3 * WK * WD * sizeof(double)), {0}};
    vae__vamp_prepare(v.tab, v.c, v.comp, 2 * WD, WK, WD);
    double direct = 0;
    for (int r = 0; r < WR; r++) {
        double sum = 0;
        for (int k = 0; k < WK; k++) {
            double q = 0, lv = 0;
            for (int j = 0; j < WD; j++) {
                double e = v.z[r * WD + j] - v.comp[k * 2 * WD + j], l = v.comp[k * 2 * WD + WD + j];
                q += e * e / exp(l), lv += l;
            }
            sum += exp(-0.5 * q - 0.5 * lv) / WK;
        }
        direct += log(sum);
    }
    CHECK_NEAR(vamp_wide_loss(&v), direct, 1e-11);
    double dz[WR * WD] = {0}, nz[WR * WD], *dcomp = calloc(WK * 2 * WD, sizeof *dcomp);
    double *work = malloc(vae__vamp_work_size(WK, WD) * sizeof *work);
    vae__vamp_log_prior_backward(dz, dcomp, 2 * WD, v.z, v.tab, v.c, NULL, 1, WR, WK, WD, work);
    numeric_grad(nz, v.z, WR * WD, vamp_wide_loss, &v);
    CHECK(max_rel_err(dz, nz, WR * WD) < 1e-7);
    // one mu of a component in the second block, by central differences
    // (the tab is a copy of the components: perturb them and prepare again)
    double *c0 = v.comp + 271 * 2 * WD, h = 1e-6, keep = c0[1];
    c0[1] = keep + h, vae__vamp_prepare(v.tab, v.c, v.comp, 2 * WD, WK, WD);
    double dmu = vamp_wide_loss(&v);
    c0[1] = keep - h, vae__vamp_prepare(v.tab, v.c, v.comp, 2 * WD, WK, WD);
    dmu = (dmu - vamp_wide_loss(&v)) / (2 * h);
    CHECK(fabs(dcomp[271 * 2 * WD + 1] - dmu) < 1e-7 * fmax(1, fabs(dmu)));
    fprintf(stderr, "VampPrior: %d components in blocks checked\n", WK);
    free(v.z), free(v.comp), free(v.tab), free(dcomp), free(work);
}

/* ------------------------------------------------------------------ flow */

/* Three steps of a flow on R = 4 rows, K = 2 per image, inside a head row
 * of stride FS: L = sum_r a_r . z_T,r + c sum_r log det_r. */
enum { FR = 4, FK = 2, FD = 3, FT = 3, FS = 40 };
typedef struct { int type; double *z0, *p, *a, c; } flow_ctx;

static double flow_loss(void *p)
{
    flow_ctx *f = p;
    double zb[FT][FR * FD], ld[FR], s = 0;
    double *zs[FT + 1] = {f->z0, zb[0], zb[1], zb[2]};
    vae__flow_forward(f->type, FT, zs, ld, f->p, FS, FR, FK, FD);
    for (int i = 0; i < FR * FD; i++) s += f->a[i] * zs[FT][i];
    for (int r = 0; r < FR; r++) s += f->c * ld[r];
    return s;
}

static void test_flow(int type)
{
    flow_ctx f = {type, rand_vec(FR * FD, -1.5, 1.5), rand_vec(FR / FK * FS, -1, 1),
                  rand_vec(FR * FD, -1, 1), -0.7};
    double zb[FT][FR * FD], ld[FR], g[FR * FD], dp[FR / FK * FS], nz[FR * FD], np[FR / FK * FS];
    double *zs[FT + 1] = {f.z0, zb[0], zb[1], zb[2]};
    vae__flow_forward(type, FT, zs, ld, f.p, FS, FR, FK, FD);
    memcpy(g, f.a, sizeof g);
    for (int i = 0; i < FR / FK * FS; i++) dp[i] = 12345; // only the steps' values are written
    vae__flow_backward(type, FT, g, dp, (const double *const *)zs, f.p, FS, f.c, FR, FK, FD);
    numeric_grad(nz, f.z0, FR * FD, flow_loss, &f);
    numeric_grad(np, f.p, FR / FK * FS, flow_loss, &f);
    int P = vae__flow_step_params(type, FD);
    CHECK(max_rel_err(g, nz, FR * FD) < 1e-7);
    for (int b = 0; b < FR / FK; b++) {
        CHECK(max_rel_err(dp + b * FS, np + b * FS, (size_t)FT * P) < 1e-7);
        CHECK(dp[b * FS + FT * P] == 12345);
    }
    // planar: the constrained u keeps every step invertible, w.u^ >= -1, so
    // 1 + (1 - h^2) w.u^ >= 0 and log det is finite even for u against w
    if (type == VAE_FLOW_PLANAR) {
        double p1[2 * FD + 1] = {-3, 0, 0, 1, 0, 0, 0.2}, z1[FD] = {0.1, 0, 0}, z2[FD], l1;
        double *zz[2] = {z1, z2};
        vae__flow_forward(type, 1, zz, &l1, p1, 2 * FD + 1, 1, 1, FD);
        // u.w = -3 is taken to w.u^ = m(-3) = -1 + softplus(-3): det = 1 + (1 - h^2) m(-3)
        double h = tanh(0.1 + 0.2), m3 = -1 + log1p(exp(-3.0));
        CHECK_NEAR(l1, log(1 + (1 - h * h) * m3), 1e-9); // |w|^2 + 1e-12
        // log det against the determinant of the step's Jacobian by central differences
        double *p2 = f.p, J[FD][FD], z3[FD] = {0.3, -0.2, 0.5}, zo[2][FD], ld2;
        double *zp[2] = {z3, zo[0]};
        for (int j = 0; j < FD; j++) {
            for (int sgn = 0; sgn < 2; sgn++) {
                z3[j] += sgn ? -1e-6 : 1e-6;
                zp[1] = zo[sgn];
                vae__flow_forward(type, 1, zp, &ld2, p2, FS, 1, 1, FD);
                z3[j] -= sgn ? -1e-6 : 1e-6;
            }
            for (int i = 0; i < FD; i++) J[i][j] = (zo[0][i] - zo[1][i]) / 2e-6;
        }
        double det = J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1]) -
                     J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0]) +
                     J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0]);
        zp[1] = zo[0];
        vae__flow_forward(type, 1, zp, &ld2, p2, FS, 1, 1, FD);
        CHECK_NEAR(log(fabs(det)), ld2, 1e-8);
    } else { // a reflection keeps lengths, and has log det 0
        double n0 = 0, n1 = 0;
        for (int i = 0; i < FD; i++) n0 += f.z0[i] * f.z0[i], n1 += zs[FT][i] * zs[FT][i];
        CHECK_NEAR(n0, n1, 1e-9); // |v|^2 + 1e-12: a reflection up to that
        CHECK(ld[0] == 0);
    }
    free(f.z0), free(f.p), free(f.a);
}

/* A flow's KL with q_0's part in closed form: vae__flow_base_kl for FB
 * images in head rows of stride FS, z_0 apart: L = c sum_b base_kl_b. */
enum { FB = 3 };
typedef struct { double *head, *z0, *eps, c; } base_ctx;

static double base_loss(void *p)
{
    base_ctx *f = p;
    double s = 0;
    for (int b = 0; b < FB; b++)
        s += vae__flow_base_kl(f->head + b * FS, f->head + b * FS + FD, f->z0 + b * FD,
                               f->eps + b * FD, FD);
    return f->c * s;
}

static void test_flow_base_kl(void)
{
    base_ctx f = {rand_vec(FB * FS, -1, 1), rand_vec(FB * FD, -1.5, 1.5), rand_vec(FB * FD, -2, 2),
                  0.6};
    f.head[FS + FD + 1] = -35; // a clamped log-variance: no gradient there
    double dh[FB * FS] = {0}, dz[FB * FD] = {0}, nh[FB * FS], nz[FB * FD];
    vae__flow_base_kl_backward(dz, dh, FS, f.z0, f.head, f.c, FB, FD);
    numeric_grad(nh, f.head, FB * FS, base_loss, &f);
    numeric_grad(nz, f.z0, FB * FD, base_loss, &f);
    CHECK(max_rel_err(dh, nh, FB * FS) < 1e-7);
    CHECK(max_rel_err(dz, nz, FB * FD) < 1e-7);
    CHECK(dh[FS + FD + 1] == 0);
    // with reflections, which keep |z| and have log det 0, the whole estimate
    // (the one-sample one at z_T plus this) is the closed form, whatever eps
    const double *mu = f.head, *lv = mu + FD, *e = f.eps;
    double z0[FD], zT[FD], ld, *zs[2] = {z0, zT}, kl = 0;
    for (int j = 0; j < FD; j++)
        z0[j] = mu[j] + exp(lv[j] / 2) * e[j], kl += vae__gauss_kl(mu[j], lv[j]);
    vae__flow_forward(VAE_FLOW_HOUSEHOLDER, 1, zs, &ld, f.head + 2 * FD, FS, 1, 1, FD);
    double one_sample = -(vae__iwae_log_ratio(zT, e, lv, FD) + ld);
    CHECK_NEAR(one_sample + vae__flow_base_kl(mu, lv, z0, e, FD), kl, 1e-9);
    // and what it adds to the one-sample estimate has mean 0: the same KL
    double sum = 0, m = 0.5, l = 0.2;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double ei = vae_rng_normal(&rng), zi = m + exp(l / 2) * ei;
        sum += vae__flow_base_kl(&m, &l, &zi, &ei, 1);
    }
    CHECK(fabs(sum / n) < 0.01);
    free(f.head), free(f.z0), free(f.eps);
}

/* ------------------------------------------------------------------ bce */

enum { BB = 3, BD = 5 };
typedef struct { double *x, *t; } bce_ctx;

static double bce_loss(void *p)
{
    bce_ctx *c = p;
    double prob[BB * BD];
    return 0.25 * vae__bce_logits_forward(c->x, c->t, BB, BD, NULL, prob);
}

static void test_bce(void)
{
    bce_ctx c = {rand_vec(BB * BD, -6, 6), rand_vec(BB * BD, 0, 1)};
    double g[BB * BD], num[BB * BD], per[BB], prob[BB * BD];
    double sum = vae__bce_logits_forward(c.x, c.t, BB, BD, per, prob);
    vae__bce_logits_backward(g, prob, c.t, 0.25, BB * BD);
    numeric_grad(num, c.x, BB * BD, bce_loss, &c);
    CHECK(max_rel_err(g, num, BB * BD) < 1e-7);
    CHECK_NEAR(sum, per[0] + per[1] + per[2], 1e-12);
    // stable at extreme logits: -t log s(x) - (1-t) log(1-s(x)) without overflow
    double big[2] = {500, -500}, t[2] = {0, 0}, gb[2], pb[2];
    CHECK_NEAR(vae__bce_logits_forward(big, t, 1, 2, NULL, pb), 500, 1e-9);
    vae__bce_logits_backward(gb, pb, t, 1, 2);
    CHECK_NEAR(gb[0], 1, 1e-12);
    CHECK_NEAR(gb[1], 0, 1e-12);
    free(c.x), free(c.t);
}

/* ------------------------------------------------ softmax cross-entropy */

enum { XB = 4, XK = 6 };
typedef struct { double *x; uint8_t y[XB]; } xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *c = p;
    double prob[XB * XK];
    return 0.25 * vae__softmax_xent_forward(c->x, c->y, XB, XK, prob);
}

static void test_softmax_xent(void)
{
    // logits from a generator of its own, so the other tests' draws do not move them
    vae_rng own;
    vae_rng_seed(&own, 7);
    xent_ctx c = {malloc(XB * XK * sizeof(double)), {0, 5, 2, 2}};
    for (int i = 0; i < XB * XK; i++) c.x[i] = -6 + 12 * vae_rng_uniform(&own);
    double g[XB * XK], num[XB * XK], prob[XB * XK];
    vae__softmax_xent_forward(c.x, c.y, XB, XK, prob);
    vae__softmax_xent_backward(g, prob, c.y, 0.25, XB, XK);
    numeric_grad(num, c.x, XB * XK, xent_loss, &c);
    // the derivatives (1e-7 .. 0.25) against differences of a loss of a few
    // nats, which carry about 4e-10 of rounding: compared absolutely
    double e = max_err_floor(g, num, XB * XK, 1.0);
    printf("softmax cross-entropy: max abs err %g\n", e);
    CHECK(e < 1e-8);
    for (int i = 0; i < XB; i++) { // rows of the softmax sum to 1
        double s = 0;
        for (int k = 0; k < XK; k++) s += prob[i * XK + k];
        CHECK_NEAR(s, 1, 1e-12);
    }
    // stable at extreme logits: a confident right answer costs 0, a wrong one its margin
    double big[4] = {1000, -1000, -1000, 1000}, pb[4], gb[4];
    uint8_t yb[2] = {0, 0};
    CHECK_NEAR(vae__softmax_xent_forward(big, yb, 2, 2, pb), 2000, 1e-9);
    vae__softmax_xent_backward(gb, pb, yb, 1, 2, 2);
    CHECK_NEAR(gb[0], 0, 1e-12);
    CHECK_NEAR(gb[2], -1, 1e-12);
    CHECK_NEAR(gb[3], 1, 1e-12);
    free(c.x);
}

/* ------------------------------------------------- conv, transposed conv */

typedef struct {
    vae__conv_geom g;
    int transposed, B;
    double *inp, *w, *b, *dout, *out, *col;
} conv_ctx;

static size_t conv_in(const conv_ctx *c) { return (size_t)c->B * c->g.C * c->g.H * c->g.W; }
static size_t conv_out(const conv_ctx *c) { return (size_t)c->B * c->g.OC * c->g.OH * c->g.OW; }
static size_t conv_w(const conv_ctx *c) { return (size_t)c->g.C * c->g.OC * c->g.K * c->g.K; }

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    if (c->transposed)
        vae__convt2d_forward(c->out, c->inp, c->w, c->b, c->B, &c->g, c->col);
    else
        vae__conv2d_forward(c->out, c->inp, c->w, c->b, c->B, &c->g, c->col);
    double s = 0;
    for (size_t i = 0; i < conv_out(c); i++) s += c->out[i] * c->dout[i];
    return s;
}

/* Output (o, y, x) of image i by the definition: a convolution reads input
 * (y S - P + ki, x S - P + kj) through tap (ki, kj); a transposed one
 * writes input (iy, ix) to output (iy S - P + ki, ix S - P + kj). */
static double direct_conv(const conv_ctx *c, int i, int o, int y, int x)
{
    const vae__conv_geom *g = &c->g;
    int C = g->C, OC = g->OC, K = g->K, S = g->S, P = g->P;
    double s = c->b[o];
    for (int ch = 0; ch < C; ch++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                int iy = y * S - P + ki, ix = x * S - P + kj;
                if (c->transposed) { // the input whose tap (ki, kj) lands on (y, x), if any
                    int ny = y + P - ki, nx = x + P - kj;
                    if (ny < 0 || nx < 0 || ny % S || nx % S) continue;
                    iy = ny / S, ix = nx / S;
                }
                if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) continue;
                size_t wi = c->transposed ? (((size_t)ch * OC + o) * K + ki) * K + kj
                                          : (((size_t)o * C + ch) * K + ki) * K + kj;
                s += c->w[wi] * c->inp[(((size_t)i * C + ch) * g->H + iy) * g->W + ix];
            }
    return s;
}

/* The backward pair of one geometry against central differences, and the
 * forward against the definition. */
static void check_conv(int transposed, int C, int H, int W, int OC, int K, int S, int P, int OP)
{
    conv_ctx c = {.transposed = transposed, .B = 2};
    int bad = transposed ? vae__convt_geom_init(&c.g, C, H, W, OC, K, S, P, OP, 0)
                         : vae__conv_geom_init(&c.g, C, H, W, OC, K, S, P);
    CHECK(!bad);
    if (bad) return;
    c.inp = rand_vec(conv_in(&c), -1, 1);
    c.w = rand_vec(conv_w(&c), -1, 1);
    c.b = rand_vec(c.g.OC, -1, 1);
    c.dout = rand_vec(conv_out(&c), -1, 1);
    c.out = malloc(conv_out(&c) * sizeof *c.out);
    c.col = malloc(vae__conv_col_size(&c.g, c.B) * sizeof *c.col);
    double *dinp = malloc(conv_in(&c) * sizeof *dinp), *dw = malloc(conv_w(&c) * sizeof *dw);
    double *db = malloc(c.g.OC * sizeof *db);
    size_t n_num = conv_in(&c) > conv_w(&c) ? conv_in(&c) : conv_w(&c);
    double *num = malloc(n_num * sizeof *num);
    for (size_t i = 0; i < conv_w(&c); i++) dw[i] = NAN; // written, not accumulated
    for (int i = 0; i < c.g.OC; i++) db[i] = NAN;

    // forward: against the definition, output by output
    conv_loss(&c);
    double worst = 0;
    for (int i = 0; i < c.B; i++)
        for (int o = 0; o < OC; o++)
            for (int y = 0; y < c.g.OH; y++)
                for (int x = 0; x < c.g.OW; x++) {
                    double got = c.out[(((size_t)i * OC + o) * c.g.OH + y) * c.g.OW + x];
                    worst = fmax(worst, fabs(got - direct_conv(&c, i, o, y, x)));
                }
    CHECK(worst < 1e-12);

    if (transposed)
        vae__convt2d_backward(dinp, dw, db, c.dout, c.inp, c.w, c.B, &c.g, c.col);
    else
        vae__conv2d_backward(dinp, dw, db, c.dout, c.inp, c.w, c.B, &c.g, c.col);
    numeric_grad(num, c.inp, conv_in(&c), conv_loss, &c);
    CHECK(max_err_floor(dinp, num, conv_in(&c), 0.1) < 1e-7);
    numeric_grad(num, c.w, conv_w(&c), conv_loss, &c);
    CHECK(max_err_floor(dw, num, conv_w(&c), 0.1) < 1e-7);
    numeric_grad(num, c.b, c.g.OC, conv_loss, &c);
    CHECK(max_err_floor(db, num, c.g.OC, 0.1) < 1e-7);
    free(c.inp), free(c.w), free(c.b), free(c.dout), free(c.out), free(c.col);
    free(dinp), free(dw), free(db), free(num);
}

static void test_conv(void)
{
    vae__conv_geom g;
    // the sizes PyTorch computes
    CHECK(!vae__conv_geom_init(&g, 1, 28, 28, 32, 4, 2, 1) && g.OH == 14 && g.OW == 14);
    CHECK(!vae__convt_geom_init(&g, 64, 7, 7, 32, 4, 2, 1, 0, 0) && g.OH == 14 && g.OW == 14);
    CHECK(!vae__convt_geom_init(&g, 8, 4, 4, 4, 3, 2, 1, 1, 0) && g.OH == 8 && g.OW == 7);
    CHECK(vae__conv_geom_init(&g, 1, 2, 2, 1, 5, 1, 0) < 0);       // kernel larger than input
    CHECK(vae__convt_geom_init(&g, 1, 2, 2, 1, 3, 2, 1, 2, 0) < 0);   // output padding >= stride
    check_conv(0, 2, 7, 6, 3, 3, 2, 1, 0);
    check_conv(0, 1, 5, 5, 2, 4, 2, 1, 0);
    check_conv(0, 3, 4, 4, 2, 1, 1, 0, 0);
    check_conv(1, 3, 3, 4, 2, 4, 2, 1, 0);
    check_conv(1, 2, 3, 3, 3, 3, 2, 1, 1);
    check_conv(1, 2, 4, 3, 1, 3, 1, 0, 0);
}

/* ---------------------------------------------------- Gaussian likelihood */

enum { GLB = 3, GLD = 4 };
typedef struct { double *mean, *t, *ls; int per_pixel; } gl_ctx;

static double gl_loss(void *p)
{
    gl_ctx *c = p;
    return 0.5 * vae__gaussian_nll_forward(c->mean, c->t, c->ls, c->per_pixel, GLB, GLD, NULL);
}

static void test_gaussian_nll(int per_pixel)
{
    int nls = per_pixel ? GLD : 1;
    gl_ctx c = {rand_vec(GLB * GLD, -0.5, 1.5), rand_vec(GLB * GLD, 0, 1), rand_vec(nls, -2, 1),
                per_pixel};
    if (per_pixel) c.ls[1] = 6; // clamped: no gradient
    double dm[GLB * GLD], dls[GLD], num[GLB * GLD], per[GLB];
    vae__gaussian_nll_backward(dm, dls, c.mean, c.t, c.ls, per_pixel, 0.5, GLB, GLD);
    // terms up to ~200 (sigma down to e^-2) leave central differences ~3e-9
    // of absolute rounding error: small derivatives are compared to 1e-8
    numeric_grad(num, c.mean, GLB * GLD, gl_loss, &c);
    CHECK(max_err_floor(dm, num, GLB * GLD, 0.1) < 1e-7);
    numeric_grad(num, c.ls, nls, gl_loss, &c);
    CHECK(max_err_floor(dls, num, nls, 0.1) < 1e-7);
    if (per_pixel) CHECK(dls[1] == 0);
    // one pixel against the density written out
    double m = 0.3, t = 0.7, ls = log(0.2);
    double direct = -log(exp(-0.5 * pow((t - m) / 0.2, 2)) / (0.2 * sqrt(2 * acos(-1.0))));
    CHECK_NEAR(vae__gaussian_nll_forward(&m, &t, &ls, 0, 1, 1, per), direct, 1e-12);
    free(c.mean), free(c.t), free(c.ls);
}

/* ----------------------------------------------- continuous Bernoulli */

enum { CBB = 2, CBD = 6 };
typedef struct { double *x, *t; } cb_ctx;

static double cb_loss(void *p)
{
    cb_ctx *c = p;
    double prob[CBB * CBD];
    return 0.5 * vae__cb_forward(c->x, c->t, CBB, CBD, NULL, prob);
}

static void test_cont_bernoulli(void)
{
    // logits near 0 (the series), moderate and large, both signs
    double x[CBB * CBD] = {0, 3e-3, -8e-3, 0.02, -0.7, 2.5, -6, 15, -40, 0.011, -0.3, 80};
    cb_ctx c = {x, rand_vec(CBB * CBD, 0, 1)};
    double g[CBB * CBD], num[CBB * CBD], prob[CBB * CBD];
    vae__cb_forward(c.x, c.t, CBB, CBD, NULL, prob);
    vae__cb_backward(g, c.x, prob, c.t, 0.5, CBB * CBD);
    numeric_grad(num, c.x, CBB * CBD, cb_loss, &c);
    CHECK(max_rel_err(g, num, CBB * CBD) < 1e-6);
    // a density on [0,1] (integrates to 1) whose mean is vae__cb_mean, by
    // Simpson's rule over 2000 intervals
    double etas[] = {0, 5e-3, -0.5, 2, -9, 30};
    for (size_t e = 0; e < sizeof etas / sizeof *etas; e++) {
        int n = 2000;
        double mass = 0, mean = 0;
        for (int i = 0; i <= n; i++) {
            double t = (double)i / n, p1;
            double dens = exp(-vae__cb_forward(&etas[e], &t, 1, 1, NULL, &p1));
            double wgt = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
            mass += wgt * dens, mean += wgt * dens * t;
        }
        mass /= 3.0 * n, mean /= 3.0 * n;
        CHECK_NEAR(mass, 1, 1e-6);
        CHECK_NEAR(mean, vae__cb_mean(etas[e]), 1e-6);
    }
    free(c.t);
}

/* ------------------------------------------------------- vector quantiser */

/* ||ze - zq||^2 with the codes of the base point held: differentiable in ze
 * and the codebook wherever no vector is equidistant from two codes. */
enum { VQ_B = 3, VQ_C = 4, VQ_P = 5, VQ_K = 6 };
typedef struct { double *ze, *cb, codes[VQ_B * VQ_P]; } vq_ctx;

static double vq_loss(void *p)
{
    vq_ctx *c = p;
    double sum = 0;
    for (int b = 0; b < VQ_B; b++)
        for (int ch = 0; ch < VQ_C; ch++)
            for (int q = 0; q < VQ_P; q++) {
                int k = (int)c->codes[b * VQ_P + q];
                double t = c->ze[(b * VQ_C + ch) * VQ_P + q] - c->cb[k * VQ_C + ch];
                sum += t * t;
            }
    return sum;
}

static void test_vq(void)
{
    size_t n = (size_t)VQ_B * VQ_C * VQ_P, KC = (size_t)VQ_K * VQ_C;
    vq_ctx c = {rand_vec(n, -1, 1), rand_vec(KC, -1, 1), {0}};
    double zq[VQ_B * VQ_C * VQ_P], img[VQ_B], dze[VQ_B * VQ_C * VQ_P], num[VQ_B * VQ_C * VQ_P];
    double dcb[VQ_K * VQ_C], numcb[VQ_K * VQ_C], zero[VQ_B * VQ_C * VQ_P] = {0};
    double total = vae__vq_forward(zq, c.codes, c.ze, c.cb, VQ_B, VQ_C, VQ_P, VQ_K, img);
    // every code the nearest, by a scan of its own; zq its entry; the sums agree
    for (int b = 0; b < VQ_B; b++)
        for (int q = 0; q < VQ_P; q++) {
            int k = (int)c.codes[b * VQ_P + q];
            for (int j = 0; j < VQ_K; j++) {
                double dj = 0, dk = 0;
                for (int ch = 0; ch < VQ_C; ch++) {
                    double x = c.ze[(b * VQ_C + ch) * VQ_P + q];
                    dj += (x - c.cb[j * VQ_C + ch]) * (x - c.cb[j * VQ_C + ch]);
                    dk += (x - c.cb[k * VQ_C + ch]) * (x - c.cb[k * VQ_C + ch]);
                }
                CHECK(dk <= dj);
            }
            for (int ch = 0; ch < VQ_C; ch++)
                CHECK(zq[(b * VQ_C + ch) * VQ_P + q] == c.cb[k * VQ_C + ch]);
        }
    CHECK_NEAR(total, vq_loss(&c), 1e-12);
    CHECK_NEAR(img[0] + img[1] + img[2], total, 1e-12);
    // d/dze: the commitment term's gradient, with no decoder gradient (dzq = 0)
    vae__vq_backward(dze, zero, c.ze, zq, 1.0, n);
    numeric_grad(num, c.ze, n, vq_loss, &c);
    CHECK(max_rel_err(dze, num, n) < 1e-7);
    // d/dcb: the codebook term's gradient
    vae__vq_codebook_grad(dcb, c.ze, c.cb, c.codes, 1.0, VQ_B, VQ_C, VQ_P, VQ_K);
    numeric_grad(numcb, c.cb, KC, vq_loss, &c);
    CHECK(max_err_floor(dcb, numcb, KC, 1e-6) < 1e-7);

    // straight through, by hand: dze = dzq + 2 commit (ze - zq)
    double ze1[2] = {0.5, -1.0}, zq1[2] = {0.25, -2.0}, dzq1[2] = {3.0, 7.0}, d1[2];
    vae__vq_backward(d1, dzq1, ze1, zq1, 0.0, 2);
    CHECK(d1[0] == 3.0);
    CHECK(d1[1] == 7.0);
    vae__vq_backward(d1, dzq1, ze1, zq1, 0.25, 2);
    CHECK_NEAR(d1[0], 3.0 + 0.5 * 0.25, 1e-15);
    CHECK_NEAR(d1[1], 7.0 + 0.5 * 1.0, 1e-15);

    // EMA, by hand: K = 2 codes of C = 1, decay 0.5, eps 0.1. Two vectors
    // 1 and 3 chose code 0, none code 1. N = (0.5*1 + 0.5*2, 0.5*1 + 0) =
    // (1.5, 0.5), n = 2; m = (0.5*0.2 + 0.5*4, 0.5*(-0.4)) = (2.1, -0.2);
    // N' = (N + 0.1) / (2 + 0.2) * 2 = (1.6/1.1, 0.6/1.1); e = m / N'
    double ecb[2] = {0.2, -0.4}, ecount[2] = {1, 1}, esum[2] = {0.2, -0.4};
    double eze[2] = {1, 3}, ecodes[2] = {0, 0}, bcount[2], bsum[2];
    vae__vq_stats(bcount, bsum, eze, ecodes, 2, 1, 1, 2);
    CHECK(bcount[0] == 2.0 && bcount[1] == 0.0 && bsum[0] == 4.0 && bsum[1] == 0.0);
    vae__vq_ema_update(ecb, ecount, esum, bcount, bsum, 2, 1, 0.5, 0.1);
    CHECK_NEAR(ecount[0], 1.5, 1e-15);
    CHECK_NEAR(ecount[1], 0.5, 1e-15);
    CHECK_NEAR(esum[0], 2.1, 1e-15);
    CHECK_NEAR(esum[1], -0.2, 1e-15);
    CHECK_NEAR(ecb[0], 2.1 / (1.6 / 1.1), 1e-12);
    CHECK_NEAR(ecb[1], -0.2 / (0.6 / 1.1), 1e-12);
    free(c.ze), free(c.cb);
}

/* ------------------------------------------------------------ perceptual */

/* A random frozen classifier for C x H x W images (widths 3, 2, 4): its
 * weights in one buffer the caller frees (p->w1). */
static void percep_random(vae__percep *p, int C, int H, int W, unsigned layers, double weight)
{
    vae__percep_init(p, C, H, W, 3, 2, 4);
    size_t n[6] = {(size_t)3 * C * 9, 3, 2 * 3 * 9, 2, (size_t)4 * p->F, 4}, total = 0;
    for (int i = 0; i < 6; i++) total += n[i];
    // weights around zero, biases mostly positive: most ReLUs on, some off
    double *w = rand_vec(total, -0.6, 0.6);
    const double **t[6] = {&p->w1, &p->b1, &p->w2, &p->b2, &p->w3, &p->b3};
    for (int i = 0, at = 0; i < 6; at += (int)n[i++]) {
        *t[i] = w + at;
        if (i % 2) for (size_t j = 0; j < n[i]; j++) w[at + j] += 0.2;
    }
    p->layers = layers, p->weight = weight;
}

enum { PB = 2, PC = 2, PH = 5, PW = 4 };
typedef struct { vae__percep p; double *x, *xhat, *work; } percep_ctx;

static double percep_loss(void *v)
{
    percep_ctx *c = v;
    return 0.5 * vae__percep_forward(&c->p, c->work, c->x, c->xhat, PB, NULL);
}

/* The term's gradient at xhat through the frozen classifier, for every
 * choice of layers; and that the per-image terms add up to the sum. */
static void test_perceptual(void)
{
    size_t D = (size_t)PC * PH * PW;
    for (unsigned layers = 1; layers <= 7; layers++) {
        percep_ctx c;
        percep_random(&c.p, PC, PH, PW, layers, 0.7);
        c.x = rand_vec(PB * D, 0, 1), c.xhat = rand_vec(PB * D, 0, 1);
        c.work = malloc(vae__percep_work_size(&c.p, PB) * sizeof *c.work);
        double g[PB * PC * PH * PW], num[PB * PC * PH * PW], per[PB] = {0, 0};
        double sum = vae__percep_forward(&c.p, c.work, c.x, c.xhat, PB, per);
        CHECK(sum > 0);
        CHECK_NEAR(per[0] + per[1], sum, 1e-12 * sum);
        vae__percep_backward(&c.p, c.work, g, PB, 0.5);
        numeric_grad(num, c.xhat, PB * D, percep_loss, &c);
        double err = max_rel_err(g, num, PB * D);
        if (err >= 1e-6) fprintf(stderr, "perceptual, layers %u: max rel err %g\n", layers, err);
        CHECK(err < 1e-6);
        // the same images: no distance, no gradient
        CHECK(vae__percep_forward(&c.p, c.work, c.x, c.x, PB, NULL) == 0);
        free((void *)c.p.w1), free(c.x), free(c.xhat), free(c.work);
    }
    // the continuous Bernoulli mean's derivative, which the term chains through
    double etas[] = {0, 4e-3, -9e-3, 0.02, -0.7, 3, -25};
    for (size_t i = 0; i < sizeof etas / sizeof *etas; i++) {
        double h = 1e-5, e = etas[i];
        double num1 = (vae__cb_mean(e + h) - vae__cb_mean(e - h)) / (2 * h);
        if (fabs(e) < 2e-2) continue; // the mean's own series is only O(eta^2) there
        CHECK_NEAR(vae__cb_mean_grad(e), num1, 1e-8);
    }
    CHECK_NEAR(vae__cb_mean_grad(0), 1.0 / 12, 1e-15);
    CHECK_NEAR(vae__cb_mean_grad(0.0099), vae__cb_mean_grad(0.0101), 1e-6);
}

/* ------------------------------------------------------------ whole net */

/* check_net's perceptual term when set (its weights from percep_random). */
static vae__percep *net_percep;

typedef struct { vae__net net; double *x; const uint8_t *labels; int B; double beta; } net_ctx;

static double net_loss(void *p)
{
    net_ctx *c = p;
    double rec, kl;
    vae__net_forward(&c->net, c->x, c->x, c->labels, c->B, &rec, &kl);
    return (rec + c->beta * kl) / c->B;
}

/* A tiny MLP or conv net's configuration (Bernoulli VAE; callers vary it). */
static vae_config net_cfg(int arch, int n_hidden, const int *hidden)
{
    vae_config cfg = {.channels = 1, .height = 2, .width = 3, .latent = 3, .n_hidden = n_hidden,
                      .arch = arch, .sigma = 0.5f};
    if (arch == VAE_ARCH_CONV) cfg.channels = 2, cfg.height = 6, cfg.width = 5;
    for (int i = 0; i < n_hidden; i++) cfg.hidden[i] = hidden[i];
    return cfg;
}

/* The whole net's gradient (beta weighs the KL, or the sparse AE's L1). */
static void check_net(vae_config cfg, double beta)
{
    int arch = cfg.arch, likelihood = cfg.likelihood, n_hidden = cfg.n_hidden;
    net_ctx c = {.B = 4, .beta = beta};
    CHECK(vae__net_layout(&c.net, &cfg, c.B) == 0);
    double *params = rand_vec(c.net.n_params, -0.8, 0.8);
    double *grads = calloc(c.net.n_params, sizeof *grads);
    double *acts = calloc(c.net.n_acts, sizeof *acts);
    double *num = malloc(c.net.n_params * sizeof *num);
    vae__net_bind(&c.net, params, grads, acts);
    c.x = rand_vec((size_t)c.B * c.net.D, 0, 1);
    for (int i = 0; i < c.B * c.net.n_noise * c.net.n_samples; i++)
        c.net.noise[i] = vae_rng_normal(&rng); // eps itself, or the HVAE's [eps | eps1] rows
    static const uint8_t labels[4] = {0, 2, 1, 2};
    c.labels = labels;
    if (net_percep) {
        c.net.percep = net_percep;
        c.net.pwork = malloc((2 * (size_t)c.B * c.net.D + vae__percep_work_size(net_percep, c.B)) *
                             sizeof *c.net.pwork);
    }
    net_loss(&c);
    vae__net_backward(&c.net, c.x, c.x, c.B, beta, 1.0 / c.B);
    numeric_grad(num, params, c.net.n_params, net_loss, &c);
    // the conv nets' losses sum more terms, the Gaussian's has 1/sigma^2 terms
    // and the continuous Bernoulli's log-normaliser terms, so their central
    // differences carry more absolute rounding error (up to ~3e-9 seen here,
    // 1.6e-8 under valgrind, whose BLAS kernel rounds differently): derivatives
    // below 0.1 are compared to 1e-7 absolute there. A wrong gradient is off
    // by its own size (1e-3 and up), as the mutations tried were. A flow's
    // log-determinants and tanh add terms too (6e-10 absolute seen); its
    // steps alone are checked tightly in test_flow. tanh and softplus leave no
    // derivative exactly zero, as ReLU does, so tiny ones carry the same noise.
    // A perceptual term sums the classifier's feature maps as well (up to
    // 8e-10 absolute seen); alone it is checked tightly in test_perceptual.
    // The HVAE's four chains and two KL terms likewise (4.5e-10 absolute seen,
    // on a derivative of 8e-5); its KL pair alone is checked in test_gauss_kl2.
    int loose = arch == VAE_ARCH_CONV || likelihood != VAE_LIKELIHOOD_BERNOULLI || cfg.flow ||
                cfg.activation != VAE_ACT_RELU || net_percep || cfg.vamp_k ||
                cfg.model == VAE_MODEL_HVAE;
    double err = max_err_floor(grads, num, c.net.n_params, loose ? 0.1 : 1e-6);
    if (err >= 1e-6)
        fprintf(stderr, "whole net, arch %d, %d hidden, likelihood %d, model %d, flow %d, "
                "activation %d, perceptual %u, vamp %d: max rel err %g\n", arch, n_hidden,
                likelihood, cfg.model, cfg.flow, cfg.activation,
                net_percep ? net_percep->layers : 0, cfg.vamp_k, err);

    CHECK(err < 1e-6);
    free(params), free(grads), free(acts), free(num), free(c.x), free(c.net.pwork);
}

/* The 16-channel blocks between conv layers (conv.h) are a layout only: a
 * net with them gives the loss and every gradient of the same net without
 * them, to the bit (their central differences would only repeat check_net's
 * with more rounding). */
static void check_blocks(void)
{
    int ch[] = {16, 32};
    vae_config cfg = net_cfg(VAE_ARCH_CONV, 2, ch);
    net_ctx c[2];
    double *params = NULL, *x = NULL, *noise = NULL, *grads[2], *acts[2], loss[2];
    vae_rng later = rng; // the checks after this one keep their draws
    for (int v = 0; v < 2; v++) {
        c[v] = (net_ctx){.B = 4, .beta = 1};
        vae__net *net = &c[v].net;
        CHECK(vae__net_layout(net, &cfg, c[v].B) == 0);
        if (v == 0) CHECK(net->geom[0].blk_out && net->geom[net->n_layers - 2].blk_out);
        for (int l = 0; v == 1 && l < net->n_layers; l++) // the same net, NCHW throughout
            net->geom[l].blk_in = net->geom[l].blk_out = 0;
        size_t n_noise = (size_t)c[v].B * net->n_noise * net->n_samples;
        if (!params) {
            params = rand_vec(net->n_params, -0.8, 0.8);
            x = rand_vec((size_t)c[v].B * net->D, 0, 1);
            noise = rand_vec(n_noise, -2, 2);
        }
        grads[v] = calloc(net->n_params, sizeof **grads);
        acts[v] = calloc(net->n_acts, sizeof **acts);
        vae__net_bind(net, params, grads[v], acts[v]);
        memcpy(net->noise, noise, n_noise * sizeof *noise);
        c[v].x = x;
        loss[v] = net_loss(&c[v]);
        vae__net_backward(net, x, x, c[v].B, 1, 1.0 / c[v].B);
    }
    CHECK(loss[0] == loss[1]);
    CHECK(!memcmp(grads[0], grads[1], c[0].net.n_params * sizeof **grads));
    for (int v = 0; v < 2; v++) free(grads[v]), free(acts[v]);
    free(params), free(x), free(noise);
    rng = later;
}

/* The whole net with a perceptual term on its decoder's mean. */
static void check_net_percep(vae_config cfg, unsigned layers)
{
    vae__percep p;
    percep_random(&p, cfg.channels, cfg.height, cfg.width, layers, 0.4);
    net_percep = &p;
    check_net(cfg, 1.0);
    net_percep = NULL;
    free((void *)p.w1);
}

/* The VQ-VAE's loss as its gradient sees it, with the base point's codes
 * held (the straight-through estimator's surrogate): the decoder reads
 * ze + (zq0 - ze0), the commitment term is commit ||ze - zq0||^2 and, for
 * the loss update, the codebook term ||ze0 - e_code||^2. Its central
 * differences are the gradient vae__net_backward writes for every parameter:
 * the encoder's through the straight-through path, the decoder's, the
 * codebook's (and 0 for the EMA state). */
typedef struct { vae__net net; double *x, *ze0, *zq0, *codes0; int B; } st_ctx;

static double st_loss(void *p)
{
    st_ctx *c = p;
    vae__net *net = &c->net;
    size_t n = (size_t)c->B * net->d;
    int C = net->vq_C, P = net->vq_P;
    vae__net_encode(net, c->x, NULL, c->B);
    const double *ze = net->act[net->k];
    double reg = 0;
    for (size_t i = 0; i < n; i++) {
        net->z[i] = ze[i] + (c->zq0[i] - c->ze0[i]);
        reg += net->vq_commit * (ze[i] - c->zq0[i]) * (ze[i] - c->zq0[i]);
    }
    for (int b = 0; b < c->B && !net->vq_ema; b++)
        for (int q = 0; q < P; q++)
            for (int ch = 0; ch < C; ch++) {
                double t = c->ze0[(size_t)b * net->d + (size_t)ch * P + q] -
                           net->cb[(size_t)c->codes0[b * P + q] * C + ch];
                reg += t * t;
            }
    vae__net_decode(net, net->z, NULL, c->B);
    double rec = vae__bce_logits_forward(net->act[net->n_layers - 1], c->x, c->B, net->D,
                                         net->rec_img, net->prob);
    return (rec + reg) / c->B;
}

static void check_vq_net(int ema)
{
    vae_config cfg = {.channels = 2, .height = 6, .width = 5, .n_hidden = 1, .hidden = {3},
                      .arch = VAE_ARCH_CONV, .model = VAE_MODEL_VQVAE, .codebook = 5,
                      .code_dim = 2, .commitment = 0.3f, .codebook_update = ema,
                      .ema_decay = 0.9f};
    st_ctx c = {.B = 3};
    CHECK(vae__net_layout(&c.net, &cfg, c.B) == 0);
    vae__net *net = &c.net;
    CHECK(net->d == 2 * 3 * 2); // a 3x2 grid of 2-D codes
    double *params = rand_vec(net->n_params, -0.8, 0.8);
    double *grads = calloc(net->n_params, sizeof *grads);
    double *acts = calloc(net->n_acts, sizeof *acts);
    double *num = malloc(net->n_params * sizeof *num);
    vae__net_bind(net, params, grads, acts);
    c.x = rand_vec((size_t)c.B * net->D, 0, 1);
    double rec, reg;
    vae__net_forward(net, c.x, c.x, NULL, c.B, &rec, &reg);
    size_t n = (size_t)c.B * net->d;
    c.ze0 = malloc(n * sizeof *c.ze0), c.zq0 = malloc(n * sizeof *c.zq0);
    c.codes0 = malloc((size_t)c.B * net->vq_P * sizeof *c.codes0);
    memcpy(c.ze0, net->act[net->k], n * sizeof *c.ze0);
    memcpy(c.zq0, net->z, n * sizeof *c.zq0);
    memcpy(c.codes0, net->codes, (size_t)c.B * net->vq_P * sizeof *c.codes0);
    double base = (rec + reg) / c.B;
    CHECK_NEAR(st_loss(&c), base, 1e-12); // the surrogate's value is the loss's
    vae__net_forward(net, c.x, c.x, NULL, c.B, &rec, &reg);
    vae__net_backward(net, c.x, c.x, c.B, 1.0, 1.0 / c.B);
    numeric_grad(num, params, net->n_params, st_loss, &c);
    double err = max_err_floor(grads, num, net->n_params, 0.1); // conv: as check_net's
    if (err >= 1e-6) fprintf(stderr, "VQ-VAE net (ema %d): max rel err %g\n", ema, err);
    CHECK(err < 1e-6);
    for (size_t i = net->cb_off + (size_t)net->vq_K * net->vq_C; i < net->n_params; i++)
        CHECK(grads[i] == 0); // the EMA state
    free(params), free(grads), free(acts), free(num), free(c.x), free(c.ze0), free(c.zq0),
        free(c.codes0);
}

int main(void)
{
    vae_rng_seed(&rng, 20261125);
    test_linear();
    test_relu();
    test_gauss();
    test_flow(VAE_FLOW_PLANAR);
    test_flow(VAE_FLOW_HOUSEHOLDER);
    test_bce();
    int h1[] = {5}, h2[] = {6, 4};
    check_net(net_cfg(VAE_ARCH_MLP, 0, NULL), 1.0);
    check_net(net_cfg(VAE_ARCH_MLP, 1, h1), 1.0);
    check_net(net_cfg(VAE_ARCH_MLP, 2, h2), 2.5);
    test_conv();
    int c1[] = {3}, c2[] = {2, 3};
    check_net(net_cfg(VAE_ARCH_CONV, 1, c1), 1.0);
    check_net(net_cfg(VAE_ARCH_CONV, 2, c2), 1.5);
    check_blocks();
    test_gaussian_nll(0);
    test_gaussian_nll(1);
    test_cont_bernoulli();
    static const int lik[][2] = {{VAE_LIKELIHOOD_GAUSSIAN, VAE_SIGMA_FIXED},
                                 {VAE_LIKELIHOOD_GAUSSIAN, VAE_SIGMA_LEARNED},
                                 {VAE_LIKELIHOOD_GAUSSIAN, VAE_SIGMA_LEARNED_PIXEL},
                                 {VAE_LIKELIHOOD_CONT_BERNOULLI, 0}};
    for (int i = 0; i < 4; i++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.likelihood = lik[i][0], cfg.sigma_mode = lik[i][1];
        check_net(cfg, 1.0);
    }
    // IWAE with 3 and 1 samples (k = 1 is the plain VAE), MLP and conv
    for (int k = 3; k >= 1; k -= 2) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.model = VAE_MODEL_IWAE, cfg.iwae_k = k;
        check_net(cfg, 1.0);
        cfg = net_cfg(VAE_ARCH_CONV, 1, c1);
        cfg.model = VAE_MODEL_IWAE, cfg.iwae_k = k;
        check_net(cfg, 1.0);
    }
    // CVAE: the label joins the first encoder linear layer (MLP: layer 0; conv:
    // the head) and the decoder's first layer
    for (int arch = VAE_ARCH_MLP; arch <= VAE_ARCH_CONV; arch++) {
        vae_config cfg = arch == VAE_ARCH_MLP ? net_cfg(arch, 2, h2) : net_cfg(arch, 2, c2);
        cfg.model = VAE_MODEL_CVAE, cfg.n_classes = 3;
        check_net(cfg, 1.0);
    }
    // flows in the posterior: VAE (MLP, conv) and CVAE
    for (int flow = VAE_FLOW_PLANAR; flow <= VAE_FLOW_HOUSEHOLDER; flow++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.flow = flow, cfg.flow_steps = 2;
        check_net(cfg, 1.0);
        cfg.model = VAE_MODEL_CVAE, cfg.n_classes = 3;
        check_net(cfg, 0.6);
        cfg = net_cfg(VAE_ARCH_CONV, 1, c1);
        cfg.flow = flow, cfg.flow_steps = 3;
        check_net(cfg, 1.0);
    }
    // the autoencoders: the code decoded directly; the sparse one's L1 weighs 0.3
    for (int model = VAE_MODEL_AE; model <= VAE_MODEL_SPARSE_AE; model++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 1, h1);
        cfg.model = model;
        check_net(cfg, 0.3);
        cfg = net_cfg(VAE_ARCH_CONV, 2, c2);
        cfg.model = model;
        check_net(cfg, 0.3);
    }
    // the other hidden activations, MLP and conv
    for (int act = VAE_ACT_TANH; act <= VAE_ACT_SOFTPLUS; act++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.activation = act;
        check_net(cfg, 1.0);
        cfg = net_cfg(VAE_ARCH_CONV, 2, c2);
        cfg.activation = act;
        check_net(cfg, 1.0);
    }
    // the VampPrior: the mixture's log p(z) through the encoder's pass over
    // the pseudo-inputs to the pseudo-inputs themselves (params), for the VAE
    // (MLP, conv, gated), the IWAE (the weights reach the prior's gradient)
    // and a flow (the prior's gradient at z_T goes back through the steps)
    test_vamp();
    {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.vamp_k = 3;
        check_net(cfg, 1.0);
        cfg.activation = VAE_ACT_GATED;
        check_net(cfg, 0.7);
        cfg.activation = VAE_ACT_RELU;
        cfg.model = VAE_MODEL_IWAE, cfg.iwae_k = 3;
        check_net(cfg, 1.0);
        cfg.iwae_k = 1;
        check_net(cfg, 1.0);
        cfg = net_cfg(VAE_ARCH_MLP, 1, h1);
        cfg.vamp_k = 2, cfg.flow = VAE_FLOW_PLANAR, cfg.flow_steps = 2;
        check_net(cfg, 1.0);
        cfg = net_cfg(VAE_ARCH_CONV, 1, c1);
        cfg.vamp_k = 2;
        check_net(cfg, 1.0);
    }
    // gated dense layers (MLP only): the VAE, and the CVAE and IWAE, whose
    // conditioned layers and K decoder rows read the gated outputs
    static const int gated_models[] = {VAE_MODEL_VAE, VAE_MODEL_CVAE, VAE_MODEL_IWAE};
    for (int i = 0; i < 3; i++) {
        int model = gated_models[i];
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.activation = VAE_ACT_GATED;
        cfg.model = model;
        cfg.iwae_k = 3;
        cfg.n_classes = 3;
        check_net(cfg, 1.0);
    }
    test_softmax_xent();
    // the perceptual term alone, then through each likelihood's mean, the
    // conv decoder, a CVAE and a DAE-like autoencoder
    test_perceptual();
    for (int i = 0; i < 4; i++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.likelihood = lik[i][0], cfg.sigma_mode = lik[i][1];
        check_net_percep(cfg, 7);
    }
    check_net_percep(net_cfg(VAE_ARCH_MLP, 1, h1), VAE__PERC_CONV1);
    check_net_percep(net_cfg(VAE_ARCH_CONV, 2, c2), VAE__PERC_CONV2 | VAE__PERC_FC1);
    {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.model = VAE_MODEL_CVAE, cfg.n_classes = 3;
        check_net_percep(cfg, 7);
        cfg = net_cfg(VAE_ARCH_MLP, 1, h1);
        cfg.model = VAE_MODEL_AE;
        check_net_percep(cfg, VAE__PERC_FC1);
    }
    // last: the other checks draw the random numbers they drew before these came
    test_vq();
    check_vq_net(0);
    check_vq_net(1);
    // the HVAE: the Gaussian-to-Gaussian KL alone, then whole nets (the four
    // chains, z2's closed-form KL or the VampPrior's estimate, the gated
    // layers, a learned sigma), every parameter against central differences
    test_gauss_kl2();
    for (int n_hidden = 0; n_hidden <= 2; n_hidden++) {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, n_hidden, h2);
        cfg.model = VAE_MODEL_HVAE, cfg.latent1 = 2;
        check_net(cfg, 1.0);
        cfg.vamp_k = 3;
        check_net(cfg, 0.8);
    }
    {
        vae_config cfg = net_cfg(VAE_ARCH_MLP, 2, h2);
        cfg.model = VAE_MODEL_HVAE, cfg.latent1 = 4;
        cfg.activation = VAE_ACT_GATED;
        check_net(cfg, 1.0);
        cfg.vamp_k = 2;
        check_net(cfg, 1.0);
        cfg.activation = VAE_ACT_RELU, cfg.vamp_k = 0;
        cfg.likelihood = VAE_LIKELIHOOD_GAUSSIAN, cfg.sigma_mode = VAE_SIGMA_LEARNED_PIXEL;
        check_net(cfg, 1.3);
    }
    // last: their draws would move the other tests' random values
    test_vamp_wide();
    test_flow_base_kl();
    return TEST_REPORT();
}
