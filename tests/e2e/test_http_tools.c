/*
 * Specification of tool calling, structured output and logprobs in both
 * APIs (docs/http-api.md, docs/tool-calling.md), run against real
 * `semantic serve` processes with a random-weight model: whatever the
 * weights write, a forced call must name an offered tool with arguments
 * valid for its schema, and a schema'd answer must validate. Three
 * servers cover three tool formats: the generic convention (no template
 * of the model's own), Llama 3.1's and Qwen 2.5's templates.
 */
#include "e2e_util.h"

#include <signal.h>
#include <stdlib.h>

#define LLAMA31 SEM_TEST_DATA "/models/tiny-llama31.gguf"
#define QWEN2 SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"
#define TEMPLATE_LLAMA31 SEM_TEST_DATA "/chat/meta-llama-Llama-3.1-8B-Instruct.jinja"
#define TEMPLATE_QWEN25 SEM_TEST_DATA "/chat/Qwen-Qwen2.5-7B-Instruct.jinja"
#define TEMPLATE_R1 SEM_TEST_DATA "/chat/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"

enum { GENERIC, LLAMA3, HERMES, THINKER, N_SERVERS };
static const char *const server_names[N_SERVERS] = {"generic", "llama3", "hermes", "thinker"};
enum { N_TOOL_SERVERS = THINKER }; /* the ones every tool test runs on */
static server_proc srv[N_SERVERS];

static int start_all(void **state)
{
    (void)state;
    const char *const generic[] = {"-c", "4096", "--pool-mb", "64", NULL};
    const char *const llama3[] = {"-c",   "4096", "--pool-mb", "64", "--chat-template-file",
                                  TEMPLATE_LLAMA31, NULL};
    const char *const hermes[] = {"-c",   "4096", "--pool-mb", "64", "--chat-template-file",
                                  TEMPLATE_QWEN25, NULL};
    const char *const thinker[] = {"-c",   "4096", "--pool-mb", "64", "--chat-template-file",
                                   TEMPLATE_R1, NULL};
    if (server_start(&srv[GENERIC], SEMANTIC_BIN, LLAMA31, generic, NULL, 1) != 0 ||
        server_start(&srv[LLAMA3], SEMANTIC_BIN, LLAMA31, llama3, NULL, 1) != 0 ||
        server_start(&srv[HERMES], SEMANTIC_BIN, QWEN2, hermes, NULL, 1) != 0 ||
        server_start(&srv[THINKER], SEMANTIC_BIN, QWEN2, thinker, NULL, 1) != 0)
        return -1;
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < N_SERVERS; i++) {
        bad |= server_stop(&srv[i], SIGTERM, 20000) != 0;
        server_discard_log(&srv[i]);
    }
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- text */

typedef struct text {
    char *data;
    size_t len;
} text;

