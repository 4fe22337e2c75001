/*
 * vec_avx2.c - the vector primitives on AVX2 + FMA + F16C (vec.h).
 * Compiled with the AVX2 tier's flags; only reached through vec_ops_for,
 * which checks the CPU. Tails of fewer than 8 values run in scalar code.
 */
#include <immintrin.h>
#include <math.h>
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

/* 8x8 blocks in registers: unpack pairs, shuffle quads, swap 128-bit
 * halves. Rows past n_rows read as zeros; a column tail (n % 8) is scalar. */
static void transpose16_f32(float *dst, const float *src, size_t n_rows, size_t n)
{
    size_t c = 0;
    for (; c + 8 <= n; c += 8) {
        for (size_t h = 0; h < 16; h += 8) { /* rows h..h+7 -> dst columns h..h+7 */
            __m256 r[8], t[8];
            for (size_t j = 0; j < 8; j++)
                r[j] = h + j < n_rows ? _mm256_loadu_ps(src + (h + j) * n + c) : _mm256_setzero_ps();
            for (int j = 0; j < 8; j += 2) {
                t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
                t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
            }
            for (int j = 0; j < 8; j += 4) {
                r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
                r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xee);
                r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
                r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xee);
            }
            /* r[i] (i < 4) holds columns i (low half) and 4 + i (high half) of rows 0..3,
             * r[4 + i] the same of rows 4..7 */
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(dst + (c + (size_t)i) * 16 + h,
                                 _mm256_permute2f128_ps(r[i], r[4 + i], 0x20));
                _mm256_storeu_ps(dst + (c + 4 + (size_t)i) * 16 + h,
                                 _mm256_permute2f128_ps(r[i], r[4 + i], 0x31));
            }
        }
    }
    for (; c < n; c++)
        for (size_t j = 0; j < 16; j++)
            dst[c * 16 + j] = j < n_rows ? src[j * n + c] : 0.0f;
}

/* Four chains of FMAs per half, so the adds' latency (4 cycles) does not
 * set the pace: one chain of 64 (a head of 64 dims) waited on itself. */
static void scores16_f32(float *s, const float *q, const float *kt, size_t n)
{
    __m256 lo[4], hi[4];
#pragma GCC unroll 8
    for (int c = 0; c < 4; c++)
        lo[c] = hi[c] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
#pragma GCC unroll 8
        for (int c = 0; c < 4; c++) {
            __m256 qi = _mm256_set1_ps(q[i + (size_t)c]);
            lo[c] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kt + (i + (size_t)c) * 16), lo[c]);
            hi[c] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kt + (i + (size_t)c) * 16 + 8), hi[c]);
        }
    for (; i < n; i++) {
        __m256 qi = _mm256_set1_ps(q[i]);
        lo[0] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kt + i * 16), lo[0]);
        hi[0] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kt + i * 16 + 8), hi[0]);
    }
    __m256 l = _mm256_add_ps(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(lo[2], lo[3]));
    __m256 h = _mm256_add_ps(_mm256_add_ps(hi[0], hi[1]), _mm256_add_ps(hi[2], hi[3]));
    _mm256_storeu_ps(s, l);
    _mm256_storeu_ps(s + 8, h);
}

/* exp as described in vec_tiers.h, 8 lanes; 2^k through the exponent
 * bits. */
