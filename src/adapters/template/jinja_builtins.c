/*
 * jinja_builtins.c - the filters, tests, methods and global functions
 * templates can call, with the semantics of Jinja2 and Python.
 *
 * Filters and tests are looked up by name once, when the template is
 * parsed (jinja_eval.c stores the table index in the node). Every built-in
 * checks its arguments and fails with a message naming itself and the
 * offending argument. Strings are UTF-8; case mapping covers ASCII, Latin-1,
 * Latin Extended-A, Greek, Cyrillic, Armenian and full-width Latin (not all
 * of Unicode: e.g. "ß".upper() stays "ß").
 *
 * Lists have no methods: HF renders templates in an immutable sandbox where
 * list.append() and friends are refused, so templates do not use them.
 */
#include "jinja_eval.h"
#include "adapters/text/unicode.h"
#include "base/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- arguments */

int jargs_check(rctx *c, const jnode *at, const jargs *a, const char *what, size_t max_pos,
                const char *const *kws)
{
    if (a->npos > max_pos)
        return jeval_fail(c, at, SEM_EINVAL, "%s takes at most %zu positional argument%s (%zu given)", what,
                          max_pos, max_pos == 1 ? "" : "s", a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        bool ok = false;
        for (size_t i = 0; kws && kws[i] && !ok; i++)
            ok = strcmp(kws[i], a->kw[k]) == 0;
        if (!ok)
            return jeval_fail(c, at, SEM_EINVAL, "%s got an unexpected keyword argument '%s'", what,
                              a->kw[k]);
    }
    return 0;
}

bool jargs_get(const jargs *a, size_t idx, const char *kw, jv *out)
{
    if (idx < a->npos) {
        *out = a->pos[idx];
        return true;
    }
    for (size_t k = 0; kw && k < a->nkw; k++)
        if (strcmp(a->kw[k], kw) == 0) {
            *out = a->kwv[k];
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------- helpers */

static jv list_value(jv_list *l)
{
    jv v = {.type = JV_LIST};
    v.u.list = l;
    return v;
}

static jv dict_value(jv_dict *d)
{
    jv v = {.type = JV_DICT};
    v.u.dict = d;
    return v;
}

static int to_str(rctx *c, const jnode *at, jv v, jv *out)
{
    if (jv_to_str(&c->arena, v, out) != 0)
        return jeval_nomem(c, at);
    return 0;
}

static int need_str(rctx *c, const jnode *at, const char *what, jv v, jv *out)
{
    if (v.type != JV_STR)
        return jeval_fail(c, at, SEM_EINVAL, "%s must be a string, not %s", what, jv_type_name(v));
    *out = v;
    return 0;
}

static int need_int(rctx *c, const jnode *at, const char *what, jv v, int64_t *out)
{
    *out = 0;
    if (v.type == JV_INT || v.type == JV_BOOL) {
        *out = v.type == JV_BOOL ? v.u.b : v.u.i;
        return 0;
    }
    return jeval_fail(c, at, SEM_EINVAL, "%s must be an integer, not %s", what, jv_type_name(v));
}

static jv new_str(rctx *c, const char *s, size_t n, bool *ok)
{
    char *p = jarena_strndup(&c->arena, s, n);
    *ok = p != NULL;
    return jv_str(p ? p : "", p ? n : 0);
}

/* Unicode simple case mapping for the common alphabets. */
static uint32_t uc_lower(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return c | 1u;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1u) ? c + 1 : c;
        if (c == 0x178)
            return 0xFF;
        return c;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
        return c + 32;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 63;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
        return c | 1u;
    if (c >= 0x531 && c <= 0x556)
        return c + 48;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return c;
}

static uint32_t uc_upper(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (c == 0xB5)
        return 0x39C;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return c & ~1u;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1u) ? c : c - 1;
        if (c == 0x17F)
            return 'S';
        return c;
    }
    if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2)
        return c - 32;
    if (c == 0x3C2)
        return 0x3A3;
    if (c == 0x3AC)
        return 0x386;
    if (c >= 0x3AD && c <= 0x3AF)
        return c - 37;
    if (c == 0x3CC)
        return 0x38C;
    if (c == 0x3CD || c == 0x3CE)
        return c - 63;
    if (c >= 0x430 && c <= 0x44F)
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
        return c & ~1u;
    if (c >= 0x561 && c <= 0x586)
        return c - 48;
    if (c >= 0xFF41 && c <= 0xFF5A)
        return c - 32;
    return c;
}

static bool uc_cased(uint32_t c) { return uc_lower(c) != c || uc_upper(c) != c; }

static size_t put_cp(char *o, uint32_t cp) { return utf8_encode(cp, (uint8_t *)o); }

enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE, CASE_TITLE_WORDS };

/* Jinja's title filter starts a word after '-', '(', '{', '[', '<' or
 * whitespace (str.title starts one after any uncased character). */
static bool title_boundary(uint32_t cp)
{
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || unicode_is_space(cp);
}

/* Case mapping never changes a code point's UTF-8 length class in the
 * tables above except for the few that may grow (e.g. ſ -> S shrinks):
 * allocate 4 bytes per input byte to be safe. */
static int change_case(rctx *c, const jnode *at, jv s, int mode, jv *out)
{
    if (s.len > SIZE_MAX / 4)
        return jeval_nomem(c, at);
    char *dst = jarena_alloc(&c->arena, s.len * 4 + 1);
    if (!dst)
        return jeval_nomem(c, at);
    size_t o = 0;
    bool prev_cased = false, word_start = false, first = true;
    for (size_t i = 0; i < s.len;) {
        size_t used;
        uint32_t cp = utf8_decode(s.u.s + i, s.len - i, &used);
        if (used == 1 && cp >= 0x80) {
            dst[o++] = s.u.s[i++]; /* invalid byte: keep */
            continue;
        }
        uint32_t m = cp;
        switch (mode) {
        case CASE_UPPER:
            m = uc_upper(cp);
            break;
        case CASE_LOWER:
            m = uc_lower(cp);
            break;
        case CASE_CAPITALIZE:
            m = first ? uc_upper(cp) : uc_lower(cp);
            break;
        case CASE_TITLE:
            m = prev_cased ? uc_lower(cp) : uc_upper(cp);
            prev_cased = uc_cased(cp);
            break;
        case CASE_TITLE_WORDS:
            m = (first || word_start) ? uc_upper(cp) : uc_lower(cp);
            word_start = title_boundary(cp);
            break;
        }
        first = false;
        o += put_cp(dst + o, m);
        i += used;
    }
    dst[o] = '\0';
    *out = jv_str(dst, o);
    return 0;
}

/* Code points of a strip() character set. */
static bool in_set(const char *set, size_t n, uint32_t cp)
{
    for (size_t i = 0; i < n;) {
        size_t used;
        if (utf8_decode(set + i, n - i, &used) == cp)
            return true;
        i += used;
    }
    return false;
}

enum { STRIP_LEFT = 1, STRIP_RIGHT = 2, STRIP_BOTH = 3 };

/* Python str.strip/lstrip/rstrip; chars NULL = whitespace. */
static jv strip(jv s, const jv *chars, int where)
{
    size_t b = 0, e = s.len;
    if (where & STRIP_LEFT) {
        while (b < e) {
            size_t used;
            uint32_t cp = utf8_decode(s.u.s + b, e - b, &used);
            bool strip_it = chars ? in_set(chars->u.s, chars->len, cp) : unicode_is_space(cp);
            if (!strip_it)
                break;
            b += used;
        }
    }
    if (where & STRIP_RIGHT) {
        while (e > b) {
            size_t k = e - 1;
            while (k > b && ((unsigned char)s.u.s[k] & 0xC0) == 0x80 && e - k < 4)
                k--;
            size_t used;
            uint32_t cp = utf8_decode(s.u.s + k, e - k, &used);
            if (k + used != e) { /* not a whole sequence: treat the last byte alone */
                k = e - 1;
                cp = (unsigned char)s.u.s[k];
            }
            bool strip_it = chars ? in_set(chars->u.s, chars->len, cp) : unicode_is_space(cp);
            if (!strip_it)
                break;
            e = k;
        }
    }
    return jv_str(s.u.s + b, e - b);
}

/* Resolves "a.b.0" on v as Jinja's attribute getters do. */
static int attr_path(rctx *c, const jnode *at, jv v, jv attr, jv *out)
{
    if (attr.type == JV_INT)
        return jeval_getitem(c, at, v, attr, out);
    if (attr.type != JV_STR)
        return jeval_fail(c, at, SEM_EINVAL, "attribute must be a string or integer, not %s",
                          jv_type_name(attr));
    const char *p = attr.u.s, *end = attr.u.s + attr.len;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *seg_end = dot ? dot : end;
        size_t len = (size_t)(seg_end - p);
        bool digits = len > 0;
        for (size_t k = 0; k < len && digits; k++)
            digits = isdigit((unsigned char)p[k]);
        jv key;
        if (digits && len < 18) {
            int64_t iv = 0;
            for (size_t k = 0; k < len; k++)
                iv = iv * 10 + (p[k] - '0');
            key = jv_int(iv);
        } else {
            key = jv_str(p, len);
        }
        if (jeval_getitem(c, at, v, key, &v) != 0)
            return -1;
        if (!dot)
            break;
        p = dot + 1;
    }
    *out = v;
    return 0;
}

static int html_escape(rctx *c, const jnode *at, jv in, jv *out)
{
    jv s;
    if (to_str(c, at, in, &s) != 0)
        return -1;
    jbuf b = {.arena = &c->arena};
    for (size_t i = 0; i < s.len; i++) {
        const char *rep = NULL;
        switch (s.u.s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep ? jbuf_puts(&b, rep) : jbuf_putc(&b, s.u.s[i]))
            return jeval_buf_fail(c, at, &b);
    }
    *out = jeval_buf_str(&b);
    return 0;
}

/* ---------------------------------------------------------------- sorting */

typedef struct sort_item {
    jv key;
    jv item;
} sort_item;

typedef struct sort_ctx {
    rctx *c;
    const jnode *at;
    bool failed;
} sort_ctx;

static int sort_cmp(sort_ctx *s, jv a, jv b)
{
    int cmp = 0;
    if (jv_compare(a, b, &cmp) != 0 && !s->failed) {
        s->failed = true;
        jeval_fail(s->c, s->at, SEM_EINVAL, "'<' not supported between '%s' and '%s'", jv_type_name(a),
                   jv_type_name(b));
    }
    return cmp;
}

/* Stable merge sort (bottom-up) of n items by key. */
static int merge_sort(sort_ctx *s, sort_item *v, size_t n, bool reverse)
{
    if (n < 2)
        return 0;
    sort_item *tmp = jarena_alloc(&s->c->arena, n * sizeof *tmp);
    if (!tmp)
        return jeval_nomem(s->c, s->at);
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int cmp = sort_cmp(s, v[j].key, v[i].key);
                bool take_right = reverse ? cmp > 0 : cmp < 0;
                tmp[k++] = take_right ? v[j++] : v[i++];
            }
            while (i < mid)
                tmp[k++] = v[i++];
            while (j < hi)
                tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
    return s->failed ? -1 : 0;
}