static void text_add(text *t, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    t->data = realloc(t->data, t->len + n + 1);
    assert_non_null(t->data);
    memcpy(t->data + t->len, s ? s : "", n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* ---------------------------------------------------------------- a schema checker */

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int type_is(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    return strcmp(t, "null") == 0 && json_is_null(v);
}

/* 1 when v is valid against the subset of JSON Schema these tests use. */
static int valid(const json_t *v, const json_t *s)
{
    const json_t *t = json_object_get(s, "type"), *en = json_object_get(s, "enum");
    if (json_is_string(t) && !type_is(v, json_string_value(t)))
        return 0;
    if (en) {
        size_t i;
        const json_t *x;
        int hit = 0;
        json_array_foreach(en, i, x) hit |= json_equal((json_t *)x, (json_t *)v);
        if (!hit)
            return 0;
    }
    const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
    if (json_is_number(v) && ((mn && json_number_value(v) < json_number_value(mn)) ||
                              (mx && json_number_value(v) > json_number_value(mx))))
        return 0;
    const json_t *ml = json_object_get(s, "maxLength"), *nl = json_object_get(s, "minLength");
    if (json_is_string(v) && ((ml && code_points(json_string_value(v)) >
                                         (size_t)json_integer_value(ml)) ||
                              (nl && code_points(json_string_value(v)) <
                                         (size_t)json_integer_value(nl))))
        return 0;
    if (json_is_array(v)) {
        const json_t *mi = json_object_get(s, "maxItems"), *ni = json_object_get(s, "minItems");
        if ((mi && json_array_size(v) > (size_t)json_integer_value(mi)) ||
            (ni && json_array_size(v) < (size_t)json_integer_value(ni)))
            return 0;
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) if (!valid(x, json_object_get(s, "items"))) return 0;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
        size_t i;
        const json_t *x;
        json_array_foreach(req, i, x) if (!json_object_get(v, json_string_value(x))) return 0;
        const char *k;
        json_t *pv;
        json_object_foreach((json_t *)v, k, pv)
        {
            const json_t *ps = json_object_get(props, k);
            if (!ps && json_is_false(json_object_get(s, "additionalProperties")))
                return 0;
            if (ps && !valid(pv, ps))
                return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- requests */

#define WEATHER_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\",\"maxLength\":12},"    \
    "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"                        \
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},"                                \
    "\"required\":[\"location\",\"unit\"],\"additionalProperties\":false}"
#define OA_TOOLS                                                                                   \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather "    \
    "for a city\",\"parameters\":" WEATHER_SCHEMA "}},"                                            \
    "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"parameters\":{\"type\":\"object\","   \
    "\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99},\"b\":{\"type\":"   \
    "\"integer\",\"minimum\":0,\"maximum\":99}},\"required\":[\"a\",\"b\"],"                       \
    "\"additionalProperties\":false}}}]"
#define AN_TOOLS                                                                                   \
    "[{\"name\":\"get_weather\",\"description\":\"Weather for a city\",\"input_schema\":"          \
    WEATHER_SCHEMA "}]"

static json_t *weather_schema(void) { return json_loads(WEATHER_SCHEMA, 0, NULL); }

/* Answers here may be long (a forced call under a grammar runs up to its
 * bound): a request gets two minutes, for sanitized builds on busy machines. */
#define SLOW_MS 120000

static http_response call(int server, const char *path, const char *headers, const char *body)
{
    http_response r;
    if (hc_call_within(srv[server].port, "POST", path, headers, body, SLOW_MS, &r) != 0)
        fail_msg("%s POST %s: no response (status %d)", server_names[server], path, r.status);
    return r;
}

static json_t *post(int server, const char *path, const char *headers, const char *body,
                    int want_status)
{
    http_response r = call(server, path, headers, body);
    if (r.status != want_status)
        fail_msg("%s %s: expected %d, got %d: %.800s", server_names[server], path, want_status,
                 r.status, r.body);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    return j;
}

/* Checks an OpenAI tool call: id, name among tools, arguments valid. */
static void check_oa_call(const json_t *call, const char *want_name)
{
    const char *id = json_string_value(json_object_get(call, "id"));
    const json_t *fn = json_object_get(call, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    assert_non_null(id);
    assert_true(strlen(id) > 5);
    assert_string_equal(json_string_value(json_object_get(call, "type")), "function");
    assert_non_null(name);
    assert_non_null(args);
    if (want_name)
        assert_string_equal(name, want_name);
    json_t *a = json_loads(args, 0, NULL);
    if (!a)
        fail_msg("arguments are not JSON: %s", args);
    if (strcmp(name, "get_weather") == 0) {
        json_t *s = weather_schema();
        if (!valid(a, s))
            fail_msg("arguments do not validate: %s", args);
        json_decref(s);
    } else {
        assert_string_equal(name, "add");
        assert_true(json_is_integer(json_object_get(a, "a")));
        assert_true(json_is_integer(json_object_get(a, "b")));
    }
    json_decref(a);
}

static void forced_calls_are_valid_whole(void **state)
{
    (void)state;
    for (int s = 0; s < N_TOOL_SERVERS; s++) {
        for (int seed = 1; seed <= 3; seed++) {
            char body[4096];
            snprintf(body, sizeof body,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],"
                     "\"tools\":" OA_TOOLS ",\"seed\":%d,\"max_tokens\":1500,\"tool_choice\":%s}",
                     seed,
                     seed == 1 ? "\"required\""
                               : "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}");
            json_t *j = post(s, "/v1/chat/completions", NULL, body, 200);
            json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
            json_t *msg = json_object_get(choice, "message");
            printf("  %s seed %d: %s\n", server_names[s], seed,
                   json_string_value(json_object_get(
                       json_object_get(json_array_get(json_object_get(msg, "tool_calls"), 0),
                                       "function"),
                       "arguments")));
            assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")),
                                "tool_calls");
            json_t *calls = json_object_get(msg, "tool_calls");
            assert_true(json_array_size(calls) >= 1);
            for (size_t i = 0; i < json_array_size(calls); i++)
                check_oa_call(json_array_get(calls, i), seed == 1 ? NULL : "get_weather");
            assert_true(json_is_null(json_object_get(msg, "content")) ||
                        json_is_string(json_object_get(msg, "content")));
            json_decref(j);
        }
    }
}

/* The streamed chunks of a chat completion, parsed. */
static json_t *oa_chunks(int server, const char *body)
{
    http_response r = call(server, "/v1/chat/completions", NULL, body);
    assert_int_equal(r.status, 200);
    hc_event ev[4096];
    size_t n = hc_sse_parse(r.body, ev, 4096);
    json_t *chunks = json_array();
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].data, "[DONE]") == 0) {
            done = 1;
            continue;
        }
        json_t *c = json_loads(ev[i].data, 0, NULL);
        assert_non_null(c);
        json_array_append_new(chunks, c);
    }
    hc_sse_free(ev, n);
    hc_free(&r);
    assert_true(done);
    return chunks;
}

