/*
 * jinja_eval.c - runs a parsed template: scopes, expressions, statements,
 * macro calls, and the limits that keep a hostile template bounded.
 *
 * Scopes follow Jinja2: the caller's context and the globals form the
 * outermost frame; the template's top level is the root frame; each for loop
 * and each macro call opens a frame. `{% set %}` writes to the innermost
 * frame, so a variable set inside a loop does not leak out of it (use a
 * namespace for that, as templates do). A macro's frame has the root as its
 * parent, so macros see top-level variables and each other.
 *
 * Undefined values are Jinja's default Undefined: printed as "", false,
 * iterable as empty, == only to another undefined; reading an attribute or
 * item of one, doing arithmetic or ordering with one, is an error that names
 * the variable.
 *
 * Limits (jinja_limits) are checked as the render goes: every expression and
 * statement costs one step; every loop iteration counts; recursion depth is
 * bounded. Hitting one stops the render with SEM_EINVAL and says which.
 */
#include "jinja_eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_MAX_OUTPUT (32u * 1024u * 1024u)
#define DEFAULT_MAX_MEMORY (256u * 1024u * 1024u)
#define DEFAULT_MAX_STEPS 20000000ull
#define DEFAULT_MAX_LOOP 1000000ull
#define DEFAULT_MAX_CALLS 64
#define EVAL_MAX_DEPTH 500    /* C recursion of eval/exec, all macros together */
#define TREE_MAX_DEPTH 200    /* deepest expression tree accepted at parse time */
/* Helpers on the recursive path are kept out of line so that eval and exec
 * keep small frames: about 250 bytes per level in a release build. */
#define COLD __attribute__((noinline, cold))
#define OUTLINE __attribute__((noinline))
#define JSON_MAX_DEPTH 128    /* nesting of the JSON context */

struct jinja_template {
    jinja_tree *tree;
};

/* ---------------------------------------------------------------- errors */

COLD static int vfail(rctx *c, const jnode *at, sem_status st, const char *fmt, va_list ap)
{
    if (c->failed)
        return -1;
    c->failed = true;
    char msg[SEM_ERR_DETAIL_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (at)
        sem_err_set(c->err, st, "template line %u, column %u: %s", at->line, at->col, msg);
    else
        sem_err_set(c->err, st, "%s", msg);
    return -1;
}

COLD int jeval_fail(rctx *c, const jnode *at, sem_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, at, st, fmt, ap);
    va_end(ap);
    return -1;
}

int jeval_fail_err(rctx *c, const jnode *at, const sem_err *e)
{
    return jeval_fail(c, at, e->status ? e->status : SEM_EINVAL, "%s", e->detail);
}

COLD int jeval_nomem(rctx *c, const jnode *at)
{
    if (c->arena.over_limit)
        return jeval_fail(c, at, SEM_EINVAL,
                          "rendering needs more than the memory limit of %zu bytes",
                          c->arena.limit);
    return jeval_fail(c, at, SEM_ENOMEM, "out of memory while rendering");
}

COLD int jeval_buf_fail(rctx *c, const jnode *at, const jbuf *b)
{
    if (b->failed == JBUF_OVER_LIMIT) {
        if (b->arena && b->arena->over_limit)
            return jeval_nomem(c, at);
        return jeval_fail(c, at, SEM_EINVAL, "the rendered text exceeds the output limit of %zu bytes",
                          b->limit);
    }
    return jeval_fail(c, at, SEM_ENOMEM, "out of memory while rendering");
}

jv jeval_buf_str(const jbuf *b) { return jv_str(b->p ? b->p : "", b->len); }

int jeval_charge(rctx *c, const jnode *at, uint64_t cost)
{
    c->steps += cost;
    if (c->steps > c->lim.max_steps)
        return jeval_fail(c, at, SEM_EINVAL,
                          "rendering exceeded the limit of %llu evaluation steps (an endless loop?)",
                          (unsigned long long)c->lim.max_steps);
    return 0;
}

int jeval_require_defined(rctx *c, const jnode *at, jv v)
{
    if (v.type != JV_UNDEFINED)
        return 0;
    return jeval_fail(c, at, SEM_EINVAL, "'%.*s' is undefined", (int)v.len, v.u.s ? v.u.s : "");
}

/* ---------------------------------------------------------------- scopes */

static jv *lookup(rctx *c, const char *name, size_t len)
{
    for (jframe *f = c->frame; f; f = f->parent) {
        jv *v = jv_dict_get_str(f->vars, name, len);
        if (v)
            return v;
    }
    return NULL;
}

static int assign(rctx *c, const jnode *at, jframe *f, const char *name, size_t len, jv v)
{
    if (jv_dict_set(&c->arena, f->vars, jv_str(name, len), v) != 0)
        return jeval_nomem(c, at);
    return 0;
}

static int new_frame(rctx *c, const jnode *at, jframe *f, jframe *parent)
{
    f->parent = parent;
    f->vars = jv_dict_new(&c->arena, 4);
    return f->vars ? 0 : jeval_nomem(c, at);
}

/* ---------------------------------------------------------------- access */

int jeval_iterate(rctx *c, const jnode *at, jv v, const jv **items, size_t *n)
{
    switch (v.type) {
    case JV_UNDEFINED:
        *items = NULL;
        *n = 0;
        return 0;
    case JV_LIST:
        *items = v.u.list->items;
        *n = v.u.list->len;
        return 0;
    case JV_DICT:
        *items = v.u.dict->keys;
        *n = v.u.dict->len;
        return 0;
    case JV_STR: {
        size_t count = utf8_count(v.u.s, v.len);
        jv *chars = count ? jarena_alloc(&c->arena, count * sizeof *chars) : NULL;
        if (count && !chars)
            return jeval_nomem(c, at);
        size_t off = 0;
        for (size_t k = 0; k < count; k++) {
            size_t l = utf8_seq_len(v.u.s + off, v.len - off);
            chars[k] = jv_str(v.u.s + off, l);
            off += l;
        }
        *items = chars;
        *n = count;
        return 0;
    }
    default:
        return jeval_fail(c, at, SEM_EINVAL, "'%s' object is not iterable", jv_type_name(v));
    }
}

