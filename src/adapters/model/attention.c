/*
 * attention.c - online-softmax attention over KV blocks.
 */
#include "attention.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void attention_head(const attention_args *a, const float *q, float *out, float *scratch)
{
    block_pool *pool = block_table_pool(a->kv);
    const cache_spec *spec = block_pool_spec(pool);
    const uint32_t bt = spec->block_tokens, dk = spec->k_head_dim, dv = spec->v_head_dim;
    const int q8 = spec->kv_type == CACHE_KV_Q8_0;
    uint32_t lo = (a->window && a->pos + 1 > a->window) ? a->pos + 1 - a->window : 0;

    float max = -INFINITY;
    double sum = 0.0;
    memset(out, 0, dv * sizeof *out);

    for (uint32_t start = lo; start <= a->pos;) {
        uint32_t slot0 = start % bt;
        uint32_t end = start - slot0 + bt - 1; /* last position in this block */
        if (end > a->pos)
            end = a->pos;
        uint32_t n = end - start + 1;
        uint32_t b = block_table_block_for(a->kv, a->layer, start);
        assert(b != UINT32_MAX); /* the forward pass checked the table covers the window */
        const uint8_t *blk = block_pool_data(pool, b);
        size_t koff = cache_spec_k_offset(spec, a->kv_head, slot0);
        size_t voff = cache_spec_v_offset(spec, a->kv_head, slot0);
        size_t krow = cache_spec_row_bytes(spec->kv_type, dk);
        size_t vrow = cache_spec_row_bytes(spec->kv_type, dv);

        float bmax = -INFINITY;
        for (uint32_t j = 0; j < n; j++) {
            const void *k = blk + koff + j * krow;
            float s = q8 ? a->vo->dot_q8_0_f32(k, q, dk) : a->vo->dot_f16_f32(k, q, dk);
            scratch[j] = s;
            bmax = s > bmax ? s : bmax;
        }
        if (bmax > max) {
            float r = expf(max - bmax); /* 0 on the first block */
            for (uint32_t d = 0; d < dv; d++)
                out[d] *= r;
            sum *= r;
            max = bmax;
        }
        for (uint32_t j = 0; j < n; j++) {
            float w = expf(scratch[j] - max);
            sum += w;
            const void *v = blk + voff + j * vrow;
            if (q8)
                a->vo->axpy_q8_0(out, w, v, dv);
            else
                a->vo->axpy_f16(out, w, v, dv);
        }
        start = end + 1;
    }
    float inv = (float)(1.0 / sum);
    for (uint32_t d = 0; d < dv; d++)
        out[d] *= inv;
}
