/*
 * jinja_parser.c - lexer and recursive-descent parser for the Jinja subset.
 *
 * Lexing follows Jinja2's lexer with the environment HF transformers and
 * llama.cpp use for chat templates:
 *   - trim_blocks: the first newline after a block or comment tag is removed;
 *   - lstrip_blocks: spaces and tabs from the start of a line up to a block
 *     or comment tag are removed;
 *   - `{%-`, `-%}` (and the same on `{{ }}`, `{# #}`) strip all whitespace
 *     before/after the tag, `{%+` and `+%}` turn the two rules above off;
 *   - one trailing newline of the source is dropped (keep_trailing_newline
 *     is false); "\r\n" and "\r" read as "\n".
 * A tag ends at `}}` / `%}` only outside brackets, as in Jinja2.
 *
 * The parser follows Jinja2's grammar and operator precedence (lowest
 * first): `x if c else y`, or, and, not, comparisons and (not) in,
 * + -, ~, * / // %, **, unary - +, then postfix .attr [index] [a:b:c] (call)
 * with | filters and `is` tests binding tighter than any binary operator.
 * Nesting is limited to JINJA_MAX_NESTING so no input can exhaust the stack.
 *
 * Errors name the line and column and what was expected; the parser stops
 * at the first one. All memory goes to the tree's arena (freed on error).
 */
#include "jinja_ast.h"
#include "adapters/text/unicode.h"
#include "base/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- tokens */

typedef enum ttype {
    T_TEXT,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
    T_EOF
} ttype;

typedef struct tok {
    ttype t;
    size_t pos; /* byte offset in the normalised source */
    const char *s; /* T_TEXT, T_NAME, T_STRING (decoded), T_OP */
    size_t len;
    int64_t i;
    double f;
} tok;

typedef struct parser {
    jarena *arena;
    sem_err *err;
    bool failed;
    const char *src; /* normalised source */
    size_t n;
    size_t *line_starts;
    size_t n_lines;
    tok *toks;
    size_t n_toks, cap_toks;
    size_t i;       /* current token */
    int depth;      /* expression and block nesting */
    int loop_depth; /* enclosing for loops (for break / continue) */
} parser;

