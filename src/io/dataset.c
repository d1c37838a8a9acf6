/* dataset.c - image sets in memory (MNIST layout, the caller's buffer, splits)
 * and float batches from them. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"

#define MAX_SIDE VAE_MAX_SIDE

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

    rc = vae__dataset_wrap(img, lab, idims[0], 1, (int)idims[1], (int)idims[2], "IDX", ipath, out,
                           err);
    img = lab = NULL;
    if (rc == VAE_OK) snprintf((*out)->split, sizeof (*out)->split, "t10k files");
fail:
    free(img);
    free(lab);
    free(ipath);
    free(lpath);
    return rc;
}

size_t vae__memory_budget(size_t max_memory)
{
    if (max_memory) return max_memory;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    return pages > 0 && psize > 0 ? (size_t)pages / 2 * (size_t)psize : SIZE_MAX;
}

uint8_t *vae__images_alloc(size_t bytes, size_t budget, size_t *map_len, const char *name,
                           vae_error *err)
{
    *map_len = 0;
    budget = vae__memory_budget(budget);
    if (bytes <= budget) {
        uint8_t *p = malloc(bytes ? bytes : 1);
        if (!p) vae__error(err, VAE_ENOMEM, "%s: out of memory for %zu bytes of images", name, bytes);
        return p;
    }
    const char *dir = getenv("VAE_TMPDIR"); // a big disk, apart from other programs' TMPDIR
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/var/tmp"; // /tmp is often RAM (tmpfs): no help here
    char path[4096];
    snprintf(path, sizeof path, "%s/vae-images-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return vae__error(err, VAE_EIO, "%s: %zu bytes of images exceed the memory budget and "
                          "no temporary file can be made in %s: %s", name, bytes, dir,
                          strerror(errno)), NULL;
    unlink(path); // nothing to clean up, whatever happens
    int e = posix_fallocate(fd, 0, (off_t)bytes); // a full disk fails now, not as SIGBUS later
    void *p = e ? MAP_FAILED : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!e && p == MAP_FAILED) e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return vae__error(err, e == ENOSPC ? VAE_EIO : VAE_ENOMEM, "%s: cannot keep %zu bytes of "
                          "images in a temporary file in %s: %s", name, bytes, dir, strerror(e)), NULL;
    *map_len = bytes;
    return p;
}

void vae__images_free(uint8_t *p, size_t map_len)
{
    if (map_len) munmap(p, map_len);
    else free(p);
}

void vae_dataset_free(vae_dataset *ds)
{
    if (!ds) return;
    vae__images_free(ds->images, ds->map_len);
    free(ds->labels);
    free(ds->path);
    for (int k = 0; ds->classes && k < ds->num_classes; k++) free(ds->classes[k]);
    free(ds->classes);
    free(ds);
}

int vae__dataset_wrap(uint8_t *images, uint8_t *labels, size_t n, int c, int h, int w,
                      const char *kind, const char *path, vae_dataset **out, vae_error *err)
{
    vae_dataset *ds = calloc(1, sizeof *ds);
    char *p = strdup(path);
    if (!ds || !p) {
        free(ds), free(p), free(images), free(labels);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    ds->images = images;
    ds->labels = labels;
    ds->n = n;
    ds->c = c, ds->h = h, ds->w = w;
    ds->path = p;
    ds->kind = kind;
    for (size_t i = 0; labels && i < n; i++)
        if (labels[i] >= ds->num_classes) ds->num_classes = labels[i] + 1;
    *out = ds;
    return VAE_OK;
}

int vae_dataset_from_buffer(const void *data, int dtype, size_t n, int c, int h, int w,
                            const uint8_t *labels, vae_dataset **out, vae_error *err)
{
    if (!out) return vae__error(err, VAE_EINVAL, "vae_dataset_from_buffer: out is NULL");
    *out = NULL;
    if (!data || n == 0 || (c != 1 && c != 3) || h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE ||
        (dtype != VAE_DTYPE_U8 && dtype != VAE_DTYPE_F32))
        return vae__error(err, VAE_EINVAL,
                          "vae_dataset_from_buffer: bad arguments (n=%zu c=%d h=%d w=%d dtype=%d; "
                          "c must be 1 or 3, sides 1..%d)", n, c, h, w, dtype, MAX_SIDE);
    size_t D = (size_t)c * h * w, total;
    if (__builtin_mul_overflow(D, n, &total))
        return vae__error(err, VAE_EINVAL, "vae_dataset_from_buffer: %zu images of %zu values overflow", n, D);
    uint8_t *img = malloc(total), *lab = labels ? malloc(n) : NULL;
    if (!img || (labels && !lab)) {
        free(img), free(lab);
        return vae__error(err, VAE_ENOMEM, "vae_dataset_from_buffer: out of memory (%zu bytes)", total);
    }
    if (dtype == VAE_DTYPE_U8) {
        memcpy(img, data, total);
    } else {
        const float *f = data;
        for (size_t i = 0; i < total; i++) {
            float v = f[i];
            if (!(v >= 0.0f && v <= 1.0f)) { // NaN fails both
                free(img), free(lab);
                return vae__error(err, VAE_ENUMERIC, "vae_dataset_from_buffer: value %g at image %zu, "
                                  "index %zu is not in [0,1]", (double)v, i / D, i % D);
            }
            img[i] = (uint8_t)(v * 255.0f + 0.5f);
        }
    }
    if (lab) memcpy(lab, labels, n);
    int rc = vae__dataset_wrap(img, lab, n, c, h, w, "buffer", "(buffer)", out, err);
    if (rc == VAE_OK) snprintf((*out)->split, sizeof (*out)->split, "none");
    return rc;
}

/* is_test[i] = 1 for the round(fraction*n) (clamped to 1..n-1) images a
 * seeded Fisher-Yates shuffle puts first; returns that count. */
