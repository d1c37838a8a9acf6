/* model.c - the model handle: configuration, buffers, initialisation,
 * training step, evaluation, encoding and decoding. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <zlib.h>

#include "model.h"

#define VAE_MAX_PARAMS ((size_t)1 << 31) /* keeps every index in int range for BLAS */

void vae_config_default(vae_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->channels = 1;
    cfg->height = cfg->width = 28;
    cfg->n_hidden = 1;
    cfg->hidden[0] = 400;
    cfg->latent = 20;
    cfg->model = VAE_MODEL_VAE;
    cfg->likelihood = VAE_LIKELIHOOD_BERNOULLI;
    cfg->beta = 1.0f;
}

int vae_config_validate(const vae_config *c, vae_error *err)
{
    if (c->channels != 1 && c->channels != 3)
        return vae__error(err, VAE_EINVAL, "channels must be 1 or 3, not %d", c->channels);
    if (c->height < 1 || c->height > 4096 || c->width < 1 || c->width > 4096)
        return vae__error(err, VAE_EINVAL, "image size %dx%d is outside 1..4096", c->width,
                          c->height);
    if (c->n_hidden < 0 || c->n_hidden > VAE_MAX_HIDDEN)
        return vae__error(err, VAE_EINVAL, "%d hidden layers: at most %d are supported",
                          c->n_hidden, VAE_MAX_HIDDEN);
    for (int i = 0; i < c->n_hidden; i++)
        if (c->hidden[i] < 1 || c->hidden[i] > 65536)
            return vae__error(err, VAE_EINVAL, "hidden layer %d has width %d; use 1..65536",
                              i + 1, c->hidden[i]);
    if (c->latent < 1 || c->latent > 4096)
        return vae__error(err, VAE_EINVAL, "latent size %d is outside 1..4096", c->latent);
    if (c->model != VAE_MODEL_VAE)
        return vae__error(err, VAE_EUNSUPPORTED, "model kind %d is not supported", c->model);
    if (c->likelihood != VAE_LIKELIHOOD_BERNOULLI)
        return vae__error(err, VAE_EUNSUPPORTED, "likelihood %d is not supported", c->likelihood);
    if (!isfinite(c->beta) || c->beta < 0)
        return vae__error(err, VAE_EINVAL, "beta must be a finite number >= 0, not %g",
                          (double)c->beta);
    // parameter count, overflow-safe: every layer is at most 2^16 x 2^26
    vae__net net;
    vae__net_layout(&net, c, 1);
    if (net.n_params > VAE_MAX_PARAMS)
        return vae__error(err, VAE_EINVAL, "the model would have %zu parameters (limit %zu)",
                          net.n_params, VAE_MAX_PARAMS);
    return VAE_OK;
}

int vae__model_error(vae_model *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err.msg, sizeof m->err.msg, fmt, ap);
    va_end(ap);
    m->err.code = code;
    return code;
}

void vae_set_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int vae_model_create(const vae_config *cfg, int max_batch, uint64_t seed, vae_model **out,
                     vae_error *err)
{
    *out = NULL;
    int rc = vae_config_validate(cfg, err);
    if (rc) return rc;
    if (max_batch < 1 || max_batch > 65536)
        return vae__error(err, VAE_EINVAL, "batch size %d is outside 1..65536", max_batch);
    vae_model *m = calloc(1, sizeof *m);
    if (!m) return vae__error(err, VAE_ENOMEM, "out of memory");
    m->cfg = *cfg;
    vae__net_layout(&m->net, cfg, max_batch);
    size_t np = m->net.n_params;
    m->params = calloc(np, sizeof(float));
    m->grads = calloc(np, sizeof(float));
    m->adam_m = calloc(np, sizeof(float));
    m->adam_v = calloc(np, sizeof(float));
    m->acts = calloc(m->net.n_acts, sizeof(float));
    if (!m->params || !m->grads || !m->adam_m || !m->adam_v || !m->acts) {
        vae_model_free(m);
        return vae__error(err, VAE_ENOMEM, "out of memory for a model of %zu parameters", np);
    }
    vae__net_bind(&m->net, m->params, m->grads, m->acts);
    vae_adam_default(&m->adam);

    // nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
    vae_rng init;
    vae_rng_seed(&init, seed);
    for (int l = 0; l < m->net.n_layers; l++) {
        double bound = 1.0 / sqrt((double)m->net.in[l]);
        size_t nw = (size_t)m->net.out[l] * m->net.in[l] + m->net.out[l];
        float *p = m->params + m->net.w_off[l]; // weight, then bias right after it
        for (size_t i = 0; i < nw; i++) p[i] = (float)((2 * vae_rng_uniform(&init) - 1) * bound);
    }
    vae_rng_seed(&m->rng, seed ^ 0x5eed5eed5eed5eedull);
    *out = m;
    return VAE_OK;
}

