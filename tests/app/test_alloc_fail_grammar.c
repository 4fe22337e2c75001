/*
 * Allocation failures in grammars: for every k, the k-th allocation of an
 * operation fails. Parsing, making a state and indexing a vocabulary
 * report SEM_ENOMEM and leak nothing (LSan in the ASan build); accepting
 * text rejects it and leaves the state as it was; a mask either reports
 * SEM_ENOMEM with the logits untouched or masks at least every token that
 * cannot follow (memory trouble never lets a wrong token through). The
 * loop ends at the first k the operation does not reach.
 */
#include "../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "alloc_fail.h"
#include "app/grammar.h"

static const char *GRAMMAR =
    "root   ::= \"{\" ws (pair (\",\" ws pair){0,3})? \"}\"\n"
    "pair   ::= \"\\\"\" [a-z\\x80-\\xff]{1,8} \"\\\":\" ws (\"true\" | [0-9]+ | root)\n"
    "ws     ::= [ \\n]?\n";

static const char *VOCAB[] = {"{", "}", "\"", "\":", ",", " ", "a", "ab", "true", "1", "12",
                              "{\"", "\"}", "\xC3\xA9", "", "</s>", "x", "{\"a\":"};
enum { N_VOCAB = sizeof VOCAB / sizeof *VOCAB, EOG = 15 };

static const char *piece(void *u, int32_t t, size_t *len)
{
    (void)u;
    *len = strlen(VOCAB[t]);
    return VOCAB[t];
}

static int is_eog(void *u, int32_t t)
{
    (void)u;
    return t == EOG;
}

static void parsing(void **state)
{
    (void)state;
    for (uint64_t k = 1;; k++) {
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        grammar *g = grammar_parse(GRAMMAR, strlen(GRAMMAR), &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_non_null(g);
            grammar_free(g);
            break;
        }
        assert_null(g);
        assert_int_equal(err.status, SEM_ENOMEM);
    }
}

static void states_and_vocabularies(void **state)
{
    (void)state;
    grammar *g = grammar_parse(GRAMMAR, strlen(GRAMMAR), NULL);
    for (uint64_t k = 1;; k++) {
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        grammar_state *s = grammar_state_new(g, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            grammar_state_free(s);
            break;
        }
        assert_null(s);
        assert_int_equal(err.status, SEM_ENOMEM);
    }
    for (uint64_t k = 1;; k++) {
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        grammar_vocab *v = grammar_vocab_new(N_VOCAB, piece, is_eog, NULL, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            grammar_vocab_free(v);
            break;
        }
        assert_null(v);
        assert_int_equal(err.status, SEM_ENOMEM);
    }
    grammar_free(g);
}

/* A long nested text: the stack sets must grow while it is read. */
static const char *TEXT = "{\"ab\": {\"c\": {\"d\": {\"e\": 12, \"f\": true}}}, \"g\": 1}";

static void accepting(void **state)
{
    (void)state;
    grammar *g = grammar_parse(GRAMMAR, strlen(GRAMMAR), NULL);
    for (uint64_t k = 1;; k++) {
        grammar_state *s = grammar_state_new(g, NULL);
        assert_true(grammar_state_accept(s, "{", 1));
        alloc_fail_arm(k, ALLOC_FAIL_PERSIST);
        int ok = grammar_state_accept(s, TEXT + 1, strlen(TEXT) - 1);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_true(ok);
            assert_true(grammar_state_done(s));
            grammar_state_free(s);
            break;
        }
        /* Rejected, and the state is where it was: the text reads now. */
        assert_false(ok);
        assert_false(grammar_state_can_end(s));
        assert_true(grammar_state_accept(s, TEXT + 1, strlen(TEXT) - 1));
        assert_true(grammar_state_done(s));
        grammar_state_free(s);
    }
    grammar_free(g);
}

static void masking(void **state)
{
    (void)state;
    grammar *g = grammar_parse(GRAMMAR, strlen(GRAMMAR), NULL);
    grammar_vocab *v = grammar_vocab_new(N_VOCAB, piece, is_eog, NULL, NULL);
    float logits[N_VOCAB];
    for (uint64_t k = 1;; k++) {
        grammar_state *s = grammar_state_new(g, NULL);
        assert_true(grammar_state_accept(s, "{\"ab\": {", 8));
        for (int t = 0; t < N_VOCAB; t++)
            logits[t] = 1.0f;
        alloc_fail_arm(k, 0);
        sem_status st = grammar_state_mask(s, v, logits);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        for (int t = 0; t < N_VOCAB; t++) {
            int allowed = grammar_state_allows(s, v, t);
            if (!hit || st == SEM_OK) {
                if (!isinf(logits[t]) && !allowed)
                    fail_msg("k=%llu: token \"%s\" let through", (unsigned long long)k, VOCAB[t]);
                if (!hit && isinf(logits[t]) == allowed)
                    fail_msg("token \"%s\": mask and allows differ", VOCAB[t]);
            } else {
                assert_int_equal(st, SEM_ENOMEM);
                assert_true(logits[t] == 1.0f);
            }
        }
        grammar_state_free(s);
        if (!hit)
            break;
    }
    grammar_vocab_free(v);
    grammar_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parsing),
        cmocka_unit_test(states_and_vocabularies),
        cmocka_unit_test(accepting),
        cmocka_unit_test(masking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
