/* Specification of session_store.h: sessions, agents and transcripts in SQLite. */
#include "store_test_util.h"

#include <sqlite3.h>

#include "adapters/store/session_store.h"

typedef struct fixture {
    char *dir;
    char path[600];
    session_db *db;
    session_store ss;
} fixture;

static session_db *open_db(const char *path)
{
    sem_err err = {0};
    session_db *db = session_db_open(path, &err);
    if (!db)
        fail_msg("open: %s", err.detail);
    return db;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    snprintf(f->path, sizeof f->path, "%s/sessions.sqlite", f->dir);
    f->db = open_db(f->path);
    f->ss = session_db_port(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    session_db_close(f->db);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* A session of n agents a0, a1, ... (a1 persistent); role and system borrowed. */
static session_record rec(const char *ns, const char *id, size_t n)
{
    session_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.ns, sizeof r.ns, "%s", ns);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.model, sizeof r.model, "%s", "stories");
    r.topology = SESSION_WHISPER;
    r.view = SESSION_VIEW_SHARED;
    r.max_turns = 7;
    r.created_at = 1000;
    r.moderator = (int)n - 1;
    r.n_agents = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r.agents[i].id, sizeof r.agents[i].id, "a%zu", i);
        snprintf(r.agents[i].name, sizeof r.agents[i].name, "Agent %zu", i);
        r.agents[i].role = (char *)"critic";
        r.agents[i].system = (char *)"You review.";
        r.agents[i].persistent = i == 1;
    }
    return r;
}

static void create(fixture *f, const session_record *r)
{
    sem_err err = {0};
    if (f->ss.ops->create(f->ss.self, r, &err) != SEM_OK)
        fail_msg("create %s: %s", r->id, err.detail);
}

static session_message msg(const char *speaker, const char *channel, const char *text)
{
    session_message m;
    memset(&m, 0, sizeof m);
    snprintf(m.speaker, sizeof m.speaker, "%s", speaker);
    snprintf(m.name, sizeof m.name, "%s", *speaker ? speaker : "human");
    snprintf(m.channel, sizeof m.channel, "%s", channel);
    m.text = (char *)text;
    m.tokens = (uint32_t)strlen(text);
    m.created_at = 2000;
    return m;
}

static void create_then_get_every_field(void **state)
{
    fixture *f = *state;
    session_record r = rec("ns1", "sess_1", 3);
    create(f, &r);
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "ns1", "sess_1", &got, NULL), SEM_OK);
    assert_string_equal(got.model, "stories");
    assert_int_equal(got.topology, SESSION_WHISPER);
    assert_int_equal(got.view, SESSION_VIEW_SHARED);
    assert_int_equal(got.max_turns, 7);
    assert_int_equal(got.turns, 0);
    assert_int_equal(got.done, 0);
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.moderator, 2);
    assert_int_equal(got.n_agents, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(got.agents[i].id, r.agents[i].id);
        assert_string_equal(got.agents[i].name, r.agents[i].name);
        assert_string_equal(got.agents[i].role, "critic");
        assert_string_equal(got.agents[i].system, "You review.");
        assert_int_equal(got.agents[i].persistent, i == 1);
    }
    session_record_free(&got);
}

static void a_taken_id_is_refused_and_nothing_changes(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_1", 2);
    create(f, &r);
    session_record again = rec("", "sess_1", 5);
    sem_err err = {0};
    assert_int_equal(f->ss.ops->create(f->ss.self, &again, &err), SEM_EREQUEST);
    assert_contains(err.detail, "sess_1");
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_1", &got, NULL), SEM_OK);
    assert_int_equal(got.n_agents, 2);
    session_record_free(&got);
}

static void namespaces_are_apart(void **state)
{
    fixture *f = *state;
    session_record a = rec("k1", "sess_x", 1), b = rec("k2", "sess_x", 2);
    create(f, &a);
    create(f, &b);
    session_record got;
    sem_err err = {0};
    assert_int_equal(f->ss.ops->get(f->ss.self, "k3", "sess_x", &got, &err), SEM_ENOTFOUND);
    assert_contains(err.detail, "sess_x");
    assert_int_equal(f->ss.ops->get(f->ss.self, "k2", "sess_x", &got, NULL), SEM_OK);
    assert_int_equal(got.n_agents, 2);
    session_record_free(&got);
    session_record *v;
    size_t n;
    assert_int_equal(f->ss.ops->list(f->ss.self, "k1", &v, &n, NULL), SEM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].n_agents, 1);
    session_record_free(&v[0]);
    free(v);
}

