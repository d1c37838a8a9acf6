/* schedule.h - how a training step is shared between threads: the slices
 * of the batch, the workers that run them, and the weight-gradient units
 * (model/schedule.c says why they look the way they do). */
#ifndef VAE_SCHEDULE_H
#define VAE_SCHEDULE_H

#include "model/model.h"

/* Thread t's rows of a batch of B split T ways: r0 .. r0 + rows. */
typedef struct vae__slice {
    int t, r0, rows;
} vae__slice;
vae__slice vae__schedule_slice(int B, int t, int T);

/* The number of threads a step of B rows runs on (at least 1: an empty
 * shard still takes part in the reduction), with one worker each; sets up
 * the workers (again only when that number changes) and clears the
 * readiness counters. 0 when out of memory. */
int vae__schedule_begin(vae_model *m, int B);
/* Frees the workers (the model's own buffers stay). */
void vae__schedule_free(vae_model *m);

/* In the step's parallel region, every thread: the linear layers' weight
 * gradients of the whole batch (pass p of M: of its rows, added to the
 * earlier passes') into m->grads, unit by unit as each becomes ready, with
 * each unit's squared norm in m->wgrad_ss when there is one pass (summed in
 * unit order by vae__schedule_wgrad_ss). in: the batch's encoder input
 * (B,D). Ends with a barrier. */
void vae__schedule_wgrad(vae_model *m, const float *in, int B, int T, int p, int M);
double vae__schedule_wgrad_ss(const vae_model *m);
/* Thread t's share of the other gradients (conv layers, a learned sigma),
 * which every worker wrote for its rows: summed into m->grads over the
 * workers, and with passes over them too (m->grad_acc holds the earlier
 * passes'). Returns the squared sum of that share with one pass, and of the
 * thread's share of the whole gradient after the last; before it, waits for
 * every thread and clears the readiness counters for the next pass. */
double vae__schedule_sum_rest(vae_model *m, int t, int T, int p, int M);

/* Passes: a step whose batch would make the workers' activations large (a
 * 64x64 RGB conv VAE holds about 1.1 MB an image) runs its rows in passes of
 * at most pass_rows a thread, summing the passes' gradients, so that only
 * those rows of each buffer are ever touched (resident). Batches whose
 * activations take more than VAE_PASS_FROM_MB do; a pass then touches at
 * most VAE_PASS_MB of a net's (the environment's VAE_PASS_MB overrides it
 * for benchmarks; 0: no passes). Below that, a pass's fixed costs (its
 * barriers, the gradients summed once more) are not worth the memory: the
 * default conv VAE's step (20 MB) took 20-40% longer in two passes. */
#define VAE_PASS_FROM_MB 64
#define VAE_PASS_MB 8
/* The rows a net takes in one pass, for batches of max_batch: at least 1,
 * at most max_batch. */
int vae__schedule_pass_rows(const vae_config *cfg, int max_batch);
/* The images T threads take in one pass (the evaluation's chunks). */
int vae__schedule_pass_images(const vae_model *m, int T);
/* How many passes a step of B rows on T threads takes: 1 when the slices fit
 * (and for free bits and the VQ-VAE, whose step needs the whole batch at
 * once); never so many that a pass has fewer rows than threads. (The
 * workers' setup allocates the passes' gradient sum, m->grad_acc.) */
int vae__schedule_passes(const vae_model *m, int B, int T);
/* Rows [B*p/M, B*(p+1)/M) of batch b: pass p of M. */
vae__batch vae__schedule_pass(const vae__batch *b, int p, int M, int D);

#endif
