/*
 * matmul_avx512.c - the AVX-512 tier (F + BW + VL + VNNI; BF16 when the
 * CPU has it). Compiled with those flags (CMake, this file only): nothing
 * here may run unless cpu_isa_check(CPU_ISA_AVX512) passed.
 *
 * Decode kernels (few tokens, memory bound) read each weight block once and
 * use it for up to 4 tokens. Integer types multiply unsigned weight quants
 * by signed activation quants with vpdpbusd: Q4_0 nibbles (0..15) and
 * Q8_0 quants + 128 are unsigned, and the offset (8 or 128) is taken back
 * with the activation block sums; K-quant quants are unsigned already, their
 * mins (and Q6_K's -32) go through the Q8_K sums of 16 (bsums).
 *
 * The prefill kernel (many tokens, compute bound) is in
 * matmul_avx512_prefill.c; this file holds the table.
 *
 * Threads: reentrant; no state.
 */
#include <immintrin.h>

#include "fp16.h"
#include "matmul_avx512_util.h"
#include "quant.h"

/* ================================================================ activations */

static void quant_q8_0(const float *x, size_t n, int8_t *q, float *d, int32_t *sum32)
{
    for (size_t b = 0; b < n / 32; b++, x += 32, q += 32) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        /* Same operations as quant_q8_0_block: d = amax/127 (f16), x * (127/amax)
         * rounded half to even (vcvtps2dq under the default rounding mode). */
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT)); /* = fp16_from_f32 */
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
        sum32[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

static void quant_q8_K(const float *x, size_t n, int8_t *q, float *d, int16_t *bsums)
{
    for (size_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K, q += QUANT_QK_K, bsums += 16) {
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < 16; i++)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)));
        float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(q, 0, QUANT_QK_K);
            memset(bsums, 0, 16 * sizeof *bsums);
            continue;
        }
        /* The first value whose magnitude is amax gives the sign. */
        float max = 0.0f;
        for (int i = 0; i < 16; i++) {
            __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)),
                                             _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (k) {
                max = x[16 * i + __builtin_ctz(k)];
                break;
            }
        }
        float iscale = -127.0f / max;
        for (int i = 0; i < 16; i++) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i),
                                                         _mm512_set1_ps(iscale)));
            v = _mm512_min_epi32(v, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(q + 16 * i), _mm512_cvtepi32_epi8(v));
            bsums[i] = (int16_t)_mm512_reduce_add_epi32(v);
        }
        d[b] = 1.0f / iscale;
    }
}

static void round_f16(const float *x, size_t n, float *out)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(out + i, k, v);
    }
}

/* bf16_from_f32 in vector form: round half to even on the top 16 bits,
 * NaN kept quiet. */
static void round_bf16(const float *x, size_t n, uint16_t *out)
{
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(k, x + i));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
        _mm256_mask_storeu_epi16(out + i, k, _mm512_cvtepi32_epi16(r));
    }
}

/* ================================================================ decode */

/* Each kernel body takes the token count as a compile-time constant (the
 * dispatcher below switches on it), so its per-token accumulators are
 * registers, not memory. */
#define DEFINE_NT_DISPATCH(name)                                                               \
    static void name(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt,        \
                     float *out)                                                               \
    {                                                                                          \
        switch (nt) {                                                                          \
        case 1:                                                                                \
            name##_nt(w, n, a, t0, 1, out);                                                    \
            break;                                                                             \
        case 2:                                                                                \
            name##_nt(w, n, a, t0, 2, out);                                                    \
            break;                                                                             \
        case 3:                                                                                \
            name##_nt(w, n, a, t0, 3, out);                                                    \
            break;                                                                             \
        default:                                                                               \
            name##_nt(w, n, a, t0, 4, out);                                                    \
            break;                                                                             \
        }                                                                                      \
    }

/* ---------------------------------------------------------------- float types */

/* Two accumulators per token: FMA latency would otherwise bound the loop.
 * Row pointers are set up front so the loop only adds offsets. */
