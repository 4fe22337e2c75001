/*
 * attention.h - causal attention over a paged KV cache, for a tile of
 * queries: consecutive positions of one sequence times the query heads of
 * a run of consecutive KV heads (one KV head's group, or part of it, in a
 * prefill; several whole groups in a decode step, so that one thread reads
 * a contiguous part of each block).
 *
 * Keys and values are read through the sequence's block table straight
 * from the block pool (never copied into a contiguous buffer), 16 keys at
 * a time, with an online softmax per query row. Every K and V row read is
 * widened to f32 once for the whole tile: for up to 64 rows (16 prompt
 * positions x 4 heads) in a prefill. A decode step over f16 K/V reads the
 * rows in place instead (vec_ops.attend16_f16), for every query head of
 * the tile's KV heads.
 *
 * Threads: pure function of its inputs; many threads may run it at once on
 * different outputs. The blocks it reads must not be written concurrently.
 */
#ifndef SEM_ATTENTION_H
#define SEM_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "vec.h"
#include "domain/block_table.h"

#define ATTENTION_MAX_ROWS 64 /* query rows (positions x heads) per tile */

typedef struct attention_args {
    const vec_ops *vo;
    const block_table *kv;
    uint32_t layer;
    uint32_t window;  /* each query sees keys pos-window+1 .. pos; 0 = keys 0 .. pos */
    uint32_t kv_head; /* the first of the tile's KV heads */
    uint32_t pos;     /* the first query's position; the tile's own K/V is stored */
} attention_args;

/* Floats of scratch attention_tile needs for the given head dimensions. */
size_t attention_scratch_floats(uint32_t k_head_dim, uint32_t v_head_dim);

/*
 * For queries i < n_pos at positions pos + i, KV heads kv_head + hk (hk <
 * n_kv) and query heads g < n_q of each (n_pos * n_kv * n_q <=
 * ATTENTION_MAX_ROWS; with n_kv > 1, n_q is the whole group):
 * out_i_h[v_head_dim] = softmax(q_i_h . K_hk^T) V_hk over the keys query i
 * sees, where h = hk * n_q + g, q_i_h = q + i * q_stride + h * k_head_dim
 * (already carrying the attention scale) and out_i_h = out + i *
 * out_stride + h * v_head_dim. scratch holds attention_scratch_floats(...)
 * floats. Each row's result does not depend on n_kv (the same operations
 * in the same order).
 */
void attention_tile(const attention_args *a, uint32_t n_pos, uint32_t n_kv, uint32_t n_q,
                    const float *q, size_t q_stride, float *out, size_t out_stride,
                    float *scratch);

#endif
