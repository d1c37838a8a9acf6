#define _POSIX_C_SOURCE 200809L
/* vqprior.c - the VQ-VAE's commands: `vae prior train` (the PixelCNN prior
 * over the codes of the training images), sampling through the prior (vae
 * sample), its evaluation (vae eval) and `vae codes` (the codebook's usage
 * histogram and the code grids of test images). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "plot.h"
#include "vq.h"

/* The prior file beside a model: DIR/prior.safetensors for a run directory
 * or a file in DIR (caller frees). */
static char *prior_beside(const char *model)
{
    struct stat st;
    if (stat(model, &st) == 0 && S_ISDIR(st.st_mode)) return join(model, "prior.safetensors");
    const char *slash = strrchr(model, '/');
    if (!slash) return join(".", "prior.safetensors");
    // the directory without its last slash (join adds one), "/" kept as ""
    char *dir = xmalloc((size_t)(slash - model) + 1);
    memcpy(dir, model, (size_t)(slash - model));
    dir[slash - model] = 0;
    char *p = join(dir, "prior.safetensors");
    free(dir);
    return p;
}

static void need_vqvae(const char *cmd, const char *path, const vae_model *m)
{
    if (vae_model_config(m)->model != VAE_MODEL_VQVAE)
        usage_error(cmd, "%s is not a VQ-VAE (train one with --model vqvae)", path);
}

/* The codes of every image of ds (count x cells; caller frees). */
static int32_t *all_codes(vae_model *m, const vae_dataset *ds, long count, int cells)
{
    int B = vae_model_max_batch(m), D = vae_model_input_size(m);
    int32_t *codes = xmalloc((size_t)count * cells * sizeof *codes);
    float *x = xmalloc((size_t)B * D * sizeof *x);
    uint32_t *idx = xmalloc((size_t)B * sizeof *idx);
    for (long i = 0; i < count; i += B) {
        int b = count - i < B ? (int)(count - i) : B;
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_model_vq_codes(m, x, b, codes + (size_t)i * cells)) die("%s", vae_model_errmsg(m));
    }
    free(x);
    free(idx);
    return codes;
}

static vae_prior *load_prior(const char *path, const vae_model *m)
{
    vae_prior *p;
    vae_error err;
    if (vae_prior_load(path, 64, &p, &err))
        die("%s (train one with: %s prior train --model M)", err.msg, invoked_as);
    const vae_prior_config *pc = vae_prior_get_config(p);
    int gh, gw;
    vae_config_vq_latent(vae_model_config(m), &gh, &gw);
    if (pc->codebook != vae_model_config(m)->codebook || pc->grid_h != gh || pc->grid_w != gw)
        die("%s: a prior over %d codes on a %dx%d grid, but the model has %d codes on %dx%d", path,
            pc->codebook, pc->grid_h, pc->grid_w, vae_model_config(m)->codebook, gh, gw);
    return p;
}

/* ------------------------------------------------------------ prior train */

enum { P_EPOCHS = 256, P_BATCH, P_LR, P_SEED, P_OUT, P_CHANNELS, P_LAYERS, P_EMBED, P_THREADS,
       P_QUIET, P_GATED };

typedef struct prior_args {
    model_args ma;
    const char *out;
    int epochs, batch, channels, layers, embed, threads, quiet, gated;
    float lr;
    uint64_t seed;
} prior_args;

static void take_prior(int key, const char *a, int from_default, void *ctx)
{
    prior_args *p = ctx;
    (void)from_default;
    switch (key) {
    case P_EPOCHS: p->epochs = (int)parse_long("prior", "--epochs", a, 1, 100000); break;
    case P_BATCH: p->batch = (int)parse_long("prior", "--batch", a, 1, 4096); break;
    case P_LR: p->lr = (float)parse_double("prior", "--lr", a, 1e-9, 1); break;
    case P_SEED: p->seed = (uint64_t)parse_long("prior", "--seed", a, 0, 0x7fffffffffffffffL); break;
    case P_OUT: p->out = path_arg("prior", "--out", a); break;
    case P_CHANNELS: p->channels = (int)parse_long("prior", "--channels", a, 1, 1024); break;
    case P_LAYERS: p->layers = (int)parse_long("prior", "--layers", a, 0, 32); break;
    case P_EMBED: p->embed = (int)parse_long("prior", "--embed", a, 1, 256); break;
    case P_THREADS: p->threads = (int)parse_long("prior", "--threads", a, 0, 1024); break;
    case P_QUIET: p->quiet = 1; break;
    case P_GATED: p->gated = 1; break;
    default:
        if (!model_flag("prior", key, a, &p->ma)) usage_error("prior", "unknown option");
    }
}

