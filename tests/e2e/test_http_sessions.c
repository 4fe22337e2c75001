/*
 * Multi-agent sessions over HTTP (docs/sessions.md), run against a real
 * `semantic serve` on 127.0.0.1 with the tiny stories model (the words do
 * not matter; the structure and the memory do): every topology this
 * release runs, whispers that stay private, the memory each agent keeps
 * from turn to turn, the stream's events, cleanup of ephemeral and
 * persistent agents, a restart in the middle of a session, API key
 * namespaces, and bad input.
 */
#include "e2e_util.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static server_proc srv;   /* open access */
static server_proc keyed; /* two API keys */

#define KEY1 "Authorization: Bearer key-one\r\n"
#define KEY2 "Authorization: Bearer key-two\r\n"
#define LONG_MS 60000

static int start_all(void **state)
{
    (void)state;
    static const char *const open_args[] = {"--pool-mb", "64", "--max-batch", "8", NULL};
    static const char *const key_args[] = {"--pool-mb", "32", "--api-key", "key-one",
                                           "--api-key", "key-two", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    if (server_start(&srv, SEMANTIC_BIN, STORIES, open_args, env, 1) != 0 ||
        server_start(&keyed, SEMANTIC_BIN, STORIES, key_args, env, 1) != 0)
        return -1;
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    int bad = server_stop(&srv, SIGTERM, 20000) != 0;
    bad |= server_stop(&keyed, SIGTERM, 20000) != 0;
    server_discard_log(&srv);
    server_discard_log(&keyed);
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- helpers */

static http_response call(uint16_t port, const char *method, const char *path,
                          const char *headers, const char *body)
{
    http_response r;
    if (hc_call_within(port, method, path, headers, body, LONG_MS, &r) != 0)
        fail_msg("%s %s: no response (status %d)", method, path, r.status);
    return r;
}

/* A call that must answer `status`; its JSON (new reference). */
static json_t *expect(uint16_t port, const char *method, const char *path, const char *headers,
                      const char *body, int status)
{
    http_response r = call(port, method, path, headers, body);
    if (r.status != status)
        fail_msg("%s %s: expected %d, got %d: %s", method, path, status, r.status, r.body);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    return j;
}

/* POST /v1/sessions (201); the session object. */
static json_t *create(uint16_t port, const char *headers, const char *body)
{
    return expect(port, "POST", "/v1/sessions", headers, body, 201);
}

static const char *id_of(const json_t *o) { return json_string_value(json_object_get(o, "id")); }

static json_int_t geti(const json_t *o, const char *field)
{
    const json_t *v = json_object_get(o, field);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", field);
    return json_integer_value(v);
}

/* POST /v1/sessions/{id}/{what} with body (200); the answer. */
static json_t *act(uint16_t port, const char *headers, const char *id, const char *what,
                   const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/%s", id, what);
    return expect(port, "POST", path, headers, body, 200);
}

/* A turn's usage figure. */
static json_int_t usage_of(const json_t *turn, const char *field)
{
    return geti(json_object_get(turn, "usage"), field);
}

static const json_t *turn_at(const json_t *answer, size_t i)
{
    const json_t *t = json_array_get(json_object_get(answer, "turns"), i);
    if (!t)
        fail_msg("no turn %zu in the answer", i);
    return t;
}

static const char *agent_of(const json_t *turn)
{
    return json_string_value(json_object_get(turn, "agent"));
}

/* GET /v1/sessions/{id}/view?agent= : the agent's messages as compact
 * JSON text (malloc'd) and its prompt tokens. */
static char *view(uint16_t port, const char *id, const char *agent, json_int_t *tokens)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/view?agent=%s", id, agent);
    json_t *v = expect(port, "GET", path, NULL, NULL, 200);
    *tokens = geti(v, "prompt_tokens");
    char *s = json_dumps(json_object_get(v, "messages"), JSON_COMPACT);
    json_decref(v);
    return s;
}

#define TURN "{\"max_tokens\":8,\"temperature\":0}"
#define THREE                                                                                  \
    "[{\"id\":\"%s-a\",\"name\":\"Ann\",\"system\":\"You are Ann.\"},"                           \
    "{\"id\":\"%s-b\",\"name\":\"Ben\"},{\"id\":\"%s-c\",\"name\":\"Cid\"}]"

/* A session of three agents PREFIX-a, -b, -c with a topology. */
static json_t *three(uint16_t port, const char *prefix, const char *topology, int max_turns)
{
    char agents[512], body[1024];
    snprintf(agents, sizeof agents, THREE, prefix, prefix, prefix);
    snprintf(body, sizeof body,
             "{\"agents\":%s,\"topology\":\"%s\",\"initial_prompt\":\"Once upon a time\","
             "\"max_turns\":%d}",
             agents, topology, max_turns);
    return create(port, NULL, body);
}

/* ---------------------------------------------------------------- topologies */

/* Round robin: one speaker after the other, each seeing the turns
 * before it; the next speaker goes around; a second turn of an agent
 * reuses its memory. */
static void round_robin_turns_and_rounds(void **state)
{
    (void)state;
    json_t *s = three(srv.port, "rr", "round_robin", 0);
    assert_string_equal(json_string_value(json_object_get(s, "next_speaker")), "rr-a");
    assert_int_equal(json_array_size(json_object_get(s, "transcript")), 1);
    json_t *t = act(srv.port, NULL, id_of(s), "turn", TURN);
    assert_string_equal(agent_of(turn_at(t, 0)), "rr-a");
    assert_int_equal(usage_of(turn_at(t, 0), "cached_tokens"), 0);
    json_int_t a_prompt = usage_of(turn_at(t, 0), "prompt_tokens");
    assert_string_equal(json_string_value(json_object_get(t, "next_speaker")), "rr-b");
    json_decref(t);

    json_t *r = act(srv.port, NULL, id_of(s), "round", TURN);
    assert_int_equal(json_array_size(json_object_get(r, "turns")), 3);
    assert_string_equal(agent_of(turn_at(r, 0)), "rr-b");
    assert_string_equal(agent_of(turn_at(r, 1)), "rr-c");
    assert_string_equal(agent_of(turn_at(r, 2)), "rr-a");
    /* Cid read Ben's turn of this round: his prompt is longer than Ben's. */
    assert_true(usage_of(turn_at(r, 1), "prompt_tokens") >
                usage_of(turn_at(r, 0), "prompt_tokens"));
    /* Ann's second turn: everything she held is reused, only the new
     * turns are computed. */
    const json_t *a2 = turn_at(r, 2);
    assert_true(usage_of(a2, "cached_tokens") >= a_prompt);
    assert_true(usage_of(a2, "cached_tokens") < usage_of(a2, "prompt_tokens"));
    assert_int_equal(geti(r, "session_turns"), 4);
    json_decref(r);

    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(s));
    json_t *g = expect(srv.port, "GET", path, NULL, NULL, 200);
    assert_int_equal(geti(g, "turns"), 4);
    assert_int_equal(json_array_size(json_object_get(g, "transcript")), 5);
    const json_t *agents = json_object_get(g, "agents");
    assert_int_equal(geti(json_array_get(agents, 0), "turns"), 2);
    assert_int_equal(geti(json_array_get(agents, 1), "turns"), 1);
    /* Ann's figures add up her two turns: only the second reused memory. */
    assert_true(geti(json_array_get(agents, 0), "cached_tokens") >= a_prompt);
    assert_int_equal(geti(json_array_get(agents, 1), "cached_tokens"), 0);
    const json_t *first = json_array_get(json_object_get(g, "transcript"), 1);
    assert_int_equal(geti(first, "prompt_tokens"), a_prompt);
    assert_int_equal(geti(first, "cached_tokens"), 0);
    json_decref(g);
    json_decref(s);
}

