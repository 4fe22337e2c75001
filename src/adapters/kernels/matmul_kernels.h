/*
 * matmul_kernels.h - what matmul.c needs from the kernels of one tier
 * (internal: only matmul*.c and the matmul tests include it; mm_ is the
 * matmul module's internal prefix).
 *
 * Each tier is a translation unit compiled with its instruction set flags
 * (CMake sets them per file: matmul_avx2.c, matmul_avx512*.c), so nothing in
 * it may run before cpu_isa_check() has accepted the tier. Each exports one
 * table of function pointers; matmul.c owns the threading, the scratch and
 * the order of work, the tables only compute.
 *
 * Activation formats: matmul.c converts x once per call into the format the
 * weight type pairs with (mm_act_format_of) and hands every kernel the same
 * read-only mm_act. Quantizing kernels must produce the same bits as quant.c.
 *
 * Threads: every function here is reentrant; a kernel writes only the
 * outputs and scratch it is given.
 */
#ifndef SEM_MATMUL_KERNELS_H
#define SEM_MATMUL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "matmul.h"
#include "tensor_type.h"

#define MM_MAX_NT 4    /* tokens one decode dot call handles */
#define MM_PREFILL_ROWS 32 /* prefill work items are multiples of this */
#define MM_DECODE_ROWS 8   /* rows per step of the one-token kernels (decode[]) */
#define MM_PANEL_BYTES (64u * 1024u) /* prefill: packed weights, start of the scratch */

/* Per-thread kernel scratch for calls of up to n_tok tokens: the packed
 * panel, then partial sums [n_tok][MM_PREFILL_ROWS] f32. */
static inline size_t mm_scratch_bytes(size_t n_tok)
{
    return MM_PANEL_BYTES + (n_tok + 4) * MM_PREFILL_ROWS * sizeof(float);
}

typedef enum mm_act_format {
    MM_ACT_F32,  /* F32 weights: x as given */
    MM_ACT_F16,  /* F16 weights: x rounded to f16, kept as f32 values */
    MM_ACT_BF16, /* BF16 weights: x rounded to bf16 (raw bits) */
    MM_ACT_Q8_0, /* Q8_0 and Q4_0 weights: Q8_0 blocks of 32 */
    MM_ACT_Q8_K  /* Q4_K, Q5_K, Q6_K weights: Q8_K blocks of 256 */
} mm_act_format;

/* The activations of one call, converted for one weight type. */
typedef struct mm_act {
    mm_act_format format;
    size_t n_tok, n_in;
    const float *f;        /* F32, F16: [n_tok][n_in] */
    const uint16_t *h;     /* BF16: [n_tok][n_in] */
    const int8_t *q;       /* Q8_0, Q8_K: [n_tok][n_in] quants */
    const float *d;        /* Q8_0: [n_tok][n_in/32] (the f16 d as f32); Q8_K: [n_tok][n_in/256] */
    const int32_t *sum32;  /* Q8_0: [n_tok][n_in/32] sum of the quants of each block */
    const int16_t *bsums;  /* Q8_K: [n_tok][n_in/16] sum of each 16 quants */

    /* Q4_0 weights on a tier with q4_0_x4 (decode kernel only): each whole
     * group of 4 blocks of a token re-laid out as the 4 blocks' first 16
     * quants, then their last 16 (the order of the weights' low and high
     * nibbles), and the offset term as vpdpbusd's starting value. */
    const int8_t *qx;       /* [n_tok][n_in/128][128] */
    const int32_t *qx_init; /* [n_tok][n_in/128][16]: lane 4j = -8 * sum of block j's quants */

    /* For the small-batch kernel (set only when it runs), Q8_0 and Q8_K:
     * one record per set of L units (L = the tier's batch_lanes) and
     * token (mm_batch_rec_bytes), the tokens of a set adjacent so a tile
     * walks them with one pointer:
     *   int8  q[L * unit]  the token's quants of the set's units, in the
     *                      tier's lane order (mm_batch_act_fn)
     *   f32   d[L]         each lane's unit scale
     *   i32   off[L]       -offset * sum of the unit's quants (Q8_0, Q4_0,
     *                      Q6_K: weights with a fixed offset; Q8_0 on avx2:
     *                      0), or
     *   f32   ds[L]        unit scale * sum of its quants (Q4_K, Q5_K,
     *                      whose mins are per row)
     * Lanes whose unit lies past n_in are zero. */
    const uint8_t *bx; /* [n_sets][n_tok][rec] */

    /* For the prefill kernel (set only when it runs), Q8_0 and Q8_K: per
     * unit of mm_prefill_unit(type) values of each token, so that every
     * weight type sees one scale per unit. */
    const float *du;       /* [n_tok][n_in/unit] the unit's scale */
    const float *ds;       /* [n_tok][n_in/unit] scale * sum of the unit's quants */
} mm_act;

