/*
 * block_pool.h - the arena that stores every KV block.
 *
 * One contiguous allocation, sized from a byte budget, is cut into blocks
 * of cache_spec_block_bytes() bytes: one layer's K and V for block_tokens
 * tokens. Blocks are named by a uint32_t index; block_pool_data() turns an
 * index into a pointer that stays valid until the pool is destroyed.
 *
 * Owners. Every allocated block belongs to an owner (an agent's block table,
 * a sequence, a loader). Owners are registered and get an opaque handle that
 * carries a generation, so a stale handle is refused instead of aliasing a
 * newer owner. The pool accounts blocks and bytes per owner.
 *
 * Sharing. A block may be held by several owners at once (sequences with a
 * common prefix, a fork, a pinned prefix): share() adds a holder, and the
 * block returns to the free stack when its last holder frees it. Each
 * holder counts the block in its usage; the pool's used count counts it
 * once. Shared blocks are read-only by convention: a holder that must
 * write into one copies it first (block_table does, copy on write). A
 * block that has never been shared is checked against its one owner; once
 * shared, the pool counts its holders but no longer names them
 * (block_pool.c draws the states).
 *
 * Guarantees.
 *  - alloc(n) is all-or-nothing: on failure the pool is exactly as before,
 *    and the detail says how many blocks were asked, free and total.
 *  - free() checks every block (in range, allocated, owned by the caller,
 *    not listed twice) before changing anything; freed blocks are reusable
 *    at once.
 *  - used + free == total at every moment, and the owners' references add
 *    up to the blocks' reference counts; every operation is O(1) per
 *    block (a free stack, an owner array, reference counts).
 *
 * Threads. Every function may be called from any thread. One mutex, `lock`,
 * guards the bookkeeping (free stack, owner array, owner table) and is held
 * only for it; block data is never touched under the lock. Writing or
 * reading a block's bytes is the business of its owner.
 */
#ifndef SEM_BLOCK_POOL_H
#define SEM_BLOCK_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "cache_spec.h"
#include "status.h"

typedef struct block_pool block_pool;

/* Owner handle; 0 is never a valid owner. */
typedef uint32_t block_owner;
#define BLOCK_OWNER_NONE 0u
/* block_pool_owner_of() of a block that has (had) several holders. */
#define BLOCK_OWNER_SHARED 0xFFFFFFFFu

/* Per-owner accounting. */
typedef struct block_pool_usage {
    uint32_t blocks;   /* blocks held, shared ones included */
    size_t bytes;
} block_pool_usage;

/*
 * Creates a pool of floor(budget_bytes / block_bytes) blocks for `spec`
 * (copied). Fails with SEM_EINVAL when the spec is invalid or the budget
 * holds no block, SEM_ENOMEM when the arena cannot be allocated.
 * The caller owns the pool.
 */
block_pool *block_pool_create(const cache_spec *spec, size_t budget_bytes, sem_err *err);
void block_pool_destroy(block_pool *pool);

/* Registers a new owner; `name` (may be NULL) is copied and used in messages. */
sem_status block_pool_owner_add(block_pool *pool, const char *name, block_owner *out, sem_err *err);
/* Unregisters an owner that holds no block (SEM_EINVAL if it still does). */
sem_status block_pool_owner_remove(block_pool *pool, block_owner owner, sem_err *err);

/*
 * Takes n blocks for owner and writes their indices to out[0..n-1].
 * n must be >= 1. SEM_EPOOL when fewer than n are free (nothing changes).
 */
sem_status block_pool_alloc(block_pool *pool, uint32_t n, block_owner owner, uint32_t *out,
                            sem_err *err);

/* Returns n blocks held by owner: each loses a holder and is free once it
 * has none. SEM_EINVAL on any bad block (nothing changes). */
sem_status block_pool_free(block_pool *pool, uint32_t n, const uint32_t *blocks,
                           block_owner owner, sem_err *err);

/* Moves n blocks from one owner to another (all-or-nothing, checked as free()). */
sem_status block_pool_transfer(block_pool *pool, uint32_t n, const uint32_t *blocks,
                               block_owner from, block_owner to, sem_err *err);

/*
 * Adds owner as a holder of n held blocks (all-or-nothing): refused for a
 * free block, a block listed twice, a block the owner is known to hold
 * already; SEM_EPOOL for a block at its holder limit (65535).
 */
sem_status block_pool_share(block_pool *pool, uint32_t n, const uint32_t *blocks,
                            block_owner owner, sem_err *err);

/* Holders of a block (0: free or out of range). */
uint32_t block_pool_refs(block_pool *pool, uint32_t block);
/* Blocks with more than one holder. */
uint32_t block_pool_shared_count(block_pool *pool);

/* Start of a block's bytes. The index must be < total; no lock is taken. */
uint8_t *block_pool_data(const block_pool *pool, uint32_t block);

const cache_spec *block_pool_spec(const block_pool *pool);
size_t block_pool_block_bytes(const block_pool *pool);
uint32_t block_pool_total(const block_pool *pool);
uint32_t block_pool_used(block_pool *pool);
uint32_t block_pool_free_count(block_pool *pool);

/* Owner of a block, BLOCK_OWNER_NONE if the block is free or out of range,
 * BLOCK_OWNER_SHARED once it has been shared. */
block_owner block_pool_owner_of(block_pool *pool, uint32_t block);

/* Usage of one owner; SEM_ENOTFOUND for an unknown or stale handle. */
sem_status block_pool_usage_of(block_pool *pool, block_owner owner, block_pool_usage *out,
                               sem_err *err);

/* Number of registered owners. */
uint32_t block_pool_owner_count(block_pool *pool);

/*
 * Full consistency check (O(total + owners)): free stack, owner array and
 * reference counts agree, per-owner counts sum to the references,
 * used + free == total.
 */
sem_status block_pool_check(block_pool *pool, sem_err *err);

#endif
