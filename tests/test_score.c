/* test_score.c - the scores of vae/score.h: the Fréchet distance against
 * closed forms, the probes on separable data, the classifier's training,
 * file round trip and refusals, and on the shipped Fashion-MNIST subset the
 * distance rising with blur and with noise; the perceptual term's refusals
 * and reproducibility on a model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae.h"
#include "test.h"

static vae_rng rng;

/* A random orthogonal d x d matrix (Gram-Schmidt on normals). */
static void random_rotation(double *q, int d)
{
    for (int i = 0; i < d; i++) {
        double *r = q + (size_t)i * d;
        for (int j = 0; j < d; j++) r[j] = vae_rng_normal(&rng);
        for (int k = 0; k < i; k++) {
            double dot = 0;
            for (int j = 0; j < d; j++) dot += r[j] * q[(size_t)k * d + j];
            for (int j = 0; j < d; j++) r[j] -= dot * q[(size_t)k * d + j];
        }
        double n = 0;
        for (int j = 0; j < d; j++) n += r[j] * r[j];
        for (int j = 0; j < d; j++) r[j] /= sqrt(n);
    }
}

/* c = Q^T diag(e) Q */
static void rotated_diag(double *c, const double *q, const double *e, int d)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += q[(size_t)k * d + i] * e[k] * q[(size_t)k * d + j];
            c[(size_t)i * d + j] = s;
        }
}

