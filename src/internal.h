/*
 * internal.h - what every part of the library shares (not part of the public
 * API): the error helper and two compiler attributes. The parts have their
 * own headers: nn/ (the math), model/ (the network, the step), io/ (readers
 * and writers). Non-static internals are named vae__*.
 */
#ifndef VAE_INTERNAL_H
#define VAE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vae.h"

#if defined(__GNUC__)
#define VAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VAE_PRINTF(a, b)
#endif

/* Hot loops built for several x86 vector widths, picked at load time by the
 * CPU (GNU ifunc); other compilers and targets get the portable build. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define VAE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VAE_VECTOR_CLONES
#endif

/* ---------------------------------------------------------------- errors */

/* Formats a one-line message into err (may be NULL), sets err->code and
 * returns code, so callers can write `return vae__error(err, VAE_EIO, ...)`. */
int vae__error(vae_error *err, int code, const char *fmt, ...) VAE_PRINTF(3, 4);

#endif /* VAE_INTERNAL_H */
