/* layers.c - linear and ReLU layers, forward and backward (float or double). */
#include <string.h>

#include "layers.h"

void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT)
{
    // inp is (B,IN), w is (OUT,IN), b is (OUT), out is (B,OUT)
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
    real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1, inp, IN, w, IN, 1, out, OUT);
}

void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT)
{
    // dout is (B,OUT); dinp is (B,IN), dw is (OUT,IN), db is (OUT)
    if (dinp)
        real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1, dout, OUT, w, IN, 0,
                  dinp, IN);
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B, 1, dout, OUT, inp, IN, 0, dw, IN);
    memset(db, 0, (size_t)OUT * sizeof *db);
    for (int i = 0; i < B; i++) {
        const real *row = dout + (size_t)i * OUT;
        for (int j = 0; j < OUT; j++) db[j] += row[j];
    }
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
