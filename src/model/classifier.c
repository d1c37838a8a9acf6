/* classifier.c - the scoring classifier (vae/score.h): a LeNet-like conv
 * net assembled from nn/'s pairs (conv, linear, ReLU, softmax
 * cross-entropy), trained with nn/adam.c, saved as safetensors. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "internal.h"
#include "io/io.h"
#include "nn/adam.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/loss.h"

#define CLS_FORMAT "vae-classifier"
#define CLS_VERSION "1"
#define N_TENSORS 8
#define MAX_META 32

/* One thread's slice of a batch: activations and the slice's gradient. */
typedef struct worker {
    float *a1, *a2, *h, *logits, *prob;       /* conv1, conv2, fc1 outputs (after ReLU) */
    float *d1, *d2, *dh, *dlogits, *col;      /* their gradients, im2col scratch */
    float *grad;                              /* n_params: this slice's gradient */
} worker;

struct vae_classifier {
    vae_classifier_config cfg;
    vae__conv_geom g1, g2;
    int D, F;          /* input values, conv2's flattened output */
    int max_batch, T;  /* workers' rows: ceil(max_batch / T) */
    size_t n_params, off[N_TENSORS + 1];
    float *params, *grad, *m, *v;
    vae_adam adam;
    long step;
    worker *w;
    char **meta;       /* a loaded file's key, value pairs; NULL-terminated */
};

static const char *tensor_names[N_TENSORS] = {"conv1.weight", "conv1.bias", "conv2.weight",
                                              "conv2.bias",   "fc1.weight", "fc1.bias",
                                              "fc2.weight",   "fc2.bias"};

void vae_classifier_config_default(vae_classifier_config *cfg)
{
    *cfg = (vae_classifier_config){1, 28, 28, 10, 32, 64, 128};
}

/* Each tensor's shape (ndim, dims) for cfg; returns its element count. */
static size_t tensor_shape(const vae_classifier *c, int t, int *ndim, int64_t *dims)
{
    const vae_classifier_config *g = &c->cfg;
    int64_t s[4] = {0};
    int nd = 1;
    switch (t) {
    case 0: nd = 4, s[0] = g->conv1, s[1] = g->channels, s[2] = s[3] = 3; break;
    case 1: s[0] = g->conv1; break;
    case 2: nd = 4, s[0] = g->conv2, s[1] = g->conv1, s[2] = s[3] = 3; break;
    case 3: s[0] = g->conv2; break;
    case 4: nd = 2, s[0] = g->hidden, s[1] = c->F; break;
    case 5: s[0] = g->hidden; break;
    case 6: nd = 2, s[0] = g->classes, s[1] = g->hidden; break;
    default: s[0] = g->classes;
    }
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)s[i];
    if (ndim) *ndim = nd;
    if (dims) memcpy(dims, s, sizeof s);
    return n;
}

static float *P(const vae_classifier *c, float *base, int t) { return base + c->off[t]; }

static void free_workers(vae_classifier *c)
{
    for (int t = 0; c->w && t < c->T; t++) {
        worker *w = &c->w[t];
        free(w->a1), free(w->a2), free(w->h), free(w->logits), free(w->prob);
        free(w->d1), free(w->d2), free(w->dh), free(w->dlogits), free(w->col), free(w->grad);
    }
    free(c->w);
    c->w = NULL;
}

void vae_classifier_free(vae_classifier *c)
{
    if (!c) return;
    free_workers(c);
    free(c->params), free(c->grad), free(c->m), free(c->v);
    vae__meta_free(c->meta);
    free(c);
}

static int check_config(const vae_classifier_config *g, vae_error *err)
{
    if (g->channels < 1 || g->channels > 3 || g->height < 1 || g->width < 1 ||
        g->height > VAE_MAX_SIDE || g->width > VAE_MAX_SIDE)
        return vae__error(err, VAE_EINVAL, "classifier: images of %dx%dx%d: need 1..3 channels "
                          "and sides of 1..%d", g->channels, g->height, g->width, VAE_MAX_SIDE);
    if (g->classes < 2 || g->classes > 256)
        return vae__error(err, VAE_EINVAL, "classifier: %d classes: need 2..256", g->classes);
    if (g->conv1 < 1 || g->conv2 < 1 || g->hidden < 1 || g->conv1 > 1024 || g->conv2 > 1024 ||
        g->hidden > 65536)
        return vae__error(err, VAE_EINVAL, "classifier: widths %d, %d, %d: need 1..1024, 1..1024, "
                          "1..65536", g->conv1, g->conv2, g->hidden);
    return VAE_OK;
}

