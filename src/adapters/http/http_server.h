/*
 * http_server.h - the HTTP listener (libmicrohttpd) and its limits.
 *
 * Connections are served from an event loop: libmicrohttpd's epoll mode
 * with a small pool of worker threads (`workers`, 4 by default), each
 * serving its share of the connections. No worker ever waits: a request
 * waiting for its generation, a stream between tokens and an idle
 * keep-alive connection hold no thread. The first two park their
 * connection (MHD_suspend_connection) and are resumed by the engine's
 * notification (http_exchange.h); the last is just a socket in epoll. So
 * an open connection costs a descriptor and its memory pool (the header
 * limit plus 16 KiB: 32 KiB by default), not a thread.
 * Routes that wait on the engine thread (the agent store's operations,
 * the engine's figures) run on two blocking threads instead, their
 * connection parked meanwhile. Everything a client can make the server
 * hold stays bounded:
 *
 *   max_connections   open connections served (1024 by default); one more
 *                     is answered 503 (with Retry-After) and closed; beyond
 *                     a margin of max_connections / 4 + 8 more, MHD closes
 *                     new connections without an answer. Each connection is
 *                     a file descriptor: at start the soft RLIMIT_NOFILE is
 *                     raised (up to the hard limit) to fit the limit and its
 *                     margin plus 256; if the hard limit is too low the
 *                     connection limit is lowered to fit, with a warning in
 *                     the log
 *   max_body_bytes    a larger body is answered 413: at once when
 *                     Content-Length says so, else once it has been read
 *                     (and dropped)
 *   max_header_bytes  request line and headers; more is answered 431 by
 *                     MHD (it sizes each connection's memory pool from
 *                     this limit plus room for I/O buffers: approximate)
 *   read_timeout_s    a request must arrive whole, headers and body,
 *                     within this; the watchdog shuts the socket down
 *                     otherwise (slow-loris clients hold nothing for long).
 *                     A kept-alive connection waits at most this long for
 *                     its next request.
 *   idle_timeout_s    a connection with no traffic for this long is closed
 *                     (MHD's timeout; streams send keep-alives well within
 *                     it; a parked request waiting for its answer is not
 *                     idle)
 *
 * A client that hangs up while its request waits or streams has its
 * generation cancelled: the watchdog polls the sockets of parked
 * connections every 100 ms and ends the exchanges of those that closed.
 *
 * Every response carries X-Request-ID: the client's (when it is 1 to 128
 * of [A-Za-z0-9._:-]) or a generated "req_..." one.
 *
 * Threads: start and stop on one thread. Requests run on MHD's workers,
 * plus the two blocking threads and one watchdog thread (read deadlines,
 * keep-alive timers, hang-ups); the engine thread wakes exchanges. Lock
 * `conns_lock` guards the list of open connections (the watchdog's view);
 * each exchange's `wake_lock` guards whether it is parked (see
 * http_server.c for the order). Ownership: the server borrows the api,
 * which must outlive it.
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
    uint32_t workers; /* event-loop threads; 0: 4 */
} http_server_opts;

/* 127.0.0.1:8000, 8 MiB bodies, 16 KiB headers, 1024 connections, 30 s to
 * send a request, 60 s idle, 4 workers. */
http_server_opts http_server_defaults(void);

typedef struct http_server http_server;

/* Listens and serves at once. SEM_EIO when the address cannot be bound. */
http_server *http_server_start(const http_server_opts *o, http_api *api, sem_err *err);
uint16_t http_server_port(const http_server *s);
/* Closes the listener and every connection (a request still waiting is
 * answered 503, a stream is cut), waits for their threads. */
void http_server_stop(http_server *s);

#endif
