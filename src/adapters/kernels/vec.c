/*
 * vec.c - the portable vector primitives and the choice of tier (vec.h).
 */
#include "vec.h"

#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant.h"
#include "vec_tiers.h"

static inline uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Sums in 8 interleaved lanes, then the lanes: close to a SIMD tier's
 * order and much more accurate than one running sum. */
static float dot_f32(const float *a, const float *b, size_t n)
{
    float lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (int l = 0; l < 8; l++)
        s += lane[l];
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void transpose16_f32(float *dst, const float *src, size_t n_rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 16; j++)
            dst[i * 16 + j] = j < n_rows ? src[j * n + i] : 0.0f;
}

static void scores16_f32(float *s, const float *q, const float *kt, size_t n)
{
    float acc[16] = {0};
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 16; j++)
            acc[j] += q[i] * kt[i * 16 + (size_t)j];
    memcpy(s, acc, sizeof acc);
}

static float exp_shift_f32(float *s, size_t n, float shift)
{
    float sum = 0.0f;
    for (size_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - shift);
        sum += s[j];
    }
    return sum;
}

static float max_f32(const float *s, size_t n)
{
    float m = s[0];
    for (size_t j = 1; j < n; j++)
        m = s[j] > m ? s[j] : m;
    return m;
}

static void silu_mul_f32(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void axpy_f32(float *y, float s, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += s * x[i];
}

static void axpy_rows_f32(float *y, const float *w, const float *x, size_t n_rows, size_t n)
{
    for (size_t r = 0; r < n_rows; r++)
        axpy_f32(y, w[r], x + r * n, n);
}

static void f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = fp16_from_f32(src[i]);
}

static void f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = fp16_to_f32(src[i]);
}

static void quantize_q8_0(void *dst, const float *src, size_t n)
{
    quant_q8_0_row(src, dst, n);
}

static void q8_0_to_f32(float *dst, const void *q, size_t n)
{
    const uint8_t *blk = q;
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        const int8_t *qs = (const int8_t *)(blk + 2);
        float d = fp16_to_f32(ld16(blk));
        for (int j = 0; j < 32; j++)
            dst[k + (size_t)j] = d * (float)qs[j];
    }
}

/* Value i of a K/V row: f16, or q8_0 (d x q, as q8_0_to_f32). */
static float row_value(const uint8_t *row, size_t i, int q8)
{
    if (!q8) {
        uint16_t h;
        memcpy(&h, row + 2 * i, sizeof h);
        return fp16_to_f32(h);
    }
    const uint8_t *b = row + i / 32 * QUANT_Q8_0_BYTES;
    uint16_t h;
    memcpy(&h, b, sizeof h);
    return fp16_to_f32(h) * (float)(int8_t)b[2 + i % 32];
}

static void attend16(const float *q, size_t n_q, const uint8_t *k, const uint8_t *v, size_t n,
                     size_t d, float *out, float *mx, float *sm, int q8)
{
    const size_t rb = vec_attend_row_bytes(d, q8);
    for (size_t g = 0; g < n_q; g++) {
        const float *qg = q + g * d;
        float *y = out + g * d, s[16], m = mx[g];
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t i = 0; i < d; i++)
                acc += qg[i] * row_value(k + j * rb, i, q8);
            s[j] = acc;
            m = acc > m ? acc : m;
        }
        float f = m == mx[g] ? 1.0f : expf(mx[g] - m), sum = sm[g] * f;
        for (size_t i = 0; i < d; i++)
            y[i] *= f;
        for (size_t j = 0; j < n; j++) {
            float e = expf(s[j] - m);
            sum += e;
            for (size_t i = 0; i < d; i++)
                y[i] += e * row_value(v + j * rb, i, q8);
        }
        mx[g] = m;
        sm[g] = sum;
    }
}

static void attend16_f16(const float *q, size_t n_q, const uint16_t *k, const uint16_t *v,
                         size_t n, size_t d, float *out, float *mx, float *sm)
{
    attend16(q, n_q, (const uint8_t *)k, (const uint8_t *)v, n, d, out, mx, sm, 0);
}

static void attend16_q8_0(const float *q, size_t n_q, const void *k, const void *v, size_t n,
                          size_t d, float *out, float *mx, float *sm)
{
    attend16(q, n_q, k, v, n, d, out, mx, sm, 1);
}

static const vec_ops portable = {
    .isa = CPU_ISA_PORTABLE,
    .dot_f32 = dot_f32,
    .transpose16_f32 = transpose16_f32,
    .scores16_f32 = scores16_f32,
    .exp_shift_f32 = exp_shift_f32,
    .max_f32 = max_f32,
    .attend16_f16 = attend16_f16,
    .attend16_q8_0 = attend16_q8_0,
    .silu_mul_f32 = silu_mul_f32,
    .axpy_f32 = axpy_f32,
    .axpy_rows_f32 = axpy_rows_f32,
    .f32_to_f16 = f32_to_f16,
    .f16_to_f32 = f16_to_f32,
    .quantize_q8_0 = quantize_q8_0,
    .q8_0_to_f32 = q8_0_to_f32,
};

const vec_ops *vec_ops_portable(void)
{
    return &portable;
}

const vec_ops *vec_ops_for(cpu_isa isa)
{
    if (cpu_isa_check(isa, NULL) != SEM_OK)
        return NULL;
    switch (isa) {
    case CPU_ISA_AVX2:
        return vec_ops_avx2();
    case CPU_ISA_AVX512:
        return vec_ops_avx512();
    default:
        return vec_ops_portable();
    }
}
