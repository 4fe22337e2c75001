/*
 * http_request.c - typed reading of API request bodies.
 */
#include "http_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "adapters/chat/json_write.h"

sem_status req_fail(req_err *e, sem_status st, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sem_err_setv(&e->err, st, fmt, ap);
    va_end(ap);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    return st;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

sem_status req_body_json(const char *body, size_t len, json_t **out, req_err *e)
{
    if (len == 0)
        return req_fail(e, SEM_EREQUEST, NULL, "the request body is empty; send a JSON object");
    json_error_t je;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    /* jansson's own lack of memory: its error code says so, or it fails
     * before it has read anything and leaves no message. */
    if (!v && (json_error_code(&je) == json_error_out_of_memory || !je.text[0]))
        return req_fail(e, SEM_ENOMEM, NULL, "out of memory reading the request body");
    if (!v && strstr(je.text, "\\u0000")) /* valid JSON that semantic does not take */
        return req_fail(e, SEM_EREQUEST, NULL,
                        "the request body holds U+0000 (\\u0000) in a string (line %d, column "
                        "%d); semantic takes text without it",
                        je.line, je.column);
    if (!v)
        return req_fail(e, SEM_EREQUEST, NULL,
                        "the request body is not valid JSON: %s (line %d, column %d)", je.text,
                        je.line, je.column);
    if (!json_is_object(v)) {
        sem_status st = req_fail(e, SEM_EREQUEST, NULL,
                                 "the request body must be a JSON object, not %s", type_name(v));
        json_decref(v);
        return st;
    }
    *out = v;
    return SEM_OK;
}

sem_status req_body_object(http_exchange *x, json_t **out, req_err *e)
{
    size_t len;
    const char *body = http_exchange_body(x, &len);
    return req_body_json(body, len, out, e);
}

sem_status req_string(const json_t *o, const char *field, const char **out, req_err *e)
{
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return SEM_OK;
    if (!json_is_string(v))
        return req_fail(e, SEM_EREQUEST, field, "%s must be a string, not %s", field, type_name(v));
    *out = json_string_value(v);
    return SEM_OK;
}

sem_status req_bool(const json_t *o, const char *field, int *out, req_err *e)
{
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return SEM_OK;
    if (!json_is_boolean(v))
        return req_fail(e, SEM_EREQUEST, field, "%s must be true or false, not %s", field,
                        type_name(v));
    *out = json_is_true(v);
    return SEM_OK;
}

sem_status req_uint(const json_t *o, const char *field, uint32_t min, uint32_t max, uint32_t *out,
                    req_err *e)
{
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return SEM_OK;
    json_int_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        n = (json_int_t)json_real_value(v); /* 16.0 is 16 */
    } else {
        return req_fail(e, SEM_EREQUEST, field, "%s must be an integer, not %s", field,
                        type_name(v));
    }
    if (n < (json_int_t)min || n > (json_int_t)max)
        return req_fail(e, SEM_EREQUEST, field, "%s is %lld; it must be between %u and %u", field,
                        (long long)n, min, max);
    *out = (uint32_t)n;
    return SEM_OK;
}

sem_status req_number(const json_t *o, const char *field, double min, double max, int exclusive_min,
                      float *out, req_err *e)
{
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return SEM_OK;
    if (!json_is_number(v))
        return req_fail(e, SEM_EREQUEST, field, "%s must be a number, not %s", field, type_name(v));
    double d = json_number_value(v);
    if (!(exclusive_min ? d > min : d >= min) || !(d <= max))
        return req_fail(e, SEM_EREQUEST, field, "%s is %g; it must be in %s%g, %g]", field, d,
                        exclusive_min ? "(" : "[", min, max);
    *out = (float)d;
    return SEM_OK;
}

