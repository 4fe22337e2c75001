/* Specification of response_store.h: stored responses in SQLite. */
#include "store_test_util.h"

#include "adapters/store/response_store.h"

typedef struct fixture {
    char *dir;
    char path[600];
    response_db *db;
    response_store rs;
} fixture;

static response_db *open_db(fixture *f, uint64_t max_count, uint64_t max_age_s, int64_t now)
{
    response_db_opts o = {.path = f->path, .max_count = max_count, .max_age_s = max_age_s,
                          .now_s = now};
    sem_err err = {0};
    response_db *db = response_db_open(&o, &err);
    if (!db)
        fail_msg("open: %s", err.detail);
    return db;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    snprintf(f->path, sizeof f->path, "%s/responses.sqlite", f->dir);
    f->db = open_db(f, 0, 0, 0);
    f->rs = response_db_port(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    response_db_close(f->db);
    remove_dir(f->dir);
    free(f);
    return 0;
}

static response_record rec(const char *ns, const char *id, const char *prev, const char *agent,
                           uint32_t tokens, int64_t t)
{
    response_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.ns, sizeof r.ns, "%s", ns);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.previous_id, sizeof r.previous_id, "%s", prev);
    snprintf(r.agent, sizeof r.agent, "%s", agent);
    r.agent_tokens = tokens;
    r.created_at = t;
    r.input = (char *)"[{\"type\":\"message\",\"role\":\"user\",\"content\":\"hi\"}]";
    r.response = (char *)"{\"id\":\"x\",\"output\":[]}";
    return r;
}

static void put(fixture *f, response_record r, int64_t now)
{
    sem_err err = {0};
    if (f->rs.ops->put(f->rs.self, &r, now, &err) != SEM_OK)
        fail_msg("put %s: %s", r.id, err.detail);
}

static uint64_t count(fixture *f)
{
    uint64_t n = 0;
    assert_int_equal(response_db_count(f->db, &n, NULL), SEM_OK);
    return n;
}

static void put_then_get_every_field(void **state)
{
    fixture *f = *state;
    put(f, rec("ns1", "resp_a", "resp_0", "agent-a", 123, 1000), 1000);
    response_record got;
    assert_int_equal(f->rs.ops->get(f->rs.self, "ns1", "resp_a", &got, NULL), SEM_OK);
    assert_string_equal(got.id, "resp_a");
    assert_string_equal(got.ns, "ns1");
    assert_string_equal(got.previous_id, "resp_0");
    assert_string_equal(got.agent, "agent-a");
    assert_int_equal(got.agent_tokens, 123);
    assert_int_equal(got.created_at, 1000);
    assert_string_equal(got.input, "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"hi\"}]");
    assert_string_equal(got.response, "{\"id\":\"x\",\"output\":[]}");
    response_record_free(&got);
}

/* Another namespace's response is simply not found, for every operation. */
static void namespaces_are_apart(void **state)
{
    fixture *f = *state;
    put(f, rec("k1", "resp_a", "", "a", 1, 10), 10);
    response_record got;
    sem_err err = {0};
    assert_int_equal(f->rs.ops->get(f->rs.self, "k2", "resp_a", &got, &err), SEM_ENOTFOUND);
    assert_contains(err.detail, "resp_a");
    assert_int_equal(f->rs.ops->remove(f->rs.self, "k2", "resp_a", NULL), SEM_ENOTFOUND);
    char latest[RESPONSE_ID_MAX + 1];
    assert_int_equal(f->rs.ops->latest(f->rs.self, "k2", "a", latest, NULL), SEM_OK);
    assert_string_equal(latest, "");
    assert_int_equal(f->rs.ops->get(f->rs.self, "k1", "resp_a", &got, NULL), SEM_OK);
    response_record_free(&got);
}

static void remove_deletes_once(void **state)
{
    fixture *f = *state;
    put(f, rec("", "resp_a", "", "a", 1, 10), 10);
    assert_int_equal(f->rs.ops->remove(f->rs.self, "", "resp_a", NULL), SEM_OK);
    assert_int_equal(f->rs.ops->remove(f->rs.self, "", "resp_a", NULL), SEM_ENOTFOUND);
    response_record got;
    assert_int_equal(f->rs.ops->get(f->rs.self, "", "resp_a", &got, NULL), SEM_ENOTFOUND);
}

