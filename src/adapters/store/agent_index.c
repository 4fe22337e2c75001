/*
 * agent_index.c - the agents table in SQLite (schema in agent_index.h).
 *
 * Every statement is prepared once at open and reset after each use; the
 * connection is opened without SQLite's own mutex because db_lock already
 * serializes every call.
 */
#include "agent_index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define SCHEMA_VERSION 2

enum {
    ST_PUT,
    ST_GET,
    ST_DELETE,
    ST_TOUCH,
    ST_LIST,
    ST_ALL,
    ST_TOTAL,
    ST_LRU_ALL,
    ST_TOTAL_ALL,
    ST_UNLINK_REFS,
    ST_UNLINK,
    ST_LINK_CHUNK,
    ST_LINK,
    ST_CHUNK_GET,
    ST_CHUNK_LOST,
    ST_CHUNK_UNUSED,
    ST_CHUNK_DROP,
    ST_CHUNK_ALL,
    ST_COUNT
};

#define ROW_COLUMNS                                                                   \
    "key, file, tokens, bytes, fingerprint, payload, created_ms, last_use_ms, hits, " \
    "tokens_saved"

static const char *const SQL[ST_COUNT] = {
    [ST_PUT] = "INSERT INTO agents(" ROW_COLUMNS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
               "ON CONFLICT(key) DO UPDATE SET file = excluded.file, tokens = excluded.tokens, "
               "bytes = excluded.bytes, fingerprint = excluded.fingerprint, "
               "payload = excluded.payload, last_use_ms = excluded.last_use_ms",
    [ST_GET] = "SELECT " ROW_COLUMNS " FROM agents WHERE key = ?1",
    [ST_DELETE] = "DELETE FROM agents WHERE key = ?1",
    [ST_TOUCH] = "UPDATE agents SET hits = hits + ?3, tokens_saved = tokens_saved + ?4, "
                 "last_use_ms = ?5 WHERE key = ?1 AND fingerprint = ?2",
    [ST_LIST] = "SELECT " ROW_COLUMNS " FROM agents WHERE fingerprint = ?1 "
                "AND substr(key, 1, length(?2)) = ?2 ORDER BY last_use_ms, key",
    [ST_ALL] = "SELECT " ROW_COLUMNS " FROM agents ORDER BY key",
    [ST_TOTAL] = "SELECT coalesce(sum(bytes), 0) FROM agents WHERE fingerprint = ?1",
    [ST_LRU_ALL] = "SELECT " ROW_COLUMNS " FROM agents ORDER BY last_use_ms, key",
    [ST_TOTAL_ALL] = "SELECT (SELECT coalesce(sum(bytes), 0) FROM agents) + "
                     "(SELECT coalesce(sum(bytes), 0) FROM chunks)",
    [ST_UNLINK_REFS] = "UPDATE chunks SET refs = refs - 1 WHERE name IN "
                       "(SELECT name FROM agent_chunks WHERE key = ?1)",
    [ST_UNLINK] = "DELETE FROM agent_chunks WHERE key = ?1",
    [ST_LINK_CHUNK] = "INSERT INTO chunks(name, bytes, refs) VALUES(?1, ?2, 1) "
                      "ON CONFLICT(name) DO UPDATE SET refs = refs + 1, bytes = excluded.bytes",
    [ST_LINK] = "INSERT INTO agent_chunks(key, pos, name) VALUES(?1, ?2, ?3)",
    [ST_CHUNK_GET] = "SELECT name, bytes, refs FROM chunks WHERE name = ?1",
    [ST_CHUNK_LOST] = "UPDATE chunks SET bytes = 0 WHERE name = ?1",
    [ST_CHUNK_UNUSED] = "SELECT name, bytes, refs FROM chunks WHERE refs <= 0 ORDER BY name",
    [ST_CHUNK_DROP] = "DELETE FROM chunks WHERE name = ?1 AND refs <= 0",
    [ST_CHUNK_ALL] = "SELECT name, bytes, refs FROM chunks ORDER BY name",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS agents("
    " key TEXT PRIMARY KEY NOT NULL,"
    " file TEXT NOT NULL,"
    " tokens INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " fingerprint INTEGER NOT NULL,"
    " payload TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " last_use_ms INTEGER NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0,"
    " tokens_saved INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS agents_lru ON agents(fingerprint, last_use_ms);"
    "CREATE TABLE IF NOT EXISTS chunks("
    " name TEXT PRIMARY KEY NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " refs INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_refs ON chunks(refs);"
    "CREATE TABLE IF NOT EXISTS agent_chunks("
    " key TEXT NOT NULL,"
    " pos INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " PRIMARY KEY(key, pos));"
    "CREATE INDEX IF NOT EXISTS agent_chunks_name ON agent_chunks(name);";

struct agent_index {
    pthread_mutex_t db_lock; /* guards db and stmt */
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    char *path;
};

/* SQLite's lack of memory is ours (SEM_ENOMEM); anything else it reports is I/O. */
static sem_status status_of(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? SEM_ENOMEM : SEM_EIO;
}

static sem_status db_error(agent_index *ix, sem_err *err, const char *what)
{
    return sem_err_set(err, status_of(sqlite3_errcode(ix->db)), "agent index %s: %s: %s",
                       ix->path, what, sqlite3_errmsg(ix->db));
}

static sem_status exec(agent_index *ix, const char *sql, const char *what, sem_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(ix->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        sem_status st = sem_err_set(err, status_of(rc), "agent index %s: %s: %s", ix->path, what,
                                    msg ? msg : sqlite3_errmsg(ix->db));
        sqlite3_free(msg);
        return st;
    }
    return SEM_OK;
}

void agent_index_close(agent_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ix->stmt[i]);
    sqlite3_close(ix->db);
    pthread_mutex_destroy(&ix->db_lock);
    free(ix->path);
    free(ix);
}

