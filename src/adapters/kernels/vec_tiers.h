/*
 * vec_tiers.h - the per-tier tables behind vec_ops_for (internal; each
 * lives in a file compiled with its instruction set flags).
 */
#ifndef SEM_VEC_TIERS_H
#define SEM_VEC_TIERS_H

#include "vec.h"

/*
 * exp(x) in the SIMD tiers: 2^k exp(r), k = round(x log2 e), r = x - k ln 2
 * with ln 2 in two parts, exp(r) by the Cephes expf polynomial; inputs are
 * clamped to [VEC_EXP_MIN, VEC_EXP_MAX] and below VEC_EXP_MIN give 0.
 */
#define VEC_EXP_MIN (-87.3f)
#define VEC_EXP_MAX 88.3f
#define VEC_EXP_LOG2E 1.44269504088896341f
#define VEC_EXP_LN2_HI 0.693359375f
#define VEC_EXP_LN2_LO (-2.12194440e-4f)
#define VEC_EXP_P0 1.9875691500e-4f
#define VEC_EXP_P1 1.3981999507e-3f
#define VEC_EXP_P2 8.3334519073e-3f
#define VEC_EXP_P3 4.1665795894e-2f
#define VEC_EXP_P4 1.6666665459e-1f
#define VEC_EXP_P5 5.0000001201e-1f

const vec_ops *vec_ops_portable(void);
const vec_ops *vec_ops_avx2(void);
const vec_ops *vec_ops_avx512(void);

#endif
