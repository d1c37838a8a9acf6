/* fuzz_roundtrip.c - libFuzzer target: tensors and metadata from the input -> vae__st_write -> vae__st_read, bit for bit. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/io.h"

/*
 * How the input is taken apart (bytes past its end read as 0):
 *   byte: tensors = b % 5, metadata pairs = (b / 5) % 4
 *   per tensor: name, rank byte (% 9), one byte per dim (% 5, or % 3 past
 *               rank 3), then 4 raw bytes per element (NaN payloads, -0 and
 *               subnormals all come through as they are)
 *   per metadata pair: key, value
 * A string is a length byte (% 12) and that many characters: a byte below
 * 0x80 is itself (NUL becomes '_'; quotes, backslashes and control bytes
 * stay, to exercise escaping), one from 0x80 up takes two more bytes and
 * names any code point but a surrogate, UTF-8 encoded.
 */

#define MAX_T 4
#define MAX_M 3
#define STR_MAX (11 * 4 + 1)

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static unsigned next(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }

static void take_string(reader *r, char *s)
{
    size_t k = 0, len = next(r) % 12;
    for (size_t j = 0; j < len; j++) {
        unsigned c = next(r);
        if (c < 0x80) {
            s[k++] = c ? (char)c : '_';
            continue;
        }
        unsigned cp = ((c & 0x1F) << 16 | next(r) << 8 | next(r)) % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        if (cp == 0) cp = '_';
        if (cp < 0x80) {
            s[k++] = (char)cp;
        } else if (cp < 0x800) {
            s[k++] = (char)(0xC0 | cp >> 6);
            s[k++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s[k++] = (char)(0xE0 | cp >> 12);
            s[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
            s[k++] = (char)(0x80 | (cp & 0x3F));
        } else {
            s[k++] = (char)(0xF0 | cp >> 18);
            s[k++] = (char)(0x80 | (cp >> 12 & 0x3F));
            s[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
            s[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    s[k] = 0;
}

static char dir[4096], path_a[4200], path_b[4200];

static void cleanup(void)
{
    unlink(path_a);
    unlink(path_b);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The writer renames a temporary in the target's folder: give it one of its own. */
    snprintf(dir, sizeof dir, "%s/vae-fuzz-rt-XXXXXX", fuzz_tmpdir());
    if (!mkdtemp(dir)) fuzz_die("mkdtemp %s: %s", dir, strerror(errno));
    snprintf(path_a, sizeof path_a, "%s/a.safetensors", dir);
    snprintf(path_b, sizeof path_b, "%s/b.safetensors", dir);
    atexit(cleanup);
    return 0;
}

/* The whole file, malloc'd. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) fuzz_die("cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n, fp)) > 0;) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    if (!b || ferror(fp)) fuzz_die("cannot read %s", path);
    fclose(fp);
    *len = n;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    reader r = {in, size, 0};
    static char names[MAX_T][STR_MAX], mstr[2 * MAX_M][STR_MAX];
    static float data[MAX_T][256]; /* at most 4^3 elements up to rank 3, 2^8 past it */
    vae__st_tensor t[MAX_T], rev[MAX_T];
    const char *meta[2 * MAX_M + 1], *mrev[2 * MAX_M + 1];

    unsigned b = next(&r);
    int nt = (int)(b % 5), nm = (int)(b / 5 % 4), expect_ok = 1;
    for (int i = 0; i < nt; i++) {
        take_string(&r, names[i]);
        t[i] = (vae__st_tensor){.name = names[i], .ndim = (int)(next(&r) % (VAE_ST_MAX_DIMS + 1)),
                                .data = data[i]};
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)(t[i].shape[d] = next(&r) % (t[i].ndim > 3 ? 3 : 5));
        for (size_t k = 0; k < numel; k++) {
            uint8_t v[4] = {(uint8_t)next(&r), (uint8_t)next(&r), (uint8_t)next(&r), (uint8_t)next(&r)};
            memcpy(&data[i][k], v, 4); /* host order: the writer's job is little-endian on disk */
        }
        /* the writer must refuse these and only these */
        if (!strcmp(names[i], "__metadata__")) expect_ok = 0;
        for (int j = 0; j < i; j++) expect_ok &= strcmp(names[i], names[j]) != 0;
    }
    for (int i = 0; i < nm; i++) {
        take_string(&r, mstr[2 * i]);
        take_string(&r, mstr[2 * i + 1]);
        meta[2 * i] = mstr[2 * i];
        meta[2 * i + 1] = mstr[2 * i + 1];
        for (int j = 0; j < i; j++) expect_ok &= strcmp(mstr[2 * i], mstr[2 * j]) != 0;
    }
    meta[2 * nm] = NULL;

    vae_error err = {0, ""};
    int rc = vae__st_write(path_a, t, nt, nm || (b & 1) ? meta : NULL, &err);
    if (rc != VAE_OK) {
        if (expect_ok) fuzz_die("write failed: %s", err.msg);
        if (rc != VAE_EINVAL) fuzz_die("write refused with %d, not EINVAL: %s", rc, err.msg);
        return 0;
    }
    if (!expect_ok) fuzz_die("write accepted a duplicate or reserved name");

    /* The same content in the opposite order must give the same bytes. */
    for (int i = 0; i < nt; i++) rev[i] = t[nt - 1 - i];
    for (int i = 0; i < nm; i++) {
        mrev[2 * i] = meta[2 * (nm - 1 - i)];
        mrev[2 * i + 1] = meta[2 * (nm - 1 - i) + 1];
    }
    mrev[2 * nm] = NULL;
    if ((rc = vae__st_write(path_b, rev, nt, mrev, &err)) != VAE_OK) fuzz_die("second write failed: %s", err.msg);
    size_t la, lb;
    uint8_t *fa = slurp(path_a, &la), *fb = slurp(path_b, &lb);
    if (la != lb || memcmp(fa, fb, la)) fuzz_die("output depends on the order of tensors or metadata");
    uint64_t hlen = 0;
    for (int i = 0; i < 8 && i < (int)la; i++) hlen |= (uint64_t)fa[i] << (8 * i);
    if (la < 8 || hlen % 8 || hlen > la - 8) fuzz_die("header length %llu not padded to 8", (unsigned long long)hlen);
    free(fa);
    free(fb);

    vae__st_file *f = NULL;
    if ((rc = vae__st_read(path_a, &f, &err)) != VAE_OK) fuzz_die("read back failed: %s", err.msg);
    if (vae__st_count(f) != nt) fuzz_die("%d tensors written, %d read", nt, vae__st_count(f));
    for (int i = 0; i < nt; i++) {
        const vae__st_tensor *g = vae__st_find(f, t[i].name);
        if (!g) fuzz_die("tensor %d lost its name", i);
        if (g->ndim != t[i].ndim || memcmp(g->shape, t[i].shape, sizeof *g->shape * (size_t)g->ndim))
            fuzz_die("tensor %d changed shape", i);
        size_t numel = 1;
        for (int d = 0; d < g->ndim; d++) numel *= (size_t)g->shape[d];
        if (numel && memcmp(g->data, t[i].data, numel * sizeof(float))) fuzz_die("tensor %d changed values", i);
    }
    if (vae__st_meta_count(f) != nm) fuzz_die("%d metadata pairs written, %d read", nm, vae__st_meta_count(f));
    for (int i = 0; i < nm; i++) {
        const char *v = vae__st_meta(f, meta[2 * i]);
        if (!v || strcmp(v, meta[2 * i + 1])) fuzz_die("metadata %d changed", i);
    }
    vae__st_free(f);
    return 0;
}
