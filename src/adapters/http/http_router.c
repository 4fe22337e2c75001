/*
 * http_router.c - the route table and dispatch.
 */
#include "http_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/agent_id.h"
#include "routes.h"

typedef enum route_access { ACCESS_PUBLIC, ACCESS_API, ACCESS_ADMIN } route_access;

typedef enum route_needs {
    NEEDS_NOTHING,  /* answers in any state */
    NEEDS_BACKEND,  /* 503 while loading */
    NEEDS_ADMISSION /* 503 while loading or draining */
} route_needs;

/* Where the handler runs. */
typedef enum route_runs {
    RUNS_ON_LOOP,    /* an event-loop worker: it never waits */
    RUNS_BLOCKING    /* the server's blocking thread: it waits on the engine
                        thread (agent store operations, the engine's figures) */
} route_runs;

/* Which model the handler works on; the router leases it first (loading
 * it while the exchange waits) and the handler finds it with
 * http_api_model(). */
typedef enum route_model {
    MODEL_NONE,      /* none, or every loaded one (the handler iterates) */
    MODEL_BODY,      /* the JSON body's "model" (absent: the default) */
    MODEL_QUERY,     /* ?model= (absent: the default) */
    MODEL_QUERY_ALL  /* ?model= when given; else none (the handler iterates) */
} route_model;

typedef struct route {
    const char *name; /* metrics label */
    const char *method;
    const char *pattern;
    http_handler handler;
    http_shape shape;
    route_access access;
    route_needs needs;
    route_runs runs;
    route_model model; /* MODEL_NONE when left out */
} route;

#define OPENAI HTTP_SHAPE_OPENAI
#define ANTHROPIC HTTP_SHAPE_ANTHROPIC
#define LOOP RUNS_ON_LOOP
#define BLOCKING RUNS_BLOCKING
#define BODY MODEL_BODY
#define QUERY MODEL_QUERY
#define NONE MODEL_NONE

