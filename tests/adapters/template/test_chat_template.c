/*
 * Specification of chat_template.h: every conversation in tests/data/chat
 * renders byte for byte as llama.cpp's server rendered it (the golden
 * files), under the same conditions: bos_token "<s>", eos_token "</s>",
 * add_bos, and the clock at 2025-01-15 12:00:00 UTC. Then the built-in
 * templates against the same goldens, family detection, the fallback, and
 * the request errors.
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/template/chat_template.h"

#define GOLDEN_NOW ((time_t)1736942400) /* 2025-01-15 12:00:00 UTC */

static json_t *golden_cases(const char *stem)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.json", SEM_TEST_DATA, stem);
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    if (!cases)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    return cases;
}

static chat_render_opts golden_opts(bool add_generation_prompt)
{
    chat_render_opts o = {
        .add_generation_prompt = add_generation_prompt,
        .bos_token = "<s>",
        .eos_token = "</s>",
        .add_bos = true,
        .add_eos = false,
        .now = GOLDEN_NOW,
    };
    return o;
}

/* Prints where got and want first differ. */
static void report_diff(const char *what, const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    print_error("%s: first difference at byte %zu\n  got:  ...%.80s\n  want: ...%.80s\n", what, i,
                got + from, want + from);
}

/* Renders every case of a golden file with `source` (the file's own
 * template or a built-in); skip_tools leaves out cases that need tools.
 * Returns the number of mismatches. */
static int check_cases(const char *stem, const char *source, const char *label, bool skip_tools,
                       const char *const *skip_names)
{
    sem_err err = {0};
    chat_template *t = chat_template_parse(source, &err);
    if (!t)
        fail_msg("%s: %s", label, err.detail);
    json_t *cases = golden_cases(stem);
    int failures = 0, checked = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const json_t *tools = json_object_get(c, "tools");
        if (skip_tools && (tools || strncmp(name, "tool", 4) == 0))
            continue;
        bool skip = false;
        for (size_t k = 0; skip_names && skip_names[k]; k++)
            skip |= strcmp(skip_names[k], name) == 0;
        if (skip)
            continue;
        chat_render_opts o = golden_opts(json_is_true(json_object_get(c, "add_generation_prompt")));
        char *out = NULL;
        sem_err e = {0};
        sem_status st = chat_template_render(t, json_object_get(c, "messages"), tools,
                                             json_object_get(c, "chat_template_kwargs"), &o, &out, &e);
        const char *want = json_string_value(json_object_get(c, "expected_prompt"));
        char what[256];
        snprintf(what, sizeof what, "%s / %s", label, name);
        if (st != SEM_OK) {
            print_error("%s: render failed: %s\n", what, e.detail);
            failures++;
        } else if (strcmp(out, want) != 0) {
            report_diff(what, out, want);
            failures++;
        }
        checked++;
        free(out);
    }
    json_decref(cases);
    chat_template_free(t);
    assert_true(checked > 0);
    return failures;
}

/* ---------------------------------------------------------------- the model templates */

static const char *const STEMS[] = {
    "meta-llama-Llama-3.1-8B-Instruct",
    "meta-llama-Llama-3.2-3B-Instruct",
    "Qwen-Qwen2.5-7B-Instruct",
    "Qwen-Qwen3-0.6B",
    "google-gemma-2-2b-it",
    "google-gemma-3-it",
    "mistralai-Mistral-Nemo-Instruct-2407",
    "microsoft-Phi-3.5-mini-instruct",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
    "HuggingFaceTB-SmolLM3-3B",
    "openai-gpt-oss-120b",
};

static void golden_template_renders_like_llama_cpp(void **state)
{
    const char *stem = *state;
    char *src = test_golden_template(stem);
    int failures = check_cases(stem, src, stem, false, NULL);
    free(src);
    assert_int_equal(failures, 0);
}

static void gemma2_has_no_system_role_and_gets_it_folded(void **state)
{
    (void)state;
    char *src = test_golden_template("google-gemma-2-2b-it");
    sem_err err = {0};
    chat_template *t = chat_template_parse(src, &err);
    assert_non_null(t);
    assert_false(chat_template_supports_system_role(t));
    chat_template_free(t);
    free(src);

    src = test_golden_template("google-gemma-3-it");
    t = chat_template_parse(src, &err);
    assert_non_null(t);
    assert_true(chat_template_supports_system_role(t));
    chat_template_free(t);
    free(src);
}

