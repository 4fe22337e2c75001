/*
 * Specification of chat_output.h: a generated answer split into content,
 * reasoning and tool calls, the same whichever way the text is cut into
 * chunks, for every tool-call format.
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapters/chat/chat_output.h"
#include "base/strbuf.h"

/* ---- What the events add up to -------------------------------------- */

#define CALLS_MAX 10

typedef struct parsed {
    strbuf content, reasoning;
    uint32_t n_calls;
    char name[CALLS_MAX][300];
    char id[CALLS_MAX][80];
    int has_id[CALLS_MAX];
    strbuf args[CALLS_MAX];
    int incomplete;
    uint32_t n_calls_api;
} parsed;

static void collect(void *user, const chat_event *ev)
{
    parsed *p = user;
    switch (ev->type) {
    case CHAT_EV_TEXT:
        assert_true(ev->len > 0);
        strbuf_append(&p->content, ev->text, ev->len);
        break;
    case CHAT_EV_REASONING:
        assert_true(ev->len > 0);
        strbuf_append(&p->reasoning, ev->text, ev->len);
        break;
    case CHAT_EV_TOOL_START:
        /* Calls start in order, each once, with a name. */
        assert_int_equal(ev->tool_index, p->n_calls);
        assert_true(p->n_calls < CALLS_MAX);
        assert_true(ev->len < sizeof p->name[0]);
        memcpy(p->name[p->n_calls], ev->text, ev->len);
        p->name[p->n_calls][ev->len] = '\0';
        p->has_id[p->n_calls] = ev->id != NULL;
        if (ev->id)
            snprintf(p->id[p->n_calls], sizeof p->id[0], "%s", ev->id);
        p->n_calls++;
        break;
    case CHAT_EV_TOOL_ARGS:
        /* Arguments belong to the call started last. */
        assert_true(ev->len > 0);
        assert_true(p->n_calls > 0);
        assert_int_equal(ev->tool_index, p->n_calls - 1);
        strbuf_append(&p->args[ev->tool_index], ev->text, ev->len);
        break;
    }
}

static void parsed_free(parsed *p)
{
    strbuf_free(&p->content);
    strbuf_free(&p->reasoning);
    for (int i = 0; i < CALLS_MAX; i++)
        strbuf_free(&p->args[i]);
}

static const char *str(const strbuf *b) { return b->len ? b->data : ""; }

/* Feeds text in the pieces that cuts[0..n_cuts) (increasing offsets) make. */
static void parse_cut(const prompt_syntax *syn, int tools, int in_thinking, const char *text,
                      const size_t *cuts, size_t n_cuts, parsed *p)
{
    memset(p, 0, sizeof *p);
    chat_output *o = chat_output_new(syn, tools, in_thinking);
    assert_non_null(o);
    size_t len = strlen(text), at = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        assert_int_equal(chat_output_feed(o, text + at, end - at, collect, p), SEM_OK);
        at = end;
    }
    assert_int_equal(chat_output_finish(o, collect, p), SEM_OK);
    p->incomplete = chat_output_incomplete(o);
    p->n_calls_api = chat_output_n_calls(o);
    chat_output_free(o);
}

static void assert_same(const parsed *a, const parsed *b, const char *text, const char *how)
{
    if (strcmp(str(&a->content), str(&b->content)) != 0 ||
        strcmp(str(&a->reasoning), str(&b->reasoning)) != 0 || a->n_calls != b->n_calls ||
        a->incomplete != b->incomplete)
        fail_msg("%s of \"%s\": content \"%s\" vs \"%s\", reasoning \"%s\" vs \"%s\", calls %u vs "
                 "%u",
                 how, text, str(&a->content), str(&b->content), str(&a->reasoning),
                 str(&b->reasoning), a->n_calls, b->n_calls);
    for (uint32_t i = 0; i < a->n_calls; i++) {
        assert_string_equal(a->name[i], b->name[i]);
        assert_int_equal(a->has_id[i], b->has_id[i]);
        if (a->has_id[i])
            assert_string_equal(a->id[i], b->id[i]);
        assert_string_equal(str(&a->args[i]), str(&b->args[i]));
    }
}

/*
 * Parses text whole, then byte by byte, then cut in two at every offset,
 * then in three at many pairs, then in random pieces: all must agree.
 * *whole gets the whole-text result.
 */
