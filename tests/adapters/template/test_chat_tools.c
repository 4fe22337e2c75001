/*
 * Specification of tool calling in chat_template.h and chat_generic.h:
 * which templates render tools themselves, how an assistant's tool call
 * renders in each format (the bytes the model is made to write), and the
 * generic convention for templates without tools: the tools in the system
 * message, calls as {"tool_calls": [...]}, results as user turns that keep
 * the roles alternating.
 *
 * The round trip an agent depends on: the prompt of one turn, followed by
 * the call the model wrote, is the start of the next turn's prompt.
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/chat/chat_syntax.h"
#include "adapters/template/chat_generic.h"
#include "adapters/template/chat_template.h"

#define GOLDEN_NOW ((time_t)1736942400) /* 2025-01-15 12:00:00 UTC */

static chat_template *parse_golden(const char *stem)
{
    char *src = test_golden_template(stem);
    sem_err err = {0};
    chat_template *t = chat_template_parse(src, &err);
    if (!t)
        fail_msg("%s: %s", stem, err.detail);
    free(src);
    return t;
}

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a "
    "city.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]}}}]";

/* Renders messages (JSON text) with TOOLS under the golden conditions. */
static char *render(const chat_template *t, const char *messages, bool with_tools, bool gen,
                    const char *kwargs)
{
    json_t *msgs = json_loads(messages, 0, NULL);
    json_t *tools = with_tools ? json_loads(TOOLS, 0, NULL) : NULL;
    json_t *kw = kwargs ? json_loads(kwargs, 0, NULL) : NULL;
    assert_non_null(msgs);
    chat_render_opts o = {.add_generation_prompt = gen, .bos_token = "<s>", .eos_token = "</s>",
                          .add_bos = true, .now = GOLDEN_NOW};
    char *out = NULL;
    sem_err err = {0};
    if (chat_template_render(t, msgs, tools, kw, &o, &out, &err) != SEM_OK)
        fail_msg("render: %s", err.detail);
    json_decref(msgs);
    json_decref(tools);
    json_decref(kw);
    return out;
}

/* ---------------------------------------------------------------- which templates are native */

typedef struct golden_tools {
    const char *stem;
    bool native;              /* renders tools and calls itself */
    prompt_tool_format tools; /* chat_template_syntax().tools */
} golden_tools;

static const golden_tools GOLDEN[] = {
    {"meta-llama-Llama-3.1-8B-Instruct", true, PROMPT_TOOLS_LLAMA3},
    {"meta-llama-Llama-3.2-3B-Instruct", true, PROMPT_TOOLS_LLAMA3},
    {"Qwen-Qwen2.5-7B-Instruct", true, PROMPT_TOOLS_HERMES},
    {"Qwen-Qwen3-0.6B", true, PROMPT_TOOLS_HERMES},
    {"mistralai-Mistral-Nemo-Instruct-2407", true, PROMPT_TOOLS_MISTRAL},
    {"openai-gpt-oss-120b", true, PROMPT_TOOLS_GENERIC}, /* harmony: rendered, not parsed */
    {"google-gemma-2-2b-it", false, PROMPT_TOOLS_GENERIC},
    {"google-gemma-3-it", false, PROMPT_TOOLS_GENERIC},
    {"microsoft-Phi-3.5-mini-instruct", false, PROMPT_TOOLS_GENERIC},
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", false, PROMPT_TOOLS_GENERIC},
    {"HuggingFaceTB-SmolLM3-3B", false, PROMPT_TOOLS_GENERIC},
};
#define N_GOLDEN (sizeof GOLDEN / sizeof *GOLDEN)

static void probes_find_the_templates_that_render_tools(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_GOLDEN; i++) {
        chat_template *t = parse_golden(GOLDEN[i].stem);
        if (chat_template_native_tools(t) != GOLDEN[i].native)
            fail_msg("%s: native tools %d, want %d", GOLDEN[i].stem, chat_template_native_tools(t),
                     GOLDEN[i].native);
        prompt_syntax s = chat_template_syntax(t);
        if (s.tools != GOLDEN[i].tools)
            fail_msg("%s: syntax %s, want %s", GOLDEN[i].stem, chat_syntax_tools_name(s.tools),
                     chat_syntax_tools_name(GOLDEN[i].tools));
        chat_template_free(t);
    }
    /* The built-ins render no tools: all generic, thinking where they think. */
    for (const char *const *n = chat_template_builtin_names(); *n; n++) {
        chat_template *t = chat_template_parse(chat_template_builtin(*n), NULL);
        assert_non_null(t);
        assert_false(chat_template_native_tools(t));
        prompt_syntax s = chat_template_syntax(t);
        assert_int_equal(s.tools, PROMPT_TOOLS_GENERIC);
        assert_true(s.parallel_calls);
        chat_template_free(t);
    }
    prompt_syntax none = chat_template_syntax(NULL);
    assert_int_equal(none.tools, PROMPT_TOOLS_GENERIC);
    assert_null(none.think_open);
}

