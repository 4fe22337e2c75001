/*
 * redis_conn.h - one connection to a Redis server, over TCP or TLS
 * (redis_tls.h), speaking RESP: commands are formatted by hiredis
 * (redisFormatCommandArgv) and replies parsed by its redisReader, so
 * redis:// and rediss:// share every line but the byte I/O.
 *
 * Pipelining: redis_conn_append queues a command (sending the queue at
 * once when it holds more than 1 MiB), redis_conn_read sends what is
 * still queued and reads the oldest reply not yet read, so n appends then
 * n reads make one round trip.
 *
 * Timeouts: the TCP connect and the TLS handshake each have timeout_ms;
 * after that every wait for the socket (to send or to receive more bytes)
 * gives up after timeout_ms without progress.
 *
 * Errors: any I/O failure, timeout or unparsable reply closes the
 * connection (its queued commands and unread replies are dropped) and
 * returns SEM_EIO with the reason; redis_conn_timed_out then says
 * whether it was a timeout. A reply that is a Redis error ("-ERR ...",
 * "-OOM ...") is a reply like any other: the connection stays open.
 * Writes never raise SIGPIPE.
 *
 * States: CLOSED --connect ok--> OPEN --failure or close--> CLOSED. A
 * redis_conn is made CLOSED and may be connected again after a failure.
 *
 * Threads: one thread at a time per connection (the caller locks). The
 * caller owns the connection and the replies it returns (freeReplyObject).
 */
#ifndef SEM_REDIS_CONN_H
#define SEM_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"
#include "redis_tls.h"

typedef struct redis_conn redis_conn;

typedef struct redis_conn_opts {
    const char *host;     /* a name or an IP address (IPv6 without brackets) */
    int port;
    uint32_t timeout_ms;  /* see above; 0 is refused */
    const redis_tls *tls; /* NULL: plain TCP. Borrowed: outlives the connection */
} redis_conn_opts;

/* A CLOSED connection (no I/O yet). SEM_EINVAL, SEM_ENOMEM. */
redis_conn *redis_conn_new(const redis_conn_opts *o, sem_err *err);
/* Closes it if open and frees it. */
void redis_conn_free(redis_conn *c);

/* Resolves the host and connects to the first address that answers
 * (then the TLS handshake and its checks). Closes any previous connection
 * first. SEM_EIO with the reason (refused, timed out, the certificate
 * refused and why); SEM_ENOMEM. */
sem_status redis_conn_connect(redis_conn *c, sem_err *err);
/* Back to CLOSED (a no-op when closed). */
void redis_conn_close(redis_conn *c);
int redis_conn_is_open(const redis_conn *c);
/* Whether the failure that last closed the connection was a timeout. */
int redis_conn_timed_out(const redis_conn *c);

/* Queues a command of argc arguments (binary-safe with lens; lens NULL:
 * strlen). SEM_EIO (closed, see above); SEM_ENOMEM (closed too: a
 * pipeline missing a command would pair replies wrongly); SEM_EINVAL
 * when not open. */
sem_status redis_conn_append(redis_conn *c, int argc, const char *const *argv,
                             const size_t *lens, sem_err *err);
/* The oldest unread reply into *reply (caller frees). SEM_EIO (closed);
 * SEM_EINVAL when not open or no reply is pending. */
sem_status redis_conn_read(redis_conn *c, redisReply **reply, sem_err *err);
/* append + read of one command; SEM_EINVAL when other replies are
 * still unread (its reply would not be the next one). */
sem_status redis_conn_command(redis_conn *c, int argc, const char *const *argv,
                              const size_t *lens, redisReply **reply, sem_err *err);

#endif
