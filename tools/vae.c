/*
 * vae.c - the command-line tool: main and its list of commands; sample,
 * reconstruct, info here, train in train.c, the picture commands
 * (interpolate, traverse, manifold, embed, curves) in pictures.c.
 * Everything user-facing lives here: flags, progress display, output files.
 * The library does the work and reports errors; this file prints them.
 */
#define _GNU_SOURCE
#include <errno.h>
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
#include "vq.h"

/* ------------------------------------------------- sample / reconstruct */

/* The options of sample and reconstruct. */
typedef struct grid_args {
    const char *cmd, *model, *out, *prior;
    model_args ma;
    int n, scale, label;
    uint64_t seed;
    double temperature;
} grid_args;

enum { G_MODEL = 256, G_N, G_OUT, G_SEED, G_SCALE, G_LABEL, G_PRIOR, G_TEMP };

static void take_grid(int key, const char *a, int from_default, void *ctx)
{
    grid_args *g = ctx;
    (void)from_default;
    switch (key) {
    case G_MODEL: g->model = path_arg(g->cmd, "--model", a); break;
    case G_N: g->n = (int)parse_long(g->cmd, "-n", a, 1, 4096); break;
    case G_OUT: g->out = path_arg(g->cmd, "-o", a); break;
    case G_SEED: g->seed = (uint64_t)parse_long(g->cmd, "--seed", a, 0, 0x7fffffffffffffffL); break;
    case G_SCALE: g->scale = (int)parse_long(g->cmd, "--scale", a, 1, 16); break;
    case G_LABEL: g->label = (int)parse_long(g->cmd, "--label", a, 0, 255); break;
    case G_PRIOR: g->prior = path_arg(g->cmd, "--prior", a); break;
    case G_TEMP: g->temperature = parse_double(g->cmd, "--temperature", a, 1e-3, 100); break;
    default: model_flag(g->cmd, key, a, &g->ma);
    }
}

static void grid_args_parse(const cli_command *c, int argc, char **argv, grid_args *g)
{
    memset(g, 0, sizeof *g);
    g->cmd = c->name;
    g->label = -1;
    g->temperature = 1;
    model_args_init(&g->ma);
    int first = cli_parse(c, argc, argv, take_grid, g);
    if (first < argc) usage_error(c->name, "unexpected argument '%s'", argv[first]);
    check_output("-o", g->out);
    check_not_input("-o", g->out, "--model", g->model ? g->model : g->ma.model);
    check_not_input("-o", g->out, "--data", g->ma.data);
}

static const cli_opt sample_opts[] = {
    {"--model", G_MODEL, "M", "checkpoint (model.safetensors) or its run directory", NULL, "required"},
    {"-n", G_N, "N", "images", "64", NULL},
    {"-o", G_OUT, "FILE", "output PNG", "samples.png", NULL},
    {"--seed", G_SEED, "N", "the noise seed", "1", NULL},
    {"--scale", G_SCALE, "K", "draw each pixel KxK", "2", NULL},
    {"--label", G_LABEL, "K", "a conditional VAE's class to draw", NULL, "a row per class"},
    {"--prior", G_PRIOR, "FILE", "a VQ-VAE's prior over its codes (vae prior train)", NULL,
     "prior.safetensors beside the model"},
    {"--temperature", G_TEMP, "T", "a VQ-VAE's prior: sample softmax(logits / T)", NULL, "1"},
    CLI_END};

static const cli_command sample_cmd = {
    "sample",
    "decode samples from the prior into a PNG grid",
    "usage: vae sample --model M [options]\n"
    "Decodes z ~ N(0, I) and writes a grid of the decoder's means. A VQ-VAE draws\n"
    "its code grids from its prior (vae prior train) and decodes those.\n",
    sample_opts, NULL};

static const cli_opt recon_opts[] = {
    MODEL_OPTS,
    {"-n", G_N, "N", "images", "32", NULL},
    {"-o", G_OUT, "FILE", "output PNG", "recon.png", NULL},
    {"--scale", G_SCALE, "K", "draw each pixel KxK", "2", NULL},
    CLI_END};

