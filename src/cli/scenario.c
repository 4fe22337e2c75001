/*
 * scenario.c - parsing and checking a scenario file (scenario.h).
 *
 * Strict: an unknown field is an error, so a misspelt "round" does not
 * silently run one round.
 */
#include "scenario.h"

#include <stdlib.h>
#include <string.h>

#define MAX_AGENTS 32
#define MAX_TOKENS_LIMIT 1000000

struct scenario {
    json_t *root;
    const char *model;
    const char *view; /* "own", "shared", or NULL: the server's default */
    const json_t *agents;
    int cleanup;
    uint32_t max_tokens;
    size_t n_phases;
    scenario_phase *phases; /* (n_phases) */
};

static const char *const TOPOLOGIES[] = {"round_robin", "broadcast", "whisper", "moderated"};

/* Fails on a key of o that is not in `known` (NULL-terminated). */
static sem_status only_known(const json_t *o, const char *const *known, const char *name,
                             const char *where, sem_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (!known[i])
            return sem_err_set(err, SEM_EINVAL, "%s: unknown field '%s%s%s'", name, where,
                               *where ? "." : "", k);
    }
    return SEM_OK;
}

/* An optional string field: *out stays NULL when absent. */
static sem_status opt_string(const json_t *o, const char *key, const char *name,
                             const char *where, const char **out, sem_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return SEM_OK;
    if (!json_is_string(v))
        return sem_err_set(err, SEM_EINVAL, "%s: %s%s%s must be a string", name, where,
                           *where ? "." : "", key);
    *out = json_string_value(v);
    return SEM_OK;
}

/* An optional integer field in [min, max]: *out stays as it is when absent. */
static sem_status opt_count(const json_t *o, const char *key, const char *name,
                            const char *where, uint32_t min, uint32_t max, uint32_t *out,
                            sem_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return SEM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return sem_err_set(err, SEM_EINVAL, "%s: %s%s%s must be an integer in %u..%u", name,
                           where, *where ? "." : "", key, min, max);
    *out = (uint32_t)json_integer_value(v);
    return SEM_OK;
}

/* Whether id is the `id` of one of the agents. */
static int has_agent(const json_t *agents, const char *id)
{
    size_t i;
    const json_t *a;
    json_array_foreach(agents, i, a) {
        const char *aid = json_string_value(json_object_get(a, "id"));
        if (aid && strcmp(aid, id) == 0)
            return 1;
    }
    return 0;
}

static sem_status parse_agents(scenario *s, const char *name, sem_err *err)
{
    const json_t *agents = json_object_get(s->root, "agents");
    if (!json_is_array(agents) || json_array_size(agents) < 1 ||
        json_array_size(agents) > MAX_AGENTS)
        return sem_err_set(err, SEM_EINVAL, "%s: agents must be a list of 1 to %d agents", name,
                           MAX_AGENTS);
    size_t i;
    const json_t *a;
    json_array_foreach(agents, i, a) {
        if (!json_is_object(a))
            return sem_err_set(err, SEM_EINVAL, "%s: agents[%zu] must be an object", name, i);
        if (!json_is_string(json_object_get(a, "name")))
            return sem_err_set(err, SEM_EINVAL, "%s: agents[%zu].name is required (a string)",
                               name, i);
        const json_t *id = json_object_get(a, "id");
        if (id && !json_is_string(id))
            return sem_err_set(err, SEM_EINVAL, "%s: agents[%zu].id must be a string", name, i);
    }
    s->agents = agents;
    return SEM_OK;
}

