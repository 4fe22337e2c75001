/*
 * engine.h - the continuous-batching generation engine and the hot tier of
 * agent memory.
 *
 * One engine thread runs the scheduler loop. Each step is a single
 * batched forward pass over every running sequence: one decode token for
 * each sequence that is generating, plus up to `chunk` prompt tokens of
 * sequences still in prefill, so the weights are read once per step for
 * everyone and a long prompt never holds up running decodes for more than
 * one chunk.
 *
 * Agents. Requests of one agent run one after another in arrival order;
 * the agent keeps its KV (prompt and generated tokens) in its block table,
 * and its next request reuses it up to the first token that differs.
 * Different agents run together, up to max_batch. With a warm store, an
 * agent's KV is written to disk shortly after each of its requests (write
 * behind, on the engine's I/O thread), and an agent whose KV is not in the
 * pool is loaded from disk when its next request is admitted. Anonymous
 * requests reuse the KV of recent anonymous sequences with the same prefix
 * and the same scope (gen_params.scope; hot only, never persisted).
 *
 * Admission reserves, for every request, the blocks its sequence can reach
 * (prompt + max_tokens, bounded by the context), so a running sequence
 * never finds the pool empty. When the reservation does not fit, the
 * engine reclaims idle sequences, least recently used first: anonymous
 * ones, then agents whose KV is safe on disk (or, without a warm store, any
 * idle agent); agents with unsaved KV are saved first. Meanwhile the
 * request waits in the admission queue (bounded: submit fails with
 * SEM_EBUSY when it is full). A request that could not fit even in an
 * empty pool fails at submit, with the numbers.
 *
 * Threads and ownership. Any thread may use the generation and agent
 * store ports, read stats and drain. The engine thread alone owns block
 * tables, agents and the running set; the I/O thread reads an agent's
 * table only while the agent is in the SAVING state, during which the
 * engine thread does not touch it, and builds loaded tables it hands back
 * through the inbox. Locks: `inbox` guards new requests, messages, flags
 * and stats; `io_lock` guards the I/O job queue; each request's `lock`
 * guards its readable text, log probabilities and result. No lock is held
 * across a forward pass or disk I/O.
 *
 * Grammars. A request's grammar is parsed at submit (by the submitting
 * thread; a bad one fails the submit) and read only afterwards; its
 * grammar state belongs to the engine thread. The token trie that masks
 * tokens (grammar_vocab) is built by the engine thread for the first
 * request that has a grammar, shared by all later ones, and freed by
 * engine_destroy. See engine_sample.c for how tokens are chosen.
 */
#ifndef SEM_ENGINE_H
#define SEM_ENGINE_H

#include <stdint.h>

#include "domain/block_pool.h"
#include "ports/agent_store.h"
#include "ports/generation_port.h"
#include "ports/model_port.h"
#include "ports/warm_store.h"

typedef struct engine engine;

/* What one scheduler step did (for observers: tests, metrics). */
typedef struct engine_step_info {
    uint64_t step;
    uint32_t n_decode;      /* sequences that produced a decode token */
    uint32_t n_prefill;     /* sequences that evaluated prompt tokens */
    uint32_t prefill_tokens;
    uint32_t running, waiting;
} engine_step_info;

typedef struct engine_opts {
    uint32_t max_batch;     /* sequences running at once (default 8) */
    uint32_t chunk;         /* prompt tokens per step (default 512) */
    uint32_t max_queue;     /* waiting requests before submit fails (default 256) */
    uint32_t n_ctx;         /* tokens per sequence; 0: the model port's */
    uint32_t anon_keep;     /* finished anonymous sequences kept for reuse (default 16) */
    uint32_t save_delay_ms; /* write-behind delay after an agent's request (default 50) */
    uint64_t pin_budget_blocks; /* blocks pins may hold (pinned agents and cache
                                   breakpoints); 0: half the pool */
    warm_store *warm;       /* NULL: agent memory is not persisted */
    /* Called on the engine thread after every step; may be NULL. */
    void (*on_step)(void *user, const engine_step_info *info);
    void *on_step_user;
    /* Warnings and errors (a bad cache file, a failed write); may be NULL.
     * Called from the engine or I/O thread. */
    void (*log)(void *user, const char *level, const char *message);
    void *log_user;
} engine_opts;