agent_index *agent_index_open(const char *path, sem_err *err)
{
    agent_index *ix = calloc(1, sizeof *ix);
    char *p = path ? strdup(path) : NULL;
    if (!ix || !p) {
        free(ix);
        free(p);
        sem_err_set(err, path ? SEM_ENOMEM : SEM_EINVAL, "agent index: %s",
                    path ? "out of memory" : "NULL path");
        return NULL;
    }
    ix->path = p;
    pthread_mutex_init(&ix->db_lock, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &ix->db, flags, NULL) != SQLITE_OK) {
        if (ix->db)
            db_error(ix, err, "open");
        else
            sem_err_set(err, SEM_ENOMEM, "agent index %s: out of memory", path);
        agent_index_close(ix);
        return NULL;
    }
    sqlite3_busy_timeout(ix->db, 5000);
    sqlite3_extended_result_codes(ix->db, 1);
    char version_sql[64];
    snprintf(version_sql, sizeof version_sql, "PRAGMA user_version = %d;", SCHEMA_VERSION);
    if (exec(ix, "PRAGMA journal_mode = WAL;", "set WAL mode", err) != SEM_OK ||
        exec(ix, "PRAGMA synchronous = NORMAL;", "set synchronous", err) != SEM_OK ||
        exec(ix, SCHEMA, "create schema", err) != SEM_OK ||
        exec(ix, version_sql, "set schema version", err) != SEM_OK) {
        agent_index_close(ix);
        return NULL;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(ix->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->stmt[i],
                               NULL) != SQLITE_OK) {
            db_error(ix, err, "prepare");
            agent_index_close(ix);
            return NULL;
        }
    }
    return ix;
}

