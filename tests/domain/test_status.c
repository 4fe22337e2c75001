/* Specification of status.h: names, messages and the detail helpers. */
#include "../test_util.h"

#include "domain/status.h"

static void every_status_has_a_distinct_name_and_message(void **state)
{
    (void)state;
    for (int a = 0; a < SEM_STATUS_COUNT; a++) {
        assert_non_null(sem_status_name(a));
        assert_true(strlen(sem_status_message(a)) > 0);
        for (int b = a + 1; b < SEM_STATUS_COUNT; b++)
            assert_string_not_equal(sem_status_name(a), sem_status_name(b));
    }
    assert_string_equal(sem_status_name(SEM_OK), "ok");
    assert_string_equal(sem_status_name(SEM_EPOOL), "pool_exhausted");
    assert_string_equal(sem_status_name(SEM_STATUS_COUNT), "unknown_status");
    assert_string_equal(sem_status_name((sem_status)-1), "unknown_status");
}

static void set_returns_the_status_and_formats_the_detail(void **state)
{
    (void)state;
    sem_err err = {0};
    assert_int_equal(sem_err_set(&err, SEM_ENOTFOUND, "agent %s", "a1"), SEM_ENOTFOUND);
    assert_int_equal(err.status, SEM_ENOTFOUND);
    assert_string_equal(sem_err_text(&err), "agent a1");
    assert_int_equal(sem_err_set(NULL, SEM_EIO, "ignored"), SEM_EIO);
}

static void wrap_prepends_context(void **state)
{
    (void)state;
    sem_err err = {0};
    sem_err_set(&err, SEM_ECORRUPT, "bad checksum");
    sem_err_wrap(&err, "loading %s", "x.kv");
    assert_string_equal(err.detail, "loading x.kv: bad checksum");
    assert_int_equal(err.status, SEM_ECORRUPT);
}

static void long_details_are_truncated_not_overflowed(void **state)
{
    (void)state;
    char big[4 * SEM_ERR_DETAIL_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sem_err err = {0};
    sem_err_set(&err, SEM_EINVAL, "%s", big);
    assert_int_equal(strlen(err.detail), SEM_ERR_DETAIL_MAX - 1);
    sem_err_wrap(&err, "%s", big);
    assert_int_equal(strlen(err.detail), SEM_ERR_DETAIL_MAX - 1);
}

static void text_falls_back_to_the_generic_message(void **state)
{
    (void)state;
    sem_err err = {0};
    sem_err_set(&err, SEM_ENOMEM, NULL);
    assert_string_equal(sem_err_text(&err), sem_status_message(SEM_ENOMEM));
    sem_err_clear(&err);
    assert_int_equal(err.status, SEM_OK);
    assert_string_equal(sem_err_text(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_status_has_a_distinct_name_and_message),
        cmocka_unit_test(set_returns_the_status_and_formats_the_detail),
        cmocka_unit_test(wrap_prepends_context),
        cmocka_unit_test(long_details_are_truncated_not_overflowed),
        cmocka_unit_test(text_falls_back_to_the_generic_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
