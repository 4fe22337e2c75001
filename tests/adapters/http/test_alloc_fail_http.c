/*
 * Allocation failures while reading API requests: every request body of
 * the fuzz corpus (tests/data/fuzz/fuzz_http_request: OpenAI chat and
 * completions, Anthropic messages and count_tokens, good and bad) is read
 * with its k-th allocation failing, for every k, through the real prompt
 * port (the bundled model's tokenizer under a built-in chat template), and
 * again with every allocation from the k-th on failing. Each
 * read either reports SEM_ENOMEM (which the API answers as a server error,
 * never as the client's) or comes to exactly what it comes to with memory
 * to spare: the same prompt tokens and fields, or the same client error.
 * A failed allocation never drops part of a conversation silently, and
 * nothing leaks (LSan in the ASan build).
 */
#include "../../test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapters/http/routes.h"
#include "adapters/model/model.h"
#include "adapters/model/model_prompts.h"
#include "adapters/template/chat_template.h"
#include "alloc_fail.h"

#define CORPUS SEM_TEST_DATA "/fuzz/fuzz_http_request"
#define N_CTX 256
#define MAX_TEMPLATES 16

/* What a read came to, in a form two reads can be compared by. */
typedef struct outcome {
    sem_status st;
    char param[HTTP_ERROR_PARAM_MAX];
    char fields[1024]; /* every field read, printed */
    int32_t *prompt;
    size_t n_prompt;
} outcome;

typedef struct fixture {
    model *m;
    model_prompts *prompts[MAX_TEMPLATES];
    size_t n_templates;
} fixture;

static void print_common(char *out, size_t cap, const gen_sampling *s, const char *const *stop,
                         size_t n_stop, const char *agent, const char *name, uint32_t max)
{
    int n = snprintf(out, cap, "model=%s max=%u agent=%s t=%g p=%g k=%u minp=%g rep=%g pres=%g "
                     "freq=%g seed=%llu stops=%zu",
                     name ? name : "-", max, agent, s->temperature, s->top_p, s->top_k,
                     s->min_p, s->repeat_penalty, s->presence_penalty, s->frequency_penalty,
                     (unsigned long long)s->seed, n_stop);
    for (size_t i = 0; i < n_stop && n > 0 && (size_t)n < cap; i++)
        n += snprintf(out + n, cap - (size_t)n, " [%s]", stop[i]);
}

/* Reads one corpus input (selector byte, then the body; see fuzz_http_request.c). */
static outcome read_input(fixture *f, const uint8_t *data, size_t size)
{
    uint8_t sel = data[0];
    route_input in = {.body = (const char *)data + 1,
                      .len = size - 1,
                      .who = {.agent_header = sel & 4 ? "fuzz-agent_1" : NULL},
                      .prompts = model_prompts_port(f->prompts[(sel >> 3) % f->n_templates]),
                      .seed = 42};
    outcome o;
    memset(&o, 0, sizeof o);
    req_err e = {0};
    if ((sel & 3) < 2) {
        oa_request r;
        o.st = openai_routes_read_request(&in, (sel & 3) == 0, &r, &e);
        if (o.st == SEM_OK) {
            print_common(o.fields, sizeof o.fields, &r.sampling, r.stop, r.n_stop, r.agent,
                         r.model, r.max_tokens);
            size_t n = strlen(o.fields);
            snprintf(o.fields + n, sizeof o.fields - n, " stream=%d usage=%d given=%d",
                     r.stream, r.include_usage, r.max_tokens_given);
            o.prompt = r.prep.prompt;
            o.n_prompt = r.prep.n_prompt;
            r.prep.prompt = NULL;
        }
        openai_routes_request_free(&r);
    } else {
        an_request r;
        o.st = anthropic_routes_read_request(&in, (sel & 3) == 3, &r, &e);
        if (o.st == SEM_OK) {
            print_common(o.fields, sizeof o.fields, &r.sampling, r.stop, r.n_stop, r.agent,
                         r.model, r.max_tokens);
            size_t n = strlen(o.fields);
            n += (size_t)snprintf(o.fields + n, sizeof o.fields - n, " stream=%d", r.stream);
            for (size_t i = 0; i < r.n_marks && n < sizeof o.fields; i++)
                n += (size_t)snprintf(o.fields + n, sizeof o.fields - n, " mark=%u/%u",
                                      r.marks[i].tokens, r.marks[i].ttl_s);
            o.prompt = r.prep.prompt;
            o.n_prompt = r.prep.n_prompt;
            r.prep.prompt = NULL;
        }
        anthropic_routes_request_free(&r);
    }
    if (o.st != SEM_OK) {
        assert_int_equal(e.err.status, o.st);
        snprintf(o.param, sizeof o.param, "%s", e.param);
        snprintf(o.fields, sizeof o.fields, "%s", e.err.detail);
    }
    return o;
}