static void free_workers(vae_model *m)
{
    for (int t = 1; t < m->n_workers; t++) {
        free(m->workers[t].grads);
        free(m->workers[t].acts);
    }
    free(m->workers);
    m->workers = NULL;
    m->n_workers = 0;
}

/* One worker per thread the step will run on, allocated once (and again
 * only when the thread count changes). */
static int ensure_workers(vae_model *m, int n)
{
    if (n == m->n_workers) return VAE_OK;
    free_workers(m);
    m->workers = calloc((size_t)n, sizeof *m->workers);
    if (!m->workers) return VAE_ENOMEM;
    m->n_workers = n;
    m->workers[0] = (vae__worker){.net = m->net, .grads = m->grads, .acts = m->acts};
    for (int t = 1; t < n; t++) {
        vae__worker *w = &m->workers[t];
        w->net = m->net;
        w->grads = malloc(m->net.n_params * sizeof(float));
        w->acts = malloc(m->net.n_acts * sizeof(float));
        if (!w->grads || !w->acts) {
            free_workers(m);
            return VAE_ENOMEM;
        }
        vae__net_bind(&w->net, m->params, w->grads, w->acts);
    }
    return VAE_OK;
}

int vae_model_set_max_batch(vae_model *m, int max_batch)
{
    if (max_batch < 1 || max_batch > 65536)
        return vae__model_error(m, VAE_EINVAL, "batch size %d is outside 1..65536", max_batch);
    vae__net net;
    vae__net_layout(&net, &m->cfg, max_batch);
    float *acts = calloc(net.n_acts, sizeof(float));
    if (!acts) return vae__model_error(m, VAE_ENOMEM, "out of memory for batches of %d", max_batch);
    free_workers(m); // sized for the old batch
    free(m->acts);
    m->acts = acts;
    m->net = net;
    vae__net_bind(&m->net, m->params, m->grads, m->acts);
    return VAE_OK;
}

void vae_model_free(vae_model *m)
{
    if (!m) return;
    free_workers(m);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->acts);
    if (m->meta)
        for (char **p = m->meta; *p; p++) free(*p);
    free(m->meta);
    free(m);
}

const char *vae_model_errmsg(const vae_model *m) { return m ? m->err.msg : "no model"; }
const vae_config *vae_model_config(const vae_model *m) { return &m->cfg; }
size_t vae_model_num_params(const vae_model *m) { return m->net.n_params; }
int vae_model_input_size(const vae_model *m) { return m->net.D; }
int vae_model_max_batch(const vae_model *m) { return m->net.max_batch; }
void vae_model_set_adam(vae_model *m, const vae_adam *a) { m->adam = *a; }
void vae_model_set_grad_clip(vae_model *m, float max_norm)
{
    m->clip_norm = max_norm > 0 && isfinite(max_norm) ? max_norm : 0;
}
long vae_model_step(const vae_model *m) { return m->step; }
vae_rng *vae_model_rng(vae_model *m) { return &m->rng; }

const char *vae_model_meta(const vae_model *m, const char *key)
{
    if (m->meta)
        for (char **p = m->meta; p[0]; p += 2)
            if (!strcmp(p[0], key)) return p[1];
    return NULL;
}

