/*
 * request_log.c - JSON request lines.
 */
#include "request_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void timestamp(char *out, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%.19s.%03dZ", base, (int)(tv.tv_usec / 1000) % 1000);
}

void request_log_write(int fd, const request_log_entry *e)
{
    if (fd < 0)
        return;
    char ts[48];
    timestamp(ts, sizeof ts);
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "request_id", json_string(e->request_id ? e->request_id : ""));
    json_object_set_new(o, "method", json_string(e->method ? e->method : ""));
    json_object_set_new(o, "route", json_string(e->route ? e->route : "unmatched"));
    /* The path may hold bytes that are not UTF-8: jansson refuses those. */
    json_t *path = json_string(e->path ? e->path : "");
    json_object_set_new(o, "path", path ? path : json_string("(not UTF-8)"));
    json_object_set_new(o, "agent", e->agent && *e->agent ? json_string(e->agent) : json_null());
    json_object_set_new(o, "status", json_integer(e->status));
    if (e->has_usage) {
        json_object_set_new(o, "prompt_tokens", json_integer(e->prompt_tokens));
        json_object_set_new(o, "cached_tokens", json_integer(e->cached_tokens));
        json_object_set_new(o, "completion_tokens", json_integer(e->completion_tokens));
        json_object_set_new(o, "ttft_ms", json_real((double)(int64_t)(e->ttft_ms * 1000) / 1000));
    }
    json_object_set_new(o, "duration_ms",
                        json_real((double)(int64_t)(e->duration_ms * 1000) / 1000));
    if (e->stream)
        json_object_set_new(o, "stream", json_true());
    if (e->aborted)
        json_object_set_new(o, "aborted", json_true());
    if (e->error) {
        json_t *msg = json_string(e->error);
        json_object_set_new(o, "error", msg ? msg : json_string("(not UTF-8)"));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it */
    ssize_t w = write(fd, line, n + 1);
    (void)w; /* a log that cannot be written is not the client's problem */
    free(line);
}