static sem_status parse_topology(const json_t *p, const char *name, const char *where,
                                 scenario_phase *ph, sem_err *err)
{
    ph->topology = "round_robin";
    sem_status st = opt_string(p, "topology", name, where, &ph->topology, err);
    if (st != SEM_OK)
        return st;
    size_t t = 0;
    while (t < 4 && strcmp(TOPOLOGIES[t], ph->topology) != 0)
        t++;
    if (t == 4)
        return sem_err_set(err, SEM_EINVAL, "%s: %s.topology '%s' is not round_robin, "
                           "broadcast, whisper or moderated", name, where, ph->topology);
    if ((st = opt_string(p, "moderator", name, where, &ph->moderator, err)) != SEM_OK)
        return st;
    if (ph->moderator && strcmp(ph->topology, "moderated") != 0)
        return sem_err_set(err, SEM_EINVAL, "%s: %s.moderator goes with topology moderated "
                           "only", name, where);
    return SEM_OK;
}

static sem_status parse_whisper(const json_t *p, const json_t *agents, const char *name,
                                const char *where, scenario_phase *ph, sem_err *err)
{
    const json_t *w = json_object_get(p, "whisper");
    if (!w)
        return SEM_OK;
    if (!json_is_array(w) || json_array_size(w) != 2 ||
        !json_is_string(json_array_get(w, 0)) || !json_is_string(json_array_get(w, 1)))
        return sem_err_set(err, SEM_EINVAL, "%s: %s.whisper must be a pair of agent ids", name,
                           where);
    for (size_t k = 0; k < 2; k++) {
        ph->whisper[k] = json_string_value(json_array_get(w, k));
        if (!has_agent(agents, ph->whisper[k]))
            return sem_err_set(err, SEM_EINVAL, "%s: %s.whisper[%zu] '%s' is not the id of "
                               "an agent", name, where, k, ph->whisper[k]);
    }
    if (strcmp(ph->whisper[0], ph->whisper[1]) == 0)
        return sem_err_set(err, SEM_EINVAL, "%s: %s.whisper names '%s' twice", name, where,
                           ph->whisper[0]);
    if (json_object_get(p, "topology") && strcmp(ph->topology, "whisper") != 0)
        return sem_err_set(err, SEM_EINVAL, "%s: %s.whisper goes with topology whisper only",
                           name, where);
    ph->topology = "whisper";
    if (json_object_get(p, "rounds"))
        return sem_err_set(err, SEM_EINVAL, "%s: %s.rounds: a whisper phase runs turns (a "
                           "round speaks to everyone)", name, where);
    return SEM_OK;
}

static sem_status parse_phase(const json_t *p, const json_t *agents, const char *name,
                              size_t i, scenario_phase *ph, sem_err *err)
{
    static const char *const known[] = {"topology", "moderator", "prompt", "initial_prompt",
                                        "rounds", "turns", "whisper", "max_tokens", NULL};
    char where[32];
    snprintf(where, sizeof where, "phases[%zu]", i);
    if (!json_is_object(p))
        return sem_err_set(err, SEM_EINVAL, "%s: %s must be an object", name, where);
    sem_status st = only_known(p, known, name, where, err);
    if (st == SEM_OK)
        st = parse_topology(p, name, where, ph, err);
    const char *initial = NULL;
    if (st == SEM_OK)
        st = opt_string(p, "prompt", name, where, &ph->prompt, err);
    if (st == SEM_OK)
        st = opt_string(p, "initial_prompt", name, where, &initial, err);
    if (st != SEM_OK)
        return st;
    if (ph->prompt && initial)
        return sem_err_set(err, SEM_EINVAL, "%s: %s has both prompt and initial_prompt (one "
                           "is the other's name)", name, where);
    if (initial)
        ph->prompt = initial;
    if (json_object_get(p, "rounds") && json_object_get(p, "turns"))
        return sem_err_set(err, SEM_EINVAL, "%s: %s has both rounds and turns", name, where);
    ph->count = 1;
    ph->by_turns = json_object_get(p, "turns") != NULL;
    if ((st = opt_count(p, "rounds", name, where, 1, SCENARIO_MAX_COUNT, &ph->count, err)) ||
        (st = opt_count(p, "turns", name, where, 1, SCENARIO_MAX_COUNT, &ph->count, err)) ||
        (st = opt_count(p, "max_tokens", name, where, 1, MAX_TOKENS_LIMIT, &ph->max_tokens,
                        err)))
        return st;
    if ((st = parse_whisper(p, agents, name, where, ph, err)) != SEM_OK)
        return st;
    if (ph->whisper[0])
        ph->by_turns = 1;
    return SEM_OK;
}

