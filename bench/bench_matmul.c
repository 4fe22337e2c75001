/*
 * bench_matmul.c - throughput of matmul() per weight type, tier and shape.
 *
 *   bench_matmul [--isa portable|avx2|avx512|best] [--threads N] [--reps R]
 *                [--types Q4_0,Q8_0,...] [--n-in K] [--n-out N] [--tokens T] [--hot]
 *
 * Two shapes by default, both a Llama-3.2-1B FFN up projection (2048 ->
 * 8192): decode (1 token: memory bound, reported as GB/s of weights read)
 * and prefill (512 tokens: compute bound, reported as GFLOP/s, 2 flops per
 * multiply-add). --tokens T measures one shape instead: 2 to 63 tokens
 * run the small-batch kernel (the decode step of T sequences), where
 * GB/s against the plain read printed first says how close to memory
 * bound it is. Each number is the median of R timed runs after a warm-up
 * run. The weights are random, quantized with quant_quantize_row; each run
 * uses the next of enough copies to fill 256 MiB, so decode reads weights
 * from DRAM as a real model does (one matrix alone would sit in L3);
 * --hot keeps one copy, to see the kernels' speed with the data in cache.
 *
 * Keep runs short on shared machines: the defaults take a few seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#include "adapters/kernels/cpu.h"
#include "adapters/kernels/matmul.h"
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"
#include "adapters/kernels/thread_pool.h"

typedef struct options {
    cpu_isa isa;
    int threads;
    int reps;
    char types[256];
    size_t n_in, n_out, tokens; /* tokens 0: both default shapes */
    int hot;                    /* 1: one weight copy, left in the caches */
} options;

static void usage(void)
{
    fprintf(stderr, "usage: bench_matmul [--isa NAME] [--threads N] [--reps R] [--types A,B]\n"
                    "                    [--n-in K] [--n-out N] [--tokens T] [--hot]\n");
    exit(2);
}

static options parse(int argc, char **argv)
{
    options o = {cpu_isa_best(), 2, 9, "F16,BF16,Q8_0,Q4_0,Q4_K,Q5_K,Q6_K", 2048, 8192, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hot") == 0) {
            o.hot = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (strcmp(argv[i], "--isa") == 0) {
            sem_err err = {0};
            if (cpu_isa_parse(v, &o.isa, &err) != SEM_OK) {
                fprintf(stderr, "bench_matmul: %s\n", err.detail);
                exit(2);
            }
        } else if (strcmp(argv[i], "--threads") == 0) {
            o.threads = atoi(v);
        } else if (strcmp(argv[i], "--reps") == 0) {
            o.reps = atoi(v);
        } else if (strcmp(argv[i], "--types") == 0) {
            snprintf(o.types, sizeof o.types, "%s", v);
        } else if (strcmp(argv[i], "--n-in") == 0) {
            o.n_in = (size_t)atol(v);
        } else if (strcmp(argv[i], "--n-out") == 0) {
            o.n_out = (size_t)atol(v);
        } else if (strcmp(argv[i], "--tokens") == 0) {
            o.tokens = (size_t)atol(v);
        } else {
            usage();
        }
        i++;
    }
    if (o.threads < 1 || o.reps < 1)
        usage();
    return o;
}

static uint32_t type_by_name(const char *name)
{
    for (uint32_t t = 0; t < TENSOR_TYPE_MAX; t++)
        if (tensor_type_name(t) && strcmp(tensor_type_name(t), name) == 0)
            return t;
    fprintf(stderr, "bench_matmul: unknown type %s\n", name);
    exit(2);
}

