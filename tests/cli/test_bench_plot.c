/* Specification of bench_plot.h: the SVG pictures of `semantic bench --plot`. */
#include "../test_util.h"

#include <math.h>
#include <unistd.h>

#include "cli/bench_plot.h"

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void bars_draw_one_rect_and_whisker_per_test(void **state)
{
    (void)state;
    plot_bar bars[2] = {{"pp512", 462.0, 461.2, 471.8}, {"tg128", 69.9, 63.5, 72.5}};
    strbuf svg = {0};
    sem_err err = {0};
    assert_int_equal(bench_plot_bars(&svg, "Speed", "model <a&b>", "tokens/s", bars, 2, &err),
                     SEM_OK);
    assert_true(strncmp(svg.data, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    assert_contains(svg.data, "viewBox=\"0 0 720 400\"");
    assert_contains(svg.data, "<title>Speed</title>");
    assert_contains(svg.data, "model &lt;a&amp;b&gt;"); /* text is escaped */
    assert_contains(svg.data, ">pp512</text>");
    assert_contains(svg.data, ">462</text>");
    assert_contains(svg.data, ">69.9</text>");
    /* Background + two bars; the axis reaches 500 (a 1-2-5 step above 471.8). */
    assert_int_equal(count(svg.data, "<rect"), 3);
    assert_int_equal(count(svg.data, "<path"), 2);
    assert_contains(svg.data, ">500</text>");
    assert_true(strstr(svg.data, "</svg>\n") == svg.data + svg.len - 7);
    strbuf_free(&svg);
}

static void lines_skip_missing_points_and_span_decades_on_a_log_axis(void **state)
{
    (void)state;
    double cold[3] = {1140, 2535, 16712}, hot[3] = {16, NAN, 31.3};
    const char *ticks[3] = {"512", "1024", "4096"};
    plot_series s[2] = {{"cold", cold}, {"hot", hot}};
    plot_lines p = {.title = "TTFT", .subtitle = "", .x_label = "tokens", .y_label = "ms",
                    .x_ticks = ticks, .n = 3, .series = s, .n_series = 2, .log_y = 1};
    strbuf svg = {0};
    sem_err err = {0};
    assert_int_equal(bench_plot_lines(&svg, &p, &err), SEM_OK);
    assert_int_equal(count(svg.data, "<polyline"), 2);
    assert_int_equal(count(svg.data, "<circle"), 5); /* the NaN has no point */
    /* Decades from 10 to 100000. */
    assert_contains(svg.data, ">10</text>");
    assert_contains(svg.data, ">100000</text>");
    assert_null(strstr(svg.data, ">1</text>"));
    assert_contains(svg.data, ">4096</text>");
    assert_contains(svg.data, ">hot</text>");
    assert_null(strstr(svg.data, "nan"));
    strbuf_free(&svg);
}

static void counts_out_of_range_are_refused_with_the_limit(void **state)
{
    (void)state;
    strbuf svg = {0};
    sem_err err = {0};
    assert_int_equal(bench_plot_bars(&svg, "t", "", "y", NULL, 0, &err), SEM_EINVAL);
    assert_contains(err.detail, "expected 1 to 64");
    double y[1] = {1};
    const char *ticks[1] = {"1"};
    plot_series s[1] = {{"a", y}};
    plot_lines p = {.title = "t", .subtitle = "", .x_label = "x", .y_label = "y",
                    .x_ticks = ticks, .n = 1, .series = s, .n_series = 5};
    assert_int_equal(bench_plot_lines(&svg, &p, &err), SEM_EINVAL);
    assert_contains(err.detail, "5 series");
    assert_null(svg.data);
}

static void writing_replaces_the_file_whole_or_names_the_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/sem-plot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/p.svg", dir);
    strbuf svg = {0};
    strbuf_puts(&svg, "<svg/>\n");
    sem_err err = {0};
    assert_int_equal(bench_plot_write(path, &svg, &err), SEM_OK);
    FILE *f = fopen(path, "r");
    char buf[16] = {0};
    assert_non_null(f);
    assert_true(fread(buf, 1, sizeof buf - 1, f) == 7);
    fclose(f);
    assert_string_equal(buf, "<svg/>\n");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* no temporary left */
    snprintf(path, sizeof path, "%s/missing/p.svg", dir);
    assert_int_equal(bench_plot_write(path, &svg, &err), SEM_EIO);
    assert_contains(err.detail, "missing/p.svg");
    svg.oom = 1;
    assert_int_equal(bench_plot_write(path, &svg, &err), SEM_ENOMEM);
    strbuf_free(&svg);
    snprintf(path, sizeof path, "%s/p.svg", dir);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bars_draw_one_rect_and_whisker_per_test),
        cmocka_unit_test(lines_skip_missing_points_and_span_decades_on_a_log_axis),
        cmocka_unit_test(counts_out_of_range_are_refused_with_the_limit),
        cmocka_unit_test(writing_replaces_the_file_whole_or_names_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
