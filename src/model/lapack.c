/* lapack.c - symmetric eigenpairs by LAPACK's dsyevr (MRRR), from OpenBLAS. */
#include <stdlib.h>

#include "internal.h"
#include "model/lapack.h"

/* LAPACK's Fortran symbol, exported by OpenBLAS (Debian builds it with
 * LAPACK; LAPACKE is a separate package we do not need for one call).
 * gfortran passes the lengths of the three CHARACTER arguments as hidden
 * trailing size_t arguments; we pass them, as LAPACKE itself does. */
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
             const int *lda, const double *vl, const double *vu, const int *il, const int *iu,
             const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t range_len, size_t uplo_len);

int vae__sym_eigen(double *a, int n, int il, int iu, double *w, double *z, const char *what,
                   vae_error *err)
{
    // The row-major upper triangle is LAPACK's (column-major) lower one, and
    // LAPACK's column j of z (ldz = n) is row j in row-major order.
    const char *jobz = z ? "V" : "N";
    int m = 0, info = 0, lwork = -1, liwork = -1, iw_query, want = iu - il + 1;
    double vl = 0, vu = 0, abstol = 0, w_query, z_dummy = 0;
    int *isuppz = malloc((size_t)2 * (want > 0 ? want : 1) * sizeof *isuppz);
    double *work = NULL;
    int *iwork = NULL, rc = VAE_OK;
    if (!isuppz) return vae__error(err, VAE_ENOMEM, "%s: out of memory for the eigensolver", what);
    double *zz = z ? z : &z_dummy;
    dsyevr_(jobz, "I", "L", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, zz, &n, isuppz,
            &w_query, &lwork, &iw_query, &liwork, &info, 1, 1, 1);
    if (info == 0) {
        lwork = (int)w_query;
        liwork = iw_query;
        work = malloc((size_t)lwork * sizeof *work);
        iwork = malloc((size_t)liwork * sizeof *iwork);
        if (!work || !iwork) {
            rc = vae__error(err, VAE_ENOMEM, "%s: out of memory for the eigensolver (n = %d)", what,
                            n);
            goto done;
        }
        dsyevr_(jobz, "I", "L", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, zz, &n, isuppz,
                work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    }
    if (info != 0 || m != want)
        rc = vae__error(err, VAE_ENUMERIC,
                        "%s: the eigensolver failed (dsyevr info %d, %d of %d eigenvalues)", what,
                        info, m, want);
done:
    free(isuppz);
    free(work);
    free(iwork);
    return rc;
}
