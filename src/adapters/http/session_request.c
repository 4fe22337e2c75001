/*
 * session_request.c - reading the sessions API's bodies (rules in
 * session_request.h and docs/sessions.md).
 */
#include "session_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/agent_id.h"

int session_agent_index(const session_record *r, const char *id)
{
    for (size_t i = 0; i < r->n_agents; i++)
        if (strcmp(r->agents[i].id, id) == 0)
            return (int)i;
    return -1;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* An optional string field of agents[i] (NULL when absent). */
static sem_status agent_string(const json_t *a, size_t i, const char *field, size_t max,
                               const char **out, req_err *e)
{
    const json_t *v = json_object_get(a, field);
    *out = NULL;
    if (!v || json_is_null(v))
        return SEM_OK;
    char param[64];
    snprintf(param, sizeof param, "agents[%zu].%s", i, field);
    if (!json_is_string(v))
        return req_fail(e, SEM_EREQUEST, param, "%s must be a string, not %s", param,
                        json_kind(v));
    if (json_string_length(v) > max)
        return req_fail(e, SEM_EREQUEST, param, "%s is %zu bytes; at most %zu allowed", param,
                        json_string_length(v), max);
    *out = json_string_value(v);
    return SEM_OK;
}

/* agents[i] into r->agents[i]; unique names and ids are checked by the caller. */
static sem_status read_agent(const json_t *a, size_t i, session_record *r, req_err *e)
{
    char param[64];
    snprintf(param, sizeof param, "agents[%zu]", i);
    if (!json_is_object(a))
        return req_fail(e, SEM_EREQUEST, param, "%s must be an object, not %s", param,
                        json_kind(a));
    const char *id, *name, *role, *system, *life;
    sem_status st;
    if ((st = agent_string(a, i, "id", AGENT_ID_MAX, &id, e)) ||
        (st = agent_string(a, i, "name", SESSION_NAME_MAX, &name, e)) ||
        (st = agent_string(a, i, "role", SESSION_TEXT_MAX, &role, e)) ||
        (st = agent_string(a, i, "system", SESSION_TEXT_MAX, &system, e)) ||
        (st = agent_string(a, i, "lifecycle", 16, &life, e)))
        return st;
    session_agent *ag = &r->agents[i];
    char pname[64], pid[64], plife[64];
    snprintf(pname, sizeof pname, "agents[%zu].name", i);
    snprintf(pid, sizeof pid, "agents[%zu].id", i);
    snprintf(plife, sizeof plife, "agents[%zu].lifecycle", i);
    if (!name || !*name)
        return req_fail(e, SEM_EREQUEST, pname, "agents[%zu].name is required: 1 to %d "
                        "bytes the other agents read before its words", i, SESSION_NAME_MAX);
    if (strpbrk(name, "\n\r"))
        return req_fail(e, SEM_EREQUEST, pname, "agents[%zu].name must be one line", i);
    snprintf(ag->name, sizeof ag->name, "%s", name);
    if (id) {
        sem_err err = {0};
        if (agent_id_validate(id, &err) != SEM_OK)
            return req_fail(e, SEM_EREQUEST, pid, "agents[%zu].id: %s", i, err.detail);
        snprintf(ag->id, sizeof ag->id, "%s", id);
    } else {
        snprintf(ag->id, sizeof ag->id, "%s-%zu", r->id, i);
    }
    if (life && strcmp(life, "ephemeral") != 0 && strcmp(life, "persistent") != 0)
        return req_fail(e, SEM_EREQUEST, plife,
                        "agents[%zu].lifecycle is '%s'; expected ephemeral or persistent", i, life);
    ag->persistent = life && strcmp(life, "persistent") == 0;
    ag->role = strdup(role ? role : "");
    ag->system = strdup(system ? system : "");
    if (!ag->role || !ag->system)
        return req_fail(e, SEM_ENOMEM, NULL, "out of memory reading agents[%zu]", i);
    return SEM_OK;
}

static sem_status read_agents(const json_t *body, session_record *r, req_err *e)
{
    const json_t *list = json_object_get(body, "agents");
    if (!json_is_array(list))
        return req_fail(e, SEM_EREQUEST, "agents", "agents must be a list of 1 to %d agents, "
                        "not %s", SESSION_AGENTS_MAX, list ? json_kind(list) : "missing");
    size_t n = json_array_size(list);
    if (n < 1 || n > SESSION_AGENTS_MAX)
        return req_fail(e, SEM_EREQUEST, "agents", "agents has %zu entries; expected 1 to %d", n,
                        SESSION_AGENTS_MAX);
    for (size_t i = 0; i < n; i++) {
        r->n_agents = i + 1; /* what read_agent allocated is freed with r */
        sem_status st = read_agent(json_array_get(list, i), i, r, e);
        if (st != SEM_OK)
            return st;
        char pid[64], pname[64];
        snprintf(pid, sizeof pid, "agents[%zu].id", i);
        snprintf(pname, sizeof pname, "agents[%zu].name", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->agents[j].id, r->agents[i].id) == 0)
                return req_fail(e, SEM_EREQUEST, pid,
                                "agents[%zu] and agents[%zu] have the same id '%s'", j, i,
                                r->agents[i].id);
            if (strcmp(r->agents[j].name, r->agents[i].name) == 0)
                return req_fail(e, SEM_EREQUEST, pname,
                                "agents[%zu] and agents[%zu] have the same name '%s'", j, i,
                                r->agents[i].name);
        }
    }
    return SEM_OK;
}

