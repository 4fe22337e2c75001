/*
 * openai_routes.c - the OpenAI API: POST /v1/chat/completions,
 * POST /v1/completions, GET /v1/models and /v1/models/{id}.
 *
 * A request is read into an oa_request (fields, sampling, stop strings,
 * agent, prompt tokens), submitted, and answered in OpenAI's shapes:
 *
 *   chat, whole     {"object":"chat.completion","choices":[{"message":{...},
 *                    "finish_reason":"stop"}],"usage":{...,"prompt_tokens_details":
 *                    {"cached_tokens":N}}}
 *   chat, stream    a chunk with delta {"role":"assistant","content":""}, chunks
 *                   with content deltas, a chunk with finish_reason, a usage chunk
 *                   (choices []) when stream_options.include_usage, data: [DONE]
 *   completions     the same with "text_completion" objects and choices[].text
 *
 * A stream opens once the first text is ready (or the request ended): an
 * error before any text is an ordinary HTTP error; one after it ends the
 * stream with data: {"error":{...}} and no [DONE].
 *
 * After the submit, one oa_call carries the request: the exchange's wait
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

/* ---------------------------------------------------------------- the request */

static gen_sampling default_sampling(uint64_t seed)
{
    return (gen_sampling){.temperature = 1.0f,
                          .top_p = 1.0f,
                          .min_p = 0.05f,
                          .top_k = 0,
                          .repeat_penalty = 1.0f,
                          .repeat_last_n = 64,
                          .seed = seed};
}

/* logprobs: chat's boolean with top_logprobs 0..20; completions' integer 0..5. */
static sem_status read_logprobs(const json_t *b, int chat, int *top, req_err *e)
{
    const json_t *lp = json_object_get(b, "logprobs");
    sem_status st;
    uint32_t n = 0;
    *top = -1;
    if (!lp || json_is_null(lp) || json_is_false(lp))
        return SEM_OK;
    if (!chat) {
        if ((st = req_uint(b, "logprobs", 0, 5, &n, e)) != SEM_OK)
            return st;
        *top = (int)n;
        return SEM_OK;
    }
    if (!json_is_true(lp))
        return req_fail(e, SEM_EREQUEST, "logprobs", "logprobs must be a boolean");
    if ((st = req_uint(b, "top_logprobs", 0, GEN_TOP_LOGPROBS_MAX, &n, e)) != SEM_OK)
        return st;
    *top = (int)n;
    return SEM_OK;
}

/* Fields shared by chat and completions. */
static sem_status read_common(const route_input *in, oa_request *r, req_err *e)
{
    const json_t *b = r->body;
    sem_status st;
    uint32_t n = 1, n_ctx = in->prompts.ops->n_ctx(in->prompts.self);
    int seed_given = 0;
    r->sampling = default_sampling(in->seed);
    if ((st = req_string(b, "model", &r->model, e)) || (st = req_uint(b, "n", 1, 128, &n, e)) ||
        (st = req_bool(b, "stream", &r->stream, e)))
        return st;
    if (n != 1)
        return req_fail(e, SEM_EUNSUPPORTED, "n", "n is %u; only n = 1 is supported", n);
    const json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return req_fail(e, SEM_EREQUEST, "stream_options", "stream_options must be an object");
        if (!r->stream)
            return req_fail(e, SEM_EREQUEST, "stream_options",
                            "stream_options is only allowed when stream is true");
        if ((st = req_bool(so, "include_usage", &r->include_usage, e)) != SEM_OK) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            return st;
        }
    }
    const char *mt_field = json_object_get(b, "max_completion_tokens") &&
                                   !json_is_null(json_object_get(b, "max_completion_tokens"))
                               ? "max_completion_tokens"
                               : "max_tokens";
    if (json_object_get(b, mt_field) && !json_is_null(json_object_get(b, mt_field))) {
        if ((st = req_uint(b, mt_field, 1, n_ctx, &r->max_tokens, e)) != SEM_OK)
            return st;
        r->max_tokens_given = 1;
    }
    if ((st = req_sampling(b, 2.0f, &r->sampling, &seed_given, e)) ||
        (st = req_stop(b, "stop", 1, r->stop, &r->n_stop, e)) ||
        (st = read_logprobs(b, r->chat, &r->top_logprobs, e)))
        return st;
    return req_agent_id(&in->who, b, "prompt_cache_key", r->agent, e);
}

