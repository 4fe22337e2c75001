/*
 * fuzz_http_request.c - libFuzzer target: any request body through the
 * OpenAI (chat/completions, completions) and Anthropic (messages,
 * count_tokens) request readers, with the real prompt port of the bundled
 * model under one of the built-in chat templates.
 *
 * Input: one selector byte, then the body. Selector bits 0-1 pick the
 * reader, bit 2 adds an X-Agent-ID header, bits 3-7 the template.
 *
 * A read either succeeds with a request the engine can take (a non-empty
 * prompt, max_tokens within the context, stop strings and sampling within
 * their ranges, a valid agent id) or fails with a client's status and a
 * message, and frees everything either way (ASan/LSan).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adapters/http/routes.h"
#include "adapters/model/model.h"
#include "adapters/model/model_prompts.h"
#include "adapters/template/chat_template.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_CTX 256
#define MAX_TEMPLATES 16

/* What a generation request (not a count) promises the engine. */
static void check_generation(const gen_sampling *s, const char *const *stop, size_t n_stop,
                             const char *agent)
{
    FUZZ_CHECK(n_stop <= REQ_STOP_MAX, "%zu stop strings", n_stop);
    for (size_t i = 0; i < n_stop; i++)
        FUZZ_CHECK(stop[i] && stop[i][0] && strlen(stop[i]) <= REQ_STOP_BYTES, "stop[%zu]", i);
    FUZZ_CHECK(s->temperature >= 0 && s->temperature <= 2, "temperature %g", s->temperature);
    FUZZ_CHECK(s->top_p > 0 && s->top_p <= 1, "top_p %g", s->top_p);
    FUZZ_CHECK(s->min_p >= 0 && s->min_p <= 1, "min_p %g", s->min_p);
    FUZZ_CHECK(s->repeat_penalty > 0 && s->repeat_penalty <= 10, "repeat_penalty %g",
               s->repeat_penalty);
    FUZZ_CHECK(fabsf(s->presence_penalty) <= 2 && fabsf(s->frequency_penalty) <= 2,
               "penalties %g %g", s->presence_penalty, s->frequency_penalty);
    FUZZ_CHECK(!agent[0] || agent_id_validate(agent, NULL) == SEM_OK, "agent '%s'", agent);
}

static void check_failed(sem_status st, const req_err *e)
{
    FUZZ_NOTE("  %s [%s] %s", sem_status_name(st), e->param, e->err.detail);
    FUZZ_CHECK(st == e->err.status, "returned %d, the error says %d", st, e->err.status);
    FUZZ_CHECK(st == SEM_EREQUEST || st == SEM_EUNSUPPORTED || st == SEM_ENOMEM ||
                   st == SEM_ETOOLARGE,
               "a request failed with %s: %s", sem_status_name(st), e->err.detail);
    FUZZ_CHECK(e->err.detail[0] != '\0', "an error without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Loaded once per process: fuzzing configuration, not program state. */
    static model *m;
    static model_prompts *prompts[MAX_TEMPLATES];
    static size_t n_templates;
    if (!m) {
        sem_err err = {0};
        m = model_load(SEM_TEST_DATA "/models/stories260K.gguf", &err);
        FUZZ_CHECK(m != NULL, "%s", err.detail);
        const char *const *names = chat_template_builtin_names();
        for (; names[n_templates] && n_templates < MAX_TEMPLATES; n_templates++) {
            prompts[n_templates] =
                model_prompts_create(m, names[n_templates], N_CTX, NULL, &err);
            FUZZ_CHECK(prompts[n_templates] != NULL, "%s", err.detail);
        }
    }
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    route_input in = {.body = (const char *)data + 1,
                      .len = size - 1,
                      .who = {.agent_header = sel & 4 ? "fuzz-agent_1" : NULL},
                      .prompts = model_prompts_port(prompts[(sel >> 3) % n_templates]),
                      .seed = 42};
    req_err e = {0};
    if ((sel & 3) < 2) {
        oa_request r;
        sem_status st = openai_routes_read_request(&in, (sel & 3) == 0, &r, &e);
        if (st == SEM_OK) {
            FUZZ_CHECK(r.prep.prompt && r.prep.n_prompt >= 1, "an accepted request has a prompt");
            check_generation(&r.sampling, r.stop, r.n_stop, r.agent);
            FUZZ_NOTE("  ok: %zu prompt tokens", r.prep.n_prompt);
            FUZZ_CHECK(!r.max_tokens_given || (r.max_tokens >= 1 && r.max_tokens <= N_CTX),
                       "max_tokens %u", r.max_tokens);
        } else {
            check_failed(st, &e);
        }
        openai_routes_request_free(&r);
    } else {
        an_request r;
        int count_only = (sel & 3) == 3;
        sem_status st = anthropic_routes_read_request(&in, count_only, &r, &e);
        if (st == SEM_OK) {
            FUZZ_CHECK(r.prep.prompt && r.prep.n_prompt >= 1, "an accepted request has a prompt");
            if (!count_only)
                check_generation(&r.sampling, r.stop, r.n_stop, r.agent);
            FUZZ_NOTE("  ok: %zu prompt tokens", r.prep.n_prompt);
            /* any size: the route clips it to what is left of the context */
            FUZZ_CHECK(count_only || r.max_tokens >= 1, "max_tokens %u", r.max_tokens);
        } else {
            check_failed(st, &e);
        }
        anthropic_routes_request_free(&r);
    }
    return 0;
}
