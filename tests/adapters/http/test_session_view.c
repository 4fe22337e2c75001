/*
 * Specification of session_view.h and session_request.h: what each agent
 * of a session sees (whispers only for their two parties, its own turns
 * as assistant, the others' as "NAME: text"), that a view only grows, and
 * the checks on the sessions API's bodies.
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/http/session_request.h"
#include "adapters/http/session_view.h"

/* Three agents: a (system "You are A."), b, c (no system). */
static session_record three(void)
{
    session_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "sess_t");
    r.n_agents = 3;
    const char *ids[] = {"a", "b", "c"}, *names[] = {"Ann", "Ben", "Cid"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(r.agents[i].id, sizeof r.agents[i].id, "%s", ids[i]);
        snprintf(r.agents[i].name, sizeof r.agents[i].name, "%s", names[i]);
        r.agents[i].system = (char *)(i == 0 ? "You are A." : "");
        r.agents[i].role = (char *)"";
    }
    return r;
}

static session_message say(const char *speaker, const char *name, const char *channel,
                           const char *text)
{
    session_message m;
    memset(&m, 0, sizeof m);
    snprintf(m.speaker, sizeof m.speaker, "%s", speaker);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.channel, sizeof m.channel, "%s", channel);
    m.text = (char *)text;
    return m;
}

/* The view as compact JSON text (malloc'd). */
static char *view(const session_record *r, size_t agent, const session_message *m, size_t n)
{
    json_t *v = session_view_messages(r, agent, m, n);
    assert_non_null(v);
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

static void visibility_of_channels(void **state)
{
    (void)state;
    assert_true(session_view_visible("all", "x"));
    assert_true(session_view_visible("a,b", "a"));
    assert_true(session_view_visible("a,b", "b"));
    assert_false(session_view_visible("a,b", "c"));
    /* Prefixes and suffixes of a party are not the party. */
    assert_false(session_view_visible("ab,b2", "a"));
    assert_false(session_view_visible("ab,b2", "b"));
    assert_false(session_view_visible("a,b", ""));
}

static void own_turns_are_assistant_others_are_named(void **state)
{
    (void)state;
    session_record r = three();
    session_message m[] = {say("", "", "all", "Begin."), say("a", "Ann", "all", "hi"),
                           say("b", "Ben", "all", "hello"), say("c", "Cid", "all", "hey")};
    char *s = view(&r, 0, m, 4);
    assert_string_equal(s, "[{\"role\":\"system\",\"content\":\"You are A.\"},"
                           "{\"role\":\"user\",\"content\":\"Begin.\"},"
                           "{\"role\":\"assistant\",\"content\":\"hi\"},"
                           "{\"role\":\"user\",\"content\":\"Ben: hello\\n\\nCid: hey\"}]");
    free(s);
    s = view(&r, 1, m, 4);
    assert_string_equal(s, "[{\"role\":\"user\",\"content\":\"Begin.\\n\\nAnn: hi\"},"
                           "{\"role\":\"assistant\",\"content\":\"hello\"},"
                           "{\"role\":\"user\",\"content\":\"Cid: hey\"}]");
    free(s);
}

static void whispers_reach_their_two_parties_only(void **state)
{
    (void)state;
    session_record r = three();
    session_message m[] = {say("a", "Ann", "a,c", "SECRET-AC"), say("b", "Ben", "all", "open"),
                           say("", "Ops", "b,c", "SECRET-BC")};
    char *sa = view(&r, 0, m, 3), *sb = view(&r, 1, m, 3), *sc = view(&r, 2, m, 3);
    assert_non_null(strstr(sa, "SECRET-AC"));
    assert_null(strstr(sa, "SECRET-BC"));
    assert_null(strstr(sb, "SECRET-AC"));
    assert_non_null(strstr(sb, "Ops: SECRET-BC"));
    assert_non_null(strstr(sc, "Ann: SECRET-AC"));
    assert_non_null(strstr(sc, "SECRET-BC"));
    for (char *s = sa; s; s = s == sa ? sb : s == sb ? sc : NULL)
        assert_non_null(strstr(s, "open"));
    free(sa);
    free(sb);
    free(sc);
}

/* What an agent saw at its turn, followed by its answer, starts what it
 * sees at its next turn: its prompt extends its memory. */
static void a_view_only_grows(void **state)
{
    (void)state;
    session_record r = three();
    session_message m[] = {say("", "", "all", "Go."), say("b", "Ben", "all", "one"),
                           say("a", "Ann", "all", "two"), say("c", "Cid", "all", "three"),
                           say("b", "Ben", "all", "four")};
    json_t *before = session_view_messages(&r, 0, m, 2); /* Ann's turn comes next */
    json_t *after = session_view_messages(&r, 0, m, 5);
    assert_int_equal(json_array_size(before), 2);
    assert_int_equal(json_array_size(after), 4);
    for (size_t i = 0; i < json_array_size(before); i++)
        assert_true(json_equal(json_array_get(before, i), json_array_get(after, i)));
    assert_string_equal(json_string_value(json_object_get(json_array_get(after, 2), "content")),
                        "two");
    json_decref(before);
    json_decref(after);
}

/* A broadcast round's answers were all given to the same transcript:
 * each agent reads its own first, so its view still only grows. */
static void a_broadcast_batch_puts_the_readers_answer_first(void **state)
{
    (void)state;
    session_record r = three();
    session_message m[] = {say("", "", "all", "Go."), say("a", "Ann", "all", "A1"),
                           say("b", "Ben", "all", "B1"), say("c", "Cid", "all", "C1")};
    m[0].batch = 1;
    m[1].batch = m[2].batch = m[3].batch = 2;
    char *s = view(&r, 1, m, 4);
    assert_string_equal(s, "[{\"role\":\"user\",\"content\":\"Go.\"},"
                           "{\"role\":\"assistant\",\"content\":\"B1\"},"
                           "{\"role\":\"user\",\"content\":\"Ann: A1\\n\\nCid: C1\"}]");
    free(s);
    json_t *before = session_view_messages(&r, 2, m, 1);
    json_t *after = session_view_messages(&r, 2, m, 4);
    assert_int_equal(json_array_size(before), 1);
    assert_true(json_equal(json_array_get(before, 0), json_array_get(after, 0)));
    assert_string_equal(json_string_value(json_object_get(json_array_get(after, 1), "content")),
                        "C1");
    json_decref(before);
    json_decref(after);
}

static void an_empty_view_is_empty(void **state)
{
    (void)state;
    session_record r = three();
    json_t *v = session_view_messages(&r, 1, NULL, 0);
    assert_int_equal(json_array_size(v), 0);
    json_decref(v);
}

/* ---------------------------------------------------------------- shared */

/* The user message of an agent's shared view (malloc'd). */
static char *shared_body(const session_record *r, size_t agent, const session_message *m,
                         size_t n)
{
    json_t *v = session_view_messages(r, agent, m, n);
    assert_non_null(v);
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "role")),
                        "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 1), "role")),
                        "user");
    char *s = strdup(json_string_value(json_object_get(json_array_get(v, 1), "content")));
    json_decref(v);
    return s;
}

