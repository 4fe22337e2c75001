/*
 * session_store.h - multi-agent sessions in SQLite (the port is
 * ports/session_store.h).
 *
 * One SQLite file, `sessions.sqlite` in the cache folder (":memory:"
 * without one), in WAL mode with synchronous=NORMAL like the responses
 * store: a crash loses at most the last transactions, never consistency,
 * so a server restarted mid-session finds its sessions where their last
 * turn left them.
 *
 *   CREATE TABLE sessions(seq INTEGER PRIMARY KEY AUTOINCREMENT,
 *       ns TEXT, id TEXT, model TEXT, topology INTEGER, max_turns INTEGER,
 *       turns INTEGER, next INTEGER, done INTEGER, created_at INTEGER,
 *       moderator INTEGER, running INTEGER, UNIQUE(ns, id))
 *   CREATE TABLE session_agents(ns TEXT, session TEXT, idx INTEGER,
 *       id TEXT, name TEXT, role TEXT, system TEXT, persistent INTEGER,
 *       PRIMARY KEY(ns, session, idx))
 *   CREATE TABLE session_messages(ns TEXT, session TEXT, seq INTEGER,
 *       batch INTEGER, speaker TEXT, name TEXT, channel TEXT, text TEXT,
 *       tokens INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER,
 *       created_at INTEGER, PRIMARY KEY(ns, session, seq))
 *
 * `running` marks a session whose turn is under way (claim); open clears
 * it. Every write (create, append, remove) is one transaction over the three
 * tables: a session is never seen without its agents, nor a turn's
 * messages without the counters that count them.
 *
 * Threads: any thread may call any function. One mutex, `db_lock`,
 * guards the connection for the SQLite calls of one function.
 */
#ifndef SEM_STORE_SESSION_STORE_H
#define SEM_STORE_SESSION_STORE_H

#include "domain/status.h"
#include "ports/session_store.h"

typedef struct session_db session_db;

/* Opens (creating if needed) the database at path (a file, or
 * ":memory:"); SEM_EIO with SQLite's message, SEM_ENOMEM when SQLite ran
 * out of memory. */
session_db *session_db_open(const char *path, sem_err *err);
void session_db_close(session_db *db);

/* The port over db (borrowed: db must outlive its users). */
session_store session_db_port(session_db *db);

#endif
