/* test_gemm.c - vae__sgemm (oneDNN with OpenBLAS behind it) against a direct
 * double-precision sum: every transpose, beta 0 and 1, leading dimensions
 * equal to and wider than the matrix, more shapes than a thread's primitive cache holds,
 * calls inside and outside a parallel region and from a thread that then
 * ends (its cache must be freed: valgrind and LeakSanitizer check that), and
 * the same bits again from a cached primitive. Then the live-unit weight
 * gradient of 1-3 slices (vae__wgrad) against the dense one. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "nn/layers.h"
#include "nn/real.h"
#include "test.h"

enum { MAXD = 97, SHAPES = 160 }; // SHAPES > the cache's 128 entries

/* C (M,N; ldc) = op(A) op(B) (+ C0 when beta is 1), element by element in
 * double. Rows wider than the matrix (pad > 0) are what oneDNN 2.6's brgemm
 * kernels refuse: those products take its gemm:jit ones. */
static int product_ok(int ta, int tb, int M, int N, int K, float beta, int pad, unsigned seed)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (ta ? K : M) * lda);
    float *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    if (!A || !B || !C || !C0) return 0;
    for (int i = 0; i < (ta ? K : M) * lda; i++) A[i] = (float)((seed + 7 * i) % 19) / 9 - 1;
    for (int i = 0; i < (tb ? N : K) * ldb; i++) B[i] = (float)((seed + 5 * i) % 23) / 11 - 1;
    for (int i = 0; i < M * ldc; i++) C[i] = C0[i] = (float)(i % 5) - 2;
    vae__sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
               K, 1, A, lda, B, ldb, beta, C, ldc);
    int ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = beta ? C0[i * ldc + j] : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b, mag += fabs(a * b);
            }
            if (!(fabs(C[i * ldc + j] - s) <= 1e-6 * mag + 1e-6)) ok = 0;
        }
        for (int j = N; j < ldc; j++) // the padding is not written
            if (C[i * ldc + j] != C0[i * ldc + j]) ok = 0;
    }
    free(A), free(B), free(C), free(C0);
    return ok;
}

/* shapes s0.. of the sweep: all four transposes and both betas */
static int sweep(int s0, int n)
{
    int bad = 0;
    for (int s = s0; s < s0 + n; s++) {
        int M = 1 + (s * 37) % MAXD, N = 1 + (s * 53) % MAXD, K = 1 + (s * 29) % MAXD;
        bad += !product_ok(s & 1, (s >> 1) & 1, M, N, K, (s >> 2) & 1 ? 1.0f : 0.0f,
                           s % 3 == 2 ? 3 : 0, (unsigned)s);
    }
    return bad;
}

/* vae__wgrad over rows o0..o1 of a (B=37, IN=29, OUT=40) layer for slices
 * s < n whose dout columns are zero where dead[s][o], written over garbage:
 * against the slices' dense gradients, and bit for bit the sum in slice
 * order of each slice's gradient on its own (what processes add). Units dead
 * in every slice must come out exactly zero, the bias sums bit for bit. */
