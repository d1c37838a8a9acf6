/*
 * flow.h - normalising flows in the posterior, each step a forward/backward
 * pair (float or double, real.h): z_0 ~ q_0(z|x), z_t = f_t(z_{t-1}), and
 * log q_T(z_T|x) = log q_0(z_0|x) - sum_t log|det df_t/dz|.
 *
 * The flows are amortised (Rezende & Mohamed 2015; van den Berg et al. 2018):
 * every image's step parameters come from the encoder's head, after its
 * [mu | logvar]. Row r of z (R rows, K per image) uses the parameters of
 * image r / K, found at p + (r / K) * ps; step t's start t * P values later
 * (P = vae__flow_step_params).
 *
 *   planar:      f(z) = z + u^ tanh(w.z + b), parameters [u | w | b] (2d + 1),
 *                u^ = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a),
 *                so that w.u^ >= -1 and f is invertible;
 *                log|det| = log|1 + (1 - tanh^2) w.u^|.
 *   householder: f(z) = (I - 2 v v^T / |v|^2) z, parameters v (d); a
 *                reflection: log|det| = 0 (Tomczak & Welling 2016).
 */
#ifndef VAE_FLOW_H
#define VAE_FLOW_H

#include "nn/real.h"

/* Parameters of one step of flow `type` (vae_flow) in d dimensions. */
int vae__flow_step_params(int type, int d);

/* T steps: zs[0] (R,d) given, zs[1..T] written; ld (R) = sum_t log|det|. */
void vae__flow_forward(int type, int T, real *const *zs, real *ld, const real *p, int ps, int R,
                       int K, int d);

/* The gradient of L + c * sum_r ld_r: g (R,d) holds dL/dz_T on entry and
 * dL/dz_0 on return; dp (each image's parameters, stride ps as p) is
 * written, summed over the image's K rows. zs as the forward pass left it. */
void vae__flow_backward(int type, int T, real *g, real *dp, const real *const *zs, const real *p,
                        int ps, real c, int R, int K, int d);

#endif
