/*
 * engine_io.c - the engine's I/O thread: every call into the warm store
 * that touches the disk runs here, one job at a time in the order queued,
 * so the engine thread never waits for the disk.
 *
 * Loads go ahead of queued saves (see queue_job). Saves and loads report
 * back through the engine's inbox (MSG_IO_DONE) in their agent's own
 * message, so a report never needs memory; removals and touches do not
 * report. A save reads the agent's table, which the
 * engine leaves alone while the agent is SAVING; a load builds a new table
 * from the pool (blocks reserved by the engine at admission). Jobs still
 * queued when the engine stops are run before the thread exits, so every
 * write that was started completes.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Reports a save or load to the engine thread in the agent's own message
 * (allocated with the agent: reporting never runs out of memory). */
static void post_done(engine *e, const io_job *j, sem_status st, const sem_err *err,
                      block_table *t)
{
    engine_msg *m = j->ag->io_done;
    *m = (engine_msg){.kind = MSG_IO_DONE, .io = j->kind, .ag = j->ag, .status = st,
                      .loaded = t};
    if (err)
        m->err = *err;
    sem_mutex_lock(&e->inbox);
    if (e->msg_tail)
        e->msg_tail->next = m;
    else
        e->msg_head = m;
    e->msg_tail = m;
    pthread_cond_signal(&e->wake);
    sem_mutex_unlock(&e->inbox);
}

static void run_job(engine *e, io_job *j)
{
    warm_store *w = e->o.warm;
    sem_err err = {0};
    sem_status st;
    block_table *t = NULL;
    switch (j->kind) {
    case IO_SAVE:
        st = w->ops->save(w->self, j->key, j->ag->kv, &j->ag->save_stop, &err);
        post_done(e, j, st, &err, NULL);
        break;
    case IO_LOAD:
        st = w->ops->load(w->self, j->key, e->pool, &t, &err);
        post_done(e, j, st, &err, st == SEM_OK ? t : NULL);
        break;
    case IO_LOAD_PREFIX: {
        /* A new agent here may be known to a tier under the disk (another
         * server wrote it): its own memory first, then shared chunks. */
        st = w->ops->load(w->self, j->key, e->pool, &t, &err);
        if (st == SEM_OK) {
            j->kind = IO_LOAD; /* reported as the load of its own memory */
            post_done(e, j, st, &err, t);
            break;
        }
        char ns[GEN_SCOPE_MAX + 1];
        share_domain_of_key(j->key, ns);
        st = SEM_ENOTFOUND;
        if (w->ops->load_prefix)
            st = w->ops->load_prefix(w->self, ns, j->tokens, j->n_tokens, e->pool, j->key, &t,
                                     &err);
        post_done(e, j, st, &err, st == SEM_OK ? t : NULL);
        break;
    }
    case IO_REMOVE:
        st = w->ops->remove(w->self, j->key, &err);
        if (st != SEM_OK && st != SEM_ENOTFOUND)
            engine_log(e, "warning", "agent '%s': removing its file failed: %s", j->key,
                       sem_err_text(&err));
        break;
    case IO_TOUCH:
        w->ops->touch(w->self, j->key, j->saved, &err);
        break;
    }
}

static void *io_main(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->io_lock);
        while (!e->io_head && !e->io_stop)
            pthread_cond_wait(&e->io_wake, &e->io_lock);
        io_job *j = e->io_head;
        if (j) {
            e->io_head = j->next;
            if (!e->io_head)
                e->io_tail = NULL;
        }
        e->io_current = j;
        pthread_mutex_unlock(&e->io_lock);
        if (!j)
            break; /* stopped and drained */
        run_job(e, j);
        pthread_mutex_lock(&e->io_lock);
        e->io_current = NULL;
        pthread_mutex_unlock(&e->io_lock);
        free(j->tokens);
        free(j);
        pthread_mutex_lock(&e->io_lock);
        e->io_busy--;
        pthread_cond_broadcast(&e->io_wake);
        pthread_mutex_unlock(&e->io_lock);
    }
    return NULL;
}

/*
 * Appends j to the queue (under io_lock). A load goes ahead of queued
 * saves, removals and touches, since a request waits for it and nobody
 * waits for those, but never ahead of a job on its own key (a removal or
 * save of the same file must happen first).
 */
static void queue_job(engine *e, io_job *j)
{
    io_job *after = NULL;
    if (j->kind == IO_LOAD || j->kind == IO_LOAD_PREFIX) {
        for (io_job *q = e->io_head; q; q = q->next)
            if (q->kind == IO_LOAD || q->kind == IO_LOAD_PREFIX || strcmp(q->key, j->key) == 0)
                after = q;
    } else {
        after = e->io_tail;
    }
    if (after) {
        j->next = after->next;
        after->next = j;
    } else {
        j->next = e->io_head;
        e->io_head = j;
    }
    if (!j->next)
        e->io_tail = j;
}

