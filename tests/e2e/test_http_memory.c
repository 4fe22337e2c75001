/*
 * Shared and forked memory over HTTP (docs/http-api.md, Agents API and
 * cache_control; docs/agent-memory.md, "Sharing, forks and pins"), run
 * against a real `semantic serve` on 127.0.0.1: forks of agents and what
 * they share, pins and their budget, the agent listing's shared and own
 * tokens, the shared-block metrics, and Anthropic cache_control
 * breakpoints with their usage, within and across API keys.
 */
#include "e2e_util.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The shared server: no API keys. */
static server_proc srv;
static uint16_t port;

static int start_shared(void **state)
{
    (void)state;
    static const char *const args[] = {"--pool-mb", "64", "--max-batch", "4", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    if (server_start(&srv, SEMANTIC_BIN, STORIES, args, env, 1) != 0)
        return -1;
    port = srv.port;
    return 0;
}

static int stop_shared(void **state)
{
    (void)state;
    if (server_stop(&srv, SIGTERM, 20000) != 0)
        return -1;
    server_discard_log(&srv);
    return 0;
}

#define CC "/v1/chat/completions"
#define MSG "/v1/messages"
#define STORY_Q "Tell me a story about a cat and a dog"

/* ---------------------------------------------------------------- helpers */

static json_int_t cached_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    json_int_t c = json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "usage"), "prompt_tokens_details"), "cached_tokens"));
    json_decref(j);
    return c;
}

static json_int_t prompt_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    json_int_t n = json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens"));
    json_decref(j);
    return n;
}

/* The answer's text (malloc'd). */
static char *content_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    char *s = strdup(json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content")));
    json_decref(j);
    return s;
}

/* A chat body: the story question, then (when answer is given) the answer
 * and a follow-up question. malloc'd. */
static char *chat_body(const char *answer, const char *follow_up, int max_tokens)
{
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", STORY_Q);
    if (answer) {
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", answer));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", follow_up));
    }
    json_t *b = json_pack("{s:o,s:i,s:i}", "messages", msgs, "max_tokens", max_tokens,
                          "temperature", 0);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* POST CC as agent `agent` (X-Agent-ID); asserts 200. */
static http_response chat_as(uint16_t p, const char *agent, const char *body)
{
    char h[256];
    snprintf(h, sizeof h, "X-Agent-ID: %s\r\n", agent);
    http_response r = e2e_call(p, "POST", CC, h, body);
    if (r.status != 200)
        fail_msg("chat as %s: %d %s", agent, r.status, r.body);
    return r;
}

/* GET /v1/agents/{id} as JSON (new reference); asserts 200. */
static json_t *agent_get(uint16_t p, const char *headers, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/%s", id);
    http_response r = e2e_call(p, "GET", path, headers, NULL);
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    return j;
}

static json_int_t geti(const json_t *o, const char *field)
{
    const json_t *v = json_object_get(o, field);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", field);
    return json_integer_value(v);
}

/* A metrics series once it is above 0, waiting up to 2 s: the engine
 * publishes its figures after the step that applied an operation, which
 * may end just after the operation's answer. */
static double metric_positive(uint16_t p, const char *series)
{
    double v = e2e_metric(p, series);
    for (int i = 0; i < 200 && v <= 0; i++) {
        usleep(10000);
        v = e2e_metric(p, series);
    }
    return v;
}

/* POST path with body; returns the response (caller frees). */
static http_response post(uint16_t p, const char *path, const char *headers, const char *body)
{
    return e2e_call(p, "POST", path, headers, body);
}

/* ---------------------------------------------------------------- fork */