/* The sort key: the attribute (if any), lowercased unless case-sensitive. */
static int sort_key(rctx *c, const jnode *at, jv item, const jv *attribute, bool case_sensitive,
                    jv *key)
{
    jv k = item;
    if (attribute && attr_path(c, at, item, *attribute, &k) != 0)
        return -1;
    if (!case_sensitive && k.type == JV_STR)
        return change_case(c, at, k, CASE_LOWER, key);
    *key = k;
    return 0;
}

/* ---------------------------------------------------------------- filters */

#define FILTER(name) static int name(rctx *c, const jnode *at, jv in, const jargs *a, jv *out)

FILTER(f_trim)
{
    static const char *const kws[] = {"chars", NULL};
    if (jargs_check(c, at, a, "trim", 1, kws) != 0)
        return -1;
    jv s, chars;
    if (to_str(c, at, in, &s) != 0)
        return -1;
    bool has = jargs_get(a, 0, "chars", &chars) && chars.type != JV_NONE;
    if (has && need_str(c, at, "trim(chars)", chars, &chars) != 0)
        return -1;
    *out = strip(s, has ? &chars : NULL, STRIP_BOTH);
    return 0;
}

static int length_of(rctx *c, const jnode *at, jv in, int64_t *n)
{
    *n = 0;
    switch (in.type) {
    case JV_UNDEFINED:
        *n = 0;
        return 0;
    case JV_STR:
        *n = (int64_t)utf8_count(in.u.s, in.len);
        return 0;
    case JV_LIST:
        *n = (int64_t)in.u.list->len;
        return 0;
    case JV_DICT:
    case JV_NAMESPACE:
        *n = (int64_t)in.u.dict->len;
        return 0;
    default:
        return jeval_fail(c, at, SEM_EINVAL, "object of type '%s' has no len()", jv_type_name(in));
    }
}

FILTER(f_length)
{
    int64_t n;
    if (jargs_check(c, at, a, "length", 0, NULL) != 0 || length_of(c, at, in, &n) != 0)
        return -1;
    *out = jv_int(n);
    return 0;
}

FILTER(f_tojson)
{
    static const char *const kws[] = {"indent", "ensure_ascii", "separators", "sort_keys", NULL};
    if (jargs_check(c, at, a, "tojson", 1, kws) != 0)
        return -1;
    if (in.type == JV_UNDEFINED)
        return jeval_fail(c, at, SEM_EINVAL, "tojson: '%.*s' is undefined", (int)in.len,
                          in.u.s ? in.u.s : "");
    jv_json_opts o = {.indent = -1};
    jv v;
    if (jargs_get(a, 0, "indent", &v) && v.type != JV_NONE) {
        if (v.type == JV_STR) {
            o.indent_str = v.u.s;
            o.indent_str_len = v.len;
        } else {
            int64_t ind;
            if (need_int(c, at, "tojson(indent)", v, &ind) != 0)
                return -1;
            o.indent = ind < 0 ? 0 : ind > 64 ? 64 : (int)ind;
        }
    }
    if (jargs_get(a, 99, "ensure_ascii", &v))
        o.ensure_ascii = jv_truthy(v);
    if (jargs_get(a, 99, "sort_keys", &v))
        o.sort_keys = jv_truthy(v);
    if (jargs_get(a, 99, "separators", &v) && v.type != JV_NONE) {
        if (v.type != JV_LIST || v.u.list->len != 2 || v.u.list->items[0].type != JV_STR ||
            v.u.list->items[1].type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL, "tojson(separators) must be a pair of strings");
        o.item_sep = v.u.list->items[0].u.s;
        o.item_sep_len = v.u.list->items[0].len;
        o.key_sep = v.u.list->items[1].u.s;
        o.key_sep_len = v.u.list->items[1].len;
    }
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    sem_err e = {0};
    if (jv_write_json(&b, in, &o, &e) != 0) {
        if (b.failed)
            return jeval_buf_fail(c, at, &b);
        return jeval_fail_err(c, at, &e);
    }
    *out = jeval_buf_str(&b);
    return 0;
}

static int items_of(rctx *c, const jnode *at, jv in, jv *out)
{
    if (in.type == JV_UNDEFINED) {
        jv_list *l = jv_list_new(&c->arena, 0);
        if (!l)
            return jeval_nomem(c, at);
        *out = list_value(l);
        return 0;
    }
    if (in.type != JV_DICT && in.type != JV_NAMESPACE)
        return jeval_fail(c, at, SEM_EINVAL, "items() needs a mapping, not %s", jv_type_name(in));
    const jv_dict *d = in.u.dict;
    jv_list *l = jv_list_new(&c->arena, d->len);
    if (!l)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < d->len; i++) {
        jv_list *pair = jv_list_new(&c->arena, 2);
        if (!pair)
            return jeval_nomem(c, at);
        pair->items[0] = d->keys[i];
        pair->items[1] = d->vals[i];
        pair->len = 2;
        pair->tuple = true;
        l->items[l->len++] = list_value(pair);
    }
    *out = list_value(l);
    return 0;
}

FILTER(f_items)
{
    if (jargs_check(c, at, a, "items", 0, NULL) != 0)
        return -1;
    return items_of(c, at, in, out);
}

static int copy_list(rctx *c, const jnode *at, const jv *items, size_t n, jv *out)
{
    jv_list *l = jv_list_new(&c->arena, n);
    if (!l)
        return jeval_nomem(c, at);
    if (n)
        memcpy(l->items, items, n * sizeof *items);
    l->len = n;
    *out = list_value(l);
    return 0;
}

FILTER(f_list)
{
    const jv *items;
    size_t n;
    if (jargs_check(c, at, a, "list", 0, NULL) != 0 || jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    return copy_list(c, at, items, n, out);
}

FILTER(f_join)
{
    static const char *const kws[] = {"d", "attribute", NULL};
    if (jargs_check(c, at, a, "join", 2, kws) != 0)
        return -1;
    jv sep = jv_str("", 0), attr;
    if (jargs_get(a, 0, "d", &sep) && to_str(c, at, sep, &sep) != 0)
        return -1;
    bool has_attr = jargs_get(a, 1, "attribute", &attr) && attr.type != JV_NONE;
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    for (size_t i = 0; i < n; i++) {
        jv item = items[i];
        if (has_attr && attr_path(c, at, item, attr, &item) != 0)
            return -1;
        if ((i && jbuf_put(&b, sep.u.s, sep.len) != 0) || jv_write_str(&b, item) != 0)
            return jeval_buf_fail(c, at, &b);
    }
    *out = jeval_buf_str(&b);
    return 0;
}

static int case_filter(rctx *c, const jnode *at, jv in, const jargs *a, jv *out, int mode,
                       const char *name)
{
    jv s;
    if (jargs_check(c, at, a, name, 0, NULL) != 0 || to_str(c, at, in, &s) != 0)
        return -1;
    return change_case(c, at, s, mode, out);
}

FILTER(f_upper) { return case_filter(c, at, in, a, out, CASE_UPPER, "upper"); }
FILTER(f_lower) { return case_filter(c, at, in, a, out, CASE_LOWER, "lower"); }
FILTER(f_capitalize) { return case_filter(c, at, in, a, out, CASE_CAPITALIZE, "capitalize"); }
FILTER(f_title) { return case_filter(c, at, in, a, out, CASE_TITLE_WORDS, "title"); }

/* Python str.replace; count < 0 replaces all. */
static int replace_str(rctx *c, const jnode *at, jv s, jv old, jv new_, int64_t count, jv *out)
{
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    int64_t done = 0;
    if (old.len == 0) {
        /* Inserted before every character and at the end. */
        for (size_t i = 0; i <= s.len;) {
            if ((count < 0 || done < count) && jbuf_put(&b, new_.u.s, new_.len) != 0)
                return jeval_buf_fail(c, at, &b);
            done++;
            if (i == s.len)
                break;
            size_t l = utf8_seq_len(s.u.s + i, s.len - i);
            if (jbuf_put(&b, s.u.s + i, l) != 0)
                return jeval_buf_fail(c, at, &b);
            i += l;
        }
        *out = jeval_buf_str(&b);
        return 0;
    }
    size_t i = 0;
    while (i < s.len && (count < 0 || done < count)) {
        const char *hit = memmem(s.u.s + i, s.len - i, old.u.s, old.len);
        if (!hit)
            break;
        size_t k = (size_t)(hit - s.u.s);
        if (jbuf_put(&b, s.u.s + i, k - i) != 0 || jbuf_put(&b, new_.u.s, new_.len) != 0)
            return jeval_buf_fail(c, at, &b);
        i = k + old.len;
        done++;
    }
    if (done == 0) {
        *out = s;
        return 0;
    }
    if (jbuf_put(&b, s.u.s + i, s.len - i) != 0)
        return jeval_buf_fail(c, at, &b);
    *out = jeval_buf_str(&b);
    return 0;
}

static int replace_args(rctx *c, const jnode *at, jv s, const jargs *a, const char *what, jv *out)
{
    static const char *const kws[] = {"old", "new", "count", NULL};
    if (jargs_check(c, at, a, what, 3, kws) != 0)
        return -1;
    jv old, new_, cnt;
    if (!jargs_get(a, 0, "old", &old) || !jargs_get(a, 1, "new", &new_))
        return jeval_fail(c, at, SEM_EINVAL, "%s needs the old and new strings", what);
    int64_t count = -1;
    if (jargs_get(a, 2, "count", &cnt) && cnt.type != JV_NONE &&
        need_int(c, at, "replace(count)", cnt, &count) != 0)
        return -1;
    if (to_str(c, at, old, &old) != 0 || to_str(c, at, new_, &new_) != 0)
        return -1;
    return replace_str(c, at, s, old, new_, count, out);
}

FILTER(f_replace)
{
    jv s;
    if (to_str(c, at, in, &s) != 0)
        return -1;
    return replace_args(c, at, s, a, "replace", out);
}

FILTER(f_string)
{
    if (jargs_check(c, at, a, "string", 0, NULL) != 0)
        return -1;
    return to_str(c, at, in, out);
}

/* Parses a Python int literal (optional sign, underscores between digits). */
static bool parse_int(const char *s, size_t n, int base, int64_t *out)
{
    *out = 0;
    char buf[80];
    size_t b = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_')
            continue;
        if (b + 1 >= sizeof buf)
            return false;
        buf[b++] = s[i];
    }
    buf[b] = '\0';
    if (b == 0)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, base);
    if (*end != '\0' || errno == ERANGE)
        return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, size_t n, double *out)
{
    *out = 0;
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end != '\0')
        return false;
    *out = v;
    return true;
}

FILTER(f_int)
{
    static const char *const kws[] = {"default", "base", NULL};
    if (jargs_check(c, at, a, "int", 2, kws) != 0)
        return -1;
    jv def = jv_int(0), basev;
    jargs_get(a, 0, "default", &def);
    int64_t base = 10;
    if (jargs_get(a, 1, "base", &basev) && need_int(c, at, "int(base)", basev, &base) != 0)
        return -1;
    switch (in.type) {
    case JV_INT:
        *out = in;
        return 0;
    case JV_BOOL:
        *out = jv_int(in.u.b);
        return 0;
    case JV_FLOAT:
        if (isfinite(in.u.f) && fabs(in.u.f) < 9.2e18) {
            *out = jv_int((int64_t)in.u.f);
            return 0;
        }
        break;
    case JV_STR: {
        jv t = strip(in, NULL, STRIP_BOTH);
        int64_t v = 0;
        double d = 0;
        if (parse_int(t.u.s, t.len, (int)base, &v)) {
            *out = jv_int(v);
            return 0;
        }
        if (base == 10 && parse_float(t.u.s, t.len, &d) && isfinite(d) && fabs(d) < 9.2e18) {
            *out = jv_int((int64_t)d);
            return 0;
        }
        break;
    }
    default:
        break;
    }
    *out = def;
    return 0;
}

