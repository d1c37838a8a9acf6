/* model.h - the model handle's layout and the training step's batch, shared
 * by model.c, step.c, schedule.c, checkpoint.c, eval.c and the tests that
 * reach inside it. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "internal.h"
#include "model/net.h"

/* A training thread's share of a step: its own activations and gradients,
 * the shared weights. Worker 0 is the model's own net. */
typedef struct vae__worker {
    vae__net net;
    float *grads, *acts;  /* owned for workers 1..n-1 */
    void *scratch;        /* the weight-gradient units' (model/schedule.c) */
    double rec, kl;       /* the slice's loss sums */
    double sumsq;         /* squared norm of its share of the other summed gradients */
} vae__worker;

/* The weight-gradient units: each linear layer's output rows in this many
 * fixed chunks (model/schedule.c). */
#define VAE_WGRAD_CHUNKS 8

struct vae_model {
    vae_config cfg;
    vae__net net;         /* views into the buffers below */
    float *params;        /* n_params: weights, one flat buffer */
    float *grads;         /* n_params: the batch's gradient */
    float *adam_m, *adam_v; /* n_params each */
    float *acts;          /* net.n_acts: activations for max_batch */
    int pass_rows;        /* rows a net takes in one pass (model/schedule.h) */
    float *grad_acc;      /* n_params: the step's earlier passes' gradient, when it has passes */
    vae__worker *workers; /* n_workers data-parallel slices of a step */
    const vae__net **nets; /* the workers' nets */
    const float **kl_dims; /* the workers' net.kl_dim (free bits) */
    int n_workers;
    float *vamp_comp, *vamp_dcomp; /* VampPrior: the workers' components (K, out[k]) and their
                                     gradients there (n_workers, K, out[k]) */
    double wgrad_ss[VAE_MAX_LAYERS * VAE_WGRAD_CHUNKS]; /* the weight-gradient units' squared
                                                           norms */
    atomic_int ready[VAE_MAX_LAYERS]; /* the step's slices done with each layer (net.ready) */
    vae_adam adam;
    float clip_norm;      /* 0: no gradient clipping */
    double grad_norm;     /* of the last step, before clipping */
    long step;
    vae_rng rng;          /* reparameterisation noise of training (and DAE corruption) */
    float *noisy;         /* DAE: the corrupted batch of a step (noisy_cap values) */
    size_t noisy_cap;
    double *vq_usage;     /* VQ-VAE: (K) codes chosen by the training steps since the
                             last vae_model_vq_usage reset */
    char **meta;          /* key, value, ..., NULL from a loaded checkpoint */
    vae__percep *percep;  /* the perceptual term (model/perceptual.c), or NULL; its
                             weights are the caller's classifier's */
    vae_grad_reduce_fn reduce; /* data-parallel: combines the processes' gradients */
    void *reduce_ctx;
    int reduce_rc;        /* the callback's answer in the current step */
    double reduce_sums[2]; /* rec, kl summed over the processes */
    vae_error err;
};

/* A training step's batch: B rows of a global batch of B_total images
 * (the gradient is scaled by 1/B_total; B may be 0 in a data-parallel
 * shard), what the encoder sees and where its noise comes from. */
typedef struct vae__batch {
    const float *x;         /* (B,D) the targets */
    const float *input;     /* (B,D) the encoder's input: x, or the DAE's corrupted x */
    const uint8_t *labels;  /* (B) a CVAE's labels, else NULL */
    int B, B_total;
    int draw_noise;         /* 1: row i's eps is stream noise_row0 + i of noise_key
                               (vae__rng_stream), drawn by the thread that runs the row;
                               0: the caller put it in m->net.eps (the reference tests) */
    uint64_t noise_key;
    long noise_row0;
    int row0;               /* a pass's first row in the caller's batch (its noise's row) */
} vae__batch;

