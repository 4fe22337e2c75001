/*
 * grammar_parse.c - GBNF text to the compiled form of grammar_internal.h.
 *
 * A recursive-descent reader builds one element vector per rule. Groups
 * become helper rules; a repeated atom of more than one element becomes a
 * helper rule too, so that repetition copies one element:
 *
 *     x*      S ::= x S |             x+   x S
 *     x?      Q ::= x |               x{m} x ... x (m copies)
 *     x{m,n}  m copies, then R(n-m) where R(1) ::= x |, R(k) ::= x R(k-1) |
 *
 * so {m,n} costs O(n) elements, never more. Then the rules are checked
 * (every referenced rule defined, "root" present, no left recursion:
 * a rule that reaches itself through a prefix that can match nothing
 * would make expansion loop) and laid out in one array.
 *
 * Errors carry the 1-based line and byte column of their cause. A failed
 * parse frees everything it built. Threads: reentrant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

#define REP_INF UINT32_MAX

typedef struct pvec {
    grammar_elem *e;
    uint32_t n, cap;
} pvec;

typedef struct prule {
    const char *name;  /* into the text; NULL for helper rules */
    uint32_t name_len;
    uint32_t owner;    /* the user rule a helper was made for (itself for a user rule) */
    int defined;
    const char *where; /* definition, or first reference while undefined */
    pvec body;
} prule;

typedef struct parser {
    const char *text, *p, *end;
    prule *rules;
    uint32_t n_rules, cap_rules;
    uint8_t (*classes)[32];
    uint32_t n_classes, cap_classes;
    uint32_t n_elems; /* over all rules, against GRAMMAR_ELEMS_MAX */
    uint32_t cur_owner;
    int failed;
    sem_err *err;
} parser;

/* ---- Errors --------------------------------------------------------- */

