/*
 * Shared memory in the engine: agents of one namespace share the blocks of
 * a common prefix (and anonymous requests of that scope with them), never
 * across namespaces; forks share until either side writes and then
 * diverge; pins keep agents and cache breakpoints' prefixes through pool
 * pressure within their budget, and end. Shared KV gives exactly the tokens
 * a fresh computation gives (f16 pool, greedy sampling).
 */
#include "../test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "adapters/model/model_backend.h"
#include "app/engine.h"
#include "fake_warm_store.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"

typedef struct fixture {
    model *m;
    model_backend *mb;
    block_pool *pool;
    engine *e;
    generation_port gp;
    agent_store as;
    warm_store ws;
    fake_store fs;
} fixture;

static void open_fixture(fixture *f, uint32_t blocks, uint64_t pin_budget)
{
    memset(f, 0, sizeof *f);
    fake_init(&f->fs);
    sem_err err = {0};
    f->m = model_load(STORIES, &err);
    assert_non_null(f->m);
    forward_opts fo = {.n_threads = 2, .isa = cpu_isa_best(), .max_tokens = 64};
    f->mb = model_backend_create(f->m, &fo, 512, &err);
    assert_non_null(f->mb);
    cache_spec s = model_cache_spec(f->m, 16, CACHE_KV_F16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, &err);
    assert_non_null(f->pool);
    f->ws = (warm_store){&fake_ops, &f->fs};
    engine_opts o = engine_defaults();
    o.max_batch = 4;
    o.chunk = 32;
    o.save_delay_ms = 0;
    o.warm = &f->ws;
    o.pin_budget_blocks = pin_budget;
    f->e = engine_create(model_backend_port(f->mb), f->pool, &o, &err);
    if (!f->e)
        fail_msg("%s", err.detail);
    f->gp = engine_generation_port(f->e);
    f->as = engine_agent_store(f->e);
}

static void close_fixture(fixture *f)
{
    engine_destroy(f->e);
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    sem_err err = {0};
    assert_int_equal(block_pool_check(f->pool, &err), SEM_OK);
    block_pool_destroy(f->pool);
    model_backend_destroy(f->mb);
    model_free(f->m);
    fake_free(&f->fs);
}

typedef struct outcome {
    gen_result res;
    int32_t tokens[64];
    uint32_t n;
} outcome;

static outcome run(fixture *f, const char *scope, const char *agent, const int32_t *p,
                   uint32_t n, uint32_t max, const gen_pin *pins, uint32_t n_pins)
{
    gen_params q = {.agent_id = agent, .scope = scope, .prompt = p, .n_prompt = n,
                    .max_tokens = max, .n_pins = n_pins};
    if (n_pins)
        memcpy(q.pins, pins, n_pins * sizeof *pins);
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    sem_err err = {0};
    if (f->gp.ops->submit(f->gp.self, &q, &r, &err) != SEM_OK)
        fail_msg("submit: %s", err.detail);
    char buf[4096];
    size_t got;
    while (!f->gp.ops->read(f->gp.self, r, buf, sizeof buf, &got, -1)) {
    }
    outcome o = {.res = f->gp.ops->result(f->gp.self, r)};
    int32_t *t;
    assert_int_equal(f->gp.ops->tokens(f->gp.self, r, &t, &o.n, NULL), SEM_OK);
    memcpy(o.tokens, t, o.n * sizeof *t);
    free(t);
    f->gp.ops->release(f->gp.self, r);
    if (o.res.finish == GEN_ERROR)
        fail_msg("request failed: %s", o.res.error.detail);
    return o;
}

