/* eval.c - `vae eval`: a model's numbers on a data split (negative ELBO and
 * its terms, importance-sampled NLL, KL per dimension, active units,
 * reconstruction error) as a table or as JSON; and the JSON helpers that
 * `vae pca` shares. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vq.h"

/* ------------------------------------------------------------------ JSON */

void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON has no infinities: a non-finite number is written as null. */
void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

/* The first n images of a split as floats in [0,1] (caller frees). */
float *load_images(const vae_dataset *ds, long n)
{
    return load_images_binarized(ds, n, VAE_BINARIZE_NONE, 0, 0);
}

float *load_images_binarized(const vae_dataset *ds, long n, int binarize, float threshold,
                             uint64_t seed)
{
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    size_t D = (size_t)c * h * w;
    float *x = xmalloc((size_t)n * D * sizeof *x);
    uint32_t idx[1024];
    vae_rng rng; // dynamic binarisation: one fixed draw, a single stream in image order
    vae_rng_seed(&rng, seed);
    for (long i = 0; i < n; i += 1024) {
        int b = (int)(n - i < 1024 ? n - i : 1024);
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, binarize, threshold, &rng, x + (size_t)i * D);
    }
    return x;
}

/* ------------------------------------------------------------ progress */

typedef struct eval_progress {
    int tty, quiet;
    double t_start, t_last;
    const vae_eval_image *img; /* the per-image results filled so far */
    long summed;
    double elbo, lp;
} eval_progress;

static void progress(void *ctx, long done, long total)
{
    eval_progress *p = ctx;
    for (; p->summed < done; p->summed++) {
        p->elbo += p->img[p->summed].neg_elbo;
        p->lp += p->img[p->summed].log_px;
    }
    double t = now();
    if (p->quiet || (t - p->t_last < (p->tty ? 0.25 : 10.0) && done < total)) return;
    p->t_last = t;
    double ips = done / (t - p->t_start + 1e-9);
    fprintf(stderr, "%seval %5.1f%% | %ld/%ld images | %6.1f img/s | -elbo %.2f nll %.2f | ETA %.0fs%s",
            p->tty ? "\r" : "", 100.0 * done / total, done, total, ips, p->elbo / done,
            -p->lp / done, (total - done) / (ips + 1e-9), p->tty ? "\033[K" : "\n");
    if (p->tty && done >= total) fputc('\n', stderr);
}

/* --------------------------------------------------------------- command */

/* none, dynamic, threshold or threshold:T (T in [0,1]), as train writes them
 * into a checkpoint's run.binarize; -1 if it is none of these. */
static int parse_binarize_mode(const char *s, int *mode, float *t)
{
    char *end;
    if (!strcmp(s, "none")) *mode = VAE_BINARIZE_NONE;
    else if (!strcmp(s, "dynamic")) *mode = VAE_BINARIZE_DYNAMIC;
    else if (!strcmp(s, "threshold")) *mode = VAE_BINARIZE_THRESHOLD, *t = 0.5f;
    else if (!strncmp(s, "threshold:", 10) && s[10]) {
        float v = strtof(s + 10, &end);
        if (*end || !(v >= 0 && v <= 1)) return -1;
        *mode = VAE_BINARIZE_THRESHOLD, *t = v;
    } else
        return -1;
    return 0;
}

/* --batch auto: a thread's decoder rows hold at most this many MB of
 * activations (docs/evaluation.md). */
#define EVAL_AUTO_MB 16

enum { E_SPLIT = 256, E_K, E_SEED, E_THREADS, E_BATCH, E_JSON, E_QUIET, E_BIN, E_N, E_PRIOR };

