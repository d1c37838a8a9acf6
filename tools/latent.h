/* latent.h - latent-space arithmetic behind the picture commands: the
 * inverse normal CDF, the order by KL, paths between codes and the
 * codes' two principal components. Pure functions (tested by tests/test_latent.c). */
#ifndef VAE_LATENT_H
#define VAE_LATENT_H

#include "vae.h"

/* Phi^-1(p), the standard normal quantile: Acklam's rational approximation
 * refined by one Halley step on erfc, so about full double precision.
 * -inf for p = 0, +inf for p = 1, NaN outside [0, 1]. */
double norm_quantile(double p);

/* Order of the d dimensions by kl, largest first (ties by index). */
void order_by_kl(const double *kl, int d, int *order);

/* z = the point at t in [0,1] on the path from a to b: linear, or
 * spherical (slerp: sin((1-t)W)/sin W a + sin(tW)/sin W b, W the angle
 * between a and b; linear where the angle is too small to divide by). */
void path_point(const float *a, const float *b, int d, double t, int slerp, float *z);

/* Projects n points (rows of x, n x d, d >= 2) onto their two principal
 * components with the library's PCA (vae_pca_fit): out is n x 2,
 * explained[0..1] the fraction of the total variance each component holds;
 * each component's largest entry is positive. Returns VAE_OK, VAE_EINVAL
 * (n < 2 or d < 2) or the library's error. */
int pca2(const float *x, long n, int d, double *out, double explained[2]);

#endif
