/*
 * vae/core.h - what every part of libvae's API uses: the version, status
 * codes and messages, and the project's own random numbers.
 *
 *     vae_error err;
 *     vae_dataset *train, *test;
 *     if (vae_data_open("data.csv", NULL, &train, &test, &err) != VAE_OK)
 *         fprintf(stderr, "%s (%s)\n", err.msg, vae_strerror(err.code));
 *
 *     vae_rng r;                       // the same numbers on every platform
 *     vae_rng_seed(&r, 1);
 *     double z = vae_rng_normal(&r);
 */
#ifndef VAE_API_CORE_H
#define VAE_API_CORE_H

#include <stddef.h>
#include <stdint.h>

#define VAE_VERSION "0.2.0" /* 0.2: the model verbs renamed, labels per call (docs/api.md) */

#if defined(__GNUC__)
#define VAE_API __attribute__((visibility("default")))
#else
#define VAE_API
#endif


#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "0.2.0": VAE_VERSION of the libvae the program runs
 * with (a shared libvae may be newer than the header it was built with). */
VAE_API const char *vae_version(void);

/* ---------------------------------------------------------------- errors */

#define VAE_ERRNO_MAP(XX)                                  \
    XX(OK, 0, "success")                                   \
    XX(EINVAL, -1, "invalid argument")                     \
    XX(ENOMEM, -2, "out of memory")                        \
    XX(EIO, -3, "input/output error")                      \
    XX(ENOENT, -4, "no such file or directory")            \
    XX(EFORMAT, -5, "malformed or corrupt file")           \
    XX(ESHAPE, -6, "shape mismatch")                       \
    XX(ENUMERIC, -7, "non-finite number")                  \
    XX(EUNSUPPORTED, -8, "unsupported feature")

typedef enum {
#define VAE_XX_(name, code, text) VAE_##name = code,
    VAE_ERRNO_MAP(VAE_XX_)
#undef VAE_XX_
} vae_status;

/* Static English text for a status code ("unknown error" if not one). */
VAE_API const char *vae_strerror(int code);

/* Where calls without a handle put their message. */
typedef struct vae_error {
    int code;
    char msg[512];
} vae_error;

/* ------------------------------------------------------------------- rng */

/* The project's own PRNG (xoshiro256** seeded by splitmix64): the same
 * numbers on every platform and libc. Plain state, so it can be saved. */
typedef struct vae_rng {
    uint64_t s[4];
    int has_spare;  /* Box-Muller makes normals in pairs */
    double spare;
} vae_rng;

VAE_API void vae_rng_seed(vae_rng *r, uint64_t seed);
VAE_API uint64_t vae_rng_u64(vae_rng *r);
VAE_API double vae_rng_uniform(vae_rng *r);      /* [0, 1), 53 bits */
VAE_API double vae_rng_normal(vae_rng *r);       /* N(0, 1) */
VAE_API uint64_t vae_rng_below(vae_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

/* The state as text (VAE_RNG_TEXT bytes with the NUL) and back, exactly:
 * for checkpoints. vae_rng_parse returns VAE_EINVAL and leaves r alone on
 * malformed text. */
#define VAE_RNG_TEXT 96
VAE_API void vae_rng_format(const vae_rng *r, char out[VAE_RNG_TEXT]);
VAE_API int vae_rng_parse(vae_rng *r, const char *text);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_CORE_H */