static void parse_every_way(const prompt_syntax *syn, int tools, int in_thinking,
                            const char *text, parsed *whole)
{
    parse_cut(syn, tools, in_thinking, text, NULL, 0, whole);
    size_t len = strlen(text);
    size_t *cuts = malloc((len + 2) * sizeof *cuts);
    assert_non_null(cuts);
    parsed p;

    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    parse_cut(syn, tools, in_thinking, text, cuts, len ? len - 1 : 0, &p);
    assert_same(whole, &p, text, "byte by byte");
    parsed_free(&p);

    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        parse_cut(syn, tools, in_thinking, text, cuts, 1, &p);
        assert_same(whole, &p, text, "cut in two");
        parsed_free(&p);
    }
    for (size_t a = 0; a <= len; a += 3)
        for (size_t b = a; b <= len; b += 5) {
            cuts[0] = a;
            cuts[1] = b;
            parse_cut(syn, tools, in_thinking, text, cuts, 2, &p);
            assert_same(whole, &p, text, "cut in three");
            parsed_free(&p);
        }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 50; round++) {
        size_t n = 0, at = 0;
        while (at < len) {
            at += 1 + test_rand(&seed) % 7;
            if (at < len)
                cuts[n++] = at;
        }
        parse_cut(syn, tools, in_thinking, text, cuts, n, &p);
        assert_same(whole, &p, text, "random pieces");
        parsed_free(&p);
    }
    free(cuts);
}

/* ---- Expectations ------------------------------------------------------ */

typedef struct call_want {
    const char *name, *id, *args; /* id NULL: none */
} call_want;

typedef struct want {
    const char *content, *reasoning;
    int incomplete;
    size_t n_calls;
    call_want calls[4];
} want;

static void check(const prompt_syntax *syn, int tools, int in_thinking, const char *text,
                  const want *w)
{
    parsed p;
    parse_every_way(syn, tools, in_thinking, text, &p);
    assert_string_equal(str(&p.content), w->content ? w->content : "");
    assert_string_equal(str(&p.reasoning), w->reasoning ? w->reasoning : "");
    assert_int_equal(p.n_calls, w->n_calls);
    assert_int_equal(p.n_calls_api, w->n_calls);
    assert_int_equal(p.incomplete, w->incomplete);
    for (size_t i = 0; i < w->n_calls; i++) {
        assert_string_equal(p.name[i], w->calls[i].name);
        if (w->calls[i].id) {
            assert_true(p.has_id[i]);
            assert_string_equal(p.id[i], w->calls[i].id);
        } else {
            assert_false(p.has_id[i]);
        }
        assert_string_equal(str(&p.args[i]), w->calls[i].args);
    }
    parsed_free(&p);
}

static const prompt_syntax HERMES = {PROMPT_TOOLS_HERMES, 1, NULL, NULL};
static const prompt_syntax QWEN3 = {PROMPT_TOOLS_HERMES, 1, "<think>", "</think>"};
static const prompt_syntax LLAMA3 = {PROMPT_TOOLS_LLAMA3, 0, NULL, NULL};
static const prompt_syntax MISTRAL = {PROMPT_TOOLS_MISTRAL, 1, NULL, NULL};
static const prompt_syntax GENERIC = {PROMPT_TOOLS_GENERIC, 1, NULL, NULL};
static const prompt_syntax GENERIC_THINK = {PROMPT_TOOLS_GENERIC, 1, "<think>", "</think>"};

#define WEATHER "{\"location\": \"Paris\", \"unit\": \"celsius\"}"
#define HERMES_CALL(name, args) "<tool_call>\n{\"name\": \"" name "\", \"arguments\": " args "}\n</tool_call>"

/* ---- Plain text ------------------------------------------------------- */

static void text_without_markers_is_content(void **state)
{
    (void)state;
    want w = {.content = "Hello, world.\nTwo lines."};
    check(&HERMES, 1, 0, "Hello, world.\nTwo lines.", &w);
    check(&LLAMA3, 1, 0, "Hello, world.\nTwo lines.", &w);
    check(&MISTRAL, 1, 0, "Hello, world.\nTwo lines.", &w);
    check(&GENERIC, 1, 0, "Hello, world.\nTwo lines.", &w);
    check(&QWEN3, 0, 0, "Hello, world.\nTwo lines.", &w);
}

static void leading_whitespace_of_plain_content_is_kept(void **state)
{
    (void)state;
    want w = {.content = "\n\n  Hi"};
    check(&HERMES, 1, 0, "\n\n  Hi", &w);
    check(&LLAMA3, 1, 0, "\n\n  Hi", &w);
    check(&QWEN3, 0, 0, "\n\n  Hi", &w);
}

