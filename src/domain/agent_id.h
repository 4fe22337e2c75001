/*
 * agent_id.h - the syntax of agent identifiers.
 *
 * An agent is named by 1 to 128 characters of [A-Za-z0-9_-]. The id is
 * used as a file name and a database key, so nothing else is accepted: no
 * path separators, no dots, no empty id.
 */
#ifndef SEM_AGENT_ID_H
#define SEM_AGENT_ID_H

#include "status.h"

#define AGENT_ID_MAX 128

/* SEM_EREQUEST with the offending character and position when invalid. */
sem_status agent_id_validate(const char *id, sem_err *err);

/*
 * Agent keys are what the engine and the stores call agents: an agent id,
 * optionally prefixed by a namespace and a dot ("3f9a0c.my-agent"), so
 * 1 to AGENT_KEY_MAX characters of [A-Za-z0-9_.-], not starting with a dot.
 * They become file names: nothing else is accepted.
 */
#define AGENT_KEY_MAX 160
sem_status agent_key_validate(const char *key, sem_err *err);

#endif