/* tool_choice: "none", "auto", "required" or {"type": "function",
 * "function": {"name": ...}}; parallel_tool_calls. */
static sem_status read_tool_choice(const json_t *b, chat_spec *s, req_err *e)
{
    const json_t *tc = json_object_get(b, "tool_choice");
    int parallel = 1;
    sem_status st = req_bool(b, "parallel_tool_calls", &parallel, e);
    if (st != SEM_OK)
        return st;
    s->parallel = parallel;
    s->choice = CHAT_TOOL_AUTO;
    if (!tc || json_is_null(tc))
        return SEM_OK;
    if (json_is_string(tc)) {
        const char *v = json_string_value(tc);
        if (strcmp(v, "auto") == 0)
            return SEM_OK;
        if (strcmp(v, "none") == 0)
            s->choice = CHAT_TOOL_NONE;
        else if (strcmp(v, "required") == 0)
            s->choice = CHAT_TOOL_REQUIRED;
        else
            return req_fail(e, SEM_EREQUEST, "tool_choice",
                            "tool_choice is \"%s\"; expected none, auto, required or "
                            "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                            v);
        return SEM_OK;
    }
    const json_t *name = json_object_get(json_object_get(tc, "function"), "name");
    if (!json_is_object(tc) || !json_is_string(json_object_get(tc, "type")) ||
        strcmp(json_string_value(json_object_get(tc, "type")), "function") != 0 ||
        !json_is_string(name))
        return req_fail(e, SEM_EREQUEST, "tool_choice",
                        "tool_choice must be none, auto, required or {\"type\": \"function\", "
                        "\"function\": {\"name\": ...}}");
    s->choice = CHAT_TOOL_NAMED;
    s->tool_name = json_string_value(name);
    return SEM_OK;
}

/* response_format: text, json_object, or json_schema {name, schema, strict}. */
static sem_status read_response_format(const json_t *b, chat_spec *s, req_err *e)
{
    const json_t *rf = json_object_get(b, "response_format");
    s->format = CHAT_FORMAT_TEXT;
    if (!rf || json_is_null(rf))
        return SEM_OK;
    const json_t *type = json_object_get(rf, "type");
    if (!json_is_object(rf) || !json_is_string(type))
        return req_fail(e, SEM_EREQUEST, "response_format",
                        "response_format must be an object with a string \"type\"");
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0)
        return SEM_OK;
    if (strcmp(t, "json_object") == 0) {
        s->format = CHAT_FORMAT_JSON_OBJECT;
        return SEM_OK;
    }
    if (strcmp(t, "json_schema") != 0)
        return req_fail(e, SEM_EUNSUPPORTED, "response_format.type",
                        "response_format.type is \"%s\"; expected text, json_object or "
                        "json_schema",
                        t);
    const json_t *js = json_object_get(rf, "json_schema");
    if (!json_is_object(js))
        return req_fail(e, SEM_EREQUEST, "response_format.json_schema",
                        "response_format.json_schema must be an object with a \"schema\"");
    const json_t *schema = json_object_get(js, "schema");
    if (schema && !json_is_object(schema) && !json_is_boolean(schema))
        return req_fail(e, SEM_EREQUEST, "response_format.json_schema.schema",
                        "response_format.json_schema.schema must be a JSON Schema object");
    int strict = 0;
    sem_status st = req_bool(js, "strict", &strict, e);
    if (st != SEM_OK) {
        snprintf(e->param, sizeof e->param, "response_format.json_schema.strict");
        return st;
    }
    s->format = CHAT_FORMAT_JSON_SCHEMA;
    s->schema = schema;
    s->strict = strict;
    s->schema_param = "response_format.json_schema.schema";
    return SEM_OK;
}

static sem_status read_chat(const prompt_port *prompts, oa_request *r, req_err *e)
{
    const json_t *b = r->body;
    const json_t *messages = json_object_get(b, "messages");
    sem_status st = req_chat_messages(messages, "messages", e);
    if (st != SEM_OK)
        return st;
    chat_spec s = {.messages = messages};
    const json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools)) {
        if ((st = chat_check_tools(tools, "tools", e)) != SEM_OK)
            return st;
        s.tools = tools;
    }
    if ((st = read_tool_choice(b, &s, e)) || (st = read_response_format(b, &s, e)))
        return st;
    const json_t *kwargs = json_object_get(b, "chat_template_kwargs");
    if (kwargs && !json_is_null(kwargs) && !json_is_object(kwargs))
        return req_fail(e, SEM_EREQUEST, "chat_template_kwargs",
                        "chat_template_kwargs must be an object");
    s.kwargs = json_is_object(kwargs) ? kwargs : NULL;
    return chat_prepare(*prompts, &s, &r->prep, e);
}

