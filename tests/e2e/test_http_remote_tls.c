/*
 * The remote tier over TLS (rediss://, docs/remote-tier.md) against real
 * servers: a redis-server started by the test with a password and TLS on
 * free ports of 127.0.0.1, certificates made for the run by the openssl
 * command line, and semantic servers sharing it.
 *
 *   - an agent that talks to server A finds on server B all that A
 *     computed, through the TLS Redis;
 *   - the logs name the URL with its options but never the password;
 *   - a server given the wrong CA starts, serves every request, says
 *     "remote":"down" and counts the failed writes, its log saying why;
 *     insecure=1 connects anyway and warns at start;
 *   - a certificate file that cannot be read stops the server at start,
 *     naming the file.
 *
 * Skipped (exit 77), saying how to install it, without redis-server,
 * openssl, or a redis-server with TLS.
 */
#include "remote_util.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "../adapters/remote/tls_files.h"
#include "redis_process.h"

#define PASSWORD "e2e-tls-pw-9q2w"
#define KEY1 "key-one"

static redis_proc redis;
static tls_files *certs;
static uint16_t tls_port;
static server_proc srv_a, srv_b;

/* "rediss://:PASSWORD@127.0.0.1:TLS_PORT/0?cacert=<dir>/<ca>.pem" plus
 * extra options ("" for none). */
static void tls_url(char *out, size_t cap, const char *ca, const char *extra)
{
    snprintf(out, cap, "rediss://:%s@127.0.0.1:%u/0?cacert=%s/%s.pem%s", PASSWORD,
             (unsigned)tls_port, tls_files_dir(certs), ca, extra);
}

/* A server of the stories model sharing the Redis tier at url: through
 * --cache-remote, or through SEMANTIC_CACHE_REMOTE when via_env. */
static int start_node(server_proc *s, const char *url, int via_env)
{
    char env_url[1600];
    snprintf(env_url, sizeof env_url, "SEMANTIC_CACHE_REMOTE=%s", url);
    const char *args_flag[] = {"--cache-remote", url, "--api-key", KEY1, "--pool-mb", "64",
                               "--max-batch", "4", NULL};
    const char *args_env[] = {"--api-key", KEY1, "--pool-mb", "64", "--max-batch", "4", NULL};
    const char *env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=",
                         via_env ? env_url : "SEMANTIC_CACHE_REMOTE=", NULL};
    return server_start(s, SEMANTIC_BIN, STORIES, via_env ? args_env : args_flag, env, 1);
}

/* Whether redis-server knows tls-port: one built without TLS calls it a
 * bad directive; one with TLS refuses the value. Either exits at once. */
static int redis_has_tls(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' --port 0 --tls-port not-a-port 2>&1", redis_server_bin());
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return strstr(out, "Bad directive") == NULL;
}

