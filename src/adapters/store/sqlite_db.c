/*
 * sqlite_db.c - opening an SQLite store, and its errors.
 */
#include "sqlite_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sem_status sqlite_db_status(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? SEM_ENOMEM : SEM_EIO;
}

sem_status sqlite_db_error(sqlite3 *db, const char *label, const char *path, const char *what,
                           sem_err *err)
{
    return sem_err_set(err, sqlite_db_status(sqlite3_errcode(db)), "%s %s: %s: %s", label, path,
                       what, sqlite3_errmsg(db));
}

sem_status sqlite_db_exec(sqlite3 *db, const char *label, const char *path, const char *sql,
                          const char *what, sem_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return SEM_OK;
    sem_status st = sem_err_set(err, sqlite_db_status(rc), "%s %s: %s: %s", label, path, what,
                                msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return st;
}

sqlite3 *sqlite_db_open(const char *path, const char *label, const char *schema, int version,
                        sem_err *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        if (db)
            sqlite_db_error(db, label, path, "open", err);
        else
            sem_err_set(err, SEM_ENOMEM, "%s %s: out of memory", label, path);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    char version_sql[64];
    snprintf(version_sql, sizeof version_sql, "PRAGMA user_version = %d;", version);
    if (sqlite_db_exec(db, label, path, "PRAGMA journal_mode = WAL;", "set WAL mode", err) ||
        sqlite_db_exec(db, label, path, "PRAGMA synchronous = NORMAL;", "set synchronous", err) ||
        sqlite_db_exec(db, label, path, schema, "create schema", err) ||
        sqlite_db_exec(db, label, path, version_sql, "set schema version", err)) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

sem_status sqlite_db_add_column(sqlite3 *db, const char *label, const char *path,
                                const char *table, const char *column, const char *decl,
                                sem_err *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &s,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return sqlite_db_error(db, label, path, "read the schema", err);
    }
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return SEM_OK;
    if (rc != SQLITE_DONE)
        return sqlite_db_error(db, label, path, "read the schema", err);
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s;", table, decl);
    return sqlite_db_exec(db, label, path, sql, "add a column", err);
}

void sqlite_db_copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

char *sqlite_db_dup_text(const unsigned char *src)
{
    return strdup(src ? (const char *)src : "");
}
