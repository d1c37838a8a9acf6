/* step.c - the training step: the public entries build a batch (its
 * input, labels and noise), and vae__model_step_batch runs it phase by
 * phase, forward -> backward -> gradient (once per pass of a batch of large
 * images) -> reduce -> clip -> update, on every thread of one parallel
 * region (model/schedule.c says how the threads share it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "model/model.h"
#include "model/schedule.h"
#include "nn/adam.h"
#include "nn/corrupt.h"
#include "nn/latent.h"
#include "nn/layers.h"
#include "nn/rng.h"

/* What a step's threads share: set before the region, read-only in it (b:
 * the pass's rows, each thread's copy). */
typedef struct step_state {
    const vae__batch *b;
    int T, M, update;     /* threads, passes */
    float beta, scale;  /* the regulariser's weight; 1 / B_total */
} step_state;

/* ------------------------------------------------------------- phases */

/* The slice's noise: its rows' streams of the batch's key, or (the
 * reference tests) the caller's, copied from the model's own net. */
static void slice_noise(vae_model *m, const vae__batch *b, const vae__slice *s, vae__net *net)
{
    size_t nd = (size_t)m->net.n_noise * m->net.n_samples; // noise values per image
    size_t r0 = (size_t)b->row0 + s->r0; // the row in the caller's batch
    if (b->draw_noise) {
        for (int i = 0; i < s->rows; i++) {
            vae_rng r;
            vae__rng_stream(&r, b->noise_key, b->noise_row0 + r0 + i);
            for (size_t j = 0; j < nd; j++) net->noise[i * nd + j] = (float)vae_rng_normal(&r);
        }
    } else if (r0 > 0) { // worker 0's net is m->net: a later pass moves its rows down
        memmove(net->noise, m->net.noise + r0 * nd, s->rows * nd * sizeof(float));
    }
}

/* Forward pass and loss of the slice, into its worker's rec and kl. */
static void forward(vae_model *m, const step_state *st, const vae__slice *s)
{
    const vae__batch *b = st->b;
    vae__worker *w = &m->workers[s->t];
    w->rec = w->kl = 0;
    if (s->rows == 0) return;
    size_t at = (size_t)s->r0 * m->net.D;
    if (!m->net.deterministic) slice_noise(m, b, s, &w->net);
    const uint8_t *labels = b->labels ? b->labels + s->r0 : NULL;
    vae__net_encode(&w->net, b->input + at, labels, s->rows);
    if (w->net.n_pseudo) { // a VampPrior's components: each thread encoded its share
#pragma omp barrier
        vae__net_vamp_ready(&w->net);
    }
    vae__net_forward_encoded(&w->net, b->x + at, labels, s->rows, &w->rec, &w->kl);
}

/* The slice's backward pass, after free bits' mask (which needs every
 * slice's KL per dimension: a barrier). */
static void backward(vae_model *m, const step_state *st, const vae__slice *s)
{
    const vae__batch *b = st->b;
    vae__net *net = &m->workers[s->t].net;
    size_t at = (size_t)s->r0 * m->net.D;
    if (m->cfg.free_bits > 0) {
        vae__free_bits_kl(net->kl_dim, net->act[net->k], s->rows, net->d);
#pragma omp barrier
        vae__free_bits_mask(net->kl_mask, m->kl_dims, st->T, net->d, b->B, m->cfg.free_bits);
    }
    if (s->rows > 0) {
        vae__net_backward_head(net, b->x + at, s->rows, st->beta, st->scale);
        if (net->n_pseudo) { // every thread's gradient at the components is in
#pragma omp barrier
        }
        vae__net_backward_encoder(net, b->input + at, s->rows);
    } else { // no rows here: a zero gradient (backward writes, so clear it)
        vae__net_skip_backward(net);
        memset(net->grads, 0, m->net.n_params * sizeof(float));
    }
}

/* The pass's gradient in m->grads: the weight-gradient units and the other
 * gradients summed over the slices; with passes, summed over them too.
 * Returns this thread's share of its squared norm. */
static double gradient(vae_model *m, const step_state *st, const vae__slice *s, int pass)
{
    vae__schedule_wgrad(m, st->b->input, st->b->B, st->T, pass, st->M);
    return vae__schedule_sum_rest(m, s->t, st->T, pass, st->M);
}

/* The batch's gradient (data-parallel) combined across the processes; each
 * thread's share of the squared norm, ss so far, in its worker. */