static sem_status read_completion(const prompt_port *prompts, oa_request *r, req_err *e)
{
    const json_t *b = r->body;
    const json_t *p = json_object_get(b, "prompt");
    const json_t *bo = json_object_get(b, "best_of");
    if (json_is_integer(bo) && json_integer_value(bo) != 1)
        return req_fail(e, SEM_EUNSUPPORTED, "best_of", "only best_of = 1 is supported");
    const json_t *echo = json_object_get(b, "echo");
    if (json_is_true(echo))
        return req_fail(e, SEM_EUNSUPPORTED, "echo", "echo is not supported");
    const json_t *suffix = json_object_get(b, "suffix");
    if (suffix && !json_is_null(suffix))
        return req_fail(e, SEM_EUNSUPPORTED, "suffix", "suffix is not supported");
    if (!p || json_is_null(p))
        return req_fail(e, SEM_EREQUEST, "prompt", "prompt is required");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (json_is_string(p)) {
        sem_err err = {0};
        if (prompts->ops->text(prompts->self, json_string_value(p), json_string_length(p),
                               &r->prep.prompt, &r->prep.n_prompt, &err) != SEM_OK) {
            e->err = err;
            snprintf(e->param, sizeof e->param, "prompt");
            return err.status;
        }
        if (r->prep.n_prompt == 0)
            return req_fail(e, SEM_EREQUEST, "prompt", "prompt is empty");
        return SEM_OK;
    }
    if (json_is_array(p) && json_array_size(p) > 0 && json_is_integer(json_array_get(p, 0))) {
        /* A list of token ids. */
        size_t n = json_array_size(p), i;
        const json_t *t;
        r->prep.prompt = malloc(n * sizeof *r->prep.prompt);
        if (!r->prep.prompt)
            return req_fail(e, SEM_ENOMEM, "prompt", "out of memory for %zu tokens", n);
        json_array_foreach(p, i, t)
        {
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > INT32_MAX)
                return req_fail(e, SEM_EREQUEST, "prompt",
                                "prompt[%zu] must be a token id (a non-negative integer)", i);
            r->prep.prompt[i] = (int32_t)json_integer_value(t);
        }
        r->prep.n_prompt = n;
        return SEM_OK;
    }
    if (json_is_array(p))
        return req_fail(e, SEM_EUNSUPPORTED, "prompt",
                        "prompt must be a string, a list of one string or a list of token ids "
                        "(batches of prompts are not supported)");
    return req_fail(e, SEM_EREQUEST, "prompt", "prompt must be a string or a list of token ids");
}

sem_status openai_routes_read_request(const route_input *in, int chat, oa_request *r,
                                      req_err *e)
{
    *r = (oa_request){.chat = chat, .top_logprobs = -1};
    sem_status st = req_body_json(in->body, in->len, &r->body, e);
    if (st == SEM_OK)
        st = read_common(in, r, e);
    if (st == SEM_OK)
        st = chat ? read_chat(&in->prompts, r, e) : read_completion(&in->prompts, r, e);
    return st;
}

void openai_routes_request_free(oa_request *r)
{
    json_decref(r->body);
    chat_prepared_free(&r->prep);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- responses */

static json_t *usage_json(const http_gen *g)
{
    uint32_t p = g->n_prompt, c = g->result.completion_tokens;
    return json_pack("{s:i,s:i,s:i,s:{s:i},s:{s:i}}", "prompt_tokens", (json_int_t)p,
                     "completion_tokens", (json_int_t)c, "total_tokens", (json_int_t)(p + c),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)g->result.cached_tokens,
                     "completion_tokens_details", "reasoning_tokens", (json_int_t)0);
}

static json_t *envelope(http_api *api, const char *id, const char *object, int64_t created,
                        const char *model)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", id, "object", object, "created",
                     (json_int_t)created, "model", model, "system_fingerprint",
                     api->o.version ? api->o.version : "semantic");
}

