/*
 * Several models in one server (docs/models.md), against a real
 * `semantic serve` on 127.0.0.1 with two tiny models of different
 * architectures (llama: stories260K; qwen2: tiny-qwen2-q8_0):
 *
 *   - requests by name, by alias (shell patterns) and by default, over
 *     both APIs; an unknown name without a default is a 404
 *     model_not_found in the caller's shape; /v1/models lists state,
 *     size, context, architecture and template;
 *   - the same agent id on two models is two memories, and GET
 *     /v1/agents filters by model;
 *   - a RAM budget that holds one model: loading the other unloads the
 *     idle one, and its agents come back from disk when it loads again;
 *   - a reload while requests stream on the old file: every one
 *     completes, new requests run on the new file, memory is kept; a
 *     rescan of the folder notices a replaced file (another fingerprint:
 *     its agents start cold) and a removed one (404);
 *   - /metrics labels each model's series.
 */
#include "e2e_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define QWEN SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"
#define CC "/v1/chat/completions"
#define MSG "/v1/messages"

static server_proc srv;
static uint16_t port;

static int stop_server(void **state)
{
    (void)state;
    if (srv.pid)
        server_stop(&srv, SIGTERM, 20000);
    return 0;
}

static void start(const char *model, const char *const *args)
{
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, model, args, env, 1), 0);
    port = srv.port;
}

static void stop(void)
{
    assert_int_equal(server_stop(&srv, SIGTERM, 20000), 0);
    server_discard_log(&srv);
    srv.pid = 0;
}

/* A chat request for model (NULL: none) as agent (NULL: none); the response. */
static http_response chat(const char *model, const char *agent, const char *text, int stream)
{
    char headers[160] = "", body[1024], m[160] = "";
    if (agent)
        snprintf(headers, sizeof headers, "X-Agent-Id: %s\r\n", agent);
    if (model)
        snprintf(m, sizeof m, "\"model\":\"%s\",", model);
    snprintf(body, sizeof body,
             "{%s\"max_tokens\":%d,\"temperature\":0,\"stream\":%s%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             m, stream ? 48 : 4, stream ? "true" : "false",
             stream ? ",\"stream_options\":{\"include_usage\":true}" : "", text);
    return e2e_call(port, "POST", CC, headers[0] ? headers : NULL, body);
}

/* Asserts the status, printing the server's log when it is not that. */
static void expect_status(const http_response *r, int want)
{
    if (r->status == want)
        return;
    char *log = server_log(&srv);
    fprintf(stderr, "server log:\n%s\n", log);
    free(log);
    fail_msg("expected %d, got %d: %.300s", want, r->status, r->body ? r->body : "");
}

static json_int_t cached_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    json_int_t c = json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "usage"), "prompt_tokens_details"), "cached_tokens"));
    json_decref(j);
    return c;
}

/* The model entry of GET /v1/models (new reference), or NULL. */
static json_t *model_entry(const char *id)
{
    http_response r = e2e_call(port, "GET", "/v1/models", NULL, NULL);
    expect_status(&r, 200);
    json_t *j = e2e_json(&r), *found = NULL, *m;
    size_t i;
    json_array_foreach(json_object_get(j, "data"), i, m)
        if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0)
            found = json_incref(m);
    json_decref(j);
    hc_free(&r);
    return found;
}

static const char *state_of(const char *id, char *buf, size_t cap)
{
    json_t *m = model_entry(id);
    snprintf(buf, cap, "%s", m ? json_string_value(json_object_get(m, "state")) : "(absent)");
    json_decref(m);
    return buf;
}

/* The agents GET /v1/agents[?model=] lists with that id (their "model"s in models). */
static size_t agents_named(const char *query, const char *id, char models[][64], size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents%s", query);
    http_response r = e2e_call(port, "GET", path, NULL, NULL);
    expect_status(&r, 200);
    json_t *j = e2e_json(&r), *a;
    size_t i, n = 0;
    json_array_foreach(json_object_get(j, "data"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "id")), id) == 0 && n < cap)
            snprintf(models[n++], 64, "%s", json_string_value(json_object_get(a, "model")));
    json_decref(j);
    hc_free(&r);
    return n;
}

