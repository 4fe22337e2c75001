/*
 * session_stream.c - a session's SSE stream printed live (session_stream.h).
 *
 * Bytes arrive in any split: they are framed into events (blank-line
 * separated, `event:` and `data:` lines), each event updates the list of
 * turns of this request, and flush() prints from the first turn not yet
 * printed in full as far as it can.
 */
#include "session_stream.h"
#include "base/deadline.h"
#include "base/strbuf.h"

#include <stdlib.h>
#include <string.h>

#define RAW_KEEP 65536 /* bytes of the body kept for an error's message */

typedef struct turn_view {
    char agent[160], name[80], kind[8], to[160];
    strbuf text;
    size_t printed; /* bytes of text already written */
    int header_done, ended;
    double start_ms; /* deadline_now_ms when its turn_start arrived */
    double first_ms; /* deadline_now_ms of the first delta; < 0: none yet */
    json_t *end;     /* the turn_end event's data */
} turn_view;

struct session_stream {
    FILE *out;
    int json;
    const json_t *agents; /* the scenario's, for names; borrowed, may be NULL */
    unsigned phase;
    double begin_ms; /* deadline_now_ms of the request */
    int any_ended;   /* a turn of this request has ended */
    char session[128];
    strbuf pending, raw;
    turn_view *turns; /* (n_turns) of this request, in the order they started */
    size_t n_turns, cap_turns, cursor;
    json_t *answer;
    char *error;
    int oom;
    int mid_line; /* a turn's text is printed and its line not ended */
    session_totals totals;
};

session_stream *session_stream_new(FILE *out, int json)
{
    session_stream *s = calloc(1, sizeof *s);
    if (s) {
        s->out = out;
        s->json = json;
    }
    return s;
}

static void forget_request(session_stream *s)
{
    for (size_t i = 0; i < s->n_turns; i++) {
        strbuf_free(&s->turns[i].text);
        json_decref(s->turns[i].end);
    }
    s->n_turns = s->cursor = 0;
    s->any_ended = 0;
    strbuf_free(&s->pending);
    strbuf_free(&s->raw);
    json_decref(s->answer);
    s->answer = NULL;
    free(s->error);
    s->error = NULL;
}

void session_stream_free(session_stream *s)
{
    if (!s)
        return;
    forget_request(s);
    free(s->turns);
    free(s);
}

void session_stream_begin(session_stream *s, unsigned phase, const char *session)
{
    forget_request(s);
    s->phase = phase;
    snprintf(s->session, sizeof s->session, "%s", session ? session : "");
    s->begin_ms = deadline_now_ms();
}

void session_stream_set_agents(session_stream *s, const json_t *agents) { s->agents = agents; }

/* The name of agent id, or the id when the scenario does not name it. */
static const char *name_of(const session_stream *s, const char *id)
{
    size_t i;
    const json_t *a;
    json_array_foreach(s->agents, i, a) {
        const char *aid = json_string_value(json_object_get(a, "id"));
        const char *name = json_string_value(json_object_get(a, "name"));
        if (aid && name && strcmp(aid, id) == 0)
            return name;
    }
    return id;
}

/* ---------------------------------------------------------------- printing */

static json_int_t usage_of(const json_t *end, const char *field)
{
    const json_t *u = json_object_get(end, "usage");
    json_int_t v = json_integer_value(json_object_get(u, field));
    if (!v && strcmp(field, "cached_tokens") == 0) /* also at the event's top level */
        v = json_integer_value(json_object_get(end, field));
    return v;
}

static double ttft_of(const turn_view *t)
{
    return t->first_ms >= 0 ? t->first_ms - t->start_ms : 0.0;
}

