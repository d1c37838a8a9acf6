/* train.c - `vae train`: the training loop, progress, metrics log,
 * checkpoints, exact resume and clean interrupts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "dist.h"
#include "perceptual.h"
#include "vq.h"

/* Flag limits, which the checkpoint's entries for the same settings obey too. */
#define MAX_EPOCHS 1000000
#define MAX_BATCH 65536
#define MAX_THREADS 1024
#define MAX_BETA 1e6

enum { O_DATA = 256 /* given[O_DATA]: --data (OPT_DATA) was given */, O_EPOCHS, O_BATCH, O_LATENT, O_HIDDEN, O_LR, O_B1, O_B2, O_EPS, O_SEED,
       O_THREADS, O_OUT, O_SAMPLES, O_QUIET, O_BIN, O_BETA, O_FORCE, O_CLIP, O_RESUME,
       O_SAVE_EVERY, O_MAX_STEPS, O_ARCH, O_LIKELIHOOD, O_SIGMA, O_SCHEDULE, O_FREE_BITS,
       O_MODEL, O_L1, O_NOISE, O_IWAE_K, O_FLOW, O_ACT, O_PERCEPTUAL, O_PRIOR, O_VALID, O_EARLY,
       O_CODEBOOK, O_CODE_DIM, O_COMMIT, O_CB_UPDATE, O_RESTART, O_LR_DECAY, O_LAST };

/* How beta moves during training (the target is the model's beta). */
typedef struct beta_schedule {
    enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_CYCLICAL } kind;
    double len;   /* warm-up length or period */
    int in_steps; /* len counts steps, not epochs */
    double ratio; /* cyclical: the rising share of a period */
    char text[64];
} beta_schedule;

/* How the learning rate falls, per epoch as PyTorch's StepLR and
 * ExponentialLR do: step:E:F multiplies it by F every E epochs, exp:G by G
 * every epoch. The rate of a step is the base rate times the factor for the
 * epochs completed, so it depends on where the run stands alone (exact resume). */
typedef struct lr_decay {
    enum { DECAY_NONE, DECAY_STEP, DECAY_EXP } kind;
    long every;    /* step: epochs between the drops */
    double factor; /* step: F; exp: G */
    char text[64];
} lr_decay;

typedef struct train_opts {
    const char *data, *out, *resume;
    int epochs, batch, threads, samples, quiet, force, binarize;
    long save_every, max_steps;
    double valid_fraction; /* of the training split held out for validation (0: none) */
    int early_stop;        /* stop after this many epochs without a better validation -ELBO */
    float threshold, clip;
    uint64_t seed;
    vae_config cfg;
    vae_adam adam;
    beta_schedule sched;
    float beta;         /* the schedule's target */
    lr_decay decay;
    float lr_base;      /* the learning rate lr_decay starts from */
    char given[O_LAST]; /* which flags the command line set */
    data_args dargs;    /* how --data is read */
    char data_opts[256], data_split[96]; /* for the checkpoint: data.options, data.split */
    char *data_classes; /* data.classes: class folder names joined by '/' (never in a name) */
    perceptual_opt perc; /* --perceptual (tools/perceptual.c) */
} train_opts;

/* "constant", "linear:5", "linear:1000s", "cyclical:4", "cyclical:4:0.5". */
static int parse_schedule(const char *a, beta_schedule *s)
{
    memset(s, 0, sizeof *s);
    s->ratio = 0.5;
    if (strlen(a) >= sizeof s->text) return -1;
    strcpy(s->text, a);
    if (!strcmp(a, "constant")) return 0;
    const char *rest;
    if (!strncmp(a, "linear:", 7)) s->kind = SCHED_LINEAR, rest = a + 7;
    else if (!strncmp(a, "cyclical:", 9)) s->kind = SCHED_CYCLICAL, rest = a + 9;
    else return -1;
    char *end;
    errno = 0;
    s->len = strtod(rest, &end);
    if (end == rest || errno || !(s->len > 0 && s->len < 1e12)) return -1;
    if (*end == 's') s->in_steps = 1, end++;
    if (s->kind == SCHED_CYCLICAL && *end == ':') {
        rest = end + 1;
        s->ratio = strtod(rest, &end);
        if (end == rest || !(s->ratio > 0 && s->ratio <= 1)) return -1;
    }
    return *end ? -1 : 0;
}

/* "none", "step:E:F" (E a whole number of epochs >= 1, 0 < F <= 1) or
 * "exp:G" (0 < G <= 1); -1 if it is none of these. */
static int parse_lr_decay(const char *a, lr_decay *d)
{
    memset(d, 0, sizeof *d);
    if (strlen(a) >= sizeof d->text) return -1;
    strcpy(d->text, a);
    if (!strcmp(a, "none")) return 0;
    char *end;
    const char *rest;
    errno = 0;
    if (!strncmp(a, "step:", 5)) {
        d->kind = DECAY_STEP, rest = a + 5;
        d->every = strtol(rest, &end, 10);
        if (end == rest || *end != ':' || errno || d->every < 1 || d->every > MAX_EPOCHS) return -1;
        rest = end + 1;
    } else if (!strncmp(a, "exp:", 4)) {
        d->kind = DECAY_EXP, rest = a + 4;
    } else {
        return -1;
    }
    d->factor = strtod(rest, &end);
    return end == rest || *end || errno || !(d->factor > 0 && d->factor <= 1) ? -1 : 0;
}

/* The learning rate of the steps of epoch `done` + 1 (`done` completed). */
static float lr_at(const train_opts *o, int done)
{
    const lr_decay *d = &o->decay;
    double k = d->kind == DECAY_STEP ? (double)(done / d->every) : (double)done;
    return (float)(o->lr_base * pow(d->factor, k));
}

/* The beta in force for the step after `steps` steps. */
static float beta_at(const train_opts *o, long steps, long steps_per_epoch)
{
    const beta_schedule *s = &o->sched;
    if (s->kind == SCHED_CONSTANT) return o->beta;
    double t = s->in_steps ? (double)steps : (double)steps / steps_per_epoch;
    double f = s->kind == SCHED_LINEAR ? t / s->len
                                       : fmod(t, s->len) / s->len / s->ratio; // cyclical
    return f >= 1 ? o->beta : (float)(o->beta * f);
}

/* Where a run stands: with the model's own state in the checkpoint, enough
 * to continue bit for bit. */
typedef struct run_state {
    int epoch;          /* epochs completed */
    size_t cursor;      /* images of the current epoch done */
    vae_rng shuffle;    /* shuffling RNG at the start of the current epoch */
    vae_rng data;       /* binarisation draws, now */
    vae_stats sums;     /* the current epoch's training sums so far */
    int best_epoch;     /* validation: the epoch of the best -ELBO so far (0: none yet) */
    double best_valid;  /* and that -ELBO, the weights model.safetensors holds */
} run_state;

/* "none", "dynamic", "threshold" or "threshold:T" (T in [0,1]) into o; -1 if
 * it is none of these. Also reads back what binarize_text wrote. */
static int parse_binarize(const char *s, train_opts *o)
{
    char *end;
    if (!strcmp(s, "none")) o->binarize = VAE_BINARIZE_NONE;
    else if (!strcmp(s, "dynamic")) o->binarize = VAE_BINARIZE_DYNAMIC;
    else if (!strcmp(s, "threshold")) o->binarize = VAE_BINARIZE_THRESHOLD, o->threshold = 0.5f;
    else if (!strncmp(s, "threshold:", 10) && s[10]) {
        float t = strtof(s + 10, &end);
        if (*end || !(t >= 0 && t <= 1)) return -1;
        o->binarize = VAE_BINARIZE_THRESHOLD, o->threshold = t;
    } else
        return -1;
    return 0;
}

/* "0.1", "learned", "learned:0.5", "learned-pixel[:S0]". */
static void parse_sigma(const char *a, vae_config *cfg)
{
    static const char *const modes[] = {"learned-pixel", "learned"};
    const char *rest = a;
    cfg->sigma_mode = VAE_SIGMA_FIXED;
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(modes[i]);
        if (!strncmp(a, modes[i], n) && (a[n] == 0 || a[n] == ':')) {
            cfg->sigma_mode = i ? VAE_SIGMA_LEARNED : VAE_SIGMA_LEARNED_PIXEL;
            rest = a[n] ? a + n + 1 : NULL;
            break;
        }
    }
    if (rest) cfg->sigma = (float)parse_double("train", "--sigma", rest, 1e-3, 148);
}

