/*
 * quant.c - block (de)quantization in plain C (formats in quant.h).
 *
 * These are the reference implementations: the SIMD kernels in matmul_*.c
 * and vec_*.c must produce the same activation quants bit for bit, and the
 * tests compare them against these.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "fp16.h"
#include "tensor_type.h"

/* Little-endian reads and writes at any alignment. */
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline float rdf16(const uint8_t *p)
{
    return fp16_to_f32(rd16(p));
}

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ================================================================ dequantize */

static void deq_f32(const uint8_t *src, float *dst, uint64_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

static void deq_f16(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        dst[i] = fp16_to_f32(rd16(src + 2 * i));
}

static void deq_bf16(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        dst[i] = bf16_to_f32(rd16(src + 2 * i));
}

static void deq_q8_0(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK; b++, src += QUANT_Q8_0_BYTES, dst += QUANT_QK) {
        float d = rdf16(src);
        const int8_t *q = (const int8_t *)(src + 2);
        for (int j = 0; j < QUANT_QK; j++)
            dst[j] = d * q[j];
    }
}

static void deq_q4_0(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK; b++, src += QUANT_Q4_0_BYTES, dst += QUANT_QK) {
        float d = rdf16(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < QUANT_QK / 2; j++) {
            dst[j] = d * ((qs[j] & 15) - 8);
            dst[j + 16] = d * ((qs[j] >> 4) - 8);
        }
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static void kquant_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void deq_q4_K(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, src += QUANT_Q4_K_BYTES) {
        float d = rdf16(src), dmin = rdf16(src + 2);
        const uint8_t *scales = src + 4, *qs = src + 16;
        for (int c = 0; c < 4; c++, qs += 32) {
            int sc0, m0, sc1, m1;
            kquant_scale_min(scales, 2 * c, &sc0, &m0);
            kquant_scale_min(scales, 2 * c + 1, &sc1, &m1);
            for (int l = 0; l < 32; l++)
                *dst++ = d * sc0 * (qs[l] & 15) - dmin * m0;
            for (int l = 0; l < 32; l++)
                *dst++ = d * sc1 * (qs[l] >> 4) - dmin * m1;
        }
    }
}

