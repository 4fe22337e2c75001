/*
 * One connection to Redis (adapters/remote/redis_conn.h), over TCP and
 * over TLS, against a redis-server the test starts on free 127.0.0.1
 * ports (plain and TLS, certificates made for the run): pipelines of many
 * commands, values larger than any buffer, error replies that keep the
 * connection, a server that closes it or stops answering (timeouts), a
 * port where nobody listens or nobody speaks TLS, and misuse. Skipped,
 * with how to install them, without redis-server, openssl or a
 * redis-server with TLS.
 */
#include "../../test_util.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapters/remote/redis_conn.h"
#include "adapters/remote/redis_tls.h"
#include "base/deadline.h"
#include "remote_test_util.h"

/* ------------------------------------------------------------ helpers */

/* A server to test against: its plain port, or its TLS port with a TLS
 * context that trusts the run's CA. */
typedef struct target {
    redis_process *p;
    redis_tls *tls; /* NULL: plain TCP */
    int port;
} target;

static target start_target(void **state, int tls)
{
    target t = {0};
    if (!tls) {
        t.p = rt_start_or_skip("enable-debug-command yes");
        t.port = redis_process_port(t.p);
        return t;
    }
    tls_files *f = rt_files_or_skip(state);
    t.p = rt_start_tls_or_skip(f, "server", "ca", 0);
    t.port = redis_process_tls_port(t.p);
    char ca[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_files_dir(f));
    redis_tls_opts o = {.ca_file = ca};
    sem_err err = {0};
    t.tls = redis_tls_new(&o, &err);
    if (!t.tls)
        fail_msg("TLS context: %s", err.detail);
    return t;
}

static void stop_target(target *t)
{
    redis_tls_free(t->tls);
    redis_process_stop(t->p);
}

static redis_conn *connect_to(const target *t, uint32_t timeout_ms)
{
    redis_conn_opts o = {.host = "127.0.0.1", .port = t->port, .timeout_ms = timeout_ms,
                         .tls = t->tls};
    sem_err err = {0};
    redis_conn *c = redis_conn_new(&o, &err);
    if (!c)
        fail_msg("new: %s", err.detail);
    if (redis_conn_connect(c, &err) != SEM_OK)
        fail_msg("connect to port %d: %s", t->port, err.detail);
    assert_true(redis_conn_is_open(c));
    return c;
}

/* Runs a command of plain words; returns its reply (caller frees). */
static redisReply *cmd(redis_conn *c, int argc, const char *const *argv)
{
    redisReply *rep = NULL;
    sem_err err = {0};
    if (redis_conn_command(c, argc, argv, NULL, &rep, &err) != SEM_OK)
        fail_msg("%s: %s", argv[0], err.detail);
    return rep;
}

/* ------------------------------------------------------------ both transports */

static void pipeline(void **state, int tls)
{
    target t = start_target(state, tls);
    redis_conn *c = connect_to(&t, 2000);
    /* 2000 commands appended, then 2000 replies read, in order. */
    enum { N = 2000 };
    const char *incr[2] = {"INCR", "counter"};
    for (int i = 0; i < N; i++)
        assert_int_equal(redis_conn_append(c, 2, incr, NULL, NULL), SEM_OK);
    for (int i = 0; i < N; i++) {
        redisReply *rep = NULL;
        assert_int_equal(redis_conn_read(c, &rep, NULL), SEM_OK);
        assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
        assert_int_equal(rep->integer, i + 1);
        freeReplyObject(rep);
    }
    /* Values larger than the 1 MiB send queue and the 64 KiB reads,
     * binary, pipelined: 3 SETs of 3 MB, then GETs. */
    enum { BIG = 3 * 1000 * 1000 + 7 };
    char *big = malloc(BIG);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 131 + (i >> 12));
    const char *keys[3] = {"big0", "big1", "big2"};
    for (int k = 0; k < 3; k++) {
        const char *argv[3] = {"SET", keys[k], big};
        size_t lens[3] = {3, 4, BIG - (size_t)k};
        assert_int_equal(redis_conn_append(c, 3, argv, lens, NULL), SEM_OK);
    }
    for (int k = 0; k < 3; k++) {
        const char *argv[2] = {"GET", keys[k]};
        assert_int_equal(redis_conn_append(c, 2, argv, NULL, NULL), SEM_OK);
    }
    for (int k = 0; k < 6; k++) {
        redisReply *rep = NULL;
        assert_int_equal(redis_conn_read(c, &rep, NULL), SEM_OK);
        if (k < 3) {
            assert_int_equal(rep->type, REDIS_REPLY_STATUS);
        } else {
            assert_int_equal(rep->type, REDIS_REPLY_STRING);
            assert_int_equal(rep->len, BIG - (size_t)(k - 3));
            assert_memory_equal(rep->str, big, rep->len);
        }
        freeReplyObject(rep);
    }
    free(big);
    /* An error reply is a reply: the connection stays. */
    const char *bogus[1] = {"NOSUCHCOMMAND"};
    redisReply *rep = cmd(c, 1, bogus);
    assert_int_equal(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    assert_true(redis_conn_is_open(c));
    const char *ping[1] = {"PING"};
    rep = cmd(c, 1, ping);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    redis_conn_free(c);
    stop_target(&t);
}

