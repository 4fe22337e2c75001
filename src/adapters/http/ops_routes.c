/*
 * ops_routes.c - the routes operators call: liveness, readiness, metrics
 * and the admin actions.
 *
 *   GET  /health        200 while the process serves HTTP at all
 *   GET  /health/ready  200 when generation requests are admitted; 503 with
 *                       the reason ("loading", "draining") otherwise. A
 *                       remote tier that is down does not make it 503 (RAM
 *                       and disk still serve): the body says "remote":"down"
 *   GET  /metrics       Prometheus text format (metrics.h)
 *   POST /admin/clear   forgets every agent of every namespace, of every
 *                       loaded model
 *   POST /admin/drain   the graceful shutdown SIGTERM starts (202)
 *   POST /admin/models/rescan        looks at the models folder again (200)
 *   POST /admin/models/{id}/reload   loads the model's file again beside
 *                       the running one (202; requests move to it once loaded)
 *
 * Threads: health, readiness and drain run on an event-loop worker;
 * metrics and clear, which wait on the engine thread, on the server's
 * blocking thread (http_router.c).
 */
#include <stdlib.h>
#include <string.h>

#include "routes.h"

static const char *state_name(http_state st)
{
    switch (st) {
    case HTTP_STATE_READY: return "ready";
    case HTTP_STATE_DRAINING: return "draining";
    default: return "loading";
    }
}

void ops_routes_health(http_api *api, http_exchange *x)
{
    http_exchange_reply_json(
        x, 200, json_pack("{s:s,s:s}", "status", "ok", "state", state_name(http_api_state(api))));
}

/* Readiness' view of the loaded models: the first's remote tier state. */
typedef struct ready_view {
    json_t *loaded;
    metrics_remote remote;
    int persistent, seen;
} ready_view;

static void ready_add(void *user, const http_backend *be)
{
    ready_view *v = user;
    json_array_append_new(v->loaded, json_string(be->model_id));
    if (v->seen++)
        return;
    if (be->remote)
        be->remote(be->stats_user, &v->remote);
    v->persistent = be->persistent;
}

void ops_routes_ready(http_api *api, http_exchange *x)
{
    http_state st = http_api_state(api);
    if (st == HTTP_STATE_READY) {
        ready_view v = {.loaded = json_array(), .persistent = api->o.persistent};
        http_api_each_loaded(api, ready_add, &v);
        const char *first = json_string_value(json_array_get(v.loaded, 0));
        json_t *o = json_pack("{s:s,s:s?,s:o,s:b,s:s,s:I}", "status", "ready", "model", first,
                              "models_loaded", v.loaded, "persistence", v.persistent, "remote",
                              metrics_remote_state(&v.remote), "remote_queue",
                              (json_int_t)v.remote.queued);
        http_exchange_reply_json(x, 200, o);
        return;
    }
    const char *reason = st == HTTP_STATE_LOADING
                             ? "the model is loading"
                             : "the server is draining: finishing running requests before it "
                               "stops";
    http_exchange_add_header(x, "Retry-After", "1");
    http_exchange_note_error(x, reason);
    http_exchange_reply_json(x, 503,
                             json_pack("{s:s,s:s}", "status", state_name(st), "reason", reason));
}

/* Each loaded model's figures, for the metrics page. */
typedef struct engines_view {
    metrics_engine *es;
    size_t n, cap;
} engines_view;

static void engines_add(void *user, const http_backend *be)
{
    engines_view *v = user;
    if (v->n == v->cap || !be->stats)
        return;
    metrics_engine *e = &v->es[v->n++];
    *e = (metrics_engine){0};
    be->stats(be->stats_user, e);
    e->available = 1;
    e->persistent = be->persistent;
    e->model = be->model_id;
}

void ops_routes_metrics(http_api *api, http_exchange *x)
{
    enum { MAX = 64 };
    engines_view v = {.es = calloc(MAX, sizeof *v.es), .cap = MAX};
    strbuf page = {0};
    if (v.es) {
        http_api_each_loaded(api, engines_add, &v);
        metrics_render(api->metrics, v.es, v.n, http_api_state(api) == HTTP_STATE_READY, &page);
    }
    free(v.es);
    if (!v.es || page.oom) {
        strbuf_free(&page);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    http_exchange_reply_text(x, 200, "text/plain; version=0.0.4; charset=utf-8",
                             page.data ? page.data : "", page.len);
    strbuf_free(&page);
}

static void clear_model(void *user, const http_backend *be)
{
    size_t *removed = user;
    agent_info *list = NULL;
    size_t n = 0;
    if (be->agents.ops->list(be->agents.self, "", &list, &n, NULL) != SEM_OK)
        return;
    for (size_t i = 0; i < n; i++)
        *removed += be->agents.ops->remove(be->agents.self, list[i].key, NULL) == SEM_OK;
    free(list);
}

void ops_routes_admin_clear(http_api *api, http_exchange *x)
{
    size_t removed = 0;
    http_api_each_loaded(api, clear_model, &removed);
    http_exchange_reply_json(x, 200, json_pack("{s:I}", "removed", (json_int_t)removed));
}

void ops_routes_admin_rescan(http_api *api, http_exchange *x)
{
    const http_models *m = http_api_models(api);
    uint32_t added = 0, removed = 0, changed = 0;
    sem_err err = {0};
    if (m->ops->rescan(m->self, &added, &removed, &changed, &err) != SEM_OK) {
        http_api_reply_error(api, x, &err, NULL);
        return;
    }
    http_exchange_reply_json(x, 200,
                             json_pack("{s:I,s:I,s:I}", "added", (json_int_t)added, "removed",
                                       (json_int_t)removed, "changed", (json_int_t)changed));
}

void ops_routes_admin_reload(http_api *api, http_exchange *x)
{
    const http_models *m = http_api_models(api);
    const char *name = http_exchange_param(x);
    sem_err err = {0};
    if (m->ops->reload(m->self, name, &err) != SEM_OK) {
        http_error he = http_error_from_status(&err, "model", 0);
        if (err.status == SEM_ENOTFOUND)
            he.code = "model_not_found";
        http_exchange_reply_error(x, &he);
        return;
    }
    http_exchange_reply_json(x, 202, json_pack("{s:s,s:s}", "id", name, "status", "reloading"));
}

void ops_routes_admin_drain(http_api *api, http_exchange *x)
{
    http_api_request_shutdown(api);
    http_exchange_reply_json(x, 202, json_pack("{s:s}", "status", "draining"));
}
