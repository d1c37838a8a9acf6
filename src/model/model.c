/* model.c - the model handle: configuration, buffers, initialisation,
 * training step, evaluation, encoding and decoding. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <zlib.h>

#include "model/model.h"
#include "nn/adam.h"
#include "nn/latent.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/rng.h"

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
    cfg->sigma = 0.1f;
    cfg->sigma_mode = VAE_SIGMA_FIXED;
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
    if (c->arch != VAE_ARCH_MLP && c->arch != VAE_ARCH_CONV)
        return vae__error(err, VAE_EUNSUPPORTED, "architecture %d is not supported", c->arch);
    if (c->arch == VAE_ARCH_CONV && c->n_hidden < 1)
        return vae__error(err, VAE_EINVAL, "the conv architecture needs at least one conv layer");
    if (c->model < VAE_MODEL_VAE || c->model > VAE_MODEL_CVAE)
        return vae__error(err, VAE_EUNSUPPORTED, "model kind %d is not supported", c->model);
    if (c->model == VAE_MODEL_CVAE && (c->n_classes < 2 || c->n_classes > 256))
        return vae__error(err, VAE_EINVAL, "a conditional VAE needs 2..256 label classes, not %d",
                          c->n_classes);
    if (c->model == VAE_MODEL_IWAE) {
        if (c->iwae_k < 1 || c->iwae_k > 4096)
            return vae__error(err, VAE_EINVAL, "IWAE samples k = %d is outside 1..4096", c->iwae_k);
        if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN && c->sigma_mode != VAE_SIGMA_FIXED)
            return vae__error(err, VAE_EUNSUPPORTED, "IWAE with a learned sigma is not supported");
        if (c->free_bits > 0)
            return vae__error(err, VAE_EUNSUPPORTED, "IWAE with free bits is not supported");
    }
    if (!isfinite(c->l1) || c->l1 < 0)
        return vae__error(err, VAE_EINVAL, "l1 must be a finite number >= 0, not %g", (double)c->l1);
    if (c->model == VAE_MODEL_DAE &&
        !((c->noise == VAE_NOISE_GAUSSIAN && c->noise_level > 0 && c->noise_level <= 100) ||
          (c->noise == VAE_NOISE_MASK && c->noise_level > 0 && c->noise_level < 1)))
        return vae__error(err, VAE_EINVAL, "a denoising AE needs noise: gaussian with sigma in "
                                           "(0, 100] or mask with p in (0, 1)");
    if (c->likelihood < VAE_LIKELIHOOD_BERNOULLI || c->likelihood > VAE_LIKELIHOOD_CONT_BERNOULLI)
        return vae__error(err, VAE_EUNSUPPORTED, "likelihood %d is not supported", c->likelihood);
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN) {
        if (!(c->sigma >= expf((float)VAE_LOG_SIGMA_MIN) && c->sigma <= expf((float)VAE_LOG_SIGMA_MAX)))
            return vae__error(err, VAE_EINVAL, "sigma must be in [%.4g, %.4g], not %g",
                              exp(VAE_LOG_SIGMA_MIN), exp(VAE_LOG_SIGMA_MAX), (double)c->sigma);
        if (c->sigma_mode < VAE_SIGMA_FIXED || c->sigma_mode > VAE_SIGMA_LEARNED_PIXEL)
            return vae__error(err, VAE_EINVAL, "sigma mode %d is not supported", c->sigma_mode);
    }
    if (!isfinite(c->beta) || c->beta < 0)
        return vae__error(err, VAE_EINVAL, "beta must be a finite number >= 0, not %g",
                          (double)c->beta);
    if (!isfinite(c->free_bits) || c->free_bits < 0)
        return vae__error(err, VAE_EINVAL, "free bits must be a finite number >= 0, not %g",
                          (double)c->free_bits);
    // parameter count, overflow-safe: every layer is at most 2^16 x 2^26
    vae__net net;
    if (vae__net_layout(&net, c, 1))
        return vae__error(err, VAE_EINVAL,
                          "%d stride-%d conv layers do not fit a %dx%d image (each halves it; "
                          "use fewer --hidden layers)", c->n_hidden, VAE_CONV_STRIDE, c->width,
                          c->height);
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
    m->unit_bound_max = 1e30;

    // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
    // fan_in computed from the weight's dimension 1 on (which, for
    // nn.ConvTranspose2d's (in, out, K, K) weight, counts output channels)
    vae_rng init;
    vae_rng_seed(&init, seed);
    const vae__net *net = &m->net;
    for (int l = 0; l < net->n_layers; l++) {
        const vae__conv_geom *g = &net->geom[l];
        int fan_in = net->kind[l] == VAE_LAYER_CONV    ? g->C * g->K * g->K
                     : net->kind[l] == VAE_LAYER_CONVT ? g->OC * g->K * g->K
                                                       : net->in[l];
        double bound = 1.0 / sqrt((double)fan_in);
        size_t end = l + 1 < net->n_layers ? net->w_off[l + 1] : net->ls_off;
        float *p = m->params + net->w_off[l]; // weight, then bias right after it
        for (size_t i = 0; i < end - net->w_off[l]; i++)
            p[i] = (float)((2 * vae_rng_uniform(&init) - 1) * bound);
    }
    for (int i = 0; i < net->n_ls; i++) m->params[net->ls_off + i] = net->ls_fixed;
    vae_rng_seed(&m->rng, seed ^ 0x5eed5eed5eed5eedull);
    *out = m;
    return VAE_OK;
}

static void free_workers(vae_model *m)
{
    for (int t = 0; m->workers && t < m->n_workers; t++) {
        free(m->workers[t].scratch);
        free(m->workers[t].unit_grad);
        if (t == 0) continue; // the model's own buffers
        free(m->workers[t].grads);
        free(m->workers[t].acts);
    }
    free(m->workers);
    free(m->nets);
    m->workers = NULL;
    m->nets = NULL;
    m->n_workers = 0;
}

/* One worker per thread the step will run on, allocated once (and again
 * only when the thread count changes). */
