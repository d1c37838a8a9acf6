#define _POSIX_C_SOURCE 200809L
/* test_shard.c - the library side of data-parallel training, without MPI:
 * two threads stand in for two processes, each with its own model training
 * its shard of every batch, and a reduce callback that sums through shared
 * memory. They must end bit for bit where one model with two OpenMP threads
 * ends (the same two half-batch gradients, added once), but for a
 * VampPrior's: a process encodes all K pseudo-inputs, two threads of one
 * process share them out and add their gradients at the components before
 * the pass back, so there the two agree to float rounding. Also: an empty
 * shard, a failing callback, argument checks, the weights checksum, and a
 * batch in passes (schedule.h) against the whole batch at once. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/schedule.h"
#include "test.h"

#define B 10     /* global batch */
#define STEPS 6
#define LATENT 5 /* odd: the normals' Box-Muller pairs straddle rows */

/* The stand-in for MPI_Allreduce between the two "processes". */
typedef struct exchange {
    pthread_barrier_t bar;
    float *scratch[2];
    double sums[2][2];
    size_t n;
} exchange;

typedef struct rank_ctx {
    exchange *ex;
    int rank;
    int fail; /* answer VAE_EIO instead */
} rank_ctx;

static int reduce_cb(void *ctx, float *grad, size_t n, double *sums, int nsums)
{
    rank_ctx *c = ctx;
    exchange *ex = c->ex;
    if (c->fail) return VAE_EIO;
    if (n != ex->n || nsums != 2) return VAE_EINVAL;
    memcpy(ex->scratch[c->rank], grad, n * sizeof *grad);
    memcpy(ex->sums[c->rank], sums, sizeof ex->sums[0]);
    pthread_barrier_wait(&ex->bar);
    for (size_t i = 0; i < n; i++) grad[i] = ex->scratch[0][i] + ex->scratch[1][i];
    for (int k = 0; k < 2; k++) sums[k] = ex->sums[0][k] + ex->sums[1][k];
    pthread_barrier_wait(&ex->bar); // nobody refills scratch before both have read it
    return VAE_OK;
}

typedef struct job {
    vae_model *m;
    const float *x; /* STEPS batches of B rows */
    int D, rank, b_total;
    vae_stats st;
    int rc;
} job;

static void *run_rank(void *arg)
{
    job *j = arg;
    vae_set_threads(1); // this thread's OpenMP team: one thread, as one rank would have
    for (int s = 0; s < STEPS && !j->rc; s++) {
        int first = j->b_total * j->rank / 2, n = j->b_total * (j->rank + 1) / 2 - first;
        const float *x = n ? j->x + ((size_t)s * j->b_total + first) * j->D : NULL;
        j->rc = vae_model_train_step_shard(j->m, x, NULL, n, first, j->b_total, &j->st);
    }
    return NULL;
}

static int same_params(const vae_model *a, const vae_model *b)
{
    return !memcmp(a->params, b->params, a->net.n_params * sizeof(float)) &&
           !memcmp(a->adam_m, b->adam_m, a->net.n_params * sizeof(float)) &&
           !memcmp(a->adam_v, b->adam_v, a->net.n_params * sizeof(float));
}

/* The largest difference between two models' weights. */
static double params_diff(const vae_model *a, const vae_model *b)
{
    double most = 0;
    for (size_t i = 0; i < a->net.n_params; i++) most = fmax(most, fabs(a->params[i] - b->params[i]));
    return most;
}

/* Two ranks on batches of b_total vs one model with two threads: the same
 * bits, or (a VampPrior) weights within tol. */
