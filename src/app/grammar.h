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
 * A grammar_vocab indexes a vocabulary's token texts (a byte trie) so
 * that masking the tokens that cannot continue an output visits only the
 * prefixes the grammar still admits.
 *
 * Threads: a grammar and a grammar_vocab are immutable once built and may
 * be shared by any number of threads; a grammar_state belongs to one
 * request (one thread at a time).
 */
#ifndef SEM_GRAMMAR_H
#define SEM_GRAMMAR_H

#endif
