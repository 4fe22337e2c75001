/*
 * test_model_prompts.c - the prompt port over a model: a conversation in
 * JSON text renders through the template and tokenizes; text that is not
 * a conversation is refused with a request error that says why, and the
 * port keeps working. The port's syntax is its template's, and a chat
 * says when the generation prompt leaves a think block open.
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/model/model.h"
#include "adapters/model/model_prompts.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"

static sem_status chat(prompt_port pp, const char *conv, int32_t **t, size_t *n, sem_err *err)
{
    return pp.ops->chat(pp.self, conv, strlen(conv), 1, t, n, NULL, err);
}

static void conversations_render_and_bad_text_is_refused(void **state)
{
    (void)state;
    sem_err err = {0};
    model *m = model_load(STORIES, &err);
    assert_non_null(m);
    model_prompts *mp = model_prompts_create(m, "chatml", 2048, NULL, &err);
    assert_non_null(mp);
    prompt_port pp = model_prompts_port(mp);
    int32_t *t = NULL;
    size_t n = 0, n_ok = 0;
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
    assert_int_equal(chat(pp, ok, &t, &n_ok, &err), SEM_OK);
    assert_true(n_ok > 5);
    free(t);
    const struct { const char *conv, *says; } bad[] = {
        {"{\"messages\":", "conversation: not a JSON object"},
        {"[1,2]", "conversation: not a JSON object"},
        {"{\"tools\":[]}", "messages: must be an array"},
        {"{\"messages\":{\"role\":\"user\"}}", "messages: must be an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = NULL;
        sem_err e = {0};
        assert_int_equal(chat(pp, bad[i].conv, &t, &n, &e), SEM_EREQUEST);
        assert_null(t);
        if (!strstr(e.detail, bad[i].says))
            fail_msg("%s: '%s' does not say '%s'", bad[i].conv, e.detail, bad[i].says);
    }
    /* Nothing was lost: the port renders the same prompt afterwards. */
    assert_int_equal(chat(pp, ok, &t, &n, &err), SEM_OK);
    assert_int_equal(n, n_ok);
    free(t);
    model_prompts_destroy(mp);
    model_free(m);
}

/* The prompts of a golden template (stem) or a built-in (name). */
static model_prompts *prompts_for(const model *m, const char *stem, const char *name)
{
    sem_err err = {0};
    model_prompts *mp;
    if (stem) {
        char *src = test_golden_template(stem);
        mp = model_prompts_create_source(m, src, 2048, &err);
        free(src);
    } else {
        mp = model_prompts_create(m, name, 2048, NULL, &err);
    }
    if (!mp)
        fail_msg("%s: %s", stem ? stem : name, err.detail);
    return mp;
}