/* Folding as llama.cpp does it: the system text joins the next message
 * with "\n"; a lone system message is dropped. */
static void system_message_folds_into_the_next_message(void **state)
{
    (void)state;
    const char *src = "{% for m in messages %}{% if m.role == 'system' %}"
                      "{{ raise_exception('System role not supported') }}{% endif %}"
                      "{{ m.role }}:{{ m.content }};{% endfor %}";
    chat_template *t = chat_template_parse(src, NULL);
    assert_non_null(t);
    assert_false(chat_template_supports_system_role(t));
    chat_render_opts o = golden_opts(true);
    char *out = NULL;
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "system", "content", "be brief");
    assert_int_equal(chat_template_render(t, msgs, NULL, NULL, &o, &out, NULL), SEM_OK);
    assert_string_equal(out, "");
    free(out);
    json_decref(msgs);
    msgs = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief", "role",
                     "user", "content", "hi", "role", "assistant", "content", "yo");
    assert_int_equal(chat_template_render(t, msgs, NULL, NULL, &o, &out, NULL), SEM_OK);
    assert_string_equal(out, "user:be brief\nhi;assistant:yo;");
    free(out);
    json_decref(msgs);
    chat_template_free(t);
}

/* The Mistral Nemo template rejects tool-call ids that are not 9 characters:
 * the template's own message comes back. */
static void raise_exception_message_reaches_the_caller(void **state)
{
    (void)state;
    char *src = test_golden_template("mistralai-Mistral-Nemo-Instruct-2407");
    chat_template *t = chat_template_parse(src, NULL);
    assert_non_null(t);
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"},"
                              "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"x1\","
                              "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]",
                              0, NULL);
    assert_non_null(msgs);
    chat_render_opts o = golden_opts(true);
    char *out = NULL;
    sem_err err = {0};
    assert_int_equal(chat_template_render(t, msgs, NULL, NULL, &o, &out, &err), SEM_EINVAL);
    assert_null(out);
    assert_contains(err.detail, "Tool call IDs should be alphanumeric strings with length 9!");
    assert_contains(err.detail, "raise_exception");
    json_decref(msgs);

    /* Alternation errors too. */
    msgs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "user", "content", "a", "role", "user", "content", "b");
    assert_int_equal(chat_template_render(t, msgs, NULL, NULL, &o, &out, &err), SEM_EINVAL);
    assert_contains(err.detail, "conversation roles must alternate");
    json_decref(msgs);
    chat_template_free(t);
    free(src);
}

/* ---------------------------------------------------------------- built-ins */

typedef struct builtin_case {
    const char *name;
    const char *stem;
    const char *const *skip; /* golden cases that differ by design */
} builtin_case;

static const char *const CHATML_SKIP[] = {"single_user", NULL}; /* Qwen 2.5 adds its own system prompt */

static const builtin_case BUILTIN_CASES[] = {
    {"llama3", "meta-llama-Llama-3.1-8B-Instruct", NULL},
    {"llama3", "meta-llama-Llama-3.2-3B-Instruct", NULL},
    {"chatml", "Qwen-Qwen2.5-7B-Instruct", CHATML_SKIP},
    {"qwen3", "Qwen-Qwen3-0.6B", NULL},
    {"gemma", "google-gemma-3-it", NULL},
    {"mistral", "mistralai-Mistral-Nemo-Instruct-2407", NULL},
    {"phi3", "microsoft-Phi-3.5-mini-instruct", NULL},
    {"deepseek-r1", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", NULL},
    {"smollm3", "HuggingFaceTB-SmolLM3-3B", NULL},
    {"gpt-oss", "openai-gpt-oss-120b", NULL},
};

static void builtins_render_like_the_family_templates(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof BUILTIN_CASES / sizeof *BUILTIN_CASES; i++) {
        const builtin_case *bc = &BUILTIN_CASES[i];
        const char *src = chat_template_builtin(bc->name);
        assert_non_null(src);
        char label[128];
        snprintf(label, sizeof label, "builtin %s vs %s", bc->name, bc->stem);
        failures += check_cases(bc->stem, src, label, true, bc->skip);
    }
    assert_int_equal(failures, 0);
}

