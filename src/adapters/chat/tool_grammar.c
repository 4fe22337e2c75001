/*
 * tool_grammar.c - the grammar of a chat request's output: tool calls in
 * the model's own format, or a response_format schema (tool_grammar.h).
 *
 * A tool-call grammar is made of:
 *
 *   root   ::= [think_close ws] <the block of calls>
 *   call   ::= tool0-get-weather | tool1-add | ...       the allowed tools
 *   tool0-get-weather ::= "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
 *                         tool0-get-weather-args "}\n</tool_call>"
 *   tool0-get-weather-args ::= ...                        json_schema_grammar
 *
 * where the block is the format's: Hermes calls joined by "\n", one Llama
 * 3 call, Mistral's "[TOOL_CALLS][" calls joined by ", " "]", or the
 * generic {"tool_calls": [...]}. Every byte outside the arguments is
 * fixed, and the arguments are canonical JSON, so the text is exactly what
 * the chat template renders for the same calls on the next turn.
 *
 * A tool's rule names are "tool" + its index + "-" + its name reduced to
 * [a-zA-Z0-9-] (at most 32 bytes): unique by the index, readable by the
 * name, and never the prefix "toolN-name-args-" that json_schema gives
 * the helpers of another tool's arguments.
 *
 * Lazy grammars (triggers, see gen_params): tool_choice auto starts at
 * the format's opening marker. With in_thinking, a forced call or a
 * response_format starts at think_close; auto keeps its marker, except
 * for the formats whose call must open the answer (Llama 3, generic):
 * their trigger is think_close, a little whitespace, and the opening.
 *
 * Threads: pure functions of their arguments.
 */
#include "tool_grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/chat/json_schema.h"

#define RULE_NAME_MAX 32 /* bytes of a tool's name kept in its rule names */

/* ---- Writing grammar text --------------------------------------------- */

/* Appends s[0..n) as a GBNF literal, quoted; any byte that is not
 * printable ASCII is written as \xNN. */
static void gbnf_literal(strbuf *g, const char *s, size_t n)
{
    strbuf_append(g, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            strbuf_append(g, "\\\"", 2);
        else if (c == '\\')
            strbuf_append(g, "\\\\", 2);
        else if (c == '\n')
            strbuf_append(g, "\\n", 2);
        else if (c < 0x20 || c >= 0x7f)
            strbuf_printf(g, "\\x%02x", c);
        else
            strbuf_append(g, (const char *)&c, 1);
    }
    strbuf_append(g, "\"", 1);
}

static void gbnf_literal_str(strbuf *g, const char *s) { gbnf_literal(g, s, strlen(s)); }

/* Appends s as the body of a JSON string, escaped as tojson writes it. */
static void json_escape(strbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"')
            strbuf_append(b, "\\\"", 2);
        else if (c == '\\')
            strbuf_append(b, "\\\\", 2);
        else if (c == '\n')
            strbuf_append(b, "\\n", 2);
        else if (c == '\r')
            strbuf_append(b, "\\r", 2);
        else if (c == '\t')
            strbuf_append(b, "\\t", 2);
        else if (c < 0x20)
            strbuf_printf(b, "\\u%04x", c);
        else
            strbuf_append(b, (const char *)&c, 1);
    }
}

/* "tool" + index + "-" + the name's [a-zA-Z0-9] bytes, others as '-'. */
static void rule_name(char *out, size_t cap, size_t index, const char *name)
{
    int n = snprintf(out, cap, "tool%zu-", index);
    size_t at = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; name[i] && i < RULE_NAME_MAX && at + 1 < cap; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out[at++] = ok ? c : '-';
    }
    out[at] = '\0';
}

/* ---- Triggers --------------------------------------------------------- */

static sem_status add_trigger(chat_grammar *out, const char *a, const char *b, const char *c,
                              sem_err *err)
{
    if (out->n_triggers >= CHAT_GRAMMAR_TRIGGERS_MAX)
        return sem_err_set(err, SEM_EINTERNAL, "more than %d grammar triggers",
                           CHAT_GRAMMAR_TRIGGERS_MAX);
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *t = malloc(la + lb + lc + 1);
    if (!t)
        return sem_err_set(err, SEM_ENOMEM, "grammar trigger");
    memcpy(t, a, la);
    memcpy(t + la, b, lb);
    memcpy(t + la + lb, c, lc + 1);
    out->triggers[out->n_triggers++] = t;
    return SEM_OK;
}

/* The whitespace a model writes after think_close: up to two newlines, in
 * the grammar and spelled out in triggers. */