static void where(const parser *P, size_t pos, uint32_t *line, uint32_t *col)
{
    size_t lo = 0, hi = P->n_lines;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (P->line_starts[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    *line = (uint32_t)(lo + 1);
    *col = (uint32_t)(pos - P->line_starts[lo] + 1);
}

static int perr(parser *P, size_t pos, sem_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(parser *P, size_t pos, sem_status st, const char *fmt, ...)
{
    if (P->failed)
        return -1;
    P->failed = true;
    char msg[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint32_t line, col;
    where(P, pos, &line, &col);
    sem_err_set(P->err, st, "template line %u, column %u: %s", line, col, msg);
    return -1;
}

static int nomem(parser *P)
{
    if (P->failed)
        return -1;
    P->failed = true;
    sem_err_set(P->err, SEM_ENOMEM, "out of memory parsing the template");
    return -1;
}

/* ---------------------------------------------------------------- lexer */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static int push_tok(parser *P, tok t)
{
    if (P->n_toks == P->cap_toks) {
        size_t cap = P->cap_toks ? P->cap_toks * 2 : 256;
        tok *nt = realloc(P->toks, cap * sizeof *nt);
        if (!nt)
            return nomem(P);
        P->toks = nt;
        P->cap_toks = cap;
    }
    P->toks[P->n_toks++] = t;
    return 0;
}

static int push_simple(parser *P, ttype t, size_t pos)
{
    return push_tok(P, (tok){.t = t, .pos = pos});
}

/* Appends the UTF-8 form of cp. */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD; /* a lone surrogate escape has no UTF-8 form */
    return utf8_encode(cp, (uint8_t *)o);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads `count` hex digits at s; -1 when they are not all hex. */
static int64_t read_hex(const char *s, size_t avail, int count)
{
    if (avail < (size_t)count)
        return -1;
    int64_t v = 0;
    for (int k = 0; k < count; k++) {
        int h = hexval(s[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Lexes a string literal at P->src[pos] (a quote), decoding Python escapes. */
static int lex_string(parser *P, size_t *pos)
{
    size_t start = *pos;
    char q = P->src[start];
    size_t i = start + 1;
    while (i < P->n && P->src[i] != q) {
        if (P->src[i] == '\\' && i + 1 < P->n)
            i++;
        i++;
    }
    if (i >= P->n)
        return perr(P, start, SEM_EINVAL, "unterminated string literal");
    size_t end = i; /* the closing quote */
    char *out = jarena_alloc(P->arena, end - start + 1);
    if (!out)
        return nomem(P);
    size_t o = 0;
    uint32_t pending_hi = 0; /* a \uD800-\uDBFF waiting for its low half */
    for (size_t k = start + 1; k < end; k++) {
        char c = P->src[k];
        if (c != '\\') {
            if (pending_hi) {
                o += put_utf8(out + o, 0xFFFD);
                pending_hi = 0;
            }
            out[o++] = c;
            continue;
        }
        char e = P->src[++k];
        int64_t cp = -1;
        switch (e) {
        case 'n': cp = '\n'; break;
        case 't': cp = '\t'; break;
        case 'r': cp = '\r'; break;
        case 'a': cp = '\a'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'v': cp = '\v'; break;
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case '\n': continue; /* line continuation */
        case 'x':
            cp = read_hex(P->src + k + 1, end - k - 1, 2);
            if (cp >= 0)
                k += 2;
            break;
        case 'u':
            cp = read_hex(P->src + k + 1, end - k - 1, 4);
            if (cp >= 0)
                k += 4;
            break;
        case 'U':
            cp = read_hex(P->src + k + 1, end - k - 1, 8);
            if (cp >= 0)
                k += 8;
            break;
        default:
            if (e >= '0' && e <= '7') {
                cp = e - '0';
                for (int d = 0; d < 2 && k + 1 < end && P->src[k + 1] >= '0' && P->src[k + 1] <= '7'; d++)
                    cp = cp * 8 + (P->src[++k] - '0');
            }
            break;
        }
        if (cp < 0) {
            if (e == 'x' || e == 'u' || e == 'U')
                return perr(P, k - 1, SEM_EINVAL, "malformed \\%c escape in a string literal", e);
            /* Python keeps unknown escapes as they are. */
            out[o++] = '\\';
            out[o++] = e;
            continue;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (pending_hi)
                o += put_utf8(out + o, 0xFFFD);
            pending_hi = (uint32_t)cp;
            continue;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF && pending_hi) {
            cp = 0x10000 + ((pending_hi - 0xD800) << 10) + ((uint32_t)cp - 0xDC00);
            pending_hi = 0;
        } else if (pending_hi) {
            o += put_utf8(out + o, 0xFFFD);
            pending_hi = 0;
        }
        o += put_utf8(out + o, (uint32_t)cp);
    }
    if (pending_hi)
        o += put_utf8(out + o, 0xFFFD);
    out[o] = '\0';
    *pos = end + 1;
    return push_tok(P, (tok){.t = T_STRING, .pos = start, .s = out, .len = o});
}

static int lex_number(parser *P, size_t *pos)
{
    size_t start = *pos, i = start;
    bool is_float = false;
    while (i < P->n && (is_digit(P->src[i]) || P->src[i] == '_'))
        i++;
    if (i + 1 < P->n && P->src[i] == '.' && is_digit(P->src[i + 1])) {
        is_float = true;
        i++;
        while (i < P->n && (is_digit(P->src[i]) || P->src[i] == '_'))
            i++;
    }
    if (i < P->n && (P->src[i] == 'e' || P->src[i] == 'E')) {
        size_t j = i + 1;
        if (j < P->n && (P->src[j] == '+' || P->src[j] == '-'))
            j++;
        if (j < P->n && is_digit(P->src[j])) {
            is_float = true;
            i = j;
            while (i < P->n && is_digit(P->src[i]))
                i++;
        }
    }
    char buf[64];
    size_t b = 0;
    for (size_t k = start; k < i; k++)
        if (P->src[k] != '_') {
            if (b + 1 >= sizeof buf)
                return perr(P, start, SEM_EINVAL, "number literal is too long");
            buf[b++] = P->src[k];
        }
    buf[b] = '\0';
    tok t = {.t = is_float ? T_FLOAT : T_INT, .pos = start};
    errno = 0;
    if (is_float)
        t.f = strtod(buf, NULL);
    else
        t.i = strtoll(buf, NULL, 10);
    if (errno == ERANGE && !is_float)
        return perr(P, start, SEM_EINVAL, "integer literal %s does not fit in 64 bits", buf);
    *pos = i;
    return push_tok(P, t);
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char OPS1[] = "+-*/%~<>=()[]{},.:|";

/* Lexes the inside of a {{ }} or {% %} tag up to its end; returns the end
 * modifier ('-', '+' or 0) in *mod. */
static int lex_tag(parser *P, size_t *pos, bool var, size_t open_pos, char *mod)
{
    int brackets = 0;
    size_t i = *pos;
    const char *end = var ? "}}" : "%}";
    for (;;) {
        while (i < P->n && is_space(P->src[i]))
            i++;
        if (i >= P->n)
            return perr(P, open_pos, SEM_EINVAL, "unterminated %s tag: no closing '%s'",
                        var ? "{{ ... }}" : "{% ... %}", end);
        const char *s = P->src + i;
        size_t left = P->n - i;
        if (brackets == 0) {
            if ((s[0] == '-' || s[0] == '+') && left >= 3 && s[1] == end[0] && s[2] == end[1]) {
                *mod = s[0];
                *pos = i + 3;
                return push_simple(P, var ? T_VAR_END : T_BLOCK_END, i);
            }
            if (left >= 2 && s[0] == end[0] && s[1] == end[1]) {
                *mod = 0;
                *pos = i + 2;
                return push_simple(P, var ? T_VAR_END : T_BLOCK_END, i);
            }
        }
        if (!var && left >= 2 && s[0] == '%' && s[1] == '}')
            break; /* '%}' inside brackets: an unclosed bracket */
        if (is_name_start(s[0])) {
            size_t j = i + 1;
            while (j < P->n && is_name_char(P->src[j]))
                j++;
            if (push_tok(P, (tok){.t = T_NAME, .pos = i, .s = s, .len = j - i}) != 0)
                return -1;
            i = j;
            continue;
        }
        if (is_digit(s[0])) {
            if (lex_number(P, &i) != 0)
                return -1;
            continue;
        }
        if (s[0] == '\'' || s[0] == '"') {
            if (lex_string(P, &i) != 0)
                return -1;
            continue;
        }
        size_t oplen = 0;
        for (size_t k = 0; k < sizeof OPS2 / sizeof *OPS2; k++)
            if (left >= 2 && s[0] == OPS2[k][0] && s[1] == OPS2[k][1])
                oplen = 2;
        if (!oplen && strchr(OPS1, s[0]) && s[0] != '\0')
            oplen = 1;
        if (!oplen) {
            if ((unsigned char)s[0] >= 0x20 && (unsigned char)s[0] < 0x7F)
                return perr(P, i, SEM_EINVAL, "unexpected character '%c' in a tag", s[0]);
            return perr(P, i, SEM_EINVAL, "unexpected byte 0x%02x in a tag", (unsigned char)s[0]);
        }
        if (s[0] == '(' || s[0] == '[' || s[0] == '{')
            brackets++;
        else if ((s[0] == ')' || s[0] == ']' || s[0] == '}') && brackets > 0)
            brackets--;
        if (push_tok(P, (tok){.t = T_OP, .pos = i, .s = s, .len = oplen}) != 0)
            return -1;
        i += oplen;
    }
    return perr(P, i, SEM_EINVAL, "unclosed bracket before '%%}'");
}

/* lstrip_blocks: drops the spaces between the start of the line and a block
 * tag when nothing else is on that part of the line. [ts, *te) is the text. */
static void lstrip_line(const parser *P, size_t ts, size_t *te)
{
    size_t lp = *te;
    while (lp > ts && P->src[lp - 1] != '\n')
        lp--;
    bool at_line_start = lp > ts || ts == 0 || P->src[ts - 1] == '\n';
    if (!at_line_start)
        return;
    for (size_t k = lp; k < *te; k++)
        if (!is_space(P->src[k]))
            return;
    *te = lp;
}

static int emit_text(parser *P, size_t ts, size_t te)
{
    if (te <= ts)
        return 0;
    return push_tok(P, (tok){.t = T_TEXT, .pos = ts, .s = P->src + ts, .len = te - ts});
}

/* At P->src[i] (just after "{%" and a modifier), is this `raw %}`? Sets
 * *after to the position after the tag and *mod to its end modifier. */
static bool match_word_tag(const parser *P, size_t i, const char *word, size_t *after, char *mod)
{
    while (i < P->n && is_space(P->src[i]))
        i++;
    size_t wl = strlen(word);
    if (P->n - i < wl || memcmp(P->src + i, word, wl) != 0)
        return false;
    i += wl;
    if (i < P->n && is_name_char(P->src[i]))
        return false;
    while (i < P->n && is_space(P->src[i]))
        i++;
    *mod = 0;
    if (i < P->n && (P->src[i] == '-' || P->src[i] == '+'))
        *mod = P->src[i++];
    if (P->n - i < 2 || P->src[i] != '%' || P->src[i + 1] != '}')
        return false;
    *after = i + 2;
    return true;
}

static int lex(parser *P)
{
    size_t pos = 0;
    bool strip_next = false;   /* the previous tag ended with '-' */
    bool trim_newline = false; /* the previous block tag ended plainly (trim_blocks) */
    for (;;) {
        size_t ts = pos, t = pos;
        while (t + 1 < P->n && !(P->src[t] == '{' && (P->src[t + 1] == '{' || P->src[t + 1] == '%' ||
                                                       P->src[t + 1] == '#')))
            t++;
        if (t + 1 >= P->n)
            t = P->n;
        if (strip_next) {
            while (ts < t && is_space(P->src[ts]))
                ts++;
        } else if (trim_newline && ts < t && P->src[ts] == '\n') {
            ts++;
        }
        size_t te = t;
        char kind = t < P->n ? P->src[t + 1] : 0;
        char smod = (t + 2 < P->n && (P->src[t + 2] == '-' || P->src[t + 2] == '+')) ? P->src[t + 2] : 0;
        if (t < P->n) {
            if (smod == '-') {
                while (te > ts && is_space(P->src[te - 1]))
                    te--;
            } else if (smod != '+' && kind != '{') {
                lstrip_line(P, ts, &te);
            }
        }
        if (emit_text(P, ts, te) != 0)
            return -1;
        if (t >= P->n)
            return push_simple(P, T_EOF, P->n);
        strip_next = trim_newline = false;
        size_t body = t + 2 + (smod ? 1 : 0);

        if (kind == '#') {
            size_t k = body;
            while (k + 1 < P->n && !(P->src[k] == '#' && P->src[k + 1] == '}'))
                k++;
            if (k + 1 >= P->n)
                return perr(P, t, SEM_EINVAL, "unterminated comment: no closing '#}'");
            char emod = (k > body && (P->src[k - 1] == '-' || P->src[k - 1] == '+')) ? P->src[k - 1] : 0;
            strip_next = emod == '-';
            trim_newline = emod == 0;
            pos = k + 2;
            continue;
        }

        size_t after;
        char rmod;
        if (kind == '%' && match_word_tag(P, body, "raw", &after, &rmod)) {
            /* {% raw %} ... {% endraw %}: the text in between is literal. */
            size_t cs = after, k = after;
            size_t end_after = 0;
            char end_smod = 0, end_emod = 0;
            for (; k + 1 < P->n; k++) {
                if (P->src[k] != '{' || P->src[k + 1] != '%')
                    continue;
                size_t b = k + 2;
                end_smod = (b < P->n && (P->src[b] == '-' || P->src[b] == '+')) ? P->src[b] : 0;
                if (match_word_tag(P, b + (end_smod ? 1 : 0), "endraw", &end_after, &end_emod))
                    break;
            }
            if (k + 1 >= P->n)
                return perr(P, t, SEM_EINVAL, "unterminated {%% raw %%}: no {%% endraw %%}");
            size_t ce = k;
            if (rmod == '-')
                while (cs < ce && is_space(P->src[cs]))
                    cs++;
            if (end_smod == '-') {
                while (ce > cs && is_space(P->src[ce - 1]))
                    ce--;
            } else if (end_smod != '+') {
                lstrip_line(P, cs, &ce);
            }
            if (emit_text(P, cs, ce) != 0)
                return -1;
            strip_next = end_emod == '-';
            trim_newline = end_emod == 0;
            pos = end_after;
            continue;
        }

        bool var = kind == '{';
        if (push_simple(P, var ? T_VAR_BEGIN : T_BLOCK_BEGIN, t) != 0)
            return -1;
        char emod = 0;
        pos = body;
        if (lex_tag(P, &pos, var, t, &emod) != 0)
            return -1;
        strip_next = emod == '-';
        trim_newline = !var && emod == 0;
    }
}

/* ---------------------------------------------------------------- parser helpers */

static const tok *cur(const parser *P) { return &P->toks[P->i]; }
static const tok *peek(const parser *P, size_t k)
{
    size_t j = P->i + k;
    return &P->toks[j < P->n_toks ? j : P->n_toks - 1];
}
static void advance(parser *P)
{
    if (P->toks[P->i].t != T_EOF)
        P->i++;
}

static bool tok_is_op(const tok *t, const char *op)
{
    return t->t == T_OP && t->len == strlen(op) && memcmp(t->s, op, t->len) == 0;
}
static bool tok_is_name(const tok *t, const char *name)
{
    return t->t == T_NAME && t->len == strlen(name) && memcmp(t->s, name, t->len) == 0;
}
static bool at_op(const parser *P, const char *op) { return tok_is_op(cur(P), op); }
static bool at_name(const parser *P, const char *name) { return tok_is_name(cur(P), name); }

static bool accept_op(parser *P, const char *op)
{
    if (!at_op(P, op))
        return false;
    advance(P);
    return true;
}

static bool accept_name(parser *P, const char *name)
{
    if (!at_name(P, name))
        return false;
    advance(P);
    return true;
}

/* Text describing a token for "expected X, found Y" messages. */
static const char *describe(const tok *t, char *buf, size_t cap)
{
    switch (t->t) {
    case T_TEXT:
        return "template text";
    case T_VAR_BEGIN:
        return "'{{'";
    case T_VAR_END:
        return "'}}'";
    case T_BLOCK_BEGIN:
        return "'{%'";
    case T_BLOCK_END:
        return "'%}'";
    case T_EOF:
        return "the end of the template";
    case T_STRING:
        return "a string";
    case T_INT:
    case T_FLOAT:
        return "a number";
    case T_NAME:
    case T_OP:
        snprintf(buf, cap, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->s);
        return buf;
    }
    return "a token";
}

static int expected(parser *P, const char *what)
{
    char buf[64];
    return perr(P, cur(P)->pos, SEM_EINVAL, "expected %s, found %s", what,
                describe(cur(P), buf, sizeof buf));
}

static int expect_op(parser *P, const char *op)
{
    if (accept_op(P, op))
        return 0;
    char what[16];
    snprintf(what, sizeof what, "'%s'", op);
    return expected(P, what);
}

static int expect_block_end(parser *P, const char *stmt)
{
    if (cur(P)->t == T_BLOCK_END) {
        advance(P);
        return 0;
    }
    char buf[64], what[96];
    snprintf(what, sizeof what, "'%%}' to end the {%% %s %%} tag, found %s", stmt,
             describe(cur(P), buf, sizeof buf));
    return perr(P, cur(P)->pos, SEM_EINVAL, "expected %s", what);
}

static jnode *node(parser *P, jnode_kind kind, size_t pos)
{
    jnode *nd = jarena_zalloc(P->arena, sizeof *nd);
    if (!nd) {
        nomem(P);
        return NULL;
    }
    nd->kind = kind;
    where(P, pos, &nd->line, &nd->col);
    return nd;
}

/* A growable array of nodes in the arena. */
typedef struct nodes {
    jnode **v;
    size_t n, cap;
} nodes;

static int nodes_push(parser *P, nodes *ns, jnode *nd)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 4;
        jnode **v = jarena_alloc(P->arena, cap * sizeof *v);
        if (!v)
            return nomem(P);
        if (ns->n)
            memcpy(v, ns->v, ns->n * sizeof *v);
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = nd;
    return 0;
}

static int enter(parser *P)
{
    if (++P->depth > JINJA_MAX_NESTING)
        return perr(P, cur(P)->pos, SEM_EINVAL, "expressions or blocks nested deeper than %d levels",
                    JINJA_MAX_NESTING);
    return 0;
}
static void leave(parser *P) { P->depth--; }

static const char *name_dup(parser *P, const tok *t)
{
    char *s = jarena_strndup(P->arena, t->s, t->len);
    if (!s)
        nomem(P);
    return s;
}

/* ---------------------------------------------------------------- expressions */

static jnode *parse_expr(parser *P);
static jnode *parse_or(parser *P);
static jnode *parse_unary(parser *P, bool with_filter);
static jnode *parse_tuple(parser *P, bool with_condexpr);

/* ( args ) with keyword arguments as JN_KWARG. The '(' is current. */
static int parse_call_args(parser *P, jnode *call)
{
    nodes args = {0};
    bool seen_kw = false;
    if (expect_op(P, "(") != 0)
        return -1;
    while (!at_op(P, ")")) {
        if (at_op(P, "*") || at_op(P, "**"))
            return perr(P, cur(P)->pos, SEM_EUNSUPPORTED, "*args and **kwargs in calls are not supported");
        jnode *arg;
        if (cur(P)->t == T_NAME && tok_is_op(peek(P, 1), "=")) {
            const tok *nt = cur(P);
            arg = node(P, JN_KWARG, nt->pos);
            if (!arg || !(arg->name = name_dup(P, nt)))
                return -1;
            arg->name_len = nt->len;
            advance(P);
            advance(P);
            if (!(arg->a = parse_expr(P)))
                return -1;
            seen_kw = true;
        } else {
            if (seen_kw)
                return perr(P, cur(P)->pos, SEM_EINVAL, "positional argument after a keyword argument");
            if (!(arg = parse_expr(P)))
                return -1;
        }
        if (nodes_push(P, &args, arg) != 0)
            return -1;
        if (!accept_op(P, ",")) {
            if (!at_op(P, ")"))
                return expected(P, "',' or ')' in the argument list");
            break;
        }
    }
    advance(P); /* ) */
    call->list = args.v;
    call->n = args.n;
    return 0;
}

/* A filter or test name, possibly dotted. */
static const char *parse_dotted_name(parser *P, size_t *len)
{
    if (cur(P)->t != T_NAME) {
        expected(P, "a filter or test name");
        return NULL;
    }
    const char *start = cur(P)->s;
    const tok *last = cur(P);
    advance(P);
    while (at_op(P, ".") && peek(P, 1)->t == T_NAME) {
        advance(P);
        last = cur(P);
        advance(P);
    }
    *len = (size_t)(last->s + last->len - start);
    char *s = jarena_strndup(P->arena, start, *len);
    if (!s)
        nomem(P);
    return s;
}

/* operand | name [(args)]; operand may be NULL (a filter block's input). */
static jnode *parse_filter(parser *P, jnode *operand)
{
    size_t pos = cur(P)->pos;
    jnode *f = node(P, JN_FILTER, pos);
    if (!f)
        return NULL;
    f->a = operand;
    if (!(f->name = parse_dotted_name(P, &f->name_len)))
        return NULL;
    if (at_op(P, "(") && parse_call_args(P, f) != 0)
        return NULL;
    return f;
}

static bool starts_test_arg(const tok *t)
{
    static const char *const stop[] = {"else", "or", "and", "if", "is", "in", "not"};
    switch (t->t) {
    case T_NAME:
        for (size_t k = 0; k < sizeof stop / sizeof *stop; k++)
            if (tok_is_name(t, stop[k]))
                return false;
        return true;
    case T_STRING:
    case T_INT:
    case T_FLOAT:
        return true;
    case T_OP:
        return tok_is_op(t, "[") || tok_is_op(t, "{");
    default:
        return false;
    }
}

static jnode *parse_postfix(parser *P, jnode *nd);
static jnode *parse_primary(parser *P);

/* operand is [not] name [(args) | arg] */
static jnode *parse_test(parser *P, jnode *operand, size_t pos)
{
    jnode *t = node(P, JN_TEST, pos);
    if (!t)
        return NULL;
    t->a = operand;
    t->flag = accept_name(P, "not");
    if (!(t->name = parse_dotted_name(P, &t->name_len)))
        return NULL;
    if (at_op(P, "(")) {
        if (parse_call_args(P, t) != 0)
            return NULL;
    } else if (starts_test_arg(cur(P))) {
        jnode *arg = parse_primary(P);
        if (!arg || !(arg = parse_postfix(P, arg)))
            return NULL;
        t->list = jarena_alloc(P->arena, sizeof *t->list);
        if (!t->list) {
            nomem(P);
            return NULL;
        }
        t->list[0] = arg;
        t->n = 1;
    }
    return t;
}

static jnode *parse_subscript(parser *P, jnode *obj, size_t pos)
{
    /* '[' already consumed */
    jnode *start = NULL, *stop = NULL, *step = NULL;
    if (!at_op(P, ":")) {
        if (!(start = parse_expr(P)))
            return NULL;
        if (!at_op(P, ":")) {
            if (expect_op(P, "]") != 0)
                return NULL;
            jnode *it = node(P, JN_ITEM, pos);
            if (it) {
                it->a = obj;
                it->b = start;
            }
            return it;
        }
    }
    advance(P); /* : */
    if (!at_op(P, "]") && !at_op(P, ":") && !(stop = parse_expr(P)))
        return NULL;
    if (accept_op(P, ":") && !at_op(P, "]") && !(step = parse_expr(P)))
        return NULL;
    if (expect_op(P, "]") != 0)
        return NULL;
    jnode *sl = node(P, JN_SLICE, pos);
    if (sl) {
        sl->a = obj;
        sl->b = start;
        sl->c = stop;
        sl->d = step;
    }
    return sl;
}

static jnode *parse_postfix(parser *P, jnode *nd)
{
    for (;;) {
        size_t pos = cur(P)->pos;
        if (at_op(P, ".")) {
            advance(P);
            const tok *t = cur(P);
            if (t->t == T_NAME) {
                jnode *at = node(P, JN_ATTR, pos);
                if (!at || !(at->name = name_dup(P, t)))
                    return NULL;
                at->name_len = t->len;
                at->a = nd;
                advance(P);
                nd = at;
            } else if (t->t == T_INT) {
                jnode *it = node(P, JN_ITEM, pos), *idx = node(P, JN_LITERAL, t->pos);
                if (!it || !idx)
                    return NULL;
                idx->lit = jv_int(t->i);
                it->a = nd;
                it->b = idx;
                advance(P);
                nd = it;
            } else {
                expected(P, "an attribute name after '.'");
                return NULL;
            }
        } else if (at_op(P, "[")) {
            advance(P);
            if (enter(P) != 0)
                return NULL;
            nd = parse_subscript(P, nd, pos);
            leave(P);
            if (!nd)
                return NULL;
        } else if (at_op(P, "(")) {
            jnode *call = node(P, JN_CALL, pos);
            if (!call)
                return NULL;
            call->a = nd;
            if (parse_call_args(P, call) != 0)
                return NULL;
            nd = call;
        } else {
            return nd;
        }
    }
}

static jnode *parse_filter_expr(parser *P, jnode *nd)
{
    for (;;) {
        size_t pos = cur(P)->pos;
        if (accept_op(P, "|")) {
            if (!(nd = parse_filter(P, nd)))
                return NULL;
        } else if (accept_name(P, "is")) {
            if (!(nd = parse_test(P, nd, pos)))
                return NULL;
        } else if (at_op(P, "(")) {
            jnode *call = node(P, JN_CALL, pos);
            if (!call)
                return NULL;
            call->a = nd;
            if (parse_call_args(P, call) != 0)
                return NULL;
            nd = call;
        } else {
            return nd;
        }
    }
}

static jnode *literal(parser *P, size_t pos, jv v)
{
    jnode *nd = node(P, JN_LITERAL, pos);
    if (nd)
        nd->lit = v;
    return nd;
}

static jnode *parse_list_literal(parser *P, size_t pos)
{
    nodes items = {0};
    while (!at_op(P, "]")) {
        jnode *e = parse_expr(P);
        if (!e || nodes_push(P, &items, e) != 0)
            return NULL;
        if (!accept_op(P, ",")) {
            if (!at_op(P, "]")) {
                expected(P, "',' or ']' in the list");
                return NULL;
            }
            break;
        }
    }
    advance(P);
    jnode *nd = node(P, JN_LIST, pos);
    if (nd) {
        nd->list = items.v;
        nd->n = items.n;
    }
    return nd;
}

static jnode *parse_dict_literal(parser *P, size_t pos)
{
    nodes keys = {0}, vals = {0};
    while (!at_op(P, "}")) {
        jnode *k = parse_expr(P);
        if (!k || expect_op(P, ":") != 0)
            return NULL;
        jnode *v = parse_expr(P);
        if (!v || nodes_push(P, &keys, k) != 0 || nodes_push(P, &vals, v) != 0)
            return NULL;
        if (!accept_op(P, ",")) {
            if (!at_op(P, "}")) {
                expected(P, "',' or '}' in the dict");
                return NULL;
            }
            break;
        }
    }
    advance(P);
    jnode *nd = node(P, JN_DICT, pos);
    if (nd) {
        nd->list = keys.v;
        nd->n = keys.n;
        nd->list2 = vals.v;
        nd->n2 = vals.n;
    }
    return nd;
}

static jnode *parse_primary(parser *P)
{
    const tok *t = cur(P);
    size_t pos = t->pos;
    switch (t->t) {
    case T_NAME: {
        jnode *nd;
        if (tok_is_name(t, "true") || tok_is_name(t, "True"))
            nd = literal(P, pos, jv_bool(true));
        else if (tok_is_name(t, "false") || tok_is_name(t, "False"))
            nd = literal(P, pos, jv_bool(false));
        else if (tok_is_name(t, "none") || tok_is_name(t, "None"))
            nd = literal(P, pos, jv_none());
        else {
            nd = node(P, JN_NAME, pos);
            if (nd && !(nd->name = name_dup(P, t)))
                return NULL;
            if (nd)
                nd->name_len = t->len;
        }
        advance(P);
        return nd;
    }
    case T_STRING: {
        /* Adjacent literals concatenate: "a" "b" is "ab". */
        size_t total = 0, k = P->i;
        while (P->toks[k].t == T_STRING)
            total += P->toks[k++].len;
        char *s = jarena_alloc(P->arena, total + 1);
        if (!s) {
            nomem(P);
            return NULL;
        }
        size_t o = 0;
        while (cur(P)->t == T_STRING) {
            memcpy(s + o, cur(P)->s, cur(P)->len);
            o += cur(P)->len;
            advance(P);
        }
        s[o] = '\0';
        return literal(P, pos, jv_str(s, o));
    }
    case T_INT:
        advance(P);
        return literal(P, pos, jv_int(t->i));
    case T_FLOAT:
        advance(P);
        return literal(P, pos, jv_float(t->f));
    case T_OP:
        if (accept_op(P, "(")) {
            jnode *nd;
            if (at_op(P, ")")) {
                nd = node(P, JN_TUPLE, pos);
            } else {
                nd = parse_tuple(P, true);
            }
            if (!nd || expect_op(P, ")") != 0)
                return NULL;
            return nd;
        }
        if (accept_op(P, "["))
            return parse_list_literal(P, pos);
        if (accept_op(P, "{"))
            return parse_dict_literal(P, pos);
        break;
    default:
        break;
    }
    expected(P, "an expression");
    return NULL;
}

static jnode *parse_unary(parser *P, bool with_filter)
{
    size_t pos = cur(P)->pos;
    if (enter(P) != 0)
        return NULL;
    jnode *nd;
    if (at_op(P, "-") || at_op(P, "+")) {
        bool neg = at_op(P, "-");
        advance(P);
        jnode *operand = parse_unary(P, false);
        nd = operand ? node(P, neg ? JN_NEG : JN_POS, pos) : NULL;
        if (nd)
            nd->a = operand;
    } else {
        nd = parse_primary(P);
    }
    if (nd)
        nd = parse_postfix(P, nd);
    if (nd && with_filter)
        nd = parse_filter_expr(P, nd);
    leave(P);
    return nd;
}

static jnode *binop(parser *P, size_t pos, int op, jnode *l, jnode *r)
{
    jnode *nd = node(P, JN_BINOP, pos);
    if (nd) {
        nd->op = op;
        nd->a = l;
        nd->b = r;
    }
    return nd;
}

static jnode *parse_pow(parser *P)
{
    jnode *l = parse_unary(P, true);
    while (l && at_op(P, "**")) {
        size_t pos = cur(P)->pos;
        advance(P);
        jnode *r = parse_unary(P, true);
        l = r ? binop(P, pos, JOP_POW, l, r) : NULL;
    }
    return l;
}

static jnode *parse_math2(parser *P)
{
    jnode *l = parse_pow(P);
    while (l) {
        size_t pos = cur(P)->pos;
        int op;
        if (at_op(P, "*"))
            op = JOP_MUL;
        else if (at_op(P, "/"))
            op = JOP_DIV;
        else if (at_op(P, "//"))
            op = JOP_FLOORDIV;
        else if (at_op(P, "%"))
            op = JOP_MOD;
        else
            break;
        advance(P);
        jnode *r = parse_pow(P);
        l = r ? binop(P, pos, op, l, r) : NULL;
    }
    return l;
}

static jnode *parse_concat(parser *P)
{
    jnode *l = parse_math2(P);
    while (l && at_op(P, "~")) {
        size_t pos = cur(P)->pos;
        advance(P);
        jnode *r = parse_math2(P);
        l = r ? binop(P, pos, JOP_CONCAT, l, r) : NULL;
    }
    return l;
}

static jnode *parse_math1(parser *P)
{
    jnode *l = parse_concat(P);
    while (l && (at_op(P, "+") || at_op(P, "-"))) {
        size_t pos = cur(P)->pos;
        int op = at_op(P, "+") ? JOP_ADD : JOP_SUB;
        advance(P);
        jnode *r = parse_concat(P);
        l = r ? binop(P, pos, op, l, r) : NULL;
    }
    return l;
}

/* Comparisons chain as in Python: a < b < c is (a < b) and (b < c). */
static jnode *parse_compare(parser *P)
{
    jnode *l = parse_math1(P);
    jnode *result = l;
    jnode *left = l;
    bool chained = false;
    while (left) {
        size_t pos = cur(P)->pos;
        int op;
        if (at_op(P, "=="))
            op = JOP_EQ;
        else if (at_op(P, "!="))
            op = JOP_NE;
        else if (at_op(P, "<"))
            op = JOP_LT;
        else if (at_op(P, "<="))
            op = JOP_LE;
        else if (at_op(P, ">"))
            op = JOP_GT;
        else if (at_op(P, ">="))
            op = JOP_GE;
        else if (at_name(P, "in"))
            op = JOP_IN;
        else if (at_name(P, "not") && tok_is_name(peek(P, 1), "in")) {
            op = JOP_NOTIN;
            advance(P);
        } else
            break;
        advance(P);
        jnode *r = parse_math1(P);
        if (!r)
            return NULL;
        jnode *cmp = binop(P, pos, op, left, r);
        if (!cmp)
            return NULL;
        if (!chained) {
            result = cmp;
            chained = true;
        } else {
            jnode *both = node(P, JN_AND, pos);
            if (!both)
                return NULL;
            both->a = result;
            both->b = cmp;
            result = both;
        }
        left = r;
    }
    return left ? result : NULL;
}

static jnode *parse_not(parser *P)
{
    if (at_name(P, "not")) {
        size_t pos = cur(P)->pos;
        advance(P);
        if (enter(P) != 0)
            return NULL;
        jnode *operand = parse_not(P);
        leave(P);
        jnode *nd = operand ? node(P, JN_NOT, pos) : NULL;
        if (nd)
            nd->a = operand;
        return nd;
    }
    return parse_compare(P);
}

static jnode *parse_and(parser *P)
{
    jnode *l = parse_not(P);
    while (l && at_name(P, "and")) {
        size_t pos = cur(P)->pos;
        advance(P);
        jnode *r = parse_not(P);
        jnode *nd = r ? node(P, JN_AND, pos) : NULL;
        if (nd) {
            nd->a = l;
            nd->b = r;
        }
        l = nd;
    }
    return l;
}

static jnode *parse_or(parser *P)
{
    jnode *l = parse_and(P);
    while (l && at_name(P, "or")) {
        size_t pos = cur(P)->pos;
        advance(P);
        jnode *r = parse_and(P);
        jnode *nd = r ? node(P, JN_OR, pos) : NULL;
        if (nd) {
            nd->a = l;
            nd->b = r;
        }
        l = nd;
    }
    return l;
}

/* x if cond [else y], chaining to the right. */
static jnode *parse_expr(parser *P)
{
    if (enter(P) != 0)
        return NULL;
    jnode *e = parse_or(P);
    while (e && at_name(P, "if")) {
        size_t pos = cur(P)->pos;
        advance(P);
        jnode *cond = parse_or(P);
        if (!cond) {
            e = NULL;
            break;
        }
        jnode *other = NULL;
        if (accept_name(P, "else") && !(other = parse_expr(P))) {
            e = NULL;
            break;
        }
        jnode *nd = node(P, JN_COND, pos);
        if (nd) {
            nd->a = e;
            nd->b = cond;
            nd->c = other;
        }
        e = nd;
    }
    leave(P);
    return e;
}

static bool at_tuple_end(const parser *P)
{
    const tok *t = cur(P);
    return t->t == T_VAR_END || t->t == T_BLOCK_END || t->t == T_EOF || tok_is_op(t, ")") ||
           tok_is_name(t, "if") || tok_is_name(t, "recursive");
}

/* a, b, c (a tuple) or a single expression. */
static jnode *parse_tuple(parser *P, bool with_condexpr)
{
    size_t pos = cur(P)->pos;
    nodes items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n && at_tuple_end(P))
            break;
        jnode *e = with_condexpr ? parse_expr(P) : parse_or(P);
        if (!e || nodes_push(P, &items, e) != 0)
            return NULL;
        if (!accept_op(P, ","))
            break;
        is_tuple = true;
    }
    if (!is_tuple)
        return items.v[0];
    jnode *nd = node(P, JN_TUPLE, pos);
    if (nd) {
        nd->list = items.v;
        nd->n = items.n;
    }
    return nd;
}

/* ---------------------------------------------------------------- statements */

static int parse_body(parser *P, const char *const *stops, const char *opener, size_t open_pos,
                      nodes *out, const char **stopped);

static jnode *name_node(parser *P)
{
    const tok *t = cur(P);
    if (t->t != T_NAME) {
        expected(P, "a variable name");
        return NULL;
    }
    jnode *nd = node(P, JN_NAME, t->pos);
    if (!nd || !(nd->name = name_dup(P, t)))
        return NULL;
    nd->name_len = t->len;
    advance(P);
    return nd;
}

/* Assignment targets: name, name.attr (set only), or names separated by
 * commas, optionally in parentheses. */
static jnode *parse_target(parser *P, bool allow_attr)
{
    size_t pos = cur(P)->pos;
    bool paren = accept_op(P, "(");
    jnode *first = name_node(P);
    if (!first)
        return NULL;
    if (allow_attr && !paren && at_op(P, ".")) {
        advance(P);
        const tok *t = cur(P);
        if (t->t != T_NAME) {
            expected(P, "an attribute name after '.'");
            return NULL;
        }
        jnode *at = node(P, JN_ATTR, t->pos);
        if (!at || !(at->name = name_dup(P, t)))
            return NULL;
        at->name_len = t->len;
        at->a = first;
        advance(P);
        return at;
    }
    if (!at_op(P, ",")) {
        if (paren && expect_op(P, ")") != 0)
            return NULL;
        return first;
    }
    nodes items = {0};
    if (nodes_push(P, &items, first) != 0)
        return NULL;
    while (accept_op(P, ",")) {
        if (cur(P)->t != T_NAME)
            break; /* trailing comma */
        jnode *nd = name_node(P);
        if (!nd || nodes_push(P, &items, nd) != 0)
            return NULL;
    }
    if (paren && expect_op(P, ")") != 0)
        return NULL;
    jnode *tup = node(P, JN_TUPLE, pos);
    if (tup) {
        tup->list = items.v;
        tup->n = items.n;
    }
    return tup;
}

/* The statement name after `{%` is current; ends after the closing `%}`. */
static int expect_end_tag(parser *P, const char *word)
{
    if (!accept_name(P, word))
        return expected(P, word);
    return expect_block_end(P, word);
}

static jnode *parse_if(parser *P, size_t pos)
{
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jnode *first = NULL, *last = NULL;
    size_t branch_pos = pos;
    for (;;) {
        jnode *nd = node(P, JN_IF, branch_pos);
        if (!nd)
            return NULL;
        if (!(nd->a = parse_expr(P)) || expect_block_end(P, "if") != 0)
            return NULL;
        nodes body = {0};
        const char *stopped = NULL;
        if (parse_body(P, stops, "if", pos, &body, &stopped) != 0)
            return NULL;
        nd->list = body.v;
        nd->n = body.n;
        if (last)
            last->d = nd;
        else
            first = nd;
        last = nd;
        branch_pos = cur(P)->pos;
        if (strcmp(stopped, "elif") == 0) {
            advance(P);
            continue;
        }
        if (strcmp(stopped, "else") == 0) {
            advance(P);
            if (expect_block_end(P, "else") != 0)
                return NULL;
            static const char *const end_only[] = {"endif", NULL};
            nodes other = {0};
            if (parse_body(P, end_only, "if", pos, &other, &stopped) != 0)
                return NULL;
            nd->list2 = other.v;
            nd->n2 = other.n;
        }
        if (expect_end_tag(P, "endif") != 0)
            return NULL;
        return first;
    }
}

static jnode *parse_for(parser *P, size_t pos)
{
    jnode *nd = node(P, JN_FOR, pos);
    if (!nd || !(nd->a = parse_target(P, false)))
        return NULL;
    if (!accept_name(P, "in")) {
        expected(P, "'in' in the for loop");
        return NULL;
    }
    if (!(nd->b = parse_tuple(P, false)))
        return NULL;
    if (accept_name(P, "if") && !(nd->c = parse_expr(P)))
        return NULL;
    if (at_name(P, "recursive")) {
        perr(P, cur(P)->pos, SEM_EUNSUPPORTED, "recursive for loops are not supported");
        return NULL;
    }
    if (expect_block_end(P, "for") != 0)
        return NULL;
    static const char *const stops[] = {"else", "endfor", NULL};
    nodes body = {0};
    const char *stopped = NULL;
    P->loop_depth++;
    int rc = parse_body(P, stops, "for", pos, &body, &stopped);
    P->loop_depth--;
    if (rc != 0)
        return NULL;
    nd->list = body.v;
    nd->n = body.n;
    if (strcmp(stopped, "else") == 0) {
        advance(P);
        if (expect_block_end(P, "else") != 0)
            return NULL;
        static const char *const end_only[] = {"endfor", NULL};
        nodes other = {0};
        if (parse_body(P, end_only, "for", pos, &other, &stopped) != 0)
            return NULL;
        nd->list2 = other.v;
        nd->n2 = other.n;
    }
    if (expect_end_tag(P, "endfor") != 0)
        return NULL;
    return nd;
}

/* name [(args)] (| name [(args)])*, the innermost operand NULL: the filters
 * of a set block or {% filter %} block, applied to the captured text. */
static jnode *parse_filter_chain(parser *P)
{
    jnode *chain = parse_filter(P, NULL);
    while (chain && accept_op(P, "|"))
        chain = parse_filter(P, chain);
    return chain;
}

static jnode *parse_set(parser *P, size_t pos)
{
    jnode *target = parse_target(P, true);
    if (!target)
        return NULL;
    if (accept_op(P, "=")) {
        jnode *nd = node(P, JN_SET, pos);
        if (!nd || !(nd->b = parse_tuple(P, true)) || expect_block_end(P, "set") != 0)
            return NULL;
        nd->a = target;
        return nd;
    }
    if (target->kind != JN_NAME) {
        expected(P, "'=' after the assignment target");
        return NULL;
    }
    jnode *nd = node(P, JN_SET_BLOCK, pos);
    if (!nd)
        return NULL;
    nd->a = target;
    if (accept_op(P, "|") && !(nd->c = parse_filter_chain(P)))
        return NULL;
    if (cur(P)->t != T_BLOCK_END) {
        expected(P, "'=' or '%}' after the assignment target");
        return NULL;
    }
    advance(P);
    static const char *const stops[] = {"endset", NULL};
    nodes body = {0};
    const char *stopped = NULL;
    if (parse_body(P, stops, "set", pos, &body, &stopped) != 0 || expect_end_tag(P, "endset") != 0)
        return NULL;
    nd->list = body.v;
    nd->n = body.n;
    return nd;
}

static jnode *parse_macro(parser *P, size_t pos)
{
    jnode *nd = node(P, JN_MACRO, pos);
    if (!nd)
        return NULL;
    const tok *t = cur(P);
    if (t->t != T_NAME) {
        expected(P, "a macro name");
        return NULL;
    }
    if (!(nd->name = name_dup(P, t)))
        return NULL;
    nd->name_len = t->len;
    advance(P);
    if (expect_op(P, "(") != 0)
        return NULL;
    nodes params = {0};
    bool seen_default = false;
    while (!at_op(P, ")")) {
        jnode *param = name_node(P);
        if (!param)
            return NULL;
        if (accept_op(P, "=")) {
            if (!(param->b = parse_expr(P)))
                return NULL;
            seen_default = true;
        } else if (seen_default) {
            perr(P, cur(P)->pos, SEM_EINVAL,
                 "macro parameter '%s' without a default follows one with a default", param->name);
            return NULL;
        }
        if (nodes_push(P, &params, param) != 0)
            return NULL;
        if (!accept_op(P, ",")) {
            if (!at_op(P, ")")) {
                expected(P, "',' or ')' in the macro parameters");
                return NULL;
            }
            break;
        }
    }
    advance(P);
    if (expect_block_end(P, "macro") != 0)
        return NULL;
    static const char *const stops[] = {"endmacro", NULL};
    nodes body = {0};
    const char *stopped = NULL;
    int saved_loops = P->loop_depth;
    P->loop_depth = 0; /* break/continue cannot cross a macro */
    int rc = parse_body(P, stops, "macro", pos, &body, &stopped);
    P->loop_depth = saved_loops;
    if (rc != 0 || expect_end_tag(P, "endmacro") != 0)
        return NULL;
    nd->list = body.v;
    nd->n = body.n;
    nd->list2 = params.v;
    nd->n2 = params.n;
    return nd;
}

static jnode *parse_block_with_body(parser *P, size_t pos, jnode_kind kind, const char *open,
                                    const char *close)
{
    jnode *nd = node(P, kind, pos);
    if (!nd)
        return NULL;
    if (kind == JN_FILTER_BLOCK && !(nd->c = parse_filter_chain(P)))
        return NULL;
    if (expect_block_end(P, open) != 0)
        return NULL;
    const char *stops[] = {close, NULL};
    nodes body = {0};
    const char *stopped = NULL;
    if (parse_body(P, stops, open, pos, &body, &stopped) != 0 || expect_end_tag(P, close) != 0)
        return NULL;
    nd->list = body.v;
    nd->n = body.n;
    return nd;
}

/* The statement name (after `{%`) is current. */
static jnode *parse_statement(parser *P)
{
    const tok *t = cur(P);
    /* Statements are located at their "{%". */
    size_t pos = P->i > 0 && P->toks[P->i - 1].t == T_BLOCK_BEGIN ? P->toks[P->i - 1].pos : t->pos;
    if (t->t != T_NAME) {
        expected(P, "a statement name after '{%'");
        return NULL;
    }
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)(t->len < 31 ? t->len : 31), t->s);
    advance(P);
    if (strcmp(word, "if") == 0)
        return parse_if(P, pos);
    if (strcmp(word, "for") == 0)
        return parse_for(P, pos);
    if (strcmp(word, "set") == 0)
        return parse_set(P, pos);
    if (strcmp(word, "macro") == 0)
        return parse_macro(P, pos);
    if (strcmp(word, "filter") == 0)
        return parse_block_with_body(P, pos, JN_FILTER_BLOCK, "filter", "endfilter");
    if (strcmp(word, "generation") == 0)
        return parse_block_with_body(P, pos, JN_GROUP, "generation", "endgeneration");
    if (strcmp(word, "break") == 0 || strcmp(word, "continue") == 0) {
        if (P->loop_depth == 0) {
            perr(P, pos, SEM_EINVAL, "{%% %s %%} outside a for loop", word);
            return NULL;
        }
        jnode *nd = node(P, word[0] == 'b' ? JN_BREAK : JN_CONTINUE, pos);
        if (!nd || expect_block_end(P, word) != 0)
            return NULL;
        return nd;
    }
    if (strcmp(word, "do") == 0) {
        jnode *nd = node(P, JN_DO, pos);
        if (!nd || !(nd->a = parse_tuple(P, true)) || expect_block_end(P, "do") != 0)
            return NULL;
        return nd;
    }
    static const char *const unsupported[] = {"call",  "include", "import",     "from", "extends",
                                              "block", "with",    "autoescape", "trans"};
    for (size_t k = 0; k < sizeof unsupported / sizeof *unsupported; k++)
        if (strcmp(word, unsupported[k]) == 0) {
            perr(P, pos, SEM_EUNSUPPORTED, "{%% %s %%} is not supported by semantic's template engine",
                 word);
            return NULL;
        }
    if (strncmp(word, "end", 3) == 0 || strcmp(word, "elif") == 0 || strcmp(word, "else") == 0)
        perr(P, pos, SEM_EINVAL, "unexpected {%% %s %%} with no open block it could close", word);
    else
        perr(P, pos, SEM_EINVAL, "unknown statement {%% %s %%}", word);
    return NULL;
}

static int parse_body(parser *P, const char *const *stops, const char *opener, size_t open_pos,
                      nodes *out, const char **stopped)
{
    if (enter(P) != 0)
        return -1;
    for (;;) {
        const tok *t = cur(P);
        if (t->t == T_EOF) {
            leave(P);
            if (!stops)
                return 0;
            uint32_t line, col;
            where(P, open_pos, &line, &col);
            size_t last = 0;
            while (stops[last + 1])
                last++;
            return perr(P, t->pos, SEM_EINVAL,
                        "unexpected end of template: the {%% %s %%} at line %u, column %u is "
                        "never closed (expected {%% %s %%})",
                        opener, line, col, stops[last]);
        }
        jnode *nd = NULL;
        if (t->t == T_TEXT) {
            nd = node(P, JN_TEXT, t->pos);
            if (nd && !(nd->name = jarena_strndup(P->arena, t->s, t->len))) {
                nomem(P);
                nd = NULL;
            }
            if (nd)
                nd->name_len = t->len;
            advance(P);
        } else if (t->t == T_VAR_BEGIN) {
            advance(P);
            nd = node(P, JN_OUTPUT, t->pos);
            if (nd && !(nd->a = parse_tuple(P, true)))
                nd = NULL;
            if (nd && cur(P)->t != T_VAR_END) {
                expected(P, "'}}'");
                nd = NULL;
            }
            if (nd)
                advance(P);
        } else if (t->t == T_BLOCK_BEGIN) {
            const tok *w = peek(P, 1);
            for (size_t k = 0; stops && stops[k] && w->t == T_NAME; k++) {
                if (tok_is_name(w, stops[k])) {
                    advance(P); /* leave the stop word current */
                    *stopped = stops[k];
                    leave(P);
                    return 0;
                }
            }
            advance(P);
            nd = parse_statement(P);
        } else {
            char buf[64];
            perr(P, t->pos, SEM_EINVAL, "unexpected %s", describe(t, buf, sizeof buf));
        }
        if (!nd)
            return -1;
        if (nd->kind == JN_GROUP) {
            for (size_t k = 0; k < nd->n; k++)
                if (nodes_push(P, out, nd->list[k]) != 0)
                    return -1;
        } else if (nodes_push(P, out, nd) != 0) {
            return -1;
        }
    }
}

/* ---------------------------------------------------------------- entry */

jinja_tree *jinja_tree_parse(const char *source, size_t len, sem_err *err)
{
    jinja_tree *tree = calloc(1, sizeof *tree);
    if (!tree) {
        sem_err_set(err, SEM_ENOMEM, "out of memory parsing the template");
        return NULL;
    }
    parser P = {.arena = &tree->arena, .err = err};

    /* Normalise newlines and drop one trailing newline. */
    char *src = jarena_alloc(&tree->arena, len + 1);
    if (!src) {
        nomem(&P);
        goto fail;
    }
    size_t n = 0;
    for (size_t k = 0; k < len; k++) {
        if (source[k] == '\r') {
            src[n++] = '\n';
            if (k + 1 < len && source[k + 1] == '\n')
                k++;
        } else {
            src[n++] = source[k];
        }
    }
    if (n > 0 && src[n - 1] == '\n')
        n--;
    src[n] = '\0';
    P.src = src;
    P.n = n;

    size_t lines = 1;
    for (size_t k = 0; k < n; k++)
        lines += src[k] == '\n';
    P.line_starts = malloc(lines * sizeof *P.line_starts);
    if (!P.line_starts) {
        nomem(&P);
        goto fail;
    }
    P.line_starts[0] = 0;
    P.n_lines = 1;
    for (size_t k = 0; k < n; k++)
        if (src[k] == '\n')
            P.line_starts[P.n_lines++] = k + 1;

    if (lex(&P) != 0)
        goto fail;
    nodes body = {0};
    if (parse_body(&P, NULL, NULL, 0, &body, NULL) != 0)
        goto fail;
    tree->body = body.v;
    tree->n = body.n;
    free(P.toks);
    free(P.line_starts);
    return tree;
fail:
    free(P.toks);
    free(P.line_starts);
    jinja_tree_free(tree);
    return NULL;
}

void jinja_tree_free(jinja_tree *t)
{
    if (!t)
        return;
    jarena_free(&t->arena);
    free(t);
}
