/*
 * vec.h - vector primitives for attention and normalisation, per SIMD tier.
 *
 * The KV cache stores K and V rows as f16 or q8_0 (n/32 blocks of {f16 d,
 * int8 q[32]}, 34 bytes each, the GGUF Q8_0 layout); attention widens a few
 * rows at a time to f32, dots the queries with the K rows and accumulates
 * the V rows weighted by the softmax. These are the loops it needs, in one
 * table per tier, chosen once:
 *
 *     const vec_ops *v = vec_ops_for(isa);
 *     v->f16_to_f32(rows, k_rows, n_rows * head_dim);
 *     v->dot_rows_f32(scores, rows, q, n_rows, head_dim);
 *     v->axpy_rows_f32(out, weights, rows, n_rows, head_dim);
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

typedef struct vec_ops {
    cpu_isa isa;
    /* sum_i a[i] * b[i] */
    float (*dot_f32)(const float *a, const float *b, size_t n);
    /* s[r] = sum_i x[r][i] * q[i] for r < n_rows, x [n_rows][n] (K rows
     * against a query) */
    void (*dot_rows_f32)(float *s, const float *x, const float *q, size_t n_rows, size_t n);
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