static const route routes[] = {
    {"chat_completions", "POST", "/v1/chat/completions", openai_routes_chat_completions, OPENAI,
     ACCESS_API, NEEDS_ADMISSION, LOOP, BODY},
    {"completions", "POST", "/v1/completions", openai_routes_completions, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, LOOP, BODY},
    {"models_list", "GET", "/v1/models", openai_routes_models_list, OPENAI, ACCESS_API,
     NEEDS_BACKEND, LOOP, NONE},
    {"models_get", "GET", "/v1/models/{id}", openai_routes_models_get, OPENAI, ACCESS_API,
     NEEDS_BACKEND, LOOP, NONE},
    {"responses_create", "POST", "/v1/responses", responses_routes_create, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, BLOCKING, BODY},
    {"responses_get", "GET", "/v1/responses/{id}", responses_routes_get, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"responses_delete", "DELETE", "/v1/responses/{id}", responses_routes_delete, OPENAI,
     ACCESS_API, NEEDS_BACKEND, BLOCKING, NONE},
    {"responses_input_items", "GET", "/v1/responses/{id}/input_items",
     responses_routes_input_items, OPENAI, ACCESS_API, NEEDS_BACKEND, BLOCKING, NONE},
    {"messages", "POST", "/v1/messages", anthropic_routes_messages, ANTHROPIC, ACCESS_API,
     NEEDS_ADMISSION, LOOP, BODY},
    {"messages_count_tokens", "POST", "/v1/messages/count_tokens", anthropic_routes_count_tokens,
     ANTHROPIC, ACCESS_API, NEEDS_BACKEND, LOOP, BODY},
    {"agents_list", "GET", "/v1/agents", agents_routes_list, OPENAI, ACCESS_API, NEEDS_BACKEND,
     BLOCKING, MODEL_QUERY_ALL},
    {"agents_get", "GET", "/v1/agents/{id}", agents_routes_get, OPENAI, ACCESS_API, NEEDS_BACKEND,
     BLOCKING, QUERY},
    {"agents_delete", "DELETE", "/v1/agents/{id}", agents_routes_delete, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, QUERY},
    {"agents_prefill", "POST", "/v1/agents/{id}/prefill", agents_routes_prefill, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, LOOP, QUERY},
    {"agents_fork", "POST", "/v1/agents/{id}/fork", agents_routes_fork, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, BLOCKING, QUERY},
    {"agents_pin", "POST", "/v1/agents/{id}/pin", agents_routes_pin, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, QUERY},
    {"agents_unpin", "DELETE", "/v1/agents/{id}/pin", agents_routes_unpin, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, QUERY},
    {"agents_requests", "GET", "/v1/agents/{id}/requests", agents_routes_requests, OPENAI,
     ACCESS_API, NEEDS_BACKEND, BLOCKING, QUERY},
    {"sessions_create", "POST", "/v1/sessions", session_routes_create, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, BLOCKING, BODY},
    {"sessions_list", "GET", "/v1/sessions", session_routes_list, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"sessions_get", "GET", "/v1/sessions/{id}", session_routes_get, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"sessions_delete", "DELETE", "/v1/sessions/{id}", session_routes_delete, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"sessions_messages", "POST", "/v1/sessions/{id}/messages", session_routes_message, OPENAI,
     ACCESS_API, NEEDS_BACKEND, BLOCKING, NONE},
    {"sessions_view", "GET", "/v1/sessions/{id}/view", session_routes_view, OPENAI, ACCESS_API,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"sessions_turn", "POST", "/v1/sessions/{id}/turn", session_routes_turn, OPENAI, ACCESS_API,
     NEEDS_ADMISSION, BLOCKING, NONE},
    {"sessions_round", "POST", "/v1/sessions/{id}/round", session_routes_round, OPENAI,
     ACCESS_API, NEEDS_ADMISSION, BLOCKING, NONE},
    {"stats", "GET", "/v1/stats", stats_routes_get, OPENAI, ACCESS_API, NEEDS_NOTHING, BLOCKING,
     MODEL_QUERY_ALL},
    {"ui", "GET", "/ui", ui_routes_page, OPENAI, ACCESS_PUBLIC, NEEDS_NOTHING, LOOP, NONE},
    {"ui_asset", "GET", "/ui/{id}", ui_routes_asset, OPENAI, ACCESS_PUBLIC, NEEDS_NOTHING, LOOP, NONE},
    {"health", "GET", "/health", ops_routes_health, OPENAI, ACCESS_PUBLIC, NEEDS_NOTHING, LOOP, NONE},
    {"health_ready", "GET", "/health/ready", ops_routes_ready, OPENAI, ACCESS_PUBLIC,
     NEEDS_NOTHING, LOOP, NONE},
    {"metrics", "GET", "/metrics", ops_routes_metrics, OPENAI, ACCESS_API, NEEDS_NOTHING, BLOCKING, NONE},
    {"admin_clear", "POST", "/admin/clear", ops_routes_admin_clear, OPENAI, ACCESS_ADMIN,
     NEEDS_BACKEND, BLOCKING, NONE},
    {"admin_drain", "POST", "/admin/drain", ops_routes_admin_drain, OPENAI, ACCESS_ADMIN,
     NEEDS_NOTHING, LOOP, NONE},
    {"admin_models_rescan", "POST", "/admin/models/rescan", ops_routes_admin_rescan, OPENAI,
     ACCESS_ADMIN, NEEDS_ADMISSION, LOOP, NONE},
    {"admin_models_reload", "POST", "/admin/models/{id}/reload", ops_routes_admin_reload, OPENAI,
     ACCESS_ADMIN, NEEDS_ADMISSION, LOOP, NONE},
};

#define N_ROUTES (sizeof routes / sizeof routes[0])

size_t http_router_count(void) { return N_ROUTES; }

const char *http_router_name(size_t i) { return i < N_ROUTES ? routes[i].name : "unmatched"; }

/*
 * Whether path matches pattern; the "{id}" segment (any non-empty run of
 * characters other than '/') is copied to param.
 */
static int match(const char *pattern, const char *path, char *param, size_t cap)
{
    const char *brace = strstr(pattern, "{id}");
    if (!brace)
        return strcmp(pattern, path) == 0;
    size_t head = (size_t)(brace - pattern);
    if (strncmp(pattern, path, head) != 0)
        return 0;
    const char *seg = path + head, *end = strchr(seg, '/');
    size_t seg_len = end ? (size_t)(end - seg) : strlen(seg);
    if (seg_len == 0 || strcmp(brace + 4, seg + seg_len) != 0)
        return 0;
    snprintf(param, cap, "%.*s", (int)seg_len, seg);
    return 1;
}

static http_shape shape_of_path(const char *path)
{
    return strncmp(path, "/v1/messages", 12) == 0 ? HTTP_SHAPE_ANTHROPIC : HTTP_SHAPE_OPENAI;
}