static const cli_command recon_cmd = {
    "reconstruct",
    "test images and their reconstructions as a PNG grid",
    "usage: vae reconstruct --model M [options]\n"
    "Writes rows of test images (spread evenly over the model's test split),\n"
    "each followed by its reconstruction (the decoded posterior mean).\n",
    recon_opts, NULL};

static int cmd_sample(int argc, char **argv)
{
    grid_args g;
    grid_args_parse(&sample_cmd, argc, argv, &g);
    if (!g.model) usage_error(g.cmd, "--model is required");
    vae_model *m = load_model(g.model, 256);
    if (g.label >= vae_model_num_classes(m))
        usage_error(g.cmd, vae_model_num_classes(m) ? "--label %d: the model has classes 0..%d"
                                                    : "--label %d: the model is not conditional "
                                                      "(train with --model cvae)",
                    g.label, vae_model_num_classes(m) - 1);
    int vq = vae_model_config(m)->model == VAE_MODEL_VQVAE;
    if (!vq && (g.prior || g.temperature != 1))
        usage_error(g.cmd, "--prior and --temperature apply to a VQ-VAE only");
    if (vq) vq_write_samples(m, g.model, g.prior, g.out, g.n, g.seed, g.temperature, g.scale);
    else write_samples(m, g.out, g.n, g.seed, g.scale, g.label);
    fprintf(stderr, "wrote %s\n", g.out);
    vae_model_free(m);
    return 0;
}

static int cmd_reconstruct(int argc, char **argv)
{
    grid_args g;
    grid_args_parse(&recon_cmd, argc, argv, &g);
    vae_model *m = model_load(g.cmd, &g.ma, 256);
    vae_dataset *ds = model_split(g.cmd, &g.ma, m, VAE_SPLIT_TEST);
    write_recon(m, ds, g.out, g.n, g.scale);
    report_data(&g.ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s\n", g.out);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- info */

static const cli_opt no_opts[] = {CLI_END};

static const cli_command info_cmd = {
    "info",
    "a checkpoint's architecture and training metadata",
    "usage: vae info MODEL\n"
    "Prints a checkpoint's architecture, size and metadata; MODEL is a checkpoint\n"
    "or a run directory.\n",
    no_opts, NULL};

void print_info(FILE *f, const char *path, const vae_model *m)
{
    const vae_config *c = vae_model_config(m);
    fprintf(f, "checkpoint   %s\n", path);
    fprintf(f, "model        %s, %s likelihood\n", vae_model_meta(m, "vae.model"),
           vae_model_meta(m, "vae.likelihood"));
    fprintf(f, "input        %dx%dx%d (D = %d)\n", c->channels, c->height, c->width,
           vae_model_input_size(m));
    char arch[256];
    arch_text(c, arch, sizeof arch);
    static const char *acts[] = {"ReLU", "tanh", "softplus", "gated"};
    int vq = c->model == VAE_MODEL_VQVAE;
    fprintf(f, "architecture %s (%s; latent as %s%s)\n", arch, acts[c->activation],
           vq ? "the nearest codebook entries, 1x1 convolutions around them"
              : "mu and log-variance", c->arch == VAE_ARCH_CONV ? "; kernel 4, stride 2" : "");
    if (vq)
        fprintf(f, "codebook     %d codes of %d, commitment %g, update %s (decay %g), restarts "
                "below %g\n", c->codebook, c->code_dim, (double)c->commitment,
                c->codebook_update == VAE_CODEBOOK_EMA ? "ema" : "loss", (double)c->ema_decay,
                (double)c->restart_dead);
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN)
        fprintf(f, "sigma        %g%s\n", (double)c->sigma,
               c->sigma_mode == VAE_SIGMA_FIXED     ? " (fixed)"
               : c->sigma_mode == VAE_SIGMA_LEARNED ? " at the start; learned (tensor log_sigma)"
                                                    : " at the start; learned per pixel (tensor log_sigma)");
    fprintf(f, "parameters   %zu\n", vae_model_num_params(m));
    fprintf(f, "beta         %g\n", (double)c->beta);
    static const char *keys[] = {"train.epoch", "train.adam_steps", "train.seed", "train.data",
                                 "train.test_neg_elbo"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = vae_model_meta(m, keys[i]);
        if (v) fprintf(f, "%-12s %s\n", keys[i] + 6, v);
    }
    const char *decay = vae_model_meta(m, "train.lr_decay"), *base = vae_model_meta(m, "run.lr_base");
    if (decay && base) fprintf(f, "%-12s %s from lr %g\n", "lr decay", decay, strtod(base, NULL));
    else if (decay) fprintf(f, "%-12s %s\n", "lr decay", decay);
    const char *split = vae_model_meta(m, "data.split"), *dopt = vae_model_meta(m, "data.options");
    const char *perc = vae_model_meta(m, "train.perceptual"); // "" without --perceptual
    if (perc && *perc) fprintf(f, "%-12s %s\n", "perceptual", perc);
    if (split) fprintf(f, "%-12s %s\n", "test split", split);
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
        fprintf(f, "%-12s %s\n", "data read", *out ? out : "the defaults");
    }
    const char *classes = vae_model_meta(m, "data.classes");
    if (classes && *classes) fprintf(f, "%-12s %s\n", "classes", classes);
}

