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
 * gradients of the whole batch into m->grads, unit by unit as each becomes
 * ready, with each unit's squared norm in m->wgrad_ss (summed in unit order
 * by vae__schedule_wgrad_ss). in: the batch's encoder input (B,D). Ends
 * with a barrier. */
void vae__schedule_wgrad(vae_model *m, const float *in, int B, int T);
double vae__schedule_wgrad_ss(const vae_model *m);
/* Thread t's share of the other gradients (conv layers, a learned sigma),
 * which every worker wrote for its rows: summed into m->grads over the
 * workers; returns the squared sum of that share. */
double vae__schedule_sum_rest(vae_model *m, int t, int T);

#endif
