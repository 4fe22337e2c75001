/*
 * matmul.h - y = x * W^T for the weight matrices of a model, on the CPU.
 *
 * This is the hot path of the forward pass: every projection of every layer
 * is one call. Weights stay in their file format (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q5_K, Q6_K), read in place from the mmapped GGUF file.
 *
 * How a call works:
 *  1. The activations x [n_tok][n_in] are converted once into the weight
 *     type's companion format, rounding exactly as llama.cpp does (see
 *     quant.h): F16 -> f16 values, BF16 -> bf16, Q8_0/Q4_0 -> Q8_0 blocks,
 *     K-quants -> Q8_K blocks, F32 -> unchanged.
 *  2. The output rows are cut into chunks that the threads of the context's
 *     pool take from a shared counter (so a thread slowed by another process
 *     does not hold the others up), and each chunk runs one of three kernels:
 *      - decode (1 token, memory bound; also the calls the other two do
 *        not take on a tier or type without them): each weight row is
 *        streamed once and its blocks are decoded once for up to 4 tokens;
 *        integer dot products (vpdpbusd on AVX-512, pmaddubsw on AVX2).
 *      - small batch (2 to 63 tokens on AVX-512, but not for BF16 where
 *        vdpbf16ps serves the dots; Q4_0 and Q4_K on AVX2):
 *        the decode steps of several sequences. Each row is decoded once
 *        per tile of up to 8 tokens (AVX2: 4) into sets of 16 (AVX2: 8)
 *        blocks or sub-blocks, one vector lane per block, so that the
 *        integer products of a whole block build up in one lane and one
 *        float step (convert, scale, add) serves 16 blocks; the
 *        activations are re-laid out once per call to match.
 *      - prefill (64 tokens or more, compute bound; AVX-512 only): 32
 *        weight rows at a time are unpacked into a panel of unsigned bytes
 *        with a scale and an offset term per block, one K chunk at a time so
 *        the panel stays in L1, and a register tile of 32 rows (one vector
 *        lane per row) x 4 tokens runs vpdpbusd against each token's
 *        activation bytes, broadcast. Each weight byte loaded serves 4
 *        tokens, each activation word 32 rows.
 *  3. Results are written to y [n_tok][ld_y] (ld_y >= n_out).
 * All integer products within a block are exact; only the float sums of
 * block results are rounded, in an order that differs per tier, so tiers
 * agree to float precision, not bit for bit.
 *
 * Tiers: the context is made for one cpu_isa (portable, avx2, avx512) and
 * refuses one the CPU lacks; every tier supports every weight type.
 *
 * Threads: a matmul_ctx belongs to one thread at a time (the engine thread):
 * matmul() uses its scratch and runs its thread pool. Different contexts
 * may run at the same time on different pools. matmul_weight_row() and
 * matmul_weight_check() are pure and may be called from any thread.
 * Ownership: the context borrows the pool (which must outlive it) and owns
 * its scratch; weights are borrowed per call.
 */
#ifndef SEM_MATMUL_H
#define SEM_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "domain/status.h"
#include "thread_pool.h"

/*
 * A weight matrix W [n_out][n_in] in `type` (a tensor_type id): row j
 * starts at data + j * row_bytes. data is typically an mmapped GGUF
 * tensor: read-only, aligned to 32 bytes by default but possibly only to 1.
 */
typedef struct matmul_weight {
    uint32_t type;
    uint64_t n_in, n_out;
    const void *data;
    size_t row_bytes;
} matmul_weight;

typedef struct matmul_ctx matmul_ctx;

/*
 * Checks a weight before it is used: a supported type, n_in a positive
 * multiple of the type's block size, n_out > 0, data present, and
 * row_bytes at least the packed row size. The loader calls this once per
 * tensor; matmul() assumes it passed. SEM_EUNSUPPORTED for another type,
 * SEM_EINVAL otherwise, naming the field.
 */
sem_status matmul_weight_check(const matmul_weight *w, sem_err *err);

/*
 * A context for one model: the kernels of `isa` and scratch for up to
 * max_tokens x max_n_in activations. tp may be NULL (the caller computes
 * alone). SEM_EUNSUPPORTED when the CPU lacks `isa` (the detail names the
 * missing features), SEM_EINVAL when max_tokens or max_n_in is 0,
 * SEM_ENOMEM when the scratch cannot be allocated. The caller owns the
 * context.
 */
matmul_ctx *matmul_ctx_create(cpu_isa isa, size_t max_tokens, size_t max_n_in, thread_pool *tp,
                              sem_err *err);
void matmul_ctx_destroy(matmul_ctx *ctx);

cpu_isa matmul_ctx_isa(const matmul_ctx *ctx);

/*
 * y[t*ld_y + j] = sum_i x[t*n_in + i] * W[j][i] for t < n_tok, j < n_out,
 * with the activations rounded to the weight's companion format first.
 * Requires: w passed matmul_weight_check, w->n_in <= max_n_in, ld_y >=
 * n_out, y does not overlap x. n_tok may exceed max_tokens (the call is then
 * split); n_tok = 0 does nothing. Uses the context's thread pool.
 */
void matmul(matmul_ctx *ctx, const matmul_weight *w, const float *x, size_t n_tok, float *y,
            size_t ld_y);

/* Dequantizes row `row` of w (n_in values) into dst: the embedding lookup. */
void matmul_weight_row(const matmul_weight *w, uint64_t row, float *dst);

#endif
