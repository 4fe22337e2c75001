/*
 * eval.c - chunked evaluation of a token sequence.
 */
#include "eval.h"

#include <math.h>

sem_status eval_tokens(forward_ctx *fc, block_table *t, const int32_t *toks, uint32_t n,
                       int all_logits, float *buf, uint32_t n_vocab, eval_logits_fn fn,
                       void *user, sem_err *err)
{
    uint32_t chunk = forward_max_tokens(fc);
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < chunk ? n - done : chunk;
        int last = done + k == n;
        sem_status st = block_table_append(t, toks + done, k, err);
        if (st != SEM_OK)
            return st;
        forward_seq seq = {.kv = t, .n_new = k, .n_logits = all_logits ? k : (last ? 1 : 0),
                           .logits = buf};
        if ((st = forward_run(fc, &seq, 1, err)) != SEM_OK)
            return st;
        if ((st = block_table_release_window(t, err)) != SEM_OK)
            return st;
        uint32_t first = done + k - seq.n_logits;
        for (uint32_t j = 0; j < seq.n_logits; j++)
            fn(user, first + j, buf + (size_t)j * n_vocab);
        done += k;
    }
    return SEM_OK;
}

double eval_logprob(const float *logits, uint32_t n_vocab, int32_t id)
{
    float max = logits[0];
    for (uint32_t i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (uint32_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - max);
    return (double)logits[id] - max - log(sum);
}
