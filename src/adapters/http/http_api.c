/*
 * http_api.c - the routes' shared state.
 */
#include "http_api.h"
#include "base/deadline.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "http_errors.h"
#include "http_router.h"

http_api *http_api_create(const http_api_opts *o, sem_err *err)
{
    http_api *api = calloc(1, sizeof *api);
    if (!api) {
        sem_err_set(err, SEM_ENOMEM, "out of memory");
        return NULL;
    }
    api->o = *o;
    size_t n_routes = http_router_count();
    const char *names[64];
    if (n_routes > 64)
        n_routes = 64;
    for (size_t i = 0; i < n_routes; i++)
        names[i] = http_router_name(i);
    api->metrics = metrics_create(names, n_routes);
    if (!api->metrics) {
        free(api);
        sem_err_set(err, SEM_ENOMEM, "out of memory for metrics");
        return NULL;
    }
    if (stats_window_create(HTTP_STATS_WINDOW_S, &api->window, err) != SEM_OK ||
        agent_history_create(HTTP_HISTORY_AGENTS, &api->history, err) != SEM_OK) {
        http_api_free(api);
        return NULL;
    }
    atomic_init(&api->models, NULL);
    atomic_init(&api->state, HTTP_STATE_LOADING);
    atomic_init(&api->shutdown_requested, 0);
    atomic_init(&api->next_id, 0);
    if (getrandom(&api->id_seed, sizeof api->id_seed, 0) != sizeof api->id_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        api->id_seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
    }
    api->started_unix = http_unix_now();
    return api;
}

void http_api_free(http_api *api)
{
    if (!api)
        return;
    metrics_free(api->metrics);
    stats_window_free(api->window);
    agent_history_free(api->history);
    free(api);
}

void http_api_set_models(http_api *api, const http_models *models, response_store responses)
{
    api->responses = responses;
    atomic_store_explicit(&api->models, models, memory_order_release);
    int loading = HTTP_STATE_LOADING;
    atomic_compare_exchange_strong(&api->state, &loading, HTTP_STATE_READY);
}

void http_api_set_sessions(http_api *api, session_store sessions) { api->sessions = sessions; }

void http_api_set_draining(http_api *api) { atomic_store(&api->state, HTTP_STATE_DRAINING); }

http_state http_api_state(const http_api *api)
{
    return (http_state)atomic_load((atomic_int *)&api->state);
}

const http_models *http_api_models(const http_api *api)
{
    return atomic_load_explicit((_Atomic(const http_models *) *)&api->models,
                                memory_order_acquire);
}

/* ---------------------------------------------------------------- models */

static void lease_release(void *ctx, void *lease)
{
    const http_models *m = ctx;
    m->ops->release(m->self, lease);
}

/* An exchange waiting for its model to load; the route runs again after. */
typedef struct model_wait {
    http_api *api;
    http_exchange *x; /* the pending wake's argument */
    http_route_fn rerun;
    char served[HTTP_MODEL_NAME_MAX];
} model_wait;

static void reply_model_error(http_api *api, http_exchange *x, const sem_err *err)
{
    http_error he;
    if (err->status == SEM_ENOTFOUND) {
        he = http_error_make(HTTP_ERR_NOT_FOUND, "model", "%s", err->detail);
        he.code = "model_not_found";
    } else {
        he = http_error_make(HTTP_ERR_UNAVAILABLE, "model", "%s", err->detail);
        http_exchange_add_header(x, "Retry-After", "1");
    }
    (void)api;
    http_exchange_note_error(x, err->detail);
    http_exchange_reply_error(x, &he);
}

/* Leases the served model on x; 1 when done, 0 with *err (SEM_EAGAIN: a
 * wake for x is pending). */
static int lease_on(http_api *api, http_exchange *x, const char *served, int load, sem_err *err)
{
    const http_models *m = http_api_models(api);
    const http_backend *be = NULL;
    void *lease = NULL;
    if (m->ops->acquire(m->self, served, load, &be, &lease, http_exchange_wake, x, err) != SEM_OK)
        return 0;
    http_exchange_lease l = {.value = be, .lease = lease, .release = lease_release,
                             .ctx = (void *)m};
    snprintf(l.name, sizeof l.name, "%s", served);
    http_exchange_set_lease(x, &l);
    return 1;
}

static void model_wait_step(void *self, http_exchange *x)
{
    model_wait *w = self;
    sem_err err = {0};
    if (lease_on(w->api, x, w->served, 0, &err)) {
        http_api *api = w->api;
        http_route_fn rerun = w->rerun;
        free(w);
        rerun(api, x); /* finds the lease, and goes on as if it never waited */
        return;
    }
    if (err.status == SEM_EAGAIN)
        return; /* still loading: the wake is registered again */
    http_api *api = w->api;
    free(w);
    reply_model_error(api, x, &err);
}

