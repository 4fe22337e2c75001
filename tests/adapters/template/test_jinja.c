/*
 * Specification of jinja.h, the template interpreter.
 *
 * 1. Constructs: tests/data/jinja/cases.json holds templates with the output
 *    Python's Jinja2 gives in HF's environment (gen_cases.py made it); every
 *    one must render identically here, and every case where Jinja2 fails
 *    must fail here too.
 * 2. Errors: syntax and runtime errors name the line and column and what
 *    went wrong; raise_exception's message comes through.
 * 3. Limits: recursion, loops, steps, output and memory are bounded; a
 *    template that exceeds one fails cleanly.
 * 4. Robustness: thousands of random mutations of real templates parse or
 *    fail, render or fail, and never crash or leak (run under ASan).
 */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/template/chat_template.h"
#include "adapters/template/jinja.h"

#define FIXED_NOW ((time_t)1736942400) /* 2025-01-15 12:00:00 UTC */

/* Renders src with a JSON context; returns the status, the output in *out. */
static sem_status try_render(const char *src, const char *ctx_json, const jinja_limits *lim, char **out,
                             size_t *out_len, sem_err *err)
{
    *out = NULL;
    jinja_template *t = jinja_parse(src, strlen(src), err);
    if (!t)
        return err->status;
    json_t *ctx = ctx_json ? json_loads(ctx_json, JSON_ALLOW_NUL, NULL) : NULL;
    if (ctx_json && !ctx)
        fail_msg("bad test context %s", ctx_json);
    jinja_render_opts o = {.now = FIXED_NOW};
    if (lim)
        o.limits = *lim;
    sem_status st = jinja_render(t, ctx, &o, out, out_len, err);
    json_decref(ctx);
    jinja_free(t);
    return st;
}

static void expect_output(const char *src, const char *ctx_json, const char *want)
{
    char *out;
    sem_err err = {0};
    sem_status st = try_render(src, ctx_json, NULL, &out, NULL, &err);
    if (st != SEM_OK)
        fail_msg("%s: %s", src, err.detail);
    if (strcmp(out, want) != 0)
        fail_msg("%s:\n  got  [%s]\n  want [%s]", src, out, want);
    free(out);
}

/* Fails unless rendering src fails with status st and a detail containing
 * each needle. */
static void expect_error(const char *src, const char *ctx_json, const jinja_limits *lim, sem_status st,
                         const char *needle1, const char *needle2)
{
    char *out;
    sem_err err = {0};
    sem_status got = try_render(src, ctx_json, lim, &out, NULL, &err);
    if (got != st)
        fail_msg("%.200s: status %s, want %s (%s)", src, sem_status_name(got), sem_status_name(st),
                 err.detail);
    assert_null(out);
    if (needle1)
        assert_contains(err.detail, needle1);
    if (needle2)
        assert_contains(err.detail, needle2);
}

/* ---------------------------------------------------------------- constructs vs Jinja2 */

static void constructs_render_as_jinja2_does(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *doc = json_load_file(SEM_TEST_DATA "/jinja/cases.json", 0, &jerr);
    if (!doc)
        fail_msg("cases.json: %s", jerr.text);
    json_t *cases = json_object_get(doc, "cases");
    int failures = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *src = json_string_value(json_object_get(c, "template"));
        const json_t *want = json_object_get(c, "expected");
        sem_err err = {0};
        jinja_template *t = jinja_parse(src, strlen(src), &err);
        char *out = NULL;
        size_t len = 0;
        sem_status st = err.status;
        if (t) {
            jinja_render_opts o = {.now = FIXED_NOW};
            st = jinja_render(t, json_object_get(c, "context"), &o, &out, &len, &err);
        }
        if (want && st != SEM_OK) {
            print_error("%s: failed: %s\n", name, err.detail);
            failures++;
        } else if (want && (len != json_string_length(want) || memcmp(out, json_string_value(want), len) != 0)) {
            print_error("%s:\n  got  [%s]\n  want [%s]\n", name, out, json_string_value(want));
            failures++;
        } else if (!want && st == SEM_OK) {
            print_error("%s: rendered [%s] but Jinja2 fails: %s\n", name, out,
                        json_string_value(json_object_get(c, "error")));
            failures++;
        } else if (!want && (err.detail[0] == '\0' || (st == SEM_EINVAL && !strstr(err.detail, "line")))) {
            print_error("%s: error without a location: [%s]\n", name, err.detail);
            failures++;
        }
        free(out);
        jinja_free(t);
    }
    json_decref(doc);
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------- errors */

