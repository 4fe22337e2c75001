/*
 * Allocation failures in the chat output splitter and the tool grammars,
 * with the k-th allocation failing for every k: each operation either
 * gives exactly what it gives with memory to spare, or SEM_ENOMEM (a
 * splitter that ran out stays failed; a grammar that did is empty).
 * Nothing leaks (LSan in the ASan build).
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdio.h>

#include "adapters/chat/chat_output.h"
#include "adapters/chat/tool_grammar.h"
#include "alloc_fail.h"

/* What the events add up to, in fixed memory (the collector must not
 * allocate: its allocations would be counted too). */
typedef struct sink {
    char text[4096];
    size_t len;
} sink;

static void collect(void *user, const chat_event *ev)
{
    sink *s = user;
    int n = snprintf(s->text + s->len, sizeof s->text - s->len, "[%d %u %.*s %s]", ev->type,
                     ev->tool_index, (int)ev->len, ev->text, ev->id ? ev->id : "-");
    assert_true(n > 0 && (size_t)n < sizeof s->text - s->len);
    s->len += (size_t)n;
}

static const prompt_syntax QWEN3 = {PROMPT_TOOLS_HERMES, 1, "<think>", "</think>"};
static const prompt_syntax MISTRAL = {PROMPT_TOOLS_MISTRAL, 1, NULL, NULL};

/* Splits text fed in 5-byte pieces; SEM_OK and the events, or a failure. */
static sem_status split(const prompt_syntax *syn, const char *text, sink *s)
{
    memset(s, 0, sizeof *s);
    chat_output *o = chat_output_new(syn, 1, 0);
    if (!o)
        return SEM_ENOMEM;
    sem_status st = SEM_OK;
    size_t len = strlen(text);
    for (size_t at = 0; at < len && st == SEM_OK; at += 5) {
        st = chat_output_feed(o, text + at, len - at < 5 ? len - at : 5, collect, s);
        if (st != SEM_OK) /* a failed splitter stays failed */
            assert_int_equal(chat_output_feed(o, "x", 1, collect, s), st);
    }
    if (st == SEM_OK)
        st = chat_output_finish(o, collect, s);
    chat_output_free(o);
    return st;
}

static void splitter(const prompt_syntax *syn, const char *text)
{
    sink ref, got;
    assert_int_equal(split(syn, text, &ref), SEM_OK);
    for (uint64_t k = 1;; k++) {
        alloc_fail_arm(k, 0);
        sem_status st = split(syn, text, &got);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_int_equal(st, SEM_OK);
            assert_string_equal(got.text, ref.text);
            break;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failing: %s", (unsigned long long)k, sem_status_name(st));
    }
}

static void the_splitter_fails_cleanly(void **state)
{
    (void)state;
    splitter(&QWEN3, "<think>\nHm.\n</think>\n\nSure.\n<tool_call>\n{\"name\": \"f\", "
                     "\"arguments\": {\"a\": [1, 2]}}\n</tool_call>\n<tool_call>\nnot a call");
    splitter(&MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": \"b\"}, \"id\": "
                       "\"abcDEF123\"}, {\"name\": \"g\", \"arguments\": {}}] done");
}

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {"
    "    \"location\": {\"type\": \"string\"},"
    "    \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}},"
    "   \"required\": [\"location\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\"}}]";

typedef sem_status (*build_fn)(const json_t *in, chat_grammar *out);

static sem_status build_tools(const json_t *tools, chat_grammar *out)
{
    return chat_grammar_tools(&QWEN3, tools, CHAT_TOOL_REQUIRED, NULL, 1, 1, out, NULL);
}

static sem_status build_auto(const json_t *tools, chat_grammar *out)
{
    static const prompt_syntax generic = {PROMPT_TOOLS_GENERIC, 1, "<think>", "</think>"};
    return chat_grammar_tools(&generic, tools, CHAT_TOOL_AUTO, NULL, 1, 1, out, NULL);
}

static sem_status build_schema(const json_t *tools, chat_grammar *out)
{
    const json_t *schema =
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "parameters");
    return chat_grammar_schema(&QWEN3, schema, 0, 1, out, NULL);
}

static sem_status build_any(const json_t *tools, chat_grammar *out)
{
    (void)tools;
    return chat_grammar_schema(&MISTRAL, NULL, 0, 0, out, NULL);
}

static void grammar_fails_cleanly(build_fn build, const json_t *tools)
{
    chat_grammar ref, got;
    assert_int_equal(build(tools, &ref), SEM_OK);
    for (uint64_t k = 1;; k++) {
        alloc_fail_arm(k, 0);
        sem_status st = build(tools, &got);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_int_equal(st, SEM_OK);
            assert_string_equal(got.text.data, ref.text.data);
            assert_int_equal(got.n_triggers, ref.n_triggers);
            chat_grammar_free(&got);
            break;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failing: %s", (unsigned long long)k, sem_status_name(st));
        assert_null(got.text.data);
        assert_int_equal(got.n_triggers, 0);
    }
    chat_grammar_free(&ref);
}

static void the_grammars_fail_cleanly(void **state)
{
    (void)state;
    json_t *tools = json_loads(TOOLS, 0, NULL);
    assert_non_null(tools);
    grammar_fails_cleanly(build_tools, tools);
    grammar_fails_cleanly(build_auto, tools);
    grammar_fails_cleanly(build_schema, tools);
    grammar_fails_cleanly(build_any, tools);
    json_decref(tools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_splitter_fails_cleanly),
        cmocka_unit_test(the_grammars_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
