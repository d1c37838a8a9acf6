/* adam.h - the Adam update over flat parameter, gradient and moment buffers. */
#ifndef VAE_ADAM_H
#define VAE_ADAM_H

#include <stddef.h>

#include "vae.h"

/* One Adam step (t counts from 1) over n values with gradient scale * g;
 * serial: the caller splits the parameters between threads. */
void vae__adam_update(float *p, const float *g, float *m, float *v, size_t n, const vae_adam *a,
                      long t, float scale);

#endif
