/*
 * Specification of the HTTP API (docs/http-api.md), run against a real
 * `semantic serve` on 127.0.0.1: every route, status and header, the
 * OpenAI and Anthropic shapes (whole and streamed), agent memory and its
 * namespaces, limits, a catalogue of bad requests, and shutdown.
 */
#include "e2e_util.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The shared server: no API keys, an admin key, small limits. */
static server_proc srv;
static uint16_t port;

static const char *const shared_args[] = {"--admin-key",
                                          "admin-secret",
                                          "--pool-mb",
                                          "64",
                                          "--max-batch",
                                          "4",
                                          "--max-body-bytes",
                                          "65536",
                                          "--max-header-bytes",
                                          "4096",
                                          "--max-connections",
                                          "8",
                                          "--read-timeout",
                                          "2",
                                          "--idle-timeout",
                                          "6",
                                          "--drain-timeout",
                                          "5",
                                          NULL};

static int start_shared(void **state)
{
    (void)state;
    if (server_start(&srv, SEMANTIC_BIN, STORIES, shared_args, NULL, 1) != 0)
        return -1;
    port = srv.port;
    return 0;
}

static int stop_shared(void **state)
{
    (void)state;
    int code = server_stop(&srv, SIGTERM, 20000);
    if (code != 0)
        return -1;
    server_discard_log(&srv);
    return 0;
}

#define CHAT_HELLO "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}]"

/* ---------------------------------------------------------------- operations */

static void health_readiness_and_request_ids(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    char v[256];
    /* A generated id on every response. */
    assert_non_null(hc_header(&r, "X-Request-ID", v, sizeof v));
    assert_true(strncmp(v, "req_", 4) == 0 && strlen(v) == 28);
    hc_free(&r);
    r = e2e_call(port, "GET", "/health/ready", NULL, NULL);
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "stories260K");
    json_decref(j);
    hc_free(&r);
    /* The client's id is echoed, on errors too; a malformed one is replaced. */
    r = e2e_call(port, "GET", "/nowhere", "X-Request-ID: trace-42.a:b\r\n", NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(hc_header(&r, "X-Request-ID", v, sizeof v), "trace-42.a:b");
    hc_free(&r);
    r = e2e_call(port, "GET", "/health", "X-Request-ID: has space\r\n", NULL);
    assert_true(strncmp(hc_header(&r, "X-Request-ID", v, sizeof v), "req_", 4) == 0);
    hc_free(&r);
}

static void one_json_log_line_per_request(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/chat/completions",
                               "X-Request-ID: log-check-1\r\nX-Agent-ID: logger\r\n",
                               CHAT_HELLO ",\"max_tokens\":3,\"temperature\":0}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    char *log = server_log(&srv);
    const char *line = strstr(log, "\"request_id\":\"log-check-1\"");
    assert_non_null(line);
    while (line > log && line[-1] != '\n')
        line--;
    const char *end = strchr(line, '\n');
    char *one = strndup(line, (size_t)(end - line));
    json_t *j = json_loads(one, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "route")), "chat_completions");
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "logger");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "completion_tokens")), 3);
    assert_true(json_integer_value(json_object_get(j, "prompt_tokens")) > 0);
    assert_non_null(json_object_get(j, "cached_tokens"));
    assert_true(json_is_number(json_object_get(j, "ttft_ms")));
    assert_true(json_is_number(json_object_get(j, "duration_ms")));
    json_decref(j);
    free(one);
    free(log);
}

static void metrics_in_prometheus_format(void **state)
{
    (void)state;
    double before =
        e2e_metric(port, "semantic_http_requests_total{route=\"models_list\",status=\"200\"}");
    http_response r = e2e_call(port, "GET", "/v1/models", NULL, NULL);
    hc_free(&r);
    double after =
        e2e_metric(port, "semantic_http_requests_total{route=\"models_list\",status=\"200\"}");
    assert_true(after == (before < 0 ? 0 : before) + 1);
    r = e2e_call(port, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    char v[128];
    assert_non_null(strstr(hc_header(&r, "Content-Type", v, sizeof v), "text/plain"));
    static const char *series[] = {
        "# TYPE semantic_http_requests_total counter",
        "# TYPE semantic_http_request_duration_seconds histogram",
        "semantic_http_request_duration_seconds_bucket{route=\"models_list\",le=\"+Inf\"}",
        "# TYPE semantic_time_to_first_token_seconds histogram",
        "semantic_prompt_tokens_total ",
        "semantic_cached_tokens_total ",
        "semantic_generated_tokens_total ",
        "semantic_cache_hits_total{model=\"stories260K\",tier=\"hot\"} ",
        "semantic_cache_hits_total{model=\"stories260K\",tier=\"warm\"} ",
        "semantic_cache_misses_total{model=\"stories260K\"} ",
        "semantic_pool_blocks_used{model=\"stories260K\"} ",
        "semantic_pool_blocks_total{model=\"stories260K\"} ",
        "semantic_agents{model=\"stories260K\",tier=\"hot\"} ",
        "semantic_agents{model=\"stories260K\",tier=\"warm\"} ",
        "semantic_disk_bytes{model=\"stories260K\"} ",
        "semantic_queue_depth{model=\"stories260K\"} ",
        "semantic_http_connections ",
        "semantic_ready 1"};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        assert_contains(r.body, series[i]);
    hc_free(&r);
    assert_true(e2e_metric(port, "semantic_pool_blocks_total") > 0);
}

/* ---------------------------------------------------------------- OpenAI */

static void chat_completion_in_openai_shape(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                               CHAT_HELLO ",\"model\":\"whatever\",\"max_tokens\":8,"
                                          "\"temperature\":0}");
    assert_int_equal(r.status, 200);
    char v[256];
    assert_non_null(hc_header(&r, "Server-Timing", v, sizeof v));
    json_t *j = e2e_json(&r);
    assert_true(strncmp(json_string_value(json_object_get(j, "id")), "chatcmpl-", 9) == 0);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "whatever");
    assert_true(json_is_integer(json_object_get(j, "created")));
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "index")), 0);
    json_t *m = json_object_get(c, "message");
    assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
    assert_true(json_string_length(json_object_get(m, "content")) > 0);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
    json_t *u = json_object_get(j, "usage");
    json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
    assert_true(p > 0);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 8);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), p + 8);
    assert_true(json_is_integer(
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")));
    json_decref(j);
    hc_free(&r);
}

/* The text of a chat stream; checks the chunk sequence on the way. */
static char *chat_stream_text(const http_response *r, int with_usage, json_t **usage)
{
    hc_event ev[512];
    size_t n = hc_sse_parse(r->body, ev, 512);
    assert_true(n >= 3);
    char *text = calloc(1, 1);
    size_t len = 0;
    int finished = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].data, "[DONE]") == 0) {
            assert_int_equal(i, n - 1);
            break;
        }
        json_t *j = json_loads(ev[i].data, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "object")),
                            "chat.completion.chunk");
        json_t *choices = json_object_get(j, "choices");
        if (json_array_size(choices) == 0) {
            /* The usage chunk: after the finish, before [DONE]. */
            assert_true(with_usage && finished);
            *usage = json_incref(json_object_get(j, "usage"));
            json_decref(j);
            continue;
        }
        json_t *c = json_array_get(choices, 0), *d = json_object_get(c, "delta");
        if (i == 0)
            assert_string_equal(json_string_value(json_object_get(d, "role")), "assistant");
        const char *piece = json_string_value(json_object_get(d, "content"));
        if (piece) {
            text = realloc(text, len + strlen(piece) + 1);
            memcpy(text + len, piece, strlen(piece) + 1);
            len += strlen(piece);
        }
        if (json_is_string(json_object_get(c, "finish_reason")))
            finished = 1;
        if (with_usage)
            assert_true(json_is_null(json_object_get(j, "usage")));
        json_decref(j);
    }
    assert_true(finished);
    assert_string_equal(ev[n - 1].data, "[DONE]");
    hc_sse_free(ev, n);
    return text;
}

