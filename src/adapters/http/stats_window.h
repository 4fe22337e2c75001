/*
 * stats_window.h - what the server did over the last few minutes, second
 * by second, for GET /v1/stats and the inspector's live charts.
 *
 * A ring of one-second buckets (at most STATS_WINDOW_MAX_S of them), fed
 * once per generation when it ends (http_generation.c): the request, its
 * time to first token (split by whether it came back to memory: cached
 * tokens > 0 is "returning", else "cold"), its prompt and cached tokens,
 * and its generated tokens. The generated tokens are spread evenly over
 * the seconds the decode took (first token to end), so a long request
 * draws a plateau rather than a spike in the second it ended. A bucket
 * whose second has passed out of the window is reused and cleared.
 *
 * Time is given by the caller (milliseconds on any clock that does not go
 * back, the same clock for every call), so tests drive it.
 *
 * Threads: any thread may record and read at once (one mutex, held for a
 * few hundred additions at most). Ownership: the reader's series are its
 * own arrays, filled by copy.
 */
#ifndef SEM_HTTP_STATS_WINDOW_H
#define SEM_HTTP_STATS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

#define STATS_WINDOW_MAX_S 3600u

typedef struct stats_window stats_window;

/* One finished generation. */
typedef struct stats_sample {
    double end_ms;              /* when it ended, on the window's clock */
    double ttft_ms;             /* submit to first token; 0: none (a prefill) */
    double decode_ms;           /* first token to end (0: no decode) */
    uint32_t prompt_tokens, cached_tokens, completion_tokens;
} stats_sample;

/* One second of the window, as read. Means are 0 when nothing was counted. */
typedef struct stats_point {
    uint32_t requests;
    double ttft_cold_ms, ttft_returning_ms; /* mean TTFT of the requests that ended */
    double decode_tokens;                   /* generated tokens decoded in that second */
    uint32_t prompt_tokens, cached_tokens;  /* of the requests that ended */
} stats_point;

/* A window of `seconds` one-second buckets, 1 .. STATS_WINDOW_MAX_S;
 * SEM_EINVAL names the value and the limit. */
sem_status stats_window_create(uint32_t seconds, stats_window **out, sem_err *err);
void stats_window_free(stats_window *w);

uint32_t stats_window_seconds(const stats_window *w);

void stats_window_record(stats_window *w, const stats_sample *s);

/*
 * The last `n` seconds up to and including the second of now_ms, oldest
 * first, into out[0 .. n-1]; n is at most the window's length (more is
 * clipped: returns how many were written).
 */
size_t stats_window_read(stats_window *w, double now_ms, stats_point *out, size_t n);

#endif
