/*
 * http_generation.c - submit, read, account.
 */
#include "http_generation.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"

#define READ_CHUNK 4096

sem_status http_gen_submit(http_gen *g, http_api *api, const http_backend *be, http_exchange *x,
                           const char *agent_id, gen_params *p, req_err *e)
{
    memset(g, 0, sizeof *g);
    g->api = api;
    g->be = be;
    g->n_prompt = p->n_prompt;
    char key[AGENT_KEY_MAX + 1];
    if (agent_id && *agent_id) {
        auth_agent_key(http_exchange_namespace(x), agent_id, key);
        memcpy(g->key, key, sizeof g->key);
        p->agent_id = key;
        g->has_agent = 1;
    } else {
        p->agent_id = NULL;
        p->scope = http_exchange_namespace(x); /* hot prefix reuse within the key */
    }
    p->notify = http_exchange_wake;
    p->notify_user = x;
    sem_err err = {0};
    sem_status st = be->gen.ops->submit(be->gen.self, p, &g->req, &err);
    p->agent_id = NULL; /* key was local */
    if (st != SEM_OK) {
        g->req = NULL;
        e->err = err;
        e->param[0] = '\0';
        if (st == SEM_ETOOLARGE)
            snprintf(e->param, sizeof e->param, "%s", "max_tokens");
        return st;
    }
    return SEM_OK;
}

/* The inspector's record of a generation that ended: the window's second
 * and, for an agent, its history. */
static void record(http_gen *g)
{
    const gen_result *r = &g->result;
    double decode_ms = r->ttft_ms > 0 && r->total_ms > r->ttft_ms ? r->total_ms - r->ttft_ms : 0;
    stats_sample s = {.end_ms = deadline_now_ms(), .ttft_ms = r->ttft_ms, .decode_ms = decode_ms,
                      .prompt_tokens = g->n_prompt, .cached_tokens = r->cached_tokens,
                      .completion_tokens = r->completion_tokens};
    stats_window_record(g->api->window, &s);
    if (!g->has_agent)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    agent_request a = {.at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                       .prompt_tokens = g->n_prompt, .cached_tokens = r->cached_tokens,
                       .completion_tokens = r->completion_tokens, .ttft_ms = r->ttft_ms,
                       .total_ms = r->total_ms};
    snprintf(a.finish, sizeof a.finish, "%s", gen_finish_name(r->finish));
    char hk[AGENT_HISTORY_KEY_MAX + 1];
    agent_history_key(g->be->model_id, g->key, hk);
    agent_history_record(g->api->history, hk, &a);
}

static void finish(http_gen *g)
{
    g->done = 1;
    g->result = g->be->gen.ops->result(g->be->gen.self, g->req);
    /* The engine's count is what the model read: a prompt rewritten over an
     * agent's own tokens may differ from the tokenizer's (prompt_align.h). */
    if (g->result.prompt_tokens)
        g->n_prompt = g->result.prompt_tokens;
    record(g);
}

int http_gen_read(http_gen *g, strbuf *out)
{
    if (g->done)
        return 1;
    char buf[READ_CHUNK];
    size_t n = 0;
    int done;
    do {
        done = g->be->gen.ops->read(g->be->gen.self, g->req, buf, sizeof buf, &n, 0);
        strbuf_append(out, buf, n);
    } while (!done && n == sizeof buf);
    if (done)
        finish(g);
    return g->done;
}

http_gen_next http_gen_wait_step(http_gen *g, strbuf *text, int stream, http_exchange *x,
                                 http_error *he)
{
    int done = http_gen_read(g, text);
    if (!stream)
        return done ? HTTP_GEN_WHOLE : HTTP_GEN_WAIT;
    if (!done && text->len == 0)
        return HTTP_GEN_WAIT;
    if (done && !http_gen_ok(g)) {
        http_gen_note_usage(g, x);
        *he = http_gen_error(g);
        return HTTP_GEN_FAILED;
    }
    return HTTP_GEN_STREAM;
}

void http_gen_step(http_gen *g, strbuf *text, int stream, http_exchange *x,
                   const http_gen_route *route, void *call)
{
    http_error he;
    switch (http_gen_wait_step(g, text, stream, x, &he)) {
    case HTTP_GEN_WAIT: break;
    case HTTP_GEN_WHOLE:
        route->reply_whole(call);
        route->free(call);
        break;
    case HTTP_GEN_FAILED:
        route->free(call);
        http_exchange_reply_error(x, &he);
        break;
    case HTTP_GEN_STREAM: http_exchange_reply_stream(x, route->stream, call); break;
    }
}

gen_result http_gen_peek(const http_gen *g)
{
    return g->done ? g->result : g->be->gen.ops->result(g->be->gen.self, g->req);
}

int http_gen_ok(const http_gen *g)
{
    return g->done && (g->result.finish == GEN_STOP || g->result.finish == GEN_LENGTH);
}

http_error http_gen_error(const http_gen *g)
{
    int draining = http_api_state(g->api) == HTTP_STATE_DRAINING;
    if (g->result.finish == GEN_CANCELLED) {
        sem_err err = {0};
        sem_err_set(&err, SEM_ECANCELLED, "%s",
                    draining ? "the request was cancelled: the server is shutting down"
                             : "the request was cancelled (its agent was deleted)");
        return http_error_from_status(&err, NULL, draining);
    }
    sem_err err = g->result.error;
    if (err.status == SEM_OK)
        sem_err_set(&err, SEM_EINTERNAL, "the request ended without a result");
    return http_error_from_status(&err, NULL, draining);
}

uint32_t http_gen_cache_creation(const http_gen *g)
{
    if (!g->has_agent || g->result.cached_tokens > g->n_prompt)
        return 0;
    return g->n_prompt - g->result.cached_tokens;
}

void http_gen_note_usage(const http_gen *g, http_exchange *x)
{
    http_exchange_note_usage(x, g->n_prompt, g->result.cached_tokens, g->result.completion_tokens,
                             g->result.ttft_ms);
}

void http_gen_add_timing(const http_gen *g, http_exchange *x)
{
    char v[128];
    snprintf(v, sizeof v, "queue;dur=%.3f, ttft;dur=%.3f, engine;dur=%.3f", g->result.queue_ms,
             g->result.ttft_ms, g->result.total_ms);
    http_exchange_add_header(x, "Server-Timing", v);
}

void http_gen_release(http_gen *g)
{
    if (g->req)
        g->be->gen.ops->release(g->be->gen.self, g->req);
    g->req = NULL;
}

json_t *http_gen_text(const char *s, size_t n)
{
    json_t *v = json_stringn(s ? s : "", n);
    return v ? v : json_string("\xEF\xBF\xBD");
}
