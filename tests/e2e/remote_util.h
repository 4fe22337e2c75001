/*
 * remote_util.h - helpers the several-node tests share (test_http_remote.c,
 * test_http_nodes.c): chat as an agent under an API key, read usage and
 * metrics, wait for a server's write-behind to reach the remote tier.
 */
#ifndef SEM_TEST_REMOTE_UTIL_H
#define SEM_TEST_REMOTE_UTIL_H

#include <unistd.h>

#include "e2e_util.h"

#define CC "/v1/chat/completions"
#define STORY_Q "Tell me a story about a cat and a dog"

/* "Authorization: Bearer KEY\r\n" plus "X-Agent-ID: AGENT\r\n" when given. */
static inline void ru_headers(char *out, size_t cap, const char *key, const char *agent)
{
    int n = snprintf(out, cap, "Authorization: Bearer %s\r\n", key);
    if (agent && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "X-Agent-ID: %s\r\n", agent);
}

static inline json_int_t ru_usage(const http_response *r, const char *field)
{
    json_t *j = e2e_json(r);
    json_t *u = json_object_get(j, "usage");
    json_int_t v = strcmp(field, "cached_tokens") == 0
                       ? json_integer_value(json_object_get(
                             json_object_get(u, "prompt_tokens_details"), "cached_tokens"))
                       : json_integer_value(json_object_get(u, field));
    json_decref(j);
    return v;
}

/* The answer's text (malloc'd). */
static inline char *ru_content(const http_response *r)
{
    json_t *j = e2e_json(r);
    char *s = strdup(json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content")));
    json_decref(j);
    return s;
}

/* question, then (answer given) the answer and a follow-up. malloc'd. */
static inline char *ru_chat_body_q(const char *question, const char *answer,
                                   const char *follow_up, int max_tokens)
{
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", question);
    if (answer) {
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", answer));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", follow_up));
    }
    json_t *b = json_pack("{s:o,s:i,s:i}", "messages", msgs, "max_tokens", max_tokens,
                          "temperature", 0);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* The story question, then (answer given) the answer and a follow-up. malloc'd. */
static inline char *ru_chat_body(const char *answer, const char *follow_up, int max_tokens)
{
    return ru_chat_body_q(STORY_Q, answer, follow_up, max_tokens);
}

/* POST CC as agent under key; asserts 200. */
static inline http_response ru_chat(uint16_t port, const char *key, const char *agent,
                                    const char *body)
{
    char h[512];
    ru_headers(h, sizeof h, key, agent);
    http_response r;
    if (hc_call_within(port, "POST", CC, h, body, 120000, &r) != 0 || r.status != 200)
        fail_msg("chat as %s on port %u: %d %s", agent, (unsigned)port, r.status,
                 r.body ? r.body : "");
    return r;
}

/* GET /v1/agents/{id} under key: the tier ("hot", "warm", "remote"), or
 * "" for 404 (copied into out). */
static inline const char *ru_tier(uint16_t port, const char *key, const char *agent, char *out,
                                  size_t cap)
{
    char h[512], path[256];
    ru_headers(h, sizeof h, key, NULL);
    snprintf(path, sizeof path, "/v1/agents/%s", agent);
    http_response r = e2e_call(port, "GET", path, h, NULL);
    out[0] = '\0';
    if (r.status == 200) {
        json_t *j = e2e_json(&r);
        snprintf(out, cap, "%s", json_string_value(json_object_get(j, "tier")));
        json_decref(j);
    } else if (r.status != 404) {
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    }
    hc_free(&r);
    return out;
}

/* A metrics series' value ("name{labels}" exactly) read under key, or -1. */
static inline double ru_metric(uint16_t port, const char *key, const char *series)
{
    char h[512];
    ru_headers(h, sizeof h, key, NULL);
    return e2e_metric_as(port, h, series);
}

/* Polls a series every 50 ms until it reaches at_least; fails after timeout_ms. */
static inline double ru_wait_metric(uint16_t port, const char *key, const char *series,
                                    double at_least, int timeout_ms)
{
    double v = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        v = ru_metric(port, key, series);
        if (v >= at_least)
            return v;
        usleep(50000);
    }
    fail_msg("%s stayed at %g on port %u (waited for %g)", series, v, (unsigned)port, at_least);
    return v;
}

/* The readiness body's "remote" field (copied into out); the status in *status. */
static inline const char *ru_ready_remote(uint16_t port, int *status, char *out, size_t cap)
{
    http_response r = e2e_call(port, "GET", "/health/ready", NULL, NULL);
    *status = r.status;
    json_t *j = e2e_json(&r);
    const char *v = json_string_value(json_object_get(j, "remote"));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(j);
    hc_free(&r);
    return out;
}

#endif