/* A training step (model/step.c) split over the OpenMP threads: forward and
 * loss, backward (m->grads gets the batch's gradient), the reduction across
 * slices and processes, clipping and, when update is set and the loss and
 * gradient norm are finite, the Adam update. Adds the batch sums to *st. */
int vae__model_step_batch(vae_model *m, const vae__batch *b, int update, vae_stats *st);
/* The same for x (B,D) as its own input, a CVAE's labels per row
 * and the noise already in m->net.eps: the reference tests' entry. */
int vae__model_step(vae_model *m, const float *x, const uint8_t *labels, int B, int update,
                    vae_stats *st);

/* The weight of the regulariser in the loss: the KL's beta, the sparse AE's
 * l1, 0 for the plain AE and DAE, 1 for the IWAE (rec + kl is its loss). */
float vae__model_reg_weight(const vae_model *m);

/* Checks a batch of B rows (at most max) of data x, and a CVAE's labels;
 * sets m->err and returns its code when they do not do. */
int vae__model_check_batch(vae_model *m, const void *x, const uint8_t *labels, int B, int max);
/* Adds a batch's sums to *st (may be NULL). */
void vae__stats_add(vae_stats *st, double rec, double kl, float beta, int B);

/* Sets m->err and returns code. */
int vae__model_error(vae_model *m, int code, const char *fmt, ...) VAE_PRINTF(3, 4);

/* The perceptual term's work area for a worker of up to `rows` images
 * (model/perceptual.c): the decoder's mean, its gradient and the term's. */
real *vae__percep_work_alloc(const vae_model *m, int rows);
/* Tensor t of a classifier (0..5: conv1, conv2, fc1, each weight then
 * bias), for the perceptual term (model/classifier.c). */
const float *vae__classifier_tensor(const vae_classifier *c, int t);

/* PyTorch names of the parameter tensors: tensor i of vae__model_tensors. */
typedef struct vae__param_view {
    char name[48];
    int ndim;
    int64_t shape[4];
    float *data;
} vae__param_view;

/* The number of values a view holds. */
size_t vae__view_numel(const vae__param_view *v);

/* The most tensors a model has: four per gated layer, six in a flow's head,
 * log sigma and the VampPrior's pseudo-inputs. */
#define VAE_MAX_TENSORS (4 * VAE_MAX_LAYERS + 4)

/* Fills views (room for VAE_MAX_TENSORS) and returns their count. */
int vae__model_tensors(vae_model *m, vae__param_view *views);

/* VQ-VAE (model/vq.c): the configuration's checks; the codebook's start and
 * its EMA state; the tensors vq.codebook, vq.ema_count, vq.ema_sum (returns
 * 3); after a step that updated the weights, the EMA update, the usage
 * counts and the dead codes' restarts from the batch's encoder outputs
 * (the slices' nets hold them). */
int vae__vq_validate(const vae_config *c, vae_error *err);
int vae__vq_init(vae_model *m, vae_rng *init); /* VAE_ENOMEM or VAE_OK */
int vae__vq_tensors(vae_model *m, vae__param_view *v);
void vae__vq_after_step(vae_model *m, int B, int T);

/* The prior's logits (B, K, cells) for B grids of codes (B <= its max
 * batch), or NULL with its message set: for the tests (model/codeprior.c). */
const float *vae__prior_logits(vae_prior *p, const int32_t *codes, int B);
/* For the PyTorch fixture's test: the gradient of the mean per-grid NLL of B
 * grids (B <= max batch) without an update, each grid's NLL into nll (may be
 * NULL); a tensor of the weights (grad 0) or of that gradient (grad 1) by
 * its name in the prior's file (conv.L.weight, embed.weight, ...) and its
 * length, or NULL; whether tap (i, j) of a k x k mask-A (type_b 0) or mask-B
 * kernel may be nonzero. */
int vae__prior_grad(vae_prior *p, const int32_t *codes, int B, double *nll);
float *vae__prior_tensor(vae_prior *p, const char *name, int grad, size_t *numel);
int vae__prior_tap_open(int i, int j, int k, int type_b);

#endif
