/*
 * The inspector's routes (docs/inspector.md, docs/http-api.md) against a
 * real `semantic serve` with two API keys: GET /ui and its files (public,
 * with a strict Content-Security-Policy), GET /v1/stats (shape, series
 * fed by requests, key required) and GET /v1/agents/{id}/requests (newest
 * first, within the caller's key, errors).
 */
#include "e2e_util.h"

#include <signal.h>

static server_proc srv;
static uint16_t port;

#define K1 "Authorization: Bearer key-one\r\n"
#define K2 "Authorization: Bearer key-two\r\n"
#define WRONG "Authorization: Bearer not-a-key\r\n"
#define BODY "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time there was a cat\"}]," \
             "\"max_tokens\":6,\"temperature\":0}"

static int start(void **state)
{
    (void)state;
    static const char *const args[] = {"--api-key", "key-one", "--api-key", "key-two", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    if (server_start(&srv, SEMANTIC_BIN, STORIES, args, env, 1) != 0)
        return -1;
    port = srv.port;
    return 0;
}

static int stop(void **state)
{
    (void)state;
    if (server_stop(&srv, SIGTERM, 20000) != 0)
        return -1;
    server_discard_log(&srv);
    return 0;
}

/* A chat request of agent id under the key header; returns its cached tokens. */
static json_int_t chat(const char *key, const char *id)
{
    char headers[256];
    snprintf(headers, sizeof headers, "%sX-Agent-ID: %s\r\n", key, id);
    http_response r = e2e_call(port, "POST", "/v1/chat/completions", headers, BODY);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    json_int_t cached = json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "usage"), "prompt_tokens_details"), "cached_tokens"));
    json_decref(j);
    hc_free(&r);
    return cached;
}

static void assert_header(const http_response *r, const char *name, const char *needle)
{
    char buf[1024];
    const char *v = hc_header(r, name, buf, sizeof buf);
    if (!v)
        fail_msg("no %s header in %s", name, r->head);
    assert_contains(v, needle);
}

/* ---------------------------------------------------------------- /ui */

static void the_page_is_public_and_locked_to_its_origin(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "GET", "/ui", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/html");
    assert_header(&r, "Content-Security-Policy", "default-src 'self'");
    assert_header(&r, "Content-Security-Policy", "script-src 'self'");
    assert_header(&r, "X-Content-Type-Options", "nosniff");
    assert_contains(r.body, "<!doctype html>");
    assert_contains(r.body, "src=\"/ui/inspector.js\"");
    assert_contains(r.body, "href=\"/ui/inspector.css\"");
    assert_contains(r.body, "<label for=\"auth-key\">");
    /* Nothing from another host: no absolute URL in the page. */
    assert_null(strstr(r.body, "http://"));
    assert_null(strstr(r.body, "https://"));
    hc_free(&r);

    r = e2e_call(port, "GET", "/ui/inspector.js", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/javascript");
    assert_header(&r, "Content-Security-Policy", "default-src 'self'");
    assert_contains(r.body, "/v1/stats");
    assert_null(strstr(r.body, "https://"));
    hc_free(&r);

    r = e2e_call(port, "GET", "/ui/inspector.css", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/css");
    assert_contains(r.body, "prefers-color-scheme: dark");
    hc_free(&r);

    r = e2e_call(port, "GET", "/ui/secrets.txt", NULL, NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    hc_free(&r);
    r = e2e_call(port, "POST", "/ui", NULL, "{}");
    e2e_assert_openai_error(&r, 405, NULL);
    hc_free(&r);
}

/* ---------------------------------------------------------------- /v1/stats */

static void stats_need_a_key(void **state)
{
    (void)state;
    http_response r = e2e_call(port, "GET", "/v1/stats", NULL, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/stats", WRONG, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
}

static json_int_t sum(const json_t *a)
{
    json_int_t s = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) s += json_integer_value(v);
    return s;
}

static void stats_have_their_shape_and_count_requests(void **state)
{
    (void)state;
    chat(K1, "stats-a");
    assert_true(chat(K1, "stats-a") > 0);
    http_response r = e2e_call(port, "GET", "/v1/stats", K1, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "stats");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "stories260K");
    assert_true(json_integer_value(json_object_get(j, "time")) > 1700000000);
    json_t *pool = json_object_get(j, "pool");
    static const char *const pool_keys[] = {"blocks_used", "blocks_total", "blocks_shared",
                                            "blocks_pinned", "block_bytes", "bytes_used",
                                            "bytes_total"};
    for (size_t i = 0; i < sizeof pool_keys / sizeof *pool_keys; i++)
        assert_true(json_is_integer(json_object_get(pool, pool_keys[i])));
    assert_true(json_integer_value(json_object_get(pool, "blocks_total")) > 0);
    assert_true(json_integer_value(json_object_get(pool, "blocks_used")) > 0);
    json_t *disk = json_object_get(j, "disk");
    assert_true(json_is_true(json_object_get(disk, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(disk, "budget_bytes")), 10240LL << 20);
    assert_true(json_is_integer(json_object_get(disk, "bytes")));
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "off");
    assert_true(json_integer_value(json_object_get(json_object_get(j, "agents"), "hot")) >= 1);
    json_t *s = json_object_get(j, "series");
    assert_int_equal(json_integer_value(json_object_get(s, "resolution_s")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "seconds")), 300);
    static const char *const series[] = {"requests_per_s", "ttft_cold_ms", "ttft_returning_ms",
                                         "decode_tokens_per_s", "memory_share"};
    for (size_t i = 0; i < sizeof series / sizeof *series; i++)
        assert_int_equal(json_array_size(json_object_get(s, series[i])), 300);
    assert_true(sum(json_object_get(s, "requests_per_s")) >= 2);
    /* The returning request is somewhere in the last seconds. */
    json_t *ret = json_object_get(s, "ttft_returning_ms"), *share = json_object_get(s, "memory_share");
    int seen_returning = 0, seen_share = 0;
    for (size_t i = 0; i < 300; i++) {
        seen_returning |= json_real_value(json_array_get(ret, i)) > 0;
        seen_share |= json_real_value(json_array_get(share, i)) > 0;
    }
    assert_true(seen_returning && seen_share);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "totals"), "cached_tokens")) > 0);
    json_decref(j);
    hc_free(&r);
}