/* Broadcast: a round's speakers all answer the same transcript, submitted
 * together; none reads another's answer of the same round. */
static void broadcast_round_answers_one_transcript(void **state)
{
    (void)state;
    json_t *s = create(srv.port, NULL,
                       "{\"agents\":[{\"id\":\"bc-a\",\"name\":\"Ann\"},{\"id\":\"bc-b\","
                       "\"name\":\"Ben\"},{\"id\":\"bc-c\",\"name\":\"Cid\"},{\"id\":\"bc-d\","
                       "\"name\":\"Dan\"}],\"topology\":\"broadcast\","
                       "\"initial_prompt\":\"Once upon a time\"}");
    json_t *r = act(srv.port, NULL, id_of(s), "round", TURN);
    assert_int_equal(json_array_size(json_object_get(r, "turns")), 4);
    json_int_t p0 = usage_of(turn_at(r, 0), "prompt_tokens");
    for (size_t i = 1; i < 4; i++)
        assert_int_equal(usage_of(turn_at(r, i), "prompt_tokens"), p0);
    json_decref(r);
    /* The second round: each reads the other three's answers, and
     * reuses its own first turn. */
    r = act(srv.port, NULL, id_of(s), "round", TURN);
    for (size_t i = 0; i < 4; i++) {
        assert_true(usage_of(turn_at(r, i), "prompt_tokens") > p0);
        assert_true(usage_of(turn_at(r, i), "cached_tokens") >= p0);
    }
    assert_int_equal(geti(r, "session_turns"), 8);
    json_decref(r);
    json_decref(s);
}

/* Whisper: a turn given "to" goes to that agent only; a message injected
 * on a private channel too. The third agent's prompt never holds them. */
