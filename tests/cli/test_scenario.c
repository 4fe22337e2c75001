/*
 * Scenario files (src/cli/scenario.c, docs/sessions.md *Scenarios*): what
 * a good one gives the runner, and every kind of bad one refused with the
 * field named, before anything is sent to a server. The shipped examples
 * parse.
 */
#include <jansson.h>

#include "../test_util.h"
#include "cli/cli.h"
#include "cli/scenario.h"

static void a_full_scenario_gives_its_phases(void **state)
{
    (void)state;
    scenario *s;
    sem_err err = {0};
    const char *text =
        "{\"model\":\"m\",\"max_tokens\":16,\"cleanup\":false,"
        "\"agents\":[{\"id\":\"a\",\"name\":\"A\"},{\"id\":\"b\",\"name\":\"B\"}],"
        "\"phases\":[{\"initial_prompt\":\"hi\"},"
        "{\"topology\":\"moderated\",\"moderator\":\"a\",\"turns\":3,\"max_tokens\":4},"
        "{\"whisper\":[\"b\",\"a\"],\"prompt\":\"psst\"},"
        "{\"topology\":\"broadcast\",\"rounds\":2}]}";
    assert_int_equal(scenario_parse(text, "t.json", &s, &err), SEM_OK);
    assert_string_equal(scenario_model(s), "m");
    assert_null(scenario_view(s));
    assert_int_equal(scenario_max_tokens(s), 16);
    assert_false(scenario_cleanup(s));
    assert_int_equal(json_array_size(scenario_agents(s)), 2);
    assert_int_equal(scenario_phase_count(s), 4);

    const scenario_phase *p = scenario_phase_at(s, 0);
    assert_string_equal(p->topology, "round_robin");
    assert_string_equal(p->prompt, "hi");
    assert_int_equal(p->count, 1);
    assert_false(p->by_turns);
    assert_null(p->whisper[0]);
    assert_int_equal(p->max_tokens, 0);

    p = scenario_phase_at(s, 1);
    assert_string_equal(p->topology, "moderated");
    assert_string_equal(p->moderator, "a");
    assert_true(p->by_turns);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->max_tokens, 4);

    p = scenario_phase_at(s, 2); /* a whisper pair makes a whisper phase of turns */
    assert_string_equal(p->topology, "whisper");
    assert_string_equal(p->whisper[0], "b");
    assert_string_equal(p->whisper[1], "a");
    assert_true(p->by_turns);
    assert_string_equal(p->prompt, "psst");

    p = scenario_phase_at(s, 3);
    assert_string_equal(p->topology, "broadcast");
    assert_int_equal(p->count, 2);
    assert_null(scenario_phase_at(s, 4));
    scenario_free(s);

    /* Defaults: cleanup on, the server's max_tokens and model. */
    assert_int_equal(scenario_parse("{\"agents\":[{\"name\":\"A\"}],\"phases\":[{}]}", "d", &s,
                                    &err),
                     SEM_OK);
    assert_true(scenario_cleanup(s));
    assert_int_equal(scenario_max_tokens(s), 0);
    assert_null(scenario_model(s));
    scenario_free(s);
}

#define A1 "\"agents\":[{\"id\":\"a\",\"name\":\"A\"},{\"id\":\"b\",\"name\":\"B\"}]"

