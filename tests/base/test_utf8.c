/*
 * test_utf8.c - the one strict UTF-8 checker: well-formed sequences, every
 * kind of ill-formed one (replaced per maximal subpart), incomplete ends,
 * and the decode/encode round trip.
 */
#include "../test_util.h"

#include <string.h>

#include "base/utf8.h"

static void check_classifies_sequences(void **state)
{
    (void)state;
    struct { const char *s; utf8_check want; size_t len; } cases[] = {
        {"A", UTF8_OK, 1},
        {"\xC3\xA9", UTF8_OK, 2},            /* é */
        {"\xE2\x82\xAC", UTF8_OK, 3},        /* € */
        {"\xF0\x9F\x98\x80", UTF8_OK, 4},    /* U+1F600 */
        {"\xC0\xAF", UTF8_INVALID, 1},       /* overlong lead */
        {"\xE0\x80\xAF", UTF8_INVALID, 1},   /* overlong 3-byte: second byte out of range */
        {"\xED\xA0\x80", UTF8_INVALID, 1},   /* surrogate */
        {"\xF4\x90\x80\x80", UTF8_INVALID, 1}, /* above U+10FFFF */
        {"\xF5", UTF8_INVALID, 1},
        {"\x80", UTF8_INVALID, 1},           /* lone continuation */
        {"\xE2\x82" "A", UTF8_INVALID, 2},   /* maximal subpart E2 82 */
        {"\xE2\x82", UTF8_INCOMPLETE, 2},
        {"\xF0\x9F", UTF8_INCOMPLETE, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        utf8_check c = utf8_check_at((const uint8_t *)cases[i].s, strlen(cases[i].s), &len);
        if (c != cases[i].want || len != cases[i].len)
            fail_msg("case %zu: got %d/%zu, want %d/%zu", i, c, len, cases[i].want, cases[i].len);
    }
}

static void sanitize_replaces_each_maximal_subpart(void **state)
{
    (void)state;
    const char in[] = "a\xE2\x82" "b\xFF\xC3\xA9\xED\xA0\x80" "c\xF0\x9F";
    char out[3 * sizeof in + 1];
    size_t n = utf8_sanitize(in, sizeof in - 1, out);
    const char want[] = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                        "c\xEF\xBF\xBD";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, n);
    assert_true(utf8_valid(out, n));
    assert_false(utf8_valid(in, sizeof in - 1));
}

static void whole_prefix_keeps_an_incomplete_end(void **state)
{
    (void)state;
    assert_int_equal(utf8_whole_prefix("ab\xE2\x82", 4), 2);
    assert_int_equal(utf8_whole_prefix("ab\xE2\x82" "c", 5), 5); /* ill-formed, not incomplete */
    assert_int_equal(utf8_whole_prefix("\xC3\xA9", 2), 2);
    assert_int_equal(utf8_whole_prefix("", 0), 0);
}

static void decode_and_encode_round_trip(void **state)
{
    (void)state;
    const uint32_t cps[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
                            0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        uint8_t b[4];
        size_t n = utf8_encode(cps[i], b), used = 0;
        assert_int_equal(utf8_decode((const char *)b, n, &used), cps[i]);
        assert_int_equal(used, n);
    }
    uint8_t b[4];
    assert_int_equal(utf8_encode(0x110000, b), 3); /* U+FFFD */
    size_t used;
    assert_int_equal(utf8_decode("\xE2\x82" "A", 3, &used), UTF8_REPLACEMENT);
    assert_int_equal(used, 2);
}

static void count_and_offset_step_by_character(void **state)
{
    (void)state;
    const char s[] = "h\xC3\xA9l\xF0\x9F\x98\x80!\xFF";
    size_t n = sizeof s - 1;
    assert_int_equal(utf8_count(s, n), 6);
    assert_int_equal(utf8_offset(s, n, 0), 0);
    assert_int_equal(utf8_offset(s, n, 2), 3);
    assert_int_equal(utf8_offset(s, n, 4), 8);
    assert_int_equal(utf8_offset(s, n, 99), n);
    assert_int_equal(utf8_seq_len(s + 1, n - 1), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_classifies_sequences),
        cmocka_unit_test(sanitize_replaces_each_maximal_subpart),
        cmocka_unit_test(whole_prefix_keeps_an_incomplete_end),
        cmocka_unit_test(decode_and_encode_round_trip),
        cmocka_unit_test(count_and_offset_step_by_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