static void chat_streams_in_openai_chunks(void **state)
{
    (void)state;
    const char *body = CHAT_HELLO ",\"max_tokens\":12,\"temperature\":0,\"stream\":true,"
                                  "\"stream_options\":{\"include_usage\":true}}";
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", NULL, body);
    assert_int_equal(r.status, 200);
    char v[128];
    assert_string_equal(hc_header(&r, "Content-Type", v, sizeof v), "text/event-stream");
    json_t *usage = NULL;
    char *streamed = chat_stream_text(&r, 1, &usage);
    assert_non_null(usage);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 12);
    json_decref(usage);
    hc_free(&r);
    /* The same request unstreamed says the same thing. */
    r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                 CHAT_HELLO ",\"max_tokens\":12,\"temperature\":0}");
    json_t *j = e2e_json(&r);
    const char *whole = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content"));
    assert_string_equal(streamed, whole);
    json_decref(j);
    hc_free(&r);
    free(streamed);
    /* Without include_usage there is no usage chunk. */
    r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                 CHAT_HELLO ",\"max_tokens\":4,\"temperature\":0,\"stream\":true}");
    assert_null(strstr(r.body, "\"usage\""));
    free(chat_stream_text(&r, 0, NULL));
    hc_free(&r);
}

static void stop_strings_end_the_text(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                               CHAT_HELLO ",\"max_tokens\":20,\"temperature\":0}");
    json_t *j = e2e_json(&r);
    const char *text = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content"));
    assert_true(strlen(text) > 6);
    /* Stop at the text's 4th..5th characters. */
    char stop[3] = {text[4], text[5], 0}, body[512];
    snprintf(body, sizeof body,
             CHAT_HELLO ",\"max_tokens\":20,\"temperature\":0,\"stop\":[\"zzzz\",\"%s\"]}", stop);
    size_t cut = (size_t)(strstr(text, stop) - text);
    char *expect = strndup(text, cut);
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "POST", "/v1/chat/completions", NULL, body);
    j = e2e_json(&r);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "message"), "content")), expect);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
    json_decref(j);
    hc_free(&r);
    free(expect);
}

static void completions_take_text_or_tokens(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/completions", NULL,
                               "{\"prompt\":\"Once upon a time\",\"temperature\":0}");
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "text_completion");
    assert_true(strncmp(json_string_value(json_object_get(j, "id")), "cmpl-", 5) == 0);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_true(json_is_string(json_object_get(c, "text")));
    /* OpenAI's default max_tokens for completions is 16. */
    assert_true(json_integer_value(
                    json_object_get(json_object_get(j, "usage"), "completion_tokens")) <= 16);
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "POST", "/v1/completions", NULL,
                 "{\"prompt\":[1,400,500],\"max_tokens\":3,\"temperature\":0}");
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 3);
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "POST", "/v1/completions", NULL,
                 "{\"prompt\":[\"Once\"],\"max_tokens\":5,\"temperature\":0,\"stream\":true}");
    assert_int_equal(r.status, 200);
    hc_event ev[64];
    size_t n = hc_sse_parse(r.body, ev, 64);
    assert_true(n >= 2);
    assert_string_equal(ev[n - 1].data, "[DONE]");
    json_t *last = json_loads(ev[n - 2].data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(last, "object")), "text_completion");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(last, "choices"), 0), "finish_reason")),
                        "length");
    json_decref(last);
    hc_sse_free(ev, n);
    hc_free(&r);
}

static void models_list_and_get(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "GET", "/v1/models", NULL, NULL);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *m = json_array_get(json_object_get(j, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "id")), "stories260K");
    assert_string_equal(json_string_value(json_object_get(m, "object")), "model");
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/models/stories260K", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/models/gpt-9", NULL, NULL);
    e2e_assert_openai_error(&r, 404, "model");
    hc_free(&r);
}

/* ---------------------------------------------------------------- agents */

static json_int_t cached_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    json_int_t c = json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "usage"), "prompt_tokens_details"), "cached_tokens"));
    json_decref(j);
    return c;
}

static char *content_of(const http_response *r)
{
    json_t *j = e2e_json(r);
    char *s = strdup(json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content")));
    json_decref(j);
    return s;
}

static void a_returning_agent_reuses_its_memory(void **state)
{
    (void)state;
    const char *h = "X-Agent-ID: story-teller\r\n";
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", h,
                               CHAT_HELLO ",\"max_tokens\":10,\"temperature\":0}");
    assert_int_equal(r.status, 200);
    assert_int_equal(cached_of(&r), 0);
    char *answer = content_of(&r);
    hc_free(&r);
    json_t *turn2 =
        json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}],s:i,s:i}", "messages", "role", "user",
                  "content", "Tell me a story", "role", "assistant", "content", answer, "role",
                  "user", "content", "And then?", "max_tokens", 5, "temperature", 0);
    char *body = json_dumps(turn2, JSON_COMPACT);
    r = e2e_call(port, "POST", "/v1/chat/completions", h, body);
    assert_int_equal(r.status, 200);
    /* Everything before the second user turn came from memory. */
    assert_true(cached_of(&r) > 20);
    hc_free(&r);
    /* A different agent of the same namespace (no keys here) with the same
     * conversation shares the first agent's blocks of it. */
    r = e2e_call(port, "POST", "/v1/chat/completions", "X-Agent-ID: other-teller\r\n", body);
    assert_true(cached_of(&r) > 20);
    hc_free(&r);
    free(body);
    json_decref(turn2);
    free(answer);
}

