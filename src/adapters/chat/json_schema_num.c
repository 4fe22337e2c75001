/*
 * json_schema_num.c - integers and numbers within a schema's bounds, in
 * the canonical decimal form, as grammar.
 *
 * Canonical (what tojson prints back for the value jansson reads):
 *   integer   0 or -?[1-9][0-9]*, at most 16 digits, never "-0"
 *   fraction  I.F where F does not end in 0, at most 15 significant
 *             digits in all (so the double prints back as the same
 *             digits) and at least 0.0001 in magnitude (smaller ones
 *             print with an exponent); no exponent, no "-0.0"
 *
 * Bounds are exact. A value is its sign and its magnitude; the magnitude
 * range of each sign [A, B] (inclusive or not at each end) is written as
 * the integers in it plus, for numbers, the fractions I.F: for each
 * integer part I, the fractions F between the bounds' own fractions
 * compared digit by digit (a fraction's digits order like the strings).
 * Integer parts are grouped by their digit count, since the count limits
 * the fraction's digits.
 *
 * Threads: pure functions of their arguments.
 */
#include "json_schema_parts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAC_MAX 24        /* bytes of a bound's fraction digits */
#define FRAC_INT_MAX 99999999999999ull /* 14 digits: the largest integer part of a fraction */

/* A bound's decimal value: sign, integer part and fraction digits. */
typedef struct dec {
    int neg, zero;
    int huge; /* magnitude >= 1e16: beyond every text */
    int tiny; /* 0 < magnitude < 1e-4: below every nonzero text */
    uint64_t ip;
    char frac[FRAC_MAX]; /* digits, no trailing 0 */
} dec;

typedef struct bound {
    int present, excl;
    dec d;
} bound;

/* One end of a magnitude range: ip.frac, exclusive or not. */
typedef struct mag {
    int present, excl;
    uint64_t ip;
    char frac[FRAC_MAX];
} mag;

/* ---------------------------------------------------------------- bounds */

static void dec_from_json(const json_t *v, dec *d)
{
    memset(d, 0, sizeof *d);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        d->neg = i < 0;
        d->ip = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        d->zero = d->ip == 0;
        d->huge = d->ip > JSG_INT_MAX;
        return;
    }
    double x = json_real_value(v), a = fabs(x);
    d->neg = x < 0;
    d->zero = x == 0;
    if (d->zero)
        return;
    if (a >= 1e16) {
        d->huge = 1;
        return;
    }
    if (a < 1e-4) {
        d->tiny = 1;
        return;
    }
    /* The shortest digits that read back as a: the bound as written. */
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, a);
        if (strtod(tmp, NULL) == a)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof digits - 1)
            digits[nd++] = *p;
    int exp = atoi(p + 1); /* -4 .. 15 here */
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    size_t f = 0;
    if (exp >= 0) {
        for (int i = 0; i <= exp; i++)
            d->ip = d->ip * 10 + (uint64_t)((size_t)i < nd ? digits[i] - '0' : 0);
        for (size_t i = (size_t)exp + 1; i < nd; i++)
            d->frac[f++] = digits[i];
    } else {
        for (int i = 0; i < -exp - 1; i++)
            d->frac[f++] = '0';
        for (size_t i = 0; i < nd; i++)
            d->frac[f++] = digits[i];
    }
    d->frac[f] = '\0';
}

/* a < b as numbers (bounds are compared as the doubles they read as). */
static int tighter(const json_t *cand, int cand_excl, const bound *cur, const json_t *cur_v,
                   int lower)
{
    if (!cur->present)
        return 1;
    double a = json_number_value(cand), b = json_number_value(cur_v);
    if (a == b)
        return cand_excl && !cur->excl;
    return lower ? a > b : a < b;
}