static void fill_normal(float *out, size_t n, vae_rng *rng)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)vae_rng_normal(rng);
}

static void add_stats(vae_stats *st, double rec, double kl, float beta, int B)
{
    if (!st) return;
    st->rec += rec;
    st->kl += kl;
    st->loss += rec + (double)beta * kl;
    st->n += B;
}

VAE_VECTOR_CLONES
static void add_into(float *restrict g, const float *restrict h, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] += h[i];
}

VAE_VECTOR_CLONES
static double sum_squares(const float *g, size_t n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

/* The sum of a loss over the workers, in a fixed order. */
static void worker_sums(const vae_model *m, int T, double *rec, double *kl)
{
    *rec = *kl = 0;
    for (int t = 0; t < T; t++) *rec += m->workers[t].rec, *kl += m->workers[t].kl;
}

int vae__model_step(vae_model *m, const float *x, int B, int update, vae_stats *st)
{
    return vae__model_step_shard(m, x, B, B, update, st);
}

int vae__model_step_shard(vae_model *m, const float *x, int B, int B_total, int update,
                          vae_stats *st)
{
    // Data-parallel: each thread takes a slice of the batch with single-threaded
    // BLAS (OpenBLAS runs serially inside a parallel region), so one parallel
    // region does the whole step and no thread waits on another's GEMM.
    int T = omp_get_max_threads();
    if (T > B) T = B;
    if (T < 1) T = 1; // an empty shard still takes part in the reduction
    if (ensure_workers(m, T))
        return vae__model_error(m, VAE_ENOMEM, "out of memory for %d training threads", T);
    int D = m->net.D, d = m->net.d, finite = 1, reduce = m->reduce != NULL;
    float beta = m->cfg.beta, scale = 1.0f / B_total;
    m->reduce_rc = VAE_OK;
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(), r0 = B * t / T, b = B * (t + 1) / T - r0;
        vae__worker *wk = &m->workers[t];
        vae__net *net = &wk->net;
        if (b > 0) {
            const float *xs = x + (size_t)r0 * D;
            if (t > 0) memcpy(net->eps, m->net.eps + (size_t)r0 * d, (size_t)b * d * sizeof(float));
            vae__net_forward(net, xs, xs, b, &wk->rec, &wk->kl);
            vae__net_backward(net, xs, xs, b, beta, scale);
        } else { // no rows here: a zero gradient (backward writes, so clear it)
            memset(net->grads, 0, m->net.n_params * sizeof(float));
            wk->rec = wk->kl = 0;
        }
#pragma omp barrier
        // Each thread owns a slice of the parameters: it sums the workers'
        // gradients there, in a fixed order (reproducible for a thread count).
        // Without a reduce callback the squared norm comes in the same pass.
        size_t n = m->net.n_params, p0 = n * t / T, p1 = n * (t + 1) / T;
        double ss = 0;
        for (size_t c = p0; c < p1; c += 4096) { // in cache-sized chunks: one pass over memory
            size_t len = p1 - c < 4096 ? p1 - c : 4096;
            for (int w = 1; w < T; w++) add_into(m->grads + c, m->workers[w].grads + c, len);
            if (!reduce) ss += sum_squares(m->grads + c, len);
        }
        if (reduce) { // combine the processes' gradients before the norm
#pragma omp barrier
#pragma omp master
            {
                double sums[2];
                worker_sums(m, T, &sums[0], &sums[1]);
                m->reduce_rc = m->reduce(m->reduce_ctx, m->grads, n, sums, 2);
                m->reduce_sums[0] = sums[0], m->reduce_sums[1] = sums[1];
            }
#pragma omp barrier
            for (size_t c = p0; c < p1; c += 4096)
                ss += sum_squares(m->grads + c, p1 - c < 4096 ? p1 - c : 4096);
        }
        wk->sumsq = ss;
#pragma omp barrier
        // every thread reaches the same verdict from the same sums (and with
        // a reduce callback, every process too)
        double rec, kl, sumsq = 0;
        if (reduce) rec = m->reduce_sums[0], kl = m->reduce_sums[1];
        else worker_sums(m, T, &rec, &kl);
        for (int w = 0; w < T; w++) sumsq += m->workers[w].sumsq;
        double norm = sqrt(sumsq);
        int ok = m->reduce_rc == VAE_OK && isfinite(rec + (double)beta * kl) && isfinite(norm);
        float gscale = m->clip_norm > 0 && norm > m->clip_norm
                           ? (float)(m->clip_norm / (norm + 1e-6)) : 1.0f;
        if (t == 0) finite = ok, m->grad_norm = norm;
        if (update && ok)
            vae__adam_update(m->params + p0, m->grads + p0, m->adam_m + p0, m->adam_v + p0,
                             p1 - p0, &m->adam, m->step + 1, gscale);
    }
    double rec, kl;
    if (reduce) rec = m->reduce_sums[0], kl = m->reduce_sums[1];
    else worker_sums(m, T, &rec, &kl);
    if (m->reduce_rc != VAE_OK)
        return vae__model_error(m, m->reduce_rc,
                                "step %ld: combining the gradients across processes failed (%s); "
                                "weights left unchanged", m->step + 1, vae_strerror(m->reduce_rc));
    if (!finite)
        return vae__model_error(m, VAE_ENUMERIC,
                                "step %ld: the loss is %g and the gradient norm %g; weights "
                                "left unchanged (try a lower --lr or --clip-grad)",
                                m->step + 1, rec + (double)beta * kl, m->grad_norm);
    if (update) m->step++;
    add_stats(st, rec, kl, beta, reduce ? B_total : B);
    return VAE_OK;
}

