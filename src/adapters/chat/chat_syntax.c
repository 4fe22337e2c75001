/*
 * chat_syntax.c - a chat template's tool-call and reasoning syntax, read
 * from the markers its source writes (chat_syntax.h).
 *
 * The tests are ordered from the most specific marker to the least:
 * "<tool_call>" (Hermes) before Llama 3's '"parameters": ', because a
 * Hermes template for a Llama 3 model may mention both. A think block
 * needs both of its markers in the source. gpt-oss writes its reasoning on
 * a channel ("<|channel|>analysis"), which is not a pair of markers around
 * text: it gets none.
 *
 * Threads: pure functions; the strings returned are static.
 */
#include "chat_syntax.h"

#include <stddef.h>
#include <string.h>

#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"

static prompt_tool_format detect_tools(const char *src)
{
    if (strstr(src, "<tool_call>"))
        return PROMPT_TOOLS_HERMES;
    if (strstr(src, "[TOOL_CALLS]"))
        return PROMPT_TOOLS_MISTRAL;
    if (strstr(src, "<|python_tag|>") || strstr(src, "\"parameters\": "))
        return PROMPT_TOOLS_LLAMA3;
    return PROMPT_TOOLS_GENERIC;
}

prompt_syntax chat_syntax_detect(const char *template_source)
{
    prompt_syntax s = {.tools = PROMPT_TOOLS_GENERIC, .parallel_calls = 1};
    if (!template_source)
        return s;
    s.tools = detect_tools(template_source);
    /* Llama 3.1's template raises "This model only supports single
     * tool-calls at once!"; the others list calls. */
    s.parallel_calls = s.tools != PROMPT_TOOLS_LLAMA3;
    if (strstr(template_source, THINK_OPEN) && strstr(template_source, THINK_CLOSE)) {
        s.think_open = THINK_OPEN;
        s.think_close = THINK_CLOSE;
    }
    return s;
}

const char *chat_syntax_tools_name(prompt_tool_format f)
{
    switch (f) {
    case PROMPT_TOOLS_HERMES: return "hermes";
    case PROMPT_TOOLS_LLAMA3: return "llama3";
    case PROMPT_TOOLS_MISTRAL: return "mistral";
    case PROMPT_TOOLS_GENERIC:
    default: return "generic";
    }
}

int chat_syntax_ends_in_thinking(const prompt_syntax *s, const char *prompt, size_t len)
{
    if (!s || !s->think_open || !prompt)
        return 0;
    while (len > 0 && (prompt[len - 1] == ' ' || prompt[len - 1] == '\n' ||
                       prompt[len - 1] == '\r' || prompt[len - 1] == '\t'))
        len--;
    size_t n = strlen(s->think_open);
    return len >= n && memcmp(prompt + len - n, s->think_open, n) == 0;
}
