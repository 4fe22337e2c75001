/*
 * Allocation failures in the chat template layer, over the real templates
 * of tests/data/chat and their cases: parsing a template (with its
 * capability probes) and rendering every case, with the k-th allocation
 * failing for every k. A parse either fails with SEM_ENOMEM or gives a
 * template that renders every case exactly as one parsed with memory to
 * spare (a probe that ran out of memory must not pass for a template
 * without that capability); a render either fails with SEM_ENOMEM or gives
 * exactly the prompt it gives with memory to spare (tool-call arguments
 * are not passed as a string because parsing them ran out of memory).
 * The same for tool conversations rendered in the generic convention
 * (templates without tools of their own). Nothing leaks (LSan in the
 * ASan build).
 */
#include "../../test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapters/template/chat_template.h"
#include "alloc_fail.h"

#define NOW ((time_t)1736942400) /* 2025-01-15 12:00:00 UTC, as the golden cases */

/* Renders case c; the prompt, or NULL with *st the failure. */
static char *render_case(const chat_template *t, const json_t *c, sem_status *st, sem_err *err)
{
    chat_render_opts o = {
        .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
        .bos_token = "<s>",
        .eos_token = "</s>",
        .add_bos = true,
        .now = NOW,
    };
    char *out = NULL;
    *st = chat_template_render(t, json_object_get(c, "messages"), json_object_get(c, "tools"),
                               json_object_get(c, "chat_template_kwargs"), &o, &out, err);
    return *st == SEM_OK ? out : NULL;
}

/* Each case's prompt (or failure) with memory to spare. */
typedef struct reference {
    size_t n;
    sem_status st[16];
    char *prompt[16];
} reference;

static void assert_renders_as(const chat_template *t, const json_t *cases, const reference *ref,
                              const char *what, uint64_t k)
{
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        sem_status st;
        sem_err err = {0};
        char *out = render_case(t, c, &st, &err);
        if (st != ref->st[i] || (out && strcmp(out, ref->prompt[i]) != 0))
            fail_msg("%s, parsed with allocation %llu failing, renders case %zu differently: "
                     "%s %s",
                     what, (unsigned long long)k, i, sem_status_name(st), out ? out : err.detail);
        free(out);
    }
}

static void one_template(const char *stem, uint64_t *parse_allocs, uint64_t *render_allocs)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stem);
    char *source = test_read_text(path);
    snprintf(path, sizeof path, "%s/chat/%s.json", SEM_TEST_DATA, stem);
    json_t *cases = json_load_file(path, 0, NULL);
    assert_non_null(cases);
    assert_true(json_array_size(cases) <= 16);

    sem_err err = {0};
    chat_template *t = chat_template_parse(source, &err);
    if (!t)
        fail_msg("%s: %s", stem, err.detail);
    reference ref = {.n = json_array_size(cases)};
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) ref.prompt[i] = render_case(t, c, &ref.st[i], &err);

    /* Parsing, probes included. */
    for (uint64_t k = 1;; k++) {
        alloc_fail_arm(k, 0);
        chat_template *u = chat_template_parse(source, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!u) {
            if (!hit || err.status != SEM_ENOMEM)
                fail_msg("%s, allocation %llu failing: parse gave %s (%s)", stem,
                         (unsigned long long)k, sem_status_name(err.status), err.detail);
            continue;
        }
        assert_int_equal(chat_template_supports_system_role(u),
                         chat_template_supports_system_role(t));
        assert_int_equal(chat_template_native_tools(u), chat_template_native_tools(t));
        assert_int_equal(chat_template_syntax(u).tools, chat_template_syntax(t).tools);
        assert_renders_as(u, cases, &ref, stem, k);
        chat_template_free(u);
        if (!hit) {
            *parse_allocs += k - 1;
            break;
        }
    }

    /* Rendering each case. */
    json_array_foreach(cases, i, c)
    {
        for (uint64_t k = 1;; k++) {
            sem_status st;
            alloc_fail_arm(k, 0);
            char *out = render_case(t, c, &st, &err);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (!(hit && st == SEM_ENOMEM) &&
                (st != ref.st[i] || (out && strcmp(out, ref.prompt[i]) != 0)))
                fail_msg("%s case %zu, allocation %llu failing: %s %s", stem, i,
                         (unsigned long long)k, sem_status_name(st), out ? out : err.detail);
            free(out);
            if (!hit) {
                *render_allocs += k - 1;
                break;
            }
        }
    }
    for (i = 0; i < ref.n; i++)
        free(ref.prompt[i]);
    chat_template_free(t);
    json_decref(cases);
    free(source);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void every_template_and_case_fails_cleanly(void **state)
{
    (void)state;
    DIR *d = opendir(SEM_TEST_DATA "/chat");
    assert_non_null(d);
    char *stems[32];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 32) {
        size_t len = strlen(de->d_name);
        if (len > 6 && strcmp(de->d_name + len - 6, ".jinja") == 0)
            stems[n++] = strndup(de->d_name, len - 6);
    }
    closedir(d);
    qsort(stems, n, sizeof *stems, by_name);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        uint64_t parse = 0, render = 0;
        one_template(stems[i], &parse, &render);
        printf("%s: %llu allocations to parse, %llu to render its cases\n", stems[i],
               (unsigned long long)parse, (unsigned long long)render);
        free(stems[i]);
    }
}