FILTER(f_float)
{
    static const char *const kws[] = {"default", NULL};
    if (jargs_check(c, at, a, "float", 1, kws) != 0)
        return -1;
    jv def = jv_float(0.0);
    jargs_get(a, 0, "default", &def);
    double d;
    if (jv_is_number(in)) {
        *out = jv_float(jv_as_double(in));
        return 0;
    }
    if (in.type == JV_STR) {
        jv t = strip(in, NULL, STRIP_BOTH);
        if (parse_float(t.u.s, t.len, &d)) {
            *out = jv_float(d);
            return 0;
        }
    }
    *out = def;
    return 0;
}

static int first_last(rctx *c, const jnode *at, jv in, const jargs *a, jv *out, bool last)
{
    const jv *items;
    size_t n;
    if (jargs_check(c, at, a, last ? "last" : "first", 0, NULL) != 0 ||
        jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    if (n == 0) {
        *out = jv_undef(last ? "last" : "first", last ? 4 : 5);
        return 0;
    }
    *out = items[last ? n - 1 : 0];
    return 0;
}

FILTER(f_first) { return first_last(c, at, in, a, out, false); }
FILTER(f_last) { return first_last(c, at, in, a, out, true); }

FILTER(f_default)
{
    static const char *const kws[] = {"default_value", "boolean", NULL};
    if (jargs_check(c, at, a, "default", 2, kws) != 0)
        return -1;
    jv def = jv_str("", 0), boolean = jv_bool(false);
    jargs_get(a, 0, "default_value", &def);
    jargs_get(a, 1, "boolean", &boolean);
    bool use_default = in.type == JV_UNDEFINED || (jv_truthy(boolean) && !jv_truthy(in));
    *out = use_default ? def : in;
    return 0;
}

/* The arguments after the first `skip` positional ones (for map/select). */
static jargs rest_args(const jargs *a, size_t skip, bool keep_kw)
{
    jargs r = *a;
    r.pos = a->npos > skip ? a->pos + skip : NULL;
    r.npos = a->npos > skip ? a->npos - skip : 0;
    if (!keep_kw) {
        r.nkw = 0;
        r.kw = NULL;
        r.kwv = NULL;
    }
    return r;
}

FILTER(f_map)
{
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    jv_list *l = jv_list_new(&c->arena, n);
    if (!l)
        return jeval_nomem(c, at);
    jv attr, def;
    bool by_attr = false;
    for (size_t k = 0; k < a->nkw; k++)
        by_attr |= strcmp(a->kw[k], "attribute") == 0;
    if (by_attr) {
        static const char *const kws[] = {"attribute", "default", NULL};
        if (jargs_check(c, at, a, "map", 0, kws) != 0)
            return -1;
        jargs_get(a, 99, "attribute", &attr);
        bool has_def = jargs_get(a, 99, "default", &def);
        for (size_t i = 0; i < n; i++) {
            jv v;
            if (attr_path(c, at, items[i], attr, &v) != 0)
                return -1;
            l->items[l->len++] = (v.type == JV_UNDEFINED && has_def) ? def : v;
        }
    } else {
        jv fname;
        if (!jargs_get(a, 0, NULL, &fname) || fname.type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL, "map needs a filter name or attribute=");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(fname.len < 63 ? fname.len : 63), fname.u.s);
        jargs rest = rest_args(a, 1, true);
        for (size_t i = 0; i < n; i++)
            if (jeval_filter_by_name(c, at, name, items[i], &rest, &l->items[l->len++]) != 0)
                return -1;
    }
    *out = list_value(l);
    return 0;
}

/* select / reject / selectattr / rejectattr. */
static int select_common(rctx *c, const jnode *at, jv in, const jargs *a, jv *out, bool by_attr,
                         bool keep)
{
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    size_t skip = 0;
    jv attr = jv_none(), tname;
    if (by_attr) {
        if (!jargs_get(a, 0, NULL, &attr))
            return jeval_fail(c, at, SEM_EINVAL, "%s needs an attribute name",
                              keep ? "selectattr" : "rejectattr");
        skip = 1;
    }
    bool has_test = jargs_get(a, skip, NULL, &tname);
    char name[64] = "";
    if (has_test) {
        if (tname.type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL, "the test name must be a string, not %s",
                              jv_type_name(tname));
        snprintf(name, sizeof name, "%.*s", (int)(tname.len < 63 ? tname.len : 63), tname.u.s);
        skip++;
    }
    jargs rest = rest_args(a, skip, true);
    jv_list *l = jv_list_new(&c->arena, n);
    if (!l)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < n; i++) {
        jv v = items[i];
        if (by_attr && attr_path(c, at, v, attr, &v) != 0)
            return -1;
        bool r;
        if (has_test) {
            if (jeval_test_by_name(c, at, name, v, &rest, &r) != 0)
                return -1;
        } else {
            r = jv_truthy(v);
        }
        if (r == keep)
            l->items[l->len++] = items[i];
    }
    *out = list_value(l);
    return 0;
}

FILTER(f_select) { return select_common(c, at, in, a, out, false, true); }
FILTER(f_reject) { return select_common(c, at, in, a, out, false, false); }
FILTER(f_selectattr) { return select_common(c, at, in, a, out, true, true); }
FILTER(f_rejectattr) { return select_common(c, at, in, a, out, true, false); }

FILTER(f_unique)
{
    static const char *const kws[] = {"case_sensitive", "attribute", NULL};
    if (jargs_check(c, at, a, "unique", 0, kws) != 0)
        return -1;
    jv cs = jv_bool(false), attr;
    jargs_get(a, 99, "case_sensitive", &cs);
    bool has_attr = jargs_get(a, 99, "attribute", &attr);
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    jv_list *l = jv_list_new(&c->arena, n);
    jv *keys = n ? jarena_alloc(&c->arena, n * sizeof *keys) : NULL;
    if (!l || (n && !keys))
        return jeval_nomem(c, at);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        jv k;
        if (sort_key(c, at, items[i], has_attr ? &attr : NULL, jv_truthy(cs), &k) != 0)
            return -1;
        if (jeval_charge(c, at, nk / 8) != 0)
            return -1;
        bool seen = false;
        for (size_t j = 0; j < nk && !seen; j++)
            seen = jv_equal(keys[j], k);
        if (seen)
            continue;
        keys[nk++] = k;
        l->items[l->len++] = items[i];
    }
    *out = list_value(l);
    return 0;
}

FILTER(f_safe)
{
    if (jargs_check(c, at, a, "safe", 0, NULL) != 0)
        return -1;
    *out = in;
    return 0;
}

FILTER(f_escape)
{
    if (jargs_check(c, at, a, "escape", 0, NULL) != 0)
        return -1;
    return html_escape(c, at, in, out);
}

FILTER(f_abs)
{
    if (jargs_check(c, at, a, "abs", 0, NULL) != 0)
        return -1;
    if (in.type == JV_FLOAT) {
        *out = jv_float(fabs(in.u.f));
        return 0;
    }
    if (in.type == JV_INT || in.type == JV_BOOL) {
        int64_t v = in.type == JV_BOOL ? in.u.b : in.u.i;
        if (v == INT64_MIN)
            return jeval_fail(c, at, SEM_EINVAL, "integer overflow in abs");
        *out = jv_int(v < 0 ? -v : v);
        return 0;
    }
    return jeval_fail(c, at, SEM_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(in));
}

FILTER(f_round)
{
    static const char *const kws[] = {"precision", "method", NULL};
    if (jargs_check(c, at, a, "round", 2, kws) != 0)
        return -1;
    if (!jv_is_number(in))
        return jeval_fail(c, at, SEM_EINVAL, "round needs a number, not %s", jv_type_name(in));
    jv pv, mv;
    int64_t prec = 0;
    if (jargs_get(a, 0, "precision", &pv) && need_int(c, at, "round(precision)", pv, &prec) != 0)
        return -1;
    const char *method = "common";
    if (jargs_get(a, 1, "method", &mv)) {
        if (mv.type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL, "round(method) must be a string");
        method = mv.len == 4 && memcmp(mv.u.s, "ceil", 4) == 0    ? "ceil"
                 : mv.len == 5 && memcmp(mv.u.s, "floor", 5) == 0 ? "floor"
                 : mv.len == 6 && memcmp(mv.u.s, "common", 6) == 0 ? "common"
                                                                   : NULL;
        if (!method)
            return jeval_fail(c, at, SEM_EINVAL, "round(method) must be common, ceil or floor");
    }
    if (prec > 15)
        prec = 15;
    if (prec < -15)
        prec = -15;
    double x = jv_as_double(in), scale = pow(10.0, (double)prec), r;
    if (strcmp(method, "ceil") == 0)
        r = ceil(x * scale) / scale;
    else if (strcmp(method, "floor") == 0)
        r = floor(x * scale) / scale;
    else
        r = nearbyint(x * scale) / scale; /* ties to even, as Python's round() */
    *out = jv_float(r);
    return 0;
}

FILTER(f_sort)
{
    static const char *const kws[] = {"reverse", "case_sensitive", "attribute", NULL};
    if (jargs_check(c, at, a, "sort", 3, kws) != 0)
        return -1;
    jv rev = jv_bool(false), cs = jv_bool(false), attr;
    jargs_get(a, 0, "reverse", &rev);
    jargs_get(a, 1, "case_sensitive", &cs);
    bool has_attr = jargs_get(a, 2, "attribute", &attr) && attr.type != JV_NONE;
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    sort_item *v = n ? jarena_alloc(&c->arena, n * sizeof *v) : NULL;
    if (n && !v)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < n; i++) {
        v[i].item = items[i];
        if (sort_key(c, at, items[i], has_attr ? &attr : NULL, jv_truthy(cs), &v[i].key) != 0)
            return -1;
    }
    sort_ctx s = {.c = c, .at = at};
    if (jeval_charge(c, at, n) != 0 || merge_sort(&s, v, n, jv_truthy(rev)) != 0)
        return -1;
    jv_list *l = jv_list_new(&c->arena, n);
    if (!l)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < n; i++)
        l->items[l->len++] = v[i].item;
    *out = list_value(l);
    return 0;
}

FILTER(f_dictsort)
{
    static const char *const kws[] = {"case_sensitive", "by", "reverse", NULL};
    if (jargs_check(c, at, a, "dictsort", 3, kws) != 0)
        return -1;
    jv cs = jv_bool(false), by = jv_cstr("key"), rev = jv_bool(false);
    jargs_get(a, 0, "case_sensitive", &cs);
    jargs_get(a, 1, "by", &by);
    jargs_get(a, 2, "reverse", &rev);
    bool by_value = by.type == JV_STR && by.len == 5 && memcmp(by.u.s, "value", 5) == 0;
    jv pairs;
    if (items_of(c, at, in, &pairs) != 0)
        return -1;
    size_t n = pairs.u.list->len;
    sort_item *v = n ? jarena_alloc(&c->arena, n * sizeof *v) : NULL;
    if (n && !v)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < n; i++) {
        jv pair = pairs.u.list->items[i];
        v[i].item = pair;
        if (sort_key(c, at, pair.u.list->items[by_value ? 1 : 0], NULL, jv_truthy(cs), &v[i].key) != 0)
            return -1;
    }
    sort_ctx s = {.c = c, .at = at};
    if (merge_sort(&s, v, n, jv_truthy(rev)) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        pairs.u.list->items[i] = v[i].item;
    *out = pairs;
    return 0;
}