static void reduce(vae_model *m, const step_state *st, const vae__slice *s, double ss)
{
    if (m->reduce) { // combine the processes' gradients, then square this thread's share
        size_t n = m->net.n_params, p0 = n * s->t / st->T, p1 = n * (s->t + 1) / st->T;
#pragma omp barrier
#pragma omp master
        {
            double sums[2];
            sums[0] = sums[1] = 0;
            for (int t = 0; t < st->T; t++) sums[0] += m->workers[t].rec, sums[1] += m->workers[t].kl;
            m->reduce_rc = m->reduce(m->reduce_ctx, m->grads, n, sums, 2);
            m->reduce_sums[0] = sums[0], m->reduce_sums[1] = sums[1];
        }
#pragma omp barrier
        ss = vae__sum_squares(m->grads + p0, p1 - p0);
    }
    m->workers[s->t].sumsq = ss;
#pragma omp barrier
}

/* The loss sums over the slices in a fixed order (or across processes). */
static void loss_sums(const vae_model *m, int T, double *rec, double *kl)
{
    *rec = *kl = 0;
    if (m->reduce) {
        *rec = m->reduce_sums[0], *kl = m->reduce_sums[1];
        return;
    }
    for (int t = 0; t < T; t++) *rec += m->workers[t].rec, *kl += m->workers[t].kl;
}

/* The gradient's global norm and the verdict: whether the step may update
 * (loss and norm finite, the reduction done), and the scale that clips the
 * norm to clip_norm. Every thread reaches the same verdict from the same
 * sums (and with a reduce callback every process does); thread 0 records it. */
static int clip(vae_model *m, const step_state *st, const vae__slice *s, float *gscale)
{
    double rec, kl, sumsq = m->reduce || st->M > 1 ? 0 : vae__schedule_wgrad_ss(m);
    loss_sums(m, st->T, &rec, &kl);
    for (int t = 0; t < st->T; t++) sumsq += m->workers[t].sumsq;
    double norm = sqrt(sumsq);
    int ok = m->reduce_rc == VAE_OK && isfinite(rec + (double)st->beta * kl) && isfinite(norm);
    *gscale = m->clip_norm > 0 && norm > m->clip_norm ? (float)(m->clip_norm / (norm + 1e-6)) : 1.0f;
    if (s->t == 0) m->grad_norm = norm;
    return ok;
}

/* Parameters per block of the Adam update the threads share out. */
enum { ADAM_BLOCK = 32768 };

/* Adam over every parameter, in blocks the threads take as they come. */
static void update(vae_model *m, float gscale)
{
    size_t n = m->net.n_params, blocks = (n + ADAM_BLOCK - 1) / ADAM_BLOCK;
#pragma omp for schedule(dynamic) nowait
    for (size_t i = 0; i < blocks; i++) {
        size_t a = i * ADAM_BLOCK, len = n - a < ADAM_BLOCK ? n - a : ADAM_BLOCK;
        vae__adam_update(m->params + a, m->grads + a, m->adam_m + a, m->adam_v + a, len, &m->adam,
                         m->step + 1, gscale);
    }
}

/* ------------------------------------------------------------ the step */

static int step_end(vae_model *m, const step_state *st, int ok, vae_stats *stats);

int vae__model_step_batch(vae_model *m, const vae__batch *b, int update_weights, vae_stats *stats)
{
    int T = vae__schedule_begin(m, b->B), M = T ? vae__schedule_passes(m, b->B, T) : 0;
    step_state st = {b, T, M, update_weights, vae__model_reg_weight(m), 1.0f / b->B_total};
    if (!T) return vae__model_error(m, VAE_ENOMEM, "out of memory for the training threads");
    if (m->net.vq_K && m->reduce) // its EMA and restarts see this process's rows only
        return vae__model_error(m, VAE_EUNSUPPORTED, "a VQ-VAE does not train data-parallel");
    m->reduce_rc = VAE_OK;
    int ok = 1;
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        double ss = 0, rec = 0, kl = 0;
        vae__slice s = {t, 0, 0}; // the last pass's, below
        for (int p = 0; p < M; p++) { // the passes over the batch's rows (schedule.h)
            vae__batch pb = vae__schedule_pass(b, p, M, m->net.D);
            step_state ps = st;
            ps.b = &pb;
            s = vae__schedule_slice(pb.B, t, T);
            forward(m, &ps, &s);  // noise, encoder, latent term, decoder, loss
            backward(m, &ps, &s); // free bits' mask, then the slice's gradient
            ss = gradient(m, &ps, &s, p); // over the slices (schedule.c) and the passes
            rec += m->workers[t].rec, kl += m->workers[t].kl;
        }
        m->workers[t].rec = rec, m->workers[t].kl = kl;
        float gscale;
        reduce(m, &st, &s, ss); // over the processes
        int fine = clip(m, &st, &s, &gscale);
        if (fine && update_weights) update(m, gscale);
        if (s.t == 0) ok = fine;
    }
    if (ok && update_weights && m->net.vq_K) vae__vq_after_step(m, b->B, st.T);
    return step_end(m, &st, ok, stats);
}

