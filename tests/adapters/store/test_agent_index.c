/* Specification of agent_index.h: the SQLite index of agent files. */
#include "store_test_util.h"

#include <sqlite3.h>

#include "adapters/store/agent_index.h"

typedef struct fixture {
    char *dir;
    char path[600];
    agent_index *ix;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    snprintf(f->path, sizeof f->path, "%s/index.sqlite", f->dir);
    sem_err err = {0};
    f->ix = agent_index_open(f->path, &err);
    if (!f->ix)
        fail_msg("open: %s", err.detail);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    agent_index_close(f->ix);
    remove_dir(f->dir);
    free(f);
    return 0;
}

static agent_row row(const char *key, uint32_t tokens, uint64_t fp, int64_t t)
{
    agent_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.key, sizeof r.key, "%s", key);
    snprintf(r.file, sizeof r.file, "%s.kv", key);
    r.tokens = tokens;
    r.bytes = 1000u * tokens;
    r.fingerprint = fp;
    r.payload = KV_PAYLOAD_Q8_0;
    r.created_ms = t;
    r.last_use_ms = t;
    return r;
}

static void put_then_get(void **state)
{
    fixture *f = *state;
    agent_row r = row("alice", 12, 0xfedcba9876543210ull, 1000), got;
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    assert_int_equal(agent_index_get(f->ix, "alice", &got, NULL), SEM_OK);
    assert_string_equal(got.key, "alice");
    assert_string_equal(got.file, "alice.kv");
    assert_int_equal(got.tokens, 12);
    assert_int_equal(got.bytes, 12000);
    assert_true(got.fingerprint == 0xfedcba9876543210ull); /* all 64 bits survive */
    assert_int_equal(got.payload, KV_PAYLOAD_Q8_0);
    assert_int_equal(got.created_ms, 1000);
    sem_err err = {0};
    assert_int_equal(agent_index_get(f->ix, "bob", &got, &err), SEM_ENOTFOUND);
    assert_contains(err.detail, "'bob'");
}

/* Replacing a file keeps when the agent was created and how it was used. */
static void put_again_keeps_created_and_counters(void **state)
{
    fixture *f = *state;
    agent_row r = row("a", 10, 1, 1000), got;
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    assert_int_equal(agent_index_touch(f->ix, "a", 1, 1500, 1, 7, NULL), SEM_OK);
    r = row("a", 20, 1, 2000);
    r.payload = KV_PAYLOAD_F16;
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    assert_int_equal(agent_index_get(f->ix, "a", &got, NULL), SEM_OK);
    assert_int_equal(got.tokens, 20);
    assert_int_equal(got.payload, KV_PAYLOAD_F16);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.last_use_ms, 2000);
    assert_int_equal(got.hits, 1);
    assert_int_equal(got.tokens_saved, 7);
}

static void touch_counts_uses_of_this_model_only(void **state)
{
    fixture *f = *state;
    agent_row r = row("a", 10, 1, 1000), got;
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    assert_int_equal(agent_index_touch(f->ix, "a", 1, 3000, 1, 100, NULL), SEM_OK);
    assert_int_equal(agent_index_touch(f->ix, "a", 1, 4000, 1, 50, NULL), SEM_OK);
    assert_int_equal(agent_index_touch(f->ix, "a", 2, 5000, 1, 50, NULL), SEM_ENOTFOUND);
    assert_int_equal(agent_index_touch(f->ix, "zz", 1, 5000, 1, 50, NULL), SEM_ENOTFOUND);
    assert_int_equal(agent_index_get(f->ix, "a", &got, NULL), SEM_OK);
    assert_int_equal(got.hits, 2);
    assert_int_equal(got.tokens_saved, 150);
    assert_int_equal(got.last_use_ms, 4000);
}

/* list: one model's rows, least recently used first, filtered by prefix
 * (taken literally: '_' and '%' are not wildcards). */
