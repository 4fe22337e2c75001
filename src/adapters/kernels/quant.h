/*
 * quant.h - the block formats of quantized tensors: dequantization, a simple
 * weight quantizer, and the activation quantization that must round exactly
 * as llama.cpp does.
 *
 * Why activation rounding matters: the golden outputs semantic is checked
 * against come from llama.cpp (commit 91f8c9c5f, x86 build), which converts
 * each matmul's f32 activations into the weight type's companion format
 * before the dot products: F16 weights -> f16, BF16 -> bf16, Q8_0/Q4_0 ->
 * Q8_0 blocks, K-quants -> Q8_K blocks. Rounding the same way keeps our
 * logits within float-summation noise of theirs. The two rules:
 *
 *   Q8_0 (x86 quantize_row_q8_0): per block of 32, amax = max |x|,
 *     d = amax / 127 stored as f16, id = amax ? 127 / amax : 0,
 *     q = round-half-even(x * id). The dot product uses the f16 d.
 *   Q8_K (quantize_row_q8_K_ref): per block of 256, max = the first x with
 *     the largest |x| (sign kept); all zero -> d = 0, q = 0; otherwise
 *     iscale = -127 / max, q = min(127, round-half-even(iscale * x)),
 *     d = 1 / iscale (f32), bsums[j] = sum of q[16j .. 16j+15].
 *
 * Byte layouts (little-endian, packed; offsets, not structs, because
 * weights are read in place from an mmapped file at any alignment):
 *
 *   Q8_0  34 B / 32:  [0] f16 d  [2] int8 q[32]            x = d*q
 *   Q4_0  18 B / 32:  [0] f16 d  [2] u8 qs[16]             x[j] = d*((qs[j] & 15) - 8),
 *                                                          x[j+16] = d*((qs[j] >> 4) - 8)
 *   Q4_K 144 B / 256: [0] f16 d  [2] f16 dmin  [4] scales[12]  [16] qs[128]
 *   Q5_K 176 B / 256: [0] f16 d  [2] f16 dmin  [4] scales[12]  [16] qh[32]  [48] qs[128]
 *   Q6_K 210 B / 256: [0] ql[128]  [128] qh[64]  [192] int8 scales[16]  [208] f16 d
 *
 *   Q4_K/Q5_K: 8 sub-blocks of 32 with 6-bit scale sc and min m packed in
 *     scales[12] (sub-block j<4: sc = s[j] & 63, m = s[j+4] & 63; j>=4:
 *     sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4, m = (s[j+4] >> 4) | (s[j] >> 6) << 4);
 *     x = d*sc*q - dmin*m. Chunk c (64 values) takes qs[32c..32c+31]: low
 *     nibbles are values 64c..64c+31, high nibbles 64c+32..64c+63. Q5_K adds
 *     bit 2c (low half) or 2c+1 (high half) of qh[l] as bit 4 of q.
 *   Q6_K: 16 sub-blocks of 16 with int8 scales; x = d*sc[e/16]*(q - 32), q in
 *     0..63. Half h (128 values) uses ql[64h..], qh[32h..]; for l < 32:
 *     q[l] = ql[l] & 15 | (qh[l] & 3) << 4, q[l+32] = ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4,
 *     q[l+64] = ql[l] >> 4 | (qh[l] >> 4 & 3) << 4, q[l+96] = ql[l+32] >> 4 | (qh[l] >> 6) << 4.
 *   Q8_K (activations only, internal): quant_block_q8_K below.
 *
 * Threads: every function is pure (no state) and may be called from any
 * thread; buffers belong to the caller.
 */
#ifndef SEM_QUANT_H
#define SEM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

#define QUANT_QK 32    /* values per Q8_0 / Q4_0 block */
#define QUANT_QK_K 256 /* values per K-quant super-block */

#define QUANT_Q8_0_BYTES 34
#define QUANT_Q4_0_BYTES 18
#define QUANT_Q4_K_BYTES 144
#define QUANT_Q5_K_BYTES 176
#define QUANT_Q6_K_BYTES 210

/* An activation super-block for K-quant dot products (never in files). */
typedef struct quant_block_q8_K {
    float d;                            /* scale: x ~= d * q */
    int8_t qs[QUANT_QK_K];              /* quants in [-127, 127] */
    int16_t bsums[QUANT_QK_K / 16];     /* sum of each 16 quants */
} quant_block_q8_K;

/* Round half to even for |v| < 2^22, exactly as ggml's nearest_int and
 * x86 vroundps do under the default rounding mode. */
static inline int32_t quant_round_even(float v)
{
    float t = v + 12582912.0f; /* 1.5 * 2^23: the integer lands in the low mantissa bits */
    int32_t i;
    __builtin_memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ------------------------------------------------------------ dequantize */

/*
 * Converts n values of a row stored in `type` (F32, F16, BF16, Q8_0, Q4_0,
 * Q4_K, Q5_K, Q6_K) to f32. n must be a multiple of the type's block size.
 * SEM_EUNSUPPORTED for another type, SEM_EINVAL for a bad n; dst is then
 * untouched.
 */
sem_status quant_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n,
                                sem_err *err);

/* The same without checks, for hot paths that validated type and n. */
void quant_dequantize_row_unchecked(uint32_t type, const void *src, float *dst, uint64_t n);

/* ------------------------------------------------------------ weights */

/*
 * Quantizes n f32 values into `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K,
 * Q5_K, Q6_K), writing tensor_type_row_bytes(type, n) bytes to dst. Plain
 * round-to-nearest with scales from each block's range: meant for test
 * models and tools, not for competing with llama.cpp's quantizers. Same
 * errors as quant_dequantize_row.
 */
sem_status quant_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n,
                              sem_err *err);

/* ------------------------------------------------------------ activations */

/* One Q8_0 block (32 values) by the x86 llama.cpp rule: quants into q[32],
 * returns d as f16 bits. */
uint16_t quant_q8_0_block(const float *x, int8_t *q);

/* One Q8_K super-block (256 values) by the llama.cpp rule: quants into
 * q[256], sums of 16 into bsums[16]; returns d. */
float quant_q8_K_block(const float *x, int8_t *q, int16_t *bsums);

/* n values (a multiple of 32) into n/32 Q8_0 blocks of 34 bytes at dst. */
void quant_q8_0_row(const float *x, void *dst, size_t n);

/* n values (a multiple of 256) into n/256 Q8_K blocks. */
void quant_q8_K_row(const float *x, quant_block_q8_K *dst, size_t n);

#endif
