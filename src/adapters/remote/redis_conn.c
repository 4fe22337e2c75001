/*
 * redis_conn.c - one RESP connection over TCP or TLS (redis_conn.h).
 *
 * The bytes of every command go through one output buffer and every reply
 * through one redisReader; only io_send and io_recv know whether the
 * socket carries TLS. The socket is non-blocking: each send or receive
 * that cannot progress waits in poll() for at most timeout_ms, so a
 * stalled server costs timeout_ms per wait, never more, and a TLS session
 * that needs to read in order to write (or the reverse) waits for the
 * right direction.
 *
 * Queued bytes are sent when a reply is read, or at once by append when
 * more than FLUSH_BYTES are queued, so a pipeline of large commands never
 * holds all of them in memory. Redis buffers its replies to us without
 * limit while we write, so writing before reading cannot deadlock.
 */
#include "redis_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/deadline.h"

#define READ_BYTES (64 * 1024)   /* one recv() or SSL_read() at most */
#define FLUSH_BYTES (1u << 20)   /* queued bytes that append sends at once */
#define KEEP_OUT_BYTES (2u << 20) /* an output buffer larger is freed once sent */
#define SSL_WRITE_MAX (1 << 20)  /* one SSL_write() at most (its length is an int) */

struct redis_conn {
    char *host;
    int port;
    char where[300]; /* "HOST:PORT" ("[HOST]:PORT" for IPv6), for messages */
    uint32_t timeout_ms;
    const redis_tls *tls;

    int fd;              /* -1 while CLOSED */
    SSL *ssl;            /* the TLS session; NULL over TCP */
    int tls_clean;       /* no TLS failure yet: close may send close_notify */
    redisReader *reader; /* this connection's replies */
    char *out;           /* queued command bytes; [out_sent, out_len) unsent */
    size_t out_len, out_sent, out_cap;
    size_t pending;      /* commands queued or sent whose reply is unread */
    int timed_out;       /* the last failure was a timeout */
    char in[READ_BYTES];
};

/* ------------------------------------------------------------ lifetime */

redis_conn *redis_conn_new(const redis_conn_opts *o, sem_err *err)
{
    if (!o || !o->host || !o->host[0] || o->port < 1 || o->port > 65535 || o->timeout_ms == 0)
        return sem_err_set(err, SEM_EINVAL, "redis connection: needs a host, a port in 1..65535 "
                                            "and a timeout of at least 1 ms"), NULL;
    redis_conn *c = calloc(1, sizeof *c);
    char *host = strdup(o->host);
    if (!c || !host) {
        free(c);
        free(host);
        return sem_err_set(err, SEM_ENOMEM, "redis connection: out of memory"), NULL;
    }
    c->host = host;
    c->port = o->port;
    int v6 = strchr(host, ':') != NULL;
    snprintf(c->where, sizeof c->where, "%s%.255s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             o->port);
    c->timeout_ms = o->timeout_ms;
    c->tls = o->tls;
    c->fd = -1;
    return c;
}

void redis_conn_close(redis_conn *c)
{
    if (!c || c->fd < 0)
        return;
    if (c->ssl) {
        if (c->tls_clean)
            SSL_shutdown(c->ssl); /* one try at close_notify; the socket does not wait */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    close(c->fd);
    c->fd = -1;
    if (c->reader)
        redisReaderFree(c->reader);
    c->reader = NULL;
    if (c->out_cap > KEEP_OUT_BYTES) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    c->out_len = c->out_sent = 0;
    c->pending = 0;
}

void redis_conn_free(redis_conn *c)
{
    if (!c)
        return;
    redis_conn_close(c);
    free(c->out);
    free(c->host);
    free(c);
}

int redis_conn_is_open(const redis_conn *c) { return c->fd >= 0; }
int redis_conn_timed_out(const redis_conn *c) { return c->timed_out; }

/* Closes c after a failure; SEM_EIO with "HOST:PORT: <why>". */
static sem_status fail(redis_conn *c, int timed_out, sem_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static sem_status fail(redis_conn *c, int timed_out, sem_err *err, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    int no_cert = redis_tls_cert_requested(c->ssl);
    c->tls_clean = 0;
    redis_conn_close(c);
    c->timed_out = timed_out;
    return sem_err_set(err, SEM_EIO, "%s: %s%s", c->where, why,
                       no_cert ? " (the server asked for a client certificate, and none is "
                                 "given: cert= and key=)"
                               : "");
}

/* ------------------------------------------------------------ waiting */

/* Waits until fd is ready for events (POLLIN or POLLOUT), at most
 * timeout_ms. 1 ready (or in error: the next call says which), 0 timed
 * out, -1 poll failed (errno). */
static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    double deadline = deadline_now_ms() + timeout_ms;
    for (;;) {
        double left = deadline - deadline_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left + 1);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* ------------------------------------------------------------ byte I/O */

typedef enum io_result { IO_DONE, IO_WANT_READ, IO_WANT_WRITE, IO_EOF, IO_ERR } io_result;

/* Why a TLS call ended with SSL_get_error() == e, into why[cap]. */
static void tls_error(redis_conn *c, int e, int saved_errno, char *why, size_t cap)
{
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(why, cap, "%s", saved_errno ? strerror(saved_errno)
                                             : "the server closed the connection");
    else
        redis_tls_why(c->ssl, why, cap);
}

/* What SSL_get_error() == e asks for; IO_ERR with why set otherwise. */
static io_result tls_result(redis_conn *c, int e, int saved_errno, char *why, size_t cap)
{
    if (e == SSL_ERROR_WANT_READ)
        return IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return IO_WANT_WRITE;
    c->tls_clean = 0;
    if (e == SSL_ERROR_ZERO_RETURN)
        return IO_EOF;
    tls_error(c, e, saved_errno, why, cap);
    return IO_ERR;
}

/* Sends some of p[0..n) (*done bytes). */
static io_result io_send(redis_conn *c, const char *p, size_t n, size_t *done, char *why,
                         size_t cap)
{
    *done = 0;
    if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        int w = SSL_write(c->ssl, p, n > SSL_WRITE_MAX ? SSL_WRITE_MAX : (int)n);
        if (w > 0) {
            *done = (size_t)w;
            return IO_DONE;
        }
        int e = errno;
        return tls_result(c, SSL_get_error(c->ssl, w), e, why, cap);
    }
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0) {
            *done = (size_t)w;
            return IO_DONE;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return IO_WANT_WRITE;
        if (errno != EINTR) {
            snprintf(why, cap, "send: %s", strerror(errno));
            return IO_ERR;
        }
    }
}

/* Receives some bytes into p[0..n) (*got > 0 with IO_DONE). */
static io_result io_recv(redis_conn *c, char *p, size_t n, size_t *got, char *why, size_t cap)
{
    *got = 0;
    if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(c->ssl, p, n > READ_BYTES ? READ_BYTES : (int)n);
        if (r > 0) {
            *got = (size_t)r;
            return IO_DONE;
        }
        int e = errno;
        return tls_result(c, SSL_get_error(c->ssl, r), e, why, cap);
    }
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            *got = (size_t)r;
            return IO_DONE;
        }
        if (r == 0)
            return IO_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return IO_WANT_READ;
        if (errno != EINTR) {
            snprintf(why, cap, "recv: %s", strerror(errno));
            return IO_ERR;
        }
    }
}

