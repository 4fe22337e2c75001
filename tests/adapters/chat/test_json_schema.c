/*
 * Specification of json_schema.h: the grammar of a schema accepts exactly
 * the canonical JSON texts valid against it.
 *
 * Three kinds of evidence, each through the grammar engine (app/grammar.h):
 *   - hand-written texts: valid canonical ones are whole sentences; wrong
 *     types, missing or extra keys, values out of range (at the bounds),
 *     strings too long in code points, other spacing, other escapes are
 *     rejected;
 *   - random sentences: a walk that takes any byte the grammar allows
 *     (all 256 tried) and ends where it may; every text it finishes
 *     parses with jansson, is valid against the schema (a validator for
 *     the subset, below) and is what tojson (the chat templates' filter)
 *     prints back for the parsed value; bounded schemas always finish;
 *     no walk reaches a dead end;
 *   - errors: strict refuses what it cannot enforce with the path of the
 *     keyword; malformed schemas are request errors in both modes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../test_util.h"

#include "adapters/chat/json_schema.h"
#include "adapters/template/jinja.h"
#include "app/grammar.h"
#include "base/utf8.h"

/* ---------------------------------------------------------------- compiling */

static json_t *load(const char *json)
{
    json_error_t je;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("bad test JSON (%s): %s", je.text, json);
    return v;
}

/* The grammar text of schema (asserting success). */
static char *grammar_text(const json_t *schema, int strict)
{
    strbuf out = {0};
    sem_err err = {0};
    sem_status st = json_schema_grammar(schema, "root", strict, &out, &err);
    if (st != SEM_OK)
        fail_msg("schema did not compile (%s): %s", sem_status_name(st), err.detail);
    return out.data;
}

static grammar *compile_json(const json_t *schema, int strict)
{
    char *text = grammar_text(schema, strict);
    sem_err err = {0};
    grammar *g = grammar_parse(text, strlen(text), &err);
    if (!g)
        fail_msg("compiled grammar does not parse: %s\n%s", err.detail, text);
    free(text);
    return g;
}

static grammar *compile(const char *schema, int strict)
{
    json_t *s = load(schema);
    grammar *g = compile_json(s, strict);
    json_decref(s);
    return g;
}

/* 1: a whole sentence; 0: a proper prefix; -1: rejected. */
static int judge(const grammar *g, const char *s, size_t n)
{
    grammar_state *st = grammar_state_new(g, NULL);
    assert_non_null(st);
    int r = grammar_state_accept(st, s, n) ? grammar_state_can_end(st) : -1;
    grammar_state_free(st);
    return r;
}

/* The status and detail of compiling schema. */
static sem_status compile_error(const char *schema, int strict, char *detail, size_t cap)
{
    json_t *s = load(schema);
    strbuf out = {0};
    strbuf_puts(&out, "kept\n");
    sem_err err = {0};
    sem_status st = json_schema_grammar(s, "root", strict, &out, &err);
    if (st != SEM_OK) /* a failure leaves the buffer as it was */
        assert_string_equal(out.data, "kept\n");
    snprintf(detail, cap, "%s", err.detail);
    strbuf_free(&out);
    json_decref(s);
    return st;
}

/* ---------------------------------------------------------------- a validator for the subset */

static const json_t *resolve(const json_t *root, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return root;
    static const char *const prefix[] = {"#/$defs/", "#/definitions/"};
    static const char *const key[] = {"$defs", "definitions"};
    for (int i = 0; i < 2; i++)
        if (strncmp(ref, prefix[i], strlen(prefix[i])) == 0)
            return json_object_get(json_object_get(root, key[i]), ref + strlen(prefix[i]));
    return NULL;
}

static int num_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!num_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, k, v) {
            const json_t *w = json_object_get(b, k);
            if (!w || !num_equal(v, w))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static int has_type(const json_t *v, const char *t)
{
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    return strcmp(t, "array") == 0 && json_is_array(v);
}

static int valid(const json_t *v, const json_t *s, const json_t *root);

static int valid_bounds(const json_t *v, const json_t *s)
{
    double x = json_number_value(v);
    const json_t *b;
    if ((b = json_object_get(s, "minimum")) && x < json_number_value(b))
        return 0;
    if ((b = json_object_get(s, "maximum")) && x > json_number_value(b))
        return 0;
    if ((b = json_object_get(s, "exclusiveMinimum")) && x <= json_number_value(b))
        return 0;
    if ((b = json_object_get(s, "exclusiveMaximum")) && x >= json_number_value(b))
        return 0;
    return 1;
}

static int valid_object(const json_t *v, const json_t *s, const json_t *root)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!json_object_get(v, json_string_value(json_array_get(req, i))))
            return 0;
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) {
        const json_t *ps = json_object_get(props, k);
        if (ps ? !valid(m, ps, root) : ap && !valid(m, ap, root))
            return 0;
    }
    return 1;
}

static int valid_array(const json_t *v, const json_t *s, const json_t *root)
{
    const json_t *pre = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
    const json_t *b;
    size_t n = json_array_size(v);
    if ((b = json_object_get(s, "minItems")) && n < (size_t)json_integer_value(b))
        return 0;
    if ((b = json_object_get(s, "maxItems")) && n > (size_t)json_integer_value(b))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *is = i < json_array_size(pre) ? json_array_get(pre, i) : items;
        if (is && !valid(json_array_get(v, i), is, root))
            return 0;
    }
    return 1;
}

static int valid_string(const json_t *v, const json_t *s)
{
    size_t n = utf8_count(json_string_value(v), json_string_length(v));
    const json_t *b;
    if ((b = json_object_get(s, "minLength")) && n < (size_t)json_integer_value(b))
        return 0;
    return !(b = json_object_get(s, "maxLength")) || n <= (size_t)json_integer_value(b);
}

/* JSON Schema validation of v against s, for the keywords json_schema.h
 * supports (annotations and unsupported keywords pass). */