static void empty_output_is_nothing(void **state)
{
    (void)state;
    want w = {0};
    check(&HERMES, 1, 0, "", &w);
    check(&QWEN3, 1, 1, "", &w);
}

static void unicode_passes_through(void **state)
{
    (void)state;
    want w = {.content = "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89"};
    check(&HERMES, 1, 0, w.content, &w);
    want c = {.n_calls = 1,
              .calls = {{"say", NULL, "{\"text\": \"\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89\"}"}}};
    check(&HERMES, 1, 0, HERMES_CALL("say", "{\"text\": \"\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89\"}"),
          &c);
}

/* ---- Hermes (Qwen 2.5, Qwen 3) ---------------------------------------- */

static void hermes_one_call(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .calls = {{"get_weather", NULL, WEATHER}}};
    check(&HERMES, 1, 0, HERMES_CALL("get_weather", WEATHER), &w);
}

static void hermes_content_then_call_drops_the_format_newline(void **state)
{
    (void)state;
    /* Qwen 2.5 renders content + "\n<tool_call>": the "\n" is the format's. */
    want w = {.content = "Let me check.", .n_calls = 1, .calls = {{"get_weather", NULL, WEATHER}}};
    check(&HERMES, 1, 0, "Let me check.\n" HERMES_CALL("get_weather", WEATHER), &w);
    /* Only one newline is the format's. */
    want w2 = {.content = "Let me check.\n", .n_calls = 1,
               .calls = {{"get_weather", NULL, WEATHER}}};
    check(&HERMES, 1, 0, "Let me check.\n\n" HERMES_CALL("get_weather", WEATHER), &w2);
    /* At the very start, whitespace before a call is not content. */
    want w3 = {.n_calls = 1, .calls = {{"get_weather", NULL, WEATHER}}};
    check(&HERMES, 1, 0, "\n\n" HERMES_CALL("get_weather", WEATHER), &w3);
}

static void hermes_parallel_calls(void **state)
{
    (void)state;
    want w = {.n_calls = 3,
              .calls = {{"get_weather", NULL, WEATHER},
                        {"add", NULL, "{\"a\": 1, \"b\": 2}"},
                        {"now", NULL, "{}"}}};
    check(&HERMES, 1, 0,
          HERMES_CALL("get_weather", WEATHER) "\n" HERMES_CALL("add", "{\"a\": 1, \"b\": 2}") "\n"
              HERMES_CALL("now", "{}"),
          &w);
}

static void hermes_content_after_calls(void **state)
{
    (void)state;
    want w = {.content = "Done.", .n_calls = 1, .calls = {{"now", NULL, "{}"}}};
    check(&HERMES, 1, 0, HERMES_CALL("now", "{}") "\n\nDone.", &w);
}

static void hermes_tolerates_other_spacing(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .calls = {{"f", NULL, "{\"a\":[1,2]}"}}};
    check(&HERMES, 1, 0, "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":[1,2]}}</tool_call>", &w);
    check(&HERMES, 1, 0,
          "<tool_call>\n  { \"name\" : \"f\" ,\n \"arguments\" :\n{\"a\":[1,2]} }\n\n</tool_call>",
          &w);
}

static void arguments_end_where_their_json_ends(void **state)
{
    (void)state;
    /* Braces, brackets, quotes and markers inside strings are arguments. */
    const char *args = "{\"q\": \"a } ] \\\" \\\\ </tool_call> {\", \"n\": [{\"x\": {}}, []]}";
    want w = {.n_calls = 1, .calls = {{"search", NULL, args}}};
    char text[512];
    snprintf(text, sizeof text, "<tool_call>\n{\"name\": \"search\", \"arguments\": %s}\n</tool_call>",
             args);
    check(&HERMES, 1, 0, text, &w);
    /* Arguments that are not an object are passed on as written. */
    want s = {.n_calls = 2, .calls = {{"f", NULL, "\"x}\""}, {"g", NULL, "42"}}};
    check(&HERMES, 1, 0,
          "<tool_call>\n{\"name\": \"f\", \"arguments\": \"x}\"}\n</tool_call>\n"
          "<tool_call>\n{\"name\": \"g\", \"arguments\": 42}\n</tool_call>",
          &s);
}

static void false_alarms_are_content(void **state)
{
    (void)state;
    want w = {.content = "<tools> and <tool_cal> and <tool_call without a close"};
    check(&HERMES, 1, 0, "<tools> and <tool_cal> and <tool_call without a close", &w);
    want w2 = {.content = "a <<tool\n<tx \n"};
    check(&HERMES, 1, 0, "a <<tool\n<tx \n", &w2);
    /* A held newline that is not followed by a marker is content. */
    want w3 = {.content = "line\n"};
    check(&HERMES, 1, 0, "line\n", &w3);
}

