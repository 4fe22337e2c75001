/*
 * vec_tiers.h - the per-tier tables behind vec_ops_for (internal; each
 * lives in a file compiled with its instruction set flags).
 */
#ifndef SEM_VEC_TIERS_H
#define SEM_VEC_TIERS_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"
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

/* Bytes of one K/V row of d values that attend16_f16 / _q8_0 read. */
static inline size_t vec_attend_row_bytes(size_t d, int q8)
{
    return q8 ? d / 32 * QUANT_Q8_0_BYTES : d * 2;
}

/* The 16 key rows of a tile: rows past n repeat row 0 (their scores are
 * masked), so a tier reads them without a branch. */
static inline void vec_attend_keys(const uint8_t *k, size_t n, size_t rb, const uint8_t *kr[16])
{
    for (size_t j = 0; j < 16; j++)
        kr[j] = k + (j < n ? j : 0) * rb;
}

/*
 * One pass of a tier's attend16 over queries g0 .. g0 + w - 1 (w <= 4):
 * where fewer than w queries are left, the missing ones repeat the last
 * query into a dummy output, maximum and sum, so the pass is
 * straight-line code. dummy holds d floats; it is zeroed when used.
 */
typedef struct vec_attend_pass {
    const float *q[4];
    float *y[4], *mx[4], *sm[4];
} vec_attend_pass;

static inline void vec_attend_pass_at(vec_attend_pass *p, size_t w, size_t g0, const float *q,
                                      size_t n_q, size_t d, float *out, float *mx, float *sm,
                                      float *dummy, float *dummy_mx, float *dummy_sm)
{
    for (size_t g = 0; g < w; g++) {
        int real = g0 + g < n_q;
        p->q[g] = q + (real ? g0 + g : n_q - 1) * d;
        p->y[g] = real ? out + (g0 + g) * d : dummy;
        p->mx[g] = real ? mx + g0 + g : dummy_mx;
        p->sm[g] = real ? sm + g0 + g : dummy_sm;
    }
    if (g0 + w > n_q)
        for (size_t i = 0; i < d; i++)
            dummy[i] = 0.0f;
}

const vec_ops *vec_ops_portable(void);
const vec_ops *vec_ops_avx2(void);
const vec_ops *vec_ops_avx512(void);

#endif