/* ---------------------------------------------------------------- calls render canonically */

/* A call with arguments as a JSON string (OpenAI) and as an object (the
 * Anthropic adapter's tool_use input), written without spaces. */
static const char *const CALL_ARGS[] = {"\"{\\\"a\\\":1,\\\"b\\\":[true,null,\\\"x\\\"]}\"",
                                        "{\"a\":1,\"b\":[true,null,\"x\"]}"};

static char *conversation_with_call(const char *args, bool with_result)
{
    char *buf = malloc(1024);
    assert_non_null(buf);
    snprintf(buf, 1024,
             "[{\"role\":\"user\",\"content\":\"Go\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"abcDEF123\","
             "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":%s}}]}%s]",
             args,
             with_result ? ",{\"role\":\"tool\",\"tool_call_id\":\"abcDEF123\",\"content\":\"ok\"}" : "");
    return buf;
}

typedef struct call_form {
    const char *stem;
    const char *written; /* what the model is made to write for the call */
} call_form;

#define ARGS "{\"a\": 1, \"b\": [true, null, \"x\"]}"
static const call_form FORMS[] = {
    {"Qwen-Qwen2.5-7B-Instruct", "<tool_call>\n{\"name\": \"f\", \"arguments\": " ARGS "}\n</tool_call>"},
    {"Qwen-Qwen3-0.6B", "<tool_call>\n{\"name\": \"f\", \"arguments\": " ARGS "}\n</tool_call>"},
    {"meta-llama-Llama-3.1-8B-Instruct", "{\"name\": \"f\", \"parameters\": " ARGS "}"},
    {"meta-llama-Llama-3.2-3B-Instruct", "{\"name\": \"f\", \"parameters\": " ARGS "}"},
    {"mistralai-Mistral-Nemo-Instruct-2407",
     "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": " ARGS ", \"id\": \"abcDEF123\"}]"},
    {"google-gemma-2-2b-it", "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": " ARGS "}]}"},
    {"google-gemma-3-it", "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": " ARGS "}]}"},
    {"microsoft-Phi-3.5-mini-instruct", "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": " ARGS "}]}"},
    {"HuggingFaceTB-SmolLM3-3B", "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": " ARGS "}]}"},
};

/*
 * For each template that can carry tool calls: the prompt of turn one
 * (tools, the user's message, the assistant turn opened), followed by the
 * call as the model writes it, is exactly the start of turn two's prompt
 * (the same conversation with the call and its result): the agent's
 * tokens are all reused. Both forms of arguments render the same.
 */
static void a_call_renders_as_the_model_wrote_it(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof FORMS / sizeof *FORMS; i++) {
        chat_template *t = parse_golden(FORMS[i].stem);
        char *first = render(t, "[{\"role\":\"user\",\"content\":\"Go\"}]", true, true, NULL);
        size_t nf = strlen(first), nw = strlen(FORMS[i].written);
        for (size_t a = 0; a < 2; a++) {
            char *conv = conversation_with_call(CALL_ARGS[a], true);
            char *second = render(t, conv, true, true, NULL);
            if (strncmp(second, first, nf) != 0 || strncmp(second + nf, FORMS[i].written, nw) != 0)
                fail_msg("%s (arguments %s): turn one\n%s\nplus the call\n%s\nis not the start of "
                         "turn two\n%s",
                         FORMS[i].stem, a ? "object" : "string", first, FORMS[i].written, second);
            free(second);
            free(conv);
        }
        free(first);
        chat_template_free(t);
    }
}

/* DeepSeek R1 drops the reasoning from earlier turns (its template's own
 * choice), so its prompts are not prefixes; the call still renders as
 * written, in the assistant turn. */
static void deepseek_r1_renders_the_generic_call_in_its_assistant_turn(void **state)
{
    (void)state;
    chat_template *t = parse_golden("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B");
    char *conv = conversation_with_call(CALL_ARGS[0], true);
    char *out = render(t, conv, true, true, NULL);
    assert_contains(out, "<｜Assistant｜>{\"tool_calls\": [{\"name\": \"f\", \"arguments\": " ARGS
                         "}]}<｜end▁of▁sentence｜><｜User｜>{\"tool_response\": {\"name\": \"f\", "
                         "\"content\": \"ok\"}}<｜Assistant｜><think>\n");
    assert_null(strstr(out, "tool▁calls▁begin")); /* not its native call format */
    free(out);
    free(conv);
    chat_template_free(t);
}