/* ---------------------------------------------------------------- requests */

static void an_agent_lists_its_requests_newest_first(void **state)
{
    (void)state;
    assert_int_equal(chat(K1, "hist"), 0);
    json_int_t cached = chat(K1, "hist");
    assert_true(cached > 0);
    http_response r = e2e_call(port, "GET", "/v1/agents/hist/requests", K1, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "hist");
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2);
    json_t *last = json_array_get(data, 0), *first = json_array_get(data, 1);
    assert_int_equal(json_integer_value(json_object_get(last, "cached_tokens")), cached);
    assert_int_equal(json_integer_value(json_object_get(first, "cached_tokens")), 0);
    assert_true(json_integer_value(json_object_get(last, "at_ms")) >=
                json_integer_value(json_object_get(first, "at_ms")));
    assert_true(json_integer_value(json_object_get(last, "prompt_tokens")) > cached - 1);
    assert_int_equal(json_integer_value(json_object_get(last, "completion_tokens")), 6);
    assert_true(json_real_value(json_object_get(last, "ttft_ms")) > 0);
    assert_true(json_real_value(json_object_get(last, "duration_ms")) > 0);
    assert_string_equal(json_string_value(json_object_get(last, "finish")), "length");
    json_decref(j);
    hc_free(&r);
}

static void requests_stay_within_a_key_and_go_with_the_agent(void **state)
{
    (void)state;
    chat(K1, "mine");
    http_response r = e2e_call(port, "GET", "/v1/agents/mine/requests", K2, NULL);
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/mine/requests", NULL, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/mine/requests", WRONG, NULL);
    e2e_assert_openai_error(&r, 401, NULL);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/nobody/requests", K1, NULL);
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/bad.id/requests", K1, NULL);
    e2e_assert_openai_error(&r, 400, "id");
    hc_free(&r);
    r = e2e_call(port, "POST", "/v1/agents/mine/requests", K1, "{}");
    e2e_assert_openai_error(&r, 405, NULL);
    hc_free(&r);
    /* Deleted, then made again: the new agent starts without history. */
    r = e2e_call(port, "DELETE", "/v1/agents/mine", K1, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = e2e_call(port, "GET", "/v1/agents/mine/requests", K1, NULL);
    e2e_assert_openai_error(&r, 404, "id");
    hc_free(&r);
    chat(K1, "mine");
    r = e2e_call(port, "GET", "/v1/agents/mine/requests", K1, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = e2e_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    hc_free(&r);
    e2e_assert_healthy(port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_page_is_public_and_locked_to_its_origin),
        cmocka_unit_test(stats_need_a_key),
        cmocka_unit_test(stats_have_their_shape_and_count_requests),
        cmocka_unit_test(an_agent_lists_its_requests_newest_first),
        cmocka_unit_test(requests_stay_within_a_key_and_go_with_the_agent),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
