/* fuzz_idx.c - libFuzzer target: vae__idx_read_u8 (raw and gzip IDX) on arbitrary file contents. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "io/io.h"

static fuzz_file plain, gz;
static uint8_t *packed; /* the input gzip-compressed, for mode 2 */
static size_t packed_cap;

static void cleanup(void)
{
    fuzz_file_remove(&plain);
    fuzz_file_remove(&gz);
    free(packed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&plain, "idx", "");
    fuzz_file_open(&gz, "idx", ".gz");
    atexit(cleanup);
    return 0;
}

/* Wraps in[0..size) in one gzip member; returns its length. */
static size_t gzip_wrap(const uint8_t *in, size_t size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fuzz_die("deflateInit2");
    size_t need = deflateBound(&zs, (uLong)size);
    if (need > packed_cap) {
        free(packed);
        if (!(packed = malloc(packed_cap = need))) fuzz_die("out of memory");
    }
    zs.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const-clean; it only reads */
    zs.avail_in = (uInt)size;
    zs.next_out = packed;
    zs.avail_out = (uInt)need;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) fuzz_die("deflate");
    size_t n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

/* An independent statement of the format: is c[0..n) a valid rank-ndim IDX of bytes? */
static int valid_idx(const uint8_t *c, size_t n, int ndim)
{
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (n < hlen || c[0] || c[1] || c[2] != 0x08 || c[3] != ndim) return 0;
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *p = c + 4 + 4 * i;
        uint64_t d = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        if (d == 0 || (total *= d) > VAE_IDX_MAX_BYTES) return 0;
    }
    return n - hlen == total;
}

/* Reads the file as rank ndim and checks what the reader promises: an error
 * comes with its code and a message and no data. When the decompressed
 * content is known (content != NULL), the reader must accept exactly the
 * valid files and return their pixel bytes. */
static void read_as(const char *path, int ndim, const uint8_t *content, size_t size)
{
    uint8_t *data = NULL;
    uint32_t dims[4] = {0, 0, 0, 0};
    vae_error err = {0, ""};
    int rc = vae__idx_read_u8(path, ndim, &data, dims, &err);
    int valid = content && valid_idx(content, size, ndim);
    if (rc != VAE_OK) {
        if (rc > 0 || err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            fuzz_die("rank %d: status %d without a matching message", ndim, rc);
        if (data) fuzz_die("rank %d: data set on failure", ndim);
        if (valid) fuzz_die("rank %d: a valid file was refused: %s", ndim, err.msg);
        return;
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i]; /* the reader capped the product */
    if (!data || n == 0) fuzz_die("rank %d: success with no data", ndim);
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (content && (!valid || memcmp(data, content + hlen, (size_t)n) != 0))
        fuzz_die("rank %d: %s file of %zu bytes accepted as %llu data bytes", ndim,
                 valid ? "valid" : "invalid", size, (unsigned long long)n);
    /* touch both ends so ASan checks the buffer really is n bytes */
    volatile uint8_t sink = (uint8_t)(data[0] ^ data[n - 1]);
    (void)sink;
    free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    /* The last byte's low bits pick a mode without being taken out of the
     * file, so seeds stay real IDX (or gzip) files. Bit 0: the name ends in
     * .gz (the reader sniffs content, not names, but in case that changes).
     * Bit 1: the input is gzip-compressed first, so the structured IDX
     * mutations also reach the gzip path (with the content known). */
    unsigned mode = size > 0 ? in[size - 1] & 3 : 0;
    fuzz_file *f = mode & 1 ? &gz : &plain;
    const uint8_t *content = in; /* what the reader will see after any gunzip */
    if (mode & 2) {
        size_t n = gzip_wrap(in, size); /* before reading `packed`: it may move */
        fuzz_file_set(f, packed, n);
    } else {
        fuzz_file_set(f, in, size);
        /* a raw 1F 8B start is gunzipped by zlib: its content is unknown here */
        if (size >= 2 && in[0] == 0x1F && in[1] == 0x8B) content = NULL;
    }
    read_as(f->path, 3, content, size); /* images */
    read_as(f->path, 1, content, size); /* labels */
    if (size >= 4 && (in[3] == 2 || in[3] == 4)) read_as(f->path, in[3], content, size);
    return 0;
}
