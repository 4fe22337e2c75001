/*
 * matmul.c - the matmul context: activation conversion, work split over
 * the thread pool, and the choice between the decode, small-batch and
 * prefill kernels (design in matmul.h, kernel interface in
 * matmul_kernels.h).
 */
#include "matmul.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "matmul_kernels.h"
#include "quant.h"
#include "tensor_type.h"

/* Which kernel family runs a call (matmul.h): the tier's one-token kernel
 * of the type where it has one, decode dots for one token (or every call
 * on a tier without the others), the small-batch kernel for a few tokens,
 * the prefill kernel from prefill_min_tokens on. */
typedef enum mm_path { MM_PATH_DECODE, MM_PATH_DOT, MM_PATH_BATCH, MM_PATH_PREFILL } mm_path;

static mm_path path_for(const mm_kernels *k, uint32_t type, size_t n_tok)
{
    if (k->prefill && n_tok >= k->prefill_min_tokens)
        return MM_PATH_PREFILL;
    if (k->batch[type].fn && n_tok >= k->batch[type].min_tokens)
        return MM_PATH_BATCH;
    if (n_tok == 1 && k->decode[type])
        return MM_PATH_DECODE;
    return MM_PATH_DOT;
}

/* Below this many activation values a call converts them on the calling
 * thread: waking the pool costs more than the work. */
#define MM_PARALLEL_PREP_MIN (64u * 1024u)

struct matmul_ctx {
    cpu_isa isa;
    const mm_kernels *k;
    thread_pool *tp; /* borrowed; NULL: the caller works alone */
    int n_threads;
    size_t max_tokens, max_n_in;

    /* Converted activations, [max_tokens][max_n_in] of the largest format
     * (f32); the formats of one call share it. */
    uint8_t *act;
    size_t act_bytes;
    /* Per-thread kernel scratch, scratch_bytes each. */
    uint8_t *scratch;
    size_t scratch_bytes;
};

static size_t round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

static const mm_kernels *kernels_for(cpu_isa isa)
{
    switch (isa) {
    case CPU_ISA_AVX2:
        return mm_kernels_avx2();
    case CPU_ISA_AVX512:
        return mm_kernels_avx512();
    default:
        return mm_kernels_portable();
    }
}

/* ================================================================ public: setup */

sem_status matmul_weight_check(const matmul_weight *w, sem_err *err)
{
    if (!tensor_type_supported(w->type)) {
        const char *name = tensor_type_name(w->type);
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "matmul weight type %s (id %u) is not supported; supported: F32, "
                           "F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K",
                           name ? name : "unknown", w->type);
    }
    uint32_t bs = tensor_type_block_size(w->type);
    if (w->n_in == 0 || w->n_in % bs)
        return sem_err_set(err, SEM_EINVAL,
                           "matmul weight n_in %llu must be a positive multiple of the %s "
                           "block size %u",
                           (unsigned long long)w->n_in, tensor_type_name(w->type), bs);
    if (w->n_out == 0)
        return sem_err_set(err, SEM_EINVAL, "matmul weight n_out is 0");
    if (!w->data)
        return sem_err_set(err, SEM_EINVAL, "matmul weight data is NULL");
    size_t need = tensor_type_row_bytes(w->type, w->n_in);
    if (w->row_bytes < need)
        return sem_err_set(err, SEM_EINVAL,
                           "matmul weight row_bytes %zu is less than the %zu bytes of a row of "
                           "%llu %s values",
                           w->row_bytes, need, (unsigned long long)w->n_in,
                           tensor_type_name(w->type));
    return SEM_OK;
}

