/*
 * http_exchange.h - one HTTP request and its response, as a route sees it.
 *
 * A route reads the request (method, path, the {id} of its pattern, query
 * arguments, headers, the whole body), notes what the request log and
 * metrics should say (agent, token counts), and answers exactly once:
 * with a JSON body, an error in its API's shape, or a stream.
 *
 * Nothing here may block: routes run on the server's event-loop workers,
 * a few threads that serve every connection (http_server.h). A route that
 * must wait hands the exchange a continuation instead:
 *
 *   http_exchange_wait(x, ops, self)
 *       parks the exchange (its connection costs no thread while parked);
 *       ops->step(self, x) runs on a worker right away and again each time
 *       the exchange is woken, until a step replies. A step reads what is
 *       there (the generation port's read without waiting) and returns.
 *       http_exchange_wake(x), the generation port's notify hook, wakes it;
 *       a wake may find nothing new. Once a step has replied the wait is
 *       over and the step disposes of self (frees it, or hands it to the
 *       stream it replied with).
 *
 *   http_exchange_run_blocking(x, ops, self)
 *       parks the exchange and runs ops->step(self, x) once on one of the
 *       server's blocking threads, for calls that wait on another thread
 *       (the agent store's operations wait for an engine step). The step
 *       replies or calls http_exchange_wait; it owns self from then on.
 *
 *   ops->close(self) is called instead, once, when the exchange ends before
 *   a step replied (the client went away, the server is stopping); it must
 *   release everything self holds (a generation request is cancelled by its
 *   release). Nothing of the exchange may be touched in close.
 *
 * Streams. A stream's next() runs on a worker each time the client can
 * take more bytes and each time the exchange is woken: it appends what is
 * ready, or returns 1 after appending its last bytes. It must not block:
 * with nothing ready it appends nothing and returns 0, and the connection
 * is parked until the next wake. `idle` is 1 when nothing was sent for the
 * API's keep-alive interval: then a stream with nothing to say appends a
 * keep-alive (an SSE comment or ping). close() is called once, when the
 * exchange ends; after it the stream must not touch the exchange. A
 * stream calls http_exchange_stream_done() once it knows how it ended, so
 * the log line and metrics are written before the client reads the end.
 * A client that leaves mid-stream ends the exchange (close releases the
 * generation, which cancels it).
 *
 * Threads: an exchange belongs to the worker serving its connection, or,
 * while a blocking step runs, to that step's thread; only
 * http_exchange_wake may be called from any thread. Ownership: strings
 * returned live as long as the exchange.
 */
#ifndef SEM_HTTP_EXCHANGE_H
#define SEM_HTTP_EXCHANGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "base/strbuf.h"
#include "http_errors.h"

typedef struct http_exchange http_exchange;

typedef struct http_stream_ops {
    int (*next)(void *self, strbuf *out, int idle);
    void (*close)(void *self);
} http_stream_ops;

typedef struct http_wait_ops {
    void (*step)(void *self, http_exchange *x);
    void (*close)(void *self);
} http_wait_ops;

const char *http_exchange_method(const http_exchange *x);
const char *http_exchange_path(const http_exchange *x);
/* The {id} segment of the matched route ("" if none). */
const char *http_exchange_param(const http_exchange *x);
const char *http_exchange_query(const http_exchange *x, const char *name);
const char *http_exchange_header(const http_exchange *x, const char *name);
const char *http_exchange_body(const http_exchange *x, size_t *len);
const char *http_exchange_request_id(const http_exchange *x);
/* The caller's agent namespace (auth.h): "" without API keys. */
const char *http_exchange_namespace(const http_exchange *x);
http_shape http_exchange_shape(const http_exchange *x);
/* Milliseconds since the request's headers arrived. */
double http_exchange_age_ms(const http_exchange *x);

/* Set by the router before the route runs. */
void http_exchange_set_route(http_exchange *x, int route_id, http_shape shape, const char *param);
void http_exchange_set_namespace(http_exchange *x, const char *ns);
/* The route_id the router set (-1: none matched). */
int http_exchange_route(const http_exchange *x);

/* Facts for the request log and metrics. */
void http_exchange_note_agent(http_exchange *x, const char *agent_id);
void http_exchange_note_usage(http_exchange *x, uint32_t prompt_tokens, uint32_t cached_tokens,
                              uint32_t completion_tokens, double ttft_ms);
void http_exchange_note_error(http_exchange *x, const char *message);

/*
 * The model the exchange runs on (http_api_use_model): what was leased,
 * and how to release it. The exchange releases it when it ends, after its
 * stream or wait was closed, so nothing of the request still uses what
 * the lease keeps alive. One per exchange; a second replaces nothing and
 * is released at once.
 */
typedef struct http_exchange_lease {
    const void *value; /* the leased object (an http_backend) */
    void *lease;
    void (*release)(void *ctx, void *lease);
    void *ctx;
    char name[128]; /* what it was leased under (the served model's name) */
} http_exchange_lease;

void http_exchange_set_lease(http_exchange *x, const http_exchange_lease *l);
/* NULL when the exchange holds none. */
const http_exchange_lease *http_exchange_lease_of(const http_exchange *x);

/* A response header for the reply to come (copied). */
void http_exchange_add_header(http_exchange *x, const char *name, const char *value);

/* Replies; exactly one per exchange. body is stolen. */
void http_exchange_reply_json(http_exchange *x, int status, json_t *body);
void http_exchange_reply_text(http_exchange *x, int status, const char *content_type,
                              const char *body, size_t len);
void http_exchange_reply_error(http_exchange *x, const http_error *e);
/* 200 with Content-Type text/event-stream; the exchange owns the stream. */
void http_exchange_reply_stream(http_exchange *x, const http_stream_ops *ops, void *self);
/* Called by a stream when its outcome is known (status stays 200). */
void http_exchange_stream_done(http_exchange *x);

/* Continuations (see the top of this file). */
void http_exchange_wait(http_exchange *x, const http_wait_ops *ops, void *self);
void http_exchange_run_blocking(http_exchange *x, const http_wait_ops *ops, void *self);
/* Wakes the exchange's step or stream. Any thread; cheap; never waits for
 * the exchange. The argument is the exchange (the notify hook's shape). */
void http_exchange_wake(void *x);

#endif
