/*
 * cmd_session.c - `semantic session run SCENARIO.json --server URL`: runs a
 * multi-agent scenario (docs/sessions.md, *Scenarios*) against a running
 * server and prints the conversation live.
 *
 *   semantic session run SCENARIO.json --server URL [--api-key KEY]
 *                        [--view own|shared] [--json] [--timeout S]
 *
 * The phases run in order. The first creates a session; a phase with the
 * same topology (and moderator) goes on in it, its prompt added as a
 * message; a phase with another topology deletes the session before it
 * (with cleanup) and creates one with the same agents, so agents with an
 * `id` keep the memory they had, if they are persistent or the session
 * was kept. Every turn and round is streamed (session_stream.h).
 *
 * On an error the session is deleted (with cleanup) before the command
 * exits: a failed run leaves no ephemeral agents behind.
 *
 * Threads: one. State: one run_ctx for the run; nothing outside it.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/deadline.h"
#include "base/strbuf.h"
#include "cli.h"
#include "http_fetch.h"
#include "scenario.h"
#include "session_stream.h"

typedef struct run_ctx {
    const char *api_key;
    const char *view; /* --view, else the scenario's; NULL: the server's default */
    char server[1024]; /* --server without trailing '/' */
    int json, timeout_ms;
    const scenario *sc;
    session_stream *stream;
    char session[128];      /* the current session's id; "" before the first */
    const char *topology;   /* the current session's */
    const char *moderator;  /* the current session's, or NULL */
    char next_speaker[160]; /* as the server last said */
} run_ctx;

static void usage(void)
{
    printf("usage: semantic session run SCENARIO.json --server URL [--api-key KEY] [--json]\n"
           "                            [--timeout S]\n"
           "  --server URL   the server, http://HOST:PORT (IPv6: http://[::1]:PORT)\n"
           "  --api-key KEY  sent as a bearer token (default: $SEMANTIC_API_KEY)\n"
           "  --view V       own or shared: how each agent's prompt shows the transcript,\n"
           "                 over the scenario's \"view\" (docs/sessions.md)\n"
           "  --json         one JSON object per turn, then a summary object\n"
           "  --timeout S    the longest wait for the server at each step, in seconds\n"
           "                 (default 300)\n"
           "The scenario format is in docs/sessions.md (Scenarios).\n");
}

/* ---------------------------------------------------------------- HTTP */

static int collect(void *ctx, const char *p, size_t n)
{
    strbuf_append(ctx, p, n);
    return ((strbuf *)ctx)->oom ? -1 : 0;
}

/*
 * A session answers 409 session_busy while a turn or round runs; the
 * server may still hold the session a moment after the stream's last
 * event has arrived. Such an answer is retried, waiting 5 ms, then twice
 * as long each time up to 200 ms, for BUSY_WAIT_MS at most.
 */
#define BUSY_WAIT_MS 10000.0

static int busy_retry(int status, const char *body, double since_ms, int *attempt)
{
    if (status != 409 || !body || !strstr(body, "\"session_busy\"") ||
        deadline_now_ms() - since_ms > BUSY_WAIT_MS)
        return 0;
    int ms = *attempt < 6 ? 5 << *attempt : 200;
    (*attempt)++;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 1;
}

/* The server's error as "STATUS [param]: message"; its sem_status. */
static sem_status http_error(const char *what, int status, const char *body, sem_err *err)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *param = json_string_value(json_object_get(e, "param"));
    sem_status st = status == 404 ? SEM_ENOTFOUND
                  : status == 401 || status == 403 ? SEM_EAUTH
                  : status >= 400 && status < 500 ? SEM_EREQUEST
                                                  : SEM_EIO;
    sem_err_set(err, st, "%s: HTTP %d%s%s%s: %s", what, status, param ? " (" : "",
                param ? param : "", param ? ")" : "",
                msg ? msg : (body && *body ? body : "no message"));
    json_decref(j);
    return st;
}

/* A request with a JSON answer; *out (new reference) when the status is
 * `expect`. */
