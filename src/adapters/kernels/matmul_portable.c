/*
 * matmul_portable.c - the plain C kernels: every weight type on any CPU.
 *
 * The reference the SIMD tiers are tested against, and the fallback for
 * CPUs without AVX2. Each dot kernel decodes a weight block once into a
 * small local array, then multiplies it with each of the nt tokens, using
 * exact integer sums inside a block as llama.cpp does.
 *
 * Threads: reentrant; no state.
 */
#include <math.h>

#include "fp16.h"
#include "matmul_kernels.h"
#include "quant.h"

/* ------------------------------------------------------------ float types */

/* Decodes up to 32 weights starting at index k0 into wb. */
typedef void (*float_block_fn)(const uint8_t *w, size_t k0, size_t len, float *wb);

static void fblock_f32(const uint8_t *w, size_t k0, size_t len, float *wb)
{
    memcpy(wb, w + 4 * k0, len * sizeof(float));
}

static void fblock_f16(const uint8_t *w, size_t k0, size_t len, float *wb)
{
    for (size_t k = 0; k < len; k++)
        wb[k] = fp16_to_f32(mm_ld16(w + 2 * (k0 + k)));
}

static void fblock_bf16(const uint8_t *w, size_t k0, size_t len, float *wb)
{
    for (size_t k = 0; k < len; k++)
        wb[k] = bf16_to_f32(mm_ld16(w + 2 * (k0 + k)));
}

/* Float dot: blocks of 32 summed separately, then the block sums, which
 * keeps the rounding error near that of a pairwise sum. */
static void dot_float(float_block_fn decode, const uint8_t *w, size_t n, const mm_act *a,
                      size_t t0, size_t nt, float *out)
{
    float acc[MM_MAX_NT] = {0};
    float wb[32], xb[32];
    for (size_t k0 = 0; k0 < n; k0 += 32) {
        size_t len = n - k0 < 32 ? n - k0 : 32;
        decode(w, k0, len, wb);
        for (size_t i = 0; i < nt; i++) {
            size_t row = (t0 + i) * a->n_in + k0;
            if (a->format == MM_ACT_BF16) {
                for (size_t k = 0; k < len; k++)
                    xb[k] = bf16_to_f32(a->h[row + k]);
            } else {
                memcpy(xb, a->f + row, len * sizeof(float));
            }
            float s = 0.0f;
            for (size_t k = 0; k < len; k++)
                s += wb[k] * xb[k];
            acc[i] += s;
        }
    }
    for (size_t i = 0; i < nt; i++)
        out[i] = acc[i];
}

static void dot_f32(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_float(fblock_f32, w, n, a, t0, nt, out);
}

static void dot_f16(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_float(fblock_f16, w, n, a, t0, nt, out);
}

static void dot_bf16(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt,
                     float *out)
{
    dot_float(fblock_bf16, w, n, a, t0, nt, out);
}

/* ------------------------------------------------------------ Q8_0 / Q4_0 */

/* Decodes one 32-value block into int8 quants; returns its scale. */
typedef float (*q32_block_fn)(const uint8_t *blk, int8_t *wq);

static float qblock_q8_0(const uint8_t *blk, int8_t *wq)
{
    memcpy(wq, blk + 2, 32);
    return fp16_to_f32(mm_ld16(blk));
}

static float qblock_q4_0(const uint8_t *blk, int8_t *wq)
{
    for (int j = 0; j < 16; j++) {
        wq[j] = (int8_t)((blk[2 + j] & 15) - 8);
        wq[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
    }
    return fp16_to_f32(mm_ld16(blk));
}

static void dot_q32(q32_block_fn decode, size_t block_bytes, const uint8_t *w, size_t n,
                    const mm_act *a, size_t t0, size_t nt, float *out)
{
    float acc[MM_MAX_NT] = {0};
    size_t nb = n / 32;
    int8_t wq[32];
    for (size_t b = 0; b < nb; b++) {
        float dw = decode(w + b * block_bytes, wq);
        for (size_t i = 0; i < nt; i++) {
            const int8_t *aq = a->q + (t0 + i) * n + 32 * b;
            int32_t s = 0;
            for (int j = 0; j < 32; j++)
                s += wq[j] * aq[j];
            acc[i] += (float)s * (dw * a->d[(t0 + i) * nb + b]);
        }
    }
    for (size_t i = 0; i < nt; i++)
        out[i] = acc[i];
}

static void dot_q8_0(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_q32(qblock_q8_0, QUANT_Q8_0_BYTES, w, n, a, t0, nt, out);
}

static void dot_q4_0(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_q32(qblock_q4_0, QUANT_Q4_0_BYTES, w, n, a, t0, nt, out);
}

/* ------------------------------------------------------------ K-quants */

/* A K-quant super-block decoded for integer dots:
 * x[e] = d * scale[e / 16] * q[e] - dmin * min[e / 32]. Scales are kept per
 * 16 values for every type (Q4_K/Q5_K repeat theirs) so the dot loops have
 * constant lengths the compiler can vectorize. */
typedef struct kblock {
    float d, dmin;
    int8_t q[QUANT_QK_K];
    int scale[16]; /* per 16 values */
    int min[8];    /* per 32; 0 for Q6_K */
} kblock;

static void kblock_q4_K(const uint8_t *blk, kblock *kb)
{
    uint8_t sc[8], m[8];
    mm_kquant_scales(blk + 4, sc, m);
    kb->d = fp16_to_f32(mm_ld16(blk));
    kb->dmin = fp16_to_f32(mm_ld16(blk + 2));
    for (int s = 0; s < 8; s++) {
        kb->scale[2 * s] = kb->scale[2 * s + 1] = sc[s];
        kb->min[s] = m[s];
    }
    const uint8_t *qs = blk + 16;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            kb->q[64 * c + l] = (int8_t)(qs[32 * c + l] & 15);
            kb->q[64 * c + 32 + l] = (int8_t)(qs[32 * c + l] >> 4);
        }
}

