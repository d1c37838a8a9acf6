/* test_prior_ref.c - the gated dense layers (--activation gated) and the
 * VampPrior (--prior vamp:K), alone, together and with a planar flow, against
 * the PyTorch fixture written by scripts/make_prior_ref.py: z, the logits,
 * the reconstruction and KL term per image, the loss and every gradient (the
 * pseudo-inputs' included), on one thread and with the batch split over 3. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/model.h"

/* make_prior_ref.py's CASES */
static const struct {
    const char *name;
    vae_activation act;
    int vamp;
    vae_flow flow;
} cases[] = {
    {"gated", VAE_ACT_GATED, 0, VAE_FLOW_NONE},
    {"vamp", VAE_ACT_RELU, 1, VAE_FLOW_NONE},
    {"gated_vamp", VAE_ACT_GATED, 1, VAE_FLOW_NONE},
    {"vamp_planar", VAE_ACT_RELU, 1, VAE_FLOW_PLANAR},
};

static void check_case(int c, int threads)
{
    const char *name = cases[c].name;
    vae_error err;
    vae_config cfg;
    fixture_mlp_config(&cfg);
    cfg.activation = cases[c].act;
    cfg.vamp_k = cases[c].vamp ? fixture_meta_int("vamp_k") : 0;
    cfg.flow = cases[c].flow;
    if (cfg.flow != VAE_FLOW_NONE) cfg.flow_steps = fixture_meta_int("flow_steps");
    int B = fixture_meta_int("batch");
    printf("%s, %d thread(s)\n", name, threads);
    vae_set_threads(threads);
    vae_model *m;
    CHECK_EQ(vae_model_create(&cfg, B, 0, &m, &err), VAE_OK);
    if (!m) return;
    vae__param_view v[VAE_MAX_TENSORS];
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
        fixture_check_case("z", net->z, name, "z", d, 1e-5, 1e-5);
        fixture_check_case("logits", net->act[net->n_layers - 1], name, "logits", D, 1e-5, 1e-5);
        fixture_check_case("rec (per image)", net->rec_img, name, "rec", 1, 1e-4, 1e-6);
        fixture_check_case("kl term (per image)", net->kl_img, name, "kl", 1, 1e-4, 1e-5);
    }
    fixture_check_step(m, name, v, nv, &st, B);
    vae_model_free(m);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_prior.safetensors");
    for (int threads = 1; threads <= 3; threads += 2)
        for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) check_case(c, threads);
    vae__st_free(fixture);
    return TEST_REPORT();
}
