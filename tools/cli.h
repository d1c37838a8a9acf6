/* cli.h - helpers the vae commands share (tools/cli.c). They print one line
 * and exit on failure: fine for a program, never done in the library. */
#ifndef VAE_CLI_H
#define VAE_CLI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"
#include "vae.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

#if defined(__GNUC__)
#define CLI_NORETURN __attribute__((noreturn, format(printf, 1, 2)))
#define CLI_NORETURN2 __attribute__((noreturn, format(printf, 2, 3)))
#define CLI_NORETURN3 __attribute__((noreturn))
#else
#define CLI_NORETURN3
#define CLI_NORETURN
#define CLI_NORETURN2
#endif

extern const char *prog;
/* argv[0], for commands the user is told to run next ("./build/vae train ..."). */
extern const char *invoked_as;

/* "vae: <message>" on stderr, exit 1. */
void die(const char *fmt, ...) CLI_NORETURN;
/* "vae CMD: <message> (see 'vae CMD --help')", exit 2. */
void usage_error(const char *cmd, const char *fmt, ...) CLI_NORETURN2;
void *xmalloc(size_t n);
double now(void);
/* Path of name inside dir, in a fresh string. */
char *join(const char *dir, const char *name);

struct option;
/* The usage error for getopt_long's answer c (':' or '?'; the optstring
 * must start with ':'): a missing value, an unknown option, a value given
 * to a switch. */
void bad_option(const char *cmd, int c, char **argv, const struct option *longopts) CLI_NORETURN3;
/* s, or a usage error when the path is empty. */
const char *path_arg(const char *cmd, const char *flag, const char *s);
/* getopt_long, but a long option must be spelled out: '--epoch' is not
 * taken for '--epochs' (a typo must not silently mean another flag). */
int next_option(const char *cmd, int argc, char **argv, const char *shortopts,
                const struct option *longopts);
/* Checks before any work that an output file can be written: its directory
 * exists and is writable, and the path is not a directory. */
void check_output(const char *flag, const char *path);
/* Dies when the output file out already is the input in (given by in_flag;
 * a run directory stands for its model.safetensors; in may be NULL). */
void check_not_input(const char *flag, const char *out, const char *in_flag, const char *in);
/* mkdir -p: dir and its missing parents; dies naming dir on failure. */
void make_dirs(const char *dir);

/* Clean stops on Ctrl-C, SIGTERM and SIGHUP (vae train, vae serve; tools/cli.c has
 * why a thread of its own takes them). stop_signals_block() before any other
 * thread starts (they inherit the blocked set); until stop_signals_arm(), a
 * signal ends the process as it would have; after it, the first sets
 * stop_signal (to the signal's number) and a second exits 130 at once. */
extern atomic_int stop_signal;
void stop_signals_block(void);
void stop_signals_arm(void);

/* Whole-string numbers in [lo, hi], or a usage error naming the flag. */
long parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi);
double parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi);
/* "512,256" -> cfg->hidden; "none" means no hidden layer. */
void parse_hidden(const char *cmd, const char *s, vae_config *cfg);

/* "784-400-[20]-400-784 MLP" or "conv 1x28x28-32-64-[20]-64-32-1x28x28". */
void arch_text(const vae_config *c, char *buf, size_t len);

/* A checkpoint, or a run directory's model.safetensors. */
vae_model *load_model(const char *path, int max_batch);
void check_data_fits(const vae_dataset *ds, const vae_model *m);

void write_png(const char *path, const float *img, int n, const vae_config *c, int cols, int scale);
/* A grid of n decoded prior samples; a CVAE's are of class `label`, or
 * (label < 0) a row per class in turn. */
void write_samples(vae_model *m, const char *path, int n, uint64_t seed, int scale, int label);
/* The data set's labels, checked against the model's classes; NULL for a
 * model that takes none (m NULL: just required). Dies when there are none. */
const uint8_t *need_labels(const vae_dataset *ds, const vae_model *m);
/* Rows of test images, each followed by a row of their reconstructions;
 * a white gap between these pairs of rows. */
