/*
 * session_request.h - the bodies of the sessions API, read and checked
 * (docs/sessions.md):
 *
 *   POST /v1/sessions                 {"agents": [...], "topology", "initial_prompt"?,
 *                                      "max_turns"?, "moderator"?, "view"?, "model"?}
 *   POST /v1/sessions/{id}/turn       {"stream"?, "max_tokens"?, "to"?, sampling...}
 *   POST /v1/sessions/{id}/round      {"stream"?, "max_tokens"?, sampling...}
 *   POST /v1/sessions/{id}/messages   {"content", "name"?, "channel"?}
 *
 * Every error is a req_err naming the field ("agents[2].name") and the
 * limit. Threads: pure functions of their arguments.
 */
#ifndef SEM_HTTP_SESSION_REQUEST_H
#define SEM_HTTP_SESSION_REQUEST_H

#include <jansson.h>

#include "http_request.h"
#include "ports/generation_port.h"
#include "ports/session_store.h"

#define SESSION_MAX_TURNS_LIMIT 1000000u /* max_turns above this is a typo */
#define SESSION_TEXT_MAX (1u << 20)      /* bytes of one injected message */
#define SESSION_DEFAULT_MAX_TOKENS 128u  /* tokens of one turn when not given */

/*
 * Reads a create body into r (agents' role and system malloc'd: free with
 * session_record_free) and the initial prompt (borrowed from body, NULL
 * when none). r->id must be set: an agent given no id is named
 * "<session id>-<index>". ns, model and created_at are left to the
 * caller. A moderated session's moderator (default: the first agent) is
 * its next speaker: it picks who speaks.
 */
sem_status session_request_create(const json_t *body, session_record *r,
                                  const char **initial_prompt, req_err *e);

/* A turn or round body: stream, max_tokens (1..n_ctx), sampling over
 * `defaults`, and (turn of a whisper session) "to", the agent id the turn
 * is whispered to (to[0] '\0': everyone). */
typedef struct session_turn_opts {
    int stream;
    uint32_t max_tokens;
    gen_sampling sampling;
    char to[SESSION_AGENT_ID_MAX + 1];
} session_turn_opts;

/* body may be NULL (an empty body takes every default). round: "to" is
 * refused. */
sem_status session_request_turn(const json_t *body, const session_record *r, int round,
                                uint32_t n_ctx, session_turn_opts *o, req_err *e);

/* A message body into m: text (malloc'd: free m->text), name (default
 * "user"), channel ("all", or two of the session's agent ids). */
sem_status session_request_message(const json_t *body, const session_record *r,
                                   session_message *m, req_err *e);

/* The index of agent id in r; -1 when none. */
int session_agent_index(const session_record *r, const char *id);

#endif