/* The geometry, the parameter layout and every buffer; params zeroed. */
static int alloc_classifier(const vae_classifier_config *cfg, int max_batch, vae_classifier **out,
                            vae_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc) return rc;
    if (max_batch < 1 || max_batch > (1 << 20))
        return vae__error(err, VAE_EINVAL, "classifier: max batch %d: need 1..%d", max_batch,
                          1 << 20);
    vae_classifier *c = calloc(1, sizeof *c);
    if (!c) return vae__error(err, VAE_ENOMEM, "out of memory for the classifier");
    c->cfg = *cfg;
    vae__conv_geom_init(&c->g1, cfg->channels, cfg->height, cfg->width, cfg->conv1, 3, 1, 1);
    vae__conv_geom_init(&c->g2, cfg->conv1, c->g1.OH, c->g1.OW, cfg->conv2, 3, 2, 1);
    c->D = cfg->channels * cfg->height * cfg->width;
    c->F = cfg->conv2 * c->g2.OH * c->g2.OW;
    for (int t = 0; t < N_TENSORS; t++) c->off[t + 1] = c->off[t] + tensor_shape(c, t, NULL, NULL);
    c->n_params = c->off[N_TENSORS];
    c->max_batch = max_batch;
    vae_adam_default(&c->adam);
    int T = omp_get_max_threads();
    c->T = T < 1 ? 1 : T > max_batch ? max_batch : T;
    c->params = calloc(c->n_params, sizeof *c->params);
    c->grad = malloc(c->n_params * sizeof *c->grad);
    c->m = calloc(c->n_params, sizeof *c->m);
    c->v = calloc(c->n_params, sizeof *c->v);
    c->w = calloc((size_t)c->T, sizeof *c->w);
    int ok = c->params && c->grad && c->m && c->v && c->w;
    size_t rows = (size_t)(max_batch + c->T - 1) / c->T;
    size_t n1 = rows * cfg->conv1 * c->g1.OH * c->g1.OW, n2 = rows * c->F;
    size_t col1 = vae__conv_col_size(&c->g1, (int)rows), col2 = vae__conv_col_size(&c->g2, (int)rows);
    size_t col = col1 > col2 ? col1 : col2;
    for (int t = 0; ok && t < c->T; t++) {
        worker *w = &c->w[t];
        w->a1 = malloc(n1 * sizeof *w->a1), w->d1 = malloc(n1 * sizeof *w->d1);
        w->a2 = malloc(n2 * sizeof *w->a2), w->d2 = malloc(n2 * sizeof *w->d2);
        w->h = malloc(rows * cfg->hidden * sizeof *w->h);
        w->dh = malloc(rows * cfg->hidden * sizeof *w->dh);
        w->logits = malloc(rows * cfg->classes * sizeof *w->logits);
        w->prob = malloc(rows * cfg->classes * sizeof *w->prob);
        w->dlogits = malloc(rows * cfg->classes * sizeof *w->dlogits);
        w->col = malloc(col * sizeof *w->col);
        w->grad = malloc(c->n_params * sizeof *w->grad);
        ok = w->a1 && w->d1 && w->a2 && w->d2 && w->h && w->dh && w->logits && w->prob &&
             w->dlogits && w->col && w->grad;
    }
    if (!ok) {
        vae_classifier_free(c);
        return vae__error(err, VAE_ENOMEM, "out of memory for the classifier (batch %d)",
                          max_batch);
    }
    *out = c;
    return VAE_OK;
}