static size_t hold_out_mask(size_t n, double fraction, uint64_t seed, uint8_t *is_test)
{
    size_t k = (size_t)(fraction * (double)n + 0.5);
    if (k < 1) k = 1;
    if (k > n - 1) k = n - 1;
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    memset(is_test, 0, n);
    // a partial Fisher-Yates from the front: the first k of a shuffled order
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) return 0;
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)vae_rng_below(&rng, n - i);
        uint32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
        is_test[perm[i]] = 1;
    }
    free(perm);
    return k;
}

static int check_split_args(const vae_dataset *ds, double fraction, vae_error *err)
{
    if (!ds || !(fraction > 0 && fraction < 1))
        return vae__error(err, VAE_EINVAL, "%s: the test fraction must be in (0, 1), not %g",
                          ds ? ds->path : "(null)", fraction);
    if (ds->n < 2)
        return vae__error(err, VAE_EINVAL, "%s: %zu image(s) cannot be split into training and "
                          "test images", ds->path, ds->n);
    if (ds->n > UINT32_MAX)
        return vae__error(err, VAE_EUNSUPPORTED, "%s: more than 2^32 images", ds->path);
    return VAE_OK;
}

/* Copies the images (and labels) with is_test[i] == want from src to dst,
 * in order; dst may be src (compaction: rows only ever move forward). */
static void gather(const vae_dataset *src, const uint8_t *is_test, int want, uint8_t *dimg,
                   uint8_t *dlab)
{
    size_t D = (size_t)src->c * src->h * src->w, j = 0;
    for (size_t i = 0; i < src->n; i++) {
        if (is_test[i] != want) continue;
        if (dimg + j * D != src->images + i * D) memmove(dimg + j * D, src->images + i * D, D);
        if (dlab) dlab[j] = src->labels[i];
        j++;
    }
}

static int make_part(const vae_dataset *ds, const uint8_t *is_test, int want, size_t k,
                     double fraction, uint64_t seed, vae_dataset **out, vae_error *err)
{
    size_t D = (size_t)ds->c * ds->h * ds->w, map_len = 0;
    uint8_t *img = vae__images_alloc(k * D, ds->budget, &map_len, ds->path, err);
    uint8_t *lab = ds->labels ? malloc(k) : NULL;
    if (!img || (ds->labels && !lab)) {
        if (img) vae__images_free(img, map_len);
        free(lab);
        return img ? vae__error(err, VAE_ENOMEM, "%s: out of memory splitting off %zu images",
                                ds->path, k) : err ? err->code : VAE_ENOMEM;
    }
    gather(ds, is_test, want, img, lab);
    int rc = vae__dataset_wrap(NULL, lab, k, ds->c, ds->h, ds->w, ds->kind, ds->path, out, err);
    if (rc) {
        vae__images_free(img, map_len);
        return rc;
    }
    vae_dataset *o = *out;
    o->images = img, o->map_len = map_len, o->budget = ds->budget;
    snprintf(o->split, sizeof o->split, "held out %g%% (seed %llu)", fraction * 100,
             (unsigned long long)seed);
    o->skipped = ds->skipped, o->resized = ds->resized;
    if (ds->labels && o->num_classes < ds->num_classes) o->num_classes = ds->num_classes;
    if (ds->classes) { // the class list is the data set's, not the part's
        o->classes = calloc((size_t)ds->num_classes, sizeof *o->classes);
        for (int c = 0; o->classes && c < ds->num_classes; c++)
            if (!(o->classes[c] = strdup(ds->classes[c]))) {
                vae_dataset_free(o), *out = NULL;
                return vae__error(err, VAE_ENOMEM, "%s: out of memory", ds->path);
            }
        if (!o->classes) {
            vae_dataset_free(o), *out = NULL;
            return vae__error(err, VAE_ENOMEM, "%s: out of memory", ds->path);
        }
        o->num_classes = ds->num_classes;
    }
    return VAE_OK;
}

