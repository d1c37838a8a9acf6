/* net.c - the MLP VAE network: layout of its flat buffers and the full
 * forward and backward passes (float or double). */
#include <string.h>

#include "layers.h"

int vae__net_layout(vae__net *net, const vae_config *cfg, int max_batch)
{
    memset(net, 0, sizeof *net);
    int k = cfg->n_hidden;
    net->D = cfg->channels * cfg->height * cfg->width;
    net->d = cfg->latent;
    net->k = k;
    net->n_layers = 2 * k + 2;
    net->max_batch = max_batch;
    // widths along the encoder, then mirrored along the decoder
    int w = net->D;
    for (int l = 0; l < k; l++) {
        net->in[l] = w;
        net->out[l] = w = cfg->hidden[l];
    }
    net->in[k] = w;
    net->out[k] = 2 * net->d;
    w = net->d;
    for (int l = 0; l < k; l++) {
        net->in[k + 1 + l] = w;
        net->out[k + 1 + l] = w = cfg->hidden[k - 1 - l];
    }
    net->in[2 * k + 1] = w;
    net->out[2 * k + 1] = net->D;

    size_t off = 0, acts = 0;
    int widest = net->D;
    for (int l = 0; l < net->n_layers; l++) {
        net->w_off[l] = off;
        off += (size_t)net->out[l] * net->in[l];
        net->b_off[l] = off;
        off += (size_t)net->out[l];
        acts += (size_t)max_batch * net->out[l];
        if (net->out[l] > widest) widest = net->out[l];
    }
    net->n_params = off;
    net->max_width = widest;
    // eps, z, two scratch buffers, probabilities, per-image rec and kl
    net->n_acts = acts + 2 * (size_t)max_batch * net->d + 2 * (size_t)max_batch * widest +
                  (size_t)max_batch * net->D + 2 * (size_t)max_batch;
    return 0;
}

void vae__net_bind(vae__net *net, real *params, real *grads, real *acts)
{
    size_t B = (size_t)net->max_batch;
    net->params = params;
    net->grads = grads;
    for (int l = 0; l < net->n_layers; l++) {
        net->act[l] = acts;
        acts += B * net->out[l];
    }
    net->eps = acts, acts += B * net->d;
    net->z = acts, acts += B * net->d;
    net->dbuf[0] = acts, acts += B * net->max_width;
    net->dbuf[1] = acts, acts += B * net->max_width;
    net->prob = acts, acts += B * net->D;
    net->rec_img = acts, acts += B;
    net->kl_img = acts;
}

/* Layers first..last, ReLU after all but `linear_last`'s final one. */
static void forward_range(vae__net *net, const real *inp, int B, int first, int last)
{
    for (int l = first; l <= last; l++) {
        vae__linear_forward(net->act[l], inp, net->params + net->w_off[l],
                            net->params + net->b_off[l], B, net->in[l], net->out[l]);
        if (l < last) vae__relu_forward(net->act[l], (size_t)B * net->out[l]);
        inp = net->act[l];
    }
}

void vae__net_encode(vae__net *net, const real *x, int B) { forward_range(net, x, B, 0, net->k); }

void vae__net_decode(vae__net *net, const real *z, int B)
{
    forward_range(net, z, B, net->k + 1, net->n_layers - 1);
}

void vae__net_forward(vae__net *net, const real *x, const real *target, int B, double *rec,
                      double *kl)
{
    vae__net_encode(net, x, B);
    *kl = vae__gauss_forward(net->z, net->act[net->k], net->eps, B, net->d, net->kl_img);
    vae__net_decode(net, net->z, B);
    *rec = vae__bce_logits_forward(net->act[net->n_layers - 1], target, B, net->D, net->rec_img,
                                   net->prob);
}

/* Back-propagates dcur (gradient at the output of layer last) down to the
 * input of layer first; returns the buffer holding the input gradient
 * (NULL when first == 0: the data needs none). */
static real *backward_range(vae__net *net, real *dcur, const real *inp0, int B, int first, int last)
{
    for (int l = last; l >= first; l--) {
        if (l < last) vae__relu_backward(dcur, net->act[l], (size_t)B * net->out[l]);
        real *dnext = l == 0 ? NULL : (dcur == net->dbuf[0] ? net->dbuf[1] : net->dbuf[0]);
        const real *inp = l == first ? inp0 : net->act[l - 1];
        vae__linear_backward(dnext, net->grads + net->w_off[l], net->grads + net->b_off[l], dcur,
                             inp, net->params + net->w_off[l], B, net->in[l], net->out[l]);
        dcur = dnext;
    }
    return dcur;
}

void vae__net_backward(vae__net *net, const real *x, const real *target, int B, real beta,
                       real loss_scale)
{
    int out = net->n_layers - 1, k = net->k;
    real *d = net->dbuf[0];
    vae__bce_logits_backward(d, net->prob, target, loss_scale, (size_t)B * net->D);
    real *dz = backward_range(net, d, net->z, B, k + 1, out);
    real *dhead = dz == net->dbuf[0] ? net->dbuf[1] : net->dbuf[0];
    vae__gauss_backward(dhead, net->act[k], net->eps, dz, loss_scale * beta, B, net->d);
    backward_range(net, dhead, x, B, 0, k);
}