static void whispers_stay_private(void **state)
{
    (void)state;
    json_t *s = three(srv.port, "wh", "whisper", 0);
    const char *id = id_of(s);
    json_int_t c_before, c_after, b_before, b_after;
    free(view(srv.port, id, "wh-c", &c_before));
    free(view(srv.port, id, "wh-b", &b_before));
    json_t *t = act(srv.port, NULL, id, "turn",
                    "{\"max_tokens\":8,\"temperature\":0,\"to\":\"wh-b\"}");
    const json_t *ch = json_object_get(turn_at(t, 0), "channel");
    assert_string_equal(json_string_value(json_array_get(ch, 0)), "wh-a");
    assert_string_equal(json_string_value(json_array_get(ch, 1)), "wh-b");
    json_decref(t);
    json_t *m = act(srv.port, NULL, id, "messages",
                    "{\"content\":\"ZEBRA-SECRET\",\"name\":\"Ops\","
                    "\"channel\":[\"wh-a\",\"wh-b\"]}");
    json_decref(m);
    char *vc = view(srv.port, id, "wh-c", &c_after);
    char *vb = view(srv.port, id, "wh-b", &b_after);
    assert_null(strstr(vc, "ZEBRA-SECRET"));
    assert_null(strstr(vc, "Ann:"));
    assert_int_equal(c_after, c_before); /* nothing reached Cid */
    assert_non_null(strstr(vb, "Ops: ZEBRA-SECRET"));
    assert_non_null(strstr(vb, "Ann:"));
    assert_true(b_after > b_before);
    free(vc);
    free(vb);
    /* A whisper goes to another agent. */
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/turn", id);
    http_response self = call(srv.port, "POST", path, NULL, "{\"to\":\"wh-b\"}");
    e2e_assert_openai_error(&self, 400, "to");
    hc_free(&self);
    /* Ben's turn reads the whisper; Cid's prompt is what his view says. */
    t = act(srv.port, NULL, id, "turn", TURN);
    assert_string_equal(agent_of(turn_at(t, 0)), "wh-b");
    assert_int_equal(usage_of(turn_at(t, 0), "prompt_tokens"), b_after);
    json_decref(t);
    free(view(srv.port, id, "wh-c", &c_after));
    t = act(srv.port, NULL, id, "turn", TURN);
    assert_string_equal(agent_of(turn_at(t, 0)), "wh-c");
    assert_int_equal(usage_of(turn_at(t, 0), "prompt_tokens"), c_after);
    json_decref(t);
    json_decref(s);
}

/* Moderated: before each turn the moderator picks the speaker through a
 * forced tool call whose only allowed arguments are the speakers' ids;
 * the picks are notes only the moderator reads. */
static void a_moderator_picks_valid_speakers(void **state)
{
    (void)state;
    json_t *s = create(srv.port, NULL,
                       "{\"agents\":[{\"id\":\"md-x\",\"name\":\"X\"},{\"id\":\"md-m\","
                       "\"name\":\"Mod\",\"system\":\"You pick who speaks.\"},{\"id\":\"md-y\","
                       "\"name\":\"Y\"},{\"id\":\"md-z\",\"name\":\"Z\"}],"
                       "\"topology\":\"moderated\",\"moderator\":\"md-m\","
                       "\"initial_prompt\":\"Once upon a time\",\"max_turns\":5}");
    assert_string_equal(json_string_value(json_object_get(s, "next_speaker")), "md-m");
    json_int_t first_pick_prompt = 0;
    for (int round = 0; round < 2; round++) {
        json_t *r = act(srv.port, NULL, id_of(s), "round",
                        "{\"max_tokens\":6,\"temperature\":1,\"seed\":3}");
        size_t n = json_array_size(json_object_get(r, "turns"));
        assert_int_equal(n, round == 0 ? 6 : 4); /* 3 turns, then the 2 max_turns leaves */
        for (size_t i = 0; i < n; i += 2) {
            const json_t *pick = turn_at(r, i), *turn = turn_at(r, i + 1);
            assert_string_equal(json_string_value(json_object_get(pick, "kind")), "pick");
            assert_string_equal(agent_of(pick), "md-m");
            const char *picked = json_string_value(json_object_get(pick, "picked"));
            assert_non_null(picked);
            assert_true(strcmp(picked, "md-x") == 0 || strcmp(picked, "md-y") == 0 ||
                        strcmp(picked, "md-z") == 0);
            assert_string_equal(json_string_value(json_object_get(turn, "kind")), "turn");
            assert_string_equal(agent_of(turn), picked);
            if (round == 0 && i == 0)
                first_pick_prompt = usage_of(pick, "prompt_tokens");
            if (round == 1 && i == 0) /* the moderator's memory holds its earlier picks */
                assert_true(usage_of(pick, "cached_tokens") >= first_pick_prompt);
        }
        assert_int_equal(geti(r, "session_turns"), round == 0 ? 3 : 5);
        json_decref(r);
    }
    json_int_t tokens;
    char *vm = view(srv.port, id_of(s), "md-m", &tokens);
    assert_non_null(strstr(vm, "next_speaker"));
    free(vm);
    const char *speakers[] = {"md-x", "md-y", "md-z"};
    for (size_t i = 0; i < 3; i++) {
        char *v = view(srv.port, id_of(s), speakers[i], &tokens);
        assert_null(strstr(v, "next_speaker"));
        free(v);
    }
    json_decref(s);
}

