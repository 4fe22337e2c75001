/*
 * bench_shared.c - `semantic bench --shared P,S,A`: what shared memory
 * saves when A agents of one namespace start with the same P tokens and
 * add S of their own.
 *
 *   blocks   pool blocks in use once all A agents answered, against the
 *            blocks of one prefix plus A suffixes (the ideal) and against
 *            A unshared agents;
 *   ttft     the first agent's first request, the prefix alone (cold: it
 *            computes everything), its second, which adds its S tokens
 *            (hot: the prefix is its own memory), and agents 2..A on
 *            their first request (the prefix is shared): the last two
 *            compute the same number of tokens;
 *   disk     bytes in the cache folder after agent 1 alone, then after all
 *            A, against one agent's bytes plus A - 1 suffixes;
 *   fork     the time of agent_store fork of a fork-size agent (the
 *            caller's wall time, engine round trip included) and the
 *            blocks it allocated.
 *
 * Every run uses a fresh cache folder under --cache-dir (default
 * var/bench-cache), named in the report.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/deadline.h"
#include "app/engine.h"
#include "bench_shared.h"
#include "cli.h"
#include "serving_stack.h"

typedef struct shared_run {
    uint32_t blocks_used, blocks_one, blocks_ideal;
    double cold_ms, hot_ms, shared_ms[64];
    uint32_t shared_cached[64];
    uint64_t disk_one, disk_all, disk_ideal;
    double fork_ms;
    uint32_t fork_tokens, fork_blocks;
} shared_run;

/* Agent i's prompt: the common prefix, then tokens of its own. */
static void prompt_of(int32_t *p, uint32_t prefix, uint32_t n, uint32_t agent, uint32_t vocab)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t salt = i < prefix ? 0 : agent * 104729u + 1;
        p[i] = (int32_t)((i * 7919u + salt + 13u) % (vocab - 4) + 3);
    }
}

sem_status bench_agent_ttft(serving_stack *st, const char *id, const int32_t *p, uint32_t n,
                            double *ttft, uint32_t *cached, sem_err *err)
{
    generation_port gp = engine_generation_port(st->e);
    gen_params q = {.agent_id = id, .prompt = p, .n_prompt = n, .max_tokens = 1};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    sem_status s = gp.ops->submit(gp.self, &q, &r, err);
    if (s != SEM_OK)
        return s;
    char buf[256];
    size_t got;
    while (!gp.ops->read(gp.self, r, buf, sizeof buf, &got, -1)) {
    }
    gen_result res = gp.ops->result(gp.self, r);
    gp.ops->release(gp.self, r);
    if (res.finish == GEN_ERROR) {
        *err = res.error;
        return err->status;
    }
    *ttft = res.ttft_ms;
    if (cached)
        *cached = res.cached_tokens;
    return SEM_OK;
}

