/*
 * test_prompt_align.c - a prompt rewritten over held tokens spelling the
 * same text, and never where the text or a special token differs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "app/prompt_align.h"

/* A toy vocabulary: token id -> text; 9 is a control token. */
static const char *const texts[] = {
    "<s>", "{\"", "na", "me", "\"", "{\"name\"", "name", ": ", "x", "<eot>", "ab", "a", "b", "c",
};

static const char *piece(void *user, int32_t t, size_t *len)
{
    (void)user;
    if (t < 0 || (size_t)t >= sizeof texts / sizeof texts[0])
        return NULL;
    *len = strlen(texts[t]);
    return texts[t];
}

static int is_special(void *user, int32_t t)
{
    (void)user;
    return t == 9 || t == 0;
}

static const prompt_align_vocab vocab = {piece, is_special, NULL, 0};

static uint32_t align(const int32_t *held, uint32_t nh, int32_t *prompt, uint32_t *n, uint32_t cap)
{
    return prompt_align(held, nh, prompt, n, cap, &vocab);
}

static void test_same_tokens(void **state)
{
    (void)state;
    int32_t held[] = {0, 1, 2, 3, 4}, prompt[8] = {0, 1, 2, 3, 4, 8};
    uint32_t n = 6;
    assert_int_equal(align(held, 5, prompt, &n, 8), 5);
    assert_int_equal(n, 6);
}

/* The model wrote {" na me " where the tokenizer wrote {"name": the held
 * tokens take the prompt's place, and what follows is kept. */
static void test_other_tokenization(void **state)
{
    (void)state;
    int32_t held[] = {0, 1, 2, 3, 4, 9};
    int32_t prompt[16] = {0, 5, 9, 8};
    uint32_t n = 4;
    assert_int_equal(align(held, 6, prompt, &n, 16), 6);
    assert_int_equal(n, 7);
    int32_t want[] = {0, 1, 2, 3, 4, 9, 8};
    assert_memory_equal(prompt, want, sizeof want);
}

/* Text that differs stops the rewrite at the last common boundary. */
static void test_text_differs(void **state)
{
    (void)state;
    int32_t held[] = {0, 10, 12, 13}; /* "ab" "b" "c" */
    int32_t prompt[16] = {0, 11, 12, 12, 8}; /* "a" "b" "b" "x" */
    uint32_t n = 5;
    assert_int_equal(align(held, 4, prompt, &n, 16), 3); /* "ab" "b" == "a" "b" "b" */
    int32_t want[] = {0, 10, 12, 8};
    assert_int_equal(n, 4);
    assert_memory_equal(prompt, want, sizeof want);
}

/* A special token never stands in for text, nor text for it. */
static void test_special_kept(void **state)
{
    (void)state;
    int32_t held[] = {0, 9, 8};
    int32_t prompt[16] = {0, 3, 8}; /* "me" is not "<eot>" anyway */
    uint32_t n = 3;
    assert_int_equal(align(held, 3, prompt, &n, 16), 1);
    assert_int_equal(prompt[1], 3);
}

/* Growth beyond cap is refused: the prompt stays as it was. */
static void test_cap(void **state)
{
    (void)state;
    int32_t held[] = {0, 1, 2, 3, 4};
    int32_t prompt[8] = {0, 5, 8};
    uint32_t n = 3;
    assert_int_equal(align(held, 5, prompt, &n, 4), 1);
    assert_int_equal(n, 3);
    assert_int_equal(prompt[1], 5);
}

/* Two separate differences are both rewritten. */
static void test_two_spans(void **state)
{
    (void)state;
    int32_t held[] = {0, 10, 9, 1, 2, 3, 4, 9};
    int32_t prompt[32] = {0, 11, 12, 9, 5, 9, 13};
    uint32_t n = 7;
    assert_int_equal(align(held, 8, prompt, &n, 32), 8);
    int32_t want[] = {0, 10, 9, 1, 2, 3, 4, 9, 13};
    assert_int_equal(n, 9);
    assert_memory_equal(prompt, want, sizeof want);
}

/* SentencePiece spells a lone space as the bytes of U+2581 where it has no
 * token for it: those compare equal to the space the model wrote. */
static const char *const spm_texts[] = {"<s>", "\":", "\xe2", "\x96", "\x81", "4", " ", "\":\xe2\x96\x81"};

static const char *spm_piece(void *user, int32_t t, size_t *len)
{
    (void)user;
    if (t < 0 || (size_t)t >= sizeof spm_texts / sizeof spm_texts[0])
        return NULL;
    *len = strlen(spm_texts[t]);
    return spm_texts[t];
}

static void test_marked_spaces(void **state)
{
    (void)state;
    prompt_align_vocab spm = {spm_piece, is_special, NULL, 1};
    int32_t held[] = {0, 1, 6, 5};       /* ":" " " "4" */
    int32_t prompt[16] = {0, 1, 2, 3, 4, 5, 5}; /* ":" e2 96 81 "4" "4" */
    uint32_t n = 7;
    assert_int_equal(prompt_align(held, 4, prompt, &n, 16, &spm), 4);
    int32_t want[] = {0, 1, 6, 5, 5};
    assert_int_equal(n, 5);
    assert_memory_equal(prompt, want, sizeof want);
    /* one token holding the mark, against the space */
    int32_t prompt2[16] = {0, 7, 5};
    n = 3;
    assert_int_equal(prompt_align(held, 4, prompt2, &n, 16, &spm), 4);
    /* without the flag the mark is not a space */
    spm.spaces_marked = 0;
    int32_t prompt3[16] = {0, 1, 2, 3, 4, 5};
    n = 6;
    assert_int_equal(prompt_align(held, 4, prompt3, &n, 16, &spm), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_tokens),   cmocka_unit_test(test_other_tokenization),
        cmocka_unit_test(test_text_differs),  cmocka_unit_test(test_special_kept),
        cmocka_unit_test(test_cap),           cmocka_unit_test(test_two_spans),
        cmocka_unit_test(test_marked_spaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
