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

void vae__linear_backward_weights(real *dw, real *db, const real *dout, const real *inp, int B,
                                  int IN, int OUT, int o0, int o1)
{
    // dout is (B,OUT), inp (B,IN); dw is (o1-o0,IN) and db (o1-o0)
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, IN, B, 1, dout + o0, OUT, inp, IN,
              0, dw, IN);
    enum { CHUNK = 256 };
    for (int c = o0; c < o1; c += CHUNK) { // row by row: vectorised, and in the batch's order
        int n = o1 - c < CHUNK ? o1 - c : CHUNK;
        real s[CHUNK] = {0};
        for (int i = 0; i < B; i++)
            for (int j = 0; j < n; j++) s[j] += dout[(size_t)i * OUT + c + j];
        memcpy(db + c - o0, s, (size_t)n * sizeof *db);
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