/* The tighter of `key` and its exclusive form on one side. */
static sem_status read_bound(jsg_ctx *c, const json_t *s, int lower, bound *out)
{
    const char *key = lower ? "minimum" : "maximum";
    const char *xkey = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const json_t *v = json_object_get(s, key), *x = json_object_get(s, xkey);
    const json_t *chosen = NULL;
    memset(out, 0, sizeof *out);
    if (v && !json_is_number(v))
        return jsg_fail(c, key, SEM_EREQUEST, "must be a number");
    if (x && !json_is_number(x) && !json_is_boolean(x))
        return jsg_fail(c, xkey, SEM_EREQUEST, "must be a number (or a boolean, draft 4)");
    if (v) {
        chosen = v;
        out->present = 1;
        out->excl = json_is_true(x); /* draft 4: exclusiveMinimum: true */
    }
    if (x && json_is_number(x) && tighter(x, 1, out, chosen, lower)) {
        chosen = x;
        out->present = 1;
        out->excl = 1;
    }
    if (chosen)
        dec_from_json(chosen, &out->d);
    return SEM_OK;
}

/* The magnitude end for a bound's value (set->present 0: no end). */
static int mag_of(const dec *d, int excl, int lower, mag *m)
{
    memset(m, 0, sizeof *m);
    m->present = 1;
    m->excl = excl;
    if (d->huge) {
        m->present = 0;
        return !lower; /* a lower end beyond every text: nothing */
    }
    if (d->tiny) { /* texts are 0 or at least 1e-4 */
        m->excl = lower;
        return 1;
    }
    if (!d->zero) {
        m->ip = d->ip;
        memcpy(m->frac, d->frac, sizeof m->frac);
    }
    return 1;
}

static int is_negative(const dec *d) { return d->neg && !d->zero; }

/* The magnitudes of the texts without "-" (values >= 0). 0: none. */
static int nonneg_side(const bound *lo, const bound *hi, mag *a, mag *b)
{
    if (hi->present && is_negative(&hi->d))
        return 0;
    *a = (mag){.present = 1};
    if (lo->present && !is_negative(&lo->d) && !mag_of(&lo->d, lo->excl, 1, a))
        return 0;
    *b = (mag){0};
    if (hi->present && !mag_of(&hi->d, hi->excl, 0, b))
        return 0;
    return 1;
}

/* The magnitudes m of the texts "-m" (values < 0, m > 0). 0: none. */
static int negative_side(const bound *lo, const bound *hi, mag *a, mag *b)
{
    if (lo->present && !is_negative(&lo->d))
        return 0;
    *a = (mag){.present = 1, .excl = 1};
    if (hi->present && is_negative(&hi->d) && !mag_of(&hi->d, hi->excl, 1, a))
        return 0;
    if (a->ip == 0 && !a->frac[0])
        a->excl = 1; /* never "-0" */
    *b = (mag){0};
    if (lo->present && !mag_of(&lo->d, lo->excl, 0, b))
        return 0;
    return 1;
}

/* ---------------------------------------------------------------- integers */

