/*
 * json_schema.c - a JSON Schema compiled to grammar rules (json_schema.h).
 *
 * One walk over the schema, depth first. Each schema becomes an
 * expression (one term: a literal, a rule name or a parenthesised group);
 * a child's expression goes into its own rule (name-sN) unless it is
 * short, so every rule stays readable and shared parts are written once.
 * Rules are appended to the output as they are finished, the helpers
 * (string characters, numbers, any value) at the end, each only if used.
 *
 * Objects: members come in the order of "properties"; required ones are
 * always there, optional ones may be left out. With T(i) the members
 * after i once one has been written (each as ", " key ": " value, or
 * optionally so), an object is "{" (m0 T(1) | m1 T(2) | ... | mr T(r+1))
 * "}" where r is the first required member: the first member written is
 * any optional one before r, or r itself. T(i) is a rule per member, so
 * the grammar grows linearly with the member count. Extra members
 * (additionalProperties true or a schema) come after the declared ones,
 * with keys that differ from every declared key.
 *
 * $ref: a target is compiled once into a rule of its own, so recursion
 * is a rule referring to itself. Recursion is allowed only through an
 * object or array (which writes "{" or "[" first): a $ref chain back to a
 * target still being compiled with no container in between would never
 * produce a byte, and is refused.
 *
 * Ownership: the caller's strbuf receives the rules; everything else is
 * freed before returning. On failure the strbuf is back at its length on
 * entry. Threads: pure function of its arguments.
 */
#include "json_schema.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_schema_parts.h"

/* A $ref target: compiled into rule name-s<id>. */
struct jsg_ref {
    const json_t *target;
    unsigned id;
    int done, never, used_inside;
    int container_depth; /* objects and arrays around it when it began */
};

/* Child expressions up to this many bytes are written in place. */
#define INLINE_MAX 48

static sem_status schema_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never);

/* ---------------------------------------------------------------- context */

sem_status jsg_fail(jsg_ctx *c, const char *key, sem_status st, const char *fmt, ...)
{
    char msg[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *sep = c->path_len && key ? "." : "";
    if (!c->path_len && !key)
        return sem_err_set(c->err, st, "schema: %s", msg);
    return sem_err_set(c->err, st, "%s%s%s: %s", c->path, sep, key ? key : "", msg);
}

void jsg_append(strbuf *dst, const strbuf *src)
{
    if (src->len)
        strbuf_append(dst, src->data, src->len);
    dst->oom |= src->oom;
}

void jsg_ref_name(const jsg_ctx *c, strbuf *e, const char *suffix)
{
    strbuf_printf(e, "%s-%s", c->name, suffix);
}

void jsg_emit_rule(jsg_ctx *c, strbuf *e, const strbuf *body)
{
    unsigned id = c->next_rule++;
    strbuf_printf(c->out, "%s-s%u ::= ", c->name, id);
    jsg_append(c->out, body);
    strbuf_puts(c->out, "\n");
    strbuf_printf(e, "%s-s%u", c->name, id);
}

/* Appends ".seg" (or "seg" at the root) or "[i]" to the path; returns the
 * length to restore. A path too long for the buffer ends in "...". */
static size_t path_push(jsg_ctx *c, const char *seg, long index)
{
    size_t mark = c->path_len, room = sizeof c->path - c->path_len;
    int n;
    if (seg)
        n = snprintf(c->path + c->path_len, room, "%s%s", c->path_len ? "." : "", seg);
    else
        n = snprintf(c->path + c->path_len, room, "[%ld]", index);
    if (n < 0 || (size_t)n >= room) {
        memcpy(c->path + sizeof c->path - 4, "...", 4);
        c->path_len = sizeof c->path - 1;
    } else {
        c->path_len += (size_t)n;
    }
    return mark;
}

static void path_pop(jsg_ctx *c, size_t mark)
{
    c->path_len = mark;
    c->path[mark] = '\0';
}

/* schema_expr under path seg (and [index] when index >= 0). */
static sem_status sub_expr(jsg_ctx *c, const json_t *s, const char *seg, long index, strbuf *e,
                           int *never)
{
    size_t mark = path_push(c, seg, -1);
    if (index >= 0)
        path_push(c, NULL, index);
    sem_status st = schema_expr(c, s, e, never);
    path_pop(c, mark);
    return st;
}

/* A child schema as a term: in place when short, else its own rule. */
static sem_status child_expr(jsg_ctx *c, const json_t *s, const char *seg, long index, strbuf *e,
                             int *never)
{
    strbuf body = {0};
    sem_status st = sub_expr(c, s, seg, index, &body, never);
    if (st == SEM_OK && !*never) {
        if (body.len <= INLINE_MAX)
            jsg_append(e, &body);
        else
            jsg_emit_rule(c, e, &body);
    }
    e->oom |= body.oom;
    strbuf_free(&body);
    return st;
}

/* ---------------------------------------------------------------- keywords */

static int in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0)
            return 1;
    return 0;
}