static int loop_attr(rctx *c, const jnode *at, const struct jv_loop *L, const char *name, jv *out)
{
    (void)c;
    (void)at;
    if (strcmp(name, "index0") == 0)
        *out = jv_int((int64_t)L->index0);
    else if (strcmp(name, "index") == 0)
        *out = jv_int((int64_t)L->index0 + 1);
    else if (strcmp(name, "revindex") == 0)
        *out = jv_int((int64_t)(L->length - L->index0));
    else if (strcmp(name, "revindex0") == 0)
        *out = jv_int((int64_t)(L->length - L->index0 - 1));
    else if (strcmp(name, "first") == 0)
        *out = jv_bool(L->index0 == 0);
    else if (strcmp(name, "last") == 0)
        *out = jv_bool(L->index0 + 1 == L->length);
    else if (strcmp(name, "length") == 0)
        *out = jv_int((int64_t)L->length);
    else if (strcmp(name, "previtem") == 0)
        *out = L->index0 > 0 ? L->items[L->index0 - 1] : jv_undef("previtem", 8);
    else if (strcmp(name, "nextitem") == 0)
        *out = L->index0 + 1 < L->length ? L->items[L->index0 + 1] : jv_undef("nextitem", 8);
    else if (strcmp(name, "depth") == 0)
        *out = jv_int(1);
    else if (strcmp(name, "depth0") == 0)
        *out = jv_int(0);
    else
        *out = jv_undef(name, strlen(name));
    return 0;
}

int jeval_getattr(rctx *c, const jnode *at, jv obj, const char *name, size_t len, jv *out)
{
    switch (obj.type) {
    case JV_UNDEFINED:
        return jeval_fail(c, at, SEM_EINVAL, "cannot read attribute '%.*s': '%.*s' is undefined",
                          (int)len, name, (int)obj.len, obj.u.s ? obj.u.s : "");
    case JV_DICT:
    case JV_NAMESPACE: {
        const jv *v = jv_dict_get_str(obj.u.dict, name, len);
        *out = v ? *v : jv_undef(name, len);
        return 0;
    }
    case JV_LOOP:
        return loop_attr(c, at, obj.u.loop, name, out);
    default:
        *out = jv_undef(name, len);
        return 0;
    }
}

/* Python's index normalisation; false when out of range. */
static bool norm_index(int64_t i, size_t len, size_t *out)
{
    if (i < 0)
        i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len)
        return false;
    *out = (size_t)i;
    return true;
}

int jeval_getitem(rctx *c, const jnode *at, jv obj, jv key, jv *out)
{
    if (obj.type == JV_UNDEFINED)
        return jeval_fail(c, at, SEM_EINVAL, "cannot read an item: '%.*s' is undefined", (int)obj.len,
                          obj.u.s ? obj.u.s : "");
    bool int_key = key.type == JV_INT || key.type == JV_BOOL;
    int64_t ik = key.type == JV_BOOL ? key.u.b : key.u.i;
    switch (obj.type) {
    case JV_DICT:
    case JV_NAMESPACE: {
        const jv *v = jv_dict_get(obj.u.dict, key);
        if (v) {
            *out = *v;
            return 0;
        }
        break;
    }
    case JV_LIST: {
        size_t idx;
        if (int_key && norm_index(ik, obj.u.list->len, &idx)) {
            *out = obj.u.list->items[idx];
            return 0;
        }
        break;
    }
    case JV_STR: {
        if (!int_key)
            break;
        int64_t k = ik;
        size_t count = (k < 0) ? utf8_count(obj.u.s, obj.len) : 0;
        if (k < 0)
            k += (int64_t)count;
        if (k < 0)
            break;
        size_t off = utf8_offset(obj.u.s, obj.len, (size_t)k);
        if (off >= obj.len)
            break;
        *out = jv_str(obj.u.s + off, utf8_seq_len(obj.u.s + off, obj.len - off));
        return 0;
    }
    case JV_LOOP:
        if (key.type == JV_STR) {
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(key.len < 31 ? key.len : 31), key.u.s);
            return loop_attr(c, at, obj.u.loop, name, out);
        }
        break;
    default:
        break;
    }
    if (key.type == JV_STR)
        *out = jv_undef(key.u.s, key.len);
    else
        *out = jv_undef("item", 4);
    return 0;
}

/* Python slice bounds (PySlice_AdjustIndices). */
static int slice_bounds(rctx *c, const jnode *at, size_t len, jv start, jv stop, jv step, int64_t *b,
                        int64_t *e, int64_t *s, size_t *count)
{
    int64_t st = 1;
    const jv *parts[3] = {&start, &stop, &step};
    for (int k = 0; k < 3; k++) {
        jv p = *parts[k];
        if (p.type != JV_NONE && p.type != JV_UNDEFINED && p.type != JV_INT && p.type != JV_BOOL)
            return jeval_fail(c, at, SEM_EINVAL, "slice indices must be integers or none, not %s",
                              jv_type_name(p));
    }
    if (step.type == JV_INT || step.type == JV_BOOL) {
        st = step.type == JV_BOOL ? step.u.b : step.u.i;
        if (st == 0)
            return jeval_fail(c, at, SEM_EINVAL, "slice step cannot be zero");
        if (st == INT64_MIN)
            st = -INT64_MAX;
    }
    int64_t n = (int64_t)len;
    int64_t lo, hi;
    if (st > 0) {
        lo = 0;
        hi = n;
    } else {
        lo = -1;
        hi = n - 1;
    }
    int64_t bv = st > 0 ? lo : hi, ev = st > 0 ? hi : lo;
    if (start.type == JV_INT || start.type == JV_BOOL) {
        int64_t v = start.type == JV_BOOL ? start.u.b : start.u.i;
        if (v < 0) {
            v = v < -n ? lo : v + n;
            if (v < lo)
                v = lo;
        } else if (v > hi) {
            v = hi;
        }
        bv = v;
    }
    if (stop.type == JV_INT || stop.type == JV_BOOL) {
        int64_t v = stop.type == JV_BOOL ? stop.u.b : stop.u.i;
        if (v < 0) {
            v = v < -n ? lo : v + n;
            if (v < lo)
                v = lo;
        } else if (v > hi) {
            v = hi;
        }
        ev = v;
    }
    size_t cnt = 0;
    if (st > 0 && bv < ev)
        cnt = (size_t)((ev - bv - 1) / st + 1);
    else if (st < 0 && bv > ev)
        cnt = (size_t)((bv - ev - 1) / (-st) + 1);
    *b = bv;
    *e = ev;
    *s = st;
    *count = cnt;
    return 0;
}