/* ------------------------------------------------------------ rows */

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static void read_row(sqlite3_stmt *s, agent_row *r)
{
    memset(r, 0, sizeof *r);
    copy_text(r->key, sizeof r->key, sqlite3_column_text(s, 0));
    copy_text(r->file, sizeof r->file, sqlite3_column_text(s, 1));
    r->tokens = (uint32_t)sqlite3_column_int64(s, 2);
    r->bytes = (uint64_t)sqlite3_column_int64(s, 3);
    r->fingerprint = (uint64_t)sqlite3_column_int64(s, 4);
    const unsigned char *payload = sqlite3_column_text(s, 5);
    if (!payload || kv_payload_parse((const char *)payload, &r->payload, NULL) != SEM_OK)
        r->payload = KV_PAYLOAD_DEFAULT;
    r->created_ms = sqlite3_column_int64(s, 6);
    r->last_use_ms = sqlite3_column_int64(s, 7);
    r->hits = (uint64_t)sqlite3_column_int64(s, 8);
    r->tokens_saved = (uint64_t)sqlite3_column_int64(s, 9);
}

/* Runs a statement that returns no rows; resets it. Call under db_lock. */
static sem_status step_done(agent_index *ix, sqlite3_stmt *s, const char *what, sem_err *err)
{
    int rc = sqlite3_step(s);
    sem_status st = rc == SQLITE_DONE ? SEM_OK : db_error(ix, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

/*
 * Collects every row of a bound SELECT into a malloc'd array of `size`-byte
 * elements, each filled by read(); resets the statement. Call under
 * db_lock. `what` names the query in messages.
 */
static sem_status collect_rows(agent_index *ix, sqlite3_stmt *s, size_t size,
                               void (*read)(sqlite3_stmt *s, void *row), const char *what,
                               void **out, size_t *n, sem_err *err)
{
    char *rows = NULL;
    size_t count = 0, cap = 0;
    sem_status st = SEM_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t c = cap ? cap * 2 : 16;
            char *g = realloc(rows, c * size);
            if (!g) {
                st = sem_err_set(err, SEM_ENOMEM, "agent index: %s: out of memory for %zu rows",
                                 what, c);
                break;
            }
            rows = g;
            cap = c;
        }
        read(s, rows + count++ * size);
    }
    if (st == SEM_OK && rc != SQLITE_DONE)
        st = db_error(ix, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (st != SEM_OK) {
        free(rows);
        return st;
    }
    *out = rows;
    *n = count;
    return SEM_OK;
}

static void read_agent(sqlite3_stmt *s, void *row) { read_row(s, row); }

/* Collects every agent row of a bound SELECT. Call under db_lock. */
static sem_status collect(agent_index *ix, sqlite3_stmt *s, agent_row **out, size_t *n,
                          sem_err *err)
{
    return collect_rows(ix, s, sizeof **out, read_agent, "list", (void **)out, n, err);
}

static sem_status put_row(agent_index *ix, const agent_row *r, sem_err *err);

sem_status agent_index_put(agent_index *ix, const agent_row *r, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = put_row(ix, r, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

static sem_status put_row(agent_index *ix, const agent_row *r, sem_err *err)
{
    sqlite3_stmt *s = ix->stmt[ST_PUT];
    sqlite3_bind_text(s, 1, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->tokens);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->bytes);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)r->fingerprint);
    sqlite3_bind_text(s, 6, kv_payload_name(r->payload), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, r->created_ms);
    sqlite3_bind_int64(s, 8, r->last_use_ms);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)r->hits);
    sqlite3_bind_int64(s, 10, (sqlite3_int64)r->tokens_saved);
    return step_done(ix, s, "put", err);
}

