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

#include "internal.h"

#define MAX_FILE ((uint64_t)16 << 30) /* bigger files are refused before any allocation */
#define MAX_INT ((uint64_t)1 << 53)   /* largest integer a JSON number may hold (exact in a double) */

/* ------------------------------------------------------------ shared */

/* Every dtype of the format, so that a valid but unsupported one gets its own error. */
static const struct {
    const char *name;
    int bits;
} dtypes[] = {
    {"BOOL", 8},     {"F4", 4},           {"F6_E2M3", 6},     {"F6_E3M2", 6},
    {"U8", 8},       {"I8", 8},           {"F8_E5M2", 8},     {"F8_E4M3", 8},
    {"F8_E8M0", 8},  {"F8_E4M3FNUZ", 8},  {"F8_E5M2FNUZ", 8}, {"I16", 16},
    {"U16", 16},     {"F16", 16},         {"BF16", 16},       {"I32", 32},
    {"U32", 32},     {"F32", 32},         {"C64", 64},        {"F64", 64},
    {"I64", 64},     {"U64", 64},
};

static int host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Elements in a shape; 0 on uint64 overflow. A zero dim makes any shape empty,
 * so it is looked for first and overflow is not an error then. */
static int numel_of(const int64_t *shape, int ndim, uint64_t *out)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) {
            *out = 0;
            return 1;
        }
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > UINT64_MAX / d) return 0;
        n *= d;
    }
    *out = n;
    return 1;
}

/* Offset of the first byte that is not well-formed UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are not), or n. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
        else return i;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return i;
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
    if (s[k]) {
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        memcpy(out + k, "...", 4);
    } else {
        out[k] = 0;
    }
    return out;
}

/* Formats a message and prefixes it with the path, as every message is. */
static int fail(const char *path, vae_error *err, int code, const char *fmt, ...) VAE_PRINTF(4, 5);
static int fail(const char *path, vae_error *err, int code, const char *fmt, ...)
{
    char msg[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vae__error(err, code, "%s: %s", path, msg);
}

/* ------------------------------------------------------------ writer */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

/* Room for want more bytes; sets oom instead of failing loudly so the
 * serialiser can run straight through and check once at the end. */
static int reserve(buf *b, size_t want)
{
    if (b->oom) return 0;
    if (want <= b->cap - b->n) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < want) {
        if (cap > SIZE_MAX / 2) return !(b->oom = 1);
        cap *= 2;
    }
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
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            put(b, e, 6);
        } else {
            put(b, s, 1);
        }
    }
    put(b, "\"", 1);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const vae__st_tensor *const *)a)->name, (*(const vae__st_tensor *const *)b)->name);
}

/* Elements are pointers to the key slot of a key, value pair. */
static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* Checks the arguments and sorts them (ord, mord); the caller frees both. */
static int write_check(const char *path, const vae__st_tensor *t, int n, const char *const *meta,
                       const vae__st_tensor **ord, const char *const **mord, int nmeta, vae_error *err)
{
    char qa[72];
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const vae__st_tensor *x = &t[i];
        uint64_t numel;
        if (!x->name) return fail(path, err, VAE_EINVAL, "tensor %d has no name", i);
        size_t len = strlen(x->name);
        if (utf8_check((const unsigned char *)x->name, len) != len || !strcmp(x->name, "__metadata__"))
            return fail(path, err, VAE_EINVAL, "invalid tensor name \"%s\"", quote(qa, x->name));
        if (x->ndim < 0 || x->ndim > VAE_ST_MAX_DIMS)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" has %d dimensions (0 to %d allowed)",
                        quote(qa, x->name), x->ndim, VAE_ST_MAX_DIMS);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] < 0 || (uint64_t)x->shape[d] > MAX_INT)
                return fail(path, err, VAE_EINVAL, "tensor \"%s\" has dimension %lld",
                            quote(qa, x->name), (long long)x->shape[d]);
        if (!numel_of(x->shape, x->ndim, &numel) || numel > (MAX_FILE - bytes) / 4)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" makes the file larger than 16 GiB",
                        quote(qa, x->name));
        if (numel > 0 && !x->data)
            return fail(path, err, VAE_EINVAL, "tensor \"%s\" has no data", quote(qa, x->name));
        bytes += numel * 4;
        ord[i] = x;
    }
    qsort(ord, (size_t)n, sizeof *ord, cmp_tensor_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(ord[i - 1]->name, ord[i]->name))
            return fail(path, err, VAE_EINVAL, "duplicate tensor name \"%s\"", quote(qa, ord[i]->name));
    for (int i = 0; i < nmeta; i++) {
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(meta[2 * i + k]);
            if (utf8_check((const unsigned char *)meta[2 * i + k], len) != len)
                return fail(path, err, VAE_EINVAL, "metadata %s %d is not valid UTF-8",
                            k ? "value" : "key", i);
        }
        mord[i] = &meta[2 * i];
    }
    qsort(mord, (size_t)nmeta, sizeof *mord, cmp_meta_key);
    for (int i = 1; i < nmeta; i++)
        if (!strcmp(*mord[i - 1], *mord[i]))
            return fail(path, err, VAE_EINVAL, "duplicate metadata key \"%s\"", quote(qa, *mord[i]));
    return VAE_OK;
}

