/*
 * Specification of tool_grammar.h: the grammars parse; their random
 * sentences are calls to the allowed tools, with arguments valid for the
 * tools' schemas, that chat_output reads back and that the golden chat
 * templates render back byte for byte; the triggers make them lazy where
 * they should; bad requests name the field.
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapters/chat/chat_output.h"
#include "adapters/chat/tool_grammar.h"
#include "adapters/template/chat_template.h"
#include "app/grammar.h"
#include "base/strbuf.h"

/* ---- Fixtures -------------------------------------------------------- */

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    "  \"description\": \"Get the weather.\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {"
    "    \"location\": {\"type\": \"string\", \"description\": \"City\"},"
    "    \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}},"
    "   \"required\": [\"location\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"add\", \"strict\": true,"
    "  \"parameters\": {\"type\": \"object\", \"properties\": {"
    "    \"a\": {\"type\": \"integer\", \"minimum\": -100, \"maximum\": 100},"
    "    \"b\": {\"type\": \"integer\"}},"
    "   \"required\": [\"a\", \"b\"], \"additionalProperties\": false}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"my.tool name!\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {"
    "    \"items\": {\"type\": \"array\", \"maxItems\": 2, \"items\": {\"type\": \"object\","
    "      \"properties\": {\"id\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 99},"
    "        \"tags\": {\"type\": \"array\", \"maxItems\": 2,"
    "                   \"items\": {\"type\": \"string\", \"maxLength\": 4}}},"
    "      \"required\": [\"id\"], \"additionalProperties\": false}},"
    "    \"flag\": {\"type\": \"boolean\"},"
    "    \"ratio\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 1},"
    "    \"note\": {\"anyOf\": [{\"type\": \"string\", \"maxLength\": 5}, {\"type\": \"null\"}]}},"
    "   \"required\": [\"items\", \"flag\"], \"additionalProperties\": false}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\"}}]";

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("fixture: %s", je.text);
    return v;
}

static const prompt_syntax HERMES = {PROMPT_TOOLS_HERMES, 1, NULL, NULL};
static const prompt_syntax QWEN3 = {PROMPT_TOOLS_HERMES, 1, "<think>", "</think>"};
static const prompt_syntax LLAMA3 = {PROMPT_TOOLS_LLAMA3, 0, NULL, NULL};
static const prompt_syntax MISTRAL = {PROMPT_TOOLS_MISTRAL, 1, NULL, NULL};
static const prompt_syntax GENERIC = {PROMPT_TOOLS_GENERIC, 1, NULL, NULL};
static const prompt_syntax GENERIC_THINK = {PROMPT_TOOLS_GENERIC, 1, "<think>", "</think>"};

static grammar *compile(const chat_grammar *cg)
{
    sem_err err = {0};
    grammar *g = grammar_parse(cg->text.data, cg->text.len, &err);
    if (!g)
        fail_msg("the grammar does not parse: %s\n%s", err.detail, cg->text.data);
    return g;
}

static void tools_ok(const prompt_syntax *syn, const json_t *tools, chat_tool_choice choice,
                     const char *name, int parallel, int in_thinking, chat_grammar *out)
{
    sem_err err = {0};
    sem_status st = chat_grammar_tools(syn, tools, choice, name, parallel, in_thinking, out, &err);
    if (st != SEM_OK)
        fail_msg("chat_grammar_tools: %s", err.detail);
}

/* ---- Random sentences ------------------------------------------------- */

/*
 * A random sentence of g: each byte is the first the grammar accepts in a
 * random order of all 256; the sentence may stop wherever it can end.
 * Past `budget` bytes it stops as soon as it can, and bytes that close
 * ('"', '}', ']') are tried first, so every JSON value winds up.
 */
static void random_sentence(const grammar *g, uint64_t *seed, size_t budget, strbuf *out)
{
    grammar_state *s = grammar_state_new(g, NULL);
    assert_non_null(s);
    strbuf_truncate(out, 0);
    static const unsigned char closers[] = {'"', '}', ']'};
    for (size_t n = 0;; n++) {
        if (grammar_state_done(s))
            break;
        if (grammar_state_can_end(s) && (n >= budget || test_rand(seed) % 24 == 0))
            break;
        if (n > budget + 4096)
            fail_msg("no end in sight after %zu bytes: %s", n, out->data);
        unsigned char order[256 + sizeof closers];
        size_t k = 0;
        if (n >= budget)
            for (size_t i = 0; i < sizeof closers; i++)
                order[k++] = closers[i];
        for (int i = 0; i < 256; i++)
            order[k + i] = (unsigned char)i;
        for (int i = 255; i > 0; i--) {
            int j = (int)(test_rand(seed) % (uint64_t)(i + 1));
            unsigned char t = order[k + i];
            order[k + i] = order[k + j];
            order[k + j] = t;
        }
        k += 256;
        int took = 0;
        for (size_t i = 0; i < k && !took; i++)
            if (grammar_state_accept(s, (const char *)&order[i], 1)) {
                strbuf_append(out, (const char *)&order[i], 1);
                took = 1;
            }
        if (!took)
            fail_msg("stuck: no byte can follow and the output cannot end: %s", out->data);
    }
    grammar_state_free(s);
}