static void forced_calls_stream_in_openai_chunks(void **state)
{
    (void)state;
    for (int s = 0; s < N_TOOL_SERVERS; s++) {
        json_t *chunks = oa_chunks(
            s, "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],\"tools\":" OA_TOOLS
               ",\"tool_choice\":\"required\",\"stream\":true,\"max_tokens\":1500,\"seed\":7}");
        text args = {0};
        const char *id = NULL, *name = NULL, *finish = NULL;
        size_t i;
        json_t *c;
        json_array_foreach(chunks, i, c)
        {
            json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
            json_t *d = json_object_get(ch, "delta");
            const char *content = json_string_value(json_object_get(d, "content"));
            if (content) /* no marker text ever reaches content */
                assert_null(strstr(content, "tool_call"));
            if (json_is_string(json_object_get(ch, "finish_reason")))
                finish = json_string_value(json_object_get(ch, "finish_reason"));
            json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
            if (!tc)
                continue;
            if (json_integer_value(json_object_get(tc, "index")) != 0)
                continue; /* a parallel call: checked through the first only */
            if (!id) { /* the first chunk of a call carries its id and name */
                id = json_string_value(json_object_get(tc, "id"));
                name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
                assert_non_null(id);
                assert_non_null(name);
            } else {
                assert_null(json_object_get(tc, "id"));
            }
            const char *frag =
                json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
            if (frag)
                text_add(&args, frag);
        }
        assert_non_null(finish);
        assert_string_equal(finish, "tool_calls");
        json_t *call = json_pack("{s:s,s:s,s:{s:s,s:s%}}", "id", id, "type", "function",
                                 "function", "name", name, "arguments", args.data ? args.data : "",
                                 args.len);
        printf("  %s streamed: %s(%.*s)\n", server_names[s], name, (int)args.len,
               args.data ? args.data : "");
        check_oa_call(call, NULL);
        json_decref(call);
        free(args.data);
        json_decref(chunks);
    }
}

