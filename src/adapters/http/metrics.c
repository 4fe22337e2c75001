/*
 * metrics.c - preallocated atomic series and their text rendering.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MIN 100
#define STATUS_COUNT 500
#define UNMATCHED_LABEL "unmatched"

/* Histogram bucket upper bounds in seconds (+Inf implied). */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct histogram {
    _Atomic uint64_t buckets[N_BOUNDS + 1]; /* per bucket (not cumulative); last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} histogram;

struct metrics {
    size_t n_routes;            /* plus one row for "unmatched" */
    const char **names;         /* [n_routes], static strings */
    _Atomic uint64_t *requests; /* [n_routes + 1][STATUS_COUNT] */
    histogram *latency;         /* [n_routes + 1] */
    histogram ttft;
    _Atomic uint64_t prompt_tokens, cached_tokens, generated_tokens;
    _Atomic int64_t connections;
    _Atomic uint64_t connections_rejected, streams_aborted;
};

metrics *metrics_create(const char *const *route_names, size_t n_routes)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_routes = n_routes;
    m->names = calloc(n_routes ? n_routes : 1, sizeof *m->names);
    if (m->names)
        memcpy(m->names, route_names, n_routes * sizeof *m->names);
    m->requests = calloc((n_routes + 1) * STATUS_COUNT, sizeof *m->requests);
    m->latency = calloc(n_routes + 1, sizeof *m->latency);
    if (!m->names || !m->requests || !m->latency) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    free(m->names);
    free(m->requests);
    free(m->latency);
    free(m);
}

static void observe(histogram *h, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    size_t i = 0;
    while (i < N_BOUNDS && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

static size_t row_of(const metrics *m, int route)
{
    return route >= 0 && (size_t)route < m->n_routes ? (size_t)route : m->n_routes;
}

void metrics_request(metrics *m, int route, int status, double seconds)
{
    size_t row = row_of(m, route);
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_COUNT)
        atomic_fetch_add_explicit(&m->requests[row * STATUS_COUNT + (size_t)(status - STATUS_MIN)],
                                  1, memory_order_relaxed);
    observe(&m->latency[row], seconds);
}

void metrics_ttft(metrics *m, double seconds) { observe(&m->ttft, seconds); }

void metrics_tokens(metrics *m, uint32_t prompt, uint32_t cached, uint32_t generated)
{
    atomic_fetch_add_explicit(&m->prompt_tokens, prompt, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->cached_tokens, cached, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->generated_tokens, generated, memory_order_relaxed);
}

void metrics_connection(metrics *m, int delta)
{
    atomic_fetch_add_explicit(&m->connections, delta, memory_order_relaxed);
}

void metrics_connection_rejected(metrics *m)
{
    atomic_fetch_add_explicit(&m->connections_rejected, 1, memory_order_relaxed);
}

void metrics_stream_aborted(metrics *m)
{
    atomic_fetch_add_explicit(&m->streams_aborted, 1, memory_order_relaxed);
}

static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

metrics_totals metrics_read_totals(const metrics *m)
{
    metrics_totals t = {.prompt_tokens = load(&m->prompt_tokens),
                        .cached_tokens = load(&m->cached_tokens),
                        .generated_tokens = load(&m->generated_tokens),
                        .connections = atomic_load_explicit(&m->connections, memory_order_relaxed)};
    for (size_t i = 0; i < (m->n_routes + 1) * STATUS_COUNT; i++)
        t.requests += load(&m->requests[i]);
    return t;
}

/* ---------------------------------------------------------------- rendering */

static void header(strbuf *b, const char *name, const char *type, const char *help)
{
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram_lines(strbuf *b, const char *name, const char *labels, const histogram *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= N_BOUNDS; i++) {
        cum += load(&h->buckets[i]);
        if (i < N_BOUNDS)
            strbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                            (unsigned long long)cum);
        else
            strbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                            (unsigned long long)cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    strbuf_printf(b, "%s_sum%s%s%s %.6f\n", name, open, labels, close,
                    (double)load(&h->sum_us) / 1e6);
    strbuf_printf(b, "%s_count%s%s%s %llu\n", name, open, labels, close,
                    (unsigned long long)load(&h->count));
}

static const char *route_label(const metrics *m, size_t row)
{
    return row < m->n_routes ? m->names[row] : UNMATCHED_LABEL;
}

static void gauge(strbuf *b, const char *name, const char *help, unsigned long long v)
{
    header(b, name, "gauge", help);
    strbuf_printf(b, "%s %llu\n", name, v);
}

static void counter(strbuf *b, const char *name, const char *help, unsigned long long v)
{
    header(b, name, "counter", help);
    strbuf_printf(b, "%s %llu\n", name, v);
}

const char *metrics_remote_state(const metrics_remote *r)
{
    if (!r->enabled)
        return "off";
    return r->stats.state == REMOTE_OK ? "ok" : "down";
}

/* One series with a line per loaded model: `expr` is read with `e`
 * naming each model's figures in turn. extra: more labels (", k=\"v\"")
 * or "". */
#define MODEL_SERIES(b, type, name, help, es, n, extra, expr)                                 \
    do {                                                                                     \
        header(b, name, type, help);                                                         \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                \
            const metrics_engine *e = &(es)[i_];                                             \
            strbuf_printf(b, "%s{model=\"%s\"%s} %llu\n", name, e->model, extra,              \
                          (unsigned long long)(expr));                                       \
        }                                                                                    \
    } while (0)

