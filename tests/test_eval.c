/* test_eval.c - vae_model_eval against numerical integration and against itself:
 * on models with 1 and 2 latent dimensions small enough to integrate on a
 * grid, the importance-sampled log p(x) converges to the quadrature value,
 * the bound rises with k, k = 1 is the ELBO in expectation; all-zero
 * weights give -inf, not NaN; results do not depend on the thread count;
 * KL, active units and the reconstruction error match direct computations
 * through vae_model_encode / vae_model_decode / vae_model_loss on a trained model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nn/loss.h"
#include "test.h"

/* ------------------------------------------------------ a tiny model */

/* Sets the tensor called name (its numel values) from v. */
static void set_tensor(vae_model *m, const char *name, const double *v, int numel)
{
    vae__param_view views[4 * VAE_MAX_LAYERS];
    int n = vae__model_tensors(m, views);
    for (int i = 0; i < n; i++)
        if (!strcmp(views[i].name, name)) {
            int have = (int)(views[i].shape[0] * (views[i].ndim == 2 ? views[i].shape[1] : 1));
            CHECK_EQ(have, numel);
            for (int j = 0; j < numel && j < have; j++) views[i].data[j] = (float)v[j];
            return;
        }
    CHECK(!"tensor not found");
}

/* A linear VAE on 2x2 images (D = 4, no hidden layer) with d latents: the
 * encoder's head and the decoder are single linear maps with fixed
 * weights, chosen so that q(z|x) is near but not equal to p(z|x). */
#define TD 4
#define LOG_2PI 1.8378770664093454836
static const double enc_mu[2][TD] = {{0.8, -0.5, 0.6, 0.3}, {-0.4, 0.7, 0.2, -0.6}};
static const double enc_mu_b[2] = {-0.4, 0.2};
static const double enc_lv[2][TD] = {{0.2, 0.1, -0.3, 0.1}, {-0.1, 0.3, 0.2, -0.2}};
static const double enc_lv_b[2] = {-1.2, -0.9};
static const double dec_w[TD][2] = {{2.0, -0.6}, {-1.5, 0.9}, {1.0, 1.3}, {0.7, -1.1}};
static const double dec_b[TD] = {0.3, -0.2, 0.1, -0.5};

static vae_model *tiny_model(int d, int max_batch)
{
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.height = cfg.width = 2;
    cfg.n_hidden = 0;
    cfg.latent = d;
    vae_model *m = NULL;
    vae_error err;
    CHECK_EQ(vae_model_create(&cfg, max_batch, 1, &m, &err), VAE_OK);
    if (!m) exit(1);
    double w[2 * TD];
    for (int j = 0; j < d; j++) memcpy(w + j * TD, enc_mu[j], sizeof enc_mu[j]);
    set_tensor(m, "fc_mu.weight", w, d * TD);
    set_tensor(m, "fc_mu.bias", enc_mu_b, d);
    for (int j = 0; j < d; j++) memcpy(w + j * TD, enc_lv[j], sizeof enc_lv[j]);
    set_tensor(m, "fc_logvar.weight", w, d * TD);
    set_tensor(m, "fc_logvar.bias", enc_lv_b, d);
    for (int p = 0; p < TD; p++)
        for (int j = 0; j < d; j++) w[p * d + j] = dec_w[p][j];
    set_tensor(m, "decoder.0.weight", w, TD * d);
    set_tensor(m, "decoder.0.bias", dec_b, TD);
    return m;
}

/* log p(x|z) of the tiny decoder, in double: -sum of BCE with logits. */
static double log_lik(const double *x, const double *z, int d)
{
    double s = 0;
    for (int p = 0; p < TD; p++) {
        double l = dec_b[p];
        for (int j = 0; j < d; j++) l += dec_w[p][j] * z[j];
        s -= fmax(l, 0) - l * x[p] + log1p(exp(-fabs(l)));
    }
    return s;
}

/* Quadrature over the grid [-R, R]^d with step h (the integrands are smooth
 * and decay like a Gaussian, so the trapezoid rule converges very fast):
 * log p(x) = log int p(x|z) N(z; 0, I) dz and the exact ELBO
 * E_q[log p(x|z)] - KL(q || p) with q from the encoder's mu and logvar. */
