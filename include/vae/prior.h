/*
 * vae/prior.h - an autoregressive prior over a VQ-VAE's code grids (a
 * PixelCNN, van den Oord et al. 2016: masked convolutions over the grid in
 * raster order, a softmax over the K codes at each cell), so that a VQ-VAE
 * can sample: codes from the prior, images from the VQ-VAE's decoder.
 *
 *     vae_prior_config pc;
 *     vae_prior_config_default(&pc, vae_model_config(vq));   // K and the grid
 *     vae_prior *p;
 *     vae_prior_create(&pc, 128, 1, &p, &err);
 *     vae_model_vq_codes(vq, x, 128, codes);                 // 128 x grid cells
 *     vae_prior_train_step(p, codes, 128, &nll);
 *     vae_prior_sample(p, 16, 1.0f, &rng, codes);            // then vae_model_vq_decode
 */
#ifndef VAE_API_PRIOR_H
#define VAE_API_PRIOR_H

#include "core.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vae_prior_config {
    int codebook;          /* K: codes per cell (2..65536) */
    int grid_h, grid_w;    /* the code grid (1..64 each) */
    int embed;             /* each code's learned embedding, the first layer's input (1..256) */
    int channels;          /* of the hidden masked convolutions (1..1024) */
    int layers;            /* 3x3 mask-B convolutions after the 5x5 mask-A one (0..32); gated:
                              gated layers, the first 5x5 mask A, the rest 3x3 mask B (1..8) */
    int gated;             /* 0: the plain PixelCNN; 1: the gated one (van den Oord et al.
                              2016: vertical and horizontal stacks, tanh x sigmoid gates) */
} vae_prior_config;

/* K and the grid of a VQ-VAE's configuration; embedding 32, 64 channels, 4
 * layers, plain. */
VAE_API void vae_prior_config_default(vae_prior_config *pc, const vae_config *vq);

typedef struct vae_prior vae_prior;

/* Weights as PyTorch's nn.Conv2d starts them (the masked taps zero),
 * embeddings N(0, 1), from seed; Adam (vae_adam_default); batches up to
 * max_batch grids. */
VAE_API int vae_prior_create(const vae_prior_config *pc, int max_batch, uint64_t seed,
                             vae_prior **out, vae_error *err);
VAE_API void vae_prior_free(vae_prior *p);
VAE_API const char *vae_prior_errmsg(const vae_prior *p);
VAE_API const vae_prior_config *vae_prior_get_config(const vae_prior *p);
VAE_API size_t vae_prior_num_params(const vae_prior *p);
VAE_API void vae_prior_set_adam(vae_prior *p, const vae_adam *a);

/* One Adam step on B grids of codes (B x cells, each 0..K-1, B <= max_batch)
 * for the mean per-grid negative log-likelihood; *nll (may be NULL) gets
 * the batch's sum in nats. VAE_ENUMERIC leaves the weights unchanged. */
VAE_API int vae_prior_train_step(vae_prior *p, const int32_t *codes, int B, double *nll);
/* -log p(codes) in nats of each of B grids (any B) into nll (B). */
VAE_API int vae_prior_nll(vae_prior *p, const int32_t *codes, int B, double *nll);
/* n grids drawn cell by cell in raster order from softmax(logits / T),
 * T > 0 (1: the model; lower: sharper). */
VAE_API int vae_prior_sample(vae_prior *p, int n, float temperature, vae_rng *rng,
                             int32_t *codes);

/* safetensors: the weights (embed.weight, conv.i.weight/bias; gated:
 * gated.i.{v,h,v2h,res}.weight/bias and out.{0,1}.weight/bias) and the
 * configuration in __metadata__ (format vae-prior), plus the given metadata
 * (NULL-terminated key, value list; may be NULL). Atomic. */
VAE_API int vae_prior_save(vae_prior *p, const char *path, const char *const *meta);
VAE_API int vae_prior_load(const char *path, int max_batch, vae_prior **out, vae_error *err);
/* Metadata value from the loaded file, or NULL. */
VAE_API const char *vae_prior_meta(const vae_prior *p, const char *key);

#ifdef __cplusplus
}
#endif
#endif /* VAE_API_PRIOR_H */
