/*
 * agents_routes.c - the agents API: what agent memory holds, and the
 * operations on it.
 *
 *   GET    /v1/agents                    the caller's agents, most recent first
 *   GET    /v1/agents/{id}               one agent
 *   DELETE /v1/agents/{id}               forget it (memory and disk)
 *   DELETE /v1/agents/{id}?evict_only=true   drop only its RAM copy
 *   POST   /v1/agents/{id}/prefill       compute its KV for a conversation
 *                                        without generating (warm-up)
 *   POST   /v1/agents/{id}/fork          {"into", "at_tokens"?}: a new agent
 *                                        sharing the parent's KV blocks
 *   POST   /v1/agents/{id}/pin           {"ttl_s"}: keep its blocks from LRU
 *   DELETE /v1/agents/{id}/pin           release the pin
 *   GET    /v1/agents/{id}/requests      its last requests (agent_history.h)
 *
 * Every id is looked up in the caller's namespace (auth.h): an id of
 * another key's namespace is simply not found, and a fork's parent and
 * child are both in the caller's namespace.
 *
 * Threads: the agent store's operations wait for an engine step (a fork
 * of a warm parent reads its file), so the router runs list, get, delete,
 * fork, pin and requests on the server's blocking thread
 * (http_exchange_run_blocking). Prefill runs on an event-loop worker: it
 * submits, waits for the end in an exchange step, then describes the
 * agent from the blocking thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_generation.h"
#include "http_request.h"
#include "routes.h"

/* The longest pin, in seconds (a day): a pin is a lease, renewed by the
 * client that needs it, not a way to make memory permanent. */
#define PIN_TTL_MAX_S 86400u

static json_t *agent_json(const agent_info *a, const char *id)
{
    uint32_t shared = a->shared_tokens < a->tokens ? a->shared_tokens : a->tokens;
    /* Unix seconds, rounded up so that a pin never reads as over early. */
    json_t *pinned = a->pinned_until_ms > 0 ? json_integer((a->pinned_until_ms + 999) / 1000)
                                            : json_null();
    return json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "id", id, "object",
                     "agent", "tier", agent_tier_name(a->tier), "busy", a->busy,
                     "tokens", (json_int_t)a->tokens, "hot_bytes", (json_int_t)a->hot_bytes,
                     "disk_bytes", (json_int_t)a->disk_bytes, "last_used_at",
                     (json_int_t)(a->last_use_ms / 1000), "hits", (json_int_t)a->hits,
                     "tokens_saved", (json_int_t)a->tokens_saved, "shared_tokens",
                     (json_int_t)shared, "own_tokens", (json_int_t)(a->tokens - shared),
                     "pinned_until", pinned);
}

/* "shared_with" of GET /v1/agents/{id}: the other holders of its blocks,
 * agents by their id (the key without the caller's namespace), anonymous
 * requests as "anonymous", cache breakpoints as "cache_breakpoint". */