static int valid(const json_t *v, const json_t *s, const json_t *root)
{
    if (json_is_boolean(s))
        return json_is_true(s);
    if (json_is_null(v) && json_is_true(json_object_get(s, "nullable")))
        return 1;
    const json_t *k;
    if ((k = json_object_get(s, "$ref")) && !valid(v, resolve(root, json_string_value(k)), root))
        return 0;
    if ((k = json_object_get(s, "const")) && !num_equal(v, k))
        return 0;
    if ((k = json_object_get(s, "enum"))) {
        int found = 0;
        for (size_t i = 0; i < json_array_size(k); i++)
            found |= num_equal(v, json_array_get(k, i));
        if (!found)
            return 0;
    }
    const char *alts[] = {"anyOf", "oneOf"};
    for (int a = 0; a < 2; a++) {
        if (!(k = json_object_get(s, alts[a])))
            continue;
        int n = 0;
        for (size_t i = 0; i < json_array_size(k); i++)
            n += valid(v, json_array_get(k, i), root);
        if (a == 0 ? n == 0 : n != 1)
            return 0;
    }
    if ((k = json_object_get(s, "allOf")))
        for (size_t i = 0; i < json_array_size(k); i++)
            if (!valid(v, json_array_get(k, i), root))
                return 0;
    if ((k = json_object_get(s, "type"))) {
        int ok = 0;
        if (json_is_string(k))
            ok = has_type(v, json_string_value(k));
        for (size_t i = 0; i < json_array_size(k); i++)
            ok |= has_type(v, json_string_value(json_array_get(k, i)));
        if (!ok)
            return 0;
    }
    if (json_is_number(v))
        return valid_bounds(v, s);
    if (json_is_string(v))
        return valid_string(v, s);
    if (json_is_object(v))
        return valid_object(v, s, root);
    if (json_is_array(v))
        return valid_array(v, s, root);
    return 1;
}

/* ---------------------------------------------------------------- canonical form */

/* What the chat templates' tojson prints for the value of text. */
static char *tojson(const json_t *v)
{
    static const char src[] = "{{ v | tojson }}";
    sem_err err = {0};
    jinja_template *t = jinja_parse(src, strlen(src), &err);
    assert_non_null(t);
    json_t *ctx = json_pack("{s:O}", "v", v);
    char *out = NULL;
    if (jinja_render(t, ctx, NULL, &out, NULL, &err) != SEM_OK)
        fail_msg("tojson failed: %s", err.detail);
    json_decref(ctx);
    jinja_free(t);
    return out;
}

/* Checks one finished text: JSON, valid, canonical. dup_ok: free-form
 * objects may repeat a key (documented). */
static void check_sentence(const char *text, size_t n, const json_t *schema, int dup_ok)
{
    json_error_t je;
    json_t *v = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v && dup_ok && strstr(je.text, "duplicate"))
        return;
    if (!v)
        fail_msg("sentence is not JSON (%s): %.*s", je.text, (int)n, text);
    if (!valid(v, schema, schema))
        fail_msg("sentence is not valid against the schema: %.*s", (int)n, text);
    char *back = tojson(v);
    if (strlen(back) != n || memcmp(back, text, n) != 0)
        fail_msg("tojson prints it differently:\n  %.*s\n  %s", (int)n, text, back);
    free(back);
    json_decref(v);
}

/* ---------------------------------------------------------------- random sentences */

static const char *byte_piece(void *u, int32_t tok, size_t *len)
{
    static char bytes[256];
    (void)u;
    bytes[tok] = (char)tok;
    *len = 1;
    return &bytes[tok];
}

/* A walk of at most budget bytes; 1 if it ended (text in out). */
static int walk(const grammar *g, const grammar_vocab *vocab, uint64_t *rng, size_t budget,
                strbuf *out)
{
    grammar_state *st = grammar_state_new(g, NULL);
    assert_non_null(st);
    strbuf_truncate(out, 0);
    int ended = 0;
    while (out->len <= budget) {
        int choice[257], n = 0;
        for (int b = 0; b < 256; b++)
            if (grammar_state_allows(st, vocab, b))
                choice[n++] = b;
        if (grammar_state_can_end(st))
            choice[n++] = 256;
        if (n == 0)
            fail_msg("dead end: no byte may follow \"%.*s\"", (int)out->len,
                     out->data ? out->data : "");
        int b = choice[test_rand(rng) % (uint64_t)n];
        if (b == 256) {
            ended = 1;
            break;
        }
        char ch = (char)b;
        assert_true(grammar_state_accept(st, &ch, 1));
        strbuf_append(out, &ch, 1);
    }
    grammar_state_free(st);
    return ended;
}

/*
 * Random sentences of schema: every finished one checked; with bound > 0
 * every walk must finish within bound bytes, else at least a quarter of
 * them within 4096.
 */
static void random_sentences(const char *schema, int strict, int walks, size_t bound, int dup_ok)
{
    json_t *s = load(schema);
    grammar *g = compile_json(s, strict);
    sem_err err = {0};
    grammar_vocab *vocab = grammar_vocab_new(256, byte_piece, NULL, NULL, &err);
    assert_non_null(vocab);
    strbuf text = {0};
    int finished = 0;
    for (int i = 0; i < walks; i++) {
        uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        if (walk(g, vocab, &rng, bound ? bound : 4096, &text)) {
            finished++;
            check_sentence(text.data ? text.data : "", text.len, s, dup_ok);
        } else if (bound) {
            fail_msg("walk %d did not end within %zu bytes: %.80s...", i, bound, text.data);
        }
    }
    if (finished < walks / 4)
        fail_msg("only %d of %d walks ended", finished, walks);
    strbuf_free(&text);
    grammar_vocab_free(vocab);
    grammar_free(g);
    json_decref(s);
}

/* ---------------------------------------------------------------- hand-written instances */

typedef struct instances {
    const char *schema;
    int strict;
    const char *const *valid;   /* NULL-terminated */
    const char *const *invalid; /* NULL-terminated */
} instances;

#define TEXTS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void check_instances(const instances *c)
{
    grammar *g = compile(c->schema, c->strict);
    json_t *s = load(c->schema);
    for (const char *const *t = c->valid; *t; t++) {
        if (judge(g, *t, strlen(*t)) != 1)
            fail_msg("rejected a valid text: %s\n  schema %s", *t, c->schema);
        check_sentence(*t, strlen(*t), s, 0); /* the list itself is right */
    }
    for (const char *const *t = c->invalid; *t; t++)
        if (judge(g, *t, strlen(*t)) == 1)
            fail_msg("accepted an invalid text: %s\n  schema %s", *t, c->schema);
    json_decref(s);
    grammar_free(g);
}

