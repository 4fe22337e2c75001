/*
 * metrics.h - the registry behind GET /metrics: request counts by route and
 * status, latency and time-to-first-token histograms, token counters and
 * connection counts, rendered in the Prometheus text format (0.0.4)
 * together with the engine's figures of the moment.
 *
 * Every series is a fixed, preallocated atomic counter: recording is a
 * few relaxed atomic adds, never a lock or an allocation, so the hot path
 * of a request pays nothing measurable. Routes are numbered by the router
 * (0 .. n_routes-1); statuses 100..599 each have their own counter.
 *
 * Threads: any thread may record and render at once. A rendered page is
 * not a snapshot across series (each value is read once, atomically).
 */
#ifndef SEM_HTTP_METRICS_H
#define SEM_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "ports/remote_tier.h"

typedef struct metrics metrics;

/* The remote tier shared by several servers (ports/remote_tier.h). */
typedef struct metrics_remote {
    int enabled;        /* --cache-remote given: the rest is meaningful */
    remote_stats stats;
    uint32_t queued;    /* remote writes waiting */
    uint64_t budget_bytes; /* --cache-remote-mb in bytes; 0: no budget */
} metrics_remote;

/* "ok", "down" or "off" (no remote tier): readiness and /v1/stats say it. */
const char *metrics_remote_state(const metrics_remote *r);

/* The engine's and stores' figures, read when the page is rendered. */
typedef struct metrics_engine {
    int available; /* 0 while the model loads: the rest is absent */
    const char *model; /* the served name (a metric label: [A-Za-z0-9._:+-] only) */
    uint64_t ram_bytes; /* the model's weights and KV pool */
    uint32_t running, waiting;
    uint32_t agents_hot, agents_warm;
    uint32_t pool_used, pool_total;
    uint32_t pool_shared; /* blocks referenced by more than one sequence */
    uint64_t pool_pinned; /* blocks held by pins (agents' and cache breakpoints'), per holder */
    uint64_t pool_block_bytes;
    uint64_t forks;       /* agents created by fork */
    uint64_t hits_hot, hits_warm, misses;
    uint64_t evictions, saves, save_failures, saves_stopped, load_failures;
    uint64_t disk_bytes;
    uint64_t disk_budget; /* bytes the disk tier may hold; 0: unlimited */
    uint32_t io_in_flight; /* agent saves and loads not settled yet */
    int persistent; /* a warm store is open */
    metrics_remote remote;
} metrics_engine;

/* route_names[i] labels route i (the pointers are copied; the strings must be static). */
metrics *metrics_create(const char *const *route_names, size_t n_routes);
void metrics_free(metrics *m);

/* One finished request: its route (or -1: no route matched), status, duration. */
void metrics_request(metrics *m, int route, int status, double seconds);
/* Time from arrival to the first generated token. */
void metrics_ttft(metrics *m, double seconds);
void metrics_tokens(metrics *m, uint32_t prompt, uint32_t cached, uint32_t generated);
/* Open connections: +1 when one opens, -1 when it closes. */
void metrics_connection(metrics *m, int delta);
void metrics_connection_rejected(metrics *m);
void metrics_stream_aborted(metrics *m);

/* Sums of the token counters (tests and readiness use them). */
typedef struct metrics_totals {
    uint64_t prompt_tokens, cached_tokens, generated_tokens, requests;
    int64_t connections;
} metrics_totals;
metrics_totals metrics_read_totals(const metrics *m);

/* Appends the page to out: the server's series, then those of every
 * loaded model (es[0..n), each line labelled model="..."); ready: 1
 * ready, 0 not. */
void metrics_render(const metrics *m, const metrics_engine *es, size_t n, int ready, strbuf *out);

#endif
