/* csv.c - a strict CSV reader for images: one image per row, comma-separated
 * decimal numbers, an optional label column and header row. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "io/io.h"

#define CSV_MAX_TEXT ((size_t)1 << 34) /* 16 GiB of (decompressed) text */
#define CSV_MAX_FIELDS (3 * VAE_MAX_SIDE * VAE_MAX_SIDE + 1)

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

int vae__csv_parse(const char *buf, size_t len, const char *name, const vae_data_options *o,
                   vae_dataset **out, vae_error *err)
{
    *out = NULL;
    const char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; // UTF-8 byte order mark
    if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8))
        return vae__error(err, VAE_EFORMAT, "%s: a PNG image, not CSV (--data takes a folder of PNG "
                          "images)", name);
    if (len >= 4 && !buf[0] && !buf[1] && buf[2] == 8)
        return vae__error(err, VAE_EFORMAT, "%s: an IDX file, not CSV (--data takes the directory "
                          "holding it)", name);
    if (memchr(buf, 0, len))
        return vae__error(err, VAE_EFORMAT, "%s: binary data (a NUL byte), not CSV text", name);

    span *f = NULL;
    size_t fcap = 0, F = 0, D = 0, n = 0, cap = 0;
    int lab = o->csv_label, c = 0, h = 0, w = 0, rc = VAE_OK;
    uint8_t *img = NULL, *labels = NULL;
    long line = 0, ref_line = 0, blank = 0;
    char q[40];
    while (p < end && rc == VAE_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        line++;
        if (le > p && le[-1] == '\r') le--;
        const char *b = p;
        while (b < le && (*b == ' ' || *b == '\t')) b++;
        if (b == le) {
            // nothing but blanks: allowed only at the end of the file
            blank = blank ? blank : line;
            p = next;
            continue;
        }
        if (blank) {
            rc = vae__error(err, VAE_EFORMAT, "%s: line %ld: an empty line inside the data", name, blank);
            break;
        }
        if (!f) { // the first line: how many fields, header or not
            size_t k = 1;
            for (const char *s = p; s < le; s++) k += *s == ',';
            if (k > CSV_MAX_FIELDS) {
                rc = vae__error(err, VAE_EUNSUPPORTED, "%s: line %ld: %zu fields, more than the limit of %d",
                                name, line, k, CSV_MAX_FIELDS);
                break;
            }
            fcap = k;
            if (!(f = malloc(fcap * sizeof *f))) {
                rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", name);
                break;
            }
            F = split_line(p, le, f, fcap);
            int header = o->csv_header;
            if (header < 0) {
                header = 0;
                for (size_t i = 0; i < F; i++) {
                    double v;
                    if (parse_number(f[i], &v)) header = 1;
                }
            }
            size_t nlab = lab != VAE_CSV_LABEL_NONE;
            if (F <= nlab) {
                rc = vae__error(err, VAE_EFORMAT, "%s: line %ld: %zu field(s): no pixel values", name, line, F);
                break;
            }
            D = F - nlab;
            if (o->channels) {
                c = o->channels, h = o->height, w = o->width;
                if ((size_t)c * h * w != D) {
                    rc = vae__error(err, VAE_ESHAPE, "%s: rows hold %zu pixel values, but the shape "
                                    "%dx%dx%d needs %zu", name, D, c, h, w, (size_t)c * h * w);
                    break;
                }
            } else {
                size_t s = (size_t)(sqrt((double)D) + 0.5), s1 = (size_t)(sqrt(D - 1.0) + 0.5);
                if (s * s != D || s > VAE_MAX_SIDE) {
                    // one field more than a square image: most likely a label column
                    int label_col = !nlab && s1 * s1 == D - 1;
                    rc = vae__error(err, VAE_ESHAPE, "%s: rows hold %zu pixel values, not a square "
                                    "grey image; %sgive the shape (--shape CxHxW)", name, D,
                                    label_col ? "is the first or last column a label? (--csv-label "
                                                "first or last), or " : "");
                    break;
                }
                c = 1, h = w = (int)s;
            }
            ref_line = line;
            if (header) {
                p = next;
                continue;
            }
        }
        size_t k = split_line(p, le, f, fcap);
        if (k != F) {
            k = 1; // count them all for the message
            for (const char *s = p; s < le; s++) k += *s == ',';
            rc = vae__error(err, VAE_EFORMAT, "%s: line %ld: %zu fields, but line %ld has %zu (a ragged row)",
                            name, line, k, ref_line, F);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 1024;
            uint8_t *ni = realloc(img, ncap * D);
            if (ni) img = ni;
            uint8_t *nlb = lab ? realloc(labels, ncap) : NULL;
            if (nlb) labels = nlb;
            if (!ni || (lab && !nlb)) {
                rc = vae__error(err, VAE_ENOMEM, "%s: out of memory at line %ld", name, line);
                break;
            }
            cap = ncap;
        }
        uint8_t *row = img + n * D;
        size_t li = lab == VAE_CSV_LABEL_FIRST ? 0 : F - 1;
        for (size_t i = 0, j = 0; i < F; i++) {
            double v;
            if (lab && i == li) {
                const char *s = f[i].s;
                unsigned long L = 0;
                int ok = f[i].e > s && f[i].e - s <= 3;
                for (; ok && s < f[i].e; s++) ok = *s >= '0' && *s <= '9', L = L * 10 + (unsigned long)(*s - '0');
                if (!ok || L > 255) {
                    quote(q, sizeof q, f[i]);
                    rc = vae__error(err, VAE_EFORMAT, "%s: line %ld, field %zu: label %s is not a whole "
                                    "number in 0..255", name, line, i + 1, q);
                    break;
                }
                labels[n] = (uint8_t)L;
                continue;
            }
            if (parse_number(f[i], &v)) {
                quote(q, sizeof q, f[i]);
                rc = vae__error(err, VAE_EFORMAT, "%s: line %ld, field %zu: %s is %s", name, line,
                                i + 1, q, why_not(f[i]));
                break;
            }
            if (!(v >= 0 && v <= o->csv_scale)) {
                quote(q, sizeof q, f[i]);
                rc = vae__error(err, VAE_EFORMAT, "%s: line %ld, field %zu: %s is outside 0..%d "
                                "(--csv-scale %d)", name, line, i + 1, q, o->csv_scale, o->csv_scale);
                break;
            }
            row[j++] = (uint8_t)floor(v * (255.0 / o->csv_scale) + 0.5);
        }
        n++;
        p = next;
    }
    free(f);
    if (rc == VAE_OK && n == 0)
        rc = vae__error(err, VAE_EFORMAT, "%s: no data rows%s", name, len ? "" : " (empty file)");
    if (rc) {
        free(img), free(labels);
        return rc;
    }
    uint8_t *shrunk = realloc(img, n * D); // give back the doubling's slack
    if (shrunk) img = shrunk;
    rc = vae__dataset_wrap(img, labels, n, c, h, w, "CSV", name, out, err);
    return rc;
}

