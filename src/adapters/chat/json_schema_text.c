/*
 * json_schema_text.c - canonical JSON text as grammar: string characters,
 * literals of values, the any-value rules and keys outside a given set.
 *
 * Canonical is what the chat templates' tojson writes (adapters/template
 * jinja_value.c, Python's json.dumps with ensure_ascii=False): a string is
 * UTF-8 as it is, except '"' and '\' (escaped), \n \r \t \b \f, and the
 * other control characters as \u00XX in lowercase hex; DEL (0x7f) stays
 * raw. U+0000 (\u0000) is left out: jansson refuses it when the output is
 * read back. A grammar class matches one byte, so a character is spelled
 * as its well-formed UTF-8 byte sequences (no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 *
 * Threads: pure functions of their arguments.
 */
#include "json_schema_parts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- grammar text */

void jsg_literal(strbuf *e, const char *s, size_t n)
{
    strbuf_append(e, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '"' || b == '\\') {
            char esc[2] = {'\\', (char)b};
            strbuf_append(e, esc, 2);
        } else if (b >= 0x20 && b < 0x7f) {
            strbuf_append(e, (const char *)&b, 1);
        } else {
            strbuf_printf(e, "\\x%02x", b);
        }
    }
    strbuf_append(e, "\"", 1);
}

void jsg_class(strbuf *e, const unsigned char set[256])
{
    strbuf_append(e, "[", 1);
    for (int b = 0; b < 256;) {
        if (!set[b]) {
            b++;
            continue;
        }
        int end = b;
        while (end + 1 < 256 && set[end + 1])
            end++;
        strbuf_printf(e, "\\x%02x", b);
        if (end > b)
            strbuf_printf(e, "%s\\x%02x", end > b + 1 ? "-" : "", end);
        b = end + 1;
    }
    strbuf_append(e, "]", 1);
}

/* ---------------------------------------------------------------- helper rules */

/* One canonical string character: printable ASCII but '"' and '\', an
 * escape, or a well-formed multi-byte UTF-8 sequence. */
static const char CHAR_BODY[] =
    "[\\x20\\x21\\x23-\\x5b\\x5d-\\x7f]"
    " | \"\\\\\" ([\"\\\\bfnrt] | \"u00\" (\"0\" [1-7bef] | \"1\" [0-9a-f]))"
    " | [\\xc2-\\xdf] [\\x80-\\xbf]"
    " | \"\\xe0\" [\\xa0-\\xbf] [\\x80-\\xbf]"
    " | [\\xe1-\\xec\\xee\\xef] [\\x80-\\xbf]{2}"
    " | \"\\xed\" [\\x80-\\x9f] [\\x80-\\xbf]"
    " | \"\\xf0\" [\\x90-\\xbf] [\\x80-\\xbf]{2}"
    " | [\\xf1-\\xf3] [\\x80-\\xbf]{3}"
    " | \"\\xf4\" [\\x80-\\x8f] [\\x80-\\xbf]{2}";

void jsg_any_string(jsg_ctx *c, strbuf *e)
{
    c->need |= JSG_NEED_STRING | JSG_NEED_CHAR;
    jsg_ref_name(c, e, "string");
}

void jsg_any_value(jsg_ctx *c, strbuf *e)
{
    c->need |= JSG_NEED_VALUE | JSG_NEED_STRING | JSG_NEED_CHAR | JSG_NEED_NUMBER;
    char top[16];
    snprintf(top, sizeof top, "v%d", JSG_VALUE_DEPTH);
    jsg_ref_name(c, e, top);
}

void jsg_string_len(jsg_ctx *c, strbuf *e, int64_t min_len, int64_t max_len)
{
    if (max_len == 0) {
        jsg_literal(e, "\"\"", 2);
        return;
    }
    if (min_len == 0 && max_len < 0) {
        jsg_any_string(c, e);
        return;
    }
    c->need |= JSG_NEED_CHAR;
    strbuf term = {0};
    jsg_ref_name(c, &term, "char");
    strbuf_puts(e, "(\"\\\"\" ");
    jsg_repeat(e, term.data ? term.data : "", min_len, max_len);
    strbuf_puts(e, " \"\\\"\")");
    e->oom |= term.oom;
    strbuf_free(&term);
}

