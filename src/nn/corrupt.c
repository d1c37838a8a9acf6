/* corrupt.c - the denoising AE's input corruption (masking or Gaussian). */
#include <stddef.h>

#include "nn/corrupt.h"

void vae__corrupt(float *out, const float *x, int B, int first, int B_total, int D, int noise,
                  float level, vae_rng *rng)
{
    size_t n = (size_t)B * D, at = (size_t)first * D;
    for (size_t i = 0; i < (size_t)B_total * D; i++) {
        float r = noise == VAE_NOISE_MASK ? (float)vae_rng_uniform(rng)
                                          : (float)vae_rng_normal(rng);
        if (i < at || i >= at + n) continue;
        size_t k = i - at;
        out[k] = noise == VAE_NOISE_MASK ? (r < level ? 0.0f : x[k]) : x[k] + level * r;
    }
}
