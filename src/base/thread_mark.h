/*
 * thread_mark.h - "this thread only" rules, asserted: the thread that owns
 * an object marks itself; THREAD_MARK_ASSERT(m) checks that the caller is
 * that thread (builds without NDEBUG; nothing in NDEBUG builds).
 *
 * Threads: set once by the owner, read by any thread.
 */
#ifndef SEM_THREAD_MARK_H
#define SEM_THREAD_MARK_H

#include <assert.h>
#include <stdatomic.h>

typedef atomic_ulong thread_mark; /* pthread_self() of the owner, 0 before */

void thread_mark_set(thread_mark *m);
int thread_mark_is_self(thread_mark *m);

#define THREAD_MARK_ASSERT(m) assert(thread_mark_is_self(m))

#endif