int vae__open_csv(const char *path, const vae_data_options *o, vae_dataset **out, vae_error *err)
{
    *out = NULL;
    // through zlib: gzip-compressed CSV is read as such, anything else as is
    gzFile gz = gzopen(path, "rb");
    if (!gz) return vae__error(err, VAE_EIO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int zerr = Z_OK, rc = VAE_OK;
    while (buf) {
        if (len == cap) {
            if (cap >= CSV_MAX_TEXT) {
                rc = vae__error(err, VAE_EUNSUPPORTED, "%s: more than %zu GiB of text", path, CSV_MAX_TEXT >> 30);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb, cap *= 2;
        }
        size_t want = cap - len < (1u << 30) ? cap - len : (1u << 30);
        int r = gzread(gz, buf + len, (unsigned)want);
        if (r > 0) len += (size_t)r;
        gzerror(gz, &zerr);
        if (r <= 0 || zerr != Z_OK) break;
    }
    int cz = gzclose_r(gz);
    if (!rc && !buf) rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    if (!rc && (zerr != Z_OK || cz != Z_OK))
        rc = vae__error(err, VAE_EFORMAT, "%s: %s", path,
                        zerr == Z_ERRNO || cz == Z_ERRNO ? "read error"
                        : zerr == Z_BUF_ERROR || cz == Z_BUF_ERROR ? "truncated gzip stream"
                                                                    : "corrupt gzip data");
    if (!rc) rc = vae__csv_parse(buf, len, path, o, out, err);
    free(buf);
    return rc;
}