static void quadrature(const double *x, int d, const float *mu, const float *lv, double *log_px,
                       double *elbo)
{
    const double R = 11, h = d == 1 ? 0.004 : 0.04; // h < sigma_q / 10
    int G = (int)(2 * R / h) + 1;
    double mx = -INFINITY, s = 0, eq = 0, wq = 0;
    // two passes over the grid for log p(x): the max first, then the sum
    for (int pass = 0; pass < 2; pass++)
        for (int a = 0; a < G; a++)
            for (int b = 0; b < (d == 2 ? G : 1); b++) {
                double z[2] = {-R + a * h, -R + b * h};
                double ll = log_lik(x, z, d), lp = 0, lq = 0;
                for (int j = 0; j < d; j++) {
                    lp += -0.5 * (z[j] * z[j] + LOG_2PI);
                    double v = exp(lv[j]);
                    lq += -0.5 * ((z[j] - mu[j]) * (z[j] - mu[j]) / v + lv[j] + LOG_2PI);
                }
                if (pass == 0) {
                    if (ll + lp > mx) mx = ll + lp;
                    eq += exp(lq) * ll; // E_q[log p(x|z)]
                    wq += exp(lq);
                } else {
                    s += exp(ll + lp - mx);
                }
            }
    *log_px = mx + log(s) + d * log(h);
    double kl = 0;
    for (int j = 0; j < d; j++) kl += 0.5 * ((double)mu[j] * mu[j] + exp(lv[j]) - 1 - lv[j]);
    *elbo = eq / wq - kl; // normalised by the grid sum of q: the same rule for both
}

static double mean_log_px(const vae_eval_image *e, int n, double *sd)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += e[i].log_px;
    double mean = s / n;
    for (int i = 0; i < n; i++) s2 += (e[i].log_px - mean) * (e[i].log_px - mean);
    if (sd) *sd = sqrt(s2 / (n - 1));
    return mean;
}

/* vae_model_eval of `copies` copies of x: each copy draws its own noise, so the
 * per-image results are independent estimates. */
static void eval_copies(vae_model *m, const double *x, int copies, int k, uint64_t seed,
                        vae_eval_image *out, vae_eval_result *r)
{
    float *xs = malloc((size_t)copies * TD * sizeof *xs);
    for (int i = 0; i < copies; i++)
        for (int p = 0; p < TD; p++) xs[i * TD + p] = (float)x[p];
    vae_eval_opts o;
    vae_eval_opts_default(&o);
    o.k = k;
    o.seed = seed;
    CHECK_EQ(vae_model_eval(m, xs, NULL, copies, &o, r, NULL, NULL, out), VAE_OK);
    free(xs);
}

