/*
 * bench_http.c - what the HTTP layer costs and what agent memory saves,
 * measured from the outside like a client sees it.
 *
 *   bench_http [--model PATH] [--server BIN] [--threads N] [--ctx N] [--port N]
 *              [--agents 8] [--turns 4] [--system-words 300] [--max-tokens 8]
 *              [--health-seconds 3] [--health-clients 2] [--overhead-requests 200]
 *              [--json]
 *
 * Starts `semantic serve` on a free port (or uses --port of a running
 * one) and measures, one after the other:
 *
 *   1. time to first token through HTTP (client-side: request sent to the
 *      first byte of the SSE body, which the server sends with the first
 *      text) for cold agents (first turn: the whole conversation is
 *      prefilled) and returning agents (later turns: only what is new),
 *      p50 and p95, agents run one at a time;
 *   2. requests/s of GET /health on kept-alive connections;
 *   3. the HTTP overhead over the engine: a client's whole time for a
 *      non-streamed 1-token chat request minus the engine's own time for
 *      it (the Server-Timing "engine" figure: submit to finish), p50 and
 *      p95: parsing, the chat template, tokenization, JSON, sockets.
 *
 * --json prints one JSON object as the last line.
 */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "server_process.h"

typedef struct bench_args {
    const char *model, *server, *threads, *ctx;
    int port, agents, turns, system_words, max_tokens, health_seconds, health_clients;
    int overhead_requests, json;
} bench_args;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ---------------------------------------------------------------- 1. TTFT */

static const char *words[] = {"the",   "little", "dog",  "ran", "to",     "a",   "big",
                              "red",   "ball",   "and",  "his", "friend", "cat", "was",
                              "happy", "in",     "park", "sun", "day",    "tree"};

static json_t *system_prompt(int agent, int n_words)
{
    size_t cap = (size_t)n_words * 8 + 64;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "Agent %d. ", agent);
    for (int i = 0; i < n_words; i++)
        p += sprintf(p, "%s ", words[(i * 7 + agent * 3) % 20]);
    json_t *m = json_pack("{s:s,s:s}", "role", "system", "content", s);
    free(s);
    return m;
}

/* One streamed turn; returns the client's time to first byte, appends the answer. */
static double turn(uint16_t port, const char *agent, json_t *messages, int max_tokens)
{
    json_t *req = json_pack("{s:O,s:i,s:f,s:b}", "messages", messages, "max_tokens", max_tokens,
                            "temperature", 0.0, "stream", 1);
    char *body = json_dumps(req, JSON_COMPACT);
    char headers[200];
    snprintf(headers, sizeof headers, "X-Agent-ID: %s\r\n", agent);
    http_response r;
    int fd = hc_connect(port);
    double ttft = -1;
    if (fd >= 0 &&
        hc_request(fd, "POST", "/v1/chat/completions", headers, body, strlen(body), 0, 600000,
                   &r) == 0 &&
        r.status == 200) {
        ttft = r.t_first_body_ms;
        /* The answer, for the next turn. */
        hc_event ev[1024];
        size_t n = hc_sse_parse(r.body, ev, 1024);
        char answer[8192] = "";
        for (size_t i = 0; i < n; i++) {
            json_t *c = json_loads(ev[i].data, 0, NULL);
            const char *t = json_string_value(json_object_get(
                json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta"),
                "content"));
            if (t)
                strncat(answer, t, sizeof answer - strlen(answer) - 1);
            json_decref(c);
        }
        hc_sse_free(ev, n);
        json_array_append_new(messages,
                              json_pack("{s:s,s:s}", "role", "assistant", "content", answer));
    } else {
        fprintf(stderr, "bench_http: a streamed turn failed (status %d): %s\n", r.status,
                r.body ? r.body : "");
    }
    if (fd >= 0)
        close(fd);
    hc_free(&r);
    free(body);
    json_decref(req);
    return ttft;
}

static void bench_ttft(uint16_t port, const bench_args *a, double *cold, double *warm,
                       size_t *n_warm)
{
    *n_warm = 0;
    char run[32];
    snprintf(run, sizeof run, "%lx", (long)time(NULL) ^ (long)getpid());
    for (int g = 0; g < a->agents; g++) {
        char agent[64];
        snprintf(agent, sizeof agent, "bench-%s-%d", run, g);
        json_t *messages = json_array();
        json_array_append_new(messages, system_prompt(g, a->system_words));
        for (int t = 0; t < a->turns; t++) {
            char q[64];
            snprintf(q, sizeof q, "Question %d: what happened next?", t);
            json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", q));
            double ms = turn(port, agent, messages, a->max_tokens);
            if (t == 0)
                cold[g] = ms;
            else
                warm[(*n_warm)++] = ms;
        }
        json_decref(messages);
        char path[128];
        snprintf(path, sizeof path, "/v1/agents/%s", agent);
        http_response r;
        hc_call(port, "DELETE", path, NULL, NULL, &r);
        hc_free(&r);
    }
}