/* Waits until every save and load is applied: pool figures are final. */
static void settle(serving_stack *st)
{
    for (int i = 0; i < 60000 && engine_get_stats(st->e).io_in_flight > 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
}

static uint32_t layers_blocks(const serving_stack *st, uint32_t tokens)
{
    const cache_spec *cs = block_pool_spec(st->pool);
    return (uint32_t)cache_spec_total_blocks_for(cs, tokens);
}

static sem_status run_agents(serving_stack *st, uint32_t P, uint32_t S, uint32_t A,
                             uint32_t vocab, shared_run *out, sem_err *err)
{
    int32_t *p = malloc((P + S) * sizeof *p);
    if (!p)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    sem_status s = SEM_OK;
    char id[32];
    for (uint32_t a = 0; s == SEM_OK && a < A; a++) {
        prompt_of(p, P, P + S, a, vocab);
        snprintf(id, sizeof id, "bench.agent%u", a);
        if (a == 0) {
            s = bench_agent_ttft(st, id, p, P, &out->cold_ms, NULL, err);
            if (s == SEM_OK)
                s = bench_agent_ttft(st, id, p, P + S, &out->hot_ms, NULL, err);
            settle(st);
            out->blocks_one = block_pool_used(st->pool);
        } else {
            s = bench_agent_ttft(st, id, p, P + S, &out->shared_ms[a], &out->shared_cached[a],
                                 err);
        }
    }
    free(p);
    settle(st);
    out->blocks_used = block_pool_used(st->pool);
    /* One prefix, then every agent's own blocks from the first block its
     * suffix touches. */
    uint32_t bt = block_pool_spec(st->pool)->block_tokens;
    uint32_t own = layers_blocks(st, P + S) - layers_blocks(st, P / bt * bt);
    out->blocks_ideal = layers_blocks(st, P) + A * own;
    return s;
}

static sem_status run_fork(serving_stack *st, uint32_t F, uint32_t vocab, shared_run *out,
                           sem_err *err)
{
    int32_t *p = malloc(F * sizeof *p);
    if (!p)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    prompt_of(p, F, F, 999, vocab);
    double ttft;
    sem_status s = bench_agent_ttft(st, "bench.parent", p, F, &ttft, NULL, err);
    free(p);
    if (s != SEM_OK)
        return s;
    settle(st);
    agent_store as = engine_agent_store(st->e);
    uint32_t before = block_pool_used(st->pool);
    agent_info child;
    double t0 = deadline_now_ms();
    s = as.ops->fork(as.self, "bench.parent", "bench.child", AGENT_FORK_ALL, &child, err);
    out->fork_ms = deadline_now_ms() - t0;
    out->fork_blocks = block_pool_used(st->pool) - before;
    out->fork_tokens = child.tokens;
    return s;
}

static sem_status one_run(const serving_stack_opts *base, const char *dir, uint32_t P, uint32_t S,
                          uint32_t A, uint32_t F, uint32_t vocab, shared_run *out, sem_err *err)
{
    serving_stack_opts so = *base;
    so.cache_dir = dir;
    serving_stack st;
    memset(out, 0, sizeof *out);
    /* Agent 1 alone on disk, then all of them. */
    sem_status s = serving_stack_open(&st, &so, err);
    if (s != SEM_OK)
        return s;
    int32_t *p = malloc((P + S) * sizeof *p);
    double ttft;
    prompt_of(p, P, P + S, 0, vocab);
    s = p ? bench_agent_ttft(&st, "bench.alone", p, P + S, &ttft, NULL, err)
          : sem_err_set(err, SEM_ENOMEM, "out of memory");
    free(p);
    serving_stack_close(&st, 60000);
    if (s != SEM_OK)
        return s;
    if ((s = serving_stack_open(&st, &so, err)) != SEM_OK)
        return s;
    out->disk_one = st.warm.ops->disk_bytes(st.warm.self);
    agent_store as = engine_agent_store(st.e);
    as.ops->remove(as.self, "bench.alone", NULL);
    settle(&st);
    s = run_agents(&st, P, S, A, vocab, out, err);
    if (s == SEM_OK && F)
        s = run_fork(&st, F, vocab, out, err);
    if (s == SEM_OK)
        as.ops->remove(as.self, "bench.parent", NULL), as.ops->remove(as.self, "bench.child", NULL);
    serving_stack_close(&st, 60000);
    if (s != SEM_OK)
        return s;
    if ((s = serving_stack_open(&st, &so, err)) != SEM_OK)
        return s;
    out->disk_all = st.warm.ops->disk_bytes(st.warm.self);
    serving_stack_close(&st, 60000);
    out->disk_ideal = out->disk_one + (uint64_t)((double)out->disk_one * S / (P + S)) * (A - 1);
    return SEM_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, uint32_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const shared_run *r, uint32_t P, uint32_t S, uint32_t A, int json)
{
    double shared[64];
    uint32_t min_cached = UINT32_MAX;
    for (uint32_t a = 1; a < A; a++) {
        shared[a - 1] = r->shared_ms[a];
        min_cached = r->shared_cached[a] < min_cached ? r->shared_cached[a] : min_cached;
    }
    double lo = shared[0], hi = shared[0];
    for (uint32_t a = 0; a + 1 < A; a++) {
        lo = shared[a] < lo ? shared[a] : lo;
        hi = shared[a] > hi ? shared[a] : hi;
    }
    double med = median_of(shared, A - 1);
    printf("shared memory: %u agents, a %u-token common prefix, %u tokens each of their own\n",
           A, P, S);
    printf("  blocks   %u in use; one prefix + %u suffixes = %u (%.2fx); %u unshared agents "
           "= %u (%.2fx)\n", r->blocks_used, A, r->blocks_ideal,
           (double)r->blocks_used / r->blocks_ideal, A, A * r->blocks_one,
           (double)r->blocks_used / (A * r->blocks_one));
    printf("  ttft     agent 1: prefix cold %.1f ms, + %u tokens hot %.1f ms; agents 2..%u "
           "median %.1f ms (%.1f-%.1f), %.2fx hot, %u+ tokens cached each\n", r->cold_ms, S,
           r->hot_ms, A, med, lo, hi, med / r->hot_ms, min_cached);
    printf("  disk     one agent %llu bytes, all %llu bytes; one + %u suffixes = %llu (%.2fx)\n",
           (unsigned long long)r->disk_one, (unsigned long long)r->disk_all, A - 1,
           (unsigned long long)r->disk_ideal, (double)r->disk_all / r->disk_ideal);
    if (r->fork_tokens)
        printf("  fork     %u tokens in %.3f ms, %u blocks allocated\n", r->fork_tokens,
               r->fork_ms, r->fork_blocks);
    if (!json)
        return;
    json_t *o = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:I,s:I,s:I,s:i,"
                          "s:f,s:i}",
                          "agents", A, "prefix", P, "suffix", S, "blocks_used", r->blocks_used,
                          "blocks_ideal", r->blocks_ideal, "blocks_one", r->blocks_one,
                          "cold_ttft_ms", r->cold_ms, "hot_ttft_ms", r->hot_ms,
                          "shared_ttft_ms_median", med, "shared_ttft_ms_min", lo,
                          "shared_ttft_ms_max", hi, "shared_cached_min", min_cached,
                          "disk_one", (json_int_t)r->disk_one, "disk_all",
                          (json_int_t)r->disk_all, "disk_ideal", (json_int_t)r->disk_ideal,
                          "fork_tokens", r->fork_tokens, "fork_ms", r->fork_ms, "fork_blocks",
                          r->fork_blocks);
    char *d = json_dumps(json_pack("{s:o}", "shared", o), JSON_COMPACT);
    printf("%s\n", d);
    free(d);
}

