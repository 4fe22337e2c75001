/*
 * thread_pool.c - spin-then-futex thread team (design in thread_pool.h).
 */
#include "thread_pool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct worker_arg {
    struct thread_pool *tp;
    int ith;
} worker_arg;

struct thread_pool {
    int n_threads;
    int n_started;        /* workers running, for teardown after a failed create */
    pthread_t *workers;   /* [n_threads - 1] */
    worker_arg *args;     /* [n_threads - 1] */

    /* The job of the current run. Written by the caller before it bumps
     * `generation`; read by the workers after they observe the bump. */
    thread_pool_fn fn;
    void *arg;
    bool stop; /* set by destroy together with the last bump */

    /* Workers wait for this to change (spin, then futex). Own cache line,
     * because every worker polls it. */
    _Alignas(64) _Atomic uint32_t generation;
    _Atomic int sleeping_workers;

    /* Workers still inside the current run; the caller waits for 0. */
    _Alignas(64) _Atomic uint32_t remaining;
    _Atomic int caller_sleeping;
};

/* ------------------------------------------------------------ waiting */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The futex calls hand the kernel the address of an atomic word. */
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic words are plain words");

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    /* Returns at once when *word != expected (EAGAIN), on a wake, or on a
     * signal; every caller re-checks its condition in a loop. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Spins until *word != old or the spin budget is spent. Returns true and
 * the new value in *now when the word changed. The clock is read only every
 * 256 polls so a spin costs a few nanoseconds per poll. */
static bool spin_while_equal(_Atomic uint32_t *word, uint32_t old, uint32_t *now)
{
    int64_t deadline = 0;
    for (uint32_t i = 1;; i++) {
        uint32_t v = atomic_load_explicit(word, memory_order_acquire);
        if (v != old) {
            *now = v;
            return true;
        }
        cpu_relax();
        if ((i & 255u) == 0) {
            int64_t t = now_ns();
            if (deadline == 0)
                deadline = t + THREAD_POOL_SPIN_NS;
            else if (t > deadline)
                return false;
        }
    }
}

/* A worker waits for the next run; returns the new generation. */
static uint32_t wait_for_run(thread_pool *tp, uint32_t seen)
{
    uint32_t g;
    if (spin_while_equal(&tp->generation, seen, &g))
        return g;
    for (;;) {
        /* Announce the sleep before checking the word in the kernel: the
         * caller bumps the generation, then reads the count (both seq_cst),
         * so either it sees us and wakes us, or we see its bump. */
        atomic_fetch_add(&tp->sleeping_workers, 1);
        futex_wait(&tp->generation, seen);
        atomic_fetch_sub(&tp->sleeping_workers, 1);
        g = atomic_load_explicit(&tp->generation, memory_order_acquire);
        if (g != seen)
            return g;
    }
}

/* The caller waits until every worker has finished the run. */
static void wait_for_workers(thread_pool *tp)
{
    uint32_t r = atomic_load_explicit(&tp->remaining, memory_order_acquire);
    if (r == 0)
        return;
    /* Spin while the value stays r or changes; give up after the budget. */
    int64_t deadline = 0;
    for (uint32_t i = 1;; i++) {
        r = atomic_load_explicit(&tp->remaining, memory_order_acquire);
        if (r == 0)
            return;
        cpu_relax();
        if ((i & 255u) == 0) {
            int64_t t = now_ns();
            if (deadline == 0)
                deadline = t + THREAD_POOL_SPIN_NS;
            else if (t > deadline)
                break;
        }
    }
    /* Same handshake as wait_for_run, mirrored: the last worker decrements,
     * then reads caller_sleeping. */
    atomic_store(&tp->caller_sleeping, 1);
    while ((r = atomic_load(&tp->remaining)) != 0)
        futex_wait(&tp->remaining, r);
    atomic_store(&tp->caller_sleeping, 0);
}

