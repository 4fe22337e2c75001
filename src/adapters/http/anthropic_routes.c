/*
 * anthropic_routes.c - the Anthropic Messages API: POST /v1/messages and
 * POST /v1/messages/count_tokens.
 *
 * The conversation (system as a string or text blocks; messages of user
 * and assistant turns whose content is a string or text blocks) becomes
 * an OpenAI-shaped message list for the prompt port, so both APIs render
 * through the same chat template.
 *
 * Usage reports agent memory in Anthropic's terms, which add up to the
 * prompt: cache_read_input_tokens are the prompt tokens whose KV was
 * reused, cache_creation_input_tokens those newly kept in the agent's
 * memory (0 for an anonymous request: nothing is kept for it), and
 * input_tokens the rest.
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

#include "http_generation.h"
#include "http_request.h"
#include "routes.h"
#include "sse.h"

void anthropic_routes_request_free(an_request *r)
{
    json_decref(r->body);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->prompt);
    memset(r, 0, sizeof *r);
}

static sem_status out_of_memory(req_err *e)
{
    return req_fail(e, SEM_ENOMEM, NULL, "out of memory reading the conversation");
}

/* Text blocks as OpenAI text parts (a string stays a string). */
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
    char param[256];
    json_array_foreach(c, i, b)
    {
        snprintf(param, sizeof param, "%s[%zu]", field, i);
        const json_t *type = json_object_get(b, "type");
        if (!json_is_object(b) || !json_is_string(type)) {
            json_decref(parts);
            return req_fail(e, SEM_EREQUEST, param, "%s must be a block with a string \"type\"",
                            param);
        }
        if (strcmp(json_string_value(type), "text") != 0) {
            json_decref(parts);
            return req_fail(e, SEM_EUNSUPPORTED, param,
                            "%s: content blocks of type \"%s\" are not supported (text only)",
                            param, json_string_value(type));
        }
        const json_t *text = json_object_get(b, "text");
        if (!json_is_string(text)) {
            json_decref(parts);
            return req_fail(e, SEM_EREQUEST, param, "%s.text must be a string", param);
        }
        if (json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", text))) {
            json_decref(parts);
            return out_of_memory(e);
        }
    }
    *out = parts;
    return SEM_OK;
}

static sem_status read_conversation(an_request *r, req_err *e)
{
    const json_t *b = r->body;
    r->messages = json_array();
    if (!r->messages)
        return out_of_memory(e);
    const json_t *system = json_object_get(b, "system");
    if (system && !json_is_null(system)) {
        json_t *c;
        sem_status st = text_content(system, "system", &c, e);
        if (st != SEM_OK)
            return st;
        if (json_array_append_new(r->messages,
                                  json_pack("{s:s,s:o}", "role", "system", "content", c)))
            return out_of_memory(e);
    }
    const json_t *msgs = json_object_get(b, "messages");
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
        if (strcmp(rv, "user") != 0 && strcmp(rv, "assistant") != 0)
            return req_fail(e, SEM_EREQUEST, sub, "%s is \"%s\"; expected user or assistant", sub,
                            rv);
        snprintf(sub, sizeof sub, "%s.content", param);
        const json_t *content = json_object_get(m, "content");
        if (!content || json_is_null(content))
            return req_fail(e, SEM_EREQUEST, sub, "%s is required", sub);
        json_t *c;
        sem_status st = text_content(content, sub, &c, e);
        if (st != SEM_OK)
            return st;
        if (json_array_append_new(r->messages, json_pack("{s:s,s:o}", "role", rv, "content", c)))
            return out_of_memory(e);
    }
    const json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return req_fail(e, SEM_EREQUEST, "tools", "tools must be a list");
        r->tools = json_array();
        if (!r->tools)
            return out_of_memory(e);
        const json_t *t;
        json_array_foreach(tools, i, t)
        {
            snprintf(param, sizeof param, "tools[%zu]", i);
            const json_t *name = json_object_get(t, "name");
            if (!json_is_string(name))
                return req_fail(e, SEM_EREQUEST, param, "%s.name must be a string", param);
            json_t *fn = json_pack("{s:O}", "name", name);
            const json_t *desc = json_object_get(t, "description"),
                         *schema = json_object_get(t, "input_schema");
            if (!fn ||
                (json_is_string(desc) && json_object_set(fn, "description", (json_t *)desc)) ||
                (json_is_object(schema) && json_object_set(fn, "parameters", (json_t *)schema))) {
                json_decref(fn);
                return out_of_memory(e);
            }
            if (json_array_append_new(r->tools,
                                      json_pack("{s:s,s:o}", "type", "function", "function", fn)))
                return out_of_memory(e);
        }
    }
    return SEM_OK;
}

static sem_status render(const prompt_port *prompts, an_request *r, req_err *e)
{
    return req_render_chat(*prompts, r->messages, r->tools, NULL, 1, &r->prompt, &r->n_prompt,
                           e);
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
        uint32_t n_ctx = in->prompts.ops->n_ctx(in->prompts.self);
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
        if ((st = req_uint(b, "max_tokens", 1, n_ctx, &r->max_tokens, e)) ||
            (st = req_bool(b, "stream", &r->stream, e)) ||
            (st = req_sampling(b, 1.0f, &r->sampling, &seed_given, e)) ||
            (st = req_stop(b, "stop_sequences", 0, r->stop, &r->n_stop, e)) ||
            (st = req_agent_id(in->agent_header, b, "metadata.user_id", r->agent, e)))
            return st;
    }
    if ((st = read_conversation(r, e)) != SEM_OK)
        return st;
    return render(&in->prompts, r, e);
}

/* ---------------------------------------------------------------- responses */

