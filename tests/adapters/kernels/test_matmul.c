/* Specification of matmul.h: for every weight type, every tier this CPU
 * runs, and 1, 2 and 3 threads, matmul equals a double-precision reference
 * computed from the dequantized weights and the activations rounded the way
 * llama.cpp rounds them; every tier agrees with the portable one. */
#include "../../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "adapters/kernels/fp16.h"
#include "adapters/kernels/matmul.h"
#include "adapters/kernels/matmul_kernels.h" /* the BF16 kernel variants */
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"

static const uint32_t all_types[] = {TENSOR_F32,  TENSOR_F16,  TENSOR_BF16, TENSOR_Q8_0,
                                     TENSOR_Q4_0, TENSOR_Q4_K, TENSOR_Q5_K, TENSOR_Q6_K};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static float frand(uint64_t *rng)
{
    return (float)(test_rand(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* A random weight matrix in `type`, stored one byte past an aligned
 * address (mmapped tensors need not be aligned), rows padded by `pad`. */
typedef struct test_weight {
    matmul_weight w;
    uint8_t *alloc;
    double *deq; /* [n_out][n_in] dequantized, the reference's view */
} test_weight;

static test_weight make_weight(uint32_t type, size_t n_in, size_t n_out, size_t pad, uint64_t seed)
{
    test_weight tw;
    size_t packed = tensor_type_row_bytes(type, n_in);
    tw.w.type = type;
    tw.w.n_in = n_in;
    tw.w.n_out = n_out;
    tw.w.row_bytes = packed + pad;
    tw.alloc = calloc(1, tw.w.row_bytes * n_out + 64);
    uint8_t *data = tw.alloc + 1;
    tw.w.data = data;
    tw.deq = malloc(n_in * n_out * sizeof(double));
    float *row = malloc(n_in * sizeof(float)), *back = malloc(n_in * sizeof(float));
    uint64_t rng = seed;
    for (size_t j = 0; j < n_out; j++) {
        float scale = 0.02f + 0.1f * (float)(j % 7);
        for (size_t i = 0; i < n_in; i++)
            row[i] = frand(&rng) * scale;
        assert_int_equal(quant_quantize_row(type, row, data + j * tw.w.row_bytes, n_in, NULL), SEM_OK);
        assert_int_equal(quant_dequantize_row(type, data + j * tw.w.row_bytes, back, n_in, NULL),
                         SEM_OK);
        for (size_t i = 0; i < n_in; i++)
            tw.deq[j * n_in + i] = back[i];
    }
    free(row);
    free(back);
    sem_err err = {0};
    if (matmul_weight_check(&tw.w, &err) != SEM_OK)
        fail_msg("%s", err.detail);
    return tw;
}

static void free_weight(test_weight *tw)
{
    free(tw->alloc);
    free(tw->deq);
}

/* The activations as the weight type's companion format represents them. */
static void round_activations(uint32_t type, const float *x, size_t n, double *out)
{
    if (type == TENSOR_F16) {
        for (size_t i = 0; i < n; i++)
            out[i] = fp16_to_f32(fp16_from_f32(x[i]));
    } else if (type == TENSOR_BF16) {
        for (size_t i = 0; i < n; i++)
            out[i] = bf16_to_f32(bf16_from_f32(x[i]));
    } else if (type == TENSOR_Q8_0 || type == TENSOR_Q4_0) {
        int8_t q[32];
        for (size_t b = 0; b < n / 32; b++) {
            float d = fp16_to_f32(quant_q8_0_block(x + 32 * b, q));
            for (int j = 0; j < 32; j++)
                out[32 * b + j] = (double)d * q[j];
        }
    } else if (type == TENSOR_Q4_K || type == TENSOR_Q5_K || type == TENSOR_Q6_K) {
        int8_t q[256];
        int16_t bs[16];
        for (size_t b = 0; b < n / 256; b++) {
            float d = quant_q8_K_block(x + 256 * b, q, bs);
            for (int j = 0; j < 256; j++)
                out[256 * b + j] = (double)d * q[j];
        }
    } else {
        for (size_t i = 0; i < n; i++)
            out[i] = x[i];
    }
}

typedef struct reference {
    double *y;   /* [n_tok][n_out] */
    double *mag; /* [n_tok][n_out] sum of |w x| */
} reference;

static reference make_reference(const test_weight *tw, const float *x, size_t n_tok)
{
    size_t n_in = (size_t)tw->w.n_in, n_out = (size_t)tw->w.n_out;
    reference r = {malloc(n_tok * n_out * sizeof(double)), malloc(n_tok * n_out * sizeof(double))};
    double *xr = malloc(n_in * sizeof(double));
    for (size_t t = 0; t < n_tok; t++) {
        round_activations(tw->w.type, x + t * n_in, n_in, xr);
        for (size_t j = 0; j < n_out; j++) {
            double s = 0.0, m = 0.0;
            for (size_t i = 0; i < n_in; i++) {
                double p = tw->deq[j * n_in + i] * xr[i];
                s += p;
                m += fabs(p);
            }
            r.y[t * n_out + j] = s;
            r.mag[t * n_out + j] = m;
        }
    }
    free(xr);
    return r;
}

static void free_reference(reference *r)
{
    free(r->y);
    free(r->mag);
}

/* Float sums in a different order than the reference's: allow 2e-5 of the
 * magnitude of the terms (a few hundred ulps of float) plus a floor. */
static int close_enough(double got, double want, double mag)
{
    return fabs(got - want) <= 2e-5 * mag + 1e-6;
}

#define SENTINEL -12345.0f

/* Runs one matmul and checks it against the reference; returns y (owned by
 * the caller) so tiers can be compared with each other. */
static float *run_and_check(cpu_isa isa, int n_threads, size_t max_tokens, const test_weight *tw,
                            const float *x, size_t n_tok, const reference *ref)
{
    sem_err err = {0};
    thread_pool *tp = NULL;
    if (n_threads > 1) {
        tp = thread_pool_create(n_threads, &err);
        assert_non_null(tp);
    }
    size_t n_out = (size_t)tw->w.n_out, ld_y = n_out + 3;
    matmul_ctx *ctx = matmul_ctx_create(isa, max_tokens, (size_t)tw->w.n_in, tp, &err);
    if (!ctx)
        fail_msg("matmul_ctx_create: %s", err.detail);
    assert_int_equal(matmul_ctx_isa(ctx), isa);
    float *y = malloc(n_tok * ld_y * sizeof(float));
    for (size_t i = 0; i < n_tok * ld_y; i++)
        y[i] = SENTINEL;
    matmul(ctx, &tw->w, x, n_tok, y, ld_y);
    for (size_t t = 0; t < n_tok; t++) {
        for (size_t j = 0; j < n_out; j++) {
            double got = y[t * ld_y + j], want = ref->y[t * n_out + j];
            if (!close_enough(got, want, ref->mag[t * n_out + j]))
                fail_msg("%s isa %s threads %d n_in %zu n_out %zu n_tok %zu: y[%zu][%zu] = %.9g, "
                         "want %.9g (magnitude %.3g)",
                         tensor_type_name(tw->w.type), cpu_isa_name(isa), n_threads,
                         (size_t)tw->w.n_in, n_out, n_tok, t, j, got, want,
                         ref->mag[t * n_out + j]);
        }
        for (size_t j = n_out; j < ld_y; j++)
            assert_true(y[t * ld_y + j] == SENTINEL); /* ld_y padding untouched */
    }
    matmul_ctx_destroy(ctx);
    thread_pool_destroy(tp);
    return y;
}

static void compare_tiers(const float *a, const float *b, size_t n_tok, size_t n_out,
                          const reference *ref, const char *what)
{
    size_t ld_y = n_out + 3;
    for (size_t t = 0; t < n_tok; t++)
        for (size_t j = 0; j < n_out; j++)
            if (!close_enough(a[t * ld_y + j], b[t * ld_y + j], ref->mag[t * n_out + j]))
                fail_msg("%s: tiers disagree at [%zu][%zu]: %.9g vs %.9g", what, t, j,
                         (double)a[t * ld_y + j], (double)b[t * ld_y + j]);
}

/* One shape for one type: every tier, 1-3 threads, against the reference
 * and against the portable tier. */
static void check_shape(uint32_t type, size_t n_in, size_t n_out, size_t n_tok, size_t max_tokens,
                        size_t pad, uint64_t seed)
{
    test_weight tw = make_weight(type, n_in, n_out, pad, seed);
    float *x = malloc(n_tok * n_in * sizeof(float));
    uint64_t rng = seed * 31 + 7;
    for (size_t i = 0; i < n_tok * n_in; i++)
        x[i] = frand(&rng) * ((i % 61) == 0 ? 8.0f : 1.0f);
    reference ref = make_reference(&tw, x, n_tok);
    float *portable = run_and_check(CPU_ISA_PORTABLE, 1, max_tokens, &tw, x, n_tok, &ref);
    for (int isa = CPU_ISA_PORTABLE; isa <= (int)cpu_isa_best(); isa++) {
        for (int threads = 1; threads <= 3; threads++) {
            float *y = run_and_check((cpu_isa)isa, threads, max_tokens, &tw, x, n_tok, &ref);
            compare_tiers(portable, y, n_tok, n_out, &ref, tensor_type_name(type));
            free(y);
        }
    }
    free(portable);
    free_reference(&ref);
    free(x);
    free_weight(&tw);
}

/* n_in per type: a few blocks, and for quantized types an odd count. */
static size_t small_n_in(uint32_t type)
{
    switch (type) {
    case TENSOR_Q8_0:
    case TENSOR_Q4_0:
        return 224; /* 7 blocks: a step of 4 and a tail of 3 */
    case TENSOR_Q4_K:
    case TENSOR_Q5_K:
    case TENSOR_Q6_K:
        return 768; /* 3 super-blocks */
    default:
        return 100; /* not a multiple of any vector width */
    }
}

static void every_type_and_tier_matches_the_reference(void **state)
{
    (void)state;
    /* decode dots; small batch: 1, 3 and 8 tiles; prefill: 4-token tiles + 2, + 1 */
    static const size_t toks[] = {1, 3, 17, 63, 64 + 2, 64 + 5};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++)
            check_shape(type, small_n_in(type), 37, toks[k], 80, 0, 100 * ti + k);
    }
}

/* Longer rows than the prefill and batch kernels' K chunks, more rows than
 * one work item, padded rows, and calls split because n_tok > max_tokens
 * (into two prefill calls, and into two small-batch calls). */
static void long_rows_many_rows_and_split_calls(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        size_t n_in = tensor_type_block_size(type) == 1 ? 2300 : 2304;
        check_shape(type, n_in, 70, 150, 80, 5, 7000 + ti); /* 80 + 70 tokens */
        check_shape(type, n_in, 40, 59, 32, 5, 7100 + ti);  /* 32 + 27 tokens */
        check_shape(type, n_in, 70, 1, 80, 5, 7200 + ti);   /* one token: decode kernels */
    }
}