static const char *const THINK_GAPS[] = {"", "\n", "\n\n"};
#define THINK_WS "\"\\n\"{0,2}"

/* The lazy start of a format whose call opens the answer, after reasoning:
 * think_close, then one of THINK_GAPS, then `opening`. */
static sem_status add_think_triggers(chat_grammar *out, const char *think_close,
                                     const char *opening, sem_err *err)
{
    for (size_t i = 0; i < sizeof THINK_GAPS / sizeof THINK_GAPS[0]; i++) {
        sem_status st = add_trigger(out, think_close, THINK_GAPS[i], opening, err);
        if (st != SEM_OK)
            return st;
    }
    return SEM_OK;
}

/* ---- Tools ------------------------------------------------------------ */

typedef struct tool_ref {
    const char *name;
    const json_t *params; /* NULL: none given */
    int strict;
} tool_ref;

/* Checks tools[i] and reads what the grammar needs of it. */
static sem_status read_tool(const json_t *tool, size_t i, tool_ref *ref, sem_err *err)
{
    if (!json_is_object(tool))
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu]: not an object", i);
    const json_t *type = json_object_get(tool, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0))
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu].type: only \"function\" is supported",
                           i);
    const json_t *fn = json_object_get(tool, "function");
    if (!json_is_object(fn))
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu].function: missing or not an object", i);
    const json_t *name = json_object_get(fn, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu].function.name: missing or empty", i);
    if (strlen(json_string_value(name)) != json_string_length(name))
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu].function.name: contains a NUL", i);
    const json_t *params = json_object_get(fn, "parameters");
    if (params && !json_is_null(params) && !json_is_object(params) && !json_is_boolean(params))
        return sem_err_set(err, SEM_EREQUEST,
                           "tools[%zu].function.parameters: not a JSON Schema (an object)", i);
    const json_t *strict = json_object_get(fn, "strict");
    if (strict && !json_is_null(strict) && !json_is_boolean(strict))
        return sem_err_set(err, SEM_EREQUEST, "tools[%zu].function.strict: not a boolean", i);
    ref->name = json_string_value(name);
    ref->params = json_is_null(params) ? NULL : params;
    ref->strict = json_is_true(strict);
    return SEM_OK;
}

/* The call's bytes before its arguments, and after them. */
static void call_frame(prompt_tool_format f, const char *name, strbuf *pre, const char **post)
{
    switch (f) {
    case PROMPT_TOOLS_HERMES:
        strbuf_puts(pre, "<tool_call>\n{\"name\": \"");
        json_escape(pre, name);
        strbuf_puts(pre, "\", \"arguments\": ");
        *post = "}\n</tool_call>";
        break;
    case PROMPT_TOOLS_LLAMA3:
        strbuf_puts(pre, "{\"name\": \"");
        json_escape(pre, name);
        strbuf_puts(pre, "\", \"parameters\": ");
        *post = "}";
        break;
    case PROMPT_TOOLS_MISTRAL:
    case PROMPT_TOOLS_GENERIC:
        strbuf_puts(pre, "{\"name\": \"");
        json_escape(pre, name);
        strbuf_puts(pre, "\", \"arguments\": ");
        *post = f == PROMPT_TOOLS_MISTRAL ? ", \"id\": \"" : "}";
        break;
    }
}

/* Rules for one tool: its call and its arguments. `rule` gets the call's
 * rule name. */
static sem_status tool_rules(const prompt_syntax *syn, const tool_ref *t, size_t i, strbuf *g,
                             char *rule, size_t rule_cap, sem_err *err)
{
    rule_name(rule, rule_cap, i, t->name);
    char args[RULE_NAME_MAX + 48];
    snprintf(args, sizeof args, "%s-args", rule);

    json_t *fallback = NULL;
    const json_t *schema = t->params;
    if (!schema) {
        /* No parameters: the function takes none. */
        fallback = json_pack("{s:s, s:{}, s:b}", "type", "object", "properties",
                             "additionalProperties", 0);
        if (!fallback)
            return sem_err_set(err, SEM_ENOMEM, "tools[%zu]: default schema", i);
        schema = fallback;
    }
    strbuf pre = {0};
    const char *post = "";
    call_frame(syn->tools, t->name, &pre, &post);
    strbuf_printf(g, "%s ::= ", rule);
    gbnf_literal(g, pre.data, pre.len);
    strbuf_printf(g, " %s ", args);
    gbnf_literal_str(g, post);
    if (syn->tools == PROMPT_TOOLS_MISTRAL)
        strbuf_puts(g, " call-id \"\\\"}\"");
    strbuf_puts(g, "\n");
    int oom = pre.oom;
    strbuf_free(&pre);
    sem_status st = oom ? sem_err_set(err, SEM_ENOMEM, "tool grammar")
                        : json_schema_grammar(schema, args, t->strict, g, err);
    json_decref(fallback);
    if (st != SEM_OK && st != SEM_ENOMEM)
        sem_err_wrap(err, "tools[%zu].function.parameters", i);
    return st;
}

