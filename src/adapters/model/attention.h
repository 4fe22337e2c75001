/*
 * attention.h - causal attention of the query heads that share one KV head,
 * over a paged KV cache.
 *
 * Keys and values are read through the sequence's block table straight
 * from the block pool (never copied into a contiguous buffer), one block at
 * a time, with an online softmax: per block the scores are computed, each
 * head's running maximum and sum are rescaled, and the value rows are
 * accumulated. The query heads of a group (grouped-query attention: 4 per
 * KV head in Llama 3.2 1B) are done together, so each K and V row is read
 * from the cache and widened to f32 once for all of them instead of once
 * per head.
 *
 * Threads: pure function of its inputs; many threads may run it at once on
 * different outputs. The blocks it reads must not be written concurrently.
 */
#ifndef SEM_ATTENTION_H
#define SEM_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/model/vec.h"
#include "domain/block_table.h"

typedef struct attention_args {
    const vec_ops *vo;
    const block_table *kv;
    uint32_t layer;
    uint32_t window;  /* keys pos-window+1 .. pos; 0 = all keys 0 .. pos */
    uint32_t kv_head;
    uint32_t pos;     /* the query's position; its own K/V is already stored */
} attention_args;

/* Floats of scratch attention_heads needs for n_q heads of the given K and
 * V head dimensions. */
size_t attention_scratch_floats(uint32_t n_q, uint32_t k_head_dim, uint32_t v_head_dim);

/*
 * out[n_q][v_head_dim] = softmax(q . K^T) V over the visible keys, for the
 * n_q query heads q[n_q][k_head_dim] that read a->kv_head. The queries must
 * already carry the attention scale. scratch holds
 * attention_scratch_floats(n_q, ...) floats.
 */
void attention_heads(const attention_args *a, uint32_t n_q, const float *q, float *out,
                     float *scratch);

#endif
