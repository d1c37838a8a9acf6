/* conv_layers.c - the convolution layers of a conv VAE and nothing else:
 * forward and backward of every conv and transposed-conv layer of a step
 * (batch 128 split over the threads, as vae does), repeated; prints the best
 * and the median step's useful GFLOP/s (the best is what a busy machine
 * lets through least disturbed).
 * usage: conv_layers fmnist|rgb64 [threads=2] [steps=40]
 *   fmnist: 1x28x28, channels 32,64 (the default conv VAE)
 *   rgb64:  3x64x64, channels 32,64,128,256 */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/conv.h"

enum { BATCH = 128, MAXL = 8 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int C, H, W, n, ch[4];
    if (argc > 1 && !strcmp(argv[1], "fmnist")) {
        C = 1, H = W = 28, n = 2, ch[0] = 32, ch[1] = 64;
    } else if (argc > 1 && !strcmp(argv[1], "rgb64")) {
        C = 3, H = W = 64, n = 4, ch[0] = 32, ch[1] = 64, ch[2] = 128, ch[3] = 256;
    } else {
        fprintf(stderr, "usage: conv_layers fmnist|rgb64 [threads] [steps]\n");
        return 2;
    }
    int T = argc > 2 ? atoi(argv[2]) : 2, steps = argc > 3 ? atoi(argv[3]) : 40;
    if (T < 1 || T > BATCH || steps < 1 || steps > 100000) return 2;
    // the encoder's convolutions, then the decoder's transposed ones back up
    vae__conv_geom g[MAXL];
    int c = C, h = H, w = W;
    for (int l = 0; l < n; l++) {
        if (vae__conv_geom_init(&g[l], c, h, w, ch[l], 4, 2, 1)) return 2;
        c = g[l].OC, h = g[l].OH, w = g[l].OW;
    }
    for (int l = 0; l < n; l++) {
        const vae__conv_geom *e = &g[n - 1 - l];
        int oph = e->H - ((e->OH - 1) * 2 - 2 + 4), opw = e->W - ((e->OW - 1) * 2 - 2 + 4);
        if (vae__convt_geom_init(&g[n + l], e->OC, e->OH, e->OW, e->C, 4, 2, 1, oph, opw)) return 2;
    }
    for (int l = 0; l + 1 < 2 * n; l++) // vae's layouts: blocks between two conv layers (net.c)
        if (l != n - 1 && g[l].OC % VAE__CONV_BLOCK == 0) g[l].blk_out = g[l + 1].blk_in = 1;
    double flop = 0; // per image: forward, weight gradient, input gradient (not the first layer's)
    size_t big = 0, wmax = 0;
    for (int l = 0; l < 2 * n; l++) {
        double f = 2.0 * g[l].OC * g[l].C * 16 * (l < n ? g[l].OH * g[l].OW : g[l].H * g[l].W);
        flop += f * (l ? 3 : 2);
        size_t a = (size_t)g[l].C * g[l].H * g[l].W, b = (size_t)g[l].OC * g[l].OH * g[l].OW;
        big = a > big ? a : big, big = b > big ? b : big;
        wmax = (size_t)g[l].C * g[l].OC * 16 > wmax ? (size_t)g[l].C * g[l].OC * 16 : wmax;
    }
    double *t = calloc((size_t)steps, sizeof *t);
    int bad = !t;
#pragma omp parallel num_threads(T) reduction(+ : bad)
    {
        int id = omp_get_thread_num(), B = BATCH * (id + 1) / T - BATCH * id / T;
        size_t col = 0;
        for (int l = 0; l < 2 * n; l++) {
            size_t s = vae__conv_col_size(&g[l], B);
            col = s > col ? s : col;
        }
        float *x = malloc(big * B * sizeof *x), *y = malloc(big * B * sizeof *y);
        float *wt = malloc(wmax * sizeof *wt), *dw = malloc(wmax * sizeof *dw);
        float *b = calloc(512, sizeof *b), *db = malloc(512 * sizeof *db);
        float *scratch = malloc(col * sizeof *scratch);
        if (!x || !y || !wt || !dw || !b || !db || !scratch) bad++;
        for (size_t i = 0; !bad && i < big * B; i++) x[i] = (float)(i % 17) * 0.05f;
        for (size_t i = 0; !bad && i < wmax; i++) wt[i] = (float)(i % 7) * 0.01f;
#pragma omp barrier
        for (int s = -2; s < steps && !bad; s++) { // two warm-up steps
#pragma omp barrier
            double t0 = now();
            for (int l = 0; l < 2 * n; l++)
                (l < n ? vae__conv2d_forward : vae__convt2d_forward)(y, x, wt, b, B, &g[l], scratch);
            for (int l = 2 * n - 1; l >= 0; l--)
                (l < n ? vae__conv2d_backward : vae__convt2d_backward)(l ? y : NULL, dw, db, x, x,
                                                                      wt, B, &g[l], scratch);
#pragma omp barrier
            if (id == 0 && s >= 0) t[s] = now() - t0;
        }
        free(x), free(y), free(wt), free(dw), free(b), free(db), free(scratch);
    }
    if (bad) return 1;
    qsort(t, (size_t)steps, sizeof *t, cmp);
    printf("%.1f %.1f\n", flop * BATCH / t[0] * 1e-9, flop * BATCH / t[steps / 2] * 1e-9);
    free(t);
    return 0;
}