/* Llama 3.1 renders one call per turn: two raise, and the syntax says so. */
static void llama3_takes_one_call_per_turn(void **state)
{
    (void)state;
    chat_template *t = parse_golden("meta-llama-Llama-3.1-8B-Instruct");
    assert_false(chat_template_syntax(t).parallel_calls);
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"Go\"},{\"role\":\"assistant\","
                              "\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},"
                              "{\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}]",
                              0, NULL);
    char *out = NULL;
    sem_err err = {0};
    assert_int_equal(chat_template_render(t, msgs, NULL, NULL, NULL, &out, &err), SEM_EINVAL);
    assert_contains(err.detail, "only supports single tool-calls");
    json_decref(msgs);
    chat_template_free(t);
}

/* ---------------------------------------------------------------- the generic convention */

/* Gemma 3: the tools section opens the first user turn (Gemma puts the
 * system text there), after the client's own system text. */
static void generic_tools_join_the_system_message(void **state)
{
    (void)state;
    chat_template *t = parse_golden("google-gemma-3-it");
    char *out = render(t,
                       "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]",
                       true, true, NULL);
    assert_string_equal(
        out,
        "<start_of_turn>user\nBe brief.\n\n# Tools\n\nYou may call one or more of these tools. Each is "
        "given as JSON: its name, what it does, and its parameters as a JSON Schema.\n\n"
        "{\"name\": \"get_weather\", \"description\": \"Weather of a city.\", \"parameters\": "
        "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
        "[\"city\"]}}\n"
        "\nTo call tools, answer with only this JSON and nothing else, one entry per call:\n"
        "{\"tool_calls\": [{\"name\": \"<name>\", \"arguments\": {<arguments>}}]}\n"
        "Each result comes back in a user message as "
        "{\"tool_response\": {\"name\": \"<name>\", \"content\": <result>}}.\n\n"
        "Weather in Paris?<end_of_turn>\n<start_of_turn>model\n");
    free(out);

    /* Without a system message, the section is the system text. */
    out = render(t, "[{\"role\":\"user\",\"content\":\"Hi\"}]", true, true, NULL);
    assert_true(strncmp(out, "<start_of_turn>user\n# Tools\n\n", 29) == 0);
    assert_contains(out, "}}.\n\nHi<end_of_turn>\n");
    free(out);

    /* Without tools nothing changes. */
    out = render(t, "[{\"role\":\"user\",\"content\":\"Hi\"}]", false, true, NULL);
    assert_string_equal(out, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    free(out);
    chat_template_free(t);
}

/* Gemma 2 has no system role: the section is folded into the first user turn. */
static void generic_tools_fold_where_there_is_no_system_role(void **state)
{
    (void)state;
    chat_template *t = parse_golden("google-gemma-2-2b-it");
    char *out = render(t, "[{\"role\":\"user\",\"content\":\"Hi\"}]", true, true, NULL);
    assert_true(strncmp(out, "<start_of_turn>user\n# Tools\n\n", 29) == 0);
    assert_contains(out, "\"name\": \"get_weather\"");
    assert_contains(out, "}}.\nHi<end_of_turn>\n<start_of_turn>model\n");
    free(out);
    chat_template_free(t);
}

/*
 * Several calls, their results one after another, then the user again:
 * on Gemma 3 (which raises unless user and model alternate) the results
 * and the user's message share one user turn; each result names its call
 * (by id, else by position); JSON results go in as JSON.
 */
static void generic_results_share_one_user_turn(void **state)
{
    (void)state;
    chat_template *t = parse_golden("google-gemma-3-it");
    char *out = render(
        t,
        "[{\"role\":\"user\",\"content\":\"Two cities\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
        "\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":{}}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"noon\"},"
        "{\"role\":\"tool\",\"content\":[{\"type\":\"text\",\"text\":\"{\\\"temp\\\":22}\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}]",
        false, true, NULL);
    assert_string_equal(
        out,
        "<start_of_turn>user\nTwo cities<end_of_turn>\n"
        "<start_of_turn>model\n{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": "
        "\"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]}<end_of_turn>\n"
        "<start_of_turn>user\n{\"tool_response\": {\"name\": \"get_time\", \"content\": \"noon\"}}\n"
        "{\"tool_response\": {\"name\": \"get_time\", \"content\": {\"temp\": 22}}}\n"
        "Thanks<end_of_turn>\n<start_of_turn>model\n");
    free(out);
    chat_template_free(t);
}

