/*
 * engine_agents.c - agents and anonymous sequences on the engine thread:
 * lookup, reclaiming blocks, write-behind scheduling, the results of disk
 * I/O, and the agent store port.
 *
 * An agent's state says who may touch its table:
 *
 *   IDLE     the engine thread (admission, reclaiming)
 *   RUNNING  the engine thread, for the agent's one admitted request
 *   SAVING   the I/O thread reads it; nobody writes it
 *   LOADING  the I/O thread is building a new table; the old one is empty
 *
 * A removed agent leaves the lookup table at once (a new request with its
 * key starts a new agent) and is freed when its current operation ends.
 */
#include <stdio.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "domain/agent_id.h"
#include "base/deadline.h"
#include "engine_internal.h"
#include "prompt_align.h"

/* ---------------------------------------------------------------- lookup */

static uint32_t bucket_of(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % AGENT_BUCKETS;
}

agent *agents_find(engine *e, const char *key)
{
    for (agent *a = e->agents[bucket_of(key)]; a; a = a->next)
        if (strcmp(a->key, key) == 0)
            return a;
    return NULL;
}

agent *agents_get(engine *e, const char *key, sem_err *err)
{
    agent *a = agents_find(e, key);
    if (a)
        return a;
    a = calloc(1, sizeof *a);
    engine_msg *done = calloc(1, sizeof *done);
    if (!a || !done) {
        free(a);
        free(done);
        sem_err_set(err, SEM_ENOMEM, "engine: out of memory for agent '%s'", key);
        return NULL;
    }
    a->io_done = done;
    snprintf(a->key, sizeof a->key, "%s", key);
    uint32_t b = bucket_of(key);
    a->next = e->agents[b];
    e->agents[b] = a;
    e->n_agents++;
    return a;
}

static void agent_free(agent *a)
{
    free(a->io_done);
    free(a);
}

static void unlink_agent(engine *e, agent *a)
{
    for (agent **p = &e->agents[bucket_of(a->key)]; *p; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            e->n_agents--;
            return;
        }
    }
}

static void drop_hot(engine *e, agent *a)
{
    if (a->kv && block_table_total_blocks(a->kv) > 0) {
        sem_mutex_lock(&e->inbox);
        e->stats.evictions++;
        sem_mutex_unlock(&e->inbox);
    }
    block_table_destroy(a->kv);
    a->kv = NULL;
    a->dirty = 0;
    a->evict_after_save = 0;
}

/* Frees a removed agent now that no operation holds it. */
static void destroy_doomed(engine *e, agent *a)
{
    drop_hot(e, a);
    if (e->o.warm)
        io_push(e, IO_REMOVE, NULL, a->key, 0);
    agent_free(a);
}

void agents_load_warm(engine *e)
{
    if (!e->o.warm)
        return;
    warm_info *list = NULL;
    size_t n = 0;
    sem_err err = {0};
    if (e->o.warm->ops->list(e->o.warm->self, "", &list, &n, &err) != SEM_OK) {
        engine_log(e, "warning", "cannot list the agents on disk: %s", sem_err_text(&err));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        agent *a = agents_get(e, list[i].key, &err);
        if (!a)
            break;
        a->warm = 1;
        a->warm_tokens = list[i].tokens;
        a->warm_bytes = list[i].bytes;
        a->last_use_ms = list[i].last_use_ms;
        a->hits = list[i].hits;
        a->tokens_saved = list[i].tokens_saved;
    }
    free(list);
}

void agents_free_all(engine *e)
{
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++) {
        agent *a = e->agents[b];
        while (a) {
            agent *next = a->next;
            block_table_destroy(a->kv);
            agent_free(a);
            a = next;
        }
        e->agents[b] = NULL;
    }
    e->n_agents = 0;
    for (uint32_t i = 0; i < e->n_anon; i++)
        block_table_destroy(e->anon[i].kv);
    e->n_anon = 0;
    for (uint32_t i = 0; i < e->n_pins; i++)
        block_table_destroy(e->pins[i].kv);
    e->n_pins = 0;
}

/* ---------------------------------------------------------------- anonymous */

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

static const char *align_piece(void *user, int32_t token, size_t *len)
{
    const engine *e = user;
    return e->mp.ops->piece(e->mp.self, token, len);
}

