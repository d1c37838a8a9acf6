/* lapack.h - the one LAPACK routine the library calls (dsyevr, symmetric
 * eigenpairs), behind a helper that does the workspace query: PCA, the
 * Fréchet distance's matrix square root and the ridge probe share it. */
#ifndef VAE_LAPACK_H
#define VAE_LAPACK_H

#include "vae.h"

/* Eigenvalues il..iu (1-based, ascending order; 1..n for all) of the n x n
 * symmetric matrix a (row-major, its upper triangle is read; destroyed) into
 * w (n values of room), their eigenvectors into z as rows in row-major
 * order (iu-il+1 rows of n; NULL: values only). `what` starts the error
 * message ("PCA"). VAE_ENOMEM, or VAE_ENUMERIC when the solver fails. */
int vae__sym_eigen(double *a, int n, int il, int iu, double *w, double *z, const char *what,
                   vae_error *err);

#endif
