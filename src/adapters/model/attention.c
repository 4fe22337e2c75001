/*
 * attention.c - online-softmax attention over KV blocks, the query heads of
 * one KV head together (attention.h).
 *
 * Per block: K rows are widened to f32 ATT_TILE at a time and dotted with
 * every query of the group (scores[n_q][block_tokens]); each head's maximum
 * and sum are updated and its scores turned into weights; then the V rows
 * are widened the same way and added into every head's output. Scratch:
 *
 *     scores [n_q][CACHE_SPEC_MAX_BLOCK_TOKENS]
 *     max    [n_q], sum [n_q]
 *     rows   [ATT_TILE][max(k_head_dim, v_head_dim)]
 */
#include "attention.h"

#include <assert.h>
#include <math.h>
#include <string.h>


#define ATT_TILE 16 /* K or V rows widened to f32 at a time */

size_t attention_scratch_floats(uint32_t n_q, uint32_t k_head_dim, uint32_t v_head_dim)
{
    uint32_t d = k_head_dim > v_head_dim ? k_head_dim : v_head_dim;
    return (size_t)n_q * (CACHE_SPEC_MAX_BLOCK_TOKENS + 2) + (size_t)ATT_TILE * d;
}

/* n consecutive cache rows of d values each, as f32 (rows of one head are
 * contiguous in a block, so they convert as one run). */
static void widen_rows(const attention_args *a, const cache_spec *spec, const uint8_t *src,
                       uint32_t n, uint32_t d, float *dst)
{
    if (spec->kv_type == CACHE_KV_Q8_0)
        a->vo->q8_0_to_f32(dst, src, (size_t)n * d);
    else
        a->vo->f16_to_f32(dst, (const uint16_t *)(const void *)src, (size_t)n * d);
}

/* Scores of keys [start, start + n) of one block for every head. */
static void block_scores(const attention_args *a, const cache_spec *spec, const uint8_t *kd,
                         uint32_t n, uint32_t n_q, const float *q, float *scores, float *rows)
{
    const uint32_t dk = spec->k_head_dim;
    const size_t krow = cache_spec_row_bytes(spec->kv_type, dk);
    for (uint32_t j0 = 0; j0 < n; j0 += ATT_TILE) {
        uint32_t nt = n - j0 < ATT_TILE ? n - j0 : ATT_TILE;
        widen_rows(a, spec, kd + j0 * krow, nt, dk, rows);
        for (uint32_t g = 0; g < n_q; g++)
            a->vo->dot_rows_f32(scores + (size_t)g * CACHE_SPEC_MAX_BLOCK_TOKENS + j0, rows,
                                q + (size_t)g * dk, nt, dk);
    }
}

/* Weighted sum of the block's V rows into every head's output. */
static void block_values(const attention_args *a, const cache_spec *spec, const uint8_t *vd,
                         uint32_t n, uint32_t n_q, const float *weights, float *out, float *rows)
{
    const uint32_t dv = spec->v_head_dim;
    const size_t vrow = cache_spec_row_bytes(spec->kv_type, dv);
    for (uint32_t j0 = 0; j0 < n; j0 += ATT_TILE) {
        uint32_t nt = n - j0 < ATT_TILE ? n - j0 : ATT_TILE;
        widen_rows(a, spec, vd + j0 * vrow, nt, dv, rows);
        for (uint32_t g = 0; g < n_q; g++)
            a->vo->axpy_rows_f32(out + (size_t)g * dv,
                                 weights + (size_t)g * CACHE_SPEC_MAX_BLOCK_TOKENS + j0, rows, nt,
                                 dv);
    }
}

/* Online softmax step for head g: rescale what it has so far when the
 * block raises its maximum, then turn its scores into weights. */
static void block_softmax(float *s, uint32_t n, float *max, float *sum, float *out, uint32_t dv)
{
    float bmax = -INFINITY;
    for (uint32_t j = 0; j < n; j++)
        bmax = s[j] > bmax ? s[j] : bmax;
    if (bmax > *max) {
        float r = expf(*max - bmax); /* 0 on the first block */
        for (uint32_t d = 0; d < dv; d++)
            out[d] *= r;
        *sum *= r;
        *max = bmax;
    }
    for (uint32_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - *max);
        *sum += s[j];
    }
}

void attention_heads(const attention_args *a, uint32_t n_q, const float *q, float *out,
                     float *scratch)
{
    block_pool *pool = block_table_pool(a->kv);
    const cache_spec *spec = block_pool_spec(pool);
    const uint32_t bt = spec->block_tokens, dv = spec->v_head_dim;
    uint32_t lo = (a->window && a->pos + 1 > a->window) ? a->pos + 1 - a->window : 0;
    float *scores = scratch, *max = scores + (size_t)n_q * CACHE_SPEC_MAX_BLOCK_TOKENS;
    float *sum = max + n_q, *rows = sum + n_q;

    for (uint32_t g = 0; g < n_q; g++) {
        max[g] = -INFINITY;
        sum[g] = 0.0f;
    }
    memset(out, 0, (size_t)n_q * dv * sizeof *out);

    for (uint32_t start = lo; start <= a->pos;) {
        uint32_t slot0 = start % bt;
        uint32_t end = start - slot0 + bt - 1; /* last position in this block */
        if (end > a->pos)
            end = a->pos;
        uint32_t n = end - start + 1;
        uint32_t b = block_table_block_for(a->kv, a->layer, start);
        assert(b != UINT32_MAX); /* the forward pass checked the table covers the window */
        const uint8_t *blk = block_pool_data(pool, b);

        block_scores(a, spec, blk + cache_spec_k_offset(spec, a->kv_head, slot0), n, n_q, q,
                     scores, rows);
        for (uint32_t g = 0; g < n_q; g++)
            block_softmax(scores + (size_t)g * CACHE_SPEC_MAX_BLOCK_TOKENS, n, &max[g], &sum[g],
                          out + (size_t)g * dv, dv);
        block_values(a, spec, blk + cache_spec_v_offset(spec, a->kv_head, slot0), n, n_q, scores,
                     out, rows);
        start = end + 1;
    }
    for (uint32_t g = 0; g < n_q; g++) {
        float inv = 1.0f / sum[g];
        for (uint32_t d = 0; d < dv; d++)
            out[(size_t)g * dv + d] *= inv;
    }
}
