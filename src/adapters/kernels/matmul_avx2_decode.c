/*
 * matmul_avx2_decode.c - the one-token kernel for Q4_0: 8 rows at once,
 * one 32-bit lane per row. Compiled with the AVX2 tier's flags (CMake,
 * this file only): nothing here may run unless cpu_isa_check(CPU_ISA_AVX2)
 * passed. The AVX-512 tier uses it too (matmul_avx512.c, its table says
 * why).
 *
 * The dots (matmul_avx2.c) take one row at a time, so each 32-value block
 * costs its own float step (a scalar scale product, a broadcast, a
 * convert, an FMA, the offset term) and each row a horizontal sum: about
 * 20 instructions per 18-byte block, which bound AVX2 decode below the
 * memory's rate (docs/performance.md). Here block b of 8 rows is one
 * step: their quants are transposed in registers so lane l holds row l,
 * each group of 4 activations is broadcast to every lane, and one float
 * step (convert, activation scale and offset, FMA with the 8 rows' scales) serves
 * the 8 blocks; the lanes end as the 8 rows' outputs, with no horizontal
 * sum. The weights are read where they lie (no repacked copy).
 *
 * Q8_0 keeps the dots: the same order (an 8x8 dword transpose per block of
 * 8 rows, vpsignb, a vpmaddwd per vector) decoded the 1B Q8_0 model at
 * 19-21 tok/s against the dots' 22-25 on the AMD EPYC (Zen 4), which read
 * Q8_0 at close to the plain read rate already.
 *
 * Exactness: the nibbles are unsigned (<= 15), so 8 vpmaddubsw pair sums
 * add up in int16 (8 x 2 x 15 x 128 = 30720 < 32768) before one vpmaddwd.
 *
 * Threads: reentrant; the only memory written is the caller's y.
 */
#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "matmul_avx2_util.h"
#include "matmul_kernels.h"
#include "quant.h"

#define ROWS 8 /* rows per step: one per lane */

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

/*
 * Rows [r, r + ROWS) of w (rows at or past r1 repeat row r1 - 1 and are
 * not stored) for the one token of a. The rows after them (the next
 * step's, contiguous in memory) are asked for as this step goes, about
 * 2.25 cache lines per block, so DRAM is always being read ahead.
 */
static void rows_step(const matmul_weight *w, const mm_act *a, const float *off, size_t r,
                      size_t r1, float *y)
{
    const size_t rb = w->row_bytes, nb = (size_t)w->n_in / 32;
    const uint8_t *base = (const uint8_t *)w->data;
    const uint8_t *p[ROWS];
    for (int l = 0; l < ROWS; l++)
        p[l] = base + (r + (size_t)l < r1 ? r + (size_t)l : r1 - 1) * rb;
    size_t pf = (r + ROWS) * rb, pf_end = (size_t)w->n_out * rb;
    const size_t pf_step = ROWS * QUANT_Q4_0_BYTES; /* bytes of the next rows per block */
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        if (pf < pf_end) {
            _mm_prefetch((const char *)base + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)base + pf + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)base + pf + 128, _MM_HINT_T0);
            pf += pf_step;
        }
        const size_t o = b * QUANT_Q4_0_BYTES;
        __m256i q[8];
        rows_nibbles(p, o, q);
        __m256i s = rows_dot(q, a->q + 32 * b);
        __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d[b]),
                                   _mm256_broadcast_ss(&off[b]));
        acc = _mm256_fmadd_ps(f, rows_scales(p, o), acc);
    }
    if (r + ROWS <= r1) {
        _mm256_storeu_ps(y + r, acc);
    } else {
        _Alignas(32) float out[ROWS];
        _mm256_store_ps(out, acc);
        memcpy(y + r, out, (r1 - r) * sizeof *out);
    }
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
        rows_step(w, a, off, r, r1, y);
}
