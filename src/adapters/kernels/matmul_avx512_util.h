/*
 * matmul_avx512_util.h - helpers the AVX-512 kernel files share (internal:
 * only matmul_avx512*.c include it, and they are compiled with the AVX-512
 * tier's flags; nothing here may run unless cpu_isa_check(CPU_ISA_AVX512)
 * passed).
 *
 * Threads: pure functions.
 */
#ifndef SEM_MATMUL_AVX512_UTIL_H
#define SEM_MATMUL_AVX512_UTIL_H

#include <immintrin.h>

#include "matmul_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The f16 at p (any alignment) as f32. */
ALWAYS_INLINE float h2f(const uint8_t *p)
{
    return _cvtsh_ss(mm_ld16(p));
}

ALWAYS_INLINE __m512 bf16x16_to_f32(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 16 weights of a float-type row at value index k (masked: zeros past the
 * row). */
ALWAYS_INLINE __m512 wload(uint32_t type, const uint8_t *w, size_t k, __mmask16 m)
{
    if (type == TENSOR_F32)
        return _mm512_maskz_loadu_ps(m, w + 4 * k);
    __m256i h = _mm256_maskz_loadu_epi16(m, w + 2 * k);
    return type == TENSOR_F16 ? _mm512_cvtph_ps(h) : bf16x16_to_f32(h);
}

/* 16 activations at value index k of row (f32, or bf16 raw bits), masked. */
ALWAYS_INLINE __m512 aload(int bf16, const void *row, size_t k, __mmask16 m)
{
    if (bf16)
        return bf16x16_to_f32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k));
    return _mm512_maskz_loadu_ps(m, (const float *)row + k);
}

/* 16 rows of 8 dwords, z[r] = [row r | row r + 8] -> out[v] = dword v of
 * rows 0..15 (lane i = row i): one 8x8 transpose serves both halves. */
ALWAYS_INLINE void transpose_16x8(const __m512i z[8], __m512i out[8])
{
    __m512i t[8], s[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm512_unpacklo_epi32(z[r], z[r + 1]);
        t[r + 1] = _mm512_unpackhi_epi32(z[r], z[r + 1]);
    }
#pragma GCC unroll 8
    for (int q = 0; q < 8; q += 4) {                          /* rows q..q+3 */
        s[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);         /* dwords 0 | 4 */
        s[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);     /* 1 | 5 */
        s[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]); /* 2 | 6 */
        s[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]); /* 3 | 7 */
    }
    /* per 256-bit half: [rows 0-3 | rows 4-7] of dword k from lanes 0 (k<4) or 1 */
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_permutex2var_epi64(s[k], lo, s[4 + k]);
        out[k + 4] = _mm512_permutex2var_epi64(s[k], hi, s[4 + k]);
    }
}

#endif