void write_recon(vae_model *m, const vae_dataset *ds, const char *path, int n, int scale);

/* ---- data: --data and the flags saying how to read it (train, reconstruct) */
enum { OPT_MODEL = 500, OPT_DATA, DOPT_CSV_LABEL = 512, DOPT_CSV_HEADER, DOPT_CSV_SCALE, DOPT_SHAPE, DOPT_RESIZE,
       DOPT_TEST_FRACTION, DOPT_SPLIT_SEED, DOPT_END,
       DOPT_MAX_MEMORY /* not a property of the data: may change on --resume */ };
/* The data flags' rows of a command's option table (options.h), listed in
 * --help with the library's defaults (DATA_OPTS), or parsed but summed up in
 * one heading (MODEL_OPTS: their defaults are the model's). */
#define CLI_SHOW(text) text
#define CLI_HIDE(text) NULL
#define DATA_FLAG_OPTS(H)                                                                          \
    {"--test-fraction", DOPT_TEST_FRACTION, "F",                                                  \
     H("data without a test split of its own: hold out this\nshare"), NULL, "0.1"},              \
    {"--split-seed", DOPT_SPLIT_SEED, "N", H("seeds that hold-out shuffle"), NULL, "1"},          \
    {"--resize", DOPT_RESIZE, "WxH",                                                              \
     H("PNG folders: resize every image to WxH\n(area averaging to shrink, bilinear to enlarge)"), \
     NULL, "off: all one size"},                                                                  \
    {"--csv-label", DOPT_CSV_LABEL, "POS", H("CSV label column: first, last or none"), NULL,      \
     "none"},                                                                                     \
    {"--csv-header", DOPT_CSV_HEADER, "H", H("CSV header row: auto, yes or no"), NULL, "auto"},   \
    {"--csv-scale", DOPT_CSV_SCALE, "S", H("CSV values are 0..255 (255) or 0..1 (1)"), NULL,      \
     "255"},                                                                                      \
    {"--shape", DOPT_SHAPE, "CxHxW", H("CSV image shape, values in C,H,W order"), NULL,           \
     "square grey"},                                                                              \
    {"--max-memory", DOPT_MAX_MEMORY, "MB",                                                       \
     H("PNG folders: MB of images kept in memory\nmore are decoded into a temporary file the "   \
       "kernel pages\n($VAE_TMPDIR, $TMPDIR or /var/tmp); CSV: the\nMB its images may take"),     \
     NULL, "half the RAM"}
#define DATA_PATH_HELP                                                                             \
    "the images\nan MNIST-layout directory, a folder of PNG images\n(sub-folders per class; "     \
    "train/ + test/ for a split)\nor a CSV file"
/* --data and the data flags, with the library's defaults (train, pca) */
#define DATA_OPTS                                                                                  \
    {"--data", OPT_DATA, "PATH", DATA_PATH_HELP, NULL, DEFAULT_DATA}, DATA_FLAG_OPTS(CLI_SHOW)
/* --model, --data and the data flags, defaulting to the model's own */
#define MODEL_OPTS                                                                                 \
    {"--model", OPT_MODEL, "M", "a checkpoint, or its run directory", NULL, "required"},         \
    {"--data", OPT_DATA, "PATH", DATA_PATH_HELP, NULL, "the model's own: train.data"},            \
    CLI_HEADING("  --test-fraction F, --split-seed N, --resize WxH, --csv-label POS,\n"            \
                "  --csv-header H, --csv-scale S, --shape CxHxW, --max-memory MB\n"              \
                "                     how to read and split them, as for vae train [the model's]"), \
    DATA_FLAG_OPTS(CLI_HIDE)

typedef struct data_args {
    const char *path;
    vae_data_options opt;
    unsigned given; /* bit DOPT_x - DOPT_CSV_LABEL for each flag given */
    int held_out;   /* the checkpoint's test split was held out (IDX without t10k too) */
    int max_memory_given;
} data_args;