static void a_marker_after_a_false_one_is_found(void **state)
{
    (void)state;
    want w = {.content = "x <", .n_calls = 1, .calls = {{"now", NULL, "{}"}}};
    check(&HERMES, 1, 0, "x <" HERMES_CALL("now", "{}"), &w);
    want w2 = {.content = "<tool_call>\nnot json", .n_calls = 1, .calls = {{"now", NULL, "{}"}}};
    check(&HERMES, 1, 0, "<tool_call>\nnot json\n" HERMES_CALL("now", "{}"), &w2);
}

static void a_marker_without_a_call_shape_is_content(void **state)
{
    (void)state;
    /* Unconstrained output that is not a call: shown as written. */
    const char *t = "<tool_call>\nget_weather(Paris)\n</tool_call>";
    want w = {.content = t};
    check(&HERMES, 1, 0, t, &w);
    const char *t2 = "<tool_call>\n{\"function\": \"f\"}\n</tool_call>";
    want w2 = {.content = t2};
    check(&HERMES, 1, 0, t2, &w2);
    /* A name but no arguments: not a call either. */
    const char *t3 = "<tool_call>\n{\"name\": \"f\"}\n</tool_call>";
    want w3 = {.content = t3};
    check(&HERMES, 1, 0, t3, &w3);
}

static void text_after_arguments_that_does_not_close_the_call_is_content(void **state)
{
    (void)state;
    want w = {.content = ", \"extra\": 1}", .n_calls = 1, .calls = {{"f", NULL, "{}"}}};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}, \"extra\": 1}", &w);
    want w2 = {.content = "Bye", .n_calls = 1, .calls = {{"f", NULL, "{}"}}};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\nBye", &w2);
}

static void a_missing_closing_marker_still_makes_a_whole_call(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .calls = {{"f", NULL, "{\"a\": 1}"}}};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n", &w);
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_", &w);
}

static void a_call_cut_short_is_reported_as_far_as_it_got(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .incomplete = 1, .calls = {{"f", NULL, "{\"a\": \"b"}}};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"b", &w);
    want named = {.n_calls = 1, .incomplete = 1, .calls = {{"get_weather", NULL, ""}}};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"get_weather\", \"argu", &named);
    /* Before the name is whole there is no call to report. */
    want none = {.incomplete = 1};
    check(&HERMES, 1, 0, "<tool_call>\n{\"name\": \"get_w", &none);
    check(&HERMES, 1, 0, "<tool_call>", &none);
    want content = {.content = "Sure.", .incomplete = 1};
    check(&HERMES, 1, 0, "Sure.\n<tool_call>\n{", &content);
    /* A marker cut short is content: it never became one. */
    want partial = {.content = "Sure.\n<tool_ca"};
    check(&HERMES, 1, 0, "Sure.\n<tool_ca", &partial);
}

static void names_are_unescaped(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .calls = {{"a\"b\\c/d", NULL, "{}"}}};
    check(&HERMES, 1, 0, HERMES_CALL("a\\\"b\\\\c\\/d", "{}"), &w);
    /* A name too long to be a tool's is not a call. */
    char text[800], name[400];
    memset(name, 'n', 300);
    name[300] = '\0';
    snprintf(text, sizeof text, HERMES_CALL("%s", "{}"), name);
    want c = {.content = text};
    check(&HERMES, 1, 0, text, &c);
}

static void tools_off_leaves_markers_as_content(void **state)
{
    (void)state;
    const char *t = "Hi\n" HERMES_CALL("f", "{}");
    want w = {.content = t};
    check(&HERMES, 0, 0, t, &w);
    const char *l = "{\"name\": \"f\", \"parameters\": {}}";
    want wl = {.content = l};
    check(&LLAMA3, 0, 0, l, &wl);
    const char *m = "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcDEF123\"}]";
    want wm = {.content = m};
    check(&MISTRAL, 0, 0, m, &wm);
    const char *g = "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}]}";
    want wg = {.content = g};
    check(&GENERIC, 0, 0, g, &wg);
}

/* ---- Reasoning --------------------------------------------------------- */