static int ensure_workers(vae_model *m, int n)
{
    if (n == m->n_workers) return VAE_OK;
    free_workers(m);
    m->workers = calloc((size_t)n, sizeof *m->workers);
    m->nets = calloc((size_t)n, sizeof *m->nets);
    m->n_workers = n;
    if (!m->workers || !m->nets) {
        free_workers(m);
        return VAE_ENOMEM;
    }
    m->workers[0] = (vae__worker){.net = m->net, .grads = m->grads, .acts = m->acts};
    for (int t = 0; t < n; t++) {
        vae__worker *w = &m->workers[t];
        w->scratch = malloc(vae__net_wgrad_scratch(&m->net));
        // + 1: never a zero-size request, whose NULL would read as out of memory
        w->unit_grad = malloc((vae__net_wgrad_unit_max(&m->net) + 1) * sizeof(float));
        if (t > 0) {
            w->net = m->net;
            w->grads = malloc(m->net.n_params * sizeof(float));
            w->acts = malloc(m->net.n_acts * sizeof(float));
        }
        if (!w->scratch || !w->unit_grad || !w->grads || !w->acts) {
            free_workers(m);
            return VAE_ENOMEM;
        }
        if (t > 0) vae__net_bind(&w->net, m->params, w->grads, w->acts);
        w->net.defer_wgrad = 1; // vae__net_weight_grad_unit sums them over the workers
        w->net.ready = m->ready;
        m->nets[t] = &w->net;
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
    free(m->noisy);
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
void vae_model_set_beta(vae_model *m, float beta)
{
    if (isfinite(beta) && beta >= 0) m->cfg.beta = beta;
}
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

/* The weight of the KL term, or of the sparse AE's L1 penalty. */
static float reg_weight(const vae_model *m)
{
    switch (m->cfg.model) {
    case VAE_MODEL_SPARSE_AE: return m->cfg.l1;
    case VAE_MODEL_AE:
    case VAE_MODEL_DAE: return 0;
    case VAE_MODEL_IWAE: return 1; // rec + kl is its loss
    default: return m->cfg.beta;
    }
}

static void add_stats(vae_stats *st, double rec, double kl, float beta, int B)
{
    if (!st) return;
    st->rec += rec;
    st->kl += kl;
    st->loss += rec + (double)beta * kl;
    st->n += B;
}

/* Adds the other workers' gradients to the model's over [a, b) (nothing when
 * b <= a), in cache-sized chunks; returns the squared sum of the result. */
static double sum_workers(vae_model *m, int T, size_t a, size_t b)
{
    double ss = 0;
    for (size_t c = a; c < b; c += 4096) {
        size_t len = b - c < 4096 ? b - c : 4096;
        for (int w = 1; w < T; w++) vae__add_into(m->grads + c, m->workers[w].grads + c, len);
        ss += vae__sum_squares(m->grads + c, len);
    }
    return ss;
}

/* Parameters per block of the Adam update the threads share out. */
enum { ADAM_BLOCK = 32768 };

/* The sum of a loss over the workers, in a fixed order. */
static void worker_sums(const vae_model *m, int T, double *rec, double *kl)
{
    *rec = *kl = 0;
    for (int t = 0; t < T; t++) *rec += m->workers[t].rec, *kl += m->workers[t].kl;
}

/* Whether an update step may apply Adam to each weight-gradient unit as
 * soon as it is formed, while the gradient is still in cache, instead of in
 * a pass after the norm: not when the update needs the whole gradient's norm
 * first (clipping; across processes, after the reduce) or when some
 * parameters lie outside the linear layers' units. */
static int updates_by_unit(const vae_model *m, int update)
{
    if (!update || m->reduce || m->clip_norm > 0 || m->net.sigma_learned) return 0;
    for (int l = 0; l < m->net.n_layers; l++)
        if (m->net.kind[l] != VAE_LAYER_LINEAR) return 0;
    return 1;
}

/* Whether the units formed from now on may be updated at once: every slice
 * is past its backward pass (so no slice still reads the weights), the loss
 * is finite, and no weight gradient can exceed unit_bound_max (1e30). Then
 * the check after the units passes and the step updates: the weights are
 * never left half updated. Units formed earlier wait for the pass after the
 * norm. */
static int units_may_update(vae_model *m, int T, float beta)
{
    if (atomic_load_explicit(&m->bwd_done, memory_order_acquire) < T) return 0;
    double rec, kl;
    worker_sums(m, T, &rec, &kl);
    if (!isfinite(rec + (double)beta * kl)) return 0;
    for (int l = 0; l < m->net.n_layers; l++) {
        double bound = 0;
        for (int t = 0; t < T; t++) bound += m->workers[t].net.wbound[l];
        if (!(bound < m->unit_bound_max)) return 0; // NaN too
    }
    return 1;
}

/* Adam on unit u's values, with their gradient in g (the weight rows, then
 * the biases) or, for NULL, in m->grads. */
static void update_unit(vae_model *m, int u, const float *g, float scale)
{
    vae__wgrad_span s = vae__net_wgrad_span(&m->net, u);
    const float *gw = g ? g : m->grads + s.w_off, *gb = g ? g + s.w_len : m->grads + s.b_off;
    vae__adam_update(m->params + s.w_off, gw, m->adam_m + s.w_off, m->adam_v + s.w_off, s.w_len,
                     &m->adam, m->step + 1, scale);
    vae__adam_update(m->params + s.b_off, gb, m->adam_m + s.b_off, m->adam_v + s.b_off, s.b_len,
                     &m->adam, m->step + 1, scale);
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
    int by_unit = updates_by_unit(m, update);
    float beta = reg_weight(m), scale = 1.0f / B_total;
    m->reduce_rc = VAE_OK;
    for (int l = 0; l < VAE_MAX_LAYERS; l++)
        atomic_store_explicit(&m->ready[l], 0, memory_order_relaxed);
    atomic_store_explicit(&m->bwd_done, 0, memory_order_relaxed);
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(), r0 = B * t / T, b = B * (t + 1) / T - r0;
        vae__worker *wk = &m->workers[t];
        vae__net *net = &wk->net;
        const float *xs = x + (size_t)r0 * D, *in = m->input ? m->input + (size_t)r0 * D : xs;
        if (b > 0) {
            size_t nd = (size_t)d * m->net.n_samples; // noise values per image
            net->labels = m->labels ? m->labels + r0 : NULL;
            if (m->draw_noise) {
                for (int i = 0; i < b; i++) {
                    vae_rng r;
                    vae__rng_stream(&r, m->noise_key, m->noise_row0 + r0 + i);
                    fill_normal(net->eps + i * nd, nd, &r);
                }
            } else if (t > 0) { // the caller's noise, in the model's own net
                memcpy(net->eps, m->net.eps + r0 * nd, b * nd * sizeof(float));
            }
            vae__net_forward(net, in, xs, b, &wk->rec, &wk->kl);
        } else {
            wk->rec = wk->kl = 0;
        }
        if (m->cfg.free_bits > 0) { // which dimensions' batch-mean KL is over the floor
            if (b > 0) vae__gauss_kl_dims(net->kl_dim, net->act[net->k], b, d);
            else memset(net->kl_dim, 0, (size_t)d * sizeof *net->kl_dim);
#pragma omp barrier
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int w = 0; w < T; w++) s += m->workers[w].net.kl_dim[j];
                net->kl_mask[j] = B > 0 && s / B >= m->cfg.free_bits ? 1.0f : 0.0f;
            }
        }
        if (b > 0) {
            vae__net_backward(net, in, xs, b, beta, scale);
        } else { // no rows here: a zero gradient (backward writes, so clear it)
            vae__net_skip_backward(net);
            memset(net->grads, 0, m->net.n_params * sizeof(float));
        }
        if (by_unit) {
            vae__net_wgrad_bounds(net);
            atomic_fetch_add_explicit(&m->bwd_done, 1, memory_order_release);
        }
        // The linear layers' weight gradients over the whole batch, in units
        // the threads take as they come, each as soon as every slice's
        // backward pass is past its layer (a thread that finished its slice
        // early takes more): one GEMM per worker's slice, summed in worker
        // order, whichever thread runs it; the units' squared norms are added
        // in unit order below. Reproducible for a thread count. Once it is
        // safe (units_may_update), a unit's gradient goes to the thread's
        // unit_grad and Adam updates its rows at once: the same bits as the
        // pass below, without writing the gradient out and reading it back.
        int U = vae__net_wgrad_units(&m->net), now = 0; // once true, true for the step
#pragma omp for schedule(dynamic)
        for (int u = 0; u < U; u++) {
            now = now || (by_unit && units_may_update(m, T, beta));
            m->unit_updated[u] = (unsigned char)now;
            m->wgrad_ss[u] = vae__net_weight_grad_unit(m->nets, T, m->grads, u, wk->scratch,
                                                       now ? wk->unit_grad : NULL);
            if (now) update_unit(m, u, wk->unit_grad, 1.0f);
        }
        double ss = 0;
        // The other gradients (conv layers, a learned sigma) each worker wrote
        // for its rows: summed here over this thread's share of the parameters.
        size_t n = m->net.n_params, p0 = n * t / T, p1 = n * (t + 1) / T;
        for (int l = 0; l <= m->net.n_layers; l++) { // l = n_layers: log sigma
            if (l < m->net.n_layers && m->net.kind[l] == VAE_LAYER_LINEAR) continue;
            size_t a = l < m->net.n_layers ? m->net.w_off[l] : m->net.ls_off;
            size_t e = l + 1 < m->net.n_layers ? m->net.w_off[l + 1]
                     : l < m->net.n_layers     ? m->net.ls_off : n;
            ss += sum_workers(m, T, a > p0 ? a : p0, e < p1 ? e : p1);
        }
        if (reduce) { // combine the processes' gradients, then square this thread's share
#pragma omp barrier
#pragma omp master
            {
                double sums[2];
                worker_sums(m, T, &sums[0], &sums[1]);
                m->reduce_rc = m->reduce(m->reduce_ctx, m->grads, n, sums, 2);
                m->reduce_sums[0] = sums[0], m->reduce_sums[1] = sums[1];
            }
#pragma omp barrier
            ss = vae__sum_squares(m->grads + p0, p1 - p0);
        }
        wk->sumsq = ss;
#pragma omp barrier
        // every thread reaches the same verdict from the same sums (and with
        // a reduce callback, every process too)
        double rec, kl, sumsq = 0;
        if (reduce) rec = m->reduce_sums[0], kl = m->reduce_sums[1];
        else worker_sums(m, T, &rec, &kl);
        for (int u = 0; u < U && !reduce; u++) sumsq += m->wgrad_ss[u];
        for (int w = 0; w < T; w++) sumsq += m->workers[w].sumsq;
        double norm = sqrt(sumsq);
        int ok = m->reduce_rc == VAE_OK && isfinite(rec + (double)beta * kl) && isfinite(norm);
        float gscale = m->clip_norm > 0 && norm > m->clip_norm
                           ? (float)(m->clip_norm / (norm + 1e-6)) : 1.0f;
        if (t == 0) finite = ok, m->grad_norm = norm;
        if (ok && by_unit) { // the units not updated yet
#pragma omp for schedule(dynamic) nowait
            for (int u = 0; u < U; u++)
                if (!m->unit_updated[u]) update_unit(m, u, NULL, gscale);
        } else if (update && ok) { // in blocks the threads take as they come
            size_t blocks = (n + ADAM_BLOCK - 1) / ADAM_BLOCK;
#pragma omp for schedule(dynamic) nowait
            for (size_t i = 0; i < blocks; i++) {
                size_t a = i * ADAM_BLOCK, len = n - a < ADAM_BLOCK ? n - a : ADAM_BLOCK;
                vae__adam_update(m->params + a, m->grads + a, m->adam_m + a, m->adam_v + a, len,
                                 &m->adam, m->step + 1, gscale);
            }
        }
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
    if (m->net.n_classes) { // a CVAE: every row needs its label
        if (!m->labels)
            return vae__model_error(m, VAE_EINVAL, "a conditional VAE needs labels: call "
                                                   "vae_model_set_labels first");
        for (int i = 0; i < B; i++)
            if (m->labels[i] >= m->net.n_classes)
                return vae__model_error(m, VAE_EINVAL, "label %d of row %d is not below the "
                                        "model's %d classes", m->labels[i], i, m->net.n_classes);
    }
    return VAE_OK;
}

