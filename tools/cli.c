/* cli.c - what the vae commands share: errors, flag parsing, loading,
 * batches and picture grids. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char *prog = "vae";
const char *invoked_as = "vae";

void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s%s%s --help')\n", prog, cmd ? " " : "", cmd ? cmd : "");
    exit(2);
}

void bad_option(const char *cmd, int c, char **argv, const struct option *longopts)
{
    const char *arg = argv[optind - 1];
    if (c == ':') usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt > 0 && optopt < 256) usage_error(cmd, "unknown option '-%c'", optopt);
    for (const struct option *o = longopts; optopt && o->name; o++)
        if (o->val == optopt) usage_error(cmd, "option '--%s' takes no value", o->name);
    usage_error(cmd, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

const char *path_arg(const char *cmd, const char *flag, const char *s)
{
    if (!*s) usage_error(cmd, "%s needs a non-empty path", flag);
    return s;
}

int next_option(const char *cmd, int argc, char **argv, const char *shortopts,
                const struct option *longopts)
{
    static char **checked;
    for (int i = 1; checked != argv && i < argc; i++) { // once per argument vector
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if (a[0] == '-' && a[1] == '-') {
            size_t len = strcspn(a + 2, "=");
            const struct option *exact = NULL, *prefix = NULL;
            for (const struct option *o = longopts; o->name; o++)
                if (!strncmp(o->name, a + 2, len)) *(strlen(o->name) == len ? &exact : &prefix) = o;
            if (!exact && prefix)
                usage_error(cmd, "unknown option '%.*s'; did you mean '--%s'?", (int)len + 2, a,
                            prefix->name);
            if (exact && exact->has_arg == required_argument && !a[2 + len]) i++; // its value
        } else if (a[0] == '-' && a[1]) { // short options: a value is the rest or the next word
            for (const char *p = a + 1; *p; p++) {
                const char *s = *p == ':' ? NULL : strchr(shortopts, *p);
                if (s && s[1] == ':') {
                    i += !p[1];
                    break;
                }
            }
        }
    }
    checked = argv;
    return getopt_long(argc, argv, shortopts, longopts, NULL);
}

void check_output(const char *flag, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        die("%s %s: not a file name (a directory)", flag, path);
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        die("%s %s: the directory %s does not exist; create it first", flag, path, dir);
    if (access(dir, W_OK) != 0)
        die("%s %s: cannot write into %s: %s", flag, path, dir, strerror(errno));
}

void check_not_input(const char *flag, const char *out, const char *in_flag, const char *in)
{
    struct stat so, si;
    if (!in || stat(out, &so) != 0 || stat(in, &si) != 0) return; // a new file is no input
    char *model = NULL;
    if (S_ISDIR(si.st_mode)) { // a run directory: the model file read from it
        model = join(in, "model.safetensors");
        if (stat(model, &si) != 0) si.st_ino = 0, si.st_dev = 0;
    }
    free(model);
    if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
        die("%s %s: the same file as the input %s %s; writing it would destroy the input", flag,
            out, in_flag, in);
}

void make_dirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n >= sizeof p) die("%s: path too long", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            die("%s: cannot create the directory %s: %s", dir, p, strerror(errno));
        p[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s: not a directory", dir);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

long parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        usage_error(cmd, "%s expects a whole number in %ld..%ld, not '%s'", flag, lo, hi, s);
    return v;
}

double parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi)
        usage_error(cmd, "%s expects a number in [%g, %g], not '%s'", flag, lo, hi, s);
    return v;
}

void parse_hidden(const char *cmd, const char *s, vae_config *cfg)
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

void arch_text(const vae_config *c, char *buf, size_t len)
{
    int conv = c->arch == VAE_ARCH_CONV;
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__))
    if (conv) PUT("conv %dx%dx%d", c->channels, c->height, c->width);
    else PUT("%d", c->channels * c->height * c->width);
    for (int i = 0; i < c->n_hidden; i++) PUT("-%d", c->hidden[i]);
    int gh, gw;
    if (c->model == VAE_MODEL_VQVAE && vae_config_vq_latent(c, &gh, &gw))
        PUT("-[%dx%dx%d codes of %d", c->code_dim, gh, gw, c->codebook);
    else if (c->model == VAE_MODEL_HVAE)
        PUT("-[z1 %d, z2 %d", c->latent1, c->latent);
    else
        PUT("-[%d", c->latent);
    if (c->flow != VAE_FLOW_NONE)
        PUT(", %s flow x%d", c->flow == VAE_FLOW_PLANAR ? "planar" : "householder", c->flow_steps);
    if (c->vamp_k) PUT(", VampPrior K=%d", c->vamp_k);
    PUT("]");
    for (int i = c->n_hidden - 1; i >= 0; i--) PUT("-%d", c->hidden[i]);
    if (conv) PUT("-%dx%dx%d", c->channels, c->height, c->width);
    else PUT("-%d MLP", c->channels * c->height * c->width);
#undef PUT
}

vae_model *load_model(const char *path, int max_batch)
{
    vae_model *m;
    vae_error err;
    struct stat st;
    int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char *p = dir ? join(path, "model.safetensors") : strdup(path);
    if (!p) die("out of memory");
    if (dir && access(p, F_OK) != 0)
        die("%s: not a checkpoint: a directory without model.safetensors (give a checkpoint file or "
            "a run directory)", path);
    if (vae_model_load(p, max_batch, &m, &err)) die("%s", err.msg);
    free(p);
    return m;
}

void check_data_fits(const vae_dataset *ds, const vae_model *m)
{
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    const vae_config *cfg = vae_model_config(m);
    if (c != cfg->channels || h != cfg->height || w != cfg->width)
        die("%s: images are %dx%dx%d but the model takes %dx%dx%d", vae_dataset_path(ds), c, h, w,
            cfg->channels, cfg->height, cfg->width);
}

char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

const uint8_t *need_labels(const vae_dataset *ds, const vae_model *m)
{
    const uint8_t *labels = vae_dataset_labels(ds);
    if (m && !vae_model_num_classes(m)) return NULL;
    if (!labels)
        die("%s: has no labels, and a conditional VAE (--model cvae) needs them (MNIST layout: "
            "the matching -labels-idx1-ubyte file)", vae_dataset_path(ds));
    if (m)
        for (size_t i = 0; i < vae_dataset_count(ds); i++)
            if (labels[i] >= vae_model_num_classes(m))
                die("%s: label %d of image %zu is not one of the model's %d classes",
                    vae_dataset_path(ds), labels[i], i, vae_model_num_classes(m));
    return labels;
}

/* -------------------------------------------------------------- signals */