matmul_ctx *matmul_ctx_create(cpu_isa isa, size_t max_tokens, size_t max_n_in, thread_pool *tp,
                              sem_err *err)
{
    if (cpu_isa_check(isa, err) != SEM_OK) {
        sem_err_wrap(err, "matmul context");
        return NULL;
    }
    if (max_tokens == 0 || max_n_in == 0) {
        sem_err_set(err, SEM_EINVAL, "matmul context: max_tokens (%zu) and max_n_in (%zu) must "
                    "be positive", max_tokens, max_n_in);
        return NULL;
    }
    matmul_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        sem_err_set(err, SEM_ENOMEM, "matmul context: out of memory");
        return NULL;
    }
    ctx->isa = isa;
    ctx->k = kernels_for(isa);
    ctx->tp = tp;
    ctx->n_threads = tp ? thread_pool_size(tp) : 1;
    ctx->max_tokens = max_tokens;
    ctx->max_n_in = max_n_in;
    /* f32 takes 4 bytes per value. Quantized formats take 1 + 1/8 + 1/8
     * with their scales and sums, plus the re-layout of one kernel: Q4_0's
     * x4 order (1 + 1/8) or the small-batch records (1 + 1/2 per value of
     * a whole group, 1024 at most), or the prefill units (1/4); see
     * act_layout. 64-byte rounding of each array adds at most 512 bytes. */
    ctx->act_bytes = round_up(max_tokens * round_up(max_n_in, 1024) * 4 + 4096, 64);
    ctx->act = aligned_alloc(64, ctx->act_bytes);
    ctx->scratch_bytes = round_up(mm_scratch_bytes(max_tokens), 64);
    ctx->scratch = aligned_alloc(64, (size_t)ctx->n_threads * ctx->scratch_bytes);
    if (!ctx->act || !ctx->scratch) {
        sem_err_set(err, SEM_ENOMEM,
                    "matmul context: cannot allocate scratch for %zu tokens x %zu inputs "
                    "(%zu MiB)",
                    max_tokens, max_n_in, ctx->act_bytes >> 20);
        matmul_ctx_destroy(ctx);
        return NULL;
    }
    return ctx;
}

void matmul_ctx_destroy(matmul_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->act);
    free(ctx->scratch);
    free(ctx);
}

cpu_isa matmul_ctx_isa(const matmul_ctx *ctx)
{
    return ctx->isa;
}

void matmul_weight_row(const matmul_weight *w, uint64_t row, float *dst)
{
    assert(row < w->n_out);
    const uint8_t *src = (const uint8_t *)w->data + row * w->row_bytes;
    quant_dequantize_row_unchecked(w->type, src, dst, w->n_in);
}

/* ================================================================ activations */

/* The arena arrays of one call, writable: conversion fills them, then the
 * kernels read them through the const pointers of mm_act. Shapes as in
 * mm_act; which are set depends on the format. */
typedef struct act_buffers {
    float *f;
    uint16_t *h;
    int8_t *q;
    float *d;
    int32_t *sum32;
    int16_t *bsums;
    float *du, *ds;
    size_t unit; /* values per prefill unit, when du/ds are set */
    int8_t *qx;
    int32_t *qx_init;
    uint8_t *bx;   /* small-batch records */
    uint32_t type; /* the weight type */
} act_buffers;