/* ---- A small JSON Schema checker for the fixtures' keywords ----------- */

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int type_is(const json_t *v, const char *t)
{
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(t, "null"))
        return json_is_null(v);
    return 0;
}

static int valid(const json_t *schema, const json_t *v)
{
    const json_t *any = json_object_get(schema, "anyOf");
    if (any) {
        size_t i;
        const json_t *alt;
        json_array_foreach(any, i, alt) if (valid(alt, v)) return 1;
        return 0;
    }
    const json_t *en = json_object_get(schema, "enum");
    if (en) {
        size_t i;
        const json_t *e;
        json_array_foreach(en, i, e) if (json_equal(e, v)) return 1;
        return 0;
    }
    const json_t *type = json_object_get(schema, "type");
    if (type && !type_is(v, json_string_value(type)))
        return 0;
    const json_t *kw;
    if ((kw = json_object_get(schema, "minimum")) && json_number_value(v) < json_number_value(kw))
        return 0;
    if ((kw = json_object_get(schema, "maximum")) && json_number_value(v) > json_number_value(kw))
        return 0;
    if (json_is_string(v) && (kw = json_object_get(schema, "maxLength")) &&
        code_points(json_string_value(v)) > (size_t)json_integer_value(kw))
        return 0;
    if (json_is_array(v)) {
        if ((kw = json_object_get(schema, "maxItems")) &&
            json_array_size(v) > (size_t)json_integer_value(kw))
            return 0;
        const json_t *items = json_object_get(schema, "items");
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) if (items && !valid(items, e)) return 0;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(schema, "properties");
        const json_t *req = json_object_get(schema, "required");
        size_t i;
        const json_t *r;
        json_array_foreach(req, i, r) if (!json_object_get(v, json_string_value(r))) return 0;
        const char *key;
        const json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            const json_t *ps = json_object_get(props, key);
            if (ps && !valid(ps, m))
                return 0;
            if (!ps && json_is_false(json_object_get(schema, "additionalProperties")))
                return 0;
        }
    }
    return 1;
}

/* The schema a tool's arguments follow (a tool without parameters: {}). */
static const json_t *tool_schema(const json_t *tools, const char *name, int *found)
{
    size_t i;
    const json_t *t;
    *found = 0;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        if (strcmp(json_string_value(json_object_get(fn, "name")), name) == 0) {
            *found = 1;
            return json_object_get(fn, "parameters");
        }
    }
    return NULL;
}

/* ---- Reading sentences back ------------------------------------------- */

#define CALLS_MAX 16

typedef struct calls {
    strbuf content, reasoning;
    uint32_t n;
    char name[CALLS_MAX][64];
    char id[CALLS_MAX][16];
    strbuf args[CALLS_MAX];
} calls;

static void collect(void *user, const chat_event *ev)
{
    calls *c = user;
    switch (ev->type) {
    case CHAT_EV_TEXT: strbuf_append(&c->content, ev->text, ev->len); break;
    case CHAT_EV_REASONING: strbuf_append(&c->reasoning, ev->text, ev->len); break;
    case CHAT_EV_TOOL_START:
        assert_int_equal(ev->tool_index, c->n);
        assert_true(c->n < CALLS_MAX && ev->len < sizeof c->name[0]);
        memcpy(c->name[c->n], ev->text, ev->len);
        c->name[c->n][ev->len] = '\0';
        snprintf(c->id[c->n], sizeof c->id[0], "%s", ev->id ? ev->id : "");
        c->n++;
        break;
    case CHAT_EV_TOOL_ARGS: strbuf_append(&c->args[ev->tool_index], ev->text, ev->len); break;
    }
}

static void calls_free(calls *c)
{
    strbuf_free(&c->content);
    strbuf_free(&c->reasoning);
    for (int i = 0; i < CALLS_MAX; i++)
        strbuf_free(&c->args[i]);
}

static const char *str(const strbuf *b) { return b->len ? b->data : ""; }

/* Parses text whole (step 0) or in random pieces (step > 0: at most step
 * bytes each). */
static void read_back(const prompt_syntax *syn, int in_thinking, const char *text, size_t step,
                      uint64_t *seed, calls *c)
{
    memset(c, 0, sizeof *c);
    chat_output *o = chat_output_new(syn, 1, in_thinking);
    assert_non_null(o);
    size_t len = strlen(text);
    for (size_t at = 0; at < len;) {
        size_t n = step ? 1 + test_rand(seed) % step : len;
        if (n > len - at)
            n = len - at;
        assert_int_equal(chat_output_feed(o, text + at, n, collect, c), SEM_OK);
        at += n;
    }
    assert_int_equal(chat_output_finish(o, collect, c), SEM_OK);
    assert_false(chat_output_incomplete(o));
    assert_int_equal(chat_output_n_calls(o), c->n);
    chat_output_free(o);
}

