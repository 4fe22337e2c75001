/*
 * http_fetch.c - one HTTP/1.1 request over plain TCP (http_fetch.h).
 *
 * The exchange reads top-down: parse the URL, resolve and connect (each
 * address in turn, non-blocking connect bounded by the timeout), send the
 * request, read until the end of the headers, then the body by its
 * framing: chunked, Content-Length, or until the server closes.
 */
#include "http_fetch.h"
#include "base/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024) /* bytes: the status line and headers */
#define DEFAULT_TIMEOUT_MS 300000

/* ---------------------------------------------------------------- URL */

sem_status http_fetch_parse_url(const char *url, http_fetch_url *out, sem_err *err)
{
    memset(out, 0, sizeof *out);
    if (!url || !*url)
        return sem_err_set(err, SEM_EINVAL, "--server: a URL is required (http://HOST:PORT)");
    if (strncasecmp(url, "https://", 8) == 0)
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "--server %s: https is not supported, use http://", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return sem_err_set(err, SEM_EINVAL, "--server %s: the URL must begin with http://", url);
    const char *h = url + 7, *end;
    size_t hlen;
    if (*h == '[') { /* an IPv6 literal */
        end = strchr(h, ']');
        if (!end)
            return sem_err_set(err, SEM_EINVAL, "--server %s: no ']' after the IPv6 address",
                               url);
        h++;
        hlen = (size_t)(end - h);
        end++;
    } else {
        hlen = strcspn(h, ":/");
        end = h + hlen;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return sem_err_set(err, SEM_EINVAL, "--server %s: the host is empty or longer than %zu "
                           "bytes", url, sizeof out->host - 1);
    memcpy(out->host, h, hlen);
    snprintf(out->port, sizeof out->port, "80");
    if (*end == ':') {
        size_t plen = strcspn(end + 1, "/");
        char *stop;
        long p = strtol(end + 1, &stop, 10);
        if (plen == 0 || stop != end + 1 + plen || p < 1 || p > 65535)
            return sem_err_set(err, SEM_EINVAL, "--server %s: the port is not in 1..65535", url);
        snprintf(out->port, sizeof out->port, "%ld", p);
        end += 1 + plen;
    }
    if (*end && *end != '/')
        return sem_err_set(err, SEM_EINVAL, "--server %s: unexpected '%c' after the host", url,
                           *end);
    size_t n = strlen(end);
    while (n > 0 && end[n - 1] == '/')
        n--;
    if (n >= sizeof out->prefix)
        return sem_err_set(err, SEM_EINVAL, "--server %s: the path is longer than %zu bytes",
                           url, sizeof out->prefix - 1);
    memcpy(out->prefix, end, n);
    return SEM_OK;
}

/* ---------------------------------------------------------------- socket */

/* Waits for fd to be ready for events; 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* A non-blocking connect to one address, within timeout_ms. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, timeout_ms) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            int e = soerr ? soerr : errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

static int dial(const http_fetch_url *u, const char *url, int timeout_ms, sem_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        sem_err_set(err, SEM_EIO, "%s: cannot resolve %s: %s", url, u->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        if ((fd = connect_one(ai, timeout_ms)) < 0)
            e = errno;
    freeaddrinfo(res);
    if (fd < 0)
        sem_err_set(err, SEM_EIO, "%s: cannot connect: %s", url, strerror(e));
    return fd;
}

static int send_all(int fd, const char *p, size_t n, int timeout_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, timeout_ms) != 0)
                return -1;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there (up to cap), waiting up to timeout_ms; bytes read,
 * 0 at the end of the stream, -1 with errno. */
static ssize_t recv_some(int fd, char *buf, size_t cap, int timeout_ms)
{
    for (;;) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(fd, POLLIN, timeout_ms) != 0)
            return -1;
    }
}

/* ---------------------------------------------------------------- body framing */

typedef enum { BODY_CLOSE, BODY_LENGTH, BODY_CHUNKED } body_framing;

typedef enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE } chunk_state;

typedef struct body_reader {
    body_framing framing;
    unsigned long long left; /* BODY_LENGTH: bytes to come; CH_DATA: of the chunk */
    chunk_state cs;
    strbuf line; /* chunked: a size or trailer line being read */
    http_fetch_sink sink;
    void *ctx;
    int stopped, bad, done;
} body_reader;