/* Every agent reads the same system message and the same transcript,
 * its own turns included; what differs comes after it. */
static void shared_views_agree_up_to_the_own_part(void **state)
{
    (void)state;
    session_record r = three();
    r.view = SESSION_VIEW_SHARED;
    r.agents[1].role = (char *)"critic";
    session_message m[] = {say("", "", "all", "Go."), say("a", "Ann", "all", "A1"),
                           say("b", "Ben", "all", "B1")};
    const char *common = "Go.\n\nAnn: A1\n\nBen: B1\n\n---\n";
    json_t *va = session_view_messages(&r, 0, m, 3), *vb = session_view_messages(&r, 1, m, 3);
    assert_true(json_equal(json_array_get(va, 0), json_array_get(vb, 0)));
    const char *sys = json_string_value(json_object_get(json_array_get(va, 0), "content"));
    assert_contains(sys, "3 participants");
    assert_contains(sys, "- Ben (critic)");
    json_decref(va);
    json_decref(vb);
    char *sa = shared_body(&r, 0, m, 3), *sb = shared_body(&r, 1, m, 3);
    assert_memory_equal(sa, common, strlen(common));
    assert_memory_equal(sb, common, strlen(common));
    assert_string_equal(sa + strlen(common), "You are Ann.\nYou are A.\nWrite Ann's next message.");
    assert_string_equal(sb + strlen(common),
                        "You are Ben. Your role: critic.\nWrite Ben's next message.");
    free(sa);
    free(sb);
}

/* The transcript part of a turn's view starts the next turn's. */
static void a_shared_transcript_only_grows(void **state)
{
    (void)state;
    session_record r = three();
    r.view = SESSION_VIEW_SHARED;
    session_message m[] = {say("", "", "all", "Go."), say("b", "Ben", "all", "one"),
                           say("a", "Ann", "all", "two")};
    char *before = shared_body(&r, 0, m, 2), *after = shared_body(&r, 2, m, 3);
    const char *own = strstr(before, "\n\n---\nYou are Ann.");
    assert_non_null(own);
    size_t common = (size_t)(own - before);
    assert_memory_equal(before, after, common);
    assert_memory_equal(after + common, "\n\nAnn: two", 10);
    free(before);
    free(after);
    /* With nothing said yet the view is the agent's own part alone. */
    char *empty = shared_body(&r, 1, NULL, 0);
    assert_string_equal(empty, "You are Ben.\nWrite Ben's next message.");
    free(empty);
}

