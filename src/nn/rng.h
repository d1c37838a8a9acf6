/* rng.h - keyed random streams (the generator itself is public, vae.h). */
#ifndef VAE_RNG_H
#define VAE_RNG_H

#include "vae.h"

/* Stream i of seed: a generator that is a function of (seed, i) only, so
 * that work split between threads or processes draws the same numbers. */
void vae__rng_stream(vae_rng *r, uint64_t seed, long i);

#endif
