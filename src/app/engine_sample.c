/*
 * engine_sample.c - choosing each generated token: the sampler's draw,
 * kept inside the request's grammar, and the token's log probabilities.
 *
 * With a grammar (gen_params.grammar) the common case costs one check:
 * the token is drawn from the model's distribution as usual and kept if
 * the grammar allows it (grammar_state_allows walks its bytes). Only when
 * it does not are the logits masked (grammar_state_mask: every token that
 * cannot come next set to -INFINITY) and the token drawn again. When log
 * probabilities are wanted the mask comes first, so that they describe
 * the distribution the token was really drawn from. The chosen token's
 * text then advances the grammar state; the request ends (GEN_STOP) once
 * the state is done (engine_request.c).
 *
 * Lazy grammars (triggers): until a trigger appears in the raw generated
 * bytes the output is free; the bytes are kept in lazy_text. The token
 * that completes a trigger must leave the text from the trigger's first
 * byte on a prefix of the grammar: it is checked by feeding that text to
 * a new state, which becomes the request's state. A token that completes
 * a trigger into text the grammar refuses is masked and the token drawn
 * again; after LAZY_REDRAWS such draws every token is checked and the
 * refused ones masked at once, so this always ends.
 *
 * The grammar vocabulary (the token trie) is built on the engine thread
 * for the first request that has a grammar and kept until the engine is
 * destroyed.
 *
 * Threads: request_grammar_init runs in submit (any thread) on a request
 * no one else sees yet; the rest runs on the engine thread, except the
 * readable log probabilities, which are guarded by the request's lock.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define LAZY_REDRAWS 16

/* ---------------------------------------------------------------- submit */

static sem_status copy_triggers(gen_request *r, const gen_params *p, sem_err *err)
{
    if (p->n_grammar_triggers > GEN_TRIGGERS_MAX)
        return sem_err_set(err, SEM_EREQUEST, "%zu grammar triggers; at most %d",
                           p->n_grammar_triggers, GEN_TRIGGERS_MAX);
    if (!p->grammar_triggers)
        return sem_err_set(err, SEM_EREQUEST, "grammar_triggers is NULL with %zu triggers",
                           p->n_grammar_triggers);
    r->triggers = calloc(p->n_grammar_triggers, sizeof *r->triggers);
    if (!r->triggers)
        return sem_err_set(err, SEM_ENOMEM, "out of memory for grammar triggers");
    r->n_triggers = p->n_grammar_triggers;
    for (size_t i = 0; i < p->n_grammar_triggers; i++) {
        const char *t = p->grammar_triggers[i];
        if (!t)
            return sem_err_set(err, SEM_EREQUEST, "grammar trigger %zu is NULL", i);
        int anchored = t[0] == '^';
        size_t len = strlen(t + anchored);
        if (len == 0 || len > GEN_TRIGGER_MAX_BYTES)
            return sem_err_set(err, SEM_EREQUEST, "grammar trigger %zu is %zu bytes; 1..%d", i,
                               len, GEN_TRIGGER_MAX_BYTES);
        r->triggers[i].text = malloc(len + 1);
        if (!r->triggers[i].text)
            return sem_err_set(err, SEM_ENOMEM, "out of memory for grammar triggers");
        memcpy(r->triggers[i].text, t + anchored, len + 1);
        r->triggers[i].len = len;
        r->triggers[i].anchored = anchored;
    }
    return SEM_OK;
}

sem_status request_grammar_init(gen_request *r, const gen_params *p, sem_err *err)
{
    if (p->logprobs && p->top_logprobs > GEN_TOP_LOGPROBS_MAX)
        return sem_err_set(err, SEM_EREQUEST, "top_logprobs %u is outside 0..%d",
                           p->top_logprobs, GEN_TOP_LOGPROBS_MAX);
    r->top_logprobs = p->logprobs ? (int)p->top_logprobs : -1; /* -1: none recorded */
    if (!p->grammar) {
        if (p->n_grammar_triggers)
            return sem_err_set(err, SEM_EREQUEST, "grammar triggers without a grammar");
        return SEM_OK;
    }
    if (p->n_grammar_triggers && copy_triggers(r, p, err) != SEM_OK)
        return err->status;
    r->gram = grammar_parse(p->grammar, strlen(p->grammar), err);
    if (!r->gram)
        return err->status;
    /* Even a lazy grammar's start is checked now, so a bad one fails the submit. */
    grammar_state *s = grammar_state_new(r->gram, err);
    if (!s)
        return err->status;
    if (r->n_triggers)
        grammar_state_free(s);
    else
        r->gs = s;
    return SEM_OK;
}

