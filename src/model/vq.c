/* vq.c - the VQ-VAE's model side: its configuration's checks, the codebook's
 * start, its tensors in checkpoints, what happens after a training step (the
 * EMA update, usage counts, dead-code restarts) and the public VQ calls. The
 * per-batch math is nn/vq.c's, the kind in the network model/vqnet.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/schedule.h"
#include "nn/rng.h"
#include "nn/vq.h"

/* The EMA update's Laplace smoothing (Sonnet's epsilon). */
#define VQ_EMA_EPS 1e-5f

int vae_config_vq_latent(const vae_config *cfg, int *grid_h, int *grid_w)
{
    if (!cfg) return 0;
    vae_config c = *cfg;
    c.model = VAE_MODEL_VQVAE;
    vae__net net;
    if (c.arch != VAE_ARCH_CONV || c.code_dim < 1 || c.codebook < 1 ||
        c.n_hidden < 1 || c.n_hidden > VAE_MAX_HIDDEN || vae__net_layout(&net, &c, 1))
        return 0;
    const vae__conv_geom *g = &net.geom[net.k];
    if (grid_h) *grid_h = g->OH;
    if (grid_w) *grid_w = g->OW;
    return net.d;
}

int vae__vq_validate(const vae_config *c, vae_error *err)
{
    if (c->arch != VAE_ARCH_CONV)
        return vae__error(err, VAE_EUNSUPPORTED, "a VQ-VAE quantises a conv encoder's grid: "
                          "it needs the conv architecture");
    if (c->codebook < 2 || c->codebook > 65536)
        return vae__error(err, VAE_EINVAL, "codebook size %d is outside 2..65536", c->codebook);
    if (c->code_dim < 1 || c->code_dim > 4096)
        return vae__error(err, VAE_EINVAL, "code dimension %d is outside 1..4096", c->code_dim);
    if (!isfinite(c->commitment) || c->commitment < 0 || c->commitment > 100)
        return vae__error(err, VAE_EINVAL, "commitment %g is outside [0, 100]",
                          (double)c->commitment);
    if (c->codebook_update != VAE_CODEBOOK_LOSS && c->codebook_update != VAE_CODEBOOK_EMA)
        return vae__error(err, VAE_EUNSUPPORTED, "codebook update %d is not supported",
                          c->codebook_update);
    if (!(c->ema_decay > 0 && c->ema_decay < 1))
        return vae__error(err, VAE_EINVAL, "EMA decay %g is outside (0, 1)", (double)c->ema_decay);
    if (!isfinite(c->restart_dead) || c->restart_dead < 0)
        return vae__error(err, VAE_EINVAL, "dead-code threshold %g must be a finite number >= 0",
                          (double)c->restart_dead);
    if (c->free_bits > 0)
        return vae__error(err, VAE_EUNSUPPORTED, "free bits act on a Gaussian KL, which a "
                          "VQ-VAE has not");
    int need = vae_config_vq_latent(c, NULL, NULL);
    if (need && c->latent != need)
        return vae__error(err, VAE_EINVAL, "a VQ-VAE's latent is its code grid, %d values "
                          "(vae_config_vq_latent), not %d", need, c->latent);
    return VAE_OK;
}

int vae__vq_init(vae_model *m, vae_rng *init)
{
    // the codebook as the paper's reference code starts it, U(-1/K, 1/K); the
    // EMA state as if each code had been chosen once at its start, so that
    // a code no vector picks keeps its place instead of collapsing to 0
    vae__net *net = &m->net;
    size_t KC = (size_t)net->vq_K * net->vq_C;
    double bound = 1.0 / net->vq_K;
    for (size_t i = 0; i < KC; i++) net->cb[i] = (float)((2 * vae_rng_uniform(init) - 1) * bound);
    for (int k = 0; k < net->vq_K; k++) net->ema_count[k] = 1;
    memcpy(net->ema_sum, net->cb, KC * sizeof *net->cb);
    m->vq_usage = calloc((size_t)net->vq_K, sizeof *m->vq_usage);
    return m->vq_usage ? VAE_OK : VAE_ENOMEM;
}

int vae__vq_tensors(vae_model *m, vae__param_view *v)
{
    const vae__net *net = &m->net;
    int K = net->vq_K, C = net->vq_C;
    v[0] = (vae__param_view){"vq.codebook", 2, {K, C}, net->cb};
    v[1] = (vae__param_view){"vq.ema_count", 1, {K}, net->ema_count};
    v[2] = (vae__param_view){"vq.ema_sum", 2, {K, C}, net->ema_sum};
    return 3;
}

/* Code k starts again at a random encoder output of the batch: cell p of
 * row r, which slice t of the step holds. */