static const cli_opt eval_opts[] = {
    MODEL_OPTS,
    {"--split", E_SPLIT, "S", "test, train or valid (a model trained with\n--valid-fraction: train is without the images it\nheld out, valid those)", "test", NULL},
    {"-n", E_N, "N", "the first N images of the split; 0 = all", "0", NULL},
    {"--binarize", E_BIN, "MODE", "how pixels are binarised\nnone, threshold[:T] (pixel > T, T = "
     "0.5) or dynamic\n(each pixel ~ Bernoulli(intensity), drawn once from\n--seed)", NULL,
     "the model's training mode, else none"},
    {"--k", E_K, "K", "importance samples per image (the literature's\nstandard for NLL; the "
     "ELBO averages over the same samples)", "5000", NULL},
    {"--seed", E_SEED, "N", "noise seed; image i draws from a stream of (seed, i)", "1", NULL},
    {"--threads", E_THREADS, "N", "threads over images; 0 = all cores", "0", NULL},
    {"--batch", E_BATCH, "N", "samples decoded per GEMM; auto: 512, or fewer (down\nto 32) so that "
     "a thread's activations take at most\n16 MB (a conv model's)", "auto", NULL},
    {"--json", E_JSON, NULL, "print one JSON object on stdout instead of the table", NULL, NULL},
    {"--quiet", E_QUIET, NULL, "no progress display", NULL, NULL},
    {"--prior", E_PRIOR, "FILE", "a VQ-VAE's prior over its codes (vae prior train)", NULL,
     "prior.safetensors beside the model"},
    CLI_END};

const cli_command eval_cmd = {
    "eval",
    "-ELBO, importance-sampled NLL, KL per dimension, active units",
    "usage: vae eval --model M [options]\n"
    "Evaluates a model on a data split: the negative ELBO with its reconstruction\n"
    "and KL terms, the importance-sampled negative log-likelihood\n"
    "-log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x), the KL of each\n"
    "latent dimension, the active units (Var_x E_q[z_j|x] > 0.01) and the mean\n"
    "squared error of the decoded posterior mean. Nats per image, summed over pixels.\n"
    "A VQ-VAE: the reconstruction MSE and PSNR, and its prior's negative\n"
    "log-likelihood of the codes in nats per image and bits per code cell.\n",
    eval_opts, "Results depend on the seed, k and --batch, not on --threads.\n"};

typedef struct eval_args {
    model_args ma;
    const char *split, *bin_text, *prior;
    double valid_fraction; /* the model's --valid-fraction: its train and valid parts */
    int bin, json, quiet, threads, batch;
    float threshold;
    long n;
    vae_eval_opts opt;
} eval_args;

static void take_eval(int key, const char *a, int from_default, void *ctx)
{
    eval_args *e = ctx;
    (void)from_default;
    switch (key) {
    case E_SPLIT:
        if (strcmp(a, "test") && strcmp(a, "train") && strcmp(a, "valid"))
            usage_error("eval", "--split expects test, train or valid, not '%s'", a);
        e->split = a;
        break;
    case E_K: e->opt.k = (int)parse_long("eval", "--k", a, 1, 1000000); break;
    case E_SEED: e->opt.seed = (uint64_t)parse_long("eval", "--seed", a, 0, 0x7fffffffffffffffL); break;
    case E_THREADS: e->threads = (int)parse_long("eval", "--threads", a, 0, 1024); break;
    case E_BATCH: e->batch = strcmp(a, "auto") ? (int)parse_long("eval", "--batch", a, 1, 65536) : 0; break;
    case E_JSON: e->json = 1; break;
    case E_QUIET: e->quiet = 1; break;
    case E_BIN:
        if (parse_binarize_mode(a, &e->bin, &e->threshold)) {
            if (!strncmp(a, "threshold:", 10)) // says what is wrong with T
                parse_double("eval", "--binarize threshold", a + 10, 0, 1);
            usage_error("eval", "--binarize expects none, dynamic or threshold[:T], not '%s'", a);
        }
        e->bin_text = a;
        break;
    case E_N: e->n = parse_long("eval", "-n", a, 0, 1L << 40); break;
    case E_PRIOR: e->prior = path_arg("eval", "--prior", a); break;
    default: model_flag("eval", key, a, &e->ma);
    }
}

