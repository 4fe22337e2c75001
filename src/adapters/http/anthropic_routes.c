/*
 * anthropic_routes.c - the Anthropic Messages API: POST /v1/messages and
 * POST /v1/messages/count_tokens.
 *
 * The conversation (system as a string or text blocks; messages of user
 * and assistant turns whose content is a string or text blocks) becomes
 * an OpenAI-shaped message list for the prompt port, so both APIs render
 * through the same chat template.
 *
 * cache_control breakpoints ({"type": "ephemeral", "ttl"?: "5m"|"1h"} on
 * tools, system blocks and message content blocks; at most GEN_PINS_MAX)
 * become the engine's pins: each marks the prompt prefix that the
 * conversation renders to when cut after the marked message (tools and
 * system for a tools or system mark), found by rendering the cut without
 * a generation prompt and matching its tokens against the whole prompt.
 *
 * Usage reports memory in Anthropic's terms, which add up to the prompt:
 * cache_read_input_tokens are the prompt tokens whose KV was reused;
 * cache_creation_input_tokens, with breakpoints, the tokens beyond those
 * up to the last breakpoint (split into cache_creation's 5m and 1h by the
 * breakpoints' TTLs), without, those newly kept in the agent's memory (0
 * for an anonymous request: nothing is kept for it); input_tokens the
 * rest.
 *
 * Streaming sends Anthropic's events in order: message_start,
 * content_block_start, ping, content_block_delta..., content_block_stop,
 * message_delta (stop_reason and the whole usage), message_stop; pings
 * keep an idle stream alive; a failure after the start ends the stream
 * with an error event.
 *
 * After the submit, one an_call carries the request: the exchange's wait
 * step reads the text as the engine makes it readable (whole: until the
 * end, then one JSON reply; stream: until the first text, then the same
 * object becomes the stream).
 *
 * Threads: handlers, steps and streams run on an event-loop worker and
 * never block (http_exchange.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_answer.h"
#include "http_generation.h"
#include "http_request.h"
#include "routes.h"
#include "sse.h"

void anthropic_routes_request_free(an_request *r)
{
    json_decref(r->body);
    json_decref(r->messages);
    json_decref(r->tools);
    json_decref(r->kwargs);
    chat_prepared_free(&r->prep);
    memset(r, 0, sizeof *r);
}

static sem_status out_of_memory(req_err *e)
{
    return req_fail(e, SEM_ENOMEM, NULL, "out of memory reading the conversation");
}

/* Appends v to the array a (stealing v); SEM_ENOMEM when it cannot. */
static sem_status append(json_t *a, json_t *v, req_err *e)
{
    return v && json_array_append_new(a, v) == 0 ? SEM_OK : out_of_memory(e);
}

static sem_status no_vision(const char *param, const char *type, req_err *e)
{
    return req_fail(e, SEM_EUNSUPPORTED, param,
                    "%s: this model has no vision; content blocks of type \"%s\" (images and "
                    "documents) are not supported",
                    param, type);
}

/* The block's "type", or NULL after failing e. */
static const char *block_type(const json_t *b, const char *param, req_err *e)
{
    const json_t *type = json_object_get(b, "type");
    if (!json_is_object(b) || !json_is_string(type)) {
        req_fail(e, SEM_EREQUEST, param, "%s must be a block with a string \"type\"", param);
        return NULL;
    }
    return json_string_value(type);
}

/* A text block's text appended to parts as an OpenAI text part. */
static sem_status text_part(const json_t *b, const char *param, json_t *parts, req_err *e)
{
    const json_t *text = json_object_get(b, "text");
    if (!json_is_string(text))
        return req_fail(e, SEM_EREQUEST, param, "%s.text must be a string", param);
    return append(parts, json_pack("{s:s,s:O}", "type", "text", "text", text), e);
}

/* Text parts joined into one string ("\n" between blocks), so a text given
 * as blocks renders exactly as the same text given as a string (clients
 * switch between the two from turn to turn). Steals parts. */
static sem_status join_parts(json_t *parts, json_t **out, req_err *e)
{
    strbuf t = {0};
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const json_t *text = json_object_get(p, "text");
        if (i)
            strbuf_puts(&t, "\n");
        strbuf_append(&t, json_string_value(text), json_string_length(text));
    }
    json_decref(parts);
    *out = t.oom ? NULL : json_stringn(t.data ? t.data : "", t.len);
    strbuf_free(&t);
    return *out ? SEM_OK : out_of_memory(e);
}

/* Text content (system, tool_result content): a string or text blocks, as
 * one string. */
static sem_status text_content(const json_t *c, const char *field, json_t **out, req_err *e)
{
    if (json_is_string(c)) {
        *out = json_copy((json_t *)c);
        return *out ? SEM_OK : out_of_memory(e);
    }
    if (!json_is_array(c))
        return req_fail(e, SEM_EREQUEST, field, "%s must be a string or a list of content blocks",
                        field);
    json_t *parts = json_array();
    if (!parts)
        return out_of_memory(e);
    size_t i;
    const json_t *b;
    char param[HTTP_ERROR_PARAM_MAX];
    json_array_foreach(c, i, b)
    {
        snprintf(param, sizeof param, "%s[%zu]", field, i);
        const char *type = block_type(b, param, e);
        sem_status st = !type                                                      ? e->err.status
                        : strcmp(type, "text") == 0                                ? text_part(b, param, parts, e)
                        : strcmp(type, "image") == 0 || strcmp(type, "document") == 0 ? no_vision(param, type, e)
                        : req_fail(e, SEM_EUNSUPPORTED, param,
                                   "%s: content blocks of type \"%s\" are not supported here "
                                   "(text only)",
                                   param, type);
        if (st != SEM_OK) {
            json_decref(parts);
            return st;
        }
    }
    return join_parts(parts, out, e);
}

