#include <cblas.h>

/* LAPACK's symmetric eigensolver (divide and conquer), which OpenBLAS carries; its Fortran interface, the
   character arguments' hidden lengths last. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_length, size_t uplo_length);