int vae_classifier_create(const vae_classifier_config *cfg, int max_batch, uint64_t seed,
                          vae_classifier **out, vae_error *err)
{
    if (!cfg || !out) return vae__error(err, VAE_EINVAL, "classifier: no configuration or result");
    int rc = alloc_classifier(cfg, max_batch, out, err);
    if (rc) return rc;
    vae_classifier *c = *out;
    vae_rng rng;
    vae_rng_seed(&rng, seed);
    // PyTorch's default for Conv2d and Linear: weights and biases U(+-1/sqrt(fan_in))
    int fan_in[N_TENSORS / 2] = {cfg->channels * 9, cfg->conv1 * 9, c->F, cfg->hidden};
    for (int t = 0; t < N_TENSORS; t++) {
        double bound = 1 / sqrt((double)fan_in[t / 2]);
        float *p = P(c, c->params, t);
        for (size_t i = 0; i < c->off[t + 1] - c->off[t]; i++)
            p[i] = (float)((2 * vae_rng_uniform(&rng) - 1) * bound);
    }
    return VAE_OK;
}

const float *vae__classifier_tensor(const vae_classifier *c, int t) { return P(c, c->params, t); }
const vae_classifier_config *vae_classifier_get_config(const vae_classifier *c) { return &c->cfg; }
size_t vae_classifier_num_params(const vae_classifier *c) { return c->n_params; }
void vae_classifier_set_adam(vae_classifier *c, const vae_adam *a) { c->adam = *a; }

/* Rows r0..r0+B of the slice's images through the net into w's buffers. */
static void forward(const vae_classifier *c, worker *w, const float *x, int B)
{
    float *p = c->params;
    size_t n1 = (size_t)B * c->cfg.conv1 * c->g1.OH * c->g1.OW;
    vae__conv2d_forward(w->a1, x, P(c, p, 0), P(c, p, 1), B, &c->g1, w->col);
    vae__relu_forward(w->a1, n1);
    vae__conv2d_forward(w->a2, w->a1, P(c, p, 2), P(c, p, 3), B, &c->g2, w->col);
    vae__relu_forward(w->a2, (size_t)B * c->F);
    vae__linear_forward(w->h, w->a2, P(c, p, 4), P(c, p, 5), B, c->F,
                        c->cfg.hidden);
    vae__relu_forward(w->h, (size_t)B * c->cfg.hidden);
    vae__linear_forward(w->logits, w->h, P(c, p, 6), P(c, p, 7), B,
                        c->cfg.hidden, c->cfg.classes);
}

/* The slice's gradient of scale * its summed cross-entropy into w->grad;
 * w->prob holds the forward's softmax. */
static void backward(const vae_classifier *c, worker *w, const float *x, const uint8_t *y, int B,
                     float scale)
{
    float *p = c->params, *g = w->grad;
    int K = c->cfg.classes, H = c->cfg.hidden;
    vae__softmax_xent_backward(w->dlogits, w->prob, y, scale, B, K);
    vae__linear_backward(w->dh, P(c, g, 6), P(c, g, 7), w->dlogits, w->h, P(c, p, 6), B, H, K);
    vae__relu_backward(w->dh, w->h, (size_t)B * H);
    vae__linear_backward(w->d2, P(c, g, 4), P(c, g, 5), w->dh, w->a2, P(c, p, 4), B, c->F, H);
    vae__relu_backward(w->d2, w->a2, (size_t)B * c->F);
    vae__conv2d_backward(w->d1, P(c, g, 2), P(c, g, 3), w->d2, w->a1, P(c, p, 2), B, &c->g2,
                         w->col);
    vae__relu_backward(w->d1, w->a1, (size_t)B * c->cfg.conv1 * c->g1.OH * c->g1.OW);
    vae__conv2d_backward(NULL, P(c, g, 0), P(c, g, 1), w->d1, x, P(c, p, 0), B, &c->g1, w->col);
}