static void every_builtin_renders_a_conversation(void **state)
{
    (void)state;
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
                             "Be brief.", "role", "user", "content", "Hi", "role", "assistant", "content",
                             "Hello!", "role", "user", "content", "Bye");
    for (const char *const *n = chat_template_builtin_names(); *n; n++) {
        sem_err err = {0};
        chat_template *t = chat_template_parse(chat_template_builtin(*n), &err);
        if (!t)
            fail_msg("builtin %s: %s", *n, err.detail);
        assert_string_equal(chat_template_detect(chat_template_builtin(*n)), *n);
        chat_render_opts o = golden_opts(true);
        char *out = NULL;
        if (chat_template_render(t, msgs, NULL, NULL, &o, &out, &err) != SEM_OK)
            fail_msg("builtin %s: %s", *n, err.detail);
        assert_contains(out, "Hi");
        assert_contains(out, "Hello!");
        assert_contains(out, "Bye");
        if (strcmp(*n, "gemma") != 0 && strcmp(*n, "mistral") != 0)
            assert_contains(out, "Be brief.");
        free(out);
        chat_template_free(t);
    }
    json_decref(msgs);
    assert_null(chat_template_builtin("no-such-template"));
    assert_null(chat_template_builtin(NULL));
}

static void detect_names_the_family_of_real_templates(void **state)
{
    (void)state;
    static const struct {
        const char *stem, *family;
    } want[] = {
        {"meta-llama-Llama-3.1-8B-Instruct", "llama3"},
        {"meta-llama-Llama-3.2-3B-Instruct", "llama3"},
        {"Qwen-Qwen2.5-7B-Instruct", "chatml"},
        {"Qwen-Qwen3-0.6B", "qwen3"},
        {"google-gemma-2-2b-it", "gemma"},
        {"google-gemma-3-it", "gemma"},
        {"mistralai-Mistral-Nemo-Instruct-2407", "mistral"},
        {"microsoft-Phi-3.5-mini-instruct", "phi3"},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "deepseek-r1"},
        {"HuggingFaceTB-SmolLM3-3B", "smollm3"},
        {"openai-gpt-oss-120b", "gpt-oss"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *src = test_golden_template(want[i].stem);
        const char *got = chat_template_detect(src);
        if (!got || strcmp(got, want[i].family) != 0)
            fail_msg("%s: detected %s, want %s", want[i].stem, got ? got : "(null)", want[i].family);
        free(src);
    }
    assert_null(chat_template_detect("{{ messages }}"));
    assert_null(chat_template_detect(NULL));
}

/* ---------------------------------------------------------------- fallback */

static void missing_or_broken_template_falls_back_to_chatml(void **state)
{
    (void)state;
    sem_err warning = {0}, err = {0};
    chat_template *t = chat_template_for_model(NULL, &warning, &err);
    assert_non_null(t);
    assert_int_equal(warning.status, SEM_ENOTFOUND);
    assert_contains(warning.detail, "chatml");
    assert_string_equal(chat_template_source(t), chat_template_builtin("chatml"));
    chat_template_free(t);

    t = chat_template_for_model("{% for m in messages %}{{ m.content }", &warning, &err);
    assert_non_null(t);
    assert_int_equal(warning.status, SEM_EINVAL);
    assert_contains(warning.detail, "line 1");
    assert_contains(warning.detail, "chatml");
    chat_template_free(t);

    t = chat_template_for_model("{% include 'x' %}", &warning, &err);
    assert_non_null(t);
    assert_int_equal(warning.status, SEM_EUNSUPPORTED);
    chat_template_free(t);

    t = chat_template_for_model(chat_template_builtin("gemma"), &warning, &err);
    assert_non_null(t);
    assert_int_equal(warning.status, SEM_OK);
    chat_template_free(t);
}

/* ---------------------------------------------------------------- request handling */

