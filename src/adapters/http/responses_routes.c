/*
 * responses_routes.c - the OpenAI Responses API:
 *
 *   POST   /v1/responses                     create (whole or streamed)
 *   GET    /v1/responses/{id}                a stored response
 *   GET    /v1/responses/{id}/input_items    its input items (a list object)
 *   DELETE /v1/responses/{id}                forget it
 *
 * Conversation state is agent memory. Every stored response records the
 * agent whose memory holds the conversation up to it, and that agent's
 * token count right after it. A request with previous_response_id renders
 * the whole chain (each stored response's input items, then its output
 * items, oldest first; the current request's instructions only) plus its
 * new input, and runs it on:
 *   - the previous response's agent, when that response is the agent's
 *     latest (the conversation goes on where the memory ends);
 *   - otherwise a fork of that agent at the response's token count, named
 *     after the new response (agent_store fork), so every branch shares
 *     the parent's blocks up to its fork point and computes only its own.
 * A fresh conversation runs on the caller's agent (X-Agent-ID, agent_id,
 * prompt_cache_key or user), else on a new agent named after the
 * response (anonymous when store is false). The engine reuses what the
 * agent holds up to the first token that differs, so a stale record (an
 * agent evicted, deleted, or moved on by a concurrent request) costs
 * recomputation, never a wrong answer; cached_tokens is the engine's real
 * reuse.
 *
 * Threads: create runs on the server's blocking thread (the store and a
 * fork wait), then waits for the generation in exchange steps and stream
 * calls on an event-loop worker like chat completions. At the end the
 * response is written to the store from that worker: one small SQLite
 * transaction (WAL, no fsync). get, input_items and delete run on the
 * blocking thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_generation.h"
#include "responses_output.h"
#include "responses_request.h"
#include "routes.h"
#include "sse.h"

#define RS_CHAIN_MAX 4096 /* responses followed back through previous_response_id */

/* ---------------------------------------------------------------- one response */

typedef struct rs_call {
    http_api *api;
    http_exchange *x;
    http_gen g;
    int stream, store, started;
    char ns[RESPONSE_NS_MAX + 1];
    char id[RESPONSE_ID_MAX + 1];
    char agent[AGENT_ID_MAX + 1]; /* "" when anonymous */
    json_t *response; /* the response object without output, usage and status */
    json_t *input;    /* this request's input items, with ids */
    strbuf text;      /* text read before the stream opened, or the whole text */
    chat_answer answer;
    rs_output output;
} rs_call;

static void call_free(void *self)
{
    rs_call *c = self;
    http_gen_release(&c->g);
    strbuf_free(&c->text);
    chat_answer_free(&c->answer);
    rs_output_free(&c->output);
    json_decref(c->response);
    json_decref(c->input);
    free(c);
}

/* Tokens of the reasoning text (what output_tokens_details counts). */
static uint32_t reasoning_tokens(rs_call *c)
{
    const prompt_port *pp = &c->g.be->prompts;
    int32_t *toks = NULL;
    size_t n = 0;
    if (!c->answer.reasoning.len ||
        pp->ops->text(pp->self, c->answer.reasoning.data, c->answer.reasoning.len, &toks, &n,
                      NULL) != SEM_OK)
        n = 0;
    free(toks);
    return (uint32_t)n;
}

static json_t *usage_json(rs_call *c)
{
    const http_gen *g = &c->g;
    uint32_t p = g->n_prompt, o = g->result.completion_tokens;
    return json_pack("{s:i,s:{s:i},s:i,s:{s:i},s:i}", "input_tokens", (json_int_t)p,
                     "input_tokens_details", "cached_tokens", (json_int_t)g->result.cached_tokens,
                     "output_tokens", (json_int_t)o, "output_tokens_details", "reasoning_tokens",
                     (json_int_t)reasoning_tokens(c), "total_tokens", (json_int_t)(p + o));
}

