/* fixture.h - reading the PyTorch fixtures (tests/data/ref_*.safetensors)
 * in the tests that compare against them: open, fetch a tensor, compare. */
#ifndef VAE_FIXTURE_H
#define VAE_FIXTURE_H

#include <stdlib.h>

#include "io/io.h"
#include "model/model.h"
#include "test.h"

static vae__st_file *fixture;

/* Opens DIR/name, DIR being argv[1]; exits on failure. */
static void fixture_open(int argc, char **argv, const char *name)
{
    if (argc < 2) exit(2);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], name);
    vae_error err;
    if (vae__st_read(path, &fixture, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
}

static size_t fixture_numel(const vae__st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* Tensor `name`, which must hold `want` values (0: any number); exits if not. */
static const vae__st_tensor *fixture_tensor(const char *name, size_t want)
{
    const vae__st_tensor *t = vae__st_find(fixture, name);
    if (!t || (want && fixture_numel(t) != want)) {
        fprintf(stderr, "fixture tensor %s is missing or not %zu values\n", name, want);
        exit(1);
    }
    return t;
}

static const float *fixture_get(const char *name, size_t want)
{
    return fixture_tensor(name, want)->data;
}

static int fixture_meta_int(const char *key)
{
    const char *v = vae__st_meta(fixture, key);
    if (!v) {
        fprintf(stderr, "fixture lacks metadata %s\n", key);
        exit(1);
    }
    return atoi(v);
}

/* The default config with the fixture's image shape, latent size and two
 * hidden widths (metadata channels, height, width, latent, hidden "A,B"). */
static inline void fixture_mlp_config(vae_config *cfg)
{
    vae_config_default(cfg);
    cfg->channels = fixture_meta_int("channels");
    cfg->height = fixture_meta_int("height");
    cfg->width = fixture_meta_int("width");
    cfg->latent = fixture_meta_int("latent");
    cfg->n_hidden = 2;
    if (sscanf(vae__st_meta(fixture, "hidden"), "%d,%d", &cfg->hidden[0], &cfg->hidden[1]) != 2) {
        fprintf(stderr, "fixture metadata hidden is not two widths\n");
        exit(1);
    }
}

/* Checks |a - b| <= atol + rtol |b| against tensor `name`, read as rows of
 * `width` values; a's rows are `stride` apart from `offset` on. Prints the
 * worst difference. */
static void fixture_check(const char *label, const float *a, const char *name, size_t stride,
                          size_t offset, size_t width, double atol, double rtol)
{
    const vae__st_tensor *t = fixture_tensor(name, 0);
    size_t rows = fixture_numel(t) / width;
    double worst = 0;
    int ok = 1;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < width; j++) {
            double x = a[r * stride + offset + j], y = t->data[r * width + j];
            double diff = fabs(x - y);
            if (diff > worst) worst = diff;
            if (!(diff <= atol + rtol * fabs(y))) ok = 0;
        }
    printf("  %-28s maxdiff %.3g %s\n", label, worst, ok ? "ok" : "MISMATCH");
    CHECK(ok);
}

/* Case `name`'s `field` ("name.field") against a, rows of `width` values. */
static inline void fixture_check_case(const char *label, const float *a, const char *name,
                                      const char *field, size_t width, double atol, double rtol)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, field);
    fixture_check(label, a, key, width, 0, width, atol, rtol);
}

/* The model's tensors into v (their count returned), with case `name`'s
 * weights ("name.init.TENSOR") loaded into them. */
static inline int fixture_load_case(vae_model *m, const char *name, vae__param_view *v)
{
    int nv = vae__model_tensors(m, v);
    char key[128];
    for (int i = 0; i < nv; i++) {
        snprintf(key, sizeof key, "%s.init.%.47s", name, v[i].name);
        memcpy(v[i].data, fixture_get(key, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
    }
    return nv;
}

/* A step's mean loss over its B images and every parameter gradient against
 * case `name`'s "loss" and "grad.TENSOR" (rows: a tensor's first dimension). */
static inline void fixture_check_step(const vae_model *m, const char *name,
                                      const vae__param_view *v, int nv, const vae_stats *st, int B)
{
    float loss = (float)(st->loss / B);
    fixture_check_case("loss", &loss, name, "loss", 1, 1e-4, 1e-6);
    char field[96], label[96];
    for (int i = 0; i < nv; i++) {
        snprintf(field, sizeof field, "grad.%.47s", v[i].name);
        snprintf(label, sizeof label, "grad.%.47s", v[i].name);
        size_t w = v[i].ndim > 1 ? vae__view_numel(&v[i]) / (size_t)v[i].shape[0] : 1;
        fixture_check_case(label, m->grads + (v[i].data - m->params), name, field, w, 1e-5, 1e-4);
    }
}

/* One step without update of an MLP VAE built from cfg on `threads`
 * threads, with case `name`'s weights and noise ("name.eps"), against the
 * case: z, the logits, the reconstruction and regulariser per image (on one
 * thread, where every activation is in m->net), the loss and every gradient.
 * The labels name what z and the regulariser are for the case's model. */
static inline void fixture_check_mlp_step(const vae_config *cfg, const char *name, int threads,
                                          const char *z_label, const char *kl_label)
{
    int B = fixture_meta_int("batch");
    vae_error err;
    vae_model *m;
    vae_set_threads(threads);
    CHECK_EQ(vae_model_create(cfg, B, 0, &m, &err), VAE_OK);
    if (!m) return;
    vae__param_view v[VAE_MAX_TENSORS];
    int nv = fixture_load_case(m, name, v);
    int d = cfg->latent, D = vae_model_input_size(m);
    vae__net *net = &m->net;
    char key[96];
    snprintf(key, sizeof key, "%s.eps", name);
    memcpy(net->eps, fixture_get(key, (size_t)B * d), (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    CHECK_EQ(vae__model_step(m, fixture_get("x", 0), NULL, B, 0, &st), VAE_OK);
    if (threads == 1) {
        fixture_check_case(z_label, net->z, name, "z", d, 1e-5, 1e-5);
        fixture_check_case("logits", net->act[net->n_layers - 1], name, "logits", D, 1e-5, 1e-5);
        fixture_check_case("rec (per image)", net->rec_img, name, "rec", 1, 1e-4, 1e-6);
        fixture_check_case(kl_label, net->kl_img, name, "kl", 1, 1e-4, 1e-5);
    }
    fixture_check_step(m, name, v, nv, &st, B);
    vae_model_free(m);
}

#endif
