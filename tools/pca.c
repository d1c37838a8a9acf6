/* pca.c - `vae pca`: PCA fitted to the training split as the linear
 * autoencoder baseline; reports its test reconstruction error for K
 * components and writes test images beside their reconstructions. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { P_COMP = 256, P_IMAGES, P_SCALE, P_JSON, P_N, P_OUT };

static const cli_opt pca_opts[] = {
    {"--components", P_COMP, "K", "principal components", NULL, "required"},
    DATA_OPTS,
    {"-n", P_N, "N", "evaluate the first N test images; 0 = all", "0", NULL},
    {"-o", P_OUT, "FILE", "PNG of test images and reconstructions", "pca-recon.png", NULL},
    {"--images", P_IMAGES, "N", "images in the PNG", "32", NULL},
    {"--scale", P_SCALE, "K", "draw each pixel KxK", "2", NULL},
    {"--json", P_JSON, NULL, "print one JSON object on stdout instead of the table", NULL, NULL},
    CLI_END};

const cli_command pca_cmd = {
    "pca",
    "the PCA (linear autoencoder) baseline's reconstruction error",
    "usage: vae pca --components K [options]\n"
    "Fits PCA (the linear autoencoder: the top K eigenvectors of the training\n"
    "images' covariance) and reports the test reconstruction error, to compare\n"
    "with a VAE of latent size K (vae eval prints its mse the same way).\n",
    pca_opts, NULL};

typedef struct pca_args {
    const char *out;
    data_args dargs;
    int K, images, scale, json;
    long n;
} pca_args;

static void take_pca(int key, const char *a, int from_default, void *ctx)
{
    pca_args *p = ctx;
    (void)from_default;
    switch (key) {
    case P_COMP: p->K = (int)parse_long("pca", "--components", a, 1, 16384); break;
    case P_IMAGES: p->images = (int)parse_long("pca", "--images", a, 1, 4096); break;
    case P_SCALE: p->scale = (int)parse_long("pca", "--scale", a, 1, 16); break;
    case P_JSON: p->json = 1; break;
    case P_N: p->n = parse_long("pca", "-n", a, 0, 1L << 40); break;
    case P_OUT: p->out = path_arg("pca", "-o", a); break;
    case OPT_DATA: p->dargs.path = path_arg("pca", "--data", a); break;
    default: data_flag("pca", key, a, &p->dargs);
    }
}

/* Rows of up to 8 images, each followed by the row of their reconstructions. */
static void write_pairs(const char *path, const float *x, const float *rec, int n, int c, int h,
                        int w, int scale)
{
    size_t D = (size_t)c * h * w;
    int cols = n < 8 ? n : 8, rows = (n + cols - 1) / cols, k = 0;
    float *grid = xmalloc((size_t)2 * rows * cols * D * sizeof *grid);
    for (int r = 0; r < rows; r++)
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < cols; j++) {
                int i = r * cols + j;
                float *dst = grid + (size_t)k++ * D;
                for (size_t p = 0; p < D; p++) {
                    float v = i < n ? (pass ? rec : x)[(size_t)i * D + p] : 0;
                    dst[p] = v < 0 ? 0 : v > 1 ? 1 : v; // a linear decoder can leave [0,1]
                }
            }
    vae_error err;
    if (vae_write_png_grid(path, grid, k, c, h, w, cols, 2, scale, &err)) die("%s", err.msg);
    free(grid);
}

int cmd_pca(int argc, char **argv)
{
    pca_args pa;
    memset(&pa, 0, sizeof pa);
    data_args_init(&pa.dargs);
    int first = cli_parse(&pca_cmd, argc, argv, take_pca, &pa);
    if (first < argc) usage_error("pca", "unexpected argument '%s'", argv[first]);
    if (!pa.K) usage_error("pca", "--components is required");
    const char *out = pa.out;
    int K = pa.K, images = pa.images, scale = pa.scale, json = pa.json;
    long n = pa.n;
    data_args dargs = pa.dargs;
    check_output("-o", out);
    check_not_input("-o", out, "--data", dargs.path);
    vae_dataset *train, *test;
    open_data_args("pca", &dargs, &train, &test);
    int ch, h, w;
    vae_dataset_shape(train, &ch, &h, &w);
    int D = ch * h * w;
    if (K > D) die("--components %d: the images have only %d values (%dx%dx%d)", K, D, ch, h, w);
    long n_train = (long)vae_dataset_count(train), n_test = (long)vae_dataset_count(test);
    if (n > n_test) die("-n %ld: %s holds %ld images", n, vae_dataset_path(test), n_test);
    if (n == 0) n = n_test;

    double t0 = now();
    float *xtr = load_images(train, n_train);
    vae_pca *p;
    vae_error err;
    if (vae_pca_fit(xtr, n_train, D, K, &p, &err)) die("%s", err.msg);
    free(xtr);
    double t_fit = now() - t0;

    float *x = load_images(test, n);
    float *rec = xmalloc((size_t)n * D * sizeof *rec);
    double *sse = xmalloc((size_t)n * sizeof *sse);
    if (vae_pca_reconstruct(p, x, n, rec, sse, &err)) die("%s", err.msg);
    double tot = 0, explained = 0;
    for (long i = 0; i < n; i++) tot += sse[i];
    for (int j = 0; j < K; j++) explained += vae_pca_eigenvalues(p)[j];
    double frac = vae_pca_total_variance(p) > 0 ? explained / vae_pca_total_variance(p) : 1;
    write_pairs(out, x, rec, images < n ? images : (int)n, ch, h, w, scale);
    report_data(&dargs, train, test);

    if (json) {
        printf("{\"data\":");
        json_str(stdout, dargs.path);
        printf(",\"components\":%d,\"train_images\":%ld,\"n\":%ld,\"explained_variance\":", K,
               n_train, n);
        json_num(stdout, frac);
        printf(",\"mse\":");
        json_num(stdout, tot / n / D);
        printf(",\"sse\":");
        json_num(stdout, tot / n);
        printf(",\"png\":");
        json_str(stdout, out);
        printf(",\"fit_seconds\":%.3f}\n", t_fit);
    } else {
        printf("pca           %d components fitted to %ld training images of %d values (%.1f s)\n",
               K, n_train, D, t_fit);
        printf("explained     %.2f%% of the training variance\n", 100 * frac);
        printf("test error    mse %.6f per pixel, %.3f summed per image (%ld test images)\n",
               tot / n / D, tot / n, n);
        printf("wrote         %s\n", out);
    }
    free(x);
    free(rec);
    free(sse);
    vae_pca_free(p);
    vae_dataset_free(train);
    vae_dataset_free(test);
    return 0;
}
