/*
 * cmd_bench.c - `semantic bench`: prompt processing and generation speed,
 * like llama-bench's pp512 / tg128.
 *
 *   pp: P tokens evaluated in one batch from an empty context;
 *   tg: N tokens evaluated one at a time from an empty context, or with
 *       -d D after D tokens already in it (computed once, not timed;
 *       llama-bench's tgN @ dD).
 *
 * Each test runs once to warm up, then R times; the median, min and max
 * tokens/s are reported.
 *
 * With --memory N1,N2,..., the time to first token of an agent's request of
 * N tokens is measured cold (nothing cached), hot (the same agent again:
 * its KV in the pool) and warm (a new engine, pool and store on the same
 * folder: the KV read from disk), each the median of R runs, with the
 * bytes per token of the agent's file in --cache-type.
 *
 * With --parallel N, tg runs N sequences through the batching engine at
 * once (each with a 4-token prompt, generating N_GEN tokens) and reports
 * the aggregate decode rate (all tokens / wall time) and the mean rate
 * each sequence saw.
 *
 * With --shared P,S,A[,F], A agents of one namespace start with the same P
 * tokens and add S of their own: pool blocks, time to first token, disk
 * bytes and the time of a fork of an F-token agent (bench_shared.c).
 *
 * With --plot FILE.svg, the run is also drawn (bench_plot.h): pp/tg as
 * bars, --parallel N as a curve of tok/s by sequences (measured at 1, 2,
 * 4, ... and N), --memory as cold, hot and warm TTFT by context.
 *
 * With --grammar json (or --grammar FILE.gbnf), sampled requests
 * (temperature 0.8, top-k 40, top-p 0.95, fixed seeds) of one sequence run
 * one after another until N tokens were decoded, without a grammar and then
 * constrained by it, R times each: the decode rates (first tokens
 * excluded), the engine's mean
 * time per token spent checking, masking and advancing the grammar state,
 * as a share of a decode step without grammar, how often a full mask was
 * needed, and the time to build the vocabulary's token trie (once per
 * engine).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/model/model_backend.h"
#include "base/deadline.h"
#include "app/engine.h"
#include "app/grammar.h"
#include "bench_plot.h"
#include "bench_shared.h"
#include "cli.h"
#include "session.h"
#include "serving_stack.h"

typedef struct stats {
    double median, min, max;
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stats summarize(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return (stats){med, v[0], v[n - 1]};
}

/* Evaluates n tokens in batches of `batch` from an empty sequence; returns ms. */
static sem_status timed_eval(session *s, const int32_t *toks, uint32_t n, uint32_t batch,
                             double *ms, sem_err *err)
{
    block_table_clear(s->seq);
    double t0 = deadline_now_ms();
    for (uint32_t done = 0; done < n; done += batch) {
        uint32_t k = n - done < batch ? n - done : batch;
        sem_status st = block_table_append(s->seq, toks + done, k, err);
        forward_seq fs = {.kv = s->seq, .n_new = k, .n_logits = 1, .logits = s->logits};
        if (st == SEM_OK)
            st = forward_run(s->fc, &fs, 1, err);
        if (st == SEM_OK)
            st = block_table_release_window(s->seq, err);
        if (st != SEM_OK)
            return st;
    }
    *ms = deadline_now_ms() - t0;
    return SEM_OK;
}

/* tg after `depth` tokens: the depth computed once in batches of `batch`,
 * then each repetition decodes n tokens one at a time and is cut back to
 * the depth. toks holds depth + n tokens. */
static sem_status measure_at_depth(session *s, const int32_t *toks, uint32_t depth, uint32_t n,
                                   uint32_t batch, int reps, stats *out, sem_err *err)
{
    double ms = 0, rate[64];
    sem_status st = timed_eval(s, toks, depth, batch, &ms, err);
    for (int r = -1; st == SEM_OK && r < reps; r++) { /* r -1: warm-up */
        double t0 = deadline_now_ms();
        for (uint32_t i = 0; st == SEM_OK && i < n; i++) {
            st = block_table_append(s->seq, toks + depth + i, 1, err);
            forward_seq fs = {.kv = s->seq, .n_new = 1, .n_logits = 1, .logits = s->logits};
            if (st == SEM_OK)
                st = forward_run(s->fc, &fs, 1, err);
        }
        if (st == SEM_OK && r >= 0)
            rate[r] = n / ((deadline_now_ms() - t0) / 1e3);
        if (st == SEM_OK && block_table_truncate(s->seq, depth, err) != SEM_OK)
            st = sem_err_set(err, SEM_EUNSUPPORTED,
                             "-d: this model's sliding-window layers cannot go back to depth %u",
                             depth);
    }
    if (st == SEM_OK)
        *out = summarize(rate, reps);
    return st;
}

