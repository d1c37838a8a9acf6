/* net.c - the VAE network (MLP or conv): layout of its flat buffers, the
 * table of latent kinds, and the full forward and backward passes (float or
 * double). The terms themselves are nn/'s forward/backward pairs. */
#include <math.h>
#include <string.h>

#include "model/net.h"
#include "nn/flow.h"
#include "nn/latent.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/prior.h"

static void forward_range(vae__net *net, const real *inp, const uint8_t *labels, int B, int first,
                          int last);
static void backward_range(vae__net *net, real *dinp0, const real *inp0, int B, int first,
                           int last);

/* ------------------------------------------------------------ latent kinds */

/* The Gaussian posterior (VAE, CVAE): z = mu + sigma eps, KL to N(0,I). */
static double gauss_forward(vae__net *net, int B)
{
    const real *head = net->act[net->k];
    vae__reparam_forward(net->z, head, 2 * net->d, net->eps, B, net->d, 1);
    return vae__gauss_kl_forward(head, B, net->d, net->kl_img);
}

static void gauss_backward(vae__net *net, int B, real loss_scale, real beta)
{
    const real *head = net->act[net->k];
    real *dhead = net->dact[net->k];
    vae__gauss_kl_backward(dhead, head, loss_scale * beta, net->free_bits > 0 ? net->kl_mask : NULL,
                           B, net->d);
    vae__reparam_backward(dhead, head, 2 * net->d, net->eps, net->dz, B, net->d, 1);
}

/* The flow's z_0 .. z_T: fz's blocks, then z. */
static void flow_zs(const vae__net *net, real **zs)
{
    size_t block = (size_t)net->max_batch * net->n_samples * net->d;
    for (int t = 0; t < net->flow_steps; t++) zs[t] = net->fz + t * block;
    zs[net->flow_steps] = net->z;
}

/* The VampPrior in place of N(0, I): log p(z) - log N(z; 0, I), added to
 * the IWAE log-ratio (which has -|z|^2/2 for log N(z; 0, I)) ... */
static double prior_shift(const vae__net *net, const real *z)
{
    double zz = 0;
    for (int j = 0; j < net->d; j++) zz += (double)z[j] * z[j];
    return vae__vamp_log_prior(z, net->vamp_tab, net->vamp_c, net->n_pseudo, net->d) + 0.5 * zz;
}

/* ... and its gradient for the loss sum_r c_r (-log-ratio_r), c_r = scale *
 * w_r over R rows of z: dz -= c_r (dlog p/dz + z) (the IWAE backward added
 * c_r z), and the components' head rows dact[k][B..B+K) (or this thread's
 * rows of dcomp_all) get the mixture's gradient, written (their flow
 * columns stay zero). */
static void prior_shift_backward(vae__net *net, int B, int R, const real *w, real scale)
{
    int d = net->d, hw = net->out[net->k];
    real *dcomp = net->comp_share
                      ? net->dcomp_all + (size_t)net->dcomp_t * net->n_pseudo * hw
                      : net->dact[net->k] + (size_t)B * hw;
    memset(dcomp, 0, (size_t)net->n_pseudo * hw * sizeof *dcomp);
    vae__vamp_log_prior_backward(net->dz, dcomp, hw, net->z, net->vamp_tab, net->vamp_c, w, -scale,
                                 R, net->n_pseudo, d, net->vamp_work);
    for (int r = 0; r < R; r++) {
        real c = w ? scale * w[r] : scale;
        for (int j = 0; j < d; j++) net->dz[(size_t)r * d + j] -= c * net->z[(size_t)r * d + j];
    }
}

/* HVAE: z1 ~ q(z1|x,z2) from the rows [x | z2], p(z1|z2)'s head from z2,
 * and the decoder's rows [z1 | z2]; z2 (net->z) is drawn. */
static void hvae_lower(vae__net *net, const real *x, int R)
{
    int d = net->d, d1 = net->d1, D = net->D, k = net->k;
    for (int r = 0; r < R; r++) {
        real *row = net->q1in + (size_t)r * (D + d);
        memcpy(row, x + (size_t)r * D, (size_t)D * sizeof *row);
        memcpy(row + D, net->z + (size_t)r * d, (size_t)d * sizeof *row);
    }
    forward_range(net, net->q1in, NULL, R, net->q1_0, net->q1_0 + k);
    vae__reparam_forward(net->z1, net->act[net->q1_0 + k], 2 * d1, net->eps1, R, d1, 1);
    forward_range(net, net->z, NULL, R, net->p1_0, net->p1_0 + k);
    for (int r = 0; r < R; r++) {
        real *row = net->dec_in + (size_t)r * (d1 + d);
        memcpy(row, net->z1 + (size_t)r * d1, (size_t)d1 * sizeof *row);
        memcpy(row + d1, net->z + (size_t)r * d, (size_t)d * sizeof *row);
    }
}

void vae__net_sample(vae__net *net, const real *head, const real *x, int R, int K)
{
    int d = net->d, hw = net->out[net->k];
    if (net->d1) { // the noise rows [eps | eps1] apart, then z2, then the layer below
        int d1 = net->d1;
        for (int r = 0; r < R; r++) {
            const real *n = net->noise + (size_t)r * (d + d1);
            memcpy(net->eps + (size_t)r * d, n, (size_t)d * sizeof *n);
            memcpy(net->eps1 + (size_t)r * d1, n + d, (size_t)d1 * sizeof *n);
        }
        vae__reparam_forward(net->z, head, hw, net->eps, R / K, d, K);
        hvae_lower(net, x, R);
        return;
    }
    if (!net->flow) {
        vae__reparam_forward(net->z, head, hw, net->eps, R / K, d, K);
        return;
    }
    real *zs[VAE_FLOW_MAX_STEPS + 1];
    flow_zs(net, zs);
    vae__reparam_forward(zs[0], head, hw, net->eps, R / K, d, K);
    vae__flow_forward(net->flow, net->flow_steps, zs, net->ld, head + 2 * d, hw, R, K, d);
}

/* The top layer's log p(z) - log q(z|x) (the only layer but the HVAE's). */
static double top_log_ratio(const vae__net *net, const real *head, int r, int K)
{
    int d = net->d;
    const real *lv = head + (size_t)(r / K) * net->out[net->k] + d;
    const real *z = net->z + (size_t)r * d;
    double lr = vae__iwae_log_ratio(z, net->eps + (size_t)r * d, lv, d);
    if (net->n_pseudo) lr += prior_shift(net, z);
    return net->flow ? lr + net->ld[r] : lr;
}