static void syntax_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_error("{{ x", NULL, NULL, SEM_EINVAL, "line 1, column 1", "unterminated");
    expect_error("a\n{% if x %}\nfoo", NULL, NULL, SEM_EINVAL, "{% if %} at line 2, column 1", "{% endif %}");
    expect_error("{% for x in y %}{% if x %}{% endfor %}", NULL, NULL, SEM_EINVAL, "unexpected {% endfor %}",
                 NULL);
    expect_error("ok\n{# comment", NULL, NULL, SEM_EINVAL, "line 2", "unterminated comment");
    expect_error("{% raw %}x", NULL, NULL, SEM_EINVAL, "line 1", "endraw");
    expect_error("{{ 'abc }}", NULL, NULL, SEM_EINVAL, "unterminated string", NULL);
    expect_error("\n\n  {{ 1 + }}", NULL, NULL, SEM_EINVAL, "line 3, column 10", "expected an expression");
    expect_error("{{ x | nosuch }}", NULL, NULL, SEM_EINVAL, "unknown filter 'nosuch'", "column 8");
    expect_error("{{ x is nosuch }}", NULL, NULL, SEM_EINVAL, "unknown test 'nosuch'", NULL);
    expect_error("{% frobnicate %}", NULL, NULL, SEM_EINVAL, "unknown statement", "frobnicate");
    expect_error("{% endif %}", NULL, NULL, SEM_EINVAL, "no open block", NULL);
    expect_error("{% continue %}", NULL, NULL, SEM_EINVAL, "outside a for loop", NULL);
    expect_error("{% for x in y %}{% macro m() %}{% break %}{% endmacro %}{% endfor %}", NULL, NULL, SEM_EINVAL,
                 "outside a for loop", NULL);
    expect_error("{% set %}", NULL, NULL, SEM_EINVAL, "expected a variable name", NULL);
    expect_error("{% if (a %}x{% endif %}", NULL, NULL, SEM_EINVAL, "line 1", NULL);
    expect_error("{{ f(a=1, 2) }}", NULL, NULL, SEM_EINVAL, "positional argument after a keyword", NULL);
    expect_error("{{ 99999999999999999999 }}", NULL, NULL, SEM_EINVAL, "does not fit in 64 bits", NULL);
    expect_error("{{ '\\x4' }}", NULL, NULL, SEM_EINVAL, "malformed \\x escape", NULL);
    expect_error("{{ a ? b }}", NULL, NULL, SEM_EINVAL, "unexpected character '?'", NULL);

    sem_err err = {0};
    assert_null(jinja_parse(NULL, 0, &err));
    assert_int_equal(err.status, SEM_EINVAL);
}

static void unsupported_constructs_say_so(void **state)
{
    (void)state;
    expect_error("{% include 'other.jinja' %}", NULL, NULL, SEM_EUNSUPPORTED, "{% include %} is not supported",
                 NULL);
    expect_error("{% for x in y recursive %}{% endfor %}", NULL, NULL, SEM_EUNSUPPORTED, "recursive", NULL);
    expect_error("{% call m() %}x{% endcall %}", NULL, NULL, SEM_EUNSUPPORTED, "{% call %}", NULL);
    expect_error("{{ s | wordwrap(5) }}", NULL, NULL, SEM_EUNSUPPORTED, "'wordwrap' filter", NULL);
    expect_error("{{ f(*args) }}", NULL, NULL, SEM_EUNSUPPORTED, "*args", NULL);
}

