/*
 * thread_mark.c - thread identity for assertions.
 */
#include "thread_mark.h"

#include <pthread.h>

void thread_mark_set(thread_mark *m)
{
    atomic_store_explicit(m, (unsigned long)pthread_self(), memory_order_relaxed);
}

int thread_mark_is_self(thread_mark *m)
{
    return atomic_load_explicit(m, memory_order_relaxed) == (unsigned long)pthread_self();
}
