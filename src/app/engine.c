/*
 * engine.c - the scheduler loop: admission, batches, steps, and the
 * engine's life.
 *
 * Life of a request:
 *
 *   submit (any thread)      validated, copied, appended to the inbox
 *   waiting (engine thread)  in arrival order; admitted when its agent is
 *                            idle, a batch slot is free and its block
 *                            reservation fits (after reclaiming idle
 *                            sequences)
 *   loading                  only for an agent whose KV is on disk only:
 *                            the I/O thread reads it into the pool
 *   prefill                  prompt tokens past the reused prefix, a chunk
 *                            per step
 *   decode                   one token per step: sampled (kept inside the
 *                            request's grammar, engine_sample.c), streamed, then
 *                            evaluated in the next step
 *   finished                 result published; the agent keeps its KV (and
 *                            saves it shortly after), an anonymous sequence
 *                            goes to the anonymous cache
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "base/deadline.h"



void engine_log(engine *e, const char *level, const char *fmt, ...)
{
    if (!e->o.log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->o.log(e->o.log_user, level, msg);
}

engine_opts engine_defaults(void)
{
    return (engine_opts){.max_batch = 8, .chunk = 512, .max_queue = 256, .anon_keep = 16,
                         .save_delay_ms = 50};
}

void engine_wake(engine *e)
{
    sem_mutex_lock(&e->inbox);
    pthread_cond_signal(&e->wake);
    sem_mutex_unlock(&e->inbox);
}

void engine_call(engine *e, void (*fn)(engine *e, void *arg), void *arg)
{
    engine_msg m = {.kind = MSG_CALL, .fn = fn, .arg = arg};
    sem_mutex_lock(&e->inbox);
    if (e->stop) { /* the engine thread is gone: nothing else touches its state */
        sem_mutex_unlock(&e->inbox);
        fn(e, arg);
        return;
    }
    if (e->msg_tail)
        e->msg_tail->next = &m;
    else
        e->msg_head = &m;
    e->msg_tail = &m;
    pthread_cond_signal(&e->wake);
    while (!m.done)
        sem_mutex_wait(&e->inbox, &e->called);
    sem_mutex_unlock(&e->inbox);
}

/* ---------------------------------------------------------------- admission */

static void count_reuse(engine *e, uint32_t cached)
{
    sem_mutex_lock(&e->inbox);
    if (cached > 0)
        e->stats.hits_hot++;
    else
        e->stats.misses++;
    sem_mutex_unlock(&e->inbox);
}

/* Moves an admitted request into the running set. */
static void start(engine *e, gen_request *r, req_phase phase)
{
    r->t_admit = deadline_now_ms();
    r->phase = phase;
    pthread_mutex_lock(&r->lock);
    r->result.cached_tokens = r->n_evaluated;
    r->result.prompt_tokens = r->n_prompt; /* as aligned (prompt_align.h) */
    pthread_mutex_unlock(&r->lock);
    e->running[e->n_running++] = r;
}

/* Blocks r's sequence may still take: its peak, plus the copy of a shared
 * last block, less what its table holds. */
uint64_t engine_owed(const gen_request *r, const block_table *t)
{
    uint64_t held = t ? block_table_total_blocks(t) : 0;
    uint64_t peak = r->peak_blocks + (t ? block_table_cow_blocks(t) : 0);
    return peak > held ? peak - held : 0;
}

/*
 * An agent's request: hot reuse (its own blocks, or a donor's that start
 * its prompt for longer), or a load from disk first: 1 admitted, 2 load
 * the agent's file, 3 look for shared chunks on disk (a new agent), 0
 * wait, -1 refused.
 */
