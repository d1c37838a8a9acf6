/* loss.c - the Gaussian posterior (reparameterisation + KL) and the
 * Bernoulli likelihood from logits, forward and backward (float or double). */
#include "internal.h"
#include "layers.h"

#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && !defined(VAE_REAL_DOUBLE)
/* glibc's libmvec has SIMD versions of these (within 4 ulp); declaring them
 * lets gcc vectorise the per-pixel loop without -ffast-math. */
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float log1pf(float);
#endif

static real clamp_logvar(real lv)
{
    return lv < (real)VAE_LOGVAR_MIN ? (real)VAE_LOGVAR_MIN
         : lv > (real)VAE_LOGVAR_MAX ? (real)VAE_LOGVAR_MAX : lv;
}

double vae__gauss_forward(real *z, const real *head, const real *eps, int B, int d, real *kl_img)
{
    // head is (B,2d) = [mu | logvar]; eps and z are (B,d)
    double total = 0;
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const real *e = eps + (size_t)i * d;
        real *zi = z + (size_t)i * d;
        double kl = 0;
        for (int j = 0; j < d; j++) {
            real l = clamp_logvar(lv[j]);
            real var = real_exp(l);
            zi[j] = mu[j] + real_sqrt(var) * e[j];
            kl += 0.5 * ((double)mu[j] * mu[j] + var - 1.0 - l);
        }
        if (kl_img) kl_img[i] = (real)kl;
        total += kl;
    }
    return total;
}

void vae__gauss_backward(real *dhead, const real *head, const real *eps, const real *dz,
                         real kl_scale, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const real *mu = head + (size_t)i * 2 * d, *lv = mu + d;
        const real *e = eps + (size_t)i * d, *g = dz + (size_t)i * d;
        real *dmu = dhead + (size_t)i * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = clamp_logvar(lv[j]);
            real var = real_exp(l);
            dmu[j] = g[j] + kl_scale * mu[j];
            // dz/dlv = eps * sigma / 2; dKL/dlv = (e^lv - 1) / 2; zero where clamped
            dlv[j] = l == lv[j] ? (real)0.5 * (g[j] * e[j] * real_sqrt(var) + kl_scale * (var - 1))
                                : 0;
        }
    }
}

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

double vae__bce_logits_forward(const real *logits, const real *target, int B, int D,
                               real *rec_img, real *prob)
{
    // logits, target, prob are (B,D)
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int i = 0; i < B; i++) {
        size_t o = (size_t)i * D;
        double s = bce_row(logits + o, target + o, prob + o, D);
        if (rec_img) rec_img[i] = (real)s;
        total += s;
    }
    return total;
}

double vae__bce_logits_rows(const real *logits, const real *target, int B, int D, real *rec_img,
                            real *prob)
{
    // logits, prob are (B,D); target is one row (D) for all of them
    double total = 0;
    for (int i = 0; i < B; i++) {
        size_t o = (size_t)i * D;
        double s = bce_row(logits + o, target, prob + o, D);
        if (rec_img) rec_img[i] = (real)s;
        total += s;
    }
    return total;
}

void vae__bce_logits_backward(real *dlogits, const real *prob, const real *target, real scale,
                              size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dlogits[i] = scale * (prob[i] - target[i]);
}
