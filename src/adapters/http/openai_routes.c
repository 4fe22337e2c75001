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

/* Fields shared by chat and completions. */
static sem_status read_common(const route_input *in, oa_request *r, req_err *e)
{
    const json_t *b = r->body;
    sem_status st;
    uint32_t n = 1, n_ctx = in->prompts.ops->n_ctx(in->prompts.self);
    int logprobs = 0, seed_given = 0;
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
        (st = req_stop(b, "stop", 1, r->stop, &r->n_stop, e)))
        return st;
    const json_t *lp = json_object_get(b, "logprobs");
    if (json_is_integer(lp))
        logprobs = json_integer_value(lp) != 0;
    else if ((st = req_bool(b, "logprobs", &logprobs, e)) != SEM_OK)
        return st;
    if (logprobs)
        return req_fail(e, SEM_EUNSUPPORTED, "logprobs", "logprobs are not supported");
    return req_agent_id(in->agent_header, b, "prompt_cache_key", r->agent, e);
}

static sem_status read_chat(const prompt_port *prompts, oa_request *r, req_err *e)
{
    const json_t *b = r->body;
    const json_t *messages = json_object_get(b, "messages");
    sem_status st = req_chat_messages(messages, "messages", e);
    if (st != SEM_OK)
        return st;
    const json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools) && !json_is_array(tools))
        return req_fail(e, SEM_EREQUEST, "tools", "tools must be a list");
    const json_t *rf = json_object_get(b, "response_format");
    if (rf && !json_is_null(rf)) {
        const json_t *type = json_object_get(rf, "type");
        if (!json_is_object(rf) || !json_is_string(type))
            return req_fail(e, SEM_EREQUEST, "response_format",
                            "response_format must be an object with a string \"type\"");
        if (strcmp(json_string_value(type), "text") != 0)
            return req_fail(e, SEM_EUNSUPPORTED, "response_format",
                            "response_format \"%s\" is not supported (only \"text\")",
                            json_string_value(type));
    }
    const json_t *kwargs = json_object_get(b, "chat_template_kwargs");
    if (kwargs && !json_is_null(kwargs) && !json_is_object(kwargs))
        return req_fail(e, SEM_EREQUEST, "chat_template_kwargs",
                        "chat_template_kwargs must be an object");
    return req_render_chat(*prompts, messages, json_is_array(tools) ? tools : NULL,
                           json_is_object(kwargs) ? kwargs : NULL, 1, &r->prompt, &r->n_prompt, e);
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
                               &r->prompt, &r->n_prompt, &err) != SEM_OK) {
            e->err = err;
            snprintf(e->param, sizeof e->param, "prompt");
            return err.status;
        }
        if (r->n_prompt == 0)
            return req_fail(e, SEM_EREQUEST, "prompt", "prompt is empty");
        return SEM_OK;
    }
    if (json_is_array(p) && json_array_size(p) > 0 && json_is_integer(json_array_get(p, 0))) {
        /* A list of token ids. */
        size_t n = json_array_size(p), i;
        const json_t *t;
        r->prompt = malloc(n * sizeof *r->prompt);
        if (!r->prompt)
            return req_fail(e, SEM_ENOMEM, "prompt", "out of memory for %zu tokens", n);
        json_array_foreach(p, i, t)
        {
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > INT32_MAX)
                return req_fail(e, SEM_EREQUEST, "prompt",
                                "prompt[%zu] must be a token id (a non-negative integer)", i);
            r->prompt[i] = (int32_t)json_integer_value(t);
        }
        r->n_prompt = n;
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
    *r = (oa_request){.chat = chat};
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
    free(r->prompt);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- responses */

static const char *finish_reason(gen_finish f) { return f == GEN_LENGTH ? "length" : "stop"; }

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
    char id[64];
    char *model;
    int64_t created;
    strbuf text; /* whole: the text so far; stream: text read before the stream opened */
} oa_call;

static void call_free(void *self)
{
    oa_call *c = self;
    http_gen_release(&c->g);
    strbuf_free(&c->text);
    free(c->model);
    free(c);
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

static void emit_text(oa_call *c, strbuf *out, const char *text, size_t n)
{
    json_t *v = http_gen_text(text, n);
    emit(out, chunk(c, c->chat ? json_pack("{s:o}", "content", v) : v, NULL));
}

static int stream_finish(oa_call *c, strbuf *out)
{
    http_gen_note_usage(&c->g, c->x);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_note_error(c->x, he.message);
        emit(out, http_error_body(&he, HTTP_SHAPE_OPENAI));
        http_exchange_stream_done(c->x);
        return 1;
    }
    const char *fr = finish_reason(c->g.result.finish);
    emit(out, chunk(c, c->chat ? json_object() : json_string(""), fr));
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
        if (c->text.len)
            emit_text(c, out, c->text.data, c->text.len);
        strbuf_free(&c->text);
        if (c->g.done)
            return stream_finish(c, out);
        return 0;
    }
    strbuf text = {0};
    http_gen_read(&c->g, &text);
    if (text.len)
        emit_text(c, out, text.data, text.len);
    strbuf_free(&text);
    if (c->g.done)
        return stream_finish(c, out);
    if (out->len == 0 && idle)
        sse_comment(out, "keep-alive");
    return 0;
}

