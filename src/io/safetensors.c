/* safetensors.c - a strict reader and a canonical writer for F32 safetensors files. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"

#define MAX_FILE ((uint64_t)16 << 30) /* bigger files are refused before any allocation */
#define MAX_INT ((uint64_t)1 << 53)   /* largest JSON integer accepted (exact as a double) */

/* ------------------------------------------------------------ shared */

/* Every dtype of the format, so that a valid but unsupported one gets its own error. */
static const struct {
    const char *name;
    int bits;
} dtypes[] = {
    {"BOOL", 8},     {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6},
    {"U8", 8},       {"I8", 8},          {"F8_E5M2", 8},     {"F8_E4M3", 8},
    {"F8_E8M0", 8},  {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
    {"U16", 16},     {"F16", 16},        {"BF16", 16},       {"I32", 32},
    {"U32", 32},     {"F32", 32},        {"C64", 64},        {"F64", 64},
    {"I64", 64},     {"U64", 64},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

static int host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Elements in a (non-negative) shape; returns 0 on uint64 overflow. A zero
 * dim empties any shape, so it is looked for first: no overflow then. */
static int numel_of(const int64_t *shape, int ndim, uint64_t *out)
{
    *out = 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 1;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (n > UINT64_MAX / (uint64_t)shape[i]) return 0;
        n *= (uint64_t)shape[i];
    }
    *out = n;
    return 1;
}

/* Offset of the first byte that is not well-formed UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are not), or n. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        if (c < 0x80) len = 1;
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
        else return i;
        if (len > 1 && (n - i < len || s[i + 1] < lo || s[i + 1] > hi)) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* s made safe for a one-line message: control bytes become '?', and a long
 * name is cut at a character boundary and marked with "...". */
static const char *quote(char out[72], const char *s)
{
    size_t k = 0;
    for (; s[k] && k < 64; k++) out[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
    if (!s[k]) return (out[k] = 0), out;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    memcpy(out + k, "...", 4);
    return out;
}

/* Formats a message and prefixes it with the path, as every message is. */
static int vfail(const char *path, vae_error *err, int code, const char *fmt, va_list ap)
{
    char msg[448];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return vae__error(err, code, "%s: %s", path, msg);
}

static int fail(const char *path, vae_error *err, int code, const char *fmt, ...) VAE_PRINTF(4, 5);
static int fail(const char *path, vae_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(path, err, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------ writer */

typedef struct {
    char *p;
    size_t n, cap;
    int oom; /* set once; the serialiser runs on and checks at the end */
} buf;

static int reserve(buf *b, size_t want)
{
    if (b->oom || want > SIZE_MAX - b->n) return !(b->oom = 1);
    if (want <= b->cap - b->n) return 1;
    size_t cap = b->n + want > b->cap / 2 * 4 ? b->n + want : b->cap / 2 * 4; /* exact for the data */
    char *p = realloc(b->p, cap);
    if (!p) return !(b->oom = 1);
    b->p = p;
    b->cap = cap;
    return 1;
}

static void put(buf *b, const char *s, size_t n)
{
    if (n == 0 || !reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(buf *b, uint64_t v)
{
    char t[24];
    put(b, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

static void put_json(buf *b, const char *s)
{
    char e[8];
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') put(b, c == '"' ? "\\\"" : "\\\\", 2);
        else if (c < 0x20) put(b, e, (size_t)snprintf(e, sizeof e, "\\u%04x", c));
        else put(b, s, 1);
    }
    put(b, "\"", 1);
}

/* Elements point at a metadata key; its value follows it. */
static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const vae__st_tensor *const *)a)->name, (*(const vae__st_tensor *const *)b)->name);
}

/* Checks the arguments and sorts them into ord and mord (pointers to each
 * metadata key, its value follows), so the bytes depend only on content. */
static int write_check(const char *path, const vae__st_tensor *t, int n, const char *const *meta,
                       int nmeta, const vae__st_tensor **ord, const char *const **mord, vae_error *err)
{
    char q[72];
    uint64_t bytes = 0, numel;
    for (int i = 0; i < n; i++) {
        const vae__st_tensor *x = &t[i];
        if (!x->name) return fail(path, err, VAE_EINVAL, "tensor %d has no name", i);
        size_t len = strlen(x->name);
        if (utf8_check((const unsigned char *)x->name, len) != len)
            return fail(path, err, VAE_EINVAL, "tensor %d: name is not valid UTF-8", i);
        if (!strcmp(x->name, "__metadata__"))
            return fail(path, err, VAE_EINVAL, "tensor %d: \"__metadata__\" is a reserved name", i);
        if (x->ndim < 0 || x->ndim > VAE_ST_MAX_DIMS)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" has %d dimensions (0 to %d allowed)",
                        quote(q, x->name), x->ndim, VAE_ST_MAX_DIMS);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] < 0 || (uint64_t)x->shape[d] > MAX_INT)
                return fail(path, err, VAE_EINVAL, "tensor \"%s\" has dimension %lld",
                            quote(q, x->name), (long long)x->shape[d]);
        if (!numel_of(x->shape, x->ndim, &numel) || numel > (MAX_FILE - bytes) / 4)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" takes the file past 16 GiB",
                        quote(q, x->name));
        if (numel > 0 && !x->data)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" has no data", quote(q, x->name));
        bytes += numel * 4;
        ord[i] = x;
    }
    if (n > 1) qsort(ord, (size_t)n, sizeof *ord, cmp_tensor_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(ord[i - 1]->name, ord[i]->name))
            return fail(path, err, VAE_EINVAL, "duplicate tensor name \"%s\"", quote(q, ord[i]->name));
    for (int i = 0; i < 2 * nmeta; i++) {
        size_t len = strlen(meta[i]);
        if (utf8_check((const unsigned char *)meta[i], len) != len)
            return fail(path, err, VAE_EINVAL, "metadata %s %d is not valid UTF-8",
                        i % 2 ? "value" : "key", i / 2);
        if (i % 2 == 0) mord[i / 2] = &meta[i];
    }
    if (nmeta > 1) qsort(mord, (size_t)nmeta, sizeof *mord, cmp_meta_key);
    for (int i = 1; i < nmeta; i++)
        if (!strcmp(*mord[i - 1], *mord[i]))
            return fail(path, err, VAE_EINVAL, "duplicate metadata key \"%s\"", quote(q, *mord[i]));
    return VAE_OK;
}