/* ---------------------------------------------------------------- one generation */

typedef struct oa_call {
    http_api *api;
    http_exchange *x;
    http_gen g;
    int chat, stream, include_usage, started;
    int top_logprobs;    /* -1: none */
    uint32_t n_logprobs; /* tokens whose logprobs were sent (stream) */
    char id[64];
    char *model;
    int64_t created;
    strbuf text;       /* text read before the stream opened, or the whole text */
    chat_answer answer; /* chat: the text split into content, reasoning and calls */
    strbuf *out;       /* the stream step's output, while feeding */
} oa_call;

static void call_free(void *self)
{
    oa_call *c = self;
    http_gen_release(&c->g);
    strbuf_free(&c->text);
    if (c->chat)
        chat_answer_free(&c->answer);
    free(c->model);
    free(c);
}

/* One token's text as OpenAI shows it: token, its bytes, its logprob. */
static json_t *token_json(const prompt_port *pp, int32_t tok, float logprob)
{
    size_t n = 0;
    const char *piece = pp->ops->piece(pp->self, tok, &n);
    if (!piece)
        n = 0;
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(bytes, json_integer((unsigned char)piece[i]));
    return json_pack("{s:o,s:f,s:o}", "token", http_gen_text(piece ? piece : "", n), "logprob",
                     (double)logprob, "bytes", bytes);
}

/* Logprobs of generated tokens [from, ...) in chat's shape
 * {"content": [{token, logprob, bytes, top_logprobs}]} (NULL: none). */
static json_t *chat_logprobs(oa_call *c, uint32_t from, uint32_t *next)
{
    const http_backend *be = c->g.be;
    json_t *content = json_array();
    gen_logprob lp[16];
    uint32_t n;
    *next = from;
    while ((n = be->gen.ops->logprobs(be->gen.self, c->g.req, *next, lp, 16)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            json_t *t = token_json(&be->prompts, lp[i].token, lp[i].logprob);
            json_t *top = json_array();
            for (uint32_t k = 0; k < lp[i].n_top && (int)k < c->top_logprobs; k++)
                json_array_append_new(
                    top, token_json(&be->prompts, lp[i].top[k].token, lp[i].top[k].logprob));
            json_object_set_new(t, "top_logprobs", top);
            json_array_append_new(content, t);
        }
        *next += n;
    }
    return json_pack("{s:o,s:n}", "content", content, "refusal");
}

/* Logprobs in the completions shape {"tokens", "token_logprobs", "top_logprobs"}. */
static json_t *text_logprobs(oa_call *c, uint32_t from, uint32_t *next)
{
    const http_backend *be = c->g.be;
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array();
    gen_logprob lp[16];
    uint32_t n;
    *next = from;
    while ((n = be->gen.ops->logprobs(be->gen.self, c->g.req, *next, lp, 16)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            size_t len = 0;
            const char *piece = be->prompts.ops->piece(be->prompts.self, lp[i].token, &len);
            json_array_append_new(tokens, http_gen_text(piece ? piece : "", piece ? len : 0));
            json_array_append_new(lps, json_real(lp[i].logprob));
            json_t *top = json_object();
            for (uint32_t k = 0; k < lp[i].n_top && (int)k < c->top_logprobs; k++) {
                const char *tp = be->prompts.ops->piece(be->prompts.self, lp[i].top[k].token, &len);
                json_t *key = http_gen_text(tp ? tp : "", tp ? len : 0);
                json_object_set_new(top, json_string_value(key), json_real(lp[i].top[k].logprob));
                json_decref(key);
            }
            json_array_append_new(tops, top);
        }
        *next += n;
    }
    return json_pack("{s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs",
                     tops);
}

static json_t *logprobs_since(oa_call *c, uint32_t from, uint32_t *next)
{
    if (c->top_logprobs < 0) {
        *next = from;
        return json_null();
    }
    return c->chat ? chat_logprobs(c, from, next) : text_logprobs(c, from, next);
}

static const char *finish_reason(const oa_call *c)
{
    if (c->g.result.finish == GEN_LENGTH)
        return "length";
    return c->chat && c->answer.n_calls ? "tool_calls" : "stop";
}

