/* layers.c - linear and ReLU layers, forward and backward (float or double). */
#include <string.h>

#include "internal.h"
#include "layers.h"

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

/* The parts of vae__linear_backward_live's work area, for rows = o1 - o0:
 * the product (rows, IN), the bias sums (rows), the gathered columns (B,
 * 16-aligned rows) and the live units' indices (rows). */
size_t vae__linear_live_work(int B, int IN, int rows)
{
    size_t r = (size_t)rows;
    return (round16(r * IN) + round16(r) + (size_t)B * round16(r)) * sizeof(real) +
           r * sizeof(int);
}

void vae__linear_backward_live(real *dw, real *db, const real *dout, const real *inp, int B,
                               int IN, int OUT, int o0, int o1, int add, void *work)
{
    int rows = o1 - o0;
    real *prod = work, *bias = prod + round16((size_t)rows * IN), *cols = bias + round16(rows);
    int *idx = (int *)(cols + (size_t)B * round16(rows)), n = 0;
    for (int o = o0; o < o1; o++) { // NaN counts as live
        int i = 0;
        while (i < B && dout[(size_t)i * OUT + o] == 0) i++;
        if (i < B) idx[n++] = o;
    }
    real *out = add ? prod : dw, *bsum = add ? bias : db; // written in place, or then added
    if (n == rows) {
        vae__linear_backward_weights(out, bsum, dout, inp, B, IN, OUT, o0, o1);
    } else {
        // m product rows: the live columns, then zero columns up to a multiple of 4
        // (a few product shapes, each a cached kernel, instead of one per count)
        int m = (n + 3) / 4 * 4 < rows ? (n + 3) / 4 * 4 : rows, ld = (int)round16(rows);
        for (int i = 0; i < B; i++) {
            real *c = cols + (size_t)i * ld;
            for (int j = 0; j < n; j++) c[j] = dout[(size_t)i * OUT + idx[j]];
            for (int j = n; j < m; j++) c[j] = 0;
        }
        if (n > 0)
            real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, IN, B, 1, cols, ld, inp, IN, 0,
                      out, IN);
        bias_grad(bsum, dout, B, OUT, o0, o1);
        if (!add) { // product row j is unit idx[j]'s (idx[j] - o0 >= j: move from the last)
            for (int j = n - 1; j >= 0; j--)
                if (idx[j] - o0 != j)
                    memcpy(dw + (size_t)(idx[j] - o0) * IN, dw + (size_t)j * IN,
                           (size_t)IN * sizeof *dw);
            for (int o = o0, j = 0; o < o1; o++) { // the dead units' rows: zero
                if (j < n && idx[j] == o) j++;
                else memset(dw + (size_t)(o - o0) * IN, 0, (size_t)IN * sizeof *dw);
            }
        }
    }
    if (add) {
        vae__add_into(db, bias, (size_t)rows);
        for (int j = 0; j < n; j++)
            vae__add_into(dw + (size_t)(idx[j] - o0) * IN, prod + (size_t)j * IN, (size_t)IN);
    }
}

void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT)
{
    if (dinp) vae__linear_backward_data(dinp, dout, w, B, IN, OUT);
    vae__linear_backward_weights(dw, db, dout, inp, B, IN, OUT, 0, OUT);
}

void vae__relu_forward(real *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void vae__relu_backward(real *dx, const real *out, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] = out[i] > 0 ? dx[i] : 0;
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