/* Appends the JSON header, padded with spaces so the data starts 8-aligned;
 * returns the size of the data buffer. */
static uint64_t put_header(buf *b, const vae__st_tensor **ord, int n, const char *const **mord, int nmeta)
{
    uint64_t off = 0, numel;
    put(b, "{", 1);
    if (nmeta > 0) put_str(b, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
        put_json(b, mord[i][0]);
        put(b, ":", 1);
        put_json(b, mord[i][1]);
        put(b, i + 1 < nmeta ? "," : "}", 1);
    }
    for (int i = 0; i < n; i++) {
        numel_of(ord[i]->shape, ord[i]->ndim, &numel);
        if (i || nmeta) put(b, ",", 1);
        put_json(b, ord[i]->name);
        put_str(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < ord[i]->ndim; d++) {
            if (d) put(b, ",", 1);
            put_u64(b, (uint64_t)ord[i]->shape[d]);
        }
        put_str(b, "],\"data_offsets\":[");
        put_u64(b, off);
        put(b, ",", 1);
        put_u64(b, off += numel * 4);
        put_str(b, "]}");
    }
    put(b, "}", 1);
    while (b->n % 8 && !b->oom) put(b, " ", 1);
    return off;
}

int vae__st_write(const char *path, const vae__st_tensor *t, int n, const char *const *meta,
                  vae_error *err)
{
    if (!path) return vae__error(err, VAE_EINVAL, "safetensors: no path given");
    if (n < 0 || (n > 0 && !t)) return fail(path, err, VAE_EINVAL, "invalid tensor list");
    int nmeta = 0, rc;
    for (; meta && meta[2 * nmeta]; nmeta++)
        if (!meta[2 * nmeta + 1])
            return fail(path, err, VAE_EINVAL, "metadata key %d has no value", nmeta);
    const vae__st_tensor **ord = malloc(((size_t)n + 1) * sizeof *ord);
    const char *const **mord = malloc(((size_t)nmeta + 1) * sizeof *mord);
    vae__part *parts = malloc(((size_t)n + 1) * sizeof *parts);
    buf b = {0};
    if (!ord || !mord || !parts) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = write_check(path, t, n, meta, nmeta, ord, mord, err)) != VAE_OK) goto done;
    put(&b, "\0\0\0\0\0\0\0\0", 8); /* the length, filled in below */
    uint64_t bytes = put_header(&b, ord, n, mord, nmeta), hlen = b.n - 8, numel;
    if (!b.oom && hlen > VAE_ST_MAX_HEADER) {
        rc = fail(path, err, VAE_EINVAL, "JSON header of %llu bytes is over the limit",
                  (unsigned long long)hlen);
        goto done;
    }
    /* the tensors go out from where they are (a checkpoint's copy in memory
     * had added its whole size to a training run's peak); a big-endian host
     * writes little-endian copies after the header instead */
    int le = host_is_le();
    if (!le && (bytes > SIZE_MAX || !reserve(&b, (size_t)bytes))) b.oom = 1;
    size_t at = b.n;
    for (int i = 0; i < n && !b.oom; i++) {
        numel_of(ord[i]->shape, ord[i]->ndim, &numel);
        parts[1 + i] = (vae__part){ord[i]->data, le ? (size_t)numel * 4 : 0};
        for (size_t k = 0; !le && k < numel; k++) {
            uint32_t u;
            memcpy(&u, &ord[i]->data[k], 4);
            for (unsigned j = 0; j < 4; j++) b.p[b.n++] = (char)(u >> (8 * j));
        }
    }
    if (b.oom) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++) b.p[i] = (char)(hlen >> (8 * i) & 0xff);
    parts[0] = (vae__part){b.p, le ? at : b.n};
    rc = vae__write_parts(path, parts, n + 1, err);