static sem_status measure(session *s, const int32_t *toks, uint32_t n, uint32_t batch, int reps,
                          stats *out, sem_err *err)
{
    double rate[64], ms;
    sem_status st = timed_eval(s, toks, n, batch, &ms, err); /* warm-up */
    for (int r = 0; st == SEM_OK && r < reps; r++) {
        st = timed_eval(s, toks, n, batch, &ms, err);
        rate[r] = n / (ms / 1e3);
    }
    if (st == SEM_OK)
        *out = summarize(rate, reps);
    return st;
}

/* N sequences decoding together through the engine: one repetition. */
static sem_status parallel_once(session *s, uint32_t n_seq, uint32_t n_gen, double *aggregate,
                                double *per_seq, sem_err *err)
{
    forward_opts fo = {.n_threads = forward_threads(s->fc), .isa = forward_isa(s->fc),
                       .max_tokens = 16 + n_seq};
    model_backend *mb = model_backend_create(s->m, &fo, 0, err);
    if (!mb)
        return err->status;
    cache_spec spec = *block_pool_spec(block_table_pool(s->seq));
    uint64_t blocks = cache_spec_peak_blocks(&spec, 4 + n_gen, 16) * n_seq;
    block_pool *pool = block_pool_create(&spec, blocks * block_pool_block_bytes(block_table_pool(s->seq)), err);
    engine_opts o = engine_defaults();
    o.max_batch = n_seq;
    o.chunk = 16;
    engine *e = pool ? engine_create(model_backend_port(mb), pool, &o, err) : NULL;
    sem_status st = e ? SEM_OK : err->status;
    generation_port gp = e ? engine_generation_port(e) : (generation_port){0};
    gen_request *r[64] = {0};
    double t0 = deadline_now_ms(), rate_sum = 0;
    for (uint32_t i = 0; st == SEM_OK && i < n_seq; i++) {
        int32_t prompt[4] = {1, (int32_t)(10 + i), (int32_t)(20 + i), (int32_t)(30 + i)};
        gen_params p = {.prompt = prompt, .n_prompt = 4, .max_tokens = n_gen};
        p.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
        st = gp.ops->submit(gp.self, &p, &r[i], err);
    }
    char buf[4096];
    size_t got;
    for (uint32_t i = 0; st == SEM_OK && i < n_seq; i++)
        while (!gp.ops->read(gp.self, r[i], buf, sizeof buf, &got, -1)) {
        }
    double wall = deadline_now_ms() - t0;
    uint64_t tokens = 0;
    for (uint32_t i = 0; st == SEM_OK && i < n_seq; i++) {
        gen_result res = gp.ops->result(gp.self, r[i]);
        tokens += res.completion_tokens;
        if (res.total_ms > res.ttft_ms && res.completion_tokens > 1)
            rate_sum += (res.completion_tokens - 1) / ((res.total_ms - res.ttft_ms) / 1e3);
    }
    for (uint32_t i = 0; i < n_seq; i++)
        if (r[i])
            gp.ops->release(gp.self, r[i]);
    engine_destroy(e);
    block_pool_destroy(pool);
    model_backend_destroy(mb);
    *aggregate = tokens / (wall / 1e3);
    *per_seq = rate_sum / n_seq;
    return st;
}

static sem_status measure_parallel(session *s, uint32_t n_seq, uint32_t n_gen, int reps,
                                   stats *agg, stats *per, sem_err *err)
{
    double a[64], p[64];
    sem_status st = parallel_once(s, n_seq, n_gen, &a[0], &p[0], err); /* warm-up */
    for (int r = 0; st == SEM_OK && r < reps; r++)
        st = parallel_once(s, n_seq, n_gen, &a[r], &p[r], err);
    if (st == SEM_OK) {
        *agg = summarize(a, reps);
        *per = summarize(p, reps);
    }
    return st;
}

static json_t *stats_json(stats s);

/* ---------------------------------------------------------------- grammar */

/* JSON (any value inside a top-level object), as structured output uses. */
static const char JSON_GRAMMAR[] =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* "
    "\"\\\"\" ws\n"
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]+)? ([eE] [-+]? [0-9]{1,3})? ws\n"
    "ws     ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"; /* bounded, as llama.cpp's json.gbnf */

