/*
 * scenario.h - a multi-agent session scenario (docs/sessions.md,
 * *Scenarios*), parsed and checked before anything is sent to a server.
 *
 *   {"model": "...", "agents": [{"id", "name", "role", "system",
 *    "lifecycle"}, ...], "max_tokens": 64, "cleanup": true, "view": "own",
 *    "phases": [{"topology", "moderator", "prompt" | "initial_prompt",
 *                "rounds" | "turns", "whisper": [A, B], "max_tokens"}]}
 *
 * The agents are passed to POST /v1/sessions as they are (the server
 * checks their fields); this module checks the shape of the file and
 * every field the runner itself reads, and names the field that is wrong
 * (`phases[1].rounds`).
 *
 * Ownership: scenario_parse returns a scenario the caller frees with
 * scenario_free; every pointer it hands out lives as long as it does.
 * Threads: a scenario is read-only after parsing; any thread may read it.
 */
#ifndef SEM_CLI_SCENARIO_H
#define SEM_CLI_SCENARIO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

#define SCENARIO_MAX_COUNT 10000 /* rounds or turns of one phase */

typedef struct scenario scenario;

typedef struct scenario_phase {
    const char *topology;   /* round_robin, broadcast, whisper or moderated */
    const char *moderator;  /* moderated: the moderator's agent id, or NULL */
    const char *prompt;     /* injected before the phase's turns, or NULL */
    uint32_t count;         /* rounds, or turns when by_turns */
    int by_turns;
    const char *whisper[2]; /* a whisper pair of agent ids, or NULLs */
    uint32_t max_tokens;    /* per turn; 0: the scenario's */
} scenario_phase;

/* Parses the text of a scenario; `name` (the file) prefixes errors.
 * SEM_EINVAL naming the field. */
sem_status scenario_parse(const char *text, const char *name, scenario **out, sem_err *err);
void scenario_free(scenario *s);

const char *scenario_model(const scenario *s);  /* NULL: the server's default */
const char *scenario_view(const scenario *s);   /* "own", "shared"; NULL: the server's default */
const json_t *scenario_agents(const scenario *s); /* the agents array as written */
int scenario_cleanup(const scenario *s);        /* delete sessions at the end (default 1) */
uint32_t scenario_max_tokens(const scenario *s); /* 0: the server's default */
size_t scenario_phase_count(const scenario *s);
const scenario_phase *scenario_phase_at(const scenario *s, size_t i);

#endif