static const cli_opt prior_opts[] = {
    MODEL_OPTS,
    {"--out", P_OUT, "FILE", "the prior's file", NULL, "prior.safetensors beside the model"},
    {"--epochs", P_EPOCHS, "N", "passes over the training images' codes", "10", NULL},
    {"--batch", P_BATCH, "N", "code grids per step", "64", NULL},
    {"--lr", P_LR, "F", "Adam learning rate", "0.001", NULL},
    {"--seed", P_SEED, "N", "seeds the weights and the shuffling", "1", NULL},
    {"--channels", P_CHANNELS, "N", "channels of the masked convolutions", "64", NULL},
    {"--layers", P_LAYERS, "N", "3x3 mask-B layers after the 5x5 mask-A one\n"
     "(--gated: gated layers, 1..8)", "4", NULL},
    {"--gated", P_GATED, NULL, "the gated PixelCNN: vertical and horizontal stacks,\n"
     "tanh x sigmoid gates, no blind spot", NULL, NULL},
    {"--embed", P_EMBED, "N", "dimension of each code's learned embedding", "32", NULL},
    {"--threads", P_THREADS, "N", "BLAS threads; 0 = all cores (its GEMMs are small:\none thread is fastest on a busy machine)", "1", NULL},
    {"--quiet", P_QUIET, NULL, "no per-epoch lines", NULL, NULL},
    CLI_END};

const cli_command prior_cmd = {
    "prior",
    "train a PixelCNN prior over a VQ-VAE's codes, for vae sample",
    "usage: vae prior train --model M [options]\n"
    "Encodes the model's training images to code grids and fits an autoregressive\n"
    "prior to them (a PixelCNN: masked convolutions, a softmax over the codes of\n"
    "each cell); vae sample and vae eval then read it. Each epoch prints the\n"
    "training and test negative log-likelihood of the codes in nats per grid and\n"
    "bits per cell.\n",
    prior_opts, NULL};

