/*
 * chat_prompt.h - a conversation to prompt tokens for one model: the chat
 * template rendered with the model's BOS/EOS texts, then tokenized with
 * special tokens parsed and BOS added as the vocabulary says (what
 * llama.cpp's server does with a chat request).
 *
 * Threads: any thread; the model and template are shared read-only.
 */
#ifndef SEM_CHAT_PROMPT_H
#define SEM_CHAT_PROMPT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/template/chat_template.h"
#include "model.h"

/*
 * Picks the template: a built-in NAME when name is not NULL (SEM_EINVAL
 * listing the names when unknown), else the model's own, else chatml with
 * *warning set to why (see chat_template_for_model).
 */
chat_template *chat_prompt_template(const model *m, const char *name, sem_err *warning,
                                    sem_err *err);

/* Renders messages (and tools, kwargs: may be NULL) and tokenizes. *text
 * (may be NULL) receives the rendered prompt; the caller frees both. */
sem_status chat_prompt_tokens(const model *m, const chat_template *t, const json_t *messages,
                              const json_t *tools, const json_t *kwargs,
                              bool add_generation_prompt, char **text, int32_t **tokens,
                              size_t *n_tokens, sem_err *err);

#endif
