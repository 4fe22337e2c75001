/*
 * grammar.c - the state of one output against a grammar: a set of stacks
 * of grammar positions (grammar_internal.h), advanced one byte at a time.
 *
 * Advancing by byte b: every stack whose top element takes b loses that
 * top and gets the element after it, then is expanded: while the top is a
 * rule reference, it is replaced by each of the rule's alternatives (with
 * the position after the reference pushed below as the continuation; a
 * reference that ends its alternative pushes nothing, so x* loops in
 * constant depth). Expansion ends at byte elements or an empty stack.
 * Left recursion was refused at parse time, so expansion terminates; the
 * limits GRAMMAR_MAX_STACKS, GRAMMAR_MAX_DEPTH and GRAMMAR_MAX_EXPANSIONS
 * (and a bound on the expansion's own recursion) make a grammar that would
 * still blow up reject the byte instead.
 *
 * Memory: the stack sets grow as needed and are kept, so once a request
 * has warmed up accepting and checking tokens allocate nothing.
 *
 * Threads: a state is used by one thread at a time (see grammar.h).
 */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

#define EXPAND_RECURSION_MAX 4096 /* nested expansions of one stack */

/* ---- Stack sets ----------------------------------------------------- */

void gstack_set_free(gstack_set *s)
{
    free(s->pos);
    free(s->off);
    free(s->len);
    free(s->hash);
    free(s->slot);
    free(s->slot_gen);
    memset(s, 0, sizeof *s);
}

static int grow_stacks(gstack_set *s, uint32_t cap)
{
    uint32_t *off = realloc(s->off, cap * sizeof *off);
    if (!off)
        return -1;
    s->off = off;
    uint32_t *len = realloc(s->len, cap * sizeof *len);
    if (!len)
        return -1;
    s->len = len;
    uint32_t *hash = realloc(s->hash, cap * sizeof *hash);
    if (!hash)
        return -1;
    s->hash = hash;
    s->cap = cap;
    return 0;
}

static int grow_positions(gstack_set *s, uint32_t cap)
{
    uint32_t *pos = realloc(s->pos, (size_t)cap * sizeof *pos);
    if (!pos)
        return -1;
    s->pos = pos;
    s->cap_pos = cap;
    return 0;
}

/* The dedup table, rebuilt at twice the stacks it may hold. */
static int grow_slots(gstack_set *s, uint32_t cap)
{
    uint32_t *slot = malloc(cap * sizeof *slot);
    uint32_t *gen = calloc(cap, sizeof *gen);
    if (!slot || !gen) {
        free(slot);
        free(gen);
        return -1;
    }
    free(s->slot);
    free(s->slot_gen);
    s->slot = slot;
    s->slot_gen = gen;
    s->slot_cap = cap;
    s->gen = 1;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t h = s->hash[i] & (cap - 1);
        while (s->slot_gen[h] == s->gen)
            h = (h + 1) & (cap - 1);
        s->slot_gen[h] = s->gen;
        s->slot[h] = i;
    }
    return 0;
}

sem_status gstack_set_reserve(gstack_set *s, uint32_t stacks, uint32_t positions)
{
    if ((stacks > s->cap && grow_stacks(s, stacks) < 0) ||
        (positions > s->cap_pos && grow_positions(s, positions) < 0))
        return SEM_ENOMEM;
    uint32_t slots = 16;
    while (slots < 2 * stacks)
        slots *= 2;
    if (slots > s->slot_cap && grow_slots(s, slots) < 0)
        return SEM_ENOMEM;
    return SEM_OK;
}

static void set_reset(gstack_set *s)
{
    s->sig = 0;
    s->expansions = 0;
    s->n = 0;
    s->n_pos = 0;
    s->has_empty = 0;
    s->over = 0;
    if (++s->gen == 0) { /* wrapped: old marks could look current */
        if (s->slot_gen)
            memset(s->slot_gen, 0, s->slot_cap * sizeof *s->slot_gen);
        s->gen = 1;
    }
}