static int align_special(void *user, int32_t token)
{
    const engine *e = user;
    return (e->mp.ops->is_control && e->mp.ops->is_control(e->mp.self, token)) ||
           e->mp.ops->is_eog(e->mp.self, token);
}

/* The prompt rewritten over the tokens t holds (prompt_align.h); returns
 * the common prefix. The prompt may grow into the room of its output. */
static uint32_t align_prompt(engine *e, gen_request *r, const block_table *t)
{
    prompt_align_vocab v = {align_piece, align_special, e,
                            e->mp.ops->spaces_marked && e->mp.ops->spaces_marked(e->mp.self)};
    uint32_t cap = r->limit - 1; /* at least one generated token */
    if (r->prefill_only || r->n_prompt > cap)
        return common_prefix(block_table_tokens(t), block_table_n_tokens(t), r->prompt,
                             r->n_prompt);
    return prompt_align(block_table_tokens(t), block_table_n_tokens(t), r->prompt, &r->n_prompt,
                        cap, &v);
}

sem_status agents_reuse_prefix(gen_request *r, block_table *t, sem_err *err)
{
    uint32_t lcp = align_prompt(r->e, r, t);
    if (lcp >= r->n_prompt && !r->prefill_only)
        lcp = r->n_prompt - 1; /* the last prompt token is evaluated for its logits */
    uint32_t keep = block_table_reusable(t, lcp);
    if (block_table_truncate(t, keep, err) != SEM_OK)
        return SEM_EINTERNAL;
    r->n_evaluated = keep;
    return SEM_OK;
}

block_table *anon_take(engine *e, const gen_request *r, sem_err *err)
{
    const int32_t *prompt = r->prompt;
    uint32_t n = r->n_prompt, best = UINT32_MAX, best_keep = 0;
    for (uint32_t i = 0; i < e->n_anon; i++) {
        if (strcmp(e->anon[i].scope, r->scope) != 0)
            continue;
        block_table *t = e->anon[i].kv;
        uint32_t lcp = common_prefix(block_table_tokens(t), block_table_n_tokens(t), prompt, n);
        if (lcp >= n)
            lcp = n - 1; /* the last prompt token is evaluated for its logits */
        uint32_t keep = block_table_reusable(t, lcp);
        if (keep > best_keep) {
            best = i;
            best_keep = keep;
        }
    }
    if (best == UINT32_MAX)
        return block_table_create(e->pool, "anonymous", err);
    block_table *t = e->anon[best].kv;
    e->anon[best] = e->anon[--e->n_anon];
    if (block_table_truncate(t, best_keep, err) != SEM_OK) {
        block_table_destroy(t);
        return NULL;
    }
    return t;
}

void anon_put(engine *e, block_table *t, const char *scope)
{
    if (e->o.anon_keep == 0 || block_table_n_tokens(t) == 0) {
        block_table_destroy(t);
        return;
    }
    if (e->n_anon == e->o.anon_keep) {
        uint32_t lru = 0;
        for (uint32_t i = 1; i < e->n_anon; i++)
            if (e->anon[i].last_step < e->anon[lru].last_step)
                lru = i;
        block_table_destroy(e->anon[lru].kv);
        e->anon[lru] = e->anon[--e->n_anon];
    }
    anon_seq *a = &e->anon[e->n_anon++];
    *a = (anon_seq){.kv = t, .last_step = e->step};
    snprintf(a->scope, sizeof a->scope, "%s", scope);
}

/* ---------------------------------------------------------------- reclaiming */

uint64_t agents_outstanding(const engine *e)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < e->n_running; i++)
        sum += engine_owed(e->running[i], e->running[i]->kv);
    return sum;
}

static int room_for(engine *e, uint64_t need)
{
    uint64_t free_blocks = block_pool_free_count(e->pool), owed = agents_outstanding(e);
    return free_blocks >= owed && free_blocks - owed >= need;
}

void agent_set_state(agent *a, agent_state from, agent_state to)
{
    static const unsigned char allowed[4][4] = { /* [from][to], the diagram */
        [AGENT_IDLE] = {[AGENT_RUNNING] = 1, [AGENT_SAVING] = 1},
        [AGENT_RUNNING] = {[AGENT_IDLE] = 1, [AGENT_LOADING] = 1},
        [AGENT_SAVING] = {[AGENT_IDLE] = 1},
        [AGENT_LOADING] = {[AGENT_RUNNING] = 1},
    };
    assert(a->state == from);
    assert(allowed[from][to]);
    (void)allowed;
    a->state = to;
}