/* max_turns ends the session, mid-round if need be. */
static void max_turns_ends_the_session(void **state)
{
    (void)state;
    json_t *s = three(srv.port, "mt", "round_robin", 2);
    json_t *r = act(srv.port, NULL, id_of(s), "round", TURN);
    assert_int_equal(json_array_size(json_object_get(r, "turns")), 2);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "done");
    assert_true(json_is_null(json_object_get(r, "next_speaker")));
    json_decref(r);
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/turn", id_of(s));
    http_response x = call(srv.port, "POST", path, NULL, TURN);
    e2e_assert_openai_error(&x, 409, "session_id");
    assert_non_null(strstr(x.body, "session_done"));
    hc_free(&x);
    json_decref(s);
}

/* ---------------------------------------------------------------- the stream */

static void a_streamed_round_sends_its_events(void **state)
{
    (void)state;
    json_t *s = three(srv.port, "st", "round_robin", 0);
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/round", id_of(s));
    http_response r = call(srv.port, "POST", path, NULL,
                           "{\"max_tokens\":6,\"temperature\":0,\"stream\":true}");
    assert_int_equal(r.status, 200);
    hc_event ev[256];
    size_t n = hc_sse_parse(r.body, ev, 256);
    assert_true(n >= 7);
    const char *expect_agent[] = {"st-a", "st-b", "st-c"};
    size_t starts = 0, ends = 0, deltas = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_loads(ev[i].data, 0, NULL);
        assert_non_null(d);
        if (strcmp(ev[i].event, "turn_start") == 0) {
            assert_int_equal(starts, ends); /* one speaker at a time */
            assert_string_equal(agent_of(d), expect_agent[starts]);
            starts++;
        } else if (strcmp(ev[i].event, "delta") == 0) {
            assert_string_equal(agent_of(d), expect_agent[starts - 1]);
            deltas++;
        } else if (strcmp(ev[i].event, "turn_end") == 0) {
            assert_string_equal(agent_of(d), expect_agent[ends]);
            assert_true(json_is_integer(json_object_get(d, "cached_tokens")));
            assert_true(geti(json_object_get(d, "usage"), "completion_tokens") > 0);
            ends++;
        } else {
            assert_string_equal(ev[i].event, "round_end");
            assert_int_equal(i, n - 1);
            assert_int_equal(json_array_size(json_object_get(d, "turns")), 3);
        }
        json_decref(d);
    }
    assert_int_equal(starts, 3);
    assert_int_equal(ends, 3);
    assert_true(deltas >= 3);
    hc_sse_free(ev, n);
    hc_free(&r);
    json_decref(s);
}

/* ---------------------------------------------------------------- cleanup, restart */

static int agent_status(uint16_t port, const char *headers, const char *agent)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/agents/%s", agent);
    http_response r = call(port, "GET", path, headers, NULL);
    int st = r.status;
    hc_free(&r);
    return st;
}

static void delete_removes_ephemeral_agents_and_keeps_persistent(void **state)
{
    (void)state;
    json_t *s = create(srv.port, NULL,
                       "{\"agents\":[{\"id\":\"del-eph\",\"name\":\"E\"},{\"id\":\"del-per\","
                       "\"name\":\"P\",\"lifecycle\":\"persistent\"}],"
                       "\"initial_prompt\":\"Once upon a time\"}");
    json_decref(act(srv.port, NULL, id_of(s), "round", TURN));
    assert_int_equal(agent_status(srv.port, NULL, "del-eph"), 200);
    assert_int_equal(agent_status(srv.port, NULL, "del-per"), 200);
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(s));
    json_t *d = expect(srv.port, "DELETE", path, NULL, NULL, 200);
    assert_true(json_is_true(json_object_get(d, "deleted")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "agents_deleted"), 0)),
                        "del-eph");
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "agents_kept"), 0)),
                        "del-per");
    json_decref(d);
    assert_int_equal(agent_status(srv.port, NULL, "del-eph"), 404);
    assert_int_equal(agent_status(srv.port, NULL, "del-per"), 200);
    http_response r = call(srv.port, "GET", path, NULL, NULL);
    e2e_assert_openai_error(&r, 404, "session_id");
    hc_free(&r);
    r = call(srv.port, "DELETE", path, NULL, NULL);
    e2e_assert_openai_error(&r, 404, "session_id");
    hc_free(&r);
    json_decref(s);
}

/* A server stopped mid-session and started again on its cache folder
 * finds the session, its transcript, and its agents' memory. */