sem_status req_stop(const json_t *o, const char *field, int allow_string,
                    const char *out[REQ_STOP_MAX], size_t *n, req_err *e)
{
    const json_t *v = json_object_get(o, field);
    *n = 0;
    if (!v || json_is_null(v))
        return SEM_OK;
    char param[HTTP_ERROR_PARAM_MAX + 64];
    if (json_is_string(v) && allow_string) {
        if (json_string_length(v) == 0)
            return req_fail(e, SEM_EREQUEST, field, "%s must not be empty", field);
        if (json_string_length(v) > REQ_STOP_BYTES)
            return req_fail(e, SEM_EREQUEST, field, "%s is %zu bytes; at most %d allowed", field,
                            json_string_length(v), REQ_STOP_BYTES);
        out[(*n)++] = json_string_value(v);
        return SEM_OK;
    }
    if (!json_is_array(v))
        return req_fail(e, SEM_EREQUEST, field, "%s must be %sa list of strings, not %s", field,
                        allow_string ? "a string or " : "", type_name(v));
    if (json_array_size(v) > REQ_STOP_MAX)
        return req_fail(e, SEM_EREQUEST, field, "%s has %zu entries; at most %d allowed", field,
                        json_array_size(v), REQ_STOP_MAX);
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s)
    {
        snprintf(param, sizeof param, "%s[%zu]", field, i);
        if (!json_is_string(s))
            return req_fail(e, SEM_EREQUEST, param, "%s must be a string, not %s", param,
                            type_name(s));
        if (json_string_length(s) == 0)
            return req_fail(e, SEM_EREQUEST, param, "%s must not be empty", param);
        if (json_string_length(s) > REQ_STOP_BYTES)
            return req_fail(e, SEM_EREQUEST, param, "%s is %zu bytes; at most %d allowed", param,
                            json_string_length(s), REQ_STOP_BYTES);
        out[(*n)++] = json_string_value(s);
    }
    return SEM_OK;
}

sem_status req_sampling(const json_t *o, float max_temperature, gen_sampling *s, int *seed_given,
                        req_err *e)
{
    sem_status st;
    float rep = s->repeat_penalty;
    if ((st = req_number(o, "temperature", 0, max_temperature, 0, &s->temperature, e)) ||
        (st = req_number(o, "top_p", 0, 1, 1, &s->top_p, e)) ||
        (st = req_uint(o, "top_k", 0, 1u << 20, &s->top_k, e)) ||
        (st = req_number(o, "min_p", 0, 1, 0, &s->min_p, e)) ||
        (st = req_number(o, "presence_penalty", -2, 2, 0, &s->presence_penalty, e)) ||
        (st = req_number(o, "frequency_penalty", -2, 2, 0, &s->frequency_penalty, e)) ||
        (st = req_number(o, "repetition_penalty", 0, 10, 1, &rep, e)))
        return st;
    s->repeat_penalty = rep;
    const json_t *seed = json_object_get(o, "seed");
    *seed_given = 0;
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed))
            return req_fail(e, SEM_EREQUEST, "seed", "seed must be an integer, not %s",
                            type_name(seed));
        s->seed = (uint64_t)json_integer_value(seed);
        *seed_given = 1;
    }
    return SEM_OK;
}

/* ---------------------------------------------------------------- messages */

static int known_role(const char *r)
{
    static const char *roles[] = {"system", "developer", "user", "assistant", "tool"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(r, roles[i]) == 0)
            return 1;
    return 0;
}

static sem_status check_parts(const json_t *content, const char *base, req_err *e)
{
    char param[256];
    size_t j;
    const json_t *p;
    json_array_foreach(content, j, p)
    {
        snprintf(param, sizeof param, "%s[%zu]", base, j);
        if (!json_is_object(p))
            return req_fail(e, SEM_EREQUEST, param, "%s must be an object, not %s", param,
                            type_name(p));
        const json_t *type = json_object_get(p, "type");
        if (!json_is_string(type))
            return req_fail(e, SEM_EREQUEST, param, "%s.type must be a string", param);
        const char *t = json_string_value(type);
        if (strcmp(t, "image_url") == 0 || strcmp(t, "input_audio") == 0 || strcmp(t, "file") == 0)
            return req_fail(e, SEM_EUNSUPPORTED, param,
                            "%s: this model has no vision or audio input; content parts of type "
                            "\"%s\" are not supported (text only)",
                            param, t);
        if (strcmp(t, "text") != 0)
            return req_fail(e, SEM_EUNSUPPORTED, param,
                            "%s: content parts of type \"%s\" are not supported (text only)", param,
                            t);
        if (!json_is_string(json_object_get(p, "text")))
            return req_fail(e, SEM_EREQUEST, param, "%s.text must be a string", param);
    }
    return SEM_OK;
}

