/*
 * prompt_port.h - turning API input into prompt tokens, as the HTTP routes
 * see it: chat messages rendered with the model's chat template, plain
 * text tokenized, and the model's identity.
 *
 * A conversation crosses the port as JSON text, so that neither side names
 * the other's JSON library: an object
 *   {"messages": [{"role": "system"|"user"|"assistant"|"tool",
 *                  "content": "..." or [{"type":"text","text":"..."}],
 *                  "tool_calls": [...]}, ...],
 *    "tools": [...],                     (optional, OpenAI-shaped)
 *    "chat_template_kwargs": {...}}      (optional)
 *
 * Threads: every operation may be called from any thread at once.
 */
#ifndef SEM_PROMPT_PORT_H
#define SEM_PROMPT_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

/*
 * How a model's chat format writes tool calls and reasoning, as detected
 * from its chat template (adapters/chat/chat_syntax.h). The output parser
 * and the tool-call grammar both follow it, so what the model is made to
 * write is what the template renders back on the next turn.
 */
typedef enum prompt_tool_format {
    PROMPT_TOOLS_GENERIC = 0, /* no native format: semantic's JSON convention
                                 {"tool_calls": [{"name": .., "arguments": {..}}]}
                                 (docs/tool-calling.md) */
    PROMPT_TOOLS_HERMES,      /* Qwen 2.5, Qwen 3, Hermes:
                                 <tool_call>\n{"name": "f", "arguments": {..}}\n</tool_call> */
    PROMPT_TOOLS_LLAMA3,      /* Llama 3.x: {"name": "f", "parameters": {..}}, optionally
                                 after <|python_tag|>; one call per turn */
    PROMPT_TOOLS_MISTRAL,     /* [TOOL_CALLS][{"name": "f", "arguments": {..}, "id": "abcDEF123"}] */
} prompt_tool_format;

typedef struct prompt_syntax {
    prompt_tool_format tools;
    int parallel_calls;      /* the format carries several calls in one turn */
    const char *think_open;  /* "<think>", or NULL: the model does not reason aloud */
    const char *think_close; /* "</think>" */
} prompt_syntax;

/* What rendering one conversation found out. */
typedef struct prompt_chat_info {
    int in_thinking; /* the generation prompt ends inside an open think block
                        (DeepSeek R1): the output starts with reasoning */
} prompt_chat_info;

typedef struct prompt_port_ops {
    /*
     * Renders the conversation (with an assistant turn opened when
     * add_generation_prompt) and tokenizes it with special tokens parsed
     * and BOS as the vocabulary says. SEM_EREQUEST names a bad message
     * field; SEM_EINVAL carries a template error. *tokens malloc'd. info
     * (may be NULL) says how the generation prompt ends.
     */
    sem_status (*chat)(void *self, const char *conversation, size_t len,
                       int add_generation_prompt, int32_t **tokens, size_t *n_tokens,
                       prompt_chat_info *info, sem_err *err);
    /* Plain text: BOS as the vocabulary says, special-token text literal. */
    sem_status (*text)(void *self, const char *text, size_t len, int32_t **tokens,
                       size_t *n_tokens, sem_err *err);
    /* The model's name for /v1/models and responses. */
    const char *(*model_name)(void *self);
    /* The context length requests are limited to. */
    uint32_t (*n_ctx)(void *self);
    /* The chat format's tool-call and reasoning syntax. */
    prompt_syntax (*syntax)(void *self);
    /* Bytes of a token's text (special tokens rendered; NULL if invalid). */
    const char *(*piece)(void *self, int32_t token, size_t *len);
} prompt_port_ops;

typedef struct prompt_port {
    const prompt_port_ops *ops;
    void *self;
} prompt_port;

#endif
