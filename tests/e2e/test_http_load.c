/*
 * Specification of the server under concurrent load, at its default
 * connection limit (1024), serving two models of different architectures
 * (llama and qwen2):
 *
 *   - 256 clients each open a new connection per request and send 3
 *     requests over 16 agents (8 on each model), mixing the OpenAI and
 *     Anthropic APIs, half of them streamed; 16 keep-alive clients send 8 requests each on one
 *     connection; 128 idle keep-alive connections stay open throughout.
 *     Every request succeeds (no 503, no other 5xx, no 429), no connection
 *     is refused, the idle connections still answer afterwards, every
 *     token the clients were told about is counted by /metrics and nothing
 *     else is, and once the agents are deleted and their disk writes have
 *     settled (semantic_agent_io_in_flight 0) the KV pool is whole again.
 *   - Clients that leave while their requests wait or stream have them
 *     cancelled: the engine is idle again long before it could have
 *     generated what was asked.
 *
 * SEM_STRESS=1 raises the sizes (256 x 20 requests, 64 keep-alive clients
 * x 40, 512 idle connections); SEM_LOAD_CLIENTS and SEM_LOAD_REQUESTS
 * override the clients and their requests.
 */
#include "e2e_util.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define AGENTS 16
#define QWEN SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"

/* Agent i talks to model i % 2. */
static const char *const model_names[2] = {"llama", "qwen"};
#define CALL_TIMEOUT_MS 120000

static uint16_t port;
static server_proc srv; /* the test's server; stopped by stop_server even when a check fails */

typedef struct tally {
    uint64_t requests, prompt, cached, generated;
    uint64_t by_kind[4];
    uint64_t failures, unavailable;
    char first_failure[512];
} tally;

static void fail_once(tally *t, const char *what, int rc, const http_response *r)
{
    if (r->status == 503)
        t->unavailable++;
    if (t->failures++ == 0)
        snprintf(t->first_failure, sizeof t->first_failure, "%s: rc %d, status %d: %.300s", what,
                 rc, r->status, r->body ? r->body : "(no body)");
}

