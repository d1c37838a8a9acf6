/* cli.h - helpers the vae commands share (tools/cli.c). They print one line
 * and exit on failure: fine for a program, never done in the library. */
#ifndef VAE_CLI_H
#define VAE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* Whole-string numbers in [lo, hi], or a usage error naming the flag. */
long parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi);
double parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi);
/* "512,256" -> cfg->hidden; "none" means no hidden layer. */
void parse_hidden(const char *cmd, const char *s, vae_config *cfg);

vae_model *load_model(const char *path, int max_batch);
vae_dataset *open_data(const char *dir, vae_split split);
void check_data_fits(const vae_dataset *ds, const vae_model *m);

void write_png(const char *path, const float *img, int n, const vae_config *c, int cols, int scale);
/* A grid of n decoded prior samples. */
void write_samples(vae_model *m, const char *path, int n, uint64_t seed, int scale);
/* Rows of test images, each followed by a row of their reconstructions. */
void write_recon(vae_model *m, const vae_dataset *ds, const char *path, int n, int scale);

int cmd_train(int argc, char **argv);

/* issue 5, numbers: tools/eval.c, tools/pca.c */
int cmd_eval(int argc, char **argv);
int cmd_pca(int argc, char **argv);
/* The first n images of a split as floats in [0,1] (caller frees). */
float *load_images(const vae_dataset *ds, long n);
/* The same binarised as asked (dynamic: one stream seeded by seed). */
float *load_images_binarized(const vae_dataset *ds, long n, int binarize, float threshold,
                             uint64_t seed);
/* A JSON string (escaped) and a JSON number (null when not finite). */
void json_str(FILE *f, const char *s);
void json_num(FILE *f, double v);

#endif