void jsg_repeat(strbuf *e, const char *term, int64_t lo, int64_t hi)
{
    /* x{20000} is x{10000} x{10000}: a fixed count splits without
     * ambiguity; what is left above the fixed part is capped. */
    while (lo > JSG_REPEAT_MAX) {
        strbuf_printf(e, "%s{%d} ", term, JSG_REPEAT_MAX);
        lo -= JSG_REPEAT_MAX;
        hi -= hi >= 0 ? JSG_REPEAT_MAX : 0;
    }
    if (hi > JSG_REPEAT_MAX)
        hi = JSG_REPEAT_MAX;
    if (hi == 0)
        return;
    if (hi < 0 && lo <= 1)
        strbuf_printf(e, "%s%s", term, lo == 0 ? "*" : "+");
    else if (hi < 0)
        strbuf_printf(e, "%s{%lld,}", term, (long long)lo);
    else if (lo == hi && lo == 1)
        strbuf_puts(e, term);
    else if (lo == hi)
        strbuf_printf(e, "%s{%lld}", term, (long long)lo);
    else if (lo == 0 && hi == 1)
        strbuf_printf(e, "%s?", term);
    else
        strbuf_printf(e, "%s{%lld,%lld}", term, (long long)lo, (long long)hi);
}

/* ---------------------------------------------------------------- keys outside a set */

/*
 * The bytes of a canonical string's content, as a DFA: KS_S0 between
 * characters, the others inside one (a UTF-8 sequence, an escape). A key
 * that must differ from the declared ones walks the trie of their bytes
 * and leaves it at the first byte that differs, into "the rest of any
 * key from this DFA state" (rule name-kq-N).
 */
enum {
    KS_S0, /* between characters */
    KS_C1, KS_C2, KS_C3, /* 1, 2, 3 continuation bytes to go */
    KS_E0, KS_ED, KS_F0, KS_F4, /* after the lead bytes with narrow second bytes */
    KS_E, /* after '\' */
    KS_U0, KS_U1, KS_U2, KS_U3A, KS_U3B, /* after \u, \u0, \u00, \u000, \u001 */
    KS_COUNT
};

static int in(int b, int lo, int hi) { return b >= lo && b <= hi; }

static int ks_step(int q, int b)
{
    switch (q) {
    case KS_S0:
        if (b == '\\')
            return KS_E;
        if (in(b, 0x20, 0x7f) && b != '"')
            return KS_S0;
        if (in(b, 0xc2, 0xdf))
            return KS_C1;
        if (b == 0xe0)
            return KS_E0;
        if (b == 0xed)
            return KS_ED;
        if (in(b, 0xe1, 0xef))
            return KS_C2;
        if (b == 0xf0)
            return KS_F0;
        if (in(b, 0xf1, 0xf3))
            return KS_C3;
        return b == 0xf4 ? KS_F4 : -1;
    case KS_C1: return in(b, 0x80, 0xbf) ? KS_S0 : -1;
    case KS_C2: return in(b, 0x80, 0xbf) ? KS_C1 : -1;
    case KS_C3: return in(b, 0x80, 0xbf) ? KS_C2 : -1;
    case KS_E0: return in(b, 0xa0, 0xbf) ? KS_C1 : -1;
    case KS_ED: return in(b, 0x80, 0x9f) ? KS_C1 : -1;
    case KS_F0: return in(b, 0x90, 0xbf) ? KS_C2 : -1;
    case KS_F4: return in(b, 0x80, 0x8f) ? KS_C2 : -1;
    case KS_E:
        if (b == 'u')
            return KS_U0;
        return b && strchr("\"\\bfnrt", b) ? KS_S0 : -1;
    case KS_U0: return b == '0' ? KS_U1 : -1;
    case KS_U1: return b == '0' ? KS_U2 : -1;
    case KS_U2: return b == '0' ? KS_U3A : b == '1' ? KS_U3B : -1;
    case KS_U3A: return b && strchr("1234567bef", b) ? KS_S0 : -1;
    case KS_U3B: return b && strchr("0123456789abcdef", b) ? KS_S0 : -1;
    default: return -1;
    }
}

/* What completes the character under way in each state. */
static const char *const KS_REST[KS_COUNT] = {
    [KS_S0] = "",
    [KS_C1] = "[\\x80-\\xbf] ",
    [KS_C2] = "[\\x80-\\xbf]{2} ",
    [KS_C3] = "[\\x80-\\xbf]{3} ",
    [KS_E0] = "[\\xa0-\\xbf] [\\x80-\\xbf] ",
    [KS_ED] = "[\\x80-\\x9f] [\\x80-\\xbf] ",
    [KS_F0] = "[\\x90-\\xbf] [\\x80-\\xbf]{2} ",
    [KS_F4] = "[\\x80-\\x8f] [\\x80-\\xbf]{2} ",
    [KS_E] = "([\"\\\\bfnrt] | \"u00\" (\"0\" [1-7bef] | \"1\" [0-9a-f])) ",
    [KS_U0] = "\"00\" (\"0\" [1-7bef] | \"1\" [0-9a-f]) ",
    [KS_U1] = "\"0\" (\"0\" [1-7bef] | \"1\" [0-9a-f]) ",
    [KS_U2] = "(\"0\" [1-7bef] | \"1\" [0-9a-f]) ",
    [KS_U3A] = "[1-7bef] ",
    [KS_U3B] = "[0-9a-f] ",
};