static const char *const KW_HANDLED[] = {
    "type", "nullable", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
    "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", NULL};

static const char *const KW_IGNORED[] = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment",
    "deprecated", "readOnly", "writeOnly", "$defs", "definitions", NULL};

/* Keywords whose value here asks for nothing this walk does not do. */
static int no_op(const char *k, const json_t *v)
{
    /* uniqueItems false asks nothing; extra properties and items after a
     * tuple are never written, so forbidding them holds already */
    return (strcmp(k, "uniqueItems") == 0 || strcmp(k, "unevaluatedProperties") == 0 ||
            strcmp(k, "additionalItems") == 0) &&
           json_is_false(v);
}

static sem_status check_keywords(jsg_ctx *c, const json_t *s)
{
    const char *k;
    json_t *v;
    if (!c->strict)
        return SEM_OK;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(k, KW_HANDLED) || in_list(k, KW_IGNORED) || no_op(k, v))
            continue;
        return jsg_fail(c, k, SEM_EUNSUPPORTED,
                        "keyword not supported by strict structured output");
    }
    return SEM_OK;
}

/* A constraining keyword beside `self` (annotations and nullable aside). */
static const char *sibling(const json_t *s, const char *self)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (strcmp(k, self) != 0 && strcmp(k, "nullable") != 0 && !in_list(k, KW_IGNORED) &&
            !no_op(k, v))
            return k;
    }
    return NULL;
}

/* A count keyword: a non-negative integer (5.0 too); dflt when absent. */
static sem_status read_count(jsg_ctx *c, const json_t *s, const char *key, int64_t dflt,
                             int64_t *out)
{
    const json_t *v = json_object_get(s, key);
    *out = dflt;
    if (!v)
        return SEM_OK;
    double d = json_number_value(v);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *out = json_integer_value(v);
    else if (json_is_real(v) && d >= 0 && d == floor(d) && d < 9e18)
        *out = (int64_t)d;
    else
        return jsg_fail(c, key, SEM_EREQUEST, "must be a non-negative integer");
    return SEM_OK;
}

/* ---------------------------------------------------------------- literals */

static int value_has_type(const json_t *v, const char *type)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return strcmp(type, "object") == 0;
    case JSON_ARRAY: return strcmp(type, "array") == 0;
    case JSON_STRING: return strcmp(type, "string") == 0;
    case JSON_INTEGER: return strcmp(type, "integer") == 0 || strcmp(type, "number") == 0;
    case JSON_REAL:
        return strcmp(type, "number") == 0 ||
               (strcmp(type, "integer") == 0 && json_real_value(v) == floor(json_real_value(v)));
    case JSON_TRUE:
    case JSON_FALSE: return strcmp(type, "boolean") == 0;
    case JSON_NULL: return strcmp(type, "null") == 0;
    }
    return 0;
}

/* v passes the schema's "type" (and "nullable") if it has one. */
static int value_allowed(const json_t *s, const json_t *v)
{
    const json_t *t = json_object_get(s, "type");
    if (json_is_null(v) && json_is_true(json_object_get(s, "nullable")))
        return 1;
    if (json_is_string(t))
        return value_has_type(v, json_string_value(t));
    if (json_is_array(t)) {
        for (size_t i = 0; i < json_array_size(t); i++)
            if (json_is_string(json_array_get(t, i)) &&
                value_has_type(v, json_string_value(json_array_get(t, i))))
                return 1;
        return 0;
    }
    return 1;
}

static void value_literal(strbuf *e, const json_t *v)
{
    strbuf text = {0};
    json_write_value(&text, v, JSON_WRITE_TOJSON);
    jsg_literal(e, text.data ? text.data : "", text.len);
    e->oom |= text.oom;
    strbuf_free(&text);
}

/* enum / const: the canonical texts of the values. */
static sem_status literals_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    const json_t *cv = json_object_get(s, "const"), *ev = json_object_get(s, "enum");
    if (ev && !json_is_array(ev))
        return jsg_fail(c, "enum", SEM_EREQUEST, "must be an array");
    size_t n = cv ? 1 : json_array_size(ev);
    int alts = 0;
    strbuf_append(e, "(", 1);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = cv ? cv : json_array_get(ev, i);
        if (!value_allowed(s, v) || (cv && ev && !json_equal((json_t *)cv, (json_t *)v)))
            continue;
        if (cv && ev) { /* both: the const, if the enum has it */
            int found = 0;
            for (size_t j = 0; j < json_array_size(ev); j++)
                found |= json_equal((json_t *)cv, json_array_get(ev, j));
            if (!found)
                continue;
        }
        strbuf_puts(e, alts++ ? " | " : "");
        value_literal(e, v);
    }
    strbuf_append(e, ")", 1);
    *never = alts == 0;
    return SEM_OK;
}

/* ---------------------------------------------------------------- strings */

static sem_status string_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    int64_t lo, hi;
    sem_status st = read_count(c, s, "minLength", 0, &lo);
    if (st == SEM_OK)
        st = read_count(c, s, "maxLength", -1, &hi);
    if (st != SEM_OK)
        return st;
    *never = hi >= 0 && lo > hi;
    if (!*never)
        jsg_string_len(c, e, lo, hi);
    return SEM_OK;
}

