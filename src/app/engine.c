/*
 * engine.c - scheduler loop, admission, agents and request streams.
 *
 * Life of a request:
 *
 *   submit (any thread)      validated, copied, appended to the inbox
 *   waiting (engine thread)  in arrival order; admitted when its agent is
 *                            idle, a batch slot is free and its block
 *                            reservation fits (after reclaiming idle agents)
 *   prefill                  prompt tokens past the reused prefix, a chunk
 *                            per step
 *   decode                   one token per step: sampled, streamed, then
 *                            evaluated in the next step
 *   finished                 result published; the agent keeps its KV, an
 *                            anonymous sequence is freed
 *
 * Text reaches readers in whole UTF-8 characters, with anything that could
 * still become a stop string held back until it cannot.
 */
#include "engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/sampler.h"
#include "app/stop_strings.h"
#include "app/utf8.h"
#include "domain/agent_id.h"
#include "domain/block_table.h"

#define AGENT_BUCKETS 1024

typedef struct agent agent;

typedef enum req_phase { PHASE_WAITING, PHASE_PREFILL, PHASE_DECODE, PHASE_DONE } req_phase;

struct gen_request {
    engine *e;
    atomic_int refs;        /* the caller's and, until finished, the engine's */
    atomic_int cancel;
    /* Immutable after submit. */
    char agent_id[GEN_AGENT_ID_MAX + 1]; /* "" for anonymous */
    int32_t *prompt;        /* [n_prompt] */
    uint32_t n_prompt;
    sampler_params sp;
    uint32_t max_tokens;
    int prefill_only;
    stop_set stops;
    void (*notify)(void *user);
    void *notify_user;
    double t_submit;
    /* Engine thread only. */
    gen_request *next;      /* inbox / waiting list */
    req_phase phase;
    agent *ag;              /* NULL for anonymous */
    block_table *kv;        /* the agent's table or the request's own */
    sampler *smp;
    uint32_t n_evaluated;   /* prompt tokens with KV */
    uint32_t limit;         /* tokens the sequence may reach */
    uint64_t peak_blocks;   /* blocks reserved for the sequence at its limit */
    int32_t pending;        /* sampled token not yet evaluated, or -1 */
    uint32_t n_gen;
    int32_t *gen;           /* [max_tokens] generated tokens */
    char utf8_tail[8];      /* bytes of an incomplete UTF-8 character */
    size_t tail_len;
    size_t scan_from;       /* stop strings cannot begin before this */
    double t_admit, t_first;
    /* Shared with readers, guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *text;             /* generated text, [text_len] */
    size_t text_len, text_cap;
    size_t visible;         /* bytes readers may see */
    size_t read_pos;        /* bytes the reader has taken */
    int finished;
    gen_result result;
};

struct agent {
    char id[GEN_AGENT_ID_MAX + 1];
    block_table *kv;        /* NULL until first used */
    int busy;               /* a request of this agent is admitted */
    uint64_t last_used;     /* engine step of the last finish */
    agent *next;            /* hash chain */
};

struct engine {
    model_port mp;
    block_pool *pool;
    const cache_spec *spec;
    engine_opts o;
    uint32_t n_vocab;
    pthread_t thread;

    pthread_mutex_t inbox;  /* guards the fields up to `stats` */
    pthread_cond_t wake;
    gen_request *inbox_head, *inbox_tail;
    int stop;
    uint32_t n_pending;     /* submitted, not yet admitted */
    engine_stats stats;

    /* Engine thread only. */
    gen_request *wait_head, *wait_tail;
    gen_request **running;  /* [max_batch] in admission order */
    uint32_t n_running;
    agent *agents[AGENT_BUCKETS];
    uint32_t n_agents;
    uint64_t step;
    model_port_seq *batch;  /* [max_batch] */
    gen_request **batch_req;
    float *logits;          /* [max_batch][n_vocab] */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

engine_opts engine_defaults(void)
{
    return (engine_opts){.max_batch = 8, .chunk = 512, .max_queue = 256};
}

/* ---------------------------------------------------------------- agents */

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % AGENT_BUCKETS;
}

