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

typedef struct prompt_port_ops {
    /*
     * Renders the conversation (with an assistant turn opened when
     * add_generation_prompt) and tokenizes it with special tokens parsed
     * and BOS as the vocabulary says. SEM_EREQUEST names a bad message
     * field; SEM_EINVAL carries a template error. *tokens malloc'd.
     */
    sem_status (*chat)(void *self, const char *conversation, size_t len,
                       int add_generation_prompt, int32_t **tokens, size_t *n_tokens,
                       sem_err *err);
    /* Plain text: BOS as the vocabulary says, special-token text literal. */
    sem_status (*text)(void *self, const char *text, size_t len, int32_t **tokens,
                       size_t *n_tokens, sem_err *err);
    /* The model's name for /v1/models and responses. */
    const char *(*model_name)(void *self);
    /* The context length requests are limited to. */
    uint32_t (*n_ctx)(void *self);
} prompt_port_ops;

typedef struct prompt_port {
    const prompt_port_ops *ops;
    void *self;
} prompt_port;

#endif