static void print_json_turn(session_stream *s, const turn_view *t)
{
    const json_t *picked = json_object_get(t->end, "picked");
    json_t *j = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s%,s:O?,s:I,s:I,s:I,s:f,s:O?}", "object",
                          "session.turn", "phase", (json_int_t)s->phase, "session", s->session,
                          "kind", t->kind, "agent", t->agent, "name", t->name, "text",
                          t->text.data ? t->text.data : "", t->text.len, "finish_reason",
                          json_object_get(t->end, "finish_reason"), "prompt_tokens",
                          usage_of(t->end, "prompt_tokens"), "cached_tokens",
                          usage_of(t->end, "cached_tokens"), "completion_tokens",
                          usage_of(t->end, "completion_tokens"), "ttft_ms", ttft_of(t),
                          "picked", picked);
    const json_t *server_ttft = json_object_get(t->end, "ttft_ms");
    if (j && json_is_number(server_ttft))
        json_object_set_new(j, "server_ttft_ms", json_real(json_number_value(server_ttft)));
    if (j && *t->to)
        json_object_set_new(j, "to", json_string(t->to));
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(s->out, "%s\n", line ? line : "{}");
    free(line);
    json_decref(j);
}

static void print_header(session_stream *s, turn_view *t)
{
    t->header_done = 1;
    if (s->json || strcmp(t->kind, "pick") == 0)
        return;
    if (*t->to)
        fprintf(s->out, "%s (to %s): ", t->name, name_of(s, t->to));
    else
        fprintf(s->out, "%s: ", t->name);
}

static void print_end(session_stream *s, turn_view *t)
{
    if (s->json) {
        print_json_turn(s, t);
        return;
    }
    const char *picked = json_string_value(json_object_get(t->end, "picked"));
    if (strcmp(t->kind, "pick") == 0)
        fprintf(s->out, "(%s picks %s)", t->name, picked ? name_of(s, picked) : "nobody");
    fprintf(s->out, "\n    [ttft %.1f ms, prompt %lld tokens, cached %lld]\n", ttft_of(t),
            (long long)usage_of(t->end, "prompt_tokens"),
            (long long)usage_of(t->end, "cached_tokens"));
}

static void count(session_stream *s, const turn_view *t)
{
    if (strcmp(t->kind, "pick") == 0)
        s->totals.picks++;
    else
        s->totals.turns++;
    s->totals.prompt_tokens += (uint64_t)usage_of(t->end, "prompt_tokens");
    s->totals.cached_tokens += (uint64_t)usage_of(t->end, "cached_tokens");
    s->totals.completion_tokens += (uint64_t)usage_of(t->end, "completion_tokens");
}

/* Prints from the first turn not printed in full, as far as the turns
 * have come. */
static void flush(session_stream *s)
{
    while (s->cursor < s->n_turns) {
        turn_view *t = &s->turns[s->cursor];
        if (!t->header_done)
            print_header(s, t);
        if (!s->json && strcmp(t->kind, "pick") != 0) {
            s->mid_line = 1;
            if (t->printed < t->text.len) {
                fwrite(t->text.data + t->printed, 1, t->text.len - t->printed, s->out);
                t->printed = t->text.len;
            }
        }
        if (!t->ended)
            break;
        s->mid_line = 0;
        print_end(s, t);
        count(s, t);
        s->cursor++;
    }
    fflush(s->out);
}

/* ---------------------------------------------------------------- events */

/* The turn of `agent` that has not ended, latest first; NULL if none. */
static turn_view *open_turn(session_stream *s, const char *agent)
{
    for (size_t i = s->n_turns; i-- > 0;)
        if (!s->turns[i].ended && strcmp(s->turns[i].agent, agent) == 0)
            return &s->turns[i];
    return NULL;
}

