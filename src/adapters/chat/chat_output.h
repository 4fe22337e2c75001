/*
 * chat_output.h - a chat answer's generated text split, as it streams,
 * into what the APIs return separately: content text, reasoning, and tool
 * calls (name, id, argument fragments), following the model's syntax
 * (prompt_syntax).
 *
 * Text that may be the start of a marker ("<tool_call>", "<think>",
 * "[TOOL_CALLS]", a Llama 3 call's '{"name": ') is held back until it
 * resolves, so no marker text ever reaches content. Events are emitted as
 * soon as they are certain: a call's name and id once its name is
 * complete, its arguments (the JSON text as generated) in fragments as
 * they arrive.
 *
 * Rules (docs/tool-calling.md has them all):
 *   - reasoning is the text between think_open and think_close (a block
 *     opened at the start of the output), or from the start when the
 *     prompt opened the block (in_thinking); it is trimmed of whitespace,
 *     and the whitespace that follows think_close is dropped.
 *   - with tools off (no tools, or tool_choice none) markers of calls are
 *     plain content.
 *   - a Llama 3 or generic call counts only at the start of the output
 *     (after reasoning and whitespace), as the formats define it.
 *   - one '\n' before a Hermes or Mistral marker belongs to the format;
 *     whitespace before a call at the start, and between calls, is
 *     dropped; other content keeps its whitespace.
 *   - text that does not have a call's shape after a marker is content,
 *     marker included; text after a call's arguments that does not close
 *     the call is content, the call stands.
 *   - Mistral writes a call's id after its arguments: they are held until
 *     the id is read and go out after TOOL_START.
 *   - at finish, held-back text that never became a marker is content;
 *     a call cut short (max_tokens) is reported as far as it got (not at
 *     all before its name is whole), and chat_output_incomplete says so.
 *
 * The result does not depend on how the text is cut into feeds. Errors:
 * SEM_ENOMEM (the splitter then stays failed), SEM_EINVAL for a feed or
 * finish after finish.
 *
 * Threads: a chat_output belongs to one request's reader.
 */
#ifndef SEM_CHAT_OUTPUT_H
#define SEM_CHAT_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"
#include "ports/prompt_port.h"

typedef enum chat_event_type {
    CHAT_EV_TEXT,       /* content text */
    CHAT_EV_REASONING,  /* reasoning text */
    CHAT_EV_TOOL_START, /* a call begins: text = its name, id = the format's own id or NULL */
    CHAT_EV_TOOL_ARGS,  /* a fragment of the current call's arguments (JSON text) */
} chat_event_type;

typedef struct chat_event {
    chat_event_type type;
    uint32_t tool_index; /* TOOL_*: the call's index in the answer, from 0 */
    const char *text;    /* not NUL-terminated; valid during the callback */
    size_t len;
    const char *id;      /* TOOL_START: NUL-terminated, or NULL */
} chat_event;

typedef void (*chat_emit_fn)(void *user, const chat_event *ev);

typedef struct chat_output chat_output;

/* tools: calls are parsed (tools given and choice not none). NULL when
 * out of memory. */
chat_output *chat_output_new(const prompt_syntax *syn, int tools, int in_thinking);
void chat_output_free(chat_output *o);

/* Feeds generated text (whole UTF-8 characters); emits what is certain. */
sem_status chat_output_feed(chat_output *o, const char *text, size_t len, chat_emit_fn emit,
                            void *user);
/* The generation ended: emits everything held back. */
sem_status chat_output_finish(chat_output *o, chat_emit_fn emit, void *user);

/* Calls started so far. */
uint32_t chat_output_n_calls(const chat_output *o);
/* After finish: 1 when the last call was cut short. */
int chat_output_incomplete(const chat_output *o);

#endif
