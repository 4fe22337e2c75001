/*
 * bench_remote.c - the remote tier (Redis) measured from a client's side
 * (docs/performance.md, "Several nodes").
 *
 *   bench_remote [--model PATH] [--server BIN] [--threads N] [--ctx 6144] [--words N] [--reps N]
 *                [--decode-tokens N] [--writers N] [--writer-words N] [--writer-pause-ms N]
 *                [--tls] [--skip-ttft] [--skip-decode]
 *
 * Starts a redis-server (redis_process.h) and `semantic serve`s on free
 * ports of 127.0.0.1 and measures:
 *
 *   1. time to first token of an agent with a long prompt (--words of
 *      text, about 4,000 tokens by default on a 32k SPM vocabulary; the
 *      token count is printed) arriving at a node that does not hold it:
 *      *remote* (server B, which has never seen the agent, reads it from
 *      Redis after server A wrote it), against *warm* (A again after its
 *      RAM copy was dropped: its own disk, in the page cache), *hot* (A
 *      with the agent in RAM) and *cold* (A's first request: the whole
 *      prefill). Each is a non-streamed 1-token request, so the client's
 *      whole time is the time to that first token; median of --reps agents.
 *   2. the decode rate of one agent generating --decode-tokens tokens
 *      (streamed; after its first token) while --writers other agents with
 *      --writer-words of memory take short turns one after another, each
 *      turn followed by a save and a pause of --writer-pause-ms: on a server with the remote tier (every
 *      save is also put to Redis) and on one without, alternating, --reps
 *      times each.
 *
 * With --tls, Redis also listens with TLS (certificates made by the
 * openssl command line, tls_files.h) and a third server C reads the same
 * agents over rediss://, before or after B (alternating, each once the
 * other's disk save is done): *remote over TLS* against *remote* for the
 * very same bytes in the same Redis.
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
#include "redis_process.h"
#include "server_process.h"
#include "tls_files.h"

typedef struct bench_args {
    const char *model, *server, *threads, *ctx;
    int words, reps, decode_tokens, writers, writer_words, writer_pause_ms;
} bench_args;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

static const char *vocab[] = {
    "the",   "little", "dog",    "ran",    "to",     "a",      "big",    "red",
    "ball",  "and",    "his",    "friend", "cat",    "was",    "happy",  "in",
    "park",  "sun",    "day",    "tree",   "river",  "stone",  "window", "garden",
    "music", "paper",  "silver", "cloud",  "winter", "morning", "letter", "mountain"};

/* A chat body of n_words pseudo-random words (seeded), max_tokens, maybe streamed. */
static char *long_body(unsigned seed, int n_words, int max_tokens, int stream)
{
    size_t cap = (size_t)n_words * 10 + 64;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "Document %u. ", seed);
    unsigned x = seed * 2654435761u + 1;
    for (int i = 0; i < n_words; i++) {
        x = x * 1103515245u + 12345u;
        p += sprintf(p, "%s ", vocab[(x >> 16) % 32]);
    }
    json_t *req = json_pack("{s:[{s:s,s:s}],s:i,s:f,s:b}", "messages", "role", "user", "content",
                            s, "max_tokens", max_tokens, "temperature", 0.0, "stream", stream);
    free(s);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return body;
}

/* One request as agent; the client's whole time in ms (-1 on failure),
 * with the usage's prompt and cached tokens. */