static void same_calls(const calls *a, const calls *b)
{
    assert_string_equal(str(&a->content), str(&b->content));
    assert_string_equal(str(&a->reasoning), str(&b->reasoning));
    assert_int_equal(a->n, b->n);
    for (uint32_t i = 0; i < a->n; i++) {
        assert_string_equal(a->name[i], b->name[i]);
        assert_string_equal(a->id[i], b->id[i]);
        assert_string_equal(str(&a->args[i]), str(&b->args[i]));
    }
}

static int alnum9(const char *id)
{
    if (strlen(id) != 9)
        return 0;
    for (int i = 0; i < 9; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* What the model would have written around the grammar's sentence. */
static void whole_output(const prompt_syntax *syn, chat_tool_choice choice, int in_thinking,
                         const char *sentence, strbuf *text, const char **content)
{
    strbuf_truncate(text, 0);
    *content = "";
    if (in_thinking) {
        strbuf_puts(text, "Let me think.");
        /* Lazy on think_close or not: the model closes its reasoning. */
        if (strncmp(sentence, syn->think_close, strlen(syn->think_close)) != 0)
            strbuf_printf(text, "%s\n\n", syn->think_close);
    }
    if (choice == CHAT_TOOL_AUTO && syn->tools == PROMPT_TOOLS_HERMES) {
        *content = "Sure.";
        strbuf_puts(text, "Sure.\n");
    } else if (choice == CHAT_TOOL_AUTO && syn->tools == PROMPT_TOOLS_MISTRAL) {
        *content = "Sure.";
        strbuf_puts(text, "Sure.");
    }
    strbuf_puts(text, sentence);
}

/*
 * Draws `rounds` sentences of the grammar for (syn, choice, name,
 * parallel, in_thinking) and checks each: chat_output reads the same calls
 * whole and in pieces; every call names an allowed tool, with arguments
 * valid for its schema; as many calls as the format and parallel allow.
 */
static void sentences_are_valid_calls(const prompt_syntax *syn, chat_tool_choice choice,
                                      const char *name, int parallel, int in_thinking, int rounds)
{
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(syn, tools, choice, name, parallel, in_thinking, &cg);
    grammar *g = compile(&cg);
    uint64_t seed = 0x1234567ull + (uint64_t)choice * 7919 + (uint64_t)parallel * 104729 +
                    (uint64_t)syn->tools * 1299709 + (uint64_t)in_thinking * 15485863;
    strbuf sentence = {0}, text = {0};
    uint32_t most = 0;
    for (int r = 0; r < rounds; r++) {
        random_sentence(g, &seed, 40 + (size_t)(r % 5) * 60, &sentence);
        /* A lazy grammar's sentence begins with one of its triggers. */
        if (cg.n_triggers) {
            int starts = 0;
            for (size_t i = 0; i < cg.n_triggers; i++) {
                const char *t = cg.triggers[i] + (cg.triggers[i][0] == '^');
                starts |= strncmp(sentence.data, t, strlen(t)) == 0;
            }
            if (!starts)
                fail_msg("sentence does not begin with a trigger: %s", sentence.data);
        }
        const char *content;
        whole_output(syn, choice, in_thinking, sentence.data, &text, &content);
        calls c, p;
        read_back(syn, in_thinking, text.data, 0, &seed, &c);
        for (size_t step = 1; step <= 9; step += 4) {
            read_back(syn, in_thinking, text.data, step, &seed, &p);
            same_calls(&c, &p);
            calls_free(&p);
        }
        if (strcmp(str(&c.content), content) != 0 || c.n == 0)
            fail_msg("content \"%s\", %u calls from:\n%s", str(&c.content), c.n, text.data);
        assert_string_equal(str(&c.reasoning), in_thinking ? "Let me think." : "");
        assert_true(c.n <= (parallel && syn->parallel_calls ? CHAT_GRAMMAR_PARALLEL_MAX : 1));
        most = c.n > most ? c.n : most;
        for (uint32_t i = 0; i < c.n; i++) {
            if (choice == CHAT_TOOL_NAMED)
                assert_string_equal(c.name[i], name);
            int found;
            const json_t *schema = tool_schema(tools, c.name[i], &found);
            if (!found)
                fail_msg("a call to \"%s\", not a tool", c.name[i]);
            json_error_t je;
            json_t *args = json_loads(str(&c.args[i]), 0, &je);
            if (!args)
                fail_msg("arguments are not JSON (%s): %s", je.text, str(&c.args[i]));
            if (schema ? !valid(schema, args) : json_object_size(args) != 0)
                fail_msg("arguments of %s not valid for its schema: %s", c.name[i],
                         str(&c.args[i]));
            json_decref(args);
            if (syn->tools == PROMPT_TOOLS_MISTRAL)
                assert_true(alnum9(c.id[i]));
            else
                assert_string_equal(c.id[i], "");
        }
        calls_free(&c);
    }
    /* Over many sentences, parallel grammars do make several calls. */
    if (parallel && syn->parallel_calls && rounds >= 20)
        assert_true(most > 1);
    strbuf_free(&sentence);
    strbuf_free(&text);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
}

static void forced_calls_are_valid(void **state)
{
    (void)state;
    const prompt_syntax *syns[] = {&HERMES, &LLAMA3, &MISTRAL, &GENERIC};
    for (size_t i = 0; i < 4; i++)
        for (int parallel = 0; parallel <= 1; parallel++)
            sentences_are_valid_calls(syns[i], CHAT_TOOL_REQUIRED, NULL, parallel, 0, 24);
}

static void named_calls_call_only_that_tool(void **state)
{
    (void)state;
    const prompt_syntax *syns[] = {&HERMES, &LLAMA3, &MISTRAL, &GENERIC};
    for (size_t i = 0; i < 4; i++) {
        sentences_are_valid_calls(syns[i], CHAT_TOOL_NAMED, "my.tool name!", 1, 0, 12);
        sentences_are_valid_calls(syns[i], CHAT_TOOL_NAMED, "add", 0, 0, 8);
        sentences_are_valid_calls(syns[i], CHAT_TOOL_NAMED, "now", 1, 0, 4);
    }
}

static void auto_calls_begin_at_the_trigger(void **state)
{
    (void)state;
    const prompt_syntax *syns[] = {&HERMES, &LLAMA3, &MISTRAL, &GENERIC};
    for (size_t i = 0; i < 4; i++)
        sentences_are_valid_calls(syns[i], CHAT_TOOL_AUTO, NULL, 1, 0, 16);
}

static void in_thinking_grammars_follow_the_reasoning(void **state)
{
    (void)state;
    const prompt_syntax *syns[] = {&QWEN3, &GENERIC_THINK};
    for (size_t i = 0; i < 2; i++) {
        sentences_are_valid_calls(syns[i], CHAT_TOOL_REQUIRED, NULL, 1, 1, 12);
        sentences_are_valid_calls(syns[i], CHAT_TOOL_NAMED, "get_weather", 0, 1, 6);
        sentences_are_valid_calls(syns[i], CHAT_TOOL_AUTO, NULL, 1, 1, 12);
    }
    /* A thinking model whose prompt did not open the block: as usual. */
    sentences_are_valid_calls(&QWEN3, CHAT_TOOL_REQUIRED, NULL, 1, 0, 6);
}

/* ---- Triggers --------------------------------------------------------- */

static void assert_triggers(const chat_grammar *cg, const char *const *want, size_t n)
{
    assert_int_equal(cg->n_triggers, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(cg->triggers[i], want[i]);
}

static void triggers_are_the_formats_openings(void **state)
{
    (void)state;
    json_t *tools = load(TOOLS);
    chat_grammar cg;

    tools_ok(&HERMES, tools, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_triggers(&cg, (const char *[]){"<tool_call>"}, 1);
    chat_grammar_free(&cg);
    tools_ok(&MISTRAL, tools, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_triggers(&cg, (const char *[]){"[TOOL_CALLS]"}, 1);
    chat_grammar_free(&cg);
    tools_ok(&LLAMA3, tools, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_triggers(&cg, (const char *[]){"^{\"name\": ", "^<|python_tag|>"}, 2);
    chat_grammar_free(&cg);
    tools_ok(&GENERIC, tools, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_triggers(&cg, (const char *[]){"^{\"tool_calls\": "}, 1);
    chat_grammar_free(&cg);

    /* Forced: from the first byte. */
    tools_ok(&HERMES, tools, CHAT_TOOL_REQUIRED, NULL, 1, 0, &cg);
    assert_int_equal(cg.n_triggers, 0);
    chat_grammar_free(&cg);
    /* After reasoning: lazy on its end. */
    tools_ok(&QWEN3, tools, CHAT_TOOL_REQUIRED, NULL, 1, 1, &cg);
    assert_triggers(&cg, (const char *[]){"</think>"}, 1);
    chat_grammar_free(&cg);
    /* Auto after reasoning: a marker anywhere stays the trigger... */
    tools_ok(&QWEN3, tools, CHAT_TOOL_AUTO, NULL, 1, 1, &cg);
    assert_triggers(&cg, (const char *[]){"<tool_call>"}, 1);
    chat_grammar_free(&cg);
    /* ...a call that must open the answer opens it after the reasoning. */
    tools_ok(&GENERIC_THINK, tools, CHAT_TOOL_AUTO, NULL, 1, 1, &cg);
    assert_triggers(&cg,
                    (const char *[]){"</think>{\"tool_calls\": ", "</think>\n{\"tool_calls\": ",
                                     "</think>\n\n{\"tool_calls\": "},
                    3);
    chat_grammar_free(&cg);
    json_decref(tools);
}

static void forced_output_is_exactly_the_calls(void **state)
{
    (void)state;
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(&HERMES, tools, CHAT_TOOL_NAMED, "add", 0, 0, &cg);
    grammar *g = compile(&cg);
    grammar_state *s = grammar_state_new(g, NULL);
    /* No text before the call, no second call, nothing after. */
    assert_false(grammar_state_accept(s, "Sure", 4));
    const char *call = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": -5, \"b\": 7}}\n"
                       "</tool_call>";
    assert_true(grammar_state_accept(s, call, strlen(call)));
    assert_true(grammar_state_done(s));
    assert_false(grammar_state_accept(s, "\n", 1));
    grammar_state_free(s);
    /* Another tool, arguments out of the schema: refused. */
    s = grammar_state_new(g, NULL);
    const char *other = "<tool_call>\n{\"name\": \"now\"";
    assert_false(grammar_state_accept(s, other, strlen(other)));
    const char *head = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": ";
    assert_true(grammar_state_accept(s, head, strlen(head)));
    assert_false(grammar_state_accept(s, "101", 3));
    assert_false(grammar_state_accept(s, "1.5", 3));
    grammar_state_free(s);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
}

static void parallel_calls_are_bounded(void **state)
{
    (void)state;
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(&HERMES, tools, CHAT_TOOL_NAMED, "now", 1, 0, &cg);
    grammar *g = compile(&cg);
    grammar_state *s = grammar_state_new(g, NULL);
    const char *call = "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
    for (int i = 0; i < CHAT_GRAMMAR_PARALLEL_MAX; i++) {
        if (i > 0)
            assert_true(grammar_state_accept(s, "\n", 1));
        assert_true(grammar_state_accept(s, call, strlen(call)));
        assert_true(grammar_state_can_end(s));
    }
    assert_true(grammar_state_done(s));
    grammar_state_free(s);
    grammar_free(g);
    chat_grammar_free(&cg);
    /* Without parallel_calls in the format, one call even when asked. */
    tools_ok(&LLAMA3, tools, CHAT_TOOL_NAMED, "now", 1, 0, &cg);
    g = compile(&cg);
    s = grammar_state_new(g, NULL);
    const char *l = "{\"name\": \"now\", \"parameters\": {}}";
    assert_true(grammar_state_accept(s, l, strlen(l)));
    assert_true(grammar_state_done(s));
    grammar_state_free(s);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
}

static void rule_names_are_sanitized_and_unique(void **state)
{
    (void)state;
    json_t *tools = load("[{\"type\": \"function\", \"function\": {\"name\": \"a.b\"}},"
                         " {\"type\": \"function\", \"function\": {\"name\": \"a_b\"}},"
                         " {\"function\": {\"name\": \"\xc3\xa9t\xc3\xa9 \\\"x\\\"\"}}]");
    chat_grammar cg;
    tools_ok(&GENERIC, tools, CHAT_TOOL_REQUIRED, NULL, 1, 0, &cg);
    assert_contains(cg.text.data, "tool0-a-b ::=");
    assert_contains(cg.text.data, "tool1-a-b ::=");
    assert_contains(cg.text.data, "tool2---t----x- ::=");
    grammar *g = compile(&cg);
    /* The odd name is written as JSON and read back as it was. */
    grammar_state *s = grammar_state_new(g, NULL);
    const char *out = "{\"tool_calls\": [{\"name\": \"\xc3\xa9t\xc3\xa9 \\\"x\\\"\", "
                      "\"arguments\": {}}]}";
    assert_true(grammar_state_accept(s, out, strlen(out)));
    assert_true(grammar_state_done(s));
    grammar_state_free(s);
    calls c;
    uint64_t seed = 1;
    read_back(&GENERIC, 0, out, 0, &seed, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.name[0], "\xc3\xa9t\xc3\xa9 \"x\"");
    calls_free(&c);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
}

static void none_and_auto_without_tools_give_no_grammar(void **state)
{
    (void)state;
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(&HERMES, tools, CHAT_TOOL_NONE, NULL, 1, 0, &cg);
    assert_int_equal(cg.text.len, 0);
    assert_int_equal(cg.n_triggers, 0);
    chat_grammar_free(&cg);
    json_t *empty = json_array();
    tools_ok(&HERMES, empty, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_int_equal(cg.text.len, 0);
    chat_grammar_free(&cg);
    tools_ok(&HERMES, NULL, CHAT_TOOL_AUTO, NULL, 1, 0, &cg);
    assert_int_equal(cg.text.len, 0);
    chat_grammar_free(&cg);
    json_decref(empty);
    json_decref(tools);
}

/* ---- Errors ------------------------------------------------------------ */

static void tools_error(const char *tools_json, chat_tool_choice choice, const char *name,
                        sem_status want, const char *detail)
{
    json_t *tools = tools_json ? load(tools_json) : NULL;
    chat_grammar cg;
    sem_err err = {0};
    sem_status st = chat_grammar_tools(&HERMES, tools, choice, name, 1, 0, &cg, &err);
    if (st != want)
        fail_msg("%s: status %s, want %s (%s)", tools_json ? tools_json : "(null)",
                 sem_status_name(st), sem_status_name(want), err.detail);
    assert_contains(err.detail, detail);
    assert_int_equal(cg.text.len, 0);
    assert_null(cg.text.data);
    assert_int_equal(cg.n_triggers, 0);
    json_decref(tools);
}

static void bad_requests_name_the_field(void **state)
{
    (void)state;
    tools_error(TOOLS, CHAT_TOOL_NAMED, "nope", SEM_EREQUEST,
                "tool_choice.function.name: no tool named \"nope\"");
    tools_error(TOOLS, CHAT_TOOL_NAMED, NULL, SEM_EREQUEST, "tool_choice.function.name");
    tools_error("[]", CHAT_TOOL_REQUIRED, NULL, SEM_EREQUEST, "tool_choice");
    tools_error(NULL, CHAT_TOOL_NAMED, "f", SEM_EREQUEST, "tool_choice");
    tools_error("{}", CHAT_TOOL_AUTO, NULL, SEM_EREQUEST, "tools: not an array");
    tools_error("[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}, "
                "{\"type\": \"function\", \"function\": {\"description\": \"no name\"}}]",
                CHAT_TOOL_AUTO, NULL, SEM_EREQUEST, "tools[1].function.name");
    tools_error("[{\"type\": \"function\", \"function\": {\"name\": \"\"}}]", CHAT_TOOL_AUTO, NULL,
                SEM_EREQUEST, "tools[0].function.name");
    tools_error("[3]", CHAT_TOOL_AUTO, NULL, SEM_EREQUEST, "tools[0]");
    tools_error("[{\"type\": \"function\"}]", CHAT_TOOL_AUTO, NULL, SEM_EREQUEST,
                "tools[0].function");
    tools_error("[{\"type\": \"retrieval\", \"function\": {\"name\": \"f\"}}]", CHAT_TOOL_AUTO,
                NULL, SEM_EREQUEST, "tools[0].type");
    tools_error("[{\"function\": {\"name\": \"f\"}}, {\"function\": {\"name\": \"f\"}}]",
                CHAT_TOOL_AUTO, NULL, SEM_EREQUEST, "tools[1].function.name");
    tools_error("[{\"function\": {\"name\": \"f\", \"parameters\": [1]}}]", CHAT_TOOL_AUTO, NULL,
                SEM_EREQUEST, "tools[0].function.parameters");
    tools_error("[{\"function\": {\"name\": \"f\", \"strict\": \"yes\"}}]", CHAT_TOOL_AUTO, NULL,
                SEM_EREQUEST, "tools[0].function.strict");
    /* A malformed schema; a strict one with what is not enforced. */
    tools_error("[{\"function\": {\"name\": \"f\"}}, {\"function\": {\"name\": \"g\", \"parameters\": "
                "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": 5}}}}}]",
                CHAT_TOOL_REQUIRED, NULL, SEM_EREQUEST, "tools[1].function.parameters");
    tools_error("[{\"function\": {\"name\": \"g\", \"strict\": true, \"parameters\": "
                "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"string\", "
                "\"pattern\": \"^a\"}}}}}]",
                CHAT_TOOL_REQUIRED, NULL, SEM_EUNSUPPORTED, "tools[0].function.parameters");
    /* Without strict, the same schema is accepted (pattern not enforced). */
    json_t *lax = load("[{\"function\": {\"name\": \"g\", \"parameters\": {\"type\": \"object\", "
                       "\"properties\": {\"x\": {\"type\": \"string\", \"pattern\": \"^a\"}}}}}]");
    chat_grammar cg;
    tools_ok(&HERMES, lax, CHAT_TOOL_REQUIRED, NULL, 0, 0, &cg);
    chat_grammar_free(&cg);
    json_decref(lax);
}

/* ---- response_format -------------------------------------------------- */

static void schema_sentences(const prompt_syntax *syn, const char *schema_json, int in_thinking,
                             int rounds)
{
    json_t *schema = schema_json ? load(schema_json) : NULL;
    chat_grammar cg;
    sem_err err = {0};
    if (chat_grammar_schema(syn, schema, 0, in_thinking, &cg, &err) != SEM_OK)
        fail_msg("chat_grammar_schema: %s", err.detail);
    assert_int_equal(cg.n_triggers, in_thinking ? 1 : 0);
    grammar *g = compile(&cg);
    uint64_t seed = 77;
    strbuf s = {0};
    for (int r = 0; r < rounds; r++) {
        random_sentence(g, &seed, 30 + (size_t)(r % 4) * 40, &s);
        const char *json = s.data;
        if (in_thinking) {
            assert_int_equal(strncmp(json, syn->think_close, strlen(syn->think_close)), 0);
            json += strlen(syn->think_close);
            while (*json == ' ' || *json == '\n')
                json++;
        }
        json_error_t je;
        json_t *v = json_loads(json, 0, &je);
        if (!v)
            fail_msg("not JSON (%s): %s", je.text, json);
        assert_true(json_is_object(v));
        if (schema && !valid(schema, v))
            fail_msg("not valid for the schema: %s", json);
        json_decref(v);
    }
    strbuf_free(&s);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(schema);
}

static void response_format_sentences_follow_the_schema(void **state)
{
    (void)state;
    schema_sentences(&HERMES, NULL, 0, 20);
    const char *person = "{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", "
                         "\"maxLength\": 10}, \"age\": {\"type\": \"integer\", \"minimum\": 0, "
                         "\"maximum\": 150}, \"tags\": {\"type\": \"array\", \"items\": {\"enum\": "
                         "[\"a\", \"b\"]}, \"maxItems\": 3}}, \"required\": [\"name\", \"age\"], "
                         "\"additionalProperties\": false}";
    schema_sentences(&LLAMA3, person, 0, 20);
    schema_sentences(&QWEN3, person, 1, 10);
}

static void response_format_errors_name_the_field(void **state)
{
    (void)state;
    json_t *bad = load("{\"type\": \"object\", \"properties\": 3}");
    chat_grammar cg;
    sem_err err = {0};
    assert_int_equal(chat_grammar_schema(&HERMES, bad, 0, 0, &cg, &err), SEM_EREQUEST);
    assert_contains(err.detail, "response_format.json_schema.schema");
    assert_null(cg.text.data);
    json_decref(bad);
    json_t *strict = load("{\"type\": \"string\", \"format\": \"email\"}");
    memset(&err, 0, sizeof err);
    assert_int_equal(chat_grammar_schema(&HERMES, strict, 1, 0, &cg, &err), SEM_EUNSUPPORTED);
    assert_contains(err.detail, "response_format.json_schema.schema");
    json_decref(strict);
}

/* ---- The golden templates render the calls back, byte for byte -------- */

/* The conversation that sends calls c back: user, assistant, tool results. */
static json_t *conversation(const calls *c)
{
    json_t *msgs = json_array();
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", "Go."));
    json_t *tc = json_array();
    for (uint32_t i = 0; i < c->n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%s", c->id[i][0] ? c->id[i] : "call00001");
        json_array_append_new(tc, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
                                            "function", "function", "name", c->name[i],
                                            "arguments", str(&c->args[i])));
    }
    json_array_append_new(msgs, json_pack("{s:s, s:s, s:o}", "role", "assistant", "content", "",
                                          "tool_calls", tc));
    for (uint32_t i = 0; i < c->n; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id",
                                              c->id[i][0] ? c->id[i] : "call00001", "content",
                                              "ok"));
    return msgs;
}

