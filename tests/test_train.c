#define _POSIX_C_SOURCE 200809L
/* test_train.c - training end to end on the shipped Fashion-MNIST subset:
 * the loss goes down, runs reproduce, checkpoints round-trip bit-identically
 * and bad checkpoints are refused with a message. Named tests share one
 * fixture; those after training_lowers_the_loss continue from its model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "model/model.h"
#include "nn/adam.h"
#include "nn/layers.h"
#include "test.h"

static char tmpdir[] = "/tmp/vae-test-train-XXXXXX";

/* What the tests share: the data, a small configuration, a batch buffer, the
 * whole test set and the model that training_lowers_the_loss trains. */
static struct {
    const char *data; // tests/data
    vae_dataset *train, *test;
    vae_config cfg;
    int B, n_test;
    float *x, *xt; // [B, 784] batch; [n_test, 784] test images
    vae_model *m;
} F;

static float test_loss(vae_model *m, const float *x, int n)
{
    vae_rng r;
    vae_rng_seed(&r, 7);
    vae_stats st = {0};
    CHECK_EQ(vae_model_loss(m, x, NULL, n, &r, &st), VAE_OK);
    return (float)(st.loss / st.n);
}

static void train(vae_model *m, const vae_dataset *ds, int epochs, int B, float *x, int binarize)
{
    size_t N = vae_dataset_count(ds);
    uint32_t *idx = malloc(N * sizeof *idx);
    vae_rng r;
    vae_rng_seed(&r, 3);
    for (int e = 0; e < epochs; e++)
        for (size_t i = 0; i < N; i += B) {
            int b = (int)(N - i < (size_t)B ? N - i : (size_t)B);
            for (int j = 0; j < b; j++) idx[j] = (uint32_t)vae_rng_below(&r, N);
            vae_dataset_batch(ds, idx, b, binarize, 0.5f, &r, x);
            CHECK_EQ(vae_model_train_step(m, x, NULL, b, NULL), VAE_OK);
        }
    free(idx);
}

static int same_params(vae_model *a, vae_model *b)
{
    return a->net.n_params == b->net.n_params &&
           !memcmp(a->params, b->params, a->net.n_params * sizeof(float));
}

static void training_lowers_the_loss(void)
{
    vae_error err;
    CHECK_EQ(vae_model_create(&F.cfg, F.B, 42, &F.m, &err), VAE_OK);
    float before = test_loss(F.m, F.xt, F.n_test);
    train(F.m, F.train, 3, F.B, F.x, VAE_BINARIZE_NONE);
    float after = test_loss(F.m, F.xt, F.n_test);
    printf("test -ELBO before %.2f, after 3 epochs %.2f nats\n", before, after);
    CHECK(after < before - 100);
    CHECK(after < 400);
}

// evaluation leaves the weights alone; the same seed reproduces the run
static void same_seed_same_weights(void)
{
    vae_model *m2;
    vae_error err;
    CHECK_EQ(vae_model_create(&F.cfg, F.B, 42, &m2, &err), VAE_OK);
    train(m2, F.train, 3, F.B, F.x, VAE_BINARIZE_NONE);
    CHECK(same_params(F.m, m2));
    vae_model_free(m2);
}

static void dynamic_binarisation_trains(void)
{
    vae_model *m2;
    vae_error err;
    CHECK_EQ(vae_model_create(&F.cfg, F.B, 42, &m2, &err), VAE_OK);
    float before = test_loss(m2, F.xt, F.n_test);
    train(m2, F.train, 1, F.B, F.x, VAE_BINARIZE_DYNAMIC);
    CHECK(test_loss(m2, F.xt, F.n_test) < before - 50);
    CHECK(!same_params(F.m, m2));
    vae_model_free(m2);
}

static int same_file(const char *a, const char *b)
{
    FILE *f1 = fopen(a, "rb"), *f2 = fopen(b, "rb");
    int c1, c2, same = f1 && f2;
    while (same) {
        c1 = fgetc(f1), c2 = fgetc(f2);
        same = c1 == c2;
        if (c1 == EOF || c2 == EOF) break;
    }
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    return same;
}

static const char *meta[] = {"train.epoch", "3", "note", "a \"quoted\" value", NULL};