static sem_status call_json(run_ctx *c, const char *method, const char *path, json_t *body,
                            int expect, json_t **out, sem_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    strbuf got = {0};
    http_fetch_req rq = {.server = c->server, .method = method, .path = path,
                         .api_key = c->api_key, .body = text, .timeout_ms = c->timeout_ms,
                         .sink = collect, .ctx = &got};
    int status = 0, attempt = 0;
    double since = deadline_now_ms();
    sem_status st;
    do {
        strbuf_truncate(&got, 0);
        st = body && !text ? sem_err_set(err, SEM_ENOMEM, "no memory for a request")
                           : http_fetch(&rq, &status, err);
    } while (st == SEM_OK && busy_retry(status, got.data, since, &attempt));
    free(text);
    char what[1400];
    snprintf(what, sizeof what, "%s %s%s", method, c->server, path);
    if (st == SEM_OK && status != expect)
        st = http_error(what, status, got.data, err);
    if (st == SEM_OK && out && !(*out = json_loads(got.data ? got.data : "", 0, NULL)))
        st = sem_err_set(err, SEM_ECORRUPT, "%s: the answer is not JSON", what);
    strbuf_free(&got);
    return st;
}

/* ---------------------------------------------------------------- sessions */

static void remember(run_ctx *c, const json_t *o)
{
    const json_t *next = json_object_get(o, "next_speaker");
    snprintf(c->next_speaker, sizeof c->next_speaker, "%s",
             json_is_string(next) ? json_string_value(next) : "");
}

static sem_status delete_session(run_ctx *c, sem_err *err)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/sessions/%s", c->session);
    sem_status st = call_json(c, "DELETE", path, NULL, 200, NULL, err);
    c->session[0] = '\0';
    return st;
}

static sem_status create_session(run_ctx *c, const scenario_phase *ph, sem_err *err)
{
    json_t *body = json_pack("{s:O,s:s}", "agents", scenario_agents(c->sc), "topology",
                             ph->topology);
    if (!body)
        return sem_err_set(err, SEM_ENOMEM, "no memory for a request");
    if (scenario_model(c->sc))
        json_object_set_new(body, "model", json_string(scenario_model(c->sc)));
    if (c->view)
        json_object_set_new(body, "view", json_string(c->view));
    if (ph->moderator)
        json_object_set_new(body, "moderator", json_string(ph->moderator));
    if (ph->prompt && !ph->whisper[0])
        json_object_set_new(body, "initial_prompt", json_string(ph->prompt));
    json_t *s = NULL;
    sem_status st = call_json(c, "POST", "/v1/sessions", body, 201, &s, err);
    json_decref(body);
    if (st != SEM_OK)
        return st;
    const char *id = json_string_value(json_object_get(s, "id"));
    snprintf(c->session, sizeof c->session, "%s", id ? id : "");
    remember(c, s);
    json_decref(s);
    c->topology = ph->topology;
    c->moderator = ph->moderator;
    if (!*c->session)
        return sem_err_set(err, SEM_ECORRUPT, "POST %s/v1/sessions: no session id", c->server);
    return SEM_OK;
}

/* The phase's prompt as a message: to everyone, or to the whisper pair. */
static sem_status add_message(run_ctx *c, const scenario_phase *ph, sem_err *err)
{
    json_t *body = json_pack("{s:s}", "content", ph->prompt);
    if (body && ph->whisper[0])
        json_object_set_new(body, "channel", json_pack("[s,s]", ph->whisper[0],
                                                       ph->whisper[1]));
    if (!body)
        return sem_err_set(err, SEM_ENOMEM, "no memory for a request");
    char path[200];
    snprintf(path, sizeof path, "/v1/sessions/%s/messages", c->session);
    sem_status st = call_json(c, "POST", path, body, 200, NULL, err);
    json_decref(body);
    return st;
}

static int same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---------------------------------------------------------------- turns */