/* An assistant message's tool_calls: [{"id", "type": "function", "function":
 * {"name", "arguments": a JSON text}}]. */
static sem_status check_tool_calls(const json_t *calls, const char *base, req_err *e)
{
    char p[256];
    snprintf(p, sizeof p, "%s.tool_calls", base);
    if (!json_is_array(calls))
        return req_fail(e, SEM_EREQUEST, p, "%s must be a list", p);
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        snprintf(p, sizeof p, "%s.tool_calls[%zu]", base, i);
        const json_t *fn = json_object_get(c, "function");
        const json_t *args = json_object_get(fn, "arguments");
        if (!json_is_object(c) || !json_is_string(json_object_get(c, "id")))
            return req_fail(e, SEM_EREQUEST, p, "%s must be an object with a string \"id\"", p);
        if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
            return req_fail(e, SEM_EREQUEST, p, "%s.function.name must be a string", p);
        if (args && !json_is_string(args) && !json_is_object(args))
            return req_fail(e, SEM_EREQUEST, p,
                            "%s.function.arguments must be a string of JSON (or an object)", p);
    }
    return SEM_OK;
}

/* 1 when an assistant message before messages[upto] made a call `id`. */
static int earlier_call(const json_t *messages, size_t upto, const char *id)
{
    for (size_t i = 0; i < upto; i++) {
        const json_t *calls = json_object_get(json_array_get(messages, i), "tool_calls");
        size_t j;
        const json_t *c;
        json_array_foreach(calls, j, c)
        {
            const json_t *cid = json_object_get(c, "id");
            if (json_is_string(cid) && strcmp(json_string_value(cid), id) == 0)
                return 1;
        }
    }
    return 0;
}

/* A tool message answers an earlier call by its tool_call_id. */
static sem_status check_tool_message(const json_t *messages, size_t i, const char *base,
                                     req_err *e)
{
    char p[256];
    snprintf(p, sizeof p, "%s.tool_call_id", base);
    const json_t *id = json_object_get(json_array_get(messages, i), "tool_call_id");
    if (!json_is_string(id))
        return req_fail(e, SEM_EREQUEST, p, "%s is required on a tool message (a string)", p);
    if (!earlier_call(messages, i, json_string_value(id)))
        return req_fail(e, SEM_EREQUEST, p,
                        "%s is \"%s\", which no earlier assistant tool call has as its id", p,
                        json_string_value(id));
    return SEM_OK;
}

sem_status req_chat_messages(const json_t *messages, const char *field, req_err *e)
{
    if (!messages || json_is_null(messages))
        return req_fail(e, SEM_EREQUEST, field, "%s is required", field);
    if (!json_is_array(messages))
        return req_fail(e, SEM_EREQUEST, field, "%s must be a list, not %s", field,
                        type_name(messages));
    if (json_array_size(messages) == 0)
        return req_fail(e, SEM_EREQUEST, field, "%s must not be empty", field);
    char param[HTTP_ERROR_PARAM_MAX + 64];
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        snprintf(param, sizeof param, "%s[%zu]", field, i);
        if (!json_is_object(m))
            return req_fail(e, SEM_EREQUEST, param, "%s must be an object, not %s", param,
                            type_name(m));
        const json_t *role = json_object_get(m, "role");
        char rparam[192];
        snprintf(rparam, sizeof rparam, "%s.role", param);
        if (!role)
            return req_fail(e, SEM_EREQUEST, rparam, "%s is required", rparam);
        if (!json_is_string(role))
            return req_fail(e, SEM_EREQUEST, rparam, "%s must be a string, not %s", rparam,
                            type_name(role));
        if (!known_role(json_string_value(role)))
            return req_fail(e, SEM_EREQUEST, rparam,
                            "%s is \"%s\"; expected system, developer, user, assistant or tool",
                            rparam, json_string_value(role));
        const json_t *content = json_object_get(m, "content");
        char cparam[192];
        snprintf(cparam, sizeof cparam, "%s.content", param);
        int assistant = strcmp(json_string_value(role), "assistant") == 0;
        const json_t *calls = json_object_get(m, "tool_calls");
        sem_status cst = SEM_OK;
        if (assistant && calls && !json_is_null(calls))
            cst = check_tool_calls(calls, param, e);
        else if (strcmp(json_string_value(role), "tool") == 0)
            cst = check_tool_message(messages, i, param, e);
        if (cst != SEM_OK)
            return cst;
        if (!content || json_is_null(content)) {
            if (!assistant || !json_array_size(json_object_get(m, "tool_calls")))
                return req_fail(e, SEM_EREQUEST, cparam, "%s is required", cparam);
        } else if (json_is_array(content)) {
            sem_status st = check_parts(content, cparam, e);
            if (st != SEM_OK)
                return st;
        } else if (!json_is_string(content)) {
            return req_fail(e, SEM_EREQUEST, cparam,
                            "%s must be a string or a list of text parts, not %s", cparam,
                            type_name(content));
        }
    }
    return SEM_OK;
}

