/*
 * bench_attention.c - one decode step's attention over a long KV cache.
 *
 *   bench_attention [--isa portable|avx2|avx512|best] [--threads N] [--reps R]
 *                   [--depth D] [--layers L] [--kv-type f16|q8_0]
 *
 * The Llama-3.2-1B shape (32 query heads, 8 KV heads of 64, blocks of 64
 * tokens): a cache of D tokens on each of L layers (default 4096 x 16, the
 * 134 MB of f16 K/V a decode step reads at that depth) is filled with
 * random rows, and one query position per layer attends to all of it, its
 * KV heads dealt to the threads as a one-sequence decode step deals them
 * (forward.c). Prints the median of R steps as milliseconds per step, GB/s
 * of K/V read and nanoseconds per (key, KV head); `--layers 1 --depth 512`
 * keeps the K/V (1 MB) in cache, to see the kernels' own speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#include "adapters/kernels/attention.h"
#include "adapters/kernels/cpu.h"
#include "adapters/kernels/thread_pool.h"
#include "adapters/kernels/vec.h"
#include "domain/block_pool.h"
#include "domain/block_table.h"

#define N_HEAD 32
#define N_KV 8
#define HEAD_DIM 64

typedef struct options {
    cpu_isa isa;
    int threads, reps;
    uint32_t depth, layers;
    cache_kv_type kv_type;
} options;

typedef struct step {
    const vec_ops *vo;
    const block_table *kv;
    uint32_t layers, pos;
    const float *q;  /* [N_HEAD][HEAD_DIM] */
    float *out;      /* [nth][N_HEAD][HEAD_DIM] */
    float *scratch;  /* [nth][attention_scratch_floats] */
    size_t scratch_per_thread;
} step;

static void usage(void)
{
    fprintf(stderr, "usage: bench_attention [--isa NAME] [--threads N] [--reps R] [--depth D]\n"
                    "                       [--layers L] [--kv-type f16|q8_0]\n");
    exit(2);
}

static options parse(int argc, char **argv)
{
    options o = {.isa = cpu_isa_best(), .threads = 2, .reps = 9, .depth = 4096, .layers = 16,
                 .kv_type = CACHE_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--isa")) {
            if (strcmp(v, "best") && cpu_isa_parse(v, &o.isa, NULL) != SEM_OK)
                usage();
        } else if (!strcmp(a, "--threads")) {
            o.threads = atoi(v);
        } else if (!strcmp(a, "--reps")) {
            o.reps = atoi(v);
        } else if (!strcmp(a, "--depth")) {
            o.depth = (uint32_t)atoi(v);
        } else if (!strcmp(a, "--layers")) {
            o.layers = (uint32_t)atoi(v);
        } else if (!strcmp(a, "--kv-type")) {
            if (cache_kv_type_parse(v, &o.kv_type, NULL) != SEM_OK)
                usage();
        } else {
            usage();
        }
        i++;
    }
    if (o.threads < 1 || o.reps < 1 || o.depth < 1 || o.layers < 1 || o.layers > 64)
        usage();
    return o;
}

/* Random rows in every block the table holds: values of a real K/V's size. */
static void fill(block_table *t, const vec_ops *vo, const options *o)
{
    block_pool *pool = block_table_pool(t);
    const cache_spec *cs = block_pool_spec(pool);
    size_t n = cache_spec_block_bytes(cs) / cache_spec_row_bytes(cs->kv_type, HEAD_DIM);
    float *row = malloc(HEAD_DIM * sizeof *row);
    size_t rb = cache_spec_row_bytes(cs->kv_type, HEAD_DIM);
    for (uint32_t l = 0; l < o->layers; l++)
        for (uint32_t p = 0; p < o->depth; p += cs->block_tokens) {
            uint8_t *blk = block_pool_data(pool, block_table_block_for(t, l, p));
            for (size_t r = 0; r < n; r++) {
                for (int d = 0; d < HEAD_DIM; d++)
                    row[d] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
                if (cs->kv_type == CACHE_KV_Q8_0)
                    vo->quantize_q8_0(blk + r * rb, row, HEAD_DIM);
                else
                    vo->f32_to_f16((uint16_t *)(void *)(blk + r * rb), row, HEAD_DIM);
            }
        }
    free(row);
}

/* Thread body: the KV heads of every layer, in runs of N_KV / nth, as a
 * one-sequence decode step deals them. */