OUTLINE static int do_slice(rctx *c, const jnode *at, jv obj, jv start, jv stop, jv step, jv *out)
{
    if (obj.type == JV_UNDEFINED)
        return jeval_require_defined(c, at, obj);
    int64_t b, e, s;
    size_t cnt;
    if (obj.type == JV_LIST) {
        if (slice_bounds(c, at, obj.u.list->len, start, stop, step, &b, &e, &s, &cnt) != 0)
            return -1;
        jv_list *l = jv_list_new(&c->arena, cnt);
        if (!l)
            return jeval_nomem(c, at);
        for (size_t k = 0; k < cnt; k++)
            l->items[k] = obj.u.list->items[b + (int64_t)k * s];
        l->len = cnt;
        l->tuple = obj.u.list->tuple;
        *out = (jv){.type = JV_LIST};
        out->u.list = l;
        return 0;
    }
    if (obj.type == JV_STR) {
        /* Code point offsets, then copy the selected characters. */
        size_t count = utf8_count(obj.u.s, obj.len);
        if (slice_bounds(c, at, count, start, stop, step, &b, &e, &s, &cnt) != 0)
            return -1;
        if (s == 1) {
            size_t from = utf8_offset(obj.u.s, obj.len, (size_t)b);
            size_t to = utf8_offset(obj.u.s, obj.len, (size_t)(b + (int64_t)cnt));
            *out = jv_str(obj.u.s + from, to - from);
            return 0;
        }
        size_t *offs = jarena_alloc(&c->arena, (count + 1) * sizeof *offs);
        char *dst = jarena_alloc(&c->arena, obj.len + 1);
        if (!offs || !dst)
            return jeval_nomem(c, at);
        size_t off = 0;
        for (size_t k = 0; k < count; k++) {
            offs[k] = off;
            off += utf8_seq_len(obj.u.s + off, obj.len - off);
        }
        offs[count] = obj.len;
        size_t o = 0;
        for (size_t k = 0; k < cnt; k++) {
            size_t idx = (size_t)(b + (int64_t)k * s);
            size_t l = offs[idx + 1] - offs[idx];
            memcpy(dst + o, obj.u.s + offs[idx], l);
            o += l;
        }
        *out = jv_str(dst, o);
        return 0;
    }
    return jeval_fail(c, at, SEM_EINVAL, "'%s' object cannot be sliced", jv_type_name(obj));
}

/* ---------------------------------------------------------------- operators */

static int64_t as_int(jv v) { return v.type == JV_BOOL ? v.u.b : v.u.i; }

static int undefined_operand(rctx *c, const jnode *at, jv a, jv b)
{
    return jeval_require_defined(c, at, a.type == JV_UNDEFINED ? a : b);
}

static int type_error(rctx *c, const jnode *at, const char *op, jv a, jv b)
{
    if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED)
        return undefined_operand(c, at, a, b);
    return jeval_fail(c, at, SEM_EINVAL, "unsupported operand types for %s: '%s' and '%s'", op,
                      jv_type_name(a), jv_type_name(b));
}

static int concat_str(rctx *c, const jnode *at, jv a, jv b, jv *out)
{
    if (a.len == 0) {
        *out = b;
        return 0;
    }
    if (b.len == 0) {
        *out = a;
        return 0;
    }
    if (a.len > SIZE_MAX / 2 || b.len > SIZE_MAX / 2)
        return jeval_nomem(c, at);
    char *s = jarena_alloc(&c->arena, a.len + b.len + 1);
    if (!s)
        return jeval_nomem(c, at);
    memcpy(s, a.u.s, a.len);
    memcpy(s + a.len, b.u.s, b.len);
    s[a.len + b.len] = '\0';
    *out = jv_str(s, a.len + b.len);
    return 0;
}

static int repeat(rctx *c, const jnode *at, jv seq, int64_t times, jv *out)
{
    if (times < 0)
        times = 0;
    if (seq.type == JV_STR) {
        if (times > 0 && seq.len > c->lim.max_output_bytes / (uint64_t)times)
            return jeval_fail(c, at, SEM_EINVAL, "string repetition exceeds the output limit");
        size_t total = seq.len * (size_t)times;
        char *s = jarena_alloc(&c->arena, total + 1);
        if (!s)
            return jeval_nomem(c, at);
        for (int64_t k = 0; k < times; k++)
            memcpy(s + (size_t)k * seq.len, seq.u.s, seq.len);
        s[total] = '\0';
        *out = jv_str(s, total);
        return 0;
    }
    size_t n = seq.u.list->len;
    if (times > 0 && n > c->lim.max_loop_iterations / (uint64_t)times)
        return jeval_fail(c, at, SEM_EINVAL, "list repetition exceeds the loop limit");
    jv_list *l = jv_list_new(&c->arena, n * (size_t)times);
    if (!l)
        return jeval_nomem(c, at);
    for (int64_t k = 0; k < times; k++)
        for (size_t i = 0; i < n; i++)
            l->items[l->len++] = seq.u.list->items[i];
    l->tuple = seq.u.list->tuple;
    *out = (jv){.type = JV_LIST};
    out->u.list = l;
    return 0;
}