static void the_syntax_is_the_templates(void **state)
{
    (void)state;
    sem_err err = {0};
    model *m = model_load(STORIES, &err);
    assert_non_null(m);
    static const struct {
        const char *stem, *name;
        prompt_tool_format tools;
        int parallel, thinks;
    } want[] = {
        {"Qwen-Qwen2.5-7B-Instruct", NULL, PROMPT_TOOLS_HERMES, 1, 0},
        {"Qwen-Qwen3-0.6B", NULL, PROMPT_TOOLS_HERMES, 1, 1},
        {"meta-llama-Llama-3.1-8B-Instruct", NULL, PROMPT_TOOLS_LLAMA3, 0, 0},
        {"mistralai-Mistral-Nemo-Instruct-2407", NULL, PROMPT_TOOLS_MISTRAL, 1, 0},
        {"google-gemma-3-it", NULL, PROMPT_TOOLS_GENERIC, 1, 0},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", NULL, PROMPT_TOOLS_GENERIC, 1, 1},
        {NULL, "deepseek-r1", PROMPT_TOOLS_GENERIC, 1, 1},
        {NULL, "chatml", PROMPT_TOOLS_GENERIC, 1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        model_prompts *mp = prompts_for(m, want[i].stem, want[i].name);
        prompt_port pp = model_prompts_port(mp);
        prompt_syntax s = pp.ops->syntax(pp.self);
        const char *label = want[i].stem ? want[i].stem : want[i].name;
        if (s.tools != want[i].tools || s.parallel_calls != want[i].parallel ||
            (s.think_open != NULL) != want[i].thinks)
            fail_msg("%s: tools %d parallel %d think %s", label, s.tools, s.parallel_calls,
                     s.think_open ? s.think_open : "(none)");
        model_prompts_destroy(mp);
    }
    /* A template text that does not parse is an error, not a fallback. */
    model_prompts *mp = model_prompts_create_source(m, "{% for m in messages %}", 2048, &err);
    assert_null(mp);
    assert_int_equal(err.status, SEM_EINVAL);
    assert_contains(err.detail, "line 1");
    assert_null(model_prompts_create_source(m, NULL, 2048, &err));
    model_free(m);
}

/* info.in_thinking after a chat with the generation prompt (kwargs: the
 * conversation's chat_template_kwargs, "" for none). */
static int in_thinking(prompt_port pp, const char *kwargs, int add_generation_prompt)
{
    char conv[256];
    snprintf(conv, sizeof conv, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]%s%s}",
             kwargs[0] ? ",\"chat_template_kwargs\":" : "", kwargs);
    int32_t *t = NULL;
    size_t n = 0;
    sem_err err = {0};
    prompt_chat_info info = {.in_thinking = -1};
    if (pp.ops->chat(pp.self, conv, strlen(conv), add_generation_prompt, &t, &n, &info, &err) != SEM_OK)
        fail_msg("chat: %s", err.detail);
    free(t);
    return info.in_thinking;
}

/*
 * DeepSeek R1 opens "<think>\n" in its generation prompt: the output starts
 * inside the block. Turned off, it closes it at once; Qwen 3 never opens it
 * in the prompt (the model does, or an empty one closes it). Without the
 * generation prompt nothing is open.
 */
static void a_prompt_that_opens_a_think_block_says_so(void **state)
{
    (void)state;
    sem_err err = {0};
    model *m = model_load(STORIES, &err);
    assert_non_null(m);
    static const struct {
        const char *stem, *name, *kwargs;
        int want;
    } cases[] = {
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", NULL, "", 1},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", NULL, "{\"enable_thinking\":false}", 0},
        {NULL, "deepseek-r1", "", 1},
        {NULL, "deepseek-r1", "{\"enable_thinking\":false}", 0},
        {"Qwen-Qwen3-0.6B", NULL, "{\"enable_thinking\":true}", 0},
        {"Qwen-Qwen3-0.6B", NULL, "{\"enable_thinking\":false}", 0},
        {NULL, "qwen3", "", 0},
        {NULL, "qwen3", "{\"enable_thinking\":false}", 0},
        {"HuggingFaceTB-SmolLM3-3B", NULL, "{\"enable_thinking\":false}", 0},
        {"google-gemma-3-it", NULL, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        model_prompts *mp = prompts_for(m, cases[i].stem, cases[i].name);
        prompt_port pp = model_prompts_port(mp);
        int got = in_thinking(pp, cases[i].kwargs, 1);
        if (got != cases[i].want)
            fail_msg("%s %s: in_thinking %d, want %d", cases[i].stem ? cases[i].stem : cases[i].name,
                     cases[i].kwargs, got, cases[i].want);
        assert_int_equal(in_thinking(pp, cases[i].kwargs, 0), 0);
        /* info may be NULL. */
        int32_t *t = NULL;
        size_t n = 0;
        const char *conv = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
        assert_int_equal(pp.ops->chat(pp.self, conv, strlen(conv), 1, &t, &n, NULL, &err), SEM_OK);
        free(t);
        model_prompts_destroy(mp);
    }
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conversations_render_and_bad_text_is_refused),
        cmocka_unit_test(the_syntax_is_the_templates),
        cmocka_unit_test(a_prompt_that_opens_a_think_block_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
