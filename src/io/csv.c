/* csv.c - a strict CSV reader for images: one image per row, comma-separated
 * decimal numbers, an optional label column and header row. Files (raw or
 * gzip) are parsed as they are read, a line at a time: memory follows the
 * images found, never the text's size or what a header claims. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "io/io.h"

#define CSV_MAX_FIELDS (3 * VAE_MAX_SIDE * VAE_MAX_SIDE + 1)
/* A line may hold this many bytes per field (numpy's '%.18e' takes 24), plus
 * CSV_LINE_SLACK: a longer one is refused before it is buffered whole (a
 * runaway line, or a bomb of one line without commas). */
#define CSV_BYTES_PER_FIELD 64
#define CSV_LINE_SLACK 4096
#define CSV_CHUNK ((size_t)1 << 20) /* bytes read (decompressed) at a time */

/* One field: [s, e) with spaces and a pair of double quotes trimmed. */
typedef struct span {
    const char *s, *e;
} span;

static span trim(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') s++, e--;
    return (span){s, e};
}

/* Parses a decimal number (sign, digits, a point, an exponent; no hex, no
 * nan/inf, no locale) from the whole span. Returns 0 and *v, or -1. The
 * value is exact for up to 19 significant digits and |exponent| <= 22
 * (Clinger's fast path), and within a few ulps otherwise; pixels are then
 * rounded to 1/255 steps. */
static int parse_number(span f, double *v)
{
    const char *p = f.s, *e = f.e;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
    uint64_t mant = 0;
    int digits = 0, dropped = 0, frac = 0, any = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++, any = 1)
        if (digits < 19) mant = mant * 10 + (uint64_t)(*p - '0'), digits += mant > 0;
        else dropped++; // beyond 19 digits only the magnitude counts
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++, any = 1)
            if (digits < 19) mant = mant * 10 + (uint64_t)(*p - '0'), digits += mant > 0, frac++;
    }
    if (!any) return -1;
    long ex = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, edig = 0;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        for (; p < e && *p >= '0' && *p <= '9'; p++, edig = 1)
            if (ex < 100000) ex = ex * 10 + (*p - '0'); // saturates: 1e99999999 is just huge
        if (!edig) return -1;
        if (eneg) ex = -ex;
    }
    if (p != e) return -1;
    long e10 = ex + dropped - frac;
    double m = (double)mant, r;
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (mant == 0) r = 0;
    else if (e10 >= 0 && e10 <= 22) r = m * p10[e10];
    else if (e10 < 0 && e10 >= -22) r = m / p10[-e10];
    else if (e10 > 400) r = HUGE_VAL;
    else if (e10 < -400) r = 0;
    else r = m * pow(10.0, (double)e10);
    *v = neg ? -r : r;
    return 0;
}

/* What is wrong with a field that is not a number, for the message. */
static const char *why_not(span f)
{
    const char *p = f.s;
    if (p < f.e && (*p == '+' || *p == '-')) p++;
    size_t n = (size_t)(f.e - p);
    if (f.s == f.e) return "an empty field";
    if ((n >= 3 && !strncasecmp(p, "nan", 3)) || (n >= 3 && !strncasecmp(p, "inf", 3)))
        return "not a finite number";
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) return "a hexadecimal number (not allowed)";
    return "not a number";
}

/* Splits the line [s, e) at commas into f (at most cap); returns the count,
 * or cap + 1 when there are more. */
static size_t split_line(const char *s, const char *e, span *f, size_t cap)
{
    size_t n = 0;
    for (;;) {
        const char *c = memchr(s, ',', (size_t)(e - s));
        const char *end = c ? c : e;
        if (n == cap) return cap + 1;
        f[n++] = trim(s, end);
        if (!c) return n;
        s = c + 1;
    }
}

static void quote(char *out, size_t len, span f)
{
    int n = (int)(f.e - f.s);
    snprintf(out, len, "'%.*s%s'", n > 24 ? 24 : n, f.s, n > 24 ? "..." : "");
}

/* The parser between lines: the shape the first line fixed and the rows so far. */
typedef struct csv_state {
    const char *name;
    const vae_data_options *o;
    vae_error *err;
    span *f;               /* the fields of a line (fcap = F of the first line) */
    size_t fcap, F, D;     /* fields per line, pixel values per row */
    int lab, c, h, w;
    uint8_t *img, *labels; /* n rows of D bytes (room for cap) and their labels */
    size_t n, cap, budget; /* budget: bytes of images allowed (vae__memory_budget) */
    long line, ref_line, blank;
} csv_state;

