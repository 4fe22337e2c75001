/*
 * vec_avx512.c - the vector primitives on AVX-512 (vec.h). Compiled with
 * the AVX-512 tier's flags; only reached through vec_ops_for, which checks
 * the CPU. Tails use masked loads and stores; whole vectors do not (masked
 * ones measured much slower on Zen 5: widening KV rows with them cost
 * long-context decode 14 %).
 */
#include <immintrin.h>
#include <math.h>
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

/* Eight FMA chains: with two, a head of 64 was 32 dependent FMAs, and
 * their latency was the tile's score time. */
static void scores16_f32(float *s, const float *q, const float *kt, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    size_t i = 0;
#define SCORE_STEP(a, c) a = _mm512_fmadd_ps(_mm512_set1_ps(q[i + c]), _mm512_loadu_ps(kt + (i + c) * 16), a)
    for (; i + 8 <= n; i += 8) {
        SCORE_STEP(a0, 0);
        SCORE_STEP(a1, 1);
        SCORE_STEP(a2, 2);
        SCORE_STEP(a3, 3);
        SCORE_STEP(a4, 4);
        SCORE_STEP(a5, 5);
        SCORE_STEP(a6, 6);
        SCORE_STEP(a7, 7);
    }
    for (; i < n; i++)
        SCORE_STEP(a0, 0);
#undef SCORE_STEP
    __m512 x = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    __m512 y = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
    _mm512_storeu_ps(s, _mm512_add_ps(x, y));
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

static float max_f32(const float *s, size_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
    if (j < n)
        m = _mm512_mask_max_ps(m, tail16(n - j), m, _mm512_maskz_loadu_ps(tail16(n - j), s + j));
    return _mm512_reduce_max_ps(m);
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

/* 64 outputs at a time stay in registers across all the rows, in two sets
 * of accumulators (even and odd rows): one set made the 16 rows of a tile
 * 16 dependent FMAs per vector. */
static void axpy_rows_f32(float *y, const float *w, const float *x, size_t n_rows, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a0 = _mm512_loadu_ps(y + i), a1 = _mm512_loadu_ps(y + i + 16);
        __m512 a2 = _mm512_loadu_ps(y + i + 32), a3 = _mm512_loadu_ps(y + i + 48);
        __m512 b0 = _mm512_setzero_ps(), b1 = b0, b2 = b0, b3 = b0;
        size_t r = 0;
        for (; r + 2 <= n_rows; r += 2) {
            const float *xr = x + r * n + i, *xs = xr + n;
            __m512 s = _mm512_set1_ps(w[r]), t = _mm512_set1_ps(w[r + 1]);
            a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr), a0);
            a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 16), a1);
            a2 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 32), a2);
            a3 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 48), a3);
            b0 = _mm512_fmadd_ps(t, _mm512_loadu_ps(xs), b0);
            b1 = _mm512_fmadd_ps(t, _mm512_loadu_ps(xs + 16), b1);
            b2 = _mm512_fmadd_ps(t, _mm512_loadu_ps(xs + 32), b2);
            b3 = _mm512_fmadd_ps(t, _mm512_loadu_ps(xs + 48), b3);
        }
        if (r < n_rows) {
            const float *xr = x + r * n + i;
            __m512 s = _mm512_set1_ps(w[r]);
            a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr), a0);
            a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 16), a1);
            a2 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 32), a2);
            a3 = _mm512_fmadd_ps(s, _mm512_loadu_ps(xr + 48), a3);
        }
        _mm512_storeu_ps(y + i, _mm512_add_ps(a0, b0));
        _mm512_storeu_ps(y + i + 16, _mm512_add_ps(a1, b1));
        _mm512_storeu_ps(y + i + 32, _mm512_add_ps(a2, b2));
        _mm512_storeu_ps(y + i + 48, _mm512_add_ps(a3, b3));
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

/* ------------------------------------------------ one decode step's keys */

/* 16 values of a K/V row from value c on (c a multiple of 16): f16, or
 * q8_0 (d x q, exact in f32, as q8_0_to_f32). q8 is a constant at every
 * call, so each of attend16_f16 and attend16_q8_0 is code of its own. */
