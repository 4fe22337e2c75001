/*
 * response_store.c - the responses table in SQLite (schema and rules in
 * response_store.h).
 *
 * Statements are prepared once at open and reset after each use; the
 * connection is opened without SQLite's own mutex because db_lock already
 * serializes every call.
 */
#include "response_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlite_db.h"

#define SCHEMA_VERSION 1

enum { ST_PUT, ST_GET, ST_DELETE, ST_LATEST, ST_PRUNE_AGE, ST_PRUNE_COUNT, ST_COUNT_ROWS, ST_N };

static const char *const SQL[ST_N] = {
    [ST_PUT] = "INSERT OR REPLACE INTO responses(ns, id, previous_id, agent, agent_tokens, "
               "created_at, input, response) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_GET] = "SELECT ns, id, previous_id, agent, agent_tokens, created_at, input, response "
               "FROM responses WHERE ns = ?1 AND id = ?2",
    [ST_DELETE] = "DELETE FROM responses WHERE ns = ?1 AND id = ?2",
    [ST_LATEST] = "SELECT id FROM responses WHERE ns = ?1 AND agent = ?2 "
                  "ORDER BY seq DESC LIMIT 1",
    [ST_PRUNE_AGE] = "DELETE FROM responses WHERE created_at < ?1",
    /* Everything older than the newest ?1 + 1 records. */
    [ST_PRUNE_COUNT] = "DELETE FROM responses WHERE seq < (SELECT seq FROM responses "
                       "ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
    [ST_COUNT_ROWS] = "SELECT count(*) FROM responses",
};

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS responses("
                             " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " ns TEXT NOT NULL,"
                             " id TEXT NOT NULL,"
                             " previous_id TEXT NOT NULL,"
                             " agent TEXT NOT NULL,"
                             " agent_tokens INTEGER NOT NULL,"
                             " created_at INTEGER NOT NULL,"
                             " input TEXT NOT NULL,"
                             " response TEXT NOT NULL,"
                             " UNIQUE(ns, id));"
                             "CREATE INDEX IF NOT EXISTS responses_agent"
                             " ON responses(ns, agent, seq);"
                             "CREATE INDEX IF NOT EXISTS responses_age ON responses(created_at);";

struct response_db {
    pthread_mutex_t db_lock; /* guards db and stmt */
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_N];
    uint64_t max_count, max_age_s;
    char *path;
};

static sem_status db_error(response_db *d, sem_err *err, const char *what)
{
    return sqlite_db_error(d->db, "response store", d->path, what, err);
}

/* Runs a statement that returns no rows; resets it. Call under db_lock. */
static sem_status step_done(response_db *d, sqlite3_stmt *s, const char *what, sem_err *err)
{
    int rc = sqlite3_step(s);
    sem_status st = rc == SQLITE_DONE ? SEM_OK : db_error(d, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

/* Applies both limits; call under db_lock. */
static sem_status prune(response_db *d, int64_t now_s, sem_err *err)
{
    sem_status st = SEM_OK;
    if (d->max_age_s) {
        sqlite3_bind_int64(d->stmt[ST_PRUNE_AGE], 1, now_s - (int64_t)d->max_age_s);
        st = step_done(d, d->stmt[ST_PRUNE_AGE], "delete expired responses", err);
    }
    if (st == SEM_OK && d->max_count) {
        sqlite3_bind_int64(d->stmt[ST_PRUNE_COUNT], 1, (sqlite3_int64)d->max_count - 1);
        st = step_done(d, d->stmt[ST_PRUNE_COUNT], "delete the oldest responses", err);
    }
    return st;
}

void response_db_close(response_db *d)
{
    if (!d)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(d->stmt[i]);
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->db_lock);
    free(d->path);
    free(d);
}

response_db *response_db_open(const response_db_opts *o, sem_err *err)
{
    response_db *d = calloc(1, sizeof *d);
    char *p = o->path ? strdup(o->path) : NULL;
    if (!d || !p) {
        free(d);
        free(p);
        sem_err_set(err, o->path ? SEM_ENOMEM : SEM_EINVAL, "response store: %s",
                    o->path ? "out of memory" : "NULL path");
        return NULL;
    }
    d->path = p;
    d->max_count = o->max_count;
    d->max_age_s = o->max_age_s;
    pthread_mutex_init(&d->db_lock, NULL);
    d->db = sqlite_db_open(p, "response store", SCHEMA, SCHEMA_VERSION, err);
    if (!d->db) {
        response_db_close(d);
        return NULL;
    }
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(d->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &d->stmt[i], NULL) !=
            SQLITE_OK) {
            db_error(d, err, "prepare");
            response_db_close(d);
            return NULL;
        }
    }
    if (prune(d, o->now_s, err) != SEM_OK) {
        response_db_close(d);
        return NULL;
    }
    return d;
}