static agent *agent_find(engine *e, const char *id)
{
    for (agent *a = e->agents[hash_id(id)]; a; a = a->next)
        if (strcmp(a->id, id) == 0)
            return a;
    return NULL;
}

static agent *agent_get(engine *e, const char *id, sem_err *err)
{
    agent *a = agent_find(e, id);
    if (a)
        return a;
    a = calloc(1, sizeof *a);
    if (!a) {
        sem_err_set(err, SEM_ENOMEM, "engine: out of memory for agent '%s'", id);
        return NULL;
    }
    snprintf(a->id, sizeof a->id, "%s", id);
    uint32_t b = hash_id(id);
    a->next = e->agents[b];
    e->agents[b] = a;
    e->n_agents++;
    return a;
}

/* The idle agent holding blocks that was used least recently, or NULL. */
static agent *agent_lru_idle(engine *e)
{
    agent *best = NULL;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (!a->busy && a->kv && block_table_total_blocks(a->kv) > 0 &&
                (!best || a->last_used < best->last_used))
                best = a;
    return best;
}

/* ---------------------------------------------------------------- requests */

static void request_unref(gen_request *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->prompt);
    free(r->gen);
    free(r->text);
    free(r);
}

static void request_notify(gen_request *r)
{
    if (r->notify)
        r->notify(r->notify_user);
}

/* Appends generated bytes (whole characters) under the lock. */
static sem_status request_append(gen_request *r, const char *s, size_t n)
{
    if (n == 0)
        return SEM_OK;
    pthread_mutex_lock(&r->lock);
    sem_status st = SEM_OK;
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (t) {
            r->text = t;
            r->text_cap = cap;
        } else {
            st = SEM_ENOMEM;
        }
    }
    if (st == SEM_OK) {
        memcpy(r->text + r->text_len, s, n);
        r->text_len += n;
        r->text[r->text_len] = '\0';
    }
    pthread_mutex_unlock(&r->lock);
    return st;
}

/* Makes text up to `upto` readable and wakes the reader. */
static void request_show(gen_request *r, size_t upto)
{
    pthread_mutex_lock(&r->lock);
    int changed = upto > r->visible;
    if (changed)
        r->visible = upto;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (changed)
        request_notify(r);
}

/* ---------------------------------------------------------------- finishing */

static uint32_t running_index(const engine *e, const gen_request *r)
{
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i] == r)
            return i;
    return UINT32_MAX;
}

/*
 * Publishes the result, gives the sequence back (to its agent, or frees an
 * anonymous one) and drops the engine's reference.
 */
static void finish(engine *e, gen_request *r, gen_finish why, const sem_err *error)
{
    uint32_t i = running_index(e, r);
    if (i != UINT32_MAX) {
        memmove(e->running + i, e->running + i + 1, (e->n_running - i - 1) * sizeof *e->running);
        e->n_running--;
    }
    if (r->ag) {
        r->ag->busy = 0;
        r->ag->last_used = e->step;
    } else {
        block_table_destroy(r->kv);
    }
    r->kv = NULL;
    sampler_free(r->smp);
    r->smp = NULL;
    r->phase = PHASE_DONE;

    if (r->tail_len && why != GEN_CANCELLED) {
        /* The text ended inside a character: its bytes become U+FFFD. */
        request_append(r, "\xEF\xBF\xBD", 3);
        r->tail_len = 0;
    }
    pthread_mutex_lock(&r->lock);
    r->visible = r->text_len; /* nothing is held back any more */
    r->result.finish = why;
    if (error)
        r->result.error = *error;
    r->result.prompt_tokens = r->n_prompt;
    r->result.completion_tokens = r->n_gen;
    r->result.total_ms = now_ms() - r->t_submit;
    r->result.queue_ms = r->t_admit ? r->t_admit - r->t_submit : r->result.total_ms;
    r->result.ttft_ms = r->t_first ? r->t_first - r->t_submit : 0;
    r->finished = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    request_notify(r);
    request_unref(r);
}

