/*
 * Specification of the OpenAI Responses API (docs/responses-api.md), run
 * against real `semantic serve` processes with a random-weight model under
 * Llama 3.1's chat template: the response object, stored responses and
 * their input items, deletion, store false, the stream's events, forced
 * tool calls and schemas, a catalogue of bad requests, namespaces of API
 * keys, a branching conversation whose branches share their parent's
 * memory, retention, and responses that survive a restart.
 */
#include "e2e_util.h"

#include <signal.h>
#include <stdlib.h>

#define LLAMA31 SEM_TEST_DATA "/models/tiny-llama31.gguf"
#define TEMPLATE_LLAMA31 SEM_TEST_DATA "/chat/meta-llama-Llama-3.1-8B-Instruct.jinja"
#define LONG_MS 120000 /* a generation on a busy sanitized build */

static server_proc srv;   /* open access */
static server_proc keyed; /* two API keys, a count limit of 3 */

static int start_all(void **state)
{
    (void)state;
    const char *const open_args[] = {"-c", "4096", "--pool-mb", "64", "--chat-template-file",
                                     TEMPLATE_LLAMA31, NULL};
    const char *const key_args[] = {"-c", "2048", "--pool-mb", "32", "--chat-template-file",
                                    TEMPLATE_LLAMA31, "--api-key", "key-one", "--api-key",
                                    "key-two", "--responses-max", "3", NULL};
    if (server_start(&srv, SEMANTIC_BIN, LLAMA31, open_args, NULL, 1) != 0 ||
        server_start(&keyed, SEMANTIC_BIN, LLAMA31, key_args, NULL, 1) != 0)
        return -1;
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    int bad = server_stop(&srv, SIGTERM, 20000) != 0;
    bad |= server_stop(&keyed, SIGTERM, 20000) != 0;
    server_discard_log(&srv);
    server_discard_log(&keyed);
    return bad ? -1 : 0;
}

#define KEY1 "Authorization: Bearer key-one\r\n"
#define KEY2 "Authorization: Bearer key-two\r\n"

/* ---------------------------------------------------------------- helpers */

static http_response call(uint16_t port, const char *method, const char *path,
                          const char *headers, const char *body)
{
    http_response r;
    if (hc_call_within(port, method, path, headers, body, LONG_MS, &r) != 0)
        fail_msg("%s %s: no response (status %d)", method, path, r.status);
    return r;
}

/* POST /v1/responses that must answer 200; the response object. */
static json_t *create(uint16_t port, const char *headers, const char *body)
{
    http_response r = call(port, "POST", "/v1/responses", headers, body);
    if (r.status != 200)
        fail_msg("POST /v1/responses %s: %d %s", body, r.status, r.body);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    return j;
}

static const char *id_of(const json_t *o) { return json_string_value(json_object_get(o, "id")); }

static json_int_t usage(const json_t *o, const char *field)
{
    const json_t *u = json_object_get(o, "usage");
    if (strcmp(field, "cached_tokens") == 0)
        return json_integer_value(
            json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens"));
    return json_integer_value(json_object_get(u, field));
}

/* A turn of a conversation: input text, continuing prev (NULL: fresh). */
static json_t *turn(uint16_t port, const char *prev, const char *text)
{
    char body[1024];
    if (prev)
        snprintf(body, sizeof body,
                 "{\"input\":\"%s\",\"previous_response_id\":\"%s\",\"max_output_tokens\":8,"
                 "\"temperature\":0}",
                 text, prev);
    else
        snprintf(body, sizeof body,
                 "{\"input\":\"%s\",\"max_output_tokens\":8,\"temperature\":0}",
                 text);
    return create(port, NULL, body);
}

/* GET /v1/agents/{id}'s tokens, or -1 when there is no such agent. */
static json_int_t agent_tokens(uint16_t port, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/%s", id);
    http_response r = call(port, "GET", path, NULL, NULL);
    json_int_t t = -1;
    if (r.status == 200) {
        json_t *j = e2e_json(&r);
        t = json_integer_value(json_object_get(j, "tokens"));
        json_decref(j);
    }
    hc_free(&r);
    return t;
}

/* The text of an output's first message. */
static const char *output_text(const json_t *o)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(o, "output"), i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "type")), "message") == 0)
            return json_string_value(
                json_object_get(json_array_get(json_object_get(it, "content"), 0), "text"));
    }
    return NULL;
}

/* ---------------------------------------------------------------- the object */

