/*
 * agent_history.h - each agent's last few requests, for
 * GET /v1/agents/{id}/requests and the inspector's agent view.
 *
 * Bounded both ways: at most `max_agents` agents (the one whose last
 * request is oldest is forgotten to make room for a new one) and at most
 * AGENT_HISTORY_MAX entries per agent (a ring: the oldest entry goes).
 * Keys are "MODEL/AGENT_KEY" (agent_history_key): the served model's name
 * and the engine's agent key (namespaced, auth.h), so one API key never
 * reads another's history, and the same agent id on two models has two. The history lives in RAM only: it starts
 * empty after a restart, and forgetting an agent (DELETE) forgets it.
 *
 * Threads: any thread (one mutex; a record is a short scan and a copy).
 * Ownership: reads copy into the caller's array.
 */
#ifndef SEM_HTTP_AGENT_HISTORY_H
#define SEM_HTTP_AGENT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "domain/agent_id.h"
#include "domain/status.h"
#include "http_models.h"

#define AGENT_HISTORY_MAX 16u
#define AGENT_HISTORY_AGENTS_MAX 65536u
#define AGENT_HISTORY_KEY_MAX (HTTP_MODEL_NAME_MAX + 1 + AGENT_KEY_MAX)

typedef struct agent_history agent_history;

/* One finished request of an agent. */
typedef struct agent_request {
    int64_t at_ms;  /* unix ms it ended */
    uint32_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft_ms, total_ms; /* submit to first token (0: none), to end */
    char finish[16];          /* gen_finish_name: stop, length, cancelled, error */
} agent_request;

/* A history of up to max_agents agents, 1 .. AGENT_HISTORY_AGENTS_MAX;
 * SEM_EINVAL names the value and the limit. */
sem_status agent_history_create(uint32_t max_agents, agent_history **out, sem_err *err);
void agent_history_free(agent_history *h);

/* "model/key" into out (AGENT_HISTORY_KEY_MAX + 1 bytes). */
void agent_history_key(const char *model, const char *key, char *out);

/* Appends r to agent key's ring (a key longer than AGENT_HISTORY_KEY_MAX is ignored). */
void agent_history_record(agent_history *h, const char *key, const agent_request *r);

/* The agent's requests, newest first, into out (cap entries at most);
 * returns how many (0 for an agent without history). */
size_t agent_history_read(agent_history *h, const char *key, agent_request *out, size_t cap);

/* Forgets the agent's history (it was deleted). */
void agent_history_forget(agent_history *h, const char *key);

#endif
