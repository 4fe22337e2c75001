/*
 * session_store.h - multi-agent sessions as the HTTP routes see them: a
 * session's agents, how they take turns, and the transcript they share.
 *
 * A session belongs to an API key namespace (another key's session is
 * simply not found) and to one served model. Its agents (1 to
 * SESSION_AGENTS_MAX) are named by an agent id inside the namespace (the
 * engine's key is the namespaced id, so each agent's memory is its own
 * agent's memory), a display name, a role, a system prompt and a
 * lifecycle: ephemeral agents are deleted with the session, persistent
 * ones stay as ordinary agents.
 *
 * The transcript is a list of messages in the order they were added
 * (seq 1, 2, ...). A message has a speaker (one of the session's agent
 * ids, or "" for a message from outside: a person, a tool result), the
 * name it is shown under, a channel ("all", or "A,B": a whisper between
 * agents A and B, seen by those two only), its text and its token count.
 * Messages appended together (a broadcast round's answers, given to the
 * same transcript) share a batch: the seq of the first of them.
 *
 * Counters: `turns` counts the agent turns taken (a moderator's picks are
 * not turns); `next` is the index of the agent whose turn is next. The state is
 * "active" until turns reaches max_turns ("done"; max_turns 0: no limit).
 *
 * Threads: every operation may be called from any thread; the store
 * serializes them, each one short transaction. Ownership: what get(),
 * list() and transcript() return is malloc'd, freed with the free
 * functions below.
 */
#ifndef SEM_SESSION_STORE_H
#define SEM_SESSION_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "domain/status.h"

#define SESSION_ID_MAX 64       /* "sess_" and 24 hex digits fit with room */
#define SESSION_NS_MAX 32
#define SESSION_AGENT_ID_MAX 128
#define SESSION_NAME_MAX 64
#define SESSION_MODEL_MAX 127
#define SESSION_AGENTS_MAX 32
#define SESSION_CHANNEL_MAX (2 * SESSION_AGENT_ID_MAX + 1) /* "A,B" */

typedef enum session_topology {
    SESSION_ROUND_ROBIN, /* one agent after the other, in the listed order */
    SESSION_BROADCAST,   /* every agent answers the same transcript at once */
    SESSION_WHISPER,     /* round robin, turns may go to a private channel */
    SESSION_MODERATED,   /* a moderator picks who speaks next */
} session_topology;

/* How an agent's prompt lays out the transcript (session_view.h). */
typedef enum session_view_kind {
    SESSION_VIEW_OWN,    /* each agent's point of view: its own turns as
                                  assistant messages; nothing shared */
    SESSION_VIEW_SHARED, /* one rendering for every agent, its own part
                                  last: the transcript's KV blocks are shared */
} session_view_kind;

typedef struct session_agent {
    char id[SESSION_AGENT_ID_MAX + 1]; /* agent id inside the namespace */
    char name[SESSION_NAME_MAX + 1];   /* what the others read before its words */
    char *role;                        /* malloc'd; "" for none */
    char *system;                      /* malloc'd; "" for none */
    int persistent;                    /* kept after the session is deleted */
} session_agent;

typedef struct session_record {
    char id[SESSION_ID_MAX + 1];
    char ns[SESSION_NS_MAX + 1];       /* "" without API keys */
    char model[SESSION_MODEL_MAX + 1]; /* the served model it runs on */
    session_topology topology;
    session_view_kind view;            
    uint32_t max_turns;                /* 0: no limit */
    uint32_t turns;                    /* agent turns taken */
    uint32_t next;                     /* index of the next speaker (moderated: the
                                          moderator, who picks it) */
    int moderator;                     /* index of the moderator; -1 unless moderated */
    int done;                          /* turns reached max_turns */
    int64_t created_at;                /* unix seconds */
    size_t n_agents;
    session_agent agents[SESSION_AGENTS_MAX];
} session_record;

typedef struct session_message {
    uint64_t seq;                              /* 1, 2, ... in the session */
    uint64_t batch;                            /* seq of the first message appended with it */
    char speaker[SESSION_AGENT_ID_MAX + 1];    /* an agent id; "" from outside */
    char name[SESSION_NAME_MAX + 1];           /* shown as "NAME: text"; may be "" */
    char channel[SESSION_CHANNEL_MAX + 1];     /* "all" or "A,B" */
    char *text;                                /* malloc'd */
    uint32_t tokens;                           /* of text (generated, or tokenized) */
    uint32_t prompt_tokens, cached_tokens;     /* an agent's turn: its prompt, and the
                                                  part of it its memory held (0 otherwise) */
    int64_t created_at;                        /* unix seconds */
} session_message;

static inline void session_record_free(session_record *r)
{
    for (size_t i = 0; i < r->n_agents; i++) {
        free(r->agents[i].role);
        free(r->agents[i].system);
        r->agents[i].role = r->agents[i].system = NULL;
    }
}

static inline void session_messages_free(session_message *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].text);
    free(m);
}

/* What a turn moves: set together with the turn's messages. */
typedef struct session_counters {
    uint32_t turns, next;
    int done;
} session_counters;

typedef struct session_store_ops {
    /* Stores a new session with its agents; SEM_EREQUEST when its id is
     * taken in the namespace. */
    sem_status (*create)(void *self, const session_record *r, sem_err *err);
    /* The session id of ns with its agents; SEM_ENOTFOUND when none. */
    sem_status (*get)(void *self, const char *ns, const char *id, session_record *out,
                      sem_err *err);
    /* The sessions of ns, newest first (*out malloc'd: free each record
     * with session_record_free, then the array). */
    sem_status (*list)(void *self, const char *ns, session_record **out, size_t *n,
                       sem_err *err);
    /* Deletes the session and its transcript; SEM_ENOTFOUND when none. */
    sem_status (*remove)(void *self, const char *ns, const char *id, sem_err *err);
    /* Appends n messages as one batch (their seq and batch are set here)
     * and, when set is not NULL, sets the session's counters, in one
     * transaction: all or none. SEM_ENOTFOUND when the session is gone. */
    sem_status (*append)(void *self, const char *ns, const char *id, session_message *m,
                         size_t n, const session_counters *set, sem_err *err);
    /* Marks the session as running a turn (busy 1) so that a second turn
     * cannot run at once (a round appends several times under one mark):
     * SEM_EBUSY when one already runs; busy 0 clears the mark. A store
     * that opens finds no mark: a turn the process did not finish ran in
     * a process that is gone. */
    sem_status (*claim)(void *self, const char *ns, const char *id, int busy, sem_err *err);
    /* The transcript, oldest first (free with session_messages_free). */
    sem_status (*transcript)(void *self, const char *ns, const char *id, session_message **out,
                             size_t *n, sem_err *err);
} session_store_ops;

typedef struct session_store {
    const session_store_ops *ops;
    void *self;
} session_store;

/* "round_robin", "broadcast", "whisper", "moderated". */
static inline const char *session_topology_name(session_topology t)
{
    static const char *const names[] = {"round_robin", "broadcast", "whisper", "moderated"};
    return (unsigned)t < 4 ? names[t] : "unknown";
}

/* "own", "shared". */
static inline const char *session_view_kind_name(session_view_kind t)
{
    return t == SESSION_VIEW_SHARED ? "shared" : t == SESSION_VIEW_OWN ? "own"
                                                                                  : "unknown";
}

#endif