static void test_frechet(void)
{
    enum { d = 6 };
    double q[d * d], a[d], b[d], c1[d * d], c2[d * d], m1[d], m2[d], fd;
    random_rotation(q, d);
    double want = 0;
    for (int i = 0; i < d; i++) {
        a[i] = 0.1 + vae_rng_uniform(&rng), b[i] = 0.1 + 2 * vae_rng_uniform(&rng);
        m1[i] = vae_rng_normal(&rng), m2[i] = vae_rng_normal(&rng);
        want += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    // commuting covariances: the distance is |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    rotated_diag(c1, q, a, d);
    rotated_diag(c2, q, b, d);
    CHECK_EQ(vae_frechet_distance(m1, c1, m2, c2, d, &fd, NULL), VAE_OK);
    CHECK_NEAR(fd, want, 1e-9);
    CHECK_EQ(vae_frechet_distance(m2, c2, m1, c1, d, &fd, NULL), VAE_OK); // symmetric
    CHECK_NEAR(fd, want, 1e-9);
    // one set against itself: 0; a singular covariance (rank 2) too
    CHECK_EQ(vae_frechet_distance(m1, c1, m1, c1, d, &fd, NULL), VAE_OK);
    CHECK(fd < 1e-9);
    for (int i = 2; i < d; i++) a[i] = 0;
    rotated_diag(c1, q, a, d);
    CHECK_EQ(vae_frechet_distance(m1, c1, m1, c1, d, &fd, NULL), VAE_OK);
    CHECK(fd < 1e-6);
    vae_error err;
    CHECK_EQ(vae_frechet_distance(m1, c1, m1, NULL, d, &fd, &err), VAE_EINVAL);
}

static void test_stats(void)
{
    enum { n = 300, d = 4 };
    float *f = malloc(sizeof *f * n * d);
    for (int i = 0; i < n * d; i++) f[i] = (float)(5 + vae_rng_normal(&rng) * (1 + i % d));
    double mean[d], cov[d * d];
    CHECK_EQ(vae_feature_stats(f, n, d, mean, cov, NULL), VAE_OK);
    for (int j = 0; j < d; j++) { // two passes, directly
        double m = 0;
        for (int i = 0; i < n; i++) m += f[i * d + j];
        m /= n;
        CHECK_NEAR(mean[j], m, 1e-9);
        for (int k = 0; k < d; k++) {
            double mk = 0, s = 0;
            for (int i = 0; i < n; i++) mk += f[i * d + k];
            mk /= n;
            for (int i = 0; i < n; i++) s += (f[i * d + j] - m) * (f[i * d + k] - mk);
            CHECK_NEAR(cov[j * d + k], s / (n - 1), 1e-9);
        }
    }
    vae_error err;
    CHECK_EQ(vae_feature_stats(f, 1, d, mean, cov, &err), VAE_EINVAL);
    free(f);
}

static void test_entropy(void)
{
    float uni[3 * 4], hot[4 * 4] = {0};
    for (int i = 0; i < 12; i++) uni[i] = 0.25f;
    for (int i = 0; i < 4; i++) hot[i * 4 + i] = 1;
    double hm, ho;
    vae_class_entropy(uni, 3, 4, &hm, &ho);
    CHECK_NEAR(hm, log(4), 1e-6);
    CHECK_NEAR(ho, log(4), 1e-6);
    vae_class_entropy(hot, 4, 4, &hm, &ho); // confident and diverse
    CHECK_NEAR(hm, 0, 1e-12);
    CHECK_NEAR(ho, log(4), 1e-6);
}

/* Three well separated clusters in 5 dimensions: both probes are exact. */
static void test_probes(void)
{
    enum { ntr = 150, nte = 60, d = 5 };
    float tr[ntr * d], te[nte * d];
    uint8_t ytr[ntr], yte[nte];
    for (int i = 0; i < ntr + nte; i++) {
        int c = i % 3;
        float *row = i < ntr ? tr + i * d : te + (i - ntr) * d;
        (i < ntr ? ytr : yte)[i < ntr ? i : i - ntr] = (uint8_t)c;
        for (int j = 0; j < d; j++) row[j] = (float)((j == c ? 6 : 0) + 0.5 * vae_rng_normal(&rng));
    }
    double acc = 0;
    CHECK_EQ(vae_knn_accuracy(tr, ytr, ntr, te, yte, nte, d, 5, &acc, NULL), VAE_OK);
    CHECK_NEAR(acc, 1, 1e-12);
    CHECK_EQ(vae_ridge_probe_accuracy(tr, ytr, ntr, te, yte, nte, d, 3, 1e-4, &acc, NULL), VAE_OK);
    CHECK_NEAR(acc, 1, 1e-12);
    // labels shuffled against the codes: chance level, about 1/3
    for (int i = 0; i < nte; i++) yte[i] = (uint8_t)((yte[i] + 1 + i % 2) % 3);
    CHECK_EQ(vae_knn_accuracy(tr, ytr, ntr, te, yte, nte, d, 1, &acc, NULL), VAE_OK);
    CHECK(acc < 0.05);
    vae_error err;
    CHECK_EQ(vae_knn_accuracy(tr, ytr, ntr, te, yte, nte, d, ntr + 1, &acc, &err), VAE_EINVAL);
    ytr[3] = 7;
    CHECK_EQ(vae_ridge_probe_accuracy(tr, ytr, ntr, te, yte, nte, d, 3, 1e-4, &acc, &err),
             VAE_EINVAL);
}

/* Fréchet distance of n images x to the reference statistics. */
static double fd_to(vae_classifier *c, const float *x, long n, const double *m0, const double *c0)
{
    int H = vae_classifier_get_config(c)->hidden;
    float *f = malloc(sizeof *f * n * H);
    double *m = malloc(sizeof *m * H), *cv = malloc(sizeof *cv * H * H), fd = NAN;
    if (vae_classifier_predict(c, x, n, NULL, f, NULL) == VAE_OK &&
        vae_feature_stats(f, n, H, m, cv, NULL) == VAE_OK)
        vae_frechet_distance(m, cv, m0, c0, H, &fd, NULL);
    free(f), free(m), free(cv);
    return fd;
}

static void test_classifier(const char *data, const char *tmp)
{
    char dir[4200], path[4200], ref[4200];
    snprintf(dir, sizeof dir, "%s/fmnist-small", data);
    snprintf(ref, sizeof ref, "%s/ref_small.safetensors", data);
    snprintf(path, sizeof path, "%s/test_score_cls.safetensors", tmp);
    vae_dataset *train, *test;
    vae_error err;
    if (vae_dataset_open_mnist(dir, VAE_SPLIT_TRAIN, &train, &err) ||
        vae_dataset_open_mnist(dir, VAE_SPLIT_TEST, &test, &err)) {
        printf("%s\n", err.msg);
        CHECK(0);
        return;
    }
    enum { B = 64, STEPS = 40 };
    vae_classifier_config cfg;
    vae_classifier_config_default(&cfg);
    cfg.conv1 = 8, cfg.conv2 = 16, cfg.hidden = 32; // small: seconds, also under ASan
    vae_classifier *c;
    CHECK_EQ(vae_classifier_create(&cfg, B, 3, &c, &err), VAE_OK);
    int D = 784;
    long nte = (long)vae_dataset_count(test), ntr = (long)vae_dataset_count(train);
    float *x = malloc(sizeof *x * B * D), *xte = malloc(sizeof *xte * nte * D);
    float *y = malloc(sizeof *y * nte * D);
    uint32_t idx[B];
    uint8_t lab[B];
    const uint8_t *ytr = vae_dataset_labels(train);
    double first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B; i++) idx[i] = (uint32_t)((s * B + i) % ntr), lab[i] = ytr[idx[i]];
        vae_dataset_batch(train, idx, B, VAE_BINARIZE_NONE, 0, NULL, x);
        double loss;
        CHECK_EQ(vae_classifier_train_step(c, x, lab, B, &loss, NULL, &err), VAE_OK);
        if (s < 5) first += loss;
        if (s >= STEPS - 5) last += loss;
    }
    CHECK(last < 0.7 * first); // it learns
    // no labels, a label past the classes
    CHECK_EQ(vae_classifier_train_step(c, x, NULL, B, NULL, NULL, &err), VAE_EINVAL);
    lab[5] = 10;
    CHECK_EQ(vae_classifier_train_step(c, x, lab, B, NULL, NULL, &err), VAE_EINVAL);

    for (long i = 0; i < nte; i++) {
        uint32_t j = (uint32_t)i;
        vae_dataset_batch(test, &j, 1, VAE_BINARIZE_NONE, 0, NULL, xte + (size_t)i * D);
    }
    int H = cfg.hidden;
    float *f = malloc(sizeof *f * nte * H), *f2 = malloc(sizeof *f2 * nte * H);
    double *m0 = malloc(sizeof *m0 * H), *c0 = malloc(sizeof *c0 * H * H);
    CHECK_EQ(vae_classifier_predict(c, xte, nte, NULL, f, &err), VAE_OK);
    CHECK_EQ(vae_feature_stats(f, nte, H, m0, c0, &err), VAE_OK);
    CHECK(fd_to(c, xte, nte, m0, c0) < 1e-6);

    // the acceptance check: the distance rises with blur and with noise
    static const double blur[] = {0.5, 1, 2, 3}, noise[] = {0.05, 0.1, 0.2, 0.4};
    double prev_b = 0, prev_n = 0;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(vae_images_blur(xte, nte, 1, 28, 28, blur[i], y, &err), VAE_OK);
        double fb = fd_to(c, y, nte, m0, c0);
        vae_images_noise(xte, (size_t)nte * D, noise[i], 9, y);
        double fn = fd_to(c, y, nte, m0, c0);
        printf("blur sigma %g: %.3f   noise sigma %g: %.3f\n", blur[i], fb, noise[i], fn);
        CHECK(fb > prev_b);
        CHECK(fn > prev_n);
        prev_b = fb, prev_n = fn;
    }

    // the file: the same predictions back; a VAE checkpoint is refused
    const char *meta[] = {"test_accuracy", "0.5", NULL};
    CHECK_EQ(vae_classifier_save(c, path, meta, &err), VAE_OK);
    const char *bad[] = {"classifier.hidden", "3", NULL};
    CHECK_EQ(vae_classifier_save(c, path, bad, &err), VAE_EINVAL);
    vae_classifier *c2;
    CHECK_EQ(vae_classifier_load(path, 100, &c2, &err), VAE_OK);
    if (c2) {
        CHECK_EQ(vae_classifier_predict(c2, xte, nte, NULL, f2, &err), VAE_OK);
        CHECK(!memcmp(f, f2, sizeof *f * nte * H));
        CHECK(vae_classifier_meta(c2, "test_accuracy") &&
              !strcmp(vae_classifier_meta(c2, "test_accuracy"), "0.5"));
        CHECK_EQ(vae_classifier_num_params(c2), vae_classifier_num_params(c));
        vae_classifier_free(c2);
    }
    remove(path);
    CHECK_EQ(vae_classifier_load(ref, 10, &c2, &err), VAE_EFORMAT);
    CHECK(strstr(err.msg, "not a classifier") != NULL);
    CHECK(c2 == NULL);

    free(x), free(xte), free(y), free(f), free(f2), free(m0), free(c0);
    vae_classifier_free(c);
    vae_dataset_free(train);
    vae_dataset_free(test);
}

