/* score.c - `vae score`: how a model's samples and reconstructions look to
 * the data set's own classifier (Fréchet distance in its penultimate
 * features, confidence and diversity, a conditional model's label
 * agreement), how much its latent codes know of the labels (k-NN and ridge
 * probes), and with --reference the distances of known degradations. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vq.h"

enum { S_CLS = 256, S_N, S_JSON, S_REF, S_SEED, S_K, S_THREADS, S_BATCH, S_PRIOR, S_TEMP };

static const cli_opt score_opts[] = {
    MODEL_OPTS,
    {"--classifier", S_CLS, "C", "a classifier from vae classifier train", NULL, "required"},
    {"--n", S_N, "N", "generated samples\n(the distance is biased by N: compare equal N)",
     "10000", NULL},
    {"--k", S_K, "K", "neighbours of the latent k-NN probe", "5", NULL},
    {"--seed", S_SEED, "N", "the samples' noise", "1", NULL},
    {"--threads", S_THREADS, "N", "threads; 0 = all cores", "0", NULL},
    {"--batch", S_BATCH, "N", "images per decoder call", "512", NULL},
    {"--prior", S_PRIOR, "FILE", "a VQ-VAE's prior over its codes (vae prior train)", NULL,
     "prior.safetensors beside the model"},
    {"--temperature", S_TEMP, "T", "a VQ-VAE's prior: sample softmax(logits / T)", NULL, "1"},
    {"--reference", S_REF, NULL,
     "also the reference points: N training images, and\nthe test images blurred or with noise",
     NULL, NULL},
    {"--json", S_JSON, NULL, "print one JSON object on stdout instead of the table", NULL, NULL},
    CLI_END};

const cli_command score_cmd = {
    "score",
    "Fréchet distance of samples and reconstructions, latent probes",
    "usage: vae score --model M --classifier C [options]\n"
    "Fréchet distance between the classifier's features of N generated samples\n"
    "and of the test images, the same for the test images' reconstructions, the\n"
    "classifier's confidence and diversity on the samples, and the k-NN and\n"
    "ridge-probe accuracies of the latent codes (docs/evaluation.md). A VQ-VAE's\n"
    "samples are drawn through its prior over the codes (vae prior train), as\n"
    "vae sample draws them.\n",
    score_opts, NULL};

typedef struct score_args {
    model_args ma;
    const char *cls, *prior;
    double temperature;
    long n;
    int k, threads, batch, json, ref;
    uint64_t seed;
} score_args;

static void take_score(int key, const char *a, int from_default, void *ctx)
{
    score_args *s = ctx;
    (void)from_default;
    switch (key) {
    case S_CLS: s->cls = path_arg("score", "--classifier", a); break;
    case S_N: s->n = parse_long("score", "--n", a, 2, 10000000); break;
    case S_K: s->k = (int)parse_long("score", "--k", a, 1, 1024); break;
    case S_SEED: s->seed = (uint64_t)parse_long("score", "--seed", a, 0, 1L << 62); break;
    case S_THREADS: s->threads = (int)parse_long("score", "--threads", a, 0, 1024); break;
    case S_BATCH: s->batch = (int)parse_long("score", "--batch", a, 1, 65536); break;
    case S_PRIOR: s->prior = path_arg("score", "--prior", a); break;
    case S_TEMP: s->temperature = parse_double("score", "--temperature", a, 1e-3, 100); break;
    case S_REF: s->ref = 1; break;
    case S_JSON: s->json = 1; break;
    default: model_flag("score", key, a, &s->ma);
    }
}

/* What the classifier makes of a set of images. */
typedef struct feat_set {
    double *mean, *cov; /* of the features */
    double fd;          /* against the test images' */
} feat_set;

typedef struct scorer {
    vae_classifier *c;
    int H, K;     /* features, classes */
    feat_set test;
} scorer;

/* Features (and, when prob is not NULL, the softmax) of n images x; their
 * statistics into fs and the distance to the test images'. */
