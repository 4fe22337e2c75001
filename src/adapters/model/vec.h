/*
 * vec.h - vector primitives for attention and normalisation, per SIMD tier.
 *
 * The KV cache stores K and V rows as f16 or q8_0 (n/32 blocks of {f16 d,
 * int8 q[32]}, 34 bytes each, the GGUF Q8_0 layout); attention dots a query
 * (f32) with K rows and accumulates V rows weighted by the softmax. These
 * are the loops it needs, in one table per tier, chosen once:
 *
 *     const vec_ops *v = vec_ops_for(isa);
 *     float score = v->dot_f16_f32(k_row, q, head_dim);
 *     v->axpy_f16(out, p, v_row, head_dim);
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
    /* sum_i a[i] * b[i], a in f16 (a K row against a query) */
    float (*dot_f16_f32)(const uint16_t *a, const float *b, size_t n);
    /* y[i] += s * x[i] */
    void (*axpy_f32)(float *y, float s, const float *x, size_t n);
    /* y[i] += s * x[i], x in f16 (a V row into the attention output) */
    void (*axpy_f16)(float *y, float s, const uint16_t *x, size_t n);
    /* f32 -> f16 (round to nearest even) and back */
    void (*f32_to_f16)(uint16_t *dst, const float *src, size_t n);
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    /* n values into n/32 q8_0 blocks at dst (34 bytes each) */
    void (*quantize_q8_0)(void *dst, const float *src, size_t n);
    /* sum_i deq(q)[i] * b[i] over n values of q8_0 blocks */
    float (*dot_q8_0_f32)(const void *q, const float *b, size_t n);
    /* y[i] += s * deq(q)[i] */
    void (*axpy_q8_0)(float *y, float s, const void *q, size_t n);
} vec_ops;

/* The table of `isa`, or NULL when this CPU cannot run it (check with
 * cpu_isa_check for the reason). */
const vec_ops *vec_ops_for(cpu_isa isa);

#endif
