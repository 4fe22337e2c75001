/*
 * Specification of detok_stream.h: text comes out only in whole UTF-8
 * characters, and all of it together is what tokenizer_decode gives.
 * (Every golden case is also streamed in test_tokenizer.c.)
 */
#include "tokenizer_test_util.h"

#include "adapters/text/detok_stream.h"
#include "adapters/text/unicode.h"
#include "base/utf8.h"

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        if (utf8_check_at((const uint8_t *)s + i, n - i, &len) != UTF8_OK)
            return 0;
        i += len;
    }
    return 1;
}

/* Streams ids, checking every chunk is whole UTF-8; returns the text. */
static char *stream_all(detok_stream *s, const int32_t *ids, size_t n, size_t *out_len)
{
    char *acc = malloc(n * 64 + 64);
    size_t al = 0;
    const char *t;
    size_t l;
    sem_err err = {0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(detok_stream_feed(s, ids[i], &t, &l, &err), SEM_OK);
        assert_true(valid_utf8(t, l));
        memcpy(acc + al, t, l);
        al += l;
    }
    assert_int_equal(detok_stream_finish(s, &t, &l, &err), SEM_OK);
    assert_true(valid_utf8(t, l));
    memcpy(acc + al, t, l);
    al += l;
    acc[al] = '\0';
    *out_len = al;
    return acc;
}

static tokenizer *local(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, LOCAL_TOKENIZER_DATA "/%s.gguf", name);
    return tt_load(path);
}

static void emoji_is_never_split(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-llama-spm");
    static const char text[] = "Hi \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ok \xe6\x97\xa5";
    int32_t *ids = NULL;
    size_t n = 0;
    sem_err err = {0};
    assert_int_equal(tokenizer_encode(tk, text, strlen(text), 1, 0, &ids, &n, &err), SEM_OK);
    detok_stream *s = detok_stream_new(tk, 1, 0, &err);
    assert_non_null(s);
    /* the emoji arrive as 4 byte tokens each: nothing comes out for the first 3 */
    int bytes_seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t l;
        assert_int_equal(detok_stream_feed(s, ids[i], &t, &l, &err), SEM_OK);
        assert_true(valid_utf8(t, l));
        if (tokenizer_token_attr(tk, ids[i]) & TOKEN_ATTR_BYTE) {
            bytes_seen++;
            if (bytes_seen % 4 != 0)
                assert_int_equal(l, 0);
        }
    }
    assert_true(bytes_seen >= 8);
    detok_stream_reset(s);
    size_t sl = 0;
    char *streamed = stream_all(s, ids, n, &sl);
    char *dec = NULL;
    size_t dl = 0;
    assert_int_equal(tokenizer_decode(tk, ids, n, 1, 0, &dec, &dl, &err), SEM_OK);
    assert_int_equal(sl, dl);
    assert_memory_equal(streamed, dec, dl);
    assert_string_equal(dec + 1, text); /* after a removed BOS the prefix space stays */
    assert_int_equal(dec[0], ' ');
    free(streamed);
    free(dec);
    free(ids);
    detok_stream_free(s);
    tokenizer_free(tk);
}

static void invalid_bytes_become_replacement_characters(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-llama-spm");
    sem_err err = {0};
    detok_stream *s = detok_stream_new_continuation(tk, 0, 0, &err);
    int32_t f0 = 3 + 0xF0, x9f = 3 + 0x9F, ff = 3 + 0xFF, a = 3 + 'a';
    const char *t;
    size_t l;
    /* an incomplete tail at the end: one U+FFFD */
    assert_int_equal(detok_stream_feed(s, f0, &t, &l, &err), SEM_OK);
    assert_int_equal(detok_stream_feed(s, x9f, &t, &l, &err), SEM_OK);
    assert_int_equal(l, 0);
    assert_int_equal(detok_stream_pending(s), 2);
    assert_int_equal(detok_stream_finish(s, &t, &l, &err), SEM_OK);
    assert_string_equal(t, "\xef\xbf\xbd");
    /* a byte that can never start a character goes out at once as U+FFFD,
     * and a broken sequence as one U+FFFD before the byte that broke it */
    assert_int_equal(detok_stream_feed(s, ff, &t, &l, &err), SEM_OK);
    assert_string_equal(t, "\xef\xbf\xbd");
    assert_int_equal(detok_stream_feed(s, f0, &t, &l, &err), SEM_OK);
    assert_int_equal(l, 0);
    assert_int_equal(detok_stream_feed(s, a, &t, &l, &err), SEM_OK);
    assert_string_equal(t, "\xef\xbf\xbd" "a");
    detok_stream_free(s);
    tokenizer_free(tk);
}

