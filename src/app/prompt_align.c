/*
 * prompt_align.c - rewriting a prompt over the tokens an agent holds.
 *
 * Walk: from the first difference i, two cursors advance over held[i..]
 * and prompt[i..], always moving the one whose text is behind, and compare
 * the bytes both have spelled. Every point where both texts have the same
 * length (and so, having matched, the same bytes) is a place where the
 * spans can be swapped; the walk stops at the first differing byte, a
 * special token, or WALK_MAX tokens, and the last such point wins.
 */
#include "prompt_align.h"

#include <string.h>

#define WALK_MAX 8192   /* tokens a walk may look at on each side */
#define TEXT_MAX 512    /* bytes spelled ahead by one side, about one token's worth */

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

static int special(const prompt_align_vocab *v, int32_t t)
{
    return v->is_special && v->is_special(v->user, t);
}

/*
 * One side of a walk: its tokens, the next one to spell, its spelled bytes
 * not compared yet (out), and, for vocabularies that write a space as
 * U+2581, the bytes that may be the start of one (hold).
 */
typedef struct walker {
    const int32_t *tok;
    uint32_t n, at;
    char out[TEXT_MAX];
    size_t n_out;
    char hold[3];
    size_t n_hold;
    uint64_t emitted; /* bytes put in out so far */
} walker;

static const char MARK[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 */

static int put(walker *w, char c)
{
    if (w->n_out == sizeof w->out)
        return 0;
    w->out[w->n_out++] = c;
    w->emitted++;
    return 1;
}

/* Feeds one raw byte: U+2581 becomes a space when marks is set. */
static int feed(walker *w, char c, int marks)
{
    if (!marks)
        return put(w, c);
    w->hold[w->n_hold++] = c;
    while (w->n_hold) {
        if (memcmp(w->hold, MARK, w->n_hold) == 0) { /* still a prefix */
            if (w->n_hold < 3)
                return 1;
            w->n_hold = 0;
            return put(w, ' ');
        }
        if (!put(w, w->hold[0]))
            return 0;
        memmove(w->hold, w->hold + 1, --w->n_hold);
    }
    return 1;
}

/* Spells side w's next token; 0 when it cannot (end, special, too long). */
static int spell(walker *w, const prompt_align_vocab *v)
{
    if (w->at >= w->n)
        return 0;
    int32_t t = w->tok[w->at];
    size_t len = 0;
    const char *p = special(v, t) ? NULL : v->piece(v->user, t, &len);
    if (!p || len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!feed(w, p[i], v->spaces_marked))
            return 0;
    w->at++;
    return 1;
}

/* The side to spell next: the one whose text is behind (on a tie, one
 * that holds an undecided U+2581 prefix, else the held side). */
static int behind(const walker w[2])
{
    if (w[0].emitted != w[1].emitted)
        return w[0].emitted < w[1].emitted ? 0 : 1;
    return w[0].n_hold == 0 && w[1].n_hold > 0 ? 1 : 0;
}

/*
 * From position i on both sides, the furthest (ja, jb), ja > i, where
 * held[i..ja) and prompt[i..jb) spell the same text; 0 when none.
 */
static int find_span(const int32_t *held, uint32_t n_held, const int32_t *prompt, uint32_t n,
                     uint32_t i, const prompt_align_vocab *v, uint32_t *ja, uint32_t *jb)
{
    walker w[2] = {{.tok = held, .n = n_held, .at = i}, {.tok = prompt, .n = n, .at = i}};
    int found = 0;
    while (w[0].at - i < WALK_MAX && w[1].at - i < WALK_MAX) {
        if (!spell(&w[behind(w)], v))
            break;
        size_t k = w[0].n_out < w[1].n_out ? w[0].n_out : w[1].n_out;
        if (memcmp(w[0].out, w[1].out, k) != 0)
            break;
        for (int s = 0; s < 2; s++) {
            memmove(w[s].out, w[s].out + k, w[s].n_out - k);
            w[s].n_out -= k;
        }
        if (!w[0].n_out && !w[1].n_out && !w[0].n_hold && !w[1].n_hold && w[0].at > i &&
            w[1].at > i) { /* level: a boundary on both sides */
            *ja = w[0].at;
            *jb = w[1].at;
            found = 1;
        }
    }
    return found;
}

uint32_t prompt_align(const int32_t *held, uint32_t n_held, int32_t *prompt, uint32_t *n,
                      uint32_t cap, const prompt_align_vocab *v)
{
    uint32_t i = common_prefix(held, n_held, prompt, *n);
    uint32_t ja, jb;
    while (i < n_held && i < *n && find_span(held, n_held, prompt, *n, i, v, &ja, &jb)) {
        uint32_t grow = ja > jb ? ja - jb : 0;
        if (*n + grow > cap)
            break;
        /* prompt[i..jb) becomes held[i..ja): move the tail, copy the span */
        memmove(prompt + ja, prompt + jb, (*n - jb) * sizeof *prompt);
        memcpy(prompt + i, held + i, (ja - i) * sizeof *prompt);
        *n = *n - jb + ja;
        i = ja + common_prefix(held + ja, n_held - ja, prompt + ja, *n - ja);
    }
    return i;
}
