/*
 * block_table.c - per-layer block lists and the token sequence.
 *
 * Layer l holds logical blocks [first, first + n) in blocks[0..n). Growth
 * (capacity) is reserved before any pool allocation, so a failed append
 * has nothing to undo but what it never did.
 *
 * Copy on write. Blocks may be shared with other tables (block_table_share).
 * Only append writes K/V, and only into the blocks its new tokens fall in:
 * new blocks, and the last held block when the sequence ends inside it. If
 * that last block is shared, append copies it into a block of its own in
 * the same pool allocation as the new blocks, and lets go of the shared
 * one. Truncating into a shared block copies nothing; the next append does.
 */
#include "block_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer_blocks {
    uint32_t *blocks; /* [cap] pool indices, n in use */
    uint32_t n, cap;
    uint32_t first; /* logical index of blocks[0] */
} layer_blocks;

struct block_table {
    block_pool *pool; /* not owned */
    const cache_spec *spec;
    block_owner owner;
    int32_t *tokens; /* [cap_tokens], n_tokens in use */
    uint32_t n_tokens, cap_tokens;
    uint32_t *scratch; /* [cap_scratch] blocks from one pool allocation */
    uint32_t cap_scratch;
    uint8_t *copy;     /* [n_layers] append's "copy this layer's last block" */
    layer_blocks layers[]; /* [spec->n_layers] */
};

#ifdef NDEBUG
#define CHECKED(t) ((void)0)
#else
/* Debug builds verify the invariants after every mutator. */
#define CHECKED(t)                                                                 \
    do {                                                                           \
        sem_err check_err_ = {0};                                                  \
        if (block_table_check((t), &check_err_) != SEM_OK) {                       \
            fprintf(stderr, "block_table invariant: %s\n", check_err_.detail);     \
            abort();                                                               \
        }                                                                          \
    } while (0)
#endif

static uint32_t end_block(const block_table *t, uint64_t n_tokens)
{
    return (uint32_t)((n_tokens + t->spec->block_tokens - 1) / t->spec->block_tokens);
}

/* Capacity for `need` elements: doubling from cap; 0 when it cannot fit. */
static uint32_t grown_cap(uint32_t cap, uint64_t need)
{
    if (need > UINT32_MAX)
        return 0;
    uint64_t c = cap ? cap : 4;
    while (c < need)
        c *= 2;
    return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

static int grow_u32(uint32_t **arr, uint32_t *cap, uint64_t need)
{
    if (need <= *cap)
        return 1;
    uint32_t c = grown_cap(*cap, need);
    uint32_t *p = c ? realloc(*arr, (size_t)c * sizeof *p) : NULL;
    if (!p)
        return 0;
    *arr = p;
    *cap = c;
    return 1;
}

static int grow_i32(int32_t **arr, uint32_t *cap, uint64_t need)
{
    if (need <= *cap)
        return 1;
    uint32_t c = grown_cap(*cap, need);
    int32_t *p = c ? realloc(*arr, (size_t)c * sizeof *p) : NULL;
    if (!p)
        return 0;
    *arr = p;
    *cap = c;
    return 1;
}

block_table *block_table_create(block_pool *pool, const char *name, sem_err *err)
{
    if (!pool) {
        sem_err_set(err, SEM_EINVAL, "block_table_create: NULL pool");
        return NULL;
    }
    const cache_spec *spec = block_pool_spec(pool);
    block_table *t = calloc(1, sizeof *t + spec->n_layers * sizeof t->layers[0]);
    if (!t) {
        sem_err_set(err, SEM_ENOMEM, "block table: out of memory");
        return NULL;
    }
    t->pool = pool;
    t->spec = spec;
    if (block_pool_owner_add(pool, name, &t->owner, err) != SEM_OK) {
        free(t);
        return NULL;
    }
    return t;
}

/* Frees layer blocks from logical index `keep_end` on. */
static sem_status free_tail(block_table *t, uint32_t layer, uint32_t keep_end, sem_err *err)
{
    layer_blocks *lb = &t->layers[layer];
    uint32_t held_end = lb->first + lb->n;
    if (keep_end >= held_end)
        return SEM_OK;
    uint32_t keep = keep_end > lb->first ? keep_end - lb->first : 0;
    uint32_t drop = lb->n - keep;
    sem_status st = block_pool_free(t->pool, drop, lb->blocks + keep, t->owner, err);
    if (st != SEM_OK)
        return sem_err_set(err, SEM_EINTERNAL, "block table: layer %u: %s", layer,
                           sem_err_text(err));
    lb->n = keep;
    if (keep == 0)
        lb->first = 0;
    return SEM_OK;
}

void block_table_clear(block_table *t)
{
    if (!t)
        return;
    for (uint32_t l = 0; l < t->spec->n_layers; l++)
        free_tail(t, l, 0, NULL);
    t->n_tokens = 0;
    CHECKED(t);
}

void block_table_destroy(block_table *t)
{
    if (!t)
        return;
    block_table_clear(t);
    block_pool_owner_remove(t->pool, t->owner, NULL);
    for (uint32_t l = 0; l < t->spec->n_layers; l++)
        free(t->layers[l].blocks);
    free(t->tokens);
    free(t->scratch);
    free(t->copy);
    free(t);
}

/* Whether layer lb's last held block is shared and the sequence ends
 * inside it: the next append must copy it before writing. */
static int needs_copy(const block_table *t, const layer_blocks *lb)
{
    return lb->n > 0 && t->n_tokens % t->spec->block_tokens != 0 &&
           block_pool_refs(t->pool, lb->blocks[lb->n - 1]) > 1;
}

uint32_t block_table_cow_blocks(const block_table *t)
{
    uint32_t n = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++)
        n += needs_copy(t, &t->layers[l]);
    return n;
}