/* Waits for what io asked (IO_WANT_READ or IO_WANT_WRITE); closes c and
 * returns SEM_EIO when the wait times out or fails. `doing` names the
 * step for the message. */
static sem_status wait_for(redis_conn *c, io_result io, const char *doing, sem_err *err)
{
    int ready = wait_fd(c->fd, io == IO_WANT_READ ? POLLIN : POLLOUT, c->timeout_ms);
    if (ready > 0)
        return SEM_OK;
    if (ready == 0)
        return fail(c, 1, err, "timed out after %u ms %s", c->timeout_ms, doing);
    return fail(c, 0, err, "poll: %s", strerror(errno));
}

/* Sends every queued byte. */
static sem_status flush(redis_conn *c, sem_err *err)
{
    char why[256] = "";
    while (c->out_sent < c->out_len) {
        size_t done;
        io_result io = io_send(c, c->out + c->out_sent, c->out_len - c->out_sent, &done, why,
                               sizeof why);
        if (io == IO_DONE)
            c->out_sent += done;
        else if (io == IO_WANT_READ || io == IO_WANT_WRITE) {
            if (wait_for(c, io, "sending a command", err) != SEM_OK)
                return SEM_EIO;
        } else
            return fail(c, 0, err, "%s", io == IO_EOF ? "the server closed the connection" : why);
    }
    c->out_len = c->out_sent = 0;
    if (c->out_cap > KEEP_OUT_BYTES) {
        free(c->out); /* one large pipeline does not pin its memory */
        c->out = NULL;
        c->out_cap = 0;
    }
    return SEM_OK;
}

/* ------------------------------------------------------------ connecting */

/* Connects fd to a within timeout_ms. 0, or -1 with why set. */
static int connect_one(redis_conn *c, int fd, const struct addrinfo *a, char *why, size_t cap)
{
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR) {
        snprintf(why, cap, "connect: %s", strerror(errno));
        return -1;
    }
    int ready = wait_fd(fd, POLLOUT, c->timeout_ms);
    if (ready == 0) {
        snprintf(why, cap, "connect: timed out after %u ms", c->timeout_ms);
        c->timed_out = 1;
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr) {
        snprintf(why, cap, "connect: %s", strerror(soerr));
        return -1;
    }
    return 0;
}

/* The TCP connection: the first address of host that accepts. */
static sem_status tcp_connect(redis_conn *c, sem_err *err)
{
    char port[8], why[256] = "no address";
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->host, port, &hints, &res);
    if (g != 0)
        return fail(c, 0, err, "cannot resolve the host: %s", gai_strerror(g));
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        a->ai_protocol);
        if (fd < 0) {
            snprintf(why, sizeof why, "socket: %s", strerror(errno));
            continue;
        }
        c->timed_out = 0;
        if (connect_one(c, fd, a, why, sizeof why) == 0) {
            int one = 1; /* a command is one small write: send it now, not after 40 ms */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return fail(c, c->timed_out, err, "%s", why);
    return SEM_OK;
}