static json_t *sharers_json(const agent_info *a)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < a->n_sharers; i++) {
        const char *k = a->sharers[i].key, *dot = strchr(k, '.');
        const char *kind = !*k ? "anonymous" : strcmp(k, "*") == 0 ? "cache_breakpoint" : "agent";
        json_t *o = json_pack("{s:s,s:I}", "kind", kind, "tokens",
                              (json_int_t)a->sharers[i].tokens);
        if (o && strcmp(kind, "agent") == 0)
            json_object_set_new(o, "id", json_string(dot ? dot + 1 : k));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* The {id} of the path, checked, and its key in the caller's namespace. */
static int path_agent(http_api *api, http_exchange *x, char key[AGENT_KEY_MAX + 1])
{
    const char *id = http_exchange_param(x);
    sem_err err = {0};
    if (agent_id_validate(id, &err) != SEM_OK) {
        sem_err_wrap(&err, "agent id in the path");
        http_api_reply_error(api, x, &err, "id");
        return 0;
    }
    http_exchange_note_agent(x, id);
    auth_agent_key(http_exchange_namespace(x), id, key);
    return 1;
}

typedef struct agents_listing {
    const char *prefix; /* "<namespace>." or "" */
    json_t *data;
    sem_err err;        /* the first model whose store failed */
} agents_listing;

/* Appends the caller's agents on one model, each naming the model (the
 * same id on two models is two agents). */
static void list_model(void *user, const http_backend *be)
{
    agents_listing *l = user;
    agent_info *list = NULL;
    size_t n = 0;
    sem_err err = {0};
    if (be->agents.ops->list(be->agents.self, l->prefix, &list, &n, &err) != SEM_OK) {
        if (l->err.status == SEM_OK)
            l->err = err;
        return;
    }
    size_t skip = strlen(l->prefix);
    for (size_t i = 0; i < n; i++) {
        const char *id = list[i].key + skip;
        if (strchr(id, '.'))
            continue; /* another namespace's agent (served when keys are configured) */
        json_t *o = agent_json(&list[i], id);
        json_object_set_new(o, "model", json_string(be->model_id));
        json_array_append_new(l->data, o);
    }
    free(list);
}

/* GET /v1/agents: the agents of ?model= (loaded for it), or of every
 * loaded model. The memory of a model that is not loaded stays on its
 * disk until the model is loaded again. */
void agents_routes_list(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    const char *ns = http_exchange_namespace(x);
    char prefix[AUTH_NS_LEN + 2];
    snprintf(prefix, sizeof prefix, "%s%s", ns, *ns ? "." : "");
    agents_listing l = {.prefix = prefix, .data = json_array()};
    if (be)
        list_model(&l, be);
    else
        http_api_each_loaded(api, list_model, &l);
    if (l.err.status != SEM_OK) {
        json_decref(l.data);
        http_api_reply_error(api, x, &l.err, NULL);
        return;
    }
    http_exchange_reply_json(x, 200, json_pack("{s:s,s:o}", "object", "list", "data", l.data));
}

void agents_routes_get(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key))
        return;
    agent_info info;
    sem_err err = {0};
    if (be->agents.ops->get(be->agents.self, key, &info, &err) != SEM_OK) {
        sem_err_set(&err, err.status, "agent '%s' not found", http_exchange_param(x));
        http_api_reply_error(api, x, &err, "id");
        return;
    }
    json_t *o = agent_json(&info, http_exchange_param(x));
    if (o && info.tier == AGENT_TIER_HOT)
        json_object_set_new(o, "shared_with", sharers_json(&info));
    http_exchange_reply_json(x, 200, o);
}

void agents_routes_delete(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key))
        return;
    const char *eo = http_exchange_query(x, "evict_only");
    int evict = 0;
    if (eo) {
        if (strcmp(eo, "true") == 0 || strcmp(eo, "1") == 0) {
            evict = 1;
        } else if (strcmp(eo, "false") != 0 && strcmp(eo, "0") != 0) {
            sem_err err = {0};
            sem_err_set(&err, SEM_EREQUEST, "evict_only is '%s'; expected true or false", eo);
            http_api_reply_error(api, x, &err, "evict_only");
            return;
        }
    }
    const char *id = http_exchange_param(x);
    sem_err err = {0};
    sem_status st = evict ? be->agents.ops->evict(be->agents.self, key, &err)
                          : be->agents.ops->remove(be->agents.self, key, &err);
    if (st == SEM_OK && !evict) {
        char hk[AGENT_HISTORY_KEY_MAX + 1];
        agent_history_key(be->model_id, key, hk);
        agent_history_forget(api->history, hk);
    }
    if (st != SEM_OK) {
        if (st == SEM_ENOTFOUND)
            sem_err_set(&err, st, "agent '%s' %s", id,
                        evict ? "has no memory in RAM" : "not found");
        else if (st == SEM_EBUSY)
            sem_err_set(&err, st, "agent '%s' is generating; retry when it is done", id);
        http_api_reply_error(api, x, &err, "id");
        return;
    }
    http_exchange_reply_json(
        x, 200,
        json_pack("{s:s,s:s,s:b}", "id", id, "object", "agent", evict ? "evicted" : "deleted", 1));
}

/* A prefill after its submit: waits for the end on a worker, then
 * describes the agent from the blocking thread. */
