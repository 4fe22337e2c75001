/*
 * jinja_eval.h - render state shared by the evaluator (jinja_eval.c) and the
 * built-in filters, tests, methods and globals (jinja_builtins.c).
 * Internal to the interpreter: only jinja.h is its public face.
 *
 * Error convention: functions return 0 or -1; on -1 the render state holds
 * the first error (rctx.failed) with its location, and callers only
 * propagate.
 */
#ifndef SEM_JINJA_EVAL_H
#define SEM_JINJA_EVAL_H

#include "jinja.h"
#include "jinja_ast.h"

/* A variable scope: the template top level, a for loop, a macro call. */
typedef struct jframe {
    struct jframe *parent;
    jv_dict *vars;
} jframe;

/* The state behind a `loop` object. */
struct jv_loop {
    size_t index0, length;
    const jv *items;
};

enum { CTRL_NONE, CTRL_BREAK, CTRL_CONTINUE };

typedef struct rctx {
    jarena arena;
    jbuf *out;      /* where text goes now (the result, or a capture) */
    sem_err *err;
    bool failed;
    int control;    /* CTRL_BREAK / CTRL_CONTINUE travelling up to the loop */
    jframe *globals; /* built-in globals and the caller's context */
    jframe *root;   /* the template's top level (parent: globals) */
    jframe *frame;  /* innermost scope */
    int depth;      /* C recursion depth of eval/exec */
    int call_depth; /* nested macro calls */
    uint64_t steps, loop_iters;
    jinja_limits lim;
    time_t now;
    bool local_time;
    jv block_input; /* the captured text a filter block's chain filters */
} rctx;

/* Evaluated call arguments: positional, then keyword (name, value). */
typedef struct jargs {
    jv *pos;
    size_t npos;
    const char **kw;
    jv *kwv;
    size_t nkw;
} jargs;

/* ---------------------------------------------------------------- errors */

int jeval_fail(rctx *c, const jnode *at, sem_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int jeval_nomem(rctx *c, const jnode *at);            /* an arena allocation failed */
int jeval_buf_fail(rctx *c, const jnode *at, const jbuf *b); /* a jbuf failed */
/* Error from a value function that filled `e` (no location yet). */
int jeval_fail_err(rctx *c, const jnode *at, const sem_err *e);

/* ---------------------------------------------------------------- helpers */

/* The items of an iterable: a list's items, a dict's keys, a string's
 * characters; undefined is empty. Others fail ("not iterable"). */
int jeval_iterate(rctx *c, const jnode *at, jv v, const jv **items, size_t *n);
/* obj.name and obj[key] with Jinja's lookup rules. */
int jeval_getattr(rctx *c, const jnode *at, jv obj, const char *name, size_t len, jv *out);
int jeval_getitem(rctx *c, const jnode *at, jv obj, jv key, jv *out);
/* A string value in the arena (copied from a jbuf's bytes). */
jv jeval_buf_str(const jbuf *b);
/* Adds `cost` evaluation steps (for built-ins whose work grows with their
 * input, e.g. a list scan) and fails when the step limit is passed. */
int jeval_charge(rctx *c, const jnode *at, uint64_t cost);
/* Fails with "'x' is undefined" when v is undefined. */
int jeval_require_defined(rctx *c, const jnode *at, jv v);
/* Applies a named test (for select/selectattr). */
int jeval_test_by_name(rctx *c, const jnode *at, const char *name, jv v, const jargs *a,
                       bool *out);
/* Applies a named filter (for map). */
int jeval_filter_by_name(rctx *c, const jnode *at, const char *name, jv v, const jargs *a,
                         jv *out);

/* ---------------------------------------------------------------- built-ins */

typedef int (*jfilter_fn)(rctx *c, const jnode *at, jv in, const jargs *a, jv *out);
typedef int (*jtest_fn)(rctx *c, const jnode *at, jv in, const jargs *a, bool *out);

typedef struct jfilter_def {
    const char *name;
    jfilter_fn fn;
} jfilter_def;

typedef struct jtest_def {
    const char *name;
    jtest_fn fn;
} jtest_def;

extern const jfilter_def jinja_filters[];
extern const size_t jinja_n_filters;
extern const jtest_def jinja_tests[];
extern const size_t jinja_n_tests;

/* Index in jinja_filters / jinja_tests, or -1. */
int jinja_filter_index(const char *name);
int jinja_test_index(const char *name);
/* True for Jinja2 filters this interpreter does not implement. */
bool jinja_filter_is_known_unsupported(const char *name);

/* Global functions (JV_FUNC ids). */
enum {
    JFUNC_RANGE = 1,
    JFUNC_NAMESPACE,
    JFUNC_DICT,
    JFUNC_RAISE_EXCEPTION,
    JFUNC_STRFTIME_NOW,
    JFUNC_COUNT
};
extern const char *const jinja_func_names[JFUNC_COUNT];
int jinja_call_global(rctx *c, const jnode *at, int id, const jargs *a, jv *out);

/* Python's printf-style `fmt % args` (the % operator and the format filter);
 * args is a tuple of values, a dict for %(name)s, or a single value. */
int jinja_percent_format(rctx *c, const jnode *at, jv fmt, jv args, jv *out);

/* obj.name(args) for str, dict and loop objects; *found is false when obj
 * has no such method (the caller then reports the error). */
int jinja_call_method(rctx *c, const jnode *at, jv obj, const char *name, const jargs *a,
                      jv *out, bool *found);

/* Argument access for built-ins. jargs_check fails on more than max_pos
 * positional arguments or a keyword not in kws (a NULL-terminated list). */
int jargs_check(rctx *c, const jnode *at, const jargs *a, const char *what, size_t max_pos,
                const char *const *kws);
/* The argument at position idx or with keyword kw (NULL: positional only). */
bool jargs_get(const jargs *a, size_t idx, const char *kw, jv *out);

#endif