static void fail(engine *e, gen_request *r, sem_status st, const sem_err *err)
{
    sem_err copy = *err;
    copy.status = st;
    finish(e, r, GEN_ERROR, &copy);
}

/* ---------------------------------------------------------------- tokens */

/*
 * Adds a token's text. Complete characters (invalid bytes as U+FFFD) go to
 * the request's text; an incomplete character at the end waits in
 * utf8_tail for the next token.
 */
static sem_status emit_piece(engine *e, gen_request *r, int32_t tok)
{
    size_t len = 0;
    const char *p = e->mp.ops->piece(e->mp.self, tok, &len);
    if (!p)
        len = 0;
    size_t n = r->tail_len + len;
    char small[512], *buf = n <= sizeof small ? small : malloc(n);
    char *out = malloc(3 * n + 1);
    if (!buf || !out) {
        if (buf != small)
            free(buf);
        free(out);
        return SEM_ENOMEM;
    }
    memcpy(buf, r->utf8_tail, r->tail_len);
    if (len)
        memcpy(buf + r->tail_len, p, len);
    size_t whole = 0;
    while (whole < n) {
        int k = utf8_char_len((const unsigned char *)buf + whole, n - whole);
        if (k < 0)
            break; /* incomplete: keep for the next token */
        whole += k > 0 ? (size_t)k : 1;
    }
    size_t m = utf8_sanitize(buf, whole, out);
    r->tail_len = n - whole;
    memcpy(r->utf8_tail, buf + whole, r->tail_len);
    sem_status st = request_append(r, out, m);
    if (buf != small)
        free(buf);
    free(out);
    return st;
}

/* Handles one sampled token; may finish the request. */
static void take_token(engine *e, gen_request *r, int32_t tok)
{
    if (r->n_gen == 0)
        r->t_first = now_ms();
    if (e->mp.ops->is_eog(e->mp.self, tok)) {
        finish(e, r, GEN_STOP, NULL);
        return;
    }
    r->gen[r->n_gen++] = tok;
    sampler_accept(r->smp, tok);
    sem_err err = {0};
    if (emit_piece(e, r, tok) != SEM_OK) {
        sem_err_set(&err, SEM_ENOMEM, "engine: out of memory for generated text");
        fail(e, r, SEM_ENOMEM, &err);
        return;
    }
    pthread_mutex_lock(&r->lock);
    stop_scan_result sr = stop_set_scan(&r->stops, r->text ? r->text : "", r->text_len,
                                        r->scan_from);
    if (sr.found) {
        r->text_len = sr.at;
        r->text[sr.at] = '\0';
        r->visible = sr.at;
        r->tail_len = 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (sr.found) {
        finish(e, r, GEN_STOP, NULL);
        return;
    }
    r->scan_from = sr.safe;
    request_show(r, sr.safe);
    if (r->n_gen >= r->max_tokens || block_table_n_tokens(r->kv) + 1 > r->limit) {
        finish(e, r, GEN_LENGTH, NULL);
        return;
    }
    r->pending = tok;
}

/* ---------------------------------------------------------------- admission */

/* Blocks the running sequences may still take for their reservations. */
static uint64_t outstanding(const engine *e)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < e->n_running; i++) {
        const gen_request *r = e->running[i];
        uint64_t held = block_table_total_blocks(r->kv);
        if (r->peak_blocks > held)
            sum += r->peak_blocks - held;
    }
    return sum;
}

/* Reclaims idle agents until `need` blocks are free or none is left. */
static int make_room(engine *e, uint64_t need)
{
    for (;;) {
        uint64_t free_blocks = block_pool_free_count(e->pool);
        uint64_t owed = outstanding(e);
        if (free_blocks >= owed && free_blocks - owed >= need)
            return 1;
        agent *victim = agent_lru_idle(e);
        if (!victim)
            return 0;
        block_table_clear(victim->kv);
        pthread_mutex_lock(&e->inbox);
        e->stats.evictions++;
        pthread_mutex_unlock(&e->inbox);
    }
}

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/*
 * Keeps in the agent's table the longest prefix of the prompt it can reuse
 * (up to the first differing token; never the whole prompt, whose last
 * token must be evaluated for its logits). Idempotent: a request that
 * must wait can be attached again later.
 */