/* 1 when an assistant turn before messages[upto] called tool `id`. */
static int earlier_tool_use(const json_t *msgs, size_t upto, const char *id)
{
    for (size_t i = 0; i < upto; i++) {
        const json_t *content = json_object_get(json_array_get(msgs, i), "content");
        size_t j;
        const json_t *b;
        json_array_foreach(content, j, b)
        {
            const json_t *bid = json_object_get(b, "id");
            if (json_is_string(bid) && strcmp(json_string_value(bid), id) == 0 &&
                json_is_string(json_object_get(b, "type")) &&
                strcmp(json_string_value(json_object_get(b, "type")), "tool_use") == 0)
                return 1;
        }
    }
    return 0;
}

/* Prefixes tool-result content (a string or text parts) with "Error: ". */
static sem_status mark_error(json_t **content, req_err *e)
{
    json_t *c = *content;
    if (json_is_array(c)) {
        if (json_array_insert_new(c, 0, json_pack("{s:s,s:s}", "type", "text", "text", "Error:")))
            return out_of_memory(e);
        return SEM_OK;
    }
    strbuf t = {0};
    strbuf_puts(&t, "Error: ");
    strbuf_append(&t, json_string_value(c), json_string_length(c));
    json_t *marked = t.oom ? NULL : json_stringn(t.data, t.len);
    strbuf_free(&t);
    if (!marked)
        return out_of_memory(e);
    json_decref(c);
    *content = marked;
    return SEM_OK;
}

/* A tool_result block as an OpenAI tool message. is_error prefixes the
 * content with "Error: " so the model can tell. */
static sem_status tool_result(const json_t *msgs, size_t mi, const json_t *b, const char *param,
                              json_t *out, req_err *e)
{
    const json_t *id = json_object_get(b, "tool_use_id");
    char sub[HTTP_ERROR_PARAM_MAX + 64];
    snprintf(sub, sizeof sub, "%s.tool_use_id", param);
    if (!json_is_string(id))
        return req_fail(e, SEM_EREQUEST, sub, "%s must be a string", sub);
    if (!earlier_tool_use(msgs, mi, json_string_value(id)))
        return req_fail(e, SEM_EREQUEST, sub,
                        "%s is \"%s\", which no earlier assistant tool_use block has as its id", sub,
                        json_string_value(id));
    const json_t *c = json_object_get(b, "content");
    json_t *content = NULL;
    snprintf(sub, sizeof sub, "%s.content", param);
    sem_status st = !c || json_is_null(c) ? ((content = json_string("")) ? SEM_OK : out_of_memory(e))
                                          : text_content(c, sub, &content, e);
    if (st != SEM_OK)
        return st;
    if (json_is_true(json_object_get(b, "is_error")) && (st = mark_error(&content, e)) != SEM_OK) {
        json_decref(content);
        return st;
    }
    return append(out, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content", content),
                  e);
}

/* A tool_use block as an OpenAI tool call (arguments: the input object). */
static sem_status tool_use(const json_t *b, const char *param, json_t *calls, req_err *e)
{
    const json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name"),
                 *input = json_object_get(b, "input");
    if (!json_is_string(id) || !json_is_string(name))
        return req_fail(e, SEM_EREQUEST, param, "%s needs a string \"id\" and \"name\"", param);
    if (input && !json_is_object(input))
        return req_fail(e, SEM_EREQUEST, param, "%s.input must be an object", param);
    json_t *args = input ? json_deep_copy(input) : json_object();
    return append(calls,
                  json_pack("{s:O,s:s,s:{s:O,s:o}}", "id", id, "type", "function", "function",
                            "name", name, "arguments", args),
                  e);
}

/* One user turn: tool results first (as tool messages), then its text. */
static sem_status user_turn(const json_t *msgs, size_t mi, const json_t *content,
                            const char *param, json_t *out, req_err *e)
{
    if (json_is_string(content))
        return append(out, json_pack("{s:s,s:O}", "role", "user", "content", content), e);
    json_t *parts = json_array();
    if (!parts)
        return out_of_memory(e);
    size_t i;
    const json_t *b;
    char p[HTTP_ERROR_PARAM_MAX + 32];
    sem_status st = SEM_OK;
    json_array_foreach(content, i, b)
    {
        snprintf(p, sizeof p, "%s[%zu]", param, i);
        const char *type = block_type(b, p, e);
        st = !type                                ? e->err.status
             : strcmp(type, "text") == 0          ? text_part(b, p, parts, e)
             : strcmp(type, "tool_result") == 0   ? tool_result(msgs, mi, b, p, out, e)
             : strcmp(type, "image") == 0 || strcmp(type, "document") == 0 ? no_vision(p, type, e)
             : req_fail(e, SEM_EUNSUPPORTED, p,
                        "%s: content blocks of type \"%s\" are not supported in a user turn "
                        "(text, tool_result)",
                        p, type);
        if (st != SEM_OK)
            break;
    }
    if (st == SEM_OK && json_array_size(parts)) {
        json_t *text;
        if ((st = join_parts(parts, &text, e)) != SEM_OK)
            return st;
        return append(out, json_pack("{s:s,s:o}", "role", "user", "content", text), e);
    }
    json_decref(parts);
    return st;
}

/* One assistant turn: text, thinking (as reasoning_content), tool_use
 * (as tool_calls); redacted thinking is dropped. */
