/*
 * vae.c - the command-line tool: train, sample, reconstruct, info.
 * Everything user-facing lives here: flags, progress display, output files.
 * The library does the work and reports errors; this file prints them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vae.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------- utilities */

static const char *prog = "vae";

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s %s--help')\n", prog, cmd ? cmd : "");
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        usage_error(cmd, "%s expects a whole number in %ld..%ld, not '%s'", flag, lo, hi, s);
    return v;
}

static double parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi)
        usage_error(cmd, "%s expects a number in [%g, %g], not '%s'", flag, lo, hi, s);
    return v;
}

/* "512,256" -> cfg->hidden; "" or "none" means no hidden layer. */
static void parse_hidden(const char *cmd, const char *s, vae_config *cfg)
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

static vae_model *load_model(const char *path, int max_batch)
{
    vae_model *m;
    vae_error err;
    if (vae_model_load(path, max_batch, &m, &err)) die("%s", err.msg);
    return m;
}

static vae_dataset *open_data(const char *dir, vae_split split)
{
    vae_dataset *ds;
    vae_error err;
    if (vae_dataset_open_mnist(dir, split, &ds, &err)) die("%s", err.msg);
    if (vae_dataset_count(ds) == 0) die("%s: holds no images", vae_dataset_path(ds));
    return ds;
}

static void check_data_fits(const vae_dataset *ds, const vae_model *m)
{
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    const vae_config *cfg = vae_model_config(m);
    if (c != cfg->channels || h != cfg->height || w != cfg->width)
        die("%s: images are %dx%dx%d but the model takes %dx%dx%d", vae_dataset_path(ds), c, h, w,
            cfg->channels, cfg->height, cfg->width);
}

/* The first n images of ds as floats in [0,1]. */
static float *load_batch(const vae_dataset *ds, size_t first, int n, int D)
{
    uint32_t *idx = xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = (uint32_t)(first + i);
    float *x = xmalloc((size_t)n * D * sizeof *x);
    vae_dataset_batch(ds, idx, n, VAE_BINARIZE_NONE, 0, NULL, x);
    free(idx);
    return x;
}

static void write_png(const char *path, const float *img, int n, const vae_config *c, int cols,
                      int scale)
{
    vae_error err;
    if (vae_write_png_grid(path, img, n, c->channels, c->height, c->width, cols, 2, scale, &err))
        die("%s", err.msg);
}

/* Path of name inside dir, in a fresh string. */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ------------------------------------------------------------ pictures */

static void write_samples(vae_model *m, const char *path, int n, uint64_t seed, int scale)
{
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m);
    float *z = xmalloc((size_t)n * c->latent * sizeof *z);
    float *img = xmalloc((size_t)n * D * sizeof *img);
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * c->latent; i++) z[i] = (float)vae_rng_normal(&rng);
    if (vae_decode(m, z, n, img)) die("%s", vae_model_errmsg(m));
    int cols = (int)ceil(sqrt((double)n));
    write_png(path, img, n, c, cols, scale);
    free(z);
    free(img);
}

/* Rows of `cols` inputs, each followed by a row of their reconstructions
 * (decoded posterior means). */
static void write_recon(vae_model *m, const vae_dataset *ds, const char *path, int n, int scale)
{
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m), d = c->latent;
    if ((size_t)n > vae_dataset_count(ds)) n = (int)vae_dataset_count(ds);
    float *x = load_batch(ds, 0, n, D);
    float *mu = xmalloc((size_t)n * d * sizeof *mu), *rec = xmalloc((size_t)n * D * sizeof *rec);
    if (vae_encode(m, x, n, mu, NULL) || vae_decode(m, mu, n, rec)) die("%s", vae_model_errmsg(m));
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
    write_png(path, grid, k, c, cols, scale);
    free(x);
    free(mu);
    free(rec);
    free(grid);
}

/* --------------------------------------------------------------- train */