/* (vae train, vae serve) SIGINT, SIGTERM and SIGHUP (a closed terminal: a
 * run saves as for Ctrl-C) are blocked in every thread of the process and
 * taken, with sigwait, by a thread of their own: with a handler, a signal
 * delivered to a thread running oneDNN's JIT matrix kernels made the product
 * crash (about 1 in 60 runs stopped by two SIGINTs in a row;
 * tests/test_signals.sh). The handler's frame on that thread's stack was the
 * cause: on an alternate stack the crashes stopped as well. Until the command
 * is ready to stop cleanly, a signal does what it would have done: nothing if
 * it was ignored (a background job's SIGINT, nohup's SIGHUP), else end the
 * process. */
atomic_int stop_signal;
static atomic_int stop_armed;
static sigset_t stop_set;
static const int stop_signals[3] = {SIGINT, SIGTERM, SIGHUP};
static int stop_ignored[3]; // each ignored when vae started (nohup, a background job)

static int ignored_at_start(int sig)
{
    for (int i = 0; i < 3; i++)
        if (stop_signals[i] == sig) return stop_ignored[i];
    return 0;
}

static void *signal_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int sig;
        if (sigwait(&stop_set, &sig)) continue;
        // ignored at start: a background job's SIGINT until the command is
        // ready to stop (then a stop is asked for explicitly), nohup's SIGHUP always
        int armed = atomic_load(&stop_armed);
        if (ignored_at_start(sig) && (!armed || sig == SIGHUP)) continue;
        if (!armed) {
            signal(sig, SIG_DFL);
            pthread_sigmask(SIG_UNBLOCK, &stop_set, NULL);
            raise(sig);
        }
        if (atomic_load(&stop_signal)) _exit(130); // the second one: every file on disk is whole
        atomic_store(&stop_signal, sig);
    }
    return NULL;
}