static void deliver(body_reader *b, const char *p, size_t n)
{
    if (n > 0 && !b->stopped && b->sink && b->sink(b->ctx, p, n) != 0)
        b->stopped = 1;
}

/* One line of the chunked framing is complete in b->line (without CRLF). */
static void chunk_line(body_reader *b)
{
    const char *s = b->line.data ? b->line.data : "";
    if (b->cs == CH_SIZE) {
        char *end;
        errno = 0;
        unsigned long long size = strtoull(s, &end, 16);
        if (end == s || errno || (*end && *end != ';' && *end != ' '))
            b->bad = 1;
        b->left = size;
        b->cs = size ? CH_DATA : CH_TRAILER;
    } else if (b->cs == CH_DATA_END) {
        if (*s)
            b->bad = 1;
        b->cs = CH_SIZE;
    } else if (b->cs == CH_TRAILER && !*s) {
        b->cs = CH_DONE;
        b->done = 1;
    }
    strbuf_truncate(&b->line, 0);
}

static void feed_chunked(body_reader *b, const char *p, size_t n)
{
    while (n > 0 && !b->bad && !b->done) {
        if (b->cs == CH_DATA) {
            size_t take = n < b->left ? n : (size_t)b->left;
            deliver(b, p, take);
            p += take;
            n -= take;
            if ((b->left -= take) == 0)
                b->cs = CH_DATA_END;
            continue;
        }
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        strbuf_append(&b->line, p, take);
        if (b->line.len > 4096 || b->line.oom) {
            b->bad = 1;
            return;
        }
        p += take;
        n -= take;
        if (nl) {
            p++, n--;
            if (b->line.len > 0 && b->line.data[b->line.len - 1] == '\r')
                strbuf_truncate(&b->line, b->line.len - 1);
            chunk_line(b);
        }
    }
}

static void feed(body_reader *b, const char *p, size_t n)
{
    if (b->framing == BODY_CHUNKED) {
        feed_chunked(b, p, n);
    } else if (b->framing == BODY_LENGTH) {
        size_t take = n < b->left ? n : (size_t)b->left;
        deliver(b, p, take);
        if ((b->left -= take) == 0)
            b->done = 1;
    } else {
        deliver(b, p, n);
    }
}

/* ---------------------------------------------------------------- headers */

/* The value of header `name` in the head (NUL-terminated), or NULL; its
 * length in *len. */
static const char *header(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\n"); l; l = strstr(l, "\n")) {
        l++;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            *len = strcspn(v, "\r\n");
            return v;
        }
    }
    return NULL;
}

static sem_status parse_head(const char *head, const char *url, int *status, body_reader *b,
                             sem_err *err)
{
    int major, minor, code;
    if (sscanf(head, "HTTP/%d.%d %d", &major, &minor, &code) != 3 || code < 100 || code > 999)
        return sem_err_set(err, SEM_ECORRUPT, "%s: the answer is not HTTP (%.40s)", url, head);
    *status = code;
    size_t len;
    const char *te = header(head, "Transfer-Encoding", &len);
    const char *cl = header(head, "Content-Length", &len);
    if (te && len >= 7 && strncasecmp(te + len - 7, "chunked", 7) == 0) {
        b->framing = BODY_CHUNKED;
    } else if (cl) {
        char *end;
        b->framing = BODY_LENGTH;
        b->left = strtoull(cl, &end, 10);
        if (end == cl)
            return sem_err_set(err, SEM_ECORRUPT, "%s: a bad Content-Length", url);
        b->done = b->left == 0;
    }
    if (code == 204 || code == 304)
        b->done = 1;
    return SEM_OK;
}

/* ---------------------------------------------------------------- the exchange */