static int setup(void **state)
{
    (void)state;
    char why[1200];
    certs = tls_files_make(why, sizeof why);
    if (!certs) {
        fprintf(stderr, "test certificates: %s\n", why);
        return -1;
    }
    tls_port = server_free_port();
    char conf[2400];
    const char *d = tls_files_dir(certs);
    snprintf(conf, sizeof conf,
             "tls-port %u\ntls-cert-file %s/server.pem\ntls-key-file %s/server.key\n"
             "tls-ca-cert-file %s/ca.pem\ntls-auth-clients no\n",
             (unsigned)tls_port, d, d, d);
    if (redis_start(&redis, PASSWORD, conf) != 0)
        return -1;
    char url[1600];
    tls_url(url, sizeof url, "ca", "");
    if (start_node(&srv_a, url, 0) != 0 || start_node(&srv_b, url, 1) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (server_stop(&srv_a, SIGTERM, 20000) != 0 || server_stop(&srv_b, SIGTERM, 20000) != 0)
        rc = -1;
    server_discard_log(&srv_a);
    server_discard_log(&srv_b);
    redis_stop(&redis);
    tls_files_remove(certs);
    return rc;
}

/* ---------------------------------------------------------------- sharing */

static void an_agent_moves_to_another_server_over_tls(void **state)
{
    (void)state;
    double puts = ru_metric(srv_a.port, KEY1, "semantic_remote_puts_total");
    char *b1 = ru_chat_body(NULL, NULL, 12);
    http_response r = ru_chat(srv_a.port, KEY1, "voyager", b1);
    json_int_t prompt1 = ru_usage(&r, "prompt_tokens");
    char *answer = ru_content(&r);
    hc_free(&r);
    ru_wait_metric(srv_a.port, KEY1, "semantic_remote_puts_total", puts + 1, 30000);
    /* The Redis behind the TLS port holds it (seen on the plain port). */
    char *keys;
    assert_int_equal(redis_simple(&redis, "KEYS sem:v1:*:a:*.voyager", &keys), 0);
    assert_contains(keys, "voyager");
    free(keys);
    char tier[32];
    assert_string_equal(ru_tier(srv_b.port, KEY1, "voyager", tier, sizeof tier), "remote");
    char *b2 = ru_chat_body(answer, "And then?", 4);
    r = ru_chat(srv_b.port, KEY1, "voyager", b2);
    json_int_t cached = ru_usage(&r, "cached_tokens");
    hc_free(&r);
    if (cached < prompt1)
        fail_msg("B reused %lld tokens of A's %lld", (long long)cached, (long long)prompt1);
    assert_true(ru_metric(srv_b.port, KEY1, "semantic_remote_get_hits_total") >= 1);
    assert_int_equal(ru_metric(srv_b.port, KEY1, "semantic_remote_up"), 1);
    free(b1);
    free(b2);
    free(answer);
}

static void the_password_is_never_logged(void **state)
{
    (void)state;
    char *la = server_log(&srv_a), *lb = server_log(&srv_b);
    if (strstr(la, PASSWORD) || strstr(lb, PASSWORD))
        fail_msg("a log holds the Redis password:\n%s\n%s", la, lb);
    char shown[1200];
    snprintf(shown, sizeof shown, "rediss://***@127.0.0.1:%u/0?cacert=%s/ca.pem",
             (unsigned)tls_port, tls_files_dir(certs));
    assert_contains(la, shown);
    assert_contains(lb, shown);
    free(la);
    free(lb);
}

/* ---------------------------------------------------------------- verification */

static void a_server_with_the_wrong_ca_serves_without_the_tier(void **state)
{
    (void)state;
    char url[1600];
    tls_url(url, sizeof url, "other-ca", "");
    server_proc c;
    assert_int_equal(start_node(&c, url, 0), 0);
    int status;
    char got[32];
    assert_string_equal(ru_ready_remote(c.port, &status, got, sizeof got), "down");
    assert_int_equal(status, 200);
    /* Requests succeed; the write-behind fails, counted. */
    char *b = ru_chat_body_q("A lighthouse keeper counted the ships", NULL, NULL, 4);
    for (int i = 0; i < 2; i++) {
        char agent[32];
        snprintf(agent, sizeof agent, "untrusting-%d", i);
        http_response r = ru_chat(c.port, KEY1, agent, b);
        hc_free(&r);
    }
    double failures = 0;
    for (int waited = 0; waited < 20000 && failures < 1; waited += 100) {
        failures = ru_metric(c.port, KEY1, "semantic_remote_put_failures_total") +
                   ru_metric(c.port, KEY1, "semantic_remote_get_failures_total");
        if (failures < 1)
            usleep(100000);
    }
    assert_true(failures >= 1);
    assert_int_equal(ru_metric(c.port, KEY1, "semantic_remote_puts_total"), 0);
    assert_int_equal(ru_metric(c.port, KEY1, "semantic_remote_up"), 0);
    char h[128];
    ru_headers(h, sizeof h, KEY1, NULL);
    http_response st = e2e_call(c.port, "GET", "/v1/stats", h, NULL);
    json_t *js = e2e_json(&st);
    assert_string_equal(json_string_value(json_object_get(json_object_get(js, "remote"),
                                                          "state")), "down");
    json_decref(js);
    hc_free(&st);
    char *log = server_log(&c);
    assert_contains(log, "the server's certificate was refused");
    if (strstr(log, PASSWORD))
        fail_msg("the log holds the Redis password:\n%s", log);
    free(log);
    assert_int_equal(server_stop(&c, SIGTERM, 20000), 0);
    server_discard_log(&c);
    free(b);
}

static void insecure_connects_and_warns(void **state)
{
    (void)state;
    char url[1600];
    snprintf(url, sizeof url, "rediss://:%s@127.0.0.1:%u/0?insecure=1", PASSWORD,
             (unsigned)tls_port);
    server_proc c;
    assert_int_equal(start_node(&c, url, 1), 0);
    int status;
    char got[32];
    assert_string_equal(ru_ready_remote(c.port, &status, got, sizeof got), "ok");
    char *log = server_log(&c);
    assert_contains(log, "insecure=1: the server's certificate and name are NOT verified");
    free(log);
    assert_int_equal(server_stop(&c, SIGTERM, 20000), 0);
    server_discard_log(&c);
}

static void an_unreadable_certificate_stops_the_start(void **state)
{
    (void)state;
    char dir[512], url[1600], cmd[4096];
    assert_int_equal(server_temp_dir("tlsbad", dir, sizeof dir), 0);
    /* A path with '@' after a '/': the error names the URL, and its
     * password must not show through the '@' of the query. */
    snprintf(url, sizeof url, "rediss://:%s@127.0.0.1:%u/0?cacert=/nonexistent/a@b/ca.pem",
             PASSWORD, (unsigned)tls_port);
    snprintf(cmd, sizeof cmd,
             "SEMANTIC_CACHE_REMOTE= %s serve -m %s --port 0 --cache-dir '%s' "
             "--cache-remote '%s' 2>&1",
             SEMANTIC_BIN, STORIES, dir, url);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[65536] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_contains(out, "cacert '/nonexistent/a@b/ca.pem'");
    assert_contains(out, "rediss://***@127.0.0.1");
    if (strstr(out, PASSWORD))
        fail_msg("the output holds the Redis password: %s", out);
    server_temp_dir_remove(dir);
}

int main(void)
{
    if (!redis_server_bin()) {
        printf("SKIP: %s\n", REDIS_MISSING_MSG);
        return 77;
    }
    if (!tls_files_openssl_available()) {
        printf("SKIP: %s\n", TLS_FILES_INSTALL_HINT);
        return 77;
    }
    if (!redis_has_tls()) {
        printf("SKIP: this redis-server has no TLS (it refuses tls-port): install Debian's "
               "redis-server 6 or later (tools/install-deps), or build Redis with "
               "BUILD_TLS=yes\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_agent_moves_to_another_server_over_tls),
        cmocka_unit_test(the_password_is_never_logged),
        cmocka_unit_test(a_server_with_the_wrong_ca_serves_without_the_tier),
        cmocka_unit_test(insecure_connects_and_warns),
        cmocka_unit_test(an_unreadable_certificate_stops_the_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