static void bad_scenarios_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"[", "not JSON"},
        {"[]", "a scenario is a JSON object"},
        {"{" A1 ",\"phases\":[{}],\"phase\":1}", "unknown field 'phase'"},
        {"{\"phases\":[{}]}", "agents must be a list of 1 to 32"},
        {"{\"agents\":[],\"phases\":[{}]}", "agents must be a list of 1 to 32"},
        {"{\"agents\":[1],\"phases\":[{}]}", "agents[0] must be an object"},
        {"{\"agents\":[{\"id\":\"a\"}],\"phases\":[{}]}", "agents[0].name is required"},
        {"{\"agents\":[{\"name\":\"A\",\"id\":7}],\"phases\":[{}]}", "agents[0].id must be"},
        {"{" A1 "}", "phases must be a list"},
        {"{" A1 ",\"phases\":[]}", "phases must be a list"},
        {"{" A1 ",\"phases\":[3]}", "phases[0] must be an object"},
        {"{" A1 ",\"model\":1,\"phases\":[{}]}", "model must be a string"},
        {"{" A1 ",\"view\":\"both\",\"phases\":[{}]}", "view 'both' is not own or shared"},
        {"{" A1 ",\"view\":2,\"phases\":[{}]}", "view must be a string"},
        {"{" A1 ",\"cleanup\":\"yes\",\"phases\":[{}]}", "cleanup must be true or false"},
        {"{" A1 ",\"max_tokens\":0,\"phases\":[{}]}", "max_tokens must be an integer in 1.."},
        {"{" A1 ",\"phases\":[{},{\"round\":2}]}", "unknown field 'phases[1].round'"},
        {"{" A1 ",\"phases\":[{\"topology\":\"ring\"}]}", "phases[0].topology 'ring' is not"},
        {"{" A1 ",\"phases\":[{\"topology\":3}]}", "phases[0].topology must be a string"},
        {"{" A1 ",\"phases\":[{\"moderator\":\"a\"}]}", "phases[0].moderator goes with"},
        {"{" A1 ",\"phases\":[{\"prompt\":\"x\",\"initial_prompt\":\"y\"}]}", "both prompt"},
        {"{" A1 ",\"phases\":[{\"rounds\":1,\"turns\":1}]}", "both rounds and turns"},
        {"{" A1 ",\"phases\":[{\"rounds\":0}]}", "phases[0].rounds must be an integer in 1..10000"},
        {"{" A1 ",\"phases\":[{\"turns\":10001}]}", "phases[0].turns must be an integer"},
        {"{" A1 ",\"phases\":[{\"turns\":1.5}]}", "phases[0].turns must be an integer"},
        {"{" A1 ",\"phases\":[{\"max_tokens\":-1}]}", "phases[0].max_tokens must be"},
        {"{" A1 ",\"phases\":[{\"whisper\":[\"a\"]}]}", "phases[0].whisper must be a pair"},
        {"{" A1 ",\"phases\":[{\"whisper\":[\"a\",\"z\"]}]}", "whisper[1] 'z' is not the id"},
        {"{" A1 ",\"phases\":[{\"whisper\":[\"a\",\"a\"]}]}", "names 'a' twice"},
        {"{" A1 ",\"phases\":[{\"whisper\":[\"a\",\"b\"],\"topology\":\"broadcast\"}]}",
         "whisper goes with topology whisper only"},
        {"{" A1 ",\"phases\":[{\"whisper\":[\"a\",\"b\"],\"rounds\":2}]}",
         "phases[0].rounds: a whisper phase runs turns"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scenario *s = (scenario *)1;
        sem_err err = {0};
        sem_status st = scenario_parse(bad[i].text, "bad.json", &s, &err);
        if (st != SEM_EINVAL || s != NULL || !strstr(sem_err_text(&err), bad[i].needle) ||
            strncmp(sem_err_text(&err), "bad.json: ", 10) != 0)
            fail_msg("case %zu (%s): %d %s", i, bad[i].text, st, sem_err_text(&err));
    }
}

static void the_examples_parse(void **state)
{
    (void)state;
    static const char *const files[] = {SEM_EXAMPLES "/debate.json",
                                        SEM_EXAMPLES "/standup.json"};
    for (size_t i = 0; i < 2; i++) {
        char *text;
        size_t len;
        scenario *s;
        sem_err err = {0};
        assert_int_equal(cli_read_file(files[i], &text, &len, &err), SEM_OK);
        if (scenario_parse(text, files[i], &s, &err) != SEM_OK)
            fail_msg("%s", sem_err_text(&err));
        assert_true(scenario_phase_count(s) >= 2);
        scenario_free(s);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_scenario_gives_its_phases),
        cmocka_unit_test(bad_scenarios_name_the_field),
        cmocka_unit_test(the_examples_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
