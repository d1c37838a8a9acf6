/* schedule.c - how a training step is shared between threads, and why.
 *
 * One OpenMP parallel region runs the whole step (model/step.c): thread t
 * takes rows r0..r0+rows of the batch (its slice) with its own activations
 * and gradient buffers (its worker) and single-threaded GEMMs (OpenBLAS and
 * oneDNN run serially inside a parallel region; the element-wise passes do
 * too, vae__serial_here: a nested region costs a team start and lock
 * traffic at every call). So no thread waits on another's GEMM, and the
 * slices' forward and backward passes need no synchronisation at all.
 *
 * What the slices must share is the gradient. Conv layers and a learned
 * sigma are summed over the workers after the backward pass
 * (vae__schedule_sum_rest, each thread a share of the parameters). The
 * linear layers' weight gradients, most of a step's GEMM work, are formed
 * here instead of in each slice's backward pass (net->defer_wgrad), in
 * units: each layer's output rows in VAE_WGRAD_CHUNKS fixed chunks, taken
 * by whichever thread is free (schedule(dynamic)). A unit sums its slices'
 * products in slice order (vae__wgrad, nn/layers.c), so the bits depend on
 * the thread count only, never on which thread ran which unit. The units
 * come in the order the backward pass finishes their layers (the output
 * layer first), and a unit starts as soon as every slice's backward pass is
 * past its layer (the ready counters the backward pass counts up): a thread
 * that finished its slice early starts on the decoder's units while others
 * are still in the encoder. That overlap measured 2-5% a step on 2 cores
 * (docs/performance.md); it is the one mechanism of this file that is about
 * speed alone, and it costs the counters and the wait in run_unit.
 *
 * A batch of large images runs in passes (schedule.h): each pass is a
 * step's forward, backward and gradient over some of the rows, the passes'
 * gradients summed before the clipping and the update. The buffers keep
 * their max_batch rows, but a pass touches only its own, so the memory a
 * step makes resident follows VAE_PASS_MB, not the batch. The number of
 * passes depends on B and T alone, so the bits still depend on the thread
 * count only.
 */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include <omp.h>

#include "model/schedule.h"
#include "nn/layers.h"

vae__slice vae__schedule_slice(int B, int t, int T)
{
    int r0 = (int)((long)B * t / T);
    return (vae__slice){t, r0, (int)((long)B * (t + 1) / T) - r0};
}

/* ----------------------------------------------------------- the units */

static int unit_chunks(const vae__net *net, int l)
{
    return net->out[l] < VAE_WGRAD_CHUNKS ? net->out[l] : VAE_WGRAD_CHUNKS;
}

/* Unit u's layer (-1 past the last unit) and output rows o0..o1: the layers
 * in the order the backward pass finishes them (the last first), each one's
 * chunks in order. */
static int unit_layer(const vae__net *net, int u, int *o0, int *o1)
{
    for (int l = net->n_layers - 1; l >= 0; l--) {
        if (net->kind[l] != VAE_LAYER_LINEAR) continue;
        int C = unit_chunks(net, l);
        if (u < C) {
            *o0 = net->out[l] * u / C, *o1 = net->out[l] * (u + 1) / C;
            return l;
        }
        u -= C;
    }
    return -1;
}

static int unit_count(const vae__net *net)
{
    int n = 0;
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] == VAE_LAYER_LINEAR) n += unit_chunks(net, l);
    return n;
}

/* Bytes of vae__wgrad work area the largest unit needs. */
static size_t unit_scratch(const vae__net *net)
{
    size_t most = 0;
    for (int l = 0; l < net->n_layers; l++) { // rows: IWAE's samples, a VampPrior's pseudo-inputs
        int C = unit_chunks(net, l), B = vae__net_layer_rows(net, l, net->max_batch);
        size_t n = vae__wgrad_work(B, net->in[l], (net->out[l] + C - 1) / C);
        if (net->kind[l] == VAE_LAYER_LINEAR && n > most) most = n;
    }
    return most;
}

/* Unit u of the batch's T slices into m->grads (added to it after the first
 * of M passes); returns its squared sum (0 with passes). */