/* The decode steps of 2 to 16 sequences (the small-batch kernel on avx512):
 * every token count, rows of whole kernel groups and a partial one
 * (Q8_0/Q4_0: 4 sets of 16 blocks + 8 blocks; K-quants: 9 super-blocks),
 * and a row with less than one group. */
static void every_type_and_tier_matches_for_2_to_16_tokens(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        size_t n_in = tensor_type_block_size(type) == 1 ? 2300 : 2304;
        for (size_t n_tok = 2; n_tok <= 16; n_tok++)
            check_shape(type, n_in, 19, n_tok, 16, 3, 9000 + 100 * ti + n_tok);
        check_shape(type, small_n_in(type), 21, 8, 8, 0, 9900 + ti);
    }
}

static const mm_kernels *tier_kernels(cpu_isa isa)
{
    return isa == CPU_ISA_AVX512 ? mm_kernels_avx512()
           : isa == CPU_ISA_AVX2 ? mm_kernels_avx2()
                                 : mm_kernels_portable();
}

/* The SIMD tiers convert activations to exactly the bits of quant.c and
 * fp16.h (the portable tier is those), ties and all-zero blocks included. */
static void activation_conversion_is_bit_exact_on_every_tier(void **state)
{
    (void)state;
    enum { N = 1024 + 256 };
    static float x[N], f_want[N], f_got[N], d_want[N / 32], d_got[N / 32];
    static int8_t q_want[N], q_got[N];
    static int32_t s_want[N / 32], s_got[N / 32];
    static int16_t b_want[N / 16], b_got[N / 16];
    static uint16_t h_want[N], h_got[N];
    const mm_kernels *ref = mm_kernels_portable();
    uint64_t rng = 11;
    for (int rep = 0; rep < 50; rep++) {
        for (size_t i = 0; i < N; i++)
            x[i] = frand(&rng) * (rep % 2 ? 1e-3f : 40.0f);
        if (rep % 5 == 0) {
            for (size_t i = 0; i < 256; i++) /* ties after scaling */
                x[i] = (float)(i % 11) - 5.5f;
            x[3] = 127.0f;
            memset(x + 512, 0, 256 * sizeof *x); /* all-zero blocks */
        }
        size_t n = rep % 3 ? N : 256 + 32 * (size_t)(rep % 7); /* also short rows */
        size_t nk = n / 256 * 256;
        for (int isa = CPU_ISA_AVX2; isa <= (int)cpu_isa_best(); isa++) {
            const mm_kernels *k = tier_kernels((cpu_isa)isa);
            ref->quant_q8_0(x, n, q_want, d_want, s_want);
            k->quant_q8_0(x, n, q_got, d_got, s_got);
            assert_memory_equal(q_got, q_want, n);
            assert_memory_equal(d_got, d_want, n / 32 * sizeof(float));
            assert_memory_equal(s_got, s_want, n / 32 * sizeof(int32_t));
            ref->quant_q8_K(x, nk, q_want, d_want, b_want);
            k->quant_q8_K(x, nk, q_got, d_got, b_got);
            assert_memory_equal(q_got, q_want, nk);
            assert_memory_equal(d_got, d_want, nk / 256 * sizeof(float));
            assert_memory_equal(b_got, b_want, nk / 16 * sizeof(int16_t));
            size_t nf = n - (size_t)rep % 13; /* vector tails */
            ref->round_f16(x, nf, f_want);
            k->round_f16(x, nf, f_got);
            assert_memory_equal(f_got, f_want, nf * sizeof(float));
            ref->round_bf16(x, nf, h_want);
            k->round_bf16(x, nf, h_got);
            assert_memory_equal(h_got, h_want, nf * sizeof(uint16_t));
        }
    }
}