static uint32_t hash_stack(const uint32_t *st, uint32_t len)
{
    uint32_t h = 2166136261u ^ len;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ st[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* Whether s holds st[0..len) (h its hash). */
static int set_has(const gstack_set *s, const uint32_t *st, uint32_t len, uint32_t h)
{
    if (!s->slot_cap)
        return 0;
    for (uint32_t k = h & (s->slot_cap - 1); s->slot_gen[k] == s->gen;
         k = (k + 1) & (s->slot_cap - 1)) {
        uint32_t i = s->slot[k];
        if (s->hash[i] == h && s->len[i] == len &&
            (len == 0 || memcmp(s->pos + s->off[i], st, len * sizeof *st) == 0))
            return 1;
    }
    return 0;
}

/* Stack i of s (NULL when it is empty: s may hold no positions at all). */
static const uint32_t *stack_at(const gstack_set *s, uint32_t i)
{
    return s->len[i] ? s->pos + s->off[i] : NULL;
}

/* The same stacks, in any order. */
static int set_equal(const gstack_set *a, const gstack_set *b)
{
    if (a->sig != b->sig || a->n != b->n || a->n_pos != b->n_pos || a->over || b->over)
        return 0;
    for (uint32_t i = 0; i < a->n; i++)
        if (!set_has(b, stack_at(a, i), a->len[i], a->hash[i]))
            return 0;
    return 1;
}

/* Adds st[0..len) unless already there; over on a limit or no memory. */
static void set_add(gstack_set *s, const uint32_t *st, uint32_t len)
{
    if (len == 0)
        s->has_empty = 1;
    uint32_t h = hash_stack(st, len);
    if (set_has(s, st, len, h))
        return;
    if (s->n >= GRAMMAR_MAX_STACKS) {
        s->over = 1;
        return;
    }
    if (s->n == s->cap && grow_stacks(s, s->cap ? s->cap * 2 : 8) < 0) {
        s->over = 1;
        return;
    }
    if (s->n_pos + len > s->cap_pos) {
        uint32_t cap = s->cap_pos ? s->cap_pos : 64;
        while (cap < s->n_pos + len)
            cap *= 2;
        if (grow_positions(s, cap) < 0) {
            s->over = 1;
            return;
        }
    }
    uint32_t i = s->n++;
    s->sig += (uint64_t)h * 0x9E3779B97F4A7C15ULL + h;
    s->off[i] = s->n_pos;
    s->len[i] = len;
    s->hash[i] = h;
    if (len)
        memcpy(s->pos + s->n_pos, st, len * sizeof *st);
    s->n_pos += len;
    if (2 * s->n > s->slot_cap) {
        if (grow_slots(s, s->slot_cap ? s->slot_cap * 2 : 16) < 0)
            s->over = 1;
        return; /* the rebuild placed stack i */
    }
    uint32_t k = h & (s->slot_cap - 1);
    while (s->slot_gen[k] == s->gen)
        k = (k + 1) & (s->slot_cap - 1);
    s->slot_gen[k] = s->gen;
    s->slot[k] = i;
}

static int set_copy(gstack_set *dst, const gstack_set *src)
{
    set_reset(dst);
    for (uint32_t i = 0; i < src->n && !dst->over; i++)
        set_add(dst, stack_at(src, i), src->len[i]);
    return dst->over ? -1 : 0;
}

static void set_swap(gstack_set *a, gstack_set *b)
{
    gstack_set t = *a;
    *a = *b;
    *b = t;
}

/* ---- Expansion and advancing ---------------------------------------- */

static void expand(const grammar *g, uint32_t *work, uint32_t wlen, gstack_set *out, unsigned depth);

/* Expands work[0..base) followed by each alternative of rule r. */
static void expand_rule(const grammar *g, uint32_t *work, uint32_t base, uint32_t r,
                        gstack_set *out, unsigned depth)
{
    for (uint32_t k = g->alt_off[r]; k < g->alt_off[r + 1] && !out->over; k++) {
        uint32_t a = g->alts[k];
        if (grammar_elem_is_end(g->elems[a])) {
            expand(g, work, base, out, depth + 1); /* empty alternative */
        } else if (base >= GRAMMAR_MAX_DEPTH) {
            out->over = 1;
        } else {
            work[base] = a;
            expand(g, work, base + 1, out, depth + 1);
        }
    }
}

/*
 * Adds work[0..wlen) to out once its top is a byte element (or it is
 * empty). work[wlen-1] and above may be overwritten; below is kept.
 */
static void expand(const grammar *g, uint32_t *work, uint32_t wlen, gstack_set *out, unsigned depth)
{
    if (depth > EXPAND_RECURSION_MAX || ++out->expansions > GRAMMAR_MAX_EXPANSIONS) {
        out->over = 1;
        return;
    }
    if (wlen == 0) {
        set_add(out, work, 0);
        return;
    }
    uint32_t top = work[wlen - 1];
    grammar_elem e = g->elems[top];
    if (e.type != GE_REF) {
        set_add(out, work, wlen);
        return;
    }
    uint32_t base = wlen - 1;
    if (!grammar_elem_is_end(g->elems[top + 1]))
        work[base++] = top + 1; /* where to go on after the rule */
    expand_rule(g, work, base, e.val, out, depth);
}

int grammar_advance(const grammar *g, const gstack_set *in, uint8_t b, gstack_set *out,
                    uint32_t *work)
{
    set_reset(out);
    for (uint32_t i = 0; i < in->n; i++) {
        uint32_t len = in->len[i];
        if (len == 0)
            continue;
        const uint32_t *st = in->pos + in->off[i];
        uint32_t top = st[len - 1];
        if (!grammar_elem_matches(g, g->elems[top], b))
            continue;
        memcpy(work, st, (len - 1) * sizeof *st);
        uint32_t wlen = len - 1;
        if (!grammar_elem_is_end(g->elems[top + 1]))
            work[wlen++] = top + 1;
        expand(g, work, wlen, out, 0);
        if (out->over)
            return -1;
    }
    return out->n > 0;
}

void grammar_next_bytes(const grammar *g, const gstack_set *s, uint8_t acc[32])
{
    memset(acc, 0, 32);
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->len[i] == 0)
            continue;
        grammar_elem e = g->elems[s->pos[s->off[i] + s->len[i] - 1]];
        if (e.type == GE_BYTE) {
            acc[e.val >> 3] |= (uint8_t)(1u << (e.val & 7));
        } else {
            const uint8_t *c = g->classes[e.val];
            for (int k = 0; k < 32; k++)
                acc[k] |= c[k];
        }
    }
}

