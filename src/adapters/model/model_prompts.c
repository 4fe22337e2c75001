/*
 * model_prompts.c - prompt_port over a model's template and tokenizer.
 */
#include "model_prompts.h"

#include <stdlib.h>

#include "chat_prompt.h"

struct model_prompts {
    const model *m;
    chat_template *tmpl;
    uint32_t n_ctx;
};

static sem_status mp_chat(void *self, const json_t *messages, const json_t *tools,
                          const json_t *kwargs, int add_generation_prompt, int32_t **tokens,
                          size_t *n, sem_err *err)
{
    model_prompts *p = self;
    return chat_prompt_tokens(p->m, p->tmpl, messages, tools, kwargs, add_generation_prompt != 0,
                              NULL, tokens, n, err);
}

static sem_status mp_text(void *self, const char *text, size_t len, int32_t **tokens, size_t *n,
                          sem_err *err)
{
    model_prompts *p = self;
    return tokenizer_encode(model_tokenizer(p->m), text, len, 1, 0, tokens, n, err);
}

static const char *mp_name(void *self) { return model_name(((model_prompts *)self)->m); }
static uint32_t mp_n_ctx(void *self) { return ((model_prompts *)self)->n_ctx; }

static const prompt_port_ops prompts_ops = {mp_chat, mp_text, mp_name, mp_n_ctx};

model_prompts *model_prompts_create(const model *m, const char *template_name, uint32_t n_ctx,
                                    sem_err *warning, sem_err *err)
{
    model_prompts *p = calloc(1, sizeof *p);
    if (!p) {
        sem_err_set(err, SEM_ENOMEM, "out of memory");
        return NULL;
    }
    p->m = m;
    p->n_ctx = n_ctx;
    p->tmpl = chat_prompt_template(m, template_name, warning, err);
    if (!p->tmpl) {
        free(p);
        return NULL;
    }
    return p;
}

void model_prompts_destroy(model_prompts *p)
{
    if (!p)
        return;
    chat_template_free(p->tmpl);
    free(p);
}

prompt_port model_prompts_port(model_prompts *p) { return (prompt_port){&prompts_ops, p}; }