static json_int_t geti(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* Usage of an OpenAI response (whole or streamed with include_usage). */
static int openai_usage(const http_response *r, int stream, tally *t)
{
    json_t *usage = NULL, *whole = NULL;
    if (!stream) {
        whole = json_loads(r->body, 0, NULL);
        usage = json_object_get(whole, "usage");
    } else {
        hc_event ev[256];
        size_t n = hc_sse_parse(r->body, ev, 256);
        if (n < 2 || strcmp(ev[n - 1].data, "[DONE]") != 0) {
            hc_sse_free(ev, n);
            return 0;
        }
        whole = json_loads(ev[n - 2].data, 0, NULL);
        usage = json_object_get(whole, "usage");
        hc_sse_free(ev, n);
    }
    int ok = json_is_object(usage);
    if (ok) {
        t->prompt += (uint64_t)geti(usage, "prompt_tokens");
        t->cached +=
            (uint64_t)geti(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
        t->generated += (uint64_t)geti(usage, "completion_tokens");
    }
    json_decref(whole);
    return ok;
}

/* Usage of an Anthropic response (the message, or message_delta of a stream). */
static int anthropic_usage(const http_response *r, int stream, tally *t)
{
    json_t *whole = NULL, *usage = NULL;
    if (!stream) {
        whole = json_loads(r->body, 0, NULL);
        usage = json_object_get(whole, "usage");
    } else {
        hc_event ev[256];
        size_t n = hc_sse_parse(r->body, ev, 256);
        for (size_t i = 0; i < n; i++)
            if (strcmp(ev[i].event, "message_delta") == 0) {
                json_decref(whole);
                whole = json_loads(ev[i].data, 0, NULL);
                usage = json_object_get(whole, "usage");
            }
        int complete = n > 0 && strcmp(ev[n - 1].event, "message_stop") == 0;
        hc_sse_free(ev, n);
        if (!complete) {
            json_decref(whole);
            return 0;
        }
    }
    int ok = json_is_object(usage);
    if (ok) {
        uint64_t read = (uint64_t)geti(usage, "cache_read_input_tokens");
        t->prompt +=
            (uint64_t)(geti(usage, "input_tokens") + geti(usage, "cache_creation_input_tokens")) +
            read;
        t->cached += read;
        t->generated += (uint64_t)geti(usage, "output_tokens");
    }
    json_decref(whole);
    return ok;
}

typedef struct client {
    int id;
    int n_requests;
    int keep_alive; /* all requests on one connection */
    pthread_t thread;
    tally t;
} client;

/* Request j of client c: its agent, API, streaming and a conversation that
 * grows with the turn, so agents reuse their memory. */
static void one_request(client *c, int j, int *fd)
{
    int agent = (c->id + j) % AGENTS, kind = (c->id + j / AGENTS) % 4;
    int stream = kind & 1, anthropic = kind >> 1;
    char headers[128], body[1024], turns[512] = "";
    snprintf(headers, sizeof headers, "X-Agent-ID: load-agent-%d\r\n", agent);
    for (int k = 0; k <= j % 3; k++) {
        size_t l = strlen(turns);
        snprintf(turns + l, sizeof turns - l,
                 "%s{\"role\":\"user\",\"content\":\"Tell story %d part %d\"}%s", k ? "," : "",
                 agent, k,
                 k < j % 3 ? ",{\"role\":\"assistant\",\"content\":\"Once upon a time\"}" : "");
    }
    const char *model = model_names[agent % 2];
    if (anthropic)
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"max_tokens\":%d,\"temperature\":0.8,\"stream\":%s,"
                 "\"messages\":[%s]}",
                 model, 3 + j % 5, stream ? "true" : "false", turns);
    else
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"max_tokens\":%d,\"temperature\":0.8,\"seed\":%d,"
                 "\"stream\":%s%s,\"messages\":[%s]}",
                 model, 3 + j % 5, j, stream ? "true" : "false",
                 stream ? ",\"stream_options\":{\"include_usage\":true}" : "", turns);
    const char *path = anthropic ? "/v1/messages" : "/v1/chat/completions";
    http_response r = {0};
    int rc = -1;
    if (*fd < 0)
        *fd = hc_connect(port);
    if (*fd >= 0)
        rc = hc_request(*fd, "POST", path, headers, body, strlen(body), c->keep_alive,
                        CALL_TIMEOUT_MS, &r);
    if (!c->keep_alive || rc != 0) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
    }
    c->t.requests++;
    c->t.by_kind[kind]++;
    if (rc != 0 || r.status != 200)
        fail_once(&c->t, c->keep_alive ? "keep-alive request" : "request", rc, &r);
    else if (!(anthropic ? anthropic_usage(&r, stream, &c->t) : openai_usage(&r, stream, &c->t)))
        fail_once(&c->t, "usage", rc, &r);
    hc_free(&r);
}

