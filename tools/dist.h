/* dist.h - data-parallel `vae train` across processes and hosts with MPI
 * (tools/dist.c). Built with VAE_MPI and started by an MPI launcher
 * (mpirun), the ranks share each step's gradient through one MPI_Allreduce.
 * Built without MPI, or started without a launcher, every call here is the
 * single-process no-op and vae behaves exactly as it does without MPI. */
#ifndef VAE_DIST_H
#define VAE_DIST_H

#include <stdatomic.h>
#include <stddef.h>

#include "vae.h"

/* Steps between the periodic checks that all ranks hold the same weights
 * (also checked before every checkpoint is written): a check (CRC-32 of the
 * weights and Adam moments) costs about two steps of the default model. */
#define DIST_CHECK_EVERY 500

/* Starts MPI when an MPI launcher started this process; otherwise nothing.
 * Error messages of ranks other than 0 then read "vae[rank N]: ...". */
void dist_init(void);
/* Ends MPI once every rank has finished the run. */
void dist_finalize(void);
int dist_rank(void); /* 0 for a single process */
int dist_size(void); /* 1 for a single process */

/* OpenMP threads for this rank: `requested` when > 0; for a single process
 * 0 (all cores); for several ranks the CPUs the launcher bound the rank to,
 * or, unbound, this host's CPUs divided by the ranks on this host. */
int dist_threads(int requested);
/* Rank 0 prints the layout (ranks, threads, shard size) for several ranks. */
void dist_describe(int threads, int batch);

/* Several ranks: the model's steps sum gradients and loss sums over the
 * ranks; *stop (this rank's signal flag) travels with every step's sums so
 * that all ranks stop after the same step. */
void dist_attach(vae_model *m, const atomic_int *stop);
/* Whether to stop for a signal: `local` for a single process; for several
 * ranks the verdict all ranks reached in the last step. */
int dist_stop(int local);

/* This rank's rows [*first, *first + *n) of a global batch of b images:
 * contiguous shards, rank r from b * r / size (the rows the threads of one
 * process would take), so *n is 0 when b < size for some ranks. */
void dist_shard(int b, int *first, int *n);
/* This rank's part [*lo, *hi) of N items, split the same way. */
void dist_range(size_t N, size_t *lo, size_t *hi);
/* Sums st over the ranks (every rank gets the total). */
void dist_sum_stats(vae_stats *st);

/* Stops the job on every rank with a clear error when the ranks' weights
 * (and Adam state) differ. Collective: every rank must call it. */
void dist_check_weights(const vae_model *m);
/* Stops the job when value differs between ranks; what names it. */
void dist_check_same(const char *what, const char *value);

#endif
