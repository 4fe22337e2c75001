/*
 * matmul_avx512_batch.c - the AVX-512 small-batch kernel: calls of 2 to 63
 * tokens, such as the decode steps of several sequences at once. Compiled
 * with the AVX-512 tier's flags; nothing here may run unless
 * cpu_isa_check(CPU_ISA_AVX512) passed.
 *
 * Why a third kernel. The decode dots (matmul_avx512.c) keep one row's
 * vector lanes on consecutive values, so every block of 32 (or 256) values
 * ends in a convert, a scale and an add per token, and every row in a
 * horizontal sum per token: at 8 tokens that is more work than the
 * multiplications and the call is compute bound. The prefill kernel puts
 * one row per lane, which needs the weights transposed across rows (packed)
 * at about half a cycle per weight: too slow for a few tokens.
 *
 * Here one lane holds one *unit* of a row (a block of 32 for Q8_0/Q4_0, a
 * sub-block of 32 for Q4_K/Q5_K, of 16 for Q6_K): a set of 16 units is
 * transposed from the row's blocks in registers, which only moves 4-byte
 * pieces within one row (a few dozen shuffles per 512 weights, shared by
 * every token), into 8 (Q6_K: 4) vectors of unsigned weight bytes where
 * lane l of vector v holds values 4v..4v+3 of unit l. Per token and set:
 *
 *     p   = vpdpbusd x 8 (the token's quants in the same order; p starts
 *           at -offset * sum(a) per unit for the types with a fixed offset)
 *     acc = fma(cvt(p) * da, S, acc)        S = the unit's weight scale
 *     acc = acc - O * (da * sum(a))         Q4_K/Q5_K only: O = dmin * m
 *
 * so 8 multiply instructions share one float step (vs. 1-2 in the decode
 * dots). Tiles hold up to 8 tokens (a compile-time count, so accumulators
 * stay in registers); more tokens run as balanced tiles over the same rows.
 * matmul.c re-lays out each token's quantized activations once per call
 * (mm_avx512_batch_act) into the lane order of the weights.
 *
 * Rows go in blocks of 16 and, for rows longer than 2048 values, in K
 * chunks, so a tile's activations stay in L1; the 16 rows' sums leave as
 * one vector per token (a transpose-reduce), and the weights of the rows
 * ahead are prefetched (see "entry"). At 8 tokens the kernel is bound by
 * vpdpbusd and the float step (about 2 of them issue per cycle on Zen 5)
 * more than by memory: see docs/performance.md.
 *
 * Float weights (F32, F16, BF16 without AVX512_BF16) keep the decode dots'
 * layout, for up to 8 tokens per pass.
 *
 * Threads: reentrant; the only memory written is the caller's y.
 */
#include <immintrin.h>

#include "fp16.h"
#include "matmul_avx512_util.h"
#include "quant.h"

#define BT 8     /* most tokens per tile */
#define LANES 16 /* units per set: one per 32-bit lane */

/* ================================================================ lane order */

/*
 * Which unit of the row lane l of set s holds (the order the weight
 * transposes below produce):
 *   Q4_0   block 16 set + 4 (l % 4) + l / 4  (4x4 dword transpose of 4 groups of 4 blocks)
 *   Q8_0   block 16 set + l                  (16x8 dword transpose)
 *   Q4_K,  set 2G (low nibbles) / 2G+1 (high) of super-blocks 4G..4G+3:
 *   Q5_K   super-block sb = (l % 8) / 2, 32-byte chunk c = 2 (l % 2) + l / 8,
 *          sub-block 2c (low) or 2c + 1 (high)
 *   Q6_K   sub-block 16 set + l
 */
/* The same as index vectors: Q4_K/Q5_K sets come in pairs (low, high
 * nibbles) per group of 32 sub-blocks, the others are groups of 16 units. */
static const _Alignas(64) int32_t units_q4_0[16] = {0, 4, 8, 12, 1, 5, 9, 13,
                                                    2, 6, 10, 14, 3, 7, 11, 15};
static const _Alignas(64) int32_t units_seq[16] = {0, 1, 2, 3, 4, 5, 6, 7,
                                                   8, 9, 10, 11, 12, 13, 14, 15};
static const _Alignas(64) int32_t units_kasym[2][16] = {
    {0, 4, 8, 12, 16, 20, 24, 28, 2, 6, 10, 14, 18, 22, 26, 30},
    {1, 5, 9, 13, 17, 21, 25, 29, 3, 7, 11, 15, 19, 23, 27, 31}};

