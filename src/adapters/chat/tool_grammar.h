/*
 * tool_grammar.h - the grammar a chat request's output must follow: a
 * forced tool call, a lazy one (tool_choice auto), or a response_format
 * JSON schema. The call is written exactly as the model's chat template
 * renders tool calls (prompt_syntax), so the next turn's prompt starts
 * with the tokens the agent already holds.
 *
 *   required / named   the output is one call (or several, when parallel
 *                      and the format allows) and nothing else
 *   auto               free text; once the model starts a call (the
 *                      format's opening marker: a trigger), the call must
 *                      name a tool and give arguments valid for its schema
 *   none               no grammar (the tools stay in the prompt)
 *
 * With in_thinking (the prompt opened a think block) reasoning stays free:
 * forced calls and response_format are lazy on the block's closing marker;
 * auto keeps its marker, or for the formats whose call opens the answer
 * (Llama 3, generic) is lazy on the closing marker followed by the call's
 * opening. docs/tool-calling.md has the triggers and the errors.
 *
 * Threads: pure functions of their arguments.
 */
#ifndef SEM_TOOL_GRAMMAR_H
#define SEM_TOOL_GRAMMAR_H

#include <jansson.h>
#include <stddef.h>

#include "base/strbuf.h"
#include "domain/status.h"
#include "ports/prompt_port.h"

typedef enum chat_tool_choice {
    CHAT_TOOL_AUTO,
    CHAT_TOOL_NONE,
    CHAT_TOOL_REQUIRED,
    CHAT_TOOL_NAMED,
} chat_tool_choice;

#define CHAT_GRAMMAR_TRIGGERS_MAX 8
#define CHAT_GRAMMAR_PARALLEL_MAX 8 /* calls in one answer, when parallel */

typedef struct chat_grammar {
    strbuf text; /* the grammar; empty (len 0): unconstrained */
    /* None: the grammar holds from the first byte. Else lazy, with
     * gen_params' meaning ('^': only at the start of the output). Owned
     * (NUL-terminated copies), freed by chat_grammar_free. */
    const char *triggers[CHAT_GRAMMAR_TRIGGERS_MAX];
    size_t n_triggers;
} chat_grammar;

/*
 * The grammar for tools (an OpenAI-shaped list: [{"type": "function",
 * "function": {"name", "description", "parameters", "strict"}}]) under
 * choice (`name` for CHAT_TOOL_NAMED). parallel: up to
 * CHAT_GRAMMAR_PARALLEL_MAX calls may be made (only where
 * syn->parallel_calls; else one). A tool's "strict": true makes its
 * schema strict (json_schema.h); a tool without "parameters" takes {}.
 * CHAT_TOOL_NONE, and CHAT_TOOL_AUTO without tools, give no grammar.
 *
 * Errors: SEM_EREQUEST for a named tool that is not in tools, a tool
 * without a name or with a name given twice, required or named without
 * tools, a malformed schema; SEM_EUNSUPPORTED from a strict schema. The
 * detail names the field ("tools[2].function.parameters: ..."). *out is
 * empty on error.
 */
sem_status chat_grammar_tools(const prompt_syntax *syn, const json_t *tools,
                              chat_tool_choice choice, const char *name, int parallel,
                              int in_thinking, chat_grammar *out, sem_err *err);

/*
 * The grammar for a response_format: schema NULL = any JSON object
 * (json_object); else the object valid against schema (json_schema).
 */
sem_status chat_grammar_schema(const prompt_syntax *syn, const json_t *schema, int strict,
                               int in_thinking, chat_grammar *out, sem_err *err);

void chat_grammar_free(chat_grammar *g);

#endif
