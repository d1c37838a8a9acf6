/* test_safetensors.c - safetensors round trips, canonical bytes and hostile files. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "test.h"

static char dir[64];

/* dir/name in one of a few rotating buffers, so two can be live at once. */
static const char *at(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK_EQ(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p = NULL;
    long len;
    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)len + 1)) != NULL)
        *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* 8-byte little-endian length `declared`, then hdr, then dlen bytes of data. */
static size_t build(unsigned char *out, uint64_t declared, const char *hdr, size_t hlen, const void *data,
                    size_t dlen)
{
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(declared >> (8 * i));
    memcpy(out + 8, hdr, hlen);
    if (dlen) memcpy(out + 8 + hlen, data, dlen);
    return 8 + hlen + dlen;
}

/* Reads path expecting failure with code, a one-line message holding the
 * path and needle, and no file handed back. */
static void expect_fail(const char *path, int code, const char *needle, const char *what)
{
    vae_error err = {0, ""};
    vae__st_file *f = (vae__st_file *)&err; /* must be reset to NULL */
    int rc = vae__st_read(path, &f, &err);
    CHECK_EQ(rc, code);
    CHECK(f == NULL);
    CHECK_EQ(err.code, code);
    CHECK(strstr(err.msg, path) == err.msg);
    CHECK(strchr(err.msg, '\n') == NULL);
    if (needle && !strstr(err.msg, needle)) {
        test_failures_++;
        fprintf(stderr, "FAILED (%s): message \"%s\" lacks \"%s\"\n", what, err.msg, needle);
    }
    if (rc != code) fprintf(stderr, "  (%s: %s)\n", what, err.msg);
    if (getenv("ST_VERBOSE")) printf("%-28s %s\n", what, err.msg);
    if (rc == VAE_OK) vae__st_free(f);
}