/* Lays out the arrays of w's activation format in the context's arena. */
static void act_layout(matmul_ctx *ctx, const matmul_weight *w, const float *x, size_t n_tok,
                       mm_path path, mm_act *a, act_buffers *b)
{
    size_t n = (size_t)w->n_in;
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    b->type = w->type;
    a->format = mm_act_format_of(w->type);
    a->n_tok = n_tok;
    a->n_in = n;
    uint8_t *p = ctx->act;
    switch (a->format) {
    case MM_ACT_F32:
        a->f = x; /* used as given */
        return;
    case MM_ACT_F16:
        a->f = b->f = (float *)p;
        return;
    case MM_ACT_BF16:
        a->h = b->h = (uint16_t *)p;
        return;
    case MM_ACT_Q8_0:
    case MM_ACT_Q8_K:
        break;
    }
    size_t off = round_up(n_tok * n, 64); /* quants */
    a->q = b->q = (int8_t *)p;
    a->d = b->d = (float *)(p + off);
    off += round_up(n_tok * (n / 32) * sizeof(float), 64);
    if (a->format == MM_ACT_Q8_0)
        a->sum32 = b->sum32 = (int32_t *)(p + off);
    else
        a->bsums = b->bsums = (int16_t *)(p + off);
    off += round_up(n_tok * (n / 16) * sizeof(int16_t), 64); /* = n/32 int32 */
    if (path == MM_PATH_DOT && w->type == TENSOR_Q4_0 && ctx->k->q4_0_x4) {
        a->qx = b->qx = (int8_t *)(p + off);
        off += round_up(n_tok * n, 64);
        a->qx_init = b->qx_init = (int32_t *)(p + off);
        return;
    }
    if (path == MM_PATH_BATCH) {
        a->bx = b->bx = p + off;
        return;
    }
    if (path != MM_PATH_PREFILL)
        return;
    b->unit = mm_prefill_unit(w->type);
    size_t units = n / b->unit;
    a->du = b->du = (float *)(p + off);
    off += round_up(n_tok * units * sizeof(float), 64);
    a->ds = b->ds = (float *)(p + off);
}

/* The scale and quant sum of unit u of token t (prefill units). */
static void unit_scale_sum(const mm_act *a, size_t unit, size_t t, size_t u, float *scale,
                           int32_t *sum)
{
    size_t n = a->n_in;
    if (a->format == MM_ACT_Q8_0) { /* unit is 32 */
        *scale = a->d[t * (n / 32) + u];
        *sum = a->sum32[t * (n / 32) + u];
        return;
    }
    const int16_t *bs = a->bsums + t * (n / 16);
    *scale = a->d[t * (n / 256) + u * unit / 256];
    *sum = unit == 16 ? bs[u] : bs[2 * u] + bs[2 * u + 1];
}

/* Token t's whole groups of 4 Q8_0 blocks in the Q4_0 x4 order (mm_act). */
static void relayout_q4_0_x4(const mm_act *a, const act_buffers *b, size_t t)
{
    size_t n = a->n_in, groups = n / 128;
    const int8_t *q = a->q + t * n;
    const int32_t *sum = a->sum32 + t * (n / 32);
    for (size_t g = 0; g < groups; g++) {
        int8_t *qx = b->qx + t * groups * 128 + 128 * g;
        int32_t *init = b->qx_init + (t * groups + g) * 16;
        memset(init, 0, 16 * sizeof *init);
        for (size_t j = 0; j < 4; j++) {
            memcpy(qx + 16 * j, q + 128 * g + 32 * j, 16);
            memcpy(qx + 64 + 16 * j, q + 128 * g + 32 * j + 16, 16);
            init[4 * j] = -8 * sum[4 * g + j];
        }
    }
}

/* Converts token t into the call's format (and its per-unit arrays). */
static void convert_token(const mm_kernels *k, const mm_act *a, const act_buffers *b,
                          const float *x, size_t t)
{
    size_t n = a->n_in;
    const float *xt = x + t * n;
    switch (a->format) {
    case MM_ACT_F32:
        return;
    case MM_ACT_F16:
        k->round_f16(xt, n, b->f + t * n);
        return;
    case MM_ACT_BF16:
        k->round_bf16(xt, n, b->h + t * n);
        return;
    case MM_ACT_Q8_0:
        k->quant_q8_0(xt, n, b->q + t * n, b->d + t * (n / 32), b->sum32 + t * (n / 32));
        if (b->qx)
            relayout_q4_0_x4(a, b, t);
        break;
    case MM_ACT_Q8_K:
        k->quant_q8_K(xt, n, b->q + t * n, b->d + t * (n / 256), b->bsums + t * (n / 16));
        break;
    }
    if (b->bx)
        k->batch_act(b->type, a, t, b->bx);
    if (!b->du)
        return;
    size_t units = n / b->unit;
    for (size_t u = 0; u < units; u++) {
        float scale;
        int32_t sum;
        unit_scale_sum(a, b->unit, t, u, &scale, &sum);
        b->du[t * units + u] = scale;
        b->ds[t * units + u] = scale * (float)sum;
    }
}

