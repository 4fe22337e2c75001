/*
 * json_text.h - a jansson value as compact JSON text, written into a
 * strbuf.
 *
 * Why not json_dumps(): jansson 2.14's dumper drops an object key when an
 * allocation fails inside it and still returns text (`{":"system"}`), so
 * under memory pressure it can hand back JSON that says something else.
 * Here a failed allocation fails the buffer (strbuf's oom) and nothing
 * else changes.
 *
 * Threads: any; the value is only read.
 */
#ifndef SEM_JSON_TEXT_H
#define SEM_JSON_TEXT_H

#include <jansson.h>

#include "base/strbuf.h"

/* Appends v as compact JSON (object keys in jansson's order; nesting is
 * bounded by what jansson accepted). Check out->oom afterwards. */
void json_text_append(strbuf *out, const json_t *v);

#endif