static void test_round_trip(void)
{
    static float scalar[1], vec[7], mat[15], cube[24], deep[1];
    float *all[] = {scalar, vec, mat, cube, deep};
    int sizes[] = {1, 7, 15, 24, 1};
    for (int t = 0; t < 5; t++)
        for (int i = 0; i < sizes[t]; i++) all[t][i] = bits_f(rnd() << 16 ^ rnd());
    /* the awkward values, in place: -0, denormals, extremes, inf, a NaN payload */
    vec[0] = -0.0f;
    vec[1] = bits_f(0x00000001);
    vec[2] = bits_f(0x807fffff);
    vec[3] = FLT_MAX;
    vec[4] = -FLT_MIN;
    vec[5] = bits_f(0x7f800000);
    vec[6] = bits_f(0x7fc12345);
    vae__st_tensor t[6] = {
        {"scalar", 0, {0}, scalar},
        {"vec", 1, {7}, vec},
        {"enc.mat", 2, {3, 5}, mat},
        {"cube", 3, {2, 3, 4}, cube},
        {"empty", 2, {4, 0}, NULL},
        {"z.deep", 8, {1, 1, 1, 1, 1, 1, 1, 1}, deep},
    };
    const char *meta[] = {"format", "vaec-ckpt", "quote \"q\"", "back\\slash", "nl", "line1\nline2\ttab\x01",
                          "unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", "empty", "", NULL};
    vae_error err = {0, ""};
    CHECK_EQ(vae__st_write(at("a.safetensors"), t, 6, meta, &err), VAE_OK);

    vae__st_file *f = NULL;
    CHECK_EQ(vae__st_read(at("a.safetensors"), &f, &err), VAE_OK);
    if (!f) {
        fprintf(stderr, "read failed: %s\n", err.msg);
        return;
    }
    CHECK_EQ(vae__st_count(f), 6);
    for (int i = 0; i < 6; i++) {
        const vae__st_tensor *r = vae__st_find(f, t[i].name);
        CHECK(r != NULL);
        if (!r) continue;
        CHECK(strcmp(r->name, t[i].name) == 0);
        CHECK_EQ(r->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) CHECK_EQ(r->shape[d], t[i].shape[d]);
        CHECK(r->data != NULL);
        CHECK(((uintptr_t)r->data & 3) == 0);
        size_t n = i == 4 ? 0 : (size_t)sizes[i < 4 ? i : 4];
        CHECK(n == 0 || memcmp(r->data, t[i].data, n * 4) == 0);
    }
    /* vae__st_at walks the tensors in name order */
    for (int i = 1; i < vae__st_count(f); i++)
        CHECK(strcmp(vae__st_at(f, i - 1)->name, vae__st_at(f, i)->name) < 0);
    CHECK(vae__st_at(f, -1) == NULL);
    CHECK(vae__st_at(f, 6) == NULL);
    CHECK(vae__st_find(f, "nope") == NULL);
    CHECK(vae__st_find(f, "") == NULL);

    CHECK_EQ(vae__st_meta_count(f), 5);
    for (int i = 0; meta[i]; i += 2) {
        const char *v = vae__st_meta(f, meta[i]);
        CHECK(v != NULL && strcmp(v, meta[i + 1]) == 0);
    }
    CHECK(vae__st_meta(f, "missing") == NULL);
    const char *k = "x", *v = "x";
    vae__st_meta_at(f, 0, &k, &v);
    CHECK(k && v && strcmp(vae__st_meta(f, k), v) == 0);
    vae__st_meta_at(f, 5, &k, &v);
    CHECK(k == NULL && v == NULL);
    vae__st_free(f);
    vae__st_free(NULL);

    /* the same content given in another order gives the same bytes */
    vae__st_tensor rev[6];
    const char *rmeta[11];
    for (int i = 0; i < 6; i++) rev[i] = t[5 - i];
    for (int i = 0; i < 5; i++) rmeta[2 * i] = meta[8 - 2 * i], rmeta[2 * i + 1] = meta[9 - 2 * i];
    rmeta[10] = NULL;
    CHECK_EQ(vae__st_write(at("b.safetensors"), rev, 6, rmeta, &err), VAE_OK);
    size_t na, nb;
    unsigned char *a = slurp(at("a.safetensors"), &na), *b = slurp(at("b.safetensors"), &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0);

    /* the data starts 8-aligned after a header padded with spaces */
    uint64_t hlen = 0;
    for (int i = 0; a && i < 8; i++) hlen |= (uint64_t)a[i] << (8 * i);
    CHECK_EQ((8 + hlen) % 8, 0);
    CHECK(a && a[8] == '{');
    size_t end = 8 + (size_t)hlen;
    while (a && end > 8 && a[end - 1] == ' ') end--;
    CHECK(a && a[end - 1] == '}');
    CHECK(8 + hlen - end < 8);
    CHECK_EQ(na, 8 + hlen + 4 * (1 + 7 + 15 + 24 + 1));
    free(a);
    free(b);
}