static void list_is_newest_first(void **state)
{
    fixture *f = *state;
    char id[32];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "sess_%d", i);
        session_record r = rec("", id, (size_t)(i % 3) + 1);
        create(f, &r);
    }
    session_record *v;
    size_t n;
    assert_int_equal(f->ss.ops->list(f->ss.self, "", &v, &n, NULL), SEM_OK);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "sess_%zu", 11 - i);
        assert_string_equal(v[i].id, id);
        assert_int_equal(v[i].n_agents, (11 - i) % 3 + 1);
        session_record_free(&v[i]);
    }
    free(v);
    assert_int_equal(f->ss.ops->list(f->ss.self, "nobody", &v, &n, NULL), SEM_OK);
    assert_int_equal(n, 0);
    free(v);
}

static void append_numbers_messages_and_sets_counters(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_t", 3);
    create(f, &r);
    session_message first[1] = {msg("", "all", "Begin.")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_t", first, 1,
                                       &(session_counters){0, 0, 0}, NULL), SEM_OK);
    assert_int_equal(first[0].seq, 1);
    session_message turn[2] = {msg("a0", "all", "hello"), msg("a1", "a0,a1", "psst")};
    turn[1].prompt_tokens = 40;
    turn[1].cached_tokens = 31;
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_t", turn, 2,
                                       &(session_counters){2, 2, 0}, NULL), SEM_OK);
    assert_int_equal(turn[0].seq, 2);
    assert_int_equal(turn[1].seq, 3);
    assert_int_equal(turn[0].batch, 2);
    assert_int_equal(turn[1].batch, 2); /* appended together */

    session_message *m;
    size_t n;
    assert_int_equal(f->ss.ops->transcript(f->ss.self, "", "sess_t", &m, &n, NULL), SEM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].speaker, "");
    assert_string_equal(m[0].name, "human");
    assert_string_equal(m[0].text, "Begin.");
    assert_string_equal(m[1].speaker, "a0");
    assert_string_equal(m[2].channel, "a0,a1");
    assert_string_equal(m[2].text, "psst");
    assert_int_equal(m[2].tokens, 4);
    assert_int_equal(m[2].prompt_tokens, 40);
    assert_int_equal(m[2].cached_tokens, 31);
    assert_int_equal(m[2].created_at, 2000);
    assert_int_equal(m[0].batch, 1);
    assert_int_equal(m[2].batch, 2);
    session_messages_free(m, n);

    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_t", &got, NULL), SEM_OK);
    assert_int_equal(got.turns, 2);
    assert_int_equal(got.next, 2);
    assert_int_equal(got.done, 0);
    session_record_free(&got);
}

/* A message from outside leaves the counters to the turns. */
static void append_without_counters_keeps_them(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_k", 2);
    create(f, &r);
    session_message t[1] = {msg("a0", "all", "x")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_k", t, 1,
                                       &(session_counters){5, 1, 0}, NULL), SEM_OK);
    session_message m[1] = {msg("", "all", "from outside")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_k", m, 1, NULL, NULL), SEM_OK);
    assert_int_equal(m[0].seq, 2);
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_k", &got, NULL), SEM_OK);
    assert_int_equal(got.turns, 5);
    assert_int_equal(got.next, 1);
    session_record_free(&got);
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "nope", m, 1, NULL, NULL), SEM_ENOTFOUND);
}

static void append_to_a_missing_session_changes_nothing(void **state)
{
    fixture *f = *state;
    session_message m[1] = {msg("a0", "all", "x")};
    sem_err err = {0};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_none", m, 1,
                                       &(session_counters){1, 0, 0}, &err),
                     SEM_ENOTFOUND);
    assert_contains(err.detail, "sess_none");
    session_message *got;
    size_t n = 9;
    assert_int_equal(f->ss.ops->transcript(f->ss.self, "", "sess_none", &got, &n, NULL), SEM_OK);
    assert_int_equal(n, 0);
    free(got);
}