int bench_shared(const session_opts *so, const char *spec, const char *cache_dir,
                 const char *cache_type, int json)
{
    unsigned P = 3000, S = 200, A = 8, F = 4096;
    if (spec && *spec && sscanf(spec, "%u,%u,%u,%u", &P, &S, &A, &F) < 3)
        return cli_usage_error("bench", "--shared: '%s' is not PREFIX,SUFFIX,AGENTS[,FORK]",
                               spec);
    if (P < 16 || S < 1 || A < 2 || A > 64 || P + S > 1u << 18 || F > 1u << 18)
        return cli_usage_error("bench", "--shared: prefix >= 16, suffix >= 1, 2..64 agents");
    sem_err err = {0};
    model *m = model_load(so->model_path, &err);
    if (!m)
        return cli_fail("bench", &err);
    uint32_t vocab = model_hparams_of(m)->n_vocab;
    /* A pool that holds every agent unshared and the fork's parent, so
     * nothing is reclaimed and the block counts compare like with like. */
    cache_spec cs = model_cache_spec(m, CACHE_SPEC_DEFAULT_BLOCK_TOKENS, CACHE_KV_F16);
    uint64_t per_token = cache_spec_total_blocks_for(&cs, 1024) * cache_spec_block_bytes(&cs) / 1024;
    model_free(m);
    serving_stack_opts st = serving_stack_defaults();
    st.pool_mb = ((uint64_t)(A + 1) * (P + S) + 2 * F + 4096) * per_token / (1 << 20) + 16;
    st.model_path = so->model_path;
    st.cache_type = cache_type;
    st.ctx = (P + S > F ? P + S : F) + 2;
    st.max_batch = 1;
    st.threads = so->threads;
    st.isa = so->isa;
    st.quiet = 1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/shared-%lld", cache_dir ? cache_dir : "var/bench-cache",
             (long long)deadline_wall_ms());
    shared_run r;
    if (one_run(&st, dir, P, S, A, F, vocab, &r, &err) != SEM_OK)
        return cli_fail("bench", &err);
    report(&r, P, S, A, json);
    printf("  (cache folder %s; remove it when done)\n", dir);
    return 0;
}