done:
    free(ord);
    free(mord);
    free(parts);
    free(b.p);
    return rc;
}

/* ------------------------------------------------------------ reader */

typedef struct {
    vae__st_tensor pub; /* first member: vae__st_at hands out &entry->pub */
    int dtype;          /* index into dtypes[] */
    uint64_t begin, end;
} entry;

struct vae__st_file {
    entry *t; /* sorted by name */
    int n, cap;
    const char **meta; /* key, value, key, value, ... in file order */
    int nmeta, mcap;
    char *pool;  /* every decoded JSON string, NUL-terminated */
    float *data; /* all tensors' values */
};

/* A parser for exactly the header's schema rather than for any JSON: each
 * position has one expected type and unknown keys are errors, so no value is
 * ever skipped and nesting stays three levels deep whatever the input. */
typedef struct {
    const char *path;
    vae_error *err;
    const unsigned char *s;
    size_t n, i;
    size_t used; /* bytes of f->pool taken */
    vae__st_file *f;
} parser;

/* A malformed-header error: EFORMAT, with the path. */
static int perr(parser *p, const char *fmt, ...) VAE_PRINTF(2, 3);
static int perr(parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(p->path, p->err, VAE_EFORMAT, fmt, ap);
    va_end(ap);
    return rc;
}

static int peek(parser *p)
{
    while (p->i < p->n && p->s[p->i] && strchr(" \t\n\r", p->s[p->i])) p->i++;
    return p->i < p->n ? p->s[p->i] : -1;
}

static int eat(parser *p, int c)
{
    if (peek(p) != c) return 0;
    p->i++;
    return 1;
}

static int syntax(parser *p, const char *what)
{
    if (peek(p) < 0) return perr(p, "JSON header ends early (expected %s)", what);
    return perr(p, "invalid JSON header at offset %zu: expected %s", p->i, what);
}

