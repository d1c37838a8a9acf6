/* dataset.c - MNIST-layout image sets in memory and float batches from them. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_SIDE 4096

struct vae_dataset {
    uint8_t *images;  /* n x c*h*w */
    uint8_t *labels;  /* n, or NULL when the directory has no label file */
    size_t n;
    int c, h, w;
    char *path;       /* the images file */
};

/* dir/prefix-kind-ubyte, or the same with .gz when only that exists; NULL
 * with *rc = VAE_ENOENT when neither does, VAE_ENOMEM when out of memory. */
static char *find_file(const char *dir, const char *prefix, const char *kind, int *rc)
{
    size_t len = strlen(dir) + strlen(prefix) + strlen(kind) + 16;
    char *p = malloc(len);
    if (!p) {
        *rc = VAE_ENOMEM;
        return NULL;
    }
    const char *sep = *dir && dir[strlen(dir) - 1] == '/' ? "" : "/";
    struct stat st;
    for (int gz = 0; gz < 2; gz++) {
        snprintf(p, len, "%s%s%s-%s-ubyte%s", dir, sep, prefix, kind, gz ? ".gz" : "");
        /* anything but "absent" is left for the IDX reader to report */
        if (lstat(p, &st) == 0 || errno != ENOENT) return p; // a dangling link is there, and broken
    }
    free(p);
    *rc = VAE_ENOENT;
    return NULL;
}

int vae_dataset_open_mnist(const char *dir, vae_split split, vae_dataset **out, vae_error *err)
{
    if (!dir || !out || (split != VAE_SPLIT_TRAIN && split != VAE_SPLIT_TEST))
        return vae__error(err, VAE_EINVAL, "%s: bad arguments to vae_dataset_open_mnist",
                          dir ? dir : "(null)");
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT
                   ? vae__error(err, VAE_ENOENT,
                                "%s: no such directory (for Fashion-MNIST install Debian's "
                                "package: apt-get install dataset-fashion-mnist)", dir)
                   : vae__error(err, VAE_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return vae__error(err, VAE_EINVAL, "%s: not a directory", dir);

    const char *prefix = split == VAE_SPLIT_TRAIN ? "train" : "t10k";
    int rc = VAE_OK;
    uint8_t *img = NULL, *lab = NULL;
    uint32_t idims[3], ldims[1];
    char *lpath = NULL, *ipath = find_file(dir, prefix, "images-idx3", &rc);
    if (!ipath) {
        if (rc == VAE_ENOENT)
            return vae__error(err, rc, "%s: no %s-images-idx3-ubyte[.gz] here "
                              "(an MNIST-layout directory is needed)", dir, prefix);
        return vae__error(err, rc, "%s: out of memory", dir);
    }
    if ((rc = vae__idx_read_u8(ipath, 3, &img, idims, err)) != VAE_OK) goto fail;
    if (idims[1] > MAX_SIDE || idims[2] > MAX_SIDE) {
        rc = vae__error(err, VAE_EUNSUPPORTED, "%s: images of %ux%u pixels exceed the %dx%d limit",
                        ipath, (unsigned)idims[1], (unsigned)idims[2], MAX_SIDE, MAX_SIDE);
        goto fail;
    }

    /* labels are optional, but a label file that is there must be right */
    lpath = find_file(dir, prefix, "labels-idx1", &rc);
    if (!lpath && rc == VAE_ENOMEM) {
        rc = vae__error(err, rc, "%s: out of memory", dir);
        goto fail;
    }
    rc = VAE_OK;
    if (lpath) {
        if ((rc = vae__idx_read_u8(lpath, 1, &lab, ldims, err)) != VAE_OK) goto fail;
        if (ldims[0] != idims[0]) {
            rc = vae__error(err, VAE_ESHAPE, "%s: %u labels but %u images in %s", lpath,
                            (unsigned)ldims[0], (unsigned)idims[0], ipath);
            goto fail;
        }
    }

    vae_dataset *ds = malloc(sizeof *ds);
    if (!ds) {
        rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
        goto fail;
    }
    ds->images = img;
    ds->labels = lab;
    ds->n = idims[0];
    ds->c = 1;
    ds->h = (int)idims[1];
    ds->w = (int)idims[2];
    ds->path = ipath;
    free(lpath);
    *out = ds;
    return VAE_OK;
fail:
    free(img);
    free(lab);
    free(ipath);
    free(lpath);
    return rc;
}

void vae_dataset_free(vae_dataset *ds)
{
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    free(ds->path);
    free(ds);
}

size_t vae_dataset_count(const vae_dataset *ds) { return ds ? ds->n : 0; }

void vae_dataset_shape(const vae_dataset *ds, int *c, int *h, int *w)
{
    if (c) *c = ds ? ds->c : 0;
    if (h) *h = ds ? ds->h : 0;
    if (w) *w = ds ? ds->w : 0;
}

const uint8_t *vae_dataset_images(const vae_dataset *ds) { return ds ? ds->images : NULL; }
const uint8_t *vae_dataset_labels(const vae_dataset *ds) { return ds ? ds->labels : NULL; }
const char *vae_dataset_path(const vae_dataset *ds) { return ds ? ds->path : NULL; }

/* A hot loop, not a validation point: the caller must have checked every
 * idx[i] < vae_dataset_count(ds) and sized out for n x D floats, and must
 * pass an rng for VAE_BINARIZE_DYNAMIC. Unknown binarize values act as NONE.
 * Dynamic binarisation draws one uniform per pixel in row-major order, so a
 * seed gives the same batch everywhere. */
void vae_dataset_batch(const vae_dataset *ds, const uint32_t *idx, int n, int binarize,
                       float threshold, vae_rng *rng, float *out)
{
    size_t D = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    float lut[256];
    for (int v = 0; v < 256; v++) {
        lut[v] = (float)v / 255.0f;
        if (binarize == VAE_BINARIZE_THRESHOLD) lut[v] = lut[v] > threshold ? 1.0f : 0.0f;
    }
    if (binarize == VAE_BINARIZE_DYNAMIC) { // one sequential stream of draws
        for (int i = 0; i < n; i++) {
            const uint8_t *src = ds->images + (size_t)idx[i] * D;
            float *dst = out + (size_t)i * D;
            for (size_t j = 0; j < D; j++)
                dst[j] = vae_rng_uniform(rng) < src[j] / 255.0 ? 1.0f : 0.0f;
        }
        return;
    }
#pragma omp parallel for schedule(static) if ((size_t)n * D > 65536)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = ds->images + (size_t)idx[i] * D;
        float *dst = out + (size_t)i * D;
        for (size_t j = 0; j < D; j++) dst[j] = lut[src[j]];
    }
}
