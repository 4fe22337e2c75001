/*
 * http_buf.h - a growable byte buffer for response bodies, SSE events,
 * log lines and the metrics page.
 *
 * A buffer that failed to grow stays failed (`oom` set): later appends do
 * nothing, so a caller may append a whole message and check once.
 *
 * Threads: a buffer belongs to one thread at a time.
 */
#ifndef SEM_HTTP_BUF_H
#define SEM_HTTP_BUF_H

#include <stddef.h>

typedef struct http_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;
} http_buf;

void http_buf_append(http_buf *b, const char *s, size_t n);
void http_buf_puts(http_buf *b, const char *s);
void http_buf_printf(http_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (what has been sent). */
void http_buf_consume(http_buf *b, size_t n);
void http_buf_free(http_buf *b);

#endif
