/*
 * fuzz_chat_template.c - libFuzzer target: the chat template layer
 * (message normalisation, system folding, tools, the context, BOS/EOS
 * stripping) over real templates and fuzzed conversations, and over
 * fuzzed templates and a fixed conversation.
 *
 * An input that is JSON is a conversation: a list of messages, or an
 * object {"messages", "tools", "chat_template_kwargs",
 * "add_generation_prompt"} as in the cases of tests/data/chat. It is rendered
 * through every real template of tests/data/chat, as the golden tests
 * render them. Any other input is a template source: parsed (with its
 * capability probes) and, when it parses, rendered for a fixed
 * conversation with a system turn, a tool call and a tool result.
 *
 * A render either produces a NUL-terminated prompt within the output
 * limit or fails with a status that names a bad request, an unsupported
 * input or a template error, with a message; never an internal error.
 */
#include <dirent.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/template/chat_template.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TEMPLATES 32
#define OUTPUT_LIMIT (1u << 16)

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    FUZZ_CHECK(s && fread(s, 1, (size_t)n, f) == (size_t)n, "cannot read %s", path);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The real templates of tests/data/chat, parsed once. */
static size_t load_templates(chat_template **out)
{
    const char *dir = SEM_TEST_DATA "/chat";
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL, "cannot open %s", dir);
    char *names[MAX_TEMPLATES];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_TEMPLATES) {
        size_t len = strlen(de->d_name);
        if (len > 6 && strcmp(de->d_name + len - 6, ".jinja") == 0) {
            names[n] = malloc(strlen(dir) + len + 2);
            FUZZ_CHECK(names[n] != NULL, "out of memory");
            sprintf(names[n++], "%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char *src = read_text(names[i]);
        sem_err err = {0};
        out[i] = chat_template_parse(src, &err);
        FUZZ_CHECK(out[i] != NULL, "%s: %s", names[i], err.detail);
        free(src);
        free(names[i]);
    }
    FUZZ_CHECK(n > 0, "no templates in %s", dir);
    return n;
}

static chat_render_opts render_opts(int add_generation_prompt)
{
    chat_render_opts o = {.add_generation_prompt = add_generation_prompt,
                          .bos_token = "<s>",
                          .eos_token = "</s>",
                          .add_bos = true,
                          .now = 1736942400};
    o.limits.max_output_bytes = OUTPUT_LIMIT;
    o.limits.max_steps = 200000;
    o.limits.max_loop_iterations = 20000;
    o.limits.max_memory_bytes = 16u << 20;
    return o;
}

static void render(const chat_template *t, const json_t *messages, const json_t *tools,
                   const json_t *kwargs, int add_generation_prompt)
{
    chat_render_opts o = render_opts(add_generation_prompt);
    char *out = NULL;
    sem_err err = {0};
    sem_status st = chat_template_render(t, messages, tools, kwargs, &o, &out, &err);
    FUZZ_NOTE("  %s: %s", sem_status_name(st), st == SEM_OK ? out : err.detail);
    if (st == SEM_OK) {
        FUZZ_CHECK(out != NULL, "success without a prompt");
        FUZZ_CHECK(strlen(out) <= OUTPUT_LIMIT, "a prompt of %zu bytes", strlen(out));
        free(out);
        return;
    }
    FUZZ_CHECK(out == NULL, "a failed render returned a prompt");
    FUZZ_CHECK(st == SEM_EREQUEST || st == SEM_EUNSUPPORTED || st == SEM_EINVAL ||
                   st == SEM_ENOMEM || st == SEM_ETOOLARGE,
               "%s: %s", sem_status_name(st), err.detail);
    FUZZ_CHECK(err.detail[0] != '\0', "an error without a message");
}

static void conversation(const json_t *v)
{
    static chat_template *templates[MAX_TEMPLATES];
    static size_t n_templates;
    if (!n_templates)
        n_templates = load_templates(templates);
    const json_t *messages = v, *tools = NULL, *kwargs = NULL;
    int add = 1;
    if (json_is_object(v)) {
        messages = json_object_get(v, "messages");
        tools = json_object_get(v, "tools");
        kwargs = json_object_get(v, "chat_template_kwargs");
        add = !json_is_false(json_object_get(v, "add_generation_prompt"));
    }
    if (!json_is_array(messages))
        return; /* the HTTP readers check this much before rendering */
    for (size_t i = 0; i < n_templates; i++)
        render(templates[i], messages, tools, kwargs, add);
}

static void template_source(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    FUZZ_CHECK(src != NULL, "out of memory");
    memcpy(src, data, size);
    src[size] = '\0';
    sem_err err = {0};
    chat_template *t = chat_template_parse(src, &err);
    free(src);
    if (!t) {
        FUZZ_CHECK(err.status == SEM_EINVAL || err.status == SEM_EUNSUPPORTED ||
                       err.status == SEM_ENOMEM,
                   "parse: %s: %s", sem_status_name(err.status), err.detail);
        return;
    }
    json_t *messages = json_loads(
        "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        " {\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"}]},"
        " {\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "   \"type\":\"function\",\"function\":{\"name\":\"get\","
        "   \"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
        " {\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"12C\"},"
        " {\"role\":\"developer\",\"content\":\"Thanks.\"}]",
        0, NULL);
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get\","
                               " \"description\":\"weather\","
                               " \"parameters\":{\"type\":\"object\"}}}]",
                               0, NULL);
    FUZZ_CHECK(messages && tools, "the fixed conversation does not parse");
    render(t, messages, tools, NULL, 1);
    json_decref(messages);
    json_decref(tools);
    chat_template_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, 0, NULL);
    if (v) {
        conversation(v);
        json_decref(v);
    } else {
        template_source(data, size);
    }
    return 0;
}
