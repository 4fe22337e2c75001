/*
 * stats_routes.c - GET /v1/stats: one JSON object with what the inspector
 * page (ui/inspector.js) polls every second.
 *
 *   pool     the KV block pool now (blocks used, total, shared, pinned; bytes)
 *   disk     the disk tier (bytes held, budget; enabled)
 *   remote   "off", or the remote tier's state (as readiness), bytes, budget,
 *            queued writes and counters
 *   agents   agents by tier
 *   series   the last HTTP_STATS_WINDOW_S seconds at 1 s (stats_window.h):
 *            requests per second, mean TTFT of cold and returning requests,
 *            decode tokens per second, share of prompt tokens from memory
 *
 * While the model loads only state, time and series are present. The
 * route needs an API key like any data route; it runs on the blocking
 * thread because the engine's figures wait for an engine step.
 */
#include <stdlib.h>

#include "routes.h"

static json_t *pool_json(const metrics_engine *e)
{
    uint64_t bb = e->pool_block_bytes;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "blocks_used", (json_int_t)e->pool_used,
                     "blocks_total", (json_int_t)e->pool_total, "blocks_shared",
                     (json_int_t)e->pool_shared, "blocks_pinned", (json_int_t)e->pool_pinned,
                     "block_bytes", (json_int_t)bb, "bytes_used", (json_int_t)(e->pool_used * bb),
                     "bytes_total", (json_int_t)(e->pool_total * bb));
}

static json_t *disk_json(const metrics_engine *e)
{
    return json_pack("{s:b,s:I,s:I}", "enabled", e->persistent, "bytes",
                     (json_int_t)e->disk_bytes, "budget_bytes",
                     (json_int_t)(e->persistent ? e->disk_budget : 0));
}

/* A mean of the second, or null when the second had none. */
static json_t *mean_or_null(double v) { return v > 0 ? json_real(v) : json_null(); }

static json_t *series_json(const stats_point *p, size_t n)
{
    json_t *rps = json_array(), *cold = json_array(), *ret = json_array();
    json_t *decode = json_array(), *share = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(rps, json_integer(p[i].requests));
        json_array_append_new(cold, mean_or_null(p[i].ttft_cold_ms));
        json_array_append_new(ret, mean_or_null(p[i].ttft_returning_ms));
        json_array_append_new(decode, json_real(p[i].decode_tokens));
        json_array_append_new(share, p[i].prompt_tokens ? json_real((double)p[i].cached_tokens /
                                                                    p[i].prompt_tokens)
                                                        : json_null());
    }
    return json_pack("{s:i,s:I,s:o,s:o,s:o,s:o,s:o}", "resolution_s", 1, "seconds",
                     (json_int_t)n, "requests_per_s", rps, "ttft_cold_ms", cold,
                     "ttft_returning_ms", ret, "decode_tokens_per_s", decode,
                     "memory_share", share);
}

/* "off", or the tier's state, the bytes it holds for this server's model
 * and its budget, the writes waiting and its counters. */
static json_t *remote_json(const metrics_remote *r)
{
    if (!r->enabled)
        return json_string("off");
    const remote_stats *s = &r->stats;
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "state", metrics_remote_state(r),
                     "bytes", (json_int_t)s->bytes, "budget_bytes", (json_int_t)r->budget_bytes,
                     "queued", (json_int_t)r->queued, "puts", (json_int_t)s->puts,
                     "put_failures", (json_int_t)s->put_failures, "gets", (json_int_t)s->gets,
                     "get_hits", (json_int_t)s->get_hits, "corrupt", (json_int_t)s->corrupt);
}

/* The engine's part of the object (absent while the model loads). */
static void add_engine(json_t *o, const http_backend *be)
{
    metrics_engine e = {0};
    if (!be || !be->stats)
        return;
    be->stats(be->stats_user, &e);
    e.persistent = be->persistent;
    json_object_set_new(o, "model", json_string(be->model_id));
    json_object_set_new(o, "running", json_integer(e.running));
    json_object_set_new(o, "waiting", json_integer(e.waiting));
    json_object_set_new(o, "pool", pool_json(&e));
    json_object_set_new(o, "disk", disk_json(&e));
    json_object_set_new(o, "remote", remote_json(&e.remote));
    json_object_set_new(o, "agents", json_pack("{s:I,s:I}", "hot", (json_int_t)e.agents_hot,
                                               "warm", (json_int_t)e.agents_warm));
}

/* Without ?model=, the first loaded model's figures; every loaded model's
 * name in "models". */
static void add_first(void *user, const http_backend *be)
{
    json_t *o = user;
    json_t *names = json_object_get(o, "models");
    if (!names) {
        add_engine(o, be);
        json_object_set_new(o, "models", names = json_array());
    }
    json_array_append_new(names, json_string(be->model_id));
}

void stats_routes_get(http_api *api, http_exchange *x)
{
    static const char *const states[] = {"loading", "ready", "draining"};
    stats_point *points = calloc(HTTP_STATS_WINDOW_S, sizeof *points);
    if (!points) {
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    size_t n = stats_window_read(api->window, deadline_now_ms(), points, HTTP_STATS_WINDOW_S);
    metrics_totals t = metrics_read_totals(api->metrics);
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:o}", "object", "stats", "state",
        states[http_api_state(api)], "time", (json_int_t)http_unix_now(), "uptime_s",
        (json_int_t)(http_unix_now() - api->started_unix), "totals", "requests",
        (json_int_t)t.requests, "prompt_tokens", (json_int_t)t.prompt_tokens, "cached_tokens",
        (json_int_t)t.cached_tokens, "generated_tokens", (json_int_t)t.generated_tokens,
        "series", series_json(points, n));
    free(points);
    const http_backend *be = http_api_model(x); /* ?model= */
    if (o && be)
        add_engine(o, be);
    else if (o)
        http_api_each_loaded(api, add_first, o);
    http_exchange_reply_json(x, 200, o);
}