static double run_unit(vae_model *m, int u, const float *in, int B, int T, int p, int M,
                       void *scratch)
{
    const vae__net *net = &m->net;
    int o0, o1, l = unit_layer(net, u, &o0, &o1);
    if (l < 0) return 0;
    for (int spins = 0; atomic_load_explicit(&m->ready[l], memory_order_acquire) < T; spins++)
        if (spins > 1000) thrd_yield(); // a slice still on its way back
    int IN = net->in[l], OUT = net->out[l];
    vae__wgrad g;
    vae__wgrad_begin(&g, m->grads + net->w_off[l] + (size_t)o0 * IN, m->grads + net->b_off[l] + o0,
                     IN, OUT, o0, o1, scratch);
    if (p > 0) g.done = 1; // as if a slice were in: the others add to the earlier passes
    for (int t = 0; t < T; t++) {
        vae__slice s = vae__schedule_slice(B, t, T);
        const vae__net *sn = m->nets[t];
        if (s.rows > 0)
            vae__wgrad_slice(&g, sn->dact[l], vae__net_layer_input(sn, l, in + (size_t)s.r0 * net->D),
                             vae__net_layer_rows(sn, l, s.rows));
    }
    return M > 1 && g.done ? 0 : vae__wgrad_finish(&g);
}

void vae__schedule_wgrad(vae_model *m, const float *in, int B, int T, int p, int M)
{
    int U = unit_count(&m->net);
    void *scratch = m->workers[omp_get_thread_num()].scratch;
#pragma omp for schedule(dynamic)
    for (int u = 0; u < U; u++) m->wgrad_ss[u] = run_unit(m, u, in, B, T, p, M, scratch);
}

double vae__schedule_wgrad_ss(const vae_model *m)
{
    double ss = 0;
    for (int u = 0, U = unit_count(&m->net); u < U; u++) ss += m->wgrad_ss[u];
    return ss;
}

/* ------------------------------------------------ the other gradients */

/* Adds the other workers' gradients to the model's over [a, b) (nothing when
 * b <= a), in cache-sized chunks, and pass p of M's to the earlier ones;
 * returns the squared sum of the result (with one pass). */
static double sum_workers(vae_model *m, size_t a, size_t b, int p, int M)
{
    double ss = 0;
    for (size_t c = a; c < b; c += 4096) {
        size_t len = b - c < 4096 ? b - c : 4096;
        float *g = m->grads + c, *acc = m->grad_acc + c;
        for (int w = 1; w < m->n_workers; w++) vae__add_into(g, m->workers[w].grads + c, len);
        if (M == 1)
            ss += vae__sum_squares(g, len);
        else if (p == 0)
            memcpy(acc, g, len * sizeof *g);
        else if (p < M - 1)
            vae__add_into(acc, g, len);
        else // the last pass: the total where the step expects it
            vae__add_into(g, acc, len);
    }
    return ss;
}

static void clear_ready(vae_model *m)
{
    for (int l = 0; l < VAE_MAX_LAYERS; l++)
        atomic_store_explicit(&m->ready[l], 0, memory_order_relaxed);
}

double vae__schedule_sum_rest(vae_model *m, int t, int T, int p, int M)
{
    const vae__net *net = &m->net;
    size_t n = net->n_params, p0 = n * t / T, p1 = n * (t + 1) / T;
    double ss = 0;
    for (int l = 0; l <= net->n_layers; l++) { // l = n_layers: log sigma
        if (l < net->n_layers && net->kind[l] == VAE_LAYER_LINEAR) continue;
        size_t a = l < net->n_layers ? net->w_off[l] : net->ls_off;
        size_t e = l + 1 < net->n_layers ? net->w_off[l + 1] : l < net->n_layers ? net->ls_off : n;
        ss += sum_workers(m, a > p0 ? a : p0, e < p1 ? e : p1, p, M);
    }
    if (M == 1) return ss;
    if (p == M - 1) return vae__sum_squares(m->grads + p0, p1 - p0);
#pragma omp barrier
#pragma omp single
    clear_ready(m);
    return 0;
}

/* ----------------------------------------------------------- the passes */

int vae__schedule_pass_rows(const vae_config *cfg, int max_batch)
{
    size_t per = vae__net_row_bytes(cfg), mb = VAE_PASS_MB;
    const char *env = getenv("VAE_PASS_MB");
    if (env && *env) mb = strtoul(env, NULL, 10);
    if (!mb || per * max_batch <= ((size_t)VAE_PASS_FROM_MB << 20)) return max_batch;
    size_t rows = (mb << 20) / per;
    return rows < 1 ? 1 : rows > (size_t)max_batch ? max_batch : (int)rows;
}

int vae__schedule_pass_images(const vae_model *m, int T)
{
    long n = (long)m->pass_rows * T;
    return n < m->net.max_batch ? (int)n : m->net.max_batch;
}

int vae__schedule_passes(const vae_model *m, int B, int T)
{
    if (m->cfg.free_bits > 0 || m->net.vq_K) return 1;
    int M = (int)(((long)B + (long)T * m->pass_rows - 1) / ((long)T * m->pass_rows));
    if (M > B / T) M = B / T; // every thread a row in every pass
    return M > 1 ? M : 1;
}

