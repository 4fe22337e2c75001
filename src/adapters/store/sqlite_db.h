/*
 * sqlite_db.h - what the SQLite-backed stores (responses, sessions) share:
 * opening a database the same way, and SQLite's errors as sem_err.
 *
 * Threads: as SQLite's connection (opened SQLITE_OPEN_NOMUTEX: the caller
 * serializes its use). No state of its own.
 */
#ifndef SEM_SQLITE_DB_H
#define SEM_SQLITE_DB_H

#include <sqlite3.h>
#include <stddef.h>

#include "domain/status.h"

/* Opens path (":memory:" too) read-write, creating it: a 5 s busy
 * timeout, extended result codes, WAL, synchronous NORMAL; then runs
 * schema and sets PRAGMA user_version. label names the store in errors
 * ("session store"). NULL with err. */
sqlite3 *sqlite_db_open(const char *path, const char *label, const char *schema, int version,
                        sem_err *err);

/* SQLite's lack of memory is ours (SEM_ENOMEM); anything else is I/O. */
sem_status sqlite_db_status(int rc);
/* "<label> <path>: <what>: <sqlite's message>" with the status of the last error. */
sem_status sqlite_db_error(sqlite3 *db, const char *label, const char *path, const char *what,
                           sem_err *err);
/* sqlite3_exec of sql; an error as sqlite_db_error. */
sem_status sqlite_db_exec(sqlite3 *db, const char *label, const char *path, const char *sql,
                          const char *what, sem_err *err);

/* Adds column `decl` ("name TYPE ...") to table when a database made by
 * an older schema lacks it: the migration of a column added later, which
 * needs a DEFAULT. */
sem_status sqlite_db_add_column(sqlite3 *db, const char *label, const char *path,
                                const char *table, const char *column, const char *decl,
                                sem_err *err);

/* A text column copied (NULL reads as ""). */
void sqlite_db_copy_text(char *dst, size_t cap, const unsigned char *src);
char *sqlite_db_dup_text(const unsigned char *src);

#endif