/* ---------------------------------------------------------------- identity */

static sem_status check_id(const char *id, const char *source, req_err *e)
{
    sem_err err = {0};
    if (agent_id_validate(id, &err) != SEM_OK)
        return req_fail(e, SEM_EREQUEST, source, "%s: %s", source, sem_err_text(&err));
    return SEM_OK;
}

/*
 * An id derived from a client's own identifier (a session header, a user
 * id): kept as it is when it is a valid agent id; the "session_id" of a
 * JSON object (Claude Code's metadata.user_id); otherwise "u-" and the
 * 64-bit hash of the whole value in hex, so the same value always names
 * the same agent. Empty values are skipped by the caller.
 */
/* Skips one JSON string at *p ('"' there); 0 when it does not end. */
static int skip_string(const char **p)
{
    for (const char *s = *p + 1; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
        } else if (*s == '"') {
            *p = s + 1;
            return 1;
        }
    }
    return 0;
}

/* Skips one JSON value at *p (strings, nested containers, literals). */
static int skip_value(const char **p)
{
    int depth = 0;
    const char *s = *p;
    do {
        s += strspn(s, " \t\r\n");
        if (*s == '"') {
            if (!skip_string(&s))
                return 0;
        } else if (*s == '{' || *s == '[') {
            depth++, s++;
        } else if (*s == '}' || *s == ']') {
            if (--depth < 0)
                return 0;
            s++;
        } else if (*s && depth) {
            s++; /* ':' ',' and literal characters inside a container */
        } else {
            size_t n = strcspn(s, ",}] \t\r\n");
            if (n == 0)
                return 0;
            s += n;
        }
    } while (depth > 0 && *s);
    *p = s;
    return depth == 0;
}

/*
 * The value of a top-level member `key` of the JSON object text v when it
 * is a string without escapes that fits in out; 0 otherwise. Reads
 * without allocating, so running out of memory can never pass for a
 * malformed text (jansson reports one as the other).
 */
static int top_string(const char *v, const char *key, char *out, size_t cap)
{
    const char *s = v + strspn(v, " \t\r\n");
    size_t klen = strlen(key);
    if (*s++ != '{')
        return 0;
    for (;;) {
        s += strspn(s, " \t\r\n");
        const char *k = s;
        if (*s != '"' || !skip_string(&s))
            return 0;
        int match = (size_t)(s - k) == klen + 2 && memcmp(k + 1, key, klen) == 0;
        s += strspn(s, " \t\r\n");
        if (*s++ != ':')
            return 0;
        s += strspn(s, " \t\r\n");
        const char *val = s;
        if (!skip_value(&s))
            return 0;
        size_t n = (size_t)(s - val);
        if (match && *val == '"' && n >= 2 && n - 2 < cap && !memchr(val, '\\', n)) {
            memcpy(out, val + 1, n - 2);
            out[n - 2] = '\0';
            return 1;
        }
        s += strspn(s, " \t\r\n");
        if (*s++ != ',')
            return 0;
    }
}

static void derive_id(const char *v, char id[AGENT_ID_MAX + 1])
{
    sem_err err = {0};
    char sid[AGENT_ID_MAX + 1];
    if (agent_id_validate(v, &err) == SEM_OK)
        snprintf(id, AGENT_ID_MAX + 1, "%s", v);
    else if (top_string(v, "session_id", sid, sizeof sid) && agent_id_validate(sid, &err) == SEM_OK)
        snprintf(id, AGENT_ID_MAX + 1, "%s", sid);
    else
        snprintf(id, AGENT_ID_MAX + 1, "u-%016llx", (unsigned long long)XXH3_64bits(v, strlen(v)));
}