static json_t *usage_json(const http_gen *g, const gen_result *res, int output_only)
{
    uint32_t cached = res->cached_tokens > g->n_prompt ? g->n_prompt : res->cached_tokens;
    uint32_t creation = g->has_agent ? g->n_prompt - cached : 0;
    json_t *u = json_pack("{s:i}", "output_tokens", (json_int_t)res->completion_tokens);
    if (!output_only) {
        json_object_set_new(u, "input_tokens", json_integer(g->n_prompt - cached - creation));
        json_object_set_new(u, "cache_creation_input_tokens", json_integer(creation));
        json_object_set_new(u, "cache_read_input_tokens", json_integer(cached));
    }
    return u;
}

/* stop_reason and stop_sequence of a finished request. */
static void stop_of(const gen_result *res, const char *const *stops, size_t n_stop,
                    const char **reason, const char **sequence)
{
    *sequence = NULL;
    if (res->finish == GEN_LENGTH) {
        *reason = "max_tokens";
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

/* ---------------------------------------------------------------- one generation */

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
} an_call;

static void call_free(void *self)
{
    an_call *c = self;
    http_gen_release(&c->g);
    strbuf_free(&c->text);
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

static void delta(strbuf *out, const char *text, size_t n)
{
    event(out, "content_block_delta",
          json_pack("{s:s,s:i,s:{s:s,s:o}}", "type", "content_block_delta", "index", 0, "delta",
                    "type", "text_delta", "text", http_gen_text(text, n)));
}

static int stream_finish(an_call *c, strbuf *out)
{
    http_gen_note_usage(&c->g, c->x);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_note_error(c->x, he.message);
        event(out, "error", http_error_body(&he, HTTP_SHAPE_ANTHROPIC));
        http_exchange_stream_done(c->x);
        return 1;
    }
    const char *reason, *seq;
    stop_of(&c->g.result, (const char *const *)c->stops, c->n_stop, &reason, &seq);
    event(out, "content_block_stop",
          json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    json_t *d = json_pack("{s:s,s:{s:s},s:o}", "type", "message_delta", "delta", "stop_reason",
                          reason, "usage", usage_json(&c->g, &c->g.result, 0));
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
        json_object_set_new(msg, "usage", usage_json(&c->g, &now, 0));
        event(out, "message_start",
              json_pack("{s:s,s:o}", "type", "message_start", "message", msg));
        event(out, "content_block_start",
              json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", 0,
                        "content_block", "type", "text", "text", ""));
        event(out, "ping", json_pack("{s:s}", "type", "ping"));
        if (c->text.len)
            delta(out, c->text.data, c->text.len);
        strbuf_free(&c->text);
        if (c->g.done)
            return stream_finish(c, out);
        return 0;
    }
    strbuf text = {0};
    http_gen_read(&c->g, &text);
    if (text.len)
        delta(out, text.data, text.len);
    strbuf_free(&text);
    if (c->g.done)
        return stream_finish(c, out);
    if (out->len == 0 && idle)
        event(out, "ping", json_pack("{s:s}", "type", "ping"));
    return 0;
}

static const http_stream_ops an_stream_ops = {stream_next, call_free};

static void reply_whole(an_call *c)
{
    http_exchange *x = c->x;
    http_gen *g = &c->g;
    http_gen_note_usage(g, x);
    if (!http_gen_ok(g)) {
        http_error he = http_gen_error(g);
        http_exchange_reply_error(x, &he);
        return;
    }
    const char *reason, *seq;
    stop_of(&g->result, (const char *const *)c->stops, c->n_stop, &reason, &seq);
    json_t *o = message(
        c->id, c->model,
        json_pack("[{s:s,s:o}]", "type", "text", "text", http_gen_text(c->text.data, c->text.len)));
    json_object_set_new(o, "stop_reason", json_string(reason));
    json_object_set_new(o, "stop_sequence", seq ? json_string(seq) : json_null());
    json_object_set_new(o, "usage", usage_json(g, &g->result, 0));
    http_gen_add_timing(g, x);
    http_exchange_reply_json(x, 200, o);
}

/* Answers as http_gen_wait_step says. */
static void call_step(void *self, http_exchange *x)
{
    an_call *c = self;
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
    case HTTP_GEN_STREAM: http_exchange_reply_stream(x, &an_stream_ops, c); break;
    }
}

static const http_wait_ops an_wait_ops = {call_step, call_free};

/* ---------------------------------------------------------------- handlers */

/* The route's input: the exchange's body and header, a fresh seed. */
static route_input input_of(http_api *api, const http_backend *be, http_exchange *x)
{
    route_input in = {.agent_header = http_exchange_header(x, "X-Agent-ID"),
                      .prompts = be->prompts,
                      .seed = http_api_random(api)};
    in.body = http_exchange_body(x, &in.len);
    return in;
}

void anthropic_routes_messages(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
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
        ok = (c->model = strdup(r.model ? r.model : be->model_id)) != NULL;
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
    gen_params p = {.prompt = r.prompt,
                    .n_prompt = (uint32_t)r.n_prompt,
                    .sampling = r.sampling,
                    .max_tokens = r.max_tokens,
                    .stop = r.stop,
                    .n_stop = r.n_stop};
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
    const http_backend *be = http_api_backend(api);
    an_request r;
    req_err e = {0};
    route_input in = input_of(api, be, x);
    if (anthropic_routes_read_request(&in, 1, &r, &e) != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        anthropic_routes_request_free(&r);
        return;
    }
    http_exchange_reply_json(x, 200, json_pack("{s:i}", "input_tokens", (json_int_t)r.n_prompt));
    anthropic_routes_request_free(&r);
}
