/*
 * Specification of pretokenizer.h: how each scheme splits text into words.
 * The expected splits follow llama.cpp's custom splitters (GPT-2, Llama 3)
 * and its std::regex runs over the collapsed text (the others).
 */
#include "../../test_util.h"

#include <stdlib.h>

#include "adapters/text/pretokenizer.h"
#include "adapters/text/unicode.h"
#include "base/utf8.h"

/* Splits text with scheme `name` and joins the words with '|'. */
static void split(const char *name, const char *text, char *out, size_t cap)
{
    pretokenizer *p = NULL;
    sem_err err = {0};
    if (pretokenizer_create(name, &p, &err) != SEM_OK)
        fail_msg("%s", err.detail);
    size_t n = strlen(text), nc = 0;
    uint32_t *cpts = malloc((n + 1) * sizeof *cpts);
    for (size_t pos = 0; pos < n;)
        cpts[nc++] = unicode_decode_lenient((const uint8_t *)text, n, &pos);
    size_t *lens = NULL, nw = 0;
    assert_int_equal(pretokenizer_split(p, cpts, nc, &lens, &nw, &err), SEM_OK);
    size_t used = 0, at = 0;
    for (size_t w = 0; w < nw; w++) {
        if (w)
            out[used++] = '|';
        for (size_t i = 0; i < lens[w]; i++)
            used += utf8_encode(cpts[at + i], (uint8_t *)out + used);
        at += lens[w];
        assert_true(used + 8 < cap);
    }
    out[used] = '\0';
    assert_int_equal(at, nc);
    free(lens);
    free(cpts);
    pretokenizer_free(p);
}

#define EXPECT_SPLIT(scheme, text, want)                                                       \
    do {                                                                                       \
        char got_[1024];                                                                       \
        split(scheme, text, got_, sizeof got_);                                                \
        if (strcmp(got_, want) != 0)                                                           \
            fail_msg("%s: \"%s\"\n  want %s\n  got  %s", scheme, text, want, got_);            \
    } while (0)

static void gpt2_scheme(void **state)
{
    (void)state;
    EXPECT_SPLIT("gpt-2", "Hello world", "Hello| world");
    EXPECT_SPLIT("gpt-2", "I'm here, don't", "I|'m| here|,| don|'t");
    EXPECT_SPLIT("gpt-2", "I'M", "I|'|M"); /* case-sensitive contractions */
    EXPECT_SPLIT("gpt-2", "a   b", "a|  | b"); /* \s+(?!\S) leaves one space */
    EXPECT_SPLIT("gpt-2", "a   ", "a|   ");   /* at the end all of it */
    EXPECT_SPLIT("gpt-2", "12345 x", "12345| x");
    EXPECT_SPLIT("gpt-2", "\xe6\x97\xa5\xe6\x9c\xac!!", "\xe6\x97\xa5\xe6\x9c\xac|!!");
}

static void llama3_scheme(void **state)
{
    (void)state;
    EXPECT_SPLIT("llama-bpe", "Hello world", "Hello| world");
    EXPECT_SPLIT("llama-bpe", "1234567", "123|456|7");
    EXPECT_SPLIT("llama-bpe", "I'M here", "I|'M| here"); /* case-insensitive */
    EXPECT_SPLIT("llama-bpe", "a  b", "a| | b");
    EXPECT_SPLIT("llama-bpe", "x\n\n  y", "x|\n\n| | y");
    EXPECT_SPLIT("llama-bpe", "!!!\n\nok", "!!!\n\n|ok");
    EXPECT_SPLIT("llama-bpe", "(hello)", "(hello|)");
    EXPECT_SPLIT("llama3", "a \t\n b", "a| \t\n| b");
}

/* Schemes run on PCRE2 over the collapsed text. */
static void regex_schemes(void **state)
{
    (void)state;
    EXPECT_SPLIT("qwen2", "1234 abc", "1|2|3|4| abc");
    EXPECT_SPLIT("qwen2", "Hello, world!", "Hello|,| world|!");
    EXPECT_SPLIT("qwen2", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    EXPECT_SPLIT("starcoder", "x = 123", "x| =| |1|2|3");
    EXPECT_SPLIT("deepseek-coder", "foo(bar)\n", "foo|(|bar|)|\n");
    /* deepseek-llm's \s+$ takes the white space ending a segment */
    EXPECT_SPLIT("deepseek-llm", "abc   ", "abc|   ");
    EXPECT_SPLIT("deepseek-llm", "12 abc", "12| abc");
    /* non-ASCII White_Space is seen as \v: U+3000 splits like a space */
    EXPECT_SPLIT("qwen2", "a\xe3\x80\x80" "b", "a|\xe3\x80\x80" "b");
}

static void unknown_scheme_lists_the_supported_ones(void **state)
{
    (void)state;
    pretokenizer *p = NULL;
    sem_err err = {0};
    assert_int_equal(pretokenizer_create("no-such-pre", &p, &err), SEM_EUNSUPPORTED);
    assert_null(p);
    assert_contains(err.detail, "'no-such-pre'");
    assert_contains(err.detail, "llama3");
    assert_contains(err.detail, "qwen2");
    assert_contains(err.detail, "deepseek-coder");
    char all[4096];
    pretokenizer_supported(all, sizeof all, 0);
    assert_contains(all, "llama-bpe");
    assert_contains(all, "deepseek-r1-qwen");
    /* NULL and "" are "default" */
    assert_int_equal(pretokenizer_create(NULL, &p, &err), SEM_OK);
    assert_string_equal(pretokenizer_name(p), "default");
    pretokenizer_free(p);
}

/* Every scheme compiles and splits a mixed text into words covering it. */
static void every_scheme_splits(void **state)
{
    (void)state;
    char all[4096];
    pretokenizer_supported(all, sizeof all, 0);
    static const char text[] = "It's 2024! \xe6\x97\xa5\xe6\x9c\xac  caf\xc3\xa9\n\n\tx=1; "
                               "\xf0\x9f\x98\x80 <sentinel:3> IMGIMGABZ    end  ";
    for (char *name = strtok(all, ", "); name; name = strtok(NULL, ", ")) {
        char got[1024];
        split(name, text, got, sizeof got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt2_scheme),
        cmocka_unit_test(llama3_scheme),
        cmocka_unit_test(regex_schemes),
        cmocka_unit_test(unknown_scheme_lists_the_supported_ones),
        cmocka_unit_test(every_scheme_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
