/*
 * grammar_vocab.c - a vocabulary's token texts as a byte trie, and the
 * token checks and masks of a grammar state over it.
 *
 * The trie: node 0 is the empty prefix; a node's children are contiguous
 * and sorted by byte; the tokens whose whole text is a node's prefix are
 * listed at that node (several tokens may share a text). Empty-text and
 * end-of-generation tokens are not in it.
 *
 * Masking walks the trie depth first, carrying the stack set after each
 * prefix (one scratch set per depth), and skips a child as soon as its
 * byte is not one that some stack can take next (a 256-bit test), so a
 * position where the grammar admits a few bytes costs a few children of
 * the root. In free text (a string's characters) nearly every byte leads
 * back to the same set: the bytes that do are worked out once per set
 * (grammar_loops_of, remembered in the state) and such children are
 * entered with the same set, without advancing, so the walk costs little
 * more than visiting the tokens. A token is allowed exactly when each of
 * its bytes advances the set, which is what grammar_state_allows() checks
 * byte by byte; the two agree (a loop byte gives an equal set, checked).
 *
 * Threads: the vocab is immutable after grammar_vocab_new; checks and
 * masks use the state's scratch (one thread per state).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

enum { TOK_TEXT, TOK_EMPTY, TOK_EOG };

typedef struct tnode {
    uint32_t child;   /* first child's index */
    uint32_t tok;     /* first of its tokens in toks */
    uint32_t n_tok;   /* tokens with exactly this text */
    uint16_t n_child; /* up to 256 */
    uint8_t byte;     /* the byte leading here from the parent */
} tnode;

struct grammar_vocab {
    uint32_t n_vocab;
    char *text;          /* all token texts back to back */
    uint32_t *text_off;  /* [n_vocab + 1] */
    uint8_t *kind;       /* [n_vocab] TOK_* */
    tnode *nodes;        /* [n_nodes] */
    uint32_t n_nodes;
    int32_t *toks;       /* tokens of the nodes */
    uint32_t max_len;    /* longest token text, bytes */
};

/* ---- Building ------------------------------------------------------- */

/* While building: a linked trie (first child, next sibling, token list). */
typedef struct bnode {
    uint32_t first, next;
    int32_t tok;         /* first token here, or -1 */
    uint32_t n_child;
    uint8_t byte;
} bnode;

typedef struct builder {
    bnode *n;
    uint32_t len, cap;
    int32_t *tok_next;   /* [n_vocab] next token with the same text, or -1 */
} builder;

