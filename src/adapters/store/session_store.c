/*
 * session_store.c - sessions, their agents and transcripts in SQLite
 * (schema and rules in session_store.h).
 *
 * Statements are prepared per call: a session operation is one HTTP
 * request's worth of work (a turn decodes for far longer than a prepare
 * takes). Writes run inside BEGIN IMMEDIATE ... COMMIT and roll back on
 * any failure, so a failed operation leaves the database as it was.
 */
#include "session_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlite_db.h"

#define SCHEMA_VERSION 2 /* 2: sessions.view */

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS sessions("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, id TEXT NOT NULL,"
    " model TEXT NOT NULL, topology INTEGER NOT NULL, max_turns INTEGER NOT NULL,"
    " turns INTEGER NOT NULL, next INTEGER NOT NULL, done INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, moderator INTEGER NOT NULL,"
    " running INTEGER NOT NULL DEFAULT 0, view INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(ns, id));"
    "CREATE TABLE IF NOT EXISTS session_agents("
    " ns TEXT NOT NULL, session TEXT NOT NULL, idx INTEGER NOT NULL, id TEXT NOT NULL,"
    " name TEXT NOT NULL, role TEXT NOT NULL, system TEXT NOT NULL,"
    " persistent INTEGER NOT NULL, PRIMARY KEY(ns, session, idx));"
    "CREATE TABLE IF NOT EXISTS session_messages("
    " ns TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL,"
    " batch INTEGER NOT NULL, speaker TEXT NOT NULL, name TEXT NOT NULL, channel TEXT NOT NULL,"
    " text TEXT NOT NULL, tokens INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(ns, session, seq));";

struct session_db {
    pthread_mutex_t db_lock; /* guards db */
    sqlite3 *db;
    char *path;
};

static sem_status db_error(session_db *d, sem_err *err, const char *what)
{
    return sqlite_db_error(d->db, "session store", d->path, what, err);
}

static sem_status exec(session_db *d, const char *sql, const char *what, sem_err *err)
{
    return sqlite_db_exec(d->db, "session store", d->path, sql, what, err);
}

/* A statement bound to (ns, id) as ?1 and ?2; NULL with err set. */
static sqlite3_stmt *prepare(session_db *d, const char *sql, const char *ns, const char *id,
                             sem_err *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_error(d, err, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    return s;
}

/* Runs a statement that returns no rows, then finalizes it. */
static sem_status run(session_db *d, sqlite3_stmt *s, const char *what, sem_err *err)
{
    if (!s)
        return err->status;
    sem_status st = sqlite3_step(s) == SQLITE_DONE ? SEM_OK : db_error(d, err, what);
    sqlite3_finalize(s);
    return st;
}

/* Ends a write transaction: COMMIT after st == SEM_OK, else ROLLBACK. */
static sem_status end_write(session_db *d, sem_status st, sem_err *err)
{
    if (st == SEM_OK)
        return exec(d, "COMMIT;", "commit", err);
    sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
    return st;
}

void session_db_close(session_db *d)
{
    if (!d)
        return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->db_lock);
    free(d->path);
    free(d);
}

session_db *session_db_open(const char *path, sem_err *err)
{
    session_db *d = calloc(1, sizeof *d);
    char *p = path ? strdup(path) : NULL;
    if (!d || !p) {
        free(d);
        free(p);
        sem_err_set(err, path ? SEM_ENOMEM : SEM_EINVAL, "session store: %s",
                    path ? "out of memory" : "NULL path");
        return NULL;
    }
    d->path = p;
    pthread_mutex_init(&d->db_lock, NULL);
    d->db = sqlite_db_open(p, "session store", SCHEMA, SCHEMA_VERSION, err);
    if (!d->db ||
        sqlite_db_add_column(d->db, "session store", p, "sessions", "view",
                             "view INTEGER NOT NULL DEFAULT 0", err) != SEM_OK ||
        exec(d, "UPDATE sessions SET running = 0;", "clear running turns", err) != SEM_OK) {
        session_db_close(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------ reading rows */


/* The session columns of a row (ns, id, model, topology, max_turns,
 * turns, next, done, created_at, moderator, view from column 0). */
static void read_session(sqlite3_stmt *s, session_record *r)
{
    memset(r, 0, sizeof *r);
    sqlite_db_copy_text(r->ns, sizeof r->ns, sqlite3_column_text(s, 0));
    sqlite_db_copy_text(r->id, sizeof r->id, sqlite3_column_text(s, 1));
    sqlite_db_copy_text(r->model, sizeof r->model, sqlite3_column_text(s, 2));
    r->topology = (session_topology)sqlite3_column_int(s, 3);
    r->max_turns = (uint32_t)sqlite3_column_int64(s, 4);
    r->turns = (uint32_t)sqlite3_column_int64(s, 5);
    r->next = (uint32_t)sqlite3_column_int64(s, 6);
    r->done = sqlite3_column_int(s, 7);
    r->created_at = sqlite3_column_int64(s, 8);
    r->moderator = sqlite3_column_int(s, 9);
    r->view = (session_view_kind)sqlite3_column_int(s, 10);
}

#define SESSION_COLUMNS                                                                    \
    "ns, id, model, topology, max_turns, turns, next, done, created_at, moderator, view"

/* Fills r's agents; call under db_lock. */
static sem_status read_agents(session_db *d, session_record *r, sem_err *err)
{
    sqlite3_stmt *s = prepare(d,
                              "SELECT id, name, role, system, persistent FROM session_agents "
                              "WHERE ns = ?1 AND session = ?2 ORDER BY idx",
                              r->ns, r->id, err);
    if (!s)
        return err->status;
    sem_status st = SEM_OK;
    int rc = SQLITE_DONE;
    while (st == SEM_OK && r->n_agents < SESSION_AGENTS_MAX &&
           (rc = sqlite3_step(s)) == SQLITE_ROW) {
        session_agent *a = &r->agents[r->n_agents++];
        sqlite_db_copy_text(a->id, sizeof a->id, sqlite3_column_text(s, 0));
        sqlite_db_copy_text(a->name, sizeof a->name, sqlite3_column_text(s, 1));
        a->role = sqlite_db_dup_text(sqlite3_column_text(s, 2));
        a->system = sqlite_db_dup_text(sqlite3_column_text(s, 3));
        a->persistent = sqlite3_column_int(s, 4);
        if (!a->role || !a->system)
            st = sem_err_set(err, SEM_ENOMEM, "session store: out of memory reading '%s'", r->id);
    }
    if (st == SEM_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        st = db_error(d, err, "read agents");
    sqlite3_finalize(s);
    if (st != SEM_OK)
        session_record_free(r);
    return st;
}

/* ------------------------------------------------------------ the port */

static sem_status insert_agents(session_db *d, const session_record *r, sem_err *err)
{
    sem_status st = SEM_OK;
    for (size_t i = 0; st == SEM_OK && i < r->n_agents; i++) {
        const session_agent *a = &r->agents[i];
        sqlite3_stmt *s = prepare(d,
                                  "INSERT INTO session_agents(ns, session, idx, id, name, role, "
                                  "system, persistent) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                  r->ns, r->id, err);
        if (s) {
            sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
            sqlite3_bind_text(s, 4, a->id, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 5, a->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 6, a->role ? a->role : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 7, a->system ? a->system : "", -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 8, a->persistent != 0);
        }
        st = run(d, s, "insert agent", err);
    }
    return st;
}

static sem_status ss_create(void *self, const session_record *r, sem_err *err)
{
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    session_db *d = self;
    pthread_mutex_lock(&d->db_lock);
    sem_status st = exec(d, "BEGIN IMMEDIATE;", "begin", err);
    if (st == SEM_OK) {
        sqlite3_stmt *s = prepare(d,
                                  "INSERT INTO sessions(" SESSION_COLUMNS
                                  ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                  r->ns, r->id, err);
        if (s) {
            sqlite3_bind_text(s, 3, r->model, -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 4, (int)r->topology);
            sqlite3_bind_int64(s, 5, r->max_turns);
            sqlite3_bind_int64(s, 6, r->turns);
            sqlite3_bind_int64(s, 7, r->next);
            sqlite3_bind_int(s, 8, r->done != 0);
            sqlite3_bind_int64(s, 9, r->created_at);
            sqlite3_bind_int(s, 10, r->moderator);
            sqlite3_bind_int(s, 11, (int)r->view);
        }
        st = run(d, s, "insert session", err);
        if (st != SEM_OK && (sqlite3_extended_errcode(d->db) & 0xff) == SQLITE_CONSTRAINT)
            st = sem_err_set(err, SEM_EREQUEST, "session '%s' already exists", r->id);
        if (st == SEM_OK)
            st = insert_agents(d, r, err);
        st = end_write(d, st, err);
    }
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static sem_status ss_get(void *self, const char *ns, const char *id, session_record *out,
                         sem_err *err)
{
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    session_db *d = self;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = prepare(d, "SELECT " SESSION_COLUMNS " FROM sessions "
                                 "WHERE ns = ?1 AND id = ?2", ns, id, err);
    sem_status st = s ? SEM_OK : err->status;
    if (s) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            read_session(s, out);
        else if (rc == SQLITE_DONE)
            st = sem_err_set(err, SEM_ENOTFOUND, "session '%s' not found", id);
        else
            st = db_error(d, err, "get");
        sqlite3_finalize(s);
    }
    if (st == SEM_OK)
        st = read_agents(d, out, err);
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static void free_list(session_record *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        session_record_free(&v[i]);
    free(v);
}

static sem_status ss_list(void *self, const char *ns, session_record **out, size_t *n,
                          sem_err *err)
{
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    session_db *d = self;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = prepare(d, "SELECT " SESSION_COLUMNS " FROM sessions WHERE ns = ?1 "
                                 "ORDER BY seq DESC", ns, NULL, err);
    sem_status st = s ? SEM_OK : err->status;
    session_record *v = NULL;
    size_t len = 0, cap = 0;
    int rc = SQLITE_DONE;
    while (st == SEM_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            size_t c = cap ? cap * 2 : 8;
            session_record *g = realloc(v, c * sizeof *g);
            if (!g) {
                st = sem_err_set(err, SEM_ENOMEM, "session store: out of memory listing");
                break;
            }
            v = g;
            cap = c;
        }
        read_session(s, &v[len++]);
    }
    if (st == SEM_OK && rc != SQLITE_DONE)
        st = db_error(d, err, "list");
    sqlite3_finalize(s);
    for (size_t i = 0; st == SEM_OK && i < len; i++)
        if ((st = read_agents(d, &v[i], err)) != SEM_OK)
            v[i].n_agents = 0; /* read_agents freed what it read */
    pthread_mutex_unlock(&d->db_lock);
    if (st != SEM_OK) {
        free_list(v, len);
        return st;
    }
    *out = v;
    *n = len;
    return SEM_OK;
}

static sem_status ss_remove(void *self, const char *ns, const char *id, sem_err *err)
{
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    session_db *d = self;
    pthread_mutex_lock(&d->db_lock);
    sem_status st = exec(d, "BEGIN IMMEDIATE;", "begin", err);
    if (st == SEM_OK) {
        st = run(d, prepare(d, "DELETE FROM sessions WHERE ns = ?1 AND id = ?2", ns, id, err),
                 "delete session", err);
        if (st == SEM_OK && sqlite3_changes(d->db) == 0)
            st = sem_err_set(err, SEM_ENOTFOUND, "session '%s' not found", id);
        if (st == SEM_OK)
            st = run(d, prepare(d, "DELETE FROM session_agents WHERE ns = ?1 AND session = ?2",
                                ns, id, err),
                     "delete agents", err);
        if (st == SEM_OK)
            st = run(d, prepare(d, "DELETE FROM session_messages WHERE ns = ?1 AND session = ?2",
                                ns, id, err),
                     "delete transcript", err);
        st = end_write(d, st, err);
    }
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

/* The transcript's last seq (0 when empty); call under db_lock. */
static sem_status last_seq(session_db *d, const char *ns, const char *id, uint64_t *out,
                           sem_err *err)
{
    sqlite3_stmt *s = prepare(d, "SELECT coalesce(max(seq), 0) FROM session_messages "
                                 "WHERE ns = ?1 AND session = ?2", ns, id, err);
    if (!s)
        return err->status;
    sem_status st = SEM_OK;
    if (sqlite3_step(s) == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    else
        st = db_error(d, err, "last message");
    sqlite3_finalize(s);
    return st;
}

static sem_status insert_message(session_db *d, const char *ns, const char *id,
                                 const session_message *m, sem_err *err)
{
    sqlite3_stmt *s = prepare(d,
                              "INSERT INTO session_messages(ns, session, seq, speaker, name, "
                              "channel, text, tokens, created_at, batch, prompt_tokens, cached_tokens) "
                              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                              ns, id, err);
    if (s) {
        sqlite3_bind_int64(s, 3, (sqlite3_int64)m->seq);
        sqlite3_bind_text(s, 4, m->speaker, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, m->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, m->channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, m->text ? m->text : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 8, m->tokens);
        sqlite3_bind_int64(s, 9, m->created_at);
        sqlite3_bind_int64(s, 10, (sqlite3_int64)m->batch);
        sqlite3_bind_int64(s, 11, m->prompt_tokens);
        sqlite3_bind_int64(s, 12, m->cached_tokens);
    }
    return run(d, s, "insert message", err);
}

/* Sets the counters (set NULL: only checks that the session exists);
 * call under db_lock, in a transaction. */
static sem_status set_counters(session_db *d, const char *ns, const char *id,
                               const session_counters *set, sem_err *err)
{
    sqlite3_stmt *s = prepare(d,
                              set ? "UPDATE sessions SET turns = ?3, next = ?4, done = ?5 "
                                    "WHERE ns = ?1 AND id = ?2"
                                  : "UPDATE sessions SET turns = turns WHERE ns = ?1 AND id = ?2",
                              ns, id, err);
    if (s && set) {
        sqlite3_bind_int64(s, 3, set->turns);
        sqlite3_bind_int64(s, 4, set->next);
        sqlite3_bind_int(s, 5, set->done != 0);
    }
    sem_status st = run(d, s, "update session", err);
    if (st == SEM_OK && sqlite3_changes(d->db) == 0)
        st = sem_err_set(err, SEM_ENOTFOUND, "session '%s' not found", id);
    return st;
}

static sem_status ss_append(void *self, const char *ns, const char *id, session_message *m,
                            size_t n, const session_counters *set, sem_err *err)
{
    session_db *d = self;
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    uint64_t seq = 0;
    pthread_mutex_lock(&d->db_lock);
    sem_status st = exec(d, "BEGIN IMMEDIATE;", "begin", err);
    if (st == SEM_OK) {
        st = set_counters(d, ns, id, set, err);
        if (st == SEM_OK)
            st = last_seq(d, ns, id, &seq, err);
        for (size_t i = 0; st == SEM_OK && i < n; i++) {
            m[i].seq = seq + 1 + i;
            m[i].batch = seq + 1;
            st = insert_message(d, ns, id, &m[i], err);
        }
        st = end_write(d, st, err);
    }
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static sem_status ss_claim(void *self, const char *ns, const char *id, int busy, sem_err *err)
{
    session_db *d = self;
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = prepare(d,
                              busy ? "UPDATE sessions SET running = 1 "
                                     "WHERE ns = ?1 AND id = ?2 AND running = 0"
                                   : "UPDATE sessions SET running = 0 WHERE ns = ?1 AND id = ?2",
                              ns, id, err);
    sem_status st = run(d, s, "mark running", err);
    if (st == SEM_OK && sqlite3_changes(d->db) == 0) {
        sqlite3_stmt *q = prepare(d, "SELECT 1 FROM sessions WHERE ns = ?1 AND id = ?2", ns, id,
                                  err);
        int found = q && sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
        st = !found  ? sem_err_set(err, SEM_ENOTFOUND, "session '%s' not found", id)
             : busy ? sem_err_set(err, SEM_EBUSY, "session '%s' is running a turn", id)
                    : SEM_OK;
    }
    pthread_mutex_unlock(&d->db_lock);
    return st;
}

static sem_status ss_transcript(void *self, const char *ns, const char *id,
                                session_message **out, size_t *n, sem_err *err)
{
    sem_err unread;
    err = err ? err : &unread; /* callers may leave the detail unread */
    session_db *d = self;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&d->db_lock);
    sqlite3_stmt *s = prepare(d,
                              "SELECT seq, speaker, name, channel, text, tokens, created_at, batch, "
                              "prompt_tokens, cached_tokens "
                              "FROM session_messages WHERE ns = ?1 AND session = ?2 ORDER BY seq",
                              ns, id, err);
    sem_status st = s ? SEM_OK : err->status;
    session_message *v = NULL;
    size_t len = 0, cap = 0;
    int rc = SQLITE_DONE;
    while (st == SEM_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            size_t c = cap ? cap * 2 : 16;
            session_message *g = realloc(v, c * sizeof *g);
            if (!g) {
                st = sem_err_set(err, SEM_ENOMEM, "session store: out of memory reading '%s'", id);
                break;
            }
            v = g;
            cap = c;
        }
        session_message *m = &v[len++];
        memset(m, 0, sizeof *m);
        m->seq = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite_db_copy_text(m->speaker, sizeof m->speaker, sqlite3_column_text(s, 1));
        sqlite_db_copy_text(m->name, sizeof m->name, sqlite3_column_text(s, 2));
        sqlite_db_copy_text(m->channel, sizeof m->channel, sqlite3_column_text(s, 3));
        m->text = sqlite_db_dup_text(sqlite3_column_text(s, 4));
        m->tokens = (uint32_t)sqlite3_column_int64(s, 5);
        m->created_at = sqlite3_column_int64(s, 6);
        m->batch = (uint64_t)sqlite3_column_int64(s, 7);
        m->prompt_tokens = (uint32_t)sqlite3_column_int64(s, 8);
        m->cached_tokens = (uint32_t)sqlite3_column_int64(s, 9);
        if (!m->text)
            st = sem_err_set(err, SEM_ENOMEM, "session store: out of memory reading '%s'", id);
    }
    if (st == SEM_OK && rc != SQLITE_DONE)
        st = db_error(d, err, "transcript");
    sqlite3_finalize(s);
    pthread_mutex_unlock(&d->db_lock);
    if (st != SEM_OK) {
        session_messages_free(v, len);
        return st;
    }
    *out = v;
    *n = len;
    return SEM_OK;
}

static const session_store_ops ops = {ss_create, ss_get, ss_list, ss_remove, ss_append,
                                      ss_claim, ss_transcript};

session_store session_db_port(session_db *d) { return (session_store){&ops, d}; }