static int hex4(const unsigned char *s, unsigned *out)
{
    *out = 0;
    for (int k = 0; k < 4; k++) {
        int c = s[k], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *out = *out << 4 | (unsigned)d;
    }
    return 1;
}

static size_t utf8_put(unsigned char *o, unsigned cp)
{
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t k = n - 1; k > 0; k--, cp >>= 6) o[k] = (unsigned char)(0x80 | (cp & 0x3F));
    o[0] = (unsigned char)(n == 1 ? cp : ((0xFF00u >> n) & 0xFF) | cp);
    return n;
}

/* Decodes the string at the cursor into the pool. The pool has N+1 bytes:
 * a decoded string plus its NUL is never longer than its quoted source. */
static int parse_string(parser *p, const char **out)
{
    static const char esc[] = "\"\\/bfnrt", val[] = "\"\\/\b\f\n\r\t";
    if (peek(p) != '"') return syntax(p, "a string");
    size_t start = p->i++, k = 0;
    unsigned char *o = (unsigned char *)p->f->pool + p->used;
    unsigned c, cp, lo;
    for (;;) {
        if (p->i >= p->n) return perr(p, "JSON header ends inside the string at offset %zu", start);
        if ((c = p->s[p->i++]) == '"') break;
        if (c < 0x20)
            return perr(p, "invalid JSON header at offset %zu: control byte 0x%02x in a string", p->i - 1, c);
        if (c != '\\') {
            o[k++] = (unsigned char)c;
            continue;
        }
        const char *e = p->i < p->n ? strchr(esc, p->s[p->i]) : NULL;
        if (e && *e) {
            o[k++] = (unsigned char)val[e - esc];
            p->i++;
            continue;
        }
        if (p->i >= p->n || p->s[p->i] != 'u' || p->n - p->i < 5 || !hex4(p->s + p->i + 1, &cp))
            return perr(p, "invalid JSON header at offset %zu: bad escape", p->i - 1);
        p->i += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
            p->s[p->i + 1] == 'u' && hex4(p->s + p->i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->i += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            return perr(p, "invalid JSON header at offset %zu: unpaired surrogate escape", p->i - 6);
        } else if (cp == 0) { /* names and metadata are C strings */
            return perr(p, "JSON header has \\u0000 in a string at offset %zu", p->i - 6);
        }
        k += utf8_put(o + k, cp);
    }
    o[k++] = 0;
    p->used += k;
    *out = (const char *)o;
    return VAE_OK;
}

/* One JSON number that must be a non-negative integer <= 2^53. The token is
 * taken whole (digits, sign, '.', exponent) so 1.5, 1e3, -1 and 01 are each
 * rejected by name rather than as a syntax error further on. */
static int parse_int(parser *p, const char *tn, const char *field, uint64_t *v)
{
    peek(p);
    size_t start = p->i, i = start;
    int plain = 1;
    for (*v = 0; i < p->n && p->s[i] && strchr("0123456789+-.eE", p->s[i]); i++) {
        plain &= p->s[i] >= '0' && p->s[i] <= '9';
        if (plain && *v <= MAX_INT) *v = *v * 10 + (uint64_t)(p->s[i] - '0'); /* saturates */
    }
    const char *tok = (const char *)p->s + start;
    int len = (int)(i - start < 40 ? i - start : 40);
    if (i == start) {
        if (i == p->n) return syntax(p, "a number");
        return perr(p, "tensor \"%s\": %s must be an array of integers", tn, field);
    }
    p->i = i;
    if (!plain || (tok[0] == '0' && len > 1))
        return perr(p, "tensor \"%s\": %s holds %.*s, not a non-negative integer", tn, field, len, tok);
    if (*v > MAX_INT) return perr(p, "tensor \"%s\": %s holds %.*s, more than 2^53", tn, field, len, tok);
    return VAE_OK;
}