static void *client_main(void *arg)
{
    client *c = arg;
    int fd = -1;
    for (int j = 0; j < c->n_requests; j++)
        one_request(c, j, &fd);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static double metric(const char *series)
{
    double v = e2e_metric(port, series);
    return v < 0 ? 0 : v;
}

/* Waits (at most timeout_ms) until the series equals want. */
static int wait_metric_equal(const char *series, double want, int timeout_ms)
{
    double until = hc_now_ms() + timeout_ms;
    while (metric(series) != want) {
        if (hc_now_ms() > until)
            return 0;
        usleep(10000);
    }
    return 1;
}

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

/* GET /health on a kept-alive connection; 1 when answered 200. */
static int health_on(int fd)
{
    http_response r;
    int ok = hc_request(fd, "GET", "/health", NULL, NULL, 0, 1, CALL_TIMEOUT_MS, &r) == 0 &&
             r.status == 200;
    hc_free(&r);
    return ok;
}

static void many_clients_at_the_default_limit_are_all_served_and_accounted(void **state)
{
    (void)state;
    int stress = getenv("SEM_STRESS") && atoi(getenv("SEM_STRESS")) > 0;
    int n_fresh = env_int("SEM_LOAD_CLIENTS", 256), per_fresh = env_int("SEM_LOAD_REQUESTS", 3);
    int n_kept = stress ? 64 : 16, per_kept = stress ? 40 : 8, n_idle = stress ? 512 : 128;
    if (stress && !getenv("SEM_LOAD_REQUESTS"))
        per_fresh = 20;
    /* The connection limit is the default; the timeouts leave the idle
     * connections alone however long a sanitizer build takes. */
    static const char *const args[] = {"-m",            "qwen=" QWEN, "--pool-mb",     "64",
                                       "--max-batch",    "8",         "--max-queue",   "2048",
                                       "--read-timeout", "600",       "--idle-timeout", "600",
                                       "--drain-timeout", "10",       NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, "llama=" STORIES, args, NULL, 1), 0);
    port = srv.port;
    int *idle = calloc((size_t)n_idle, sizeof *idle);
    for (int i = 0; i < n_idle; i++) {
        idle[i] = hc_connect(port);
        assert_true(idle[i] >= 0);
        assert_true(health_on(idle[i]));
    }
    double p0 = metric("semantic_prompt_tokens_total"), c0 = metric("semantic_cached_tokens_total"),
           g0 = metric("semantic_generated_tokens_total");
    double t0 = hc_now_ms();
    int n_clients = n_fresh + n_kept;
    client *clients = calloc((size_t)n_clients, sizeof *clients);
    for (int i = 0; i < n_clients; i++) {
        clients[i].id = i;
        clients[i].keep_alive = i >= n_fresh;
        clients[i].n_requests = clients[i].keep_alive ? per_kept : per_fresh;
        assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
    tally all = {0};
    for (int i = 0; i < n_clients; i++) {
        pthread_join(clients[i].thread, NULL);
        tally *t = &clients[i].t;
        all.requests += t->requests;
        all.prompt += t->prompt;
        all.cached += t->cached;
        all.generated += t->generated;
        for (int k = 0; k < 4; k++)
            all.by_kind[k] += t->by_kind[k];
        if (t->failures && !all.failures)
            memcpy(all.first_failure, t->first_failure, sizeof all.first_failure);
        all.failures += t->failures;
        all.unavailable += t->unavailable;
    }
    double secs = (hc_now_ms() - t0) / 1e3;
    printf("  %d clients (%d with a new connection per request, %d kept alive) and %d idle "
           "connections: %llu requests (openai %llu + %llu streamed, anthropic %llu + %llu "
           "streamed) in %.1f s: %.1f req/s; prompt %llu tokens (%llu cached), %llu generated\n",
           n_clients, n_fresh, n_kept, n_idle, (unsigned long long)all.requests,
           (unsigned long long)all.by_kind[0], (unsigned long long)all.by_kind[1],
           (unsigned long long)all.by_kind[2], (unsigned long long)all.by_kind[3], secs,
           all.requests / secs, (unsigned long long)all.prompt, (unsigned long long)all.cached,
           (unsigned long long)all.generated);
    if (all.failures)
        fail_msg("%llu failed requests (%llu answered 503); the first: %s",
                 (unsigned long long)all.failures, (unsigned long long)all.unavailable,
                 all.first_failure);
    assert_int_equal(all.requests, (uint64_t)n_fresh * (uint64_t)per_fresh +
                                       (uint64_t)n_kept * (uint64_t)per_kept);
    assert_true(metric("semantic_http_connections_rejected_total") == 0);
    /* The idle connections were kept and still answer. */
    for (int i = 0; i < n_idle; i++) {
        assert_true(health_on(idle[i]));
        close(idle[i]);
    }
    free(idle);
    /* Memory was reused. */
    assert_true(all.cached > 0);
    /* Every token told to a client is counted, and nothing else. */
    assert_int_equal((uint64_t)(metric("semantic_prompt_tokens_total") - p0), all.prompt);
    assert_int_equal((uint64_t)(metric("semantic_cached_tokens_total") - c0), all.cached);
    assert_int_equal((uint64_t)(metric("semantic_generated_tokens_total") - g0), all.generated);
    assert_true(metric("semantic_http_requests_total{route=\"chat_completions\",status=\"200\"}") ==
                (double)(all.by_kind[0] + all.by_kind[1]));
    assert_true(metric("semantic_http_requests_total{route=\"messages\",status=\"200\"}") ==
                (double)(all.by_kind[2] + all.by_kind[3]));
    assert_true(metric("semantic_running_requests") == 0);
    assert_true(metric("semantic_queue_depth") == 0);
    /* The agents hold exactly the blocks in use, on each model. */
    http_response r = e2e_call(port, "GET", "/v1/agents", NULL, NULL);
    json_t *j = e2e_json(&r);
    double held[2] = {0, 0};
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "data"), i, a)
    {
        int q = strcmp(json_string_value(json_object_get(a, "model")), "qwen") == 0;
        int agent = atoi(json_string_value(json_object_get(a, "id")) + strlen("load-agent-"));
        assert_int_equal(q, agent % 2);
        held[q] += (double)geti(a, "hot_bytes");
    }
    assert_int_equal(json_array_size(json_object_get(j, "data")), AGENTS);
    json_decref(j);
    hc_free(&r);
    for (int m = 0; m < 2; m++) {
        char bytes[96], used[96];
        snprintf(bytes, sizeof bytes, "semantic_pool_block_bytes{model=\"%s\"}", model_names[m]);
        snprintf(used, sizeof used, "semantic_pool_blocks_used{model=\"%s\"}", model_names[m]);
        assert_true(held[m] / metric(bytes) == metric(used));
    }
    /* Deleting them empties the pool once their writes in flight have
     * ended: an agent deleted while its memory is being written keeps its
     * blocks until the write stops (the write-behind save that follows
     * each request is often under way here). */
    for (int k = 0; k < AGENTS; k++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/agents/load-agent-%d?model=%s", k, model_names[k % 2]);
        r = e2e_call(port, "DELETE", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        hc_free(&r);
    }
    assert_true(wait_metric_equal("semantic_agent_io_in_flight", 0, 60000));
    assert_true(metric("semantic_pool_blocks_used") == 0);
    assert_true(metric("semantic_pool_blocks_total") > 0);
    free(clients);
    assert_int_equal(server_stop(&srv, SIGTERM, 30000), 0);
    server_discard_log(&srv);
}