static void dispatch_save(engine *e, agent *a)
{
    ENGINE_THREAD_ONLY(e);
    agent_set_state(a, AGENT_IDLE, AGENT_SAVING);
    a->save_due = 0;
    atomic_store_explicit(&a->save_stop, 0, memory_order_relaxed);
    io_push(e, IO_SAVE, a, a->key, 0);
}

/* The idle, unpinned agent holding blocks that was used least recently,
 * or NULL. */
static agent *lru_idle(engine *e, int want_clean)
{
    agent *best = NULL;
    int64_t now = deadline_wall_ms();
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++) {
        for (agent *a = e->agents[b]; a; a = a->next) {
            if (a->state != AGENT_IDLE || !a->kv || block_table_total_blocks(a->kv) == 0 ||
                a->pinned_until_ms > now)
                continue;
            int clean = !a->dirty || !e->o.warm;
            if (clean != want_clean)
                continue;
            if (!best || a->last_step < best->last_step)
                best = a;
        }
    }
    return best;
}

/* Whether a save or load is under way (its outcome may free blocks). */
static int io_pending(engine *e)
{
    sem_mutex_lock(&e->inbox);
    uint32_t n = e->stats.io_in_flight;
    sem_mutex_unlock(&e->inbox);
    return n > 0;
}

/*
 * Frees idle sequences until `need` blocks are free beyond what running
 * requests may still take. Anonymous sequences go first, then agents whose
 * KV is safe on disk; agents with unsaved KV are saved first (their blocks
 * are freed when the save completes), so the caller may have to wait.
 * Pinned agents and prefixes are kept; only when nothing runs, nothing is
 * being written and the request still does not fit are pins broken (the
 * one ending first first), so a pin can delay a request but never starve
 * it.
 */
int agents_make_room(engine *e, uint64_t need)
{
    ENGINE_THREAD_ONLY(e);
    while (!room_for(e, need)) {
        if (e->n_anon > 0) {
            uint32_t lru = 0;
            for (uint32_t i = 1; i < e->n_anon; i++)
                if (e->anon[i].last_step < e->anon[lru].last_step)
                    lru = i;
            block_table_destroy(e->anon[lru].kv);
            e->anon[lru] = e->anon[--e->n_anon];
            sem_mutex_lock(&e->inbox);
            e->stats.evictions++;
            sem_mutex_unlock(&e->inbox);
            continue;
        }
        agent *a = lru_idle(e, 1);
        if (a) {
            drop_hot(e, a);
            continue;
        }
        /* Only agents with unsaved KV are left: save them, then free. */
        a = lru_idle(e, 0);
        if (!a) {
            if (e->n_running == 0 && !io_pending(e) && share_break_pin(e))
                continue;
            return 0;
        }
        a->evict_after_save = 1;
        dispatch_save(e, a);
    }
    return 1;
}

/* ---------------------------------------------------------------- write behind */

void agents_request_done(engine *e, agent *a, uint32_t cached)
{
    ENGINE_THREAD_ONLY(e);
    agent_set_state(a, AGENT_RUNNING, AGENT_IDLE);
    a->last_step = e->step;
    a->last_use_ms = deadline_wall_ms();
    if (cached > 0) {
        a->hits++;
        a->tokens_saved += cached;
        if (e->o.warm && a->warm)
            io_push(e, IO_TOUCH, NULL, a->key, cached);
    }
    if (a->doomed) {
        destroy_doomed(e, a);
        return;
    }
    if (a->kv && block_table_n_tokens(a->kv) > 0) {
        a->dirty = 1;
        if (e->o.warm)
            a->save_due = deadline_now_ms() + e->o.save_delay_ms;
    }
}

void agents_due_saves(engine *e, int all)
{
    if (!e->o.warm)
        return;
    double now = deadline_now_ms();
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (a->state == AGENT_IDLE && a->dirty && a->kv &&
                ((a->save_due && a->save_due <= now) || all))
                dispatch_save(e, a);
}

