/*
 * deadline.c - monotonic time and timed condition waits.
 */
#include "deadline.h"

#include <errno.h>
#include <time.h>

double deadline_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t deadline_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int deadline_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

int deadline_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, double deadline_ms)
{
    if (deadline_ms <= deadline_now_ms())
        return ETIMEDOUT;
    struct timespec ts;
    double s = deadline_ms / 1e3;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(cond, mutex, &ts);
    return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

int deadline_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, double ms)
{
    return deadline_wait_until(cond, mutex, deadline_now_ms() + ms);
}