static sem_status assistant_turn(const json_t *content, const char *param, json_t *out,
                                 req_err *e)
{
    if (json_is_string(content))
        return append(out, json_pack("{s:s,s:O}", "role", "assistant", "content", content), e);
    json_t *m = json_pack("{s:s,s:[],s:[]}", "role", "assistant", "content", "tool_calls");
    if (!m)
        return out_of_memory(e);
    json_t *parts = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
    strbuf reasoning = {0};
    size_t i;
    const json_t *b;
    char p[HTTP_ERROR_PARAM_MAX + 32];
    sem_status st = SEM_OK;
    json_array_foreach(content, i, b)
    {
        snprintf(p, sizeof p, "%s[%zu]", param, i);
        const char *type = block_type(b, p, e);
        const json_t *th = json_object_get(b, "thinking");
        if (!type)
            st = e->err.status;
        else if (strcmp(type, "text") == 0)
            st = text_part(b, p, parts, e);
        else if (strcmp(type, "tool_use") == 0)
            st = tool_use(b, p, calls, e);
        else if (strcmp(type, "thinking") == 0 && json_is_string(th))
            strbuf_append(&reasoning, json_string_value(th), json_string_length(th));
        else if (strcmp(type, "thinking") == 0)
            st = req_fail(e, SEM_EREQUEST, p, "%s.thinking must be a string", p);
        else if (strcmp(type, "redacted_thinking") != 0)
            st = req_fail(e, SEM_EUNSUPPORTED, p,
                          "%s: content blocks of type \"%s\" are not supported in an assistant "
                          "turn (text, thinking, tool_use)",
                          p, type);
        if (st != SEM_OK)
            break;
    }
    if (st == SEM_OK && reasoning.len &&
        json_object_set_new(m, "reasoning_content", json_stringn(reasoning.data, reasoning.len)))
        st = out_of_memory(e);
    if (st == SEM_OK && reasoning.oom)
        st = out_of_memory(e);
    strbuf_free(&reasoning);
    if (st == SEM_OK && !json_array_size(calls))
        json_object_del(m, "tool_calls");
    if (st == SEM_OK) {
        json_t *text;
        json_incref(parts);
        if ((st = join_parts(parts, &text, e)) == SEM_OK &&
            json_object_set_new(m, "content", text))
            st = out_of_memory(e);
    }
    if (st != SEM_OK) {
        json_decref(m);
        return st;
    }
    return append(out, m, e);
}

/* A system message among the turns (Claude Code sends them): its text. */
static sem_status system_turn(const json_t *content, const char *param, json_t *out, req_err *e)
{
    json_t *text;
    sem_status st = text_content(content, param, &text, e);
    if (st != SEM_OK)
        return st;
    return append(out, json_pack("{s:s,s:o}", "role", "system", "content", text), e);
}

/* ---------------------------------------------------------------- cache breakpoints */

/* TTLs of cache_control in seconds: the default "5m" and "1h". */
#define CACHE_TTL_5M 300u
#define CACHE_TTL_1H 3600u

/* One cache_control field (param names it): NULL/absent is no mark, else
 * {"type": "ephemeral", "ttl"?: "5m"|"1h"}; *ttl_s 0 when there is none. */
static sem_status cache_control(const json_t *holder, const char *param, uint32_t *ttl_s,
                                req_err *e)
{
    const json_t *cc = json_object_get(holder, "cache_control");
    *ttl_s = 0;
    if (!cc || json_is_null(cc))
        return SEM_OK;
    if (!json_is_object(cc))
        return req_fail(e, SEM_EREQUEST, param, "%s must be an object", param);
    const json_t *type = json_object_get(cc, "type"), *ttl = json_object_get(cc, "ttl");
    if (!json_is_string(type) || strcmp(json_string_value(type), "ephemeral") != 0)
        return req_fail(e, SEM_EREQUEST, param, "%s.type must be \"ephemeral\"", param);
    *ttl_s = CACHE_TTL_5M;
    if (!ttl || json_is_null(ttl))
        return SEM_OK;
    if (json_is_string(ttl) && strcmp(json_string_value(ttl), "1h") == 0)
        *ttl_s = CACHE_TTL_1H;
    else if (!json_is_string(ttl) || strcmp(json_string_value(ttl), "5m") != 0)
        return req_fail(e, SEM_EREQUEST, param, "%s.ttl must be \"5m\" or \"1h\"", param);
    return SEM_OK;
}

/* Counts the breakpoints found so far (*found) and keeps the first
 * GEN_PINS_MAX in r. */
typedef struct mark_scan {
    an_request *r;
    size_t found;
} mark_scan;

/* The cache_control of every object of list (param: the list's field);
 * message: the messages[] index the list belongs to, -1 for tools/system. */
static sem_status scan_list(mark_scan *m, const json_t *list, const char *field, int message,
                            req_err *e)
{
    size_t i;
    const json_t *item;
    char param[HTTP_ERROR_PARAM_MAX];
    json_array_foreach(list, i, item)
    {
        uint32_t ttl;
        snprintf(param, sizeof param, "%s[%zu].cache_control", field, i);
        sem_status st = cache_control(item, param, &ttl, e);
        if (st != SEM_OK)
            return st;
        if (ttl && m->found++ < GEN_PINS_MAX)
            m->r->marks[m->r->n_marks++] = (an_cache_mark){.message = message, .ttl_s = ttl};
    }
    return SEM_OK;
}

/* Every cache_control breakpoint, in Anthropic's order (tools, system,
 * messages): each checked, at most GEN_PINS_MAX as Anthropic allows. */
