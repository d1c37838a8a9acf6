/*
 * real.h - the scalar type of the compute core. The layer, loss and network
 * code is written once over `real`: built as float for the library and as
 * double (VAE_REAL_DOUBLE) for the finite-difference gradient checks.
 */
#ifndef VAE_REAL_H
#define VAE_REAL_H

#include <cblas.h>
#include <math.h>

#ifdef VAE_REAL_DOUBLE
typedef double real;
#define real_gemm cblas_dgemm
#define real_exp exp
#define real_log1p log1p
#define real_log log
#define real_sqrt sqrt
#define real_fabs fabs
#define real_tanh tanh
#define real_expm1 expm1
#else
typedef float real;
#define real_gemm vae__sgemm
#define real_exp expf
#define real_log1p log1pf
#define real_log logf
#define real_sqrt sqrtf
#define real_fabs fabsf
#define real_tanh tanhf
#define real_expm1 expm1f
#endif

/* cblas_sgemm's contract, through oneDNN where it can (gemm.c). */
void vae__sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                int ldc);

#endif