static int admit_agent(engine *e, gen_request *r, uint64_t *need, sem_err *err)
{
    agent *a = agents_get(e, r->agent_id, err);
    if (!a)
        return -1;
    if (a->state != AGENT_IDLE)
        return 0; /* same-agent requests run in arrival order */
    int hot = a->kv && block_table_n_tokens(a->kv) > 0;
    if (hot && agents_reuse_prefix(r, a->kv, err) != SEM_OK)
        return -1;
    int load = !hot && a->warm && e->o.warm;
    if (!load) {
        if (!a->kv && !(a->kv = block_table_create(e->pool, a->key, err)))
            return -1;
        if (share_take(e, r, a->kv, hot ? r->n_evaluated : 0, err) < 0)
            return -1;
    }
    *need = engine_owed(r, a->kv);
    agent_set_state(a, AGENT_IDLE, AGENT_RUNNING); /* its own blocks are not reclaimed for it */
    int room = agents_make_room(e, *need);
    if (!room) {
        agent_set_state(a, AGENT_RUNNING, AGENT_IDLE);
        share_untie(e, r, a->kv);
        return 0;
    }
    r->ag = a;
    if (load)
        return 2; /* the caller makes it LOADING and dispatches the load once r is ready */
    r->kv = a->kv;
    /* A new agent: its memory may be in a tier this node has not listed
     * (a remote one), or shared chunks on disk may start its prompt. */
    if (r->n_evaluated == 0 && !a->warm && e->o.warm && r->n_prompt > 1)
        return 3;
    return 1;
}

/* An anonymous request: the cached anonymous sequence, or a donor's
 * blocks, whichever starts its prompt for longer. */
static int admit_anonymous(engine *e, gen_request *r, sem_err *err)
{
    if (!agents_make_room(e, r->peak_blocks))
        return 0;
    if (!(r->kv = anon_take(e, r, err)))
        return -1;
    r->n_evaluated = block_table_n_tokens(r->kv);
    if (share_take(e, r, r->kv, r->n_evaluated, err) < 0)
        return -1;
    /* A shared last block may have to be copied: room for that too. */
    if (block_table_cow_blocks(r->kv) && !agents_make_room(e, engine_owed(r, r->kv))) {
        share_untie(e, r, r->kv);
        anon_put(e, r->kv, r->scope);
        r->kv = NULL;
        return 0;
    }
    return 1;
}

/*
 * Tries to admit r: 1 admitted, 0 to wait, -1 refused with err saying why
 * (the caller takes r off the waiting list, then fails it: failing it may
 * free it).
 */
static int admit_one(engine *e, gen_request *r, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    uint64_t need = r->peak_blocks;
    int how = r->agent_id[0] ? admit_agent(e, r, &need, err) : admit_anonymous(e, r, err);
    if (how == 0)
        return 0;
    sampler_params sp = r->sp;
    if (how > 0 && (engine_grammar_vocab(e, r, err) != SEM_OK ||
                    !(r->smp = sampler_create(&sp, e->n_vocab, err))))
        how = -1;
    if (how < 0) {
        if (r->ag)
            agent_set_state(r->ag, AGENT_RUNNING, AGENT_IDLE);
        else
            block_table_destroy(r->kv);
        r->kv = NULL;
        r->ag = NULL;
        if (!err->status)
            err->status = SEM_EINTERNAL;
        return -1;
    }
    for (uint32_t i = 0; i < r->n_prompt; i++)
        sampler_accept(r->smp, r->prompt[i]);
    if (how == 2 || how == 3) {
        /* Only now, when nothing more can fail: a load in flight must find
         * its request waiting. */
        agent_set_state(r->ag, AGENT_RUNNING, AGENT_LOADING);
        if (how == 2)
            io_push(e, IO_LOAD, r->ag, r->ag->key, 0);
        else
            io_push_prefix(e, r->ag, r->prompt, r->n_prompt - (r->prefill_only ? 0 : 1));
        r->kv = NULL;
        start(e, r, PHASE_LOADING);
        return 1;
    }
    count_reuse(e, r->n_evaluated);
    start(e, r, PHASE_PREFILL);
    return 1;
}

static void dequeue(engine *e, gen_request **link, gen_request *prev)
{
    gen_request *r = *link;
    *link = r->next;
    if (e->wait_tail == r)
        e->wait_tail = prev;
    r->next = NULL;
    sem_mutex_lock(&e->inbox);
    e->n_pending--;
    sem_mutex_unlock(&e->inbox);
}

static void admit(engine *e)
{
    ENGINE_THREAD_ONLY(e);
    share_expire_pins(e);
    gen_request **link = &e->wait_head, *prev = NULL;
    while (*link) {
        gen_request *r = *link;
        if (atomic_load(&r->cancel)) {
            dequeue(e, link, prev);
            request_finish(e, r, GEN_CANCELLED, NULL);
            continue;
        }
        if (e->n_running == e->o.max_batch)
            break;
        agent *a = r->agent_id[0] ? agents_find(e, r->agent_id) : NULL;
        if (a && a->state == AGENT_SAVING) /* stop the write: r needs the table */
            atomic_store_explicit(&a->save_stop, 1, memory_order_relaxed);
        if ((a && a->state != AGENT_IDLE) || share_should_wait(e, r)) {
            prev = r; /* its agent is busy, or a running prefill computes its start
                         for it: others behind it may go */
            link = &r->next;
            continue;
        }
        sem_err err = {0};
        int admitted = admit_one(e, r, &err);
        if (!admitted)
            break; /* no room: keep arrival order */
        dequeue(e, link, prev);
        if (admitted < 0)
            request_fail(e, r, err.status, &err);
    }
}