/* A prompt: a common prefix of `common` tokens, then tokens of its own. */
static void prompt_of(int32_t *p, uint32_t n, uint32_t common, uint32_t salt)
{
    p[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        p[i] = (int32_t)(3 + (i * 131 + (i < common ? 0 : salt * 977 + 1)) % 509);
}

static agent_info info(fixture *f, const char *key)
{
    agent_info ai;
    sem_err err = {0};
    if (f->as.ops->get(f->as.self, key, &ai, &err) != SEM_OK)
        fail_msg("get %s: %s", key, err.detail);
    return ai;
}

/* Waits until every save and load has been applied (pool figures final). */
static void settle(fixture *f)
{
    for (int i = 0; i < 10000 && engine_get_stats(f->e).io_in_flight > 0; i++)
        usleep(1000);
    assert_int_equal(engine_get_stats(f->e).io_in_flight, 0);
}

static void wait_saved(fixture *f, const char *key)
{
    for (int i = 0; i < 10000 && !fake_has(&f->fs, key); i++)
        usleep(1000);
    assert_true(fake_has(&f->fs, key));
}

/* ---------------------------------------------------------------- prefixes */

static void agents_of_one_namespace_share_a_common_prefix(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 1024, 0);
    enum { COMMON = 180, OWN = 20, N = COMMON + OWN };
    int32_t p[N];
    prompt_of(p, N, COMMON, 0);
    run(&f, NULL, "ns.first", p, N, 4, NULL, 0);
    uint32_t used_one = block_pool_used(f.pool);
    char key[32];
    for (uint32_t i = 1; i < 8; i++) {
        prompt_of(p, N, COMMON, i);
        snprintf(key, sizeof key, "ns.worker%u", i);
        outcome o = run(&f, NULL, key, p, N, 4, NULL, 0);
        assert_int_equal(o.res.cached_tokens, COMMON);
        /* Exactly what a fresh computation gives (another namespace). */
        snprintf(key, sizeof key, "other.fresh%u", i);
        outcome fresh = run(&f, NULL, key, p, N, 4, NULL, 0);
        assert_int_equal(fresh.res.cached_tokens, 0);
        assert_int_equal(o.n, fresh.n);
        assert_memory_equal(o.tokens, fresh.tokens, o.n * sizeof *o.tokens);
        snprintf(key, sizeof key, "other.fresh%u", i);
        assert_int_equal(f.as.ops->remove(f.as.self, key, NULL), SEM_OK);
    }
    /* Eight agents hold the prefix once: far less than eight copies. */
    settle(&f);
    engine_stats st = engine_get_stats(f.e);
    assert_true(st.pool_shared > 0);
    assert_true(st.hits_shared >= 7);
    uint32_t used = block_pool_used(f.pool);
    if (used >= 3 * used_one)
        fail_msg("8 agents use %u blocks, one %u", used, used_one);
    agent_info ai = info(&f, "ns.worker3");
    assert_true(ai.shared_tokens >= COMMON / 16 * 16);
    assert_true(ai.shared_tokens < ai.tokens);
    close_fixture(&f);
}

static void anonymous_requests_share_within_their_scope_only(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 1024, 0);
    int32_t p[120];
    prompt_of(p, 120, 100, 0);
    run(&f, NULL, "team.lead", p, 120, 4, NULL, 0);
    prompt_of(p, 120, 100, 5);
    outcome same = run(&f, "team", NULL, p, 120, 4, NULL, 0);
    assert_int_equal(same.res.cached_tokens, 100);
    outcome other = run(&f, "rival", NULL, p, 120, 4, NULL, 0);
    assert_int_equal(other.res.cached_tokens, 0);
    /* Less than a block in common is not worth a copy: nothing shared. */
    prompt_of(p, 120, 10, 6);
    outcome little = run(&f, NULL, "team.short", p, 120, 4, NULL, 0);
    assert_int_equal(little.res.cached_tokens, 0);
    close_fixture(&f);
}

/* Requests submitted together with a common start: one computes it, the
 * others wait for it and share it, the part of its last block too (the
 * start ends inside a block: 260 tokens are 16 blocks and 4). What they
 * generate is what each generates alone. */