static sem_status read_topology(const json_t *body, session_record *r, req_err *e)
{
    const char *t = NULL;
    sem_status st = req_string(body, "topology", &t, e);
    if (st != SEM_OK)
        return st;
    if (!t)
        t = "round_robin";
    for (int i = SESSION_ROUND_ROBIN; i <= SESSION_MODERATED; i++)
        if (strcmp(t, session_topology_name((session_topology)i)) == 0)
            r->topology = (session_topology)i;
    if (strcmp(t, session_topology_name(r->topology)) != 0)
        return req_fail(e, SEM_EREQUEST, "topology",
                        "topology is '%s'; expected round_robin, broadcast, whisper or moderated",
                        t);
    return SEM_OK;
}

/* "view": "own" (default) or "shared" (session_view.h). */
static sem_status read_view(const json_t *body, session_record *r, req_err *e)
{
    const char *t = NULL;
    sem_status st = req_string(body, "view", &t, e);
    if (st != SEM_OK || !t || strcmp(t, "own") == 0)
        return st;
    if (strcmp(t, "shared") != 0)
        return req_fail(e, SEM_EREQUEST, "view",
                        "view is '%.64s'; expected own or shared", t);
    r->view = SESSION_VIEW_SHARED;
    return SEM_OK;
}

/* "moderator": the agent id of a moderated session's moderator (default:
 * the first agent), who picks the speakers among the others. */
static sem_status read_moderator(const json_t *body, session_record *r, req_err *e)
{
    const char *m = NULL;
    sem_status st = req_string(body, "moderator", &m, e);
    r->moderator = -1;
    if (st != SEM_OK)
        return st;
    if (r->topology != SESSION_MODERATED) {
        if (m)
            return req_fail(e, SEM_EREQUEST, "moderator",
                            "moderator is for a moderated session; this one is %s",
                            session_topology_name(r->topology));
        return SEM_OK;
    }
    if (r->n_agents < 2)
        return req_fail(e, SEM_EREQUEST, "agents",
                        "a moderated session needs 2 agents or more: the moderator and the "
                        "agents it picks from");
    r->moderator = m ? session_agent_index(r, m) : 0;
    if (r->moderator < 0)
        return req_fail(e, SEM_EREQUEST, "moderator",
                        "moderator is '%.64s', not the id of an agent of the session", m);
    r->next = (uint32_t)r->moderator;
    return SEM_OK;
}