int cmd_prior(int argc, char **argv)
{
    prior_args pa;
    memset(&pa, 0, sizeof pa);
    model_args_init(&pa.ma);
    for (int i = 1; i < argc && strcmp(argv[1], "train"); i++)
        if (!strcmp(argv[i], "--help")) cli_parse(&prior_cmd, argc, argv, take_prior, &pa); // exits
    if (argc < 2 || strcmp(argv[1], "train"))
        usage_error("prior", "expects the subcommand train (vae prior train --model M)");
    int first = cli_parse(&prior_cmd, argc - 1, argv + 1, take_prior, &pa);
    if (first < argc - 1) usage_error("prior", "unexpected argument '%s'", argv[first + 1]);
    vae_model *m = model_load("prior", &pa.ma, 256);
    need_vqvae("prior", pa.ma.model, m);
    char *out = pa.out ? strdup(pa.out) : prior_beside(pa.ma.model);
    if (!out) die("out of memory");
    check_output("--out", out);
    check_not_input("--out", out, "--model", pa.ma.model);
    vae_dataset *train = model_split("prior", &pa.ma, m, VAE_SPLIT_TRAIN);
    vae_dataset *test = model_split("prior", &pa.ma, m, VAE_SPLIT_TEST);
    vae_set_threads(pa.threads);

    vae_prior_config pc;
    vae_prior_config_default(&pc, vae_model_config(m));
    pc.channels = pa.channels, pc.layers = pa.layers, pc.embed = pa.embed, pc.gated = pa.gated;
    vae_prior *p;
    vae_error err;
    if (vae_prior_create(&pc, pa.batch, pa.seed, &p, &err)) usage_error("prior", "%s", err.msg);
    vae_adam adam;
    vae_adam_default(&adam);
    adam.lr = pa.lr;
    vae_prior_set_adam(p, &adam);
    int P = pc.grid_h * pc.grid_w;
    long N = (long)vae_dataset_count(train), NT = (long)vae_dataset_count(test);
    double t0 = now();
    int32_t *codes = all_codes(m, train, N, P), *tcodes = all_codes(m, test, NT, P);
    report_data(&pa.ma.dargs, train, test);
    fprintf(stderr, "prior: %sPixelCNN (%zu parameters) over %ld code grids of %dx%d, K = %d "
            "(encoded in %.1fs)\n", pc.gated ? "gated " : "", vae_prior_num_params(p), N,
            pc.grid_h, pc.grid_w,
            pc.codebook, now() - t0);
    uint32_t *perm = xmalloc((size_t)N * sizeof *perm);
    int32_t *batch = xmalloc((size_t)pa.batch * P * sizeof *batch);
    double *tn = xmalloc((size_t)NT * sizeof *tn);
    vae_rng rng;
    vae_rng_seed(&rng, pa.seed ^ 0x9E3779B97F4A7C15ull);
    double test_nll = 0;
    for (int e = 0; e < pa.epochs; e++) {
        double t = now(), sum = 0;
        for (long i = 0; i < N; i++) perm[i] = (uint32_t)i;
        for (long i = N - 1; i > 0; i--) {
            long j = (long)vae_rng_below(&rng, (uint64_t)i + 1);
            uint32_t s = perm[i];
            perm[i] = perm[j], perm[j] = s;
        }
        for (long i = 0; i < N; i += pa.batch) {
            int b = N - i < pa.batch ? (int)(N - i) : pa.batch;
            for (int j = 0; j < b; j++)
                memcpy(batch + (size_t)j * P, codes + (size_t)perm[i + j] * P, (size_t)P * sizeof *batch);
            double nll;
            if (vae_prior_train_step(p, batch, b, &nll)) die("%s", vae_prior_errmsg(p));
            sum += nll;
        }
        if (vae_prior_nll(p, tcodes, (int)NT, tn)) die("%s", vae_prior_errmsg(p));
        test_nll = 0;
        for (long i = 0; i < NT; i++) test_nll += tn[i] / NT;
        if (!pa.quiet)
            printf("epoch %d/%d  train nll %.3f nats (%.4f bits/cell) | test nll %.3f nats "
                   "(%.4f bits/cell) | %.1fs\n", e + 1, pa.epochs, sum / N, sum / N / P / log(2),
                   test_nll, test_nll / P / log(2), now() - t);
        fflush(stdout);
    }
    char ep[16], tl[32];
    snprintf(ep, sizeof ep, "%d", pa.epochs);
    snprintf(tl, sizeof tl, "%.6f", test_nll);
    const char *meta[] = {"prior.model", pa.ma.model, "prior.epochs", ep, "prior.test_nll", tl, NULL};
    if (vae_prior_save(p, out, meta)) die("%s", vae_prior_errmsg(p));
    fprintf(stderr, "wrote %s\n", out);
    free(out), free(codes), free(tcodes), free(perm), free(batch), free(tn);
    vae_prior_free(p);
    vae_dataset_free(train);
    vae_dataset_free(test);
    vae_model_free(m);
    return 0;
}

/* ----------------------------------------------------- sample, evaluate */

vae_prior *vq_prior_open(const char *cmd, const char *model_path, const char *prior_path,
                         const vae_model *m)
{
    char *pp = prior_path ? strdup(prior_path) : prior_beside(model_path);
    if (!pp) die("out of memory");
    struct stat st;
    if (!prior_path && stat(pp, &st) != 0)
        die("%s: no such prior; %s %s draws a VQ-VAE's samples through its prior over the codes "
            "(train one: %s prior train --model %s; or name one with --prior)", pp, invoked_as,
            cmd, invoked_as, model_path);
    vae_prior *p = load_prior(pp, m);
    free(pp);
    return p;
}