void vae_model_set_labels(vae_model *m, const uint8_t *labels) { m->labels = labels; }
int vae_model_num_classes(const vae_model *m) { return m->net.n_classes; }

int vae_train_step(vae_model *m, const float *x, int B, vae_stats *st)
{
    if (B < 1) return check_batch(m, x, B, m->net.max_batch); // its message for an empty batch
    return vae_train_step_shard(m, x, B, 0, B, st);
}

/* The DAE's corrupted copy of x's rows first..first+B of a global batch of
 * B_total, in m->noisy: the other rows' draws are made and dropped, so every
 * process of a data-parallel run corrupts its rows as one process would. */
static int corrupt(vae_model *m, const float *x, int B, int first, int B_total)
{
    size_t D = (size_t)m->net.D, n = (size_t)B * D;
    if (n > m->noisy_cap) {
        float *p = realloc(m->noisy, n * sizeof *p);
        if (!p) return vae__model_error(m, VAE_ENOMEM, "out of memory for the corrupted batch");
        m->noisy = p, m->noisy_cap = n;
    }
    float level = m->cfg.noise_level;
    for (size_t i = 0; i < (size_t)B_total * D; i++) {
        float r = m->cfg.noise == VAE_NOISE_MASK ? (float)vae_rng_uniform(&m->rng)
                                                 : (float)vae_rng_normal(&m->rng);
        if (i < (size_t)first * D || i >= (size_t)first * D + n) continue;
        size_t k = i - (size_t)first * D;
        m->noisy[k] = m->cfg.noise == VAE_NOISE_MASK ? (r < level ? 0.0f : x[k]) : x[k] + level * r;
    }
    return VAE_OK;
}