static void invalid_id_changes_nothing(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-gpt-2");
    sem_err err = {0};
    detok_stream *s = detok_stream_new(tk, 0, 0, &err);
    const char *t;
    size_t l;
    assert_int_equal(detok_stream_feed(s, 15496, &t, &l, &err), SEM_OK); /* "Hello" */
    assert_int_equal(detok_stream_feed(s, 50257, &t, &l, &err), SEM_EINVAL);
    assert_contains(err.detail, "50257");
    assert_int_equal(detok_stream_feed(s, -3, &t, &l, &err), SEM_EINVAL);
    assert_int_equal(detok_stream_finish(s, &t, &l, &err), SEM_OK);
    detok_stream_free(s);
    assert_null(detok_stream_new(NULL, 0, 0, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    tokenizer_free(tk);
}

/* The SPM space prefix: decode drops it from the first token; a
 * continuation keeps it. */
static void leading_space_rule(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-llama-spm");
    int32_t *ids = NULL;
    size_t n = 0, l = 0;
    sem_err err = {0};
    assert_int_equal(tokenizer_encode(tk, "Hello world", 11, 0, 0, &ids, &n, &err), SEM_OK);
    detok_stream *s = detok_stream_new(tk, 0, 0, &err);
    char *a = stream_all(s, ids, n, &l);
    assert_string_equal(a, "Hello world");
    detok_stream_free(s);
    s = detok_stream_new_continuation(tk, 0, 0, &err);
    char *b = stream_all(s, ids, n, &l);
    assert_string_equal(b, " Hello world");
    detok_stream_free(s);
    free(a);
    free(b);
    free(ids);
    tokenizer_free(tk);
}

/* A vocabulary that adds EOS: a trailing EOS is dropped, an inner one kept. */
static void trailing_eos_is_held_back(void **state)
{
    (void)state;
    gguf_builder b = {0};
    static const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi", "!"};
    int32_t types[] = {2, 3, 3, 1, 1};
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", toks, 5);
    kv_i32s(&b, "tokenizer.ggml.token_type", types, 5);
    kv_bool(&b, "tokenizer.ggml.add_eos_token", 1);
    sem_err err = {0};
    tokenizer *tk = gb_load(&b, &err);
    if (!tk)
        fail_msg("%s", err.detail);
    int32_t seq1[] = {1, 3, 2};
    int32_t seq2[] = {1, 3, 2, 4};
    int32_t *seqs[] = {seq1, seq2};
    size_t lens[] = {3, 4};
    for (int k = 0; k < 2; k++) {
        for (int rs = 0; rs < 2; rs++) {
            char *dec = NULL;
            size_t dl = 0, sl = 0;
            assert_int_equal(tokenizer_decode(tk, seqs[k], lens[k], rs, 1, &dec, &dl, &err), SEM_OK);
            detok_stream *s = detok_stream_new(tk, rs, 1, &err);
            char *st = stream_all(s, seqs[k], lens[k], &sl);
            assert_string_equal(st, dec);
            free(st);
            free(dec);
            detok_stream_free(s);
        }
    }
    detok_stream *s = detok_stream_new(tk, 1, 1, &err);
    size_t sl = 0;
    char *st = stream_all(s, seq1, 3, &sl);
    assert_string_equal(st, " hi"); /* BOS and EOS removed, BOS keeps the space */
    free(st);
    detok_stream_free(s);
    tokenizer_free(tk);
}

/* clean_spaces across token boundaries: random sequences of the pieces it
 * looks at, streamed, equal decode. */
static void clean_spaces_property(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-gpt-2");
    assert_true(tokenizer_clean_spaces(tk));
    static const char *const pieces[] = {" ", "'", "s", "t", "re", "ve", "m", "ll", "d", ".",
                                         ",", "?", "!", " '", " .", "a", "\xc3\xa9", "  "};
    int32_t pool[64];
    size_t n_pool = 0;
    sem_err err = {0};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(tokenizer_encode(tk, pieces[i], strlen(pieces[i]), 0, 0, &ids, &n, &err),
                         SEM_OK);
        for (size_t j = 0; j < n && n_pool < 64; j++)
            pool[n_pool++] = ids[j];
        free(ids);
    }
    uint64_t rng = 42;
    detok_stream *s = detok_stream_new(tk, 0, 0, &err);
    for (int round = 0; round < 2000; round++) {
        int32_t seq[24];
        size_t n = 1 + test_rand(&rng) % 24;
        for (size_t i = 0; i < n; i++)
            seq[i] = pool[test_rand(&rng) % n_pool];
        char *dec = NULL;
        size_t dl = 0, sl = 0;
        assert_int_equal(tokenizer_decode(tk, seq, n, 0, 0, &dec, &dl, &err), SEM_OK);
        char *st = stream_all(s, seq, n, &sl);
        if (sl != dl || memcmp(st, dec, dl) != 0)
            fail_msg("round %d: stream \"%s\" != decode \"%s\"", round, st, dec);
        free(st);
        free(dec);
    }
    detok_stream_free(s);
    tokenizer_free(tk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emoji_is_never_split),
        cmocka_unit_test(invalid_bytes_become_replacement_characters),
        cmocka_unit_test(invalid_id_changes_nothing),
        cmocka_unit_test(leading_space_rule),
        cmocka_unit_test(trailing_eos_is_held_back),
        cmocka_unit_test(clean_spaces_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
