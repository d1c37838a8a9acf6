/* test_ref.c - the C model against the PyTorch fixture written by
 * scripts/make_ref.py: forward values, loss terms, every gradient, and the
 * weights after three Adam steps. Exits non-zero on any mismatch. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/model.h"

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_small.safetensors");
    vae_error err;
    vae_config cfg;
    fixture_mlp_config(&cfg);
    int B = fixture_meta_int("batch"), steps = fixture_meta_int("steps");
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
    vae_adam adam;
    vae_adam_default(&adam);
    adam.lr = (float)atof(vae__st_meta(fixture, "lr"));
    vae_model_set_adam(m, &adam);

    vae__param_view v[4 * VAE_MAX_LAYERS];
    int nv = vae__model_tensors(m, v);
    char name[96];
    for (int i = 0; i < nv; i++) {
        snprintf(name, sizeof name, "init.%.47s", v[i].name);
        memcpy(v[i].data, fixture_get(name, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
    }
    const float *x = fixture_get("x", 0);
    int d = cfg.latent, D = vae_model_input_size(m);
    vae__net *net = &m->net;

    printf("step 1: forward and gradients\n");
    memcpy(net->eps, fixture_get("eps1", (size_t)B * d), (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    vae_set_threads(1); // one slice: every activation is in m->net
    CHECK_EQ(vae__model_step(m, x, NULL, B, 0, &st), VAE_OK);
    fixture_check("mu", net->act[net->k], "mu", 2 * d, 0, d, 1e-6, 1e-5);
    fixture_check("logvar", net->act[net->k], "logvar", 2 * d, d, d, 1e-6, 1e-5);
    fixture_check("z", net->z, "z", d, 0, d, 1e-6, 1e-5);
    fixture_check("logits", net->act[net->n_layers - 1], "logits", D, 0, D, 1e-5, 1e-5);
    fixture_check("rec (per image)", net->rec_img, "rec", 1, 0, 1, 1e-4, 1e-6);
    fixture_check("kl (per image)", net->kl_img, "kl", 1, 0, 1, 1e-5, 1e-5);
    float loss = (float)(st.loss / B);
    fixture_check("loss", &loss, "loss", 1, 0, 1, 1e-5, 1e-6);
    vae__param_view g[4 * VAE_MAX_LAYERS];
    for (int i = 0; i < nv; i++) {
        g[i] = v[i];
        g[i].data = m->grads + (v[i].data - m->params);
        snprintf(name, sizeof name, "grad.%.47s", v[i].name);
        size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
        fixture_check(name, g[i].data, name, w, 0, w, 1e-6, 1e-4);
    }

    // the steps run split over 3 threads: the slices' gradients must add up
    vae_set_threads(3);
    printf("Adam: %d steps, the batch split over 3 threads\n", steps);
    m->step = 0;
    memset(m->adam_m, 0, net->n_params * sizeof(float));
    memset(m->adam_v, 0, net->n_params * sizeof(float));
    for (int i = 0; i < nv; i++) { // restart from the initial weights
        snprintf(name, sizeof name, "init.%.47s", v[i].name);
        memcpy(v[i].data, fixture_get(name, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
    }
    for (int s = 1; s <= steps; s++) {
        snprintf(name, sizeof name, "eps%d", s);
        memcpy(net->eps, fixture_get(name, (size_t)B * d), (size_t)B * d * sizeof(float));
        CHECK_EQ(vae__model_step(m, x, NULL, B, 1, NULL), VAE_OK);
    }
    for (int i = 0; i < nv; i++) {
        char label[96];
        snprintf(name, sizeof name, "step%d.%.47s", steps, v[i].name);
        snprintf(label, sizeof label, "after: %.47s", v[i].name);
        size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
        fixture_check(label, v[i].data, name, w, 0, w, 2e-6, 1e-4);
    }
    vae_model_free(m);

    // the IWAE loss and its gradients at the initial weights (one thread, then
    // the batch split over 3: the slices' gradients must add up)
    cfg.model = VAE_MODEL_IWAE;
    cfg.iwae_k = fixture_meta_int("iwae_k");
    for (int threads = 1; threads <= 3; threads += 2) {
        printf("IWAE, k = %d, %d thread(s)\n", cfg.iwae_k, threads);
        vae_set_threads(threads);
        CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
        nv = vae__model_tensors(m, v);
        for (int i = 0; i < nv; i++) {
            snprintf(name, sizeof name, "init.%.47s", v[i].name);
            memcpy(v[i].data, fixture_get(name, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
        }
        net = &m->net;
        size_t ne = (size_t)B * cfg.iwae_k * d;
        memcpy(net->eps, fixture_get("iwae.eps", ne), ne * sizeof(float));
        vae_stats is = {0};
        CHECK_EQ(vae__model_step(m, x, NULL, B, 0, &is), VAE_OK);
        if (threads == 1) {
            float per[64];
            for (int b = 0; b < B && b < 64; b++) per[b] = net->rec_img[b] + net->kl_img[b];
            fixture_check("loss (per image)", per, "iwae.loss", 1, 0, 1, 1e-4, 1e-6);
        }
        for (int i = 0; i < nv; i++) {
            snprintf(name, sizeof name, "iwae.grad.%.40s", v[i].name);
            size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
            fixture_check(name, m->grads + (v[i].data - m->params), name, w, 0, w, 1e-6, 1e-4);
        }
        vae_model_free(m);
    }
    vae__st_free(fixture);
    return TEST_REPORT();
}