/* The results as the table, or as one JSON object (--json). */
static void print_eval(const eval_args *ea, const vae_dataset *ds, const char *bin_text,
                       const vae_eval_result *rp, const double *kl_dim, const double *mu_var, int d,
                       int d1, double secs)
{
    const char *model = ea->ma.model, *split_name = ea->split;
    const vae_eval_result r = *rp;
    const vae_eval_opts opt = ea->opt;
    int batch = ea->batch;
    // latent dimensions by KL, most informative first
    int *order = xmalloc((size_t)d * sizeof *order);
    for (int j = 0; j < d; j++) order[j] = j;
    for (int a = 1; a < d; a++) // insertion sort: d is small and the order stable
        for (int b = a; b > 0 && kl_dim[order[b]] > kl_dim[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }

    if (ea->json) {
        printf("{\"model\":");
        json_str(stdout, model);
        printf(",\"data\":");
        json_str(stdout, vae_dataset_path(ds));
        printf(",\"binarize\":");
        json_str(stdout, bin_text);
        printf(",\"split\":\"%s\",\"n\":%ld,\"k\":%d,\"seed\":%llu,\"batch\":%d,\"latent\":%d",
               split_name, r.n, r.k, (unsigned long long)opt.seed, batch, d);
        static const char *keys[] = {"neg_elbo", "rec", "kl", "nll", "mse", "sse"};
        double vals[] = {r.neg_elbo, r.rec, r.kl, r.nll, r.mse, r.sse};
        for (int i = 0; i < 6; i++) {
            printf(",\"%s\":", keys[i]);
            json_num(stdout, vals[i]);
        }
        printf(",\"active_units\":%d,\"kl_dim\":[", r.active_units);
        for (int j = 0; j < d; j++) {
            if (j) putchar(',');
            json_num(stdout, kl_dim[j]);
        }
        printf("],\"mu_var\":[");
        for (int j = 0; j < d; j++) {
            if (j) putchar(',');
            json_num(stdout, mu_var[j]);
        }
        printf("],\"seconds\":%.3f}\n", secs);
    } else {
        if (d1) // the HVAE: the units and the table below are the top layer's
            printf("model         %s (latent z1 %d, z2 %d; the units below are z2's)\n", model, d1, d);
        else
            printf("model         %s (latent %d)\n", model, d);
        vae_dataset_info info;
        vae_dataset_describe(ds, &info);
        char part[96]; // a part of a divided training split: the shuffle says less than this
        if (ea->valid_fraction > 0 && strcmp(split_name, "test"))
            snprintf(part, sizeof part, "%s%g%% held out for validation",
                     strcmp(split_name, "valid") ? "the rest after the " : "the ",
                     100 * ea->valid_fraction);
        printf("data          %s (%s split: %s), %ld images, binarize %s\n", vae_dataset_path(ds),
               split_name, ea->valid_fraction > 0 && strcmp(split_name, "test") ? part : info.split,
               r.n, bin_text);
        printf("-elbo         %.3f nats per image = rec %.3f + kl %.3f\n", r.neg_elbo, r.rec, r.kl);
        printf("nll           %.3f nats per image (importance-sampled, k = %d, seed %llu)\n", r.nll,
               r.k, (unsigned long long)opt.seed);
        printf("mse           %.6f per pixel, %.3f summed per image (decoded posterior mean)\n",
               r.mse, r.sse);
        printf("active units  %d of %d (Var_x E_q[z_j|x] > 0.01)\n", r.active_units, d);
        printf("latent dims by KL:\n   dim        kl   var(mu)  active\n");
        for (int a = 0; a < d; a++) {
            int j = order[a];
            printf("  %4d  %8.3f  %8.4f  %s\n", j, kl_dim[j], mu_var[j], mu_var[j] > 0.01 ? "yes" : "no");
        }
        printf("time          %.1f s (%.1f images/s)\n", secs, r.n / (secs + 1e-9));
    }
    free(order);
}

int cmd_eval(int argc, char **argv)
{
    eval_args ea;
    memset(&ea, 0, sizeof ea);
    model_args_init(&ea.ma);
    vae_eval_opts_default(&ea.opt);
    ea.bin = VAE_BINARIZE_NONE;
    ea.threshold = 0.5f;
    int first = cli_parse(&eval_cmd, argc, argv, take_eval, &ea);
    if (first < argc) usage_error("eval", "unexpected argument '%s'", argv[first]);
    const char *split_name = ea.split, *bin_text = ea.bin_text;
    int bin = ea.bin, quiet = ea.quiet, threads = ea.threads, batch = ea.batch;
    float threshold = ea.threshold;
    long n = ea.n;
    vae_eval_opts opt = ea.opt;
    vae_model *m = model_load("eval", &ea.ma, batch ? batch : 1);
    if (!batch) { // auto: a 64x64 conv model's 512 rows took 585 MB and ran no faster
        size_t rows = ((size_t)EVAL_AUTO_MB << 20) / vae_model_row_bytes(m);
        batch = rows < 32 ? 32 : rows > 512 ? 512 : (int)rows;
        if (vae_model_set_max_batch(m, batch))
            die("eval: %d rows: %s; give a smaller --batch", batch, vae_model_errmsg(m));
        ea.batch = batch;
    }
    const char *model = ea.ma.model;
    // model.safetensors says train.binarize (if not none), checkpoint.safetensors run.binarize
    const char *trained = vae_model_meta(m, "train.binarize");
    if (!trained) trained = vae_model_meta(m, "run.binarize");
    if (!bin_text && trained && !parse_binarize_mode(trained, &bin, &threshold)) bin_text = trained;
    if (!bin_text) bin_text = "none";
    vae_dataset *ds = !strcmp(split_name, "valid") ? model_valid_split("eval", &ea.ma, m)
                      : model_split("eval", &ea.ma, m, strcmp(split_name, "test") ? VAE_SPLIT_TRAIN
                                                                                  : VAE_SPLIT_TEST);
    ea.valid_fraction = model_valid_fraction(m, model);
    long count = (long)vae_dataset_count(ds);
    if (n > count) die("-n %ld: %s holds %ld images", n, vae_dataset_path(ds), count);
    if (n == 0) n = count;
    float *x = load_images_binarized(ds, n, bin, threshold, opt.seed);

    vae_set_threads(threads);
    if (vae_model_config(m)->model == VAE_MODEL_VQVAE) { // no ELBO: codes and their prior
        vq_eval(m, model, ea.prior, ds, x, n, ea.json);
        free(x);
        vae_dataset_free(ds);
        vae_model_free(m);
        return 0;
    }
    if (ea.prior) usage_error("eval", "--prior applies to a VQ-VAE only");
    int d = vae_model_config(m)->latent;
    double *kl_dim = xmalloc((size_t)d * sizeof *kl_dim), *mu_var = xmalloc((size_t)d * sizeof *mu_var);
    vae_eval_image *img = xmalloc((size_t)n * sizeof *img);
    eval_progress pr = {isatty(2), quiet, now(), 0, img, 0, 0, 0};
    pr.t_last = pr.t_start;
    opt.progress = progress;
    opt.progress_ctx = &pr;
    vae_eval_result r;
    // a CVAE's labels; the first n images are evaluated
    if (vae_model_eval(m, x, need_labels(ds, m), n, &opt, &r, kl_dim, mu_var, img))
        die("%s: %s", model, vae_model_errmsg(m));
    double secs = now() - pr.t_start;

    const vae_config *cfg = vae_model_config(m);
    print_eval(&ea, ds, bin_text, &r, kl_dim, mu_var, d,
               cfg->model == VAE_MODEL_HVAE ? cfg->latent1 : 0, secs);
    free(img);
    free(kl_dim);
    free(mu_var);
    free(x);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}