typedef struct prefill_call {
    http_api *api;
    http_gen g;
    char id[AGENT_ID_MAX + 1];
    char key[AGENT_KEY_MAX + 1];
    json_t *reply; /* built once the prefill succeeded */
} prefill_call;

static void prefill_free(void *self)
{
    prefill_call *c = self;
    http_gen_release(&c->g);
    json_decref(c->reply);
    free(c);
}

/* On the blocking thread: the reply, with the agent as it is now. */
static void prefill_describe(void *self, http_exchange *x)
{
    prefill_call *c = self;
    const http_backend *be = http_api_model(x);
    agent_info info;
    sem_err err = {0};
    if (be->agents.ops->get(be->agents.self, c->key, &info, &err) == SEM_OK)
        json_object_set_new(c->reply, "agent", agent_json(&info, c->id));
    http_exchange_reply_json(x, 200, c->reply);
    c->reply = NULL;
    prefill_free(c);
}

static const http_wait_ops prefill_describe_ops = {prefill_describe, prefill_free};

static void prefill_step(void *self, http_exchange *x)
{
    prefill_call *c = self;
    strbuf ignored = {0};
    int done = http_gen_read(&c->g, &ignored);
    strbuf_free(&ignored);
    if (!done)
        return;
    http_gen_note_usage(&c->g, x);
    if (!http_gen_ok(&c->g)) {
        http_error he = http_gen_error(&c->g);
        prefill_free(c);
        http_exchange_reply_error(x, &he);
        return;
    }
    c->reply = json_pack("{s:s,s:s,s:I,s:I}", "id", c->id, "object", "agent.prefill",
                         "prompt_tokens", (json_int_t)c->g.n_prompt, "cached_tokens",
                         (json_int_t)c->g.result.cached_tokens);
    http_gen_add_timing(&c->g, x);
    http_gen_release(&c->g);
    http_exchange_run_blocking(x, &prefill_describe_ops, c);
}

static const http_wait_ops prefill_wait_ops = {prefill_step, prefill_free};

void agents_routes_prefill(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key))
        return;
    const char *id = http_exchange_param(x);
    json_t *body = NULL;
    req_err e = {0};
    int32_t *tokens = NULL;
    size_t n = 0;
    int add_gen = 0;
    sem_status st = req_body_object(x, &body, &e);
    const json_t *messages = body ? json_object_get(body, "messages") : NULL;
    const char *prompt = NULL;
    if (st == SEM_OK && (st = req_string(body, "prompt", &prompt, &e)) == SEM_OK &&
        (st = req_bool(body, "add_generation_prompt", &add_gen, &e)) == SEM_OK) {
        if (prompt && messages)
            st = req_fail(&e, SEM_EREQUEST, "messages", "send either messages or prompt, not both");
        else if (!prompt && (st = req_chat_messages(messages, "messages", &e)) == SEM_OK) {
            const json_t *tools = json_object_get(body, "tools");
            st = req_render_chat(be->prompts, messages, json_is_array(tools) ? tools : NULL,
                                 NULL, add_gen, &tokens, &n, NULL, &e);
        } else if (prompt) {
            st = be->prompts.ops->text(be->prompts.self, prompt, strlen(prompt), &tokens, &n,
                                       &e.err);
            if (st == SEM_OK && n == 0)
                st = req_fail(&e, SEM_EREQUEST, "prompt", "prompt is empty");
        }
    }
    json_decref(body);
    if (st != SEM_OK) {
        free(tokens);
        http_api_reply_error(api, x, &e.err, e.param);
        return;
    }
    prefill_call *c = calloc(1, sizeof *c);
    if (!c) {
        free(tokens);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    c->api = api;
    snprintf(c->id, sizeof c->id, "%s", id);
    memcpy(c->key, key, sizeof c->key);
    gen_params p = {.prompt = tokens, .n_prompt = (uint32_t)n, .prefill_only = 1};
    p.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    st = http_gen_submit(&c->g, api, be, x, id, &p, &e);
    free(tokens);
    if (st != SEM_OK) {
        free(c);
        http_api_reply_error(api, x, &e.err, NULL);
        return;
    }
    http_exchange_wait(x, &prefill_wait_ops, c);
}

