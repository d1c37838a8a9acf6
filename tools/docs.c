/* docs.c - the man pages and the bash completion, written from the command
 * tables (options.h) that also parse the options and print --help, so the
 * three cannot drift apart. The build runs vae --write-docs DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* s[0..len) for roff: backslashes and hyphens escaped (a hyphen in an
 * option must stay a hyphen, not become a typographic dash). */
static void esc(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') fputs("\\e", f);
        else if (s[i] == '-') fputs("\\-", f);
        else fputc(s[i], f);
    }
}

/* Lines of text, each without its indent; "\&" keeps a leading '.' or '\''
 * from being read as a request; an empty line starts a paragraph. Filled
 * (prose), or with the lines kept (an option's help, as --help breaks it). */
static void text(FILE *f, const char *s, int keep_lines)
{
    for (int first = 1; *s; first = 0) {
        if (keep_lines && !first) fputs(".br\n", f);
        size_t len = strcspn(s, "\n");
        size_t lead = strspn(s, " ");
        if (lead >= len) {
            fputs(".PP\n", f);
        } else {
            if (s[lead] == '.' || s[lead] == '\'') fputs("\\&", f);
            esc(f, s + lead, len - lead);
            fputc('\n', f);
        }
        s += len + (s[len] == '\n');
    }
}

static void title(FILE *f, const char *page, int section, const char *summary)
{
    fputs(".TH \"", f);
    for (const char *p = page; *p; p++) fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, f);
    fprintf(f, "\" %d \"\" \"vae %s\" \"vae manual\"\n.nh\n.SH NAME\n", section, VAE_VERSION);
    esc(f, page, strlen(page));
    fputs(" \\- ", f);
    esc(f, summary, strlen(summary));
    fputc('\n', f);
}

/* SYNOPSIS and DESCRIPTION from a usage text: its "usage: " line and the
 * lines indented under it, then the description. */
static void synopsis(FILE *f, const char *usage)
{
    fputs(".SH SYNOPSIS\n.nf\n", f);
    const char *p = usage;
    if (!strncmp(p, "usage: ", 7)) {
        do {
            size_t len = strcspn(p += 7, "\n");
            esc(f, p, len);
            fputc('\n', f);
            p += len + (p[len] == '\n');
        } while (!strncmp(p, "       ", 7));
    }
    fputs(".fi\n.SH DESCRIPTION\n", f);
    text(f, p, 0);
}

/* One .TP entry per option, as --help lists them: a heading "data:" is a
 * subsection; a heading naming options ("  --a A, --b B\n   what") is an
 * entry of its own; the default ends the first line in brackets, and the
 * lines break where --help breaks them. */
static void options(FILE *f, const cli_opt *opts)
{
    fputs(".SH OPTIONS\n", f);
    for (const cli_opt *o = opts; o->key != -1; o++) {
        if (!o->name && o->help[0] != ' ') {
            fputs(".SS ", f);
            esc(f, o->help, strcspn(o->help, ":\n"));
            fputc('\n', f);
        } else if (!o->name) {
            fputs(".TP\n", f);
            const char *p = o->help;
            for (int first = 1; !strncmp(p, "  -", 3); first = 0) { // the flags: the tag
                size_t len = strcspn(p += 2, "\n");
                if (!first) fputc(' ', f);
                esc(f, p, len);
                p += len + (p[len] == '\n');
            }
            fputc('\n', f);
            text(f, p, 1);
        } else if (o->help) {
            fputs(".TP\n\\fB", f);
            esc(f, o->name, strlen(o->name));
            fputs("\\fR", f);
            if (o->arg) {
                fputs(" \\fI", f);
                esc(f, o->arg, strlen(o->arg));
                fputs("\\fR", f);
            }
            fputc('\n', f);
            size_t first = strcspn(o->help, "\n"); // the default ends it, as in --help
            esc(f, o->help, first);
            const char *d = o->shown ? o->shown : o->dflt;
            if (d) {
                fputs(" [", f);
                for (; *d; d++) esc(f, *d == '\n' ? " " : d, 1);
                fputc(']', f);
            }
            fputc('\n', f);
            if (o->help[first]) {
                fputs(".br\n", f);
                text(f, o->help + first + 1, 1);
            }
        }
    }
    fputs(".TP\n\\fB\\-\\-help\\fR\nprints these options with their defaults and exits\n", f);
}