static void agents_are_listed_read_evicted_and_deleted(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                               CHAT_HELLO ",\"max_tokens\":2,\"agent_id\":\"lister\"}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *found = NULL, *a;
    size_t i;
    json_array_foreach(json_object_get(j, "data"), i,
                       a) if (strcmp(json_string_value(json_object_get(a, "id")), "lister") == 0)
        found = a;
    assert_non_null(found);
    assert_string_equal(json_string_value(json_object_get(found, "tier")), "hot");
    assert_true(json_integer_value(json_object_get(found, "tokens")) > 0);
    assert_true(json_integer_value(json_object_get(found, "hot_bytes")) > 0);
    static const char *fields[] = {"busy", "disk_bytes", "last_used_at", "hits", "tokens_saved"};
    for (i = 0; i < 5; i++)
        assert_non_null(json_object_get(found, fields[i]));
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/lister", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    /* Evicting drops the RAM copy; without a disk tier nothing is left. */
    r = e2e_call(port, "DELETE", "/v1/agents/lister?evict_only=true", NULL, NULL);
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_true(json_is_true(json_object_get(j, "evicted")));
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "DELETE", "/v1/agents/lister?evict_only=true", NULL, NULL);
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
    /* Deleting. */
    r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                 CHAT_HELLO ",\"max_tokens\":2,\"prompt_cache_key\":\"doomed\"}");
    hc_free(&r);
    r = e2e_call(port, "DELETE", "/v1/agents/doomed", NULL, NULL);
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_true(json_is_true(json_object_get(j, "deleted")));
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/doomed", NULL, NULL);
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
}

static void identity_precedence(void **state)
{
    (void)state;
    /* Header over agent_id over prompt_cache_key. */
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", "X-Agent-ID: by-header\r\n",
                               CHAT_HELLO ",\"max_tokens\":1,\"agent_id\":\"by-body\","
                                          "\"prompt_cache_key\":\"by-key\"}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "POST", "/v1/chat/completions", NULL,
                 CHAT_HELLO ",\"max_tokens\":1,\"agent_id\":\"by-body2\","
                            "\"prompt_cache_key\":\"by-key2\"}");
    hc_free(&r);
    static const char *exist[] = {"by-header", "by-body2"},
                      *absent[] = {"by-body", "by-key", "by-key2"};
    char path[128];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/v1/agents/%s", exist[i]);
        r = e2e_call(port, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        hc_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/agents/%s", absent[i]);
        r = e2e_call(port, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 404);
        hc_free(&r);
    }
    /* Anthropic: metadata.user_id. */
    r = e2e_call(port, "POST", "/v1/messages", NULL,
                 "{\"max_tokens\":1,\"metadata\":{\"user_id\":\"by-metadata\"},"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/by-metadata", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
}

static void prefill_warms_an_agent_without_generating(void **state)
{
    (void)state;
    const char *msgs = "\"messages\":[{\"role\":\"system\",\"content\":\"You tell stories about "
                       "cats and dogs and a big red ball.\"},{\"role\":\"user\",\"content\":"
                       "\"Tell me a story\"}]";
    char body[1024];
    snprintf(body, sizeof body, "{%s}", msgs);
    http_response r = e2e_call(port, "POST", "/v1/agents/warm-me/prefill", NULL, body);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "agent.prefill");
    json_int_t n = json_integer_value(json_object_get(j, "prompt_tokens"));
    assert_true(n > 20);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "agent"), "tokens")), n);
    json_decref(j);
    hc_free(&r);
    snprintf(body, sizeof body, "{%s,\"max_tokens\":3}", msgs);
    r = e2e_call(port, "POST", "/v1/chat/completions", "X-Agent-ID: warm-me\r\n", body);
    assert_int_equal(r.status, 200);
    /* The conversation was already computed, up to the assistant's turn. */
    assert_true(cached_of(&r) >= n - 2);
    hc_free(&r);
    /* A plain prompt works too. */
    r = e2e_call(port, "POST", "/v1/agents/warm-text/prefill", NULL,
                 "{\"prompt\":\"Once upon a time\"}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
}

/* A long stream of agent "victim" is cut by deleting the agent. */
static void *long_stream(void *arg)
{
    http_response *r = arg;
    hc_call(port, "POST", "/v1/chat/completions", "X-Agent-ID: victim\r\n",
            CHAT_HELLO ",\"max_tokens\":1900,\"temperature\":1.5,\"min_p\":0,\"stream\":true}", r);
    return NULL;
}

static void a_failure_mid_stream_ends_it_with_an_error_event(void **state)
{
    (void)state;
    http_response r;
    pthread_t t;
    pthread_create(&t, NULL, long_stream, &r);
    int busy = 0;
    for (int i = 0; i < 500 && !busy; i++) {
        http_response a = e2e_call(port, "GET", "/v1/agents/victim", NULL, NULL);
        if (a.status == 200) {
            json_t *j = e2e_json(&a);
            busy = json_is_true(json_object_get(j, "busy"));
            json_decref(j);
        }
        hc_free(&a);
        if (!busy)
            usleep(10000);
    }
    assert_true(busy);
    usleep(100000);
    http_response d = e2e_call(port, "DELETE", "/v1/agents/victim", NULL, NULL);
    assert_int_equal(d.status, 200);
    hc_free(&d);
    pthread_join(t, NULL);
    assert_int_equal(r.status, 200);
    hc_event ev[4096];
    size_t n = hc_sse_parse(r.body, ev, 4096);
    assert_true(n >= 2);
    json_t *last = json_loads(ev[n - 1].data, 0, NULL);
    assert_non_null(last);
    assert_non_null(json_object_get(json_object_get(last, "error"), "message"));
    assert_null(strstr(r.body, "[DONE]"));
    json_decref(last);
    hc_sse_free(ev, n);
    hc_free(&r);
    e2e_assert_healthy(port);
}

/* ---------------------------------------------------------------- Anthropic */

static void messages_in_anthropic_shape(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"claude-x\",\"max_tokens\":6,\"temperature\":0,"
                       "\"system\":[{\"type\":\"text\",\"text\":\"You tell stories.\"}],"
                       "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"Tell me a story\"}]}]}";
    http_response r = e2e_call(port, "POST", "/v1/messages", "X-Agent-ID: claude-1\r\n", body);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_true(strncmp(json_string_value(json_object_get(j, "id")), "msg_", 4) == 0);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(j, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "claude-x");
    json_t *block = json_array_get(json_object_get(j, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(block, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "max_tokens");
    assert_true(json_is_null(json_object_get(j, "stop_sequence")));
    json_t *u = json_object_get(j, "usage");
    json_int_t in = json_integer_value(json_object_get(u, "input_tokens")),
               read = json_integer_value(json_object_get(u, "cache_read_input_tokens")),
               made = json_integer_value(json_object_get(u, "cache_creation_input_tokens"));
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 6);
    assert_int_equal(read, 0);
    assert_true(made > 0);
    json_int_t total = in + read + made;
    json_decref(j);
    hc_free(&r);
    /* The same request again: the prompt comes from the agent's memory. */
    r = e2e_call(port, "POST", "/v1/messages", "X-Agent-ID: claude-1\r\n", body);
    j = e2e_json(&r);
    u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), total - 1);
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")) +
                         json_integer_value(json_object_get(u, "cache_read_input_tokens")) +
                         json_integer_value(json_object_get(u, "cache_creation_input_tokens")),
                     total);
    json_decref(j);
    hc_free(&r);
    /* count_tokens agrees. */
    r = e2e_call(port, "POST", "/v1/messages/count_tokens", NULL,
                 "{\"model\":\"x\",\"system\":\"You tell stories.\",\"messages\":[{\"role\":"
                 "\"user\",\"content\":\"Tell me a story\"}]}");
    assert_int_equal(r.status, 200);
    j = e2e_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "input_tokens")), total);
    json_decref(j);
    hc_free(&r);
}

