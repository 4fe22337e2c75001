/*
 * response_store.h - stored responses of the OpenAI Responses API as the
 * HTTP routes see them: each response is a point in an agent's memory.
 *
 * A record is one response: its id ("resp_..."), the API key namespace it
 * belongs to, the response it continued (previous_id), the agent (its id
 * inside the namespace, not the engine's namespaced key) whose memory
 * holds the conversation up to it, and that agent's token count right
 * after it (where a later branch forks). It carries its own input items
 * (a JSON list, as the request gave them, with ids) and the whole response
 * object (JSON, its "output" items included), both as text.
 *
 * Every lookup takes the namespace: another key's response is simply not
 * found. Retention is the store's: a put deletes what is older than the
 * age limit and the oldest records beyond the count limit (both 0: keep
 * everything). One implementation: SQLite (adapters/store/response_store.h).
 *
 * Threads: every operation may be called from any thread; the store
 * serializes them. Each is one short transaction (no fsync: WAL with
 * synchronous=NORMAL). Ownership: strings in a record read by get() are
 * malloc'd and freed with response_record_free().
 */
#ifndef SEM_RESPONSE_STORE_H
#define SEM_RESPONSE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "domain/status.h"

#define RESPONSE_ID_MAX 64 /* "resp_" and 24 hex digits fit with room */
#define RESPONSE_NS_MAX 32
#define RESPONSE_AGENT_MAX 128

typedef struct response_record {
    char id[RESPONSE_ID_MAX + 1];
    char ns[RESPONSE_NS_MAX + 1];          /* "" without API keys */
    char previous_id[RESPONSE_ID_MAX + 1]; /* "" for a fresh conversation */
    char agent[RESPONSE_AGENT_MAX + 1];    /* agent id inside ns */
    uint32_t agent_tokens;                 /* the agent's tokens after this response */
    int64_t created_at;                    /* unix seconds */
    char *input;    /* JSON list of this response's own input items */
    char *response; /* JSON of the response object */
} response_record;

static inline void response_record_free(response_record *r)
{
    free(r->input);
    free(r->response);
    r->input = r->response = NULL;
}

typedef struct response_store_ops {
    /* Stores r (a new id; an existing id in the namespace is replaced),
     * then applies the retention limits. */
    sem_status (*put)(void *self, const response_record *r, int64_t now_s, sem_err *err);
    /* The record of id in ns; SEM_ENOTFOUND when there is none. */
    sem_status (*get)(void *self, const char *ns, const char *id, response_record *out,
                      sem_err *err);
    /* Deletes id of ns; SEM_ENOTFOUND when there is none. */
    sem_status (*remove)(void *self, const char *ns, const char *id, sem_err *err);
    /* The id of the newest record whose agent is `agent` in ns ("" when
     * none): a response that is its agent's latest is continued in place,
     * an older one is forked from. */
    sem_status (*latest)(void *self, const char *ns, const char *agent,
                         char out[RESPONSE_ID_MAX + 1], sem_err *err);
} response_store_ops;

typedef struct response_store {
    const response_store_ops *ops;
    void *self;
} response_store;

#endif