void stop_signals_block(void)
{
    struct sigaction old;
    sigemptyset(&stop_set);
    for (int i = 0; i < 3; i++) {
        sigaddset(&stop_set, stop_signals[i]);
        stop_ignored[i] = !sigaction(stop_signals[i], NULL, &old) && old.sa_handler == SIG_IGN;
    }
    // a closed pipe on stdout or stderr (vae train | head) must not end the
    // run: writes then fail with EPIPE, and the run stops printing
    signal(SIGPIPE, SIG_IGN);
    pthread_t th;
    int rc = pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    if (!rc) rc = pthread_create(&th, NULL, signal_thread, NULL);
    if (!rc) rc = pthread_detach(th);
    if (rc)
        die("cannot start the thread that handles Ctrl-C: %s (out of threads or memory?)",
            strerror(rc));
}

void stop_signals_arm(void) { atomic_store(&stop_armed, 1); }

/* ---------------------------------------------------------------- data */

void data_args_init(data_args *d)
{
    memset(d, 0, sizeof *d);
    d->path = DEFAULT_DATA;
    vae_data_options_default(&d->opt);
}

#define GIVEN(c) (1u << ((c) - DOPT_CSV_LABEL))

const char *data_flag_name(int c)
{
    static const char *names[] = {"--csv-label", "--csv-header", "--csv-scale", "--shape",
                                  "--resize", "--test-fraction", "--split-seed"};
    return names[c - DOPT_CSV_LABEL];
}

/* "3x32x32" or "32x32" into n whole numbers in 1..hi; -1 if malformed. */
static int parse_dims(const char *s, int n, int *v, int hi)
{
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || !(*s >= '0' && *s <= '9') || errno || x < 1 || x > hi) return -1;
        v[i] = (int)x;
        if (i < n - 1 && *end != 'x') return -1;
        s = end + (i < n - 1);
        if (i == n - 1 && *end) return -1;
    }
    return 0;
}

int data_flag(const char *cmd, int c, const char *a, data_args *d)
{
    if (c == DOPT_MAX_MEMORY) {
        double mb = parse_double(cmd, "--max-memory", a, 1e-6, 1e9);
        d->opt.max_memory = (size_t)(mb * 1048576.0) ? (size_t)(mb * 1048576.0) : 1;
        d->max_memory_given = 1;
        return 1;
    }
    if (c < DOPT_CSV_LABEL || c >= DOPT_END) return 0;
    vae_data_options *o = &d->opt;
    switch (c) {
    case DOPT_CSV_LABEL:
        if (!strcmp(a, "none")) o->csv_label = VAE_CSV_LABEL_NONE;
        else if (!strcmp(a, "first")) o->csv_label = VAE_CSV_LABEL_FIRST;
        else if (!strcmp(a, "last")) o->csv_label = VAE_CSV_LABEL_LAST;
        else usage_error(cmd, "--csv-label expects first, last or none, not '%s'", a);
        break;
    case DOPT_CSV_HEADER:
        if (!strcmp(a, "auto")) o->csv_header = -1;
        else if (!strcmp(a, "yes")) o->csv_header = 1;
        else if (!strcmp(a, "no")) o->csv_header = 0;
        else usage_error(cmd, "--csv-header expects auto, yes or no, not '%s'", a);
        break;
    case DOPT_CSV_SCALE:
        if (!strcmp(a, "255")) o->csv_scale = 255;
        else if (!strcmp(a, "1")) o->csv_scale = 1;
        else usage_error(cmd, "--csv-scale expects 255 (values 0..255) or 1 (values 0..1), not '%s'", a);
        break;
    case DOPT_SHAPE: {
        int v[3];
        if (parse_dims(a, 3, v, 4096) || (v[0] != 1 && v[0] != 3))
            usage_error(cmd, "--shape expects CxHxW with C 1 or 3 and sides 1..4096, like 3x32x32, "
                        "not '%s'", a);
        o->channels = v[0], o->height = v[1], o->width = v[2];
        break;
    }
    case DOPT_RESIZE: {
        int v[2];
        if (parse_dims(a, 2, v, 4096))
            usage_error(cmd, "--resize expects WxH with sides 1..4096, like 32x32, not '%s'", a);
        o->resize_w = v[0], o->resize_h = v[1];
        break;
    }
    case DOPT_TEST_FRACTION:
        o->test_fraction = parse_double(cmd, "--test-fraction", a, 1e-9, 1 - 1e-9);
        break;
    case DOPT_SPLIT_SEED:
        o->split_seed = (uint64_t)parse_long(cmd, "--split-seed", a, 0, 0x7fffffffffffffffL);
        break;
    }
    d->given |= GIVEN(c);
    return 1;
}

