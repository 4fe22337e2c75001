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
    if (others->len)
        strbuf_append(others, "\n\n", 2);
    if (m->name[0]) {
        strbuf_append(others, m->name, strlen(m->name));
        strbuf_append(others, ": ", 2);
    }
    strbuf_append(others, m->text, strlen(m->text));
    return 1;
}

json_t *session_view_messages(const session_record *r, size_t agent, const session_message *m,
                              size_t n)
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