ALWAYS_INLINE __m512 ld16(const uint8_t *row, size_t c, int q8)
{
    if (!q8)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * c)));
    const uint8_t *b = row + c / 32 * QUANT_Q8_0_BYTES;
    __m512 x = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 2 + c % 32))));
    return _mm512_mul_ps(_mm512_set1_ps(ldh(b)), x);
}

/* Lane L (of 4 lanes of 128 bits) of the result holds, at 4L + t, the sum
 * of the 4 values of p_t in lane L. */
ALWAYS_INLINE __m512 sum4_lanes(__m512 p0, __m512 p1, __m512 p2, __m512 p3)
{
    __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(p0, p1), _mm512_unpackhi_ps(p0, p1));
    __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(p2, p3), _mm512_unpackhi_ps(p2, p3));
    __m512d a = _mm512_castps_pd(s01), b = _mm512_castps_pd(s23);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
}

/* 16 sums from four sum4_lanes results (keys 0-3, 4-7, 8-11, 12-15): the
 * lanes of each added up, in key order. */
ALWAYS_INLINE __m512 sum16_keys(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    return _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
}

/* The scores of 4 queries against keys k[0..3] (rows of d values). */
ALWAYS_INLINE void scores4x4(const float *const q[4], const uint8_t *const k[4], size_t d,
                             __m512 *out, int q8)
{
    __m512 p00 = _mm512_setzero_ps(), p01 = p00, p02 = p00, p03 = p00, p10 = p00, p11 = p00,
           p12 = p00, p13 = p00, p20 = p00, p21 = p00, p22 = p00, p23 = p00, p30 = p00,
           p31 = p00, p32 = p00, p33 = p00;
    for (size_t c = 0; c < d; c += 16) {
        __m512 k0 = ld16(k[0], c, q8), k1 = ld16(k[1], c, q8), k2 = ld16(k[2], c, q8),
               k3 = ld16(k[3], c, q8);
        __m512 x = _mm512_loadu_ps(q[0] + c);
        p00 = _mm512_fmadd_ps(x, k0, p00);
        p01 = _mm512_fmadd_ps(x, k1, p01);
        p02 = _mm512_fmadd_ps(x, k2, p02);
        p03 = _mm512_fmadd_ps(x, k3, p03);
        x = _mm512_loadu_ps(q[1] + c);
        p10 = _mm512_fmadd_ps(x, k0, p10);
        p11 = _mm512_fmadd_ps(x, k1, p11);
        p12 = _mm512_fmadd_ps(x, k2, p12);
        p13 = _mm512_fmadd_ps(x, k3, p13);
        x = _mm512_loadu_ps(q[2] + c);
        p20 = _mm512_fmadd_ps(x, k0, p20);
        p21 = _mm512_fmadd_ps(x, k1, p21);
        p22 = _mm512_fmadd_ps(x, k2, p22);
        p23 = _mm512_fmadd_ps(x, k3, p23);
        x = _mm512_loadu_ps(q[3] + c);
        p30 = _mm512_fmadd_ps(x, k0, p30);
        p31 = _mm512_fmadd_ps(x, k1, p31);
        p32 = _mm512_fmadd_ps(x, k2, p32);
        p33 = _mm512_fmadd_ps(x, k3, p33);
    }
    out[0] = sum4_lanes(p00, p01, p02, p03);
    out[1] = sum4_lanes(p10, p11, p12, p13);
    out[2] = sum4_lanes(p20, p21, p22, p23);
    out[3] = sum4_lanes(p30, p31, p32, p33);
}

