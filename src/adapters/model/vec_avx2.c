/*
 * vec_avx2.c - the vector primitives on AVX2 + FMA + F16C (vec.h).
 * Compiled with the AVX2 tier's flags; only reached through vec_ops_for,
 * which checks the CPU. Tails of fewer than 8 values run in scalar code.
 */
#include <immintrin.h>
#include <string.h>

#include "fp16.h"
#include "quant.h"
#include "vec_tiers.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

ALWAYS_INLINE float ldh(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return _cvtsh_ss(v);
}

ALWAYS_INLINE __m256 load_h8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

ALWAYS_INLINE __m256 load_q8(const uint8_t *p) /* 8 int8 -> f32 */
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static float dot_f32(const float *a, const float *b, size_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum8(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float dot_f16_f32(const uint16_t *a, const float *b, size_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(load_h8(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load_h8(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum8(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += fp16_to_f32(a[i]) * b[i];
    return s;
}

static void axpy_f32(float *y, float s, const float *x, size_t n)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += s * x[i];
}

static void axpy_f16(float *y, float s, const uint16_t *x, size_t n)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, load_h8(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += s * fp16_to_f32(x[i]);
}

static void f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = fp16_from_f32(src[i]);
}

static void f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_h8(src + i));
    for (; i < n; i++)
        dst[i] = fp16_to_f32(src[i]);
}

/* llama.cpp's x86 quantize_row_q8_0, which is written for AVX2. */
static void quantize_q8_0(void *dst, const float *src, size_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    uint8_t *o = dst;
    for (size_t k = 0; k < n; k += 32, o += QUANT_Q8_0_BYTES) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(src + k + 8 * (size_t)j);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 x = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        x = _mm_max_ss(x, _mm_movehdup_ps(x));
        float amax = _mm_cvtss_f32(x);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        uint16_t d = (uint16_t)_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
        memcpy(o, &d, 2);
        __m256i i[4];
        for (int j = 0; j < 4; j++)
            i[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(o + 2), p);
    }
}

static float dot_q8_0_f32(const void *q, const float *b, size_t n)
{
    const uint8_t *blk = q;
    __m256 acc = _mm256_setzero_ps();
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m256 part = _mm256_mul_ps(load_q8(blk + 2), _mm256_loadu_ps(b + k));
        part = _mm256_fmadd_ps(load_q8(blk + 10), _mm256_loadu_ps(b + k + 8), part);
        part = _mm256_fmadd_ps(load_q8(blk + 18), _mm256_loadu_ps(b + k + 16), part);
        part = _mm256_fmadd_ps(load_q8(blk + 26), _mm256_loadu_ps(b + k + 24), part);
        acc = _mm256_fmadd_ps(part, _mm256_set1_ps(ldh(blk)), acc);
    }
    return hsum8(acc);
}

static void axpy_q8_0(float *y, float s, const void *q, size_t n)
{
    const uint8_t *blk = q;
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m256 sd = _mm256_set1_ps(s * ldh(blk));
        for (size_t j = 0; j < 32; j += 8)
            _mm256_storeu_ps(y + k + j, _mm256_fmadd_ps(sd, load_q8(blk + 2 + j),
                                                        _mm256_loadu_ps(y + k + j)));
    }
}

static const vec_ops avx2 = {
    .isa = CPU_ISA_AVX2,
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

const vec_ops *vec_ops_avx2(void)
{
    return &avx2;
}