/* The grammar text named by --grammar: "json" or a file (malloc'd). */
static char *grammar_text(const char *name, sem_err *err)
{
    if (strcmp(name, "json") == 0) {
        char *t = strdup(JSON_GRAMMAR);
        if (!t)
            sem_err_set(err, SEM_ENOMEM, "out of memory");
        return t;
    }
    FILE *f = fopen(name, "rb");
    if (!f)
        return sem_err_set(err, SEM_EINVAL, "--grammar: cannot open '%s' (json or a file)", name),
               NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char buf[4096];
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return sem_err_set(err, SEM_ENOMEM, "out of memory"), NULL;
            }
            text = t;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(f);
    if (!text)
        return sem_err_set(err, SEM_EINVAL, "--grammar: '%s' is empty", name), NULL;
    text[len] = 0;
    return text;
}

static const char *port_piece(void *u, int32_t tok, size_t *len)
{
    model_port *mp = u;
    return mp->ops->piece(mp->self, tok, len);
}

static int port_is_eog(void *u, int32_t tok)
{
    model_port *mp = u;
    return mp->ops->is_eog(mp->self, tok);
}

/* Times building the token trie of the model's vocabulary, in ms. */
static sem_status trie_build_ms(session *s, double *ms, sem_err *err)
{
    forward_opts fo = {.n_threads = 1, .isa = forward_isa(s->fc), .max_tokens = 16};
    model_backend *mb = model_backend_create(s->m, &fo, 0, err);
    if (!mb)
        return err->status;
    model_port mp = model_backend_port(mb);
    double t0 = deadline_now_ms();
    grammar_vocab *v = grammar_vocab_new(s->n_vocab, port_piece, port_is_eog, &mp, err);
    *ms = deadline_now_ms() - t0;
    sem_status st = v ? SEM_OK : err->status;
    grammar_vocab_free(v);
    model_backend_destroy(mb);
    return st;
}

typedef struct grammar_row {
    stats free_rate, grammar_rate;  /* tok/s of one sequence, first token excluded */
    double check_ms;                /* mean grammar time per constrained token */
    double mask_share;              /* constrained tokens that needed a full mask */
    double tokens;                  /* mean tokens generated under the grammar */
    double trie_ms;
} grammar_row;

/*
 * Sampled requests of one sequence, one after another on one engine,
 * until n_gen tokens were decoded (a random-weight model often ends a
 * request early, with an end-of-generation token or a finished grammar):
 * the decode rate (first tokens excluded) and the engine's stats.
 */
static sem_status sequential_runs(session *s, const char *gtext, uint32_t n_gen, double *rate,
                                  engine_stats *es, sem_err *err)
{
    forward_opts fo = {.n_threads = forward_threads(s->fc), .isa = forward_isa(s->fc),
                       .max_tokens = 17};
    model_backend *mb = model_backend_create(s->m, &fo, 0, err);
    if (!mb)
        return err->status;
    cache_spec spec = *block_pool_spec(block_table_pool(s->seq));
    uint64_t blocks = cache_spec_peak_blocks(&spec, 4 + n_gen, 16) + 1;
    block_pool *pool = block_pool_create(
        &spec, blocks * block_pool_block_bytes(block_table_pool(s->seq)), err);
    engine_opts o = engine_defaults();
    o.max_batch = 1;
    o.chunk = 16;
    o.anon_keep = 0;
    engine *e = pool ? engine_create(model_backend_port(mb), pool, &o, err) : NULL;
    sem_status st = e ? SEM_OK : err->status;
    generation_port gp = e ? engine_generation_port(e) : (generation_port){0};
    uint64_t tokens = 0;
    double ms = 0;
    for (uint32_t i = 0; st == SEM_OK && tokens < n_gen && i < 256; i++) {
        int32_t prompt[4] = {1, (int32_t)(10 + i), (int32_t)(20 + i), (int32_t)(30 + i)};
        gen_params p = {.prompt = prompt, .n_prompt = 4, .max_tokens = n_gen,
                        .grammar = gtext};
        p.sampling = (gen_sampling){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f,
                                    .repeat_penalty = 1, .seed = 1234 + i};
        gen_request *r = NULL;
        if ((st = gp.ops->submit(gp.self, &p, &r, err)) != SEM_OK)
            break;
        char buf[4096];
        size_t got;
        while (!gp.ops->read(gp.self, r, buf, sizeof buf, &got, -1)) {
        }
        gen_result res = gp.ops->result(gp.self, r);
        gp.ops->release(gp.self, r);
        if (res.finish == GEN_ERROR) {
            *err = res.error;
            st = err->status;
        } else if (res.completion_tokens > 1) {
            tokens += res.completion_tokens - 1;
            ms += res.total_ms - res.ttft_ms;
        }
    }
    if (e)
        *es = engine_get_stats(e);
    engine_destroy(e);
    block_pool_destroy(pool);
    model_backend_destroy(mb);
    *rate = ms > 0 ? tokens / (ms / 1e3) : 0;
    return st;
}

