/*
 * sse.h - the Server-Sent Events wire format (text/event-stream), as both
 * streaming APIs use it:
 *
 *   OpenAI     data: {"object":"chat.completion.chunk",...}\n\n ... data: [DONE]\n\n
 *   Anthropic  event: content_block_delta\ndata: {"type":"content_block_delta",...}\n\n
 *
 * Functions append one complete event to a buffer; a data payload with
 * line breaks becomes several data lines, as the format requires.
 * Comments (": keep-alive") keep an idle stream from timing out; every
 * SSE client ignores them.
 *
 * Threads: pure functions over the caller's buffer.
 */
#ifndef SEM_HTTP_SSE_H
#define SEM_HTTP_SSE_H

#include <jansson.h>

#include "base/strbuf.h"

#define SSE_CONTENT_TYPE "text/event-stream"

/* An event: "event: NAME" when event is not NULL, then the data lines. */
void sse_event(strbuf *b, const char *event, const char *data, size_t len);
/* The same with compact JSON as the data. */
void sse_json(strbuf *b, const char *event, const json_t *data);
/* ": text" and a blank line. */
void sse_comment(strbuf *b, const char *text);

#endif
