/*
 * session_stream.h - the SSE stream of a session turn or round
 * (docs/sessions.md, *Streaming*) read as it arrives and printed live:
 * each turn's speaker, its text as it streams, then a line with its TTFT,
 * prompt tokens and cached tokens; or, in JSON mode, one JSON object per
 * turn when it ends.
 *
 * In a broadcast round the speakers' deltas interleave; the turns are
 * printed one after the other, in the order they started: the first
 * one's text live, the others' kept until the ones before them end.
 *
 * TTFT is measured here, as the client sees it: milliseconds from the
 * request (session_stream_begin) to the turn's first delta (or its end,
 * for a turn without text); for a turn that starts after another of the
 * same request ended (a round robin round), from its turn_start event,
 * so that the turns before it are not counted in its TTFT.
 *
 * Ownership: a session_stream owns its buffers and the round_end answer
 * it keeps; it writes to the FILE it is given. Threads: one thread.
 */
#ifndef SEM_CLI_SESSION_STREAM_H
#define SEM_CLI_SESSION_STREAM_H

#include <jansson.h>
#include <stdio.h>
#include <stdint.h>

typedef struct session_stream session_stream;

typedef struct session_totals {
    uint64_t turns, picks; /* agent turns; a moderator's picks */
    uint64_t prompt_tokens, cached_tokens, completion_tokens;
} session_totals;

/* NULL without memory. json: one JSON object per turn instead of text. */
session_stream *session_stream_new(FILE *out, int json);
void session_stream_free(session_stream *s);

/* The scenario's agents (borrowed; outlives s): whispers and picks are
 * printed with the agent's name instead of its id. */
void session_stream_set_agents(session_stream *s, const json_t *agents);

/* Starts a request: forgets the last one's turns and answer; phase and
 * session go into the JSON lines. */
void session_stream_begin(session_stream *s, unsigned phase, const char *session);

/* Bytes of the SSE body as they arrive (an http_fetch_sink): 0, or -1
 * when out of memory. */
int session_stream_feed(void *s, const char *data, size_t n);

/* After the request: the round_end answer (borrowed; NULL when none came),
 * and the error event's message (NULL when none came). */
const json_t *session_stream_answer(const session_stream *s);
const char *session_stream_error(const session_stream *s);
/* The raw body's first bytes (for an HTTP error's JSON). */
const char *session_stream_raw(const session_stream *s);

/* Ends the line of a turn cut short (a failed request), so that what is
 * printed next starts on a line of its own. */
void session_stream_end_line(session_stream *s);

/* Totals over every turn printed since session_stream_new. */
session_totals session_stream_totals(const session_stream *s);

#endif