static int cmd_info(int argc, char **argv)
{
    int first = cli_parse(&info_cmd, argc, argv, NULL, NULL);
    if (first + 1 != argc) usage_error("info", "expects exactly one checkpoint path");
    vae_model *m = load_model(argv[first], 1);
    print_info(stdout, argv[first], m);
    vae_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- main */

/* The commands in the order vae --help lists them, each with its code. */
static const struct {
    const cli_command *cmd;
    int (*run)(int argc, char **argv);
} commands[] = {
    {&train_cmd, cmd_train},
    {&sample_cmd, cmd_sample},
    {&recon_cmd, cmd_reconstruct},
    {&info_cmd, cmd_info},
    {&interpolate_cmd, cmd_interpolate},
    {&traverse_cmd, cmd_traverse},
    {&manifold_cmd, cmd_manifold},
    {&embed_cmd, cmd_embed},
    {&curves_cmd, cmd_curves},
    {&eval_cmd, cmd_eval},
    {&pca_cmd, cmd_pca},
    {&serve_cmd, cmd_serve},
    {&classifier_cmd, cmd_classifier},
    {&score_cmd, cmd_score},
    {&prior_cmd, cmd_prior},
    {&codes_cmd, cmd_codes},
};
enum { N_COMMANDS = sizeof commands / sizeof *commands };

int main(int argc, char **argv)
{
    const cli_command *tables[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++) tables[i] = commands[i].cmd;
    const cli_program vae = {
        "vae", "a Variational Autoencoder toolkit",
        "usage: vae COMMAND [options]\n"
        "       vae COMMAND --help\n"
        "       vae --version\n"
        "A Variational Autoencoder toolkit (version " VAE_VERSION "): trains VAEs and their\n"
        "relatives on images and draws what they learned. vae COMMAND --help lists a\n"
        "command's options with their defaults.\n",
        tables, N_COMMANDS,
        "  vae train --epochs 10 --out runs/fmnist\n"
        "  vae sample --model runs/fmnist/model.safetensors -o samples.png\n"};
    if (argc < 2) {
        cli_program_help(&vae, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    invoked_as = argv[0];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        cli_program_help(&vae, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vae %s (libvae %s)\n", VAE_VERSION, vae_version());
        return 0;
    }
    if (!strcmp(cmd, "--write-docs")) { // the build's man pages and completion (docs.c)
        if (argc != 3) usage_error(NULL, "--write-docs expects a directory");
        cli_write_docs(&vae, argv[2]);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, commands[i].cmd->name)) return commands[i].run(argc - 1, argv + 1);
    usage_error(NULL, "unknown command '%s'", cmd);
    return 2;
}