static sem_status read_cache_marks(an_request *r, req_err *e)
{
    const json_t *b = r->body, *msgs = json_object_get(b, "messages"), *m;
    mark_scan scan = {.r = r};
    sem_status st = scan_list(&scan, json_object_get(b, "tools"), "tools", -1, e);
    if (st == SEM_OK)
        st = scan_list(&scan, json_object_get(b, "system"), "system", -1, e);
    size_t i;
    char field[64];
    json_array_foreach(msgs, i, m)
    {
        if (st != SEM_OK)
            break;
        snprintf(field, sizeof field, "messages[%zu].content", i);
        st = scan_list(&scan, json_object_get(m, "content"), field, (int)i, e);
    }
    if (st == SEM_OK && scan.found > GEN_PINS_MAX)
        st = req_fail(e, SEM_EREQUEST, "cache_control",
                      "A maximum of %d blocks with cache_control may be provided. Found %zu.",
                      GEN_PINS_MAX, scan.found);
    return st;
}

/* The marks of messages[message] end after the first n converted messages. */
static void mark_cut(an_request *r, int message, size_t n)
{
    for (size_t i = 0; i < r->n_marks; i++)
        if (r->marks[i].message == message)
            r->marks[i].cut = n;
}

/* Each mark's prompt position (a prefix rendered on its own and matched
 * against the whole prompt); marks that end at the same message (a tool
 * and a system block, two blocks of one message) are rendered once. */
static sem_status place_cache_marks(prompt_port pp, an_request *r, req_err *e)
{
    for (size_t i = 0; i < r->n_marks; i++) {
        size_t same = 0;
        while (same < i && r->marks[same].cut != r->marks[i].cut)
            same++;
        if (same < i) {
            r->marks[i].tokens = r->marks[same].tokens;
            continue;
        }
        sem_status st = chat_prefix_tokens(pp, &r->spec, r->marks[i].cut, r->prep.prompt,
                                           r->prep.n_prompt, &r->marks[i].tokens, e);
        if (st != SEM_OK)
            return st;
    }
    return SEM_OK;
}

/* The marks as the engine's pins: one per distinct position (the longest
 * TTL of those at it), none for a mark that matched nothing. */
static void cache_pins(const an_request *r, gen_params *p)
{
    p->n_pins = 0;
    for (size_t i = 0; i < r->n_marks; i++) {
        const an_cache_mark *m = &r->marks[i];
        uint32_t j = 0;
        while (j < p->n_pins && p->pins[j].tokens != m->tokens)
            j++;
        if (m->tokens == 0)
            continue;
        if (j == p->n_pins)
            p->pins[p->n_pins++] = (gen_pin){.tokens = m->tokens, .ttl_s = m->ttl_s};
        else if (m->ttl_s > p->pins[j].ttl_s)
            p->pins[j].ttl_s = m->ttl_s;
    }
}

static sem_status read_messages(const json_t *msgs, json_t *out, an_request *r, req_err *e)
{
    if (!msgs || json_is_null(msgs))
        return req_fail(e, SEM_EREQUEST, "messages", "messages is required");
    if (!json_is_array(msgs))
        return req_fail(e, SEM_EREQUEST, "messages", "messages must be a list");
    if (json_array_size(msgs) == 0)
        return req_fail(e, SEM_EREQUEST, "messages", "messages must not be empty");
    size_t i;
    const json_t *m;
    char param[64], sub[96];
    json_array_foreach(msgs, i, m)
    {
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return req_fail(e, SEM_EREQUEST, param, "%s must be an object", param);
        const json_t *role = json_object_get(m, "role");
        snprintf(sub, sizeof sub, "%s.role", param);
        if (!json_is_string(role))
            return req_fail(e, SEM_EREQUEST, sub, "%s must be a string", sub);
        const char *rv = json_string_value(role);
        int user = strcmp(rv, "user") == 0, system = strcmp(rv, "system") == 0;
        if (!user && !system && strcmp(rv, "assistant") != 0)
            return req_fail(e, SEM_EREQUEST, sub,
                            "%s is \"%s\"; expected user, assistant or system", sub, rv);
        snprintf(sub, sizeof sub, "%s.content", param);
        const json_t *content = json_object_get(m, "content");
        if (!content || json_is_null(content))
            return req_fail(e, SEM_EREQUEST, sub, "%s is required", sub);
        if (!json_is_string(content) && !json_is_array(content))
            return req_fail(e, SEM_EREQUEST, sub,
                            "%s must be a string or a list of content blocks", sub);
        sem_status st = user     ? user_turn(msgs, i, content, sub, out, e)
                         : system ? system_turn(content, sub, out, e)
                                  : assistant_turn(content, sub, out, e);
        if (st != SEM_OK)
            return st;
        mark_cut(r, (int)i, json_array_size(out));
    }
    return SEM_OK;
}

/* Anthropic tools ({name, description, input_schema}) as OpenAI function tools. */
static sem_status read_tools(const json_t *tools, json_t **out, req_err *e)
{
    if (!json_is_array(tools))
        return req_fail(e, SEM_EREQUEST, "tools", "tools must be a list");
    if (!(*out = json_array()))
        return out_of_memory(e);
    size_t i;
    const json_t *t;
    char param[64];
    json_array_foreach(tools, i, t)
    {
        snprintf(param, sizeof param, "tools[%zu]", i);
        const json_t *type = json_object_get(t, "type");
        if (!json_is_object(t))
            return req_fail(e, SEM_EREQUEST, param, "%s must be an object", param);
        if (json_is_string(type) && strcmp(json_string_value(type), "custom") != 0)
            return req_fail(e, SEM_EUNSUPPORTED, param,
                            "%s: tools of type \"%s\" (server tools) are not supported; give "
                            "client tools with name, description and input_schema",
                            param, json_string_value(type));
        const json_t *name = json_object_get(t, "name");
        if (!json_is_string(name))
            return req_fail(e, SEM_EREQUEST, param, "%s.name must be a string", param);
        const json_t *desc = json_object_get(t, "description"),
                     *schema = json_object_get(t, "input_schema");
        if (schema && !json_is_object(schema))
            return req_fail(e, SEM_EREQUEST, param, "%s.input_schema must be an object", param);
        json_t *fn = json_pack("{s:O}", "name", name);
        if (!fn || (json_is_string(desc) && json_object_set(fn, "description", (json_t *)desc)) ||
            (schema && json_object_set(fn, "parameters", (json_t *)schema))) {
            json_decref(fn);
            return out_of_memory(e);
        }
        sem_status st = append(*out, json_pack("{s:s,s:o}", "type", "function", "function", fn), e);
        if (st != SEM_OK)
            return st;
    }
    return chat_check_tools(*out, "tools", e);
}