static json_t *chunk(oa_call *c, json_t *delta_or_text, const char *finish)
{
    json_t *o = envelope(c->api, c->id, c->chat ? "chat.completion.chunk" : "text_completion",
                         c->created, c->model);
    json_t *choice = json_pack("{s:i,s:n}", "index", 0, "logprobs");
    json_object_set_new(choice, c->chat ? "delta" : "text", delta_or_text);
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    if (c->include_usage)
        json_object_set_new(o, "usage", json_null());
    return o;
}

static void emit(strbuf *out, json_t *o)
{
    sse_json(out, NULL, o);
    json_decref(o);
}

/* A chat delta for one parser event. */
static void on_event(void *user, const chat_event *ev, const chat_call *call)
{
    oa_call *c = user;
    json_t *delta = NULL;
    if (!c->out)
        return; /* a whole reply reads the assembled answer instead */
    switch (ev->type) {
    case CHAT_EV_TEXT:
        delta = json_pack("{s:o}", "content", http_gen_text(ev->text, ev->len));
        break;
    case CHAT_EV_REASONING:
        delta = json_pack("{s:o}", "reasoning_content", http_gen_text(ev->text, ev->len));
        break;
    case CHAT_EV_TOOL_START:
        delta = json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index",
                          (json_int_t)ev->tool_index, "id", call->id, "type", "function",
                          "function", "name", call->name ? call->name : "", "arguments", "");
        break;
    case CHAT_EV_TOOL_ARGS:
        delta = json_pack("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index",
                          (json_int_t)ev->tool_index, "function", "arguments",
                          http_gen_text(ev->text, ev->len));
        break;
    }
    if (delta)
        emit(c->out, chunk(c, delta, NULL));
}

/* Streams newly read text: chat through the parser, completions as is. */
static void stream_text(oa_call *c, strbuf *out, const char *text, size_t n)
{
    if (c->chat) {
        c->out = out;
        chat_answer_feed(&c->answer, text, n);
        c->out = NULL;
    } else if (n) {
        emit(out, chunk(c, http_gen_text(text, n), NULL));
    }
    if (c->top_logprobs >= 0) {
        uint32_t next;
        json_t *lp = logprobs_since(c, c->n_logprobs, &next);
        if (next > c->n_logprobs) {
            json_t *o = chunk(c, c->chat ? json_object() : json_string(""), NULL);
            json_object_set_new(json_array_get(json_object_get(o, "choices"), 0), "logprobs", lp);
            emit(out, o);
        } else {
            json_decref(lp);
        }
        c->n_logprobs = next;
    }
}

static int stream_finish(oa_call *c, strbuf *out)
{
    http_gen_note_usage(&c->g, c->x);
    if (c->chat) {
        c->out = out;
        chat_answer_finish(&c->answer);
        c->out = NULL;
    }
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_note_error(c->x, he.message);
        emit(out, http_error_body(&he, HTTP_SHAPE_OPENAI));
        http_exchange_stream_done(c->x);
        return 1;
    }
    emit(out, chunk(c, c->chat ? json_object() : json_string(""), finish_reason(c)));
    if (c->include_usage) {
        json_t *o = envelope(c->api, c->id, c->chat ? "chat.completion.chunk" : "text_completion",
                             c->created, c->model);
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_json(&c->g));
        emit(out, o);
    }
    sse_event(out, NULL, "[DONE]", 6);
    http_exchange_stream_done(c->x);
    return 1;
}

static int stream_next(void *self, strbuf *out, int idle)
{
    oa_call *c = self;
    if (!c->started) {
        c->started = 1;
        if (c->chat)
            emit(out, chunk(c, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL));
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
        sse_comment(out, "keep-alive");
    return 0;
}

static const http_stream_ops oa_stream_ops = {stream_next, call_free};

/* The whole chat message: content (null when only calls), reasoning, calls. */
static json_t *chat_message(oa_call *c)
{
    chat_answer *a = &c->answer;
    json_t *m = json_pack("{s:s,s:n}", "role", "assistant", "refusal");
    json_object_set_new(m, "content",
                        a->content.len || !a->n_calls ? http_gen_text(a->content.data, a->content.len)
                                                      : json_null());
    if (a->reasoning.len)
        json_object_set_new(m, "reasoning_content",
                            http_gen_text(a->reasoning.data, a->reasoning.len));
    if (a->n_calls) {
        json_t *calls = json_array();
        for (uint32_t i = 0; i < a->n_calls; i++)
            json_array_append_new(
                calls, json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", a->calls[i].id, "type", "function",
                                 "function", "name", a->calls[i].name ? a->calls[i].name : "",
                                 "arguments",
                                 http_gen_text(a->calls[i].args.data, a->calls[i].args.len)));
        json_object_set_new(m, "tool_calls", calls);
    }
    return m;
}