static void messages_stream_anthropic_events(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "POST", "/v1/messages", NULL,
                               "{\"max_tokens\":10,\"temperature\":0,\"stream\":true,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(r.status, 200);
    hc_event ev[256];
    size_t n = hc_sse_parse(r.body, ev, 256);
    assert_true(n >= 6);
    assert_string_equal(ev[0].event, "message_start");
    size_t first = strcmp(ev[1].event, "ping") == 0 ? 2 : 1; /* blocks open as content comes */
    assert_string_equal(ev[first].event, "content_block_start");
    assert_string_equal(ev[n - 3].event, "content_block_stop");
    assert_string_equal(ev[n - 2].event, "message_delta");
    assert_string_equal(ev[n - 1].event, "message_stop");
    int deltas = 0;
    for (size_t i = first + 1; i < n - 3; i++) {
        assert_true(strcmp(ev[i].event, "content_block_delta") == 0 ||
                    strcmp(ev[i].event, "ping") == 0);
        deltas += strcmp(ev[i].event, "content_block_delta") == 0;
        json_t *j = json_loads(ev[i].data, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(j, "type")), ev[i].event);
        json_decref(j);
    }
    assert_true(deltas > 0);
    assert_non_null(strstr(r.body, "event: ping"));
    json_t *md = json_loads(ev[n - 2].data, 0, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "max_tokens");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(md, "usage"), "output_tokens")), 10);
    json_decref(md);
    json_t *ms = json_loads(ev[0].data, 0, NULL);
    json_t *m = json_object_get(ms, "message");
    assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
    assert_non_null(json_object_get(json_object_get(m, "usage"), "input_tokens"));
    json_decref(ms);
    hc_sse_free(ev, n);
    hc_free(&r);
}

static void a_stop_sequence_is_reported(void **state)
{
    (void)state;
    const char *base = "{\"max_tokens\":20,\"temperature\":0,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]";
    char body[512];
    snprintf(body, sizeof body, "%s}", base);
    http_response r = e2e_call(port, "POST", "/v1/messages", NULL, body);
    json_t *j = e2e_json(&r);
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "content"), 0), "text"));
    assert_true(strlen(text) > 5);
    char stop[3] = {text[3], text[4], 0};
    json_decref(j);
    hc_free(&r);
    snprintf(body, sizeof body, "%s,\"stop_sequences\":[\"qqq\",\"%s\"]}", base, stop);
    r = e2e_call(port, "POST", "/v1/messages", NULL, body);
    j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "stop_sequence");
    assert_string_equal(json_string_value(json_object_get(j, "stop_sequence")), stop);
    json_decref(j);
    hc_free(&r);
}

/* ---------------------------------------------------------------- bad requests */

typedef struct bad_request {
    const char *method, *path, *headers, *body;
    int status;
    int anthropic;
    const char *param; /* OpenAI "param" expected (NULL: not checked) */
} bad_request;