void mm_avx512_batch_act(uint32_t type, const mm_act *a, size_t t, uint8_t *bx)
{
    size_t n = a->n_in, unit = mm_batch_unit(type), units = n / unit;
    size_t sets = mm_batch_sets(type, LANES, n), rec = mm_batch_rec_bytes(type, LANES);
    const int8_t *q = a->q + t * n;
    int q8_0 = a->format == MM_ACT_Q8_0;
    int32_t offset = type == TENSOR_Q8_0 ? 128 : type == TENSOR_Q4_0 ? 8 : 32; /* Q6_K: 32 */
    int asym = type == TENSOR_Q4_K || type == TENSOR_Q5_K;
    for (size_t s = 0; s < sets; s++) {
        uint8_t *dst = bx + (s * a->n_tok + t) * rec;
        const int32_t *map = type == TENSOR_Q4_0 ? units_q4_0
                             : asym              ? units_kasym[s % 2]
                                                 : units_seq;
        size_t base = asym ? 32 * (s / 2) : 16 * s;
        __m512i u = _mm512_add_epi32(_mm512_load_si512(map), _mm512_set1_epi32((int)base));
        __mmask16 valid = _mm512_cmplt_epi32_mask(u, _mm512_set1_epi32((int)units));
        __m512i off = _mm512_mullo_epi32(u, _mm512_set1_epi32((int)unit));
        for (size_t v = 0; v < unit / 4; v++) {
            __m512i o = _mm512_add_epi32(off, _mm512_set1_epi32((int)(4 * v)));
            _mm512_store_si512(dst + 64 * v, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
                                                                         valid, o, q, 1));
        }
        float *bd = (float *)(void *)(dst + 16 * unit);
        int32_t *bo = (int32_t *)(void *)(bd + 16);
        _Alignas(64) int32_t ui[16];
        _mm512_store_si512(ui, u);
        for (size_t l = 0; l < 16; l++) {
            size_t k = (size_t)ui[l];
            float d = 0.0f;
            int32_t sum = 0;
            if (k < units) {
                if (q8_0) {
                    d = a->d[t * (n / 32) + k];
                    sum = a->sum32[t * (n / 32) + k];
                } else {
                    const int16_t *bs = a->bsums + t * (n / 16);
                    d = a->d[t * (n / 256) + k * unit / 256];
                    sum = unit == 16 ? bs[k] : bs[2 * k] + bs[2 * k + 1];
                }
            }
            bd[l] = d;
            if (asym) {
                float ds = d * (float)sum;
                memcpy(&bo[l], &ds, sizeof ds);
            } else {
                bo[l] = -offset * sum;
            }
        }
    }
}

/* ================================================================ weight sets */

/*
 * Q4_0, 16 blocks (288 bytes): per group of 4 blocks a word permute of two
 * loads gives [qs A | qs B | qs C | qs D] (as the decode kernel does); a 4x4
 * dword transpose within each 128-bit lane across the 4 groups puts dword s
 * of block 4g + j in lane 4j + g of r[s]. Low nibbles of r[s] are values
 * 4s..4s+3 of the block, high nibbles 16+4s..; scales by two word permutes.
 */
ALWAYS_INLINE void q4_0_set(const uint8_t *p, __m512i w[8], __m512 *s)
{
    const __m512i qi = _mm512_set_epi16(63, 62, 61, 60, 59, 58, 57, 56, 26, 25, 24, 23, 22, 21, 20,
                                        19, 17, 16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    /* scales: word lane 4j + g <- word 9j of group g's first load */
    const __m512i d01 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
                                         0, 0, 59, 27, 0, 0, 50, 18, 0, 0, 41, 9, 0, 0, 32, 0);
    const __m512i d23 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
                                         59, 27, 0, 0, 50, 18, 0, 0, 41, 9, 0, 0, 32, 0, 0, 0);
    __m512i l0[4], q[4];
    #pragma GCC unroll 16
    for (int g = 0; g < 4; g++) {
        l0[g] = _mm512_loadu_si512(p + 72 * g);
        q[g] = _mm512_permutex2var_epi16(l0[g], qi, _mm512_loadu_si512(p + 72 * g + 8));
    }
    __m512i t0 = _mm512_unpacklo_epi32(q[0], q[1]), t1 = _mm512_unpackhi_epi32(q[0], q[1]);
    __m512i t2 = _mm512_unpacklo_epi32(q[2], q[3]), t3 = _mm512_unpackhi_epi32(q[2], q[3]);
    __m512i r[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                    _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
    const __m512i m0f = _mm512_set1_epi8(15);
    #pragma GCC unroll 16
    for (int v = 0; v < 4; v++) {
        w[v] = _mm512_and_si512(r[v], m0f);
        w[v + 4] = _mm512_and_si512(_mm512_srli_epi16(r[v], 4), m0f);
    }
    __m512i s01 = _mm512_permutex2var_epi16(l0[0], d01, l0[1]);
    __m512i s23 = _mm512_permutex2var_epi16(l0[2], d23, l0[3]);
    __m512i sd = _mm512_mask_blend_epi16(0xcccc, s01, s23);
    *s = _mm512_cvtph_ps(_mm512_castsi512_si256(sd));
}

/* Q8_0, 16 blocks (544 bytes): a 16x8 dword transpose of the quants (+128:
 * unsigned), scales by four word permutes of 64-byte loads. */