static void where_of(const parser *P, const char *at, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (const char *q = P->text; q < at && q < P->end; q++) {
        if (*q == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

__attribute__((format(printf, 3, 4)))
static int fail_at(parser *P, const char *at, const char *fmt, ...)
{
    if (P->failed)
        return -1;
    P->failed = 1;
    char msg[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned line, col;
    where_of(P, at, &line, &col);
    sem_err_set(P->err, SEM_EREQUEST, "grammar line %u col %u: %s", line, col, msg);
    return -1;
}

static int fail_nomem(parser *P)
{
    if (!P->failed)
        sem_err_set(P->err, SEM_ENOMEM, "grammar: out of memory while compiling");
    P->failed = 1;
    return -1;
}

/* ---- Building ------------------------------------------------------- */

static int push(parser *P, uint32_t r, uint32_t type, uint32_t val)
{
    if (P->n_elems >= GRAMMAR_ELEMS_MAX)
        return fail_at(P, P->p, "the grammar compiles to more than %u elements", GRAMMAR_ELEMS_MAX);
    pvec *v = &P->rules[r].body;
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        grammar_elem *e = realloc(v->e, cap * sizeof *e);
        if (!e)
            return fail_nomem(P);
        v->e = e;
        v->cap = cap;
    }
    v->e[v->n++] = (grammar_elem){.type = type, .val = val};
    P->n_elems++;
    return 0;
}

static int new_rule(parser *P, const char *name, uint32_t name_len, const char *where, uint32_t *out)
{
    if (P->n_rules >= (1u << 24) - 1)
        return fail_at(P, where, "too many rules");
    if (P->n_rules == P->cap_rules) {
        uint32_t cap = P->cap_rules ? P->cap_rules * 2 : 16;
        prule *r = realloc(P->rules, cap * sizeof *r);
        if (!r)
            return fail_nomem(P);
        P->rules = r;
        P->cap_rules = cap;
    }
    prule *r = &P->rules[P->n_rules];
    memset(r, 0, sizeof *r);
    r->name = name;
    r->name_len = name_len;
    r->owner = name ? P->n_rules : P->cur_owner;
    r->where = where;
    *out = P->n_rules++;
    return 0;
}

static int helper_rule(parser *P, uint32_t *out)
{
    if (new_rule(P, NULL, 0, P->p, out) < 0)
        return -1;
    P->rules[*out].defined = 1;
    return 0;
}

/* The user rule called name, created (undefined) on first mention. */
static int rule_named(parser *P, const char *name, uint32_t len, const char *where, uint32_t *out)
{
    for (uint32_t i = 0; i < P->n_rules; i++) {
        prule *r = &P->rules[i];
        if (r->name && r->name_len == len && memcmp(r->name, name, len) == 0) {
            *out = i;
            return 0;
        }
    }
    return new_rule(P, name, len, where, out);
}

static int add_class(parser *P, const uint8_t set[32], uint32_t *out)
{
    if (P->n_classes == P->cap_classes) {
        uint32_t cap = P->cap_classes ? P->cap_classes * 2 : 8;
        uint8_t(*c)[32] = realloc(P->classes, cap * sizeof *c);
        if (!c)
            return fail_nomem(P);
        P->classes = c;
        P->cap_classes = cap;
    }
    memcpy(P->classes[P->n_classes], set, 32);
    *out = P->n_classes++;
    return 0;
}

/* ---- Lexing --------------------------------------------------------- */

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Skips blanks and comments; newlines too when nl. */
static const char *skip_space(const parser *P, const char *p, int nl)
{
    while (p < P->end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\r' || (nl && c == '\n')) {
            p++;
        } else if (c == '#') {
            while (p < P->end && *p != '\n')
                p++;
        } else {
            break;
        }
    }
    return p;
}

/* Whether p starts a definition: name blanks "::=". */
static int starts_rule(const parser *P, const char *p)
{
    const char *q = p;
    while (q < P->end && is_name_char(*q))
        q++;
    if (q == p)
        return 0;
    while (q < P->end && (*q == ' ' || *q == '\t'))
        q++;
    return P->end - q >= 3 && memcmp(q, "::=", 3) == 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Reads one escape after the backslash at P->p. *cp is a code point
 * (\u, \U) when *is_cp, else a byte.
 */
static int read_escape(parser *P, uint32_t *cp, int *is_cp)
{
    const char *at = P->p;
    P->p++; /* the backslash */
    if (P->p >= P->end)
        return fail_at(P, at, "unfinished escape at the end of the grammar");
    char c = *P->p++;
    *is_cp = 0;
    int digits = 0;
    switch (c) {
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case '0': *cp = 0; return 0;
    case '\\': case '"': case '\'': case '/': case ']': case '[': case '-': case '^':
        *cp = (uint8_t)c;
        return 0;
    case 'x': digits = 2; break;
    case 'u': digits = 4; *is_cp = 1; break;
    case 'U': digits = 8; *is_cp = 1; break;
    default:
        return fail_at(P, at, "unknown escape \\%c", c);
    }
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = P->p < P->end ? hex_value(*P->p) : -1;
        if (h < 0)
            return fail_at(P, at, "\\%c needs %d hex digits", c, digits);
        v = v * 16 + (uint32_t)h;
        P->p++;
    }
    if (*is_cp && (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)))
        return fail_at(P, at, "\\%c%0*X is not a Unicode scalar value", c, digits, v);
    *cp = v;
    return 0;
}

/* ---- Parsing -------------------------------------------------------- */

static int parse_alternates(parser *P, uint32_t r, int nested);

static int parse_literal(parser *P, uint32_t r)
{
    const char *open = P->p++;
    for (;;) {
        if (P->p >= P->end || *P->p == '\n')
            return fail_at(P, open, "unterminated literal");
        char c = *P->p;
        if (c == '"') {
            P->p++;
            return 0;
        }
        uint32_t v;
        int is_cp = 0;
        if (c == '\\') {
            if (read_escape(P, &v, &is_cp) < 0)
                return -1;
        } else {
            v = (uint8_t)c;
            P->p++;
        }
        if (!is_cp || v < 0x80) {
            if (push(P, r, GE_BYTE, v) < 0)
                return -1;
            continue;
        }
        /* A code point: its UTF-8 bytes. */
        uint8_t u[4];
        int n;
        if (v < 0x800) {
            u[0] = (uint8_t)(0xC0 | (v >> 6));
            n = 2;
        } else if (v < 0x10000) {
            u[0] = (uint8_t)(0xE0 | (v >> 12));
            n = 3;
        } else {
            u[0] = (uint8_t)(0xF0 | (v >> 18));
            n = 4;
        }
        for (int i = 1; i < n; i++)
            u[i] = (uint8_t)(0x80 | ((v >> (6 * (n - 1 - i))) & 0x3F));
        for (int i = 0; i < n; i++)
            if (push(P, r, GE_BYTE, u[i]) < 0)
                return -1;
    }
}

/* One member byte of a class, at P->p. */
static int class_byte(parser *P, uint32_t *b)
{
    const char *at = P->p;
    char c = *P->p;
    if (c == '\\') {
        int is_cp;
        if (read_escape(P, b, &is_cp) < 0)
            return -1;
        if (is_cp && *b >= 0x80)
            return fail_at(P, at, "a character class matches one byte; U+%04X is several "
                           "(spell its UTF-8 bytes as a sequence)", *b);
        return 0;
    }
    if ((uint8_t)c >= 0x80)
        return fail_at(P, at, "a character class matches one byte; write bytes >= 0x80 as \\xNN "
                       "(a multi-byte character is a sequence of classes)");
    if (c == '\n')
        return fail_at(P, at, "unterminated character class");
    *b = (uint8_t)c;
    P->p++;
    return 0;
}

static int parse_class(parser *P, uint32_t r)
{
    const char *open = P->p++;
    int negate = 0;
    if (P->p < P->end && *P->p == '^') {
        negate = 1;
        P->p++;
    }
    uint8_t set[32] = {0};
    int any = 0;
    for (;;) {
        if (P->p >= P->end)
            return fail_at(P, open, "unterminated character class");
        if (*P->p == ']')
            break;
        uint32_t lo, hi;
        const char *at = P->p;
        if (class_byte(P, &lo) < 0)
            return -1;
        hi = lo;
        if (P->end - P->p >= 2 && P->p[0] == '-' && P->p[1] != ']') {
            P->p++;
            if (class_byte(P, &hi) < 0)
                return -1;
            if (hi < lo)
                return fail_at(P, at, "range %#x-%#x is backwards", lo, hi);
        }
        for (uint32_t b = lo; b <= hi; b++)
            set[b >> 3] |= (uint8_t)(1u << (b & 7));
        any = 1;
    }
    P->p++; /* ']' */
    if (!any && !negate)
        return fail_at(P, open, "empty character class");
    int count = 0, last = 0;
    for (int b = 0; b < 256; b++) {
        if (negate)
            set[b >> 3] ^= (uint8_t)(1u << (b & 7));
        if ((set[b >> 3] >> (b & 7)) & 1) {
            count++;
            last = b;
        }
    }
    if (count == 0)
        return fail_at(P, open, "character class matches no byte");
    if (count == 1)
        return push(P, r, GE_BYTE, (uint32_t)last);
    uint32_t c;
    if (add_class(P, set, &c) < 0)
        return -1;
    return push(P, r, GE_CLASS, c);
}

static int read_int(parser *P, uint32_t *v)
{
    const char *at = P->p;
    uint64_t x = 0;
    if (P->p >= P->end || *P->p < '0' || *P->p > '9')
        return fail_at(P, at, "expected a number in a repetition {m,n}");
    while (P->p < P->end && *P->p >= '0' && *P->p <= '9') {
        x = x * 10 + (uint64_t)(*P->p - '0');
        if (x > GRAMMAR_REPEAT_MAX)
            return fail_at(P, at, "repetition bound above %d", GRAMMAR_REPEAT_MAX);
        P->p++;
    }
    *v = (uint32_t)x;
    return 0;
}

/* Reads ? * + {m} {m,} {m,n} {,n} at P->p into [min, max]. */
static int read_repeat(parser *P, uint32_t *min, uint32_t *max)
{
    const char *at = P->p;
    char c = *P->p++;
    if (c == '?') { *min = 0; *max = 1; return 0; }
    if (c == '*') { *min = 0; *max = REP_INF; return 0; }
    if (c == '+') { *min = 1; *max = REP_INF; return 0; }
    P->p = skip_space(P, P->p, 0);
    *min = 0;
    if (P->p < P->end && *P->p != ',' && read_int(P, min) < 0)
        return -1;
    P->p = skip_space(P, P->p, 0);
    *max = *min;
    if (P->p < P->end && *P->p == ',') {
        P->p = skip_space(P, P->p + 1, 0);
        *max = REP_INF;
        if (P->p < P->end && *P->p != '}' && read_int(P, max) < 0)
            return -1;
        P->p = skip_space(P, P->p, 0);
    }
    if (P->p >= P->end || *P->p != '}')
        return fail_at(P, at, "expected '}' to close the repetition");
    P->p++;
    if (*max < *min)
        return fail_at(P, at, "repetition {%u,%u} has its maximum below its minimum", *min, *max);
    return 0;
}

/* Rewrites the atom body(r)[a..] as that atom repeated min..max times. */
static int apply_repeat(parser *P, uint32_t r, uint32_t a, uint32_t min, uint32_t max)
{
    uint32_t n_atom = P->rules[r].body.n - a;
    if (n_atom == 0)
        return 0; /* "" repeated is still "" */
    if (n_atom > 1) {
        uint32_t h;
        if (helper_rule(P, &h) < 0)
            return -1;
        for (uint32_t i = 0; i < n_atom; i++)
            if (push(P, h, P->rules[r].body.e[a + i].type, P->rules[r].body.e[a + i].val) < 0)
                return -1;
        if (push(P, h, GE_END, 0) < 0)
            return -1;
        P->rules[r].body.n = a;
        P->n_elems -= n_atom;
        if (push(P, r, GE_REF, h) < 0)
            return -1;
    }
    grammar_elem x = P->rules[r].body.e[a];
    P->rules[r].body.n = a;
    P->n_elems--;
    for (uint32_t i = 0; i < min; i++)
        if (push(P, r, x.type, x.val) < 0)
            return -1;
    if (max == REP_INF) {
        uint32_t s;
        if (helper_rule(P, &s) < 0 || push(P, s, x.type, x.val) < 0 || push(P, s, GE_REF, s) < 0 ||
            push(P, s, GE_ALT, 0) < 0 || push(P, s, GE_END, 0) < 0)
            return -1;
        return push(P, r, GE_REF, s);
    }
    uint32_t prev = 0;
    for (uint32_t k = 1; k <= max - min; k++) {
        uint32_t q;
        if (helper_rule(P, &q) < 0 || push(P, q, x.type, x.val) < 0)
            return -1;
        if (k > 1 && push(P, q, GE_REF, prev) < 0)
            return -1;
        if (push(P, q, GE_ALT, 0) < 0 || push(P, q, GE_END, 0) < 0)
            return -1;
        prev = q;
    }
    if (max > min)
        return push(P, r, GE_REF, prev);
    return 0;
}

/* A sequence of atoms into rule r, up to '|', ')', the end of the rule. */
static int parse_sequence(parser *P, uint32_t r, int nested)
{
    uint32_t atom = UINT32_MAX; /* where the last atom starts in body(r) */
    for (;;) {
        P->p = skip_space(P, P->p, nested);
        if (P->p >= P->end)
            return 0;
        char c = *P->p;
        if (c == '\n') {
            /* Top level: the rule goes on unless a definition or the end follows. */
            const char *q = skip_space(P, P->p, 1);
            if (q >= P->end || starts_rule(P, q))
                return 0;
            P->p = q;
            continue;
        }
        uint32_t start = P->rules[r].body.n;
        if (c == '"') {
            if (parse_literal(P, r) < 0)
                return -1;
        } else if (c == '[') {
            if (parse_class(P, r) < 0)
                return -1;
        } else if (c == '.') {
            P->p++;
            uint8_t all[32];
            memset(all, 0xFF, sizeof all);
            uint32_t k;
            if (add_class(P, all, &k) < 0 || push(P, r, GE_CLASS, k) < 0)
                return -1;
        } else if (c == '(') {
            const char *open = P->p++;
            uint32_t h;
            if (helper_rule(P, &h) < 0 || parse_alternates(P, h, 1) < 0)
                return -1;
            P->p = skip_space(P, P->p, 1);
            if (P->p >= P->end || *P->p != ')')
                return fail_at(P, open, "'(' is not closed");
            P->p++;
            if (push(P, h, GE_END, 0) < 0 || push(P, r, GE_REF, h) < 0)
                return -1;
        } else if (is_name_char(c)) {
            const char *name = P->p;
            while (P->p < P->end && is_name_char(*P->p))
                P->p++;
            uint32_t ref;
            if (rule_named(P, name, (uint32_t)(P->p - name), name, &ref) < 0 ||
                push(P, r, GE_REF, ref) < 0)
                return -1;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            const char *at = P->p;
            uint32_t min, max;
            if (atom == UINT32_MAX)
                return fail_at(P, at, "'%c' repeats nothing", c);
            if (read_repeat(P, &min, &max) < 0 || apply_repeat(P, r, atom, min, max) < 0)
                return -1;
            continue; /* a repeated atom may be repeated again */
        } else {
            return 0;
        }
        atom = start;
    }
}

static int parse_alternates(parser *P, uint32_t r, int nested)
{
    if (parse_sequence(P, r, nested) < 0)
        return -1;
    while (P->p < P->end && *P->p == '|') {
        P->p = skip_space(P, P->p + 1, 1);
        if (push(P, r, GE_ALT, 0) < 0 || parse_sequence(P, r, nested) < 0)
            return -1;
    }
    return 0;
}

static int parse_rule(parser *P)
{
    const char *name = P->p;
    while (P->p < P->end && is_name_char(*P->p))
        P->p++;
    if (P->p == name)
        return fail_at(P, name, "expected a rule name");
    uint32_t len = (uint32_t)(P->p - name);
    P->p = skip_space(P, P->p, 0);
    if (P->end - P->p < 3 || memcmp(P->p, "::=", 3) != 0)
        return fail_at(P, P->p, "expected '::=' after the rule name \"%.*s\"", (int)len, name);
    uint32_t r;
    if (rule_named(P, name, len, name, &r) < 0)
        return -1;
    if (P->rules[r].defined) {
        unsigned line, col;
        where_of(P, P->rules[r].where, &line, &col);
        return fail_at(P, name, "rule \"%.*s\" is already defined at line %u", (int)len, name, line);
    }
    P->rules[r].defined = 1;
    P->rules[r].where = name;
    P->cur_owner = r;
    P->p = skip_space(P, P->p + 3, 1);
    if (parse_alternates(P, r, 0) < 0 || push(P, r, GE_END, 0) < 0)
        return -1;
    P->p = skip_space(P, P->p, 0);
    if (P->p < P->end && *P->p != '\n') {
        if (*P->p == ')')
            return fail_at(P, P->p, "')' without '('");
        return fail_at(P, P->p, "unexpected '%c'", *P->p);
    }
    return 0;
}

/* ---- Checks --------------------------------------------------------- */

static const char *rule_label(const parser *P, uint32_t r, int *len)
{
    const prule *u = &P->rules[P->rules[r].owner];
    *len = (int)u->name_len;
    return u->name;
}

/*
 * Refuses left recursion: a rule that can reach a reference to itself
 * before any byte is read. Edges go from a rule to the rules it references
 * at the start of an alternative, or after a prefix that can match nothing.
 */
static int check_left_recursion(parser *P)
{
    uint32_t n = P->n_rules;
    uint8_t *nullable = calloc(n, 1);
    uint8_t *color = calloc(n, 1);
    uint32_t *stack = malloc((size_t)n * 3 * sizeof *stack);
    int rc = 0;
    if (!nullable || !color || !stack) {
        rc = fail_nomem(P);
        goto out;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t r = 0; r < n; r++) {
            if (nullable[r])
                continue;
            const pvec *b = &P->rules[r].body;
            int alt_null = 1;
            for (uint32_t i = 0; i < b->n; i++) {
                grammar_elem e = b->e[i];
                if (grammar_elem_is_end(e)) {
                    if (alt_null) {
                        nullable[r] = 1;
                        changed = 1;
                        break;
                    }
                    alt_null = 1;
                } else if (e.type != GE_REF || !nullable[e.val]) {
                    alt_null = 0;
                }
            }
        }
    }
    /* Depth-first search; a frame is (rule, next element, whether that
     * element is at the front of its alternative). */
    for (uint32_t root = 0; root < n && rc == 0; root++) {
        if (color[root])
            continue;
        uint32_t sp = 0;
        stack[sp++] = root;
        stack[sp++] = 0;
        stack[sp++] = 1;
        color[root] = 1;
        while (sp) {
            uint32_t r = stack[sp - 3], i = stack[sp - 2], front = stack[sp - 1];
            const pvec *b = &P->rules[r].body;
            uint32_t next = UINT32_MAX;
            while (i < b->n && next == UINT32_MAX) {
                grammar_elem e = b->e[i++];
                if (grammar_elem_is_end(e)) {
                    front = 1;
                    continue;
                }
                if (front && e.type == GE_REF)
                    next = e.val;
                front = front && e.type == GE_REF && nullable[e.val];
            }
            stack[sp - 2] = i;
            stack[sp - 1] = front;
            if (next == UINT32_MAX) {
                color[r] = 2;
                sp -= 3;
                continue;
            }
            if (color[next] == 1) {
                int len;
                const char *name = rule_label(P, next, &len);
                rc = fail_at(P, P->rules[P->rules[next].owner].where,
                             "rule \"%.*s\" is left-recursive: it can come back to itself "
                             "without reading a byte (or repeats something that can be empty)",
                             len, name);
                break;
            }
            if (color[next] == 0) {
                color[next] = 1;
                stack[sp++] = next;
                stack[sp++] = 0;
                stack[sp++] = 1;
            }
        }
    }
out:
    free(nullable);
    free(color);
    free(stack);
    return rc;
}

