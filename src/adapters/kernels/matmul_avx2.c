/*
 * matmul_avx2.c - the AVX2 tier (AVX2 + FMA + F16C). Compiled with those
 * flags (CMake, this file only): nothing here may run unless
 * cpu_isa_check(CPU_ISA_AVX2) passed.
 *
 * The decode dots: each weight block (32 values, one vector) is decoded
 * once and multiplied with up to 4 tokens. They serve every call of the
 * types without a small-batch kernel, and the calls of too few tokens for
 * it (matmul_avx2_batch.c: Q8_0, Q4_0, Q4_K). Integer
 * products use vpmaddubsw (unsigned x signed bytes -> pairs of int16) and
 * vpmaddwd (-> int32), which is exact as long as a pair sum fits int16:
 *  - Q4_0 and the K-quants have small unsigned quants (<= 63, so a pair is
 *    at most 2 * 63 * 127 < 32767): they multiply as they are; offsets
 *    (Q4_0's 8, Q6_K's 32) and mins come back through activation sums.
 *  - Q8_0 quants are signed 8-bit: |w| times a with w's sign moved onto a
 *    (vpsignb), at most 2 * 128 * 127 < 32767.
 * K-quant sub-block scales ride in the vpmaddwd multiplier.
 *
 * Threads: reentrant; no state.
 */
#include <immintrin.h>

#include "fp16.h"
#include "matmul_kernels.h"
#include "quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

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

ALWAYS_INLINE float h2f(const uint8_t *p)
{
    return _cvtsh_ss(mm_ld16(p));
}

ALWAYS_INLINE float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

ALWAYS_INLINE int32_t hsum8i(__m256i v)
{
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_unpackhi_epi64(x, x));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(x);
}

ALWAYS_INLINE float hmax8(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

ALWAYS_INLINE __m256 abs8(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* 32 int32 (4 vectors) -> 32 int8 in order; values fit int8. */
ALWAYS_INLINE __m256i pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
    __m256i a = _mm256_packs_epi32(i0, i1); /* 128-bit lanes interleave ... */
    __m256i b = _mm256_packs_epi32(i2, i3);
    __m256i c = _mm256_packs_epi16(a, b);
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)); /* ... undone */
}

/* ================================================================ activations */

/* This is llama.cpp's x86 rule itself (see quant.h). */
static void quant_q8_0(const float *x, size_t n, int8_t *q, float *d, int32_t *sum32)
{
    for (size_t b = 0; b < n / 32; b++, x += 32, q += 32) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(abs8(v0), abs8(v1)), _mm256_max_ps(abs8(v2), abs8(v3)));
        float amax = hmax8(m);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
        __m256 s = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s)); /* rounds half to even */
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
        sum32[b] = hsum8i(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
        _mm256_storeu_si256((__m256i *)q, pack32(i0, i1, i2, i3));
    }
}

static void quant_q8_K(const float *x, size_t n, int8_t *q, float *d, int16_t *bsums)
{
    for (size_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K, q += QUANT_QK_K, bsums += 16) {
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++)
            m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + 8 * i)));
        float amax = hmax8(m);
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(q, 0, QUANT_QK_K);
            memset(bsums, 0, 16 * sizeof *bsums);
            continue;
        }
        float max = 0.0f; /* the first value of largest magnitude, sign kept */
        for (int i = 0; i < 32; i++) {
            __m256 eq = _mm256_cmp_ps(abs8(_mm256_loadu_ps(x + 8 * i)), _mm256_set1_ps(amax),
                                      _CMP_EQ_OQ);
            int bits = _mm256_movemask_ps(eq);
            if (bits) {
                max = x[8 * i + __builtin_ctz((unsigned)bits)];
                break;
            }
        }
        float iscale = -127.0f / max;
        __m256 s = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127);
        for (int g = 0; g < 8; g++) { /* 32 values: two groups of 16 */
            const float *xg = x + 32 * g;
            __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg), s)), top);
            __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + 8), s)), top);
            __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + 16), s)), top);
            __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + 24), s)), top);
            bsums[2 * g] = (int16_t)hsum8i(_mm256_add_epi32(i0, i1));
            bsums[2 * g + 1] = (int16_t)hsum8i(_mm256_add_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(q + 32 * g), pack32(i0, i1, i2, i3));
        }
        d[b] = 1.0f / iscale;
    }
}