/* The remote tier's series: semantic_remote_enabled always, the rest for
 * the models whose tier is on. */
static void remote_lines(strbuf *b, const metrics_engine *es, size_t n)
{
    MODEL_SERIES(b, "gauge", "semantic_remote_enabled",
                 "1 when agent memory is shared through a remote tier (--cache-remote).", es, n,
                 "", e->remote.enabled != 0);
    metrics_engine on[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        if (es[i].remote.enabled)
            on[k++] = es[i];
    if (!k)
        return;
    MODEL_SERIES(b, "gauge", "semantic_remote_up", "1 when the remote tier answers, 0 while it is down.",
                 on, k, "", e->remote.stats.state == REMOTE_OK);
    MODEL_SERIES(b, "counter", "semantic_remote_puts_total", "Agents written to the remote tier.",
                 on, k, "", e->remote.stats.puts);
    MODEL_SERIES(b, "counter", "semantic_remote_put_failures_total",
                 "Agent writes to the remote tier that failed or were skipped while it was down.",
                 on, k, "", e->remote.stats.put_failures);
    MODEL_SERIES(b, "counter", "semantic_remote_gets_total", "Agent reads from the remote tier.",
                 on, k, "", e->remote.stats.gets);
    MODEL_SERIES(b, "counter", "semantic_remote_get_hits_total", "Agent reads that found the agent.",
                 on, k, "", e->remote.stats.get_hits);
    MODEL_SERIES(b, "counter", "semantic_remote_get_failures_total",
                 "Agent reads that failed or were skipped while the tier was down.", on, k, "",
                 e->remote.stats.get_failures);
    MODEL_SERIES(b, "counter", "semantic_remote_corrupt_total",
                 "Remote entries dropped because they failed verification (recomputed instead).",
                 on, k, "", e->remote.stats.corrupt);
    MODEL_SERIES(b, "counter", "semantic_remote_timeouts_total",
                 "Remote tier commands that ran past their timeout.", on, k, "",
                 e->remote.stats.timeouts);
    MODEL_SERIES(b, "counter", "semantic_remote_full_total",
                 "Writes the remote tier refused at its memory limit (maxmemory).", on, k, "",
                 e->remote.stats.full);
    MODEL_SERIES(b, "counter", "semantic_remote_dropped_total",
                 "Queued remote writes dropped (queue full, or left at shutdown).", on, k, "",
                 e->remote.stats.dropped);
    MODEL_SERIES(b, "counter", "semantic_remote_evictions_total",
                 "Agents removed from the remote tier by its byte budget.", on, k, "",
                 e->remote.stats.evictions);
    MODEL_SERIES(b, "gauge", "semantic_remote_bytes",
                 "Bytes the remote tier holds for this model, as last seen.", on, k, "",
                 e->remote.stats.bytes);
    MODEL_SERIES(b, "gauge", "semantic_remote_queue", "Agent writes waiting for the remote tier.",
                 on, k, "", e->remote.queued);
}

void metrics_render(const metrics *m, const metrics_engine *es, size_t n, int ready, strbuf *b)
{
    header(b, "semantic_http_requests_total", "counter", "HTTP requests by route and status.");
    for (size_t r = 0; r <= m->n_routes; r++)
        for (size_t s = 0; s < STATUS_COUNT; s++) {
            uint64_t v = load(&m->requests[r * STATUS_COUNT + s]);
            if (v)
                strbuf_printf(b,
                                "semantic_http_requests_total{route=\"%s\",status=\"%zu\"} %llu\n",
                                route_label(m, r), s + STATUS_MIN, (unsigned long long)v);
        }
    header(b, "semantic_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its last response byte being produced.");
    for (size_t r = 0; r <= m->n_routes; r++) {
        if (!load(&m->latency[r].count))
            continue;
        char labels[160];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_label(m, r));
        histogram_lines(b, "semantic_http_request_duration_seconds", labels, &m->latency[r]);
    }
    header(b, "semantic_time_to_first_token_seconds", "histogram",
           "Time from a generation request's submission to its first token.");
    histogram_lines(b, "semantic_time_to_first_token_seconds", "", &m->ttft);
    counter(b, "semantic_prompt_tokens_total", "Prompt tokens of finished requests.",
            load(&m->prompt_tokens));
    counter(b, "semantic_cached_tokens_total",
            "Prompt tokens whose KV came from memory instead of being computed.",
            load(&m->cached_tokens));
    counter(b, "semantic_generated_tokens_total", "Tokens generated.", load(&m->generated_tokens));
    gauge(b, "semantic_http_connections", "Open HTTP connections.",
          (unsigned long long)atomic_load_explicit(&m->connections, memory_order_relaxed));
    counter(b, "semantic_http_connections_rejected_total",
            "Connections answered 503 because the connection limit was reached.",
            load(&m->connections_rejected));
    counter(b, "semantic_http_streams_aborted_total",
            "Streamed responses whose client went away before the end.", load(&m->streams_aborted));
    gauge(b, "semantic_ready", "1 when the server accepts generation requests.",
          (unsigned long long)(ready != 0));
    if (!n)
        return;
    MODEL_SERIES(b, "gauge", "semantic_model_ram_bytes",
                 "Bytes of a loaded model: its weights and its KV pool.", es, n, "", e->ram_bytes);
    MODEL_SERIES(b, "counter", "semantic_cache_hits_total",
                 "Generation requests that reused KV, by the tier it came from.", es, n,
                 ",tier=\"hot\"", e->hits_hot);
    for (size_t i = 0; i < n; i++)
        strbuf_printf(b, "semantic_cache_hits_total{model=\"%s\",tier=\"warm\"} %llu\n",
                      es[i].model, (unsigned long long)es[i].hits_warm);
    MODEL_SERIES(b, "counter", "semantic_cache_misses_total",
                 "Generation requests that reused no KV.", es, n, "", e->misses);
    MODEL_SERIES(b, "gauge", "semantic_pool_blocks_used", "KV blocks in use.", es, n, "",
                 e->pool_used);
    MODEL_SERIES(b, "gauge", "semantic_pool_blocks_total", "KV blocks in the pool.", es, n, "",
                 e->pool_total);
    MODEL_SERIES(b, "gauge", "semantic_pool_blocks_shared",
                 "KV blocks referenced by more than one sequence (counted once in blocks_used).",
                 es, n, "", e->pool_shared);
    MODEL_SERIES(b, "gauge", "semantic_pool_blocks_pinned",
                 "KV blocks kept from reclaim by agent pins and cache breakpoints.", es, n, "",
                 e->pool_pinned);
    MODEL_SERIES(b, "gauge", "semantic_pool_block_bytes", "Bytes of one KV block.", es, n, "",
                 e->pool_block_bytes);
    MODEL_SERIES(b, "gauge", "semantic_agents", "Agents by memory tier.", es, n,
                 ",tier=\"hot\"", e->agents_hot);
    for (size_t i = 0; i < n; i++)
        strbuf_printf(b, "semantic_agents{model=\"%s\",tier=\"warm\"} %u\n", es[i].model,
                      es[i].agents_warm);
    MODEL_SERIES(b, "gauge", "semantic_disk_bytes",
                 "Bytes of every file the disk budget counts in the model's cache folder (agents, "
                 "quarantined, unreadable and newer-version files).",
                 es, n, "", e->disk_bytes);
    MODEL_SERIES(b, "gauge", "semantic_persistence_enabled",
                 "1 when agent memory is persisted to disk.", es, n, "", e->persistent != 0);
    MODEL_SERIES(b, "gauge", "semantic_queue_depth", "Requests waiting for admission.", es, n, "",
                 e->waiting);
    MODEL_SERIES(b, "gauge", "semantic_running_requests", "Requests being generated.", es, n, "",
                 e->running);
    MODEL_SERIES(b, "counter", "semantic_evictions_total",
                 "Sequences whose KV blocks were reclaimed.", es, n, "", e->evictions);
    MODEL_SERIES(b, "counter", "semantic_agent_forks_total", "Agents created by fork.", es, n, "",
                 e->forks);
    MODEL_SERIES(b, "counter", "semantic_agent_saves_total",
                 "Agent memory writes to the warm store.", es, n, "", e->saves);
    MODEL_SERIES(b, "counter", "semantic_agent_save_failures_total",
                 "Failed agent memory writes.", es, n, "", e->save_failures);
    MODEL_SERIES(b, "counter", "semantic_agent_saves_stopped_total",
                 "Agent memory writes given up because a request of the agent arrived.", es, n,
                 "", e->saves_stopped);
    MODEL_SERIES(b, "counter", "semantic_agent_load_failures_total",
                 "Failed agent memory loads.", es, n, "", e->load_failures);
    MODEL_SERIES(b, "gauge", "semantic_agent_io_in_flight",
                 "Agent memory saves and loads not settled yet (a deleted or evicted agent being "
                 "written frees its KV blocks when the write ends).",
                 es, n, "", e->io_in_flight);
    remote_lines(b, es, n);
}