/* The response object as it stands (status, output, usage set). */
static json_t *response_now(rs_call *c, const char *status)
{
    json_t *o = json_deep_copy(c->response);
    json_object_set_new(o, "status", json_string(status));
    json_object_set(o, "output", c->output.items);
    if (strcmp(status, "completed") == 0 || strcmp(status, "incomplete") == 0) {
        json_object_set_new(o, "usage", usage_json(c));
        if (c->g.result.finish == GEN_LENGTH)
            json_object_set_new(o, "incomplete_details",
                                json_pack("{s:s}", "reason", "max_output_tokens"));
    }
    return o;
}

/* The agent's tokens after this response: the prompt and every generated
 * token but the last, whose KV is never computed. */
static uint32_t agent_tokens(const http_gen *g)
{
    uint32_t out = g->result.completion_tokens;
    return g->n_prompt + (out ? out - 1 : 0);
}

/* Writes the finished response to the store; a failure is logged, the
 * answer still goes out (it just cannot be continued or read back). */
static void persist(rs_call *c, json_t *response)
{
    const http_backend *be = c->g.be;
    if (!c->store || !be->responses.ops)
        return;
    response_record r = {.agent_tokens = agent_tokens(&c->g), .created_at = http_unix_now()};
    snprintf(r.id, sizeof r.id, "%s", c->id);
    snprintf(r.ns, sizeof r.ns, "%s", c->ns);
    snprintf(r.agent, sizeof r.agent, "%s", c->agent);
    const char *prev = json_string_value(json_object_get(response, "previous_response_id"));
    snprintf(r.previous_id, sizeof r.previous_id, "%s", prev ? prev : "");
    r.input = json_dumps(c->input, JSON_COMPACT);
    r.response = json_dumps(response, JSON_COMPACT);
    sem_err err = {0};
    if (!r.input || !r.response)
        sem_err_set(&err, SEM_ENOMEM, "out of memory storing response %s", c->id);
    else
        be->responses.ops->put(be->responses.self, &r, http_unix_now(), &err);
    if (err.status != SEM_OK)
        http_exchange_note_error(c->x, err.detail);
    response_record_free(&r);
}

static const char *final_status(const rs_call *c)
{
    return c->g.result.finish == GEN_LENGTH ? "incomplete" : "completed";
}

/* ---------------------------------------------------------------- the stream */

static int stream_finish(rs_call *c, strbuf *out)
{
    http_gen_note_usage(&c->g, c->x);
    c->output.out = out;
    chat_answer_finish(&c->answer);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_note_error(c->x, he.message);
        json_t *r = response_now(c, "failed");
        json_object_set_new(r, "error",
                            json_pack("{s:s,s:s}", "code", he.code ? he.code : "server_error",
                                      "message", he.message));
        rs_output_emit(&c->output, "response.failed", json_pack("{s:o}", "response", r));
    } else {
        rs_output_finish(&c->output);
        json_t *r = response_now(c, final_status(c));
        persist(c, r);
        rs_output_emit(&c->output,
                       strcmp(final_status(c), "completed") == 0 ? "response.completed"
                                                                 : "response.incomplete",
                       json_pack("{s:o}", "response", r));
    }
    c->output.out = NULL;
    http_exchange_stream_done(c->x);
    return 1;
}

static void stream_text(rs_call *c, strbuf *out, const char *text, size_t n)
{
    c->output.out = out;
    chat_answer_feed(&c->answer, text, n);
    c->output.out = NULL;
}