ALWAYS_INLINE void dot_float_nt(uint32_t type, const uint8_t *w, size_t n, const mm_act *a,
                                size_t t0, const int nt, float *out)
{
    const int bf16 = a->format == MM_ACT_BF16;
    const void *x[MM_MAX_NT];
    __m512 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        acc0[i] = acc1[i] = _mm512_setzero_ps();
        x[i] = bf16 ? (const void *)(a->h + (t0 + (size_t)i) * n)
                    : (const void *)(a->f + (t0 + (size_t)i) * n);
    }
    size_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m512 w0 = wload(type, w, k, 0xffff), w1 = wload(type, w, k + 16, 0xffff);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            acc0[i] = _mm512_fmadd_ps(w0, aload(bf16, x[i], k, 0xffff), acc0[i]);
            acc1[i] = _mm512_fmadd_ps(w1, aload(bf16, x[i], k + 16, 0xffff), acc1[i]);
        }
    }
    for (; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? 0xffff : (__mmask16)((1u << (n - k)) - 1);
        __m512 w0 = wload(type, w, k, m);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++)
            acc0[i] = _mm512_fmadd_ps(w0, aload(bf16, x[i], k, m), acc0[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i]));
}

ALWAYS_INLINE void dot_f32_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                              float *out)
{
    dot_float_nt(TENSOR_F32, w, n, a, t0, nt, out);
}

ALWAYS_INLINE void dot_f16_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                              float *out)
{
    dot_float_nt(TENSOR_F16, w, n, a, t0, nt, out);
}

ALWAYS_INLINE void dot_bf16_convert_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                                       int nt, float *out)
{
    dot_float_nt(TENSOR_BF16, w, n, a, t0, nt, out);
}

DEFINE_NT_DISPATCH(dot_f32)
DEFINE_NT_DISPATCH(dot_f16)
DEFINE_NT_DISPATCH(dot_bf16_convert)

/* BF16 with AVX512_BF16: vdpbf16ps multiplies bf16 pairs straight from
 * memory, 32 values per instruction, no conversion. */
__attribute__((target("avx512bf16"))) ALWAYS_INLINE void
dot_bf16_native_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, const int nt,
                   float *out)
{
    __m512 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 64 <= n; k += 64) {
        __m512i w0 = _mm512_loadu_si512(w + 2 * k), w1 = _mm512_loadu_si512(w + 2 * k + 64);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            const uint16_t *h = a->h + (t0 + (size_t)i) * n + k;
            acc0[i] = _mm512_dpbf16_ps(acc0[i], (__m512bh)_mm512_loadu_si512(h), (__m512bh)w0);
            acc1[i] = _mm512_dpbf16_ps(acc1[i], (__m512bh)_mm512_loadu_si512(h + 32), (__m512bh)w1);
        }
    }
    for (; k < n; k += 32) {
        __mmask32 m = n - k >= 32 ? 0xffffffffu : (__mmask32)((1u << (n - k)) - 1);
        __m512i w0 = _mm512_maskz_loadu_epi16(m, w + 2 * k);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            __m512i h = _mm512_maskz_loadu_epi16(m, a->h + (t0 + (size_t)i) * n + k);
            acc0[i] = _mm512_dpbf16_ps(acc0[i], (__m512bh)h, (__m512bh)w0);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i]));
}

__attribute__((target("avx512bf16"))) static void dot_bf16_native(const uint8_t *w, size_t n,
                                                                    const mm_act *a, size_t t0,
                                                                    size_t nt, float *out)
{
    switch (nt) {
    case 1:
        dot_bf16_native_nt(w, n, a, t0, 1, out);
        break;
    case 2:
        dot_bf16_native_nt(w, n, a, t0, 2, out);
        break;
    case 3:
        dot_bf16_native_nt(w, n, a, t0, 3, out);
        break;
    default:
        dot_bf16_native_nt(w, n, a, t0, 4, out);
        break;
    }
}

/* ---------------------------------------------------------------- Q8_0, Q4_0 */

/* Two Q8_0 blocks' quants + 128 (sign bit flipped: unsigned), value order. */
ALWAYS_INLINE __m512i q8_0_pair(const uint8_t *blk, size_t bytes)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)(blk + 2));
    __m256i y = _mm256_loadu_si256((const __m256i *)(blk + bytes + 2));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(x), y, 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
}

