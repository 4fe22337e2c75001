/*
 * engine_share.c - KV blocks shared between sequences, on the engine thread:
 * prefix donors at admission, pins (of agents and of prompt prefixes), and
 * forks.
 *
 * Sharing domain. Blocks are shared only between sequences of one domain:
 * an agent's is the namespace of its key (the part before the first '.',
 * "" without one), an anonymous request's is its scope, and the HTTP layer
 * makes both the API key's namespace digest. So one key's prompts are
 * never reused by, nor observable from, another key.
 *
 * Donors. When a request is admitted, every other table of its domain
 * (hot agents, anonymous sequences, pinned prefixes) is a donor: the one
 * whose tokens start the prompt for longest gives the request's table its
 * blocks (block_table_share; nothing is copied), when that is longer than
 * what the request's own agent holds, and at least one block. Every token in a table has its KV at
 * admission (the engine appends a step's tokens and computes them within
 * the step), so a running sequence is a donor too.
 *
 * Pins. An agent pin (agent->pinned_until_ms) keeps the agent from LRU
 * reclaim; a prefix pin (a cache breakpoint, gen_params.pins) is a table of
 * its own sharing the first tokens of a request's prompt, kept until its
 * time ends, and a donor meanwhile. Pinned blocks together stay within the
 * pin budget (engine_opts.pin_budget_blocks). Expired pins are let go at
 * the next admission.
 *
 * Threads: everything here runs on the engine thread (ENGINE_THREAD_ONLY),
 * except as_fork's waiting, which runs on its caller's thread and reaches
 * the engine through engine_call and the generation port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/deadline.h"
#include "engine_internal.h"

/* ---------------------------------------------------------------- domains */

void share_domain_of_key(const char *key, char out[GEN_SCOPE_MAX + 1])
{
    const char *dot = strchr(key, '.');
    size_t n = dot ? (size_t)(dot - key) : 0;
    if (n > GEN_SCOPE_MAX)
        n = GEN_SCOPE_MAX;
    memcpy(out, key, n);
    out[n] = '\0';
}

const char *share_domain(const gen_request *r, char buf[GEN_SCOPE_MAX + 1])
{
    if (!r->agent_id[0])
        return r->scope;
    share_domain_of_key(r->agent_id, buf);
    return buf;
}

static int key_in_domain(const char *key, const char *domain)
{
    char d[GEN_SCOPE_MAX + 1];
    share_domain_of_key(key, d);
    return strcmp(d, domain) == 0;
}

/* ---------------------------------------------------------------- donors */

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* What t could give a prompt: its common prefix, at most cap, that t's
 * windows still hold. */
static uint32_t offer(const block_table *t, const int32_t *prompt, uint32_t cap)
{
    uint32_t n = block_table_n_tokens(t);
    if (n == 0)
        return 0;
    uint32_t lcp = common_prefix(block_table_tokens(t), n, prompt, cap);
    return block_table_reusable(t, lcp);
}

/*
 * A running donor's sequence writes its next token into its last block.
 * Shared, that block is copied by whichever writes first, so the donor's
 * reservation grows by the copy (engine_owed counts it): the request that
 * takes the share makes room for it at its admission, and if it is not
 * admitted it lets the block go (share_untie).
 */
static void consider(share_donor *best, const block_table *t, int running,
                     const block_table *self, const int32_t *prompt, uint32_t cap)
{
    if (!t || t == self)
        return;
    uint32_t keep = offer(t, prompt, cap);
    if (keep > best->keep)
        *best = (share_donor){.kv = t, .keep = keep, .running = running};
}