static sem_status reuse_prefix(gen_request *r, block_table *t, sem_err *err)
{
    uint32_t lcp = common_prefix(block_table_tokens(t), block_table_n_tokens(t), r->prompt,
                                 r->n_prompt);
    if (lcp >= r->n_prompt && !r->prefill_only)
        lcp = r->n_prompt - 1;
    uint32_t keep = block_table_reusable(t, lcp);
    if (block_table_truncate(t, keep, err) != SEM_OK)
        return SEM_EINTERNAL;
    r->n_evaluated = keep;
    return SEM_OK;
}

/* Tries to admit r; 1 if admitted (or finished with an error), 0 to wait. */
static int admit_one(engine *e, gen_request *r)
{
    sem_err err = {0};
    agent *a = NULL;
    if (r->agent_id[0]) {
        a = agent_get(e, r->agent_id, &err);
        if (a && a->busy)
            return 0; /* same-agent requests run in arrival order */
        if (a && !a->kv)
            a->kv = block_table_create(e->pool, r->agent_id, &err);
        if (!a || !a->kv || reuse_prefix(r, a->kv, &err) != SEM_OK) {
            fail(e, r, err.status ? err.status : SEM_EINTERNAL, &err);
            return 1;
        }
    }
    /* Blocks still to take: the reservation less what the sequence holds. */
    uint64_t held = a ? block_table_total_blocks(a->kv) : 0;
    if (a)
        a->busy = 1; /* its own blocks are not reclaimed for it */
    int room = make_room(e, r->peak_blocks > held ? r->peak_blocks - held : 0);
    if (a)
        a->busy = 0;
    if (!room)
        return 0;
    r->ag = a;
    r->kv = a ? a->kv : block_table_create(e->pool, "anonymous", &err);
    sampler_params sp = r->sp;
    r->smp = r->kv ? sampler_create(&sp, e->n_vocab, &err) : NULL;
    if (!r->smp) {
        if (!a)
            block_table_destroy(r->kv);
        r->kv = NULL;
        r->ag = NULL;
        fail(e, r, err.status, &err);
        return 1;
    }
    for (uint32_t i = 0; i < r->n_prompt; i++)
        sampler_accept(r->smp, r->prompt[i]);
    if (a)
        a->busy = 1;
    r->t_admit = now_ms();
    r->phase = PHASE_PREFILL;
    pthread_mutex_lock(&r->lock);
    r->result.cached_tokens = r->n_evaluated;
    pthread_mutex_unlock(&r->lock);
    e->running[e->n_running++] = r;
    return 1;
}

static void admit(engine *e)
{
    gen_request **link = &e->wait_head, *prev = NULL;
    while (*link && e->n_running < e->o.max_batch) {
        gen_request *r = *link;
        if (atomic_load(&r->cancel)) {
            *link = r->next;
            if (e->wait_tail == r)
                e->wait_tail = prev;
            finish(e, r, GEN_CANCELLED, NULL);
        } else if (admit_one(e, r)) {
            *link = r->next;
            if (e->wait_tail == r)
                e->wait_tail = prev;
        } else if (r->agent_id[0] && agent_find(e, r->agent_id) &&
                   agent_find(e, r->agent_id)->busy) {
            prev = r; /* its agent is busy: later requests of others may go */
            link = &r->next;
            continue;
        } else {
            break; /* no room: keep arrival order */
        }
        pthread_mutex_lock(&e->inbox);
        e->n_pending--;
        pthread_mutex_unlock(&e->inbox);
    }
}

/* ---------------------------------------------------------------- a step */

static void drain_inbox(engine *e)
{
    pthread_mutex_lock(&e->inbox);
    gen_request *list = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox);
    while (list) {
        gen_request *r = list;
        list = r->next;
        r->next = NULL;
        if (e->wait_tail)
            e->wait_tail->next = r;
        else
            e->wait_head = r;
        e->wait_tail = r;
    }
}