void data_options_text(const data_args *d, char *buf, size_t len)
{
    const vae_data_options *o = &d->opt;
    static const char *lab[] = {"none", "first", "last"};
    char frac[32]; // the shortest text that reads back as the same double
    snprintf(frac, sizeof frac, "%.15g", o->test_fraction);
    if (strtod(frac, NULL) != o->test_fraction) snprintf(frac, sizeof frac, "%.17g", o->test_fraction);
    snprintf(buf, len,
             "csv_label=%s;csv_header=%s;csv_scale=%d;shape=%dx%dx%d;resize=%dx%d;"
             "test_fraction=%s;split_seed=%llu",
             lab[o->csv_label], o->csv_header < 0 ? "auto" : o->csv_header ? "yes" : "no",
             o->csv_scale, o->channels, o->height, o->width, o->resize_w, o->resize_h,
             frac, (unsigned long long)o->split_seed);
}

void data_args_from_model(data_args *d, const vae_model *m)
{
    const char *split = vae_model_meta(m, "data.split");
    d->held_out = split && !strncmp(split, "held out", 8);
    const char *s = vae_model_meta(m, "data.options");
    if (!s) return; // written before data options existed: the defaults
    data_args f;
    data_args_init(&f);
    char lab[16], hdr[16];
    int scale, c, h, w, rw, rh;
    double frac;
    unsigned long long seed;
    if (sscanf(s, "csv_label=%15[a-z];csv_header=%15[a-z];csv_scale=%d;shape=%dx%dx%d;resize=%dx%d;"
               "test_fraction=%lg;split_seed=%llu", lab, hdr, &scale, &c, &h, &w, &rw, &rh, &frac,
               &seed) != 10)
        die("checkpoint entry data.options is invalid: '%s'", s);
    f.opt.csv_label = !strcmp(lab, "first") ? VAE_CSV_LABEL_FIRST
                      : !strcmp(lab, "last") ? VAE_CSV_LABEL_LAST : VAE_CSV_LABEL_NONE;
    f.opt.csv_header = !strcmp(hdr, "yes") ? 1 : !strcmp(hdr, "no") ? 0 : -1;
    f.opt.csv_scale = scale;
    f.opt.channels = c, f.opt.height = h, f.opt.width = w;
    f.opt.resize_w = rw, f.opt.resize_h = rh;
    f.opt.test_fraction = frac;
    f.opt.split_seed = seed;
    vae_data_options *o = &d->opt;
    if (!(d->given & GIVEN(DOPT_CSV_LABEL))) o->csv_label = f.opt.csv_label;
    if (!(d->given & GIVEN(DOPT_CSV_HEADER))) o->csv_header = f.opt.csv_header;
    if (!(d->given & GIVEN(DOPT_CSV_SCALE))) o->csv_scale = f.opt.csv_scale;
    if (!(d->given & GIVEN(DOPT_SHAPE))) o->channels = c, o->height = h, o->width = w;
    if (!(d->given & GIVEN(DOPT_RESIZE))) o->resize_w = rw, o->resize_h = rh;
    if (!(d->given & GIVEN(DOPT_TEST_FRACTION))) o->test_fraction = frac;
    if (!(d->given & GIVEN(DOPT_SPLIT_SEED))) o->split_seed = seed;
}