static void reply_whole(void *self)
{
    oa_call *c = self;
    http_exchange *x = c->x;
    http_gen *g = &c->g;
    http_gen_note_usage(g, x);
    if (!http_gen_ok(g)) {
        http_error he = http_gen_error(g);
        http_exchange_reply_error(x, &he);
        return;
    }
    json_t *o = envelope(c->api, c->id, c->chat ? "chat.completion" : "text_completion",
                         c->created, c->model);
    json_t *choice;
    uint32_t next;
    if (c->chat) {
        chat_answer_feed(&c->answer, c->text.data, c->text.len);
        chat_answer_finish(&c->answer);
        choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", chat_message(c),
                           "logprobs", logprobs_since(c, 0, &next), "finish_reason",
                           finish_reason(c));
    } else {
        choice = json_pack("{s:o,s:i,s:o,s:s}", "text", http_gen_text(c->text.data, c->text.len),
                           "index", 0, "logprobs", logprobs_since(c, 0, &next), "finish_reason",
                           finish_reason(c));
    }
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    json_object_set_new(o, "usage", usage_json(g));
    http_gen_add_timing(g, x);
    http_exchange_reply_json(x, 200, o);
}

static const http_gen_route oa_route = {reply_whole, call_free, &oa_stream_ops};

static void call_step(void *self, http_exchange *x)
{
    oa_call *c = self;
    http_gen_step(&c->g, &c->text, c->stream, x, &oa_route, c);
}

static const http_wait_ops oa_wait_ops = {call_step, call_free};

/* ---------------------------------------------------------------- handlers */

static oa_call *new_call(http_api *api, http_exchange *x, const oa_request *r, const char *model)
{
    oa_call *c = calloc(1, sizeof *c);
    char *model_copy = strdup(model);
    if (!c || !model_copy ||
        (r->chat && chat_answer_init(&c->answer, &r->prep, api, "call_") != SEM_OK)) {
        if (c && r->chat)
            chat_answer_free(&c->answer);
        free(c);
        free(model_copy);
        return NULL;
    }
    chat_answer a = c->answer;
    *c = (oa_call){.api = api,
                   .x = x,
                   .chat = r->chat,
                   .stream = r->stream,
                   .include_usage = r->include_usage,
                   .top_logprobs = r->top_logprobs,
                   .model = model_copy,
                   .created = http_unix_now(),
                   .answer = a};
    c->answer.on_event = on_event;
    c->answer.user = c;
    return c;
}