void vq_sample_images(vae_model *m, vae_prior *p, long n, unsigned long long seed,
                      double temperature, float *out)
{
    const vae_config *c = vae_model_config(m);
    int P = c->latent / c->code_dim;
    if (n > INT32_MAX / P) die("%ld samples are too many to draw at once", n);
    int32_t *codes = xmalloc((size_t)n * P * sizeof *codes);
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    // the prior's GEMMs are small (a 7x7 grid, 64 grids a pass): more threads
    // only spin against each other (vae prior train's --threads 1 default)
    vae_set_threads(1);
    if (vae_prior_sample(p, (int)n, (float)temperature, &rng, codes)) die("%s", vae_prior_errmsg(p));
    if (vae_model_vq_decode(m, codes, (int)n, out)) die("%s", vae_model_errmsg(m));
    free(codes);
}

void vq_write_samples(vae_model *m, const char *model_path, const char *prior_path,
                      const char *png, int n, unsigned long long seed, double temperature,
                      int scale)
{
    vae_prior *p = vq_prior_open("sample", model_path, prior_path, m);
    const vae_config *c = vae_model_config(m);
    float *img = xmalloc((size_t)n * vae_model_input_size(m) * sizeof *img);
    vq_sample_images(m, p, n, seed, temperature, img);
    write_png(png, img, n, c, (int)ceil(sqrt((double)n)), scale);
    free(img);
    vae_prior_free(p);
}

void vq_eval(vae_model *m, const char *model_path, const char *prior_path, const vae_dataset *ds,
             const float *x, long n, int json)
{
    const vae_config *c = vae_model_config(m);
    int P = c->latent / c->code_dim, D = vae_model_input_size(m), B = vae_model_max_batch(m);
    int32_t *codes = xmalloc((size_t)B * P * sizeof *codes);
    float *rec = xmalloc((size_t)B * D * sizeof *rec);
    double se = 0;
    for (long i = 0; i < n; i += B) {
        int b = n - i < B ? (int)(n - i) : B;
        const float *xb = x + (size_t)i * D;
        if (vae_model_vq_codes(m, xb, b, codes) || vae_model_vq_decode(m, codes, b, rec))
            die("%s", vae_model_errmsg(m));
        for (size_t j = 0; j < (size_t)b * D; j++) se += ((double)rec[j] - xb[j]) * ((double)rec[j] - xb[j]);
    }
    double mse = se / ((double)n * D), psnr = 10 * log10(1 / mse);
    // the prior's NLL of the test codes, when there is a prior
    char *pp = prior_path ? strdup(prior_path) : prior_beside(model_path);
    struct stat st;
    double nll = NAN;
    if (pp && (prior_path || stat(pp, &st) == 0)) {
        vae_prior *p = load_prior(pp, m);
        int32_t *all = xmalloc((size_t)n * P * sizeof *all);
        double *each = xmalloc((size_t)n * sizeof *each);
        for (long i = 0; i < n; i += B) {
            int b = n - i < B ? (int)(n - i) : B;
            if (vae_model_vq_codes(m, x + (size_t)i * D, b, all + (size_t)i * P))
                die("%s", vae_model_errmsg(m));
        }
        if (vae_prior_nll(p, all, (int)n, each)) die("%s", vae_prior_errmsg(p));
        nll = 0;
        for (long i = 0; i < n; i++) nll += each[i] / n;
        free(all), free(each);
        vae_prior_free(p);
    }
    double bpd = nll / P / log(2);
    if (json) {
        printf("{\"model\":");
        json_str(stdout, model_path);
        printf(",\"data\":");
        json_str(stdout, vae_dataset_path(ds));
        printf(",\"n\":%ld,\"recon_mse\":", n);
        json_num(stdout, mse);
        printf(",\"psnr_db\":");
        json_num(stdout, psnr);
        printf(",\"prior_nll_nats\":");
        json_num(stdout, nll);
        printf(",\"prior_bits_per_dim\":");
        json_num(stdout, bpd);
        printf("}\n");
    } else {
        printf("model         %s (VQ-VAE, K = %d codes on %d cells)\n", model_path, c->codebook, P);
        printf("data          %s (%ld images)\n", vae_dataset_path(ds), n);
        printf("recon mse     %.6f per pixel (PSNR %.2f dB)\n", mse, psnr);
        if (isnan(nll))
            printf("prior         none beside the model (vae prior train --model M)\n");
        else
            printf("prior nll     %.4f nats per image, %.4f bits per dim (per code cell)\n", nll, bpd);
    }
    free(pp), free(codes), free(rec);
}

