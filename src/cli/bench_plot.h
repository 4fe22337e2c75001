/*
 * bench_plot.h - `semantic bench --plot FILE.svg`: the benchmark that ran,
 * drawn as a standalone SVG file written from C (no plotting dependency).
 *
 * Two kinds of picture:
 *   bars   one bar per test (pp, tg), its median, with a min-max whisker
 *          (the plain pp/tg run);
 *   lines  one or more series over evenly spaced x categories, on a linear
 *          or a logarithmic y axis (the --parallel curve: tok/s by
 *          sequences; --memory: cold, hot and warm TTFT by context).
 *
 * The SVG is 720x400 user units with a viewBox (it scales), a white
 * background (readable on light and dark pages), system fonts, and a
 * <title> for screen readers. Text is XML-escaped.
 *
 * Threads: any; nothing shared. Ownership: the caller's strbuf receives
 * the document; a buffer that could not grow is reported by
 * bench_plot_write (out of memory), never written half.
 */
#ifndef SEM_CLI_BENCH_PLOT_H
#define SEM_CLI_BENCH_PLOT_H

#include <stddef.h>

#include "base/strbuf.h"
#include "domain/status.h"

#define BENCH_PLOT_MAX_POINTS 64
#define BENCH_PLOT_MAX_SERIES 4

typedef struct plot_bar {
    const char *label;        /* "pp512" */
    double median, min, max;
} plot_bar;

typedef struct plot_series {
    const char *name;
    const double *y;          /* (n) values; NaN or <= 0 on a log axis: no point */
} plot_series;

typedef struct plot_lines {
    const char *title, *subtitle;
    const char *x_label, *y_label;
    const char *const *x_ticks; /* (n) category labels, evenly spaced */
    size_t n;                   /* 1 .. BENCH_PLOT_MAX_POINTS */
    const plot_series *series;
    size_t n_series;            /* 1 .. BENCH_PLOT_MAX_SERIES */
    int log_y;
} plot_lines;

/* Appends an SVG of n bars (1 .. BENCH_PLOT_MAX_POINTS) to out;
 * SEM_EINVAL names a count out of range. */
sem_status bench_plot_bars(strbuf *out, const char *title, const char *subtitle,
                           const char *y_label, const plot_bar *bars, size_t n, sem_err *err);

/* Appends an SVG of p's series to out; SEM_EINVAL names a count out of range. */
sem_status bench_plot_lines(strbuf *out, const plot_lines *p, sem_err *err);

/* Writes svg to path (a temporary file beside it, then renamed, so a
 * reader never sees half a picture). SEM_EIO names the path and the
 * reason; SEM_ENOMEM when svg could not be built. */
sem_status bench_plot_write(const char *path, const strbuf *svg, sem_err *err);

#endif
