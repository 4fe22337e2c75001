/* Specification of agent_history.h: each agent's last requests, bounded in
 * agents and in entries. */
#include "../../test_util.h"

#include <pthread.h>

#include "adapters/http/agent_history.h"

static agent_history *make(uint32_t agents)
{
    agent_history *h = NULL;
    sem_err err = {0};
    assert_int_equal(agent_history_create(agents, &h, &err), SEM_OK);
    return h;
}

static agent_request req(int64_t at, uint32_t cached)
{
    agent_request r = {.at_ms = at, .prompt_tokens = 100, .cached_tokens = cached,
                       .completion_tokens = 8, .ttft_ms = 1.5, .total_ms = 9};
    snprintf(r.finish, sizeof r.finish, "stop");
    return r;
}

static void sizes_outside_the_limits_are_refused_with_the_limit(void **state)
{
    (void)state;
    agent_history *h = (agent_history *)1;
    sem_err err = {0};
    assert_int_equal(agent_history_create(0, &h, &err), SEM_EINVAL);
    assert_null(h);
    assert_contains(err.detail, "expected 1 to 65536");
    assert_int_equal(agent_history_create(AGENT_HISTORY_AGENTS_MAX + 1, &h, &err), SEM_EINVAL);
    agent_history_free(NULL);
}

static void an_agent_reads_its_requests_newest_first(void **state)
{
    (void)state;
    agent_history *h = make(8);
    agent_request out[AGENT_HISTORY_MAX];
    assert_int_equal(agent_history_read(h, "alice", out, AGENT_HISTORY_MAX), 0);
    for (int i = 1; i <= 3; i++)
        agent_history_record(h, "alice", &(agent_request){0});
    agent_history_forget(h, "alice");
    agent_history_record(h, "alice", &(agent_request){.at_ms = 1});
    agent_request r2 = req(2, 90);
    agent_history_record(h, "alice", &r2);
    agent_history_record(h, "bob", &(agent_request){.at_ms = 3});
    assert_int_equal(agent_history_read(h, "alice", out, AGENT_HISTORY_MAX), 2);
    assert_int_equal(out[0].at_ms, 2);
    assert_int_equal(out[0].cached_tokens, 90);
    assert_string_equal(out[0].finish, "stop");
    assert_int_equal(out[1].at_ms, 1);
    /* A smaller array takes the newest. */
    assert_int_equal(agent_history_read(h, "alice", out, 1), 1);
    assert_int_equal(out[0].at_ms, 2);
    assert_int_equal(agent_history_read(h, "bob", out, AGENT_HISTORY_MAX), 1);
    /* Keys are exact: namespaced keys never meet. */
    assert_int_equal(agent_history_read(h, "0123456789ab.alice", out, AGENT_HISTORY_MAX), 0);
    agent_history_free(h);
}

static void an_agent_keeps_only_its_last_entries(void **state)
{
    (void)state;
    agent_history *h = make(2);
    for (int i = 0; i < 40; i++)
        agent_history_record(h, "alice", &(agent_request){.at_ms = i});
    agent_request out[AGENT_HISTORY_MAX + 4];
    assert_int_equal(agent_history_read(h, "alice", out, AGENT_HISTORY_MAX + 4), AGENT_HISTORY_MAX);
    for (uint32_t i = 0; i < AGENT_HISTORY_MAX; i++)
        assert_int_equal(out[i].at_ms, 39 - (int)i);
    agent_history_free(h);
}

static void a_full_history_forgets_the_agent_recorded_least_recently(void **state)
{
    (void)state;
    agent_history *h = make(3);
    agent_request out[AGENT_HISTORY_MAX];
    agent_history_record(h, "a", &(agent_request){.at_ms = 1});
    agent_history_record(h, "b", &(agent_request){.at_ms = 2});
    agent_history_record(h, "c", &(agent_request){.at_ms = 3});
    agent_history_record(h, "a", &(agent_request){.at_ms = 4}); /* b is now the oldest */
    agent_history_record(h, "d", &(agent_request){.at_ms = 5});
    assert_int_equal(agent_history_read(h, "b", out, AGENT_HISTORY_MAX), 0);
    assert_int_equal(agent_history_read(h, "a", out, AGENT_HISTORY_MAX), 2);
    assert_int_equal(agent_history_read(h, "c", out, AGENT_HISTORY_MAX), 1);
    assert_int_equal(agent_history_read(h, "d", out, AGENT_HISTORY_MAX), 1);
    /* Many more agents than room: always exactly the last three. */
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "agent-%d", i);
        agent_history_record(h, key, &(agent_request){.at_ms = i});
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "agent-%d", i);
        assert_int_equal(agent_history_read(h, key, out, AGENT_HISTORY_MAX), i >= 997);
    }
    agent_history_free(h);
}

static void forgetting_and_odd_keys(void **state)
{
    (void)state;
    agent_history *h = make(4);
    agent_request out[AGENT_HISTORY_MAX];
    agent_history_forget(h, "nobody");
    agent_history_record(h, "", &(agent_request){.at_ms = 1});
    agent_history_record(h, NULL, &(agent_request){.at_ms = 1});
    char long_key[AGENT_HISTORY_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    agent_history_record(h, long_key, &(agent_request){.at_ms = 1});
    assert_int_equal(agent_history_read(h, long_key, out, AGENT_HISTORY_MAX), 0);
    agent_history_record(h, "x", &(agent_request){.at_ms = 1});
    agent_history_forget(h, "x");
    assert_int_equal(agent_history_read(h, "x", out, AGENT_HISTORY_MAX), 0);
    agent_history_record(h, "x", &(agent_request){.at_ms = 2});
    assert_int_equal(agent_history_read(h, "x", out, AGENT_HISTORY_MAX), 1);
    /* The same agent on two models: two histories. */
    char a[AGENT_HISTORY_KEY_MAX + 1], b[AGENT_HISTORY_KEY_MAX + 1];
    agent_history_key("llama", "ns.alice", a);
    agent_history_key("qwen", "ns.alice", b);
    assert_string_equal(a, "llama/ns.alice");
    agent_history_record(h, a, &(agent_request){.at_ms = 3});
    assert_int_equal(agent_history_read(h, a, out, AGENT_HISTORY_MAX), 1);
    assert_int_equal(agent_history_read(h, b, out, AGENT_HISTORY_MAX), 0);
    agent_history_free(h);
}

static void *record_many(void *arg)
{
    agent_history *h = arg;
    char key[32];
    agent_request out[AGENT_HISTORY_MAX];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "t%d", i % 50);
        agent_history_record(h, key, &(agent_request){.at_ms = i});
        agent_history_read(h, key, out, AGENT_HISTORY_MAX);
        if (i % 97 == 0)
            agent_history_forget(h, key);
    }
    return NULL;
}

static void threads_record_read_and_forget_at_once(void **state)
{
    (void)state;
    agent_history *h = make(32); /* fewer than the keys: replacement under contention */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, record_many, h);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    agent_request out[AGENT_HISTORY_MAX];
    size_t held = 0;
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "t%d", i);
        held += agent_history_read(h, key, out, AGENT_HISTORY_MAX) > 0;
    }
    assert_true(held <= 32);
    agent_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_outside_the_limits_are_refused_with_the_limit),
        cmocka_unit_test(an_agent_reads_its_requests_newest_first),
        cmocka_unit_test(an_agent_keeps_only_its_last_entries),
        cmocka_unit_test(a_full_history_forgets_the_agent_recorded_least_recently),
        cmocka_unit_test(forgetting_and_odd_keys),
        cmocka_unit_test(threads_record_read_and_forget_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