/* ---------------------------------------------------------------- a step */

static void drain_inbox(engine *e)
{
    sem_mutex_lock(&e->inbox);
    gen_request *list = e->inbox_head;
    engine_msg *msgs = e->msg_head;
    e->inbox_head = e->inbox_tail = NULL;
    e->msg_head = e->msg_tail = NULL;
    sem_mutex_unlock(&e->inbox);
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
    while (msgs) {
        engine_msg *m = msgs;
        msgs = m->next;
        if (m->kind == MSG_IO_DONE) {
            agents_io_done(e, m); /* m is the agent's own (it may be freed with it) */
        } else {
            m->fn(e, m->arg);
            sem_mutex_lock(&e->inbox);
            m->done = 1; /* m lives on the caller's stack: not touched after this */
            pthread_cond_broadcast(&e->called);
            sem_mutex_unlock(&e->inbox);
        }
    }
}

static void reap_cancelled(engine *e)
{
    for (uint32_t i = 0; i < e->n_running;) {
        gen_request *r = e->running[i];
        /* A loading request waits for its table before it can finish. */
        if (atomic_load(&r->cancel) && r->phase != PHASE_LOADING)
            request_finish(e, r, GEN_CANCELLED, NULL); /* removes it from running */
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
        if (r->phase == PHASE_LOADING) {
            i++;
            continue;
        }
        if (r->phase == PHASE_DECODE) {
            toks = &r->pending;
            k = 1;
            n_logits = 1;
        } else {
            uint32_t left = r->n_prompt - r->n_evaluated;
            if (left == 0) { /* prefill_only, all of it reused */
                request_finish(e, r, GEN_STOP, NULL);
                continue;
            }
            k = left < budget ? left : budget;
            if (k == 0) {
                i++;
                continue; /* the chunk is spent: next step */
            }
            toks = r->prompt + r->n_evaluated;
            n_logits = (k == left && !r->prefill_only) ? 1 : 0;
        }
        sem_err err = {0};
        if (block_table_append(r->kv, toks, k, &err) != SEM_OK) {
            /* The table's own arrays may not grow; that fails the one
             * request. Missing blocks the reservation makes a bug. */
            sem_status st = err.status == SEM_ENOMEM ? SEM_ENOMEM : SEM_EINTERNAL;
            sem_err_wrap(&err, st == SEM_ENOMEM ? "engine" : "engine: reserved blocks missing");
            request_fail(e, r, st, &err);
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
            request_fail(e, r, SEM_EINTERNAL, &err);
            continue;
        }
        if (r->phase == PHASE_PREFILL) {
            r->n_evaluated += e->batch[i].n_new;
            if (r->n_evaluated < r->n_prompt)
                continue;
            if (r->n_pins)
                share_pin_breakpoints(e, r);
            if (r->prefill_only) {
                request_finish(e, r, GEN_STOP, NULL);
                continue;
            }
            r->phase = PHASE_DECODE;
        }
        int32_t tok = request_sample(e, r, e->batch[i].logits, &err);
        if (tok < 0)
            request_fail(e, r, err.status, &err);
        else
            request_take_token(e, r, tok);
    }
}

static void fail_batch(engine *e, uint32_t n, const sem_err *err)
{
    for (uint32_t i = 0; i < n; i++) {
        gen_request *r = e->batch_req[i];
        /* Its table now holds tokens without KV: drop them. */
        block_table_clear(r->kv);
        request_fail(e, r, err->status, err);
    }
}

