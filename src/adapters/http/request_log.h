/*
 * request_log.h - one JSON line per finished request, written to a file
 * descriptor (stderr) with a single write(2), so concurrent lines never
 * interleave:
 *
 *   {"ts":"2025-01-01T12:00:00.123Z","request_id":"req_...","method":"POST",
 *    "route":"chat_completions","path":"/v1/chat/completions","agent":"a1",
 *    "status":200,"prompt_tokens":42,"cached_tokens":40,"completion_tokens":16,
 *    "ttft_ms":3.1,"duration_ms":20.4,"stream":true}
 *
 * "agent" is the id the client gave (never the namespaced key); "error"
 * carries the message of an error reply; "aborted" marks a stream whose
 * client left before its end.
 *
 * Threads: any thread; nothing shared.
 */
#ifndef SEM_HTTP_REQUEST_LOG_H
#define SEM_HTTP_REQUEST_LOG_H

#include <stdint.h>

typedef struct request_log_entry {
    const char *request_id, *method, *route, *path;
    const char *agent; /* NULL or "" when anonymous */
    int status;
    uint32_t prompt_tokens, cached_tokens, completion_tokens;
    int has_usage;
    double ttft_ms, duration_ms;
    int stream, aborted;
    const char *error; /* NULL when none */
} request_log_entry;

void request_log_write(int fd, const request_log_entry *e);

#endif