double vae__net_log_ratio(const vae__net *net, const real *head, int r, int K)
{
    double lr = top_log_ratio(net, head, r, K);
    if (!net->d1) return lr;
    int d1 = net->d1; // + log p(z1|z2) - log q(z1|x,z2), both heads per row
    const real *q = net->act[net->q1_0 + net->k] + (size_t)r * 2 * d1;
    const real *p = net->act[net->p1_0 + net->k] + (size_t)r * 2 * d1;
    return lr + vae__gauss_log_ratio2(net->z1 + (size_t)r * d1, net->eps1 + (size_t)r * d1, q + d1,
                                      p, p + d1, d1);
}

void vae__net_posterior_point(vae__net *net, int B)
{
    int d = net->d, hw = net->out[net->k];
    const real *head = net->act[net->k];
    real *zs[VAE_FLOW_MAX_STEPS + 1];
    if (net->flow) flow_zs(net, zs);
    real *z0 = net->flow ? zs[0] : net->z;
    for (int b = 0; b < B; b++) memcpy(z0 + (size_t)b * d, head + (size_t)b * hw, d * sizeof *z0);
    if (net->flow) vae__flow_forward(net->flow, net->flow_steps, zs, net->ld, head + 2 * d, hw, B, 1, d);
}

/* A flow against N(0, I): its KL keeps q_0's part in closed form
 * (vae__flow_base_kl); against the VampPrior there is none to keep. */
static int flow_base_closed(const vae__net *net) { return net->flow && !net->n_pseudo; }

/* A flow in the Gaussian posterior (VAE, CVAE): z_T = f(z_0), and the KL's
 * one-sample estimate log q_T(z_T|x) - log p(z_T) = -(log-ratio + log det),
 * plus flow_base_closed's part. The VampPrior without a flow: the one-sample
 * estimate. */
static double flow_forward(vae__net *net, int B)
{
    const real *head = net->act[net->k];
    real *zs[VAE_FLOW_MAX_STEPS + 1];
    int d = net->d, hw = net->out[net->k], base = flow_base_closed(net);
    flow_zs(net, zs);
    vae__net_sample(net, head, NULL, B, 1);
    double sum = 0;
    for (int b = 0; b < B; b++) {
        const real *h = head + (size_t)b * hw;
        double kl = -vae__net_log_ratio(net, head, b, 1);
        if (base) // q_0's part in closed form
            kl += vae__flow_base_kl(h, h + d, zs[0] + (size_t)b * d, net->eps + (size_t)b * d, d);
        net->kl_img[b] = (real)kl;
        sum += net->kl_img[b];
    }
    return sum;
}

static void flow_backward(vae__net *net, int B, real loss_scale, real beta)
{
    const real *head = net->act[net->k];
    real *dhead = net->dact[net->k], *zs[VAE_FLOW_MAX_STEPS + 1];
    int d = net->d, hw = net->out[net->k];
    real c = loss_scale * beta;
    flow_zs(net, zs);
    // the estimate's terms: +z_T^2/2 (into dz), -logvar/2; then -log det through
    // the steps, which carry dz back to z_0; then q_0's closed form less its
    // estimate; then z_0 = mu + sigma eps
    vae__iwae_log_ratio_backward(net->dz, dhead, hw, net->z, head, NULL, c, B, d, 1);
    if (net->n_pseudo) prior_shift_backward(net, B, B, NULL, c); // at z_T, before the flow
    if (net->flow)
        vae__flow_backward(net->flow, net->flow_steps, net->dz, dhead + 2 * d,
                           (const real *const *)zs, head + 2 * d, hw, -c, B, 1, d);
    if (flow_base_closed(net)) // at z_0, after the flow
        vae__flow_base_kl_backward(net->dz, dhead, hw, zs[0], head, c, B, d);
    vae__reparam_backward(dhead, head, hw, net->eps, net->dz, B, d, 1);
}

/* An autoencoder's code (AE, DAE): z is the head, no regulariser. */
static double code_forward(vae__net *net, int B)
{
    memcpy(net->z, net->act[net->k], (size_t)B * net->d * sizeof *net->z);
    for (int i = 0; i < B; i++) net->kl_img[i] = 0;
    return 0;
}

/* The sparse AE's: L1 on the code stands in for the KL. */
static double code_l1_forward(vae__net *net, int B)
{
    code_forward(net, B);
    return vae__l1_forward(net->z, B, net->d, net->kl_img);
}

static void code_l1_backward(vae__net *net, int B, real loss_scale, real beta)
{
    // beta: the sparse AE's l1 (the model's reg_weight)
    vae__l1_backward(net->dact[net->k], net->dz, net->z, loss_scale * beta, (size_t)B * net->d);
}

static void code_backward(vae__net *net, int B, real loss_scale, real beta)
{
    (void)beta, (void)loss_scale; // no regulariser: dhead = dz (+ 0, as the sparse AE's adds)
    vae__l1_backward(net->dact[net->k], net->dz, net->z, 0, (size_t)B * net->d);
}

/* IWAE: K = n_samples draws z_bi per image from the Gaussian posterior,
 * decoded as rows b*K + i; log w_bi = log-ratio_bi - rec_bi, and the loss
 * per image is log K - logsumexp_i log w_bi. *rec sums the images' mean
 * reconstruction terms and *kl the rest of the loss, so rec + kl is the
 * negative IWAE bound (for K = 1, kl is the one-sample KL estimate). */
static double iwae_forward(vae__net *net, int B)
{
    vae__net_sample(net, net->act[net->k], NULL, B * net->n_samples, net->n_samples);
    return 0; // the bound needs the likelihood first: iwae_finish
}

/* log w of decoder row r from rec_img[r]. */
static double iwae_logw(const vae__net *net, size_t r)
{
    return vae__net_log_ratio(net, net->act[net->k], (int)r, net->n_samples) - net->rec_img[r];
}

/* The bound from the rows' rec_img; iw gets the normalised weights. */
static void iwae_finish(vae__net *net, int B, double *rec, double *kl)
{
    int K = net->n_samples;
    *rec = *kl = 0;
    for (int b = 0; b < B; b++) {
        size_t r0 = (size_t)b * K;
        double top = -INFINITY, sum = 0, recbar = 0;
        for (int i = 0; i < K; i++) {
            top = fmax(top, iwae_logw(net, r0 + i));
            recbar += net->rec_img[r0 + i] / K;
        }
        for (int i = 0; i < K; i++) sum += exp(iwae_logw(net, r0 + i) - top);
        double lse = top + log(sum), loss = log((double)K) - lse;
        for (int i = 0; i < K; i++) net->iw[r0 + i] = (real)exp(iwae_logw(net, r0 + i) - lse);
        net->rec_img[b] = (real)recbar; // rows of images < b are read: safe to overwrite
        net->kl_img[b] = (real)(loss - recbar);
        *rec += recbar;
        *kl += loss - recbar;
    }
}

