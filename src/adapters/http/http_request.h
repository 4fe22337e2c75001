/*
 * http_request.h - reading API requests: the JSON body, typed fields with
 * their ranges, stop strings, sampling, chat messages and the agent a
 * request speaks for.
 *
 * Every reader leaves its output untouched when the field is absent or
 * null (the caller sets defaults first), and on a bad value returns
 * SEM_EREQUEST (SEM_EUNSUPPORTED for a valid value semantic does not
 * implement) with a req_err that names the field ("messages[2].role")
 * and says what was expected.
 *
 * Agent identity, first found wins:
 *   1. the X-Agent-ID header
 *   2. the body's "agent_id"
 *   3. the X-Claude-Code-Session-Id header
 *   4. OpenAI's "prompt_cache_key" / Anthropic's "metadata.user_id"
 * An id must be 1..128 of [A-Za-z0-9_-]; 1 and 2 are refused otherwise.
 * 3 and 4 are the clients' own identifiers, of any length and shape: a
 * value that is not a valid id names the agent "u-" + the hex of its
 * 64-bit hash (stable), or, when it is a JSON object with a "session_id",
 * that session id. Without any the request is anonymous: it may reuse a
 * recent identical prefix, nothing is kept.
 *
 * Threads: pure functions of their arguments; any thread.
 */
#ifndef SEM_HTTP_REQUEST_H
#define SEM_HTTP_REQUEST_H

#include <jansson.h>
#include <stdint.h>

#include "domain/agent_id.h"
#include "http_errors.h"
#include "http_exchange.h"
#include "ports/generation_port.h"
#include "ports/prompt_port.h"

typedef struct req_err {
    sem_err err;
    char param[HTTP_ERROR_PARAM_MAX];
} req_err;

/* Sets e (status, field, printf detail) and returns st. */
sem_status req_fail(req_err *e, sem_status st, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The body as a JSON object (new reference); SEM_ENOMEM when the JSON
 * parser ran out of memory. */
sem_status req_body_json(const char *body, size_t len, json_t **out, req_err *e);
/* req_body_json of the exchange's body. */
sem_status req_body_object(http_exchange *x, json_t **out, req_err *e);

sem_status req_string(const json_t *o, const char *field, const char **out, req_err *e);
sem_status req_bool(const json_t *o, const char *field, int *out, req_err *e);
/* An integer in [min, max]. */
sem_status req_uint(const json_t *o, const char *field, uint32_t min, uint32_t max, uint32_t *out,
                    req_err *e);
/* A number in [min, max]; exclusive_min makes the lower bound open. */
sem_status req_number(const json_t *o, const char *field, double min, double max, int exclusive_min,
                      float *out, req_err *e);

#define REQ_STOP_MAX 16
#define REQ_STOP_BYTES 256

/* A string or a list of strings (OpenAI "stop"; Anthropic "stop_sequences"
 * is a list). Pointers borrow from o. */
sem_status req_stop(const json_t *o, const char *field, int allow_string,
                    const char *out[REQ_STOP_MAX], size_t *n, req_err *e);

/* The sampling fields shared by the APIs: temperature (0..max_temperature),
 * top_p, top_k, min_p, presence_penalty, frequency_penalty,
 * repetition_penalty, seed. *seed_given says whether "seed" was there. */
sem_status req_sampling(const json_t *o, float max_temperature, gen_sampling *s, int *seed_given,
                        req_err *e);

/* Checks an OpenAI messages list: non-empty; each an object with a known
 * role (system, developer, user, assistant, tool) and content that is a
 * string, a list of text parts, or null on an assistant turn with
 * tool_calls. */
sem_status req_chat_messages(const json_t *messages, const char *field, req_err *e);

/* The headers that name an agent (NULL when absent). */
typedef struct req_identity {
    const char *agent_header;   /* X-Agent-ID */
    const char *session_header; /* X-Claude-Code-Session-Id */
} req_identity;

/*
 * The agent the request speaks for, in the order above; api_field is the
 * API's own key ("prompt_cache_key", or "metadata.user_id" for the
 * Anthropic shape); id[0] is '\0' when anonymous.
 */
sem_status req_agent_id(const req_identity *who, const json_t *body, const char *api_field,
                        char id[AGENT_ID_MAX + 1], req_err *e);

/*
 * Renders a conversation through the prompt port (tools and kwargs may be
 * NULL) into *tokens (malloc'd); info (may be NULL) as the port's chat(). A template's refusal is a request error
 * naming the field it names ("messages[2].content").
 */
sem_status req_render_chat(prompt_port pp, const json_t *messages, const json_t *tools,
                           const json_t *kwargs, int add_generation_prompt, int32_t **tokens,
                           size_t *n_tokens, prompt_chat_info *info, req_err *e);

#endif
