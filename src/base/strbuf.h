/*
 * strbuf.h - a growable byte buffer for response bodies, SSE events,
 * log lines and the metrics page.
 *
 * A buffer that failed to grow stays failed (`oom` set): later appends do
 * nothing, so a caller may append a whole message and check once.
 *
 * Threads: a buffer belongs to one thread at a time.
 */
#ifndef SEM_STRBUF_H
#define SEM_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;
} strbuf;

void strbuf_append(strbuf *b, const char *s, size_t n);
/* Room for `more` bytes after len and the NUL; 0 when it cannot grow (the
 * buffer is then failed). A writer that fills data + len in place ends
 * with strbuf_commit(). */
int strbuf_reserve(strbuf *b, size_t more);
/* Adds n bytes written in place after len (n <= what was reserved). */
void strbuf_commit(strbuf *b, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps the first n bytes (n <= len). */
void strbuf_truncate(strbuf *b, size_t n);
/* Drops the first n bytes (what has been sent). */
void strbuf_consume(strbuf *b, size_t n);
void strbuf_free(strbuf *b);

#endif