// bit-identical weights, config, metadata and state; an exact resume
static void checkpoint_round_trip(void)
{
    char path[4200], path2[4300];
    vae_model *m = F.m, *loaded;
    vae_error err;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tmpdir);
    CHECK_EQ(vae_model_save_checkpoint(m, path, meta), VAE_OK);
    CHECK_EQ(vae_model_load(path, 16, &loaded, &err), VAE_OK);
    CHECK(same_params(m, loaded));
    CHECK(!memcmp(vae_model_config(m), vae_model_config(loaded), sizeof(vae_config)));
    CHECK(vae_model_meta(loaded, "note") && !strcmp(vae_model_meta(loaded, "note"),
                                                    "a \"quoted\" value"));
    CHECK_EQ(vae_model_step(loaded), vae_model_step(m));
    float mu1[8], mu2[8];
    CHECK_EQ(vae_model_encode(m, F.xt, NULL, 1, mu1, NULL), VAE_OK);
    CHECK_EQ(vae_model_encode(loaded, F.xt, NULL, 1, mu2, NULL), VAE_OK);
    CHECK(!memcmp(mu1, mu2, sizeof mu1));
    // saving the loaded model again gives the same bytes
    snprintf(path2, sizeof path2, "%s/again.safetensors", tmpdir);
    CHECK_EQ(vae_model_save_checkpoint(loaded, path2, meta), VAE_OK);
    CHECK(same_file(path, path2));
    // exact resume: the loaded checkpoint and the original train on identically
    CHECK_EQ(vae_model_set_max_batch(loaded, F.B), VAE_OK);
    train(m, F.train, 1, F.B, F.x, VAE_BINARIZE_NONE);
    train(loaded, F.train, 1, F.B, F.x, VAE_BINARIZE_NONE);
    CHECK(same_params(m, loaded));
    CHECK(!memcmp(m->adam_m, loaded->adam_m, m->net.n_params * sizeof(float)));
    CHECK_EQ(vae_model_step(loaded), vae_model_step(m));
    vae_model_free(loaded);
    // a weights-only file loads with a fresh optimiser
    snprintf(path2, sizeof path2, "%s/model.safetensors", tmpdir);
    CHECK_EQ(vae_model_save(m, path2, NULL), VAE_OK);
    CHECK_EQ(vae_model_load(path2, 16, &loaded, &err), VAE_OK);
    CHECK(same_params(m, loaded));
    CHECK_EQ(vae_model_step(loaded), 0);
    vae_model_free(loaded);
}

// a disk that fills up at any point of a save: an error naming the file and
// the reason, the previous checkpoint intact, no temporary left
static void full_disk_keeps_the_checkpoint(void)
{
    char path[4200], cmd[4400];
    vae_model *loaded;
    vae_error err;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tmpdir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        CHECK(!"checkpoint_round_trip wrote the checkpoint");
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *before = malloc((size_t)size), *after = malloc((size_t)size + 1);
    CHECK_EQ(fread(before, 1, (size_t)size, f), size);
    fclose(f);
    long cuts[] = {0, 1, 7, 8, 9, 100, 4096, size / 2, size - 1};
    train(F.m, F.train, 1, F.B, F.x, VAE_BINARIZE_NONE); // different weights to save
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        vae__fault_write_after = cuts[i];
        int rc = vae_model_save_checkpoint(F.m, path, meta);
        vae__fault_write_after = -1;
        CHECK_EQ(rc, VAE_EIO);
        CHECK(strstr(vae_model_errmsg(F.m), "No space left on device") != NULL);
        CHECK(strstr(vae_model_errmsg(F.m), path) != NULL);
        f = fopen(path, "rb");
        size_t got = fread(after, 1, (size_t)size + 1, f);
        fclose(f);
        CHECK(got == (size_t)size && !memcmp(before, after, (size_t)size));
        CHECK_EQ(vae_model_load(path, 16, &loaded, &err), VAE_OK);
        vae_model_free(loaded);
    }
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0); // no temporary files left behind
    free(before);
    free(after);
}

// the RNG state survives its text form, spare normal included
static void rng_text_round_trip(void)
{
    vae_rng r1, r2;
    char text[VAE_RNG_TEXT];
    vae_rng_seed(&r1, 99);
    vae_rng_normal(&r1); // leaves a spare
    vae_rng_format(&r1, text);
    CHECK_EQ(vae_rng_parse(&r2, text), VAE_OK);
    CHECK(vae_rng_normal(&r1) == vae_rng_normal(&r2));
    CHECK(vae_rng_u64(&r1) == vae_rng_u64(&r2));
    text[5] = 'x';
    CHECK_EQ(vae_rng_parse(&r2, text), VAE_EINVAL);
    CHECK_EQ(vae_rng_parse(&r2, "0:0"), VAE_EINVAL);
}

