/*
 * chat_request.c - rendering a chat request and building its grammar.
 */
#include "chat_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_tool_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

sem_status chat_check_tools(const json_t *tools, const char *field, req_err *e)
{
    if (!json_is_array(tools))
        return req_fail(e, SEM_EREQUEST, field, "%s must be a list", field);
    char p[HTTP_ERROR_PARAM_MAX];
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        snprintf(p, sizeof p, "%s[%zu]", field, i);
        const json_t *type = json_object_get(t, "type");
        if (!json_is_object(t))
            return req_fail(e, SEM_EREQUEST, p, "%s must be an object", p);
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
            return req_fail(e, SEM_EUNSUPPORTED, p,
                            "%s.type must be \"function\" (the only tools semantic runs)", p);
        const json_t *fn = json_object_get(t, "function");
        if (!json_is_object(fn))
            return req_fail(e, SEM_EREQUEST, p, "%s.function must be an object", p);
        const json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name) || !valid_tool_name(json_string_value(name)))
            return req_fail(e, SEM_EREQUEST, p,
                            "%s.function.name must be 1 to 128 of a-z, A-Z, 0-9, _ and -", p);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(
                           json_object_get(json_array_get(tools, j), "function"), "name")),
                       json_string_value(name)) == 0)
                return req_fail(e, SEM_EREQUEST, p, "%s.function.name \"%s\" is given twice", p,
                                json_string_value(name));
        const json_t *params = json_object_get(fn, "parameters");
        if (params && !json_is_null(params) && !json_is_object(params))
            return req_fail(e, SEM_EREQUEST, p, "%s.function.parameters must be an object", p);
    }
    return SEM_OK;
}

/* 1 when a tool of that name is in tools. */
static int has_tool(const json_t *tools, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *n = json_object_get(json_object_get(t, "function"), "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return 1;
    }
    return 0;
}

/* A grammar that could not be built: the request field at fault is param. */
static sem_status grammar_error(sem_status st, const sem_err *err, const char *param, req_err *e)
{
    e->err = *err;
    e->err.status = st;
    snprintf(e->param, sizeof e->param, "%s", param);
    return st;
}

static sem_status build_grammar(const chat_spec *s, chat_prepared *p, req_err *e)
{
    sem_err err = {0};
    sem_status st = SEM_OK;
    if (s->format != CHAT_FORMAT_TEXT) {
        st = chat_grammar_schema(&p->syntax, s->format == CHAT_FORMAT_JSON_SCHEMA ? s->schema : NULL,
                                 s->strict, p->in_thinking, &p->grammar, &err);
        return st == SEM_OK ? SEM_OK
                            : grammar_error(st, &err, s->schema_param ? s->schema_param
                                                                      : "response_format",
                                            e);
    }
    if (!p->tools_on)
        return SEM_OK;
    st = chat_grammar_tools(&p->syntax, s->tools, s->choice, s->tool_name,
                            s->parallel && p->syntax.parallel_calls, p->in_thinking, &p->grammar,
                            &err);
    return st == SEM_OK ? SEM_OK : grammar_error(st, &err, "tools", e);
}

sem_status chat_prepare(prompt_port pp, const chat_spec *s, chat_prepared *p, req_err *e)
{
    *p = (chat_prepared){0};
    if (s->choice == CHAT_TOOL_NAMED && !has_tool(s->tools, s->tool_name))
        return req_fail(e, SEM_EREQUEST, "tool_choice",
                        "tool_choice names the tool \"%s\", which is not among the tools",
                        s->tool_name);
    if ((s->choice == CHAT_TOOL_REQUIRED || s->choice == CHAT_TOOL_NAMED) &&
        json_array_size(s->tools) == 0)
        return req_fail(e, SEM_EREQUEST, "tool_choice",
                        "tool_choice requires a tool call, but no tools are given");
    prompt_chat_info info = {0};
    sem_status st = req_render_chat(pp, s->messages, json_array_size(s->tools) ? s->tools : NULL,
                                    s->kwargs, 1, &p->prompt, &p->n_prompt, &info, e);
    if (st != SEM_OK)
        return st;
    p->syntax = pp.ops->syntax(pp.self);
    p->in_thinking = info.in_thinking;
    p->tools_on = json_array_size(s->tools) > 0 && s->choice != CHAT_TOOL_NONE &&
                  s->format == CHAT_FORMAT_TEXT;
    return build_grammar(s, p, e);
}

void chat_prepared_free(chat_prepared *p)
{
    free(p->prompt);
    chat_grammar_free(&p->grammar);
    memset(p, 0, sizeof *p);
}

void chat_prepared_params(const chat_prepared *p, gen_params *gp)
{
    gp->prompt = p->prompt;
    gp->n_prompt = (uint32_t)p->n_prompt;
    gp->grammar = p->grammar.text.len ? p->grammar.text.data : NULL;
    gp->grammar_triggers = p->grammar.n_triggers ? p->grammar.triggers : NULL;
    gp->n_grammar_triggers = p->grammar.n_triggers;
}

/* The first n messages as a new array (the items are shared). */
static json_t *first_messages(const json_t *messages, size_t n)
{
    json_t *cut = json_array();
    for (size_t i = 0; cut && i < n && i < json_array_size(messages); i++)
        if (json_array_append(cut, json_array_get(messages, i))) {
            json_decref(cut);
            return NULL;
        }
    return cut;
}

sem_status chat_prefix_tokens(prompt_port pp, const chat_spec *s, size_t n_messages,
                              const int32_t *prompt, size_t n_prompt, uint32_t *out, req_err *e)
{
    *out = 0;
    const json_t *tools = json_array_size(s->tools) ? s->tools : NULL;
    if (n_messages == 0 && !tools)
        return SEM_OK;
    json_t *cut = first_messages(s->messages, n_messages);
    if (!cut)
        return req_fail(e, SEM_ENOMEM, NULL, "out of memory cutting the conversation");
    int32_t *tokens = NULL;
    size_t n = 0;
    req_err ignored = {0};
    sem_status st = req_render_chat(pp, cut, tools, s->kwargs, 0, &tokens, &n, NULL, &ignored);
    json_decref(cut);
    if (st == SEM_ENOMEM)
        return req_fail(e, SEM_ENOMEM, NULL, "out of memory rendering a cache breakpoint");
    size_t common = 0;
    while (st == SEM_OK && common < n && common < n_prompt && tokens[common] == prompt[common])
        common++;
    free(tokens);
    *out = (uint32_t)common;
    return SEM_OK;
}