/* ---------------------------------------------------------------- objects */

typedef struct member {
    const char *key;
    strbuf kv; /* "\"key\": " value */
    int required;
    unsigned tail; /* rule of the members after this one */
} member;

/* The member's key as its literal "\"key\": " and a space. */
static void member_key(member *mm)
{
    strbuf text = {0};
    json_write_string(&text, mm->key, strlen(mm->key));
    strbuf_append(&text, ": ", 2);
    jsg_literal(&mm->kv, text.data, text.len);
    strbuf_append(&mm->kv, " ", 1);
    mm->kv.oom |= text.oom;
    strbuf_free(&text);
}

static int name_in(const json_t *list, const char *key)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_is_string(json_array_get(list, i)) &&
            strcmp(json_string_value(json_array_get(list, i)), key) == 0)
            return 1;
    return 0;
}

static sem_status check_object_shape(jsg_ctx *c, const json_t *props, const json_t *req,
                                     const json_t *ap)
{
    if (props && !json_is_object(props))
        return jsg_fail(c, "properties", SEM_EREQUEST, "must be an object");
    if (req && !json_is_array(req))
        return jsg_fail(c, "required", SEM_EREQUEST, "must be an array of strings");
    for (size_t i = 0; i < json_array_size(req); i++) {
        if (!json_is_string(json_array_get(req, i))) {
            size_t mark = path_push(c, "required", -1);
            path_push(c, NULL, (long)i);
            sem_status st = jsg_fail(c, NULL, SEM_EREQUEST, "must be a string");
            path_pop(c, mark);
            return st;
        }
    }
    if (ap && !json_is_object(ap) && !json_is_boolean(ap))
        return jsg_fail(c, "additionalProperties", SEM_EREQUEST,
                        "must be a boolean or a schema");
    return SEM_OK;
}

/* The declared properties as members m[*n..], in order; an optional one
 * that can have no value is left out, a required one makes the object
 * impossible (*never). */
static sem_status declared_members(jsg_ctx *c, const json_t *s, member *m, size_t *n, int *never)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const char *key;
    json_t *sub;
    json_object_foreach((json_t *)props, key, sub) {
        member *mm = &m[(*n)++];
        *mm = (member){.key = key, .required = name_in(req, key)};
        member_key(mm);
        int nv = 0;
        size_t mark = path_push(c, "properties", -1);
        sem_status st = child_expr(c, sub, key, -1, &mm->kv, &nv);
        path_pop(c, mark);
        if (st != SEM_OK || (nv && mm->required)) {
            *never = nv;
            return st;
        }
        if (nv)
            strbuf_free(&m[--*n].kv);
    }
    return SEM_OK;
}

/* Required names that are not declared: members after the declared ones,
 * with the additionalProperties schema (any value when there is none). */
static sem_status undeclared_members(jsg_ctx *c, const json_t *s, member *m, size_t *n,
                                     int *never)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *name = json_string_value(json_array_get(req, i));
        int dup = json_object_get(props, name) != NULL; /* declared, or named twice */
        for (size_t j = 0; j < *n; j++)
            dup |= strcmp(m[j].key, name) == 0;
        if (dup)
            continue;
        if (json_is_false(ap)) {
            *never = 1;
            return SEM_OK;
        }
        member *mm = &m[(*n)++];
        *mm = (member){.key = name, .required = 1};
        member_key(mm);
        int nv = 0;
        if (!json_is_object(ap)) {
            jsg_any_value(c, &mm->kv);
            continue;
        }
        sem_status st = child_expr(c, ap, "additionalProperties", -1, &mm->kv, &nv);
        if (st != SEM_OK || nv) {
            *never = nv;
            return st;
        }
    }
    return SEM_OK;
}

/* The extra member "key": value as a rule (key differs from declared
 * ones); empty when extras are not written. */
static sem_status extra_member(jsg_ctx *c, const json_t *s, const member *m, size_t n,
                               strbuf *x)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    int free_form = !ap && json_object_size(props) == 0 && json_array_size(req) == 0;
    if (!free_form && !json_is_true(ap) && !json_is_object(ap))
        return SEM_OK;
    /* every declared name (also those left out for having no value) */
    const char **keys = malloc((n + json_object_size(props) + 1) * sizeof *keys);
    if (!keys)
        return jsg_fail(c, NULL, SEM_ENOMEM, "out of memory");
    size_t nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v)
        keys[nk++] = k;
    for (size_t i = 0; i < n; i++)
        keys[nk++] = m[i].key;
    strbuf body = {0};
    sem_status st = jsg_key_not_in(c, &body, keys, nk);
    free(keys);
    if (st != SEM_OK) {
        strbuf_free(&body);
        return jsg_fail(c, NULL, st, "out of memory");
    }
    strbuf_puts(&body, " \": \" ");
    int nv = 0;
    if (json_is_object(ap))
        st = child_expr(c, ap, "additionalProperties", -1, &body, &nv);
    else
        jsg_any_value(c, &body);
    if (st == SEM_OK && !nv)
        jsg_emit_rule(c, x, &body);
    x->oom |= body.oom;
    strbuf_free(&body);
    return st;
}

