/*
 * sampler.c - penalties, truncation and the draw.
 *
 * Candidates are (id, logit) pairs; each truncation step keeps a prefix of
 * them sorted by descending logit, so top-k, top-p and min-p compose.
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct sampler {
    sampler_params p;
    uint32_t n_vocab;
    cand *cands;       /* [n_vocab] */
    float *probs;      /* [n_vocab] */
    uint32_t *counts;  /* [n_vocab] occurrences in the history window */
    int32_t *history;  /* ring of [repeat_last_n] */
    uint32_t n_hist, hist_pos;
    uint64_t rng[4];   /* xoshiro256** state */
};

sampler_params sampler_defaults(void)
{
    return (sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                            .repeat_penalty = 1.0f, .repeat_last_n = 64,
                            .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .seed = 0};
}

sampler_params sampler_greedy(void)
{
    return (sampler_params){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                            .repeat_penalty = 1.0f, .repeat_last_n = 0};
}

sem_status sampler_params_validate(const sampler_params *p, sem_err *err)
{
    if (!(p->temperature >= 0.0f && p->temperature <= 100.0f))
        return sem_err_set(err, SEM_EINVAL, "temperature %g is outside 0..100", p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return sem_err_set(err, SEM_EINVAL, "top_p %g is outside (0, 1]", p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return sem_err_set(err, SEM_EINVAL, "min_p %g is outside [0, 1]", p->min_p);
    if (!(p->repeat_penalty > 0.0f && p->repeat_penalty <= 10.0f))
        return sem_err_set(err, SEM_EINVAL, "repeat_penalty %g is outside (0, 10]",
                           p->repeat_penalty);
    if (!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f))
        return sem_err_set(err, SEM_EINVAL, "presence_penalty %g is outside [-2, 2]",
                           p->presence_penalty);
    if (!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f))
        return sem_err_set(err, SEM_EINVAL, "frequency_penalty %g is outside [-2, 2]",
                           p->frequency_penalty);
    if (p->repeat_last_n > (1u << 20))
        return sem_err_set(err, SEM_EINVAL, "repeat_last_n %u is too large", p->repeat_last_n);
    return SEM_OK;
}

