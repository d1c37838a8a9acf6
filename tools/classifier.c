/* classifier.c - `vae classifier train`: trains the scoring classifier
 * (vae/score.h) on a labelled data set and stores it, with its test
 * accuracy, for `vae score`. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { C_OUT = 256, C_EPOCHS, C_BATCH, C_LR, C_SEED, C_THREADS, C_QUIET };

static const cli_opt classifier_opts[] = {
    DATA_OPTS,
    {"--out", C_OUT, "FILE", "the classifier (safetensors)", NULL, "required"},
    {"--epochs", C_EPOCHS, "N", "passes over the training split", "5", NULL},
    {"--batch", C_BATCH, "N", "images per Adam step", "128", NULL},
    {"--lr", C_LR, "LR", "Adam's learning rate", "0.001", NULL},
    {"--seed", C_SEED, "N", "initial weights and the shuffles", "1", NULL},
    {"--threads", C_THREADS, "N", "threads; 0 = all cores", "0", NULL},
    {"--quiet", C_QUIET, NULL, "no per-epoch lines on stderr", NULL, NULL},
    CLI_END};

const cli_command classifier_cmd = {
    "classifier",
    "train the classifier vae score measures samples with",
    "usage: vae classifier train --out FILE [options]\n"
    "Trains a small convolutional classifier (conv 32, conv 64 stride 2, linear\n"
    "128, softmax) on a labelled data set's training split, prints its test\n"
    "accuracy and stores both: vae score measures samples in its features.\n",
    classifier_opts, NULL};

typedef struct cls_args {
    const char *out;
    data_args dargs;
    int epochs, batch, threads, quiet;
    double lr;
    uint64_t seed;
} cls_args;

static void take_cls(int key, const char *a, int from_default, void *ctx)
{
    cls_args *p = ctx;
    const char *cmd = "classifier train";
    (void)from_default;
    switch (key) {
    case C_OUT: p->out = path_arg(cmd, "--out", a); break;
    case C_EPOCHS: p->epochs = (int)parse_long(cmd, "--epochs", a, 1, 100000); break;
    case C_BATCH: p->batch = (int)parse_long(cmd, "--batch", a, 1, 65536); break;
    case C_LR: p->lr = parse_double(cmd, "--lr", a, 1e-12, 10); break;
    case C_SEED: p->seed = (uint64_t)parse_long(cmd, "--seed", a, 0, 1L << 62); break;
    case C_THREADS: p->threads = (int)parse_long(cmd, "--threads", a, 0, 1024); break;
    case C_QUIET: p->quiet = 1; break;
    case OPT_DATA: p->dargs.path = path_arg(cmd, "--data", a); break;
    default: data_flag(cmd, key, a, &p->dargs);
    }
}

/* A split's labels, each below `classes`; dies naming the file otherwise. */
static const uint8_t *classifier_labels(const vae_dataset *ds, int classes)
{
    const uint8_t *y = vae_dataset_labels(ds);
    if (!y)
        die("%s: has no labels, and the classifier needs them (MNIST layout: the matching "
            "-labels-idx1-ubyte file; PNG folders: a sub-folder per class)", vae_dataset_path(ds));
    for (size_t i = 0; i < vae_dataset_count(ds); i++)
        if (y[i] >= classes)
            die("%s: label %d of image %zu is past the training split's %d classes",
                vae_dataset_path(ds), y[i], i, classes);
    return y;
}

static double classifier_accuracy(vae_classifier *c, const vae_dataset *ds, const uint8_t *y)
{
    long n = (long)vae_dataset_count(ds);
    int K = vae_classifier_get_config(c)->classes;
    float *x = load_images(ds, n), *prob = xmalloc((size_t)n * K * sizeof *prob);
    vae_error err;
    if (vae_classifier_predict(c, x, n, prob, NULL, &err)) die("%s", err.msg);
    long right = 0;
    for (long i = 0; i < n; i++) right += argmax(prob + (size_t)i * K, K) == y[i];
    free(x), free(prob);
    return (double)right / (double)n;
}