static void round_f16(const float *x, size_t n, float *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++)
        out[i] = fp16_to_f32(fp16_from_f32(x[i]));
}

/* bf16_from_f32 on 8 lanes: round half to even on the top 16 bits, NaN
 * made quiet. */
static void round_bf16(const float *x, size_t n, uint16_t *out)
{
    size_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        r = _mm256_blendv_epi8(r, qnan, nan);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(out + i), p);
    }
    for (; i < n; i++)
        out[i] = bf16_from_f32(x[i]);
}

/* ================================================================ float types */

ALWAYS_INLINE __m256 wload(uint32_t type, const uint8_t *w, size_t k)
{
    if (type == TENSOR_F32)
        return _mm256_loadu_ps((const float *)(const void *)(w + 4 * k));
    __m128i h = _mm_loadu_si128((const __m128i *)(w + 2 * k));
    if (type == TENSOR_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

ALWAYS_INLINE __m256 aload(const mm_act *a, size_t t, size_t k)
{
    if (a->format == MM_ACT_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)(a->h + t * a->n_in + k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_loadu_ps(a->f + t * a->n_in + k);
}

ALWAYS_INLINE float wscalar(uint32_t type, const uint8_t *w, size_t k)
{
    return type == TENSOR_F32   ? mm_ldf32(w + 4 * k)
           : type == TENSOR_F16 ? fp16_to_f32(mm_ld16(w + 2 * k))
                                : bf16_to_f32(mm_ld16(w + 2 * k));
}

ALWAYS_INLINE float ascalar(const mm_act *a, size_t t, size_t k)
{
    return a->format == MM_ACT_BF16 ? bf16_to_f32(a->h[t * a->n_in + k]) : a->f[t * a->n_in + k];
}

ALWAYS_INLINE void dot_float_nt(uint32_t type, const uint8_t *w, size_t n, const mm_act *a,
                                size_t t0, const int nt, float *out)
{
    __m256 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc0[i] = acc1[i] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256 w0 = wload(type, w, k), w1 = wload(type, w, k + 8);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            acc0[i] = _mm256_fmadd_ps(w0, aload(a, t0 + (size_t)i, k), acc0[i]);
            acc1[i] = _mm256_fmadd_ps(w1, aload(a, t0 + (size_t)i, k + 8), acc1[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        float s = hsum8(_mm256_add_ps(acc0[i], acc1[i]));
        for (size_t kk = k; kk < n; kk++)
            s += wscalar(type, w, kk) * ascalar(a, t0 + (size_t)i, kk);
        out[i] = s;
    }
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

ALWAYS_INLINE void dot_bf16_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_float_nt(TENSOR_BF16, w, n, a, t0, nt, out);
}

DEFINE_NT_DISPATCH(dot_f32)
DEFINE_NT_DISPATCH(dot_f16)
DEFINE_NT_DISPATCH(dot_bf16)

/* ================================================================ Q8_0, Q4_0 */

/* Bytes times bytes, pairwise then 4-wise summed: 8 int32 lanes.
 * u: unsigned, s: signed. */
ALWAYS_INLINE __m256i dot_u8s8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* One block's weights as vpmaddubsw operands: Q8_0 gives |q| (its signs
 * go onto the activations), Q4_0 the unsigned nibbles u = q + 8. */
ALWAYS_INLINE __m256i q32_block(uint32_t type, const uint8_t *blk, __m256i *sign)
{
    if (type == TENSOR_Q8_0) {
        *sign = _mm256_loadu_si256((const __m256i *)(blk + 2));
        return _mm256_sign_epi8(*sign, *sign);
    }
    __m128i x = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
    return _mm256_and_si256(y, _mm256_set1_epi8(15));
}

/* Token t's 32 quants of block b, matched to q32_block's weights. */
ALWAYS_INLINE __m256i q32_act(uint32_t type, const int8_t *aq, __m256i sign)
{
    __m256i av = _mm256_loadu_si256((const __m256i *)aq);
    return type == TENSOR_Q8_0 ? _mm256_sign_epi8(av, sign) : av;
}

/*
 * Q8_0 and Q4_0, two blocks per step (two FMA chains per token). Q4_0's
 * offset comes back through the activation block sums:
 *   sum_b dw da (u . a) - 8 sum_b dw da sum(a).
 */
ALWAYS_INLINE void dot_q32_nt(uint32_t type, const uint8_t *w, size_t n, const mm_act *a,
                              size_t t0, const int nt, float *out)
{
    const size_t bytes = type == TENSOR_Q8_0 ? QUANT_Q8_0_BYTES : QUANT_Q4_0_BYTES;
    const int q4 = type == TENSOR_Q4_0;
    const float offset = q4 ? 8.0f : 0.0f;
    size_t nb = n / 32;
    __m256 acc0[MM_MAX_NT], acc1[MM_MAX_NT];
    float corr[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++) {
        acc0[i] = acc1[i] = _mm256_setzero_ps();
        corr[i] = 0.0f;
    }
    for (size_t b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        const uint8_t *blk = w + b * bytes;
        __m256i sg0 = _mm256_setzero_si256(), sg1 = _mm256_setzero_si256();
        __m256i u0 = q32_block(type, blk, &sg0);
        __m256i u1 = two ? q32_block(type, blk + bytes, &sg1) : _mm256_setzero_si256();
        float dw0 = h2f(blk), dw1 = two ? h2f(blk + bytes) : 0.0f;
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + 32 * b;
            const float *da = a->d + t * nb + b;
            const int32_t *sum = a->sum32 + t * nb + b;
            float s0 = dw0 * da[0];
            acc0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(u0, q32_act(type, aq, sg0))),
                                      _mm256_set1_ps(s0), acc0[i]);
            float c = q4 ? s0 * (float)sum[0] : 0.0f;
            if (two) {
                float s1 = dw1 * da[1];
                acc1[i] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(dot_u8s8(u1, q32_act(type, aq + 32, sg1))),
                    _mm256_set1_ps(s1), acc1[i]);
                c += q4 ? s1 * (float)sum[1] : 0.0f;
            }
            if (q4) /* Q8_0 has no offset: its correction is not computed */
                corr[i] += c;
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = hsum8(_mm256_add_ps(acc0[i], acc1[i])) - offset * corr[i];
}

ALWAYS_INLINE void dot_q8_0_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_q32_nt(TENSOR_Q8_0, w, n, a, t0, nt, out);
}

