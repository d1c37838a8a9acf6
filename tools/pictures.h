/* pictures.h - the picture commands of the vae CLI (tools/pictures.c). */
#ifndef VAE_PICTURES_H
#define VAE_PICTURES_H

#include "options.h"

extern const cli_command interpolate_cmd, traverse_cmd, manifold_cmd, embed_cmd, curves_cmd;

int cmd_interpolate(int argc, char **argv);
int cmd_traverse(int argc, char **argv);
int cmd_manifold(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_curves(int argc, char **argv);

#endif
