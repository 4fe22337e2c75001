/*
 * http_generation.h - one generation request on behalf of a route: submit
 * it (under the caller's namespaced agent key), read its text as it
 * streams, and turn its outcome into usage figures or an HTTP error.
 *
 * Reading never waits: http_gen_read takes what is readable now. The
 * request notifies its exchange (http_exchange_wake) whenever more text is
 * readable or it finished, so a route reads from an exchange step
 * (http_exchange.h) and returns until the next wake. A client that goes
 * away ends its exchange; the route's close releases the request, which
 * cancels it.
 *
 * Threads: an http_gen belongs to its exchange's thread (a step, a
 * stream's next()). Ownership: the http_gen holds one reference to its
 * request until http_gen_release (which cancels it if it still runs);
 * after the release the request no longer wakes the exchange.
 */
#ifndef SEM_HTTP_GENERATION_H
#define SEM_HTTP_GENERATION_H

#include <jansson.h>

#include "http_api.h"
#include "base/strbuf.h"
#include "http_errors.h"
#include "http_exchange.h"
#include "http_request.h"

typedef struct http_gen {
    http_api *api;
    const http_backend *be;
    gen_request *req;
    uint32_t n_prompt;
    int has_agent; /* the request named an agent (its memory is kept) */
    char key[AGENT_KEY_MAX + 1]; /* the agent's key in its namespace ("" anonymous) */
    int done;      /* finished and every byte read */
    gen_result result; /* valid once done */
} http_gen;

/*
 * Submits p with agent id `agent_id` ("" for anonymous) in the exchange's
 * namespace; the request wakes x as it progresses. On failure e says why
 * (SEM_EBUSY: queue full or draining; SEM_ETOOLARGE: the prompt or the
 * request does not fit).
 */
sem_status http_gen_submit(http_gen *g, http_api *api, const http_backend *be, http_exchange *x,
                           const char *agent_id, gen_params *p, req_err *e);

/* Generated text as a JSON string (U+FFFD should jansson refuse it; the
 * engine only sends whole UTF-8 characters). */
json_t *http_gen_text(const char *s, size_t n);

/* Appends the text readable now to out, without waiting; returns g->done
 * (finished and every byte read). The read that finds the end records the
 * request in the api's stats window and, for an agent, its history. */
int http_gen_read(http_gen *g, strbuf *out);

/* What a route's wait step does next. */
typedef enum http_gen_next {
    HTTP_GEN_WAIT,   /* nothing to answer yet: stay suspended */
    HTTP_GEN_WHOLE,  /* the request ended: answer with the whole text */
    HTTP_GEN_STREAM, /* the first text is here: open the stream */
    HTTP_GEN_FAILED, /* a stream's request failed before any text: answer *he */
} http_gen_next;

/*
 * One wait step of a generation route, shared by both APIs: reads what is
 * readable into text and says what to do. A whole answer waits for the
 * end; a stream waits for its first text (or the end), so a request that
 * fails before producing anything gets an ordinary error (usage noted on
 * x) instead of a stream.
 */
http_gen_next http_gen_wait_step(http_gen *g, strbuf *text, int stream, http_exchange *x,
                                 http_error *he);

/* How a generation route answers, for http_gen_step. */
typedef struct http_gen_route {
    void (*reply_whole)(void *call); /* the whole answer, from the text read */
    void (*free)(void *call);
    const http_stream_ops *stream;   /* the stream, opened with its first text */
} http_gen_route;

/*
 * The wait step of a generation route (its http_wait_ops step): stays
 * suspended, answers whole and frees the call, frees the call and answers
 * the error of a stream that failed before any text, or opens the stream.
 */
void http_gen_step(http_gen *g, strbuf *text, int stream, http_exchange *x,
                   const http_gen_route *route, void *call);

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