ALWAYS_INLINE void q8_0_set(const uint8_t *p, __m512i w[8], __m512 *s)
{
    __m512i z[8];
    #pragma GCC unroll 16
    for (int r = 0; r < 8; r++)
        z[r] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 34 * r + 2))),
            _mm256_loadu_si256((const __m256i *)(p + 34 * (r + 8) + 2)), 1);
    transpose_16x8(z, w);
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    #pragma GCC unroll 16
    for (int v = 0; v < 8; v++)
        w[v] = _mm512_xor_si512(w[v], x80);
    /* d of block k = 4m + i is word 4m + 17i of the loads at 128m and
     * 128m + 64: one index vector (lane L = L + 16 (L % 4)) serves every m,
     * each permute keeping only its lanes 4m..4m+3. */
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
                                         63, 46, 29, 12, 59, 42, 25, 8, 55, 38, 21, 4, 51, 34,
                                         17, 0);
    __m512i sd = _mm512_setzero_si512();
    #pragma GCC unroll 16
    for (int m = 0; m < 4; m++) {
        __m512i src = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128 * m), idx,
                                                _mm512_loadu_si512(p + 128 * m + 64));
        sd = _mm512_mask_mov_epi16(sd, (__mmask32)(0xfu << (4 * m)), src);
    }
    *s = _mm512_cvtph_ps(_mm512_castsi512_si256(sd));
}

/* Index vectors in lane order (lane 0 first); see lane_unit for the
 * K-quant lane i: super-block sb(i) = (i % 8) / 2, chunk c(i) = 2 (i % 2) + i / 8. */
#define LANES8(a, b, c, d, e, f, g, h) a, b, c, d, e, f, g, h
/* words of the unpacked scales [sb][sc0..7 m0..7]: (sc 2c, sc 2c+1) then (m 2c, m 2c+1) */
static const _Alignas(64) uint16_t k_scale_words[32] = {
    LANES8(0, 2, 8, 10, 16, 18, 24, 26), LANES8(1, 3, 9, 11, 17, 19, 25, 27),
    LANES8(4, 6, 12, 14, 20, 22, 28, 30), LANES8(5, 7, 13, 15, 21, 23, 29, 31)};
/* words of the 16-byte block heads [sb][d, dmin, scales]: d, then dmin */
static const _Alignas(64) uint16_t k_head_words[32] = {
    LANES8(0, 0, 8, 8, 16, 16, 24, 24), LANES8(0, 0, 8, 8, 16, 16, 24, 24),
    LANES8(1, 1, 9, 9, 17, 17, 25, 25), LANES8(1, 1, 9, 9, 17, 17, 25, 25)};
/* Q5_K: qh dword 8 sb(i) (+ v); rotations taking qh bit 2c / 2c+1 of each byte to bit 4 */
static const _Alignas(64) uint32_t k_qh_dword[16] = {LANES8(0, 0, 8, 8, 16, 16, 24, 24),
                                                     LANES8(0, 0, 8, 8, 16, 16, 24, 24)};
static const _Alignas(64) uint32_t k_rot_lo[16] = {LANES8(4, 0, 4, 0, 4, 0, 4, 0),
                                                   LANES8(2, 30, 2, 30, 2, 30, 2, 30)};
static const _Alignas(64) uint32_t k_rot_hi[16] = {LANES8(3, 31, 3, 31, 3, 31, 3, 31),
                                                   LANES8(1, 29, 1, 29, 1, 29, 1, 29)};
/* Q6_K lane j = sub-block 8h + 2k + e: ql dword 16h + 8 (k & 1) + 4e (+ v),
 * nibble shift 4 (k >> 1); qh dword 8h + 4e (+ v), rotation of bits 2k, 2k+1
 * to bits 4, 5 */
static const _Alignas(64) uint32_t q6_ql_dword[16] = {LANES8(0, 4, 8, 12, 0, 4, 8, 12),
                                                      LANES8(16, 20, 24, 28, 16, 20, 24, 28)};
static const _Alignas(64) uint32_t q6_ql_shift[16] = {LANES8(0, 0, 0, 0, 4, 4, 4, 4),
                                                      LANES8(0, 0, 0, 0, 4, 4, 4, 4)};
static const _Alignas(64) uint32_t q6_qh_dword[16] = {LANES8(0, 4, 0, 4, 0, 4, 0, 4),
                                                      LANES8(8, 12, 8, 12, 8, 12, 8, 12)};
static const _Alignas(64) uint32_t q6_qh_rot[16] = {LANES8(4, 4, 2, 2, 0, 0, 30, 30),
                                                    LANES8(4, 4, 2, 2, 0, 0, 30, 30)};

ALWAYS_INLINE __m512i ld_idx(const void *p)
{
    return _mm512_load_si512(p);
}

/*
 * The scales of 4 Q4_K/Q5_K super-blocks (`bytes` apart) per lane: S = d sc
 * and O = dmin m for the low-nibble set (sub-block 2c) and the high one
 * (2c + 1). The 6-bit scales are unpacked as mm_kquant_scales_packed does,
 * 4 super-blocks at once (one per 128-bit lane).
 */
