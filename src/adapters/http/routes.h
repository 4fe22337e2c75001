/*
 * routes.h - the handlers the router's table points to, one group per
 * file: openai_routes.c, responses_routes.c, anthropic_routes.c, agents_routes.c,
 * session_routes.c (multi-agent sessions),
 * ops_routes.c (health, readiness, metrics, admin), stats_routes.c (the
 * inspector's figures), ui_routes.c (the inspector page).
 *
 * Every handler runs after the router checked credentials and state, on
 * an event-loop worker (or on the blocking thread, for the routes the
 * router's table marks so), never blocks there, and replies exactly once,
 * at once or from a continuation (http_exchange.h).
 */
#ifndef SEM_HTTP_ROUTES_H
#define SEM_HTTP_ROUTES_H

#include "chat_request.h"
#include "http_api.h"
#include "http_exchange.h"
#include "http_request.h"

/*
 * What a generation route reads from its exchange before it reads the
 * body: the bytes, the agent headers, the prompt port and a default
 * sampling seed. The request readers below are pure functions of it (no
 * server, exchange or engine), which the fuzz and allocation-failure
 * tests call directly.
 */
typedef struct route_input {
    const char *body;
    size_t len;
    req_identity who;         /* the headers that name an agent */
    prompt_port prompts;
    uint64_t seed;            /* used when the body gives none */
} route_input;

/* openai_routes.c */

/* A chat/completions or completions request, read and tokenized. */
typedef struct oa_request {
    json_t *body;
    const char *model; /* borrows from body */
    int chat;
    int stream, include_usage;
    uint32_t max_tokens;
    int max_tokens_given;
    int top_logprobs; /* -1: no logprobs */
    gen_sampling sampling;
    const char *stop[REQ_STOP_MAX]; /* borrow from body */
    size_t n_stop;
    char agent[AGENT_ID_MAX + 1];
    chat_prepared prep;  /* the prompt (and, for chat, the grammar) */
} oa_request;

/*
 * Reads a chat/completions (chat) or completions body into r: every field
 * checked, the prompt rendered and tokenized. On failure e names the
 * field; r keeps what was read so far (r->agent for the log). Free r with
 * openai_routes_request_free either way.
 */
sem_status openai_routes_read_request(const route_input *in, int chat, oa_request *r,
                                      req_err *e);
void openai_routes_request_free(oa_request *r);

void openai_routes_chat_completions(http_api *api, http_exchange *x);
void openai_routes_completions(http_api *api, http_exchange *x);
void openai_routes_models_list(http_api *api, http_exchange *x);
void openai_routes_models_get(http_api *api, http_exchange *x);

/* anthropic_routes.c */

/* A cache_control breakpoint of a messages request. */
typedef struct an_cache_mark {
    int message;     /* the messages[] index it marks; -1: tools or system */
    size_t cut;      /* OpenAI-shaped messages its prefix renders (0: tools only) */
    uint32_t ttl_s;  /* 300 ("5m") or 3600 ("1h") */
    uint32_t tokens; /* prompt tokens its prefix ends at (0: none) */
} an_cache_mark;

/* A messages (or count_tokens) request, read and tokenized. */
typedef struct an_request {
    json_t *body;
    json_t *messages; /* OpenAI-shaped, new reference */
    json_t *tools;    /* OpenAI-shaped or NULL */
    json_t *kwargs;   /* chat_template_kwargs (from "thinking"), or NULL */
    const char *model;
    int stream;
    uint32_t max_tokens;
    gen_sampling sampling;
    const char *stop[REQ_STOP_MAX];
    size_t n_stop;
    char agent[AGENT_ID_MAX + 1];
    chat_spec spec;
    chat_prepared prep;
    an_cache_mark marks[GEN_PINS_MAX]; /* in the request's order: tools, system, messages */
    size_t n_marks;
} an_request;

/* Reads a messages body (count_only: a count_tokens body, which needs no
 * max_tokens and has no sampling or agent) into r, as
 * openai_routes_read_request. */
sem_status anthropic_routes_read_request(const route_input *in, int count_only, an_request *r,
                                         req_err *e);
void anthropic_routes_request_free(an_request *r);

void anthropic_routes_messages(http_api *api, http_exchange *x);
void anthropic_routes_count_tokens(http_api *api, http_exchange *x);

/* responses_routes.c: create runs on the blocking thread (store reads and
 * forks wait), then streams from a worker; the others on the blocking thread. */
void responses_routes_create(http_api *api, http_exchange *x);
void responses_routes_get(http_api *api, http_exchange *x);
void responses_routes_input_items(http_api *api, http_exchange *x);
void responses_routes_delete(http_api *api, http_exchange *x);

/* agents_routes.c */
void agents_routes_list(http_api *api, http_exchange *x);
void agents_routes_get(http_api *api, http_exchange *x);
void agents_routes_delete(http_api *api, http_exchange *x);
void agents_routes_prefill(http_api *api, http_exchange *x);
void agents_routes_fork(http_api *api, http_exchange *x);
void agents_routes_pin(http_api *api, http_exchange *x);
void agents_routes_unpin(http_api *api, http_exchange *x);
void agents_routes_requests(http_api *api, http_exchange *x);

/* session_routes.c: every route starts on the blocking thread (the
 * session store and agent deletes wait); turn and round then go on in
 * exchange steps and stream calls on an event-loop worker. */
void session_routes_create(http_api *api, http_exchange *x);
void session_routes_list(http_api *api, http_exchange *x);
void session_routes_get(http_api *api, http_exchange *x);
void session_routes_delete(http_api *api, http_exchange *x);
void session_routes_message(http_api *api, http_exchange *x);
void session_routes_view(http_api *api, http_exchange *x);
void session_routes_turn(http_api *api, http_exchange *x);
void session_routes_round(http_api *api, http_exchange *x);

/* ops_routes.c */
void ops_routes_health(http_api *api, http_exchange *x);
void ops_routes_ready(http_api *api, http_exchange *x);
void ops_routes_metrics(http_api *api, http_exchange *x);
void ops_routes_admin_clear(http_api *api, http_exchange *x);
void ops_routes_admin_drain(http_api *api, http_exchange *x);
void ops_routes_admin_rescan(http_api *api, http_exchange *x);
void ops_routes_admin_reload(http_api *api, http_exchange *x);

/* stats_routes.c: GET /v1/stats, on the blocking thread (it reads the
 * engine's figures). */
void stats_routes_get(http_api *api, http_exchange *x);

/* ui_routes.c: GET /ui and its two assets, public (they hold no data). */
void ui_routes_page(http_api *api, http_exchange *x);
void ui_routes_asset(http_api *api, http_exchange *x);

#endif
