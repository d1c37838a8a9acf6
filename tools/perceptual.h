/* perceptual.h - vae train's --perceptual C[:LAYERS][:WEIGHT]: the spec,
 * the classifier it names (checked by a CRC-32 of its bytes on resume) and
 * its checkpoint entries. */
#ifndef VAE_TOOLS_PERCEPTUAL_H
#define VAE_TOOLS_PERCEPTUAL_H

#include "vae.h"

#define PERCEPTUAL_DEFAULT_LAYERS "conv1,conv2"
#define PERCEPTUAL_DEFAULT_WEIGHT "0.1"

typedef struct perceptual_opt {
    char *path;          /* the classifier file; NULL: no term */
    unsigned layers;     /* VAE_PERCEPTUAL_* */
    float weight;
    char text[4200];     /* train.perceptual: PATH:LAYERS:WEIGHT, normalised */
    char crc[16];        /* train.perceptual_crc32: of the file's bytes, 8 hex digits */
    vae_classifier *cls; /* loaded by perceptual_load */
} perceptual_opt;

/* Parses --perceptual's value (a usage error on bad input); also a
 * checkpoint's train.perceptual. */
void perceptual_parse(const char *flag, const char *spec, perceptual_opt *p);
/* Loads the classifier and its CRC; with want_crc (resume: the checkpoint's
 * train.perceptual_crc32), refuses a file whose bytes differ. Dies on error. */
void perceptual_load(perceptual_opt *p, const char *want_crc);
/* Checks the classifier reads images of c x h x w (before --out is made). */
void perceptual_check_shape(const perceptual_opt *p, int c, int h, int w);
/* The term on m's training steps. */
void perceptual_attach(const perceptual_opt *p, vae_model *m);

#endif
