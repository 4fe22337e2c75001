/*
 * The remote tier (docs/several-nodes.md) against real servers: a
 * redis-server started by the test on a free port of 127.0.0.1, with a
 * password, and semantic servers with their own cache folders sharing it.
 *
 *   - an agent that talks to server A, then to server B, finds on B all
 *     that A computed (B's GET /v1/agents/{id} says tier "remote" first);
 *   - a server with another model never reads those entries, and another
 *     API key never sees them;
 *   - an entry corrupted by hand in Redis is dropped and counted, and the
 *     agent's memory is computed again;
 *   - a slow Redis (DEBUG SLEEP) holds no request for long, and a full one
 *     (maxmemory) refuses writes that are counted, requests unaffected;
 *   - Redis killed while the servers run: requests still succeed,
 *     readiness stays 200 and says "remote":"down", the failures are
 *     counted; Redis back: "ok" again;
 *   - --cache-remote without the disk tier is refused; the URL's password
 *     is never logged.
 *
 * Without redis-server the test is skipped (exit 77) with a message that
 * says how to install it.
 */
#include "remote_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_process.h"

#define PASSWORD "e2e-redis-pw-5u7x"
#define KEY1 "key-one"
#define KEY2 "key-two"
#define OTHER_MODEL SEM_TEST_DATA "/models/tiny-llama-q4_0.gguf"

static redis_proc redis;
static server_proc srv_a, srv_b;
static char url[256];

/* A server of model sharing the Redis tier: through --cache-remote, or
 * through SEMANTIC_CACHE_REMOTE when via_env. */
static int start_node(server_proc *s, const char *model, int via_env)
{
    static char env_url[300];
    snprintf(env_url, sizeof env_url, "SEMANTIC_CACHE_REMOTE=%s", url);
    const char *args_flag[] = {"--cache-remote", url, "--api-key", KEY1, "--api-key", KEY2,
                               "--pool-mb", "64", "--max-batch", "4", NULL};
    const char *args_env[] = {"--api-key", KEY1, "--api-key", KEY2, "--pool-mb", "64",
                              "--max-batch", "4", NULL};
    const char *env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=",
                         via_env ? env_url : "SEMANTIC_CACHE_REMOTE=", NULL};
    return server_start(s, SEMANTIC_BIN, model, via_env ? args_env : args_flag, env, 1);
}