static void list_is_lru_first_per_model_and_prefix(void **state)
{
    fixture *f = *state;
    const char *keys[] = {"team_a", "team_b", "teamXc", "solo", "other"};
    int64_t times[] = {300, 100, 200, 50, 10};
    uint64_t fps[] = {1, 1, 1, 1, 2};
    for (int i = 0; i < 5; i++) {
        agent_row r = row(keys[i], 1, fps[i], times[i]);
        assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    }
    agent_row *rows;
    size_t n;
    assert_int_equal(agent_index_list(f->ix, 1, "", &rows, &n, NULL), SEM_OK);
    assert_int_equal(n, 4);
    assert_string_equal(rows[0].key, "solo");
    assert_string_equal(rows[1].key, "team_b");
    assert_string_equal(rows[2].key, "teamXc");
    assert_string_equal(rows[3].key, "team_a");
    free(rows);
    assert_int_equal(agent_index_list(f->ix, 1, "team_", &rows, &n, NULL), SEM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].key, "team_b");
    free(rows);
    assert_int_equal(agent_index_list(f->ix, 1, "nobody", &rows, &n, NULL), SEM_OK);
    assert_int_equal(n, 0);
    assert_null(rows);
    assert_int_equal(agent_index_all(f->ix, &rows, &n, NULL), SEM_OK);
    assert_int_equal(n, 5);
    assert_string_equal(rows[0].key, "other"); /* by key */
    free(rows);
    uint64_t total = 0;
    assert_int_equal(agent_index_total_bytes(f->ix, 1, &total, NULL), SEM_OK);
    assert_int_equal(total, 4000);
    assert_int_equal(agent_index_total_bytes(f->ix, 3, &total, NULL), SEM_OK);
    assert_int_equal(total, 0);
    /* The folder's view, every model together: the budget's order and sum. */
    assert_int_equal(agent_index_lru_all(f->ix, &rows, &n, NULL), SEM_OK);
    assert_int_equal(n, 5);
    const char *lru[] = {"other", "solo", "team_b", "teamXc", "team_a"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(rows[i].key, lru[i]);
    free(rows);
    assert_int_equal(agent_index_total_bytes_all(f->ix, &total, NULL), SEM_OK);
    assert_int_equal(total, 5000);
}

static void delete_says_whether_there_was_a_row(void **state)
{
    fixture *f = *state;
    agent_row r = row("a", 1, 1, 1);
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    int deleted = -1;
    assert_int_equal(agent_index_delete(f->ix, "a", &deleted, NULL), SEM_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(agent_index_delete(f->ix, "a", &deleted, NULL), SEM_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(agent_index_get(f->ix, "a", &r, NULL), SEM_ENOTFOUND);
}

/* The index survives a restart, in WAL mode. */
static void rows_survive_reopening_in_wal_mode(void **state)
{
    fixture *f = *state;
    agent_row r = row("keep", 5, 9, 123);
    assert_int_equal(agent_index_put(f->ix, &r, NULL), SEM_OK);
    assert_int_equal(agent_index_touch(f->ix, "keep", 9, 456, 1, 3, NULL), SEM_OK);
    agent_index_close(f->ix);
    f->ix = agent_index_open(f->path, NULL);
    assert_non_null(f->ix);
    agent_row got;
    assert_int_equal(agent_index_get(f->ix, "keep", &got, NULL), SEM_OK);
    assert_int_equal(got.hits, 1);
    assert_int_equal(got.tokens_saved, 3);
    assert_int_equal(got.last_use_ms, 456);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void opening_a_file_that_is_not_a_database_fails(void **state)
{
    fixture *f = *state;
    char bad[700];
    snprintf(bad, sizeof bad, "%s/junk.sqlite", f->dir);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    write_file(bad, junk, sizeof junk);
    sem_err err = {0};
    assert_null(agent_index_open(bad, &err));
    assert_int_equal(err.status, SEM_EIO);
    assert_contains(err.detail, "junk.sqlite");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(put_then_get),
        T(put_again_keeps_created_and_counters),
        T(touch_counts_uses_of_this_model_only),
        T(list_is_lru_first_per_model_and_prefix),
        T(delete_says_whether_there_was_a_row),
        T(rows_survive_reopening_in_wal_mode),
        T(opening_a_file_that_is_not_a_database_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