ALWAYS_INLINE void dot_q4_0_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0, int nt,
                               float *out)
{
    dot_q32_nt(TENSOR_Q4_0, w, n, a, t0, nt, out);
}

DEFINE_NT_DISPATCH(dot_q8_0)
DEFINE_NT_DISPATCH(dot_q4_0)

/* ================================================================ K-quants */

/* [s0 x 8, s1 x 8] as int16: the vpmaddwd multiplier of 32 values that
 * span two sub-blocks of 16 (Q6_K) or one of 32 (s0 == s1). */
ALWAYS_INLINE __m256i scale_pair(int s0, int s1)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)s0)),
                                   _mm_set1_epi16((short)s1), 1);
}

/* Q4_K / Q5_K: per token and super-block
 *   d da sum_sub sc (q . a) - dmin da sum_s m_s (bsum_2s + bsum_2s+1). */
ALWAYS_INLINE void dot_kasym_nt(int five, const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                                const int nt, float *out)
{
    const size_t bytes = five ? QUANT_Q5_K_BYTES : QUANT_Q4_K_BYTES;
    const __m256i m0f = _mm256_set1_epi8(15), m01 = _mm256_set1_epi8(1);
    size_t nb = n / QUANT_QK_K;
    __m256 acc[MM_MAX_NT], macc[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc[i] = macc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * bytes;
        uint8_t scm[16];
        mm_kquant_scales_packed(blk + 4, scm);
        __m128i scm8 = _mm_loadu_si128((const __m128i *)scm);
        __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm8, scm8)); /* m0 m0 m1 m1 .. */
        const uint8_t *qs = blk + (five ? 48 : 16);
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
        __m256i qv[8], sv[8]; /* sub-block s: 32 quants and its scale */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            qv[2 * c] = _mm256_and_si256(x, m0f);
            qv[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m0f);
            if (five) {
                __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m01);
                __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m01);
                qv[2 * c] = _mm256_or_si256(qv[2 * c], _mm256_slli_epi16(h0, 4));
                qv[2 * c + 1] = _mm256_or_si256(qv[2 * c + 1], _mm256_slli_epi16(h1, 4));
            }
            sv[2 * c] = _mm256_set1_epi16(scm[2 * c]);
            sv[2 * c + 1] = _mm256_set1_epi16(scm[2 * c + 1]);
        }
        float d = h2f(blk), dmin = h2f(blk + 2);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + QUANT_QK_K * b;
            __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
                __m256i av = _mm256_loadu_si256((const __m256i *)(aq + 32 * s));
                __m256i p16 = _mm256_maddubs_epi16(qv[s], av);
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, sv[s]));
            }
            float da = a->d[t * nb + b];
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * da), acc[i]);
            __m256i bs = _mm256_loadu_si256((const __m256i *)(a->bsums + t * (n / 16) + 16 * b));
            __m256 mm = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, m16));
            macc[i] = _mm256_fmadd_ps(mm, _mm256_set1_ps(dmin * da), macc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = hsum8(acc[i]) - hsum8(macc[i]);
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

/* Q6_K: unsigned 6-bit quants; per token and block
 *   d da (sum_sub sc (q . a) - 32 sum_s sc_s bsum_s). */
ALWAYS_INLINE void dot_q6_K_nt(const uint8_t *w, size_t n, const mm_act *a, size_t t0,
                               const int nt, float *out)
{
    const __m256i m0f = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    size_t nb = n / QUANT_QK_K;
    __m256 acc[MM_MAX_NT];
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        acc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QUANT_Q6_K_BYTES;
        const int8_t *sc = (const int8_t *)(blk + 192);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i qv[8], sv[8]; /* values 32j..32j+31 and their two scales */
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
            /* value l: qh bits 0-1, l+32: 2-3, l+64: 4-5, l+96: 6-7 -> bits 4-5 */
            qv[4 * h] = _mm256_or_si256(_mm256_and_si256(ql0, m0f),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            qv[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m0f),
                                            _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            qv[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m0f),
                                            _mm256_and_si256(qh, m30));
            qv[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m0f),
                                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            sv[j] = scale_pair(sc[2 * j], sc[2 * j + 1]);
        float d = h2f(blk + 208);
#pragma GCC unroll 4
        for (int i = 0; i < nt; i++) {
            size_t t = t0 + (size_t)i;
            const int8_t *aq = a->q + t * n + QUANT_QK_K * b;
            __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m256i av = _mm256_loadu_si256((const __m256i *)(aq + 32 * j));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(qv[j], av), sv[j]));
            }
            __m256i bs = _mm256_loadu_si256((const __m256i *)(a->bsums + t * (n / 16) + 16 * b));
            isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * a->d[t * nb + b]),
                                     acc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nt; i++)
        out[i] = hsum8(acc[i]);
}

