/*
 * http_generation.h - one generation request on behalf of a route: submit
 * it (under the caller's namespaced agent key), then either collect the
 * whole text or read it piece by piece for a stream, and turn its outcome
 * into usage figures or an HTTP error.
 *
 * A route that blocks (non-streaming, or waiting for a stream's first
 * text) polls the client's socket between reads: a client that went away
 * has its request cancelled, so an abandoned generation stops within
 * HTTP_GEN_POLL_MS.
 *
 * Threads: an http_gen belongs to the connection thread of its exchange
 * (a stream's next() runs there too). Ownership: the http_gen holds one
 * reference to its request until http_gen_release (which cancels it if
 * it still runs).
 */
#ifndef SEM_HTTP_GENERATION_H
#define SEM_HTTP_GENERATION_H

#include <jansson.h>

#include "http_api.h"
#include "base/strbuf.h"
#include "http_errors.h"
#include "http_exchange.h"
#include "http_request.h"

#define HTTP_GEN_POLL_MS 250

typedef struct http_gen {
    http_api *api;
    const http_backend *be;
    gen_request *req;
    uint32_t n_prompt;
    int has_agent; /* the request named an agent (its memory is kept) */
    int done;      /* finished and every byte read */
    int client_gone;
    gen_result result; /* valid once done */
} http_gen;

/*
 * Submits p with agent id `agent_id` ("" for anonymous) in the exchange's
 * namespace. On failure e says why (SEM_EBUSY: queue full or draining;
 * SEM_ETOOLARGE: the prompt or the request does not fit).
 */
sem_status http_gen_submit(http_gen *g, http_api *api, const http_backend *be, http_exchange *x,
                           const char *agent_id, gen_params *p, req_err *e);

/* Reads until the request ends (or the client leaves): all text into out. */
/* Generated text as a JSON string (U+FFFD should jansson refuse it; the
 * engine only sends whole UTF-8 characters). */
json_t *http_gen_text(const char *s, size_t n);

void http_gen_collect(http_gen *g, http_exchange *x, strbuf *out);

/* Waits for the first text or the end, polling the client. */
void http_gen_first(http_gen *g, http_exchange *x, strbuf *out);

/* Reads what comes within timeout_ms into out; returns g->done. */
int http_gen_next(http_gen *g, strbuf *out, int timeout_ms);

/* The result so far: cached_tokens is known once the request was admitted. */
gen_result http_gen_peek(const http_gen *g);

/* 1 when the request ended normally (stop or length). */
int http_gen_ok(const http_gen *g);

/* The error of a request that did not end normally. */
http_error http_gen_error(const http_gen *g);

/* Tokens of the prompt newly kept in the agent's memory: prompt - cached
 * for an agent's request, 0 for an anonymous one. */
uint32_t http_gen_cache_creation(const http_gen *g);

/* Writes the usage to the exchange's log line and metrics. */
void http_gen_note_usage(const http_gen *g, http_exchange *x);

/* A Server-Timing header with the engine's queue and total time. */
void http_gen_add_timing(const http_gen *g, http_exchange *x);

void http_gen_release(http_gen *g);

#endif