static sem_status measure_grammar(session *s, const char *gtext, uint32_t n_gen, int reps,
                                  grammar_row *row, sem_err *err)
{
    sem_err perr = {0};
    grammar *g = grammar_parse(gtext, strlen(gtext), &perr);
    if (!g)
        return sem_err_set(err, SEM_EINVAL, "--grammar: %s", perr.detail);
    grammar_free(g);
    double fr[64], gr[64];
    engine_stats es = {0};
    uint64_t toks = 0, masks = 0;
    double ms = 0;
    sem_status st = trie_build_ms(s, &row->trie_ms, err);
    if (st == SEM_OK) /* warm-up */
        st = sequential_runs(s, NULL, n_gen, &fr[0], &es, err);
    for (int r = 0; st == SEM_OK && r < reps; r++) {
        st = sequential_runs(s, NULL, n_gen, &fr[r], &es, err);
        if (st == SEM_OK)
            st = sequential_runs(s, gtext, n_gen, &gr[r], &es, err);
        toks += es.grammar_tokens;
        masks += es.grammar_masks;
        ms += es.grammar_ms;
    }
    if (st != SEM_OK)
        return st;
    row->free_rate = summarize(fr, reps);
    row->grammar_rate = summarize(gr, reps);
    row->check_ms = toks ? ms / (double)toks : 0;
    row->mask_share = toks ? (double)masks / (double)toks : 0;
    row->tokens = (double)toks / reps;
    return SEM_OK;
}

static int bench_grammar(session *s, const session_opts *so, const char *name, uint32_t n_gen,
                         int reps, int json)
{
    sem_err err = {0};
    char *gtext = grammar_text(name, &err);
    if (!gtext)
        return cli_usage_fail("bench", &err);
    grammar_row row = {0};
    sem_status st = measure_grammar(s, gtext, n_gen, reps, &row, &err);
    free(gtext);
    if (st != SEM_OK)
        return cli_fail("bench", &err);
    double step_ms = row.free_rate.median > 0 ? 1e3 / row.free_rate.median : 0;
    double share = step_ms > 0 ? 100.0 * row.check_ms / step_ms : 0;
    printf("model %s (%s, %u tokens in the vocabulary), %d threads, %s kernels\n",
           so->model_path, model_arch_of(s->m)->name, s->n_vocab, forward_threads(s->fc),
           cpu_isa_name(forward_isa(s->fc)));
    printf("grammar %s: one sequence, %u sampled tokens, %d repetitions\n", name, n_gen, reps);
    printf("%-10s %10s %10s %10s\n", "", "tok/s", "min", "max");
    printf("%-10s %10.1f %10.1f %10.1f\n", "free", row.free_rate.median, row.free_rate.min,
           row.free_rate.max);
    printf("%-10s %10.1f %10.1f %10.1f   %.0f tokens per repetition\n", "grammar",
           row.grammar_rate.median, row.grammar_rate.min, row.grammar_rate.max, row.tokens);
    printf("check+mask %.3f ms per token (%.2f %% of a %.1f ms decode step); %.0f %% of tokens "
           "needed a full mask\n",
           row.check_ms, share, step_ms, 100.0 * row.mask_share);
    printf("token trie built in %.0f ms (once per engine)\n", row.trie_ms);
    if (json) {
        json_t *o = json_pack("{s:s,s:i,s:o,s:o,s:f,s:f,s:f,s:f,s:f}", "grammar", name,
                              "n_vocab", (int)s->n_vocab, "free_tok_s", stats_json(row.free_rate),
                              "grammar_tok_s", stats_json(row.grammar_rate),
                              "check_mask_ms_per_token", row.check_ms, "share_of_step_pct",
                              share, "mask_share", row.mask_share, "tokens", row.tokens,
                              "trie_ms", row.trie_ms);
        char *d = json_dumps(o, JSON_COMPACT);
        printf("%s\n", d);
        free(d);
        json_decref(o);
    }
    return 0;
}

typedef struct memory_row {
    uint32_t n;
    stats cold, hot, warm;
    double bytes_per_token;
} memory_row;

