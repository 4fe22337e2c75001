/*
 * stats_window.c - one-second buckets in a ring, under one mutex.
 *
 * Bucket i holds second s where s % n == i; a bucket found holding an
 * older second is cleared before use. A second more than n before the
 * newest one recorded has left the window: nothing is added to it.
 */
#include "stats_window.h"

#include <math.h>
#include <stdlib.h>

#include "base/sem_mutex.h"

typedef struct bucket {
    int64_t second; /* -1: never used */
    uint32_t requests;
    uint32_t cold_n, returning_n;
    double cold_sum_ms, returning_sum_ms;
    double decode_tokens;
    uint32_t prompt_tokens, cached_tokens;
} bucket;

struct stats_window {
    sem_mutex lock;
    uint32_t n;
    int64_t latest; /* the newest second recorded (-1: none) */
    bucket *b; /* (n) */
};

sem_status stats_window_create(uint32_t seconds, stats_window **out, sem_err *err)
{
    *out = NULL;
    if (seconds < 1 || seconds > STATS_WINDOW_MAX_S)
        return sem_err_set(err, SEM_EINVAL, "stats window of %u seconds; expected 1 to %u",
                           seconds, STATS_WINDOW_MAX_S);
    stats_window *w = calloc(1, sizeof *w);
    bucket *b = w ? calloc(seconds, sizeof *b) : NULL;
    if (!b) {
        free(w);
        return sem_err_set(err, SEM_ENOMEM, "out of memory for a stats window of %u seconds",
                           seconds);
    }
    for (uint32_t i = 0; i < seconds; i++)
        b[i].second = -1;
    sem_mutex_init(&w->lock);
    w->n = seconds;
    w->latest = -1;
    w->b = b;
    *out = w;
    return SEM_OK;
}

void stats_window_free(stats_window *w)
{
    if (!w)
        return;
    sem_mutex_destroy(&w->lock);
    free(w->b);
    free(w);
}

uint32_t stats_window_seconds(const stats_window *w) { return w->n; }

static int64_t second_of(double ms) { return (int64_t)floor(ms / 1000.0); }

/* The bucket of second s, cleared if it held an older one; NULL when s
 * has left the window. Caller holds the lock. */
static bucket *bucket_for(stats_window *w, int64_t s)
{
    SEM_MUTEX_ASSERT_HELD(&w->lock);
    if (s < 0 || s <= w->latest - (int64_t)w->n)
        return NULL; /* older than the window */
    if (s > w->latest)
        w->latest = s;
    bucket *b = &w->b[s % w->n];
    if (b->second > s)
        return NULL;
    if (b->second < s)
        *b = (bucket){.second = s};
    return b;
}

/* Adds tokens over [from_ms, to_ms], each second its share of the span. */
static void spread_decode(stats_window *w, double from_ms, double to_ms, double tokens)
{
    int64_t first = second_of(from_ms), last = second_of(to_ms);
    if (last - first >= (int64_t)w->n)
        first = last - w->n + 1; /* only the seconds the window can hold */
    double span = to_ms - from_ms;
    for (int64_t s = first; s <= last; s++) {
        double lo = fmax(from_ms, (double)s * 1000.0), hi = fmin(to_ms, (double)(s + 1) * 1000.0);
        bucket *b = bucket_for(w, s);
        if (b && hi > lo)
            b->decode_tokens += tokens * (hi - lo) / span;
    }
}

void stats_window_record(stats_window *w, const stats_sample *s)
{
    sem_mutex_lock(&w->lock);
    bucket *b = bucket_for(w, second_of(s->end_ms));
    if (b) {
        b->requests++;
        b->prompt_tokens += s->prompt_tokens;
        b->cached_tokens += s->cached_tokens;
        if (s->ttft_ms > 0 && s->cached_tokens > 0) {
            b->returning_n++;
            b->returning_sum_ms += s->ttft_ms;
        } else if (s->ttft_ms > 0) {
            b->cold_n++;
            b->cold_sum_ms += s->ttft_ms;
        }
    }
    if (s->completion_tokens && s->decode_ms > 0)
        spread_decode(w, s->end_ms - s->decode_ms, s->end_ms, s->completion_tokens);
    else if (b)
        b->decode_tokens += s->completion_tokens;
    sem_mutex_unlock(&w->lock);
}

static stats_point point_of(const bucket *b)
{
    return (stats_point){
        .requests = b->requests,
        .ttft_cold_ms = b->cold_n ? b->cold_sum_ms / b->cold_n : 0,
        .ttft_returning_ms = b->returning_n ? b->returning_sum_ms / b->returning_n : 0,
        .decode_tokens = b->decode_tokens,
        .prompt_tokens = b->prompt_tokens,
        .cached_tokens = b->cached_tokens,
    };
}

size_t stats_window_read(stats_window *w, double now_ms, stats_point *out, size_t n)
{
    if (n > w->n)
        n = w->n;
    int64_t now_s = second_of(now_ms);
    sem_mutex_lock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        int64_t s = now_s - (int64_t)(n - 1 - i);
        const bucket *b = s >= 0 ? &w->b[s % w->n] : NULL;
        out[i] = b && b->second == s ? point_of(b) : (stats_point){0};
    }
    sem_mutex_unlock(&w->lock);
    return n;
}