static int stream_next(void *self, strbuf *out, int idle)
{
    rs_call *c = self;
    if (!c->started) {
        c->started = 1;
        c->output.out = out;
        rs_output_emit(&c->output, "response.created",
                       json_pack("{s:o}", "response", response_now(c, "in_progress")));
        rs_output_emit(&c->output, "response.in_progress",
                       json_pack("{s:o}", "response", response_now(c, "in_progress")));
        c->output.out = NULL;
        stream_text(c, out, c->text.data, c->text.len);
        strbuf_free(&c->text);
        return c->g.done ? stream_finish(c, out) : 0;
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

static const http_stream_ops rs_stream_ops = {stream_next, call_free};

/* ---------------------------------------------------------------- whole */

static void reply_whole(void *self)
{
    rs_call *c = self;
    http_exchange *x = c->x;
    http_gen_note_usage(&c->g, x);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        http_exchange_reply_error(x, &he);
        return;
    }
    chat_answer_feed(&c->answer, c->text.data, c->text.len);
    chat_answer_finish(&c->answer);
    rs_output_finish(&c->output);
    json_t *r = response_now(c, final_status(c));
    persist(c, r);
    http_gen_add_timing(&c->g, x);
    http_exchange_reply_json(x, 200, r);
}

static const http_gen_route rs_route = {reply_whole, call_free, &rs_stream_ops};

static void call_step(void *self, http_exchange *x)
{
    rs_call *c = self;
    http_gen_step(&c->g, &c->text, c->stream, x, &rs_route, c);
}

static const http_wait_ops rs_wait_ops = {call_step, call_free};

/* ---------------------------------------------------------------- the conversation */

static json_t *parse(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

/*
 * The messages of the stored conversation ending at `prev` (oldest first)
 * appended to messages, and prev's record in *last.
 */
static sem_status render_chain(const response_store *rs, const char *ns, const char *prev,
                               json_t *messages, json_t **reasoning, response_record *last,
                               req_err *e)
{
    json_t *chain = json_array(); /* [input, output] pairs, newest first */
    char id[RESPONSE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", prev);
    sem_status st = SEM_OK;
    for (size_t depth = 0; id[0] && st == SEM_OK; depth++) {
        response_record r;
        sem_err err = {0};
        if (depth == RS_CHAIN_MAX) {
            st = req_fail(e, SEM_EREQUEST, "previous_response_id",
                          "the conversation is longer than %d responses", RS_CHAIN_MAX);
            break;
        }
        if ((st = rs->ops->get(rs->self, ns, id, &r, &err)) != SEM_OK) {
            e->err = err;
            if (st == SEM_ENOTFOUND)
                sem_err_set(&e->err, st, depth ? "response '%s' (of the conversation before "
                                                 "'%s') no longer exists"
                                               : "previous response '%s' not found%s",
                            id, depth ? prev : "");
            snprintf(e->param, sizeof e->param, "previous_response_id");
            break;
        }
        json_t *in = parse(r.input), *resp = parse(r.response);
        json_array_append_new(chain, json_pack("[o,O]", in ? in : json_array(),
                                               json_object_get(resp, "output")));
        json_decref(resp);
        snprintf(id, sizeof id, "%s", r.previous_id);
        if (depth == 0)
            *last = r;
        else
            response_record_free(&r);
    }
    for (size_t i = json_array_size(chain); st == SEM_OK && i-- > 0;) {
        json_t *pair = json_array_get(chain, i);
        if ((st = rs_items_to_messages(json_array_get(pair, 0), messages, reasoning,
                                       "previous_response_id", e)) == SEM_OK)
            st = rs_items_to_messages(json_array_get(pair, 1), messages, reasoning,
                                      "previous_response_id", e);
    }
    json_decref(chain);
    return st;
}

/*
 * The agent the new response runs on, after `prev` (see the top of this
 * file): prev's agent when prev is its latest response, else a fork of it
 * named `id`. A fork that cannot be made (no such agent any more, or no
 * fork operation) leaves agent `id` to compute the conversation itself.
 */
static void choose_agent(const http_backend *be, const char *ns, const response_record *prev,
                         const char *id, char agent[AGENT_ID_MAX + 1])
{
    char latest[RESPONSE_ID_MAX + 1] = "";
    sem_err err = {0};
    if (be->responses.ops->latest(be->responses.self, ns, prev->agent, latest, &err) == SEM_OK &&
        strcmp(latest, prev->id) == 0) {
        snprintf(agent, AGENT_ID_MAX + 1, "%s", prev->agent);
        return;
    }
    snprintf(agent, AGENT_ID_MAX + 1, "%s", id);
    if (!be->agents.ops->fork)
        return;
    char parent[AGENT_KEY_MAX + 1], into[AGENT_KEY_MAX + 1];
    auth_agent_key(ns, prev->agent, parent);
    auth_agent_key(ns, id, into);
    uint32_t at = prev->agent_tokens;
    agent_info info;
    if (be->agents.ops->fork(be->agents.self, parent, into, at, NULL, &err) == SEM_EREQUEST &&
        be->agents.ops->get(be->agents.self, parent, &info, &err) == SEM_OK && info.tokens < at)
        be->agents.ops->fork(be->agents.self, parent, into, info.tokens, NULL, &err);
}

/* Ids for the input items that came without one. */
static void name_items(http_api *api, json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (json_is_string(json_object_get(it, "id")))
            continue;
        const char *t = json_string_value(json_object_get(it, "type"));
        char id[64];
        http_api_new_id(api,
                        strcmp(t, "function_call") == 0          ? "fc_"
                        : strcmp(t, "function_call_output") == 0 ? "fco_"
                        : strcmp(t, "reasoning") == 0            ? "rs_"
                                                                 : "msg_",
                        id, sizeof id);
        json_object_set_new(it, "id", json_string(id));
    }
}

static json_t *echo(const json_t *b, const char *field, json_t *dflt)
{
    const json_t *v = json_object_get(b, field);
    if (v && !json_is_null(v)) {
        json_decref(dflt);
        return json_deep_copy(v);
    }
    return dflt;
}

/* The response object's fields that echo the request. */
static json_t *response_skeleton(const rs_request *r, const char *id, const char *model,
                                 int64_t created)
{
    const json_t *b = r->body;
    const json_t *effort = json_object_get(json_object_get(b, "reasoning"), "effort");
    json_t *format = echo(json_object_get(b, "text"), "format", json_pack("{s:s}", "type", "text"));
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:s,s:b,s:n,s:n,s:s,s:[],s:b,s:b,s:f,s:f,s:s,s:{s:O,s:n},s:{s:o}}", "id", id,
        "object", "response", "created_at", (json_int_t)created, "status", "in_progress",
        "background", 0, "error", "incomplete_details", "model", model, "output",
        "parallel_tool_calls", r->spec.parallel, "store", r->store, "temperature",
        (double)r->sampling.temperature, "top_p", (double)r->sampling.top_p, "truncation",
        "disabled", "reasoning", "effort", effort ? effort : json_null(), "summary", "text",
        "format", format);
    json_object_set_new(o, "instructions",
                        r->instructions ? json_string(r->instructions) : json_null());
    json_object_set_new(o, "max_output_tokens", r->max_output_tokens
                                                    ? json_integer(r->max_output_tokens)
                                                    : json_null());
    json_object_set_new(o, "previous_response_id",
                        r->previous_id ? json_string(r->previous_id) : json_null());
    json_object_set_new(o, "tool_choice", echo(b, "tool_choice", json_string("auto")));
    json_object_set_new(o, "tools", echo(b, "tools", json_array()));
    json_object_set_new(o, "metadata", echo(b, "metadata", json_object()));
    json_object_set_new(o, "user", echo(b, "user", json_null()));
    json_object_set_new(o, "usage", json_null());
    return o;
}

