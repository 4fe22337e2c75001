/*
 * responses_request.c - reading a Responses body and rendering its items
 * as chat messages.
 */
#include "responses_request.h"

#include <stdio.h>
#include <string.h>

#define PARAM_MAX 256 /* a field path; req_fail keeps what fits */

static int is(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static int present(const json_t *v) { return v && !json_is_null(v); }

/* ---------------------------------------------------------------- items */

/* The text of content parts of the kinds a model reads; images, audio and
 * files are unsupported. */
static sem_status parts_text(const json_t *parts, const char *base, strbuf *out, req_err *e)
{
    char p[PARAM_MAX];
    size_t j;
    const json_t *part;
    json_array_foreach(parts, j, part)
    {
        snprintf(p, sizeof p, "%.200s[%zu]", base, j);
        const json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type))
            return req_fail(e, SEM_EREQUEST, p, "%s must be an object with a string \"type\"", p);
        const char *t = json_string_value(type);
        if (strcmp(t, "input_text") != 0 && strcmp(t, "output_text") != 0 &&
            strcmp(t, "text") != 0 && strcmp(t, "summary_text") != 0 &&
            strcmp(t, "reasoning_text") != 0)
            return req_fail(e, SEM_EUNSUPPORTED, p,
                            "%s: content of type \"%s\" is not supported (text only)", p, t);
        if (!json_is_string(text))
            return req_fail(e, SEM_EREQUEST, p, "%s.text must be a string", p);
        strbuf_append(out, json_string_value(text), json_string_length(text));
    }
    return out->oom ? req_fail(e, SEM_ENOMEM, base, "out of memory") : SEM_OK;
}

/* A string or a list of text parts, as a list of parts of type `kind`. */
static sem_status read_content(const json_t *c, const char *kind, const char *base, json_t **out,
                               req_err *e)
{
    strbuf text = {0};
    sem_status st = SEM_OK;
    if (json_is_string(c))
        strbuf_append(&text, json_string_value(c), json_string_length(c));
    else if (json_is_array(c))
        st = parts_text(c, base, &text, e);
    else
        st = req_fail(e, SEM_EREQUEST, base, "%s must be a string or a list of content parts",
                      base);
    if (st == SEM_OK)
        *out = json_pack("[{s:s,s:s%}]", "type", kind, "text", text.data ? text.data : "",
                         text.len);
    strbuf_free(&text);
    return st;
}

static sem_status read_message(const json_t *it, const char *base, json_t **out, req_err *e)
{
    char p[PARAM_MAX];
    const json_t *role = json_object_get(it, "role");
    snprintf(p, sizeof p, "%.200s.role", base);
    if (!is(role, "user") && !is(role, "system") && !is(role, "developer") &&
        !is(role, "assistant"))
        return req_fail(e, SEM_EREQUEST, p,
                        "%s must be \"user\", \"system\", \"developer\" or \"assistant\"", p);
    snprintf(p, sizeof p, "%.200s.content", base);
    json_t *content = NULL;
    sem_status st = read_content(json_object_get(it, "content"),
                                 is(role, "assistant") ? "output_text" : "input_text", p, &content,
                                 e);
    if (st != SEM_OK)
        return st;
    *out = json_pack("{s:s,s:O,s:o}", "type", "message", "role", role, "content", content);
    return SEM_OK;
}

static sem_status need_string(const json_t *it, const char *field, const char *base, req_err *e)
{
    if (json_is_string(json_object_get(it, field)))
        return SEM_OK;
    char p[PARAM_MAX];
    snprintf(p, sizeof p, "%.200s.%s", base, field);
    return req_fail(e, SEM_EREQUEST, p, "%s is required (a string)", p);
}

