/*
 * responses_request.h - a POST /v1/responses body as semantic reduces it:
 * the input items checked and normalized, the Responses API's tools,
 * tool_choice and text.format turned into the chat request's shapes
 * (chat_request.h), and the items of a conversation turned into chat
 * messages for the chat template.
 *
 * Input items, normalized (each gets "type"; ids are added by the route):
 *   {"type":"message","role":"user"|"system"|"developer"|"assistant",
 *    "content":[{"type":"input_text"|"output_text","text":...}]}
 *   {"type":"function_call","call_id","name","arguments"}
 *   {"type":"function_call_output","call_id","output"}
 *   {"type":"reasoning","summary":[{"type":"summary_text","text"}],
 *    "content"?:[{"type":"reasoning_text","text"}]}
 * A string input is one user message. Images, files, item references and
 * the hosted tools are 400 (unsupported) naming the field.
 *
 * Conversation to messages: instructions (the current request's only)
 * become the system message; message items their role's message with
 * the parts' text joined; function_call items the tool_calls of an
 * assistant message (merged into the assistant message just before);
 * function_call_output items tool messages; reasoning items the
 * reasoning_content of the next assistant message.
 *
 * Threads: pure functions of their arguments; any thread.
 */
#ifndef SEM_HTTP_RESPONSES_REQUEST_H
#define SEM_HTTP_RESPONSES_REQUEST_H

#include <jansson.h>

#include "chat_request.h"
#include "http_request.h"

typedef struct rs_request {
    json_t *body;
    json_t *input;        /* normalized input items (new reference) */
    json_t *tools;        /* chat-shaped function tools (new reference), or NULL */
    const char *model;    /* borrow from body, may be NULL */
    const char *instructions;
    const char *previous_id;
    int stream, store;
    uint32_t max_output_tokens; /* 0: not given */
    gen_sampling sampling;
    char agent[AGENT_ID_MAX + 1]; /* the caller's agent identity, "" if none */
    chat_spec spec; /* tools, tool_choice and text.format; messages set later */
} rs_request;

/*
 * Reads and checks every field of a Responses body (not the conversation
 * behind previous_response_id). n_ctx bounds max_output_tokens. On failure
 * e names the field; free r with rs_request_free either way.
 */
sem_status rs_request_read(const char *body, size_t len, const req_identity *who, uint32_t n_ctx,
                           uint64_t seed, rs_request *r, req_err *e);
void rs_request_free(rs_request *r);

/*
 * Appends the chat messages of items (normalized input items or output
 * items of a stored response) to messages. *reasoning carries a reasoning
 * item's text to the next assistant message across calls (start with
 * NULL; free with json_decref). field names the items in errors.
 */
sem_status rs_items_to_messages(const json_t *items, json_t *messages, json_t **reasoning,
                                const char *field, req_err *e);

#endif