static void a_fork_starts_from_its_parents_memory(void **state)
{
    (void)state;
    char *b1 = chat_body(NULL, NULL, 12);
    http_response r = chat_as(port, "parent", b1);
    char *answer = content_of(&r);
    hc_free(&r);
    /* The same first turn for an agent that is never forked. */
    r = chat_as(port, "control", b1);
    hc_free(&r);
    free(b1);
    json_t *parent = agent_get(port, NULL, "parent");
    json_int_t parent_tokens = geti(parent, "tokens");
    json_decref(parent);

    r = post(port, "/v1/agents/parent/fork", NULL, "{\"into\":\"child\"}");
    if (r.status != 201)
        fail_msg("fork: %d %s", r.status, r.body);
    json_t *child = e2e_json(&r);
    hc_free(&r);
    assert_string_equal(json_string_value(json_object_get(child, "id")), "child");
    assert_string_equal(json_string_value(json_object_get(child, "object")), "agent");
    assert_string_equal(json_string_value(json_object_get(child, "tier")), "hot");
    assert_int_equal(geti(child, "tokens"), parent_tokens);
    assert_true(geti(child, "shared_tokens") > 0);
    assert_int_equal(geti(child, "own_tokens"), geti(child, "tokens") - geti(child, "shared_tokens"));
    assert_true(json_is_null(json_object_get(child, "pinned_until")));
    json_decref(child);
    /* GET names who shares: the parent, by its id (no namespace in it). */
    child = agent_get(port, NULL, "child");
    json_t *with = json_object_get(child, "shared_with");
    assert_true(json_array_size(with) >= 1);
    json_t *first = json_array_get(with, 0);
    assert_string_equal(json_string_value(json_object_get(first, "kind")), "agent");
    assert_string_equal(json_string_value(json_object_get(first, "id")), "parent");
    assert_true(geti(first, "tokens") > 0);
    json_decref(child);

    /* The listing shows both sides sharing; the metrics count the blocks. */
    r = e2e_call(port, "GET", "/v1/agents", NULL, NULL);
    json_t *list = e2e_json(&r);
    hc_free(&r);
    int seen = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(list, "data"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (strcmp(id, "parent") != 0 && strcmp(id, "child") != 0)
            continue;
        seen++;
        assert_true(geti(a, "shared_tokens") > 0);
        assert_int_equal(geti(a, "own_tokens"), geti(a, "tokens") - geti(a, "shared_tokens"));
        assert_true(json_object_get(a, "pinned_until") != NULL);
    }
    json_decref(list);
    assert_int_equal(seen, 2);
    assert_true(metric_positive(port, "semantic_pool_blocks_shared") > 0);
    assert_true(metric_positive(port, "semantic_agent_forks_total") >= 1);

    /* The child continues the parent's conversation: all of it is cached. */
    char *b2 = chat_body(answer, "What did the cat do next?", 6);
    r = chat_as(port, "child", b2);
    json_int_t child_cached = cached_of(&r);
    assert_true(child_cached >= parent_tokens - 2); /* the template may re-render the last turn's end */
    assert_true(child_cached > 20);
    hc_free(&r);
    /* The parent, after its child diverged, is as it would be without the fork. */
    r = chat_as(port, "control", b2);
    json_int_t control_cached = cached_of(&r);
    hc_free(&r);
    r = chat_as(port, "parent", b2);
    assert_int_equal(cached_of(&r), control_cached);
    hc_free(&r);
    free(b2);
    free(answer);
}

static void a_fork_can_start_from_a_shorter_prefix(void **state)
{
    (void)state;
    char *b = chat_body(NULL, NULL, 8);
    http_response r = chat_as(port, "long-parent", b);
    json_int_t n_prompt = prompt_of(&r);
    hc_free(&r);
    r = post(port, "/v1/agents/long-parent/fork", NULL, "{\"into\":\"short-child\",\"at_tokens\":5}");
    if (r.status != 201)
        fail_msg("fork at 5: %d %s", r.status, r.body);
    json_t *j = e2e_json(&r);
    assert_int_equal(geti(j, "tokens"), 5);
    json_decref(j);
    hc_free(&r);
    /* Its first request reuses those 5 tokens, no more. */
    r = chat_as(port, "short-child", b);
    assert_int_equal(cached_of(&r), 5);
    assert_int_equal(prompt_of(&r), n_prompt);
    hc_free(&r);
    free(b);
}