void data_args_init(data_args *d);
/* Takes the data flag c (a DOPT_*) with its value; 0 if c is not one. */
int data_flag(const char *cmd, int c, const char *arg, data_args *d);
const char *data_flag_name(int c); /* "--csv-label" for DOPT_CSV_LABEL, ... */
/* A checkpoint's data.options (how its data were read) into what the
 * command line did not give. */
void data_args_from_model(data_args *d, const vae_model *m);
/* data.options for a checkpoint: everything that decides the images. */
void data_options_text(const data_args *d, char *buf, size_t len);
/* Opens both splits; dies with one line on any problem. An MNIST-layout
 * directory without t10k files is refused unless --test-fraction was given. */
void open_data_args(const char *cmd, const data_args *d, vae_dataset **train, vae_dataset **test);
/* The test split alone (an MNIST-layout directory may hold only t10k files). */
vae_dataset *open_test_split(const char *cmd, const data_args *d);
/* One stderr line: what the data are (kind, counts, size, channels, labels,
 * split source, skipped files). train may be NULL. Call it once everything
 * is checked, so that a failing command prints only its error. */
void report_data(const data_args *d, const vae_dataset *train, const vae_dataset *test);
/* ---- commands that read a trained model and its images (reconstruct, eval,
 * interpolate, traverse, manifold, embed): the data default to the model's
 * own, read and split as training read them (the checkpoint's train.data,
 * data.options and data.split); --data and the data flags override them. */
typedef struct model_args {
    const char *model, *data; /* --model, --data (NULL: the model's own) */
    data_args dargs;
} model_args;

void model_args_init(model_args *a);
/* Takes --model, --data or a data flag; 0 if c is none of them. */
int model_flag(const char *cmd, int c, const char *arg, model_args *a);
/* Loads --model (a usage error without it). */
vae_model *model_load(const char *cmd, const model_args *a, int max_batch);
/* The model's images of one split, as training read them (or as the flags
 * say), checked against the model's input size. report_data(&a->dargs, ...)
 * says what they are once the command has succeeded. */
vae_dataset *model_split(const char *cmd, model_args *a, const vae_model *m, vae_split split);
/* For a model trained with --valid-fraction, VAE_SPLIT_TRAIN above is the
 * training split without the images held out for validation, and this is
 * those images (a usage error for a model without them). */
vae_dataset *model_valid_split(const char *cmd, model_args *a, const vae_model *m);
/* The model's --valid-fraction (train.valid_fraction or run.valid_fraction;
 * 0: none); dies on an invalid entry, naming path. */
double model_valid_fraction(const vae_model *m, const char *path);
/* Holds out fraction of *train for validation as vae train does (a shuffle
 * seeded from the split seed): *valid those images, *train (replaced) the rest. */
void split_valid(double fraction, uint64_t split_seed, vae_dataset **train, vae_dataset **valid);

/* The class names (PNG class folders) joined by '/', or "" (caller frees). */
char *class_names(const vae_dataset *ds);

/* The commands in other files: each one's option table (for vae --help and
 * the man pages) and its code. */
extern const cli_command train_cmd, eval_cmd, pca_cmd, serve_cmd;
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv); /* tools/eval.c */
int cmd_pca(int argc, char **argv);  /* tools/pca.c */
int cmd_serve(int argc, char **argv); /* tools/serve.c: the latent-space explorer */
/* What vae info prints about a checkpoint (path: its name in the text). */
void print_info(FILE *f, const char *path, const vae_model *m);
/* issue 20, scoring samples: tools/classifier.c, tools/score.c */
extern const cli_command classifier_cmd, score_cmd;
int cmd_classifier(int argc, char **argv);
int cmd_score(int argc, char **argv);
/* The index of the largest of n values (the first of equals): a predicted class. */
int argmax(const float *v, int n);
/* The first n images of a split as floats in [0,1] (caller frees). */
float *load_images(const vae_dataset *ds, long n);
/* The same binarised as asked (dynamic: one stream seeded by seed). */
float *load_images_binarized(const vae_dataset *ds, long n, int binarize, float threshold,
                             uint64_t seed);
/* A JSON string (escaped) and a JSON number (null when not finite). */
void json_str(FILE *f, const char *s);
void json_num(FILE *f, double v);

#endif
