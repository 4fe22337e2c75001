/*
 * chat_generic.h - semantic's JSON convention for tool calling, for chat
 * templates that have none of their own (Gemma 2 and 3, Phi 3.5, DeepSeek
 * R1 distills, the built-ins; docs/tool-calling.md, "Rendering").
 *
 * Such a template renders plain turns only, so the conversation is
 * rewritten into plain turns before it renders:
 *
 *   tools         a "# Tools" section at the end of the system message
 *                 (a system message is added when there is none; the
 *                 template's own system handling, or the fold for
 *                 templates without a system role, places it): one line
 *                 of JSON per tool, {"name", "description", "parameters"},
 *                 and the instruction to answer a call with only
 *                 {"tool_calls": [{"name": "<name>", "arguments": {<arguments>}}]}
 *   tool calls    an assistant message's calls become its content, exactly
 *                 {"tool_calls": [{"name": "f", "arguments": {...}}, ...]}
 *                 written as the template filter `tojson` writes JSON
 *                 (jinja_tojson: ", " and ": "), after the message's own
 *                 text and "\n" when it has some. These are the bytes the
 *                 model is made to write (the tool-call grammar), so the
 *                 next turn's prompt starts with the tokens already held.
 *   tool results  a tool message becomes user text
 *                 {"tool_response": {"name": "f", "content": <content>}}
 *                 (content that is a JSON object or array goes in as JSON,
 *                 any other text as a JSON string; the name is the
 *                 message's own, else the call's with the same
 *                 tool_call_id, else the call at the same position, else
 *                 left out). Results that follow one another, and a user
 *                 message right after them, share one user message
 *                 (joined by "\n"): user and assistant turns still
 *                 alternate, which Gemma's templates insist on.
 *
 * The input is messages as chat_template.c normalises them (tool calls
 * {type, function {name, arguments}, id}; content a string, or a list of
 * text parts when `parts`, which is also how rewritten content is set).
 *
 * Threads: pure functions of their arguments. Errors: SEM_ENOMEM, or
 * SEM_EINVAL from jinja_tojson (JSON nested deeper than 128 levels); on
 * error the messages may be partly rewritten (the caller drops them).
 */
#ifndef SEM_CHAT_GENERIC_H
#define SEM_CHAT_GENERIC_H

#include <stdbool.h>

#include <jansson.h>

#include "domain/status.h"

enum {
    CHAT_GENERIC_CALLS = 1,   /* tool definitions and assistant tool calls */
    CHAT_GENERIC_RESULTS = 2, /* tool messages */
};

/*
 * Rewrites *messages (replacing the array) for the parts named in `what`.
 * tools: the normalised tool list ({type, function {name, description,
 * parameters}}) or NULL; only used with CHAT_GENERIC_CALLS.
 */
sem_status chat_generic_rewrite(json_t **messages, const json_t *tools, int what, bool parts,
                                sem_err *err);

/* The content an assistant message's tool calls render as (malloc'd). */
sem_status chat_generic_calls_text(const json_t *tool_calls, char **out, sem_err *err);

#endif