/* tool_choice {"type": auto|any|tool|none, "name", "disable_parallel_tool_use"}. */
static sem_status read_tool_choice(const json_t *b, chat_spec *s, req_err *e)
{
    const json_t *tc = json_object_get(b, "tool_choice");
    s->choice = CHAT_TOOL_AUTO;
    s->parallel = 1;
    if (!tc || json_is_null(tc))
        return SEM_OK;
    const json_t *type = json_object_get(tc, "type");
    if (!json_is_object(tc) || !json_is_string(type))
        return req_fail(e, SEM_EREQUEST, "tool_choice",
                        "tool_choice must be an object with a string \"type\"");
    s->parallel = !json_is_true(json_object_get(tc, "disable_parallel_tool_use"));
    const char *t = json_string_value(type);
    if (strcmp(t, "auto") == 0)
        return SEM_OK;
    if (strcmp(t, "none") == 0)
        s->choice = CHAT_TOOL_NONE;
    else if (strcmp(t, "any") == 0)
        s->choice = CHAT_TOOL_REQUIRED;
    else if (strcmp(t, "tool") == 0) {
        const json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name))
            return req_fail(e, SEM_EREQUEST, "tool_choice.name",
                            "tool_choice of type \"tool\" needs a string \"name\"");
        s->choice = CHAT_TOOL_NAMED;
        s->tool_name = json_string_value(name);
    } else
        return req_fail(e, SEM_EREQUEST, "tool_choice.type",
                        "tool_choice.type is \"%s\"; expected auto, any, tool or none", t);
    return SEM_OK;
}

/* thinking {"type": "enabled", "budget_tokens": N} | {"type": "disabled"}
 * becomes the chat template's enable_thinking. */
static sem_status read_thinking(const json_t *b, json_t **kwargs, req_err *e)
{
    const json_t *th = json_object_get(b, "thinking");
    if (!th || json_is_null(th))
        return SEM_OK;
    const json_t *type = json_object_get(th, "type");
    if (!json_is_object(th) || !json_is_string(type))
        return req_fail(e, SEM_EREQUEST, "thinking",
                        "thinking must be an object with a string \"type\"");
    const char *t = json_string_value(type);
    int on = strcmp(t, "enabled") == 0 || strcmp(t, "adaptive") == 0;
    if (!on && strcmp(t, "disabled") != 0)
        return req_fail(e, SEM_EREQUEST, "thinking.type",
                        "thinking.type is \"%s\"; expected enabled, adaptive or disabled", t);
    const json_t *budget = json_object_get(th, "budget_tokens");
    if (budget && !json_is_null(budget) && (!json_is_integer(budget) || json_integer_value(budget) < 0))
        return req_fail(e, SEM_EREQUEST, "thinking.budget_tokens",
                        "thinking.budget_tokens must be a non-negative integer");
    *kwargs = json_pack("{s:b}", "enable_thinking", on);
    return *kwargs ? SEM_OK : out_of_memory(e);
}

/* output_config {"effort": .., "format": {"type": "json_schema", "schema": ..}}:
 * the effort is accepted and ignored; a format makes the answer a JSON
 * value valid against the schema. */
static sem_status read_output_config(const json_t *b, chat_spec *s, req_err *e)
{
    const json_t *oc = json_object_get(b, "output_config");
    if (!oc || json_is_null(oc))
        return SEM_OK;
    if (!json_is_object(oc))
        return req_fail(e, SEM_EREQUEST, "output_config", "output_config must be an object");
    const json_t *f = json_object_get(oc, "format");
    if (!f || json_is_null(f))
        return SEM_OK;
    const json_t *type = json_object_get(f, "type"), *schema = json_object_get(f, "schema");
    if (!json_is_object(f) || !json_is_string(type) ||
        strcmp(json_string_value(type), "json_schema") != 0 || !json_is_object(schema))
        return req_fail(e, SEM_EREQUEST, "output_config.format",
                        "output_config.format must be {\"type\": \"json_schema\", \"schema\": {...}}");
    s->format = CHAT_FORMAT_JSON_SCHEMA;
    s->schema = schema;
    s->schema_param = "output_config.format.schema";
    return SEM_OK;
}

static sem_status read_conversation(an_request *r, req_err *e)
{
    const json_t *b = r->body;
    r->messages = json_array();
    if (!r->messages)
        return out_of_memory(e);
    sem_status st = read_cache_marks(r, e);
    if (st != SEM_OK)
        return st;
    const json_t *system = json_object_get(b, "system");
    if (system && !json_is_null(system)) {
        json_t *c;
        st = text_content(system, "system", &c, e);
        if (st != SEM_OK)
            return st;
        if ((st = append(r->messages, json_pack("{s:s,s:o}", "role", "system", "content", c), e)))
            return st;
    }
    mark_cut(r, -1, json_array_size(r->messages)); /* tools and system */
    st = read_messages(json_object_get(b, "messages"), r->messages, r, e);
    if (st != SEM_OK)
        return st;
    const json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools) && (st = read_tools(tools, &r->tools, e)) != SEM_OK)
        return st;
    const json_t *cm = json_object_get(b, "context_management");
    if (cm && !json_is_null(cm) && !json_is_object(cm))
        return req_fail(e, SEM_EREQUEST, "context_management",
                        "context_management must be an object");
    r->spec = (chat_spec){.messages = r->messages, .tools = r->tools};
    if ((st = read_tool_choice(b, &r->spec, e)) || (st = read_thinking(b, &r->kwargs, e)) ||
        (st = read_output_config(b, &r->spec, e)))
        return st;
    r->spec.kwargs = r->kwargs;
    return SEM_OK;
}

