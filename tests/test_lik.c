/* test_lik.c - the continuous Bernoulli and Gaussian likelihoods (float)
 * against torch.distributions, from the fixture scripts/make_lik_ref.py
 * writes: per-image negative log densities and the gradients of their
 * batch mean. Exits non-zero on any mismatch. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "nn/loss.h"

/* |a - b| <= atol + 1e-5 |b| everywhere. */
static void check(const char *name, const float *a, size_t n, double atol)
{
    fixture_tensor(name, n);
    fixture_check(name, a, name, 1, 0, 1, atol, 1e-5);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_lik.safetensors");
    int B = fixture_meta_int("batch"), D = fixture_meta_int("pixels");
    size_t n = (size_t)B * D;
    const float *x = fixture_get("x", n);
    float *per = malloc(B * sizeof *per), *prob = malloc(n * sizeof *prob);
    float *g = malloc(n * sizeof *g), gls[64];
    if (D > 64) return 2;

    const float *logits = fixture_get("cb.logits", n);
    vae__cb_forward(logits, x, B, D, per, prob);
    vae__cb_backward(g, logits, prob, x, 1.0f / B, n);
    check("cb.nll", per, B, 1e-4);
    check("cb.grad", g, n, 1e-6);

    const float *mean = fixture_get("gauss.mean", n), *ls = fixture_get("gauss.log_sigma", D);
    vae__gaussian_nll_forward(mean, x, ls, 1, B, D, per);
    vae__gaussian_nll_backward(g, gls, mean, x, ls, 1, 1.0f / B, B, D);
    check("gauss.nll", per, B, 1e-4);
    check("gauss.grad_mean", g, n, 1e-6);
    check("gauss.grad_log_sigma", gls, D, 1e-6);
    free(per), free(prob), free(g);
    vae__st_free(fixture);
    return TEST_REPORT();
}