/* Cold, hot and warm for n tokens, `reps` times (a new agent each time). */
static sem_status memory_point(const serving_stack_opts *so, uint32_t n, int reps, uint32_t vocab,
                               memory_row *row, sem_err *err)
{
    double cold[64], hot[64], warm[64];
    int32_t *prompt = malloc(n * sizeof *prompt);
    if (!prompt)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    sem_status s = SEM_OK;
    row->n = n;
    for (int r = 0; s == SEM_OK && r < reps; r++) {
        char id[64];
        snprintf(id, sizeof id, "bench-%u-%d-%lld", n, r, (long long)deadline_now_ms());
        for (uint32_t i = 0; i < n; i++)
            prompt[i] = (int32_t)((i * 7919u + (uint32_t)r * 104729u + 13u) % vocab);
        serving_stack st;
        uint32_t cached = 0;
        if ((s = serving_stack_open(&st, so, err)) != SEM_OK)
            break;
        s = bench_agent_ttft(&st, id, prompt, n, &cold[r], &cached, err);
        if (s == SEM_OK)
            s = bench_agent_ttft(&st, id, prompt, n, &hot[r], &cached, err);
        serving_stack_close(&st, 60000); /* saves the agent */
        if (s != SEM_OK || (s = serving_stack_open(&st, so, err)) != SEM_OK)
            break;
        s = bench_agent_ttft(&st, id, prompt, n, &warm[r], &cached, err);
        if (s == SEM_OK && cached != n - 1)
            s = sem_err_set(err, SEM_EINTERNAL, "warm run reused %u of %u tokens", cached, n);
        agent_info ai;
        agent_store as = engine_agent_store(st.e);
        /* The folder holds this agent alone: its file and its chunks. */
        if (s == SEM_OK && as.ops->get(as.self, id, &ai, err) == SEM_OK)
            row->bytes_per_token = (double)st.warm.ops->disk_bytes(st.warm.self) / (n - 1);
        if (s == SEM_OK)
            as.ops->remove(as.self, id, NULL);
        serving_stack_close(&st, 60000);
    }
    free(prompt);
    if (s == SEM_OK) {
        row->cold = summarize(cold, reps);
        row->hot = summarize(hot, reps);
        row->warm = summarize(warm, reps);
    }
    return s;
}

/* A path's last component: the model's name in a picture's subtitle. */
static const char *file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Cold, hot and warm TTFT by context, on a log axis (they differ by
 * orders of magnitude). */
static sem_status plot_memory(const char *path, const memory_row *rows, int count,
                              const char *model_path, const char *cache_type, int reps,
                              sem_err *err)
{
    double y[3][16];
    char ticks[16][16];
    const char *tick[16];
    for (int i = 0; i < count; i++) {
        y[0][i] = rows[i].cold.median;
        y[1][i] = rows[i].hot.median;
        y[2][i] = rows[i].warm.median;
        snprintf(ticks[i], sizeof ticks[i], "%u", rows[i].n);
        tick[i] = ticks[i];
    }
    plot_series series[3] = {{"cold", y[0]}, {"hot (RAM)", y[1]}, {"warm (disk)", y[2]}};
    char sub[512];
    snprintf(sub, sizeof sub, "%s, KV on disk in %s, median of %d", file_name(model_path),
             cache_type ? cache_type : "q8_0", reps);
    plot_lines p = {.title = "Time to first token of an agent, by context",
                    .subtitle = sub, .x_label = "prompt tokens",
                    .y_label = "time to first token (ms, log scale)", .x_ticks = tick,
                    .n = (size_t)count, .series = series, .n_series = 3, .log_y = 1};
    strbuf svg = {0};
    sem_status st = bench_plot_lines(&svg, &p, err);
    if (st == SEM_OK)
        st = bench_plot_write(path, &svg, err);
    strbuf_free(&svg);
    return st;
}