static void anthropic_tool_use_whole_and_streamed(void **state)
{
    (void)state;
    for (int s = 0; s < N_TOOL_SERVERS; s++) {
        json_t *j = post(s, "/v1/messages?beta=true", "anthropic-beta: tools-2024-04-04\r\n",
                         "{\"max_tokens\":64000,\"messages\":[{\"role\":\"user\",\"content\":"
                         "\"Weather?\"}],\"tools\":" AN_TOOLS ",\"tool_choice\":{\"type\":\"any\"}}",
                         200);
        assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "tool_use");
        json_t *content = json_object_get(j, "content"), *block = NULL, *b;
        size_t i;
        json_array_foreach(content, i, b) if (strcmp(json_string_value(json_object_get(b, "type")),
                                                     "tool_use") == 0 &&
                                              !block) block = b;
        assert_non_null(block);
        assert_true(strncmp(json_string_value(json_object_get(block, "id")), "toolu_", 6) == 0);
        assert_string_equal(json_string_value(json_object_get(block, "name")), "get_weather");
        json_t *sch = weather_schema();
        assert_true(valid(json_object_get(block, "input"), sch));
        json_decref(j);

        http_response r = call(s, "/v1/messages", NULL,
                                   "{\"max_tokens\":1500,\"stream\":true,\"messages\":[{\"role\":"
                                   "\"user\",\"content\":\"Weather?\"}],\"tools\":" AN_TOOLS
                                   ",\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\"}}");
        assert_int_equal(r.status, 200);
        hc_event ev[4096];
        size_t n = hc_sse_parse(r.body, ev, 4096);
        text partial = {0};
        int started = 0, stopped = 0;
        json_int_t first_tool = -1;
        char reason[32] = "";
        json_t *last = NULL;
        for (i = 0; i < n; i++) {
            json_t *d = json_loads(ev[i].data, 0, NULL);
            assert_non_null(d);
            const json_t *cb = json_object_get(d, "content_block");
            json_int_t index = json_integer_value(json_object_get(d, "index"));
            if (strcmp(ev[i].event, "content_block_start") == 0 &&
                strcmp(json_string_value(json_object_get(cb, "type")), "tool_use") == 0) {
                if (!started)
                    first_tool = index; /* the first call is checked */
                started = 1;
                assert_string_equal(json_string_value(json_object_get(cb, "name")), "get_weather");
            }
            const json_t *delta = json_object_get(d, "delta");
            if (strcmp(ev[i].event, "content_block_delta") == 0 && index == first_tool &&
                strcmp(json_string_value(json_object_get(delta, "type")), "input_json_delta") == 0)
                text_add(&partial, json_string_value(json_object_get(delta, "partial_json")));
            if (strcmp(ev[i].event, "content_block_stop") == 0)
                stopped++;
            if (strcmp(ev[i].event, "message_delta") == 0)
                snprintf(reason, sizeof reason, "%s",
                         json_string_value(json_object_get(delta, "stop_reason")));
            json_decref(last);
            last = d;
        }
        assert_true(started && stopped >= 1);
        assert_string_equal(reason, "tool_use");
        assert_string_equal(ev[n - 1].event, "message_stop");
        json_t *input = json_loadb(partial.data, partial.len, 0, NULL);
        printf("  %s streamed input: %.*s\n", server_names[s], (int)partial.len, partial.data);
        assert_non_null(input);
        assert_true(valid(input, sch));
        json_decref(input);
        json_decref(last);
        json_decref(sch);
        free(partial.data);
        hc_sse_free(ev, n);
        hc_free(&r);
    }
}

#define PERSON_SCHEMA                                                                              \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"          \
    "\"maxLength\":10},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},"              \
    "\"tags\":{\"type\":\"array\",\"maxItems\":3,\"items\":{\"type\":\"string\",\"enum\":"         \
    "[\"a\",\"b\"]}},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"age\",\"tags\","      \
    "\"ok\"],\"additionalProperties\":false}"

