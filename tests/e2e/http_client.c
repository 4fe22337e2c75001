/*
 * http_client.c - minimal HTTP/1.1 over TCP for tests and benchmarks.
 */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int hc_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A growing receive buffer. */
typedef struct rbuf {
    char *data;
    size_t len, cap, pos; /* pos: parsed up to */
} rbuf;

/* Reads more bytes; 0 on EOF, -1 on error or deadline. */
static int fill(int fd, rbuf *b, double deadline)
{
    if (b->cap - b->len < 4096) {
        size_t cap = b->cap ? b->cap * 2 : 16384;
        char *d = realloc(b->data, cap + 1);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    for (;;) {
        int left = (int)(deadline - hc_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = recv(fd, b->data + b->len, b->cap - b->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? 0 : -1;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        return n > 0 ? 1 : 0;
    }
}

static void append(http_response *r, const char *p, size_t n, double t0)
{
    if (n && r->t_first_body_ms == 0)
        r->t_first_body_ms = hc_now_ms() - t0;
    char *b = realloc(r->body, r->body_len + n + 1);
    if (!b)
        return;
    memcpy(b + r->body_len, p, n);
    r->body = b;
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

int hc_request(int fd, const char *method, const char *path, const char *headers, const char *body,
               size_t body_len, int keep_alive, int timeout_ms, http_response *out)
{
    memset(out, 0, sizeof *out);
    char head[8192];
    int hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", method,
                      path, body ? "Content-Type: application/json\r\n" : "",
                      keep_alive ? "" : "Connection: close\r\n", headers ? headers : "");
    if (hn < 0 || (size_t)hn >= sizeof head)
        return -1;
    char cl[64] = "";
    if (body) {
        /* Content-Length goes before the blank line. */
        hn -= 2;
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n\r\n", body_len);
    }
    double t0 = hc_now_ms(), deadline = t0 + timeout_ms;
    if (send_all(fd, head, (size_t)hn) || (body && send_all(fd, cl, strlen(cl))) ||
        (body && send_all(fd, body, body_len)))
        return -1;
    rbuf b = {0};
    char *end = NULL;
    while (!(end = b.data ? strstr(b.data, "\r\n\r\n") : NULL)) {
        if (fill(fd, &b, deadline) <= 0) {
            free(b.data);
            return -1;
        }
    }
    size_t head_len = (size_t)(end - b.data) + 4;
    out->head = strndup(b.data, head_len);
    sscanf(b.data, "HTTP/1.%*d %d", &out->status);
    out->body = calloc(1, 1);
    b.pos = head_len;
    char v[64];
    int chunked = hc_header(out, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0;
    long long length = hc_header(out, "Content-Length", v, sizeof v) ? atoll(v) : -1;
    if (strcmp(method, "HEAD") == 0 || out->status == 204 || out->status == 304)
        length = 0;
    int rc = 0;
    if (chunked) {
        for (;;) {
            char *nl;
            while (!(nl = strstr(b.data + b.pos, "\r\n")))
                if (fill(fd, &b, deadline) <= 0)
                    goto broken;
            size_t size = strtoul(b.data + b.pos, NULL, 16);
            size_t start = (size_t)(nl - b.data) + 2;
            while (b.len < start + size + 2)
                if (fill(fd, &b, deadline) <= 0)
                    goto broken;
            append(out, b.data + start, size, t0);
            b.pos = start + size + 2;
            if (size == 0)
                break;
        }
    } else if (length >= 0) {
        while (b.len - b.pos < (size_t)length)
            if (fill(fd, &b, deadline) <= 0)
                goto broken;
        append(out, b.data + b.pos, (size_t)length, t0);
    } else {
        for (;;) {
            append(out, b.data + b.pos, b.len - b.pos, t0);
            b.pos = b.len;
            int r = fill(fd, &b, deadline);
            if (r < 0)
                goto broken;
            if (r == 0)
                break;
        }
    }
    goto done;
broken:
    rc = -1;
done:
    out->t_total_ms = hc_now_ms() - t0;
    free(b.data);
    return rc;
}

int hc_call_within(uint16_t port, const char *method, const char *path, const char *headers,
                   const char *body, int timeout_ms, http_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = hc_connect(port);
    if (fd < 0)
        return -1;
    int rc = hc_request(fd, method, path, headers, body, body ? strlen(body) : 0, 0, timeout_ms,
                        out);
    close(fd);
    return rc;
}

int hc_call(uint16_t port, const char *method, const char *path, const char *headers,
            const char *body, http_response *out)
{
    return hc_call_within(port, method, path, headers, body, 30000, out);
}

const char *hc_header(const http_response *r, const char *name, char *buf, size_t cap)
{
    if (!r->head)
        return NULL;
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= cap)
                len = cap - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
    }
    return NULL;
}

void hc_free(http_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int hc_raw(uint16_t port, const char *bytes, size_t n, int timeout_ms, char **reply,
           size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    int fd = hc_connect(port);
    if (fd < 0)
        return -1;
    if (n && send_all(fd, bytes, n) != 0) {
        /* The server may close early (a refused upload): read what it said. */
    }
    rbuf b = {0};
    double deadline = hc_now_ms() + timeout_ms;
    while (fill(fd, &b, deadline) > 0) {
    }
    close(fd);
    *reply = b.data ? b.data : calloc(1, 1);
    *reply_len = b.len;
    return 0;
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

size_t hc_sse_parse(const char *body, hc_event *out, size_t max)
{
    size_t n = 0;
    const char *p = body;
    while (*p && n < max) {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *event = NULL, *data = NULL;
        const char *line = p;
        while (line < p + len) {
            const char *nl = memchr(line, '\n', (size_t)(p + len - line));
            size_t ll = nl ? (size_t)(nl - line) : (size_t)(p + len - line);
            if (ll >= 7 && strncmp(line, "event: ", 7) == 0) {
                free(event);
                event = dup_range(line + 7, ll - 7);
            } else if (ll >= 6 && strncmp(line, "data: ", 6) == 0) {
                char *d = dup_range(line + 6, ll - 6);
                if (data) {
                    char *joined = malloc(strlen(data) + strlen(d) + 2);
                    sprintf(joined, "%s\n%s", data, d);
                    free(data);
                    free(d);
                    data = joined;
                } else {
                    data = d;
                }
            }
            line += ll + 1;
        }
        if (data || event) {
            out[n].event = event ? event : dup_range("", 0);
            out[n].data = data ? data : dup_range("", 0);
            n++;
        }
        if (!end)
            break;
        p = end + 2;
    }
    return n;
}

void hc_sse_free(hc_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ev[i].event);
        free(ev[i].data);
    }
}