static const char WEATHER[] =
    "{\"type\": \"object\", \"properties\": {"
    "\"location\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 5},"
    "\"unit\": {\"enum\": [\"c\", \"f\"]},"
    "\"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 12},"
    "\"precise\": {\"type\": \"boolean\"}},"
    "\"required\": [\"location\", \"unit\"], \"additionalProperties\": false}";

static void objects_keep_order_required_and_no_extra_keys(void **state)
{
    (void)state;
    instances c = {
        WEATHER, 1,
        TEXTS("{\"location\": \"Paris\", \"unit\": \"c\"}",
              "{\"location\": \"a\", \"unit\": \"f\", \"days\": 12}",
              "{\"location\": \"a\", \"unit\": \"c\", \"days\": 1, \"precise\": true}",
              "{\"location\": \"a\", \"unit\": \"c\", \"precise\": false}"),
        TEXTS("{\"location\":\"Paris\",\"unit\":\"c\"}",
              "{\"location\": \"Paris\",  \"unit\": \"c\"}",
              "{\"location\": \"Paris\", \"unit\": \"c\"} ",
              " {\"location\": \"Paris\", \"unit\": \"c\"}",
              "{\"unit\": \"c\", \"location\": \"Paris\"}",
              "{\"location\": \"Paris\"}", "{\"unit\": \"c\"}", "{}",
              "{\"location\": \"Paris\", \"unit\": \"k\"}",
              "{\"location\": \"Paris\", \"unit\": \"c\", \"extra\": 1}",
              "{\"location\": \"a\", \"unit\": \"c\", \"precise\": true, \"days\": 1}",
              "{\"location\": \"a\", \"unit\": \"c\", \"precise\": 1}",
              "{\"location\": 5, \"unit\": \"c\"}", "[\"Paris\", \"c\"]", "null"),
    };
    check_instances(&c);

    instances opt = { /* a optional, b required, c optional */
        "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"},"
        "\"b\": {\"type\": \"integer\"}, \"c\": {\"type\": \"integer\"}}, \"required\": [\"b\"]}",
        1,
        TEXTS("{\"b\": 1}", "{\"a\": 1, \"b\": 2}", "{\"b\": 1, \"c\": 2}",
              "{\"a\": 1, \"b\": 2, \"c\": 3}"),
        TEXTS("{}", "{\"a\": 1}", "{\"a\": 1, \"c\": 2}", "{\"c\": 1, \"b\": 2}",
              "{\"b\": 1, \"a\": 2}", "{, \"b\": 1}", "{\"b\": 1, }", "{\"b\": 1, \"d\": 2}"),
    };
    check_instances(&opt);

    instances none_required = {
        "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"},"
        "\"b\": {\"type\": \"null\"}, \"c\": {\"type\": \"null\"}}}",
        0,
        TEXTS("{}", "{\"a\": null}", "{\"b\": null}", "{\"c\": null}", "{\"a\": null, \"c\": null}",
              "{\"b\": null, \"c\": null}", "{\"a\": null, \"b\": null, \"c\": null}"),
        TEXTS("{\"b\": null, \"a\": null}", "{\"x\": null}", "{, }", "{\"a\": null, }"),
    };
    check_instances(&none_required);
}

static void strings_count_code_points_and_escape_canonically(void **state)
{
    (void)state;
    instances len = {
        "{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", 1,
        TEXTS("\"ab\"", "\"abc\"", "\"\xc3\xa9\xc3\xa9\"",       /* 2 code points, 4 bytes */
              "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"",      /* 3 CJK, 9 bytes */
              "\"\xf0\x9f\x99\x82\xf0\x9f\x99\x82\"",          /* 2 emoji, 8 bytes */
              "\"\\n\\u001f\"", "\"\\\"\\\\a\""),
        TEXTS("\"a\"", "\"abcd\"", "\"\xc3\xa9\"", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e!\"",
              "\"\"", "ab", "\"ab"),
    };
    check_instances(&len);

    instances esc = {
        "{\"type\": \"string\"}", 1,
        TEXTS("\"\"", "\"\\\"\"", "\"\\\\\"", "\"\\n\\r\\t\\b\\f\"", "\"\\u0001\\u000b\\u001f\"",
              "\"\x7f\"", "\"\xc3\xa9\"", "\"\xed\x9f\xbf\"", "\"\xf4\x8f\xbf\xbf\"", "\"/\""),
        TEXTS("\"\\/\"", "\"\\u0041\"", "\"\\u00e9\"", "\"\\u001F\"", "\"\\u0008\"", "\"\\u000a\"",
              "\"\\u0000\"", "\"\\u007f\"", "\"\\x41\"", "\"\\a\"", "\"\x01\"", "\"\t\"",
              "\"\xc0\xaf\"",              /* overlong */
              "\"\xed\xa0\x80\"",          /* a surrogate */
              "\"\xf4\x90\x80\x80\"",      /* above U+10FFFF */
              "\"\xc3\"", "\"\x80\"", "\"\xff\""),
    };
    check_instances(&esc);

    instances zero = {"{\"type\": \"string\", \"maxLength\": 0}", 1, TEXTS("\"\""),
                      TEXTS("\"a\"")};
    check_instances(&zero);
}