static int check_batch(vae_model *m, const void *x, int B, int max)
{
    if (!x || B < 1 || B > max)
        return vae__model_error(m, VAE_EINVAL, "batch of %d images: need 1..%d and data", B, max);
    return VAE_OK;
}

int vae_train_step(vae_model *m, const float *x, int B, vae_stats *st)
{
    int rc = check_batch(m, x, B, m->net.max_batch);
    if (rc) return rc;
    return vae_train_step_shard(m, x, B, 0, B, st);
}

int vae_train_step_shard(vae_model *m, const float *x, int B, int first, int B_total,
                         vae_stats *st)
{
    if (B_total < 1 || B < 0 || B > m->net.max_batch || first < 0 || first > B_total - B ||
        (B > 0 && !x))
        return vae__model_error(m, VAE_EINVAL,
                                "shard of %d images at row %d of a batch of %d: need 0..%d rows "
                                "inside the batch, and data", B, first, B_total, m->net.max_batch);
    // the global batch's noise: the rows of other processes are drawn and dropped
    size_t d = (size_t)m->net.d;
    for (size_t i = 0; i < (size_t)first * d; i++) vae_rng_normal(&m->rng);
    fill_normal(m->net.eps, (size_t)B * d, &m->rng);
    for (size_t i = 0; i < (size_t)(B_total - first - B) * d; i++) vae_rng_normal(&m->rng);
    return vae__model_step_shard(m, x, B, B_total, 1, st);
}

void vae_model_set_grad_reduce(vae_model *m, vae_grad_reduce_fn fn, void *ctx)
{
    m->reduce = fn;
    m->reduce_ctx = fn ? ctx : NULL;
}

uint32_t vae_model_checksum(const vae_model *m)
{
    // zlib's crc32 takes uInt lengths: feed it in pieces of at most 1 GiB
    const void *bufs[3] = {m->params, m->adam_m, m->adam_v};
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = bufs[k];
        size_t left = m->net.n_params * sizeof(float);
        for (; left > 0;) {
            uInt part = left > (1u << 30) ? 1u << 30 : (uInt)left;
            crc = crc32(crc, p, part);
            p += part, left -= part;
        }
    }
    // then the step count and the noise RNG's state, as little-endian words
    uint64_t words[7] = {(uint64_t)m->step, m->rng.s[0], m->rng.s[1], m->rng.s[2], m->rng.s[3],
                         (uint64_t)m->rng.has_spare, 0};
    memcpy(&words[6], &m->rng.spare, sizeof words[6]);
    unsigned char bytes[sizeof words];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(words[i / 8] >> (8 * (i % 8)));
    return (uint32_t)crc32(crc, bytes, sizeof bytes);
}

