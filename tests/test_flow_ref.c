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
    vae_config cfg;
    fixture_mlp_config(&cfg);
    cfg.flow = flow;
    cfg.flow_steps = fixture_meta_int("flow_steps");
    printf("%s, %d step(s), %d thread(s)\n", name, cfg.flow_steps, threads);
    fixture_check_mlp_step(&cfg, name, threads, "z_T", "kl estimate (per image)");
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