// weights that disagree with their metadata, a safetensors file that is not a
// checkpoint, a file that is not safetensors: refused, with the reason
static void bad_checkpoints_refused(void)
{
    char path[4300];
    vae_model *m2, *loaded;
    vae_error err;
    vae_config other = F.cfg;
    other.hidden[0] = 64; // the metadata below says 128
    CHECK_EQ(vae_model_create(&other, F.B, 1, &m2, &err), VAE_OK);
    vae__param_view v[4 * VAE_MAX_LAYERS];
    vae__st_tensor t[4 * VAE_MAX_LAYERS];
    int nv = vae__model_tensors(m2, v);
    for (int i = 0; i < nv; i++) {
        t[i] = (vae__st_tensor){v[i].name, v[i].ndim, {0}, v[i].data};
        memcpy(t[i].shape, v[i].shape, sizeof v[i].shape);
    }
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    const char *bad_meta[] = {"format", "vae-checkpoint", "format_version", "1", "vae.channels", "1",
                              "vae.height", "28", "vae.width", "28", "vae.hidden", "128",
                              "vae.latent", "8", "vae.model", "vae", "vae.likelihood",
                              "bernoulli", "vae.beta", "1", NULL};
    CHECK_EQ(vae__st_write(path, t, nv, bad_meta, &err), VAE_OK);
    loaded = NULL;
    int rc = vae_model_load(path, 16, &loaded, &err);
    CHECK(rc == VAE_ESHAPE || rc == VAE_EFORMAT);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(loaded == NULL);
    vae_model_free(m2);
    snprintf(path, sizeof path, "%s/ref_small.safetensors", F.data);
    CHECK_EQ(vae_model_load(path, 16, &loaded, &err), VAE_EFORMAT);
    CHECK(strstr(err.msg, "not a vae checkpoint") != NULL);
    snprintf(path, sizeof path, "%s/fmnist-small/t10k-labels-idx1-ubyte.gz", F.data);
    CHECK(vae_model_load(path, 16, &loaded, &err) < 0);
    CHECK(strstr(err.msg, path) != NULL);
    printf("refused: %s\n", err.msg);
}

// Adam moments of a weight whose gradient stopped decay to zero, never into
// subnormals (which made whole epochs 2x slower)
static void adam_moments_skip_subnormals(void)
{
    float p = 0.5f, g = 1e-3f, am = 0, av = 0;
    vae_adam a;
    vae_adam_default(&a);
    int subnormal = 0;
    for (long t = 1; t <= 3000; t++) {
        vae__adam_update(&p, &g, &am, &av, 1, &a, t, 1.0f);
        subnormal |= fpclassify(am) == FP_SUBNORMAL || fpclassify(av) == FP_SUBNORMAL;
        g = 0;
    }
    CHECK(!subnormal);
    CHECK(am == 0);
}

// gradient clipping rescales the step's gradient to the norm asked for
static void gradient_clipping(void)
{
    vae_model *a, *c;
    vae_error err;
    int B = F.B;
    CHECK_EQ(vae_model_create(&F.cfg, B, 5, &a, &err), VAE_OK);
    CHECK_EQ(vae_model_create(&F.cfg, B, 5, &c, &err), VAE_OK);
    vae_model_set_grad_clip(c, 0.5f);
    uint32_t idx[64];
    for (int i = 0; i < B; i++) idx[i] = (uint32_t)i;
    vae_dataset_batch(F.train, idx, B, VAE_BINARIZE_NONE, 0, NULL, F.x);
    CHECK_EQ(vae_model_train_step(a, F.x, NULL, B, NULL), VAE_OK);
    CHECK_EQ(vae_model_train_step(c, F.x, NULL, B, NULL), VAE_OK);
    double norm = a->grad_norm, scale = 0.5 / (norm + 1e-6);
    CHECK(norm > 0.5);
    CHECK_NEAR(c->grad_norm, norm, 1e-9 * norm);
    double worst = 0; // first moments are (1 - beta1) * the (clipped) gradient
    for (size_t i = 0; i < a->net.n_params; i++)
        worst = fmax(worst, fabs(c->adam_m[i] - scale * a->adam_m[i]) /
                                (fabs(a->adam_m[i]) * scale + 1e-12));
    CHECK(worst < 1e-5);
    vae_model_free(a);
    vae_model_free(c);
}