static double timed_chat(uint16_t port, const char *agent, const char *body, long *prompt,
                         long *cached)
{
    char h[128];
    snprintf(h, sizeof h, "X-Agent-ID: %s\r\n", agent);
    http_response r;
    double t = -1;
    if (hc_call_within(port, "POST", "/v1/chat/completions", h, body, 600000, &r) == 0 &&
        r.status == 200) {
        t = r.t_total_ms;
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *u = json_object_get(j, "usage");
        *prompt = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
        *cached = (long)json_integer_value(
            json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
        json_decref(j);
    } else {
        fprintf(stderr, "bench_remote: a request failed (%d): %s\n", r.status, r.body ? r.body : "");
    }
    hc_free(&r);
    return t;
}

static double metric(uint16_t port, const char *series)
{
    http_response r;
    double v = -1;
    if (hc_call(port, "GET", "/metrics", NULL, NULL, &r) == 0) {
        size_t n = strlen(series);
        for (const char *line = r.body; line && *line;) {
            if (strncmp(line, series, n) == 0 && line[n] == ' ') {
                v = atof(line + n + 1);
                break;
            }
            const char *nl = strchr(line, '\n');
            line = nl ? nl + 1 : NULL;
        }
    }
    hc_free(&r);
    return v;
}

/* Waits until series reaches at_least (up to 10 min). */
static void wait_metric(uint16_t port, const char *series, double at_least)
{
    for (int i = 0; i < 60000 && metric(port, series) < at_least; i++)
        usleep(10000);
}

/* Waits until a gauge is 0 (up to 10 min). */
static void wait_zero(uint16_t port, const char *series)
{
    for (int i = 0; i < 60000 && metric(port, series) != 0; i++)
        usleep(10000);
}

static void wait_io(uint16_t port) { wait_zero(port, "semantic_agent_io_in_flight"); }

/* Waits until the node at port sees agent in Redis only (up to 10 min). */
static void wait_remote(uint16_t port, const char *agent)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/agents/%s", agent);
    for (int i = 0; i < 60000; i++) {
        http_response r;
        int found = hc_call(port, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 &&
                    strstr(r.body, "\"tier\":\"remote\"") != NULL;
        hc_free(&r);
        if (found)
            return;
        usleep(10000);
    }
}

static int start(server_proc *s, const bench_args *a, const char *url)
{
    const char *args[20];
    int n = 0;
    if (url) {
        args[n++] = "--cache-remote";
        args[n++] = url;
    }
    const char *rest[] = {"--ctx", a->ctx, "--max-batch", "4", "--pool-mb", "2048", NULL};
    for (int i = 0; rest[i]; i++)
        args[n++] = rest[i];
    if (a->threads) {
        args[n++] = "--threads";
        args[n++] = a->threads;
    }
    args[n] = NULL;
    const char *env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_CACHE_REMOTE=", NULL};
    return server_start(s, a->server, a->model, args, env, 1);
}

/* ---------------------------------------------------------------- 1. TTFT */

static void bench_ttft(const bench_args *a, const char *url, const char *tls_url)
{
    server_proc A, B, C = {0};
    if (start(&A, a, url) != 0 || start(&B, a, url) != 0 ||
        (tls_url && start(&C, a, tls_url) != 0)) {
        fprintf(stderr, "bench_remote: the servers did not start\n");
        exit(1);
    }
    double cold[64], hot[64], warm[64], remote[64], remote_tls[64];
    long prompt = 0, cached_remote = 0, cached_tls = 0, cached_warm = 0, c;
    int n = a->reps < 64 ? a->reps : 64;
    for (int r = 0; r < n; r++) {
        char agent[64];
        snprintf(agent, sizeof agent, "ttft-%d-%d", r, (int)getpid());
        char *body = long_body((unsigned)r + 1, a->words, 1, 0);
        cold[r] = timed_chat(A.port, agent, body, &prompt, &c);
        wait_remote(B.port, agent);
        if (tls_url)
            wait_remote(C.port, agent);
        /* B and C read the same bytes; which goes first alternates, and
         * the second starts once the first's save to its disk is done. */
        for (int k = 0; k < (tls_url ? 2 : 1); k++) {
            if (tls_url && (k == 0) == (r % 2 == 1)) {
                remote_tls[r] = timed_chat(C.port, agent, body, &prompt, &cached_tls);
                printf("agent %d: remote over TLS %.1f ms (%ld cached)\n", r, remote_tls[r],
                       cached_tls);
                wait_io(C.port);
            } else {
                remote[r] = timed_chat(B.port, agent, body, &prompt, &cached_remote);
                wait_io(B.port);
            }
        }
        hot[r] = timed_chat(A.port, agent, body, &prompt, &c);
        wait_io(A.port);
        char path[128];
        snprintf(path, sizeof path, "/v1/agents/%s?evict_only=true", agent);
        http_response d;
        hc_call(A.port, "DELETE", path, NULL, NULL, &d);
        hc_free(&d);
        wait_io(A.port);
        warm[r] = timed_chat(A.port, agent, body, &prompt, &cached_warm);
        printf("agent %d: %ld prompt tokens: cold %.0f ms, remote %.1f ms (%ld cached), warm "
               "%.1f ms (%ld cached), hot %.1f ms\n",
               r, prompt, cold[r], remote[r], cached_remote, warm[r], cached_warm, hot[r]);
        fflush(stdout);
        free(body);
    }
    double mc = median(cold, n), mr = median(remote, n), mw = median(warm, n),
           mh = median(hot, n);
    printf("TTFT, %ld-token agent, median of %d: cold %.0f ms, remote %.1f ms, warm (disk) "
           "%.1f ms, hot %.1f ms; remote/warm %.2fx, cold/remote %.0fx\n",
           prompt, n, mc, mr, mw, mh, mr / mw, mc / mr);
    if (tls_url) {
        double mt = median(remote_tls, n);
        printf("TTFT over TLS, median of %d: remote over TLS %.1f ms, remote %.1f ms; TLS/plain "
               "%.2fx (%+.1f ms)\n", n, mt, mr, mt / mr, mt - mr);
        server_stop(&C, SIGTERM, 60000);
    }
    server_stop(&A, SIGTERM, 60000);
    server_stop(&B, SIGTERM, 60000);
}

/* ---------------------------------------------------------------- 2. decode */

typedef struct writer_ctx {
    uint16_t port;
    int pause_ms;
    int writers;
    volatile int stop;
    int turns;
    char **bodies; /* per writer: its memory's body */
} writer_ctx;

/* Short turns of the writer agents, one after another, until stop. */
static void *writer_main(void *arg)
{
    writer_ctx *w = arg;
    for (int t = 0; !w->stop; t++) {
        int i = t % w->writers;
        char agent[32];
        snprintf(agent, sizeof agent, "writer-%d", i);
        /* Its memory plus a short new message: a few new tokens, then a save. */
        json_t *req = json_loads(w->bodies[i], 0, NULL);
        json_t *msgs = json_object_get(req, "messages");
        char q[64];
        snprintf(q, sizeof q, "Turn %d: go on.", t);
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", "Yes."));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", q));
        free(w->bodies[i]);
        w->bodies[i] = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        long p, c;
        if (timed_chat(w->port, agent, w->bodies[i], &p, &c) >= 0)
            w->turns++;
        for (int slept = 0; slept < w->pause_ms && !w->stop; slept += 10)
            usleep(10000);
    }
    return NULL;
}

