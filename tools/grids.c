/* grids.c - the picture grids that train, sample and reconstruct write:
 * decoded prior samples, and test images over their reconstructions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

/* n images spread evenly over ds (image i * N / n) as floats in [0,1], and
 * in *labels theirs (NULL when ds has none; caller frees both): a test split
 * in class order (PNG class folders) shows every class, not n of the first. */
static float *load_batch(const vae_dataset *ds, int n, int D, uint8_t **labels)
{
    uint32_t *idx = xmalloc((size_t)n * sizeof *idx);
    size_t N = vae_dataset_count(ds);
    for (int i = 0; i < n; i++) idx[i] = (uint32_t)((size_t)i * N / (size_t)n);
    float *x = xmalloc((size_t)n * D * sizeof *x);
    vae_dataset_batch(ds, idx, n, VAE_BINARIZE_NONE, 0, NULL, x);
    const uint8_t *all = vae_dataset_labels(ds);
    *labels = all ? xmalloc((size_t)n) : NULL;
    for (int i = 0; all && i < n; i++) (*labels)[i] = all[idx[i]];
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
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    if (vae_model_prior_sample(m, &rng, n, z) ||
        vae_model_decode_sample(m, z, labels, n, &rng, img))
        die("%s", vae_model_errmsg(m));
    write_png(path, img, n, c, cols, scale);
    free(z);
    free(img);
    free(labels);
}


/* Rows of `cols` inputs, each followed by a row of their reconstructions
 * (decoded posterior means). */
void write_recon(vae_model *m, const vae_dataset *ds, const char *path, int n, int scale)
{
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m), d = c->latent;
    if ((size_t)n > vae_dataset_count(ds)) n = (int)vae_dataset_count(ds);
    uint8_t *labels;
    need_labels(ds, m); // a CVAE's classes are checked here
    float *x = load_batch(ds, n, D, &labels);
    float *mu = xmalloc((size_t)n * d * sizeof *mu), *rec = xmalloc((size_t)n * D * sizeof *rec);
    const uint8_t *lab = vae_model_num_classes(m) ? labels : NULL;
    if (vae_model_encode(m, x, lab, n, mu, NULL) || vae_model_decode(m, mu, lab, n, rec))
        die("%s", vae_model_errmsg(m));
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
    free(labels);
    free(mu);
    free(rec);
    free(grid);
}
