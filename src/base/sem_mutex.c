/*
 * sem_mutex.c - mutexes that know their holder (debug builds).
 */
#include "sem_mutex.h"

#include <errno.h>

#include "deadline.h"

#ifndef NDEBUG
static unsigned long self_id(void) { return (unsigned long)pthread_self(); }
#endif

void sem_mutex_init(sem_mutex *l)
{
    pthread_mutex_init(&l->m, NULL);
    atomic_init(&l->holder, 0);
}

void sem_mutex_destroy(sem_mutex *l)
{
    assert(atomic_load_explicit(&l->holder, memory_order_relaxed) == 0);
    pthread_mutex_destroy(&l->m);
}

static void took(sem_mutex *l)
{
#ifndef NDEBUG
    assert(atomic_load_explicit(&l->holder, memory_order_relaxed) == 0);
    atomic_store_explicit(&l->holder, self_id(), memory_order_relaxed);
#else
    (void)l;
#endif
}

static void giving(sem_mutex *l)
{
#ifndef NDEBUG
    assert(atomic_load_explicit(&l->holder, memory_order_relaxed) == self_id());
    atomic_store_explicit(&l->holder, 0, memory_order_relaxed);
#else
    (void)l;
#endif
}

void sem_mutex_lock(sem_mutex *l)
{
    pthread_mutex_lock(&l->m);
    took(l);
}

void sem_mutex_unlock(sem_mutex *l)
{
    giving(l);
    pthread_mutex_unlock(&l->m);
}

void sem_mutex_wait(sem_mutex *l, pthread_cond_t *cond)
{
    giving(l);
    pthread_cond_wait(cond, &l->m);
    took(l);
}

int sem_mutex_wait_until(sem_mutex *l, pthread_cond_t *cond, double deadline_ms)
{
    giving(l);
    int rc = deadline_wait_until(cond, &l->m, deadline_ms);
    took(l);
    return rc;
}

int sem_mutex_wait_ms(sem_mutex *l, pthread_cond_t *cond, double ms)
{
    return sem_mutex_wait_until(l, cond, deadline_now_ms() + ms);
}

int sem_mutex_held(sem_mutex *l)
{
#ifndef NDEBUG
    return atomic_load_explicit(&l->holder, memory_order_relaxed) == self_id();
#else
    (void)l;
    return 1;
#endif
}
