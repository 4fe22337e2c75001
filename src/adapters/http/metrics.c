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

/* The remote tier's series: semantic_remote_enabled always, the rest with
 * the tier on. */
static void remote_lines(strbuf *b, const metrics_remote *r)
{
    gauge(b, "semantic_remote_enabled",
          "1 when agent memory is shared through a remote tier (--cache-remote).",
          (unsigned long long)(r->enabled != 0));
    if (!r->enabled)
        return;
    const remote_stats *s = &r->stats;
    gauge(b, "semantic_remote_up", "1 when the remote tier answers, 0 while it is down.",
          (unsigned long long)(s->state == REMOTE_OK));
    counter(b, "semantic_remote_puts_total", "Agents written to the remote tier.", s->puts);
    counter(b, "semantic_remote_put_failures_total",
            "Agent writes to the remote tier that failed or were skipped while it was down.",
            s->put_failures);
    counter(b, "semantic_remote_gets_total", "Agent reads from the remote tier.", s->gets);
    counter(b, "semantic_remote_get_hits_total", "Agent reads that found the agent.",
            s->get_hits);
    counter(b, "semantic_remote_get_failures_total",
            "Agent reads that failed or were skipped while the tier was down.",
            s->get_failures);
    counter(b, "semantic_remote_corrupt_total",
            "Remote entries dropped because they failed verification (recomputed instead).",
            s->corrupt);
    counter(b, "semantic_remote_timeouts_total",
            "Remote tier commands that ran past their timeout.", s->timeouts);
    counter(b, "semantic_remote_full_total",
            "Writes the remote tier refused at its memory limit (maxmemory).", s->full);
    counter(b, "semantic_remote_dropped_total",
            "Queued remote writes dropped (queue full, or left at shutdown).", s->dropped);
    counter(b, "semantic_remote_evictions_total",
            "Agents removed from the remote tier by its byte budget.", s->evictions);
    gauge(b, "semantic_remote_bytes", "Bytes the remote tier holds for this model, as last seen.",
          s->bytes);
    gauge(b, "semantic_remote_queue", "Agent writes waiting for the remote tier.", r->queued);
}

void metrics_render(const metrics *m, const metrics_engine *e, int ready, strbuf *b)
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
    if (!e || !e->available)
        return;
    header(b, "semantic_cache_hits_total", "counter",
           "Generation requests that reused KV, by the tier it came from.");
    strbuf_printf(b, "semantic_cache_hits_total{tier=\"hot\"} %llu\n",
                    (unsigned long long)e->hits_hot);
    strbuf_printf(b, "semantic_cache_hits_total{tier=\"warm\"} %llu\n",
                    (unsigned long long)e->hits_warm);
    counter(b, "semantic_cache_misses_total", "Generation requests that reused no KV.", e->misses);
    gauge(b, "semantic_pool_blocks_used", "KV blocks in use.", e->pool_used);
    gauge(b, "semantic_pool_blocks_total", "KV blocks in the pool.", e->pool_total);
    gauge(b, "semantic_pool_blocks_shared",
          "KV blocks referenced by more than one sequence (counted once in blocks_used).",
          e->pool_shared);
    gauge(b, "semantic_pool_blocks_pinned",
          "KV blocks kept from reclaim by agent pins and cache breakpoints.", e->pool_pinned);
    gauge(b, "semantic_pool_block_bytes", "Bytes of one KV block.", e->pool_block_bytes);
    header(b, "semantic_agents", "gauge", "Agents by memory tier.");
    strbuf_printf(b, "semantic_agents{tier=\"hot\"} %u\nsemantic_agents{tier=\"warm\"} %u\n",
                    e->agents_hot, e->agents_warm);
    gauge(b, "semantic_disk_bytes", "Bytes of every file the disk budget counts in the cache folder (agents of every model, quarantined, unreadable and newer-version files).", e->disk_bytes);
    gauge(b, "semantic_persistence_enabled", "1 when agent memory is persisted to disk.",
          (unsigned long long)(e->persistent != 0));
    gauge(b, "semantic_queue_depth", "Requests waiting for admission.", e->waiting);
    gauge(b, "semantic_running_requests", "Requests being generated.", e->running);
    counter(b, "semantic_evictions_total", "Sequences whose KV blocks were reclaimed.",
            e->evictions);
    counter(b, "semantic_agent_forks_total", "Agents created by fork.", e->forks);
    counter(b, "semantic_agent_saves_total", "Agent memory writes to the warm store.", e->saves);
    counter(b, "semantic_agent_save_failures_total", "Failed agent memory writes.",
            e->save_failures);
    counter(b, "semantic_agent_saves_stopped_total",
            "Agent memory writes given up because a request of the agent arrived.",
            e->saves_stopped);
    counter(b, "semantic_agent_load_failures_total", "Failed agent memory loads.",
            e->load_failures);
    gauge(b, "semantic_agent_io_in_flight",
          "Agent memory saves and loads not settled yet (a deleted or evicted agent being "
          "written frees its KV blocks when the write ends).",
          e->io_in_flight);
    remote_lines(b, &e->remote);
}