#define CC "/v1/chat/completions"
#define MSG "/v1/messages"
#define U1 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const bad_request bad[] = {
    {"POST", CC, NULL, "", 400, 0, NULL},
    {"POST", CC, NULL, "{", 400, 0, NULL},
    {"POST", CC, NULL, "[]", 400, 0, NULL},
    {"POST", CC, NULL, "{}", 400, 0, "messages"},
    {"POST", CC, NULL, "{\"messages\":\"hi\"}", 400, 0, "messages"},
    {"POST", CC, NULL, "{\"messages\":[]}", 400, 0, "messages"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", 400, 0,
     NULL},
    {"POST", CC, NULL, "{\"messages\":[1]}", 400, 0, "messages[0]"},
    {"POST", CC, NULL, "{\"messages\":[{\"content\":\"x\"}]}", 400, 0, "messages[0].role"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, 0,
     "messages[0].role"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":5,\"content\":\"x\"}]}", 400, 0,
     "messages[0].role"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":\"user\"}]}", 400, 0, "messages[0].content"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, 0,
     "messages[0].content"},
    {"POST", CC, NULL,
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
     400, 0, "messages[0].content[0]"},
    {"POST", CC, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
     400, 0, "messages[0].content[0]"},
    {"POST", CC, NULL, "{" U1 ",\"max_tokens\":-1}", 400, 0, "max_tokens"},
    {"POST", CC, NULL, "{" U1 ",\"max_tokens\":\"10\"}", 400, 0, "max_tokens"},
    {"POST", CC, NULL, "{" U1 ",\"max_tokens\":0}", 400, 0, "max_tokens"},
    {"POST", CC, NULL, "{" U1 ",\"max_tokens\":1000000000}", 400, 0, "max_tokens"},
    {"POST", CC, NULL, "{" U1 ",\"max_completion_tokens\":1.5}", 400, 0, "max_completion_tokens"},
    {"POST", CC, NULL, "{" U1 ",\"temperature\":3}", 400, 0, "temperature"},
    {"POST", CC, NULL, "{" U1 ",\"temperature\":\"hot\"}", 400, 0, "temperature"},
    {"POST", CC, NULL, "{" U1 ",\"top_p\":0}", 400, 0, "top_p"},
    {"POST", CC, NULL, "{" U1 ",\"top_p\":1.5}", 400, 0, "top_p"},
    {"POST", CC, NULL, "{" U1 ",\"top_k\":-1}", 400, 0, "top_k"},
    {"POST", CC, NULL, "{" U1 ",\"presence_penalty\":5}", 400, 0, "presence_penalty"},
    {"POST", CC, NULL, "{" U1 ",\"frequency_penalty\":-3}", 400, 0, "frequency_penalty"},
    {"POST", CC, NULL, "{" U1 ",\"n\":2}", 400, 0, "n"},
    {"POST", CC, NULL, "{" U1 ",\"n\":0}", 400, 0, "n"},
    {"POST", CC, NULL, "{" U1 ",\"stream\":\"yes\"}", 400, 0, "stream"},
    {"POST", CC, NULL, "{" U1 ",\"stream_options\":{\"include_usage\":true}}", 400, 0,
     "stream_options"},
    {"POST", CC, NULL, "{" U1 ",\"stop\":5}", 400, 0, "stop"},
    {"POST", CC, NULL, "{" U1 ",\"stop\":[\"a\",1]}", 400, 0, "stop[1]"},
    {"POST", CC, NULL,
     "{" U1 ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
     "\"m\",\"n\",\"o\",\"p\",\"q\"]}",
     400, 0, "stop"},
    {"POST", CC, NULL, "{" U1 ",\"stop\":\"\"}", 400, 0, "stop"},
    {"POST", CC, NULL, "{" U1 ",\"seed\":\"x\"}", 400, 0, "seed"},
    {"POST", CC, NULL, "{" U1 ",\"logprobs\":5}", 400, 0, "logprobs"},
    {"POST", CC, NULL, "{" U1 ",\"logprobs\":true,\"top_logprobs\":21}", 400, 0, "top_logprobs"},
    {"POST", CC, "X-Agent-ID: bad id!\r\n", "{" U1 "}", 400, 0, "X-Agent-ID"},
    {"POST", CC, NULL, "{" U1 ",\"agent_id\":\"a.b\"}", 400, 0, "agent_id"},
    {"POST", CC, NULL, "{" U1 ",\"agent_id\":5}", 400, 0, "agent_id"},
    {"POST", CC, NULL, "{" U1 ",\"prompt_cache_key\":5}", 400, 0, "prompt_cache_key"},
    {"POST", CC, NULL, "{" U1 ",\"response_format\":{\"type\":\"json_schema\"}}", 400, 0,
     "response_format.json_schema"},
    {"POST", CC, NULL, "{" U1 ",\"response_format\":{\"type\":\"yaml\"}}", 400, 0,
     "response_format.type"},
    {"POST", CC, NULL,
     "{" U1 ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
     "\"schema\":{\"type\":\"strnig\"}}}}",
     400, 0, "response_format.json_schema.schema"},
    {"POST", CC, NULL,
     "{" U1 ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
     "\"strict\":true,\"schema\":{\"type\":\"string\",\"pattern\":\"^a+$\"}}}}",
     400, 0, "response_format.json_schema.schema"},
    {"POST", CC, NULL, "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{}}]}", 400, 0,
     "tools[0]"},
    {"POST", CC, NULL,
     "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
     "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}",
     400, 0, "tool_choice"},
    {"POST", CC, NULL,
     "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
     "\"tool_choice\":\"sometimes\"}",
     400, 0, "tool_choice"},
    {"POST", CC, NULL, "{" U1 ",\"tool_choice\":\"required\"}", 400, 0, "tool_choice"},
    {"POST", CC, NULL, "{" U1 ",\"parallel_tool_calls\":\"yes\"}", 400, 0, "parallel_tool_calls"},
    {"POST", CC, NULL, "{" U1 ",\"tools\":[{\"type\":\"retrieval\"}]}", 400, 0, "tools[0]"},
    {"POST", CC, NULL,
     "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
     "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
     400, 0, "tools[1]"},
    {"POST", CC, NULL, "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]}",
     400, 0, "tools[0]"},
    {"POST", CC, NULL,
     "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":5}}]}",
     400, 0, "tools[0]"},
    {"POST", CC, NULL,
     "{" U1 ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":5}}}", 400,
     0, "response_format.json_schema.schema"},
    {"POST", CC, NULL,
     "{" U1 ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{},"
     "\"strict\":\"yes\"}}}",
     400, 0, "response_format.json_schema.strict"},
    {"POST", CC, NULL,
     "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
     "{\"role\":\"tool\",\"content\":\"42\"}]}",
     400, 0, "messages[1].tool_call_id"},
    {"POST", CC, NULL,
     "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":5}}]}]}",
     400, 0, "messages[0].tool_calls[0]"},
    {"POST", CC, NULL,
     "{" U1 ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"nope\"}}}}}],"
     "\"tool_choice\":\"required\"}",
     400, 0, "tools"},
    {"POST", CC, NULL,
     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"tool\","
     "\"tool_call_id\":\"call_nobody\",\"content\":\"42\"}]}",
     400, 0, "messages[1].tool_call_id"},
    {"POST", CC, NULL,
     "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"type\":"
     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
     400, 0, "messages[0].tool_calls[0]"},
    {"POST", CC, NULL, "{" U1 ",\"tools\":\"x\"}", 400, 0, "tools"},
    {"POST", CC, NULL, "{" U1 ",\"max_tokens\":1,\"max_tokens\":2}", 400, 0, NULL},
    {"POST", "/v1/completions", NULL, "{}", 400, 0, "prompt"},
    {"POST", "/v1/completions", NULL, "{\"prompt\":{}}", 400, 0, "prompt"},
    {"POST", "/v1/completions", NULL, "{\"prompt\":[\"a\",\"b\"]}", 400, 0, "prompt"},
    {"POST", "/v1/completions", NULL, "{\"prompt\":[1,99999]}", 400, 0, NULL},
    {"POST", "/v1/completions", NULL, "{\"prompt\":\"a\",\"echo\":true}", 400, 0, "echo"},
    {"POST", MSG, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":0," U1 "}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"system\":5," U1 "}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"temperature\":1.5," U1 "}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"stop_sequences\":\"x\"," U1 "}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"metadata\":\"x\"," U1 "}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5,\"metadata\":{\"user_id\":5}," U1 "}", 400, 1,
     NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
     "\"tool_use_id\":\"toolu_nobody\",\"content\":\"42\"}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
     "\"source\":{}}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5," U1 ",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web\"}]}",
     400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"tools\":[{\"description\":\"no name\"}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5," U1 ",\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
     "\"tool_choice\":{\"type\":\"tool\",\"name\":\"g\"}}",
     400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"thinking\":{\"type\":\"maybe\"}}", 400, 1,
     NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"output_config\":\"fast\"}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"output_config\":{\"format\":{\"type\":\"xml\"}}}",
     400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"context_management\":\"clear\"}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"tool_choice\":{\"type\":\"sometimes\"}}", 400, 1,
     NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"tool_choice\":{\"type\":\"tool\"}}", 400, 1, NULL},
    {"POST", MSG, NULL, "{\"max_tokens\":5," U1 ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":-1}}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
     "\"name\":\"f\",\"input\":{}}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
     "\"id\":\"t1\",\"name\":\"f\",\"input\":[1]}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
     "\"thinking\":5}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
     "\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\",\"input\":{}}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL,
     "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"search_result\"}]}]}",
     400, 1, NULL},
    {"POST", MSG, NULL, "not json", 400, 1, NULL},
    {"POST", "/v1/messages/count_tokens", NULL, "{\"messages\":[]}", 400, 1, NULL},
    {"GET", "/v1/agents/bad.id", NULL, NULL, 400, 0, "id"},
    {"GET", "/v1/agents/nobody", NULL, NULL, 404, 0, "id"},
    {"DELETE", "/v1/agents/nobody", NULL, NULL, 404, 0, "id"},
    {"DELETE", "/v1/agents/x?evict_only=maybe", NULL, NULL, 400, 0, "evict_only"},
    {"POST", "/v1/agents/p/prefill", NULL, "{}", 400, 0, "messages"},
    {"POST", "/v1/agents/p/prefill", NULL, "{" U1 ",\"prompt\":\"x\"}", 400, 0, "messages"},
    {"GET", "/v1/nothing", NULL, NULL, 404, 0, NULL},
    {"GET", "/v1/messages/nothing", NULL, NULL, 404, 1, NULL},
    {"GET", CC, NULL, NULL, 405, 0, NULL},
    {"PUT", "/v1/agents", NULL, "{}", 405, 0, NULL},
    {"DELETE", MSG, NULL, NULL, 405, 1, NULL},
    {"POST", "/admin/clear", NULL, NULL, 401, 0, NULL},
    {"POST", "/admin/clear", "Authorization: Bearer wrong\r\n", NULL, 401, 0, NULL},
};