/* y_g[c..c+64) = y_g * f_g + sum_j w_g[j] v_j[c..c+64) for 4 outputs. */
ALWAYS_INLINE void values4x64(float *const y[4], const float f[4], const float w[4][16],
                              const uint8_t *v, size_t rb, size_t n, size_t c, int q8)
{
    __m512 f0 = _mm512_set1_ps(f[0]), f1 = _mm512_set1_ps(f[1]), f2 = _mm512_set1_ps(f[2]),
           f3 = _mm512_set1_ps(f[3]);
    __m512 a00 = _mm512_mul_ps(f0, _mm512_loadu_ps(y[0] + c)), a01 = _mm512_mul_ps(f0, _mm512_loadu_ps(y[0] + c + 16)),
           a02 = _mm512_mul_ps(f0, _mm512_loadu_ps(y[0] + c + 32)), a03 = _mm512_mul_ps(f0, _mm512_loadu_ps(y[0] + c + 48)),
           a10 = _mm512_mul_ps(f1, _mm512_loadu_ps(y[1] + c)), a11 = _mm512_mul_ps(f1, _mm512_loadu_ps(y[1] + c + 16)),
           a12 = _mm512_mul_ps(f1, _mm512_loadu_ps(y[1] + c + 32)), a13 = _mm512_mul_ps(f1, _mm512_loadu_ps(y[1] + c + 48)),
           a20 = _mm512_mul_ps(f2, _mm512_loadu_ps(y[2] + c)), a21 = _mm512_mul_ps(f2, _mm512_loadu_ps(y[2] + c + 16)),
           a22 = _mm512_mul_ps(f2, _mm512_loadu_ps(y[2] + c + 32)), a23 = _mm512_mul_ps(f2, _mm512_loadu_ps(y[2] + c + 48)),
           a30 = _mm512_mul_ps(f3, _mm512_loadu_ps(y[3] + c)), a31 = _mm512_mul_ps(f3, _mm512_loadu_ps(y[3] + c + 16)),
           a32 = _mm512_mul_ps(f3, _mm512_loadu_ps(y[3] + c + 32)), a33 = _mm512_mul_ps(f3, _mm512_loadu_ps(y[3] + c + 48));
    for (size_t j = 0; j < n; j++) {
        const uint8_t *vj = v + j * rb;
        __m512 v0 = ld16(vj, c, q8), v1 = ld16(vj, c + 16, q8), v2 = ld16(vj, c + 32, q8),
               v3 = ld16(vj, c + 48, q8);
        __m512 x = _mm512_set1_ps(w[0][j]);
        a00 = _mm512_fmadd_ps(x, v0, a00);
        a01 = _mm512_fmadd_ps(x, v1, a01);
        a02 = _mm512_fmadd_ps(x, v2, a02);
        a03 = _mm512_fmadd_ps(x, v3, a03);
        x = _mm512_set1_ps(w[1][j]);
        a10 = _mm512_fmadd_ps(x, v0, a10);
        a11 = _mm512_fmadd_ps(x, v1, a11);
        a12 = _mm512_fmadd_ps(x, v2, a12);
        a13 = _mm512_fmadd_ps(x, v3, a13);
        x = _mm512_set1_ps(w[2][j]);
        a20 = _mm512_fmadd_ps(x, v0, a20);
        a21 = _mm512_fmadd_ps(x, v1, a21);
        a22 = _mm512_fmadd_ps(x, v2, a22);
        a23 = _mm512_fmadd_ps(x, v3, a23);
        x = _mm512_set1_ps(w[3][j]);
        a30 = _mm512_fmadd_ps(x, v0, a30);
        a31 = _mm512_fmadd_ps(x, v1, a31);
        a32 = _mm512_fmadd_ps(x, v2, a32);
        a33 = _mm512_fmadd_ps(x, v3, a33);
    }
    _mm512_storeu_ps(y[0] + c, a00);
    _mm512_storeu_ps(y[0] + c + 16, a01);
    _mm512_storeu_ps(y[0] + c + 32, a02);
    _mm512_storeu_ps(y[0] + c + 48, a03);
    _mm512_storeu_ps(y[1] + c, a10);
    _mm512_storeu_ps(y[1] + c + 16, a11);
    _mm512_storeu_ps(y[1] + c + 32, a12);
    _mm512_storeu_ps(y[1] + c + 48, a13);
    _mm512_storeu_ps(y[2] + c, a20);
    _mm512_storeu_ps(y[2] + c + 16, a21);
    _mm512_storeu_ps(y[2] + c + 32, a22);
    _mm512_storeu_ps(y[2] + c + 48, a23);
    _mm512_storeu_ps(y[3] + c, a30);
    _mm512_storeu_ps(y[3] + c + 16, a31);
    _mm512_storeu_ps(y[3] + c + 32, a32);
    _mm512_storeu_ps(y[3] + c + 48, a33);
}

