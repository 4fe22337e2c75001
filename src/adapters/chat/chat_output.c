/*
 * chat_output.c - the streaming splitter of a chat answer into content,
 * reasoning and tool calls (chat_output.h).
 *
 * Design: a byte-at-a-time state machine, so that the result cannot
 * depend on how the text was cut into chunks. Bytes whose meaning is not
 * yet decided (a possible marker, the head of a call up to its arguments,
 * the tail after them) wait in `held`; when they resolve they are either
 * consumed as structure or given back. Given-back bytes are not emitted
 * blindly: they go to `replay` and run through the machine again in
 * content mode, so a marker that follows a false one is still found.
 *
 * Modes:
 *   START    the answer's beginning (and right after a think block):
 *            whitespace is held; a think opener, a call marker, or for
 *            Llama 3 and the generic convention a '{', may follow
 *   REASON   inside a think block, until think_close
 *   CONTENT  answer text; Hermes' "<tool_call>" and Mistral's
 *            "[TOOL_CALLS]" may appear anywhere (one '\n' before the
 *            marker belongs to the format, not to the content)
 *   CALL     a call's JSON, read by a small program per format (steps:
 *            punctuation, keys, the name, the arguments, the id...) with
 *            whitespace allowed between tokens
 *   BETWEEN  after a call block: whitespace is dropped, then CONTENT
 *
 * A call's phases: PRE (before its arguments; a mismatch gives the text
 * back as content, the marker verbatim), ARGS (the arguments' bytes go out
 * as they come, measured by a JSON scanner: depth, in-string, escape),
 * POST (after them; a mismatch keeps the call and gives the unexpected
 * text back as content). Mistral writes a call's id after its arguments,
 * so its arguments are kept until the id is read and go out with the
 * call's start.
 *
 * Emitted bytes of one kind are gathered and delivered as one event at
 * the end of each feed (or when the kind changes).
 *
 * Threads: one request's reader; no shared state.
 */
#include "chat_output.h"

#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"

#define NAME_MAX_BYTES 256 /* a tool name longer than this is not a call */
#define ID_MAX_BYTES 64

/* ---- The call programs ---------------------------------------------- */

typedef enum step_kind {
    S_PUNCT,    /* ch, after optional whitespace; OPEN: a call's '{' */
    S_CHOICE,   /* ch -> next step, ch2 -> jump */
    S_KEY,      /* a string equal to str or str2; RECOGNIZE: the text is a call */
    S_NAME,     /* a string: the tool's name */
    S_ID,       /* a string: the call's id */
    S_ARGS,     /* a JSON value: the arguments */
    S_MARK,     /* the bytes of str, after optional whitespace */
    S_END_CALL, /* the call is whole */
    S_DONE,     /* the block of calls is over */
} step_kind;

enum { F_OPEN = 1, F_RECOGNIZE = 2 };

typedef struct step {
    step_kind kind;
    char ch, ch2;
    int jump;
    const char *str, *str2;
    int flags;
} step;

/* After "<tool_call>": {"name": "f", "arguments": {..}}\n</tool_call> */
static const step HERMES_PROG[] = {
    {S_PUNCT, '{', 0, 0, NULL, NULL, F_OPEN},
    {S_KEY, 0, 0, 0, "name", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_NAME, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, ',', 0, 0, NULL, NULL, 0},
    {S_KEY, 0, 0, 0, "arguments", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_ARGS, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, '}', 0, 0, NULL, NULL, 0},
    {S_MARK, 0, 0, 0, "</tool_call>", NULL, 0},
    {S_END_CALL, 0, 0, 0, NULL, NULL, 0},
    {S_DONE, 0, 0, 0, NULL, NULL, 0},
};

/* After "<|python_tag|>" (from step 0) or '{' (from step 1):
 * {"name": "f", "parameters": {..}} */
