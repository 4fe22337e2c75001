/*
 * alloc_fail.c - the counter behind the wrapped allocation functions
 * (alloc_fail.h).
 *
 * GNU ld's --wrap=malloc sends every reference to malloc in the linked
 * objects to __wrap_malloc, and __real_malloc to the real one (the C
 * library's, or the sanitizer's when it intercepts malloc). A failed
 * allocation returns NULL with errno ENOMEM, as the C library's does.
 *
 * State: one armed counter per thread (the default scope) and one shared
 * by all threads (ALLOC_FAIL_ANY_THREAD), atomics for the latter.
 */
#include "alloc_fail.h"

#include <errno.h>
#include <execinfo.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void *__wrap_aligned_alloc(size_t align, size_t n);
json_t *__real_json_loadb(const char *buffer, size_t len, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buffer, size_t len, size_t flags, json_error_t *error);

/* This thread's counter; in_parser: inside json_loadb, after its first
 * allocation (see __wrap_json_loadb). */
static _Thread_local struct {
    int armed, persist, hit;
    uint64_t k, seen;
    int in_parser, parser_allocs;
} mine;

/* Every thread's counter. */
static atomic_int any_armed, any_persist, any_hit;
static atomic_uint_fast64_t any_k, any_seen;

/* With ALLOC_FAIL_BACKTRACE set, where each injected failure happened. */
static void trace(uint64_t n)
{
    if (!getenv("ALLOC_FAIL_BACKTRACE"))
        return;
    void *frames[32];
    int depth = backtrace(frames, 32);
    fprintf(stderr, "alloc_fail: allocation %llu fails here:\n", (unsigned long long)n);
    backtrace_symbols_fd(frames, depth, 2);
}

static int fail_now(void)
{
    if (mine.in_parser && ++mine.parser_allocs > 1)
        return 0;
    if (mine.armed) {
        uint64_t n = ++mine.seen;
        if (n == mine.k || (mine.persist && n > mine.k)) {
            mine.hit = 1;
            trace(n);
            return 1;
        }
        return 0;
    }
    if (atomic_load_explicit(&any_armed, memory_order_acquire)) {
        uint64_t n = atomic_fetch_add(&any_seen, 1) + 1;
        uint64_t k = atomic_load(&any_k);
        if (n == k || (atomic_load(&any_persist) && n > k)) {
            atomic_store(&any_hit, 1);
            trace(n);
            return 1;
        }
    }
    return 0;
}

void alloc_fail_arm(uint64_t k, int flags)
{
    alloc_fail_disarm();
    mine.hit = 0;
    atomic_store(&any_hit, 0);
    if (flags & ALLOC_FAIL_ANY_THREAD) {
        atomic_store(&any_k, k);
        atomic_store(&any_seen, 0);
        atomic_store(&any_persist, (flags & ALLOC_FAIL_PERSIST) != 0);
        atomic_store_explicit(&any_armed, 1, memory_order_release);
    } else {
        mine.k = k;
        mine.seen = 0;
        mine.persist = (flags & ALLOC_FAIL_PERSIST) != 0;
        mine.armed = 1;
    }
}

int alloc_fail_hit(void) { return mine.hit || atomic_load(&any_hit); }

uint64_t alloc_fail_count(void) { return mine.armed ? mine.seen : atomic_load(&any_seen); }

void alloc_fail_disarm(void)
{
    mine.armed = 0;
    atomic_store(&any_armed, 0);
}

void *__wrap_malloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(align, n);
}

/*
 * jansson's parser ignores a failed allocation while it saves a token
 * (lex_save drops strbuffer_append_byte's result: jansson issue #362, open
 * in 2.14), then reads past its buffer or asserts. Until that is fixed
 * upstream the parser's allocations are spared, except its first (the
 * lexer's buffer, which it does check): that one failing is how a caller
 * meets jansson's lack of memory (NULL, no message).
 */
json_t *__wrap_json_loadb(const char *buffer, size_t len, size_t flags, json_error_t *error)
{
    mine.in_parser = 1;
    mine.parser_allocs = 0;
    json_t *v = __real_json_loadb(buffer, len, flags, error);
    mine.in_parser = 0;
    return v;
}

/* SQLite's allocator: the counted malloc with the size kept in a 16-byte
 * header (SQLite asks for it back with xSize). */
#define SQ_HEADER 16

static void *sq_malloc(int n)
{
    size_t *p = __wrap_malloc((size_t)n + SQ_HEADER);
    if (!p)
        return NULL;
    p[0] = (size_t)n;
    return (char *)p + SQ_HEADER;
}

static void sq_free(void *p)
{
    if (p)
        free((char *)p - SQ_HEADER);
}

static void *sq_realloc(void *p, int n)
{
    size_t *q = __wrap_realloc((char *)p - SQ_HEADER, (size_t)n + SQ_HEADER);
    if (!q)
        return NULL;
    q[0] = (size_t)n;
    return (char *)q + SQ_HEADER;
}

static int sq_size(void *p) { return p ? (int)*(size_t *)((char *)p - SQ_HEADER) : 0; }
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *app) { return (void)app, SQLITE_OK; }
static void sq_shutdown(void *app) { (void)app; }

/*
 * jansson and SQLite allocate inside their shared libraries: hand them the
 * counted allocator before anything else runs (SQLite accepts it only
 * before it initializes).
 */
__attribute__((constructor)) static void route_libraries(void)
{
    json_set_alloc_funcs(__wrap_malloc, free);
    static const sqlite3_mem_methods methods = {sq_malloc, sq_free,   sq_realloc,  sq_size,
                                                sq_roundup, sq_init, sq_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
        abort();
}
