/*
 * cache_spec.h - the KV geometry of one model, as the cache sees it.
 *
 * A model's KV cache is stored in blocks: one block holds the keys and
 * values of `block_tokens` consecutive tokens for one layer, all KV heads.
 * Inside a block the layout is
 *
 *     K: [n_kv_heads][block_tokens][k_head_dim] elements of kv_type
 *     V: [n_kv_heads][block_tokens][v_head_dim] elements of kv_type
 *
 * so one head's keys for a block are contiguous (attention walks them in
 * order). A q8_0 row is k_head_dim / 32 blocks of {f16 scale, 32 x int8}.
 *
 * A global layer needs every block of a sequence. A sliding-window layer of
 * window W needs only the blocks holding the last W tokens, because the
 * query at position p sees keys p-W+1 .. p; the cache keeps one more token
 * (W in all) so a truncation by one token still leaves a full window.
 *
 * cache_spec is a plain value: copy it freely. All functions are pure.
 */
#ifndef SEM_CACHE_SPEC_H
#define SEM_CACHE_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CACHE_SPEC_MAX_LAYERS 256
#define CACHE_SPEC_MIN_BLOCK_TOKENS 16
#define CACHE_SPEC_MAX_BLOCK_TOKENS 1024
#define CACHE_SPEC_DEFAULT_BLOCK_TOKENS 64
#define CACHE_SPEC_MAX_HEAD_DIM 1024
#define CACHE_SPEC_MAX_KV_HEADS 1024

typedef enum cache_kv_type {
    CACHE_KV_F16 = 0,
    CACHE_KV_Q8_0 = 1,
} cache_kv_type;

typedef enum cache_attn_kind {
    CACHE_ATTN_GLOBAL = 0,
    CACHE_ATTN_SLIDING = 1,
} cache_attn_kind;

typedef struct cache_layer {
    cache_attn_kind kind;
    uint32_t window; /* tokens a query sees (itself included); 0 for global */
} cache_layer;

typedef struct cache_spec {
    uint32_t n_layers;
    uint32_t n_kv_heads;
    uint32_t k_head_dim;
    uint32_t v_head_dim;
    uint32_t block_tokens; /* power of two, 16 .. 1024 */
    cache_kv_type kv_type;
    cache_layer layers[CACHE_SPEC_MAX_LAYERS];
} cache_spec;

/* Checks every field; the detail names the first bad field and its value. */
sem_status cache_spec_validate(const cache_spec *spec, sem_err *err);

/* "f16" / "q8_0"; parse returns SEM_EINVAL for anything else. */
const char *cache_kv_type_name(cache_kv_type t);
sem_status cache_kv_type_parse(const char *name, cache_kv_type *out, sem_err *err);

/* Bytes of one row of `dim` elements (one token, one head). */
size_t cache_spec_row_bytes(cache_kv_type t, uint32_t dim);

/* Bytes of the K part, the V part and the whole of one block of one layer. */
size_t cache_spec_block_k_bytes(const cache_spec *spec);
size_t cache_spec_block_v_bytes(const cache_spec *spec);
size_t cache_spec_block_bytes(const cache_spec *spec);

/* Byte offset inside a block of the K (or V) row of `head` at `slot`. */
size_t cache_spec_k_offset(const cache_spec *spec, uint32_t head, uint32_t slot);
size_t cache_spec_v_offset(const cache_spec *spec, uint32_t head, uint32_t slot);

/* Tokens a layer must keep for a sequence of n_tokens (n_tokens if global). */
uint64_t cache_spec_kept_tokens(const cache_spec *spec, uint32_t layer, uint64_t n_tokens);

/* Index of the first block a layer must keep for a sequence of n_tokens. */
uint64_t cache_spec_first_block(const cache_spec *spec, uint32_t layer, uint64_t n_tokens);

/* Blocks a layer holds for a sequence of n_tokens (window-bounded if sliding). */
uint64_t cache_spec_blocks_for(const cache_spec *spec, uint32_t layer, uint64_t n_tokens);

/* Sum of cache_spec_blocks_for over all layers. */
uint64_t cache_spec_total_blocks_for(const cache_spec *spec, uint64_t n_tokens);

/* The most blocks any sequence can hold on a layer, over all lengths up to n_tokens. */
uint64_t cache_spec_max_blocks_for(const cache_spec *spec, uint32_t layer, uint64_t n_tokens);

/*
 * The most blocks a sequence growing to n_tokens can hold at once, over all
 * layers, when tokens arrive `chunk` at a time: a sliding layer holds its
 * window plus the chunk being evaluated until the window is released.
 */
uint64_t cache_spec_peak_blocks(const cache_spec *spec, uint64_t n_tokens, uint32_t chunk);

#endif