/* Replaces the shared last block of every layer marked in copy[] by
 * fresh[k...] holding the same bytes; the shared ones are let go. */
static sem_status copy_shared_tails(block_table *t, const uint8_t *copy, const uint32_t *fresh,
                                    uint32_t *old, sem_err *err)
{
    size_t bytes = block_pool_block_bytes(t->pool);
    uint32_t k = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        if (!copy[l])
            continue;
        layer_blocks *lb = &t->layers[l];
        uint32_t *last = &lb->blocks[lb->n - 1];
        memcpy(block_pool_data(t->pool, fresh[k]), block_pool_data(t->pool, *last), bytes);
        old[k] = *last;
        *last = fresh[k++];
    }
    if (k == 0)
        return SEM_OK;
    sem_status st = block_pool_free(t->pool, k, old, t->owner, err);
    if (st != SEM_OK)
        return sem_err_set(err, SEM_EINTERNAL, "block table: copy on write: %s",
                           sem_err_text(err));
    return SEM_OK;
}

sem_status block_table_append(block_table *t, const int32_t *tokens, uint32_t n, sem_err *err)
{
    if (!t || !tokens)
        return sem_err_set(err, SEM_EINVAL, "block_table_append: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block table: append of 0 tokens");
    uint64_t new_len = (uint64_t)t->n_tokens + n;
    if (new_len > UINT32_MAX - t->spec->block_tokens)
        return sem_err_set(err, SEM_EINVAL, "block table: length %llu overflows",
                           (unsigned long long)new_len);
    uint32_t new_end = end_block(t, new_len);
    if (!t->copy) {
        t->copy = calloc(t->spec->n_layers, 1);
        if (!t->copy)
            return sem_err_set(err, SEM_ENOMEM, "block table: out of memory");
    }

    /* Reserve every array first: after this point only the pool can fail. */
    uint64_t need = 0, copies = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        layer_blocks *lb = &t->layers[l];
        uint32_t held_end = lb->n ? lb->first + lb->n : end_block(t, t->n_tokens);
        uint32_t base = lb->n ? lb->first : held_end;
        if (!grow_u32(&lb->blocks, &lb->cap, new_end - base))
            return sem_err_set(err, SEM_ENOMEM, "block table: out of memory");
        need += new_end - held_end;
        t->copy[l] = (uint8_t)needs_copy(t, lb);
        copies += t->copy[l];
    }
    if (!grow_i32(&t->tokens, &t->cap_tokens, new_len) ||
        !grow_u32(&t->scratch, &t->cap_scratch, need + 2 * copies))
        return sem_err_set(err, SEM_ENOMEM, "block table: out of memory");

    if (need + copies > 0) {
        sem_status st = block_pool_alloc(t->pool, (uint32_t)(need + copies), t->owner,
                                         t->scratch, err);
        if (st != SEM_OK)
            return st;
    }
    /* scratch: [copies fresh blocks][need new blocks][copies old blocks] */
    sem_status st = copy_shared_tails(t, t->copy, t->scratch, t->scratch + need + copies, err);
    if (st != SEM_OK)
        return st;
    uint32_t k = (uint32_t)copies;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        layer_blocks *lb = &t->layers[l];
        if (lb->n == 0)
            lb->first = end_block(t, t->n_tokens);
        while (lb->first + lb->n < new_end)
            lb->blocks[lb->n++] = t->scratch[k++];
    }
    memcpy(t->tokens + t->n_tokens, tokens, (size_t)n * sizeof *tokens);
    t->n_tokens = (uint32_t)new_len;
    CHECKED(t);
    return SEM_OK;
}

