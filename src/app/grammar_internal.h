/*
 * grammar_internal.h - the compiled form of a grammar and the stack sets
 * that match it, shared by grammar_parse.c (text -> compiled form),
 * grammar.c (states, advancing byte by byte) and grammar_vocab.c (the
 * token trie and masking). Nothing here is used outside src/app/grammar*.c.
 *
 * Compiled form: every rule is a run of elements in one array,
 *
 *     alt1 elements, ALT, alt2 elements, ALT, ..., END
 *
 * (an empty alternative is an ALT or END right away). A position is an
 * index into that array. Repetitions and groups were turned into helper
 * rules by the parser, so only four kinds of element remain: a reference
 * to a rule, one byte, one byte of a set, and the two terminators.
 *
 * A stack holds positions, bottom first; its top is the next element to
 * match. After expansion every top is a byte element (BYTE or CLASS), or
 * the stack is empty (the output can end there). Below the top lie the
 * continuations: where to go on once the rule above is finished.
 */
#ifndef SEM_GRAMMAR_INTERNAL_H
#define SEM_GRAMMAR_INTERNAL_H

#include <stdint.h>

#include "grammar.h"

enum { GE_END, GE_ALT, GE_REF, GE_BYTE, GE_CLASS };

typedef struct grammar_elem {
    uint32_t type : 8;
    uint32_t val : 24; /* REF: rule; BYTE: the byte; CLASS: index into classes */
} grammar_elem;

struct grammar {
    grammar_elem *elems;  /* [n_elems] */
    uint32_t n_elems;
    uint32_t n_rules;
    uint32_t *alt_off;    /* [n_rules + 1]: rule r's alternatives are alts[alt_off[r]..alt_off[r+1]) */
    uint32_t *alts;       /* position of each alternative's first element */
    uint8_t (*classes)[32]; /* [n_classes] 256-bit byte sets */
    uint32_t n_classes;
    uint32_t root;
};

static inline int grammar_elem_is_end(grammar_elem e)
{
    return e.type == GE_END || e.type == GE_ALT;
}

static inline int grammar_elem_matches(const grammar *g, grammar_elem e, uint8_t b)
{
    if (e.type == GE_BYTE)
        return e.val == b;
    return (g->classes[e.val][b >> 3] >> (b & 7)) & 1;
}

/* A set of stacks, stored back to back; identical stacks kept once
 * (an open-addressed table of stack indices, cleared by bumping gen). */
typedef struct gstack_set {
    uint32_t *pos;            /* [cap_pos] all stacks' positions */
    uint32_t n_pos, cap_pos;
    uint32_t *off, *len, *hash; /* [cap] each stack */
    uint32_t n, cap;
    uint32_t *slot, *slot_gen; /* [slot_cap]: stack index, valid when slot_gen == gen */
    uint32_t slot_cap, gen;
    uint64_t sig;             /* sum of the stacks' hashes, whatever their order */
    uint32_t expansions;      /* expand steps since the reset, against GRAMMAR_MAX_EXPANSIONS */
    int has_empty;            /* holds the empty stack: the output can end */
    int over;                 /* a limit or an allocation failed: the set is unusable */
} gstack_set;

void gstack_set_free(gstack_set *s);
/* Reserves room (SEM_ENOMEM). */
sem_status gstack_set_reserve(gstack_set *s, uint32_t stacks, uint32_t positions);

/*
 * What masking remembers about a stack set it met: the bytes some stack
 * can take next, and the bytes that lead back to the very same set (the
 * loop of a string's characters, say), whose subtrees the trie walk
 * enters without advancing at all.
 */
#define GRAMMAR_LOOP_CACHE 32
typedef struct grammar_loops {
    gstack_set set;   /* a copy of the set */
    uint8_t next[32]; /* 256-bit: bytes some stack takes */
    uint8_t loop[32]; /* 256-bit: bytes after which the set is the same */
    int used;
} grammar_loops;

/* Scratch memory of a state, used by accept, allows and mask. */
typedef struct grammar_scratch {
    uint32_t work[GRAMMAR_MAX_DEPTH + 1]; /* the stack being expanded */
    gstack_set *lvl;  /* [n_lvl] one set per byte of a token being tried */
    uint32_t n_lvl;
    uint8_t *allowed; /* [n_allowed] per token, for mask */
    uint32_t n_allowed;
    grammar_loops loops[GRAMMAR_LOOP_CACHE]; /* sets met while masking, kept */
    uint32_t loop_next; /* the entry to replace next */
    gstack_set probe;   /* where loops are tried */
} grammar_scratch;

struct grammar_state {
    const grammar *g;
    gstack_set cur;
    grammar_scratch *sc; /* mutable even through a const state */
};

/*
 * out = the stacks of `in` after byte b. Returns 1 if some stack took it,
 * 0 if none did, -1 if a limit or an allocation failed (out->over).
 */
int grammar_advance(const grammar *g, const gstack_set *in, uint8_t b, gstack_set *out,
                    uint32_t *work);
/* Makes sure sc has at least n levels (SEM_ENOMEM). */
sem_status grammar_scratch_levels(grammar_scratch *sc, uint32_t n);
/* Bit set of the bytes that some stack of s can take next. */
void grammar_next_bytes(const grammar *g, const gstack_set *s, uint8_t acc[32]);
/* The remembered bytes of set s (computed on first sight); NULL without memory. */
const grammar_loops *grammar_loops_of(const grammar *g, grammar_scratch *sc, const gstack_set *s);

#endif
