/*
 * http_errors.c - sem_status to HTTP status, and error bodies.
 */
#include "http_errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int http_error_status(http_error_kind kind)
{
    switch (kind) {
    case HTTP_ERR_INVALID_REQUEST: return 400;
    case HTTP_ERR_AUTHENTICATION: return 401;
    case HTTP_ERR_NOT_FOUND: return 404;
    case HTTP_ERR_METHOD_NOT_ALLOWED: return 405;
    case HTTP_ERR_TIMEOUT: return 408;
    case HTTP_ERR_CONFLICT: return 409;
    case HTTP_ERR_TOO_LARGE: return 413;
    case HTTP_ERR_RATE_LIMIT: return 429;
    case HTTP_ERR_UNAVAILABLE: return 503;
    case HTTP_ERR_INTERNAL:
    default: return 500;
    }
}

const char *http_error_type(http_error_kind kind, http_shape shape)
{
    int anthropic = shape == HTTP_SHAPE_ANTHROPIC;
    switch (kind) {
    case HTTP_ERR_INVALID_REQUEST: return "invalid_request_error";
    case HTTP_ERR_AUTHENTICATION: return "authentication_error";
    case HTTP_ERR_NOT_FOUND: return "not_found_error";
    case HTTP_ERR_METHOD_NOT_ALLOWED: return "invalid_request_error";
    case HTTP_ERR_TIMEOUT: return "timeout_error";
    case HTTP_ERR_CONFLICT: return anthropic ? "invalid_request_error" : "conflict_error";
    case HTTP_ERR_TOO_LARGE: return anthropic ? "request_too_large" : "invalid_request_error";
    case HTTP_ERR_RATE_LIMIT: return anthropic ? "rate_limit_error" : "rate_limit_exceeded";
    case HTTP_ERR_UNAVAILABLE: return anthropic ? "overloaded_error" : "service_unavailable";
    case HTTP_ERR_INTERNAL:
    default: return anthropic ? "api_error" : "server_error";
    }
}

static http_error make(http_error_kind kind, const char *param, const char *code)
{
    http_error e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.status = http_error_status(kind);
    e.code = code;
    if (param)
        snprintf(e.param, sizeof e.param, "%s", param);
    return e;
}

http_error http_error_make(http_error_kind kind, const char *param, const char *fmt, ...)
{
    http_error e = make(kind, param, NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return e;
}

http_error http_error_from_status(const sem_err *err, const char *param, int draining)
{
    sem_status st = err ? err->status : SEM_EINTERNAL;
    http_error e;
    switch (st) {
    case SEM_EINVAL:
    case SEM_EREQUEST: e = make(HTTP_ERR_INVALID_REQUEST, param, NULL); break;
    case SEM_EUNSUPPORTED: e = make(HTTP_ERR_INVALID_REQUEST, param, "unsupported"); break;
    case SEM_ETOOLARGE: e = make(HTTP_ERR_INVALID_REQUEST, param, "context_length_exceeded"); break;
    case SEM_EAUTH: e = make(HTTP_ERR_AUTHENTICATION, param, "invalid_api_key"); break;
    case SEM_ENOTFOUND: e = make(HTTP_ERR_NOT_FOUND, param, NULL); break;
    case SEM_EBUSY:
        e = draining ? make(HTTP_ERR_UNAVAILABLE, param, "draining")
                     : make(HTTP_ERR_RATE_LIMIT, param, "queue_full");
        break;
    case SEM_EPOOL:
    case SEM_ENOMEM:
    case SEM_EIO:
    case SEM_ECORRUPT:
    case SEM_EINCOMPAT:
    case SEM_EAGAIN:
    case SEM_ECANCELLED: e = make(HTTP_ERR_UNAVAILABLE, param, sem_status_name(st)); break;
    case SEM_EINTERNAL:
    default: e = make(HTTP_ERR_INTERNAL, param, "internal_error"); break;
    }
    snprintf(e.message, sizeof e.message, "%s", err ? sem_err_text(err) : "internal error");
    return e;
}

json_t *http_error_body(const http_error *e, http_shape shape)
{
    const char *type = http_error_type(e->kind, shape);
    if (shape == HTTP_SHAPE_ANTHROPIC)
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message",
                         e->message);
    json_t *err = json_pack("{s:s,s:s}", "message", e->message, "type", type);
    json_object_set_new(err, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
    return json_pack("{s:o}", "error", err);
}