static int step_end(vae_model *m, const step_state *st, int ok, vae_stats *stats)
{
    double rec, kl;
    loss_sums(m, st->T, &rec, &kl);
    if (m->reduce_rc != VAE_OK)
        return vae__model_error(m, m->reduce_rc,
                                "step %ld: combining the gradients across processes failed (%s); "
                                "weights left unchanged", m->step + 1, vae_strerror(m->reduce_rc));
    if (!ok)
        return vae__model_error(m, VAE_ENUMERIC,
                                "step %ld: the loss is %g and the gradient norm %g; weights "
                                "left unchanged (try a lower --lr or --clip-grad)",
                                m->step + 1, rec + (double)st->beta * kl, m->grad_norm);
    if (st->update) m->step++;
    vae__stats_add(stats, rec, kl, st->beta, m->reduce ? st->b->B_total : st->b->B);
    return VAE_OK;
}

int vae__model_step(vae_model *m, const float *x, const uint8_t *labels, int B, int update,
                    vae_stats *st)
{
    vae__batch b = {.x = x, .input = x, .labels = labels, .B = B, .B_total = B};
    return vae__model_step_batch(m, &b, update, st);
}

/* ------------------------------------------------------ public entries */

int vae__model_check_batch(vae_model *m, const void *x, const uint8_t *labels, int B, int max)
{
    if (!x || B < 1 || B > max)
        return vae__model_error(m, VAE_EINVAL, "batch of %d images: need 1..%d and data", B, max);
    if (m->net.n_classes) { // a CVAE: every row needs its label
        if (!labels)
            return vae__model_error(m, VAE_EINVAL, "a conditional VAE needs a label per row");
        for (int i = 0; i < B; i++)
            if (labels[i] >= m->net.n_classes)
                return vae__model_error(m, VAE_EINVAL, "label %d of row %d is not below the "
                                        "model's %d classes", labels[i], i, m->net.n_classes);
    }
    return VAE_OK;
}

int vae_model_train_step(vae_model *m, const float *x, const uint8_t *labels, int B,
                         vae_stats *st)
{
    if (B < 1) return vae__model_check_batch(m, x, labels, B, m->net.max_batch); // its message
    return vae_model_train_step_shard(m, x, labels, B, 0, B, st);
}

/* The DAE's corrupted copy of the shard's rows, in m->noisy. */
static int corrupt(vae_model *m, const float *x, int B, int first, int B_total)
{
    size_t n = (size_t)B * m->net.D;
    if (n > m->noisy_cap) {
        float *p = realloc(m->noisy, n * sizeof *p);
        if (!p) return vae__model_error(m, VAE_ENOMEM, "out of memory for the corrupted batch");
        m->noisy = p, m->noisy_cap = n;
    }
    vae__corrupt(m->noisy, x, B, first, B_total, m->net.D, m->cfg.noise, m->cfg.noise_level,
                 &m->rng);
    return VAE_OK;
}

int vae_model_train_step_shard(vae_model *m, const float *x, const uint8_t *labels, int B,
                               int first, int B_total, vae_stats *st)
{
    if (B_total < 1 || B < 0 || B > m->net.max_batch || first < 0 || first > B_total - B ||
        (B > 0 && !x))
        return vae__model_error(m, VAE_EINVAL,
                                "shard of %d images at row %d of a batch of %d: need 0..%d rows "
                                "inside the batch, and data", B, first, B_total, m->net.max_batch);
    int rc = B > 0 ? vae__model_check_batch(m, x, labels, B, m->net.max_batch) : VAE_OK;
    if (rc) return rc;
    vae__batch b = {.x = x, .input = x, .labels = labels, .B = B, .B_total = B_total};
    if (m->cfg.model == VAE_MODEL_DAE) {
        if ((rc = corrupt(m, x, B, first, B_total))) return rc;
        b.input = m->noisy;
    } else if (!m->net.deterministic) {
        // one draw per step keys the rows' streams: each thread draws its own
        // rows' noise in the step, as any process of a data-parallel run would
        b.draw_noise = 1;
        b.noise_key = vae_rng_u64(&m->rng);
        b.noise_row0 = first;
    }
    return vae__model_step_batch(m, &b, 1, st);
}
