/* Specification of stop_strings.h. */
#include "../test_util.h"

#include "app/stop_strings.h"

static stop_set make(const char *const *s, size_t n)
{
    stop_set set;
    assert_int_equal(stop_set_init(&set, s, n, NULL), SEM_OK);
    return set;
}

static void a_stop_string_is_found_and_cut(void **state)
{
    (void)state;
    const char *s[] = {"\n\n", "User:"};
    stop_set set = make(s, 2);
    const char *text = "Hello there.\nUser: hi";
    stop_scan_result r = stop_set_scan(&set, text, strlen(text), 0);
    assert_true(r.found);
    assert_int_equal(r.at, 13);
    assert_int_equal(r.safe, 13);
    assert_int_equal(r.which, 1); /* "User:" */
}

static void the_earliest_of_several_wins(void **state)
{
    (void)state;
    const char *s[] = {"world", "lo"};
    stop_set set = make(s, 2);
    const char *text = "hello world";
    stop_scan_result r = stop_set_scan(&set, text, strlen(text), 0);
    assert_true(r.found);
    assert_int_equal(r.at, 3);
    assert_int_equal(r.which, 1); /* "lo", though listed second */
}

static void a_possible_beginning_is_held_back(void **state)
{
    (void)state;
    const char *s[] = {"</answer>"};
    stop_set set = make(s, 1);
    const char *text = "42 </ans";
    stop_scan_result r = stop_set_scan(&set, text, strlen(text), 0);
    assert_false(r.found);
    assert_int_equal(r.safe, 3); /* "42 " may be shown */
    /* The next token completes it. */
    const char *more = "42 </answer> tail";
    r = stop_set_scan(&set, more, strlen(more), 3);
    assert_true(r.found);
    assert_int_equal(r.at, 3);
    /* Or breaks it: everything becomes safe. */
    const char *broke = "42 </ans!";
    r = stop_set_scan(&set, broke, strlen(broke), 3);
    assert_false(r.found);
    assert_int_equal(r.safe, strlen(broke));
}

static void no_stop_strings_means_everything_is_safe(void **state)
{
    (void)state;
    stop_set set = make(NULL, 0);
    stop_scan_result r = stop_set_scan(&set, "abc", 3, 0);
    assert_false(r.found);
    assert_int_equal(r.safe, 3);
}

static void bad_stop_strings_are_refused(void **state)
{
    (void)state;
    stop_set set;
    sem_err err = {0};
    const char *empty[] = {"ok", ""};
    assert_int_equal(stop_set_init(&set, empty, 2, &err), SEM_EINVAL);
    assert_contains(err.detail, "stop string 1 is empty");
    const char *many[STOP_STRINGS_MAX + 1];
    for (int i = 0; i <= STOP_STRINGS_MAX; i++)
        many[i] = "x";
    assert_int_equal(stop_set_init(&set, many, STOP_STRINGS_MAX + 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "at most 16");
    char big[STOP_STRING_MAX_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *long_one[] = {big};
    assert_int_equal(stop_set_init(&set, long_one, 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stop_string_is_found_and_cut),
        cmocka_unit_test(the_earliest_of_several_wins),
        cmocka_unit_test(a_possible_beginning_is_held_back),
        cmocka_unit_test(no_stop_strings_means_everything_is_safe),
        cmocka_unit_test(bad_stop_strings_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
