/*
 * cache_spec.c - validation and arithmetic of the KV geometry.
 */
#include "cache_spec.h"

#include <string.h>

#define Q8_0_GROUP 32
#define Q8_0_GROUP_BYTES (2 + Q8_0_GROUP)

static int is_pow2(uint32_t x) { return x && !(x & (x - 1)); }

sem_status cache_spec_validate(const cache_spec *spec, sem_err *err)
{
    if (!spec)
        return sem_err_set(err, SEM_EINVAL, "cache spec: NULL");
    if (spec->n_layers == 0 || spec->n_layers > CACHE_SPEC_MAX_LAYERS)
        return sem_err_set(err, SEM_EINVAL, "cache spec: n_layers = %u, must be 1..%d",
                           spec->n_layers, CACHE_SPEC_MAX_LAYERS);
    if (spec->n_kv_heads == 0 || spec->n_kv_heads > CACHE_SPEC_MAX_KV_HEADS)
        return sem_err_set(err, SEM_EINVAL, "cache spec: n_kv_heads = %u, must be 1..%d",
                           spec->n_kv_heads, CACHE_SPEC_MAX_KV_HEADS);
    if (spec->k_head_dim == 0 || spec->k_head_dim > CACHE_SPEC_MAX_HEAD_DIM)
        return sem_err_set(err, SEM_EINVAL, "cache spec: k_head_dim = %u, must be 1..%d",
                           spec->k_head_dim, CACHE_SPEC_MAX_HEAD_DIM);
    if (spec->v_head_dim == 0 || spec->v_head_dim > CACHE_SPEC_MAX_HEAD_DIM)
        return sem_err_set(err, SEM_EINVAL, "cache spec: v_head_dim = %u, must be 1..%d",
                           spec->v_head_dim, CACHE_SPEC_MAX_HEAD_DIM);
    if (!is_pow2(spec->block_tokens) || spec->block_tokens < CACHE_SPEC_MIN_BLOCK_TOKENS ||
        spec->block_tokens > CACHE_SPEC_MAX_BLOCK_TOKENS)
        return sem_err_set(err, SEM_EINVAL,
                           "cache spec: block_tokens = %u, must be a power of two in %d..%d",
                           spec->block_tokens, CACHE_SPEC_MIN_BLOCK_TOKENS,
                           CACHE_SPEC_MAX_BLOCK_TOKENS);
    if (spec->kv_type != CACHE_KV_F16 && spec->kv_type != CACHE_KV_Q8_0)
        return sem_err_set(err, SEM_EINVAL, "cache spec: kv_type = %d is not f16 or q8_0",
                           (int)spec->kv_type);
    if (spec->kv_type == CACHE_KV_Q8_0 &&
        (spec->k_head_dim % Q8_0_GROUP || spec->v_head_dim % Q8_0_GROUP))
        return sem_err_set(err, SEM_EINVAL,
                           "cache spec: kv_type q8_0 needs head dims divisible by %d "
                           "(k_head_dim = %u, v_head_dim = %u)",
                           Q8_0_GROUP, spec->k_head_dim, spec->v_head_dim);
    for (uint32_t l = 0; l < spec->n_layers; l++) {
        const cache_layer *ly = &spec->layers[l];
        if (ly->kind == CACHE_ATTN_GLOBAL) {
            if (ly->window != 0)
                return sem_err_set(err, SEM_EINVAL,
                                   "cache spec: layers[%u].window = %u on a global layer, must be 0",
                                   l, ly->window);
        } else if (ly->kind == CACHE_ATTN_SLIDING) {
            if (ly->window == 0)
                return sem_err_set(err, SEM_EINVAL,
                                   "cache spec: layers[%u].window = 0 on a sliding-window layer", l);
        } else {
            return sem_err_set(err, SEM_EINVAL, "cache spec: layers[%u].kind = %d is unknown", l,
                               (int)ly->kind);
        }
    }
    return SEM_OK;
}

const char *cache_kv_type_name(cache_kv_type t)
{
    switch (t) {
    case CACHE_KV_F16: return "f16";
    case CACHE_KV_Q8_0: return "q8_0";
    }
    return "unknown";
}