static sem_status parse_root(scenario *s, const char *name, sem_err *err)
{
    static const char *const known[] = {"model", "agents", "phases", "cleanup", "max_tokens",
                                        "view", "description", NULL};
    if (!json_is_object(s->root))
        return sem_err_set(err, SEM_EINVAL, "%s: a scenario is a JSON object", name);
    sem_status st = only_known(s->root, known, name, "", err);
    if (st == SEM_OK)
        st = opt_string(s->root, "model", name, "", &s->model, err);
    if (st == SEM_OK)
        st = opt_string(s->root, "view", name, "", &s->view, err);
    if (st == SEM_OK && s->view && strcmp(s->view, "own") != 0 && strcmp(s->view, "shared") != 0)
        st = sem_err_set(err, SEM_EINVAL, "%s: view '%s' is not own or shared", name, s->view);
    if (st == SEM_OK)
        st = opt_count(s->root, "max_tokens", name, "", 1, MAX_TOKENS_LIMIT, &s->max_tokens,
                       err);
    if (st == SEM_OK)
        st = parse_agents(s, name, err);
    if (st != SEM_OK)
        return st;
    const json_t *c = json_object_get(s->root, "cleanup");
    if (c && !json_is_boolean(c))
        return sem_err_set(err, SEM_EINVAL, "%s: cleanup must be true or false", name);
    s->cleanup = !c || json_is_true(c);
    const json_t *phases = json_object_get(s->root, "phases");
    if (!json_is_array(phases) || json_array_size(phases) == 0)
        return sem_err_set(err, SEM_EINVAL, "%s: phases must be a list of 1 phase or more",
                           name);
    s->n_phases = json_array_size(phases);
    if (!(s->phases = calloc(s->n_phases, sizeof *s->phases)))
        return sem_err_set(err, SEM_ENOMEM, "%s: no memory for %zu phases", name, s->n_phases);
    for (size_t i = 0; i < s->n_phases; i++)
        if ((st = parse_phase(json_array_get(phases, i), s->agents, name, i, &s->phases[i],
                              err)) != SEM_OK)
            return st;
    return SEM_OK;
}

sem_status scenario_parse(const char *text, const char *name, scenario **out, sem_err *err)
{
    *out = NULL;
    scenario *s = calloc(1, sizeof *s);
    if (!s)
        return sem_err_set(err, SEM_ENOMEM, "%s: no memory for the scenario", name);
    json_error_t je;
    s->root = json_loads(text, 0, &je);
    sem_status st = s->root ? parse_root(s, name, err)
                            : sem_err_set(err, SEM_EINVAL, "%s: not JSON: %s (line %d)", name,
                                          je.text, je.line);
    if (st != SEM_OK) {
        scenario_free(s);
        return st;
    }
    *out = s;
    return SEM_OK;
}

void scenario_free(scenario *s)
{
    if (!s)
        return;
    json_decref(s->root);
    free(s->phases);
    free(s);
}

const char *scenario_model(const scenario *s) { return s->model; }
const char *scenario_view(const scenario *s) { return s->view; }
const json_t *scenario_agents(const scenario *s) { return s->agents; }
int scenario_cleanup(const scenario *s) { return s->cleanup; }
uint32_t scenario_max_tokens(const scenario *s) { return s->max_tokens; }
size_t scenario_phase_count(const scenario *s) { return s->n_phases; }

const scenario_phase *scenario_phase_at(const scenario *s, size_t i)
{
    return i < s->n_phases ? &s->phases[i] : NULL;
}
