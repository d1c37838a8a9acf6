/* loss.c - the likelihoods of the decoder (Bernoulli and continuous
 * Bernoulli from logits, Gaussian from means), forward and backward (float
 * or double). */
#include <string.h>

#include <omp.h>

#include "internal.h"
#include "nn/layers.h"
#include "nn/loss.h"

#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && !defined(VAE_REAL_DOUBLE)
/* glibc's libmvec has SIMD versions of these (within 4 ulp); declaring them
 * lets gcc vectorise the per-pixel loop without -ffast-math. */
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float log1pf(float);
#endif


/* One image: returns its summed loss, writes sigmoid(x) to p. Partial sums
 * of 64 pixels in real (vectorised), accumulated in double. */
VAE_VECTOR_CLONES
static double bce_row(const real *restrict x, const real *restrict t, real *restrict p, int D)
{
    double s = 0;
    for (int j0 = 0; j0 < D; j0 += 64) {
        int n = D - j0 < 64 ? D - j0 : 64;
        const real *xs = x + j0, *ts = t + j0;
        real *ps = p + j0, part = 0;
#pragma omp simd reduction(+ : part)
        for (int j = 0; j < n; j++) {
            // max(x,0) = (x+|x|)/2 exactly; no branches, so the calls vectorise
            real e = real_exp(-real_fabs(xs[j])); // in (0,1]: nothing overflows
            part += (real)0.5 * (xs[j] + real_fabs(xs[j])) - xs[j] * ts[j] + real_log1p(e);
            ps[j] = e;
        }
#pragma omp simd
        for (int j = 0; j < n; j++) ps[j] = (xs[j] >= 0 ? 1 : ps[j]) / (1 + ps[j]); // sigmoid
        s += part;
    }
    return s;
}

/* Row i's loss, also into rec_img[i] when rec_img is set; its target starts
 * at target + i * tstride. */
static double bce_image(const real *logits, const real *target, size_t tstride, real *prob,
                        int i, int D, real *rec_img)
{
    size_t o = (size_t)i * D;
    double s = bce_row(logits + o, target + i * tstride, prob + o, D);
    if (rec_img) rec_img[i] = (real)s;
    return s;
}

double vae__bce_logits_forward(const real *logits, const real *target, int B, int D,
                               real *rec_img, real *prob)
{
    // logits, target, prob are (B,D)
    double total = 0;
    if (omp_get_level() > 0) { // see vae__serial_here
        for (int i = 0; i < B; i++) total += bce_image(logits, target, D, prob, i, D, rec_img);
        return total;
    }
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int i = 0; i < B; i++) total += bce_image(logits, target, D, prob, i, D, rec_img);
    return total;
}

double vae__bce_logits_rows(const real *logits, const real *target, int B, int D, real *rec_img,
                            real *prob)
{
    // logits, prob are (B,D); target is one row (D) for all of them
    double total = 0;
    for (int i = 0; i < B; i++) total += bce_image(logits, target, 0, prob, i, D, rec_img);
    return total;
}

void vae__bce_logits_backward(real *dlogits, const real *prob, const real *target, real scale,
                              size_t n)
{
    if (vae__serial_here(n)) {
        for (size_t i = 0; i < n; i++) dlogits[i] = scale * (prob[i] - target[i]);
        return;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dlogits[i] = scale * (prob[i] - target[i]);
}

/* ------------------------------------------------------------- Gaussian */

static real clamp_log_sigma(real ls)
{
    return ls < (real)VAE_LOG_SIGMA_MIN ? (real)VAE_LOG_SIGMA_MIN
         : ls > (real)VAE_LOG_SIGMA_MAX ? (real)VAE_LOG_SIGMA_MAX : ls;
}

/* Row i's negative log density, also into rec_img[i] when rec_img is set. */
static double gaussian_row(const real *mean, const real *target, const real *log_sigma,
                           int per_pixel, int i, int D, real *rec_img)
{
    const double half_log_2pi = 0.91893853320467274178;
    const real *m = mean + (size_t)i * D, *t = target + (size_t)i * D;
    double s = 0;
    if (per_pixel) {
        for (int j = 0; j < D; j++) {
            real ls = clamp_log_sigma(log_sigma[j]);
            real r = (t[j] - m[j]) * real_exp(-ls); // standardised residual
            s += half_log_2pi + ls + (real)0.5 * r * r;
        }
    } else {
        real ls = clamp_log_sigma(log_sigma[0]), inv = real_exp(-ls), sq = 0;
        for (int j = 0; j < D; j++) sq += (t[j] - m[j]) * (t[j] - m[j]);
        s = D * (half_log_2pi + ls) + 0.5 * (double)(inv * inv) * sq;
    }
    if (rec_img) rec_img[i] = (real)s;
    return s;
}

double vae__gaussian_nll_forward(const real *mean, const real *target, const real *log_sigma,
                                 int per_pixel, int B, int D, real *rec_img)
{
    // mean, target are (B,D); log_sigma is (D) per pixel, else (1)
    double total = 0;
    if (omp_get_level() > 0) { // see vae__serial_here
        for (int i = 0; i < B; i++)
            total += gaussian_row(mean, target, log_sigma, per_pixel, i, D, rec_img);
        return total;
    }
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int i = 0; i < B; i++)
        total += gaussian_row(mean, target, log_sigma, per_pixel, i, D, rec_img);
    return total;
}

