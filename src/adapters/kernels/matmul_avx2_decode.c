/*
 * matmul_avx2_decode.c - the one-token kernels for Q4_0 and Q4_K: 8 rows
 * at once, one 32-bit lane per row. Compiled with the AVX2 tier's flags
 * (CMake, this file only): nothing here may run unless
 * cpu_isa_check(CPU_ISA_AVX2) passed. The AVX-512 tier uses them too
 * (matmul_avx512.c, its table says why).
 *
 * The dots (matmul_avx2.c) take one row at a time, so each block costs its
 * own float step (Q4_0: a scalar scale product, a broadcast, a convert, an
 * FMA and the offset term per 32 values) and each row a horizontal sum,
 * which bound AVX2 decode below the memory's rate (docs/performance.md).
 * Here a block of 8 rows is one step: their quants are transposed in
 * registers so lane l holds row l, each group of 4 activations is
 * broadcast to every lane, and one float step serves the 8 blocks; the
 * lanes end as the 8 rows' outputs, with no horizontal sum. The weights
 * are read where they lie (no repacked copy); the next 8 rows are asked
 * for as a step goes.
 *  - Q4_0 (18-byte blocks of 32): the float step is a convert, the
 *    activation scale and offset term in one FMA, and an FMA with the 8
 *    rows' scales.
 *  - Q4_K (144-byte super-blocks of 256): each 32-byte quant chunk (two
 *    sub-blocks) is an 8x8 dword transpose; a sub-block's int16 sums meet
 *    its 6-bit scale in vpmaddwd, the mins meet the activation sums in
 *    another, and one float step per super-block applies d and dmin.
 *
 * Q8_0 keeps the dots: the same order (an 8x8 dword transpose per block of
 * 8 rows, vpsignb, a vpmaddwd per vector) decoded the 1B Q8_0 model at
 * 19-21 tok/s against the dots' 22-25 on the AMD EPYC (Zen 4), which read
 * Q8_0 at close to the plain read rate already.
 *
 * Exactness: nibbles are unsigned (<= 15), so 8 vpmaddubsw pair sums add
 * up in int16 (8 x 2 x 15 x 128 = 30720 < 32768) before one vpmaddwd; Q4_K
 * sums reach 8 sub-blocks x 63 x 61440 < 2^31 in int32.
 *
 * Threads: reentrant; the only memory written is the caller's y and
 * scratch.
 */
#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "matmul_avx2_util.h"
#include "matmul_kernels.h"
#include "quant.h"

#define ROWS MM_DECODE_ROWS /* rows per step: one per lane of 8 */
_Static_assert(ROWS == 8, "one row per 32-bit lane of a 256-bit vector");

/* Block b of the 8 rows at p[0..7] (at offset o = b * 18) as 8
 * vectors of unsigned nibbles: w[v] lane l holds values 4v..4v+3 (v < 4)
 * or 16+4(v-4).. (v >= 4) of row l. Row l's 16 quant bytes go to the low
 * (l < 4) or high half of z[l % 4]; a 4x4 dword transpose within the
 * halves puts dword s of row l in lane l of r[s]. */
ALWAYS_INLINE void rows_nibbles(const uint8_t *const p[ROWS], size_t o, __m256i w[8])
{
    __m256i z[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        z[i] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p[i] + o + 2))),
            _mm_loadu_si128((const __m128i *)(const void *)(p[i + 4] + o + 2)), 1);
    __m256i r[4];
    mm_transpose_4x4_halves(z, r);
    const __m256i m0f = _mm256_set1_epi8(15);
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        w[v] = _mm256_and_si256(r[v], m0f);
        w[v + 4] = _mm256_and_si256(_mm256_srli_epi16(r[v], 4), m0f);
    }
}

/* The 8 rows' f16 block scales as f32, lane l = row l. */
ALWAYS_INLINE __m256 rows_scales(const uint8_t *const p[ROWS], size_t o)
{
    __m128i h = _mm_setr_epi16((short)mm_ld16(p[0] + o), (short)mm_ld16(p[1] + o),
                               (short)mm_ld16(p[2] + o), (short)mm_ld16(p[3] + o),
                               (short)mm_ld16(p[4] + o), (short)mm_ld16(p[5] + o),
                               (short)mm_ld16(p[6] + o), (short)mm_ld16(p[7] + o));
    return _mm256_cvtph_ps(h);
}

/* The integer dot of block b of 8 rows with the token's block aq (32
 * quants), lane l = row l, before the offset term. */
ALWAYS_INLINE __m256i rows_dot(const __m256i w[8], const int8_t *aq)
{
    __m256i p = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        int32_t g;
        memcpy(&g, aq + 4 * v, sizeof g);
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[v], _mm256_set1_epi32(g)));
    }
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Row pointers of the step at row r: rows at or past r1 repeat row
 * r1 - 1 (computed, never stored). */
