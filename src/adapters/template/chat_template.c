/*
 * chat_template.c - llama.cpp's conventions around a Jinja chat template:
 * message normalisation, capability probes, system folding, the context
 * variables, and BOS/EOS stripping. The design is in chat_template.h.
 */
#include "chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/chat/chat_syntax.h"
#include "chat_generic.h"

struct chat_template {
    jinja_template *jt;
    char *source;
    bool supports_system;  /* a system message's text reaches the output */
    bool supports_string;  /* string content reaches the output */
    bool supports_typed;   /* text parts are read as parts */
    bool is_gpt_oss;       /* "<|channel|>" in the source: keep "developer" */
    bool native_tools;     /* tool definitions and assistant tool calls reach the output */
    bool native_results;   /* a tool message's content reaches the output */
    prompt_syntax syntax;  /* template_syntax(), fixed at parse */
};

/* ---------------------------------------------------------------- probes */

static json_t *probe_tools(void);

/* Renders `messages` (a reference it takes; with_tools: and one tool) with
 * the bare context: 1 when every needle appears and no forbidden text does
 * (both lists NULL-terminated, forbidden may be NULL), 0 when not or the
 * template fails, -1 when memory ran out (which says nothing about the
 * template). */
static int probe(const chat_template *t, json_t *messages, bool with_tools, const char *const *needles,
                 const char *const *forbidden)
{
    json_t *ctx = json_pack("{s:o, s:s, s:s, s:b}", "messages", messages, "bos_token", "",
                            "eos_token", "", "add_generation_prompt", 1);
    if (!ctx || (with_tools && json_object_set_new(ctx, "tools", probe_tools()) != 0)) {
        json_decref(ctx);
        return -1;
    }
    jinja_render_opts o = {.now = 1736942400}; /* fixed: probes must not depend on the clock */
    char *out = NULL;
    sem_err e = {0};
    int yes = 0;
    sem_status st = jinja_render(t->jt, ctx, &o, &out, NULL, &e);
    if (st == SEM_OK) {
        yes = 1;
        for (size_t i = 0; needles[i]; i++)
            yes &= strstr(out, needles[i]) != NULL;
        for (size_t i = 0; forbidden && forbidden[i]; i++)
            yes &= strstr(out, forbidden[i]) == NULL;
    } else if (st == SEM_ENOMEM) {
        yes = -1;
    }
    free(out);
    json_decref(ctx);
    return yes;
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One function tool, as render passes tools. */
static json_t *probe_tools(void)
{
    return json_pack("[{s:s, s:{s:s, s:s, s:{s:s, s:{}}}}]", "type", "function", "function", "name",
                     "probe_tool_needle", "description", "<Tool Description Needle>", "parameters",
                     "type", "object", "properties");
}

/* A user turn and an assistant turn that calls a tool (the id has the 9
 * characters Mistral's template insists on), then, with_result, its result. */
static json_t *probe_call_conversation(bool with_result)
{
    json_t *m = json_pack("[{s:s, s:s}, {s:s, s:s, s:[{s:s, s:s, s:{s:s, s:{s:s}}}]}]", "role", "user",
                          "content", "Hey", "role", "assistant", "content", "", "tool_calls", "id",
                          "abcDEF123", "type", "function", "function", "name", "probe_call_needle",
                          "arguments", "probe_arg", "<Argument Needle>");
    if (m && with_result &&
        json_array_append_new(m, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", "abcDEF123",
                                           "content", "<Tool Result Needle>")) != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* SEM_ENOMEM when a probe ran out of memory. */
static sem_status detect_caps(chat_template *t, sem_err *err)
{
    int sys = probe(t,
                    json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
                              "<System Needle>", "role", "user", "content", "Hey"),
                    false, NEEDLES("<System Needle>"), NULL);
    int str = probe(t, json_pack("[{s:s, s:s}]", "role", "user", "content", "<User Needle>"), false,
                    NEEDLES("<User Needle>"), NULL);
    int typed = probe(t,
                      json_pack("[{s:s, s:[{s:s, s:s}]}]", "role", "user", "content", "type",
                                "text", "text", "<User Needle>"),
                      false, NEEDLES("<User Needle>"), NEEDLES("'type'", "\"type\""));
    int tools = probe(t, json_pack("[{s:s, s:s}]", "role", "user", "content", "Hey"), true,
                      NEEDLES("probe_tool_needle"), NULL);
    int calls = probe(t, probe_call_conversation(false), true,
                      NEEDLES("probe_call_needle", "<Argument Needle>"), NULL);
    int results = probe(t, probe_call_conversation(true), true, NEEDLES("<Tool Result Needle>"), NULL);
    if (sys < 0 || str < 0 || typed < 0 || tools < 0 || calls < 0 || results < 0)
        return sem_err_set(err, SEM_ENOMEM, "out of memory probing the chat template");
    t->supports_system = sys;
    t->supports_string = str;
    t->supports_typed = typed;
    t->native_tools = tools && calls;
    t->native_results = results;
    return SEM_OK;
}

/* The syntax the model is told to write and that render writes back: the
 * source's markers, or the generic convention where render applies it. */
static prompt_syntax template_syntax(const chat_template *t)
{
    prompt_syntax s = chat_syntax_detect(t->source);
    if (!t->native_tools) {
        s.tools = PROMPT_TOOLS_GENERIC;
        s.parallel_calls = 1;
    }
    return s;
}

/* ---------------------------------------------------------------- lifecycle */

chat_template *chat_template_parse(const char *source, sem_err *err)
{
    if (!source)
        return sem_err_set(err, SEM_EINVAL, "chat template source is NULL"), NULL;
    chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->source = strdup(source))) {
        free(t);
        sem_err_set(err, SEM_ENOMEM, "out of memory parsing the chat template");
        return NULL;
    }
    t->jt = jinja_parse(source, strlen(source), err);
    if (!t->jt) {
        sem_err_wrap(err, "chat template");
        free(t->source);
        free(t);
        return NULL;
    }
    t->is_gpt_oss = strstr(source, "<|channel|>") != NULL;
    if (detect_caps(t, err) != SEM_OK) {
        chat_template_free(t);
        return NULL;
    }
    t->syntax = template_syntax(t);
    return t;
}