static void two_ranks_vs_one(const vae_config *cfg, const float *x, int D, int b_total, double tol)
{
    vae_model *ref, *m[2];
    vae_error err;
    CHECK_EQ(vae_model_create(cfg, B, 1, &ref, &err), VAE_OK);
    vae_set_threads(2);
    vae_stats st = {0};
    for (int s = 0; s < STEPS; s++)
        CHECK_EQ(vae_model_train_step(ref, x + (size_t)s * b_total * D, NULL, b_total, &st), VAE_OK);

    exchange ex = {.n = vae_model_num_params(ref)};
    pthread_barrier_init(&ex.bar, NULL, 2);
    rank_ctx ctx[2];
    job jobs[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        ex.scratch[r] = malloc(ex.n * sizeof(float));
        CHECK_EQ(vae_model_create(cfg, B, 1, &m[r], &err), VAE_OK);
        ctx[r] = (rank_ctx){&ex, r, 0};
        vae_model_set_grad_reduce(m[r], reduce_cb, &ctx[r]);
        jobs[r] = (job){.m = m[r], .x = x, .D = D, .rank = r, .b_total = b_total};
        pthread_create(&th[r], NULL, run_rank, &jobs[r]);
    }
    for (int r = 0; r < 2; r++) {
        pthread_join(th[r], NULL);
        CHECK_EQ(jobs[r].rc, VAE_OK);
        CHECK_EQ(vae_model_step(m[r]), STEPS);
        CHECK_EQ(jobs[r].st.n, st.n); // global sums on every rank
        if (tol > 0) {
            CHECK(params_diff(ref, m[r]) < tol);
            CHECK(params_diff(ref, m[r]) > 0); // else this case should be exact
            CHECK(fabs(jobs[r].st.loss - st.loss) < 1e-4 * fabs(st.loss));
        } else {
            CHECK(same_params(ref, m[r]));
            CHECK(jobs[r].st.loss == st.loss && jobs[r].st.kl == st.kl);
            CHECK_EQ(vae_model_checksum(m[r]), vae_model_checksum(ref));
        }
        // the RNG drew the whole batch's noise on every rank
        CHECK(!memcmp(vae_model_rng(m[r])->s, vae_model_rng(ref)->s, sizeof ref->rng.s));
    }

    // a failing callback fails the step and leaves the weights alone
    ctx[0].fail = 1;
    size_t bytes = 3 * ex.n * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, m[0]->params, ex.n * sizeof(float));
    memcpy(before + ex.n, m[0]->adam_m, ex.n * sizeof(float));
    memcpy(before + 2 * ex.n, m[0]->adam_v, ex.n * sizeof(float));
    CHECK_EQ(vae_model_train_step_shard(m[0], x, NULL, 1, 0, 2, NULL), VAE_EIO);
    CHECK(strstr(vae_model_errmsg(m[0]), "combining the gradients") != NULL);
    CHECK(!memcmp(before, m[0]->params, ex.n * sizeof(float)) &&
          !memcmp(before + ex.n, m[0]->adam_m, ex.n * sizeof(float)) &&
          !memcmp(before + 2 * ex.n, m[0]->adam_v, ex.n * sizeof(float)));
    free(before);
    CHECK_EQ(vae_model_step(m[0]), STEPS);

    for (int r = 0; r < 2; r++) vae_model_free(m[r]), free(ex.scratch[r]);
    pthread_barrier_destroy(&ex.bar);
    vae_model_free(ref);
}

/* The largest difference between two gradients, relative to the largest
 * entry. */
static double grads_diff(const vae_model *a, const vae_model *b)
{
    double most = 0, big = 0;
    for (size_t i = 0; i < a->net.n_params; i++) {
        most = fmax(most, fabs(a->grads[i] - b->grads[i]));
        big = fmax(big, fabs(a->grads[i]));
    }
    return most / big;
}

/* A batch in passes of at most 2 rows a thread against the whole batch at
 * once, on T threads: the same gradient and loss to float rounding (only
 * the order of the sums differs), from the batch's noise streams and from
 * noise the caller put in m->net (the reference tests' path); the same bits
 * from run to run. */