static int setup(void **state)
{
    (void)state;
    if (redis_start(&redis, PASSWORD, "enable-debug-command yes\n") != 0)
        return -1;
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%u", PASSWORD, (unsigned)redis.port);
    if (start_node(&srv_a, STORIES, 0) != 0 || start_node(&srv_b, STORIES, 1) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (server_stop(&srv_a, SIGTERM, 20000) != 0 || server_stop(&srv_b, SIGTERM, 20000) != 0)
        rc = -1;
    server_discard_log(&srv_a);
    server_discard_log(&srv_b);
    redis_stop(&redis);
    return rc;
}

/* ---------------------------------------------------------------- options */

/* Runs semantic serve with args (after -m STORIES); its exit status and
 * stderr (malloc'd). */
static int run_serve(const char *const *args, char **out)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "SEMANTIC_CACHE_REMOTE= %s serve -m %s --port 0",
                     SEMANTIC_BIN, STORIES);
    for (int i = 0; args[i]; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", args[i]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 65536, len = 0;
    *out = calloc(1, cap);
    size_t got;
    while ((got = fread(*out + len, 1, cap - 1 - len, p)) > 0)
        len += got;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void a_remote_tier_needs_the_disk_tier(void **state)
{
    (void)state;
    const char *args[] = {"--cache-dir", "", "--cache-remote", "redis://127.0.0.1:1", NULL};
    char *out;
    assert_int_equal(run_serve(args, &out), 2);
    assert_contains(out, "--cache-remote needs the disk tier");
    free(out);
}

static void a_bad_url_is_refused(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(server_temp_dir("badurl", dir, sizeof dir), 0);
    const char *args[] = {"--cache-dir", dir, "--cache-remote", "http://user:hunter22@x/", NULL};
    char *out;
    assert_int_not_equal(run_serve(args, &out), 0);
    assert_contains(out, "--cache-remote");
    if (strstr(out, "hunter22"))
        fail_msg("the password is in the output: %s", out);
    free(out);
    server_temp_dir_remove(dir);
}

static void the_password_is_never_logged(void **state)
{
    (void)state;
    char *la = server_log(&srv_a), *lb = server_log(&srv_b);
    if (strstr(la, PASSWORD) || strstr(lb, PASSWORD))
        fail_msg("a log holds the Redis password:\n%s\n%s", la, lb);
    assert_contains(la, "***@127.0.0.1");
    assert_contains(lb, "***@127.0.0.1");
    free(la);
    free(lb);
}

/* ---------------------------------------------------------------- sharing */

/* A's answer to question as agent (malloc'd), once A has written the
 * agent to Redis; *prompt: the prompt's tokens. */
static char *talk_to_a_q(const char *key, const char *agent, const char *question,
                         json_int_t *prompt)
{
    double puts = ru_metric(srv_a.port, KEY1, "semantic_remote_puts_total");
    char *b1 = ru_chat_body_q(question, NULL, NULL, 12);
    http_response r = ru_chat(srv_a.port, key, agent, b1);
    *prompt = ru_usage(&r, "prompt_tokens");
    char *answer = ru_content(&r);
    hc_free(&r);
    free(b1);
    ru_wait_metric(srv_a.port, KEY1, "semantic_remote_puts_total", puts + 1, 30000);
    return answer;
}

static char *talk_to_a(const char *key, const char *agent, json_int_t *prompt)
{
    return talk_to_a_q(key, agent, STORY_Q, prompt);
}

static void an_agent_moves_to_another_server(void **state)
{
    (void)state;
    json_int_t prompt1;
    char *answer = talk_to_a(KEY1, "traveller", &prompt1);
    char tier[32];
    assert_string_equal(ru_tier(srv_b.port, KEY1, "traveller", tier, sizeof tier), "remote");
    double hits = ru_metric(srv_b.port, KEY1, "semantic_remote_get_hits_total");
    /* The follow-up on B reuses everything A computed: as much as A itself
     * reuses for the same request (A still holds the agent in RAM). */
    char *b2 = ru_chat_body(answer, "And then?", 4);
    http_response rb = ru_chat(srv_b.port, KEY1, "traveller", b2);
    json_int_t cached_b = ru_usage(&rb, "cached_tokens");
    hc_free(&rb);
    http_response ra = ru_chat(srv_a.port, KEY1, "traveller", b2);
    json_int_t cached_a = ru_usage(&ra, "cached_tokens");
    hc_free(&ra);
    if (cached_b < prompt1 || cached_b != cached_a)
        fail_msg("B reused %lld tokens, A %lld (first prompt %lld)", (long long)cached_b,
                 (long long)cached_a, (long long)prompt1);
    assert_true(ru_metric(srv_b.port, KEY1, "semantic_remote_get_hits_total") > hits);
    assert_int_equal(ru_metric(srv_b.port, KEY1, "semantic_remote_corrupt_total"), 0);
    /* Now B holds it, in RAM and on its own disk. */
    assert_string_equal(ru_tier(srv_b.port, KEY1, "traveller", tier, sizeof tier), "hot");
    free(b2);
    free(answer);
}

static void another_key_never_sees_them(void **state)
{
    (void)state;
    json_int_t prompt1;
    char *answer = talk_to_a(KEY1, "keyed", &prompt1);
    char tier[32];
    assert_string_equal(ru_tier(srv_b.port, KEY2, "keyed", tier, sizeof tier), "");
    assert_string_equal(ru_tier(srv_a.port, KEY2, "keyed", tier, sizeof tier), "");
    char *b2 = ru_chat_body(answer, "And then?", 4);
    http_response r = ru_chat(srv_b.port, KEY2, "keyed", b2);
    assert_int_equal(ru_usage(&r, "cached_tokens"), 0);
    hc_free(&r);
    free(b2);
    free(answer);
}

static void another_model_never_reads_them(void **state)
{
    (void)state;
    json_int_t prompt1;
    char *answer = talk_to_a(KEY1, "one-model", &prompt1);
    server_proc c;
    assert_int_equal(start_node(&c, OTHER_MODEL, 0), 0);
    char tier[32];
    assert_string_equal(ru_tier(c.port, KEY1, "one-model", tier, sizeof tier), "");
    char *b2 = ru_chat_body(answer, "And then?", 4);
    http_response r = ru_chat(c.port, KEY1, "one-model", b2);
    assert_int_equal(ru_usage(&r, "cached_tokens"), 0);
    hc_free(&r);
    assert_int_equal(ru_metric(c.port, KEY1, "semantic_remote_get_hits_total"), 0);
    assert_int_equal(ru_metric(c.port, KEY1, "semantic_remote_corrupt_total"), 0);
    assert_int_equal(server_stop(&c, SIGTERM, 20000), 0);
    server_discard_log(&c);
    free(b2);
    free(answer);
}

/* The first of Redis's keys matching pattern into out ("" when none). */
static void redis_first_key(const char *pattern, char *out, size_t cap)
{
    const char *args[] = {"KEYS", pattern};
    char *reply;
    if (redis_command(&redis, args, NULL, 2, &reply, NULL) != 0)
        fail_msg("KEYS %s: no answer", pattern);
    size_t n = strcspn(reply, "\n");
    snprintf(out, cap, "%.*s", (int)n, reply);
    free(reply);
}

static void a_corrupt_entry_is_dropped(void **state)
{
    (void)state;
    json_int_t prompt1;
    /* A question of its own: no other agent on B shares its start. */
    static const char q[] = "Once upon a time a wizard lost his hat in the snow";
    char *answer = talk_to_a_q(KEY1, "corrupted", q, &prompt1);
    /* Its index: sem:v1:<space>:a:<namespace>.corrupted (docs/remote-tier.md). */
    char key[512];
    redis_first_key("sem:v1:*:a:*.corrupted", key, sizeof key);
    if (!key[0])
        fail_msg("no index key for agent \"corrupted\" in Redis");
    const char *args[] = {"SETRANGE", key, "40", "\x01\x02\x03\x04"};
    size_t lens[] = {8, strlen(key), 2, 4};
    char *reply;
    assert_int_equal(redis_command(&redis, args, lens, 4, &reply, NULL), 0);
    assert_true(reply[0] == ':');
    free(reply);
    double corrupt = ru_metric(srv_b.port, KEY1, "semantic_remote_corrupt_total");
    /* B's request succeeds without the corrupt memory, and says why. */
    char *b2 = ru_chat_body_q(q, answer, "And then?", 4);
    http_response r = ru_chat(srv_b.port, KEY1, "corrupted", b2);
    assert_int_equal(ru_usage(&r, "cached_tokens"), 0);
    hc_free(&r);
    assert_true(ru_metric(srv_b.port, KEY1, "semantic_remote_corrupt_total") > corrupt);
    free(b2);
    free(answer);
}

/* Polls readiness until "remote" is want, asking A for an agent it does
 * not know between polls (which makes the tier try Redis); fails after
 * timeout_ms. */
static void wait_remote_state(uint16_t port, const char *want, int timeout_ms)
{
    char got[32] = "", tier[32];
    int status = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        ru_ready_remote(port, &status, got, sizeof got);
        assert_int_equal(status, 200);
        if (strcmp(got, want) == 0)
            return;
        ru_tier(port, KEY1, "nobody-here", tier, sizeof tier);
        usleep(100000);
    }
    fail_msg("readiness says remote \"%s\", not \"%s\"", got, want);
}

