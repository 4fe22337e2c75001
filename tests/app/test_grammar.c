/* Specification of grammar.h: the dialect, matching, limits, masking. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../test_util.h"

#include "app/grammar.h"

static grammar *parse_ok(const char *text)
{
    sem_err err = {0};
    grammar *g = grammar_parse(text, strlen(text), &err);
    if (!g)
        fail_msg("grammar did not parse: %s\n%s", err.detail, text);
    return g;
}

/* The parse error's detail (asserting it is SEM_EREQUEST). */
static const char *parse_error(const char *text)
{
    static sem_err err;
    memset(&err, 0, sizeof err);
    grammar *g = grammar_parse(text, strlen(text), &err);
    if (g)
        fail_msg("grammar parsed but should not have:\n%s", text);
    assert_int_equal(err.status, SEM_EREQUEST);
    return err.detail;
}

/* 1: s is a whole sentence; 0: it is a proper prefix; -1: rejected. */
static int judge(const grammar *g, const char *s)
{
    grammar_state *st = grammar_state_new(g, NULL);
    assert_non_null(st);
    int r = grammar_state_accept(st, s, strlen(s)) ? grammar_state_can_end(st) : -1;
    grammar_state_free(st);
    return r;
}

static int sentence(const char *gtext, const char *s)
{
    grammar *g = parse_ok(gtext);
    int r = judge(g, s);
    grammar_free(g);
    return r == 1;
}

/* ---- The dialect ---------------------------------------------------- */

static void literals_match_their_bytes_and_escapes(void **state)
{
    (void)state;
    assert_true(sentence("root ::= \"abc\"", "abc"));
    assert_false(sentence("root ::= \"abc\"", "ab"));
    assert_false(sentence("root ::= \"abc\"", "abcd"));
    assert_true(sentence("root ::= \"a\\\"b\\\\c\\n\\r\\t\\x41\"", "a\"b\\c\n\r\tA"));
    /* \u is the character's UTF-8 bytes; raw UTF-8 is its bytes. */
    assert_true(sentence("root ::= \"\\u00e9\\U0001F600\"", "\xC3\xA9\xF0\x9F\x98\x80"));
    assert_true(sentence("root ::= \"\xC3\xA9t\xC3\xA9\"", "\xC3\xA9t\xC3\xA9"));
    /* The empty literal matches the empty output. */
    assert_true(sentence("root ::= \"\"", ""));
}

static void classes_match_one_byte(void **state)
{
    (void)state;
    const char *g = "root ::= [a-cx\\-\\]] [^0-9]";
    assert_true(sentence(g, "a!"));
    assert_true(sentence(g, "x "));
    assert_true(sentence(g, "-a"));
    assert_true(sentence(g, "]a"));
    assert_false(sentence(g, "d!"));
    assert_false(sentence(g, "a5"));
    assert_false(sentence(g, "ab!")); /* one byte each */
    /* A negated class takes bytes >= 0x80 one at a time. */
    assert_true(sentence("root ::= [^\"]+", "\xC3\xA9"));
    /* "." is any one byte. */
    assert_true(sentence("root ::= . .", "\x00\xff") == 0); /* strlen stops at NUL */
    assert_true(sentence("root ::= . .", "\xff\x01"));
    assert_false(sentence("root ::= .", "ab"));
}

static void utf8_characters_are_spelled_as_byte_sequences(void **state)
{
    (void)state;
    /* Two-byte characters U+00A0..U+00FF, as a lead byte and a continuation. */
    const char *g = "root ::= ([\\xC2-\\xC3] [\\x80-\\xBF])+";
    assert_true(sentence(g, "\xC3\xA0\xC3\xA9"));
    assert_false(sentence(g, "\xC3"));
    grammar *gg = parse_ok(g);
    assert_int_equal(judge(gg, "\xC3"), 0); /* a prefix: the character is unfinished */
    assert_int_equal(judge(gg, "a"), -1);
    grammar_free(gg);
    /* A raw multi-byte character or \u above 0x7F in a class is refused. */
    assert_contains(parse_error("root ::= [\xC3\xA9]"), "one byte");
    assert_contains(parse_error("root ::= [\\u00e9]"), "one byte");
    assert_true(sentence("root ::= [\\u0041]", "A"));
}

