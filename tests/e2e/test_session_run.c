/*
 * `semantic session run SCENARIO.json --server URL` (docs/sessions.md,
 * *Scenarios*) run as a user runs it, against a real `semantic serve` on
 * 127.0.0.1 with the tiny stories model (the words do not matter; the
 * structure and the memory do): the two shipped examples, in text and in
 * JSON, their turns, their memory (cached tokens after the first round),
 * whispers and picks, cleanup, API keys, and every way a run fails: a bad
 * scenario, a server that refuses it, a server that is not there.
 */
#include "e2e_util.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEBATE SEM_EXAMPLES "/debate.json"
#define STANDUP SEM_EXAMPLES "/standup.json"

static server_proc srv;   /* open access */
static server_proc keyed; /* --api-key key-one */
static char url[64], keyed_url[64], tmp_dir[512];

static int start_all(void **state)
{
    (void)state;
    static const char *const open_args[] = {"--pool-mb", "64", "--max-batch", "8", NULL};
    static const char *const key_args[] = {"--pool-mb", "32", "--api-key", "key-one", NULL};
    static const char *const env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", NULL};
    if (server_start(&srv, SEMANTIC_BIN, STORIES, open_args, env, 1) != 0 ||
        server_start(&keyed, SEMANTIC_BIN, STORIES, key_args, env, 1) != 0 ||
        server_temp_dir("session-run", tmp_dir, sizeof tmp_dir) != 0)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%u", srv.port);
    snprintf(keyed_url, sizeof keyed_url, "http://127.0.0.1:%u", keyed.port);
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    int bad = server_stop(&srv, SIGTERM, 20000) != 0;
    bad |= server_stop(&keyed, SIGTERM, 20000) != 0;
    server_discard_log(&srv);
    server_discard_log(&keyed);
    server_temp_dir_remove(tmp_dir);
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- running the command */

typedef struct cmd_result {
    int code;
    char *out, *err;
} cmd_result;

static char *slurp(int fd)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while ((got = read(fd, b + n, cap - n - 1)) > 0)
        if ((n += (size_t)got) == cap - 1)
            b = realloc(b, cap *= 2);
    b[n] = '\0';
    close(fd);
    return b;
}

/* semantic session run with args (NULL-terminated) and an environment
 * entry (may be NULL); SEMANTIC_API_KEY is unset unless env sets it. The
 * command dies with this test. */