static void restart(vae_model *m, int k, int B, int T)
{
    vae__net *net = &m->net;
    int C = net->vq_C, P = net->vq_P;
    long r = (long)(vae_rng_uniform(&m->rng) * B), p = (long)(vae_rng_uniform(&m->rng) * P);
    if (r >= B) r = B - 1;
    if (p >= P) p = P - 1;
    int t = 0;
    while (t + 1 < T && vae__schedule_slice(B, t + 1, T).r0 <= r) t++;
    const vae__net *sn = &m->workers[t].net;
    const float *ze = sn->act[sn->k] + (size_t)(r - vae__schedule_slice(B, t, T).r0) * net->d;
    float *e = net->cb + (size_t)k * C;
    for (int c = 0; c < C; c++) e[c] = ze[(size_t)c * P + p];
    // the EMA mean must agree with the new code; Adam starts afresh on it
    for (int c = 0; c < C; c++) net->ema_sum[(size_t)k * C + c] = e[c] * net->ema_count[k];
    memset(m->adam_m + net->cb_off + (size_t)k * C, 0, (size_t)C * sizeof(float));
    memset(m->adam_v + net->cb_off + (size_t)k * C, 0, (size_t)C * sizeof(float));
}

void vae__vq_after_step(vae_model *m, int B, int T)
{
    vae__net *net = &m->net;
    int K = net->vq_K, C = net->vq_C;
    size_t KC = (size_t)K * C;
    // the batch's statistics, summed over the slices in slice order
    float *count = m->workers[0].net.vq_count, *sum = m->workers[0].net.vq_sum;
    if (vae__schedule_slice(B, 0, T).rows == 0) {
        memset(count, 0, (size_t)K * sizeof *count);
        memset(sum, 0, KC * sizeof *sum);
    }
    for (int t = 1; t < T; t++) {
        const vae__net *sn = &m->workers[t].net;
        if (vae__schedule_slice(B, t, T).rows == 0) continue;
        for (int k = 0; k < K; k++) count[k] += sn->vq_count[k];
        for (size_t i = 0; i < KC; i++) sum[i] += sn->vq_sum[i];
    }
    for (int k = 0; k < K; k++) m->vq_usage[k] += count[k];
    float decay = m->cfg.ema_decay;
    if (net->vq_ema) {
        vae__vq_ema_update(net->cb, net->ema_count, net->ema_sum, count, sum, K, C, decay,
                           VQ_EMA_EPS);
    } else { // the usage counts alone, for the restarts
        for (int k = 0; k < K; k++) net->ema_count[k] = decay * net->ema_count[k] + (1 - decay) * count[k];
    }
    if (m->cfg.restart_dead > 0)
        for (int k = 0; k < K; k++)
            if (net->ema_count[k] < m->cfg.restart_dead) restart(m, k, B, T);
}

/* ---------------------------------------------------------- public calls */

static int need_vq(vae_model *m)
{
    if (!m->net.vq_K)
        return vae__model_error(m, VAE_EUNSUPPORTED, "not a VQ-VAE: it has no codebook");
    return VAE_OK;
}

int vae_model_vq_codes(vae_model *m, const float *x, int B, int32_t *codes)
{
    int rc = need_vq(m);
    if (rc || (rc = vae__model_check_batch(m, x, NULL, B, 1 << 30))) return rc;
    vae__net *net = &m->net;
    for (int i = 0; i < B; i += net->max_batch) {
        int b = B - i < net->max_batch ? B - i : net->max_batch;
        vae__net_encode(net, x + (size_t)i * net->D, NULL, b);
        vae__vq_point(net, b);
        for (size_t j = 0; j < (size_t)b * net->vq_P; j++)
            codes[(size_t)i * net->vq_P + j] = (int32_t)net->codes[j];
    }
    return VAE_OK;
}

int vae_model_vq_decode(vae_model *m, const int32_t *codes, int B, float *out)
{
    int rc = need_vq(m);
    if (rc || (rc = vae__model_check_batch(m, codes, NULL, B, 1 << 30))) return rc;
    vae__net *net = &m->net;
    int C = net->vq_C, P = net->vq_P;
    for (size_t j = 0; j < (size_t)B * P; j++)
        if (codes[j] < 0 || codes[j] >= net->vq_K)
            return vae__model_error(m, VAE_EINVAL, "code %d at %zu is outside 0..%d", codes[j], j,
                                    net->vq_K - 1);
    for (int i = 0; i < B; i += net->max_batch) {
        int b = B - i < net->max_batch ? B - i : net->max_batch;
        for (int r = 0; r < b; r++)
            for (int p = 0; p < P; p++) {
                const float *e = net->cb + (size_t)codes[(size_t)(i + r) * P + p] * C;
                for (int c = 0; c < C; c++) net->z[(size_t)r * net->d + (size_t)c * P + p] = e[c];
            }
        vae__net_decode(net, net->z, NULL, b);
        vae__net_mean(net, out + (size_t)i * net->D, b);
    }
    return VAE_OK;
}

int vae_model_vq_usage(vae_model *m, double *counts, int reset)
{
    int rc = need_vq(m);
    if (rc) return rc;
    if (counts) memcpy(counts, m->vq_usage, (size_t)m->net.vq_K * sizeof *counts);
    if (reset) memset(m->vq_usage, 0, (size_t)m->net.vq_K * sizeof *m->vq_usage);
    return VAE_OK;
}
