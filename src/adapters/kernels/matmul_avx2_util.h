/*
 * matmul_avx2_util.h - helpers the AVX2 kernel files share (internal:
 * only matmul_avx2*.c include it, and they are compiled with the AVX2
 * tier's flags; nothing here may run unless cpu_isa_check(CPU_ISA_AVX2)
 * passed).
 *
 * Threads: pure functions.
 */
#ifndef SEM_MATMUL_AVX2_UTIL_H
#define SEM_MATMUL_AVX2_UTIL_H

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 rows of 8 dwords -> out[v] = dword v of rows 0..7 (lane i = row i). */
ALWAYS_INLINE void mm_transpose_8x8(const __m256i z[8], __m256i out[8])
{
    __m256i t[8], u[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm256_unpacklo_epi32(z[r], z[r + 1]);
        t[r + 1] = _mm256_unpackhi_epi32(z[r], z[r + 1]);
    }
#pragma GCC unroll 8
    for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_unpacklo_epi64(t[q], t[q + 2]);         /* dwords 0 | 4 */
        u[q + 1] = _mm256_unpackhi_epi64(t[q], t[q + 2]);     /* 1 | 5 */
        u[q + 2] = _mm256_unpacklo_epi64(t[q + 1], t[q + 3]); /* 2 | 6 */
        u[q + 3] = _mm256_unpackhi_epi64(t[q + 1], t[q + 3]); /* 3 | 7 */
    }
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        out[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        out[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

/* 4 registers of [a | b] 128-bit halves, 4 dwords each -> r[s] = dword s
 * of z[0..3]'s low halves in lanes 0..3 and of their high halves in lanes
 * 4..7: a 4x4 dword transpose within each half. */
ALWAYS_INLINE void mm_transpose_4x4_halves(const __m256i z[4], __m256i r[4])
{
    __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
    __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
    r[0] = _mm256_unpacklo_epi64(t0, t2);
    r[1] = _mm256_unpackhi_epi64(t0, t2);
    r[2] = _mm256_unpacklo_epi64(t1, t3);
    r[3] = _mm256_unpackhi_epi64(t1, t3);
}

#endif