int vae__st_write(const char *path, const vae__st_tensor *t, int n, const char *const *meta,
                  vae_error *err)
{
    if (!path) return vae__error(err, VAE_EINVAL, "safetensors: no path given");
    if (n < 0 || (n > 0 && !t)) return fail(path, err, VAE_EINVAL, "invalid tensor list");
    int nmeta = 0;
    while (meta && meta[2 * nmeta]) {
        if (!meta[2 * nmeta + 1])
            return fail(path, err, VAE_EINVAL, "metadata key %d has no value", nmeta);
        nmeta++;
    }
    const vae__st_tensor **ord = malloc(((size_t)n + 1) * sizeof *ord);
    const char *const **mord = malloc(((size_t)nmeta + 1) * sizeof *mord);
    buf b = {0};
    int rc;
    if (!ord || !mord) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = write_check(path, t, n, meta, ord, mord, nmeta, err)) != VAE_OK) goto done;

    /* Canonical bytes: sorted keys, no optional whitespace, so the output depends only on content. */
    put(&b, "\0\0\0\0\0\0\0\0{", 9);
    if (nmeta > 0) {
        put_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) put(&b, ",", 1);
            put_json(&b, mord[i][0]);
            put(&b, ":", 1);
            put_json(&b, mord[i][1]);
        }
        put(&b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel;
        numel_of(ord[i]->shape, ord[i]->ndim, &numel);
        if (i || nmeta) put(&b, ",", 1);
        put_json(&b, ord[i]->name);
        put_str(&b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < ord[i]->ndim; d++) {
            if (d) put(&b, ",", 1);
            put_u64(&b, (uint64_t)ord[i]->shape[d]);
        }
        put_str(&b, "],\"data_offsets\":[");
        put_u64(&b, off);
        put(&b, ",", 1);
        put_u64(&b, off += numel * 4);
        put_str(&b, "]}");
    }
    put(&b, "}", 1);
    while (b.n % 8) put(&b, " ", 1); /* 0x20 padding keeps the data 8-aligned */
    uint64_t hlen = b.n - 8;
    if (!b.oom && hlen > VAE_ST_MAX_HEADER) {
        rc = fail(path, err, VAE_EINVAL, "JSON header of %llu bytes is over the limit",
                  (unsigned long long)hlen);
        goto done;
    }
    /* off <= 16 GiB was checked; on 32-bit hosts it must still fit a size_t */
    if (off > SIZE_MAX - b.n || !reserve(&b, (size_t)off)) b.oom = 1;
    if (b.oom) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++) b.p[i] = (char)(hlen >> (8 * i) & 0xff);
    for (int i = 0; i < n; i++) {
        uint64_t numel;
        numel_of(ord[i]->shape, ord[i]->ndim, &numel);
        unsigned char *o = (unsigned char *)b.p + b.n;
        if (numel > 0 && host_is_le()) {
            memcpy(o, ord[i]->data, (size_t)numel * 4);
        } else {
            for (uint64_t k = 0; k < numel; k++) {
                uint32_t u;
                memcpy(&u, &ord[i]->data[k], 4);
                for (int j = 0; j < 4; j++) o[4 * k + j] = (unsigned char)(u >> (8 * j));
            }
        }
        b.n += (size_t)numel * 4;
    }
    rc = vae__write_file_atomic(path, b.p, b.n, err);
done:
    free(ord);
    free(mord);
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

/* A parser for exactly the header's schema: every position has one expected
 * type and unknown keys are errors, so there is no generic value to skip and
 * nesting never goes deeper than three levels, whatever the input. */