/* An array of at most maxn integers; shape allows VAE_ST_MAX_DIMS, data_offsets 2. */
static int parse_ints(parser *p, const char *tn, const char *field, uint64_t *v, int maxn, int *count)
{
    int rc;
    *count = 0;
    if (!eat(p, '[')) return perr(p, "tensor \"%s\": %s must be an array of integers", tn, field);
    for (int first = 1; !eat(p, ']'); first = 0) {
        if (!first && !eat(p, ',')) return syntax(p, "',' or ']'");
        if (*count == maxn && maxn == 2)
            return perr(p, "tensor \"%s\": %s must have exactly 2 entries", tn, field);
        if (*count == maxn)
            return fail(p->path, p->err, VAE_EUNSUPPORTED, "tensor \"%s\": %s has more than %d dimensions",
                        tn, field, maxn);
        if ((rc = parse_int(p, tn, field, &v[(*count)++])) != VAE_OK) return rc;
    }
    if (maxn == 2 && *count != 2) return perr(p, "tensor \"%s\": %s must have exactly 2 entries", tn, field);
    return VAE_OK;
}

/* Checks one entry's own consistency: dtype size x shape == data_offsets span. */
static int check_entry(parser *p, const char *tn, const entry *e)
{
    uint64_t numel, bits = (uint64_t)dtypes[e->dtype].bits;
    unsigned long long b = e->begin, end = e->end;
    char st[160];
    size_t k = (size_t)snprintf(st, sizeof st, "[");
    for (int d = 0; d < e->pub.ndim; d++)
        k += (size_t)snprintf(st + k, sizeof st - k, "%s%lld", d ? "," : "", (long long)e->pub.shape[d]);
    snprintf(st + k, sizeof st - k, "]"); /* 8 dims of 16 digits always fit */
    if (!numel_of(e->pub.shape, e->pub.ndim, &numel) || numel > UINT64_MAX / bits)
        return perr(p, "tensor \"%s\": shape %s overflows", tn, st);
    if (numel * bits % 8)
        return perr(p, "tensor \"%s\": shape %s of %s is not a whole number of bytes", tn, st,
                    dtypes[e->dtype].name);
    if (b > end) return perr(p, "tensor \"%s\": data_offsets [%llu,%llu] end before they begin", tn, b, end);
    if (end - b != numel * bits / 8)
        return perr(p, "tensor \"%s\": data_offsets [%llu,%llu] do not match shape %s (%llu bytes)", tn, b,
                    end, st, (unsigned long long)(numel * bits / 8));
    return VAE_OK;
}

static int parse_tensor(parser *p, const char *name)
{
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    vae__st_file *f = p->f;
    char tn[72], q[72];
    entry e = {.pub = {.name = name}, .dtype = -1};
    int have[3] = {0, 0, 0}, rc, cnt, w;
    uint64_t v[VAE_ST_MAX_DIMS];
    const char *key, *dt;
    quote(tn, name);
    if (!eat(p, '{')) return perr(p, "tensor \"%s\": entry must be an object", tn);
    for (int first = 1; !eat(p, '}'); first = 0) {
        if (!first && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &key)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        for (w = 0; w < 3 && strcmp(key, keys[w]); w++) {}
        if (w == 3) return perr(p, "tensor \"%s\": unknown key \"%s\"", tn, quote(q, key));
        if (have[w]++) return perr(p, "duplicate key \"%s\" in tensor \"%s\"", keys[w], tn);
        if (w == 0) {
            if (peek(p) != '"') return perr(p, "tensor \"%s\": dtype must be a string", tn);
            if ((rc = parse_string(p, &dt)) != VAE_OK) return rc;
            for (e.dtype = 0; e.dtype < N_DTYPES && strcmp(dt, dtypes[e.dtype].name); e.dtype++) {}
            if (e.dtype == N_DTYPES) return perr(p, "tensor \"%s\": unknown dtype \"%s\"", tn, quote(q, dt));
        } else if (w == 1) {
            if ((rc = parse_ints(p, tn, "shape", v, VAE_ST_MAX_DIMS, &cnt)) != VAE_OK) return rc;
            e.pub.ndim = cnt;
            for (int d = 0; d < cnt; d++) e.pub.shape[d] = (int64_t)v[d];
        } else {
            if ((rc = parse_ints(p, tn, "data_offsets", v, 2, &cnt)) != VAE_OK) return rc;
            e.begin = v[0];
            e.end = v[1];
        }
    }
    for (w = 0; w < 3; w++)
        if (!have[w]) return perr(p, "tensor \"%s\": missing \"%s\"", tn, keys[w]);
    if ((rc = check_entry(p, tn, &e)) != VAE_OK) return rc;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        entry *t = realloc(f->t, (size_t)cap * sizeof *t);
        if (!t) return fail(p->path, p->err, VAE_ENOMEM, "out of memory");
        f->t = t;
        f->cap = cap;
    }
    f->t[f->n++] = e;
    return VAE_OK;
}