static sem_status read_call(const json_t *it, const char *base, json_t **out, req_err *e)
{
    sem_status st;
    if ((st = need_string(it, "call_id", base, e)) || (st = need_string(it, "name", base, e)))
        return st;
    const json_t *args = json_object_get(it, "arguments");
    json_t *text = NULL;
    if (json_is_string(args)) {
        text = json_copy((json_t *)args);
    } else if (json_is_object(args)) {
        char *s = json_dumps(args, JSON_COMPACT);
        text = s ? json_string(s) : NULL;
        free(s);
    } else {
        char p[PARAM_MAX];
        snprintf(p, sizeof p, "%.200s.arguments", base);
        return req_fail(e, SEM_EREQUEST, p, "%s is required (a string of JSON)", p);
    }
    *out = json_pack("{s:s,s:O,s:O,s:o}", "type", "function_call", "call_id",
                     json_object_get(it, "call_id"), "name", json_object_get(it, "name"),
                     "arguments", text);
    return SEM_OK;
}

static sem_status read_call_output(const json_t *it, const char *base, json_t **out, req_err *e)
{
    sem_status st = need_string(it, "call_id", base, e);
    if (st != SEM_OK)
        return st;
    char p[PARAM_MAX];
    snprintf(p, sizeof p, "%.200s.output", base);
    json_t *parts = NULL;
    if ((st = read_content(json_object_get(it, "output"), "input_text", p, &parts, e)) != SEM_OK)
        return st;
    *out = json_pack("{s:s,s:O,s:O}", "type", "function_call_output", "call_id",
                     json_object_get(it, "call_id"), "output",
                     json_object_get(json_array_get(parts, 0), "text"));
    json_decref(parts);
    return SEM_OK;
}

static sem_status read_reasoning(const json_t *it, const char *base, json_t **out, req_err *e)
{
    char p[PARAM_MAX];
    json_t *o = json_pack("{s:s,s:[]}", "type", "reasoning", "summary");
    const char *fields[] = {"summary", "content"};
    for (int f = 0; f < 2; f++) {
        const json_t *list = json_object_get(it, fields[f]);
        if (!present(list))
            continue;
        snprintf(p, sizeof p, "%.200s.%s", base, fields[f]);
        strbuf text = {0};
        sem_status st = json_is_array(list)
                            ? parts_text(list, p, &text, e)
                            : req_fail(e, SEM_EREQUEST, p, "%s must be a list of text parts", p);
        if (st == SEM_OK && text.len)
            json_object_set_new(o, fields[f],
                                json_pack("[{s:s,s:s%}]", "type",
                                          f ? "reasoning_text" : "summary_text", "text",
                                          text.data, text.len));
        strbuf_free(&text);
        if (st != SEM_OK) {
            json_decref(o);
            return st;
        }
    }
    *out = o;
    return SEM_OK;
}

/* One input item, normalized; the id it came with is kept. */
static sem_status read_item(const json_t *it, const char *base, json_t **out, req_err *e)
{
    char p[PARAM_MAX];
    if (!json_is_object(it))
        return req_fail(e, SEM_EREQUEST, base, "%s must be an object", base);
    const json_t *type = json_object_get(it, "type");
    snprintf(p, sizeof p, "%.200s.type", base);
    if (present(type) && !json_is_string(type))
        return req_fail(e, SEM_EREQUEST, p, "%s must be a string", p);
    sem_status st;
    if (!present(type) || is(type, "message"))
        st = read_message(it, base, out, e);
    else if (is(type, "function_call"))
        st = read_call(it, base, out, e);
    else if (is(type, "function_call_output"))
        st = read_call_output(it, base, out, e);
    else if (is(type, "reasoning"))
        st = read_reasoning(it, base, out, e);
    else
        return req_fail(e, SEM_EUNSUPPORTED, p,
                        "%s is \"%s\"; semantic takes message, function_call, "
                        "function_call_output and reasoning items",
                        p, json_string_value(type));
    if (st == SEM_OK && !*out)
        return req_fail(e, SEM_ENOMEM, base, "out of memory reading %s", base);
    const json_t *id = json_object_get(it, "id");
    if (st == SEM_OK && json_is_string(id) && json_object_set(*out, "id", (json_t *)id) != 0)
        return req_fail(e, SEM_ENOMEM, base, "out of memory reading %s", base);
    return st;
}