/* The held-out images' mask (malloc'd) and their count k, checked. */
static int split_mask(const vae_dataset *ds, double fraction, uint64_t seed, uint8_t **mask,
                      size_t *k, vae_error *err)
{
    int rc = check_split_args(ds, fraction, err);
    if (rc) return rc;
    *mask = malloc(ds->n);
    *k = *mask ? hold_out_mask(ds->n, fraction, seed, *mask) : 0;
    if (!*k) {
        free(*mask);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", ds->path);
    }
    return VAE_OK;
}

int vae_dataset_split(const vae_dataset *ds, double fraction, uint64_t seed, vae_dataset **train,
                      vae_dataset **test, vae_error *err)
{
    if (!train || !test) return vae__error(err, VAE_EINVAL, "vae_dataset_split: NULL output");
    *train = *test = NULL;
    uint8_t *mask;
    size_t k;
    int rc = split_mask(ds, fraction, seed, &mask, &k, err);
    if (rc) return rc;
    rc = make_part(ds, mask, 1, k, fraction, seed, test, err);
    if (!rc) rc = make_part(ds, mask, 0, ds->n - k, fraction, seed, train, err);
    if (rc) {
        vae_dataset_free(*test), *test = NULL;
        vae_dataset_free(*train), *train = NULL;
    }
    free(mask);
    return rc;
}

int vae__dataset_hold_out(vae_dataset *ds, double fraction, uint64_t seed, vae_dataset **test,
                          vae_error *err)
{
    *test = NULL;
    uint8_t *mask;
    size_t k;
    int rc = split_mask(ds, fraction, seed, &mask, &k, err);
    if (rc) return rc;
    if ((rc = make_part(ds, mask, 1, k, fraction, seed, test, err))) {
        free(mask);
        return rc;
    }
    // the training part in place: the peak is the data set plus its test part
    gather(ds, mask, 0, ds->images, ds->labels);
    ds->n -= k;
    size_t D = (size_t)ds->c * ds->h * ds->w;
    uint8_t *p = ds->map_len ? NULL : realloc(ds->images, ds->n * D); // a mapping keeps its length
    if (p) ds->images = p;
    snprintf(ds->split, sizeof ds->split, "%s", (*test)->split);
    free(mask);
    return VAE_OK;
}

void vae_dataset_describe(const vae_dataset *ds, vae_dataset_info *info)
{
    memset(info, 0, sizeof *info);
    if (!ds) return;
    info->kind = ds->kind;
    info->path = ds->path;
    info->split = ds->split;
    info->count = ds->n;
    info->channels = ds->c, info->height = ds->h, info->width = ds->w;
    info->num_classes = ds->num_classes;
    info->skipped = ds->skipped;
    info->resized = ds->resized;
    info->on_disk = ds->map_len > 0;
}

const char *vae_dataset_class_name(const vae_dataset *ds, int k)
{
    if (!ds || !ds->classes || k < 0 || k >= ds->num_classes) return NULL;
    return ds->classes[k];
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

/* Pixels scaled to [0,1] (the division v / 255 in float, vectorised), or
 * thresholded. */
VAE_VECTOR_CLONES
static void to_float(float *restrict dst, const uint8_t *restrict src, size_t n, int threshold,
                     float level)
{
    if (threshold)
        for (size_t j = 0; j < n; j++) dst[j] = (float)src[j] / 255.0f > level ? 1.0f : 0.0f;
    else
        for (size_t j = 0; j < n; j++) dst[j] = (float)src[j] / 255.0f;
}

/* A hot loop, not a validation point: the caller must have checked every
 * idx[i] < vae_dataset_count(ds) and sized out for n x D floats, and must
 * pass an rng for VAE_BINARIZE_DYNAMIC. Unknown binarize values act as NONE.
 * Dynamic binarisation draws one uniform per pixel in row-major order, so a
 * seed gives the same batch everywhere. */
void vae_dataset_batch(const vae_dataset *ds, const uint32_t *idx, int n, int binarize,
                       float threshold, vae_rng *rng, float *out)
{
    size_t D = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
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
        to_float(out + (size_t)i * D, src, D, binarize == VAE_BINARIZE_THRESHOLD, threshold);
    }
}
