/*
 * jinja_value.h - the values of the Jinja interpreter, the arena that holds
 * them, and their Python-compatible text forms.
 *
 * Chat templates are written for Python's Jinja2, so a value here behaves as
 * the Python object it stands for: str() of a float is Python's repr
 * ("1.0", "1e-05"), str() of True is "True", a list prints as
 * "['a', 1]", tojson is json.dumps(ensure_ascii=False) with Python's
 * separators, and `1 == 1.0 == True`.
 *
 * Memory: every value made during one render lives in that render's arena
 * (jarena) and is freed with it in one call; nothing is reference counted.
 * Lists and dicts are never changed after they are built, except a
 * namespace's dict (`{% set ns.x = ... %}`). Strings are byte ranges (UTF-8,
 * not NUL-terminated); they may point into the template's AST or the
 * caller's JSON input, both of which outlive the render.
 *
 * Threads: an arena and the values in it belong to one render (one thread).
 * The functions here keep no global state.
 */
#ifndef SEM_JINJA_VALUE_H
#define SEM_JINJA_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "domain/status.h"
#include "base/utf8.h"

/* ---------------------------------------------------------------- arena */

typedef struct jarena_block jarena_block;

/* Bump allocator with a byte budget. Zero-initialise, set `limit` (0 = no
 * limit), allocate, then jarena_free once. */
typedef struct jarena {
    jarena_block *head;
    size_t total; /* bytes of all blocks */
    size_t limit; /* refuse to grow past this many bytes; 0 = unlimited */
    bool over_limit; /* the last failure was the limit, not malloc */
} jarena;

/* n bytes aligned to 16, or NULL (limit reached or out of memory). */
void *jarena_alloc(jarena *a, size_t n);
void *jarena_zalloc(jarena *a, size_t n);
/* Copies n bytes and adds a NUL (the copy is n + 1 bytes). */
char *jarena_strndup(jarena *a, const char *s, size_t n);
void jarena_free(jarena *a);

/* ---------------------------------------------------------------- buffers */

/* A growable byte buffer. With `arena` set it grows inside the arena (its
 * old copies stay until the arena is freed); without, it uses malloc and the
 * owner frees `p`. `limit` caps len (0 = unlimited). */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    size_t limit;
    jarena *arena;
    int failed; /* 0, JBUF_OVER_LIMIT or JBUF_NO_MEMORY (sticky) */
} jbuf;

enum { JBUF_OVER_LIMIT = 1, JBUF_NO_MEMORY = 2 };

int jbuf_put(jbuf *b, const char *s, size_t n); /* 0 or -1 (b->failed says why) */
int jbuf_putc(jbuf *b, char c);
int jbuf_puts(jbuf *b, const char *s);
int jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- values */

typedef enum jv_type {
    JV_UNDEFINED, /* a missing name or attribute; s/len hold its name */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,      /* list or tuple (list->tuple) */
    JV_DICT,      /* insertion-ordered mapping */
    JV_NAMESPACE, /* namespace(): a dict whose attributes can be set */
    JV_MACRO,     /* a {% macro %} */
    JV_FUNC,      /* a built-in global function (jinja_eval.c's ids) */
    JV_LOOP       /* the `loop` object of a for loop */
} jv_type;

typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;
struct jnode;
struct jv_loop;

typedef struct jv {
    jv_type type;
    int func;   /* JV_FUNC: built-in id */
    size_t len; /* JV_STR, JV_UNDEFINED: byte length of s */
    union {
        bool b;
        int64_t i;
        double f;
        const char *s;          /* JV_STR bytes; JV_UNDEFINED name */
        jv_list *list;          /* JV_LIST */
        jv_dict *dict;          /* JV_DICT, JV_NAMESPACE */
        const struct jnode *macro;
        struct jv_loop *loop;
    } u;
} jv;

struct jv_list {
    size_t len, cap;
    bool tuple; /* prints as (a, b) and is not == to a list */
    jv *items;
};