/* A tool message's own name wins; a result with no call to match has no
 * name; text before a call stays, on the line above it. */
static void generic_names_and_text_before_a_call(void **state)
{
    (void)state;
    chat_template *t = chat_template_parse(chat_template_builtin("chatml"), NULL);
    assert_non_null(t);
    char *out = render(t,
                       "[{\"role\":\"tool\",\"content\":\"orphan\"},"
                       "{\"role\":\"assistant\",\"content\":\"Let me look.\",\"tool_calls\":["
                       "{\"id\":\"x\",\"function\":{\"name\":\"f\",\"arguments\":\"not json\"}}]},"
                       "{\"role\":\"tool\",\"name\":\"mine\",\"tool_call_id\":\"x\",\"content\":\"[1, 2]\"}]",
                       false, false, NULL);
    assert_string_equal(out,
                        "<|im_start|>user\n{\"tool_response\": {\"content\": \"orphan\"}}<|im_end|>\n"
                        "<|im_start|>assistant\nLet me look.\n{\"tool_calls\": [{\"name\": \"f\", "
                        "\"arguments\": \"not json\"}]}<|im_end|>\n"
                        "<|im_start|>user\n{\"tool_response\": {\"name\": \"mine\", \"content\": [1, 2]}}"
                        "<|im_end|>\n");
    free(out);
    chat_template_free(t);
}

/* The text of calls on its own: exactly what the grammar makes the model
 * write, `{"tool_calls": [` + calls joined by ", " + `]}`. */
static void calls_text_is_the_canonical_json(void **state)
{
    (void)state;
    json_t *calls = json_loads("[{\"function\":{\"name\":\"a\",\"arguments\":{\"s\":\"é\\n\\\"\",\"n\":1.5,"
                               "\"e\":[],\"o\":{}}}},{\"function\":{\"name\":\"b\"}}]",
                               0, NULL);
    char *out = NULL;
    sem_err err = {0};
    assert_int_equal(chat_generic_calls_text(calls, &out, &err), SEM_OK);
    assert_string_equal(out, "{\"tool_calls\": [{\"name\": \"a\", \"arguments\": {\"s\": \"é\\n\\\"\", "
                             "\"n\": 1.5, \"e\": [], \"o\": {}}}, {\"name\": \"b\", \"arguments\": {}}]}");
    free(out);
    json_decref(calls);

    /* Arguments nested deeper than the serializer goes: an error, not a crash. */
    json_t *deep = json_array();
    for (int i = 0; i < 200; i++)
        deep = json_pack("[o]", deep);
    calls = json_pack("[{s:{s:s, s:o}}]", "function", "name", "a", "arguments", deep);
    assert_int_equal(chat_generic_calls_text(calls, &out, &err), SEM_EINVAL);
    assert_null(out);
    json_decref(calls);
}

/* A native template that renders tools and calls but drops tool messages
 * gets only its results rewritten. */
static void results_alone_are_rewritten_where_the_template_drops_them(void **state)
{
    (void)state;
    const char *src = "{% for t in tools %}[{{ t.function.name }}]{% endfor %}"
                      "{% for m in messages %}{% if m.role != 'tool' %}{{ m.role }}:{{ m.content }}"
                      "{% for c in m.tool_calls %}<{{ c.function.name }} {{ c.function.arguments | tojson }}>"
                      "{% endfor %};{% endif %}{% endfor %}";
    chat_template *t = chat_template_parse(src, NULL);
    assert_non_null(t);
    assert_true(chat_template_native_tools(t));
    char *conv = conversation_with_call(CALL_ARGS[1], true);
    char *out = render(t, conv, true, false, NULL);
    assert_string_equal(out, "[get_weather]user:Go;assistant:<f " ARGS ">;"
                             "user:{\"tool_response\": {\"name\": \"f\", \"content\": \"ok\"}};");
    free(out);
    free(conv);
    chat_template_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(probes_find_the_templates_that_render_tools),
        cmocka_unit_test(a_call_renders_as_the_model_wrote_it),
        cmocka_unit_test(deepseek_r1_renders_the_generic_call_in_its_assistant_turn),
        cmocka_unit_test(llama3_takes_one_call_per_turn),
        cmocka_unit_test(generic_tools_join_the_system_message),
        cmocka_unit_test(generic_tools_fold_where_there_is_no_system_role),
        cmocka_unit_test(generic_results_share_one_user_turn),
        cmocka_unit_test(generic_names_and_text_before_a_call),
        cmocka_unit_test(calls_text_is_the_canonical_json),
        cmocka_unit_test(results_alone_are_rewritten_where_the_template_drops_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
