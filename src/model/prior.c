/* prior.c - drawing from the model's prior p(z): N(0, I), or the
 * VampPrior's mixture of the encoder's posteriors at the pseudo-inputs (its
 * density and gradient are nn/prior.c's). */
#include <math.h>

#include "model/model.h"
#include "nn/latent.h"

int vae_model_prior_sample(vae_model *m, vae_rng *rng, int n, float *z)
{
    if (!m) return VAE_EINVAL;
    if (!rng || !z || n < 0)
        return vae__model_error(m, VAE_EINVAL, "prior samples need an rng and room for %d codes", n);
    vae__net *net = &m->net;
    int d = net->d, K = net->n_pseudo;
    if (!K) { // n * d normals in order, as every sampler drew them before the VampPrior
        for (size_t i = 0; i < (size_t)n * d; i++) z[i] = (float)vae_rng_normal(rng);
        return VAE_OK;
    }
    // the components: an encoder pass over the pseudo-inputs alone
    vae__net_encode(net, NULL, NULL, 0);
    int hw = net->out[net->k];
    for (int i = 0; i < n; i++) {
        int k = (int)(vae_rng_uniform(rng) * K);
        const float *mu = net->comp + (size_t)(k < K ? k : K - 1) * hw, *lv = mu + d;
        for (int j = 0; j < d; j++)
            z[(size_t)i * d + j] =
                mu[j] + expf(0.5f * vae__clamp_logvar(lv[j])) * (float)vae_rng_normal(rng);
    }
    return VAE_OK;
}