/* Cores that issue 512-bit operations in halves take the AVX2 tier's
 * one-token kernels (tested on that tier); the others the AVX-512 dots
 * (tested above wherever this CPU runs them). */
static void only_split_avx512_cores_take_the_avx2_one_token_kernels(void **state)
{
    (void)state;
    if (cpu_isa_best() != CPU_ISA_AVX512)
        skip();
    const mm_kernels *avx2 = mm_kernels_avx2();
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        const mm_kernels *split = mm_kernels_avx512_variant(bf16, true);
        const mm_kernels *whole = mm_kernels_avx512_variant(bf16, false);
        assert_ptr_equal(split->decode[TENSOR_Q4_0], avx2->decode[TENSOR_Q4_0]);
        assert_ptr_equal(split->decode[TENSOR_Q4_K], avx2->decode[TENSOR_Q4_K]);
        assert_null(whole->decode[TENSOR_Q4_0]);
        assert_null(whole->decode[TENSOR_Q4_K]);
    }
    assert_ptr_equal(mm_kernels_avx512(),
                     mm_kernels_avx512_variant(cpu_features_detect().avx512bf16,
                                               cpu_features_detect().avx512_split));
}

/* Where the CPU has AVX512_BF16, BF16 weights use vdpbf16ps; the converting
 * AVX-512 kernels must agree with it (and both with the reference above),
 * including the converting table's small-batch kernel, which only CPUs
 * without AVX512_BF16 select. */