vae__batch vae__schedule_pass(const vae__batch *b, int p, int M, int D)
{
    int r0 = (int)((long)b->B * p / M), r1 = (int)((long)b->B * (p + 1) / M);
    vae__batch q = *b;
    q.x = b->x + (size_t)r0 * D;
    q.input = b->input + (size_t)r0 * D;
    q.labels = b->labels ? b->labels + r0 : NULL;
    q.B = r1 - r0;
    q.row0 = b->row0 + r0;
    return q;
}

/* ---------------------------------------------------------- the workers */

void vae__schedule_free(vae_model *m)
{
    for (int t = 0; m->workers && t < m->n_workers; t++) {
        free(m->workers[t].scratch);
        free(m->workers[t].net.pwork); // never the model's own net's
        if (t == 0) continue; // the model's own buffers
        free(m->workers[t].grads);
        free(m->workers[t].acts);
    }
    free(m->workers);
    free(m->nets);
    free(m->kl_dims);
    free(m->vamp_comp);
    free(m->vamp_dcomp);
    free(m->grad_acc);
    m->vamp_comp = m->vamp_dcomp = NULL;
    m->grad_acc = NULL;
    m->workers = NULL;
    m->nets = NULL;
    m->kl_dims = NULL;
    m->n_workers = 0;
}

/* One worker per thread the step will run on, allocated once (and again
 * only when the thread count changes). */
static int ensure_workers(vae_model *m, int n)
{
    if (n == m->n_workers) return VAE_OK;
    vae__schedule_free(m);
    m->workers = calloc((size_t)n, sizeof *m->workers);
    m->nets = calloc((size_t)n, sizeof *m->nets);
    m->kl_dims = calloc((size_t)n, sizeof *m->kl_dims);
    m->n_workers = n;
    size_t K = (size_t)m->net.n_pseudo, ncomp = K * m->net.out[m->net.k];
    int passes = m->pass_rows < m->net.max_batch;
    if (K) {
        m->vamp_comp = malloc(ncomp * sizeof(float));
        m->vamp_dcomp = malloc(n * ncomp * sizeof(float));
    }
    if (passes) m->grad_acc = malloc(m->net.n_params * sizeof(float)); // their sum (schedule.h)
    if (!m->workers || !m->nets || !m->kl_dims || (K && (!m->vamp_comp || !m->vamp_dcomp)) ||
        (passes && !m->grad_acc)) {
        vae__schedule_free(m);
        return VAE_ENOMEM;
    }
    m->workers[0] = (vae__worker){.net = m->net, .grads = m->grads, .acts = m->acts};
    for (int t = 0; t < n; t++) {
        vae__worker *w = &m->workers[t];
        w->scratch = malloc(unit_scratch(&m->net) + 1); // + 1: never a zero-size request
        if (t > 0) {
            w->net = m->net;
            w->grads = malloc(m->net.n_params * sizeof(float));
            w->acts = malloc(m->net.n_acts * sizeof(float));
        }
        if (m->percep) { // a slice has at most this many rows
            w->net.percep = m->percep;
            w->net.pwork = vae__percep_work_alloc(m, (m->net.max_batch + n - 1) / n);
        }
        if (!w->scratch || !w->grads || !w->acts || (m->percep && !w->net.pwork)) {
            vae__schedule_free(m);
            return VAE_ENOMEM;
        }
        if (t > 0) vae__net_bind(&w->net, m->params, w->grads, w->acts);
        if (K) { // the pseudo-inputs shared out: a thread encodes K/n of them, not all K
            w->net.vamp_p0 = (int)(K * t / n);
            w->net.vamp_pn = (int)(K * (t + 1) / n) - w->net.vamp_p0;
            w->net.comp_share = m->vamp_comp;
            w->net.dcomp_all = m->vamp_dcomp;
            w->net.dcomp_t = t, w->net.dcomp_T = n;
        }
        w->net.defer_wgrad = 1; // the units sum them over the workers
        w->net.ready = m->ready;
        m->nets[t] = &w->net;
        m->kl_dims[t] = w->net.kl_dim;
    }
    return VAE_OK;
}

int vae__schedule_begin(vae_model *m, int B)
{
    int T = omp_get_max_threads();
    if (T > B) T = B;
    if (T < 1) T = 1; // an empty shard still takes part in the reduction
    if (ensure_workers(m, T)) return 0;
    clear_ready(m);
    return T;
}
