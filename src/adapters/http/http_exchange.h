/*
 * http_exchange.h - one HTTP request and its response, as a route sees it.
 *
 * A route reads the request (method, path, the {id} of its pattern, query
 * arguments, headers, the whole body), notes what the request log and
 * metrics should say (agent, token counts), and answers exactly once:
 * with a JSON body, an error in its API's shape, or a stream.
 *
 * Streams. A stream's next() is called on the connection's thread each
 * time the client can take more bytes; it appends at least one byte, or
 * returns 1 after appending its last bytes. It may block (it should
 * return within the API's keep-alive interval). close() is called once,
 * when the response is done or the client went away; after it the stream
 * must not touch the exchange. A stream calls http_exchange_stream_done()
 * once it knows how it ended, so the log line and metrics are written
 * before the client reads the end.
 *
 * Threads: an exchange belongs to its connection's thread; routes run on
 * it. Ownership: strings returned live as long as the exchange.
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
    int (*next)(void *self, strbuf *out);
    void (*close)(void *self);
} http_stream_ops;

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
/* 1 when the client has closed its connection (checked without waiting). */
int http_exchange_client_gone(const http_exchange *x);

/* Set by the router before the route runs. */
void http_exchange_set_route(http_exchange *x, int route_id, http_shape shape, const char *param);
void http_exchange_set_namespace(http_exchange *x, const char *ns);

/* Facts for the request log and metrics. */
void http_exchange_note_agent(http_exchange *x, const char *agent_id);
void http_exchange_note_usage(http_exchange *x, uint32_t prompt_tokens, uint32_t cached_tokens,
                              uint32_t completion_tokens, double ttft_ms);
void http_exchange_note_error(http_exchange *x, const char *message);

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

#endif
