/*
 * Specification of the server under concurrent load: 32 clients send 50
 * requests each over 8 agents, mixing the OpenAI and Anthropic APIs,
 * whole and streamed. Every request succeeds (no 5xx, no 429), every
 * token the clients were told about is counted by /metrics and nothing
 * else is, and once the agents are deleted the KV pool is whole again.
 *
 * SEM_LOAD_CLIENTS and SEM_LOAD_REQUESTS override the 32 x 50.
 */
#include "e2e_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define AGENTS 8

static uint16_t port;
static int n_requests = 50;

typedef struct tally {
    uint64_t requests, prompt, cached, generated;
    uint64_t by_kind[4];
    uint64_t failures;
    char first_failure[512];
} tally;

static void fail_once(tally *t, const char *what, const http_response *r)
{
    if (t->failures++ == 0)
        snprintf(t->first_failure, sizeof t->first_failure, "%s: status %d: %.300s", what,
                 r->status, r->body ? r->body : "(no body)");
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
    pthread_t thread;
    tally t;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    for (int j = 0; j < n_requests; j++) {
        int agent = (c->id + j) % AGENTS, kind = (c->id + j / AGENTS) % 4;
        int stream = kind & 1, anthropic = kind >> 1;
        char headers[128], body[1024];
        snprintf(headers, sizeof headers, "X-Agent-ID: load-agent-%d\r\n", agent);
        /* A conversation that grows with the turn, so agents reuse memory. */
        char turns[512] = "";
        for (int k = 0; k <= j % 3; k++) {
            size_t l = strlen(turns);
            snprintf(turns + l, sizeof turns - l,
                     "%s{\"role\":\"user\",\"content\":\"Tell story %d part %d\"}%s", k ? "," : "",
                     agent, k,
                     k < j % 3 ? ",{\"role\":\"assistant\",\"content\":\"Once upon a time\"}" : "");
        }
        if (anthropic)
            snprintf(body, sizeof body,
                     "{\"max_tokens\":%d,\"temperature\":0.8,\"stream\":%s,\"messages\":[%s]}",
                     3 + j % 5, stream ? "true" : "false", turns);
        else
            snprintf(body, sizeof body,
                     "{\"max_tokens\":%d,\"temperature\":0.8,\"seed\":%d,\"stream\":%s%s,"
                     "\"messages\":[%s]}",
                     3 + j % 5, j, stream ? "true" : "false",
                     stream ? ",\"stream_options\":{\"include_usage\":true}" : "", turns);
        http_response r;
        int rc = hc_call(port, "POST", anthropic ? "/v1/messages" : "/v1/chat/completions", headers,
                         body, &r);
        c->t.requests++;
        c->t.by_kind[kind]++;
        if (rc != 0 || r.status != 200)
            fail_once(&c->t, "request", &r);
        else if (!(anthropic ? anthropic_usage(&r, stream, &c->t)
                             : openai_usage(&r, stream, &c->t)))
            fail_once(&c->t, "usage", &r);
        hc_free(&r);
    }
    return NULL;
}

static double metric(const char *series)
{
    double v = e2e_metric(port, series);
    return v < 0 ? 0 : v;
}

static void clients_over_agents_and_apis_are_all_served_and_accounted(void **state)
{
    (void)state;
    int n_clients = 32;
    if (getenv("SEM_LOAD_CLIENTS"))
        n_clients = atoi(getenv("SEM_LOAD_CLIENTS"));
    if (getenv("SEM_LOAD_REQUESTS"))
        n_requests = atoi(getenv("SEM_LOAD_REQUESTS"));
    server_proc s;
    static const char *const args[] = {
        "--pool-mb",       "64", "--max-batch", "8", "--max-connections", "128",
        "--drain-timeout", "10", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, NULL, 1), 0);
    port = s.port;
    double p0 = metric("semantic_prompt_tokens_total"), c0 = metric("semantic_cached_tokens_total"),
           g0 = metric("semantic_generated_tokens_total");
    double t0 = hc_now_ms();
    client *clients = calloc((size_t)n_clients, sizeof *clients);
    for (int i = 0; i < n_clients; i++) {
        clients[i].id = i;
        pthread_create(&clients[i].thread, NULL, client_main, &clients[i]);
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
    }
    double secs = (hc_now_ms() - t0) / 1e3;
    printf("  %llu requests (openai %llu + %llu streamed, anthropic %llu + %llu streamed) in "
           "%.1f s: %.1f req/s; prompt %llu tokens (%llu cached), %llu generated\n",
           (unsigned long long)all.requests, (unsigned long long)all.by_kind[0],
           (unsigned long long)all.by_kind[1], (unsigned long long)all.by_kind[2],
           (unsigned long long)all.by_kind[3], secs, all.requests / secs,
           (unsigned long long)all.prompt, (unsigned long long)all.cached,
           (unsigned long long)all.generated);
    if (all.failures)
        fail_msg("%llu failed requests; the first: %s", (unsigned long long)all.failures,
                 all.first_failure);
    assert_int_equal(all.requests, (uint64_t)n_clients * (uint64_t)n_requests);
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
    /* The agents hold exactly the blocks in use; deleting them empties the pool. */
    http_response r = e2e_call(port, "GET", "/v1/agents", NULL, NULL);
    json_t *j = e2e_json(&r);
    double held = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "data"), i, a) held += (double)geti(a, "hot_bytes");
    assert_int_equal(json_array_size(json_object_get(j, "data")), AGENTS);
    json_decref(j);
    hc_free(&r);
    assert_true(held / metric("semantic_pool_block_bytes") == metric("semantic_pool_blocks_used"));
    for (int k = 0; k < AGENTS; k++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/agents/load-agent-%d", k);
        r = e2e_call(port, "DELETE", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        hc_free(&r);
    }
    assert_true(metric("semantic_pool_blocks_used") == 0);
    assert_true(metric("semantic_pool_blocks_total") > 0);
    free(clients);
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    server_discard_log(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clients_over_agents_and_apis_are_all_served_and_accounted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
