/*
 * unicode.c - code point classes, lenient and strict UTF-8, GPT-2 byte map.
 *
 * The class table is a sorted list of ranges (unicode_data.c, about 2300
 * entries); a lookup is a binary search. The byte map is computed from its
 * definition on each call: it is a handful of comparisons.
 */
#include "unicode.h"

unicode_class unicode_class_of(uint32_t cp)
{
    if (cp > UNICODE_MAX_CODEPOINT)
        return UNICODE_UNDEFINED;
    /* Largest i with start[i] <= cp; start[0] == 0. */
    size_t lo = 0, hi = unicode_class_n_ranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (unicode_class_range_start[mid] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (unicode_class)unicode_class_range_class[lo];
}

int unicode_is_whitespace(uint32_t cp)
{
    if (cp <= 0x20)
        return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85)
        return 0;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

size_t unicode_len_utf8(uint8_t lead)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

static int is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

uint32_t unicode_decode_lenient(const uint8_t *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    uint8_t b0 = s[i];
    if (!(b0 & 0x80)) {
        *pos = i + 1;
        return b0;
    }
    if ((b0 & 0x40) && !(b0 & 0x20)) {
        if (i + 1 < n && is_cont(s[i + 1])) {
            *pos = i + 2;
            return ((uint32_t)(b0 & 0x1F) << 6) | (s[i + 1] & 0x3F);
        }
    } else if ((b0 & 0x40) && !(b0 & 0x10)) {
        if (i + 2 < n && is_cont(s[i + 1]) && is_cont(s[i + 2])) {
            *pos = i + 3;
            return ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                   (s[i + 2] & 0x3F);
        }
    } else if ((b0 & 0x40) && !(b0 & 0x08)) {
        if (i + 3 < n && is_cont(s[i + 1]) && is_cont(s[i + 2]) && is_cont(s[i + 3])) {
            *pos = i + 4;
            return ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                   ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        }
    }
    *pos = i + 1;
    return UNICODE_REPLACEMENT;
}

/* GPT-2's bytes_to_unicode(): the printable bytes '!'..'~', 0xA1..0xAC and
 * 0xAE..0xFF stand for themselves; the other 68 bytes, in increasing order,
 * take the code points 256, 257, ... */
static int byte_is_self(uint32_t b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t unicode_byte_to_cp(uint8_t b)
{
    if (byte_is_self(b))
        return b;
    /* Count the non-self bytes below b: 0x00..0x20 (33), 0x7F..0xA0 (34), 0xAD. */
    if (b <= 0x20)
        return 256u + b;
    if (b <= 0xA0)
        return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 67u; /* 0xAD */
}

int unicode_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_is_self(cp) ? (int)cp : -1;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 67)
        return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 67)
        return 0xAD;
    return -1;
}