static void runtime_errors_name_the_problem(void **state)
{
    (void)state;
    expect_error("\n\n\n  {{ missing.attr }}", NULL, NULL, SEM_EINVAL, "line 4, column", "'missing' is undefined");
    expect_error("{{ d.a.b.c }}", "{\"d\": {\"a\": {}}}", NULL, SEM_EINVAL, "'b' is undefined", NULL);
    expect_error("line one\n{{ raise_exception('Conversation roles must alternate') }}", NULL, NULL, SEM_EINVAL,
                 "line 2", "raise_exception: Conversation roles must alternate");
    expect_error("{{ 'a' + 1 }}", NULL, NULL, SEM_EINVAL, "unsupported operand types for +: 'str' and 'int'",
                 NULL);
    expect_error("{{ x + 1 }}", NULL, NULL, SEM_EINVAL, "'x' is undefined", NULL);
    expect_error("{{ 1 // 0 }}", NULL, NULL, SEM_EINVAL, "by zero", NULL);
    expect_error("{{ 9223372036854775807 + 1 }}", NULL, NULL, SEM_EINVAL, "integer overflow", NULL);
    expect_error("{{ [1][::0] }}", NULL, NULL, SEM_EINVAL, "slice step cannot be zero", NULL);
    expect_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}", NULL, NULL, SEM_EINVAL, "cannot unpack 3 values", NULL);
    expect_error("{{ none.items() }}", NULL, NULL, SEM_EINVAL, "'NoneType' object has no method 'items'", NULL);
    expect_error("{{ 'abc'.nosuch() }}", NULL, NULL, SEM_EINVAL, "'str' object has no method 'nosuch'", NULL);
    expect_error("{{ nosuchfunc() }}", NULL, NULL, SEM_EINVAL, "'nosuchfunc' is undefined and cannot be called",
                 NULL);
    expect_error("{{ zz | tojson }}", NULL, NULL, SEM_EINVAL, "tojson", "'zz' is undefined");
    expect_error("{{ namespace() | tojson }}", NULL, NULL, SEM_EINVAL, "not JSON serializable", NULL);
    expect_error("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", NULL, NULL, SEM_EINVAL, "no parameter 'b'", NULL);
    expect_error("{{ 'x' | trim(1, 2) }}", NULL, NULL, SEM_EINVAL, "trim takes at most 1 positional", NULL);
    expect_error("{{ 'x' | join(sep=',') }}", NULL, NULL, SEM_EINVAL, "unexpected keyword argument 'sep'", NULL);
    expect_error("{{ range(1, 2, 0) }}", NULL, NULL, SEM_EINVAL, "step must not be zero", NULL);
    expect_error("{{ [1].append(2) }}", NULL, NULL, SEM_EINVAL, "list.append() is not allowed", NULL);
    expect_error("{{ '%d' % 'x' }}", NULL, NULL, SEM_EINVAL, "%d needs a number", NULL);
    expect_error("{{ '%s %s' % ('a',) }}", NULL, NULL, SEM_EINVAL, "not enough arguments", NULL);

    /* Errors inside a macro say where it was called from. */
    expect_error("{% macro m() %}\n{{ zz.q }}{% endmacro %}\n\n{{ m() }}", NULL, NULL, SEM_EINVAL,
                 "in macro 'm' called at line 4", "template line 2");

    sem_err err = {0};
    jinja_template *t = jinja_parse("x", 1, &err);
    char *out;
    json_t *arr = json_array();
    assert_int_equal(jinja_render(t, arr, NULL, &out, NULL, &err), SEM_EINVAL);
    assert_contains(err.detail, "must be a JSON object");
    json_decref(arr);
    jinja_free(t);
}

/* ---------------------------------------------------------------- values */

static void strings_keep_their_bytes(void **state)
{
    (void)state;
    char *out;
    size_t len;
    sem_err err = {0};
    assert_int_equal(try_render("{{ s }}|{{ s | length }}", "{\"s\": \"a\\u0000b\"}", NULL, &out, &len, &err),
                     SEM_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "a\0b|3", 5);
    free(out);
    expect_output("{{ x }}", "{\"x\": 12345678901234}", "12345678901234");
    expect_output("{{ x }} {{ x | tojson }}", "{\"x\": 0.30000000000000004}", "0.30000000000000004 0.30000000000000004");
    expect_output("{{ x | tojson }}", "{\"x\": {\"z\": 1, \"a\": [true, null]}}", "{\"z\": 1, \"a\": [true, null]}");
    expect_output("", NULL, "");
    expect_output("{{ '' }}", "{}", "");
}

