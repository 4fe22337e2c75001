/*
 * json_write.h - jansson values as JSON text in a strbuf, in one of two
 * styles: compact (the conversation crossing the prompt port), or as chat
 * templates' tojson writes it (", " and ": "; the canonical form the
 * grammars make models write, json_schema.h).
 *
 * Both styles write strings and numbers the same way, read back by any
 * JSON reader as the same values: strings as UTF-8 with only \" \\ \n \r
 * \t \b \f and \u00xx (lowercase) escaped, integers in decimal, reals as
 * Python's repr writes them (the shortest digits that read back as the
 * same double, "1.0" rather than "1"). Object members keep jansson's order.
 *
 * Why not json_dumps(): jansson 2.14's dumper drops an object key when an
 * allocation fails inside it and still returns text, so under memory
 * pressure it can hand back JSON that says something else. Here a failed
 * allocation fails the buffer (strbuf's oom) and nothing else changes.
 *
 * Threads: any; the value is only read.
 */
#ifndef SEM_JSON_WRITE_H
#define SEM_JSON_WRITE_H

#include <jansson.h>
#include <stddef.h>

#include "base/strbuf.h"

typedef enum json_write_style {
    JSON_WRITE_COMPACT, /* "," and ":" */
    JSON_WRITE_TOJSON,  /* ", " and ": ", as tojson */
} json_write_style;

/* Appends v (nesting bounded by what jansson accepted). Check dst->oom. */
void json_write_value(strbuf *dst, const json_t *v, json_write_style style);

/* Appends s[0..n) (UTF-8) as a JSON string, quotes included. */
void json_write_string(strbuf *dst, const char *s, size_t n);

/* Appends d as Python's repr of a float writes it ("1.0", "1e-05"). */
void json_write_real(strbuf *dst, double d);

#endif