sem_status agent_index_get(agent_index *ix, const char *key, agent_row *out, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_GET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sem_status st = SEM_OK;
    if (rc == SQLITE_ROW)
        read_row(s, out);
    else if (rc == SQLITE_DONE)
        st = sem_err_set(err, SEM_ENOTFOUND, "agent '%s' is not in the index", key);
    else
        st = db_error(ix, err, "get");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

/* BEGIN IMMEDIATE, COMMIT, ROLLBACK; call under db_lock. */
static sem_status tx_begin(agent_index *ix, sem_err *err)
{
    return exec(ix, "BEGIN IMMEDIATE;", "begin", err);
}

static sem_status tx_end(agent_index *ix, sem_status st, sem_err *err)
{
    if (st == SEM_OK)
        st = exec(ix, "COMMIT;", "commit", err);
    if (st != SEM_OK)
        exec(ix, "ROLLBACK;", "rollback", NULL);
    return st;
}

/* Drops key's links to chunks, one reference each; call in a transaction. */
static sem_status unlink_chunks(agent_index *ix, const char *key, sem_err *err)
{
    sqlite3_stmt *s = ix->stmt[ST_UNLINK_REFS];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sem_status st = step_done(ix, s, "unlink chunks", err);
    if (st == SEM_OK) {
        s = ix->stmt[ST_UNLINK];
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        st = step_done(ix, s, "unlink chunks", err);
    }
    return st;
}

sem_status agent_index_delete(agent_index *ix, const char *key, int *deleted, sem_err *err)
{
    if (deleted)
        *deleted = 0;
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = tx_begin(ix, err);
    if (st == SEM_OK)
        st = unlink_chunks(ix, key, err);
    if (st == SEM_OK) {
        sqlite3_stmt *s = ix->stmt[ST_DELETE];
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        st = step_done(ix, s, "delete", err);
        if (deleted)
            *deleted = st == SEM_OK && sqlite3_changes(ix->db) > 0;
    }
    st = tx_end(ix, st, err);
    if (st != SEM_OK && deleted)
        *deleted = 0;
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

/* Links key to chunks names[0..n) (position i each), one reference each;
 * call in a transaction. */
static sem_status link_chunks(agent_index *ix, const char *key,
                              const char (*names)[KV_CHUNK_HEX_BYTES], uint32_t n,
                              uint64_t chunk_bytes, sem_err *err)
{
    sem_status st = SEM_OK;
    for (uint32_t i = 0; st == SEM_OK && i < n; i++) {
        sqlite3_stmt *s = ix->stmt[ST_LINK_CHUNK];
        sqlite3_bind_text(s, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)chunk_bytes);
        st = step_done(ix, s, "link chunk", err);
        if (st != SEM_OK)
            break;
        s = ix->stmt[ST_LINK];
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, i);
        sqlite3_bind_text(s, 3, names[i], -1, SQLITE_STATIC);
        st = step_done(ix, s, "link chunk", err);
    }
    return st;
}

