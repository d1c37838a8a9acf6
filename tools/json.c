/* json.c - a strict reader for the few JSON shapes vae serve accepts (json.h).
 * A general JSON library would accept far more than the server can use and
 * leave every check to the caller; this one refuses anything else outright,
 * so a handler sees only well-formed numbers of bounded count. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct parser {
    const char *s;
    size_t len, pos;
    int max_numbers, count, cap;
    float *store;
    size_t off[JSON_MAX_KEYS]; /* where each array starts in store */
    char *msg;
    size_t msglen;
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(parser *p, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(p->msg, p->msglen, "bad JSON at byte %zu: %s", p->pos, what);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

static int peek(parser *p)
{
    skip_ws(p);
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int expect(parser *p, char c)
{
    if (peek(p) != c) return fail(p, "expected '%c'", c);
    p->pos++;
    return 0;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* RFC 8259's number grammar exactly (no '+', no leading zeros, no '.5',
 * no hex, no inf/nan), then strtod on the checked span. */
static int number(parser *p, double *v)
{
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
    if (i < p->len && s[i] == '-') i++;
    if (i < p->len && s[i] == '0') i++;
    else if (i < p->len && is_digit(s[i]) && s[i] != '0')
        while (i < p->len && is_digit(s[i])) i++;
    else return fail(p, "expected a number");
    if (i < p->len && s[i] == '.') {
        if (++i >= p->len || !is_digit(s[i])) return fail(p, "expected digits after '.'");
        while (i < p->len && is_digit(s[i])) i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !is_digit(s[i])) return fail(p, "expected an exponent");
        while (i < p->len && is_digit(s[i])) i++;
    }
    char buf[64];
    if (i - start >= sizeof buf) return fail(p, "a number of more than %zu characters", sizeof buf - 1);
    memcpy(buf, s + start, i - start);
    buf[i - start] = 0;
    errno = 0;
    double x = strtod(buf, NULL);
    if (!isfinite(x) || fabs(x) > 1e30) return fail(p, "number %s is out of range", buf);
    *v = x;
    p->pos = i;
    return 0;
}

static int push(parser *p, double x)
{
    if (p->count >= p->max_numbers) return fail(p, "more than %d numbers", p->max_numbers);
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        if (cap > p->max_numbers) cap = p->max_numbers;
        float *s = realloc(p->store, (size_t)cap * sizeof *s);
        if (!s) return fail(p, "out of memory");
        p->store = s, p->cap = cap;
    }
    p->store[p->count++] = (float)x;
    return 0;
}

/* [n, n, ...]: at least one number; their count in *n. */
static int numbers(parser *p, int *n)
{
    if (expect(p, '[')) return -1;
    *n = 0;
    for (;;) {
        double x;
        peek(p); // past white space
        if (number(p, &x) || push(p, x)) return -1;
        ++*n;
        int c = peek(p);
        p->pos++;
        if (c == ']') return 0;
        if (c != ',') {
            p->pos--;
            return fail(p, "expected ',' or ']'");
        }
    }
}

static int value(parser *p, json_field *f, int k)
{
    int c = peek(p);
    if (c == '-' || is_digit(c)) {
        f->kind = JSON_NUM;
        return number(p, &f->num);
    }
    if (c != '[') return fail(p, "a value must be a number or an array of numbers");
    p->off[k] = (size_t)p->count;
    size_t save = p->pos;
    p->pos++;
    if (peek(p) != '[') { // a vector
        p->pos = save;
        f->kind = JSON_VEC, f->rows = 1;
        return numbers(p, &f->cols);
    }
    f->kind = JSON_MAT, f->rows = 0;
    for (;;) {
        int n;
        if (numbers(p, &n)) return -1;
        if (f->rows && n != f->cols) return fail(p, "rows of %d and %d numbers", f->cols, n);
        f->cols = n, f->rows++;
        c = peek(p);
        p->pos++;
        if (c == ']') return 0;
        if (c != ',' || peek(p) != '[') {
            p->pos--;
            return fail(p, "expected ',' and a row, or ']'");
        }
    }
}

/* "key": only letters, digits and '_' (no escapes to decode). */
static int key(parser *p, char *out)
{
    if (expect(p, '"')) return -1;
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        char c = p->s[p->pos];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_'))
            return fail(p, "a key may hold only letters, digits and '_'");
        if (n + 1 >= JSON_KEY_LEN) return fail(p, "a key longer than %d characters", JSON_KEY_LEN - 1);
        out[n++] = c;
        p->pos++;
    }
    out[n] = 0;
    if (p->pos >= p->len) return fail(p, "unterminated key");
    p->pos++;
    return n ? 0 : fail(p, "an empty key");
}

int json_parse(const char *s, size_t len, int max_numbers, json_obj *o, char *msg, size_t msglen)
{
    parser p = {s, len, 0, max_numbers, 0, 0, NULL, {0}, msg, msglen};
    memset(o, 0, sizeof *o);
    if (expect(&p, '{')) goto bad;
    if (peek(&p) == '}') p.pos++;
    else
        for (;;) {
            if (o->n == JSON_MAX_KEYS) {
                fail(&p, "more than %d members", JSON_MAX_KEYS);
                goto bad;
            }
            json_field *f = &o->f[o->n];
            if (key(&p, f->key) || expect(&p, ':')) goto bad;
            for (int i = 0; i < o->n; i++)
                if (!strcmp(o->f[i].key, f->key)) {
                    fail(&p, "\"%s\" given twice", f->key);
                    goto bad;
                }
            if (value(&p, f, o->n)) goto bad;
            o->n++;
            int c = peek(&p);
            p.pos++;
            if (c == '}') break;
            if (c != ',') {
                p.pos--;
                fail(&p, "expected ',' or '}'");
                goto bad;
            }
        }
    if (peek(&p) >= 0) {
        fail(&p, "text after the object");
        goto bad;
    }
    o->store = p.store;
    for (int i = 0; i < o->n; i++)
        if (o->f[i].kind != JSON_NUM) o->f[i].v = p.store + p.off[i];
    return 0;
bad:
    free(p.store);
    memset(o, 0, sizeof *o);
    return -1;
}

void json_free(json_obj *o)
{
    free(o->store);
    memset(o, 0, sizeof *o);
}

const json_field *json_get(const json_obj *o, const char *k)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->f[i].key, k)) return &o->f[i];
    return NULL;
}

int json_only(const json_obj *o, const char *allowed, char *msg, size_t msglen)
{
    for (int i = 0; i < o->n; i++) {
        size_t n = strlen(o->f[i].key);
        const char *a = allowed;
        int found = 0;
        while (*a && !found) {
            size_t w = strcspn(a, " ");
            found = w == n && !strncmp(a, o->f[i].key, n);
            a += w + (a[w] == ' ');
        }
        if (!found) {
            snprintf(msg, msglen, "unknown member \"%s\" (this request takes: %s)", o->f[i].key,
                     allowed);
            return -1;
        }
    }
    return 0;
}

int parse_int_strict(const char *s, long lo, long hi, long *v)
{
    const char *d = s + (*s == '-');
    size_t n = strlen(d);
    if (n == 0 || n > 18 || strspn(d, "0123456789") != n || (d[0] == '0' && n > 1)) return -1;
    long x = strtol(s, NULL, 10);
    if (x < lo || x > hi) return -1;
    *v = x;
    return 0;
}
