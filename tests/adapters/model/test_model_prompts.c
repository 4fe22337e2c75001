/*
 * test_model_prompts.c - the prompt port over a model: a conversation in
 * JSON text renders through the template and tokenizes; text that is not
 * a conversation is refused with a request error that says why, and the
 * port keeps working.
 */
#include "../../test_util.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conversations_render_and_bad_text_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