static void structured_output_validates(void **state)
{
    (void)state;
    json_t *schema = json_loads(PERSON_SCHEMA, 0, NULL);
    for (int s = 0; s < N_TOOL_SERVERS; s++) {
        for (int seed = 1; seed <= 3; seed++) {
            char body[2048];
            snprintf(body, sizeof body,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"A person\"}],\"seed\":%d,"
                     "\"max_tokens\":200,\"response_format\":{\"type\":\"json_schema\","
                     "\"json_schema\":{\"name\":\"person\",\"strict\":true,\"schema\":" PERSON_SCHEMA
                     "}}}",
                     seed);
            json_t *j = post(s, "/v1/chat/completions", NULL, body, 200);
            json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
            const char *content =
                json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
            printf("  %s seed %d: %s\n", server_names[s], seed, content);
            assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")),
                                "stop");
            json_t *v = json_loads(content, 0, NULL);
            if (!v || !valid(v, schema))
                fail_msg("not valid against the schema: %s", content);
            json_decref(v);
            json_decref(j);
        }
        json_t *j = post(s, "/v1/chat/completions", NULL,
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"Any JSON\"}],\"seed\":3,"
                         "\"max_tokens\":400,\"response_format\":{\"type\":\"json_object\"}}",
                         200);
        json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
        const char *content =
            json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
        assert_int_equal(content[0], '{');
        if (strcmp(json_string_value(json_object_get(choice, "finish_reason")), "stop") == 0) {
            json_t *v = json_loads(content, 0, NULL);
            assert_true(json_is_object(v));
            json_decref(v);
        }
        json_decref(j);
    }
    json_decref(schema);
}

/*
 * A five-turn tool loop of one agent: every turn after the first finds in
 * memory at least the previous turn's prompt and output, less a few tokens
 * of turn markers.
 */
static void tool_loop(int s, const char *agent_header)
{
    json_t *messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "Weather in 5 cities?");
    json_int_t prev_prompt = 0, prev_output = 0;
    for (int turn = 0; turn < 5; turn++) {
        json_t *req = json_pack("{s:O,s:i,s:i,s:s}", "messages", messages, "max_tokens", 1500,
                                "seed", turn + 1, "tool_choice", "required");
        json_object_set_new(req, "tools", json_loads(OA_TOOLS, 0, NULL));
        char *body = json_dumps(req, 0);
        json_t *j = post(s, "/v1/chat/completions", agent_header, body, 200);
        free(body);
        json_decref(req);
        json_t *usage = json_object_get(j, "usage");
        json_int_t prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
        json_int_t output = json_integer_value(json_object_get(usage, "completion_tokens"));
        json_int_t cached = json_integer_value(
            json_object_get(json_object_get(usage, "prompt_tokens_details"), "cached_tokens"));
        printf("  %s turn %d: prompt %lld, cached %lld, output %lld: %s\n", server_names[s], turn,
               (long long)prompt, (long long)cached, (long long)output,
               json_string_value(json_object_get(
                   json_object_get(
                       json_array_get(json_object_get(json_object_get(json_array_get(
                                                          json_object_get(j, "choices"), 0),
                                                      "message"),
                                      "tool_calls"),
                                      0),
                       "function"),
                   "arguments")));
        fflush(stdout);
        if (turn > 0 && cached < prev_prompt + prev_output - 8)
            fail_msg("turn %d: cached %lld < previous prompt %lld + output %lld - 8", turn,
                     (long long)cached, (long long)prev_prompt, (long long)prev_output);
        json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
        json_t *calls = json_object_get(msg, "tool_calls");
        assert_true(json_array_size(calls) >= 1);
        json_array_append(messages, msg);
        size_t i;
        json_t *c;
        json_array_foreach(calls, i, c)
            json_array_append_new(messages,
                                  json_pack("{s:s,s:O,s:s}", "role", "tool", "tool_call_id",
                                            json_object_get(c, "id"), "content", "{\"t\": 21}"));
        prev_prompt = prompt;
        prev_output = output;
        json_decref(j);
    }
    json_decref(messages);
}

static void a_tool_loop_keeps_its_memory(void **state)
{
    (void)state;
    tool_loop(LLAMA3, "X-Agent-ID: loop-llama3\r\n");
    tool_loop(HERMES, "X-Agent-ID: loop-hermes\r\n");
    tool_loop(GENERIC, "X-Agent-ID: loop-generic\r\n");
}