static int live_ok(char dead[3][40], int n, int o0, int o1)
{
    enum { B = 37, IN = 29, OUT = 40, W = OUT * IN + OUT };
    static float dout[3][B * OUT], inp[3][B * IN], dw[OUT * IN], db[OUT], ref[3][W], one[3][W];
    static unsigned char work[1 << 16];
    int rows = o1 - o0, ok = 1;
    if (vae__wgrad_work(B, IN, rows) > sizeof work) return 0;
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < B * OUT; i++)
            dout[s][i] = dead[s][i % OUT] ? 0 : (float)((i * 7 + s) % 23) / 11 - 1;
        for (int i = 0; i < B * IN; i++) inp[s][i] = (float)((i * 5 + s) % 19) / 9;
        vae__linear_backward_weights(ref[s], ref[s] + OUT * IN, dout[s], inp[s], B, IN, OUT, o0,
                                     o1);
        vae__wgrad g; // this slice alone
        vae__wgrad_begin(&g, one[s], one[s] + OUT * IN, IN, OUT, o0, o1, work);
        vae__wgrad_slice(&g, dout[s], inp[s], B);
        vae__wgrad_finish(&g);
    }
    for (int i = 0; i < rows * IN; i++) dw[i] = NAN;
    for (int i = 0; i < rows; i++) db[i] = NAN;
    vae__wgrad g;
    vae__wgrad_begin(&g, dw, db, IN, OUT, o0, o1, work);
    for (int s = 0; s < n; s++) vae__wgrad_slice(&g, dout[s], inp[s], B);
    double ss = vae__wgrad_finish(&g), want = 0;
    for (int i = 0; i < rows * IN + rows; i++) {
        float got = i < rows * IN ? dw[i] : db[i - rows * IN];
        int r = i < rows * IN ? i : OUT * IN + i - rows * IN; // the index in ref and one
        float dense = 0, sum = one[0][r];
        int all_dead = 1;
        for (int s = 0; s < n; s++) {
            dense += ref[s][r];
            if (s) sum += one[s][r];
            all_dead = all_dead && dead[s][o0 + (i < rows * IN ? i / IN : i - rows * IN)];
        }
        if (!(fabsf(got - dense) <= 1e-5f * n) || memcmp(&got, &sum, sizeof got) ||
            (all_dead && got != 0))
            ok = 0;
        if (i >= rows * IN && got != dense) ok = 0; // the bias: the same sums, no product
        want += (double)got * got;
    }
    return ok && fabs(ss - want) <= 1e-9 * want;
}

static void *thread_sweep(void *p)
{
    *(int *)p = sweep(0, 12);
    return NULL;
}

int main(void)
{
    CHECK_EQ(sweep(0, SHAPES), 0);      // outside a parallel region, evicting entries
    CHECK_EQ(sweep(0, 8), 0);           // the first shapes again, rebuilt
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    bad += sweep(omp_get_thread_num() * 20, 20); // each thread its own cache
    CHECK_EQ(bad, 0);

    pthread_t th;
    int tbad = -1;
    CHECK_EQ(pthread_create(&th, NULL, thread_sweep, &tbad), 0);
    pthread_join(th, NULL);
    CHECK_EQ(tbad, 0);

    // a cached primitive gives the bits it gave the first time
    enum { M = 64, N = 80, K = 96 };
    static float A[M * K], B[K * N], C1[M * N], C2[M * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 17) * 0.1f - 0.7f;
    for (int i = 0; i < K * N; i++) B[i] = (float)(i % 13) * 0.07f - 0.4f;
    vae__sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C1, N);
    vae__sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C2, N);
    CHECK(!memcmp(C1, C2, sizeof C1));
    // the same shape accumulating is another primitive: C2 = C1 + A B = 2 C1
    vae__sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 1, C2, N);
    double off = 0;
    for (int i = 0; i < M * N; i++) off = fmax(off, fabs(C2[i] - 2 * C1[i]));
    CHECK(off < 1e-4);
    // alpha other than 1 (OpenBLAS's path)
    vae__sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 2, A, K, B, N, 0, C2, N);
    double worst = 0;
    for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C2[i] - 2 * C1[i]));
    CHECK(worst < 1e-4);

    char dead[3][40] = {{0}};
#pragma omp parallel num_threads(1) // oneDNN's path, as in training
    for (int n = 1; n <= 3; n++) {
        memset(dead, 0, sizeof dead);
        CHECK(live_ok(dead, n, 0, 40)); // every unit live: the dense product itself
        CHECK(live_ok(dead, n, 7, 33));
        for (int s = 0; s < 3; s++) // some dead, not the same in every slice
            for (int o = 0; o < 40; o++) dead[s][o] = (o + s) % 3 == 1 || (o > 20 && o < 27);
        CHECK(live_ok(dead, n, 0, 40)); // gathered, padded, scattered, combined
        CHECK(live_ok(dead, n, 5, 30));
        CHECK(live_ok(dead, n, 21, 27)); // all dead
        for (int s = 0; s < 3; s++) dead[s][0] = dead[s][39] = 1;
        CHECK(live_ok(dead, n, 0, 40));
        memset(dead[0], 1, sizeof dead[0]); // the first slice all dead, the others not
        CHECK(live_ok(dead, n, 0, 40));
    }
    return TEST_REPORT();
}