typedef struct {
    const char *path;
    vae_error *err;
    const unsigned char *s;
    size_t n, i;
    size_t used; /* bytes of f->pool taken */
    vae__st_file *f;
} parser;

static int peek(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
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
    if (peek(p) < 0)
        return fail(p->path, p->err, VAE_EFORMAT, "JSON header ends early (expected %s)", what);
    return fail(p->path, p->err, VAE_EFORMAT, "invalid JSON header at offset %zu: expected %s", p->i, what);
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int c = s[k], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 1;
}

/* Decodes the string at the cursor into the pool. The pool has N+1 bytes:
 * a decoded string plus its NUL is never longer than its quoted source. */
static int parse_string(parser *p, const char **out)
{
    if (peek(p) != '"') return syntax(p, "a string");
    size_t start = p->i++;
    unsigned char *o = (unsigned char *)p->f->pool + p->used;
    size_t k = 0;
    for (;;) {
        if (p->i >= p->n)
            return fail(p->path, p->err, VAE_EFORMAT, "JSON header ends inside the string at offset %zu", start);
        unsigned c = p->s[p->i++], cp;
        if (c == '"') break;
        if (c < 0x20)
            return fail(p->path, p->err, VAE_EFORMAT,
                        "invalid JSON header at offset %zu: raw control byte 0x%02x in a string", p->i - 1, c);
        if (c != '\\') {
            o[k++] = (unsigned char)c;
            continue;
        }
        c = p->i < p->n ? p->s[p->i++] : 0;
        const char *esc = strchr("\"\\/bfnrt", (int)c), *val = "\"\\/\b\f\n\r\t";
        if (c && esc) {
            o[k++] = (unsigned char)val[esc - "\"\\/bfnrt"];
            continue;
        }
        if (c != 'u' || p->n - p->i < 4 || !hex4(p->s + p->i, &cp))
            return fail(p->path, p->err, VAE_EFORMAT, "invalid JSON header at offset %zu: bad escape", p->i - 1);
        p->i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* needs a low surrogate next */
            unsigned lo;
            if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' || !hex4(p->s + p->i + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return fail(p->path, p->err, VAE_EFORMAT,
                            "invalid JSON header at offset %zu: unpaired surrogate escape", p->i - 6);
            p->i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(p->path, p->err, VAE_EFORMAT,
                        "invalid JSON header at offset %zu: unpaired surrogate escape", p->i - 6);
        } else if (cp == 0) { /* names and metadata are C strings */
            return fail(p->path, p->err, VAE_EFORMAT, "JSON header has \\u0000 in a string at offset %zu", p->i - 6);
        }
        if (cp < 0x80) {
            o[k++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            o[k++] = (unsigned char)(0xC0 | cp >> 6);
            o[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            o[k++] = (unsigned char)(0xE0 | cp >> 12);
            o[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            o[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            o[k++] = (unsigned char)(0xF0 | cp >> 18);
            o[k++] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            o[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            o[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
    }
    o[k++] = 0;
    p->used += k;
    *out = (const char *)o;
    return VAE_OK;
}

/* An array of at most maxn JSON numbers, each a non-negative integer <= 2^53.
 * tn is the quoted tensor name, field the key, both for messages. */
static int parse_ints(parser *p, const char *tn, const char *field, uint64_t *v, int maxn, int *count)
{
    *count = 0;
    if (!eat(p, '['))
        return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": %s must be an array of integers", tn, field);
    if (eat(p, ']')) return VAE_OK;
    for (;;) {
        int c = peek(p);
        size_t start = p->i, i = p->i;
        uint64_t val = 0;
        int plain = c != '-';
        if (c == '-') i++;
        if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') {
            if (c == '-') return p->i = i, syntax(p, "a digit");
            return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": %s must be an array of integers", tn, field);
        }
        if (p->s[i] == '0' && i + 1 < p->n && p->s[i + 1] >= '0' && p->s[i + 1] <= '9')
            return p->i = i + 1, syntax(p, "no leading zeros");
        for (; i < p->n && p->s[i] >= '0' && p->s[i] <= '9'; i++)
            val = val > MAX_INT ? val : val * 10 + (p->s[i] - '0'); /* saturates: digits are bounded by N */
        if (i < p->n && p->s[i] == '.') {
            plain = 0;
            if (++i >= p->n || p->s[i] < '0' || p->s[i] > '9') return p->i = i, syntax(p, "a digit");
            while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
        }
        if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
            plain = 0;
            if (++i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
            if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return p->i = i, syntax(p, "a digit");
            while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
        }
        p->i = i;
        int len = (int)(i - start < 40 ? i - start : 40);
        if (!plain)
            return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": %s holds %.*s, not a non-negative integer",
                        tn, field, len, (const char *)p->s + start);
        if (val > MAX_INT)
            return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": %s holds %.*s, more than 2^53", tn, field,
                        len, (const char *)p->s + start);
        if (*count == maxn) {
            if (maxn == 2)
                return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": %s must have exactly 2 entries", tn, field);
            return fail(p->path, p->err, VAE_EUNSUPPORTED, "tensor \"%s\": %s has more than %d dimensions", tn,
                        field, maxn);
        }
        v[(*count)++] = val;
        if (eat(p, ',')) continue;
        if (eat(p, ']')) return VAE_OK;
        return syntax(p, "',' or ']'");
    }
}