/* ---------------------------------------------------------------- rng */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t next_u64(sampler *s)
{
    uint64_t *r = s->rng;
    uint64_t out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static double next_unit(sampler *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

/* ---------------------------------------------------------------- life */

sampler *sampler_create(const sampler_params *p, uint32_t n_vocab, sem_err *err)
{
    if (sampler_params_validate(p, err) != SEM_OK)
        return NULL;
    if (n_vocab == 0) {
        sem_err_set(err, SEM_EINVAL, "sampler: empty vocabulary");
        return NULL;
    }
    sampler *s = calloc(1, sizeof *s);
    if (!s) {
        sem_err_set(err, SEM_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cands = malloc(n_vocab * sizeof *s->cands);
    s->probs = malloc(n_vocab * sizeof *s->probs);
    s->counts = calloc(n_vocab, sizeof *s->counts);
    s->history = malloc((p->repeat_last_n ? p->repeat_last_n : 1) * sizeof *s->history);
    if (!s->cands || !s->probs || !s->counts || !s->history) {
        sampler_free(s);
        sem_err_set(err, SEM_ENOMEM, "sampler: out of memory for %u tokens", n_vocab);
        return NULL;
    }
    uint64_t seed = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix(&seed);
    return s;
}

void sampler_free(sampler *s)
{
    if (!s)
        return;
    free(s->cands);
    free(s->probs);
    free(s->counts);
    free(s->history);
    free(s);
}

void sampler_accept(sampler *s, int32_t token)
{
    uint32_t n = s->p.repeat_last_n;
    if (n == 0 || token < 0 || (uint32_t)token >= s->n_vocab)
        return;
    if (s->n_hist == n) {
        s->counts[s->history[s->hist_pos]]--;
    } else {
        s->n_hist++;
    }
    s->history[s->hist_pos] = token;
    s->counts[token]++;
    s->hist_pos = (s->hist_pos + 1) % n;
}

/* ---------------------------------------------------------------- sampling */

int32_t sampler_argmax(const float *logits, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return (int32_t)best;
}

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static void apply_penalties(sampler *s)
{
    const sampler_params *p = &s->p;
    if (s->n_hist == 0 || (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f &&
                           p->frequency_penalty == 0.0f))
        return;
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        uint32_t c = s->counts[i];
        if (c == 0)
            continue;
        float *l = &s->cands[i].logit;
        *l = *l > 0.0f ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)c * p->frequency_penalty + p->presence_penalty;
    }
}

/* Restores the heap below i; the root of h[0..n) is its worst candidate. */
static void sift_down(cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && by_logit_desc(&h[l], &h[w]) > 0)
            w = l;
        if (r < n && by_logit_desc(&h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Moves the k best candidates to c[0..k), sorted best first: O(n log k). */
static void keep_top(cand *c, uint32_t n, uint32_t k)
{
    if (k < n) {
        for (uint32_t i = k / 2; i-- > 0;)
            sift_down(c, k, i);
        for (uint32_t i = k; i < n; i++) {
            if (by_logit_desc(&c[i], &c[0]) < 0) {
                c[0] = c[i];
                sift_down(c, k, 0);
            }
        }
    }
    qsort(c, k < n ? k : n, sizeof *c, by_logit_desc);
}

/* Softmax of the first n candidates' logits / temp into probs. */
static void softmax_cands(sampler *s, uint32_t n, float temp)
{
    float max = s->cands[0].logit;
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        s->probs[i] = expf((s->cands[i].logit - max) / temp);
        sum += s->probs[i];
    }
    for (uint32_t i = 0; i < n; i++)
        s->probs[i] = (float)(s->probs[i] / sum);
}

int32_t sampler_sample(sampler *s, const float *logits)
{
    const sampler_params *p = &s->p;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        s->cands[i] = (cand){(int32_t)i, logits[i]};
    apply_penalties(s);
    if (p->temperature <= 0.0f) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < s->n_vocab; i++)
            if (s->cands[i].logit > s->cands[best].logit)
                best = i;
        return (int32_t)best;
    }
    uint32_t n = s->n_vocab;
    keep_top(s->cands, n, p->top_k ? p->top_k : n);
    if (p->top_k && p->top_k < n)
        n = p->top_k;
    if (p->top_p < 1.0f || p->min_p > 0.0f) {
        softmax_cands(s, n, 1.0f);
        double cum = 0.0;
        uint32_t keep = n;
        for (uint32_t i = 0; i < n; i++) {
            if (p->min_p > 0.0f && s->probs[i] < p->min_p * s->probs[0]) {
                keep = i;
                break;
            }
            cum += s->probs[i];
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep ? keep : 1;
    }
    softmax_cands(s, n, p->temperature);
    double r = next_unit(s), cum = 0.0;
    uint32_t last = 0; /* the last candidate that can be drawn (masked ones have p = 0) */
    for (uint32_t i = 0; i < n; i++) {
        if (s->probs[i] <= 0.0f)
            continue;
        cum += s->probs[i];
        last = i;
        if (r < cum)
            return s->cands[i].id;
    }
    return s->cands[last].id;
}

float sampler_logprobs(sampler *s, const float *logits, int32_t token, uint32_t n_top,
                       int32_t *top_ids, float *top_lps, uint32_t *n_out)
{
    for (uint32_t i = 0; i < s->n_vocab; i++)
        s->cands[i] = (cand){(int32_t)i, logits[i]};
    apply_penalties(s);
    float max = -INFINITY;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        if (s->cands[i].logit > max)
            max = s->cands[i].logit;
    double sum = 0.0;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        sum += exp((double)s->cands[i].logit - max);
    float lse = max + (float)log(sum);
    float lp = -INFINITY;
    if (token >= 0 && (uint32_t)token < s->n_vocab)
        lp = s->cands[token].logit - lse;
    uint32_t k = n_top < s->n_vocab ? n_top : s->n_vocab, m = 0;
    if (k > 0) {
        keep_top(s->cands, s->n_vocab, k);
        for (uint32_t i = 0; i < k && isfinite(s->cands[i].logit); i++, m++) {
            top_ids[m] = s->cands[i].id;
            top_lps[m] = s->cands[i].logit - lse;
        }
    }
    *n_out = m;
    return lp;
}