static const char train_help[] =
    "usage: vae train [options]\n"
    "Trains a VAE and writes the checkpoint, metrics log and pictures to --out.\n"
    "\n"
    "data:\n"
    "  --data DIR         MNIST-layout directory [" DEFAULT_DATA "]\n"
    "  --binarize MODE    none, dynamic or threshold[:T] [none]: dynamic draws each\n"
    "                     pixel ~ Bernoulli(intensity) afresh every batch;\n"
    "                     threshold sets pixel > T (default 0.5) to 1\n"
    "model:\n"
    "  --latent N         latent dimensions [20]\n"
    "  --hidden LIST      hidden widths, input side first, e.g. 512,256 [400]\n"
    "  --beta B           weight of the KL term [1]\n"
    "training:\n"
    "  --epochs N         passes over the training set [10]\n"
    "  --batch N          images per step [128]\n"
    "  --lr F             Adam learning rate [0.001]\n"
    "  --adam-beta1 F     [0.9]\n"
    "  --adam-beta2 F     [0.999]\n"
    "  --adam-eps F       [1e-08]\n"
    "  --seed N           seeds weights, shuffling, noise [1]\n"
    "  --threads N        training threads; 0 = all cores [0]\n"
    "output:\n"
    "  --out DIR          output directory [runs/vae-<date>-<time>]\n"
    "  --force            write into --out even if it holds a checkpoint\n"
    "  --samples N        images in samples.png; recon.png shows up to 32 [64]\n"
    "  --quiet            no progress display\n";

typedef struct train_opts {
    const char *data, *out;
    int epochs, batch, threads, samples, quiet, force, binarize;
    float threshold;
    uint64_t seed;
    vae_config cfg;
    vae_adam adam;
} train_opts;

static void parse_binarize(const char *s, train_opts *o)
{
    if (!strcmp(s, "none")) o->binarize = VAE_BINARIZE_NONE;
    else if (!strcmp(s, "dynamic")) o->binarize = VAE_BINARIZE_DYNAMIC;
    else if (!strncmp(s, "threshold", 9) && (s[9] == 0 || s[9] == ':')) {
        o->binarize = VAE_BINARIZE_THRESHOLD;
        o->threshold = s[9] ? (float)parse_double("train", "--binarize threshold", s + 10, 0, 1)
                            : 0.5f;
    } else
        usage_error("train", "--binarize expects none, dynamic or threshold[:T], not '%s'", s);
}