static const step LLAMA3_PROG[] = {
    {S_PUNCT, '{', 0, 0, NULL, NULL, F_OPEN},
    {S_KEY, 0, 0, 0, "name", NULL, F_RECOGNIZE},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_NAME, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, ',', 0, 0, NULL, NULL, 0},
    {S_KEY, 0, 0, 0, "parameters", "arguments", 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_ARGS, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, '}', 0, 0, NULL, NULL, 0},
    {S_END_CALL, 0, 0, 0, NULL, NULL, 0},
    {S_DONE, 0, 0, 0, NULL, NULL, 0},
};

/* After "[TOOL_CALLS]":
 * [{"name": "f", "arguments": {..}, "id": "abcDEF123"}, {...}] */
static const step MISTRAL_PROG[] = {
    {S_PUNCT, '[', 0, 0, NULL, NULL, 0},
    {S_PUNCT, '{', 0, 0, NULL, NULL, F_OPEN}, /* 1: a call */
    {S_KEY, 0, 0, 0, "name", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_NAME, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, ',', 0, 0, NULL, NULL, 0},
    {S_KEY, 0, 0, 0, "arguments", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_ARGS, 0, 0, 0, NULL, NULL, 0},
    {S_CHOICE, ',', '}', 14, NULL, NULL, 0}, /* an id, or the call ends */
    {S_KEY, 0, 0, 0, "id", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_ID, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, '}', 0, 0, NULL, NULL, 0},
    {S_END_CALL, 0, 0, 0, NULL, NULL, 0}, /* 14 */
    {S_CHOICE, ']', ',', 1, NULL, NULL, 0},
    {S_DONE, 0, 0, 0, NULL, NULL, 0},
};

/* After '{': "tool_calls": [{"name": "f", "arguments": {..}}, ...]} */
static const step GENERIC_PROG[] = {
    {S_KEY, 0, 0, 0, "tool_calls", NULL, F_RECOGNIZE},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_PUNCT, '[', 0, 0, NULL, NULL, 0},
    {S_PUNCT, '{', 0, 0, NULL, NULL, F_OPEN}, /* 3: a call */
    {S_KEY, 0, 0, 0, "name", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_NAME, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, ',', 0, 0, NULL, NULL, 0},
    {S_KEY, 0, 0, 0, "arguments", NULL, 0},
    {S_PUNCT, ':', 0, 0, NULL, NULL, 0},
    {S_ARGS, 0, 0, 0, NULL, NULL, 0},
    {S_PUNCT, '}', 0, 0, NULL, NULL, 0},
    {S_END_CALL, 0, 0, 0, NULL, NULL, 0},
    {S_CHOICE, ']', ',', 3, NULL, NULL, 0},
    {S_PUNCT, '}', 0, 0, NULL, NULL, 0},
    {S_DONE, 0, 0, 0, NULL, NULL, 0},
};

/* ---- The markers ---------------------------------------------------- */

typedef enum marker {
    M_THINK_OPEN,
    M_THINK_CLOSE,
    M_HERMES,     /* "<tool_call>" */
    M_MISTRAL,    /* "[TOOL_CALLS]" */
    M_PYTHON_TAG, /* "<|python_tag|>" */
    M_BRACE,      /* '{' at the start: Llama 3 or generic */
} marker;

#define CANDIDATES_MAX 4

typedef struct candidates {
    const char *text[CANDIDATES_MAX];
    marker which[CANDIDATES_MAX];
    size_t n;
} candidates;

/* How the held bytes relate to the candidates, after their allowed lead. */
typedef enum lead_kind { LEAD_NONE, LEAD_NL, LEAD_WS } lead_kind;
typedef enum match_kind { MATCH_NONE, MATCH_PARTIAL, MATCH_FULL } match_kind;

/* ---- The splitter ----------------------------------------------------- */

typedef enum mode { MODE_START, MODE_REASON, MODE_CONTENT, MODE_CALL, MODE_BETWEEN } mode;
typedef enum phase { PH_PRE, PH_ARGS, PH_POST } phase;
typedef enum tok { TK_WS, TK_STR, TK_STR_ESC, TK_MARK } tok;

/* The arguments' extent: a JSON value read byte by byte. */
typedef struct json_scan {
    int depth;  /* open { and [ */
    int in_str; /* inside a string */
    int esc;    /* after a backslash in a string */
    int scalar; /* a bare number, true, false or null at the top */
} json_scan;

