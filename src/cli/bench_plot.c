/*
 * bench_plot.c - SVG from C: a frame (background, title, axes with "nice"
 * ticks), then bars or polylines mapped into the plot area.
 *
 * Linear axes start at 0 and end at a 1-2-5 step above the largest value;
 * logarithmic ones span whole decades around the values.
 */
#include "bench_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 720.0
#define H 400.0
#define LEFT 78.0
#define RIGHT 24.0
#define TOP 88.0
#define BOTTOM 64.0
#define PW (W - LEFT - RIGHT)
#define PH (H - TOP - BOTTOM)

static const char *const COLOURS[BENCH_PLOT_MAX_SERIES] = {"#1f5fbf", "#b34700", "#2f7d5b",
                                                           "#6b3fa0"};

/* s with &, <, > and " as XML entities. */
static void put_text(strbuf *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': strbuf_puts(out, "&amp;"); break;
        case '<': strbuf_puts(out, "&lt;"); break;
        case '>': strbuf_puts(out, "&gt;"); break;
        case '"': strbuf_puts(out, "&quot;"); break;
        default: strbuf_append(out, s, 1);
        }
    }
}

/* A short number for an axis or a label: 1234 -> "1234", 0.25 -> "0.25". */
static void put_num(strbuf *out, double v)
{
    if (fabs(v) >= 100 || v == floor(v))
        strbuf_printf(out, "%.0f", v);
    else if (fabs(v) >= 10)
        strbuf_printf(out, "%.1f", v);
    else
        strbuf_printf(out, "%.2g", v);
}

/* The axis: [lo, hi] and its tick step (log: ticks at each decade). */
typedef struct axis {
    double lo, hi, step;
    int log;
} axis;

static axis linear_axis(double max)
{
    if (!(max > 0))
        max = 1;
    double raw = max / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    return (axis){0, ceil(max / step) * step, step, 0};
}

static axis log_axis(double min, double max)
{
    if (!(min > 0))
        min = 1;
    if (!(max > min))
        max = min * 10;
    return (axis){pow(10, floor(log10(min))), pow(10, ceil(log10(max))), 10, 1};
}

static double y_of(const axis *a, double v)
{
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return TOP + PH - f * PH;
}

static void frame(strbuf *out, const char *title, const char *subtitle, const char *y_label,
                  const axis *a)
{
    strbuf_printf(out,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                  "width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                  "font-family=\"system-ui, -apple-system, Segoe UI, Roboto, sans-serif\">\n",
                  W, H, W, H);
    strbuf_puts(out, "<title>");
    put_text(out, title);
    strbuf_puts(out, "</title>\n");
    strbuf_printf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    strbuf_printf(out, "<text x=\"%.0f\" y=\"28\" font-size=\"17\" font-weight=\"600\" "
                       "fill=\"#1d1f21\">", LEFT - 54);
    put_text(out, title);
    strbuf_printf(out, "</text>\n<text x=\"%.0f\" y=\"48\" font-size=\"12\" fill=\"#55595e\">",
                  LEFT - 54);
    put_text(out, subtitle);
    strbuf_puts(out, "</text>\n");
    strbuf_printf(out, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\" "
                       "font-size=\"12\" fill=\"#55595e\">", TOP + PH / 2);
    put_text(out, y_label);
    strbuf_puts(out, "</text>\n");
    for (double v = a->lo; v <= a->hi * (1 + 1e-9); v = a->log ? v * a->step : v + a->step) {
        double y = y_of(a, v);
        strbuf_printf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                      LEFT, y, W - RIGHT, y, v == a->lo ? "#8a8f96" : "#e3e5e8");
        strbuf_printf(out, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                           "fill=\"#55595e\">", LEFT - 8, y + 4);
        put_num(out, v);
        strbuf_puts(out, "</text>\n");
    }
}

static sem_status check_count(const char *what, size_t n, size_t max, sem_err *err)
{
    if (n < 1 || n > max)
        return sem_err_set(err, SEM_EINVAL, "a plot of %zu %s; expected 1 to %zu", n, what, max);
    return SEM_OK;
}

