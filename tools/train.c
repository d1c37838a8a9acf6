/* train.c - `vae train`: the training loop, progress, metrics log,
 * checkpoints, exact resume and clean interrupts. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"

static const char train_help[] =
    "usage: vae train [options]\n"
    "       vae train --resume CHECKPOINT [--epochs N] [options]\n"
    "Trains a VAE and writes the checkpoint, metrics log and pictures to --out.\n"
    "\n"
    "data:\n"
    DATA_HELP
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
    "  --clip-grad F      rescale gradients to this global L2 norm at most; 0 = off [0]\n"
    "  --seed N           seeds weights, shuffling, noise [1]\n"
    "  --threads N        training threads; 0 = all cores [0]\n"
    "checkpoints:\n"
    "  --resume PATH      continue the run in a checkpoint.safetensors (or its\n"
    "                     directory) exactly where it stopped; only --epochs,\n"
    "                     --out, --data, --threads and output flags may be given\n"
    "  --save-every N     also save a checkpoint every N steps; 0 = at epoch ends [0]\n"
    "  --max-steps N      stop after N steps in all, with a checkpoint; 0 = no limit [0]\n"
    "output:\n"
    "  --out DIR          output directory [runs/vae-<date>-<time>; on --resume, the\n"
    "                     checkpoint's directory]\n"
    "  --force            write into --out even if it holds a checkpoint\n"
    "  --samples N        images in samples.png; recon.png shows up to 32 [64]\n"
    "  --quiet            no progress display\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves a checkpoint and\n"
    "exits with status 130; a second one stops at once. Files are replaced\n"
    "atomically, so the last checkpoint always loads.\n";

enum { O_DATA = 256, O_EPOCHS, O_BATCH, O_LATENT, O_HIDDEN, O_LR, O_B1, O_B2, O_EPS, O_SEED,
       O_THREADS, O_OUT, O_SAMPLES, O_QUIET, O_BIN, O_BETA, O_FORCE, O_HELP, O_CLIP, O_RESUME,
       O_SAVE_EVERY, O_MAX_STEPS, O_LAST };

typedef struct train_opts {
    const char *data, *out, *resume;
    int epochs, batch, threads, samples, quiet, force, binarize;
    long save_every, max_steps;
    float threshold, clip;
    uint64_t seed;
    vae_config cfg;
    vae_adam adam;
    char given[O_LAST]; /* which flags the command line set */
    data_args dargs;    /* how --data is read */
    char data_opts[256], data_split[96]; /* for the checkpoint: data.options, data.split */
    char *data_classes; /* data.classes: class folder names joined by '/' (never in a name) */
} train_opts;

/* Where a run stands: with the model's own state in the checkpoint, enough
 * to continue bit for bit. */
