/*
 * http_errors.h - what a failure looks like to an HTTP client: the status
 * code, and the error body in the shape of the API the client called.
 *
 *   OpenAI    (chat, completions, models, agents, admin, health)
 *     {"error":{"message":"...","type":"invalid_request_error","param":"messages","code":null}}
 *   Anthropic (/v1/messages...)
 *     {"type":"error","error":{"type":"invalid_request_error","message":"..."}}
 *
 * http_error_from_status() is the one place a sem_status becomes an HTTP
 * status; conditions that exist only in HTTP (no such route, wrong method,
 * body too large, connection limit) are made with http_error_make().
 *
 * Threads: pure functions; any thread.
 */
#ifndef SEM_HTTP_ERRORS_H
#define SEM_HTTP_ERRORS_H

#include <jansson.h>

#include "domain/status.h"

/* Which API's shapes a route speaks. */
typedef enum http_shape { HTTP_SHAPE_OPENAI, HTTP_SHAPE_ANTHROPIC } http_shape;

typedef enum http_error_kind {
    HTTP_ERR_INVALID_REQUEST,    /* 400 */
    HTTP_ERR_AUTHENTICATION,     /* 401 */
    HTTP_ERR_NOT_FOUND,          /* 404 */
    HTTP_ERR_METHOD_NOT_ALLOWED, /* 405 */
    HTTP_ERR_TIMEOUT,            /* 408 */
    HTTP_ERR_CONFLICT,           /* 409 */
    HTTP_ERR_TOO_LARGE,          /* 413 */
    HTTP_ERR_RATE_LIMIT,         /* 429, with Retry-After */
    HTTP_ERR_INTERNAL,           /* 500: a bug */
    HTTP_ERR_UNAVAILABLE,        /* 503: loading, draining, out of resources */
} http_error_kind;

#define HTTP_ERROR_PARAM_MAX 96

typedef struct http_error {
    http_error_kind kind;
    int status;
    char param[HTTP_ERROR_PARAM_MAX]; /* the request field at fault, "" if none */
    const char *code;                 /* OpenAI's machine code, or NULL */
    char message[SEM_ERR_DETAIL_MAX];
} http_error;

/*
 * The HTTP error for a failed operation: SEM_EINVAL, SEM_EREQUEST,
 * SEM_EUNSUPPORTED and SEM_ETOOLARGE (a prompt longer than the context)
 * are 400; SEM_EAUTH 401; SEM_ENOTFOUND 404; SEM_EBUSY 429 (queue full),
 * or 503 when `draining`; SEM_EPOOL, SEM_ENOMEM, SEM_EIO, SEM_ECORRUPT,
 * SEM_EINCOMPAT and SEM_ECANCELLED 503; SEM_EINTERNAL (and anything
 * unknown) 500. param may be NULL.
 */
http_error http_error_from_status(const sem_err *err, const char *param, int draining);

/* An error of the given kind with a printf-style message. */
http_error http_error_make(http_error_kind kind, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The status code of a kind. */
int http_error_status(http_error_kind kind);

/* The type string of a kind in a shape ("invalid_request_error", "overloaded_error"...). */
const char *http_error_type(http_error_kind kind, http_shape shape);

/* The error body (new reference). */
json_t *http_error_body(const http_error *e, http_shape shape);

#endif