double agents_next_due(engine *e)
{
    double next = 0;
    if (!e->o.warm)
        return 0;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (a->state == AGENT_IDLE && a->dirty && a->save_due &&
                (next == 0 || a->save_due < next))
                next = a->save_due;
    return next;
}

/* ---------------------------------------------------------------- I/O results */

static gen_request *loading_request(engine *e, agent *a)
{
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i]->ag == a && e->running[i]->phase == PHASE_LOADING)
            return e->running[i];
    return NULL;
}

static void save_done(engine *e, agent *a, engine_msg *m)
{
    ENGINE_THREAD_ONLY(e);
    agent_set_state(a, AGENT_SAVING, AGENT_IDLE);
    if (m->status == SEM_ECANCELLED) {
        /* A request took the agent back: it stays hot and dirty, and is
         * saved again after that request. */
        a->evict_after_save = 0;
        sem_mutex_lock(&e->inbox);
        e->stats.saves_stopped++;
        sem_mutex_unlock(&e->inbox);
        if (a->doomed)
            destroy_doomed(e, a);
        return;
    }
    /* Logged before counted: whoever sees the count can find the line. */
    if (m->status == SEM_OK) {
        a->dirty = 0;
        a->warm = 1;
        a->warm_tokens = a->kv ? block_table_n_tokens(a->kv) : 0;
        warm_info wi;
        if (e->o.warm->ops->get(e->o.warm->self, a->key, &wi, NULL) == SEM_OK)
            a->warm_bytes = wi.bytes;
    } else {
        engine_log(e, "error", "agent '%s': saving its KV failed; the copy in memory is kept: %s",
                   a->key, sem_err_text(&m->err));
    }
    sem_mutex_lock(&e->inbox);
    if (m->status == SEM_OK)
        e->stats.saves++;
    else
        e->stats.save_failures++;
    sem_mutex_unlock(&e->inbox);
    if (a->doomed) {
        destroy_doomed(e, a);
        return;
    }
    if (a->evict_after_save) /* asked for room: free it, saved or not */
        drop_hot(e, a);
}

/* The load finished: the waiting request continues with what was read. */
static void load_done(engine *e, agent *a, engine_msg *m)
{
    ENGINE_THREAD_ONLY(e);
    gen_request *r = loading_request(e, a);
    sem_err err = {0};
    int prefix = m->io == IO_LOAD_PREFIX;
    if (m->status == SEM_OK) {
        block_table_destroy(a->kv);
        a->kv = m->loaded;
        a->dirty = prefix; /* shared chunks only: the agent has no file of its own yet */
        a->warm |= !prefix; /* its own file (found in a tier this node did not list) */
    } else if (prefix) {
        if (m->status != SEM_ENOTFOUND)
            engine_log(e, "warning", "agent '%s': shared chunks on disk were not used: %s",
                       a->key, sem_err_text(&m->err));
        if (!a->kv)
            a->kv = block_table_create(e->pool, a->key, &err);
    } else {
        if (m->status != SEM_ENOTFOUND)
            engine_log(e, "warning", "agent '%s': its cache file was not used: %s", a->key,
                       sem_err_text(&m->err));
        /* Only a missing or bad (quarantined) file is gone; one that could
         * not be read for lack of memory or an I/O error is still there. */
        if (m->status == SEM_ENOTFOUND || m->status == SEM_ECORRUPT ||
            m->status == SEM_EINCOMPAT)
            a->warm = 0;
        if (!a->kv)
            a->kv = block_table_create(e->pool, a->key, &err);
    }
    agent_set_state(a, AGENT_LOADING, AGENT_RUNNING);
    if (!r) { /* its request failed or was removed while the load ran */
        agent_set_state(a, AGENT_RUNNING, AGENT_IDLE);
        if (a->doomed)
            destroy_doomed(e, a);
        return;
    }
    if (!a->kv) {
        request_fail(e, r, err.status, &err);
        return;
    }
    if (agents_reuse_prefix(r, a->kv, &err) != SEM_OK) {
        request_fail(e, r, SEM_EINTERNAL, &err);
        return;
    }
    uint32_t keep = r->n_evaluated;
    r->kv = a->kv;
    r->phase = PHASE_PREFILL;
    pthread_mutex_lock(&r->lock);
    r->result.cached_tokens = keep;
    r->result.prompt_tokens = r->n_prompt; /* as aligned */
    pthread_mutex_unlock(&r->lock);
    sem_mutex_lock(&e->inbox);
    if (keep > 0)
        e->stats.hits_warm++;
    else
        e->stats.misses++;
    if (keep > 0 && prefix)
        e->stats.hits_shared++;
    if (m->status != SEM_OK && m->status != SEM_ENOTFOUND)
        e->stats.load_failures++;
    sem_mutex_unlock(&e->inbox);
}

