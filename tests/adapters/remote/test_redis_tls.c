/*
 * The remote tier over TLS (rediss://, adapters/remote/redis_tier.h),
 * against a redis-server the test starts with TLS on a free 127.0.0.1
 * port, with a CA, server and client certificates made for the run:
 *
 *   - agents written and read over TLS, by IP address and by name;
 *   - a server whose certificate the given CA did not sign, or that names
 *     another host, is refused (the tier stays down, the failures are
 *     counted), and so is the test CA when only the system's store is
 *     trusted; insecure=1 accepts them, saying so in the log;
 *   - a server that requires client certificates refuses a tier without
 *     one and serves one with it (in two files or one);
 *   - certificate files that are missing, hold no PEM, do not match or
 *     are locked by a passphrase are refused at open, naming the file;
 *   - a TLS Redis that stops answering or restarts: timeouts, backoff and
 *     recovery as over TCP.
 *
 * Skipped, saying how to install it, without redis-server, openssl or a
 * redis-server with TLS.
 */
#include "../../test_util.h"

#include <signal.h>
#include <time.h>

#include "adapters/remote/redis_tier.h"
#include "base/deadline.h"
#include "remote_test_util.h"

/* ------------------------------------------------------------ helpers */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The tier's log lines, joined by newlines. */
typedef struct log_lines {
    char text[8192];
} log_lines;

static void collect_log(void *ctx, const char *message)
{
    log_lines *l = ctx;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", message);
}

/* "rediss://HOST:PORT/0?<query>", with DIR in the query replaced by the
 * certificates' folder. */
static void tls_url(char *out, size_t cap, const char *host, int port, const tls_files *f,
                    const char *query)
{
    int n = snprintf(out, cap, "rediss://%s:%d/0%s", host, port, query[0] ? "?" : "");
    for (const char *q = query; *q && (size_t)n < cap; q++) {
        if (strncmp(q, "DIR", 3) == 0) {
            n += snprintf(out + n, cap - (size_t)n, "%s", tls_files_dir(f));
            q += 2;
        } else {
            out[n++] = *q;
            out[n] = '\0';
        }
    }
}

static redis_tier *open_url(const char *url, uint32_t timeout_ms, log_lines *log)
{
    redis_tier_opts o = {.url = url, .timeout_ms = timeout_ms, .log = log ? collect_log : NULL,
                         .log_ctx = log};
    sem_err err = {0};
    redis_tier *r = redis_tier_open(&o, &err);
    if (!r)
        fail_msg("open %s: %s", url, err.detail);
    return r;
}

static remote_stats stats_of(redis_tier *r)
{
    remote_tier t = redis_tier_port(r);
    remote_stats s;
    t.ops->stats(t.self, &s);
    return s;
}

/* An agent of one 100 000-byte chunk (named after seed) and a 5000-byte
 * index, written and read back; SEM_OK or the put's failure (err). */
static sem_status round_trip(redis_tier *r, const char *key, unsigned seed, sem_err *err)
{
    enum { CHUNK = 100000, INDEX = 5000 };
    uint8_t *chunk = malloc(CHUNK), *index = malloc(INDEX);
    assert_non_null(chunk);
    assert_non_null(index);
    for (size_t i = 0; i < CHUNK; i++)
        chunk[i] = (uint8_t)(i * 7 + seed);
    for (size_t i = 0; i < INDEX; i++)
        index[i] = (uint8_t)(i * 13 + seed);
    char name[33];
    snprintf(name, sizeof name, "%032x", seed);
    remote_blob blob = {name, chunk, CHUNK};
    remote_tier t = redis_tier_port(r);
    sem_status st = t.ops->put_agent(t.self, "S", key, index, INDEX, &blob, 1, err);
    if (st == SEM_OK) {
        uint8_t *got = NULL;
        size_t len = 0;
        assert_int_equal(t.ops->get_agent(t.self, "S", key, &got, &len, NULL), SEM_OK);
        assert_int_equal(len, INDEX);
        assert_memory_equal(got, index, INDEX);
        free(got);
        assert_int_equal(t.ops->get_chunk(t.self, "S", name, &got, &len, NULL), SEM_OK);
        assert_int_equal(len, CHUNK);
        assert_memory_equal(got, chunk, CHUNK);
        free(got);
    }
    free(chunk);
    free(index);
    return st;
}

/* A tier to url must stay down: its first write fails with a detail
 * holding needle, then it backs off; the failures are counted. */