/* calls ::= the format's block of 1..max calls. */
static void calls_rule(const prompt_syntax *syn, int max, strbuf *g)
{
    const char *sep = syn->tools == PROMPT_TOOLS_HERMES ? "\"\\n\"" : "\", \"";
    strbuf_puts(g, "calls ::= ");
    if (syn->tools == PROMPT_TOOLS_MISTRAL)
        strbuf_puts(g, "\"[TOOL_CALLS][\" ");
    else if (syn->tools == PROMPT_TOOLS_GENERIC)
        strbuf_puts(g, "\"{\\\"tool_calls\\\": [\" ");
    strbuf_puts(g, "call");
    if (max > 1)
        strbuf_printf(g, " (%s call){0,%d}", sep, max - 1);
    if (syn->tools == PROMPT_TOOLS_MISTRAL)
        strbuf_puts(g, " \"]\"");
    else if (syn->tools == PROMPT_TOOLS_GENERIC)
        strbuf_puts(g, " \"]}\"");
    strbuf_puts(g, "\n");
    if (syn->tools == PROMPT_TOOLS_MISTRAL)
        strbuf_puts(g, "call-id ::= [a-zA-Z0-9]{9}\n");
}

/* root and the triggers. */
static sem_status root_rule(const prompt_syntax *syn, chat_tool_choice choice, int in_thinking,
                            strbuf *g, chat_grammar *out, sem_err *err)
{
    /* Llama 3 may open a call it chose itself with <|python_tag|>; a forced
     * call is written as its template renders calls, without. */
    const char *body = syn->tools == PROMPT_TOOLS_LLAMA3 && choice == CHAT_TOOL_AUTO
                           ? "\"<|python_tag|>\"? calls"
                           : "calls";
    int at_start = syn->tools == PROMPT_TOOLS_LLAMA3 || syn->tools == PROMPT_TOOLS_GENERIC;
    int after_think = in_thinking && (choice != CHAT_TOOL_AUTO || at_start);
    strbuf_puts(g, "root ::= ");
    if (after_think) {
        gbnf_literal_str(g, syn->think_close);
        strbuf_puts(g, " " THINK_WS " ");
    }
    strbuf_printf(g, "%s\n", body);

    if (choice != CHAT_TOOL_AUTO)
        return after_think ? add_trigger(out, syn->think_close, "", "", err) : SEM_OK;
    sem_status st = SEM_OK;
    switch (syn->tools) {
    case PROMPT_TOOLS_HERMES: st = add_trigger(out, "<tool_call>", "", "", err); break;
    case PROMPT_TOOLS_MISTRAL: st = add_trigger(out, "[TOOL_CALLS]", "", "", err); break;
    case PROMPT_TOOLS_LLAMA3:
        if (after_think) {
            st = add_think_triggers(out, syn->think_close, "{\"name\": ", err);
            if (st == SEM_OK)
                st = add_think_triggers(out, syn->think_close, "<|python_tag|>", err);
        } else {
            st = add_trigger(out, "^{\"name\": ", "", "", err);
            if (st == SEM_OK)
                st = add_trigger(out, "^<|python_tag|>", "", "", err);
        }
        break;
    case PROMPT_TOOLS_GENERIC:
        st = after_think ? add_think_triggers(out, syn->think_close, "{\"tool_calls\": ", err)
                         : add_trigger(out, "^{\"tool_calls\": ", "", "", err);
        break;
    }
    return st;
}

static int thinking(const prompt_syntax *syn, int in_thinking)
{
    return in_thinking && syn->think_close && *syn->think_close;
}