static int parse_meta(parser *p)
{
    vae__st_file *f = p->f;
    const char *k, *v;
    char q[72];
    int rc;
    if (!eat(p, '{')) return perr(p, "__metadata__ must be an object of strings");
    for (int first = 1; !eat(p, '}'); first = 0) {
        if (!first && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &k)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        if (peek(p) != '"') return perr(p, "__metadata__ value for \"%s\" is not a string", quote(q, k));
        if ((rc = parse_string(p, &v)) != VAE_OK) return rc;
        if (f->nmeta == f->mcap) {
            int cap = f->mcap ? 2 * f->mcap : 16;
            const char **m = realloc(f->meta, (size_t)cap * 2 * sizeof *m);
            if (!m) return fail(p->path, p->err, VAE_ENOMEM, "out of memory");
            f->meta = m;
            f->mcap = cap;
        }
        f->meta[2 * f->nmeta] = k;
        f->meta[2 * f->nmeta++ + 1] = v;
    }
    return VAE_OK;
}

static int parse_header(parser *p)
{
    int c = peek(p), seen_meta = 0, rc;
    const char *key;
    if (c != '{') return perr(p, "JSON header is %s", c < 0 ? "empty" : "not an object");
    p->i++;
    for (int first = 1; !eat(p, '}'); first = 0) {
        if (!first && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &key)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        if (strcmp(key, "__metadata__")) rc = parse_tensor(p, key);
        else if (seen_meta++) return perr(p, "duplicate key \"__metadata__\" in the JSON header");
        else rc = parse_meta(p);
        if (rc != VAE_OK) return rc;
    }
    if (peek(p) >= 0) return perr(p, "JSON header has data after the object, at offset %zu", p->i);
    return VAE_OK;
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->pub.name, ((const entry *)b)->pub.name);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->pub.name, y->pub.name);
}

/* The checks that need the whole header: unique keys, the tensors tiling the
 * data buffer exactly (no holes, overlaps or trailing bytes), then dtypes, so
 * that a malformed file is reported as such whatever its dtypes. */
static int check_layout(const char *path, vae__st_file *f, uint64_t data_bytes, vae_error *err)
{
    char qa[72], qb[72];
    int rc = VAE_OK;
    uint64_t pos = 0;
    if (f->n > 1) qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_entry_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[i - 1].pub.name, f->t[i].pub.name))
            return fail(path, err, VAE_EFORMAT, "duplicate key \"%s\" in the JSON header",
                        quote(qa, f->t[i].pub.name));
    const char **keys = malloc(((size_t)f->nmeta + 1) * sizeof *keys);
    const entry **ord = malloc(((size_t)f->n + 1) * sizeof *ord);
    if (!keys || !ord) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < f->nmeta; i++) keys[i] = f->meta[2 * i];
    if (f->nmeta > 1) qsort(keys, (size_t)f->nmeta, sizeof *keys, cmp_str);
    for (int i = 1; i < f->nmeta && rc == VAE_OK; i++)
        if (!strcmp(keys[i - 1], keys[i]))
            rc = fail(path, err, VAE_EFORMAT, "duplicate key \"%s\" in __metadata__", quote(qa, keys[i]));
    for (int i = 0; i < f->n; i++) ord[i] = &f->t[i];
    if (f->n > 1) qsort(ord, (size_t)f->n, sizeof *ord, cmp_entry_offsets);
    for (int i = 0; i < f->n && rc == VAE_OK; pos = ord[i++]->end) {
        const entry *e = ord[i];
        unsigned long long b = e->begin, end = e->end;
        if (b != pos && i == 0)
            rc = fail(path, err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] do not start at 0",
                      quote(qa, e->pub.name), b, end);
        else if (b != pos)
            rc = fail(path, err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] %s tensor \"%s\", "
                      "which ends at %llu", quote(qa, e->pub.name), b, end,
                      b < pos ? "overlap" : "leave a hole after", quote(qb, ord[i - 1]->pub.name),
                      (unsigned long long)pos);
    }
    if (rc == VAE_OK && pos < data_bytes)
        rc = fail(path, err, VAE_EFORMAT, "%llu trailing bytes after the last tensor",
                  (unsigned long long)(data_bytes - pos));
    else if (rc == VAE_OK && pos > data_bytes)
        rc = fail(path, err, VAE_EFORMAT, "truncated: the tensors need %llu data bytes, the file has %llu",
                  (unsigned long long)pos, (unsigned long long)data_bytes);
    for (int i = 0; i < f->n && rc == VAE_OK; i++)
        if (strcmp(dtypes[ord[i]->dtype].name, "F32"))
            rc = fail(path, err, VAE_EUNSUPPORTED, "tensor \"%s\" has dtype %s; only F32 is supported",
                      quote(qa, ord[i]->pub.name), dtypes[ord[i]->dtype].name);