ALWAYS_INLINE void kasym_scales(const uint8_t *p, size_t bytes, __m512 *s_lo, __m512 *s_hi,
                                __m512 *o_lo, __m512 *o_hi)
{
    __m512i x = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(p + bytes)), 1);
    x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(p + 2 * bytes)), 2);
    x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(p + 3 * bytes)), 3);
    /* dwords per 128-bit lane: [d dmin | s0-3 | s4-7 | s8-11] = [h, v0, v1, v2] */
    __m512i a = _mm512_shuffle_epi32(x, _MM_SHUFFLE(2, 2, 1, 1)); /* v0 v0 v1 v1 */
    __m512i b = _mm512_shuffle_epi32(x, _MM_SHUFFLE(3, 3, 3, 3)); /* v2 */
    __m512i lo = _mm512_and_si512(a, _mm512_set1_epi8(0x3f));     /* sc0-3 _ m0-3 _ */
    __m512i hi = _mm512_or_si512(
        _mm512_and_si512(_mm512_srlv_epi32(b, _mm512_set_epi32(4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0,
                                                               4, 0, 0, 0)),
                         _mm512_set1_epi8(0x0f)),
        _mm512_and_si512(_mm512_srli_epi32(a, 2), _mm512_set1_epi8(0x30))); /* _ sc4-7 _ m4-7 */
    __m512i scm = _mm512_mask_blend_epi32(0xaaaa, lo, hi);
    __m512i sw = _mm512_permutexvar_epi16(ld_idx(k_scale_words), scm);
    __m512i hw = _mm512_permutexvar_epi16(ld_idx(k_head_words), x);
    __m512 d = _mm512_cvtph_ps(_mm512_castsi512_si256(hw));
    __m512 dmin = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hw, 1));
    __m512i sc = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(sw));
    __m512i mn = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(sw, 1));
    const __m512i ff = _mm512_set1_epi32(0xff);
    *s_lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(sc, ff)), d);
    *s_hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 8)), d);
    *o_lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(mn, ff)), dmin);
    *o_hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(mn, 8)), dmin);
}

/* Q4_K / Q5_K, 4 super-blocks: r[v] lane i = dword v of the 32 quant bytes
 * of chunk c(i) of super-block sb(i) (a 16x8 transpose of the 8 64-byte
 * halves); Q5_K's fifth bits come per lane in qh (dword v of the
 * super-block's qh, which holds the bits of values 4v..4v+3 of every
 * chunk). */
ALWAYS_INLINE void kasym_quants(int five, const uint8_t *p, __m512i r[8], __m512i qh[8])
{
    size_t bytes = five ? QUANT_Q5_K_BYTES : QUANT_Q4_K_BYTES, qs = five ? 48 : 16;
    __m512i z[8];
    #pragma GCC unroll 16
    for (int k = 0; k < 8; k++)
        z[k] = _mm512_loadu_si512(p + bytes * (size_t)(k / 2) + qs + 64 * (size_t)(k % 2));
    transpose_16x8(z, r);
    if (!five)
        return;
    __m512i h01 = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 16))),
        _mm256_loadu_si256((const __m256i *)(p + bytes + 16)), 1);
    __m512i h23 = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2 * bytes + 16))),
        _mm256_loadu_si256((const __m256i *)(p + 3 * bytes + 16)), 1);
    __m512i idx = ld_idx(k_qh_dword);
    #pragma GCC unroll 16
    for (int v = 0; v < 8; v++)
        qh[v] = _mm512_permutex2var_epi32(h01, _mm512_add_epi32(idx, _mm512_set1_epi32(v)), h23);
}

/* The low (hi = 0) or high nibbles of r as unsigned quants, Q5_K's fifth
 * bit added: A | (B & C) is ternary-logic function 0xf8. */
ALWAYS_INLINE void kasym_set(int five, int hi, const __m512i r[8], const __m512i qh[8],
                             __m512i w[8])
{
    const __m512i m0f = _mm512_set1_epi8(15);
    #pragma GCC unroll 16
    for (int v = 0; v < 8; v++) {
        __m512i x = hi ? _mm512_srli_epi16(r[v], 4) : r[v];
        w[v] = _mm512_and_si512(x, m0f);
        if (five) {
            __m512i b = _mm512_rolv_epi32(qh[v], ld_idx(hi ? k_rot_hi : k_rot_lo));
            w[v] = _mm512_ternarylogic_epi32(w[v], b, _mm512_set1_epi8(0x10), 0xf8);
        }
    }
}

/* Q6_K, one super-block: lane j = sub-block j; ql and qh dwords picked per
 * lane, nibble and 2 high bits moved in place per lane. */
