/* test_idx.c - the IDX reader and the MNIST-layout dataset on good and bad files. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io.h"
#include "test.h"

static char tmpdir[] = "/tmp/vae_test_idx.XXXXXX";
static char made[128][256]; /* everything created, removed in reverse order */
static int n_made;

static const char *tpath(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void note(const char *path)
{
    for (int i = 0; i < n_made; i++)
        if (!strcmp(made[i], path)) return;
    if (n_made < 128) snprintf(made[n_made++], sizeof made[0], "%s", path);
}

static const char *write_raw(const char *name, const void *bytes, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return p;
    CHECK_EQ(fwrite(bytes, 1, len, f), len);
    fclose(f);
    note(p);
    return p;
}

/* gzip bytes of one member, via zlib's gz* writer through a scratch file */
static uint8_t *gz_bytes(const void *bytes, size_t len, size_t *out_len)
{
    const char *p = tpath("scratch.gz");
    gzFile g = gzopen(p, "wb9");
    CHECK(g != NULL);
    if (len) CHECK_EQ(gzwrite(g, bytes, (unsigned)len), len);
    CHECK_EQ(gzclose(g), Z_OK);
    note(p);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n);
    CHECK_EQ(fread(b, 1, (size_t)n, f), n);
    fclose(f);
    *out_len = (size_t)n;
    return b;
}

static const char *write_gz(const char *name, const void *bytes, size_t len)
{
    size_t n;
    uint8_t *b = gz_bytes(bytes, len, &n);
    const char *p = write_raw(name, b, n);
    free(b);
    return p;
}

/* An IDX image: magic 00 00 type rank, big-endian dims, then len payload bytes. */
static uint8_t *idx_bytes(int type, int rank, const uint32_t *dims, const uint8_t *payload,
                          size_t len, size_t *out_len)
{
    size_t h = 4 + 4 * (size_t)rank;
    uint8_t *b = malloc(h + len + 1);
    b[0] = 0, b[1] = 0, b[2] = (uint8_t)type, b[3] = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    if (len) memcpy(b + h, payload, len);
    *out_len = h + len;
    return b;
}

static const char *write_idx(const char *name, int gz, int type, int rank, const uint32_t *dims,
                             const uint8_t *payload, size_t len)
{
    size_t n;
    uint8_t *b = idx_bytes(type, rank, dims, payload, len, &n);
    const char *p = gz ? write_gz(name, b, n) : write_raw(name, b, n);
    free(b);
    return p;
}

static uint8_t sentinel;

/* A bad file: the right code, one line that starts with the path and holds
 * `needle`, and the caller's outputs untouched. */
static void expect_fail(const char *path, int ndim, int code, const char *needle)
{
    uint8_t *data = &sentinel;
    uint32_t dims[4] = {7, 7, 7, 7};
    vae_error err = {0, ""};
    int rc = vae__idx_read_u8(path, ndim, &data, dims, &err);
    CHECK_EQ(rc, code);
    CHECK_EQ(err.code, code);
    CHECK(err.msg[0] != 0);
    CHECK(strncmp(err.msg, path, strlen(path)) == 0);
    CHECK(strchr(err.msg, '\n') == NULL);
    if (needle && !strstr(err.msg, needle)) {
        CHECK(strstr(err.msg, needle) != NULL);
        fprintf(stderr, "  message was: %s\n", err.msg);
    }
    CHECK(data == &sentinel);
    CHECK(dims[0] == 7 && dims[1] == 7 && dims[2] == 7 && dims[3] == 7);
}

static void expect_ok(const char *path, int ndim, const uint32_t *want_dims, const uint8_t *want,
                      size_t len)
{
    uint8_t *data = NULL;
    uint32_t dims[4] = {0};
    vae_error err = {0, ""};
    int rc = vae__idx_read_u8(path, ndim, &data, dims, &err);
    CHECK_EQ(rc, VAE_OK);
    if (rc != VAE_OK) fprintf(stderr, "  %s\n", err.msg);
    for (int i = 0; i < ndim; i++) CHECK_EQ(dims[i], want_dims[i]);
    CHECK(data != NULL && memcmp(data, want, len) == 0);
    free(data);
}