static void remove_deletes_session_agents_and_transcript(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_r", 2);
    create(f, &r);
    session_message m[1] = {msg("a0", "all", "x")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_r", m, 1,
                                       &(session_counters){1, 1, 0}, NULL), SEM_OK);
    assert_int_equal(f->ss.ops->remove(f->ss.self, "other", "sess_r", NULL), SEM_ENOTFOUND);
    assert_int_equal(f->ss.ops->remove(f->ss.self, "", "sess_r", NULL), SEM_OK);
    assert_int_equal(f->ss.ops->remove(f->ss.self, "", "sess_r", NULL), SEM_ENOTFOUND);
    session_message *got;
    size_t n = 9;
    assert_int_equal(f->ss.ops->transcript(f->ss.self, "", "sess_r", &got, &n, NULL), SEM_OK);
    assert_int_equal(n, 0);
    free(got);
    /* The id is free again, with no agents left over from before. */
    session_record again = rec("", "sess_r", 1);
    create(f, &again);
    session_record g;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_r", &g, NULL), SEM_OK);
    assert_int_equal(g.n_agents, 1);
    session_record_free(&g);
}

/* A restarted server finds the session where its last turn left it. */
static void survives_a_reopen(void **state)
{
    fixture *f = *state;
    session_record r = rec("k", "sess_p", 4);
    create(f, &r);
    session_message m[2] = {msg("a0", "all", "one"), msg("a1", "all", "two")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "k", "sess_p", m, 2,
                                       &(session_counters){7, 3, 1}, NULL), SEM_OK);
    session_db_close(f->db);
    f->db = open_db(f->path);
    f->ss = session_db_port(f->db);
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "k", "sess_p", &got, NULL), SEM_OK);
    assert_int_equal(got.n_agents, 4);
    assert_int_equal(got.turns, 7);
    assert_int_equal(got.next, 3);
    assert_int_equal(got.done, 1);
    session_record_free(&got);
    session_message *t;
    size_t n;
    assert_int_equal(f->ss.ops->transcript(f->ss.self, "k", "sess_p", &t, &n, NULL), SEM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(t[1].text, "two");
    session_messages_free(t, n);
}

/* A database written before sessions had a transcript layout opens, gains
 * the column, and its sessions read as "own", the only layout they had. */
static void a_version_1_database_is_migrated(void **state)
{
    fixture *f = *state;
    session_db_close(f->db);
    f->db = NULL;
    remove(f->path);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(raw,
                     "CREATE TABLE sessions(seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT "
                     "NULL, id TEXT NOT NULL, model TEXT NOT NULL, topology INTEGER NOT NULL, "
                     "max_turns INTEGER NOT NULL, turns INTEGER NOT NULL, next INTEGER NOT "
                     "NULL, done INTEGER NOT NULL, created_at INTEGER NOT NULL, moderator "
                     "INTEGER NOT NULL, running INTEGER NOT NULL DEFAULT 0, UNIQUE(ns, id));"
                     "INSERT INTO sessions(ns, id, model, topology, max_turns, turns, next, "
                     "done, created_at, moderator) VALUES('k', 'sess_old', 'm', 1, 0, 2, 0, 0, "
                     "5, -1);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);
    f->db = open_db(f->path);
    f->ss = session_db_port(f->db);
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "k", "sess_old", &got, NULL), SEM_OK);
    assert_int_equal(got.topology, SESSION_BROADCAST);
    assert_int_equal(got.turns, 2);
    assert_int_equal(got.view, SESSION_VIEW_OWN);
    session_record_free(&got);
    session_record r = rec("k", "sess_new", 2);
    create(f, &r); /* the new column is written too */
    assert_int_equal(f->ss.ops->get(f->ss.self, "k", "sess_new", &got, NULL), SEM_OK);
    assert_int_equal(got.view, SESSION_VIEW_SHARED);
    session_record_free(&got);
}

static void one_turn_at_a_time(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_c", 2);
    create(f, &r);
    sem_err err = {0};
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 1, &err), SEM_OK);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 1, &err), SEM_EBUSY);
    assert_contains(err.detail, "sess_c");
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 0, NULL), SEM_OK);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 1, NULL), SEM_OK);
    /* A round appends its turns one after the other under one claim. */
    session_message m[1] = {msg("a0", "all", "x")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_c", m, 1,
                                       &(session_counters){1, 1, 0}, NULL), SEM_OK);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 1, NULL), SEM_EBUSY);
    /* A reopened store has no turn running. */
    session_db_close(f->db);
    f->db = open_db(f->path);
    f->ss = session_db_port(f->db);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "sess_c", 1, NULL), SEM_OK);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "", "nope", 1, &err), SEM_ENOTFOUND);
    assert_int_equal(f->ss.ops->claim(f->ss.self, "other", "sess_c", 0, NULL), SEM_ENOTFOUND);
}