/* The decoder's rate in tokens/s after its first token, with writers running. */
static double decode_once(const bench_args *a, const char *url, int *turns, double *puts,
                          int *decoded)
{
    server_proc s;
    if (start(&s, a, url) != 0) {
        fprintf(stderr, "bench_remote: the server did not start\n");
        exit(1);
    }
    writer_ctx w = {.port = s.port, .writers = a->writers, .pause_ms = a->writer_pause_ms};
    w.bodies = calloc((size_t)a->writers, sizeof *w.bodies);
    for (int i = 0; i < a->writers; i++) {
        char agent[32];
        snprintf(agent, sizeof agent, "writer-%d", i);
        w.bodies[i] = long_body(1000u + (unsigned)i, a->writer_words, 1, 0);
        long p, c;
        timed_chat(s.port, agent, w.bodies[i], &p, &c);
    }
    wait_io(s.port);
    if (url) { /* the writers' first puts settled */
        wait_metric(s.port, "semantic_remote_puts_total", a->writers);
        wait_zero(s.port, "semantic_remote_queue");
    }
    double puts0 = url ? metric(s.port, "semantic_remote_puts_total") : 0;
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    usleep(200000);
    char *body = long_body(7, 20, a->decode_tokens, 1);
    http_response r;
    double rate = -1;
    if (hc_call_within(s.port, "POST", "/v1/chat/completions", "X-Agent-ID: decoder\r\n", body,
                       600000, &r) == 0 &&
        r.status == 200) {
        hc_event ev[4096];
        size_t n = hc_sse_parse(r.body, ev, 4096), tokens = 0;
        for (size_t i = 0; i < n; i++)
            tokens += strstr(ev[i].data, "\"content\"") != NULL;
        hc_sse_free(ev, n);
        rate = (double)(tokens - 1) * 1000.0 / (r.t_total_ms - r.t_first_body_ms);
        *decoded = (int)tokens;
    }
    hc_free(&r);
    free(body);
    w.stop = 1;
    pthread_join(th, NULL);
    *turns = w.turns;
    *puts = url ? metric(s.port, "semantic_remote_puts_total") - puts0 : 0;
    for (int i = 0; i < a->writers; i++)
        free(w.bodies[i]);
    free(w.bodies);
    server_stop(&s, SIGTERM, 60000);
    return rate;
}

/* Pairs of runs, with and without the remote tier, alternating which goes
 * first; the median of the pairs' ratios (each pair ran under the same
 * machine load, which varies between pairs on a shared machine). */
