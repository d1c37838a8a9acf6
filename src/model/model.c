/* model.c - the model handle: configuration, buffers, initialisation,
 * evaluation, encoding and decoding (the training step is step.c's). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <zlib.h>

#include "io/io.h"
#include "model/model.h"
#include "model/schedule.h"
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
    cfg->codebook = 128; // the VQ-VAE's: the Keras MNIST example's K and D, the paper's beta
    cfg->code_dim = 16;
    cfg->commitment = 0.25f;
    cfg->ema_decay = 0.99f;
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
    if (c->model < VAE_MODEL_VAE || c->model > VAE_MODEL_HVAE)
        return vae__error(err, VAE_EUNSUPPORTED, "model kind %d is not supported", c->model);
    if (c->model == VAE_MODEL_VQVAE) {
        int rc = vae__vq_validate(c, err);
        if (rc) return rc;
    }
    if (c->model == VAE_MODEL_HVAE) {
        if (c->latent1 < 1 || c->latent1 > 4096)
            return vae__error(err, VAE_EINVAL, "a hierarchical VAE needs two latent sizes: z1's "
                              "(latent1 = %d) is outside 1..4096", c->latent1);
        if (c->arch != VAE_ARCH_MLP)
            return vae__error(err, VAE_EUNSUPPORTED, "the hierarchical VAE is built for the MLP "
                              "architecture only");
        if (c->flow != VAE_FLOW_NONE)
            return vae__error(err, VAE_EUNSUPPORTED, "the hierarchical VAE takes no flow");
        if (c->free_bits > 0)
            return vae__error(err, VAE_EUNSUPPORTED, "the hierarchical VAE takes no free bits");
    }
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
    if (c->activation < VAE_ACT_RELU || c->activation > VAE_ACT_GATED)
        return vae__error(err, VAE_EUNSUPPORTED, "activation %d is not supported", c->activation);
    if (c->activation == VAE_ACT_GATED && c->arch != VAE_ARCH_MLP)
        return vae__error(err, VAE_EUNSUPPORTED, "the gated activation is a dense layer's: use "
                          "it with the MLP architecture");
    if (c->flow != VAE_FLOW_NONE) {
        if (c->flow != VAE_FLOW_PLANAR && c->flow != VAE_FLOW_HOUSEHOLDER)
            return vae__error(err, VAE_EUNSUPPORTED, "flow %d is not supported", c->flow);
        if (c->model != VAE_MODEL_VAE && c->model != VAE_MODEL_CVAE)
            return vae__error(err, VAE_EUNSUPPORTED, "a flow needs a Gaussian posterior to "
                              "transform: use it with the VAE or the CVAE");
        if (c->flow_steps < 1 || c->flow_steps > VAE_FLOW_MAX_STEPS)
            return vae__error(err, VAE_EINVAL, "flow steps %d are outside 1..%d", c->flow_steps,
                              VAE_FLOW_MAX_STEPS);
        if (c->free_bits > 0)
            return vae__error(err, VAE_EUNSUPPORTED, "free bits act on the closed-form KL of "
                              "each latent dimension, which a flow's posterior has not");
    }
    if (c->vamp_k) {
        if (c->vamp_k < 0 || c->vamp_k > VAE_VAMP_MAX_K)
            return vae__error(err, VAE_EINVAL, "VampPrior pseudo-inputs K = %d are outside 1..%d",
                              c->vamp_k, VAE_VAMP_MAX_K);
        if (c->model != VAE_MODEL_VAE && c->model != VAE_MODEL_IWAE && c->model != VAE_MODEL_HVAE)
            return vae__error(err, VAE_EUNSUPPORTED, "the VampPrior is a prior over a Gaussian "
                              "posterior's z: use it with the VAE, the IWAE or the HVAE");
        if (c->free_bits > 0)
            return vae__error(err, VAE_EUNSUPPORTED, "free bits act on the closed-form KL to "
                              "N(0, I) of each latent dimension, which the VampPrior has not");
    }
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
    m->pass_rows = vae__schedule_pass_rows(cfg, max_batch);
    vae_adam_default(&m->adam);

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
    // the VampPrior's pseudo-inputs as the paper's code starts them (its
    // MNIST default): N(0.05, 0.01^2) per pixel, near a dark image
    for (size_t i = 0; i < (size_t)net->n_pseudo * net->D; i++)
        m->params[net->pi_off + i] = (float)(0.05 + 0.01 * vae_rng_normal(&init));
    if (net->vq_K && vae__vq_init(m, &init)) {
        vae_model_free(m);
        return vae__error(err, VAE_ENOMEM, "out of memory for the codebook's usage counts");
    }
    vae_rng_seed(&m->rng, seed ^ 0x5eed5eed5eed5eedull);
    *out = m;
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
    vae__schedule_free(m); // sized for the old batch
    free(m->acts);
    m->acts = acts;
    m->net = net;
    vae__net_bind(&m->net, m->params, m->grads, m->acts);
    m->pass_rows = vae__schedule_pass_rows(&m->cfg, max_batch);
    return VAE_OK;
}

void vae_model_free(vae_model *m)
{
    if (!m) return;
    vae__schedule_free(m);
    free(m->percep);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->acts);
    free(m->noisy);
    free(m->vq_usage);
    vae__meta_free(m->meta);
    free(m);
}

const char *vae_model_errmsg(const vae_model *m) { return m ? m->err.msg : "no model"; }
const vae_config *vae_model_config(const vae_model *m) { return &m->cfg; }
size_t vae_model_num_params(const vae_model *m) { return m->net.n_params; }
int vae_model_input_size(const vae_model *m) { return m->net.D; }
int vae_model_max_batch(const vae_model *m) { return m->net.max_batch; }
size_t vae_model_row_bytes(const vae_model *m) { return vae__net_row_bytes(&m->cfg); }
void vae_model_set_adam(vae_model *m, const vae_adam *a) { m->adam = *a; }

void vae_model_set_lr(vae_model *m, float lr)
{
    if (m && isfinite(lr) && lr >= 0) m->adam.lr = lr;
}
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
    return vae__meta_get(m->meta, key);
}

static void fill_normal(float *out, size_t n, vae_rng *rng)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)vae_rng_normal(rng);
}

float vae__model_reg_weight(const vae_model *m)
{
    switch (m->cfg.model) {
    case VAE_MODEL_SPARSE_AE: return m->cfg.l1;
    case VAE_MODEL_AE:
    case VAE_MODEL_DAE: return 0;
    case VAE_MODEL_IWAE: return 1; // rec + kl is its loss
    case VAE_MODEL_VQVAE: return 1; // the VQ loss weighs its own terms (commitment)
    default: return m->cfg.beta;
    }
}

void vae__stats_add(vae_stats *st, double rec, double kl, float beta, int B)
{
    if (!st) return;
    st->rec += rec;
    st->kl += kl;
    st->loss += rec + (double)beta * kl;
    st->n += B;
}

int vae_model_num_classes(const vae_model *m) { return m->net.n_classes; }

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

/* The threads, a worker's net each, that take B rows in slices; 0 (and m's
 * message set) when out of memory. */
