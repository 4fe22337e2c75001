/*
 * The command line's HTTP client (src/cli/http_fetch.c) against a canned
 * server on 127.0.0.1: server URLs, the request it sends, the three body
 * framings (chunked split at every awkward place, Content-Length, until
 * close), answers that are not HTTP, a server that never answers (the
 * timeout), a callback that stops reading, and a port nobody listens on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../test_util.h"
#include "base/strbuf.h"
#include "cli/http_fetch.h"

/* ---------------------------------------------------------------- canned server */

typedef struct canned {
    int listen_fd;
    unsigned short port;
    const char *const *parts; /* written one write() each, then the socket closes */
    int hold;                 /* answer nothing until the client is gone */
    char request[8192];       /* what the client sent */
    pthread_t thread;
} canned;

static void *serve_once(void *arg)
{
    canned *c = arg;
    int fd = accept(c->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    ssize_t got;
    /* The head, and a body as long as its Content-Length. */
    while (n < sizeof c->request - 1 &&
           (got = read(fd, c->request + n, sizeof c->request - 1 - n)) > 0) {
        n += (size_t)got;
        c->request[n] = '\0';
        char *end = strstr(c->request, "\r\n\r\n");
        const char *cl = strstr(c->request, "Content-Length: ");
        if (end && (!cl || strlen(end + 4) >= (size_t)atoi(cl + 16)))
            break;
    }
    if (c->hold) { /* until the client closes its end */
        char b;
        while (read(fd, &b, 1) > 0)
            ;
    }
    /* MSG_NOSIGNAL: a client that stopped reading may be gone already. */
    for (size_t i = 0; c->parts && c->parts[i]; i++)
        if (send(fd, c->parts[i], strlen(c->parts[i]), MSG_NOSIGNAL) < 0)
            break;
    close(fd);
    return NULL;
}

static void canned_start(canned *c, const char *const *parts, int hold)
{
    memset(c, 0, sizeof *c);
    c->parts = parts;
    c->hold = hold;
    c->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(c->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(c->listen_fd, 1), 0);
    assert_int_equal(getsockname(c->listen_fd, (struct sockaddr *)&a, &len), 0);
    c->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&c->thread, NULL, serve_once, c), 0);
}

static void canned_stop(canned *c)
{
    pthread_join(c->thread, NULL);
    close(c->listen_fd);
}

typedef struct sink_state {
    strbuf got;
    int calls, stop_after;
} sink_state;

static int sink(void *ctx, const char *p, size_t n)
{
    sink_state *s = ctx;
    strbuf_append(&s->got, p, n);
    s->calls++;
    return s->stop_after && s->calls >= s->stop_after;
}

/* One request to the canned server; the status, the body in s. */
static sem_status fetch(canned *c, const char *body, int timeout_ms, sink_state *s, int *status,
                        sem_err *err)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/base/", c->port);
    http_fetch_req rq = {.server = url, .method = body ? "POST" : "GET", .path = "/v1/x",
                         .api_key = "k-1", .body = body, .timeout_ms = timeout_ms,
                         .sink = sink, .ctx = s};
    return http_fetch(&rq, status, err);
}

/* ---------------------------------------------------------------- URLs */

static void urls_are_split_into_host_port_and_prefix(void **state)
{
    (void)state;
    http_fetch_url u;
    sem_err err = {0};
    assert_int_equal(http_fetch_parse_url("http://localhost:8000", &u, &err), SEM_OK);
    assert_string_equal(u.host, "localhost");
    assert_string_equal(u.port, "8000");
    assert_string_equal(u.prefix, "");
    assert_int_equal(http_fetch_parse_url("http://[::1]:9/api//", &u, &err), SEM_OK);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.port, "9");
    assert_string_equal(u.prefix, "/api");
    assert_int_equal(http_fetch_parse_url("HTTP://10.0.0.1/", &u, &err), SEM_OK);
    assert_string_equal(u.port, "80");

    static const struct {
        const char *url;
        sem_status st;
        const char *needle;
    } bad[] = {{"", SEM_EINVAL, "a URL is required"},
               {"https://h:1", SEM_EUNSUPPORTED, "https is not supported"},
               {"ftp://h", SEM_EINVAL, "must begin with http://"},
               {"http://:80", SEM_EINVAL, "the host is empty"},
               {"http://[::1:80", SEM_EINVAL, "no ']'"},
               {"http://h:0", SEM_EINVAL, "1..65535"},
               {"http://h:65536", SEM_EINVAL, "1..65535"},
               {"http://h:80x", SEM_EINVAL, "1..65535"},
               {"http://h:", SEM_EINVAL, "1..65535"},
               {"http://[::1]x", SEM_EINVAL, "unexpected 'x'"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sem_err e = {0};
        if (http_fetch_parse_url(bad[i].url, &u, &e) != bad[i].st ||
            !strstr(sem_err_text(&e), bad[i].needle))
            fail_msg("%s: %s", bad[i].url, sem_err_text(&e));
        if (*bad[i].url && !strstr(sem_err_text(&e), bad[i].url))
            fail_msg("%s: the message does not name the URL: %s", bad[i].url, sem_err_text(&e));
    }
}

/* ---------------------------------------------------------------- framing */

