/*
 * chat_generic.c - the generic tool-calling convention as a rewrite of the
 * conversation into plain turns. The design is in chat_generic.h.
 *
 * Every JSON text written here goes through jinja_tojson, the serializer
 * of the templates' `tojson`: a call rendered here has the same bytes as
 * one a native template renders with `arguments | tojson`.
 */
#include "chat_generic.h"

#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "jinja.h"

static const char TOOLS_INTRO[] =
    "# Tools\n\n"
    "You may call one or more of these tools. Each is given as JSON: its name, what it does, "
    "and its parameters as a JSON Schema.\n\n";

static const char TOOLS_HOWTO[] =
    "\nTo call tools, answer with only this JSON and nothing else, one entry per call:\n"
    "{\"tool_calls\": [{\"name\": \"<name>\", \"arguments\": {<arguments>}}]}\n"
    "Each result comes back in a user message as "
    "{\"tool_response\": {\"name\": \"<name>\", \"content\": <result>}}.";

/* ---------------------------------------------------------------- content text */

/* Appends a normalised content (a string or a list of text parts, joined
 * with "\n" as chat_template.c joins them). */
static void append_content(strbuf *b, const json_t *content)
{
    if (json_is_string(content)) {
        strbuf_append(b, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        const json_t *text = json_object_get(p, "text");
        if (i)
            strbuf_append(b, "\n", 1);
        strbuf_append(b, json_string_value(text), json_string_length(text));
    }
}

/* Sets msg's content to the n bytes of s: a string, or one text part. */
static int set_content(json_t *msg, const char *s, size_t n, bool parts)
{
    json_t *str = json_stringn_nocheck(s ? s : "", s ? n : 0);
    json_t *c = parts && str ? json_pack("[{s:s, s:o}]", "type", "text", "text", str) : str;
    return c ? json_object_set_new(msg, "content", c) : -1;
}

/* Appends the JSON text of v as `tojson` writes it. */
static sem_status append_json(strbuf *b, const json_t *v, sem_err *err)
{
    char *text = NULL;
    size_t len = 0;
    sem_status st = jinja_tojson(v, &text, &len, err);
    if (st == SEM_OK)
        strbuf_append(b, text, len);
    free(text);
    return st;
}

/* ---------------------------------------------------------------- the three texts */

sem_status chat_generic_calls_text(const json_t *tool_calls, char **out, sem_err *err)
{
    *out = NULL;
    json_t *list = json_array();
    json_t *wrap = list ? json_pack("{s:o}", "tool_calls", list) : NULL;
    if (!wrap)
        return sem_err_set(err, SEM_ENOMEM, "out of memory writing tool calls");
    size_t i;
    const json_t *tc;
    json_array_foreach(tool_calls, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function");
        const json_t *args = json_object_get(fn, "arguments");
        json_t *a = args ? json_incref((json_t *)args) : json_object();
        /* "O?": a call without a name writes null rather than failing. */
        json_t *call = a ? json_pack("{s:O?, s:o}", "name", json_object_get(fn, "name"), "arguments", a)
                         : NULL;
        if (!call || json_array_append_new(list, call) != 0) {
            json_decref(wrap);
            return sem_err_set(err, SEM_ENOMEM, "out of memory writing tool calls");
        }
    }
    strbuf b = {0};
    sem_status st = append_json(&b, wrap, err);
    json_decref(wrap);
    if (st == SEM_OK && b.oom)
        st = sem_err_set(err, SEM_ENOMEM, "out of memory writing tool calls");
    if (st != SEM_OK) {
        strbuf_free(&b);
        return st;
    }
    *out = b.data;
    return SEM_OK;
}

/* The name of the tool whose result `m` is: its own name, the call with
 * its tool_call_id, or the call at position `pos` of `calls`. NULL if none. */
static const json_t *result_name(const json_t *m, const json_t *calls, size_t pos)
{
    const json_t *name = json_object_get(m, "name");
    if (json_is_string(name))
        return name;
    const json_t *id = json_object_get(m, "tool_call_id");
    size_t i;
    const json_t *tc;
    if (json_is_string(id)) {
        json_array_foreach(calls, i, tc)
        {
            if (json_equal(json_object_get(tc, "id"), (json_t *)id))
                return json_object_get(json_object_get(tc, "function"), "name");
        }
    }
    tc = json_array_get(calls, pos);
    return tc ? json_object_get(json_object_get(tc, "function"), "name") : NULL;
}

/* Appends {"tool_response": {"name": ..., "content": ...}} for tool message m. */
static sem_status append_result(strbuf *b, const json_t *m, const json_t *calls, size_t pos,
                                sem_err *err)
{
    strbuf text = {0};
    append_content(&text, json_object_get(m, "content"));
    if (text.oom)
        return sem_err_set(err, SEM_ENOMEM, "out of memory writing a tool result");
    /* A result that is a JSON object or array goes in as JSON. */
    json_error_t je;
    json_t *content = text.len ? json_loadb(text.data, text.len, 0, &je) : NULL;
    /* jansson out of memory: said so, or failed with no message. */
    if (!content && text.len && (json_error_code(&je) == json_error_out_of_memory || !je.text[0])) {
        strbuf_free(&text);
        return sem_err_set(err, SEM_ENOMEM, "out of memory writing a tool result");
    }
    if (!content)
        content = json_stringn_nocheck(text.len ? text.data : "", text.len);
    strbuf_free(&text);
    /* {"name": ..., "content": ...}: the name first, as in a call. */
    const json_t *name = result_name(m, calls, pos);
    json_t *obj = content ? json_object() : NULL;
    if (obj && json_is_string(name) && json_object_set(obj, "name", (json_t *)name) != 0)
        json_decref(obj), obj = NULL;
    if (obj && json_object_set(obj, "content", content) != 0)
        json_decref(obj), obj = NULL;
    json_decref(content);
    json_t *r = obj ? json_pack("{s:o}", "tool_response", obj) : NULL;
    if (!r)
        return sem_err_set(err, SEM_ENOMEM, "out of memory writing a tool result");
    sem_status st = append_json(b, r, err);
    json_decref(r);
    return st;
}

/* Appends the "# Tools" section for the normalised tool list. */
static sem_status append_tools(strbuf *b, const json_t *tools, sem_err *err)
{
    strbuf_puts(b, TOOLS_INTRO);
    size_t i;
    const json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        const json_t *fn = json_object_get(tool, "function");
        const json_t *desc = json_object_get(fn, "description");
        json_t *line = json_pack("{s:O}", "name", json_object_get(fn, "name"));
        if (line && json_string_length(desc) > 0 && json_object_set(line, "description", (json_t *)desc) != 0)
            json_decref(line), line = NULL;
        if (line && json_object_set(line, "parameters", json_object_get(fn, "parameters")) != 0)
            json_decref(line), line = NULL;
        if (!line)
            return sem_err_set(err, SEM_ENOMEM, "out of memory writing the tools section");
        sem_status st = append_json(b, line, err);
        json_decref(line);
        if (st != SEM_OK)
            return st;
        strbuf_append(b, "\n", 1);
    }
    strbuf_puts(b, TOOLS_HOWTO);
    return SEM_OK;
}

