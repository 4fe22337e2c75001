/*
 * chat_answer.h - a chat answer assembled from generated text: content,
 * reasoning and tool calls, split by the model's syntax (chat_output.h).
 *
 * Whole replies read the assembled parts at the end; streams also get
 * every event as it happens (on_event), with the call it belongs to, to
 * write in their API's shape. A call's id is the one the format carries
 * (Mistral's nine characters) or a fresh one with the API's prefix
 * ("call_", "toolu_").
 *
 * Threads: belongs to one request's exchange (one thread at a time).
 */
#ifndef SEM_HTTP_CHAT_ANSWER_H
#define SEM_HTTP_CHAT_ANSWER_H

#include "adapters/chat/chat_output.h"
#include "base/strbuf.h"
#include "chat_request.h"
#include "http_api.h"

#define CHAT_ANSWER_CALLS_MAX 32

typedef struct chat_call {
    char id[64];
    char *name;  /* malloc'd */
    strbuf args; /* the arguments' JSON text as generated */
} chat_call;

typedef struct chat_answer chat_answer;
typedef void (*chat_answer_event_fn)(void *user, const chat_event *ev, const chat_call *call);

struct chat_answer {
    chat_output *out;
    http_api *api;
    const char *id_prefix;
    strbuf content, reasoning;
    chat_call calls[CHAT_ANSWER_CALLS_MAX];
    uint32_t n_calls;
    int oom;
    chat_answer_event_fn on_event; /* may be NULL */
    void *user;
};

/* Starts an answer to a prepared request; SEM_ENOMEM. */
sem_status chat_answer_init(chat_answer *a, const chat_prepared *p, http_api *api,
                            const char *id_prefix);
/* Feeds generated text; events go to on_event when set. */
sem_status chat_answer_feed(chat_answer *a, const char *text, size_t len);
/* The generation ended: flushes what the parser held back. */
sem_status chat_answer_finish(chat_answer *a);
void chat_answer_free(chat_answer *a);

#endif