void vae__gaussian_nll_backward(real *dmean, real *dlog_sigma, const real *mean,
                                const real *target, const real *log_sigma, int per_pixel,
                                real scale, int B, int D)
{
    // d/dmean = (mean - t) / sigma^2; d/dls [ls + r^2/2] = 1 - r^2, r the
    // standardised residual; no gradient to ls where the clamp holds it
    int n_ls = per_pixel ? D : 1;
    if (dlog_sigma) memset(dlog_sigma, 0, (size_t)n_ls * sizeof *dlog_sigma);
    for (int i = 0; i < B; i++) {
        const real *m = mean + (size_t)i * D, *t = target + (size_t)i * D;
        real *dm = dmean + (size_t)i * D, r2sum = 0;
        for (int j = 0; j < D; j++) {
            int k = per_pixel ? j : 0;
            real ls = clamp_log_sigma(log_sigma[k]), inv_var = real_exp(-2 * ls);
            real r2 = (t[j] - m[j]) * (t[j] - m[j]) * inv_var;
            dm[j] = scale * (m[j] - t[j]) * inv_var;
            if (per_pixel && dlog_sigma && ls == log_sigma[k]) dlog_sigma[k] += scale * (1 - r2);
            r2sum += r2;
        }
        if (!per_pixel && dlog_sigma && clamp_log_sigma(log_sigma[0]) == log_sigma[0])
            dlog_sigma[0] += scale * (D - r2sum);
    }
}

/* ------------------------------------------------ continuous Bernoulli */

/* log C(eta), the continuous Bernoulli's log normaliser, in the logit eta
 * of lambda = sigmoid(eta): C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)
 * = eta / tanh(eta / 2). Computed in double: the closed forms cancel near
 * eta = 0, where the series log 2 + eta^2/12 - 7 eta^4/1440 takes over. */
static double cb_log_norm(double eta)
{
    double a = fabs(eta);
    if (a < 1e-2) return 0.69314718055994530942 + eta * eta / 12 - 7 * pow(eta, 4) / 1440;
    // |eta| / tanh(|eta|/2) = |eta| (1 + e^-|eta|) / (1 - e^-|eta|)
    return log(a) + log1p(exp(-a)) - log(-expm1(-a));
}

/* d log C / d eta = 1/eta - 1/sinh(eta); the series eta/6 - 7 eta^3/360
 * near 0 (the derivative of cb_log_norm's). */
static double cb_dlog_norm(double eta)
{
    double a = fabs(eta);
    if (a < 1e-2) return eta / 6 - 7 * eta * eta * eta / 360;
    if (a > 700) return 1 / eta; // sinh overflows; 1/sinh is 0 to double precision
    return 1 / eta - 1 / sinh(eta);
}

double vae__cb_forward(const real *logits, const real *target, int B, int D, real *rec_img,
                       real *prob)
{
    double total = vae__bce_logits_forward(logits, target, B, D, rec_img, prob);
    for (int i = 0; i < B; i++) {
        const real *x = logits + (size_t)i * D;
        double s = 0;
        for (int j = 0; j < D; j++) s += cb_log_norm((double)x[j]);
        if (rec_img) rec_img[i] -= (real)s;
        total -= s;
    }
    return total;
}

void vae__cb_backward(real *dlogits, const real *logits, const real *prob, const real *target,
                      real scale, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dlogits[i] = scale * (prob[i] - target[i] - (real)cb_dlog_norm((double)logits[i]));
}

real vae__cb_mean(real eta)
{
    // E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))
    //      = sigmoid(eta) / tanh(eta/2) - 1/eta, which is 1/2 + eta/12 near 0
    double e = eta, a = fabs(e);
    if (a < 1e-2) return (real)(0.5 + e / 12);
    return (real)(1 / (1 + exp(-e)) / tanh(e / 2) - 1 / e);
}

real vae__cb_mean_grad(real eta)
{
    // E[x] = 1 / (1 - e^-eta) - 1/eta, so d/deta = 1/eta^2 - 1 / (4 sinh^2(eta/2)),
    // 1/12 - eta^2/240 near 0 (where the difference cancels)
    double e = eta, a = fabs(e);
    if (a < 1e-2) return (real)(1.0 / 12 - e * e / 240);
    if (a > 700) return (real)(1 / (e * e)); // sinh overflows: its term is 0
    double s = sinh(e / 2);
    return (real)(1 / (e * e) - 1 / (4 * s * s));
}

/* ------------------------------------------------ softmax cross-entropy */

void vae__softmax_rows(const real *logits, int B, int K, real *prob)
{
    for (int i = 0; i < B; i++) {
        const real *l = logits + (size_t)i * K;
        real *p = prob + (size_t)i * K;
        real mx = l[0];
        for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
        double s = 0;
        for (int k = 0; k < K; k++) s += (double)(p[k] = real_exp(l[k] - mx));
        for (int k = 0; k < K; k++) p[k] = (real)(p[k] / s);
    }
}

double vae__softmax_xent_forward(const real *logits, const uint8_t *labels, int B, int K,
                                 real *prob)
{
    // -log p_y = log sum_k e^(l_k - l_y), taken from the row's softmax: the
    // largest logit's term is 1, so the sum is at least 1 and its log exact
    // enough; p_y itself can underflow to 0, so its log is not taken
    vae__softmax_rows(logits, B, K, prob);
    double total = 0;
    for (int i = 0; i < B; i++) {
        const real *l = logits + (size_t)i * K;
        real mx = l[0];
        for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)(l[k] - mx));
        total += log(s) - (double)(l[labels[i]] - mx);
    }
    return total;
}

void vae__softmax_xent_backward(real *dlogits, const real *prob, const uint8_t *labels, real scale,
                                int B, int K)
{
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) {
            size_t j = (size_t)i * K + k;
            dlogits[j] = scale * (prob[j] - (k == labels[i] ? 1 : 0));
        }
}
