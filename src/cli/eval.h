/*
 * eval.h - teacher-forced evaluation of a token sequence, for the commands
 * that score text instead of generating it (perplexity, run's
 * --echo-logprobs). Generation goes through the engine (app/engine.h).
 *
 * Threads: the caller's thread; the forward context is driven from it.
 */
#ifndef SEM_CLI_EVAL_H
#define SEM_CLI_EVAL_H

#include <stdint.h>

#include "adapters/model/forward.h"

/* Called with the logits[n_vocab] that predict the token after absolute
 * position `pos` of the sequence (0 = its first token). */
typedef void (*eval_logits_fn)(void *user, uint32_t pos, const float *logits);

/*
 * Appends toks[0..n) to the table chunk by chunk (at most the forward
 * context's max_tokens each), runs the forward pass, and releases what
 * sliding windows no longer need. With all_logits, fn sees every new
 * position; otherwise only the last. buf holds [max_tokens][n_vocab] floats.
 */
sem_status eval_tokens(forward_ctx *fc, block_table *t, const int32_t *toks, uint32_t n,
                       int all_logits, float *buf, uint32_t n_vocab, eval_logits_fn fn,
                       void *user, sem_err *err);

/* log softmax(logits)[id]. */
double eval_logprob(const float *logits, uint32_t n_vocab, int32_t id);

/*
 * out[i] = log P(toks[i] | toks[0..i)) for i in [1, n); out[0] = NAN. One
 * pass over toks on a sequence and pool of its own (f16 KV), with the
 * forward options fo (its max_tokens is the chunk).
 */
sem_status eval_prompt_logprobs(const model *m, const forward_opts *fo, const int32_t *toks,
                                uint32_t n, double *out, sem_err *err);

#endif
