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
 *   CREATE TABLE chunks(name TEXT PRIMARY KEY, bytes INTEGER, refs INTEGER)
 *   CREATE TABLE agent_chunks(key TEXT, pos INTEGER, name TEXT,
 *       PRIMARY KEY(key, pos))
 *
 * chunks describes the shared chunk files (kv_chunk.h) by name (32 hex
 * digits): their size (0 once the file is known to be gone) and how many
 * agents name them; agent_chunks says which, so that replacing or deleting
 * an agent drops its references in the same transaction. A chunk whose
 * refs reach 0 keeps its row until the store deletes its file
 * (agent_index_chunk_drop_unused). The files are the truth: the store
 * rebuilds both tables from the agent files at open.
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

#include "kv_chunk.h"
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

/* A shared chunk's row. */
typedef struct agent_chunk_row {
    char name[KV_CHUNK_HEX_BYTES];
    uint64_t bytes;
    int64_t refs;
} agent_chunk_row;

/* Agent key names chunk `name` at position pos. */
typedef struct agent_chunk_link {
    char key[WARM_KEY_MAX + 1];
    uint32_t pos;
    char name[KV_CHUNK_HEX_BYTES];
} agent_chunk_link;

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

/*
 * agent_index_put and key's links to shared chunks in one transaction: the
 * chunks it named before lose a reference, names[0..n) (chunk files of
 * chunk_bytes each) gain one (rows made as needed, their bytes set).
 */
sem_status agent_index_put_chunks(agent_index *ix, const agent_row *r,
                                  const char (*names)[KV_CHUNK_HEX_BYTES], uint32_t n,
                                  uint64_t chunk_bytes, sem_err *err);

/* Chunk name's row; SEM_ENOTFOUND when there is none. */
sem_status agent_index_chunk_get(agent_index *ix, const char *name, agent_chunk_row *out,
                                 sem_err *err);

/* Records that chunk name's file is gone (quarantined, missing): bytes 0. */
sem_status agent_index_chunk_lost(agent_index *ix, const char *name, sem_err *err);

/* Chunks no agent names (refs <= 0), by name; *out malloc'd. */
sem_status agent_index_chunks_unused(agent_index *ix, agent_chunk_row **out, size_t *n,
                                     sem_err *err);

/* Deletes chunk name's row if no agent names it; *dropped says whether. */
sem_status agent_index_chunk_drop_unused(agent_index *ix, const char *name, int *dropped,
                                         sem_err *err);

/* Every chunk row, by name; *out malloc'd. */
sem_status agent_index_chunks_all(agent_index *ix, agent_chunk_row **out, size_t *n,
                                  sem_err *err);

/*
 * Replaces both chunk tables in one transaction: a row per chunk file
 * (files[].name, .bytes), the links, and every refs counted from them.
 */
sem_status agent_index_chunks_rebuild(agent_index *ix, const agent_chunk_row *files,
                                      size_t n_files, const agent_chunk_link *links,
                                      size_t n_links, sem_err *err);

/* Deletes key's row and its links to shared chunks (one reference less
 * each) in one transaction; *deleted (may be NULL) says whether there was
 * a row. */
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

/* Sum of bytes over every agent row (all fingerprints) and every chunk row. */
sem_status agent_index_total_bytes_all(agent_index *ix, uint64_t *out, sem_err *err);

#endif