static void *redis_sleep_main(void *arg)
{
    (void)arg;
    char *reply;
    redis_simple(&redis, "DEBUG SLEEP 3", &reply);
    free(reply);
    return NULL;
}

typedef struct timed_request {
    const char *body;
    double ms;
} timed_request;

static void *patient_main(void *arg)
{
    timed_request *t = arg;
    double t0 = hc_now_ms();
    http_response r = ru_chat(srv_a.port, KEY1, "patient", t->body);
    t->ms = hc_now_ms() - t0;
    hc_free(&r);
    return NULL;
}

static void a_slow_redis_holds_no_request(void **state)
{
    (void)state;
    double timeouts = ru_metric(srv_a.port, KEY1, "semantic_remote_timeouts_total");
    pthread_t sleeper, patient;
    pthread_create(&sleeper, NULL, redis_sleep_main, NULL);
    usleep(200000); /* Redis is asleep */
    char *b = ru_chat_body_q("A slow river carried the boat", NULL, NULL, 4);
    timed_request t = {.body = b};
    pthread_create(&patient, NULL, patient_main, &t);
    /* While the new agent's lookup waits on Redis, readiness answers at
     * once (it reads the tier's last counters, never the connection). */
    usleep(100000);
    double t0 = hc_now_ms();
    int status;
    char got[32];
    ru_ready_remote(srv_a.port, &status, got, sizeof got);
    double ready_ms = hc_now_ms() - t0;
    assert_int_equal(status, 200);
    pthread_join(patient, NULL);
    pthread_join(sleeper, NULL);
    if (ready_ms > 300) /* the lookup holds the tier for up to 500 ms */
        fail_msg("readiness took %.0f ms while Redis slept", ready_ms);
    /* The lookup waited one command timeout (500 ms), not 3 s. */
    if (t.ms > 2500)
        fail_msg("a request took %.0f ms while Redis slept", t.ms);
    ru_wait_metric(srv_a.port, KEY1, "semantic_remote_timeouts_total", timeouts + 1, 10000);
    wait_remote_state(srv_a.port, "ok", 30000); /* after its backoff */
    free(b);
}

