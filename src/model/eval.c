/* eval.c - evaluation of a trained VAE: the negative ELBO and its terms, the
 * importance-weighted estimate of log p(x), KL per latent dimension, active
 * units and the reconstruction error, in parallel over images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "model/model.h"
#include "nn/latent.h"
#include "nn/rng.h"

#define VAE_EVAL_MAX_K 100000000 /* k * d normals per image must stay addressable */

void vae_eval_opts_default(vae_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 5000;
    o->seed = 1;
}

/* ------------------------------------------------------- log-mean-exp */

/* Streaming log-sum-exp: the largest value seen and the sum of exp(v - max),
 * in double. A weight of zero (v = -inf) only counts; max stays -inf until
 * a finite value arrives, so all-zero weights give -inf, never NaN. */
typedef struct lme {
    double max, sum;
    size_t n;
} lme;

static void lme_init(lme *a) { *a = (lme){-INFINITY, 0, 0}; }

static void lme_add(lme *a, double v)
{
    a->n++;
    if (isnan(a->max) || v == -INFINITY || a->max == INFINITY) return;
    if (isnan(v) || v == INFINITY) {
        a->max = v;
        a->sum = 1;
    } else if (v > a->max) {
        a->sum = a->sum * exp(a->max - v) + 1; // exp(-inf) = 0 for the first value
        a->max = v;
    } else {
        a->sum += exp(v - a->max);
    }
}

static double lme_value(const lme *a)
{
    if (a->n == 0 || a->max == -INFINITY) return -INFINITY;
    if (!isfinite(a->max)) return a->max; // +inf or NaN
    return a->max + log(a->sum) - log((double)a->n);
}

double vae_log_mean_exp(const double *logw, size_t n)
{
    lme a;
    lme_init(&a);
    for (size_t i = 0; i < n; i++) lme_add(&a, logw[i]);
    return lme_value(&a);
}

/* ---------------------------------------------------------- workspace */

/* One thread's buffers: its own activations (the weights are shared) and
 * per-row copies of the posterior of the image each sample belongs to. */
typedef struct eval_ws {
    vae__net net;
    float *acts;
    float *head;   /* (mb, hw): that image's [mu | logvar | flow] */
    float *comp;   /* (K, hw): a VampPrior's components, encoded once (net.comp_kept) */
    lme *lw;       /* (tile): each image's log-weights */
    double *rec;   /* (tile): sum over its samples of -log p(x|z) */
    double *kle;   /* (tile): a flow's: sum over its samples of log q(z|x) - log p(z) */
    vae_rng *rng;  /* (tile): each image's noise stream */
    uint8_t *lab;  /* (mb): a CVAE's label of each decoder row */
    float *xr;     /* (mb, D): the HVAE's image of each row, for q(z1|x,z2) */
} eval_ws;

static void ws_free(eval_ws *w)
{
    free(w->acts);
    free(w->head);
    free(w->comp);
    free(w->lw);
    free(w->rec);
    free(w->kle);
    free(w->rng);
    free(w->lab);
    free(w->xr);
}

static int ws_init(eval_ws *w, const vae_model *m, int tile)
{
    memset(w, 0, sizeof *w);
    w->net = m->net;
    size_t mb = (size_t)m->net.max_batch;
    w->acts = malloc(m->net.n_acts * sizeof(float));
    w->head = malloc(mb * m->net.out[m->net.k] * sizeof(float));
    w->lw = malloc((size_t)tile * sizeof *w->lw);
    w->rec = malloc((size_t)tile * sizeof *w->rec);
    w->kle = malloc((size_t)tile * sizeof *w->kle);
    w->rng = malloc((size_t)tile * sizeof *w->rng);
    w->lab = malloc(mb);
    w->xr = m->net.d1 ? malloc(mb * m->net.D * sizeof(float)) : NULL;
    if (!w->acts || !w->head || !w->lw || !w->rec || !w->kle || !w->rng || !w->lab ||
        (m->net.d1 && !w->xr)) {
        ws_free(w);
        return VAE_ENOMEM;
    }
    vae__net_bind(&w->net, m->params, NULL, w->acts); // forward only: no gradients
    if (w->net.n_pseudo) { // the prior's components: the pseudo-inputs encoded once, not per tile
        size_t n = (size_t)w->net.n_pseudo * m->net.out[m->net.k];
        if (!(w->comp = malloc(n * sizeof(float)))) {
            ws_free(w);
            return VAE_ENOMEM;
        }
        vae__net_encode(&w->net, NULL, NULL, 0);
        memcpy(w->comp, w->net.comp, n * sizeof(float));
        w->net.comp = w->comp;
        w->net.comp_kept = 1;
    }
    return VAE_OK;
}

