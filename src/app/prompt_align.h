/*
 * prompt_align.h - a new prompt rewritten to start with the tokens an
 * agent already holds wherever both spell the same text.
 *
 * A model's own output is rarely tokenized the way the tokenizer would
 * tokenize the same text: the model wrote "{\"na" + "me\"" where the
 * tokenizer writes "{\"" + "name\"". When the next turn's prompt renders
 * that output back, the token sequences differ although the text is the
 * same, and plain prefix matching would recompute the whole answer. Where
 * the held tokens and the prompt first differ, prompt_align looks for the
 * longest span over which both spell identical bytes, ending on a token
 * boundary on both sides, and puts the held tokens in the prompt's place;
 * then it goes on from the next difference. The model then reads the text
 * exactly as it wrote it, and the agent's KV for it is reused.
 *
 * Vocabularies that write a space as U+2581 (SentencePiece) may spell one
 * as the bytes of U+2581 where they have no token for it alone, while the
 * model wrote a plain space: with spaces_marked the two compare equal.
 *
 * Special tokens never stand in for text nor text for them: a span that
 * contains one (is_special) on either side is not rewritten, so text a
 * user typed never becomes a control token.
 *
 * Threads: a pure function of its arguments.
 */
#ifndef SEM_PROMPT_ALIGN_H
#define SEM_PROMPT_ALIGN_H

#include <stddef.h>
#include <stdint.h>

typedef struct prompt_align_vocab {
    /* Bytes of a token's text, or NULL. */
    const char *(*piece)(void *user, int32_t token, size_t *len);
    /* 1 for control tokens (may be NULL: none are). */
    int (*is_special)(void *user, int32_t token);
    void *user;
    int spaces_marked; /* U+2581 is a space (SentencePiece vocabularies) */
} prompt_align_vocab;

/*
 * Rewrites prompt[0..*n) in place (it has room for cap tokens) as above,
 * never making it longer than cap. Returns the number of leading prompt
 * tokens now equal to held's.
 */
uint32_t prompt_align(const int32_t *held, uint32_t n_held, int32_t *prompt, uint32_t *n,
                      uint32_t cap, const prompt_align_vocab *v);

#endif