static void a_session_survives_a_restart(void **state)
{
    (void)state;
    server_proc s;
    const char *const args[] = {"--pool-mb", "32", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    json_t *sess = three(s.port, "rs", "round_robin", 0);
    json_t *r = act(s.port, NULL, id_of(sess), "round", TURN);
    json_int_t a_prompt = usage_of(turn_at(r, 0), "prompt_tokens");
    json_decref(r);
    char dir[512], path[256];
    snprintf(dir, sizeof dir, "%s", s.cache_dir);
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(sess));
    assert_int_equal(server_stop_keep(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);

    const char *const again[] = {"--pool-mb", "32", "--cache-dir", dir, NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, again, env, 1), 0);
    json_t *g = expect(s.port, "GET", path, NULL, NULL, 200);
    assert_int_equal(geti(g, "turns"), 3);
    assert_int_equal(json_array_size(json_object_get(g, "transcript")), 4);
    assert_string_equal(json_string_value(json_object_get(g, "next_speaker")), "rs-a");
    json_decref(g);
    r = act(s.port, NULL, id_of(sess), "turn", TURN);
    assert_string_equal(agent_of(turn_at(r, 0)), "rs-a");
    assert_true(usage_of(turn_at(r, 0), "cached_tokens") >= a_prompt); /* from disk */
    json_decref(r);
    json_decref(sess);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

/* ---------------------------------------------------------------- one at a time */

/* Sends a streamed round on a fresh connection and reads until its first
 * delta: the round is then running. Returns the connection. */
static int start_streamed_round(uint16_t port, const char *id)
{
    char req[1024];
    const char *body = "{\"max_tokens\":400,\"temperature\":1,\"seed\":7,\"stream\":true}";
    int n = snprintf(req, sizeof req,
                     "POST /v1/sessions/%s/round HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     id, strlen(body), body);
    int fd = hc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char buf[8192];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, LONG_MS) != 1)
            fail_msg("no event of the streamed round");
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            fail_msg("the streamed round ended early: %.*s", (int)got, buf);
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "event: delta"))
            return fd;
    }
    fail_msg("no delta in the first 8 KiB of the stream");
    return -1;
}

/* A second turn, or a delete, while a round runs is 409; a client that
 * leaves mid-round frees the session, and the transcript holds whole
 * turns only. */
static void one_turn_at_a_time(void **state)
{
    (void)state;
    json_t *s = three(srv.port, "busy", "round_robin", 0);
    char turn_path[256], path[256];
    snprintf(turn_path, sizeof turn_path, "/v1/sessions/%s/turn", id_of(s));
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(s));
    int fd = start_streamed_round(srv.port, id_of(s));
    http_response r = call(srv.port, "POST", turn_path, NULL, TURN);
    e2e_assert_openai_error(&r, 409, "session_id");
    assert_non_null(strstr(r.body, "session_busy"));
    hc_free(&r);
    r = call(srv.port, "DELETE", path, NULL, NULL);
    e2e_assert_openai_error(&r, 409, "session_id");
    hc_free(&r);
    close(fd);
    /* The round is cancelled with its connection (or ends first); either
     * way the session takes turns again. */
    double until = hc_now_ms() + LONG_MS;
    do {
        r = call(srv.port, "POST", turn_path, NULL, TURN);
        if (r.status == 200)
            break;
        e2e_assert_openai_error(&r, 409, "session_id");
        hc_free(&r);
        usleep(5000);
    } while (hc_now_ms() < until);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    json_t *g = expect(srv.port, "GET", path, NULL, NULL, 200);
    const json_t *t = json_object_get(g, "transcript");
    assert_int_equal(json_array_size(t), (size_t)geti(g, "turns") + 1);
    json_decref(g);
    json_decref(s);
}

/* ---------------------------------------------------------------- concurrent sessions */

#define CONC_SESSIONS 4
#define CONC_ROUNDS 10

typedef struct conc_client {
    pthread_t thread;
    uint16_t port;
    int index;
    char id[96];
    int rounds_ok;     /* rounds answered 200 with 4 turns */
    char error[512];   /* the first failure, "" when none */
} conc_client;

static void *conc_main(void *arg)
{
    conc_client *c = arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"agents\":[{\"id\":\"cc%d-a\",\"name\":\"Ann\"},{\"id\":\"cc%d-b\","
             "\"name\":\"Ben\"},{\"id\":\"cc%d-c\",\"name\":\"Cid\"},{\"id\":\"cc%d-d\","
             "\"name\":\"Dan\"}],\"topology\":\"%s\",\"view\":\"%s\","
             "\"initial_prompt\":\"Once upon a time\"}",
             c->index, c->index, c->index, c->index, c->index % 2 ? "broadcast" : "round_robin",
             c->index / 2 % 2 ? "shared" : "own");
    http_response r;
    if (hc_call_within(c->port, "POST", "/v1/sessions", NULL, body, LONG_MS, &r) != 0 ||
        r.status != 201) {
        snprintf(c->error, sizeof c->error, "create: %d %.400s", r.status, r.body ? r.body : "");
        hc_free(&r);
        return NULL;
    }
    json_t *j = json_loads(r.body, 0, NULL);
    snprintf(c->id, sizeof c->id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    hc_free(&r);
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/round", c->id);
    for (int k = 0; k < CONC_ROUNDS; k++) {
        int ok = hc_call_within(c->port, "POST", path, NULL,
                                "{\"max_tokens\":4,\"temperature\":0}", LONG_MS, &r) == 0 &&
                 r.status == 200;
        j = ok ? json_loads(r.body, 0, NULL) : NULL;
        ok = ok && json_array_size(json_object_get(j, "turns")) == 4;
        json_decref(j);
        if (!ok) {
            snprintf(c->error, sizeof c->error, "round %d: %d %.400s", k, r.status,
                     r.body ? r.body : "");
            hc_free(&r);
            return NULL;
        }
        c->rounds_ok++;
        hc_free(&r);
    }
    return NULL;
}

