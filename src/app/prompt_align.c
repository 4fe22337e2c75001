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
#define TEXT_MAX 256    /* bytes spelled ahead by one side, at most one token's worth */

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

/* The text of side x ran ahead of side y by `ahead` bytes (kept in buf):
 * compares y's next piece against it. */
typedef struct walker {
    const int32_t *tok;
    uint32_t n, at;   /* tokens, and the next one to spell */
} walker;

/*
 * From position i on both sides, the furthest (ja, jb), ja > i, where
 * held[i..ja) and prompt[i..jb) spell the same bytes; 0 when none.
 */
static int find_span(const int32_t *held, uint32_t n_held, const int32_t *prompt, uint32_t n,
                     uint32_t i, const prompt_align_vocab *v, uint32_t *ja, uint32_t *jb)
{
    walker w[2] = {{held, n_held, i}, {prompt, n, i}};
    char pend[TEXT_MAX]; /* bytes one side spelled beyond the other */
    size_t np = 0;
    int lead = 0; /* the side whose text is ahead (when np > 0) */
    int found = 0;
    while (w[0].at - i < WALK_MAX && w[1].at - i < WALK_MAX) {
        int s = np == 0 ? 0 : 1 - lead; /* spell the side that is behind */
        if (w[s].at >= w[s].n)
            break;
        int32_t t = w[s].tok[w[s].at];
        size_t len = 0;
        const char *p = special(v, t) ? NULL : v->piece(v->user, t, &len);
        if (!p || len == 0)
            break;
        w[s].at++;
        if (np == 0) { /* s leads now */
            if (len > sizeof pend)
                break;
            memcpy(pend, p, len);
            np = len;
            lead = s;
            continue;
        }
        size_t k = len < np ? len : np;
        if (memcmp(pend, p, k) != 0)
            break;
        if (len < np) { /* still behind */
            memmove(pend, pend + k, np - k);
            np -= k;
        } else if (len > np) { /* overtakes: now it leads */
            if (len - np > sizeof pend)
                break;
            memmove(pend, p + np, len - np);
            np = len - np;
            lead = s;
        } else {
            np = 0; /* level: a boundary on both sides */
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
