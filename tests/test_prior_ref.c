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
    int nv = vae__model_tensors(m, v);
    char key[96], label[96];
    for (int i = 0; i < nv; i++) {
        snprintf(key, sizeof key, "%s.init.%.47s", name, v[i].name);
        memcpy(v[i].data, fixture_get(key, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
    }
    const float *x = fixture_get("x", 0);
    int d = cfg.latent, D = vae_model_input_size(m);
    vae__net *net = &m->net;
    snprintf(key, sizeof key, "%s.eps", name);
    memcpy(net->eps, fixture_get(key, (size_t)B * d), (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    CHECK_EQ(vae__model_step(m, x, NULL, B, 0, &st), VAE_OK);
    if (threads == 1) { // one slice: every activation is in m->net
        snprintf(key, sizeof key, "%s.z", name);
        fixture_check("z", net->z, key, d, 0, d, 1e-5, 1e-5);
        snprintf(key, sizeof key, "%s.logits", name);
        fixture_check("logits", net->act[net->n_layers - 1], key, D, 0, D, 1e-5, 1e-5);
        snprintf(key, sizeof key, "%s.rec", name);
        fixture_check("rec (per image)", net->rec_img, key, 1, 0, 1, 1e-4, 1e-6);
        snprintf(key, sizeof key, "%s.kl", name);
        fixture_check("kl term (per image)", net->kl_img, key, 1, 0, 1, 1e-4, 1e-5);
    }
    float loss = (float)(st.loss / B);
    snprintf(key, sizeof key, "%s.loss", name);
    fixture_check("loss", &loss, key, 1, 0, 1, 1e-4, 1e-6);
    for (int i = 0; i < nv; i++) {
        snprintf(key, sizeof key, "%s.grad.%.47s", name, v[i].name);
        snprintf(label, sizeof label, "grad.%.47s", v[i].name);
        size_t w = v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1;
        fixture_check(label, m->grads + (v[i].data - m->params), key, w, 0, w, 1e-5, 1e-4);
    }
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
