/*
 * block_table.h - one sequence's KV blocks and the tokens they hold.
 *
 * An agent (or an anonymous sequence) owns one block table. For each layer
 * it lists the pool blocks that hold that layer's K/V, in token order: the
 * block at logical index i holds tokens [i * bt, (i + 1) * bt), bt being the
 * spec's block_tokens. A global layer holds logical blocks 0 .. end-1. A
 * sliding-window layer may have released its oldest blocks: it holds
 * logical blocks first .. end-1, where first never exceeds the first block
 * its window needs (cache_spec_first_block).
 *
 * The table also keeps the token ids, so prefix reuse compares tokens, and
 * the K/V of token p on layer l is found by block_table_block_for(t, l, p).
 *
 * Blocks may be shared between tables (a fork, a common prefix): a shared
 * block is never written; append copies the one shared block it would
 * write into first (copy on write), so tables that share diverge without
 * affecting each other.
 *
 * Every mutator leaves the table valid or unchanged: append is
 * all-or-nothing, truncate refuses a length whose window was released, and
 * in builds without NDEBUG the invariants are checked after each one.
 *
 * Threads. A table is owned by one thread at a time (the engine thread);
 * it is not locked. It calls the thread-safe block pool.
 */
#ifndef SEM_BLOCK_TABLE_H
#define SEM_BLOCK_TABLE_H

#include <stdint.h>

#include "block_pool.h"
#include "status.h"

typedef struct block_table block_table;

/* Creates an empty table registered as an owner of `pool` under `name`. */
block_table *block_table_create(block_pool *pool, const char *name, sem_err *err);
/* Frees all blocks, unregisters the owner and frees the table. */
void block_table_destroy(block_table *t);

/*
 * Appends n >= 1 tokens, allocating on every layer the blocks that the new
 * tokens fall into, and a copy of the last block where the sequence ends
 * inside a shared one (block_table_cow_blocks). The K/V of the new tokens
 * is the caller's to write. SEM_EPOOL (nothing changed) when the pool has
 * too few free blocks.
 */
sem_status block_table_append(block_table *t, const int32_t *tokens, uint32_t n, sem_err *err);

/*
 * Fills an empty table with n >= 1 tokens, allocating on each layer only
 * the blocks a sequence of n tokens keeps (the window on sliding layers),
 * as when restoring a saved sequence. All-or-nothing like append. The K/V
 * of the kept tokens is the caller's to write.
 */
sem_status block_table_restore(block_table *t, const int32_t *tokens, uint32_t n, sem_err *err);

/*
 * Fills an empty table with the first n >= 1 tokens of src (same pool),
 * sharing src's blocks instead of copying them: on each layer the blocks
 * a sequence of n tokens keeps. No block is allocated. SEM_EINVAL when n
 * exceeds src, or src's sliding windows no longer hold what n needs
 * (block_table_reusable); SEM_EPOOL when a block has too many holders.
 */
sem_status block_table_share(block_table *t, const block_table *src, uint32_t n, sem_err *err);

/* Blocks the next append must copy before writing: layers whose sequence
 * ends inside a shared block (at most one per layer). */
uint32_t block_table_cow_blocks(const block_table *t);

/* Tokens whose blocks are shared with another holder (counted on the first
 * global layer, which holds every block of the sequence). */
uint32_t block_table_shared_tokens(const block_table *t);

/*
 * Keeps only the first n tokens and frees whole blocks past them.
 * n == 0 drops everything. SEM_EINVAL when n > length, or when a
 * sliding-window layer no longer holds the window that n would need
 * (see block_table_reusable).
 */
sem_status block_table_truncate(block_table *t, uint32_t n, sem_err *err);

/* Drops every token and block. */
void block_table_clear(block_table *t);

/*
 * Frees the blocks of sliding-window layers that no future query can see
 * (those before cache_spec_first_block for the current length). Call it
 * after the tokens' K/V has been used by the forward pass.
 */
sem_status block_table_release_window(block_table *t, sem_err *err);

/* The longest prefix <= n that truncate accepts (0 when none but empty). */
uint32_t block_table_reusable(const block_table *t, uint32_t n);

uint32_t block_table_n_tokens(const block_table *t);
const int32_t *block_table_tokens(const block_table *t);
block_pool *block_table_pool(const block_table *t);
block_owner block_table_owner(const block_table *t);

/* Logical index of the first block held on `layer`, and how many are held. */
uint32_t block_table_first_block(const block_table *t, uint32_t layer);
uint32_t block_table_n_blocks(const block_table *t, uint32_t layer);
/* Pool indices of the held blocks of `layer`, [block_table_n_blocks]. */
const uint32_t *block_table_blocks(const block_table *t, uint32_t layer);
/* Total blocks held over all layers. */
uint32_t block_table_total_blocks(const block_table *t);

/* Pool index of the block holding token `pos` on `layer`; UINT32_MAX if not held. */
uint32_t block_table_block_for(const block_table *t, uint32_t layer, uint32_t pos);

/* Checks every invariant against the table and the pool. */
sem_status block_table_check(const block_table *t, sem_err *err);

#endif
