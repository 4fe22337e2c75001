/*
 * eval.c - chunked, teacher-forced evaluation of a token sequence.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>

sem_status eval_tokens(forward_ctx *fc, block_table *t, const int32_t *toks, uint32_t n,
                       int all_logits, float *buf, uint32_t n_vocab, eval_logits_fn fn,
                       void *user, sem_err *err)
{
    uint32_t chunk = forward_max_tokens(fc);
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < chunk ? n - done : chunk;
        int last = done + k == n;
        uint32_t base = block_table_n_tokens(t); /* absolute position of toks[done] */
        sem_status st = block_table_append(t, toks + done, k, err);
        if (st != SEM_OK)
            return st;
        forward_seq seq = {.kv = t, .n_new = k, .n_logits = all_logits ? k : (last ? 1 : 0),
                           .logits = buf};
        if ((st = forward_run(fc, &seq, 1, err)) != SEM_OK)
            return st;
        if ((st = block_table_release_window(t, err)) != SEM_OK)
            return st;
        uint32_t first = base + k - seq.n_logits;
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

typedef struct score_state {
    const int32_t *toks;
    uint32_t n, n_vocab;
    double *out;
} score_state;

static void score(void *user, uint32_t pos, const float *logits)
{
    score_state *s = user;
    if (pos + 1 < s->n)
        s->out[pos + 1] = eval_logprob(logits, s->n_vocab, s->toks[pos + 1]);
}

sem_status eval_prompt_logprobs(const model *m, const forward_opts *fo, const int32_t *toks,
                                uint32_t n, double *out, sem_err *err)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = NAN;
    cache_spec spec = model_cache_spec(m, CACHE_SPEC_DEFAULT_BLOCK_TOKENS, CACHE_KV_F16);
    if (cache_spec_validate(&spec, err) != SEM_OK)
        return err->status;
    uint32_t n_vocab = model_hparams_of(m)->n_vocab;
    uint64_t per_layer = (n + fo->max_tokens) / spec.block_tokens + 2;
    size_t bytes = (size_t)(per_layer * spec.n_layers) * ((cache_spec_block_bytes(&spec) + 63) / 64 * 64);
    block_pool *pool = block_pool_create(&spec, bytes, err);
    block_table *t = pool ? block_table_create(pool, "score", err) : NULL;
    forward_ctx *fc = t ? forward_ctx_create(m, fo, err) : NULL;
    float *buf = fc ? malloc((size_t)fo->max_tokens * n_vocab * sizeof *buf) : NULL;
    sem_status st;
    if (!buf)
        st = fc ? sem_err_set(err, SEM_ENOMEM, "out of memory for logits") : err->status;
    else
        st = eval_tokens(fc, t, toks, n, 1, buf, n_vocab, score,
                         &(score_state){toks, n, n_vocab, out}, err);
    free(buf);
    forward_ctx_destroy(fc);
    block_table_destroy(t);
    block_pool_destroy(pool);
    return st;
}