/* A save or load whose outcome will come back through the inbox. */
static void count_in_flight(engine *e)
{
    sem_mutex_lock(&e->inbox);
    e->stats.io_in_flight++;
    sem_mutex_unlock(&e->inbox);
}

static int reports(io_kind kind)
{
    return kind == IO_SAVE || kind == IO_LOAD || kind == IO_LOAD_PREFIX;
}

/* Queues j, or runs it here when the I/O thread is gone; frees it. */
static void push_job(engine *e, io_job *j)
{
    if (reports(j->kind)) /* agents_io_done counts it out */
        count_in_flight(e);
    pthread_mutex_lock(&e->io_lock);
    if (e->io_stop) {
        /* The I/O thread is gone (the engine is being destroyed on this
         * thread): run the job here. */
        pthread_mutex_unlock(&e->io_lock);
        run_job(e, j);
        free(j->tokens);
        free(j);
        return;
    }
    queue_job(e, j);
    e->io_busy++;
    pthread_cond_signal(&e->io_wake);
    pthread_mutex_unlock(&e->io_lock);
}

/* A job that could not be queued for lack of memory: a save or load is
 * reported as failed, so its agent leaves SAVING or LOADING. */
static void push_failed(engine *e, io_kind kind, agent *a, const char *key)
{
    engine_log(e, "error", "agent '%s': out of memory queueing disk I/O", key);
    if (a && reports(kind)) {
        sem_err err = {0};
        sem_err_set(&err, SEM_ENOMEM, "out of memory queueing disk I/O");
        count_in_flight(e);
        post_done(e, &(io_job){.kind = kind, .ag = a}, SEM_ENOMEM, &err, NULL);
    }
}

void io_push(engine *e, io_kind kind, agent *a, const char *key, uint32_t saved)
{
    if (!e->o.warm)
        return;
    io_job *j = calloc(1, sizeof *j);
    if (!j) {
        push_failed(e, kind, a, key);
        return;
    }
    j->kind = kind;
    j->ag = a;
    j->saved = saved;
    memcpy(j->key, key, strlen(key) + 1);
    push_job(e, j);
}

void io_push_prefix(engine *e, agent *a, const int32_t *prompt, uint32_t n)
{
    io_job *j = calloc(1, sizeof *j);
    int32_t *copy = j ? malloc((n ? n : 1) * sizeof *copy) : NULL;
    if (!copy) {
        free(j);
        push_failed(e, IO_LOAD_PREFIX, a, a->key);
        return;
    }
    memcpy(copy, prompt, n * sizeof *copy);
    *j = (io_job){.kind = IO_LOAD_PREFIX, .ag = a, .tokens = copy, .n_tokens = n};
    memcpy(j->key, a->key, strlen(a->key) + 1);
    push_job(e, j);
}

int io_removing(engine *e, const char *key)
{
    pthread_mutex_lock(&e->io_lock);
    int found = e->io_current && e->io_current->kind == IO_REMOVE &&
                strcmp(e->io_current->key, key) == 0;
    for (io_job *q = e->io_head; q && !found; q = q->next)
        found = q->kind == IO_REMOVE && strcmp(q->key, key) == 0;
    pthread_mutex_unlock(&e->io_lock);
    return found;
}

uint32_t io_busy(engine *e)
{
    pthread_mutex_lock(&e->io_lock);
    uint32_t n = e->io_busy;
    pthread_mutex_unlock(&e->io_lock);
    return n;
}

sem_status io_start(engine *e, sem_err *err)
{
    pthread_mutex_init(&e->io_lock, NULL);
    pthread_cond_init(&e->io_wake, NULL);
    if (pthread_create(&e->io_thread, NULL, io_main, e) != 0) {
        pthread_mutex_destroy(&e->io_lock);
        pthread_cond_destroy(&e->io_wake);
        return sem_err_set(err, SEM_ENOMEM, "engine: cannot start the I/O thread");
    }
    return SEM_OK;
}

void io_stop(engine *e)
{
    pthread_mutex_lock(&e->io_lock);
    e->io_stop = 1;
    pthread_cond_signal(&e->io_wake);
    pthread_mutex_unlock(&e->io_lock);
    pthread_join(e->io_thread, NULL);
}

void io_free(engine *e)
{
    pthread_mutex_destroy(&e->io_lock);
    pthread_cond_destroy(&e->io_wake);
}
