/*
 * json_write.c - JSON text from jansson values (json_write.h).
 */
#include "json_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_write_string(strbuf *dst, const char *s, size_t n)
{
    strbuf_append(dst, "\"", 1);
    size_t run = 0; /* bytes pending, copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (!esc && c >= 0x20) {
            run++;
            continue;
        }
        strbuf_append(dst, s + i - run, run);
        run = 0;
        if (esc)
            strbuf_puts(dst, esc);
        else
            strbuf_printf(dst, "\\u%04x", c);
    }
    strbuf_append(dst, s + n - run, run);
    strbuf_append(dst, "\"", 1);
}

/* Python's float repr: the shortest digits that read back as d, plain
 * for exponents -4..15, else d.ddde+XX. */
void json_write_real(strbuf *dst, double d)
{
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *p = tmp;
    int neg = *p == '-';
    p += neg;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof digits - 1)
            digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (neg)
        strbuf_append(dst, "-", 1);
    if (exp >= 16 || exp < -4) {
        strbuf_append(dst, digits, 1);
        if (nd > 1) {
            strbuf_append(dst, ".", 1);
            strbuf_append(dst, digits + 1, nd - 1);
        }
        strbuf_printf(dst, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp >= 0) {
        for (int i = 0; i <= exp; i++)
            strbuf_append(dst, (size_t)i < nd ? &digits[i] : "0", 1);
        strbuf_append(dst, ".", 1);
        if ((size_t)exp + 1 < nd)
            strbuf_append(dst, digits + exp + 1, nd - (size_t)exp - 1);
        else
            strbuf_append(dst, "0", 1);
    } else {
        strbuf_append(dst, "0.", 2);
        for (int i = 0; i < -exp - 1; i++)
            strbuf_append(dst, "0", 1);
        strbuf_append(dst, digits, nd);
    }
}

void json_write_value(strbuf *dst, const json_t *v, json_write_style style)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        int first = 1;
        strbuf_append(dst, "{", 1);
        json_object_foreach((json_t *)v, key, item) {
            if (!first)
                strbuf_puts(dst, style == JSON_WRITE_TOJSON ? ", " : ",");
            first = 0;
            json_write_string(dst, key, strlen(key));
            strbuf_puts(dst, style == JSON_WRITE_TOJSON ? ": " : ":");
            json_write_value(dst, item, style);
        }
        strbuf_append(dst, "}", 1);
        break;
    }
    case JSON_ARRAY:
        strbuf_append(dst, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                strbuf_puts(dst, style == JSON_WRITE_TOJSON ? ", " : ",");
            json_write_value(dst, json_array_get(v, i), style);
        }
        strbuf_append(dst, "]", 1);
        break;
    case JSON_STRING:
        json_write_string(dst, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        strbuf_printf(dst, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        json_write_real(dst, json_real_value(v));
        break;
    case JSON_TRUE: strbuf_puts(dst, "true"); break;
    case JSON_FALSE: strbuf_puts(dst, "false"); break;
    case JSON_NULL: strbuf_puts(dst, "null"); break;
    }
}