/* Runs sql on the store's file from a connection of the test's own: a
 * trigger that makes one insert fail, halfway through an operation. */
static void inject(fixture *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* An append that fails on its second message leaves the transcript and
 * the counters as they were. */
static void a_failed_append_changes_nothing(void **state)
{
    fixture *f = *state;
    session_record r = rec("", "sess_f", 2);
    create(f, &r);
    session_message one[1] = {msg("a0", "all", "one")};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_f", one, 1,
                                       &(session_counters){1, 1, 0}, NULL), SEM_OK);
    inject(f, "CREATE TRIGGER inject AFTER INSERT ON session_messages WHEN NEW.seq = 3 "
              "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    session_message two[2] = {msg("a1", "all", "two"), msg("a0", "all", "three")};
    sem_err err = {0};
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_f", two, 2,
                                       &(session_counters){3, 1, 1}, &err), SEM_EIO);
    assert_contains(err.detail, "injected failure");
    session_message *t;
    size_t n;
    assert_int_equal(f->ss.ops->transcript(f->ss.self, "", "sess_f", &t, &n, NULL), SEM_OK);
    assert_int_equal(n, 1);
    session_messages_free(t, n);
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_f", &got, NULL), SEM_OK);
    assert_int_equal(got.turns, 1);
    assert_int_equal(got.done, 0);
    session_record_free(&got);
    inject(f, "DROP TRIGGER inject;");
    assert_int_equal(f->ss.ops->append(f->ss.self, "", "sess_f", two, 2,
                                       &(session_counters){3, 1, 1}, NULL), SEM_OK);
    assert_int_equal(two[0].seq, 2);
}

/* A create that fails on its second agent leaves no session behind. */
static void a_failed_create_leaves_nothing(void **state)
{
    fixture *f = *state;
    inject(f, "CREATE TRIGGER inject AFTER INSERT ON session_agents WHEN NEW.idx = 1 "
              "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    session_record r = rec("", "sess_g", 3);
    sem_err err = {0};
    assert_int_equal(f->ss.ops->create(f->ss.self, &r, &err), SEM_EIO);
    assert_contains(err.detail, "injected failure");
    session_record got;
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_g", &got, NULL), SEM_ENOTFOUND);
    inject(f, "DROP TRIGGER inject;");
    create(f, &r);
    assert_int_equal(f->ss.ops->get(f->ss.self, "", "sess_g", &got, NULL), SEM_OK);
    assert_int_equal(got.n_agents, 3);
    session_record_free(&got);
}

static void open_fails_with_the_path(void **state)
{
    (void)state;
    sem_err err = {0};
    assert_null(session_db_open("/nonexistent-folder/x/sessions.sqlite", &err));
    assert_int_equal(err.status, SEM_EIO);
    assert_contains(err.detail, "/nonexistent-folder/x/sessions.sqlite");
    assert_null(session_db_open(NULL, &err));
    assert_int_equal(err.status, SEM_EINVAL);
}

/* Without a cache folder the store lives in memory; errors may go unread. */
static void in_memory(void **state)
{
    (void)state;
    session_db *db = session_db_open(":memory:", NULL);
    assert_non_null(db);
    session_store ss = session_db_port(db);
    session_record r = rec("", "sess_m", 32);
    assert_int_equal(ss.ops->create(ss.self, &r, NULL), SEM_OK);
    assert_int_equal(ss.ops->create(ss.self, &r, NULL), SEM_EREQUEST);
    session_record got;
    assert_int_equal(ss.ops->get(ss.self, "", "sess_m", &got, NULL), SEM_OK);
    assert_int_equal(got.n_agents, 32);
    session_record_free(&got);
    assert_int_equal(ss.ops->get(ss.self, "", "nope", &got, NULL), SEM_ENOTFOUND);
    session_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_then_get_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(a_taken_id_is_refused_and_nothing_changes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(namespaces_are_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(list_is_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(append_numbers_messages_and_sets_counters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(append_without_counters_keeps_them, setup, teardown),
        cmocka_unit_test_setup_teardown(append_to_a_missing_session_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(remove_deletes_session_agents_and_transcript, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(survives_a_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(a_version_1_database_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(one_turn_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_append_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_create_leaves_nothing, setup, teardown),
        cmocka_unit_test(open_fails_with_the_path),
        cmocka_unit_test(in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