ALWAYS_INLINE void q6_K_set(const uint8_t *p, __m512i w[4], __m512 *s)
{
    __m512i ql0 = _mm512_loadu_si512(p), ql1 = _mm512_loadu_si512(p + 64);
    __m512i qh = _mm512_loadu_si512(p + 128);
    __m512i li = ld_idx(q6_ql_dword), hi = ld_idx(q6_qh_dword);
    __m512i lsh = ld_idx(q6_ql_shift), hrot = ld_idx(q6_qh_rot);
    #pragma GCC unroll 16
    for (int v = 0; v < 4; v++) {
        __m512i vv = _mm512_set1_epi32(v);
        __m512i l = _mm512_permutex2var_epi32(ql0, _mm512_add_epi32(li, vv), ql1);
        __m512i h = _mm512_permutexvar_epi32(_mm512_add_epi32(hi, vv), qh);
        l = _mm512_and_si512(_mm512_srlv_epi32(l, lsh), _mm512_set1_epi8(15));
        w[v] = _mm512_ternarylogic_epi32(l, _mm512_rolv_epi32(h, hrot), _mm512_set1_epi8(0x30), 0xf8);
    }
    __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 192))));
    *s = _mm512_mul_ps(sc, _mm512_set1_ps(h2f(p + 208)));
}

/* ================================================================ tiles */

/* Where a tile's activations are: the records of its first token, set by
 * set (mm_act.bx). */
typedef struct tile_act {
    const mm_act *a;
    const uint8_t *x; /* set 0's record of the tile's first token */
    size_t set_stride; /* bytes from one set's records to the next */
    size_t t0;
} tile_act;

/* One set of unsigned weights w[nv] (nv = 8 or 4) times T tokens. */
ALWAYS_INLINE void set_tokens(const __m512i *w, int nv, __m512 s, __m512 o, int asym,
                              const tile_act *ta, size_t set, int T, __m512 *acc)
{
    const size_t rec = (size_t)nv * 64 + 128;
    const uint8_t *x = ta->x + set * ta->set_stride;
#pragma GCC unroll 16
    for (int i = 0; i < T; i++, x += rec) {
        const float *d = (const float *)(const void *)(x + nv * 64);
        /* two chains: vpdpbusd's latency is 3x its issue interval */
        __m512i p0 = asym ? _mm512_setzero_si512() : _mm512_load_si512(d + 16);
        __m512i p1 = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int v = 0; v < nv; v += 2) {
            p0 = _mm512_dpbusd_epi32(p0, w[v], _mm512_load_si512(x + 64 * v));
            p1 = _mm512_dpbusd_epi32(p1, w[v + 1], _mm512_load_si512(x + 64 * v + 64));
        }
        __m512i p = _mm512_add_epi32(p0, p1);
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(p), _mm512_load_ps(d));
        acc[i] = _mm512_fmadd_ps(f, s, acc[i]);
        if (asym)
            acc[i] = _mm512_fnmadd_ps(o, _mm512_load_ps(d + 16), acc[i]);
    }
}

/* One group of the row at p (its sets from `set` on) for T tokens. */
ALWAYS_INLINE void group_tokens(uint32_t type, const uint8_t *p, const tile_act *ta, size_t set,
                                int T, __m512 *acc)
{
    __m512i w[8];
    __m512 s, z = _mm512_setzero_ps();
    switch (type) {
    case TENSOR_Q4_0:
        q4_0_set(p, w, &s);
        set_tokens(w, 8, s, z, 0, ta, set, T, acc);
        break;
    case TENSOR_Q8_0:
        q8_0_set(p, w, &s);
        set_tokens(w, 8, s, z, 0, ta, set, T, acc);
        break;
    case TENSOR_Q6_K:
        q6_K_set(p, w, &s);
        set_tokens(w, 4, s, z, 0, ta, set, T, acc);
        break;
    case TENSOR_Q4_K:
    case TENSOR_Q5_K: {
        int five = type == TENSOR_Q5_K;
        __m512i r[8], qh[8];
        __m512 s_lo, s_hi, o_lo, o_hi;
        kasym_scales(p, five ? QUANT_Q5_K_BYTES : QUANT_Q4_K_BYTES, &s_lo, &s_hi, &o_lo, &o_hi);
        kasym_quants(five, p, r, qh);
        kasym_set(five, 0, r, qh, w);
        set_tokens(w, 8, s_lo, o_lo, 1, ta, set, T, acc);
        kasym_set(five, 1, r, qh, w);
        set_tokens(w, 8, s_hi, o_hi, 1, ta, set + 1, T, acc);
        break;
    }
    default:
        break;
    }
}

/* v[0..n) -> lane j = the sum of v[j]'s lanes (j < n; the others 0): pairs
 * within 128-bit lanes, then quads, then a 4x4 transpose of 128-bit lanes. */
ALWAYS_INLINE __m512 reduce_16(const __m512 *v, size_t n)
{
    __m512 t[8], c[4];
#pragma GCC unroll 16
    for (int k = 0; k < 8; k++) {
        __m512 a = (size_t)(2 * k) < n ? v[2 * k] : _mm512_setzero_ps();
        __m512 b = (size_t)(2 * k + 1) < n ? v[2 * k + 1] : _mm512_setzero_ps();
        t[k] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    }
#pragma GCC unroll 16
    for (int k = 0; k < 4; k++) { /* 128-bit lane L: rows 4k..4k+3 */
        __m512d x = _mm512_castps_pd(t[2 * k]), y = _mm512_castps_pd(t[2 * k + 1]);
        c[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    __m512 e01 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x44),
                               _mm512_shuffle_f32x4(c[0], c[1], 0xee));
    __m512 e23 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x44),
                               _mm512_shuffle_f32x4(c[2], c[3], 0xee));
    return _mm512_add_ps(_mm512_shuffle_f32x4(e01, e23, 0x88),
                         _mm512_shuffle_f32x4(e01, e23, 0xdd));
}