/* Each sample's -log p(x|z) counts with its normalised weight. */
static void iwae_weigh(vae__net *net, real *dlik, int B)
{
    int K = net->n_samples, D = net->D;
    for (int r = 0; r < B * K; r++)
        for (int j = 0; j < D; j++) dlik[(size_t)r * D + j] *= net->iw[r];
}

static void iwae_backward(vae__net *net, int B, real loss_scale, real beta)
{
    (void)beta; // the bound weighs its terms itself
    const real *head = net->act[net->k];
    real *dhead = net->dact[net->k];
    int d = net->d, K = net->n_samples;
    vae__iwae_log_ratio_backward(net->dz, dhead, 2 * d, net->z, head, net->iw, loss_scale, B, d, K);
    if (net->n_pseudo) prior_shift_backward(net, B, B * K, net->iw, loss_scale);
    vae__reparam_backward(dhead, head, 2 * d, net->eps, net->dz, B, d, K);
}

/* The HVAE: z2 ~ q(z2|x) and z1 ~ q(z1|x,z2) (vae__net_sample). Its
 * regulariser is log q(z2|x) - log p(z2) + KL(q(z1|x,z2) || p(z1|z2)): the
 * first in closed form against N(0, I) (the one-sample estimate with the
 * VampPrior), the second in closed form given the drawn z2. */
static double hvae_forward(vae__net *net, int B)
{
    const real *head = net->act[net->k];
    int d = net->d, d1 = net->d1, k = net->k;
    vae__net_sample(net, head, net->x_enc, B, 1);
    double sum = 0;
    if (net->n_pseudo) {
        for (int b = 0; b < B; b++) {
            net->kl_img[b] = (real)-top_log_ratio(net, head, b, 1);
            sum += net->kl_img[b];
        }
    } else {
        sum = vae__gauss_kl_forward(head, B, d, net->kl_img);
    }
    return sum + vae__gauss_kl2_forward(net->act[net->q1_0 + k], 2 * d1, net->act[net->p1_0 + k],
                                        2 * d1, B, d1, net->kl_img);
}

static void hvae_backward(vae__net *net, int B, real loss_scale, real beta)
{
    const real *head = net->act[net->k];
    real *dhead = net->dact[net->k];
    int d = net->d, d1 = net->d1, D = net->D, q1h = net->q1_0 + net->k, p1h = net->p1_0 + net->k;
    real c = loss_scale * beta;
    // the decoder's gradient at [z1 | z2], apart
    for (int r = 0; r < B; r++) {
        const real *g = net->ddec_in + (size_t)r * (d1 + d);
        memcpy(net->dz1 + (size_t)r * d1, g, (size_t)d1 * sizeof *g);
        memcpy(net->dz + (size_t)r * d, g + d1, (size_t)d * sizeof *g);
    }
    // KL(q(z1|x,z2) || p(z1|z2)) into both heads, z1's path into q's, then both
    // chains down to their inputs, whose z2 columns add to dz
    vae__gauss_kl2_backward(net->dact[q1h], net->dact[p1h], net->act[q1h], 2 * d1, net->act[p1h],
                            2 * d1, c, B, d1);
    vae__reparam_backward(net->dact[q1h], net->act[q1h], 2 * d1, net->eps1, net->dz1, B, d1, 1);
    // (q(z1|x,z2)'s input gradient only in its z2 columns: x takes none)
    backward_range(net, NULL, net->q1in, B, net->q1_0, q1h);
    vae__linear_backward_data_cols(net->dq1in, net->dact[net->q1_0],
                                   net->params + net->w_off[net->q1_0], B, D + d,
                                   net->out[net->q1_0], D, D + d);
    backward_range(net, net->dp1in, net->z, B, net->p1_0, p1h);
    for (int r = 0; r < B; r++)
        for (int j = 0; j < d; j++)
            net->dz[(size_t)r * d + j] +=
                net->dq1in[(size_t)r * d + j] + net->dp1in[(size_t)r * d + j];
    // the top layer, as the VAE's (closed form) or the VampPrior's estimate
    if (net->n_pseudo) {
        vae__iwae_log_ratio_backward(net->dz, dhead, 2 * d, net->z, head, NULL, c, B, d, 1);
        prior_shift_backward(net, B, B, NULL, c);
    } else {
        vae__gauss_kl_backward(dhead, head, c, NULL, B, d);
    }
    vae__reparam_backward(dhead, head, 2 * d, net->eps, net->dz, B, d, 1);
}

static const vae__latent_kind gaussian = {"gaussian", 2, 1, gauss_forward, NULL, NULL,
                                          gauss_backward};
static const vae__latent_kind code = {"code", 1, 0, code_forward, NULL, NULL, code_backward};
static const vae__latent_kind sparse_code = {"code + L1", 1, 0, code_l1_forward, NULL, NULL,
                                             code_l1_backward};
static const vae__latent_kind iwae = {"gaussian, importance-weighted", 2, 1, iwae_forward,
                                      iwae_finish, iwae_weigh, iwae_backward};
static const vae__latent_kind gaussian_flow = {"gaussian, estimated KL (flow, VampPrior)", 2, 1,
                                               flow_forward, NULL, NULL, flow_backward};
static const vae__latent_kind hvae = {"two gaussian layers (HVAE)", 2, 1, hvae_forward, NULL, NULL,
                                      hvae_backward};

/* Each model's latent kind. */
static const vae__latent_kind *const latent_of_model[] = {
    [VAE_MODEL_VAE] = &gaussian, [VAE_MODEL_AE] = &code,    [VAE_MODEL_SPARSE_AE] = &sparse_code,
    [VAE_MODEL_DAE] = &code,     [VAE_MODEL_IWAE] = &iwae, [VAE_MODEL_CVAE] = &gaussian,
    [VAE_MODEL_VQVAE] = &vae__vq_kind, [VAE_MODEL_HVAE] = &hvae,
};

static const vae__latent_kind *latent_kind(const vae_config *cfg)
{
    int n = (int)(sizeof latent_of_model / sizeof *latent_of_model), model = cfg->model;
    if (model == VAE_MODEL_IWAE && cfg->iwae_k == 1 && !cfg->vamp_k)
        return &gaussian; // one sample: the VAE's loss
    if (model == VAE_MODEL_IWAE && cfg->iwae_k > 1) return &iwae; // with either prior
    if (model == VAE_MODEL_HVAE) return &hvae; // with either prior on z2
    // a flow (VAE, CVAE: vae_config_validate) or the VampPrior: the KL's one-sample estimate
    if (cfg->flow != VAE_FLOW_NONE || cfg->vamp_k) return &gaussian_flow;
    return model >= 0 && model < n ? latent_of_model[model] : &gaussian;
}

/* Whether layer l ends a chain (no activation after it): the encoder's
 * head, the output layer, the HVAE's two heads of z1. */