static void alternatives_and_groups(void **state)
{
    (void)state;
    const char *g = "root ::= \"a\" (\"b\" | \"cd\" | ) \"e\" | x\n"
                    "x ::= \"z\"";
    assert_true(sentence(g, "abe"));
    assert_true(sentence(g, "acde"));
    assert_true(sentence(g, "ae"));
    assert_true(sentence(g, "z"));
    assert_false(sentence(g, "ace"));
    assert_false(sentence(g, "abez"));
}

static void repetition_operators(void **state)
{
    (void)state;
    assert_true(sentence("root ::= \"a\"?", ""));
    assert_true(sentence("root ::= \"a\"?", "a"));
    assert_false(sentence("root ::= \"a\"?", "aa"));
    assert_true(sentence("root ::= \"ab\"*", ""));
    assert_true(sentence("root ::= \"ab\"*", "ababab"));
    assert_false(sentence("root ::= \"ab\"*", "aba"));
    assert_false(sentence("root ::= \"a\"+", ""));
    assert_true(sentence("root ::= \"a\"+ \"b\"", "aaab"));
    assert_true(sentence("root ::= (\"x\" | \"y\")+", "xyyx"));
}

static void repetition_bounds_are_exact(void **state)
{
    (void)state;
    const char *forms[] = {"root ::= \"a\"{3}", "root ::= \"a\"{2,}", "root ::= \"a\"{2,4}",
                           "root ::= \"a\"{,2}", "root ::= \"a\"{0}", "root ::= (\"a\"){ 1 , 2 }"};
    const int lo[] = {3, 2, 2, 0, 0, 1}, hi[] = {3, 99, 4, 2, 0, 2};
    char buf[16];
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        grammar *g = parse_ok(forms[f]);
        for (int n = 0; n <= 8; n++) {
            memset(buf, 'a', (size_t)n);
            buf[n] = 0;
            int expect = n >= lo[f] && n <= hi[f];
            if ((judge(g, buf) == 1) != expect)
                fail_msg("%s with %d a's: expected %s", forms[f], n, expect ? "yes" : "no");
        }
        grammar_free(g);
    }
    /* A repeated group repeats as a whole. */
    assert_true(sentence("root ::= (\"ab\" [0-9]){2}", "ab1ab2"));
    assert_false(sentence("root ::= (\"ab\" [0-9]){2}", "ab1ab"));
}

static void large_bounds_compile_linearly(void **state)
{
    (void)state;
    /* Nested bounds multiply, but the compiled form only adds. */
    grammar *g = parse_ok("root ::= ([a-z]{0,10000} \",\"){0,10000}");
    char *s = malloc(10002);
    memset(s, 'q', 10000);
    s[10000] = ',';
    s[10001] = 0;
    assert_int_equal(judge(g, s), 1);
    grammar_free(g);
    g = parse_ok("root ::= \"a\"{10000}");
    memset(s, 'a', 10001);
    s[10000] = 0;
    assert_int_equal(judge(g, s), 1);
    s[10000] = 'a';
    s[10001] = 0;
    assert_int_equal(judge(g, s), -1);
    grammar_free(g);
    free(s);
    assert_contains(parse_error("root ::= \"a\"{10001}"), "above 10000");
}

static void layout_comments_and_multi_line_rules(void **state)
{
    (void)state;
    const char *g = "# a comment\n"
                    "root ::=\n"
                    "    item   # after an item\n"
                    "    (\",\"\n"
                    "       item)*\n"
                    "  | \"none\"\n"
                    "\n"
                    "item ::= [0-9]+\n";
    assert_true(sentence(g, "1,22,333"));
    assert_true(sentence(g, "none"));
    assert_false(sentence(g, "1,"));
}