sem_status anthropic_routes_read_request(const route_input *in, int count_only, an_request *r,
                                         req_err *e)
{
    *r = (an_request){0};
    sem_status st = req_body_json(in->body, in->len, &r->body, e);
    if (st != SEM_OK)
        return st;
    const json_t *b = r->body;
    if ((st = req_string(b, "model", &r->model, e)) != SEM_OK)
        return st;
    if (!count_only) {
        const json_t *mt = json_object_get(b, "max_tokens");
        if (!mt || json_is_null(mt))
            return req_fail(e, SEM_EREQUEST, "max_tokens", "max_tokens is required");
        int seed_given = 0;
        r->sampling = (gen_sampling){.temperature = 1.0f,
                                     .top_p = 1.0f,
                                     .min_p = 0.05f,
                                     .repeat_penalty = 1.0f,
                                     .repeat_last_n = 64,
                                     .seed = in->seed};
        if ((st = req_uint(b, "max_tokens", 1, UINT32_MAX, &r->max_tokens, e)) ||
            (st = req_bool(b, "stream", &r->stream, e)) ||
            (st = req_sampling(b, 1.0f, &r->sampling, &seed_given, e)) ||
            (st = req_stop(b, "stop_sequences", 0, r->stop, &r->n_stop, e)) ||
            (st = req_agent_id(&in->who, b, "metadata.user_id", r->agent, e)))
            return st;
    }
    if ((st = read_conversation(r, e)) != SEM_OK ||
        (st = chat_prepare(in->prompts, &r->spec, &r->prep, e)) != SEM_OK)
        return st;
    return count_only ? SEM_OK : place_cache_marks(in->prompts, r, e);
}

/* ---------------------------------------------------------------- responses */

/* Prompt tokens newly written, and of them those a 1h breakpoint covers. */
typedef struct an_creation {
    uint32_t total, one_hour;
} an_creation;

/*
 * With breakpoints, what they cover beyond the cached tokens (up to the
 * last one; up to the last 1h one counts as 1h, as Anthropic counts it).
 * Without, an agent's whole uncached prompt (its memory keeps it; no TTL,
 * reported as 5m) and nothing for an anonymous request.
 */
static an_creation creation_of(const http_gen *g, const gen_pin *pins, uint32_t n_pins,
                               uint32_t cached)
{
    if (n_pins == 0)
        return (an_creation){.total = g->has_agent ? g->n_prompt - cached : 0};
    uint32_t last = 0, last_1h = 0;
    for (uint32_t i = 0; i < n_pins; i++) {
        uint32_t at = pins[i].tokens < g->n_prompt ? pins[i].tokens : g->n_prompt;
        last = at > last ? at : last;
        if (pins[i].ttl_s >= CACHE_TTL_1H && at > last_1h)
            last_1h = at;
    }
    return (an_creation){.total = last > cached ? last - cached : 0,
                         .one_hour = last_1h > cached ? last_1h - cached : 0};
}

/* Usage in Anthropic's terms; the three input counts add up to the prompt. */
static json_t *usage_json(const http_gen *g, const gen_pin *pins, uint32_t n_pins,
                          const gen_result *res)
{
    uint32_t cached = res->cached_tokens > g->n_prompt ? g->n_prompt : res->cached_tokens;
    an_creation made = creation_of(g, pins, n_pins, cached);
    return json_pack("{s:I,s:I,s:I,s:{s:I,s:I},s:I}", "input_tokens",
                     (json_int_t)(g->n_prompt - cached - made.total),
                     "cache_creation_input_tokens", (json_int_t)made.total,
                     "cache_read_input_tokens", (json_int_t)cached, "cache_creation",
                     "ephemeral_5m_input_tokens", (json_int_t)(made.total - made.one_hour),
                     "ephemeral_1h_input_tokens", (json_int_t)made.one_hour, "output_tokens",
                     (json_int_t)res->completion_tokens);
}

/* stop_reason and stop_sequence of a finished request. */
static void stop_of(const gen_result *res, const char *const *stops, size_t n_stop, int calls,
                    const char **reason, const char **sequence)
{
    *sequence = NULL;
    if (res->finish == GEN_LENGTH) {
        *reason = "max_tokens";
    } else if (calls) {
        *reason = "tool_use";
    } else if (res->stop_index >= 0 && (size_t)res->stop_index < n_stop) {
        *reason = "stop_sequence";
        *sequence = stops[res->stop_index];
    } else {
        *reason = "end_turn";
    }
}

static json_t *message(const char *id, const char *model, json_t *content)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", id, "type", "message", "role", "assistant",
                     "model", model, "content", content);
}

/* A call's input: its arguments parsed ({} while they are cut short). */
static json_t *call_input(const chat_call *call)
{
    json_t *v = call->args.len ? json_loadb(call->args.data, call->args.len, 0, NULL) : NULL;
    if (json_is_object(v))
        return v;
    json_decref(v);
    return json_object();
}

/* Signatures make no claim here: thinking blocks a client sends back are
 * read by their text, never verified. */
#define THINKING_SIGNATURE "semantic"

/* ---------------------------------------------------------------- one generation */