static cmd_result run_cmd(const char *const *args, const char *env)
{
    char out_path[] = "/tmp/sem-srun-out-XXXXXX", err_path[] = "/tmp/sem-srun-err-XXXXXX";
    int out = mkstemp(out_path), err = mkstemp(err_path);
    assert_true(out >= 0 && err >= 0);
    unlink(out_path);
    unlink(err_path);
    const char *argv[32] = {SEMANTIC_BIN, "session", "run"};
    int n = 3;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        unsetenv("SEMANTIC_API_KEY");
        if (env)
            putenv((char *)env);
        dup2(out, 1);
        dup2(err, 2);
        execv(SEMANTIC_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return (cmd_result){.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                        .out = slurp(out),
                        .err = slurp(err)};
}

static void done(cmd_result *r)
{
    free(r->out);
    free(r->err);
}

static void expect_ok(const cmd_result *r)
{
    if (r->code != 0)
        fail_msg("exit %d: %s\n%s", r->code, r->err, r->out);
}

static void expect_failure(const char *const *args, const char *env, int code,
                           const char *needle)
{
    cmd_result r = run_cmd(args, env);
    if (r.code != code || !strstr(r.err, needle))
        fail_msg("expected exit %d and '%s', got %d: %s", code, needle, r.code, r.err);
    done(&r);
}

/* A scenario file in the temporary folder; its path (static buffer). */
static const char *scenario_file(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The JSON lines of a --json run: the turns (array, new reference) and
 * the summary (new reference). */
static json_t *json_lines(const char *out, json_t **summary)
{
    json_t *turns = json_array();
    *summary = NULL;
    char *copy = strdup(out), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        if (!j)
            fail_msg("not a JSON line: %s", l);
        const char *object = json_string_value(json_object_get(j, "object"));
        if (object && strcmp(object, "session.summary") == 0)
            *summary = j;
        else if (object && strcmp(object, "session.turn") == 0)
            json_array_append_new(turns, j);
        else
            fail_msg("unexpected line: %s", l);
    }
    free(copy);
    if (!*summary)
        fail_msg("no summary in: %s", out);
    return turns;
}

static json_int_t geti(const json_t *o, const char *field)
{
    const json_t *v = json_object_get(o, field);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", field);
    return json_integer_value(v);
}

static const char *gets_(const json_t *o, const char *field)
{
    const char *s = json_string_value(json_object_get(o, field));
    return s ? s : "";
}

/* The number of sessions the open server lists. */
static size_t session_count(void)
{
    http_response r;
    if (hc_call(srv.port, "GET", "/v1/sessions", NULL, NULL, &r) != 0 || r.status != 200)
        fail_msg("GET /v1/sessions: %d", r.status);
    json_t *j = e2e_json(&r);
    size_t n = json_array_size(json_object_get(j, "data"));
    json_decref(j);
    hc_free(&r);
    return n;
}

/* ---------------------------------------------------------------- the examples */

/* The debate in JSON: two round robin rounds in which every second turn
 * reuses its agent's memory, then a moderated round whose picks name a
 * debater that then speaks; the session is gone at the end. */
static void debate_runs_its_rounds_and_picks(void **state)
{
    (void)state;
    size_t before = session_count();
    cmd_result r = run_cmd((const char *[]){DEBATE, "--server", url, "--json", NULL}, NULL);
    expect_ok(&r);
    json_t *summary, *turns = json_lines(r.out, &summary);
    assert_int_equal(json_array_size(turns), 10);
    assert_true(json_number_value(json_object_get(json_array_get(turns, 0), "ttft_ms")) > 0);
    static const char *const order[] = {"debate-pro", "debate-con", "debate-judge"};
    for (size_t i = 0; i < 6; i++) {
        const json_t *t = json_array_get(turns, i);
        assert_int_equal(geti(t, "phase"), 1);
        assert_string_equal(gets_(t, "kind"), "turn");
        assert_string_equal(gets_(t, "agent"), order[i % 3]);
        assert_true(geti(t, "prompt_tokens") > 0);
        assert_true(geti(t, "completion_tokens") > 0);
        assert_true(json_number_value(json_object_get(t, "ttft_ms")) >= 0);
        /* The second round: each agent's memory holds its first turn. */
        if (i >= 3)
            assert_true(geti(t, "cached_tokens") > 0);
    }
    for (size_t i = 6; i < 10; i += 2) {
        const json_t *pick = json_array_get(turns, i), *turn = json_array_get(turns, i + 1);
        assert_int_equal(geti(pick, "phase"), 2);
        assert_string_equal(gets_(pick, "kind"), "pick");
        assert_string_equal(gets_(pick, "agent"), "debate-judge");
        const char *picked = gets_(pick, "picked");
        assert_true(strcmp(picked, "debate-pro") == 0 || strcmp(picked, "debate-con") == 0);
        assert_string_equal(gets_(turn, "kind"), "turn");
        assert_string_equal(gets_(turn, "agent"), picked);
        /* The phase runs in a session of its own. */
        assert_string_not_equal(gets_(turn, "session"),
                                gets_(json_array_get(turns, 0), "session"));
    }
    assert_int_equal(geti(summary, "turns"), 8);
    assert_int_equal(geti(summary, "picks"), 2);
    assert_int_equal(geti(summary, "phases"), 2);
    json_int_t prompt = 0, cached = 0;
    for (size_t i = 0; i < 10; i++) {
        prompt += geti(json_array_get(turns, i), "prompt_tokens");
        cached += geti(json_array_get(turns, i), "cached_tokens");
    }
    assert_int_equal(geti(summary, "prompt_tokens"), prompt);
    assert_int_equal(geti(summary, "cached_tokens"), cached);
    json_decref(turns);
    json_decref(summary);
    done(&r);
    assert_int_equal(session_count(), before);
}

/* The debate as text: each speaker's name, its words, a figures line per
 * turn, the picks and the summary. */
static void debate_prints_the_conversation(void **state)
{
    (void)state;
    cmd_result r = run_cmd((const char *[]){DEBATE, "--server", url, NULL}, NULL);
    expect_ok(&r);
    static const char *const needles[] = {
        "== phase 1: round_robin, 2 rounds, new session (session sess_",
        ">> Motion: city centres", "\nPro: ", "\nCon: ", "\nJudge: ",
        "== phase 2: moderated, 1 round, new session", "(Judge picks ",
        "    [ttft ", " ms, prompt ", " tokens, cached ",
        "== 8 turns and 2 picks in 2 phases"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (!strstr(r.out, needles[i]))
            fail_msg("no '%s' in:\n%s", needles[i], r.out);
    /* One figures line per turn and pick. */
    size_t lines = 0;
    for (const char *p = r.out; (p = strstr(p, "    [ttft ")); p++)
        lines++;
    assert_int_equal(lines, 10);
    done(&r);
}

/* The stand-up: a broadcast round, a second one in the same session that
 * reuses every agent's memory, then a whisper phase between Ana and Bo. */
static void standup_broadcasts_then_whispers(void **state)
{
    (void)state;
    cmd_result r = run_cmd((const char *[]){STANDUP, "--server", url, "--json", NULL}, NULL);
    expect_ok(&r);
    json_t *summary, *turns = json_lines(r.out, &summary);
    assert_int_equal(json_array_size(turns), 10);
    const char *first_session = gets_(json_array_get(turns, 0), "session");
    for (size_t i = 0; i < 8; i++) {
        const json_t *t = json_array_get(turns, i);
        assert_int_equal(geti(t, "phase"), i < 4 ? 1 : 2);
        assert_string_equal(gets_(t, "session"), first_session);
        if (i >= 4) /* the second round extends what each agent holds */
            assert_true(geti(t, "cached_tokens") > 0);
    }
    const json_t *w1 = json_array_get(turns, 8), *w2 = json_array_get(turns, 9);
    assert_string_equal(gets_(w1, "agent"), "standup-ana");
    assert_string_equal(gets_(w1, "to"), "standup-bo");
    assert_string_equal(gets_(w2, "agent"), "standup-bo");
    assert_string_equal(gets_(w2, "to"), "standup-ana");
    assert_int_equal(geti(w1, "phase"), 3);
    assert_string_not_equal(gets_(w1, "session"), first_session);
    assert_true(geti(summary, "cached_tokens") > 0);
    json_decref(turns);
    json_decref(summary);
    done(&r);

    r = run_cmd((const char *[]){STANDUP, "--server", url, NULL}, NULL);
    expect_ok(&r);
    if (!strstr(r.out, "== phase 2: broadcast, 1 round (session sess_") ||
        !strstr(r.out, ">> And what will you do today?") || !strstr(r.out, "\nAna (to Bo): ") ||
        !strstr(r.out, "\nBo (to Ana): ") || !strstr(r.out, "== 10 turns in 3 phases"))
        fail_msg("unexpected output:\n%s", r.out);
    done(&r);
}

/* cleanup false keeps the session; the default deletes it. */
static void cleanup_false_keeps_the_session(void **state)
{
    (void)state;
    size_t before = session_count();
    const char *path = scenario_file(
        "keep.json", "{\"cleanup\":false,\"max_tokens\":4,\"agents\":[{\"id\":\"keep-a\","
                     "\"name\":\"A\",\"system\":\"You are A.\"}],\"phases\":[{\"turns\":1}]}");
    cmd_result r = run_cmd((const char *[]){path, "--server", url, NULL}, NULL);
    expect_ok(&r);
    assert_non_null(strstr(r.out, "== 1 turns in 1 phases"));
    done(&r);
    assert_int_equal(session_count(), before + 1);
}

/* GET path on the open server (200); its JSON. */
static json_t *get_json(const char *path)
{
    http_response r;
    if (hc_call(srv.port, "GET", path, NULL, NULL, &r) != 0 || r.status != 200)
        fail_msg("GET %s: %d", path, r.status);
    json_t *j = e2e_json(&r);
    hc_free(&r);
    return j;
}

/* The view of the newest session: the scenario's "view", and --view over it. */
static const char *newest_view(json_t **keep)
{
    *keep = get_json("/v1/sessions");
    const json_t *s = json_array_get(json_object_get(*keep, "data"), 0);
    return json_string_value(json_object_get(s, "view"));
}

static void the_view_reaches_the_session(void **state)
{
    (void)state;
    const char *path = scenario_file(
        "shared.json", "{\"cleanup\":false,\"max_tokens\":4,\"view\":\"shared\",\"agents\":["
                       "{\"id\":\"view-a\",\"name\":\"A\"},{\"id\":\"view-b\",\"name\":\"B\"}],"
                       "\"phases\":[{\"topology\":\"broadcast\",\"initial_prompt\":\"Go.\"}]}");
    cmd_result r = run_cmd((const char *[]){path, "--server", url, NULL}, NULL);
    expect_ok(&r);
    done(&r);
    json_t *list;
    assert_string_equal(newest_view(&list), "shared");
    json_decref(list);
    r = run_cmd((const char *[]){path, "--server", url, "--view", "own", NULL}, NULL);
    expect_ok(&r);
    done(&r);
    assert_string_equal(newest_view(&list), "own");
    json_decref(list);
}

/* What a kept run leaves in its sessions: a later phase's prompt is a
 * message to all in the same session; a whisper phase's prompt and turns
 * are on the pair's channel, and the third agent never sees them. */
static void phases_leave_messages_and_whispers_where_they_belong(void **state)
{
    (void)state;
    const char *path = scenario_file(
        "kept.json",
        "{\"cleanup\":false,\"max_tokens\":4,\"agents\":["
        "{\"id\":\"kw-a\",\"name\":\"A\",\"system\":\"You are A.\"},"
        "{\"id\":\"kw-b\",\"name\":\"B\",\"system\":\"You are B.\"},"
        "{\"id\":\"kw-c\",\"name\":\"C\",\"system\":\"You are C.\"}],"
        "\"phases\":[{\"topology\":\"broadcast\",\"initial_prompt\":\"first words\"},"
        "{\"topology\":\"broadcast\",\"prompt\":\"second words\"},"
        "{\"whisper\":[\"kw-a\",\"kw-b\"],\"turns\":2,\"prompt\":\"secret words\"}]}");
    cmd_result r = run_cmd((const char *[]){path, "--server", url, "--json", NULL}, NULL);
    expect_ok(&r);
    json_t *summary, *turns = json_lines(r.out, &summary);
    assert_int_equal(json_array_size(turns), 8);
    char broadcast[128], whisper[128], p[256];
    snprintf(broadcast, sizeof broadcast, "%s", gets_(json_array_get(turns, 0), "session"));
    snprintf(whisper, sizeof whisper, "%s", gets_(json_array_get(turns, 6), "session"));
    json_decref(turns);
    json_decref(summary);
    done(&r);

    snprintf(p, sizeof p, "/v1/sessions/%s", broadcast);
    json_t *s = get_json(p);
    const json_t *tr = json_object_get(s, "transcript");
    /* first words, 3 answers, second words, 3 answers */
    assert_int_equal(json_array_size(tr), 8);
    assert_string_equal(gets_(json_array_get(tr, 0), "text"), "first words");
    assert_string_equal(gets_(json_array_get(tr, 4), "text"), "second words");
    assert_string_equal(gets_(json_array_get(tr, 4), "channel"), "all");
    json_decref(s);

    snprintf(p, sizeof p, "/v1/sessions/%s", whisper);
    s = get_json(p);
    tr = json_object_get(s, "transcript");
    assert_int_equal(json_array_size(tr), 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *ch = json_object_get(json_array_get(tr, i), "channel");
        assert_true(json_is_array(ch));
        char *text = json_dumps(ch, JSON_COMPACT);
        if (!strstr(text, "kw-a") || !strstr(text, "kw-b"))
            fail_msg("message %zu is on %s", i, text);
        free(text);
    }
    assert_string_equal(gets_(json_array_get(tr, 0), "text"), "secret words");
    json_decref(s);
    snprintf(p, sizeof p, "/v1/sessions/%s/view?agent=kw-c", whisper);
    json_t *v = get_json(p);
    char *seen = json_dumps(json_object_get(v, "messages"), JSON_COMPACT);
    assert_null(strstr(seen, "secret words"));
    free(seen);
    json_decref(v);
    snprintf(p, sizeof p, "/v1/sessions/%s/view?agent=kw-b", whisper);
    v = get_json(p);
    seen = json_dumps(json_object_get(v, "messages"), JSON_COMPACT);
    assert_non_null(strstr(seen, "secret words"));
    free(seen);
    json_decref(v);
}

/* ---------------------------------------------------------------- failures */

static void bad_scenarios_fail_naming_the_field(void **state)
{
    (void)state;
    const char *p = scenario_file("typo.json", "{\"agents\":[{\"name\":\"A\"}],\"phases\":[{"
                                               "\"round\":2}]}");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2,
                   "typo.json: unknown field 'phases[0].round'");
    p = scenario_file("broken.json", "{\"agents\":");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2, "broken.json: not JSON");
    p = scenario_file("whisper.json", "{\"agents\":[{\"id\":\"a\",\"name\":\"A\"}],\"phases\":"
                                      "[{\"whisper\":[\"a\",\"b\"]}]}");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2,
                   "phases[0].whisper[1] 'b' is not the id of an agent");
    expect_failure((const char *[]){"/nonexistent/s.json", "--server", url, NULL}, NULL, 3,
                   "cannot open /nonexistent/s.json");
    p = scenario_file("view.json", "{\"view\":\"mine\",\"agents\":[{\"name\":\"A\"}],"
                                   "\"phases\":[{}]}");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2,
                   "view.json: view 'mine' is not own or shared");
    expect_failure((const char *[]){STANDUP, "--server", url, "--view", "mine", NULL}, NULL, 2,
                   "--view is 'mine'; expected own or shared");
}