static int arith(rctx *c, const jnode *at, int op, jv a, jv b, jv *out)
{
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    const char *name = names[op];
    bool nums = jv_is_number(a) && jv_is_number(b);
    bool ints = nums && a.type != JV_FLOAT && b.type != JV_FLOAT;
    if (op == JOP_ADD) {
        if (a.type == JV_STR && b.type == JV_STR)
            return concat_str(c, at, a, b, out);
        if (a.type == JV_LIST && b.type == JV_LIST) {
            jv_list *l = jv_list_new(&c->arena, a.u.list->len + b.u.list->len);
            if (!l)
                return jeval_nomem(c, at);
            for (size_t i = 0; i < a.u.list->len; i++)
                l->items[l->len++] = a.u.list->items[i];
            for (size_t i = 0; i < b.u.list->len; i++)
                l->items[l->len++] = b.u.list->items[i];
            l->tuple = a.u.list->tuple && b.u.list->tuple;
            *out = (jv){.type = JV_LIST};
            out->u.list = l;
            return 0;
        }
    }
    if (op == JOP_MUL) {
        if ((a.type == JV_STR || a.type == JV_LIST) && (b.type == JV_INT || b.type == JV_BOOL))
            return repeat(c, at, a, as_int(b), out);
        if ((b.type == JV_STR || b.type == JV_LIST) && (a.type == JV_INT || a.type == JV_BOOL))
            return repeat(c, at, b, as_int(a), out);
    }
    if (op == JOP_MOD && a.type == JV_STR)
        return jinja_percent_format(c, at, a, b, out);
    if (!nums)
        return type_error(c, at, name, a, b);
    if (ints) {
        int64_t x = as_int(a), y = as_int(b), r;
        switch (op) {
        case JOP_ADD:
            if (__builtin_add_overflow(x, y, &r))
                goto overflow;
            *out = jv_int(r);
            return 0;
        case JOP_SUB:
            if (__builtin_sub_overflow(x, y, &r))
                goto overflow;
            *out = jv_int(r);
            return 0;
        case JOP_MUL:
            if (__builtin_mul_overflow(x, y, &r))
                goto overflow;
            *out = jv_int(r);
            return 0;
        case JOP_DIV:
            if (y == 0)
                return jeval_fail(c, at, SEM_EINVAL, "division by zero");
            *out = jv_float((double)x / (double)y);
            return 0;
        case JOP_FLOORDIV:
        case JOP_MOD: {
            if (y == 0)
                return jeval_fail(c, at, SEM_EINVAL, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                goto overflow;
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            *out = jv_int(op == JOP_FLOORDIV ? q : m);
            return 0;
        }
        case JOP_POW: {
            if (y < 0) {
                *out = jv_float(pow((double)x, (double)y));
                return 0;
            }
            int64_t result = 1, base = x;
            while (y > 0) {
                if (y & 1) {
                    if (__builtin_mul_overflow(result, base, &result))
                        goto overflow;
                }
                y >>= 1;
                if (y && __builtin_mul_overflow(base, base, &base))
                    goto overflow;
            }
            *out = jv_int(result);
            return 0;
        }
        }
    }
    double x = jv_as_double(a), y = jv_as_double(b);
    switch (op) {
    case JOP_ADD:
        *out = jv_float(x + y);
        return 0;
    case JOP_SUB:
        *out = jv_float(x - y);
        return 0;
    case JOP_MUL:
        *out = jv_float(x * y);
        return 0;
    case JOP_DIV:
        if (y == 0.0)
            return jeval_fail(c, at, SEM_EINVAL, "float division by zero");
        *out = jv_float(x / y);
        return 0;
    case JOP_FLOORDIV:
    case JOP_MOD: {
        if (y == 0.0)
            return jeval_fail(c, at, SEM_EINVAL, "float division or modulo by zero");
        double m = fmod(x, y);
        if (m != 0.0 && ((m < 0) != (y < 0)))
            m += y;
        *out = jv_float(op == JOP_MOD ? m : floor(x / y));
        return 0;
    }
    case JOP_POW:
        *out = jv_float(pow(x, y));
        return 0;
    }
    return type_error(c, at, name, a, b);
overflow:
    return jeval_fail(c, at, SEM_EINVAL, "integer overflow in %s", name);
}

static int contains(rctx *c, const jnode *at, jv container, jv item, bool *out)
{
    *out = false;
    switch (container.type) {
    case JV_UNDEFINED:
        *out = false;
        return 0;
    case JV_STR:
        if (item.type != JV_STR)
            return jeval_fail(c, at, SEM_EINVAL,
                              "'in <string>' requires a string as left operand, not %s",
                              jv_type_name(item));
        *out = item.len == 0 || memmem(container.u.s, container.len, item.u.s, item.len) != NULL;
        return 0;
    case JV_LIST:
        if (jeval_charge(c, at, container.u.list->len / 8) != 0)
            return -1;
        *out = false;
        for (size_t i = 0; i < container.u.list->len && !*out; i++)
            *out = jv_equal(container.u.list->items[i], item);
        return 0;
    case JV_DICT:
    case JV_NAMESPACE:
        *out = jv_dict_get(container.u.dict, item) != NULL;
        return 0;
    default:
        return jeval_fail(c, at, SEM_EINVAL, "argument of type '%s' is not iterable",
                          jv_type_name(container));
    }
}

OUTLINE static int binop(rctx *c, const jnode *at, int op, jv a, jv b, jv *out)
{
    switch (op) {
    case JOP_CONCAT: {
        jv x, y;
        if (jv_to_str(&c->arena, a, &x) != 0 || jv_to_str(&c->arena, b, &y) != 0)
            return jeval_nomem(c, at);
        return concat_str(c, at, x, y, out);
    }
    case JOP_EQ:
        *out = jv_bool(jv_equal(a, b));
        return 0;
    case JOP_NE:
        *out = jv_bool(!jv_equal(a, b));
        return 0;
    case JOP_LT:
    case JOP_LE:
    case JOP_GT:
    case JOP_GE: {
        static const char *const names[] = {"<", "<=", ">", ">="};
        int cmp;
        if (jv_compare(a, b, &cmp) != 0) {
            if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED)
                return undefined_operand(c, at, a, b);
            return jeval_fail(c, at, SEM_EINVAL, "'%s' not supported between '%s' and '%s'",
                              names[op - JOP_LT], jv_type_name(a), jv_type_name(b));
        }
        bool r = op == JOP_LT ? cmp < 0 : op == JOP_LE ? cmp <= 0 : op == JOP_GT ? cmp > 0 : cmp >= 0;
        *out = jv_bool(r);
        return 0;
    }
    case JOP_IN:
    case JOP_NOTIN: {
        bool r;
        if (contains(c, at, b, a, &r) != 0)
            return -1;
        *out = jv_bool(op == JOP_IN ? r : !r);
        return 0;
    }
    default:
        if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED)
            return undefined_operand(c, at, a, b);
        return arith(c, at, op, a, b, out);
    }
}

/* ---------------------------------------------------------------- expressions */

static int eval(rctx *c, const jnode *n, jv *out);
static int exec_body(rctx *c, jnode *const *list, size_t n);

static int enter(rctx *c, const jnode *at)
{
    if (c->depth >= EVAL_MAX_DEPTH)
        return jeval_fail(c, at, SEM_EINVAL, "evaluation nested deeper than %d levels (runaway recursion?)",
                          EVAL_MAX_DEPTH);
    if (++c->steps > c->lim.max_steps)
        return jeval_fail(c, at, SEM_EINVAL,
                          "rendering exceeded the limit of %llu evaluation steps (an endless loop?)",
                          (unsigned long long)c->lim.max_steps);
    c->depth++;
    return 0;
}

