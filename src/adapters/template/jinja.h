/*
 * jinja.h - a small Jinja2 interpreter for chat templates.
 *
 * Models ship their prompt format as a Jinja2 template (GGUF key
 * tokenizer.chat_template), written for Python's Jinja2 as HF transformers
 * runs it. This module parses such a template once into an immutable tree
 * and renders it many times against a JSON context. docs/chat-templates.md
 * lists the supported subset; the short version:
 *
 *   statements  if/elif/else, for (else, loop.*, `for k, v in ...`, `if`
 *               filter), set (names, tuples, ns.attr, set blocks), macro
 *               and calls, filter blocks, raw, break/continue, do,
 *               generation; comments; whitespace control - + and the
 *               trim_blocks / lstrip_blocks rules HF uses.
 *   expressions literals, lists, dicts, tuples, attribute and item access,
 *               slices, arithmetic, ~, comparisons, and/or/not, in, is
 *               tests, x if c else y, filters, str/dict methods, globals
 *               range, namespace, dict, raise_exception, strftime_now.
 *   values      Python semantics (str of None is "None", of 1.0 is "1.0";
 *               tojson is json.dumps with ensure_ascii=False); undefined
 *               behaves as Jinja's default Undefined.
 *
 * Safety: a template is untrusted input. Parsing limits nesting; rendering
 * limits output bytes, arena memory, evaluation steps, loop iterations and
 * macro call depth (jinja_limits), and the interpreter's own recursion, so a
 * render needs at most about 256 KiB of stack (512 KiB under ASan). Every
 * failure is a status with a detail naming the template line and column;
 * nothing aborts.
 *
 * Threads: a jinja_template is immutable after jinja_parse; any number of
 * threads may render it at once (each render has its own state).
 * Ownership: the caller frees a template with jinja_free and a rendered
 * string with free().
 */
#ifndef SEM_JINJA_H
#define SEM_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "domain/status.h"

typedef struct jinja_template jinja_template;

/* Render limits; a zero field takes the default in brackets. */
typedef struct jinja_limits {
    size_t max_output_bytes;      /* rendered text, and each captured block [32 MiB] */
    size_t max_memory_bytes;      /* arena for values made while rendering [256 MiB] */
    uint64_t max_steps;           /* expressions evaluated + statements run [20,000,000] */
    uint64_t max_loop_iterations; /* for-loop iterations, all loops together; range() length [1,000,000] */
    int max_call_depth;           /* nested macro calls [64] */
} jinja_limits;

typedef struct jinja_render_opts {
    jinja_limits limits;
    time_t now;      /* the clock strftime_now() reads; 0 = time(NULL) */
    bool local_time; /* strftime_now() in the local time zone (else UTC) */
} jinja_render_opts;

/*
 * Parses a template of len bytes. Returns NULL with SEM_EINVAL for a syntax
 * error or an unknown filter/test, SEM_EUNSUPPORTED for a valid Jinja
 * construct this interpreter does not run ({% include %}, recursive loops,
 * the wordwrap filter, ...), SEM_ENOMEM; the detail names line and column.
 */
jinja_template *jinja_parse(const char *source, size_t len, sem_err *err);
void jinja_free(jinja_template *t);

/*
 * Renders t with the variables of `context` (a JSON object, or NULL for
 * none) on top of the globals. opts may be NULL (defaults, current time,
 * UTC). On success *out is a NUL-terminated malloc'd string (free it) and
 * *out_len (if not NULL) its length; the text may contain NUL bytes if the
 * input did. On failure *out is NULL and the status is SEM_EINVAL (a runtime
 * error, raise_exception(), or a limit) or SEM_ENOMEM.
 */
sem_status jinja_render(const jinja_template *t, const json_t *context,
                        const jinja_render_opts *opts, char **out, size_t *out_len,
                        sem_err *err);

/*
 * The text `value | tojson` renders: json.dumps(value, ensure_ascii=False)
 * with separators ", " and ": ", keys in their order, floats as Python
 * writes them (1.0, 1e-05). For callers that must write the bytes a
 * template would (a tool call rendered by semantic rather than by the
 * template). *out is malloc'd and NUL-terminated, *out_len (if not NULL)
 * its length. SEM_EINVAL for nesting deeper than 128, SEM_ENOMEM.
 */
sem_status jinja_tojson(const json_t *value, char **out, size_t *out_len, sem_err *err);

#endif
