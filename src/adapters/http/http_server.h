/*
 * http_server.h - the HTTP listener (libmicrohttpd) and its limits.
 *
 * One thread per connection (MHD's thread-per-connection mode): a route
 * may block on its generation request, and a stream's next() may block
 * between tokens, without holding anyone else up. The number of
 * connections is therefore bounded, and so is everything a client can
 * make the server hold:
 *
 *   max_connections   open connections served; one more is answered 503
 *                     (with Retry-After) and closed; beyond a margin of
 *                     max_connections / 4 + 8 more, MHD closes new
 *                     connections without an answer
 *   max_body_bytes    a larger body is answered 413: at once when
 *                     Content-Length says so, else once it has been read
 *                     (and dropped)
 *   max_header_bytes  request line and headers; more is answered 431 by
 *                     MHD (it sizes each connection's memory pool from
 *                     this limit plus room for I/O buffers: approximate)
 *   read_timeout_s    a request must arrive whole, headers and body,
 *                     within this; a watchdog shuts the socket down
 *                     otherwise (slow-loris clients hold nothing for long).
 *                     A kept-alive connection waits at most this long for
 *                     its next request.
 *   idle_timeout_s    a connection with no traffic for this long is closed
 *                     (MHD's timeout; streams send keep-alives well within it)
 *
 * Every response carries X-Request-ID: the client's (when it is 1 to 128
 * of [A-Za-z0-9._:-]) or a generated "req_..." one.
 *
 * Threads: start and stop on one thread; requests run on MHD's threads
 * plus one watchdog thread. Lock `conns_lock` guards the list of open
 * connections (the watchdog's view). Ownership: the server borrows the
 * api, which must outlive it.
 */
#ifndef SEM_HTTP_SERVER_H
#define SEM_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"
#include "http_api.h"

typedef struct http_server_opts {
    const char *host; /* address or name to listen on */
    uint16_t port;    /* 0: any free port (http_server_port says which) */
    size_t max_body_bytes;
    size_t max_header_bytes;
    uint32_t max_connections;
    uint32_t read_timeout_s;
    uint32_t idle_timeout_s;
} http_server_opts;

/* 127.0.0.1:8000, 8 MiB bodies, 16 KiB headers, 64 connections, 30 s to
 * send a request, 60 s idle. */
http_server_opts http_server_defaults(void);

typedef struct http_server http_server;

/* Listens and serves at once. SEM_EIO when the address cannot be bound. */
http_server *http_server_start(const http_server_opts *o, http_api *api, sem_err *err);
uint16_t http_server_port(const http_server *s);
/* Closes the listener and every connection, waits for their threads. */
void http_server_stop(http_server *s);

#endif
