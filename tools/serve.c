/* serve.c - `vae serve`: the latent-space explorer, an HTTP server on
 * libmicrohttpd with one page (tools/serve/, built into the binary) and the
 * JSON API it uses (docs/serve.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef VAE_HAVE_MHD

static const cli_opt no_opts[] = {CLI_END};
const cli_command serve_cmd = {
    "serve", "a latent-space explorer in the browser (not in this build)",
    "usage: vae serve --model M [options]\n"
    "This vae was built without libmicrohttpd, so it cannot serve.\n",
    no_opts, NULL};

int cmd_serve(int argc, char **argv)
{
    (void)argc, (void)argv;
    die("serve: this vae was built without libmicrohttpd; install it (apt-get install "
        "libmicrohttpd-dev, or bash scripts/install-deps.sh) and rebuild");
}

#else

#include <microhttpd.h>

#include "json.h"
#include "latent.h"

/* The page's files, generated from tools/serve/ by cmake/embed.cmake. */
typedef struct serve_asset {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
} serve_asset;
extern const serve_asset serve_assets[];
extern const int serve_assets_count;

/* What a request may ask for. A decode of MAX_BATCH latent vectors of the
 * largest latent the bodies allow is well under a second; the bodies'
 * limits keep a connection's memory bounded. */
enum {
    MAX_JSON_BODY = 256 << 10,
    MAX_PNG_BODY = 4 << 20,
    MAX_NUMBERS = 32768, /* numbers in one JSON body */
    MAX_BATCH = 64,      /* images in one decode or sample */
    MAX_STEPS = 32,      /* an interpolation strip's images */
    MAX_SCALE = 8,
    MODEL_BATCH = 256, /* the model's batch: the test codes are encoded this many at a time */
};
#define MAX_ABS_Z 1e4 /* a latent coordinate; priors put codes within a few units of 0 */

/* ------------------------------------------------------------ options */

enum { S_PORT = 256, S_BIND, S_POINTS, S_WORKERS };

typedef struct serve_opts {
    model_args ma;
    long port, points, workers;
    const char *bind;
} serve_opts;

static void take(int key, const char *a, int from_default, void *ctx)
{
    serve_opts *o = ctx;
    (void)from_default;
    switch (key) {
    case S_PORT: o->port = parse_long("serve", "--port", a, 0, 65535); break;
    case S_BIND: o->bind = a; break;
    case S_POINTS: o->points = parse_long("serve", "--points", a, 2, 100000); break;
    case S_WORKERS: o->workers = parse_long("serve", "--workers", a, 1, 64); break;
    default: model_flag("serve", key, a, &o->ma);
    }
}

static const cli_opt serve_opts_table[] = {
    MODEL_OPTS,
    {"--port", S_PORT, "N", "the TCP port; 0 = any free one (the printed URL\nsays which)", "8080", NULL},
    {"--bind", S_BIND, "ADDR", "the address to listen on (IPv4 or IPv6); another\nthan loopback "
     "lets other machines use the server\n(no authentication: only on a network you trust)",
     "127.0.0.1", NULL},
    {"--points", S_POINTS, "N", "test images on the map (spread evenly over the split)", "10000", NULL},
    {"--workers", S_WORKERS, "N", "threads serving requests (model calls take turns)", "4", NULL},
    CLI_END};

const cli_command serve_cmd = {
    "serve",
    "a latent-space explorer in the browser, and its JSON API",
    "usage: vae serve --model M [options]\n"
    "Serves a latent-space explorer for the model in the browser, and the JSON API\n"
    "it uses (docs/serve.md): the test codes on a map, live decoding, interpolation,\n"
    "traversals, samples, uploads. Prints the URL to open; Ctrl-C stops it (exit 130).\n",
    serve_opts_table, NULL};

/* ------------------------------------------------------------- server */

typedef struct server {
    vae_model *m;
    pthread_mutex_t lock; /* the model is not thread-safe: every call holds this */
    const vae_config *cfg;
    int d, D, C; /* latent size, input size, classes (0: not conditional) */
    vae_dataset *test;
    long N;           /* points on the map */
    uint32_t *index;  /* their images in the test split */
    uint8_t *labels;  /* theirs, or NULL */
    float *mu;        /* their codes, N x d */
    char *info;       /* GET /api/info's body, built once */
    size_t info_len;
    char host[3][80]; /* the Host headers a loopback server answers */
    int loopback;
} server;