static void integers_respect_bounds_exactly(void **state)
{
    (void)state;
    instances range = {
        "{\"type\": \"integer\", \"minimum\": -37, \"maximum\": 1234}", 1,
        TEXTS("-37", "-30", "-29", "-1", "0", "7", "10", "99", "100", "999", "1000", "1199",
              "1229", "1234"),
        TEXTS("-38", "-40", "-100", "-0", "1235", "1240", "1300", "2000", "9999", "01", "00",
              "+5", "1.0", "1e3", "", "-"),
    };
    check_instances(&range);

    instances month = {"{\"type\": \"integer\", \"minimum\": 1, \"maximum\": 12}", 1,
                       TEXTS("1", "9", "10", "12"), TEXTS("0", "13", "20", "-1", "012")};
    check_instances(&month);

    instances excl = {
        "{\"type\": \"integer\", \"exclusiveMinimum\": 0, \"exclusiveMaximum\": 100}", 1,
        TEXTS("1", "50", "99"), TEXTS("0", "100", "-1", "-0")};
    check_instances(&excl);

    instances draft4 = {
        "{\"type\": \"integer\", \"minimum\": 5, \"exclusiveMinimum\": true,"
        " \"maximum\": 7.5}",
        1, TEXTS("6", "7"), TEXTS("5", "8", "7.5")};
    check_instances(&draft4);

    instances both = { /* minimum and exclusiveMinimum: the tighter one */
        "{\"type\": \"integer\", \"minimum\": 5, \"exclusiveMinimum\": 5,"
        " \"maximum\": 9, \"exclusiveMaximum\": 12}",
        1, TEXTS("6", "9"), TEXTS("5", "10", "11")};
    check_instances(&both);

    instances neg = {"{\"type\": \"integer\", \"maximum\": -10}", 1,
                     TEXTS("-10", "-11", "-9999999999999999"), TEXTS("-9", "0", "10")};
    check_instances(&neg);

    instances plain = {"{\"type\": \"integer\"}", 1,
                       TEXTS("0", "-1", "42", "9999999999999999", "-9999999999999999"),
                       TEXTS("-0", "00", "1.5", "10000000000000000", "1e5", " 1")};
    check_instances(&plain);

    instances nonneg = {"{\"type\": \"integer\", \"minimum\": 0}", 1,
                        TEXTS("0", "1", "9999999999999999"), TEXTS("-1", "-0")};
    check_instances(&nonneg);
}

static void numbers_are_canonical_and_bounded(void **state)
{
    (void)state;
    instances plain = {
        "{\"type\": \"number\"}", 1,
        TEXTS("0", "-1", "0.5", "-0.5", "123.456", "0.0001", "-0.0001",
              "12345678901234.5",                  /* 15 significant digits */
              "0.000123456789012345", "9999999999999999", "1.25"),
        TEXTS("-0", "00", "1.0", "1.50", "0.00001", "1e5", "1E5", ".5", "5.", "01.5", "-0.0",
              "123456789012345.6",                 /* 16 significant digits */
              "1.1234567890123456", "+1"),
    };
    check_instances(&plain);

    instances range = {
        "{\"type\": \"number\", \"minimum\": -2.5, \"maximum\": 3.25}", 1,
        TEXTS("-2.5", "-2.49", "-2", "-0.0001", "0", "0.5", "1", "3", "3.2", "3.25", "3.2499",
              "2.999"),
        TEXTS("-2.51", "-2.5001", "-3", "3.26", "3.250001", "3.3", "4", "1.0", "-0"),
    };
    check_instances(&range);

    instances unit = {"{\"type\": \"number\", \"minimum\": 0, \"maximum\": 1}", 1,
                      TEXTS("0", "1", "0.5", "0.9999", "0.0001"),
                      TEXTS("-0.5", "1.0001", "1.5", "2", "-1")};
    check_instances(&unit);

    instances pos = {"{\"type\": \"number\", \"exclusiveMinimum\": 0}", 1,
                     TEXTS("0.0001", "5", "123.5"), TEXTS("0", "-1", "-0.5")};
    check_instances(&pos);

    instances open = {
        "{\"type\": \"number\", \"exclusiveMinimum\": 0.25, \"exclusiveMaximum\": 0.5}", 1,
        TEXTS("0.26", "0.2501", "0.3", "0.4999"), TEXTS("0.25", "0.5", "0.2", "0.25", "0")};
    check_instances(&open);

    instances big = {"{\"type\": \"number\", \"minimum\": 100.75}", 1,
                     TEXTS("100.75", "100.8", "101", "101.1", "99999999999999.5"),
                     TEXTS("100.7", "100", "99.9", "-101")};
    check_instances(&big);
}

/* A short random decimal: -35..35, half of them with 1..4 fraction
 * digits (the last not 0). */
static void random_decimal(uint64_t *rng, char *out, size_t cap, int *has_frac)
{
    long ip = (long)(test_rand(rng) % 71) - 35;
    int nf = test_rand(rng) % 2 ? 1 + (int)(test_rand(rng) % 4) : 0;
    char frac[8] = {0};
    for (int i = 0; i < nf; i++)
        frac[i] = (char)('0' + (i == nf - 1 ? 1 + test_rand(rng) % 9 : test_rand(rng) % 10));
    int neg = ip < 0 || (ip == 0 && nf && test_rand(rng) % 2);
    snprintf(out, cap, "%s%ld%s%s", neg ? "-" : "", labs(ip), nf ? "." : "", frac);
    *has_frac = nf > 0;
}

static void bounds_agree_with_arithmetic(void **state)
{
    (void)state;
    static const char *const keys[] = {"minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum"};
    uint64_t rng = 12345;
    for (int trial = 0; trial < 150; trial++) {
        int integer = trial % 2;
        json_t *s = json_pack("{s:s}", "type", integer ? "integer" : "number");
        for (int k = 0; k < 4; k++) {
            if (test_rand(&rng) % 3)
                continue;
            char text[32];
            int frac;
            random_decimal(&rng, text, sizeof text, &frac);
            json_object_set_new(s, keys[k], frac ? json_real(strtod(text, NULL))
                                                 : json_integer(strtol(text, NULL, 10)));
        }
        strbuf out = {0};
        sem_err err = {0};
        sem_status st = json_schema_grammar(s, "root", 1, &out, &err);
        grammar *g = NULL;
        if (st == SEM_OK) {
            g = grammar_parse(out.data, out.len, &err);
            assert_non_null(g);
        } else {
            assert_int_equal(st, SEM_EREQUEST); /* admits no value */
        }
        for (int i = 0; i < 300; i++) {
            char text[32];
            int frac;
            random_decimal(&rng, text, sizeof text, &frac);
            json_t *v = frac ? json_real(strtod(text, NULL)) : json_integer(strtol(text, NULL, 10));
            int expect = !(integer && frac) && valid(v, s, s);
            int got = g ? judge(g, text, strlen(text)) == 1 : 0;
            if (got != expect) {
                char *schema = json_dumps(s, 0);
                fail_msg("%s: grammar says %d, arithmetic %d\n  %s", text, got, expect, schema);
            }
            json_decref(v);
        }
        grammar_free(g);
        strbuf_free(&out);
        json_decref(s);
    }
}