static void shape_text(char *out, size_t cap, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

static int parse_tensor(parser *p, const char *name)
{
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    vae__st_file *f = p->f;
    char tn[72], qa[72];
    entry e = {.pub = {.name = name}, .dtype = -1};
    int have[3] = {0, 0, 0}, rc, cnt;
    uint64_t v[VAE_ST_MAX_DIMS];
    quote(tn, name);
    if (!eat(p, '{')) return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": entry must be an object", tn);
    while (!eat(p, '}')) {
        const char *key, *dt;
        int w = 0;
        if ((have[0] || have[1] || have[2]) && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &key)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        while (w < 3 && strcmp(key, keys[w])) w++;
        if (w == 3)
            return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": unknown key \"%s\"", tn, quote(qa, key));
        if (have[w]++)
            return fail(p->path, p->err, VAE_EFORMAT, "duplicate key \"%s\" in tensor \"%s\"", keys[w], tn);
        if (w == 0) {
            if (peek(p) != '"') return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": dtype must be a string", tn);
            if ((rc = parse_string(p, &dt)) != VAE_OK) return rc;
            for (e.dtype = 0; e.dtype < (int)(sizeof dtypes / sizeof dtypes[0]); e.dtype++)
                if (!strcmp(dt, dtypes[e.dtype].name)) break;
            if (e.dtype == (int)(sizeof dtypes / sizeof dtypes[0]))
                return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": unknown dtype \"%s\"", tn, quote(qa, dt));
        } else if (w == 1) {
            if ((rc = parse_ints(p, tn, "shape", v, VAE_ST_MAX_DIMS, &cnt)) != VAE_OK) return rc;
            e.pub.ndim = cnt;
            for (int d = 0; d < cnt; d++) e.pub.shape[d] = (int64_t)v[d];
        } else {
            if ((rc = parse_ints(p, tn, "data_offsets", v, 2, &cnt)) != VAE_OK) return rc;
            if (cnt != 2)
                return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": data_offsets must have exactly 2 entries", tn);
            e.begin = v[0];
            e.end = v[1];
        }
    }
    for (int w = 0; w < 3; w++)
        if (!have[w]) return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": missing \"%s\"", tn, keys[w]);

    uint64_t numel, bits = (uint64_t)dtypes[e.dtype].bits;
    char st[128];
    shape_text(st, sizeof st, e.pub.shape, e.pub.ndim);
    if (!numel_of(e.pub.shape, e.pub.ndim, &numel) || numel > UINT64_MAX / bits)
        return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": shape %s overflows", tn, st);
    if (numel * bits % 8)
        return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": shape %s of %s is not a whole number of bytes",
                    tn, st, dtypes[e.dtype].name);
    if (e.begin > e.end)
        return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] end before they begin",
                    tn, (unsigned long long)e.begin, (unsigned long long)e.end);
    if (e.end - e.begin != numel * bits / 8)
        return fail(p->path, p->err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] do not match shape %s "
                    "(%llu bytes)", tn, (unsigned long long)e.begin, (unsigned long long)e.end, st,
                    (unsigned long long)(numel * bits / 8));
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
    char qa[72];
    int rc;
    if (!eat(p, '{')) return fail(p->path, p->err, VAE_EFORMAT, "__metadata__ must be an object of strings");
    while (!eat(p, '}')) {
        const char *k, *v;
        if (f->nmeta > 0 && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &k)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        if (peek(p) != '"')
            return fail(p->path, p->err, VAE_EFORMAT, "__metadata__ value for \"%s\" is not a string", quote(qa, k));
        if ((rc = parse_string(p, &v)) != VAE_OK) return rc;
        if (f->nmeta == f->mcap) {
            int cap = f->mcap ? 2 * f->mcap : 16;
            const char **m = realloc(f->meta, 2 * (size_t)cap * sizeof *m);
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
    if (c != '{')
        return fail(p->path, p->err, VAE_EFORMAT, c < 0 ? "JSON header is empty" : "JSON header is not an object");
    p->i++;
    for (int first = 1; !eat(p, '}'); first = 0) {
        const char *key;
        if (!first && !eat(p, ',')) return syntax(p, "',' or '}'");
        if ((rc = parse_string(p, &key)) != VAE_OK) return rc;
        if (!eat(p, ':')) return syntax(p, "':'");
        if (!strcmp(key, "__metadata__")) {
            if (seen_meta++)
                return fail(p->path, p->err, VAE_EFORMAT, "duplicate key \"__metadata__\" in the JSON header");
            rc = parse_meta(p);
        } else {
            rc = parse_tensor(p, key);
        }
        if (rc != VAE_OK) return rc;
    }
    if (peek(p) >= 0)
        return fail(p->path, p->err, VAE_EFORMAT, "JSON header has data after the object, at offset %zu", p->i);
    return VAE_OK;
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->pub.name, ((const entry *)b)->pub.name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->pub.name, y->pub.name);
}