static void reasoning_then_content(void **state)
{
    (void)state;
    want w = {.reasoning = "Two plus two.\nIs four.", .content = "4"};
    check(&QWEN3, 1, 0, "<think>\nTwo plus two.\nIs four.\n</think>\n\n4", &w);
    check(&QWEN3, 0, 0, "<think>\nTwo plus two.\nIs four.\n</think>\n\n4", &w);
    /* Leading whitespace before the think block goes too. */
    check(&QWEN3, 1, 0, "\n<think>Two plus two.\nIs four.</think>4", &w);
}

static void reasoning_then_calls(void **state)
{
    (void)state;
    want w = {.reasoning = "I need the weather.",
              .n_calls = 2,
              .calls = {{"get_weather", NULL, WEATHER}, {"now", NULL, "{}"}}};
    check(&QWEN3, 1, 0,
          "<think>\nI need the weather.\n</think>\n\n" HERMES_CALL("get_weather", WEATHER) "\n"
              HERMES_CALL("now", "{}"),
          &w);
}

static void a_call_marker_inside_reasoning_is_reasoning(void **state)
{
    (void)state;
    want w = {.reasoning = "maybe " HERMES_CALL("f", "{}"), .content = "No."};
    check(&QWEN3, 1, 0, "<think>maybe " HERMES_CALL("f", "{}") "</think>No.", &w);
}

static void in_thinking_starts_in_reasoning(void **state)
{
    (void)state;
    want w = {.reasoning = "Let me see. <think> is just text here.", .content = "Answer"};
    check(&QWEN3, 1, 1, "\nLet me see. <think> is just text here.\n</think>\n\nAnswer", &w);
    want c = {.reasoning = "Weather.", .n_calls = 1, .calls = {{"get_weather", NULL, WEATHER}}};
    check(&QWEN3, 1, 1, "Weather.</think>\n" HERMES_CALL("get_weather", WEATHER), &c);
    /* The generic convention after reasoning: still at the start. */
    want g = {.reasoning = "Hm.", .n_calls = 1, .calls = {{"f", NULL, "{}"}}};
    check(&GENERIC_THINK, 1, 1,
          "Hm.</think>\n\n{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}]}", &g);
}

static void reasoning_cut_short_is_reasoning(void **state)
{
    (void)state;
    want w = {.reasoning = "Still thinking </thi"};
    check(&QWEN3, 1, 1, "Still thinking </thi", &w);
    want w2 = {.reasoning = "Still"};
    check(&QWEN3, 1, 0, "<think>\nStill", &w2);
}

static void a_think_tag_later_in_content_is_content(void **state)
{
    (void)state;
    want w = {.content = "Hi <think>x</think>"};
    check(&QWEN3, 1, 0, "Hi <think>x</think>", &w);
}

static void without_think_markers_in_thinking_is_ignored(void **state)
{
    (void)state;
    want w = {.content = "plain"};
    check(&HERMES, 1, 1, "plain", &w);
}

/* ---- Llama 3 ----------------------------------------------------------- */

static void llama3_call(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .calls = {{"get_weather", NULL, WEATHER}}};
    check(&LLAMA3, 1, 0, "{\"name\": \"get_weather\", \"parameters\": " WEATHER "}", &w);
    check(&LLAMA3, 1, 0, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": " WEATHER "}",
          &w);
    check(&LLAMA3, 1, 0, "\n {\"name\": \"get_weather\", \"arguments\": " WEATHER "}\n", &w);
}

static void llama3_json_that_is_not_a_call_is_content(void **state)
{
    (void)state;
    const char *t = "{\"answer\": 42}";
    want w = {.content = t};
    check(&LLAMA3, 1, 0, t, &w);
    const char *t2 = "{\"name\": \"Ada\", \"age\": 36}";
    want w2 = {.content = t2};
    check(&LLAMA3, 1, 0, t2, &w2);
    want w3 = {.content = "{"};
    check(&LLAMA3, 1, 0, "{", &w3);
}

static void llama3_calls_count_only_at_the_start(void **state)
{
    (void)state;
    const char *t = "Sure: {\"name\": \"f\", \"parameters\": {}}";
    want w = {.content = t};
    check(&LLAMA3, 1, 0, t, &w);
}

static void llama3_call_cut_short(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .incomplete = 1, .calls = {{"f", NULL, "{\"x\": [1, "}}};
    check(&LLAMA3, 1, 0, "{\"name\": \"f\", \"parameters\": {\"x\": [1, ", &w);
    want r = {.incomplete = 1};
    check(&LLAMA3, 1, 0, "{\"name\": \"f", &r);
}

/* ---- Mistral ----------------------------------------------------------- */

