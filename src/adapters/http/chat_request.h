/*
 * chat_request.h - a chat request as both APIs reduce it: OpenAI-shaped
 * messages and tools, and what constrains the answer (tool_choice,
 * response_format); prepared into prompt tokens and the grammar the
 * answer must follow.
 *
 * The Anthropic routes convert their content blocks into this shape first
 * (tool_use -> tool_calls, tool_result -> tool messages, thinking ->
 * reasoning_content), so both APIs render through the same chat template
 * and constrain through the same grammars (adapters/chat).
 *
 * Threads: pure functions of their arguments and the prompt port.
 */
#ifndef SEM_HTTP_CHAT_REQUEST_H
#define SEM_HTTP_CHAT_REQUEST_H

#include <jansson.h>

#include "adapters/chat/tool_grammar.h"
#include "http_request.h"

typedef enum chat_format {
    CHAT_FORMAT_TEXT,
    CHAT_FORMAT_JSON_OBJECT, /* any JSON object */
    CHAT_FORMAT_JSON_SCHEMA, /* the object valid against schema */
} chat_format;

typedef struct chat_spec {
    const json_t *messages; /* OpenAI-shaped, checked by req_chat_messages */
    const json_t *tools;    /* OpenAI-shaped function tools, or NULL */
    const json_t *kwargs;   /* chat_template_kwargs, or NULL */
    chat_tool_choice choice;
    const char *tool_name;  /* CHAT_TOOL_NAMED */
    int parallel;           /* several calls in one answer may be made */
    chat_format format;
    const json_t *schema;   /* CHAT_FORMAT_JSON_SCHEMA */
    int strict;
    const char *schema_param; /* the request field of the schema, for errors */
} chat_spec;

typedef struct chat_prepared {
    int32_t *prompt; /* malloc'd */
    size_t n_prompt;
    prompt_syntax syntax;
    int in_thinking; /* the answer starts inside a think block */
    int tools_on;    /* tool calls are parsed out of the answer */
    chat_grammar grammar;
} chat_prepared;

/*
 * Renders and tokenizes the conversation and builds the grammar. Errors
 * name the request field: an unknown named tool, a schema semantic cannot
 * compile (400).
 */
sem_status chat_prepare(prompt_port pp, const chat_spec *spec, chat_prepared *out, req_err *e);
void chat_prepared_free(chat_prepared *p);

/* Sets gp's prompt, grammar and triggers to point into p. */
void chat_prepared_params(const chat_prepared *p, gen_params *gp);

/*
 * Where a cache breakpoint ends in the prompt: the conversation's first
 * n_messages messages (with the spec's tools and kwargs; 0 messages: the
 * tools alone) rendered without a generation prompt, and the number of
 * their tokens that prompt[0..n_prompt) starts with. *out is 0 when the
 * template refuses the cut conversation (some want a user turn); only
 * running out of memory is an error.
 */
sem_status chat_prefix_tokens(prompt_port pp, const chat_spec *spec, size_t n_messages,
                              const int32_t *prompt, size_t n_prompt, uint32_t *out, req_err *e);

/*
 * Checks OpenAI function tools: a list of {"type": "function", "function":
 * {"name": 1..128 of [A-Za-z0-9_-], "description"?, "parameters"?: object,
 * "strict"?}}. field names the list ("tools").
 */
sem_status chat_check_tools(const json_t *tools, const char *field, req_err *e);

#endif