static void the_request_names_host_key_and_body(void **state)
{
    (void)state;
    static const char *const parts[] = {"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                                        NULL};
    canned c;
    canned_start(&c, parts, 0);
    sink_state s = {0};
    int status;
    sem_err err = {0};
    assert_int_equal(fetch(&c, "{\"a\":1}", 5000, &s, &status, &err), SEM_OK);
    canned_stop(&c);
    assert_int_equal(status, 201);
    assert_string_equal(s.got.data, "ok");
    assert_non_null(strstr(c.request, "POST /base/v1/x HTTP/1.1\r\n"));
    assert_non_null(strstr(c.request, "Host: 127.0.0.1:"));
    assert_non_null(strstr(c.request, "Connection: close\r\n"));
    assert_non_null(strstr(c.request, "Authorization: Bearer k-1\r\n"));
    assert_non_null(strstr(c.request, "Content-Length: 7\r\n\r\n{\"a\":1}"));
    strbuf_free(&s.got);
}

/* Chunks cut inside their size lines, their CRLFs and their data, with a
 * chunk extension and a trailer; the bytes after the last chunk are not
 * body. */
static void chunked_bodies_are_decoded_across_any_split(void **state)
{
    (void)state;
    static const char *const parts[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n"
        "\r\n5\r",
        "\nhel", "lo\r\n1", "0;ext=1\r\n", " world, 16 bytes", "\r", "\n0\r\nX-T: 1\r\n\r\n",
        "garbage after the end", NULL};
    canned c;
    canned_start(&c, parts, 0);
    sink_state s = {0};
    int status;
    sem_err err = {0};
    assert_int_equal(fetch(&c, NULL, 5000, &s, &status, &err), SEM_OK);
    canned_stop(&c);
    assert_int_equal(status, 200);
    assert_string_equal(s.got.data, "hello world, 16 bytes");
    assert_non_null(strstr(c.request, "GET /base/v1/x HTTP/1.1\r\n"));
    assert_null(strstr(c.request, "Content-Length"));
    strbuf_free(&s.got);
}

static void close_delimited_and_error_bodies_reach_the_sink(void **state)
{
    (void)state;
    static const char *const parts[] = {"HTTP/1.0 404 Not Found\r\n\r\n{\"error\":", "{}}", NULL};
    canned c;
    canned_start(&c, parts, 0);
    sink_state s = {0};
    int status;
    sem_err err = {0};
    assert_int_equal(fetch(&c, NULL, 5000, &s, &status, &err), SEM_OK);
    canned_stop(&c);
    assert_int_equal(status, 404);
    assert_string_equal(s.got.data, "{\"error\":{}}");
    strbuf_free(&s.got);
}

static void broken_answers_fail_naming_the_url(void **state)
{
    (void)state;
    static const char *const not_http[] = {"SSH-2.0-OpenSSH\r\n\r\n", NULL};
    static const char *const short_body[] = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                                             NULL};
    static const char *const bad_chunk[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                            "\r\nzz\r\nabc\r\n0\r\n\r\n",
                                            NULL};
    static const char *const no_head[] = {"HTTP/1.1 200 OK\r\nX: 1", NULL};
    static const struct {
        const char *const *parts;
        sem_status st;
        const char *needle;
    } cases[] = {{not_http, SEM_ECORRUPT, "not HTTP"},
                 {short_body, SEM_EIO, "in the middle of the answer"},
                 {bad_chunk, SEM_ECORRUPT, "bad chunked encoding"},
                 {no_head, SEM_EIO, "before the answer's headers"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        canned c;
        canned_start(&c, cases[i].parts, 0);
        sink_state s = {0};
        int status;
        sem_err err = {0};
        sem_status st = fetch(&c, NULL, 5000, &s, &status, &err);
        canned_stop(&c);
        char url[64];
        snprintf(url, sizeof url, "GET http://127.0.0.1:%u/base/v1/x", c.port);
        if (st != cases[i].st || !strstr(sem_err_text(&err), cases[i].needle) ||
            !strstr(sem_err_text(&err), url))
            fail_msg("case %zu: %d %s", i, st, sem_err_text(&err));
        strbuf_free(&s.got);
    }
}

/* A server that accepts and never answers: the wait ends at the timeout. */
static void a_silent_server_times_out(void **state)
{
    (void)state;
    canned c;
    canned_start(&c, NULL, 1);
    sink_state s = {0};
    int status;
    sem_err err = {0};
    assert_int_equal(fetch(&c, NULL, 100, &s, &status, &err), SEM_EIO);
    assert_non_null(strstr(sem_err_text(&err), "no answer within 100 ms"));
    canned_stop(&c);
    strbuf_free(&s.got);
}

static void a_sink_that_stops_ends_the_read(void **state)
{
    (void)state;
    static const char *const parts[] = {"HTTP/1.1 200 OK\r\n\r\none", "two", "three", NULL};
    canned c;
    canned_start(&c, parts, 0);
    sink_state s = {.stop_after = 1};
    int status;
    sem_err err = {0};
    assert_int_equal(fetch(&c, NULL, 5000, &s, &status, &err), SEM_ECANCELLED);
    canned_stop(&c);
    assert_int_equal(s.calls, 1);
    strbuf_free(&s.got);
}

static void nobody_listening_is_an_io_error(void **state)
{
    (void)state;
    /* A port bound and closed without listen: nothing accepts on it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(a.sin_port));
    http_fetch_req rq = {.server = url, .method = "GET", .path = "/health"};
    int status;
    sem_err err = {0};
    assert_int_equal(http_fetch(&rq, &status, &err), SEM_EIO);
    assert_non_null(strstr(sem_err_text(&err), "cannot connect"));
    assert_non_null(strstr(sem_err_text(&err), url));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls_are_split_into_host_port_and_prefix),
        cmocka_unit_test(the_request_names_host_key_and_body),
        cmocka_unit_test(chunked_bodies_are_decoded_across_any_split),
        cmocka_unit_test(close_delimited_and_error_bodies_reach_the_sink),
        cmocka_unit_test(broken_answers_fail_naming_the_url),
        cmocka_unit_test(a_silent_server_times_out),
        cmocka_unit_test(a_sink_that_stops_ends_the_read),
        cmocka_unit_test(nobody_listening_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