// two threads share the weight-gradient units and the Adam blocks as they
// come; the gradient norm is summed in a fixed order, so a clipped run still
// reproduces bit for bit
static void two_threads_reproduce(void)
{
    vae_model *a, *c;
    vae_error err;
    int B = F.B;
    vae_set_threads(2);
    CHECK_EQ(vae_model_create(&F.cfg, B, 9, &a, &err), VAE_OK);
    CHECK_EQ(vae_model_create(&F.cfg, B, 9, &c, &err), VAE_OK);
    vae_model_set_grad_clip(a, 0.5f);
    vae_model_set_grad_clip(c, 0.5f);
    uint32_t idx[64];
    int differ = 0;
    for (int s = 0; s < 100; s++) {
        for (int i = 0; i < B; i++)
            idx[i] = (uint32_t)((s * B + i) % vae_dataset_count(F.train));
        vae_dataset_batch(F.train, idx, B, VAE_BINARIZE_NONE, 0, NULL, F.x);
        CHECK_EQ(vae_model_train_step(a, F.x, NULL, B, NULL), VAE_OK);
        CHECK_EQ(vae_model_train_step(c, F.x, NULL, B, NULL), VAE_OK);
        differ += a->grad_norm != c->grad_norm;
    }
    CHECK_EQ(differ, 0);
    CHECK(same_params(a, c));
    vae_model_free(a);
    vae_model_free(c);
    vae_set_threads(1);
}

// a non-finite loss stops the step with the weights untouched
static void nonfinite_loss_leaves_weights(void)
{
    vae_model *m = F.m;
    float *keep = malloc(m->net.n_params * sizeof *keep);
    memcpy(keep, m->params, m->net.n_params * sizeof *keep);
    long step = vae_model_step(m);
    F.x[5] = NAN;
    CHECK_EQ(vae_model_train_step(m, F.x, NULL, F.B, NULL), VAE_ENUMERIC);
    CHECK(strstr(vae_model_errmsg(m), "weights left unchanged") != NULL);
    CHECK(!memcmp(keep, m->params, m->net.n_params * sizeof *keep));
    CHECK_EQ(vae_model_step(m), step);
    free(keep);
}

static void bad_configurations_refused(void)
{
    vae_model *m2;
    vae_error err;
    vae_config bad = F.cfg;
    bad.latent = 0;
    CHECK_EQ(vae_model_create(&bad, F.B, 1, &m2, &err), VAE_EINVAL);
    bad = F.cfg;
    bad.hidden[0] = -3;
    CHECK_EQ(vae_model_create(&bad, F.B, 1, &m2, &err), VAE_EINVAL);
    CHECK_EQ(vae_model_create(&F.cfg, 0, 1, &m2, &err), VAE_EINVAL);
    CHECK_EQ(vae_model_train_step(F.m, F.x, NULL, F.B + 1, NULL), VAE_EINVAL);
}

#define TEST(name) {#name, name}
static const struct {
    const char *name;
    void (*run)(void);
} tests[] = {
    TEST(training_lowers_the_loss), TEST(same_seed_same_weights),
    TEST(dynamic_binarisation_trains), TEST(checkpoint_round_trip),
    TEST(full_disk_keeps_the_checkpoint), TEST(rng_text_round_trip),
    TEST(bad_checkpoints_refused), TEST(adam_moments_skip_subnormals),
    TEST(gradient_clipping), TEST(two_threads_reproduce),
    TEST(nonfinite_loss_leaves_weights), TEST(bad_configurations_refused),
};

int main(int argc, char **argv)
{
    if (argc < 2 || !mkdtemp(tmpdir)) return 2;
    vae_set_threads(1);
    char dir[4096];
    vae_error err;
    F.data = argv[1];
    snprintf(dir, sizeof dir, "%s/fmnist-small", F.data);
    if (vae_dataset_open_mnist(dir, VAE_SPLIT_TRAIN, &F.train, &err) != VAE_OK ||
        vae_dataset_open_mnist(dir, VAE_SPLIT_TEST, &F.test, &err) != VAE_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    vae_config_default(&F.cfg);
    F.cfg.hidden[0] = 128;
    F.cfg.latent = 8;
    F.B = 64;
    F.n_test = (int)vae_dataset_count(F.test);
    F.x = malloc((size_t)F.B * 784 * sizeof *F.x);
    F.xt = malloc((size_t)F.n_test * 784 * sizeof *F.xt);
    uint32_t *all = malloc((size_t)F.n_test * sizeof *all);
    for (int i = 0; i < F.n_test; i++) all[i] = (uint32_t)i;
    vae_dataset_batch(F.test, all, F.n_test, VAE_BINARIZE_NONE, 0, NULL, F.xt);
    free(all);

    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        int failed = test_failures_;
        tests[i].run();
        printf("%-32s %s\n", tests[i].name, test_failures_ == failed ? "ok" : "FAILED");
    }

    vae_model_free(F.m);
    vae_dataset_free(F.train);
    vae_dataset_free(F.test);
    free(F.x), free(F.xt);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK_EQ(system(cmd), 0);
    return TEST_REPORT();
}
