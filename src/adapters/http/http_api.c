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
    atomic_init(&api->backend, NULL);
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

void http_api_set_backend(http_api *api, const http_backend *be)
{
    atomic_store_explicit(&api->backend, be, memory_order_release);
    int loading = HTTP_STATE_LOADING;
    atomic_compare_exchange_strong(&api->state, &loading, HTTP_STATE_READY);
}

void http_api_set_draining(http_api *api) { atomic_store(&api->state, HTTP_STATE_DRAINING); }

http_state http_api_state(const http_api *api)
{
    return (http_state)atomic_load((atomic_int *)&api->state);
}

const http_backend *http_api_backend(const http_api *api)
{
    return atomic_load_explicit((_Atomic(const http_backend *) *)&api->backend,
                                memory_order_acquire);
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