/* Four sessions of four agents, ten rounds each at once (broadcast and
 * round robin, each in both views: shared agents take blocks from running
 * ones), on a pool that holds a few agents at a time: no round is refused
 * or loses a turn, and once the sessions are deleted the pool is empty
 * again. */
static void concurrent_sessions_under_pool_pressure(void **state)
{
    (void)state;
    server_proc s;
    const char *const args[] = {"--pool-mb", "2", "--max-batch", "4", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    conc_client c[CONC_SESSIONS];
    memset(c, 0, sizeof c);
    for (int i = 0; i < CONC_SESSIONS; i++) {
        c[i].port = s.port;
        c[i].index = i;
        assert_int_equal(pthread_create(&c[i].thread, NULL, conc_main, &c[i]), 0);
    }
    for (int i = 0; i < CONC_SESSIONS; i++)
        pthread_join(c[i].thread, NULL);
    for (int i = 0; i < CONC_SESSIONS; i++) {
        if (c[i].error[0])
            fail_msg("session %d: %s", i, c[i].error);
        assert_int_equal(c[i].rounds_ok, CONC_ROUNDS);
        char path[256];
        snprintf(path, sizeof path, "/v1/sessions/%s", c[i].id);
        json_t *g = expect(s.port, "GET", path, NULL, NULL, 200);
        assert_int_equal(geti(g, "turns"), 4 * CONC_ROUNDS);
        assert_int_equal(json_array_size(json_object_get(g, "transcript")), 4 * CONC_ROUNDS + 1);
        json_decref(g);
    }
    /* The pool was too small for every agent at once: some were evicted
     * to disk and read back for their next turn. */
    assert_true(e2e_metric(s.port, "semantic_evictions_total") > 0);
    assert_true(e2e_metric(s.port, "semantic_cache_hits_total{tier=\"warm\"}") > 0);
    for (int i = 0; i < CONC_SESSIONS; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/sessions/%s", c[i].id);
        json_decref(expect(s.port, "DELETE", path, NULL, NULL, 200));
    }
    double until = hc_now_ms() + LONG_MS;
    while (e2e_metric(s.port, "semantic_agent_io_in_flight") != 0 && hc_now_ms() < until)
        usleep(10000);
    assert_true(e2e_metric(s.port, "semantic_agent_io_in_flight") == 0);
    assert_true(e2e_metric(s.port, "semantic_pool_blocks_used") == 0);
    json_t *agents = expect(s.port, "GET", "/v1/agents", NULL, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(agents, "data")), 0);
    json_decref(agents);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

/* Tokens a round computed: its turns' prompt tokens less their cached. */
static json_int_t round_prefill(const json_t *r)
{
    json_int_t sum = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(r, "turns")); i++)
        sum += usage_of(turn_at(r, i), "prompt_tokens") - usage_of(turn_at(r, i), "cached_tokens");
    return sum;
}

#define STORY                                                                                  \
    "Once upon a time there was a little girl named Lily. She liked to play in the park "      \
    "with her dog. One day the dog ran after a red ball and Lily ran after the dog. They "     \
    "played all day in the sun and when it was time to go home they were happy and tired."

/* The same broadcast session in the two layouts, two rounds each. Shared,
 * the transcript is computed once per round and its blocks are held by
 * every agent together; own, each agent computes it. The words do not
 * matter: the counts do. */
