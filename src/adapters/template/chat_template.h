/*
 * chat_template.h - turns an OpenAI-style conversation into the prompt text
 * a model was trained on, by running the model's Jinja chat template the way
 * llama.cpp's server does (llama-server --jinja).
 *
 * A template comes from the GGUF key tokenizer.chat_template, from a file,
 * or from the built-in families (chat_template_builtin). It is parsed once
 * (chat_template_parse) and rendered for every request.
 *
 * What render does, in order, to match llama.cpp:
 *   1. Messages are rebuilt as llama.cpp rebuilds them: role, content,
 *      reasoning_content, name, tool_call_id, tool_calls (type "function",
 *      function {name, arguments}, id). Unknown fields are dropped; a null
 *      or missing content becomes "". Tool-call arguments given as a JSON
 *      string are parsed and passed as an object (kept as a string if they
 *      are not valid JSON). The role "developer" becomes "system", except
 *      for gpt-oss templates (source containing "<|channel|>"), which get
 *      reasoning_content copied to "thinking" on tool-call messages.
 *   2. Content given as a list of parts ({"type": "text", "text": ...}) is
 *      joined with "\n" when the template only understands string content;
 *      string content is wrapped as one text part when the template only
 *      understands parts. Parts other than text are refused
 *      (SEM_EUNSUPPORTED).
 *   3. A template without native tool calling gets semantic's generic
 *      convention (chat_generic.h): the tools described in the system
 *      message, tool calls written into the assistant's content as
 *      {"tool_calls": [...]}, tool results as user turns. A template that
 *      renders tools and calls but not tool results gets the last part only.
 *   4. If the template does not support a system role, a leading system
 *      message is merged into the next message as "<system>\n<content>"
 *      (or dropped when it is the only message).
 *   5. The context is: messages, bos_token, eos_token, enable_thinking
 *      (true), tools (only when non-empty and the template renders them
 *      natively; each rebuilt as {type, function {name, description,
 *      parameters}}), datetime ("%b %d %Y") and
 *      date_string ("%d %b %Y") of opts->now, then every key of kwargs
 *      (chat_template_kwargs, overriding the above), then
 *      add_generation_prompt (only set when true).
 *   6. The output loses a leading bos_token when opts->add_bos and a
 *      trailing eos_token when opts->add_eos (the tokenizer adds them).
 *
 * Capabilities are detected when the template is parsed, the way minja and
 * llama.cpp do it: by rendering probe conversations and looking for a
 * needle in the output. A template supports the system role when a system
 * message's text appears in its output (Gemma 2 raises an exception, so it
 * does not); it supports string content when a user text appears; it
 * understands typed content when a text part's text appears without the
 * part's own keys ('type' would show if it printed the list itself). It
 * renders tools natively when a tool's name appears in the output of a
 * conversation with one tool, and an assistant tool call's name and
 * argument appear (both are needed: what the model is told to write must
 * be what renders back); tool results when a tool message's text appears.
 *
 * Fallback (chat_template_for_model): a model without a template, or whose
 * template does not parse, gets the built-in "chatml" template, and the
 * reason is returned for the caller to print as a warning.
 *
 * Threads: a chat_template is immutable after parsing; any number of threads
 * may render it at once. Ownership: free templates with chat_template_free,
 * rendered prompts with free(). chat_template_builtin/detect return static
 * strings.
 */
#ifndef SEM_CHAT_TEMPLATE_H
#define SEM_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "jinja.h"
#include "domain/status.h"
#include "ports/prompt_port.h"

typedef struct chat_template chat_template;

typedef struct chat_render_opts {
    bool add_generation_prompt; /* end with the assistant turn's opening */
    const char *bos_token;      /* text of the model's BOS token; NULL = "" */
    const char *eos_token;      /* text of the model's EOS token; NULL = "" */
    bool add_bos;               /* the tokenizer adds BOS: strip a leading bos_token */
    bool add_eos;               /* the tokenizer adds EOS: strip a trailing eos_token */
    time_t now;                 /* clock for date_string and strftime_now(); 0 = now */
    bool local_time;            /* dates in the local zone (llama.cpp's way); false = UTC */
    jinja_limits limits;        /* zero fields take jinja.h's defaults */
} chat_render_opts;

/*
 * Parses a template and probes its capabilities. NULL on failure with
 * SEM_EINVAL / SEM_EUNSUPPORTED (the detail names line and column) or
 * SEM_ENOMEM.
 */
chat_template *chat_template_parse(const char *source, sem_err *err);
void chat_template_free(chat_template *t);

/* The source text the template was parsed from. */
const char *chat_template_source(const chat_template *t);
/* False when a leading system message is folded into the next message. */
bool chat_template_supports_system_role(const chat_template *t);
/* True when the template renders tool definitions and tool calls itself;
 * false when render applies the generic convention. */
bool chat_template_native_tools(const chat_template *t);
/*
 * The tool-call and reasoning syntax of the rendered prompts, fixed at
 * parse: chat_syntax_detect() of the source, with the generic tool format
 * when the template has no native tool calls (render then writes them in
 * the generic convention, so the output side must expect that). A native
 * template whose format is not one semantic knows (gpt-oss's harmony)
 * renders natively and still reads as generic.
 */
prompt_syntax chat_template_syntax(const chat_template *t);

/*
 * Renders a conversation. messages: a JSON array of message objects;
 * tools: an array of OpenAI function tools or NULL; kwargs: an object of
 * extra template variables (chat_template_kwargs) or NULL; opts: NULL for
 * defaults (no generation prompt, no BOS/EOS). On success *out is a
 * malloc'd NUL-terminated prompt.
 *
 * Errors: SEM_EREQUEST for malformed messages or tools (the detail names
 * the field, e.g. "messages[2].role"), SEM_EUNSUPPORTED for content parts
 * that are not text, SEM_EINVAL when the template fails (raise_exception
 * text included, e.g. "Conversation roles must alternate ..."), SEM_ENOMEM.
 */
sem_status chat_template_render(const chat_template *t, const json_t *messages,
                                const json_t *tools, const json_t *kwargs,
                                const chat_render_opts *opts, char **out, sem_err *err);

/*
 * Source of a built-in template, or NULL for an unknown name. Names:
 * llama3, chatml, qwen3, gemma, mistral, phi3, deepseek-r1, smollm3,
 * gpt-oss. They render system/user/assistant turns and the generation
 * prompt as the families' own templates do; they do not render tools
 * themselves (render applies the generic convention to them).
 */
const char *chat_template_builtin(const char *name);
/* The built-in names, NULL-terminated. */
const char *const *chat_template_builtin_names(void);

/* The family name of a template source (one of the built-in names), or NULL
 * when it is not recognised. */
const char *chat_template_detect(const char *source);

/*
 * The template to use for a model whose GGUF carries `model_source` (NULL or
 * "" when it has none). Returns the parsed model template, or the built-in
 * chatml with *warning set (status SEM_ENOTFOUND: no template; or the parse
 * error's status and text) so the caller can log why. warning may be NULL.
 * NULL only when even chatml cannot be built (SEM_ENOMEM in err).
 */
chat_template *chat_template_for_model(const char *model_source, sem_err *warning, sem_err *err);

#endif