static void publish_stats(engine *e)
{
    engine_stats s;
    sem_mutex_lock(&e->inbox);
    s = e->stats;
    sem_mutex_unlock(&e->inbox);
    agents_publish(e, &s);
    sem_mutex_lock(&e->inbox);
    e->stats.agents = s.agents;
    e->stats.agents_hot = s.agents_hot;
    e->stats.agents_warm = s.agents_warm;
    e->stats.pool_shared = s.pool_shared;
    e->stats.pool_pinned = s.pool_pinned;
    e->stats.prefix_pins = s.prefix_pins;
    e->stats.running = e->n_running;
    e->stats.waiting = e->n_pending;
    e->stats.steps = e->step;
    e->stats.grammar_tokens = e->grammar_tokens;
    e->stats.grammar_masks = e->grammar_masks;
    e->stats.grammar_ms = e->grammar_ms;
    sem_mutex_unlock(&e->inbox);
}

/* One scheduler step; 0 when there was nothing to compute. */
static int step(engine *e)
{
    ENGINE_THREAD_ONLY(e);
    drain_inbox(e);
    reap_cancelled(e);
    admit(e);
    agents_due_saves(e, 0);
    engine_step_info info = {.step = e->step};
    uint32_t n = build_batch(e, &info);
    if (n > 0) {
        sem_err err = {0};
        if (e->mp.ops->forward(e->mp.self, e->batch, n, &err) != SEM_OK)
            fail_batch(e, n, &err);
        else
            after_forward(e, n);
        e->step++;
    }
    publish_stats(e);
    if (n > 0 && e->o.on_step) {
        info.running = e->n_running;
        info.waiting = e->stats.waiting;
        e->o.on_step(e->o.on_step_user, &info);
    }
    return n > 0;
}

/* Sleeps until something may have changed: new work, an I/O result, a
 * save falling due, or (with requests waiting for room) a short while. */
static void idle_wait(engine *e)
{
    double due = agents_next_due(e);
    sem_mutex_lock(&e->inbox);
    if (!e->stop && !e->inbox_head && !e->msg_head) {
        int timed = due > 0 || e->wait_head;
        if (!timed) {
            sem_mutex_wait(&e->inbox, &e->wake);
        } else {
            double wait_ms = due > 0 ? due - deadline_now_ms() : 10;
            if (e->wait_head && wait_ms > 10)
                wait_ms = 10;
            if (wait_ms > 0)
                sem_mutex_wait_ms(&e->inbox, &e->wake, wait_ms);
        }
    }
    sem_mutex_unlock(&e->inbox);
}

/*
 * One throwaway forward pass of one token on the engine thread, which
 * engine_create waits for before it returns. A new engine's first pass
 * costs more than the next ones: on the AMD EPYC Zen 5 a returning
 * agent's first request on a restarted server took 9 ms more than the
 * same request a step later (`semantic bench --memory`, warm against hot
 * at 64 and 4096 tokens); a pass on the creating thread did not take that
 * away from the engine thread's first, and one the engine thread ran
 * while a request waited added to that request. Best effort: a pool with
 * no room, or a failing pass, only means the first request pays it.
 */
static void warm_up(engine *e, void *arg)
{
    (void)arg;
    sem_err err = {0};
    block_table *t = block_table_create(e->pool, "warm-up", &err);
    int32_t tok = 0;
    if (t && block_table_append(t, &tok, 1, &err) == SEM_OK) {
        model_port_seq s = {.kv = t, .n_new = 1, .n_logits = 1, .logits = e->logits};
        e->mp.ops->forward(e->mp.self, &s, 1, &err);
    }
    block_table_destroy(t);
}

static void *engine_main(void *arg)
{
    engine *e = arg;
    thread_mark_set(&e->owner);
    for (;;) {
        sem_mutex_lock(&e->inbox);
        int stop = e->stop;
        sem_mutex_unlock(&e->inbox);
        if (stop)
            break;
        if (!step(e))
            idle_wait(e);
    }
    return NULL;
}

/* ---------------------------------------------------------------- life */

static void free_buffers(engine *e)
{
    free(e->running);
    free(e->batch);
    free(e->batch_req);
    free(e->logits);
    free(e->anon);
    grammar_vocab_free(e->gvocab);
}

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
    e->anon = calloc(opts.anon_keep ? opts.anon_keep : 1, sizeof *e->anon);
    e->stats.pool_total = block_pool_total(pool);
    if (!e->running || !e->batch || !e->batch_req || !e->logits || !e->anon) {
        sem_err_set(err, SEM_ENOMEM, "engine: out of memory");
        free_buffers(e);
        free(e);
        return NULL;
    }
    sem_mutex_init(&e->inbox);
    deadline_cond_init(&e->wake);
    pthread_cond_init(&e->called, NULL);
    agents_load_warm(e);
    if (io_start(e, err) != SEM_OK)
        goto fail;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        sem_err_set(err, SEM_ENOMEM, "engine: cannot start the engine thread");
        io_stop(e);
        io_free(e);
        goto fail;
    }
    engine_call(e, warm_up, NULL);
    return e;