static int chain_end(const vae__net *net, int l)
{
    return l == net->k || l == net->n_layers - 1 ||
           (net->d1 && (l == net->q1_0 + net->k || l == net->p1_0 + net->k));
}

/* Whether hidden layer l is gated (then act[l] is its linear part). */
static int gated(const vae__net *net, int l)
{
    return net->activation == VAE_ACT_GATED && !chain_end(net, l);
}

/* A conv layer's output that only another conv layer reads stays in
 * 16-channel blocks (conv.h): oneDNN's kernels take it as it lies, where an
 * NCHW one costs two reorders a pass (a tenth of a conv step). */
static void block_conv_chains(vae__net *net)
{
    for (int l = 0; l + 1 < net->n_layers; l++)
        if (net->kind[l] != VAE_LAYER_LINEAR && net->kind[l + 1] != VAE_LAYER_LINEAR &&
            !chain_end(net, l) && net->geom[l].OC % VAE__CONV_BLOCK == 0)
            net->geom[l].blk_out = net->geom[l + 1].blk_in = 1;
}

/* The conv architecture's layer shapes: convolutions down from the image,
 * one linear layer each side of the latent, transposed convolutions back to
 * exactly the image size. */
static int layout_conv(vae__net *net, const vae_config *cfg)
{
    int k = cfg->n_hidden, K = VAE_CONV_KERNEL, S = VAE_CONV_STRIDE, P = VAE_CONV_PAD;
    int c[VAE_MAX_HIDDEN + 1], h[VAE_MAX_HIDDEN + 1], w[VAE_MAX_HIDDEN + 1]; // level 0: the image
    c[0] = cfg->channels, h[0] = cfg->height, w[0] = cfg->width;
    if (k < 1) return -1;
    for (int l = 0; l < k; l++) {
        vae__conv_geom *g = &net->geom[l];
        if (vae__conv_geom_init(g, c[l], h[l], w[l], cfg->hidden[l], K, S, P)) return -1;
        net->kind[l] = VAE_LAYER_CONV;
        c[l + 1] = g->OC, h[l + 1] = g->OH, w[l + 1] = g->OW;
    }
    int flat = c[k] * h[k] * w[k];
    net->in[k] = flat;
    net->out[k] = net->latent->head_per_dim * net->d + net->flow_params;
    net->in[k + 1] = net->d;
    net->out[k + 1] = flat;
    for (int j = 0; j < k; j++) { // level k-j back up to level k-1-j
        int l = k + 2 + j, a = k - j, b = a - 1;
        // the output padding that makes the size exact: the encoder rounded down
        int oph = h[b] - ((h[a] - 1) * S - 2 * P + K), opw = w[b] - ((w[a] - 1) * S - 2 * P + K);
        vae__conv_geom *g = &net->geom[l];
        if (vae__convt_geom_init(g, c[a], h[a], w[a], c[b], K, S, P, oph, opw)) return -1;
        net->kind[l] = VAE_LAYER_CONVT;
    }
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] != VAE_LAYER_LINEAR) {
            const vae__conv_geom *g = &net->geom[l];
            net->in[l] = g->C * g->H * g->W;
            net->out[l] = g->OC * g->OH * g->OW;
        }
    return 0;
}

/* The HVAE's buffers (net.h): noise, eps1, z1, dz1, q1in, dq1in, dp1in,
 * and the decoder's input and gradient [z1 | z2]. */
static size_t hvae_acts(const vae__net *net, size_t rows)
{
    size_t d = (size_t)net->d, d1 = (size_t)net->d1;
    return net->d1 ? rows * ((d + d1) + 3 * d1 + (net->D + d) + 2 * d + 2 * (d1 + d)) : 0;
}

/* The rows each activation buffer holds: the decoder's (IWAE: K per image),
 * or the encoder's with a VampPrior's pseudo-inputs, whichever is more. */
static size_t net_rows(const vae__net *net)
{
    size_t dec = (size_t)net->max_batch * net->n_samples;
    size_t enc = (size_t)net->max_batch + (size_t)net->n_pseudo;
    return dec > enc ? dec : enc;
}

/* MLP widths along the encoder, then mirrored along the decoder. */
static void layout_mlp(vae__net *net, const vae_config *cfg)
{
    int k = cfg->n_hidden, w = net->D, g = cfg->activation == VAE_ACT_GATED ? 2 : 1;
    for (int l = 0; l < k; l++) { // a gated layer's linear part is twice as wide: [a | g]
        net->in[l] = w;
        w = cfg->hidden[l];
        net->out[l] = g * w;
    }
    net->in[k] = w;
    net->out[k] = net->latent->head_per_dim * net->d + net->flow_params;
    w = net->d;
    for (int l = 0; l < k; l++) {
        net->in[k + 1 + l] = w;
        w = cfg->hidden[k - 1 - l];
        net->out[k + 1 + l] = g * w;
    }
    net->in[2 * k + 1] = w;
    net->out[2 * k + 1] = net->D;
}

/* A dense chain of k hidden layers (widths h[0..k), h[k-1..0] when
 * mirrored) and a last layer out wide, from layer first on input in wide;
 * g: 2 for gated layers ([a | g]). */
static void chain_mlp(vae__net *net, int first, int in, const int *h, int k, int mirror, int out,
                      int g)
{
    for (int l = 0; l < k; l++) {
        net->in[first + l] = in;
        in = h[mirror ? k - 1 - l : l];
        net->out[first + l] = g * in;
    }
    net->in[first + k] = in;
    net->out[first + k] = out;
}

/* The HVAE's four chains (net.h): q(z2|x) 0..k, q(z1|x,z2) from [x | z2],
 * p(z1|z2) from z2 (mirrored widths, as a decoder's), p(x|z1,z2) from
 * [z1 | z2]; each with the --hidden widths. */
static void layout_hvae(vae__net *net, const vae_config *cfg)
{
    int k = cfg->n_hidden, g = cfg->activation == VAE_ACT_GATED ? 2 : 1, d = net->d, d1 = net->d1;
    chain_mlp(net, 0, net->D, cfg->hidden, k, 0, 2 * d, g);
    chain_mlp(net, net->q1_0, net->D + d, cfg->hidden, k, 0, 2 * d1, g);
    chain_mlp(net, net->p1_0, d, cfg->hidden, k, 1, 2 * d1, g);
    chain_mlp(net, net->dec0, d1 + d, cfg->hidden, k, 1, net->D, g);
}

/* Weight and bias sizes of layer l. */
static size_t weight_size(const vae__net *net, int l)
{
    const vae__conv_geom *g = &net->geom[l];
    if (net->kind[l] == VAE_LAYER_LINEAR) return (size_t)net->out[l] * net->in[l];
    return (size_t)g->OC * g->C * g->K * g->K;
}

