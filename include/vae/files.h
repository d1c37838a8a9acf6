/*
 * vae/files.h - crash-safe writes, safe whole-file reads and PNG grids of images.
 *
 *     // 64 decoded 28x28 images as an 8x8 grid, each pixel drawn 2x2
 *     vae_write_png_grid("samples.png", images, 64, 1, 28, 28, 8, 2, 2, &err);
 */
#ifndef VAE_API_FILES_H
#define VAE_API_FILES_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ files */

/* Writes len bytes to path crash-safely: a temporary file in the same
 * directory, fsync'd, renamed over path, the directory fsync'd. On failure
 * (a full disk included) path is untouched and no temporary is left. */
VAE_API int vae_write_file(const char *path, const void *data, size_t len, vae_error *err);

/* Removes the temporaries vae_write_file left beside path when its process
 * was killed mid-write (their writer's PID is in their name; those of a
 * running process are kept). Returns how many were removed, or a negative
 * code. */
VAE_API int vae_remove_stale_temps(const char *path, vae_error *err);

/* Reads a whole regular file of at most max bytes into *data (malloc'd,
 * NUL-terminated, caller frees), its length in *len. A FIFO, device,
 * socket or directory is refused without blocking, the message saying what
 * it is. */
VAE_API int vae_read_file(const char *path, size_t max, void **data, size_t *len, vae_error *err);

/* --------------------------------------------------------------- pictures */

/* Writes n images (each c x h x w floats in [0,1], c = 1 or 3) as one PNG
 * grid with `cols` columns, a `border`-pixel gap and each pixel drawn
 * `scale` x `scale`. Atomic like vae_model_save. */
VAE_API int vae_write_png_grid(const char *path, const float *images, int n, int c, int h,
                               int w, int cols, int border, int scale, vae_error *err);

/* The same grid as PNG bytes in memory: *png (malloc'd, caller frees) and
 * *len; on failure *png is NULL. For a server, a pipe, an embedder. */
VAE_API int vae_png_grid_encode(const float *images, int n, int c, int h, int w, int cols,
                                int border, int scale, unsigned char **png, size_t *len,
                                vae_error *err);

/* Decodes one PNG held in memory into out (c x h x w floats in [0,1],
 * planar, as vae_dataset_batch gives them), checked as strictly as a PNG
 * folder's files: the same reader and limits (palettes expanded, 16 bits
 * scaled, alpha composited onto black); it must be exactly w x h (checked
 * from the header, before the pixels are decoded); c = 3 takes grey images
 * (replicated), c = 1 refuses colour ones. VAE_EFORMAT for a bad PNG,
 * VAE_ESHAPE for a wrong size. */
VAE_API int vae_png_decode_image(const void *buf, size_t len, int c, int h, int w, float *out,
                                 vae_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_FILES_H */