fail:
    agents_free_all(e);
    sem_mutex_destroy(&e->inbox);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->called);
    free_buffers(e);
    free(e);
    return NULL;
}

static void cancel_everything(engine *e, void *arg)
{
    (void)arg;
    for (gen_request *r = e->wait_head; r; r = r->next)
        atomic_store(&r->cancel, 1);
    for (uint32_t i = 0; i < e->n_running; i++)
        atomic_store(&e->running[i]->cancel, 1);
}

static void save_everything(engine *e, void *arg)
{
    (void)arg;
    agents_due_saves(e, 1);
}

static void check_quiet(engine *e, void *arg)
{
    sem_mutex_lock(&e->inbox);
    int inbox_empty = e->inbox_head == NULL;
    sem_mutex_unlock(&e->inbox);
    *(int *)arg = inbox_empty && e->n_running == 0 && e->wait_head == NULL;
}

/* Nothing running, waiting or submitted (asked of the engine thread). */
static int quiet(engine *e)
{
    int q = 0;
    engine_call(e, check_quiet, &q);
    return q;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Until the disk jobs are done and the engine thread has applied every
 * save's and load's outcome (their counts are final then). */
static void wait_io_settled(engine *e)
{
    for (;;) {
        sem_mutex_lock(&e->inbox);
        uint32_t unapplied = e->stats.io_in_flight;
        sem_mutex_unlock(&e->inbox);
        if (unapplied == 0 && io_busy(e) == 0)
            return;
        engine_wake(e);
        sleep_ms(5);
    }
}

uint32_t engine_save_idle(engine *e)
{
    uint64_t failures_before = engine_get_stats(e).save_failures;
    engine_call(e, save_everything, NULL);
    wait_io_settled(e);
    return (uint32_t)(engine_get_stats(e).save_failures - failures_before);
}

uint32_t engine_drain(engine *e, uint32_t timeout_ms)
{
    sem_mutex_lock(&e->inbox);
    e->draining = 1;
    e->stats.draining = 1;
    uint64_t failures_before = e->stats.save_failures;
    sem_mutex_unlock(&e->inbox);
    double deadline = deadline_now_ms() + timeout_ms;
    while (!quiet(e) && deadline_now_ms() < deadline)
        sleep_ms(5);
    if (!quiet(e)) {
        engine_call(e, cancel_everything, NULL);
        engine_wake(e);
        while (!quiet(e))
            sleep_ms(5);
    }
    /* Every agent with unsaved KV is written now, and waited for. */
    engine_call(e, save_everything, NULL);
    wait_io_settled(e);
    engine_call(e, save_everything, NULL); /* none should be left; be sure */
    wait_io_settled(e);
    engine_stats s = engine_get_stats(e);
    return (uint32_t)(s.save_failures - failures_before);
}

void engine_destroy(engine *e)
{
    if (!e)
        return;
    sem_mutex_lock(&e->inbox);
    e->stop = 1;
    pthread_cond_signal(&e->wake);
    sem_mutex_unlock(&e->inbox);
    pthread_join(e->thread, NULL);
    thread_mark_set(&e->owner);
    /* The engine thread is gone; this thread owns its state now. Queued
     * disk jobs run to the end; their results are applied, then whatever
     * still runs or waits is cancelled. */
    io_stop(e);
    drain_inbox(e);
    while (e->n_running)
        request_finish(e, e->running[0], GEN_CANCELLED, NULL);
    while (e->wait_head) {
        gen_request *r = e->wait_head;
        e->wait_head = r->next;
        request_finish(e, r, GEN_CANCELLED, NULL);
    }
    drain_inbox(e);
    agents_free_all(e);
    io_free(e);
    sem_mutex_destroy(&e->inbox);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->called);
    free_buffers(e);
    free(e);
}

engine_stats engine_get_stats(engine *e)
{
    sem_mutex_lock(&e->inbox);
    engine_stats s = e->stats;
    sem_mutex_unlock(&e->inbox);
    s.pool_used = block_pool_used(e->pool);
    return s;
}