static size_t bias_size(const vae__net *net, int l)
{
    return net->kind[l] == VAE_LAYER_LINEAR ? (size_t)net->out[l] : (size_t)net->geom[l].OC;
}

/* The gradients at the conv layers' outputs share two buffers, one for the
 * even layers and one for the odd: the backward pass holds only dact[l] and
 * dact[l-1] at once, and nothing reads them after it (a linear layer's is
 * read again by the weight-gradient units, so it keeps its own). A row of
 * the 64x64 model went from 1.08 to 0.77 MB, so a pass takes more rows in
 * the same memory. Values per row of each buffer. */
static void conv_dact_pair(const vae__net *net, size_t pair[2])
{
    pair[0] = pair[1] = 0;
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] != VAE_LAYER_LINEAR && (size_t)net->out[l] > pair[l % 2])
            pair[l % 2] = (size_t)net->out[l];
}

/* Values per row of the gradients at the layers' outputs (dact). */
static size_t dact_values(const vae__net *net)
{
    size_t pair[2], n = 0;
    conv_dact_pair(net, pair);
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] == VAE_LAYER_LINEAR) n += (size_t)net->out[l];
    return n + pair[0] + pair[1];
}

/* A VampPrior's per-component values (vae__net_bind's vamp_tab, vamp_c and
 * vamp_work). */
static size_t vamp_acts(int K, int d)
{
    return VAE_VAMP_TAB(K, d) + (size_t)K + vae__vamp_work_size(K, d);
}

size_t vae__net_row_bytes(const vae_config *cfg)
{
    vae__net one, two;
    vae__net_layout(&one, cfg, 1);
    vae__net_layout(&two, cfg, 2);
    return (two.n_acts - one.n_acts) * sizeof(float);
}

int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch)
{
    memset(net, 0, sizeof *net);
    int k = cfg->n_hidden;
    net->D = cfg->channels * cfg->height * cfg->width;
    net->d = cfg->latent;
    net->k = k;
    net->n_layers = 2 * k + 2;
    net->dec0 = k + 1;
    net->n_noise = net->d;
    if (cfg->model == VAE_MODEL_HVAE) { // four chains, the decoder last (net.h)
        net->d1 = cfg->latent1;
        net->q1_0 = k + 1;
        net->p1_0 = 2 * k + 2;
        net->dec0 = 3 * k + 3;
        net->n_layers = 4 * k + 4;
        net->n_noise = net->d + net->d1;
    }
    net->max_batch = max_batch;
    net->model = cfg->model;
    net->activation = cfg->activation;
    net->n_samples = cfg->model == VAE_MODEL_IWAE ? cfg->iwae_k : 1;
    net->latent = latent_kind(cfg);
    net->deterministic = !net->latent->draws_noise;
    net->n_pseudo = cfg->vamp_k;
    net->vamp_pn = cfg->vamp_k;
    if (net->latent == &gaussian_flow && cfg->flow != VAE_FLOW_NONE) {
        net->flow = cfg->flow;
        net->flow_steps = cfg->flow_steps;
        net->flow_params = cfg->flow_steps * vae__flow_step_params(cfg->flow, net->d);
    }
    if (cfg->arch == VAE_ARCH_CONV) {
        if (layout_conv(net, cfg)) return -1;
        if (net->latent == &vae__vq_kind && vae__vq_layout(net, cfg)) return -1;
    } else if (net->d1) {
        layout_hvae(net, cfg);
    } else {
        layout_mlp(net, cfg);
    }
    // CVAE: the one-hot label joins the input of the encoder's first linear
    // layer and of the decoder's first layer
    if (cfg->model == VAE_MODEL_CVAE) {
        net->n_classes = cfg->n_classes;
        net->cond[0] = cfg->arch == VAE_ARCH_CONV ? k : 0;
        net->cond[1] = k + 1;
        net->in[net->cond[0]] += net->n_classes;
        net->in[net->cond[1]] += net->n_classes;
    }
    block_conv_chains(net);

    size_t off = 0, acts = 0, rows = net_rows(net); // decoder rows, or encoder rows
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] != VAE_LAYER_LINEAR) {
            size_t col = vae__conv_col_size(&net->geom[l], (int)rows);
            if (col > net->col_size) net->col_size = col;
        }
    for (int l = 0; l < net->n_layers; l++) {
        net->w_off[l] = off;
        off += weight_size(net, l);
        net->b_off[l] = off;
        off += bias_size(net, l);
        acts += rows * net->out[l];
    }
    net->likelihood = cfg->likelihood;
    net->free_bits = (real)cfg->free_bits;
    net->ls_off = off;
    if (cfg->likelihood == VAE_LIKELIHOOD_GAUSSIAN) {
        net->sigma_learned = cfg->sigma_mode != VAE_SIGMA_FIXED;
        net->sigma_per_pixel = cfg->sigma_mode == VAE_SIGMA_LEARNED_PIXEL;
        net->n_ls = net->sigma_learned ? (net->sigma_per_pixel ? net->D : 1) : 0;
        net->ls_fixed = real_log((real)cfg->sigma);
    }
    net->pi_off = off + (size_t)net->n_ls;
    net->cb_off = net->pi_off + (size_t)net->n_pseudo * net->D;
    net->n_params = net->cb_off + vae__vq_params(net);
    // the layers' outputs and the gradients there, eps, z and the gradient at
    // z, probabilities, per-row rec and kl, im2col, the fixed log sigma, the
    // free-bits KL sums and mask; IWAE: the targets repeated for each sample
    // and the samples' normalised weights
    for (int l = 0; l < net->n_layers && cfg->activation == VAE_ACT_GATED; l++)
        if (gated(net, l)) acts += rows * (size_t)net->out[l]; // gate[l] and dgate[l]
    net->n_acts = acts + rows * dact_values(net) + 3 * rows * net->d + rows * net->D + 2 * rows +
                  net->col_size + 1 + 2 * (size_t)net->d +
                  (net->n_samples > 1 ? rows * net->D + rows : 0) +
                  (net->n_classes ? rows * (2 * (size_t)net->in[net->cond[0]] +
                                            2 * (size_t)net->in[net->cond[1]]) : 0) +
                  (net->flow ? ((size_t)net->flow_steps * net->d + 1) * rows : 0) +
                  (net->n_pseudo ? 2 * rows * net->D + vamp_acts(net->n_pseudo, net->d) : 0) +
                  vae__vq_acts(net) + hvae_acts(net, rows);
    return 0;
}