static void test_quadrature(int d)
{
    static const double xs[3][TD] = {{1, 0, 1, 1}, {0, 1, 0, 0}, {0.8, 0.1, 0.6, 0.4}};
    vae_model *m = tiny_model(d, 4096);
    enum { C = 1000, S = 10 };
    vae_eval_image *e = malloc(C * sizeof *e);
    vae_eval_result r;
    for (int t = 0; t < 3; t++) {
        const double *x = xs[t];
        float xf[TD], mu[2], lv[2];
        for (int p = 0; p < TD; p++) xf[p] = (float)x[p];
        CHECK_EQ(vae_model_encode(m, xf, NULL, 1, mu, lv), VAE_OK);
        double lpx, elbo;
        quadrature(x, d, mu, lv, &lpx, &elbo);
        CHECK(lpx > elbo + 0.01); // q is not the posterior: the test has a gap to close

        // S independent estimates with k = 50000: their mean converges to log p(x)
        double sd, mean;
        eval_copies(m, x, S, 50000, 7, e, &r);
        mean = mean_log_px(e, S, &sd);
        printf("d=%d x%d: quadrature log p(x) %.6f, ELBO %.6f; IS k=5e4 mean of %d %.6f (sd %.2g)\n",
               d, t, lpx, elbo, S, mean, sd);
        CHECK(sd < 0.05);                                    // the estimator has converged
        CHECK_NEAR(mean, lpx, 4 * sd / sqrt(S) + 1e-5);      // to the right value
        CHECK_NEAR(-r.nll, mean, 1e-9);                      // nll is minus the mean

        // the bound rises with k on average, stays below log p(x), and k = 1
        // averages to the ELBO (within 4 standard errors of C estimates)
        int ks[] = {1, 3, 10, 100};
        double prev = -INFINITY;
        for (int i = 0; i < 4; i++) {
            eval_copies(m, x, C, ks[i], 11 + i, e, &r);
            mean = mean_log_px(e, C, &sd);
            printf("  k=%-4d mean log p^ over %d: %.5f (se %.2g)\n", ks[i], C, mean, sd / sqrt(C));
            CHECK(mean > prev);
            CHECK(mean < lpx + 4 * sd / sqrt(C));
            if (ks[i] == 1) CHECK_NEAR(mean, elbo, 4 * sd / sqrt(C));
            prev = mean;
        }
        // the reported ELBO (rec averaged over the k samples, closed-form KL),
        // C independent estimates with k = 100
        eval_copies(m, x, C, 100, 3, e, &r);
        double s = 0, s2 = 0;
        for (int i = 0; i < C; i++) s += -e[i].neg_elbo;
        for (int i = 0; i < C; i++) s2 += (-e[i].neg_elbo - s / C) * (-e[i].neg_elbo - s / C);
        printf("  ELBO estimate, mean of %d with k=100: %.5f (se %.2g)\n", C, s / C, sqrt(s2 / (C - 1) / C));
        CHECK_NEAR(s / C, elbo, 4 * sqrt(s2 / (C - 1) / C));
        CHECK_NEAR(r.neg_elbo, r.rec + r.kl, 1e-9);
        CHECK_NEAR(r.neg_elbo, -s / C, 1e-9);
    }
    free(e);
    vae_model_free(m);
}

/* ------------------------------------------------------- -inf, not NaN */

