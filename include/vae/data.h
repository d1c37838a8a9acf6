/*
 * vae/data.h - data sets: an MNIST-layout directory, a folder of PNGs, a
 * CSV file or the caller's own memory, and batches of them as floats.
 *
 *     vae_data_options opt;
 *     vae_data_options_default(&opt);
 *     vae_dataset *train, *test;
 *     if (vae_data_open("/usr/share/datasets/fashion-mnist", &opt, &train, &test,
 *                       &err) != VAE_OK) ...
 *     uint32_t idx[2] = {0, 1};
 *     vae_dataset_batch(train, idx, 2, VAE_BINARIZE_NONE, 0, NULL, x); // x: 2 x D
 *     vae_dataset_free(train), vae_dataset_free(test);
 */
#ifndef VAE_API_DATA_H
#define VAE_API_DATA_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- dataset */

typedef struct vae_dataset vae_dataset;

typedef enum { VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST = 1 } vae_split;

typedef enum {
    VAE_BINARIZE_NONE = 0,      /* grey levels in [0,1] */
    VAE_BINARIZE_DYNAMIC = 1,   /* each pixel ~ Bernoulli(intensity), fresh per batch */
    VAE_BINARIZE_THRESHOLD = 2, /* pixel > threshold -> 1 */
} vae_binarize;

/* Opens one split of an MNIST-layout directory: {train,t10k}-images-idx3-ubyte
 * (raw or .gz) and, when present, the matching -labels-idx1-ubyte[.gz]. */
VAE_API int vae_dataset_open_mnist(const char *dir, vae_split split, vae_dataset **out,
                                   vae_error *err);
VAE_API void vae_dataset_free(vae_dataset *ds);

VAE_API size_t vae_dataset_count(const vae_dataset *ds);
VAE_API void vae_dataset_shape(const vae_dataset *ds, int *c, int *h, int *w);
VAE_API const uint8_t *vae_dataset_images(const vae_dataset *ds); /* N x c*h*w */
VAE_API const uint8_t *vae_dataset_labels(const vae_dataset *ds); /* N, or NULL */
VAE_API const char *vae_dataset_path(const vae_dataset *ds);     /* images file */

/* Fills out (n x D floats) with the images idx[0..n) scaled to [0,1] and
 * binarised as asked (rng is used only by VAE_BINARIZE_DYNAMIC). */
VAE_API void vae_dataset_batch(const vae_dataset *ds, const uint32_t *idx, int n,
                               int binarize, float threshold, vae_rng *rng, float *out);

/* ------------------------------------------------- your own images (data) */

/* How vae_data_open reads a path; vae_data_options_default fills it. */
typedef enum {
    VAE_CSV_LABEL_NONE = 0,  /* every field is a pixel */
    VAE_CSV_LABEL_FIRST = 1, /* the first field of a row is its label (0..255) */
    VAE_CSV_LABEL_LAST = 2,  /* the last field is */
} vae_csv_label;

typedef struct vae_data_options {
    int csv_label;          /* vae_csv_label [NONE] */
    int csv_header;         /* -1: a first row with a non-number field is a header; 0: none; 1: one [-1] */
    int csv_scale;          /* CSV values are 0..255 (255) or 0..1 (1) [255] */
    int channels, height, width; /* CSV image shape; 0: a square grey image from the row length [0] */
    int resize_w, resize_h; /* PNG folders: resize every image to this; 0: all must be one size [0] */
    double test_fraction;   /* data without its own test split: the share held out [0.1] */
    uint64_t split_seed;    /* seeds the held-out shuffle [1] */
    size_t max_memory;      /* PNG folders: image bytes kept in memory; a larger data set is
                               decoded into a temporary file the kernel pages ($VAE_TMPDIR,
                               $TMPDIR or /var/tmp); 0: half the physical memory [0] */
} vae_data_options;

VAE_API void vae_data_options_default(vae_data_options *o);

/* Opens `path` and recognises its layout:
 *   - a directory with {train,t10k}-images-idx3-ubyte[.gz]: MNIST layout;
 *     its t10k files are the test split (without them, one is held out);
 *   - another directory: a folder of PNG images (*.png, any case; other files
 *     are skipped and counted). Sub-folders instead of images are classes
 *     (labels 0.. in byte order of the folder names, which are kept); a train/
 *     and a test/ sub-folder give the split. Images are read in byte order of
 *     their names. Symbolic links must stay inside the folder;
 *   - a file named *.csv or *.csv.gz: CSV, one image per row (docs/data.md).
 * Images are kept as 8-bit grey or RGB (N x C x H x W bytes). Without a test
 * split of its own, a seeded shuffle holds out opt->test_fraction of the
 * images (at least one each side). On success *train and *test are new data
 * sets (free both); on failure both are NULL and err says why. opt may be
 * NULL for the defaults. */
VAE_API int vae_data_open(const char *path, const vae_data_options *opt, vae_dataset **train,
                          vae_dataset **test, vae_error *err);

typedef enum { VAE_DTYPE_U8 = 0, VAE_DTYPE_F32 = 1 } vae_dtype;

/* A data set from the caller's memory, without files: n images of c x h x w
 * (c = 1 or 3, row-major N x C x H x W) as bytes 0..255 (VAE_DTYPE_U8) or
 * floats in [0,1] (VAE_DTYPE_F32, rounded to the nearest of 256 levels; a
 * non-finite or out-of-range value is VAE_ENUMERIC). labels (n bytes) may be
 * NULL. The data are copied. */
VAE_API int vae_dataset_from_buffer(const void *data, int dtype, size_t n, int c, int h, int w,
                                    const uint8_t *labels, vae_dataset **out, vae_error *err);

/* Splits ds by a seeded shuffle: round(fraction * n) images (at least 1, at
 * most n - 1) go to *test, the rest to *train, each in ds's order. ds is
 * unchanged (the images are copied). */
VAE_API int vae_dataset_split(const vae_dataset *ds, double fraction, uint64_t seed,
                              vae_dataset **train, vae_dataset **test, vae_error *err);

/* What a data set is, for a one-line report. Strings belong to ds. */
typedef struct vae_dataset_info {
    const char *kind;    /* "IDX", "PNG folder", "CSV" or "buffer" */
    const char *path;    /* what was opened */
    const char *split;   /* where the split came from: "t10k files", "test/ folder", "held out 10% (seed 1)", ... */
    size_t count;
    int channels, height, width;
    int num_classes;     /* 0 when unlabelled; otherwise labels are < num_classes */
    size_t skipped;      /* files in a PNG folder that are not *.png */
    int resized;         /* images were resized (--resize) */
    int on_disk;         /* images live in a mapped temporary file (max_memory) */
} vae_dataset_info;

VAE_API void vae_dataset_describe(const vae_dataset *ds, vae_dataset_info *info);
/* The name of class k (a PNG folder's sub-folder), or NULL. */
VAE_API const char *vae_dataset_class_name(const vae_dataset *ds, int k);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_DATA_H */