static sem_status read_input(const json_t *b, rs_request *r, req_err *e)
{
    const json_t *in = json_object_get(b, "input");
    if (!present(in))
        return req_fail(e, SEM_EREQUEST, "input", "input is required");
    if (!(r->input = json_array()))
        return req_fail(e, SEM_ENOMEM, "input", "out of memory reading input");
    if (json_is_string(in)) {
        if (json_array_append_new(r->input,
                                  json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "type", "message", "role",
                                            "user", "content", "type", "input_text", "text",
                                            in)) != 0)
            return req_fail(e, SEM_ENOMEM, "input", "out of memory reading input");
        return SEM_OK;
    }
    if (!json_is_array(in) || json_array_size(in) == 0)
        return req_fail(e, SEM_EREQUEST, "input",
                        "input must be a string or a non-empty list of items");
    char p[PARAM_MAX];
    size_t i;
    const json_t *it;
    json_array_foreach(in, i, it)
    {
        snprintf(p, sizeof p, "input[%zu]", i);
        json_t *item = NULL;
        sem_status st = read_item(it, p, &item, e);
        if (st != SEM_OK) {
            json_decref(item);
            return st;
        }
        if (json_array_append_new(r->input, item) != 0)
            return req_fail(e, SEM_ENOMEM, p, "out of memory reading %s", p);
    }
    return SEM_OK;
}

/* ---------------------------------------------------------------- tools and formats */

/* The Responses API's flat function tools as chat tools. */
static sem_status read_tools(const json_t *b, rs_request *r, req_err *e)
{
    const json_t *tools = json_object_get(b, "tools");
    if (!present(tools))
        return SEM_OK;
    if (!json_is_array(tools))
        return req_fail(e, SEM_EREQUEST, "tools", "tools must be a list");
    if (!(r->tools = json_array()))
        return req_fail(e, SEM_ENOMEM, "tools", "out of memory reading tools");
    char p[PARAM_MAX];
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (!json_is_object(t))
            return req_fail(e, SEM_EREQUEST, p, "%s must be an object", p);
        const json_t *type = json_object_get(t, "type");
        if (!is(type, "function"))
            return req_fail(e, SEM_EUNSUPPORTED, p,
                            "%s.type must be \"function\" (hosted tools are not available here)",
                            p);
        json_t *fn = json_object();
        const char *keys[] = {"name", "description", "parameters", "strict"};
        for (int k = 0; k < 4; k++)
            if (present(json_object_get(t, keys[k])))
                json_object_set(fn, keys[k], json_object_get(t, keys[k]));
        if (json_array_append_new(r->tools,
                                  json_pack("{s:s,s:o}", "type", "function", "function", fn)) != 0)
            return req_fail(e, SEM_ENOMEM, p, "out of memory reading %s", p);
    }
    return chat_check_tools(r->tools, "tools", e);
}

static sem_status read_tool_choice(const json_t *b, chat_spec *s, req_err *e)
{
    int parallel = 1;
    sem_status st = req_bool(b, "parallel_tool_calls", &parallel, e);
    if (st != SEM_OK)
        return st;
    s->parallel = parallel;
    s->choice = CHAT_TOOL_AUTO;
    const json_t *tc = json_object_get(b, "tool_choice");
    if (!present(tc) || is(tc, "auto"))
        return SEM_OK;
    if (is(tc, "none")) {
        s->choice = CHAT_TOOL_NONE;
        return SEM_OK;
    }
    if (is(tc, "required")) {
        s->choice = CHAT_TOOL_REQUIRED;
        return SEM_OK;
    }
    const json_t *name = json_object_get(tc, "name");
    if (!json_is_object(tc) || !is(json_object_get(tc, "type"), "function") ||
        !json_is_string(name))
        return req_fail(e, SEM_EREQUEST, "tool_choice",
                        "tool_choice must be \"none\", \"auto\", \"required\" or "
                        "{\"type\": \"function\", \"name\": ...}");
    s->choice = CHAT_TOOL_NAMED;
    s->tool_name = json_string_value(name);
    return SEM_OK;
}

