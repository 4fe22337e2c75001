/*
 * model_prompts.c - prompt_port over a model's chat template and tokenizer:
 * template choice, rendering with the model's BOS/EOS texts, and
 * tokenization with special tokens parsed and BOS added as the vocabulary
 * says (what llama.cpp's server does with a chat request).
 *
 * The template's tool-call and reasoning syntax (chat_template_syntax) is
 * read once, when the object is made; whether a rendered prompt leaves a
 * think block open is read from each prompt's text before tokenizing.
 */
#include "model_prompts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/chat/chat_syntax.h"
#include "adapters/template/chat_template.h"

struct model_prompts {
    const model *m;
    chat_template *tmpl; /* parsed once; rendering only reads it */
    prompt_syntax syntax; /* of tmpl, fixed */
    uint32_t n_ctx;
};

/*
 * A built-in NAME when name is not NULL (SEM_EINVAL listing the names when
 * unknown), else the model's own, else chatml with *warning set to why
 * (see chat_template_for_model).
 */
static chat_template *pick_template(const model *m, const char *name, sem_err *warning,
                                    sem_err *err)
{
    if (warning)
        sem_err_clear(warning);
    if (!name)
        return chat_template_for_model(model_chat_template(m), warning, err);
    const char *src = chat_template_builtin(name);
    if (!src) {
        char names[256] = "";
        for (const char *const *n = chat_template_builtin_names(); *n; n++) {
            strncat(names, *n, sizeof names - strlen(names) - 1);
            if (n[1])
                strncat(names, ", ", sizeof names - strlen(names) - 1);
        }
        sem_err_set(err, SEM_EINVAL, "chat template '%s' is not one of: %s", name, names);
        return NULL;
    }
    return chat_template_parse(src, err);
}

/* The text of a special token, NUL-terminated in buf, or NULL. */
static const char *token_text(const tokenizer *tk, int32_t id, char *buf, size_t cap)
{
    size_t len;
    const char *t = id >= 0 ? tokenizer_token_text(tk, id, &len) : NULL;
    if (!t || len >= cap)
        return NULL;
    memcpy(buf, t, len);
    buf[len] = '\0';
    return buf;
}

static sem_status render_tokens(const model_prompts *p, const json_t *messages,
                                const json_t *tools, const json_t *kwargs,
                                int add_generation_prompt, int32_t **tokens, size_t *n_tokens,
                                prompt_chat_info *info, sem_err *err)
{
    const tokenizer *tk = model_tokenizer(p->m);
    char bos[128], eos[128];
    chat_render_opts o = {
        .add_generation_prompt = add_generation_prompt != 0,
        .bos_token = token_text(tk, tokenizer_bos(tk), bos, sizeof bos),
        .eos_token = token_text(tk, tokenizer_eos(tk), eos, sizeof eos),
        .add_bos = tokenizer_add_bos(tk) != 0,
        .add_eos = tokenizer_add_eos(tk) != 0,
    };
    char *prompt = NULL;
    sem_status st = chat_template_render(p->tmpl, messages, tools, kwargs, &o, &prompt, err);
    if (st != SEM_OK)
        return st;
    size_t len = strlen(prompt);
    st = tokenizer_encode(tk, prompt, len, 1, 1, tokens, n_tokens, err);
    if (st == SEM_OK && info && add_generation_prompt)
        info->in_thinking = chat_syntax_ends_in_thinking(&p->syntax, prompt, len);
    free(prompt);
    return st;
}

static sem_status mp_chat(void *self, const char *conversation, size_t len,
                          int add_generation_prompt, int32_t **tokens, size_t *n,
                          prompt_chat_info *info, sem_err *err)
{
    if (info)
        *info = (prompt_chat_info){0};
    json_error_t je;
    json_t *c = json_loadb(conversation, len, 0, &je);
    if (!c && (json_error_code(&je) == json_error_out_of_memory || !je.text[0]))
        return sem_err_set(err, SEM_ENOMEM, "out of memory reading the conversation");
    if (!json_is_object(c)) {
        json_decref(c);
        return sem_err_set(err, SEM_EREQUEST, "conversation: not a JSON object (%s)", je.text);
    }
    const json_t *messages = json_object_get(c, "messages");
    const json_t *tools = json_object_get(c, "tools");
    const json_t *kwargs = json_object_get(c, "chat_template_kwargs");
    sem_status st;
    if (!json_is_array(messages))
        st = sem_err_set(err, SEM_EREQUEST, "messages: must be an array");
    else
        st = render_tokens(self, messages, json_is_array(tools) ? tools : NULL,
                           json_is_object(kwargs) ? kwargs : NULL, add_generation_prompt, tokens,
                           n, info, err);
    json_decref(c);
    return st;
}

static sem_status mp_text(void *self, const char *text, size_t len, int32_t **tokens, size_t *n,
                          sem_err *err)
{
    model_prompts *p = self;
    return tokenizer_encode(model_tokenizer(p->m), text, len, 1, 0, tokens, n, err);
}

static const char *mp_name(void *self) { return model_name(((model_prompts *)self)->m); }
static uint32_t mp_n_ctx(void *self) { return ((model_prompts *)self)->n_ctx; }

static prompt_syntax mp_syntax(void *self) { return ((model_prompts *)self)->syntax; }

static const char *mp_piece(void *self, int32_t token, size_t *len)
{
    const tokenizer *tk = model_tokenizer(((model_prompts *)self)->m);
    return tokenizer_piece(tk, token, len);
}

static const prompt_port_ops prompts_ops = {mp_chat,   mp_text,   mp_name, mp_n_ctx,
                                            mp_syntax, mp_piece};

/* Takes tmpl (NULL: err is set, nothing is made). */
static model_prompts *make(const model *m, chat_template *tmpl, uint32_t n_ctx, sem_err *err)
{
    if (!tmpl)
        return NULL;
    model_prompts *p = calloc(1, sizeof *p);
    if (!p) {
        chat_template_free(tmpl);
        sem_err_set(err, SEM_ENOMEM, "out of memory");
        return NULL;
    }
    p->m = m;
    p->n_ctx = n_ctx;
    p->tmpl = tmpl;
    p->syntax = chat_template_syntax(tmpl);
    return p;
}

model_prompts *model_prompts_create(const model *m, const char *template_name, uint32_t n_ctx,
                                    sem_err *warning, sem_err *err)
{
    return make(m, pick_template(m, template_name, warning, err), n_ctx, err);
}

model_prompts *model_prompts_create_source(const model *m, const char *template_source,
                                           uint32_t n_ctx, sem_err *err)
{
    return make(m, chat_template_parse(template_source, err), n_ctx, err);
}

void model_prompts_destroy(model_prompts *p)
{
    if (!p)
        return;
    chat_template_free(p->tmpl);
    free(p);
}

prompt_port model_prompts_port(model_prompts *p) { return (prompt_port){&prompts_ops, p}; }