static sem_status send_request(int fd, const http_fetch_req *rq, const http_fetch_url *u,
                               const char *url, int timeout_ms, sem_err *err)
{
    strbuf r = {0};
    int v6 = strchr(u->host, ':') != NULL;
    strbuf_printf(&r, "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nConnection: close\r\n"
                      "Accept: application/json, text/event-stream\r\n",
                  rq->method, u->prefix, rq->path, v6 ? "[" : "", u->host, v6 ? "]" : "",
                  u->port);
    if (rq->api_key && *rq->api_key)
        strbuf_printf(&r, "Authorization: Bearer %s\r\n", rq->api_key);
    size_t blen = rq->body ? strlen(rq->body) : 0;
    if (rq->body)
        strbuf_printf(&r, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    strbuf_puts(&r, "\r\n");
    if (rq->body)
        strbuf_append(&r, rq->body, blen);
    sem_status st = SEM_OK;
    if (r.oom)
        st = sem_err_set(err, SEM_ENOMEM, "%s: no memory for the request", url);
    else if (send_all(fd, r.data, r.len, timeout_ms) != 0)
        st = sem_err_set(err, SEM_EIO, "%s: cannot send the request: %s", url,
                         strerror(errno));
    strbuf_free(&r);
    return st;
}

/* Reads the head; bytes of the body read with it go to the reader. */
static sem_status read_answer(int fd, const char *url, int timeout_ms, int *status,
                              body_reader *b, sem_err *err)
{
    strbuf head = {0};
    char buf[16384];
    sem_status st = SEM_OK;
    for (;;) {
        ssize_t r = recv_some(fd, buf, sizeof buf, timeout_ms);
        if (r <= 0) {
            if (r == 0)
                st = sem_err_set(err, SEM_EIO, "%s: the server closed the connection before "
                                 "the answer's headers", url);
            else if (errno == ETIMEDOUT)
                st = sem_err_set(err, SEM_EIO, "%s: no answer within %d ms", url, timeout_ms);
            else
                st = sem_err_set(err, SEM_EIO, "%s: %s before the answer's headers", url,
                                 strerror(errno));
            break;
        }
        strbuf_append(&head, buf, (size_t)r);
        char *end = head.data ? strstr(head.data, "\r\n\r\n") : NULL;
        if (head.oom || (!end && head.len > HEAD_MAX)) {
            st = sem_err_set(err, SEM_ECORRUPT, "%s: headers longer than %d bytes", url,
                             HEAD_MAX);
            break;
        }
        if (!end)
            continue;
        *end = '\0';
        size_t body_at = (size_t)(end + 4 - head.data);
        if ((st = parse_head(head.data, url, status, b, err)) == SEM_OK)
            feed(b, head.data + body_at, head.len - body_at);
        break;
    }
    strbuf_free(&head);
    return st;
}

static sem_status read_body(int fd, const char *url, int timeout_ms, body_reader *b,
                            sem_err *err)
{
    char buf[16384];
    while (!b->done && !b->bad && !b->stopped) {
        ssize_t r = recv_some(fd, buf, sizeof buf, timeout_ms);
        if (r < 0)
            return errno == ETIMEDOUT
                       ? sem_err_set(err, SEM_EIO, "%s: nothing more of the answer within %d "
                                     "ms", url, timeout_ms)
                       : sem_err_set(err, SEM_EIO, "%s: reading the answer: %s", url,
                                     strerror(errno));
        if (r == 0) {
            if (b->framing == BODY_CLOSE)
                return SEM_OK;
            return sem_err_set(err, SEM_EIO, "%s: the server closed the connection in the "
                               "middle of the answer", url);
        }
        feed(b, buf, (size_t)r);
    }
    if (b->bad)
        return sem_err_set(err, SEM_ECORRUPT, "%s: bad chunked encoding in the answer", url);
    if (b->stopped)
        return sem_err_set(err, SEM_ECANCELLED, "%s: stopped reading the answer", url);
    return SEM_OK;
}

sem_status http_fetch(const http_fetch_req *rq, int *status, sem_err *err)
{
    char url[1200];
    snprintf(url, sizeof url, "%s %s%s", rq->method, rq->server ? rq->server : "",
             rq->path);
    http_fetch_url u;
    sem_status st = http_fetch_parse_url(rq->server, &u, err);
    if (st != SEM_OK)
        return st;
    /* Drop a trailing '/' of the server from the name in messages. */
    snprintf(url, sizeof url, "%s http://%s%s%s:%s%s%s", rq->method,
             strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "", u.port,
             u.prefix, rq->path);
    int timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : DEFAULT_TIMEOUT_MS;
    int fd = dial(&u, url, timeout_ms, err);
    if (fd < 0)
        return SEM_EIO;
    body_reader b = {.sink = rq->sink, .ctx = rq->ctx};
    *status = 0;
    st = send_request(fd, rq, &u, url, timeout_ms, err);
    if (st == SEM_OK)
        st = read_answer(fd, url, timeout_ms, status, &b, err);
    if (st == SEM_OK)
        st = read_body(fd, url, timeout_ms, &b, err);
    strbuf_free(&b.line);
    close(fd);
    return st;
}