static sem_status tools_grammar(const prompt_syntax *syn, const json_t *tools,
                                chat_tool_choice choice, const char *name, int parallel,
                                int in_thinking, chat_grammar *out, sem_err *err)
{
    size_t n = json_array_size(tools);
    tool_ref *refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs)
        return sem_err_set(err, SEM_ENOMEM, "tools");
    sem_status st = SEM_OK;
    for (size_t i = 0; i < n && st == SEM_OK; i++) {
        st = read_tool(json_array_get(tools, i), i, &refs[i], err);
        for (size_t j = 0; j < i && st == SEM_OK; j++)
            if (strcmp(refs[j].name, refs[i].name) == 0)
                st = sem_err_set(err, SEM_EREQUEST,
                                 "tools[%zu].function.name: \"%s\" is also tools[%zu]'s", i,
                                 refs[i].name, j);
    }
    size_t named = n;
    if (st == SEM_OK && choice == CHAT_TOOL_NAMED) {
        for (size_t i = 0; i < n && name; i++)
            if (strcmp(refs[i].name, name) == 0)
                named = i;
        if (named == n)
            st = sem_err_set(err, SEM_EREQUEST, "tool_choice.function.name: no tool named \"%s\"",
                             name ? name : "");
    }
    if (st != SEM_OK || choice == CHAT_TOOL_NONE || n == 0) {
        free(refs);
        return st;
    }

    strbuf *g = &out->text;
    int max = parallel && syn->parallel_calls ? CHAT_GRAMMAR_PARALLEL_MAX : 1;
    st = root_rule(syn, choice, thinking(syn, in_thinking), g, out, err);
    if (st == SEM_OK)
        calls_rule(syn, max, g);
    strbuf alts = {0};
    for (size_t i = 0; i < n && st == SEM_OK; i++) {
        if (choice == CHAT_TOOL_NAMED && i != named)
            continue;
        char rule[RULE_NAME_MAX + 32];
        st = tool_rules(syn, &refs[i], i, g, rule, sizeof rule, err);
        strbuf_printf(&alts, "%s%s", alts.len ? " | " : "", rule);
    }
    if (st == SEM_OK) {
        strbuf_printf(g, "call ::= %s\n", alts.data);
        if (alts.oom || g->oom)
            st = sem_err_set(err, SEM_ENOMEM, "tool grammar");
    }
    strbuf_free(&alts);
    free(refs);
    return st;
}

sem_status chat_grammar_tools(const prompt_syntax *syn, const json_t *tools,
                              chat_tool_choice choice, const char *name, int parallel,
                              int in_thinking, chat_grammar *out, sem_err *err)
{
    memset(out, 0, sizeof *out);
    if (tools && !json_is_null(tools) && !json_is_array(tools))
        return sem_err_set(err, SEM_EREQUEST, "tools: not an array");
    if (choice == CHAT_TOOL_NAMED && (!name || !*name))
        return sem_err_set(err, SEM_EREQUEST, "tool_choice.function.name: missing or empty");
    if ((choice == CHAT_TOOL_REQUIRED || choice == CHAT_TOOL_NAMED) && json_array_size(tools) == 0)
        return sem_err_set(err, SEM_EREQUEST, "tool_choice: a tool call is required but no tools "
                                              "are given");
    sem_status st = tools_grammar(syn, tools, choice, name, parallel, in_thinking, out, err);
    if (st != SEM_OK)
        chat_grammar_free(out);
    return st;
}

sem_status chat_grammar_schema(const prompt_syntax *syn, const json_t *schema, int strict,
                               int in_thinking, chat_grammar *out, sem_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *any = NULL;
    if (!schema) {
        any = json_pack("{s:s}", "type", "object");
        if (!any)
            return sem_err_set(err, SEM_ENOMEM, "response_format");
        schema = any;
    }
    strbuf *g = &out->text;
    sem_status st = SEM_OK;
    strbuf_puts(g, "root ::= ");
    if (thinking(syn, in_thinking)) {
        gbnf_literal_str(g, syn->think_close);
        strbuf_puts(g, " " THINK_WS " ");
        st = add_trigger(out, syn->think_close, "", "", err);
    }
    strbuf_puts(g, "answer\n");
    if (st == SEM_OK)
        st = json_schema_grammar(schema, "answer", strict, g, err);
    if (st == SEM_OK && g->oom)
        st = sem_err_set(err, SEM_ENOMEM, "response_format grammar");
    else if (st != SEM_OK && st != SEM_ENOMEM)
        sem_err_wrap(err, "response_format.json_schema.schema");
    json_decref(any);
    if (st != SEM_OK)
        chat_grammar_free(out);
    return st;
}

void chat_grammar_free(chat_grammar *g)
{
    strbuf_free(&g->text);
    for (size_t i = 0; i < g->n_triggers; i++)
        free((void *)g->triggers[i]);
    memset(g, 0, sizeof *g);
}