static void parse_train(int argc, char **argv, train_opts *o)
{
    enum { O_DATA = 256, O_EPOCHS, O_BATCH, O_LATENT, O_HIDDEN, O_LR, O_B1, O_B2, O_EPS, O_SEED,
           O_THREADS, O_OUT, O_SAMPLES, O_QUIET, O_BIN, O_BETA, O_FORCE, O_HELP };
    static const struct option longopts[] = {
        {"data", 1, 0, O_DATA},       {"epochs", 1, 0, O_EPOCHS},   {"batch", 1, 0, O_BATCH},
        {"latent", 1, 0, O_LATENT},   {"hidden", 1, 0, O_HIDDEN},   {"lr", 1, 0, O_LR},
        {"adam-beta1", 1, 0, O_B1},   {"adam-beta2", 1, 0, O_B2},   {"adam-eps", 1, 0, O_EPS},
        {"seed", 1, 0, O_SEED},       {"threads", 1, 0, O_THREADS}, {"out", 1, 0, O_OUT},
        {"samples", 1, 0, O_SAMPLES}, {"quiet", 0, 0, O_QUIET},     {"binarize", 1, 0, O_BIN},
        {"beta", 1, 0, O_BETA},       {"force", 0, 0, O_FORCE},     {"help", 0, 0, O_HELP},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->data = DEFAULT_DATA;
    o->epochs = 10;
    o->batch = 128;
    o->samples = 64;
    o->seed = 1;
    vae_config_default(&o->cfg);
    vae_adam_default(&o->adam);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case O_DATA: o->data = a; break;
        case O_EPOCHS: o->epochs = (int)parse_long("train", "--epochs", a, 1, 1000000); break;
        case O_BATCH: o->batch = (int)parse_long("train", "--batch", a, 1, 65536); break;
        case O_LATENT: o->cfg.latent = (int)parse_long("train", "--latent", a, 1, 4096); break;
        case O_HIDDEN: parse_hidden("train", a, &o->cfg); break;
        case O_LR: o->adam.lr = (float)parse_double("train", "--lr", a, 1e-12, 10); break;
        case O_B1: o->adam.beta1 = (float)parse_double("train", "--adam-beta1", a, 0, 0.999999); break;
        case O_B2: o->adam.beta2 = (float)parse_double("train", "--adam-beta2", a, 0, 0.999999999); break;
        case O_EPS: o->adam.eps = (float)parse_double("train", "--adam-eps", a, 1e-30, 1); break;
        case O_SEED: o->seed = (uint64_t)parse_long("train", "--seed", a, 0, 0x7fffffffffffffffL); break;
        case O_THREADS: o->threads = (int)parse_long("train", "--threads", a, 0, 1024); break;
        case O_OUT: o->out = a; break;
        case O_SAMPLES: o->samples = (int)parse_long("train", "--samples", a, 1, 1024); break;
        case O_QUIET: o->quiet = 1; break;
        case O_BIN: parse_binarize(a, o); break;
        case O_BETA: o->cfg.beta = (float)parse_double("train", "--beta", a, 0, 1e6); break;
        case O_FORCE: o->force = 1; break;
        case O_HELP: fputs(train_help, stdout); exit(0);
        default:
            if (optopt) usage_error("train", "option '%s' needs a value", argv[optind - 1]);
            usage_error("train", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error("train", "unexpected argument '%s'", argv[optind]);
}

/* Creates dir (one level) and refuses to clobber an earlier run's checkpoint. */
static void prepare_out(const char *dir, int force)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die("%s: cannot create the output directory: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s: not a directory", dir);
    char *ck = join(dir, "model.safetensors");
    if (!force && access(ck, F_OK) == 0)
        die("%s already holds a checkpoint; choose another --out or pass --force", dir);
    free(ck);
}

/* Live progress on a terminal; a plain line every 10 s otherwise. */
typedef struct progress {
    int tty, quiet;
    double t_start, t_last;
} progress;

static void progress_update(progress *p, int epoch, int epochs, long done, long total,
                            const vae_stats *st, double t_epoch, double t_all_epochs)
{
    double t = now();
    if (p->quiet || (t - p->t_last < (p->tty ? 0.25 : 10.0) && done < total)) return;
    p->t_last = t;
    double ips = done / (t - t_epoch + 1e-9);
    double left = (total - done) / (ips + 1e-9) + (epochs - epoch) * t_all_epochs;
    double n = st->n ? (double)st->n : 1;
    fprintf(stderr, "%sepoch %d/%d %5.1f%% | %7.0f img/s | loss %.2f rec %.2f kl %.2f | ETA %.0fs%s",
            p->tty ? "\r" : "", epoch, epochs, 100.0 * done / total, ips, st->loss / n,
            st->rec / n, st->kl / n, left, p->tty ? "\033[K" : "\n");
    if (p->tty && done >= total) fputc('\n', stderr);
}

static void evaluate_split(vae_model *m, const vae_dataset *ds, uint64_t seed, vae_stats *st)
{
    int D = vae_model_input_size(m), B = vae_model_max_batch(m);
    size_t N = vae_dataset_count(ds);
    vae_rng rng;
    vae_rng_seed(&rng, seed); // the same noise every epoch: epochs compare fairly
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < N; i += B) {
        int b = (int)(N - i < (size_t)B ? N - i : (size_t)B);
        float *x = load_batch(ds, i, b, D);
        if (vae_evaluate(m, x, b, &rng, st)) die("%s", vae_model_errmsg(m));
        free(x);
    }
}

