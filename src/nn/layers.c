/* layers.c - linear and ReLU layers, forward and backward (float or double). */
#include <string.h>

#include <omp.h>

#include "internal.h"
#include "nn/layers.h"

void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT)
{
    // inp is (B,IN), w is (OUT,IN), b is (OUT), out is (B,OUT)
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
    real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1, inp, IN, w, IN, 1, out, OUT);
}

void vae__linear_backward_data(real *dinp, const real *dout, const real *w, int B, int IN, int OUT)
{
    real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1, dout, OUT, w, IN, 0, dinp,
              IN);
}

void vae__linear_backward_data_cols(real *dinp, const real *dout, const real *w, int B, int IN,
                                    int OUT, int c0, int c1)
{
    // w's columns c0..c1: the block from w + c0 with w's row stride
    real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, c1 - c0, OUT, 1, dout, OUT, w + c0, IN,
              0, dinp, c1 - c0);
}

/* db (o1-o0) = column sums o0..o1 of dout (B,OUT), in the batch's order. */
static void bias_grad(real *db, const real *dout, int B, int OUT, int o0, int o1)
{
    enum { CHUNK = 256 };
    for (int c = o0; c < o1; c += CHUNK) { // row by row: vectorised
        int n = o1 - c < CHUNK ? o1 - c : CHUNK;
        real s[CHUNK] = {0};
        for (int i = 0; i < B; i++)
            for (int j = 0; j < n; j++) s[j] += dout[(size_t)i * OUT + c + j];
        memcpy(db + c - o0, s, (size_t)n * sizeof *db);
    }
}

void vae__linear_backward_weights(real *dw, real *db, const real *dout, const real *inp, int B,
                                  int IN, int OUT, int o0, int o1)
{
    // dout is (B,OUT), inp (B,IN); dw is (o1-o0,IN) and db (o1-o0)
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, IN, B, 1, dout + o0, OUT, inp, IN,
              0, dw, IN);
    bias_grad(db, dout, B, OUT, o0, o1);
}

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

size_t vae__wgrad_work(int B, int IN, int rows)
{
    // the product (rows, IN), the bias sums (rows), the live units' indices
    // (rows), then the gathered columns (B, 16-aligned rows): vae__wgrad_begin's order
    size_t r = (size_t)rows;
    return (round16(r * IN) + round16(r) + (size_t)B * round16(r)) * sizeof(real) +
           round16(r) * sizeof(int);
}

/* The units o0..o1 whose dout column is not all zero on the slice (NaN
 * counts as live) into idx; returns their count. */
static int live_units(int *idx, const real *dout, int B, int OUT, int o0, int o1)
{
    int n = 0;
    for (int o = o0; o < o1; o++) {
        int i = 0;
        while (i < B && dout[(size_t)i * OUT + o] == 0) i++;
        if (i < B) idx[n++] = o;
    }
    return n;
}

/* The slice's product of its g->n live units into g->prod (their dout
 * columns gathered into g->cols when some are dead) and all units' bias
 * sums into g->bias. */
static void live_product(vae__wgrad *g, const real *dout, const real *inp, int B)
{
    int rows = g->o1 - g->o0, n = g->n, IN = g->IN, OUT = g->OUT;
    if (n == rows) {
        vae__linear_backward_weights(g->prod, g->bias, dout, inp, B, IN, OUT, g->o0, g->o1);
        return;
    }
    // m product rows: the live columns, then zero columns up to a multiple of 4
    // (a few product shapes, each a cached kernel, instead of one per count)
    int m = (n + 3) / 4 * 4 < rows ? (n + 3) / 4 * 4 : rows, ld = (int)round16(rows);
    for (int i = 0; i < B; i++) {
        real *c = g->cols + (size_t)i * ld;
        for (int j = 0; j < n; j++) c[j] = dout[(size_t)i * OUT + g->idx[j]];
        for (int j = n; j < m; j++) c[j] = 0;
    }
    if (n > 0)
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, IN, B, 1, g->cols, ld, inp, IN, 0,
                  g->prod, IN);
    bias_grad(g->bias, dout, B, OUT, g->o0, g->o1);
}

void vae__wgrad_begin(vae__wgrad *g, real *dw, real *db, int IN, int OUT, int o0, int o1,
                      void *work)
{
    size_t rows = (size_t)(o1 - o0);
    *g = (vae__wgrad){.dw = dw, .db = db, .IN = IN, .OUT = OUT, .o0 = o0, .o1 = o1};
    g->prod = work;
    g->bias = g->prod + round16(rows * IN);
    g->idx = (int *)(g->bias + round16(rows));
    g->cols = (real *)(g->idx + round16(rows)); // 16 ints: 64 bytes, aligned for a real
}