static void refused(const char *url, const char *needle)
{
    log_lines log = {{0}};
    redis_tier *r = open_url(url, 2000, &log);
    assert_int_equal(stats_of(r).state, REMOTE_DOWN);
    /* Writes answer EBUSY while the tier backs off from the failure at
     * open, then try again (and fail the same way). */
    sem_err err = {0};
    sem_status st = SEM_EBUSY;
    uint64_t tries = 0;
    for (; tries < 200 && st == SEM_EBUSY; tries++) {
        st = round_trip(r, "k", 1, &err);
        if (st == SEM_EBUSY)
            sleep_ms(10);
    }
    assert_int_equal(st, SEM_EIO);
    print_message("refused as it should be: %s\n", err.detail);
    assert_contains(err.detail, needle);
    assert_int_equal(round_trip(r, "k", 1, &err), SEM_EBUSY); /* backing off again */
    remote_stats s = stats_of(r);
    assert_int_equal(s.state, REMOTE_DOWN);
    assert_int_equal(s.puts, 0);
    assert_int_equal(s.put_failures, tries + 1);
    assert_contains(log.text, "is down");
    assert_contains(log.text, needle);
    redis_tier_close(r);
}

/* ------------------------------------------------------------ round trips */

static void test_agents_over_tls(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    redis_process *p = rt_start_tls_or_skip(f, "server", "ca", 0);
    int port = redis_process_tls_port(p);
    char url[1200];
    log_lines log = {{0}};
    tls_url(url, sizeof url, "127.0.0.1", port, f, "cacert=DIR/ca.pem");
    redis_tier *r = open_url(url, 2000, &log);
    assert_int_equal(stats_of(r).state, REMOTE_OK);
    assert_int_equal(round_trip(r, "alice", 1, NULL), SEM_OK);
    remote_stats s = stats_of(r);
    assert_int_equal(s.puts, 1);
    assert_int_equal(s.get_hits, 1);
    assert_int_equal(s.put_failures + s.get_failures, 0);
    assert_int_equal(s.bytes, 100000 + 5000);
    redis_tier_close(r);
    /* The same Redis, seen on its plain port: the agent is there. */
    char reply[64];
    assert_int_equal(redis_process_cmd(p, reply, sizeof reply, "EXISTS sem:v1:S:a:alice"), 0);
    assert_string_equal(reply, "1");
    /* By name: the certificate names localhost too (and SNI says it). */
    tls_url(url, sizeof url, "localhost", port, f, "cacert=DIR/ca.pem");
    r = open_url(url, 2000, NULL);
    assert_int_equal(round_trip(r, "bob", 2, NULL), SEM_OK);
    redis_tier_close(r);
    /* The TLS port does not speak plain RESP: redis:// to it fails. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    r = open_url(url, 500, NULL);
    assert_int_equal(stats_of(r).state, REMOTE_DOWN);
    redis_tier_close(r);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ verification */

static void test_unknown_ca_refused(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    /* A server whose certificate another CA signed. */
    redis_process *p = rt_start_tls_or_skip(f, "other-server", "other-ca", 0);
    int port = redis_process_tls_port(p);
    char url[1200];
    tls_url(url, sizeof url, "127.0.0.1", port, f, "cacert=DIR/ca.pem");
    refused(url, "the server's certificate was refused");
    /* insecure=1 takes it, and says so. */
    log_lines log = {{0}};
    tls_url(url, sizeof url, "127.0.0.1", port, f, "insecure=1");
    redis_tier *r = open_url(url, 2000, &log);
    assert_int_equal(stats_of(r).state, REMOTE_OK);
    assert_int_equal(round_trip(r, "k", 3, NULL), SEM_OK);
    assert_contains(log.text, "insecure=1: the server's certificate and name are NOT verified");
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_system_store_does_not_know_the_test_ca(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    redis_process *p = rt_start_tls_or_skip(f, "server", "ca", 0);
    char url[1200];
    tls_url(url, sizeof url, "127.0.0.1", redis_process_tls_port(p), f, "");
    refused(url, "the server's certificate was refused");
    redis_process_stop(p);
}

static void test_wrong_name_refused(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    /* Signed by the trusted CA, but for elsewhere.invalid only. */
    redis_process *p = rt_start_tls_or_skip(f, "wrong-name", "ca", 0);
    int port = redis_process_tls_port(p);
    char url[1200];
    tls_url(url, sizeof url, "127.0.0.1", port, f, "cacert=DIR/ca.pem");
    refused(url, "IP address mismatch");
    tls_url(url, sizeof url, "localhost", port, f, "cacert=DIR/ca.pem");
    refused(url, "hostname mismatch");
    tls_url(url, sizeof url, "127.0.0.1", port, f, "insecure=1");
    redis_tier *r = open_url(url, 2000, NULL);
    assert_int_equal(round_trip(r, "k", 4, NULL), SEM_OK);
    redis_tier_close(r);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ client certificates */

static void test_client_certificate(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    redis_process *p = rt_start_tls_or_skip(f, "server", "ca", 1); /* tls-auth-clients yes */
    int port = redis_process_tls_port(p);
    char url[1200];
    /* Without one: the server ends the session (TLS 1.3 tells the client
     * after its handshake, by an alert or a reset, at the first read). */
    tls_url(url, sizeof url, "127.0.0.1", port, f, "cacert=DIR/ca.pem");
    refused(url, "the server asked for a client certificate, and none is given");
    /* With one, in two files, or in one. */
    tls_url(url, sizeof url, "127.0.0.1", port, f,
            "cacert=DIR/ca.pem&cert=DIR/client.pem&key=DIR/client.key");
    redis_tier *r = open_url(url, 2000, NULL);
    assert_int_equal(stats_of(r).state, REMOTE_OK);
    assert_int_equal(round_trip(r, "k", 5, NULL), SEM_OK);
    redis_tier_close(r);
    tls_url(url, sizeof url, "127.0.0.1", port, f, "cacert=DIR/ca.pem&cert=DIR/client-both.pem");
    r = open_url(url, 2000, NULL);
    assert_int_equal(round_trip(r, "k2", 6, NULL), SEM_OK);
    redis_tier_close(r);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ bad files */

static void bad_files(tls_files *f, const char *query, const char *needle)
{
    char url[1200];
    tls_url(url, sizeof url, "127.0.0.1", 1, f, query);
    redis_tier_opts o = {.url = url};
    sem_err err = {0};
    if (redis_tier_open(&o, &err))
        fail_msg("%s was accepted", url);
    print_message("%s: %s\n", query, err.detail);
    assert_int_equal(err.status, SEM_EINVAL);
    assert_contains(err.detail, needle);
}

static void test_bad_files_refused_at_open(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    bad_files(f, "cacert=DIR/none.pem", "cacert '");
    bad_files(f, "cacert=DIR/none.pem", "No such file");
    bad_files(f, "cacert=DIR/junk.pem", "holds no PEM CA certificate");
    bad_files(f, "cert=DIR/junk.pem&key=DIR/client.key", "cert '");
    bad_files(f, "cert=DIR/client.pem&key=DIR/none.key", "key '");
    bad_files(f, "cert=DIR/client.pem", "holds no PEM private key"); /* no key in cert's file */
    bad_files(f, "cert=DIR/client.pem&key=DIR/server.key", "does not belong to cert");
    bad_files(f, "cert=DIR/client.pem&key=DIR/client-locked.key", "passphrase");
    bad_files(f, "cacert=DIR/ca.pem&cert=DIR/client.pem&key=DIR/junk.pem", "junk.pem");
}

/* ------------------------------------------------------------ faults */

static void test_slow_and_restarted_server(void **state)
{
    tls_files *f = rt_files_or_skip(state);
    redis_process *p = rt_start_tls_or_skip(f, "server", "ca", 0);
    char url[1200];
    tls_url(url, sizeof url, "127.0.0.1", redis_process_tls_port(p), f, "cacert=DIR/ca.pem");
    log_lines log = {{0}};
    redis_tier *r = open_url(url, 200, &log);
    remote_tier t = redis_tier_port(r);
    assert_int_equal(round_trip(r, "k", 7, NULL), SEM_OK);
    /* Asleep: a read gives up at the timeout. Reads until one meets the
     * sleep (the first may reach Redis before the DEBUG SLEEP does). */
    redis_process_sleep(p, 1.0);
    sem_status st = SEM_OK;
    double took = 0;
    for (int i = 0; i < 100 && st == SEM_OK; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        double t0 = deadline_now_ms();
        st = t.ops->get_agent(t.self, "S", "k", &data, &len, NULL);
        took = deadline_now_ms() - t0;
        free(data);
    }
    assert_int_equal(st, SEM_EIO);
    print_message("a read over TLS from a sleeping Redis gave up after %.0f ms\n", took);
    assert_true(took < 200 + 150);
    assert_true(stats_of(r).timeouts >= 1);
    /* Killed and restarted (empty): reconnects with a new handshake. */
    redis_process_kill(p);
    assert_int_equal(redis_process_restart(p), 0);
    st = SEM_EBUSY;
    for (int i = 0; i < 200 && st != SEM_OK; i++) {
        st = round_trip(r, "k", 8, NULL);
        if (st != SEM_OK)
            sleep_ms(20);
    }
    assert_int_equal(st, SEM_OK);
    assert_int_equal(stats_of(r).state, REMOTE_OK);
    /* The log says it went down, and how the link is checked once up. */
    assert_contains(log.text, "is down");
    assert_contains(log.text, "is up (TLS, the server's certificate and name verified against "
                              "CA file");
    redis_tier_close(r);
    redis_process_stop(p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as semantic serve does (redis_tier.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents_over_tls),
        cmocka_unit_test(test_unknown_ca_refused),
        cmocka_unit_test(test_system_store_does_not_know_the_test_ca),
        cmocka_unit_test(test_wrong_name_refused),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_bad_files_refused_at_open),
        cmocka_unit_test(test_slow_and_restarted_server),
    };
    return cmocka_run_group_tests(tests, rt_files_setup, rt_files_teardown);
}