OUTLINE static int eval_args(rctx *c, jnode *const *list, size_t n, jargs *a)
{
    memset(a, 0, sizeof *a);
    size_t nkw = 0;
    for (size_t i = 0; i < n; i++)
        nkw += list[i]->kind == JN_KWARG;
    if (n) {
        a->pos = jarena_alloc(&c->arena, n * sizeof(jv));
        if (!a->pos)
            return jeval_nomem(c, list[0]);
    }
    if (nkw) {
        a->kw = jarena_alloc(&c->arena, nkw * sizeof(char *));
        a->kwv = jarena_alloc(&c->arena, nkw * sizeof(jv));
        if (!a->kw || !a->kwv)
            return jeval_nomem(c, list[0]);
    }
    for (size_t i = 0; i < n; i++) {
        const jnode *arg = list[i];
        if (arg->kind == JN_KWARG) {
            a->kw[a->nkw] = arg->name;
            if (eval(c, arg->a, &a->kwv[a->nkw]) != 0)
                return -1;
            a->nkw++;
        } else if (eval(c, arg, &a->pos[a->npos++]) != 0) {
            return -1;
        }
    }
    return 0;
}

OUTLINE static int call_macro(rctx *c, const jnode *at, const jnode *m, const jargs *a, jv *out)
{
    if (c->call_depth >= c->lim.max_call_depth)
        return jeval_fail(c, at, SEM_EINVAL,
                          "macro '%s' called with %d macro calls already active (runaway recursion?)",
                          m->name, c->call_depth);
    if (a->npos > m->n2)
        return jeval_fail(c, at, SEM_EINVAL, "macro '%s' takes %zu arguments, %zu given", m->name, m->n2,
                          a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        bool known = false;
        for (size_t i = 0; i < m->n2 && !known; i++)
            known = strcmp(m->list2[i]->name, a->kw[k]) == 0;
        if (!known)
            return jeval_fail(c, at, SEM_EINVAL, "macro '%s' has no parameter '%s'", m->name, a->kw[k]);
    }
    jframe f;
    if (new_frame(c, at, &f, c->root) != 0)
        return -1;
    jframe *saved_frame = c->frame;
    jbuf *saved_out = c->out;
    jbuf buf = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    c->frame = &f;
    int rc = 0;
    for (size_t i = 0; i < m->n2 && rc == 0; i++) {
        const jnode *p = m->list2[i];
        jv v = jv_undef(p->name, p->name_len);
        bool given = i < a->npos;
        if (given)
            v = a->pos[i];
        for (size_t k = 0; !given && k < a->nkw; k++)
            if (strcmp(a->kw[k], p->name) == 0) {
                v = a->kwv[k];
                given = true;
            }
        if (!given && p->b)
            rc = eval(c, p->b, &v);
        if (rc == 0)
            rc = assign(c, at, &f, p->name, p->name_len, v);
    }
    if (rc == 0) {
        c->out = &buf;
        c->call_depth++;
        rc = exec_body(c, m->list, m->n);
        c->call_depth--;
    }
    c->out = saved_out;
    c->frame = saved_frame;
    c->control = CTRL_NONE;
    if (rc != 0) {
        if (c->err && strncmp(c->err->detail, "in macro", 8) != 0)
            sem_err_wrap(c->err, "in macro '%s' called at line %u", m->name, at->line);
        return -1;
    }
    *out = jeval_buf_str(&buf);
    return 0;
}

static int call_value(rctx *c, const jnode *at, jv f, const jargs *a, jv *out)
{
    switch (f.type) {
    case JV_MACRO:
        return call_macro(c, at, f.u.macro, a, out);
    case JV_FUNC:
        return jinja_call_global(c, at, f.func, a, out);
    case JV_UNDEFINED:
        return jeval_fail(c, at, SEM_EINVAL, "'%.*s' is undefined and cannot be called", (int)f.len,
                          f.u.s ? f.u.s : "");
    default:
        return jeval_fail(c, at, SEM_EINVAL, "'%s' object is not callable", jv_type_name(f));
    }
}

OUTLINE static int eval_call(rctx *c, const jnode *n, jv *out)
{
    const jnode *callee = n->a;
    jargs a;
    if (callee->kind == JN_ATTR) {
        jv obj;
        if (eval(c, callee->a, &obj) != 0)
            return -1;
        if (obj.type == JV_UNDEFINED)
            return jeval_fail(c, n, SEM_EINVAL, "cannot call '%s': '%.*s' is undefined", callee->name,
                              (int)obj.len, obj.u.s ? obj.u.s : "");
        if (eval_args(c, n->list, n->n, &a) != 0)
            return -1;
        bool found = false;
        if (jinja_call_method(c, n, obj, callee->name, &a, out, &found) != 0)
            return -1;
        if (found)
            return 0;
        jv attr;
        if (jeval_getattr(c, callee, obj, callee->name, callee->name_len, &attr) != 0)
            return -1;
        if (attr.type == JV_MACRO || attr.type == JV_FUNC)
            return call_value(c, n, attr, &a, out);
        return jeval_fail(c, n, SEM_EINVAL, "'%s' object has no method '%s'", jv_type_name(obj),
                          callee->name);
    }
    jv f;
    if (eval(c, callee, &f) != 0 || eval_args(c, n->list, n->n, &a) != 0)
        return -1;
    return call_value(c, n, f, &a, out);
}

OUTLINE static int eval_collection(rctx *c, const jnode *n, jv *out)
{
    if (n->kind == JN_DICT) {
        jv_dict *d = jv_dict_new(&c->arena, n->n);
        if (!d)
            return jeval_nomem(c, n);
        for (size_t i = 0; i < n->n; i++) {
            jv k, v;
            if (eval(c, n->list[i], &k) != 0 || eval(c, n->list2[i], &v) != 0)
                return -1;
            if (jv_dict_set(&c->arena, d, k, v) != 0)
                return jeval_nomem(c, n);
        }
        *out = (jv){.type = JV_DICT};
        out->u.dict = d;
        return 0;
    }
    jv_list *l = jv_list_new(&c->arena, n->n);
    if (!l)
        return jeval_nomem(c, n);
    for (size_t i = 0; i < n->n; i++)
        if (eval(c, n->list[i], &l->items[l->len++]) != 0)
            return -1;
    l->tuple = n->kind == JN_TUPLE;
    *out = (jv){.type = JV_LIST};
    out->u.list = l;
    return 0;
}

OUTLINE static int eval_access(rctx *c, const jnode *n, jv *out)
{
    jv obj;
    if (eval(c, n->a, &obj) != 0)
        return -1;
    if (n->kind == JN_ATTR)
        return jeval_getattr(c, n, obj, n->name, n->name_len, out);
    if (n->kind == JN_ITEM) {
        jv key;
        if (eval(c, n->b, &key) != 0)
            return -1;
        return jeval_getitem(c, n, obj, key, out);
    }
    jv b = jv_none(), e = jv_none(), s = jv_none();
    if ((n->b && eval(c, n->b, &b) != 0) || (n->c && eval(c, n->c, &e) != 0) ||
        (n->d && eval(c, n->d, &s) != 0))
        return -1;
    return do_slice(c, n, obj, b, e, s, out);
}