static void generate(http_api *api, http_exchange *x, int chat)
{
    const http_backend *be = http_api_model(x);
    route_input in = {.who = {.agent_header = http_exchange_header(x, "X-Agent-ID"),
                              .session_header = http_exchange_header(x, "X-Claude-Code-Session-Id")},
                      .prompts = be->prompts,
                      .seed = http_api_random(api)};
    in.body = http_exchange_body(x, &in.len);
    oa_request r;
    req_err e = {0};
    sem_status st = openai_routes_read_request(&in, chat, &r, &e);
    http_exchange_note_agent(x, r.agent);
    if (st != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        openai_routes_request_free(&r);
        return;
    }
    uint32_t n_ctx = be->prompts.ops->n_ctx(be->prompts.self);
    uint32_t n_prompt = (uint32_t)r.prep.n_prompt;
    if (!r.max_tokens_given) /* chat: the rest of the context; completions: OpenAI's 16 */
        r.max_tokens = !chat ? 16 : n_prompt < n_ctx ? n_ctx - n_prompt : 1;
    oa_call *c = new_call(api, x, &r, r.model ? r.model : be->model_id);
    if (!c) {
        openai_routes_request_free(&r);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    gen_params p = {.sampling = r.sampling,
                    .max_tokens = r.max_tokens,
                    .stop = r.stop,
                    .n_stop = r.n_stop,
                    .logprobs = r.top_logprobs >= 0,
                    .top_logprobs = r.top_logprobs >= 0 ? (uint32_t)r.top_logprobs : 0};
    chat_prepared_params(&r.prep, &p);
    if (http_gen_submit(&c->g, api, be, x, r.agent, &p, &e) != SEM_OK) {
        if (e.err.status == SEM_ETOOLARGE && !r.max_tokens_given)
            e.param[0] = '\0';
        call_free(c);
        http_api_reply_error(api, x, &e.err, e.param);
        openai_routes_request_free(&r);
        return;
    }
    openai_routes_request_free(&r); /* the engine copied the prompt, stops and grammar */
    http_api_new_id(api, chat ? "chatcmpl-" : "cmpl-", c->id, sizeof c->id);
    http_exchange_wait(x, &oa_wait_ops, c);
}

void openai_routes_chat_completions(http_api *api, http_exchange *x) { generate(api, x, 1); }
void openai_routes_completions(http_api *api, http_exchange *x) { generate(api, x, 0); }

static const char *const state_names[] = {"available", "loading", "loaded"};

static json_t *model_object(http_api *api, const http_model_info *m)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:I}", "id", m->id, "object", "model", "created",
                          (json_int_t)api->started_unix, "owned_by", "semantic", "state",
                          state_names[m->state], "size_bytes", (json_int_t)m->file_bytes);
    if (!o)
        return NULL;
    if (m->n_ctx) {
        json_object_set_new(o, "context_length", json_integer(m->n_ctx));
        json_object_set_new(o, "context_length_train", json_integer(m->n_ctx_train));
        json_object_set_new(o, "architecture", json_string(m->arch));
        json_object_set_new(o, "chat_template", json_string(m->chat_template));
    }
    if (m->state == HTTP_MODEL_LOADED) {
        json_object_set_new(o, "ram_bytes", json_integer((json_int_t)m->ram_bytes));
        json_object_set_new(o, "loaded_at", json_integer(m->loaded_at));
    }
    json_object_set_new(o, "running", json_integer(m->running));
    json_object_set_new(o, "loads", json_integer(m->loads));
    if (m->last_used)
        json_object_set_new(o, "last_used", json_integer(m->last_used));
    json_object_set_new(o, "default", json_boolean(m->is_default));
    if (m->error[0])
        json_object_set_new(o, "error", json_string(m->error));
    return o;
}

/* Every served model's figures; NULL (reply made) when there are none yet. */
static http_model_info *models_info(http_api *api, http_exchange *x, size_t *n)
{
    const http_models *m = http_api_models(api);
    enum { MAX = 256 };
    http_model_info *list = m ? calloc(MAX, sizeof *list) : NULL;
    if (!list) {
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL,
                                        m ? "out of memory" : "the server is starting");
        http_exchange_reply_error(x, &he);
        return NULL;
    }
    *n = m->ops->list(m->self, list, MAX);
    if (*n > MAX)
        *n = MAX;
    return list;
}

void openai_routes_models_list(http_api *api, http_exchange *x)
{
    size_t n = 0;
    http_model_info *list = models_info(api, x, &n);
    if (!list)
        return;
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, model_object(api, &list[i]));
    free(list);
    http_exchange_reply_json(x, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

/* GET /v1/models/{id}: a served model by its name, or by an alias of it
 * (the served model is shown, under its own id). */
void openai_routes_models_get(http_api *api, http_exchange *x)
{
    const http_models *m = http_api_models(api);
    char served[HTTP_MODEL_NAME_MAX];
    sem_err err = {0};
    const char *want = http_exchange_param(x);
    size_t n = 0;
    http_model_info *list = models_info(api, x, &n);
    if (!list)
        return;
    sem_status st = m->ops->resolve(m->self, want, 0, served, &err);
    for (size_t i = 0; st == SEM_OK && i < n; i++) {
        if (strcmp(list[i].id, served) == 0) {
            json_t *o = model_object(api, &list[i]);
            free(list);
            http_exchange_reply_json(x, 200, o);
            return;
        }
    }
    free(list);
    http_error he = http_error_make(HTTP_ERR_NOT_FOUND, "model", "model '%s' is not served here",
                                    want);
    he.code = "model_not_found";
    http_exchange_reply_error(x, &he);
}