static void copy_str(char *dst, size_t cap, const json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void on_turn_start(session_stream *s, const json_t *d)
{
    if (s->n_turns == s->cap_turns) {
        size_t cap = s->cap_turns ? 2 * s->cap_turns : 8;
        turn_view *t = realloc(s->turns, cap * sizeof *t);
        if (!t) {
            s->oom = 1;
            return;
        }
        s->turns = t;
        s->cap_turns = cap;
    }
    turn_view *t = &s->turns[s->n_turns++];
    memset(t, 0, sizeof *t);
    t->first_ms = -1;
    /* Turns that start together (a broadcast, the first of a round) wait
     * from the request; one that starts after another ended, from its
     * start. */
    t->start_ms = s->any_ended ? deadline_now_ms() : s->begin_ms;
    copy_str(t->agent, sizeof t->agent, json_object_get(d, "agent"));
    copy_str(t->name, sizeof t->name, json_object_get(d, "name"));
    copy_str(t->kind, sizeof t->kind, json_object_get(d, "kind"));
    if (!*t->kind)
        snprintf(t->kind, sizeof t->kind, "turn");
    /* A whisper's channel is its two parties: name the other one. */
    const json_t *ch = json_object_get(d, "channel");
    if (json_is_array(ch) && strcmp(t->kind, "turn") == 0)
        for (size_t k = 0; k < json_array_size(ch); k++)
            if (strcmp(json_string_value(json_array_get(ch, k)) ?: "", t->agent) != 0)
                copy_str(t->to, sizeof t->to, json_array_get(ch, k));
}

static void on_delta(session_stream *s, const json_t *d)
{
    turn_view *t = open_turn(s, json_string_value(json_object_get(d, "agent")) ?: "");
    const char *text = json_string_value(json_object_get(d, "text"));
    if (!t || !text)
        return;
    if (t->first_ms < 0)
        t->first_ms = deadline_now_ms();
    strbuf_append(&t->text, text, json_string_length(json_object_get(d, "text")));
}

static void on_turn_end(session_stream *s, json_t *d)
{
    turn_view *t = open_turn(s, json_string_value(json_object_get(d, "agent")) ?: "");
    if (!t)
        return;
    if (t->first_ms < 0)
        t->first_ms = deadline_now_ms();
    t->ended = 1;
    s->any_ended = 1;
    t->end = json_incref(d);
}

static void on_event(session_stream *s, const char *event, const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    if (!d)
        return;
    if (strcmp(event, "turn_start") == 0)
        on_turn_start(s, d);
    else if (strcmp(event, "delta") == 0)
        on_delta(s, d);
    else if (strcmp(event, "turn_end") == 0)
        on_turn_end(s, d);
    else if (strcmp(event, "round_end") == 0 && !s->answer)
        s->answer = json_incref(d);
    else if (strcmp(event, "error") == 0 && !s->error) {
        const char *msg = json_string_value(json_object_get(d, "message"));
        const char *code = json_string_value(json_object_get(d, "code"));
        size_t n = strlen(msg ? msg : "") + strlen(code ? code : "") + 8;
        if ((s->error = malloc(n)))
            snprintf(s->error, n, "%s%s%s", msg ? msg : "an error", code ? " - " : "",
                     code ? code : "");
    }
    json_decref(d);
    flush(s);
}

/* One event's text (lines, without the blank line that ends it). */
static void parse_event(session_stream *s, char *ev)
{
    const char *event = "message";
    strbuf data = {0};
    char *save = NULL;
    for (char *line = strtok_r(ev, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "event:", 6) == 0) {
            event = line + 6 + (line[6] == ' ');
        } else if (strncmp(line, "data:", 5) == 0) {
            if (data.len)
                strbuf_puts(&data, "\n");
            strbuf_puts(&data, line + 5 + (line[5] == ' '));
        }
    }
    if (data.len)
        on_event(s, event, data.data);
    strbuf_free(&data);
}

int session_stream_feed(void *ctx, const char *p, size_t n)
{
    session_stream *s = ctx;
    if (s->raw.len < RAW_KEEP)
        strbuf_append(&s->raw, p, n < RAW_KEEP - s->raw.len ? n : RAW_KEEP - s->raw.len);
    for (size_t i = 0; i < n; i++) /* JSON escapes CR in data: a raw CR is framing */
        if (p[i] != '\r')
            strbuf_append(&s->pending, &p[i], 1);
    char *end;
    while (s->pending.data && (end = strstr(s->pending.data, "\n\n"))) {
        size_t len = (size_t)(end - s->pending.data);
        *end = '\0';
        parse_event(s, s->pending.data);
        strbuf_consume(&s->pending, len + 2);
    }
    return s->oom || s->pending.oom || s->raw.oom ? -1 : 0;
}

void session_stream_end_line(session_stream *s)
{
    if (s->mid_line)
        fputc('\n', s->out);
    s->mid_line = 0;
    fflush(s->out);
}

const json_t *session_stream_answer(const session_stream *s) { return s->answer; }
const char *session_stream_error(const session_stream *s) { return s->error; }
const char *session_stream_raw(const session_stream *s) { return s->raw.data ? s->raw.data : ""; }
session_totals session_stream_totals(const session_stream *s) { return s->totals; }
