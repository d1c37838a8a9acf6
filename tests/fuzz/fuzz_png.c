/* fuzz_png.c - libFuzzer target: the PNG probe and decoder (libpng with our
 * limits and normalisation) and the resampler on arbitrary bytes. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/io.h"

static void check_error(int rc, const vae_error *err, const char *what)
{
    if (rc > 0 || err->code != rc || !err->msg[0] || !memchr(err->msg, 0, sizeof err->msg))
        fuzz_die("%s: status %d without a matching message", what, rc);
    if (!strstr(err->msg, "fuzz.png")) fuzz_die("%s: message does not name the file: %s", what, err->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    uint32_t pw = 0, ph = 0, w = 0, h = 0;
    int pc = 0;
    vae_error err = {0, ""};
    int prc = vae__png_probe(in, size, "fuzz.png", &pw, &ph, &pc, &err);
    if (prc != VAE_OK) check_error(prc, &err, "probe");
    else if (pw < 1 || ph < 1 || pw > VAE_MAX_SIDE || ph > VAE_MAX_SIDE || (pc != 1 && pc != 3))
        fuzz_die("probe: %ux%u, %d channels", (unsigned)pw, (unsigned)ph, pc);
    for (int c = 1; c <= 3; c += 2) {
        uint8_t *pix = (uint8_t *)(uintptr_t)1;
        int rc = vae__png_decode(in, size, "fuzz.png", c, &pix, &w, &h, &err);
        if (rc != VAE_OK) {
            check_error(rc, &err, "decode");
            if (pix) fuzz_die("decode: pixels on failure");
            continue;
        }
        if (prc != VAE_OK) fuzz_die("decoded what the probe refused: %s", err.msg);
        if (w != pw || h != ph) fuzz_die("decode %ux%u, probe %ux%u", (unsigned)w, (unsigned)h, (unsigned)pw, (unsigned)ph);
        if (c == 1 && pc != 1) fuzz_die("a colour image decoded as grey");
        /* resample to a size picked by the data: both filters, both directions */
        int dw = 1 + in[size - 1] % 9, dh = 1 + in[size - 2] % 9;
        uint8_t *out = malloc((size_t)dw * dh * c);
        if (!out || vae__resize_u8(pix, (int)w, (int)h, c, out, dw, dh)) fuzz_die("resize");
        volatile uint8_t sink = (uint8_t)(pix[0] ^ pix[(size_t)w * h * c - 1] ^ out[dw * dh * c - 1]);
        (void)sink;
        free(out);
        free(pix);
    }
    return 0;
}