/* The first non-blank line: the field count, a header or not, the shape.
 * Returns 1 when it is a header (no row in it), 0 or an error code. */
static int first_line(csv_state *s, const char *p, const char *le)
{
    const vae_data_options *o = s->o;
    size_t k = 1;
    for (const char *q = p; q < le; q++) k += *q == ',';
    if (k > CSV_MAX_FIELDS)
        return vae__error(s->err, VAE_EUNSUPPORTED, "%s: line %ld: %zu fields, more than the limit "
                          "of %d", s->name, s->line, k, CSV_MAX_FIELDS);
    s->fcap = k;
    if (!(s->f = malloc(s->fcap * sizeof *s->f)))
        return vae__error(s->err, VAE_ENOMEM, "%s: out of memory", s->name);
    s->F = split_line(p, le, s->f, s->fcap);
    int header = o->csv_header;
    if (header < 0) {
        header = 0;
        for (size_t i = 0; i < s->F; i++) {
            double v;
            if (parse_number(s->f[i], &v)) header = 1;
        }
    }
    size_t nlab = s->lab != VAE_CSV_LABEL_NONE;
    if (s->F <= nlab)
        return vae__error(s->err, VAE_EFORMAT, "%s: line %ld: %zu field(s): no pixel values", s->name,
                          s->line, s->F);
    size_t D = s->D = s->F - nlab;
    if (o->channels) {
        s->c = o->channels, s->h = o->height, s->w = o->width;
        if ((size_t)s->c * s->h * s->w != D)
            return vae__error(s->err, VAE_ESHAPE, "%s: rows hold %zu pixel values, but the shape "
                              "%dx%dx%d needs %zu", s->name, D, s->c, s->h, s->w,
                              (size_t)s->c * s->h * s->w);
    } else {
        size_t q = (size_t)(sqrt((double)D) + 0.5), q1 = (size_t)(sqrt(D - 1.0) + 0.5);
        if (q * q != D || q > VAE_MAX_SIDE) {
            // one field more than a square image: most likely a label column
            int label_col = !nlab && q1 * q1 == D - 1;
            return vae__error(s->err, VAE_ESHAPE, "%s: rows hold %zu pixel values, not a square "
                              "grey image; %sgive the shape (--shape CxHxW)", s->name, D,
                              label_col ? "is the first or last column a label? (--csv-label "
                                          "first or last), or " : "");
        }
        s->c = 1, s->h = s->w = (int)q;
    }
    s->ref_line = s->line;
    return header;
}

/* Room for one more row. The reservation grows by doubling from what 1 MiB
 * holds, never past the rows the rest of the text can hold (`left` bytes, a
 * row being at least 2F of them; SIZE_MAX: unknown) nor past the budget: a
 * failed allocation is an error naming the file, never a shorter data set. */
static int reserve_row(csv_state *s, size_t left)
{
    if (s->n < s->cap) return VAE_OK;
    size_t D = s->D, max_rows = s->budget / D;
    if (s->n >= max_rows)
        return vae__error(s->err, VAE_ENOMEM, "%s: line %ld: the images need more than the %zu MiB "
                          "the memory budget allows (--max-memory; CSV images are kept in memory)",
                          s->name, s->line, s->budget >> 20);
    size_t ncap = s->cap ? 2 * s->cap : ((size_t)1 << 20) / D + 1;
    size_t more = left == SIZE_MAX ? SIZE_MAX : (left + 1) / (2 * s->F); // rows after this one
    if (more < ncap - s->n - 1) ncap = s->n + 1 + more;
    if (ncap > max_rows) ncap = max_rows;
    uint8_t *ni = realloc(s->img, ncap * D);
    if (ni) s->img = ni;
    uint8_t *nl = s->lab && ni ? realloc(s->labels, ncap) : NULL;
    if (nl) s->labels = nl;
    if (!ni || (s->lab && !nl))
        return vae__error(s->err, VAE_ENOMEM, "%s: out of memory at line %ld (%zu rows of %zu bytes)",
                          s->name, s->line, ncap, D);
    s->cap = ncap;
    return VAE_OK;
}