/* out[i] = sum_k W[k] * act[t0 + i][k] for i < nt <= MM_MAX_NT, where W is
 * the row at w (n_in values in the weight type). */
typedef void (*mm_dot_fn)(const uint8_t *w, size_t n_in, const mm_act *a, size_t t0, size_t nt,
                          float *out);

/* y[t*ld_y + r] for r in [r0, r1) and every token. For the prefill
 * kernel r0 is a multiple of MM_PREFILL_ROWS. scratch: mm_scratch_bytes(n_tok),
 * 64-byte aligned, private to the calling thread. */
typedef void (*mm_rows_fn)(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                           float *y, size_t ld_y, void *scratch);

/* Fills token t's small-batch records in bx ([n_sets][a->n_tok][rec], see
 * mm_act.bx) from a->q, d, sum32 / bsums, for weight `type`. */
typedef void (*mm_batch_act_fn)(uint32_t type, const mm_act *a, size_t t, uint8_t *bx);

typedef struct mm_kernels {
    cpu_isa isa;
    mm_dot_fn dot[TENSOR_TYPE_MAX]; /* one per supported weight type */

    /* One token row of n values into the activation formats. */
    void (*quant_q8_0)(const float *x, size_t n, int8_t *q, float *d, int32_t *sum32);
    void (*quant_q8_K)(const float *x, size_t n, int8_t *q, float *d, int16_t *bsums);
    void (*round_f16)(const float *x, size_t n, float *out);
    void (*round_bf16)(const float *x, size_t n, uint16_t *out);

    /* The decode kernel of Q4_0 reads mm_act.qx / qx_init. */
    bool q4_0_x4;

    /* Kernels over whole rows for calls of one token, per weight type
     * (NULL: the dots, one row at a time); they take MM_DECODE_ROWS rows
     * per step. */
    mm_rows_fn decode[TENSOR_TYPE_MAX];

    /* The small-batch kernel per weight type, for calls of min_tokens up
     * to prefill_min_tokens (fn NULL: the dots serve every call below
     * prefill_min_tokens). Each weight row is decoded once per tile of up
     * to 8 tokens (AVX-512) or once per call (AVX2, which keeps a decoded
     * chunk of rows in its scratch for every tile), in sets of
     * batch_lanes units (blocks or sub-blocks)
     * with one vector lane per unit, so a token's integer sums of a whole
     * unit build up in one lane and one float step serves every unit of
     * the set. batch_act re-lays out the quantized activations to match. */
    struct {
        mm_rows_fn fn;
        size_t min_tokens; /* below it the dots are as fast (measured) */
    } batch[TENSOR_TYPE_MAX];
    mm_batch_act_fn batch_act;
    size_t batch_lanes; /* 16 (avx512) or 8 (avx2) */

    /* The compute-bound kernel, or NULL when the tier has none; used for
     * calls of at least prefill_min_tokens tokens. */
    mm_rows_fn prefill;
    size_t prefill_min_tokens;
} mm_kernels;

const mm_kernels *mm_kernels_portable(void);
const mm_kernels *mm_kernels_avx2(void);
const mm_kernels *mm_kernels_avx512(void);
/* The AVX-512 table with or without the AVX512_BF16 dot for BF16 weights,
 * and with or without the AVX2 one-token kernels (split: for cores that
 * issue 512-bit operations in halves); mm_kernels_avx512 picks by the CPU,
 * tests compare them. */
const mm_kernels *mm_kernels_avx512_variant(bool native_bf16, bool split);

/* The AVX-512 small-batch kernel (matmul_avx512_batch.c). */
void mm_avx512_batch(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                     size_t ld_y, void *scratch);
void mm_avx512_batch_act(uint32_t type, const mm_act *a, size_t t, uint8_t *bx);

/* The AVX2 small-batch kernel (matmul_avx2_batch.c): Q8_0, Q4_0, Q4_K. */
void mm_avx2_batch(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                   size_t ld_y, void *scratch);
void mm_avx2_batch_act(uint32_t type, const mm_act *a, size_t t, uint8_t *bx);

