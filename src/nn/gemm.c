/* gemm.c - the float matrix products of the compute core. Inside our
 * parallel regions, where each thread runs its own single-threaded products
 * (training, evaluation), oneDNN's matmul primitives: JIT kernels for exactly
 * these shapes, cached per thread and shape. Outside them (one-off products
 * such as vae_model_decode for `vae sample`), and for anything oneDNN cannot do or
 * when it is absent, OpenBLAS's sgemm, which threads a product over the team
 * and starts without oneDNN's JIT cost (about 15 ms at the first product). */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "nn/real.h"

#ifdef VAE_HAVE_DNNL
#include <threads.h>

#include <dnnl.h>

/* A primitive for one shape and layout, with memory objects whose data
 * pointers are set at each call. p == NULL: oneDNN refused it. A training
 * thread meets a few dozen shapes (the live-unit weight gradients of
 * vae__wgrad_slice add up to a dozen per layer); the cache holds
 * them all, so no kernel is built twice. */
enum { KEY = 9, CACHE = 128 };

typedef struct gemm_entry {
    int key[KEY]; /* ta, tb, M, N, K, lda, ldb, ldc, accumulate */
    dnnl_primitive_t p;
    dnnl_memory_t a, b, c;
} gemm_entry;

/* A thread's primitives and stream, freed when the thread ends. */
typedef struct gemm_cache {
    gemm_entry e[CACHE];
    int n, next;
    dnnl_stream_t stream;
} gemm_cache;

static dnnl_engine_t engine;
static int use_dnnl;
static once_flag engine_once = ONCE_FLAG_INIT;
static tss_t cache_key;

/* Destroys e's oneDNN objects (its key stays). */
static void entry_release(gemm_entry *e)
{
    if (e->p) dnnl_primitive_destroy(e->p);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    e->p = NULL, e->a = e->b = e->c = NULL;
}

static void cache_free(void *p)
{
    gemm_cache *c = p;
    for (int i = 0; i < c->n; i++) entry_release(&c->e[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c);
}

static void engine_init(void)
{
    const char *env = getenv("VAE_GEMM"); // "blas": OpenBLAS only (benchmarks, debugging)
    use_dnnl = !(env && !strcmp(env, "blas")) &&
               tss_create(&cache_key, cache_free) == thrd_success &&
               dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success;
}

/* The (row-major) matrix desc of a rows x cols operand, transposed or not. */
static int desc(dnnl_memory_desc_t *md, int rows, int cols, int trans, int ld)
{
    dnnl_dims_t dims = {rows, cols}, strides = {trans ? 1 : ld, trans ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides) != dnnl_success;
}

/* Builds e's primitive; leaves e->p NULL when oneDNN refuses. */
static void entry_build(gemm_entry *e, int ta, int tb, int M, int N, int K, int lda, int ldb,
                        int ldc, int accumulate)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t mm;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (desc(&a, M, K, ta, lda) || desc(&b, K, N, tb, ldb) || desc(&c, M, N, 0, ldc) ||
        dnnl_matmul_desc_init(&mm, &a, &b, NULL, &c) || dnnl_primitive_attr_create(&attr))
        return;
    int ok = 1;
    if (accumulate) // C += A B: the sum post-op
        ok = !dnnl_post_ops_create(&po) && !dnnl_post_ops_append_sum(po, 1.0f) &&
             !dnnl_primitive_attr_set_post_ops(attr, po);
    ok = ok && !dnnl_primitive_desc_create(&pd, &mm, attr, engine, NULL) &&
         !dnnl_primitive_create(&e->p, pd) &&
         !dnnl_memory_create(&e->a, &a, engine, DNNL_MEMORY_NONE) &&
         !dnnl_memory_create(&e->b, &b, engine, DNNL_MEMORY_NONE) &&
         !dnnl_memory_create(&e->c, &c, engine, DNNL_MEMORY_NONE);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (!ok) entry_release(e); // remembered as refused
}

/* C = A B (+ C when accumulate) with the cache's primitive for the shape,
 * built at its first use; 0 when done. */
static int cached_gemm(gemm_cache *cache, int ta, int tb, int M, int N, int K, const float *A,
                       int lda, const float *B, int ldb, int accumulate, float *C, int ldc)
{
    int key[KEY] = {ta, tb, M, N, K, lda, ldb, ldc, accumulate};
    gemm_entry *e = NULL;
    for (int i = 0; i < cache->n && !e; i++)
        if (!memcmp(cache->e[i].key, key, sizeof key)) e = &cache->e[i];
    if (!e) { // a new shape: the oldest entry makes room when the cache is full
        e = &cache->e[cache->n < CACHE ? cache->n++ : cache->next];
        if (cache->n == CACHE) cache->next = (cache->next + 1) % CACHE;
        entry_release(e);
        memcpy(e->key, key, sizeof key);
        entry_build(e, ta, tb, M, N, K, lda, ldb, ldc, accumulate);
    }
    if (!e->p) return -1;
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    if (dnnl_memory_set_data_handle(e->a, (void *)A) ||
        dnnl_memory_set_data_handle(e->b, (void *)B) || dnnl_memory_set_data_handle(e->c, C) ||
        dnnl_primitive_execute(e->p, cache->stream, 3, args) || dnnl_stream_wait(cache->stream))
        return -1;
    return 0;
}

/* C = A B (+ C when accumulate) through oneDNN, on this thread alone; 0 when
 * done. oneDNN takes its thread count from omp_get_max_threads, when it
 * builds a primitive and, for its gemm:jit kernels, again at each call: it
 * is 1 for both. A slice of a batch then gets the same kernel and the same
 * split of the work, and so the same bits, in a team of any size and in any
 * process of a data-parallel run (tests/test_shard.c, tests/test_mpi.sh). */
static int onednn_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, int accumulate, float *C, int ldc)
{
    call_once(&engine_once, engine_init);
    if (!use_dnnl) return -1;
    gemm_cache *cache = tss_get(cache_key);
    if (!cache) {
        if (!(cache = calloc(1, sizeof *cache))) return -1;
        if (dnnl_stream_create(&cache->stream, engine, dnnl_stream_default_flags) ||
            tss_set(cache_key, cache) != thrd_success) {
            cache->stream = NULL;
            cache_free(cache);
            return -1;
        }
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    int rc = cached_gemm(cache, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
    omp_set_num_threads(saved);
    return rc;
}
#endif

void vae__sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                int ldc)
{
#ifdef VAE_HAVE_DNNL
    // inside a parallel region, what the compute core asks for: row-major,
    // alpha 1, beta 0 or 1 (a team of one counts: the same bits as in any team)
    if (omp_get_level() > 0 && order == CblasRowMajor && alpha == 1 && (beta == 0 || beta == 1) &&
        M > 0 && N > 0 && K > 0 &&
        !onednn_gemm(ta == CblasTrans, tb == CblasTrans, M, N, K, A, lda, B, ldb, beta == 1, C, ldc))
        return;
#endif
    cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
