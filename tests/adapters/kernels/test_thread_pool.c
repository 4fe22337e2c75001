/* Specification of thread_pool.h: every run calls fn once per thread index,
 * data flows caller -> threads -> caller, and nothing deadlocks whether the
 * threads spin or sleep. Runs under ThreadSanitizer (label concurrency). */
#include "../../test_util.h"

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "adapters/kernels/thread_pool.h"

#define MAX_T 8

/* What one run records: the caller's value as each thread saw it. */
typedef struct run_state {
    int nth_seen[MAX_T];
    int calls[MAX_T];
    long input;
    long echoed[MAX_T];
    int sleep_us_workers; /* > 0: workers sleep so the caller has to wait */
} run_state;

static void record(void *arg, int ith, int nth)
{
    run_state *s = arg;
    s->calls[ith]++;
    s->nth_seen[ith] = nth;
    s->echoed[ith] = s->input;
    if (s->sleep_us_workers && ith != 0)
        usleep((useconds_t)s->sleep_us_workers);
}

static thread_pool *make(int n)
{
    sem_err err = {0};
    thread_pool *tp = thread_pool_create(n, &err);
    if (!tp)
        fail_msg("thread_pool_create(%d): %s", n, err.detail);
    assert_int_equal(thread_pool_size(tp), n);
    return tp;
}

/* One run; checks every index was called exactly once with the caller's input. */
static void run_and_check(thread_pool *tp, run_state *s, long input)
{
    int n = thread_pool_size(tp);
    memset(s->calls, 0, sizeof s->calls);
    s->input = input;
    thread_pool_run(tp, record, s);
    for (int i = 0; i < n; i++) {
        assert_int_equal(s->calls[i], 1);
        assert_int_equal(s->nth_seen[i], n);
        assert_int_equal(s->echoed[i], input);
    }
    for (int i = n; i < MAX_T; i++)
        assert_int_equal(s->calls[i], 0);
}

static void create_rejects_sizes_out_of_range(void **state)
{
    (void)state;
    sem_err err = {0};
    assert_null(thread_pool_create(0, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    assert_contains(err.detail, "outside");
    assert_null(thread_pool_create(-3, NULL));
    assert_null(thread_pool_create(THREAD_POOL_MAX_THREADS + 1, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    thread_pool_destroy(NULL);
}

static void a_pool_of_one_runs_on_the_caller(void **state)
{
    (void)state;
    thread_pool *tp = make(1);
    run_state s = {0};
    for (long r = 0; r < 100; r++)
        run_and_check(tp, &s, r);
    thread_pool_destroy(tp);
}

static void every_index_runs_exactly_once_per_run(void **state)
{
    (void)state;
    for (int n = 2; n <= 5; n++) {
        thread_pool *tp = make(n);
        run_state s = {0};
        for (long r = 0; r < 5000; r++)
            run_and_check(tp, &s, r * 7 + n);
        thread_pool_destroy(tp);
    }
}

/* Workers that sleep in the kernel (idle longer than the spin budget) and a
 * caller that sleeps (workers slower than the budget) both wake up. */
static void sleeping_workers_and_caller_wake_up(void **state)
{
    (void)state;
    thread_pool *tp = make(3);
    run_state s = {0};
    long spin_us = THREAD_POOL_SPIN_NS / 1000;
    for (long r = 0; r < 20; r++) {
        usleep((useconds_t)(spin_us * 3)); /* workers are asleep now */
        s.sleep_us_workers = (r % 2) ? (int)(spin_us * 3) : 0;
        run_and_check(tp, &s, r);
    }
    thread_pool_destroy(tp);
}

/* Threads accumulate into a shared atomic; the caller sees the full sum
 * after each run, so no thread's work is still in flight. */
typedef struct sum_state {
    _Atomic long sum;
    long per_thread;
} sum_state;

static void add_work(void *arg, int ith, int nth)
{
    sum_state *s = arg;
    (void)nth;
    for (long i = 0; i < s->per_thread; i++)
        atomic_fetch_add_explicit(&s->sum, ith + 1, memory_order_relaxed);
}

static void run_returns_after_all_work_is_done(void **state)
{
    (void)state;
    thread_pool *tp = make(4);
    sum_state s;
    s.per_thread = 100;
    for (int r = 0; r < 500; r++) {
        atomic_store(&s.sum, 0);
        thread_pool_run(tp, add_work, &s);
        assert_int_equal(atomic_load(&s.sum), s.per_thread * (1 + 2 + 3 + 4));
    }
    thread_pool_destroy(tp);
}

static void create_destroy_loops_leak_and_hang_nothing(void **state)
{
    (void)state;
    run_state s = {0};
    for (int i = 0; i < 200; i++) {
        thread_pool *tp = make(1 + i % 5);
        for (int r = 0; r < i % 3; r++)
            run_and_check(tp, &s, r);
        thread_pool_destroy(tp); /* some never ran, some destroyed right after a run */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_rejects_sizes_out_of_range),
        cmocka_unit_test(a_pool_of_one_runs_on_the_caller),
        cmocka_unit_test(every_index_runs_exactly_once_per_run),
        cmocka_unit_test(sleeping_workers_and_caller_wake_up),
        cmocka_unit_test(run_returns_after_all_work_is_done),
        cmocka_unit_test(create_destroy_loops_leak_and_hang_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