void agents_io_done(engine *e, engine_msg *m)
{
    if (m->io == IO_SAVE)
        save_done(e, m->ag, m);
    else
        load_done(e, m->ag, m);
    sem_mutex_lock(&e->inbox); /* settled: its blocks are where they belong */
    e->stats.io_in_flight--;
    sem_mutex_unlock(&e->inbox);
}

void agents_publish(engine *e, engine_stats *s)
{
    uint32_t hot = 0, warm = 0;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++) {
        for (agent *a = e->agents[b]; a; a = a->next) {
            hot += a->kv && block_table_total_blocks(a->kv) > 0;
            warm += a->warm;
        }
    }
    s->agents = e->n_agents;
    s->agents_hot = hot;
    s->agents_warm = warm;
    s->pool_shared = block_pool_shared_count(e->pool);
    s->pool_pinned = share_pinned_blocks(e);
    s->prefix_pins = e->n_pins;
}

/* ---------------------------------------------------------------- agent store port */

typedef struct call_args {
    const char *key;
    const char *into; /* fork */
    uint32_t at;      /* fork */
    uint32_t ttl_s;   /* pin */
    int need_load;    /* fork: the parent is on disk only */
    agent_info *out;  /* get, fork, pin */
    agent_info *list; /* list: [cap] */
    size_t n, cap;
    const char *prefix;
    sem_status st;
    sem_err err;
} call_args;

static void fill_info(const agent *a, agent_info *o, size_t block_bytes)
{
    memset(o, 0, sizeof *o);
    snprintf(o->key, sizeof o->key, "%s", a->key);
    int hot = a->kv && block_table_total_blocks(a->kv) > 0 && !a->evict_after_save;
    o->tier = hot ? AGENT_TIER_HOT : AGENT_TIER_WARM;
    o->busy = a->state == AGENT_RUNNING || a->state == AGENT_LOADING;
    o->tokens = hot ? block_table_n_tokens(a->kv) : a->warm_tokens;
    o->hot_bytes = hot ? (uint64_t)block_table_total_blocks(a->kv) * block_bytes : 0;
    o->disk_bytes = a->warm ? a->warm_bytes : 0;
    o->last_use_ms = a->last_use_ms;
    o->hits = a->hits;
    o->tokens_saved = a->tokens_saved;
    o->shared_tokens = hot ? block_table_shared_tokens(a->kv) : 0;
    o->pinned_until_ms = a->pinned_until_ms > deadline_wall_ms() ? a->pinned_until_ms : 0;
}

static int known(const agent *a) { return (a->kv && block_table_n_tokens(a->kv) > 0) || a->warm ||
                                          a->state != AGENT_IDLE; }

static void call_list(engine *e, void *arg)
{
    ENGINE_THREAD_ONLY(e);
    call_args *c = arg;
    size_t plen = strlen(c->prefix);
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++) {
        for (agent *a = e->agents[b]; a; a = a->next) {
            if (!known(a) || strncmp(a->key, c->prefix, plen) != 0)
                continue;
            if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 64;
                agent_info *l = realloc(c->list, cap * sizeof *l);
                if (!l) {
                    c->st = sem_err_set(&c->err, SEM_ENOMEM, "out of memory listing agents");
                    return;
                }
                c->list = l;
                c->cap = cap;
            }
            fill_info(a, &c->list[c->n++], block_pool_block_bytes(e->pool));
        }
    }
}

static int by_recent_use(const void *x, const void *y)
{
    const agent_info *a = x, *b = y;
    if (a->last_use_ms != b->last_use_ms)
        return a->last_use_ms < b->last_use_ms ? 1 : -1;
    return strcmp(a->key, b->key);
}

/* Runs fn on the engine thread with c; its status, and its error in err
 * (may be NULL). */