static void template_renders_sentences_back(const prompt_syntax *syn, const char *stem,
                                            int rounds)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stem);
    char *src = test_read_text(path);
    sem_err err = {0};
    chat_template *t = chat_template_parse(src, &err);
    if (!t)
        fail_msg("%s: %s", stem, err.detail);
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(syn, tools, CHAT_TOOL_REQUIRED, NULL, 1, 0, &cg);
    grammar *g = compile(&cg);
    uint64_t seed = 4242;
    strbuf s = {0};
    chat_render_opts o = {.bos_token = "<s>", .eos_token = "</s>", .add_bos = true,
                          .now = 1736942400};
    for (int r = 0; r < rounds; r++) {
        random_sentence(g, &seed, 30 + (size_t)(r % 4) * 50, &s);
        calls c;
        read_back(syn, 0, s.data, 0, &seed, &c);
        assert_true(c.n > 0);
        json_t *msgs = conversation(&c);
        char *out = NULL;
        sem_err e = {0};
        if (chat_template_render(t, msgs, tools, NULL, &o, &out, &e) != SEM_OK)
            fail_msg("%s: render: %s", stem, e.detail);
        if (!strstr(out, s.data))
            fail_msg("%s renders the calls otherwise:\ngenerated: %s\nrendered:  %s", stem,
                     s.data, out);
        free(out);
        json_decref(msgs);
        calls_free(&c);
    }
    strbuf_free(&s);
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
    chat_template_free(t);
    free(src);
}