/* Sends a long generation request on a new connection and, for a stream,
 * reads until its first bytes; returns the socket (to be closed). */
static int leave_after_start(int stream, int i)
{
    int fd = hc_connect(port);
    if (fd < 0)
        return -1;
    char body[256], req[1024];
    snprintf(body, sizeof body,
             "{\"max_tokens\":1900,\"temperature\":1.5,\"min_p\":0,\"stream\":%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me story %d\"}]}",
             stream ? "true" : "false", i);
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nX-Agent-ID: leaver-%d\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     i, strlen(body), body);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    if (stream) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[512];
        if (poll(&p, 1, CALL_TIMEOUT_MS) != 1 || recv(fd, buf, sizeof buf, 0) <= 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void clients_that_leave_have_their_requests_cancelled(void **state)
{
    (void)state;
    static const char *const args[] = {"--pool-mb", "64", "--max-batch", "2", NULL};
    assert_int_equal(server_start(&srv, SEMANTIC_BIN, STORIES, args, NULL, 1), 0);
    port = srv.port;
    /* 2 streams (running: each has sent its first text) and 6 whole
     * answers queued behind them, 1900 tokens each. */
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = leave_after_start(i < 2, i);
        assert_true(fds[i] >= 0);
    }
    double until = hc_now_ms() + 30000;
    while (metric("semantic_running_requests") + metric("semantic_queue_depth") < 8 &&
           hc_now_ms() < until)
        usleep(10000);
    assert_true(metric("semantic_running_requests") == 2);
    double t0 = hc_now_ms();
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    assert_true(wait_metric_equal("semantic_running_requests", 0, 30000));
    assert_true(wait_metric_equal("semantic_queue_depth", 0, 30000));
    double took = hc_now_ms() - t0;
    printf("  8 abandoned requests cancelled in %.0f ms\n", took);
    /* The whole answers ended unanswered (499), not generated; the streams
     * (200 from their start) were cut. */
    assert_true(
        wait_metric_equal("semantic_http_requests_total{route=\"chat_completions\",status=\"499\"}",
                          6, 30000));
    assert_true(metric("semantic_http_requests_total{route=\"chat_completions\",status=\"200\"}") ==
                2);
    assert_true(metric("semantic_http_streams_aborted_total") == 2);
    assert_true(took < 5000);
    e2e_assert_healthy(port);
    assert_int_equal(server_stop(&srv, SIGTERM, 30000), 0);
    server_discard_log(&srv);
}

/* After a failed check the server is still running: kill it (its log
 * stays for the post-mortem). */
static int stop_server(void **state)
{
    (void)state;
    if (srv.pid)
        server_stop(&srv, SIGKILL, 5000);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(many_clients_at_the_default_limit_are_all_served_and_accounted,
                                  stop_server),
        cmocka_unit_test_teardown(clients_that_leave_have_their_requests_cancelled, stop_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