static void passes_vs_whole(const vae_config *cfg, const float *x, int T)
{
    vae_model *whole, *pass[2];
    vae_error err;
    CHECK_EQ(vae_model_create(cfg, B, 5, &whole, &err), VAE_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(vae_model_create(cfg, B, 5, &pass[i], &err), VAE_OK);
        pass[i]->pass_rows = 2;
    }
    vae_set_threads(T);
    CHECK_EQ(vae__schedule_passes(whole, B, T), 1);
    CHECK_EQ(vae__schedule_passes(pass[0], B, T), (B + 2 * T - 1) / (2 * T));
    for (int s = 0; s < STEPS; s++) {
        vae_stats a = {0}, b[2] = {{0}};
        const float *xs = x + (size_t)s * B * whole->net.D;
        CHECK_EQ(vae_model_train_step(whole, xs, NULL, B, &a), VAE_OK);
        for (int i = 0; i < 2; i++) CHECK_EQ(vae_model_train_step(pass[i], xs, NULL, B, &b[i]), VAE_OK);
        CHECK(grads_diff(whole, pass[0]) < 1e-4);
        CHECK(fabs(a.loss - b[0].loss) < 1e-5 * fabs(a.loss));
        CHECK(!memcmp(pass[0]->grads, pass[1]->grads, whole->net.n_params * sizeof(float)));
        CHECK(b[0].loss == b[1].loss);
    }
    CHECK(same_params(pass[0], pass[1]));
    CHECK(params_diff(whole, pass[0]) < 1e-5);
    // the caller's noise in m->net: a later pass moves worker 0's rows down
    size_t nn = (size_t)B * whole->net.n_noise;
    for (size_t i = 0; i < nn; i++) whole->net.noise[i] = pass[0]->net.noise[i] = sinf((float)i);
    vae_stats a = {0}, b = {0};
    CHECK_EQ(vae__model_step(whole, x, NULL, B, 0, &a), VAE_OK);
    CHECK_EQ(vae__model_step(pass[0], x, NULL, B, 0, &b), VAE_OK);
    CHECK(grads_diff(whole, pass[0]) < 1e-4);
    CHECK(fabs(a.loss - b.loss) < 1e-5 * fabs(a.loss));
    for (int i = 0; i < 2; i++) vae_model_free(pass[i]);
    vae_model_free(whole);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fmnist-small", argv[1]);
    vae_dataset *ds;
    vae_error err;
    CHECK_EQ(vae_dataset_open_mnist(dir, VAE_SPLIT_TRAIN, &ds, &err), VAE_OK);
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.hidden[0] = 64;
    cfg.latent = LATENT;
    int D = 784;
    uint32_t idx[STEPS * B];
    for (int i = 0; i < STEPS * B; i++) idx[i] = (uint32_t)(i * 7 % 2000);
    float *x = malloc(sizeof(float) * STEPS * B * D);
    vae_dataset_batch(ds, idx, STEPS * B, VAE_BINARIZE_NONE, 0, NULL, x);

    two_ranks_vs_one(&cfg, x, D, B, 0);
    two_ranks_vs_one(&cfg, x, D, 1, 0); // rank 0 has no rows: it adds a zero gradient
    {   // the HVAE (its middle chains' weight-gradient units), then with the
        // VampPrior on z2: 6 Adam steps at lr 1e-3 move a weight by at most
        // 6e-3, and rounding changes a step by far less than 1% of that
        vae_config h = cfg;
        h.model = VAE_MODEL_HVAE, h.latent1 = 4;
        two_ranks_vs_one(&h, x, D, B, 0);
        h.vamp_k = 3;
        two_ranks_vs_one(&h, x, D, B, 1e-5);
    }

    for (int T = 1; T <= 2; T++) { // passes: dense layers, conv layers, the HVAE + VampPrior
        passes_vs_whole(&cfg, x, T);
        vae_config c = cfg;
        c.arch = VAE_ARCH_CONV, c.n_hidden = 2, c.hidden[0] = 4, c.hidden[1] = 8;
        passes_vs_whole(&c, x, T);
        c = cfg;
        c.model = VAE_MODEL_HVAE, c.latent1 = 4, c.vamp_k = 3;
        passes_vs_whole(&c, x, T);
    }

    // without a callback, the whole batch as a shard is vae_model_train_step
    vae_model *a, *b;
    CHECK_EQ(vae_model_create(&cfg, B, 3, &a, &err), VAE_OK);
    CHECK_EQ(vae_model_create(&cfg, B, 3, &b, &err), VAE_OK);
    CHECK_EQ(vae_model_checksum(a), vae_model_checksum(b));
    CHECK_EQ(vae_model_train_step(a, x, NULL, B, NULL), VAE_OK);
    CHECK(vae_model_checksum(a) != vae_model_checksum(b));
    CHECK_EQ(vae_model_train_step_shard(b, x, NULL, B, 0, B, NULL), VAE_OK);
    CHECK(same_params(a, b));
    CHECK_EQ(vae_model_checksum(a), vae_model_checksum(b));
    b->adam_v[7] += 1e-3f; // the checksum covers the Adam state too
    CHECK(vae_model_checksum(a) != vae_model_checksum(b));
    b->adam_v[7] = a->adam_v[7];
    CHECK_EQ(vae_model_checksum(a), vae_model_checksum(b));
    vae_rng_normal(vae_model_rng(b)); // and the noise RNG
    CHECK(vae_model_checksum(a) != vae_model_checksum(b));

    // shards that do not fit the batch
    CHECK_EQ(vae_model_train_step_shard(a, x, NULL, 4, 7, 10, NULL), VAE_EINVAL);
    CHECK_EQ(vae_model_train_step_shard(a, x, NULL, -1, 0, 10, NULL), VAE_EINVAL);
    CHECK_EQ(vae_model_train_step_shard(a, x, NULL, 1, 0, 0, NULL), VAE_EINVAL);
    CHECK_EQ(vae_model_train_step_shard(a, x, NULL, B + 1, 0, 20, NULL), VAE_EINVAL);
    CHECK_EQ(vae_model_train_step_shard(a, NULL, NULL, 2, 0, 4, NULL), VAE_EINVAL);
    CHECK(strstr(vae_model_errmsg(a), "shard of 2 images at row 0 of a batch of 4") != NULL);
    CHECK_EQ(vae_model_step(a), 1);

    vae_model_free(a);
    vae_model_free(b);
    vae_dataset_free(ds);
    free(x);
    return TEST_REPORT();
}