static void every_bad_request_gets_its_error_and_the_server_stays_healthy(void **state)
{
    (void)state;
    size_t n = sizeof bad / sizeof bad[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const bad_request *b = &bad[i];
        http_response r = e2e_call(port, b->method, b->path, b->headers, b->body);
        printf("  %-6s %-32s %d %.160s\n", b->method, b->path, r.status, r.body);
        if (b->anthropic)
            e2e_assert_anthropic_error(&r, b->status);
        else
            e2e_assert_openai_error(&r, b->status, b->param);
        char v[128];
        assert_non_null(hc_header(&r, "X-Request-ID", v, sizeof v));
        if (b->status == 405)
            assert_non_null(hc_header(&r, "Allow", v, sizeof v));
        if (b->status == 401)
            assert_non_null(hc_header(&r, "WWW-Authenticate", v, sizeof v));
        hc_free(&r);
        e2e_assert_healthy(port);
    }
}

static void a_prompt_longer_than_the_context_is_refused(void **state)
{
    (void)state;
    /* 3000 words: more than the 2048-token context, less than the 64 KiB body limit. */
    size_t words = 3000;
    char *body = malloc(words * 6 + 256), *p = body;
    p += sprintf(p, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (size_t i = 0; i < words; i++)
        p += sprintf(p, "cat%s", i + 1 < words ? " " : "");
    sprintf(p, "\"}],\"max_tokens\":5}");
    http_response r = e2e_call(port, "POST", CC, NULL, body);
    e2e_assert_openai_error(&r, 400, NULL);
    assert_contains(r.body, "context_length_exceeded");
    hc_free(&r);
    free(body);
}

/* ---------------------------------------------------------------- limits */

static void bodies_over_the_limit_get_413(void **state)
{
    (void)state;
    size_t big = 70000;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[big] = '\0';
    body[0] = '{';
    body[big - 1] = '}';
    http_response r = e2e_call(port, "POST", CC, NULL, body);
    e2e_assert_openai_error(&r, 413, NULL);
    hc_free(&r);
    r = e2e_call(port, "POST", MSG, NULL, body);
    e2e_assert_anthropic_error(&r, 413);
    hc_free(&r);
    /* Chunked, no Content-Length: refused once read. */
    char *raw = malloc(big + 512), *p = raw;
    p += sprintf(p,
                 "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n%zx\r\n",
                 CC, big);
    memcpy(p, body, big);
    p += big;
    p += sprintf(p, "\r\n0\r\n\r\n");
    char *reply;
    size_t len;
    assert_int_equal(hc_raw(port, raw, (size_t)(p - raw), 10000, &reply, &len), 0);
    assert_true(strncmp(reply, "HTTP/1.1 413", 12) == 0);
    free(reply);
    free(raw);
    free(body);
    e2e_assert_healthy(port);
}

static void headers_over_the_limit_are_refused(void **state)
{
    (void)state;
    /* --max-header-bytes 4096: 3000 bytes of headers pass, 30000 do not. */
    size_t sizes[] = {3000, 30000};
    for (int i = 0; i < 2; i++) {
        char *raw = malloc(sizes[i] + 256), *p = raw;
        p += sprintf(p, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
        memset(p, 'a', sizes[i]);
        p += sizes[i];
        p += sprintf(p, "\r\n\r\n");
        char *reply;
        size_t len;
        assert_int_equal(hc_raw(port, raw, (size_t)(p - raw), 10000, &reply, &len), 0);
        if (i == 0)
            assert_true(strncmp(reply, "HTTP/1.1 200", 12) == 0);
        else
            assert_true(strncmp(reply, "HTTP/1.1 431", 12) == 0 ||
                        strncmp(reply, "HTTP/1.1 400", 12) == 0);
        free(reply);
        free(raw);
    }
    e2e_assert_healthy(port);
}

static void a_slow_client_is_disconnected(void **state)
{
    (void)state;
    int fd = hc_connect(port);
    assert_true(fd >= 0);
    double t0 = hc_now_ms();
    /* Half a request line, then a trickle within the idle timeout. */
    assert_int_equal(send(fd, "GET /hea", 8, MSG_NOSIGNAL), 8);
    int closed = 0;
    for (int i = 0; i < 40 && !closed; i++) {
        usleep(250000);
        e2e_assert_healthy(port); /* others are served meanwhile */
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
            closed = 1;
            break;
        }
        char c;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0)
            closed = 1;
    }
    double took = hc_now_ms() - t0;
    close(fd);
    assert_true(closed);
    /* --read-timeout 2: closed after about 2 s, well before the 10 s of trickling. */
    assert_true(took >= 1800 && took < 5000);
}

static void connections_beyond_the_limit_get_503(void **state)
{
    (void)state;
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = hc_connect(port);
        assert_true(fds[i] >= 0);
    }
    /* The server accounts for them as its event loop accepts them. */
    http_response r = e2e_call(port, "GET", "/health", NULL, NULL);
    for (int i = 0; i < 200 && r.status != 503; i++) {
        hc_free(&r);
        usleep(50000);
        r = e2e_call(port, "GET", "/health", NULL, NULL);
    }
    e2e_assert_openai_error(&r, 503, NULL);
    char v[32];
    assert_non_null(hc_header(&r, "Retry-After", v, sizeof v));
    hc_free(&r);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    for (int i = 0; i < 200; i++) { /* until the server has seen them close */
        http_response h = e2e_call(port, "GET", "/health", NULL, NULL);
        int ok = h.status == 200;
        hc_free(&h);
        if (ok)
            break;
        usleep(50000);
    }
    e2e_assert_healthy(port);
    assert_true(e2e_metric(port, "semantic_http_connections_rejected_total") >= 1);
}

/* ---------------------------------------------------------------- admin */

