/* fuzz_checkpoint.c - libFuzzer target: vae_model_load (safetensors + config and shape checks) and a decode. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "vae.h"

static fuzz_file *file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    file = fuzz_scratch_open("ckpt", ".safetensors");
    vae_set_threads(1); /* one libFuzzer process per core; no thread pools racing it */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    fuzz_file_set(file, in, size);
    vae_model *m = NULL;
    vae_error err = {0, ""};
    int rc = vae_model_load(file->path, 4, &m, &err);
    if (rc != VAE_OK) {
        if (rc > 0 || err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            fuzz_die("status %d without a matching message", rc);
        if (m) fuzz_die("model set on failure");
        return 0;
    }
    /* A loaded model must be usable: decode z = 0 and read every output. */
    const vae_config *c = vae_model_config(m);
    int D = vae_model_input_size(m);
    if (!c || D != c->channels * c->height * c->width) fuzz_die("input size %d disagrees with config", D);
    float *z = calloc((size_t)c->latent, sizeof *z), *out = malloc((size_t)D * sizeof *out);
    if (!z || !out) fuzz_die("out of memory");
    if ((rc = vae_model_decode(m, z, NULL, 1, out)) != VAE_OK) fuzz_die("decode failed: %d %s", rc, vae_model_errmsg(m));
    uint32_t acc = 0;
    for (int i = 0; i < D; i++) {
        uint32_t u;
        memcpy(&u, &out[i], 4);
        acc += u;
    }
    volatile uint32_t sink = acc;
    (void)sink;
    free(z);
    free(out);
    vae_model_free(m);
    return 0;
}
