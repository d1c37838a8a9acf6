/* layers.c - linear and ReLU layers, forward and backward (float or double). */
#include <string.h>

#include <omp.h>

#include "internal.h"
#include "nn/layers.h"

void vae__linear_forward(real *out, const real *inp, const real *w, const real *b, int B, int IN,
                         int OUT)
{
    // inp is (B,IN), w is (OUT,IN), b is (OUT), out is (B,OUT)
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
    real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1, inp, IN, w, IN, 1, out, OUT);
}

void vae__linear_backward_data(real *dinp, const real *dout, const real *w, int B, int IN, int OUT)
{
    real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1, dout, OUT, w, IN, 0, dinp,
              IN);
}

/* db (o1-o0) = column sums o0..o1 of dout (B,OUT), in the batch's order. */
static void bias_grad(real *db, const real *dout, int B, int OUT, int o0, int o1)
{
    enum { CHUNK = 256 };
    for (int c = o0; c < o1; c += CHUNK) { // row by row: vectorised
        int n = o1 - c < CHUNK ? o1 - c : CHUNK;
        real s[CHUNK] = {0};
        for (int i = 0; i < B; i++)
            for (int j = 0; j < n; j++) s[j] += dout[(size_t)i * OUT + c + j];
        memcpy(db + c - o0, s, (size_t)n * sizeof *db);
    }
}

void vae__linear_backward_weights(real *dw, real *db, const real *dout, const real *inp, int B,
                                  int IN, int OUT, int o0, int o1)
{
    // dout is (B,OUT), inp (B,IN); dw is (o1-o0,IN) and db (o1-o0)
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, IN, B, 1, dout + o0, OUT, inp, IN,
              0, dw, IN);
    bias_grad(db, dout, B, OUT, o0, o1);
}

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* One slice's part of a weight gradient's work area (vae__wgrad), for rows = o1 - o0:
 * the product (rows, IN), the bias sums (rows) and the live units' indices
 * (rows). Two of them, then the gathered columns (B, 16-aligned rows). */
static size_t part_size(int IN, int rows)
{
    size_t r = (size_t)rows;
    return (round16(r * IN) + round16(r)) * sizeof(real) + round16(r) * sizeof(int);
}

size_t vae__wgrad_work(int B, int IN, int rows)
{
    return 2 * part_size(IN, rows) + (size_t)B * round16((size_t)rows) * sizeof(real);
}

/* The units o0..o1 whose dout column is not all zero on the slice (NaN
 * counts as live) into idx; returns their count. */
static int live_units(int *idx, const real *dout, int B, int OUT, int o0, int o1)
{
    int n = 0;
    for (int o = o0; o < o1; o++) {
        int i = 0;
        while (i < B && dout[(size_t)i * OUT + o] == 0) i++;
        if (i < B) idx[n++] = o;
    }
    return n;
}

/* One slice's gradient over rows o0..o1 into p, whose p->n live units are
 * known: the product of those, their dout columns gathered into cols when
 * some are dead. */
static void live_product(vae__wgrad_part *p, real *cols, const real *dout, const real *inp, int B,
                         int IN, int OUT, int o0, int o1)
{
    int rows = o1 - o0, n = p->n;
    if (n == rows) {
        vae__linear_backward_weights(p->prod, p->bias, dout, inp, B, IN, OUT, o0, o1);
        return;
    }
    // m product rows: the live columns, then zero columns up to a multiple of 4
    // (a few product shapes, each a cached kernel, instead of one per count)
    int m = (n + 3) / 4 * 4 < rows ? (n + 3) / 4 * 4 : rows, ld = (int)round16(rows);
    for (int i = 0; i < B; i++) {
        real *c = cols + (size_t)i * ld;
        for (int j = 0; j < n; j++) c[j] = dout[(size_t)i * OUT + p->idx[j]];
        for (int j = n; j < m; j++) c[j] = 0;
    }
    if (n > 0)
        real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, IN, B, 1, cols, ld, inp, IN, 0,
                  p->prod, IN);
    bias_grad(p->bias, dout, B, OUT, o0, o1);
}

/* d = a + b, n values, where a NULL a or b is a dead unit's zero row: d = a
 * as the first slice's product writes it, 0 + b as the dense sum adds it.
 * Returns the sum of d's squares. */
VAE_VECTOR_CLONES
static double combine_row(real *restrict d, const real *restrict a, const real *restrict b, int n)
{
    double s = 0;
    if (a && b) {
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) d[i] = a[i] + b[i], s += (double)d[i] * d[i];
    } else if (a) {
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) d[i] = a[i], s += (double)d[i] * d[i];
    } else if (b) {
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) d[i] = 0 + b[i], s += (double)d[i] * d[i];
    } else {
        memset(d, 0, (size_t)n * sizeof *d);
    }
    return s;
}