/* The perceptual term on a model (vae_model_set_perceptual): its refusals;
 * and a step's bits, the same for a seed and thread count, other than
 * without the term, the same as none for weight 0 or once removed. */
static void test_perceptual(void)
{
    vae_error err;
    vae_classifier_config cc;
    vae_classifier_config_default(&cc);
    cc.height = cc.width = 8, cc.conv1 = 4, cc.conv2 = 4, cc.hidden = 8;
    vae_classifier *c, *wide;
    CHECK(vae_classifier_create(&cc, 16, 3, &c, &err) == VAE_OK);
    cc.width = 6;
    CHECK(vae_classifier_create(&cc, 16, 3, &wide, &err) == VAE_OK);
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.height = cfg.width = 8, cfg.latent = 3, cfg.n_hidden = 1, cfg.hidden[0] = 16;
    enum { N = 16 };
    float x[N * 64];
    for (int i = 0; i < N * 64; i++) x[i] = (float)vae_rng_uniform(&rng);
    uint32_t sums[5];
    for (int run = 0; run < 5; run++) { // none, term, term again, weight 0, set and removed
        vae_model *m;
        CHECK(vae_model_create(&cfg, N, 7, &m, &err) == VAE_OK);
        if (run == 1 || run == 2 || run == 4)
            CHECK(vae_model_set_perceptual(m, c, VAE_PERCEPTUAL_CONV1 | VAE_PERCEPTUAL_FC1, 0.5f) ==
                  VAE_OK);
        if (run == 3) CHECK(vae_model_set_perceptual(m, c, 7, 0) == VAE_OK);
        for (int s = 0; s < 3; s++) {
            if (run == 4 && s == 1) CHECK(vae_model_set_perceptual(m, NULL, 0, 0) == VAE_OK);
            CHECK(vae_model_train_step(m, x, NULL, N, NULL) == VAE_OK);
        }
        sums[run] = vae_model_checksum(m);
        vae_model_free(m);
    }
    CHECK(sums[1] == sums[2]);
    CHECK(sums[0] != sums[1]);
    CHECK(sums[0] == sums[3]);
    CHECK(sums[4] != sums[0] && sums[4] != sums[1]);
    // refusals: another image shape, layers, weights, the IWAE's k samples
    vae_model *m;
    CHECK(vae_model_create(&cfg, N, 7, &m, &err) == VAE_OK);
    CHECK(vae_model_set_perceptual(m, wide, 1, 1) == VAE_EINVAL);
    CHECK(strstr(vae_model_errmsg(m), "1x8x6 images, the model 1x8x8") != NULL);
    CHECK(vae_model_set_perceptual(m, c, 0, 1) == VAE_EINVAL);
    CHECK(vae_model_set_perceptual(m, c, 8, 1) == VAE_EINVAL);
    CHECK(vae_model_set_perceptual(m, c, 1, -1) == VAE_EINVAL);
    CHECK(vae_model_set_perceptual(m, c, 1, NAN) == VAE_EINVAL);
    CHECK(vae_model_set_perceptual(m, c, 1, INFINITY) == VAE_EINVAL);
    CHECK(strstr(vae_model_errmsg(m), "weight") != NULL);
    vae_model_free(m);
    cfg.model = VAE_MODEL_IWAE, cfg.iwae_k = 3;
    CHECK(vae_model_create(&cfg, N, 7, &m, &err) == VAE_OK);
    CHECK(vae_model_set_perceptual(m, c, 1, 1) == VAE_EINVAL);
    CHECK(strstr(vae_model_errmsg(m), "k = 3") != NULL);
    vae_model_free(m);
    vae_classifier_free(c), vae_classifier_free(wide);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_score DATA_DIR\n");
        return 2;
    }
    vae_rng_seed(&rng, 20261205);
    test_frechet();
    test_stats();
    test_entropy();
    test_probes();
    test_perceptual();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    test_classifier(argv[1], tmp);
    return TEST_REPORT();
}
