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

#include "cli.h"

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
    static const struct option sample_opts[] = {{"model", 1, 0, 'm'}, {"seed", 1, 0, 's'},
                                                {"scale", 1, 0, 'k'}, {"help", 0, 0, 'h'},
                                                {0, 0, 0, 0}};
    static const struct option recon_opts[] = {{"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},
                                               {"scale", 1, 0, 'k'}, {"help", 0, 0, 'h'},
                                               {0, 0, 0, 0}};
    const struct option *longopts = recon ? recon_opts : sample_opts;
    const char *model = NULL, *data = DEFAULT_DATA, *out = recon ? "recon.png" : "samples.png";
    int n = recon ? 32 : 64, scale = 2, c;
    uint64_t seed = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = path_arg(cmd, "--model", optarg); break;
        case 'd': data = path_arg(cmd, "--data", optarg); break;
        case 's': seed = (uint64_t)parse_long(cmd, "--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case 'k': scale = (int)parse_long(cmd, "--scale", optarg, 1, 16); break;
        case 'n': n = (int)parse_long(cmd, "-n", optarg, 1, 4096); break;
        case 'o': out = path_arg(cmd, "-o", optarg); break;
        case 'h': fputs(recon ? recon_help : sample_help, stdout); exit(0);
        default: bad_option(cmd, c, argv, longopts);
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
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "pca")) return cmd_pca(argc, argv);
    usage_error(NULL, "unknown command '%s'", cmd);
    return 2;
}