/* y_g[c..c+16) likewise, for the last values of a d that is not a multiple of 64. */
ALWAYS_INLINE void values4x16(float *const y[4], const float f[4], const float w[4][16],
                              const uint8_t *v, size_t rb, size_t n, size_t c, int q8)
{
    __m512 a0 = _mm512_mul_ps(_mm512_set1_ps(f[0]), _mm512_loadu_ps(y[0] + c));
    __m512 a1 = _mm512_mul_ps(_mm512_set1_ps(f[1]), _mm512_loadu_ps(y[1] + c));
    __m512 a2 = _mm512_mul_ps(_mm512_set1_ps(f[2]), _mm512_loadu_ps(y[2] + c));
    __m512 a3 = _mm512_mul_ps(_mm512_set1_ps(f[3]), _mm512_loadu_ps(y[3] + c));
    for (size_t j = 0; j < n; j++) {
        __m512 x = ld16(v + j * rb, c, q8);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[0][j]), x, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(w[1][j]), x, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(w[2][j]), x, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(w[3][j]), x, a3);
    }
    _mm512_storeu_ps(y[0] + c, a0);
    _mm512_storeu_ps(y[1] + c, a1);
    _mm512_storeu_ps(y[2] + c, a2);
    _mm512_storeu_ps(y[3] + c, a3);
}

/*
 * Four queries at a time (vec.h): scores by dot products whose lanes are
 * summed four keys at a time (no transpose, no widened copy of K), the
 * softmax step in one vector per query, and the outputs in registers while
 * the V rows pass. A missing query repeats the last one into a dummy
 * output; a missing key repeats key 0 and is masked to -inf.
 */
ALWAYS_INLINE void attend16(const float *q, size_t n_q, const uint8_t *k, const uint8_t *v,
                            size_t n, size_t d, float *out, float *mx, float *sm, int q8)
{
    const size_t rb = vec_attend_row_bytes(d, q8);
    float dummy[VEC_ATTEND_MAX_DIM] __attribute__((aligned(64)));
    float w[4][16] __attribute__((aligned(64))), f[4], dmx = 0.0f, dsm = 0.0f;
    const __mmask16 live = tail16(n);
    const uint8_t *kr[16];
    vec_attend_keys(k, n, rb, kr);
    for (size_t g0 = 0; g0 < n_q; g0 += 4) {
        vec_attend_pass p;
        vec_attend_pass_at(&p, 4, g0, q, n_q, d, out, mx, sm, dummy, &dmx, &dsm);
        float **yg = p.y, **mg = p.mx, **sg = p.sm;
        __m512 part[4][4];
        for (size_t t = 0; t < 4; t++)
            scores4x4(p.q, kr + 4 * t, d, part[t], q8);
        for (size_t g = 0; g < 4; g++) {
            __m512 s = sum16_keys(part[0][g], part[1][g], part[2][g], part[3][g]);
            s = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), live, s);
            float m = _mm512_reduce_max_ps(s), old = *mg[g];
            m = m > old ? m : old;
            f[g] = old == m ? 1.0f : expf(old - m); /* 0 on a row's first keys */
            __m512 e = exp16(_mm512_sub_ps(s, _mm512_set1_ps(m)));
            _mm512_store_ps(w[g], e);
            *sg[g] = *sg[g] * f[g] + _mm512_reduce_add_ps(e);
            *mg[g] = m;
        }
        size_t c = 0;
        for (; c + 64 <= d; c += 64)
            values4x64(yg, f, (const float(*)[16])w, v, rb, n, c, q8);
        for (; c < d; c += 16)
            values4x16(yg, f, (const float(*)[16])w, v, rb, n, c, q8);
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

static const vec_ops avx512 = {
    .isa = CPU_ISA_AVX512,
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

const vec_ops *vec_ops_avx512(void)
{
    return &avx512;
}
