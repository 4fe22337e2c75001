/*
 * http_api.h - what every route runs against: the backend (generation,
 * agent memory, prompts, the engine's figures), the server's state
 * (loading, ready, draining), credentials, metrics and id generation.
 *
 * Lifecycle. The server starts listening while the model loads (state
 * LOADING: /health answers, /health/ready and the model routes answer
 * 503). http_api_set_backend() publishes the backend and makes the state
 * READY; http_api_set_draining() makes it DRAINING for good (readiness and
 * generation routes answer 503; agents, models and metrics still work).
 * The backend must stay valid until the HTTP server has stopped.
 *
 * Threads: any thread. The state and the backend pointer are atomics
 * (release on publish, acquire on read); everything else is immutable
 * after http_api_create or is itself thread-safe (metrics).
 * Ownership: the api borrows auth; it owns its metrics, stats window and
 * agent history.
 */
#ifndef SEM_HTTP_API_H
#define SEM_HTTP_API_H

#include <stdatomic.h>
#include <stdint.h>

#include "agent_history.h"
#include "auth.h"
#include "base/deadline.h"
#include "http_exchange.h"
#include "metrics.h"
#include "ports/agent_store.h"
#include "ports/generation_port.h"
#include "ports/prompt_port.h"
#include "ports/response_store.h"
#include "stats_window.h"

typedef struct http_backend {
    const char *model_id; /* the name /v1/models lists */
    generation_port gen;
    agent_store agents;
    prompt_port prompts;
    /* Fills the engine's and stores' figures (may be NULL). */
    void (*stats)(void *user, metrics_engine *out);
    void *stats_user;
    /* The remote tier's state and counters, with stats_user; never blocks
     * (readiness calls it on an event-loop worker). NULL: no remote tier. */
    void (*remote)(void *user, metrics_remote *out);
    int persistent; /* agent memory is written to a warm store */
    response_store responses; /* the Responses API's stored responses (ops NULL: none) */
} http_backend;

typedef enum http_state { HTTP_STATE_LOADING, HTTP_STATE_READY, HTTP_STATE_DRAINING } http_state;

typedef struct http_api_opts {
    const http_auth *auth; /* borrowed; must outlive the api */
    uint32_t keepalive_ms; /* SSE keep-alive interval (below the idle timeout) */
    int log_fd;            /* one JSON line per request; -1: none */
    const char *version;   /* for system_fingerprint */
} http_api_opts;

/* The inspector's figures (GET /v1/stats, GET /v1/agents/{id}/requests):
 * the last HTTP_STATS_WINDOW_S seconds, the last requests of up to
 * HTTP_HISTORY_AGENTS agents. */
#define HTTP_STATS_WINDOW_S 300u
#define HTTP_HISTORY_AGENTS 4096u

typedef struct http_api {
    http_api_opts o;
    metrics *metrics;
    stats_window *window;   /* fed by every generation that ends */
    agent_history *history; /* fed by every agent's generation that ends */
    _Atomic(const http_backend *) backend;
    atomic_int state;
    atomic_int shutdown_requested; /* POST /admin/drain */
    atomic_uint_fast64_t next_id;
    uint64_t id_seed;
    int64_t started_unix;
} http_api;

/* Metrics are labelled with the router's route names. */
http_api *http_api_create(const http_api_opts *o, sem_err *err);
void http_api_free(http_api *api);

void http_api_set_backend(http_api *api, const http_backend *be);
void http_api_set_draining(http_api *api);
http_state http_api_state(const http_api *api);
/* Replies err in the route's error shape (param: the field at fault; NULL
 * or "" for none); the status comes from err, 503 while draining. */
void http_api_reply_error(http_api *api, http_exchange *x, const sem_err *err, const char *param);
/* The backend once published (NULL while loading). */
const http_backend *http_api_backend(const http_api *api);

/* Set by the admin drain route; the process polls it. */
void http_api_request_shutdown(http_api *api);
int http_api_shutdown_requested(const http_api *api);

/* A fresh id: prefix followed by 24 hex digits, unique in the process and
 * unpredictable across restarts. out needs strlen(prefix) + 25 bytes. */
void http_api_new_id(http_api *api, const char *prefix, char *out, size_t cap);

/* 64 unpredictable bits (default sampling seeds). */
uint64_t http_api_random(http_api *api);

/* Current unix time in seconds, and a monotonic clock in ms. */
int64_t http_unix_now(void);

#endif
