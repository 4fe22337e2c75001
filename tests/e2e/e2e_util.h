/*
 * e2e_util.h - helpers shared by the end-to-end tests: JSON requests and
 * assertions on the API's shapes.
 */
#ifndef SEM_TEST_E2E_UTIL_H
#define SEM_TEST_E2E_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../test_util.h"
#include "http_client.h"
#include "server_process.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"

/* The body as JSON (new reference); fails the test when it is not JSON. */
static inline json_t *e2e_json(const http_response *r)
{
    json_error_t je;
    json_t *j = json_loads(r->body ? r->body : "", JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("status %d: body is not JSON (%s): %.500s", r->status, je.text,
                 r->body ? r->body : "");
    return j;
}

/* POST (or any method) with a JSON body; asserts the connection worked. */
static inline http_response e2e_call(uint16_t port, const char *method, const char *path,
                                     const char *headers, const char *body)
{
    http_response r;
    if (hc_call(port, method, path, headers, body, &r) != 0)
        fail_msg("%s %s: no response (status %d)", method, path, r.status);
    return r;
}

/* {"error":{"message":..,"type":..,"param":..,"code":..}} with param when given. */
static inline void e2e_assert_openai_error(const http_response *r, int status, const char *param)
{
    if (r->status != status)
        fail_msg("expected %d, got %d: %s", status, r->status, r->body);
    json_t *j = e2e_json(r);
    json_t *e = json_object_get(j, "error");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "message")) ||
        !json_string_length(json_object_get(e, "message")) ||
        !json_is_string(json_object_get(e, "type")) || !json_object_get(e, "param") ||
        !json_object_get(e, "code"))
        fail_msg("not an OpenAI error: %s", r->body);
    if (param) {
        const char *got = json_string_value(json_object_get(e, "param"));
        if (!got || strcmp(got, param) != 0)
            fail_msg("expected param \"%s\", got %s", param, r->body);
    }
    json_decref(j);
}

/* {"type":"error","error":{"type":..,"message":..}} */
static inline void e2e_assert_anthropic_error(const http_response *r, int status)
{
    if (r->status != status)
        fail_msg("expected %d, got %d: %s", status, r->status, r->body);
    json_t *j = e2e_json(r);
    json_t *e = json_object_get(j, "error");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type || strcmp(type, "error") != 0 || !json_is_object(e) ||
        !json_is_string(json_object_get(e, "type")) ||
        !json_string_length(json_object_get(e, "message")))
        fail_msg("not an Anthropic error: %s", r->body);
    json_decref(j);
}

static inline void e2e_assert_healthy(uint16_t port)
{
    http_response r = e2e_call(port, "GET", "/health", NULL, NULL);
    if (r.status != 200)
        fail_msg("the server is not healthy: %d %s", r.status, r.body);
    hc_free(&r);
}

/* A series line without its model="..." label: name{a="1",model="m"} 5
 * becomes name{a="1"} 5 in out. */
static inline void e2e_metric_unlabel(const char *line, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)len, line);
    char *m = strstr(out, "model=\"");
    char *brace = strchr(out, '{');
    if (!m || !brace || m < brace)
        return;
    char *end = strchr(m + 7, '"');
    if (!end)
        return;
    end++;
    if (*end == ',')
        end++;
    else if (m[-1] == ',')
        m--;
    memmove(m, end, strlen(end) + 1);
    if (brace[1] == '}')
        memmove(brace, brace + 2, strlen(brace + 2) + 1);
}

/* The value of a metrics series ("name{labels}" exactly): a series named
 * without its model label is summed over the models; -1 when there is
 * none. headers: the request's (an API key), or NULL. */
static inline double e2e_metric_as(uint16_t port, const char *headers, const char *series)
{
    http_response r = e2e_call(port, "GET", "/metrics", headers, NULL);
    double v = -1;
    size_t n = strlen(series);
    char buf[1024];
    for (const char *line = r.body; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (*line != '#') {
            if (strstr(series, "model=\""))
                snprintf(buf, sizeof buf, "%.*s", (int)len, line); /* one model's */
            else
                e2e_metric_unlabel(line, len, buf, sizeof buf);
            if (strncmp(buf, series, n) == 0 && buf[n] == ' ')
                v = (v < 0 ? 0 : v) + atof(buf + n + 1);
        }
        line = nl ? nl + 1 : NULL;
    }
    hc_free(&r);
    return v;
}

static inline double e2e_metric(uint16_t port, const char *series)
{
    return e2e_metric_as(port, NULL, series);
}

#endif