/* Weight bytes to ask for ahead of their use: [0] into L1, [1] into L2;
 * step: bytes per group of the visit in 1/65536 (pf_spread). */
typedef struct pf_span {
    const char *p;
    size_t len, step;
} pf_span;

static inline void pf_spread(pf_span pf[2], size_t n);
static inline void prefetch_part(const pf_span pf[2], size_t k);

/* Block geometry as constants (type is a compile-time constant wherever
 * these are inlined). */
ALWAYS_INLINE size_t blk_values(uint32_t type)
{
    return type == TENSOR_Q8_0 || type == TENSOR_Q4_0 ? 32
           : type == TENSOR_F32 || type == TENSOR_F16 || type == TENSOR_BF16 ? 1
                                                                            : QUANT_QK_K;
}

ALWAYS_INLINE size_t blk_bytes(uint32_t type)
{
    switch (type) {
    case TENSOR_F32: return 4;
    case TENSOR_F16:
    case TENSOR_BF16: return 2;
    case TENSOR_Q8_0: return QUANT_Q8_0_BYTES;
    case TENSOR_Q4_0: return QUANT_Q4_0_BYTES;
    case TENSOR_Q4_K: return QUANT_Q4_K_BYTES;
    case TENSOR_Q5_K: return QUANT_Q5_K_BYTES;
    default: return QUANT_Q6_K_BYTES;
    }
}

ALWAYS_INLINE int is_float(uint32_t type)
{
    return type == TENSOR_F32 || type == TENSOR_F16 || type == TENSOR_BF16;
}

/* Groups [g0, g1) of a quantized row for T tokens, added to acc. The row's
 * last group, when partial, is copied into a zeroed buffer (its missing
 * blocks count as zero, as do the activations' lanes past n_in), so no
 * load leaves the row. */
ALWAYS_INLINE void quant_chunk(uint32_t type, const uint8_t *row, const tile_act *ta, size_t g0,
                               size_t g1, const pf_span pf[2], int T, __m512 *acc)
{
    size_t n = ta->a->n_in, group = mm_batch_group(type, LANES);
    size_t gbytes = group / blk_values(type) * blk_bytes(type);
    size_t sets = group / (LANES * mm_batch_unit(type)), full = n / group;
    size_t g = g0;
    pf_span sp[2] = {pf[0], pf[1]};
    pf_spread(sp, g1 - g0);
    for (; g < g1 && g < full; g++) {
        prefetch_part(sp, g - g0);
        group_tokens(type, row + g * gbytes, ta, g * sets, T, acc);
    }
    if (g < g1) {
        prefetch_part(sp, g - g0);
        _Alignas(64) uint8_t buf[4 * QUANT_Q5_K_BYTES];
        memset(buf, 0, sizeof buf);
        memcpy(buf, row + g * gbytes, (n - g * group) / blk_values(type) * blk_bytes(type));
        group_tokens(type, buf, ta, g * sets, T, acc);
    }
}

/* Values [k0, k1) of a float row (F32, F16, BF16 converted) for T tokens,
 * added to acc: each weight vector is loaded once for the T tokens; a
 * second accumulator per token while T <= 4, so that enough FMA chains are
 * in flight. */
ALWAYS_INLINE void float_chunk(uint32_t type, const uint8_t *w, const tile_act *ta, size_t k0,
                               size_t k1, int T, __m512 *acc)
{
    const mm_act *a = ta->a;
    const int bf16 = a->format == MM_ACT_BF16, two = T <= 4;
    size_t n = a->n_in;
    const void *x[BT];
    __m512 acc1[BT];
#pragma GCC unroll 16
    for (int i = 0; i < T; i++) {
        acc1[i] = _mm512_setzero_ps();
        x[i] = bf16 ? (const void *)(a->h + (ta->t0 + (size_t)i) * n)
                    : (const void *)(a->f + (ta->t0 + (size_t)i) * n);
    }
    size_t k = k0;
    for (; k + 32 <= k1; k += 32) {
        __m512 w0 = wload(type, w, k, 0xffff), w1 = wload(type, w, k + 16, 0xffff);
#pragma GCC unroll 16
        for (int i = 0; i < T; i++) {
            acc[i] = _mm512_fmadd_ps(w0, aload(bf16, x[i], k, 0xffff), acc[i]);
            if (two)
                acc1[i] = _mm512_fmadd_ps(w1, aload(bf16, x[i], k + 16, 0xffff), acc1[i]);
            else
                acc[i] = _mm512_fmadd_ps(w1, aload(bf16, x[i], k + 16, 0xffff), acc[i]);
        }
    }
    for (; k < k1; k += 16) {
        __mmask16 m = k1 - k >= 16 ? 0xffff : (__mmask16)((1u << (k1 - k)) - 1);
        __m512 w0 = wload(type, w, k, m);
#pragma GCC unroll 16
        for (int i = 0; i < T; i++)
            acc[i] = _mm512_fmadd_ps(w0, aload(bf16, x[i], k, m), acc[i]);
    }
    if (two)
#pragma GCC unroll 16
        for (int i = 0; i < T; i++)
            acc[i] = _mm512_add_ps(acc[i], acc1[i]);
}