static int cmd_classifier_train(int argc, char **argv)
{
    cls_args a;
    memset(&a, 0, sizeof a);
    data_args_init(&a.dargs);
    int first = cli_parse(&classifier_cmd, argc, argv, take_cls, &a);
    if (first < argc) usage_error("classifier train", "unexpected argument '%s'", argv[first]);
    if (!a.out) usage_error("classifier train", "--out is required");
    check_output("--out", a.out);
    vae_set_threads(a.threads);
    vae_dataset *train, *test;
    open_data_args("classifier train", &a.dargs, &train, &test);
    vae_dataset_info info;
    vae_dataset_describe(train, &info);
    int classes = info.num_classes;
    const uint8_t *ytr = classifier_labels(train, classes > 1 ? classes : 256);
    if (classes < 2) die("%s: one class only; a classifier needs two or more", vae_dataset_path(train));
    const uint8_t *yte = classifier_labels(test, classes);

    vae_classifier_config cfg;
    vae_classifier_config_default(&cfg);
    vae_dataset_shape(train, &cfg.channels, &cfg.height, &cfg.width);
    cfg.classes = classes;
    vae_classifier *c;
    vae_error err;
    if (vae_classifier_create(&cfg, a.batch, a.seed, &c, &err)) die("%s", err.msg);
    vae_adam adam;
    vae_adam_default(&adam);
    adam.lr = (float)a.lr;
    vae_classifier_set_adam(c, &adam);
    report_data(&a.dargs, train, test);

    long n = (long)vae_dataset_count(train);
    int D = cfg.channels * cfg.height * cfg.width;
    uint32_t *perm = xmalloc((size_t)n * sizeof *perm);
    float *x = xmalloc((size_t)a.batch * D * sizeof *x);
    uint8_t *y = xmalloc((size_t)a.batch);
    vae_rng rng;
    vae_rng_seed(&rng, a.seed ^ 0x5eed);
    for (long i = 0; i < n; i++) perm[i] = (uint32_t)i;
    double t0 = now(), acc = 0;
    for (int e = 1; e <= a.epochs; e++) {
        for (long i = n - 1; i > 0; i--) { // Fisher-Yates
            long j = (long)vae_rng_below(&rng, (uint64_t)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double loss = 0;
        long right = 0;
        for (long s = 0; s < n; s += a.batch) {
            int B = (int)(n - s < a.batch ? n - s : a.batch);
            vae_dataset_batch(train, perm + s, B, VAE_BINARIZE_NONE, 0, NULL, x);
            for (int i = 0; i < B; i++) y[i] = ytr[perm[s + i]];
            double l;
            int r;
            if (vae_classifier_train_step(c, x, y, B, &l, &r, &err)) die("%s", err.msg);
            loss += l, right += r;
        }
        acc = classifier_accuracy(c, test, yte);
        if (!a.quiet)
            fprintf(stderr, "epoch %d/%d  loss %.4f  train accuracy %.2f%%  test accuracy %.2f%%  "
                    "%.1f s\n", e, a.epochs, loss / n, 100.0 * right / n, 100 * acc, now() - t0);
    }
    double secs = now() - t0;
    char acc_s[32], ep_s[16], secs_s[32], n_s[32], seed_s[32], opts[256];
    snprintf(acc_s, sizeof acc_s, "%.6f", acc);
    snprintf(ep_s, sizeof ep_s, "%d", a.epochs);
    snprintf(secs_s, sizeof secs_s, "%.1f", secs);
    snprintf(n_s, sizeof n_s, "%zu", vae_dataset_count(test));
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)a.seed);
    data_options_text(&a.dargs, opts, sizeof opts);
    const char *meta[] = {"test_accuracy", acc_s, "test_images", n_s, "train.epochs", ep_s,
                          "train.seconds", secs_s, "train.seed", seed_s, "train.data", a.dargs.path,
                          "data.options", opts, NULL};
    if (vae_classifier_save(c, a.out, meta, &err)) die("%s", err.msg);
    printf("test accuracy %.2f%% (%s test images) after %d epoch%s, %.1f s; wrote %s\n", 100 * acc,
           n_s, a.epochs, a.epochs == 1 ? "" : "s", secs, a.out);
    free(perm), free(x), free(y);
    vae_classifier_free(c);
    vae_dataset_free(train);
    vae_dataset_free(test);
    return 0;
}

int cmd_classifier(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train")) return cmd_classifier_train(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cli_help(&classifier_cmd, stdout);
        return 0;
    }
    usage_error("classifier", "%s: the one subcommand is 'train'",
                argc >= 2 ? argv[1] : "a subcommand is missing");
}