/* The one-token kernels for Q4_0 and Q4_K (matmul_avx2_decode.c), of the
 * AVX2 and AVX-512 tiers. */
void mm_avx2_decode_q4_0(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                         float *y, size_t ld_y, void *scratch);
void mm_avx2_decode_q4_K(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                         float *y, size_t ld_y, void *scratch);

/* The AVX-512 prefill kernel (matmul_avx512_prefill.c); the _bf16 one
 * multiplies BF16 weights with vdpbf16ps and needs AVX512_BF16. */
void mm_avx512_prefill(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                       size_t ld_y, void *scratch);
void mm_avx512_prefill_bf16(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                            float *y, size_t ld_y, void *scratch);

static inline mm_act_format mm_act_format_of(uint32_t type)
{
    switch (type) {
    case TENSOR_F16:
        return MM_ACT_F16;
    case TENSOR_BF16:
        return MM_ACT_BF16;
    case TENSOR_Q8_0:
    case TENSOR_Q4_0:
        return MM_ACT_Q8_0;
    case TENSOR_Q4_K:
    case TENSOR_Q5_K:
    case TENSOR_Q6_K:
        return MM_ACT_Q8_K;
    default:
        return MM_ACT_F32;
    }
}

/* Small-batch geometry for sets of `lanes` units: values per lane (the
 * unit whose quants one lane sums), and values per group, the kernel's
 * step along a row: Q8_0/Q4_0 `lanes` blocks, Q4_K/Q5_K lanes/4
 * super-blocks (two sets: the low and the high nibbles), Q6_K lanes/16
 * super-blocks. 0: float types, whose activations are used as converted. */
static inline size_t mm_batch_unit(uint32_t type)
{
    return type == TENSOR_Q6_K ? 16 : 32;
}

static inline size_t mm_batch_group(uint32_t type, size_t lanes)
{
    switch (type) {
    case TENSOR_Q8_0:
    case TENSOR_Q4_0:
        return 32 * lanes;
    case TENSOR_Q4_K:
    case TENSOR_Q5_K:
        return 64 * lanes;
    case TENSOR_Q6_K:
        return 16 * lanes;
    default:
        return 0;
    }
}

/* Bytes of one small-batch record (mm_act.bx): quants, scales, offsets. */
static inline size_t mm_batch_rec_bytes(uint32_t type, size_t lanes)
{
    return lanes * mm_batch_unit(type) + 2 * lanes * 4;
}

/* Sets in a row of n values (rounded up to whole groups). */
static inline size_t mm_batch_sets(uint32_t type, size_t lanes, size_t n)
{
    size_t g = mm_batch_group(type, lanes);
    return g ? (n + g - 1) / g * g / (lanes * mm_batch_unit(type)) : 0;
}

/* Values per scale in the prefill kernel: Q6_K has a scale per 16 values,
 * the other quantized types per 32; float formats do not use units. */
static inline size_t mm_prefill_unit(uint32_t type)
{
    return type == TENSOR_Q6_K ? 16 : 32;
}

/* Unaligned little-endian loads from weight data. */
static inline uint16_t mm_ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float mm_ldf32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The 6-bit scales and mins of a Q4_K/Q5_K super-block as 16 bytes
 * [sc0..sc7, m0..m7], by 32-bit word operations on the 12 packed bytes
 * (sub-blocks 0-3 keep the low 6 bits of bytes 0-7; 4-7 combine the
 * nibbles of bytes 8-11 with the top 2 bits of bytes 0-7). */
static inline void mm_kquant_scales_packed(const uint8_t *s, uint8_t out[16])
{
    uint32_t v[3], r[4];
    memcpy(v, s, 12);
    r[0] = v[0] & 0x3f3f3f3fu;                                             /* sc0-3 */
    r[1] = (v[2] & 0x0f0f0f0fu) | (((v[0] >> 6) & 0x03030303u) << 4);      /* sc4-7 */
    r[2] = v[1] & 0x3f3f3f3fu;                                             /* m0-3 */
    r[3] = ((v[2] >> 4) & 0x0f0f0f0fu) | (((v[1] >> 6) & 0x03030303u) << 4); /* m4-7 */
    memcpy(out, r, 16);
}

/* The 6-bit scales sc[8] and mins m[8] of a Q4_K/Q5_K super-block. */
static inline void mm_kquant_scales(const uint8_t *s, uint8_t sc[8], uint8_t m[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 15) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

#endif