done:
    free(keys);
    free(ord);
    return rc;
}

/* Reads exactly len bytes: 0, -1 at an early end of file, or an errno. */
static int read_all(int fd, void *dst, uint64_t len)
{
    char *p = dst;
    while (len > 0) {
        ssize_t r = read(fd, p, len > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -1 : errno ? errno : EIO;
        p += r;
        len -= (uint64_t)r;
    }
    return 0;
}

static int read_failed(const char *path, int e, vae_error *err)
{
    if (e < 0) return fail(path, err, VAE_EIO, "file ended early (changed while being read?)");
    return fail(path, err, VAE_EIO, "read failed: %s", strerror(e));
}

/* The checks come in the reference reader's order (reliability.md 1.1):
 * sizes and header length, UTF-8, JSON and types, the layout; data last. */
static int read_fd(const char *path, int fd, vae__st_file *f, vae_error *err)
{
    struct stat sb;
    unsigned char len8[8], *h, *nul;
    int e, rc = VAE_OK;
    uint64_t size, hlen = 0;
    size_t bad;
    if (fstat(fd, &sb) != 0) return fail(path, err, VAE_EIO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return fail(path, err, VAE_EIO, "not a regular file");
    if ((size = (uint64_t)sb.st_size) < 8)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (%llu bytes, too short for the header "
                    "length)", (unsigned long long)size);
    if (size > MAX_FILE)
        return fail(path, err, VAE_EFORMAT, "file size %llu exceeds the 16 GiB limit", (unsigned long long)size);
    if ((e = read_all(fd, len8, 8)) != 0) return read_failed(path, e, err);
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > VAE_ST_MAX_HEADER)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (header length %llu exceeds the limit %u)",
                    (unsigned long long)hlen, VAE_ST_MAX_HEADER);
    if (hlen > size - 8)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (header length %llu exceeds the file "
                    "size %llu)", (unsigned long long)hlen, (unsigned long long)size);
    h = malloc((size_t)hlen + 1);
    f->pool = malloc((size_t)hlen + 1);
    if (!h || !f->pool) rc = fail(path, err, VAE_ENOMEM, "out of memory");
    else if ((e = read_all(fd, h, hlen)) != 0) rc = read_failed(path, e, err);
    else if ((bad = utf8_check(h, (size_t)hlen)) != hlen)
        rc = fail(path, err, VAE_EFORMAT, "JSON header is not valid UTF-8 (byte 0x%02x at offset %zu)", h[bad],
                  bad);
    else if ((nul = memchr(h, 0, (size_t)hlen)) != NULL)
        rc = fail(path, err, VAE_EFORMAT, "JSON header has a NUL byte at offset %zu (padding must be spaces)",
                  (size_t)(nul - h));
    else
        rc = parse_header(&(parser){.path = path, .err = err, .s = h, .n = (size_t)hlen, .f = f});
    free(h);
    if (rc != VAE_OK || (rc = check_layout(path, f, size - 8 - hlen, err)) != VAE_OK) return rc;

    /* Read straight into our own float buffer: aligned whatever the header's
     * length, and no second copy of the file in memory. */
    uint64_t bytes = size - 8 - hlen;
    if (bytes > SIZE_MAX - 4 || !(f->data = malloc((size_t)bytes + 4)))
        return fail(path, err, VAE_ENOMEM, "out of memory for %llu bytes of tensor data",
                    (unsigned long long)bytes);
    if ((e = read_all(fd, f->data, bytes)) != 0) return read_failed(path, e, err);
    for (size_t k = 0; !host_is_le() && k < bytes / 4; k++) {
        unsigned char *b = (unsigned char *)&f->data[k];
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&f->data[k], &u, 4);
    }
    for (int i = 0; i < f->n; i++) f->t[i].pub.data = f->data + f->t[i].begin / 4;
    return VAE_OK;
}

