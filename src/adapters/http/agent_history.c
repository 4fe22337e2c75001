/*
 * agent_history.c - a hash table of agents (chained, FNV-1a over the key),
 * each with a ring of its last requests, and a list of the agents by last
 * record so that the least recent one makes room when the table is full.
 * An agent's entry is allocated at its first record and freed when it is
 * forgotten or replaced.
 */
#include "agent_history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sem_mutex.h"

typedef struct entry {
    char key[AGENT_HISTORY_KEY_MAX + 1];
    agent_request ring[AGENT_HISTORY_MAX];
    uint32_t n, next;            /* entries held; where the next one goes */
    struct entry *chain;         /* the next entry of its hash bucket */
    struct entry *newer, *older; /* the recency list */
} entry;

struct agent_history {
    sem_mutex lock;
    uint32_t max_agents, n_agents;
    uint32_t n_buckets;          /* a power of two, >= max_agents */
    entry **buckets;             /* (n_buckets) */
    entry *newest, *oldest;
};

void agent_history_key(const char *model, const char *key, char *out)
{
    snprintf(out, AGENT_HISTORY_KEY_MAX + 1, "%.*s/%.*s", HTTP_MODEL_NAME_MAX - 1, model,
             AGENT_KEY_MAX, key);
}

sem_status agent_history_create(uint32_t max_agents, agent_history **out, sem_err *err)
{
    *out = NULL;
    if (max_agents < 1 || max_agents > AGENT_HISTORY_AGENTS_MAX)
        return sem_err_set(err, SEM_EINVAL, "agent history of %u agents; expected 1 to %u",
                           max_agents, AGENT_HISTORY_AGENTS_MAX);
    uint32_t nb = 1;
    while (nb < max_agents)
        nb <<= 1;
    agent_history *h = calloc(1, sizeof *h);
    entry **buckets = h ? calloc(nb, sizeof *buckets) : NULL;
    if (!buckets) {
        free(h);
        return sem_err_set(err, SEM_ENOMEM, "out of memory for the history of %u agents",
                           max_agents);
    }
    sem_mutex_init(&h->lock);
    h->max_agents = max_agents;
    h->n_buckets = nb;
    h->buckets = buckets;
    *out = h;
    return SEM_OK;
}

void agent_history_free(agent_history *h)
{
    if (!h)
        return;
    for (entry *e = h->newest, *next; e; e = next) {
        next = e->older;
        free(e);
    }
    sem_mutex_destroy(&h->lock);
    free(h->buckets);
    free(h);
}

static entry **bucket_of(agent_history *h, const char *key)
{
    uint32_t x = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        x = (x ^ *p) * 16777619u;
    return &h->buckets[x & (h->n_buckets - 1)];
}

/* The link that points to key's entry (*link is NULL when it has none). */
static entry **find(agent_history *h, const char *key)
{
    SEM_MUTEX_ASSERT_HELD(&h->lock);
    entry **link = bucket_of(h, key);
    while (*link && strcmp((*link)->key, key) != 0)
        link = &(*link)->chain;
    return link;
}

static void list_unlink(agent_history *h, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        h->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        h->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void list_push_newest(agent_history *h, entry *e)
{
    e->older = h->newest;
    e->newer = NULL;
    if (h->newest)
        h->newest->newer = e;
    h->newest = e;
    if (!h->oldest)
        h->oldest = e;
}

/* Unlinks and frees the entry *link points to. */
static void drop(agent_history *h, entry **link)
{
    entry *e = *link;
    *link = e->chain;
    list_unlink(h, e);
    free(e);
    h->n_agents--;
}

/* key's entry, made (room made first) when it has none; NULL without memory. */
static entry *find_or_add(agent_history *h, const char *key)
{
    entry **link = find(h, key);
    if (*link)
        return *link;
    if (h->n_agents == h->max_agents)
        drop(h, find(h, h->oldest->key));
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    memcpy(e->key, key, strlen(key) + 1);
    link = find(h, key); /* the drop may have changed the chain */
    *link = e;
    list_push_newest(h, e);
    h->n_agents++;
    return e;
}

void agent_history_record(agent_history *h, const char *key, const agent_request *r)
{
    if (!key || !*key || strlen(key) > AGENT_HISTORY_KEY_MAX)
        return;
    sem_mutex_lock(&h->lock);
    entry *e = find_or_add(h, key);
    if (e) {
        e->ring[e->next] = *r;
        e->next = (e->next + 1) % AGENT_HISTORY_MAX;
        if (e->n < AGENT_HISTORY_MAX)
            e->n++;
        list_unlink(h, e);
        list_push_newest(h, e);
    }
    sem_mutex_unlock(&h->lock);
}

size_t agent_history_read(agent_history *h, const char *key, agent_request *out, size_t cap)
{
    size_t n = 0;
    sem_mutex_lock(&h->lock);
    const entry *e = *find(h, key);
    for (; e && n < e->n && n < cap; n++)
        out[n] = e->ring[(e->next + AGENT_HISTORY_MAX - 1 - n) % AGENT_HISTORY_MAX];
    sem_mutex_unlock(&h->lock);
    return n;
}

void agent_history_forget(agent_history *h, const char *key)
{
    sem_mutex_lock(&h->lock);
    entry **link = find(h, key);
    if (*link)
        drop(h, link);
    sem_mutex_unlock(&h->lock);
}