void vae__net_bind(vae__net *net, real *params, real *grads, real *acts)
{
    size_t B = net_rows(net);
    net->params = params;
    net->grads = grads;
    for (int l = 0; l < net->n_layers; l++) {
        net->act[l] = acts;
        acts += B * net->out[l];
    }
    net->eps = acts, acts += B * net->d;
    net->z = acts, acts += B * net->d;
    size_t pair[2];
    conv_dact_pair(net, pair);
    real *conv_dact[2] = {acts, acts + B * pair[0]};
    acts += B * (pair[0] + pair[1]);
    for (int l = 0; l < net->n_layers; l++) {
        if (net->kind[l] != VAE_LAYER_LINEAR) {
            net->dact[l] = conv_dact[l % 2];
            continue;
        }
        net->dact[l] = acts;
        acts += B * net->out[l];
    }
    net->dz = acts, acts += B * net->d;
    for (int l = 0; l < net->n_layers; l++)
        if (gated(net, l)) {
            net->gate[l] = acts, acts += B * net->out[l] / 2;
            net->dgate[l] = acts, acts += B * net->out[l] / 2;
        }
    net->prob = acts, acts += B * net->D;
    net->rec_img = acts, acts += B;
    net->kl_img = acts, acts += B;
    net->col = acts, acts += net->col_size;
    acts[0] = net->ls_fixed;
    net->log_sigma = net->sigma_learned ? params + net->ls_off : acts;
    acts += 1;
    net->kl_dim = acts, acts += net->d;
    net->kl_mask = acts, acts += net->d;
    net->xk = net->n_samples > 1 ? acts : NULL, acts += net->n_samples > 1 ? B * net->D : 0;
    net->iw = net->n_samples > 1 ? acts : NULL, acts += net->n_samples > 1 ? B : 0;
    for (int c = 0; c < 2 && net->n_classes; c++) {
        size_t w = (size_t)net->in[net->cond[c]];
        net->cat[c] = acts, acts += B * w;
        net->dcat[c] = acts, acts += B * w;
    }
    if (net->flow) {
        net->fz = acts, acts += (size_t)net->flow_steps * B * net->d;
        net->ld = acts, acts += B;
    }
    if (net->n_pseudo) {
        size_t K = (size_t)net->n_pseudo;
        net->xin = acts, acts += B * net->D;
        net->dxin = acts, acts += B * net->D;
        net->vamp_tab = acts, acts += VAE_VAMP_TAB(K, net->d);
        net->vamp_c = acts, acts += K;
        net->vamp_work = acts, acts += vae__vamp_work_size((int)K, net->d);
    }
    net->noise = net->eps;
    net->dec_in = net->z;
    net->ddec_in = net->dz;
    if (net->d1) {
        size_t d = (size_t)net->d, d1 = (size_t)net->d1, D = (size_t)net->D;
        net->noise = acts, acts += B * (d + d1);
        net->eps1 = acts, acts += B * d1;
        net->z1 = acts, acts += B * d1;
        net->dz1 = acts, acts += B * d1;
        net->q1in = acts, acts += B * (D + d);
        net->dq1in = acts, acts += B * d;
        net->dp1in = acts, acts += B * d;
        net->dec_in = acts, acts += B * (d1 + d);
        net->ddec_in = acts, acts += B * (d1 + d);
    }
    if (net->vq_K) vae__vq_bind(net, acts);
}

/* Layer l's output, what the next layer reads, and the gradient there. */
static real *layer_out(const vae__net *net, int l)
{
    return gated(net, l) ? net->gate[l] : net->act[l];
}

static real *layer_dout(const vae__net *net, int l)
{
    return gated(net, l) ? net->dgate[l] : net->dact[l];
}

/* The conditioned layer l's input: inp (B, in[l] - C) rows, each followed
 * by the one-hot label of its image (n_samples rows per image in the decoder). */
static const real *with_label(vae__net *net, int l, const real *inp, const uint8_t *labels, int B)
{
    int c = l == net->cond[1], C = net->n_classes, w = net->in[l] - C;
    int per = c ? net->n_samples : 1; // the decoder sees K rows per image under IWAE
    real *cat = net->cat[c];
    for (int i = 0; i < B; i++) {
        real *row = cat + (size_t)i * net->in[l];
        memcpy(row, inp + (size_t)i * w, (size_t)w * sizeof *row);
        memset(row + w, 0, (size_t)C * sizeof *row);
        row[w + labels[i / per]] = 1;
    }
    return cat;
}

static int conditioned(const vae__net *net, int l)
{
    return net->n_classes && (l == net->cond[0] || l == net->cond[1]);
}

static void layer_forward(vae__net *net, int l, const real *inp, int B)
{
    const real *w = net->params + net->w_off[l], *b = net->params + net->b_off[l];
    switch (net->kind[l]) {
    case VAE_LAYER_CONV:
        vae__conv2d_forward(net->act[l], inp, w, b, B, &net->geom[l], net->col);
        break;
    case VAE_LAYER_CONVT:
        vae__convt2d_forward(net->act[l], inp, w, b, B, &net->geom[l], net->col);
        break;
    default: vae__linear_forward(net->act[l], inp, w, b, B, net->in[l], net->out[l]);
    }
}

/* dinp may be NULL (the data needs no gradient). A linear layer's weight
 * gradient comes later, from vae__net_weight_grad_unit. */
static void layer_backward(vae__net *net, int l, real *dinp, const real *dout, const real *inp,
                           int B)
{
    const real *w = net->params + net->w_off[l];
    real *dw = net->grads + net->w_off[l], *db = net->grads + net->b_off[l];
    switch (net->kind[l]) {
    case VAE_LAYER_CONV:
        vae__conv2d_backward(dinp, dw, db, dout, inp, w, B, &net->geom[l], net->col);
        break;
    case VAE_LAYER_CONVT:
        vae__convt2d_backward(dinp, dw, db, dout, inp, w, B, &net->geom[l], net->col);
        break;
    default:
        if (dinp) vae__linear_backward_data(dinp, dout, w, B, net->in[l], net->out[l]);
    }
}

/* Layers first..last, the activation after all but the last. */
static void forward_range(vae__net *net, const real *inp, const uint8_t *labels, int B, int first,
                          int last)
{
    for (int l = first; l <= last; l++) {
        layer_forward(net, l, conditioned(net, l) ? with_label(net, l, inp, labels, B) : inp, B);
        if (l < last && gated(net, l))
            vae__gate_forward(net->gate[l], net->act[l], B, net->out[l] / 2);
        else if (l < last)
            vae__act_forward(net->activation, net->act[l], (size_t)B * net->out[l]);
        inp = layer_out(net, l);
    }
}

void vae__net_encode_images(vae__net *net, const real *x, const uint8_t *labels, int B)
{
    net->x_enc = x;
    forward_range(net, x, labels, B, 0, net->k);
}

void vae__net_vamp_ready(vae__net *net)
{
    vae__vamp_prepare(net->vamp_tab, net->vamp_c, net->comp, net->out[net->k], net->n_pseudo,
                      net->d);
}