share_donor share_find(engine *e, const char *domain, const int32_t *prompt, uint32_t cap,
                       const block_table *self)
{
    ENGINE_THREAD_ONLY(e);
    share_donor best = {0};
    if (cap == 0)
        return best;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (a->kv && a->state != AGENT_LOADING && !a->evict_after_save &&
                key_in_domain(a->key, domain))
                consider(&best, a->kv, a->state == AGENT_RUNNING, self, prompt, cap);
    for (uint32_t i = 0; i < e->n_anon; i++)
        if (strcmp(e->anon[i].scope, domain) == 0)
            consider(&best, e->anon[i].kv, 0, self, prompt, cap);
    for (uint32_t i = 0; i < e->n_pins; i++)
        if (strcmp(e->pins[i].domain, domain) == 0)
            consider(&best, e->pins[i].kv, 0, self, prompt, cap);
    for (uint32_t i = 0; i < e->n_running; i++) {
        const gen_request *q = e->running[i];
        if (!q->ag && q->kv && strcmp(q->scope, domain) == 0)
            consider(&best, q->kv, 1, self, prompt, cap);
    }
    return best;
}

static int has_sliding(const cache_spec *spec)
{
    for (uint32_t l = 0; l < spec->n_layers; l++)
        if (spec->layers[l].kind == CACHE_ATTN_SLIDING)
            return 1;
    return 0;
}

/*
 * Requests that arrive together with a common start: the first admitted
 * computes it, and the others wait until it has, then share its blocks
 * instead of computing the same tokens side by side. Waiting costs them
 * nothing: prefills share one chunk budget per step, so computing the
 * start twice at once would take as long as once and then once more.
 */
int share_should_wait(engine *e, const gen_request *r)
{
    ENGINE_THREAD_ONLY(e);
    char buf[GEN_SCOPE_MAX + 1], qbuf[GEN_SCOPE_MAX + 1];
    const char *domain = share_domain(r, buf);
    uint32_t bt = e->spec->block_tokens, cap = r->n_prompt - (r->prefill_only ? 0 : 1);
    uint32_t coming = 0;
    for (uint32_t i = 0; i < e->n_running; i++) {
        const gen_request *q = e->running[i];
        if ((q->phase != PHASE_PREFILL && q->phase != PHASE_LOADING) ||
            strcmp(share_domain(q, qbuf), domain) != 0)
            continue;
        uint32_t lcp = common_prefix(q->prompt, q->n_prompt, r->prompt, cap);
        if (lcp > q->n_evaluated && lcp > coming)
            coming = lcp;
    }
    if (coming < bt || has_sliding(e->spec))
        return 0; /* (a sliding window would be released before it could be shared) */
    /* No scan of the other donors: one that held this start would have
     * given it to the running request at its admission, which would then
     * hold it already. Only r's own memory is checked. */
    const agent *a = r->agent_id[0] ? agents_find(e, r->agent_id) : NULL;
    return !(a && a->kv && offer(a->kv, r->prompt, cap) >= coming);
}

int share_take(engine *e, gen_request *r, block_table *t, uint32_t have, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    char buf[GEN_SCOPE_MAX + 1];
    uint32_t cap = r->prefill_only ? r->n_prompt : r->n_prompt - 1;
    share_donor d = share_find(e, share_domain(r, buf), r->prompt, cap, t);
    /* Less than a block saves less than it costs: the copy of its block on
     * every layer at the first append. */
    if (d.keep <= have || d.keep < e->spec->block_tokens)
        return 0;
    block_table_clear(t);
    if (block_table_share(t, d.kv, d.keep, err) != SEM_OK) {
        r->n_evaluated = 0; /* the table is empty: nothing reused */
        return -1;
    }
    r->n_evaluated = d.keep;
    r->tied = d.running && block_table_cow_blocks(t) > 0;
    sem_mutex_lock(&e->inbox);
    e->stats.hits_shared++;
    sem_mutex_unlock(&e->inbox);
    return 1;
}

void share_untie(engine *e, gen_request *r, block_table *t)
{
    ENGINE_THREAD_ONLY(e);
    if (!r->tied || !t)
        return;
    r->tied = 0;
    uint32_t whole = block_table_n_tokens(t) / e->spec->block_tokens * e->spec->block_tokens;
    sem_err err = {0};
    if (block_table_truncate(t, whole, &err) != SEM_OK) /* frees only: cannot fail on a
                                                            valid length */
        block_table_clear(t);
    if (r->n_evaluated > block_table_n_tokens(t))
        r->n_evaluated = block_table_n_tokens(t);
}

/* ---------------------------------------------------------------- pins */