typedef struct prep_job {
    const mm_kernels *k;
    const mm_act *a;
    const act_buffers *b;
    const float *x;
} prep_job;

/* Thread ith converts an equal share of the tokens. */
static void prep_worker(void *arg, int ith, int nth)
{
    const prep_job *j = arg;
    size_t n_tok = j->a->n_tok;
    size_t t0 = n_tok * (size_t)ith / (size_t)nth, t1 = n_tok * ((size_t)ith + 1) / (size_t)nth;
    for (size_t t = t0; t < t1; t++)
        convert_token(j->k, j->a, j->b, j->x, t);
}

/* ================================================================ compute */

typedef struct compute_job {
    const mm_kernels *k;
    const matmul_weight *w;
    const mm_act *a;
    float *y;
    size_t ld_y;
    mm_path path;
    size_t chunk_rows;
    uint8_t *scratch; /* [n_threads][scratch_bytes] */
    size_t scratch_bytes;
    _Atomic size_t next_row;
} compute_job;

/* How far ahead of the row being computed decode prefetches, in bytes.
 * Without it the AVX2 decode spent two thirds of its time waiting on its
 * weight loads although it streams them in order: its dot kernels run
 * about 20 instructions per 18-byte Q4_0 block, so the out-of-order
 * window holds too few cache lines in flight for the DRAM latency.
 * Prefetching a few KiB ahead gave AVX2 decode 1.3-1.9x and AVX-512 a few
 * percent (docs/performance.md, "llama.cpp on this machine"); from 4 to
 * 64 KiB ahead measured the same. */
#ifndef PF_BYTES
#define PF_BYTES (4u * 1024u)
#endif

static inline void prefetch_row(const uint8_t *p, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(p + o, 0, 3);
}

/* Decode kernel over rows [r0, r1): token tiles outside, rows inside, so a
 * tile's activations stay in L1 while the chunk's rows stream past. */
static void decode_rows(const compute_job *j, size_t r0, size_t r1)
{
    const uint8_t *data = j->w->data;
    mm_dot_fn dot = j->k->dot[j->w->type];
    size_t n_tok = j->a->n_tok, rb = j->w->row_bytes;
    size_t ahead = PF_BYTES / rb ? PF_BYTES / rb : 1;
    for (size_t t0 = 0; t0 < n_tok; t0 += MM_MAX_NT) {
        size_t nt = n_tok - t0 < MM_MAX_NT ? n_tok - t0 : MM_MAX_NT;
        for (size_t r = r0; r < r1; r++) {
            float out[MM_MAX_NT];
            if (r + ahead < r1)
                prefetch_row(data + (r + ahead) * rb, rb);
            dot(data + r * rb, (size_t)j->w->n_in, j->a, t0, nt, out);
            for (size_t i = 0; i < nt; i++)
                j->y[(t0 + i) * j->ld_y + r] = out[i];
        }
    }
}

static void compute_worker(void *arg, int ith, int nth)
{
    compute_job *j = arg;
    (void)nth;
    size_t n_out = (size_t)j->w->n_out;
    void *scratch = j->scratch + (size_t)ith * j->scratch_bytes;
    for (;;) {
        size_t r0 = atomic_fetch_add_explicit(&j->next_row, j->chunk_rows, memory_order_relaxed);
        if (r0 >= n_out)
            return;
        size_t r1 = r0 + j->chunk_rows < n_out ? r0 + j->chunk_rows : n_out;
        switch (j->path) {
        case MM_PATH_PREFILL:
            j->k->prefill(j->w, j->a, r0, r1, j->y, j->ld_y, scratch);
            break;
        case MM_PATH_BATCH:
            j->k->batch[j->w->type].fn(j->w, j->a, r0, r1, j->y, j->ld_y, scratch);
            break;
        case MM_PATH_DECODE:
            j->k->decode[j->w->type](j->w, j->a, r0, r1, j->y, j->ld_y, scratch);
            break;
        case MM_PATH_DOT:
            decode_rows(j, r0, r1);
            break;
        }
    }
}