FILTER(f_reverse)
{
    if (jargs_check(c, at, a, "reverse", 0, NULL) != 0)
        return -1;
    if (in.type == JV_STR) {
        char *dst = jarena_alloc(&c->arena, in.len + 1);
        if (!dst)
            return jeval_nomem(c, at);
        size_t o = in.len;
        for (size_t i = 0; i < in.len;) {
            size_t l = utf8_seq_len(in.u.s + i, in.len - i);
            o -= l;
            memcpy(dst + o, in.u.s + i, l);
            i += l;
        }
        dst[in.len] = '\0';
        *out = jv_str(dst, in.len);
        return 0;
    }
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    jv_list *l = jv_list_new(&c->arena, n);
    if (!l)
        return jeval_nomem(c, at);
    for (size_t i = 0; i < n; i++)
        l->items[l->len++] = items[n - 1 - i];
    *out = list_value(l);
    return 0;
}

FILTER(f_sum)
{
    static const char *const kws[] = {"attribute", "start", NULL};
    if (jargs_check(c, at, a, "sum", 2, kws) != 0)
        return -1;
    jv attr, total = jv_int(0);
    bool has_attr = jargs_get(a, 0, "attribute", &attr) && attr.type != JV_NONE;
    jargs_get(a, 1, "start", &total);
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        jv v = items[i];
        if (has_attr && attr_path(c, at, v, attr, &v) != 0)
            return -1;
        if (!jv_is_number(v) || !jv_is_number(total))
            return jeval_fail(c, at, SEM_EINVAL, "sum: unsupported operand types '%s' and '%s'",
                              jv_type_name(total), jv_type_name(v));
        if (total.type != JV_FLOAT && v.type != JV_FLOAT) {
            int64_t r, x = total.type == JV_BOOL ? total.u.b : total.u.i,
                       y = v.type == JV_BOOL ? v.u.b : v.u.i;
            if (__builtin_add_overflow(x, y, &r))
                return jeval_fail(c, at, SEM_EINVAL, "integer overflow in sum");
            total = jv_int(r);
        } else {
            total = jv_float(jv_as_double(total) + jv_as_double(v));
        }
    }
    *out = total;
    return 0;
}

static int min_max(rctx *c, const jnode *at, jv in, const jargs *a, jv *out, bool want_max)
{
    static const char *const kws[] = {"case_sensitive", "attribute", NULL};
    if (jargs_check(c, at, a, want_max ? "max" : "min", 0, kws) != 0)
        return -1;
    jv cs = jv_bool(false), attr;
    jargs_get(a, 99, "case_sensitive", &cs);
    bool has_attr = jargs_get(a, 99, "attribute", &attr);
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, in, &items, &n) != 0)
        return -1;
    if (n == 0) {
        *out = jv_undef(want_max ? "max" : "min", 3);
        return 0;
    }
    jv best = items[0], best_key;
    if (sort_key(c, at, best, has_attr ? &attr : NULL, jv_truthy(cs), &best_key) != 0)
        return -1;
    sort_ctx s = {.c = c, .at = at};
    for (size_t i = 1; i < n; i++) {
        jv k;
        if (sort_key(c, at, items[i], has_attr ? &attr : NULL, jv_truthy(cs), &k) != 0)
            return -1;
        int cmp = sort_cmp(&s, k, best_key);
        if (s.failed)
            return -1;
        if (want_max ? cmp > 0 : cmp < 0) {
            best = items[i];
            best_key = k;
        }
    }
    *out = best;
    return 0;
}

FILTER(f_min) { return min_max(c, at, in, a, out, false); }
FILTER(f_max) { return min_max(c, at, in, a, out, true); }

FILTER(f_indent)
{
    static const char *const kws[] = {"width", "first", "blank", NULL};
    if (jargs_check(c, at, a, "indent", 3, kws) != 0)
        return -1;
    jv width = jv_int(4), first = jv_bool(false), blank = jv_bool(false), s;
    jargs_get(a, 0, "width", &width);
    jargs_get(a, 1, "first", &first);
    jargs_get(a, 2, "blank", &blank);
    if (to_str(c, at, in, &s) != 0)
        return -1;
    jv pad;
    if (width.type == JV_STR) {
        pad = width;
    } else {
        int64_t w;
        if (need_int(c, at, "indent(width)", width, &w) != 0)
            return -1;
        if (w < 0)
            w = 0;
        if (w > 256)
            w = 256;
        char *p = jarena_alloc(&c->arena, (size_t)w + 1);
        if (!p)
            return jeval_nomem(c, at);
        memset(p, ' ', (size_t)w);
        p[w] = '\0';
        pad = jv_str(p, (size_t)w);
    }
    /* As Jinja: lines = (s + "\n").splitlines(), i.e. s split at every
     * "\n"; lines after the first are indented unless empty (or blank). */
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    bool ok = true;
    if (jv_truthy(first))
        ok = jbuf_put(&b, pad.u.s, pad.len) == 0;
    size_t i = 0;
    for (size_t line = 0; ok; line++) {
        const char *nl = memchr(s.u.s + i, '\n', s.len - i);
        size_t e = nl ? (size_t)(nl - s.u.s) : s.len;
        if (line > 0) {
            ok = jbuf_putc(&b, '\n') == 0;
            if (ok && (e > i || jv_truthy(blank)))
                ok = jbuf_put(&b, pad.u.s, pad.len) == 0;
        }
        if (ok)
            ok = jbuf_put(&b, s.u.s + i, e - i) == 0;
        if (!nl)
            break;
        i = e + 1;
    }
    if (!ok)
        return jeval_buf_fail(c, at, &b);
    *out = jeval_buf_str(&b);
    return 0;
}

FILTER(f_format)
{
    jv s;
    if (to_str(c, at, in, &s) != 0)
        return -1;
    if (a->nkw && a->npos)
        return jeval_fail(c, at, SEM_EINVAL, "format takes positional or keyword arguments, not both");
    jv args;
    if (a->nkw) {
        jv_dict *d = jv_dict_new(&c->arena, a->nkw);
        if (!d)
            return jeval_nomem(c, at);
        for (size_t k = 0; k < a->nkw; k++)
            if (jv_dict_set(&c->arena, d, jv_cstr(a->kw[k]), a->kwv[k]) != 0)
                return jeval_nomem(c, at);
        args = dict_value(d);
    } else {
        if (copy_list(c, at, a->pos, a->npos, &args) != 0)
            return -1;
        args.u.list->tuple = true;
    }
    return jinja_percent_format(c, at, s, args, out);
}

FILTER(f_attr)
{
    jv name;
    if (jargs_check(c, at, a, "attr", 1, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &name) || name.type != JV_STR)
        return jeval_fail(c, at, SEM_EINVAL, "attr needs an attribute name");
    /* Only real attributes: a dict's items are not attributes. */
    if (in.type == JV_DICT) {
        *out = jv_undef(name.u.s, name.len);
        return 0;
    }
    return jeval_getattr(c, at, in, name.u.s, name.len, out);
}

FILTER(f_wordcount)
{
    jv s;
    if (jargs_check(c, at, a, "wordcount", 0, NULL) != 0 || to_str(c, at, in, &s) != 0)
        return -1;
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.len;) {
        size_t used;
        uint32_t cp = utf8_decode(s.u.s + i, s.len - i, &used);
        bool word_char = cp >= 0x80 ? !unicode_is_space(cp) : (isalnum((int)cp) || cp == '_');
        if (word_char && !in_word)
            words++;
        in_word = word_char;
        i += used;
    }
    *out = jv_int(words);
    return 0;
}

const jfilter_def jinja_filters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};
const size_t jinja_n_filters = sizeof jinja_filters / sizeof *jinja_filters;

int jinja_filter_index(const char *name)
{
    for (size_t i = 0; i < jinja_n_filters; i++)
        if (strcmp(jinja_filters[i].name, name) == 0)
            return (int)i;
    return -1;
}