static void golden_templates_render_the_calls_back(void **state)
{
    (void)state;
    template_renders_sentences_back(&HERMES, "Qwen-Qwen2.5-7B-Instruct", 30);
    template_renders_sentences_back(&QWEN3, "Qwen-Qwen3-0.6B", 30);
    template_renders_sentences_back(&LLAMA3, "meta-llama-Llama-3.1-8B-Instruct", 30);
    template_renders_sentences_back(&LLAMA3, "meta-llama-Llama-3.2-3B-Instruct", 10);
    template_renders_sentences_back(&MISTRAL, "mistralai-Mistral-Nemo-Instruct-2407", 30);
}

/* Calls whose JSON two writers could write differently: fractions,
 * null, escapes, control characters, non-ASCII text. */
static const char *const TRICKY_ARGS[][2] = {
    {"my.tool name!", "{\"items\": [{\"id\": 7, \"tags\": [\"ab\", \"\xc3\xa9t\xc3\xa9\"]}], "
                      "\"flag\": true, \"ratio\": 0.1, \"note\": null}"},
    {"my.tool name!", "{\"items\": [], \"flag\": false, \"ratio\": 0.25, \"note\": \"x\"}"},
    {"my.tool name!", "{\"items\": [], \"flag\": false, \"ratio\": 0.333333333333333}"},
    {"my.tool name!", "{\"items\": [], \"flag\": false, \"ratio\": 1}"},
    {"my.tool name!", "{\"items\": [], \"flag\": false, \"ratio\": 0.000123}"},
    {"get_weather", "{\"location\": \"a\\\"b\\\\c\\nd\\te/\\u0001 \xf0\x9f\x98\x80\", "
                    "\"unit\": \"fahrenheit\"}"},
    {"add", "{\"a\": -100, \"b\": 1234567890123456}"},
};