/* ---------------------------------------------------------------- 2. /health */

typedef struct health_worker {
    uint16_t port;
    double until;
    long done, failed;
    double *lat;
    size_t n_lat, cap;
} health_worker;

static void *health_main(void *arg)
{
    health_worker *w = arg;
    int fd = hc_connect(w->port);
    while (fd >= 0 && hc_now_ms() < w->until) {
        http_response r;
        if (hc_request(fd, "GET", "/health", NULL, NULL, 0, 1, 10000, &r) != 0 || r.status != 200) {
            w->failed++;
            hc_free(&r);
            close(fd);
            fd = hc_connect(w->port);
            continue;
        }
        if (w->n_lat < w->cap)
            w->lat[w->n_lat++] = r.t_total_ms;
        w->done++;
        hc_free(&r);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* ---------------------------------------------------------------- 3. overhead */

static double server_timing(const http_response *r, const char *metric)
{
    char v[256];
    if (!hc_header(r, "Server-Timing", v, sizeof v))
        return -1;
    char key[64];
    snprintf(key, sizeof key, "%s;dur=", metric);
    const char *at = strstr(v, key);
    return at ? atof(at + strlen(key)) : -1;
}

static size_t bench_overhead(uint16_t port, int n, double *over, double *total)
{
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":1,"
                       "\"temperature\":0}";
    int fd = hc_connect(port);
    size_t k = 0;
    for (int i = 0; i < n + 10 && fd >= 0; i++) {
        http_response r;
        if (hc_request(fd, "POST", "/v1/chat/completions", NULL, body, strlen(body), 1, 60000,
                       &r) != 0 ||
            r.status != 200) {
            hc_free(&r);
            break;
        }
        double engine = server_timing(&r, "engine");
        if (i >= 10 && engine >= 0) { /* the first ten warm up */
            over[k] = r.t_total_ms - engine;
            total[k++] = r.t_total_ms;
        }
        hc_free(&r);
    }
    if (fd >= 0)
        close(fd);
    return k;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_http [--model PATH] [--server BIN] [--threads N] [--ctx N] [--port N]\n"
            "                  [--agents N] [--turns N] [--system-words N] [--max-tokens N]\n"
            "                  [--health-seconds N] [--health-clients N]\n"
            "                  [--overhead-requests N] [--json]\n");
}

int main(int argc, char **argv)
{
    bench_args a = {.model = SEM_TEST_DATA "/models/stories260K.gguf",
                    .server = SEMANTIC_BIN,
                    .agents = 8,
                    .turns = 4,
                    .system_words = 300,
                    .max_tokens = 8,
                    .health_seconds = 3,
                    .health_clients = 2,
                    .overhead_requests = 200};
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"server", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 't'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"port", required_argument, 0, 'p'},
                                         {"agents", required_argument, 0, 'a'},
                                         {"turns", required_argument, 0, 'n'},
                                         {"system-words", required_argument, 0, 'w'},
                                         {"max-tokens", required_argument, 0, 'k'},
                                         {"health-seconds", required_argument, 0, 'H'},
                                         {"health-clients", required_argument, 0, 'C'},
                                         {"overhead-requests", required_argument, 0, 'o'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:s:t:c:p:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': a.model = optarg; break;
        case 's': a.server = optarg; break;
        case 't': a.threads = optarg; break;
        case 'c': a.ctx = optarg; break;
        case 'p': a.port = atoi(optarg); break;
        case 'a': a.agents = atoi(optarg); break;
        case 'n': a.turns = atoi(optarg); break;
        case 'w': a.system_words = atoi(optarg); break;
        case 'k': a.max_tokens = atoi(optarg); break;
        case 'H': a.health_seconds = atoi(optarg); break;
        case 'C': a.health_clients = atoi(optarg); break;
        case 'o': a.overhead_requests = atoi(optarg); break;
        case 'j': a.json = 1; break;
        default: usage(); return ch == 'h' ? 0 : 2;
        }
    }
    if (a.agents < 1 || a.turns < 2 || a.health_clients < 1 || a.overhead_requests < 1) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    server_proc srv = {0};
    uint16_t port = (uint16_t)a.port;
    if (!port) {
        const char *args[16];
        int n = 0;
        args[n++] = "--pool-mb";
        args[n++] = "1024";
        if (a.threads) {
            args[n++] = "--threads";
            args[n++] = a.threads;
        }
        if (a.ctx) {
            args[n++] = "--ctx";
            args[n++] = a.ctx;
        }
        args[n] = NULL;
        if (server_start(&srv, a.server, a.model, args, NULL, 1) != 0)
            return 1;
        port = srv.port;
    }

    double *cold = calloc((size_t)a.agents, sizeof *cold);
    double *warm = calloc((size_t)(a.agents * a.turns), sizeof *warm);
    size_t n_warm;
    bench_ttft(port, &a, cold, warm, &n_warm);

    health_worker *hw = calloc((size_t)a.health_clients, sizeof *hw);
    pthread_t *ht = calloc((size_t)a.health_clients, sizeof *ht);
    double t0 = hc_now_ms(), until = t0 + a.health_seconds * 1e3;
    for (int i = 0; i < a.health_clients; i++) {
        hw[i] = (health_worker){.port = port, .until = until, .cap = 2000000};
        hw[i].lat = malloc(hw[i].cap * sizeof *hw[i].lat);
        pthread_create(&ht[i], NULL, health_main, &hw[i]);
    }
    long health_done = 0, health_failed = 0;
    size_t n_hl = 0;
    for (int i = 0; i < a.health_clients; i++) {
        pthread_join(ht[i], NULL);
        health_done += hw[i].done;
        health_failed += hw[i].failed;
        n_hl += hw[i].n_lat;
    }
    double health_secs = (hc_now_ms() - t0) / 1e3;
    double *hl = malloc((n_hl ? n_hl : 1) * sizeof *hl);
    size_t at = 0;
    for (int i = 0; i < a.health_clients; i++) {
        memcpy(hl + at, hw[i].lat, hw[i].n_lat * sizeof *hl);
        at += hw[i].n_lat;
        free(hw[i].lat);
    }

    double *over = calloc((size_t)a.overhead_requests, sizeof *over);
    double *total = calloc((size_t)a.overhead_requests, sizeof *total);
    size_t n_over = bench_overhead(port, a.overhead_requests, over, total);

    double cold50 = pct(cold, (size_t)a.agents, 0.5), cold95 = pct(cold, (size_t)a.agents, 0.95);
    double warm50 = pct(warm, n_warm, 0.5), warm95 = pct(warm, n_warm, 0.95);
    double hps = health_done / health_secs, h50 = pct(hl, n_hl, 0.5), h99 = pct(hl, n_hl, 0.99);
    double o50 = pct(over, n_over, 0.5), o95 = pct(over, n_over, 0.95);
    double t50 = pct(total, n_over, 0.5);
    printf("model %s, %d agents x %d turns, system prompt %d words, %d tokens per answer\n",
           a.model, a.agents, a.turns, a.system_words, a.max_tokens);
    printf("| measure | p50 | p95 |\n|---|---|---|\n");
    printf("| TTFT, cold agent (first turn) | %.1f ms | %.1f ms |\n", cold50, cold95);
    printf("| TTFT, returning agent (turns 2-%d) | %.1f ms | %.1f ms |\n", a.turns, warm50, warm95);
    printf("| HTTP overhead over the engine (1-token chat, kept alive) | %.3f ms | %.3f ms |\n",
           o50, o95);
    printf("| whole 1-token chat request, client side | %.3f ms | %.3f ms |\n", t50,
           pct(total, n_over, 0.95));
    printf("| GET /health latency (p99 in the p95 column) | %.3f ms | %.3f ms |\n", h50, h99);
    printf("GET /health: %.0f requests/s over %d kept-alive connections (%ld failed)\n", hps,
           a.health_clients, health_failed);
    if (a.json) {
        json_t *o =
            json_pack("{s:{s:f,s:f},s:{s:f,s:f},s:{s:f,s:f},s:f}", "ttft_cold_ms", "p50", cold50,
                      "p95", cold95, "ttft_returning_ms", "p50", warm50, "p95", warm95,
                      "http_overhead_ms", "p50", o50, "p95", o95, "health_requests_per_s", hps);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    int rc = 0;
    if (srv.pid) {
        rc = server_stop(&srv, SIGTERM, 30000) == 0 ? 0 : 1;
        if (rc == 0)
            server_discard_log(&srv);
    }
    free(cold);
    free(warm);
    free(hw);
    free(ht);
    free(hl);
    free(over);
    free(total);
    return rc;
}