ALWAYS_INLINE __m256 exp8(__m256 x)
{
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(VEC_EXP_MIN), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(VEC_EXP_MIN)), _mm256_set1_ps(VEC_EXP_MAX));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(VEC_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(VEC_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(VEC_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(VEC_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEC_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEC_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEC_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEC_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEC_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* k in [-126, 128]: 2^k as k + 127 in the exponent field, in two
     * halves so that k = 128 (x near 88.3) does not overflow the field */
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256i h = _mm256_srai_epi32(ki, 1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ki, h), _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

static float exp_shift_f32(float *s, size_t n, float shift)
{
    __m256 sum = _mm256_setzero_ps(), sh = _mm256_set1_ps(shift);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), sh));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float t = hsum8(sum);
    for (; j < n; j++) {
        s[j] = expf(s[j] - shift);
        t += s[j];
    }
    return t;
}

static float max_f32(const float *s, size_t n)
{
    float m = s[0];
    size_t j = 0;
    if (n >= 8) {
        __m256 v = _mm256_loadu_ps(s);
        for (j = 8; j + 8 <= n; j += 8)
            v = _mm256_max_ps(v, _mm256_loadu_ps(s + j));
        __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        m = _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
    }
    for (; j < n; j++)
        m = s[j] > m ? s[j] : m;
    return m;
}

ALWAYS_INLINE __m256 silu_mul8(__m256 x, __m256 u)
{
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

/* The tail goes through the same vector code (from a buffer), so every
 * element's result is the same wherever it sits: a sequence's FFN does not
 * depend on what else is in the batch. */
static void silu_mul_f32(float *g, const float *u, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float x[8] = {0}, y[8] = {0};
        memcpy(x, g + i, (n - i) * sizeof *x);
        memcpy(y, u + i, (n - i) * sizeof *y);
        _mm256_storeu_ps(x, silu_mul8(_mm256_loadu_ps(x), _mm256_loadu_ps(y)));
        memcpy(g + i, x, (n - i) * sizeof *x);
    }
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

/* y[i .. i + 8C) += sum_r w[r] x[r][i ..]: C independent chains of n_rows
 * FMAs. */
ALWAYS_INLINE void axpy_rows_pass(float *y, const float *w, const float *x, size_t n_rows,
                                  size_t n, size_t i, const int C)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int c = 0; c < C; c++)
        a[c] = _mm256_loadu_ps(y + i + 8 * (size_t)c);
    for (size_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n + i;
        __m256 s = _mm256_set1_ps(w[r]);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            a[c] = _mm256_fmadd_ps(s, _mm256_loadu_ps(xr + 8 * c), a[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; c++)
        _mm256_storeu_ps(y + i + 8 * (size_t)c, a[c]);
}

/* 64 values of y per pass (8 chains), so a head of 64 dims is one pass:
 * with 32 per pass the chains' latency set the pace. */
static void axpy_rows_f32(float *y, const float *w, const float *x, size_t n_rows, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        axpy_rows_pass(y, w, x, n_rows, n, i, 8);
    for (; i + 32 <= n; i += 32) /* the rest of a head of 96 */
        axpy_rows_pass(y, w, x, n_rows, n, i, 4);
    if (i < n)
        for (size_t r = 0; r < n_rows; r++)
            axpy_f32(y + i, w[r], x + r * n + i, n - i);
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

static void q8_0_to_f32(float *dst, const void *q, size_t n)
{
    const uint8_t *blk = q;
    for (size_t k = 0; k < n; k += 32, blk += QUANT_Q8_0_BYTES) {
        __m256 d = _mm256_set1_ps(ldh(blk));
        for (size_t j = 0; j < 32; j += 8)
            _mm256_storeu_ps(dst + k + j, _mm256_mul_ps(d, load_q8(blk + 2 + j)));
    }
}

/* ------------------------------------------------ one decode step's keys */

/* 8 values of a K/V row from value c on (c a multiple of 8): f16, or q8_0
 * (d x q, exact in f32, as q8_0_to_f32). q8 is a constant at every call. */
ALWAYS_INLINE __m256 ld8(const uint8_t *row, size_t c, int q8)
{
    if (!q8)
        return load_h8((const uint16_t *)(const void *)(row + 2 * c));
    const uint8_t *b = row + c / 32 * QUANT_Q8_0_BYTES;
    return _mm256_mul_ps(_mm256_set1_ps(ldh(b)), load_q8(b + 2 + c % 32));
}

/* Lane L (of 2 lanes of 128 bits) of the result holds, at 4L + t, the sum
 * of the 4 values of p_t in lane L. */
ALWAYS_INLINE __m256 sum4_lanes(__m256 p0, __m256 p1, __m256 p2, __m256 p3)
{
    __m256 s01 = _mm256_add_ps(_mm256_unpacklo_ps(p0, p1), _mm256_unpackhi_ps(p0, p1));
    __m256 s23 = _mm256_add_ps(_mm256_unpacklo_ps(p2, p3), _mm256_unpackhi_ps(p2, p3));
    __m256d a = _mm256_castps_pd(s01), b = _mm256_castps_pd(s23);
    return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                         _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
}

/* 8 sums from two sum4_lanes results (keys 0-3 and 4-7), in key order. */
ALWAYS_INLINE __m256 sum8_keys(__m256 a, __m256 b)
{
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

/* The scores of 2 queries against keys k[0..3] (rows of d values). */
ALWAYS_INLINE void scores2x4(const float *const q[2], const uint8_t *const k[4], size_t d,
                             __m256 *out, int q8)
{
    __m256 p00 = _mm256_setzero_ps(), p01 = p00, p02 = p00, p03 = p00, p10 = p00, p11 = p00,
           p12 = p00, p13 = p00;
    for (size_t c = 0; c < d; c += 8) {
        __m256 k0 = ld8(k[0], c, q8), k1 = ld8(k[1], c, q8), k2 = ld8(k[2], c, q8),
               k3 = ld8(k[3], c, q8);
        __m256 x = _mm256_loadu_ps(q[0] + c);
        p00 = _mm256_fmadd_ps(x, k0, p00);
        p01 = _mm256_fmadd_ps(x, k1, p01);
        p02 = _mm256_fmadd_ps(x, k2, p02);
        p03 = _mm256_fmadd_ps(x, k3, p03);
        x = _mm256_loadu_ps(q[1] + c);
        p10 = _mm256_fmadd_ps(x, k0, p10);
        p11 = _mm256_fmadd_ps(x, k1, p11);
        p12 = _mm256_fmadd_ps(x, k2, p12);
        p13 = _mm256_fmadd_ps(x, k3, p13);
    }
    out[0] = sum4_lanes(p00, p01, p02, p03);
    out[1] = sum4_lanes(p10, p11, p12, p13);
}

/* y_g[c..c+32) = y_g * f_g + sum_j w_g[j] v_j[c..c+32) for 2 outputs. */
ALWAYS_INLINE void values2x32(float *const y[2], const float f[2], const float w[2][16],
                              const uint8_t *v, size_t rb, size_t n, size_t c, int q8)
{
    __m256 f0 = _mm256_set1_ps(f[0]), f1 = _mm256_set1_ps(f[1]);
    __m256 a00 = _mm256_mul_ps(f0, _mm256_loadu_ps(y[0] + c)), a01 = _mm256_mul_ps(f0, _mm256_loadu_ps(y[0] + c + 8)),
           a02 = _mm256_mul_ps(f0, _mm256_loadu_ps(y[0] + c + 16)), a03 = _mm256_mul_ps(f0, _mm256_loadu_ps(y[0] + c + 24)),
           a10 = _mm256_mul_ps(f1, _mm256_loadu_ps(y[1] + c)), a11 = _mm256_mul_ps(f1, _mm256_loadu_ps(y[1] + c + 8)),
           a12 = _mm256_mul_ps(f1, _mm256_loadu_ps(y[1] + c + 16)), a13 = _mm256_mul_ps(f1, _mm256_loadu_ps(y[1] + c + 24));
    for (size_t j = 0; j < n; j++) {
        const uint8_t *vj = v + j * rb;
        __m256 v0 = ld8(vj, c, q8), v1 = ld8(vj, c + 8, q8), v2 = ld8(vj, c + 16, q8),
               v3 = ld8(vj, c + 24, q8);
        __m256 x = _mm256_broadcast_ss(&w[0][j]);
        a00 = _mm256_fmadd_ps(x, v0, a00);
        a01 = _mm256_fmadd_ps(x, v1, a01);
        a02 = _mm256_fmadd_ps(x, v2, a02);
        a03 = _mm256_fmadd_ps(x, v3, a03);
        x = _mm256_broadcast_ss(&w[1][j]);
        a10 = _mm256_fmadd_ps(x, v0, a10);
        a11 = _mm256_fmadd_ps(x, v1, a11);
        a12 = _mm256_fmadd_ps(x, v2, a12);
        a13 = _mm256_fmadd_ps(x, v3, a13);
    }
    _mm256_storeu_ps(y[0] + c, a00);
    _mm256_storeu_ps(y[0] + c + 8, a01);
    _mm256_storeu_ps(y[0] + c + 16, a02);
    _mm256_storeu_ps(y[0] + c + 24, a03);
    _mm256_storeu_ps(y[1] + c, a10);
    _mm256_storeu_ps(y[1] + c + 8, a11);
    _mm256_storeu_ps(y[1] + c + 16, a12);
    _mm256_storeu_ps(y[1] + c + 24, a13);
}

/* y_g[c..c+8) likewise, for the last values of a d that is not a multiple of 32. */
ALWAYS_INLINE void values2x8(float *const y[2], const float f[2], const float w[2][16],
                             const uint8_t *v, size_t rb, size_t n, size_t c, int q8)
{
    __m256 a0 = _mm256_mul_ps(_mm256_set1_ps(f[0]), _mm256_loadu_ps(y[0] + c));
    __m256 a1 = _mm256_mul_ps(_mm256_set1_ps(f[1]), _mm256_loadu_ps(y[1] + c));
    for (size_t j = 0; j < n; j++) {
        __m256 x = ld8(v + j * rb, c, q8);
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(&w[0][j]), x, a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(&w[1][j]), x, a1);
    }
    _mm256_storeu_ps(y[0] + c, a0);
    _mm256_storeu_ps(y[1] + c, a1);
}

/*
 * Two queries at a time (vec.h; 16 registers hold 2 queries x 4 keys of
 * partial dots, or 2 outputs x 32 values): as the AVX-512 tier, scores by
 * dot products summed four keys at a time, the softmax step in two vectors
 * per query, the outputs in registers while the V rows pass. A missing
 * query repeats the last one into a dummy output; a missing key repeats
 * key 0 and is masked to -inf.
 */
ALWAYS_INLINE void attend16(const float *q, size_t n_q, const uint8_t *k, const uint8_t *v,
                            size_t n, size_t d, float *out, float *mx, float *sm, int q8)
{
    const size_t rb = vec_attend_row_bytes(d, q8);
    float dummy[VEC_ATTEND_MAX_DIM] __attribute__((aligned(32)));
    float w[2][16] __attribute__((aligned(32))), f[2], dmx = 0.0f, dsm = 0.0f;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 live_lo = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx));
    const __m256 live_hi = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), idx));
    const uint8_t *kr[16];
    vec_attend_keys(k, n, rb, kr);
    for (size_t g0 = 0; g0 < n_q; g0 += 2) {
        vec_attend_pass p;
        vec_attend_pass_at(&p, 2, g0, q, n_q, d, out, mx, sm, dummy, &dmx, &dsm);
        float **yg = p.y, **mg = p.mx, **sg = p.sm;
        __m256 part[4][2];
        for (size_t t = 0; t < 4; t++)
            scores2x4(p.q, kr + 4 * t, d, part[t], q8);
        for (size_t g = 0; g < 2; g++) {
            __m256 lo = _mm256_blendv_ps(ninf, sum8_keys(part[0][g], part[1][g]), live_lo);
            __m256 hi = _mm256_blendv_ps(ninf, sum8_keys(part[2][g], part[3][g]), live_hi);
            __m256 mm = _mm256_max_ps(lo, hi);
            __m128 x = _mm_max_ps(_mm256_castps256_ps128(mm), _mm256_extractf128_ps(mm, 1));
            x = _mm_max_ps(x, _mm_movehl_ps(x, x));
            float m = _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x))), old = *mg[g];
            m = m > old ? m : old;
            f[g] = old == m ? 1.0f : expf(old - m); /* 0 on a row's first keys */
            __m256 sh = _mm256_set1_ps(m);
            __m256 elo = exp8(_mm256_sub_ps(lo, sh)), ehi = exp8(_mm256_sub_ps(hi, sh));
            _mm256_store_ps(w[g], elo);
            _mm256_store_ps(w[g] + 8, ehi);
            *sg[g] = *sg[g] * f[g] + hsum8(_mm256_add_ps(elo, ehi));
            *mg[g] = m;
        }
        size_t c = 0;
        for (; c + 32 <= d; c += 32)
            values2x32(yg, f, (const float(*)[16])w, v, rb, n, c, q8);
        for (; c < d; c += 8)
            values2x8(yg, f, (const float(*)[16])w, v, rb, n, c, q8);
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

static const vec_ops avx2 = {
    .isa = CPU_ISA_AVX2,
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

const vec_ops *vec_ops_avx2(void)
{
    return &avx2;
}
