/*
 * utf8.c - strict UTF-8: checking, cleaning, decoding, encoding.
 */
#include "utf8.h"

#include <string.h>

utf8_check utf8_check_at(const uint8_t *s, size_t n, size_t *len)
{
    uint8_t b0 = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 < 0x80) {
        *len = 1;
        return UTF8_OK;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (b0 == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0)
            lo = 0x90;
        else if (b0 == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else {
        *len = 1;
        return UTF8_INVALID;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n) {
            *len = n;
            return UTF8_INCOMPLETE;
        }
        uint8_t b = s[i];
        int ok = i == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
        if (!ok) {
            *len = i;
            return UTF8_INVALID;
        }
    }
    *len = need;
    return UTF8_OK;
}

int utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0, len; i < n; i += len)
        if (utf8_check_at(p + i, n - i, &len) != UTF8_OK)
            return 0;
    return 1;
}

size_t utf8_whole_prefix(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, len;
    while (i < n && utf8_check_at(p + i, n - i, &len) != UTF8_INCOMPLETE)
        i += len;
    return i;
}

size_t utf8_sanitize(const char *s, size_t n, char *out)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0, len;
    while (i < n) {
        if (utf8_check_at(p + i, n - i, &len) == UTF8_OK) {
            memcpy(out + o, s + i, len);
            o += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += len;
    }
    out[o] = '\0';
    return o;
}

uint32_t utf8_decode(const char *s, size_t avail, size_t *used)
{
    const uint8_t *p = (const uint8_t *)s;
    if (utf8_check_at(p, avail, used) != UTF8_OK)
        return UTF8_REPLACEMENT;
    switch (*used) {
    case 1: return p[0];
    case 2: return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    case 3: return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    default:
        return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
               (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    }
}

size_t utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp > 0x10FFFF)
        cp = UTF8_REPLACEMENT;
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_seq_len(const char *s, size_t avail)
{
    size_t used;
    (void)utf8_check_at((const uint8_t *)s, avail, &used);
    return used;
}

size_t utf8_count(const char *s, size_t n)
{
    size_t count = 0, used;
    for (size_t i = 0; i < n; i += used, count++)
        (void)utf8_decode(s + i, n - i, &used);
    return count;
}

size_t utf8_offset(const char *s, size_t n, size_t idx)
{
    size_t i = 0, used;
    for (; idx > 0 && i < n; i += used, idx--)
        (void)utf8_decode(s + i, n - i, &used);
    return i;
}