/* ---------------------------------------------------------------- create */

static void reply_req_error(http_api *api, http_exchange *x, const req_err *e)
{
    http_api_reply_error(api, x, &e->err, e->param);
}

/* The conversation's messages: instructions, the stored chain, the input. */
static sem_status conversation(const http_backend *be, const char *ns, const rs_request *r,
                               json_t *messages, response_record *prev, req_err *e)
{
    json_t *reasoning = NULL;
    sem_status st = SEM_OK;
    if (r->instructions)
        json_array_append_new(messages,
                              json_pack("{s:s,s:s}", "role", "system", "content", r->instructions));
    if (r->previous_id) {
        if (!be->responses.ops)
            st = req_fail(e, SEM_ENOTFOUND, "previous_response_id",
                          "previous response '%s' not found", r->previous_id);
        else
            st = render_chain(&be->responses, ns, r->previous_id, messages, &reasoning, prev, e);
    }
    if (st == SEM_OK)
        st = rs_items_to_messages(r->input, messages, &reasoning, "input", e);
    json_decref(reasoning);
    return st;
}

static rs_call *new_call(http_api *api, http_exchange *x, const rs_request *r,
                         const chat_prepared *prep, const char *id, const char *model)
{
    rs_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->api = api;
    c->x = x;
    c->stream = r->stream;
    c->store = r->store;
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->ns, sizeof c->ns, "%s", http_exchange_namespace(x));
    c->response = response_skeleton(r, id, model, http_unix_now());
    c->input = json_deep_copy(r->input);
    if (!c->response || !c->input || rs_output_init(&c->output, api) != SEM_OK ||
        chat_answer_init(&c->answer, prep, api, "call_") != SEM_OK) {
        call_free(c);
        return NULL;
    }
    c->answer.on_event = rs_output_on_event;
    c->answer.user = &c->output;
    return c;
}

