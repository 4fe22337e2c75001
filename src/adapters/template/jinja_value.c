/*
 * jinja_value.c - arena, buffers, and the Python semantics of values:
 * truthiness, ==, <, str(), repr(), json.dumps() and UTF-8 helpers.
 *
 * Every recursive walk (==, <, repr, json) stops at VALUE_MAX_DEPTH levels,
 * so a template that nests a list a million deep cannot overflow the stack:
 * printing shows "[...]" there, JSON fails, == answers false.
 */
#include "jinja_value.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define ARENA_BLOCK_MIN (64u * 1024u)
#define VALUE_MAX_DEPTH 256
#define DICT_INDEX_MIN 16

/* ---------------------------------------------------------------- arena */

struct jarena_block {
    jarena_block *next;
    size_t size, used;
    max_align_t data[]; /* size bytes */
};

void *jarena_alloc(jarena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0)
        n = 16;
    jarena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
        if (n > SIZE_MAX / 2 || (a->limit && a->total + size > a->limit)) {
            a->over_limit = true;
            return NULL;
        }
        b = malloc(sizeof *b + size);
        if (!b) {
            a->over_limit = false;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        /* Keep a partly used head first when the new block is a one-off. */
        if (a->head && size > ARENA_BLOCK_MIN) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        a->total += size;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

void *jarena_zalloc(jarena *a, size_t n)
{
    void *p = jarena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *jarena_strndup(jarena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = jarena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void jarena_free(jarena *a)
{
    jarena_block *b = a->head;
    while (b) {
        jarena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------------------------------------------------------- buffers */

static int jbuf_reserve(jbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->limit && (extra > b->limit || b->len > b->limit - extra)) {
        b->failed = JBUF_OVER_LIMIT;
        return -1;
    }
    if (extra <= b->cap - b->len)
        return 0;
    size_t need = b->len + extra + 1; /* room for a NUL */
    if (need < b->len) {
        b->failed = JBUF_NO_MEMORY;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p;
    if (b->arena) {
        p = jarena_alloc(b->arena, cap);
        if (p && b->len)
            memcpy(p, b->p, b->len);
        if (!p && b->arena->over_limit) {
            b->failed = JBUF_OVER_LIMIT;
            return -1;
        }
    } else {
        p = realloc(b->p, cap);
    }
    if (!p) {
        b->failed = JBUF_NO_MEMORY;
        return -1;
    }
    b->p = p;
    b->cap = cap - 1;
    return 0;
}

int jbuf_put(jbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return b->failed ? -1 : 0;
    if (jbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int jbuf_putc(jbuf *b, char c) { return jbuf_put(b, &c, 1); }

int jbuf_puts(jbuf *b, const char *s) { return jbuf_put(b, s, strlen(s)); }

int jbuf_printf(jbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof tmp)
        return jbuf_put(b, tmp, (size_t)n);
    /* Long output: format again into the buffer itself. */
    if (jbuf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* ---------------------------------------------------------------- containers */

jv_list *jv_list_new(jarena *a, size_t cap)
{
    jv_list *l = jarena_zalloc(a, sizeof *l);
    if (!l)
        return NULL;
    if (cap) {
        if (cap > SIZE_MAX / sizeof(jv))
            return NULL;
        l->items = jarena_alloc(a, cap * sizeof(jv));
        if (!l->items)
            return NULL;
        l->cap = cap;
    }
    return l;
}

int jv_list_push(jarena *a, jv_list *l, jv v)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv))
            return -1;
        jv *items = jarena_alloc(a, cap * sizeof(jv));
        if (!items)
            return -1;
        if (l->len)
            memcpy(items, l->items, l->len * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = v;
    return 0;
}

jv_dict *jv_dict_new(jarena *a, size_t cap)
{
    jv_dict *d = jarena_zalloc(a, sizeof *d);
    if (!d)
        return NULL;
    if (cap) {
        if (cap > SIZE_MAX / (2 * sizeof(jv)))
            return NULL;
        d->keys = jarena_alloc(a, cap * sizeof(jv));
        d->vals = jarena_alloc(a, cap * sizeof(jv));
        if (!d->keys || !d->vals)
            return NULL;
        d->cap = cap;
    }
    return d;
}

/* A hash consistent with ==: 1, 1.0 and True hash alike. */
static uint64_t hash_key(jv k)
{
    uint64_t h;
    switch (k.type) {
    case JV_STR:
        h = 1469598103934665603ull;
        for (size_t i = 0; i < k.len; i++) {
            h ^= (unsigned char)k.u.s[i];
            h *= 1099511628211ull;
        }
        return h;
    case JV_INT:
        h = (uint64_t)k.u.i;
        break;
    case JV_BOOL:
        h = k.u.b;
        break;
    case JV_FLOAT:
        if (k.u.f == floor(k.u.f) && fabs(k.u.f) < 9.2e18) {
            h = (uint64_t)(int64_t)k.u.f;
        } else {
            memcpy(&h, &k.u.f, sizeof h);
        }
        break;
    default:
        h = (uint64_t)k.type; /* unhashable in Python: all collide, == decides */
        break;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void index_insert(jv_dict *d, size_t entry)
{
    size_t mask = d->index_cap - 1;
    size_t slot = (size_t)hash_key(d->keys[entry]) & mask;
    while (d->index[slot])
        slot = (slot + 1) & mask;
    d->index[slot] = (uint32_t)(entry + 1);
}

/* Rebuilds the index for len entries; on failure the dict simply stays
 * unindexed (lookups fall back to a scan). */
static void index_rebuild(jarena *a, jv_dict *d)
{
    size_t cap = 64;
    while (cap < d->len * 4)
        cap *= 2;
    if (d->len >= UINT32_MAX / 4) {
        d->index = NULL;
        return;
    }
    d->index = jarena_zalloc(a, cap * sizeof *d->index);
    if (!d->index)
        return;
    d->index_cap = cap;
    for (size_t i = 0; i < d->len; i++)
        index_insert(d, i);
}

static int dict_append(jarena *a, jv_dict *d, jv key, jv val)
{
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        if (cap > SIZE_MAX / (2 * sizeof(jv)))
            return -1;
        jv *keys = jarena_alloc(a, cap * sizeof(jv));
        jv *vals = jarena_alloc(a, cap * sizeof(jv));
        if (!keys || !vals)
            return -1;
        if (d->len) {
            memcpy(keys, d->keys, d->len * sizeof(jv));
            memcpy(vals, d->vals, d->len * sizeof(jv));
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->len] = key;
    d->vals[d->len] = val;
    d->len++;
    if (d->len >= DICT_INDEX_MIN) {
        if (!d->index || d->len * 2 > d->index_cap)
            index_rebuild(a, d);
        else
            index_insert(d, d->len - 1);
    }
    return 0;
}

int jv_dict_set(jarena *a, jv_dict *d, jv key, jv val)
{
    jv *slot = jv_dict_get(d, key);
    if (slot) {
        *slot = val;
        return 0;
    }
    return dict_append(a, d, key, val);
}

static bool key_is(const jv *k, jv key)
{
    if (key.type == JV_STR)
        return k->type == JV_STR && k->len == key.len && (key.len == 0 || memcmp(k->u.s, key.u.s, key.len) == 0);
    return jv_equal(*k, key);
}

jv *jv_dict_get(const jv_dict *d, jv key)
{
    if (!d)
        return NULL;
    if (d->index && d->len >= DICT_INDEX_MIN) {
        size_t mask = d->index_cap - 1;
        for (size_t slot = (size_t)hash_key(key) & mask; d->index[slot]; slot = (slot + 1) & mask) {
            size_t e = d->index[slot] - 1;
            if (key_is(&d->keys[e], key))
                return &d->vals[e];
        }
        return NULL;
    }
    for (size_t i = 0; i < d->len; i++)
        if (key_is(&d->keys[i], key))
            return &d->vals[i];
    return NULL;
}

jv *jv_dict_get_str(const jv_dict *d, const char *key, size_t len)
{
    return jv_dict_get(d, jv_str(key, len));
}

/* ---------------------------------------------------------------- semantics */

bool jv_is_number(jv v) { return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL; }

double jv_as_double(jv v)
{
    switch (v.type) {
    case JV_INT:
        return (double)v.u.i;
    case JV_FLOAT:
        return v.u.f;
    case JV_BOOL:
        return v.u.b ? 1.0 : 0.0;
    default:
        return 0.0;
    }
}

bool jv_truthy(jv v)
{
    switch (v.type) {
    case JV_UNDEFINED:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v.u.b;
    case JV_INT:
        return v.u.i != 0;
    case JV_FLOAT:
        return v.u.f != 0.0;
    case JV_STR:
        return v.len != 0;
    case JV_LIST:
        return v.u.list->len != 0;
    case JV_DICT:
        return v.u.dict->len != 0;
    default:
        return true;
    }
}

static bool equal_at(jv a, jv b, int depth)
{
    if (depth > VALUE_MAX_DEPTH)
        return false;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT) {
            int64_t x = a.type == JV_BOOL ? a.u.b : a.u.i;
            int64_t y = b.type == JV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return jv_as_double(a) == jv_as_double(b);
    }
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case JV_UNDEFINED:
    case JV_NONE:
        return true;
    case JV_STR:
        return a.len == b.len && (a.len == 0 || memcmp(a.u.s, b.u.s, a.len) == 0);
    case JV_LIST: {
        const jv_list *x = a.u.list, *y = b.u.list;
        if (x->tuple != y->tuple || x->len != y->len)
            return false;
        for (size_t i = 0; i < x->len; i++)
            if (!equal_at(x->items[i], y->items[i], depth + 1))
                return false;
        return true;
    }
    case JV_DICT: {
        const jv_dict *x = a.u.dict, *y = b.u.dict;
        if (x->len != y->len)
            return false;
        for (size_t i = 0; i < x->len; i++) {
            const jv *other = jv_dict_get(y, x->keys[i]);
            if (!other || !equal_at(x->vals[i], *other, depth + 1))
                return false;
        }
        return true;
    }
    case JV_NAMESPACE:
        return a.u.dict == b.u.dict;
    case JV_MACRO:
        return a.u.macro == b.u.macro;
    case JV_FUNC:
        return a.func == b.func;
    case JV_LOOP:
        return a.u.loop == b.u.loop;
    default:
        return false;
    }
}

bool jv_equal(jv a, jv b) { return equal_at(a, b, 0); }

static int compare_at(jv a, jv b, int *cmp, int depth)
{
    if (depth > VALUE_MAX_DEPTH)
        return -1;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT) {
            int64_t x = a.type == JV_BOOL ? a.u.b : a.u.i;
            int64_t y = b.type == JV_BOOL ? b.u.b : b.u.i;
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = jv_as_double(a), y = jv_as_double(b);
            *cmp = x < y ? -1 : x > y;
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        /* UTF-8 byte order is code point order. */
        size_t n = a.len < b.len ? a.len : b.len;
        int c = n ? memcmp(a.u.s, b.u.s, n) : 0;
        if (c == 0)
            c = a.len < b.len ? -1 : a.len > b.len;
        *cmp = c < 0 ? -1 : c > 0;
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST) {
        const jv_list *x = a.u.list, *y = b.u.list;
        size_t n = x->len < y->len ? x->len : y->len;
        for (size_t i = 0; i < n; i++) {
            if (equal_at(x->items[i], y->items[i], depth + 1))
                continue;
            return compare_at(x->items[i], y->items[i], cmp, depth + 1);
        }
        *cmp = x->len < y->len ? -1 : x->len > y->len;
        return 0;
    }
    return -1;
}

int jv_compare(jv a, jv b, int *cmp) { return compare_at(a, b, cmp, 0); }

const char *jv_type_name(jv v)
{
    switch (v.type) {
    case JV_UNDEFINED:
        return "undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        return v.u.list->tuple ? "tuple" : "list";
    case JV_DICT:
        return "dict";
    case JV_NAMESPACE:
        return "namespace";
    case JV_MACRO:
        return "macro";
    case JV_FUNC:
        return "function";
    case JV_LOOP:
        return "LoopContext";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- text */

bool unicode_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---------------------------------------------------------------- str() and repr() */

/* Python's repr(float): the shortest digits that read back to f, in fixed
 * notation for exponents -4..15 and scientific otherwise. */
static int write_float(jbuf *b, double f)
{
    if (isnan(f))
        return jbuf_puts(b, "nan");
    if (isinf(f))
        return jbuf_puts(b, f < 0 ? "-inf" : "inf");
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    while (*p && *p != 'e') {
        if (*p != '.' && nd < sizeof digits - 1)
            digits[nd++] = *p;
        p++;
    }
    int exp = (*p == 'e') ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';

    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd) {
                for (size_t i = (size_t)exp + 1; i < nd; i++)
                    out[o++] = digits[i];
            } else {
                out[o++] = '0';
            }
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                out[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+',
                              exp < 0 ? -exp : exp);
    }
    return jbuf_put(b, out, o);
}

/* Code points Python's str.isprintable() rejects (an approximation: C0/C1
 * controls, the non-space separators and the common format characters). */
static bool unicode_unprintable(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
           (cp >= 0x205F && cp <= 0x2064) || cp == 0x3000 || cp == 0xFEFF ||
           (cp >= 0xD800 && cp <= 0xDFFF);
}

static int write_str_repr(jbuf *b, const char *s, size_t n)
{
    bool has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
    char q = (has_single && !has_double) ? '"' : '\'';
    if (jbuf_putc(b, q) != 0)
        return -1;
    for (size_t i = 0; i < n;) {
        size_t used;
        uint32_t cp = utf8_decode(s + i, n - i, &used);
        int rc;
        if (cp == (uint32_t)(unsigned char)q || cp == '\\') {
            char e[2] = {'\\', (char)cp};
            rc = jbuf_put(b, e, 2);
        } else if (cp == '\n') {
            rc = jbuf_puts(b, "\\n");
        } else if (cp == '\r') {
            rc = jbuf_puts(b, "\\r");
        } else if (cp == '\t') {
            rc = jbuf_puts(b, "\\t");
        } else if (used == 1 && cp >= 0x80) {
            rc = jbuf_printf(b, "\\x%02x", cp); /* an invalid byte */
        } else if (unicode_unprintable(cp)) {
            rc = cp <= 0xFF ? jbuf_printf(b, "\\x%02x", cp) : jbuf_printf(b, "\\u%04x", cp);
        } else {
            rc = jbuf_put(b, s + i, used);
        }
        if (rc != 0)
            return -1;
        i += used;
    }
    return jbuf_putc(b, q);
}

static int write_value(jbuf *b, jv v, bool repr, int depth);

static int write_container(jbuf *b, jv v, int depth)
{
    if (depth > VALUE_MAX_DEPTH)
        return jbuf_puts(b, v.type == JV_LIST ? "[...]" : "{...}");
    if (v.type == JV_LIST) {
        const jv_list *l = v.u.list;
        if (jbuf_putc(b, l->tuple ? '(' : '[') != 0)
            return -1;
        for (size_t i = 0; i < l->len; i++) {
            if (i && jbuf_puts(b, ", ") != 0)
                return -1;
            if (write_value(b, l->items[i], true, depth + 1) != 0)
                return -1;
        }
        if (l->tuple && l->len == 1 && jbuf_putc(b, ',') != 0)
            return -1;
        return jbuf_putc(b, l->tuple ? ')' : ']');
    }
    const jv_dict *d = v.u.dict;
    if (v.type == JV_NAMESPACE && jbuf_puts(b, "<Namespace ") != 0)
        return -1;
    if (jbuf_putc(b, '{') != 0)
        return -1;
    for (size_t i = 0; i < d->len; i++) {
        if (i && jbuf_puts(b, ", ") != 0)
            return -1;
        if (write_value(b, d->keys[i], true, depth + 1) != 0 || jbuf_puts(b, ": ") != 0 ||
            write_value(b, d->vals[i], true, depth + 1) != 0)
            return -1;
    }
    if (jbuf_putc(b, '}') != 0)
        return -1;
    return v.type == JV_NAMESPACE ? jbuf_putc(b, '>') : 0;
}

static int write_value(jbuf *b, jv v, bool repr, int depth)
{
    switch (v.type) {
    case JV_UNDEFINED:
        return 0;
    case JV_NONE:
        return jbuf_puts(b, "None");
    case JV_BOOL:
        return jbuf_puts(b, v.u.b ? "True" : "False");
    case JV_INT:
        return jbuf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        return write_float(b, v.u.f);
    case JV_STR:
        return repr ? write_str_repr(b, v.u.s, v.len) : jbuf_put(b, v.u.s, v.len);
    case JV_LIST:
    case JV_DICT:
    case JV_NAMESPACE:
        return write_container(b, v, depth);
    case JV_MACRO:
        return jbuf_puts(b, "<Macro>");
    case JV_FUNC:
        return jbuf_puts(b, "<built-in function>");
    case JV_LOOP:
        return jbuf_puts(b, "<LoopContext>");
    }
    return 0;
}

int jv_write_str(jbuf *b, jv v) { return write_value(b, v, false, 0); }

int jv_write_repr(jbuf *b, jv v) { return write_value(b, v, true, 0); }

int jv_to_str(jarena *a, jv v, jv *out)
{
    if (v.type == JV_STR) {
        *out = v;
        return 0;
    }
    if (v.type == JV_UNDEFINED) {
        *out = jv_str("", 0);
        return 0;
    }
    jbuf b = {.arena = a};
    if (jv_write_str(&b, v) != 0)
        return -1;
    *out = jv_str(b.p ? b.p : "", b.len);
    return 0;
}

/* ---------------------------------------------------------------- json.dumps */

static int json_str_esc(jbuf *b, const char *s, size_t n, bool ascii)
{
    if (jbuf_putc(b, '"') != 0)
        return -1;
    size_t run = 0; /* start of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[16];
        size_t used = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || (ascii && c == 0x7F)) {
            snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
            esc = ubuf;
        } else if (ascii && c >= 0x80) {
            uint32_t cp = utf8_decode(s + i, n - i, &used);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(ubuf, sizeof ubuf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                         0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", cp);
            }
            esc = ubuf;
        }
        if (esc) {
            if (jbuf_put(b, s + run, i - run) != 0 || jbuf_puts(b, esc) != 0)
                return -1;
            i += used;
            run = i;
        } else {
            i++;
        }
    }
    if (jbuf_put(b, s + run, n - run) != 0)
        return -1;
    return jbuf_putc(b, '"');
}

static int json_newline(jbuf *b, const jv_json_opts *o, int level)
{
    if (o->indent < 0 && !o->indent_str)
        return 0;
    if (jbuf_putc(b, '\n') != 0)
        return -1;
    for (int l = 0; l < level; l++) {
        if (o->indent_str) {
            if (jbuf_put(b, o->indent_str, o->indent_str_len) != 0)
                return -1;
        } else {
            for (int i = 0; i < o->indent; i++)
                if (jbuf_putc(b, ' ') != 0)
                    return -1;
        }
    }
    return 0;
}

static int json_item_sep(jbuf *b, const jv_json_opts *o)
{
    if (o->item_sep)
        return jbuf_put(b, o->item_sep, o->item_sep_len);
    bool indented = o->indent >= 0 || o->indent_str;
    return jbuf_puts(b, indented ? "," : ", ");
}

static int json_value(jbuf *b, jv v, const jv_json_opts *o, int level, sem_err *err);

/* json.dumps turns int, float, bool and None keys into strings. */
static int json_key(jbuf *b, jv k, const jv_json_opts *o, sem_err *err)
{
    switch (k.type) {
    case JV_STR:
        return json_str_esc(b, k.u.s, k.len, o->ensure_ascii);
    case JV_INT:
        return jbuf_printf(b, "\"%lld\"", (long long)k.u.i);
    case JV_BOOL:
        return jbuf_puts(b, k.u.b ? "\"true\"" : "\"false\"");
    case JV_NONE:
        return jbuf_puts(b, "\"null\"");
    case JV_FLOAT: {
        if (jbuf_putc(b, '"') != 0 || write_float(b, k.u.f) != 0)
            return -1;
        return jbuf_putc(b, '"');
    }
    default:
        sem_err_set(err, SEM_EINVAL, "tojson: keys must be str, int, float, bool or None, not %s",
                    jv_type_name(k));
        return -1;
    }
}

/* qsort_r comparator over entry indices of a dict (keys that do not order,
 * e.g. str against int, compare equal). */
static int key_order(const void *x, const void *y, void *dict)
{
    const jv_dict *d = dict;
    int c = 0;
    if (jv_compare(d->keys[*(const size_t *)x], d->keys[*(const size_t *)y], &c) != 0)
        return 0;
    return c;
}

static int json_dict(jbuf *b, const jv_dict *d, const jv_json_opts *o, int level, sem_err *err)
{
    if (d->len == 0)
        return jbuf_puts(b, "{}");
    /* Order of output: insertion order, or sorted by key. */
    size_t stack_idx[64];
    size_t *idx = d->len <= 64 ? stack_idx : malloc(d->len * sizeof *idx);
    if (!idx) {
        sem_err_set(err, SEM_ENOMEM, "tojson: out of memory");
        return -1;
    }
    for (size_t i = 0; i < d->len; i++)
        idx[i] = i;
    if (o->sort_keys)
        qsort_r(idx, d->len, sizeof *idx, key_order, (void *)d);
    int rc = jbuf_putc(b, '{');
    for (size_t i = 0; rc == 0 && i < d->len; i++) {
        if (i)
            rc = json_item_sep(b, o);
        if (rc == 0)
            rc = json_newline(b, o, level + 1);
        if (rc == 0)
            rc = json_key(b, d->keys[idx[i]], o, err);
        if (rc == 0)
            rc = o->key_sep ? jbuf_put(b, o->key_sep, o->key_sep_len) : jbuf_puts(b, ": ");
        if (rc == 0)
            rc = json_value(b, d->vals[idx[i]], o, level + 1, err);
    }
    if (idx != stack_idx)
        free(idx);
    if (rc == 0)
        rc = json_newline(b, o, level);
    return rc == 0 ? jbuf_putc(b, '}') : -1;
}

static int json_value(jbuf *b, jv v, const jv_json_opts *o, int level, sem_err *err)
{
    if (level > VALUE_MAX_DEPTH) {
        sem_err_set(err, SEM_EINVAL, "tojson: value nested deeper than %d levels", VALUE_MAX_DEPTH);
        return -1;
    }
    switch (v.type) {
    case JV_NONE:
        return jbuf_puts(b, "null");
    case JV_BOOL:
        return jbuf_puts(b, v.u.b ? "true" : "false");
    case JV_INT:
        return jbuf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isnan(v.u.f))
            return jbuf_puts(b, "NaN");
        if (isinf(v.u.f))
            return jbuf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        return write_float(b, v.u.f);
    case JV_STR:
        return json_str_esc(b, v.u.s, v.len, o->ensure_ascii);
    case JV_LIST: {
        const jv_list *l = v.u.list;
        if (l->len == 0)
            return jbuf_puts(b, "[]");
        if (jbuf_putc(b, '[') != 0)
            return -1;
        for (size_t i = 0; i < l->len; i++) {
            if (i && json_item_sep(b, o) != 0)
                return -1;
            if (json_newline(b, o, level + 1) != 0 ||
                json_value(b, l->items[i], o, level + 1, err) != 0)
                return -1;
        }
        if (json_newline(b, o, level) != 0)
            return -1;
        return jbuf_putc(b, ']');
    }
    case JV_DICT:
        return json_dict(b, v.u.dict, o, level, err);
    default:
        sem_err_set(err, SEM_EINVAL, "tojson: a value of type %s is not JSON serializable",
                    jv_type_name(v));
        return -1;
    }
}

int jv_write_json(jbuf *b, jv v, const jv_json_opts *o, sem_err *err)
{
    jv_json_opts def = {.indent = -1};
    return json_value(b, v, o ? o : &def, 0, err);
}

/* ---------------------------------------------------------------- from jansson */

static int from_json_at(jarena *a, const json_t *j, int depth, int max_depth, jv *out,
                        sem_err *err)
{
    if (depth > max_depth) {
        sem_err_set(err, SEM_EINVAL, "JSON input nested deeper than %d levels", max_depth);
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv_dict *d = jv_dict_new(a, json_object_size(j));
        if (!d)
            goto nomem;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val)
        {
            jv item;
            if (from_json_at(a, val, depth + 1, max_depth, &item, err) != 0)
                return -1;
            /* jansson keys are unique: append without a lookup. */
            if (dict_append(a, d, jv_cstr(key), item) != 0)
                goto nomem;
        }
        *out = (jv){.type = JV_DICT};
        out->u.dict = d;
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv_list *l = jv_list_new(a, n);
        if (!l)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            if (from_json_at(a, json_array_get(j, i), depth + 1, max_depth, &l->items[i], err) != 0)
                return -1;
        }
        l->len = n;
        *out = (jv){.type = JV_LIST};
        out->u.list = l;
        return 0;
    }
    case JSON_STRING:
        *out = jv_str(json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER:
        *out = jv_int((int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        *out = jv_float(json_real_value(j));
        return 0;
    case JSON_TRUE:
        *out = jv_bool(true);
        return 0;
    case JSON_FALSE:
        *out = jv_bool(false);
        return 0;
    case JSON_NULL:
        *out = jv_none();
        return 0;
    }
    *out = jv_none();
    return 0;
nomem:
    sem_err_set(err, a->over_limit ? SEM_EINVAL : SEM_ENOMEM,
                a->over_limit ? "the render memory limit (%zu bytes) is too small for the input"
                              : "out of memory converting the JSON input (%zu bytes limit)",
                a->limit);
    return -1;
}

int jv_from_json(jarena *a, const json_t *j, int max_depth, jv *out, sem_err *err)
{
    if (!j) {
        *out = jv_none();
        return 0;
    }
    return from_json_at(a, j, 0, max_depth, out, err);
}