/* ------------------------------------------------------------ workers */

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    thread_pool *tp = wa->tp;
    uint32_t seen = 0; /* generation at creation; runs start at 1 */
    for (;;) {
        seen = wait_for_run(tp, seen);
        if (tp->stop)
            return NULL;
        tp->fn(tp->arg, wa->ith, tp->n_threads);
        if (atomic_fetch_sub(&tp->remaining, 1) == 1 && atomic_load(&tp->caller_sleeping))
            futex_wake(&tp->remaining, 1);
    }
}

/* Publishes the job in tp->fn/arg/stop and wakes sleeping workers. */
static void publish(thread_pool *tp)
{
    atomic_fetch_add(&tp->generation, 1);
    if (atomic_load(&tp->sleeping_workers) > 0)
        futex_wake(&tp->generation, INT_MAX);
}

/* Stops and joins the n_started workers. */
static void stop_workers(thread_pool *tp)
{
    if (tp->n_started == 0)
        return;
    tp->stop = true;
    publish(tp);
    for (int i = 0; i < tp->n_started; i++)
        pthread_join(tp->workers[i], NULL);
    tp->n_started = 0;
}

static void free_pool(thread_pool *tp)
{
    free(tp->workers);
    free(tp->args);
    free(tp);
}

/* Starts the workers with every signal blocked, so signals are delivered to
 * the application's own threads, never to a kernel worker. */
static sem_status start_workers(thread_pool *tp, sem_err *err)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 0; i < tp->n_threads - 1; i++) {
        tp->args[i].tp = tp;
        tp->args[i].ith = i + 1;
        rc = pthread_create(&tp->workers[i], NULL, worker_main, &tp->args[i]);
        if (rc != 0)
            break;
        tp->n_started++;
        char name[16];
        snprintf(name, sizeof name, "sem-pool-%d", (i + 1) % 1000);
        pthread_setname_np(tp->workers[i], name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return sem_err_set(err, SEM_EIO, "thread pool: cannot start thread %d of %d: %s",
                           tp->n_started + 1, tp->n_threads, strerror(rc));
    return SEM_OK;
}

/* ------------------------------------------------------------ public */

thread_pool *thread_pool_create(int n_threads, sem_err *err)
{
    if (n_threads < 1 || n_threads > THREAD_POOL_MAX_THREADS) {
        sem_err_set(err, SEM_EINVAL, "thread pool size %d is outside [1, %d]", n_threads,
                    THREAD_POOL_MAX_THREADS);
        return NULL;
    }
    size_t bytes = (sizeof(thread_pool) + 63) / 64 * 64;
    thread_pool *tp = aligned_alloc(64, bytes);
    if (!tp) {
        sem_err_set(err, SEM_ENOMEM, "thread pool: out of memory");
        return NULL;
    }
    memset(tp, 0, bytes);
    tp->n_threads = n_threads;
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->sleeping_workers, 0);
    atomic_init(&tp->remaining, 0);
    atomic_init(&tp->caller_sleeping, 0);
    size_t nw = (size_t)n_threads - 1;
    tp->workers = calloc(nw ? nw : 1, sizeof *tp->workers);
    tp->args = calloc(nw ? nw : 1, sizeof *tp->args);
    if (!tp->workers || !tp->args) {
        free_pool(tp);
        sem_err_set(err, SEM_ENOMEM, "thread pool: out of memory for %d threads", n_threads);
        return NULL;
    }
    if (start_workers(tp, err) != SEM_OK) {
        stop_workers(tp);
        free_pool(tp);
        return NULL;
    }
    return tp;
}

void thread_pool_destroy(thread_pool *tp)
{
    if (!tp)
        return;
    stop_workers(tp);
    free_pool(tp);
}

int thread_pool_size(const thread_pool *tp)
{
    return tp->n_threads;
}

void thread_pool_run(thread_pool *tp, thread_pool_fn fn, void *arg)
{
    if (tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store_explicit(&tp->remaining, (uint32_t)tp->n_threads - 1, memory_order_relaxed);
    publish(tp);
    fn(arg, 0, tp->n_threads);
    wait_for_workers(tp);
}