static int bench_memory(const session_opts *so, const char *sizes, const char *cache_dir,
                        const char *cache_type, const char *kv_type, int reps, int json,
                        const char *plot)
{
    uint32_t n[16];
    int count = 0;
    sem_err err = {0};
    for (const char *p = sizes; *p && count < 16;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v < 2 || v > 1u << 20 || (*end && *end != ','))
            return cli_usage_error("bench", "--memory: '%s' is not a list of token counts "
                                            "(2..%u, comma separated)", sizes, 1u << 20);
        n[count++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    uint32_t max = 0;
    for (int i = 0; i < count; i++)
        max = n[i] > max ? n[i] : max;
    serving_stack_opts st = serving_stack_defaults();
    st.model_path = so->model_path;
    st.cache_dir = cache_dir ? cache_dir : "var/bench-cache";
    st.cache_type = cache_type;
    if (kv_type && cache_kv_type_parse(kv_type, &st.kv_type, &err) != SEM_OK)
        return cli_usage_fail("bench", &err);
    st.ctx = max + 1;
    st.max_batch = 1;
    st.threads = so->threads;
    st.isa = so->isa;
    st.quiet = 1;
    model *m = model_load(so->model_path, &err);
    if (!m)
        return cli_fail("bench", &err);
    uint32_t vocab = model_hparams_of(m)->n_vocab;
    model_free(m);
    memory_row rows[16];
    for (int i = 0; i < count; i++)
        if (memory_point(&st, n[i], reps, vocab, &rows[i], &err) != SEM_OK)
            return cli_fail("bench", &err);
    printf("agent memory, %s on disk, %d repetitions: time to first token in ms (median, "
           "min-max)\n", cache_type ? cache_type : "q8_0", reps);
    printf("%8s %22s %22s %22s %10s %12s\n", "tokens", "cold", "hot", "warm", "cold/warm",
           "bytes/token");
    for (int i = 0; i < count; i++) {
        memory_row *r = &rows[i];
        printf("%8u %8.1f (%5.0f-%5.0f) %8.2f (%5.1f-%5.1f) %8.1f (%5.1f-%5.1f) %9.0fx %12.0f\n",
               r->n, r->cold.median, r->cold.min, r->cold.max, r->hot.median, r->hot.min,
               r->hot.max, r->warm.median, r->warm.min, r->warm.max,
               r->cold.median / r->warm.median, r->bytes_per_token);
    }
    if (json) {
        json_t *a = json_array();
        for (int i = 0; i < count; i++)
            json_array_append_new(a, json_pack("{s:i,s:o,s:o,s:o,s:f}", "tokens", rows[i].n,
                                               "cold_ttft_ms", stats_json(rows[i].cold),
                                               "hot_ttft_ms", stats_json(rows[i].hot),
                                               "warm_ttft_ms", stats_json(rows[i].warm),
                                               "bytes_per_token", rows[i].bytes_per_token));
        char *d = json_dumps(json_pack("{s:o}", "memory", a), JSON_COMPACT);
        printf("%s\n", d);
        free(d);
    }
    if (plot && plot_memory(plot, rows, count, so->model_path, cache_type, reps, &err) != SEM_OK)
        return cli_fail("bench", &err);
    return 0;
}

static json_t *stats_json(stats s)
{
    return json_pack("{s:f,s:f,s:f}", "median", s.median, "min", s.min, "max", s.max);
}

static void usage(void)
{
    printf("usage: semantic bench -m MODEL [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS] "
                    "[--parallel N] [--isa NAME] [--json] [--plot FILE.svg]\n"
                    "       semantic bench -m MODEL --grammar json|FILE.gbnf [-n 128] [-r REPS] "
                    "[--json]\n"
                    "       semantic bench -m MODEL --memory N1,N2,... [--cache-dir DIR] "
                    "[--cache-type TYPE] [--kv-type TYPE] [-r REPS] [--json] [--plot FILE.svg]\n"
                    "       semantic bench -m MODEL --shared PREFIX,SUFFIX,AGENTS[,FORK] "
                    "[--cache-dir DIR] [--cache-type TYPE] [--json]\n");
}

enum { O_JSON = 256, O_ISA, O_PAR, O_MEM, O_CDIR, O_CTYPE, O_KVTYPE, O_GRAMMAR, O_SHARED, O_PLOT };

/* pp and tg as bars, median with a min-max whisker. */
static sem_status plot_speed(const char *path, const char *sub, uint32_t pp, uint32_t tg,
                             stats sp, stats sg, sem_err *err)
{
    char lp[32], lg[32];
    snprintf(lp, sizeof lp, "pp%u", pp);
    snprintf(lg, sizeof lg, "tg%u", tg);
    plot_bar bars[2];
    size_t n = 0;
    if (pp)
        bars[n++] = (plot_bar){lp, sp.median, sp.min, sp.max};
    if (tg)
        bars[n++] = (plot_bar){lg, sg.median, sg.min, sg.max};
    strbuf svg = {0};
    sem_status st = bench_plot_bars(&svg, "Prompt processing and generation", sub, "tokens/s",
                                    bars, n, err);
    if (st == SEM_OK)
        st = bench_plot_write(path, &svg, err);
    strbuf_free(&svg);
    return st;
}

/*
 * The batching curve: aggregate and per-sequence decode rates at 1, 2, 4,
 * ... sequences (each point the median of reps) and at n_seq (the run the
 * table printed: at_n and per_n), drawn as two lines.
 */
static sem_status plot_parallel(session *s, const char *path, const char *sub, uint32_t n_seq,
                                uint32_t n_gen, int reps, stats at_n, stats per_n, sem_err *err)
{
    double agg[BENCH_PLOT_MAX_POINTS], per[BENCH_PLOT_MAX_POINTS];
    char ticks[BENCH_PLOT_MAX_POINTS][12];
    const char *tick[BENCH_PLOT_MAX_POINTS];
    size_t n = 0;
    sem_status st = SEM_OK;
    for (uint32_t k = 1; st == SEM_OK; k = k * 2 < n_seq ? k * 2 : n_seq) {
        stats a = at_n, p = per_n;
        if (k < n_seq)
            st = measure_parallel(s, k, n_gen, reps, &a, &p, err);
        agg[n] = a.median;
        per[n] = p.median;
        snprintf(ticks[n], sizeof ticks[n], "%u", k);
        tick[n] = ticks[n];
        n++;
        if (k == n_seq)
            break;
    }
    if (st != SEM_OK)
        return st;
    plot_series series[2] = {{"all sequences", agg}, {"per sequence", per}};
    plot_lines p = {.title = "Decode rate by sequences generated together",
                    .subtitle = sub, .x_label = "sequences (--parallel)",
                    .y_label = "tokens/s", .x_ticks = tick, .n = n, .series = series,
                    .n_series = 2};
    strbuf svg = {0};
    st = bench_plot_lines(&svg, &p, err);
    if (st == SEM_OK)
        st = bench_plot_write(path, &svg, err);
    strbuf_free(&svg);
    return st;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"prompt", required_argument, 0, 'p'},
        {"n-gen", required_argument, 0, 'n'},   {"threads", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'},    {"json", no_argument, 0, O_JSON},
        {"isa", required_argument, 0, O_ISA},   {"parallel", required_argument, 0, O_PAR},
        {"memory", required_argument, 0, O_MEM}, {"cache-dir", required_argument, 0, O_CDIR},
        {"cache-type", required_argument, 0, O_CTYPE},
        {"kv-type", required_argument, 0, O_KVTYPE},
        {"grammar", required_argument, 0, O_GRAMMAR},
        {"shared", required_argument, 0, O_SHARED},
        {"plot", required_argument, 0, O_PLOT},
        {"depth", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    session_opts so = session_defaults();
    uint32_t pp = 512, tg = 128, threads = 0, reps = 5, parallel = 0, depth = 0;
    int json = 0, c;
    const char *memory = NULL, *cache_dir = NULL, *cache_type = NULL, *gname = NULL;
    const char *shared = NULL, *plot = NULL, *kv_type = NULL;
    sem_err err = {0};
    sem_status st = SEM_OK;
    optind = 1;
    opterr = 0;
    while (st == SEM_OK && (c = getopt_long(argc, argv, ":m:p:n:t:r:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': so.model_path = optarg; break;
        case 'p': st = cli_parse_u32("-p", optarg, 0, 1u << 16, &pp, &err); break;
        case 'n': st = cli_parse_u32("-n", optarg, 0, 1u << 16, &tg, &err); break;
        case 't': st = cli_parse_u32("-t", optarg, 1, 1024, &threads, &err); break;
        case 'r': st = cli_parse_u32("-r", optarg, 1, 64, &reps, &err); break;
        case 'd': st = cli_parse_u32("-d", optarg, 0, 1u << 20, &depth, &err); break;
        case O_JSON: json = 1; break;
        case O_ISA: so.isa = optarg; break;
        case O_PAR: st = cli_parse_u32("--parallel", optarg, 1, 64, &parallel, &err); break;
        case O_MEM: memory = optarg; break;
        case O_CDIR: cache_dir = optarg; break;
        case O_CTYPE: cache_type = optarg; break;
        case O_KVTYPE: kv_type = optarg; break;
        case O_GRAMMAR: gname = optarg; break;
        case O_SHARED: shared = optarg; break;
        case O_PLOT: plot = optarg; break;
        case 'h': usage(); return 0;
        default: return cli_option_error("bench", c, argc, argv);
        }
    }
    if (st != SEM_OK)
        return cli_usage_fail("bench", &err);
    if (!so.model_path)
        return cli_usage_error("bench", "-m MODEL is required");
    if (optind != argc)
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (pp == 0 && tg == 0 && !memory)
        return cli_usage_error("bench", "-p 0 and -n 0 leave nothing to measure");
    so.threads = (int)threads;
    if (plot && (shared || gname))
        return cli_usage_error("bench", "--plot draws pp/tg, --parallel and --memory runs; "
                                        "not --%s", shared ? "shared" : "grammar");
    if (plot && !*plot)
        return cli_usage_error("bench", "--plot needs a FILE.svg to write");
    if (shared)
        return bench_shared(&so, shared, cache_dir, cache_type, json);
    if (kv_type && !memory)
        return cli_usage_error("bench", "--kv-type goes with --memory");
    if (memory)
        return bench_memory(&so, memory, cache_dir, cache_type, kv_type, (int)reps, json, plot);
    if (gname && tg == 0)
        return cli_usage_error("bench", "--grammar needs -n N tokens to generate");
    if (depth && (tg == 0 || parallel || gname))
        return cli_usage_error("bench", "-d D goes with tg alone (-n N; not --parallel or "
                                        "--grammar)");
    so.ctx = (pp > depth + tg ? pp : depth + tg) + 1;
    so.chunk = pp > 0 ? pp : depth > 0 ? (depth < 512 ? depth : 512) : 1;
    if (gname) {
        so.ctx = tg + 8;
        so.chunk = 16; /* only the engine runs: no big prompt batch */
    }
    session s;
    if (session_open(&s, &so, &err) != SEM_OK)
        return cli_fail("bench", &err);
    if (gname) {
        int rc = bench_grammar(&s, &so, gname, tg, (int)reps, json);
        session_close(&s);
        return rc;
    }
    uint32_t n = pp > depth + tg ? pp : depth + tg;
    int32_t *toks = malloc(n * sizeof *toks);
    for (uint32_t i = 0; i < n; i++)
        toks[i] = (int32_t)((i * 7919u + 13u) % s.n_vocab);
    stats sp = {0}, sg = {0}, per = {0};
    if (pp)
        st = measure(&s, toks, pp, pp, (int)reps, &sp, &err);
    if (st == SEM_OK && tg && parallel)
        st = measure_parallel(&s, parallel, tg, (int)reps, &sg, &per, &err);
    else if (st == SEM_OK && tg && depth)
        st = measure_at_depth(&s, toks, depth, tg, so.chunk, (int)reps, &sg, &err);
    else if (st == SEM_OK && tg)
        st = measure(&s, toks, tg, 1, (int)reps, &sg, &err);
    free(toks);
    if (st == SEM_OK) {
        printf("model %s (%s), %d threads, %s kernels, %u repetitions\n", so.model_path,
               model_arch_of(s.m)->name, forward_threads(s.fc), cpu_isa_name(forward_isa(s.fc)),
               reps);
        printf("%-8s %10s %10s %10s\n", "test", "tok/s", "min", "max");
        if (pp)
            printf("pp%-6u %10.1f %10.1f %10.1f\n", pp, sp.median, sp.min, sp.max);
        if (tg && parallel) {
            printf("tg%-6u %10.1f %10.1f %10.1f   aggregate of %u sequences\n", tg, sg.median,
                   sg.min, sg.max, parallel);
            printf("%-8s %10.1f %10.1f %10.1f   per sequence\n", "", per.median, per.min,
                   per.max);
        } else if (tg && depth) {
            printf("tg%-6u %10.1f %10.1f %10.1f   after %u tokens (-d)\n", tg, sg.median, sg.min,
                   sg.max, depth);
        } else if (tg) {
            printf("tg%-6u %10.1f %10.1f %10.1f\n", tg, sg.median, sg.min, sg.max);
        }
        if (json) {
            json_t *o = json_object();
            if (pp)
                json_object_set_new(o, "pp_tok_s", stats_json(sp));
            if (tg && parallel) {
                json_object_set_new(o, "parallel", json_integer(parallel));
                json_object_set_new(o, "aggregate_tg_tok_s", stats_json(sg));
                json_object_set_new(o, "tg_tok_s", stats_json(per));
            } else if (tg) {
                json_object_set_new(o, "tg_tok_s", stats_json(sg));
                if (depth)
                    json_object_set_new(o, "depth", json_integer(depth));
            }
            char *d = json_dumps(o, JSON_COMPACT);
            printf("%s\n", d);
            free(d);
            json_decref(o);
        }
        char sub[512];
        snprintf(sub, sizeof sub, "%s (%s), %d threads, %s kernels, median of %u",
                 file_name(so.model_path),
                 model_arch_of(s.m)->name, forward_threads(s.fc),
                 cpu_isa_name(forward_isa(s.fc)), reps);
        if (plot && tg && parallel)
            st = plot_parallel(&s, plot, sub, parallel, tg, (int)reps, sg, per, &err);
        else if (plot)
            st = plot_speed(plot, sub, pp, tg, sp, sg, &err);
    }
    session_close(&s);
    return st == SEM_OK ? 0 : cli_fail("bench", &err);
}