static uint64_t agent_pinned_blocks(engine *e, int64_t now)
{
    uint64_t n = 0;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (a->kv && a->pinned_until_ms > now)
                n += block_table_total_blocks(a->kv);
    return n;
}

uint64_t share_pinned_blocks(engine *e)
{
    uint64_t n = agent_pinned_blocks(e, deadline_wall_ms());
    for (uint32_t i = 0; i < e->n_pins; i++)
        n += block_table_total_blocks(e->pins[i].kv);
    return n;
}

static uint64_t pin_budget(const engine *e)
{
    return e->o.pin_budget_blocks ? e->o.pin_budget_blocks : block_pool_total(e->pool) / 2;
}

void share_expire_pins(engine *e)
{
    ENGINE_THREAD_ONLY(e);
    int64_t now = deadline_wall_ms();
    for (uint32_t i = 0; i < e->n_pins;) {
        if (e->pins[i].until_ms > now) {
            i++;
            continue;
        }
        block_table_destroy(e->pins[i].kv);
        e->pins[i] = e->pins[--e->n_pins];
    }
}

int share_break_pin(engine *e)
{
    ENGINE_THREAD_ONLY(e);
    int64_t now = deadline_wall_ms(), first = INT64_MAX;
    agent *who = NULL;
    uint32_t pin = UINT32_MAX;
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = e->agents[b]; a; a = a->next)
            if (a->pinned_until_ms > now && a->pinned_until_ms < first && a->kv &&
                a->state == AGENT_IDLE && block_table_total_blocks(a->kv) > 0) {
                first = a->pinned_until_ms;
                who = a;
            }
    for (uint32_t i = 0; i < e->n_pins; i++)
        if (e->pins[i].until_ms < first) {
            first = e->pins[i].until_ms;
            pin = i;
            who = NULL;
        }
    if (!who && pin == UINT32_MAX)
        return 0;
    if (who) {
        engine_log(e, "warning", "agent '%s': its pin was broken: a request needs its blocks",
                   who->key);
        who->pinned_until_ms = 0;
    } else {
        engine_log(e, "warning", "a cache breakpoint's prefix of %u tokens was let go early: a "
                   "request needs its blocks", block_table_n_tokens(e->pins[pin].kv));
        block_table_destroy(e->pins[pin].kv);
        e->pins[pin] = e->pins[--e->n_pins];
    }
    sem_mutex_lock(&e->inbox);
    e->stats.pins_broken++;
    sem_mutex_unlock(&e->inbox);
    return 1;
}

/* The pin of exactly these tokens in domain, or NULL. */
static prefix_pin *pin_find(engine *e, const char *domain, const int32_t *tokens, uint32_t n)
{
    for (uint32_t i = 0; i < e->n_pins; i++) {
        prefix_pin *p = &e->pins[i];
        if (strcmp(p->domain, domain) == 0 && block_table_n_tokens(p->kv) == n &&
            memcmp(block_table_tokens(p->kv), tokens, n * sizeof *tokens) == 0)
            return p;
    }
    return NULL;
}

/* Pins the first n tokens of t for ttl_s; 0 when skipped (budget, room). */
static int pin_prefix(engine *e, const char *domain, const block_table *t, uint32_t n,
                      uint32_t ttl_s)
{
    int64_t until = deadline_wall_ms() + (int64_t)ttl_s * 1000;
    prefix_pin *p = pin_find(e, domain, block_table_tokens(t), n);
    if (p) {
        if (until > p->until_ms)
            p->until_ms = until;
        return 1;
    }
    if (n == 0 || block_table_reusable(t, n) != n || e->n_pins == SHARE_PINS_MAX)
        return 0;
    /* Blocks it holds that nobody else pins are at most all of them. */
    uint64_t blocks = cache_spec_total_blocks_for(e->spec, n);
    if (share_pinned_blocks(e) + blocks > pin_budget(e))
        return 0;
    sem_err err = {0};
    block_table *kv = block_table_create(e->pool, "pinned prefix", &err);
    if (!kv || block_table_share(kv, t, n, &err) != SEM_OK) {
        block_table_destroy(kv);
        return 0;
    }
    p = &e->pins[e->n_pins++];
    *p = (prefix_pin){.kv = kv, .until_ms = until};
    snprintf(p->domain, sizeof p->domain, "%s", domain);
    return 1;
}

