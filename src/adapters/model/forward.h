/*
 * forward.h - the batched transformer forward pass over paged KV.
 *
 * One call evaluates new tokens of several sequences at once: every
 * sequence's new tokens are laid side by side in one activation matrix
 * [n_tokens][n_embd], so each weight matrix is streamed from memory once
 * per call for all of them. Each sequence brings its block table, which
 * already holds the new tokens (block_table_append was called, blocks are
 * allocated); the pass writes their K/V into those blocks and reads every
 * key and value through the table.
 *
 * Threads: a forward_ctx is used by one thread at a time (the engine
 * thread); it owns a thread pool whose workers it drives during the call.
 * The model is shared read-only. The block tables must not be modified
 * during the call.
 *
 * Memory: all scratch is allocated by forward_ctx_create for at most
 * max_tokens tokens per call; no allocation happens per call or per token.
 */
#ifndef SEM_FORWARD_H
#define SEM_FORWARD_H

#include <stdint.h>

#include "adapters/kernels/cpu.h"
#include "model.h"
#include "domain/block_table.h"
#include "ports/model_port.h"

typedef struct forward_ctx forward_ctx;

typedef struct forward_opts {
    int n_threads;       /* total threads, including the caller's */
    cpu_isa isa;         /* kernels to use */
    uint32_t max_tokens; /* most new tokens in one call (sum over sequences) */
} forward_opts;

/* One sequence of a batch: its last n_new tokens are evaluated and the
 * logits of the last n_logits of them returned ([n_logits][n_vocab]).
 * The same struct is the model port's sequence. */
typedef model_port_seq forward_seq;

forward_ctx *forward_ctx_create(const model *m, const forward_opts *opts, sem_err *err);
void forward_ctx_destroy(forward_ctx *ctx);

/*
 * Evaluates the batch. SEM_EINVAL when a sequence's table does not match
 * the model's KV geometry, n_new is 0 or exceeds the table, or the batch
 * exceeds max_tokens; nothing is written then.
 */
sem_status forward_run(forward_ctx *ctx, forward_seq *seqs, uint32_t n_seqs, sem_err *err);

uint32_t forward_max_tokens(const forward_ctx *ctx);
cpu_isa forward_isa(const forward_ctx *ctx);
int forward_threads(const forward_ctx *ctx);

#endif