/* Flags that belong to other family members, and the members' defaults. */
static void check_model_flags(train_opts *o)
{
    static const struct { int opt; vae_model_kind model; const char *flag, *what; } only[] = {
        {O_L1, VAE_MODEL_SPARSE_AE, "--l1", "--model sparse-ae"},
        {O_NOISE, VAE_MODEL_DAE, "--noise", "--model dae"},
        {O_IWAE_K, VAE_MODEL_IWAE, "--k", "--model iwae"}};
    for (size_t i = 0; i < sizeof only / sizeof *only; i++)
        if (o->given[only[i].opt] && o->cfg.model != only[i].model)
            usage_error("train", "%s applies to %s only", only[i].flag, only[i].what);
    vq_check_flags(&o->cfg, o->given + O_CODEBOOK, o->given[O_ARCH], o->given[O_LATENT]);
    if (o->cfg.model == VAE_MODEL_HVAE) {
        if (!o->cfg.latent1)
            usage_error("train", "--model hvae needs two latent sizes: --latent L1,L2 (z1 the "
                                 "bottom layer, z2 the top)");
        if (o->cfg.arch != VAE_ARCH_MLP)
            usage_error("train", "--model hvae is built for --arch mlp only");
        if (o->given[O_FLOW] || o->given[O_FREE_BITS])
            usage_error("train", "%s cannot be combined with --model hvae",
                        o->given[O_FLOW] ? "--flow" : "--free-bits");
    } else if (o->cfg.latent1) {
        usage_error("train", "--latent L1,L2 (two stochastic layers) applies to --model hvae only");
    }
    if (o->cfg.model != VAE_MODEL_VAE && o->cfg.model != VAE_MODEL_CVAE &&
        o->cfg.model != VAE_MODEL_HVAE) {
        // autoencoders have no KL; IWAE's bound has no beta
        static const struct { int opt; const char *flag; } vae_only[] = {
            {O_BETA, "--beta"}, {O_SCHEDULE, "--beta-schedule"}, {O_FREE_BITS, "--free-bits"},
            {O_FLOW, "--flow"}};
        for (size_t i = 0; i < sizeof vae_only / sizeof *vae_only; i++)
            if (o->given[vae_only[i].opt])
                usage_error("train", "%s applies to --model vae and cvae only (%s)",
                            vae_only[i].flag, i == 3 ? "a flow transforms the Gaussian posterior"
                            : o->cfg.model == VAE_MODEL_IWAE ? "the IWAE bound has no KL weight"
                            : o->cfg.model == VAE_MODEL_VQVAE ? "a VQ-VAE has no KL term"
                                                             : "an autoencoder has no KL term");
    }
    if (o->cfg.vamp_k && o->cfg.model != VAE_MODEL_VAE && o->cfg.model != VAE_MODEL_IWAE &&
        o->cfg.model != VAE_MODEL_HVAE)
        usage_error("train", "--prior vamp applies to --model vae, iwae and hvae only (%s)",
                    o->cfg.model == VAE_MODEL_CVAE    ? "its pseudo-inputs carry no label"
                    : o->cfg.model == VAE_MODEL_VQVAE ? "a VQ-VAE's prior is over its codes: vae prior train"
                                                      : "an autoencoder has no prior");
    if (o->cfg.vamp_k && o->cfg.free_bits > 0)
        usage_error("train", "--free-bits cannot be combined with --prior vamp: free bits act on "
                             "each dimension's closed-form KL to N(0, I)");
    if (o->cfg.flow != VAE_FLOW_NONE && o->cfg.free_bits > 0)
        usage_error("train", "--free-bits cannot be combined with --flow: free bits act on each "
                             "dimension's closed-form KL, which a flow's posterior has not");
    if (o->cfg.model == VAE_MODEL_IWAE && !o->given[O_IWAE_K]) o->cfg.iwae_k = 5;
    if (o->cfg.model == VAE_MODEL_SPARSE_AE && !o->given[O_L1]) o->cfg.l1 = 1e-3f;
    if (o->cfg.model == VAE_MODEL_DAE && !o->given[O_NOISE])
        o->cfg.noise = VAE_NOISE_GAUSSIAN, o->cfg.noise_level = 0.2f;
}

static const cli_opt train_table[] = {
    CLI_HEADING("data:"),
    DATA_OPTS,
    {"--binarize", O_BIN, "MODE", "none, dynamic or threshold[:T]: dynamic draws each\npixel ~ "
     "Bernoulli(intensity) afresh every batch;\nthreshold sets pixel > T (default 0.5) to 1", "none", NULL},
    CLI_HEADING("model:"),
    {"--model", O_MODEL, "M", "the family member: vae, ae (deterministic\nautoencoder), sparse-ae "
     "(L1 on the code), dae\n(denoising: corrupted input, clean target), iwae\n(importance-weighted "
     "bound), cvae (conditional\nVAE: the label conditions encoder and decoder;\nneeds labelled "
     "data) or hvae (two stochastic layers,\n--latent L1,L2; MLP)", "vae", NULL},
    {"--k", O_IWAE_K, "K", "iwae: importance samples per image", NULL, "5"},
    {"--l1", O_L1, "F", "sparse-ae: weight of sum |code|", NULL, "0.001"},
    {"--noise", O_NOISE, "N", "dae: gaussian:SIGMA or mask:P, fresh every batch", NULL, "gaussian:0.2"},
    {"--flow", O_FLOW, "F", "vae, cvae: a normalising flow in the posterior,\nplanar:N or "
     "householder:N (N steps), its parameters\nper image from the encoder; or none", "none", NULL},
    {"--prior", O_PRIOR, "P", "vae, iwae, hvae (on z2): p(z), standard (N(0, I)) or vamp:K (the\nVampPrior: "
     "a mixture of the encoder's posteriors at K\nlearned pseudo-inputs)", "standard", NULL},
    VQ_TRAIN_OPTS(O_CODEBOOK, O_CODE_DIM, O_COMMIT, O_CB_UPDATE, O_RESTART),
    {"--latent", O_LATENT, "N", "latent dimensions; hvae: L1,L2 (z1 the bottom\nlayer, z2 the "
     "top, which the pictures use)", "20", NULL},
    {"--arch", O_ARCH, "A", "mlp or conv: conv has stride-2 convolutions (kernel\n4) down and "
     "transposed convolutions up", "mlp", NULL},
    {"--hidden", O_HIDDEN, "LIST", "hidden widths (mlp) or channels (conv)\ninput side first, "
     "e.g. 512,256; none for no hidden layer", "400", "400; conv: 32,64"},
    {"--activation", O_ACT, "A", "of the hidden layers: relu, tanh, softplus or gated (MLP)", "relu",
     NULL},
    {"--beta", O_BETA, "B", "weight of the KL term", "1", NULL},
    {"--beta-schedule", O_SCHEDULE, "S", "constant, linear:N or cyclical:P[:R]\nlinear: beta "
     "rises from 0 to B over N epochs (Ns:\nN steps); cyclical: restarts every P epochs (Ps:\n"
     "steps), rising over the first R of each", "constant", NULL},
    {"--free-bits", O_FREE_BITS, "F", "nats per latent dimension the KL gradient leaves\nalone: "
     "dimensions whose batch-mean KL is below F get\nnone", "0", NULL},
    {"--likelihood", O_LIKELIHOOD, "L", "the decoder's p(x|z)\nbernoulli, gaussian or "
     "continuous-bernoulli\n(normalised for grey levels)", "bernoulli", NULL},
    {"--sigma", O_SIGMA, "S", "gaussian: a fixed sigma, or learned[:S0] (one) or\n"
     "learned-pixel[:S0] (one per pixel), starting at S0", "0.1", NULL},
    {"--perceptual", O_PERCEPTUAL, "C[:L][:W]", "adds W x the squared distance between the\n"
     "frozen classifier C's feature maps (layers L of\nconv1, conv2, fc1, joined by ',') of each "
     "image\nand of its decoded mean to the reconstruction\nterm; C from vae classifier train; "
     "not iwae k > 1", NULL, "none; L " PERCEPTUAL_DEFAULT_LAYERS ", W " PERCEPTUAL_DEFAULT_WEIGHT},
    CLI_HEADING("training:"),
    {"--epochs", O_EPOCHS, "N", "passes over the training set", "10", NULL},
    {"--batch", O_BATCH, "N", "images per step", "128", NULL},
    {"--lr", O_LR, "F", "Adam learning rate", "0.001", NULL},
    {"--lr-decay", O_LR_DECAY, "S", "none, step:E:F or exp:G (per epoch, as PyTorch's\n"
     "StepLR and ExponentialLR): the rate times F every\nE epochs, or times G every epoch "
     "(0 < F, G <= 1)", "none", NULL},
    {"--adam-beta1", O_B1, "F", "Adam's first-moment decay", "0.9", NULL},
    {"--adam-beta2", O_B2, "F", "Adam's second-moment decay", "0.999", NULL},
    {"--adam-eps", O_EPS, "F", "Adam's epsilon", "1e-08", NULL},
    {"--clip-grad", O_CLIP, "F", "rescale gradients to this global L2 norm at most;\n0 = off", "0", NULL},
    {"--seed", O_SEED, "N", "seeds weights, shuffling, noise", "1", NULL},
    {"--threads", O_THREADS, "N", "training threads; 0 = all cores (under mpirun:\nthis rank's "
     "share of its host's cores)", "0", NULL},
    {"--valid-fraction", O_VALID, "F", "hold out F of the training split (seeded by\n"
     "--split-seed) for validation: its -ELBO every epoch,\nand model.safetensors keeps the "
     "best epoch's weights", "0", NULL},
    {"--early-stop", O_EARLY, "N", "with --valid-fraction: stop after N epochs without\na better "
     "validation -ELBO; 0 = never", "0", NULL},
    CLI_HEADING("checkpoints:"),
    {"--resume", O_RESUME, "PATH", "continue the run in a checkpoint.safetensors (or its\n"
     "directory) exactly where it stopped; only --epochs,\n--out, --data, --threads and output "
     "flags may be given", NULL, NULL},
    {"--save-every", O_SAVE_EVERY, "N", "also save a checkpoint every N steps; 0 = at epoch\nends", "0", NULL},
    {"--max-steps", O_MAX_STEPS, "N", "stop after N steps in all, with a checkpoint;\n0 = no limit", "0", NULL},
    CLI_HEADING("output:"),
    {"--out", O_OUT, "DIR", "output directory\ncreated with its parents; on --resume: the\n"
     "checkpoint's", NULL, "runs/vae-<date>-<time>"},
    {"--force", O_FORCE, NULL, "write into --out even if it holds a checkpoint", NULL, NULL},
    {"--samples", O_SAMPLES, "N", "images in samples.png; recon.png shows up to 32", "64", NULL},
    {"--quiet", O_QUIET, NULL, "no progress display", NULL, NULL},
    CLI_END};

