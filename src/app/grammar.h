/*
 * grammar.h - constrained decoding: a context-free grammar, and the state
 * of one output against it, which says which tokens may come next.
 *
 * The dialect is llama.cpp's GBNF, read at the byte level:
 *
 *   root   ::= "{" ws members? "}"        rule definitions, one or more lines;
 *                                         rule "root" is the start
 *   name   ::= alt1 | alt2                 alternatives
 *   "abc"  literal bytes (escapes \" \\ \n \r \t \xNN)
 *   [a-z\x80-\xff]  one byte in the set; [^"\\] one byte not in it
 *   ( ... ) grouping; x? x* x+ x{m} x{m,} x{m,n} repetition
 *   # comment to the end of the line
 *
 * Names are [a-zA-Z0-9-]+. A character class matches one byte, so a
 * grammar that wants whole UTF-8 characters spells their byte sequences
 * out (json_schema.h does). Left recursion is refused.
 *
 * Details of the reading (docs/constrained-decoding.md has the whole of it):
 *   - literals and classes also take \uXXXX / \UXXXXXXXX; in a literal it
 *     stands for the character's UTF-8 bytes, in a class it must be below
 *     0x80 (one byte). Classes also take \] \[ \- \^. A raw byte >= 0x80
 *     inside a class is refused (write \xNN), so that [é] cannot be
 *     mistaken for one character.
 *   - "." is any one byte.
 *   - a rule's body may span lines: a newline ends it only when the next
 *     non-blank line starts another definition ("name ::=") or the text
 *     ends. Inside ( ) newlines are free.
 *   - a rule defined twice is an error; repetition bounds are at most
 *     GRAMMAR_REPEAT_MAX.
 *
 * Matching is a pushdown recogniser: the state is a set of stacks of
 * grammar positions (each stack one way the output so far can be read),
 * advanced byte by byte. Identical stacks are kept once. Three limits keep
 * a pathological grammar from exhausting memory or time: at most
 * GRAMMAR_MAX_STACKS stacks, at most GRAMMAR_MAX_DEPTH positions per stack,
 * and at most GRAMMAR_MAX_EXPANSIONS expansion steps to read one byte
 * (nested optional rules can reach the same few stacks along exponentially
 * many paths); a byte whose reading would exceed one is rejected (as if
 * the grammar refused it), and so is a byte whose reading cannot get
 * memory.
 *
 * A grammar_vocab indexes a vocabulary's token texts (a byte trie) so
 * that masking the tokens that cannot continue an output visits only the
 * prefixes the grammar still admits.
 *
 * Threads: a grammar and a grammar_vocab are immutable once built and may
 * be shared by any number of threads; a grammar_state belongs to one
 * request (one thread at a time; allows() and mask() use scratch memory
 * inside the state although they take it const).
 */
#ifndef SEM_GRAMMAR_H
#define SEM_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

#define GRAMMAR_MAX_STACKS 4096   /* stacks in one state */
#define GRAMMAR_MAX_DEPTH 1024    /* positions on one stack (nesting) */
#define GRAMMAR_MAX_EXPANSIONS 65536 /* expansion steps to read one byte */
#define GRAMMAR_REPEAT_MAX 10000  /* largest m or n in x{m,n} */
#define GRAMMAR_ELEMS_MAX (1u << 22) /* compiled size of one grammar, in elements */

/* ---- Grammar ------------------------------------------------------- */

typedef struct grammar grammar; /* compiled, immutable, shareable */

/*
 * Parses and compiles text[0..len). Errors: SEM_EREQUEST with
 * "line L col C: ..." (1-based, columns in bytes) for a syntax error, a
 * rule used but not defined, a missing "root", left recursion, a grammar
 * over the size limits; SEM_ENOMEM.
 */
grammar *grammar_parse(const char *text, size_t len, sem_err *err);
void grammar_free(grammar *g);

/* ---- One output's position ---------------------------------------- */

typedef struct grammar_state grammar_state; /* owned by one request */

/* At the start of "root". SEM_EREQUEST if even the start exceeds the
 * limits above; SEM_ENOMEM. The grammar must outlive the state. */
grammar_state *grammar_state_new(const grammar *g, sem_err *err);
void grammar_state_free(grammar_state *s);

/* 1: bytes[0..n) continue the output and the state advanced past them;
 * 0: rejected (some byte cannot follow), the state is unchanged. n == 0
 * is accepted. */
int grammar_state_accept(grammar_state *s, const char *bytes, size_t n);
/* The output so far is a whole sentence of the grammar. */
int grammar_state_can_end(const grammar_state *s);
/* It can end and no byte can follow. */
int grammar_state_done(const grammar_state *s);

/* ---- Vocabulary ---------------------------------------------------- */

typedef struct grammar_vocab grammar_vocab; /* byte trie over token texts; immutable */

/*
 * Indexes tokens 0..n_vocab-1: piece() gives a token's text (len bytes,
 * read during the call only), is_eog() whether it ends generation
 * (is_eog may be NULL: none does). SEM_ENOMEM.
 */
grammar_vocab *grammar_vocab_new(uint32_t n_vocab,
                                 const char *(*piece)(void *u, int32_t tok, size_t *len),
                                 int (*is_eog)(void *u, int32_t tok), void *u, sem_err *err);
void grammar_vocab_free(grammar_vocab *v);
uint32_t grammar_vocab_size(const grammar_vocab *v);
/* Whether token ends generation; its text, NULL-safe (len 0 for none). */
int grammar_vocab_is_eog(const grammar_vocab *v, int32_t token);
const char *grammar_vocab_text(const grammar_vocab *v, int32_t token, size_t *len);

/*
 * Whether token may come next: an end-of-generation token where the
 * output can end, a token with text the grammar accepts; never a token
 * with empty text or an id out of range.
 */
int grammar_state_allows(const grammar_state *s, const grammar_vocab *v, int32_t token);

/*
 * Sets logits[t] = -INFINITY for every token t (0..n_vocab-1) that cannot
 * come next: tokens whose text the grammar rejects, empty-text tokens,
 * and end-of-generation tokens unless can_end. Exactly the tokens for
 * which grammar_state_allows() is 0. SEM_ENOMEM (logits untouched) if the
 * scratch memory for the vocabulary's longest token cannot be had (once
 * per state; later calls allocate only if the stack sets grow).
 */
sem_status grammar_state_mask(const grammar_state *s, const grammar_vocab *v, float *logits);

#endif
