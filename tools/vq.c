/* vq.c - the VQ-VAE's part of vae train: its flags and the codebook's health
 * (codes used, perplexity) per epoch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vq.h"

static const char *const vq_flags[] = {"--codebook", "--code-dim", "--commitment",
                                       "--codebook-update", "--restart-dead"};

void vq_take(vae_config *cfg, int which, const char *a)
{
    switch (which) {
    case 0: cfg->codebook = (int)parse_long("train", "--codebook", a, 2, 65536); break;
    case 1: cfg->code_dim = (int)parse_long("train", "--code-dim", a, 1, 4096); break;
    case 2: cfg->commitment = (float)parse_double("train", "--commitment", a, 0, 100); break;
    case 3:
        if (!strcmp(a, "loss")) cfg->codebook_update = VAE_CODEBOOK_LOSS;
        else if (!strcmp(a, "ema")) cfg->codebook_update = VAE_CODEBOOK_EMA;
        else if (!strncmp(a, "ema:", 4)) {
            cfg->codebook_update = VAE_CODEBOOK_EMA;
            cfg->ema_decay = (float)parse_double("train", "--codebook-update ema:DECAY", a + 4,
                                                 1e-6, 0.999999);
        } else
            usage_error("train", "--codebook-update expects loss, ema or ema:DECAY, not '%s'", a);
        break;
    default: cfg->restart_dead = (float)parse_double("train", "--restart-dead", a, 0, 1e9);
    }
}

void vq_check_flags(vae_config *cfg, const char *given, int arch_given, int latent_given)
{
    for (int i = 0; i < 5; i++)
        if (given[i] && cfg->model != VAE_MODEL_VQVAE)
            usage_error("train", "%s applies to --model vqvae only", vq_flags[i]);
    if (cfg->model != VAE_MODEL_VQVAE) return;
    if (arch_given && cfg->arch != VAE_ARCH_CONV)
        usage_error("train", "--model vqvae quantises a grid of conv features: it needs "
                             "--arch conv");
    if (latent_given)
        usage_error("train", "--latent does not apply to --model vqvae: the code grid sets it "
                             "(--code-dim values in each cell)");
    cfg->arch = VAE_ARCH_CONV;
}

int vq_health(const double *counts, int K, double *perplexity)
{
    double total = 0, h = 0;
    int used = 0;
    for (int k = 0; k < K; k++) total += counts[k], used += counts[k] > 0;
    for (int k = 0; k < K && total > 0; k++)
        if (counts[k] > 0) h -= counts[k] / total * log(counts[k] / total);
    *perplexity = exp(h);
    return used;
}

/* The usage counts of a VQ-VAE (NULL for other models; caller frees). */
static double *usage(vae_model *m, int reset)
{
    const vae_config *c = vae_model_config(m);
    if (c->model != VAE_MODEL_VQVAE) return NULL;
    double *counts = xmalloc((size_t)c->codebook * sizeof *counts);
    if (vae_model_vq_usage(m, counts, reset)) die("%s", vae_model_errmsg(m));
    return counts;
}

void vq_progress(vae_model *m, char *buf, size_t n)
{
    double *counts = usage(m, 0), pp;
    buf[0] = 0;
    if (!counts) return;
    int K = vae_model_config(m)->codebook;
    snprintf(buf, n, " | codes %d/%d", vq_health(counts, K, &pp), K);
    free(counts);
}

void vq_epoch_end(vae_model *m, int loud, char *json, size_t n)
{
    double *counts = usage(m, 1), pp;
    json[0] = 0;
    if (!counts) return;
    int K = vae_model_config(m)->codebook, used = vq_health(counts, K, &pp);
    snprintf(json, n, ",\"codes_used\":%d,\"perplexity\":%.4f", used, pp);
    if (loud) {
        fprintf(stderr, "codebook: %d of %d codes used this epoch, perplexity %.1f\n", used, K, pp);
        if (4 * used < K)
            fprintf(stderr, "warning: only %d of %d codes used (under 25%%): codebook collapse; "
                            "try --restart-dead 1, --codebook-update ema or a smaller "
                            "--codebook\n", used, K);
    }
    free(counts);
}
