/*
 * deadline.h - time on CLOCK_MONOTONIC: now in milliseconds, and waits on
 * condition variables that a change of the wall clock cannot stretch or cut.
 *
 * A condition variable that deadline_wait_ms() is used on must be made with
 * deadline_cond_init() (it binds the variable to CLOCK_MONOTONIC).
 *
 * Threads: every function is reentrant.
 */
#ifndef SEM_DEADLINE_H
#define SEM_DEADLINE_H

#include <pthread.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin; for intervals). */
double deadline_now_ms(void);

/* Milliseconds since the Unix epoch on CLOCK_REALTIME (for timestamps that
 * leave the process: logs, files, API fields; never for intervals). */
int64_t deadline_wall_ms(void);

/* pthread_cond_init with CLOCK_MONOTONIC; 0 or an errno value. */
int deadline_cond_init(pthread_cond_t *cond);

/*
 * Waits on cond (with mutex held) until signalled or until deadline_ms
 * (a deadline_now_ms() value) has passed. Returns 0 when signalled (or
 * woken spuriously), ETIMEDOUT when the deadline has passed. The caller
 * rechecks its condition in a loop, as with any condition variable.
 */
int deadline_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, double deadline_ms);

/* The same with a timeout of ms milliseconds from now. */
int deadline_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, double ms);

#endif
