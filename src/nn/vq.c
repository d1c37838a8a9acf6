/* vq.c - vector quantisation: nearest codes, the codebook and commitment
 * loss, the straight-through gradient and the EMA update (float or double). */
#include <string.h>

#include "nn/vq.h"

double vae__vq_forward(real *zq, real *codes, const real *ze, const real *cb, int B, int C,
                       int P, int K, real *err_img)
{
    double total = 0;
    for (int b = 0; b < B; b++) {
        const real *x = ze + (size_t)b * C * P;
        real *q = zq + (size_t)b * C * P;
        double img = 0;
        for (int p = 0; p < P; p++) {
            // a plain scan: K x C is a few thousand multiply-adds a cell,
            // small beside the conv layers around it
            int best = 0;
            double best_d = 0;
            for (int k = 0; k < K; k++) {
                const real *e = cb + (size_t)k * C;
                double dist = 0;
                for (int c = 0; c < C; c++) {
                    double t = (double)x[(size_t)c * P + p] - (double)e[c];
                    dist += t * t;
                }
                if (k == 0 || dist < best_d) best = k, best_d = dist;
            }
            codes[(size_t)b * P + p] = (real)best;
            const real *e = cb + (size_t)best * C;
            for (int c = 0; c < C; c++) q[(size_t)c * P + p] = e[c];
            img += best_d;
        }
        if (err_img) err_img[b] = (real)img;
        total += img;
    }
    return total;
}

void vae__vq_backward(real *dze, const real *dzq, const real *ze, const real *zq, real commit,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) dze[i] = dzq[i] + 2 * commit * (ze[i] - zq[i]);
}

void vae__vq_codebook_grad(real *dcb, const real *ze, const real *cb, const real *codes,
                           real scale, int B, int C, int P, int K)
{
    memset(dcb, 0, (size_t)K * C * sizeof *dcb);
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++) {
            int k = (int)codes[(size_t)b * P + p];
            const real *x = ze + (size_t)b * C * P;
            for (int c = 0; c < C; c++)
                dcb[(size_t)k * C + c] += 2 * scale * (cb[(size_t)k * C + c] - x[(size_t)c * P + p]);
        }
}

void vae__vq_stats(real *count, real *sum, const real *ze, const real *codes, int B, int C, int P,
                   int K)
{
    memset(count, 0, (size_t)K * sizeof *count);
    memset(sum, 0, (size_t)K * C * sizeof *sum);
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++) {
            int k = (int)codes[(size_t)b * P + p];
            const real *x = ze + (size_t)b * C * P;
            count[k] += 1;
            for (int c = 0; c < C; c++) sum[(size_t)k * C + c] += x[(size_t)c * P + p];
        }
}

void vae__vq_ema_update(real *cb, real *ema_count, real *ema_sum, const real *count,
                        const real *sum, int K, int C, real decay, real eps)
{
    double n = 0;
    for (int k = 0; k < K; k++) {
        ema_count[k] = decay * ema_count[k] + (1 - decay) * count[k];
        n += ema_count[k];
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)k * C + c;
            ema_sum[i] = decay * ema_sum[i] + (1 - decay) * sum[i];
        }
    }
    if (!(n > 0)) return; // no counts at all (never, with the counts started at 1)
    // Laplace smoothing keeps a code no vector chose from dividing by zero
    for (int k = 0; k < K; k++) {
        double nk = ((double)ema_count[k] + eps) / (n + K * (double)eps) * n;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)k * C + c;
            cb[i] = (real)(ema_sum[i] / nk);
        }
    }
}
