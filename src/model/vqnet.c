/* vqnet.c - the VQ-VAE in the network (float or double): its layout (the
 * conv architecture with 1x1 convolutions on each side of the code grid in
 * place of the linear layers), its buffers and its latent kind (the nearest
 * codes, the codebook and commitment loss, the straight-through gradient).
 * The math is nn/vq.c's; the EMA update and restarts after a step are
 * model/vq.c's. */
#include <string.h>

#include "model/net.h"
#include "nn/vq.h"

int vae__vq_layout(vae__net *net, const vae_config *cfg)
{
    // layout_conv made layers k and k+1 linear around a flat latent: they
    // become 1x1 convolutions from the last feature map (C, H, W) to the code
    // grid (code_dim, H, W) and back, so each cell's code sees its own column
    int k = net->k;
    const vae__conv_geom *top = &net->geom[k - 1];
    int C = top->OC, H = top->OH, W = top->OW;
    if (cfg->code_dim < 1 || cfg->codebook < 1) return -1;
    if (vae__conv_geom_init(&net->geom[k], C, H, W, cfg->code_dim, 1, 1, 0) ||
        vae__conv_geom_init(&net->geom[k + 1], cfg->code_dim, H, W, C, 1, 1, 0))
        return -1;
    for (int l = k; l <= k + 1; l++) {
        const vae__conv_geom *g = &net->geom[l];
        net->kind[l] = VAE_LAYER_CONV;
        net->in[l] = g->C * g->H * g->W;
        net->out[l] = g->OC * g->OH * g->OW;
        size_t col = vae__conv_col_size(g, net->max_batch);
        if (col > net->col_size) net->col_size = col;
    }
    net->vq_K = cfg->codebook;
    net->vq_C = cfg->code_dim;
    net->vq_P = H * W;
    net->d = net->vq_C * net->vq_P;
    net->vq_ema = cfg->codebook_update == VAE_CODEBOOK_EMA;
    net->vq_commit = (real)cfg->commitment;
    return 0;
}

size_t vae__vq_params(const vae__net *net)
{
    // the codebook (K, C), then the EMA state: counts (K) and sums (K, C).
    // The state is not trained (its gradient is 0, so Adam leaves it alone)
    // but rides in the parameter buffer so that checkpoints and the model
    // checksum carry it, which an exact resume needs.
    return net->vq_K ? (size_t)net->vq_K * (2 * (size_t)net->vq_C + 1) : 0;
}

size_t vae__vq_acts(const vae__net *net)
{
    if (!net->vq_K) return 0;
    return (size_t)net->max_batch * net->vq_P + (size_t)net->vq_K * (1 + (size_t)net->vq_C);
}

real *vae__vq_bind(vae__net *net, real *acts)
{
    size_t KC = (size_t)net->vq_K * net->vq_C;
    net->cb = net->params + net->cb_off;
    net->ema_count = net->cb + KC;
    net->ema_sum = net->ema_count + net->vq_K;
    net->codes = acts, acts += (size_t)net->max_batch * net->vq_P;
    net->vq_count = acts, acts += net->vq_K;
    net->vq_sum = acts, acts += KC;
    return acts;
}

void vae__vq_point(vae__net *net, int B)
{
    vae__vq_forward(net->z, net->codes, net->act[net->k], net->cb, B, net->vq_C, net->vq_P,
                    net->vq_K, NULL);
}

/* The loss's value counts ||z_e - e||^2 once for the codebook term (the
 * loss update only) and beta times for the commitment term. */
static real vq_weight(const vae__net *net) { return net->vq_commit + (net->vq_ema ? 0 : 1); }

static double vq_forward(vae__net *net, int B)
{
    double sum = vae__vq_forward(net->z, net->codes, net->act[net->k], net->cb, B, net->vq_C,
                                 net->vq_P, net->vq_K, net->kl_img);
    real w = vq_weight(net);
    for (int b = 0; b < B; b++) net->kl_img[b] *= w;
    return sum * w;
}

static void vq_backward(vae__net *net, int B, real loss_scale, real beta)
{
    // beta: the regulariser's weight, 1 for the VQ-VAE (vae__model_reg_weight)
    int K = net->vq_K, C = net->vq_C, P = net->vq_P;
    size_t KC = (size_t)K * C;
    const real *ze = net->act[net->k];
    real c = loss_scale * beta, *dcb = net->grads + net->cb_off;
    vae__vq_backward(net->dact[net->k], net->dz, ze, net->z, c * net->vq_commit, (size_t)B * net->d);
    if (net->vq_ema) memset(dcb, 0, KC * sizeof *dcb);
    else vae__vq_codebook_grad(dcb, ze, net->cb, net->codes, c, B, C, P, K);
    memset(dcb + KC, 0, (KC + K) * sizeof *dcb); // the EMA state is not trained
    // the usage counts and EMA sums of this slice, for model/vq.c after the step
    vae__vq_stats(net->vq_count, net->vq_sum, ze, net->codes, B, C, P, K);
}

const vae__latent_kind vae__vq_kind = {"vector-quantised", 1, 0, vq_forward, NULL, NULL,
                                       vq_backward};