/* A parent only on disk is read back for the fork. */
static void a_warm_parent_can_be_forked(void **state)
{
    (void)state;
    char *b = chat_body(NULL, NULL, 6);
    http_response r = chat_as(port, "cold-parent", b);
    hc_free(&r);
    json_t *j = agent_get(port, NULL, "cold-parent");
    json_int_t tokens = geti(j, "tokens");
    json_decref(j);
    r = e2e_call(port, "DELETE", "/v1/agents/cold-parent?evict_only=true", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    /* The eviction's write ends shortly after the answer; a fork meanwhile
     * is 429 (retry). */
    for (int i = 0; i < 200 && e2e_metric(port, "semantic_agent_io_in_flight") != 0; i++)
        usleep(10000);
    j = agent_get(port, NULL, "cold-parent");
    assert_string_equal(json_string_value(json_object_get(j, "tier")), "warm");
    assert_int_equal(geti(j, "shared_tokens"), 0);
    json_decref(j);
    r = post(port, "/v1/agents/cold-parent/fork", NULL, "{\"into\":\"warm-child\"}");
    if (r.status != 201)
        fail_msg("fork of a warm parent: %d %s", r.status, r.body);
    j = e2e_json(&r);
    assert_int_equal(geti(j, "tokens"), tokens);
    assert_string_equal(json_string_value(json_object_get(j, "tier")), "hot");
    json_decref(j);
    hc_free(&r);
    /* Its first request, the parent's prompt again, reuses all of it but
     * the last token (which must be evaluated again). */
    r = chat_as(port, "warm-child", b);
    assert_true(cached_of(&r) >= prompt_of(&r) - 2);
    assert_true(cached_of(&r) > 10);
    hc_free(&r);
    free(b);
}

static void fork_errors(void **state)
{
    (void)state;
    char *b = chat_body(NULL, NULL, 2);
    http_response r = chat_as(port, "fork-src", b);
    hc_free(&r);
    r = chat_as(port, "fork-taken", b);
    hc_free(&r);
    free(b);
    json_t *src = agent_get(port, NULL, "fork-src");
    char body[256];
    snprintf(body, sizeof body, "{\"into\":\"too-far\",\"at_tokens\":%lld}",
             (long long)geti(src, "tokens") + 1);
    json_decref(src);
    const struct {
        const char *path, *body;
        int status;
        const char *param;
    } cases[] = {
        {"/v1/agents/nobody/fork", "{\"into\":\"x1\"}", 404, "id"},
        {"/v1/agents/bad%20id/fork", "{\"into\":\"x2\"}", 400, "id"},
        {"/v1/agents/fork-src/fork", "{}", 400, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"\"}", 400, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"has space\"}", 400, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":7}", 400, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"fork-taken\"}", 409, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"fork-src\"}", 409, "into"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"x3\",\"at_tokens\":0}", 400, "at_tokens"},
        {"/v1/agents/fork-src/fork", "{\"into\":\"x4\",\"at_tokens\":-1}", 400, "at_tokens"},
        {"/v1/agents/fork-src/fork", body, 400, "at_tokens"},
        {"/v1/agents/fork-src/fork", "not json", 400, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = post(port, cases[i].path, NULL, cases[i].body);
        e2e_assert_openai_error(&r, cases[i].status, cases[i].param);
        hc_free(&r);
    }
    /* Nothing was created by the refused forks. */
    static const char *absent[] = {"x1", "x2", "x3", "x4", "too-far"};
    for (size_t i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/agents/%s", absent[i]);
        r = e2e_call(port, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 404);
        hc_free(&r);
    }
    r = e2e_call(port, "GET", "/v1/agents/fork-src/fork", NULL, NULL);
    assert_int_equal(r.status, 405);
    hc_free(&r);
    e2e_assert_healthy(port);
}

/* ---------------------------------------------------------------- pin */

static void pins_are_set_listed_and_released(void **state)
{
    (void)state;
    char *b = chat_body(NULL, NULL, 2);
    http_response r = chat_as(port, "pinned", b);
    hc_free(&r);
    free(b);
    time_t before = time(NULL);
    r = post(port, "/v1/agents/pinned/pin", NULL, "{\"ttl_s\":120}");
    if (r.status != 200)
        fail_msg("pin: %d %s", r.status, r.body);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    json_int_t until = geti(j, "pinned_until");
    assert_true(until >= before + 119 && until <= time(NULL) + 121);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "pinned");
    json_decref(j);
    assert_true(metric_positive(port, "semantic_pool_blocks_pinned") > 0);
    /* The agent object and the listing show it. */
    j = agent_get(port, NULL, "pinned");
    assert_int_equal(geti(j, "pinned_until"), until);
    json_decref(j);
    /* A later pin replaces the earlier one. */
    r = post(port, "/v1/agents/pinned/pin", NULL, "{\"ttl_s\":30}");
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_true(geti(j, "pinned_until") <= time(NULL) + 31);
    json_decref(j);
    hc_free(&r);
    /* Released. */
    r = e2e_call(port, "DELETE", "/v1/agents/pinned/pin", NULL, NULL);
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_true(json_is_null(json_object_get(j, "pinned_until")));
    json_decref(j);
    hc_free(&r);
    j = agent_get(port, NULL, "pinned");
    assert_true(json_is_null(json_object_get(j, "pinned_until")));
    json_decref(j);
    /* Releasing again is no error. */
    r = e2e_call(port, "DELETE", "/v1/agents/pinned/pin", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
}

static void pin_errors(void **state)
{
    (void)state;
    char *b = chat_body(NULL, NULL, 2);
    http_response r = chat_as(port, "pin-me", b);
    hc_free(&r);
    r = chat_as(port, "gone-cold", b);
    hc_free(&r);
    free(b);
    /* Evicted: its memory is only on disk, nothing in RAM to pin. */
    r = e2e_call(port, "DELETE", "/v1/agents/gone-cold?evict_only=true", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *param;
    } cases[] = {
        {"POST", "/v1/agents/nobody/pin", "{\"ttl_s\":10}", 404, "id"},
        {"POST", "/v1/agents/gone-cold/pin", "{\"ttl_s\":10}", 404, "id"},
        {"DELETE", "/v1/agents/nobody/pin", NULL, 404, "id"},
        {"POST", "/v1/agents/pin-me/pin", "{}", 400, "ttl_s"},
        {"POST", "/v1/agents/pin-me/pin", "{\"ttl_s\":0}", 400, "ttl_s"},
        {"POST", "/v1/agents/pin-me/pin", "{\"ttl_s\":86401}", 400, "ttl_s"},
        {"POST", "/v1/agents/pin-me/pin", "{\"ttl_s\":\"60\"}", 400, "ttl_s"},
        {"POST", "/v1/agents/pin-me/pin", "[]", 400, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = e2e_call(port, cases[i].method, cases[i].path, NULL, cases[i].body);
        e2e_assert_openai_error(&r, cases[i].status, cases[i].param);
        if (cases[i].status == 404 && strstr(cases[i].path, "gone-cold"))
            assert_non_null(strstr(r.body, "RAM"));
        hc_free(&r);
    }
    r = e2e_call(port, "POST", "/v1/agents/pin-me/pin", NULL, "{\"ttl_s\":86400}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "DELETE", "/v1/agents/pin-me/pin", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
}

/* Pins cannot fill the pool: on a small pool, pinning agent after agent
 * ends in 503 while the pinned ones stay, and releasing makes room. */
static void pins_have_a_budget(void **state)
{
    (void)state;
    server_proc s;
    static const char *const args[] = {"--pool-mb", "1", "--ctx", "256", "--max-batch", "2", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    char *b = chat_body(NULL, NULL, 40);
    int refused = 0, pinned = 0;
    char id[32], path[64];
    for (int i = 0; i < 64 && !refused; i++) {
        snprintf(id, sizeof id, "budget-%d", i);
        http_response r = chat_as(s.port, id, b);
        hc_free(&r);
        snprintf(path, sizeof path, "/v1/agents/%s/pin", id);
        r = post(s.port, path, NULL, "{\"ttl_s\":600}");
        if (r.status == 503) {
            e2e_assert_openai_error(&r, 503, NULL);
            assert_non_null(strstr(r.body, "budget"));
            refused = 1;
        } else if (r.status == 200) {
            pinned++;
        } else if (r.status != 404) { /* reclaimed before its pin: not hot */
            fail_msg("pin %s: %d %s", id, r.status, r.body);
        }
        hc_free(&r);
    }
    assert_true(refused);
    assert_true(pinned > 0);
    /* Releasing the first pin makes room for another. */
    http_response r = e2e_call(s.port, "DELETE", "/v1/agents/budget-0/pin", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = chat_as(s.port, id, b);
    hc_free(&r);
    r = post(s.port, path, NULL, "{\"ttl_s\":600}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    free(b);
    e2e_assert_healthy(s.port);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

/* ---------------------------------------------------------------- cache_control */

/* A messages body: a long system block marked with system_ttl (NULL:
 * unmarked) and a user message asking question, marked with user_ttl ("":
 * no ttl field; NULL: unmarked). malloc'd. */
static char *marked_body(const char *system_ttl, const char *user_ttl, const char *question,
                         int stream)
{
    /* Several hundred tokens (several KV blocks), as system prompts are. */
    char sys_text[2048] = "";
    for (int i = 0; i < 6; i++)
        strcat(sys_text, "You are a storyteller for small children. You tell short, happy "
                         "stories about cats, dogs, birds and a big red ball in the park. "
                         "Every story has a beginning, a middle and an end. ");
    json_t *sys = json_pack("{s:s,s:s}", "type", "text", "text", sys_text);
    if (system_ttl)
        json_object_set_new(sys, "cache_control",
                            json_pack("{s:s,s:s}", "type", "ephemeral", "ttl", system_ttl));
    json_t *user = json_pack("{s:s,s:s}", "type", "text", "text", question);
    if (user_ttl && *user_ttl)
        json_object_set_new(user, "cache_control",
                            json_pack("{s:s,s:s}", "type", "ephemeral", "ttl", user_ttl));
    else if (user_ttl)
        json_object_set_new(user, "cache_control", json_pack("{s:s}", "type", "ephemeral"));
    json_t *b = json_pack("{s:s,s:i,s:i,s:b,s:[o],s:[{s:s,s:[o]}]}", "model", "claude-x",
                          "max_tokens", 4, "temperature", 0, "stream", stream, "system", sys,
                          "messages", "role", "user", "content", user);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

typedef struct an_usage {
    json_int_t input, read, creation, m5, h1, output;
} an_usage;

static an_usage usage_from(const json_t *u)
{
    const json_t *cc = json_object_get(u, "cache_creation");
    if (!json_is_object(cc))
        fail_msg("usage has no cache_creation object");
    an_usage a = {geti(u, "input_tokens"),
                  geti(u, "cache_read_input_tokens"),
                  geti(u, "cache_creation_input_tokens"),
                  geti(cc, "ephemeral_5m_input_tokens"),
                  geti(cc, "ephemeral_1h_input_tokens"),
                  geti(u, "output_tokens")};
    assert_int_equal(a.m5 + a.h1, a.creation);
    return a;
}

/* POST MSG (whole) and its usage; asserts 200. */
static an_usage messages_usage(uint16_t p, const char *headers, const char *body)
{
    http_response r = e2e_call(p, "POST", MSG, headers, body);
    if (r.status != 200)
        fail_msg("messages: %d %s", r.status, r.body);
    json_t *j = e2e_json(&r);
    an_usage u = usage_from(json_object_get(j, "usage"));
    json_decref(j);
    hc_free(&r);
    return u;
}

static void breakpoints_report_creation_then_reads(void **state)
{
    (void)state;
    server_proc s;
    static const char *const args[] = {"--pool-mb", "64", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=alpha-key, beta-key",
                                      "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    const char *A = "x-api-key: alpha-key\r\n", *B = "x-api-key: beta-key\r\n";
    char *body = marked_body("1h", "", STORY_Q, 0);
    /* Cold: everything up to the user's breakpoint is written, the system
     * prompt for an hour, the rest of it for 5 minutes. */
    an_usage u = messages_usage(s.port, A, body);
    assert_int_equal(u.read, 0);
    assert_true(u.h1 > 256);
    assert_true(u.m5 > 5);
    /* After the last mark: the generation prompt (chatml spelled out in
     * the stories vocabulary's characters). */
    assert_true(u.input > 0 && u.input < 30);
    json_int_t total = u.input + u.read + u.creation;
    /* The same prompt again, anonymous: read from the cache, nothing written. */
    u = messages_usage(s.port, A, body);
    assert_true(u.read >= total - u.input);
    assert_int_equal(u.creation, 0);
    assert_int_equal(u.input + u.read + u.creation, total);
    /* An agent of the same key reuses the marked prefix on its first request. */
    char h[256];
    snprintf(h, sizeof h, "%sX-Agent-ID: worker-1\r\n", A);
    u = messages_usage(s.port, h, body);
    assert_true(u.read >= total - u.input);
    assert_int_equal(u.creation, 0);
    /* Forks stay within a key: beta cannot fork alpha's agent, nor see alpha's fork. */
    http_response r = post(s.port, "/v1/agents/worker-1/fork", B, "{\"into\":\"stolen\"}");
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
    r = post(s.port, "/v1/agents/worker-1/fork", A, "{\"into\":\"worker-2\"}");
    assert_int_equal(r.status, 201);
    hc_free(&r);
    r = e2e_call(s.port, "GET", "/v1/agents/worker-2", B, NULL);
    assert_int_equal(r.status, 404);
    hc_free(&r);
    json_decref(agent_get(s.port, A, "worker-2"));
    /* Another key reuses nothing. */
    u = messages_usage(s.port, B, body);
    assert_int_equal(u.read, 0);
    assert_true(u.creation > 0);
    free(body);

    /* Streaming reports the same usage in message_start and message_delta. */
    body = marked_body("5m", "1h", "Tell me a story about a bird", 1);
    r = e2e_call(s.port, "POST", MSG, B, body);
    assert_int_equal(r.status, 200);
    hc_event ev[64];
    size_t n = hc_sse_parse(r.body, ev, 64);
    assert_true(n >= 5);
    assert_string_equal(ev[0].event, "message_start");
    json_t *start = json_loads(ev[0].data, 0, NULL);
    an_usage first = usage_from(json_object_get(json_object_get(start, "message"), "usage"));
    json_decref(start);
    assert_string_equal(ev[n - 2].event, "message_delta");
    json_t *delta = json_loads(ev[n - 2].data, 0, NULL);
    an_usage last = usage_from(json_object_get(delta, "usage"));
    json_decref(delta);
    assert_int_equal(first.read, last.read);
    assert_int_equal(first.creation, last.creation);
    /* Beta read its system prompt from its request above; what is new up
     * to the user's mark is written for an hour (the last mark's TTL). */
    assert_true(last.read > 256);
    assert_true(last.creation > 0);
    assert_int_equal(last.h1, last.creation);
    assert_int_equal(last.m5, 0);
    hc_sse_free(ev, n);
    hc_free(&r);
    free(body);
    /* Without breakpoints, an anonymous request writes nothing. */
    u = messages_usage(s.port, A,
                       "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(u.creation, 0);
    assert_int_equal(u.h1 + u.m5, 0);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

static void tools_and_tool_blocks_take_breakpoints(void **state)
{
    (void)state;
    const char *body =
        "{\"max_tokens\":2,\"temperature\":0,"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"The weather in a city\","
        "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}},"
        "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"},"
        "\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":\"Sunny\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}";
    an_usage u = messages_usage(port, "X-Agent-ID: tool-marks\r\n", body);
    assert_true(u.creation > 0);
    assert_true(u.h1 > 0); /* the tools, for an hour */
    assert_true(u.m5 > 0); /* the turns, for 5 minutes */
}

static void bad_breakpoints_are_400(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"Hi\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"2h\"}}]}]}",
         "messages[0].content[0].cache_control.ttl"},
        {"{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"Hi\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":300}}]}]}",
         "messages[0].content[0].cache_control.ttl"},
        {"{\"max_tokens\":1,\"system\":[{\"type\":\"text\",\"text\":\"S\",\"cache_control\":"
         "{\"type\":\"persistent\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
         "system[0].cache_control.type"},
        {"{\"max_tokens\":1,\"tools\":[{\"name\":\"f\",\"cache_control\":\"yes\"}],"
         "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
         "tools[0].cache_control"},
        {"{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"text\",\"text\":\"a\",\"cache_control\":{\"type\":\"ephemeral\"}},"
         "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}},"
         "{\"type\":\"text\",\"text\":\"c\",\"cache_control\":{\"type\":\"ephemeral\"}},"
         "{\"type\":\"text\",\"text\":\"d\",\"cache_control\":{\"type\":\"ephemeral\"}},"
         "{\"type\":\"text\",\"text\":\"e\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
         "A maximum of 4 blocks with cache_control"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_response r = e2e_call(port, "POST", MSG, NULL, cases[i].body);
        e2e_assert_anthropic_error(&r, 400);
        if (!strstr(r.body, cases[i].field))
            fail_msg("case %zu: the error does not name %s: %s", i, cases[i].field, r.body);
        hc_free(&r);
    }
    /* Four marks and a null one are fine. */
    http_response r = e2e_call(
        port, "POST", MSG, NULL,
        "{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"a\",\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"5m\"}},"
        "{\"type\":\"text\",\"text\":\"c\",\"cache_control\":null},"
        "{\"type\":\"text\",\"text\":\"d\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}},"
        "{\"type\":\"text\",\"text\":\"e\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    e2e_assert_healthy(port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_fork_starts_from_its_parents_memory),
        cmocka_unit_test(a_fork_can_start_from_a_shorter_prefix),
        cmocka_unit_test(a_warm_parent_can_be_forked),
        cmocka_unit_test(fork_errors),
        cmocka_unit_test(pins_are_set_listed_and_released),
        cmocka_unit_test(pin_errors),
        cmocka_unit_test(tools_and_tool_blocks_take_breakpoints),
        cmocka_unit_test(bad_breakpoints_are_400),
        cmocka_unit_test(pins_have_a_budget),
        cmocka_unit_test(breakpoints_report_creation_then_reads),
    };
    return cmocka_run_group_tests(tests, start_shared, stop_shared);
}
