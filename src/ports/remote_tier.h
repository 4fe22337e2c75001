/*
 * remote_tier.h - a store of named byte blobs shared by several servers
 * (Redis), as the tiered warm store sees it. It knows nothing of KV: the
 * tiered store puts an agent as an *index* (the agent's file bytes and the
 * names of the shared chunks it uses) and the chunks as blobs, and reads
 * them back; every blob is verified by the file codec after it is read.
 *
 * Names: a namespace part the caller builds (model fingerprint, geometry,
 * payload, agent namespace) and a key; the tier adds its own prefix.
 * Consistency: put_agent writes the chunks first and the index last, so a
 * reader never sees an index whose chunks were not written; last writer
 * wins per agent.
 *
 * Failure: every operation is bounded by the tier's timeouts; a tier that
 * is down, slow or full answers SEM_EIO (or SEM_EBUSY while it backs off)
 * quickly and never blocks a request for long. Threads: any thread; the
 * implementation serialises its connection.
 */
#ifndef SEM_REMOTE_TIER_H
#define SEM_REMOTE_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

typedef struct remote_blob {
    const char *name;   /* a shared chunk's name (hex) */
    const uint8_t *data;
    size_t len;
} remote_blob;

typedef enum remote_state { REMOTE_OFF, REMOTE_OK, REMOTE_DOWN } remote_state;

typedef struct remote_stats {
    remote_state state;
    uint64_t puts, put_failures;      /* agents written / failed */
    uint64_t gets, get_hits, get_failures;
    uint64_t corrupt;                 /* blobs dropped after failing verification */
    uint64_t evictions;               /* agents removed by the tier's byte budget */
    uint64_t bytes;                   /* bytes the tier holds for this server's model(s), as last seen */
    uint64_t timeouts;                /* commands that ran past the tier's timeout */
    uint64_t full;                    /* writes refused because the tier is at its memory limit */
    uint64_t dropped;                 /* queued writes dropped (queue full, or left at close) */
} remote_stats;

typedef struct remote_tier_ops {
    /* Writes an agent: chunks (skipping those the tier already holds), then
     * its index blob. */
    sem_status (*put_agent)(void *self, const char *space, const char *key,
                            const uint8_t *index, size_t index_len, const remote_blob *chunks,
                            size_t n_chunks, sem_err *err);
    /* Reads an agent's index blob (malloc'd); SEM_ENOTFOUND when absent. */
    sem_status (*get_agent)(void *self, const char *space, const char *key, uint8_t **index,
                            size_t *len, sem_err *err);
    /* Reads a shared chunk (malloc'd); SEM_ENOTFOUND when absent. */
    sem_status (*get_chunk)(void *self, const char *space, const char *name, uint8_t **data,
                            size_t *len, sem_err *err);
    /* Forgets an agent (its chunks go when no agent names them). */
    sem_status (*remove_agent)(void *self, const char *space, const char *key, sem_err *err);
    /* Counts a blob that failed verification after get (and drops it). */
    void (*report_corrupt)(void *self, const char *space, const char *key_or_chunk);
    void (*stats)(void *self, remote_stats *out);
} remote_tier_ops;

typedef struct remote_tier {
    const remote_tier_ops *ops;
    void *self;
} remote_tier;

#endif