ALWAYS_INLINE void rows_at(const matmul_weight *w, size_t r, size_t r1, const uint8_t *p[ROWS])
{
    for (int l = 0; l < ROWS; l++) {
        size_t row = r + (size_t)l < r1 ? r + (size_t)l : r1 - 1;
        p[l] = (const uint8_t *)w->data + row * w->row_bytes;
    }
}

/* Asks for bytes [*pf, *pf + n) of w's data, if inside it, and moves *pf
 * on: a step reads the next step's rows (contiguous in memory) ahead as it
 * goes, so DRAM is always being read ahead. */
ALWAYS_INLINE void prefetch_ahead(const matmul_weight *w, size_t *pf, size_t n)
{
    if (*pf >= (size_t)w->n_out * w->row_bytes)
        return;
    for (size_t k = 0; k < n; k += 64)
        _mm_prefetch((const char *)w->data + *pf + k, _MM_HINT_T0);
    *pf += n;
}

ALWAYS_INLINE void rows_store(__m256 acc, size_t r, size_t r1, float *y)
{
    if (r + ROWS <= r1) {
        _mm256_storeu_ps(y + r, acc);
    } else {
        _Alignas(32) float out[ROWS];
        _mm256_store_ps(out, acc);
        memcpy(y + r, out, (r1 - r) * sizeof *out);
    }
}

/* Q4_0 rows [r, r + ROWS) for the one token of a; off[b] is activation
 * block b's offset term. */
static void rows_q4_0(const matmul_weight *w, const mm_act *a, const float *off, size_t r,
                      size_t r1, float *y)
{
    const size_t nb = (size_t)w->n_in / 32;
    const uint8_t *p[ROWS];
    rows_at(w, r, r1, p);
    size_t pf = (r + ROWS) * w->row_bytes;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        prefetch_ahead(w, &pf, ROWS * QUANT_Q4_0_BYTES);
        const size_t o = b * QUANT_Q4_0_BYTES;
        __m256i q[8];
        rows_nibbles(p, o, q);
        __m256i s = rows_dot(q, a->q + 32 * b);
        __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d[b]),
                                   _mm256_broadcast_ss(&off[b]));
        acc = _mm256_fmadd_ps(f, rows_scales(p, o), acc);
    }
    rows_store(acc, r, r1, y);
}

/* mm_rows_fn for one token: y[r] for r in [r0, r1). The scratch holds
 * each activation block's offset term, -8 d sum(q) ([n_in / 32] f32),
 * so a step adds it with the activation scale in one FMA. */
void mm_avx2_decode_q4_0(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                         float *y, size_t ld_y, void *scratch)
{
    (void)ld_y; /* one token: its row of y only */
    size_t nb = (size_t)w->n_in / 32;
    assert(nb * sizeof(float) <= mm_scratch_bytes(1));
    float *off = scratch;
    for (size_t b = 0; b < nb; b++)
        off[b] = -8.0f * a->d[b] * (float)a->sum32[b];
    for (size_t r = r0; r < r1; r += ROWS)
        rows_q4_0(w, a, off, r, r1, y);
}

/* ================================================================ Q4_K */

/* The scales of super-block (offset o) of the 8 rows, lane l = row l:
 * sc[j] the 6-bit scale of sub-block j in both int16 halves of the lane
 * (a vpmaddwd multiplier), mn[s] the mins of sub-blocks 2s and 2s + 1 as
 * an int16 pair, d and dmin as f32. A row's first 16 bytes are d, dmin
 * and the 12 packed scale bytes: dwords [d|dmin, v0, v1, v2], unpacked
 * as mm_kquant_scales_packed does, 2 rows per register (row l low, l + 4
 * high), then widened and transposed. */
ALWAYS_INLINE void k_scales(const uint8_t *const p[ROWS], size_t o, __m256i sc[8],
                            __m256i mn[4], __m256 *d, __m256 *dmin)
{
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4);
    const __m256i m_lo = _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f,
                                           0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f);
    const __m256i m_hi = _mm256_setr_epi32(0, 0x03030303, 0, 0x03030303, 0, 0x03030303, 0,
                                           0x03030303);
    __m256i x[4], y[4], s16[4], m16[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        x[i] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p[i] + o))),
            _mm_loadu_si128((const __m128i *)(const void *)(p[i + 4] + o)), 1);
        /* [sc0-3, sc4-7, m0-3, m4-7] from A = [v0, v2, v1, v2], B = [v0, v0, v1, v1] */
        __m256i A = _mm256_shuffle_epi32(x[i], _MM_SHUFFLE(3, 2, 3, 1));
        __m256i B = _mm256_shuffle_epi32(x[i], _MM_SHUFFLE(2, 2, 1, 1));
        __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(A, shift), m_lo);
        __m256i hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(B, 6), m_hi), 4);
        y[i] = _mm256_or_si256(lo, hi);
        s16[i] = _mm256_unpacklo_epi8(y[i], _mm256_setzero_si256()); /* sc0..7 as int16 */
        m16[i] = _mm256_unpackhi_epi8(y[i], _mm256_setzero_si256()); /* m0..7 */
    }
    __m256i st[4];
    mm_transpose_4x4_halves(s16, st); /* st[s] lane l: (sc 2s, sc 2s+1) of row l */
    mm_transpose_4x4_halves(m16, mn);
    const __m256i dup0 = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0,
                                          1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    const __m256i dup1 = _mm256_add_epi8(dup0, _mm256_set1_epi8(2));
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) {
        sc[2 * s] = _mm256_shuffle_epi8(st[s], dup0);
        sc[2 * s + 1] = _mm256_shuffle_epi8(st[s], dup1);
    }
    /* dword 0 of each half of x[0..3]: row l's d | dmin << 16 in lane l */
    __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpacklo_epi32(x[2], x[3]);
    __m256i dd = _mm256_unpacklo_epi64(t0, t1);
    __m256i dl = _mm256_and_si256(dd, _mm256_set1_epi32(0xffff));
    __m256i dh = _mm256_srli_epi32(dd, 16);
    *d = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(dl),
                                          _mm256_extracti128_si256(dl, 1)));
    *dmin = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(dh),
                                             _mm256_extracti128_si256(dh, 1)));
}

