/* flow.c - the posterior's flow steps (flow.h), forward and backward: planar
 * and Householder, over rows that share their image's parameters. */
#include <math.h>
#include <string.h>

#include "nn/flow.h"
#include "vae.h"

/* |w|^2 and |v|^2 get this much added: a zero vector gives a finite step
 * (the identity) instead of 0/0; the gradient differentiates the same sum. */
#define FLOW_EPS 1e-12

int vae__flow_step_params(int type, int d)
{
    return type == VAE_FLOW_PLANAR ? 2 * d + 1 : type == VAE_FLOW_HOUSEHOLDER ? d : 0;
}

static double dot(const real *a, const real *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

static double softplus(double a)
{
    return a > 0 ? a + log1p(exp(-a)) : log1p(exp(a));
}

/* ------------------------------------------------------------------ planar */

/* A planar step's derived values for one row: u^ = u + coef w, tanh(w.z + b),
 * r = w.u^, and w.u and |w|^2 that coef comes from. */
typedef struct {
    double h, r, wu, ww, coef;
} planar_row;

static planar_row planar_setup(const real *z, const real *p, int d)
{
    const real *u = p, *w = p + d;
    planar_row s;
    s.wu = dot(w, u, d);
    s.ww = dot(w, w, d) + FLOW_EPS;
    s.coef = (-1 + softplus(s.wu) - s.wu) / s.ww;
    s.h = tanh(dot(w, z, d) + p[2 * d]);
    s.r = s.wu + s.coef * (s.ww - FLOW_EPS);
    return s;
}

static double planar_forward(real *zo, const real *z, const real *p, int d)
{
    const real *u = p, *w = p + d;
    planar_row s = planar_setup(z, p, d);
    for (int j = 0; j < d; j++) zo[j] = (real)(z[j] + (u[j] + s.coef * w[j]) * s.h);
    return log(fabs(1 + (1 - s.h * s.h) * s.r));
}

/* g: dL/dz_out in, dL/dz_in out; dp += the step's parameter gradient. */
static void planar_backward(real *g, real *dp, const real *z, const real *p, double c, int d)
{
    const real *u = p, *w = p + d;
    real *du = dp, *dw = dp + d;
    planar_row s = planar_setup(z, p, d);
    double h1 = 1 - s.h * s.h, cd = c / (1 + h1 * s.r);
    // dL/du^_j = g_j h + c/det h1 w_j (through r = u^.w); then through h(a)
    double gu = 0, sg = 0;
    for (int j = 0; j < d; j++) {
        double uh = u[j] + s.coef * w[j];
        gu += g[j] * uh;
        sg += (g[j] * s.h + cd * h1 * w[j]) * w[j];
    }
    double da = gu * h1 - cd * s.r * 2 * s.h * h1;
    // u^ = u + coef(w.u, |w|^2) w: coef's derivatives
    double sig = 1 / (1 + exp(-s.wu));
    double dcoef_wu = (sig - 1) / s.ww, dcoef_ww = -(-1 + softplus(s.wu) - s.wu) / (s.ww * s.ww);
    for (int j = 0; j < d; j++) {
        double uh = u[j] + s.coef * w[j], duh = g[j] * s.h + cd * h1 * w[j];
        du[j] += (real)(duh + sg * dcoef_wu * w[j]);
        dw[j] += (real)(da * z[j] + cd * h1 * uh + s.coef * duh +
                        sg * (dcoef_wu * u[j] + dcoef_ww * 2 * w[j]));
    }
    dp[2 * d] += (real)da;
    for (int j = 0; j < d; j++) g[j] = (real)(g[j] + da * w[j]);
}

/* ------------------------------------------------------------- householder */

static void householder_forward(real *zo, const real *z, const real *v, int d)
{
    double k = 2 * dot(v, z, d) / (dot(v, v, d) + FLOW_EPS);
    for (int j = 0; j < d; j++) zo[j] = (real)(z[j] - k * v[j]);
}

static void householder_backward(real *g, real *dv, const real *z, const real *v, int d)
{
    double n2 = dot(v, v, d) + FLOW_EPS, s = dot(v, z, d), gv = dot(g, v, d);
    for (int j = 0; j < d; j++) {
        dv[j] += (real)(-2 * (g[j] * s + gv * z[j] - 2 * gv * s * v[j] / n2) / n2);
        g[j] = (real)(g[j] - 2 * v[j] * gv / n2); // the reflection is its own transpose
    }
}

/* ------------------------------------------------------------------- steps */

void vae__flow_forward(int type, int T, real *const *zs, real *ld, const real *p, int ps, int R,
                       int K, int d)
{
    int P = vae__flow_step_params(type, d);
    for (int r = 0; r < R; r++) {
        double sum = 0;
        for (int t = 0; t < T; t++) {
            const real *pt = p + (size_t)(r / K) * ps + (size_t)t * P;
            const real *z = zs[t] + (size_t)r * d;
            real *zo = zs[t + 1] + (size_t)r * d;
            if (type == VAE_FLOW_PLANAR)
                sum += planar_forward(zo, z, pt, d);
            else
                householder_forward(zo, z, pt, d);
        }
        ld[r] = (real)sum;
    }
}

void vae__flow_backward(int type, int T, real *g, real *dp, const real *const *zs, const real *p,
                        int ps, real c, int R, int K, int d)
{
    int P = vae__flow_step_params(type, d);
    for (int b = 0; b * K < R; b++) memset(dp + (size_t)b * ps, 0, (size_t)T * P * sizeof *dp);
    for (int r = 0; r < R; r++)
        for (int t = T - 1; t >= 0; t--) {
            size_t o = (size_t)(r / K) * ps + (size_t)t * P;
            const real *z = zs[t] + (size_t)r * d;
            if (type == VAE_FLOW_PLANAR)
                planar_backward(g + (size_t)r * d, dp + o, z, p + o, c, d);
            else
                householder_backward(g + (size_t)r * d, dp + o, z, p + o, d);
        }
}