static void bench_decode(const bench_args *a, const char *url)
{
    double with[64], without[64], ratio[64];
    int n = a->reps < 64 ? a->reps : 64;
    for (int r = 0; r < n; r++) {
        for (int k = 0; k < 2; k++) {
            int remote = (k == 0) == (r % 2 == 0), turns, decoded = 0;
            double puts;
            double rate = decode_once(a, remote ? url : NULL, &turns, &puts, &decoded);
            if (remote) {
                with[r] = rate;
                printf("pair %d: with remote writes %.2f tok/s (%d tokens; %d writer turns, %.0f "
                       "remote puts)\n", r, rate, decoded, turns, puts);
            } else {
                without[r] = rate;
                printf("pair %d: without a remote tier %.2f tok/s (%d tokens; %d writer turns)\n",
                       r, rate, decoded, turns);
            }
            fflush(stdout);
        }
        ratio[r] = with[r] / without[r];
    }
    double mr = median(ratio, n);
    printf("decode, %d pairs: median ratio with/without remote writes %.3f (%+.1f %%); median "
           "rates %.2f and %.2f tok/s\n", n, mr, (mr - 1) * 100, median(with, n),
           median(without, n));
}

int main(int argc, char **argv)
{
    bench_args a = {.model = "/work/models/llama-1b-q4_0.gguf",
                    .server = SEMANTIC_BIN,
                    .ctx = "6144",
                    .words = 4000,
                    .reps = 3,
                    .decode_tokens = 128,
                    .writers = 2,
                    .writer_words = 1500,
                    .writer_pause_ms = 500};
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},        {"server", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'},      {"words", required_argument, 0, 'w'},
        {"reps", required_argument, 0, 'r'},         {"decode-tokens", required_argument, 0, 'd'},
        {"writers", required_argument, 0, 'W'},      {"writer-words", required_argument, 0, 'x'},
        {"writer-pause-ms", required_argument, 0, 'p'},
        {"ctx", required_argument, 0, 'c'},          {"skip-ttft", no_argument, 0, 'T'},
        {"skip-decode", no_argument, 0, 'D'},        {"tls", no_argument, 0, 'S'},
        {0, 0, 0, 0}};
    int ch, skip_ttft = 0, skip_decode = 0, tls = 0;
    while ((ch = getopt_long(argc, argv, "m:s:t:c:w:r:d:W:x:p:TDS", longs, NULL)) != -1) {
        switch (ch) {
        case 'm': a.model = optarg; break;
        case 's': a.server = optarg; break;
        case 't': a.threads = optarg; break;
        case 'c': a.ctx = optarg; break;
        case 'w': a.words = atoi(optarg); break;
        case 'r': a.reps = atoi(optarg); break;
        case 'd': a.decode_tokens = atoi(optarg); break;
        case 'W': a.writers = atoi(optarg); break;
        case 'x': a.writer_words = atoi(optarg); break;
        case 'p': a.writer_pause_ms = atoi(optarg); break;
        case 'T': skip_ttft = 1; break;
        case 'D': skip_decode = 1; break;
        case 'S': tls = 1; break;
        default: fprintf(stderr, "usage: see bench/bench_remote.c\n"); return 2;
        }
    }
    tls_files *certs = NULL;
    char conf[2400] = "", tls_url[1200] = "";
    if (tls) {
        char why[1200];
        if (!(certs = tls_files_make(why, sizeof why))) {
            fprintf(stderr, "bench_remote: %s\n", why);
            return 1;
        }
        const char *d = tls_files_dir(certs);
        uint16_t tls_port = server_free_port();
        snprintf(conf, sizeof conf,
                 "tls-port %u\ntls-cert-file %s/server.pem\ntls-key-file %s/server.key\n"
                 "tls-ca-cert-file %s/ca.pem\ntls-auth-clients no\n",
                 (unsigned)tls_port, d, d, d);
        snprintf(tls_url, sizeof tls_url, "rediss://127.0.0.1:%u/0?cacert=%s/ca.pem",
                 (unsigned)tls_port, d);
    }
    redis_proc redis;
    if (redis_start(&redis, NULL, conf) != 0) {
        fprintf(stderr, "bench_remote: %s\n", redis_server_bin() ? "redis-server did not start"
                                                                 : REDIS_MISSING_MSG);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", (unsigned)redis.port);
    if (!skip_ttft)
        bench_ttft(&a, url, tls ? tls_url : NULL);
    if (!skip_decode)
        bench_decode(&a, url);
    redis_stop(&redis);
    tls_files_remove(certs);
    return 0;
}