/* ================================================================ entry */

/*
 * Order of work: rows in blocks of RB; within a block, K chunk by K chunk,
 * every row of the block, its partial sums kept between chunks. A chunk
 * holds ACT_L1 bytes of the tile's activation records (8 tokens x 2048
 * values of Q4_0; float types: 512 values), which then stay in L1 while the block's rows
 * pass over them; 8 tokens' whole rows of 8192 would not. Rows of one
 * chunk simply run one after the other.
 *
 * Weights come from DRAM at a rate the hardware prefetchers do not keep up
 * with while the cores are this busy, so each visit (row, chunk) asks for
 * the weight bytes of the visit PF_NEAR ahead into L1 and PF_FAR ahead into
 * L2, a share of them with each group (a burst per row fills the miss
 * buffers and holds up the loads that compute).
 */
#define RB 16       /* rows per block: one vector of outputs per token */
#define ACT_L1 24576 /* bytes of a tile's activations per K chunk */

/* Values per K chunk for a tile of T quantized tokens: whole groups, at
 * least one. Float types use 512 (measured: longer chunks of f32
 * activations run slower at 4 and 8 tokens). */
ALWAYS_INLINE size_t chunk_values(uint32_t type, int T)
{
    if (is_float(type))
        return 512;
    size_t group = mm_batch_group(type, LANES);
    size_t v = ACT_L1 * LANES * mm_batch_unit(type) / ((size_t)T * mm_batch_rec_bytes(type, LANES));
    return v < group ? group : v / group * group;
}
#define PF_NEAR 2   /* visits ahead prefetched into L1 */
#define PF_FAR 16   /* visits ahead prefetched into L2 */

typedef struct visit_order {
    const uint8_t *data;
    size_t row_bytes, r1;
    size_t chunks, chunk_bytes, packed; /* weight bytes per chunk and per row */
} visit_order;

/* The weight bytes of the visit d after (row r of the block at rb, chunk
 * c): len 0 past the work item. */
static inline pf_span visit_ahead(const visit_order *vo, size_t rb, size_t c, size_t r, size_t d)
{
    pf_span none = {NULL, 0, 0};
    size_t re = rb + RB < vo->r1 ? rb + RB : vo->r1, i = r - rb + d;
    while (i >= re - rb) {
        i -= re - rb;
        if (++c == vo->chunks) {
            c = 0;
            rb += RB;
            if (rb >= vo->r1)
                return none;
            re = rb + RB < vo->r1 ? rb + RB : vo->r1;
        }
    }
    size_t off = c * vo->chunk_bytes;
    size_t len = vo->packed - off < vo->chunk_bytes ? vo->packed - off : vo->chunk_bytes;
    pf_span sp = {(const char *)(vo->data + (rb + i) * vo->row_bytes + off), len, 0};
    return sp;
}

/* The prefetches of one visit spread evenly over its n groups, so they do
 * not arrive at the memory system in one burst (front-loading them measured
 * 2-3 % slower at 8 tokens). The share per group is worked out once per
 * visit in fixed point; per group it is a multiply and a shift (divisions
 * there cost as much as the arithmetic of a group at 8 tokens). */
static inline void pf_spread(pf_span pf[2], size_t n)
{
    for (int far = 0; far < 2; far++)
        pf[far].step = (pf[far].len << 16) / n;
}

/* Group k's share of both spans: bytes [len k / n, len (k + 1) / n), from
 * the line holding the first. */
static inline void prefetch_part(const pf_span pf[2], size_t k)
{
    for (int far = 0; far < 2; far++) {
        size_t lo = (pf[far].step * k) >> 16 & ~(size_t)63, hi = (pf[far].step * (k + 1)) >> 16;
        for (size_t o = lo; o < hi; o += 64) {
            if (far)
                _mm_prefetch(pf[far].p + o, _MM_HINT_T1);
            else
                _mm_prefetch(pf[far].p + o, _MM_HINT_T0);
        }
    }
}

/* Rows [r0, r1) for the T tokens of one tile, T a compile-time constant in
 * each instantiation. */