/* One line [p, le) (no newline); left: bytes of text after it (SIZE_MAX: unknown). */
static int csv_line(csv_state *s, const char *p, const char *le, size_t left)
{
    char q[40];
    s->line++;
    if (le > p && le[-1] == '\r') le--;
    const char *b = p;
    while (b < le && (*b == ' ' || *b == '\t')) b++;
    if (b == le) { // nothing but blanks: allowed only at the end of the file
        s->blank = s->blank ? s->blank : s->line;
        return VAE_OK;
    }
    if (s->blank)
        return vae__error(s->err, VAE_EFORMAT, "%s: line %ld: an empty line inside the data", s->name,
                          s->blank);
    if (!s->f) {
        int r = first_line(s, p, le);
        if (r) return r < 0 ? r : VAE_OK; // 1: a header
    }
    size_t F = s->F, k = split_line(p, le, s->f, s->fcap);
    if (k != F) {
        k = 1; // count them all for the message
        for (const char *c = p; c < le; c++) k += *c == ',';
        return vae__error(s->err, VAE_EFORMAT, "%s: line %ld: %zu fields, but line %ld has %zu (a "
                          "ragged row)", s->name, s->line, k, s->ref_line, F);
    }
    int rc = reserve_row(s, left);
    if (rc) return rc;
    const span *f = s->f;
    const vae_data_options *o = s->o;
    uint8_t *row = s->img + s->n * s->D;
    size_t li = s->lab == VAE_CSV_LABEL_FIRST ? 0 : F - 1;
    for (size_t i = 0, j = 0; i < F; i++) {
        double v;
        if (s->lab && i == li) {
            const char *c = f[i].s;
            unsigned long L = 0;
            int ok = f[i].e > c && f[i].e - c <= 3;
            for (; ok && c < f[i].e; c++) ok = *c >= '0' && *c <= '9', L = L * 10 + (unsigned long)(*c - '0');
            if (!ok || L > 255) {
                quote(q, sizeof q, f[i]);
                return vae__error(s->err, VAE_EFORMAT, "%s: line %ld, field %zu: label %s is not a "
                                  "whole number in 0..255", s->name, s->line, i + 1, q);
            }
            s->labels[s->n] = (uint8_t)L;
            continue;
        }
        if (parse_number(f[i], &v)) {
            quote(q, sizeof q, f[i]);
            return vae__error(s->err, VAE_EFORMAT, "%s: line %ld, field %zu: %s is %s", s->name,
                              s->line, i + 1, q, why_not(f[i]));
        }
        if (!(v >= 0 && v <= o->csv_scale)) {
            quote(q, sizeof q, f[i]);
            return vae__error(s->err, VAE_EFORMAT, "%s: line %ld, field %zu: %s is outside 0..%d "
                              "(--csv-scale %d)", s->name, s->line, i + 1, q, o->csv_scale,
                              o->csv_scale);
        }
        row[j++] = (uint8_t)floor(v * (255.0 / o->csv_scale) + 0.5);
    }
    s->n++;
    return VAE_OK;
}

/* What the bytes say the text is not (the magic numbers: at the start of
 * the file only); VAE_OK when it may be CSV. */
static int sniff(const char *buf, size_t len, int at_start, const char *name, vae_error *err)
{
    if (at_start && len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8))
        return vae__error(err, VAE_EFORMAT, "%s: a PNG image, not CSV (--data takes a folder of PNG "
                          "images)", name);
    if (at_start && len >= 4 && !buf[0] && !buf[1] && buf[2] == 8)
        return vae__error(err, VAE_EFORMAT, "%s: an IDX file, not CSV (--data takes the directory "
                          "holding it)", name);
    if (memchr(buf, 0, len))
        return vae__error(err, VAE_EFORMAT, "%s: binary data (a NUL byte), not CSV text", name);
    return VAE_OK;
}

static void state_init(csv_state *s, const char *name, const vae_data_options *o, vae_error *err)
{
    memset(s, 0, sizeof *s);
    s->name = name, s->o = o, s->err = err, s->lab = o->csv_label;
    s->budget = vae__memory_budget(o->max_memory);
}

/* The data set of the rows read (rc: how reading went); frees the state. */
static int state_finish(csv_state *s, int rc, int empty, vae_dataset **out)
{
    free(s->f);
    if (rc == VAE_OK && s->n == 0)
        rc = vae__error(s->err, VAE_EFORMAT, "%s: no data rows%s", s->name, empty ? " (empty file)" : "");
    if (rc) {
        free(s->img), free(s->labels);
        return rc;
    }
    uint8_t *shrunk = realloc(s->img, s->n * s->D); // give back the doubling's slack
    if (shrunk) s->img = shrunk;
    return vae__dataset_wrap(s->img, s->labels, s->n, s->c, s->h, s->w, "CSV", s->name, out, s->err);
}

