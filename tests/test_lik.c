/* test_lik.c - the continuous Bernoulli and Gaussian likelihoods (float)
 * against torch.distributions, from the fixture scripts/make_lik_ref.py
 * writes: per-image negative log densities and the gradients of their
 * batch mean. Exits non-zero on any mismatch. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "layers.h"
#include "test.h"

static const vae__st_file *ref;

static const float *get(const char *name, size_t want)
{
    const vae__st_tensor *t = vae__st_find(ref, name);
    size_t n = 1;
    for (int i = 0; t && i < t->ndim; i++) n *= (size_t)t->shape[i];
    if (!t || n != want) {
        fprintf(stderr, "fixture tensor %s missing or not %zu values\n", name, want);
        exit(1);
    }
    return t->data;
}

/* |a - b| <= atol + 1e-5 |b| everywhere; prints the worst difference. */
static void check(const char *name, const float *a, size_t n, double atol)
{
    const float *b = get(name, n);
    double worst = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - b[i]);
        if (diff > worst) worst = diff;
        if (!(diff <= atol + 1e-5 * fabs(b[i]))) ok = 0;
    }
    printf("  %-22s maxdiff %.3g %s\n", name, worst, ok ? "ok" : "MISMATCH");
    CHECK(ok);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_lik.safetensors", argv[1]);
    vae__st_file *f;
    vae_error err;
    if (vae__st_read(path, &f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ref = f;
    int B = atoi(vae__st_meta(f, "batch")), D = atoi(vae__st_meta(f, "pixels"));
    size_t n = (size_t)B * D;
    const float *x = get("x", n);
    float *per = malloc(B * sizeof *per), *prob = malloc(n * sizeof *prob);
    float *g = malloc(n * sizeof *g), gls[64];
    if (D > 64) return 2;

    const float *logits = get("cb.logits", n);
    vae__cb_forward(logits, x, B, D, per, prob);
    vae__cb_backward(g, logits, prob, x, 1.0f / B, n);
    check("cb.nll", per, B, 1e-4);
    check("cb.grad", g, n, 1e-6);

    const float *mean = get("gauss.mean", n), *ls = get("gauss.log_sigma", D);
    vae__gaussian_nll_forward(mean, x, ls, 1, B, D, per);
    vae__gaussian_nll_backward(g, gls, mean, x, ls, 1, 1.0f / B, B, D);
    check("gauss.nll", per, B, 1e-4);
    check("gauss.grad_mean", g, n, 1e-6);
    check("gauss.grad_log_sigma", gls, D, 1e-6);
    free(per), free(prob), free(g);
    vae__st_free(f);
    return TEST_REPORT();
}