/* ---------------------------------------------------------------- names */

static void models_by_name_alias_and_default(void **state)
{
    (void)state;
    static const char *const args[] = {"-m", "qwen=" QWEN, "--alias", "gpt-*=llama", "--alias",
                                       "claude-*=qwen", "--pool-mb", "16", NULL};
    start("llama=" STORIES, args);
    /* The listing: both loaded, with their figures. */
    json_t *l = model_entry("llama"), *q = model_entry("qwen");
    assert_non_null(l);
    assert_non_null(q);
    assert_string_equal(json_string_value(json_object_get(l, "state")), "loaded");
    assert_string_equal(json_string_value(json_object_get(l, "architecture")), "llama");
    assert_string_equal(json_string_value(json_object_get(q, "architecture")), "qwen2");
    assert_true(json_integer_value(json_object_get(l, "size_bytes")) > 0);
    assert_true(json_integer_value(json_object_get(q, "context_length")) > 0);
    assert_true(json_is_string(json_object_get(q, "chat_template")));
    json_decref(l);
    json_decref(q);
    /* By name and by alias; the agent lands on the model the name means. */
    http_response r = chat("llama", "by-name", "hello", 0);
    expect_status(&r, 200);
    hc_free(&r);
    r = chat("gpt-4o", "by-alias-openai", "hello", 0);
    expect_status(&r, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o");
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "POST", MSG, "X-Agent-Id: by-alias-anthropic\r\n",
                 "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}");
    expect_status(&r, 200);
    hc_free(&r);
    char models[4][64];
    assert_int_equal(agents_named("", "by-name", models, 4), 1);
    assert_string_equal(models[0], "llama");
    assert_int_equal(agents_named("", "by-alias-openai", models, 4), 1);
    assert_string_equal(models[0], "llama");
    assert_int_equal(agents_named("", "by-alias-anthropic", models, 4), 1);
    assert_string_equal(models[0], "qwen");
    /* Unknown names: 404 model_not_found, in each API's shape. */
    r = chat("mistral-large", NULL, "hello", 0);
    e2e_assert_openai_error(&r, 404, "model");
    assert_contains(r.body, "model_not_found");
    assert_contains(r.body, "mistral-large");
    hc_free(&r);
    r = e2e_call(port, "POST", MSG, NULL,
                 "{\"model\":\"mistral-large\",\"max_tokens\":4,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}");
    e2e_assert_anthropic_error(&r, 404);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/models/mistral-large", NULL, NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    assert_contains(r.body, "model_not_found");
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/by-name?model=mistral-large", NULL, NULL);
    e2e_assert_openai_error(&r, 404, "model");
    hc_free(&r);
    /* An alias resolves on GET /v1/models/{id} too. */
    r = e2e_call(port, "GET", "/v1/models/claude-opus-4", NULL, NULL);
    expect_status(&r, 200);
    assert_contains(r.body, "\"qwen\"");
    hc_free(&r);
    /* Labelled metrics, one set per model. */
    assert_true(e2e_metric(port, "semantic_pool_blocks_total") > 0);
    r = e2e_call(port, "GET", "/metrics", NULL, NULL);
    assert_contains(r.body, "semantic_pool_blocks_total{model=\"llama\"} ");
    assert_contains(r.body, "semantic_pool_blocks_total{model=\"qwen\"} ");
    assert_contains(r.body, "semantic_model_ram_bytes{model=\"qwen\"} ");
    hc_free(&r);
    e2e_assert_healthy(port);
    stop();

    /* With --default-model, any other name is that model. */
    static const char *const args2[] = {"-m", "qwen=" QWEN, "--default-model", "qwen",
                                        "--pool-mb", "16", NULL};
    start("llama=" STORIES, args2);
    r = chat("mistral-large", "by-default", "hello", 0);
    expect_status(&r, 200);
    hc_free(&r);
    assert_int_equal(agents_named("", "by-default", models, 4), 1);
    assert_string_equal(models[0], "qwen");
    json_t *d = model_entry("qwen");
    assert_true(json_is_true(json_object_get(d, "default")));
    json_decref(d);
    stop();
}

/* ---------------------------------------------------------------- memory per model */

