/*
 * Allocation failures in the JSON Schema compiler: with the k-th
 * allocation of a compile failing, for every k, the compile either fails
 * with SEM_ENOMEM and leaves the caller's buffer as it was, or gives
 * exactly the grammar it gives with memory to spare (no rule or member
 * silently missing). Nothing leaks (LSan in the ASan build).
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/chat/json_schema.h"
#include "alloc_fail.h"

/* Schemas that reach every allocation: members and tails, extra keys (a
 * key trie), $ref (the reference table), allOf (a merged schema), arrays
 * with prefixes, number ranges, long strings. */
static const char *const SCHEMAS[] = {
    "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"maxLength\": 20000},"
    " \"b\": {\"type\": \"number\", \"minimum\": -2.5, \"exclusiveMaximum\": 300.125},"
    " \"c\": {\"enum\": [\"x\", 1.5, {\"k\": [null]}]}}, \"required\": [\"b\"],"
    " \"additionalProperties\": {\"type\": \"integer\", \"minimum\": -37, \"maximum\": 1234}}",
    "{\"$defs\": {\"n\": {\"type\": \"object\", \"properties\": {\"kids\": {\"type\": \"array\","
    " \"items\": {\"$ref\": \"#/$defs/n\"}}, \"v\": {\"$ref\": \"#/$defs/v\"}}},"
    " \"v\": {\"anyOf\": [{\"type\": \"null\"}, true]}}, \"$ref\": \"#/$defs/n\"}",
    "{\"allOf\": [{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}},"
    " {\"properties\": {\"b\": {\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}],"
    " \"items\": {\"type\": \"boolean\"}, \"maxItems\": 4}}, \"required\": [\"b\"]}]}",
};

static void each_allocation_failure_is_enomem_or_the_same_grammar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SCHEMAS / sizeof SCHEMAS[0]; i++) {
        json_t *schema = json_loads(SCHEMAS[i], 0, NULL);
        assert_non_null(schema);
        strbuf ref = {0};
        assert_int_equal(json_schema_grammar(schema, "root", 0, &ref, NULL), SEM_OK);
        for (uint64_t k = 1;; k++) {
            strbuf out = {0};
            strbuf_puts(&out, "kept\n");
            sem_err err = {0};
            alloc_fail_arm(k, 0);
            sem_status st = json_schema_grammar(schema, "root", 0, &out, &err);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (!hit) {
                assert_int_equal(st, SEM_OK);
                assert_int_equal(out.len, 5 + ref.len);
                assert_memory_equal(out.data + 5, ref.data, ref.len);
                assert_true(k > 20); /* the compile did allocate */
                strbuf_free(&out);
                break;
            }
            if (st == SEM_OK) { /* a failure may only hit what the result does not need */
                if (out.len != 5 + ref.len || memcmp(out.data + 5, ref.data, ref.len) != 0)
                    fail_msg("schema %zu, allocation %llu failing: a different grammar", i,
                             (unsigned long long)k);
            } else {
                if (st != SEM_ENOMEM)
                    fail_msg("schema %zu, allocation %llu failing: %s %s", i,
                             (unsigned long long)k, sem_status_name(st), err.detail);
                assert_int_equal(out.len, 5);
            }
            strbuf_free(&out);
        }
        strbuf_free(&ref);
        json_decref(schema);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_allocation_failure_is_enomem_or_the_same_grammar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