/* The checks that need the whole header: unique keys, tensors tiling the
 * data buffer exactly (no holes, overlaps or trailing bytes), dtypes. */
static int check_layout(const char *path, vae__st_file *f, uint64_t data_bytes, vae_error *err)
{
    char qa[72], qb[72];
    int rc = VAE_OK;
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_entry_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[i - 1].pub.name, f->t[i].pub.name))
            return fail(path, err, VAE_EFORMAT, "duplicate key \"%s\" in the JSON header", quote(qa, f->t[i].pub.name));
    const char **keys = malloc(((size_t)f->nmeta + 1) * sizeof *keys);
    entry **ord = malloc(((size_t)f->n + 1) * sizeof *ord);
    if (!keys || !ord) {
        rc = fail(path, err, VAE_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < f->nmeta; i++) keys[i] = f->meta[2 * i];
    qsort(keys, (size_t)f->nmeta, sizeof *keys, cmp_str);
    for (int i = 1; i < f->nmeta; i++)
        if (!strcmp(keys[i - 1], keys[i])) {
            rc = fail(path, err, VAE_EFORMAT, "duplicate key \"%s\" in __metadata__", quote(qa, keys[i]));
            goto done;
        }
    for (int i = 0; i < f->n; i++) ord[i] = &f->t[i];
    qsort(ord, (size_t)f->n, sizeof *ord, cmp_entry_offsets);
    uint64_t pos = 0;
    for (int i = 0; i < f->n && rc == VAE_OK; i++) {
        const entry *e = ord[i];
        if (e->begin != pos && i == 0)
            rc = fail(path, err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] do not start at 0",
                      quote(qa, e->pub.name), (unsigned long long)e->begin, (unsigned long long)e->end);
        else if (e->begin != pos)
            rc = fail(path, err, VAE_EFORMAT, "tensor \"%s\": data_offsets [%llu,%llu] %s tensor \"%s\", which ends at %llu",
                      quote(qa, e->pub.name), (unsigned long long)e->begin, (unsigned long long)e->end,
                      e->begin < pos ? "overlap" : "leave a hole after", quote(qb, ord[i - 1]->pub.name),
                      (unsigned long long)pos);
        pos = e->end;
    }
    if (rc != VAE_OK) goto done;
    if (pos < data_bytes)
        rc = fail(path, err, VAE_EFORMAT, "%llu trailing bytes after the last tensor",
                  (unsigned long long)(data_bytes - pos));
    else if (pos > data_bytes)
        rc = fail(path, err, VAE_EFORMAT, "truncated: the tensors need %llu data bytes, the file has %llu",
                  (unsigned long long)pos, (unsigned long long)data_bytes);
    /* last, so that a malformed file is reported as such whatever its dtypes */
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
        if (r < 0) return errno ? errno : EIO;
        if (r == 0) return -1;
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

/* Validation in the reference reader's order (reliability.md 1.1): sizes,
 * header length, UTF-8, JSON and types, then the layout; data is read last. */