static void reap_cancelled(engine *e)
{
    for (uint32_t i = 0; i < e->n_running;) {
        gen_request *r = e->running[i];
        if (atomic_load(&r->cancel))
            finish(e, r, GEN_CANCELLED, NULL); /* removes it from running */
        else
            i++;
    }
}

/* Appends this step's tokens to each sequence and lists the batch. */
static uint32_t build_batch(engine *e, engine_step_info *info)
{
    uint32_t n = 0, budget = e->o.chunk;
    for (uint32_t i = 0; i < e->n_running;) {
        gen_request *r = e->running[i];
        const int32_t *toks;
        uint32_t k, n_logits;
        if (r->phase == PHASE_DECODE) {
            toks = &r->pending;
            k = 1;
            n_logits = 1;
        } else {
            k = r->n_prompt - r->n_evaluated;
            if (k > budget)
                k = budget;
            if (k == 0 && r->n_evaluated < r->n_prompt) {
                i++;
                continue; /* the chunk is spent: next step */
            }
            toks = r->prompt + r->n_evaluated;
            n_logits = (r->n_evaluated + k == r->n_prompt && !r->prefill_only) ? 1 : 0;
        }
        sem_err err = {0};
        if (k == 0) { /* prefill_only with nothing left to compute */
            finish(e, r, GEN_STOP, NULL);
            continue;
        }
        if (block_table_append(r->kv, toks, k, &err) != SEM_OK) {
            /* The reservation makes this a bug; fail the one request. */
            sem_err_wrap(&err, "engine: reserved blocks missing");
            fail(e, r, SEM_EINTERNAL, &err);
            continue;
        }
        if (r->phase == PHASE_DECODE) {
            info->n_decode++;
        } else {
            budget -= k;
            info->n_prefill++;
            info->prefill_tokens += k;
        }
        e->batch[n] = (model_port_seq){.kv = r->kv, .n_new = k, .n_logits = n_logits,
                                       .logits = e->logits + (size_t)n * e->n_vocab};
        e->batch_req[n] = r;
        n++;
        i++;
    }
    return n;
}

/* After the forward pass: windows, progress, sampling. */
static void after_forward(engine *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        gen_request *r = e->batch_req[i];
        sem_err err = {0};
        if (block_table_release_window(r->kv, &err) != SEM_OK) {
            fail(e, r, SEM_EINTERNAL, &err);
            continue;
        }
        if (r->phase == PHASE_PREFILL) {
            r->n_evaluated += e->batch[i].n_new;
            if (r->n_evaluated < r->n_prompt)
                continue;
            if (r->prefill_only) {
                finish(e, r, GEN_STOP, NULL);
                continue;
            }
            r->phase = PHASE_DECODE;
        }
        int32_t tok = sampler_sample(r->smp, e->batch[i].logits);
        take_token(e, r, tok);
    }
}

static void fail_batch(engine *e, uint32_t n, const sem_err *err)
{
    for (uint32_t i = 0; i < n; i++) {
        gen_request *r = e->batch_req[i];
        /* Its table now holds tokens without KV: drop them. */
        block_table_clear(r->kv);
        fail(e, r, err->status, err);
    }
}

static void publish_stats(engine *e)
{
    uint32_t hot = 0;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            hot += a->kv && block_table_total_blocks(a->kv) > 0;
    pthread_mutex_lock(&e->inbox);
    e->stats.running = e->n_running;
    e->stats.waiting = e->n_pending;
    e->stats.agents = e->n_agents;
    e->stats.agents_hot = hot;
    e->stats.steps = e->step;
    pthread_mutex_unlock(&e->inbox);
}