OUTLINE static int eval_filter_or_test(rctx *c, const jnode *n, jv *out)
{
    jv in;
    jargs a;
    if (n->a) {
        if (eval(c, n->a, &in) != 0)
            return -1;
    } else {
        in = c->block_input;
    }
    if (eval_args(c, n->list, n->n, &a) != 0)
        return -1;
    if (n->kind == JN_FILTER)
        return jinja_filters[n->op].fn(c, n, in, &a, out);
    bool r = false;
    if (jinja_tests[n->op].fn(c, n, in, &a, &r) != 0)
        return -1;
    *out = jv_bool(n->flag ? !r : r);
    return 0;
}

OUTLINE static int eval_unary(rctx *c, const jnode *n, jv *out)
{
    jv v;
    if (eval(c, n->a, &v) != 0)
        return -1;
    if (n->kind == JN_NOT) {
        *out = jv_bool(!jv_truthy(v));
        return 0;
    }
    if (v.type == JV_UNDEFINED)
        return jeval_require_defined(c, n, v);
    if (!jv_is_number(v))
        return jeval_fail(c, n, SEM_EINVAL, "bad operand type for unary %c: '%s'",
                          n->kind == JN_NEG ? '-' : '+', jv_type_name(v));
    if (n->kind == JN_POS) {
        *out = v.type == JV_BOOL ? jv_int(v.u.b) : v;
    } else if (v.type == JV_FLOAT) {
        *out = jv_float(-v.u.f);
    } else {
        int64_t i = as_int(v);
        if (i == INT64_MIN)
            return jeval_fail(c, n, SEM_EINVAL, "integer overflow in unary -");
        *out = jv_int(-i);
    }
    return 0;
}

OUTLINE static int eval_binop(rctx *c, const jnode *n, jv *out)
{
    jv a, b;
    if (eval(c, n->a, &a) != 0 || eval(c, n->b, &b) != 0)
        return -1;
    return binop(c, n, n->op, a, b, out);
}

/* The dispatcher stays small: it is on every level of recursion. */
static int eval_inner(rctx *c, const jnode *n, jv *out)
{
    switch (n->kind) {
    case JN_LITERAL:
        *out = n->lit;
        return 0;
    case JN_NAME: {
        const jv *v = lookup(c, n->name, n->name_len);
        *out = v ? *v : jv_undef(n->name, n->name_len);
        return 0;
    }
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT:
        return eval_collection(c, n, out);
    case JN_ATTR:
    case JN_ITEM:
    case JN_SLICE:
        return eval_access(c, n, out);
    case JN_CALL:
        return eval_call(c, n, out);
    case JN_FILTER:
    case JN_TEST:
        return eval_filter_or_test(c, n, out);
    case JN_NOT:
    case JN_NEG:
    case JN_POS:
        return eval_unary(c, n, out);
    case JN_BINOP:
        return eval_binop(c, n, out);
    case JN_AND:
    case JN_OR: {
        if (eval(c, n->a, out) != 0)
            return -1;
        bool t = jv_truthy(*out);
        if ((n->kind == JN_AND && !t) || (n->kind == JN_OR && t))
            return 0;
        return eval(c, n->b, out);
    }
    case JN_COND: {
        jv cond;
        if (eval(c, n->b, &cond) != 0)
            return -1;
        if (jv_truthy(cond))
            return eval(c, n->a, out);
        if (n->c)
            return eval(c, n->c, out);
        *out = jv_undef("", 0);
        return 0;
    }
    default:
        return jeval_fail(c, n, SEM_EINTERNAL, "node kind %d is not an expression", (int)n->kind);
    }
}

static int eval(rctx *c, const jnode *n, jv *out)
{
    if (enter(c, n) != 0)
        return -1;
    int rc = eval_inner(c, n, out);
    c->depth--;
    return rc;
}

int jeval_test_by_name(rctx *c, const jnode *at, const char *name, jv v, const jargs *a, bool *out)
{
    int idx = jinja_test_index(name);
    if (idx < 0)
        return jeval_fail(c, at, SEM_EINVAL, "no test named '%s'", name);
    return jinja_tests[idx].fn(c, at, v, a, out);
}

int jeval_filter_by_name(rctx *c, const jnode *at, const char *name, jv v, const jargs *a, jv *out)
{
    int idx = jinja_filter_index(name);
    if (idx < 0)
        return jeval_fail(c, at, SEM_EINVAL, "no filter named '%s'", name);
    return jinja_filters[idx].fn(c, at, v, a, out);
}

/* ---------------------------------------------------------------- statements */

static int exec(rctx *c, const jnode *n);

static int exec_body(rctx *c, jnode *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (exec(c, list[i]) != 0)
            return -1;
        if (c->control != CTRL_NONE)
            return 0;
    }
    return 0;
}

/* Binds a for/set target (a name or a tuple of names) to v in frame f. */
static int bind(rctx *c, const jnode *at, jframe *f, const jnode *target, jv v)
{
    if (target->kind == JN_NAME)
        return assign(c, at, f, target->name, target->name_len, v);
    const jv *items;
    size_t n;
    if (v.type == JV_UNDEFINED)
        return jeval_require_defined(c, at, v);
    if (jeval_iterate(c, at, v, &items, &n) != 0)
        return -1;
    if (n != target->n)
        return jeval_fail(c, at, SEM_EINVAL, "cannot unpack %zu values into %zu names", n, target->n);
    for (size_t i = 0; i < n; i++)
        if (assign(c, at, f, target->list[i]->name, target->list[i]->name_len, items[i]) != 0)
            return -1;
    return 0;
}

