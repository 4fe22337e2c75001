/*
 * sse.c - Server-Sent Events formatting.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_event(http_buf *b, const char *event, const char *data, size_t len)
{
    if (event) {
        http_buf_puts(b, "event: ");
        http_buf_puts(b, event);
        http_buf_puts(b, "\n");
    }
    size_t at = 0;
    for (;;) {
        const char *nl = len > at ? memchr(data + at, '\n', len - at) : NULL;
        size_t end = nl ? (size_t)(nl - data) : len;
        http_buf_puts(b, "data: ");
        http_buf_append(b, data + at, end - at);
        http_buf_puts(b, "\n");
        if (!nl)
            break;
        at = end + 1;
    }
    http_buf_puts(b, "\n");
}

void sse_json(http_buf *b, const char *event, const json_t *data)
{
    char *s = json_dumps(data, JSON_COMPACT);
    if (!s) {
        b->oom = 1;
        return;
    }
    sse_event(b, event, s, strlen(s));
    free(s);
}

void sse_comment(http_buf *b, const char *text)
{
    http_buf_puts(b, ": ");
    http_buf_puts(b, text);
    http_buf_puts(b, "\n\n");
}