static const http_stream_ops oa_stream_ops = {stream_next, call_free};

static void reply_whole(oa_call *c)
{
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
    json_t *content = http_gen_text(c->text.data, c->text.len);
    if (c->chat)
        choice = json_pack("{s:i,s:{s:s,s:o,s:n},s:n,s:s}", "index", 0, "message", "role",
                           "assistant", "content", content, "refusal", "logprobs", "finish_reason",
                           finish_reason(g->result.finish));
    else
        choice = json_pack("{s:o,s:i,s:n,s:s}", "text", content, "index", 0, "logprobs",
                           "finish_reason", finish_reason(g->result.finish));
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    json_object_set_new(o, "usage", usage_json(g));
    http_gen_add_timing(g, x);
    http_exchange_reply_json(x, 200, o);
}

/* Answers as http_gen_wait_step says. */
static void call_step(void *self, http_exchange *x)
{
    oa_call *c = self;
    http_error he;
    switch (http_gen_wait_step(&c->g, &c->text, c->stream, x, &he)) {
    case HTTP_GEN_WAIT: break;
    case HTTP_GEN_WHOLE:
        reply_whole(c);
        call_free(c);
        break;
    case HTTP_GEN_FAILED:
        call_free(c);
        http_exchange_reply_error(x, &he);
        break;
    case HTTP_GEN_STREAM: http_exchange_reply_stream(x, &oa_stream_ops, c); break;
    }
}

static const http_wait_ops oa_wait_ops = {call_step, call_free};

/* ---------------------------------------------------------------- handlers */

static void generate(http_api *api, http_exchange *x, int chat)
{
    const http_backend *be = http_api_backend(api);
    route_input in = {.agent_header = http_exchange_header(x, "X-Agent-ID"),
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
    if (!r.max_tokens_given) /* chat: the rest of the context; completions: OpenAI's 16 */
        r.max_tokens = !chat ? 16 : r.n_prompt < n_ctx ? n_ctx - (uint32_t)r.n_prompt : 1;
    oa_call *c = calloc(1, sizeof *c);
    const char *model = r.model ? r.model : be->model_id;
    char *model_copy = strdup(model);
    if (!c || !model_copy) {
        free(c);
        free(model_copy);
        openai_routes_request_free(&r);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    *c = (oa_call){.api = api,
                   .x = x,
                   .chat = chat,
                   .stream = r.stream,
                   .include_usage = r.include_usage,
                   .model = model_copy,
                   .created = http_unix_now()};
    gen_params p = {.prompt = r.prompt,
                    .n_prompt = (uint32_t)r.n_prompt,
                    .sampling = r.sampling,
                    .max_tokens = r.max_tokens,
                    .stop = r.stop,
                    .n_stop = r.n_stop};
    if (http_gen_submit(&c->g, api, be, x, r.agent, &p, &e) != SEM_OK) {
        if (e.err.status == SEM_ETOOLARGE && !r.max_tokens_given)
            e.param[0] = '\0';
        call_free(c);
        http_api_reply_error(api, x, &e.err, e.param);
        openai_routes_request_free(&r);
        return;
    }
    openai_routes_request_free(&r); /* the engine copied the prompt and the stop strings */
    http_api_new_id(api, chat ? "chatcmpl-" : "cmpl-", c->id, sizeof c->id);
    http_exchange_wait(x, &oa_wait_ops, c);
}

void openai_routes_chat_completions(http_api *api, http_exchange *x) { generate(api, x, 1); }
void openai_routes_completions(http_api *api, http_exchange *x) { generate(api, x, 0); }

static json_t *model_object(http_api *api, const http_backend *be)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", be->model_id, "object", "model", "created",
                     (json_int_t)api->started_unix, "owned_by", "semantic");
}

void openai_routes_models_list(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
    http_exchange_reply_json(
        x, 200, json_pack("{s:s,s:[o]}", "object", "list", "data", model_object(api, be)));
}

void openai_routes_models_get(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
    if (strcmp(http_exchange_param(x), be->model_id) != 0) {
        http_error he = http_error_make(HTTP_ERR_NOT_FOUND, "model",
                                        "model '%s' is not served here; this server serves '%s'",
                                        http_exchange_param(x), be->model_id);
        http_exchange_reply_error(x, &he);
        return;
    }
    http_exchange_reply_json(x, 200, model_object(api, be));
}
