/* test_hvae_ref.c - the hierarchical VAE (--model hvae, standard prior and
 * VampPrior on z2) against the PyTorch fixture written by
 * scripts/make_hvae_ref.py: z2, z1, the logits, the reconstruction,
 * regulariser and evaluation log-ratio per image, the loss and every
 * gradient, on one thread and with the batch split over 3. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/model.h"

static void check_hvae(const char *name, int vamp_k, int threads)
{
    vae_error err;
    vae_config cfg;
    fixture_mlp_config(&cfg);
    cfg.model = VAE_MODEL_HVAE;
    cfg.latent1 = fixture_meta_int("latent1");
    cfg.vamp_k = vamp_k;
    int B = fixture_meta_int("batch");
    printf("%s prior, %d thread(s)\n", name, threads);
    vae_set_threads(threads);
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
    if (!m) return;
    vae__param_view v[VAE_MAX_TENSORS];
    int nv = fixture_load_case(m, name, v);
    char key[96];
    const float *x = fixture_get("x", 0);
    int d = cfg.latent, d1 = cfg.latent1, D = vae_model_input_size(m);
    vae__net *net = &m->net;
    // the noise rows [eps2 | eps1], as the step draws them
    snprintf(key, sizeof key, "%s.eps2", name);
    const float *e2 = fixture_get(key, (size_t)B * d);
    snprintf(key, sizeof key, "%s.eps1", name);
    const float *e1 = fixture_get(key, (size_t)B * d1);
    for (int b = 0; b < B; b++) {
        memcpy(net->noise + (size_t)b * (d + d1), e2 + (size_t)b * d, d * sizeof(float));
        memcpy(net->noise + (size_t)b * (d + d1) + d, e1 + (size_t)b * d1, d1 * sizeof(float));
    }
    vae_stats st = {0};
    CHECK_EQ(vae__model_step(m, x, NULL, B, 0, &st), VAE_OK);
    if (threads == 1) { // one slice: every activation is in m->net
        fixture_check_case("z2", net->z, name, "z2", d, 1e-5, 1e-5);
        fixture_check_case("z1", net->z1, name, "z1", d1, 1e-5, 1e-5);
        fixture_check_case("logits", net->act[net->n_layers - 1], name, "logits", D, 1e-5, 1e-5);
        fixture_check_case("rec (per image)", net->rec_img, name, "rec", 1, 1e-4, 1e-6);
        fixture_check_case("kl (per image)", net->kl_img, name, "kl", 1, 1e-4, 1e-5);
        // evaluation's log p(z1, z2) - log q(z1, z2 | x) of the same sample
        // (the step's own view of the net: it holds the VampPrior's components)
        const vae__net *wn = &m->workers[0].net;
        float lr[64];
        for (int b = 0; b < B && b < 64; b++)
            lr[b] = (float)vae__net_log_ratio(wn, wn->act[wn->k], b, 1);
        fixture_check_case("log-ratio (per image)", lr, name, "log_ratio", 1, 1e-4, 1e-5);
    }
    fixture_check_step(m, name, v, nv, &st, B);
    vae_model_free(m);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_hvae.safetensors");
    for (int threads = 1; threads <= 3; threads += 2) {
        check_hvae("standard", 0, threads);
        check_hvae("vamp", fixture_meta_int("vamp_k"), threads);
    }
    vae__st_free(fixture);
    return TEST_REPORT();
}