sem_status response_db_count(response_db *d, uint64_t *out, sem_err *err)
{
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = d->stmt[ST_COUNT_ROWS];
    sem_status st = SEM_OK;
    if (sqlite3_step(s) == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    else
        st = db_error(d, err, "count");
    sqlite3_reset(s);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

/* ------------------------------------------------------------ the port */

static sem_status rs_put(void *self, const response_record *r, int64_t now_s, sem_err *err)
{
    response_db *d = self;
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = d->stmt[ST_PUT];
    sqlite3_bind_text(s, 1, r->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->previous_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->agent, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, r->agent_tokens);
    sqlite3_bind_int64(s, 6, r->created_at);
    sqlite3_bind_text(s, 7, r->input ? r->input : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, r->response ? r->response : "{}", -1, SQLITE_STATIC);
    sem_status st = step_done(d, s, "put", err);
    if (st == SEM_OK)
        st = prune(d, now_s, err);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}


static sem_status rs_get(void *self, const char *ns, const char *id, response_record *out,
                         sem_err *err)
{
    response_db *d = self;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = d->stmt[ST_GET];
    sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sem_status st = SEM_OK;
    if (rc == SQLITE_ROW) {
        sqlite_db_copy_text(out->ns, sizeof out->ns, sqlite3_column_text(s, 0));
        sqlite_db_copy_text(out->id, sizeof out->id, sqlite3_column_text(s, 1));
        sqlite_db_copy_text(out->previous_id, sizeof out->previous_id, sqlite3_column_text(s, 2));
        sqlite_db_copy_text(out->agent, sizeof out->agent, sqlite3_column_text(s, 3));
        out->agent_tokens = (uint32_t)sqlite3_column_int64(s, 4);
        out->created_at = sqlite3_column_int64(s, 5);
        out->input = sqlite_db_dup_text(sqlite3_column_text(s, 6));
        out->response = sqlite_db_dup_text(sqlite3_column_text(s, 7));
        if (!out->input || !out->response) {
            response_record_free(out);
            st = sem_err_set(err, SEM_ENOMEM, "response store: out of memory reading '%s'", id);
        }
    } else if (rc == SQLITE_DONE) {
        st = sem_err_set(err, SEM_ENOTFOUND, "response '%s' not found", id);
    } else {
        st = db_error(d, err, "get");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static sem_status rs_remove(void *self, const char *ns, const char *id, sem_err *err)
{
    response_db *d = self;
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = d->stmt[ST_DELETE];
    sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    sem_status st = step_done(d, s, "delete", err);
    if (st == SEM_OK && sqlite3_changes(d->db) == 0)
        st = sem_err_set(err, SEM_ENOTFOUND, "response '%s' not found", id);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static sem_status rs_latest(void *self, const char *ns, const char *agent,
                            char out[RESPONSE_ID_MAX + 1], sem_err *err)
{
    response_db *d = self;
    out[0] = '\0';
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = d->stmt[ST_LATEST];
    sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, agent, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sem_status st = SEM_OK;
    if (rc == SQLITE_ROW)
        sqlite_db_copy_text(out, RESPONSE_ID_MAX + 1, sqlite3_column_text(s, 0));
    else if (rc != SQLITE_DONE)
        st = db_error(d, err, "latest");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static const response_store_ops ops = {rs_put, rs_get, rs_remove, rs_latest};

response_store response_db_port(response_db *d) { return (response_store){&ops, d}; }