static void a_full_redis_refuses_writes(void **state)
{
    (void)state;
    char *reply;
    wait_remote_state(srv_a.port, "ok", 30000);
    assert_int_equal(redis_simple(&redis, "CONFIG SET maxmemory 1", &reply), 0);
    assert_string_equal(reply, "+OK");
    free(reply);
    double full = ru_metric(srv_a.port, KEY1, "semantic_remote_full_total");
    /* A prompt of several whole chunks (128 tokens each), so the put has
     * chunks to write. */
    char q[4096] = "The library was full of old books";
    for (int i = 0; i < 60; i++)
        strcat(q, i % 2 ? " and maps" : " of kings");
    char *b = ru_chat_body_q(q, NULL, NULL, 4);
    http_response r = ru_chat(srv_a.port, KEY1, "crowded", b);
    hc_free(&r);
    ru_wait_metric(srv_a.port, KEY1, "semantic_remote_full_total", full + 1, 30000);
    assert_int_equal(redis_simple(&redis, "CONFIG SET maxmemory 0", &reply), 0);
    free(reply);
    /* Still served, from RAM. */
    r = ru_chat(srv_a.port, KEY1, "crowded", b);
    assert_true(ru_usage(&r, "cached_tokens") > 0);
    hc_free(&r);
    free(b);
}

/* ---------------------------------------------------------------- Redis away */

static void requests_go_on_while_redis_is_down(void **state)
{
    (void)state;
    int status;
    char got[32];
    assert_string_equal(ru_ready_remote(srv_a.port, &status, got, sizeof got), "ok");
    redis_kill(&redis);
    double put_failures = ru_metric(srv_a.port, KEY1, "semantic_remote_put_failures_total");
    double get_failures = ru_metric(srv_a.port, KEY1, "semantic_remote_get_failures_total");
    /* A new agent (its load asks Redis), then its write-behind: both fail
     * and are counted; the requests succeed. */
    char *b1 = ru_chat_body(NULL, NULL, 6);
    for (int i = 0; i < 3; i++) {
        char agent[32];
        snprintf(agent, sizeof agent, "offline-%d", i);
        http_response r = ru_chat(srv_a.port, KEY1, agent, b1);
        hc_free(&r);
    }
    wait_remote_state(srv_a.port, "down", 10000);
    assert_int_equal(ru_metric(srv_a.port, KEY1, "semantic_remote_up"), 0);
    /* The inspector's figures say it too. */
    char h[128];
    ru_headers(h, sizeof h, KEY1, NULL);
    http_response st = e2e_call(srv_a.port, "GET", "/v1/stats", h, NULL);
    assert_int_equal(st.status, 200);
    json_t *js = e2e_json(&st);
    json_t *remote = json_object_get(js, "remote");
    assert_string_equal(json_string_value(json_object_get(remote, "state")), "down");
    assert_true(json_is_integer(json_object_get(remote, "budget_bytes")));
    assert_true(json_is_integer(json_object_get(remote, "queued")));
    assert_true(json_integer_value(json_object_get(remote, "puts")) > 0); /* before Redis died */
    json_decref(js);
    hc_free(&st);
    for (int waited = 0; waited < 10000; waited += 100) {
        if (ru_metric(srv_a.port, KEY1, "semantic_remote_put_failures_total") > put_failures ||
            ru_metric(srv_a.port, KEY1, "semantic_remote_get_failures_total") > get_failures)
            break;
        usleep(100000);
    }
    assert_true(ru_metric(srv_a.port, KEY1, "semantic_remote_put_failures_total") > put_failures ||
                ru_metric(srv_a.port, KEY1, "semantic_remote_get_failures_total") > get_failures);
    /* An agent A holds is still served from RAM and disk. */
    http_response r = ru_chat(srv_a.port, KEY1, "offline-0", b1);
    assert_true(ru_usage(&r, "cached_tokens") > 0);
    hc_free(&r);
    /* Redis back (empty): the tier comes back by itself. */
    assert_int_equal(redis_restart(&redis), 0);
    wait_remote_state(srv_a.port, "ok", 30000);
    assert_int_equal(ru_metric(srv_a.port, KEY1, "semantic_remote_up"), 1);
    free(b1);
}

int main(void)
{
    if (!redis_server_bin()) {
        printf("SKIP: %s\n", REDIS_MISSING_MSG);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_remote_tier_needs_the_disk_tier),
        cmocka_unit_test(a_bad_url_is_refused),
        cmocka_unit_test(the_password_is_never_logged),
        cmocka_unit_test(an_agent_moves_to_another_server),
        cmocka_unit_test(another_key_never_sees_them),
        cmocka_unit_test(another_model_never_reads_them),
        cmocka_unit_test(a_corrupt_entry_is_dropped),
        cmocka_unit_test(a_slow_redis_holds_no_request),
        cmocka_unit_test(a_full_redis_refuses_writes),
        cmocka_unit_test(requests_go_on_while_redis_is_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