void chat_template_free(chat_template *t)
{
    if (!t)
        return;
    jinja_free(t->jt);
    free(t->source);
    free(t);
}

const char *chat_template_source(const chat_template *t) { return t ? t->source : NULL; }

bool chat_template_supports_system_role(const chat_template *t) { return t && t->supports_system; }

bool chat_template_native_tools(const chat_template *t) { return t && t->native_tools; }

prompt_syntax chat_template_syntax(const chat_template *t)
{
    return t ? t->syntax : chat_syntax_detect(NULL);
}

/* ---------------------------------------------------------------- message normalisation */

/* Joins the text parts of a content list with "\n". */
static json_t *join_text_parts(const json_t *parts)
{
    size_t total = 0, i;
    json_t *p;
    json_array_foreach(parts, i, p) total += json_string_length(json_object_get(p, "text")) + 1;
    char *buf = malloc(total + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    json_array_foreach(parts, i, p)
    {
        const json_t *text = json_object_get(p, "text");
        if (o)
            buf[o++] = '\n';
        memcpy(buf + o, json_string_value(text), json_string_length(text));
        o += json_string_length(text);
    }
    json_t *s = json_stringn_nocheck(buf, o);
    free(buf);
    return s;
}

/* The template reads content only as a list of parts. */
static bool only_typed(const chat_template *t) { return !t->supports_string && t->supports_typed; }

/* The content as the template wants it, or NULL with err set. */
static json_t *normalise_content(const chat_template *t, const json_t *content, size_t mi,
                                 sem_err *err)
{
    if (!content || json_is_null(content))
        content = NULL;
    if (content && !json_is_string(content) && !json_is_array(content)) {
        sem_err_set(err, SEM_EREQUEST, "messages[%zu].content must be a string, a list of parts or null", mi);
        return NULL;
    }
    json_t *parts = NULL;
    if (content && json_is_array(content)) {
        parts = json_array();
        if (!parts)
            goto nomem;
        size_t j;
        json_t *p;
        json_array_foreach(content, j, p)
        {
            const json_t *type = json_object_get(p, "type");
            const json_t *text = json_object_get(p, "text");
            if (!json_is_object(p) || !json_is_string(type)) {
                json_decref(parts);
                sem_err_set(err, SEM_EREQUEST, "messages[%zu].content[%zu] needs a string \"type\"", mi, j);
                return NULL;
            }
            if (strcmp(json_string_value(type), "text") != 0) {
                json_decref(parts);
                sem_err_set(err, SEM_EUNSUPPORTED,
                            "messages[%zu].content[%zu]: content parts of type \"%s\" are not "
                            "supported (only \"text\")",
                            mi, j, json_string_value(type));
                return NULL;
            }
            if (!json_is_string(text)) {
                json_decref(parts);
                sem_err_set(err, SEM_EREQUEST, "messages[%zu].content[%zu].text must be a string", mi, j);
                return NULL;
            }
            if (json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", text)) != 0) {
                json_decref(parts);
                goto nomem;
            }
        }
    }
    bool only_string = t->supports_string && !t->supports_typed;
    json_t *result;
    if (parts && only_string) {
        result = join_text_parts(parts);
        json_decref(parts);
    } else if (parts) {
        result = parts;
    } else if (only_typed(t) && content) {
        result = json_pack("[{s:s, s:O}]", "type", "text", "text", content);
    } else {
        result = content ? json_deep_copy(content) : json_string("");
    }
    if (!result)
        goto nomem;
    return result;
nomem:
    sem_err_set(err, SEM_ENOMEM, "out of memory preparing messages[%zu]", mi);
    return NULL;
}

static json_t *normalise_tool_calls(const json_t *calls, size_t mi, sem_err *err)
{
    json_t *out = json_array();
    if (!out)
        goto nomem;
    size_t j;
    json_t *tc;
    json_array_foreach(calls, j, tc)
    {
        const json_t *type = json_object_get(tc, "type");
        const json_t *fn = json_object_get(tc, "function");
        const json_t *name = json_object_get(fn, "name");
        const json_t *args = json_object_get(fn, "arguments");
        const json_t *id = json_object_get(tc, "id");
        if (!json_is_object(tc) || !json_is_object(fn) || !json_is_string(name)) {
            json_decref(out);
            sem_err_set(err, SEM_EREQUEST, "messages[%zu].tool_calls[%zu] needs a function with a name", mi, j);
            return NULL;
        }
        if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)) {
            json_decref(out);
            sem_err_set(err, SEM_EREQUEST, "messages[%zu].tool_calls[%zu].type must be \"function\"", mi, j);
            return NULL;
        }
        json_t *arguments;
        if (json_is_string(args)) {
            /* llama.cpp passes arguments to templates as an object. */
            json_error_t je;
            arguments = json_loadb(json_string_value(args), json_string_length(args),
                                   JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            /* jansson out of memory (said so, or failed with no message) is
             * not "arguments that are not JSON". */
            if (!arguments && (json_error_code(&je) == json_error_out_of_memory || !je.text[0])) {
                json_decref(out);
                goto nomem;
            }
            if (!arguments)
                arguments = json_copy((json_t *)args);
        } else if (args) {
            arguments = json_deep_copy(args);
        } else {
            arguments = json_object();
        }
        json_t *call = json_pack("{s:s, s:{s:O, s:o}}", "type", "function", "function", "name", name,
                                 "arguments", arguments);
        if (call && json_is_string(id) && json_object_set(call, "id", (json_t *)id) != 0) {
            json_decref(call);
            call = NULL;
        }
        if (!call || json_array_append_new(out, call) != 0) {
            json_decref(out);
            goto nomem;
        }
    }
    return out;
nomem:
    sem_err_set(err, SEM_ENOMEM, "out of memory preparing messages[%zu].tool_calls", mi);
    return NULL;
}