static void mistral_calls_with_ids(void **state)
{
    (void)state;
    want w = {.n_calls = 2,
              .calls = {{"get_weather", "abcDEF123", WEATHER}, {"add", "Z9Z9Z9Z9Z", "{\"a\": 1}"}}};
    check(&MISTRAL, 1, 0,
          "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": " WEATHER
          ", \"id\": \"abcDEF123\"}, {\"name\": \"add\", \"arguments\": {\"a\": 1}, \"id\": "
          "\"Z9Z9Z9Z9Z\"}]",
          &w);
}

static void mistral_call_without_id(void **state)
{
    (void)state;
    want w = {.content = "Then:", .n_calls = 1, .calls = {{"f", NULL, "{}"}}};
    check(&MISTRAL, 1, 0, "[TOOL_CALLS] [ {\"name\": \"f\", \"arguments\": {}} ]\nThen:", &w);
}

static void mistral_content_before_calls(void **state)
{
    (void)state;
    want w = {.content = "Checking.", .n_calls = 1, .calls = {{"f", "123456789", "{}"}}};
    check(&MISTRAL, 1, 0,
          "Checking.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"123456789\"}]", &w);
}

static void mistral_cut_short(void **state)
{
    (void)state;
    /* The id comes after the arguments: a call cut in its arguments has none. */
    want w = {.n_calls = 1, .incomplete = 1, .calls = {{"f", NULL, "{\"a\": "}}};
    check(&MISTRAL, 1, 0, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": ", &w);
    /* Cut after a whole call: the call is whole. */
    want w2 = {.n_calls = 1, .calls = {{"f", "abcdefghi", "{}"}}};
    check(&MISTRAL, 1, 0, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}",
          &w2);
    /* Cut inside a second call. */
    want w3 = {.n_calls = 1, .incomplete = 1, .calls = {{"f", "abcdefghi", "{}"}}};
    check(&MISTRAL, 1, 0,
          "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}, {\"na", &w3);
}

static void mistral_junk_after_a_call_is_content(void **state)
{
    (void)state;
    want w = {.content = ", oops", .n_calls = 1, .calls = {{"f", "abcdefghi", "{}"}}};
    check(&MISTRAL, 1, 0,
          "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}, oops", &w);
    const char *t = "[TOOL_CALLS] nothing";
    want w2 = {.content = t};
    check(&MISTRAL, 1, 0, t, &w2);
}

/* ---- Generic ----------------------------------------------------------- */

static void generic_calls(void **state)
{
    (void)state;
    want w = {.n_calls = 2, .calls = {{"get_weather", NULL, WEATHER}, {"now", NULL, "{}"}}};
    check(&GENERIC, 1, 0,
          "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": " WEATHER
          "}, {\"name\": \"now\", \"arguments\": {}}]}",
          &w);
}

static void generic_json_that_is_not_calls_is_content(void **state)
{
    (void)state;
    const char *t = "{\"answer\": {\"tool_calls\": 1}}";
    want w = {.content = t};
    check(&GENERIC, 1, 0, t, &w);
    const char *t2 = "Text {\"tool_calls\": []}";
    want w2 = {.content = t2};
    check(&GENERIC, 1, 0, t2, &w2);
}

static void generic_cut_short(void **state)
{
    (void)state;
    want w = {.n_calls = 1, .incomplete = 1, .calls = {{"f", NULL, "{\"a\""}}};
    check(&GENERIC, 1, 0, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\"", &w);
    want w2 = {.incomplete = 1};
    check(&GENERIC, 1, 0, "{\"tool_calls\": [", &w2);
    want w3 = {.content = "{\"tool_c"};
    check(&GENERIC, 1, 0, "{\"tool_c", &w3);
}

/* ---- Use ---------------------------------------------------------------- */

static void feeding_after_finish_is_refused(void **state)
{
    (void)state;
    parsed p;
    memset(&p, 0, sizeof p);
    chat_output *o = chat_output_new(&HERMES, 1, 0);
    assert_non_null(o);
    assert_int_equal(chat_output_feed(o, "hi", 2, collect, &p), SEM_OK);
    assert_int_equal(chat_output_finish(o, collect, &p), SEM_OK);
    assert_int_equal(chat_output_feed(o, "x", 1, collect, &p), SEM_EINVAL);
    assert_int_equal(chat_output_finish(o, collect, &p), SEM_EINVAL);
    chat_output_free(o);
    chat_output_free(NULL);
    parsed_free(&p);
}