/* Reserves the arrays an empty table needs to hold the kept blocks of n
 * tokens; *need receives how many blocks that is. */
static sem_status reserve_kept(block_table *t, uint32_t n, uint64_t *need, sem_err *err)
{
    *need = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        uint64_t k = cache_spec_blocks_for(t->spec, l, n);
        if (!grow_u32(&t->layers[l].blocks, &t->layers[l].cap, k))
            return sem_err_set(err, SEM_ENOMEM, "block table: out of memory");
        *need += k;
    }
    if (!grow_i32(&t->tokens, &t->cap_tokens, n) || !grow_u32(&t->scratch, &t->cap_scratch, *need))
        return sem_err_set(err, SEM_ENOMEM, "block table: out of memory");
    return SEM_OK;
}

/* Gives an empty table the kept blocks of n tokens, layer after layer from
 * scratch, and the tokens. */
static void place_kept(block_table *t, const int32_t *tokens, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        layer_blocks *lb = &t->layers[l];
        lb->first = (uint32_t)cache_spec_first_block(t->spec, l, n);
        lb->n = (uint32_t)cache_spec_blocks_for(t->spec, l, n);
        memcpy(lb->blocks, t->scratch + k, lb->n * sizeof *lb->blocks);
        k += lb->n;
    }
    memcpy(t->tokens, tokens, (size_t)n * sizeof *tokens);
    t->n_tokens = n;
}

sem_status block_table_share(block_table *t, const block_table *src, uint32_t n, sem_err *err)
{
    if (!t || !src)
        return sem_err_set(err, SEM_EINVAL, "block_table_share: NULL argument");
    if (t->pool != src->pool)
        return sem_err_set(err, SEM_EINVAL, "block table: share across pools");
    if (t->n_tokens != 0)
        return sem_err_set(err, SEM_EINVAL, "block table: share into a table of %u tokens",
                           t->n_tokens);
    if (n == 0 || n > src->n_tokens)
        return sem_err_set(err, SEM_EINVAL, "block table: share of %u tokens from a table of %u",
                           n, src->n_tokens);
    if (block_table_reusable(src, n) != n)
        return sem_err_set(err, SEM_EINVAL, "block table: cannot share %u tokens: a "
                           "sliding-window layer released part of that window", n);
    uint64_t need;
    sem_status st = reserve_kept(t, n, &need, err);
    if (st != SEM_OK)
        return st;
    uint32_t k = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        uint32_t first = (uint32_t)cache_spec_first_block(t->spec, l, n);
        uint32_t count = (uint32_t)cache_spec_blocks_for(t->spec, l, n);
        const layer_blocks *from = &src->layers[l];
        memcpy(t->scratch + k, from->blocks + (first - from->first), count * sizeof(uint32_t));
        k += count;
    }
    st = block_pool_share(t->pool, k, t->scratch, t->owner, err);
    if (st != SEM_OK)
        return st;
    place_kept(t, src->tokens, n);
    CHECKED(t);
    return SEM_OK;
}

