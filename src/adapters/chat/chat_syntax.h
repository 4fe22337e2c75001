/*
 * chat_syntax.h - which tool-call and reasoning syntax a chat template
 * speaks (ports/prompt_port.h: prompt_syntax), read from its source.
 *
 * Detection looks for the markers a template renders tool calls and
 * thinking with: "<tool_call>" (Hermes, Qwen 2.5 and 3), "[TOOL_CALLS]"
 * (Mistral), "<|python_tag|>" or '"parameters": ' (Llama 3.x), "<think>"
 * (Qwen 3, DeepSeek R1 distills, SmolLM3). Anything else gets the generic
 * JSON convention (docs/tool-calling.md). Llama 3's format carries one
 * call per turn (its template raises on more); the others list calls.
 * gpt-oss reasons on a channel, not between markers: no think markers.
 *
 * Threads: pure functions; the strings it returns are static.
 */
#ifndef SEM_CHAT_SYNTAX_H
#define SEM_CHAT_SYNTAX_H

#include <stddef.h>

#include "ports/prompt_port.h"

/* The syntax of a template (NULL or "": the generic convention, no thinking). */
prompt_syntax chat_syntax_detect(const char *template_source);

/* "generic", "hermes", "llama3" or "mistral". */
const char *chat_syntax_tools_name(prompt_tool_format f);

/*
 * 1 when a rendered prompt of len bytes ends inside an open think block:
 * with s->think_open followed only by whitespace (DeepSeek R1's
 * "<｜Assistant｜><think>\n"), so the model's output starts with reasoning.
 * 0 without think markers, and when the block was closed ("<think>\n\n
 * </think>\n\n": thinking turned off).
 */
int chat_syntax_ends_in_thinking(const prompt_syntax *s, const char *prompt, size_t len);

#endif
