/*
 * json_schema.h - a JSON Schema compiled to grammar rules (app/grammar.h's
 * dialect) whose sentences are the JSON texts valid against it, written
 * in one canonical form.
 *
 * The canonical form is the one chat templates' `tojson` renders:
 * separators ", " and ": ", no other whitespace, object members in the
 * schema's property order, strings as UTF-8 with only the
 * escapes \" \\ \n \r \t \b \f and \u00xx (lowercase hex) for other
 * control characters, numbers without exponent, leading zeros or trailing
 * fractional zeros, with at most 15 significant digits when they have a
 * fraction. So a value the model writes renders back byte for byte on the
 * next turn. docs/structured-output.md has the whole of it.
 *
 * Supported: type (one or a list; without it, read from the keywords
 * used), object (properties, required, additionalProperties
 * true/false/schema; absent means no other members, except for an object
 * without properties and required, which takes any), array (items,
 * prefixItems, minItems, maxItems), string (minLength, maxLength, counted
 * in code points), integer and number (minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum: exact), boolean, null, enum, const,
 * anyOf, oneOf (as anyOf), allOf (of one schema, or of object schemas,
 * merged), $ref to local JSON pointers ("#", "#/$defs/..",
 * "#/definitions/.."; recursion through objects and arrays), nullable.
 * Annotations (title, description, default, examples, $schema, $id,
 * $comment, deprecated, readOnly, writeOnly) are ignored. Sizes are
 * bounded except where the schema leaves them open (strings without
 * maxLength, arrays without maxItems, extra members): integers have at
 * most 16 digits, any-value containers nest at most 8 deep, whitespace is
 * not generated.
 *
 * Other keywords (pattern, format, not, if/then/else, patternProperties,
 * dependentSchemas, uniqueItems, multipleOf, ...) and constraining
 * keywords beside $ref, anyOf, oneOf or allOf are refused in strict mode
 * with SEM_EUNSUPPORTED naming the keyword and where it is
 * ("properties.path.pattern: ..."); without strict they are not enforced
 * (format and pattern strings are any strings). A malformed schema, or
 * one no value satisfies, is SEM_EREQUEST in both modes.
 *
 * Threads: pure functions of their arguments.
 */
#ifndef SEM_JSON_SCHEMA_H
#define SEM_JSON_SCHEMA_H

#include <jansson.h>

#include "base/strbuf.h"
#include "domain/status.h"

/*
 * Appends to out the rules defining rule `name` (a grammar identifier:
 * [a-zA-Z0-9-]+) as the JSON values valid against schema. Helper rules
 * are named `name` + "-" + a suffix, so two calls never clash when
 * neither name begins with the other followed by "-". schema NULL or
 * true: any JSON value.
 *
 * Errors: SEM_EREQUEST (malformed), SEM_EUNSUPPORTED (strict), SEM_EINVAL
 * (a bad name, out NULL), SEM_ENOMEM; the detail names the schema path.
 * On error out is back at its length on entry.
 */
sem_status json_schema_grammar(const json_t *schema, const char *name, int strict, strbuf *out,
                               sem_err *err);

#endif