static void a_marker_is_never_shown_before_it_resolves(void **state)
{
    (void)state;
    /* Fed byte by byte, no content event ever holds a byte of the marker. */
    const char *t = "ok\n" HERMES_CALL("f", "{}");
    parsed p;
    memset(&p, 0, sizeof p);
    chat_output *o = chat_output_new(&HERMES, 1, 0);
    for (size_t i = 0; t[i]; i++) {
        assert_int_equal(chat_output_feed(o, t + i, 1, collect, &p), SEM_OK);
        assert_null(strchr(str(&p.content), '<'));
        assert_null(strchr(str(&p.content), '\n'));
    }
    assert_int_equal(chat_output_finish(o, collect, &p), SEM_OK);
    assert_string_equal(str(&p.content), "ok");
    assert_int_equal(p.n_calls, 1);
    chat_output_free(o);
    parsed_free(&p);
}

static void arguments_stream_as_they_arrive(void **state)
{
    (void)state;
    const char *head = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"text\": \"abc";
    parsed p;
    memset(&p, 0, sizeof p);
    chat_output *o = chat_output_new(&HERMES, 1, 0);
    assert_int_equal(chat_output_feed(o, head, strlen(head), collect, &p), SEM_OK);
    assert_int_equal(p.n_calls, 1);
    assert_string_equal(p.name[0], "f");
    assert_string_equal(str(&p.args[0]), "{\"text\": \"abc");
    assert_int_equal(chat_output_feed(o, "d\"}}", 4, collect, &p), SEM_OK);
    assert_string_equal(str(&p.args[0]), "{\"text\": \"abcd\"}");
    assert_int_equal(chat_output_finish(o, collect, &p), SEM_OK);
    assert_false(chat_output_incomplete(o));
    chat_output_free(o);
    parsed_free(&p);
}

/* ---- The golden templates' renders parse back -------------------------- */

/* The assistant's tool-call turn in a golden render of `tool_call_result`. */
static char *golden_turn(const char *stem, const char *open, const char *close, json_t **call)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.json", SEM_TEST_DATA, stem);
    json_error_t je;
    json_t *cases = json_load_file(path, 0, &je);
    if (!cases)
        fail_msg("%s: %s", path, je.text);
    json_t *c = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(cases, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "name")), "tool_call_result") == 0)
            c = v;
    }
    assert_non_null(c);
    const char *prompt = json_string_value(json_object_get(c, "expected_prompt"));
    const char *a = strstr(prompt, open);
    assert_non_null(a);
    a += strlen(open);
    const char *b = strstr(a, close);
    assert_non_null(b);
    char *turn = strndup(a, (size_t)(b - a));
    json_t *msg = json_array_get(json_object_get(c, "messages"), 1);
    *call = json_incref(json_array_get(json_object_get(msg, "tool_calls"), 0));
    json_decref(cases);
    return turn;
}

static void golden_round_trip(const prompt_syntax *syn, const char *stem, const char *open,
                              const char *close, int with_id)
{
    json_t *call;
    char *turn = golden_turn(stem, open, close, &call);
    parsed p;
    parse_every_way(syn, 1, 0, turn, &p);
    assert_string_equal(str(&p.content), "");
    assert_int_equal(p.n_calls, 1);
    assert_false(p.incomplete);
    json_t *fn = json_object_get(call, "function");
    assert_string_equal(p.name[0], json_string_value(json_object_get(fn, "name")));
    /* The arguments come back byte for byte as the request gave them. */
    assert_string_equal(str(&p.args[0]), json_string_value(json_object_get(fn, "arguments")));
    if (with_id) {
        assert_true(p.has_id[0]);
        assert_string_equal(p.id[0], json_string_value(json_object_get(call, "id")));
    }
    parsed_free(&p);
    json_decref(call);
    free(turn);
}