int vae_evaluate(vae_model *m, const float *x, int B, vae_rng *rng, vae_stats *st)
{
    int rc = check_batch(m, x, B, 1 << 30);
    if (rc) return rc;
    int D = m->net.D;
    for (int i = 0; i < B; i += m->net.max_batch) {
        int b = B - i < m->net.max_batch ? B - i : m->net.max_batch;
        const float *xb = x + (size_t)i * D;
        fill_normal(m->net.eps, (size_t)b * m->net.d, rng);
        double rec, kl;
        vae__net_forward(&m->net, xb, xb, b, &rec, &kl);
        add_stats(st, rec, kl, m->cfg.beta, b);
    }
    return VAE_OK;
}

int vae_encode(vae_model *m, const float *x, int B, float *mu, float *logvar)
{
    int rc = check_batch(m, x, B, 1 << 30);
    if (rc) return rc;
    int d = m->net.d;
    for (int i = 0; i < B; i += m->net.max_batch) {
        int b = B - i < m->net.max_batch ? B - i : m->net.max_batch;
        vae__net_encode(&m->net, x + (size_t)i * m->net.D, b);
        const float *head = m->net.act[m->net.k];
        for (int r = 0; r < b; r++) {
            size_t o = (size_t)(i + r) * d;
            if (mu) memcpy(mu + o, head + (size_t)r * 2 * d, d * sizeof(float));
            if (logvar) memcpy(logvar + o, head + (size_t)r * 2 * d + d, d * sizeof(float));
        }
    }
    return VAE_OK;
}

int vae_decode(vae_model *m, const float *z, int B, float *out)
{
    int rc = check_batch(m, z, B, 1 << 30);
    if (rc) return rc;
    int D = m->net.D;
    for (int i = 0; i < B; i += m->net.max_batch) {
        int b = B - i < m->net.max_batch ? B - i : m->net.max_batch;
        vae__net_decode(&m->net, z + (size_t)i * m->net.d, b);
        const float *logits = m->net.act[m->net.n_layers - 1];
        float *o = out + (size_t)i * D;
        for (size_t j = 0; j < (size_t)b * D; j++) o[j] = 1.0f / (1.0f + expf(-logits[j]));
    }
    return VAE_OK;
}

/* Names follow the PyTorch twin (scripts/torch_twin.py): encoder.i, fc_mu,
 * fc_logvar (the two halves of the head), decoder.j. */
int vae__model_tensors(vae_model *m, vae__param_view *v)
{
    const vae__net *net = &m->net;
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        float *w = m->params + net->w_off[l], *b = m->params + net->b_off[l];
        int IN = net->in[l], OUT = net->out[l];
        if (l == net->k) { // head: fc_mu is the first d rows, fc_logvar the rest
            int d = net->d;
            v[n++] = (vae__param_view){"fc_mu.weight", 2, {d, IN}, w};
            v[n++] = (vae__param_view){"fc_mu.bias", 1, {d, 0}, b};
            v[n++] = (vae__param_view){"fc_logvar.weight", 2, {d, IN}, w + (size_t)d * IN};
            v[n++] = (vae__param_view){"fc_logvar.bias", 1, {d, 0}, b + d};
            continue;
        }
        const char *part = l < net->k ? "encoder" : "decoder";
        int idx = l < net->k ? l : l - net->k - 1;
        v[n] = (vae__param_view){"", 2, {OUT, IN}, w};
        snprintf(v[n++].name, sizeof v->name, "%s.%d.weight", part, idx);
        v[n] = (vae__param_view){"", 1, {OUT, 0}, b};
        snprintf(v[n++].name, sizeof v->name, "%s.%d.bias", part, idx);
    }
    return n;
}
