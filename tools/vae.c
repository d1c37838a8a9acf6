/*
 * vae.c - the command-line tool: train, sample, reconstruct, info; the
 * picture commands (interpolate, traverse, manifold, embed, curves) are in
 * pictures.c.
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

#include "cli.h"
#include "pictures.h"

/* ------------------------------------------------- sample / reconstruct */

static const char sample_help[] =
    "usage: vae sample --model M [options]\n"
    "Decodes z ~ N(0, I) and writes a grid of the decoder's means.\n"
    "  --model M          checkpoint (model.safetensors) or its run directory [required]\n"
    "  -n N               images [64]\n"
    "  -o FILE            output PNG [samples.png]\n"
    "  --seed N           [1]\n"
    "  --scale K          draw each pixel KxK [2]\n"
    "  --label K          a conditional VAE's class to draw [a row per class]\n";

static const char recon_help[] =
    "usage: vae reconstruct --model M [options]\n"
    "Writes rows of test images (spread evenly over the model's test split),\n"
    "each followed by its reconstruction (the decoded posterior mean).\n"
    MODEL_HELP
    "  -n N               images [32]\n"
    "  -o FILE            output PNG [recon.png]\n"
    "  --scale K          draw each pixel KxK [2]\n";

static int cmd_sample(int argc, char **argv)
{
    const char *cmd = "sample";
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"seed", 1, 0, 's'},
                                         {"scale", 1, 0, 'k'}, {"help", 0, 0, 'h'},
                                         {"label", 1, 0, 'l'}, {0, 0, 0, 0}};
    const char *model = NULL, *out = "samples.png";
    int n = 64, scale = 2, c, label = -1;
    uint64_t seed = 1;
    opterr = 0;
    while ((c = next_option(cmd, argc, argv, ":n:o:", opts)) != -1) {
        switch (c) {
        case 'm': model = path_arg(cmd, "--model", optarg); break;
        case 's': seed = (uint64_t)parse_long(cmd, "--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case 'k': scale = (int)parse_long(cmd, "--scale", optarg, 1, 16); break;
        case 'l': label = (int)parse_long(cmd, "--label", optarg, 0, 255); break;
        case 'n': n = (int)parse_long(cmd, "-n", optarg, 1, 4096); break;
        case 'o': out = path_arg(cmd, "-o", optarg); break;
        case 'h': fputs(sample_help, stdout); exit(0);
        default: bad_option(cmd, c, argv, opts);
        }
    }
    if (optind < argc) usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model) usage_error(cmd, "--model is required");
    check_output("-o", out);
    vae_model *m = load_model(model, 256);
    if (label >= vae_model_num_classes(m))
        usage_error(cmd, vae_model_num_classes(m) ? "--label %d: the model has classes 0..%d"
                                                  : "--label %d: the model is not conditional "
                                                    "(train with --model cvae)",
                    label, vae_model_num_classes(m) - 1);
    write_samples(m, out, n, seed, scale, label);
    fprintf(stderr, "wrote %s\n", out);
    vae_model_free(m);
    return 0;
}