static int check_access(http_api *api, http_exchange *x, const route *r)
{
    sem_err err = {0};
    const char *authz = http_exchange_header(x, "Authorization");
    const char *xkey = http_exchange_header(x, "x-api-key");
    if (r->access == ACCESS_API) {
        char ns[AUTH_NS_LEN + 1];
        if (auth_check(api->o.auth, authz, xkey, ns, &err) != SEM_OK) {
            http_error e = http_error_from_status(&err, NULL, 0);
            http_exchange_reply_error(x, &e);
            return 0;
        }
        http_exchange_set_namespace(x, ns);
    } else if (r->access == ACCESS_ADMIN) {
        if (!auth_has_admin(api->o.auth)) {
            http_error e = http_error_make(HTTP_ERR_NOT_FOUND, NULL,
                                           "admin routes are disabled: start the server with "
                                           "--admin-key");
            http_exchange_reply_error(x, &e);
            return 0;
        }
        if (auth_check_admin(api->o.auth, authz, xkey, &err) != SEM_OK) {
            http_error e = http_error_from_status(&err, NULL, 0);
            http_exchange_reply_error(x, &e);
            return 0;
        }
    }
    return 1;
}

static int check_state(http_api *api, http_exchange *x, const route *r)
{
    http_state st = http_api_state(api);
    if (r->needs == NEEDS_NOTHING || (st == HTTP_STATE_READY) ||
        (st == HTTP_STATE_DRAINING && r->needs == NEEDS_BACKEND))
        return 1;
    http_error e =
        st == HTTP_STATE_LOADING
            ? http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "the model is loading; retry shortly")
            : http_error_make(HTTP_ERR_UNAVAILABLE, NULL,
                              "the server is draining and takes no new requests");
    e.code = st == HTTP_STATE_LOADING ? "loading" : "draining";
    http_exchange_reply_error(x, &e);
    return 0;
}

/* A handler to run on the blocking thread. */
typedef struct offload {
    http_api *api;
    http_handler handler;
} offload;

static void offload_run(void *self, http_exchange *x)
{
    offload o = *(offload *)self;
    free(self);
    o.handler(o.api, x);
}

static const http_wait_ops offload_ops = {offload_run, free};

/* Runs the matched route's handler where it runs; the model is leased. */
static void run_handler(http_api *api, http_exchange *x)
{
    const route *r = &routes[http_exchange_route(x)];
    if (r->runs == RUNS_BLOCKING) {
        offload *o = malloc(sizeof *o);
        if (!o) {
            http_error e = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
            http_exchange_reply_error(x, &e);
            return;
        }
        *o = (offload){api, r->handler};
        http_exchange_run_blocking(x, &offload_ops, o);
        return;
    }
    r->handler(api, x);
}

/* Leases the route's model (a wait for its load reruns run_route), then
 * runs the handler. */
static void run_route(http_api *api, http_exchange *x)
{
    const route *r = &routes[http_exchange_route(x)];
    const http_backend *be = NULL;
    const char *q = http_exchange_query(x, "model");
    switch (r->model) {
    case MODEL_NONE: break;
    case MODEL_BODY:
        if (!http_api_use_request_model(api, x, run_route, &be))
            return;
        break;
    case MODEL_QUERY_ALL:
        if (!q)
            break;
        /* fall through */
    case MODEL_QUERY:
        if (!http_api_use_model(api, x, q, 1, run_route, &be))
            return;
        break;
    }
    run_handler(api, x);
}


void http_router_dispatch(http_api *api, http_exchange *x)
{
    const char *method = http_exchange_method(x), *path = http_exchange_path(x);
    char param[AGENT_KEY_MAX + 64];
    char allow[64] = "";
    const route *found = NULL;
    for (size_t i = 0; i < N_ROUTES && !found; i++) {
        if (!match(routes[i].pattern, path, param, sizeof param))
            continue;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            found = &routes[i];
            http_exchange_set_route(x, (int)i, found->shape, param);
        } else if (!strstr(allow, routes[i].method)) {
            size_t len = strlen(allow);
            snprintf(allow + len, sizeof allow - len, "%s%s", len ? ", " : "", routes[i].method);
        }
    }
    if (!found) {
        http_exchange_set_route(x, -1, shape_of_path(path), "");
        http_error e;
        if (allow[0]) {
            http_exchange_add_header(x, "Allow", allow);
            e = http_error_make(HTTP_ERR_METHOD_NOT_ALLOWED, NULL,
                                "method %s is not allowed on %s (allowed: %s)", method, path,
                                allow);
        } else {
            e = http_error_make(HTTP_ERR_NOT_FOUND, NULL, "no route for %s %s", method, path);
        }
        http_exchange_reply_error(x, &e);
        return;
    }
    if (!check_access(api, x, found) || !check_state(api, x, found))
        return;
    run_route(api, x);
}