/* ---------------------------------------------------------------- a tile */

/* Images i0..i0+nt of x: out[0..nt) gets their numbers, mu (nt,d) and
 * kl_dim (nt,d) their posterior means and per-dimension KL. */
static void eval_tile(eval_ws *w, const float *x, const uint8_t *labels, long i0, int nt, int k,
                      uint64_t seed, vae_eval_image *out, double *mu_out, double *kl_out)
{
    vae__net *net = &w->net;
    int D = net->D, d = net->d, mb = net->max_batch, nn = net->n_noise;
    const float *xt = x + (size_t)i0 * D;

    // encode the tile: head (nt,hw) = [mu | logvar | flow], kept while the
    // decoder runs. With a flow, kl_dim and mu are its base posterior's, and
    // the KL is estimated from the k samples below.
    vae__net_encode(net, xt, labels ? labels + i0 : NULL, nt);
    const float *head = net->act[net->k];
    int hw = net->out[net->k];
    for (int i = 0; i < nt; i++) {
        const float *mu = head + (size_t)i * hw, *lv = mu + d;
        double kl = 0;
        for (int j = 0; j < d; j++) {
            double klj = vae__gauss_kl(mu[j], lv[j]); // as training's
            kl_out[(size_t)i * d + j] = klj;
            mu_out[(size_t)i * d + j] = mu[j];
            kl += klj;
        }
        out[i].kl = kl;
    }
    vae__net_posterior_point(net, nt);

    // reconstruction error of the decoded posterior mean E[x | z = mu(x)]
    vae__net_decode(net, net->z, labels ? labels + i0 : NULL, nt);
    vae__net_mean(net, net->prob, nt);
    for (int i = 0; i < nt; i++) {
        const float *xi = xt + (size_t)i * D, *pi = net->prob + (size_t)i * D;
        double sse = 0;
        for (int p = 0; p < D; p++) {
            double e = (double)xi[p] - pi[p];
            sse += e * e;
        }
        out[i].sse = sse;
    }

    // importance sampling: rows (image i, sample s) in order, decoded mb at a time
    for (int i = 0; i < nt; i++) {
        lme_init(&w->lw[i]);
        w->rec[i] = w->kle[i] = 0;
        vae__rng_stream(&w->rng[i], seed, i0 + i); // the split of the images cannot change a result
    }
    long R = (long)nt * k;
    for (long r0 = 0; r0 < R; r0 += mb) {
        int c = (int)(R - r0 < mb ? R - r0 : mb);
        for (int r = 0; r < c; r++) {
            int i = (int)((r0 + r) / k);
            float *eps = net->noise + (size_t)r * nn; // the HVAE's: [eps of z2 | eps of z1]
            for (int j = 0; j < nn; j++) eps[j] = (float)vae_rng_normal(&w->rng[i]);
            memcpy(w->head + (size_t)r * hw, head + (size_t)i * hw, hw * sizeof(float));
            if (labels) w->lab[r] = labels[i0 + i];
            if (w->xr) memcpy(w->xr + (size_t)r * D, xt + (size_t)i * D, D * sizeof(float));
        }
        // z = mu + sigma * eps (and the flow; the HVAE's z1 below) exactly as training draws it
        vae__net_sample(net, w->head, w->xr, c, 1);
        vae__net_decode_sample(net, labels ? w->lab : NULL, c);
        // -log p(x|z) by the training loss, each image's rows against its pixels
        for (int r = 0; r < c;) {
            int i = (int)((r0 + r) / k), len = (int)((i + 1) * (long)k - r0) - r;
            if (len > c - r) len = c - r;
            vae__net_rec_rows(net, r, xt + (size_t)i * D, len);
            r += len;
        }
        for (int r = 0; r < c; r++) {
            int i = (int)((r0 + r) / k);
            // log w = log p(z) - log q(z|x) - (-log p(x|z)), as the IWAE's training loss
            double rec = net->rec_img[r], lr = vae__net_log_ratio(net, w->head, r, 1);
            lme_add(&w->lw[i], lr - rec);
            w->rec[i] += rec;
            w->kle[i] -= lr;
        }
    }
    for (int i = 0; i < nt; i++) {
        out[i].rec = w->rec[i] / k;
        if (net->flow || net->n_pseudo || net->d1) out[i].kl = w->kle[i] / k; // no closed form
        out[i].neg_elbo = out[i].rec + out[i].kl;
        out[i].log_px = lme_value(&w->lw[i]);
    }
}