static void create_answers_a_response_object(void **state)
{
    (void)state;
    json_t *o = create(srv.port, NULL,
                       "{\"model\":\"anything\",\"input\":\"Hello\",\"max_output_tokens\":6,"
                       "\"metadata\":{\"k\":\"v\"},\"unknown_field\":1}");
    assert_true(strncmp(id_of(o), "resp_", 5) == 0);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "response");
    assert_true(json_is_integer(json_object_get(o, "created_at")));
    const char *status = json_string_value(json_object_get(o, "status"));
    assert_true(strcmp(status, "completed") == 0 || strcmp(status, "incomplete") == 0);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "anything");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "metadata"), "k")),
                        "v");
    assert_true(json_is_null(json_object_get(o, "previous_response_id")));
    assert_true(json_is_true(json_object_get(o, "store")));
    const json_t *msg = json_array_get(json_object_get(o, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(msg, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_true(strncmp(id_of(msg), "msg_", 4) == 0);
    assert_non_null(output_text(o));
    json_int_t in = usage(o, "input_tokens"), out = usage(o, "output_tokens");
    assert_true(in > 0 && out > 0 && out <= 6);
    assert_int_equal(usage(o, "total_tokens"), in + out);
    assert_true(json_is_integer(json_object_get(
        json_object_get(json_object_get(o, "usage"), "output_tokens_details"), "reasoning_tokens")));
    /* A fresh conversation without an identity gets an agent named after it. */
    assert_true(agent_tokens(srv.port, id_of(o)) >= in);
    json_decref(o);
}

static void get_input_items_and_delete(void **state)
{
    (void)state;
    json_t *o = create(srv.port, NULL,
                       "{\"input\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                       "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
                       "\"input_text\",\"text\":\"One\"}]},{\"role\":\"assistant\",\"content\":"
                       "\"Two\",\"id\":\"msg_given\"}],\"max_output_tokens\":4}");
    char path[256], items[300];
    snprintf(path, sizeof path, "/v1/responses/%s", id_of(o));
    snprintf(items, sizeof items, "%s/input_items", path);
    http_response r = call(srv.port, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *got = e2e_json(&r);
    hc_free(&r);
    assert_true(json_equal(got, o));
    json_decref(got);
    /* Newest first by default, with ids (a given id is kept). */
    r = call(srv.port, "GET", items, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *l = e2e_json(&r);
    hc_free(&r);
    assert_string_equal(json_string_value(json_object_get(l, "object")), "list");
    json_t *data = json_object_get(l, "data");
    assert_int_equal(json_array_size(data), 3);
    assert_string_equal(id_of(json_array_get(data, 0)), "msg_given");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 2), "role")),
                        "developer");
    assert_string_equal(json_string_value(json_object_get(l, "first_id")), "msg_given");
    assert_true(json_is_false(json_object_get(l, "has_more")));
    char first[64];
    snprintf(first, sizeof first, "%s", id_of(json_array_get(data, 2)));
    json_decref(l);
    /* order=asc, limit and after. */
    char q[400];
    snprintf(q, sizeof q, "%s?order=asc&limit=1", items);
    r = call(srv.port, "GET", q, NULL, NULL);
    l = e2e_json(&r);
    hc_free(&r);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 1);
    assert_string_equal(json_string_value(json_object_get(l, "last_id")), first);
    assert_true(json_is_true(json_object_get(l, "has_more")));
    json_decref(l);
    snprintf(q, sizeof q, "%s?order=asc&after=%s", items, first);
    r = call(srv.port, "GET", q, NULL, NULL);
    l = e2e_json(&r);
    hc_free(&r);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 2);
    json_decref(l);
    snprintf(q, sizeof q, "%s?limit=0", items);
    r = call(srv.port, "GET", q, NULL, NULL);
    e2e_assert_openai_error(&r, 400, "limit");
    hc_free(&r);
    /* Delete once; then it is gone everywhere. */
    r = call(srv.port, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *d = e2e_json(&r);
    hc_free(&r);
    assert_true(json_is_true(json_object_get(d, "deleted")));
    assert_string_equal(id_of(d), id_of(o));
    json_decref(d);
    const char *const gone[][2] = {{"GET", path}, {"GET", items}, {"DELETE", path}};
    for (size_t i = 0; i < 3; i++) {
        r = call(srv.port, gone[i][0], gone[i][1], NULL, NULL);
        e2e_assert_openai_error(&r, 404, NULL);
        hc_free(&r);
    }
    json_decref(o);
}