/* Two Q4_0 blocks' nibbles (0..15) in value order: [lo A, hi A, lo B, hi B]. */
ALWAYS_INLINE __m512i q4_0_pair(const uint8_t *blk, size_t bytes)
{
    __m128i qa = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m128i qb = _mm_loadu_si128((const __m128i *)(blk + bytes + 2));
    __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
    __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1);
    /* t = [qa, qb, qa>>4, qb>>4] -> [qa, qa>>4, qb, qb>>4] */
    t = _mm512_shuffle_i64x2(t, t, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm512_and_si512(t, _mm512_set1_epi8(15));
}

ALWAYS_INLINE __m512i q32_pair(uint32_t type, const uint8_t *blk)
{
    return type == TENSOR_Q8_0 ? q8_0_pair(blk, QUANT_Q8_0_BYTES) : q4_0_pair(blk, QUANT_Q4_0_BYTES);
}

/*
 * Four whole blocks at blk: the unsigned quants of blocks (0, 1) and (2, 3)
 * in value order, and the four scales. Word permutes pick the 16-bit d's
 * and Q4_0's 16-byte nibble runs (all at even offsets) out of two loads
 * that stay inside the 4 blocks.
 */
ALWAYS_INLINE void q32_quad(uint32_t type, const uint8_t *blk, __m512i *w01, __m512i *w23,
                            __m128 *dw)
{
    if (type == TENSOR_Q8_0) { /* 136 bytes; d at 0, 34, 68, 102 */
        __m512i l0 = _mm512_loadu_si512(blk), l1 = _mm512_loadu_si512(blk + 64);
        const __m512i di = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 34, 17, 0);
        *dw = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(l0, di, l1)));
        *w01 = q8_0_pair(blk, QUANT_Q8_0_BYTES);
        *w23 = q8_0_pair(blk + 2 * QUANT_Q8_0_BYTES, QUANT_Q8_0_BYTES);
        return;
    }
    /* Q4_0: 72 bytes; d at 0, 18, 36, 54; nibbles at 2, 20, 38, 56 (16 each) */
    __m512i l0 = _mm512_loadu_si512(blk), l1 = _mm512_loadu_si512(blk + 8);
    const __m512i di = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0, 0, 0, 0, 0, 0, 0, 0, 27, 18, 9, 0);
    const __m512i qi = _mm512_set_epi16(63, 62, 61, 60, 59, 58, 57, 56, /* D: l1 words 24..31 */
                                        26, 25, 24, 23, 22, 21, 20, 19, /* C: l0 words 19..26 */
                                        17, 16, 15, 14, 13, 12, 11, 10, /* B: 10..17 */
                                        8, 7, 6, 5, 4, 3, 2, 1);        /* A: 1..8 */
    *dw = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(di, l0)));
    __m512i q = _mm512_permutex2var_epi16(l0, qi, l1); /* [qsA, qsB, qsC, qsD] */
    const __m512i m0f = _mm512_set1_epi8(15);
    __m512i lo = _mm512_and_si512(q, m0f), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m0f);
    /* [A lo, A hi, B lo, B hi] and [C lo, C hi, D lo, D hi]: values 0..31 of each block */
    *w01 = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0), hi);
    *w23 = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4), hi);
}

