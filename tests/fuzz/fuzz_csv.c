/* fuzz_csv.c - libFuzzer target: the CSV image parser (vae__csv_parse) on arbitrary text. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    /* The first byte picks the options, so seeds are "option byte + CSV". */
    if (size < 1) return 0;
    unsigned m = in[0];
    vae_data_options o;
    vae_data_options_default(&o);
    o.csv_label = (int)(m % 3);
    o.csv_header = (int)((m / 3) % 3) - 1;
    o.csv_scale = m & 0x20 ? 1 : 255;
    if (m & 0x40) o.channels = 3, o.height = 1 + (m >> 7), o.width = 2; // 3x1x2 or 3x2x2
    /* a copy without a terminating NUL: the parser must respect len */
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text) fuzz_die("out of memory");
    memcpy(text, in + 1, len);
    vae_dataset *ds = (vae_dataset *)(uintptr_t)1; /* must be set to NULL on failure */
    vae_error err = {0, ""};
    int rc = vae__csv_parse(text, len, "fuzz.csv", &o, &ds, &err);
    if (rc != VAE_OK) {
        if (rc > 0 || err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            fuzz_die("status %d without a matching message", rc);
        if (ds) fuzz_die("a data set on failure");
        if (!strstr(err.msg, "fuzz.csv")) fuzz_die("message does not name the file: %s", err.msg);
        free(text);
        return 0;
    }
    int c, h, w;
    vae_dataset_shape(ds, &c, &h, &w);
    size_t n = vae_dataset_count(ds), D = (size_t)c * h * w;
    if (!n || (c != 1 && c != 3) || h < 1 || w < 1) fuzz_die("success with n=%zu shape %dx%dx%d", n, c, h, w);
    if (o.channels && (c != o.channels || h != o.height || w != o.width)) fuzz_die("shape not as asked");
    if (!o.channels && (c != 1 || h != w)) fuzz_die("inferred shape is not square grey");
    if ((vae_dataset_labels(ds) != NULL) != (o.csv_label != VAE_CSV_LABEL_NONE)) fuzz_die("labels");
    /* every row is a line with D (+ label) numbers: at least 2*D-1 bytes per row */
    if (n * (2 * D - 1) > len) fuzz_die("%zu rows of %zu values from %zu bytes", n, D, len);
    const uint8_t *img = vae_dataset_images(ds);
    volatile uint8_t sink = (uint8_t)(img[0] ^ img[n * D - 1]);
    (void)sink;
    vae_dataset_free(ds);
    free(text);
    return 0;
}