bool jinja_filter_is_known_unsupported(const char *name)
{
    static const char *const names[] = {"batch",    "center",   "filesizeformat", "groupby",
                                        "pprint",   "random",   "slice",          "striptags",
                                        "truncate", "urlencode", "urlize",        "wordwrap",
                                        "xmlattr"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- tests */

#define TEST(name) static int name(rctx *c, const jnode *at, jv in, const jargs *a, bool *out)

static int no_args(rctx *c, const jnode *at, const jargs *a, const char *name)
{
    return jargs_check(c, at, a, name, 0, NULL);
}

TEST(t_defined)
{
    *out = in.type != JV_UNDEFINED;
    return no_args(c, at, a, "defined");
}
TEST(t_undefined)
{
    *out = in.type == JV_UNDEFINED;
    return no_args(c, at, a, "undefined");
}
TEST(t_none)
{
    *out = in.type == JV_NONE;
    return no_args(c, at, a, "none");
}
TEST(t_boolean)
{
    *out = in.type == JV_BOOL;
    return no_args(c, at, a, "boolean");
}
TEST(t_true)
{
    *out = in.type == JV_BOOL && in.u.b;
    return no_args(c, at, a, "true");
}
TEST(t_false)
{
    *out = in.type == JV_BOOL && !in.u.b;
    return no_args(c, at, a, "false");
}
TEST(t_integer)
{
    *out = in.type == JV_INT;
    return no_args(c, at, a, "integer");
}
TEST(t_float)
{
    *out = in.type == JV_FLOAT;
    return no_args(c, at, a, "float");
}
TEST(t_number)
{
    *out = jv_is_number(in);
    return no_args(c, at, a, "number");
}
TEST(t_string)
{
    *out = in.type == JV_STR;
    return no_args(c, at, a, "string");
}
TEST(t_mapping)
{
    *out = in.type == JV_DICT;
    return no_args(c, at, a, "mapping");
}
TEST(t_iterable)
{
    *out = in.type == JV_STR || in.type == JV_LIST || in.type == JV_DICT || in.type == JV_UNDEFINED;
    return no_args(c, at, a, "iterable");
}
TEST(t_sequence)
{
    *out = in.type == JV_STR || in.type == JV_LIST || in.type == JV_DICT || in.type == JV_UNDEFINED;
    return no_args(c, at, a, "sequence");
}
TEST(t_callable)
{
    *out = in.type == JV_MACRO || in.type == JV_FUNC;
    return no_args(c, at, a, "callable");
}
TEST(t_escaped)
{
    *out = false;
    return no_args(c, at, a, "escaped");
}

static int int_test(rctx *c, const jnode *at, jv in, const char *name, int64_t *v)
{
    *v = 0;
    if (in.type == JV_FLOAT && floor(in.u.f) == in.u.f && fabs(in.u.f) < 9e18) {
        *v = (int64_t)in.u.f;
        return 0;
    }
    if (in.type == JV_UNDEFINED)
        return jeval_require_defined(c, at, in);
    if (in.type != JV_INT && in.type != JV_BOOL)
        return jeval_fail(c, at, SEM_EINVAL, "the '%s' test needs a number, not %s", name,
                          jv_type_name(in));
    *v = in.type == JV_BOOL ? in.u.b : in.u.i;
    return 0;
}

TEST(t_odd)
{
    int64_t v;
    if (no_args(c, at, a, "odd") != 0 || int_test(c, at, in, "odd", &v) != 0)
        return -1;
    *out = (v % 2) != 0;
    return 0;
}
TEST(t_even)
{
    int64_t v;
    if (no_args(c, at, a, "even") != 0 || int_test(c, at, in, "even", &v) != 0)
        return -1;
    *out = (v % 2) == 0;
    return 0;
}
TEST(t_divisibleby)
{
    int64_t v, d;
    jv dv;
    if (jargs_check(c, at, a, "divisibleby", 1, NULL) != 0 || int_test(c, at, in, "divisibleby", &v) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &dv) || need_int(c, at, "divisibleby(num)", dv, &d) != 0)
        return jeval_fail(c, at, SEM_EINVAL, "divisibleby needs an integer argument");
    if (d == 0)
        return jeval_fail(c, at, SEM_EINVAL, "divisibleby(0)");
    *out = d == -1 || v % d == 0;
    return 0;
}

static int compare_test(rctx *c, const jnode *at, jv in, const jargs *a, bool *out, int op,
                        const char *name)
{
    jv other;
    if (jargs_check(c, at, a, name, 1, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &other))
        return jeval_fail(c, at, SEM_EINVAL, "the '%s' test needs a value to compare with", name);
    if (op == JOP_EQ || op == JOP_NE) {
        *out = jv_equal(in, other) == (op == JOP_EQ);
        return 0;
    }
    int cmp;
    if (jv_compare(in, other, &cmp) != 0)
        return jeval_fail(c, at, SEM_EINVAL, "the '%s' test cannot compare %s with %s", name,
                          jv_type_name(in), jv_type_name(other));
    *out = op == JOP_LT ? cmp < 0 : op == JOP_LE ? cmp <= 0 : op == JOP_GT ? cmp > 0 : cmp >= 0;
    return 0;
}

TEST(t_eq) { return compare_test(c, at, in, a, out, JOP_EQ, "eq"); }
TEST(t_ne) { return compare_test(c, at, in, a, out, JOP_NE, "ne"); }
TEST(t_lt) { return compare_test(c, at, in, a, out, JOP_LT, "lt"); }
TEST(t_le) { return compare_test(c, at, in, a, out, JOP_LE, "le"); }
TEST(t_gt) { return compare_test(c, at, in, a, out, JOP_GT, "gt"); }
TEST(t_ge) { return compare_test(c, at, in, a, out, JOP_GE, "ge"); }

TEST(t_sameas)
{
    jv other;
    if (jargs_check(c, at, a, "sameas", 1, NULL) != 0 || !jargs_get(a, 0, NULL, &other))
        return jeval_fail(c, at, SEM_EINVAL, "the 'sameas' test needs a value");
    if (in.type != other.type)
        *out = false;
    else if (in.type == JV_NONE || in.type == JV_UNDEFINED)
        *out = true;
    else if (in.type == JV_BOOL)
        *out = in.u.b == other.u.b;
    else if (in.type == JV_LIST)
        *out = in.u.list == other.u.list;
    else if (in.type == JV_DICT || in.type == JV_NAMESPACE)
        *out = in.u.dict == other.u.dict;
    else
        *out = jv_equal(in, other);
    return 0;
}

TEST(t_in)
{
    jv seq;
    if (jargs_check(c, at, a, "in", 1, NULL) != 0 || !jargs_get(a, 0, NULL, &seq))
        return jeval_fail(c, at, SEM_EINVAL, "the 'in' test needs a sequence");
    if (seq.type == JV_STR) {
        if (in.type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL, "'in <string>' requires a string");
        *out = in.len == 0 || memmem(seq.u.s, seq.len, in.u.s, in.len) != NULL;
        return 0;
    }
    if (seq.type == JV_DICT || seq.type == JV_NAMESPACE) {
        *out = jv_dict_get(seq.u.dict, in) != NULL;
        return 0;
    }
    const jv *items;
    size_t n;
    if (jeval_iterate(c, at, seq, &items, &n) != 0 || jeval_charge(c, at, n / 8) != 0)
        return -1;
    *out = false;
    for (size_t i = 0; i < n && !*out; i++)
        *out = jv_equal(items[i], in);
    return 0;
}

static bool all_cased(jv s, bool upper)
{
    bool any = false;
    for (size_t i = 0; i < s.len;) {
        size_t used;
        uint32_t cp = utf8_decode(s.u.s + i, s.len - i, &used);
        if (uc_cased(cp)) {
            any = true;
            if ((upper ? uc_upper(cp) : uc_lower(cp)) != cp)
                return false;
        }
        i += used;
    }
    return any;
}

TEST(t_lower)
{
    *out = in.type == JV_STR && all_cased(in, false);
    return no_args(c, at, a, "lower");
}
TEST(t_upper)
{
    *out = in.type == JV_STR && all_cased(in, true);
    return no_args(c, at, a, "upper");
}

const jtest_def jinja_tests[] = {
    {"!=", t_ne},
    {"<", t_lt},
    {"<=", t_le},
    {"==", t_eq},
    {">", t_gt},
    {">=", t_ge},
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"float", t_float},
    {"ge", t_ge},
    {"greaterthan", t_gt},
    {"gt", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"lessthan", t_lt},
    {"lower", t_lower},
    {"lt", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};
const size_t jinja_n_tests = sizeof jinja_tests / sizeof *jinja_tests;

int jinja_test_index(const char *name)
{
    for (size_t i = 0; i < jinja_n_tests; i++)
        if (strcmp(jinja_tests[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---------------------------------------------------------------- string formatting */

/* Pads s to width (in code points) with fill; align is '<', '>' or '^'. */
static int pad_to(jbuf *b, jv s, int64_t width, char align, const char *fill, size_t fill_len)
{
    int64_t n = (int64_t)utf8_count(s.u.s, s.len);
    int64_t padding = width > n ? width - n : 0;
    int64_t left = align == '>' ? padding : align == '^' ? padding / 2 : 0;
    int64_t right = padding - left;
    for (int64_t k = 0; k < left; k++)
        if (jbuf_put(b, fill, fill_len) != 0)
            return -1;
    if (jbuf_put(b, s.u.s, s.len) != 0)
        return -1;
    for (int64_t k = 0; k < right; k++)
        if (jbuf_put(b, fill, fill_len) != 0)
            return -1;
    return 0;
}

/* Truncates s to prec code points. */
static jv truncate_cp(jv s, int64_t prec)
{
    if (prec < 0)
        return s;
    return jv_str(s.u.s, utf8_offset(s.u.s, s.len, (size_t)prec));
}

static int64_t number_as_int(jv v)
{
    if (v.type == JV_FLOAT)
        return isfinite(v.u.f) && fabs(v.u.f) < 9.2e18 ? (int64_t)v.u.f : 0;
    return v.type == JV_BOOL ? v.u.b : v.u.i;
}

/* Python's printf-style `fmt % args`. */
int jinja_percent_format(rctx *c, const jnode *at, jv fmt, jv args, jv *out)
{
    const jv *list;
    size_t nargs;
    const jv_dict *map = NULL;
    if (args.type == JV_LIST && args.u.list->tuple) {
        list = args.u.list->items;
        nargs = args.u.list->len;
    } else {
        if (args.type == JV_DICT)
            map = args.u.dict;
        list = &args;
        nargs = 1;
    }
    size_t next = 0;
    bool used_map = false;
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    const char *s = fmt.u.s;
    size_t n = fmt.len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            if (jbuf_putc(&b, s[i]) != 0)
                return jeval_buf_fail(c, at, &b);
            continue;
        }
        if (++i >= n)
            return jeval_fail(c, at, SEM_EINVAL, "format: incomplete format");
        if (s[i] == '%') {
            if (jbuf_putc(&b, '%') != 0)
                return jeval_buf_fail(c, at, &b);
            continue;
        }
        jv arg;
        bool have_arg = false;
        if (s[i] == '(') {
            const char *close = memchr(s + i, ')', n - i);
            if (!close)
                return jeval_fail(c, at, SEM_EINVAL, "format: incomplete format key");
            if (!map)
                return jeval_fail(c, at, SEM_EINVAL, "format: %%(key) requires a mapping argument");
            const jv *v = jv_dict_get_str(map, s + i + 1, (size_t)(close - s - i - 1));
            if (!v)
                return jeval_fail(c, at, SEM_EINVAL, "format: key '%.*s' not found",
                                  (int)(close - s - i - 1), s + i + 1);
            arg = *v;
            have_arg = used_map = true;
            i = (size_t)(close - s) + 1;
        }
        char flags[8];
        size_t nf = 0;
        while (i < n && strchr("-+ 0#", s[i]) && nf < sizeof flags - 1)
            flags[nf++] = s[i++];
        flags[nf] = '\0';
        int64_t width = -1, prec = -1;
        if (i < n && s[i] == '*') {
            if (next >= nargs)
                return jeval_fail(c, at, SEM_EINVAL, "format: not enough arguments for format string");
            width = number_as_int(list[next++]);
            i++;
        } else {
            while (i < n && isdigit((unsigned char)s[i]))
                width = (width < 0 ? 0 : width) * 10 + (s[i++] - '0');
        }
        if (i < n && s[i] == '.') {
            i++;
            prec = 0;
            if (i < n && s[i] == '*') {
                if (next >= nargs)
                    return jeval_fail(c, at, SEM_EINVAL, "format: not enough arguments for format string");
                prec = number_as_int(list[next++]);
                i++;
            } else {
                while (i < n && isdigit((unsigned char)s[i]))
                    prec = prec * 10 + (s[i++] - '0');
            }
        }
        while (i < n && (s[i] == 'h' || s[i] == 'l' || s[i] == 'L'))
            i++;
        if (i >= n)
            return jeval_fail(c, at, SEM_EINVAL, "format: incomplete format");
        if (width > 4096 || prec > 4096)
            return jeval_fail(c, at, SEM_EINVAL, "format: width or precision too large");
        char conv = s[i];
        if (!have_arg) {
            if (next >= nargs)
                return jeval_fail(c, at, SEM_EINVAL, "format: not enough arguments for format string");
            arg = list[next++];
        }
        bool left = strchr(flags, '-') != NULL;
        char spec[32];
        char num[4200];
        switch (conv) {
        case 's':
        case 'r':
        case 'a': {
            jv str;
            if (conv == 's') {
                if (to_str(c, at, arg, &str) != 0)
                    return -1;
            } else {
                jbuf r = {.arena = &c->arena};
                if (jv_write_repr(&r, arg) != 0)
                    return jeval_buf_fail(c, at, &r);
                str = jeval_buf_str(&r);
            }
            if (pad_to(&b, truncate_cp(str, prec), width, left ? '<' : '>', " ", 1) != 0)
                return jeval_buf_fail(c, at, &b);
            continue;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o':
        case 'c':
            if (!jv_is_number(arg))
                return jeval_fail(c, at, SEM_EINVAL, "format: %%%c needs a number, not %s", conv,
                                  jv_type_name(arg));
            if (conv == 'c') {
                char u[4];
                int64_t cp = number_as_int(arg);
                if (cp < 0 || cp > 0x10FFFF)
                    return jeval_fail(c, at, SEM_EINVAL, "format: %%c argument out of range");
                if (jbuf_put(&b, u, put_cp(u, (uint32_t)cp)) != 0)
                    return jeval_buf_fail(c, at, &b);
                continue;
            }
            snprintf(spec, sizeof spec, "%%%s%s%s%s%s", flags, width >= 0 ? "*" : "",
                     prec >= 0 ? ".*" : "", "ll", conv == 'i' || conv == 'u' ? "d" : (char[]){conv, 0});
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
            if (!jv_is_number(arg))
                return jeval_fail(c, at, SEM_EINVAL, "format: %%%c needs a number, not %s", conv,
                                  jv_type_name(arg));
            snprintf(spec, sizeof spec, "%%%s%s%s%c", flags, width >= 0 ? "*" : "", prec >= 0 ? ".*" : "",
                     conv);
            break;
        default:
            return jeval_fail(c, at, SEM_EINVAL, "format: unsupported format character '%c'", conv);
        }
        int w = (int)width, p = (int)prec;
        bool is_float = strchr("eEfFgG", conv) != NULL;
        long long iv = (long long)number_as_int(arg);
        double dv = jv_as_double(arg);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (is_float) {
            if (width >= 0 && prec >= 0)
                snprintf(num, sizeof num, spec, w, p, dv);
            else if (width >= 0)
                snprintf(num, sizeof num, spec, w, dv);
            else if (prec >= 0)
                snprintf(num, sizeof num, spec, p, dv);
            else
                snprintf(num, sizeof num, spec, dv);
        } else {
            if (width >= 0 && prec >= 0)
                snprintf(num, sizeof num, spec, w, p, iv);
            else if (width >= 0)
                snprintf(num, sizeof num, spec, w, iv);
            else if (prec >= 0)
                snprintf(num, sizeof num, spec, p, iv);
            else
                snprintf(num, sizeof num, spec, iv);
        }
#pragma GCC diagnostic pop
        if (jbuf_puts(&b, num) != 0)
            return jeval_buf_fail(c, at, &b);
    }
    if (!map && !used_map && next < nargs)
        return jeval_fail(c, at, SEM_EINVAL, "format: not all arguments converted during string formatting");
    *out = jeval_buf_str(&b);
    return 0;
}

/* One replacement field of str.format with its spec
 * [[fill]align][sign][0][width][.precision][type]. */
static int format_field(rctx *c, const jnode *at, jbuf *b, jv v, char conv, const char *spec,
                        size_t spec_len)
{
    if (conv == 'r' || conv == 'a') {
        jbuf r = {.arena = &c->arena};
        if (jv_write_repr(&r, v) != 0)
            return jeval_buf_fail(c, at, &r);
        v = jeval_buf_str(&r);
    } else if (conv == 's') {
        if (to_str(c, at, v, &v) != 0)
            return -1;
    }
    const char *p = spec, *end = spec + spec_len;
    char fill[5] = " ";
    size_t fill_len = 1;
    char align = 0, sign = 0, type = 0;
    int64_t width = -1, prec = -1;
    if (p < end) {
        size_t l = utf8_seq_len(p, (size_t)(end - p));
        if (p + l < end && strchr("<>^=", p[l])) {
            memcpy(fill, p, l);
            fill_len = l;
            align = p[l];
            p += l + 1;
        } else if (strchr("<>^=", *p)) {
            align = *p++;
        }
    }
    if (p < end && strchr("+- ", *p))
        sign = *p++;
    if (p < end && *p == '0') {
        if (!align) {
            fill[0] = '0';
            fill_len = 1;
            align = '=';
        }
        p++;
    }
    while (p < end && isdigit((unsigned char)*p))
        width = (width < 0 ? 0 : width) * 10 + (*p++ - '0');
    if (p < end && *p == '.') {
        p++;
        prec = 0;
        while (p < end && isdigit((unsigned char)*p))
            prec = prec * 10 + (*p++ - '0');
    }
    if (p < end)
        type = *p++;
    if (p != end || width > 4096 || prec > 4096)
        return jeval_fail(c, at, SEM_EINVAL, "format: unsupported format spec '%.*s'", (int)spec_len, spec);
    jv text;
    char num[4200];
    bool numeric = false;
    if (v.type == JV_STR || (!type && !jv_is_number(v)) || type == 's') {
        if (to_str(c, at, v, &text) != 0)
            return -1;
        text = truncate_cp(text, prec);
    } else if (jv_is_number(v)) {
        numeric = true;
        char sg[2] = {sign == '+' || sign == ' ' ? sign : 0, 0};
        if (type == 'd' || (!type && v.type != JV_FLOAT)) {
            if (v.type == JV_FLOAT)
                return jeval_fail(c, at, SEM_EINVAL, "format: 'd' needs an integer");
            snprintf(num, sizeof num, "%s%lld", number_as_int(v) >= 0 ? sg : "", (long long)number_as_int(v));
        } else if (!type && prec < 0) {
            jbuf r = {.arena = &c->arena};
            if (jv_write_str(&r, v) != 0)
                return jeval_buf_fail(c, at, &r);
            snprintf(num, sizeof num, "%s%.*s", jv_as_double(v) >= 0 ? sg : "", (int)r.len, r.p);
        } else if (type == '%') {
            snprintf(num, sizeof num, "%s%.*f%%", jv_as_double(v) >= 0 ? sg : "", (int)(prec < 0 ? 6 : prec),
                     jv_as_double(v) * 100.0);
        } else if (strchr("fFeEgG", type ? type : 'g')) {
            char t = type ? type : 'g';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            char f[8] = {'%', 's', '%', '.', '*', t, 0};
            snprintf(num, sizeof num, f, jv_as_double(v) >= 0 ? sg : "", (int)(prec < 0 ? 6 : prec),
                     jv_as_double(v));
#pragma GCC diagnostic pop
        } else {
            return jeval_fail(c, at, SEM_EINVAL, "format: unsupported format type '%c'", type);
        }
        text = jv_cstr(num);
    } else {
        return jeval_fail(c, at, SEM_EINVAL, "format: cannot format %s with '%.*s'", jv_type_name(v),
                          (int)spec_len, spec);
    }
    if (!align)
        align = numeric ? '>' : '<';
    if (align == '=') {
        /* Padding after the sign. */
        if (numeric && (text.u.s[0] == '-' || text.u.s[0] == '+' || text.u.s[0] == ' ')) {
            if (jbuf_put(b, text.u.s, 1) != 0)
                return jeval_buf_fail(c, at, b);
            text = jv_str(text.u.s + 1, text.len - 1);
            width = width > 0 ? width - 1 : width;
        }
        align = '>';
    }
    if (pad_to(b, text, width, align, fill, fill_len) != 0)
        return jeval_buf_fail(c, at, b);
    return 0;
}

/* Python str.format with {} / {0} / {name}, !r !s, and simple specs. */
static int str_format(rctx *c, const jnode *at, jv fmt, const jargs *a, jv *out)
{
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    size_t auto_idx = 0;
    const char *s = fmt.u.s;
    size_t n = fmt.len;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '}') {
            if (i + 1 < n && s[i + 1] == '}') {
                i++;
            } else {
                return jeval_fail(c, at, SEM_EINVAL, "format: single '}' in the format string");
            }
        } else if (ch == '{') {
            if (i + 1 < n && s[i + 1] == '{') {
                i++;
            } else {
                const char *close = memchr(s + i, '}', n - i);
                if (!close)
                    return jeval_fail(c, at, SEM_EINVAL, "format: single '{' in the format string");
                const char *f = s + i + 1, *fe = close;
                const char *name_end = f;
                while (name_end < fe && *name_end != '!' && *name_end != ':')
                    name_end++;
                char conv = 0;
                const char *spec = fe;
                if (name_end < fe && *name_end == '!') {
                    if (name_end + 1 >= fe)
                        return jeval_fail(c, at, SEM_EINVAL, "format: bad conversion");
                    conv = name_end[1];
                    spec = name_end + 2 < fe && name_end[2] == ':' ? name_end + 3 : fe;
                } else if (name_end < fe) {
                    spec = name_end + 1;
                }
                size_t nl = (size_t)(name_end - f);
                jv v;
                bool digits = nl > 0;
                for (size_t k = 0; k < nl && digits; k++)
                    digits = isdigit((unsigned char)f[k]);
                if (nl == 0 || digits) {
                    size_t idx = nl == 0 ? auto_idx++ : (size_t)strtoul(f, NULL, 10);
                    if (!jargs_get(a, idx, NULL, &v))
                        return jeval_fail(c, at, SEM_EINVAL, "format: replacement index %zu out of range", idx);
                } else {
                    bool found = false;
                    for (size_t k = 0; k < a->nkw && !found; k++)
                        if (strlen(a->kw[k]) == nl && memcmp(a->kw[k], f, nl) == 0) {
                            v = a->kwv[k];
                            found = true;
                        }
                    if (!found)
                        return jeval_fail(c, at, SEM_EINVAL, "format: no argument named '%.*s'", (int)nl, f);
                }
                if (format_field(c, at, &b, v, conv, spec, (size_t)(fe - spec)) != 0)
                    return -1;
                i = (size_t)(close - s);
                continue;
            }
        }
        if (jbuf_putc(&b, ch) != 0)
            return jeval_buf_fail(c, at, &b);
    }
    *out = jeval_buf_str(&b);
    return 0;
}

/* ---------------------------------------------------------------- str methods */

/* Decodes the code point that ends at byte e (not before b). */
static uint32_t decode_prev(const char *s, size_t b, size_t e, size_t *start)
{
    size_t k = e - 1;
    while (k > b && ((unsigned char)s[k] & 0xC0) == 0x80 && e - k < 4)
        k--;
    size_t used;
    uint32_t cp = utf8_decode(s + k, e - k, &used);
    if (k + used != e) {
        k = e - 1;
        cp = (unsigned char)s[k];
    }
    *start = k;
    return cp;
}

static int split_str(rctx *c, const jnode *at, jv s, const jv *sep, int64_t maxsplit, bool right,
                     jv *out)
{
    jv_list *l = jv_list_new(&c->arena, 4);
    if (!l)
        return jeval_nomem(c, at);
    int64_t count = 0;
    const char *p = s.u.s;
    if (!sep) {
        if (!right) {
            size_t i = 0;
            for (;;) {
                while (i < s.len) {
                    size_t used;
                    if (!unicode_is_space(utf8_decode(p + i, s.len - i, &used)))
                        break;
                    i += used;
                }
                if (i >= s.len)
                    break;
                if (maxsplit >= 0 && count >= maxsplit) {
                    if (jv_list_push(&c->arena, l, jv_str(p + i, s.len - i)) != 0)
                        return jeval_nomem(c, at);
                    break;
                }
                size_t j = i;
                while (j < s.len) {
                    size_t used;
                    if (unicode_is_space(utf8_decode(p + j, s.len - j, &used)))
                        break;
                    j += used;
                }
                if (jv_list_push(&c->arena, l, jv_str(p + i, j - i)) != 0)
                    return jeval_nomem(c, at);
                count++;
                i = j;
            }
        } else {
            size_t j = s.len;
            for (;;) {
                while (j > 0) {
                    size_t st;
                    if (!unicode_is_space(decode_prev(p, 0, j, &st)))
                        break;
                    j = st;
                }
                if (j == 0)
                    break;
                if (maxsplit >= 0 && count >= maxsplit) {
                    if (jv_list_push(&c->arena, l, jv_str(p, j)) != 0)
                        return jeval_nomem(c, at);
                    break;
                }
                size_t i = j;
                while (i > 0) {
                    size_t st;
                    if (unicode_is_space(decode_prev(p, 0, i, &st)))
                        break;
                    i = st;
                }
                if (jv_list_push(&c->arena, l, jv_str(p + i, j - i)) != 0)
                    return jeval_nomem(c, at);
                count++;
                j = i;
            }
        }
    } else {
        if (sep->len == 0)
            return jeval_fail(c, at, SEM_EINVAL, "split: empty separator");
        if (!right) {
            size_t i = 0;
            while (maxsplit < 0 || count < maxsplit) {
                const char *hit = memmem(p + i, s.len - i, sep->u.s, sep->len);
                if (!hit)
                    break;
                size_t k = (size_t)(hit - p);
                if (jv_list_push(&c->arena, l, jv_str(p + i, k - i)) != 0)
                    return jeval_nomem(c, at);
                i = k + sep->len;
                count++;
            }
            if (jv_list_push(&c->arena, l, jv_str(p + i, s.len - i)) != 0)
                return jeval_nomem(c, at);
        } else {
            size_t j = s.len;
            while ((maxsplit < 0 || count < maxsplit) && j >= sep->len) {
                size_t k = j - sep->len;
                bool found = false;
                for (;; k--) {
                    if (memcmp(p + k, sep->u.s, sep->len) == 0) {
                        found = true;
                        break;
                    }
                    if (k == 0)
                        break;
                }
                if (!found)
                    break;
                if (jv_list_push(&c->arena, l, jv_str(p + k + sep->len, j - k - sep->len)) != 0)
                    return jeval_nomem(c, at);
                j = k;
                count++;
            }
            if (jv_list_push(&c->arena, l, jv_str(p, j)) != 0)
                return jeval_nomem(c, at);
        }
    }
    if (right) {
        for (size_t i = 0; i < l->len / 2; i++) {
            jv t = l->items[i];
            l->items[i] = l->items[l->len - 1 - i];
            l->items[l->len - 1 - i] = t;
        }
    }
    *out = list_value(l);
    return 0;
}

static bool affix_match(jv s, jv affix, bool suffix)
{
    if (affix.len > s.len)
        return false;
    const char *at = suffix ? s.u.s + s.len - affix.len : s.u.s;
    return affix.len == 0 || memcmp(at, affix.u.s, affix.len) == 0;
}

static int str_affix(rctx *c, const jnode *at, jv s, const jargs *a, bool suffix, const char *name,
                     jv *out)
{
    jv arg;
    if (jargs_check(c, at, a, name, 1, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &arg))
        return jeval_fail(c, at, SEM_EINVAL, "%s needs an argument", name);
    bool r = false;
    if (arg.type == JV_STR) {
        r = affix_match(s, arg, suffix);
    } else if (arg.type == JV_LIST) {
        for (size_t i = 0; i < arg.u.list->len && !r; i++) {
            jv x = arg.u.list->items[i];
            if (x.type != JV_STR)
                return jeval_fail(c, at, SEM_EINVAL, "%s: tuple items must be strings", name);
            r = affix_match(s, x, suffix);
        }
    } else {
        return jeval_fail(c, at, SEM_EINVAL, "%s needs a string or tuple of strings, not %s", name,
                          jv_type_name(arg));
    }
    *out = jv_bool(r);
    return 0;
}

static int str_find(rctx *c, const jnode *at, jv s, const jargs *a, const char *name, bool right,
                    bool must, jv *out)
{
    jv sub;
    if (jargs_check(c, at, a, name, 1, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &sub) || need_str(c, at, name, sub, &sub) != 0)
        return jeval_fail(c, at, SEM_EINVAL, "%s needs a string argument", name);
    int64_t idx = -1;
    if (!right) {
        const char *hit = sub.len == 0 ? s.u.s : memmem(s.u.s, s.len, sub.u.s, sub.len);
        if (hit)
            idx = (int64_t)utf8_count(s.u.s, (size_t)(hit - s.u.s));
    } else if (sub.len <= s.len) {
        for (size_t k = s.len - sub.len + 1; k-- > 0;)
            if (sub.len == 0 || memcmp(s.u.s + k, sub.u.s, sub.len) == 0) {
                idx = (int64_t)utf8_count(s.u.s, k);
                break;
            }
    }
    if (idx < 0 && must)
        return jeval_fail(c, at, SEM_EINVAL, "%s: substring not found", name);
    *out = jv_int(idx);
    return 0;
}

static bool all_chars(jv s, int (*pred)(int))
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.u.s[i] >= 0x80 || !pred((unsigned char)s.u.s[i]))
            return false;
    return true;
}