ALWAYS_INLINE float hsum128(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

/*
 * Q8_0 and Q4_0, four blocks (128 values) per step. The weights enter
 * vpdpbusd as unsigned u = q + offset (Q8_0: 128, Q4_0: 8); the offset is
 * taken back at the end through the activation block sums:
 *   sum_b dw da (u . a) - offset * sum_b dw da sum(a).
 * Scales: the 4 blocks' dw * da form one 4-float vector, spread over the
 * two 8-lane halves of each 2-block product vector.
 */
ALWAYS_INLINE void dot_q32_nt(uint32_t type, const uint8_t *w, size_t n, const mm_act *a,
                              size_t t0, const int nt, float *out)
{
    const size_t bytes = type == TENSOR_Q8_0 ? QUANT_Q8_0_BYTES : QUANT_Q4_0_BYTES;
    const float offset = type == TENSOR_Q8_0 ? 128.0f : 8.0f;
    const __m512i lo_idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i hi_idx = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    size_t nb = n / 32;
    /* two accumulators per token: one FMA chain per block pair */
    __m512 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
    __m128 corr[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        acc0[i] = acc1[i] = _mm512_setzero_ps();
        corr[i] = _mm_setzero_ps();
    }
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *blk = w + b * bytes;
        __m512i w01, w23;
        __m128 dw;
        q32_quad(type, blk, &w01, &w23, &dw);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + 32 * b;
            __m128 s = _mm_mul_ps(dw, _mm_loadu_ps(a->d + t * nb + b));
            __m512 s01 = _mm512_permutexvar_ps(lo_idx, _mm512_castps128_ps512(s));
            __m512 s23 = _mm512_permutexvar_ps(hi_idx, _mm512_castps128_ps512(s));
            __m512i p01 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w01, _mm512_loadu_si512(aq));
            __m512i p23 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w23,
                                              _mm512_loadu_si512(aq + 64));
            acc0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), s01, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), s23, acc1[i]);
            __m128i sums = _mm_loadu_si128((const __m128i *)(a->sum32 + t * nb + b));
            corr[i] = _mm_fmadd_ps(s, _mm_cvtepi32_ps(sums), corr[i]);
        }
    }
    float rest[MM_MAX_NT] = {0};
    for (; b < nb; b++) { /* fewer than 4 blocks left: one at a time */
        const uint8_t *blk = w + b * bytes;
        __m256i wv = _mm512_castsi512_si256(q32_pair(type, blk)); /* block b only */
        float dw = h2f(blk);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            __m256i av = _mm256_loadu_si256((const __m256i *)(a->q + t * n + 32 * b));
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, av);
            __m128i p4 = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            float dot = hsum128(_mm_cvtepi32_ps(p4)) - offset * (float)a->sum32[t * nb + b];
            rest[i] += dot * (dw * a->d[t * nb + b]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i])) - offset * hsum128(corr[i]) +
                 rest[i];
}

ALWAYS_INLINE void dot_q8_0_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_q32_nt(TENSOR_Q8_0, w, n, a, t0, nt, out);
}

/*
 * Q4_0 with the activations in x4 order (mm_act.qx): a group of 4 blocks
 * is two vectors, the blocks' low nibbles [A0-15 B0-15 C0-15 D0-15] and high
 * nibbles, against the matching halves of the activations, accumulating
 * into one vector whose lanes 4j..4j+3 belong to block j and which starts
 * at -8 * sum(a_j) in lane 4j (the offset of the unsigned nibbles). Then
 * one scale vector [s_A x4 .. s_D x4] per group. About half the
 * instructions of the block-pair kernel, which matters: Q4_0 decode is
 * close to compute bound at full memory bandwidth.
 */
ALWAYS_INLINE void q4_0_group(const uint8_t *blk, __m512i *lo, __m512i *hi, __m512 *dw_lanes)
{
    /* 72 bytes; d at 0, 18, 36, 54; nibbles at 2, 20, 38, 56 (16 each) */
    __m512i l0 = _mm512_loadu_si512(blk), l1 = _mm512_loadu_si512(blk + 8);
    const __m512i di = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0, 0, 0, 0, 0, 0, 0, 0, 27, 18, 9, 0);
    const __m512i qi = _mm512_set_epi16(63, 62, 61, 60, 59, 58, 57, 56, /* D: l1 words 24..31 */
                                        26, 25, 24, 23, 22, 21, 20, 19, /* C: l0 words 19..26 */
                                        17, 16, 15, 14, 13, 12, 11, 10, /* B: 10..17 */
                                        8, 7, 6, 5, 4, 3, 2, 1);        /* A: 1..8 */
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m128 dw = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(di, l0)));
    *dw_lanes = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(dw));
    __m512i q = _mm512_permutex2var_epi16(l0, qi, l1); /* [qsA, qsB, qsC, qsD] */
    const __m512i m0f = _mm512_set1_epi8(15);
    *lo = _mm512_and_si512(q, m0f);
    *hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m0f);
}