/* The members after member i, once one has been written. */
static void tail_expr(jsg_ctx *c, strbuf *e, const member *m, size_t i, size_t n,
                      const strbuf *x)
{
    if (i < n) {
        strbuf_printf(e, "%s-s%u", c->name, m[i].tail);
    } else if (x->len) {
        strbuf_puts(e, "(\", \" ");
        jsg_append(e, x);
        strbuf_puts(e, ")*");
    }
}

static void compose_object(jsg_ctx *c, strbuf *e, member *m, size_t n, const strbuf *x)
{
    if (n == 0 && x->len == 0) {
        jsg_literal(e, "{}", 2);
        return;
    }
    /* tail rules T(1) .. T(n-1): (", " member) then T(i+1) */
    for (size_t i = 1; i < n; i++)
        m[i].tail = c->next_rule++;
    for (size_t i = n; i-- > 1;) {
        strbuf_printf(c->out, "%s-s%u ::= ", c->name, m[i].tail);
        strbuf_puts(c->out, m[i].required ? "\", \" " : "(\", \" ");
        jsg_append(c->out, &m[i].kv);
        strbuf_puts(c->out, m[i].required ? " " : ")? ");
        tail_expr(c, c->out, m, i + 1, n, x);
        strbuf_puts(c->out, "\n");
    }
    size_t first_required = n;
    for (size_t i = 0; i < n && first_required == n; i++)
        if (m[i].required)
            first_required = i;
    strbuf_puts(e, "(\"{\" (");
    int alts = 0;
    for (size_t i = 0; i < n && i <= first_required; i++) {
        strbuf_puts(e, alts++ ? " | " : "");
        jsg_append(e, &m[i].kv);
        strbuf_append(e, " ", 1);
        tail_expr(c, e, m, i + 1, n, x);
    }
    if (first_required == n && x->len) {
        strbuf_puts(e, alts++ ? " | " : "");
        jsg_append(e, x);
        strbuf_puts(e, " ");
        tail_expr(c, e, m, n, n, x);
    }
    strbuf_puts(e, first_required == n ? ")? \"}\")" : ") \"}\")");
}

static sem_status object_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    sem_status st = check_object_shape(c, props, req, json_object_get(s, "additionalProperties"));
    if (st != SEM_OK)
        return st;
    size_t cap = json_object_size(props) + json_array_size(req) + 1;
    member *m = calloc(cap, sizeof *m);
    if (!m)
        return jsg_fail(c, NULL, SEM_ENOMEM, "out of memory");
    size_t n = 0;
    strbuf x = {0};
    c->container_depth++;
    st = declared_members(c, s, m, &n, never);
    if (st == SEM_OK && !*never)
        st = undeclared_members(c, s, m, &n, never);
    if (st == SEM_OK && !*never)
        st = extra_member(c, s, m, n, &x);
    c->container_depth--;
    if (st == SEM_OK && !*never)
        compose_object(c, e, m, n, &x);
    for (size_t i = 0; i < n; i++) {
        e->oom |= m[i].kv.oom;
        strbuf_free(&m[i].kv);
    }
    e->oom |= x.oom;
    strbuf_free(&x);
    free(m);
    return st;
}

/* ---------------------------------------------------------------- arrays */

typedef struct array_shape {
    strbuf *prefix; /* expressions of prefixItems */
    size_t k;       /* how many */
    strbuf rest;    /* expression of the items after them; len 0: none */
    int64_t min, max; /* max < 0: unbounded */
} array_shape;

/* What follows after i elements (i >= 1). */
static void array_rest(strbuf *e, const array_shape *a, int64_t i)
{
    if (a->max >= 0 && i >= a->max)
        return;
    if ((size_t)i < a->k) {
        strbuf_puts(e, " (\", \" ");
        jsg_append(e, &a->prefix[i]);
        array_rest(e, a, i + 1);
        strbuf_puts(e, i < a->min ? ")" : ")?");
        return;
    }
    if (!a->rest.len)
        return;
    int64_t lo = a->min > i ? a->min - i : 0, hi = a->max < 0 ? -1 : a->max - i;
    strbuf term = {0};
    strbuf_puts(&term, "(\", \" ");
    jsg_append(&term, &a->rest);
    strbuf_puts(&term, ")");
    strbuf_append(e, " ", 1);
    jsg_repeat(e, term.data ? term.data : "", lo, hi);
    e->oom |= term.oom;
    strbuf_free(&term);
}