static int slices_begin(vae_model *m, int B)
{
    int T = vae__schedule_begin(m, B);
    if (!T) vae__model_error(m, VAE_ENOMEM, "out of memory for a net per thread (use fewer threads)");
    return T;
}

/* A VampPrior's components for losses at fixed weights: each thread encodes
 * its share of the pseudo-inputs once, and every net keeps them until
 * vae_model_loss returns (not once per net and batch). */
static void keep_components(vae_model *m, int T)
{
#pragma omp parallel num_threads(T)
    for (int t = omp_get_thread_num(); t < T; t += omp_get_num_threads())
        vae__net_encode(&m->workers[t].net, NULL, NULL, 0);
    for (int t = 0; t < T; t++) {
        vae__net_vamp_ready(&m->workers[t].net);
        m->workers[t].net.comp_kept = 1;
    }
}

/* The loss sums of B rows whose noise is in m->net.noise, on the training
 * threads' nets, each on its slice as in a step (so on the per-thread oneDNN
 * kernels, not the model's net alone on OpenBLAS's threads: the test split's
 * evaluation took about a tenth of a conv epoch that way), summed in slice
 * order. The perceptual term stays out: evaluation is the ELBO. */
static int sliced_loss(vae_model *m, const float *x, const uint8_t *labels, int B, double *rec,
                       double *kl)
{
    int T = slices_begin(m, B);
    if (!T) return VAE_ENOMEM;
    if (m->net.n_pseudo && !m->workers[0].net.comp_kept) keep_components(m, T); // new workers too
    size_t nd = (size_t)m->net.n_noise * m->net.n_samples, D = (size_t)m->net.D;
#pragma omp parallel num_threads(T)
    for (int t = omp_get_thread_num(); t < T; t += omp_get_num_threads()) { // a smaller team too
        vae__slice s = vae__schedule_slice(B, t, T);
        vae__net *net = &m->workers[s.t].net;
        const vae__percep *percep = net->percep;
        net->percep = NULL;
        m->workers[s.t].rec = m->workers[s.t].kl = 0;
        if (s.rows > 0) {
            if (s.t > 0 && !m->net.deterministic) // worker 0's noise is m->net's
                memcpy(net->noise, m->net.noise + s.r0 * nd, s.rows * nd * sizeof(float));
            vae__net_forward(net, x + s.r0 * D, x + s.r0 * D, labels ? labels + s.r0 : NULL,
                             s.rows, &m->workers[s.t].rec, &m->workers[s.t].kl);
        }
        net->percep = percep;
    }
    *rec = *kl = 0;
    for (int t = 0; t < T; t++) *rec += m->workers[t].rec, *kl += m->workers[t].kl;
    return VAE_OK;
}