/* acc + token t's dot with group g (weights lo, hi; scales dw by lane). */
ALWAYS_INLINE __m512 q4_0_group_dot(const mm_act *a, size_t t, size_t groups, size_t nb, size_t g,
                                    __m512i lo, __m512i hi, __m512 dw, __m512 acc)
{
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const int8_t *qx = a->qx + (t * groups + g) * 128;
    __m512i p = _mm512_load_si512(a->qx_init + (t * groups + g) * 16);
    p = _mm512_dpbusd_epi32(p, lo, _mm512_load_si512(qx));
    p = _mm512_dpbusd_epi32(p, hi, _mm512_load_si512(qx + 64));
    __m512 da = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_loadu_ps(a->d + t * nb + 4 * g)));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p), da), dw, acc);
}

ALWAYS_INLINE void dot_q4_0_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                               const int nt, float *out)
{
    const size_t bytes = QUANT_Q4_0_BYTES;
    size_t nb = n / 32, groups = nb / 4;
    __m512 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
    size_t g = 0;
    for (; g < groups; g += 2) { /* two groups per step: two FMA chains */
        int two = g + 1 < groups;
        __m512i lo0, hi0, lo1 = _mm512_setzero_si512(), hi1 = _mm512_setzero_si512();
        __m512 dw0, dw1 = _mm512_setzero_ps();
        q4_0_group(w + 4 * g * bytes, &lo0, &hi0, &dw0);
        if (two)
            q4_0_group(w + 4 * (g + 1) * bytes, &lo1, &hi1, &dw1);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            acc0[i] = q4_0_group_dot(a, t, groups, nb, g, lo0, hi0, dw0, acc0[i]);
            if (two)
                acc1[i] = q4_0_group_dot(a, t, groups, nb, g + 1, lo1, hi1, dw1, acc1[i]);
        }
    }
    float rest[MM_MAX_NT] = {0};
    for (size_t b = 4 * groups; b < nb; b++) { /* the last 1-3 blocks, natural order */
        const uint8_t *blk = w + b * bytes;
        __m256i wv = _mm512_castsi512_si256(q4_0_pair(blk, bytes));
        float dw = h2f(blk);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            __m256i av = _mm256_loadu_si256((const __m256i *)(a->q + t * n + 32 * b));
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, av);
            __m128i p4 = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            float dot = hsum128(_mm_cvtepi32_ps(p4)) - 8.0f * (float)a->sum32[t * nb + b];
            rest[i] += dot * (dw * a->d[t * nb + b]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i])) + rest[i];
}

DEFINE_NT_DISPATCH(dot_q8_0)
DEFINE_NT_DISPATCH(dot_q4_0)

/* ---------------------------------------------------------------- K-quants */

/* 32 bytes at p -> [low nibbles (32), high nibbles (32)]: one Q4_K/Q5_K
 * chunk of 64 values in value order. */
ALWAYS_INLINE __m512i nibbles_32(const uint8_t *p)
{
    __m256i y = _mm256_loadu_si256((const __m256i *)p);
    __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1);
    return _mm512_and_si512(t, _mm512_set1_epi8(15));
}

/* Chunk c of a Q5_K block: nibbles plus bit 2c (low half) / 2c+1 (high
 * half) of qh as bit 4. qh2 = the 32 qh bytes twice. */
ALWAYS_INLINE __m512i q5_K_chunk(const uint8_t *blk, __m512i qh2, int c)
{
    __m512i q = nibbles_32(blk + 48 + 32 * c);
    __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                     _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
    return _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh2, sel), q, _mm512_set1_epi8(16));
}

/* Lane scales of chunk c: sub-blocks of 32 (Q4_K, Q5_K), lanes 0..7 take
 * sc[2c], 8..15 sc[2c+1]; sc32 holds the scales in lanes 0..7. */