/* ---- Errors --------------------------------------------------------- */

static void syntax_errors_name_line_and_column(void **state)
{
    (void)state;
    assert_contains(parse_error("root ::= \"a\"\nx ::= \"b"), "line 2 col 7: unterminated literal");
    assert_contains(parse_error("root ::= [a-"), "line 1 col 10: unterminated character class");
    assert_contains(parse_error("root := \"a\""), "line 1 col 6: expected '::='");
    assert_contains(parse_error("root ::= (\"a\""), "line 1 col 10: '(' is not closed");
    assert_contains(parse_error("root ::= \"a\")"), "line 1 col 13: ')' without '('");
    assert_contains(parse_error("root ::= * \"a\""), "line 1 col 10: '*' repeats nothing");
    assert_contains(parse_error("root ::= \"a\"{3,2}"), "maximum below its minimum");
    assert_contains(parse_error("root ::= \"a\"{x}"), "expected a number");
    assert_contains(parse_error("root ::= [z-a]"), "backwards");
    assert_contains(parse_error("root ::= []"), "empty character class");
    assert_contains(parse_error("root ::= \"\\q\""), "line 1 col 11: unknown escape \\q");
    assert_contains(parse_error("root ::= \"\\x4\""), "\\x needs 2 hex digits");
    assert_contains(parse_error("root ::= \"a\" ; "), "unexpected ';'");
    assert_contains(parse_error("::= \"a\""), "expected a rule name");
}

static void rule_errors(void **state)
{
    (void)state;
    assert_contains(parse_error("root ::= item\nitem ::= thing"),
                    "line 2 col 10: rule \"thing\" is used but not defined");
    assert_contains(parse_error("\n\nitem ::= \"a\""), "no rule \"root\"");
    assert_contains(parse_error(""), "no rule \"root\"");
    assert_contains(parse_error("root ::= \"a\"\nroot ::= \"b\""),
                    "line 2 col 1: rule \"root\" is already defined at line 1");
}

static void left_recursion_is_refused(void **state)
{
    (void)state;
    assert_contains(parse_error("root ::= root \"a\" | \"b\""),
                    "line 1 col 1: rule \"root\" is left-recursive");
    /* Indirect, and through a prefix that can be empty. */
    assert_contains(parse_error("root ::= x\nx ::= y \"a\"\ny ::= \"b\"? x"),
                    "left-recursive");
    /* Repeating something that can match nothing. */
    assert_contains(parse_error("root ::= (\"a\"?)*"), "left-recursive");
    assert_contains(parse_error("root ::= ws*\nws ::= [ ]*"), "left-recursive");
    /* Right recursion is fine. */
    assert_true(sentence("root ::= \"a\" root | \"b\"", "aaab"));
}

/* ---- States --------------------------------------------------------- */

static void a_rejected_byte_leaves_the_state_unchanged(void **state)
{
    (void)state;
    grammar *g = parse_ok("root ::= \"ab\" \"c\"?");
    grammar_state *s = grammar_state_new(g, NULL);
    assert_false(grammar_state_can_end(s));
    assert_true(grammar_state_accept(s, "a", 1));
    assert_false(grammar_state_accept(s, "bx", 2)); /* b fits, x does not */
    assert_false(grammar_state_can_end(s));
    assert_true(grammar_state_accept(s, "", 0));
    assert_true(grammar_state_accept(s, "b", 1));
    assert_true(grammar_state_can_end(s));
    assert_false(grammar_state_done(s)); /* "c" may still follow */
    assert_true(grammar_state_accept(s, "c", 1));
    assert_true(grammar_state_done(s));
    assert_false(grammar_state_accept(s, "c", 1));
    grammar_state_free(s);
    grammar_free(g);
}