static void requests_arriving_together_compute_their_start_once(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 1024, 0);
    enum { COMMON = 260, N = 300, AGENTS = 4, MAX = 4 };
    int32_t p[AGENTS][N];
    gen_request *r[AGENTS];
    for (uint32_t i = 0; i < AGENTS; i++) {
        prompt_of(p[i], N, COMMON, i);
        char key[32];
        snprintf(key, sizeof key, "burst.a%u", i);
        gen_params q = {.agent_id = key, .prompt = p[i], .n_prompt = N, .max_tokens = MAX};
        q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
        sem_err err = {0};
        if (f.gp.ops->submit(f.gp.self, &q, &r[i], &err) != SEM_OK)
            fail_msg("submit: %s", err.detail);
    }
    uint32_t cached = 0, n_out[AGENTS];
    int32_t out[AGENTS][MAX];
    for (uint32_t i = 0; i < AGENTS; i++) {
        char buf[256];
        size_t got;
        while (!f.gp.ops->read(f.gp.self, r[i], buf, sizeof buf, &got, -1)) {
        }
        gen_result res = f.gp.ops->result(f.gp.self, r[i]);
        assert_int_not_equal(res.finish, GEN_ERROR);
        cached += res.cached_tokens;
        int32_t *t;
        assert_int_equal(f.gp.ops->tokens(f.gp.self, r[i], &t, &n_out[i], NULL), SEM_OK);
        assert_int_equal(n_out[i], MAX);
        memcpy(out[i], t, MAX * sizeof *t);
        free(t);
        f.gp.ops->release(f.gp.self, r[i]);
    }
    /* Three of the four reused the whole common start. */
    assert_true(cached >= (AGENTS - 1) * COMMON);
    /* Each alone, in a namespace of its own: the same tokens. */
    for (uint32_t i = 0; i < AGENTS; i++) {
        char key[32];
        snprintf(key, sizeof key, "solo%u.a", i);
        outcome o = run(&f, NULL, key, p[i], N, MAX, NULL, 0);
        assert_int_equal(o.res.cached_tokens, 0);
        assert_int_equal(o.n, MAX);
        assert_memory_equal(o.tokens, out[i], MAX * sizeof(int32_t));
    }
    close_fixture(&f);
}

/* ---------------------------------------------------------------- forks */

static void a_fork_shares_until_either_side_writes(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 1024, 0);
    int32_t p[160];
    prompt_of(p, 100, 100, 0);
    outcome first = run(&f, NULL, "ns.parent", p, 100, 8, NULL, 0);
    uint32_t held = info(&f, "ns.parent").tokens;
    assert_true(held >= 100 + first.n - 1);
    uint32_t used = block_pool_used(f.pool);
    agent_info child;
    sem_err err = {0};
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "ns.child", AGENT_FORK_ALL, &child,
                                    &err), SEM_OK);
    assert_int_equal(block_pool_used(f.pool), used); /* no block allocated */
    assert_int_equal(child.tokens, held);
    assert_int_equal(child.shared_tokens, held);
    /* get() names who shares: the parent holds the child's whole blocks. */
    agent_info ci = info(&f, "ns.child");
    assert_int_equal(ci.n_sharers, 1);
    assert_string_equal(ci.sharers[0].key, "ns.parent");
    assert_int_equal(ci.sharers[0].tokens, held);
    assert_int_equal(info(&f, "ns.parent").shared_tokens, held);
    assert_int_equal(engine_get_stats(f.e).forks, 1);
    /* Both continue the conversation their own way; each reuses all of it. */
    memcpy(p + 100, first.tokens, first.n * sizeof *p);
    uint32_t n = 100 + first.n;
    p[n] = 7;
    outcome c = run(&f, NULL, "ns.child", p, n + 1, 4, NULL, 0);
    assert_int_equal(c.res.cached_tokens, held);
    p[n] = 9;
    outcome a = run(&f, NULL, "ns.parent", p, n + 1, 4, NULL, 0);
    assert_true(a.res.cached_tokens >= held); /* the child may give one more */
    outcome fresh = run(&f, NULL, "x.fresh", p, n + 1, 4, NULL, 0);
    assert_memory_equal(a.tokens, fresh.tokens, a.n * sizeof *a.tokens);
    /* A shorter fork point, and what a fork refuses. */
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "ns.early", 50, &child, &err),
                     SEM_OK);
    assert_int_equal(child.tokens, 50);
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.nobody", "ns.x", AGENT_FORK_ALL, NULL, &err),
                     SEM_ENOTFOUND);
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "ns.child", AGENT_FORK_ALL, NULL,
                                    &err), SEM_EREQUEST);
    assert_non_null(strstr(err.detail, "exists"));
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "ns.y", 100000, NULL, &err),
                     SEM_EREQUEST);
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "ns.y", 0, NULL, &err),
                     SEM_EREQUEST);
    assert_int_equal(f.as.ops->fork(f.as.self, "ns.parent", "bad/id", AGENT_FORK_ALL, NULL, &err),
                     SEM_EREQUEST);
    assert_int_equal(f.as.ops->get(f.as.self, "ns.y", &child, NULL), SEM_ENOTFOUND);
    close_fixture(&f);
}