typedef struct run_state {
    int epoch;          /* epochs completed */
    size_t cursor;      /* images of the current epoch done */
    vae_rng shuffle;    /* shuffling RNG at the start of the current epoch */
    vae_rng data;       /* binarisation draws, now */
    vae_stats sums;     /* the current epoch's training sums so far */
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

static void parse_train(int argc, char **argv, train_opts *o)
{
    static const struct option longopts[] = {
        {"data", 1, 0, O_DATA},       {"epochs", 1, 0, O_EPOCHS},   {"batch", 1, 0, O_BATCH},
        {"latent", 1, 0, O_LATENT},   {"hidden", 1, 0, O_HIDDEN},   {"lr", 1, 0, O_LR},
        {"adam-beta1", 1, 0, O_B1},   {"adam-beta2", 1, 0, O_B2},   {"adam-eps", 1, 0, O_EPS},
        {"seed", 1, 0, O_SEED},       {"threads", 1, 0, O_THREADS}, {"out", 1, 0, O_OUT},
        {"samples", 1, 0, O_SAMPLES}, {"quiet", 0, 0, O_QUIET},     {"binarize", 1, 0, O_BIN},
        {"beta", 1, 0, O_BETA},       {"force", 0, 0, O_FORCE},     {"help", 0, 0, O_HELP},
        {"clip-grad", 1, 0, O_CLIP},  {"resume", 1, 0, O_RESUME},
        {"save-every", 1, 0, O_SAVE_EVERY}, {"max-steps", 1, 0, O_MAX_STEPS}, DATA_LONGOPTS,
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->data = DEFAULT_DATA;
    o->epochs = 10;
    o->batch = 128;
    o->samples = 64;
    o->seed = 1;
    vae_config_default(&o->cfg);
    vae_adam_default(&o->adam);
    data_args_init(&o->dargs);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        const char *a = optarg;
        if (c >= O_DATA && c < O_LAST) o->given[c] = 1;
        switch (c) {
        case O_DATA: o->data = path_arg("train", "--data", a); break;
        case O_EPOCHS: o->epochs = (int)parse_long("train", "--epochs", a, 1, 1000000); break;
        case O_BATCH: o->batch = (int)parse_long("train", "--batch", a, 1, 65536); break;
        case O_LATENT: o->cfg.latent = (int)parse_long("train", "--latent", a, 1, 4096); break;
        case O_HIDDEN: parse_hidden("train", a, &o->cfg); break;
        case O_LR: o->adam.lr = (float)parse_double("train", "--lr", a, 1e-12, 10); break;
        case O_B1: o->adam.beta1 = (float)parse_double("train", "--adam-beta1", a, 0, 0.999999); break;
        case O_B2: o->adam.beta2 = (float)parse_double("train", "--adam-beta2", a, 0, 0.999999999); break;
        case O_EPS: o->adam.eps = (float)parse_double("train", "--adam-eps", a, 1e-30, 1); break;
        case O_CLIP: o->clip = (float)parse_double("train", "--clip-grad", a, 0, 1e30); break;
        case O_SEED: o->seed = (uint64_t)parse_long("train", "--seed", a, 0, 0x7fffffffffffffffL); break;
        case O_THREADS: o->threads = (int)parse_long("train", "--threads", a, 0, 1024); break;
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
        case O_BETA: o->cfg.beta = (float)parse_double("train", "--beta", a, 0, 1e6); break;
        case O_FORCE: o->force = 1; break;
        case O_RESUME: o->resume = path_arg("train", "--resume", a); break;
        case O_SAVE_EVERY: o->save_every = parse_long("train", "--save-every", a, 0, 1L << 40); break;
        case O_MAX_STEPS: o->max_steps = parse_long("train", "--max-steps", a, 0, 1L << 40); break;
        case O_HELP: fputs(train_help, stdout); exit(0);
        default:
            if (!data_flag("train", c, a, &o->dargs)) bad_option("train", c, argv, longopts);
        }
    }
    if (optind < argc) usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (o->resume) { // the checkpoint fixes the model, the optimiser and the data order
        static const struct { int opt; const char *name; } fixed[] = {
            {O_BATCH, "--batch"}, {O_LATENT, "--latent"}, {O_HIDDEN, "--hidden"},
            {O_LR, "--lr"}, {O_B1, "--adam-beta1"}, {O_B2, "--adam-beta2"},
            {O_EPS, "--adam-eps"}, {O_CLIP, "--clip-grad"}, {O_SEED, "--seed"},
            {O_BIN, "--binarize"}, {O_BETA, "--beta"}};
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

/* Writes checkpoint.safetensors (to continue) and model.safetensors (the
 * weights, for sample/reconstruct/PyTorch); each atomically. */
static void save_run(vae_model *m, const train_opts *o, const run_state *rs, const char *fp,
                     double test_loss)
{
    char ep[16], cur[32], seed[32], loss[32], epochs[16], batch[16], threads[16], bin[48];
    char sums[128], shuf[VAE_RNG_TEXT], data[VAE_RNG_TEXT];
    snprintf(ep, sizeof ep, "%d", rs->epoch);
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
    const char *info[] = {"train.epoch", ep, "train.seed", seed, "train.data", o->data,
                          "train.test_neg_elbo", tl, "data.options", o->data_opts,
                          "data.split", o->data_split, "data.classes", o->data_classes, NULL};
    const char *full[] = {"train.epoch", ep, "train.seed", seed, "train.data", o->data,
                          "train.test_neg_elbo", tl, "data.options", o->data_opts,
                          "data.split", o->data_split, "data.classes", o->data_classes,
                          "run.cursor", cur, "run.epochs", epochs,
                          "run.batch", batch, "run.threads", threads,
                          "run.binarize", binarize_text(o, bin, sizeof bin), "run.fingerprint", fp,
                          "run.sums", sums, "run.shuffle_rng", shuf, "run.data_rng", data, NULL};
    char *ck = join(o->out, "checkpoint.safetensors"), *mp = join(o->out, "model.safetensors");
    if (vae_model_save_checkpoint(m, ck, full) || vae_model_save(m, mp, info))
        die("%s", vae_model_errmsg(m));
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
    o->batch = (int)strtol(need_meta(m, p, "run.batch"), NULL, 10);
    if (vae_model_set_max_batch(m, o->batch)) die("%s: run.batch: %s", p, vae_model_errmsg(m));
    o->seed = strtoull(need_meta(m, p, "train.seed"), NULL, 10);
    if (!o->given[O_EPOCHS]) o->epochs = (int)strtol(need_meta(m, p, "run.epochs"), NULL, 10);
    if (!o->given[O_THREADS]) o->threads = (int)strtol(need_meta(m, p, "run.threads"), NULL, 10);
    if (!o->given[O_DATA]) o->data = need_meta(m, p, "train.data");
    data_args_from_model(&o->dargs, m);
    if (parse_binarize(need_meta(m, p, "run.binarize"), o)) bad = "run.binarize";
    char *end;
    rs->epoch = (int)strtol(need_meta(m, p, "train.epoch"), &end, 10);
    if (*end || rs->epoch < 0) bad = "train.epoch";
    rs->cursor = strtoull(need_meta(m, p, "run.cursor"), &end, 10);
    if (*end) bad = "run.cursor";
    if (sscanf(need_meta(m, p, "run.sums"), "%la,%la,%la,%ld", &rs->sums.loss, &rs->sums.rec,
               &rs->sums.kl, &rs->sums.n) != 4)
        bad = "run.sums";
    if (vae_rng_parse(&rs->shuffle, need_meta(m, p, "run.shuffle_rng"))) bad = "run.shuffle_rng";
    if (vae_rng_parse(&rs->data, need_meta(m, p, "run.data_rng"))) bad = "run.data_rng";
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
    FILE *f = fopen(logp, "r");
    if (!f) return;
    char line[4096];
    size_t cap = 1 << 16, len = 0;
    char *keep = xmalloc(cap);
    while (fgets(line, sizeof line, f)) {
        int e;
        if (sscanf(line, "{\"epoch\":%d", &e) != 1 || e > epochs_done) continue;
        size_t n = strlen(line);
        if (len + n > cap) {
            while (len + n > cap) cap *= 2;
            keep = realloc(keep, cap);
            if (!keep) die("out of memory");
        }
        memcpy(keep + len, line, n);
        len += n;
    }
    fclose(f);
    vae_error err;
    if (vae_write_file(logp, keep, len, &err)) die("%s", err.msg);
    free(keep);
}

/* ------------------------------------------------------------- progress */

/* Live progress on a terminal; a plain line every 10 s otherwise. */
typedef struct progress {
    int tty, quiet;
    double t_start, t_last;
} progress;

static void progress_update(progress *p, int epoch, int epochs, long done, long total,
                            const vae_stats *st, double ips, double t_epoch)
{
    double t = now();
    if (p->quiet || (t - p->t_last < (p->tty ? 0.25 : 10.0) && done < total)) return;
    p->t_last = t;
    double left = (total - done) / (ips + 1e-9) + (epochs - epoch) * t_epoch;
    double n = st->n ? (double)st->n : 1;
    fprintf(stderr, "%sepoch %d/%d %5.1f%% | %7.0f img/s | loss %.2f rec %.2f kl %.2f | ETA %.0fs%s",
            p->tty ? "\r" : "", epoch, epochs, 100.0 * done / total, ips, st->loss / n,
            st->rec / n, st->kl / n, left, p->tty ? "\033[K" : "\n");
    if (p->tty && done >= total) fputc('\n', stderr);
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
    for (size_t i = 0; i < N; i += B) {
        int b = (int)(N - i < (size_t)B ? N - i : (size_t)B);
        for (int j = 0; j < b; j++) idx[j] = (uint32_t)(i + j);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_evaluate(m, x, b, &rng, st)) die("%s", vae_model_errmsg(m));
    }
}

/* -------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal) _exit(130); // the second one: every file on disk is whole already
    stop_signal = sig;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---------------------------------------------------------------- train */

/* Creates dir (one level) and refuses to clobber an earlier run's checkpoint. */
static void prepare_out(const char *dir, int force)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die("%s: cannot create the output directory: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s: not a directory", dir);
    char *ck = join(dir, "model.safetensors");
    if (!force && access(ck, F_OK) == 0)
        die("%s already holds a checkpoint; choose another --out, pass --force, or continue it "
            "with --resume %s", dir, dir);
    free(ck);
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    run_state rs;
    memset(&rs, 0, sizeof rs);
    parse_train(argc, argv, &o);
    vae_model *m = NULL;
    vae_error err;
    char resume_dir[4096] = "";
    if (o.resume) m = load_run(&o, &rs, resume_dir, sizeof resume_dir);
    vae_set_threads(o.threads);

    // everything that can fail on input is checked before anything is written
    vae_dataset *train, *test;
    o.dargs.path = o.data;
    open_data_args("train", &o.dargs, &train, &test);
    int c, h, w;
    vae_dataset_shape(train, &c, &h, &w);
    vae_dataset_info dinfo;
    vae_dataset_get_info(test, &dinfo);
    data_options_text(&o.dargs, o.data_opts, sizeof o.data_opts);
    snprintf(o.data_split, sizeof o.data_split, "%s", dinfo.split);
    o.data_classes = class_names(train);
    char fp[96];
    fingerprint(train, fp, sizeof fp);
    size_t N = vae_dataset_count(train);
    if (m) {
        const char *want = vae_model_meta(m, "run.fingerprint");
        if (!want || strcmp(want, fp))
            die("%s: not the data this run was trained on (fingerprint %s, checkpoint has %s)",
                vae_dataset_path(train), fp, want ? want : "none");
        if (rs.cursor > N) die("%s: run.cursor is past the end of the data", o.resume);
        if (rs.epoch >= o.epochs)
            die("%s: the run already trained %d epochs; pass --epochs N (N > %d) to go on",
                o.resume, rs.epoch, rs.epoch);
        if (!o.out) o.out = resume_dir;
        if (strcmp(o.out, resume_dir)) prepare_out(o.out, o.force);
    } else {
        o.cfg.channels = c, o.cfg.height = h, o.cfg.width = w;
        if (vae_model_create(&o.cfg, o.batch, o.seed, &m, &err)) usage_error("train", "%s", err.msg);
        vae_model_set_adam(m, &o.adam);
        vae_model_set_grad_clip(m, o.clip);
        vae_rng_seed(&rs.shuffle, o.seed * 0x9E3779B97F4A7C15ull + 1);
        vae_rng_seed(&rs.data, o.seed * 0x9E3779B97F4A7C15ull + 2);
        static char outbuf[64];
        if (!o.out) {
            time_t t = time(NULL);
            strftime(outbuf, sizeof outbuf, "runs/vae-%Y%m%d-%H%M%S", localtime(&t));
            mkdir("runs", 0777);
            o.out = outbuf;
        }
        prepare_out(o.out, o.force);
    }
    check_data_fits(test, m);

    char *logp = join(o.out, "metrics.jsonl"), *ckpt = join(o.out, "checkpoint.safetensors");
    if (o.resume) trim_log(logp, rs.epoch);
    FILE *log = fopen(logp, o.resume ? "a" : "w");
    if (!log) die("%s: cannot write the metrics log: %s", logp, strerror(errno));

    int D = vae_model_input_size(m);
    uint32_t *perm = xmalloc(N * sizeof *perm), *eval_idx = xmalloc(o.batch * sizeof *eval_idx);
    float *x = xmalloc((size_t)o.batch * D * sizeof *x);
    const vae_config *cfg = vae_model_config(m);
    char arch[160];
    int len = snprintf(arch, sizeof arch, "%d", D);
    for (int i = 0; i < cfg->n_hidden; i++)
        len += snprintf(arch + len, sizeof arch - len, "-%d", cfg->hidden[i]);
    snprintf(arch + len, sizeof arch - len, "-%d", cfg->latent);
    report_data(&o.dargs, train, test);
    fprintf(stderr, "%s %s VAE (%zu parameters) on %zu images of %dx%d from %s\n",
            o.resume ? "resuming" : "training", arch, vae_model_num_params(m), N, w, h, o.data);
    if (o.resume)
        fprintf(stderr, "at epoch %d, image %zu of %zu, step %ld\n", rs.epoch + 1, rs.cursor, N,
                vae_model_step(m));

    catch_signals();
    progress pr = {isatty(2), o.quiet, now(), 0};
    double epoch_time = 0, last_test = -1;
    const char *prev = vae_model_meta(m, "train.test_neg_elbo");
    if (prev && *prev) last_test = atof(prev);
    int stopping = 0;
    while (rs.epoch < o.epochs && !stopping) {
        // the order depends only on the RNG state at the epoch's start: resumable
        vae_rng shuffle = rs.shuffle;
        for (size_t i = 0; i < N; i++) perm[i] = (uint32_t)i;
        for (size_t i = N - 1; i > 0; i--) { // Fisher-Yates
            size_t j = (size_t)vae_rng_below(&shuffle, i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double t0 = now();
        size_t first = rs.cursor;
        while (rs.cursor < N && !stopping) {
            int b = (int)(N - rs.cursor < (size_t)o.batch ? N - rs.cursor : (size_t)o.batch);
            vae_dataset_batch(train, perm + rs.cursor, b, o.binarize, o.threshold, &rs.data, x);
            if (vae_train_step(m, x, b, &rs.sums))
                die("%s (the last good checkpoint is %s)", vae_model_errmsg(m), ckpt);
            rs.cursor += b;
            long step = vae_model_step(m);
            stopping = stop_signal || (o.max_steps && step >= o.max_steps);
            progress_update(&pr, rs.epoch + 1, o.epochs, (long)rs.cursor, (long)N, &rs.sums,
                            (rs.cursor - first) / (now() - t0 + 1e-9), epoch_time);
            if ((stopping || (o.save_every && step % o.save_every == 0)) && rs.cursor < N)
                save_run(m, &o, &rs, fp, last_test);
        }
        if (rs.cursor < N) break; // stopped inside the epoch, saved above
        double secs = now() - t0;
        epoch_time = secs;
        vae_stats te, st = rs.sums;
        evaluate_split(m, test, o.seed + 12345, x, eval_idx, &te);
        double n = (double)st.n, tn = (double)te.n, ips = (N - first) / secs;
        last_test = te.loss / tn;
        rs.epoch++;
        rs.cursor = 0;
        memset(&rs.sums, 0, sizeof rs.sums);
        rs.shuffle = shuffle;
        fprintf(stdout,
                "epoch %d/%d  train: loss %.3f rec %.3f kl %.3f | test: -elbo %.3f rec %.3f kl %.3f "
                "| %.2fs, %.0f img/s\n",
                rs.epoch, o.epochs, st.loss / n, st.rec / n, st.kl / n, te.loss / tn, te.rec / tn,
                te.kl / tn, secs, ips);
        fflush(stdout);
        // the checkpoint first: a crash before the log line loses a line, not a run
        save_run(m, &o, &rs, fp, last_test);
        fprintf(log,
                "{\"epoch\":%d,\"step\":%ld,\"beta\":%g,\"train_loss\":%.6f,\"train_rec\":%.6f,"
                "\"train_kl\":%.6f,\"test_loss\":%.6f,\"test_rec\":%.6f,\"test_kl\":%.6f,"
                "\"seconds\":%.4f,\"images_per_s\":%.1f}\n",
                rs.epoch, vae_model_step(m), (double)cfg->beta, st.loss / n, st.rec / n,
                st.kl / n, te.loss / tn, te.rec / tn, te.kl / tn, secs, ips);
        fflush(log);
        stopping = stopping || stop_signal;
    }
    if (fclose(log) != 0) die("%s: write failed: %s", logp, strerror(errno));

    int status = 0;
    if (rs.epoch < o.epochs) { // interrupted or --max-steps
        fprintf(stderr, "%s at epoch %d, image %zu of %zu, step %ld; saved %s\n"
                "continue with: vae train --resume %s\n",
                stop_signal ? "interrupted" : "stopped (--max-steps)", rs.epoch + 1, rs.cursor, N,
                vae_model_step(m), ckpt, ckpt);
        status = stop_signal ? 130 : 0;
    } else {
        char *sp = join(o.out, "samples.png"), *rp = join(o.out, "recon.png");
        write_samples(m, sp, o.samples, o.seed, 2);
        write_recon(m, test, rp, o.samples < 32 ? o.samples : 32, 2);
        fprintf(stderr, "done in %.1fs; wrote %s/{checkpoint.safetensors, model.safetensors, "
                "metrics.jsonl, samples.png, recon.png}\n", now() - pr.t_start, o.out);
        free(sp);
        free(rp);
    }
    free(ckpt), free(logp), free(perm), free(eval_idx), free(x);
    vae_model_free(m);
    vae_dataset_free(train);
    vae_dataset_free(test);
    free(o.data_classes);
    return status;
}
