/*
 * bench_util.h - what the benchmark programs share: a monotonic clock and
 * the comparison for taking medians.
 */
#ifndef SEM_BENCH_UTIL_H
#define SEM_BENCH_UTIL_H

#include <time.h>

static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort comparison of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