struct chat_output {
    prompt_syntax syn;
    int tools;
    mode mode;
    int thought;     /* a think block was opened: no second one */
    int drop_ws;     /* START: whitespace goes even before content */
    int reason_lead; /* REASON: nothing emitted yet, leading whitespace goes */
    strbuf held;     /* bytes not yet decided */
    strbuf replay;   /* given-back bytes to run again, before the input */
    size_t replay_off;

    /* CALL */
    const step *prog;
    int pc;
    tok tk;
    size_t mark_i;    /* TK_MARK: bytes of the marker matched */
    size_t tok_start; /* offset in held of the current token */
    size_t held_lit;  /* leading held bytes that are the marker itself */
    phase ph;
    int recognized;  /* the text is a call (a marker, or a Llama/generic key) */
    int call_open;   /* a call's '{' was read and the call is not whole */
    int block_calls; /* calls made whole in this block */
    strbuf tokbuf;   /* the current string token, unescaped */
    char name[NAME_MAX_BYTES + 1];
    size_t name_len;
    int name_done;
    char id[ID_MAX_BYTES + 1];
    int has_id;
    int started; /* TOOL_START emitted for the current call */
    json_scan js;
    strbuf args; /* Mistral: the arguments, until the id is known */
    uint32_t cur_index;

    /* Totals */
    uint32_t n_calls;
    int incomplete, finished;
    sem_status status;

    /* Gathered output of one kind, delivered at the end of a feed. */
    strbuf acc;
    chat_event_type acc_type;
    uint32_t acc_index;
    chat_emit_fn emit;
    void *user;
};

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void step_byte(chat_output *o, unsigned char c);

/* ---- Output ----------------------------------------------------------- */

static void flush(chat_output *o)
{
    if (o->acc.len == 0)
        return;
    chat_event ev = {.type = o->acc_type, .tool_index = o->acc_index, .text = o->acc.data,
                     .len = o->acc.len, .id = NULL};
    o->emit(o->user, &ev);
    strbuf_truncate(&o->acc, 0);
}

static void out(chat_output *o, chat_event_type type, const char *s, size_t n)
{
    if (n == 0)
        return;
    uint32_t index = type == CHAT_EV_TOOL_ARGS ? o->cur_index : 0;
    if (o->acc.len > 0 && (o->acc_type != type || o->acc_index != index))
        flush(o);
    o->acc_type = type;
    o->acc_index = index;
    strbuf_append(&o->acc, s, n);
    if (o->acc.oom)
        o->status = SEM_ENOMEM;
}

static void out_start(chat_output *o)
{
    flush(o);
    o->cur_index = o->n_calls++;
    o->started = 1;
    chat_event ev = {.type = CHAT_EV_TOOL_START, .tool_index = o->cur_index, .text = o->name,
                     .len = o->name_len, .id = o->has_id ? o->id : NULL};
    o->emit(o->user, &ev);
}

/* Gives bytes back: they run again before the rest of the input. */
static void replay(chat_output *o, const char *s, size_t n)
{
    if (n == 0)
        return;
    strbuf next = {0};
    strbuf_append(&next, s, n);
    if (o->replay_off < o->replay.len)
        strbuf_append(&next, o->replay.data + o->replay_off, o->replay.len - o->replay_off);
    if (next.oom) {
        strbuf_free(&next);
        o->status = SEM_ENOMEM;
        return;
    }
    strbuf_free(&o->replay);
    o->replay = next;
    o->replay_off = 0;
}

/* ---- Markers ---------------------------------------------------------- */

static void cand_add(candidates *c, const char *text, marker m)
{
    if (text && *text && c->n < CANDIDATES_MAX) {
        c->text[c->n] = text;
        c->which[c->n++] = m;
    }
}

