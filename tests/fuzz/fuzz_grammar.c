/*
 * fuzz_grammar.c - libFuzzer target: any text as a grammar; when it
 * parses, a walk over bytes the input names, under the recogniser's
 * limits, and a mask over a small vocabulary that must agree with asking
 * token by token. A grammar is parsed or refused with a request error;
 * nothing it admits may crash or exhaust memory.
 *
 * Input: the grammar text, then a NUL, then the bytes to feed.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "app/grammar.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const VOCAB[] = {"", "{", "}", "\"", "a", "ab", "\\\"", "1", "23", " ",
                                    "\n", "\xc3", "\xa9", "<eog>", "[", "]", ",", ":", "x"};
enum { N_VOCAB = sizeof VOCAB / sizeof *VOCAB, EOG = 13 };

static const char *piece(void *u, int32_t t, size_t *len)
{
    (void)u;
    *len = t == EOG ? 0 : strlen(VOCAB[t]);
    return VOCAB[t];
}

static int is_eog(void *u, int32_t t)
{
    (void)u;
    return t == EOG;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    const uint8_t *feed = nul ? nul + 1 : data + size;
    size_t n_feed = nul ? size - glen - 1 : 0;
    sem_err err = {0};
    grammar *g = grammar_parse((const char *)data, glen, &err);
    if (!g) {
        FUZZ_CHECK(err.status == SEM_EREQUEST || err.status == SEM_ENOMEM, "status %s: %s",
                   sem_status_name(err.status), err.detail);
        return 0;
    }
    grammar_state *s = grammar_state_new(g, &err);
    grammar_vocab *v = grammar_vocab_new(N_VOCAB, piece, is_eog, NULL, &err);
    if (s && v) {
        for (size_t i = 0; i <= n_feed && i < 512; i++) {
            float logits[N_VOCAB] = {0};
            if (grammar_state_mask(s, v, logits) == SEM_OK)
                for (int32_t t = 0; t < N_VOCAB; t++)
                    FUZZ_CHECK((isinf(logits[t]) != 0) == !grammar_state_allows(s, v, t),
                               "token %d: mask and allows disagree", t);
            if (i < n_feed) {
                char b = (char)feed[i];
                grammar_state_accept(s, &b, 1);
            }
        }
    }
    grammar_vocab_free(v);
    grammar_state_free(s);
    grammar_free(g);
    return 0;
}
