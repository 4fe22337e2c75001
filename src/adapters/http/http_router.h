/*
 * http_router.h - the table of routes and the dispatch of a request to one.
 *
 * Every route of the server is listed in http_router.c, in one table: its
 * method, its path pattern (one "{id}" segment at most), the handler, the
 * API shape its errors take, who may call it and what it needs:
 *
 *   public   /health, /health/ready: no credentials
 *   api      every /v1 route and /metrics: an API key when keys are configured
 *   admin    /admin/...: the admin key; 404 when none is configured
 *
 * Dispatch, in order: match the path (404 when nothing matches, 405 with
 * Allow when only the method differs), check credentials (401), check the
 * server's state (503 while the model loads; generation routes also 503
 * while draining), then run the handler: on the event-loop worker that
 * dispatched, or, for the routes that wait on the engine thread (the agent
 * store's operations, the engine's figures), on the server's blocking
 * thread (http_exchange_run_blocking).
 *
 * Threads: the table is immutable; any thread may dispatch.
 */
#ifndef SEM_HTTP_ROUTER_H
#define SEM_HTTP_ROUTER_H

#include <stddef.h>

#include "http_api.h"
#include "http_exchange.h"

typedef void (*http_handler)(http_api *api, http_exchange *x);

/* Number of routes, and the name of route i (a metrics label; static). */
size_t http_router_count(void);
const char *http_router_name(size_t i);

/* Runs the request through the table. It replies, or a continuation will. */
void http_router_dispatch(http_api *api, http_exchange *x);

#endif