typedef struct key_node {
    int first_child, next_sibling; /* indices, -1: none */
    unsigned char byte;            /* the byte leading here from the parent */
    int terminal;                  /* a declared key ends here */
} key_node;

typedef struct key_trie {
    key_node *nodes;
    size_t n, cap;
} key_trie;

static int trie_child(key_trie *t, int parent, unsigned char b)
{
    for (int ch = t->nodes[parent].first_child; ch >= 0; ch = t->nodes[ch].next_sibling)
        if (t->nodes[ch].byte == b)
            return ch;
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        key_node *nodes = realloc(t->nodes, cap * sizeof *nodes);
        if (!nodes)
            return -1;
        t->nodes = nodes;
        t->cap = cap;
    }
    int id = (int)t->n++;
    t->nodes[id] = (key_node){.first_child = -1, .next_sibling = t->nodes[parent].first_child,
                              .byte = b};
    t->nodes[parent].first_child = id;
    return id;
}

static void key_node_expr(jsg_ctx *c, const key_trie *t, int node, int q, strbuf *e)
{
    const key_node *n = &t->nodes[node];
    unsigned char child_byte[256] = {0};
    int alts = 0;
    strbuf_append(e, "(", 1);
    if (q == KS_S0 && !n->terminal) {
        strbuf_puts(e, "\"\\\"\"");
        alts++;
    }
    int ascii_children = 1; /* then other characters may be any non-ASCII one */
    for (int ch = n->first_child; ch >= 0; ch = t->nodes[ch].next_sibling) {
        unsigned char b = t->nodes[ch].byte;
        child_byte[b] = 1;
        ascii_children &= ks_step(q, b) == KS_S0;
        if (alts++)
            strbuf_puts(e, " | ");
        jsg_literal(e, (const char *)&b, 1);
        strbuf_append(e, " ", 1);
        key_node_expr(c, t, ch, ks_step(q, b), e);
    }
    int last_state = KS_COUNT;
    if (q == KS_S0 && ascii_children)
        last_state = KS_S0 + 1; /* the rest: name-kq-x */
    for (int r = 0; r < last_state; r++) {
        unsigned char set[256] = {0};
        int any = 0;
        for (int b = 0; b < 256; b++)
            if (!child_byte[b] && ks_step(q, b) == r)
                set[b] = 1, any = 1;
        if (!any)
            continue;
        if (alts++)
            strbuf_puts(e, " | ");
        jsg_class(e, set);
        char suffix[16];
        snprintf(suffix, sizeof suffix, "kq-%d", r);
        strbuf_append(e, " ", 1);
        jsg_ref_name(c, e, suffix);
        c->keyrest_states |= 1u << r;
        c->need |= JSG_NEED_KEYREST | JSG_NEED_CHAR;
    }
    if (last_state != KS_COUNT) {
        strbuf_puts(e, alts++ ? " | " : "");
        jsg_ref_name(c, e, "kq-x");
        c->keyrest_states |= (1u << KS_COUNT) - 2u; /* all but KS_S0 */
        c->keyrest_states |= 1u << KS_COUNT;
        c->need |= JSG_NEED_KEYREST | JSG_NEED_CHAR;
    }
    strbuf_append(e, ")", 1);
}

sem_status jsg_key_not_in(jsg_ctx *c, strbuf *e, const char *const *keys, size_t n)
{
    if (n == 0) {
        jsg_any_string(c, e);
        return SEM_OK;
    }
    key_trie t = {.nodes = malloc(64 * sizeof(key_node)), .n = 1, .cap = 64};
    strbuf esc = {0};
    if (!t.nodes)
        return SEM_ENOMEM;
    t.nodes[0] = (key_node){.first_child = -1, .next_sibling = -1};
    sem_status st = SEM_OK;
    for (size_t k = 0; k < n && st == SEM_OK; k++) {
        strbuf_truncate(&esc, 0);
        json_write_string(&esc, keys[k], strlen(keys[k]));
        if (esc.oom) {
            st = SEM_ENOMEM;
            break;
        }
        int node = 0;
        for (size_t i = 1; i + 1 < esc.len && node >= 0; i++) /* inside the quotes */
            node = trie_child(&t, node, (unsigned char)esc.data[i]);
        if (node < 0)
            st = SEM_ENOMEM;
        else
            t.nodes[node].terminal = 1;
    }
    if (st == SEM_OK) {
        strbuf_puts(e, "(\"\\\"\" ");
        key_node_expr(c, &t, 0, KS_S0, e);
        strbuf_puts(e, ")");
    }
    strbuf_free(&esc);
    free(t.nodes);
    return st;
}