typedef enum an_block { BLOCK_NONE, BLOCK_TEXT, BLOCK_THINKING, BLOCK_TOOL } an_block;

typedef struct an_call {
    http_api *api;
    http_exchange *x;
    http_gen g;
    int stream, started;
    char id[64];
    char *model;
    char *stops[REQ_STOP_MAX];
    size_t n_stop;
    strbuf text; /* whole: the text so far; stream: text read before the stream opened */
    gen_pin pins[GEN_PINS_MAX]; /* the cache breakpoints, for usage */
    uint32_t n_pins;
    chat_answer answer;
    /* the stream's content blocks */
    strbuf *out;      /* the stream step's output, while feeding */
    an_block open;    /* the open block's kind */
    int n_blocks;     /* blocks started; the open one is n_blocks - 1 */
} an_call;

static void call_free(void *self)
{
    an_call *c = self;
    http_gen_release(&c->g);
    strbuf_free(&c->text);
    chat_answer_free(&c->answer);
    for (size_t i = 0; i < c->n_stop; i++)
        free(c->stops[i]);
    free(c->model);
    free(c);
}

static void event(strbuf *out, const char *name, json_t *data)
{
    sse_json(out, name, data);
    json_decref(data);
}

static void close_block(an_call *c)
{
    if (c->open == BLOCK_NONE)
        return;
    int index = c->n_blocks - 1;
    if (c->open == BLOCK_THINKING)
        event(c->out, "content_block_delta",
              json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", index,
                        "delta", "type", "signature_delta", "signature", THINKING_SIGNATURE));
    event(c->out, "content_block_stop",
          json_pack("{s:s,s:i}", "type", "content_block_stop", "index", index));
    c->open = BLOCK_NONE;
}

/* Opens a block of kind k (closing another) unless one is open already. */
static void open_block(an_call *c, an_block k, json_t *block)
{
    if (c->open == k && k != BLOCK_TOOL) {
        json_decref(block);
        return;
    }
    close_block(c);
    event(c->out, "content_block_start",
          json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", c->n_blocks,
                    "content_block", block));
    c->open = k;
    c->n_blocks++;
}

static void block_delta(an_call *c, json_t *delta)
{
    event(c->out, "content_block_delta",
          json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", c->n_blocks - 1,
                    "delta", delta));
}

/* Content-block events for one parser event. */
static void on_event(void *user, const chat_event *ev, const chat_call *call)
{
    an_call *c = user;
    if (!c->out)
        return;
    switch (ev->type) {
    case CHAT_EV_TEXT:
        open_block(c, BLOCK_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        block_delta(c, json_pack("{s:s,s:o}", "type", "text_delta", "text",
                                 http_gen_text(ev->text, ev->len)));
        break;
    case CHAT_EV_REASONING:
        open_block(c, BLOCK_THINKING,
                   json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""));
        block_delta(c, json_pack("{s:s,s:o}", "type", "thinking_delta", "thinking",
                                 http_gen_text(ev->text, ev->len)));
        break;
    case CHAT_EV_TOOL_START:
        open_block(c, BLOCK_TOOL,
                   json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", call->id, "name",
                             call->name ? call->name : "", "input"));
        break;
    case CHAT_EV_TOOL_ARGS:
        block_delta(c, json_pack("{s:s,s:o}", "type", "input_json_delta", "partial_json",
                                 http_gen_text(ev->text, ev->len)));
        break;
    }
}

static void stream_text(an_call *c, strbuf *out, const char *text, size_t n)
{
    c->out = out;
    chat_answer_feed(&c->answer, text, n);
    c->out = NULL;
}

static int stream_finish(an_call *c, strbuf *out)
{
    http_gen_note_usage(&c->g, c->x);
    c->out = out;
    chat_answer_finish(&c->answer);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_note_error(c->x, he.message);
        event(out, "error", http_error_body(&he, HTTP_SHAPE_ANTHROPIC));
        http_exchange_stream_done(c->x);
        c->out = NULL;
        return 1;
    }
    if (c->n_blocks == 0) /* an empty answer is one empty text block */
        open_block(c, BLOCK_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
    close_block(c);
    c->out = NULL;
    const char *reason, *seq;
    stop_of(&c->g.result, (const char *const *)c->stops, c->n_stop, c->answer.n_calls > 0,
            &reason, &seq);
    json_t *d = json_pack("{s:s,s:{s:s},s:o}", "type", "message_delta", "delta", "stop_reason",
                          reason, "usage", usage_json(&c->g, c->pins, c->n_pins, &c->g.result));
    json_object_set_new(json_object_get(d, "delta"), "stop_sequence",
                        seq ? json_string(seq) : json_null());
    event(out, "message_delta", d);
    event(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    http_exchange_stream_done(c->x);
    return 1;
}

static int stream_next(void *self, strbuf *out, int idle)
{
    an_call *c = self;
    if (!c->started) {
        c->started = 1;
        gen_result now = http_gen_peek(&c->g);
        now.completion_tokens = 0;
        json_t *msg = message(c->id, c->model, json_array());
        json_object_set_new(msg, "stop_reason", json_null());
        json_object_set_new(msg, "stop_sequence", json_null());
        json_object_set_new(msg, "usage", usage_json(&c->g, c->pins, c->n_pins, &now));
        event(out, "message_start",
              json_pack("{s:s,s:o}", "type", "message_start", "message", msg));
        event(out, "ping", json_pack("{s:s}", "type", "ping"));
        stream_text(c, out, c->text.data, c->text.len);
        strbuf_free(&c->text);
        if (c->g.done)
            return stream_finish(c, out);
        return 0;
    }
    strbuf text = {0};
    http_gen_read(&c->g, &text);
    stream_text(c, out, text.data, text.len);
    strbuf_free(&text);
    if (c->g.done)
        return stream_finish(c, out);
    if (out->len == 0 && idle)
        event(out, "ping", json_pack("{s:s}", "type", "ping"));
    return 0;
}

static const http_stream_ops an_stream_ops = {stream_next, call_free};

/* The whole answer's content blocks: thinking, text, tool_use. */
static json_t *content_blocks(const chat_answer *a)
{
    json_t *blocks = json_array();
    if (a->reasoning.len)
        json_array_append_new(blocks, json_pack("{s:s,s:o,s:s}", "type", "thinking", "thinking",
                                                http_gen_text(a->reasoning.data, a->reasoning.len),
                                                "signature", THINKING_SIGNATURE));
    if (a->content.len || (!a->n_calls && !a->reasoning.len))
        json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "text", "text",
                                                http_gen_text(a->content.data, a->content.len)));
    for (uint32_t i = 0; i < a->n_calls; i++)
        json_array_append_new(blocks,
                              json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                        a->calls[i].id, "name",
                                        a->calls[i].name ? a->calls[i].name : "", "input",
                                        call_input(&a->calls[i])));
    return blocks;
}