static int cmd_reconstruct(int argc, char **argv)
{
    const char *cmd = "reconstruct";
    static const struct option opts[] = {MODEL_LONGOPTS, {"scale", 1, 0, 'k'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = "recon.png";
    int n = 32, scale = 2, c;
    model_args ma;
    model_args_init(&ma);
    opterr = 0;
    while ((c = next_option(cmd, argc, argv, ":n:o:", opts)) != -1) {
        switch (c) {
        case 'k': scale = (int)parse_long(cmd, "--scale", optarg, 1, 16); break;
        case 'n': n = (int)parse_long(cmd, "-n", optarg, 1, 4096); break;
        case 'o': out = path_arg(cmd, "-o", optarg); break;
        case 'h': fputs(recon_help, stdout); exit(0);
        default:
            if (!model_flag(cmd, c, optarg, &ma)) bad_option(cmd, c, argv, opts);
        }
    }
    if (optind < argc) usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    vae_model *m = model_load(cmd, &ma, 256);
    check_output("-o", out);
    vae_dataset *ds = model_split(cmd, &ma, m, VAE_SPLIT_TEST);
    write_recon(m, ds, out, n, scale);
    report_data(&ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s\n", out);
    vae_dataset_free(ds);
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
    char arch[256];
    arch_text(c, arch, sizeof arch);
    printf("architecture %s (ReLU; latent as mu and log-variance%s)\n", arch,
           c->arch == VAE_ARCH_CONV ? "; kernel 4, stride 2" : "");
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN)
        printf("sigma        %g%s\n", (double)c->sigma,
               c->sigma_mode == VAE_SIGMA_FIXED     ? " (fixed)"
               : c->sigma_mode == VAE_SIGMA_LEARNED ? " at the start; learned (tensor log_sigma)"
                                                    : " at the start; learned per pixel (tensor log_sigma)");
    printf("parameters   %zu\n", vae_model_num_params(m));
    printf("beta         %g\n", (double)c->beta);
    static const char *keys[] = {"train.epoch", "train.adam_steps", "train.seed", "train.data",
                                 "train.test_neg_elbo"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = vae_model_meta(m, keys[i]);
        if (v) printf("%-12s %s\n", keys[i] + 6, v);
    }
    const char *split = vae_model_meta(m, "data.split"), *dopt = vae_model_meta(m, "data.options");
    if (split) printf("%-12s %s\n", "test split", split);
    if (dopt) { // only what differs from the defaults: an IDX model has no CSV settings
        data_args def;
        data_args_init(&def);
        char dflt[512], out[512] = "";
        data_options_text(&def, dflt, sizeof dflt);
        for (const char *p = dopt; *p;) {
            size_t len = strcspn(p, ";");
            const char *q = strstr(dflt, p);
            if (!(q && (q == dflt || q[-1] == ';') && (q[len] == ';' || !q[len])))
                snprintf(out + strlen(out), sizeof out - strlen(out), "%s%.*s", *out ? " " : "",
                         (int)len, p);
            p += len + (p[len] == ';');
        }
        printf("%-12s %s\n", "data read", *out ? out : "the defaults");
    }
    const char *classes = vae_model_meta(m, "data.classes");
    if (classes && *classes) printf("%-12s %s\n", "classes", classes);
    vae_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const char main_help[] =
    "usage: vae COMMAND [options]    (vae COMMAND --help for its options)\n"
    "A Variational Autoencoder toolkit (version " VAE_VERSION ").\n"
    "\n"
    "commands:\n"
    "  train        train a VAE on IDX, a PNG folder or CSV [Fashion-MNIST]\n"
    "  sample       decode samples from the prior into a PNG grid\n"
    "  reconstruct  test images and their reconstructions as a PNG grid\n"
    "  info         a checkpoint's architecture and training metadata\n"
    "  interpolate  decode the path between two test images' codes (PNG strip)\n"
    "  traverse     vary each latent dimension in turn, by KL (PNG grid)\n"
    "  manifold     decode a 2-D grid of normal quantiles (PNG grid)\n"
    "  embed        test-set latent codes as CSV, and a scatter plot by label\n"
    "  curves       training curves from a run's metrics.jsonl (PNG plot)\n"
    "  eval         -ELBO, importance-sampled NLL, KL per dimension, active units\n"
    "  pca          the PCA (linear autoencoder) baseline's reconstruction error\n"
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
    invoked_as = argv[0];
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
    if (!strcmp(cmd, "sample")) return cmd_sample(argc, argv);
    if (!strcmp(cmd, "reconstruct")) return cmd_reconstruct(argc, argv);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "interpolate")) return cmd_interpolate(argc, argv);
    if (!strcmp(cmd, "traverse")) return cmd_traverse(argc, argv);
    if (!strcmp(cmd, "manifold")) return cmd_manifold(argc, argv);
    if (!strcmp(cmd, "embed")) return cmd_embed(argc, argv);
    if (!strcmp(cmd, "curves")) return cmd_curves(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "pca")) return cmd_pca(argc, argv);
    usage_error(NULL, "unknown command '%s'", cmd);
    return 2;
}