/* The TLS handshake over the connected socket, within timeout_ms. */
static sem_status tls_connect(redis_conn *c, sem_err *err)
{
    sem_err e = {0};
    c->ssl = redis_tls_session(c->tls, c->fd, c->host, &e);
    if (!c->ssl)
        return fail(c, 0, err, "%s", e.detail);
    c->tls_clean = 1;
    double deadline = deadline_now_ms() + c->timeout_ms;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return SEM_OK;
        char why[256] = "";
        io_result io = tls_result(c, SSL_get_error(c->ssl, r), errno, why, sizeof why);
        if (io == IO_EOF)
            snprintf(why, sizeof why, "the server closed the connection");
        if (io != IO_WANT_READ && io != IO_WANT_WRITE)
            return fail(c, 0, err, "TLS handshake: %s", why);
        double left = deadline - deadline_now_ms();
        int ready = left > 0 ? wait_fd(c->fd, io == IO_WANT_READ ? POLLIN : POLLOUT,
                                       (uint32_t)left + 1)
                             : 0;
        if (ready == 0)
            return fail(c, 1, err, "TLS handshake: timed out after %u ms", c->timeout_ms);
        if (ready < 0)
            return fail(c, 0, err, "TLS handshake: poll: %s", strerror(errno));
    }
}

sem_status redis_conn_connect(redis_conn *c, sem_err *err)
{
    redis_conn_close(c);
    c->timed_out = 0;
    c->reader = redisReaderCreate();
    if (!c->reader)
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a reply reader", c->where);
    sem_status st = tcp_connect(c, err);
    if (st == SEM_OK && c->tls)
        st = tls_connect(c, err);
    if (st != SEM_OK && c->reader) { /* fail() frees it once a socket was open */
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
    return st;
}

/* ------------------------------------------------------------ commands */

/* Room for n more queued bytes. */
static int out_reserve(redis_conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return 1;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < n)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return 0;
    c->out = p;
    c->out_cap = cap;
    return 1;
}

sem_status redis_conn_append(redis_conn *c, int argc, const char *const *argv,
                             const size_t *lens, sem_err *err)
{
    if (c->fd < 0)
        return sem_err_set(err, SEM_EINVAL, "%s: not connected", c->where);
    if (argc < 1 || !argv)
        return sem_err_set(err, SEM_EINVAL, "%s: a command needs a name", c->where);
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, (const char **)argv, lens);
    if (n < 0 || !out_reserve(c, (size_t)n)) {
        free(cmd);
        /* A pipeline with a hole in it would pair replies with the wrong
         * commands: the connection goes. */
        fail(c, 0, NULL, "out of memory");
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a command of %d "
                           "arguments (connection closed)", c->where, argc);
    }
    memcpy(c->out + c->out_len, cmd, (size_t)n);
    c->out_len += (size_t)n;
    free(cmd);
    c->pending++;
    if (c->out_len - c->out_sent >= FLUSH_BYTES)
        return flush(c, err);
    return SEM_OK;
}

/* Feeds received bytes to the reader until it holds one whole reply. */
static sem_status next_reply(redis_conn *c, redisReply **reply, sem_err *err)
{
    char why[256] = "";
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK)
            return fail(c, 0, err, "unreadable reply: %s", c->reader->errstr);
        if (r) {
            *reply = r;
            c->pending--;
            return SEM_OK;
        }
        size_t got;
        io_result io = io_recv(c, c->in, sizeof c->in, &got, why, sizeof why);
        if (io == IO_DONE) {
            if (redisReaderFeed(c->reader, c->in, got) != REDIS_OK)
                return fail(c, 0, err, "unreadable reply: %s", c->reader->errstr);
        } else if (io == IO_WANT_READ || io == IO_WANT_WRITE) {
            if (wait_for(c, io, "waiting for a reply", err) != SEM_OK)
                return SEM_EIO;
        } else {
            return fail(c, 0, err, "%s", io == IO_EOF ? "the server closed the connection" : why);
        }
    }
}

sem_status redis_conn_read(redis_conn *c, redisReply **reply, sem_err *err)
{
    *reply = NULL;
    if (c->fd < 0)
        return sem_err_set(err, SEM_EINVAL, "%s: not connected", c->where);
    if (c->pending == 0)
        return sem_err_set(err, SEM_EINVAL, "%s: no reply is pending", c->where);
    sem_status st = flush(c, err);
    if (st != SEM_OK)
        return st;
    return next_reply(c, reply, err);
}

sem_status redis_conn_command(redis_conn *c, int argc, const char *const *argv,
                              const size_t *lens, redisReply **reply, sem_err *err)
{
    *reply = NULL;
    if (c->fd >= 0 && c->pending)
        return sem_err_set(err, SEM_EINVAL, "%s: %zu replies are pending before this "
                           "command's", c->where, c->pending);
    sem_status st = redis_conn_append(c, argc, argv, lens, err);
    if (st != SEM_OK)
        return st;
    return redis_conn_read(c, reply, err);
}
