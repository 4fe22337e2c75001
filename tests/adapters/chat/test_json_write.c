/*
 * test_json_write.c - json_write writes what jansson reads back as the same
 * value, for every JSON type, escapes, nesting and edge numbers, in both
 * styles.
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdlib.h>

#include "adapters/chat/json_write.h"

static void round_trip(const char *src)
{
    json_error_t je;
    json_t *v = json_loads(src, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("bad test input %s: %s", src, je.text);
    for (int style = JSON_WRITE_COMPACT; style <= JSON_WRITE_TOJSON; style++) {
        strbuf out = {0};
        json_write_value(&out, v, (json_write_style)style);
        assert_false(out.oom);
        json_t *back = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!back || !json_equal(v, back))
            fail_msg("%s came back as %s", src, out.data);
        json_decref(back);
        strbuf_free(&out);
    }
    json_decref(v);
}

static void values_come_back_equal(void **state)
{
    (void)state;
    const char *cases[] = {
        "null", "true", "false", "0", "-9223372036854775808", "9223372036854775807",
        "1.5", "-0.0", "1e300", "3.0", "1.2345678901234567e-300", "\"\"",
        "\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r ctl \\u0001 \\u001f del \\u007f\"",
        "\"nul \\u0000 inside\"", "\"\\u00e9\\u20ac\\ud83d\\ude00\"", "[]", "{}", "[[[]],{}]",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be kind\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}}}}}]}",
        "{\"k\\\"ey\":1,\"\":2,\"a\\u0001b\":3}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        round_trip(cases[i]);
}

static void compact_and_in_order(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"b\": [1, 2.5, \"x\"], \"a\": {\"c\": null}}", 0, NULL);
    strbuf out = {0};
    json_write_value(&out, v, JSON_WRITE_COMPACT);
    assert_string_equal(out.data, "{\"b\":[1,2.5,\"x\"],\"a\":{\"c\":null}}");
    strbuf_free(&out);
    json_decref(v);
}

/* The tojson style: Python's separators and its repr of reals. */
static void as_tojson_writes_it(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"b\": [1, 2.50, 1e-5, 3.0, 1e16], \"a\": {\"c\": null, \"s\": \"\\b\\u0001\"}}", 0,
                           NULL);
    strbuf out = {0};
    json_write_value(&out, v, JSON_WRITE_TOJSON);
    assert_string_equal(out.data,
                        "{\"b\": [1, 2.5, 1e-05, 3.0, 1e+16], \"a\": {\"c\": null, \"s\": \"\\b\\u0001\"}}");
    strbuf_free(&out);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_come_back_equal),
        cmocka_unit_test(compact_and_in_order),
        cmocka_unit_test(as_tojson_writes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