sem_status agent_index_put_chunks(agent_index *ix, const agent_row *r,
                                  const char (*names)[KV_CHUNK_HEX_BYTES], uint32_t n,
                                  uint64_t chunk_bytes, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = tx_begin(ix, err);
    if (st == SEM_OK)
        st = unlink_chunks(ix, r->key, err);
    if (st == SEM_OK)
        st = link_chunks(ix, r->key, names, n, chunk_bytes, err);
    if (st == SEM_OK)
        st = put_row(ix, r, err);
    st = tx_end(ix, st, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

static void read_chunk_row(sqlite3_stmt *s, agent_chunk_row *c)
{
    memset(c, 0, sizeof *c);
    copy_text(c->name, sizeof c->name, sqlite3_column_text(s, 0));
    c->bytes = (uint64_t)sqlite3_column_int64(s, 1);
    c->refs = sqlite3_column_int64(s, 2);
}

sem_status agent_index_chunk_get(agent_index *ix, const char *name, agent_chunk_row *out,
                                 sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_CHUNK_GET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sem_status st = SEM_OK;
    if (rc == SQLITE_ROW)
        read_chunk_row(s, out);
    else if (rc == SQLITE_DONE)
        st = sem_err_set(err, SEM_ENOTFOUND, "chunk %s is not in the index", name);
    else
        st = db_error(ix, err, "chunk get");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_chunk_lost(agent_index *ix, const char *name, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_CHUNK_LOST];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sem_status st = step_done(ix, s, "chunk lost", err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_chunk_drop_unused(agent_index *ix, const char *name, int *dropped,
                                         sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_CHUNK_DROP];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sem_status st = step_done(ix, s, "chunk drop", err);
    *dropped = st == SEM_OK && sqlite3_changes(ix->db) > 0;
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

static void read_chunk(sqlite3_stmt *s, void *row) { read_chunk_row(s, row); }

/* Collects every chunk row of a bound SELECT. Call under db_lock. */
static sem_status collect_chunks(agent_index *ix, sqlite3_stmt *s, agent_chunk_row **out,
                                 size_t *n, sem_err *err)
{
    return collect_rows(ix, s, sizeof **out, read_chunk, "list chunks", (void **)out, n, err);
}

sem_status agent_index_chunks_unused(agent_index *ix, agent_chunk_row **out, size_t *n,
                                     sem_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = collect_chunks(ix, ix->stmt[ST_CHUNK_UNUSED], out, n, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_chunks_all(agent_index *ix, agent_chunk_row **out, size_t *n,
                                  sem_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = collect_chunks(ix, ix->stmt[ST_CHUNK_ALL], out, n, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_chunks_rebuild(agent_index *ix, const agent_chunk_row *files,
                                      size_t n_files, const agent_chunk_link *links,
                                      size_t n_links, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = tx_begin(ix, err);
    if (st == SEM_OK)
        st = exec(ix, "DELETE FROM agent_chunks; DELETE FROM chunks;", "clear chunks", err);
    for (size_t i = 0; st == SEM_OK && i < n_files; i++) {
        sqlite3_stmt *s = ix->stmt[ST_LINK_CHUNK];
        sqlite3_bind_text(s, 1, files[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)files[i].bytes);
        st = step_done(ix, s, "rebuild chunks", err);
    }
    for (size_t i = 0; st == SEM_OK && i < n_links; i++) {
        sqlite3_stmt *s = ix->stmt[ST_LINK];
        sqlite3_bind_text(s, 1, links[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, links[i].pos);
        sqlite3_bind_text(s, 3, links[i].name, -1, SQLITE_STATIC);
        st = step_done(ix, s, "rebuild links", err);
    }
    if (st == SEM_OK)
        st = exec(ix,
                  "UPDATE chunks SET refs = (SELECT count(*) FROM agent_chunks a "
                  "WHERE a.name = chunks.name);",
                  "count references", err);
    st = tx_end(ix, st, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_touch(agent_index *ix, const char *key, uint64_t fingerprint,
                             int64_t now_ms, uint64_t hits, uint64_t saved, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_TOUCH];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)fingerprint);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)hits);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)saved);
    sqlite3_bind_int64(s, 5, now_ms);
    sem_status st = step_done(ix, s, "touch", err);
    if (st == SEM_OK && sqlite3_changes(ix->db) == 0)
        st = sem_err_set(err, SEM_ENOTFOUND, "agent '%s' is not in the index", key);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_list(agent_index *ix, uint64_t fingerprint, const char *prefix,
                            agent_row **out, size_t *n, sem_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_LIST];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)fingerprint);
    sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
    sem_status st = collect(ix, s, out, n, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_all(agent_index *ix, agent_row **out, size_t *n, sem_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = collect(ix, ix->stmt[ST_ALL], out, n, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_lru_all(agent_index *ix, agent_row **out, size_t *n, sem_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = collect(ix, ix->stmt[ST_LRU_ALL], out, n, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

/* Runs a one-value sum; call under db_lock. */
static sem_status sum_of(agent_index *ix, sqlite3_stmt *s, uint64_t *out, sem_err *err)
{
    sem_status st = SEM_OK;
    if (sqlite3_step(s) == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    else
        st = db_error(ix, err, "total bytes");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

sem_status agent_index_total_bytes_all(agent_index *ix, uint64_t *out, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sem_status st = sum_of(ix, ix->stmt[ST_TOTAL_ALL], out, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}

sem_status agent_index_total_bytes(agent_index *ix, uint64_t fingerprint, uint64_t *out,
                                   sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_TOTAL];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)fingerprint);
    sem_status st = sum_of(ix, s, out, err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
}