/* Flags that do not apply to what was found are mistakes, not no-ops. */
static void check_applies(const char *cmd, const data_args *d, const char *kind, const char *split)
{
    int csv = !strcmp(kind, "CSV"), png = !strcmp(kind, "PNG folder");
    for (int c = DOPT_CSV_LABEL; c < DOPT_END; c++) {
        if (!(d->given & GIVEN(c))) continue;
        int fraction = c == DOPT_TEST_FRACTION || c == DOPT_SPLIT_SEED;
        int applies = c == DOPT_RESIZE ? png : fraction ? !strncmp(split, "held out", 8) : csv;
        if (!applies)
            usage_error(cmd, "%s does not apply: %s is %s%s%s", data_flag_name(c), d->path,
                        png ? "a PNG folder" : csv ? "a CSV file" : "an IDX directory",
                        fraction ? " with its own test split, " : "", fraction ? split : "");
    }
}

void open_data_args(const char *cmd, const data_args *d, vae_dataset **train, vae_dataset **test)
{
    vae_error err;
    if (vae_data_open(d->path, &d->opt, train, test, &err)) die("%s", err.msg);
    vae_dataset_info a;
    vae_dataset_describe(*train, &a);
    check_applies(cmd, d, a.kind, a.split);
    if (d->max_memory_given && !strcmp(a.kind, "IDX"))
        usage_error(cmd, "--max-memory does not apply: %s is an IDX directory (kept in memory)",
                    d->path);
    if (!strcmp(a.kind, "IDX") && !strncmp(a.split, "held out", 8) &&
        !(d->given & GIVEN(DOPT_TEST_FRACTION)) && !d->held_out)
        die("%s: no t10k-images-idx3-ubyte[.gz] here (the test split); pass --test-fraction F "
            "to hold out training images instead", d->path);
}

vae_dataset *open_test_split(const char *cmd, const data_args *d)
{
    char p[4096];
    struct stat st;
    for (int gz = 0; gz < 2; gz++) { // MNIST layout: the t10k files alone will do
        snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", d->path, gz ? ".gz" : "");
        if (lstat(p, &st) != 0) continue;
        vae_dataset *ds;
        vae_error err;
        if (vae_dataset_open_mnist(d->path, VAE_SPLIT_TEST, &ds, &err)) die("%s", err.msg);
        check_applies(cmd, d, "IDX", "t10k files");
        if (d->max_memory_given) usage_error(cmd, "--max-memory does not apply: %s is an IDX directory (kept in memory)", d->path);
        return ds;
    }
    vae_dataset *train, *test;
    open_data_args(cmd, d, &train, &test);
    vae_dataset_free(train);
    return test;
}

void report_data(const data_args *d, const vae_dataset *train, const vae_dataset *test)
{
    vae_dataset_info a, b;
    vae_dataset_describe(train ? train : test, &a);
    vae_dataset_describe(test, &b);
    char labels[64] = "no labels", skipped[80] = "", counts[64];
    if (a.num_classes) snprintf(labels, sizeof labels, "labels: %d classes", a.num_classes);
    if (a.skipped)
        snprintf(skipped, sizeof skipped, "; skipped %zu entr%s that %s not *.png", a.skipped,
                 a.skipped == 1 ? "y" : "ies", a.skipped == 1 ? "is" : "are");
    if (train) snprintf(counts, sizeof counts, "%zu training + %zu test", a.count, b.count);
    else snprintf(counts, sizeof counts, "%zu test", b.count);
    fprintf(stderr, "data: %s %s: %s images, %dx%d %s%s, %s, test split: %s%s%s\n", a.kind,
            d->path, counts, a.width, a.height, a.channels == 3 ? "RGB" : "grey",
            a.resized ? " (resized)" : "", labels, b.split, skipped,
            a.on_disk ? "; images in a temporary file (over --max-memory)" : "");
}