const cli_command train_cmd = {
    "train",
    "train a VAE on IDX, a PNG folder or CSV [Fashion-MNIST]",
    "usage: vae train [options]\n"
    "       vae train --resume CHECKPOINT [--epochs N] [options]\n"
    "Trains a VAE and writes the checkpoint, metrics log and pictures to --out.\n"
    "\n",
    train_table,
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves a checkpoint and\n"
    "exits with status 130; a second one stops at once. Files are replaced\n"
    "atomically, so the last checkpoint always loads.\n"
    "\n"
    "Under mpirun (a build with MPI) training is data-parallel: each rank takes its\n"
    "share of every --batch images (the global batch), the ranks sum their\n"
    "gradients each step, and rank 0 alone prints and writes files. A rank that\n"
    "waits longer than VAE_MPI_TIMEOUT seconds (environment; default 600, 0 = for\n"
    "ever) on the others stops the job.\n"};

/* One option of train's table (its default, or the command line's): one flat
 * case per option, so longer than most functions. */
static void take_train(int c, const char *a, int from_default, void *ctx)
{
    train_opts *o = ctx;
    if (!from_default && c >= O_DATA && c < O_LAST) o->given[c] = 1;
    if (!from_default && c == OPT_DATA) o->given[O_DATA] = 1;
    switch (c) {
    case OPT_DATA: o->data = path_arg("train", "--data", a); break;
    case O_EPOCHS: o->epochs = (int)parse_long("train", "--epochs", a, 1, MAX_EPOCHS); break;
    case O_BATCH: o->batch = (int)parse_long("train", "--batch", a, 1, MAX_BATCH); break;
    case O_LATENT: {
        const char *comma = strchr(a, ',');
        o->cfg.latent1 = 0;
        if (comma) { // hvae: L1,L2 (check_model_flags refuses it for the other models)
            char first[32];
            size_t len = (size_t)(comma - a);
            if (len >= sizeof first) usage_error("train", "--latent expects N or L1,L2, not '%s'", a);
            memcpy(first, a, len);
            first[len] = 0;
            o->cfg.latent1 = (int)parse_long("train", "--latent", first, 1, 4096);
            a = comma + 1;
        }
        o->cfg.latent = (int)parse_long("train", "--latent", a, 1, 4096);
        break;
    }
    case O_HIDDEN: parse_hidden("train", a, &o->cfg); break;
    case O_ARCH:
        if (!strcmp(a, "mlp")) o->cfg.arch = VAE_ARCH_MLP;
        else if (!strcmp(a, "conv")) o->cfg.arch = VAE_ARCH_CONV;
        else usage_error("train", "--arch expects mlp or conv, not '%s'", a);
        break;
    case O_ACT: {
        static const char *names[] = {"relu", "tanh", "softplus", "gated"};
        int k = 0;
        while (k < 4 && strcmp(a, names[k])) k++;
        if (k == 4)
            usage_error("train", "--activation expects relu, tanh, softplus or gated, not '%s'", a);
        o->cfg.activation = k;
        break;
    }
    case O_LIKELIHOOD:
        if (!strcmp(a, "bernoulli")) o->cfg.likelihood = VAE_LIKELIHOOD_BERNOULLI;
        else if (!strcmp(a, "gaussian")) o->cfg.likelihood = VAE_LIKELIHOOD_GAUSSIAN;
        else if (!strcmp(a, "continuous-bernoulli"))
            o->cfg.likelihood = VAE_LIKELIHOOD_CONT_BERNOULLI;
        else
            usage_error("train", "--likelihood expects bernoulli, gaussian or "
                                 "continuous-bernoulli, not '%s'", a);
        break;
    case O_SIGMA: parse_sigma(a, &o->cfg); break;
    case O_LR_DECAY:
        if (parse_lr_decay(a, &o->decay))
            usage_error("train", "--lr-decay expects none, step:E:F or exp:G (E a whole number "
                                 "of epochs >= 1; 0 < F, G <= 1), not '%s'", a);
        break;
    case O_SCHEDULE:
        if (parse_schedule(a, &o->sched))
            usage_error("train", "--beta-schedule expects constant, linear:N[s] or "
                                 "cyclical:P[s][:R] (N, P > 0; 0 < R <= 1), not '%s'", a);
        break;
    case O_CODEBOOK: case O_CODE_DIM: case O_COMMIT: case O_CB_UPDATE: case O_RESTART:
        vq_take(&o->cfg, c - O_CODEBOOK, a);
        break;
    case O_MODEL: {
        static const char *names[] = {"vae", "ae", "sparse-ae", "dae", "iwae", "cvae", "vqvae",
                                      "hvae"};
        int k = 0;
        while (k < 8 && strcmp(a, names[k])) k++;
        if (k == 8)
            usage_error("train", "--model expects vae, ae, sparse-ae, dae, iwae, cvae, vqvae or "
                                 "hvae, not '%s'", a);
        o->cfg.model = k;
        break;
    }
    case O_IWAE_K: o->cfg.iwae_k = (int)parse_long("train", "--k", a, 1, 4096); break;
    case O_L1: o->cfg.l1 = (float)parse_double("train", "--l1", a, 0, 1e6); break;
    case O_NOISE:
        if (!strncmp(a, "gaussian:", 9)) {
            o->cfg.noise = VAE_NOISE_GAUSSIAN;
            o->cfg.noise_level = (float)parse_double("train", "--noise gaussian:SIGMA", a + 9, 1e-6, 100);
        } else if (!strncmp(a, "mask:", 5)) {
            o->cfg.noise = VAE_NOISE_MASK;
            o->cfg.noise_level = (float)parse_double("train", "--noise mask:P", a + 5, 1e-6, 0.999999);
        } else {
            usage_error("train", "--noise expects gaussian:SIGMA or mask:P, not '%s'", a);
        }
        break;
    case O_FLOW: {
        static const char *names[] = {"planar:", "householder:"};
        o->cfg.flow = VAE_FLOW_NONE;
        for (int k = 0; k < 2; k++)
            if (!strncmp(a, names[k], strlen(names[k]))) {
                o->cfg.flow = k + 1;
                o->cfg.flow_steps = (int)parse_long("train", "--flow steps", a + strlen(names[k]),
                                                    1, VAE_FLOW_MAX_STEPS);
            }
        if (o->cfg.flow == VAE_FLOW_NONE && strcmp(a, "none"))
            usage_error("train", "--flow expects none, planar:N or householder:N, not '%s'", a);
        break;
    }
    case O_VALID: o->valid_fraction = parse_double("train", "--valid-fraction", a, 0, 0.9); break;
    case O_EARLY: o->early_stop = (int)parse_long("train", "--early-stop", a, 0, MAX_EPOCHS); break;
    case O_PRIOR:
        if (!strncmp(a, "vamp:", 5))
            o->cfg.vamp_k = (int)parse_long("train", "--prior vamp:K", a + 5, 1, VAE_VAMP_MAX_K);
        else if (!strcmp(a, "standard"))
            o->cfg.vamp_k = 0;
        else
            usage_error("train", "--prior expects standard or vamp:K, not '%s'", a);
        break;
    case O_FREE_BITS:
        o->cfg.free_bits = (float)parse_double("train", "--free-bits", a, 0, 1000);
        break;
    case O_LR: o->adam.lr = (float)parse_double("train", "--lr", a, 1e-12, 10); break;
    case O_B1: o->adam.beta1 = (float)parse_double("train", "--adam-beta1", a, 0, 0.999999); break;
    case O_B2: o->adam.beta2 = (float)parse_double("train", "--adam-beta2", a, 0, 0.999999999); break;
    case O_EPS: o->adam.eps = (float)parse_double("train", "--adam-eps", a, 1e-30, 1); break;
    case O_CLIP: o->clip = (float)parse_double("train", "--clip-grad", a, 0, 1e30); break;
    case O_SEED: o->seed = (uint64_t)parse_long("train", "--seed", a, 0, LONG_MAX); break;
    case O_THREADS: o->threads = (int)parse_long("train", "--threads", a, 0, MAX_THREADS); break;
    case O_OUT: o->out = path_arg("train", "--out", a); break;
    case O_SAMPLES: o->samples = (int)parse_long("train", "--samples", a, 1, 1024); break;
    case O_QUIET: o->quiet = 1; break;
    case O_BIN:
        if (parse_binarize(a, o)) {
            if (!strncmp(a, "threshold:", 10)) // says what is wrong with T
                parse_double("train", "--binarize threshold", a + 10, 0, 1);
            usage_error("train", "--binarize expects none, dynamic or threshold[:T], not '%s'", a);
        }
        break;
    case O_BETA: o->cfg.beta = (float)parse_double("train", "--beta", a, 0, MAX_BETA); break;
    case O_FORCE: o->force = 1; break;
    case O_RESUME: o->resume = path_arg("train", "--resume", a); break;
    case O_PERCEPTUAL: perceptual_parse("--perceptual", a, &o->perc); break;
    case O_SAVE_EVERY: o->save_every = parse_long("train", "--save-every", a, 0, 1L << 40); break;
    case O_MAX_STEPS: o->max_steps = parse_long("train", "--max-steps", a, 0, 1L << 40); break;
    default: data_flag("train", c, a, &o->dargs); // the table holds no other keys
    }
}