static json_t *normalise_message(const chat_template *t, const json_t *m, size_t mi, sem_err *err)
{
    if (!json_is_object(m)) {
        sem_err_set(err, SEM_EREQUEST, "messages[%zu] must be an object", mi);
        return NULL;
    }
    const json_t *role = json_object_get(m, "role");
    if (!json_is_string(role)) {
        sem_err_set(err, SEM_EREQUEST, "messages[%zu].role must be a string", mi);
        return NULL;
    }
    const char *r = json_string_value(role);
    if (strcmp(r, "developer") == 0 && !t->is_gpt_oss)
        r = "system";
    json_t *content = normalise_content(t, json_object_get(m, "content"), mi, err);
    if (!content)
        return NULL;
    json_t *out = json_pack("{s:s, s:o}", "role", r, "content", content);
    if (!out)
        goto nomem;
    const json_t *reasoning = json_object_get(m, "reasoning_content");
    if (json_is_string(reasoning) && json_string_length(reasoning) > 0 &&
        json_object_set(out, "reasoning_content", (json_t *)reasoning) != 0)
        goto nomem_out;
    const char *copy_keys[] = {"name", "tool_call_id"};
    for (size_t k = 0; k < 2; k++) {
        const json_t *v = json_object_get(m, copy_keys[k]);
        if (json_is_string(v) && json_string_length(v) > 0 && json_object_set(out, copy_keys[k], (json_t *)v) != 0)
            goto nomem_out;
    }
    const json_t *calls = json_object_get(m, "tool_calls");
    if (calls && !json_is_null(calls) && !json_is_array(calls)) {
        json_decref(out);
        sem_err_set(err, SEM_EREQUEST, "messages[%zu].tool_calls must be a list", mi);
        return NULL;
    }
    if (json_array_size(calls) > 0) {
        json_t *tc = normalise_tool_calls(calls, mi, err);
        if (!tc) {
            json_decref(out);
            return NULL;
        }
        if (json_object_set_new(out, "tool_calls", tc) != 0)
            goto nomem_out;
        if (t->is_gpt_oss && json_is_string(reasoning) &&
            json_object_set(out, "thinking", (json_t *)reasoning) != 0)
            goto nomem_out;
    }
    return out;
nomem_out:
    json_decref(out);
nomem:
    sem_err_set(err, SEM_ENOMEM, "out of memory preparing messages[%zu]", mi);
    return NULL;
}

