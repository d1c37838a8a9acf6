/*
 * vae.h - the public API of libvae, a Variational Autoencoder toolkit in C.
 *
 * Conventions
 *   - Every fallible call returns int: VAE_OK (0) or a negative VAE_E* code.
 *     vae_strerror(code) names the code; the detailed one-line message goes to
 *     the vae_error the caller passed (may be NULL) or, for calls on a model,
 *     to vae_model_errmsg(model).
 *   - The library never prints, exits or aborts on bad input.
 *   - Handles are opaque; *_free(NULL) is a no-op.
 *   - Images travel as float rows of D = channels*height*width values in
 *     [0,1], row-major (batch, channel, height, width).
 *   - Enums are append-only.
 *
 * The API in parts, each opening with a short worked example:
 *   vae/core.h   version, status codes, random numbers
 *   vae/model.h  configuration, training, encode/decode, checkpoints
 *   vae/data.h   data sets (MNIST layout, PNG folders, CSV, memory)
 *   vae/eval.h   ELBO, log-likelihood, KL per dimension, PCA
 *   vae/files.h  crash-safe writes, PNG grids
 *   vae/score.h  a classifier of the data, Fréchet distance, latent probes
 */
#ifndef VAE_H
#define VAE_H

#include "vae/core.h"
#include "vae/data.h"
#include "vae/eval.h"
#include "vae/files.h"
#include "vae/model.h"
#include "vae/prior.h"
#include "vae/score.h"

#endif /* VAE_H */