/* The exact bytes of a small file: canonical JSON, escapes, little-endian data. */
static void test_exact_bytes(void)
{
    float bv[2] = {1.0f, -2.0f}, av[1] = {0.5f};
    vae__st_tensor t[2] = {{"b", 1, {2}, bv}, {"a", 0, {0}, av}};
    const char *meta[] = {"k", "v\"\n\\", "a", "1", NULL};
    const char *hdr = "{\"__metadata__\":{\"a\":\"1\",\"k\":\"v\\\"\\u000a\\\\\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    unsigned char want[512];
    size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
    char padded[256];
    memcpy(padded, hdr, hl);
    memset(padded + hl, ' ', pad);
    const unsigned char data[12] = {0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
    size_t wn = build(want, hl + pad, padded, hl + pad, data, 12);
    vae_error err = {0, ""};
    CHECK_EQ(vae__st_write(at("exact.safetensors"), t, 2, meta, &err), VAE_OK);
    size_t n;
    unsigned char *got = slurp(at("exact.safetensors"), &n);
    CHECK(got && n == wn && memcmp(got, want, n) == 0);
    free(got);

    /* no metadata, no tensors: the smallest file */
    CHECK_EQ(vae__st_write(at("min.safetensors"), NULL, 0, NULL, &err), VAE_OK);
    got = slurp(at("min.safetensors"), &n);
    CHECK(got && n == 16 && memcmp(got, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(got);

    /* writes are atomic: nothing else is left in the directory */
    DIR *d = opendir(dir);
    struct dirent *de;
    int others = 0;
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !strstr(de->d_name, ".safetensors")) others++;
    if (d) closedir(d);
    CHECK_EQ(others, 0);
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) CHECK(strstr(de->d_name, ".tmp") == NULL);
    if (d) closedir(d);

    /* overwriting a file replaces it */
    CHECK_EQ(vae__st_write(at("exact.safetensors"), NULL, 0, NULL, &err), VAE_OK);
    got = slurp(at("exact.safetensors"), &n);
    CHECK_EQ(n, 16);
    free(got);
}

static void test_write_errors(void)
{
    float x[4] = {0};
    struct {
        const char *what;
        vae__st_tensor t[2];
        int n;
        const char *const *meta;
    } cases[] = {
        {"duplicate", {{"w", 1, {4}, x}, {"w", 1, {4}, x}}, 2, NULL},
        {"null data", {{"w", 1, {4}, NULL}}, 1, NULL},
        {"ndim 9", {{"w", 9, {1, 1, 1, 1, 1, 1, 1, 1}, x}}, 1, NULL},
        {"ndim -1", {{"w", -1, {0}, x}}, 1, NULL},
        {"negative dim", {{"w", 2, {-2, -2}, x}}, 1, NULL},
        {"dim over 2^53", {{"w", 2, {0, (int64_t)1 << 54}, x}}, 1, NULL},
        {"too big", {{"w", 3, {1 << 20, 1 << 20, 1 << 20}, x}}, 1, NULL},
        {"null name", {{NULL, 1, {4}, x}}, 1, NULL},
        {"reserved name", {{"__metadata__", 1, {4}, x}}, 1, NULL},
        {"bad utf-8 name", {{"w\xff", 1, {4}, x}}, 1, NULL},
        {"dup meta", {{"w", 1, {4}, x}}, 1, (const char *const[]){"k", "1", "k", "2", NULL}},
        {"meta without value", {{"w", 1, {4}, x}}, 1, (const char *const[]){"k", NULL}},
        {"bad utf-8 meta", {{"w", 1, {4}, x}}, 1, (const char *const[]){"k", "\xc0\xaf", NULL}},
        {"negative count", {{"w", 1, {4}, x}}, -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vae_error err = {0, ""};
        const char *path = at("werr.safetensors");
        int rc = vae__st_write(path, cases[i].t, cases[i].n, cases[i].meta, &err);
        CHECK_EQ(rc, VAE_EINVAL);
        CHECK(strstr(err.msg, path) == err.msg);
        CHECK(!exists(path));
        if (rc != VAE_EINVAL) fprintf(stderr, "  (write %s: %s)\n", cases[i].what, err.msg);
        if (getenv("ST_VERBOSE")) printf("write %-22s %s\n", cases[i].what, err.msg);
    }
    vae_error err = {0, ""};
    CHECK_EQ(vae__st_write(at("no/such/dir/x.safetensors"), NULL, 0, NULL, &err), VAE_ENOENT);
    CHECK_EQ(vae__st_write(NULL, NULL, 0, NULL, &err), VAE_EINVAL);
    CHECK_EQ(vae__st_write(at("werr.safetensors"), NULL, 0, NULL, NULL), VAE_OK); /* err may be NULL */
    unlink(at("werr.safetensors"));
}

/* Files that must load, from writers less tidy than ours. */
static void test_valid_edge_cases(void)
{
    unsigned char buf[512];
    vae_error err = {0, ""};
    vae__st_file *f = NULL;
    const char *p = at("edge.safetensors");

    write_raw(p, "\x08\0\0\0\0\0\0\0{}      ", 16);
    CHECK_EQ(vae__st_read(p, &f, &err), VAE_OK);
    CHECK_EQ(vae__st_count(f), 0);
    CHECK_EQ(vae__st_meta_count(f), 0);
    CHECK(vae__st_find(f, "x") == NULL);
    vae__st_free(f);

    const char *ws = " \t\r\n{ \"__metadata__\" : { \"a\" : \"b\" } } \n";
    write_raw(p, buf, build(buf, strlen(ws), ws, strlen(ws), NULL, 0));
    CHECK_EQ(vae__st_read(p, &f, &err), VAE_OK);
    CHECK_EQ(vae__st_count(f), 0);
    CHECK(vae__st_meta(f, "a") && strcmp(vae__st_meta(f, "a"), "b") == 0);
    vae__st_free(f);

    /* an odd header length leaves the data unaligned in the file; values are
     * little-endian; key order inside an entry is free; 2^53 is allowed;
     * scalars and zero-size tensors; escapes decode to UTF-8 */
    const char *h = "{\"v\":{\"data_offsets\":[4,12],\"shape\":[2],\"dtype\":\"F32\"},"
                    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,0],\"data_offsets\":[12,12]},"
                    "\"__metadata__\":{\"k\\u00e9\":\"\\ud83d\\ude00 \\\"\\\\\\/\\b\\f\\n\\r\\t\"}}";
    const unsigned char data[12] = {0, 0, 0x20, 0x41, 0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0};
    write_raw(p, buf, build(buf, strlen(h), h, strlen(h), data, 12));
    CHECK(strlen(h) % 4 != 0);
    CHECK_EQ(vae__st_read(p, &f, &err), VAE_OK);
    if (!f) {
        fprintf(stderr, "edge read: %s\n", err.msg);
        return;
    }
    const vae__st_tensor *s = vae__st_find(f, "s"), *v = vae__st_find(f, "v"), *e = vae__st_find(f, "e");
    CHECK(s && s->ndim == 0 && s->data[0] == 10.0f);
    CHECK(v && v->ndim == 1 && v->shape[0] == 2 && v->data[0] == 1.0f && v->data[1] == -2.5f);
    CHECK(e && e->ndim == 2 && e->shape[0] == 9007199254740992LL && e->shape[1] == 0 && e->data != NULL);
    CHECK(vae__st_meta(f, "k\xc3\xa9") && strcmp(vae__st_meta(f, "k\xc3\xa9"), "\xf0\x9f\x98\x80 \"\\/\b\f\n\r\t") == 0);
    vae__st_free(f);
}

typedef struct {
    const char *what, *hdr;
    size_t data; /* zero bytes of data after the header */
    int code;
    const char *needle;
} bad_header;

#define T(name, shape, offs) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static const bad_header bad_headers[] = {
    {"invalid JSON", "{\"a\" 1}", 0, VAE_EFORMAT, "expected ':'"},
    {"array", "[]", 0, VAE_EFORMAT, "not an object"},
    {"number", "5", 0, VAE_EFORMAT, "not an object"},
    {"only spaces", "        ", 0, VAE_EFORMAT, "empty"},
    {"truncated", "{", 0, VAE_EFORMAT, "ends early"},
    {"truncated string", "{\"ab", 0, VAE_EFORMAT, "ends inside the string"},
    {"truncated entry", "{" T("a", "[1]", "[0,4]"), 4, VAE_EFORMAT, "ends early"},
    {"trailing comma", "{\"__metadata__\":{\"a\":\"b\",}}", 0, VAE_EFORMAT, "expected a string"},
    {"missing comma", "{\"__metadata__\":{\"a\":\"b\" \"c\":\"d\"}}", 0, VAE_EFORMAT, "expected ',' or '}'"},
    {"data after object", "{} x", 0, VAE_EFORMAT, "after the object"},
    {"two objects", "{}{}", 0, VAE_EFORMAT, "after the object"},
    {"duplicate tensor", "{" T("a", "[1]", "[0,4]") "," T("a", "[1]", "[4,8]") "}", 8, VAE_EFORMAT,
     "duplicate key \"a\" in the JSON header"},
    {"duplicate escaped", "{" T("a", "[1]", "[0,4]") "," T("\\u0061", "[1]", "[4,8]") "}", 8, VAE_EFORMAT,
     "duplicate key \"a\""},
    {"duplicate metadata", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, VAE_EFORMAT,
     "duplicate key \"k\" in __metadata__"},
    {"duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, VAE_EFORMAT,
     "duplicate key \"__metadata__\""},
    {"duplicate dtype", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     VAE_EFORMAT, "duplicate key \"dtype\" in tensor \"a\""},
    {"metadata value number", "{\"__metadata__\":{\"step\":5}}", 0, VAE_EFORMAT, "value for \"step\" is not a string"},
    {"metadata value null", "{\"__metadata__\":{\"step\":null}}", 0, VAE_EFORMAT, "not a string"},
    {"metadata not object", "{\"__metadata__\":[\"a\"]}", 0, VAE_EFORMAT, "__metadata__ must be an object"},
    {"entry not object", "{\"a\":5}", 0, VAE_EFORMAT, "tensor \"a\": entry must be an object"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, VAE_EFORMAT,
     "unknown dtype \"F33\""},
    {"lower-case dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, VAE_EFORMAT,
     "unknown dtype"},
    {"dtype not string", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, VAE_EFORMAT,
     "dtype must be a string"},
    {"F16", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, VAE_EUNSUPPORTED,
     "tensor \"a\" has dtype F16; only F32 is supported"},
    {"BF16", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6, VAE_EUNSUPPORTED, "BF16"},
    {"F16 malformed", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, VAE_EFORMAT,
     "(4 bytes)"},
    {"F4 half byte", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, VAE_EFORMAT,
     "whole number of bytes"},
    {"negative dim", "{" T("a", "[-1]", "[0,4]") "}", 4, VAE_EFORMAT, "holds -1, not a non-negative integer"},
    {"float dim", "{" T("a", "[16.0]", "[0,64]") "}", 64, VAE_EFORMAT, "holds 16.0"},
    {"exponent dim", "{" T("a", "[1e3]", "[0,4000]") "}", 4000, VAE_EFORMAT, "holds 1e3"},
    {"leading zero", "{" T("a", "[01]", "[0,4]") "}", 4, VAE_EFORMAT, "holds 01, not a"},
    {"lone minus", "{" T("a", "[-]", "[0,4]") "}", 4, VAE_EFORMAT, "holds -, not a"},
    {"string dim", "{" T("a", "[\"1\"]", "[0,4]") "}", 4, VAE_EFORMAT, "shape must be an array of integers"},
    {"shape not array", "{" T("a", "1", "[0,4]") "}", 4, VAE_EFORMAT, "shape must be an array"},
    {"over 2^53", "{" T("a", "[9007199254740993]", "[0,4]") "}", 4, VAE_EFORMAT, "more than 2^53"},
    {"over 2^64", "{" T("a", "[2,18446744073709551616]", "[0,4]") "}", 4, VAE_EFORMAT, "more than 2^53"},
    {"numel overflow", "{" T("a", "[9007199254740992,9007199254740992,4]", "[0,4]") "}", 4, VAE_EFORMAT,
     "overflows"},
    {"9 dims", "{" T("a", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, VAE_EUNSUPPORTED, "more than 8 dimensions"},
    {"3 offsets", "{" T("a", "[1]", "[0,4,8]") "}", 4, VAE_EFORMAT, "exactly 2 entries"},
    {"1 offset", "{" T("a", "[1]", "[4]") "}", 4, VAE_EFORMAT, "exactly 2 entries"},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, VAE_EFORMAT, "missing \"dtype\""},
    {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, VAE_EFORMAT, "missing \"data_offsets\""},
    {"unknown key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"strides\":[1]}}", 4,
     VAE_EFORMAT, "unknown key \"strides\""},
    {"begin > end", "{" T("a", "[1]", "[4,0]") "}", 4, VAE_EFORMAT, "[4,0] end before they begin"},
    {"size != shape", "{" T("x", "[3,2]", "[0,16]") "}", 16, VAE_EFORMAT,
     "tensor \"x\": data_offsets [0,16] do not match shape [3,2] (24 bytes)"},
    {"overlap", "{" T("a", "[4]", "[0,16]") "," T("b", "[4]", "[0,16]") "}", 16, VAE_EFORMAT, "overlap"},
    {"partial overlap", "{" T("a", "[4]", "[0,16]") "," T("b", "[2]", "[8,16]") "}", 16, VAE_EFORMAT, "overlap"},
    {"hole", "{" T("a", "[1]", "[0,4]") "," T("b", "[1]", "[8,12]") "}", 12, VAE_EFORMAT, "hole"},
    {"not from 0", "{" T("a", "[1]", "[8,12]") "}", 12, VAE_EFORMAT, "do not start at 0"},
    {"trailing bytes", "{" T("a", "[1]", "[0,4]") "}", 6, VAE_EFORMAT, "2 trailing bytes after the last tensor"},
    {"polyglot", "{}", 100, VAE_EFORMAT, "100 trailing bytes"},
    {"data short", "{" T("a", "[4]", "[0,16]") "}", 14, VAE_EFORMAT, "truncated"},
    {"no data", "{" T("a", "[1000,1000]", "[0,4000000]") "}", 4, VAE_EFORMAT, "truncated"},
    {"nested shape", "{" T("a", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "[0,4]") "}", 4,
     VAE_EFORMAT, "must be an array of integers"},
    {"nested metadata", "{\"__metadata__\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{}}}}}}}", 0, VAE_EFORMAT,
     "not a string"},
    {"control byte", "{\"__metadata__\":{\"a\":\"x\ty\"}}", 0, VAE_EFORMAT, "control byte 0x09"},
    {"bad escape", "{\"__metadata__\":{\"a\":\"\\x41\"}}", 0, VAE_EFORMAT, "bad escape"},
    {"short \\u", "{\"__metadata__\":{\"a\":\"\\u12\"}}", 0, VAE_EFORMAT, "bad escape"},
    {"escaped NUL", "{\"__metadata__\":{\"a\\u0000b\":\"c\"}}", 0, VAE_EFORMAT, "\\u0000"},
    {"lone high surrogate", "{\"__metadata__\":{\"a\":\"\\ud800x\"}}", 0, VAE_EFORMAT, "unpaired surrogate"},
    {"lone low surrogate", "{\"__metadata__\":{\"a\":\"\\udc00\"}}", 0, VAE_EFORMAT, "unpaired surrogate"},
    {"invalid UTF-8", "{\"__metadata__\":{\"a\":\"\xff\"}}", 0, VAE_EFORMAT, "not valid UTF-8 (byte 0xff"},
    {"overlong UTF-8", "{\"__metadata__\":{\"a\":\"\xc0\xaf\"}}", 0, VAE_EFORMAT, "not valid UTF-8"},
    {"UTF-8 surrogate", "{\"__metadata__\":{\"a\":\"\xed\xa0\x80\"}}", 0, VAE_EFORMAT, "not valid UTF-8"},
    {"cut UTF-8", "{\"__metadata__\":{\"a\":\"\xe2\x9c", 0, VAE_EFORMAT, "not valid UTF-8"},
    {"true literal", "{" T("a", "[true]", "[0,4]") "}", 4, VAE_EFORMAT, "array of integers"},
};

