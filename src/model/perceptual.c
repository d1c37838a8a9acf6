/* perceptual.c - the perceptual reconstruction term's place in a model
 * (vae_model_set_perceptual, vae/score.h): the frozen classifier seen as
 * nn/perceptual.c's vae__percep, and each training worker's work area. The
 * term is set on the step's workers' nets only (model/schedule.c), so each
 * thread runs it on its own slice with its own buffers, and evaluation,
 * which runs on the model's own net, stays the ELBO. */
#include <math.h>
#include <stdlib.h>

#include "model/model.h"
#include "model/schedule.h"

int vae_model_set_perceptual(vae_model *m, const vae_classifier *c, unsigned layers, float weight)
{
    if (!m) return VAE_EINVAL;
    vae__schedule_free(m); // the workers are made again, with or without the term
    free(m->percep);
    m->percep = NULL;
    if (!c) return VAE_OK;
    const vae_classifier_config *cc = vae_classifier_get_config(c);
    const vae_config *g = &m->cfg;
    if (cc->channels != g->channels || cc->height != g->height || cc->width != g->width)
        return vae__model_error(m, VAE_EINVAL, "perceptual term: the classifier reads %dx%dx%d "
                                "images, the model %dx%dx%d", cc->channels, cc->height,
                                cc->width, g->channels, g->height, g->width);
    if (!layers || layers & ~7u)
        return vae__model_error(m, VAE_EINVAL, "perceptual term: layers 0x%x: need some of "
                                "conv1, conv2, fc1 (bits 1, 2, 4)", layers);
    if (!(weight >= 0) || !isfinite(weight))
        return vae__model_error(m, VAE_EINVAL, "perceptual term: weight %g: need a finite "
                                "number >= 0", (double)weight);
    if (m->net.n_samples > 1)
        return vae__model_error(m, VAE_EINVAL, "perceptual term: an IWAE with k = %d scores %d "
                                "samples per image; it has no single mean image (use k = 1)",
                                m->net.n_samples, m->net.n_samples);
    vae__percep *p = malloc(sizeof *p);
    if (!p) return vae__model_error(m, VAE_ENOMEM, "out of memory for the perceptual term");
    vae__percep_init(p, cc->channels, cc->height, cc->width, cc->conv1, cc->conv2, cc->hidden);
    p->w1 = vae__classifier_tensor(c, 0), p->b1 = vae__classifier_tensor(c, 1);
    p->w2 = vae__classifier_tensor(c, 2), p->b2 = vae__classifier_tensor(c, 3);
    p->w3 = vae__classifier_tensor(c, 4), p->b3 = vae__classifier_tensor(c, 5);
    p->layers = layers;
    p->weight = weight;
    m->percep = p;
    return VAE_OK;
}

real *vae__percep_work_alloc(const vae_model *m, int rows)
{
    size_t n = 2 * (size_t)rows * m->net.D + vae__percep_work_size(m->percep, rows);
    return malloc(n * sizeof(real));
}