static void deep_values_do_not_overflow_the_stack(void **state)
{
    (void)state;
    const char *build = "{% set ns = namespace(x=[]) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}{% endfor %}";
    char src[512];
    snprintf(src, sizeof src, "%s{{ (ns.x | string)[:4] }}{{ ns.x == ns.x }}", build);
    expect_output(src, NULL, "[[[[False");
    snprintf(src, sizeof src, "%s{{ ns.x | tojson }}", build);
    expect_error(src, NULL, NULL, SEM_EINVAL, "nested deeper than", NULL);
}

/* ---------------------------------------------------------------- limits */

static void deep_nesting_is_refused_at_parse_time(void **state)
{
    (void)state;
    size_t n = 3000;
    char *src = malloc(2 * n + 16);
    size_t o = 0;
    o += (size_t)sprintf(src, "{{ ");
    for (size_t i = 0; i < n; i++)
        src[o++] = '(';
    src[o++] = '1';
    for (size_t i = 0; i < n; i++)
        src[o++] = ')';
    strcpy(src + o, " }}");
    expect_error(src, NULL, NULL, SEM_EINVAL, "nested deeper than", "line 1");

    /* A long operator chain is a deep tree too. */
    char *chain = malloc(8 * n + 16);
    o = (size_t)sprintf(chain, "{{ 1");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(chain + o, " + 1");
    strcpy(chain + o, " }}");
    expect_error(chain, NULL, NULL, SEM_EINVAL, "deeper than", NULL);

    /* Deeply nested blocks. */
    o = 0;
    for (size_t i = 0; i < 500; i++)
        o += (size_t)sprintf(chain + o, "{%% if true %%}");
    strcpy(chain + o, "x");
    expect_error(chain, NULL, NULL, SEM_EINVAL, "nested deeper than", NULL);

    /* A long elif chain is fine: it is not nesting. */
    o = (size_t)sprintf(chain, "{%% if x == 0 %%}0");
    for (size_t i = 1; i < 300; i++)
        o += (size_t)sprintf(chain + o, "{%% elif x == %zu %%}%zu", i, i);
    strcpy(chain + o, "{% endif %}");
    expect_output(chain, "{\"x\": 299}", "299");
    free(chain);
    free(src);
}

static void runaway_templates_hit_a_limit(void **state)
{
    (void)state;
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, NULL, SEM_EINVAL, "macro 'r'",
                 "runaway recursion");
    expect_error("{% for i in range(1000000000) %}{% endfor %}", NULL, NULL, SEM_EINVAL, "exceeds the loop limit",
                 NULL);
    expect_error("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}"
                 "{% endfor %}{% endfor %}{% endfor %}",
                 NULL, NULL, SEM_EINVAL, "loops ran more than 1000000 iterations", NULL);

    jinja_limits lim = {.max_steps = 10000};
    expect_error("{% for i in range(100000) %}{{ i }}{% endfor %}", NULL, &lim, SEM_EINVAL, "evaluation steps",
                 NULL);

    lim = (jinja_limits){.max_output_bytes = 100000};
    expect_error("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", NULL, &lim, SEM_EINVAL,
                 "output limit of 100000 bytes", NULL);
    expect_error("{{ 'x' * 1000000 }}", NULL, &lim, SEM_EINVAL, "output limit", NULL);

    lim = (jinja_limits){.max_memory_bytes = 8u << 20};
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 NULL, &lim, SEM_EINVAL, "memory limit", NULL);

    lim = (jinja_limits){.max_call_depth = 3};
    expect_error("{% macro r(n) %}{% if n %}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}", NULL, &lim,
                 SEM_EINVAL, "3 macro calls already active", NULL);
    expect_output("{% macro r(n) %}{% if n %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}", NULL, "321");
}

/* Large client data: dict lookups are indexed, so a loop that looks up
 * every key of a 200,000-key dict is linear; quadratic list scans run into
 * the step limit instead of running for minutes. */