static candidates start_candidates(const chat_output *o)
{
    candidates c = {0};
    if (!o->thought)
        cand_add(&c, o->syn.think_open, M_THINK_OPEN);
    if (!o->tools)
        return c;
    switch (o->syn.tools) {
    case PROMPT_TOOLS_HERMES: cand_add(&c, "<tool_call>", M_HERMES); break;
    case PROMPT_TOOLS_MISTRAL: cand_add(&c, "[TOOL_CALLS]", M_MISTRAL); break;
    case PROMPT_TOOLS_LLAMA3:
        cand_add(&c, "<|python_tag|>", M_PYTHON_TAG);
        cand_add(&c, "{", M_BRACE);
        break;
    case PROMPT_TOOLS_GENERIC: cand_add(&c, "{", M_BRACE); break;
    }
    return c;
}

static candidates content_candidates(const chat_output *o)
{
    candidates c = {0};
    if (o->tools && o->syn.tools == PROMPT_TOOLS_HERMES)
        cand_add(&c, "<tool_call>", M_HERMES);
    if (o->tools && o->syn.tools == PROMPT_TOOLS_MISTRAL)
        cand_add(&c, "[TOOL_CALLS]", M_MISTRAL);
    return c;
}

/* held = lead + (a prefix of a candidate | a whole one). *lead_len: the
 * lead's bytes; *which: the candidate on a full match. */
static match_kind match(const strbuf *held, const candidates *c, lead_kind lead,
                        size_t *lead_len, marker *which)
{
    const char *h = held->data;
    size_t n = held->len, l = 0;
    if (lead == LEAD_WS)
        while (l < n && is_ws((unsigned char)h[l]))
            l++;
    else if (lead == LEAD_NL && n > 0 && h[0] == '\n')
        l = 1;
    *lead_len = l;
    if (l == n)
        return n > 0 && lead != LEAD_NONE ? MATCH_PARTIAL : MATCH_NONE;
    for (size_t i = 0; i < c->n; i++) {
        size_t cl = strlen(c->text[i]);
        if (n - l <= cl && memcmp(h + l, c->text[i], n - l) == 0) {
            if (n - l == cl) {
                *which = c->which[i];
                return MATCH_FULL;
            }
            return MATCH_PARTIAL;
        }
    }
    return MATCH_NONE;
}

static void drop_held_front(chat_output *o, size_t n) { strbuf_consume(&o->held, n); }

/* Appends c to the held bytes; 0 (and the splitter failed) without memory. */
static int hold(chat_output *o, unsigned char c)
{
    strbuf_append(&o->held, (const char *)&c, 1);
    if (o->held.oom) {
        o->status = SEM_ENOMEM;
        return 0;
    }
    return 1;
}

/* ---- Calls ------------------------------------------------------------ */

static void call_reset(chat_output *o)
{
    o->name_len = 0;
    o->name[0] = '\0';
    o->name_done = 0;
    o->has_id = 0;
    o->id[0] = '\0';
    o->started = 0;
    o->call_open = 0;
    o->ph = PH_PRE;
    o->tk = TK_WS;
    strbuf_truncate(&o->args, 0);
    strbuf_truncate(&o->tokbuf, 0);
    memset(&o->js, 0, sizeof o->js);
}

static void call_begin(chat_output *o, const step *prog, int pc, int recognized)
{
    o->mode = MODE_CALL;
    o->prog = prog;
    o->pc = pc;
    o->held_lit = o->held.len;
    o->recognized = recognized;
    o->block_calls = 0;
    call_reset(o);
}

/* Emits what a call has that is not out yet (Mistral's start and arguments). */
static void call_commit(chat_output *o)
{
    if (!o->started && o->name_done) {
        out_start(o);
        out(o, CHAT_EV_TOOL_ARGS, o->args.data, o->args.len);
    }
}