static void test_pipeline_tcp(void **state) { pipeline(state, 0); }
static void test_pipeline_tls(void **state) { pipeline(state, 1); }

static void server_closes(void **state, int tls)
{
    target t = start_target(state, tls);
    redis_conn *c = connect_to(&t, 2000);
    const char *quit[1] = {"QUIT"};
    redisReply *rep = cmd(c, 1, quit);
    freeReplyObject(rep);
    const char *ping[1] = {"PING"};
    sem_err err = {0};
    sem_status st = redis_conn_command(c, 1, ping, NULL, &rep, &err);
    assert_int_equal(st, SEM_EIO);
    assert_null(rep);
    print_message("after QUIT: %s\n", err.detail);
    assert_false(redis_conn_is_open(c));
    assert_false(redis_conn_timed_out(c));
    /* Connected again, it works again. */
    assert_int_equal(redis_conn_connect(c, &err), SEM_OK);
    rep = cmd(c, 1, ping);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    /* Killed mid-connection: a write is an error, never SIGPIPE. */
    redis_process_kill(t.p);
    st = SEM_OK;
    for (int i = 0; i < 3 && st == SEM_OK; i++) { /* the first write may still be taken */
        st = redis_conn_command(c, 1, ping, NULL, &rep, &err);
        if (rep)
            freeReplyObject(rep);
    }
    assert_int_equal(st, SEM_EIO);
    assert_false(redis_conn_is_open(c));
    redis_conn_free(c);
    stop_target(&t);
}

static void test_server_closes_tcp(void **state) { server_closes(state, 0); }
static void test_server_closes_tls(void **state) { server_closes(state, 1); }

static void server_stops_answering(void **state, int tls)
{
    target t = start_target(state, tls);
    redis_conn *c = connect_to(&t, 200);
    redis_process_sleep(t.p, 1.0);
    /* PINGs until one meets the sleep (the first ones may reach Redis
     * before the DEBUG SLEEP does). */
    const char *ping[1] = {"PING"};
    redisReply *rep = NULL;
    sem_err err = {0};
    sem_status st = SEM_OK;
    double t0 = 0;
    for (int i = 0; i < 100 && st == SEM_OK; i++) {
        t0 = deadline_now_ms();
        st = redis_conn_command(c, 1, ping, NULL, &rep, &err);
        if (rep)
            freeReplyObject(rep);
    }
    assert_int_equal(st, SEM_EIO);
    double took = deadline_now_ms() - t0;
    print_message("a PING to a sleeping Redis gave up after %.0f ms (timeout 200): %s\n", took,
                  err.detail);
    assert_true(took >= 150 && took < 200 + 150);
    assert_true(redis_conn_timed_out(c));
    assert_contains(err.detail, "timed out after 200 ms");
    redis_conn_free(c);
    stop_target(&t);
}

static void test_server_stops_answering_tcp(void **state) { server_stops_answering(state, 0); }
static void test_server_stops_answering_tls(void **state) { server_stops_answering(state, 1); }

/* ------------------------------------------------------------ connecting */

/* A port that accepts TCP connections (the kernel's backlog) but never
 * speaks: fd is the listening socket. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_connect_failures(void **state)
{
    (void)state;
    /* Nobody listens: refused at once. */
    redis_conn_opts o = {.host = "127.0.0.1", .port = redis_process_free_port(),
                         .timeout_ms = 1000};
    sem_err err = {0};
    redis_conn *c = redis_conn_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(redis_conn_connect(c, &err), SEM_EIO);
    assert_contains(err.detail, "refused");
    assert_false(redis_conn_is_open(c));
    assert_false(redis_conn_timed_out(c));
    redis_conn_free(c);
    /* A host that does not resolve. */
    o.host = "no-such-host.invalid";
    c = redis_conn_new(&o, &err);
    assert_int_equal(redis_conn_connect(c, &err), SEM_EIO);
    assert_contains(err.detail, "cannot resolve");
    redis_conn_free(c);
}

