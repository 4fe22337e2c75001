/*
 * json_text.c - compact JSON text from jansson values.
 */
#include "json_text.h"

#include <stdio.h>
#include <string.h>

static void append_string(strbuf *out, const char *s, size_t n)
{
    strbuf_append(out, "\"", 1);
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        strbuf_append(out, s + i - run, run);
        run = 0;
        char esc[8];
        switch (c) {
        case '"': strbuf_append(out, "\\\"", 2); break;
        case '\\': strbuf_append(out, "\\\\", 2); break;
        case '\n': strbuf_append(out, "\\n", 2); break;
        case '\r': strbuf_append(out, "\\r", 2); break;
        case '\t': strbuf_append(out, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            strbuf_append(out, esc, 6);
        }
    }
    strbuf_append(out, s + n - run, run);
    strbuf_append(out, "\"", 1);
}

static void append_real(strbuf *out, double d)
{
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g", d);
    strbuf_append(out, num, (size_t)n);
    if (!strpbrk(num, ".eEni")) /* stays a real when read back */
        strbuf_append(out, ".0", 2);
}

void json_text_append(strbuf *out, const json_t *v)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        int first = 1;
        strbuf_append(out, "{", 1);
        json_object_foreach((json_t *)v, key, item) {
            if (!first)
                strbuf_append(out, ",", 1);
            first = 0;
            append_string(out, key, strlen(key));
            strbuf_append(out, ":", 1);
            json_text_append(out, item);
        }
        strbuf_append(out, "}", 1);
        break;
    }
    case JSON_ARRAY:
        strbuf_append(out, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                strbuf_append(out, ",", 1);
            json_text_append(out, json_array_get(v, i));
        }
        strbuf_append(out, "]", 1);
        break;
    case JSON_STRING:
        append_string(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        strbuf_append(out, num,
                      (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
                                       json_integer_value(v)));
        break;
    case JSON_REAL: append_real(out, json_real_value(v)); break;
    case JSON_TRUE: strbuf_append(out, "true", 4); break;
    case JSON_FALSE: strbuf_append(out, "false", 5); break;
    case JSON_NULL: strbuf_append(out, "null", 4); break;
    }
}