ALWAYS_INLINE __m512i lanes_of_32(__m512i sc32, int c)
{
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(2 * c)), sc32);
}

/* Q6_K sub-blocks of 16: lanes 4j..4j+3 take sc[4c + j]. */
ALWAYS_INLINE __m512i lanes_of_16(__m512i sc32, int c)
{
    const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    return _mm512_permutexvar_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(4 * c)), sc32);
}

/*
 * Q4_K and Q5_K: x = d sc q - dmin m, so per token and super-block
 *   d da sum_c sum_lanes sc (q . a)  -  dmin da sum_s m_s (bsum_2s + bsum_2s+1).
 * The 4 chunk vectors are decoded once and used for every token.
 */
ALWAYS_INLINE void dot_kasym_nt(int five, const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                                const int nt, float *out)
{
    const size_t bytes = five ? QUANT_Q5_K_BYTES : QUANT_Q4_K_BYTES;
    size_t nb = n / QUANT_QK_K;
    __m512 acc[MM_MAX_NT];
    __m256 macc[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        acc[i] = _mm512_setzero_ps();
        macc[i] = _mm256_setzero_ps();
    }
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * bytes;
        uint8_t scm[16];
        mm_kquant_scales_packed(blk + 4, scm);
        __m128i scm8 = _mm_loadu_si128((const __m128i *)scm);
        __m512i sc32 = _mm512_cvtepu8_epi32(scm8); /* lanes 0..7 scales */
        __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm8, scm8)); /* m0 m0 m1 m1 .. */
        __m512i s0 = lanes_of_32(sc32, 0), s1 = lanes_of_32(sc32, 1);
        __m512i s2 = lanes_of_32(sc32, 2), s3 = lanes_of_32(sc32, 3);
        __m512i q0, q1, q2, q3;
        if (five) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16));
            __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
            q0 = q5_K_chunk(blk, qh2, 0);
            q1 = q5_K_chunk(blk, qh2, 1);
            q2 = q5_K_chunk(blk, qh2, 2);
            q3 = q5_K_chunk(blk, qh2, 3);
        } else {
            q0 = nibbles_32(blk + 16);
            q1 = nibbles_32(blk + 48);
            q2 = nibbles_32(blk + 80);
            q3 = nibbles_32(blk + 112);
        }
        float d = h2f(blk), dmin = h2f(blk + 2);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + QUANT_QK_K * b;
            const __m512i z = _mm512_setzero_si512();
            __m512i p0 = _mm512_dpbusd_epi32(z, q0, _mm512_loadu_si512(aq));
            __m512i p1 = _mm512_dpbusd_epi32(z, q1, _mm512_loadu_si512(aq + 64));
            __m512i p2 = _mm512_dpbusd_epi32(z, q2, _mm512_loadu_si512(aq + 128));
            __m512i p3 = _mm512_dpbusd_epi32(z, q3, _mm512_loadu_si512(aq + 192));
            __m512i isb = _mm512_add_epi32(
                _mm512_add_epi32(_mm512_mullo_epi32(p0, s0), _mm512_mullo_epi32(p1, s1)),
                _mm512_add_epi32(_mm512_mullo_epi32(p2, s2), _mm512_mullo_epi32(p3, s3)));
            float da = a->d[t * nb + b];
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb), _mm512_set1_ps(d * da), acc[i]);
            __m256i bs = _mm256_loadu_si256((const __m256i *)(a->bsums + t * (n / 16) + 16 * b));
            __m256 mm = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, m16));
            macc[i] = _mm256_fmadd_ps(mm, _mm256_set1_ps(dmin * da), macc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        __m128 mh = _mm_add_ps(_mm256_castps256_ps128(macc[i]), _mm256_extractf128_ps(macc[i], 1));
        out[i] = _mm512_reduce_add_ps(acc[i]) - hsum128(mh);
    }
}

ALWAYS_INLINE void dot_q4_K_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_kasym_nt(0, w, n, a, t0, nt, out);
}

ALWAYS_INLINE void dot_q5_K_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_kasym_nt(1, w, n, a, t0, nt, out);
}

