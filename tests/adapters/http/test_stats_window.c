/* Specification of stats_window.h: one-second buckets over a bounded window. */
#include "../../test_util.h"

#include <math.h>
#include <pthread.h>

#include "adapters/http/stats_window.h"

#define S(sec) ((double)(sec) * 1000.0)

static stats_window *make(uint32_t seconds)
{
    stats_window *w = NULL;
    sem_err err = {0};
    assert_int_equal(stats_window_create(seconds, &w, &err), SEM_OK);
    return w;
}

static void sizes_outside_the_limits_are_refused_with_the_limit(void **state)
{
    (void)state;
    stats_window *w = (stats_window *)1;
    sem_err err = {0};
    assert_int_equal(stats_window_create(0, &w, &err), SEM_EINVAL);
    assert_null(w);
    assert_contains(err.detail, "expected 1 to 3600");
    assert_int_equal(stats_window_create(STATS_WINDOW_MAX_S + 1, &w, &err), SEM_EINVAL);
    assert_contains(err.detail, "3601");
    w = make(STATS_WINDOW_MAX_S);
    assert_int_equal(stats_window_seconds(w), STATS_WINDOW_MAX_S);
    stats_window_free(w);
    stats_window_free(NULL);
}

static void an_empty_window_reads_zeros(void **state)
{
    (void)state;
    stats_window *w = make(10);
    stats_point p[10];
    assert_int_equal(stats_window_read(w, S(1000), p, 10), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(p[i].requests, 0);
        assert_true(p[i].decode_tokens == 0 && p[i].ttft_cold_ms == 0);
    }
    stats_window_free(w);
}

static void requests_count_in_the_second_they_end_and_ttft_splits_cold_from_returning(void **state)
{
    (void)state;
    stats_window *w = make(10);
    stats_window_record(w, &(stats_sample){.end_ms = S(100) + 100, .ttft_ms = 40,
                                           .prompt_tokens = 100, .cached_tokens = 0});
    stats_window_record(w, &(stats_sample){.end_ms = S(100) + 900, .ttft_ms = 60,
                                           .prompt_tokens = 100, .cached_tokens = 0});
    stats_window_record(w, &(stats_sample){.end_ms = S(100) + 500, .ttft_ms = 5,
                                           .prompt_tokens = 100, .cached_tokens = 90});
    /* A prefill has no first token: counted, but in neither TTFT. */
    stats_window_record(w, &(stats_sample){.end_ms = S(101), .prompt_tokens = 10});
    stats_point p[3];
    assert_int_equal(stats_window_read(w, S(101) + 1, p, 3), 3);
    assert_int_equal(p[0].requests, 0);
    assert_int_equal(p[1].requests, 3);
    assert_true(p[1].ttft_cold_ms == 50);
    assert_true(p[1].ttft_returning_ms == 5);
    assert_int_equal(p[1].prompt_tokens, 300);
    assert_int_equal(p[1].cached_tokens, 90);
    assert_int_equal(p[2].requests, 1);
    assert_true(p[2].ttft_cold_ms == 0 && p[2].ttft_returning_ms == 0);
    stats_window_free(w);
}

static void decode_tokens_spread_over_the_seconds_the_decode_took(void **state)
{
    (void)state;
    stats_window *w = make(10);
    /* 400 tokens decoded from 200.5 s to 204.5 s: 50, 100, 100, 100, 50. */
    stats_window_record(w, &(stats_sample){.end_ms = S(204) + 500, .ttft_ms = 10,
                                           .decode_ms = 4000, .completion_tokens = 400});
    stats_point p[6];
    stats_window_read(w, S(205), p, 6);
    double want[6] = {50, 100, 100, 100, 50, 0};
    for (int i = 0; i < 6; i++)
        assert_true(fabs(p[i].decode_tokens - want[i]) < 1e-9);
    /* Without a decode time every token counts in the last second. */
    stats_window_record(w, &(stats_sample){.end_ms = S(205) + 10, .completion_tokens = 7});
    stats_window_read(w, S(205), p, 1);
    assert_true(p[0].decode_tokens == 7);
    stats_window_free(w);
}

static void seconds_that_left_the_window_are_forgotten(void **state)
{
    (void)state;
    stats_window *w = make(5);
    stats_window_record(w, &(stats_sample){.end_ms = S(10), .ttft_ms = 1});
    stats_point p[5];
    stats_window_read(w, S(14), p, 5);
    assert_int_equal(p[0].requests, 1);
    /* Second 15 reuses second 10's bucket: it starts empty. */
    stats_window_record(w, &(stats_sample){.end_ms = S(15), .ttft_ms = 1});
    stats_window_read(w, S(15), p, 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(p[i].requests, 0);
    assert_int_equal(p[4].requests, 1);
    /* A sample from before the window adds nothing anywhere. */
    stats_window_record(w, &(stats_sample){.end_ms = S(10), .ttft_ms = 1,
                                           .decode_ms = 1000, .completion_tokens = 9});
    stats_window_read(w, S(15), p, 5);
    assert_int_equal(p[4].requests, 1);
    /* A long decode adds only to the seconds the window holds. */
    stats_window_record(w, &(stats_sample){.end_ms = S(16) + 500, .ttft_ms = 1,
                                           .decode_ms = 100000, .completion_tokens = 100000});
    stats_window_read(w, S(16), p, 5);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(p[i].decode_tokens - 1000) < 1e-6);
    assert_true(fabs(p[4].decode_tokens - 500) < 1e-6);
    /* Reads longer than the window are clipped. */
    stats_point big[8];
    assert_int_equal(stats_window_read(w, S(16), big, 8), 5);
    stats_window_free(w);
}

static void *record_many(void *arg)
{
    stats_window *w = arg;
    for (int i = 0; i < 10000; i++)
        stats_window_record(w, &(stats_sample){.end_ms = S(50) + i % 1000, .ttft_ms = 2,
                                               .cached_tokens = (uint32_t)(i & 1),
                                               .completion_tokens = 1});
    return NULL;
}

static void threads_record_at_once_and_lose_nothing(void **state)
{
    (void)state;
    stats_window *w = make(60);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, record_many, w);
    stats_point p[1];
    for (int i = 0; i < 100; i++)
        stats_window_read(w, S(50), p, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    stats_window_read(w, S(50), p, 1);
    assert_int_equal(p[0].requests, 40000);
    assert_true(p[0].decode_tokens == 40000);
    stats_window_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_outside_the_limits_are_refused_with_the_limit),
        cmocka_unit_test(an_empty_window_reads_zeros),
        cmocka_unit_test(requests_count_in_the_second_they_end_and_ttft_splits_cold_from_returning),
        cmocka_unit_test(decode_tokens_spread_over_the_seconds_the_decode_took),
        cmocka_unit_test(seconds_that_left_the_window_are_forgotten),
        cmocka_unit_test(threads_record_at_once_and_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