/* text.format: text, json_object, or json_schema {name, schema, strict}. */
static sem_status read_text_format(const json_t *b, chat_spec *s, req_err *e)
{
    const json_t *text = json_object_get(b, "text");
    s->format = CHAT_FORMAT_TEXT;
    if (!present(text))
        return SEM_OK;
    if (!json_is_object(text))
        return req_fail(e, SEM_EREQUEST, "text", "text must be an object");
    const json_t *f = json_object_get(text, "format");
    if (!present(f))
        return SEM_OK;
    const json_t *type = json_object_get(f, "type");
    if (!json_is_object(f) || !json_is_string(type))
        return req_fail(e, SEM_EREQUEST, "text.format",
                        "text.format must be an object with a string \"type\"");
    if (is(type, "text"))
        return SEM_OK;
    if (is(type, "json_object")) {
        s->format = CHAT_FORMAT_JSON_OBJECT;
        return SEM_OK;
    }
    if (!is(type, "json_schema"))
        return req_fail(e, SEM_EUNSUPPORTED, "text.format.type",
                        "text.format.type is \"%s\"; expected text, json_object or json_schema",
                        json_string_value(type));
    const json_t *schema = json_object_get(f, "schema");
    if (!json_is_object(schema) && !json_is_boolean(schema))
        return req_fail(e, SEM_EREQUEST, "text.format.schema",
                        "text.format.schema must be a JSON Schema object");
    if (present(json_object_get(f, "name")) && !json_is_string(json_object_get(f, "name")))
        return req_fail(e, SEM_EREQUEST, "text.format.name", "text.format.name must be a string");
    int strict = 0;
    sem_status st = req_bool(f, "strict", &strict, e);
    if (st != SEM_OK) {
        snprintf(e->param, sizeof e->param, "text.format.strict");
        return st;
    }
    s->format = CHAT_FORMAT_JSON_SCHEMA;
    s->schema = schema;
    s->strict = strict;
    s->schema_param = "text.format.schema";
    return SEM_OK;
}

/* ---------------------------------------------------------------- the body */

static sem_status read_scalars(const json_t *b, uint32_t n_ctx, rs_request *r, req_err *e)
{
    sem_status st;
    int seed_given = 0;
    r->store = 1;
    if ((st = req_string(b, "model", &r->model, e)) ||
        (st = req_bool(b, "stream", &r->stream, e)) || (st = req_bool(b, "store", &r->store, e)) ||
        (st = req_string(b, "instructions", &r->instructions, e)) ||
        (st = req_string(b, "previous_response_id", &r->previous_id, e)) ||
        (st = req_sampling(b, 2.0f, &r->sampling, &seed_given, e)))
        return st;
    if (present(json_object_get(b, "max_output_tokens")) &&
        (st = req_uint(b, "max_output_tokens", 1, n_ctx, &r->max_output_tokens, e)) != SEM_OK)
        return st;
    const char *objects[] = {"metadata", "reasoning"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(b, objects[i]);
        if (present(v) && !json_is_object(v))
            return req_fail(e, SEM_EREQUEST, objects[i], "%s must be an object", objects[i]);
    }
    if (json_is_true(json_object_get(b, "background")))
        return req_fail(e, SEM_EUNSUPPORTED, "background",
                        "background responses are not supported");
    return SEM_OK;
}

/* The caller's agent: the headers and agent_id, then prompt_cache_key, then user. */
static sem_status read_agent(const json_t *b, const req_identity *who, rs_request *r, req_err *e)
{
    sem_status st = req_agent_id(who, b, "prompt_cache_key", r->agent, e);
    if (st == SEM_OK && !r->agent[0])
        st = req_agent_id(who, b, "user", r->agent, e);
    return st;
}

sem_status rs_request_read(const char *body, size_t len, const req_identity *who, uint32_t n_ctx,
                           uint64_t seed, rs_request *r, req_err *e)
{
    memset(r, 0, sizeof *r);
    r->sampling = (gen_sampling){.temperature = 1.0f, .top_p = 1.0f, .min_p = 0.05f,
                                 .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = seed};
    sem_status st = req_body_json(body, len, &r->body, e);
    if (st != SEM_OK)
        return st;
    const json_t *b = r->body;
    if ((st = read_scalars(b, n_ctx, r, e)) || (st = read_agent(b, who, r, e)) ||
        (st = read_input(b, r, e)) || (st = read_tools(b, r, e)) ||
        (st = read_tool_choice(b, &r->spec, e)) || (st = read_text_format(b, &r->spec, e)))
        return st;
    r->spec.tools = r->tools;
    return SEM_OK;
}