DEFINE_NT_DISPATCH(dot_q4_K)
DEFINE_NT_DISPATCH(dot_q5_K)
DEFINE_NT_DISPATCH(dot_q6_K)

/* ================================================================ table */

static const mm_kernels avx2 = {
    .isa = CPU_ISA_AVX2,
    .dot =
        {
            [TENSOR_F32] = dot_f32,
            [TENSOR_F16] = dot_f16,
            [TENSOR_BF16] = dot_bf16,
            [TENSOR_Q8_0] = dot_q8_0,
            [TENSOR_Q4_0] = dot_q4_0,
            [TENSOR_Q4_K] = dot_q4_K,
            [TENSOR_Q5_K] = dot_q5_K,
            [TENSOR_Q6_K] = dot_q6_K,
        },
    .quant_q8_0 = quant_q8_0,
    .quant_q8_K = quant_q8_K,
    .round_f16 = round_f16,
    .round_bf16 = round_bf16,
    .batch =
        {
            /* Q8_0: from 6 tokens (the dots were faster up to 5, measured
             * with bench --parallel on the Intel Xeon) */
            [TENSOR_Q8_0] = {mm_avx2_batch, 6},
            [TENSOR_Q4_0] = {mm_avx2_batch, 2},
            [TENSOR_Q4_K] = {mm_avx2_batch, 2},
        },
    .decode = {[TENSOR_Q4_0] = mm_avx2_decode_q4_0, [TENSOR_Q4_K] = mm_avx2_decode_q4_K},
    .batch_act = mm_avx2_batch_act,
    .batch_lanes = 8,
    .prefill = NULL,
    .prefill_min_tokens = 0,
};

const mm_kernels *mm_kernels_avx2(void)
{
    return &avx2;
}