static int justify(rctx *c, const jnode *at, jv s, const jargs *a, char align, const char *name, jv *out)
{
    jv wv, fill = jv_cstr(" ");
    int64_t width;
    if (jargs_check(c, at, a, name, 2, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &wv) || need_int(c, at, name, wv, &width) != 0)
        return jeval_fail(c, at, SEM_EINVAL, "%s needs a width", name);
    if (jargs_get(a, 1, NULL, &fill) && (fill.type != JV_STR || utf8_count(fill.u.s, fill.len) != 1))
        return jeval_fail(c, at, SEM_EINVAL, "%s: the fill character must be one character", name);
    if (width > (int64_t)c->lim.max_output_bytes)
        return jeval_fail(c, at, SEM_EINVAL, "%s: width exceeds the output limit", name);
    jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    if (pad_to(&b, s, width, align, fill.u.s, fill.len) != 0)
        return jeval_buf_fail(c, at, &b);
    *out = jeval_buf_str(&b);
    return 0;
}

static int str_method(rctx *c, const jnode *at, jv s, const char *m, const jargs *a, jv *out,
                      bool *found)
{
    *found = true;
    if (strcmp(m, "strip") == 0 || strcmp(m, "lstrip") == 0 || strcmp(m, "rstrip") == 0) {
        int where = m[0] == 'l' ? STRIP_LEFT : m[0] == 'r' ? STRIP_RIGHT : STRIP_BOTH;
        jv chars;
        if (jargs_check(c, at, a, m, 1, NULL) != 0)
            return -1;
        bool has = jargs_get(a, 0, NULL, &chars) && chars.type != JV_NONE;
        if (has && need_str(c, at, m, chars, &chars) != 0)
            return -1;
        *out = strip(s, has ? &chars : NULL, where);
        return 0;
    }
    if (strcmp(m, "split") == 0 || strcmp(m, "rsplit") == 0) {
        static const char *const kws[] = {"sep", "maxsplit", NULL};
        if (jargs_check(c, at, a, m, 2, kws) != 0)
            return -1;
        jv sep, ms;
        int64_t maxsplit = -1;
        bool has_sep = jargs_get(a, 0, "sep", &sep) && sep.type != JV_NONE;
        if (has_sep && need_str(c, at, "split(sep)", sep, &sep) != 0)
            return -1;
        if (jargs_get(a, 1, "maxsplit", &ms) && need_int(c, at, "split(maxsplit)", ms, &maxsplit) != 0)
            return -1;
        return split_str(c, at, s, has_sep ? &sep : NULL, maxsplit, m[0] == 'r', out);
    }
    if (strcmp(m, "splitlines") == 0) {
        jv nl = jv_cstr("\n");
        if (jargs_check(c, at, a, m, 0, NULL) != 0 || split_str(c, at, s, &nl, -1, false, out) != 0)
            return -1;
        jv_list *l = out->u.list;
        for (size_t i = 0; i < l->len; i++) /* drop the \r of \r\n */
            if (l->items[i].len && l->items[i].u.s[l->items[i].len - 1] == '\r')
                l->items[i].len--;
        if (l->len && l->items[l->len - 1].len == 0)
            l->len--;
        return 0;
    }
    if (strcmp(m, "startswith") == 0)
        return str_affix(c, at, s, a, false, m, out);
    if (strcmp(m, "endswith") == 0)
        return str_affix(c, at, s, a, true, m, out);
    if (strcmp(m, "removeprefix") == 0 || strcmp(m, "removesuffix") == 0) {
        jv affix;
        bool suffix = m[6] == 's';
        if (jargs_check(c, at, a, m, 1, NULL) != 0 || !jargs_get(a, 0, NULL, &affix) ||
            need_str(c, at, m, affix, &affix) != 0)
            return jeval_fail(c, at, SEM_EINVAL, "%s needs a string", m);
        *out = !affix_match(s, affix, suffix) ? s
               : suffix                       ? jv_str(s.u.s, s.len - affix.len)
                                              : jv_str(s.u.s + affix.len, s.len - affix.len);
        return 0;
    }
    if (strcmp(m, "replace") == 0)
        return replace_args(c, at, s, a, "replace", out);
    if (strcmp(m, "upper") == 0 || strcmp(m, "lower") == 0 || strcmp(m, "title") == 0 ||
        strcmp(m, "capitalize") == 0) {
        int mode = m[0] == 'u' ? CASE_UPPER : m[0] == 'l' ? CASE_LOWER : m[0] == 't' ? CASE_TITLE : CASE_CAPITALIZE;
        if (jargs_check(c, at, a, m, 0, NULL) != 0)
            return -1;
        return change_case(c, at, s, mode, out);
    }
    if (strcmp(m, "find") == 0)
        return str_find(c, at, s, a, m, false, false, out);
    if (strcmp(m, "rfind") == 0)
        return str_find(c, at, s, a, m, true, false, out);
    if (strcmp(m, "index") == 0)
        return str_find(c, at, s, a, m, false, true, out);
    if (strcmp(m, "rindex") == 0)
        return str_find(c, at, s, a, m, true, true, out);
    if (strcmp(m, "count") == 0) {
        jv sub;
        if (jargs_check(c, at, a, m, 1, NULL) != 0 || !jargs_get(a, 0, NULL, &sub) ||
            need_str(c, at, "count", sub, &sub) != 0)
            return jeval_fail(c, at, SEM_EINVAL, "count needs a string argument");
        int64_t k = 0;
        if (sub.len == 0) {
            k = (int64_t)utf8_count(s.u.s, s.len) + 1;
        } else {
            for (size_t i = 0; i + sub.len <= s.len;) {
                const char *hit = memmem(s.u.s + i, s.len - i, sub.u.s, sub.len);
                if (!hit)
                    break;
                k++;
                i = (size_t)(hit - s.u.s) + sub.len;
            }
        }
        *out = jv_int(k);
        return 0;
    }
    if (strcmp(m, "join") == 0) {
        jv seq;
        const jv *items;
        size_t n;
        if (jargs_check(c, at, a, m, 1, NULL) != 0 || !jargs_get(a, 0, NULL, &seq))
            return jeval_fail(c, at, SEM_EINVAL, "join needs an iterable");
        if (jeval_iterate(c, at, seq, &items, &n) != 0)
            return -1;
        jbuf b = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
        for (size_t i = 0; i < n; i++)
            if ((i && jbuf_put(&b, s.u.s, s.len) != 0) || jv_write_str(&b, items[i]) != 0)
                return jeval_buf_fail(c, at, &b);
        *out = jeval_buf_str(&b);
        return 0;
    }
    if (strcmp(m, "format") == 0)
        return str_format(c, at, s, a, out);
    if (strcmp(m, "ljust") == 0)
        return justify(c, at, s, a, '<', m, out);
    if (strcmp(m, "rjust") == 0)
        return justify(c, at, s, a, '>', m, out);
    if (strcmp(m, "center") == 0)
        return justify(c, at, s, a, '^', m, out);
    static const struct {
        const char *name;
        int (*pred)(int);
    } preds[] = {{"isdigit", isdigit}, {"isdecimal", isdigit}, {"isnumeric", isdigit},
                 {"isalpha", isalpha}, {"isalnum", isalnum},   {"isspace", isspace}};
    for (size_t k = 0; k < sizeof preds / sizeof *preds; k++)
        if (strcmp(m, preds[k].name) == 0) {
            if (jargs_check(c, at, a, m, 0, NULL) != 0)
                return -1;
            *out = jv_bool(all_chars(s, preds[k].pred));
            return 0;
        }
    if (strcmp(m, "islower") == 0 || strcmp(m, "isupper") == 0) {
        if (jargs_check(c, at, a, m, 0, NULL) != 0)
            return -1;
        *out = jv_bool(all_cased(s, m[2] == 'u'));
        return 0;
    }
    *found = false;
    return 0;
}