static int bnode_new(builder *b, uint8_t byte, uint32_t *out)
{
    if (b->len == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 1024;
        bnode *n = realloc(b->n, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        b->n = n;
        b->cap = cap;
    }
    b->n[b->len] = (bnode){.first = 0, .next = 0, .tok = -1, .n_child = 0, .byte = byte};
    *out = b->len++;
    return 0;
}

static int insert(builder *b, const uint8_t *s, uint32_t len, int32_t tok)
{
    uint32_t at = 0;
    for (uint32_t i = 0; i < len; i++) {
        /* Children are kept sorted; 0 is never a child, so it ends a list. */
        uint32_t prev = 0, c = b->n[at].first;
        while (c && b->n[c].byte < s[i]) {
            prev = c;
            c = b->n[c].next;
        }
        if (!c || b->n[c].byte != s[i]) {
            uint32_t k;
            if (bnode_new(b, s[i], &k) < 0)
                return -1;
            b->n[k].next = c;
            if (prev)
                b->n[prev].next = k;
            else
                b->n[at].first = k;
            b->n[at].n_child++;
            c = k;
        }
        at = c;
    }
    b->tok_next[tok] = b->n[at].tok;
    b->n[at].tok = tok;
    return 0;
}

/* Lays the linked trie out breadth first: children contiguous. */
static int flatten(grammar_vocab *v, builder *b)
{
    v->nodes = malloc((size_t)b->len * sizeof *v->nodes);
    uint32_t *queue = malloc((size_t)b->len * sizeof *queue);
    v->toks = malloc((size_t)v->n_vocab * sizeof *v->toks + 1);
    if (!v->nodes || !queue || !v->toks) {
        free(queue);
        return -1;
    }
    uint32_t head = 0, tail = 0, n_toks = 0;
    queue[tail++] = 0; /* the linked node that flat node i comes from is queue[i] */
    while (head < tail) {
        uint32_t i = head++;
        const bnode *bn = &b->n[queue[i]];
        tnode *t = &v->nodes[i];
        t->byte = bn->byte;
        t->n_child = (uint16_t)bn->n_child;
        t->child = tail;
        for (uint32_t c = bn->first; c; c = b->n[c].next)
            queue[tail++] = c;
        t->tok = n_toks;
        uint32_t k = 0;
        for (int32_t tok = bn->tok; tok >= 0; tok = b->tok_next[tok], k++)
            v->toks[n_toks++] = tok;
        t->n_tok = k;
    }
    v->n_nodes = tail;
    free(queue);
    return 0;
}

grammar_vocab *grammar_vocab_new(uint32_t n_vocab,
                                 const char *(*piece)(void *u, int32_t tok, size_t *len),
                                 int (*is_eog)(void *u, int32_t tok), void *u, sem_err *err)
{
    if (!piece || n_vocab == 0 || n_vocab > INT32_MAX)
        return sem_err_set(err, SEM_EINVAL, "grammar_vocab_new: no vocabulary"), NULL;
    grammar_vocab *v = calloc(1, sizeof *v);
    builder b = {0};
    if (!v)
        goto nomem;
    v->n_vocab = n_vocab;
    v->text_off = malloc(((size_t)n_vocab + 1) * sizeof *v->text_off);
    v->kind = malloc(n_vocab);
    b.tok_next = malloc((size_t)n_vocab * sizeof *b.tok_next);
    if (!v->text_off || !v->kind || !b.tok_next)
        goto nomem;
    /* Texts first, then the trie over them. */
    size_t total = 0, cap = 0;
    for (uint32_t t = 0; t < n_vocab; t++) {
        size_t len = 0;
        const char *s = piece(u, (int32_t)t, &len);
        int eog = is_eog && is_eog(u, (int32_t)t);
        v->kind[t] = eog ? TOK_EOG : (!s || len == 0) ? TOK_EMPTY : TOK_TEXT;
        v->text_off[t] = (uint32_t)total;
        if (v->kind[t] != TOK_TEXT)
            continue;
        if (len > UINT16_MAX || total + len > UINT32_MAX)
            return sem_err_set(err, SEM_EINVAL, "grammar_vocab_new: token %u is too long", t),
                   grammar_vocab_free(v), free(b.tok_next), NULL;
        if (total + len > cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            while (ncap < total + len)
                ncap *= 2;
            char *nt = realloc(v->text, ncap);
            if (!nt)
                goto nomem;
            v->text = nt;
            cap = ncap;
        }
        memcpy(v->text + total, s, len);
        total += len;
        if (len > v->max_len)
            v->max_len = (uint32_t)len;
    }
    v->text_off[n_vocab] = (uint32_t)total;
    uint32_t root;
    if (bnode_new(&b, 0, &root) < 0)
        goto nomem;
    for (uint32_t t = 0; t < n_vocab; t++) {
        if (v->kind[t] != TOK_TEXT)
            continue;
        if (insert(&b, (const uint8_t *)v->text + v->text_off[t], v->text_off[t + 1] - v->text_off[t],
                   (int32_t)t) < 0)
            goto nomem;
    }
    if (flatten(v, &b) < 0)
        goto nomem;
    free(b.n);
    free(b.tok_next);
    return v;
nomem:
    free(b.n);
    free(b.tok_next);
    grammar_vocab_free(v);
    return sem_err_set(err, SEM_ENOMEM, "grammar vocabulary of %u tokens: out of memory", n_vocab),
           NULL;
}

void grammar_vocab_free(grammar_vocab *v)
{
    if (!v)
        return;
    free(v->text);
    free(v->text_off);
    free(v->kind);
    free(v->nodes);
    free(v->toks);
    free(v);
}

uint32_t grammar_vocab_size(const grammar_vocab *v)
{
    return v->n_vocab;
}

int grammar_vocab_is_eog(const grammar_vocab *v, int32_t token)
{
    return token >= 0 && (uint32_t)token < v->n_vocab && v->kind[token] == TOK_EOG;
}

const char *grammar_vocab_text(const grammar_vocab *v, int32_t token, size_t *len)
{
    if (token < 0 || (uint32_t)token >= v->n_vocab || v->kind[token] != TOK_TEXT) {
        *len = 0;
        return "";
    }
    *len = v->text_off[token + 1] - v->text_off[token];
    return v->text + v->text_off[token];
}

/* ---- Checking and masking ------------------------------------------- */

int grammar_state_allows(const grammar_state *s, const grammar_vocab *v, int32_t token)
{
    if (token < 0 || (uint32_t)token >= v->n_vocab)
        return 0;
    if (v->kind[token] == TOK_EOG)
        return grammar_state_can_end(s);
    if (v->kind[token] == TOK_EMPTY)
        return 0;
    const uint8_t *t = (const uint8_t *)v->text + v->text_off[token];
    uint32_t n = v->text_off[token + 1] - v->text_off[token];
    grammar_scratch *sc = s->sc;
    const gstack_set *in = &s->cur;
    for (uint32_t i = 0; i < n; i++) {
        gstack_set *out = &sc->lvl[i & 1];
        if (grammar_advance(s->g, in, t[i], out, sc->work) <= 0)
            return 0;
        in = out;
    }
    return 1;
}

static int bit(const uint8_t set[32], uint8_t b)
{
    return (set[b >> 3] >> (b & 7)) & 1;
}

/*
 * Marks the allowed tokens below node, whose prefix leaves set `in`; next
 * and loop are in's bytes (grammar_loops), loop all zero when unknown.
 */
static void walk(const grammar_state *s, const grammar_vocab *v, uint32_t node,
                 const gstack_set *in, const uint8_t *next, const uint8_t *loop, uint32_t depth)
{
    grammar_scratch *sc = s->sc;
    const tnode *nd = &v->nodes[node];
    gstack_set *out = &sc->lvl[depth];
    for (uint32_t k = 0; k < nd->n_child; k++) {
        uint32_t c = nd->child + k;
        const tnode *ch = &v->nodes[c];
        if (!bit(next, ch->byte))
            continue;
        if (bit(loop, ch->byte)) { /* the same set again */
            for (uint32_t j = 0; j < ch->n_tok; j++)
                sc->allowed[v->toks[ch->tok + j]] = 1;
            if (ch->n_child)
                walk(s, v, c, in, next, loop, depth + 1);
            continue;
        }
        if (grammar_advance(s->g, in, ch->byte, out, sc->work) <= 0)
            continue;
        for (uint32_t j = 0; j < ch->n_tok; j++)
            sc->allowed[v->toks[ch->tok + j]] = 1;
        if (!ch->n_child)
            continue;
        /* Learning a set's loops costs up to 256 advances: worth it for a
         * node with many children, and remembered for the next masks. */
        const grammar_loops *l = ch->n_child >= 16 ? grammar_loops_of(s->g, sc, out) : NULL;
        if (l) {
            walk(s, v, c, out, l->next, l->loop, depth + 1);
        } else {
            uint8_t acc[32], none[32] = {0};
            grammar_next_bytes(s->g, out, acc);
            walk(s, v, c, out, acc, none, depth + 1);
        }
    }
}

sem_status grammar_state_mask(const grammar_state *s, const grammar_vocab *v, float *logits)
{
    grammar_scratch *sc = s->sc;
    if (grammar_scratch_levels(sc, v->max_len + 2) != SEM_OK)
        return SEM_ENOMEM;
    if (sc->n_allowed < v->n_vocab) {
        uint8_t *a = realloc(sc->allowed, v->n_vocab);
        if (!a)
            return SEM_ENOMEM;
        sc->allowed = a;
        sc->n_allowed = v->n_vocab;
    }
    memset(sc->allowed, 0, v->n_vocab);
    const grammar_loops *l = grammar_loops_of(s->g, sc, &s->cur);
    uint8_t acc[32], none[32] = {0};
    if (!l)
        grammar_next_bytes(s->g, &s->cur, acc);
    walk(s, v, 0, &s->cur, l ? l->next : acc, l ? l->loop : none, 0);
    int can_end = grammar_state_can_end(s);
    for (uint32_t t = 0; t < v->n_vocab; t++) {
        int ok = v->kind[t] == TOK_EOG ? can_end : sc->allowed[t];
        if (!ok)
            logits[t] = -INFINITY;
    }
    return SEM_OK;
}