void vae__net_encode(vae__net *net, const real *x, const uint8_t *labels, int B)
{
    if (!net->n_pseudo || net->comp_kept) {
        vae__net_encode_images(net, x, labels, B);
        return;
    }
    // the pseudo-inputs after the images, clamped to [0, 1] as the paper's
    // hardtanh does, then the mixture's components from their head rows
    net->x_enc = x;
    size_t D = (size_t)net->D, pn = (size_t)net->vamp_pn, hw = (size_t)net->out[net->k];
    if (B) memcpy(net->xin, x, (size_t)B * D * sizeof *x);
    const real *u = net->params + net->pi_off + (size_t)net->vamp_p0 * D;
    real *xu = net->xin + (size_t)B * D;
    for (size_t i = 0; i < pn * D; i++) xu[i] = u[i] < 0 ? 0 : u[i] > 1 ? 1 : u[i];
    forward_range(net, net->xin, labels, B + (int)pn, 0, net->k);
    const real *heads = net->act[net->k] + (size_t)B * hw;
    if (!net->comp_share) {
        net->comp = heads;
        vae__net_vamp_ready(net);
        return;
    }
    memcpy(net->comp_share + (size_t)net->vamp_p0 * hw, heads, pn * hw * sizeof *heads);
    net->comp = net->comp_share;
}

void vae__net_decode_sample(vae__net *net, const uint8_t *labels, int B)
{
    forward_range(net, net->dec_in, labels, B, net->dec0, net->n_layers - 1);
}

void vae__net_decode_noise(vae__net *net, const real *z, const real *noise1, int B)
{
    if (!net->d1) {
        forward_range(net, z, NULL, B, net->dec0, net->n_layers - 1);
        return;
    }
    // z1 from p(z1|z2): its mean, or mu + sigma noise1; then [z1 | z2]
    int d = net->d, d1 = net->d1, ph = net->p1_0 + net->k;
    forward_range(net, z, NULL, B, net->p1_0, ph);
    const real *p = net->act[ph];
    for (int r = 0; r < B; r++) {
        real *row = net->dec_in + (size_t)r * (d1 + d);
        if (noise1)
            vae__reparam_forward(row, p + (size_t)r * 2 * d1, 2 * d1, noise1 + (size_t)r * d1, 1,
                                 d1, 1);
        else
            memcpy(row, p + (size_t)r * 2 * d1, (size_t)d1 * sizeof *row);
        memmove(row + d1, z + (size_t)r * d, (size_t)d * sizeof *row);
    }
    vae__net_decode_sample(net, NULL, B);
}

void vae__net_decode(vae__net *net, const real *z, const uint8_t *labels, int B)
{
    if (net->d1) vae__net_decode_noise(net, z, NULL, B);
    else forward_range(net, z, labels, B, net->dec0, net->n_layers - 1);
}

/* -log p(target | decoder output) of `rows` rows, per row in rec_img. */
static double lik_forward(vae__net *net, const real *target, int rows)
{
    const real *out = net->act[net->n_layers - 1];
    switch (net->likelihood) {
    case VAE_LIKELIHOOD_GAUSSIAN:
        return vae__gaussian_nll_forward(out, target, net->log_sigma, net->sigma_per_pixel, rows,
                                         net->D, net->rec_img);
    case VAE_LIKELIHOOD_CONT_BERNOULLI:
        return vae__cb_forward(out, target, rows, net->D, net->rec_img, net->prob);
    default: return vae__bce_logits_forward(out, target, rows, net->D, net->rec_img, net->prob);
    }
}

/* d (rows, D) = scale * d/d(decoder output) of lik_forward's sum. */
static void lik_backward(vae__net *net, real *d, const real *target, real scale, int rows)
{
    const real *y = net->act[net->n_layers - 1];
    size_t n = (size_t)rows * net->D;
    switch (net->likelihood) {
    case VAE_LIKELIHOOD_GAUSSIAN:
        vae__gaussian_nll_backward(d, net->sigma_learned ? net->grads + net->ls_off : NULL, y,
                                   target, net->log_sigma, net->sigma_per_pixel, scale, rows,
                                   net->D);
        break;
    case VAE_LIKELIHOOD_CONT_BERNOULLI: vae__cb_backward(d, y, net->prob, target, scale, n); break;
    default: vae__bce_logits_backward(d, net->prob, target, scale, n);
    }
}

/* The targets of the decoder's rows: each image's n_samples times (IWAE). */
static const real *row_targets(vae__net *net, const real *target, int B)
{
    int K = net->n_samples;
    size_t D = (size_t)net->D;
    if (K == 1) return target;
    for (int r = 0; r < B * K; r++)
        memcpy(net->xk + (size_t)r * D, target + (size_t)(r / K) * D, D * sizeof *net->xk);
    return net->xk;
}

/* The perceptual term (nn/perceptual.c) of the decoder's mean against the
 * targets, added to rec_img; one decoder row per image (no IWAE samples). */
static double percep_forward(vae__net *net, const real *target, int B)
{
    size_t n = (size_t)B * net->D;
    vae__net_mean(net, net->pwork, B);
    return vae__percep_forward(net->percep, net->pwork + 2 * n, target, net->pwork, B,
                               net->rec_img);
}

/* dlik += the perceptual term's gradient through the mean: sigmoid's
 * derivative (Bernoulli), 1 (Gaussian), the continuous Bernoulli mean's. */
static void percep_backward(vae__net *net, real *dlik, int B, real scale)
{
    size_t n = (size_t)B * net->D;
    const real *mean = net->pwork, *y = net->act[net->n_layers - 1];
    real *dmean = net->pwork + n;
    vae__percep_backward(net->percep, net->pwork + 2 * n, dmean, B, scale);
    int lik = net->likelihood;
    for (size_t i = 0; i < n; i++)
        dlik[i] += dmean[i] * (lik == VAE_LIKELIHOOD_GAUSSIAN        ? 1
                               : lik == VAE_LIKELIHOOD_CONT_BERNOULLI ? vae__cb_mean_grad(y[i])
                                                                      : mean[i] * (1 - mean[i]));
}

void vae__net_forward(vae__net *net, const real *x, const real *target, const uint8_t *labels,
                      int B, double *rec, double *kl)
{
    vae__net_encode(net, x, labels, B);
    vae__net_forward_encoded(net, target, labels, B, rec, kl);
}

void vae__net_forward_encoded(vae__net *net, const real *target, const uint8_t *labels, int B,
                              double *rec, double *kl)
{
    const vae__latent_kind *L = net->latent;
    *kl = L->forward(net, B);
    vae__net_decode_sample(net, labels, B * net->n_samples);
    *rec = lik_forward(net, row_targets(net, target, B), B * net->n_samples);
    if (net->percep) *rec += percep_forward(net, target, B);
    if (L->finish) L->finish(net, B, rec, kl);
}

