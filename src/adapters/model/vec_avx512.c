/*
 * vec_avx512.c - the vector primitives on AVX-512 (vec.h). Compiled with
 * the AVX-512 tier's flags; only reached through vec_ops_for, which checks
 * the CPU. Tails use masked loads and stores.
 */
#include <immintrin.h>
#include <string.h>

#include "quant.h"
#include "vec_tiers.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __mmask16 tail16(size_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

ALWAYS_INLINE float ldh(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return _cvtsh_ss(v);
}

static float dot_f32(const float *a, const float *b, size_t n)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_f16_f32(const uint16_t *a, const float *b, size_t n)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512 a1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i + 16)));
        acc0 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(a1, _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 a0 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i));
        acc0 = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static void axpy_f32(float *y, float s, const float *x, size_t n)
{
    __m512 vs = _mm512_set1_ps(s);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 r = _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static void axpy_f16(float *y, float s, const uint16_t *x, size_t n)
{
    __m512 vs = _mm512_set1_ps(s);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(vs, xv, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

static void f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

/* quant_q8_0_block's operations, 16 lanes at a time. */
static void quantize_q8_0(void *dst, const float *src, size_t n)
{
    uint8_t *o = dst;
    for (size_t k = 0; k < n; k += 32, o += QUANT_Q8_0_BYTES) {
        __m512 v0 = _mm512_loadu_ps(src + k), v1 = _mm512_loadu_ps(src + k + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        uint16_t d = (uint16_t)_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
        memcpy(o, &d, 2);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)(o + 2), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(o + 18), _mm512_cvtepi32_epi8(i1));
    }
}

static float dot_q8_0_f32(const void *q, const float *b, size_t n)
{
    const uint8_t *blk = q;
    __m512 acc = _mm512_setzero_ps();
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
        __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
        __m512 part = _mm512_fmadd_ps(q1, _mm512_loadu_ps(b + k + 16),
                                      _mm512_mul_ps(q0, _mm512_loadu_ps(b + k)));
        acc = _mm512_fmadd_ps(part, _mm512_set1_ps(ldh(blk)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static void axpy_q8_0(float *y, float s, const void *q, size_t n)
{
    const uint8_t *blk = q;
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m512 sd = _mm512_set1_ps(s * ldh(blk));
        __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
        __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
        _mm512_storeu_ps(y + k, _mm512_fmadd_ps(sd, q0, _mm512_loadu_ps(y + k)));
        _mm512_storeu_ps(y + k + 16, _mm512_fmadd_ps(sd, q1, _mm512_loadu_ps(y + k + 16)));
    }
}

static const vec_ops avx512 = {
    .isa = CPU_ISA_AVX512,
    .dot_f32 = dot_f32,
    .dot_f16_f32 = dot_f16_f32,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .f16_to_f32 = f16_to_f32,
    .quantize_q8_0 = quantize_q8_0,
    .dot_q8_0_f32 = dot_q8_0_f32,
    .axpy_q8_0 = axpy_q8_0,
};

const vec_ops *vec_ops_avx512(void)
{
    return &avx512;
}
