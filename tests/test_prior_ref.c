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
    vae_config cfg;
    fixture_mlp_config(&cfg);
    cfg.activation = cases[c].act;
    cfg.vamp_k = cases[c].vamp ? fixture_meta_int("vamp_k") : 0;
    cfg.flow = cases[c].flow;
    if (cfg.flow != VAE_FLOW_NONE) cfg.flow_steps = fixture_meta_int("flow_steps");
    printf("%s, %d thread(s)\n", cases[c].name, threads);
    fixture_check_mlp_step(&cfg, cases[c].name, threads, "z", "kl term (per image)");
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_prior.safetensors");
    for (int threads = 1; threads <= 3; threads += 2)
        for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) check_case(c, threads);
    vae__st_free(fixture);
    return TEST_REPORT();
}
