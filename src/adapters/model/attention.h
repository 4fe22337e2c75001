/*
 * attention.h - causal attention of one query head over a paged KV cache.
 *
 * Keys and values are read through the sequence's block table straight
 * from the block pool (never copied into a contiguous buffer), one block at
 * a time, with an online softmax: per block the scores are computed, the
 * running maximum and sum are rescaled, and the value rows are accumulated.
 *
 * Threads: pure function of its inputs; many threads may run it at once on
 * different outputs. The blocks it reads must not be written concurrently.
 */
#ifndef SEM_ATTENTION_H
#define SEM_ATTENTION_H

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

/*
 * out[v_head_dim] = softmax(q . K^T) V over the visible keys. q[k_head_dim]
 * must already carry the attention scale. scratch holds block_tokens floats.
 */
void attention_head(const attention_args *a, const float *q, float *out, float *scratch);

#endif