static void a_shared_transcript_is_computed_once(void **state)
{
    (void)state;
    server_proc s;
    const char *const args[] = {"--pool-mb", "64", "--max-batch", "8", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    static const char *const layouts[] = {"own", "shared"};
    json_int_t prefill[2][2], prompt[2];
    for (int l = 0; l < 2; l++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "{\"agents\":[{\"id\":\"%s-a\",\"name\":\"Ann\",\"system\":\"You are Ann.\"},"
                 "{\"id\":\"%s-b\",\"name\":\"Ben\",\"system\":\"You are Ben.\"},"
                 "{\"id\":\"%s-c\",\"name\":\"Cid\",\"system\":\"You are Cid.\"},"
                 "{\"id\":\"%s-d\",\"name\":\"Dan\",\"system\":\"You are Dan.\"}],"
                 "\"topology\":\"broadcast\",\"view\":\"%s\",\"initial_prompt\":\"" STORY "\"}",
                 layouts[l], layouts[l], layouts[l], layouts[l], layouts[l]);
        json_t *sess = create(s.port, NULL, body);
        assert_string_equal(json_string_value(json_object_get(sess, "view")), layouts[l]);
        for (int round = 0; round < 2; round++) {
            json_t *r = act(s.port, NULL, id_of(sess), "round", TURN);
            assert_int_equal(json_array_size(json_object_get(r, "turns")), 4);
            prefill[l][round] = round_prefill(r);
            if (round == 0)
                prompt[l] = usage_of(turn_at(r, 0), "prompt_tokens");
            json_decref(r);
        }
        json_decref(sess);
    }
    /* Own: each of the four computes its whole first prompt (they differ
     * from their system prompts on). */
    assert_true(prefill[0][0] >= 4 * (prompt[0] - 1));
    /* Shared: one computes the story, the others only what follows it. */
    assert_true(prefill[1][0] < 2 * prompt[1]);
    assert_true(prefill[1][0] < prefill[0][0]);
    assert_true(prefill[1][1] < prefill[0][1]);
    /* The agents of the shared session hold the story's blocks together. */
    assert_true(e2e_metric(s.port, "semantic_pool_blocks_shared") > 0);
    json_t *agents = expect(s.port, "GET", "/v1/agents", NULL, NULL, 200);
    const json_t *list = json_object_get(agents, "data");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *a = json_array_get(list, i);
        const char *id = json_string_value(json_object_get(a, "id"));
        if (strncmp(id, "shared-", 7) == 0)
            assert_true(geti(a, "shared_tokens") >= prompt[1] / 2);
    }
    json_decref(agents);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

/* A server killed in the middle of a round: after a restart the session
 * has whole turns only, and takes turns again (the running mark of the
 * dead process is gone). */
static void a_round_killed_midway_leaves_whole_turns(void **state)
{
    (void)state;
    server_proc s;
    const char *const args[] = {"--pool-mb", "32", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, args, env, 1), 0);
    json_t *sess = three(s.port, "kill", "round_robin", 0);
    int fd = start_streamed_round(s.port, id_of(sess));
    char dir[512], path[256];
    snprintf(dir, sizeof dir, "%s", s.cache_dir);
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(sess));
    assert_int_equal(server_stop_keep(&s, SIGKILL, 20000), 128 + SIGKILL);
    close(fd);
    server_discard_log(&s);

    const char *const again[] = {"--pool-mb", "32", "--cache-dir", dir, NULL};
    assert_int_equal(server_start(&s, SEMANTIC_BIN, STORIES, again, env, 1), 0);
    json_t *g = expect(s.port, "GET", path, NULL, NULL, 200);
    json_int_t turns = geti(g, "turns");
    assert_true(turns < 3);
    assert_int_equal(json_array_size(json_object_get(g, "transcript")), (size_t)turns + 1);
    json_decref(g);
    json_t *r = act(s.port, NULL, id_of(sess), "turn", TURN);
    assert_int_equal(geti(r, "session_turns"), turns + 1);
    json_decref(r);
    json_decref(sess);
    assert_int_equal(server_stop(&s, SIGTERM, 20000), 0);
    server_discard_log(&s);
}

/* ---------------------------------------------------------------- keys, bad input */

static void another_keys_session_is_not_found(void **state)
{
    (void)state;
    json_t *s = create(keyed.port, KEY1,
                       "{\"agents\":[{\"id\":\"k-a\",\"name\":\"A\"}],"
                       "\"initial_prompt\":\"Once upon a time\"}");
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(s));
    json_decref(expect(keyed.port, "GET", path, KEY1, NULL, 200));
    http_response r = call(keyed.port, "GET", path, KEY2, NULL);
    e2e_assert_openai_error(&r, 404, "session_id");
    hc_free(&r);
    snprintf(path, sizeof path, "/v1/sessions/%s/turn", id_of(s));
    r = call(keyed.port, "POST", path, KEY2, TURN);
    e2e_assert_openai_error(&r, 404, "session_id");
    hc_free(&r);
    json_t *l = expect(keyed.port, "GET", "/v1/sessions", KEY2, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 0);
    json_decref(l);
    l = expect(keyed.port, "GET", "/v1/sessions", KEY1, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 1);
    json_decref(l);
    /* The agent speaks in the caller's namespace only. */
    json_decref(act(keyed.port, KEY1, id_of(s), "turn", TURN));
    assert_int_equal(agent_status(keyed.port, KEY1, "k-a"), 200);
    assert_int_equal(agent_status(keyed.port, KEY2, "k-a"), 404);
    r = call(keyed.port, "GET", "/v1/sessions", NULL, NULL);
    assert_int_equal(r.status, 401);
    hc_free(&r);
    json_decref(s);
}

