/*
 * eval.h - evaluating a token sequence in chunks on one block table, for
 * the single-sequence commands (run, perplexity).
 *
 * Threads: the caller's thread; the forward context is driven from it.
 */
#ifndef SEM_CLI_EVAL_H
#define SEM_CLI_EVAL_H

#include <stdint.h>

#include "adapters/model/forward.h"

/* Called with the logits[n_vocab] that predict the token after `pos`. */
typedef void (*eval_logits_fn)(void *user, uint32_t pos, const float *logits);

/*
 * Appends toks[0..n) to the table chunk by chunk (at most the forward
 * context's max_tokens each), runs the forward pass, and releases what
 * sliding windows no longer need. With all_logits, fn sees every position;
 * otherwise only the last. buf holds [max_tokens][n_vocab] floats.
 */
sem_status eval_tokens(forward_ctx *fc, block_table *t, const int32_t *toks, uint32_t n,
                       int all_logits, float *buf, uint32_t n_vocab, eval_logits_fn fn,
                       void *user, sem_err *err);

/* log softmax(logits)[id]. */
double eval_logprob(const float *logits, uint32_t n_vocab, int32_t id);

#endif