/* One reply: a status, a type and a body (malloc'd, or static). */
typedef struct reply {
    unsigned status;
    const char *type;
    char *body;
    size_t len;
    int is_static;
    const char *allow; /* 405: the Allow header */
} reply;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static reply fail(unsigned status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply r = {status, "application/json", NULL, 0, 0, NULL};
    FILE *f = open_memstream(&r.body, &r.len);
    if (!f) return (reply){500, "application/json", (char *)"{\"error\":\"out of memory\"}\n", 26, 1, NULL};
    fputs("{\"error\":", f);
    json_str(f, msg);
    fputs("}\n", f);
    fclose(f);
    return r;
}

/* A JSON body being written: open_memstream, closed by json_reply. */
typedef struct out {
    FILE *f;
    char *buf;
    size_t len;
} out;

static int out_open(out *o)
{
    o->buf = NULL, o->len = 0;
    o->f = open_memstream(&o->buf, &o->len);
    return o->f ? 0 : -1;
}

static reply json_reply(out *o)
{
    fputc('\n', o->f);
    if (fclose(o->f) != 0) {
        free(o->buf);
        return fail(500, "out of memory");
    }
    return (reply){200, "application/json", o->buf, o->len, 0, NULL};
}

/* Floats compactly (6 significant digits: the page draws them); JSON has
 * no infinities, so a non-finite one is null. */
static void put_floats(FILE *f, const float *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        if (isfinite(v[i])) fprintf(f, "%.6g", (double)v[i]);
        else fputs("null", f);
    }
    fputc(']', f);
}

static void put_doubles(FILE *f, const double *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        json_num(f, v[i]);
    }
    fputc(']', f);
}

/* ---------------------------------------------------- request values */

/* A query value: absent gives dflt; anything but a whole number in
 * [lo, hi] is an error naming it. */
static int query_long(struct MHD_Connection *c, const char *name, long lo, long hi, long dflt,
                      long *v, reply *err)
{
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (!s) {
        *v = dflt;
        return 0;
    }
    if (parse_int_strict(s, lo, hi, v) == 0) return 0;
    *err = fail(400, "%s expects a whole number in %ld..%ld", name, lo, hi);
    return -1;
}

typedef struct arg_check {
    const char *allowed;
    const char *bad;
} arg_check;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    arg_check *a = cls;
    (void)kind, (void)value;
    size_t n = strlen(key);
    for (const char *p = a->allowed; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && !strncmp(p, key, n)) return MHD_YES;
        p += w + (p[w] == ' ');
    }
    a->bad = key;
    return MHD_NO;
}

/* Query arguments not in the space-separated list are errors: a typo
 * must not silently fall back to a default. */
static int query_only(struct MHD_Connection *c, const char *allowed, reply *err)
{
    arg_check a = {allowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, &a);
    if (!a.bad) return 0;
    *err = fail(400, "unknown query argument '%.40s' (this request takes: %s)", a.bad, allowed);
    return -1;
}

/* The label a conditional model needs (and any other refuses). */
static int check_label(const server *s, int given, long label, reply *err)
{
    if (s->C && !given) *err = fail(400, "the model is conditional: give a label in 0..%d", s->C - 1);
    else if (!s->C && given) *err = fail(400, "the model is not conditional: it takes no label");
    else if (given && (label < 0 || label >= s->C))
        *err = fail(400, "label %ld is not one of the model's classes 0..%d", label, s->C - 1);
    else return 0;
    return -1;
}

/* A JSON member that must be a whole number in [lo, hi] (dflt if absent). */
static int member_long(const json_obj *o, const char *k, long lo, long hi, long dflt, long *v,
                       reply *err)
{
    const json_field *f = json_get(o, k);
    if (!f) {
        *v = dflt;
        return 0;
    }
    if (f->kind == JSON_NUM && f->num == floor(f->num) && f->num >= lo && f->num <= hi) {
        *v = (long)f->num;
        return 0;
    }
    *err = fail(400, "\"%s\" expects a whole number in %ld..%ld", k, lo, hi);
    return -1;
}