sem_status block_table_restore(block_table *t, const int32_t *tokens, uint32_t n, sem_err *err)
{
    if (!t || !tokens)
        return sem_err_set(err, SEM_EINVAL, "block_table_restore: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block table: restore of 0 tokens");
    if (t->n_tokens != 0)
        return sem_err_set(err, SEM_EINVAL, "block table: restore into a table of %u tokens",
                           t->n_tokens);
    if (n > UINT32_MAX - t->spec->block_tokens)
        return sem_err_set(err, SEM_EINVAL, "block table: length %u overflows", n);
    uint64_t need;
    sem_status st = reserve_kept(t, n, &need, err);
    if (st == SEM_OK)
        st = block_pool_alloc(t->pool, (uint32_t)need, t->owner, t->scratch, err);
    if (st != SEM_OK)
        return st;
    place_kept(t, tokens, n);
    CHECKED(t);
    return SEM_OK;
}

uint32_t block_table_reusable(const block_table *t, uint32_t n)
{
    if (n > t->n_tokens)
        n = t->n_tokens;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        const cache_layer *ly = &t->spec->layers[l];
        const layer_blocks *lb = &t->layers[l];
        if (ly->kind != CACHE_ATTN_SLIDING || lb->first == 0)
            continue;
        /* The window of a length-n sequence starts at n - W; it must be held. */
        uint64_t need = (uint64_t)lb->first * t->spec->block_tokens + ly->window;
        if (n < need)
            return 0;
    }
    return n;
}

sem_status block_table_truncate(block_table *t, uint32_t n, sem_err *err)
{
    if (!t)
        return sem_err_set(err, SEM_EINVAL, "block_table_truncate: NULL table");
    if (n > t->n_tokens)
        return sem_err_set(err, SEM_EINVAL, "block table: cannot truncate %u tokens to %u",
                           t->n_tokens, n);
    if (n > 0 && block_table_reusable(t, n) != n)
        return sem_err_set(err, SEM_EINVAL,
                           "block table: cannot truncate to %u tokens: a sliding-window layer "
                           "released part of that window (longest valid prefix is 0)",
                           n);
    uint32_t keep_end = end_block(t, n);
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        sem_status st = free_tail(t, l, keep_end, err);
        if (st != SEM_OK)
            return st;
    }
    t->n_tokens = n;
    CHECKED(t);
    return SEM_OK;
}

sem_status block_table_release_window(block_table *t, sem_err *err)
{
    if (!t)
        return sem_err_set(err, SEM_EINVAL, "block_table_release_window: NULL table");
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        if (t->spec->layers[l].kind != CACHE_ATTN_SLIDING)
            continue;
        layer_blocks *lb = &t->layers[l];
        uint32_t want_first = (uint32_t)cache_spec_first_block(t->spec, l, t->n_tokens);
        if (lb->n == 0 || want_first <= lb->first)
            continue;
        uint32_t drop = want_first - lb->first;
        sem_status st = block_pool_free(t->pool, drop, lb->blocks, t->owner, err);
        if (st != SEM_OK)
            return sem_err_set(err, SEM_EINTERNAL, "block table: layer %u: %s", l,
                               sem_err_text(err));
        memmove(lb->blocks, lb->blocks + drop, (size_t)(lb->n - drop) * sizeof *lb->blocks);
        lb->n -= drop;
        lb->first = want_first;
    }
    CHECKED(t);
    return SEM_OK;
}