static int argmax(const float *p, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

static int check_images(const float *x, long n, long max, vae_error *err)
{
    if (!x || n < 1 || n > max)
        return vae__error(err, VAE_EINVAL, "classifier: %ld images: need 1..%ld and the data", n,
                          max);
    return VAE_OK;
}

int vae_classifier_train_step(vae_classifier *c, const float *x, const uint8_t *labels, int B,
                              double *loss_sum, int *correct, vae_error *err)
{
    int rc = check_images(x, B, c->max_batch, err);
    if (rc) return rc;
    if (!labels) return vae__error(err, VAE_EINVAL, "classifier: training needs labels");
    for (int i = 0; i < B; i++)
        if (labels[i] >= c->cfg.classes)
            return vae__error(err, VAE_EINVAL, "classifier: label %d of image %d is past the %d "
                              "classes", labels[i], i, c->cfg.classes);
    int T = c->T < B ? c->T : B;
    double loss = 0;
    int right = 0;
    size_t np = c->n_params;
#pragma omp parallel num_threads(T) reduction(+ : loss, right)
    {
        int t = omp_get_thread_num(), r0 = B * t / T, r1 = B * (t + 1) / T;
        worker *w = &c->w[t];
        const float *xs = x + (size_t)r0 * c->D;
        forward(c, w, xs, r1 - r0);
        loss += vae__softmax_xent_forward(w->logits, labels + r0, r1 - r0, c->cfg.classes,
                                          w->prob);
        for (int i = 0; i < r1 - r0; i++)
            right += argmax(w->prob + (size_t)i * c->cfg.classes, c->cfg.classes) == labels[r0 + i];
        backward(c, w, xs, labels + r0, r1 - r0, 1.0f / B);
    }
    if (loss_sum) *loss_sum = loss;
    if (correct) *correct = right;
    if (!isfinite(loss))
        return vae__error(err, VAE_ENUMERIC, "classifier: the loss is not finite (step %ld)",
                          c->step + 1);
    c->step++;
    // the slices' gradients summed in slice order (the same bits for a
    // thread count), then Adam, both over blocks of the parameters
    const long t_step = c->step;
#pragma omp parallel for num_threads(T) schedule(static)
    for (size_t b0 = 0; b0 < np; b0 += 32768) {
        size_t n = np - b0 < 32768 ? np - b0 : 32768;
        float *g = c->grad + b0;
        memcpy(g, c->w[0].grad + b0, n * sizeof *g);
        for (int t = 1; t < T; t++) vae__add_into(g, c->w[t].grad + b0, n);
        vae__adam_update(c->params + b0, g, c->m + b0, c->v + b0, n, &c->adam, t_step, 1.0f);
    }
    return VAE_OK;
}

int vae_classifier_predict(vae_classifier *c, const float *x, long n, float *prob, float *features,
                           vae_error *err)
{
    int rc = check_images(x, n, LONG_MAX, err);
    if (rc) return rc;
    int rows = (c->max_batch + c->T - 1) / c->T, K = c->cfg.classes, H = c->cfg.hidden;
    long blocks = (n + rows - 1) / rows;
#pragma omp parallel for num_threads(c->T) schedule(dynamic)
    for (long b = 0; b < blocks; b++) {
        worker *w = &c->w[omp_get_thread_num()];
        long r0 = b * rows;
        int B = (int)(n - r0 < rows ? n - r0 : rows);
        forward(c, w, x + (size_t)r0 * c->D, B);
        if (prob) vae__softmax_rows(w->logits, B, K, prob + (size_t)r0 * K);
        for (int i = 0; features && i < B; i++)
            memcpy(features + (size_t)(r0 + i) * H, w->h + (size_t)i * H, H * sizeof *w->h);
    }
    return VAE_OK;
}

/* ------------------------------------------------------------ files */

int vae_classifier_save(const vae_classifier *c, const char *path, const char *const *meta,
                        vae_error *err)
{
    char vals[7][16];
    const int *v = &c->cfg.channels;
    static const char *keys[7] = {"classifier.channels", "classifier.height", "classifier.width",
                                  "classifier.classes",  "classifier.conv1",  "classifier.conv2",
                                  "classifier.hidden"};
    const char *kv[2 * (MAX_META + 9) + 1];
    int n = 0;
    kv[n++] = "format", kv[n++] = CLS_FORMAT, kv[n++] = "format_version", kv[n++] = CLS_VERSION;
    for (int i = 0; i < 7; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", v[i]);
        kv[n++] = keys[i], kv[n++] = vals[i];
    }
    int extra = 0;
    for (const char *const *p = meta; p && p[0] && p[1]; p += 2) {
        if (!strcmp(p[0], "format") || !strcmp(p[0], "format_version") ||
            !strncmp(p[0], "classifier.", 11))
            return vae__error(err, VAE_EINVAL, "%s: metadata key '%s' is the library's", path, p[0]);
        if (++extra > MAX_META)
            return vae__error(err, VAE_EINVAL, "%s: more than %d metadata entries", path, MAX_META);
        kv[n++] = p[0], kv[n++] = p[1];
    }
    kv[n] = NULL;
    vae__st_tensor t[N_TENSORS];
    for (int i = 0; i < N_TENSORS; i++) {
        t[i].name = tensor_names[i];
        tensor_shape(c, i, &t[i].ndim, t[i].shape);
        t[i].data = c->params + c->off[i];
    }
    return vae__st_write(path, t, N_TENSORS, kv, err);
}

int vae_classifier_load(const char *path, int max_batch, vae_classifier **out, vae_error *err)
{
    if (!path || !out) return vae__error(err, VAE_EINVAL, "classifier: no path or result");
    *out = NULL;
    vae__st_file *f;
    int rc = vae__st_read(path, &f, err);
    if (rc) return rc;
    const char *fmt = vae__st_meta(f, "format"), *ver = vae__st_meta(f, "format_version");
    vae_classifier_config cfg;
    static const char *keys[7] = {"classifier.channels", "classifier.height", "classifier.width",
                                  "classifier.classes",  "classifier.conv1",  "classifier.conv2",
                                  "classifier.hidden"};
    int *v = &cfg.channels;
    if (!fmt || strcmp(fmt, CLS_FORMAT)) {
        rc = vae__error(err, VAE_EFORMAT, "%s: not a classifier (no format=%s in its metadata; "
                        "train one with vae classifier train)", path, CLS_FORMAT);
        goto done;
    }
    if (!ver || strcmp(ver, CLS_VERSION)) {
        rc = vae__error(err, VAE_EFORMAT, "%s: classifier format version %s, this build reads %s",
                        path, ver ? ver : "(none)", CLS_VERSION);
        goto done;
    }
    for (int i = 0; i < 7; i++)
        if (vae__parse_int(vae__st_meta(f, keys[i]), 0, 1 << 20, &v[i])) {
            rc = vae__error(err, VAE_EFORMAT, "%s: metadata %s is missing or not a number", path,
                            keys[i]);
            goto done;
        }
    if ((rc = alloc_classifier(&cfg, max_batch, out, err))) goto done;
    vae_classifier *c = *out;
    if (vae__st_count(f) != N_TENSORS) {
        rc = vae__error(err, VAE_EFORMAT, "%s: %d tensors, a classifier has %d", path,
                        vae__st_count(f), N_TENSORS);
        goto done;
    }
    for (int i = 0; i < N_TENSORS; i++) {
        const vae__st_tensor *t = vae__st_find(f, tensor_names[i]);
        int nd;
        int64_t s[4];
        tensor_shape(c, i, &nd, s);
        int same = t && t->ndim == nd;
        for (int j = 0; same && j < nd; j++) same = t->shape[j] == s[j];
        if (!same) {
            rc = vae__error(err, VAE_EFORMAT, "%s: tensor %s is missing or of the wrong shape",
                            path, tensor_names[i]);
            goto done;
        }
        memcpy(c->params + c->off[i], t->data, (c->off[i + 1] - c->off[i]) * sizeof *c->params);
    }
    for (size_t i = 0; i < c->n_params; i++)
        if (!isfinite(c->params[i])) {
            rc = vae__error(err, VAE_ENUMERIC, "%s: a weight is not finite", path);
            goto done;
        }
    if (!(c->meta = vae__st_meta_copy(f))) rc = vae__error(err, VAE_ENOMEM, "out of memory for %s", path);
done:
    vae__st_free(f);
    if (rc) {
        vae_classifier_free(*out);
        *out = NULL;
    }
    return rc;
}

const char *vae_classifier_meta(const vae_classifier *c, const char *key)
{
    return vae__meta_get(c->meta, key);
}