/* The live row of p for unit o, or NULL; *j walks p's units in order. */
static const real *row_of(const vae__wgrad_part *p, int *j, int o, int IN)
{
    if (p && *j < p->n && p->idx[*j] == o) return p->prod + (size_t)(*j)++ * IN;
    return NULL;
}

/* dw and db from the first slices' parts a and b (either may be NULL). */
static double combine(vae__wgrad *g, const vae__wgrad_part *a, const vae__wgrad_part *b)
{
    double ss = 0;
    for (int o = g->o0, ja = 0, jb = 0; o < g->o1; o++) {
        int r = o - g->o0;
        const real *ra = row_of(a, &ja, o, g->IN), *rb = row_of(b, &jb, o, g->IN);
        ss += combine_row(g->dw + (size_t)r * g->IN, ra, rb, g->IN);
        g->db[r] = a && b ? a->bias[r] + b->bias[r] : a ? a->bias[r] : 0;
    }
    return ss;
}

void vae__wgrad_begin(vae__wgrad *g, real *dw, real *db, int IN, int OUT, int o0, int o1,
                      int slices, void *work)
{
    int rows = o1 - o0;
    *g = (vae__wgrad){.dw = dw, .db = db, .IN = IN, .OUT = OUT, .o0 = o0, .o1 = o1,
                      .slices = slices};
    char *at = work;
    for (int k = 0; k < 2; k++, at += part_size(IN, rows)) {
        vae__wgrad_part *p = &g->part[k];
        p->prod = (real *)at;
        p->bias = p->prod + round16((size_t)rows * IN);
        p->idx = (int *)(p->bias + round16((size_t)rows));
    }
    g->cols = (real *)at;
}

void vae__wgrad_slice(vae__wgrad *g, const real *dout, const real *inp, int B)
{
    int rows = g->o1 - g->o0, IN = g->IN;
    vae__wgrad_part *p = &g->part[g->done == 1]; // a third slice and later: part[0] again
    p->n = live_units(p->idx, dout, B, g->OUT, g->o0, g->o1);
    if (g->slices == 1 && p->n == rows) { // the only slice, every unit live: in place
        vae__linear_backward_weights(g->dw, g->db, dout, inp, B, IN, g->OUT, g->o0, g->o1);
        g->ss = vae__sum_squares(g->dw, (size_t)rows * IN);
        g->done = -1; // nothing left for the finish but the bias's squares
        return;
    }
    live_product(p, g->cols, dout, inp, B, IN, g->OUT, g->o0, g->o1);
    if (g->done == 1) { // the first two slices: combined into dw
        g->ss = combine(g, &g->part[0], &g->part[1]);
    } else if (g->done > 1) { // later ones added to it
        vae__add_into(g->db, p->bias, (size_t)rows);
        for (int j = 0; j < p->n; j++)
            vae__add_into(g->dw + (size_t)(p->idx[j] - g->o0) * IN, p->prod + (size_t)j * IN,
                          (size_t)IN);
    }
    g->done++;
}

double vae__wgrad_finish(vae__wgrad *g)
{
    int rows = g->o1 - g->o0;
    if (g->done == 0 || g->done == 1) // no slice, or one with dead units
        g->ss = combine(g, g->done ? &g->part[0] : NULL, NULL);
    else if (g->done > 2)
        g->ss = vae__sum_squares(g->dw, (size_t)rows * g->IN);
    return g->ss + vae__sum_squares(g->db, (size_t)rows);
}

void vae__linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp,
                          const real *w, int B, int IN, int OUT)
{
    if (dinp) vae__linear_backward_data(dinp, dout, w, B, IN, OUT);
    vae__linear_backward_weights(dw, db, dout, inp, B, IN, OUT, 0, OUT);
}

int vae__serial_here(size_t n) { return omp_get_level() > 0 || n <= 65536; }

void vae__relu_forward(real *x, size_t n)
{
    if (vae__serial_here(n)) {
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void vae__relu_backward(real *dx, const real *out, size_t n)
{
    if (vae__serial_here(n)) {
        for (size_t i = 0; i < n; i++) dx[i] = out[i] > 0 ? dx[i] : 0;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = out[i] > 0 ? dx[i] : 0;
}

VAE_VECTOR_CLONES
double vae__sum_squares(const real *x, size_t n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

VAE_VECTOR_CLONES
void vae__add_into(real *restrict x, const real *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}