/* Each tricky call: the grammar accepts it, and the template writes it the same. */
static void tricky_values_render_back(const prompt_syntax *syn, const char *stem)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stem);
    char *src = test_read_text(path);
    chat_template *t = chat_template_parse(src, NULL);
    assert_non_null(t);
    json_t *tools = load(TOOLS);
    chat_grammar cg;
    tools_ok(syn, tools, CHAT_TOOL_REQUIRED, NULL, 0, 0, &cg);
    grammar *g = compile(&cg);
    chat_render_opts o = {.bos_token = "<s>", .eos_token = "</s>", .add_bos = true,
                          .now = 1736942400};
    for (size_t i = 0; i < sizeof TRICKY_ARGS / sizeof TRICKY_ARGS[0]; i++) {
        calls c;
        memset(&c, 0, sizeof c);
        c.n = 1;
        snprintf(c.name[0], sizeof c.name[0], "%s", TRICKY_ARGS[i][0]);
        snprintf(c.id[0], sizeof c.id[0], "%s", syn->tools == PROMPT_TOOLS_MISTRAL ? "abcDEF123" : "");
        strbuf_puts(&c.args[0], TRICKY_ARGS[i][1]);
        json_t *msgs = conversation(&c);
        char *out = NULL;
        sem_err e = {0};
        if (chat_template_render(t, msgs, tools, NULL, &o, &out, &e) != SEM_OK)
            fail_msg("%s: render: %s", stem, e.detail);
        /* The rendered call, from its opening to the end of its arguments. */
        const char *open = syn->tools == PROMPT_TOOLS_HERMES   ? "<tool_call>"
                           : syn->tools == PROMPT_TOOLS_MISTRAL ? "[TOOL_CALLS]"
                                                                : "{\"name\": \"";
        const char *turn = strstr(out, "Go.");
        assert_non_null(turn);
        const char *a = strstr(turn, open);
        assert_non_null(a);
        const char *b = strstr(a, TRICKY_ARGS[i][1]);
        if (!b)
            fail_msg("%s writes the arguments otherwise:\nours:     %s\nrendered: %s", stem,
                     TRICKY_ARGS[i][1], a);
        size_t n = (size_t)(b - a) + strlen(TRICKY_ARGS[i][1]);
        grammar_state *s = grammar_state_new(g, NULL);
        if (!grammar_state_accept(s, a, n))
            fail_msg("the grammar refuses the rendered call: %.*s", (int)n, a);
        grammar_state_free(s);
        free(out);
        json_decref(msgs);
        calls_free(&c);
    }
    grammar_free(g);
    chat_grammar_free(&cg);
    json_decref(tools);
    chat_template_free(t);
    free(src);
}

