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

/* Where an agent's memory is nearest: the pool, this node's disk, or only a
 * remote tier shared by several servers (read back on its next request). */
typedef enum agent_tier { AGENT_TIER_HOT, AGENT_TIER_WARM, AGENT_TIER_REMOTE } agent_tier;

static inline const char *agent_tier_name(agent_tier t)
{
    return t == AGENT_TIER_HOT ? "hot" : t == AGENT_TIER_WARM ? "warm" : "remote";
}

/* Who else holds an agent's blocks (get() only): another agent's key, "" for
 * an anonymous sequence, "*" for a cache breakpoint's pinned prefix. */
#define AGENT_SHARERS_MAX 8
typedef struct agent_sharer {
    char key[WARM_KEY_MAX + 1];
    uint32_t tokens;        /* of this agent's tokens, those on blocks the other holds too */
} agent_sharer;

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
    /* Hot agents: tokens whose KV blocks (on every layer that holds them)
     * are shared with another sequence (an agent, a fork, a pinned prefix);
     * tokens - shared_tokens are the agent's alone. 0 when warm. */
    uint32_t shared_tokens;
    int64_t pinned_until_ms; /* unix ms the agent's pin lasts until; 0: not pinned */
    /* get() of a hot agent: the sequences sharing its blocks, most tokens
     * first (at most AGENT_SHARERS_MAX); list() leaves them empty. */
    uint32_t n_sharers;
    agent_sharer sharers[AGENT_SHARERS_MAX];
} agent_info;

/* Forks: "all of the parent's tokens". */
#define AGENT_FORK_ALL UINT32_MAX

typedef struct agent_store_ops {
    /* Agents whose key starts with prefix, most recently used first; *out malloc'd. */
    sem_status (*list)(void *self, const char *prefix, agent_info **out, size_t *n, sem_err *err);
    /* SEM_ENOTFOUND when no tier holds the agent. An agent this node does
     * not know is looked up in a remote tier under the warm store, from the
     * calling thread (tier AGENT_TIER_REMOTE). */
    sem_status (*get)(void *self, const char *key, agent_info *out, sem_err *err);
    /* Forgets the agent in both tiers; its queued and running requests are cancelled. */
    sem_status (*remove)(void *self, const char *key, sem_err *err);
    /* Writes the hot KV to disk if needed and frees its blocks; SEM_EBUSY
     * while a request of the agent runs, SEM_ENOTFOUND when not hot. */
    sem_status (*evict)(void *self, const char *key, sem_err *err);
    /*
     * Creates agent `into` from the first at_tokens tokens of agent `key`'s
     * memory (AGENT_FORK_ALL: all of it), sharing the parent's KV blocks:
     * no block is copied or allocated until one side writes into a shared
     * block (copy on write), and the two diverge without affecting each
     * other. A warm-only parent is read from disk first (from the calling
     * thread: call it from a thread that may wait). `out` (may be NULL)
     * receives the new agent. SEM_ENOTFOUND: no parent; SEM_EREQUEST:
     * `into` exists, at_tokens exceeds the parent's tokens, or a sliding
     * window no longer holds what at_tokens needs; SEM_EPOOL: a warm
     * parent does not fit in the pool.
     */
    sem_status (*fork)(void *self, const char *key, const char *into, uint32_t at_tokens,
                       agent_info *out, sem_err *err);
    /*
     * Keeps a hot agent's blocks from LRU reclaim for ttl_s seconds from
     * now (a later pin replaces an earlier one); ttl_s == 0 releases the
     * pin. Pinned blocks have a budget (a share of the pool): SEM_EPOOL
     * when this pin would exceed it, SEM_ENOTFOUND when the agent is not
     * hot (pin 0 of an unpinned agent is not an error).
     */
    sem_status (*pin)(void *self, const char *key, uint32_t ttl_s, agent_info *out, sem_err *err);
} agent_store_ops;

typedef struct agent_store {
    const agent_store_ops *ops;
    void *self;
} agent_store;

#endif