static void parse_train(int argc, char **argv, train_opts *o)
{
    memset(o, 0, sizeof *o);
    vae_config_default(&o->cfg);
    vae_adam_default(&o->adam);
    data_args_init(&o->dargs);
    o->data = DEFAULT_DATA;
    int first = cli_parse(&train_cmd, argc, argv, take_train, o);
    if (first < argc) usage_error("train", "unexpected argument '%s'", argv[first]);
    o->beta = o->cfg.beta;
    o->lr_base = o->adam.lr;
    check_model_flags(o);
    if (o->given[O_SIGMA] && o->cfg.likelihood != VAE_LIKELIHOOD_GAUSSIAN)
        usage_error("train", "--sigma applies to --likelihood gaussian only");
    if (o->perc.path && o->cfg.model == VAE_MODEL_IWAE && o->cfg.iwae_k > 1)
        usage_error("train", "--perceptual needs one mean image per input: not --model iwae "
                             "with --k > 1");
    if (o->cfg.arch == VAE_ARCH_CONV && !o->given[O_HIDDEN])
        parse_hidden("train", "32,64", &o->cfg);
    if (o->cfg.arch == VAE_ARCH_CONV && o->cfg.n_hidden == 0)
        usage_error("train", "--arch conv needs at least one conv layer in --hidden");
    if (o->early_stop && !o->valid_fraction && !o->resume)
        usage_error("train", "--early-stop needs --valid-fraction: it watches the validation -ELBO");
    if (o->cfg.arch == VAE_ARCH_CONV && o->cfg.activation == VAE_ACT_GATED)
        usage_error("train", "--activation gated is a dense layer's: use it with --arch mlp");
    if (o->resume) { // the checkpoint fixes the model, the optimiser and the data order
        static const struct { int opt; const char *name; } fixed[] = {
            {O_BATCH, "--batch"}, {O_LATENT, "--latent"}, {O_HIDDEN, "--hidden"}, {O_ARCH, "--arch"},
            {O_LR, "--lr"}, {O_LR_DECAY, "--lr-decay"}, {O_B1, "--adam-beta1"}, {O_B2, "--adam-beta2"},
            {O_EPS, "--adam-eps"}, {O_CLIP, "--clip-grad"}, {O_SEED, "--seed"},
            {O_BIN, "--binarize"}, {O_BETA, "--beta"}, {O_LIKELIHOOD, "--likelihood"},
            {O_SIGMA, "--sigma"}, {O_SCHEDULE, "--beta-schedule"}, {O_FREE_BITS, "--free-bits"},
            {O_MODEL, "--model"}, {O_L1, "--l1"}, {O_NOISE, "--noise"}, {O_FLOW, "--flow"},
            {O_ACT, "--activation"}, {O_PERCEPTUAL, "--perceptual"}, {O_PRIOR, "--prior"},
            {O_VALID, "--valid-fraction"}, {O_CODEBOOK, "--codebook"}, {O_CODE_DIM, "--code-dim"},
            {O_COMMIT, "--commitment"}, {O_CB_UPDATE, "--codebook-update"},
            {O_RESTART, "--restart-dead"}};
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
            if (o->given[fixed[i].opt])
                usage_error("train", "%s cannot be changed when resuming: the checkpoint fixes it",
                            fixed[i].name);
        for (int d = DOPT_CSV_LABEL; d < DOPT_END; d++) // the data must be read as before
            if (o->dargs.given & (1u << (d - DOPT_CSV_LABEL)))
                usage_error("train", "%s cannot be changed when resuming: the checkpoint fixes it",
                            data_flag_name(d));
    }
}

/* ------------------------------------------------------- the output directory */

/* The files vae train writes into --out (vae_write_file's temporaries of
 * them are cleaned up when their writer is gone). */
static const char *const out_files[] = {"checkpoint.safetensors", "model.safetensors",
                                        "metrics.jsonl", "samples.png", "recon.png"};
#define LOCK_FILE ".lock"

/* --out as this run found it: made by it (removed again should the run end
 * before its first save), and whether anything was saved there yet. */
static struct {
    char *dir;
    int made;
    atomic_int saved;
} out_state;

static void remove_unused_out(void)
{
    if (!out_state.made || atomic_load(&out_state.saved)) return;
    char *lock = join(out_state.dir, LOCK_FILE);
    unlink(lock); // nothing else is in it: a full disk leaves no empty run behind
    rmdir(out_state.dir);
    free(lock);
}

/* Takes an exclusive flock on dir/.lock for the rest of the process (the
 * descriptor stays open; the kernel drops the lock when the process ends,
 * however it ends). A second vae train on the same directory is refused
 * with the holder's PID, which the holder writes into the file. The file is
 * never removed: removing it would race with the next run's open. */
static void lock_out(const char *dir)
{
    char p[4096]; // on the stack: the refusal below exits with nothing to free
    snprintf(p, sizeof p, "%s/%s", dir, LOCK_FILE);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) die("%s: cannot create the lock file: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) die("%s: cannot lock: %s", p, strerror(errno));
        char pid[24] = "";
        for (int i = 0; i < 100 && !pid[0]; i++) { // the holder may be writing its PID just now
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, "\n")] = 0;
            if (!pid[0]) usleep(10000);
        }
        die("%s: another vae train (PID %s) is writing into this directory; wait for it to end "
            "or choose another --out", dir, pid[0] ? pid : "unknown");
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        die("%s: cannot write the lock file: %s", p, strerror(errno));
}

/* Creates dir (and its parents), locks it, removes the temporaries a killed
 * run left there and, unless this run continues in it (in_place) or --force
 * says so, refuses to clobber an earlier run's checkpoint (either file). */
static void prepare_out(const char *dir, int force, int in_place)
{
    struct stat st;
    int existed = stat(dir, &st) == 0;
    make_dirs(dir);
    if (access(dir, W_OK) != 0) die("%s: cannot write into the output directory: %s", dir, strerror(errno));
    lock_out(dir);
    if (!existed && (out_state.dir = strdup(dir))) {
        out_state.made = 1;
        atexit(remove_unused_out);
    }
    vae_error err;
    for (size_t i = 0; i < sizeof out_files / sizeof *out_files; i++) {
        char *p = join(dir, out_files[i]);
        if (vae_remove_stale_temps(p, &err) < 0) die("%s", err.msg);
        free(p);
    }
    if (in_place) return;
    for (int k = 0; k < 2 && !force; k++) {
        char *ck = join(dir, out_files[k]);
        int held = lstat(ck, &st) == 0;
        free(ck);
        if (held)
            die("%s already holds a checkpoint (%s); choose another --out, pass --force, or "
                "continue it with --resume %s", dir, out_files[k], dir);
    }
    // a new run's log starts empty (it is created at the first epoch's end)
    char *log = join(dir, "metrics.jsonl");
    if (unlink(log) != 0 && errno != ENOENT) die("%s: cannot remove: %s", log, strerror(errno));
    free(log);
}

/* The metrics log, opened at its first line (a run that saves nothing leaves
 * none), appending, never through a symbolic link. */
static FILE *open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP)
        die("%s: a symbolic link; vae train writes its metrics log only as a file of its own",
            path);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "a");
    if (!f) die("%s: cannot write the metrics log: %s", path, strerror(errno));
    return f;
}

/* Stops printing to f once a write to it failed (a closed pipe: vae train |
 * head); training goes on. */
static int still_printing(FILE *f, int *gone)
{
    if (!*gone) *gone = fflush(f) != 0 || ferror(f);
    return !*gone;
}

/* ------------------------------------------------------------ run state */

/* "count x c x h x w : crc32 of the pixels": resuming on other data is refused. */
static void fingerprint(const vae_dataset *ds, char *out, size_t len)
{
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    size_t n = vae_dataset_count(ds) * (size_t)c * h * w;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n; off += 1u << 30) {
        size_t part = n - off < (1u << 30) ? n - off : 1u << 30;
        crc = crc32(crc, vae_dataset_images(ds) + off, (uInt)part);
    }
    snprintf(out, len, "%zux%dx%dx%d:%08lx", vae_dataset_count(ds), c, h, w, (unsigned long)crc);
}

