/*
 * json_schema.h - a JSON Schema compiled to grammar rules (app/grammar.h's
 * dialect) whose sentences are exactly the JSON texts valid against it.
 *
 * The JSON is written in one canonical form, the one chat templates'
 * `tojson` renders: separators ", " and ": ", no other whitespace, object
 * members in the schema's property order, strings as UTF-8 with only the
 * escapes \" \\ \n \r \t \b \f and \u00XX for other control characters,
 * numbers without exponent, leading zeros or trailing fractional zeros.
 * So a value the model writes renders back byte for byte on the next turn.
 *
 * Supported: type (one or a list), object (properties, required,
 * additionalProperties true/false/schema), array (items, prefixItems,
 * minItems, maxItems), string (minLength, maxLength, counted in code
 * points), integer and number (minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum), boolean, null, enum, const, anyOf, oneOf (as anyOf),
 * allOf of one schema, $ref to "#", "#/$defs/.." and "#/definitions/..",
 * nullable. Annotations (title, description, default, examples, $schema,
 * $id, $comment, deprecated, readOnly, writeOnly) are ignored. Sizes are
 * bounded so output always ends: unbounded integers have at most 16
 * digits, fractions at most 16, whitespace is not generated.
 *
 * Other keywords (pattern, format, not, if/then/else, patternProperties,
 * dependentSchemas, uniqueItems, multipleOf, ...) are refused in strict
 * mode with SEM_EUNSUPPORTED naming the keyword and where it is
 * ("properties.path.pattern"); without strict they are not enforced
 * (format and pattern strings are any strings). A malformed schema is
 * SEM_EREQUEST in both modes.
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
 * are named `name` + "-" + something, so two calls with different names
 * never clash. schema NULL or true: any JSON value.
 */
sem_status json_schema_grammar(const json_t *schema, const char *name, int strict, strbuf *out,
                               sem_err *err);

#endif
