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
 *
 * Every id is looked up in the caller's namespace (auth.h): an id of
 * another key's namespace is simply not found.
 *
 * Threads: the agent store's operations wait for an engine step, so the
 * router runs list, get and delete on the server's blocking thread
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

static json_t *agent_json(const agent_info *a, const char *id)
{
    return json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "id", id, "object", "agent",
                     "tier", a->tier == AGENT_TIER_HOT ? "hot" : "warm", "busy", a->busy, "tokens",
                     (json_int_t)a->tokens, "hot_bytes", (json_int_t)a->hot_bytes, "disk_bytes",
                     (json_int_t)a->disk_bytes, "last_used_at", (json_int_t)(a->last_use_ms / 1000),
                     "hits", (json_int_t)a->hits, "tokens_saved", (json_int_t)a->tokens_saved);
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

void agents_routes_list(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
    const char *ns = http_exchange_namespace(x);
    char prefix[AUTH_NS_LEN + 2];
    snprintf(prefix, sizeof prefix, "%s%s", ns, *ns ? "." : "");
    agent_info *list = NULL;
    size_t n = 0;
    sem_err err = {0};
    if (be->agents.ops->list(be->agents.self, prefix, &list, &n, &err) != SEM_OK) {
        http_api_reply_error(api, x, &err, NULL);
        return;
    }
    json_t *data = json_array();
    size_t skip = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        const char *id = list[i].key + skip;
        if (strchr(id, '.'))
            continue; /* another namespace's agent (served when keys are configured) */
        json_array_append_new(data, agent_json(&list[i], id));
    }
    free(list);
    http_exchange_reply_json(x, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

void agents_routes_get(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
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
    http_exchange_reply_json(x, 200, agent_json(&info, http_exchange_param(x)));
}

void agents_routes_delete(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
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
    const http_backend *be = http_api_backend(c->api);
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
    const http_backend *be = http_api_backend(api);
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
