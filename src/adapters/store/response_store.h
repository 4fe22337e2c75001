/*
 * response_store.h - the stored responses of the Responses API in SQLite
 * (the port is ports/response_store.h).
 *
 * One SQLite file, `responses.sqlite` in the cache folder (":memory:"
 * without one), in WAL mode with synchronous=NORMAL like the agent index:
 * a crash loses at most the last transactions, never consistency.
 *
 *   CREATE TABLE responses(seq INTEGER PRIMARY KEY AUTOINCREMENT,
 *       ns TEXT, id TEXT, previous_id TEXT, agent TEXT, agent_tokens INTEGER,
 *       created_at INTEGER, input TEXT, response TEXT, UNIQUE(ns, id))
 *   CREATE INDEX responses_agent ON responses(ns, agent, seq)
 *   CREATE INDEX responses_age ON responses(created_at)
 *
 * seq orders records by arrival: an agent's latest response is its
 * highest seq, and the count limit deletes the lowest.
 *
 * Retention: max_count (0: no limit) records in all, oldest first out;
 * max_age_s (0: no limit) seconds after created_at. Both are applied at
 * open and after each put.
 *
 * Threads: any thread may call any function. One mutex, `db_lock`, guards
 * the connection and its statements (prepared once at open) for the
 * SQLite calls of one function.
 */
#ifndef SEM_STORE_RESPONSE_STORE_H
#define SEM_STORE_RESPONSE_STORE_H

#include <stdint.h>

#include "domain/status.h"
#include "ports/response_store.h"

typedef struct response_db response_db;

typedef struct response_db_opts {
    const char *path;   /* file, or ":memory:" */
    uint64_t max_count; /* 0: no limit */
    uint64_t max_age_s; /* 0: no limit */
    int64_t now_s;      /* the clock at open, for the age limit */
} response_db_opts;

/* Opens (creating if needed) the database; SEM_EIO with SQLite's message
 * (SEM_ENOMEM when SQLite ran out of memory). */
response_db *response_db_open(const response_db_opts *o, sem_err *err);
void response_db_close(response_db *db);

/* The number of records (tests and logs). */
sem_status response_db_count(response_db *db, uint64_t *out, sem_err *err);

/* The port over db (borrowed: db must outlive its users). */
response_store response_db_port(response_db *db);

#endif