OUTLINE static int exec_for(rctx *c, const jnode *n)
{
    jv seq;
    if (eval(c, n->b, &seq) != 0)
        return -1;
    const jv *items;
    size_t count;
    if (jeval_iterate(c, n->b, seq, &items, &count) != 0)
        return -1;
    jframe f;
    if (new_frame(c, n, &f, c->frame) != 0)
        return -1;
    jframe *saved = c->frame;
    c->frame = &f;
    int rc = 0;
    if (n->c && count) {
        /* {% for x in xs if cond %}: filter first, so loop.last and
         * loop.length describe the filtered sequence (as Jinja does). */
        jv *kept = jarena_alloc(&c->arena, count * sizeof *kept);
        if (!kept) {
            rc = jeval_nomem(c, n);
        }
        size_t k = 0;
        for (size_t i = 0; rc == 0 && i < count; i++) {
            jv cond;
            if (++c->loop_iters > c->lim.max_loop_iterations) {
                rc = jeval_fail(c, n, SEM_EINVAL, "loops ran more than %llu iterations",
                                (unsigned long long)c->lim.max_loop_iterations);
                break;
            }
            rc = bind(c, n, &f, n->a, items[i]);
            if (rc == 0)
                rc = eval(c, n->c, &cond);
            if (rc == 0 && jv_truthy(cond))
                kept[k++] = items[i];
        }
        items = kept;
        count = k;
    }
    struct jv_loop *L = rc == 0 ? jarena_zalloc(&c->arena, sizeof *L) : NULL;
    if (rc == 0 && !L)
        rc = jeval_nomem(c, n);
    if (rc == 0) {
        L->items = items;
        L->length = count;
        jv loopv = {.type = JV_LOOP};
        loopv.u.loop = L;
        rc = assign(c, n, &f, "loop", 4, loopv);
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (++c->loop_iters > c->lim.max_loop_iterations) {
            rc = jeval_fail(c, n, SEM_EINVAL, "loops ran more than %llu iterations",
                            (unsigned long long)c->lim.max_loop_iterations);
            break;
        }
        L->index0 = i;
        rc = bind(c, n, &f, n->a, items[i]);
        if (rc == 0)
            rc = exec_body(c, n->list, n->n);
        if (c->control == CTRL_BREAK) {
            c->control = CTRL_NONE;
            break;
        }
        c->control = CTRL_NONE;
    }
    c->frame = saved;
    if (rc == 0 && count == 0 && n->n2)
        rc = exec_body(c, n->list2, n->n2);
    return rc;
}

OUTLINE static int exec_set(rctx *c, const jnode *n)
{
    jv v;
    if (eval(c, n->b, &v) != 0)
        return -1;
    const jnode *t = n->a;
    if (t->kind == JN_ATTR) {
        const jv *ns = lookup(c, t->a->name, t->a->name_len);
        if (!ns || ns->type != JV_NAMESPACE)
            return jeval_fail(c, n, SEM_EINVAL,
                              "cannot set attribute '%s' of '%s': only a namespace() accepts "
                              "attribute assignment",
                              t->name, t->a->name);
        if (jv_dict_set(&c->arena, ns->u.dict, jv_str(t->name, t->name_len), v) != 0)
            return jeval_nomem(c, n);
        return 0;
    }
    return bind(c, n, c->frame, t, v);
}

/* Runs body with its text captured, returning it as a string. */
OUTLINE static int capture(rctx *c, const jnode *n, jv *out)
{
    jbuf buf = {.arena = &c->arena, .limit = c->lim.max_output_bytes};
    jbuf *saved = c->out;
    c->out = &buf;
    int rc = exec_body(c, n->list, n->n);
    c->out = saved;
    if (rc != 0)
        return -1;
    *out = jeval_buf_str(&buf);
    return 0;
}

OUTLINE static int apply_chain(rctx *c, const jnode *chain, jv in, jv *out)
{
    jv saved = c->block_input;
    c->block_input = in;
    int rc = eval(c, chain, out);
    c->block_input = saved;
    return rc;
}

OUTLINE static int exec_output(rctx *c, const jnode *n)
{
    jv v;
    if (eval(c, n->a, &v) != 0)
        return -1;
    if (jv_write_str(c->out, v) != 0)
        return jeval_buf_fail(c, n, c->out);
    return 0;
}

/* {% set x %}...{% endset %} and {% filter f %}...{% endfilter %}. */
OUTLINE static int exec_block(rctx *c, const jnode *n)
{
    jv v;
    if (capture(c, n, &v) != 0)
        return -1;
    if (n->c && apply_chain(c, n->c, v, &v) != 0)
        return -1;
    if (n->kind == JN_SET_BLOCK)
        return bind(c, n, c->frame, n->a, v);
    if (jv_write_str(c->out, v) != 0)
        return jeval_buf_fail(c, n, c->out);
    return 0;
}

static int exec_inner(rctx *c, const jnode *n)
{
    switch (n->kind) {
    case JN_TEXT:
        if (jbuf_put(c->out, n->name, n->name_len) != 0)
            return jeval_buf_fail(c, n, c->out);
        return 0;
    case JN_OUTPUT:
        return exec_output(c, n);
    case JN_IF:
        for (const jnode *b = n; b; b = b->d) {
            jv cond;
            if (eval(c, b->a, &cond) != 0)
                return -1;
            if (jv_truthy(cond))
                return exec_body(c, b->list, b->n);
            if (!b->d)
                return exec_body(c, b->list2, b->n2);
        }
        return 0;
    case JN_FOR:
        return exec_for(c, n);
    case JN_SET:
        return exec_set(c, n);
    case JN_SET_BLOCK:
    case JN_FILTER_BLOCK:
        return exec_block(c, n);
    case JN_MACRO: {
        jv m = {.type = JV_MACRO};
        m.u.macro = n;
        return assign(c, n, c->frame, n->name, n->name_len, m);
    }
    case JN_BREAK:
        c->control = CTRL_BREAK;
        return 0;
    case JN_CONTINUE:
        c->control = CTRL_CONTINUE;
        return 0;
    case JN_DO: {
        jv ignored;
        return eval(c, n->a, &ignored);
    }
    case JN_GROUP:
        return exec_body(c, n->list, n->n);
    default:
        return jeval_fail(c, n, SEM_EINTERNAL, "node kind %d is not a statement", (int)n->kind);
    }
}

static int exec(rctx *c, const jnode *n)
{
    if (enter(c, n) != 0)
        return -1;
    int rc = exec_inner(c, n);
    c->depth--;
    return rc;
}

/* ---------------------------------------------------------------- parse-time checks */

typedef struct check_state {
    sem_err *err;
    int depth;
} check_state;