/* Entries in insertion order; from DICT_INDEX_MIN entries on, a hash index
 * (open addressing, slot = entry + 1, 0 = empty) makes lookups O(1), so a
 * template looking up keys of a large client-supplied dict stays linear. */
struct jv_dict {
    size_t len, cap;
    jv *keys;
    jv *vals;
    uint32_t *index;  /* NULL while small (or if the arena refused it) */
    size_t index_cap; /* a power of two, at least twice len */
};

static inline jv jv_undef(const char *name, size_t len)
{
    jv v = {.type = JV_UNDEFINED, .len = len};
    v.u.s = name;
    return v;
}
static inline jv jv_none(void) { return (jv){.type = JV_NONE}; }
static inline jv jv_bool(bool b)
{
    jv v = {.type = JV_BOOL};
    v.u.b = b;
    return v;
}
static inline jv jv_int(int64_t i)
{
    jv v = {.type = JV_INT};
    v.u.i = i;
    return v;
}
static inline jv jv_float(double f)
{
    jv v = {.type = JV_FLOAT};
    v.u.f = f;
    return v;
}
static inline jv jv_str(const char *s, size_t len)
{
    jv v = {.type = JV_STR, .len = len};
    v.u.s = s;
    return v;
}
static inline jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }

/* Lists and dicts, allocated in the arena. NULL / -1 when the arena refuses. */
jv_list *jv_list_new(jarena *a, size_t cap);
int jv_list_push(jarena *a, jv_list *l, jv v);
jv_dict *jv_dict_new(jarena *a, size_t cap);
/* Sets key (replacing an equal key in place, else appending). */
int jv_dict_set(jarena *a, jv_dict *d, jv key, jv val);
/* The value of key, or NULL. Keys compare as == does. */
jv *jv_dict_get(const jv_dict *d, jv key);
jv *jv_dict_get_str(const jv_dict *d, const char *key, size_t len);

/* Python truthiness: none, undefined, False, 0, 0.0, "", [], {} are false. */
bool jv_truthy(jv v);
/* Python ==, deep for lists and dicts; numbers compare across int/float/bool. */
bool jv_equal(jv a, jv b);
/* Python <: numbers, strings (code point order), lists (lexicographic).
 * Returns 0 and sets *cmp (-1, 0, 1), or -1 for types that do not order. */
int jv_compare(jv a, jv b, int *cmp);
/* Python-ish type name for messages: "str", "int", "list", "dict", ... */
const char *jv_type_name(jv v);
bool jv_is_number(jv v); /* int, float or bool */
double jv_as_double(jv v);

/* Appends str(v) (Python's str: undefined is "", None is "None"). */
int jv_write_str(jbuf *b, jv v);
/* Appends repr(v) (strings quoted as Python does). */
int jv_write_repr(jbuf *b, jv v);
/* str(v) as a value; strings are returned as they are. */
int jv_to_str(jarena *a, jv v, jv *out);

/* json.dumps options: indent < 0 means none; indent_str overrides spaces. */
typedef struct jv_json_opts {
    int indent;
    const char *indent_str; /* NULL: `indent` spaces */
    size_t indent_str_len;
    bool ensure_ascii;
    bool sort_keys;
    const char *item_sep; /* NULL: ", " (or "," with indent) */
    size_t item_sep_len;
    const char *key_sep;  /* NULL: ": " */
    size_t key_sep_len;
} jv_json_opts;

/* Appends json.dumps(v, ...). Fails (SEM_EINVAL in err) on values JSON has no
 * form for (undefined, macros, namespaces) or nesting deeper than 256. */
int jv_write_json(jbuf *b, jv v, const jv_json_opts *o, sem_err *err);

/* Converts a jansson value; strings point into `j` (which must outlive the
 * values). Nesting deeper than max_depth fails. */
int jv_from_json(jarena *a, const json_t *j, int max_depth, jv *out, sem_err *err);

/* ---------------------------------------------------------------- text */

/* Strings are UTF-8 (JSON input is validated, template source is cleaned
 * by the parser); characters are counted with base/utf8.h. */

/* Python str.isspace() for one code point. */
bool unicode_is_space(uint32_t cp);

#endif