/* ------------------------------------------------------------ the driver */

static int bad_image(const vae_eval_image *e)
{
    return isnan(e->neg_elbo) || isnan(e->log_px) || isnan(e->sse);
}

/* vae_model_eval's arguments, and a CVAE's labels of the n images. */
static int check_args(vae_model *m, const float *x, const uint8_t *labels, long n,
                      const vae_eval_opts *opt, const vae_eval_result *res)
{
    if (!x || !res || n < 1)
        return vae__model_error(m, VAE_EINVAL, "evaluation needs images and a result (n = %ld)", n);
    if (opt->k < 1 || opt->k > VAE_EVAL_MAX_K)
        return vae__model_error(m, VAE_EINVAL, "k = %d importance samples: use 1..%d", opt->k,
                                VAE_EVAL_MAX_K);
    if (opt->threads < 0 || opt->threads > 4096)
        return vae__model_error(m, VAE_EINVAL, "%d threads: use 0..4096", opt->threads);
    if (m->net.deterministic)
        return vae__model_error(m, VAE_EUNSUPPORTED,
                                "an autoencoder has no posterior, so no ELBO or likelihood to "
                                "estimate (vae pca and the training log give its reconstruction)");
    if (m->net.n_classes) {
        if (!labels)
            return vae__model_error(m, VAE_EINVAL, "a conditional VAE needs a label per image");
        for (long i = 0; i < n; i++)
            if (labels[i] >= m->net.n_classes)
                return vae__model_error(m, VAE_EINVAL, "label %d of image %ld is not below the "
                                        "model's %d classes", labels[i], i, m->net.n_classes);
    }
    return VAE_OK;
}

/* The means over n images from the sums; the latent statistics per
 * dimension from the Welford sums m2 and the KL sums. */
static void fill_result(vae_eval_result *res, long n, int k, int D, int d, const double tot[5],
                        const double *m2, const double *klsum, double *kl_dim, double *mu_var)
{
    memset(res, 0, sizeof *res);
    res->n = n;
    res->k = k;
    res->latent = d;
    res->neg_elbo = tot[0] / n;
    res->rec = tot[1] / n;
    res->kl = tot[2] / n;
    res->nll = -tot[3] / n;
    res->sse = tot[4] / n;
    res->mse = res->sse / D;
    for (int j = 0; j < d; j++) {
        double var = m2[j] / n; // population variance over the images
        if (var > 0.01) res->active_units++;
        if (mu_var) mu_var[j] = var;
        if (kl_dim) kl_dim[j] = klsum[j] / n;
    }
}

/* Images in blocks (a progress report after each), each block's tiles
 * shared by the threads, its results reduced in image order. */
