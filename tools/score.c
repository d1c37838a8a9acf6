/* score.c - `vae score` (stub while the classifier is built). */
#include "cli.h"
int cmd_score(int argc, char **argv) { (void)argc, (void)argv; die("not yet"); }
