/*
 * session_view.h - a session's transcript as one agent sees it: the chat
 * messages its prompt is rendered from (docs/sessions.md, "What an agent
 * sees"). A session picks one of two layouts when it is made.
 *
 * Own (the default): each agent's point of view.
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
 *   The view only grows: what the agent saw at its turn N is, followed by
 *   its own answer, the start of what it sees at turn N+1. So each turn's
 *   prompt extends the agent's memory and its KV is reused up to the new
 *   messages; but no two agents' prompts agree past their system prompts,
 *   so each agent holds the whole transcript's KV itself.
 *
 * Shared: one rendering of the transcript for every agent, its own part
 * last.
 *   - a system message that is the same for every agent: who takes part
 *     (names and roles);
 *   - one user message: every message on channel "all" in order, each
 *     "NAME: text", joined by blank lines (the speaker's own turns too);
 *     then the agent's own part: the whispers it is a party to, who it
 *     is, its role and system prompt, and that it writes the next message.
 *   Every agent's prompt starts with the same tokens up to the end of the
 *   transcript, and each turn's transcript extends the last one's. So the
 *   engine shares the transcript's KV blocks among the agents (and with
 *   the session's earlier turns), computes each new message once, and
 *   each agent computes only its own part. Whispers are shown in the own
 *   part, outside the order of the public messages.
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