static void test_handshake_timeout(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    char ca[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_files_dir(f));
    redis_tls_opts to = {.ca_file = ca};
    redis_tls *tls = redis_tls_new(&to, NULL);
    assert_non_null(tls);
    int port;
    int lfd = silent_listener(&port);
    redis_conn_opts o = {.host = "127.0.0.1", .port = port, .timeout_ms = 200, .tls = tls};
    redis_conn *c = redis_conn_new(&o, NULL);
    sem_err err = {0};
    double t0 = deadline_now_ms();
    assert_int_equal(redis_conn_connect(c, &err), SEM_EIO);
    double took = deadline_now_ms() - t0;
    print_message("a TLS handshake with a silent port gave up after %.0f ms: %s\n", took,
                  err.detail);
    assert_true(took >= 150 && took < 200 + 150);
    assert_true(redis_conn_timed_out(c));
    assert_contains(err.detail, "TLS handshake: timed out");
    redis_conn_free(c);
    close(lfd);
    redis_tls_free(tls);
}

static void test_tls_to_a_plain_port(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    redis_process *p = rt_start_or_skip(NULL);
    char ca[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_files_dir(f));
    redis_tls_opts to = {.ca_file = ca};
    redis_tls *tls = redis_tls_new(&to, NULL);
    redis_conn_opts o = {.host = "127.0.0.1", .port = redis_process_port(p), .timeout_ms = 1000,
                         .tls = tls};
    redis_conn *c = redis_conn_new(&o, NULL);
    sem_err err = {0};
    assert_int_equal(redis_conn_connect(c, &err), SEM_EIO);
    print_message("TLS to a plain Redis port: %s\n", err.detail);
    assert_contains(err.detail, "TLS handshake");
    assert_false(redis_conn_is_open(c));
    redis_conn_free(c);
    redis_tls_free(tls);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ misuse */

static void test_misuse_refused(void **state)
{
    (void)state;
    sem_err err = {0};
    redis_conn_opts bad[] = {
        {.host = NULL, .port = 1, .timeout_ms = 1},
        {.host = "", .port = 1, .timeout_ms = 1},
        {.host = "h", .port = 0, .timeout_ms = 1},
        {.host = "h", .port = 65536, .timeout_ms = 1},
        {.host = "h", .port = 1, .timeout_ms = 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(redis_conn_new(&bad[i], &err));
        assert_int_equal(err.status, SEM_EINVAL);
    }
    assert_null(redis_conn_new(NULL, &err));
    redis_conn_opts o = {.host = "127.0.0.1", .port = 1, .timeout_ms = 100};
    redis_conn *c = redis_conn_new(&o, NULL);
    const char *ping[1] = {"PING"};
    redisReply *rep = NULL;
    assert_int_equal(redis_conn_append(c, 1, ping, NULL, &err), SEM_EINVAL); /* closed */
    assert_contains(err.detail, "not connected");
    assert_int_equal(redis_conn_read(c, &rep, &err), SEM_EINVAL);
    redis_conn_close(c); /* closing a closed one is a no-op */
    redis_conn_free(c);
    redis_conn_free(NULL);
}

static void test_misuse_while_open(void **state)
{
    target t = start_target(state, 0);
    redis_conn *c = connect_to(&t, 1000);
    const char *ping[1] = {"PING"};
    redisReply *rep = NULL;
    sem_err err = {0};
    assert_int_equal(redis_conn_read(c, &rep, &err), SEM_EINVAL);
    assert_contains(err.detail, "no reply is pending");
    assert_int_equal(redis_conn_append(c, 0, ping, NULL, &err), SEM_EINVAL);
    assert_int_equal(redis_conn_append(c, 1, ping, NULL, &err), SEM_OK);
    assert_int_equal(redis_conn_command(c, 1, ping, NULL, &rep, &err), SEM_EINVAL);
    assert_contains(err.detail, "pending");
    assert_true(redis_conn_is_open(c)); /* misuse does not close it */
    assert_int_equal(redis_conn_read(c, &rep, &err), SEM_OK);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    redis_conn_free(c);
    stop_target(&t);
}

int main(void)
{
    /* A connection must never raise SIGPIPE (redis_conn.h): not ignored here. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_tcp),
        cmocka_unit_test(test_pipeline_tls),
        cmocka_unit_test(test_server_closes_tcp),
        cmocka_unit_test(test_server_closes_tls),
        cmocka_unit_test(test_server_stops_answering_tcp),
        cmocka_unit_test(test_server_stops_answering_tls),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_tls_to_a_plain_port),
        cmocka_unit_test(test_misuse_refused),
        cmocka_unit_test(test_misuse_while_open),
    };
    return cmocka_run_group_tests(tests, rt_files_setup, rt_files_teardown);
}