/*
 * r is running: its next token goes into its last block, and a pin that
 * shared that block would force on r a copy no admission made room for.
 * So a pin takes whole blocks only; a breakpoint inside the last block
 * pins up to the block before it.
 */
void share_pin_breakpoints(engine *e, const gen_request *r)
{
    ENGINE_THREAD_ONLY(e);
    char buf[GEN_SCOPE_MAX + 1];
    const char *domain = share_domain(r, buf);
    uint32_t bt = e->spec->block_tokens, made = 0;
    for (uint32_t i = 0; i < r->n_pins; i++) {
        uint32_t n = r->pins[i].tokens;
        if (n > block_table_n_tokens(r->kv))
            n = block_table_n_tokens(r->kv);
        n = n / bt * bt;
        made += (uint32_t)pin_prefix(e, domain, r->kv, n, r->pins[i].ttl_s);
    }
    if (made < r->n_pins) {
        sem_mutex_lock(&e->inbox);
        e->stats.pins_skipped += r->n_pins - made;
        sem_mutex_unlock(&e->inbox);
    }
}

sem_status share_pin_agent(engine *e, agent *a, uint32_t ttl_s, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    if (ttl_s == 0) {
        a->pinned_until_ms = 0;
        return SEM_OK;
    }
    if (!a->kv || block_table_n_tokens(a->kv) == 0 || a->evict_after_save)
        return sem_err_set(err, SEM_ENOTFOUND, "agent '%s' has no KV in memory to pin", a->key);
    int64_t now = deadline_wall_ms();
    uint64_t others = share_pinned_blocks(e);
    if (a->pinned_until_ms > now)
        others -= block_table_total_blocks(a->kv);
    uint64_t mine = block_table_total_blocks(a->kv), budget = pin_budget(e);
    if (others + mine > budget)
        return sem_err_set(err, SEM_EPOOL,
                           "pinning agent '%s' would hold %llu pinned blocks, over the pin "
                           "budget of %llu (%llu pinned already)",
                           a->key, (unsigned long long)(others + mine),
                           (unsigned long long)budget, (unsigned long long)others);
    a->pinned_until_ms = now + (int64_t)ttl_s * 1000;
    return SEM_OK;
}

/* ---------------------------------------------------------------- forks */

sem_status share_fork(engine *e, const char *key, const char *into, uint32_t at,
                      agent **out, sem_err *err)
{
    ENGINE_THREAD_ONLY(e);
    *out = NULL;
    agent *p = agents_find(e, key);
    int hot = p && p->kv && block_table_n_tokens(p->kv) > 0 && !p->evict_after_save;
    if (!p || (!hot && !p->warm && p->state == AGENT_IDLE))
        return sem_err_set(err, SEM_ENOTFOUND, "agent '%s' not found", key);
    agent *c = agents_find(e, into);
    if (c && (c->warm || c->state != AGENT_IDLE || (c->kv && block_table_n_tokens(c->kv))))
        return sem_err_set(err, SEM_EREQUEST, "agent '%s' exists already; fork into a new id",
                           into);
    if (p->state == AGENT_LOADING || (!hot && p->state != AGENT_IDLE))
        return sem_err_set(err, SEM_EBUSY, "agent '%s' is being %s disk; retry", key,
                           p->state == AGENT_LOADING ? "read from" : "written to");
    if (!hot)
        return SEM_OK; /* warm only: the caller loads it (*out stays NULL) and retries */
    uint32_t n = block_table_n_tokens(p->kv);
    if (at == AGENT_FORK_ALL)
        at = n;
    if (at == 0 || at > n)
        return sem_err_set(err, SEM_EREQUEST, "at_tokens %u is outside agent '%s' (1..%u tokens)",
                           at, key, n);
    if (block_table_reusable(p->kv, at) != at)
        return sem_err_set(err, SEM_EREQUEST, "agent '%s' cannot fork at %u tokens: a "
                           "sliding-window layer no longer holds that window (its %u tokens "
                           "can)", key, at, n);
    if (!c && !(c = agents_get(e, into, err)))
        return err->status;
    if (!c->kv && !(c->kv = block_table_create(e->pool, c->key, err)))
        return err->status;
    if (block_table_share(c->kv, p->kv, at, err) != SEM_OK)
        return err->status;
    /* A running parent will write into its last block, which it now
     * shares: the copy must fit beside what running requests may take. */
    if (p->state == AGENT_RUNNING && !agents_make_room(e, 0)) {
        block_table_clear(c->kv);
        return sem_err_set(err, SEM_EPOOL, "agent '%s' is running and the pool has no room for "
                           "the copy its next token needs; fork when its request ends", key);
    }
    c->dirty = 1;
    c->last_step = e->step;
    c->last_use_ms = deadline_wall_ms();
    if (e->o.warm)
        c->save_due = deadline_now_ms() + e->o.save_delay_ms;
    sem_mutex_lock(&e->inbox);
    e->stats.forks++;
    sem_mutex_unlock(&e->inbox);
    *out = c;
    return SEM_OK;
}