static void test_log_mean_exp(void)
{
    double w[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    double v = vae_log_mean_exp(w, 4);
    CHECK(isinf(v) && v < 0);
    v = vae_log_mean_exp(w, 0);
    CHECK(isinf(v) && v < 0);
    w[2] = 1.5; // one weight e^1.5 among four
    CHECK_NEAR(vae_log_mean_exp(w, 4), 1.5 - log(4.0), 1e-15);
    double big[3] = {1000, 1000, 1000}, small[3] = {-1000, -1001, -INFINITY};
    CHECK_NEAR(vae_log_mean_exp(big, 3), 1000, 1e-12); // no overflow
    CHECK_NEAR(vae_log_mean_exp(small, 3), -1000 + log((1 + exp(-1.0)) / 3), 1e-12); // no underflow
    double pinf[2] = {0, INFINITY}, nan_[2] = {0, NAN};
    CHECK(isinf(vae_log_mean_exp(pinf, 2)) && vae_log_mean_exp(pinf, 2) > 0);
    CHECK(isnan(vae_log_mean_exp(nan_, 2)));
    // the order of the values does not matter beyond rounding
    double a[5] = {-3, 2, -INFINITY, 0.5, 2}, b[5] = {2, 0.5, -INFINITY, 2, -3};
    CHECK_NEAR(vae_log_mean_exp(a, 5), vae_log_mean_exp(b, 5), 1e-14);
    CHECK_NEAR(vae_log_mean_exp(a, 5), log((exp(-3) + 2 * exp(2) + exp(0.5)) / 5), 1e-14);
}

/* The broadcast BCE the evaluation uses equals the training loss's BCE on
 * a target replicated per row, bit for bit (the same row function). */
static void test_bce_rows(void)
{
    enum { B = 5, D = 150 };
    static float logits[B * D], target[B * D], prob[B * D], rec1[B], rec2[B];
    vae_rng r;
    vae_rng_seed(&r, 8);
    for (int i = 0; i < B * D; i++) logits[i] = (float)(8 * vae_rng_normal(&r));
    for (int j = 0; j < D; j++) target[j] = (float)vae_rng_uniform(&r);
    for (int i = 1; i < B; i++) memcpy(target + i * D, target, D * sizeof *target);
    double t1 = vae__bce_logits_forward(logits, target, B, D, rec1, prob);
    double t2 = vae__bce_logits_rows(logits, target, B, D, rec2, prob);
    CHECK(t1 == t2 && !memcmp(rec1, rec2, sizeof rec1));
    CHECK(t1 > 0);
}

/* A decoder so sure every pixel is on that an all-black image has
 * probability 0 under every z: every weight is -inf, log p(x) = -inf. */
static void test_all_zero_weights(void)
{
    vae_model *m = tiny_model(2, 64);
    double b[TD] = {3e38, 3e38, 3e38, 3e38};
    set_tensor(m, "decoder.0.bias", b, TD);
    float x[3 * TD] = {0}; // three black images
    vae_eval_opts o;
    vae_eval_opts_default(&o);
    o.k = 50;
    vae_eval_result r;
    vae_eval_image e[3];
    CHECK_EQ(vae_model_eval(m, x, NULL, 3, &o, &r, NULL, NULL, e), VAE_OK);
    for (int i = 0; i < 3; i++) CHECK(isinf(e[i].log_px) && e[i].log_px < 0);
    CHECK(isinf(r.nll) && r.nll > 0);
    CHECK(!isnan(r.neg_elbo) && !isnan(r.mse));
    vae_model_free(m);
}

/* ---------------------------------------------- a trained model's numbers */

static void test_trained(const char *data)
{
    vae_dataset *tr, *te;
    vae_error err;
    CHECK_EQ(vae_dataset_open_mnist(data, VAE_SPLIT_TRAIN, &tr, &err), VAE_OK);
    CHECK_EQ(vae_dataset_open_mnist(data, VAE_SPLIT_TEST, &te, &err), VAE_OK);
    int n = 300, D = 784, B = 100;
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.hidden[0] = 64;
    cfg.latent = 6;
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 5, &m, &err), VAE_OK);
    float *x = malloc((size_t)2000 * D * sizeof *x);
    uint32_t idx[2000];
    for (int i = 0; i < 2000; i++) idx[i] = (uint32_t)i;
    vae_dataset_batch(tr, idx, 2000, VAE_BINARIZE_NONE, 0, NULL, x);
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < 2000; i += B) CHECK_EQ(vae_model_train_step(m, x + (size_t)i * D, NULL, B, NULL), VAE_OK);
    vae_dataset_batch(te, idx, n, VAE_BINARIZE_NONE, 0, NULL, x);
    CHECK_EQ(vae_model_set_max_batch(m, 64), VAE_OK);

    // the same numbers, bit for bit, on 1, 2 and 3 threads; k = 7 with a
    // max batch of 64 puts several images in one decoder batch
    vae_eval_opts o;
    vae_eval_opts_default(&o);
    o.k = 7;
    o.seed = 42;
    vae_eval_result r[3];
    vae_eval_image *e[3];
    double kl[3][6], var[3][6];
    for (int t = 0; t < 3; t++) {
        e[t] = malloc((size_t)n * sizeof *e[t]);
        o.threads = t + 1;
        CHECK_EQ(vae_model_eval(m, x, NULL, n, &o, &r[t], kl[t], var[t], e[t]), VAE_OK);
    }
    for (int t = 1; t < 3; t++) {
        CHECK(!memcmp(e[0], e[t], (size_t)n * sizeof *e[0]));
        CHECK(!memcmp(&r[0], &r[t], sizeof r[0]));
        CHECK(!memcmp(kl[0], kl[t], sizeof kl[0]) && !memcmp(var[0], var[t], sizeof var[0]));
    }
    // an image's numbers do not depend on which other images are evaluated
    // (the first 70 = 10 tiles of 7 images) but do depend on the seed
    vae_eval_image e70[70];
    vae_eval_result r70;
    o.threads = 2;
    CHECK_EQ(vae_model_eval(m, x, NULL, 70, &o, &r70, NULL, NULL, e70), VAE_OK);
    CHECK(!memcmp(e70, e[0], sizeof e70));
    o.seed = 43;
    CHECK_EQ(vae_model_eval(m, x, NULL, 70, &o, &r70, NULL, NULL, e70), VAE_OK);
    CHECK(e70[0].log_px != e[0][0].log_px && e70[0].kl == e[0][0].kl);

    // against direct computations: KL (as vae_model_loss sums it), the
    // variance of mu and the active units, the decoded mean's squared error
    vae_stats st = {0};
    vae_rng rng;
    vae_rng_seed(&rng, 1);
    CHECK_EQ(vae_model_loss(m, x, NULL, n, &rng, &st), VAE_OK);
    CHECK_NEAR(r[0].kl, st.kl / n, 1e-6 * st.kl / n); // GEMMs of other heights: float rounding
    double klsum = 0;
    for (int j = 0; j < 6; j++) klsum += kl[0][j];
    CHECK_NEAR(klsum, r[0].kl, 1e-9 * r[0].kl);
    float *mu = malloc((size_t)n * 6 * sizeof *mu), *rec = malloc((size_t)n * D * sizeof *rec);
    CHECK_EQ(vae_model_encode(m, x, NULL, n, mu, NULL), VAE_OK);
    CHECK_EQ(vae_model_decode(m, mu, NULL, n, rec), VAE_OK);
    int active = 0;
    for (int j = 0; j < 6; j++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) s += mu[i * 6 + j];
        for (int i = 0; i < n; i++) s2 += (mu[i * 6 + j] - s / n) * (mu[i * 6 + j] - s / n);
        CHECK_NEAR(var[0][j], s2 / n, 1e-6 * s2 / n); // encoder GEMMs of other heights
        active += s2 / n > 0.01;
    }
    CHECK_EQ(r[0].active_units, active);
    double sse = 0;
    for (size_t i = 0; i < (size_t)n * D; i++) sse += ((double)x[i] - rec[i]) * ((double)x[i] - rec[i]);
    CHECK_NEAR(r[0].sse, sse / n, 1e-4 * sse / n); // vae_model_decode's sigmoid is in float
    CHECK_NEAR(r[0].mse, sse / n / D, 1e-4 * sse / n / D);

    // the IWAE bound rises with k on average over the images
    double prev = -INFINITY;
    int ks[] = {1, 10, 100};
    for (int i = 0; i < 3; i++) {
        o.k = ks[i];
        o.threads = 0;
        vae_eval_result rk;
        CHECK_EQ(vae_model_eval(m, x, NULL, n, &o, &rk, NULL, NULL, NULL), VAE_OK);
        printf("trained model, %d test images: k=%-3d nll %.3f (-elbo %.3f)\n", n, ks[i], rk.nll,
               rk.neg_elbo);
        CHECK(-rk.nll > prev);
        CHECK(rk.nll < rk.neg_elbo || ks[i] == 1);
        prev = -rk.nll;
    }

    // bad arguments and NaN input: a status and a message, nothing else
    o.k = 0;
    CHECK_EQ(vae_model_eval(m, x, NULL, n, &o, &r[0], NULL, NULL, NULL), VAE_EINVAL);
    CHECK(strstr(vae_model_errmsg(m), "k = 0") != NULL);
    o.k = 5;
    CHECK_EQ(vae_model_eval(m, x, NULL, 0, &o, &r[0], NULL, NULL, NULL), VAE_EINVAL);
    CHECK_EQ(vae_model_eval(m, NULL, NULL, 3, &o, &r[0], NULL, NULL, NULL), VAE_EINVAL);
    o.threads = -1;
    CHECK_EQ(vae_model_eval(m, x, NULL, 3, &o, &r[0], NULL, NULL, NULL), VAE_EINVAL);
    o.threads = 0;
    x[3 * D + 5] = NAN;
    CHECK_EQ(vae_model_eval(m, x, NULL, 10, &o, &r[0], NULL, NULL, NULL), VAE_ENUMERIC);
    CHECK(strstr(vae_model_errmsg(m), "image 3:") != NULL);

    for (int t = 0; t < 3; t++) free(e[t]);
    free(mu);
    free(rec);
    free(x);
    vae_model_free(m);
    vae_dataset_free(tr);
    vae_dataset_free(te);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fmnist-small", argv[1]);
    test_log_mean_exp();
    test_bce_rows();
    test_all_zero_weights();
    test_quadrature(1);
    test_quadrature(2);
    test_trained(dir);
    return TEST_REPORT();
}
