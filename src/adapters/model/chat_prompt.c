/*
 * chat_prompt.c - template choice, rendering and tokenization.
 */
#include "chat_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

chat_template *chat_prompt_template(const model *m, const char *name, sem_err *warning,
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

sem_status chat_prompt_tokens(const model *m, const chat_template *t, const json_t *messages,
                              const json_t *tools, const json_t *kwargs,
                              bool add_generation_prompt, char **text, int32_t **tokens,
                              size_t *n_tokens, sem_err *err)
{
    const tokenizer *tk = model_tokenizer(m);
    char bos[128], eos[128];
    chat_render_opts o = {
        .add_generation_prompt = add_generation_prompt,
        .bos_token = token_text(tk, tokenizer_bos(tk), bos, sizeof bos),
        .eos_token = token_text(tk, tokenizer_eos(tk), eos, sizeof eos),
        .add_bos = tokenizer_add_bos(tk) != 0,
        .add_eos = tokenizer_add_eos(tk) != 0,
    };
    char *prompt = NULL;
    sem_status st = chat_template_render(t, messages, tools, kwargs, &o, &prompt, err);
    if (st != SEM_OK)
        return st;
    st = tokenizer_encode(tk, prompt, strlen(prompt), 1, 1, tokens, n_tokens, err);
    if (st == SEM_OK && text)
        *text = prompt;
    else
        free(prompt);
    return st;
}
