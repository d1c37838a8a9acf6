/* cli.c - what the vae commands share: errors, flag parsing, loading,
 * batches and picture grids. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "plot.h"

const char *prog = "vae";

void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s%s%s --help')\n", prog, cmd ? " " : "", cmd ? cmd : "");
    exit(2);
}

void bad_option(const char *cmd, int c, char **argv, const struct option *longopts)
{
    const char *arg = argv[optind - 1];
    if (c == ':') usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt > 0 && optopt < 256) usage_error(cmd, "unknown option '-%c'", optopt);
    for (const struct option *o = longopts; optopt && o->name; o++)
        if (o->val == optopt) usage_error(cmd, "option '--%s' takes no value", o->name);
    usage_error(cmd, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

const char *path_arg(const char *cmd, const char *flag, const char *s)
{
    if (!*s) usage_error(cmd, "%s needs a non-empty path", flag);
    return s;
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

long parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        usage_error(cmd, "%s expects a whole number in %ld..%ld, not '%s'", flag, lo, hi, s);
    return v;
}

double parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi)
        usage_error(cmd, "%s expects a number in [%g, %g], not '%s'", flag, lo, hi, s);
    return v;
}

void parse_hidden(const char *cmd, const char *s, vae_config *cfg)
{
    cfg->n_hidden = 0;
    if (!strcmp(s, "none")) return;
    const char *p = s;
    while (*p) {
        if (cfg->n_hidden == VAE_MAX_HIDDEN)
            usage_error(cmd, "--hidden: at most %d layers", VAE_MAX_HIDDEN);
        char part[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof part)
            usage_error(cmd, "--hidden expects widths like 400 or 512,256, not '%s'", s);
        memcpy(part, p, len);
        part[len] = 0;
        cfg->hidden[cfg->n_hidden++] = (int)parse_long(cmd, "--hidden", part, 1, 65536);
        p += len + (p[len] == ',');
    }
}

void arch_text(const vae_config *c, char *buf, size_t len)
{
    int conv = c->arch == VAE_ARCH_CONV;
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__))
    if (conv) PUT("conv %dx%dx%d", c->channels, c->height, c->width);
    else PUT("%d", c->channels * c->height * c->width);
    for (int i = 0; i < c->n_hidden; i++) PUT("-%d", c->hidden[i]);
    PUT("-[%d]", c->latent);
    for (int i = c->n_hidden - 1; i >= 0; i--) PUT("-%d", c->hidden[i]);
    if (conv) PUT("-%dx%dx%d", c->channels, c->height, c->width);
    else PUT("-%d MLP", c->channels * c->height * c->width);
#undef PUT
}

vae_model *load_model(const char *path, int max_batch)
{
    vae_model *m;
    vae_error err;
    if (vae_model_load(path, max_batch, &m, &err)) die("%s", err.msg);
    return m;
}

vae_dataset *open_data(const char *dir, vae_split split)
{
    vae_dataset *ds;
    vae_error err;
    if (vae_dataset_open_mnist(dir, split, &ds, &err)) die("%s", err.msg);
    if (vae_dataset_count(ds) == 0) die("%s: holds no images", vae_dataset_path(ds));
    return ds;
}

void check_data_fits(const vae_dataset *ds, const vae_model *m)
{
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    const vae_config *cfg = vae_model_config(m);
    if (c != cfg->channels || h != cfg->height || w != cfg->width)
        die("%s: images are %dx%dx%d but the model takes %dx%dx%d", vae_dataset_path(ds), c, h, w,
            cfg->channels, cfg->height, cfg->width);
}

/* Images first..first+n of ds as floats in [0,1] (caller frees). */
static float *load_batch(const vae_dataset *ds, size_t first, int n, int D)
{
    uint32_t *idx = xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = (uint32_t)(first + i);
    float *x = xmalloc((size_t)n * D * sizeof *x);
    vae_dataset_batch(ds, idx, n, VAE_BINARIZE_NONE, 0, NULL, x);
    free(idx);
    return x;
}