static char *render_with(const char *source, const char *messages_json, const json_t *tools,
                         const json_t *kwargs, chat_render_opts o, sem_status want, sem_err *err)
{
    chat_template *t = chat_template_parse(source, err);
    if (!t)
        fail_msg("parse: %s", err->detail);
    json_t *msgs = json_loads(messages_json, 0, NULL);
    assert_non_null(msgs);
    char *out = NULL;
    sem_status st = chat_template_render(t, msgs, tools, kwargs, &o, &out, err);
    if (st != want)
        fail_msg("status %s, want %s: %s", sem_status_name(st), sem_status_name(want), err->detail);
    json_decref(msgs);
    chat_template_free(t);
    return out;
}

static void malformed_requests_name_the_field(void **state)
{
    (void)state;
    const char *src = chat_template_builtin("chatml");
    chat_render_opts o = golden_opts(true);
    sem_err err = {0};
    render_with(src, "[{\"content\":\"hi\"}]", NULL, NULL, o, SEM_EREQUEST, &err);
    assert_contains(err.detail, "messages[0].role");
    render_with(src, "[{\"role\":\"user\",\"content\":\"a\"}, 5]", NULL, NULL, o, SEM_EREQUEST, &err);
    assert_contains(err.detail, "messages[1]");
    render_with(src, "[{\"role\":\"user\",\"content\":7}]", NULL, NULL, o, SEM_EREQUEST, &err);
    assert_contains(err.detail, "messages[0].content");
    render_with(src, "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]", NULL,
                NULL, o, SEM_EUNSUPPORTED, &err);
    assert_contains(err.detail, "image_url");
    json_t *bad_tools = json_loads("[{\"type\":\"retrieval\"}]", 0, NULL);
    render_with(src, "[{\"role\":\"user\",\"content\":\"a\"}]", bad_tools, NULL, o, SEM_EREQUEST, &err);
    assert_contains(err.detail, "tools[0].type");
    json_decref(bad_tools);

    chat_template *t = chat_template_parse(src, NULL);
    char *out = NULL;
    json_t *obj = json_object();
    assert_int_equal(chat_template_render(t, obj, NULL, NULL, &o, &out, &err), SEM_EREQUEST);
    assert_contains(err.detail, "messages must be a list");
    json_decref(obj);
    chat_template_free(t);
}

static void content_parts_become_text_for_string_templates(void **state)
{
    (void)state;
    sem_err err = {0};
    char *out = render_with(chat_template_builtin("chatml"),
                            "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
                            "{\"type\":\"text\",\"text\":\"two\"}]}]",
                            NULL, NULL, golden_opts(true), SEM_OK, &err);
    assert_string_equal(out, "<|im_start|>user\none\ntwo<|im_end|>\n<|im_start|>assistant\n");
    free(out);

    /* Gemma 3 reads parts itself: they are passed through. */
    char *src = test_golden_template("google-gemma-3-it");
    out = render_with(src, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\" one \"}]}]", NULL,
                      NULL, golden_opts(true), SEM_OK, &err);
    assert_string_equal(out, "<start_of_turn>user\none<end_of_turn>\n<start_of_turn>model\n");
    free(out);
    free(src);
}