/* Q6_K half h, low or high 64 values as unsigned 6-bit quants in value
 * order: nibbles of ql[64h..] plus 2 bits of qh[32h..] moved to bits 4-5. */
ALWAYS_INLINE void q6_K_half(const uint8_t *blk, int h, __m512i *lo, __m512i *hi)
{
    const __m512i m30 = _mm512_set1_epi8(0x30), m0f = _mm512_set1_epi8(15);
    __m512i ql = _mm512_loadu_si512(blk + 64 * h);
    __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
    /* value l: qh bits 0-1, l+32: bits 2-3, l+64: 4-5, l+96: 6-7 */
    __m512i hlo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi16(qh, 4)),
                                     _mm256_slli_epi16(qh, 2), 1);
    __m512i hhi = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
    *lo = _mm512_or_si512(_mm512_and_si512(ql, m0f), _mm512_and_si512(hlo, m30));
    *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m0f),
                          _mm512_and_si512(hhi, m30));
}

/* Q6_K: x = d sc (q - 32) over sub-blocks of 16; per token and block
 *   d da (sum_lanes sc (q . a) - 32 sum_s sc_s bsum_s). */
ALWAYS_INLINE void dot_q6_K_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                               const int nt, float *out)
{
    size_t nb = n / QUANT_QK_K;
    __m512 acc[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc[i] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QUANT_Q6_K_BYTES;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(blk + 192));
        __m512i sc32 = _mm512_cvtepi8_epi32(sc8);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m512i s0 = lanes_of_16(sc32, 0), s1 = lanes_of_16(sc32, 1);
        __m512i s2 = lanes_of_16(sc32, 2), s3 = lanes_of_16(sc32, 3);
        __m512i q0, q1, q2, q3;
        q6_K_half(blk, 0, &q0, &q1);
        q6_K_half(blk, 1, &q2, &q3);
        float d = h2f(blk + 208);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + QUANT_QK_K * b;
            const __m512i z = _mm512_setzero_si512();
            __m512i p0 = _mm512_dpbusd_epi32(z, q0, _mm512_loadu_si512(aq));
            __m512i p1 = _mm512_dpbusd_epi32(z, q1, _mm512_loadu_si512(aq + 64));
            __m512i p2 = _mm512_dpbusd_epi32(z, q2, _mm512_loadu_si512(aq + 128));
            __m512i p3 = _mm512_dpbusd_epi32(z, q3, _mm512_loadu_si512(aq + 192));
            __m512i isb = _mm512_add_epi32(
                _mm512_add_epi32(_mm512_mullo_epi32(p0, s0), _mm512_mullo_epi32(p1, s1)),
                _mm512_add_epi32(_mm512_mullo_epi32(p2, s2), _mm512_mullo_epi32(p3, s3)));
            __m256i bs = _mm256_loadu_si256((const __m256i *)(a->bsums + t * (n / 16) + 16 * b));
            __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5); /* 32 sc bsum */
            isb = _mm512_sub_epi32(isb, _mm512_zextsi256_si512(off));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb), _mm512_set1_ps(d * a->d[t * nb + b]),
                                     acc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = _mm512_reduce_add_ps(acc[i]);
}

DEFINE_NT_DISPATCH(dot_q4_K)
DEFINE_NT_DISPATCH(dot_q5_K)
DEFINE_NT_DISPATCH(dot_q6_K)

/* ================================================================ table */