static void arrays_respect_items_and_counts(void **state)
{
    (void)state;
    instances digits = {
        "{\"type\": \"array\", \"items\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 9},"
        " \"minItems\": 2, \"maxItems\": 3}",
        1, TEXTS("[1, 2]", "[0, 0, 9]"),
        TEXTS("[1]", "[]", "[1, 2, 3, 4]", "[1,2]", "[ 1, 2]", "[10, 1]", "[1, 2,]")};
    check_instances(&digits);

    instances tuple = {
        "{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\", \"maxLength\": 1},"
        " {\"type\": \"boolean\"}], \"items\": {\"type\": \"null\"}}",
        1, TEXTS("[]", "[\"a\"]", "[\"a\", true]", "[\"a\", false, null, null]"),
        TEXTS("[true]", "[\"a\", \"b\"]", "[\"a\", true, 1]", "[null]")};
    check_instances(&tuple);

    instances closed = {
        "{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}], \"items\": false,"
        " \"minItems\": 1}",
        1, TEXTS("[1]"), TEXTS("[]", "[1, 2]")};
    check_instances(&closed);

    instances any = {"{\"type\": \"array\"}", 1, TEXTS("[]", "[1, \"a\", [null], {\"k\": true}]"),
                     TEXTS("[1,2]", "{}")};
    check_instances(&any);
}

static void enum_const_anyof_nullable_and_types(void **state)
{
    (void)state;
    instances en = {
        "{\"enum\": [\"a\", 1, 2.5, 1.0, true, null, {\"k\": [1, \"x\"]}, \"\xc3\xa9\\n\"]}", 1,
        TEXTS("\"a\"", "1", "2.5", "1.0", "true", "null", "{\"k\": [1, \"x\"]}",
              "\"\xc3\xa9\\n\""),
        TEXTS("\"b\"", "2", "2.50", "{\"k\":[1,\"x\"]}", "\"\\u00e9\\n\"", "false")};
    check_instances(&en);

    instances typed_enum = {"{\"type\": \"string\", \"enum\": [\"a\", 1]}", 1, TEXTS("\"a\""),
                            TEXTS("1")};
    check_instances(&typed_enum);

    instances cst = {"{\"const\": \"fixed\"}", 1, TEXTS("\"fixed\""), TEXTS("\"fix\"", "null")};
    check_instances(&cst);

    instances any_of = {
        "{\"anyOf\": [{\"type\": \"string\", \"maxLength\": 2},"
        " {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 5}, {\"type\": \"null\"}]}",
        1, TEXTS("\"ab\"", "0", "5", "null"), TEXTS("\"abc\"", "6", "-1", "true")};
    check_instances(&any_of);

    instances list = {"{\"type\": [\"boolean\", \"null\"]}", 1, TEXTS("true", "false", "null"),
                      TEXTS("0", "\"true\"")};
    check_instances(&list);

    instances nullable = {"{\"type\": \"string\", \"maxLength\": 1, \"nullable\": true}", 1,
                          TEXTS("\"a\"", "null"), TEXTS("\"ab\"", "0")};
    check_instances(&nullable);

    instances one_of = {"{\"oneOf\": [{\"type\": \"integer\"}, {\"type\": \"boolean\"}]}", 1,
                        TEXTS("1", "true"), TEXTS("null", "1.5")};
    check_instances(&one_of);
}

static void additional_properties_and_free_objects(void **state)
{
    (void)state;
    instances extra = {
        "{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}},"
        " \"required\": [\"id\"], \"additionalProperties\": {\"type\": \"string\", \"maxLength\": 2}}",
        1,
        TEXTS("{\"id\": 1}", "{\"id\": 1, \"x\": \"ab\"}", "{\"id\": 1, \"ide\": \"a\", \"i\": \"\"}",
              "{\"id\": 2, \"\": \"a\"}", "{\"id\": 2, \"\xc3\xa9\": \"a\"}"),
        TEXTS("{\"id\": 1, \"id\": \"a\"}", "{\"id\": 1, \"x\": 1}", "{\"x\": \"a\", \"id\": 1}",
              "{\"id\": 1, \"x\": \"abc\"}")};
    check_instances(&extra);

    instances undeclared = { /* "z" is required but not among the properties */
        "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}}, \"required\":"
        " [\"a\", \"z\"], \"additionalProperties\": {\"type\": \"integer\", \"minimum\": 0,"
        " \"maximum\": 3}}",
        1, TEXTS("{\"a\": null, \"z\": 1}", "{\"a\": null, \"z\": 0, \"q\": 2}"),
        TEXTS("{\"a\": null}", "{\"a\": null, \"z\": 5}", "{\"z\": 1, \"a\": null}",
              "{\"a\": null, \"z\": 1, \"z\": 2}")};
    check_instances(&undeclared);

    instances free_form = {
        "{\"type\": \"object\"}", 1,
        TEXTS("{}", "{\"a\": 1, \"b\": [true, null]}", "{\"x\": {\"y\": {\"z\": 1.5}}}"),
        TEXTS("{\"a\":1}", "[]", "{\"a\": 1,}")};
    check_instances(&free_form);

    instances never = { /* a property whose schema is false never appears */
        "{\"type\": \"object\", \"properties\": {\"a\": false, \"b\": {\"type\": \"null\"}},"
        " \"additionalProperties\": true}",
        1, TEXTS("{}", "{\"b\": null}", "{\"b\": null, \"c\": 1}", "{\"ab\": 1}"),
        TEXTS("{\"a\": 1}", "{\"b\": null, \"a\": 1}")};
    check_instances(&never);

    instances closed = {"{\"type\": \"object\", \"additionalProperties\": false}", 1,
                        TEXTS("{}"), TEXTS("{\"a\": 1}")};
    check_instances(&closed);
}

static void any_value_is_bounded_in_depth(void **state)
{
    (void)state;
    const char *deep8 = "[[[[[[[[1]]]]]]]]", *deep9 = "[[[[[[[[[1]]]]]]]]]";
    instances any = {"true", 1,
                     TEXTS("1", "\"x\"", "[1, {\"a\": null}]", "{}", "-0.5", "null", deep8),
                     TEXTS(deep9, "[1,2]", "{\"a\":1}", "nul", "-0")};
    check_instances(&any);
    instances empty = {"{}", 1, TEXTS("{\"a\": [1]}"), TEXTS("{\"a\":[1]}")};
    check_instances(&empty);
    grammar *g = compile_json(NULL, 1); /* NULL: any value too */
    assert_int_equal(judge(g, "[true]", 6), 1);
    grammar_free(g);
}