/* ---- Loops ---------------------------------------------------------- */

const grammar_loops *grammar_loops_of(const grammar *g, grammar_scratch *sc, const gstack_set *s)
{
    for (uint32_t i = 0; i < GRAMMAR_LOOP_CACHE; i++)
        if (sc->loops[i].used && set_equal(&sc->loops[i].set, s))
            return &sc->loops[i];
    grammar_loops *l = &sc->loops[sc->loop_next];
    sc->loop_next = (sc->loop_next + 1) % GRAMMAR_LOOP_CACHE;
    l->used = 0;
    if (set_copy(&l->set, s) < 0)
        return NULL;
    grammar_next_bytes(g, s, l->next);
    memset(l->loop, 0, sizeof l->loop);
    for (int b = 0; b < 256; b++) {
        if (!((l->next[b >> 3] >> (b & 7)) & 1))
            continue;
        if (grammar_advance(g, s, (uint8_t)b, &sc->probe, sc->work) > 0 &&
            set_equal(&sc->probe, s))
            l->loop[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    l->used = 1;
    return l;
}

/* ---- Scratch -------------------------------------------------------- */

sem_status grammar_scratch_levels(grammar_scratch *sc, uint32_t n)
{
    if (n <= sc->n_lvl)
        return SEM_OK;
    gstack_set *l = realloc(sc->lvl, n * sizeof *l);
    if (!l)
        return SEM_ENOMEM;
    memset(l + sc->n_lvl, 0, (n - sc->n_lvl) * sizeof *l);
    sc->lvl = l;
    sc->n_lvl = n;
    return SEM_OK;
}

static void scratch_free(grammar_scratch *sc)
{
    if (!sc)
        return;
    for (uint32_t i = 0; i < sc->n_lvl; i++)
        gstack_set_free(&sc->lvl[i]);
    for (uint32_t i = 0; i < GRAMMAR_LOOP_CACHE; i++)
        gstack_set_free(&sc->loops[i].set);
    gstack_set_free(&sc->probe);
    free(sc->lvl);
    free(sc->allowed);
    free(sc);
}

/* ---- States --------------------------------------------------------- */

grammar_state *grammar_state_new(const grammar *g, sem_err *err)
{
    if (!g)
        return sem_err_set(err, SEM_EINVAL, "grammar_state_new: no grammar"), NULL;
    grammar_state *s = calloc(1, sizeof *s);
    if (!s || !(s->sc = calloc(1, sizeof *s->sc)) || grammar_scratch_levels(s->sc, 2) != SEM_OK ||
        gstack_set_reserve(&s->cur, 16, 256) != SEM_OK) {
        grammar_state_free(s);
        return sem_err_set(err, SEM_ENOMEM, "grammar state: out of memory"), NULL;
    }
    s->g = g;
    set_reset(&s->cur);
    expand_rule(g, s->sc->work, 0, g->root, &s->cur, 0);
    if (s->cur.over) {
        grammar_state_free(s);
        return sem_err_set(err, SEM_EREQUEST,
                           "grammar: the start of \"root\" exceeds %d stacks, %d nesting "
                           "levels or %d expansion steps (or memory ran out)",
                           GRAMMAR_MAX_STACKS, GRAMMAR_MAX_DEPTH, GRAMMAR_MAX_EXPANSIONS),
               NULL;
    }
    return s;
}

void grammar_state_free(grammar_state *s)
{
    if (!s)
        return;
    gstack_set_free(&s->cur);
    scratch_free(s->sc);
    free(s);
}

int grammar_state_accept(grammar_state *s, const char *bytes, size_t n)
{
    if (n == 0)
        return 1;
    gstack_set *lvl = s->sc->lvl;
    const gstack_set *in = &s->cur;
    for (size_t i = 0; i < n; i++) {
        gstack_set *out = &lvl[i & 1];
        if (grammar_advance(s->g, in, (uint8_t)bytes[i], out, s->sc->work) <= 0)
            return 0;
        in = out;
    }
    set_swap(&s->cur, &lvl[(n - 1) & 1]);
    return 1;
}

int grammar_state_can_end(const grammar_state *s)
{
    return s->cur.has_empty;
}

int grammar_state_done(const grammar_state *s)
{
    if (!s->cur.has_empty)
        return 0;
    uint8_t acc[32];
    grammar_next_bytes(s->g, &s->cur, acc);
    for (int k = 0; k < 32; k++)
        if (acc[k])
            return 0;
    return 1;
}
