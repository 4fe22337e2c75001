/*
 * test_json_text.c - json_text writes what jansson reads back as the same
 * value, for every JSON type, escapes, nesting and edge numbers.
 */
#include "../../test_util.h"

#include <jansson.h>
#include <stdlib.h>

#include "adapters/http/json_text.h"

static void round_trip(const char *src)
{
    json_error_t je;
    json_t *v = json_loads(src, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("bad test input %s: %s", src, je.text);
    strbuf out = {0};
    json_text_append(&out, v);
    assert_false(out.oom);
    json_t *back = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!back || !json_equal(v, back))
        fail_msg("%s came back as %s", src, out.data);
    json_decref(back);
    json_decref(v);
    strbuf_free(&out);
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
    json_text_append(&out, v);
    assert_string_equal(out.data, "{\"b\":[1,2.5,\"x\"],\"a\":{\"c\":null}}");
    strbuf_free(&out);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_come_back_equal),
        cmocka_unit_test(compact_and_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