void request_grammar_free(gen_request *r)
{
    grammar_state_free(r->gs);
    r->gs = NULL;
    grammar_free(r->gram);
    r->gram = NULL;
    for (size_t i = 0; i < r->n_triggers; i++)
        free(r->triggers[i].text);
    free(r->triggers);
    r->triggers = NULL;
    r->n_triggers = 0;
    strbuf_free(&r->lazy_text);
    free(r->lps);
    r->lps = NULL;
}

/* ---------------------------------------------------------------- vocabulary */

static const char *vocab_piece(void *u, int32_t tok, size_t *len)
{
    model_port *mp = u;
    /* Control tokens (turn markers, <|python_tag|>) never spell grammar
     * text: inside a JSON string they would end the turn when the answer
     * is rendered back. An empty text is never allowed. */
    if (mp->ops->is_control && mp->ops->is_control(mp->self, tok) && !mp->ops->is_eog(mp->self, tok)) {
        *len = 0;
        return "";
    }
    return mp->ops->piece(mp->self, tok, len);
}

static int vocab_is_eog(void *u, int32_t tok)
{
    model_port *mp = u;
    return mp->ops->is_eog(mp->self, tok);
}

sem_status engine_grammar_vocab(engine *e, const gen_request *r, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    if (!r->gram || e->gvocab)
        return SEM_OK;
    e->gvocab = grammar_vocab_new(e->n_vocab, vocab_piece, vocab_is_eog, &e->mp, err);
    return e->gvocab ? SEM_OK : err->status;
}

/* ---------------------------------------------------------------- grammar */

static int any_finite(const float *logits, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (logits[i] > -INFINITY)
            return 1;
    return 0;
}

/* Masks what the state refuses and draws; -1 with err if nothing is left. */
static int32_t draw_masked(engine *e, gen_request *r, const grammar_state *gs, float *logits,
                           sem_err *err)
{
    e->grammar_masks++;
    if (grammar_state_mask(gs, e->gvocab, logits) != SEM_OK) {
        sem_err_set(err, SEM_ENOMEM, "engine: out of memory masking tokens for the grammar");
        return -1;
    }
    if (!any_finite(logits, e->n_vocab)) {
        sem_err_set(err, SEM_EREQUEST,
                    "the grammar admits no token of the vocabulary after %u generated tokens",
                    r->n_gen);
        return -1;
    }
    return sampler_sample(r->smp, logits);
}

/* Draws within r->gs and advances it; the time beyond the plain draw goes
 * to the engine's grammar_ms. */
static int32_t draw_in_grammar(engine *e, gen_request *r, float *logits, sem_err *err)
{
    int32_t tok;
    double t0 = deadline_now_ms();
    if (r->top_logprobs >= 0) {
        tok = draw_masked(e, r, r->gs, logits, err);
    } else {
        tok = sampler_sample(r->smp, logits);
        t0 = deadline_now_ms(); /* the draw every request makes is not the grammar's */
        if (!grammar_state_allows(r->gs, e->gvocab, tok))
            tok = draw_masked(e, r, r->gs, logits, err);
    }
    e->grammar_tokens++;
    if (tok >= 0 && !grammar_vocab_is_eog(e->gvocab, tok)) {
        size_t len;
        const char *text = grammar_vocab_text(e->gvocab, tok, &len);
        if (!grammar_state_accept(r->gs, text, len)) {
            sem_err_set(err, SEM_EINTERNAL, "engine: the grammar refused token %d it allowed",
                        tok);
            tok = -1;
        }
    }
    e->grammar_ms += deadline_now_ms() - t0;
    return tok;
}

/* ---------------------------------------------------------------- lazy grammars */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Where the earliest trigger begins in text[0..len) among those that end
 * after old (the ones before were looked for already); -1 if none.
 */
static long find_trigger(const gen_request *r, const char *text, size_t len, size_t old)
{
    size_t lead = 0;
    while (lead < len && is_blank(text[lead]))
        lead++;
    long best = -1;
    for (size_t i = 0; i < r->n_triggers; i++) {
        const req_trigger *t = &r->triggers[i];
        if (t->len > len)
            continue;
        long at = -1;
        if (t->anchored) {
            if (lead + t->len <= len && lead + t->len > old &&
                memcmp(text + lead, t->text, t->len) == 0)
                at = (long)lead;
        } else {
            size_t from = old >= t->len ? old - t->len + 1 : 0;
            const char *hit = memmem(text + from, len - from, t->text, t->len);
            if (hit)
                at = hit - text;
        }
        if (at >= 0 && (best < 0 || at < best))
            best = at;
    }
    return best;
}

