/* step_gemms.c - the GEMMs of one training step of the default model
 * (784-400-20-400-784, batch 128) and nothing else, for an epoch's worth of
 * steps: how fast sgemm runs at the training shapes, in GFLOP/s.
 * usage: step_gemms [threads=2]  (each thread takes half the batch, as vae does)
 * The products go through libvae's vae__sgemm (oneDNN, or OpenBLAS without
 * it; VAE_GEMM=blas forces OpenBLAS), as training's do. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/real.h"

enum { STEPS = 469, BATCH = 128, BUF = 128 * 800 };
static const int layers[4][2] = {{784, 400}, {400, 40}, {20, 400}, {400, 784}};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* forward, then backward: input gradients (all but the first layer) and weight gradients */
static void step(int B, float **a)
{
    for (int l = 0; l < 4; l++) {
        int IN = layers[l][0], OUT = layers[l][1];
        vae__sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1, a[0], IN, a[1], IN, 1,
                    a[2], OUT);
    }
    for (int l = 3; l >= 0; l--) {
        int IN = layers[l][0], OUT = layers[l][1];
        if (l)
            vae__sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1, a[2], OUT, a[1],
                        IN, 0, a[3], IN);
        vae__sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B, 1, a[2], OUT, a[0], IN, 0,
                    a[4], IN);
    }
}

int main(int argc, char **argv)
{
    int T = argc > 1 ? atoi(argv[1]) : 2;
    if (T < 1 || T > BATCH) return 2;
    double flop = 0;
    for (int l = 0; l < 4; l++) flop += 2.0 * layers[l][0] * layers[l][1] * (l ? 3 : 2);
    double t0 = 0, t1 = 0;
    int bad = 0;
#pragma omp parallel num_threads(T) reduction(+ : bad)
    {
        int b = BATCH * (omp_get_thread_num() + 1) / T - BATCH * omp_get_thread_num() / T;
        float *a[5];
        for (int i = 0; i < 5; i++) {
            a[i] = malloc(BUF * 4 * sizeof(float));
            if (!a[i]) bad++;
            else for (int j = 0; j < BUF * 4; j++) a[i][j] = (float)(j % 13) * 0.01f;
        }
        if (!bad) step(b, a); // warm-up
#pragma omp barrier
#pragma omp master
        t0 = now();
        for (int s = 0; s < STEPS && !bad; s++) step(b, a);
#pragma omp barrier
#pragma omp master
        t1 = now();
        for (int i = 0; i < 5; i++) free(a[i]);
    }
    if (bad) return 1;
    printf("%.1f\n", flop * BATCH * STEPS / (t1 - t0) * 1e-9);
    return 0;
}
