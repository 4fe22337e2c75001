/*
 * disk_store.h - the warm tier on local disk: one cache file per agent in a
 * folder, an SQLite index beside them (ports/warm_store.h is the contract).
 *
 *   <dir>/<key>.kv              an agent's tokens and KV (kv_file.h)
 *   <dir>/chunks/<name>.kvc     a shared chunk: one whole chunk of the global
 *                               layers of every agent (of one namespace)
 *                               whose sequence starts alike (kv_chunk.h)
 *   <dir>/chunks/<name>.kvc.tmp-<hex>  a chunk being written; deleted at open
 *   <dir>/<key>.kv.tmp-<hex>    a save in progress; deleted at open
 *   <dir>/index.sqlite[-wal,-shm]  the agent index (agent_index.h)
 *   <dir>/LOCK                  flock'd by the one process using the folder
 *   <dir>/quarantine/           files that failed a check, kept for a human
 *
 * Durability: a save writes a temp file, fsyncs it, renames it over
 * <key>.kv, fsyncs the folder, then updates the index. After a crash at any
 * point the folder holds either the old file or the new one, never a mix,
 * and open() puts the index right (docs/cache-format.md, "Reconcile").
 *
 * The disk budget is the folder's: it counts every file of the store, of
 * every model, and the files nobody here can load: files of a newer format
 * version (kept and never loaded: a later release's), files that cannot be
 * read, quarantined files. Under pressure, quarantined files go first, then
 * newer and unreadable files, then agents of every model, least recently
 * used first. Files of another model (another fingerprint) are indexed but
 * never listed or loaded; a load() that meets one quarantines it like any
 * file it cannot serve. Files of an earlier format version load as they
 * are (docs/cache-format.md, "Compatibility").
 *
 * Folder fsyncs are all checked: save and remove fail with SEM_EIO when
 * theirs fails; others are logged and counted (disk_store_fsync_failures).
 *
 * Threads: every function may be called from any thread (disk_store.c
 * names the lock that guards each piece of state). Operations on one key
 * are serialized; different keys proceed in parallel; no lock is held
 * while file data is written or read. Call save and load from an I/O
 * thread, not the engine thread.
 */
#ifndef SEM_DISK_STORE_H
#define SEM_DISK_STORE_H

#include <stdint.h>

#include "kv_file.h"
#include "domain/status.h"
#include "ports/warm_store.h"

typedef struct disk_store disk_store;

typedef struct disk_store_opts {
    const char *dir;        /* created (with its parents) if missing */
    uint64_t fingerprint;   /* the model's: model_fingerprint() */
    kv_payload payload;     /* rows on disk; KV_PAYLOAD_DEFAULT (0) is q8_0 */
    uint64_t budget_bytes;  /* total size of every file the store counts in the folder
                               (all models, newer, unreadable, quarantined); 0 = unlimited */
    uint32_t chunk_tokens;  /* tokens per checksummed chunk, and per shared chunk;
                               0 = KV_FILE_DEFAULT_CHUNK_TOKENS (128) */
    /* 1: every agent in one file of its own, no shared chunks (files of
     * format 2 without the shared flag, as large as version 1's). */
    int whole_files;
    /* Tests: called before every write of file data; a nonzero return
     * (ENOSPC...) fails that write with it. NULL in production. */
    kv_write_hook write_hook;
    void *write_hook_ctx;
    /* Tests: called before every fsync of the folder; a nonzero return is
     * taken as that fsync's errno (EIO...). NULL in production. */
    int (*fsync_hook)(void *ctx, const char *dir);
    void *fsync_hook_ctx;
    /* Unix time in ms; NULL = the real-time clock. */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    /* Warnings (quarantined files, repairs made at open); NULL = silent.
     * Called from the thread of the operation, with no store lock held. */
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
} disk_store_opts;

/* What open() found and repaired. */
typedef struct disk_store_report {
    uint32_t files;        /* agent files of this model indexed after open */
    uint32_t foreign;      /* valid files of another model, indexed, never loaded */
    uint32_t newer;        /* files of a newer format version: kept, counted, never loaded */
    uint32_t unreadable;   /* files that cannot be opened or read: left, counted */
    uint32_t in_quarantine; /* files in quarantine/ after open, counted */
    uint32_t temp_removed; /* interrupted saves deleted */
    uint32_t reindexed;    /* files without a row, indexed from their header */
    uint32_t rows_updated; /* rows that disagreed with their file, re-read */
    uint32_t rows_dropped; /* rows whose file was missing or unusable */
    uint32_t quarantined;  /* files whose header or size failed a check */
    uint32_t chunks;       /* shared chunk files some agent names, indexed after open */
    uint32_t chunks_removed; /* shared chunk files no agent named: deleted */
    uint32_t missing_chunks; /* agent files deleted: they name a chunk no file holds */
} disk_store_report;

/*
 * Opens the store in o->dir: creates the folder, takes its lock (SEM_EBUSY
 * when another process holds it), opens the index and reconciles it with
 * the files. SEM_EINVAL for bad options, SEM_EIO for the operating
 * system's or SQLite's failures. The caller owns the store.
 */
disk_store *disk_store_open(const disk_store_opts *o, sem_err *err);

/* Waits for nothing: the caller ends every operation first. */
void disk_store_close(disk_store *s);

/* The warm_store port of s (valid until disk_store_close). */
warm_store disk_store_port(disk_store *s);

/* What the last open found. */
disk_store_report disk_store_open_report(const disk_store *s);

/* Folder fsyncs that failed since open (each also logged). */
uint64_t disk_store_fsync_failures(const disk_store *s);

/* ------------------------------------------------------------ transfer
 * An agent's files as bytes, to copy them to another store (a remote tier
 * under this one) and back. */

typedef struct disk_store_chunk {
    char name[2 * KV_CHUNK_NAME_BYTES + 1]; /* 32 lowercase hex digits */
    uint8_t *data;                          /* the chunk file's bytes */
    size_t len;
} disk_store_chunk;

typedef struct disk_store_agent {
    uint8_t *file;             /* the agent file's bytes */
    size_t file_len;
    kv_file_header header;     /* the agent file's, verified */
    disk_store_chunk *chunks;  /* [n_chunks]: the shared chunks it names, in order */
    uint32_t n_chunks;
} disk_store_agent;

/*
 * Reads key's agent file (its header verified, of this store's model) and
 * every shared chunk file it names into *out (malloc'd; free with
 * disk_store_agent_free). The key is held meanwhile, so the files are one
 * consistent version. SEM_ENOTFOUND without a file; SEM_ECORRUPT /
 * SEM_EINCOMPAT when its header fails a check or a chunk is missing (the
 * file is not quarantined: a load will do that); SEM_EIO, SEM_ENOMEM.
 */
sem_status disk_store_export(disk_store *s, const char *key, disk_store_agent *out,
                             sem_err *err);
void disk_store_agent_free(disk_store_agent *a);


/*
 * The warm_store load (ports/warm_store.h) that also says, when it fails
 * with SEM_ECORRUPT or SEM_EINCOMPAT, which file was to blame (*fault; the
 * file was quarantined as load() does).
 */
sem_status disk_store_load_fault(disk_store *s, const char *key, block_pool *pool,
                                 block_table **out, kv_read_fault *fault, sem_err *err);

/* The header a file of geometry spec would have in this store (payload
 * type after any fallback, chunk size), for naming copies of its files
 * elsewhere. SEM_EINVAL for a spec the codec refuses. */
sem_status disk_store_plan_header(const disk_store *s, const cache_spec *spec,
                                  kv_file_header *out, sem_err *err);

#endif