sem_status session_request_create(const json_t *body, session_record *r,
                                  const char **initial_prompt, req_err *e)
{
    *initial_prompt = NULL;
    r->n_agents = 0;
    sem_status st;
    if ((st = read_agents(body, r, e)) || (st = read_topology(body, r, e)) ||
        (st = read_view(body, r, e)) || (st = read_moderator(body, r, e)) ||
        (st = req_uint(body, "max_turns", 0, SESSION_MAX_TURNS_LIMIT, &r->max_turns, e)) ||
        (st = req_string(body, "initial_prompt", initial_prompt, e)))
        return st;
    if (*initial_prompt && strlen(*initial_prompt) > SESSION_TEXT_MAX)
        return req_fail(e, SEM_EREQUEST, "initial_prompt", "initial_prompt is over %u bytes",
                        SESSION_TEXT_MAX);
    if (*initial_prompt && !**initial_prompt)
        *initial_prompt = NULL;
    return SEM_OK;
}

sem_status session_request_turn(const json_t *body, const session_record *r, int round,
                                uint32_t n_ctx, session_turn_opts *o, req_err *e)
{
    int seed_given = 0;
    const char *to = NULL;
    o->stream = 0;
    o->max_tokens = SESSION_DEFAULT_MAX_TOKENS < n_ctx ? SESSION_DEFAULT_MAX_TOKENS : n_ctx;
    o->to[0] = '\0';
    if (!body)
        return SEM_OK;
    sem_status st;
    if ((st = req_bool(body, "stream", &o->stream, e)) ||
        (st = req_uint(body, "max_tokens", 1, n_ctx, &o->max_tokens, e)) ||
        (st = req_sampling(body, 2.0f, &o->sampling, &seed_given, e)) ||
        (st = req_string(body, "to", &to, e)))
        return st;
    if (!to)
        return SEM_OK;
    if (round || r->topology != SESSION_WHISPER)
        return req_fail(e, SEM_EREQUEST, "to", "to is for one turn of a whisper session; this "
                        "is %s of a %s session", round ? "a round" : "a turn",
                        session_topology_name(r->topology));
    if (session_agent_index(r, to) < 0)
        return req_fail(e, SEM_EREQUEST, "to", "to is '%.*s', not an agent of the session", 64,
                        to);
    snprintf(o->to, sizeof o->to, "%s", to);
    return SEM_OK;
}

/* "all", or a list of two different agent ids of the session into "A,B". */
static sem_status read_channel(const json_t *body, const session_record *r, char *out,
                               size_t cap, req_err *e)
{
    const json_t *c = json_object_get(body, "channel");
    if (!c || json_is_null(c) || (json_is_string(c) && strcmp(json_string_value(c), "all") == 0)) {
        snprintf(out, cap, "all");
        return SEM_OK;
    }
    const char *a = json_string_value(json_array_get(c, 0));
    const char *b = json_string_value(json_array_get(c, 1));
    if (!json_is_array(c) || json_array_size(c) != 2 || !a || !b)
        return req_fail(e, SEM_EREQUEST, "channel",
                        "channel must be \"all\" or a list of two agent ids (a whisper)");
    if (session_agent_index(r, a) < 0 || session_agent_index(r, b) < 0 || strcmp(a, b) == 0)
        return req_fail(e, SEM_EREQUEST, "channel",
                        "channel must name two different agents of the session");
    snprintf(out, cap, "%s,%s", a, b);
    return SEM_OK;
}

sem_status session_request_message(const json_t *body, const session_record *r,
                                   session_message *m, req_err *e)
{
    const char *text = NULL, *name = NULL;
    memset(m, 0, sizeof *m);
    sem_status st;
    if ((st = req_string(body, "content", &text, e)) || (st = req_string(body, "name", &name, e)))
        return st;
    if (!text || !*text)
        return req_fail(e, SEM_EREQUEST, "content", "content is required: the message's text");
    if (strlen(text) > SESSION_TEXT_MAX)
        return req_fail(e, SEM_EREQUEST, "content", "content is over %u bytes", SESSION_TEXT_MAX);
    if (name && (strlen(name) > SESSION_NAME_MAX || strpbrk(name, "\n\r")))
        return req_fail(e, SEM_EREQUEST, "name", "name must be one line of at most %d bytes",
                        SESSION_NAME_MAX);
    if ((st = read_channel(body, r, m->channel, sizeof m->channel, e)) != SEM_OK)
        return st;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "user");
    m->text = strdup(text);
    if (!m->text)
        return req_fail(e, SEM_ENOMEM, NULL, "out of memory reading content");
    return SEM_OK;
}