static void bf16_native_and_converting_kernels_agree(void **state)
{
    (void)state;
    cpu_features f = cpu_features_detect();
    if (cpu_isa_best() != CPU_ISA_AVX512 || !f.avx512bf16)
        skip();
    const mm_kernels *plain = mm_kernels_avx512_variant(false, f.avx512_split);
    const mm_kernels *native = mm_kernels_avx512_variant(true, f.avx512_split);
    assert_ptr_not_equal(plain->dot[TENSOR_BF16], native->dot[TENSOR_BF16]);
    enum { N = 333, T = 3 };
    test_weight tw = make_weight(TENSOR_BF16, N, 1, 0, 77);
    uint16_t h[T * N];
    uint64_t rng = 5;
    for (size_t i = 0; i < T * N; i++)
        h[i] = bf16_from_f32(frand(&rng));
    mm_act a = {.format = MM_ACT_BF16, .n_tok = T, .n_in = N, .h = h};
    for (size_t nt = 1; nt <= T; nt++) {
        float y0[MM_MAX_NT], y1[MM_MAX_NT];
        plain->dot[TENSOR_BF16](tw.w.data, N, &a, T - nt, nt, y0);
        native->dot[TENSOR_BF16](tw.w.data, N, &a, T - nt, nt, y1);
        for (size_t i = 0; i < nt; i++) {
            double want = 0.0, mag = 0.0;
            for (size_t k = 0; k < N; k++) {
                double p = tw.deq[k] * bf16_to_f32(h[(T - nt + i) * N + k]);
                want += p;
                mag += fabs(p);
            }
            assert_true(close_enough(y0[i], want, mag));
            assert_true(close_enough(y1[i], want, mag));
        }
    }
    free_weight(&tw);

    enum { TB = 9, ROWS = 19 }; /* two tiles (5 + 4 tokens), a partial block of rows */
    assert_null(native->batch[TENSOR_BF16].fn);
    assert_non_null(plain->batch[TENSOR_BF16].fn);
    test_weight tb = make_weight(TENSOR_BF16, N, ROWS, 3, 78);
    static uint16_t hb[TB * N];
    static float yb[TB * ROWS];
    for (size_t i = 0; i < TB * N; i++)
        hb[i] = bf16_from_f32(frand(&rng));
    mm_act ab = {.format = MM_ACT_BF16, .n_tok = TB, .n_in = N, .h = hb};
    plain->batch[TENSOR_BF16].fn(&tb.w, &ab, 0, ROWS, yb, ROWS, NULL);
    for (size_t t = 0; t < TB; t++) {
        for (size_t j = 0; j < ROWS; j++) {
            double want = 0.0, mag = 0.0;
            for (size_t k = 0; k < N; k++) {
                double p = tb.deq[j * N + k] * bf16_to_f32(hb[t * N + k]);
                want += p;
                mag += fabs(p);
            }
            assert_true(close_enough(yb[t * ROWS + j], want, mag));
        }
    }
    free_weight(&tb);
}

