/*
 * chat_answer.c - recording the parser's events.
 */
#include "chat_answer.h"

#include <stdlib.h>
#include <string.h>

sem_status chat_answer_init(chat_answer *a, const chat_prepared *p, http_api *api,
                            const char *id_prefix)
{
    *a = (chat_answer){.api = api, .id_prefix = id_prefix};
    a->out = chat_output_new(&p->syntax, p->tools_on, p->in_thinking);
    return a->out ? SEM_OK : SEM_ENOMEM;
}

static void record(void *user, const chat_event *ev)
{
    chat_answer *a = user;
    chat_call *call = NULL;
    switch (ev->type) {
    case CHAT_EV_TEXT: strbuf_append(&a->content, ev->text, ev->len); break;
    case CHAT_EV_REASONING: strbuf_append(&a->reasoning, ev->text, ev->len); break;
    case CHAT_EV_TOOL_START:
        if (a->n_calls == CHAT_ANSWER_CALLS_MAX)
            return; /* the grammars allow fewer; free output beyond is dropped */
        call = &a->calls[a->n_calls++];
        call->name = strndup(ev->text, ev->len);
        a->oom |= call->name == NULL;
        if (ev->id && *ev->id)
            snprintf(call->id, sizeof call->id, "%s", ev->id);
        else
            http_api_new_id(a->api, a->id_prefix, call->id, sizeof call->id);
        break;
    case CHAT_EV_TOOL_ARGS:
        if (ev->tool_index >= a->n_calls)
            return;
        call = &a->calls[ev->tool_index];
        strbuf_append(&call->args, ev->text, ev->len);
        a->oom |= call->args.oom;
        break;
    }
    a->oom |= a->content.oom | a->reasoning.oom;
    if (a->on_event && !a->oom)
        a->on_event(a->user, ev, call);
}

sem_status chat_answer_feed(chat_answer *a, const char *text, size_t len)
{
    if (len == 0)
        return SEM_OK;
    sem_status st = chat_output_feed(a->out, text, len, record, a);
    return st != SEM_OK ? st : a->oom ? SEM_ENOMEM : SEM_OK;
}

sem_status chat_answer_finish(chat_answer *a)
{
    sem_status st = chat_output_finish(a->out, record, a);
    return st != SEM_OK ? st : a->oom ? SEM_ENOMEM : SEM_OK;
}

void chat_answer_free(chat_answer *a)
{
    chat_output_free(a->out);
    strbuf_free(&a->content);
    strbuf_free(&a->reasoning);
    for (uint32_t i = 0; i < a->n_calls; i++) {
        free(a->calls[i].name);
        strbuf_free(&a->calls[i].args);
    }
    memset(a, 0, sizeof *a);
}