static FILE *create(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) die("cannot create %s: %s", path, strerror(errno));
    return f;
}

static void finish(FILE *f, const char *path)
{
    if (ferror(f) | fclose(f)) die("cannot write %s", path);
}

/* DIR/man/man1/vae-COMMAND.1 */
static void command_page(const cli_program *p, const cli_command *c, const char *dir)
{
    char page[64], path[4096];
    snprintf(page, sizeof page, "%s-%s", p->name, c->name);
    snprintf(path, sizeof path, "%s/%s.1", dir, page);
    FILE *f = create(path);
    title(f, page, 1, c->summary);
    synopsis(f, c->usage);
    options(f, c->opts);
    if (c->epilogue) {
        fputs(".SH NOTES\n", f);
        text(f, c->epilogue, 0);
    }
    fprintf(f, ".SH SEE ALSO\n.BR %s (1),\n.BR lib%s (3)\n", p->name, p->name);
    finish(f, path);
}

/* DIR/man/man1/vae.1: the program and its commands */
static void program_page(const cli_program *p, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.1", dir, p->name);
    FILE *f = create(path);
    title(f, p->name, 1, p->summary);
    synopsis(f, p->usage);
    fputs(".SH COMMANDS\n", f);
    for (int i = 0; i < p->n_commands; i++) {
        const cli_command *c = p->commands[i];
        fprintf(f, ".TP\n\\fB%s %s\\fR, see \\fB%s\\-%s\\fR(1)\n", p->name, c->name, p->name, c->name);
        text(f, c->summary, 0);
    }
    fputs(".SH EXAMPLES\n.nf\n", f);
    text(f, p->examples, 0);
    fputs(".fi\n.SH SEE ALSO\n", f);
    for (int i = 0; i < p->n_commands; i++)
        fprintf(f, ".BR %s\\-%s (1),\n", p->name, p->commands[i]->name);
    fprintf(f, ".BR lib%s (3)\n", p->name);
    finish(f, path);
}

/* DIR/bash-completion/completions/vae: the commands, then each command's
 * flags; values and operands complete as file names. */
static void completion(const cli_program *p, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, p->name);
    FILE *f = create(path);
    fprintf(f, "# bash completion for %s, written by %s --write-docs from the option tables\n"
               "_%s() {\n"
               "    local cur=${COMP_WORDS[COMP_CWORD]} words\n"
               "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "        words='--help --version",
            p->name, p->name, p->name);
    for (int i = 0; i < p->n_commands; i++) fprintf(f, " %s", p->commands[i]->name);
    fputs("'\n    else\n        [[ $cur == -* ]] || return 0\n        case ${COMP_WORDS[1]} in\n", f);
    for (int i = 0; i < p->n_commands; i++) {
        fprintf(f, "        %s) words='--help", p->commands[i]->name);
        for (const cli_opt *o = p->commands[i]->opts; o->key != -1; o++)
            if (o->name) fprintf(f, " %s", o->name);
        fputs("' ;;\n", f);
    }
    fprintf(f, "        *) return 0 ;;\n"
               "        esac\n"
               "    fi\n"
               "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
               "}\n"
               "complete -o default -F _%s %s\n",
            p->name, p->name);
    finish(f, path);
}

void cli_write_docs(const cli_program *p, const char *dir)
{
    char *man = join(dir, "man/man1"), *comp = join(dir, "bash-completion/completions");
    make_dirs(man);
    make_dirs(comp);
    program_page(p, man);
    for (int i = 0; i < p->n_commands; i++) command_page(p, p->commands[i], man);
    completion(p, comp);
    free(man), free(comp);
}