static void weight_rows_dequantize(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        test_weight tw = make_weight(all_types[ti], 256, 5, 3, 55 + ti);
        float row[256];
        for (uint64_t r = 0; r < 5; r++) {
            matmul_weight_row(&tw.w, r, row);
            for (size_t i = 0; i < 256; i++)
                assert_true(row[i] == (float)tw.deq[r * 256 + i]);
        }
        free_weight(&tw);
    }
}

static void bad_weights_and_contexts_are_refused(void **state)
{
    (void)state;
    uint8_t buf[1024] = {0};
    sem_err err = {0};
    matmul_weight w = {TENSOR_Q4_K, 256, 4, buf, QUANT_Q4_K_BYTES};
    assert_int_equal(matmul_weight_check(&w, &err), SEM_OK);
    w.n_in = 100;
    assert_int_equal(matmul_weight_check(&w, &err), SEM_EINVAL);
    assert_contains(err.detail, "block size 256");
    w.n_in = 256;
    w.row_bytes = 100;
    assert_int_equal(matmul_weight_check(&w, &err), SEM_EINVAL);
    assert_contains(err.detail, "row_bytes");
    w.row_bytes = QUANT_Q4_K_BYTES;
    w.type = TENSOR_Q2_K;
    assert_int_equal(matmul_weight_check(&w, &err), SEM_EUNSUPPORTED);
    assert_contains(err.detail, "Q2_K");
    w.type = TENSOR_F32;
    w.n_out = 0;
    assert_int_equal(matmul_weight_check(&w, &err), SEM_EINVAL);
    w.n_out = 1;
    w.data = NULL;
    assert_int_equal(matmul_weight_check(&w, &err), SEM_EINVAL);

    assert_null(matmul_ctx_create(CPU_ISA_PORTABLE, 0, 64, NULL, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    assert_null(matmul_ctx_create((cpu_isa)5, 1, 64, NULL, &err));
    assert_int_equal(err.status, SEM_EINVAL);
}

static void zero_tokens_do_nothing(void **state)
{
    (void)state;
    matmul_ctx *ctx = matmul_ctx_create(CPU_ISA_PORTABLE, 4, 32, NULL, NULL);
    assert_non_null(ctx);
    float w[32] = {1}, y = SENTINEL;
    matmul_weight mw = {TENSOR_F32, 32, 1, w, sizeof w};
    matmul(ctx, &mw, NULL, 0, &y, 1);
    assert_true(y == SENTINEL);
    matmul_ctx_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_and_tier_matches_the_reference),
        cmocka_unit_test(long_rows_many_rows_and_split_calls),
        cmocka_unit_test(every_type_and_tier_matches_for_2_to_16_tokens),
        cmocka_unit_test(activation_conversion_is_bit_exact_on_every_tier),
        cmocka_unit_test(bf16_native_and_converting_kernels_agree),
        cmocka_unit_test(only_split_avx512_cores_take_the_avx2_one_token_kernels),
        cmocka_unit_test(weight_rows_dequantize),
        cmocka_unit_test(bad_weights_and_contexts_are_refused),
        cmocka_unit_test(zero_tokens_do_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