static void assert_same(const outcome *got, const outcome *want, const char *name, uint64_t k)
{
    if (got->st != want->st || strcmp(got->param, want->param) != 0)
        fail_msg("%s, allocation %llu failed: %s [%s] %s; with memory: %s [%s] %s", name,
                 (unsigned long long)k, sem_status_name(got->st), got->param, got->fields,
                 sem_status_name(want->st), want->param, want->fields);
    if (got->st != SEM_OK)
        return;
    if (strcmp(got->fields, want->fields) != 0)
        fail_msg("%s, allocation %llu failed: read %s; with memory %s", name,
                 (unsigned long long)k, got->fields, want->fields);
    if (got->n_prompt != want->n_prompt ||
        memcmp(got->prompt, want->prompt, got->n_prompt * sizeof *got->prompt) != 0)
        fail_msg("%s, allocation %llu failed: a prompt of %zu tokens; with memory %zu tokens",
                 name, (unsigned long long)k, got->n_prompt, want->n_prompt);
}

static uint8_t *load(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *d = malloc(*n ? *n : 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, *n, fp), *n);
    fclose(fp);
    return d;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void every_body_fails_cleanly_at_every_allocation(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(CORPUS);
    assert_non_null(d);
    char *names[128];
    size_t n_names = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n_names < 128)
        if (de->d_name[0] != '.')
            names[n_names++] = strdup(de->d_name);
    closedir(d);
    qsort(names, n_names, sizeof *names, by_name);
    assert_true(n_names > 10);
    for (size_t i = 0; i < n_names; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]);
        size_t size;
        uint8_t *data = load(path, &size);
        assert_true(size >= 1);
        outcome want = read_input(f, data, size);
        uint64_t k = 1;
        for (;; k++) {
            /* The k-th allocation fails; then it and every one after it. */
            int hit = 0;
            for (int persist = 0; persist < 2; persist++) {
                alloc_fail_arm(k, persist ? ALLOC_FAIL_PERSIST : 0);
                outcome got = read_input(f, data, size);
                hit = alloc_fail_hit();
                alloc_fail_disarm();
                if (got.st != SEM_ENOMEM || !hit)
                    assert_same(&got, &want, names[i], k);
                free(got.prompt);
            }
            if (!hit)
                break;
        }
        printf("%s: %llu allocations\n", names[i], (unsigned long long)k - 1);
        free(want.prompt);
        free(data);
        free(names[i]);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sem_err err = {0};
    f->m = model_load(SEM_TEST_DATA "/models/stories260K.gguf", &err);
    if (!f->m)
        fail_msg("%s", err.detail);
    const char *const *names = chat_template_builtin_names();
    for (; names[f->n_templates] && f->n_templates < MAX_TEMPLATES; f->n_templates++) {
        f->prompts[f->n_templates] =
            model_prompts_create(f->m, names[f->n_templates], N_CTX, NULL, &err);
        if (!f->prompts[f->n_templates])
            fail_msg("%s", err.detail);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->n_templates; i++)
        model_prompts_destroy(f->prompts[i]);
    model_free(f->m);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_body_fails_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
