/* fuzz_safetensors.c - libFuzzer target: vae__st_read on arbitrary file contents. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/io.h"

static fuzz_file *file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    file = fuzz_scratch_open("st", ".safetensors");
    return 0;
}

/* Elements of a shape the reader accepted (it checked the product). */
static uint64_t numel(const vae__st_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    fuzz_file_set(file, in, size);
    vae__st_file *f = NULL;
    vae_error err = {0, ""};
    int rc = vae__st_read(file->path, &f, &err);
    if (rc != VAE_OK) {
        if (rc > 0 || err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            fuzz_die("status %d without a matching message", rc);
        if (f) fuzz_die("handle set on failure");
        return 0;
    }
    /* Read every byte the handle hands out, so ASan sees any pointer that
     * strays outside the file's buffers, and check the promises the API makes:
     * tensors sorted by unique name, find() agreeing with at(), the data
     * tiling the file (sum of sizes == bytes after the header). */
    uint32_t acc = 0;
    uint64_t bytes = 0, hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)in[i] << (8 * i);
    int n = vae__st_count(f);
    for (int i = 0; i < n; i++) {
        const vae__st_tensor *t = vae__st_at(f, i);
        if (!t || !t->name || t->ndim < 0 || t->ndim > VAE_ST_MAX_DIMS) fuzz_die("bad tensor %d", i);
        if (i > 0 && strcmp(vae__st_at(f, i - 1)->name, t->name) >= 0)
            fuzz_die("tensors not sorted by unique name at %d", i);
        if (vae__st_find(f, t->name) != t) fuzz_die("find disagrees with at for tensor %d", i);
        acc += (uint32_t)strlen(t->name);
        uint64_t k = numel(t);
        for (uint64_t j = 0; j < k; j++) {
            uint32_t u;
            memcpy(&u, &t->data[j], 4);
            acc += u;
        }
        bytes += 4 * k;
    }
    if (vae__st_at(f, n) || vae__st_at(f, -1)) fuzz_die("at() out of range returned a tensor");
    if (8 + hlen + bytes != size) fuzz_die("tensors take %llu bytes of %zu", (unsigned long long)bytes, size);
    int nm = vae__st_meta_count(f);
    for (int i = 0; i < nm; i++) {
        const char *k, *v;
        vae__st_meta_at(f, i, &k, &v);
        if (!k || !v) fuzz_die("metadata %d missing", i);
        if (vae__st_meta(f, k) != v) fuzz_die("meta() disagrees with meta_at() for %d", i);
        acc += (uint32_t)(strlen(k) + strlen(v));
    }
    volatile uint32_t sink = acc;
    (void)sink;
    vae__st_free(f);
    return 0;
}