static void golden_renders_parse_back(void **state)
{
    (void)state;
    golden_round_trip(&HERMES, "Qwen-Qwen2.5-7B-Instruct",
                      "What's the weather like in Paris today?<|im_end|>\n<|im_start|>assistant\n",
                      "<|im_end|>", 0);
    golden_round_trip(&QWEN3, "Qwen-Qwen3-0.6B",
                      "What's the weather like in Paris today?<|im_end|>\n<|im_start|>assistant\n",
                      "<|im_end|>", 0);
    golden_round_trip(&LLAMA3, "meta-llama-Llama-3.1-8B-Instruct",
                      "today?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                      "<|eot_id|>", 0);
    golden_round_trip(&LLAMA3, "meta-llama-Llama-3.2-3B-Instruct",
                      "today?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                      "<|eot_id|>", 0);
    golden_round_trip(&MISTRAL, "mistralai-Mistral-Nemo-Instruct-2407", "today?[/INST]", "</s>",
                      1);
}

/* Random texts made of pieces of every format: whatever they mean, they
 * mean it however they are cut (and nothing crashes or leaks). */
static void random_mixtures_agree_however_cut(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "<tool_call>", "</tool_call>", "<tool", "_call>", "[TOOL_CALLS]", "[TOOL", "<|python_tag|>",
        "<think>", "</think>", "</th", "{", "}", "[", "]", "\"name\"", "\"arguments\"",
        "\"parameters\"", "\"tool_calls\"", "\"id\"", ": ", ":", ", ", ",", "\"f\"", "\"",
        "\\", "\n", " ", "\n\n", "abc", "\xc3\xa9", "\xf0\x9f\x8e\x89", "1", "null",
        "{\"name\": \"f\", \"arguments\": {\"a\": 1}}", "\"abcDEF123\"",
    };
    const prompt_syntax *syns[] = {&HERMES, &QWEN3, &LLAMA3, &MISTRAL, &GENERIC, &GENERIC_THINK};
    uint64_t seed = 12345;
    char text[400];
    for (int round = 0; round < 600; round++) {
        size_t len = 0;
        int n = 1 + (int)(test_rand(&seed) % 40);
        for (int i = 0; i < n; i++) {
            const char *p = pieces[test_rand(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (len + pl >= sizeof text)
                break;
            memcpy(text + len, p, pl);
            len += pl;
        }
        text[len] = '\0';
        const prompt_syntax *syn = syns[round % 6];
        parsed whole;
        parse_every_way(syn, (round / 6) % 2 == 0, (round / 12) % 2, text, &whole);
        parsed_free(&whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_without_markers_is_content),
        cmocka_unit_test(leading_whitespace_of_plain_content_is_kept),
        cmocka_unit_test(empty_output_is_nothing),
        cmocka_unit_test(unicode_passes_through),
        cmocka_unit_test(hermes_one_call),
        cmocka_unit_test(hermes_content_then_call_drops_the_format_newline),
        cmocka_unit_test(hermes_parallel_calls),
        cmocka_unit_test(hermes_content_after_calls),
        cmocka_unit_test(hermes_tolerates_other_spacing),
        cmocka_unit_test(arguments_end_where_their_json_ends),
        cmocka_unit_test(false_alarms_are_content),
        cmocka_unit_test(a_marker_after_a_false_one_is_found),
        cmocka_unit_test(a_marker_without_a_call_shape_is_content),
        cmocka_unit_test(text_after_arguments_that_does_not_close_the_call_is_content),
        cmocka_unit_test(a_missing_closing_marker_still_makes_a_whole_call),
        cmocka_unit_test(a_call_cut_short_is_reported_as_far_as_it_got),
        cmocka_unit_test(names_are_unescaped),
        cmocka_unit_test(tools_off_leaves_markers_as_content),
        cmocka_unit_test(reasoning_then_content),
        cmocka_unit_test(reasoning_then_calls),
        cmocka_unit_test(a_call_marker_inside_reasoning_is_reasoning),
        cmocka_unit_test(in_thinking_starts_in_reasoning),
        cmocka_unit_test(reasoning_cut_short_is_reasoning),
        cmocka_unit_test(a_think_tag_later_in_content_is_content),
        cmocka_unit_test(without_think_markers_in_thinking_is_ignored),
        cmocka_unit_test(llama3_call),
        cmocka_unit_test(llama3_json_that_is_not_a_call_is_content),
        cmocka_unit_test(llama3_calls_count_only_at_the_start),
        cmocka_unit_test(llama3_call_cut_short),
        cmocka_unit_test(mistral_calls_with_ids),
        cmocka_unit_test(mistral_call_without_id),
        cmocka_unit_test(mistral_content_before_calls),
        cmocka_unit_test(mistral_cut_short),
        cmocka_unit_test(mistral_junk_after_a_call_is_content),
        cmocka_unit_test(generic_calls),
        cmocka_unit_test(generic_json_that_is_not_calls_is_content),
        cmocka_unit_test(generic_cut_short),
        cmocka_unit_test(feeding_after_finish_is_refused),
        cmocka_unit_test(a_marker_is_never_shown_before_it_resolves),
        cmocka_unit_test(arguments_stream_as_they_arrive),
        cmocka_unit_test(golden_renders_parse_back),
        cmocka_unit_test(random_mixtures_agree_however_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