static const char *binarize_text(const train_opts *o, char *buf, size_t len)
{
    if (o->binarize == VAE_BINARIZE_DYNAMIC) return "dynamic";
    if (o->binarize != VAE_BINARIZE_THRESHOLD) return "none";
    snprintf(buf, len, "threshold:%.9g", (double)o->threshold);
    return buf;
}

/* Appends key, value to a NULL-terminated metadata list of cap entries
 * (the lists below leave room for their optional entries). */
static void meta_append(const char **list, size_t cap, const char *key, const char *value)
{
    size_t n = 0;
    while (list[n]) n += 2;
    if (n + 2 < cap) list[n] = key, list[n + 1] = value;
}
#define meta_add(list, key, value) meta_append(list, sizeof list / sizeof *list, key, value)

/* Writes checkpoint.safetensors (to continue) and, when with_model,
 * model.safetensors (the weights, for sample/reconstruct/PyTorch; with
 * validation only the best epoch's); each atomically. */
static void save_run(vae_model *m, const train_opts *o, const run_state *rs, const char *fp,
                     double test_loss, int with_model)
{
    char ep[16], cur[32], seed[32], loss[32], epochs[16], batch[16], threads[16], bin[48];
    char sums[128], shuf[VAE_RNG_TEXT], data[VAE_RNG_TEXT], beta[32];
    dist_check_weights(m); // never save weights the ranks disagree on
    if (dist_rank() != 0) return;
    snprintf(ep, sizeof ep, "%d", rs->epoch);
    snprintf(beta, sizeof beta, "%.9g", (double)o->beta);
    snprintf(cur, sizeof cur, "%zu", rs->cursor);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(loss, sizeof loss, "%.6f", test_loss);
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(batch, sizeof batch, "%d", o->batch);
    snprintf(threads, sizeof threads, "%d", o->threads);
    // hex floats: the partial sums come back exactly
    snprintf(sums, sizeof sums, "%a,%a,%a,%ld", rs->sums.loss, rs->sums.rec, rs->sums.kl,
             rs->sums.n);
    vae_rng_format(&rs->shuffle, shuf);
    vae_rng_format(&rs->data, data);
    const char *tl = test_loss >= 0 ? loss : "";
    char valid[64], early[16], best[64];
    snprintf(valid, sizeof valid, "%.17g", o->valid_fraction);
    snprintf(early, sizeof early, "%d", o->early_stop);
    snprintf(best, sizeof best, "%d,%a", rs->best_epoch, rs->best_valid); // hex: exact back
    const char *info[] = {"train.epoch", ep, "train.seed", seed, "train.data", o->data,
                          "train.test_neg_elbo", tl, "data.options", o->data_opts,
                          "data.split", o->data_split, "data.classes", o->data_classes,
                          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const char *full[] = {"train.epoch", ep, "train.seed", seed, "train.data", o->data,
                          "train.test_neg_elbo", tl, "data.options", o->data_opts,
                          "data.split", o->data_split, "data.classes", o->data_classes,
                          "run.cursor", cur, "run.epochs", epochs,
                          "run.batch", batch, "run.threads", threads,
                          "run.binarize", binarize_text(o, bin, sizeof bin), "run.fingerprint", fp,
                          "run.sums", sums, "run.shuffle_rng", shuf, "run.data_rng", data,
                          "run.beta", beta, "run.beta_schedule", o->sched.text,
                          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                          NULL, NULL, NULL, NULL};
    // the optional entries: runs without a term or a validation split keep their files as before
    if (o->perc.path) {
        meta_add(info, "train.perceptual", o->perc.text);
        meta_add(info, "train.perceptual_crc32", o->perc.crc);
        meta_add(full, "train.perceptual", o->perc.text);
        meta_add(full, "train.perceptual_crc32", o->perc.crc);
    }
    if (o->binarize != VAE_BINARIZE_NONE) // vae eval scores the pixels the model trained on
        meta_add(info, "train.binarize", binarize_text(o, bin, sizeof bin));
    if (o->valid_fraction) { // what the resume must hold out again, and the best so far
        meta_add(info, "train.valid_fraction", valid);
        meta_add(full, "run.valid_fraction", valid);
        meta_add(full, "run.early_stop", early);
        meta_add(full, "run.best_valid", best);
    }
    char lr_base[32];
    snprintf(lr_base, sizeof lr_base, "%a", (double)o->lr_base); // hex: exact back
    if (o->decay.kind != DECAY_NONE) { // runs without a decay keep their files as before
        meta_add(info, "train.lr_decay", o->decay.text);
        meta_add(full, "train.lr_decay", o->decay.text);
        meta_add(full, "run.lr_base", lr_base);
    }
    char *ck = join(o->out, "checkpoint.safetensors"), *mp = join(o->out, "model.safetensors");
    // the weights first: killed between the two, the checkpoint is a step
    // behind and the resume redoes that step, rewriting both (the other order
    // could leave a finished run's model.safetensors a step short for good)
    if (with_model && vae_model_save(m, mp, info)) die("%s", vae_model_errmsg(m));
    atomic_store(&out_state.saved, 1); // --out holds a run now: keep it, whatever follows
    if (vae_model_save_checkpoint(m, ck, full)) die("%s", vae_model_errmsg(m));
    free(ck);
    free(mp);
}

static const char *need_meta(const vae_model *m, const char *path, const char *key)
{
    const char *v = vae_model_meta(m, key);
    if (!v) die("%s: not a training checkpoint (no %s; model.safetensors holds weights only, "
                "resume from checkpoint.safetensors)", path, key);
    return v;
}

/* A whole-number checkpoint entry, in [lo, hi] as the flag it stands for is. */
static long meta_long(const vae_model *m, const char *path, const char *key, long lo, long hi)
{
    const char *v = need_meta(m, path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        die("%s: checkpoint entry %s is '%.40s', not a whole number in %ld..%ld", path, key, v, lo,
            hi);
    return x;
}

/* Loads a checkpoint for --resume: the model, the options it fixes, the state. */
static vae_model *load_run(train_opts *o, run_state *rs, char *resume_dir, size_t dirlen)
{
    struct stat st;
    char *path = stat(o->resume, &st) == 0 && S_ISDIR(st.st_mode)
                     ? join(o->resume, "checkpoint.safetensors") : strdup(o->resume);
    if (!path) die("out of memory");
    vae_model *m = load_model(path, 1);
    const char *p = path, *bad = NULL;
    need_meta(m, p, "train.rng"); // only checkpoints carry the optimiser and RNG state
    o->batch = (int)meta_long(m, p, "run.batch", 1, MAX_BATCH);
    if (vae_model_set_max_batch(m, o->batch)) die("%s: run.batch: %s", p, vae_model_errmsg(m));
    o->seed = (uint64_t)meta_long(m, p, "train.seed", 0, LONG_MAX);
    long epochs = meta_long(m, p, "run.epochs", 1, MAX_EPOCHS);
    long threads = meta_long(m, p, "run.threads", 0, MAX_THREADS);
    if (!o->given[O_EPOCHS]) o->epochs = (int)epochs;
    if (!o->given[O_THREADS]) o->threads = (int)threads;
    if (!o->given[O_DATA]) o->data = need_meta(m, p, "train.data");
    if (!*o->data) bad = "train.data";
    data_args_from_model(&o->dargs, m);
    if (parse_binarize(need_meta(m, p, "run.binarize"), o)) bad = "run.binarize";
    char *end, tail;
    rs->epoch = (int)meta_long(m, p, "train.epoch", 0, MAX_EPOCHS);
    // the cursor is checked against the data's size once they are read
    rs->cursor = (size_t)meta_long(m, p, "run.cursor", 0, LONG_MAX);
    if (sscanf(need_meta(m, p, "run.sums"), "%la,%la,%la,%ld%c", &rs->sums.loss, &rs->sums.rec,
               &rs->sums.kl, &rs->sums.n, &tail) != 4 || !isfinite(rs->sums.loss) ||
        !isfinite(rs->sums.rec) || !isfinite(rs->sums.kl) || rs->sums.n < 0)
        bad = "run.sums";
    const char *tl = vae_model_meta(m, "train.test_neg_elbo"); // "" before the first epoch's end
    if (tl && *tl && !(isfinite(strtod(tl, &end)) && !*end)) bad = "train.test_neg_elbo";
    if (vae_rng_parse(&rs->shuffle, need_meta(m, p, "run.shuffle_rng"))) bad = "run.shuffle_rng";
    if (vae_rng_parse(&rs->data, need_meta(m, p, "run.data_rng"))) bad = "run.data_rng";
    // runs of vae 0.1.0 had no schedule: beta constant at the model's
    const char *beta = vae_model_meta(m, "run.beta"), *sched = vae_model_meta(m, "run.beta_schedule");
    o->beta = beta ? strtof(beta, &end) : vae_model_config(m)->beta;
    if (beta && (!*beta || *end || !(o->beta >= 0 && o->beta <= MAX_BETA))) bad = "run.beta";
    if (parse_schedule(sched ? sched : "constant", &o->sched)) bad = "run.beta_schedule";
    const char *decay = vae_model_meta(m, "train.lr_decay"); // absent: no decay
    if (decay) {
        const char *base = need_meta(m, p, "run.lr_base");
        double lr = strtod(base, &end);
        o->lr_base = (float)lr;
        if (!*base || *end || !(lr >= 1e-12 && lr <= 10)) bad = "run.lr_base";
        if (parse_lr_decay(decay, &o->decay) || o->decay.kind == DECAY_NONE) bad = "train.lr_decay";
    }
    const char *perc = vae_model_meta(m, "train.perceptual"); // absent before --perceptual
    if (perc && *perc) perceptual_parse("checkpoint entry train.perceptual", perc, &o->perc);
    const char *vf = vae_model_meta(m, "run.valid_fraction"); // absent: no validation
    if (vf) {
        o->valid_fraction = strtod(vf, &end);
        if (!*vf || *end || !(o->valid_fraction > 0 && o->valid_fraction <= 0.9))
            bad = "run.valid_fraction";
        long es = meta_long(m, p, "run.early_stop", 0, MAX_EPOCHS);
        if (!o->given[O_EARLY]) o->early_stop = (int)es;
        if (sscanf(need_meta(m, p, "run.best_valid"), "%d,%la%c", &rs->best_epoch,
                   &rs->best_valid, &tail) != 2 || rs->best_epoch < 0 ||
            rs->best_epoch > rs->epoch || !isfinite(rs->best_valid))
            bad = "run.best_valid";
    } else if (o->early_stop) {
        die("%s: --early-stop needs a run with --valid-fraction; this one has no validation", p);
    }
    if (bad) die("%s: checkpoint entry %s is invalid", p, bad);
    const char *slash = strrchr(path, '/');
    snprintf(resume_dir, dirlen, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    free(path);
    return m;
}

/* On resume: keep the log lines of the epochs the checkpoint completed (a
 * crash between the log line and the checkpoint must not leave a duplicate). */
static void trim_log(const char *logp, int epochs_done)
{
    void *file;
    size_t size, len = 0;
    vae_error err;
    int rc = vae_read_file(logp, (size_t)1 << 30, &file, &size, &err);
    if (rc == VAE_ENOENT) return; // no log yet (stopped inside the first epoch)
    if (rc) die("%s", err.msg);
    char *text = file, *keep = xmalloc(size + 1);
    for (char *line = text, *next; line < text + size; line = next) {
        next = memchr(line, '\n', (size_t)(text + size - line));
        next = next ? next + 1 : text + size;
        int e;
        if (sscanf(line, "{\"epoch\":%d", &e) != 1 || e > epochs_done) continue;
        memcpy(keep + len, line, (size_t)(next - line));
        len += (size_t)(next - line);
    }
    free(file);
    if (vae_write_file(logp, keep, len, &err)) die("%s", err.msg);
    free(keep);
}

/* ------------------------------------------------------------- progress */

/* Live progress on a terminal; a plain line every 10 s otherwise. */
typedef struct progress {
    int tty, quiet;
    double t_start, t_last;
    char extra[48]; /* a VQ-VAE's codes used so far this epoch */
} progress;

static void progress_update(progress *p, int epoch, int epochs, long done, long total,
                            const vae_stats *st, double ips, double t_epoch)
{
    double t = now();
    // the epoch's summary line follows its end: no progress line for it in a log
    if (p->quiet || (t - p->t_last < (p->tty ? 0.25 : 10.0) && done < total)) return;
    if (done >= total && !p->tty) return;
    p->t_last = t;
    if (!still_printing(stderr, &p->quiet)) return;
    double left = (total - done) / (ips + 1e-9) + (epochs - epoch) * t_epoch;
    double n = st->n ? (double)st->n : 1;
    fprintf(stderr, "%sepoch %d/%d %5.1f%% | %7.0f img/s | loss %.2f rec %.2f kl %.2f%s | ETA %.0fs%s",
            p->tty ? "\r" : "", epoch, epochs, 100.0 * done / total, ips, st->loss / n,
            st->rec / n, st->kl / n, p->extra, left, p->tty ? "\033[K" : "\n");
    if (p->tty && done >= total && !isatty(1)) fputc('\n', stderr); // the summary goes elsewhere
}

/* Clears a terminal's progress line, so that what follows takes its place
 * (at the end of an epoch: only when the summary line goes to the terminal). */
static void progress_clear(const progress *p, int epoch_end)
{
    if (p->tty && !p->quiet && (!epoch_end || isatty(1))) fputs("\r\033[K", stderr);
}

/* Test-set loss terms; x (max_batch x D) and idx (max_batch) are scratch. */
static void evaluate_split(vae_model *m, const vae_dataset *ds, uint64_t seed, float *x,
                           uint32_t *idx, vae_stats *st)
{
    int B = vae_model_max_batch(m);
    size_t N = vae_dataset_count(ds);
    vae_rng rng;
    vae_rng_seed(&rng, seed); // the same noise every epoch: epochs compare fairly
    memset(st, 0, sizeof *st);
    const uint8_t *labels = need_labels(ds, m); // a CVAE's, checked once
    size_t lo, hi; // this rank's part; image i gets normals i*d.. of the stream on any rank
    dist_range(N, &lo, &hi);
    const vae_config *c = vae_model_config(m);
    size_t per = (size_t)(c->latent + (c->model == VAE_MODEL_HVAE ? c->latent1 : 0)) *
                 (c->model == VAE_MODEL_IWAE ? c->iwae_k : 1); // vae_model_loss's noise per image
    for (size_t k = 0; k < lo * per; k++) vae_rng_normal(&rng);
    for (size_t i = lo; i < hi; i += B) {
        int b = (int)(hi - i < (size_t)B ? hi - i : (size_t)B);
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_model_loss(m, x, labels ? labels + i : NULL, b, &rng, st))
            die("%s", vae_model_errmsg(m));
    }
    dist_sum_stats(st);
}

/* Latent dimensions j with Var_x E_q[z_j|x] > 0.01 over the data set (Burda
 * et al. 2015): few active units is posterior collapse. */
static int active_units(vae_model *m, const vae_dataset *ds, float *x, uint32_t *idx)
{
    int B = vae_model_max_batch(m), d = vae_model_config(m)->latent, active = 0;
    size_t N = vae_dataset_count(ds);
    double *sum = calloc((size_t)d, sizeof *sum), *sq = calloc((size_t)d, sizeof *sq);
    float *mu = malloc((size_t)B * d * sizeof *mu);
    if (!sum || !sq || !mu) die("out of memory");
    const uint8_t *labels = need_labels(ds, m);
    for (size_t i = 0; i < N; i += B) {
        int b = (int)(N - i < (size_t)B ? N - i : (size_t)B);
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_model_encode(m, x, labels ? labels + i : NULL, b, mu, NULL))
            die("%s", vae_model_errmsg(m));
        for (int r = 0; r < b; r++)
            for (int j = 0; j < d; j++) {
                double v = mu[(size_t)r * d + j];
                sum[j] += v, sq[j] += v * v;
            }
    }
    for (int j = 0; j < d; j++) {
        double mean = sum[j] / N;
        if (sq[j] / N - mean * mean > 0.01) active++;
    }
    free(sum), free(sq), free(mu);
    return active;
}

/* ---------------------------------------------------------------- train */


/* A run of vae train: its options, state, model, data and buffers. */
typedef struct run {
    train_opts o;
    run_state rs;
    vae_model *m;
    vae_dataset *train, *test, *valid; /* valid: held out of train (--valid-fraction) */
    size_t N;
    int stopped_early;                 /* --early-stop ended the run */
    int root; /* rank 0 alone prints and writes files */
    char fp[96], resume_dir[4096];
    char *logp, *ckpt;
    FILE *log;
    uint32_t *perm, *eval_idx;
    float *x;
    const uint8_t *train_labels;
    uint8_t *batch_labels;
    progress pr;
    double epoch_time, last_test;
    int stdout_gone; /* a write to stdout failed: no more summary lines */
} run;

/* The model: the checkpoint's on --resume (checked against the data), else
 * a new one for the data's image size. Creates --out. */
static void open_model(run *r)
{
    train_opts *o = &r->o;
    vae_error err;
    int c, h, w;
    vae_dataset_shape(r->train, &c, &h, &w);
    if (r->m) {
        const char *want = vae_model_meta(r->m, "run.fingerprint");
        if (!want || strcmp(want, r->fp))
            die("%s: not the data this run was trained on (fingerprint %s, checkpoint has %s)",
                vae_dataset_path(r->train), r->fp, want ? want : "none");
        if (r->rs.cursor > r->N) die("%s: run.cursor is past the end of the data", o->resume);
        if (!o->out) o->out = r->resume_dir;
        // locked and cleaned (a kill's temporaries) even when it then has nothing to do
        if (r->root) prepare_out(o->out, o->force, !strcmp(o->out, r->resume_dir));
        if (r->rs.epoch >= o->epochs)
            die("%s: the run already trained %d epochs; pass --epochs N (N > %d) to go on",
                o->resume, r->rs.epoch, r->rs.epoch);
        if (o->early_stop && r->rs.best_epoch && r->rs.epoch - r->rs.best_epoch >= o->early_stop)
            die("%s: the run stopped early at epoch %d (its best validation -ELBO was epoch %d's); "
                "pass --early-stop N (N > %d) or 0 to go on", o->resume, r->rs.epoch,
                r->rs.best_epoch, r->rs.epoch - r->rs.best_epoch);
        return;
    }
    o->cfg.channels = c, o->cfg.height = h, o->cfg.width = w;
    if (o->cfg.model == VAE_MODEL_CVAE) { // the classes the training labels name
        const uint8_t *l = need_labels(r->train, NULL);
        for (size_t i = 0; i < r->N; i++)
            if (l[i] + 1 > o->cfg.n_classes) o->cfg.n_classes = l[i] + 1;
    }
    if (o->cfg.model == VAE_MODEL_VQVAE) o->cfg.latent = vae_config_vq_latent(&o->cfg, NULL, NULL);
    if (vae_model_create(&o->cfg, o->batch, o->seed, &r->m, &err)) usage_error("train", "%s", err.msg);
    vae_model_set_adam(r->m, &o->adam);
    vae_model_set_grad_clip(r->m, o->clip);
    vae_rng_seed(&r->rs.shuffle, o->seed * 0x9E3779B97F4A7C15ull + 1);
    vae_rng_seed(&r->rs.data, o->seed * 0x9E3779B97F4A7C15ull + 2);
    static char outbuf[64];
    if (!o->out) {
        time_t t = time(NULL);
        strftime(outbuf, sizeof outbuf, "runs/vae-%Y%m%d-%H%M%S", localtime(&t));
        o->out = outbuf;
    }
    if (r->root) prepare_out(o->out, o->force, 0);
}

/* Everything that can fail on input, checked before anything is written;
 * then --out, the metrics log, the buffers and the opening lines. */
static void start_run(run *r, int argc, char **argv)
{
    train_opts *o = &r->o;
    parse_train(argc, argv, o);
    dist_init();
    r->root = dist_rank() == 0;
    if (o->resume) r->m = load_run(o, &r->rs, r->resume_dir, sizeof r->resume_dir);
    if (o->perc.path) // on resume: the checkpoint's classifier, byte for byte
        perceptual_load(&o->perc, o->resume ? need_meta(r->m, o->resume, "train.perceptual_crc32")
                                            : NULL);
    vae_set_threads(dist_threads(o->threads));
    o->dargs.path = o->data;
    open_data_args("train", &o->dargs, &r->train, &r->test);
    vae_dataset_info dinfo;
    vae_dataset_describe(r->test, &dinfo);
    data_options_text(&o->dargs, o->data_opts, sizeof o->data_opts);
    snprintf(o->data_split, sizeof o->data_split, "%s", dinfo.split);
    o->data_classes = class_names(r->train);
    fingerprint(r->train, r->fp, sizeof r->fp);
    if (o->perc.path) { // before --out is made
        int c, h, w;
        vae_dataset_shape(r->train, &c, &h, &w);
        perceptual_check_shape(&o->perc, c, h, w);
    }
    dist_check_same("training data", r->fp);
    if (dist_size() > 1) { // the ranks split the evaluation: their test sets must agree too
        char tfp[96];
        fingerprint(r->test, tfp, sizeof tfp);
        dist_check_same("test data", tfp);
    }
    // from the split seed: a resume (and eval --split) holds out the same images
    if (o->valid_fraction > 0)
        split_valid(o->valid_fraction, o->dargs.opt.split_seed, &r->train, &r->valid);
    r->N = vae_dataset_count(r->train);
    open_model(r);
    vae_model *m = r->m;
    if (o->perc.path) perceptual_attach(&o->perc, m);
    check_data_fits(r->test, m);
    if (dist_size() > 1 && vae_model_config(m)->free_bits > 0) // the mask needs whole-batch means
        die("--free-bits is not supported across MPI ranks: train it in one process");
    dist_check_weights(m); // every host loaded the same checkpoint
    dist_attach(m, &stop_signal);

    r->logp = join(o->out, "metrics.jsonl"), r->ckpt = join(o->out, "checkpoint.safetensors");
    if (o->resume && r->root) trim_log(r->logp, r->rs.epoch);
    r->perm = xmalloc(r->N * sizeof *r->perm);
    r->eval_idx = xmalloc(o->batch * sizeof *r->eval_idx);
    r->x = xmalloc((size_t)o->batch * vae_model_input_size(m) * sizeof *r->x);
    r->train_labels = need_labels(r->train, m);
    r->batch_labels = xmalloc((size_t)o->batch);
    need_labels(r->test, m);
    if (r->root) {
        static const char *kinds[] = {"VAE", "autoencoder", "sparse autoencoder",
                                      "denoising autoencoder", "IWAE", "conditional VAE",
                                      "VQ-VAE", "hierarchical VAE"};
        const vae_config *cfg = vae_model_config(m);
        char arch[256];
        arch_text(cfg, arch, sizeof arch);
        report_data(&o->dargs, r->train, r->test);
        fprintf(stderr, "%s %s %s (%zu parameters) on %zu images of %dx%d from %s\n",
                o->resume ? "resuming" : "training", arch, kinds[cfg->model],
                vae_model_num_params(m), r->N, cfg->width, cfg->height, o->data);
        if (o->perc.path)
            fprintf(stderr, "perceptual term: %s (classifier CRC-32 %s)\n", o->perc.text,
                    o->perc.crc);
        if (r->valid)
            fprintf(stderr, "validation: %zu images held out of the training split%s\n",
                    vae_dataset_count(r->valid), o->early_stop ? "; early stopping" : "");
        if (o->resume)
            fprintf(stderr, "at epoch %d, image %zu of %zu, step %ld\n", r->rs.epoch + 1,
                    r->rs.cursor, r->N, vae_model_step(m));
    }
    dist_describe(dist_threads(o->threads), o->batch);
    r->pr = (progress){isatty(2), o->quiet || !r->root, now(), 0, ""};
    r->last_test = -1;
    const char *prev = vae_model_meta(m, "train.test_neg_elbo");
    if (prev && *prev) r->last_test = atof(prev);
}

/* The steps of one epoch from r->rs.cursor, in the order *shuffle draws
 * (it depends only on the RNG state at the epoch's start: resumable), until
 * its end or a stop (a signal, --max-steps: saved here). 1 on a stop. */
static int train_epoch(run *r, vae_rng *shuffle, double t0, size_t first)
{
    train_opts *o = &r->o;
    run_state *rs = &r->rs;
    vae_model *m = r->m;
    size_t N = r->N;
    int D = vae_model_input_size(m), stopping = 0;
    for (size_t i = 0; i < N; i++) r->perm[i] = (uint32_t)i;
    for (size_t i = N - 1; i > 0; i--) { // Fisher-Yates
        size_t j = (size_t)vae_rng_below(shuffle, i + 1);
        uint32_t t = r->perm[i];
        r->perm[i] = r->perm[j], r->perm[j] = t;
    }
    while (rs->cursor < N && !stopping) {
        int b = (int)(N - rs->cursor < (size_t)o->batch ? N - rs->cursor : (size_t)o->batch);
        // this rank's rows of the global batch; dynamic binarisation draws
        // through the whole batch, so every rank builds all of it then
        int lo, nb, whole = o->binarize == VAE_BINARIZE_DYNAMIC;
        dist_shard(b, &lo, &nb);
        vae_dataset_batch(r->train, r->perm + rs->cursor + (whole ? 0 : lo), whole ? b : nb,
                          o->binarize, o->threshold, &rs->data, r->x);
        if (r->train_labels) // a CVAE's labels of these rows
            for (int j = 0; j < nb; j++)
                r->batch_labels[j] = r->train_labels[r->perm[rs->cursor + lo + j]];
        vae_model_set_beta(m, beta_at(o, vae_model_step(m), (long)((N + o->batch - 1) / o->batch)));
        if (o->decay.kind != DECAY_NONE) vae_model_set_lr(m, lr_at(o, rs->epoch));
        if (vae_model_train_step_shard(m, r->x + (whole ? (size_t)lo * D : 0),
                                       r->train_labels ? r->batch_labels : NULL, nb, lo, b,
                                       &rs->sums))
            die("%s (the last good checkpoint is %s)", vae_model_errmsg(m), r->ckpt);
        rs->cursor += b;
        vq_progress(m, r->pr.extra, sizeof r->pr.extra);
        long step = vae_model_step(m);
        if (step % DIST_CHECK_EVERY == 0) dist_check_weights(m);
        stopping = dist_stop(stop_signal) || (o->max_steps && step >= o->max_steps);
        progress_update(&r->pr, rs->epoch + 1, o->epochs, (long)rs->cursor, (long)N, &rs->sums,
                        (rs->cursor - first) / (now() - t0 + 1e-9), r->epoch_time);
        if ((stopping || (o->save_every && step % o->save_every == 0)) && rs->cursor < N)
            save_run(m, o, rs, r->fp, r->last_test, !o->valid_fraction || !rs->best_epoch);
    }
    return stopping;
}

/* After an epoch's last step: the test split's numbers, the summary line,
 * the collapse warning, the checkpoint, then the metrics log line. */
static void end_epoch(run *r, vae_rng shuffle, double secs, size_t first)
{
    run_state *rs = &r->rs;
    vae_model *m = r->m;
    const vae_config *cfg = vae_model_config(m);
    r->epoch_time = secs;
    progress_clear(&r->pr, 1);
    vae_stats te, st = rs->sums;
    evaluate_split(m, r->test, r->o.seed + 12345, r->x, r->eval_idx, &te);
    double n = (double)st.n, tn = (double)te.n, ips = (r->N - first) / secs;
    // a VAE's test score is the negative ELBO (beta = 1) whatever beta trained it
    int iwae = cfg->model == VAE_MODEL_IWAE;
    int is_vae = cfg->model == VAE_MODEL_VAE || iwae || cfg->model == VAE_MODEL_CVAE ||
                 cfg->model == VAE_MODEL_HVAE;
    r->last_test = (is_vae ? te.rec + te.kl : te.loss) / tn;
    vae_stats ve = {0};
    double valid = 0;
    int improved = 0;
    if (r->valid) { // the validation -ELBO (an autoencoder's loss) picks the weights to keep
        evaluate_split(m, r->valid, r->o.seed + 23456, r->x, r->eval_idx, &ve);
        valid = (is_vae ? ve.rec + ve.kl : ve.loss) / (double)ve.n;
        improved = !rs->best_epoch || valid < rs->best_valid;
        if (improved) rs->best_epoch = rs->epoch + 1, rs->best_valid = valid;
    }
    rs->epoch++;
    rs->cursor = 0;
    memset(&rs->sums, 0, sizeof rs->sums);
    rs->shuffle = shuffle;
    const char *reg = iwae ? "rest" : is_vae ? "kl" : cfg->model == VAE_MODEL_VQVAE ? "vq" : "reg";
    char vqj[96] = ""; // a VQ-VAE's codebook health over the epoch, then the counts reset
    vq_epoch_end(m, r->root, vqj, sizeof vqj);
    if (r->root && still_printing(stdout, &r->stdout_gone))
        fprintf(stdout,
                "epoch %d/%d  train: loss %.3f rec %.3f %s %.3f | test: %s %.3f rec %.3f %s "
                "%.3f | %.2fs, %.0f img/s\n",
                rs->epoch, r->o.epochs, st.loss / n, st.rec / n, reg, st.kl / n,
                iwae ? "-iwae" : is_vae ? "-elbo" : "loss", r->last_test, te.rec / tn, reg,
                te.kl / tn, secs, ips);
    if (r->valid && r->root && still_printing(stdout, &r->stdout_gone))
        fprintf(stdout, "epoch %d/%d  valid: %s %.3f%s\n", rs->epoch, r->o.epochs,
                iwae ? "-iwae" : is_vae ? "-elbo" : "loss", valid,
                improved ? " (best: model.safetensors)" : "");
    int au = r->root ? active_units(m, r->test, r->x, r->eval_idx) : 0, d = cfg->latent;
    if (r->root && (cfg->model != VAE_MODEL_VAE || cfg->beta > 0) && 10 * au < d &&
        cfg->model != VAE_MODEL_VQVAE) // its health is the codes used (vq_epoch_end)
        fprintf(stderr, "warning: only %d of %d latent units are active (Var_x E[z|x] > "
                        "0.01): posterior collapse; try a smaller --beta, a --beta-schedule "
                        "warm-up or --free-bits\n", au, d);
    still_printing(stdout, &r->stdout_gone);
    // the checkpoint first: a crash before the log line loses a line, not a run
    save_run(m, &r->o, rs, r->fp, r->last_test, !r->valid || improved);
    if (r->root) {
        if (!r->log) r->log = open_log(r->logp);
        char vtext[96] = "", lrtext[48] = "";
        if (r->o.decay.kind != DECAY_NONE) // the rate this epoch trained at
            snprintf(lrtext, sizeof lrtext, ",\"lr\":%.7g", (double)lr_at(&r->o, rs->epoch - 1));
        if (r->valid)
            snprintf(vtext, sizeof vtext, ",\"valid_loss\":%.6f,\"best_epoch\":%d", valid,
                     rs->best_epoch);
        fprintf(r->log,
                "{\"epoch\":%d,\"step\":%ld,\"beta\":%g%s,\"train_loss\":%.6f,\"train_rec\":%.6f,"
                "\"train_kl\":%.6f,\"test_loss\":%.6f,\"test_rec\":%.6f,\"test_kl\":%.6f%s,"
                "\"active_units\":%d,\"seconds\":%.4f,\"images_per_s\":%.1f%s}\n",
                rs->epoch, vae_model_step(m), (double)cfg->beta, lrtext, st.loss / n, st.rec / n,
                st.kl / n, te.loss / tn, te.rec / tn, te.kl / tn, vtext, au, secs, ips, vqj);
        fflush(r->log);
    }
}

/* The last lines and files: the pictures after the last epoch, or where an
 * interrupted run stopped and how to continue it. The exit status. */
static int finish_run(run *r)
{
    train_opts *o = &r->o;
    int status = 0;
    if (r->log && fclose(r->log) != 0) die("%s: write failed: %s", r->logp, strerror(errno));
    if (r->stopped_early && r->root)
        fprintf(stderr, "stopped early after epoch %d: no better validation -ELBO in %d epochs; "
                "model.safetensors holds epoch %d's weights (%.3f)\n", r->rs.epoch, o->early_stop,
                r->rs.best_epoch, r->rs.best_valid);
    if (r->rs.epoch < o->epochs && !r->stopped_early) { // interrupted or --max-steps
        progress_clear(&r->pr, 0);
        if (r->root)
            fprintf(stderr, "%s at epoch %d, image %zu of %zu, step %ld; saved %s\n"
                    "continue with: %s train --resume %s\n",
                    dist_stop(stop_signal) ? "interrupted" : "stopped (--max-steps)",
                    r->rs.epoch + 1, r->rs.cursor, r->N, vae_model_step(r->m), r->ckpt, invoked_as,
                    r->ckpt);
        status = dist_stop(stop_signal) ? 130 : 0;
    } else if (r->root) {
        char *sp = join(o->out, "samples.png"), *rp = join(o->out, "recon.png");
        // a VQ-VAE samples through a prior over its codes, trained after it
        int vq = vae_model_config(r->m)->model == VAE_MODEL_VQVAE;
        // with validation, model.safetensors holds the best epoch's weights, which
        // need not be the last: the pictures show the model the user keeps, read
        // back from that file (batches of the run's size: the same sums as drawn
        // from the run's own model when the best epoch is the last)
        vae_model *pm = r->m, *best = NULL;
        if (r->valid && r->rs.best_epoch != r->rs.epoch) {
            char *mp = join(o->out, "model.safetensors");
            pm = best = load_model(mp, o->batch);
            free(mp);
            fprintf(stderr, "pictures from model.safetensors: epoch %d's weights\n",
                    r->rs.best_epoch);
        }
        if (!vq) write_samples(pm, sp, o->samples, o->seed, 2, -1);
        write_recon(pm, r->test, rp, o->samples < 32 ? o->samples : 32, 2);
        vae_model_free(best);
        fprintf(stderr, "done in %.1fs; wrote %s/{checkpoint.safetensors, model.safetensors, "
                "metrics.jsonl, %srecon.png}\n", now() - r->pr.t_start, o->out,
                vq ? "" : "samples.png, ");
        if (vq) fprintf(stderr, "samples need a prior over the codes: %s prior train --model %s\n",
                        invoked_as, o->out);
        free(sp);
        free(rp);
    }
    free(r->ckpt), free(r->logp), free(r->perm), free(r->eval_idx), free(r->x);
    free(r->batch_labels), free(o->data_classes);
    vae_model_free(r->m);
    vae_classifier_free(o->perc.cls), free(o->perc.path);
    vae_dataset_free(r->train);
    vae_dataset_free(r->test);
    vae_dataset_free(r->valid);
    dist_finalize();
    return status;
}

int cmd_train(int argc, char **argv)
{
    static run r; // large (the resume directory); one per process
    stop_signals_block();
    start_run(&r, argc, argv);
    stop_signals_arm();
    for (int stopping = 0; r.rs.epoch < r.o.epochs && !stopping;) {
        vae_rng shuffle = r.rs.shuffle;
        double t0 = now();
        size_t first = r.rs.cursor;
        stopping = train_epoch(&r, &shuffle, t0, first);
        if (r.rs.cursor < r.N) break; // stopped inside the epoch, saved there
        end_epoch(&r, shuffle, now() - t0, first);
        stopping = stopping || dist_stop(stop_signal);
        if (r.o.early_stop && r.rs.epoch - r.rs.best_epoch >= r.o.early_stop && r.rs.epoch < r.o.epochs)
            r.stopped_early = 1, stopping = 1;
    }
    return finish_run(&r);
}