static void on_marker(chat_output *o, marker m, size_t lead_len)
{
    switch (m) {
    case M_THINK_OPEN:
        strbuf_truncate(&o->held, 0);
        o->mode = MODE_REASON;
        o->thought = 1;
        o->reason_lead = 1;
        break;
    case M_THINK_CLOSE:
        strbuf_truncate(&o->held, 0);
        o->mode = MODE_START;
        o->thought = 1;
        o->drop_ws = 1;
        break;
    case M_HERMES:
    case M_MISTRAL:
    case M_PYTHON_TAG:
    case M_BRACE:
        if (o->mode == MODE_START && o->drop_ws)
            drop_held_front(o, lead_len);
        if (m == M_HERMES)
            call_begin(o, HERMES_PROG, 0, 1);
        else if (m == M_MISTRAL)
            call_begin(o, MISTRAL_PROG, 0, 1);
        else if (m == M_PYTHON_TAG)
            call_begin(o, LLAMA3_PROG, 0, 1);
        else if (o->syn.tools == PROMPT_TOOLS_LLAMA3) {
            call_begin(o, LLAMA3_PROG, 1, 0);
            o->call_open = 1; /* its '{' is the call's */
        } else
            call_begin(o, GENERIC_PROG, 0, 0);
        break;
    }
}

/* The text does not have the call's shape: back to content. */
static void call_fail(chat_output *o)
{
    strbuf rest = o->held;
    memset(&o->held, 0, sizeof o->held);
    if (o->ph == PH_PRE) {
        size_t lit = o->block_calls == 0 ? o->held_lit : 0;
        out(o, CHAT_EV_TEXT, rest.data, lit);
        replay(o, rest.data + lit, rest.len - lit);
    } else {
        call_commit(o);
        replay(o, rest.data + o->tok_start, rest.len - o->tok_start);
    }
    strbuf_free(&rest);
    call_reset(o);
    o->mode = MODE_CONTENT;
}

/* Runs the steps that need no input, after pc moved. */
static void call_settle(chat_output *o)
{
    for (;;) {
        const step *s = &o->prog[o->pc];
        if (s->kind == S_END_CALL) {
            call_commit(o);
            o->block_calls++;
            call_reset(o);
            strbuf_truncate(&o->held, 0);
            o->held_lit = 0;
            o->pc++;
        } else if (s->kind == S_DONE) {
            strbuf_truncate(&o->held, 0);
            call_reset(o);
            o->mode = MODE_BETWEEN;
            return;
        } else {
            return;
        }
    }
}

static void call_next(chat_output *o, int pc)
{
    o->pc = pc;
    o->tk = TK_WS;
    call_settle(o);
}

/* A string token is complete: check or keep it. */
static void call_string_done(chat_output *o)
{
    const step *s = &o->prog[o->pc];
    const char *t = o->tokbuf.data ? o->tokbuf.data : "";
    size_t n = o->tokbuf.len;
    if (s->kind == S_KEY) {
        int ok = (strlen(s->str) == n && memcmp(t, s->str, n) == 0) ||
                 (s->str2 && strlen(s->str2) == n && memcmp(t, s->str2, n) == 0);
        if (!ok) {
            call_fail(o);
            return;
        }
        if (s->flags & F_RECOGNIZE)
            o->recognized = 1;
    } else if (s->kind == S_NAME) {
        memcpy(o->name, t, n);
        o->name[n] = '\0';
        o->name_len = n;
        o->name_done = 1;
    } else { /* S_ID */
        memcpy(o->id, t, n);
        o->id[n] = '\0';
        o->has_id = 1;
    }
    strbuf_truncate(&o->tokbuf, 0);
    call_next(o, o->pc + 1);
}

static void call_string_byte(chat_output *o, unsigned char c)
{
    const step *s = &o->prog[o->pc];
    size_t cap = s->kind == S_NAME ? NAME_MAX_BYTES : ID_MAX_BYTES;
    if (o->tk == TK_STR && c == '"') {
        call_string_done(o);
        return;
    }
    if (o->tk == TK_STR && c == '\\') {
        o->tk = TK_STR_ESC;
        return;
    }
    if (o->tk == TK_STR_ESC) {
        /* \" \\ \/ stand for themselves; other escapes are kept as written. */
        if (c != '"' && c != '\\' && c != '/')
            strbuf_append(&o->tokbuf, "\\", 1);
        o->tk = TK_STR;
    }
    if (c < 0x20 || o->tokbuf.len + 2 > cap) {
        call_fail(o);
        return;
    }
    strbuf_append(&o->tokbuf, (const char *)&c, 1);
    if (o->tokbuf.oom)
        o->status = SEM_ENOMEM;
}