static void run_step(void *arg, int ith, int nth)
{
    const step *s = arg;
    uint32_t runs = (uint32_t)nth < N_KV ? (uint32_t)nth : N_KV;
    uint32_t heads = (N_KV + runs - 1) / runs, group = N_HEAD / N_KV;
    float *out = s->out + (size_t)ith * N_HEAD * HEAD_DIM;
    float *scratch = s->scratch + (size_t)ith * s->scratch_per_thread;
    for (uint32_t l = 0; l < s->layers; l++)
        for (uint32_t r = (uint32_t)ith; r < runs; r += (uint32_t)nth) {
            uint32_t h0 = r * heads, n = N_KV - h0 < heads ? N_KV - h0 : heads;
            attention_args a = {.vo = s->vo, .kv = s->kv, .layer = l, .kv_head = h0,
                                .pos = s->pos};
            attention_tile(&a, 1, n, group, s->q + (size_t)h0 * group * HEAD_DIM,
                           N_HEAD * HEAD_DIM, out + (size_t)h0 * group * HEAD_DIM,
                           N_HEAD * HEAD_DIM, scratch);
        }
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    const vec_ops *vo = vec_ops_for(o.isa);
    if (!vo) {
        fprintf(stderr, "bench_attention: this CPU cannot run %s\n", cpu_isa_name(o.isa));
        return 1;
    }
    cache_spec cs = {.n_layers = o.layers, .n_kv_heads = N_KV, .k_head_dim = HEAD_DIM,
                     .v_head_dim = HEAD_DIM, .block_tokens = CACHE_SPEC_DEFAULT_BLOCK_TOKENS,
                     .kv_type = o.kv_type};
    size_t blocks = cache_spec_total_blocks_for(&cs, o.depth);
    sem_err err = {0};
    block_pool *pool = block_pool_create(&cs, (blocks + 1) * cache_spec_block_bytes(&cs), &err);
    block_table *t = pool ? block_table_create(pool, "bench", &err) : NULL;
    thread_pool *tp = t ? thread_pool_create(o.threads, &err) : NULL;
    int32_t *tokens = calloc(o.depth, sizeof *tokens);
    if (!tp || !tokens || block_table_append(t, tokens, o.depth, &err) != SEM_OK) {
        fprintf(stderr, "bench_attention: %s\n", err.detail);
        return 1;
    }
    fill(t, vo, &o);

    size_t spt = attention_scratch_floats(HEAD_DIM, HEAD_DIM);
    float *q = malloc(N_HEAD * HEAD_DIM * sizeof *q);
    float *out = malloc((size_t)o.threads * N_HEAD * HEAD_DIM * sizeof *out);
    float *scratch = malloc((size_t)o.threads * spt * sizeof *scratch);
    double *ms = malloc((size_t)o.reps * sizeof *ms);
    for (int i = 0; i < N_HEAD * HEAD_DIM; i++)
        q[i] = ((float)rand() / RAND_MAX * 2.0f - 1.0f) * 0.125f;
    step s = {.vo = vo, .kv = t, .layers = o.layers, .pos = o.depth - 1, .q = q, .out = out,
              .scratch = scratch, .scratch_per_thread = spt};
    thread_pool_run(tp, run_step, &s); /* warm-up */
    for (int r = 0; r < o.reps; r++) {
        double t0 = bench_now_s();
        thread_pool_run(tp, run_step, &s);
        ms[r] = (bench_now_s() - t0) * 1e3;
    }
    qsort(ms, (size_t)o.reps, sizeof *ms, bench_cmp_double);
    double med = ms[o.reps / 2];
    double bytes = (double)o.layers * o.depth * N_KV * 2 * cache_spec_row_bytes(o.kv_type, HEAD_DIM);
    printf("attention %s %s, depth %u x %u layers, %d threads: %.2f ms/step (%.2f-%.2f), "
           "%.1f GB/s of K/V, %.1f ns per key and KV head\n",
           cpu_isa_name(o.isa), cache_kv_type_name(o.kv_type), o.depth, o.layers, o.threads, med,
           ms[0], ms[o.reps - 1], bytes / (med * 1e-3) / 1e9,
           med * 1e6 / ((double)o.layers * o.depth * N_KV));
    free(ms);
    free(scratch);
    free(out);
    free(q);
    free(tokens);
    thread_pool_destroy(tp);
    block_table_destroy(t);
    block_pool_destroy(pool);
    return 0;
}
