/*
 * unicode.h - the Unicode facts the tokenizers need, with llama.cpp's rules.
 *
 * - UTF-8 decoding as llama.cpp decodes tokenizer input: lenient about
 *   overlong forms and surrogates, an invalid byte becomes U+FFFD and the
 *   decoder moves on by one byte.
 * - The general-category class of a code point (unicode_data.c, Unicode
 *   15.1 like llama.cpp) and the White_Space property.
 * - GPT-2's byte <-> printable-character mapping used by byte-level BPE.
 *
 * Strict UTF-8 for everyone else is base/utf8.h. Every function is pure and reentrant.
 */
#ifndef SEM_UNICODE_H
#define SEM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define UNICODE_MAX_CODEPOINT 0x10FFFFu
#define UNICODE_REPLACEMENT 0xFFFDu

/* General-category classes, as llama.cpp groups them. */
typedef enum unicode_class {
    UNICODE_UNDEFINED = 0, /* Cn: unassigned, noncharacters */
    UNICODE_NUMBER,        /* N*  \p{N} */
    UNICODE_LETTER,        /* L*  \p{L} */
    UNICODE_SEPARATOR,     /* Z*  \p{Z} */
    UNICODE_MARK,          /* M*  \p{M} */
    UNICODE_PUNCTUATION,   /* P*  \p{P} */
    UNICODE_SYMBOL,        /* S*  \p{S} */
    UNICODE_CONTROL,       /* Cc Cf Co Cs  \p{C} */
} unicode_class;

/* Generated tables (unicode_data.c). */
extern const uint32_t unicode_class_range_start[];
extern const uint8_t unicode_class_range_class[];
extern const size_t unicode_class_n_ranges;

/* Class of cp; code points above U+10FFFF are UNICODE_UNDEFINED. */
unicode_class unicode_class_of(uint32_t cp);
/* 1 for the 25 code points with the White_Space property. */
int unicode_is_whitespace(uint32_t cp);

/* Length of the UTF-8 sequence a lead byte announces, as llama.cpp reads it
 * (continuation and invalid lead bytes count 1, 0xF8..0xFF count 4). */
size_t unicode_len_utf8(uint8_t lead);

/*
 * Decodes the code point at s[*pos] (pos < n) and advances *pos, exactly as
 * llama.cpp's unicode_cpts_from_utf8: a 2/3/4-byte form needs its
 * continuation bytes (overlong and surrogate forms are accepted); anything
 * else yields U+FFFD and advances one byte.
 */
uint32_t unicode_decode_lenient(const uint8_t *s, size_t n, size_t *pos);

/* GPT-2 byte-level BPE: the code point standing for byte b. */
uint32_t unicode_byte_to_cp(uint8_t b);
/* The byte a code point stands for, or -1 when cp is not one of the 256. */
int unicode_cp_to_byte(uint32_t cp);


#endif