static void a_fork_of_an_agent_on_disk_loads_it_first(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 1024, 0);
    int32_t p[80];
    prompt_of(p, 80, 80, 0);
    outcome first = run(&f, NULL, "ns.cold", p, 80, 4, NULL, 0);
    wait_saved(&f, "ns.cold");
    assert_int_equal(f.as.ops->evict(f.as.self, "ns.cold", NULL), SEM_OK);
    /* The tier reads warm as soon as the eviction is asked for, while a
     * write may still run (a fork then answers "retry"): wait for it. */
    settle(&f);
    assert_int_equal(info(&f, "ns.cold").tier, AGENT_TIER_WARM);
    agent_info child;
    sem_err err = {0};
    if (f.as.ops->fork(f.as.self, "ns.cold", "ns.warmchild", AGENT_FORK_ALL, &child, &err) !=
        SEM_OK)
        fail_msg("fork: %s", err.detail);
    assert_int_equal(child.tokens, 80 + first.n - 1);
    assert_int_equal(info(&f, "ns.cold").tier, AGENT_TIER_HOT);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- pins */

/* Fills the pool with other agents' requests, so idle ones are reclaimed. */
static void pressure(fixture *f, const char *prefix, int rounds)
{
    int32_t p[140];
    char key[48];
    for (int i = 0; i < rounds; i++) {
        prompt_of(p, 140, 0, 100 + (uint32_t)i);
        snprintf(key, sizeof key, "%s%d", prefix, i);
        run(f, NULL, key, p, 140, 4, NULL, 0); /* 9 blocks x 5 layers */
    }
}

static void a_pinned_agent_survives_pressure_until_unpinned(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 80, 20); /* 64 tokens on stories' 5 layers: 20 blocks */
    int32_t p[60];
    prompt_of(p, 60, 60, 0);
    run(&f, NULL, "p.keep", p, 60, 4, NULL, 0);
    agent_info ai;
    sem_err err = {0};
    assert_int_equal(f.as.ops->pin(f.as.self, "p.keep", 600, &ai, &err), SEM_OK);
    assert_true(ai.pinned_until_ms > 0);
    pressure(&f, "p.other", 3);
    assert_int_equal(info(&f, "p.keep").tier, AGENT_TIER_HOT);
    assert_true(engine_get_stats(f.e).pool_pinned > 0);
    /* Unpinned, it is reclaimed like any other. */
    assert_int_equal(f.as.ops->pin(f.as.self, "p.keep", 0, &ai, &err), SEM_OK);
    assert_int_equal(ai.pinned_until_ms, 0);
    pressure(&f, "p.more", 3);
    wait_saved(&f, "p.keep");
    assert_int_equal(info(&f, "p.keep").tier, AGENT_TIER_WARM);
    /* A warm agent cannot be pinned; an unknown one is not found. */
    assert_int_equal(f.as.ops->pin(f.as.self, "p.keep", 60, NULL, &err), SEM_ENOTFOUND);
    assert_int_equal(f.as.ops->pin(f.as.self, "p.nobody", 60, NULL, &err), SEM_ENOTFOUND);
    close_fixture(&f);
}