static sem_status array_items(jsg_ctx *c, const json_t *s, array_shape *a, int *never)
{
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    const json_t *tuple = prefix ? prefix : json_is_array(items) ? items : NULL;
    const char *tuple_key = prefix ? "prefixItems" : "items";
    sem_status st = SEM_OK;
    if (prefix && !json_is_array(prefix))
        return jsg_fail(c, "prefixItems", SEM_EREQUEST, "must be an array of schemas");
    if (prefix && json_is_array(items))
        return jsg_fail(c, "items", SEM_EREQUEST, "must be a schema when prefixItems is given");
    if (items && !json_is_array(items) && !json_is_object(items) && !json_is_boolean(items))
        return jsg_fail(c, "items", SEM_EREQUEST, "must be a schema");
    a->prefix = calloc(json_array_size(tuple) + 1, sizeof *a->prefix);
    if (!a->prefix)
        return jsg_fail(c, NULL, SEM_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(tuple); i++) {
        int nv = 0;
        st = child_expr(c, json_array_get(tuple, i), tuple_key, (long)i, &a->prefix[a->k], &nv);
        if (st != SEM_OK)
            return st;
        if (nv) { /* no element can stand here: the array stops before it */
            a->max = a->max < 0 || a->max > (int64_t)i ? (int64_t)i : a->max;
            return SEM_OK;
        }
        a->k++;
    }
    if (tuple && (!items || json_is_array(items))) /* nothing after the tuple */
        a->max = a->max < 0 || a->max > (int64_t)a->k ? (int64_t)a->k : a->max;
    else if (!json_is_false(items)) {
        int nv = 0;
        st = child_expr(c, items, "items", -1, &a->rest, &nv);
        if (st == SEM_OK && nv)
            strbuf_truncate(&a->rest, 0);
    }
    if (!a->rest.len && (a->max < 0 || a->max > (int64_t)a->k))
        a->max = (int64_t)a->k;
    *never = a->min > a->max && a->max >= 0;
    return st;
}

static sem_status array_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    array_shape a = {0};
    sem_status st = read_count(c, s, "minItems", 0, &a.min);
    if (st == SEM_OK)
        st = read_count(c, s, "maxItems", -1, &a.max);
    if (st != SEM_OK)
        return st;
    c->container_depth++;
    st = array_items(c, s, &a, never);
    c->container_depth--;
    if (st == SEM_OK && !*never) {
        if (a.max == 0) {
            jsg_literal(e, "[]", 2);
        } else {
            const strbuf *first = a.k ? &a.prefix[0] : &a.rest;
            strbuf_puts(e, a.min == 0 ? "(\"[\" (" : "(\"[\" ");
            jsg_append(e, first);
            array_rest(e, &a, 1);
            strbuf_puts(e, a.min == 0 ? ")? \"]\")" : " \"]\")");
        }
    }
    for (size_t i = 0; a.prefix && i <= a.k; i++) {
        e->oom |= a.prefix[i].oom;
        strbuf_free(&a.prefix[i]);
    }
    free(a.prefix);
    e->oom |= a.rest.oom;
    strbuf_free(&a.rest);
    return st;
}

/* ---------------------------------------------------------------- types */

static const char *const TYPES[] = {"object", "array", "string", "integer", "number",
                                    "boolean", "null", NULL};

static sem_status type_expr(jsg_ctx *c, const json_t *s, const char *t, strbuf *e, int *never)
{
    *never = 0;
    if (strcmp(t, "object") == 0)
        return object_expr(c, s, e, never);
    if (strcmp(t, "array") == 0)
        return array_expr(c, s, e, never);
    if (strcmp(t, "string") == 0)
        return string_expr(c, s, e, never);
    if (strcmp(t, "integer") == 0)
        return jsg_integer(c, s, e, never);
    if (strcmp(t, "number") == 0)
        return jsg_number(c, s, e, never);
    if (strcmp(t, "boolean") == 0)
        strbuf_puts(e, "(\"true\" | \"false\")");
    else
        strbuf_puts(e, "\"null\"");
    return SEM_OK;
}

/* The types a schema without "type" is read as, from its keywords. */
static int inferred_types(const json_t *s, const char **out)
{
    static const char *const OBJ[] = {"properties", "required", "additionalProperties", NULL};
    static const char *const ARR[] = {"items", "prefixItems", "minItems", "maxItems", NULL};
    static const char *const STR[] = {"minLength", "maxLength", NULL};
    static const char *const NUM[] = {"minimum", "maximum", "exclusiveMinimum",
                                      "exclusiveMaximum", NULL};
    static const char *const *const KEYS[] = {OBJ, ARR, STR, NUM};
    static const char *const NAMES[] = {"object", "array", "string", "number"};
    int n = 0;
    for (int t = 0; t < 4; t++) {
        for (const char *const *k = KEYS[t]; *k; k++) {
            if (json_object_get(s, *k)) {
                out[n++] = NAMES[t];
                break;
            }
        }
    }
    return n;
}

/* Appends an alternative's expression to e (when `take`: it admits
 * something and was built) and frees it; counts the alternatives. */
static void add_alternative(strbuf *e, strbuf *one, int take, int *alts)
{
    if (take) {
        strbuf_puts(e, (*alts)++ ? " | " : "");
        jsg_append(e, one);
    }
    e->oom |= one->oom;
    strbuf_free(one);
}

