/* adam.c - the Adam update over flat parameter, gradient and moment buffers,
 * in the same operation order as PyTorch's torch.optim.Adam. */
#include <float.h>
#include <math.h>

#include "internal.h"
#include "nn/adam.h"

void vae_adam_default(vae_adam *a)
{
    a->lr = 1e-3f;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-8f;
}

VAE_VECTOR_CLONES
void vae__adam_update(float *p, const float *g, float *m, float *v, size_t n, const vae_adam *a,
                      long t, float scale)
{
    // bias corrections in double, as PyTorch computes them in Python floats
    double bc1 = 1.0 - pow(a->beta1, (double)t);
    float bc2_sqrt = (float)sqrt(1.0 - pow(a->beta2, (double)t));
    float step = (float)(a->lr / bc1);
    float b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    for (size_t i = 0; i < n; i++) {
        // Moments below FLT_MIN are flushed to zero. Without this, the moments
        // of weights whose gradient is zero (those of dead ReLU units) decay
        // into subnormals and stay there (0.9 x 1 ulp rounds back to 1 ulp),
        // and x86 subnormal arithmetic made later epochs up to 1.6x slower. Such a
        // moment moves its weight by less than 1e-37: nothing is lost.
        float gi = scale * g[i];
        float mi = b1 * m[i] + (1 - b1) * gi;
        float vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = fabsf(mi) < FLT_MIN ? 0.0f : mi;
        v[i] = vi < FLT_MIN ? 0.0f : vi;
        p[i] -= step * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}
