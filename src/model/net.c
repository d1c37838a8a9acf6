/* net.c - the VAE network (MLP or conv): layout of its flat buffers and the full
 * forward and backward passes (float or double). */
#include <math.h>
#include <string.h>
#include <threads.h>

#include "model/net.h"
#include "nn/latent.h"
#include "nn/layers.h"
#include "nn/loss.h"

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
    net->out[k] = (net->deterministic ? 1 : 2) * net->d;
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
            size_t col = vae__conv_col_size(g);
            if (col > net->col_size) net->col_size = col;
        }
    return 0;
}

/* MLP widths along the encoder, then mirrored along the decoder. */
static void layout_mlp(vae__net *net, const vae_config *cfg)
{
    int k = cfg->n_hidden, w = net->D;
    for (int l = 0; l < k; l++) {
        net->in[l] = w;
        net->out[l] = w = cfg->hidden[l];
    }
    net->in[k] = w;
    net->out[k] = (net->deterministic ? 1 : 2) * net->d;
    w = net->d;
    for (int l = 0; l < k; l++) {
        net->in[k + 1 + l] = w;
        net->out[k + 1 + l] = w = cfg->hidden[k - 1 - l];
    }
    net->in[2 * k + 1] = w;
    net->out[2 * k + 1] = net->D;
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

int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch)
{
    memset(net, 0, sizeof *net);
    int k = cfg->n_hidden;
    net->D = cfg->channels * cfg->height * cfg->width;
    net->d = cfg->latent;
    net->k = k;
    net->n_layers = 2 * k + 2;
    net->max_batch = max_batch;
    net->model = cfg->model;
    net->n_samples = cfg->model == VAE_MODEL_IWAE ? cfg->iwae_k : 1;
    net->deterministic = cfg->model == VAE_MODEL_AE || cfg->model == VAE_MODEL_SPARSE_AE ||
                         cfg->model == VAE_MODEL_DAE;
    if (cfg->arch == VAE_ARCH_CONV) {
        if (layout_conv(net, cfg)) return -1;
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

    size_t off = 0, acts = 0, rows = (size_t)max_batch * net->n_samples; // decoder rows
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
    net->n_params = off + (size_t)net->n_ls;
    // the layers' outputs and the gradients there, eps, z and the gradient at
    // z, probabilities, per-row rec and kl, im2col, the fixed log sigma, the
    // free-bits KL sums and mask; IWAE: the targets repeated for each sample
    // and the samples' normalised weights
    net->n_acts = 2 * acts + 3 * rows * net->d + rows * net->D + 2 * rows +
                  net->col_size + 1 + 2 * (size_t)net->d +
                  (net->n_samples > 1 ? rows * net->D + rows : 0) +
                  (net->n_classes ? rows * (2 * (size_t)net->in[net->cond[0]] +
                                            2 * (size_t)net->in[net->cond[1]]) : 0);
    return 0;
}

void vae__net_bind(vae__net *net, real *params, real *grads, real *acts)
{
    size_t B = (size_t)net->max_batch * net->n_samples;
    net->params = params;
    net->grads = grads;
    for (int l = 0; l < net->n_layers; l++) {
        net->act[l] = acts;
        acts += B * net->out[l];
    }
    net->eps = acts, acts += B * net->d;
    net->z = acts, acts += B * net->d;
    for (int l = 0; l < net->n_layers; l++) {
        net->dact[l] = acts;
        acts += B * net->out[l];
    }
    net->dz = acts, acts += B * net->d;
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
}

/* The conditioned layer l's input: inp (B, in[l] - C) rows, each followed
 * by the one-hot label of its image (rows_per_image rows per image). */
static const real *with_label(vae__net *net, int l, const real *inp, int B)
{
    int c = l == net->cond[1], C = net->n_classes, w = net->in[l] - C;
    int per = c ? net->n_samples : 1; // the decoder sees K rows per image under IWAE
    real *cat = net->cat[c];
    for (int i = 0; i < B; i++) {
        real *row = cat + (size_t)i * net->in[l];
        memcpy(row, inp + (size_t)i * w, (size_t)w * sizeof *row);
        memset(row + w, 0, (size_t)C * sizeof *row);
        row[w + net->labels[i / per]] = 1;
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

/* Layers first..last, ReLU after all but the last. */
static void forward_range(vae__net *net, const real *inp, int B, int first, int last)
{
    for (int l = first; l <= last; l++) {
        layer_forward(net, l, conditioned(net, l) ? with_label(net, l, inp, B) : inp, B);
        if (l < last) vae__relu_forward(net->act[l], (size_t)B * net->out[l]);
        inp = net->act[l];
    }
}

void vae__net_encode(vae__net *net, const real *x, int B) { forward_range(net, x, B, 0, net->k); }

void vae__net_decode(vae__net *net, const real *z, int B)
{
    forward_range(net, z, B, net->k + 1, net->n_layers - 1);
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

/* IWAE: K = n_samples draws z_bi = mu_b + sigma_b eps_bi per image, decoded
 * as rows b*K + i; log w_bi = -rec_bi + 1/2 sum_j (lv_j + eps^2 - z^2)
 * (log p(z) - log q(z|x)); the loss per image is log K - logsumexp_i log w_bi.
 * *rec sums the images' mean reconstruction terms and *kl the rest of the
 * loss, so rec + kl is the negative IWAE bound (for K = 1, kl is the
 * one-sample KL estimate). iw gets the normalised weights. */
/* log w of decoder row r (a sample of image b), from rec_img[r]. */
static double iwae_logw(const vae__net *net, int b, size_t r)
{
    int d = net->d;
    const real *lv = net->act[net->k] + (size_t)b * 2 * d + d;
    const real *e = net->eps + r * d, *z = net->z + r * d;
    double s = 0;
    for (int j = 0; j < d; j++)
        s += 0.5 * ((double)vae__clamp_logvar(lv[j]) + (double)e[j] * e[j] - (double)z[j] * z[j]);
    return s - net->rec_img[r];
}

static void iwae_forward(vae__net *net, const real *x, const real *target, int B, double *rec,
                         double *kl)
{
    int K = net->n_samples, d = net->d, D = net->D;
    vae__net_encode(net, x, B);
    const real *head = net->act[net->k];
    for (int r = 0; r < B * K; r++) {
        const real *mu = head + (size_t)(r / K) * 2 * d, *lv = mu + d;
        const real *e = net->eps + (size_t)r * d;
        real *z = net->z + (size_t)r * d;
        for (int j = 0; j < d; j++)
            z[j] = mu[j] + real_exp((real)0.5 * vae__clamp_logvar(lv[j])) * e[j];
        memcpy(net->xk + (size_t)r * D, target + (size_t)(r / K) * D, (size_t)D * sizeof *net->xk);
    }
    vae__net_decode(net, net->z, B * K);
    lik_forward(net, net->xk, B * K);
    *rec = *kl = 0;
    for (int b = 0; b < B; b++) {
        size_t r0 = (size_t)b * K;
        double top = -INFINITY, sum = 0, recbar = 0;
        for (int i = 0; i < K; i++) {
            top = fmax(top, iwae_logw(net, b, r0 + i));
            recbar += net->rec_img[r0 + i] / K;
        }
        for (int i = 0; i < K; i++) sum += exp(iwae_logw(net, b, r0 + i) - top);
        double lse = top + log(sum), loss = log((double)K) - lse;
        for (int i = 0; i < K; i++) net->iw[r0 + i] = (real)exp(iwae_logw(net, b, r0 + i) - lse);
        net->rec_img[b] = (real)recbar; // rows of images < b are read: safe to overwrite
        net->kl_img[b] = (real)(loss - recbar);
        *rec += recbar;
        *kl += loss - recbar;
    }
}

static void backward_range(vae__net *net, real *dinp0, const real *inp0, int B, int first,
                           int last);

/* The IWAE loss's gradient: each sample's -log w_bi weighted by iw_bi. */
static void iwae_backward(vae__net *net, const real *x, int B, real loss_scale)
{
    int K = net->n_samples, d = net->d, D = net->D, k = net->k, out = net->n_layers - 1;
    real *dy = net->dact[out], *dz = net->dz, *dhead = net->dact[k];
    lik_backward(net, dy, net->xk, loss_scale, B * K);
    for (int r = 0; r < B * K; r++)
        for (int j = 0; j < D; j++) dy[(size_t)r * D + j] *= net->iw[r];
    backward_range(net, dz, net->z, B * K, k + 1, out);
    const real *head = net->act[k];
    for (int b = 0; b < B; b++) {
        const real *lv = head + (size_t)b * 2 * d + d;
        real *dmu = dhead + (size_t)b * 2 * d, *dlv = dmu + d;
        for (int j = 0; j < d; j++) {
            real l = vae__clamp_logvar(lv[j]), sigma = real_exp((real)0.5 * l), gm = 0, gl = 0;
            for (int i = 0; i < K; i++) {
                size_t r = (size_t)b * K + i;
                real c = loss_scale * net->iw[r];
                // d(-log w)/dz = drec/dz + z; z = mu + sigma eps; d(-log w)/dlv adds -1/2
                real g = dz[r * d + j] + c * net->z[r * d + j];
                gm += g;
                gl += g * (real)0.5 * sigma * net->eps[r * d + j] - (real)0.5 * c;
            }
            dmu[j] = gm;
            dlv[j] = l == lv[j] ? gl : 0;
        }
    }
    backward_range(net, NULL, x, B, 0, k);
}

void vae__net_forward(vae__net *net, const real *x, const real *target, int B, double *rec,
                      double *kl)
{
    if (net->n_samples > 1) {
        iwae_forward(net, x, target, B, rec, kl);
        return;
    }
    vae__net_encode(net, x, B);
    if (net->deterministic) { // the code is z; the sparse AE's penalty stands in for the KL
        size_t n = (size_t)B * net->d;
        memcpy(net->z, net->act[net->k], n * sizeof *net->z);
        *kl = 0;
        for (int i = 0; i < B; i++) {
            double s = 0;
            if (net->model == VAE_MODEL_SPARSE_AE)
                for (int j = 0; j < net->d; j++) s += real_fabs(net->z[(size_t)i * net->d + j]);
            net->kl_img[i] = (real)s;
            *kl += s;
        }
    } else {
        *kl = vae__gauss_forward(net->z, net->act[net->k], net->eps, B, net->d, net->kl_img);
    }
    vae__net_decode(net, net->z, B);
    *rec = lik_forward(net, target, B);
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
    net->bwd_B = 0;
    for (int l = 0; l < net->n_layers; l++) layer_ready(net, l);
}

/* Back-propagates the gradient at the output of layer last (in dact[last])
 * down to the input of layer first, into dinp0 (NULL: not needed). */
static void backward_range(vae__net *net, real *dinp0, const real *inp0, int B, int first,
                           int last)
{
    for (int l = last; l >= first; l--) {
        real *dcur = net->dact[l], *dnext = l > first ? net->dact[l - 1] : dinp0;
        if (l < last) vae__relu_backward(dcur, net->act[l], (size_t)B * net->out[l]);
        layer_ready(net, l);
        const real *inp = l == first ? inp0 : net->act[l - 1];
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

void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale)
{
    net->bwd_x = x, net->bwd_B = B;
    if (net->n_samples > 1) {
        iwae_backward(net, x, B, loss_scale);
    } else {
        int out = net->n_layers - 1, k = net->k;
        real *dz = net->dz, *dhead = net->dact[k];
        lik_backward(net, net->dact[out], target, loss_scale, B);
        backward_range(net, dz, net->z, B, k + 1, out);
        if (net->deterministic) { // d/dcode = dz (+ beta * sign(code) for the sparse AE's L1)
            size_t n = (size_t)B * net->d;
            real w = net->model == VAE_MODEL_SPARSE_AE ? loss_scale * beta : 0;
            for (size_t i = 0; i < n; i++)
                dhead[i] = dz[i] + w * (net->z[i] > 0 ? 1 : net->z[i] < 0 ? -1 : 0);
        } else {
            vae__gauss_backward(dhead, net->act[k], net->eps, dz, loss_scale * beta,
                                net->free_bits > 0 ? net->kl_mask : NULL, B, net->d);
        }
        backward_range(net, NULL, x, B, 0, k);
    }
    if (!net->defer_wgrad) {
        const vae__net *self = net;
        for (int u = 0, U = vae__net_wgrad_units(net); u < U; u++)
            vae__net_weight_grad_unit(&self, 1, net->grads, u, NULL, NULL);
    }
}

/* The input layer l saw in the last forward pass. */
static const real *layer_input(const vae__net *net, int l)
{
    if (conditioned(net, l)) return net->cat[l == net->cond[1]];
    return l == 0 ? net->bwd_x : l == net->k + 1 ? net->z : net->act[l - 1];
}

/* The rows layer l saw in the slice's last backward pass (IWAE: the decoder
 * sees n_samples per image). */
static int slice_rows(const vae__net *s, int l)
{
    return s->bwd_B * (l > s->k ? s->n_samples : 1);
}

static int wgrad_chunks(const vae__net *net, int l)
{
    return net->out[l] < VAE_WGRAD_CHUNKS ? net->out[l] : VAE_WGRAD_CHUNKS;
}

size_t vae__net_wgrad_scratch(const vae__net *net)
{
    size_t most = 0;
    int B = net->max_batch * net->n_samples;
    for (int l = 0; l < net->n_layers; l++) {
        int C = wgrad_chunks(net, l);
        size_t n = vae__wgrad_work(B, net->in[l], (net->out[l] + C - 1) / C);
        if (net->kind[l] == VAE_LAYER_LINEAR && n > most) most = n;
    }
    return most;
}

/* Unit u's layer (-1 past the last unit) and output rows o0..o1: the layers
 * in the order the backward pass finishes them (the last first), each one's
 * chunks in order. */
static int wgrad_unit(const vae__net *net, int u, int *o0, int *o1)
{
    for (int l = net->n_layers - 1; l >= 0; l--) {
        if (net->kind[l] != VAE_LAYER_LINEAR) continue;
        int C = wgrad_chunks(net, l);
        if (u < C) {
            *o0 = net->out[l] * u / C, *o1 = net->out[l] * (u + 1) / C;
            return l;
        }
        u -= C;
    }
    return -1;
}

int vae__net_wgrad_units(const vae__net *net)
{
    int n = 0;
    for (int l = 0; l < net->n_layers; l++)
        if (net->kind[l] == VAE_LAYER_LINEAR) n += wgrad_chunks(net, l);
    return n;
}

vae__wgrad_span vae__net_wgrad_span(const vae__net *net, int u)
{
    int o0, o1, l = wgrad_unit(net, u, &o0, &o1);
    if (l < 0) return (vae__wgrad_span){0};
    size_t IN = (size_t)net->in[l];
    return (vae__wgrad_span){.w_off = net->w_off[l] + o0 * IN,
                             .w_len = (o1 - o0) * IN,
                             .b_off = net->b_off[l] + o0,
                             .b_len = (size_t)(o1 - o0)};
}

size_t vae__net_wgrad_unit_max(const vae__net *net)
{
    size_t most = 0;
    for (int u = 0, U = vae__net_wgrad_units(net); u < U; u++) {
        vae__wgrad_span s = vae__net_wgrad_span(net, u);
        if (s.w_len + s.b_len > most) most = s.w_len + s.b_len;
    }
    return most;
}

void vae__net_wgrad_bounds(vae__net *net)
{
    for (int l = 0; l < net->n_layers; l++) {
        if (net->kind[l] != VAE_LAYER_LINEAR) continue;
        size_t rows = (size_t)slice_rows(net, l);
        double d = vae__abs_max(net->dact[l], rows * net->out[l]);
        double in = vae__abs_max(layer_input(net, l), rows * net->in[l]);
        net->wbound[l] = (double)rows * d * (in > 1 ? in : 1);
    }
}

double vae__net_weight_grad_unit(const vae__net *const *nets, int n, real *grads, int u,
                                 void *scratch, real *to)
{
    const vae__net *net = nets[0];
    int o0, o1, l = wgrad_unit(net, u, &o0, &o1);
    if (l < 0) return 0;
    for (int spins = 0; net->ready &&
                        atomic_load_explicit(&net->ready[l], memory_order_acquire) < n;
         spins++)
        if (spins > 1000) thrd_yield(); // a slice still on its way back
    int IN = net->in[l], OUT = net->out[l], slices = 0;
    real *dw = to ? to : grads + net->w_off[l] + (size_t)o0 * IN;
    real *db = to ? to + (size_t)(o1 - o0) * IN : grads + net->b_off[l] + o0;
    if (!scratch) { // one slice, the dense product
        vae__linear_backward_weights(dw, db, net->dact[l], layer_input(net, l),
                                     slice_rows(net, l), IN, OUT, o0, o1);
        return vae__sum_squares(dw, (size_t)(o1 - o0) * IN) +
               vae__sum_squares(db, (size_t)(o1 - o0));
    }
    for (int i = 0; i < n; i++) slices += nets[i]->bwd_B > 0;
    vae__wgrad g;
    vae__wgrad_begin(&g, dw, db, IN, OUT, o0, o1, slices, scratch);
    for (int i = 0; i < n; i++) {
        const vae__net *s = nets[i];
        if (s->bwd_B > 0) vae__wgrad_slice(&g, s->dact[l], layer_input(s, l), slice_rows(s, l));
    }
    return vae__wgrad_finish(&g);
}