static void local_refs_recurse_through_containers(void **state)
{
    (void)state;
    instances tree = {
        "{\"$defs\": {\"node\": {\"type\": \"object\", \"properties\": {"
        "\"name\": {\"type\": \"string\", \"maxLength\": 3},"
        "\"children\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/node\"}, \"maxItems\": 2}},"
        "\"required\": [\"name\"], \"additionalProperties\": false}},"
        "\"$ref\": \"#/$defs/node\"}",
        1,
        TEXTS("{\"name\": \"a\"}", "{\"name\": \"a\", \"children\": []}",
              "{\"name\": \"a\", \"children\": [{\"name\": \"b\"}, {\"name\": \"c\", \"children\": "
              "[{\"name\": \"d\"}]}]}"),
        TEXTS("{\"name\": \"a\", \"children\": [{}]}",
              "{\"name\": \"a\", \"children\": [{\"name\": \"b\"}, {\"name\": \"c\"}, {\"name\": \"d\"}]}")};
    check_instances(&tree);

    instances defs = {
        "{\"definitions\": {\"u\": {\"enum\": [\"x\", \"y\"]}}, \"type\": \"array\","
        " \"items\": {\"$ref\": \"#/definitions/u\"}}",
        1, TEXTS("[]", "[\"x\", \"y\"]"), TEXTS("[\"z\"]")};
    check_instances(&defs);

    instances all_of = {
        "{\"allOf\": [{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}},"
        " \"required\": [\"a\"]}, {\"properties\": {\"b\": {\"type\": \"boolean\"}}}]}",
        1, TEXTS("{\"a\": 1}", "{\"a\": 1, \"b\": true}"), TEXTS("{\"b\": true}", "{}")};
    check_instances(&all_of);
}

/* ---------------------------------------------------------------- random sentences */

static void random_sentences_of_bounded_schemas_end_and_validate(void **state)
{
    (void)state;
    random_sentences(WEATHER, 1, 300, 160, 0);
    random_sentences("{\"type\": \"integer\", \"minimum\": -37, \"maximum\": 1234}", 1, 300, 8, 0);
    random_sentences("{\"type\": \"integer\", \"minimum\": 0}", 1, 200, 20, 0);
    random_sentences("{\"type\": \"integer\"}", 1, 200, 20, 0);
    random_sentences("{\"type\": \"number\"}", 1, 300, 24, 0);
    random_sentences("{\"type\": \"number\", \"minimum\": -2.5, \"maximum\": 3.25}", 1, 300, 24, 0);
    random_sentences("{\"type\": \"number\", \"exclusiveMinimum\": 0.25, \"maximum\": 1e20}", 1,
                     300, 24, 0);
    random_sentences("{\"type\": \"number\", \"minimum\": -1e-7, \"exclusiveMaximum\": 100.125}",
                     1, 300, 24, 0);
    random_sentences("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\", "
                     "\"maxLength\": 3}, {\"type\": \"boolean\"}], \"items\": {\"enum\": [1, "
                     "\"two\", null]}, \"maxItems\": 5}",
                     1, 300, 80, 0);
    random_sentences("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}, "
                     "\"b\": {\"type\": \"integer\", \"maximum\": 3, \"minimum\": -3}, "
                     "\"c\": {\"const\": [1, {\"x\": \"y\"}]}}, \"required\": [\"b\"]}",
                     1, 300, 80, 0);
    random_sentences("{\"anyOf\": [{\"type\": \"string\", \"minLength\": 1, \"maxLength\": 4}, "
                     "{\"type\": \"number\", \"minimum\": 0, \"maximum\": 1}, {\"type\": "
                     "\"null\"}], \"nullable\": true}",
                     1, 300, 40, 0);
}

static void random_sentences_of_open_schemas_validate(void **state)
{
    (void)state;
    random_sentences("true", 1, 200, 0, 1);
    random_sentences("{\"type\": \"object\"}", 1, 200, 0, 1);
    random_sentences("{\"type\": \"string\"}", 1, 200, 0, 0);
    random_sentences("{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}}, "
                     "\"required\": [\"id\"], \"additionalProperties\": {\"type\": \"string\", "
                     "\"maxLength\": 2}}",
                     1, 200, 0, 1);
    random_sentences("{\"$defs\": {\"node\": {\"type\": \"object\", \"properties\": {"
                     "\"name\": {\"type\": \"string\", \"maxLength\": 3}, \"children\": {\"type\": "
                     "\"array\", \"items\": {\"$ref\": \"#/$defs/node\"}, \"maxItems\": 2}}, "
                     "\"required\": [\"name\"]}}, \"$ref\": \"#/$defs/node\"}",
                     1, 200, 0, 0);
}

/* ---------------------------------------------------------------- a real tool set */