static void kblock_q5_K(const uint8_t *blk, kblock *kb)
{
    kblock_q4_K(blk, kb); /* same header; the nibbles now sit at offset 48 */
    const uint8_t *qh = blk + 16, *qs = blk + 48;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            kb->q[64 * c + l] = (int8_t)((qs[32 * c + l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4));
            kb->q[64 * c + 32 + l] =
                (int8_t)((qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4));
        }
}

static void kblock_q6_K(const uint8_t *blk, kblock *kb)
{
    kb->d = fp16_to_f32(mm_ld16(blk + 208));
    kb->dmin = 0.0f;
    const int8_t *sc = (const int8_t *)(blk + 192);
    for (int s = 0; s < 16; s++)
        kb->scale[s] = sc[s];
    memset(kb->min, 0, sizeof kb->min);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        int8_t *q = kb->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

typedef void (*kblock_fn)(const uint8_t *blk, kblock *kb);

static void dot_k(kblock_fn decode, size_t block_bytes, const uint8_t *w, size_t n,
                  const mm_act *a, size_t t0, size_t nt, float *out)
{
    float acc[MM_MAX_NT] = {0};
    size_t nb = n / QUANT_QK_K;
    kblock kb;
    for (size_t b = 0; b < nb; b++) {
        decode(w + b * block_bytes, &kb);
        for (size_t i = 0; i < nt; i++) {
            size_t tok = t0 + i;
            const int8_t *aq = a->q + tok * n + QUANT_QK_K * b;
            const int16_t *bs = a->bsums + tok * (n / 16) + 16 * b;
            int32_t sumi = 0, summ = 0;
            for (int g = 0; g < 16; g++) {
                int32_t s = 0;
                for (int j = 0; j < 16; j++)
                    s += kb.q[16 * g + j] * aq[16 * g + j];
                sumi += kb.scale[g] * s;
            }
            for (int s = 0; s < 8; s++)
                summ += kb.min[s] * (bs[2 * s] + bs[2 * s + 1]);
            float da = a->d[tok * nb + b];
            acc[i] += kb.d * da * (float)sumi - kb.dmin * da * (float)summ;
        }
    }
    for (size_t i = 0; i < nt; i++)
        out[i] = acc[i];
}

static void dot_q4_K(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_k(kblock_q4_K, QUANT_Q4_K_BYTES, w, n, a, t0, nt, out);
}

static void dot_q5_K(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_k(kblock_q5_K, QUANT_Q5_K_BYTES, w, n, a, t0, nt, out);
}

static void dot_q6_K(const uint8_t *w, size_t n, const mm_act *a, size_t t0, size_t nt, float *out)
{
    dot_k(kblock_q6_K, QUANT_Q6_K_BYTES, w, n, a, t0, nt, out);
}

/* ------------------------------------------------------------ activations */

static void quant_q8_0(const float *x, size_t n, int8_t *q, float *d, int32_t *sum32)
{
    for (size_t b = 0; b < n / 32; b++) {
        d[b] = fp16_to_f32(quant_q8_0_block(x + 32 * b, q + 32 * b));
        int32_t s = 0;
        for (int j = 0; j < 32; j++)
            s += q[32 * b + j];
        sum32[b] = s;
    }
}

static void quant_q8_K(const float *x, size_t n, int8_t *q, float *d, int16_t *bsums)
{
    for (size_t b = 0; b < n / QUANT_QK_K; b++)
        d[b] = quant_q8_K_block(x + QUANT_QK_K * b, q + QUANT_QK_K * b, bsums + 16 * b);
}

static void round_f16(const float *x, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = fp16_to_f32(fp16_from_f32(x[i]));
}

static void round_bf16(const float *x, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = bf16_from_f32(x[i]);
}

static const mm_kernels portable = {
    .isa = CPU_ISA_PORTABLE,
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
    .prefill = NULL,
    .prefill_min_tokens = 0,
};

const mm_kernels *mm_kernels_portable(void)
{
    return &portable;
}