#define AVX512_TABLE(bf16_dot, bf16_batch, prefill_fn, split)                                 \
    {                                                                                          \
        .isa = CPU_ISA_AVX512,                                                                 \
        .dot =                                                                                 \
            {                                                                                  \
                [TENSOR_F32] = dot_f32,                                                        \
                [TENSOR_F16] = dot_f16,                                                        \
                [TENSOR_BF16] = bf16_dot,                                                      \
                [TENSOR_Q8_0] = dot_q8_0,                                                      \
                [TENSOR_Q4_0] = dot_q4_0,                                                      \
                [TENSOR_Q4_K] = dot_q4_K,                                                      \
                [TENSOR_Q5_K] = dot_q5_K,                                                      \
                [TENSOR_Q6_K] = dot_q6_K,                                                      \
            },                                                                                 \
        .quant_q8_0 = quant_q8_0, .quant_q8_K = quant_q8_K, .round_f16 = round_f16,            \
        .round_bf16 = round_bf16, .q4_0_x4 = true,                                             \
        .decode = {[TENSOR_Q4_0] = (split) ? mm_avx2_decode_q4_0 : NULL,                       \
                   [TENSOR_Q4_K] = (split) ? mm_avx2_decode_q4_K : NULL},                      \
        .batch =                                                                               \
            {                                                                                  \
                [TENSOR_F32] = {mm_avx512_batch, 2},                                           \
                [TENSOR_F16] = {mm_avx512_batch, 3},                                           \
                [TENSOR_BF16] = {bf16_batch, 3},                                               \
                [TENSOR_Q8_0] = {mm_avx512_batch, 2},                                          \
                [TENSOR_Q4_0] = {mm_avx512_batch, 2},                                          \
                [TENSOR_Q4_K] = {mm_avx512_batch, 2},                                          \
                [TENSOR_Q5_K] = {mm_avx512_batch, 2},                                          \
                [TENSOR_Q6_K] = {mm_avx512_batch, 2},                                          \
            },                                                                                 \
        .batch_act = mm_avx512_batch_act, .batch_lanes = 16, .prefill = prefill_fn,            \
        .prefill_min_tokens = 64,                                                              \
    }

/* decode (split): where 512-bit operations issue as two halves (Zen 4),
 * the one-token kernels of Q4_0 and Q4_K are the AVX2 tier's (8 rows at
 * once, one lane per row). For Q4_0, written with 256-bit vpdpbusd it
 * measured the same, and with 16 rows in 512-bit vectors it was slower
 * (1B Q4_0 decode on the AMD EPYC, Zen 4: 28-29 tok/s against 42-47); the
 * per-row dots gave 35-37. Q4_K_M: 36.5-38.4 with the dots, 37.1-39.6.
 * On a core with whole 512-bit units (the AMD EPYC Zen 5) the per-row
 * dots read faster: bench_matmul --tokens 1, Q4_0 34.9-35.5 GB/s against
 * 30.8-32.0, Q4_K 35.2-36.9 against 33.6-34.6; 1B Q4_0 decode 52.9-54.9
 * tok/s against 48.2-49.5.
 * batch min_tokens: F16 (and BF16 converted) activations are f32, which
 * the decode dots handle as well at 2 tokens.
 * prefill_min_tokens: the prefill kernel packs weight panels per call;
 * below about 64 tokens the small-batch kernel, which does not, is as fast
 * or faster (bench_matmul, 2 threads, weights from DRAM, Zen 5: at 48
 * tokens 0.85-0.92 TFLOP/s against 0.56-0.81; at 64 about even). */
/* BF16 with AVX512_BF16: the vdpbf16ps dots are as fast as the
 * small-batch kernel at every token count (bench_matmul, Zen 5). */
static const mm_kernels avx512_plain = AVX512_TABLE(dot_bf16_convert, mm_avx512_batch, mm_avx512_prefill, 0);
static const mm_kernels avx512_bf16 = AVX512_TABLE(dot_bf16_native, NULL, mm_avx512_prefill_bf16, 0);
static const mm_kernels avx512_plain_split = AVX512_TABLE(dot_bf16_convert, mm_avx512_batch, mm_avx512_prefill, 1);
static const mm_kernels avx512_bf16_split = AVX512_TABLE(dot_bf16_native, NULL, mm_avx512_prefill_bf16, 1);

const mm_kernels *mm_kernels_avx512_variant(bool native_bf16, bool split)
{
    if (split)
        return native_bf16 ? &avx512_bf16_split : &avx512_plain_split;
    return native_bf16 ? &avx512_bf16 : &avx512_plain;
}

const mm_kernels *mm_kernels_avx512(void)
{
    cpu_features f = cpu_features_detect();
    return mm_kernels_avx512_variant(f.avx512bf16, f.avx512_split);
}