int vae_train_step_shard(vae_model *m, const float *x, int B, int first, int B_total,
                         vae_stats *st)
{
    if (B_total < 1 || B < 0 || B > m->net.max_batch || first < 0 || first > B_total - B ||
        (B > 0 && !x))
        return vae__model_error(m, VAE_EINVAL,
                                "shard of %d images at row %d of a batch of %d: need 0..%d rows "
                                "inside the batch, and data", B, first, B_total, m->net.max_batch);
    int rc = B > 0 ? check_batch(m, x, B, m->net.max_batch) : VAE_OK;
    if (rc) return rc;
    if (m->cfg.model == VAE_MODEL_DAE) {
        if ((rc = corrupt(m, x, B, first, B_total))) return rc;
    } else if (!m->net.deterministic) {
        // one draw per step keys the rows' streams: each thread draws its own
        // rows' noise in the step, as any process of a data-parallel run would
        m->noise_key = vae_rng_u64(&m->rng);
        m->noise_row0 = first;
        m->draw_noise = 1;
    }
    m->input = m->cfg.model == VAE_MODEL_DAE ? m->noisy : NULL;
    rc = vae__model_step_shard(m, x, B, B_total, 1, st);
    m->input = NULL;
    m->draw_noise = 0;
    return rc;
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
        fill_normal(m->net.eps, (size_t)b * m->net.d * m->net.n_samples, rng);
        m->net.labels = m->labels ? m->labels + i : NULL;
        double rec, kl;
        vae__net_forward(&m->net, xb, xb, b, &rec, &kl);
        add_stats(st, rec, kl, reg_weight(m), b);
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
        m->net.labels = m->labels ? m->labels + i : NULL;
        vae__net_encode(&m->net, x + (size_t)i * m->net.D, b);
        const float *head = m->net.act[m->net.k];
        int w = m->net.out[m->net.k]; // 2d, or d for an autoencoder's code
        for (int r = 0; r < b; r++) {
            size_t o = (size_t)(i + r) * d;
            if (mu) memcpy(mu + o, head + (size_t)r * w, d * sizeof(float));
            if (logvar && w == 2 * d) memcpy(logvar + o, head + (size_t)r * w + d, d * sizeof(float));
            if (logvar && w == d) memset(logvar + o, 0, d * sizeof(float));
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
        m->net.labels = m->labels ? m->labels + i : NULL;
        vae__net_decode(&m->net, z + (size_t)i * m->net.d, b);
        vae__net_mean(&m->net, out + (size_t)i * D, b);
    }
    return VAE_OK;
}