static void nesting_beyond_the_depth_limit_is_rejected(void **state)
{
    (void)state;
    grammar *g = parse_ok("root ::= \"(\" root \")\" | \"x\"");
    grammar_state *s = grammar_state_new(g, NULL);
    int n = 0;
    while (n < 5000 && grammar_state_accept(s, "(", 1))
        n++;
    /* Each level pushes one continuation; the limit stops it, memory stays bounded. */
    assert_true(n > 900 && n < GRAMMAR_MAX_DEPTH + 2);
    assert_true(grammar_state_accept(s, "x", 1));
    grammar_state_free(s);
    grammar_free(g);
}

static void too_many_stacks_reject_the_byte(void **state)
{
    (void)state;
    /* After k b's there are 2^k ways to close, each waiting on a b of either
     * alternative or on its closing byte: 3 * 2^k stacks. */
    grammar *g = parse_ok("root ::= a\na ::= \"b\" a \"c\" | \"b\" a \"d\" | \"\"");
    grammar_state *s = grammar_state_new(g, NULL);
    int n = 0;
    while (n < 20 && grammar_state_accept(s, "b", 1))
        n++;
    assert_int_equal(n, 10); /* 3 * 2^11 > GRAMMAR_MAX_STACKS: the 11th b is refused */
    assert_true(grammar_state_accept(s, "cdc", 3));
    grammar_state_free(s);
    grammar_free(g);
}

/* Nested optional rules: few stacks, but a number of ways to reach them
 * that grows faster than exponentially with the depth. */
static char *nested_optionals(int depth)
{
    static char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "root ::= a0 \"z\"\n");
    for (int i = 0; i < depth; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "a%d ::= a%d? a%d?\n", i, i + 1, i + 1);
    snprintf(text + n, sizeof text - n, "a%d ::= \"x\"\n", depth);
    return text;
}

static void exponential_expansion_is_cut_off(void **state)
{
    (void)state;
    grammar *g = parse_ok(nested_optionals(5));
    assert_int_equal(judge(g, "xxxz"), 1);
    grammar_free(g);
    g = parse_ok(nested_optionals(24));
    sem_err err = {0};
    assert_null(grammar_state_new(g, &err));
    assert_int_equal(err.status, SEM_EREQUEST);
    assert_contains(err.detail, "expansion steps");
    grammar_free(g);
}

/* ---- Vocabulary and masks ------------------------------------------- */

typedef struct fake_vocab {
    const char **text;
    uint32_t n;
    int32_t eog;
} fake_vocab;

static const char *fv_piece(void *u, int32_t tok, size_t *len)
{
    fake_vocab *f = u;
    *len = strlen(f->text[tok]);
    return f->text[tok];
}

static int fv_eog(void *u, int32_t tok)
{
    return tok == ((fake_vocab *)u)->eog;
}

static const char *JSON_GRAMMAR =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9]{1,3})? ws\n"
    "ws     ::= ([ \\t\\n] ws)?\n";

static const char *VOCAB[] = {
    "{", "}", "[", "]", "\"", ":", ",", " ", "\n", "{\"", "\":", "\",", "\"}", "a", "b", "key",
    "true", "false", "null", "tr", "ue", "0", "1", "12", "-", ".", "5e", "3", "\\", "\\n", "\\u00",
    "e9", "\xC3\xA9", "\xC3", "\xA9", "", "<eos>", "}}", "{}", "[]", "x\"", " \"", "\t", "\x01",
    "\":\"", "\"a\"", "nul", "l", "fa", "lse", "{\n", "  ", "ab", "abc", "\"\"",
};