int vae_model_loss(vae_model *m, const float *x, const uint8_t *labels, int B, vae_rng *rng,
                   vae_stats *st)
{
    int rc = vae__model_check_batch(m, x, labels, B, 1 << 30);
    if (rc) return rc;
    int D = m->net.D, n = vae__schedule_pass_images(m, omp_get_max_threads());
    for (int i = 0; i < B; i += n) {
        int b = B - i < n ? B - i : n;
        const float *xb = x + (size_t)i * D;
        fill_normal(m->net.noise, (size_t)b * m->net.n_noise * m->net.n_samples, rng);
        double rec = 0, kl = 0;
        if ((rc = sliced_loss(m, xb, labels ? labels + i : NULL, b, &rec, &kl))) break;
        vae__stats_add(st, rec, kl, vae__model_reg_weight(m), b);
    }
    for (int t = 0; t < m->n_workers; t++) m->workers[t].net.comp_kept = 0; // steps move them
    return rc;
}

int vae_model_encode(vae_model *m, const float *x, const uint8_t *labels, int B, float *mu,
                     float *logvar)
{
    int rc = vae__model_check_batch(m, x, labels, B, 1 << 30);
    if (rc) return rc;
    int d = m->net.d, n = vae__schedule_pass_images(m, omp_get_max_threads());
    for (int i = 0; i < B; i += n) {
        int b = B - i < n ? B - i : n;
        int T = slices_begin(m, b); // each thread encodes its slice, as sliced_loss
        if (!T) return VAE_ENOMEM;
#pragma omp parallel num_threads(T)
        for (int t = omp_get_thread_num(); t < T; t += omp_get_num_threads()) {
            vae__slice s = vae__schedule_slice(b, t, T);
            vae__net *net = &m->workers[s.t].net;
            const float *xs = x + (size_t)(i + s.r0) * m->net.D;
            if (s.rows > 0) vae__net_encode_images(net, xs, labels ? labels + i + s.r0 : NULL, s.rows);
            const float *head = net->act[net->k], *point = head;
            int w = net->out[net->k], pw = w; // [mu | logvar | flow], or an autoencoder's code
            if (s.rows > 0 && net->flow) { // mu moved by the flow: the point the decoder reads
                vae__net_posterior_point(net, s.rows);
                point = net->z, pw = d;
            } else if (s.rows > 0 && net->vq_K) { // the quantised grid: what the decoder reads
                vae__vq_point(net, s.rows);
                point = net->z, pw = d;
            }
            for (int r = 0; r < s.rows; r++) {
                size_t o = (size_t)(i + s.r0 + r) * d;
                if (mu) memcpy(mu + o, point + (size_t)r * pw, d * sizeof(float));
                if (logvar && !net->deterministic)
                    memcpy(logvar + o, head + (size_t)r * w + d, d * sizeof(float));
                else if (logvar)
                    memset(logvar + o, 0, d * sizeof(float));
            }
        }
    }
    return VAE_OK;
}