/* ---------------------------------------------------------------- emitting the helpers */

static void rule_head(jsg_ctx *c, const char *suffix)
{
    strbuf_printf(c->out, "%s-%s ::= ", c->name, suffix);
}

static void emit_number_rules(jsg_ctx *c)
{
    const char *n = c->name;
    strbuf *o = c->out;
    /* Integer part 0 then a fraction of at most 3 leading zeros (0.0001 and
     * up print plainly) and 1..15 significant digits, the last not 0. */
    strbuf_printf(o, "%s-number ::= \"0\" | \"-\"? %s-num-pos\n", n, n);
    strbuf_printf(o,
                  "%s-num-pos ::= \"0.\" \"0\"{0,3} [1-9] ([0-9]{0,13} [1-9])? | [1-9] %s-num-u1\n",
                  n, n);
    /* num-uK: after K integer digits; a fraction may bring the digits to 15. */
    for (int k = 1; k < JSG_SIG_DIGITS; k++) {
        int frac = JSG_SIG_DIGITS - k; /* fraction digits allowed */
        strbuf_printf(o, "%s-num-u%d ::= ([0-9] %s-num-u%d | \".\" ", n, k, n, k + 1);
        if (frac > 1)
            strbuf_printf(o, "[0-9]{0,%d} ", frac - 1);
        strbuf_puts(o, "[1-9])?\n");
    }
    strbuf_printf(o, "%s-num-u%d ::= [0-9]?\n", n, JSG_SIG_DIGITS);
}

static void emit_value_rules(jsg_ctx *c)
{
    const char *n = c->name;
    strbuf *o = c->out;
    strbuf_printf(o, "%s-v0 ::= %s-string | %s-number | \"true\" | \"false\" | \"null\"\n", n, n,
                  n);
    for (int d = 1; d <= JSG_VALUE_DEPTH; d++) {
        strbuf_printf(o,
                      "%s-v%d ::= \"{\" (%s-string \": \" %s-v%d (\", \" %s-string \": \" %s-v%d)*)? "
                      "\"}\" | \"[\" (%s-v%d (\", \" %s-v%d)*)? \"]\" | %s-v0\n",
                      n, d, n, n, d - 1, n, n, d - 1, n, d - 1, n, d - 1, n);
    }
}

void jsg_helpers(jsg_ctx *c)
{
    if (c->need & JSG_NEED_CHAR) {
        rule_head(c, "char");
        strbuf_puts(c->out, CHAR_BODY);
        strbuf_puts(c->out, "\n");
    }
    if (c->need & JSG_NEED_STRING)
        strbuf_printf(c->out, "%s-string ::= \"\\\"\" %s-char* \"\\\"\"\n", c->name, c->name);
    if (c->need & JSG_NEED_INTEGER)
        strbuf_printf(c->out, "%s-integer ::= \"0\" | \"-\"? [1-9] [0-9]{0,15}\n", c->name);
    if (c->need & JSG_NEED_NUMBER)
        emit_number_rules(c);
    if (c->need & JSG_NEED_VALUE)
        emit_value_rules(c);
    if (c->keyrest_states & (1u << KS_COUNT)) {
        /* a key character that is not printable ASCII: its first byte */
        rule_head(c, "kq-x");
        for (int q = KS_S0 + 1; q < KS_COUNT; q++) {
            unsigned char set[256] = {0};
            for (int b = 0; b < 256; b++)
                set[b] = ks_step(KS_S0, b) == q;
            if (!memchr(set, 1, sizeof set))
                continue;
            strbuf_puts(c->out, q > KS_S0 + 1 ? " | " : "");
            jsg_class(c->out, set);
            strbuf_printf(c->out, " %s-kq-%d", c->name, q);
        }
        strbuf_puts(c->out, "\n");
    }
    for (int q = 0; q < KS_COUNT; q++) {
        if (!(c->keyrest_states & (1u << q)))
            continue;
        strbuf_printf(c->out, "%s-kq-%d ::= %s%s-char* \"\\\"\"\n", c->name, q, KS_REST[q],
                      c->name);
    }
}