/* Claude Code names its session in metadata.user_id (a JSON text) and in
 * a header; a long user id of any shape names a stable agent. */
static void client_identities_name_agents(void **state)
{
    (void)state;
    json_t *j = post(GENERIC, "/v1/messages", NULL,
                     "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"metadata\":{\"user_id\":\"{\\\"device_id\\\":\\\"0123456789abcdef0123456789ab"
                     "cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
                     "89abcdef\\\",\\\"session_id\\\":\\\"3f2b8e2a-1c44-4b1e-9a55-6f0d2c9e7b11\\\"}\"}}",
                     200);
    json_decref(j);
    http_response r = e2e_call(srv[GENERIC].port, "GET",
                               "/v1/agents/3f2b8e2a-1c44-4b1e-9a55-6f0d2c9e7b11", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    j = post(GENERIC, "/v1/messages", "X-Claude-Code-Session-Id: cc-session-1\r\n",
             "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 200);
    json_decref(j);
    r = e2e_call(srv[GENERIC].port, "GET", "/v1/agents/cc-session-1", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    /* not an id, not JSON: hashed, the same each time */
    const char *body = "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"metadata\":{\"user_id\":\"user_ab12/account:x@y.z session 42\"}}";
    for (int k = 0; k < 2; k++) {
        j = post(GENERIC, "/v1/messages", NULL, body, 200);
        json_t *u = json_object_get(j, "usage");
        if (k == 1)
            assert_true(json_integer_value(json_object_get(u, "cache_read_input_tokens")) > 0);
        json_decref(j);
    }
}

static void anthropic_tool_turns_render_and_cache(void **state)
{
    (void)state;
    const char *turn1 =
        "{\"max_tokens\":1500,\"metadata\":{\"user_id\":\"an-loop\"},\"system\":[{\"type\":\"text\","
        "\"text\":\"You are a weather bot.\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
        "\"tools\":" AN_TOOLS ",\"tool_choice\":{\"type\":\"any\"},"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}]}";
    json_t *a = post(LLAMA3, "/v1/messages", NULL, turn1, 200);
    json_t *block = json_array_get(json_object_get(a, "content"), 0);
    for (size_t i = 0; strcmp(json_string_value(json_object_get(block, "type")), "tool_use") != 0;)
        block = json_array_get(json_object_get(a, "content"), ++i);
    json_t *u1 = json_object_get(a, "usage");
    json_int_t in1 = json_integer_value(json_object_get(u1, "cache_creation_input_tokens")) +
                     json_integer_value(json_object_get(u1, "cache_read_input_tokens")) +
                     json_integer_value(json_object_get(u1, "input_tokens"));
    json_int_t out1 = json_integer_value(json_object_get(u1, "output_tokens"));
    json_t *req = json_loads(turn1, 0, NULL);
    json_t *msgs = json_object_get(req, "messages");
    json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "assistant", "content",
                                          json_object_get(a, "content")));
    json_array_append_new(
        msgs, json_pack("{s:s,s:[{s:s,s:O,s:s,s:b}]}", "role", "user", "content", "type",
                        "tool_result", "tool_use_id", json_object_get(block, "id"), "content",
                        "no such city", "is_error", 1));
    json_object_set_new(req, "tool_choice", json_pack("{s:s}", "type", "auto"));
    json_object_set_new(req, "max_tokens", json_integer(64)); /* free text: keep it short */
    char *body = json_dumps(req, 0);
    json_t *b = post(LLAMA3, "/v1/messages", NULL, body, 200);
    json_int_t read =
        json_integer_value(json_object_get(json_object_get(b, "usage"), "cache_read_input_tokens"));
    printf("  turn 1: %lld in, %lld out; turn 2 read %lld\n", (long long)in1, (long long)out1,
           (long long)read);
    assert_true(read >= in1 + out1 - 8);
    const char *reason = json_string_value(json_object_get(b, "stop_reason"));
    assert_true(strcmp(reason, "end_turn") == 0 || strcmp(reason, "tool_use") == 0 ||
                strcmp(reason, "max_tokens") == 0);
    free(body);
    json_decref(b);
    json_decref(req);
    json_decref(a);
}