/* ---------------------------------------------------------------- dict, loop, list methods */

static int dict_method(rctx *c, const jnode *at, jv d, const char *m, const jargs *a, jv *out,
                       bool *found)
{
    *found = true;
    if (strcmp(m, "items") == 0) {
        if (jargs_check(c, at, a, m, 0, NULL) != 0)
            return -1;
        return items_of(c, at, d, out);
    }
    if (strcmp(m, "keys") == 0 || strcmp(m, "values") == 0) {
        if (jargs_check(c, at, a, m, 0, NULL) != 0)
            return -1;
        const jv_dict *dd = d.u.dict;
        return copy_list(c, at, m[0] == 'k' ? dd->keys : dd->vals, dd->len, out);
    }
    if (strcmp(m, "get") == 0) {
        static const char *const kws[] = {"key", "default", NULL};
        jv key, def = jv_none();
        if (jargs_check(c, at, a, m, 2, kws) != 0)
            return -1;
        if (!jargs_get(a, 0, "key", &key))
            return jeval_fail(c, at, SEM_EINVAL, "get needs a key");
        jargs_get(a, 1, "default", &def);
        const jv *v = jv_dict_get(d.u.dict, key);
        *out = v ? *v : def;
        return 0;
    }
    if (strcmp(m, "copy") == 0) {
        if (jargs_check(c, at, a, m, 0, NULL) != 0)
            return -1;
        jv_dict *nd = jv_dict_new(&c->arena, d.u.dict->len);
        if (!nd)
            return jeval_nomem(c, at);
        for (size_t i = 0; i < d.u.dict->len; i++)
            if (jv_dict_set(&c->arena, nd, d.u.dict->keys[i], d.u.dict->vals[i]) != 0)
                return jeval_nomem(c, at);
        *out = dict_value(nd);
        return 0;
    }
    static const char *const mutators[] = {"update", "pop", "popitem", "setdefault", "clear"};
    for (size_t k = 0; k < sizeof mutators / sizeof *mutators; k++)
        if (strcmp(m, mutators[k]) == 0)
            return jeval_fail(c, at, SEM_EINVAL,
                              "dict.%s() is not allowed: templates cannot modify dicts (use a namespace)",
                              m);
    *found = false;
    return 0;
}