ALWAYS_INLINE void rows_T(uint32_t type, const matmul_weight *w, const tile_act *ta,
                          size_t r0, size_t r1, int T, float *y, size_t ld_y)
{
    size_t n = ta->a->n_in, group = mm_batch_group(type, LANES);
    size_t cv = chunk_values(type, T);
    size_t chunks = (n + cv - 1) / cv;
    visit_order vo = {w->data, w->row_bytes, r1, chunks, cv / blk_values(type) * blk_bytes(type),
                      n / blk_values(type) * blk_bytes(type)};
    _Alignas(64) __m512 part[BT][RB]; /* per token, per row of the block */
    for (size_t rb = r0; rb < r1; rb += RB) {
        size_t re = rb + RB < r1 ? rb + RB : r1;
        for (size_t c = 0; c < chunks; c++) {
            size_t k0 = c * cv, k1 = k0 + cv < n ? k0 + cv : n;
            for (size_t r = rb; r < re; r++) {
                pf_span pf[2] = {visit_ahead(&vo, rb, c, r, PF_NEAR),
                                 visit_ahead(&vo, rb, c, r, PF_FAR)};
                if (is_float(type)) { /* all at once */
                    pf_spread(pf, 1);
                    prefetch_part(pf, 0);
                }
                const uint8_t *row = vo.data + r * w->row_bytes;
                __m512 acc[BT];
#pragma GCC unroll 16
                for (int i = 0; i < T; i++)
                    acc[i] = c ? part[i][r - rb] : _mm512_setzero_ps();
                if (!is_float(type))
                    quant_chunk(type, row, ta, k0 / group, (k1 + group - 1) / group, pf, T, acc);
                else
                    float_chunk(type, row, ta, k0, k1, T, acc);
#pragma GCC unroll 16
                for (int i = 0; i < T; i++)
                    part[i][r - rb] = acc[i];
            }
        }
        /* the block's sums: 16 consecutive outputs per token */
        __mmask16 m = (__mmask16)((1u << (re - rb)) - 1);
        for (int i = 0; i < T; i++)
            _mm512_mask_storeu_ps(y + (ta->t0 + (size_t)i) * ld_y + rb, m,
                                  reduce_16(part[i], re - rb));
    }
}

#define DEFINE_ROWS(name, type)                                                                    \
    static void name(const matmul_weight *w, const tile_act *ta, size_t r0, size_t r1, int T, \
                     float *y, size_t ld_y)                                                    \
    {                                                                                          \
        switch (T) {                                                                           \
        case 2: rows_T(type, w, ta, r0, r1, 2, y, ld_y); break;                                \
        case 3: rows_T(type, w, ta, r0, r1, 3, y, ld_y); break;                                \
        case 4: rows_T(type, w, ta, r0, r1, 4, y, ld_y); break;                                \
        case 5: rows_T(type, w, ta, r0, r1, 5, y, ld_y); break;                                \
        case 6: rows_T(type, w, ta, r0, r1, 6, y, ld_y); break;                                \
        case 7: rows_T(type, w, ta, r0, r1, 7, y, ld_y); break;                                \
        case 8: rows_T(type, w, ta, r0, r1, 8, y, ld_y); break;                                \
        default: rows_T(type, w, ta, r0, r1, 1, y, ld_y); break;                               \
        }                                                                                      \
    }

DEFINE_ROWS(rows_f32, TENSOR_F32)
DEFINE_ROWS(rows_f16, TENSOR_F16)
DEFINE_ROWS(rows_bf16, TENSOR_BF16)
DEFINE_ROWS(rows_q8_0, TENSOR_Q8_0)
DEFINE_ROWS(rows_q4_0, TENSOR_Q4_0)
DEFINE_ROWS(rows_q4_K, TENSOR_Q4_K)
DEFINE_ROWS(rows_q5_K, TENSOR_Q5_K)
DEFINE_ROWS(rows_q6_K, TENSOR_Q6_K)

typedef void (*rows_fn)(const matmul_weight *w, const tile_act *ta, size_t r0, size_t r1, int T,
                        float *y, size_t ld_y);

/* Balanced tiles of at most BT tokens (9 tokens: 5 + 4, not 8 + 1), each
 * over all the rows of the work item, which stay in L2 between tiles. */
static void batch_with(rows_fn fn, const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                       float *y, size_t ld_y)
{
    size_t n_tok = a->n_tok, tiles = (n_tok + BT - 1) / BT;
    for (size_t k = 0; k < tiles; k++) {
        size_t t0 = n_tok * k / tiles, t1 = n_tok * (k + 1) / tiles;
        size_t rec = mm_batch_rec_bytes(w->type, LANES);
        tile_act ta = {a, a->bx ? a->bx + t0 * rec : NULL, n_tok * rec, t0};
        fn(w, &ta, r0, r1, (int)(t1 - t0), y, ld_y);
    }
}

static rows_fn rows_for(uint32_t type)
{
    switch (type) {
    case TENSOR_F32: return rows_f32;
    case TENSOR_F16: return rows_f16;
    case TENSOR_BF16: return rows_bf16;
    case TENSOR_Q8_0: return rows_q8_0;
    case TENSOR_Q4_0: return rows_q4_0;
    case TENSOR_Q4_K: return rows_q4_K;
    case TENSOR_Q5_K: return rows_q5_K;
    default: return rows_q6_K;
    }
}

void mm_avx512_batch(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                     size_t ld_y, void *scratch)
{
    (void)scratch;
    batch_with(rows_for(w->type), w, a, r0, r1, y, ld_y);
}
