/*
 * attention.c - online-softmax attention of a tile of queries over KV
 * blocks (attention.h).
 *
 * The keys from the first query's window start to the last query's
 * position are visited in tiles of ATT_TILE that never cross a block, and
 * in each tile the KV heads one after another. Per tile and KV head: the
 * head's K rows are widened to f32 and transposed ([dk][16]), so a
 * query row's 16 scores come out as one vector; keys a query must not see
 * (after its position, before its window) are masked to -inf; each row's
 * maximum and sum are updated (its output rescaled when the maximum
 * rises) and its scores turned into weights; then the V rows are widened
 * and added into every row's output with those weights. At the start of
 * each block the heads' rows PREFETCH_BLOCKS blocks ahead are asked for.
 *
 * A tile of one position (a decode step, which reads the whole cache for
 * a few query heads) goes instead through vo->attend16_f16 (or _q8_0) per
 * 16 keys and KV head: dot products straight from the cache rows, no
 * widened copy and no transpose. In bench_attention (1B
 * shape, 4096 keys, 16 layers, AMD EPYC Zen 5, 2 threads) that took a step
 * from 16.7-18.0 ms to 7.4 (AVX-512) and from 18.8-20.4 to 8.6 (AVX2).
 * Scratch:
 *
 *     scores [ATTENTION_MAX_ROWS][ATT_TILE]   weights of the current tile
 *     max, sum [ATTENTION_MAX_ROWS]
 *     rows   [ATT_TILE][max(dk, dv)]          the tile's K, then V, in f32
 *     kt     [dk][ATT_TILE]                   the K tile transposed
 */
#include "attention.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define ATT_TILE 16 /* keys per tile; the width of scores16_f32 */