/* An agent's latest response is the last one put, whatever the clock says. */
static void latest_is_the_last_put(void **state)
{
    fixture *f = *state;
    char latest[RESPONSE_ID_MAX + 1];
    assert_int_equal(f->rs.ops->latest(f->rs.self, "", "a", latest, NULL), SEM_OK);
    assert_string_equal(latest, "");
    put(f, rec("", "resp_1", "", "a", 10, 100), 100);
    put(f, rec("", "resp_2", "resp_1", "a", 20, 100), 100);
    put(f, rec("", "resp_x", "", "b", 5, 100), 100);
    assert_int_equal(f->rs.ops->latest(f->rs.self, "", "a", latest, NULL), SEM_OK);
    assert_string_equal(latest, "resp_2");
    put(f, rec("", "resp_3", "resp_1", "a", 30, 50), 100);
    assert_int_equal(f->rs.ops->latest(f->rs.self, "", "a", latest, NULL), SEM_OK);
    assert_string_equal(latest, "resp_3");
    assert_int_equal(f->rs.ops->remove(f->rs.self, "", "resp_3", NULL), SEM_OK);
    assert_int_equal(f->rs.ops->latest(f->rs.self, "", "a", latest, NULL), SEM_OK);
    assert_string_equal(latest, "resp_2");
}

/* Records survive closing and opening the file again. */
static void survives_a_reopen(void **state)
{
    fixture *f = *state;
    put(f, rec("", "resp_a", "", "a", 7, 10), 10);
    response_db_close(f->db);
    f->db = open_db(f, 0, 0, 20);
    f->rs = response_db_port(f->db);
    response_record got;
    assert_int_equal(f->rs.ops->get(f->rs.self, "", "resp_a", &got, NULL), SEM_OK);
    assert_int_equal(got.agent_tokens, 7);
    response_record_free(&got);
}

/* The count limit deletes the oldest first, at each put. */
static void count_limit_drops_the_oldest(void **state)
{
    fixture *f = *state;
    response_db_close(f->db);
    f->db = open_db(f, 3, 0, 0);
    f->rs = response_db_port(f->db);
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "resp_%d", i);
        put(f, rec("", id, "", "a", 1, 100), 100);
        assert_int_equal(count(f), i < 3 ? (uint64_t)i + 1 : 3);
    }
    response_record got;
    assert_int_equal(f->rs.ops->get(f->rs.self, "", "resp_1", &got, NULL), SEM_ENOTFOUND);
    assert_int_equal(f->rs.ops->get(f->rs.self, "", "resp_2", &got, NULL), SEM_OK);
    response_record_free(&got);
}

/* The age limit deletes at put and at open. */
static void age_limit_at_put_and_at_open(void **state)
{
    fixture *f = *state;
    response_db_close(f->db);
    f->db = open_db(f, 0, 100, 0);
    f->rs = response_db_port(f->db);
    put(f, rec("", "resp_old", "", "a", 1, 1000), 1000);
    put(f, rec("", "resp_mid", "", "a", 1, 1050), 1050);
    put(f, rec("", "resp_new", "", "a", 1, 1120), 1120); /* resp_old is 120 s old now */
    assert_int_equal(count(f), 2);
    response_db_close(f->db);
    f->db = open_db(f, 0, 100, 1200); /* resp_mid is 150 s old */
    f->rs = response_db_port(f->db);
    assert_int_equal(count(f), 1);
    response_record got;
    assert_int_equal(f->rs.ops->get(f->rs.self, "", "resp_new", &got, NULL), SEM_OK);
    response_record_free(&got);
}

static void open_fails_with_the_path(void **state)
{
    (void)state;
    response_db_opts o = {.path = "/nonexistent-folder/x/responses.sqlite"};
    sem_err err = {0};
    assert_null(response_db_open(&o, &err));
    assert_int_equal(err.status, SEM_EIO);
    assert_contains(err.detail, "/nonexistent-folder/x/responses.sqlite");
}

/* Without a cache folder the store lives in memory. */
static void in_memory(void **state)
{
    (void)state;
    response_db_opts o = {.path = ":memory:"};
    response_db *db = response_db_open(&o, NULL);
    assert_non_null(db);
    response_store rs = response_db_port(db);
    response_record r = rec("", "resp_m", "", "a", 1, 1);
    assert_int_equal(rs.ops->put(rs.self, &r, 1, NULL), SEM_OK);
    response_record got;
    assert_int_equal(rs.ops->get(rs.self, "", "resp_m", &got, NULL), SEM_OK);
    response_record_free(&got);
    response_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_then_get_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(namespaces_are_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(remove_deletes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(latest_is_the_last_put, setup, teardown),
        cmocka_unit_test_setup_teardown(survives_a_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(count_limit_drops_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(age_limit_at_put_and_at_open, setup, teardown),
        cmocka_unit_test(open_fails_with_the_path),
        cmocka_unit_test(in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
