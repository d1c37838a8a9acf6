/* mpi_allreduce.c - time of one in-place MPI_Allreduce (float sum) of the
 * size of a model's flat gradient, the communication of one data-parallel
 * training step. Run under mpirun; rank 0 prints the median over the runs.
 *
 *   mpirun -np 2 build/mpi_allreduce [FLOATS (652824: the default model)] [RUNS (200)]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 652824, runs = argc > 2 ? atol(argv[2]) : 200;
    if (n < 1 || n > (1L << 30) || runs < 1 || runs > 1000000) {
        if (rank == 0) fprintf(stderr, "usage: mpi_allreduce [FLOATS] [RUNS]\n");
        MPI_Finalize();
        return 2;
    }
    float *buf = malloc((size_t)n * sizeof *buf);
    double *t = malloc((size_t)runs * sizeof *t);
    if (!buf || !t) MPI_Abort(MPI_COMM_WORLD, 1);
    // small values: the sums stay finite however many runs
    for (long i = 0; i < n; i++) buf[i] = 1e-30f * (float)(i % 7);
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); // warm-up
    for (long r = 0; r < runs; r++) {
        MPI_Barrier(MPI_COMM_WORLD); // time the transfer, not a late rank
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    if (rank == 0)
        printf("%d ranks: MPI_Allreduce of %ld floats (%.2f MB): median %.3f ms, best %.3f ms "
               "over %ld runs\n", size, n, n * 4 / 1e6, 1e3 * t[runs / 2], 1e3 * t[0], runs);
    free(buf);
    free(t);
    MPI_Finalize();
    return 0;
}
