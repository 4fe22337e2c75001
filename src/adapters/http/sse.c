/*
 * sse.c - Server-Sent Events formatting.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_event(strbuf *b, const char *event, const char *data, size_t len)
{
    if (event) {
        strbuf_puts(b, "event: ");
        strbuf_puts(b, event);
        strbuf_puts(b, "\n");
    }
    size_t at = 0;
    for (;;) {
        const char *nl = len > at ? memchr(data + at, '\n', len - at) : NULL;
        size_t end = nl ? (size_t)(nl - data) : len;
        strbuf_puts(b, "data: ");
        strbuf_append(b, data + at, end - at);
        strbuf_puts(b, "\n");
        if (!nl)
            break;
        at = end + 1;
    }
    strbuf_puts(b, "\n");
}

void sse_json(strbuf *b, const char *event, const json_t *data)
{
    char *s = json_dumps(data, JSON_COMPACT);
    if (!s) {
        b->oom = 1;
        return;
    }
    sse_event(b, event, s, strlen(s));
    free(s);
}

void sse_comment(strbuf *b, const char *text)
{
    strbuf_puts(b, ": ");
    strbuf_puts(b, text);
    strbuf_puts(b, "\n\n");
}