void write_png(const char *path, const float *img, int n, const vae_config *c, int cols,
                      int scale)
{
    vae_error err;
    if (vae_write_png_grid(path, img, n, c->channels, c->height, c->width, cols, 2, scale, &err))
        die("%s", err.msg);
}

char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void write_samples(vae_model *m, const char *path, int n, uint64_t seed, int scale, int label)
{
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m), cols = (int)ceil(sqrt((double)n));
    int C = vae_model_num_classes(m);
    float *z = xmalloc((size_t)n * c->latent * sizeof *z);
    float *img = xmalloc((size_t)n * D * sizeof *img);
    uint8_t *labels = xmalloc((size_t)n);
    for (int i = 0; i < n; i++) // a CVAE's grid: the class, or one row per class
        labels[i] = (uint8_t)(label >= 0 ? label : C ? i / cols % C : 0);
    vae_model_set_labels(m, labels);
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * c->latent; i++) z[i] = (float)vae_rng_normal(&rng);
    if (vae_decode(m, z, n, img)) die("%s", vae_model_errmsg(m));
    vae_model_set_labels(m, NULL);
    write_png(path, img, n, c, cols, scale);
    free(z);
    free(img);
    free(labels);
}

const uint8_t *need_labels(const vae_dataset *ds, const vae_model *m)
{
    const uint8_t *labels = vae_dataset_labels(ds);
    if (m && !vae_model_num_classes(m)) return NULL;
    if (!labels)
        die("%s: has no labels, and a conditional VAE (--model cvae) needs them (MNIST layout: "
            "the matching -labels-idx1-ubyte file)", vae_dataset_path(ds));
    if (m)
        for (size_t i = 0; i < vae_dataset_count(ds); i++)
            if (labels[i] >= vae_model_num_classes(m))
                die("%s: label %d of image %zu is not one of the model's %d classes",
                    vae_dataset_path(ds), labels[i], i, vae_model_num_classes(m));
    return labels;
}

/* Rows of `cols` inputs, each followed by a row of their reconstructions
 * (decoded posterior means). */
void write_recon(vae_model *m, const vae_dataset *ds, const char *path, int n, int scale)
{
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m), d = c->latent;
    if ((size_t)n > vae_dataset_count(ds)) n = (int)vae_dataset_count(ds);
    float *x = load_batch(ds, 0, n, D);
    float *mu = xmalloc((size_t)n * d * sizeof *mu), *rec = xmalloc((size_t)n * D * sizeof *rec);
    vae_model_set_labels(m, need_labels(ds, m)); // the first n images' labels, for a CVAE
    if (vae_encode(m, x, n, mu, NULL) || vae_decode(m, mu, n, rec)) die("%s", vae_model_errmsg(m));
    vae_model_set_labels(m, NULL);
    int cols = n < 8 ? n : 8, rows = (n + cols - 1) / cols;
    float *grid = xmalloc((size_t)2 * rows * cols * D * sizeof *grid);
    int k = 0;
    for (int r = 0; r < rows; r++)
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < cols; j++) {
                int i = r * cols + j;
                float *dst = grid + (size_t)k++ * D;
                if (i < n) memcpy(dst, (pass ? rec : x) + (size_t)i * D, D * sizeof *dst);
                else for (int p = 0; p < D; p++) dst[p] = 0;
            }
    // each input row and its reconstruction row form a block; a white gap
    // between blocks shows which rows belong together
    enum { GAP = 6 };
    int bw, bh;
    grid_size(2 * cols, c->height, c->width, cols, 2, scale, &bw, &bh);
    figure *f = fig_new(bw, rows * bh + (rows - 1) * GAP);
    for (int r = 0; r < rows; r++)
        fig_tiles(f, 0, r * (bh + GAP), grid + (size_t)2 * r * cols * D, 2 * cols, c->channels,
                  c->height, c->width, cols, 2, scale);
    fig_save(f, path);
    fig_free(f);
    free(x);
    free(mu);
    free(rec);
    free(grid);
}