/* The 32-byte quant chunk c (sub-blocks 2c: low nibbles, 2c + 1: high) of
 * super-block (offset o) of the 8 rows times the token's 64 activations
 * aq, each sub-block's int16 sums times its scale: int32, lane l = row l. */
ALWAYS_INLINE __m256i k_chunk(const uint8_t *const p[ROWS], size_t o, int c, const int8_t *aq,
                              const __m256i sc[8])
{
    __m256i z[8], r[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        z[i] = _mm256_loadu_si256((const __m256i *)(const void *)(p[i] + o + 16 + 32 * c));
    mm_transpose_8x8(z, r);
    const __m256i m0f = _mm256_set1_epi8(15);
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        int32_t g0, g1;
        memcpy(&g0, aq + 4 * v, sizeof g0);
        memcpy(&g1, aq + 32 + 4 * v, sizeof g1);
        lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(r[v], m0f),
                                                       _mm256_set1_epi32(g0)));
        hi = _mm256_add_epi16(
            hi, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(r[v], 4), m0f),
                                     _mm256_set1_epi32(g1)));
    }
    return _mm256_add_epi32(_mm256_madd_epi16(lo, sc[2 * c]), _mm256_madd_epi16(hi, sc[2 * c + 1]));
}

/* Q4_K rows [r, r + ROWS) for the one token of a; asum[4b + s] holds the
 * activation sums of super-block b's sub-blocks 2s and 2s + 1 as an int16
 * pair (the mins' vpmaddwd operand). */
static void rows_q4_K(const matmul_weight *w, const mm_act *a, const int32_t *asum, size_t r,
                      size_t r1, float *y)
{
    const size_t nb = (size_t)w->n_in / QUANT_QK_K;
    const uint8_t *p[ROWS];
    rows_at(w, r, r1, p);
    size_t pf = (r + ROWS) * w->row_bytes;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const size_t o = b * QUANT_Q4_K_BYTES;
        const int8_t *aq = a->q + QUANT_QK_K * b;
        __m256i sc[8], mn[4];
        __m256 d, dmin;
        k_scales(p, o, sc, mn, &d, &dmin);
        __m256i isum = _mm256_setzero_si256(), mins = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            prefetch_ahead(w, &pf, ROWS * QUANT_Q4_K_BYTES / 4);
            isum = _mm256_add_epi32(isum, k_chunk(p, o, c, aq + 64 * c, sc));
            __m256i pair = _mm256_set1_epi32(asum[4 * b + (size_t)c]);
            mins = _mm256_add_epi32(mins, _mm256_madd_epi16(mn[c], pair));
        }
        __m256 da = _mm256_broadcast_ss(&a->d[b]);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, da), acc);
        acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, da), acc);
    }
    rows_store(acc, r, r1, y);
}

/* mm_rows_fn for one token: y[r] for r in [r0, r1). The scratch holds the
 * activation sums per pair of sub-blocks ([n_in / 64] int32). */
void mm_avx2_decode_q4_K(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                         float *y, size_t ld_y, void *scratch)
{
    (void)ld_y;
    size_t n = (size_t)w->n_in;
    assert(n / 64 * sizeof(int32_t) <= mm_scratch_bytes(1));
    int32_t *asum = scratch;
    for (size_t k = 0; k < n / 64; k++) { /* sub-blocks 2k, 2k + 1: bsums 4k .. 4k + 3 */
        const int16_t *bs = a->bsums + 4 * k;
        uint32_t s0 = (uint16_t)(bs[0] + bs[1]), s1 = (uint16_t)(bs[2] + bs[3]);
        asum[k] = (int32_t)(s0 | s1 << 16);
    }
    for (size_t r = r0; r < r1; r += ROWS)
        rows_q4_K(w, a, asum, r, r1, y);
}
