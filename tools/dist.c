/* dist.c - data-parallel `vae train` with MPI: rank and size, threads per
 * rank, the gradient allreduce hooked into the library's step, sharding,
 * agreed stops and the weights check. Without VAE_MPI (or without an MPI
 * launcher) these are the single-process no-ops. See dist.h. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "dist.h"

static int rank_, size_ = 1;

int dist_rank(void) { return rank_; }
int dist_size(void) { return size_; }

void dist_shard(int b, int *first, int *n)
{
    // 64-bit products: b * size can pass INT_MAX on many ranks
    *first = (int)((long long)b * rank_ / size_);
    *n = (int)((long long)b * (rank_ + 1) / size_) - *first;
}

void dist_range(size_t N, size_t *lo, size_t *hi)
{
    *lo = N / size_ * rank_ + (N % size_) * rank_ / size_;
    *hi = N / size_ * (rank_ + 1) + (N % size_) * (rank_ + 1) / size_;
}

#ifndef VAE_MPI

void dist_init(void) {}
void dist_finalize(void) {}
int dist_threads(int requested) { return requested; }
void dist_describe(int threads, int batch) { (void)threads, (void)batch; }
void dist_attach(vae_model *m, const atomic_int *stop) { (void)m, (void)stop; }
int dist_stop(int local) { return local; }
void dist_sum_stats(vae_stats *st) { (void)st; }
void dist_check_weights(const vae_model *m) { (void)m; }
void dist_check_same(const char *what, const char *value) { (void)what, (void)value; }

#else

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static int active;        /* MPI_Init ran */
static int local_size = 1; /* ranks on this host */

/* The context of the reduce callback. */
static struct {
    const atomic_int *stop;
    int agreed_stop; /* some rank had a signal by the last step */
    long calls;
    long diverge_at; /* test hook: see dist_attach */
    double t_attach, t_comm; /* for the report at the end: time in the allreduces */
    size_t bytes;            /* per step */
} red;

/* Launchers announce themselves in the environment: Open MPI's mpirun,
 * PMI (MPICH's hydra, Slurm) and PMIx (Slurm, Open MPI 5). */
static int launched_by_mpi(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

/* ----------------------------------------------------------- watchdog */

/* A rank that hangs without dying (a frozen host, a network that drops
 * packets without resetting the connection) would leave the others in a
 * collective for ever: a thread ends this rank when one call waits longer
 * than VAE_MPI_TIMEOUT seconds, and the launcher then ends the job. It
 * makes no MPI call itself (MPI_THREAD_FUNNELED). */
static long timeout_s = 600;
static _Atomic long watch_since; /* ms on CLOCK_MONOTONIC; 0 outside collectives */
static const char *_Atomic watch_what;

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

static void watch(const char *what)
{
    atomic_store(&watch_what, what);
    atomic_store(&watch_since, mono_ms());
}

static void unwatch(void) { atomic_store(&watch_since, 0); }

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        long since = atomic_load(&watch_since);
        if (since && mono_ms() - since > timeout_s * 1000) {
            char msg[320];
            int len = snprintf(msg, sizeof msg,
                               "%s: no word from the other ranks for %ld s (in %s): a rank hangs "
                               "or the network is down; stopping (VAE_MPI_TIMEOUT sets the "
                               "limit)\n", prog, timeout_s, atomic_load(&watch_what));
            if (write(2, msg, (size_t)len) < 0) {} // nothing more to do if stderr is gone
            _exit(1);
        }
    }
    return NULL;
}

static void start_watchdog(void)
{
    const char *env = getenv("VAE_MPI_TIMEOUT");
    if (env) {
        char *end;
        timeout_s = strtol(env, &end, 10);
        if (!*env || *end || timeout_s < 0)
            die("VAE_MPI_TIMEOUT expects whole seconds >= 0 (0: wait for ever), not '%s'", env);
    }
    pthread_t t;
    if (timeout_s > 0 && pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
}

/* ------------------------------------------------------------------ MPI */

static void mpi_fail(const char *call, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    // exit without MPI_Finalize: the launcher then ends every other rank
    die("%s failed: %.*s", call, len, msg);
}

void dist_init(void)
{
    if (!launched_by_mpi()) return;
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) die("MPI_Init_thread failed (error %d)", rc);
    active = 1;
    // errors come back as codes: each rank says what failed instead of MPI aborting silently
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (provided < MPI_THREAD_FUNNELED)
        die("this MPI library gives thread level %d; vae needs MPI_THREAD_FUNNELED", provided);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &local_size);
        MPI_Comm_free(&local);
    }
    if (rank_ > 0) {
        static char name[32];
        snprintf(name, sizeof name, "vae[rank %d]", rank_);
        prog = name;
    }
    if (size_ > 1) start_watchdog();
}

void dist_finalize(void)
{
    if (rank_ == 0 && red.calls > 0) {
        double wall = MPI_Wtime() - red.t_attach;
        fprintf(stderr, "data-parallel: %ld steps; the gradient allreduce (%.1f MB) took %.2f ms "
                "per step on rank 0, %.1f%% of the run\n", red.calls, red.bytes / 1e6,
                1e3 * red.t_comm / red.calls, 100 * red.t_comm / wall);
    }
    watch("MPI_Finalize");
    if (active) MPI_Finalize();
    unwatch();
    active = 0;
}

/* CPUs this process may run on (its affinity mask), or 0 if unknown. */
static int cpus_allowed(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
}