/* The arguments' bytes: 1 consumed (the value goes on), 2 consumed and the
 * value ended, 0 not consumed (a bare scalar ended before c). */
static int scan_byte(json_scan *j, unsigned char c)
{
    if (j->scalar) {
        int part = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   c == '.' || c == '+' || c == '-';
        return part ? 1 : 0;
    }
    if (j->in_str) {
        if (j->esc)
            j->esc = 0;
        else if (c == '\\')
            j->esc = 1;
        else if (c == '"') {
            j->in_str = 0;
            return j->depth == 0 ? 2 : 1;
        }
        return 1;
    }
    if (c == '"')
        j->in_str = 1;
    else if (c == '{' || c == '[')
        j->depth++;
    else if ((c == '}' || c == ']') && --j->depth == 0)
        return 2;
    return 1;
}

static int value_start(unsigned char c)
{
    return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' ||
           c == 'f' || c == 'n';
}

static void args_out(chat_output *o, unsigned char c)
{
    if (o->started) {
        out(o, CHAT_EV_TOOL_ARGS, (const char *)&c, 1);
    } else {
        strbuf_append(&o->args, (const char *)&c, 1);
        if (o->args.oom)
            o->status = SEM_ENOMEM;
    }
}

/* The first byte of the arguments. */
static void args_begin(chat_output *o, unsigned char c)
{
    o->ph = PH_ARGS;
    strbuf_truncate(&o->held, 0);
    o->held_lit = 0;
    if (o->prog != MISTRAL_PROG)
        out_start(o);
    memset(&o->js, 0, sizeof o->js);
    if (c == '{' || c == '[')
        o->js.depth = 1;
    else if (c == '"')
        o->js.in_str = 1;
    else
        o->js.scalar = 1;
    args_out(o, c);
}

static void call_token_start(chat_output *o, unsigned char c)
{
    const step *s = &o->prog[o->pc];
    o->tok_start = o->held.len - 1;
    switch (s->kind) {
    case S_PUNCT:
        if (c != (unsigned char)s->ch) {
            call_fail(o);
            return;
        }
        if (s->flags & F_OPEN)
            o->call_open = 1;
        call_next(o, o->pc + 1);
        return;
    case S_CHOICE:
        if (c == (unsigned char)s->ch)
            call_next(o, o->pc + 1);
        else if (c == (unsigned char)s->ch2)
            call_next(o, s->jump);
        else
            call_fail(o);
        return;
    case S_KEY:
    case S_NAME:
    case S_ID:
        if (c != '"') {
            call_fail(o);
            return;
        }
        strbuf_truncate(&o->tokbuf, 0);
        o->tk = TK_STR;
        return;
    case S_MARK:
        if (c != (unsigned char)s->str[0]) {
            call_fail(o);
            return;
        }
        o->tk = TK_MARK;
        o->mark_i = 1;
        if (s->str[1] == '\0')
            call_next(o, o->pc + 1);
        return;
    case S_ARGS:
        /* Not a value: the call never began. */
        call_fail(o);
        return;
    case S_END_CALL:
    case S_DONE: return; /* settled before input */
    }
}

static void call_byte(chat_output *o, unsigned char c)
{
    const step *s = &o->prog[o->pc];
    if (o->ph == PH_ARGS) {
        int r = scan_byte(&o->js, c);
        if (r > 0)
            args_out(o, c);
        if (r == 1)
            return;
        o->ph = PH_POST;
        call_next(o, o->pc + 1);
        if (r == 2)
            return;
        s = &o->prog[o->pc]; /* c follows a bare scalar: the next step reads it */
        if (o->mode != MODE_CALL) {
            step_byte(o, c);
            return;
        }
    }
    if (o->tk == TK_WS && s->kind == S_ARGS && value_start(c)) {
        args_begin(o, c);
        return;
    }
    if (!hold(o, c))
        return;
    switch (o->tk) {
    case TK_WS:
        if (!is_ws(c))
            call_token_start(o, c);
        return;
    case TK_STR:
    case TK_STR_ESC: call_string_byte(o, c); return;
    case TK_MARK:
        if (c != (unsigned char)s->str[o->mark_i]) {
            call_fail(o);
            return;
        }
        if (s->str[++o->mark_i] == '\0')
            call_next(o, o->pc + 1);
        return;
    }
}