size_t attention_scratch_floats(uint32_t k_head_dim, uint32_t v_head_dim)
{
    uint32_t d = k_head_dim > v_head_dim ? k_head_dim : v_head_dim;
    return (size_t)ATTENTION_MAX_ROWS * (ATT_TILE + 2) + (size_t)ATT_TILE * d +
           (size_t)k_head_dim * ATT_TILE;
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

/* The first key query position p sees. */
static uint32_t first_key(const attention_args *a, uint32_t p)
{
    return (a->window && p + 1 > a->window) ? p + 1 - a->window : 0;
}

/*
 * How many blocks ahead of the one being read a head's K and V rows are
 * asked for (into L2), at the start of each block. At a long context a
 * decode step reads its K/V (134 MB at 4096 tokens, 1B shape, f16) in
 * runs of one block's rows per head, and the hardware prefetchers did not
 * keep up: on the Intel Xeon, decode after 4096 tokens went from 15.5-16.3
 * to 17.2-17.5 tok/s (AVX-512) and from 12.5-13.1 to 13.4-13.6 (AVX2),
 * alternating runs of both builds. Asking per tile of 16 keys, one block
 * ahead and into L1, gained nothing; 4 blocks ahead measured as 2.
 */
#define PREFETCH_BLOCKS 2

static void prefetch_block(const attention_args *a, uint32_t n_kv, const cache_spec *spec,
                           const uint8_t *blk)
{
    const uint8_t *k = blk + cache_spec_k_offset(spec, a->kv_head, 0);
    const uint8_t *v = blk + cache_spec_v_offset(spec, a->kv_head, 0);
    size_t kb = (size_t)n_kv * spec->block_tokens *
                cache_spec_row_bytes(spec->kv_type, spec->k_head_dim);
    size_t vb = (size_t)n_kv * spec->block_tokens *
                cache_spec_row_bytes(spec->kv_type, spec->v_head_dim);
    for (size_t o = 0; o < kb; o += 64)
        __builtin_prefetch(k + o, 0, 2);
    for (size_t o = 0; o < vb; o += 64)
        __builtin_prefetch(v + o, 0, 2);
}

typedef struct tile_state {
    const attention_args *a;
    uint32_t n_pos, n_kv, n_q, dk, dv;
    const float *q;
    size_t q_stride;
    float *out;
    size_t out_stride;
    float *scores, *max, *sum, *rows, *kt;
} tile_state;

/* The row of query position i, KV head hk (of the tile's) and query head
 * g of that KV head's group: rows are position-major. */
static uint32_t row_of(const tile_state *s, uint32_t i, uint32_t hk, uint32_t g)
{
    return (i * s->n_kv + hk) * s->n_q + g;
}

/* Scores and softmax step of the keys [k0, k0 + n) for every row of KV
 * head hk; marks in live[] the rows that see at least one of them. */
static void tile_weights(tile_state *s, uint32_t hk, uint32_t k0, uint32_t n, uint8_t *live)
{
    const vec_ops *vo = s->a->vo;
    for (uint32_t i = 0; i < s->n_pos; i++) {
        uint32_t p = s->a->pos + i, lo = first_key(s->a, p);
        int sees = k0 <= p && k0 + n > lo;
        for (uint32_t g = 0; g < s->n_q; g++) {
            uint32_t r = row_of(s, i, hk, g), qh = hk * s->n_q + g;
            live[r] = (uint8_t)sees;
            if (!sees)
                continue;
            float *sc = s->scores + (size_t)r * ATT_TILE;
            vo->scores16_f32(sc, s->q + i * s->q_stride + (size_t)qh * s->dk, s->kt, s->dk);
            if (n < ATT_TILE || k0 + n - 1 > p || k0 < lo) /* a tile on an edge */
                for (uint32_t j = 0; j < ATT_TILE; j++)
                    if (j >= n || k0 + j > p || k0 + j < lo)
                        sc[j] = -INFINITY;
            float tmax = vo->max_f32(sc, ATT_TILE);
            if (tmax > s->max[r]) {
                float f = expf(s->max[r] - tmax); /* 0 on the row's first keys */
                float *o = s->out + i * s->out_stride + (size_t)qh * s->dv;
                for (uint32_t d = 0; d < s->dv; d++)
                    o[d] *= f;
                s->sum[r] *= f;
                s->max[r] = tmax;
            }
            s->sum[r] += vo->exp_shift_f32(sc, ATT_TILE, s->max[r]);
        }
    }
}

/* Adds the V rows of KV head hk, keys [slot0, slot0 + n) of the block, into
 * the output of every live row of that head, weighted by its scores. */
static void tile_values(tile_state *s, uint32_t hk, const uint8_t *vrows, uint32_t n,
                        const uint8_t *live)
{
    const cache_spec *spec = block_pool_spec(block_table_pool(s->a->kv));
    widen_rows(s->a, spec, vrows, n, s->dv, s->rows);
    for (uint32_t i = 0; i < s->n_pos; i++)
        for (uint32_t g = 0; g < s->n_q; g++) {
            uint32_t r = row_of(s, i, hk, g), qh = hk * s->n_q + g;
            if (live[r])
                s->a->vo->axpy_rows_f32(s->out + i * s->out_stride + (size_t)qh * s->dv,
                                        s->scores + (size_t)r * ATT_TILE, s->rows, n, s->dv);
        }
}

/*
 * How many blocks ahead a decode step asks for the rows it will read, and
 * how: each 16-key tile asks for the same tile DECODE_PREFETCH_BLOCKS
 * blocks on, so the requests are spread over the block rather than made
 * all at its start (bench_attention, AMD EPYC Zen 5, AVX-512: 6.9-7.1 ->
 * 6.2-6.3 ms per step, three alternating pairs).
 */
#define DECODE_PREFETCH_BLOCKS 2

static void prefetch_rows(const uint8_t *k, const uint8_t *v, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64) {
        __builtin_prefetch(k + o, 0, 2);
        __builtin_prefetch(v + o, 0, 2);
    }
}

/*
 * One query position (a decode step): per block, per KV head,
 * vo->attend16_f16 (or _q8_0) on each run of up to 16 keys, which keeps
 * the rows in registers instead of widening and transposing them through
 * scratch.
 */
static void attend_one(const attention_args *a, uint32_t n_kv, uint32_t n_q, const float *q,
                       float *out, float *mx, float *sm)
{
    block_pool *pool = block_table_pool(a->kv);
    const cache_spec *spec = block_pool_spec(pool);
    const uint32_t bt = spec->block_tokens, d = spec->k_head_dim;
    for (uint32_t k0 = first_key(a, a->pos); k0 <= a->pos;) {
        uint32_t slot0 = k0 % bt, n = bt - slot0;
        if (n > a->pos - k0 + 1)
            n = a->pos - k0 + 1;
        uint32_t b = block_table_block_for(a->kv, a->layer, k0);
        assert(b != UINT32_MAX); /* the forward pass checked the table covers the window */
        const uint8_t *blk = block_pool_data(pool, b);
        uint32_t ahead = k0 + DECODE_PREFETCH_BLOCKS * bt;
        const uint8_t *nblk = NULL;
        if (slot0 == 0 && ahead <= a->pos)
            nblk = block_pool_data(pool, block_table_block_for(a->kv, a->layer, ahead));
        const size_t row = cache_spec_row_bytes(spec->kv_type, d);
        for (uint32_t hk = 0; hk < n_kv; hk++) {
            uint32_t h = a->kv_head + hk, r = hk * n_q;
            for (uint32_t j = 0; j < n; j += ATT_TILE) {
                const void *kr = blk + cache_spec_k_offset(spec, h, slot0 + j);
                const void *vr = blk + cache_spec_v_offset(spec, h, slot0 + j);
                uint32_t nj = n - j < ATT_TILE ? n - j : ATT_TILE;
                if (nblk) /* the same rows DECODE_PREFETCH_BLOCKS blocks on */
                    prefetch_rows(nblk + cache_spec_k_offset(spec, h, j),
                                  nblk + cache_spec_v_offset(spec, h, j), nj * row);
                if (spec->kv_type == CACHE_KV_Q8_0)
                    a->vo->attend16_q8_0(q + (size_t)r * d, n_q, kr, vr, nj, d,
                                         out + (size_t)r * d, mx + r, sm + r);
                else
                    a->vo->attend16_f16(q + (size_t)r * d, n_q, kr, vr, nj, d,
                                        out + (size_t)r * d, mx + r, sm + r);
            }
        }
        k0 += n;
    }
}

