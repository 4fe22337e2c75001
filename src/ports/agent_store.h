/*
 * agent_store.h - agent memory as the services (HTTP agents API, CLI) see
 * it: which agents exist, in which tier, and the operations on them.
 *
 * Tiers: "hot" means the agent's KV is in the block pool (it may also have
 * a file on disk); "warm" means only on disk. One implementation: the
 * batching engine, which owns the hot tier and drives the warm store.
 *
 * Threads: every operation may be called from any thread.
 */
#ifndef SEM_AGENT_STORE_H
#define SEM_AGENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"
#include "warm_store.h"

typedef enum agent_tier { AGENT_TIER_HOT, AGENT_TIER_WARM } agent_tier;

typedef struct agent_info {
    char key[WARM_KEY_MAX + 1];
    agent_tier tier;
    int busy;               /* a request of the agent is running */
    uint32_t tokens;        /* tokens of KV held (hot) or stored (warm) */
    uint64_t hot_bytes;     /* pool bytes held */
    uint64_t disk_bytes;    /* file size, 0 without a file */
    int64_t last_use_ms;    /* unix ms */
    uint64_t hits;          /* requests that reused the agent's memory */
    uint64_t tokens_saved;  /* prompt tokens not recomputed */
} agent_info;

typedef struct agent_store_ops {
    /* Agents whose key starts with prefix, most recently used first; *out malloc'd. */
    sem_status (*list)(void *self, const char *prefix, agent_info **out, size_t *n, sem_err *err);
    /* SEM_ENOTFOUND when the agent is in neither tier. */
    sem_status (*get)(void *self, const char *key, agent_info *out, sem_err *err);
    /* Forgets the agent in both tiers; its queued and running requests are cancelled. */
    sem_status (*remove)(void *self, const char *key, sem_err *err);
    /* Writes the hot KV to disk if needed and frees its blocks; SEM_EBUSY
     * while a request of the agent runs, SEM_ENOTFOUND when not hot. */
    sem_status (*evict)(void *self, const char *key, sem_err *err);
} agent_store_ops;

typedef struct agent_store {
    const agent_store_ops *ops;
    void *self;
} agent_store;

#endif
