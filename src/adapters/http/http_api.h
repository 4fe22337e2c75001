/*
 * http_api.h - what every route runs against: the served models (each a
 * backend: generation, agent memory, prompts, the engine's figures;
 * http_models.h), the server's state (loading, ready, draining),
 * credentials, metrics and id generation.
 *
 * Lifecycle. The server starts listening while the models are set up
 * (state LOADING: /health answers, /health/ready and the model routes
 * answer 503). http_api_set_models() publishes the models and makes the
 * state READY; http_api_set_draining() makes it DRAINING for good
 * (readiness and generation routes answer 503; agents, models and metrics
 * still work). The models must stay valid until the HTTP server has
 * stopped.
 *
 * A route that works on a model takes it with http_api_use_model(): the
 * request's model name resolves through aliases and the default, the
 * model's backend is leased for as long as the exchange lasts, and a
 * model that is not loaded is loaded while the exchange waits (its
 * connection parked, no thread held), after which the route runs again.
 *
 * Threads: any thread. The state and the models pointer are atomics
 * (release on publish, acquire on read); everything else is immutable
 * after http_api_create or is itself thread-safe (metrics).
 * Ownership: the api borrows auth and the models; it owns its metrics,
 * stats window and agent history.
 */
#ifndef SEM_HTTP_API_H
#define SEM_HTTP_API_H

#include <stdatomic.h>
#include <stdint.h>

#include "agent_history.h"
#include "auth.h"
#include "base/deadline.h"
#include "http_exchange.h"
#include "http_models.h"
#include "metrics.h"
#include "ports/agent_store.h"
#include "ports/generation_port.h"
#include "ports/prompt_port.h"
#include "ports/response_store.h"
#include "ports/session_store.h"
#include "stats_window.h"

struct http_backend {
    const char *model_id; /* the served name (/v1/models) */
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
};

typedef enum http_state { HTTP_STATE_LOADING, HTTP_STATE_READY, HTTP_STATE_DRAINING } http_state;

typedef struct http_api_opts {
    const http_auth *auth; /* borrowed; must outlive the api */
    uint32_t keepalive_ms; /* SSE keep-alive interval (below the idle timeout) */
    int log_fd;            /* one JSON line per request; -1: none */
    const char *version;   /* for system_fingerprint */
    int persistent;        /* agent memory goes to disk (readiness says so before a model loads) */
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
    _Atomic(const http_models *) models;
    response_store responses; /* every model's stored responses; set before the models */
    session_store sessions;   /* multi-agent sessions; set before the models (ops NULL: none) */
    atomic_int state;
    atomic_int shutdown_requested; /* POST /admin/drain */
    atomic_uint_fast64_t next_id;
    uint64_t id_seed;
    int64_t started_unix;
} http_api;

/* Metrics are labelled with the router's route names. */
http_api *http_api_create(const http_api_opts *o, sem_err *err);
void http_api_free(http_api *api);

/* responses: the Responses API's store, shared by every model (ops NULL:
 * none); published with the models. */
void http_api_set_models(http_api *api, const http_models *models, response_store responses);
/* The multi-agent sessions' store (ops NULL: none); call before
 * http_api_set_models, which publishes it. */
void http_api_set_sessions(http_api *api, session_store sessions);
void http_api_set_draining(http_api *api);
http_state http_api_state(const http_api *api);
/* Replies err in the route's error shape (param: the field at fault; NULL
 * or "" for none); the status comes from err, 503 while draining. */
void http_api_reply_error(http_api *api, http_exchange *x, const sem_err *err, const char *param);
/* The models once published (NULL while loading). */
const http_models *http_api_models(const http_api *api);

typedef void (*http_route_fn)(http_api *api, http_exchange *x);

/*
 * The backend of the model `name` stands for (NULL or "": the default),
 * leased until the exchange ends. Returns 1 with *be set; or 0 when the
 * route must return at once: the exchange was answered (404
 * model_not_found in the route's shape, 503 while loading, draining or
 * without room), or it waits for the model to load and `rerun` runs
 * again on it once loaded (then this returns 1 at once). load 0: a model
 * that is not loaded is a 503 instead of being loaded (routes that only
 * look at memory).
 */
int http_api_use_model(http_api *api, http_exchange *x, const char *name, int load,
                       http_route_fn rerun, const http_backend **be);

/* http_api_use_model for the model a JSON request body names in its
 * "model" field (none, or a body that is not JSON: the default; the
 * route's own parse reports the bad body), loading it when needed. */
int http_api_use_request_model(http_api *api, http_exchange *x, http_route_fn rerun,
                               const http_backend **be);

/* The backend the router leased for the exchange (routes that name a
 * model in the route table); NULL for other routes. */
const http_backend *http_api_model(const http_exchange *x);

/* Calls fn with the backend of every loaded model (leased for the call),
 * in the order the models are listed. */
void http_api_each_loaded(http_api *api, void (*fn)(void *user, const http_backend *be),
                          void *user);

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
