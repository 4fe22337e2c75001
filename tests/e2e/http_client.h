/*
 * http_client.h - a tiny HTTP/1.1 client over sockets for the end-to-end
 * tests and the HTTP benchmark: one request at a time on a connection,
 * bodies by Content-Length, chunked transfer or end of connection, and raw
 * byte exchanges for malformed requests.
 *
 * Threads: a connection belongs to one thread; different threads may use
 * different connections.
 */
#ifndef SEM_TEST_HTTP_CLIENT_H
#define SEM_TEST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_response {
    int status; /* 0 when no response came */
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated */
    size_t body_len;
    double t_first_body_ms; /* from sending to the first body byte (streams) */
    double t_total_ms;      /* from sending to the end of the body */
} http_response;

/* A connected socket to 127.0.0.1:port, or -1. */
int hc_connect(uint16_t port);

/*
 * Sends one request on fd and reads its response. headers are extra
 * header lines, each ending in "\r\n" (may be NULL). body may be NULL.
 * keep_alive 0 adds "Connection: close". Returns 0, or -1 on an I/O
 * error or timeout (timeout_ms for the whole exchange).
 */
int hc_request(int fd, const char *method, const char *path, const char *headers, const char *body,
               size_t body_len, int keep_alive, int timeout_ms, http_response *out);

/* Connect, one request with Connection: close, close. 30 s timeout. */
int hc_call(uint16_t port, const char *method, const char *path, const char *headers,
            const char *body, http_response *out);
/* The same within timeout_ms: for long generations on a slow (sanitized,
 * busy) machine. */
int hc_call_within(uint16_t port, const char *method, const char *path, const char *headers,
                   const char *body, int timeout_ms, http_response *out);

/* A header's value (case-insensitive name) copied into buf, or NULL. */
const char *hc_header(const http_response *r, const char *name, char *buf, size_t cap);

void hc_free(http_response *r);

/* Sends raw bytes and reads until the server closes or timeout_ms; the
 * reply (maybe empty) is malloc'd. Returns -1 when the connection failed. */
int hc_raw(uint16_t port, const char *bytes, size_t n, int timeout_ms, char **reply,
           size_t *reply_len);

/* Server-Sent Events of a body: up to max events, names and data malloc'd
 * ("" when an event has no name); comments are skipped. */
typedef struct hc_event {
    char *event;
    char *data;
} hc_event;
size_t hc_sse_parse(const char *body, hc_event *out, size_t max);
void hc_sse_free(hc_event *ev, size_t n);

double hc_now_ms(void);

#endif
