/* options.c - option tables (options.h): getopt_long entries, --help text
 * and defaults from one table per command. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

enum { MAX_OPTS = 96, KEY_HELP = -2 };

/* The help line of one option: "  --name ARG" in 19 columns, its text,
 * the default in brackets at the end of the text's first line. */
static void help_line(const cli_opt *o, FILE *f)
{
    char flag[64];
    if (!o->name || !o->help) { // a heading, or an option --help leaves to a heading
        if (!o->name) fprintf(f, "%s\n", o->help);
        return;
    }
    snprintf(flag, sizeof flag, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    const char *d = o->shown ? o->shown : o->dflt;
    fprintf(f, "  %-17s%s", flag, strlen(flag) > 17 ? "\n                   " : "");
    const char *text = o->help;
    size_t first = strcspn(text, "\n");
    fprintf(f, "  %.*s", (int)first, text);
    if (d) { // a default of several lines continues indented
        fputs(" [", f);
        for (; *d; d++) fputs(*d == '\n' ? "\n                     " : (char[2]){*d, 0}, f);
        fputc(']', f);
    }
    fputc('\n', f);
    for (const char *p = text + first; *p == '\n';) {
        p++;
        size_t len = strcspn(p, "\n");
        fprintf(f, "                     %.*s\n", (int)len, p);
        p += len;
    }
}

void cli_help(const cli_command *cmd, FILE *f)
{
    fputs(cmd->usage, f);
    for (const cli_opt *o = cmd->opts; o->key != -1; o++) help_line(o, f);
    if (cmd->epilogue) fputs(cmd->epilogue, f);
}

void cli_program_help(const cli_program *p, FILE *f)
{
    fprintf(f, "%s\ncommands:\n", p->usage);
    for (int i = 0; i < p->n_commands; i++)
        fprintf(f, "  %-12s %s\n", p->commands[i]->name, p->commands[i]->summary);
    fprintf(f, "\nexample:\n%s", p->examples);
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_take take, void *ctx)
{
    struct option longopts[MAX_OPTS + 2];
    char shortopts[2 * MAX_OPTS + 2] = ":";
    int n = 0;
    size_t s = 1;
    for (const cli_opt *o = cmd->opts; o->key != -1; o++) {
        if (!o->name) continue;
        if (n == MAX_OPTS) die("internal: vae %s has over %d options", cmd->name, MAX_OPTS);
        if (o->name[1] != '-') { // -o
            shortopts[s++] = o->name[1];
            if (o->arg) shortopts[s++] = ':';
        } else {
            longopts[n++] = (struct option){o->name + 2, o->arg ? required_argument : no_argument,
                                            NULL, o->key};
        }
        if (o->dflt) take(o->key, o->dflt, 1, ctx);
    }
    shortopts[s] = 0;
    longopts[n++] = (struct option){"help", no_argument, NULL, KEY_HELP};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    int c;
    opterr = 0;
    while ((c = next_option(cmd->name, argc, argv, shortopts, longopts)) != -1) {
        if (c == KEY_HELP) {
            cli_help(cmd, stdout);
            exit(0);
        }
        if (c == ':' || c == '?') bad_option(cmd->name, c, argv, longopts);
        for (const cli_opt *o = cmd->opts; o->key != -1; o++) // -o: the table's key for 'o'
            if (o->name && o->name[1] == c && !o->name[2]) c = o->key;
        take(c, optarg, 0, ctx);
    }
    return optind;
}
