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
 *   POST /admin/clear   forgets every agent of every namespace
 *   POST /admin/drain   the graceful shutdown SIGTERM starts (202)
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

void ops_routes_ready(http_api *api, http_exchange *x)
{
    http_state st = http_api_state(api);
    if (st == HTTP_STATE_READY) {
        const http_backend *be = http_api_backend(api);
        metrics_remote r = {0};
        if (be->remote)
            be->remote(be->stats_user, &r);
        http_exchange_reply_json(
            x, 200,
            json_pack("{s:s,s:s,s:b,s:s,s:I}", "status", "ready", "model", be->model_id,
                      "persistence", be->persistent, "remote", metrics_remote_state(&r), "remote_queue",
                      (json_int_t)r.queued));
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

void ops_routes_metrics(http_api *api, http_exchange *x)
{
    metrics_engine e = {0};
    const http_backend *be = http_api_backend(api);
    if (be && be->stats) {
        be->stats(be->stats_user, &e);
        e.available = 1;
        e.persistent = be->persistent;
    }
    strbuf page = {0};
    metrics_render(api->metrics, &e, http_api_state(api) == HTTP_STATE_READY, &page);
    if (page.oom) {
        strbuf_free(&page);
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    http_exchange_reply_text(x, 200, "text/plain; version=0.0.4; charset=utf-8",
                             page.data ? page.data : "", page.len);
    strbuf_free(&page);
}

void ops_routes_admin_clear(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_backend(api);
    agent_info *list = NULL;
    size_t n = 0, removed = 0;
    sem_err err = {0};
    if (be->agents.ops->list(be->agents.self, "", &list, &n, &err) != SEM_OK) {
        http_error he = http_error_from_status(&err, NULL, 0);
        http_exchange_reply_error(x, &he);
        return;
    }
    for (size_t i = 0; i < n; i++)
        removed += be->agents.ops->remove(be->agents.self, list[i].key, NULL) == SEM_OK;
    free(list);
    http_exchange_reply_json(x, 200, json_pack("{s:I}", "removed", (json_int_t)removed));
}

void ops_routes_admin_drain(http_api *api, http_exchange *x)
{
    http_api_request_shutdown(api);
    http_exchange_reply_json(x, 202, json_pack("{s:s}", "status", "draining"));
}