static void store_false_keeps_nothing(void **state)
{
    (void)state;
    json_t *o = create(srv.port, NULL, "{\"input\":\"Hi\",\"store\":false,\"max_output_tokens\":4}");
    assert_true(json_is_false(json_object_get(o, "store")));
    char path[256], body[256];
    snprintf(path, sizeof path, "/v1/responses/%s", id_of(o));
    http_response r = call(srv.port, "GET", path, NULL, NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    hc_free(&r);
    snprintf(body, sizeof body, "{\"input\":\"More\",\"previous_response_id\":\"%s\"}", id_of(o));
    r = call(srv.port, "POST", "/v1/responses", NULL, body);
    e2e_assert_openai_error(&r, 404, "previous_response_id");
    hc_free(&r);
    assert_int_equal(agent_tokens(srv.port, id_of(o)), -1); /* anonymous: no agent either */
    json_decref(o);
}

/* ---------------------------------------------------------------- the stream */

static void stream_sends_the_event_sequence(void **state)
{
    (void)state;
    http_response r = call(srv.port, "POST", "/v1/responses", NULL,
                           "{\"input\":\"Count\",\"max_output_tokens\":5,\"stream\":true}");
    assert_int_equal(r.status, 200);
    hc_event ev[64];
    size_t n = hc_sse_parse(r.body, ev, 64);
    const char *expect[] = {"response.created", "response.in_progress",
                            "response.output_item.added", "response.content_part.added"};
    assert_true(n >= 8);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(ev[i].event, expect[i]);
    const char *tail[] = {"response.output_text.done", "response.content_part.done",
                          "response.output_item.done"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(ev[n - 4 + i].event, tail[i]);
    assert_true(strcmp(ev[n - 1].event, "response.completed") == 0 ||
                strcmp(ev[n - 1].event, "response.incomplete") == 0);
    {
        /* Deltas between, sequence numbers 0, 1, 2... and the type in the data. */
        char text[4096] = "";
        for (size_t i = 0; i < n; i++) {
            json_error_t je;
            json_t *d = json_loads(ev[i].data, 0, &je);
            assert_non_null(d);
            assert_int_equal(json_integer_value(json_object_get(d, "sequence_number")), i);
            assert_string_equal(json_string_value(json_object_get(d, "type")), ev[i].event);
            if (i >= 4 && i < n - 4) {
                assert_string_equal(ev[i].event, "response.output_text.delta");
                strncat(text, json_string_value(json_object_get(d, "delta")),
                        sizeof text - strlen(text) - 1);
            }
            if (i == n - 1) {
                /* The final object is the stored one, and its text the deltas'. */
                json_t *resp = json_object_get(d, "response");
                assert_string_equal(output_text(resp), text);
                char path[256];
                snprintf(path, sizeof path, "/v1/responses/%s", id_of(resp));
                http_response g = call(srv.port, "GET", path, NULL, NULL);
                json_t *stored = e2e_json(&g);
                hc_free(&g);
                assert_true(json_equal(stored, resp));
                json_decref(stored);
            }
            json_decref(d);
        }
    }
    hc_sse_free(ev, n);
    hc_free(&r);
}

/* ---------------------------------------------------------------- tools and formats */

#define WEATHER_TOOL                                                                          \
    "{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather\","            \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","      \
    "\"maxLength\":12},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},"         \
    "\"required\":[\"city\",\"days\"],\"additionalProperties\":false},\"strict\":true}"

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void check_call(const json_t *item)
{
    assert_string_equal(json_string_value(json_object_get(item, "type")), "function_call");
    assert_string_equal(json_string_value(json_object_get(item, "name")), "get_weather");
    assert_true(strncmp(id_of(item), "fc_", 3) == 0);
    assert_true(json_string_length(json_object_get(item, "call_id")) > 0);
    json_t *args = json_loads(json_string_value(json_object_get(item, "arguments")), 0, NULL);
    assert_non_null(args);
    assert_true(json_is_string(json_object_get(args, "city")));
    assert_true(code_points(json_string_value(json_object_get(args, "city"))) <= 12);
    json_int_t days = json_integer_value(json_object_get(args, "days"));
    assert_true(days >= 1 && days <= 7);
    assert_int_equal(json_object_size(args), 2);
    json_decref(args);
}

static void forced_tool_call_then_its_output(void **state)
{
    (void)state;
    json_t *o = create(srv.port, NULL,
                       "{\"input\":\"Weather in Paris?\",\"tools\":[" WEATHER_TOOL "],"
                       "\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"},"
                       "\"temperature\":0}");
    const json_t *item = json_array_get(json_object_get(o, "output"), 0);
    check_call(item);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "tool_choice"), "name")),
                        "get_weather");
    /* The caller runs the tool and sends its output back on the conversation. */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"previous_response_id\":\"%s\",\"input\":[{\"type\":\"function_call_output\","
             "\"call_id\":\"%s\",\"output\":\"sunny\"}],\"tools\":[" WEATHER_TOOL "],"
             "\"tool_choice\":\"none\",\"max_output_tokens\":6}",
             id_of(o), json_string_value(json_object_get(item, "call_id")));
    json_t *next = create(srv.port, NULL, body);
    assert_non_null(output_text(next));
    assert_true(usage(next, "cached_tokens") > 0);
    json_decref(next);
    /* The same call, streamed: arguments as deltas, then done. */
    http_response r = call(srv.port, "POST", "/v1/responses", NULL,
                           "{\"input\":\"Weather in Rome?\",\"tools\":[" WEATHER_TOOL "],"
                           "\"tool_choice\":\"required\",\"stream\":true,\"temperature\":0}");
    assert_int_equal(r.status, 200);
    hc_event ev[256];
    size_t n = hc_sse_parse(r.body, ev, 256), deltas = 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        deltas += strcmp(ev[i].event, "response.function_call_arguments.delta") == 0;
        if (strcmp(ev[i].event, "response.function_call_arguments.done") == 0)
            done++;
    }
    assert_true(deltas > 0);
    assert_int_equal(done, 1);
    json_t *last = json_loads(ev[n - 1].data, 0, NULL);
    check_call(json_array_get(json_object_get(json_object_get(last, "response"), "output"), 0));
    json_decref(last);
    hc_sse_free(ev, n);
    hc_free(&r);
    json_decref(o);
}