/* Whispers go to the own part of their two parties, never to the part
 * every agent shares. */
static void shared_whispers_stay_in_the_own_part(void **state)
{
    (void)state;
    session_record r = three();
    r.view = SESSION_VIEW_SHARED;
    session_message m[] = {say("a", "Ann", "a,c", "SECRET-AC"), say("b", "Ben", "all", "open")};
    char *sa = shared_body(&r, 0, m, 2), *sb = shared_body(&r, 1, m, 2),
         *sc = shared_body(&r, 2, m, 2);
    assert_null(strstr(sb, "SECRET"));
    const char *you = strstr(sa, "You are Ann.");
    assert_non_null(you);
    const char *secret = strstr(sa, "Ann: SECRET-AC");
    assert_non_null(secret);
    assert_true(secret > strstr(sa, "Ben: open")); /* after the shared transcript */
    assert_true(secret < you);
    assert_contains(sc, "Private messages");
    assert_contains(sc, "Ann: SECRET-AC");
    assert_memory_equal(sa, sb, strlen("Ben: open\n\n---\n"));
    free(sa);
    free(sb);
    free(sc);
}

/* ---------------------------------------------------------------- bodies */

/* Reads a create body; returns the status, e filled. */
static sem_status create(const char *text, session_record *r, req_err *e)
{
    json_t *b = json_loads(text, 0, NULL);
    assert_non_null(b);
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "sess_x");
    const char *initial = NULL;
    memset(e, 0, sizeof *e);
    sem_status st = session_request_create(b, r, &initial, e);
    json_decref(b);
    return st;
}

static void expect_create_error(const char *text, sem_status st, const char *param,
                                const char *words)
{
    session_record r;
    req_err e;
    assert_int_equal(create(text, &r, &e), st);
    assert_string_equal(e.param, param);
    assert_contains(e.err.detail, words);
    session_record_free(&r);
}

static void a_create_body_is_read(void **state)
{
    (void)state;
    session_record r;
    req_err e;
    assert_int_equal(create("{\"agents\":[{\"name\":\"A\",\"system\":\"s\",\"role\":\"judge\"},"
                            "{\"id\":\"bee\",\"name\":\"B\",\"lifecycle\":\"persistent\"}],"
                            "\"topology\":\"broadcast\",\"max_turns\":9}",
                            &r, &e),
                     SEM_OK);
    assert_int_equal(r.n_agents, 2);
    assert_string_equal(r.agents[0].id, "sess_x-0");
    assert_string_equal(r.agents[0].role, "judge");
    assert_int_equal(r.agents[0].persistent, 0);
    assert_string_equal(r.agents[1].id, "bee");
    assert_int_equal(r.agents[1].persistent, 1);
    assert_int_equal(r.topology, SESSION_BROADCAST);
    assert_int_equal(r.max_turns, 9);
    assert_int_equal(r.moderator, -1);
    assert_int_equal(r.view, SESSION_VIEW_OWN);
    session_record_free(&r);
    assert_int_equal(create("{\"agents\":[{\"name\":\"A\"}],\"view\":\"shared\"}", &r, &e),
                     SEM_OK);
    assert_int_equal(r.view, SESSION_VIEW_SHARED);
    session_record_free(&r);
    assert_int_equal(create("{\"agents\":[{\"name\":\"A\"},{\"id\":\"m\",\"name\":\"M\"}],"
                            "\"topology\":\"moderated\",\"moderator\":\"m\"}",
                            &r, &e),
                     SEM_OK);
    assert_int_equal(r.moderator, 1);
    assert_int_equal(r.next, 1); /* the moderator acts first */
    session_record_free(&r);
}