/* Median seconds of one matmul over reps runs, cycling over the copies. */
static double time_matmul(matmul_ctx *ctx, const matmul_weight *w, size_t copies, const float *x,
                          size_t n_tok, float *y, int reps)
{
    double *t = malloc((size_t)reps * sizeof *t);
    matmul_weight wc = *w;
    size_t bytes = w->row_bytes * w->n_out;
    for (size_t c = 0; c < copies; c++) { /* warm-up: pages, pool */
        wc.data = (const uint8_t *)w->data + c * bytes;
        matmul(ctx, &wc, x, n_tok, y, (size_t)w->n_out);
    }
    for (int r = 0; r < reps; r++) {
        wc.data = (const uint8_t *)w->data + (size_t)r % copies * bytes;
        double t0 = bench_now_s();
        matmul(ctx, &wc, x, n_tok, y, (size_t)w->n_out);
        t[r] = bench_now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
    double med = t[reps / 2];
    free(t);
    return med;
}

static void bench_type(const options *o, matmul_ctx *ctx, uint32_t type, const float *x,
                       size_t max_tok, float *y)
{
    size_t row_bytes = tensor_type_row_bytes(type, o->n_in), bytes = row_bytes * o->n_out;
    size_t copies = o->hot ? 1 : (256u << 20) / bytes + 1;
    uint8_t *data = malloc(bytes * copies);
    float *row = malloc(o->n_in * sizeof *row);
    uint64_t s = 88172645463325252ULL;
    for (size_t j = 0; j < o->n_out; j++) {
        for (size_t i = 0; i < o->n_in; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            row[i] = (float)(s >> 40) / (float)(1 << 24) - 0.5f;
        }
        quant_quantize_row(type, row, data + j * row_bytes, o->n_in, NULL);
    }
    for (size_t c = 1; c < copies; c++)
        memcpy(data + c * bytes, data, bytes);
    matmul_weight w = {type, o->n_in, o->n_out, data, row_bytes};
    size_t shapes[2] = {1, max_tok};
    int n_shapes = 2;
    if (o->tokens) {
        shapes[0] = o->tokens;
        n_shapes = 1;
    }
    printf("%-5s", tensor_type_name(type));
    for (int i = 0; i < n_shapes; i++) {
        size_t nt = shapes[i];
        double sec = time_matmul(ctx, &w, copies, x, nt, y, o->reps);
        double gbs = (double)(row_bytes * o->n_out) / sec * 1e-9;
        double gflops = 2.0 * (double)nt * (double)o->n_in * (double)o->n_out / sec * 1e-9;
        printf("  | %4zu tok %9.3f ms %7.1f GB/s %7.1f GFLOP/s", nt, sec * 1e3, gbs, gflops);
    }
    printf("\n");
    fflush(stdout);
    free(row);
    free(data);
}

static void nothing(void *arg, int ith, int nth)
{
    (void)arg, (void)ith, (void)nth;
}

/* Latency of one thread_pool_run with an empty job: the fixed cost every
 * matmul pays. Workers stay warm (spinning) between runs, as in a forward
 * pass. */
static void bench_dispatch(thread_pool *tp)
{
    enum { RUNS = 20000 };
    for (int i = 0; i < 1000; i++)
        thread_pool_run(tp, nothing, NULL);
    double t0 = bench_now_s();
    for (int i = 0; i < RUNS; i++)
        thread_pool_run(tp, nothing, NULL);
    printf("thread_pool_run (empty job, %d threads): %.2f us per run\n", thread_pool_size(tp),
           (bench_now_s() - t0) / RUNS * 1e6);
}

typedef struct read_job {
    const uint64_t *buf;
    size_t words;
    uint64_t sink[64];
} read_job;

static void read_share(void *arg, int ith, int nth)
{
    read_job *j = arg;
    size_t w0 = j->words * (size_t)ith / (size_t)nth, w1 = j->words * ((size_t)ith + 1) / (size_t)nth;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = w0; i + 4 <= w1; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sink[ith % 64] = s0 + s1 + s2 + s3;
}

/* What a plain read of 256 MiB achieves right now on the same threads: the
 * ceiling for the decode numbers (on a shared machine it moves). */
static void bench_read_bandwidth(thread_pool *tp)
{
    read_job j = {0};
    j.words = (256u << 20) / sizeof(uint64_t);
    uint64_t *buf = malloc(j.words * sizeof *buf);
    for (size_t i = 0; i < j.words; i++)
        buf[i] = i;
    j.buf = buf;
    double best = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now_s();
        thread_pool_run(tp, read_share, &j);
        double gbs = (double)(j.words * sizeof *buf) / (bench_now_s() - t0) * 1e-9;
        best = gbs > best ? gbs : best;
    }
    printf("plain read of 256 MiB (%d threads): %.1f GB/s (best of 5)\n", thread_pool_size(tp), best);
    free(buf);
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    size_t max_tok = o.tokens ? o.tokens : 512;
    sem_err err = {0};
    thread_pool *tp = thread_pool_create(o.threads, &err);
    matmul_ctx *ctx = tp ? matmul_ctx_create(o.isa, max_tok, o.n_in, tp, &err) : NULL;
    if (!ctx) {
        fprintf(stderr, "bench_matmul: %s\n", err.detail);
        return 1;
    }
    float *x = malloc(max_tok * o.n_in * sizeof *x);
    float *y = malloc(max_tok * o.n_out * sizeof *y);
    for (size_t i = 0; i < max_tok * o.n_in; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    bench_dispatch(tp);
    bench_read_bandwidth(tp);
    printf("matmul %zu -> %zu, isa %s, %d threads, median of %d\n", o.n_in, o.n_out,
           cpu_isa_name(o.isa), o.threads, o.reps);
    char types[256];
    snprintf(types, sizeof types, "%s", o.types);
    for (char *save = NULL, *t = strtok_r(types, ",", &save); t; t = strtok_r(NULL, ",", &save))
        bench_type(&o, ctx, type_by_name(t), x, max_tok, y);
    free(x);
    free(y);
    matmul_ctx_destroy(ctx);
    thread_pool_destroy(tp);
    return 0;
}