/* One scheduler step; 0 when there was nothing to run. */
static int step(engine *e)
{
    drain_inbox(e);
    reap_cancelled(e);
    admit(e);
    if (e->n_running == 0) {
        publish_stats(e);
        return 0;
    }
    engine_step_info info = {.step = e->step};
    uint32_t n = build_batch(e, &info);
    if (n > 0) {
        sem_err err = {0};
        if (e->mp.ops->forward(e->mp.self, e->batch, n, &err) != SEM_OK)
            fail_batch(e, n, &err);
        else
            after_forward(e, n);
    }
    e->step++;
    publish_stats(e);
    info.running = e->n_running;
    info.waiting = e->stats.waiting;
    if (e->o.on_step)
        e->o.on_step(e->o.on_step_user, &info);
    return 1;
}

static void *engine_main(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->inbox);
        while (!e->stop && !e->inbox_head && e->n_running == 0 && !e->wait_head)
            pthread_cond_wait(&e->wake, &e->inbox);
        int stop = e->stop;
        pthread_mutex_unlock(&e->inbox);
        if (stop)
            break;
        if (!step(e) && e->wait_head) {
            /* Waiting requests that cannot be admitted yet: sleep until something changes. */
            pthread_mutex_lock(&e->inbox);
            if (!e->stop && !e->inbox_head) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&e->wake, &e->inbox, &ts);
            }
            pthread_mutex_unlock(&e->inbox);
        }
    }
    /* Shutdown: everything still queued or running is cancelled. */
    drain_inbox(e);
    while (e->n_running)
        finish(e, e->running[0], GEN_CANCELLED, NULL);
    while (e->wait_head) {
        gen_request *r = e->wait_head;
        e->wait_head = r->next;
        finish(e, r, GEN_CANCELLED, NULL);
    }
    e->wait_tail = NULL;
    return NULL;
}

/* ---------------------------------------------------------------- port */

static sem_status validate(engine *e, const gen_params *p, sem_err *err)
{
    if (!p || !p->prompt || p->n_prompt == 0)
        return sem_err_set(err, SEM_EREQUEST, "the prompt is empty");
    if (p->agent_id && agent_id_validate(p->agent_id, err) != SEM_OK)
        return SEM_EREQUEST;
    if (p->n_prompt >= e->o.n_ctx)
        return sem_err_set(err, SEM_ETOOLARGE,
                           "the prompt is %u tokens; the context holds %u (prompt plus at least "
                           "one generated token)",
                           p->n_prompt, e->o.n_ctx);
    for (uint32_t i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || (uint32_t)p->prompt[i] >= e->n_vocab)
            return sem_err_set(err, SEM_EREQUEST, "prompt token %u is %d, outside the vocabulary "
                               "of %u", i, p->prompt[i], e->n_vocab);
    if (!p->prefill_only && p->max_tokens == 0)
        return sem_err_set(err, SEM_EREQUEST, "max_tokens must be at least 1");
    return SEM_OK;
}