void rs_request_free(rs_request *r)
{
    json_decref(r->body);
    json_decref(r->input);
    json_decref(r->tools);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- items to messages */

/* The text of a normalized item's content parts. */
static json_t *joined_text(const json_t *parts)
{
    strbuf t = {0};
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const json_t *text = json_object_get(p, "text");
        if (json_is_string(text))
            strbuf_append(&t, json_string_value(text), json_string_length(text));
    }
    json_t *s = json_stringn(t.data ? t.data : "", t.len);
    strbuf_free(&t);
    return s;
}

/* 1 when an assistant message in messages made call `id`. */
static int has_call(const json_t *messages, const char *id)
{
    size_t i, j;
    const json_t *m, *c;
    json_array_foreach(messages, i, m)
    {
        json_array_foreach(json_object_get(m, "tool_calls"), j, c)
        {
            if (is(json_object_get(c, "id"), id))
                return 1;
        }
    }
    return 0;
}

/* The assistant message a call joins: the last message when it is the
 * assistant's, else a new one; NULL when out of memory. */
static json_t *assistant_for_call(json_t *messages, json_t **reasoning)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    if (!is(json_object_get(last, "role"), "assistant") || *reasoning) {
        last = json_pack("{s:s,s:n}", "role", "assistant", "content");
        if (*reasoning)
            json_object_set_new(last, "reasoning_content", *reasoning);
        *reasoning = NULL;
        if (json_array_append_new(messages, last) != 0)
            return NULL;
    }
    if (!json_is_array(json_object_get(last, "tool_calls")) &&
        json_object_set_new(last, "tool_calls", json_array()) != 0)
        return NULL;
    return last;
}

static void add_reasoning(const json_t *it, json_t **reasoning)
{
    json_t *summary = joined_text(json_object_get(it, "summary"));
    json_t *content = joined_text(json_object_get(it, "content"));
    json_t *text = json_string_length(content) ? content : summary;
    json_decref(*reasoning);
    *reasoning = json_string_length(text) ? json_incref(text) : NULL;
    json_decref(summary);
    json_decref(content);
}

sem_status rs_items_to_messages(const json_t *items, json_t *messages, json_t **reasoning,
                                const char *field, req_err *e)
{
    char p[PARAM_MAX];
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
    {
        const json_t *type = json_object_get(it, "type");
        int lost = 0; /* an allocation failed: the conversation would lose a part */
        if (is(type, "message")) {
            json_t *m = json_pack("{s:O,s:o}", "role", json_object_get(it, "role"), "content",
                                  joined_text(json_object_get(it, "content")));
            if (is(json_object_get(it, "role"), "assistant") && *reasoning) {
                json_object_set_new(m, "reasoning_content", *reasoning);
                *reasoning = NULL;
            }
            lost = json_array_append_new(messages, m) != 0;
        } else if (is(type, "function_call")) {
            json_t *a = assistant_for_call(messages, reasoning);
            lost = !a || json_array_append_new(
                json_object_get(a, "tool_calls"),
                json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", json_object_get(it, "call_id"), "type",
                          "function", "function", "name", json_object_get(it, "name"),
                          "arguments", json_object_get(it, "arguments"))) != 0;
        } else if (is(type, "function_call_output")) {
            const char *id = json_string_value(json_object_get(it, "call_id"));
            if (!has_call(messages, id)) {
                snprintf(p, sizeof p, "%s[%zu].call_id", field, i);
                return req_fail(e, SEM_EREQUEST, p,
                                "%s is \"%s\", which no earlier function_call has as its call_id",
                                p, id);
            }
            lost = json_array_append_new(messages,
                                  json_pack("{s:s,s:s,s:O}", "role", "tool", "tool_call_id", id,
                                            "content", json_object_get(it, "output"))) != 0;
        } else if (is(type, "reasoning")) {
            add_reasoning(it, reasoning);
        }
        if (lost) {
            snprintf(p, sizeof p, "%s[%zu]", field, i);
            return req_fail(e, SEM_ENOMEM, p, "out of memory rendering %s", p);
        }
    }
    return SEM_OK;
}
