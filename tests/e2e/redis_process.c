/*
 * redis_process.c - a throwaway redis-server and a tiny RESP client for
 * the end-to-end tests (redis_process.h).
 */
#include "redis_process.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

#define REDIS_TIMEOUT_MS 5000

const char *redis_server_bin(void)
{
    static const char *const candidates[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
                                             "/usr/bin/valkey-server"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

/* ---------------------------------------------------------------- the client */

typedef struct conn {
    int fd;
    char buf[65536];
    size_t len, pos;
    double deadline;
} conn;

static int conn_fill(conn *c)
{
    if (c->pos > 0 && c->pos == c->len)
        c->pos = c->len = 0;
    if (c->len == sizeof c->buf) { /* compact */
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
        if (c->len == sizeof c->buf)
            return -1;
    }
    double left = c->deadline - hc_now_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
        return -1;
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* One CRLF-ended line (without CRLF) into out. */
static int conn_line(conn *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->pos));
            size_t keep = n && nl[-1] == '\r' ? n - 1 : n;
            snprintf(out, cap, "%.*s", (int)keep, c->buf + c->pos);
            c->pos += n + 1;
            return 0;
        }
        if (conn_fill(c) != 0)
            return -1;
    }
}

static int append(char **out, size_t *len, const char *data, size_t n)
{
    char *p = realloc(*out, *len + n + 1);
    if (!p)
        return -1;
    memcpy(p + *len, data, n);
    *len += n;
    p[*len] = '\0';
    *out = p;
    return 0;
}

/* One reply, appended to *out as text (redis_process.h). */
static int read_reply(conn *c, char **out, size_t *len)
{
    char line[1024];
    if (conn_line(c, line, sizeof line) != 0)
        return -1;
    if (line[0] == '+' || line[0] == '-' || line[0] == ':')
        return append(out, len, line, strlen(line));
    long long n = atoll(line + 1);
    if (line[0] == '*') {
        if (n < 0)
            return append(out, len, "(nil)", 5);
        for (long long i = 0; i < n; i++)
            if ((i && append(out, len, "\n", 1) != 0) || read_reply(c, out, len) != 0)
                return -1;
        return 0;
    }
    if (line[0] != '$')
        return -1;
    if (n < 0)
        return append(out, len, "(nil)", 5);
    size_t want = (size_t)n + 2;
    while (want) {
        if (c->pos == c->len && conn_fill(c) != 0)
            return -1;
        size_t take = c->len - c->pos < want ? c->len - c->pos : want;
        size_t data = take > want - 2 ? (want > 2 ? want - 2 : 0) : take;
        if (data && append(out, len, c->buf + c->pos, data) != 0)
            return -1;
        c->pos += take;
        want -= take;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* a dead Redis: EPIPE, not a signal */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends the RESP array of n arguments to *req. */
static int encode(char **req, size_t *qlen, const char *const *args, const size_t *lens, size_t n)
{
    char head[64];
    int ok = snprintf(head, sizeof head, "*%zu\r\n", n) > 0 && append(req, qlen, head, strlen(head)) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        size_t l = lens ? lens[i] : strlen(args[i]);
        snprintf(head, sizeof head, "$%zu\r\n", l);
        ok = append(req, qlen, head, strlen(head)) == 0 && append(req, qlen, args[i], l) == 0 &&
             append(req, qlen, "\r\n", 2) == 0;
    }
    return ok ? 0 : -1;
}

int redis_command(const redis_proc *r, const char *const *args, const size_t *lens, size_t n,
                  char **reply, size_t *reply_len)
{
    *reply = calloc(1, 1);
    size_t rlen = 0;
    if (reply_len)
        *reply_len = 0;
    int fd = hc_connect(r->port);
    if (fd < 0)
        return -1;
    char *req = NULL, *auth_reply = calloc(1, 1);
    size_t qlen = 0, alen = 0;
    const char *auth[] = {"AUTH", r->password};
    int ok = !r->password[0] || encode(&req, &qlen, auth, NULL, 2) == 0;
    ok = ok && encode(&req, &qlen, args, lens, n) == 0;
    conn *c = malloc(sizeof *c);
    if (c) {
        c->fd = fd;
        c->len = c->pos = 0;
        c->deadline = hc_now_ms() + REDIS_TIMEOUT_MS;
    }
    ok = ok && c && write_all(fd, req, qlen) == 0 &&
         (!r->password[0] || read_reply(c, &auth_reply, &alen) == 0) &&
         read_reply(c, reply, &rlen) == 0;
    free(auth_reply);
    free(req);
    free(c);
    close(fd);
    if (reply_len)
        *reply_len = rlen;
    return ok ? 0 : -1;
}

int redis_simple(const redis_proc *r, const char *words, char **reply)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", words);
    const char *args[32];
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(copy, " ", &save); w && n < 32; w = strtok_r(NULL, " ", &save))
        args[n++] = w;
    return redis_command(r, args, NULL, n, reply, NULL);
}

/* ---------------------------------------------------------------- the server */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_conf(redis_proc *r, const char *extra)
{
    snprintf(r->conf, sizeof r->conf, "%s/redis.conf", r->dir);
    FILE *f = fopen(r->conf, "w");
    if (!f)
        return -1;
    /* No persistence, no protected mode (loopback only), log to stdout. */
    fprintf(f,
            "port %u\nbind 127.0.0.1\ndaemonize no\nsave \"\"\nappendonly no\n"
            "protected-mode no\ndir %s\nlogfile \"\"\n%s%s%s",
            (unsigned)r->port, r->dir, r->password[0] ? "requirepass " : "", r->password,
            r->password[0] ? "\n" : "");
    fputs(extra ? extra : "", f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Spawns redis-server and waits up to 10 s for PONG; 0 or -1. */
static int spawn_and_wait(redis_proc *r)
{
    const char *argv[] = {redis_server_bin(), r->conf, NULL};
    if (server_spawn(&r->p, argv) != 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        char *reply = NULL;
        int ok = redis_simple(r, "PING", &reply) == 0 && strcmp(reply, "+PONG") == 0;
        free(reply);
        if (ok)
            return 0;
        if (server_exited(&r->p))
            break;
        sleep_ms(10);
    }
    char *log = server_log(&r->p);
    fprintf(stderr, "redis-server did not start; its log:\n%s\n", log);
    free(log);
    if (r->p.pid)
        server_stop(&r->p, SIGKILL, 5000);
    server_discard_log(&r->p);
    return -1;
}

int redis_start(redis_proc *r, const char *password, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
    snprintf(r->password, sizeof r->password, "%s", password ? password : "");
    if (!redis_server_bin())
        return 1;
    if (server_temp_dir("redis", r->dir, sizeof r->dir) != 0)
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) { /* a port taken meanwhile: another one */
        r->port = server_free_port();
        if (r->port && write_conf(r, extra_conf) == 0 && spawn_and_wait(r) == 0)
            return 0;
    }
    server_temp_dir_remove(r->dir);
    r->dir[0] = '\0';
    return -1;
}

void redis_kill(redis_proc *r)
{
    if (r->p.pid)
        server_stop_keep(&r->p, SIGKILL, 5000);
    server_discard_log(&r->p);
}

int redis_restart(redis_proc *r)
{
    for (int attempt = 0; attempt < 50; attempt++) { /* the port may linger a moment */
        if (spawn_and_wait(r) == 0)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

void redis_stop(redis_proc *r)
{
    redis_kill(r);
    if (r->dir[0])
        server_temp_dir_remove(r->dir);
    r->dir[0] = '\0';
}