/* What the server refuses comes back with its status, param and message;
 * a run that fails after its session was made deletes it. */
static void server_errors_are_reported_and_the_session_deleted(void **state)
{
    (void)state;
    const char *p = scenario_file("twins.json", "{\"agents\":[{\"name\":\"A\"},{\"name\":\"A\"}],"
                                                "\"phases\":[{}]}");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2,
                   "POST http://127.0.0.1");
    expect_failure((const char *[]){p, "--server", url, NULL}, NULL, 2,
                   "/v1/sessions: HTTP 400 (agents[1].name)");
    size_t before = session_count();
    p = scenario_file("mute.json", "{\"agents\":[{\"name\":\"A\"}],\"phases\":[{}]}");
    cmd_result r = run_cmd((const char *[]){p, "--server", url, NULL}, NULL);
    assert_int_equal(r.code, 2);
    if (!strstr(r.err, "/round: HTTP 400 (initial_prompt)") || !strstr(r.err, "nothing to answer"))
        fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "== phase 1")); /* the session was made */
    done(&r);
    assert_int_equal(session_count(), before);
}

static void unreachable_servers_and_bad_urls_fail(void **state)
{
    (void)state;
    char nobody[64];
    snprintf(nobody, sizeof nobody, "http://127.0.0.1:%u", server_free_port());
    expect_failure((const char *[]){DEBATE, "--server", nobody, NULL}, NULL, 7,
                   "cannot connect");
    expect_failure((const char *[]){DEBATE, "--server", nobody, NULL}, NULL, 7, nobody);
    expect_failure((const char *[]){DEBATE, NULL}, NULL, 2, "--server URL is required");
    expect_failure((const char *[]){DEBATE, "--server", "https://127.0.0.1:1", NULL}, NULL, 2,
                   "https is not supported");
    expect_failure((const char *[]){DEBATE, "--server", "http://127.0.0.1:99999", NULL}, NULL,
                   2, "the port is not in 1..65535");
    expect_failure((const char *[]){"--server", url, NULL}, NULL, 2,
                   "run takes one scenario file, not 0");
    expect_failure((const char *[]){DEBATE, "--server", url, "--timeout", "0", NULL}, NULL, 2,
                   "--timeout: 0 is outside 1..86400");
    expect_failure((const char *[]){DEBATE, "--server", url, "--bogus", NULL}, NULL, 2,
                   "unknown option '--bogus'");
}

