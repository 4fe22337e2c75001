/*
 * model_prompts.h - the prompt port implemented by a loaded model: its
 * chat template (or a named built-in) and its tokenizer.
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
void model_prompts_destroy(model_prompts *p);
prompt_port model_prompts_port(model_prompts *p);

#endif