void vae__net_rec_rows(vae__net *net, int r0, const real *target, int rows)
{
    const real *y = net->act[net->n_layers - 1] + (size_t)r0 * net->D;
    real *rec = net->rec_img + r0, *prob = net->prob + (size_t)r0 * net->D;
    if (net->likelihood == VAE_LIKELIHOOD_BERNOULLI) {
        vae__bce_logits_rows(y, target, rows, net->D, rec, prob);
        return;
    }
    for (int r = 0; r < rows; r++, y += net->D, prob += net->D)
        if (net->likelihood == VAE_LIKELIHOOD_GAUSSIAN)
            vae__gaussian_nll_forward(y, target, net->log_sigma, net->sigma_per_pixel, 1, net->D,
                                      rec + r);
        else
            vae__cb_forward(y, target, 1, net->D, rec + r, prob);
}

void vae__net_mean(const vae__net *net, real *out, int B)
{
    const real *y = net->act[net->n_layers - 1];
    size_t n = (size_t)B * net->D;
    for (size_t i = 0; i < n; i++)
        out[i] = net->likelihood == VAE_LIKELIHOOD_GAUSSIAN        ? y[i]
                 : net->likelihood == VAE_LIKELIHOOD_CONT_BERNOULLI ? vae__cb_mean(y[i])
                                                                    : 1 / (1 + real_exp(-y[i]));
}

/* This slice's gradient at layer l's output (dact[l]) is final. */
static void layer_ready(const vae__net *net, int l)
{
    if (net->ready) atomic_fetch_add_explicit(&net->ready[l], 1, memory_order_release);
}

void vae__net_skip_backward(vae__net *net)
{
    for (int l = 0; l < net->n_layers; l++) layer_ready(net, l);
}

/* Back-propagates the gradient at the output of layer last (in dact[last])
 * down to the input of layer first, into dinp0 (NULL: not needed). */
static void backward_range(vae__net *net, real *dinp0, const real *inp0, int B, int first,
                           int last)
{
    for (int l = last; l >= first; l--) {
        real *dcur = net->dact[l], *dnext = l > first ? layer_dout(net, l - 1) : dinp0;
        if (l < last && gated(net, l))
            vae__gate_backward(dcur, net->dgate[l], net->act[l], B, net->out[l] / 2);
        else if (l < last)
            vae__act_backward(net->activation, dcur, net->act[l], (size_t)B * net->out[l]);
        layer_ready(net, l);
        const real *inp = l == first ? inp0 : layer_out(net, l - 1);
        if (!conditioned(net, l)) {
            layer_backward(net, l, dnext, dcur, inp, B);
        } else { // through [inp | label]: the label's columns need no gradient
            int c = l == net->cond[1], w = net->in[l] - net->n_classes;
            layer_backward(net, l, dnext ? net->dcat[c] : NULL, dcur, net->cat[c], B);
            for (int i = 0; dnext && i < B; i++)
                memmove(dnext + (size_t)i * w, net->dcat[c] + (size_t)i * net->in[l],
                        (size_t)w * sizeof *dnext);
        }
    }
}

const real *vae__net_layer_input(const vae__net *net, int l, const real *x)
{
    if (conditioned(net, l)) return net->cat[l == net->cond[1]];
    if (l == 0) return net->n_pseudo ? net->xin : x;
    if (l == net->dec0) return net->dec_in;
    if (net->d1 && l == net->q1_0) return net->q1in;
    if (net->d1 && l == net->p1_0) return net->z;
    return layer_out(net, l - 1);
}

int vae__net_layer_rows(const vae__net *net, int l, int B)
{
    // IWAE: n_samples decoder rows per image; a VampPrior's pseudo-inputs after the encoder's
    return l > net->k ? B * net->n_samples : B + (net->n_pseudo ? net->vamp_pn : 0);
}

void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale)
{
    vae__net_backward_head(net, target, B, beta, loss_scale);
    vae__net_backward_encoder(net, x, B);
}

void vae__net_backward_head(vae__net *net, const real *target, int B, real beta, real loss_scale)
{
    const vae__latent_kind *L = net->latent;
    int out = net->n_layers - 1, rows = B * net->n_samples;
    real *dlik = net->dact[out];
    lik_backward(net, dlik, net->n_samples > 1 ? net->xk : target, loss_scale, rows);
    if (net->percep) percep_backward(net, dlik, B, loss_scale);
    if (L->weigh) L->weigh(net, dlik, B);
    backward_range(net, net->ddec_in, net->dec_in, rows, net->dec0, out);
    L->backward(net, B, loss_scale, beta);
}

/* A step's thread: the gradient at its share of the components, summed over
 * the threads in their order, into the head rows after its images'. */
static void gather_dcomp(vae__net *net, int B)
{
    size_t hw = (size_t)net->out[net->k], K = (size_t)net->n_pseudo;
    size_t at = (size_t)net->vamp_p0 * hw, n = (size_t)net->vamp_pn * hw;
    real *dst = net->dact[net->k] + (size_t)B * hw;
    memcpy(dst, net->dcomp_all + at, n * sizeof *dst);
    for (int t = 1; t < net->dcomp_T; t++) vae__add_into(dst, net->dcomp_all + t * K * hw + at, n);
}

void vae__net_backward_encoder(vae__net *net, const real *x, int B)
{
    int k = net->k;
    if (net->n_pseudo) {
        // the encoder's pass over the pseudo-inputs too, down to them; their
        // gradient is nought where the clamp holds them (and outside this
        // net's share: the other threads' nets write theirs)
        if (net->comp_share) gather_dcomp(net, B);
        size_t D = (size_t)net->D, p0 = (size_t)net->vamp_p0 * D, pn = (size_t)net->vamp_pn * D;
        backward_range(net, net->dxin, net->xin, B + net->vamp_pn, 0, k);
        const real *u = net->params + net->pi_off, *du = net->dxin + (size_t)B * D;
        real *gu = net->grads + net->pi_off;
        memset(gu, 0, (size_t)net->n_pseudo * D * sizeof *gu);
        for (size_t i = 0; i < pn; i++) gu[p0 + i] = u[p0 + i] >= 0 && u[p0 + i] <= 1 ? du[i] : 0;
    } else {
        backward_range(net, NULL, x, B, 0, k);
    }
    for (int l = 0; l < net->n_layers && !net->defer_wgrad; l++) // else the step's schedule's
        if (net->kind[l] == VAE_LAYER_LINEAR)
            vae__linear_backward_weights(net->grads + net->w_off[l], net->grads + net->b_off[l],
                                         net->dact[l], vae__net_layer_input(net, l, x),
                                         vae__net_layer_rows(net, l, B), net->in[l], net->out[l],
                                         0, net->out[l]);
}