/* ---------------------------------------------------------------- sharers */

/* The first global layer, which holds every block of a sequence. */
static uint32_t ref_layer(const cache_spec *spec)
{
    uint32_t l = 0;
    while (l + 1 < spec->n_layers && spec->layers[l].kind != CACHE_ATTN_GLOBAL)
        l++;
    return l;
}

/* Tokens of a on the leading blocks a and b both hold. */
static uint32_t common_blocks(const cache_spec *spec, const block_table *a, const block_table *b)
{
    uint32_t l = ref_layer(spec);
    if (block_table_first_block(a, l) != 0 || block_table_first_block(b, l) != 0)
        return 0;
    const uint32_t *x = block_table_blocks(a, l), *y = block_table_blocks(b, l);
    uint32_t n = block_table_n_blocks(a, l), m = block_table_n_blocks(b, l), i = 0;
    while (i < n && i < m && x[i] == y[i])
        i++;
    uint64_t tokens = (uint64_t)i * spec->block_tokens;
    return tokens < block_table_n_tokens(a) ? (uint32_t)tokens : block_table_n_tokens(a);
}

/* Inserts (key, tokens) into out, kept sorted by tokens, at most the max. */
static void add_sharer(agent_info *out, const char *key, uint32_t tokens)
{
    if (tokens == 0)
        return;
    uint32_t n = out->n_sharers, at = n;
    while (at > 0 && out->sharers[at - 1].tokens < tokens)
        at--;
    if (at == AGENT_SHARERS_MAX)
        return;
    if (n == AGENT_SHARERS_MAX)
        n--;
    memmove(out->sharers + at + 1, out->sharers + at, (n - at) * sizeof *out->sharers);
    snprintf(out->sharers[at].key, sizeof out->sharers[at].key, "%s", key);
    out->sharers[at].tokens = tokens;
    out->n_sharers = n + 1;
}

void share_list_sharers(engine *e, const agent *a, agent_info *out)
{
    ENGINE_THREAD_ONLY(e);
    out->n_sharers = 0;
    if (!a->kv || block_table_n_tokens(a->kv) == 0 || block_table_shared_tokens(a->kv) == 0)
        return;
    char domain[GEN_SCOPE_MAX + 1];
    share_domain_of_key(a->key, domain);
    for (uint32_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *o = e->agents[b]; o; o = o->next)
            if (o != a && o->kv && o->state != AGENT_LOADING && key_in_domain(o->key, domain))
                add_sharer(out, o->key, common_blocks(e->spec, a->kv, o->kv));
    for (uint32_t i = 0; i < e->n_anon; i++)
        if (strcmp(e->anon[i].scope, domain) == 0)
            add_sharer(out, "", common_blocks(e->spec, a->kv, e->anon[i].kv));
    for (uint32_t i = 0; i < e->n_pins; i++)
        if (strcmp(e->pins[i].domain, domain) == 0)
            add_sharer(out, "*", common_blocks(e->spec, a->kv, e->pins[i].kv));
}