/* ---------------------------------------------------------------- the rewrite */

typedef struct rewrite {
    json_t *out;          /* the new message list */
    json_t *calls;        /* the last assistant message's tool calls (a reference) */
    size_t n_results;     /* tool messages since those calls */
    bool results_open;    /* the last message of `out` holds tool results */
    bool parts;
    sem_err *err;
} rewrite;

static const char *role_of(const json_t *m) { return json_string_value(json_object_get(m, "role")); }

static sem_status nomem(rewrite *w) { return sem_err_set(w->err, SEM_ENOMEM, "out of memory rewriting tool messages"); }

/* Appends "\n" and the bytes of extra to the content of msg. */
static sem_status join_into(rewrite *w, json_t *msg, const char *extra, size_t n)
{
    strbuf b = {0};
    append_content(&b, json_object_get(msg, "content"));
    strbuf_append(&b, "\n", 1);
    strbuf_append(&b, extra, n);
    int rc = b.oom ? -1 : set_content(msg, b.data, b.len, w->parts);
    strbuf_free(&b);
    return rc == 0 ? SEM_OK : nomem(w);
}

static sem_status add_call_message(rewrite *w, json_t *m)
{
    char *calls = NULL;
    sem_status st = chat_generic_calls_text(json_object_get(m, "tool_calls"), &calls, w->err);
    if (st != SEM_OK)
        return st;
    strbuf b = {0};
    append_content(&b, json_object_get(m, "content"));
    if (b.len)
        strbuf_append(&b, "\n", 1);
    strbuf_puts(&b, calls);
    free(calls);
    int rc = b.oom ? -1 : set_content(m, b.data, b.len, w->parts);
    strbuf_free(&b);
    if (rc != 0 || json_object_del(m, "tool_calls") != 0 || json_array_append(w->out, m) != 0)
        return nomem(w);
    return SEM_OK;
}

