/*
 * sampler.h - choosing the next token from logits.
 *
 * The chain, in order: repetition / presence / frequency penalties over the
 * recent tokens, top-k, top-p, min-p, temperature, then a draw from the
 * remaining distribution with the sampler's own seeded generator. A
 * temperature <= 0 means greedy: the highest logit after penalties, the
 * lowest id on a tie. Logits at -INFINITY (masked) are never drawn while
 * any token is finite.
 *
 * Threads: a sampler belongs to one request and is used by one thread at a
 * time. sampler_sample() allocates nothing.
 */
#ifndef SEM_SAMPLER_H
#define SEM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

typedef struct sampler_params {
    float temperature;       /* <= 0: greedy */
    uint32_t top_k;          /* 0: off */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    float repeat_penalty;    /* 1: off */
    uint32_t repeat_last_n;  /* tokens of history penalised (0: none) */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
} sampler_params;

/* Defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties. */
sampler_params sampler_defaults(void);
/* Greedy: temperature 0, everything else off. */
sampler_params sampler_greedy(void);

/* Checks ranges; the detail names the field. */
sem_status sampler_params_validate(const sampler_params *p, sem_err *err);

typedef struct sampler sampler;

sampler *sampler_create(const sampler_params *p, uint32_t n_vocab, sem_err *err);
void sampler_free(sampler *s);

/* Records a token (prompt or generated) in the penalty history. */
void sampler_accept(sampler *s, int32_t token);

/* Picks the next token from logits[n_vocab] (not modified). */
int32_t sampler_sample(sampler *s, const float *logits);

/*
 * Log probabilities (natural log) of the distribution after the penalties,
 * before temperature and truncation: returns token's, and puts the n_top
 * most likely tokens (best first, lowest id on a tie; tokens at -INFINITY
 * left out) in top_ids / top_lps, *n_out of them. Uses the sampler's
 * scratch; allocates nothing.
 */
float sampler_logprobs(sampler *s, const float *logits, int32_t token, uint32_t n_top,
                       int32_t *top_ids, float *top_lps, uint32_t *n_out);

/* Index of the largest value, the lowest index on a tie. */
int32_t sampler_argmax(const float *logits, uint32_t n);

#endif
