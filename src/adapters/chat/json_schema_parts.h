/*
 * json_schema_parts.h - the pieces json_schema.c builds a grammar from,
 * shared by its files (not a public interface).
 *
 *   json_schema.c       walks the schema: keywords, types, objects,
 *                       arrays, anyOf, $ref; owns the compile context
 *   json_schema_text.c  canonical JSON text: string characters, literals
 *                       of values (enum, const, keys), the any-value
 *                       rules, keys outside a given set
 *   json_schema_num.c   integers and numbers within bounds
 *
 * Every piece appends a grammar expression to a strbuf. An expression is
 * one term: a literal, a class, a rule name or a parenthesised group, so
 * a caller can follow it with a repetition or put it in a sequence. A
 * piece whose language is empty (minimum above maximum, schema false)
 * appends nothing and reports it through `never`, so no alternative that
 * can never finish reaches the grammar (a dead end would leave a model
 * with no token to choose).
 *
 * Threads: a context belongs to one call.
 */
#ifndef SEM_JSON_SCHEMA_PARTS_H
#define SEM_JSON_SCHEMA_PARTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "domain/status.h"
#include "json_write.h"

/* Helper rules a grammar needs, emitted once at the end (jsg_helpers). */
enum {
    JSG_NEED_CHAR = 1u << 0,    /* name-char: one canonical string character */
    JSG_NEED_STRING = 1u << 1,  /* name-string: any canonical string */
    JSG_NEED_INTEGER = 1u << 2, /* name-integer: any canonical integer */
    JSG_NEED_NUMBER = 1u << 3,  /* name-number, name-num-pos, name-num-uN */
    JSG_NEED_VALUE = 1u << 4,   /* name-v0 .. name-vD: any value, depth-bounded */
    JSG_NEED_KEYREST = 1u << 5, /* name-kq-N: the rest of a key from DFA state N */
};

/* Depth of the any-value rule: containers nest at most this deep. */
#define JSG_VALUE_DEPTH 8
/* Significant digits of a number with a fraction: at most 15, so the
 * double it reads as prints back as the same text (DBL_DIG). */
#define JSG_SIG_DIGITS 15
/* The largest integer written: 16 digits, well inside int64. */
#define JSG_INT_MAX 9999999999999999ull
/* The largest count of a repetition x{m,n} in the dialect: larger
 * lower bounds are split, larger upper bounds capped (fewer texts, all
 * valid). */
#define JSG_REPEAT_MAX 10000
/* Schemas nest at most this deep (objects in arrays in anyOf ...). */
#define JSG_MAX_DEPTH 64

typedef struct jsg_ref jsg_ref;

typedef struct jsg_ctx {
    const json_t *root; /* for $ref */
    const char *name;   /* the rule being defined; helpers are name-... */
    int strict;
    strbuf *out;  /* the rules, appended as they are finished */
    sem_err *err; /* the first failure */
    char path[256]; /* where in the schema: "properties.a.items" */
    size_t path_len;
    unsigned next_rule;       /* name-sN numbering */
    unsigned need;            /* JSG_NEED_* */
    unsigned keyrest_states;  /* bit per DFA state whose name-kq-N is used */
    int depth;                /* schema nesting now */
    int container_depth;      /* objects and arrays entered now: progress for $ref */
    jsg_ref *refs;            /* $ref targets seen (json_schema.c) */
    size_t n_refs, cap_refs;
} jsg_ctx;

/* Records a failure "path: message" (path of the context, plus `key`
 * when not NULL) and returns st. */
sem_status jsg_fail(jsg_ctx *c, const char *key, sem_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends src to dst; a failed src fails dst. */
void jsg_append(strbuf *dst, const strbuf *src);

/* Appends "name-suffix" (a rule reference) to e. */
void jsg_ref_name(const jsg_ctx *c, strbuf *e, const char *suffix);

/* Appends a rule "name-sN ::= body" to the output and its name to e. */
void jsg_emit_rule(jsg_ctx *c, strbuf *e, const strbuf *body);

/* ---------------------------------------------------------------- text */

/* Appends s[0..n) as a grammar literal "..." (bytes outside printable
 * ASCII as \xNN). */
void jsg_literal(strbuf *e, const char *s, size_t n);

/* Appends a byte class [..] of the bytes set in set[256]. */
void jsg_class(strbuf *e, const unsigned char set[256]);

/* Expressions for the helper rules (and marks them needed). */
void jsg_any_string(jsg_ctx *c, strbuf *e);
void jsg_any_value(jsg_ctx *c, strbuf *e);
/* A string of code points [min_len, max_len] (max_len < 0: unbounded). */
void jsg_string_len(jsg_ctx *c, strbuf *e, int64_t min_len, int64_t max_len);

/* Appends term repeated lo..hi times (hi < 0: no upper bound); nothing
 * when hi is 0. */
void jsg_repeat(strbuf *e, const char *term, int64_t lo, int64_t hi);

/* A JSON string (quotes included) whose value is none of keys[0..n)
 * (UTF-8). Returns SEM_ENOMEM or SEM_OK. */
sem_status jsg_key_not_in(jsg_ctx *c, strbuf *e, const char *const *keys, size_t n);

/* Appends the helper rules marked in c->need. */
void jsg_helpers(jsg_ctx *c);

/* ---------------------------------------------------------------- numbers */

/* The canonical integers / numbers of schema s (its minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum). */
sem_status jsg_integer(jsg_ctx *c, const json_t *s, strbuf *e, int *never);
sem_status jsg_number(jsg_ctx *c, const json_t *s, strbuf *e, int *never);

/* Appends the canonical decimals of the integers [lo, hi] (lo <= hi <=
 * JSG_INT_MAX). */
void jsg_uint_range(strbuf *e, uint64_t lo, uint64_t hi);

#endif
