/*
 * io.h - the library's readers and writers (not part of the public API):
 * IDX, safetensors, PNG (files and folders), CSV, resizing, and the data
 * set they all fill.
 */
#ifndef VAE_IO_H
#define VAE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* ----------------------------------------------------------------- files */

struct stat;
/* Opens path for reading: a regular file, else an error saying what it is
 * (opened with O_NONBLOCK, so a FIFO or device never blocks us). *fd is
 * blocking again and close-on-exec; *st (may be NULL) its fstat. Every
 * reader goes through here. */
int vae__open_read(const char *path, int *fd, struct stat *st, vae_error *err);
/* "a FIFO (named pipe)", "a directory", ...: what a stat mode is, for messages. */
const char *vae__file_kind(unsigned mode);

/* vae_write_file (vae.h) of the parts one after another: a file written
 * from the buffers where its pieces already are, without a copy of it whole. */
typedef struct vae__part {
    const void *data;
    size_t len;
} vae__part;
int vae__write_parts(const char *path, const vae__part *parts, int n_parts, vae_error *err);

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
/* A metadata value (or part of one) as a whole decimal int in [lo, hi]:
 * 0, or -1 when s is NULL, empty, not a number or out of range. */
int vae__parse_int(const char *s, int lo, int hi, int *out);
int vae__st_meta_count(const vae__st_file *f);
void vae__st_meta_at(const vae__st_file *f, int i, const char **key, const char **value);
/* A copy of f's metadata that outlives f, as a NULL-terminated key, value,
 * key, value ... array (what vae_model_meta and its kin search); NULL when
 * out of memory. vae__meta_get looks a key up; vae__meta_free frees it. */
char **vae__st_meta_copy(const vae__st_file *f);
const char *vae__meta_get(char *const *meta, const char *key);
void vae__meta_free(char **meta);

/* ---------------------------------------------------------- data sets */

#define VAE_MAX_SIDE 4096 /* image width and height limit, every format */

struct vae_dataset {
    uint8_t *images;  /* n x c*h*w */
    uint8_t *labels;  /* n, or NULL when unlabelled */
    size_t n;
    int c, h, w;
    char *path;       /* the images file (IDX), folder (PNG) or CSV file */
    const char *kind; /* static: "IDX", "PNG folder", "CSV", "buffer" */
    char split[96];   /* where the split came from */
    char **classes;   /* num_classes names (PNG class folders), or NULL */
    int num_classes;  /* 0: unlabelled */
    size_t skipped;
    int resized;
    size_t map_len;   /* images is a mapped temporary file of this length (0: malloc'd) */
    size_t budget;    /* image bytes it may keep in memory (0: no limit) */
};

/* Bytes of images a data set may keep in memory: max_memory, or when 0
 * half the physical memory (SIZE_MAX if unknown). */
size_t vae__memory_budget(size_t max_memory);

/* Memory for `bytes` of images: malloc'd when they fit the budget (0: half
 * the physical memory), else a temporary file ($VAE_TMPDIR, $TMPDIR or
 * /var/tmp; unlinked
 * at once, its blocks reserved so a full disk fails here and not later)
 * mapped shared, which the kernel pages to and from disk. *map_len is the
 * mapping's length, 0 for malloc. NULL with err set on failure. */
uint8_t *vae__images_alloc(size_t bytes, size_t budget, size_t *map_len, const char *name,
                           vae_error *err);
void vae__images_free(uint8_t *p, size_t map_len);

/* A data set owning images and labels (may be NULL); path is copied. On
 * failure images and labels are freed. num_classes is max label + 1. */
int vae__dataset_wrap(uint8_t *images, uint8_t *labels, size_t n, int c, int h, int w,
                      const char *kind, const char *path, vae_dataset **out, vae_error *err);

/* Moves a seeded fraction of ds's images (vae_dataset_split's rule) into a
 * new *test; ds keeps the rest, in order. On failure ds is unchanged. */
int vae__dataset_hold_out(vae_dataset *ds, double fraction, uint64_t seed, vae_dataset **test,
                          vae_error *err);

/* A folder of PNG images (layout rules in vae.h, vae_data_open). *test is
 * NULL when the folder has no test/ sub-folder. */
int vae__open_pngdir(const char *dir, const vae_data_options *o, vae_dataset **train,
                     vae_dataset **test, vae_error *err);

/* CSV text buf[0..len) (named `name` in messages) into a data set. */
int vae__csv_parse(const char *buf, size_t len, const char *name, const vae_data_options *o,
                   vae_dataset **out, vae_error *err);
/* Reads a CSV file (raw or gzip) and parses it. */
int vae__open_csv(const char *path, const vae_data_options *o, vae_dataset **out, vae_error *err);

/* ---------------------------------------------------------------- PNG */

/* Reads a PNG's header from buf: size and channels after normalisation (1:
 * grey, or a palette of greys; 3: colour). Limits: VAE_MAX_SIDE. */
int vae__png_probe(const uint8_t *buf, size_t len, const char *name, uint32_t *w, uint32_t *h,
                   int *c, vae_error *err);
/* Decodes a PNG to 8 bits, interleaved (h x w x c), c = 1 or 3 (grey is
 * replicated into RGB; c = 1 of a colour image is an error). Palettes are
 * expanded, 16-bit samples scaled to 8 with rounding, interlacing undone,
 * alpha (and tRNS) composited onto black: v * a / 255, rounded. *out is
 * malloc'd (caller frees); *w, *h are set. */
int vae__png_decode(const uint8_t *buf, size_t len, const char *name, int c, uint8_t **out,
                    uint32_t *w, uint32_t *h, vae_error *err);

/* Resamples an interleaved 8-bit image (sw x sh x c) to dw x dh x c: area
 * averaging along an axis that shrinks, bilinear (pixel centres, edges
 * clamped) along one that grows, the identity along one that keeps its
 * size. Returns VAE_ENOMEM or VAE_OK. */
int vae__resize_u8(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh);

#endif