sem_status cache_kv_type_parse(const char *name, cache_kv_type *out, sem_err *err)
{
    if (name && strcmp(name, "f16") == 0) {
        *out = CACHE_KV_F16;
        return SEM_OK;
    }
    if (name && strcmp(name, "q8_0") == 0) {
        *out = CACHE_KV_Q8_0;
        return SEM_OK;
    }
    return sem_err_set(err, SEM_EINVAL, "KV type '%s' is not one of: f16, q8_0",
                       name ? name : "(null)");
}

size_t cache_spec_row_bytes(cache_kv_type t, uint32_t dim)
{
    if (t == CACHE_KV_Q8_0)
        return (size_t)(dim / Q8_0_GROUP) * Q8_0_GROUP_BYTES;
    return (size_t)dim * 2;
}

size_t cache_spec_block_k_bytes(const cache_spec *spec)
{
    return cache_spec_row_bytes(spec->kv_type, spec->k_head_dim) * spec->n_kv_heads *
           spec->block_tokens;
}

size_t cache_spec_block_v_bytes(const cache_spec *spec)
{
    return cache_spec_row_bytes(spec->kv_type, spec->v_head_dim) * spec->n_kv_heads *
           spec->block_tokens;
}

size_t cache_spec_block_bytes(const cache_spec *spec)
{
    return cache_spec_block_k_bytes(spec) + cache_spec_block_v_bytes(spec);
}

size_t cache_spec_k_offset(const cache_spec *spec, uint32_t head, uint32_t slot)
{
    size_t row = cache_spec_row_bytes(spec->kv_type, spec->k_head_dim);
    return ((size_t)head * spec->block_tokens + slot) * row;
}

size_t cache_spec_v_offset(const cache_spec *spec, uint32_t head, uint32_t slot)
{
    size_t row = cache_spec_row_bytes(spec->kv_type, spec->v_head_dim);
    return cache_spec_block_k_bytes(spec) + ((size_t)head * spec->block_tokens + slot) * row;
}

uint64_t cache_spec_kept_tokens(const cache_spec *spec, uint32_t layer, uint64_t n_tokens)
{
    const cache_layer *ly = &spec->layers[layer];
    if (ly->kind == CACHE_ATTN_SLIDING && n_tokens > ly->window)
        return ly->window;
    return n_tokens;
}

uint64_t cache_spec_first_block(const cache_spec *spec, uint32_t layer, uint64_t n_tokens)
{
    uint64_t first_token = n_tokens - cache_spec_kept_tokens(spec, layer, n_tokens);
    return first_token / spec->block_tokens;
}

uint64_t cache_spec_blocks_for(const cache_spec *spec, uint32_t layer, uint64_t n_tokens)
{
    if (n_tokens == 0)
        return 0;
    uint64_t end_block = (n_tokens + spec->block_tokens - 1) / spec->block_tokens;
    return end_block - cache_spec_first_block(spec, layer, n_tokens);
}

uint64_t cache_spec_total_blocks_for(const cache_spec *spec, uint64_t n_tokens)
{
    uint64_t total = 0;
    for (uint32_t l = 0; l < spec->n_layers; l++)
        total += cache_spec_blocks_for(spec, l, n_tokens);
    return total;
}

uint64_t cache_spec_max_blocks_for(const cache_spec *spec, uint32_t layer, uint64_t n_tokens)
{
    const cache_layer *ly = &spec->layers[layer];
    if (ly->kind == CACHE_ATTN_GLOBAL || n_tokens <= ly->window)
        return cache_spec_blocks_for(spec, layer, n_tokens);
    /* W tokens straddle at most ceil((W - 1) / bt) + 1 blocks. */
    uint64_t bt = spec->block_tokens;
    uint64_t worst = (ly->window - 1 + bt - 1) / bt + 1;
    uint64_t all = (n_tokens + bt - 1) / bt;
    return worst < all ? worst : all;
}

uint64_t cache_spec_peak_blocks(const cache_spec *spec, uint64_t n_tokens, uint32_t chunk)
{
    uint64_t bt = spec->block_tokens, total = 0;
    uint64_t all = (n_tokens + bt - 1) / bt;
    for (uint32_t l = 0; l < spec->n_layers; l++) {
        const cache_layer *ly = &spec->layers[l];
        uint64_t n = all;
        if (ly->kind == CACHE_ATTN_SLIDING) {
            uint64_t span = (ly->window + (uint64_t)chunk + bt - 1) / bt + 1;
            n = span < all ? span : all;
        }
        total += n;
    }
    return total;
}