static void json_schema_format(void **state)
{
    (void)state;
    json_t *o = create(srv.port, NULL,
                       "{\"input\":\"A city\",\"temperature\":0,\"text\":{\"format\":{\"type\":"
                       "\"json_schema\",\"name\":\"city\",\"strict\":true,\"schema\":{\"type\":"
                       "\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8}},"
                       "\"required\":[\"name\"],\"additionalProperties\":false}}}}");
    json_t *v = json_loads(output_text(o), 0, NULL);
    assert_non_null(v);
    assert_true(json_is_string(json_object_get(v, "name")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(o, "text"), "format"),
                                          "type")),
        "json_schema");
    json_decref(v);
    json_decref(o);
}

/* ---------------------------------------------------------------- bad requests */

static void every_bad_request_is_a_400_naming_its_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *param;
        int status;
    } bad[] = {
        {"{\"input\":", NULL, 400},
        {"{}", "input", 400},
        {"{\"input\":42}", "input", 400},
        {"{\"input\":[]}", "input", 400},
        {"{\"input\":[7]}", "input[0]", 400},
        {"{\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}", "input[0].type", 400},
        {"{\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "input[0].role", 400},
        {"{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
         "\"image_url\":\"x\"}]}]}",
         "input[0].content[0]", 400},
        {"{\"input\":[{\"role\":\"user\",\"content\":5}]}", "input[0].content", 400},
        {"{\"input\":[{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
         "input[0].call_id", 400},
        {"{\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"nope\",\"output\":\"x\"}]}",
         "input[0].call_id", 400},
        {"{\"input\":\"x\",\"previous_response_id\":\"resp_nope\"}", "previous_response_id", 404},
        {"{\"input\":\"x\",\"previous_response_id\":5}", "previous_response_id", 400},
        {"{\"input\":\"x\",\"tools\":{}}", "tools", 400},
        {"{\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools[0]", 400},
        {"{\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"bad name\"}]}", "tools[0]",
         400},
        {"{\"input\":\"x\",\"tools\":[" WEATHER_TOOL "],\"tool_choice\":{\"type\":\"function\","
         "\"name\":\"other\"}}",
         "tool_choice", 400},
        {"{\"input\":\"x\",\"tool_choice\":\"sometimes\"}", "tool_choice", 400},
        {"{\"input\":\"x\",\"tool_choice\":\"required\"}", "tool_choice", 400},
        {"{\"input\":\"x\",\"text\":5}", "text", 400},
        {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"xml\"}}}", "text.format.type", 400},
        {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}",
         "text.format.schema", 400},
        {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\","
         "\"strict\":\"yes\",\"schema\":{}}}}",
         "text.format.strict", 400},
        {"{\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens", 400},
        {"{\"input\":\"x\",\"temperature\":7}", "temperature", 400},
        {"{\"input\":\"x\",\"stream\":\"yes\"}", "stream", 400},
        {"{\"input\":\"x\",\"metadata\":[]}", "metadata", 400},
        {"{\"input\":\"x\",\"instructions\":[1]}", "instructions", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_response r = call(srv.port, "POST", "/v1/responses", NULL, bad[i].body);
        if (r.status != bad[i].status)
            fail_msg("%s: expected %d, got %d %s", bad[i].body, bad[i].status, r.status, r.body);
        e2e_assert_openai_error(&r, bad[i].status, bad[i].param);
        hc_free(&r);
    }
    http_response r = call(srv.port, "GET", "/v1/responses/resp_nope", NULL, NULL);
    e2e_assert_openai_error(&r, 404, NULL);
    hc_free(&r);
    r = call(srv.port, "PUT", "/v1/responses/resp_nope", NULL, NULL);
    assert_int_equal(r.status, 405);
    hc_free(&r);
    e2e_assert_healthy(srv.port);
}