void vae__wgrad_slice(vae__wgrad *g, const real *dout, const real *inp, int B)
{
    int rows = g->o1 - g->o0, IN = g->IN;
    g->n = live_units(g->idx, dout, B, g->OUT, g->o0, g->o1);
    if (g->done++ == 0 && g->n == rows) { // the first slice, every unit live: in place
        vae__linear_backward_weights(g->dw, g->db, dout, inp, B, IN, g->OUT, g->o0, g->o1);
        return;
    }
    live_product(g, dout, inp, B);
    if (g->done == 1) { // the first slice: its rows into place, zeros for its dead units
        memcpy(g->db, g->bias, (size_t)rows * sizeof *g->db);
        for (int o = g->o0, j = 0; o < g->o1; o++) {
            real *row = g->dw + (size_t)(o - g->o0) * IN;
            if (j < g->n && g->idx[j] == o)
                memcpy(row, g->prod + (size_t)j++ * IN, (size_t)IN * sizeof *row);
            else
                memset(row, 0, (size_t)IN * sizeof *row);
        }
        return;
    }
    vae__add_into(g->db, g->bias, (size_t)rows); // later slices: their live rows added
    for (int j = 0; j < g->n; j++)
        vae__add_into(g->dw + (size_t)(g->idx[j] - g->o0) * IN, g->prod + (size_t)j * IN,
                      (size_t)IN);
}

double vae__wgrad_finish(vae__wgrad *g)
{
    size_t rows = (size_t)(g->o1 - g->o0);
    if (g->done == 0) { // no slice had rows: a zero gradient
        memset(g->dw, 0, rows * g->IN * sizeof *g->dw);
        memset(g->db, 0, rows * sizeof *g->db);
    }
    return vae__sum_squares(g->dw, rows * g->IN) + vae__sum_squares(g->db, rows);
}

void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT)
{
    if (dinp) vae__linear_backward_data(dinp, dout, w, B, IN, OUT);
    vae__linear_backward_weights(dw, db, dout, inp, B, IN, OUT, 0, OUT);
}

int vae__serial_here(size_t n) { return omp_get_level() > 0 || n <= 65536; }

void vae__relu_forward(real *x, size_t n)
{
    if (vae__serial_here(n)) {
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void vae__relu_backward(real *dx, const real *out, size_t n)
{
    if (vae__serial_here(n)) {
        for (size_t i = 0; i < n; i++) dx[i] = out[i] > 0 ? dx[i] : 0;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = out[i] > 0 ? dx[i] : 0;
}

/* softplus(x) = log(1 + e^x), without overflow for large x */
static real softplus(real x)
{
    return x > 0 ? x + real_log1p(real_exp(-x)) : real_log1p(real_exp(x));
}

void vae__act_forward(int act, real *x, size_t n)
{
    if (act == VAE_ACT_RELU) {
        vae__relu_forward(x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = act == VAE_ACT_TANH ? real_tanh(x[i]) : softplus(x[i]);
}

void vae__act_backward(int act, real *dx, const real *out, size_t n)
{
    if (act == VAE_ACT_RELU) {
        vae__relu_backward(dx, out, n);
        return;
    }
    // tanh' = 1 - tanh^2; softplus' = sigmoid(x) = 1 - e^-softplus(x)
    for (size_t i = 0; i < n; i++)
        dx[i] *= act == VAE_ACT_TANH ? 1 - out[i] * out[i] : -real_expm1(-out[i]);
}

/* sigmoid without overflow: e^x is only taken of x <= 0 */
static real sigmoid(real x)
{
    if (x >= 0) return 1 / (1 + real_exp(-x));
    real e = real_exp(x);
    return e / (1 + e);
}

void vae__gate_forward(real *out, const real *pre, int B, int H)
{
    for (int b = 0; b < B; b++) {
        const real *a = pre + (size_t)b * 2 * H, *g = a + H;
        real *o = out + (size_t)b * H;
        for (int j = 0; j < H; j++) o[j] = a[j] * sigmoid(g[j]);
    }
}

void vae__gate_backward(real *dpre, const real *dout, const real *pre, int B, int H)
{
    for (int b = 0; b < B; b++) {
        const real *a = pre + (size_t)b * 2 * H, *g = a + H, *dy = dout + (size_t)b * H;
        real *da = dpre + (size_t)b * 2 * H, *dg = da + H;
        for (int j = 0; j < H; j++) {
            real s = sigmoid(g[j]);
            da[j] = dy[j] * s;
            dg[j] = dy[j] * a[j] * s * (1 - s);
        }
    }
}

VAE_VECTOR_CLONES
double vae__sum_squares(const real *x, size_t n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

VAE_VECTOR_CLONES
void vae__add_into(real *restrict x, const real *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}