int vae__csv_parse(const char *buf, size_t len, const char *name, const vae_data_options *o,
                   vae_dataset **out, vae_error *err)
{
    *out = NULL;
    int rc = sniff(buf, len, 1, name, err);
    if (rc) return rc;
    csv_state s;
    state_init(&s, name, o, err);
    const char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; // UTF-8 byte order mark
    while (p < end && rc == VAE_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        rc = csv_line(&s, p, le, (size_t)(end - next));
        p = next;
    }
    return state_finish(&s, rc, len == 0, out);
}

/* Bytes a line may take before its newline: CSV_BYTES_PER_FIELD per field
 * seen so far (its commas + 1), and the first line's count once known. */
static size_t line_limit(const csv_state *s, const char *p, const char *e)
{
    size_t k = 1;
    for (; p < e; p++) k += *p == ',';
    if (s->F && k > s->F) k = s->F;
    return k * CSV_BYTES_PER_FIELD + CSV_LINE_SLACK;
}

int vae__open_csv(const char *path, const vae_data_options *o, vae_dataset **out, vae_error *err)
{
    *out = NULL;
    int fd;
    struct stat st;
    int rc = vae__open_read(path, &fd, &st, err);
    if (rc) return rc;
    // through zlib: gzip-compressed CSV is read as such, anything else as is
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    gzbuffer(gz, 1 << 17);
    csv_state s;
    state_init(&s, path, o, err);
    // buf[0, have): text read; a line starts at `at`; lines are parsed as
    // they complete, the unfinished one is moved to the front
    size_t cap = CSV_CHUNK, have = 0, at = 0, total = 0;
    char *buf = malloc(cap);
    int zerr = Z_OK, eof = 0, first = 1;
    if (!buf) rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    while (rc == VAE_OK && !eof) {
        if (at > 0) { // keep the unfinished line only
            memmove(buf, buf + at, have - at);
            have -= at, at = 0;
        }
        if (cap - have < CSV_CHUNK / 2) {
            if (have > line_limit(&s, buf, buf + have)) {
                rc = vae__error(err, VAE_EFORMAT, "%s: line %ld: more than %d bytes per field (a "
                                "runaway line?)", path, s.line + 1, CSV_BYTES_PER_FIELD);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = vae__error(err, VAE_ENOMEM, "%s: out of memory for a line of %zu bytes", path, have);
                break;
            }
            buf = nb, cap *= 2;
        }
        size_t want = cap - have < (1u << 30) ? cap - have : (1u << 30);
        int r = gzread(gz, buf + have, (unsigned)want);
        gzerror(gz, &zerr);
        if (r < 0 || zerr != Z_OK) break;
        eof = r == 0;
        if (r > 0) rc = sniff(buf + have, (size_t)r, first, path, err);
        if (r > 0 && first && (size_t)r >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) at = 3; // byte order mark
        first = first && r <= 0;
        size_t from = have;
        have += (size_t)(r > 0 ? r : 0);
        total += (size_t)(r > 0 ? r : 0);
        // a raw file's remaining bytes bound the rows still to come
        uint64_t read_so_far = gzdirect(gz) ? (uint64_t)gzoffset(gz) : 0;
        for (char *nl; rc == VAE_OK && (nl = memchr(buf + from, '\n', have - from));) {
            size_t left = gzdirect(gz) && (uint64_t)st.st_size >= read_so_far
                              ? (size_t)(st.st_size - read_so_far) + (have - (size_t)(nl + 1 - buf))
                              : SIZE_MAX;
            rc = csv_line(&s, buf + at, nl, left);
            at = (size_t)(nl + 1 - buf);
            from = at;
        }
        if (rc == VAE_OK && eof && at < have) rc = csv_line(&s, buf + at, buf + have, 0); // no final newline
    }
    int cz = gzclose_r(gz);
    if (!rc && (zerr != Z_OK || cz != Z_OK))
        rc = vae__error(err, VAE_EFORMAT, "%s: %s", path,
                        zerr == Z_ERRNO || cz == Z_ERRNO ? "read error"
                        : zerr == Z_BUF_ERROR || cz == Z_BUF_ERROR ? "truncated gzip stream"
                                                                    : "corrupt gzip data");
    free(buf);
    return state_finish(&s, rc, total == 0, out);
}
