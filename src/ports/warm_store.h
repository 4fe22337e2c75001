/*
 * warm_store.h - the warm tier of agent memory: one file per agent on
 * disk, with an index, as the engine sees it.
 *
 * Tiers. A warm store may be a composition: the local disk, and under it a
 * remote tier shared by several servers. load() and get() then answer from
 * the nearest tier that has the agent (a remote copy is verified and kept
 * locally before it is served), save() writes locally and then, behind it,
 * to the remote tier; list() and disk_bytes() are the local disk's.
 *
 * A file holds an agent's token sequence and the KV of every layer's kept
 * tokens (all of them on global layers, the last window on sliding ones),
 * with the model's fingerprint, the KV geometry and a checksum per chunk.
 * A file that fails any check is never served: the store moves it to a
 * quarantine folder and reports SEM_ECORRUPT or SEM_EINCOMPAT, and the
 * caller treats it as a miss. A file of a newer format (a later release's)
 * is a miss too (SEM_EINCOMPAT), but it is kept where it is.
 *
 * Keys are agent keys: 1..WARM_KEY_MAX characters of [A-Za-z0-9_.-], no
 * leading dot (they become file names).
 *
 * Threads: every operation may be called from any thread; the store
 * serializes what must be. save() and load() do disk I/O and may take
 * long: call them from an I/O thread, never from the engine thread.
 */
#ifndef SEM_WARM_STORE_H
#define SEM_WARM_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/block_pool.h"
#include "domain/block_table.h"
#include "domain/status.h"

#define WARM_KEY_MAX 160

typedef struct warm_info {
    char key[WARM_KEY_MAX + 1];
    uint32_t tokens;        /* sequence length in the file */
    uint64_t bytes;         /* file size */
    int64_t created_ms;     /* unix time of the first save */
    int64_t last_use_ms;    /* unix time of the last save or load */
    uint64_t hits;          /* requests that reused the agent's memory (touch()) */
    uint64_t tokens_saved;  /* prompt tokens not recomputed thanks to this agent's memory */
    int remote;             /* held only by a remote tier (not on this node's disk yet) */
} warm_info;

typedef struct warm_store_ops {
    /*
     * Writes table t as key's file, replacing any older one atomically
     * (temp file, fsync, rename, directory fsync), then updates the index
     * and enforces the disk budget. Only reads the table and its blocks;
     * the caller keeps them unchanged until save returns. On failure
     * (disk full...) the old file, if any, is untouched.
     *
     * stop (may be NULL) is polled while the file is written and before
     * its fsync: once it is nonzero the save gives up with SEM_ECANCELLED,
     * removes its temp file and leaves the old file as it was, so a caller
     * that needs the table back does not wait for the whole write.
     */
    sem_status (*save)(void *self, const char *key, const block_table *t, const atomic_int *stop,
                       sem_err *err);
    /*
     * Reads key's file into a new table whose blocks come from pool (its
     * owner named after the key). SEM_ENOTFOUND without a file; SEM_EPOOL
     * (nothing kept) when the pool has no room; SEM_ECORRUPT /
     * SEM_EINCOMPAT after quarantining a bad file (SEM_EINCOMPAT without
     * quarantine for a newer format's file). Sets the last use; hits
     * are counted by touch(), which the engine calls for every reuse.
     */
    sem_status (*load)(void *self, const char *key, block_pool *pool, block_table **out,
                       sem_err *err);
    /*
     * Shared prefixes on disk. Every agent saved in namespace ns (the part
     * of its key before the first '.', "" for a key without one) stores
     * the whole chunks of its sequence once per content: a chunk is named
     * by the hash of its tokens and of every token before it (and the
     * model, geometry and payload), so agents that start alike share the
     * chunks of their common start on disk, never across namespaces.
     *
     * load_prefix reads into a new table from pool (its owner named
     * `name`) the longest run of such chunks, from the first, that spells
     * a prefix of tokens[0..n). The table's length (block_table_n_tokens) is a multiple
     * of the store's chunk. SEM_ENOTFOUND when not even the first chunk
     * is stored, or when the model has sliding-window layers (their
     * windows are each agent's own); SEM_EPOOL, SEM_ECORRUPT as load().
     */
    sem_status (*load_prefix)(void *self, const char *ns, const int32_t *tokens, uint32_t n,
                              block_pool *pool, const char *name, block_table **out,
                              sem_err *err);
    /* The token sequence of key's file (header only), malloc'd. */
    sem_status (*peek)(void *self, const char *key, int32_t **tokens, uint32_t *n, sem_err *err);
    /* Deletes key's file and index entry; SEM_ENOTFOUND if neither exists. */
    sem_status (*remove)(void *self, const char *key, sem_err *err);
    /* Index entries whose key starts with prefix ("" = all), least recently
     * used first; *out malloc'd. */
    sem_status (*list)(void *self, const char *prefix, warm_info **out, size_t *n, sem_err *err);
    sem_status (*get)(void *self, const char *key, warm_info *out, sem_err *err);
    /* Records a use served from memory: hits + 1, tokens_saved + saved, last use now. */
    sem_status (*touch)(void *self, const char *key, uint32_t saved, sem_err *err);
    /* Bytes of every file the disk budget counts (all agents' files, each
     * shared chunk once, and the files no agent can use: quarantined,
     * newer format, unreadable). */
    uint64_t (*disk_bytes)(void *self);
} warm_store_ops;

typedef struct warm_store {
    const warm_store_ops *ops;
    void *self;
} warm_store;

#endif