/*
 * What token tok would do to a waiting lazy grammar: 0 no trigger (free
 * text), 1 it fires a trigger and the grammar takes the text from there,
 * -1 it fires one into text the grammar refuses, -2 out of memory. With
 * commit, 0 and 1 are applied (the text kept, the state made).
 */
static int lazy_try(engine *e, gen_request *r, int32_t tok, int commit)
{
    if (grammar_vocab_is_eog(e->gvocab, tok))
        return 0;
    size_t len;
    const char *piece = grammar_vocab_text(e->gvocab, tok, &len);
    size_t old = r->lazy_text.len;
    strbuf_append(&r->lazy_text, piece, len);
    if (r->lazy_text.oom)
        return -2;
    long at = find_trigger(r, r->lazy_text.data, r->lazy_text.len, old);
    if (at < 0) {
        if (!commit)
            strbuf_truncate(&r->lazy_text, old);
        return 0;
    }
    grammar_state *s = grammar_state_new(r->gram, NULL);
    if (!s) {
        strbuf_truncate(&r->lazy_text, old);
        return -2;
    }
    int ok = grammar_state_accept(s, r->lazy_text.data + at, r->lazy_text.len - (size_t)at);
    if (ok && commit) {
        r->gs = s;
        strbuf_free(&r->lazy_text);
        return 1;
    }
    grammar_state_free(s);
    strbuf_truncate(&r->lazy_text, old);
    return ok ? 1 : -1;
}

static int32_t draw_lazy(engine *e, gen_request *r, float *logits, sem_err *err)
{
    for (int tries = 0;; tries++) {
        int32_t tok = sampler_sample(r->smp, logits);
        int rc = lazy_try(e, r, tok, 1);
        if (rc >= 0)
            return tok;
        if (rc == -2)
            break;
        logits[tok] = -INFINITY;
        if (tries == LAZY_REDRAWS) {
            for (uint32_t t = 0; t < e->n_vocab; t++) {
                if (!(logits[t] > -INFINITY))
                    continue;
                rc = lazy_try(e, r, (int32_t)t, 0);
                if (rc == -2)
                    goto nomem;
                if (rc < 0)
                    logits[t] = -INFINITY;
            }
        }
        if (!any_finite(logits, e->n_vocab)) {
            sem_err_set(err, SEM_EREQUEST,
                        "no token can follow: every one completes a grammar trigger into text "
                        "the grammar refuses");
            return -1;
        }
    }
nomem:
    sem_err_set(err, SEM_ENOMEM, "engine: out of memory following a grammar trigger");
    return -1;
}

/* ---------------------------------------------------------------- the draw */

static void note_logprobs(gen_request *r, const float *logits, int32_t tok)
{
    gen_logprob *lp = &r->lp_cur;
    int32_t ids[GEN_TOP_LOGPROBS_MAX];
    float lps[GEN_TOP_LOGPROBS_MAX];
    uint32_t n = 0;
    lp->token = tok;
    lp->logprob = sampler_logprobs(r->smp, logits, tok, (uint32_t)r->top_logprobs, ids, lps, &n);
    lp->n_top = n;
    for (uint32_t i = 0; i < n; i++) {
        lp->top[i].token = ids[i];
        lp->top[i].logprob = lps[i];
    }
}

int32_t request_sample(engine *e, gen_request *r, float *logits, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    int32_t tok;
    if (r->gs)
        tok = draw_in_grammar(e, r, logits, err);
    else if (r->gram)
        tok = draw_lazy(e, r, logits, err);
    else
        tok = sampler_sample(r->smp, logits);
    if (tok >= 0 && r->top_logprobs >= 0)
        note_logprobs(r, logits, tok);
    return tok;
}

sem_status request_keep_logprob(gen_request *r)
{
    sem_status st = SEM_OK;
    pthread_mutex_lock(&r->lock);
    if (r->n_lps == r->cap_lps) {
        uint32_t cap = r->cap_lps ? r->cap_lps * 2 : 16;
        gen_logprob *l = realloc(r->lps, (size_t)cap * sizeof *l);
        if (l) {
            r->lps = l;
            r->cap_lps = cap;
        } else {
            st = SEM_ENOMEM;
        }
    }
    if (st == SEM_OK)
        r->lps[r->n_lps++] = r->lp_cur;
    pthread_mutex_unlock(&r->lock);
    return st;
}
