/* vq.h - the VQ-VAE's part of the CLI: vae train's flags for it, the
 * codebook's health per epoch, and the prior's commands (vqprior.c). */
#ifndef VAE_TOOLS_VQ_H
#define VAE_TOOLS_VQ_H

#include <stddef.h>

#include "options.h"
#include "vae.h"

/* vae train's VQ-VAE options, keyed a .. a + 4 in this order (vq_take's which). */
#define VQ_TRAIN_OPTS(a, b, c, d, e)                                                              \
    {"--codebook", a, "K", "vqvae: codes in the codebook", NULL, "128"},                         \
    {"--code-dim", b, "D", "vqvae: dimension of a code (the encoder's channels\non the grid)",  \
     NULL, "16"},                                                                                \
    {"--commitment", c, "B", "vqvae: weight of the commitment loss\n||z_e - sg[e]||^2", NULL,   \
     "0.25"},                                                                                    \
    {"--codebook-update", d, "U", "vqvae: loss (the codebook loss through Adam) or\nema[:DECAY] " \
     "(moving averages)", NULL, "loss; ema: 0.99"},                                             \
    {"--restart-dead", e, "T", "vqvae: restart codes whose moving-average use\nfalls below T "    \
     "assignments per batch from random\nencoder outputs; 0 = off", NULL, "0"}

/* One of them into cfg (which: 0 --codebook .. 4 --restart-dead). */
void vq_take(vae_config *cfg, int which, const char *a);
/* The flags given (given[0..4]) belong to --model vqvae; a VQ-VAE is conv
 * (an explicit other --arch is refused) and its grid sets the latent. */
void vq_check_flags(vae_config *cfg, const char *given, int arch_given, int latent_given);
/* " | codes N/K" of the epoch so far (a VQ-VAE), else "". */
void vq_progress(vae_model *m, char *buf, size_t n);
/* At an epoch's end: ",\"codes_used\":N,\"perplexity\":P" for the metrics
 * log (a VQ-VAE, else ""), a line and (under 25% used) a warning on stderr
 * when loud; the counts start again. */
void vq_epoch_end(vae_model *m, int loud, char *json, size_t n);
/* Codes used (count > 0) and the perplexity exp(H) of the usage counts. */
int vq_health(const double *counts, int K, double *perplexity);

extern const cli_command prior_cmd, codes_cmd;
int cmd_prior(int argc, char **argv);
int cmd_codes(int argc, char **argv);
/* A VQ-VAE's prior: prior_path, or prior.safetensors beside the model; dies
 * with one line (cmd: the command's name) naming the file when there is none,
 * it cannot be loaded or it does not fit m. */
vae_prior *vq_prior_open(const char *cmd, const char *model_path, const char *prior_path,
                         const vae_model *m);
/* n images (n x pixels into out) decoded from code grids the prior draws at
 * the temperature, the draws seeded by seed (as vae sample draws them). It
 * leaves vae_set_threads at 1: the caller sets its own again. */
void vq_sample_images(vae_model *m, vae_prior *p, long n, unsigned long long seed,
                      double temperature, float *out);
/* vae sample and eval on a VQ-VAE: through its prior (vqprior.c). */
void vq_write_samples(vae_model *m, const char *model_path, const char *prior_path,
                      const char *png, int n, unsigned long long seed, double temperature,
                      int scale);
/* vae eval on a VQ-VAE: reconstruction MSE and PSNR of the n images x, and
 * the prior's NLL of their codes (prior_path, or the one beside the model
 * when there is one) in nats and bits per code cell. */
void vq_eval(vae_model *m, const char *model_path, const char *prior_path, const vae_dataset *ds,
             const float *x, long n, int json);

#endif
