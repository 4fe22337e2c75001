/*
 * thread_pool.h - a fixed team of threads that runs one function on all of
 * them at once, as fast as the hardware allows.
 *
 * The model engine calls thread_pool_run() for every matmul of every layer,
 * thousands of times per second, so what matters is the latency of one
 * dispatch. A run publishes the job with one atomic store; idle workers
 * spin on that word for a short while (THREAD_POOL_SPIN_NS) and only then
 * sleep on a futex, so back-to-back runs never pay a syscall, and an idle
 * pool does not burn CPU. The caller takes part as thread 0 and, after its
 * own share, waits the same way (spin, then futex) for the others.
 *
 * Contract of a run: fn(arg, ith, nth) is called exactly once for every ith
 * in [0, nth), nth = thread_pool_size(); ith 0 on the calling thread. When
 * thread_pool_run() returns, every call has returned and everything they
 * wrote is visible to the caller; everything the caller wrote before the run
 * is visible to every call. fn must not call thread_pool_run() on the same
 * pool.
 *
 * Threads: ONE thread at a time may call thread_pool_run() (the engine
 * thread); runs are not queued, so two concurrent callers are a bug.
 * create and destroy are called by the owner, never during a run. The
 * caller of create owns the pool and destroys it.
 *
 * Memory ordering (why this is race-free, and clean under ThreadSanitizer):
 * the caller writes the job then bumps `generation` with a release (seq_cst)
 * RMW; a worker acquires `generation` before reading the job. A worker
 * finishes with a release decrement of `remaining`; the caller acquires
 * `remaining` == 0 before returning. The futex is only a place to sleep;
 * it carries no data, and both sleep paths re-check their word in the
 * kernel (FUTEX_WAIT compares atomically), with a sleeper count checked
 * after the publishing store, so a wake-up cannot be lost.
 */
#ifndef SEM_THREAD_POOL_H
#define SEM_THREAD_POOL_H

#include "domain/status.h"

/* How long an idle thread spins before it sleeps (nanoseconds). */
#define THREAD_POOL_SPIN_NS 100000L

/* Upper bound on n_threads accepted by create. */
#define THREAD_POOL_MAX_THREADS 512

typedef struct thread_pool thread_pool;

typedef void (*thread_pool_fn)(void *arg, int ith, int nth);

/*
 * Creates a pool of n_threads threads in total, the caller included (so
 * n_threads - 1 workers are started; 1 means no worker, runs are plain
 * calls). SEM_EINVAL when n_threads is outside [1, THREAD_POOL_MAX_THREADS],
 * SEM_ENOMEM or SEM_EIO (with the errno text) when memory or a thread cannot
 * be had; on failure every thread already started is stopped and joined.
 */
thread_pool *thread_pool_create(int n_threads, sem_err *err);

/* Stops and joins the workers and frees the pool. NULL is a no-op. */
void thread_pool_destroy(thread_pool *tp);

/* Number of threads a run uses, the caller included (>= 1). */
int thread_pool_size(const thread_pool *tp);

/* Runs fn(arg, ith, nth) on every thread and returns when all returned. */
void thread_pool_run(thread_pool *tp, thread_pool_fn fn, void *arg);

#endif
