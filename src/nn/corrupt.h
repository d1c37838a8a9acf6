/* corrupt.h - the denoising AE's input corruption: a forward term with no
 * backward pair (the input takes no gradient). */
#ifndef VAE_CORRUPT_H
#define VAE_CORRUPT_H

#include "vae.h"

/* out (B,D) = rows first..first+B of a global batch of B_total rows x (B,D
 * here: x holds this shard's rows only), corrupted: VAE_NOISE_MASK zeroes
 * each value with probability level, VAE_NOISE_GAUSSIAN adds level * N(0,1).
 * One draw per value of the whole global batch, in order, the other rows'
 * dropped: every process of a data-parallel run corrupts its rows as one
 * process would, and rng ends in the same state. */
void vae__corrupt(float *out, const float *x, int B, int first, int B_total, int D, int noise,
                  float level, vae_rng *rng);

#endif