static void the_same_agent_on_two_models_is_two_memories(void **state)
{
    (void)state;
    static const char *const args[] = {"-m", "qwen=" QWEN, "--pool-mb", "16", NULL};
    start("llama=" STORIES, args);
    const char *text = "Once upon a time there was a little cat who liked to sing";
    http_response r = chat("llama", "twin", text, 0);
    expect_status(&r, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    /* The same id on the other model: nothing of llama's memory. */
    r = chat("qwen", "twin", text, 0);
    expect_status(&r, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    /* Each model remembers its own. */
    r = chat("llama", "twin", text, 0);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    r = chat("qwen", "twin", text, 0);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    char models[4][64];
    assert_int_equal(agents_named("", "twin", models, 4), 2);
    assert_int_equal(agents_named("?model=qwen", "twin", models, 4), 1);
    assert_string_equal(models[0], "qwen");
    /* Each model's request history of it: its own two requests. */
    r = e2e_call(port, "GET", "/v1/agents/twin/requests?model=qwen", NULL, NULL);
    expect_status(&r, 200);
    json_t *h = e2e_json(&r);
    assert_int_equal(json_array_size(json_object_get(h, "data")), 2);
    json_decref(h);
    hc_free(&r);
    /* Deleting it on one model leaves the other's. */
    r = e2e_call(port, "DELETE", "/v1/agents/twin?model=llama", NULL, NULL);
    expect_status(&r, 200);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/twin?model=llama", NULL, NULL);
    assert_int_equal(r.status, 404);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/twin?model=qwen", NULL, NULL);
    expect_status(&r, 200);
    hc_free(&r);
    stop();
}

/* ---------------------------------------------------------------- the budget */

/* A folder with both models in it, named a-llama and b-qwen. */
static void models_folder(char *dir, size_t cap)
{
    assert_int_equal(server_temp_dir("models", dir, cap), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/a-llama.gguf", dir);
    assert_int_equal(symlink(STORIES, path), 0);
    snprintf(path, sizeof path, "%s/b-qwen.gguf", dir);
    assert_int_equal(symlink(QWEN, path), 0);
}

static void the_budget_unloads_the_idle_model_and_memory_comes_back(void **state)
{
    (void)state;
    char dir[512], buf[32];
    models_folder(dir, sizeof dir);
    /* Each model takes its file and a 4 MiB pool: 10 MiB holds one. */
    const char *args[] = {"--models-dir", dir,   "--models-ram", "10", "--pool-mb",
                          "4",            "--ctx", "256",         NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, NULL, args, env, 1), 0);
    port = srv.port;
    /* Nothing loads before it is asked for; readiness says where memory goes. */
    http_response rr = e2e_call(port, "GET", "/health/ready", NULL, NULL);
    expect_status(&rr, 200);
    assert_contains(rr.body, "\"models_loaded\":[]");
    assert_contains(rr.body, "\"persistence\":true");
    hc_free(&rr);
    assert_string_equal(state_of("a-llama", buf, sizeof buf), "available");
    assert_string_equal(state_of("b-qwen", buf, sizeof buf), "available");
    const char *text = "The little dog ran to the park and played with a red ball";
    http_response r = chat("a-llama", "keeper", text, 0);
    expect_status(&r, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    assert_string_equal(state_of("a-llama", buf, sizeof buf), "loaded");
    /* The other model needs the room: the idle one is unloaded. */
    r = chat("b-qwen", "other", text, 0);
    expect_status(&r, 200);
    hc_free(&r);
    assert_string_equal(state_of("b-qwen", buf, sizeof buf), "loaded");
    assert_string_equal(state_of("a-llama", buf, sizeof buf), "available");
    /* Back to the first: loaded again, its agent's memory read from disk. */
    r = chat("a-llama", "keeper", text, 0);
    expect_status(&r, 200);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    json_t *m = model_entry("a-llama");
    assert_int_equal(json_integer_value(json_object_get(m, "loads")), 2);
    json_decref(m);
    assert_string_equal(state_of("b-qwen", buf, sizeof buf), "available");
    /* Without --models-dir nothing is rescanned; here it is, but no
     * admin key: the route is off. */
    r = e2e_call(port, "POST", "/admin/models/rescan", NULL, NULL);
    assert_true(r.status == 401 || r.status == 403 || r.status == 404);
    hc_free(&r);
    stop();

    /* A budget smaller than a model: 503 with the reason, the server
     * stays up, the model stays available. */
    const char *tiny[] = {"--models-dir", dir, "--models-ram", "1", "--pool-mb", "4", NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, NULL, tiny, env, 1), 0);
    port = srv.port;
    r = chat("b-qwen", NULL, text, 0);
    expect_status(&r, 503);
    assert_contains(r.body, "no room for model b-qwen");
    assert_contains(r.body, "--models-ram 1 MiB");
    hc_free(&r);
    assert_string_equal(state_of("b-qwen", buf, sizeof buf), "available");
    json_t *q = model_entry("b-qwen");
    assert_contains(json_string_value(json_object_get(q, "error")), "no room");
    json_decref(q);
    e2e_assert_healthy(port);
    stop();
    server_temp_dir_remove(dir);
}

/* ---------------------------------------------------------------- reload */

typedef struct streamer {
    pthread_t thread;
    int index;
    int ok;
    char why[256];
} streamer;

static void *stream_main(void *arg)
{
    streamer *s = arg;
    char agent[32];
    snprintf(agent, sizeof agent, "streamer-%d", s->index);
    const char *body = "{\"model\":\"swap\",\"max_tokens\":48,\"temperature\":0,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"Tell me a long story about a brave little fox\"}]}";
    char headers[64];
    snprintf(headers, sizeof headers, "X-Agent-Id: %s\r\n", agent);
    http_response r = {0};
    /* Not e2e_call: a failure is reported by the test's thread, not this one. */
    if (hc_call(port, "POST", CC, headers, body, &r) != 0)
        r.status = -r.status - 1;
    hc_event ev[256];
    size_t n = r.status == 200 ? hc_sse_parse(r.body, ev, 256) : 0;
    s->ok = n >= 2 && strcmp(ev[n - 1].data, "[DONE]") == 0 && strstr(ev[n - 2].data, "usage");
    if (!s->ok)
        snprintf(s->why, sizeof s->why, "status %d, %zu events: %.200s", r.status, n,
                 r.body ? r.body : "");
    hc_sse_free(ev, n);
    hc_free(&r);
    return NULL;
}

static json_int_t field_of(const char *id, const char *key)
{
    json_t *m = model_entry(id);
    json_int_t v = m ? json_integer_value(json_object_get(m, key)) : -1;
    json_decref(m);
    return v;
}

static int wait_state(const char *id, const char *want)
{
    char buf[32];
    return strcmp(state_of(id, buf, sizeof buf), want) == 0;
}

static void a_reload_while_requests_stream_loses_none(void **state)
{
    (void)state;
    char dir[512], path[600];
    assert_int_equal(server_temp_dir("swap", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/swap.gguf", dir);
    assert_int_equal(symlink(STORIES, path), 0);
    const char *args[] = {"--models-dir", dir, "--admin-key", "adm", "--pool-mb", "16", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, NULL, args, env, 1), 0);
    port = srv.port;
    const char *text = "The old owl sat in the tree and watched the moon rise";
    http_response r = chat("swap", "remembered", text, 0);
    expect_status(&r, 200);
    hc_free(&r);
    enum { N = 4 };
    streamer s[N];
    for (int i = 0; i < N; i++) {
        s[i] = (streamer){.index = i};
        assert_int_equal(pthread_create(&s[i].thread, NULL, stream_main, &s[i]), 0);
    }
    /* Reload while they run on the old file. */
    double until = hc_now_ms() + 20000;
    while (field_of("swap", "running") < 1 && hc_now_ms() < until)
        usleep(2000);
    r = e2e_call(port, "POST", "/admin/models/swap/reload", "Authorization: Bearer adm\r\n", NULL);
    assert_int_equal(r.status, 202);
    hc_free(&r);
    /* A new request waits for the new file, then runs on it. */
    until = hc_now_ms() + 20000;
    while (!wait_state("swap", "loading") && field_of("swap", "loads") < 2 && hc_now_ms() < until)
        usleep(1000);
    r = chat("swap", "remembered", text, 0);
    int status = r.status;
    json_int_t cached = status == 200 ? cached_of(&r) : -1;
    hc_free(&r);
    for (int i = 0; i < N; i++) {
        pthread_join(s[i].thread, NULL);
        if (!s[i].ok) {
            char *log = server_log(&srv);
            fprintf(stderr, "%s\n", log);
            free(log);
            fail_msg("stream %d did not complete: %s", i, s[i].why);
        }
    }
    assert_int_equal(status, 200);
    if (cached <= 0) { /* same file, same fingerprint: the memory is kept */
        char *log = server_log(&srv);
        fprintf(stderr, "%s\n", log);
        free(log);
        fail_msg("the agent's memory was not reused after the reload");
    }
    until = hc_now_ms() + 20000;
    while (field_of("swap", "loads") < 2 && hc_now_ms() < until)
        usleep(10000);
    assert_int_equal(field_of("swap", "loads"), 2);
    /* Unknown model and non-admin caller. */
    r = e2e_call(port, "POST", "/admin/models/nope/reload", "Authorization: Bearer adm\r\n", NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    hc_free(&r);
    r = e2e_call(port, "POST", "/admin/models/swap/reload", NULL, NULL);
    assert_int_equal(r.status, 401);
    hc_free(&r);

    /* A file replaced by another model: the rescan reloads it, and its
     * agents start cold (another fingerprint). */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(QWEN, path), 0);
    r = e2e_call(port, "POST", "/admin/models/rescan", "Authorization: Bearer adm\r\n", NULL);
    expect_status(&r, 200);
    assert_contains(r.body, "\"changed\":1");
    hc_free(&r);
    until = hc_now_ms() + 30000;
    json_t *m = NULL;
    for (;;) {
        json_decref(m);
        m = model_entry("swap");
        const char *arch = json_string_value(json_object_get(m, "architecture"));
        if ((arch && strcmp(arch, "qwen2") == 0) || hc_now_ms() > until)
            break;
        usleep(10000);
    }
    assert_string_equal(json_string_value(json_object_get(m, "architecture")), "qwen2");
    json_decref(m);
    r = chat("swap", "remembered", text, 0);
    expect_status(&r, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    /* A file that left the folder is no longer served. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(kill(srv.pid, SIGHUP), 0); /* SIGHUP rescans too */
    until = hc_now_ms() + 20000;
    while ((m = model_entry("swap")) && hc_now_ms() < until) {
        json_decref(m);
        usleep(10000);
    }
    assert_null(m);
    r = chat("swap", NULL, text, 0);
    e2e_assert_openai_error(&r, 404, "model");
    hc_free(&r);
    e2e_assert_healthy(port);
    stop();
    server_temp_dir_remove(dir);
}

/* ---------------------------------------------------------------- bad flags */

static void bad_model_flags_are_refused_at_start(void **state)
{
    (void)state;
    static const char *const bad[][8] = {
        {"-m", "llama=" QWEN, NULL},                 /* two models named llama */
        {"--alias", "gpt-*=nobody", NULL},           /* alias to no model */
        {"--default-model", "nobody", NULL},         /* default that is no model */
        {"-m", "qwen=" QWEN, "--model-id", "x", NULL}, /* --model-id with two models */
        {"-m", "bad name=" QWEN, NULL},              /* a name clients cannot send */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        server_proc p;
        static const char *const env[] = {"SEMANTIC_API_KEY=", NULL};
        /* Does not become ready: the process exits with a usage error. */
        if (server_start(&p, SEMANTIC_BIN, "llama=" STORIES, bad[i], env, 1) == 0) {
            server_stop(&p, SIGKILL, 5000);
            fail_msg("case %zu started", i);
        }
        if (p.pid)
            server_stop(&p, SIGKILL, 5000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(models_by_name_alias_and_default, stop_server),
        cmocka_unit_test_teardown(the_same_agent_on_two_models_is_two_memories, stop_server),
        cmocka_unit_test_teardown(the_budget_unloads_the_idle_model_and_memory_comes_back,
                                  stop_server),
        cmocka_unit_test_teardown(a_reload_while_requests_stream_loses_none, stop_server),
        cmocka_unit_test(bad_model_flags_are_refused_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