static int cmd_train(int argc, char **argv)
{
    train_opts o;
    parse_train(argc, argv, &o);
    vae_set_threads(o.threads);

    // everything that can fail on input is checked before anything is written
    vae_dataset *train = open_data(o.data, VAE_SPLIT_TRAIN);
    vae_dataset *test = open_data(o.data, VAE_SPLIT_TEST);
    int c, h, w, tc, th, tw;
    vae_dataset_shape(train, &c, &h, &w);
    vae_dataset_shape(test, &tc, &th, &tw);
    if (c != tc || h != th || w != tw)
        die("%s: test images are %dx%d but training images (%s) are %dx%d", vae_dataset_path(test),
            tw, th, vae_dataset_path(train), w, h);
    o.cfg.channels = c, o.cfg.height = h, o.cfg.width = w;
    vae_model *m;
    vae_error err;
    if (vae_model_create(&o.cfg, o.batch, o.seed, &m, &err)) usage_error("train", "%s", err.msg);
    vae_model_set_adam(m, &o.adam);

    char outbuf[64];
    if (!o.out) {
        time_t t = time(NULL);
        strftime(outbuf, sizeof outbuf, "runs/vae-%Y%m%d-%H%M%S", localtime(&t));
        mkdir("runs", 0777);
        o.out = outbuf;
    }
    prepare_out(o.out, o.force);
    char *ckpt = join(o.out, "model.safetensors"), *logp = join(o.out, "metrics.jsonl");
    FILE *log = fopen(logp, "w");
    if (!log) die("%s: cannot write the metrics log: %s", logp, strerror(errno));

    size_t N = vae_dataset_count(train);
    int D = vae_model_input_size(m);
    uint32_t *perm = xmalloc(N * sizeof *perm);
    float *x = xmalloc((size_t)o.batch * D * sizeof *x);
    for (size_t i = 0; i < N; i++) perm[i] = (uint32_t)i;
    vae_rng data_rng;
    vae_rng_seed(&data_rng, o.seed * 0x9E3779B97F4A7C15ull + 1);

    const vae_config *cfg = vae_model_config(m);
    char hidden[128] = "";
    for (int i = 0; i < cfg->n_hidden; i++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", i ? "-" : "",
                 cfg->hidden[i]);
    fprintf(stderr, "training %d-%s-%d VAE (%zu parameters) on %zu images of %dx%d from %s\n", D,
            hidden, cfg->latent, vae_model_num_params(m), N, w, h, o.data);

    progress pr = {isatty(2), o.quiet, now(), 0};
    double epoch_time = 0;
    for (int e = 1; e <= o.epochs; e++) {
        for (size_t i = N - 1; i > 0; i--) { // Fisher-Yates
            size_t j = (size_t)vae_rng_below(&data_rng, i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        vae_stats st = {0};
        double t0 = now();
        for (size_t i = 0; i < N; i += o.batch) {
            int b = (int)(N - i < (size_t)o.batch ? N - i : (size_t)o.batch);
            vae_dataset_batch(train, perm + i, b, o.binarize, o.threshold, &data_rng, x);
            if (vae_train_step(m, x, b, &st))
                die("%s (the last good checkpoint is %s)", vae_model_errmsg(m), ckpt);
            progress_update(&pr, e, o.epochs, (long)(i + b), (long)N, &st, t0, epoch_time);
        }
        double secs = now() - t0;
        epoch_time = secs;
        vae_stats te;
        evaluate_split(m, test, o.seed + 12345, &te);
        double n = (double)st.n, tn = (double)te.n;
        fprintf(stdout,
                "epoch %d/%d  train: loss %.3f rec %.3f kl %.3f | test: -elbo %.3f rec %.3f kl %.3f "
                "| %.2fs, %.0f img/s\n",
                e, o.epochs, st.loss / n, st.rec / n, st.kl / n, te.loss / tn, te.rec / tn,
                te.kl / tn, secs, n / secs);
        fflush(stdout);
        fprintf(log,
                "{\"epoch\":%d,\"step\":%ld,\"beta\":%g,\"train_loss\":%.6f,\"train_rec\":%.6f,"
                "\"train_kl\":%.6f,\"test_loss\":%.6f,\"test_rec\":%.6f,\"test_kl\":%.6f,"
                "\"seconds\":%.4f,\"images_per_s\":%.1f}\n",
                e, vae_model_step(m), (double)cfg->beta, st.loss / n, st.rec / n, st.kl / n,
                te.loss / tn, te.rec / tn, te.kl / tn, secs, n / secs);
        fflush(log);
        char ep[16], seed[32], loss[32];
        snprintf(ep, sizeof ep, "%d", e);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)o.seed);
        snprintf(loss, sizeof loss, "%.6f", te.loss / tn);
        const char *meta[] = {"train.epoch", ep, "train.seed", seed, "train.data", o.data,
                              "train.test_neg_elbo", loss, NULL};
        if (vae_model_save(m, ckpt, meta)) die("%s", vae_model_errmsg(m));
    }
    if (fclose(log) != 0) die("%s: write failed: %s", logp, strerror(errno));

    char *sp = join(o.out, "samples.png"), *rp = join(o.out, "recon.png");
    write_samples(m, sp, o.samples, o.seed, 2);
    write_recon(m, test, rp, o.samples < 32 ? o.samples : 32, 2);
    fprintf(stderr, "done in %.1fs; wrote %s/{model.safetensors, metrics.jsonl, samples.png, recon.png}\n",
            now() - pr.t_start, o.out);
    free(sp), free(rp), free(ckpt), free(logp), free(perm), free(x);
    vae_model_free(m);
    vae_dataset_free(train);
    vae_dataset_free(test);
    return 0;
}

/* ------------------------------------------------- sample / reconstruct */

static const char sample_help[] =
    "usage: vae sample --model M [options]\n"
    "Decodes z ~ N(0, I) and writes a grid of the decoder's means.\n"
    "  --model M          checkpoint (model.safetensors) [required]\n"
    "  -n N               images [64]\n"
    "  -o FILE            output PNG [samples.png]\n"
    "  --seed N           [1]\n"
    "  --scale K          draw each pixel KxK [2]\n";