static void null_content_developer_role_and_kwargs(void **state)
{
    (void)state;
    sem_err err = {0};
    /* null content is "", developer is system, kwargs override defaults. */
    char *out = render_with(chat_template_builtin("chatml"),
                            "[{\"role\":\"developer\",\"content\":\"rules\"},"
                            "{\"role\":\"assistant\",\"content\":null}]",
                            NULL, NULL, golden_opts(false), SEM_OK, &err);
    assert_string_equal(out, "<|im_start|>system\nrules<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n");
    free(out);

    json_t *kw = json_pack("{s:b}", "enable_thinking", 0);
    out = render_with(chat_template_builtin("qwen3"), "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, kw,
                      golden_opts(true), SEM_OK, &err);
    assert_string_equal(out, "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    free(out);
    json_decref(kw);

    kw = json_pack("{s:s}", "date_string", "01 Feb 2030");
    out = render_with(chat_template_builtin("llama3"), "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, kw,
                      golden_opts(false), SEM_OK, &err);
    assert_contains(out, "Today Date: 01 Feb 2030\n");
    free(out);
    json_decref(kw);
}

static void bos_and_eos_are_stripped_only_when_the_tokenizer_adds_them(void **state)
{
    (void)state;
    const char *src = "{{ bos_token }}x{{ eos_token }}";
    sem_err err = {0};
    chat_render_opts o = golden_opts(false);
    char *out = render_with(src, "[]", NULL, NULL, o, SEM_OK, &err);
    assert_string_equal(out, "x</s>");
    free(out);
    o.add_eos = true;
    out = render_with(src, "[]", NULL, NULL, o, SEM_OK, &err);
    assert_string_equal(out, "x");
    free(out);
    o.add_bos = o.add_eos = false;
    out = render_with(src, "[]", NULL, NULL, o, SEM_OK, &err);
    assert_string_equal(out, "<s>x</s>");
    free(out);
}

static void tool_arguments_that_are_not_json_stay_strings(void **state)
{
    (void)state;
    sem_err err = {0};
    /* A template that renders tools and calls itself (the probes see the
     * tool's name): tool calls reach it as the normalisation leaves them. */
    const char *src = "{% for t in tools %}{{ t.function.name }}{% endfor %}"
                      "{% for m in messages %}{% for c in m.tool_calls %}"
                      "{{ c.function.name }}:{{ c.function.arguments is string }}:"
                      "{{ c.function.arguments | tojson }};"
                      "{% endfor %}{% endfor %}";
    char *out = render_with(src,
                            "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                            "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": 1}\"}},"
                            "{\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"not json\"}}]}]",
                            NULL, NULL, golden_opts(false), SEM_OK, &err);
    assert_string_equal(out, "f:False:{\"a\": 1};g:True:\"not json\";");
    free(out);
}

static void a_template_renders_from_many_threads(void **state);

int main(void)
{
    struct CMUnitTest tests[sizeof STEMS / sizeof *STEMS + 16];
    size_t n = 0;
    for (size_t i = 0; i < sizeof STEMS / sizeof *STEMS; i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(golden_template_renders_like_llama_cpp,
                                                                 (void *)STEMS[i]);
        tests[n].name = STEMS[i];
        n++;
    }
    const struct CMUnitTest more[] = {
        cmocka_unit_test(gemma2_has_no_system_role_and_gets_it_folded),
        cmocka_unit_test(system_message_folds_into_the_next_message),
        cmocka_unit_test(raise_exception_message_reaches_the_caller),
        cmocka_unit_test(builtins_render_like_the_family_templates),
        cmocka_unit_test(every_builtin_renders_a_conversation),
        cmocka_unit_test(detect_names_the_family_of_real_templates),
        cmocka_unit_test(missing_or_broken_template_falls_back_to_chatml),
        cmocka_unit_test(malformed_requests_name_the_field),
        cmocka_unit_test(content_parts_become_text_for_string_templates),
        cmocka_unit_test(null_content_developer_role_and_kwargs),
        cmocka_unit_test(bos_and_eos_are_stripped_only_when_the_tokenizer_adds_them),
        cmocka_unit_test(tool_arguments_that_are_not_json_stay_strings),
        cmocka_unit_test(a_template_renders_from_many_threads),
    };
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        tests[n++] = more[i];
    return _cmocka_run_group_tests("chat_template", tests, n, NULL, NULL);
}

/* ---------------------------------------------------------------- threads */

#include <pthread.h>

typedef struct thread_job {
    const chat_template *t;
    const json_t *messages;
    const char *want;
    int mismatches;
} thread_job;

static void *render_many(void *arg)
{
    thread_job *job = arg;
    for (int k = 0; k < 50; k++) {
        chat_render_opts o = golden_opts(true);
        char *out = NULL;
        if (chat_template_render(job->t, job->messages, NULL, NULL, &o, &out, NULL) != SEM_OK ||
            strcmp(out, job->want) != 0)
            job->mismatches++;
        free(out);
    }
    return NULL;
}

/* One parsed template, four threads rendering it at once: same output. */
static void a_template_renders_from_many_threads(void **state)
{
    (void)state;
    char *src = test_golden_template("openai-gpt-oss-120b");
    chat_template *t = chat_template_parse(src, NULL);
    assert_non_null(t);
    json_t *cases = golden_cases("openai-gpt-oss-120b");
    json_t *c = json_array_get(cases, 2); /* multi_turn */
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){t, json_object_get(c, "messages"),
                               json_string_value(json_object_get(c, "expected_prompt")), 0};
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    json_decref(cases);
    chat_template_free(t);
    free(src);
}