/* Latent vectors: member k as one vector of d numbers (rows 1) or up to
 * max_rows of them, each coordinate within +-MAX_ABS_Z. */
static int member_codes(const server *s, const json_obj *o, const char *k, int max_rows,
                        const float **z, int *rows, reply *err)
{
    const json_field *f = json_get(o, k);
    if (!f) *err = fail(400, "\"%s\" is missing: the latent vector (%d numbers)", k, s->d);
    else if (f->kind == JSON_NUM) *err = fail(400, "\"%s\" must be an array of %d numbers", k, s->d);
    else if (f->cols != s->d)
        *err = fail(400, "\"%s\" has %d numbers per vector; the model's latent has %d", k, f->cols, s->d);
    else if (f->rows > max_rows) *err = fail(400, "\"%s\": at most %d vectors", k, max_rows);
    else {
        for (int i = 0; i < f->rows * f->cols; i++)
            if (!(fabsf(f->v[i]) <= MAX_ABS_Z)) {
                *err = fail(400, "\"%s\"[%d] = %g is beyond +-%g", k, i, (double)f->v[i], MAX_ABS_Z);
                return -1;
            }
        *z = f->v, *rows = f->rows;
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------ model calls */

/* One thread per model call. A request is one image or a few: OpenMP's
 * team costs more than it saves there, and each worker thread would keep a
 * team of its own spinning on the same two cores (tests/serve_load.sh's p99:
 * 106 -> 18 ms for the MLP, on a busy shared machine). The setting is the
 * calling thread's: made once per worker, with the lock held (BLAS's is
 * process-wide). */
static void model_thread(void)
{
    static _Thread_local int done;
    if (!done) vae_set_threads(1);
    done = 1;
}

/* n images (freed here) as a PNG grid of cols columns, 1-pixel gaps. */
static reply png_reply(server *s, float *img, int n, int cols, int scale)
{
    reply r = {200, "image/png", NULL, 0, 0, NULL};
    unsigned char *png;
    vae_error err;
    int rc = vae_png_grid_encode(img, n, s->cfg->channels, s->cfg->height, s->cfg->width, cols,
                                 n > 1 ? 1 : 0, scale, &png, &r.len, &err);
    free(img);
    if (rc) return fail(500, "%s", err.msg);
    r.body = (char *)png;
    return r;
}

/* Decodes n codes (all of class label, or -1) into a PNG grid of cols
 * columns. */
static reply decode_png(server *s, const float *z, int n, long label, int cols, int scale)
{
    int D = s->D;
    float *img = malloc((size_t)n * D * sizeof *img);
    uint8_t *lab = malloc((size_t)n);
    if (!img || !lab) {
        free(img), free(lab);
        return fail(500, "out of memory");
    }
    for (int i = 0; i < n; i++) lab[i] = (uint8_t)(label < 0 ? 0 : label);
    pthread_mutex_lock(&s->lock);
    model_thread();
    int rc = vae_model_decode(s->m, z, s->C ? lab : NULL, n, img);
    pthread_mutex_unlock(&s->lock);
    free(lab);
    if (rc) {
        free(img);
        return fail(500, "decoding failed: %s", vae_strerror(rc));
    }
    // a Gaussian decoder's means are not clipped: the PNG writer clamps
    return png_reply(s, img, n, cols, scale);
}

/* ---------------------------------------------------------- handlers */

static reply api_info(server *s, struct MHD_Connection *c)
{
    reply err;
    if (query_only(c, "", &err)) return err;
    return (reply){200, "application/json", s->info, s->info_len, 1, NULL};
}

/* GET /api/codes?n=N: N of the map's points, spread evenly. */
static reply api_codes(server *s, struct MHD_Connection *c)
{
    reply err;
    long n;
    if (query_only(c, "n", &err) || query_long(c, "n", 1, s->N, s->N, &n, &err)) return err;
    out o;
    if (out_open(&o)) return fail(500, "out of memory");
    fprintf(o.f, "{\"n\":%ld,\"d\":%d,\"index\":[", n, s->d);
    for (long i = 0; i < n; i++) fprintf(o.f, "%s%u", i ? "," : "", s->index[i * s->N / n]);
    fputs("],\"labels\":", o.f);
    if (s->labels) {
        fputc('[', o.f);
        for (long i = 0; i < n; i++) fprintf(o.f, "%s%d", i ? "," : "", s->labels[i * s->N / n]);
        fputc(']', o.f);
    } else fputs("null", o.f);
    fputs(",\"z\":[", o.f);
    for (long i = 0; i < n; i++) {
        if (i) fputc(',', o.f);
        put_floats(o.f, s->mu + (size_t)(i * s->N / n) * s->d, s->d);
    }
    fputs("]}", o.f);
    return json_reply(&o);
}

/* GET /api/image?i=K&scale=S: test image K as a PNG. */
static reply api_image(server *s, struct MHD_Connection *c)
{
    reply err;
    long i, scale;
    size_t count = vae_dataset_count(s->test);
    if (query_only(c, "i scale", &err) || query_long(c, "i", 0, (long)count - 1, -1, &i, &err) ||
        query_long(c, "scale", 1, MAX_SCALE, 1, &scale, &err))
        return err;
    if (i < 0) return fail(400, "i is missing: the test image's index, 0..%zu", count - 1);
    float *x = malloc((size_t)s->D * sizeof *x);
    if (!x) return fail(500, "out of memory");
    uint32_t idx = (uint32_t)i;
    vae_dataset_batch(s->test, &idx, 1, VAE_BINARIZE_NONE, 0, NULL, x);
    return png_reply(s, x, 1, 1, (int)scale);
}

/* GET /api/sample?n=N&seed=S: N codes from the prior N(0, I), drawn as vae
 * sample draws them (the same seed gives vae sample's codes). */
static reply api_sample(server *s, struct MHD_Connection *c)
{
    reply err;
    long n, seed;
    if (query_only(c, "n seed", &err) || query_long(c, "n", 1, MAX_BATCH, 1, &n, &err) ||
        query_long(c, "seed", 0, 0x7fffffffffffffffL, 1, &seed, &err))
        return err;
    float *z = malloc((size_t)n * s->d * sizeof *z);
    out o;
    if (!z || out_open(&o)) {
        free(z);
        return fail(500, "out of memory");
    }
    vae_rng rng;
    vae_rng_seed(&rng, (uint64_t)seed);
    for (size_t i = 0; i < (size_t)n * s->d; i++) z[i] = (float)vae_rng_normal(&rng);
    fprintf(o.f, "{\"seed\":%ld,\"z\":[", seed);
    for (long i = 0; i < n; i++) {
        if (i) fputc(',', o.f);
        put_floats(o.f, z + (size_t)i * s->d, s->d);
    }
    fputs("]}", o.f);
    free(z);
    return json_reply(&o);
}

/* POST /api/decode {"z": [...] or [[...], ...], "label": k, "scale": s,
 * "cols": c}: the decoded image(s) as one PNG. */
static reply api_decode(server *s, const json_obj *o)
{
    reply err;
    char msg[200];
    const float *z;
    int rows;
    long label, scale, cols;
    if (json_only(o, "z label scale cols", msg, sizeof msg)) return fail(400, "%s", msg);
    if (member_codes(s, o, "z", MAX_BATCH, &z, &rows, &err) ||
        member_long(o, "label", 0, 255, -1, &label, &err) ||
        check_label(s, json_get(o, "label") != NULL, label, &err) ||
        member_long(o, "scale", 1, MAX_SCALE, 1, &scale, &err) ||
        member_long(o, "cols", 1, MAX_BATCH, (long)ceil(sqrt(rows)), &cols, &err))
        return err;
    return decode_png(s, z, rows, label, (int)cols, (int)scale);
}

/* POST /api/interpolate {"a": [...], "b": [...], "steps": n, "slerp": 0|1,
 * "label": k, "scale": s}: the strip decoded along the path (latent.c's). */
static reply api_interpolate(server *s, const json_obj *o)
{
    reply err;
    char msg[200];
    const float *a, *b;
    int ra, rb;
    long steps, slerp, label, scale;
    if (json_only(o, "a b steps slerp label scale", msg, sizeof msg)) return fail(400, "%s", msg);
    if (member_codes(s, o, "a", 1, &a, &ra, &err) || member_codes(s, o, "b", 1, &b, &rb, &err) ||
        member_long(o, "steps", 2, MAX_STEPS, 8, &steps, &err) ||
        member_long(o, "slerp", 0, 1, 0, &slerp, &err) ||
        member_long(o, "label", 0, 255, -1, &label, &err) ||
        check_label(s, json_get(o, "label") != NULL, label, &err) ||
        member_long(o, "scale", 1, MAX_SCALE, 1, &scale, &err))
        return err;
    float *z = malloc((size_t)steps * s->d * sizeof *z);
    if (!z) return fail(500, "out of memory");
    for (long i = 0; i < steps; i++)
        path_point(a, b, s->d, (double)i / (steps - 1), (int)slerp, z + (size_t)i * s->d);
    reply r = decode_png(s, z, (int)steps, label, (int)steps, (int)scale);
    free(z);
    return r;
}

/* POST /api/encode?label=k, the body a PNG of the model's size: its
 * posterior's mean and log-variance. */
static reply api_encode(server *s, struct MHD_Connection *c, const char *body, size_t len)
{
    reply err;
    long label;
    if (query_only(c, "label", &err) || query_long(c, "label", 0, 255, -1, &label, &err) ||
        check_label(s, label >= 0, label, &err))
        return err;
    float *x = malloc((size_t)s->D * sizeof *x), *z = malloc((size_t)2 * s->d * sizeof *z);
    out o;
    if (!x || !z || out_open(&o)) {
        free(x), free(z);
        return fail(500, "out of memory");
    }
    vae_error e;
    int rc = vae_png_decode_image(body, len, s->cfg->channels, s->cfg->height, s->cfg->width, x, &e);
    if (!rc) {
        uint8_t lab = (uint8_t)(label < 0 ? 0 : label);
        pthread_mutex_lock(&s->lock);
        model_thread();
        rc = vae_model_encode(s->m, x, s->C ? &lab : NULL, 1, z, z + s->d);
        pthread_mutex_unlock(&s->lock);
        if (rc) snprintf(e.msg, sizeof e.msg, "encoding failed: %s", vae_strerror(rc));
    }
    free(x);
    if (rc) {
        fclose(o.f), free(o.buf), free(z);
        return fail(rc == VAE_EFORMAT || rc == VAE_ESHAPE ? 400 : 500, "%s", e.msg);
    }
    fputs("{\"z\":", o.f);
    put_floats(o.f, z, s->d);
    fputs(",\"logvar\":", o.f);
    put_floats(o.f, z + s->d, s->d);
    fputc('}', o.f);
    free(z);
    return json_reply(&o);
}

/* ------------------------------------------------------------ routing */

typedef struct request {
    char *body;
    size_t len, limit;
    int too_large;
} request;

static int is(const char *a, const char *b) { return !strcmp(a, b); }

static reply route(server *s, struct MHD_Connection *c, const char *url, const char *method,
                   request *rq)
{
    int get = is(method, "GET") || is(method, "HEAD"), post = is(method, "POST");
    if (!strncmp(url, "/api/", 5)) {
        static const struct { const char *path; int post; } api[] = {
            {"/api/info", 0}, {"/api/codes", 0}, {"/api/image", 0}, {"/api/sample", 0},
            {"/api/decode", 1}, {"/api/interpolate", 1}, {"/api/encode", 1}};
        int k = -1;
        for (int i = 0; i < (int)(sizeof api / sizeof *api); i++)
            if (is(url, api[i].path)) k = i;
        if (k < 0) return fail(404, "no such endpoint: %.60s (docs/serve.md lists them)", url);
        if (api[k].post ? !post : !get) {
            reply r = fail(405, "%s takes %s", api[k].path, api[k].post ? "POST" : "GET");
            r.allow = api[k].post ? "POST" : "GET, HEAD";
            return r;
        }
        if (rq->too_large)
            return fail(413, "the body is over %zu bytes", rq->limit);
        if (k == 0) return api_info(s, c);
        if (k == 1) return api_codes(s, c);
        if (k == 2) return api_image(s, c);
        if (k == 3) return api_sample(s, c);
        if (k == 6) return api_encode(s, c, rq->body, rq->len);
        reply err;
        if (query_only(c, "", &err)) return err;
        json_obj o;
        char msg[200];
        if (json_parse(rq->body ? rq->body : "", rq->len, MAX_NUMBERS, &o, msg, sizeof msg))
            return fail(400, "%s", msg);
        reply r = k == 4 ? api_decode(s, &o) : api_interpolate(s, &o);
        json_free(&o);
        return r;
    }
    const char *path = is(url, "/") ? "/index.html" : url;
    for (int i = 0; i < serve_assets_count; i++)
        if (is(path, serve_assets[i].path)) {
            if (!get) {
                reply r = fail(405, "%s takes GET", url);
                r.allow = "GET, HEAD";
                return r;
            }
            return (reply){200, serve_assets[i].type, (char *)serve_assets[i].data,
                           serve_assets[i].len, 1, NULL};
        }
    return fail(404, "not found: %.60s", url);
}

/* A loopback server answers only Host headers naming loopback: a web page
 * elsewhere cannot reach it through a name that resolves to 127.0.0.1
 * (DNS rebinding). */
static int host_ok(const server *s, struct MHD_Connection *c)
{
    if (!s->loopback) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return 0;
    for (int i = 0; i < 3; i++)
        if (is(h, s->host[i])) return 1;
    return 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, reply r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r.len, r.body, r.is_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        if (!r.is_static) free(r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    // the page runs only its own script and loads nothing from elsewhere
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; "
                            "frame-ancestors 'none'");
    if (r.allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r.allow);
    enum MHD_Result ret = MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    server *s = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) { // the headers are in: size the body's limit, refuse what is over it at once
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        rq->limit = is(url, "/api/encode") ? MAX_PNG_BODY : MAX_JSON_BODY;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!host_ok(s, c)) return send_reply(c, fail(421, "this server answers only to "
                                                           "localhost, 127.0.0.1 or [::1]"));
        if (cl && strtoull(cl, NULL, 10) > rq->limit) {
            rq->too_large = 1;
            return send_reply(c, route(s, c, url, method, rq));
        }
        return MHD_YES;
    }
    if (*data_size) {
        size_t n = *data_size;
        *data_size = 0;
        // a body over the limit without a Content-Length (chunked): no reply
        // can be queued while it is being read, so the connection is dropped
        if (rq->len + n > rq->limit) return MHD_NO;
        char *b = realloc(rq->body, rq->len + n + 1);
        if (!b) return MHD_NO;
        memcpy(b + rq->len, data, n);
        rq->body = b;
        rq->len += n;
        rq->body[rq->len] = 0;
        return MHD_YES;
    }
    return send_reply(c, route(s, c, url, method, rq));
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *rq = *con_cls;
    if (rq) free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ------------------------------------------------------------ startup */

/* The map's points: N test images spread evenly, their labels and codes;
 * the KL per dimension (sliders in its order) and, beyond two dimensions,
 * the codes' principal plane (the page projects any code on it). */
static void load_points(server *s, const serve_opts *o, double *kl, int *order, vae_pca **pca)
{
    size_t count = vae_dataset_count(s->test);
    const uint8_t *all = vae_model_num_classes(s->m) ? need_labels(s->test, s->m)
                                                      : vae_dataset_labels(s->test);
    s->N = (long)count < o->points ? (long)count : o->points;
    if (s->N < 2) die("%s: the test split has %zu image(s); the map needs 2", vae_dataset_path(s->test), count);
    int d = s->d, D = s->D;
    s->index = xmalloc((size_t)s->N * sizeof *s->index);
    s->labels = all ? xmalloc((size_t)s->N) : NULL;
    s->mu = xmalloc((size_t)s->N * d * sizeof *s->mu);
    float *lv = xmalloc((size_t)s->N * d * sizeof *lv), *x = xmalloc((size_t)MODEL_BATCH * D * sizeof *x);
    for (long i = 0; i < s->N; i++) {
        s->index[i] = (uint32_t)((size_t)i * count / (size_t)s->N);
        if (all) s->labels[i] = all[s->index[i]];
    }
    for (long i = 0; i < s->N; i += MODEL_BATCH) {
        int b = (int)(s->N - i < MODEL_BATCH ? s->N - i : MODEL_BATCH);
        vae_dataset_batch(s->test, s->index + i, b, VAE_BINARIZE_NONE, 0, NULL, x);
        if (vae_model_encode(s->m, x, s->C ? s->labels + i : NULL, b, s->mu + (size_t)i * d,
                             lv + (size_t)i * d))
            die("%s", vae_model_errmsg(s->m));
    }
    vae_kl_per_dim(s->mu, lv, s->N, d, kl);
    order_by_kl(kl, d, order);
    free(lv), free(x);
    *pca = NULL;
    vae_error err;
    if (d > 2 && vae_pca_fit(s->mu, s->N, d, 2, pca, &err)) die("%s", err.msg);
}

/* GET /api/info's body: the model's facts (vae info's text among them) and
 * what the page needs to draw the map and the sliders. */
static void build_info(server *s, const char *model_path, const double *kl, const int *order,
                       const vae_pca *pca)
{
    int d = s->d;
    out o;
    if (out_open(&o)) die("out of memory");
    FILE *f = o.f;
    const char *classes = vae_model_meta(s->m, "data.classes");
    char *text;
    size_t tlen;
    FILE *t = open_memstream(&text, &tlen);
    if (!t) die("out of memory");
    print_info(t, model_path, s->m);
    fclose(t);
    fputs("{\"model\":", f);
    json_str(f, vae_model_meta(s->m, "vae.model") ? vae_model_meta(s->m, "vae.model") : "vae");
    fprintf(f, ",\"channels\":%d,\"height\":%d,\"width\":%d,\"latent\":%d,\"classes\":%d,",
            s->cfg->channels, s->cfg->height, s->cfg->width, d, s->C);
    fputs("\"class_names\":", f);
    json_str(f, classes ? classes : "");
    fputs(",\"info\":", f);
    json_str(f, text);
    free(text);
    fprintf(f, ",\"points\":%ld,\"test_images\":%zu,\"labelled\":%s,\"kl\":", s->N,
            vae_dataset_count(s->test), s->labels ? "true" : "false");
    put_doubles(f, kl, d);
    fputs(",\"order\":[", f);
    for (int j = 0; j < d; j++) fprintf(f, "%s%d", j ? "," : "", order[j]);
    // each dimension's spread over the map's codes: the sliders' ranges
    fputs("],\"range\":[", f);
    for (int j = 0; j < d; j++) {
        double sum = 0, sq = 0;
        for (long i = 0; i < s->N; i++) sum += s->mu[i * d + j], sq += (double)s->mu[i * d + j] * s->mu[i * d + j];
        double mean = sum / s->N, sd = sqrt(fmax(sq / s->N - mean * mean, 0));
        double lo = fmin(mean - 3 * sd, -3), hi = fmax(mean + 3 * sd, 3);
        fprintf(f, "%s[", j ? "," : "");
        json_num(f, lo);
        fputc(',', f);
        json_num(f, hi);
        fputc(']', f);
    }
    fputs("],\"projection\":", f);
    if (!pca) fputs("{\"kind\":\"latent\"}", f);
    else {
        fputs("{\"kind\":\"pca\",\"mean\":", f);
        put_doubles(f, vae_pca_mean(pca), d);
        fputs(",\"axes\":[", f);
        put_doubles(f, vae_pca_basis(pca), d);
        fputc(',', f);
        put_doubles(f, vae_pca_basis(pca) + d, d);
        double ev[2], total = vae_pca_total_variance(pca);
        for (int c = 0; c < 2; c++) ev[c] = total > 0 ? vae_pca_eigenvalues(pca)[c] / total : 0;
        fputs("],\"explained\":", f);
        put_doubles(f, ev, 2);
        fputc('}', f);
    }
    fputs(",\"limits\":{", f);
    fprintf(f, "\"batch\":%d,\"steps\":%d,\"scale\":%d,\"abs_z\":%g,\"json_body\":%d,\"png_body\":%d}}",
            MAX_BATCH, MAX_STEPS, MAX_SCALE, MAX_ABS_Z, MAX_JSON_BODY, MAX_PNG_BODY);
    reply r = json_reply(&o);
    if (r.status != 200) die("out of memory");
    s->info = r.body, s->info_len = r.len;
}

/* The listening socket, bound here rather than by the library so that a
 * busy port or a bad address is one clear line, and port 0 can be read
 * back. Fills the URL to print. */
static int listen_on(server *s, const char *bind_addr, long port, char *url, size_t len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    int ipv6 = 0;
    if (inet_pton(AF_INET, bind_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET, v4->sin_port = htons((uint16_t)port), sl = sizeof *v4;
        s->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, bind_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6, v6->sin6_port = htons((uint16_t)port), sl = sizeof *v6;
        s->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        ipv6 = 1;
    } else usage_error("serve", "--bind expects an IPv4 or IPv6 address like 127.0.0.1 or ::1, not '%s'", bind_addr);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) die("serve: cannot create a socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        die("serve: cannot listen on %s port %ld: %s%s", bind_addr, port, strerror(errno),
            errno == EADDRINUSE ? " (choose another --port, or 0 for any free one)" : "");
    if (listen(fd, 64) != 0) die("serve: listen: %s", strerror(errno));
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int p = ntohs(ipv6 ? v6->sin6_port : v4->sin_port);
    snprintf(s->host[0], sizeof s->host[0], "localhost:%d", p);
    snprintf(s->host[1], sizeof s->host[1], "127.0.0.1:%d", p);
    snprintf(s->host[2], sizeof s->host[2], "[::1]:%d", p);
    snprintf(url, len, ipv6 ? "http://[%s]:%d/" : "http://%s:%d/", bind_addr, p);
    return fd;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o;
    memset(&o, 0, sizeof o);
    model_args_init(&o.ma);
    // before any thread starts: the model's, the server's (see cli.h)
    stop_signals_block();
    int first = cli_parse(&serve_cmd, argc, argv, take, &o);
    if (first < argc) usage_error("serve", "unexpected argument '%s'", argv[first]);
    static server s; // the handlers' context for the process's life
    s.m = model_load("serve", &o.ma, MODEL_BATCH);
    s.cfg = vae_model_config(s.m);
    s.d = s.cfg->latent, s.D = vae_model_input_size(s.m), s.C = vae_model_num_classes(s.m);
    s.test = model_split("serve", &o.ma, s.m, VAE_SPLIT_TEST);
    char url[160];
    int fd = listen_on(&s, o.bind, o.port, url, sizeof url);
    double *kl = xmalloc((size_t)s.d * sizeof *kl);
    int *order = xmalloc((size_t)s.d * sizeof *order);
    vae_pca *pca;
    load_points(&s, &o, kl, order, &pca);
    build_info(&s, o.ma.model, kl, order, pca);
    vae_pca_free(pca);
    free(kl), free(order);
    pthread_mutex_init(&s.lock, NULL);
    // a bounded pool of workers; connections, their memory and idle time
    // bounded too, so slow or hostile clients cannot hold the server
    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, &s,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o.workers,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 << 10,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!daemon) die("serve: the HTTP server (libmicrohttpd) did not start");
    report_data(&o.ma.dargs, NULL, s.test);
    if (!s.loopback)
        fprintf(stderr, "vae serve: listening on %s: any machine that reaches it can use it "
                "(no authentication)\n", o.bind);
    printf("serving %s on %s (Ctrl-C stops)\n", o.ma.model, url);
    fflush(stdout);
    stop_signals_arm();
    while (!atomic_load(&stop_signal)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    // stop accepting first; the listening socket is handed back (it is ours to close)
    MHD_socket lfd = MHD_quiesce_daemon(daemon);
    MHD_stop_daemon(daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    fprintf(stderr, "vae serve: stopped\n");
    pthread_mutex_destroy(&s.lock);
    free(s.info), free(s.index), free(s.labels), free(s.mu);
    vae_dataset_free(s.test);
    vae_model_free(s.m);
    return 130;
}

#endif