static sem_status on_engine(void *self, void (*fn)(engine *e, void *arg), call_args *c,
                            sem_err *err)
{
    engine_call(self, fn, c);
    if (c->st != SEM_OK && err)
        *err = c->err;
    return c->st;
}

static sem_status as_list(void *self, const char *prefix, agent_info **out, size_t *n,
                          sem_err *err)
{
    call_args c = {.prefix = prefix ? prefix : ""};
    if (on_engine(self, call_list, &c, err) != SEM_OK) {
        free(c.list);
        return c.st;
    }
    if (c.n > 1) /* qsort wants a list, even of nothing */
        qsort(c.list, c.n, sizeof *c.list, by_recent_use);
    *out = c.list ? c.list : calloc(1, sizeof **out);
    *n = c.n;
    return *out ? SEM_OK : sem_err_set(err, SEM_ENOMEM, "out of memory");
}

static void call_get(engine *e, void *arg)
{
    call_args *c = arg;
    agent *a = agents_find(e, c->key);
    if (!a || !known(a)) {
        c->st = sem_err_set(&c->err, SEM_ENOTFOUND, "agent '%s' not found", c->key);
        return;
    }
    fill_info(a, c->out, block_pool_block_bytes(e->pool));
    if (c->out->tier == AGENT_TIER_HOT)
        share_list_sharers(e, a, c->out);
}

/* An agent this node does not know, as a remote tier under the warm store
 * sees it; from the calling thread, which may wait for I/O. */
static sem_status warm_get(engine *e, const char *key, agent_info *out, sem_err *err)
{
    /* This node's disk is the engine's to know (listed at start, tracked
     * since): only a tier under it can hold an agent the engine does not. */
    warm_info wi;
    if (!e->o.warm || io_removing(e, key) ||
        e->o.warm->ops->get(e->o.warm->self, key, &wi, NULL) != SEM_OK || !wi.remote)
        return sem_err_set(err, SEM_ENOTFOUND, "agent '%s' not found", key);
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", key);
    out->tier = wi.remote ? AGENT_TIER_REMOTE : AGENT_TIER_WARM;
    out->tokens = wi.tokens;
    out->disk_bytes = wi.remote ? 0 : wi.bytes;
    out->last_use_ms = wi.last_use_ms;
    out->hits = wi.hits;
    out->tokens_saved = wi.tokens_saved;
    return SEM_OK;
}

static sem_status as_get(void *self, const char *key, agent_info *out, sem_err *err)
{
    call_args c = {.key = key, .out = out};
    sem_status st = on_engine(self, call_get, &c, err);
    return st == SEM_ENOTFOUND ? warm_get(self, key, out, err) : st;
}

static void call_remove(engine *e, void *arg)
{
    ENGINE_THREAD_ONLY(e);
    call_args *c = arg;
    agent *a = agents_find(e, c->key);
    if (!a || !known(a)) {
        c->st = sem_err_set(&c->err, SEM_ENOTFOUND, "agent '%s' not found", c->key);
        if (a && a->state == AGENT_IDLE) {
            unlink_agent(e, a);
            agent_free(a);
        }
        return;
    }
    /* Its queued requests are cancelled; a running one finishes cancelled. */
    for (gen_request *r = e->wait_head; r; r = r->next)
        if (strcmp(r->agent_id, c->key) == 0)
            atomic_store(&r->cancel, 1);
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i]->ag == a)
            atomic_store(&e->running[i]->cancel, 1);
    unlink_agent(e, a);
    if (a->state == AGENT_IDLE) {
        destroy_doomed(e, a);
        return;
    }
    a->doomed = 1;
    if (a->state == AGENT_SAVING) /* no use finishing a file that will be removed */
        atomic_store_explicit(&a->save_stop, 1, memory_order_relaxed);
}

static sem_status as_remove(void *self, const char *key, sem_err *err)
{
    call_args c = {.key = key};
    return on_engine(self, call_remove, &c, err);
}