/* ---- Modes ------------------------------------------------------------ */

static void start_byte(chat_output *o, unsigned char c)
{
    candidates cand = start_candidates(o);
    if (cand.n == 0 && !o->drop_ws) {
        o->mode = MODE_CONTENT;
        step_byte(o, c);
        return;
    }
    if (!hold(o, c))
        return;
    size_t lead;
    marker m;
    switch (match(&o->held, &cand, LEAD_WS, &lead, &m)) {
    case MATCH_FULL: on_marker(o, m, lead); return;
    case MATCH_PARTIAL: return;
    case MATCH_NONE: break;
    }
    /* Plain content: run the held bytes again as content. */
    strbuf rest = o->held;
    memset(&o->held, 0, sizeof o->held);
    size_t skip = o->drop_ws ? lead : 0;
    o->mode = MODE_CONTENT;
    replay(o, rest.data + skip, rest.len - skip);
    strbuf_free(&rest);
}

static void reason_byte(chat_output *o, unsigned char c)
{
    candidates cand = {0};
    cand_add(&cand, o->syn.think_close, M_THINK_CLOSE);
    if (!hold(o, c))
        return;
    for (;;) {
        size_t lead;
        marker m;
        match_kind k = match(&o->held, &cand, LEAD_WS, &lead, &m);
        if (k == MATCH_FULL) {
            on_marker(o, m, lead);
            return;
        }
        if (k == MATCH_PARTIAL || o->held.len == 0)
            return;
        unsigned char first = (unsigned char)o->held.data[0];
        if (!(o->reason_lead && is_ws(first))) {
            out(o, CHAT_EV_REASONING, o->held.data, 1);
            o->reason_lead = 0;
        }
        drop_held_front(o, 1);
    }
}

static void content_byte(chat_output *o, unsigned char c)
{
    candidates cand = content_candidates(o);
    if (cand.n == 0) {
        out(o, CHAT_EV_TEXT, (const char *)&c, 1);
        return;
    }
    if (!hold(o, c))
        return;
    for (;;) {
        size_t lead;
        marker m;
        match_kind k = match(&o->held, &cand, LEAD_NL, &lead, &m);
        if (k == MATCH_FULL) {
            on_marker(o, m, lead);
            return;
        }
        if (k == MATCH_PARTIAL || o->held.len == 0)
            return;
        out(o, CHAT_EV_TEXT, o->held.data, 1);
        drop_held_front(o, 1);
    }
}

static void step_byte(chat_output *o, unsigned char c)
{
    switch (o->mode) {
    case MODE_START: start_byte(o, c); break;
    case MODE_REASON: reason_byte(o, c); break;
    case MODE_CONTENT: content_byte(o, c); break;
    case MODE_CALL: call_byte(o, c); break;
    case MODE_BETWEEN:
        if (is_ws(c))
            break;
        o->mode = MODE_CONTENT;
        content_byte(o, c);
        break;
    }
}

/* Runs the replayed bytes, then text. */
static void run(chat_output *o, const char *text, size_t len)
{
    size_t i = 0;
    while (o->status == SEM_OK) {
        if (o->replay_off < o->replay.len) {
            step_byte(o, (unsigned char)o->replay.data[o->replay_off++]);
        } else if (i < len) {
            /* Content without markers to watch: the rest goes out at once. */
            if (o->mode == MODE_CONTENT && content_candidates(o).n == 0) {
                out(o, CHAT_EV_TEXT, text + i, len - i);
                break;
            }
            step_byte(o, (unsigned char)text[i++]);
        } else {
            break;
        }
    }
    if (o->replay_off == o->replay.len) {
        strbuf_truncate(&o->replay, 0);
        o->replay_off = 0;
    }
}

