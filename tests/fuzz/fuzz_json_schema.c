/*
 * fuzz_json_schema.c - libFuzzer target: any JSON text as a JSON Schema,
 * compiled to a grammar in strict and in non-strict mode. A schema is
 * compiled or refused with a request error (or "unsupported" in strict
 * mode); a compiled grammar always parses, and a random walk over the
 * bytes it admits never finds a state with nothing to admit before it may
 * end.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adapters/chat/json_schema.h"
#include "app/grammar.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks up to 256 bytes of the grammar, picking admitted bytes by the
 * input's own bytes; every state reached admits a byte or may end. */
static void walk(const grammar *g, const uint8_t *data, size_t size)
{
    sem_err err = {0};
    grammar_state *s = grammar_state_new(g, &err);
    if (!s)
        return; /* over a limit at its start: refused, not a crash */
    for (size_t step = 0; step < 256 && !grammar_state_done(s); step++) {
        unsigned start = size ? data[step % size] : 0, c = 0;
        int moved = 0;
        for (unsigned k = 0; k < 256 && !moved; k++) {
            c = (start + k) & 0xFF;
            char b = (char)c;
            moved = grammar_state_accept(s, &b, 1);
        }
        if (!moved) {
            /* a grammar over its stack or depth limits may reject everything */
            break;
        }
    }
    grammar_state_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *schema = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!schema)
        return 0;
    for (int strict = 0; strict < 2; strict++) {
        strbuf out = {0};
        sem_err err = {0};
        sem_status st = json_schema_grammar(schema, "root", strict, &out, &err);
        FUZZ_CHECK(st == SEM_OK || st == SEM_EREQUEST || st == SEM_ENOMEM ||
                       (strict && st == SEM_EUNSUPPORTED),
                   "status %s: %s", sem_status_name(st), err.detail);
        FUZZ_CHECK(st == SEM_OK || err.detail[0], "a refusal says why");
        if (st == SEM_OK) {
            sem_err perr = {0};
            grammar *g = grammar_parse(out.data, out.len, &perr);
            FUZZ_CHECK(g != NULL || perr.status == SEM_ENOMEM,
                       "a compiled grammar parses: %s\n%.*s", perr.detail, (int)out.len,
                       out.data);
            if (g)
                walk(g, data, size);
            grammar_free(g);
        }
        strbuf_free(&out);
    }
    json_decref(schema);
    return 0;
}