/* ------------------------------------------------------------------ codes */

enum { C_N = 256, C_OUT, C_HIST, C_SCALE };

typedef struct codes_args {
    model_args ma;
    const char *out, *hist;
    int n, scale;
} codes_args;

static void take_codes(int key, const char *a, int from_default, void *ctx)
{
    codes_args *c = ctx;
    (void)from_default;
    switch (key) {
    case C_N: c->n = (int)parse_long("codes", "-n", a, 1, 64); break;
    case C_OUT: c->out = path_arg("codes", "-o", a); break;
    case C_HIST: c->hist = path_arg("codes", "--histogram", a); break;
    case C_SCALE: c->scale = (int)parse_long("codes", "--scale", a, 1, 16); break;
    default:
        if (!model_flag("codes", key, a, &c->ma)) usage_error("codes", "unknown option");
    }
}

static const cli_opt codes_opts[] = {
    MODEL_OPTS,
    {"-n", C_N, "N", "test images whose code grids are drawn", "8", NULL},
    {"-o", C_OUT, "FILE", "the code grids (PNG)", "codes.png", NULL},
    {"--histogram", C_HIST, "FILE", "the codebook's usage over the test split (PNG)",
     "codes-histogram.png", NULL},
    {"--scale", C_SCALE, "K", "draw each image pixel KxK", "4", NULL},
    CLI_END};

const cli_command codes_cmd = {
    "codes",
    "a VQ-VAE's code grids of test images and its codebook usage",
    "usage: vae codes --model M [options]\n"
    "Draws test images (spread evenly over the split) beside their grids of code\n"
    "indices (a colour per code, its number written in), and a histogram of how\n"
    "often each code is chosen over the whole test split.\n",
    codes_opts, NULL};

/* A colour per code: hues spread by the golden ratio, two lightnesses. */
static void code_colour(int k, float *rgb)
{
    double h = fmod(k * 0.618033988749895, 1.0) * 6, l = k % 2 ? 0.55 : 0.8;
    int i = (int)h;
    double f = h - i, v[3];
    double q = 1 - f;
    switch (i) {
    case 0: v[0] = 1, v[1] = f, v[2] = 0; break;
    case 1: v[0] = q, v[1] = 1, v[2] = 0; break;
    case 2: v[0] = 0, v[1] = 1, v[2] = f; break;
    case 3: v[0] = 0, v[1] = q, v[2] = 1; break;
    case 4: v[0] = f, v[1] = 0, v[2] = 1; break;
    default: v[0] = 1, v[1] = 0, v[2] = q;
    }
    for (int j = 0; j < 3; j++) rgb[j] = (float)(l + (1 - l) * 0.6 * v[j] - 0.15 * (1 - v[j]));
}