static void logprobs_describe_the_chosen_tokens(void **state)
{
    (void)state;
    json_t *j = post(GENERIC, "/v1/chat/completions", NULL,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":6,"
                     "\"logprobs\":true,\"top_logprobs\":3,\"seed\":5}",
                     200);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "logprobs"), "content");
    json_int_t n = json_integer_value(
        json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    assert_int_equal(json_array_size(content), (size_t)n);
    size_t i;
    json_t *t;
    json_array_foreach(content, i, t)
    {
        double lp = json_number_value(json_object_get(t, "logprob"));
        assert_true(lp <= 0.0);
        assert_true(json_is_string(json_object_get(t, "token")));
        assert_true(json_is_array(json_object_get(t, "bytes")));
        json_t *top = json_object_get(t, "top_logprobs");
        assert_int_equal(json_array_size(top), 3);
        for (size_t k = 1; k < 3; k++)
            assert_true(json_number_value(json_object_get(json_array_get(top, k - 1), "logprob")) >=
                        json_number_value(json_object_get(json_array_get(top, k), "logprob")));
    }
    json_decref(j);
}

/*
 * DeepSeek R1's template opens a think block in the generation prompt: the
 * answer starts as reasoning, returned apart from the content (a random
 * model never closes it). With thinking disabled the block is closed in
 * the prompt, and a forced call is made at once.
 */
static void reasoning_is_returned_apart(void **state)
{
    (void)state;
    json_t *j = post(THINKER, "/v1/chat/completions", NULL,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"Think\"}],\"max_tokens\":20,"
                     "\"seed\":2}",
                     200);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    const char *reasoning = json_string_value(json_object_get(msg, "reasoning_content"));
    const char *content = json_string_value(json_object_get(msg, "content"));
    assert_non_null(reasoning);
    assert_true(strlen(reasoning) > 0);
    assert_non_null(content);
    assert_null(strstr(content, "think>"));
    json_decref(j);

    http_response r = e2e_call(srv[THINKER].port, "POST", "/v1/messages", NULL,
                               "{\"max_tokens\":20,\"stream\":true,\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"Think\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"type\":\"thinking\""));
    assert_non_null(strstr(r.body, "thinking_delta"));
    assert_non_null(strstr(r.body, "signature_delta"));
    hc_free(&r);

    j = post(THINKER, "/v1/messages", NULL,
             "{\"max_tokens\":1500,\"thinking\":{\"type\":\"disabled\"},\"tools\":" AN_TOOLS
             ",\"tool_choice\":{\"type\":\"any\"},\"messages\":[{\"role\":\"user\",\"content\":"
             "\"Weather?\"}]}",
             200);
    assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "tool_use");
    json_t *first = json_array_get(json_object_get(j, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "tool_use");
    json_decref(j);
}

static void no_vision_is_a_clear_400(void **state)
{
    (void)state;
    http_response r = e2e_call(
        srv[GENERIC].port, "POST", "/v1/messages", NULL,
        "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
        "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]}]}");
    e2e_assert_anthropic_error(&r, 400);
    assert_non_null(strstr(r.body, "vision"));
    hc_free(&r);
    e2e_assert_healthy(srv[GENERIC].port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forced_calls_are_valid_whole),
        cmocka_unit_test(forced_calls_stream_in_openai_chunks),
        cmocka_unit_test(anthropic_tool_use_whole_and_streamed),
        cmocka_unit_test(structured_output_validates),
        cmocka_unit_test(a_tool_loop_keeps_its_memory),
        cmocka_unit_test(anthropic_tool_turns_render_and_cache),
        cmocka_unit_test(client_identities_name_agents),
        cmocka_unit_test(logprobs_describe_the_chosen_tokens),
        cmocka_unit_test(reasoning_is_returned_apart),
        cmocka_unit_test(no_vision_is_a_clear_400),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