static int check_rules(parser *P)
{
    for (uint32_t r = 0; r < P->n_rules; r++) {
        const prule *u = &P->rules[r];
        if (!u->defined)
            return fail_at(P, u->where, "rule \"%.*s\" is used but not defined", (int)u->name_len,
                           u->name);
    }
    uint32_t root = UINT32_MAX;
    for (uint32_t r = 0; r < P->n_rules; r++)
        if (P->rules[r].name && P->rules[r].name_len == 4 && memcmp(P->rules[r].name, "root", 4) == 0)
            root = r;
    if (root == UINT32_MAX)
        return fail_at(P, P->text, "the grammar has no rule \"root\" (the start)");
    return check_left_recursion(P);
}

/* ---- Layout --------------------------------------------------------- */

static grammar *lay_out(parser *P)
{
    grammar *g = calloc(1, sizeof *g);
    if (!g)
        return fail_nomem(P), NULL;
    uint32_t n = P->n_rules, n_alts = 0;
    uint32_t *start = malloc(((size_t)n + 1) * sizeof *start);
    g->alt_off = malloc(((size_t)n + 1) * sizeof *g->alt_off);
    g->elems = malloc(((size_t)P->n_elems + 1) * sizeof *g->elems);
    if (!start || !g->alt_off || !g->elems)
        goto nomem;
    uint32_t at = 0;
    for (uint32_t r = 0; r < n; r++) {
        start[r] = at;
        const pvec *b = &P->rules[r].body;
        memcpy(g->elems + at, b->e, (size_t)b->n * sizeof *b->e);
        at += b->n;
        for (uint32_t i = 0; i < b->n; i++)
            n_alts += grammar_elem_is_end(b->e[i]);
    }
    g->n_elems = at;
    g->alts = malloc(((size_t)n_alts + 1) * sizeof *g->alts);
    if (!g->alts)
        goto nomem;
    uint32_t k = 0;
    for (uint32_t r = 0; r < n; r++) {
        g->alt_off[r] = k;
        const pvec *b = &P->rules[r].body;
        g->alts[k++] = start[r];
        for (uint32_t i = 0; i + 1 < b->n; i++)
            if (b->e[i].type == GE_ALT)
                g->alts[k++] = start[r] + i + 1;
    }
    g->alt_off[n] = k;
    g->n_rules = n;
    for (uint32_t r = 0; r < n; r++)
        if (P->rules[r].name && P->rules[r].name_len == 4 && memcmp(P->rules[r].name, "root", 4) == 0)
            g->root = r;
    g->classes = P->classes;
    g->n_classes = P->n_classes;
    P->classes = NULL;
    free(start);
    return g;
nomem:
    free(start);
    grammar_free(g);
    return fail_nomem(P), NULL;
}

grammar *grammar_parse(const char *text, size_t len, sem_err *err)
{
    if (!text && len)
        return sem_err_set(err, SEM_EINVAL, "grammar: no text"), NULL;
    parser P = {.text = text ? text : "", .err = err};
    P.p = P.text;
    P.end = P.text + len;
    grammar *g = NULL;
    P.p = skip_space(&P, P.p, 1);
    while (P.p < P.end && !P.failed) {
        if (parse_rule(&P) < 0)
            break;
        P.p = skip_space(&P, P.p, 1);
    }
    if (!P.failed && check_rules(&P) == 0)
        g = lay_out(&P);
    for (uint32_t r = 0; r < P.n_rules; r++)
        free(P.rules[r].body.e);
    free(P.rules);
    free(P.classes);
    return g;
}

void grammar_free(grammar *g)
{
    if (!g)
        return;
    free(g->elems);
    free(g->alt_off);
    free(g->alts);
    free(g->classes);
    free(g);
}
