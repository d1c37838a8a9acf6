/*
 * vq.h - vector quantisation (VQ-VAE, van den Oord et al. 2017), forward and
 * backward over plain arrays (float or double, like layers.h): the nearest
 * codebook entry of each encoder output, the codebook and commitment loss,
 * the straight-through gradient and the EMA codebook update (the paper's
 * appendix; Sonnet's VectorQuantizerEMA).
 *
 * Shapes: an image's encoder output z_e is (C, P) channel-major (NCHW with P
 * = H*W grid cells), so the vector of cell p is z_e[c*P + p], c < C; the
 * codebook is (K, C), one code per row. Codes are held as real values
 * (exact integers below 2^24) so that they live in the net's activation
 * buffer beside the vectors they index.
 */
#ifndef VAE_VQ_H
#define VAE_VQ_H

#include <stddef.h>

#include "nn/real.h"

/* zq (B,C,P) = the codebook entry nearest (in L2) to each vector of ze
 * (B,C,P), its index into codes (B,P) (ties: the lowest index); returns
 * sum ||ze - zq||^2 over the batch, per image into err_img (B) (may be NULL). */
double vae__vq_forward(real *zq, real *codes, const real *ze, const real *cb, int B, int C,
                       int P, int K, real *err_img);

/* The encoder's gradient: dze = dzq (the straight-through estimator: the
 * decoder's gradient at zq copied to ze) + 2 commit (ze - zq), the gradient
 * of commit ||ze - sg[zq]||^2. n = B*C*P values. Writes dze (may be dzq). */
void vae__vq_backward(real *dze, const real *dzq, const real *ze, const real *zq, real commit,
                      size_t n);

/* The codebook loss's gradient: dcb (K,C) = scale * d/de of
 * sum ||sg[ze] - e_code||^2 = 2 scale (e_k - ze) summed over the vectors
 * assigned to code k. Writes dcb (zero for unused codes). */
void vae__vq_codebook_grad(real *dcb, const real *ze, const real *cb, const real *codes,
                           real scale, int B, int C, int P, int K);

/* A batch's statistics for the EMA update: count (K) how many vectors chose
 * each code, sum (K,C) their sum. Writes both. */
void vae__vq_stats(real *count, real *sum, const real *ze, const real *codes, int B, int C, int P,
                   int K);

/* The EMA update from a batch's count and sum (Sonnet's VectorQuantizerEMA):
 * N_k <- decay N_k + (1 - decay) count_k; m_k <- decay m_k + (1 - decay) sum_k;
 * then the Laplace-smoothed N'_k = (N_k + eps) / (n + K eps) n, n = sum_k N_k,
 * and e_k = m_k / N'_k. cb and ema_sum (K,C), ema_count (K). */
void vae__vq_ema_update(real *cb, real *ema_count, real *ema_sum, const real *count,
                        const real *sum, int K, int C, real decay, real eps);

#endif
