/*
 * fp16.h - IEEE half (f16) and bfloat16 (bf16) conversions to and from f32.
 *
 * Portable bit manipulation, no FPU state involved, so every translation
 * unit (portable or SIMD) and every test gets the same bits:
 *  - f32 -> f16 and f32 -> bf16 round to nearest, ties to even, exactly as
 *    F16C's vcvtps2ph (imm 0) and ggml's fp32->bf16 do; overflow gives inf,
 *    tiny values become f16 subnormals or signed zero; a NaN stays a quiet NaN.
 *  - f16 -> f32 and bf16 -> f32 are exact.
 *
 * Storage type for both is uint16_t (the raw bits, little-endian in files).
 * Threads: pure functions, callable from anywhere.
 */
#ifndef SEM_FP16_H
#define SEM_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fp32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static inline float fp32_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Rounds the 24-bit significand m (implicit bit set) right by `shift`
 * (1..24) to nearest, ties to even. */
static inline uint32_t fp16_round_shift(uint32_t m, uint32_t shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

static inline uint16_t fp16_from_f32(float f)
{
    uint32_t x = fp32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) /* inf, or NaN made quiet with the top payload bits */
        return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u | ((ax >> 13) & 0x3ffu) : 0x7c00u));
    if (ax >= 0x47800000u) /* >= 65536: beyond the rounding range of the largest half */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: a half subnormal or zero */
        if (ax <= 0x33000000u) /* <= 2^-25: rounds to zero (2^-25 is a tie, even is 0) */
            return (uint16_t)sign;
        uint32_t e = ax >> 23;                       /* 102..112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;   /* value = m * 2^(e-150) */
        /* In units of 2^-24 the value is m >> (126 - e); a carry to 0x400
         * yields the smallest normal, which is the right encoding. */
        return (uint16_t)(sign | fp16_round_shift(m, 126u - e));
    }
    /* Normal: rebias the exponent (127 -> 15) and round 23 -> 10 mantissa
     * bits; a carry ripples into the exponent, up to inf, as it should. */
    uint32_t h = (ax >> 13) - ((127u - 15u) << 10);
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static inline float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0x1fu)
        return fp32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e != 0)
        return fp32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0)
        return fp32_from_bits(sign);
    /* Subnormal half: normalise the mantissa into an f32 normal. */
    e = 113u;
    while (!(m & 0x400u)) {
        m <<= 1;
        e--;
    }
    return fp32_from_bits(sign | (e << 23) | ((m & 0x3ffu) << 13));
}

static inline uint16_t bf16_from_f32(float f)
{
    uint32_t x = fp32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static inline float bf16_to_f32(uint16_t h)
{
    return fp32_from_bits((uint32_t)h << 16);
}

#endif