void attention_tile(const attention_args *a, uint32_t n_pos, uint32_t n_kv, uint32_t n_q,
                    const float *q, size_t q_stride, float *out, size_t out_stride,
                    float *scratch)
{
    assert(n_pos * n_kv * n_q <= ATTENTION_MAX_ROWS);

    block_pool *pool = block_table_pool(a->kv);
    const cache_spec *spec = block_pool_spec(pool);
    const uint32_t bt = spec->block_tokens, dk = spec->k_head_dim, dv = spec->v_head_dim;
    const uint32_t n_rows = n_pos * n_kv * n_q, last = a->pos + n_pos - 1;
    const size_t row_q = (size_t)n_kv * n_q; /* query heads per position */
    assert(a->kv_head + n_kv <= spec->n_kv_heads);
    tile_state s = {.a = a, .n_pos = n_pos, .n_kv = n_kv, .n_q = n_q, .dk = dk, .dv = dv,
                    .q = q, .q_stride = q_stride, .out = out, .out_stride = out_stride};
    s.scores = scratch;
    s.max = s.scores + (size_t)ATTENTION_MAX_ROWS * ATT_TILE;
    s.sum = s.max + ATTENTION_MAX_ROWS;
    s.rows = s.sum + ATTENTION_MAX_ROWS;
    s.kt = s.rows + (size_t)ATT_TILE * (dk > dv ? dk : dv);
    uint8_t live[ATTENTION_MAX_ROWS];

    for (uint32_t r = 0; r < n_rows; r++) {
        s.max[r] = -INFINITY;
        s.sum[r] = 0.0f;
    }
    for (uint32_t i = 0; i < n_pos; i++)
        memset(out + i * out_stride, 0, row_q * dv * sizeof *out);
    const int in_place = n_pos == 1 && dk == dv && dk <= VEC_ATTEND_MAX_DIM &&
                         dk % (spec->kv_type == CACHE_KV_Q8_0 ? 32 : 16) == 0;
    if (in_place)
        attend_one(a, n_kv, n_q, q, out, s.max, s.sum);
    /* otherwise the tiles: widened, transposed, 16 keys at a time */
    for (uint32_t k0 = first_key(a, a->pos); !in_place && k0 <= last;) {
        uint32_t slot0 = k0 % bt, n = bt - slot0;
        if (n > ATT_TILE)
            n = ATT_TILE;
        if (n > last - k0 + 1)
            n = last - k0 + 1;
        uint32_t b = block_table_block_for(a->kv, a->layer, k0);
        assert(b != UINT32_MAX); /* the forward pass checked the table covers the window */
        const uint8_t *blk = block_pool_data(pool, b);
        uint32_t ahead = k0 + PREFETCH_BLOCKS * bt;
        if (slot0 == 0 && ahead <= last) {
            uint32_t nb = block_table_block_for(a->kv, a->layer, ahead);
            prefetch_block(a, n_kv, spec, block_pool_data(pool, nb));
        }
        for (uint32_t hk = 0; hk < n_kv; hk++) {
            uint32_t h = a->kv_head + hk;
            widen_rows(a, spec, blk + cache_spec_k_offset(spec, h, slot0), n, dk, s.rows);
            a->vo->transpose16_f32(s.kt, s.rows, n, dk);
            tile_weights(&s, hk, k0, n, live);
            tile_values(&s, hk, blk + cache_spec_v_offset(spec, h, slot0), n, live);
        }
        k0 += n;
    }
    for (uint32_t i = 0; i < n_pos; i++)
        for (uint32_t qh = 0; qh < row_q; qh++) {
            float inv = 1.0f / s.sum[i * row_q + qh];
            float *o = out + i * out_stride + (size_t)qh * dv;
            for (uint32_t d = 0; d < dv; d++)
                o[d] *= inv;
        }
}