static void deq_q5_K(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, src += QUANT_Q5_K_BYTES) {
        float d = rdf16(src), dmin = rdf16(src + 2);
        const uint8_t *scales = src + 4, *qh = src + 16, *qs = src + 48;
        for (int c = 0; c < 4; c++, qs += 32) {
            int sc0, m0, sc1, m1;
            kquant_scale_min(scales, 2 * c, &sc0, &m0);
            kquant_scale_min(scales, 2 * c + 1, &sc1, &m1);
            for (int l = 0; l < 32; l++)
                *dst++ = d * sc0 * ((qs[l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4)) - dmin * m0;
            for (int l = 0; l < 32; l++)
                *dst++ = d * sc1 * ((qs[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) - dmin * m1;
        }
    }
}

/* The 64 6-bit quants (0..63) of half h of a Q6_K block, in value order. */
static void q6_K_half_quants(const uint8_t *blk, int h, int q[128])
{
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    for (int l = 0; l < 32; l++) {
        q[l] = (ql[l] & 15) | ((qh[l] & 3) << 4);
        q[l + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
        q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
    }
}

static void deq_q6_K(const uint8_t *src, float *dst, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, src += QUANT_Q6_K_BYTES) {
        float d = rdf16(src + 208);
        const int8_t *sc = (const int8_t *)(src + 192);
        for (int h = 0; h < 2; h++) {
            int q[128];
            q6_K_half_quants(src, h, q);
            for (int e = 0; e < 128; e++)
                *dst++ = d * sc[8 * h + e / 16] * (q[e] - 32);
        }
    }
}

static int row_ok(uint32_t type, uint64_t n, const char *what, sem_err *err, sem_status *st)
{
    if (!tensor_type_supported(type)) {
        const char *name = tensor_type_name(type);
        *st = sem_err_set(err, SEM_EUNSUPPORTED, "cannot %s tensor type %s (id %u)", what,
                          name ? name : "unknown", type);
        return 0;
    }
    uint32_t bs = tensor_type_block_size(type);
    if (n % bs) {
        *st = sem_err_set(err, SEM_EINVAL,
                          "cannot %s a row of %llu values of type %s: not a multiple of its "
                          "block size %u",
                          what, (unsigned long long)n, tensor_type_name(type), bs);
        return 0;
    }
    return 1;
}

void quant_dequantize_row_unchecked(uint32_t type, const void *src, float *dst, uint64_t n)
{
    const uint8_t *s = src;
    switch (type) {
    case TENSOR_F32:
        deq_f32(s, dst, n);
        break;
    case TENSOR_F16:
        deq_f16(s, dst, n);
        break;
    case TENSOR_BF16:
        deq_bf16(s, dst, n);
        break;
    case TENSOR_Q8_0:
        deq_q8_0(s, dst, n);
        break;
    case TENSOR_Q4_0:
        deq_q4_0(s, dst, n);
        break;
    case TENSOR_Q4_K:
        deq_q4_K(s, dst, n);
        break;
    case TENSOR_Q5_K:
        deq_q5_K(s, dst, n);
        break;
    case TENSOR_Q6_K:
        deq_q6_K(s, dst, n);
        break;
    default:
        break;
    }
}

sem_status quant_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n,
                                sem_err *err)
{
    sem_status st = SEM_OK;
    if (!row_ok(type, n, "dequantize", err, &st))
        return st;
    quant_dequantize_row_unchecked(type, src, dst, n);
    return SEM_OK;
}

/* ================================================================ activations */

uint16_t quant_q8_0_block(const float *x, int8_t *q)
{
    float amax = 0.0f;
    for (int j = 0; j < QUANT_QK; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < QUANT_QK; j++) {
        float v = x[j] * id; /* rounded to f32 first, as vmulps does */
        q[j] = (int8_t)quant_round_even(v);
    }
    return fp16_from_f32(d);
}

float quant_q8_K_block(const float *x, int8_t *q, int16_t *bsums)
{
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < QUANT_QK_K; j++) {
        float a = fabsf(x[j]);
        if (a > amax) { /* strict: the first value with the largest |x| wins */
            amax = a;
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        memset(q, 0, QUANT_QK_K);
        memset(bsums, 0, QUANT_QK_K / 16 * sizeof *bsums);
        return 0.0f;
    }
    float iscale = -127.0f / max;
    for (int j = 0; j < QUANT_QK_K; j++) {
        float v = iscale * x[j];
        int r = quant_round_even(v);
        q[j] = (int8_t)(r < 127 ? r : 127);
    }
    for (int g = 0; g < QUANT_QK_K / 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += q[16 * g + j];
        bsums[g] = (int16_t)s;
    }
    return 1.0f / iscale;
}

void quant_q8_0_row(const float *x, void *dst, size_t n)
{
    uint8_t *o = dst;
    for (size_t b = 0; b < n / QUANT_QK; b++, o += QUANT_Q8_0_BYTES, x += QUANT_QK)
        wr16(o, quant_q8_0_block(x, (int8_t *)(o + 2)));
}

void quant_q8_K_row(const float *x, quant_block_q8_K *dst, size_t n)
{
    for (size_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K)
        dst[b].d = quant_q8_K_block(x, dst[b].qs, dst[b].bsums);
}

/* ================================================================ weights */

static void quant_f16(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        wr16(o + 2 * i, fp16_from_f32(x[i]));
}

static void quant_bf16(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        wr16(o + 2 * i, bf16_from_f32(x[i]));
}

/* Q4_0: the value with the largest magnitude maps to -8, so the block uses
 * the whole asymmetric range [-8, 7] (llama.cpp's choice). */
static void quant_q4_0(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK; b++, x += QUANT_QK, o += QUANT_Q4_0_BYTES) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < QUANT_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr16(o, fp16_from_f32(d));
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int lo = clampi((int)floorf(x[j] * id + 8.5f), 0, 15);
            int hi = clampi((int)floorf(x[j + 16] * id + 8.5f), 0, 15);
            o[2 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* Packs 6-bit scales and mins of 8 sub-blocks (inverse of kquant_scale_min). */
static void kquant_pack_scales(const int sc[8], const int m[8], uint8_t s[12])
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/*
 * Shared by Q4_K (nmax 15) and Q5_K (nmax 31): each sub-block of 32 gets
 * scale (max - min) / nmax and offset -min (min clipped to <= 0); both are
 * then expressed as 6-bit multiples of the super-block's d and dmin (f16).
 * Writes d, dmin, scales; returns the quants (0..nmax) in q[256].
 */
static void kquant_asym(const float *x, int nmax, uint8_t *blk, int q[QUANT_QK_K])
{
    float scale[8], minv[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        float lo = x[32 * s], hi = x[32 * s];
        for (int l = 1; l < 32; l++) {
            lo = fminf(lo, x[32 * s + l]);
            hi = fmaxf(hi, x[32 * s + l]);
        }
        lo = fminf(lo, 0.0f);
        scale[s] = (hi - lo) / (float)nmax;
        minv[s] = -lo;
        max_scale = fmaxf(max_scale, scale[s]);
        max_min = fmaxf(max_min, minv[s]);
    }
    uint16_t dh = fp16_from_f32(max_scale / 63.0f), mh = fp16_from_f32(max_min / 63.0f);
    float d = fp16_to_f32(dh), dmin = fp16_to_f32(mh);
    int sc[8], m[8];
    for (int s = 0; s < 8; s++) {
        /* Round the scale up so the block's range still fits in nmax steps. */
        sc[s] = d > 0.0f ? clampi((int)ceilf(scale[s] / d), 0, 63) : 0;
        m[s] = dmin > 0.0f ? clampi((int)lrintf(minv[s] / dmin), 0, 63) : 0;
        float step = d * sc[s], off = dmin * m[s];
        for (int l = 0; l < 32; l++) {
            int v = step > 0.0f ? (int)lrintf((x[32 * s + l] + off) / step) : 0;
            q[32 * s + l] = clampi(v, 0, nmax);
        }
    }
    wr16(blk, dh);
    wr16(blk + 2, mh);
    kquant_pack_scales(sc, m, blk + 4);
}

static void quant_q4_K(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K, o += QUANT_Q4_K_BYTES) {
        int q[QUANT_QK_K];
        kquant_asym(x, 15, o, q);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                o[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
}

static void quant_q5_K(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K, o += QUANT_Q5_K_BYTES) {
        int q[QUANT_QK_K];
        kquant_asym(x, 31, o, q);
        uint8_t *qh = o + 16, *qs = o + 48;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

/* Q6_K: each sub-block of 16 maps its largest-magnitude value to -32; the
 * 16 sub-block scales are int8 multiples of the super-block d (f16). */
static void quant_q6_K(const float *x, uint8_t *o, uint64_t n)
{
    for (uint64_t b = 0; b < n / QUANT_QK_K; b++, x += QUANT_QK_K, o += QUANT_Q6_K_BYTES) {
        float scale[16], max_abs_scale = 0.0f;
        for (int s = 0; s < 16; s++) {
            float max = 0.0f, amax = 0.0f;
            for (int l = 0; l < 16; l++) {
                if (fabsf(x[16 * s + l]) > amax) {
                    amax = fabsf(x[16 * s + l]);
                    max = x[16 * s + l];
                }
            }
            scale[s] = max / -32.0f;
            max_abs_scale = fmaxf(max_abs_scale, fabsf(scale[s]));
        }
        uint16_t dh = fp16_from_f32(max_abs_scale / 127.0f);
        float d = fp16_to_f32(dh);
        int q[QUANT_QK_K];
        int8_t *sc = (int8_t *)(o + 192);
        for (int s = 0; s < 16; s++) {
            sc[s] = (int8_t)(d > 0.0f ? clampi((int)lrintf(scale[s] / d), -128, 127) : 0);
            float step = d * sc[s];
            for (int l = 0; l < 16; l++) {
                int v = step != 0.0f ? (int)lrintf(x[16 * s + l] / step) : 0;
                q[16 * s + l] = clampi(v, -32, 31) + 32;
            }
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = o + 64 * h, *qh = o + 128 + 32 * h;
            const int *qq = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
                ql[l + 32] = (uint8_t)((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
                qh[l] = (uint8_t)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                  ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
        wr16(o + 208, dh);
    }
}

sem_status quant_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n,
                              sem_err *err)
{
    sem_status st = SEM_OK;
    if (!row_ok(type, n, "quantize to", err, &st))
        return st;
    uint8_t *o = dst;
    switch (type) {
    case TENSOR_F32:
        memcpy(o, src, n * sizeof(float));
        break;
    case TENSOR_F16:
        quant_f16(src, o, n);
        break;
    case TENSOR_BF16:
        quant_bf16(src, o, n);
        break;
    case TENSOR_Q8_0:
        quant_q8_0_row(src, o, n);
        break;
    case TENSOR_Q4_0:
        quant_q4_0(src, o, n);
        break;
    case TENSOR_Q4_K:
        quant_q4_K(src, o, n);
        break;
    case TENSOR_Q5_K:
        quant_q5_K(src, o, n);
        break;
    case TENSOR_Q6_K:
        quant_q6_K(src, o, n);
        break;
    default:
        break;
    }
    return SEM_OK;
}