static void model_wait_close(void *self)
{
    model_wait *w = self;
    const http_models *m = http_api_models(w->api);
    m->ops->cancel_wait(m->self, w->x); /* no wake may reach the exchange now */
    free(w);
}

static const http_wait_ops model_wait_ops = {model_wait_step, model_wait_close};

int http_api_use_model(http_api *api, http_exchange *x, const char *name, int load,
                       http_route_fn rerun, const http_backend **be)
{
    const http_exchange_lease *held = http_exchange_lease_of(x);
    if (held) {
        *be = held->value;
        return 1;
    }
    const http_models *m = http_api_models(api);
    sem_err err = {0};
    char served[HTTP_MODEL_NAME_MAX];
    if (!m) {
        sem_err_set(&err, SEM_EBUSY, "the server is starting: its models are not set up yet");
        reply_model_error(api, x, &err);
        return 0;
    }
    if (m->ops->resolve(m->self, name, 1, served, &err) != SEM_OK) {
        reply_model_error(api, x, &err);
        return 0;
    }
    if (lease_on(api, x, served, load, &err)) {
        *be = http_exchange_lease_of(x)->value;
        return 1;
    }
    if (err.status != SEM_EAGAIN) {
        reply_model_error(api, x, &err);
        return 0;
    }
    model_wait *w = calloc(1, sizeof *w);
    if (!w) {
        m->ops->cancel_wait(m->self, x);
        sem_err_set(&err, SEM_ENOMEM, "out of memory");
        reply_model_error(api, x, &err);
        return 0;
    }
    *w = (model_wait){.api = api, .x = x, .rerun = rerun};
    snprintf(w->served, sizeof w->served, "%s", served);
    http_exchange_wait(x, &model_wait_ops, w);
    return 0;
}

int http_api_use_request_model(http_api *api, http_exchange *x, http_route_fn rerun,
                               const http_backend **be)
{
    const http_exchange_lease *held = http_exchange_lease_of(x);
    if (held) { /* a rerun after the load: the body was read the first time */
        *be = held->value;
        return 1;
    }
    size_t len = 0;
    const char *body = http_exchange_body(x, &len);
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *name = root ? json_string_value(json_object_get(root, "model")) : NULL;
    int ok = http_api_use_model(api, x, name, 1, rerun, be);
    json_decref(root);
    return ok;
}

const http_backend *http_api_model(const http_exchange *x)
{
    const http_exchange_lease *l = http_exchange_lease_of(x);
    return l ? l->value : NULL;
}

void http_api_each_loaded(http_api *api, void (*fn)(void *user, const http_backend *be),
                          void *user)
{
    const http_models *m = http_api_models(api);
    if (!m)
        return;
    enum { MAX = 64 };
    http_model_info *list = calloc(MAX, sizeof *list);
    if (!list)
        return;
    size_t n = m->ops->list(m->self, list, MAX);
    for (size_t i = 0; i < n && i < MAX; i++) {
        const http_backend *be = NULL;
        void *lease = NULL;
        sem_err err = {0};
        if (list[i].state != HTTP_MODEL_LOADED ||
            m->ops->acquire(m->self, list[i].id, 0, &be, &lease, NULL, NULL, &err) != SEM_OK)
            continue;
        fn(user, be);
        m->ops->release(m->self, lease);
    }
    free(list);
}

void http_api_request_shutdown(http_api *api) { atomic_store(&api->shutdown_requested, 1); }

int http_api_shutdown_requested(const http_api *api)
{
    return atomic_load((atomic_int *)&api->shutdown_requested);
}

/* splitmix64: a bijection, so distinct counters give distinct ids. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void http_api_new_id(http_api *api, const char *prefix, char *out, size_t cap)
{
    uint64_t n = atomic_fetch_add(&api->next_id, 1);
    uint64_t a = mix(api->id_seed + n * 0x9E3779B97F4A7C15ULL);
    uint64_t b = mix(a ^ api->id_seed);
    snprintf(out, cap, "%s%016llx%08llx", prefix, (unsigned long long)a,
             (unsigned long long)(b & 0xffffffffULL));
}

uint64_t http_api_random(http_api *api)
{
    uint64_t n = atomic_fetch_add(&api->next_id, 1);
    return mix(mix(api->id_seed ^ 0x5851F42D4C957F2DULL) + n * 0x9E3779B97F4A7C15ULL);
}

int64_t http_unix_now(void) { return (int64_t)time(NULL); }


void http_api_reply_error(http_api *api, http_exchange *x, const sem_err *err, const char *param)
{
    http_error he = http_error_from_status(err, param && *param ? param : NULL,
                                           http_api_state(api) == HTTP_STATE_DRAINING);
    http_exchange_reply_error(x, &he);
}