/* The text of a (normalised) content, for merging. */
static json_t *content_as_string(const json_t *content)
{
    if (json_is_string(content))
        return json_deep_copy(content);
    return join_text_parts(content);
}

/* Merges a leading system message into the next one (llama.cpp's
 * workaround for templates without a system role). */
static sem_status fold_system(json_t *messages, sem_err *err)
{
    json_t *first = json_array_get(messages, 0);
    if (!first || strcmp(json_string_value(json_object_get(first, "role")), "system") != 0)
        return SEM_OK;
    json_t *second = json_array_get(messages, 1);
    if (second) {
        json_t *a = content_as_string(json_object_get(first, "content"));
        json_t *b = content_as_string(json_object_get(second, "content"));
        json_t *merged = NULL;
        if (a && b) {
            size_t la = json_string_length(a), lb = json_string_length(b);
            char *buf = malloc(la + lb + 2);
            if (buf) {
                memcpy(buf, json_string_value(a), la);
                buf[la] = '\n';
                memcpy(buf + la + 1, json_string_value(b), lb);
                merged = json_stringn_nocheck(buf, la + 1 + lb);
                free(buf);
            }
        }
        json_decref(a);
        json_decref(b);
        if (!merged || json_object_set_new(second, "content", merged) != 0)
            return sem_err_set(err, SEM_ENOMEM, "out of memory merging the system message");
    }
    json_array_remove(messages, 0);
    return SEM_OK;
}