static sem_status types_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    const json_t *t = json_object_get(s, "type");
    const char *names[8];
    int n = 0;
    if (json_is_string(t)) {
        names[n++] = json_string_value(t);
    } else if (json_is_array(t)) {
        for (size_t i = 0; i < json_array_size(t); i++) {
            const json_t *v = json_array_get(t, i);
            if (!json_is_string(v) || !in_list(json_string_value(v), TYPES))
                return jsg_fail(c, "type", SEM_EREQUEST, "must name JSON types (object, array, "
                                "string, integer, number, boolean, null)");
            int seen = 0; /* a type listed twice counts once */
            for (int j = 0; j < n; j++)
                seen |= strcmp(names[j], json_string_value(v)) == 0;
            if (!seen)
                names[n++] = json_string_value(v);
        }
    } else if (t) {
        return jsg_fail(c, "type", SEM_EREQUEST, "must be a string or an array of strings");
    } else {
        n = inferred_types(s, names);
        if (n == 0) {
            jsg_any_value(c, e);
            *never = 0;
            return SEM_OK;
        }
    }
    int alts = 0;
    strbuf_append(e, "(", 1);
    for (int i = 0; i < n; i++) {
        if (!in_list(names[i], TYPES))
            return jsg_fail(c, "type", SEM_EREQUEST, "unknown type '%s'", names[i]);
        strbuf one = {0};
        int nv = 0;
        sem_status st = type_expr(c, s, names[i], &one, &nv);
        add_alternative(e, &one, st == SEM_OK && !nv, &alts);
        if (st != SEM_OK)
            return st;
    }
    strbuf_append(e, ")", 1);
    *never = alts == 0;
    return SEM_OK;
}

/* ---------------------------------------------------------------- anyOf, allOf */

static sem_status any_of_expr(jsg_ctx *c, const json_t *s, const char *key, strbuf *e,
                              int *never)
{
    const json_t *list = json_object_get(s, key);
    if (!json_is_array(list) || json_array_size(list) == 0)
        return jsg_fail(c, key, SEM_EREQUEST, "must be a non-empty array of schemas");
    const char *other = sibling(s, key);
    if (other && c->strict)
        return jsg_fail(c, other, SEM_EUNSUPPORTED, "beside %s: not supported by strict "
                        "structured output", key);
    int alts = 0;
    strbuf_append(e, "(", 1);
    for (size_t i = 0; i < json_array_size(list); i++) {
        strbuf one = {0};
        int nv = 0;
        sem_status st = child_expr(c, json_array_get(list, i), key, (long)i, &one, &nv);
        add_alternative(e, &one, st == SEM_OK && !nv, &alts);
        if (st != SEM_OK)
            return st;
    }
    strbuf_append(e, ")", 1);
    *never = alts == 0;
    return SEM_OK;
}

static const json_t *resolve_pointer(const json_t *root, const char *ref);

/* An allOf member that merges: an object schema with only type,
 * properties, required and annotations (after its $ref). */
static const json_t *mergeable(const jsg_ctx *c, const json_t *m)
{
    const json_t *ref = json_object_get(m, "$ref");
    if (json_is_string(ref) && json_string_value(ref)[0] == '#')
        m = resolve_pointer(c->root, json_string_value(ref));
    const json_t *t = json_object_get(m, "type");
    if (!json_is_object(m) || (t && !(json_is_string(t) && !strcmp(json_string_value(t), "object"))))
        return NULL;
    if (!t && !json_is_object(json_object_get(m, "properties")))
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (strcmp(k, "type") && strcmp(k, "properties") && strcmp(k, "required") &&
            !in_list(k, KW_IGNORED))
            return NULL;
    }
    return m;
}

/* allOf of several object schemas: one object with all their members
 * (*out NULL: they do not merge). */
static sem_status merge_all_of(jsg_ctx *c, const json_t *list, json_t **out)
{
    json_t *merged = json_pack("{s:s, s:{}, s:[]}", "type", "object", "properties", "required");
    json_t *props = json_object_get(merged, "properties"), *req = json_object_get(merged, "required");
    *out = NULL;
    if (!merged)
        return jsg_fail(c, "allOf", SEM_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *m = mergeable(c, json_array_get(list, i));
        if (!m) {
            json_decref(merged);
            if (c->strict)
                return jsg_fail(c, "allOf", SEM_EUNSUPPORTED, "only objects with properties "
                                "and required are merged under strict structured output");
            return SEM_OK; /* not merged: the first schema alone */
        }
        const json_t *mp = json_object_get(m, "properties");
        const char *k;
        json_t *v;
        int failed = 0;
        json_object_foreach((json_t *)mp, k, v) {
            if (json_object_get(props, k) && c->strict) {
                json_decref(merged);
                return jsg_fail(c, "allOf", SEM_EUNSUPPORTED,
                                "property '%s' is declared twice", k);
            }
            if (!json_object_get(props, k))
                failed |= json_object_set(props, k, v);
        }
        const json_t *mr = json_object_get(m, "required");
        for (size_t j = 0; j < json_array_size(mr); j++)
            failed |= json_array_append(req, json_array_get(mr, j));
        if (failed) {
            json_decref(merged);
            return jsg_fail(c, "allOf", SEM_ENOMEM, "out of memory");
        }
    }
    *out = merged;
    return SEM_OK;
}

