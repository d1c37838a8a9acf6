/* fuzz_json.c - libFuzzer target: vae serve's request-body reader (tools/json.c) on arbitrary bytes. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    /* a copy without a terminating NUL: the reader must respect len */
    char *text = malloc(size ? size : 1);
    if (!text) fuzz_die("out of memory");
    memcpy(text, in, size);
    json_obj o;
    char msg[200];
    if (json_parse(text, size, 1000, &o, msg, sizeof msg) == 0) {
        /* what a handler relies on: bounded counts, finite numbers, no NULs in keys */
        long total = 0;
        if (o.n < 0 || o.n > JSON_MAX_KEYS) fuzz_die("%d members", o.n);
        for (int i = 0; i < o.n; i++) {
            const json_field *f = &o.f[i];
            if (!f->key[0] || strlen(f->key) >= JSON_KEY_LEN) fuzz_die("bad key");
            if (json_get(&o, f->key) != f) fuzz_die("duplicate key %s", f->key);
            if (f->kind == JSON_NUM) {
                if (!isfinite(f->num)) fuzz_die("non-finite number");
                continue;
            }
            if (f->rows < 1 || f->cols < 1) fuzz_die("empty array");
            total += (long)f->rows * f->cols;
            for (long k = 0; k < (long)f->rows * f->cols; k++)
                if (!isfinite(f->v[k])) fuzz_die("non-finite array entry");
        }
        if (total > 1000) fuzz_die("%ld numbers over the limit", total);
        json_only(&o, "z label", msg, sizeof msg);
        json_free(&o);
    } else if (!memchr(msg, 0, sizeof msg) || !msg[0]) fuzz_die("no message");
    long v;
    if (size < 64) { /* the query values' reader, on the same bytes */
        char q[64];
        memcpy(q, in, size);
        q[size] = 0;
        if (parse_int_strict(q, -5, 1000000, &v) == 0 && (v < -5 || v > 1000000)) fuzz_die("range");
    }
    free(text);
    return 0;
}
