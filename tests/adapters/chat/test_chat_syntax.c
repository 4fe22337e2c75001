/*
 * Specification of chat_syntax.h: the tool-call format, parallel calls
 * and think markers of every real template in tests/data/chat and of the
 * built-ins, read from their sources; the names of the formats; and
 * whether a rendered generation prompt leaves a think block open.
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/chat/chat_syntax.h"
#include "adapters/template/chat_template.h"

typedef struct want_syntax {
    const char *name; /* golden stem, or built-in name */
    prompt_tool_format tools;
    int parallel;
    int thinks; /* <think> ... </think> */
} want_syntax;

static void check(const char *label, const char *src, const want_syntax *w)
{
    prompt_syntax s = chat_syntax_detect(src);
    if (s.tools != w->tools)
        fail_msg("%s: tools %s, want %s", label, chat_syntax_tools_name(s.tools),
                 chat_syntax_tools_name(w->tools));
    if (s.parallel_calls != w->parallel)
        fail_msg("%s: parallel_calls %d, want %d", label, s.parallel_calls, w->parallel);
    if (w->thinks) {
        if (!s.think_open || !s.think_close)
            fail_msg("%s: no think markers", label);
        assert_string_equal(s.think_open, "<think>");
        assert_string_equal(s.think_close, "</think>");
    } else if (s.think_open || s.think_close) {
        fail_msg("%s: think markers %s, want none", label, s.think_open);
    }
}

static void every_golden_template_has_its_syntax(void **state)
{
    (void)state;
    static const want_syntax want[] = {
        {"meta-llama-Llama-3.1-8B-Instruct", PROMPT_TOOLS_LLAMA3, 0, 0},
        {"meta-llama-Llama-3.2-3B-Instruct", PROMPT_TOOLS_LLAMA3, 0, 0},
        {"Qwen-Qwen2.5-7B-Instruct", PROMPT_TOOLS_HERMES, 1, 0},
        {"Qwen-Qwen3-0.6B", PROMPT_TOOLS_HERMES, 1, 1},
        {"mistralai-Mistral-Nemo-Instruct-2407", PROMPT_TOOLS_MISTRAL, 1, 0},
        {"google-gemma-2-2b-it", PROMPT_TOOLS_GENERIC, 1, 0},
        {"google-gemma-3-it", PROMPT_TOOLS_GENERIC, 1, 0},
        {"microsoft-Phi-3.5-mini-instruct", PROMPT_TOOLS_GENERIC, 1, 0},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", PROMPT_TOOLS_GENERIC, 1, 1},
        {"HuggingFaceTB-SmolLM3-3B", PROMPT_TOOLS_GENERIC, 1, 1},
        {"openai-gpt-oss-120b", PROMPT_TOOLS_GENERIC, 1, 0}, /* channels, not markers */
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *src = test_golden_template(want[i].name);
        check(want[i].name, src, &want[i]);
        free(src);
    }
}

/* The built-ins render no tool calls of their own: generic everywhere. */
static void every_builtin_has_its_syntax(void **state)
{
    (void)state;
    static const want_syntax want[] = {
        {"llama3", PROMPT_TOOLS_GENERIC, 1, 0},   {"chatml", PROMPT_TOOLS_GENERIC, 1, 0},
        {"qwen3", PROMPT_TOOLS_GENERIC, 1, 1},    {"gemma", PROMPT_TOOLS_GENERIC, 1, 0},
        {"mistral", PROMPT_TOOLS_GENERIC, 1, 0},  {"phi3", PROMPT_TOOLS_GENERIC, 1, 0},
        {"deepseek-r1", PROMPT_TOOLS_GENERIC, 1, 1}, {"smollm3", PROMPT_TOOLS_GENERIC, 1, 1},
        {"gpt-oss", PROMPT_TOOLS_GENERIC, 1, 0},
    };
    size_t n = 0;
    for (const char *const *b = chat_template_builtin_names(); *b; b++)
        n++;
    assert_int_equal(n, sizeof want / sizeof *want);
    for (size_t i = 0; i < n; i++)
        check(want[i].name, chat_template_builtin(want[i].name), &want[i]);
}

static void markers_decide_and_nothing_is_generic(void **state)
{
    (void)state;
    const want_syntax generic = {"", PROMPT_TOOLS_GENERIC, 1, 0};
    check("NULL", NULL, &generic);
    check("empty", "", &generic);
    check("plain", "{{ messages }}", &generic);
    const want_syntax hermes = {"", PROMPT_TOOLS_HERMES, 1, 0};
    /* A Hermes template for a Llama model mentions both: Hermes wins. */
    check("hermes on llama", "<tool_call>{\"name\": .., \"parameters\": ..}<|eot_id|>", &hermes);
    const want_syntax llama = {"", PROMPT_TOOLS_LLAMA3, 0, 0};
    check("python tag", "{{ '<|python_tag|>' }}", &llama);
    /* One marker of a pair is not a think block. */
    check("open only", "{{ '<think>' }}", &generic);
    check("close only", "{{ '</think>' }}", &generic);

    assert_string_equal(chat_syntax_tools_name(PROMPT_TOOLS_GENERIC), "generic");
    assert_string_equal(chat_syntax_tools_name(PROMPT_TOOLS_HERMES), "hermes");
    assert_string_equal(chat_syntax_tools_name(PROMPT_TOOLS_LLAMA3), "llama3");
    assert_string_equal(chat_syntax_tools_name(PROMPT_TOOLS_MISTRAL), "mistral");
    assert_string_equal(chat_syntax_tools_name((prompt_tool_format)99), "generic");
}

static int ends(const prompt_syntax *s, const char *prompt)
{
    return chat_syntax_ends_in_thinking(s, prompt, strlen(prompt));
}

static void an_open_think_block_at_the_end_is_thinking(void **state)
{
    (void)state;
    prompt_syntax s = chat_syntax_detect("<think></think>");
    assert_true(ends(&s, "<｜Assistant｜><think>\n"));
    assert_true(ends(&s, "<think>"));
    assert_true(ends(&s, "x<think> \r\n\t\n"));
    /* Closed (thinking off), not at the end, or nothing at all. */
    assert_false(ends(&s, "<｜Assistant｜><think>\n</think>"));
    assert_false(ends(&s, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    assert_false(ends(&s, "<|im_start|>assistant\n"));
    assert_false(ends(&s, "<think>x"));
    assert_false(ends(&s, "think>"));
    assert_false(ends(&s, ""));
    assert_false(ends(&s, "\n\n"));
    assert_false(chat_syntax_ends_in_thinking(&s, NULL, 0));
    /* Only the first len bytes count. */
    assert_true(chat_syntax_ends_in_thinking(&s, "<think>\nmore", 8));
    /* Without markers nothing is thinking. */
    prompt_syntax none = chat_syntax_detect(NULL);
    assert_false(ends(&none, "<think>\n"));
    assert_false(chat_syntax_ends_in_thinking(NULL, "<think>", 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_golden_template_has_its_syntax),
        cmocka_unit_test(every_builtin_has_its_syntax),
        cmocka_unit_test(markers_decide_and_nothing_is_generic),
        cmocka_unit_test(an_open_think_block_at_the_end_is_thinking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