int dist_threads(int requested)
{
    if (requested > 0 || size_ == 1) return requested;
    // this rank's share of the host, or fewer when the launcher bound it to
    // fewer CPUs (ranks bound to a socket that several ranks share get the share)
    int t = (int)(sysconf(_SC_NPROCESSORS_ONLN) / local_size), allowed = cpus_allowed();
    if (allowed > 0 && allowed < t) t = allowed;
    return t > 0 ? t : 1;
}

void dist_describe(int threads, int batch)
{
    if (size_ == 1 || rank_ != 0) return;
    int first, n;
    dist_shard(batch, &first, &n);
    fprintf(stderr, "data-parallel: %d ranks (%d on this host), %d thread%s each; global batch %d, "
            "%d%s per rank\n", size_, local_size, threads, threads == 1 ? "" : "s", batch, n,
            batch % size_ ? " or so" : "");
}

/* The step's reduce callback: one MPI_Allreduce over the flat gradient (in
 * pieces below INT_MAX elements), one over the loss sums and the stop flag. */
static int reduce_cb(void *ctx, float *grad, size_t n, double *sums, int nsums)
{
    (void)ctx;
    double buf[8], t0 = MPI_Wtime();
    if (nsums > 7) return VAE_EINVAL;
    memcpy(buf, sums, (size_t)nsums * sizeof *sums);
    buf[nsums] = *red.stop ? 1 : 0;
    watch("the gradient allreduce");
    for (size_t off = 0; off < n;) {
        int cnt = n - off > (size_t)1 << 30 ? 1 << 30 : (int)(n - off);
        int rc = MPI_Allreduce(MPI_IN_PLACE, grad + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) mpi_fail("MPI_Allreduce of the gradient", rc);
        off += (size_t)cnt;
    }
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, nsums + 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) mpi_fail("MPI_Allreduce of the loss", rc);
    unwatch();
    memcpy(sums, buf, (size_t)nsums * sizeof *sums);
    red.agreed_stop = buf[nsums] > 0;
    red.t_comm += MPI_Wtime() - t0;
    red.bytes = n * sizeof *grad;
    if (++red.calls == red.diverge_at && rank_ == size_ - 1) grad[0] += 1e-3f;
    return VAE_OK;
}

void dist_attach(vae_model *m, const atomic_int *stop)
{
    if (size_ == 1) return;
    red.stop = stop;
    red.t_attach = MPI_Wtime();
    // Test hook (tests/test_mpi.sh): the last rank nudges one gradient value at
    // its Nth step, so that the weights check has a divergence to catch.
    const char *hook = getenv("VAE_TEST_DIVERGE_AT_STEP");
    red.diverge_at = hook ? atol(hook) : 0;
    vae_model_set_grad_reduce(m, reduce_cb, NULL);
}

int dist_stop(int local) { return size_ == 1 ? local : red.agreed_stop; }

void dist_sum_stats(vae_stats *st)
{
    if (size_ == 1) return;
    double v[4] = {st->loss, st->rec, st->kl, (double)st->n};
    watch("the test-loss allreduce");
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) mpi_fail("MPI_Allreduce of the test loss", rc);
    unwatch();
    st->loss = v[0], st->rec = v[1], st->kl = v[2], st->n = (long)v[3];
}

/* Every rank's value of x; caller frees. */
static unsigned *gather(unsigned x)
{
    unsigned *all = xmalloc((size_t)size_ * sizeof *all);
    watch("a consistency check");
    int rc = MPI_Allgather(&x, 1, MPI_UNSIGNED, all, 1, MPI_UNSIGNED, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) mpi_fail("MPI_Allgather", rc);
    unwatch();
    return all;
}

/* "1, 3, 4" (the first few) of the ranks whose value differs from rank 0's;
 * the count of them. */
static int differing(const unsigned *all, char *list, size_t len)
{
    int bad = 0;
    size_t used = 0;
    list[0] = 0;
    for (int r = 1; r < size_; r++) {
        if (all[r] == all[0]) continue;
        if (bad < 8 && used < len)
            used += (size_t)snprintf(list + used, len - used, "%s%d", bad ? ", " : "", r);
        bad++;
    }
    if (bad > 8 && used < len) snprintf(list + used, len - used, ", ...");
    return bad;
}

/* A verdict every rank reached together: rank 0 says why, all ranks end
 * MPI in step and exit 1 (no rank is left waiting in a collective). */
static void fail_together(const char *msg)
{
    if (rank_ == 0) fprintf(stderr, "%s: %s\n", prog, msg);
    red.calls = 0; // no timing report after an error
    dist_finalize();
    exit(1);
}

void dist_check_weights(const vae_model *m)
{
    if (size_ == 1) return;
    unsigned *all = gather(vae_model_checksum(m));
    char list[128], msg[640];
    int bad = differing(all, list, sizeof list);
    if (bad) {
        snprintf(msg, sizeof msg,
                 "the ranks' weights diverged by step %ld: rank%s %s differ%s from rank 0 (CRC "
                 "%08x); run the same vae build and libraries on the same kind of CPU on every "
                 "host. The last checkpoint predates the divergence and is intact",
                 vae_model_step(m), bad > 1 ? "s" : "", list, bad > 1 ? "" : "s", all[0]);
        fail_together(msg);
    }
    free(all);
}

void dist_check_same(const char *what, const char *value)
{
    if (size_ == 1) return;
    unsigned *all = gather((unsigned)crc32(0L, (const Bytef *)value, (uInt)strlen(value)));
    char list[128], msg[640];
    int bad = differing(all, list, sizeof list);
    if (bad) {
        snprintf(msg, sizeof msg, "rank%s %s see%s different %s than rank 0 (%s): every host needs "
                 "the same files", bad > 1 ? "s" : "", list, bad > 1 ? "" : "s", what, value);
        fail_together(msg);
    }
    free(all);
}

#endif