sem_status bench_plot_bars(strbuf *out, const char *title, const char *subtitle,
                           const char *y_label, const plot_bar *bars, size_t n, sem_err *err)
{
    if (check_count("bars", n, BENCH_PLOT_MAX_POINTS, err) != SEM_OK)
        return err->status;
    double max = 0;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, fmax(bars[i].max, bars[i].median));
    axis a = linear_axis(max);
    frame(out, title, subtitle, y_label, &a);
    double slot = PW / (double)n, bw = fmin(120, slot * 0.55);
    for (size_t i = 0; i < n; i++) {
        const plot_bar *b = &bars[i];
        double cx = LEFT + slot * ((double)i + 0.5), y = y_of(&a, b->median);
        strbuf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"%s\"/>\n", cx - bw / 2, y, bw, TOP + PH - y,
                      COLOURS[i % BENCH_PLOT_MAX_SERIES]);
        double y0 = y_of(&a, b->min), y1 = y_of(&a, b->max);
        strbuf_printf(out, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh12M%.1f %.1fh12\" "
                           "stroke=\"#1d1f21\" stroke-width=\"1.5\" fill=\"none\"/>\n",
                      cx, y0, y1, cx - 6, y0, cx - 6, y1);
        strbuf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
                           "font-weight=\"600\" fill=\"#1d1f21\">", cx, fmin(y, y1) - 8);
        put_num(out, b->median);
        strbuf_printf(out, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                           "font-size=\"12\" fill=\"#1d1f21\">", cx, TOP + PH + 20);
        put_text(out, b->label);
        strbuf_puts(out, "</text>\n");
    }
    strbuf_puts(out, "</svg>\n");
    return SEM_OK;
}

static int has_point(const plot_lines *p, double v) { return isfinite(v) && (!p->log_y || v > 0); }

/* One row under the subtitle: a swatch and the name of each series. */
static void legend(strbuf *out, const plot_lines *p)
{
    double x = LEFT - 54;
    for (size_t s = 0; s < p->n_series; s++) {
        strbuf_printf(out, "<rect x=\"%.1f\" y=\"63\" width=\"14\" height=\"4\" fill=\"%s\"/>"
                           "<text x=\"%.1f\" y=\"69\" font-size=\"12\" fill=\"#1d1f21\">",
                      x, COLOURS[s], x + 19);
        put_text(out, p->series[s].name);
        strbuf_puts(out, "</text>\n");
        x += 19 + 7.0 * (double)strlen(p->series[s].name) + 22;
    }
}

sem_status bench_plot_lines(strbuf *out, const plot_lines *p, sem_err *err)
{
    if (check_count("points", p->n, BENCH_PLOT_MAX_POINTS, err) != SEM_OK ||
        check_count("series", p->n_series, BENCH_PLOT_MAX_SERIES, err) != SEM_OK)
        return err->status;
    double lo = INFINITY, hi = 0;
    for (size_t s = 0; s < p->n_series; s++)
        for (size_t i = 0; i < p->n; i++)
            if (has_point(p, p->series[s].y[i])) {
                lo = fmin(lo, p->series[s].y[i]);
                hi = fmax(hi, p->series[s].y[i]);
            }
    axis a = p->log_y ? log_axis(lo, hi) : linear_axis(hi);
    frame(out, p->title, p->subtitle, p->y_label, &a);
    double slot = PW / (double)p->n;
    for (size_t i = 0; i < p->n; i++) {
        strbuf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
                           "fill=\"#1d1f21\">", LEFT + slot * ((double)i + 0.5), TOP + PH + 20);
        put_text(out, p->x_ticks[i]);
        strbuf_puts(out, "</text>\n");
    }
    strbuf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
                       "fill=\"#55595e\">", LEFT + PW / 2, H - 14);
    put_text(out, p->x_label);
    strbuf_puts(out, "</text>\n");
    for (size_t s = 0; s < p->n_series; s++) {
        strbuf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" points=\"",
                      COLOURS[s]);
        for (size_t i = 0; i < p->n; i++)
            if (has_point(p, p->series[s].y[i]))
                strbuf_printf(out, "%.1f,%.1f ", LEFT + slot * ((double)i + 0.5),
                              y_of(&a, p->series[s].y[i]));
        strbuf_puts(out, "\"/>\n");
        for (size_t i = 0; i < p->n; i++)
            if (has_point(p, p->series[s].y[i]))
                strbuf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                              LEFT + slot * ((double)i + 0.5), y_of(&a, p->series[s].y[i]),
                              COLOURS[s]);
    }
    legend(out, p);
    strbuf_puts(out, "</svg>\n");
    return SEM_OK;
}

sem_status bench_plot_write(const char *path, const strbuf *svg, sem_err *err)
{
    if (svg->oom || !svg->data)
        return sem_err_set(err, SEM_ENOMEM, "--plot %s: out of memory for the picture", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return sem_err_set(err, SEM_EINVAL, "--plot: the path is longer than %zu bytes",
                           sizeof tmp - 5);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return sem_err_set(err, SEM_EIO, "--plot: cannot create '%s': %s", tmp, strerror(errno));
    int ok = fwrite(svg->data, 1, svg->len, f) == svg->len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return sem_err_set(err, SEM_EIO, "--plot: cannot write '%s': %s", path, strerror(e));
    }
    return SEM_OK;
}