static void bad_create_bodies_name_their_field(void **state)
{
    (void)state;
    expect_create_error("{}", SEM_EREQUEST, "agents", "1 to 32");
    expect_create_error("{\"agents\":[]}", SEM_EREQUEST, "agents", "0 entries");
    char big[4096] = "{\"agents\":[";
    for (int i = 0; i < 33; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s{\"name\":\"n%d\"}",
                 i ? "," : "", i);
    strcat(big, "]}");
    expect_create_error(big, SEM_EREQUEST, "agents", "33 entries");
    expect_create_error("{\"agents\":[1]}", SEM_EREQUEST, "agents[0]", "object");
    expect_create_error("{\"agents\":[{\"id\":\"x\"}]}", SEM_EREQUEST, "agents[0].name",
                        "required");
    expect_create_error("{\"agents\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", SEM_EREQUEST,
                        "agents[1].name", "same name");
    expect_create_error("{\"agents\":[{\"name\":\"a\",\"id\":\"q\"},"
                        "{\"name\":\"b\",\"id\":\"q\"}]}",
                        SEM_EREQUEST, "agents[1].id", "same id");
    expect_create_error("{\"agents\":[{\"name\":\"a\",\"id\":\"../x\"}]}", SEM_EREQUEST,
                        "agents[0].id", "agents[0].id");
    expect_create_error("{\"agents\":[{\"name\":\"a\",\"lifecycle\":\"forever\"}]}",
                        SEM_EREQUEST, "agents[0].lifecycle", "ephemeral or persistent");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"topology\":\"ring\"}", SEM_EREQUEST,
                        "topology", "round_robin, broadcast, whisper");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"topology\":\"moderated\"}",
                        SEM_EREQUEST, "agents", "2 agents or more");
    expect_create_error("{\"agents\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
                        "\"topology\":\"moderated\",\"moderator\":\"zed\"}",
                        SEM_EREQUEST, "moderator", "zed");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"moderator\":\"a\"}",
                        SEM_EREQUEST, "moderator", "moderated session");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"max_turns\":-1}", SEM_EREQUEST,
                        "max_turns", "max_turns");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"view\":\"mine\"}",
                        SEM_EREQUEST, "view", "own or shared");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"view\":1}", SEM_EREQUEST,
                        "view", "string");
    expect_create_error("{\"agents\":[{\"name\":\"a\"}],\"initial_prompt\":5}", SEM_EREQUEST,
                        "initial_prompt", "string");
}

static void turn_and_message_bodies(void **state)
{
    (void)state;
    session_record r = three();
    session_turn_opts o;
    memset(&o, 0, sizeof o);
    req_err e = {0};
    assert_int_equal(session_request_turn(NULL, &r, 0, 64, &o, &e), SEM_OK);
    assert_int_equal(o.max_tokens, 64); /* the default, held to the context */
    json_t *b = json_pack("{s:s}", "to", "b");
    assert_int_equal(session_request_turn(b, &r, 0, 512, &o, &e), SEM_EREQUEST);
    assert_string_equal(e.param, "to"); /* not a whisper session */
    r.topology = SESSION_WHISPER;
    assert_int_equal(session_request_turn(b, &r, 0, 512, &o, &e), SEM_OK);
    assert_string_equal(o.to, "b");
    assert_int_equal(session_request_turn(b, &r, 1, 512, &o, &e), SEM_EREQUEST);
    json_decref(b);
    b = json_pack("{s:s}", "to", "zed");
    assert_int_equal(session_request_turn(b, &r, 0, 512, &o, &e), SEM_EREQUEST);
    json_decref(b);
    b = json_pack("{s:i}", "max_tokens", 0);
    assert_int_equal(session_request_turn(b, &r, 0, 512, &o, &e), SEM_EREQUEST);
    assert_string_equal(e.param, "max_tokens");
    json_decref(b);

    session_message m;
    b = json_pack("{s:s,s:[s,s]}", "content", "hi", "channel", "a", "c");
    assert_int_equal(session_request_message(b, &r, &m, &e), SEM_OK);
    assert_string_equal(m.channel, "a,c");
    assert_string_equal(m.name, "user");
    free(m.text);
    json_decref(b);
    const char *bad[] = {"{\"content\":\"\"}", "{\"content\":\"x\",\"channel\":[\"a\",\"a\"]}",
                         "{\"content\":\"x\",\"channel\":[\"a\",\"q\"]}",
                         "{\"content\":\"x\",\"channel\":\"a\"}",
                         "{\"content\":\"x\",\"name\":\"two\\nlines\"}"};
    const char *params[] = {"content", "channel", "channel", "channel", "name"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = json_loads(bad[i], 0, NULL);
        memset(&e, 0, sizeof e);
        assert_int_equal(session_request_message(b, &r, &m, &e), SEM_EREQUEST);
        assert_string_equal(e.param, params[i]);
        json_decref(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(visibility_of_channels),
        cmocka_unit_test(own_turns_are_assistant_others_are_named),
        cmocka_unit_test(whispers_reach_their_two_parties_only),
        cmocka_unit_test(a_view_only_grows),
        cmocka_unit_test(a_broadcast_batch_puts_the_readers_answer_first),
        cmocka_unit_test(an_empty_view_is_empty),
        cmocka_unit_test(shared_views_agree_up_to_the_own_part),
        cmocka_unit_test(a_shared_transcript_only_grows),
        cmocka_unit_test(shared_whispers_stay_in_the_own_part),
        cmocka_unit_test(a_create_body_is_read),
        cmocka_unit_test(bad_create_bodies_name_their_field),
        cmocka_unit_test(turn_and_message_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
