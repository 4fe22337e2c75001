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

json_t *session_view_messages(const session_record *r, size_t agent, const session_message *m,
                              size_t n)
{
    const session_agent *self = &r->agents[agent];
    json_t *list = json_array();
    strbuf others = {0}; /* user text not yet added */
    int ok = list != NULL;
    if (ok && self->system && *self->system)
        ok = add(list, "system", self->system, strlen(self->system));
    for (size_t i = 0; ok && i < n; i++) {
        if (!session_view_visible(m[i].channel, self->id))
            continue;
        if (strcmp(m[i].speaker, self->id) == 0) {
            if (others.len)
                ok = add(list, "user", others.data, others.len);
            strbuf_truncate(&others, 0);
            ok = ok && add(list, "assistant", m[i].text, strlen(m[i].text));
            continue;
        }
        if (others.len)
            strbuf_append(&others, "\n\n", 2);
        if (m[i].name[0]) {
            strbuf_append(&others, m[i].name, strlen(m[i].name));
            strbuf_append(&others, ": ", 2);
        }
        strbuf_append(&others, m[i].text, strlen(m[i].text));
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