/* Rows per work item: about four items per thread, so a late thread finds
 * work left, but not so small that items cost more than they do. */
static size_t chunk_rows_for(size_t n_out, int n_threads, mm_path path, size_t row_bytes)
{
    size_t c = (n_out + 4 * (size_t)n_threads - 1) / (4 * (size_t)n_threads);
    if (path == MM_PATH_PREFILL) /* whole 32-row panels; at most 256 rows so the work spreads */
        return c > 256 ? 256 : round_up(c, MM_PREFILL_ROWS);
    if (path == MM_PATH_DECODE) /* whole steps of the kernel's rows */
        c = round_up(c, MM_DECODE_ROWS);
    /* Decode and batch with several token tiles re-read the chunk: keep it
     * in L2. */
    size_t max_rows = (256u * 1024u) / (row_bytes ? row_bytes : 1);
    if (max_rows < 8)
        max_rows = 8;
    if (c > max_rows)
        c = max_rows;
    return c < 8 ? 8 : c;
}

static void run(matmul_ctx *ctx, thread_pool_fn fn, void *arg)
{
    if (ctx->tp)
        thread_pool_run(ctx->tp, fn, arg);
    else
        fn(arg, 0, 1);
}

/* One call of at most max_tokens tokens. */
static void matmul_part(matmul_ctx *ctx, const matmul_weight *w, const float *x, size_t n_tok,
                        float *y, size_t ld_y)
{
    const mm_kernels *k = ctx->k;
    mm_path path = path_for(k, w->type, n_tok);
    mm_act a;
    act_buffers bufs;
    act_layout(ctx, w, x, n_tok, path, &a, &bufs);

    prep_job pj = {k, &a, &bufs, x};
    if (n_tok * (size_t)w->n_in >= MM_PARALLEL_PREP_MIN && ctx->n_threads > 1)
        run(ctx, prep_worker, &pj);
    else
        prep_worker(&pj, 0, 1);

    compute_job cj;
    cj.k = k;
    cj.w = w;
    cj.a = &a;
    cj.y = y;
    cj.ld_y = ld_y;
    cj.path = path;
    cj.chunk_rows = chunk_rows_for((size_t)w->n_out, ctx->n_threads, path, w->row_bytes);
    cj.scratch = ctx->scratch;
    cj.scratch_bytes = ctx->scratch_bytes;
    atomic_init(&cj.next_row, 0);
    run(ctx, compute_worker, &cj);
}

/* A broken precondition of matmul() is a bug in the caller that would
 * corrupt memory if we went on; it is checked in every build. */
static void require(int ok, const char *what, const matmul_weight *w)
{
    if (ok)
        return;
    fprintf(stderr, "matmul: precondition failed: %s (type %u, n_in %llu, n_out %llu)\n", what,
            w->type, (unsigned long long)w->n_in, (unsigned long long)w->n_out);
    abort();
}

void matmul(matmul_ctx *ctx, const matmul_weight *w, const float *x, size_t n_tok, float *y,
            size_t ld_y)
{
    require(tensor_type_supported(w->type), "weight type supported", w);
    require(w->n_in <= ctx->max_n_in, "n_in <= the context's max_n_in", w);
    require(ld_y >= w->n_out, "ld_y >= n_out", w);
    size_t n = (size_t)w->n_in;
    for (size_t t0 = 0; t0 < n_tok; t0 += ctx->max_tokens) {
        size_t nt = n_tok - t0 < ctx->max_tokens ? n_tok - t0 : ctx->max_tokens;
        matmul_part(ctx, w, x + t0 * n, nt, y + t0 * ld_y, ld_y);
    }
}