/* ---------------------------------------------------------------- keys and retention */

static void another_keys_response_is_not_found(void **state)
{
    (void)state;
    json_t *o = create(keyed.port, KEY1, "{\"input\":\"Mine\",\"max_output_tokens\":4}");
    char path[256], items[300], body[256];
    snprintf(path, sizeof path, "/v1/responses/%s", id_of(o));
    snprintf(items, sizeof items, "%s/input_items", path);
    snprintf(body, sizeof body, "{\"input\":\"x\",\"previous_response_id\":\"%s\"}", id_of(o));
    const char *const tries[][3] = {
        {"GET", path, NULL}, {"GET", items, NULL}, {"POST", "/v1/responses", body},
        {"DELETE", path, NULL}};
    for (size_t i = 0; i < 4; i++) {
        http_response r = call(keyed.port, tries[i][0], tries[i][1], KEY2, tries[i][2]);
        e2e_assert_openai_error(&r, 404, NULL);
        hc_free(&r);
    }
    http_response r = call(keyed.port, "GET", path, KEY1, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    r = call(keyed.port, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 401);
    hc_free(&r);
    json_decref(o);
}

/* --responses-max 3: the fourth response deletes the first. */
static void the_count_limit_deletes_the_oldest(void **state)
{
    (void)state;
    char ids[4][64];
    for (int i = 0; i < 4; i++) {
        json_t *o = create(keyed.port, KEY2, "{\"input\":\"n\",\"max_output_tokens\":2}");
        snprintf(ids[i], sizeof ids[i], "%s", id_of(o));
        json_decref(o);
    }
    for (int i = 0; i < 4; i++) {
        char path[300];
        snprintf(path, sizeof path, "/v1/responses/%.64s", ids[i]);
        http_response r = call(keyed.port, "GET", path, KEY2, NULL);
        assert_int_equal(r.status, i == 0 ? 404 : 200);
        hc_free(&r);
    }
}

/* ---------------------------------------------------------------- conversations */

/*
 * Three turns, then two continuations from turn 2: each renders turns 1
 * and 2 (the same prompt as turn 3 for the same text), runs on a fork of
 * the conversation's agent named after itself, and reuses at least turn
 * 2's prompt; the parent keeps turn 3. Continuing the latest response
 * extends the agent in place.
 */
static void branches_from_turn_two_share_its_memory(void **state)
{
    (void)state;
    json_t *t1 = turn(srv.port, NULL, "Turn one");
    json_t *t2 = turn(srv.port, id_of(t1), "Turn two");
    json_t *t3 = turn(srv.port, id_of(t2), "Turn three");
    /* Each turn continued the same agent (named after turn 1). */
    assert_true(usage(t2, "cached_tokens") >= usage(t1, "input_tokens"));
    assert_true(usage(t3, "cached_tokens") >= usage(t2, "input_tokens"));
    assert_int_equal(agent_tokens(srv.port, id_of(t2)), -1);
    json_int_t parent = agent_tokens(srv.port, id_of(t1));
    assert_true(parent >= usage(t3, "input_tokens"));

    json_t *b1 = turn(srv.port, id_of(t2), "Turn three");
    json_t *b2 = turn(srv.port, id_of(t2), "Something else entirely");
    /* The right context: turns 1 and 2 and the new input, not turn 3. */
    assert_int_equal(usage(b1, "input_tokens"), usage(t3, "input_tokens"));
    assert_true(usage(b2, "input_tokens") > usage(t2, "input_tokens") + usage(t2, "output_tokens"));
    assert_true(usage(b2, "input_tokens") < usage(t3, "input_tokens") + 16);
    /* Shared memory: each branch reused turn 2's tokens, and lives on its own agent. */
    assert_true(usage(b1, "cached_tokens") >= usage(t2, "input_tokens"));
    assert_true(usage(b2, "cached_tokens") >= usage(t2, "input_tokens"));
    assert_true(agent_tokens(srv.port, id_of(b1)) >= usage(b1, "input_tokens"));
    assert_true(agent_tokens(srv.port, id_of(b2)) >= usage(b2, "input_tokens"));
    assert_int_equal(agent_tokens(srv.port, id_of(t1)), parent); /* untouched by the branches */
    /* A branch's own continuation extends the branch's agent. */
    json_t *b1b = turn(srv.port, id_of(b1), "And then");
    assert_true(usage(b1b, "cached_tokens") >= usage(b1, "input_tokens"));
    assert_int_equal(agent_tokens(srv.port, id_of(b1b)), -1);
    /* The chain: previous_response_id is echoed; input_items are the turn's own. */
    assert_string_equal(json_string_value(json_object_get(b1b, "previous_response_id")), id_of(b1));
    json_t *all[] = {t1, t2, t3, b1, b2, b1b};
    for (size_t i = 0; i < 6; i++)
        json_decref(all[i]);
}

/* A caller's agent identity carries a fresh conversation. */
static void a_named_agent_holds_a_fresh_conversation(void **state)
{
    (void)state;
    json_t *o = create(srv.port, "X-Agent-ID: resp-tester\r\n",
                       "{\"input\":\"Hello agent\",\"max_output_tokens\":4}");
    assert_true(agent_tokens(srv.port, "resp-tester") >= usage(o, "input_tokens"));
    assert_int_equal(agent_tokens(srv.port, id_of(o)), -1);
    json_decref(o);
    o = create(srv.port, NULL,
               "{\"input\":\"Hello\",\"prompt_cache_key\":\"resp-key-agent\",\"max_output_tokens\":4}");
    assert_true(agent_tokens(srv.port, "resp-key-agent") > 0);
    json_decref(o);
}

/* Stored responses, and the memory behind them, survive a restart. */
static void responses_survive_a_restart(void **state)
{
    (void)state;
    server_proc s;
    const char *const args[] = {"-c", "2048", "--pool-mb", "32", "--chat-template-file",
                                TEMPLATE_LLAMA31, NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, LLAMA31, args, NULL, 1), 0);
    json_t *o = turn(s.port, NULL, "Remember me");
    char dir[512], path[256];
    snprintf(dir, sizeof dir, "%s", s.cache_dir);
    snprintf(path, sizeof path, "/v1/responses/%s", id_of(o));
    assert_int_equal(server_stop_keep(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
    const char *const again[] = {"-c", "2048", "--pool-mb", "32", "--chat-template-file",
                                 TEMPLATE_LLAMA31, "--cache-dir", dir, NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, LLAMA31, again, NULL, 1), 0);
    http_response r = call(s.port, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *got = e2e_json(&r);
    hc_free(&r);
    assert_true(json_equal(got, o));
    json_decref(got);
    json_t *next = turn(s.port, id_of(o), "Still there?");
    assert_true(usage(next, "cached_tokens") >= usage(o, "input_tokens")); /* from disk */
    json_decref(next);
    json_decref(o);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_answers_a_response_object),
        cmocka_unit_test(get_input_items_and_delete),
        cmocka_unit_test(store_false_keeps_nothing),
        cmocka_unit_test(stream_sends_the_event_sequence),
        cmocka_unit_test(forced_tool_call_then_its_output),
        cmocka_unit_test(json_schema_format),
        cmocka_unit_test(every_bad_request_is_a_400_naming_its_field),
        cmocka_unit_test(another_keys_response_is_not_found),
        cmocka_unit_test(the_count_limit_deletes_the_oldest),
        cmocka_unit_test(a_named_agent_holds_a_fresh_conversation),
        cmocka_unit_test(branches_from_turn_two_share_its_memory),
        cmocka_unit_test(responses_survive_a_restart),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