static sem_status gp_submit(void *self, const gen_params *p, gen_request **out, sem_err *err)
{
    engine *e = self;
    sem_status st = validate(e, p, err);
    if (st != SEM_OK)
        return st;
    gen_request *r = calloc(1, sizeof *r);
    if (!r)
        return sem_err_set(err, SEM_ENOMEM, "engine: out of memory");
    r->e = e;
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, 0);
    snprintf(r->agent_id, sizeof r->agent_id, "%s", p->agent_id ? p->agent_id : "");
    r->n_prompt = p->n_prompt;
    r->max_tokens = p->prefill_only ? 0 : p->max_tokens;
    r->prefill_only = p->prefill_only;
    r->notify = p->notify;
    r->notify_user = p->notify_user;
    r->pending = -1;
    r->sp = (sampler_params){.temperature = p->sampling.temperature,
                             .top_k = p->sampling.top_k,
                             .top_p = p->sampling.top_p,
                             .min_p = p->sampling.min_p,
                             .repeat_penalty = p->sampling.repeat_penalty,
                             .repeat_last_n = p->sampling.repeat_last_n,
                             .presence_penalty = p->sampling.presence_penalty,
                             .frequency_penalty = p->sampling.frequency_penalty,
                             .seed = p->sampling.seed};
    uint64_t limit = (uint64_t)p->n_prompt + r->max_tokens;
    r->limit = (uint32_t)(limit < e->o.n_ctx ? limit : e->o.n_ctx);
    r->peak_blocks = cache_spec_peak_blocks(e->spec, r->limit, e->o.chunk);
    r->prompt = malloc(p->n_prompt * sizeof *r->prompt);
    r->gen = malloc((r->max_tokens ? r->max_tokens : 1) * sizeof *r->gen);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (!r->prompt || !r->gen) {
        atomic_store(&r->refs, 1);
        request_unref(r);
        return sem_err_set(err, SEM_ENOMEM, "engine: out of memory for a prompt of %u tokens",
                           p->n_prompt);
    }
    memcpy(r->prompt, p->prompt, p->n_prompt * sizeof *r->prompt);
    if ((st = sampler_params_validate(&r->sp, err)) != SEM_OK ||
        (st = stop_set_init(&r->stops, p->stop, p->n_stop, err)) != SEM_OK) {
        atomic_store(&r->refs, 1);
        request_unref(r);
        err->status = SEM_EREQUEST;
        return SEM_EREQUEST;
    }
    if (r->peak_blocks > block_pool_total(e->pool)) {
        uint64_t need = r->peak_blocks;
        atomic_store(&r->refs, 1);
        request_unref(r);
        return sem_err_set(err, SEM_ETOOLARGE,
                           "the request needs %llu KV blocks (%u prompt + %u generated tokens); "
                           "the whole pool has %u",
                           (unsigned long long)need, p->n_prompt, p->prefill_only ? 0 : p->max_tokens,
                           block_pool_total(e->pool));
    }
    r->t_submit = now_ms();
    pthread_mutex_lock(&e->inbox);
    if (e->stop) {
        st = sem_err_set(err, SEM_EBUSY, "the engine is shutting down");
    } else if (e->n_pending >= e->o.max_queue) {
        st = sem_err_set(err, SEM_EBUSY, "the admission queue is full (%u requests waiting)",
                         e->n_pending);
    } else {
        if (e->inbox_tail)
            e->inbox_tail->next = r;
        else
            e->inbox_head = r;
        e->inbox_tail = r;
        e->n_pending++;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->inbox);
    if (st != SEM_OK) {
        atomic_store(&r->refs, 1);
        request_unref(r);
        return st;
    }
    *out = r;
    return SEM_OK;
}

static int gp_read(void *self, gen_request *r, char *buf, size_t cap, size_t *n, int timeout_ms)
{
    (void)self;
    pthread_mutex_lock(&r->lock);
    if (timeout_ms != 0 && r->read_pos == r->visible && !r->finished) {
        if (timeout_ms < 0) {
            while (r->read_pos == r->visible && !r->finished)
                pthread_cond_wait(&r->cond, &r->lock);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (long)(timeout_ms % 1000) * 1000000L;
            ts.tv_sec += timeout_ms / 1000 + ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            while (r->read_pos == r->visible && !r->finished &&
                   pthread_cond_timedwait(&r->cond, &r->lock, &ts) == 0) {
            }
        }
    }
    size_t k = r->visible - r->read_pos;
    if (k > cap)
        k = cap;
    if (k)
        memcpy(buf, r->text + r->read_pos, k);
    r->read_pos += k;
    *n = k;
    int done = r->finished && r->read_pos == r->visible;
    pthread_mutex_unlock(&r->lock);
    return done;
}

static void gp_cancel(void *self, gen_request *r)
{
    engine *e = self;
    atomic_store(&r->cancel, 1);
    pthread_mutex_lock(&e->inbox);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->inbox);
}

static gen_result gp_result(void *self, gen_request *r)
{
    (void)self;
    pthread_mutex_lock(&r->lock);
    gen_result res = r->result;
    if (!r->finished)
        res.finish = GEN_RUNNING;
    pthread_mutex_unlock(&r->lock);
    return res;
}