static void bad_input_is_a_400_naming_its_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *param;
    } bad[] = {
        {"{}", "agents"},
        {"{\"agents\":[]}", "agents"},
        {"{\"agents\":[{}]}", "agents[0].name"},
        {"{\"agents\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "agents[1].name"},
        {"{\"agents\":[{\"name\":\"a\",\"id\":\"x\"},{\"name\":\"b\",\"id\":\"x\"}]}",
         "agents[1].id"},
        {"{\"agents\":[{\"name\":\"a\",\"id\":\"a/b\"}]}", "agents[0].id"},
        {"{\"agents\":[{\"name\":\"a\",\"lifecycle\":\"x\"}]}", "agents[0].lifecycle"},
        {"{\"agents\":[{\"name\":\"a\"}],\"topology\":\"star\"}", "topology"},
        {"{\"agents\":[{\"name\":\"a\"}],\"topology\":\"moderated\"}", "agents"},
        {"{\"agents\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"topology\":\"moderated\","
         "\"moderator\":\"c\"}",
         "moderator"},
        {"{\"agents\":[{\"name\":\"a\"}],\"max_turns\":\"many\"}", "max_turns"},
        {"[1]", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_response r = call(srv.port, "POST", "/v1/sessions", NULL, bad[i].body);
        e2e_assert_openai_error(&r, 400, bad[i].param);
        hc_free(&r);
    }
    json_t *s = three(srv.port, "bad", "round_robin", 0);
    char path[256];
    static const struct {
        const char *what, *body, *param;
    } turn_bad[] = {
        {"turn", "{\"to\":\"bad-b\"}", "to"},         /* not a whisper session */
        {"turn", "{\"max_tokens\":0}", "max_tokens"},
        {"turn", "{\"temperature\":9}", "temperature"},
        {"turn", "not json", NULL},
        {"messages", "{}", "content"},
        {"messages", "{\"content\":\"x\",\"channel\":[\"bad-a\",\"nobody\"]}", "channel"},
    };
    for (size_t i = 0; i < sizeof turn_bad / sizeof turn_bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/sessions/%s/%s", id_of(s), turn_bad[i].what);
        http_response r = call(srv.port, "POST", path, NULL, turn_bad[i].body);
        e2e_assert_openai_error(&r, 400, turn_bad[i].param);
        hc_free(&r);
    }
    snprintf(path, sizeof path, "/v1/sessions/%s/view?agent=nobody", id_of(s));
    http_response r = call(srv.port, "GET", path, NULL, NULL);
    e2e_assert_openai_error(&r, 400, "agent");
    hc_free(&r);
    r = call(srv.port, "POST", "/v1/sessions/sess_nope/round", NULL, TURN);
    e2e_assert_openai_error(&r, 404, "session_id");
    hc_free(&r);
    /* A session with nothing to answer yet says how to start it. */
    json_t *empty = create(srv.port, NULL, "{\"agents\":[{\"id\":\"mute\",\"name\":\"M\"}]}");
    snprintf(path, sizeof path, "/v1/sessions/%s/turn", id_of(empty));
    r = call(srv.port, "POST", path, NULL, TURN);
    e2e_assert_openai_error(&r, 400, "initial_prompt");
    hc_free(&r);
    /* A failed turn left the session free for the next. */
    json_decref(act(srv.port, NULL, id_of(empty), "messages", "{\"content\":\"Go\"}"));
    json_decref(act(srv.port, NULL, id_of(empty), "turn", TURN));
    json_decref(empty);
    /* None of this moved the good session. */
    snprintf(path, sizeof path, "/v1/sessions/%s", id_of(s));
    json_t *g = expect(srv.port, "GET", path, NULL, NULL, 200);
    assert_int_equal(geti(g, "turns"), 0);
    assert_int_equal(json_array_size(json_object_get(g, "transcript")), 1);
    json_decref(g);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_robin_turns_and_rounds),
        cmocka_unit_test(broadcast_round_answers_one_transcript),
        cmocka_unit_test(whispers_stay_private),
        cmocka_unit_test(a_moderator_picks_valid_speakers),
        cmocka_unit_test(max_turns_ends_the_session),
        cmocka_unit_test(a_streamed_round_sends_its_events),
        cmocka_unit_test(delete_removes_ephemeral_agents_and_keeps_persistent),
        cmocka_unit_test(a_session_survives_a_restart),
        cmocka_unit_test(one_turn_at_a_time),
        cmocka_unit_test(a_round_killed_midway_leaves_whole_turns),
        cmocka_unit_test(concurrent_sessions_under_pool_pressure),
        cmocka_unit_test(a_shared_transcript_is_computed_once),
        cmocka_unit_test(another_keys_session_is_not_found),
        cmocka_unit_test(bad_input_is_a_400_naming_its_field),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