/* ---- API -------------------------------------------------------------- */

chat_output *chat_output_new(const prompt_syntax *syn, int tools, int in_thinking)
{
    chat_output *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->syn = *syn;
    if (!o->syn.think_open || !o->syn.think_close || !*o->syn.think_open ||
        !*o->syn.think_close) {
        o->syn.think_open = NULL;
        o->syn.think_close = NULL;
        in_thinking = 0;
    }
    o->tools = tools;
    o->mode = in_thinking ? MODE_REASON : MODE_START;
    o->thought = in_thinking;
    o->reason_lead = in_thinking;
    return o;
}

void chat_output_free(chat_output *o)
{
    if (!o)
        return;
    strbuf_free(&o->held);
    strbuf_free(&o->replay);
    strbuf_free(&o->tokbuf);
    strbuf_free(&o->args);
    strbuf_free(&o->acc);
    free(o);
}

sem_status chat_output_feed(chat_output *o, const char *text, size_t len, chat_emit_fn emit,
                            void *user)
{
    if (o->finished)
        return SEM_EINVAL;
    if (o->status != SEM_OK)
        return o->status;
    o->emit = emit;
    o->user = user;
    run(o, text, len);
    if (o->status == SEM_OK)
        flush(o);
    return o->status;
}

/* The generation ended inside a call. */
static void finish_call(chat_output *o)
{
    if (o->ph == PH_PRE && !o->recognized) {
        /* A '{' that never became a call: content. */
        strbuf rest = o->held;
        memset(&o->held, 0, sizeof o->held);
        call_reset(o);
        o->mode = MODE_CONTENT;
        out(o, CHAT_EV_TEXT, rest.data, rest.len);
        strbuf_free(&rest);
        return;
    }
    if (o->ph == PH_PRE) {
        if (o->block_calls == 0 || o->call_open)
            o->incomplete = 1;
        call_commit(o); /* a name without arguments is still a call */
    } else {
        if (o->ph == PH_ARGS)
            o->incomplete = 1;
        call_commit(o);
    }
    strbuf_truncate(&o->held, 0);
    call_reset(o);
    o->mode = MODE_BETWEEN;
}

sem_status chat_output_finish(chat_output *o, chat_emit_fn emit, void *user)
{
    if (o->finished)
        return SEM_EINVAL;
    if (o->status != SEM_OK)
        return o->status;
    o->emit = emit;
    o->user = user;
    /* Each round settles one mode's held bytes; given-back bytes run again. */
    for (int round = 0; round < 8 && o->status == SEM_OK; round++) {
        run(o, NULL, 0);
        if (o->held.len == 0 && o->mode != MODE_CALL)
            break;
        switch (o->mode) {
        case MODE_START: {
            size_t l = 0;
            while (o->drop_ws && l < o->held.len && is_ws((unsigned char)o->held.data[l]))
                l++;
            out(o, CHAT_EV_TEXT, o->held.data + l, o->held.len - l);
            strbuf_truncate(&o->held, 0);
            break;
        }
        case MODE_REASON: {
            size_t l = 0;
            while (o->reason_lead && l < o->held.len && is_ws((unsigned char)o->held.data[l]))
                l++;
            out(o, CHAT_EV_REASONING, o->held.data + l, o->held.len - l);
            strbuf_truncate(&o->held, 0);
            break;
        }
        case MODE_CONTENT:
            out(o, CHAT_EV_TEXT, o->held.data, o->held.len);
            strbuf_truncate(&o->held, 0);
            break;
        case MODE_CALL: finish_call(o); break;
        case MODE_BETWEEN: strbuf_truncate(&o->held, 0); break;
        }
    }
    if (o->status == SEM_OK)
        flush(o);
    o->finished = 1;
    return o->status;
}

uint32_t chat_output_n_calls(const chat_output *o) { return o->n_calls; }

int chat_output_incomplete(const chat_output *o) { return o->incomplete; }