static void admin_clear_forgets_every_agent(void **state)
{
    (void)state;
    http_response r =
        e2e_call(port, "POST", CC, "X-Agent-ID: to-clear\r\n", "{" U1 ",\"max_tokens\":1}");
    hc_free(&r);
    r = e2e_call(port, "POST", "/admin/clear", "Authorization: Bearer admin-secret\r\n", NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_true(json_integer_value(json_object_get(j, "removed")) >= 1);
    json_decref(j);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents", NULL, NULL);
    j = e2e_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    hc_free(&r);
    /* With no agent and nothing running, agents hold no blocks. */
    assert_true(e2e_metric(port, "semantic_agents{tier=\"hot\"}") == 0);
}

/* ---------------------------------------------------------------- keys */

static void keys_guard_routes_and_namespace_agents(void **state)
{
    (void)state;
    server_proc k;
    static const char *const args[] = {"--api-key", "key-one", "--pool-mb", "32", NULL};
    static const char *const env[] = {"SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&k, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    uint16_t kp = k.port;
    /* Missing and wrong keys, in each API's shape. */
    http_response r = e2e_call(kp, "POST", CC, NULL, "{" U1 "}");
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/v1/models", "Authorization: Bearer nope\r\n", NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(kp, "POST", MSG, "x-api-key: nope\r\n", "{\"max_tokens\":1," U1 "}");
    e2e_assert_anthropic_error(&r, 401);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/v1/agents", NULL, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    /* Health needs no key, metrics do; admin routes are off without --admin-key. */
    e2e_assert_healthy(kp);
    r = e2e_call(kp, "GET", "/health/ready", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/metrics", NULL, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/metrics", "Authorization: Bearer key-one\r\n", NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "POST", "/admin/clear", "Authorization: Bearer key-one\r\n", NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    hc_free(&r);
    /* Both header forms work. */
    r = e2e_call(kp, "POST", CC, "Authorization: Bearer key-one\r\nX-Agent-ID: mine\r\n",
                 "{" U1 ",\"max_tokens\":2}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "POST", MSG, "x-api-key: key-one\r\n",
                 "{\"max_tokens\":1,\"metadata\":{\"user_id\":\"mine\"}," U1 "}");
    assert_int_equal(r.status, 200);
    hc_free(&r);
    assert_int_equal(server_stop(&k, SIGTERM, 20000), 0);
    server_discard_log(&k);

    /* Two keys: each sees only its own agents. */
    static const char *const env2[] = {"SEMANTIC_API_KEY=alpha-key, beta-key", NULL};
    static const char *const args2[] = {"--pool-mb", "32", NULL};
    assert_int_equal(server_start(&k, SEMANTIC_BIN, STORIES, args2, env2, 1), 0);
    kp = k.port;
    const char *A = "Authorization: Bearer alpha-key\r\n", *B = "x-api-key: beta-key\r\n";
    char ha[256], hb[256];
    snprintf(ha, sizeof ha, "%sX-Agent-ID: shared-name\r\n", A);
    snprintf(hb, sizeof hb, "%sX-Agent-ID: shared-name\r\n", B);
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story about a "
                      "cat\"}],\"max_tokens\":4,\"temperature\":0}";
    r = e2e_call(kp, "POST", CC, ha, req);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "POST", CC, ha, req);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    /* Beta's agent of the same name is another agent: cold. */
    r = e2e_call(kp, "POST", CC, hb, req);
    assert_int_equal(r.status, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/v1/agents", B, NULL);
    json_t *j = e2e_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")),
        "shared-name");
    json_decref(j);
    hc_free(&r);
    /* Beta deletes its agent; alpha's is untouched. */
    r = e2e_call(kp, "DELETE", "/v1/agents/shared-name", B, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "DELETE", "/v1/agents/shared-name", B, NULL);
    assert_int_equal(r.status, 404);
    hc_free(&r);
    r = e2e_call(kp, "GET", "/v1/agents/shared-name", A, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(kp, "POST", CC, ha, req);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    /* Anonymous prefix reuse stays within a key as well. */
    const char *anon = "{\"messages\":[{\"role\":\"user\",\"content\":\"A dog and a ball in "
                       "the park\"}],\"max_tokens\":4,\"temperature\":0}";
    r = e2e_call(kp, "POST", CC, A, anon);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    r = e2e_call(kp, "POST", CC, B, anon);
    assert_int_equal(r.status, 200);
    assert_int_equal(cached_of(&r), 0);
    hc_free(&r);
    r = e2e_call(kp, "POST", CC, A, anon);
    assert_true(cached_of(&r) > 0);
    hc_free(&r);
    assert_int_equal(server_stop(&k, SIGTERM, 20000), 0);
    server_discard_log(&k);
}

/* ---------------------------------------------------------------- queue and drain */

typedef struct long_call {
    uint16_t port;
    const char *agent;
    int stream;
    http_response r;
} long_call;

static void *long_request(void *arg)
{
    long_call *c = arg;
    char h[128], body[256];
    snprintf(h, sizeof h, "X-Agent-ID: %s\r\n", c->agent);
    snprintf(body, sizeof body,
             CHAT_HELLO ",\"max_tokens\":%d,\"temperature\":1.5,\"min_p\":0,\"stream\":%s}",
             c->stream ? 300 : 1900, c->stream ? "true" : "false");
    hc_call(c->port, "POST", CC, h, body, &c->r);
    return NULL;
}

static int wait_metric(uint16_t p, const char *series, double want)
{
    for (int i = 0; i < 1000; i++) {
        if (e2e_metric(p, series) >= want)
            return 1;
        usleep(10000);
    }
    return 0;
}

static void a_full_queue_answers_429(void **state)
{
    (void)state;
    server_proc q;
    static const char *const args[] = {"--max-batch", "1",  "--max-queue", "1",
                                       "--pool-mb",   "32", NULL};
    assert_int_equal(server_start(&q, SEMANTIC_BIN, STORIES, args, NULL, 1), 0);
    long_call a = {.port = q.port, .agent = "first"}, b = {.port = q.port, .agent = "second"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, long_request, &a);
    assert_true(wait_metric(q.port, "semantic_running_requests", 1));
    pthread_create(&tb, NULL, long_request, &b);
    assert_true(wait_metric(q.port, "semantic_queue_depth", 1));
    http_response r = e2e_call(q.port, "POST", CC, NULL, "{" U1 ",\"max_tokens\":1}");
    e2e_assert_openai_error(&r, 429, NULL);
    char v[32];
    assert_string_equal(hc_header(&r, "Retry-After", v, sizeof v), "1");
    hc_free(&r);
    r = e2e_call(q.port, "POST", MSG, NULL, "{\"max_tokens\":1," U1 "}");
    e2e_assert_anthropic_error(&r, 429);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                        "rate_limit_error");
    json_decref(j);
    hc_free(&r);
    /* Deleting the agents cancels their requests: both end with 503. */
    r = e2e_call(q.port, "DELETE", "/v1/agents/second", NULL, NULL);
    hc_free(&r);
    r = e2e_call(q.port, "DELETE", "/v1/agents/first", NULL, NULL);
    hc_free(&r);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    e2e_assert_openai_error(&a.r, 503, NULL);
    hc_free(&a.r);
    hc_free(&b.r);
    e2e_assert_healthy(q.port);
    assert_int_equal(server_stop(&q, SIGTERM, 20000), 0);
    server_discard_log(&q);
}

static void sigterm_drains_then_exits_0(void **state)
{
    (void)state;
    server_proc d;
    static const char *const args[] = {"--pool-mb", "32", "--drain-timeout", "30", NULL};
    assert_int_equal(server_start(&d, SEMANTIC_BIN, STORIES, args, NULL, 1), 0);
    long_call c = {.port = d.port, .agent = "drained", .stream = 1};
    pthread_t t;
    pthread_create(&t, NULL, long_request, &c);
    assert_true(wait_metric(d.port, "semantic_running_requests", 1));
    kill(d.pid, SIGTERM);
    /* Not ready, takes no new generation, still alive and still answers reads. */
    int draining = 0;
    for (int i = 0; i < 200 && !draining; i++) {
        http_response r = e2e_call(d.port, "GET", "/health/ready", NULL, NULL);
        draining = r.status == 503 && strstr(r.body, "draining") != NULL;
        hc_free(&r);
        if (!draining)
            usleep(5000);
    }
    assert_true(draining);
    http_response r = e2e_call(d.port, "POST", CC, NULL, "{" U1 ",\"max_tokens\":1}");
    e2e_assert_openai_error(&r, 503, NULL);
    hc_free(&r);
    r = e2e_call(d.port, "POST", MSG, NULL, "{\"max_tokens\":1," U1 "}");
    e2e_assert_anthropic_error(&r, 503);
    hc_free(&r);
    e2e_assert_healthy(d.port);
    pthread_join(t, NULL);
    /* The running stream was allowed to finish. */
    assert_int_equal(c.r.status, 200);
    assert_non_null(strstr(c.r.body, "data: [DONE]"));
    hc_free(&c.r);
    int code = server_stop(&d, 0, 30000); /* signal 0: just wait */
    assert_int_equal(code, 0);
    char *log = server_log(&d);
    assert_contains(log, "SIGTERM: draining");
    assert_contains(log, "\"stopped\"");
    free(log);
    server_discard_log(&d);
}

static void readiness_is_503_while_the_model_loads(void **state)
{
    (void)state;
    /* A FIFO as the model: loading blocks until someone writes to it. */
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/semantic-e2e-fifo-%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    server_proc l;
    assert_int_equal(server_start(&l, SEMANTIC_BIN, fifo, NULL, NULL, 0), 0);
    http_response r = e2e_call(l.port, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "\"loading\"");
    hc_free(&r);
    r = e2e_call(l.port, "GET", "/health/ready", NULL, NULL);
    assert_int_equal(r.status, 503);
    assert_contains(r.body, "\"status\":\"loading\"");
    assert_contains(r.body, "reason");
    hc_free(&r);
    r = e2e_call(l.port, "POST", CC, NULL, "{" U1 "}");
    e2e_assert_openai_error(&r, 503, NULL);
    assert_contains(r.body, "loading");
    hc_free(&r);
    r = e2e_call(l.port, "POST", MSG, NULL, "{\"max_tokens\":1," U1 "}");
    e2e_assert_anthropic_error(&r, 503);
    hc_free(&r);
    /* Not a model after all: the server says why and exits non-zero. (It
     * may refuse the FIFO before reading it: the write may then fail.) */
    signal(SIGPIPE, SIG_IGN);
    int fd = open(fifo, O_WRONLY);
    assert_true(fd >= 0);
    ssize_t w = write(fd, "not a gguf file", 15);
    (void)w;
    close(fd);
    int code = server_stop(&l, 0, 20000);
    assert_true(code > 0 && code < 128);
    unlink(fifo);
    server_discard_log(&l);
}

static void admin_drain_stops_the_server(void **state)
{
    (void)state;
    server_proc d;
    static const char *const args[] = {"--pool-mb", "32", "--admin-key", "adm", NULL};
    assert_int_equal(server_start(&d, SEMANTIC_BIN, STORIES, args, NULL, 1), 0);
    http_response r = e2e_call(d.port, "POST", "/admin/drain", "x-api-key: adm\r\n", NULL);
    assert_int_equal(r.status, 202);
    hc_free(&r);
    assert_int_equal(server_stop(&d, 0, 30000), 0);
    server_discard_log(&d);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(health_readiness_and_request_ids),
        cmocka_unit_test(one_json_log_line_per_request),
        cmocka_unit_test(metrics_in_prometheus_format),
        cmocka_unit_test(chat_completion_in_openai_shape),
        cmocka_unit_test(chat_streams_in_openai_chunks),
        cmocka_unit_test(stop_strings_end_the_text),
        cmocka_unit_test(completions_take_text_or_tokens),
        cmocka_unit_test(models_list_and_get),
        cmocka_unit_test(a_returning_agent_reuses_its_memory),
        cmocka_unit_test(agents_are_listed_read_evicted_and_deleted),
        cmocka_unit_test(identity_precedence),
        cmocka_unit_test(prefill_warms_an_agent_without_generating),
        cmocka_unit_test(a_failure_mid_stream_ends_it_with_an_error_event),
        cmocka_unit_test(messages_in_anthropic_shape),
        cmocka_unit_test(messages_stream_anthropic_events),
        cmocka_unit_test(a_stop_sequence_is_reported),
        cmocka_unit_test(every_bad_request_gets_its_error_and_the_server_stays_healthy),
        cmocka_unit_test(a_prompt_longer_than_the_context_is_refused),
        cmocka_unit_test(bodies_over_the_limit_get_413),
        cmocka_unit_test(headers_over_the_limit_are_refused),
        cmocka_unit_test(a_slow_client_is_disconnected),
        cmocka_unit_test(connections_beyond_the_limit_get_503),
        cmocka_unit_test(admin_clear_forgets_every_agent),
    };
    const struct CMUnitTest own_servers[] = {
        cmocka_unit_test(keys_guard_routes_and_namespace_agents),
        cmocka_unit_test(a_full_queue_answers_429),
        cmocka_unit_test(sigterm_drains_then_exits_0),
        cmocka_unit_test(admin_drain_stops_the_server),
        cmocka_unit_test(readiness_is_503_while_the_model_loads),
    };
    int failed = cmocka_run_group_tests_name("shared server", shared, start_shared, stop_shared);
    failed += cmocka_run_group_tests_name("own servers", own_servers, NULL, NULL);
    return failed;
}