static sem_status all_of_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    const json_t *list = json_object_get(s, "allOf");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return jsg_fail(c, "allOf", SEM_EREQUEST, "must be a non-empty array of schemas");
    const char *other = sibling(s, "allOf");
    if (other && c->strict)
        return jsg_fail(c, other, SEM_EUNSUPPORTED,
                        "beside allOf: not supported by strict structured output");
    if (json_array_size(list) == 1)
        return sub_expr(c, json_array_get(list, 0), "allOf", 0, e, never);
    json_t *merged = NULL;
    sem_status st = merge_all_of(c, list, &merged);
    if (st != SEM_OK)
        return st;
    if (!merged)
        return sub_expr(c, json_array_get(list, 0), "allOf", 0, e, never);
    size_t mark = path_push(c, "allOf", -1);
    st = schema_expr(c, merged, e, never);
    path_pop(c, mark);
    json_decref(merged);
    return st;
}

/* ---------------------------------------------------------------- $ref */

/* The JSON pointer after '#' (~0 ~1 and %XX decoded), from root. */
static const json_t *resolve_pointer(const json_t *root, const char *ref)
{
    const json_t *at = root;
    const char *p = ref + 1;
    if (*p && *p != '/')
        return NULL; /* an anchor, not a pointer */
    while (*p == '/' && at) {
        char seg[256];
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '~' && (p[1] == '0' || p[1] == '1'))
                ch = *++p == '0' ? '~' : '/';
            else if (ch == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
                char hex[3] = {p[1], p[2], 0};
                ch = (char)strtol(hex, NULL, 16);
                p += 2;
            }
            if (n + 1 >= sizeof seg)
                return NULL;
            seg[n++] = ch;
        }
        seg[n] = '\0';
        if (json_is_object(at)) {
            at = json_object_get(at, seg);
        } else if (json_is_array(at)) {
            char *end;
            long i = strtol(seg, &end, 10);
            at = *seg && !*end && i >= 0 ? json_array_get(at, (size_t)i) : NULL;
        } else {
            at = NULL;
        }
    }
    return at;
}

static jsg_ref *ref_find(jsg_ctx *c, const json_t *target)
{
    for (size_t i = 0; i < c->n_refs; i++)
        if (c->refs[i].target == target)
            return &c->refs[i];
    return NULL;
}

static sem_status ref_add(jsg_ctx *c, const json_t *target, size_t *idx)
{
    if (c->n_refs == c->cap_refs) {
        size_t cap = c->cap_refs ? c->cap_refs * 2 : 8;
        jsg_ref *r = realloc(c->refs, cap * sizeof *r);
        if (!r)
            return jsg_fail(c, "$ref", SEM_ENOMEM, "out of memory");
        c->refs = r;
        c->cap_refs = cap;
    }
    *idx = c->n_refs++;
    c->refs[*idx] = (jsg_ref){.target = target, .id = c->next_rule++,
                              .container_depth = c->container_depth};
    return SEM_OK;
}

/* Compiles the target into its rule, under the target's own path. */
static sem_status ref_compile(jsg_ctx *c, size_t idx, const char *ref)
{
    char saved[sizeof c->path];
    size_t saved_len = c->path_len;
    memcpy(saved, c->path, sizeof saved);
    c->path_len = 0;
    c->path[0] = '\0';
    for (const char *p = ref + 1; *p && c->path_len + 1 < sizeof c->path; p++) {
        if (*p == '/' && p == ref + 1)
            continue;
        c->path[c->path_len++] = *p == '/' ? '.' : *p;
        c->path[c->path_len] = '\0';
    }
    strbuf body = {0};
    int nv = 0;
    sem_status st = schema_expr(c, c->refs[idx].target, &body, &nv);
    jsg_ref *r = &c->refs[idx]; /* the table may have moved */
    r->done = 1;
    r->never = nv;
    if (st == SEM_OK && nv && r->used_inside)
        st = jsg_fail(c, NULL, SEM_EREQUEST, "refers to itself but admits no value");
    if (st == SEM_OK && !nv) {
        strbuf_printf(c->out, "%s-s%u ::= ", c->name, r->id);
        jsg_append(c->out, &body);
        strbuf_puts(c->out, "\n");
    }
    strbuf_free(&body);
    memcpy(c->path, saved, sizeof saved);
    c->path_len = saved_len;
    return st;
}