static const char recon_help[] =
    "usage: vae reconstruct --model M [options]\n"
    "Writes rows of test images, each followed by its reconstruction.\n"
    "  --model M          checkpoint (model.safetensors) [required]\n"
    "  --data DIR         MNIST-layout directory [" DEFAULT_DATA "]\n"
    "  -n N               images [32]\n"
    "  -o FILE            output PNG [recon.png]\n"
    "  --scale K          draw each pixel KxK [2]\n";

static int cmd_picture(int argc, char **argv, int recon)
{
    const char *cmd = recon ? "reconstruct" : "sample";
    static const struct option longopts[] = {{"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},
                                             {"seed", 1, 0, 's'},  {"scale", 1, 0, 'k'},
                                             {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    const char *model = NULL, *data = DEFAULT_DATA, *out = recon ? "recon.png" : "samples.png";
    int n = recon ? 32 : 64, scale = 2, c;
    uint64_t seed = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "n:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': if (!recon) goto unknown; data = optarg; break;
        case 's': if (recon) goto unknown; seed = (uint64_t)parse_long(cmd, "--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case 'k': scale = (int)parse_long(cmd, "--scale", optarg, 1, 16); break;
        case 'n': n = (int)parse_long(cmd, "-n", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        case 'h': fputs(recon ? recon_help : sample_help, stdout); exit(0);
        default:
        unknown:
            if (optopt && c == '?') usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
            usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model) usage_error(cmd, "--model is required");
    vae_model *m = load_model(model, 256);
    if (recon) {
        vae_dataset *ds = open_data(data, VAE_SPLIT_TEST);
        check_data_fits(ds, m);
        write_recon(m, ds, out, n, scale);
        vae_dataset_free(ds);
    } else {
        write_samples(m, out, n, seed, scale);
    }
    fprintf(stderr, "wrote %s\n", out);
    vae_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- info */

static int cmd_info(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: vae info MODEL\nPrints a checkpoint's architecture, size and metadata.");
        return 0;
    }
    if (argc != 2) usage_error("info", "expects exactly one checkpoint path");
    vae_model *m = load_model(argv[1], 1);
    const vae_config *c = vae_model_config(m);
    printf("checkpoint   %s\n", argv[1]);
    printf("model        %s, %s likelihood\n", vae_model_meta(m, "vae.model"),
           vae_model_meta(m, "vae.likelihood"));
    printf("input        %dx%dx%d (D = %d)\n", c->channels, c->height, c->width,
           vae_model_input_size(m));
    printf("architecture %d", vae_model_input_size(m));
    for (int i = 0; i < c->n_hidden; i++) printf("-%d", c->hidden[i]);
    printf("-[%d]", c->latent);
    for (int i = c->n_hidden - 1; i >= 0; i--) printf("-%d", c->hidden[i]);
    printf("-%d (ReLU; latent as mu and log-variance)\n", vae_model_input_size(m));
    printf("parameters   %zu\n", vae_model_num_params(m));
    printf("beta         %g\n", (double)c->beta);
    static const char *keys[] = {"train.epoch", "train.adam_steps", "train.seed", "train.data",
                                 "train.test_neg_elbo"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = vae_model_meta(m, keys[i]);
        if (v) printf("%-12s %s\n", keys[i] + 6, v);
    }
    vae_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const char main_help[] =
    "usage: vae COMMAND [options]    (vae COMMAND --help for its options)\n"
    "A Variational Autoencoder toolkit (version " VAE_VERSION ").\n"
    "\n"
    "commands:\n"
    "  train        train a VAE on an MNIST-layout data set [Fashion-MNIST]\n"
    "  sample       decode samples from the prior into a PNG grid\n"
    "  reconstruct  test images and their reconstructions as a PNG grid\n"
    "  info         a checkpoint's architecture and training metadata\n"
    "\n"
    "example:\n"
    "  vae train --epochs 10 --out runs/fmnist\n"
    "  vae sample --model runs/fmnist/model.safetensors -o samples.png\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_help, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(main_help, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        puts("vae " VAE_VERSION);
        return 0;
    }
    argv++, argc--;
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "sample")) return cmd_picture(argc, argv, 0);
    if (!strcmp(cmd, "reconstruct")) return cmd_picture(argc, argv, 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    usage_error(NULL, "unknown command '%s'", cmd);
    return 2;
}
