/*
 * sem_mutex.h - a mutex that knows its holder, so that "the caller holds the
 * lock" is asserted, not only written.
 *
 * In builds without NDEBUG (the debug and sanitizer builds) the lock
 * records the thread that holds it; SEM_MUTEX_ASSERT_HELD(l) then checks that
 * the calling thread is that thread. In NDEBUG builds the record is not
 * kept and the assertion is empty, so the lock costs what a
 * pthread_mutex_t costs.
 *
 * Waits on a condition variable go through sem_mutex_wait*,
 * which give up and retake the record with the mutex.
 *
 * Threads: as a pthread mutex.
 */
#ifndef SEM_MUTEX_H
#define SEM_MUTEX_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct sem_mutex {
    pthread_mutex_t m;
    atomic_ulong holder; /* pthread_self() of the holder, 0 when free (debug builds) */
} sem_mutex;

void sem_mutex_init(sem_mutex *l);
void sem_mutex_destroy(sem_mutex *l);
void sem_mutex_lock(sem_mutex *l);
void sem_mutex_unlock(sem_mutex *l);

/* pthread_cond_wait on cond, releasing l while waiting. */
void sem_mutex_wait(sem_mutex *l, pthread_cond_t *cond);
/* The same until deadline_ms (deadline_now_ms() clock; cond made with
 * deadline_cond_init): 0 when woken, ETIMEDOUT when the deadline passed. */
int sem_mutex_wait_until(sem_mutex *l, pthread_cond_t *cond, double deadline_ms);
/* The same with a timeout of ms milliseconds. */
int sem_mutex_wait_ms(sem_mutex *l, pthread_cond_t *cond, double ms);

/* 1 when the calling thread holds l (always 1 in NDEBUG builds). */
int sem_mutex_held(sem_mutex *l);

#define SEM_MUTEX_ASSERT_HELD(l) assert(sem_mutex_held(l))

#endif
