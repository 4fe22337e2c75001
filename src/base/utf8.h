/*
 * utf8.h - the project's one UTF-8 checker, decoder and encoder.
 *
 * Strict UTF-8 (RFC 3629, Unicode table 3-7): no overlong forms, no
 * surrogates, nothing above U+10FFFF. An ill-formed sequence is replaced
 * by one U+FFFD per maximal subpart (Unicode's recommended practice), so
 * every module that cleans text cleans it the same way.
 *
 * The tokenizers decode their input with llama.cpp's lenient rule instead
 * (adapters/text/unicode.h); that difference is deliberate, to match it.
 *
 * Pure functions; thread-safe.
 */
#ifndef SEM_UTF8_H
#define SEM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/*
 * For the n > 0 bytes at s:
 *   UTF8_OK          a well-formed sequence of *len bytes starts s;
 *   UTF8_INCOMPLETE  all n bytes are a proper prefix of a well-formed
 *                    sequence (more bytes may complete it);
 *   UTF8_INVALID     s starts an ill-formed sequence whose maximal subpart
 *                    is *len bytes (replace those with one U+FFFD).
 */
typedef enum utf8_check { UTF8_OK, UTF8_INCOMPLETE, UTF8_INVALID } utf8_check;
utf8_check utf8_check_at(const uint8_t *s, size_t n, size_t *len);

/* 1 when s[0..n) is entirely valid UTF-8. */
int utf8_valid(const char *s, size_t n);

/* The length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) sequence: what can be cleaned now when
 * more bytes may follow. */
size_t utf8_whole_prefix(const char *s, size_t n);

/*
 * Copies s[0..n) to out, replacing each ill-formed subpart (and an
 * incomplete sequence at the end) with U+FFFD. out must hold 3 * n + 1
 * bytes; returns the output length (out is NUL-terminated).
 */
size_t utf8_sanitize(const char *s, size_t n, char *out);

/* Decodes the character at s[0..avail) (avail > 0): its code point and
 * *used bytes, or U+FFFD over the ill-formed subpart. */
uint32_t utf8_decode(const char *s, size_t avail, size_t *used);

/* Writes cp as UTF-8 into out[4] and returns the byte count. Code points
 * above U+10FFFF are written as U+FFFD. */
size_t utf8_encode(uint32_t cp, uint8_t out[4]);

/* Bytes of the character at s[0..avail) (avail > 0), as utf8_decode steps. */
size_t utf8_seq_len(const char *s, size_t avail);

/* Characters in s[0..n), as utf8_decode steps. */
size_t utf8_count(const char *s, size_t n);

/* Byte offset of character idx in s[0..n) (n when idx is past the end). */
size_t utf8_offset(const char *s, size_t n, size_t idx);

#endif