/* Tool input schemas as an agent client sends them (Claude Code's shape). */
static json_t *tool_schemas(void)
{
    return load(
        "{\"Bash\": {\"type\": \"object\", \"properties\": {"
        "  \"command\": {\"type\": \"string\", \"description\": \"The command to execute\"},"
        "  \"timeout\": {\"type\": \"number\", \"description\": \"Optional timeout in ms (max 600000)\"},"
        "  \"description\": {\"type\": \"string\"},"
        "  \"run_in_background\": {\"type\": \"boolean\"}},"
        " \"required\": [\"command\"], \"additionalProperties\": false,"
        " \"$schema\": \"http://json-schema.org/draft-07/schema#\"},"
        "\"Read\": {\"type\": \"object\", \"properties\": {"
        "  \"file_path\": {\"type\": \"string\", \"description\": \"The absolute path\"},"
        "  \"offset\": {\"type\": \"number\"}, \"limit\": {\"type\": \"number\"}},"
        " \"required\": [\"file_path\"], \"additionalProperties\": false,"
        " \"$schema\": \"http://json-schema.org/draft-07/schema#\"},"
        "\"TodoWrite\": {\"type\": \"object\", \"properties\": {"
        "  \"todos\": {\"type\": \"array\", \"description\": \"The updated todo list\","
        "   \"items\": {\"type\": \"object\", \"properties\": {"
        "     \"content\": {\"type\": \"string\", \"minLength\": 1},"
        "     \"status\": {\"type\": \"string\", \"enum\": [\"pending\", \"in_progress\", \"completed\"]},"
        "     \"activeForm\": {\"type\": \"string\", \"minLength\": 1}},"
        "    \"required\": [\"content\", \"status\", \"activeForm\"], \"additionalProperties\": false}}},"
        " \"required\": [\"todos\"], \"additionalProperties\": false,"
        " \"$schema\": \"http://json-schema.org/draft-07/schema#\"},"
        "\"Grep\": {\"type\": \"object\", \"properties\": {"
        "  \"pattern\": {\"type\": \"string\"}, \"path\": {\"type\": \"string\"},"
        "  \"output_mode\": {\"type\": \"string\", \"enum\": [\"content\", \"files_with_matches\", \"count\"]},"
        "  \"-i\": {\"type\": \"boolean\"}, \"-A\": {\"type\": \"number\"}, \"head_limit\": {\"type\": \"number\"}},"
        " \"required\": [\"pattern\"], \"additionalProperties\": false},"
        "\"WebFetch\": {\"type\": \"object\", \"properties\": {"
        "  \"url\": {\"type\": \"string\", \"format\": \"uri\"}, \"prompt\": {\"type\": \"string\"}},"
        " \"required\": [\"url\", \"prompt\"], \"additionalProperties\": false}}");
}

static void a_real_tool_set_compiles_and_generates_valid_calls(void **state)
{
    (void)state;
    json_t *tools = tool_schemas();
    const char *name;
    json_t *schema;
    json_object_foreach(tools, name, schema) {
        grammar *g = compile_json(schema, 0);
        grammar_free(g);
        char *text = json_dumps(schema, 0);
        random_sentences(text, 0, 60, 0, 0);
        free(text);
    }
    grammar *g = compile_json(json_object_get(tools, "TodoWrite"), 1);
    const char *call = "{\"todos\": [{\"content\": \"Run tests\", \"status\": \"in_progress\", "
                       "\"activeForm\": \"Running tests\"}]}";
    assert_int_equal(judge(g, call, strlen(call)), 1);
    const char *bad = "{\"todos\": [{\"content\": \"Run tests\", \"status\": \"doing\", "
                      "\"activeForm\": \"Running tests\"}]}";
    assert_int_equal(judge(g, bad, strlen(bad)), -1);
    grammar_free(g);
    /* strict refuses the one that asks for a format it cannot enforce */
    strbuf out = {0};
    sem_err err = {0};
    assert_int_equal(json_schema_grammar(json_object_get(tools, "WebFetch"), "root", 1, &out, &err),
                     SEM_EUNSUPPORTED);
    assert_string_equal(err.detail,
                        "properties.url.format: keyword not supported by strict structured output");
    strbuf_free(&out);
    json_decref(tools);
}

/* ---------------------------------------------------------------- errors */