char *class_names(const vae_dataset *ds)
{
    vae_dataset_info info;
    vae_dataset_describe(ds, &info);
    size_t len = 1;
    for (int k = 0; k < info.num_classes && vae_dataset_class_name(ds, k); k++)
        len += strlen(vae_dataset_class_name(ds, k)) + 1;
    char *s = xmalloc(len);
    s[0] = 0;
    for (int k = 0; k < info.num_classes && vae_dataset_class_name(ds, k); k++) {
        if (k) strcat(s, "/");
        strcat(s, vae_dataset_class_name(ds, k));
    }
    return s;
}

/* ---------------------------------------------- a model and its images */

void model_args_init(model_args *a)
{
    memset(a, 0, sizeof *a);
    data_args_init(&a->dargs);
}

int model_flag(const char *cmd, int c, const char *arg, model_args *a)
{
    if (c == OPT_MODEL) a->model = path_arg(cmd, "--model", arg);
    else if (c == OPT_DATA) a->data = path_arg(cmd, "--data", arg);
    else return data_flag(cmd, c, arg, &a->dargs);
    return 1;
}

vae_model *model_load(const char *cmd, const model_args *a, int max_batch)
{
    if (!a->model) usage_error(cmd, "--model is required");
    return load_model(a->model, max_batch);
}

void split_valid(double fraction, uint64_t split_seed, vae_dataset **train, vae_dataset **valid)
{
    vae_dataset *rest;
    vae_error err;
    uint64_t vseed = split_seed ^ 0x76616c6964ull; // "valid": not the test split's shuffle
    if (vae_dataset_split(*train, fraction, vseed, &rest, valid, &err))
        die("--valid-fraction %g: %s", fraction, err.msg);
    vae_dataset_free(*train);
    *train = rest;
}

double model_valid_fraction(const vae_model *m, const char *path)
{
    // model.safetensors says train.valid_fraction, checkpoint.safetensors run.valid_fraction
    const char *key = "train.valid_fraction", *v = vae_model_meta(m, key);
    if (!v) v = vae_model_meta(m, key = "run.valid_fraction");
    if (!v) return 0;
    char *end;
    double f = strtod(v, &end);
    if (!*v || *end || !(f > 0 && f <= 0.9)) die("%s: checkpoint entry %s is invalid", path, key);
    return f;
}

/* The model's images of one part: the test split, or the training split
 * divided as training divided it (valid: 1 for the held-out part, 0 for the
 * rest, which is what training trained on). */
static vae_dataset *open_part(const char *cmd, model_args *a, const vae_model *m, vae_split split,
                              int valid)
{
    data_args *d = &a->dargs;
    if (!a->data) {
        const char *t = vae_model_meta(m, "train.data");
        struct stat st;
        if (t && *t && stat(t, &st) != 0)
            die("%s: the model's training data (train.data in %s) are not here: %s; pass "
                "--data PATH", t, a->model, strerror(errno));
        d->path = t && *t ? t : DEFAULT_DATA;
    } else d->path = a->data;
    data_args_from_model(d, m);
    vae_dataset *ds, *other;
    if (split == VAE_SPLIT_TEST) ds = open_test_split(cmd, d);
    else {
        open_data_args(cmd, d, &ds, &other);
        vae_dataset_free(other);
        double f = model_valid_fraction(m, a->model);
        if (f > 0) { // the images held out for validation were not trained on
            vae_dataset *held;
            split_valid(f, d->opt.split_seed, &ds, &held);
            if (valid) vae_dataset_free(ds), ds = held;
            else vae_dataset_free(held);
        }
    }
    check_data_fits(ds, m);
    return ds;
}

vae_dataset *model_split(const char *cmd, model_args *a, const vae_model *m, vae_split split)
{
    return open_part(cmd, a, m, split, 0);
}

vae_dataset *model_valid_split(const char *cmd, model_args *a, const vae_model *m)
{
    if (!model_valid_fraction(m, a->model))
        usage_error(cmd, "--split valid: %s was trained without --valid-fraction (no validation "
                    "split)", a->model);
    return open_part(cmd, a, m, VAE_SPLIT_TRAIN, 1);
}

int argmax(const float *v, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}