size_t vae__view_numel(const vae__param_view *v)
{
    size_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= (size_t)v->shape[d];
    return n;
}

/* Names follow the PyTorch twin (scripts/vae_twin.py): encoder.i, fc_mu,
 * fc_logvar (the two halves of the head), decoder.j. */
int vae__model_tensors(vae_model *m, vae__param_view *v)
{
    const vae__net *net = &m->net;
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        float *w = m->params + net->w_off[l], *b = m->params + net->b_off[l];
        int IN = net->in[l], OUT = net->out[l];
        if (l == net->k && net->deterministic) {
            v[n++] = (vae__param_view){"fc_code.weight", 2, {net->d, IN}, w};
            v[n++] = (vae__param_view){"fc_code.bias", 1, {net->d}, b};
            continue;
        }
        if (l == net->k) { // head: fc_mu is the first d rows, fc_logvar the rest
            int d = net->d;
            v[n++] = (vae__param_view){"fc_mu.weight", 2, {d, IN}, w};
            v[n++] = (vae__param_view){"fc_mu.bias", 1, {d}, b};
            v[n++] = (vae__param_view){"fc_logvar.weight", 2, {d, IN}, w + (size_t)d * IN};
            v[n++] = (vae__param_view){"fc_logvar.bias", 1, {d}, b + d};
            continue;
        }
        const char *part = l < net->k ? "encoder" : "decoder";
        int idx = l < net->k ? l : l - net->k - 1;
        const vae__conv_geom *g = &net->geom[l];
        if (net->kind[l] == VAE_LAYER_LINEAR)
            v[n] = (vae__param_view){"", 2, {OUT, IN}, w};
        else if (net->kind[l] == VAE_LAYER_CONV)
            v[n] = (vae__param_view){"", 4, {g->OC, g->C, g->K, g->K}, w};
        else
            v[n] = (vae__param_view){"", 4, {g->C, g->OC, g->K, g->K}, w};
        snprintf(v[n++].name, sizeof v->name, "%s.%d.weight", part, idx);
        if (net->kind[l] != VAE_LAYER_LINEAR) OUT = g->OC;
        v[n] = (vae__param_view){"", 1, {OUT}, b};
        snprintf(v[n++].name, sizeof v->name, "%s.%d.bias", part, idx);
    }
    if (net->n_ls) v[n++] = (vae__param_view){"log_sigma", 1, {net->n_ls}, m->params + net->ls_off};
    return n;
}