static void golden_templates_write_json_as_the_grammar_does(void **state)
{
    (void)state;
    tricky_values_render_back(&HERMES, "Qwen-Qwen2.5-7B-Instruct");
    tricky_values_render_back(&QWEN3, "Qwen-Qwen3-0.6B");
    tricky_values_render_back(&LLAMA3, "meta-llama-Llama-3.1-8B-Instruct");
    tricky_values_render_back(&MISTRAL, "mistralai-Mistral-Nemo-Instruct-2407");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forced_calls_are_valid),
        cmocka_unit_test(named_calls_call_only_that_tool),
        cmocka_unit_test(auto_calls_begin_at_the_trigger),
        cmocka_unit_test(in_thinking_grammars_follow_the_reasoning),
        cmocka_unit_test(triggers_are_the_formats_openings),
        cmocka_unit_test(forced_output_is_exactly_the_calls),
        cmocka_unit_test(parallel_calls_are_bounded),
        cmocka_unit_test(rule_names_are_sanitized_and_unique),
        cmocka_unit_test(none_and_auto_without_tools_give_no_grammar),
        cmocka_unit_test(bad_requests_name_the_field),
        cmocka_unit_test(response_format_sentences_follow_the_schema),
        cmocka_unit_test(response_format_errors_name_the_field),
        cmocka_unit_test(golden_templates_render_the_calls_back),
        cmocka_unit_test(golden_templates_write_json_as_the_grammar_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
