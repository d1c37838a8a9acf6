/* model.h - the model handle's layout, shared by model.c, adam.c, checkpoint.c
 * and the tests that reach inside it. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "internal.h"
#include "layers.h"

struct vae_model {
    vae_config cfg;
    vae__net net;         /* views into the buffers below */
    float *params;        /* n_params: weights, one flat buffer */
    float *grads;         /* n_params */
    float *adam_m, *adam_v; /* n_params each */
    float *acts;          /* net.n_acts: activations for max_batch */
    vae_adam adam;
    long step;
    vae_rng rng;          /* reparameterisation noise of training */
    char **meta;          /* key, value, ..., NULL from a loaded checkpoint */
    vae_error err;
};

/* One Adam step (t counts from 1). */
void vae__adam_update(float *p, const float *g, float *m, float *v, size_t n, const vae_adam *a,
                      long t);

/* Forward and backward with the noise already in m->net.eps; gradients are
 * zeroed first. Adds the batch sums to *st. Used by vae_train_step and the
 * reference tests. */
void vae__model_forward_backward(vae_model *m, const float *x, int B, vae_stats *st);

/* vae_train_step with the noise already in m->net.eps (the reference tests
 * supply PyTorch's). */
int vae__train_step_noise(vae_model *m, const float *x, int B, vae_stats *st);

/* Sets m->err and returns code. */
int vae__model_error(vae_model *m, int code, const char *fmt, ...) VAE_PRINTF(3, 4);

/* PyTorch names of the parameter tensors: tensor i of vae__model_tensors. */
typedef struct vae__param_view {
    char name[48];
    int ndim;
    int64_t shape[2];
    float *data;
} vae__param_view;

/* Fills views (room for 4 * VAE_MAX_LAYERS) and returns their count. */
int vae__model_tensors(vae_model *m, vae__param_view *views);

#endif
