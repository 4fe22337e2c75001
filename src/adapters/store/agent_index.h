/*
 * agent_index.h - the SQLite index of agent files in a warm-store folder.
 *
 * One row per agent key: the file that holds it, what the file holds
 * (tokens, bytes, model fingerprint, payload type) and how it was used
 * (created, last use, hits, prompt tokens saved). The files are the truth;
 * the index is what lets the store list agents, order them least recently
 * used first for eviction and keep usage counters across restarts without
 * opening every file. disk_store reconciles the two at open.
 *
 * The database is one SQLite file in WAL mode (readers never block the
 * writer; a crash loses at most the last transactions, never consistency)
 * with synchronous=NORMAL: what a power cut could lose, the store's
 * reconcile rebuilds from the files' headers.
 *
 *   CREATE TABLE agents(key TEXT PRIMARY KEY, file TEXT, tokens INTEGER,
 *       bytes INTEGER, fingerprint INTEGER, payload TEXT, created_ms INTEGER,
 *       last_use_ms INTEGER, hits INTEGER, tokens_saved INTEGER)
 *   CREATE INDEX agents_lru ON agents(fingerprint, last_use_ms)
 *
 * fingerprint is the uint64 stored as the int64 with the same bits.
 *
 * Threads: any thread may call any function. One mutex, `db_lock`, guards
 * the connection and its statements (all prepared once at open); it is
 * held for the SQLite calls of one function and nothing else. Returned
 * arrays belong to the caller (free()).
 */
#ifndef SEM_AGENT_INDEX_H
#define SEM_AGENT_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "kv_file.h"
#include "domain/status.h"
#include "ports/warm_store.h"

#define AGENT_INDEX_FILE_MAX (WARM_KEY_MAX + 16)

typedef struct agent_index agent_index;

typedef struct agent_row {
    char key[WARM_KEY_MAX + 1];
    char file[AGENT_INDEX_FILE_MAX + 1]; /* name inside the store's folder */
    uint32_t tokens;
    uint64_t bytes;
    uint64_t fingerprint;
    kv_payload payload;
    int64_t created_ms;  /* unix ms */
    int64_t last_use_ms; /* unix ms */
    uint64_t hits;
    uint64_t tokens_saved;
} agent_row;

/*
 * Opens (creating if needed) the database at path, switches it to WAL and
 * prepares every statement. SEM_EIO with SQLite's message on failure
 * (SEM_ENOMEM when SQLite ran out of memory, here and in every function).
 */
agent_index *agent_index_open(const char *path, sem_err *err);
void agent_index_close(agent_index *ix);

/*
 * Describes key's file: inserts r whole, or, when the key has a row,
 * replaces file, tokens, bytes, fingerprint, payload and last_use_ms and
 * keeps created_ms, hits and tokens_saved.
 */
sem_status agent_index_put(agent_index *ix, const agent_row *r, sem_err *err);

/* key's row; SEM_ENOTFOUND when there is none. */
sem_status agent_index_get(agent_index *ix, const char *key, agent_row *out, sem_err *err);

/* Deletes key's row; *deleted (may be NULL) says whether there was one. */
sem_status agent_index_delete(agent_index *ix, const char *key, int *deleted, sem_err *err);

/*
 * Adds hits and saved to the counters of key's row of this fingerprint
 * and sets its last use; SEM_ENOTFOUND when there is no such row.
 */
sem_status agent_index_touch(agent_index *ix, const char *key, uint64_t fingerprint,
                             int64_t now_ms, uint64_t hits, uint64_t saved, sem_err *err);

/*
 * Rows of this fingerprint whose key starts with prefix ("" or NULL: all),
 * least recently used first (ties by key). *out is malloc'd (NULL when
 * *n is 0).
 */
sem_status agent_index_list(agent_index *ix, uint64_t fingerprint, const char *prefix,
                            agent_row **out, size_t *n, sem_err *err);

/* Every row of every fingerprint, by key (for reconciling). */
sem_status agent_index_all(agent_index *ix, agent_row **out, size_t *n, sem_err *err);

/* Every row of every fingerprint, least recently used first (ties by key):
 * the eviction order of the folder's disk budget. */
sem_status agent_index_lru_all(agent_index *ix, agent_row **out, size_t *n, sem_err *err);

/* Sum of bytes over the rows of this fingerprint. */
sem_status agent_index_total_bytes(agent_index *ix, uint64_t fingerprint, uint64_t *out,
                                   sem_err *err);

/* Sum of bytes over every row (all fingerprints). */
sem_status agent_index_total_bytes_all(agent_index *ix, uint64_t *out, sem_err *err);

#endif