/* ---------------------------------------------------------------- fork and pin */

/* An operation the engine does not offer (a build without it): 400. */
static int have_op(http_api *api, http_exchange *x, int present, const char *what)
{
    if (present)
        return 1;
    sem_err err = {0};
    sem_err_set(&err, SEM_EUNSUPPORTED, "this server's engine cannot %s agents", what);
    http_api_reply_error(api, x, &err, NULL);
    return 0;
}

/* Replies the agent object with status code. */
static void reply_agent(http_exchange *x, int status, const agent_info *info, const char *id)
{
    http_exchange_reply_json(x, status, agent_json(info, id));
}

/* The fork body: "into" (checked, as a key of the caller's namespace) and
 * "at_tokens" (AGENT_FORK_ALL when absent). */
static sem_status fork_body(http_exchange *x, const char **into, char into_key[AGENT_KEY_MAX + 1],
                            uint32_t *at, json_t **body, req_err *e)
{
    sem_status st = req_body_object(x, body, e);
    if (st != SEM_OK || (st = req_string(*body, "into", into, e)) != SEM_OK)
        return st;
    if (!*into)
        return req_fail(e, SEM_EREQUEST, "into", "into (the new agent's id) is required");
    sem_err err = {0};
    if (agent_id_validate(*into, &err) != SEM_OK)
        return req_fail(e, SEM_EREQUEST, "into", "into: %s", sem_err_text(&err));
    *at = AGENT_FORK_ALL;
    if ((st = req_uint(*body, "at_tokens", 1, AGENT_FORK_ALL - 1, at, e)) != SEM_OK)
        return st;
    auth_agent_key(http_exchange_namespace(x), *into, into_key);
    return SEM_OK;
}

/*
 * A fork the engine refused as a bad request: `into` exists (409), or
 * at_tokens asks for more than the parent holds (400, with the parent's
 * count), or the engine's own reason (a sliding window).
 */
static void fork_refused(http_api *api, http_exchange *x, const sem_err *why, const char *key,
                         const char *into, const char *into_key, uint32_t at)
{
    const http_backend *be = http_api_model(x);
    agent_info info;
    sem_err err = {0};
    if (be->agents.ops->get(be->agents.self, into_key, &info, &err) == SEM_OK) {
        http_error he = http_error_make(HTTP_ERR_CONFLICT, "into",
                                        "into: agent '%s' exists; delete it first or pick "
                                        "another id",
                                        into);
        he.code = "agent_exists";
        http_exchange_reply_error(x, &he);
        return;
    }
    err = *why;
    if (at != AGENT_FORK_ALL && be->agents.ops->get(be->agents.self, key, &info, NULL) == SEM_OK &&
        at > info.tokens)
        sem_err_set(&err, SEM_EREQUEST, "at_tokens is %u; agent '%s' holds %u tokens", at,
                    http_exchange_param(x), info.tokens);
    http_api_reply_error(api, x, &err, "at_tokens");
}

void agents_routes_fork(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1], into_key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key) || !have_op(api, x, be->agents.ops->fork != NULL, "fork"))
        return;
    const char *into = NULL;
    uint32_t at = AGENT_FORK_ALL;
    json_t *body = NULL;
    req_err e = {0};
    if (fork_body(x, &into, into_key, &at, &body, &e) != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        json_decref(body);
        return;
    }
    agent_info info;
    sem_err err = {0};
    sem_status st = be->agents.ops->fork(be->agents.self, key, into_key, at, &info, &err);
    if (st == SEM_OK) {
        reply_agent(x, 201, &info, into);
    } else if (st == SEM_ENOTFOUND) {
        sem_err_set(&err, st, "agent '%s' not found", http_exchange_param(x));
        http_api_reply_error(api, x, &err, "id");
    } else if (st == SEM_EREQUEST) {
        fork_refused(api, x, &err, key, into, into_key, at);
    } else {
        http_api_reply_error(api, x, &err, NULL);
    }
    json_decref(body);
}

