/* options.h - a command's options as one table: it gives the parser
 * (getopt_long, spelled-out names only), the --help text, the defaults, the
 * man page and the bash completion (docs.c). */
#ifndef VAE_OPTIONS_H
#define VAE_OPTIONS_H

#include <stdio.h>

/* One option, or a heading in --help (name NULL, help the heading). */
typedef struct cli_opt {
    const char *name;  /* "--epochs", or "-o" */
    int key;           /* what take() is called with */
    const char *arg;   /* the value's name in --help ("N"); NULL: a switch */
    const char *help;  /* '\n' continues on an indented line; NULL: parsed, not
                        * listed (a heading describes it) */
    const char *dflt;  /* a value take() gets before the command line, shown as [dflt] */
    const char *shown; /* a default that is no value ("all"), shown instead of dflt */
} cli_opt;

#define CLI_HEADING(text) {NULL, 0, NULL, text, NULL, NULL}
#define CLI_END {NULL, -1, NULL, NULL, NULL, NULL}

typedef struct cli_command {
    const char *name;     /* "train" */
    const char *summary;  /* its line in vae --help, and its man page's NAME */
    const char *usage;    /* "usage: " lines ("       " continues them), then a description */
    const cli_opt *opts;  /* up to CLI_END; --help is added */
    const char *epilogue; /* after the options, or NULL */
} cli_command;

/* take(key, value, ctx): a switch's value is NULL. from_default is 1 for
 * the table's defaults, taken before the command line. */
typedef void (*cli_take)(int key, const char *value, int from_default, void *ctx);

/* Parses argv[1..] against cmd's table: the defaults first, then every
 * option in order. --help prints the help and exits 0; a misspelt,
 * abbreviated or unknown option, or a missing value, is a usage error.
 * Returns the index of the first operand (argc when there are none). */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_take take, void *ctx);

void cli_help(const cli_command *cmd, FILE *f);

/* The program: its usage and description (as a command's), the commands,
 * and example lines; --help and the man page vae(1) say the same. */
typedef struct cli_program {
    const char *name;    /* "vae" */
    const char *summary; /* the man page's NAME */
    const char *usage;
    const cli_command *const *commands;
    int n_commands;
    const char *examples;
} cli_program;

void cli_program_help(const cli_program *p, FILE *f);

/* docs.c: the man pages DIR/man/man1/NAME.1 and NAME-COMMAND.1 for each
 * command, and the bash completion DIR/bash-completion/completions/NAME, in
 * the layout of an installed share/; dies naming the file on failure. */
void cli_write_docs(const cli_program *p, const char *dir);

#endif
