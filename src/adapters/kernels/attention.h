/*
 * attention.h - causal attention over a paged KV cache, for a tile of
 * queries: consecutive positions of one sequence times the query heads
 * that share one KV head.
 *
 * Keys and values are read through the sequence's block table straight
 * from the block pool (never copied into a contiguous buffer), 16 keys at
 * a time, with an online softmax per query row. Every K and V row read is
 * widened to f32 once for the whole tile: for the 4 query heads of a KV
 * head in a decode step (Llama 3.2 1B), and for up to 64 rows (16 prompt
 * positions x 4 heads) in a prefill.
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
    uint32_t kv_head;
    uint32_t pos;     /* the first query's position; the tile's own K/V is stored */
} attention_args;

/* Floats of scratch attention_tile needs for the given head dimensions. */
size_t attention_scratch_floats(uint32_t k_head_dim, uint32_t v_head_dim);

/*
 * For queries i < n_pos at positions pos + i and heads g < n_q (n_pos * n_q
 * <= ATTENTION_MAX_ROWS): out_i_g[v_head_dim] = softmax(q_i_g . K^T) V over
 * the keys query i sees, where q_i_g = q + i * q_stride + g * k_head_dim
 * (already carrying the attention scale) and out_i_g = out + i * out_stride
 * + g * v_head_dim. scratch holds attention_scratch_floats(...) floats.
 */
void attention_tile(const attention_args *a, uint32_t n_pos, uint32_t n_q, const float *q,
                    size_t q_stride, float *out, size_t out_stride, float *scratch);

#endif
