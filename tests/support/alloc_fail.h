/*
 * alloc_fail.h - allocation-failure injection for tests: the k-th
 * allocation from now fails, as SQLite's malloc tests do.
 *
 * A test executable built with sem_alloc_fail_test() (tests/CMakeLists.txt)
 * is linked with GNU ld's --wrap for malloc, calloc, realloc, strdup and
 * aligned_alloc, so every call to them from semantic's code and the test's
 * goes through a counter here; jansson's and SQLite's allocations are
 * routed through the same counter (json_set_alloc_funcs and
 * SQLITE_CONFIG_MALLOC, set before main). Allocations made inside other
 * shared libraries (PCRE2, libc's own) are not counted, nor are those of
 * jansson's parser (json_loadb) after its first: jansson mishandles a
 * failure there (alloc_fail.c says how).
 *
 * Use:
 *
 *     for (uint64_t k = 1;; k++) {
 *         alloc_fail_arm(k, 0);
 *         sem_status st = operation();
 *         int hit = alloc_fail_hit();
 *         alloc_fail_disarm();
 *         if (!hit) { ...operation succeeded with every allocation... break; }
 *         ...st is SEM_ENOMEM and nothing changed...
 *     }
 *
 * ALLOC_FAIL_BACKTRACE=1 in the environment prints a backtrace of each
 * injected failure (function names need -rdynamic, or addr2line).
 *
 * Threads. By default only the calling thread's allocations are counted
 * (and fail), so a test that injects into a call is not disturbed by other
 * threads. ALLOC_FAIL_ANY_THREAD counts every thread's allocations (to
 * fail the engine thread's, say), in whatever order the threads make them.
 */
#ifndef SEM_ALLOC_FAIL_H
#define SEM_ALLOC_FAIL_H

#include <stdint.h>

enum {
    ALLOC_FAIL_ANY_THREAD = 1, /* count every thread's allocations, not the caller's */
    ALLOC_FAIL_PERSIST = 2,    /* every allocation after the k-th fails too */
};

/* The k-th allocation (k >= 1) counted from now fails; flags above. */
void alloc_fail_arm(uint64_t k, int flags);
/* Whether an allocation was made to fail since the last arm. */
int alloc_fail_hit(void);
/* Allocations counted since the last arm (failed ones included). */
uint64_t alloc_fail_count(void);
/* Stops counting and failing. */
void alloc_fail_disarm(void);

#endif