int vae__st_read(const char *path, vae__st_file **out, vae_error *err)
{
    if (!out) return vae__error(err, VAE_EINVAL, "safetensors: no output given");
    *out = NULL;
    if (!path) return vae__error(err, VAE_EINVAL, "safetensors: no path given");
    int fd, rc = vae__open_read(path, &fd, NULL, err);
    if (rc) return rc;
    vae__st_file *f = calloc(1, sizeof *f);
    rc = f ? read_fd(path, fd, f, err) : fail(path, err, VAE_ENOMEM, "out of memory");
    close(fd);
    if (rc != VAE_OK) {
        vae__st_free(f);
        return rc;
    }
    *out = f;
    return VAE_OK;
}

void vae__st_free(vae__st_file *f)
{
    if (!f) return;
    free(f->t);
    free(f->meta);
    free(f->pool);
    free(f->data);
    free(f);
}

int vae__st_count(const vae__st_file *f) { return f ? f->n : 0; }

static int cmp_name_entry(const void *key, const void *e)
{
    return strcmp(key, ((const entry *)e)->pub.name);
}

const vae__st_tensor *vae__st_find(const vae__st_file *f, const char *name)
{
    if (!f || !name || f->n == 0) return NULL;
    const entry *e = bsearch(name, f->t, (size_t)f->n, sizeof *f->t, cmp_name_entry);
    return e ? &e->pub : NULL;
}

const vae__st_tensor *vae__st_at(const vae__st_file *f, int i)
{
    return f && i >= 0 && i < f->n ? &f->t[i].pub : NULL;
}

const char *vae__st_meta(const vae__st_file *f, const char *key)
{
    for (int i = 0; f && key && i < f->nmeta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

int vae__parse_int(const char *s, int lo, int hi, int *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int vae__st_meta_count(const vae__st_file *f) { return f ? f->nmeta : 0; }

void vae__st_meta_at(const vae__st_file *f, int i, const char **key, const char **value)
{
    int ok = f && i >= 0 && i < f->nmeta;
    if (key) *key = ok ? f->meta[2 * i] : NULL;
    if (value) *value = ok ? f->meta[2 * i + 1] : NULL;
}

char **vae__st_meta_copy(const vae__st_file *f)
{
    int n = vae__st_meta_count(f);
    char **meta = calloc(2 * (size_t)n + 1, sizeof *meta);
    for (int i = 0; meta && i < 2 * n; i++)
        if (!(meta[i] = strdup(f->meta[i]))) {
            vae__meta_free(meta);
            return NULL;
        }
    return meta;
}

const char *vae__meta_get(char *const *meta, const char *key)
{
    for (char *const *p = meta; p && p[0]; p += 2)
        if (!strcmp(p[0], key)) return p[1];
    return NULL;
}

void vae__meta_free(char **meta)
{
    for (char **p = meta; p && *p; p++) free(*p);
    free(meta);
}
