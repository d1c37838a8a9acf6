/* json.h - the strict JSON reader behind vae serve's request bodies (tools/json.c):
 * one object whose values are numbers, arrays of numbers or arrays of equal-length
 * arrays of numbers, and nothing else. Its own fuzz target: tests/fuzz/fuzz_json.c. */
#ifndef VAE_JSON_H
#define VAE_JSON_H

#include <stddef.h>

enum { JSON_MAX_KEYS = 8, JSON_KEY_LEN = 16 };

typedef enum { JSON_NUM, JSON_VEC, JSON_MAT } json_kind;

/* One member: a number (num), a vector (v[0..cols), rows 1) or a matrix
 * (v[0..rows*cols), row-major). v points into the object's store. */
typedef struct json_field {
    char key[JSON_KEY_LEN];
    json_kind kind;
    double num;
    const float *v;
    int rows, cols;
} json_field;

typedef struct json_obj {
    json_field f[JSON_MAX_KEYS];
    int n;
    float *store; /* every array's numbers (json_free frees it) */
} json_obj;

/* Parses s[0..len) (not NUL-terminated) as one object. Refused, with a one-
 * line reason in msg: anything not in the grammar above (strings as values,
 * true/false/null, nesting deeper than two, trailing text), a key longer
 * than JSON_KEY_LEN - 1 or repeated, more than JSON_MAX_KEYS members, more
 * than max_numbers numbers in all, a number that is not finite as a float
 * or beyond +-1e30, ragged matrices and empty arrays. Returns 0 or -1 (then
 * o holds nothing to free). */
int json_parse(const char *s, size_t len, int max_numbers, json_obj *o, char *msg, size_t msglen);
void json_free(json_obj *o);

/* The member named key, or NULL. */
const json_field *json_get(const json_obj *o, const char *key);

/* -1 (with msg) when o has a member not named in the space-separated list
 * allowed: a misspelt key is an error, not silently ignored. */
int json_only(const json_obj *o, const char *allowed, char *msg, size_t msglen);

/* A whole-string decimal integer in [lo, hi] (no sign but '-', no spaces,
 * no leading zeros beyond "0"), into *v; -1 otherwise. For query values. */
int parse_int_strict(const char *s, long lo, long hi, long *v);

#endif
