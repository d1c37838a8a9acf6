/*
 * perceptual.h - the perceptual reconstruction term as a forward/backward
 * pair (float or double, real.h): weight * sum over the chosen layers l of
 * || phi_l(x) - phi_l(xhat) ||^2, phi_l the feature maps (after ReLU) of a
 * frozen scoring classifier (model/classifier.c's net: conv1 3x3 stride 1,
 * conv2 3x3 stride 2, fc1), x the target image and xhat the decoder's mean.
 * The backward pass gives the gradient at xhat only: the classifier's
 * weights are constants here, and x takes no gradient.
 */
#ifndef VAE_PERCEPTUAL_H
#define VAE_PERCEPTUAL_H

#include <stddef.h>

#include "nn/conv.h"
#include "nn/real.h"

/* The classifier's layers the term compares (bits of vae__percep.layers;
 * the public VAE_PERCEPTUAL_* have the same values). */
enum { VAE__PERC_CONV1 = 1, VAE__PERC_CONV2 = 2, VAE__PERC_FC1 = 4 };

/* The frozen classifier as the term sees it: shapes and weights (shared by
 * every thread, read only). g1: (C, H, W) -> (C1, H, W); g2: (C1, H, W) ->
 * (C2, H2, W2); fc1: F = C2 * H2 * W2 -> hidden. */
typedef struct vae__percep {
    vae__conv_geom g1, g2;
    int F, hidden;
    const real *w1, *b1, *w2, *b2, *w3, *b3; /* nn.Conv2d / nn.Linear layouts */
    unsigned layers;                         /* VAE__PERC_* */
    real weight;
} vae__percep;

/* The geometry of a classifier for C x H x W images with conv1, conv2 and
 * hidden units (the weights and layers are the caller's to set). */
void vae__percep_init(vae__percep *p, int C, int H, int W, int conv1, int conv2, int hidden);
/* Values of work one thread needs for up to `rows` images. */
size_t vae__percep_work_size(const vae__percep *p, int rows);
/* The term for B images x and xhat (B, C*H*W): adds each image's to
 * per_img[b] (may be NULL) and returns their sum; keeps both images'
 * features in work for the backward pass. */
double vae__percep_forward(const vae__percep *p, real *work, const real *x, const real *xhat,
                           int B, real *per_img);
/* dxhat (B, C*H*W) = scale * d/dxhat of the last forward's sum (written). */
void vae__percep_backward(const vae__percep *p, real *work, real *dxhat, int B, real scale);

#endif