static void test_idx_files(void)
{
    uint8_t px[5000];
    uint32_t s = 12345; /* noise, so the compressed stream is long enough to cut */
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    const uint32_t d3[3] = {50, 10, 10}, d1[1] = {50};
    size_t n, gzn;
    uint8_t *img = idx_bytes(8, 3, d3, px, sizeof px, &n);

    expect_ok(write_idx("ok-idx3-ubyte", 0, 8, 3, d3, px, sizeof px), 3, d3, px, sizeof px);
    expect_ok(write_idx("ok-idx3-ubyte.gz", 1, 8, 3, d3, px, sizeof px), 3, d3, px, sizeof px);
    expect_ok(write_idx("ok-idx1-ubyte", 0, 8, 1, d1, px, 50), 1, d1, px, 50);
    /* gzip content in a file not named .gz is still the same data */
    expect_ok(write_idx("ok-gz-named-raw", 1, 8, 1, d1, px, 50), 1, d1, px, 50);

    /* two concatenated gzip members are accepted (policy) */
    uint8_t *g1 = gz_bytes(img, 1000, &gzn), *both = malloc(gzn + 8000);
    memcpy(both, g1, gzn);
    size_t g2n;
    uint8_t *g2 = gz_bytes(img + 1000, n - 1000, &g2n);
    memcpy(both + gzn, g2, g2n);
    expect_ok(write_raw("two-members.gz", both, gzn + g2n), 3, d3, px, sizeof px);
    free(g1);
    free(g2);
    free(both);

    expect_fail(tpath("no-such-file"), 3, VAE_ENOENT, "no-such-file");
    expect_fail(tmpdir, 3, VAE_EIO, "regular file");
    expect_fail(write_raw("empty", "", 0), 3, VAE_EFORMAT, "header");
    expect_fail(write_gz("empty.gz", "", 0), 3, VAE_EFORMAT, "header");
    expect_fail(write_raw("three", "\0\0\x08", 3), 3, VAE_EFORMAT, "header");
    expect_fail(write_raw("cut-in-dims", img, 10), 3, VAE_EFORMAT, "truncated header");
    expect_fail(write_raw("bad-magic", "\x01\x02\x08\x03\0\0\0\1\0\0\0\1\0\0\0\1\0", 17), 3,
                VAE_EFORMAT, "magic");
    expect_fail(write_raw("gz-junk", "\x1F\x8B\x08\0 this is not deflate data", 30), 3,
                VAE_EFORMAT, "gzip");
    size_t dn;
    uint8_t *dbl = gz_bytes(img, n, &dn);
    expect_fail(write_gz("double.gz", dbl, dn), 3, VAE_EFORMAT, "double-compressed");
    free(dbl);
    const char *html = "<!DOCTYPE html><html><body>404 Not Found</body></html>\n";
    expect_fail(write_raw("page.gz", html, strlen(html)), 3, VAE_EFORMAT, "HTML");
    expect_fail(write_gz("page2.gz", html, strlen(html)), 3, VAE_EFORMAT, "HTML");
    expect_fail(write_raw("json", "{\"error\": 1}", 12), 3, VAE_EFORMAT, "JSON");

    expect_fail(write_idx("f32", 0, 0x0D, 3, d3, px, sizeof px), 3, VAE_EUNSUPPORTED, "float32");
    expect_fail(write_idx("i16", 0, 0x0B, 3, d3, px, sizeof px), 3, VAE_EUNSUPPORTED, "0x0B");
    expect_fail(write_idx("t0a", 0, 0x0A, 3, d3, px, sizeof px), 3, VAE_EFORMAT, "0x0A");
    expect_fail(write_idx("tff", 0, 0xFF, 3, d3, px, sizeof px), 3, VAE_EFORMAT, "0xFF");
    const char *lab = write_idx("labels-as-images", 0, 8, 1, d1, px, 50);
    expect_fail(lab, 3, VAE_EFORMAT, "expected 3 dimensions");
    expect_fail(write_idx("rank0", 0, 8, 0, d3, px, 0), 3, VAE_EFORMAT, "found 0");
    expect_fail(write_raw("rank255", "\0\0\x08\xFF\0\0\0\1", 8), 3, VAE_EFORMAT, "found 255");
    const uint32_t z[3] = {50, 0, 10};
    expect_fail(write_idx("zero-dim", 0, 8, 3, z, px, 0), 3, VAE_EFORMAT, "is 0");
    const uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    expect_fail(write_idx("huge", 0, 8, 3, huge, px, 16), 3, VAE_EFORMAT, "limit");
    const uint32_t cap[3] = {65536, 65536, 2}; /* 2^33: no overflow, over the cap */
    expect_fail(write_idx("over-cap.gz", 1, 8, 3, cap, px, 16), 3, VAE_EFORMAT, "limit");
    /* under the cap but a lie: must fail without allocating the ~4 GB declared */
    const uint32_t lie[3] = {60000, 256, 256};
    expect_fail(write_idx("lie.gz", 1, 8, 3, lie, px, sizeof px), 3, VAE_EFORMAT,
                "truncated gzip stream: expected 3932160000 bytes of data, got 5000");
    expect_fail(write_idx("lie-raw", 0, 8, 3, lie, px, sizeof px), 3, VAE_EFORMAT,
                "truncated: expected 3932160000 bytes of data, got 5000");

    expect_fail(write_raw("short", img, n - 1), 3, VAE_EFORMAT,
                "truncated: expected 5000 bytes of data, got 4999");
    uint8_t *longer = malloc(n + 3);
    memcpy(longer, img, n);
    memcpy(longer + n, "abc", 3);
    expect_fail(write_raw("long", longer, n + 3), 3, VAE_EFORMAT, "3 trailing bytes");
    expect_fail(write_gz("long.gz", longer, n + 3), 3, VAE_EFORMAT, "trailing bytes");
    free(longer);

    /* gzip damage: cut trailer, cut mid-stream, flipped data, flipped CRC */
    uint8_t *gz = gz_bytes(img, n, &gzn), *bad = malloc(gzn);
    expect_fail(write_raw("cut10.gz", gz, gzn - 10), 3, VAE_EFORMAT, "truncated");
    expect_fail(write_raw("cut4.gz", gz, gzn - 4), 3, VAE_EFORMAT, "truncated");
    expect_fail(write_raw("cut-half.gz", gz, gzn / 2), 3, VAE_EFORMAT, "truncated");
    memcpy(bad, gz, gzn);
    for (size_t i = gzn / 2; i < gzn / 2 + 8; i++) bad[i] ^= 0x5A;
    expect_fail(write_raw("flipped.gz", bad, gzn), 3, VAE_EFORMAT, "gzip");
    memcpy(bad, gz, gzn);
    bad[gzn - 6] ^= 1; /* inside the CRC32 trailer */
    expect_fail(write_raw("bad-crc.gz", bad, gzn), 3, VAE_EFORMAT, "gzip");
    free(bad);
    free(gz);

    uint8_t *data = NULL;
    uint32_t dims[4];
    CHECK_EQ(vae__idx_read_u8(tpath("ok-idx3-ubyte"), 0, &data, dims, NULL), VAE_EINVAL);
    CHECK_EQ(vae__idx_read_u8(tpath("ok-idx3-ubyte"), 5, &data, dims, NULL), VAE_EINVAL);
    CHECK(data == NULL);
    free(img);
}