static void pins_stay_within_their_budget(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 256, 30);
    int32_t p[150];
    prompt_of(p, 150, 150, 0);
    run(&f, NULL, "b.big", p, 150, 4, NULL, 0); /* 10 blocks x 5 layers */
    sem_err err = {0};
    assert_int_equal(f.as.ops->pin(f.as.self, "b.big", 60, NULL, &err), SEM_EPOOL);
    assert_non_null(strstr(err.detail, "budget"));
    assert_int_equal(info(&f, "b.big").pinned_until_ms, 0);
    close_fixture(&f);
}

static void cache_breakpoints_keep_a_prefix_for_later_requests(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 80, 60);
    int32_t p[120];
    prompt_of(p, 120, 96, 0);
    gen_pin pin = {.tokens = 96, .ttl_s = 600};
    run(&f, "cc", NULL, p, 120, 4, &pin, 1);
    assert_int_equal(engine_get_stats(f.e).prefix_pins, 1);
    pressure(&f, "cc.other", 3); /* the anonymous sequence and agents go */
    prompt_of(p, 120, 96, 3);
    outcome again = run(&f, "cc", NULL, p, 120, 4, NULL, 0);
    assert_int_equal(again.res.cached_tokens, 96);
    outcome other = run(&f, "elsewhere", NULL, p, 120, 4, NULL, 0);
    assert_int_equal(other.res.cached_tokens, 0);
    /* The same breakpoint again refreshes the pin instead of adding one. */
    run(&f, "cc", NULL, p, 120, 4, &pin, 1);
    assert_int_equal(engine_get_stats(f.e).prefix_pins, 1);
    /* A pin ends with its time. */
    gen_pin brief = {.tokens = 64, .ttl_s = 1};
    prompt_of(p, 120, 0, 9);
    run(&f, "cc", NULL, p, 120, 4, &brief, 1);
    assert_int_equal(engine_get_stats(f.e).prefix_pins, 2);
    usleep(1100 * 1000);
    run(&f, "cc", NULL, p, 20, 2, NULL, 0); /* an admission lets expired pins go */
    assert_int_equal(engine_get_stats(f.e).prefix_pins, 1);
    close_fixture(&f);
}

/* A request that fits the pool only without the pins breaks them rather
 * than wait for ever. */
static void a_pin_never_starves_a_request(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 80, 40);
    int32_t p[140];
    prompt_of(p, 120, 0, 1);
    gen_pin pin = {.tokens = 112, .ttl_s = 600};
    run(&f, "s", NULL, p, 120, 4, &pin, 1); /* 7 blocks x 5 layers pinned */
    prompt_of(p, 140, 0, 2);
    run(&f, "s", NULL, p, 140, 40, NULL, 0); /* 12 blocks x 5 layers: 60 of 80 */
    engine_stats st = engine_get_stats(f.e);
    assert_int_equal(st.pins_broken, 1);
    assert_int_equal(st.prefix_pins, 0);
    close_fixture(&f);
}

static void bad_breakpoints_are_refused_at_submit(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, 64, 0);
    int32_t p[20];
    prompt_of(p, 20, 20, 0);
    gen_params q = {.prompt = p, .n_prompt = 20, .max_tokens = 2, .n_pins = 1};
    gen_request *r = NULL;
    sem_err err = {0};
    q.pins[0] = (gen_pin){.tokens = 21, .ttl_s = 60};
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    q.pins[0] = (gen_pin){.tokens = 10, .ttl_s = 0};
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    q.n_pins = GEN_PINS_MAX + 1;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agents_of_one_namespace_share_a_common_prefix),
        cmocka_unit_test(anonymous_requests_share_within_their_scope_only),
        cmocka_unit_test(requests_arriving_together_compute_their_start_once),
        cmocka_unit_test(a_fork_shares_until_either_side_writes),
        cmocka_unit_test(a_fork_of_an_agent_on_disk_loads_it_first),
        cmocka_unit_test(a_pinned_agent_survives_pressure_until_unpinned),
        cmocka_unit_test(pins_stay_within_their_budget),
        cmocka_unit_test(cache_breakpoints_keep_a_prefix_for_later_requests),
        cmocka_unit_test(a_pin_never_starves_a_request),
        cmocka_unit_test(bad_breakpoints_are_refused_at_submit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
