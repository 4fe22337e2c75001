/*
 * session_view.c - one agent's view of a transcript (rules in
 * session_view.h).
 */
#include "session_view.h"

#include <string.h>

#include "base/strbuf.h"

int session_view_visible(const char *channel, const char *agent_id)
{
    if (strcmp(channel, "all") == 0)
        return 1;
    const char *comma = strchr(channel, ',');
    if (!comma)
        return 0;
    size_t first = (size_t)(comma - channel);
    return (strlen(agent_id) == first && strncmp(channel, agent_id, first) == 0) ||
           strcmp(comma + 1, agent_id) == 0;
}

static int add(json_t *list, const char *role, const char *text, size_t len)
{
    json_t *o = json_pack("{s:s,s:s%}", "role", role, "content", text, len);
    return o && json_array_append_new(list, o) == 0;
}

/* Appends "NAME: text" (text alone with no name), after a blank line when
 * b holds text already. */
static void add_line(strbuf *b, const session_message *m)
{
    if (b->len)
        strbuf_append(b, "\n\n", 2);
    if (m->name[0]) {
        strbuf_append(b, m->name, strlen(m->name));
        strbuf_append(b, ": ", 2);
    }
    strbuf_append(b, m->text, strlen(m->text));
}

/* Adds message m as the agent `self` reads it: its own text as an
 * assistant message (ending the user text gathered before it), anything
 * else gathered into `others`. 0 when out of memory. */
static int read_one(json_t *list, strbuf *others, const session_agent *self,
                    const session_message *m)
{
    if (!session_view_visible(m->channel, self->id))
        return 1;
    if (strcmp(m->speaker, self->id) == 0) {
        int ok = !others->oom && (!others->len || add(list, "user", others->data, others->len));
        strbuf_truncate(others, 0);
        return ok && add(list, "assistant", m->text, strlen(m->text));
    }
    add_line(others, m);
    return 1;
}

/* The own layout (session_view.h). */
static json_t *own_view(const session_record *r, size_t agent, const session_message *m, size_t n)
{
    const session_agent *self = &r->agents[agent];
    json_t *list = json_array();
    strbuf others = {0}; /* user text not yet added */
    int ok = list != NULL;
    if (ok && self->system && *self->system)
        ok = add(list, "system", self->system, strlen(self->system));
    for (size_t i = 0, end; ok && i < n; i = end) {
        /* One batch: the agent answered the transcript before it, so its
         * own answer comes first, then the others' in their order. */
        for (end = i + 1; end < n && m[end].batch == m[i].batch && m[i].batch; end++)
            ;
        for (size_t k = i; ok && k < end; k++)
            if (strcmp(m[k].speaker, self->id) == 0)
                ok = read_one(list, &others, self, &m[k]);
        for (size_t k = i; ok && k < end; k++)
            if (strcmp(m[k].speaker, self->id) != 0)
                ok = read_one(list, &others, self, &m[k]);
    }
    ok = ok && !others.oom;
    if (ok && others.len)
        ok = add(list, "user", others.data, others.len);
    strbuf_free(&others);
    if (!ok) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* Who takes part: the same text for every agent of the session. */
static void add_preamble(strbuf *b, const session_record *r)
{
    strbuf_printf(b, "A conversation among %zu participants:", r->n_agents);
    for (size_t i = 0; i < r->n_agents; i++) {
        const session_agent *a = &r->agents[i];
        strbuf_printf(b, "\n- %s", a->name);
        if (a->role && *a->role)
            strbuf_printf(b, " (%s)", a->role);
    }
    strbuf_puts(b, "\nEach message of the conversation starts with its speaker's name.");
}

/* The agent's own part, after the transcript: the whispers it is a party
 * to, who it is, its system prompt. */
static void add_own_part(strbuf *b, const session_agent *self, const session_message *m,
                         size_t n)
{
    int heading = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].channel, "all") == 0 || !session_view_visible(m[i].channel, self->id))
            continue;
        if (!heading) {
            if (b->len)
                strbuf_append(b, "\n\n---\n", 6);
            strbuf_puts(b, "Private messages, seen only by you and the other party:");
            heading = 1;
        }
        add_line(b, &m[i]);
    }
    if (b->len)
        strbuf_append(b, "\n\n---\n", 6);
    strbuf_printf(b, "You are %s.", self->name);
    if (self->role && *self->role)
        strbuf_printf(b, " Your role: %s.", self->role);
    if (self->system && *self->system)
        strbuf_printf(b, "\n%s", self->system);
    strbuf_printf(b, "\nWrite %s's next message.", self->name);
}

/* The shared layout (session_view.h). */
static json_t *shared_view(const session_record *r, size_t agent, const session_message *m,
                           size_t n)
{
    strbuf pre = {0}, body = {0};
    add_preamble(&pre, r);
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].channel, "all") == 0)
            add_line(&body, &m[i]);
    add_own_part(&body, &r->agents[agent], m, n);
    json_t *list = NULL;
    if (!pre.oom && !body.oom)
        list = json_array();
    if (list && (!add(list, "system", pre.data, pre.len) ||
                 !add(list, "user", body.data, body.len))) {
        json_decref(list);
        list = NULL;
    }
    strbuf_free(&pre);
    strbuf_free(&body);
    return list;
}

json_t *session_view_messages(const session_record *r, size_t agent, const session_message *m,
                              size_t n)
{
    return r->view == SESSION_VIEW_SHARED ? shared_view(r, agent, m, n)
                                                       : own_view(r, agent, m, n);
}