static int ndigits(uint64_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static uint64_t pow10u(int n)
{
    uint64_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static void any_digits(strbuf *e, int n)
{
    if (n == 1)
        strbuf_puts(e, " [0-9]");
    else if (n > 1)
        strbuf_printf(e, " [0-9]{%d}", n);
}

static void digit_class(strbuf *e, char a, char b)
{
    if (a == b)
        strbuf_printf(e, "\"%c\"", a);
    else
        strbuf_printf(e, "[%c-%c]", a, b);
}

/* s[0..n) is all ch. */
static int all_of(const char *s, int n, char ch)
{
    for (int i = 0; i < n; i++)
        if (s[i] != ch)
            return 0;
    return 1;
}

/* The digit strings of length n from lo to hi (lo <= hi; only their
 * first n digits are read). */
static void fixed_range(strbuf *e, const char *lo, const char *hi, int n)
{
    if (n == 0)
        return;
    if (lo[0] == hi[0]) {
        digit_class(e, lo[0], lo[0]);
        if (n > 1) {
            strbuf_append(e, " ", 1);
            fixed_range(e, lo + 1, hi + 1, n - 1);
        }
        return;
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    int lo_min = all_of(lo + 1, n - 1, '0'); /* lo is d00..0 */
    int hi_max = all_of(hi + 1, n - 1, '9'); /* hi is d99..9 */
    char start = lo[0], end = hi[0];
    int alts = 0;
    strbuf_append(e, "(", 1);
    if (!lo_min) {
        digit_class(e, lo[0], lo[0]);
        strbuf_append(e, " ", 1);
        fixed_range(e, lo + 1, nines, n - 1);
        start++;
        alts++;
    }
    if (!hi_max)
        end--;
    if (start <= end) {
        strbuf_puts(e, alts++ ? " | " : "");
        digit_class(e, start, end);
        any_digits(e, n - 1);
    }
    if (!hi_max) {
        strbuf_puts(e, alts++ ? " | " : "");
        digit_class(e, hi[0], hi[0]);
        strbuf_append(e, " ", 1);
        fixed_range(e, zeros, hi + 1, n - 1);
    }
    strbuf_append(e, ")", 1);
}

void jsg_uint_range(strbuf *e, uint64_t lo, uint64_t hi)
{
    int nlo = ndigits(lo), nhi = ndigits(hi), alts = 0;
    strbuf_append(e, "(", 1);
    for (int n = nlo; n <= nhi; n++) {
        uint64_t blo = n == nlo ? lo : pow10u(n - 1);
        uint64_t bhi = n == nhi ? hi : pow10u(n) - 1;
        strbuf_puts(e, alts++ ? " | " : "");
        if (n > 1 && blo == pow10u(n - 1) && bhi == pow10u(n) - 1) {
            /* every number of n digits, and of the next lengths while full */
            int last = hi == pow10u(nhi) - 1 ? nhi : nhi - 1; /* >= n */
            strbuf_puts(e, "[1-9]");
            if (last == n)
                any_digits(e, n - 1);
            else
                strbuf_printf(e, " [0-9]{%d,%d}", n - 1, last - 1);
            n = last;
            continue;
        }
        char a[24], b[24];
        snprintf(a, sizeof a, "%llu", (unsigned long long)blo);
        snprintf(b, sizeof b, "%llu", (unsigned long long)bhi);
        fixed_range(e, a, b, n);
    }
    strbuf_append(e, ")", 1);
}

/* The integers of the magnitude range [a, b]: [*from, *to]; 0 if none. */
static int int_span(const mag *a, const mag *b, uint64_t *from, uint64_t *to)
{
    *from = a->ip + (a->frac[0] || a->excl ? 1 : 0);
    *to = JSG_INT_MAX;
    if (b->present) {
        if (!b->frac[0] && b->excl) {
            if (b->ip == 0)
                return 0;
            *to = b->ip - 1;
        } else {
            *to = b->ip;
        }
    }
    if (*to > JSG_INT_MAX)
        *to = JSG_INT_MAX;
    return *from <= *to;
}

/* ---------------------------------------------------------------- fractions */

typedef struct frac_lang {
    int empty_ok; /* the empty string is in it */
    int has_x;    /* nonempty strings are, written to the buffer */
} frac_lang;

static void any_frac(strbuf *e, int f)
{
    if (f > 1)
        strbuf_printf(e, "[0-9]{0,%d} ", f - 1);
    strbuf_puts(e, "[1-9]");
}

/*
 * The digit strings s of at most f digits, not ending in 0, with
 * lo <= s <= hi read as fractions 0.s (strictly where not *_incl; hi NULL:
 * no upper end; lo "" is 0). Nonempty ones are appended to e as a term.
 */
static frac_lang frac_range(strbuf *e, const char *lo, int lo_incl, const char *hi, int hi_incl,
                            int f)
{
    frac_lang r = {0};
    r.empty_ok = (lo[0] == '\0' && lo_incl) && (!hi || hi[0] || hi_incl);
    if (f <= 0)
        return r;
    if (lo[0] == '\0' && !hi) {
        strbuf_append(e, "(", 1);
        any_frac(e, f);
        strbuf_append(e, ")", 1);
        r.has_x = 1;
        return r;
    }
    char l0 = lo[0] ? lo[0] : '0', h0 = hi ? (hi[0] ? hi[0] : '0') : '9' + 1;
    const char *lrest = lo[0] ? lo + 1 : "";
    const char *hrest = hi && hi[0] ? hi + 1 : "";
    size_t start = e->len;
    int alts = 0;
    strbuf_append(e, "(", 1);
    for (char d = l0; d <= '9' && d <= h0; d++) {
        int low_tied = d == l0, high_tied = hi && d == h0;
        if (!low_tied && !high_tied) { /* the run of free digits up to h0 */
            char last = hi ? (char)(h0 - 1) : '9';
            strbuf_puts(e, alts++ ? " | " : "");
            digit_class(e, d, last);
            if (f > 1) {
                strbuf_append(e, " (", 2);
                any_frac(e, f - 1);
                strbuf_append(e, ")?", 2);
            }
            d = last;
            continue;
        }
        strbuf sub = {0};
        frac_lang t = frac_range(&sub, low_tied ? lrest : "", low_tied ? lo_incl : 1,
                                 high_tied ? hrest : NULL, high_tied ? hi_incl : 1, f - 1);
        int ok = d == '0' ? t.has_x : t.has_x || t.empty_ok; /* no trailing 0 */
        if (ok) {
            strbuf_puts(e, alts++ ? " | " : "");
            digit_class(e, d, d);
            if (t.has_x) {
                strbuf_append(e, " ", 1);
                jsg_append(e, &sub);
                if (t.empty_ok && d != '0')
                    strbuf_append(e, "?", 1);
            }
        }
        e->oom |= sub.oom;
        strbuf_free(&sub);
    }
    strbuf_append(e, ")", 1);
    if (alts == 0)
        strbuf_truncate(e, start);
    r.has_x = alts > 0;
    return r;
}

/* The fraction digits an integer part leaves: 15 significant in all. */
static int frac_room(uint64_t ip) { return ip == 0 ? JSG_SIG_DIGITS : JSG_SIG_DIGITS - ndigits(ip); }

/* "I." then fractions between lo and hi, as an alternative of alts. */
static void frac_at(strbuf *e, int *alts, uint64_t ip, const char *lo, int lo_incl,
                    const char *hi, int hi_incl)
{
    if (ip == 0 && lo[0] == '\0')
        lo = "0001", lo_incl = 1; /* 0.0001 and up print plainly */
    strbuf sub = {0};
    frac_lang t = frac_range(&sub, lo, lo_incl, hi, hi_incl, frac_room(ip));
    if (t.has_x) {
        strbuf_puts(e, (*alts)++ ? " | " : "");
        strbuf_printf(e, "\"%llu.\" ", (unsigned long long)ip);
        jsg_append(e, &sub);
    }
    e->oom |= sub.oom;
    strbuf_free(&sub);
}

/* The fractions with integer parts from..to, any fraction digits. */
static void frac_middle(strbuf *e, int *alts, uint64_t from, uint64_t to)
{
    for (int n = ndigits(from); n <= ndigits(to); n++) {
        uint64_t lo = from > pow10u(n - 1) ? from : pow10u(n - 1);
        uint64_t hi = to < pow10u(n) - 1 ? to : pow10u(n) - 1;
        if (lo > hi)
            continue;
        strbuf_puts(e, (*alts)++ ? " | " : "");
        jsg_uint_range(e, lo, hi);
        strbuf_puts(e, " \".\" ");
        any_frac(e, JSG_SIG_DIGITS - n);
    }
}

/* ---------------------------------------------------------------- magnitude ranges */

/* The magnitudes in [a, b] as canonical text (with fractions or not);
 * returns the number of alternatives appended (0: none). */
static int mag_range(jsg_ctx *c, strbuf *e, const mag *a, const mag *b, int fractions)
{
    int alts = 0;
    uint64_t from, to;
    int unbounded = a->ip == 0 && !a->frac[0] && !b->present;
    if (unbounded && fractions) {
        c->need |= JSG_NEED_NUMBER;
        if (!a->excl)
            strbuf_puts(e, "\"0\" | ");
        jsg_ref_name(c, e, "num-pos");
        return a->excl ? 1 : 2;
    }
    if (int_span(a, b, &from, &to)) {
        jsg_uint_range(e, from, to);
        alts++;
    }
    if (!fractions)
        return alts;
    uint64_t i0 = a->ip, i1 = FRAC_INT_MAX;
    int top_fringe = b->present && b->ip <= FRAC_INT_MAX;
    if (top_fringe)
        i1 = b->ip;
    if (i0 > i1)
        return alts;
    const char *hi = top_fringe && b->frac[0] ? b->frac : "";
    if (i0 == i1) {
        if (!top_fringe || hi[0])
            frac_at(e, &alts, i0, a->frac, !a->excl, top_fringe ? hi : NULL, !b->excl);
        return alts;
    }
    frac_at(e, &alts, i0, a->frac, !a->excl, NULL, 1);
    uint64_t mid_to = top_fringe ? i1 - 1 : i1;
    if (i0 + 1 <= mid_to)
        frac_middle(e, &alts, i0 + 1, mid_to);
    if (top_fringe && hi[0])
        frac_at(e, &alts, i1, "", 1, hi, !b->excl);
    return alts;
}

/* Both signs: (nonneg | "-" neg). */
static sem_status signed_range(jsg_ctx *c, const json_t *s, strbuf *e, int *never, int fractions)
{
    bound lo, hi;
    sem_status st = read_bound(c, s, 1, &lo);
    if (st == SEM_OK)
        st = read_bound(c, s, 0, &hi);
    if (st != SEM_OK)
        return st;
    mag a, b;
    strbuf pos = {0}, neg = {0};
    int npos = nonneg_side(&lo, &hi, &a, &b) ? mag_range(c, &pos, &a, &b, fractions) : 0;
    int nneg = negative_side(&lo, &hi, &a, &b) ? mag_range(c, &neg, &a, &b, fractions) : 0;
    *never = npos + nneg == 0;
    if (!*never) {
        strbuf_append(e, "(", 1);
        if (npos)
            jsg_append(e, &pos);
        if (npos && nneg)
            strbuf_puts(e, " | ");
        if (nneg) {
            strbuf_puts(e, "\"-\" ");
            if (nneg > 1)
                strbuf_append(e, "(", 1);
            jsg_append(e, &neg);
            if (nneg > 1)
                strbuf_append(e, ")", 1);
        }
        strbuf_append(e, ")", 1);
    }
    e->oom |= pos.oom | neg.oom;
    strbuf_free(&pos);
    strbuf_free(&neg);
    return e->oom ? SEM_ENOMEM : SEM_OK;
}

sem_status jsg_integer(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    if (!json_object_get(s, "minimum") && !json_object_get(s, "maximum") &&
        !json_object_get(s, "exclusiveMinimum") && !json_object_get(s, "exclusiveMaximum")) {
        c->need |= JSG_NEED_INTEGER;
        jsg_ref_name(c, e, "integer");
        *never = 0;
        return SEM_OK;
    }
    return signed_range(c, s, e, never, 0);
}

sem_status jsg_number(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    if (!json_object_get(s, "minimum") && !json_object_get(s, "maximum") &&
        !json_object_get(s, "exclusiveMinimum") && !json_object_get(s, "exclusiveMaximum")) {
        c->need |= JSG_NEED_NUMBER;
        jsg_ref_name(c, e, "number");
        *never = 0;
        return SEM_OK;
    }
    return signed_range(c, s, e, never, 1);
}