static void masks_agree_with_per_token_checks(void **state)
{
    (void)state;
    fake_vocab f = {VOCAB, sizeof VOCAB / sizeof *VOCAB, 36};
    assert_string_equal(VOCAB[36], "<eos>");
    sem_err err = {0};
    grammar_vocab *v = grammar_vocab_new(f.n, fv_piece, fv_eog, &f, &err);
    assert_non_null(v);
    grammar *g = parse_ok(JSON_GRAMMAR);
    float *logits = malloc(f.n * sizeof *logits);
    uint64_t rng = 42;
    int ended = 0;
    for (int run = 0; run < 40; run++) {
        grammar_state *s = grammar_state_new(g, &err);
        assert_non_null(s);
        for (int step = 0; step < 60; step++) {
            for (uint32_t t = 0; t < f.n; t++)
                logits[t] = 0.f;
            assert_int_equal(grammar_state_mask(s, v, logits), SEM_OK);
            uint32_t n_allowed = 0;
            for (uint32_t t = 0; t < f.n; t++) {
                int allowed = grammar_state_allows(s, v, (int32_t)t);
                if (allowed != !isinf(logits[t]))
                    fail_msg("token %u \"%s\": mask says %d, allows says %d", t, VOCAB[t],
                             !isinf(logits[t]), allowed);
                n_allowed += (uint32_t)allowed;
            }
            assert_false(grammar_state_allows(s, v, 35)); /* empty text, never */
            assert_int_equal(grammar_state_allows(s, v, 36), grammar_state_can_end(s));
            if (n_allowed == 0) {
                assert_true(grammar_state_done(s));
                break;
            }
            /* Pick a random allowed token, EOG rarely. */
            uint32_t pick = (uint32_t)(test_rand(&rng) % n_allowed);
            int32_t tok = -1;
            for (uint32_t t = 0; t < f.n; t++)
                if (!isinf(logits[t]) && pick-- == 0)
                    tok = (int32_t)t;
            if (tok == 36) {
                ended++;
                break;
            }
            size_t len;
            const char *txt = grammar_vocab_text(v, tok, &len);
            assert_true(grammar_state_accept(s, txt, len));
        }
        grammar_state_free(s);
    }
    assert_true(ended > 0);
    free(logits);
    grammar_free(g);
    grammar_vocab_free(v);
}

/* Thousands of random tokens over JSON's bytes: nodes with many children,
 * loops inside strings, multi-byte characters; mask and allows agree. */
static void masks_agree_on_a_large_random_vocabulary(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":, \nab01-e.tn\\u\xC3\xA9";
    enum { N = 3000 };
    static char texts[N][8];
    static const char *ptr[N];
    uint64_t rng = 7;
    for (int t = 0; t < N; t++) {
        int len = t < 2 ? 0 : 1 + (int)(test_rand(&rng) % 6);
        for (int i = 0; i < len; i++)
            texts[t][i] = alphabet[test_rand(&rng) % (sizeof alphabet - 1)];
        texts[t][len] = 0;
        ptr[t] = texts[t];
    }
    fake_vocab f = {ptr, N, 1};
    grammar_vocab *v = grammar_vocab_new(N, fv_piece, fv_eog, &f, NULL);
    assert_non_null(v);
    grammar *g = parse_ok(JSON_GRAMMAR);
    float *logits = malloc(N * sizeof *logits);
    for (int run = 0; run < 10; run++) {
        grammar_state *s = grammar_state_new(g, NULL);
        for (int step = 0; step < 40; step++) {
            for (int t = 0; t < N; t++)
                logits[t] = 0.f;
            assert_int_equal(grammar_state_mask(s, v, logits), SEM_OK);
            uint32_t n_allowed = 0;
            for (int t = 0; t < N; t++) {
                int allowed = grammar_state_allows(s, v, t);
                if (allowed != !isinf(logits[t]))
                    fail_msg("run %d step %d token \"%s\": mask %d, allows %d", run, step,
                             texts[t], !isinf(logits[t]), allowed);
                n_allowed += (uint32_t)allowed;
            }
            if (n_allowed == 0)
                break;
            uint32_t pick = (uint32_t)(test_rand(&rng) % n_allowed);
            int32_t tok = -1;
            for (int t = 0; t < N && tok < 0; t++)
                if (!isinf(logits[t]) && pick-- == 0)
                    tok = t;
            if (tok == 1)
                break;
            assert_true(grammar_state_accept(s, texts[tok], strlen(texts[tok])));
        }
        grammar_state_free(s);
    }
    free(logits);
    grammar_free(g);
    grammar_vocab_free(v);
}

