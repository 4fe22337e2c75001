/*
 * model_prompts.h - the prompt port implemented by a loaded model: its
 * chat template (or a named built-in, or a template's text) and its
 * tokenizer. The port's syntax is the template's (chat_template_syntax);
 * chat's info says whether the generation prompt leaves a think block
 * open (chat_syntax_ends_in_thinking).
 *
 * Threads: as prompt_port.h. The model must outlive the object.
 */
#ifndef SEM_MODEL_PROMPTS_H
#define SEM_MODEL_PROMPTS_H

#include "model.h"
#include "ports/prompt_port.h"

typedef struct model_prompts model_prompts;

/* template_name: a built-in to use instead of the model's (NULL: the
 * model's, or chatml with *warning set when it has none or it fails). */
model_prompts *model_prompts_create(const model *m, const char *template_name, uint32_t n_ctx,
                                    sem_err *warning, sem_err *err);
/* template_source: the text of a Jinja chat template to use instead of
 * the model's (--chat-template-file). One that does not parse is an error
 * (SEM_EINVAL or SEM_EUNSUPPORTED naming line and column), not a fallback. */
model_prompts *model_prompts_create_source(const model *m, const char *template_source,
                                           uint32_t n_ctx, sem_err *err);
void model_prompts_destroy(model_prompts *p);
prompt_port model_prompts_port(model_prompts *p);

#endif