/* Pins (ttl_s > 0) or unpins (0) the agent of the path and replies it. */
static void pin_agent(http_api *api, http_exchange *x, const char *key, uint32_t ttl_s)
{
    const http_backend *be = http_api_model(x);
    const char *id = http_exchange_param(x);
    agent_info info;
    sem_err err = {0};
    sem_status st = be->agents.ops->pin(be->agents.self, key, ttl_s, &info, &err);
    if (st == SEM_ENOTFOUND && ttl_s == 0)
        st = SEM_OK; /* a warm agent holds no pin: nothing to release */
    if (st == SEM_OK && ttl_s == 0)
        st = be->agents.ops->get(be->agents.self, key, &info, &err);
    if (st == SEM_OK) {
        reply_agent(x, 200, &info, id);
        return;
    }
    sem_err why = err;
    if (st == SEM_ENOTFOUND)
        sem_err_set(&err, st,
                    "agent '%s' has no memory in RAM to pin (it is unknown, or only on disk); "
                    "send it a request or prefill it first",
                    id);
    else if (st == SEM_EPOOL)
        sem_err_set(&err, st,
                    "pinning agent '%s' would exceed the pin budget: release another pin or "
                    "wait for one to end (%.300s)",
                    id, why.detail);
    http_api_reply_error(api, x, &err, st == SEM_ENOTFOUND ? "id" : NULL);
}

void agents_routes_pin(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key) || !have_op(api, x, be->agents.ops->pin != NULL, "pin"))
        return;
    json_t *body = NULL;
    req_err e = {0};
    uint32_t ttl = 0;
    sem_status st = req_body_object(x, &body, &e);
    if (st == SEM_OK && (st = req_uint(body, "ttl_s", 1, PIN_TTL_MAX_S, &ttl, &e)) == SEM_OK &&
        ttl == 0)
        st = req_fail(&e, SEM_EREQUEST, "ttl_s",
                      "ttl_s (1 to %u seconds) is required; DELETE the pin to release it",
                      PIN_TTL_MAX_S);
    json_decref(body);
    if (st != SEM_OK) {
        http_api_reply_error(api, x, &e.err, e.param);
        return;
    }
    pin_agent(api, x, key, ttl);
}

void agents_routes_unpin(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key) || !have_op(api, x, be->agents.ops->pin != NULL, "pin"))
        return;
    agent_info info;
    sem_err err = {0};
    if (be->agents.ops->get(be->agents.self, key, &info, &err) != SEM_OK) {
        sem_err_set(&err, SEM_ENOTFOUND, "agent '%s' not found", http_exchange_param(x));
        http_api_reply_error(api, x, &err, "id");
        return;
    }
    pin_agent(api, x, key, 0);
}

/* ---------------------------------------------------------------- history */

static json_t *request_json(const agent_request *r)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:s}", "at_ms", (json_int_t)r->at_ms,
                     "prompt_tokens", (json_int_t)r->prompt_tokens, "cached_tokens",
                     (json_int_t)r->cached_tokens, "completion_tokens",
                     (json_int_t)r->completion_tokens, "ttft_ms", r->ttft_ms, "duration_ms",
                     r->total_ms, "finish", r->finish);
}

void agents_routes_requests(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    char key[AGENT_KEY_MAX + 1];
    if (!path_agent(api, x, key))
        return;
    agent_info info;
    sem_err err = {0};
    if (be->agents.ops->get(be->agents.self, key, &info, &err) != SEM_OK) {
        sem_err_set(&err, SEM_ENOTFOUND, "agent '%s' not found", http_exchange_param(x));
        http_api_reply_error(api, x, &err, "id");
        return;
    }
    agent_request last[AGENT_HISTORY_MAX];
    char hk[AGENT_HISTORY_KEY_MAX + 1];
    agent_history_key(be->model_id, key, hk);
    size_t n = agent_history_read(api->history, hk, last, AGENT_HISTORY_MAX);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, request_json(&last[i]));
    http_exchange_reply_json(x, 200,
                             json_pack("{s:s,s:s,s:o}", "object", "list", "id",
                                       http_exchange_param(x), "data", data));
}