int vae_model_eval(vae_model *m, const float *x, const uint8_t *labels, long n,
                   const vae_eval_opts *opt, vae_eval_result *res, double *kl_dim, double *mu_var,
                   vae_eval_image *per_image)
{
    vae_eval_opts def;
    if (!opt) vae_eval_opts_default(&def), opt = &def;
    int rc = check_args(m, x, labels, n, opt, res);
    if (rc) return rc;
    if (!m->net.n_classes) labels = NULL;
    int D = m->net.D, d = m->net.d, mb = m->net.max_batch, k = opt->k;
    int T = opt->threads ? opt->threads : omp_get_max_threads();

    // A tile holds enough images to fill one decoder batch with their samples;
    // a block is what runs between two progress reports.
    int tile = (mb + k - 1) / k;
    long block_tiles = ((1L << 18) / k) / tile;
    if (block_tiles < 2L * T) block_tiles = 2L * T;
    long cap = ((1L << 22) / d) / tile; // bounds the block's mu and KL buffers
    if (block_tiles > cap) block_tiles = cap > 2L * T ? cap : 2L * T;
    long block = block_tiles * tile;
    if (block > n) block = n;
    long n_tiles_max = (block + tile - 1) / tile;
    if (T > n_tiles_max) T = (int)n_tiles_max;

    eval_ws *ws = calloc((size_t)T, sizeof *ws);
    double *bmu = malloc((size_t)block * d * sizeof *bmu);
    double *bkl = malloc((size_t)block * d * sizeof *bkl);
    double *mean = calloc((size_t)d, sizeof *mean), *m2 = calloc((size_t)d, sizeof *m2);
    double *klsum = calloc((size_t)d, sizeof *klsum);
    vae_eval_image *img = per_image ? per_image : malloc((size_t)block * sizeof *img);
    rc = ws && bmu && bkl && mean && m2 && klsum && img ? VAE_OK : VAE_ENOMEM;
    int made = 0, blas_threads = 0, omp_threads = 0;
    while (rc == VAE_OK && made < T)
        if ((rc = ws_init(&ws[made], m, tile)) == VAE_OK) made++;
    if (rc) {
        vae__model_error(m, VAE_ENOMEM, "out of memory for evaluating with %d threads", T);
        goto done;
    }

    // Each GEMM runs whole on its tile's thread. OpenBLAS must not split one
    // over threads (it would with T = 1, outside an active parallel region):
    // its partition can change the rounding, and with it the thread count
    // the result. The process-wide settings are restored at the end.
    blas_threads = openblas_get_num_threads(), omp_threads = omp_get_max_threads();
    openblas_set_num_threads(1);

    double tot[5] = {0}; // -elbo, rec, kl, log p(x), squared error
    for (long b0 = 0; b0 < n; b0 += block) {
        long bn = n - b0 < block ? n - b0 : block, nt = (bn + tile - 1) / tile;
        vae_eval_image *bimg = per_image ? per_image + b0 : img;
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
        for (long t = 0; t < nt; t++) {
            long i0 = t * tile;
            int cnt = (int)(bn - i0 < tile ? bn - i0 : tile);
            eval_tile(&ws[omp_get_thread_num()], x, labels, b0 + i0, cnt, k, opt->seed, bimg + i0,
                      bmu + (size_t)i0 * d, bkl + (size_t)i0 * d);
        }
        // reduce in image order: the same sums whatever thread did which tile
        for (long i = 0; i < bn; i++) {
            const vae_eval_image *e = &bimg[i];
            if (bad_image(e)) {
                rc = vae__model_error(m, VAE_ENUMERIC,
                                      "image %ld: the evaluation is NaN (-elbo %g, log p(x) %g, "
                                      "squared error %g)",
                                      b0 + i, e->neg_elbo, e->log_px, e->sse);
                goto done;
            }
            tot[0] += e->neg_elbo, tot[1] += e->rec, tot[2] += e->kl;
            tot[3] += e->log_px, tot[4] += e->sse;
            double cnt = (double)(b0 + i + 1);
            for (int j = 0; j < d; j++) { // Welford: mean and sum of squared deviations
                double v = bmu[(size_t)i * d + j], dv = v - mean[j];
                mean[j] += dv / cnt;
                m2[j] += dv * (v - mean[j]);
                klsum[j] += bkl[(size_t)i * d + j];
            }
        }
        if (opt->progress) opt->progress(opt->progress_ctx, b0 + bn, n);
    }

    fill_result(res, n, k, D, d, tot, m2, klsum, kl_dim, mu_var);

done:
    if (blas_threads) { // openblas_set_num_threads may also set OpenMP's count
        openblas_set_num_threads(blas_threads);
        omp_set_num_threads(omp_threads);
    }
    for (int t = 0; t < made; t++) ws_free(&ws[t]);
    free(ws);
    free(bmu);
    free(bkl);
    free(mean);
    free(m2);
    free(klsum);
    if (!per_image) free(img);
    return rc;
}

void vae_kl_per_dim(const float *mu, const float *logvar, long n, int d, double *kl)
{
    for (int j = 0; j < d; j++) kl[j] = 0;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) kl[j] += vae__gauss_kl(mu[i * d + j], logvar[i * d + j]);
    for (int j = 0; j < d && n > 0; j++) kl[j] /= (double)n;
}