uint32_t block_table_n_tokens(const block_table *t) { return t->n_tokens; }
const int32_t *block_table_tokens(const block_table *t) { return t->tokens; }
block_pool *block_table_pool(const block_table *t) { return t->pool; }
block_owner block_table_owner(const block_table *t) { return t->owner; }
uint32_t block_table_first_block(const block_table *t, uint32_t layer)
{
    return t->layers[layer].first;
}
uint32_t block_table_n_blocks(const block_table *t, uint32_t layer) { return t->layers[layer].n; }
const uint32_t *block_table_blocks(const block_table *t, uint32_t layer)
{
    return t->layers[layer].blocks;
}

uint32_t block_table_total_blocks(const block_table *t)
{
    uint32_t n = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++)
        n += t->layers[l].n;
    return n;
}

uint32_t block_table_shared_tokens(const block_table *t)
{
    uint32_t ref = 0; /* the first global layer holds every block */
    while (ref + 1 < t->spec->n_layers && t->spec->layers[ref].kind != CACHE_ATTN_GLOBAL)
        ref++;
    const layer_blocks *lb = &t->layers[ref];
    uint32_t bt = t->spec->block_tokens, shared = 0;
    for (uint32_t i = 0; i < lb->n; i++) {
        if (block_pool_refs(t->pool, lb->blocks[i]) < 2)
            continue;
        uint32_t start = (lb->first + i) * bt;
        uint32_t end = start + bt < t->n_tokens ? start + bt : t->n_tokens;
        shared += end - start;
    }
    return shared;
}

uint32_t block_table_block_for(const block_table *t, uint32_t layer, uint32_t pos)
{
    const layer_blocks *lb = &t->layers[layer];
    uint32_t i = pos / t->spec->block_tokens;
    if (pos >= t->n_tokens || i < lb->first || i - lb->first >= lb->n)
        return UINT32_MAX;
    return lb->blocks[i - lb->first];
}

sem_status block_table_check(const block_table *t, sem_err *err)
{
    uint32_t end = end_block(t, t->n_tokens);
    uint64_t held = 0;
    for (uint32_t l = 0; l < t->spec->n_layers; l++) {
        const layer_blocks *lb = &t->layers[l];
        uint32_t need_first = (uint32_t)cache_spec_first_block(t->spec, l, t->n_tokens);
        if (t->n_tokens == 0) {
            if (lb->n != 0)
                return sem_err_set(err, SEM_EINTERNAL, "block table: layer %u holds %u blocks "
                                   "for an empty sequence", l, lb->n);
            continue;
        }
        if (lb->first + lb->n != end)
            return sem_err_set(err, SEM_EINTERNAL,
                               "block table: layer %u holds blocks %u..%u, sequence ends in %u", l,
                               lb->first, lb->first + lb->n, end);
        if (lb->first > need_first)
            return sem_err_set(err, SEM_EINTERNAL,
                               "block table: layer %u starts at block %u, window needs %u", l,
                               lb->first, need_first);
        if (t->spec->layers[l].kind == CACHE_ATTN_GLOBAL && lb->first != 0)
            return sem_err_set(err, SEM_EINTERNAL, "block table: global layer %u starts at %u",
                               l, lb->first);
        for (uint32_t i = 0; i < lb->n; i++) {
            block_owner o = block_pool_owner_of(t->pool, lb->blocks[i]);
            if (o == t->owner || (o == BLOCK_OWNER_SHARED && block_pool_refs(t->pool, lb->blocks[i])))
                continue;
            return sem_err_set(err, SEM_EINTERNAL,
                                   "block table: layer %u block %u (pool %u) is not owned", l,
                                   lb->first + i, lb->blocks[i]);
        }
        held += lb->n;
    }
    block_pool_usage u;
    if (block_pool_usage_of(t->pool, t->owner, &u, err) != SEM_OK)
        return SEM_EINTERNAL;
    if (u.blocks != held)
        return sem_err_set(err, SEM_EINTERNAL,
                           "block table: holds %llu blocks, pool accounts %u to it",
                           (unsigned long long)held, u.blocks);
    return SEM_OK;
}