/* Tools, several calls, results one after another and a user message
 * after them: every part of the generic rewrite. */
static const char GENERIC_CASE[] =
    "{\"add_generation_prompt\": true, \"tools\": [{\"type\": \"function\", \"function\": "
    "{\"name\": \"get_weather\", \"description\": \"Weather.\", \"parameters\": {\"type\": "
    "\"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}],"
    "\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"Two cities\"},"
    "{\"role\": \"assistant\", \"content\": \"Looking.\", \"tool_calls\": ["
    "{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
    "\"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}},"
    "{\"id\": \"c2\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
    "\"arguments\": {\"city\": \"Rome\"}}}]},"
    "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"{\\\"t\\\": 22}\"},"
    "{\"role\": \"tool\", \"content\": [{\"type\": \"text\", \"text\": \"sunny\"}]},"
    "{\"role\": \"user\", \"content\": \"Thanks\"}]}";

static void generic_tool_rendering_fails_cleanly(void **state)
{
    (void)state;
    json_t *c = json_loads(GENERIC_CASE, 0, NULL);
    assert_non_null(c);
    const char *stems[] = {"google-gemma-3-it", "google-gemma-2-2b-it",
                           "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"};
    for (size_t s = 0; s < sizeof stems / sizeof *stems; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stems[s]);
        char *source = test_read_text(path);
        sem_err err = {0};
        chat_template *t = chat_template_parse(source, &err);
        assert_non_null(t);
        assert_false(chat_template_native_tools(t));
        sem_status ref_st;
        char *ref = render_case(t, c, &ref_st, &err);
        if (!ref)
            fail_msg("%s: %s", stems[s], err.detail);
        assert_contains(ref, "{\"tool_calls\": [");
        for (uint64_t k = 1;; k++) {
            sem_status st;
            alloc_fail_arm(k, 0);
            char *out = render_case(t, c, &st, &err);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (!(hit && st == SEM_ENOMEM) && (st != SEM_OK || strcmp(out, ref) != 0))
                fail_msg("%s, allocation %llu failing: %s %s", stems[s], (unsigned long long)k,
                         sem_status_name(st), out ? out : err.detail);
            free(out);
            if (!hit)
                break;
        }
        free(ref);
        chat_template_free(t);
        free(source);
    }
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_template_and_case_fails_cleanly),
        cmocka_unit_test(generic_tool_rendering_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
