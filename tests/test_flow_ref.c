/* test_flow_ref.c - the flows in the posterior (--flow planar, householder)
 * against the PyTorch fixture written by scripts/make_flow_ref.py: z_T, the
 * logits, the reconstruction and KL estimate per image, the loss and every
 * gradient, on one thread and with the batch split over 3. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/model.h"

static void check_flow(const char *name, vae_flow flow, int threads)
{
    vae_error err;
    vae_config cfg;
    fixture_mlp_config(&cfg);
    cfg.flow = flow;
    cfg.flow_steps = fixture_meta_int("flow_steps");
    int B = fixture_meta_int("batch");
    printf("%s, %d step(s), %d thread(s)\n", name, cfg.flow_steps, threads);
    vae_set_threads(threads);
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
    if (!m) return;
    vae__param_view v[4 * VAE_MAX_LAYERS];
    int nv = fixture_load_case(m, name, v);
    const float *x = fixture_get("x", 0);
    int d = cfg.latent, D = vae_model_input_size(m);
    vae__net *net = &m->net;
    char key[96];
    snprintf(key, sizeof key, "%s.eps", name);
    memcpy(net->eps, fixture_get(key, (size_t)B * d), (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    CHECK_EQ(vae__model_step(m, x, NULL, B, 0, &st), VAE_OK);
    if (threads == 1) { // one slice: every activation is in m->net
        fixture_check_case("z_T", net->z, name, "z", d, 1e-5, 1e-5);
        fixture_check_case("logits", net->act[net->n_layers - 1], name, "logits", D, 1e-5, 1e-5);
        fixture_check_case("rec (per image)", net->rec_img, name, "rec", 1, 1e-4, 1e-6);
        fixture_check_case("kl estimate (per image)", net->kl_img, name, "kl", 1, 1e-4, 1e-5);
    }
    fixture_check_step(m, name, v, nv, &st, B);
    vae_model_free(m);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_flow.safetensors");
    for (int threads = 1; threads <= 3; threads += 2) {
        check_flow("planar", VAE_FLOW_PLANAR, threads);
        check_flow("householder", VAE_FLOW_HOUSEHOLDER, threads);
    }
    vae__st_free(fixture);
    return TEST_REPORT();
}
