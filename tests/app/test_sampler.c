/* Specification of sampler.h. */
#include "../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "app/sampler.h"

#define V 16

static sampler *make(sampler_params p)
{
    sem_err err = {0};
    sampler *s = sampler_create(&p, V, &err);
    if (!s)
        fail_msg("create: %s", err.detail);
    return s;
}

static void greedy_takes_the_largest_and_the_lowest_id_on_ties(void **state)
{
    (void)state;
    float l[V] = {0};
    l[3] = 2.0f;
    l[9] = 2.0f;
    l[12] = 1.0f;
    sampler *s = make(sampler_greedy());
    assert_int_equal(sampler_sample(s, l), 3);
    assert_int_equal(sampler_argmax(l, V), 3);
    sampler_free(s);
}

static void top_k_one_is_greedy_at_any_temperature(void **state)
{
    (void)state;
    sampler_params p = sampler_defaults();
    p.top_k = 1;
    p.temperature = 5.0f;
    sampler *s = make(p);
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = (float)((i * 7) % V);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sampler_sample(s, l), sampler_argmax(l, V));
    sampler_free(s);
}

/* Draw counts over many samples. */
static void histogram(sampler *s, const float *l, int n, int *counts)
{
    memset(counts, 0, V * sizeof *counts);
    for (int i = 0; i < n; i++)
        counts[sampler_sample(s, l)]++;
}

static void sampling_follows_the_softmax(void **state)
{
    (void)state;
    sampler_params p = {.temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f, .seed = 7};
    sampler *s = make(p);
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = -100.0f;
    l[0] = logf(0.5f);
    l[1] = logf(0.3f);
    l[2] = logf(0.2f);
    int c[V];
    histogram(s, l, 20000, c);
    assert_true(abs(c[0] - 10000) < 400);
    assert_true(abs(c[1] - 6000) < 400);
    assert_true(abs(c[2] - 4000) < 400);
    sampler_free(s);
}

static void top_p_and_min_p_cut_the_tail(void **state)
{
    (void)state;
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = -100.0f;
    l[0] = logf(0.5f);
    l[1] = logf(0.3f);
    l[2] = logf(0.2f);
    int c[V];
    sampler_params p = {.temperature = 1.0f, .top_p = 0.75f, .repeat_penalty = 1.0f, .seed = 1};
    sampler *s = make(p);
    histogram(s, l, 5000, c);
    assert_int_equal(c[2], 0); /* 0.5 + 0.3 covers 0.75 */
    assert_true(c[0] > 0 && c[1] > 0);
    sampler_free(s);
    p = (sampler_params){.temperature = 1.0f, .top_p = 1.0f, .min_p = 0.5f,
                         .repeat_penalty = 1.0f, .seed = 1};
    s = make(p);
    histogram(s, l, 5000, c);
    assert_int_equal(c[2], 0); /* 0.2 < 0.5 * 0.5 */
    assert_true(c[1] > 0);
    sampler_free(s);
}

static void the_same_seed_gives_the_same_draws(void **state)
{
    (void)state;
    sampler_params p = sampler_defaults();
    p.seed = 1234;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.top_p = 1.0f;
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = (float)i * 0.1f;
    sampler *a = make(p), *b = make(p);
    int differ = 0;
    for (int i = 0; i < 200; i++)
        assert_int_equal(sampler_sample(a, l), sampler_sample(b, l));
    p.seed = 99;
    sampler *c = make(p);
    sampler_free(b);
    b = make((sampler_params){.temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f,
                              .seed = 1234});
    for (int i = 0; i < 200; i++)
        differ += sampler_sample(c, l) != sampler_sample(b, l);
    assert_true(differ > 0);
    sampler_free(a);
    sampler_free(b);
    sampler_free(c);
}

static void penalties_push_repeated_tokens_down(void **state)
{
    (void)state;
    float l[V] = {0};
    l[4] = 1.0f;
    l[5] = 0.9f;
    sampler_params p = sampler_greedy();
    p.repeat_penalty = 1.5f; /* 1.0 / 1.5 < 0.9 */
    p.repeat_last_n = 8;
    sampler *s = make(p);
    assert_int_equal(sampler_sample(s, l), 4);
    sampler_accept(s, 4);
    assert_int_equal(sampler_sample(s, l), 5);
    /* Outside the window the penalty ends. */
    for (int i = 0; i < 8; i++)
        sampler_accept(s, 0);
    assert_int_equal(sampler_sample(s, l), 4);
    sampler_free(s);

    p = sampler_greedy();
    p.repeat_last_n = 8;
    p.frequency_penalty = 0.06f; /* two uses: 1.0 - 0.12 < 0.9 */
    s = make(p);
    sampler_accept(s, 4);
    assert_int_equal(sampler_sample(s, l), 4);
    sampler_accept(s, 4);
    assert_int_equal(sampler_sample(s, l), 5);
    sampler_free(s);

    p = sampler_greedy();
    p.repeat_last_n = 8;
    p.presence_penalty = 0.2f;
    s = make(p);
    sampler_accept(s, 4);
    assert_int_equal(sampler_sample(s, l), 5);
    sampler_free(s);
}

static void invalid_parameters_name_the_field(void **state)
{
    (void)state;
    sem_err err = {0};
    sampler_params p = sampler_defaults();
    p.temperature = -1.0f;
    assert_null(sampler_create(&p, V, &err));
    assert_contains(err.detail, "temperature");
    p = sampler_defaults();
    p.top_p = 0.0f;
    assert_null(sampler_create(&p, V, &err));
    assert_contains(err.detail, "top_p");
    p = sampler_defaults();
    p.min_p = 2.0f;
    assert_int_equal(sampler_params_validate(&p, &err), SEM_EINVAL);
    assert_contains(err.detail, "min_p");
    p = sampler_defaults();
    p.presence_penalty = 3.0f;
    assert_int_equal(sampler_params_validate(&p, &err), SEM_EINVAL);
    assert_contains(err.detail, "presence_penalty");
    p = sampler_defaults();
    p.frequency_penalty = NAN;
    assert_int_equal(sampler_params_validate(&p, &err), SEM_EINVAL);
    p = sampler_defaults();
    assert_null(sampler_create(&p, 0, &err));
    assert_contains(err.detail, "empty vocabulary");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_takes_the_largest_and_the_lowest_id_on_ties),
        cmocka_unit_test(top_k_one_is_greedy_at_any_temperature),
        cmocka_unit_test(sampling_follows_the_softmax),
        cmocka_unit_test(top_p_and_min_p_cut_the_tail),
        cmocka_unit_test(the_same_seed_gives_the_same_draws),
        cmocka_unit_test(penalties_push_repeated_tokens_down),
        cmocka_unit_test(invalid_parameters_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
