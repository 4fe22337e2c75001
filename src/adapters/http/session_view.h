/*
 * session_view.h - a session's transcript as one agent sees it: the chat
 * messages its prompt is rendered from (docs/sessions.md, "What an agent
 * sees").
 *
 *   - its system prompt first, when it has one;
 *   - the messages of the transcript it may see, in order: those on
 *     channel "all" and the whispers it is one of the two parties to;
 *   - its own turns as "assistant" messages, its exact text;
 *   - everything else as "user" messages, each "NAME: text" (text alone
 *     for a message with no name), consecutive ones joined by a blank
 *     line into one user message, so that roles alternate the way chat
 *     templates expect;
 *   - within a batch (a broadcast round's answers, all given to the same
 *     transcript) its own answer first, then the others'.
 *
 * The view only grows: what the agent saw at its turn N is, followed by
 * its own answer, the start of what it sees at turn N+1. So each turn's
 * prompt extends the agent's memory and its KV is reused up to the new
 * messages.
 *
 * Threads: pure functions of their arguments.
 */
#ifndef SEM_HTTP_SESSION_VIEW_H
#define SEM_HTTP_SESSION_VIEW_H

#include <jansson.h>

#include "ports/session_store.h"

/* 1 when agent_id may read a message on channel ("all", or "A,B"). */
int session_view_visible(const char *channel, const char *agent_id);

/* The OpenAI-shaped messages agent `agent` of r sees (new reference;
 * NULL when out of memory). */
json_t *session_view_messages(const session_record *r, size_t agent, const session_message *m,
                              size_t n);

#endif