engine_opts engine_defaults(void);

/*
 * Starts the engine and I/O threads. The model port, the pool and the warm
 * store must outlive the engine; the pool's geometry must be the model's.
 * The model port's batch limit must hold chunk + max_batch tokens. Agents
 * found in the warm store are known (warm) from the start. Before it
 * returns, the engine thread runs one forward pass of one token on a
 * throwaway sequence (its blocks released), so the first request does not
 * pay a new engine's first-pass costs.
 */
engine *engine_create(model_port mp, block_pool *pool, const engine_opts *o, sem_err *err);

/*
 * Stops admitting (submit fails with SEM_EBUSY "draining"), lets running
 * and queued requests finish for up to timeout_ms, cancels the rest, then
 * writes every agent with unsaved KV to the warm store and waits for the
 * writes. Returns the number of agents whose save failed.
 */
uint32_t engine_drain(engine *e, uint32_t timeout_ms);

/*
 * Writes every idle agent whose KV is not saved yet to the warm store now
 * (not when its write-behind is due), and waits until the engine's disk
 * work has settled. Running requests go on; their agents are written when
 * they end, as always. Used before another engine starts over the same
 * store (a reload of the same model), so that it finds every idle agent.
 * Returns the number of saves that failed meanwhile.
 */
uint32_t engine_save_idle(engine *e);

/* Cancels what is queued or running, stops the threads (pending writes are
 * finished first), frees every sequence. */
void engine_destroy(engine *e);

generation_port engine_generation_port(engine *e);
agent_store engine_agent_store(engine *e);

typedef struct engine_stats {
    uint32_t running, waiting;
    uint32_t agents;        /* agents known, hot or warm */
    uint32_t agents_hot;    /* agents holding KV blocks */
    uint32_t agents_warm;   /* agents with a file on disk */
    uint32_t pool_used, pool_total;
    uint64_t steps;
    uint64_t evictions;     /* sequences whose blocks were reclaimed */
    uint64_t hits_hot;      /* requests that reused KV held in the pool */
    uint64_t hits_warm;     /* requests that reused KV loaded from disk */
    uint64_t hits_shared;   /* of the hits, requests whose reuse came from another
                               sequence's blocks (shared, or shared chunks on disk) */
    uint64_t forks;         /* agents created by fork */
    uint64_t pins_skipped;  /* cache breakpoints not pinned (budget or pin table full) */
    uint64_t pins_broken;   /* pins let go early: a request could not fit otherwise */
    uint32_t pool_shared;   /* blocks with more than one holder */
    uint64_t pool_pinned;   /* blocks held by pins (per holder) */
    uint32_t prefix_pins;   /* cache breakpoints' prefixes held */
    uint64_t misses;        /* requests that reused nothing */
    uint64_t saves, save_failures, load_failures;
    uint64_t saves_stopped; /* writes given up because a request wanted the agent */
    uint32_t io_in_flight;  /* agent saves and loads whose outcome the engine has not
                               applied yet; a deleted or evicted agent that was being
                               written frees its blocks when its save ends, so the pool
                               figures are settled when this is 0 */
    /* Constrained decoding (requests with a grammar, once it applies). */
    uint64_t grammar_tokens; /* tokens chosen under a grammar */
    uint64_t grammar_masks;  /* of which the sampled token was refused (or log
                                probabilities were wanted): the logits were masked */
    double grammar_ms;       /* engine-thread time spent checking, masking and
                                advancing grammar states, in ms */
    int draining;
} engine_stats;

engine_stats engine_get_stats(engine *e);

#endif