static int read_fd(const char *path, int fd, vae__st_file *f, vae_error *err)
{
    struct stat sb;
    unsigned char len8[8];
    int e;
    if (fstat(fd, &sb) != 0) return fail(path, err, VAE_EIO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return fail(path, err, VAE_EIO, "not a regular file");
    uint64_t size = (uint64_t)sb.st_size, hlen = 0;
    if (size < 8)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (%llu bytes, shorter than the 8-byte header length)",
                    (unsigned long long)size);
    if (size > MAX_FILE)
        return fail(path, err, VAE_EFORMAT, "file size %llu exceeds the 16 GiB limit", (unsigned long long)size);
    if ((e = read_all(fd, len8, 8)) != 0) return read_failed(path, e, err);
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > VAE_ST_MAX_HEADER)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (header length %llu exceeds the limit %u)",
                    (unsigned long long)hlen, VAE_ST_MAX_HEADER);
    if (hlen > size - 8)
        return fail(path, err, VAE_EFORMAT, "not a safetensors file (header length %llu exceeds the file size %llu)",
                    (unsigned long long)hlen, (unsigned long long)size);

    unsigned char *h = malloc((size_t)hlen + 1);
    f->pool = malloc((size_t)hlen + 1);
    if (!h || !f->pool) {
        free(h);
        return fail(path, err, VAE_ENOMEM, "out of memory");
    }
    int rc = VAE_OK;
    size_t bad;
    if ((e = read_all(fd, h, hlen)) != 0) {
        rc = read_failed(path, e, err);
    } else if ((bad = utf8_check(h, (size_t)hlen)) != hlen) {
        rc = fail(path, err, VAE_EFORMAT, "JSON header is not valid UTF-8 (byte 0x%02x at offset %zu)", h[bad], bad);
    } else if ((bad = strlen((const char *)memset(h + hlen, 0, 1) - hlen)) != hlen) {
        rc = fail(path, err, VAE_EFORMAT, "JSON header has a NUL byte at offset %zu (padding must be spaces)", bad);
    } else {
        parser p = {.path = path, .err = err, .s = h, .n = (size_t)hlen, .f = f};
        rc = parse_header(&p);
    }
    free(h);
    if (rc != VAE_OK || (rc = check_layout(path, f, size - 8 - hlen, err)) != VAE_OK) return rc;

    /* Decoded into our own buffer: aligned whatever the header's length, and
     * only as large as the data, with no second copy of the file. */
    uint64_t bytes = size - 8 - hlen;
    if (bytes > SIZE_MAX - 4 || !(f->data = malloc((size_t)bytes + 4)))
        return fail(path, err, VAE_ENOMEM, "out of memory for %llu bytes of tensor data", (unsigned long long)bytes);
    if ((e = read_all(fd, f->data, bytes)) != 0) return read_failed(path, e, err);
    if (!host_is_le()) {
        unsigned char *b = (unsigned char *)f->data;
        for (uint64_t k = 0; k < bytes / 4; k++) {
            uint32_t u = (uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 | (uint32_t)b[4 * k + 2] << 16 |
                         (uint32_t)b[4 * k + 3] << 24;
            memcpy(&f->data[k], &u, 4);
        }
    }
    for (int i = 0; i < f->n; i++) f->t[i].pub.data = f->data + f->t[i].begin / 4;
    return VAE_OK;
}

int vae__st_read(const char *path, vae__st_file **out, vae_error *err)
{
    if (!out) return vae__error(err, VAE_EINVAL, "safetensors: no output given");
    *out = NULL;
    if (!path) return vae__error(err, VAE_EINVAL, "safetensors: no path given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(path, err, errno == ENOENT || errno == ENOTDIR ? VAE_ENOENT : VAE_EIO, "cannot open: %s",
                    strerror(errno));
    vae__st_file *f = calloc(1, sizeof *f);
    int rc = f ? read_fd(path, fd, f, err) : fail(path, err, VAE_ENOMEM, "out of memory");
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

int vae__st_meta_count(const vae__st_file *f) { return f ? f->nmeta : 0; }

void vae__st_meta_at(const vae__st_file *f, int i, const char **key, const char **value)
{
    int ok = f && i >= 0 && i < f->nmeta;
    if (key) *key = ok ? f->meta[2 * i] : NULL;
    if (value) *value = ok ? f->meta[2 * i + 1] : NULL;
}