static void structural_positions_mask_precisely(void **state)
{
    (void)state;
    fake_vocab f = {VOCAB, sizeof VOCAB / sizeof *VOCAB, 36};
    grammar_vocab *v = grammar_vocab_new(f.n, fv_piece, fv_eog, &f, NULL);
    grammar *g = parse_ok(JSON_GRAMMAR);
    grammar_state *s = grammar_state_new(g, NULL);
    float logits[sizeof VOCAB / sizeof *VOCAB] = {0};
    assert_int_equal(grammar_state_mask(s, v, logits), SEM_OK);
    /* At the start only an object may open. */
    for (uint32_t t = 0; t < f.n; t++) {
        int expect = !strcmp(VOCAB[t], "{") || !strcmp(VOCAB[t], "{\"") ||
                     !strcmp(VOCAB[t], "{}") || !strcmp(VOCAB[t], "{\n");
        if (expect == isinf(logits[t]))
            fail_msg("token \"%s\" should be %s", VOCAB[t], expect ? "allowed" : "masked");
    }
    assert_true(grammar_state_accept(s, "{\"a\":\"\xC3", 7));
    assert_true(grammar_state_allows(s, v, 34));  /* \xA9 finishes the character */
    assert_false(grammar_state_allows(s, v, 36)); /* no EOG mid-object */
    assert_true(grammar_state_accept(s, "\xA9\"}", 3));
    assert_true(grammar_state_allows(s, v, 36));
    assert_true(grammar_state_allows(s, v, 8)); /* trailing whitespace */
    assert_false(grammar_state_done(s));
    grammar_state_free(s);
    grammar_free(g);
    grammar_vocab_free(v);
}

static void a_vocabulary_of_only_empty_and_eog_tokens(void **state)
{
    (void)state;
    const char *texts[] = {"", "</s>", ""};
    fake_vocab f = {texts, 3, 1};
    grammar_vocab *v = grammar_vocab_new(3, fv_piece, fv_eog, &f, NULL);
    assert_non_null(v);
    grammar *g = parse_ok("root ::= \"a\"?");
    grammar_state *s = grammar_state_new(g, NULL);
    float logits[3] = {1, 1, 1};
    assert_int_equal(grammar_state_mask(s, v, logits), SEM_OK);
    assert_true(isinf(logits[0]) && isinf(logits[2]));
    assert_true(logits[1] == 1.f); /* the output may end */
    assert_false(grammar_state_allows(s, v, -1));
    assert_false(grammar_state_allows(s, v, 3));
    grammar_state_free(s);
    grammar_free(g);
    grammar_vocab_free(v);
    assert_null(grammar_vocab_new(0, fv_piece, NULL, NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literals_match_their_bytes_and_escapes),
        cmocka_unit_test(classes_match_one_byte),
        cmocka_unit_test(utf8_characters_are_spelled_as_byte_sequences),
        cmocka_unit_test(alternatives_and_groups),
        cmocka_unit_test(repetition_operators),
        cmocka_unit_test(repetition_bounds_are_exact),
        cmocka_unit_test(large_bounds_compile_linearly),
        cmocka_unit_test(layout_comments_and_multi_line_rules),
        cmocka_unit_test(syntax_errors_name_line_and_column),
        cmocka_unit_test(rule_errors),
        cmocka_unit_test(left_recursion_is_refused),
        cmocka_unit_test(a_rejected_byte_leaves_the_state_unchanged),
        cmocka_unit_test(nesting_beyond_the_depth_limit_is_rejected),
        cmocka_unit_test(too_many_stacks_reject_the_byte),
        cmocka_unit_test(exponential_expansion_is_cut_off),
        cmocka_unit_test(masks_agree_with_per_token_checks),
        cmocka_unit_test(masks_agree_on_a_large_random_vocabulary),
        cmocka_unit_test(structural_positions_mask_precisely),
        cmocka_unit_test(a_vocabulary_of_only_empty_and_eog_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