int jinja_call_method(rctx *c, const jnode *at, jv obj, const char *name, const jargs *a, jv *out,
                      bool *found)
{
    *found = false;
    switch (obj.type) {
    case JV_STR:
        return str_method(c, at, obj, name, a, out, found);
    case JV_DICT:
        return dict_method(c, at, obj, name, a, out, found);
    case JV_LOOP:
        if (strcmp(name, "cycle") == 0) {
            *found = true;
            if (a->nkw || a->npos == 0)
                return jeval_fail(c, at, SEM_EINVAL, "loop.cycle needs at least one positional argument");
            *out = a->pos[obj.u.loop->index0 % a->npos];
        }
        return 0;
    case JV_LIST: {
        static const char *const mutators[] = {"append", "extend", "insert", "pop",
                                               "remove", "clear",  "sort",   "reverse"};
        for (size_t k = 0; k < sizeof mutators / sizeof *mutators; k++)
            if (strcmp(name, mutators[k]) == 0)
                return jeval_fail(c, at, SEM_EINVAL,
                                  "list.%s() is not allowed: templates cannot modify lists (HF "
                                  "renders them in an immutable sandbox); build a new list with +",
                                  name);
        if (strcmp(name, "index") == 0 || strcmp(name, "count") == 0) {
            jv x;
            *found = true;
            if (jargs_check(c, at, a, name, 1, NULL) != 0 || !jargs_get(a, 0, NULL, &x))
                return jeval_fail(c, at, SEM_EINVAL, "list.%s needs one argument", name);
            int64_t idx = -1, cnt = 0;
            if (jeval_charge(c, at, obj.u.list->len / 8) != 0)
                return -1;
            for (size_t i = 0; i < obj.u.list->len; i++)
                if (jv_equal(obj.u.list->items[i], x)) {
                    cnt++;
                    if (idx < 0)
                        idx = (int64_t)i;
                }
            if (name[0] == 'i' && idx < 0)
                return jeval_fail(c, at, SEM_EINVAL, "list.index: value is not in the list");
            *out = jv_int(name[0] == 'i' ? idx : cnt);
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- globals */

const char *const jinja_func_names[JFUNC_COUNT] = {
    [JFUNC_RANGE] = "range",
    [JFUNC_NAMESPACE] = "namespace",
    [JFUNC_DICT] = "dict",
    [JFUNC_RAISE_EXCEPTION] = "raise_exception",
    [JFUNC_STRFTIME_NOW] = "strftime_now",
};

static int g_range(rctx *c, const jnode *at, const jargs *a, jv *out)
{
    if (jargs_check(c, at, a, "range", 3, NULL) != 0)
        return -1;
    if (a->npos == 0)
        return jeval_fail(c, at, SEM_EINVAL, "range expected at least 1 argument");
    int64_t v[3] = {0, 0, 0};
    for (size_t k = 0; k < a->npos; k++)
        if (need_int(c, at, "range argument", a->pos[k], &v[k]) != 0)
            return -1;
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = v[0];
    } else {
        start = v[0];
        stop = v[1];
        if (a->npos == 3)
            step = v[2];
    }
    if (step == 0)
        return jeval_fail(c, at, SEM_EINVAL, "range() step must not be zero");
    uint64_t count = 0;
    if (step > 0 && start < stop)
        count = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > stop)
        count = ((uint64_t)start - (uint64_t)stop - 1) / (uint64_t)(-(step + 1) + 1) + 1;
    if (count > c->lim.max_loop_iterations)
        return jeval_fail(c, at, SEM_EINVAL, "range() of %llu items exceeds the loop limit of %llu",
                          (unsigned long long)count, (unsigned long long)c->lim.max_loop_iterations);
    jv_list *l = jv_list_new(&c->arena, (size_t)count);
    if (!l)
        return jeval_nomem(c, at);
    for (uint64_t k = 0; k < count; k++)
        l->items[l->len++] = jv_int(start + (int64_t)k * step);
    *out = list_value(l);
    return 0;
}

/* namespace(...) and dict(...): an optional mapping, then keyword items. */
static int g_mapping(rctx *c, const jnode *at, const jargs *a, jv *out, bool ns)
{
    const char *what = ns ? "namespace" : "dict";
    if (a->npos > 1)
        return jeval_fail(c, at, SEM_EINVAL, "%s takes at most one positional argument", what);
    jv_dict *d = jv_dict_new(&c->arena, a->nkw + 4);
    if (!d)
        return jeval_nomem(c, at);
    if (a->npos == 1) {
        jv init = a->pos[0];
        if (init.type == JV_DICT || init.type == JV_NAMESPACE) {
            for (size_t i = 0; i < init.u.dict->len; i++)
                if (jv_dict_set(&c->arena, d, init.u.dict->keys[i], init.u.dict->vals[i]) != 0)
                    return jeval_nomem(c, at);
        } else if (init.type == JV_LIST) {
            for (size_t i = 0; i < init.u.list->len; i++) {
                jv pair = init.u.list->items[i];
                if (pair.type != JV_LIST || pair.u.list->len != 2)
                    return jeval_fail(c, at, SEM_EINVAL, "%s: sequence items must be pairs", what);
                if (jv_dict_set(&c->arena, d, pair.u.list->items[0], pair.u.list->items[1]) != 0)
                    return jeval_nomem(c, at);
            }
        } else {
            return jeval_fail(c, at, SEM_EINVAL, "%s: cannot build a mapping from %s", what,
                              jv_type_name(init));
        }
    }
    for (size_t k = 0; k < a->nkw; k++)
        if (jv_dict_set(&c->arena, d, jv_cstr(a->kw[k]), a->kwv[k]) != 0)
            return jeval_nomem(c, at);
    *out = (jv){.type = ns ? JV_NAMESPACE : JV_DICT};
    out->u.dict = d;
    return 0;
}

static int g_strftime_now(rctx *c, const jnode *at, const jargs *a, jv *out)
{
    jv fmt;
    if (jargs_check(c, at, a, "strftime_now", 1, NULL) != 0)
        return -1;
    if (!jargs_get(a, 0, NULL, &fmt) || fmt.type != JV_STR)
        return jeval_fail(c, at, SEM_EINVAL, "strftime_now needs a format string");
    if (fmt.len > 256)
        return jeval_fail(c, at, SEM_EINVAL, "strftime_now: format longer than 256 bytes");
    char f[260], buf[1024];
    memcpy(f, fmt.u.s, fmt.len);
    f[fmt.len] = '\0';
    struct tm tm;
    time_t now = c->now;
    if (!(c->local_time ? localtime_r(&now, &tm) : gmtime_r(&now, &tm)))
        return jeval_fail(c, at, SEM_EINVAL, "strftime_now: the clock value cannot be converted");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(buf, sizeof buf, f, &tm);
#pragma GCC diagnostic pop
    if (n == 0 && fmt.len > 0)
        return jeval_fail(c, at, SEM_EINVAL, "strftime_now: format '%s' gives no text or too much", f);
    bool ok;
    *out = new_str(c, buf, n, &ok);
    return ok ? 0 : jeval_nomem(c, at);
}

int jinja_call_global(rctx *c, const jnode *at, int id, const jargs *a, jv *out)
{
    switch (id) {
    case JFUNC_RANGE:
        return g_range(c, at, a, out);
    case JFUNC_NAMESPACE:
        return g_mapping(c, at, a, out, true);
    case JFUNC_DICT:
        return g_mapping(c, at, a, out, false);
    case JFUNC_RAISE_EXCEPTION: {
        jv msg = jv_cstr("(no message)");
        jargs_get(a, 0, "message", &msg);
        jv s;
        if (to_str(c, at, msg, &s) != 0)
            return -1;
        return jeval_fail(c, at, SEM_EINVAL, "raise_exception: %.*s", (int)(s.len > 400 ? 400 : s.len),
                          s.u.s);
    }
    case JFUNC_STRFTIME_NOW:
        return g_strftime_now(c, at, a, out);
    default:
        return jeval_fail(c, at, SEM_EINTERNAL, "unknown built-in function id %d", id);
    }
}