static void mkdir_t(const char *name)
{
    CHECK_EQ(mkdir(tpath(name), 0755), 0);
    note(tpath(name));
}

static void expect_open_fail(const char *dir, int code, const char *needle)
{
    vae_dataset *ds = NULL;
    vae_error err = {0, ""};
    CHECK_EQ(vae_dataset_open_mnist(dir, VAE_SPLIT_TRAIN, &ds, &err), code);
    CHECK_EQ(err.code, code);
    CHECK(ds == NULL);
    CHECK(strchr(err.msg, '\n') == NULL);
    if (!strstr(err.msg, needle)) {
        CHECK(strstr(err.msg, needle) != NULL);
        fprintf(stderr, "  message was: %s\n", err.msg);
    }
}

static void test_dataset(const char *data_dir)
{
    /* three 2x2 images; image 1 is all mid-grey for the Bernoulli mean */
    const uint8_t px[12] = {0, 255, 128, 1, 128, 128, 128, 128, 10, 20, 30, 40};
    const uint8_t labs[3] = {0, 9, 255};
    const uint32_t d3[3] = {3, 2, 2}, d1[1] = {3}, d1bad[1] = {2};

    expect_open_fail(tpath("nowhere"), VAE_ENOENT, "apt-get install dataset-fashion-mnist");
    mkdir_t("emptydir");
    expect_open_fail(tpath("emptydir"), VAE_ENOENT, "no train-images-idx3-ubyte[.gz] here");
    expect_open_fail(write_raw("plain-file", "x", 1), VAE_EINVAL, "not a directory");

    mkdir_t("mismatch");
    write_idx("mismatch/train-images-idx3-ubyte", 0, 8, 3, d3, px, 12);
    const char *lp = write_idx("mismatch/train-labels-idx1-ubyte.gz", 1, 8, 1, d1bad, labs, 2);
    expect_open_fail(tpath("mismatch"), VAE_ESHAPE, "2 labels but 3 images");
    expect_open_fail(tpath("mismatch"), VAE_ESHAPE, lp);

    mkdir_t("badlabels");
    write_idx("badlabels/train-images-idx3-ubyte.gz", 1, 8, 3, d3, px, 12);
    write_raw("badlabels/train-labels-idx1-ubyte", "<html>", 6);
    expect_open_fail(tpath("badlabels"), VAE_EFORMAT, "HTML");

    mkdir_t("wide");
    const uint32_t wide[3] = {1, 1, 5000};
    uint8_t *row = calloc(5000, 1);
    write_idx("wide/train-images-idx3-ubyte", 0, 8, 3, wide, row, 5000);
    free(row);
    expect_open_fail(tpath("wide"), VAE_EUNSUPPORTED, "exceed the 4096x4096 limit");

    mkdir_t("nolabels");
    const char *ip = write_idx("nolabels/train-images-idx3-ubyte.gz", 1, 8, 3, d3, px, 12);
    vae_dataset *ds = NULL;
    vae_error err = {0, ""};
    CHECK_EQ(vae_dataset_open_mnist(tpath("nolabels/"), VAE_SPLIT_TRAIN, &ds, &err), VAE_OK);
    CHECK(ds && strcmp(vae_dataset_path(ds), ip) == 0); /* no doubled slash */
    vae_dataset_free(ds);
    ds = NULL;
    CHECK_EQ(vae_dataset_open_mnist(tpath("nolabels"), VAE_SPLIT_TRAIN, &ds, &err), VAE_OK);
    CHECK(ds != NULL);
    if (!ds) return;
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    CHECK(c == 1 && h == 2 && w == 2);
    CHECK_EQ(vae_dataset_count(ds), 3);
    CHECK(vae_dataset_labels(ds) == NULL);
    CHECK(strcmp(vae_dataset_path(ds), ip) == 0);
    CHECK(memcmp(vae_dataset_images(ds), px, 12) == 0);
    vae_dataset_free(ds);

    mkdir_t("full"); /* raw labels next to gzip images; any u8 is a label here */
    write_idx("full/train-images-idx3-ubyte.gz", 1, 8, 3, d3, px, 12);
    write_idx("full/train-labels-idx1-ubyte", 0, 8, 1, d1, labs, 3);
    ds = NULL;
    CHECK_EQ(vae_dataset_open_mnist(tpath("full"), VAE_SPLIT_TRAIN, &ds, &err), VAE_OK);
    CHECK(ds && vae_dataset_labels(ds) && memcmp(vae_dataset_labels(ds), labs, 3) == 0);
    vae_dataset_free(ds);
    ds = NULL;
    CHECK_EQ(vae_dataset_open_mnist(tpath("nolabels"), VAE_SPLIT_TRAIN, &ds, &err), VAE_OK);
    if (!ds) return;
    vae_dataset *none = NULL;
    CHECK_EQ(vae_dataset_open_mnist(tpath("nolabels"), VAE_SPLIT_TEST, &none, &err), VAE_ENOENT);
    CHECK(strstr(err.msg, "t10k-images") != NULL);

    float out[3 * 4], out2[3 * 4];
    const uint32_t idx[3] = {0, 2, 1};
    vae_dataset_batch(ds, idx, 3, VAE_BINARIZE_NONE, 0.5f, NULL, out);
    CHECK(out[0] == 0.0f && out[1] == 1.0f);
    CHECK_NEAR(out[2], 128.0 / 255.0, 1e-7);
    CHECK_NEAR(out[4], 10.0 / 255.0, 1e-7); /* row 1 is image 2 */
    CHECK_NEAR(out[8], 128.0 / 255.0, 1e-7);
    vae_dataset_batch(ds, idx, 2, VAE_BINARIZE_THRESHOLD, 0.5f, NULL, out);
    CHECK(out[0] == 0 && out[1] == 1 && out[2] == 1 && out[3] == 0);
    CHECK(out[4] == 0 && out[7] == 0);

    vae_rng r1, r2, r3;
    vae_rng_seed(&r1, 42);
    vae_rng_seed(&r2, 42);
    vae_rng_seed(&r3, 42);
    vae_dataset_batch(ds, idx, 3, VAE_BINARIZE_DYNAMIC, 0.5f, &r1, out);
    vae_dataset_batch(ds, idx, 3, VAE_BINARIZE_DYNAMIC, 0.5f, &r2, out2);
    CHECK(memcmp(out, out2, sizeof out) == 0);
    int same = 1, binary = 1;
    for (int i = 0; i < 12; i++) {
        const uint8_t v = px[idx[i / 4] * 4 + i % 4];
        same &= out[i] == (vae_rng_uniform(&r3) < v / 255.0 ? 1.0f : 0.0f);
        binary &= out[i] == 0.0f || out[i] == 1.0f;
    }
    CHECK(same && binary);
    CHECK(out[0] == 0.0f && out[1] == 1.0f);
    double sum = 0;
    const uint32_t grey = 1;
    for (int k = 0; k < 2000; k++) {
        vae_dataset_batch(ds, &grey, 1, VAE_BINARIZE_DYNAMIC, 0.5f, &r1, out);
        for (int i = 0; i < 4; i++) sum += out[i];
    }
    CHECK_NEAR(sum / 8000.0, 128.0 / 255.0, 0.03);
    vae_dataset_free(ds);
    vae_dataset_free(NULL);

    /* the subset the repository ships */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fmnist-small", data_dir);
    const size_t want[2] = {2000, 500};
    for (int split = 0; split < 2; split++) {
        ds = NULL;
        CHECK_EQ(vae_dataset_open_mnist(dir, (vae_split)split, &ds, &err), VAE_OK);
        if (!ds) {
            fprintf(stderr, "  %s\n", err.msg);
            continue;
        }
        vae_dataset_shape(ds, &c, &h, &w);
        CHECK(c == 1 && h == 28 && w == 28);
        CHECK_EQ(vae_dataset_count(ds), want[split]);
        const uint8_t *l = vae_dataset_labels(ds);
        CHECK(l != NULL);
        int ok = 1, maxpx = 0;
        for (size_t i = 0; l && i < want[split]; i++) ok &= l[i] < 10;
        for (size_t i = 0; i < want[split] * 784; i++)
            if (vae_dataset_images(ds)[i] > maxpx) maxpx = vae_dataset_images(ds)[i];
        CHECK(ok);
        CHECK_EQ(maxpx, 255);
        vae_dataset_free(ds);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTS_DATA_DIR\n", argv[0]);
        return 2;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_idx_files();
    test_dataset(argv[1]);
    for (int i = n_made - 1; i >= 0; i--) CHECK_EQ(remove(made[i]), 0);
    CHECK_EQ(rmdir(tmpdir), 0);
    return TEST_REPORT();
}