/* One streamed `turn` or `round` of phase `n` (1-based). */
static sem_status step(run_ctx *c, const scenario_phase *ph, unsigned n, sem_err *err)
{
    json_t *body = json_pack("{s:b}", "stream", 1);
    uint32_t max_tokens = ph->max_tokens ? ph->max_tokens : scenario_max_tokens(c->sc);
    if (body && max_tokens)
        json_object_set_new(body, "max_tokens", json_integer(max_tokens));
    /* A speaker of the whisper pair whispers to the other one. */
    for (int k = 0; body && ph->whisper[0] && k < 2; k++)
        if (strcmp(c->next_speaker, ph->whisper[k]) == 0)
            json_object_set_new(body, "to", json_string(ph->whisper[1 - k]));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return sem_err_set(err, SEM_ENOMEM, "no memory for a request");
    char path[200], what[1400];
    snprintf(path, sizeof path, "/v1/sessions/%s/%s", c->session, ph->by_turns ? "turn" : "round");
    snprintf(what, sizeof what, "POST %s%s", c->server, path);
    http_fetch_req rq = {.server = c->server, .method = "POST", .path = path,
                         .api_key = c->api_key, .body = text, .timeout_ms = c->timeout_ms,
                         .sink = session_stream_feed, .ctx = c->stream};
    int status = 0, attempt = 0;
    double since = deadline_now_ms();
    sem_status st;
    do {
        session_stream_begin(c->stream, n, c->session);
        st = http_fetch(&rq, &status, err);
    } while (st == SEM_OK && busy_retry(status, session_stream_raw(c->stream), since, &attempt));
    free(text);
    if (st != SEM_OK)
        return st;
    if (status != 200)
        return http_error(what, status, session_stream_raw(c->stream), err);
    if (session_stream_error(c->stream))
        return sem_err_set(err, SEM_EIO, "%s: %s", what, session_stream_error(c->stream));
    const json_t *answer = session_stream_answer(c->stream);
    if (!answer)
        return sem_err_set(err, SEM_EIO, "%s: the stream ended without round_end", what);
    remember(c, answer);
    return SEM_OK;
}

static sem_status run_phase(run_ctx *c, size_t i, sem_err *err)
{
    const scenario_phase *ph = scenario_phase_at(c->sc, i);
    int fresh = !*c->session || strcmp(c->topology, ph->topology) != 0 ||
                !same_string(c->moderator, ph->moderator);
    sem_status st = SEM_OK;
    if (fresh && *c->session && scenario_cleanup(c->sc))
        st = delete_session(c, err);
    if (st == SEM_OK && fresh)
        st = create_session(c, ph, err);
    if (st == SEM_OK && ph->prompt && (!fresh || ph->whisper[0]))
        st = add_message(c, ph, err);
    if (st != SEM_OK)
        return st;
    if (!c->json) {
        printf("== phase %zu: %s, %u %s%s%s (session %s)\n", i + 1, ph->topology, ph->count,
               ph->by_turns ? "turn" : "round", ph->count == 1 ? "" : "s",
               fresh ? ", new session" : "", c->session);
        if (ph->prompt)
            printf(">> %s\n", ph->prompt);
        fflush(stdout);
    }
    for (uint32_t k = 0; k < ph->count && st == SEM_OK; k++)
        st = step(c, ph, (unsigned)(i + 1), err);
    return st;
}

static void print_summary(const run_ctx *c, double ms)
{
    session_totals t = session_stream_totals(c->stream);
    if (c->json) {
        printf("{\"object\":\"session.summary\",\"phases\":%zu,\"turns\":%llu,\"picks\":%llu,"
               "\"prompt_tokens\":%llu,\"cached_tokens\":%llu,\"completion_tokens\":%llu,"
               "\"seconds\":%.3f}\n",
               scenario_phase_count(c->sc), (unsigned long long)t.turns,
               (unsigned long long)t.picks, (unsigned long long)t.prompt_tokens,
               (unsigned long long)t.cached_tokens, (unsigned long long)t.completion_tokens,
               ms / 1000.0);
        return;
    }
    printf("== %llu turns", (unsigned long long)t.turns);
    if (t.picks)
        printf(" and %llu picks", (unsigned long long)t.picks);
    printf(" in %zu phases, %.1f s: prompt %llu tokens, cached %llu (%.0f%%), generated %llu\n",
           scenario_phase_count(c->sc), ms / 1000.0, (unsigned long long)t.prompt_tokens,
           (unsigned long long)t.cached_tokens,
           t.prompt_tokens ? 100.0 * (double)t.cached_tokens / (double)t.prompt_tokens : 0.0,
           (unsigned long long)t.completion_tokens);
}