static void call_evict(engine *e, void *arg)
{
    ENGINE_THREAD_ONLY(e);
    call_args *c = arg;
    agent *a = agents_find(e, c->key);
    if (!a || !a->kv || block_table_total_blocks(a->kv) == 0 || a->evict_after_save) {
        c->st = sem_err_set(&c->err, SEM_ENOTFOUND, "agent '%s' has no KV in memory", c->key);
    } else if (a->state == AGENT_SAVING) {
        a->evict_after_save = 1; /* its write is under way: free it when done */
    } else if (a->state != AGENT_IDLE) {
        c->st = sem_err_set(&c->err, SEM_EBUSY, "agent '%s' is busy", c->key);
    } else if (a->dirty && e->o.warm) {
        a->evict_after_save = 1;
        dispatch_save(e, a);
    } else {
        drop_hot(e, a);
    }
}

static sem_status as_evict(void *self, const char *key, sem_err *err)
{
    call_args c = {.key = key};
    return on_engine(self, call_evict, &c, err);
}

static void call_fork(engine *e, void *arg)
{
    call_args *c = arg;
    agent *child = NULL;
    c->st = share_fork(e, c->key, c->into, c->at, &child, &c->err);
    if (c->st == SEM_OK && !child)
        c->need_load = 1;
    else if (c->st == SEM_OK && c->out)
        fill_info(child, c->out, block_pool_block_bytes(e->pool));
}

/* Brings a warm-only agent's memory into the pool the way a request
 * would: a prefill-only request of its own tokens, all of them reused. */
static sem_status load_agent(engine *e, const char *key, sem_err *err)
{
    warm_store *w = e->o.warm;
    int32_t *tokens = NULL;
    uint32_t n = 0;
    if (!w || w->ops->peek(w->self, key, &tokens, &n, err) != SEM_OK)
        return sem_err_set(err, SEM_ENOTFOUND, "agent '%s' not found", key);
    generation_port gp = engine_generation_port(e);
    gen_params p = {.agent_id = key, .prompt = tokens, .n_prompt = n, .prefill_only = 1};
    p.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    sem_status st = gp.ops->submit(gp.self, &p, &r, err);
    free(tokens);
    if (st != SEM_OK)
        return st;
    char buf[64];
    size_t got;
    while (!gp.ops->read(gp.self, r, buf, sizeof buf, &got, -1))
        ;
    gen_result res = gp.ops->result(gp.self, r);
    gp.ops->release(gp.self, r);
    if (res.finish == GEN_ERROR) {
        *err = res.error;
        return res.error.status;
    }
    return res.finish == GEN_STOP ? SEM_OK
                                  : sem_err_set(err, SEM_ECANCELLED, "loading agent '%s' was "
                                                "cancelled", key);
}

static sem_status as_fork(void *self, const char *key, const char *into, uint32_t at,
                          agent_info *out, sem_err *err)
{
    sem_status st = agent_key_validate(into, err);
    if (st != SEM_OK)
        return sem_err_set(err, SEM_EREQUEST, "fork into: %s", sem_err_text(err));
    for (int attempt = 0; attempt < 2; attempt++) {
        call_args c = {.key = key, .into = into, .at = at, .out = out};
        if (on_engine(self, call_fork, &c, err) != SEM_OK || !c.need_load)
            return c.st;
        if (load_agent(self, key, err) != SEM_OK)
            return err->status;
    }
    return sem_err_set(err, SEM_EBUSY, "agent '%s' left memory again while it was forked; retry",
                       key);
}

static void call_pin(engine *e, void *arg)
{
    call_args *c = arg;
    agent *a = agents_find(e, c->key);
    if (!a || !known(a)) {
        c->st = sem_err_set(&c->err, SEM_ENOTFOUND, "agent '%s' not found", c->key);
        return;
    }
    c->st = share_pin_agent(e, a, c->ttl_s, &c->err);
    if (c->st == SEM_OK && c->out)
        fill_info(a, c->out, block_pool_block_bytes(e->pool));
}

static sem_status as_pin(void *self, const char *key, uint32_t ttl_s, agent_info *out,
                         sem_err *err)
{
    call_args c = {.key = key, .ttl_s = ttl_s, .out = out};
    return on_engine(self, call_pin, &c, err);
}

static const agent_store_ops engine_store_ops = {
    .list = as_list,
    .get = as_get,
    .remove = as_remove,
    .evict = as_evict,
    .fork = as_fork,
    .pin = as_pin,
};

agent_store engine_agent_store(engine *e) { return (agent_store){&engine_store_ops, e}; }