static void test_hostile(void)
{
    unsigned char buf[8192];
    static const unsigned char zeros[4096];
    char p[256]; /* a copy: at() reuses its buffers */
    snprintf(p, sizeof p, "%s", at("bad.safetensors"));

    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        const bad_header *c = &bad_headers[i];
        size_t hl = strlen(c->hdr);
        write_raw(p, buf, build(buf, hl, c->hdr, hl, zeros, c->data));
        expect_fail(p, c->code, c->needle, c->what);
    }

    /* raw framing: sizes and the length field */
    write_raw(p, "", 0);
    expect_fail(p, VAE_EFORMAT, "not a safetensors file (0 bytes", "empty file");
    write_raw(p, "\x02\0\0\0\0\0\0", 7);
    expect_fail(p, VAE_EFORMAT, "7 bytes", "7 bytes");
    write_raw(p, buf, build(buf, 100, "{}        ", 10, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "header length 100 exceeds the file size 18", "length > file");
    write_raw(p, buf, build(buf, 11, "{}        ", 10, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "exceeds the file size", "length = file - 7");
    write_raw(p, buf, build(buf, (uint64_t)1 << 63, "{}", 2, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "header length 9223372036854775808 exceeds the limit", "length 2^63");
    write_raw(p, buf, build(buf, UINT64_MAX, "{}", 2, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "exceeds the limit", "length 2^64-1");
    write_raw(p, buf, build(buf, 100000001, "{}", 2, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "exceeds the limit", "length cap + 1");
    write_raw(p, buf, build(buf, 0, "", 0, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "empty", "length 0");
    write_raw(p, buf, build(buf, 8, "{}\0\0\0\0\0\0", 8, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "NUL byte at offset 2", "NUL padding");
    write_raw(p, buf, build(buf, 10, "{\"a\0\":1}  ", 10, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "NUL byte at offset 3", "NUL in a key");

    /* deep nesting is just a wrong type, never a deep recursion */
    char *deep = malloc(200002);
    if (deep) {
        memset(deep, '[', 100000);
        memset(deep + 100000, ']', 100000);
        unsigned char *big = malloc(200010);
        if (big) {
            write_raw(p, big, build(big, 200000, deep, 200000, NULL, 0));
            expect_fail(p, VAE_EFORMAT, "not an object", "deep arrays");
            memcpy(deep, "{\"__metadata__\":", 16);
            write_raw(p, big, build(big, 200000, deep, 200000, NULL, 0));
            expect_fail(p, VAE_EFORMAT, "__metadata__ must be an object", "deep in metadata");
        }
        free(big);
        free(deep);
    }

    /* not a file at all */
    expect_fail(at("missing.safetensors"), VAE_ENOENT, "cannot open", "missing file");
    expect_fail(at("no/such/dir.safetensors"), VAE_ENOENT, NULL, "missing dir");
    expect_fail(dir, VAE_EIO, "not a regular file", "directory");
    CHECK_EQ(mkfifo(at("fifo"), 0600), 0);
    expect_fail(at("fifo"), VAE_EIO, "not a regular file", "FIFO");
    unlink(at("fifo"));
    vae_error err = {0, ""};
    vae__st_file *f = NULL;
    CHECK_EQ(vae__st_read(p, NULL, &err), VAE_EINVAL);
    CHECK_EQ(vae__st_read(NULL, &f, &err), VAE_EINVAL);
    CHECK_EQ(vae__st_read(at("missing.safetensors"), &f, NULL), VAE_ENOENT); /* err may be NULL */

    /* long and odd names are cut and kept on one line in messages */
    char name[300];
    memset(name, 'n', sizeof name);
    char hdr[400];
    size_t hl = (size_t)snprintf(hdr, sizeof hdr, "{\"%.5s\\n%.200s\":5}", name, name + 6);
    write_raw(p, buf, build(buf, hl, hdr, hl, NULL, 0));
    expect_fail(p, VAE_EFORMAT, "nnnnn?nnn", "long name");
    unlink(p);
}

/* Every prefix of a valid file and random byte flips: never a crash, and
 * every failure carries a message; a cut file never loads. */
static void test_mutations(void)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    vae__st_tensor t[2] = {{"w", 2, {2, 2}, v}, {"b", 1, {2}, v + 4}};
    const char *meta[] = {"step", "12", NULL};
    vae_error err = {0, ""};
    const char *src = at("src.safetensors"), *p = at("mut.safetensors");
    CHECK_EQ(vae__st_write(src, t, 2, meta, &err), VAE_OK);
    size_t n;
    unsigned char *good = slurp(src, &n), *m = malloc(n + 1);
    if (!good || !m) {
        free(good);
        free(m);
        CHECK(0);
        return;
    }
    int cut_ok = 0, flip_fail_bad = 0;
    for (size_t len = 0; len < n; len++) {
        vae__st_file *f = NULL;
        write_raw(p, good, len);
        if (vae__st_read(p, &f, &err) == VAE_OK) cut_ok++;
        vae__st_free(f);
    }
    CHECK_EQ(cut_ok, 0);
    for (int it = 0; it < 3000; it++) {
        memcpy(m, good, n);
        int flips = 1 + (int)(rnd() % 3);
        for (int k = 0; k < flips; k++) m[rnd() % n] = (unsigned char)(rnd() >> 8);
        vae__st_file *f = NULL;
        write_raw(p, m, n);
        int rc = vae__st_read(p, &f, &err);
        if (rc != VAE_OK && (f != NULL || !strstr(err.msg, p) || strchr(err.msg, '\n'))) flip_fail_bad++;
        for (int i = 0; rc == VAE_OK && i < vae__st_count(f); i++) {
            const vae__st_tensor *x = vae__st_at(f, i);
            uint64_t numel = 1;
            for (int d = 0; d < x->ndim; d++) numel *= (uint64_t)x->shape[d];
            volatile float sink = 0;
            for (uint64_t e = 0; e < numel; e++) sink += x->data[e]; /* ASan checks the bounds */
            (void)sink;
        }
        vae__st_free(f);
    }
    CHECK_EQ(flip_fail_bad, 0);
    free(good);
    free(m);
    unlink(p);
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char full[512];
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(full, sizeof full, "%s/%s", path, de->d_name);
        unlink(full);
    }
    if (d) closedir(d);
    rmdir(path);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_st.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_exact_bytes();
    test_write_errors();
    test_valid_edge_cases();
    test_hostile();
    test_mutations();
    remove_dir(dir);
    CHECK(!exists(dir));
    return TEST_REPORT();
}