/* Submits the prepared request on c->agent; forks made for it are
 * forgotten when it cannot start. */
static sem_status submit(rs_call *c, const http_backend *be, const rs_request *r,
                         const chat_prepared *prep, int forked, req_err *e)
{
    uint32_t n_ctx = be->prompts.ops->n_ctx(be->prompts.self);
    uint32_t n_prompt = (uint32_t)prep->n_prompt;
    gen_params p = {.sampling = r->sampling,
                    .max_tokens = r->max_output_tokens ? r->max_output_tokens
                                  : n_prompt < n_ctx  ? n_ctx - n_prompt
                                                      : 1};
    chat_prepared_params(prep, &p);
    sem_status st = http_gen_submit(&c->g, c->api, be, c->x, c->agent, &p, e);
    if (st == SEM_ETOOLARGE)
        snprintf(e->param, sizeof e->param, "%s",
                 r->max_output_tokens ? "max_output_tokens" : "input");
    if (st != SEM_OK && forked) {
        char key[AGENT_KEY_MAX + 1];
        auth_agent_key(c->ns, c->agent, key);
        be->agents.ops->remove(be->agents.self, key, NULL);
    }
    return st;
}

void responses_routes_create(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    const char *ns = http_exchange_namespace(x);
    req_identity who = {.agent_header = http_exchange_header(x, "X-Agent-ID"),
                        .session_header = http_exchange_header(x, "X-Claude-Code-Session-Id")};
    size_t len = 0;
    const char *body = http_exchange_body(x, &len);
    rs_request r;
    req_err e = {0};
    response_record prev = {0};
    chat_prepared prep = {0};
    json_t *messages = json_array();
    rs_call *c = NULL;
    char id[RESPONSE_ID_MAX + 1];
    http_api_new_id(api, "resp_", id, sizeof id);
    sem_status st = rs_request_read(body, len, &who, be->prompts.ops->n_ctx(be->prompts.self),
                                    http_api_random(api), &r, &e);
    if (st == SEM_OK && (st = conversation(be, ns, &r, messages, &prev, &e)) == SEM_OK) {
        r.spec.messages = messages;
        if (json_array_size(messages) == 0)
            st = req_fail(&e, SEM_EREQUEST, "input", "input must not be empty");
        else
            st = chat_prepare(be->prompts, &r.spec, &prep, &e);
    }
    if (st == SEM_OK) {
        name_items(api, r.input);
        c = new_call(api, x, &r, &prep, id, r.model ? r.model : be->model_id);
        if (!c)
            st = req_fail(&e, SEM_ENOMEM, "", "out of memory");
    }
    if (st == SEM_OK) {
        int forked = 0;
        if (r.previous_id) {
            choose_agent(be, ns, &prev, id, c->agent);
            forked = strcmp(c->agent, id) == 0;
        } else {
            snprintf(c->agent, sizeof c->agent, "%s", r.agent[0] ? r.agent : r.store ? id : "");
        }
        http_exchange_note_agent(x, c->agent);
        st = submit(c, be, &r, &prep, forked, &e);
    }
    response_record_free(&prev);
    chat_prepared_free(&prep);
    json_decref(messages);
    if (st != SEM_OK) {
        if (c)
            call_free(c);
        http_exchange_note_agent(x, r.agent);
        reply_req_error(api, x, &e);
        rs_request_free(&r);
        return;
    }
    rs_request_free(&r); /* the engine copied the prompt and grammar */
    http_exchange_wait(x, &rs_wait_ops, c);
}

/* ---------------------------------------------------------------- get, items, delete */