static json_t *normalise_tools(const json_t *tools, sem_err *err)
{
    if (!tools || json_is_null(tools))
        return NULL;
    if (!json_is_array(tools)) {
        sem_err_set(err, SEM_EREQUEST, "tools must be a list");
        return NULL;
    }
    json_t *out = json_array();
    if (!out)
        goto nomem;
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        const json_t *type = json_object_get(tool, "type");
        const json_t *fn = json_object_get(tool, "function");
        const json_t *name = json_object_get(fn, "name");
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0) {
            json_decref(out);
            sem_err_set(err, SEM_EREQUEST, "tools[%zu].type must be \"function\"", i);
            return NULL;
        }
        if (!json_is_object(fn) || !json_is_string(name)) {
            json_decref(out);
            sem_err_set(err, SEM_EREQUEST, "tools[%zu].function needs a string name", i);
            return NULL;
        }
        const json_t *desc = json_object_get(fn, "description");
        const json_t *params = json_object_get(fn, "parameters");
        json_t *entry = json_pack("{s:s, s:{s:O, s:o, s:o}}", "type", "function", "function", "name", name,
                                  "description", json_is_string(desc) ? json_copy((json_t *)desc) : json_string(""),
                                  "parameters", params ? json_deep_copy(params) : json_object());
        if (!entry || json_array_append_new(out, entry) != 0) {
            json_decref(out);
            goto nomem;
        }
    }
    return out;
nomem:
    sem_err_set(err, SEM_ENOMEM, "out of memory preparing tools");
    return NULL;
}

static int set_date(json_t *ctx, const char *key, const char *fmt, time_t now, bool local)
{
    struct tm tm;
    char buf[64];
    if (!(local ? localtime_r(&now, &tm) : gmtime_r(&now, &tm)))
        return json_object_set_new(ctx, key, json_string(""));
    size_t n = strftime(buf, sizeof buf, fmt, &tm);
    return json_object_set_new(ctx, key, json_stringn(buf, n));
}

/* ---------------------------------------------------------------- render */