/* The body's API field (a string) or NULL; "metadata.user_id" is nested. */
static sem_status api_field_value(const json_t *body, const char *api_field, const char **v,
                                  req_err *e)
{
    const json_t *f;
    *v = NULL;
    if (!api_field)
        return SEM_OK;
    if (strcmp(api_field, "metadata.user_id") == 0) {
        const json_t *md = json_object_get(body, "metadata");
        if (md && !json_is_null(md) && !json_is_object(md))
            return req_fail(e, SEM_EREQUEST, "metadata", "metadata must be an object, not %s",
                            type_name(md));
        f = json_object_get(md, "user_id");
    } else {
        f = json_object_get(body, api_field);
    }
    if (f && !json_is_null(f)) {
        if (!json_is_string(f))
            return req_fail(e, SEM_EREQUEST, api_field, "%s must be a string, not %s", api_field,
                            type_name(f));
        *v = json_string_value(f);
    }
    return SEM_OK;
}

sem_status req_agent_id(const req_identity *who, const json_t *body, const char *api_field,
                        char id[AGENT_ID_MAX + 1], req_err *e)
{
    id[0] = '\0';
    if (who->agent_header) {
        sem_status st = check_id(who->agent_header, "X-Agent-ID", e);
        if (st == SEM_OK)
            snprintf(id, AGENT_ID_MAX + 1, "%s", who->agent_header);
        return st;
    }
    const json_t *a = json_object_get(body, "agent_id");
    if (a && !json_is_null(a)) {
        if (!json_is_string(a))
            return req_fail(e, SEM_EREQUEST, "agent_id", "agent_id must be a string, not %s",
                            type_name(a));
        sem_status st = check_id(json_string_value(a), "agent_id", e);
        if (st == SEM_OK)
            snprintf(id, AGENT_ID_MAX + 1, "%s", json_string_value(a));
        return st;
    }
    if (who->session_header && *who->session_header) {
        derive_id(who->session_header, id);
        return SEM_OK;
    }
    const char *v;
    sem_status st = api_field_value(body, api_field, &v, e);
    if (st == SEM_OK && v && *v)
        derive_id(v, id);
    return st;
}

/* The field named at the start of a prompt port's error, or "". */
static void param_from_detail(const char *detail, char *param, size_t cap)
{
    param[0] = '\0';
    if (strncmp(detail, "messages", 8) != 0 && strncmp(detail, "tools", 5) != 0)
        return;
    size_t n = strcspn(detail, " :");
    if (n >= cap)
        n = cap - 1;
    memcpy(param, detail, n);
    param[n] = '\0';
}

sem_status req_render_chat(prompt_port pp, const json_t *messages, const json_t *tools,
                           const json_t *kwargs, int add_generation_prompt, int32_t **tokens,
                           size_t *n_tokens, prompt_chat_info *info, req_err *e)
{
    strbuf text = {0};
    strbuf_puts(&text, "{\"messages\":");
    json_write_value(&text, messages, JSON_WRITE_COMPACT);
    if (tools) {
        strbuf_puts(&text, ",\"tools\":");
        json_write_value(&text, tools, JSON_WRITE_COMPACT);
    }
    if (kwargs) {
        strbuf_puts(&text, ",\"chat_template_kwargs\":");
        json_write_value(&text, kwargs, JSON_WRITE_COMPACT);
    }
    strbuf_puts(&text, "}");
    if (text.oom) {
        strbuf_free(&text);
        return req_fail(e, SEM_ENOMEM, "", "out of memory for the conversation");
    }
    sem_status st = pp.ops->chat(pp.self, text.data, text.len, add_generation_prompt, tokens,
                                 n_tokens, info, &e->err);
    strbuf_free(&text);
    if (st != SEM_OK) {
        param_from_detail(e->err.detail, e->param, sizeof e->param);
        if (st == SEM_EINVAL)
            st = e->err.status = SEM_EREQUEST; /* the template refused this conversation */
    }
    return st;
}