static void strict_refuses_what_it_cannot_enforce_with_the_path(void **state)
{
    (void)state;
    static const struct {
        const char *schema, *detail;
    } cases[] = {
        {"{\"type\": \"string\", \"pattern\": \"a+\"}", "pattern: "},
        {"{\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\", "
         "\"pattern\": \"x\"}}}",
         "properties.location.pattern: "},
        {"{\"type\": \"array\", \"items\": {\"type\": \"integer\", \"multipleOf\": 2}}",
         "items.multipleOf: "},
        {"{\"type\": \"array\", \"uniqueItems\": true}", "uniqueItems: "},
        {"{\"not\": {\"type\": \"null\"}}", "not: "},
        {"{\"anyOf\": [{\"type\": \"string\", \"format\": \"date\"}]}", "anyOf[0].format: "},
        {"{\"$defs\": {\"d\": {\"type\": \"string\", \"format\": \"date\"}}, \"$ref\": "
         "\"#/$defs/d\"}",
         "$defs.d.format: "},
        {"{\"$ref\": \"https://example.com/s.json\"}", "$ref: only local references"},
        {"{\"type\": \"object\", \"anyOf\": [{\"required\": [\"a\"]}]}", "type: beside anyOf"},
        {"{\"type\": \"object\", \"patternProperties\": {\"^x\": {}}}", "patternProperties: "},
        {"{\"allOf\": [{\"type\": \"string\"}, {\"maxLength\": 3}]}", "allOf: only objects"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char detail[SEM_ERR_DETAIL_MAX];
        assert_int_equal(compile_error(cases[i].schema, 1, detail, sizeof detail),
                         SEM_EUNSUPPORTED);
        if (strncmp(detail, cases[i].detail, strlen(cases[i].detail)) != 0)
            fail_msg("detail \"%s\" does not start with \"%s\"", detail, cases[i].detail);
        /* not strict: compiled, the keyword not enforced */
        grammar *g = compile(cases[i].schema, 0);
        grammar_free(g);
    }
}

static void malformed_schemas_are_request_errors(void **state)
{
    (void)state;
    static const struct {
        const char *schema, *detail;
    } cases[] = {
        {"{\"type\": \"strng\"}", "type: unknown type 'strng'"},
        {"{\"type\": 5}", "type: must be a string"},
        {"{\"type\": [\"string\", 1]}", "type: must name JSON types"},
        {"{\"properties\": []}", "properties: must be an object"},
        {"{\"properties\": {\"a\": 5}}", "properties.a: a schema must be"},
        {"{\"required\": \"a\"}", "required: must be an array"},
        {"{\"type\": \"object\", \"required\": [1]}", "required[0]: must be a string"},
        {"{\"type\": \"string\", \"minLength\": -1}", "minLength: must be a non-negative integer"},
        {"{\"type\": \"array\", \"maxItems\": \"3\"}", "maxItems: must be a non-negative integer"},
        {"{\"type\": \"integer\", \"minimum\": \"0\"}", "minimum: must be a number"},
        {"{\"enum\": 5}", "enum: must be an array"},
        {"{\"anyOf\": []}", "anyOf: must be a non-empty array"},
        {"{\"$ref\": \"#/nope\"}", "$ref: '#/nope' names nothing"},
        {"{\"$ref\": 5}", "$ref: must be a string"},
        {"5", "schema: a schema must be an object or a boolean"},
        {"{\"$ref\": \"#\"}", "$ref: '#' refers back to itself"},
        {"{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"anyOf\": [{\"$ref\": "
         "\"#/$defs/a\"}]}}, \"$ref\": \"#/$defs/a\"}",
         "$defs.b.anyOf[0].$ref: '#/$defs/a' refers back"},
        {"false", "schema: admits no value"},
        {"{\"enum\": []}", "schema: admits no value"},
        {"{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 4}", "schema: admits no value"},
        {"{\"type\": \"number\", \"exclusiveMinimum\": 1, \"exclusiveMaximum\": 1}",
         "schema: admits no value"},
        {"{\"type\": \"string\", \"minLength\": 3, \"maxLength\": 2}", "schema: admits no value"},
        {"{\"type\": \"object\", \"properties\": {\"a\": false}, \"required\": [\"a\"]}",
         "schema: admits no value"},
        {"{\"type\": \"object\", \"required\": [\"a\"], \"additionalProperties\": false}",
         "schema: admits no value"},
        {"{\"type\": \"array\", \"items\": false, \"minItems\": 1}", "schema: admits no value"},
        {"{\"additionalProperties\": 3}", "additionalProperties: must be a boolean or a schema"},
        {"{\"nullable\": \"yes\"}", "nullable: must be a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int strict = 0; strict <= 1; strict++) {
            char detail[SEM_ERR_DETAIL_MAX];
            sem_status st = compile_error(cases[i].schema, strict, detail, sizeof detail);
            if (st != SEM_EREQUEST)
                fail_msg("%s (strict %d): %s, %s", cases[i].schema, strict, sem_status_name(st),
                         detail);
            if (strncmp(detail, cases[i].detail, strlen(cases[i].detail)) != 0)
                fail_msg("detail \"%s\" does not start with \"%s\"", detail, cases[i].detail);
        }
    }
}

static void deep_schemas_and_bad_arguments_are_refused(void **state)
{
    (void)state;
    strbuf deep = {0};
    for (int i = 0; i < 100; i++)
        strbuf_puts(&deep, "{\"type\": \"array\", \"items\": ");
    strbuf_puts(&deep, "true");
    for (int i = 0; i < 100; i++)
        strbuf_puts(&deep, "}");
    char detail[SEM_ERR_DETAIL_MAX];
    assert_int_equal(compile_error(deep.data, 0, detail, sizeof detail), SEM_EREQUEST);
    assert_contains(detail, "nested deeper than");
    strbuf_free(&deep);

    strbuf out = {0};
    sem_err err = {0};
    assert_int_equal(json_schema_grammar(NULL, "bad name", 0, &out, &err), SEM_EINVAL);
    assert_int_equal(json_schema_grammar(NULL, "", 0, &out, &err), SEM_EINVAL);
    assert_int_equal(json_schema_grammar(NULL, "ok", 0, NULL, &err), SEM_EINVAL);
    assert_int_equal(out.len, 0);
}

/* ---------------------------------------------------------------- names and sizes */

static void two_grammars_with_different_names_combine(void **state)
{
    (void)state;
    json_t *a = load(WEATHER), *b = load("{\"type\": \"array\", \"items\": {\"type\": \"number\"}}");
    strbuf out = {0};
    strbuf_puts(&out, "root ::= tool-a | tool-b\n");
    assert_int_equal(json_schema_grammar(a, "tool-a", 1, &out, NULL), SEM_OK);
    assert_int_equal(json_schema_grammar(b, "tool-b", 1, &out, NULL), SEM_OK);
    sem_err err = {0};
    grammar *g = grammar_parse(out.data, out.len, &err);
    if (!g)
        fail_msg("%s\n%s", err.detail, out.data);
    const char *x = "{\"location\": \"a\", \"unit\": \"c\"}", *y = "[1.5, -2]";
    assert_int_equal(judge(g, x, strlen(x)), 1);
    assert_int_equal(judge(g, y, strlen(y)), 1);
    grammar_free(g);
    strbuf_free(&out);
    json_decref(a);
    json_decref(b);
}

static void large_bounds_stay_within_the_dialect(void **state)
{
    (void)state;
    grammar *g = compile("{\"type\": \"string\", \"minLength\": 12000, \"maxLength\": 50000}", 1);
    strbuf s = {0};
    strbuf_puts(&s, "\"");
    for (int i = 0; i < 12000; i++)
        strbuf_puts(&s, i % 2 ? "a" : "\xc3\xa9");
    assert_int_equal(judge(g, s.data, s.len), 0); /* no closing quote yet */
    strbuf_puts(&s, "\"");
    assert_int_equal(judge(g, s.data, s.len), 1);
    strbuf_truncate(&s, s.len - 2);
    strbuf_puts(&s, "\"");
    assert_int_equal(judge(g, s.data, s.len), -1); /* 11999 */
    strbuf_free(&s);
    grammar_free(g);
    g = compile("{\"type\": \"array\", \"maxItems\": 1000000}", 1);
    grammar_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(objects_keep_order_required_and_no_extra_keys),
        cmocka_unit_test(strings_count_code_points_and_escape_canonically),
        cmocka_unit_test(integers_respect_bounds_exactly),
        cmocka_unit_test(numbers_are_canonical_and_bounded),
        cmocka_unit_test(bounds_agree_with_arithmetic),
        cmocka_unit_test(arrays_respect_items_and_counts),
        cmocka_unit_test(enum_const_anyof_nullable_and_types),
        cmocka_unit_test(additional_properties_and_free_objects),
        cmocka_unit_test(any_value_is_bounded_in_depth),
        cmocka_unit_test(local_refs_recurse_through_containers),
        cmocka_unit_test(random_sentences_of_bounded_schemas_end_and_validate),
        cmocka_unit_test(random_sentences_of_open_schemas_validate),
        cmocka_unit_test(a_real_tool_set_compiles_and_generates_valid_calls),
        cmocka_unit_test(strict_refuses_what_it_cannot_enforce_with_the_path),
        cmocka_unit_test(malformed_schemas_are_request_errors),
        cmocka_unit_test(deep_schemas_and_bad_arguments_are_refused),
        cmocka_unit_test(two_grammars_with_different_names_combine),
        cmocka_unit_test(large_bounds_stay_within_the_dialect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