sem_status chat_template_render(const chat_template *t, const json_t *messages,
                                const json_t *tools, const json_t *kwargs,
                                const chat_render_opts *opts, char **out, sem_err *err)
{
    if (out)
        *out = NULL;
    if (!t || !out)
        return sem_err_set(err, SEM_EINVAL, "chat_template_render: template and out must not be NULL");
    if (!json_is_array(messages))
        return sem_err_set(err, SEM_EREQUEST, "messages must be a list");
    if (kwargs && !json_is_null(kwargs) && !json_is_object(kwargs))
        return sem_err_set(err, SEM_EREQUEST, "chat_template_kwargs must be an object");
    chat_render_opts def = {0};
    if (!opts)
        opts = &def;
    const char *bos = opts->bos_token ? opts->bos_token : "";
    const char *eos = opts->eos_token ? opts->eos_token : "";
    time_t now = opts->now ? opts->now : time(NULL);

    sem_err local = {0};
    if (!err)
        err = &local;
    sem_status st = SEM_OK;
    json_t *msgs = json_array(), *ctx = NULL, *tl = NULL;
    if (!msgs) {
        st = sem_err_set(err, SEM_ENOMEM, "out of memory preparing messages");
        goto done;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *nm = normalise_message(t, m, i, err);
        if (!nm) {
            st = err->status;
            goto done;
        }
        if (json_array_append_new(msgs, nm) != 0) {
            st = sem_err_set(err, SEM_ENOMEM, "out of memory preparing messages");
            goto done;
        }
    }
    tl = normalise_tools(tools, err);
    if (!tl && tools && !json_is_null(tools)) {
        st = err->status;
        goto done;
    }
    /* Without native tool calls, the generic convention (chat_generic.h);
     * without native tool results, those alone. */
    int generic = !t->native_tools ? CHAT_GENERIC_CALLS | CHAT_GENERIC_RESULTS
                  : !t->native_results ? CHAT_GENERIC_RESULTS
                                       : 0;
    if (generic && (st = chat_generic_rewrite(&msgs, tl, generic, only_typed(t), err)) != SEM_OK)
        goto done;
    if (!t->supports_system && (st = fold_system(msgs, err)) != SEM_OK)
        goto done;

    ctx = json_object();
    if (!ctx || json_object_set(ctx, "messages", msgs) != 0 ||
        json_object_set_new(ctx, "bos_token", json_string(bos)) != 0 ||
        json_object_set_new(ctx, "eos_token", json_string(eos)) != 0 ||
        json_object_set_new(ctx, "enable_thinking", json_true()) != 0 ||
        (t->native_tools && json_array_size(tl) > 0 && json_object_set(ctx, "tools", tl) != 0) ||
        set_date(ctx, "datetime", "%b %d %Y", now, opts->local_time) != 0 ||
        set_date(ctx, "date_string", "%d %b %Y", now, opts->local_time) != 0) {
        st = sem_err_set(err, SEM_ENOMEM, "out of memory preparing the template context");
        goto done;
    }
    if (json_is_object(kwargs) && json_object_update(ctx, (json_t *)kwargs) != 0) {
        st = sem_err_set(err, SEM_ENOMEM, "out of memory preparing the template context");
        goto done;
    }
    if (opts->add_generation_prompt && json_object_set_new(ctx, "add_generation_prompt", json_true()) != 0) {
        st = sem_err_set(err, SEM_ENOMEM, "out of memory preparing the template context");
        goto done;
    }

    jinja_render_opts jo = {.limits = opts->limits, .now = now, .local_time = opts->local_time};
    char *text = NULL;
    size_t len = 0;
    st = jinja_render(t->jt, ctx, &jo, &text, &len, err);
    if (st != SEM_OK)
        goto done;
    size_t lb = strlen(bos), le = strlen(eos);
    size_t start = 0;
    if (opts->add_bos && lb && len >= lb && memcmp(text, bos, lb) == 0)
        start = lb;
    if (opts->add_eos && le && len - start >= le && memcmp(text + len - le, eos, le) == 0)
        len -= le;
    if (start)
        memmove(text, text + start, len - start);
    text[len - start] = '\0';
    *out = text;
done:
    json_decref(msgs);
    json_decref(tl);
    json_decref(ctx);
    return st;
}

/* ---------------------------------------------------------------- fallback */

chat_template *chat_template_for_model(const char *model_source, sem_err *warning, sem_err *err)
{
    if (warning)
        sem_err_clear(warning);
    if (model_source && model_source[0]) {
        sem_err perr = {0};
        chat_template *t = chat_template_parse(model_source, &perr);
        if (t)
            return t;
        if (perr.status == SEM_ENOMEM) {
            if (err)
                *err = perr;
            return NULL;
        }
        if (warning)
            sem_err_set(warning, perr.status,
                        "the model's chat template cannot be used (%s); using the built-in 'chatml' "
                        "template instead",
                        perr.detail);
    } else if (warning) {
        sem_err_set(warning, SEM_ENOTFOUND,
                    "the model has no chat template (tokenizer.chat_template); using the built-in "
                    "'chatml' template");
    }
    return chat_template_parse(chat_template_builtin("chatml"), err);
}