static int run(run_ctx *c)
{
    sem_err err = {0};
    double t0 = deadline_now_ms();
    sem_status st = SEM_OK;
    for (size_t i = 0; i < scenario_phase_count(c->sc) && st == SEM_OK; i++)
        st = run_phase(c, i, &err);
    if (st != SEM_OK) {
        session_stream_end_line(c->stream);
        sem_err ignored = {0};
        if (*c->session && scenario_cleanup(c->sc))
            delete_session(c, &ignored);
        return cli_fail("session run", &err);
    }
    if (*c->session && scenario_cleanup(c->sc) && (st = delete_session(c, &err)) != SEM_OK)
        return cli_fail("session run", &err);
    print_summary(c, deadline_now_ms() - t0);
    return 0;
}

/* ---------------------------------------------------------------- options */

enum { O_SERVER = 256, O_KEY, O_JSON, O_TIMEOUT, O_VIEW };

int cmd_session(int argc, char **argv)
{
    static const struct option opts[] = {{"server", required_argument, 0, O_SERVER},
                                         {"api-key", required_argument, 0, O_KEY},
                                         {"json", no_argument, 0, O_JSON},
                                         {"view", required_argument, 0, O_VIEW},
                                         {"timeout", required_argument, 0, O_TIMEOUT},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2)
        return cli_usage_error("session", "a verb is required: run");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return 0;
    }
    if (strcmp(argv[1], "run") != 0)
        return cli_usage_error("session", "unknown verb '%s': run", argv[1]);
    run_ctx c = {.api_key = getenv("SEMANTIC_API_KEY"), .timeout_ms = 300000};
    uint32_t timeout_s;
    const char *server = NULL, *view = NULL;
    sem_err err = {0};
    int ch;
    optind = 2;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case O_SERVER: server = optarg; break;
        case O_KEY: c.api_key = optarg; break;
        case O_JSON: c.json = 1; break;
        case O_VIEW:
            if (strcmp(optarg, "own") != 0 && strcmp(optarg, "shared") != 0)
                return cli_usage_error("session", "--view is '%s'; expected own or shared",
                                       optarg);
            view = optarg;
            break;
        case O_TIMEOUT:
            if (cli_parse_u32("--timeout", optarg, 1, 86400, &timeout_s, &err) != SEM_OK)
                return cli_usage_fail("session", &err);
            c.timeout_ms = (int)timeout_s * 1000;
            break;
        case 'h': usage(); return 0;
        default: return cli_option_error("session", ch, argc, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("session", "run takes one scenario file, not %d", argc - optind);
    if (!server)
        return cli_usage_error("session", "--server URL is required");
    http_fetch_url u;
    if (http_fetch_parse_url(server, &u, &err) != SEM_OK)
        return cli_usage_fail("session", &err);
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/')
        n--;
    if (n >= sizeof c.server)
        return cli_usage_error("session", "--server: the URL is longer than %zu bytes",
                               sizeof c.server - 1);
    memcpy(c.server, server, n);
    char *text = NULL;
    size_t len;
    scenario *sc = NULL;
    if (cli_read_file(argv[optind], &text, &len, &err) != SEM_OK ||
        scenario_parse(text, argv[optind], &sc, &err) != SEM_OK) {
        free(text);
        return cli_fail("session run", &err);
    }
    free(text);
    c.sc = sc;
    c.view = view ? view : scenario_view(sc);
    int rc;
    if (!(c.stream = session_stream_new(stdout, c.json))) {
        sem_err_set(&err, SEM_ENOMEM, "no memory");
        rc = cli_fail("session run", &err);
    } else {
        session_stream_set_agents(c.stream, scenario_agents(sc));
        rc = run(&c);
    }
    session_stream_free(c.stream);
    scenario_free(sc);
    return rc;
}