int vae_model_decode(vae_model *m, const float *z, const uint8_t *labels, int B, float *out)
{
    int rc = vae__model_check_batch(m, z, labels, B, 1 << 30);
    if (rc) return rc;
    int D = m->net.D, n = m->pass_rows;
    for (int i = 0; i < B; i += n) {
        int b = B - i < n ? B - i : n;
        vae__net_decode(&m->net, z + (size_t)i * m->net.d, labels ? labels + i : NULL, b);
        vae__net_mean(&m->net, out + (size_t)i * D, b);
    }
    return VAE_OK;
}

int vae_model_decode_sample(vae_model *m, const float *z, const uint8_t *labels, int B,
                            vae_rng *rng, float *out)
{
    if (!m) return VAE_EINVAL;
    if (!m->net.d1) return vae_model_decode(m, z, labels, B, out);
    if (!rng) return vae__model_error(m, VAE_EINVAL, "drawing z1 needs an rng");
    int rc = vae__model_check_batch(m, z, labels, B, 1 << 30);
    if (rc) return rc;
    int D = m->net.D, d1 = m->net.d1, n = m->pass_rows;
    for (int i = 0; i < B; i += n) {
        int b = B - i < n ? B - i : n;
        // z1 ~ p(z1|z2): b * d1 normals of rng in order, in eps1's room
        fill_normal(m->net.eps1, (size_t)b * d1, rng);
        vae__net_decode_noise(&m->net, z + (size_t)i * m->net.d, m->net.eps1, b);
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

/* One dense layer l (gated: its halves h and g) of the HVAE's two middle
 * chains: q_z1.i and p_z1.i, their heads q_z1_mu, q_z1_logvar, p_z1_mu,
 * p_z1_logvar (as the twin's HVAE names them). Returns the views written. */
static int hvae_tensors(const vae__net *net, int l, float *w, float *b, vae__param_view *v)
{
    int q = l < net->p1_0, i = l - (q ? net->q1_0 : net->p1_0), IN = net->in[l], OUT = net->out[l];
    const char *part = q ? "q_z1" : "p_z1";
    int n = 0;
    if (i == net->k) { // the head: mu's d1 rows, then logvar's
        int d1 = net->d1;
        const char *half[2] = {"mu", "logvar"};
        for (int h = 0; h < 2; h++) {
            v[n] = (vae__param_view){"", 2, {d1, IN}, w + (size_t)h * d1 * IN};
            snprintf(v[n++].name, sizeof v->name, "%s_%s.weight", part, half[h]);
            v[n] = (vae__param_view){"", 1, {d1}, b + (size_t)h * d1};
            snprintf(v[n++].name, sizeof v->name, "%s_%s.bias", part, half[h]);
        }
        return n;
    }
    if (net->activation == VAE_ACT_GATED) {
        int H = OUT / 2;
        const char *half[2] = {"h", "g"};
        for (int h = 0; h < 2; h++) {
            v[n] = (vae__param_view){"", 2, {H, IN}, w + (size_t)h * H * IN};
            snprintf(v[n++].name, sizeof v->name, "%s.%d.%s.weight", part, i, half[h]);
            v[n] = (vae__param_view){"", 1, {H}, b + (size_t)h * H};
            snprintf(v[n++].name, sizeof v->name, "%s.%d.%s.bias", part, i, half[h]);
        }
        return n;
    }
    v[n] = (vae__param_view){"", 2, {OUT, IN}, w};
    snprintf(v[n++].name, sizeof v->name, "%s.%d.weight", part, i);
    v[n] = (vae__param_view){"", 1, {OUT}, b};
    snprintf(v[n++].name, sizeof v->name, "%s.%d.bias", part, i);
    return n;
}

/* Names follow the PyTorch twin (scripts/vae_twin.py): encoder.i, fc_mu,
 * fc_logvar (the two halves of the head; a flow's fc_flow after them),
 * decoder.j; the HVAE's middle chains as hvae_tensors says. */
int vae__model_tensors(vae_model *m, vae__param_view *v)
{
    const vae__net *net = &m->net;
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        float *w = m->params + net->w_off[l], *b = m->params + net->b_off[l];
        int IN = net->in[l], OUT = net->out[l];
        if (l == net->k && net->deterministic && !net->vq_K) {
            v[n++] = (vae__param_view){"fc_code.weight", 2, {net->d, IN}, w};
            v[n++] = (vae__param_view){"fc_code.bias", 1, {net->d}, b};
            continue;
        }
        if (l == net->k && !net->vq_K) { // head: fc_mu is the first d rows, fc_logvar the rest
            int d = net->d;
            v[n++] = (vae__param_view){"fc_mu.weight", 2, {d, IN}, w};
            v[n++] = (vae__param_view){"fc_mu.bias", 1, {d}, b};
            v[n++] = (vae__param_view){"fc_logvar.weight", 2, {d, IN}, w + (size_t)d * IN};
            v[n++] = (vae__param_view){"fc_logvar.bias", 1, {d}, b + d};
            if (net->flow_params) { // the flow's parameters per image: the head's last rows
                int F = net->flow_params;
                v[n++] = (vae__param_view){"fc_flow.weight", 2, {F, IN}, w + (size_t)2 * d * IN};
                v[n++] = (vae__param_view){"fc_flow.bias", 1, {F}, b + 2 * d};
            }
            continue;
        }
        if (net->d1 && l > net->k && l < net->dec0) { // the HVAE's q(z1|x,z2) and p(z1|z2)
            n += hvae_tensors(net, l, w, b, v + n);
            continue;
        }
        const char *part = l < net->k ? "encoder" : "decoder";
        int idx = l < net->k ? l : l - net->dec0;
        char pre[32]; // a VQ-VAE's head (a 1x1 convolution) is vq.pre_quant
        if (l == net->k) snprintf(pre, sizeof pre, "vq.pre_quant");
        else snprintf(pre, sizeof pre, "%s.%d", part, idx);
        const vae__conv_geom *g = &net->geom[l];
        if (net->activation == VAE_ACT_GATED && l != net->n_layers - 1) {
            // a gated layer's two linear maps, h (the value) and g (the gate),
            // as the twin's GatedDense names them: the first and second halves
            int H = OUT / 2;
            const char *half[2] = {"h", "g"};
            for (int i = 0; i < 2; i++) {
                v[n] = (vae__param_view){"", 2, {H, IN}, w + (size_t)i * H * IN};
                snprintf(v[n++].name, sizeof v->name, "%s.%d.%s.weight", part, idx, half[i]);
                v[n] = (vae__param_view){"", 1, {H}, b + (size_t)i * H};
                snprintf(v[n++].name, sizeof v->name, "%s.%d.%s.bias", part, idx, half[i]);
            }
            continue;
        }
        if (net->kind[l] == VAE_LAYER_LINEAR)
            v[n] = (vae__param_view){"", 2, {OUT, IN}, w};
        else if (net->kind[l] == VAE_LAYER_CONV)
            v[n] = (vae__param_view){"", 4, {g->OC, g->C, g->K, g->K}, w};
        else
            v[n] = (vae__param_view){"", 4, {g->C, g->OC, g->K, g->K}, w};
        snprintf(v[n++].name, sizeof v->name, "%s.weight", pre);
        if (net->kind[l] != VAE_LAYER_LINEAR) OUT = g->OC;
        v[n] = (vae__param_view){"", 1, {OUT}, b};
        snprintf(v[n++].name, sizeof v->name, "%s.bias", pre);
    }
    if (net->n_ls) v[n++] = (vae__param_view){"log_sigma", 1, {net->n_ls}, m->params + net->ls_off};
    if (net->n_pseudo) // image-shaped, before the clamp to [0, 1] that the encoder sees
        v[n++] = (vae__param_view){"prior.pseudo_inputs", 4,
                                   {net->n_pseudo, m->cfg.channels, m->cfg.height, m->cfg.width},
                                   m->params + net->pi_off};
    if (net->vq_K) n += vae__vq_tensors(m, v + n);
    return n;
}