static void measure(scorer *s, const float *x, long n, float *prob, feat_set *fs)
{
    vae_error err;
    float *f = xmalloc((size_t)n * s->H * sizeof *f);
    fs->mean = xmalloc((size_t)s->H * sizeof *fs->mean);
    fs->cov = xmalloc((size_t)s->H * s->H * sizeof *fs->cov);
    if (vae_classifier_predict(s->c, x, n, prob, f, &err) ||
        vae_feature_stats(f, n, s->H, fs->mean, fs->cov, &err))
        die("%s", err.msg);
    fs->fd = 0;
    if (s->test.mean &&
        vae_frechet_distance(fs->mean, fs->cov, s->test.mean, s->test.cov, s->H, &fs->fd, &err))
        die("%s", err.msg);
    free(f);
}

static void feat_free(feat_set *fs) { free(fs->mean), free(fs->cov); }

/* Decoder outputs as images: a Gaussian likelihood's means can leave [0, 1]. */
static void clip01(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
}

/* Codes (encoder means) of n images of ds, in blocks of B. */
static float *encode_split(vae_model *m, const vae_dataset *ds, long n, int B)
{
    int D = vae_model_input_size(m), d = vae_model_config(m)->latent;
    const uint8_t *y = vae_dataset_labels(ds);
    float *x = xmalloc((size_t)B * D * sizeof *x), *z = xmalloc((size_t)n * d * sizeof *z);
    uint32_t *idx = xmalloc((size_t)B * sizeof *idx);
    for (long i = 0; i < n; i += B) {
        int b = (int)(n - i < B ? n - i : B);
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_model_encode(m, x, y && vae_model_num_classes(m) ? y + i : NULL, b,
                             z + (size_t)i * d, NULL))
            die("%s", vae_model_errmsg(m));
    }
    free(x), free(idx);
    return z;
}

static const double blur_sigma[] = {0.5, 1, 2}, noise_sigma[] = {0.05, 0.1, 0.2};

