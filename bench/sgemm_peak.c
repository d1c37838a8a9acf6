/* sgemm_peak.c - the machine's measured sgemm ceiling: the best of several
 * large square products through OpenBLAS, in GFLOP/s.
 * usage: sgemm_peak [N=2048] [threads=0 (all)] [reps=5] */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048, threads = argc > 2 ? atoi(argv[2]) : 0;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || reps < 1) return 2;
    if (threads > 0) openblas_set_num_threads(threads);
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b);
    float *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f, c[i] = 0;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) { // the first run warms up
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = now() - t;
        if (r > 0 && t < best) best = t;
    }
    printf("%.1f\n", 2.0 * n * n * n / best * 1e-9);
    free(a), free(b), free(c);
    return 0;
}