/* A server with an API key: none is 401, --api-key and SEMANTIC_API_KEY
 * both work. */
static void api_keys_come_from_the_option_or_the_environment(void **state)
{
    (void)state;
    expect_failure((const char *[]){STANDUP, "--server", keyed_url, NULL}, NULL, 1, "HTTP 401");
    cmd_result r = run_cmd((const char *[]){STANDUP, "--server", keyed_url, "--api-key",
                                            "key-one", "--json", NULL},
                           NULL);
    expect_ok(&r);
    done(&r);
    r = run_cmd((const char *[]){STANDUP, "--server", keyed_url, NULL},
                "SEMANTIC_API_KEY=key-one");
    expect_ok(&r);
    done(&r);
    expect_failure((const char *[]){STANDUP, "--server", keyed_url, NULL},
                   "SEMANTIC_API_KEY=key-two", 1, "HTTP 401");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(debate_runs_its_rounds_and_picks),
        cmocka_unit_test(debate_prints_the_conversation),
        cmocka_unit_test(standup_broadcasts_then_whispers),
        cmocka_unit_test(cleanup_false_keeps_the_session),
        cmocka_unit_test(the_view_reaches_the_session),
        cmocka_unit_test(phases_leave_messages_and_whispers_where_they_belong),
        cmocka_unit_test(bad_scenarios_fail_naming_the_field),
        cmocka_unit_test(server_errors_are_reported_and_the_session_deleted),
        cmocka_unit_test(unreachable_servers_and_bad_urls_fail),
        cmocka_unit_test(api_keys_come_from_the_option_or_the_environment),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