int cmd_codes(int argc, char **argv)
{
    codes_args ca;
    memset(&ca, 0, sizeof ca);
    model_args_init(&ca.ma);
    int first = cli_parse(&codes_cmd, argc, argv, take_codes, &ca);
    if (first < argc) usage_error("codes", "unexpected argument '%s'", argv[first]);
    check_output("-o", ca.out);
    check_output("--histogram", ca.hist);
    vae_model *m = model_load("codes", &ca.ma, 256);
    need_vqvae("codes", ca.ma.model, m);
    vae_dataset *ds = model_split("codes", &ca.ma, m, VAE_SPLIT_TEST);
    const vae_config *c = vae_model_config(m);
    int gh, gw, K = c->codebook;
    vae_config_vq_latent(c, &gh, &gw);
    int P = gh * gw, D = vae_model_input_size(m);
    long N = (long)vae_dataset_count(ds);
    int32_t *codes = all_codes(m, ds, N, P);
    if (ca.n > N) ca.n = (int)N;

    // the grids: image i (scaled) beside its code grid, cells as tall as
    // the image's rows are over the grid's
    int S = ca.scale, cell = c->height * S / gh, pad = 8;
    int W = c->width * S + pad + cell * gw, H = c->height * S > cell * gh ? c->height * S : cell * gh;
    figure *f = fig_new(W + 2 * pad, ca.n * (H + pad) + pad);
    float *img = xmalloc((size_t)D * sizeof *img), *colours = xmalloc((size_t)3 * P * sizeof *colours);
    for (int i = 0; i < ca.n; i++) {
        long at = (long)i * N / ca.n;
        uint32_t idx = (uint32_t)at;
        vae_dataset_batch(ds, &idx, 1, VAE_BINARIZE_NONE, 0, NULL, img);
        int y = pad + i * (H + pad);
        fig_tiles(f, pad, y, img, 1, c->channels, c->height, c->width, 1, 0, S);
        for (int q = 0; q < P; q++) {
            float rgb[3];
            code_colour(codes[(size_t)at * P + q], rgb);
            for (int j = 0; j < 3; j++) colours[(size_t)j * P + q] = rgb[j];
        }
        int gx = 2 * pad + c->width * S;
        fig_tiles(f, gx, y, colours, 1, 3, gh, gw, 1, 0, cell);
        for (int q = 0; q < P; q++) {
            char num[8];
            snprintf(num, sizeof num, "%d", codes[(size_t)at * P + q]);
            fig_text(f, gx + (q % gw + 0.5) * cell, y + (q / gw + 0.5) * cell, num, cell * 0.38, 0, 0, 0);
        }
    }
    fig_save(f, ca.out);
    fig_free(f);

    // the histogram over the whole split, codes by index
    double *count = xmalloc((size_t)K * sizeof *count), *kx = xmalloc((size_t)K * sizeof *kx), pp;
    for (int k = 0; k < K; k++) count[k] = 0, kx[k] = k;
    double top = 0;
    for (size_t j = 0; j < (size_t)N * P; j++) count[codes[j]] += 1;
    for (int k = 0; k < K; k++) top = fmax(top, count[k]);
    int used = vq_health(count, K, &pp);
    figure *h = fig_new(900, 420);
    axes a;
    axes_init(&a, 80, 50, 790, 310, -0.5, K - 0.5, 0, top > 0 ? top : 1, 1);
    char title[160];
    snprintf(title, sizeof title, "codebook usage over %ld test images: %d of %d codes used, "
             "perplexity %.1f", N, used, K, pp);
    axes_draw(h, &a, "code", "cells assigned", title);
    // each bar an RGB tile of its height in pixels (plot_line would dot its ends)
    int bw = (int)fmax(1, 0.8 * a.pw / K), bh_max = (int)ceil(a.ph) + 1;
    float *bar = xmalloc((size_t)3 * bh_max * bw * sizeof *bar);
    for (int k = 0; k < K; k++) {
        int bh = (int)lround(axes_py(&a, 0) - axes_py(&a, count[k]));
        if (count[k] <= 0 || bh < 1) continue;
        if (bh > bh_max) bh = bh_max;
        const double rgb[3] = {plot_palette[0].r, plot_palette[0].g, plot_palette[0].b};
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < bh * bw; i++) bar[(size_t)j * bh * bw + i] = (float)rgb[j];
        fig_tiles(h, (int)lround(axes_px(&a, kx[k]) - bw / 2.0), (int)lround(axes_py(&a, count[k])),
                  bar, 1, 3, bh, bw, 1, 0, 1);
    }
    free(bar);
    fig_save(h, ca.hist);
    fig_free(h);
    report_data(&ca.ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s and %s (%d of %d codes used over the test split, perplexity %.1f)\n",
            ca.out, ca.hist, used, K, pp);
    free(codes), free(img), free(colours), free(count), free(kx);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}
