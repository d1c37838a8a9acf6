/* test_ref.c - the C model against the PyTorch fixture written by
 * scripts/make_ref.py: forward values, loss terms, every gradient, and the
 * weights after three Adam steps. Exits non-zero on any mismatch. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "test.h"

static const vae__st_file *ref;

static const vae__st_tensor *get(const char *name)
{
    const vae__st_tensor *t = vae__st_find(ref, name);
    if (!t) {
        fprintf(stderr, "fixture lacks tensor %s\n", name);
        exit(1);
    }
    return t;
}

static size_t numel(const vae__st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* |a - b| <= atol + rtol |b| everywhere; prints the worst difference. */
static void check_tensor(const char *label, const float *a, const char *name, size_t stride,
                         size_t offset, size_t width, double atol, double rtol)
{
    const vae__st_tensor *t = get(name);
    size_t rows = numel(t) / width;
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

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_small.safetensors", argv[1]);
    vae__st_file *f;
    vae_error err;
    if (vae__st_read(path, &f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ref = f;
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.channels = atoi(vae__st_meta(f, "channels"));
    cfg.height = atoi(vae__st_meta(f, "height"));
    cfg.width = atoi(vae__st_meta(f, "width"));
    cfg.latent = atoi(vae__st_meta(f, "latent"));
    cfg.n_hidden = 2;
    sscanf(vae__st_meta(f, "hidden"), "%d,%d", &cfg.hidden[0], &cfg.hidden[1]);
    int B = atoi(vae__st_meta(f, "batch")), steps = atoi(vae__st_meta(f, "steps"));
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
    vae_adam adam;
    vae_adam_default(&adam);
    adam.lr = (float)atof(vae__st_meta(f, "lr"));
    vae_model_set_adam(m, &adam);

    vae__param_view v[4 * VAE_MAX_LAYERS];
    int nv = vae__model_tensors(m, v);
    char name[96];
    for (int i = 0; i < nv; i++) {
        snprintf(name, sizeof name, "init.%.47s", v[i].name);
        const vae__st_tensor *t = get(name);
        CHECK_EQ(numel(t), vae__view_numel(&v[i]));
        memcpy(v[i].data, t->data, numel(t) * sizeof(float));
    }
    const float *x = get("x")->data;
    int d = cfg.latent, D = vae_model_input_size(m);
    vae__net *net = &m->net;

    printf("step 1: forward and gradients\n");
    memcpy(net->eps, get("eps1")->data, (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    vae_set_threads(1); // one slice: every activation is in m->net
    CHECK_EQ(vae__model_step(m, x, B, 0, &st), VAE_OK);
    check_tensor("mu", net->act[net->k], "mu", 2 * d, 0, d, 1e-6, 1e-5);
    check_tensor("logvar", net->act[net->k], "logvar", 2 * d, d, d, 1e-6, 1e-5);
    check_tensor("z", net->z, "z", d, 0, d, 1e-6, 1e-5);
    check_tensor("logits", net->act[net->n_layers - 1], "logits", D, 0, D, 1e-5, 1e-5);
    check_tensor("rec (per image)", net->rec_img, "rec", 1, 0, 1, 1e-4, 1e-6);
    check_tensor("kl (per image)", net->kl_img, "kl", 1, 0, 1, 1e-5, 1e-5);
    float loss = (float)(st.loss / B);
    check_tensor("loss", &loss, "loss", 1, 0, 1, 1e-5, 1e-6);
    vae__param_view g[4 * VAE_MAX_LAYERS];
    for (int i = 0; i < nv; i++) {
        g[i] = v[i];
        g[i].data = m->grads + (v[i].data - m->params);
        snprintf(name, sizeof name, "grad.%.47s", v[i].name);
        size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
        check_tensor(name, g[i].data, name, w, 0, w, 1e-6, 1e-4);
    }

    // the steps run split over 3 threads: the slices' gradients must add up
    vae_set_threads(3);
    printf("Adam: %d steps, the batch split over 3 threads\n", steps);
    m->step = 0;
    memset(m->adam_m, 0, net->n_params * sizeof(float));
    memset(m->adam_v, 0, net->n_params * sizeof(float));
    for (int i = 0; i < nv; i++) { // restart from the initial weights
        snprintf(name, sizeof name, "init.%.47s", v[i].name);
        memcpy(v[i].data, get(name)->data, numel(get(name)) * sizeof(float));
    }
    for (int s = 1; s <= steps; s++) {
        snprintf(name, sizeof name, "eps%d", s);
        memcpy(net->eps, get(name)->data, (size_t)B * d * sizeof(float));
        CHECK_EQ(vae__model_step(m, x, B, 1, NULL), VAE_OK);
    }
    for (int i = 0; i < nv; i++) {
        char label[96];
        snprintf(name, sizeof name, "step%d.%.47s", steps, v[i].name);
        snprintf(label, sizeof label, "after: %.47s", v[i].name);
        size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
        check_tensor(label, v[i].data, name, w, 0, w, 2e-6, 1e-4);
    }
    vae_model_free(m);

    // the IWAE loss and its gradients at the initial weights (one thread, then
    // the batch split over 3: the slices' gradients must add up)
    cfg.model = VAE_MODEL_IWAE;
    cfg.iwae_k = atoi(vae__st_meta(f, "iwae_k"));
    for (int threads = 1; threads <= 3; threads += 2) {
        printf("IWAE, k = %d, %d thread(s)\n", cfg.iwae_k, threads);
        vae_set_threads(threads);
        CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
        nv = vae__model_tensors(m, v);
        for (int i = 0; i < nv; i++) {
            snprintf(name, sizeof name, "init.%.47s", v[i].name);
            memcpy(v[i].data, get(name)->data, numel(get(name)) * sizeof(float));
        }
        net = &m->net;
        memcpy(net->eps, get("iwae.eps")->data, (size_t)B * cfg.iwae_k * d * sizeof(float));
        vae_stats is = {0};
        CHECK_EQ(vae__model_step(m, x, B, 0, &is), VAE_OK);
        if (threads == 1) {
            float per[64];
            for (int b = 0; b < B && b < 64; b++) per[b] = net->rec_img[b] + net->kl_img[b];
            check_tensor("loss (per image)", per, "iwae.loss", 1, 0, 1, 1e-4, 1e-6);
        }
        for (int i = 0; i < nv; i++) {
            snprintf(name, sizeof name, "iwae.grad.%.40s", v[i].name);
            size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
            check_tensor(name, m->grads + (v[i].data - m->params), name, w, 0, w, 1e-6, 1e-4);
        }
        vae_model_free(m);
    }
    vae__st_free(f);
    return TEST_REPORT();
}
