/*
 * vec.h - vector primitives for attention and normalisation, per SIMD tier.
 *
 * The KV cache stores K and V rows as f16 or q8_0 (n/32 blocks of {f16 d,
 * int8 q[32]}, 34 bytes each, the GGUF Q8_0 layout); attention widens a
 * tile of 16 rows at a time to f32, transposes the K tile so that a query
 * gets its 16 scores as one vector, takes the exponentials of the scores
 * and accumulates the V rows weighted by them. These are the loops it
 * needs, in one table per tier, chosen once:
 *
 *     const vec_ops *v = vec_ops_for(isa);
 *     v->f16_to_f32(rows, k_rows, n_rows * head_dim);
 *     v->transpose16_f32(kt, rows, n_rows, head_dim);
 *     v->scores16_f32(scores, q, kt, head_dim);
 *     sum += v->exp_shift_f32(scores, 16, max);
 *     v->axpy_rows_f32(out, scores, v_rows, n_rows, head_dim);
 *
 * A decode step over f16 rows skips the widening and the transpose:
 *
 *     v->attend16_f16(q, n_q, k_rows, v_rows, n_keys, head_dim, out, max, sum);
 *
 * Lengths are arbitrary for f32/f16 operations and a multiple of 32 for
 * q8_0 ones. Pointers need no alignment. Conversions to f16 round to
 * nearest even (as fp16.h); quantize_q8_0 rounds exactly as llama.cpp's
 * x86 quantize_row_q8_0 (quant.h), so a KV cache written here matches one
 * written by llama.cpp. Sums may differ between tiers in the last bits
 * (different summation order).
 *
 * Threads: the tables are immutable and every function is reentrant;
 * buffers belong to the caller.
 */
#ifndef SEM_VEC_H
#define SEM_VEC_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

#define VEC_ATTEND_MAX_DIM 1024 /* head dimension attend16_f16 takes */

typedef struct vec_ops {
    cpu_isa isa;
    /* sum_i a[i] * b[i] */
    float (*dot_f32)(const float *a, const float *b, size_t n);
    /* dst[n][16] = src[16][n] transposed, rows of src from n_rows on read
     * as zeros (n_rows <= 16): a tile of K rows, key-minor */
    void (*transpose16_f32)(float *dst, const float *src, size_t n_rows, size_t n);
    /* s[j] = sum_i q[i] * kt[i][j] for j < 16, kt [n][16]: one query's
     * scores against a transposed tile of 16 keys */
    void (*scores16_f32)(float *s, const float *q, const float *kt, size_t n);
    /* s[j] = exp(s[j] - shift) for j < n, returning their sum; -inf gives 0
     * (within 2 ulp of expf) */
    float (*exp_shift_f32)(float *s, size_t n, float shift);
    /* max_i s[i] (n >= 1; -inf when all are): a tile's scores, read as
     * vectors (the stores that wrote them forward to vector loads, not to
     * scalar ones) */
    float (*max_f32)(const float *s, size_t n);
    /* One online-softmax step of n_q queries over n <= 16 keys (a decode
     * step's tile) whose K and V rows are f16, d values each (d a multiple
     * of 16, at most VEC_ATTEND_MAX_DIM), n consecutive rows at k and v: for
     * each query g (q [n_q][d], out [n_q][d]), s_j = q_g . k_j, m' =
     * max(mx[g], max_j s_j), out_g = out_g e^(mx[g] - m') + sum_j e^(s_j -
     * m') v_j, sm[g] likewise with 1 for v_j, mx[g] = m'. Start from mx =
     * -inf, sm = 0, out = 0. */
    void (*attend16_f16)(const float *q, size_t n_q, const uint16_t *k, const uint16_t *v,
                         size_t n, size_t d, float *out, float *mx, float *sm);
    /* the same over q8_0 rows (d a multiple of 32, rows of d / 32 blocks) */
    void (*attend16_q8_0)(const float *q, size_t n_q, const void *k, const void *v, size_t n,
                          size_t d, float *out, float *mx, float *sm);
    /* g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)): the gated FFN
     * (as ops_silu_mul, with the exp of exp_shift_f32) */
    void (*silu_mul_f32)(float *g, const float *u, size_t n);
    /* y[i] += s * x[i] */
    void (*axpy_f32)(float *y, float s, const float *x, size_t n);
    /* y[i] += sum_r w[r] * x[r][i], x [n_rows][n] (V rows into an attention
     * output, which stays in registers across the rows) */
    void (*axpy_rows_f32)(float *y, const float *w, const float *x, size_t n_rows, size_t n);
    /* f32 -> f16 (round to nearest even) and back */
    void (*f32_to_f16)(uint16_t *dst, const float *src, size_t n);
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    /* n values into n/32 q8_0 blocks at dst (34 bytes each), and back */
    void (*quantize_q8_0)(void *dst, const float *src, size_t n);
    void (*q8_0_to_f32)(float *dst, const void *q, size_t n);
} vec_ops;

/* The table of `isa`, or NULL when this CPU cannot run it (check with
 * cpu_isa_check for the reason). */
const vec_ops *vec_ops_for(cpu_isa isa);

#endif
