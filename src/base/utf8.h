/*
 * utf8.h - UTF-8 validation helpers for text that leaves semantic
 * (JSON bodies, SSE events, terminal output).
 *
 * Pure functions; thread-safe.
 */
#ifndef SEM_UTF8_H
#define SEM_UTF8_H

#include <stddef.h>

/* Length of the sequence starting at s[0..n) if it is one complete valid
 * UTF-8 character; 0 if invalid; -1 if valid so far but incomplete. */
int utf8_char_len(const unsigned char *s, size_t n);

/* 1 when s[0..n) is entirely valid UTF-8. */
int utf8_valid(const char *s, size_t n);

/*
 * Copies s[0..n) to out, replacing each invalid byte with U+FFFD. out must
 * hold 3 * n + 1 bytes; returns the output length (out is NUL-terminated).
 */
size_t utf8_sanitize(const char *s, size_t n, char *out);

#endif
