/*
 * engine.h - the continuous-batching generation engine.
 *
 * One engine thread runs the scheduler loop. Each step is a single
 * batched forward pass over every running sequence: one decode token for
 * each sequence that is generating, plus up to `chunk` prompt tokens of
 * sequences still in prefill, so the weights are read once per step for
 * everyone and a long prompt never holds up running decodes for more than
 * one chunk.
 *
 * Requests of one agent run one after another in arrival order; each
 * keeps the agent's KV (prompt and generated tokens) in the agent's block
 * table, and the next request of the agent reuses it up to the first token
 * that differs. Different agents run together, up to max_batch.
 *
 * Admission reserves, for every request, the blocks its sequence can reach
 * (prompt + max_tokens, bounded by the context), so a running sequence
 * never finds the pool empty. When the reservation does not fit, the
 * engine first reclaims the blocks of idle agents, least recently used
 * first; then the request waits in the admission queue (bounded: submit
 * fails with SEM_EBUSY when it is full). A request that could not fit even
 * in an empty pool fails at submit, with the numbers.
 *
 * Threads and ownership. Any thread may submit, read, cancel and release
 * (through the generation port) and read stats. The engine thread alone
 * owns the block tables, the agents and the running set. Locks: `inbox`
 * guards the list of new requests, the stop flag and the stats; each
 * request's `lock` guards its readable text and result. No lock is held
 * across a forward pass.
 */
#ifndef SEM_ENGINE_H
#define SEM_ENGINE_H

#include <stdint.h>

#include "domain/block_pool.h"
#include "ports/generation_port.h"
#include "ports/model_port.h"

typedef struct engine engine;

/* What one scheduler step did (for observers: tests, metrics). */
typedef struct engine_step_info {
    uint64_t step;
    uint32_t n_decode;         /* sequences that produced a decode token */
    uint32_t n_prefill;        /* sequences that evaluated prompt tokens */
    uint32_t prefill_tokens;
    uint32_t running, waiting;
} engine_step_info;

typedef struct engine_opts {
    uint32_t max_batch;  /* sequences running at once (default 8) */
    uint32_t chunk;      /* prompt tokens per step (default 512) */
    uint32_t max_queue;  /* waiting requests before submit fails (default 256) */
    uint32_t n_ctx;      /* tokens per sequence; 0: the model port's */
    /* Called on the engine thread after every step; may be NULL. */
    void (*on_step)(void *user, const engine_step_info *info);
    void *on_step_user;
} engine_opts;

engine_opts engine_defaults(void);

/*
 * Starts the engine thread. The model port and the pool must outlive the
 * engine; the pool's geometry must be the model's. The model port's batch
 * limit must hold chunk + max_batch tokens.
 */
engine *engine_create(model_port mp, block_pool *pool, const engine_opts *o, sem_err *err);

/* Cancels what is queued or running, stops the thread, frees every agent. */
void engine_destroy(engine *e);

generation_port engine_generation_port(engine *e);

typedef struct engine_stats {
    uint32_t running, waiting;
    uint32_t agents;          /* agents known (with or without KV in the pool) */
    uint32_t agents_hot;      /* agents holding KV blocks */
    uint32_t pool_used, pool_total;
    uint64_t steps;
    uint64_t evictions;       /* agents whose blocks were reclaimed */
} engine_stats;

engine_stats engine_get_stats(engine *e);

#endif