static void large_inputs_stay_bounded(void **state)
{
    (void)state;
    json_t *d = json_object(), *l = json_array();
    char key[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(d, key, json_integer(i));
        json_array_append_new(l, json_integer(i));
    }
    json_t *ctx = json_pack("{s:o, s:o}", "d", d, "l", l);
    const char *src = "{% set ns = namespace(sum=0) %}{% for k in d %}{% set ns.sum = ns.sum + d[k] %}{% endfor %}"
                      "{{ ns.sum }} {{ d['k199999'] }} {{ d.k7 }} {{ 'k5' in d }} {{ 'zz' in d }}";
    jinja_template *t = jinja_parse(src, strlen(src), NULL);
    assert_non_null(t);
    char *out = NULL;
    sem_err err = {0};
    jinja_render_opts o = {.now = FIXED_NOW};
    if (jinja_render(t, ctx, &o, &out, NULL, &err) != SEM_OK)
        fail_msg("%s", err.detail);
    assert_string_equal(out, "19999900000 199999 7 True False");
    free(out);
    jinja_free(t);

    src = "{% for x in l %}{% if x in l %}{% endif %}{% endfor %}";
    t = jinja_parse(src, strlen(src), NULL);
    assert_int_equal(jinja_render(t, ctx, &o, &out, NULL, &err), SEM_EINVAL);
    assert_contains(err.detail, "evaluation steps");
    jinja_free(t);
    json_decref(ctx);

    /* The index agrees with ==: 1, 1.0 and True are one key; order is kept. */
    expect_output("{% set d = {0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e', 5: 'f', 6: 'g', 7: 'h', 8: 'i', 9: 'j',"
                  " 10: 'k', 11: 'l', 12: 'm', 13: 'n', 14: 'o', 15: 'p', 16: 'q', 17: 'r', 1.0: 'B', true: 'T'} %}"
                  "{{ d[1] }}{{ d[1.0] }}{{ d[true] }}{{ d | length }}{{ d[17] }}{{ (d | list)[:3] }}{{ d[99] is defined }}",
                  NULL, "TTT18r[0, 1, 2]False");
}

/* ---------------------------------------------------------------- robustness */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *const FRAGMENTS[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".", ",",
    ":", "if ", "for ", "endfor", "endif", "else", "elif ", " in ", "not ", "loop.", "messages", "~", "*",
    "**", "//", "%", "\\", "\n", " is ", "set ", "macro ", "endmacro", "raw", "endraw", "0", "-1", "1e308",
    "namespace(", "range(", "9223372036854775807", "[::-1]", "| tojson", "| trim", ".split(", "loop.cycle(",
    "raise_exception(", "ns.", "=", "==", " and ", " or ", "none", "true", "\xff", "\xc3", "{%- ", " -%}",
};

static size_t fuzz_rand(uint64_t *st, size_t bound) { return bound ? (size_t)(test_rand(st) % bound) : 0; }

/* One random edit of buf (len bytes, capacity cap). */
static size_t mutate(char *buf, size_t len, size_t cap, uint64_t *st)
{
    size_t pos = fuzz_rand(st, len + 1);
    switch (fuzz_rand(st, 4)) {
    case 0: { /* delete a span */
        size_t n = 1 + fuzz_rand(st, 12);
        if (pos + n > len)
            n = len - pos;
        memmove(buf + pos, buf + pos + n, len - pos - n);
        return len - n;
    }
    case 1: { /* insert a fragment */
        const char *f = FRAGMENTS[fuzz_rand(st, sizeof FRAGMENTS / sizeof *FRAGMENTS)];
        size_t n = strlen(f);
        if (len + n >= cap)
            return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        memcpy(buf + pos, f, n);
        return len + n;
    }
    case 2: { /* duplicate a span */
        size_t n = 1 + fuzz_rand(st, 40);
        if (pos + n > len)
            n = len - pos;
        if (len + n >= cap)
            return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        return len + n;
    }
    default: /* overwrite a byte */
        if (pos < len)
            buf[pos] = (char)(' ' + fuzz_rand(st, 95));
        return len;
    }
}