/* The stored record of the path's id in the caller's namespace, or 404. */
static int path_record(http_api *api, http_exchange *x, response_record *out)
{
    const response_store *rs = &api->responses;
    const char *id = http_exchange_param(x);
    sem_err err = {0};
    if (!rs->ops || strlen(id) > RESPONSE_ID_MAX ||
        rs->ops->get(rs->self, http_exchange_namespace(x), id, out, &err) !=
            SEM_OK) {
        if (err.status != SEM_OK && err.status != SEM_ENOTFOUND) {
            http_api_reply_error(api, x, &err, NULL);
            return 0;
        }
        sem_err_set(&err, SEM_ENOTFOUND, "response '%.*s' not found", RESPONSE_ID_MAX, id);
        http_api_reply_error(api, x, &err, "response_id");
        return 0;
    }
    return 1;
}

void responses_routes_get(http_api *api, http_exchange *x)
{
    response_record r;
    if (!path_record(api, x, &r))
        return;
    json_t *o = parse(r.response);
    response_record_free(&r);
    if (!o) {
        http_error he = http_error_make(HTTP_ERR_INTERNAL, NULL, "stored response unreadable");
        http_exchange_reply_error(x, &he);
        return;
    }
    http_exchange_reply_json(x, 200, o);
}

void responses_routes_delete(http_api *api, http_exchange *x)
{
    response_record r;
    if (!path_record(api, x, &r))
        return;
    sem_err err = {0};
    sem_status st = api->responses.ops->remove(api->responses.self, r.ns, r.id, &err);
    json_t *reply = json_pack("{s:s,s:s,s:b}", "id", r.id, "object", "response.deleted",
                              "deleted", 1);
    response_record_free(&r);
    if (st != SEM_OK) {
        json_decref(reply);
        http_api_reply_error(api, x, &err, "response_id");
        return;
    }
    http_exchange_reply_json(x, 200, reply);
}

/* limit (1..100, default 20), order (asc or desc, default desc), after (an item id). */
static sem_status list_args(http_exchange *x, long *limit, int *desc, const char **after,
                            sem_err *err)
{
    const char *l = http_exchange_query(x, "limit"), *o = http_exchange_query(x, "order");
    char *end = NULL;
    *limit = 20;
    *desc = 1;
    *after = http_exchange_query(x, "after");
    if (l && ((*limit = strtol(l, &end, 10)) < 1 || *limit > 100 || *end))
        return sem_err_set(err, SEM_EREQUEST, "limit is '%s'; expected 1 to 100", l);
    if (o && strcmp(o, "asc") != 0 && strcmp(o, "desc") != 0)
        return sem_err_set(err, SEM_EREQUEST, "order is '%s'; expected asc or desc", o);
    *desc = !o || strcmp(o, "desc") == 0;
    return SEM_OK;
}

void responses_routes_input_items(http_api *api, http_exchange *x)
{
    long limit;
    int desc;
    const char *after;
    sem_err err = {0};
    if (list_args(x, &limit, &desc, &after, &err) != SEM_OK) {
        http_api_reply_error(api, x, &err, strstr(err.detail, "limit") ? "limit" : "order");
        return;
    }
    response_record r;
    if (!path_record(api, x, &r))
        return;
    json_t *items = parse(r.input);
    response_record_free(&r);
    size_t n = json_array_size(items), start = 0;
    json_t *data = json_array();
    for (size_t k = 0; after && k < n; k++) {
        const json_t *id = json_object_get(json_array_get(items, desc ? n - 1 - k : k), "id");
        if (json_is_string(id) && strcmp(json_string_value(id), after) == 0)
            start = k + 1;
    }
    for (size_t k = start; k < n && json_array_size(data) < (size_t)limit; k++)
        json_array_append(data, json_array_get(items, desc ? n - 1 - k : k));
    size_t got = json_array_size(data);
    json_t *first = json_object_get(json_array_get(data, 0), "id");
    json_t *last = json_object_get(json_array_get(data, got ? got - 1 : 0), "id");
    json_t *reply = json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data, "first_id",
                              first ? first : json_null(), "last_id", last ? last : json_null(),
                              "has_more", start + got < n);
    json_decref(items);
    http_exchange_reply_json(x, 200, reply);
}
