/*
 * http_fetch.h - one HTTP/1.1 request from the command line to a semantic
 * server: plain TCP to http://HOST[:PORT][/PREFIX], `Connection: close`,
 * a body sent with Content-Length, the answer's body handed to a callback
 * as it arrives (chunked transfer encoding decoded), so a client can
 * print an SSE stream live.
 *
 * HOST is a name (resolved with getaddrinfo), an IPv4 literal or an IPv6
 * literal in brackets ([::1]); PORT defaults to 80. https:// is refused
 * (SEM_EUNSUPPORTED): the command line speaks plain HTTP only.
 *
 * Timeout: timeout_ms bounds each wait (the connect, each send, each
 * read), not the whole exchange: a stream that keeps sending may run as
 * long as it sends.
 *
 * Errors name the URL. A status other than 2xx is not an error of
 * http_fetch: the status is returned and the body goes to the callback
 * like any other.
 *
 * Threads: reentrant; no state outside the call.
 */
#ifndef SEM_CLI_HTTP_FETCH_H
#define SEM_CLI_HTTP_FETCH_H

#include <stddef.h>

#include "domain/status.h"

/* A body callback: returns 0 to go on, nonzero to stop reading (the call
 * then fails with SEM_ECANCELLED and the callback's reason in err, if it
 * filled it). */
typedef int (*http_fetch_sink)(void *ctx, const char *data, size_t n);

typedef struct http_fetch_req {
    const char *server;  /* http://HOST[:PORT][/PREFIX] */
    const char *method;  /* GET, POST, DELETE */
    const char *path;    /* begins with '/', appended to PREFIX */
    const char *api_key; /* Authorization: Bearer KEY; NULL or "" for none */
    const char *body;    /* JSON sent as application/json; NULL for none */
    int timeout_ms;      /* each wait; <= 0: 300000 ms */
    http_fetch_sink sink;
    void *ctx;
} http_fetch_req;

/* The parts of a server URL. */
typedef struct http_fetch_url {
    char host[256]; /* without brackets */
    char port[8];
    char prefix[512]; /* "" or "/..." without a trailing '/' */
} http_fetch_url;

/* Splits url; SEM_EINVAL naming the URL and what is wrong with it. */
sem_status http_fetch_parse_url(const char *url, http_fetch_url *out, sem_err *err);

/*
 * Sends the request and reads the whole answer: *status gets the HTTP
 * status, the body goes to rq->sink. SEM_EIO when the server cannot be
 * reached or the connection breaks, SEM_ECORRUPT for an answer that is
 * not HTTP, SEM_ECANCELLED when the sink stopped, each naming the URL.
 */
sem_status http_fetch(const http_fetch_req *rq, int *status, sem_err *err);

#endif