static void random_mutations_never_crash(void **state)
{
    (void)state;
    static const char *const stems[] = {
        "meta-llama-Llama-3.1-8B-Instruct", "Qwen-Qwen3-0.6B", "google-gemma-3-it",
        "mistralai-Mistral-Nemo-Instruct-2407", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
        "HuggingFaceTB-SmolLM3-3B", "openai-gpt-oss-120b", "microsoft-Phi-3.5-mini-instruct",
    };
    json_t *ctx = json_loads(
        "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"u\"},"
        " {\"role\": \"assistant\", \"content\": \"a</think>b\", \"tool_calls\": [{\"id\": \"abcdefghi\","
        " \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}]},"
        " {\"role\": \"tool\", \"content\": \"r\"}],"
        " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\","
        " \"parameters\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"}}}}}],"
        " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}",
        0, NULL);
    assert_non_null(ctx);
    jinja_render_opts o = {.now = FIXED_NOW,
                           .limits = {.max_steps = 200000, .max_loop_iterations = 20000,
                                      .max_output_bytes = 1u << 20, .max_memory_bytes = 16u << 20}};
    uint64_t st = 0x9E3779B97F4A7C15ull;
    int parsed = 0, rendered = 0, total = 0;
    for (size_t s = 0; s < sizeof stems / sizeof *stems; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stems[s]);
        size_t len = 0;
        char *orig = slurp(path, &len);
        assert_non_null(orig);
        size_t cap = len * 2 + 1024;
        char *buf = malloc(cap);
        for (int iter = 0; iter < 150; iter++) {
            memcpy(buf, orig, len);
            size_t n = len;
            int edits = 1 + (int)fuzz_rand(&st, 4);
            for (int e = 0; e < edits; e++)
                n = mutate(buf, n, cap, &st);
            sem_err err = {0};
            total++;
            jinja_template *t = jinja_parse(buf, n, &err);
            if (!t) {
                assert_true(err.status != SEM_OK && err.detail[0] != '\0');
                continue;
            }
            parsed++;
            char *out = NULL;
            sem_status rs = jinja_render(t, ctx, &o, &out, NULL, &err);
            if (rs == SEM_OK) {
                rendered++;
                assert_non_null(out);
            } else {
                assert_null(out);
                assert_true(err.detail[0] != '\0');
            }
            free(out);
            jinja_free(t);
        }
        free(buf);
        free(orig);
    }
    json_decref(ctx);
    print_message("fuzz: %d mutants, %d parsed, %d rendered\n", total, parsed, rendered);
    assert_true(parsed > 0 && rendered > 0);
}

/* Arbitrary bytes as a template: parse or fail, never crash. */
static void random_bytes_never_crash(void **state)
{
    (void)state;
    uint64_t st = 12345;
    char buf[256];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = fuzz_rand(&st, sizeof buf);
        for (size_t i = 0; i < n; i++) {
            size_t pick = fuzz_rand(&st, 8);
            if (pick < 3)
                buf[i] = "{}%#-+'\"()[]|.\n "[fuzz_rand(&st, 17)];
            else
                buf[i] = (char)(1 + fuzz_rand(&st, 255));
        }
        sem_err err = {0};
        jinja_template *t = jinja_parse(buf, n, &err);
        if (t) {
            char *out = NULL;
            jinja_render_opts o = {.now = FIXED_NOW, .limits = {.max_steps = 100000}};
            (void)jinja_render(t, NULL, &o, &out, NULL, &err);
            free(out);
            jinja_free(t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constructs_render_as_jinja2_does),
        cmocka_unit_test(syntax_errors_name_line_and_column),
        cmocka_unit_test(unsupported_constructs_say_so),
        cmocka_unit_test(runtime_errors_name_the_problem),
        cmocka_unit_test(strings_keep_their_bytes),
        cmocka_unit_test(deep_values_do_not_overflow_the_stack),
        cmocka_unit_test(deep_nesting_is_refused_at_parse_time),
        cmocka_unit_test(runaway_templates_hit_a_limit),
        cmocka_unit_test(large_inputs_stay_bounded),
        cmocka_unit_test(random_mutations_never_crash),
        cmocka_unit_test(random_bytes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