static sem_status ref_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    const json_t *rv = json_object_get(s, "$ref");
    if (!json_is_string(rv))
        return jsg_fail(c, "$ref", SEM_EREQUEST, "must be a string");
    const char *ref = json_string_value(rv);
    const char *other = sibling(s, "$ref");
    if (other && c->strict)
        return jsg_fail(c, other, SEM_EUNSUPPORTED,
                        "beside $ref: not supported by strict structured output");
    if (ref[0] != '#') {
        if (c->strict)
            return jsg_fail(c, "$ref", SEM_EUNSUPPORTED,
                            "only local references (\"#...\") are supported, not '%s'", ref);
        jsg_any_value(c, e);
        return SEM_OK;
    }
    const json_t *target = resolve_pointer(c->root, ref);
    if (!target)
        return jsg_fail(c, "$ref", SEM_EREQUEST, "'%s' names nothing in the schema", ref);
    jsg_ref *r = ref_find(c, target);
    if (!r) {
        size_t idx = 0;
        sem_status st = ref_add(c, target, &idx);
        if (st == SEM_OK)
            st = ref_compile(c, idx, ref);
        if (st != SEM_OK)
            return st;
        r = &c->refs[idx];
    } else if (!r->done) {
        if (c->container_depth <= r->container_depth)
            return jsg_fail(c, "$ref", SEM_EREQUEST,
                            "'%s' refers back to itself without an object or array between",
                            ref);
        r->used_inside = 1;
    }
    *never = r->never;
    if (!r->never)
        strbuf_printf(e, "%s-s%u", c->name, r->id);
    return SEM_OK;
}

/* ---------------------------------------------------------------- one schema */

static sem_status core_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    if (json_object_get(s, "$ref"))
        return ref_expr(c, s, e, never);
    if (json_object_get(s, "const") || json_object_get(s, "enum"))
        return literals_expr(c, s, e, never);
    if (json_object_get(s, "anyOf"))
        return any_of_expr(c, s, "anyOf", e, never);
    if (json_object_get(s, "oneOf"))
        return any_of_expr(c, s, "oneOf", e, never);
    if (json_object_get(s, "allOf"))
        return all_of_expr(c, s, e, never);
    return types_expr(c, s, e, never);
}

static sem_status schema_expr(jsg_ctx *c, const json_t *s, strbuf *e, int *never)
{
    *never = 0;
    if (!s || json_is_true(s)) {
        jsg_any_value(c, e);
        return SEM_OK;
    }
    if (json_is_false(s)) {
        *never = 1;
        return SEM_OK;
    }
    if (!json_is_object(s))
        return jsg_fail(c, NULL, SEM_EREQUEST, "a schema must be an object or a boolean");
    if (c->depth >= JSG_MAX_DEPTH)
        return jsg_fail(c, NULL, SEM_EREQUEST, "schemas nested deeper than %d levels",
                        JSG_MAX_DEPTH);
    const json_t *nullable = json_object_get(s, "nullable");
    if (nullable && !json_is_boolean(nullable))
        return jsg_fail(c, "nullable", SEM_EREQUEST, "must be a boolean");
    sem_status st = check_keywords(c, s);
    if (st != SEM_OK)
        return st;
    c->depth++;
    strbuf core = {0};
    st = core_expr(c, s, &core, never);
    c->depth--;
    if (st == SEM_OK && json_is_true(nullable) && !json_object_get(s, "enum") &&
        !json_object_get(s, "const")) {
        strbuf_puts(e, *never ? "\"null\"" : "(");
        if (!*never) {
            jsg_append(e, &core);
            strbuf_puts(e, " | \"null\")");
        }
        *never = 0;
    } else if (st == SEM_OK && !*never) {
        jsg_append(e, &core);
    }
    e->oom |= core.oom;
    strbuf_free(&core);
    if (st == SEM_OK && e->oom)
        return jsg_fail(c, NULL, SEM_ENOMEM, "out of memory");
    return st;
}

/* ---------------------------------------------------------------- entry */

static int valid_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return 0;
    return 1;
}

sem_status json_schema_grammar(const json_t *schema, const char *name, int strict, strbuf *out,
                               sem_err *err)
{
    if (!out || !valid_name(name))
        return sem_err_set(err, SEM_EINVAL, "json_schema_grammar: the rule name must be "
                           "[a-zA-Z0-9-]+ and out not NULL");
    size_t mark = out->len;
    jsg_ctx c = {.root = schema, .name = name, .strict = strict, .out = out, .err = err};
    strbuf body = {0};
    int never = 0;
    sem_status st = schema_expr(&c, schema, &body, &never);
    if (st == SEM_OK && never)
        st = jsg_fail(&c, NULL, SEM_EREQUEST, "admits no value");
    if (st == SEM_OK) {
        strbuf_printf(out, "%s ::= ", name);
        jsg_append(out, &body);
        strbuf_puts(out, "\n");
        jsg_helpers(&c);
        if (out->oom || body.oom)
            st = sem_err_set(err, SEM_ENOMEM, "out of memory writing the grammar");
    }
    if (st != SEM_OK && out->len > mark)
        strbuf_truncate(out, mark);
    strbuf_free(&body);
    free(c.refs);
    return st;
}