static void reply_whole(void *self)
{
    an_call *c = self;
    http_exchange *x = c->x;
    http_gen *g = &c->g;
    http_gen_note_usage(g, x);
    if (!http_gen_ok(g)) {
        http_error he = http_gen_error(g);
        http_exchange_reply_error(x, &he);
        return;
    }
    chat_answer_feed(&c->answer, c->text.data, c->text.len);
    chat_answer_finish(&c->answer);
    const char *reason, *seq;
    stop_of(&g->result, (const char *const *)c->stops, c->n_stop, c->answer.n_calls > 0, &reason,
            &seq);
    json_t *o = message(c->id, c->model, content_blocks(&c->answer));
    json_object_set_new(o, "stop_reason", json_string(reason));
    json_object_set_new(o, "stop_sequence", seq ? json_string(seq) : json_null());
    json_object_set_new(o, "usage", usage_json(g, c->pins, c->n_pins, &g->result));
    http_gen_add_timing(g, x);
    http_exchange_reply_json(x, 200, o);
}

static const http_gen_route an_route = {reply_whole, call_free, &an_stream_ops};

static void call_step(void *self, http_exchange *x)
{
    an_call *c = self;
    http_gen_step(&c->g, &c->text, c->stream, x, &an_route, c);
}

static const http_wait_ops an_wait_ops = {call_step, call_free};

/* ---------------------------------------------------------------- handlers */

/* The route's input: the exchange's body and header, a fresh seed. */
static route_input input_of(http_api *api, const http_backend *be, http_exchange *x)
{
    route_input in = {.who = {.agent_header = http_exchange_header(x, "X-Agent-ID"),
                              .session_header = http_exchange_header(x, "X-Claude-Code-Session-Id")},
                      .prompts = be->prompts,
                      .seed = http_api_random(api)};
    in.body = http_exchange_body(x, &in.len);
    return in;
}

void anthropic_routes_messages(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    an_request r;
    req_err e = {0};
    route_input in = input_of(api, be, x);
    sem_status st = anthropic_routes_read_request(&in, 0, &r, &e);
    http_exchange_note_agent(x, r.agent);
    if (st != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        anthropic_routes_request_free(&r);
        return;
    }
    an_call *c = calloc(1, sizeof *c);
    int ok = c != NULL;
    if (c) {
        *c = (an_call){.api = api, .x = x, .stream = r.stream};
        ok = chat_answer_init(&c->answer, &r.prep, api, "toolu_") == SEM_OK &&
             (c->model = strdup(r.model ? r.model : be->model_id)) != NULL;
        c->answer.on_event = on_event;
        c->answer.user = c;
        for (size_t i = 0; ok && i < r.n_stop; i++)
            ok = (c->stops[c->n_stop++] = strdup(r.stop[i])) != NULL;
    }
    if (!ok) {
        if (c)
            call_free(c);
        anthropic_routes_request_free(&r);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    /* max_tokens beyond the context is clipped to what is left of it:
     * clients ask for their model's largest output, whatever the model. */
    uint32_t n_ctx = be->prompts.ops->n_ctx(be->prompts.self);
    uint32_t n_prompt = (uint32_t)r.prep.n_prompt;
    uint32_t room = n_prompt < n_ctx ? n_ctx - n_prompt : 1;
    gen_params p = {.sampling = r.sampling,
                    .max_tokens = r.max_tokens < room ? r.max_tokens : room,
                    .stop = r.stop,
                    .n_stop = r.n_stop};
    chat_prepared_params(&r.prep, &p);
    cache_pins(&r, &p);
    memcpy(c->pins, p.pins, sizeof c->pins);
    c->n_pins = p.n_pins;
    if (http_gen_submit(&c->g, api, be, x, r.agent, &p, &e) != SEM_OK) {
        call_free(c);
        http_api_reply_error(api, x, &e.err, e.param);
        anthropic_routes_request_free(&r);
        return;
    }
    anthropic_routes_request_free(&r); /* the engine copied the prompt and the stop strings */
    http_api_new_id(api, "msg_", c->id, sizeof c->id);
    http_exchange_wait(x, &an_wait_ops, c);
}

void anthropic_routes_count_tokens(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    an_request r;
    req_err e = {0};
    route_input in = input_of(api, be, x);
    if (anthropic_routes_read_request(&in, 1, &r, &e) != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        anthropic_routes_request_free(&r);
        return;
    }
    http_exchange_reply_json(x, 200,
                             json_pack("{s:i}", "input_tokens", (json_int_t)r.prep.n_prompt));
    anthropic_routes_request_free(&r);
}