int cmd_score(int argc, char **argv)
{
    score_args a;
    memset(&a, 0, sizeof a);
    model_args_init(&a.ma);
    a.temperature = 1;
    int first = cli_parse(&score_cmd, argc, argv, take_score, &a);
    if (first < argc) usage_error("score", "unexpected argument '%s'", argv[first]);
    if (!a.cls) usage_error("score", "--classifier is required");
    vae_set_threads(a.threads);
    vae_model *m = model_load("score", &a.ma, a.batch);
    // a VQ-VAE's samples come from its prior over the codes, not from N(0, I):
    // open it before any work, so that a missing one is the first thing said
    int vq = vae_model_config(m)->model == VAE_MODEL_VQVAE;
    if (!vq && (a.prior || a.temperature != 1))
        usage_error("score", "--prior and --temperature apply to a VQ-VAE only");
    vae_prior *vqp = vq ? vq_prior_open("score", a.ma.model, a.prior, m) : NULL;
    vae_error err;
    scorer s = {0};
    if (vae_classifier_load(a.cls, a.batch, &s.c, &err)) die("%s", err.msg);
    const vae_config *mc = vae_model_config(m);
    const vae_classifier_config *cc = vae_classifier_get_config(s.c);
    if (cc->channels != mc->channels || cc->height != mc->height || cc->width != mc->width)
        die("--classifier %s: for %dx%dx%d images, the model's are %dx%dx%d", a.cls, cc->channels,
            cc->height, cc->width, mc->channels, mc->height, mc->width);
    s.H = cc->hidden, s.K = cc->classes;
    int ncls = vae_model_num_classes(m);
    if (ncls > s.K)
        die("--classifier %s: %d classes, the conditional model draws %d", a.cls, s.K, ncls);
    vae_dataset *test = model_split("score", &a.ma, m, VAE_SPLIT_TEST);
    vae_dataset *train = model_split("score", &a.ma, m, VAE_SPLIT_TRAIN);
    const uint8_t *ytr = vae_dataset_labels(train), *yte = vae_dataset_labels(test);
    long n_test = (long)vae_dataset_count(test), n_train = (long)vae_dataset_count(train), N = a.n;
    int D = vae_model_input_size(m), d = mc->latent, B = a.batch;
    double t0 = now();

    // the test images: the reference every distance is measured against
    float *xte = load_images(test, n_test);
    measure(&s, xte, n_test, NULL, &s.test);

    // N samples decoded from the prior (a CVAE's with labels 0, 1, ... in turn; a
    // VQ-VAE's code grids drawn by its PixelCNN)
    float *xs = xmalloc((size_t)N * D * sizeof *xs), *z = xmalloc((size_t)B * d * sizeof *z);
    float *prob = xmalloc((size_t)N * s.K * sizeof *prob);
    uint8_t *lab = xmalloc((size_t)N);
    vae_rng rng;
    vae_rng_seed(&rng, a.seed);
    if (vqp) {
        memset(lab, 0, (size_t)N);
        vq_sample_images(m, vqp, N, a.seed, a.temperature, xs);
        vae_prior_free(vqp);
        vae_set_threads(a.threads);
    }
    for (long i = 0; i < N && !vqp; i += B) {
        int b = (int)(N - i < B ? N - i : B);
        for (int j = 0; j < b; j++) lab[i + j] = (uint8_t)(ncls ? (i + j) % ncls : 0);
        if (vae_model_prior_sample(m, &rng, b, z) ||
            vae_model_decode_sample(m, z, ncls ? lab + i : NULL, b, &rng, xs + (size_t)i * D))
            die("%s", vae_model_errmsg(m));
    }
    clip01(xs, (size_t)N * D);
    feat_set samples, recon;
    measure(&s, xs, N, prob, &samples);
    double h_mean, h_of_mean;
    vae_class_entropy(prob, N, s.K, &h_mean, &h_of_mean);
    double agree = NAN;
    if (ncls) {
        long right = 0;
        for (long i = 0; i < N; i++) right += argmax(prob + (size_t)i * s.K, s.K) == lab[i];
        agree = (double)right / N;
    }
    free(prob), free(lab);

    // the test images' reconstructions: decoded encoder means
    float *zte = encode_split(m, test, n_test, B), *xr = xs; // the samples' room, reused
    if (N < n_test) xr = xs = realloc(xs, (size_t)n_test * D * sizeof *xs);
    if (!xr) die("out of memory");
    for (long i = 0; i < n_test; i += B) {
        int b = (int)(n_test - i < B ? n_test - i : B);
        if (vae_model_decode(m, zte + (size_t)i * d, ncls ? yte + i : NULL, b, xr + (size_t)i * D))
            die("%s", vae_model_errmsg(m));
    }
    clip01(xr, (size_t)n_test * D);
    measure(&s, xr, n_test, NULL, &recon);

    // the latent probes: train on the training split's codes, test on the test split's
    double knn = NAN, ridge = NAN;
    if (ytr && yte) {
        float *ztr = encode_split(m, train, n_train, B);
        vae_dataset_info info;
        vae_dataset_describe(train, &info);
        if (vae_knn_accuracy(ztr, ytr, n_train, zte, yte, n_test, d, a.k, &knn, &err) ||
            vae_ridge_probe_accuracy(ztr, ytr, n_train, zte, yte, n_test, d,
                                     info.num_classes > 1 ? info.num_classes : 2, 1e-4, &ridge,
                                     &err))
            die("%s", err.msg);
        free(ztr);
    }
    free(zte);

    // reference points: N training images (the noise floor), degraded test images
    double fd_train = NAN, fd_blur[3], fd_noise[3];
    if (a.ref) {
        long nt = N < n_train ? N : n_train;
        float *xt = load_images(train, nt);
        feat_set f;
        measure(&s, xt, nt, NULL, &f);
        fd_train = f.fd;
        feat_free(&f), free(xt);
        for (int i = 0; i < 3; i++) {
            if (vae_images_blur(xte, n_test, mc->channels, mc->height, mc->width, blur_sigma[i],
                                xr, &err))
                die("%s", err.msg);
            measure(&s, xr, n_test, NULL, &f);
            fd_blur[i] = f.fd;
            feat_free(&f);
            vae_images_noise(xte, (size_t)n_test * D, noise_sigma[i], a.seed, xr);
            measure(&s, xr, n_test, NULL, &f);
            fd_noise[i] = f.fd;
            feat_free(&f);
        }
    }
    double secs = now() - t0;
    report_data(&a.ma.dargs, train, test);
    const char *acc = vae_classifier_meta(s.c, "test_accuracy");
    if (a.json) {
        printf("{\"model\":");
        json_str(stdout, a.ma.model);
        printf(",\"classifier\":");
        json_str(stdout, a.cls);
        printf(",\"classifier_test_accuracy\":");
        json_num(stdout, acc ? strtod(acc, NULL) : NAN);
        printf(",\"n\":%ld,\"test_images\":%ld,\"features\":%d,\"fd_samples\":", N, n_test, s.H);
        json_num(stdout, samples.fd);
        printf(",\"fd_recon\":");
        json_num(stdout, recon.fd);
        printf(",\"mean_entropy\":");
        json_num(stdout, h_mean);
        printf(",\"entropy_of_mean\":");
        json_num(stdout, h_of_mean);
        printf(",\"label_agreement\":");
        json_num(stdout, agree);
        printf(",\"knn_k\":%d,\"knn_accuracy\":", a.k);
        json_num(stdout, knn);
        printf(",\"ridge_accuracy\":");
        json_num(stdout, ridge);
        if (a.ref) {
            printf(",\"fd_train\":");
            json_num(stdout, fd_train);
            for (int i = 0; i < 3; i++) {
                printf(",\"fd_blur_%g\":", blur_sigma[i]);
                json_num(stdout, fd_blur[i]);
            }
            for (int i = 0; i < 3; i++) {
                printf(",\"fd_noise_%g\":", noise_sigma[i]);
                json_num(stdout, fd_noise[i]);
            }
        }
        printf(",\"seconds\":%.3f}\n", secs);
    } else {
        printf("classifier    %s (test accuracy %.2f%%), %d features\n", a.cls,
               acc ? 100 * strtod(acc, NULL) : NAN, s.H);
        printf("frechet       samples %.3f (N = %ld against the %ld test images)\n", samples.fd, N,
               n_test);
        printf("              reconstructions %.3f (the %ld test images)\n", recon.fd, n_test);
        printf("samples       mean entropy %.4f nats (confidence), entropy of the mean %.4f nats "
               "(diversity; log %d = %.4f)\n", h_mean, h_of_mean, s.K, log(s.K));
        if (ncls) printf("conditional   %.2f%% of the samples classified as their label\n", 100 * agree);
        if (ytr && yte)
            printf("latent        k-NN (k = %d) %.2f%%, ridge probe %.2f%% on the test labels "
                   "(codes of %ld training images)\n", a.k, 100 * knn, 100 * ridge, n_train);
        else printf("latent        no labels: no probes\n");
        if (a.ref) {
            printf("reference     %ld training images: %.3f (the noise floor at this N)\n",
                   N < n_train ? N : n_train, fd_train);
            printf("              blur sigma %g / %g / %g px: %.3f / %.3f / %.3f\n", blur_sigma[0],
                   blur_sigma[1], blur_sigma[2], fd_blur[0], fd_blur[1], fd_blur[2]);
            printf("              noise sigma %g / %g / %g: %.3f / %.3f / %.3f\n", noise_sigma[0],
                   noise_sigma[1], noise_sigma[2], fd_noise[0], fd_noise[1], fd_noise[2]);
        }
        printf("time          %.1f s\n", secs);
    }
    feat_free(&samples), feat_free(&recon), feat_free(&s.test);
    free(xs), free(z), free(xte);
    vae_classifier_free(s.c);
    vae_model_free(m);
    vae_dataset_free(train);
    vae_dataset_free(test);
    return 0;
}
