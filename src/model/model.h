/* model.h - the model handle's layout, shared by model.c, adam.c, checkpoint.c
 * and the tests that reach inside it. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "internal.h"
#include "model/net.h"

/* A training thread's share of a step: its own activations and gradients,
 * the shared weights. Worker 0 is the model's own net. */
typedef struct vae__worker {
    vae__net net;
    float *grads, *acts;  /* owned for workers 1..n-1 */
    void *scratch;        /* vae__net_weight_grad_unit's */
    float *unit_grad;     /* a unit's gradient, when the step applies Adam to it at once */
    double rec, kl;       /* the slice's loss sums */
    double sumsq;         /* squared norm of its share of the other summed gradients */
} vae__worker;

struct vae_model {
    vae_config cfg;
    vae__net net;         /* views into the buffers below */
    float *params;        /* n_params: weights, one flat buffer */
    float *grads;         /* n_params: the batch's gradient */
    float *adam_m, *adam_v; /* n_params each */
    float *acts;          /* net.n_acts: activations for max_batch */
    vae__worker *workers; /* n_workers data-parallel slices of a step */
    const vae__net **nets; /* the workers' nets */
    int n_workers;
    double wgrad_ss[VAE_MAX_LAYERS * VAE_WGRAD_CHUNKS]; /* the weight-gradient units' squared
                                                           norms */
    unsigned char unit_updated[VAE_MAX_LAYERS * VAE_WGRAD_CHUNKS]; /* the units Adam updated
                                                           as they were formed, this step */
    atomic_int ready[VAE_MAX_LAYERS]; /* the step's slices done with each layer (net.ready) */
    atomic_int bwd_done;  /* the step's slices past their whole backward pass */
    double unit_bound_max; /* the largest weight-gradient bound units_may_update accepts */
    vae_adam adam;
    float clip_norm;      /* 0: no gradient clipping */
    double grad_norm;     /* of the last step, before clipping */
    long step;
    vae_rng rng;          /* reparameterisation noise of training (and DAE corruption) */
    uint64_t noise_key;   /* draw_noise: this step's key; row i's noise is stream
                             noise_row0 + i of it (vae__rng_stream) */
    long noise_row0;
    int draw_noise;
    float *noisy;         /* DAE: the corrupted batch of a step (noisy_cap values) */
    size_t noisy_cap;
    const float *input;   /* when set, the step encodes these rows instead of x (DAE) */
    const uint8_t *labels; /* CVAE: the caller's labels for the next calls */
    char **meta;          /* key, value, ..., NULL from a loaded checkpoint */
    vae_grad_reduce_fn reduce; /* data-parallel: combines the processes' gradients */
    void *reduce_ctx;
    int reduce_rc;        /* the callback's answer in the current step */
    double reduce_sums[2]; /* rec, kl summed over the processes */
    vae_error err;
};

/* A training step with the noise already in m->net.eps, split over the
 * OpenMP threads: forward, backward (m->grads gets the batch's gradient, but
 * for the units an update step applied Adam to straight from a worker's
 * unit_grad) and, when update is set and the loss and gradient norm are
 * finite, the Adam update (with the gradient clipped to clip_norm when that
 * is set). Adds the batch sums to *st. vae_train_step draws the noise and
 * calls this; the reference tests supply PyTorch's noise. */
int vae__model_step(vae_model *m, const float *x, int B, int update, vae_stats *st);
/* The same for a shard of B rows of a global batch of B_total images (the
 * gradient is scaled by 1/B_total; B may be 0); with a reduce callback the
 * gradient and loss sums are combined across processes before the norm. */
int vae__model_step_shard(vae_model *m, const float *x, int B, int B_total, int update,
                          vae_stats *st);

/* Sets m->err and returns code. */
int vae__model_error(vae_model *m, int code, const char *fmt, ...) VAE_PRINTF(3, 4);

/* PyTorch names of the parameter tensors: tensor i of vae__model_tensors. */
typedef struct vae__param_view {
    char name[48];
    int ndim;
    int64_t shape[4];
    float *data;
} vae__param_view;

/* The number of values a view holds. */
size_t vae__view_numel(const vae__param_view *v);

/* Fills views (room for 4 * VAE_MAX_LAYERS) and returns their count. */
int vae__model_tensors(vae_model *m, vae__param_view *views);

#endif
