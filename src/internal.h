/*
 * internal.h - declarations shared by the library's source files (not part
 * of the public API). Non-static internals are named vae__*.
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

/* ----------------------------------------------------------------- files */

/* Test hook: when >= 0, vae_write_file (vae.h) fails with ENOSPC after
 * writing this many bytes, as on a full disk. -1 (normal) otherwise. */
extern long vae__fault_write_after;

/* ----------------------------------------------------------------- IDX */

#define VAE_IDX_MAX_BYTES ((uint64_t)1 << 32) /* cap on decompressed payload */

/* Reads an IDX file of unsigned bytes (type 0x08), raw or gzip, validating
 * magic, rank (== want_ndim), dimensions, exact payload length (no
 * truncation, no trailing bytes) and the cap. On success *data is
 * malloc'd (caller frees) and dims[0..want_ndim) are set. */
int vae__idx_read_u8(const char *path, int want_ndim, uint8_t **data, uint32_t *dims,
                     vae_error *err);

/* ----------------------------------------------------------- safetensors */

#define VAE_ST_MAX_HEADER 100000000u /* as the reference implementation */
#define VAE_ST_MAX_DIMS 8

typedef struct vae__st_tensor {
    const char *name;
    int ndim;
    int64_t shape[VAE_ST_MAX_DIMS];
    const float *data;  /* F32, little-endian on disk, numel values */
} vae__st_tensor;

/* Serialises F32 tensors plus string metadata (NULL-terminated key, value
 * list, may be NULL) into a safetensors file: tensors sorted by name, JSON
 * header padded with spaces to a multiple of 8. Written atomically. */
int vae__st_write(const char *path, const vae__st_tensor *t, int n, const char *const *meta,
                  vae_error *err);

typedef struct vae__st_file vae__st_file;

/* Reads and fully validates a safetensors file (rules: shared/reliability.md 1.1, 2). */
int vae__st_read(const char *path, vae__st_file **out, vae_error *err);
void vae__st_free(vae__st_file *f);
int vae__st_count(const vae__st_file *f);
/* The tensor called name, or NULL. data points into f (F32 only). */
const vae__st_tensor *vae__st_find(const vae__st_file *f, const char *name);
const vae__st_tensor *vae__st_at(const vae__st_file *f, int i);
/* Metadata value for key, or NULL. */
const char *vae__st_meta(const vae__st_file *f, const char *key);
int vae__st_meta_count(const vae__st_file *f);
void vae__st_meta_at(const vae__st_file *f, int i, const char **key, const char **value);

#endif /* VAE_INTERNAL_H */
