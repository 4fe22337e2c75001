/*
 * vec_avx512.c - the vector primitives on AVX-512 (vec.h). Compiled with
 * the AVX-512 tier's flags; only reached through vec_ops_for, which checks
 * the CPU. Tails use masked loads and stores; whole vectors do not (masked
 * ones measured much slower on Zen 5: widening KV rows with them cost
 * long-context decode 14 %).
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

/* 16x16 blocks: unpack pairs, then quads, then 128-bit lanes. */
static void transpose16_f32(float *dst, const float *src, size_t n_rows, size_t n)
{
    for (size_t c = 0; c < n; c += 16) {
        __mmask16 m = tail16(n - c);
        __m512 r[16], t[16];
        for (size_t j = 0; j < 16; j++)
            r[j] = j >= n_rows  ? _mm512_setzero_ps()
                   : m == 0xffff ? _mm512_loadu_ps(src + j * n + c)
                                 : _mm512_maskz_loadu_ps(m, src + j * n + c);
        for (int j = 0; j < 16; j += 2) {
            t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
            t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
        }
        for (int j = 0; j < 16; j += 4) {
            __m512d a = _mm512_castps_pd(t[j]), b = _mm512_castps_pd(t[j + 2]);
            __m512d e = _mm512_castps_pd(t[j + 1]), f = _mm512_castps_pd(t[j + 3]);
            r[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
            r[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(e, f));
            r[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(e, f));
        }
        /* r[4k + i] holds, in 128-bit lane L, column 4L + i of rows 4k..4k+3 */
        for (int i = 0; i < 4; i++) {
            __m512 a = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);      /* lanes 0,2 | 0,2 */
            __m512 b = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);      /* lanes 1,3 | 1,3 */
            __m512 e = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
            __m512 f = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
            t[i] = _mm512_shuffle_f32x4(a, e, 0x88);      /* column i */
            t[8 + i] = _mm512_shuffle_f32x4(a, e, 0xdd);  /* column 8 + i */
            t[4 + i] = _mm512_shuffle_f32x4(b, f, 0x88);  /* column 4 + i */
            t[12 + i] = _mm512_shuffle_f32x4(b, f, 0xdd); /* column 12 + i */
        }
        for (size_t i = 0; i < 16 && c + i < n; i++)
            _mm512_storeu_ps(dst + (c + i) * 16, t[i]);
    }
}

static void scores16_f32(float *s, const float *q, const float *kt, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_loadu_ps(kt + i * 16), a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + 1]), _mm512_loadu_ps(kt + i * 16 + 16), a1);
    }
    if (i < n)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_loadu_ps(kt + i * 16), a0);
    _mm512_storeu_ps(s, _mm512_add_ps(a0, a1));
}

/* exp as described in vec_tiers.h; 2^k by scalef. */
ALWAYS_INLINE __m512 exp16(__m512 x)
{
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(VEC_EXP_MIN), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(VEC_EXP_MIN)), _mm512_set1_ps(VEC_EXP_MAX));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(VEC_EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(VEC_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(VEC_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(VEC_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEC_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEC_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEC_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEC_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEC_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps((__mmask16)~tiny, _mm512_scalef_ps(p, k));
}

static float exp_shift_f32(float *s, size_t n, float shift)
{
    __m512 sum = _mm512_setzero_ps(), sh = _mm512_set1_ps(shift);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), sh));
        _mm512_storeu_ps(s + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    for (; j < n; j += 16) {
        __mmask16 m = tail16(n - j);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), sh));
        _mm512_mask_storeu_ps(s + j, m, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    }
    return _mm512_reduce_add_ps(sum);
}

static void silu_mul_f32(float *g, const float *u, size_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)),
                                              _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 y = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)),
                                 _mm512_maskz_loadu_ps(m, u + i));
        _mm512_mask_storeu_ps(g + i, m, y);
    }
}

static void axpy_f32(float *y, float s, const float *x, size_t n)
{
    __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 r = _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* 64 outputs at a time stay in registers across all the rows. */
static void axpy_rows_f32(float *y, const float *w, const float *x, size_t n_rows, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a0 = _mm512_loadu_ps(y + i), a1 = _mm512_loadu_ps(y + i + 16);
        __m512 a2 = _mm512_loadu_ps(y + i + 32), a3 = _mm512_loadu_ps(y + i + 48);
        for (size_t r = 0; r < n_rows; r++) {
            const float *xr = x + r * n + i;
            __m512 s = _mm512_set1_ps(w[r]);
            a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr), a0);
            a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 16), a1);
            a2 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 32), a2);
            a3 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 48), a3);
        }
        _mm512_storeu_ps(y + i, a0);
        _mm512_storeu_ps(y + i + 16, a1);
        _mm512_storeu_ps(y + i + 32, a2);
        _mm512_storeu_ps(y + i + 48, a3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 a = _mm512_maskz_loadu_ps(m, y + i);
        for (size_t r = 0; r < n_rows; r++)
            a = _mm512_fmadd_ps(_mm512_set1_ps(w[r]), _mm512_maskz_loadu_ps(m, x + r * n + i), a);
        _mm512_mask_storeu_ps(y + i, m, a);
    }
}

static void f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

static void f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* whole vectors: plain loads and stores */
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 16));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(b));
    }
    for (; i < n; i += 16) {
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

static void q8_0_to_f32(float *dst, const void *q, size_t n)
{
    const uint8_t *blk = q;
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m512 d = _mm512_set1_ps(ldh(blk));
        __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
        __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
        _mm512_storeu_ps(dst + k, _mm512_mul_ps(d, q0));
        _mm512_storeu_ps(dst + k + 16, _mm512_mul_ps(d, q1));
    }
}

static const vec_ops avx512 = {
    .isa = CPU_ISA_AVX512,
    .dot_f32 = dot_f32,
    .transpose16_f32 = transpose16_f32,
    .scores16_f32 = scores16_f32,
    .exp_shift_f32 = exp_shift_f32,
    .silu_mul_f32 = silu_mul_f32,
    .axpy_f32 = axpy_f32,
    .axpy_rows_f32 = axpy_rows_f32,
    .f32_to_f16 = f32_to_f16,
    .f16_to_f32 = f16_to_f32,
    .quantize_q8_0 = quantize_q8_0,
    .q8_0_to_f32 = q8_0_to_f32,
};

const vec_ops *vec_ops_avx512(void)
{
    return &avx512;
}