static sem_status add_result_message(rewrite *w, const json_t *m)
{
    strbuf b = {0};
    sem_status st = append_result(&b, m, w->calls, w->n_results++, w->err);
    if (st == SEM_OK && b.oom)
        st = nomem(w);
    json_t *last = json_array_get(w->out, json_array_size(w->out) - 1);
    if (st == SEM_OK && last && strcmp(role_of(last), "user") == 0) {
        st = join_into(w, last, b.data, b.len);
    } else if (st == SEM_OK) {
        json_t *u = json_pack("{s:s}", "role", "user");
        if (!u || set_content(u, b.data, b.len, w->parts) != 0) {
            json_decref(u);
            st = nomem(w);
        } else if (json_array_append_new(w->out, u) != 0) {
            st = nomem(w);
        }
    }
    strbuf_free(&b);
    w->results_open = st == SEM_OK;
    return st;
}

static sem_status rewrite_one(rewrite *w, json_t *m, int what)
{
    const char *role = role_of(m);
    json_t *calls = json_object_get(m, "tool_calls");
    if (strcmp(role, "assistant") == 0) {
        json_decref(w->calls);
        w->calls = json_incref(calls);
        w->n_results = 0;
    }
    if ((what & CHAT_GENERIC_RESULTS) && strcmp(role, "tool") == 0)
        return add_result_message(w, m);
    bool was_open = w->results_open;
    w->results_open = false;
    if ((what & CHAT_GENERIC_CALLS) && json_array_size(calls) > 0)
        return add_call_message(w, m);
    if (was_open && strcmp(role, "user") == 0) {
        /* A user message right after tool results joins them. */
        strbuf b = {0};
        append_content(&b, json_object_get(m, "content"));
        sem_status st = b.oom ? nomem(w)
                              : join_into(w, json_array_get(w->out, json_array_size(w->out) - 1),
                                          b.data ? b.data : "", b.len);
        strbuf_free(&b);
        return st;
    }
    return json_array_append(w->out, m) == 0 ? SEM_OK : nomem(w);
}

/* Appends the tools section to the leading system message, or adds one. */
static sem_status add_tools_section(rewrite *w, const json_t *tools)
{
    strbuf b = {0};
    json_t *first = json_array_get(w->out, 0);
    bool has_system = first && strcmp(role_of(first), "system") == 0;
    if (has_system) {
        append_content(&b, json_object_get(first, "content"));
        if (b.len)
            strbuf_append(&b, "\n\n", 2);
    }
    sem_status st = append_tools(&b, tools, w->err);
    if (st == SEM_OK && b.oom)
        st = nomem(w);
    if (st == SEM_OK && has_system) {
        if (set_content(first, b.data, b.len, w->parts) != 0)
            st = nomem(w);
    } else if (st == SEM_OK) {
        json_t *sys = json_pack("{s:s}", "role", "system");
        if (!sys || set_content(sys, b.data, b.len, w->parts) != 0) {
            json_decref(sys);
            st = nomem(w);
        } else if (json_array_insert_new(w->out, 0, sys) != 0) {
            st = nomem(w);
        }
    }
    strbuf_free(&b);
    return st;
}

sem_status chat_generic_rewrite(json_t **messages, const json_t *tools, int what, bool parts,
                                sem_err *err)
{
    sem_err local = {0};
    rewrite w = {.out = json_array(), .parts = parts, .err = err ? err : &local};
    if (!w.out)
        return nomem(&w);
    sem_status st = SEM_OK;
    size_t i;
    json_t *m;
    json_array_foreach(*messages, i, m)
    {
        if ((st = rewrite_one(&w, m, what)) != SEM_OK)
            break;
    }
    if (st == SEM_OK && (what & CHAT_GENERIC_CALLS) && json_array_size(tools) > 0)
        st = add_tools_section(&w, tools);
    json_decref(w.calls);
    if (st != SEM_OK) {
        json_decref(w.out);
        return st;
    }
    json_decref(*messages);
    *messages = w.out;
    return SEM_OK;
}