static sem_status gp_tokens(void *self, gen_request *r, int32_t **out, uint32_t *n, sem_err *err)
{
    (void)self;
    pthread_mutex_lock(&r->lock);
    int done = r->finished;
    pthread_mutex_unlock(&r->lock);
    if (!done)
        return sem_err_set(err, SEM_EBUSY, "the request is still running");
    /* Finished: the engine no longer touches gen. */
    *out = malloc((r->n_gen ? r->n_gen : 1) * sizeof **out);
    if (!*out)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    memcpy(*out, r->gen, r->n_gen * sizeof **out);
    *n = r->n_gen;
    return SEM_OK;
}

static void gp_release(void *self, gen_request *r)
{
    if (!r)
        return;
    gp_cancel(self, r); /* no effect once finished */
    request_unref(r);
}

static const generation_port_ops engine_ops = {
    .submit = gp_submit,
    .read = gp_read,
    .cancel = gp_cancel,
    .result = gp_result,
    .tokens = gp_tokens,
    .release = gp_release,
};

generation_port engine_generation_port(engine *e) { return (generation_port){&engine_ops, e}; }

/* ---------------------------------------------------------------- life */

engine *engine_create(model_port mp, block_pool *pool, const engine_opts *o, sem_err *err)
{
    engine_opts opts = o ? *o : engine_defaults();
    if (!opts.max_batch || !opts.chunk || !opts.max_queue) {
        sem_err_set(err, SEM_EINVAL, "engine: max_batch, chunk and max_queue must be >= 1");
        return NULL;
    }
    uint32_t port_ctx = mp.ops->n_ctx(mp.self);
    if (!opts.n_ctx || opts.n_ctx > port_ctx)
        opts.n_ctx = port_ctx;
    if (mp.ops->max_batch_tokens(mp.self) < opts.chunk + opts.max_batch) {
        sem_err_set(err, SEM_EINVAL,
                    "engine: the model evaluates at most %u tokens per call; chunk %u plus "
                    "max_batch %u do not fit",
                    mp.ops->max_batch_tokens(mp.self), opts.chunk, opts.max_batch);
        return NULL;
    }
    engine *e = calloc(1, sizeof *e);
    if (!e) {
        sem_err_set(err, SEM_ENOMEM, "engine: out of memory");
        return NULL;
    }
    e->mp = mp;
    e->pool = pool;
    e->spec = block_pool_spec(pool);
    e->o = opts;
    e->n_vocab = mp.ops->n_vocab(mp.self);
    e->running = calloc(opts.max_batch, sizeof *e->running);
    e->batch = calloc(opts.max_batch, sizeof *e->batch);
    e->batch_req = calloc(opts.max_batch, sizeof *e->batch_req);
    e->logits = malloc((size_t)opts.max_batch * e->n_vocab * sizeof *e->logits);
    e->stats.pool_total = block_pool_total(pool);
    pthread_mutex_init(&e->inbox, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (!e->running || !e->batch || !e->batch_req || !e->logits ||
        pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        sem_err_set(err, SEM_ENOMEM, "engine: cannot allocate or start the engine thread");
        free(e->running);
        free(e->batch);
        free(e->batch_req);
        free(e->logits);
        pthread_mutex_destroy(&e->inbox);
        pthread_cond_destroy(&e->wake);
        free(e);
        return NULL;
    }
    return e;
}

void engine_destroy(engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->inbox);
    e->stop = 1;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->inbox);
    pthread_join(e->thread, NULL);
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++) {
        agent *a = e->agents[b];
        while (a) {
            agent *next = a->next;
            block_table_destroy(a->kv);
            free(a);
            a = next;
        }
    }
    pthread_mutex_destroy(&e->inbox);
    pthread_cond_destroy(&e->wake);
    free(e->running);
    free(e->batch);
    free(e->batch_req);
    free(e->logits);
    free(e);
}

engine_stats engine_get_stats(engine *e)
{
    pthread_mutex_lock(&e->inbox);
    engine_stats s = e->stats;
    pthread_mutex_unlock(&e->inbox);
    s.pool_used = block_pool_used(e->pool);
    return s;
}
