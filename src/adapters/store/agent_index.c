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

#define SCHEMA_VERSION 1

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
    [ST_TOTAL_ALL] = "SELECT coalesce(sum(bytes), 0) FROM agents",
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
    "CREATE INDEX IF NOT EXISTS agents_lru ON agents(fingerprint, last_use_ms);";

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

/* Collects every row of a bound SELECT; resets it. Call under db_lock. */
static sem_status collect(agent_index *ix, sqlite3_stmt *s, agent_row **out, size_t *n,
                          sem_err *err)
{
    agent_row *rows = NULL;
    size_t count = 0, cap = 0;
    sem_status st = SEM_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t c = cap ? cap * 2 : 16;
            agent_row *g = realloc(rows, c * sizeof *g);
            if (!g) {
                st = sem_err_set(err, SEM_ENOMEM, "agent index: out of memory for %zu rows", c);
                break;
            }
            rows = g;
            cap = c;
        }
        read_row(s, &rows[count++]);
    }
    if (st == SEM_OK && rc != SQLITE_DONE)
        st = db_error(ix, err, "list");
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

sem_status agent_index_put(agent_index *ix, const agent_row *r, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
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
    sem_status st = step_done(ix, s, "put", err);
    pthread_mutex_unlock(&ix->db_lock);
    return st;
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

sem_status agent_index_delete(agent_index *ix, const char *key, int *deleted, sem_err *err)
{
    pthread_mutex_lock(&ix->db_lock);
    sqlite3_stmt *s = ix->stmt[ST_DELETE];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sem_status st = step_done(ix, s, "delete", err);
    if (deleted)
        *deleted = st == SEM_OK && sqlite3_changes(ix->db) > 0;
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