static int check_fail(check_state *s, const jnode *n, sem_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int check_fail(check_state *s, const jnode *n, sem_status st, const char *fmt, ...)
{
    char msg[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sem_err_set(s->err, st, "template line %u, column %u: %s", n->line, n->col, msg);
    return -1;
}

static int check_node(check_state *s, jnode *n);

static int check_list(check_state *s, jnode *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (check_node(s, list[i]) != 0)
            return -1;
    return 0;
}

/* Resolves filter and test names to table indices (stored in op) and
 * rejects trees deeper than TREE_MAX_DEPTH (long operator chains). */
static int check_node(check_state *s, jnode *n)
{
    if (!n)
        return 0;
    if (++s->depth > TREE_MAX_DEPTH)
        return check_fail(s, n, SEM_EINVAL, "expression is nested or chained deeper than %d levels",
                          TREE_MAX_DEPTH);
    if (n->kind == JN_FILTER) {
        int idx = jinja_filter_index(n->name);
        if (idx < 0) {
            if (jinja_filter_is_known_unsupported(n->name))
                return check_fail(s, n, SEM_EUNSUPPORTED, "the '%s' filter is not supported", n->name);
            return check_fail(s, n, SEM_EINVAL, "unknown filter '%s'", n->name);
        }
        n->op = idx;
    } else if (n->kind == JN_TEST) {
        int idx = jinja_test_index(n->name);
        if (idx < 0)
            return check_fail(s, n, SEM_EINVAL, "unknown test '%s'", n->name);
        n->op = idx;
    }
    int rc = 0;
    if (n->kind == JN_IF) {
        /* An elif chain is a list, not nesting: walk it without depth. */
        for (jnode *b = n; b && rc == 0; b = b->d)
            if (check_node(s, b->a) != 0 || check_list(s, b->list, b->n) != 0 ||
                check_list(s, b->list2, b->n2) != 0)
                rc = -1;
    } else if (check_node(s, n->a) != 0 || check_node(s, n->b) != 0 || check_node(s, n->c) != 0 ||
               check_node(s, n->d) != 0 || check_list(s, n->list, n->n) != 0 ||
               check_list(s, n->list2, n->n2) != 0) {
        rc = -1;
    }
    s->depth--;
    return rc;
}

/* ---------------------------------------------------------------- entry points */

jinja_template *jinja_parse(const char *source, size_t len, sem_err *err)
{
    if (!source) {
        sem_err_set(err, SEM_EINVAL, "template source is NULL");
        return NULL;
    }
    jinja_tree *tree = jinja_tree_parse(source, len, err);
    if (!tree)
        return NULL;
    check_state s = {.err = err};
    if (check_list(&s, tree->body, tree->n) != 0) {
        jinja_tree_free(tree);
        return NULL;
    }
    jinja_template *t = malloc(sizeof *t);
    if (!t) {
        jinja_tree_free(tree);
        sem_err_set(err, SEM_ENOMEM, "out of memory parsing the template");
        return NULL;
    }
    t->tree = tree;
    return t;
}

void jinja_free(jinja_template *t)
{
    if (!t)
        return;
    jinja_tree_free(t->tree);
    free(t);
}

sem_status jinja_render(const jinja_template *t, const json_t *context,
                        const jinja_render_opts *opts, char **out, size_t *out_len, sem_err *err)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t || !out)
        return sem_err_set(err, SEM_EINVAL, "jinja_render: template and out must not be NULL");
    if (context && !json_is_object(context))
        return sem_err_set(err, SEM_EINVAL, "jinja_render: the context must be a JSON object");

    sem_err local = {0};
    rctx c = {.err = err ? err : &local};
    jinja_limits lim = opts ? opts->limits : (jinja_limits){0};
    c.lim.max_output_bytes = lim.max_output_bytes ? lim.max_output_bytes : DEFAULT_MAX_OUTPUT;
    c.lim.max_memory_bytes = lim.max_memory_bytes ? lim.max_memory_bytes : DEFAULT_MAX_MEMORY;
    c.lim.max_steps = lim.max_steps ? lim.max_steps : DEFAULT_MAX_STEPS;
    c.lim.max_loop_iterations = lim.max_loop_iterations ? lim.max_loop_iterations : DEFAULT_MAX_LOOP;
    c.lim.max_call_depth = lim.max_call_depth > 0 ? lim.max_call_depth : DEFAULT_MAX_CALLS;
    c.arena.limit = c.lim.max_memory_bytes;
    c.now = opts && opts->now ? opts->now : time(NULL);
    c.local_time = opts && opts->local_time;

    jbuf result = {.limit = c.lim.max_output_bytes};
    jframe globals = {0}, root = {0};
    int rc = new_frame(&c, NULL, &globals, NULL);
    if (rc == 0)
        rc = new_frame(&c, NULL, &root, &globals);
    for (int id = 1; rc == 0 && id < JFUNC_COUNT; id++) {
        jv f = {.type = JV_FUNC, .func = id};
        rc = assign(&c, NULL, &globals, jinja_func_names[id], strlen(jinja_func_names[id]), f);
    }
    if (rc == 0 && context) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)context, key, val)
        {
            jv v;
            sem_err e = {0};
            if (jv_from_json(&c.arena, val, JSON_MAX_DEPTH, &v, &e) != 0) {
                rc = jeval_fail(&c, NULL, e.status, "context variable '%s': %s", key, e.detail);
                break;
            }
            if ((rc = assign(&c, NULL, &globals, key, strlen(key), v)) != 0)
                break;
        }
    }
    if (rc == 0) {
        c.globals = &globals;
        c.root = &root;
        c.frame = &root;
        c.out = &result;
        rc = exec_body(&c, t->tree->body, t->tree->n);
    }
    jarena_free(&c.arena);
    if (rc != 0) {
        free(result.p);
        return c.err->status != SEM_OK ? c.err->status : SEM_EINTERNAL;
    }
    if (!result.p) {
        result.p = malloc(1);
        if (!result.p)
            return sem_err_set(err, SEM_ENOMEM, "out of memory while rendering");
        result.p[0] = '\0';
    }
    *out = result.p;
    if (out_len)
        *out_len = result.len;
    return SEM_OK;
}

sem_status jinja_tojson(const json_t *value, char **out, size_t *out_len, sem_err *err)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!out)
        return sem_err_set(err, SEM_EINVAL, "jinja_tojson: out must not be NULL");
    sem_err local = {0};
    if (!err)
        err = &local;
    jarena arena = {0};
    jbuf b = {0};
    jv v;
    int rc = jv_from_json(&arena, value, JSON_MAX_DEPTH, &v, err);
    if (rc == 0 && (rc = jv_write_json(&b, v, NULL, err)) != 0 && b.failed)
        sem_err_set(err, SEM_ENOMEM, "tojson: out of memory");
    jarena_free(&arena);
    if (rc != 0) {
        free(b.p);
        return err->status != SEM_OK ? err->status : SEM_EINTERNAL;
    }
    *out = b.p; /* NUL-terminated by jbuf_put; never empty (JSON has no empty text) */
    if (out_len)
        *out_len = b.len;
    return SEM_OK;
}
