/*
 * Agent memory in the engine, against an in-memory warm store: KV is saved
 * after an agent's request, survives a new engine (a restart), is loaded
 * back when the agent returns and gives the tokens a fresh run gives; the
 * pool reclaims saved agents first and saves the others before freeing
 * them; bad files are misses; failed writes keep the copy in memory; the
 * agent store port lists, evicts and removes; anonymous requests reuse hot
 * prefixes without ever being saved; drain writes everything.
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
    char log[4096];
    pthread_mutex_t log_lock;
} fixture;

static void log_line(void *user, const char *level, const char *msg)
{
    fixture *f = user;
    pthread_mutex_lock(&f->log_lock);
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s: %s\n", level, msg);
    pthread_mutex_unlock(&f->log_lock);
}

static void assert_logged(fixture *f, const char *needle)
{
    pthread_mutex_lock(&f->log_lock);
    int found = strstr(f->log, needle) != NULL;
    pthread_mutex_unlock(&f->log_lock);
    if (!found)
        fail_msg("no log line contains '%s'", needle);
}

static void set_fault(fake_store *fs, int *field, int value)
{
    pthread_mutex_lock(&fs->lock);
    *field = value;
    pthread_mutex_unlock(&fs->lock);
}

static void start_engine(fixture *f, fake_store *fs, uint32_t blocks)
{
    sem_err err = {0};
    cache_spec s = model_cache_spec(f->m, 16, CACHE_KV_F16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, &err);
    assert_non_null(f->pool);
    f->ws = (warm_store){&fake_ops, fs};
    engine_opts o = engine_defaults();
    o.max_batch = 4;
    o.chunk = 32;
    o.save_delay_ms = 0;
    o.warm = fs ? &f->ws : NULL;
    o.log = log_line;
    o.log_user = f;
    f->e = engine_create(model_backend_port(f->mb), f->pool, &o, &err);
    if (!f->e)
        fail_msg("%s", err.detail);
    f->gp = engine_generation_port(f->e);
    f->as = engine_agent_store(f->e);
}

static void stop_engine(fixture *f)
{
    engine_destroy(f->e);
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    block_pool_destroy(f->pool);
}

static void open_fixture(fixture *f, fake_store *fs, uint32_t blocks)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->log_lock, NULL);
    sem_err err = {0};
    f->m = model_load(STORIES, &err);
    assert_non_null(f->m);
    forward_opts fo = {.n_threads = 2, .isa = cpu_isa_best(), .max_tokens = 64};
    f->mb = model_backend_create(f->m, &fo, 512, &err);
    assert_non_null(f->mb);
    start_engine(f, fs, blocks);
}

static void close_fixture(fixture *f)
{
    stop_engine(f);
    model_backend_destroy(f->mb);
    model_free(f->m);
    pthread_mutex_destroy(&f->log_lock);
}

typedef struct outcome {
    gen_result res;
    int32_t tokens[64];
    uint32_t n;
} outcome;

static outcome generate_in(fixture *f, const char *scope, const char *agent, const int32_t *p,
                           uint32_t n, uint32_t max, int prefill_only)
{
    gen_params q = {.agent_id = agent, .scope = scope, .prompt = p, .n_prompt = n,
                    .max_tokens = max, .prefill_only = prefill_only};
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
    return o;
}

static outcome generate(fixture *f, const char *agent, const int32_t *p, uint32_t n, uint32_t max,
                        int prefill_only)
{
    return generate_in(f, NULL, agent, p, n, max, prefill_only);
}

static void prompt_of(int32_t *p, uint32_t n, uint32_t salt)
{
    p[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        p[i] = (int32_t)(3 + (i * 131 + salt * 977) % 509);
}

/* Waits until n saves and loads are queued, running or not yet applied. */
static void wait_in_flight(fixture *f, uint32_t n)
{
    for (int i = 0; i < 10000 && engine_get_stats(f->e).io_in_flight < n; i++)
        usleep(1000);
    assert_int_equal(engine_get_stats(f->e).io_in_flight, n);
}

/* Waits until the store holds key (the write-behind save is asynchronous). */
static void wait_saved(fake_store *fs, const char *key)
{
    for (int i = 0; i < 10000 && !fake_has(fs, key); i++)
        usleep(1000);
    assert_true(fake_has(fs, key));
}

static void memory_survives_a_new_engine(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t p[120];
    prompt_of(p, 60, 1);
    outcome first = generate(&f, "alice", p, 60, 12, 0);
    assert_int_equal(first.res.cached_tokens, 0);
    wait_saved(&fs, "alice");
    assert_int_equal(engine_drain(f.e, 1000), 0);
    engine_stats st = engine_get_stats(f.e);
    assert_true(st.saves >= 1);
    /* The conversation goes on in a new engine and a new pool. */
    memcpy(p + 60, first.tokens, first.n * sizeof(int32_t));
    uint32_t n2 = 60 + first.n;
    for (uint32_t i = 0; i < 8; i++)
        p[n2++] = 40 + (int32_t)i;
    stop_engine(&f);
    start_engine(&f, &fs, 256);
    agent_info ai;
    assert_int_equal(f.as.ops->get(f.as.self, "alice", &ai, NULL), SEM_OK);
    assert_int_equal(ai.tier, AGENT_TIER_WARM);
    outcome again = generate(&f, "alice", p, n2, 10, 0);
    assert_int_equal(again.res.cached_tokens, 60 + first.n - 1);
    st = engine_get_stats(f.e);
    assert_int_equal(st.hits_warm, 1);
    /* The same tokens as a fresh run of the whole prompt. */
    outcome fresh = generate(&f, NULL, p, n2, 10, 0);
    assert_int_equal(fresh.n, again.n);
    assert_memory_equal(fresh.tokens, again.tokens, fresh.n * sizeof(int32_t));
    /* Anonymous sequences are never saved. */
    pthread_mutex_lock(&fs.lock);
    assert_int_equal(fs.n, 1);
    pthread_mutex_unlock(&fs.lock);
    close_fixture(&f);
    fake_free(&fs);
}

static void pressure_saves_before_it_frees(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    /* 5 layers x 6 blocks: room for one 80-token agent at a time. */
    open_fixture(&f, &fs, 30);
    int32_t p[80];
    char id[16];
    for (int i = 0; i < 4; i++) {
        prompt_of(p, 70, (uint32_t)i);
        snprintf(id, sizeof id, "ag%d", i);
        outcome o = generate(&f, id, p, 70, 8, 0);
        assert_int_not_equal(o.res.finish, GEN_ERROR);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "ag%d", i);
        wait_saved(&fs, id);
    }
    /* Back to the first agent: loaded from the store, reused. */
    prompt_of(p, 70, 0);
    outcome o = generate(&f, "ag0", p, 70, 4, 0);
    assert_int_equal(o.res.cached_tokens, 69);
    engine_stats st = engine_get_stats(f.e);
    assert_true(st.evictions >= 3);
    assert_int_equal(st.hits_warm, 1);
    close_fixture(&f);
    fake_free(&fs);
}

static void a_bad_file_is_a_miss(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t p[40];
    prompt_of(p, 40, 3);
    generate(&f, "bob", p, 40, 4, 0);
    wait_saved(&fs, "bob");
    assert_int_equal(f.as.ops->evict(f.as.self, "bob", NULL), SEM_OK);
    set_fault(&fs, &fs.corrupt_next, 1);
    outcome o = generate(&f, "bob", p, 40, 4, 0);
    assert_int_not_equal(o.res.finish, GEN_ERROR);
    assert_int_equal(o.res.cached_tokens, 0);
    assert_logged(&f, "agent 'bob': its cache file was not used");
    assert_logged(&f, "checksum mismatch");
    engine_stats st = engine_get_stats(f.e);
    assert_int_equal(st.load_failures, 1);
    close_fixture(&f);
    fake_free(&fs);
}

static void a_failed_write_keeps_the_copy_in_memory(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fs.fail_saves = 1;
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t p[40];
    prompt_of(p, 40, 4);
    generate(&f, "carol", p, 40, 4, 0);
    for (int i = 0; i < 10000 && engine_get_stats(f.e).save_failures == 0; i++)
        usleep(1000);
    assert_true(engine_get_stats(f.e).save_failures >= 1);
    assert_logged(&f, "No space left on device");
    agent_info ai;
    assert_int_equal(f.as.ops->get(f.as.self, "carol", &ai, NULL), SEM_OK);
    assert_int_equal(ai.tier, AGENT_TIER_HOT);
    outcome o = generate(&f, "carol", p, 40, 4, 0);
    assert_int_equal(o.res.cached_tokens, 39); /* still reused from memory */
    set_fault(&fs, &fs.fail_saves, 0);
    generate(&f, "carol", p, 40, 4, 0);
    wait_saved(&fs, "carol");
    close_fixture(&f);
    fake_free(&fs);
}

static void the_agent_store_lists_evicts_and_removes(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t p[40];
    prompt_of(p, 30, 5);
    generate(&f, "ns1.dan", p, 30, 4, 0);
    generate(&f, "ns1.eve", p, 30, 4, 0);
    generate(&f, "ns2.fay", p, 30, 4, 0);
    wait_saved(&fs, "ns1.dan");
    agent_info *list;
    size_t n;
    assert_int_equal(f.as.ops->list(f.as.self, "ns1.", &list, &n, NULL), SEM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].tier, AGENT_TIER_HOT);
    assert_true(list[0].tokens >= 30);
    assert_true(list[0].hot_bytes > 0);
    free(list);
    sem_err err = {0};
    /* Evict: the hot copy goes, the file stays. */
    assert_int_equal(f.as.ops->evict(f.as.self, "ns1.dan", &err), SEM_OK);
    agent_info ai;
    for (int i = 0; i < 10000; i++) {
        f.as.ops->get(f.as.self, "ns1.dan", &ai, NULL);
        if (ai.tier == AGENT_TIER_WARM)
            break;
        usleep(1000);
    }
    assert_int_equal(ai.tier, AGENT_TIER_WARM);
    assert_int_equal(f.as.ops->evict(f.as.self, "ns1.dan", &err), SEM_ENOTFOUND);
    /* Remove: both tiers. */
    assert_int_equal(f.as.ops->remove(f.as.self, "ns1.dan", &err), SEM_OK);
    assert_int_equal(f.as.ops->get(f.as.self, "ns1.dan", &ai, &err), SEM_ENOTFOUND);
    for (int i = 0; i < 10000 && fake_has(&fs, "ns1.dan"); i++)
        usleep(1000);
    assert_false(fake_has(&fs, "ns1.dan"));
    assert_int_equal(f.as.ops->remove(f.as.self, "ns1.dan", &err), SEM_ENOTFOUND);
    assert_int_equal(f.as.ops->remove(f.as.self, "nobody", &err), SEM_ENOTFOUND);
    /* A new request with the removed key starts from nothing of its own
     * (a prompt no other agent of ns1 holds, which it could share). */
    int32_t q[30];
    prompt_of(q, 30, 9);
    outcome o = generate(&f, "ns1.dan", q, 30, 4, 0);
    assert_int_equal(o.res.cached_tokens, 0);
    /* Warm-up: prefill only, then a request with that prompt reuses it. */
    int32_t w[50];
    prompt_of(w, 50, 6);
    outcome pre = generate(&f, "ns1.gus", w, 50, 0, 1);
    assert_int_equal(pre.n, 0);
    assert_int_not_equal(pre.res.finish, GEN_ERROR);
    o = generate(&f, "ns1.gus", w, 50, 4, 0);
    assert_int_equal(o.res.cached_tokens, 49);
    close_fixture(&f);
    fake_free(&fs);
}

static void removing_a_running_agent_cancels_it(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 512);
    int32_t p[20];
    prompt_of(p, 20, 7);
    gen_params q = {.agent_id = "hal", .prompt = p, .n_prompt = 20, .max_tokens = 400};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, NULL), SEM_OK);
    char buf[64];
    size_t got = 0, total = 0;
    while (total < 10) {
        f.gp.ops->read(f.gp.self, r, buf, sizeof buf, &got, -1);
        total += got;
    }
    assert_int_equal(f.as.ops->remove(f.as.self, "hal", NULL), SEM_OK);
    while (!f.gp.ops->read(f.gp.self, r, buf, sizeof buf, &got, -1)) {
    }
    assert_int_equal(f.gp.ops->result(f.gp.self, r).finish, GEN_CANCELLED);
    f.gp.ops->release(f.gp.self, r);
    for (int i = 0; i < 10000 && fake_has(&fs, "hal"); i++) /* removed behind */
        usleep(1000);
    assert_false(fake_has(&fs, "hal"));
    close_fixture(&f);
    fake_free(&fs);
}

static void anonymous_requests_reuse_hot_prefixes(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t a[60], b[60];
    prompt_of(a, 60, 8);
    memcpy(b, a, sizeof a);
    b[50] = 7; /* same first 50 tokens */
    outcome oa = generate(&f, NULL, a, 60, 4, 0);
    assert_int_equal(oa.res.cached_tokens, 0);
    /* Another scope (another API key) neither reuses nor sees a's KV. */
    outcome other = generate_in(&f, "0123456789ab", NULL, a, 60, 4, 0);
    assert_int_equal(other.res.cached_tokens, 0);
    assert_int_equal(other.n, oa.n);
    assert_memory_equal(other.tokens, oa.tokens, oa.n * sizeof(int32_t));
    outcome ob = generate(&f, NULL, b, 60, 4, 0);
    assert_int_equal(ob.res.cached_tokens, 50);
    outcome other_b = generate_in(&f, "0123456789ab", NULL, b, 60, 4, 0);
    assert_int_equal(other_b.res.cached_tokens, 50); /* from its own scope's a */
    outcome fresh_b;
    {
        /* Same prompt in an engine without the anonymous cache: same tokens. */
        stop_engine(&f);
        start_engine(&f, NULL, 256);
        fresh_b = generate(&f, NULL, b, 60, 4, 0);
    }
    assert_int_equal(fresh_b.n, ob.n);
    assert_memory_equal(fresh_b.tokens, ob.tokens, ob.n * sizeof(int32_t));
    pthread_mutex_lock(&fs.lock);
    assert_int_equal(fs.saves, 0);
    pthread_mutex_unlock(&fs.lock);
    close_fixture(&f);
    fake_free(&fs);
}

static int fake_count(fake_store *fs, const int *field)
{
    pthread_mutex_lock(&fs->lock);
    int v = *field;
    pthread_mutex_unlock(&fs->lock);
    return v;
}

/* A request of an agent whose write is under way stops the write instead of
 * waiting for it; the agent is written again after the request. */
static void a_request_stops_its_agents_save(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    set_fault(&fs, &fs.save_ms, 60000); /* a save that would hold it for a minute */
    int32_t p[60];
    prompt_of(p, 60, 10);
    outcome first = generate(&f, "zed", p, 40, 8, 0);
    for (int i = 0; i < 2000 && fake_count(&fs, &fs.started) == 0; i++)
        usleep(1000);
    assert_int_equal(fake_count(&fs, &fs.started), 1);
    set_fault(&fs, &fs.save_ms, 0); /* for the saves after this one */
    /* The next turn reuses the hot KV and finishes (the write is stopped). */
    memcpy(p + 40, first.tokens, first.n * sizeof(int32_t));
    outcome second = generate(&f, "zed", p, 40 + first.n, 4, 0);
    assert_int_equal(second.res.cached_tokens, 40 + first.n - 1);
    assert_int_equal(fake_count(&fs, &fs.stopped), 1);
    wait_saved(&fs, "zed");
    engine_stats st = engine_get_stats(f.e);
    assert_int_equal(st.saves_stopped, 1);
    assert_int_equal(st.save_failures, 0);
    close_fixture(&f);
    fake_free(&fs);
}

/* A load, which a request waits for, goes ahead of queued saves. */
static void loads_go_ahead_of_queued_saves(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 256);
    int32_t p[40];
    prompt_of(p, 40, 11);
    generate(&f, "b", p, 40, 4, 0);
    wait_saved(&fs, "b");
    assert_int_equal(f.as.ops->evict(f.as.self, "b", NULL), SEM_OK); /* b is on disk only */
    set_fault(&fs, &fs.hold_saves, 1);
    generate(&f, "a", p, 40, 4, 0); /* a's save starts and is held ... */
    for (int i = 0; i < 10000 && fake_count(&fs, &fs.started) < 2; i++)
        usleep(1000);
    assert_int_equal(fake_count(&fs, &fs.started), 2);
    generate(&f, "c", p, 40, 4, 0); /* ... c's is queued behind it ... */
    wait_in_flight(&f, 2);
    gen_params q = {.agent_id = "b", .prompt = p, .n_prompt = 40, .max_tokens = 4};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, NULL), SEM_OK);
    wait_in_flight(&f, 3); /* ... b's load is queued too ... */
    set_fault(&fs, &fs.hold_saves, 0);
    char buf[256];
    size_t got;
    while (!f.gp.ops->read(f.gp.self, r, buf, sizeof buf, &got, -1)) {
    }
    gen_result b = f.gp.ops->result(f.gp.self, r);
    f.gp.ops->release(f.gp.self, r);
    assert_int_equal(b.cached_tokens, 39);
    wait_saved(&fs, "c");
    pthread_mutex_lock(&fs.lock);
    /* ... and goes before c's save (b's own save may follow). A new agent
     * asks the store for its memory first (L:b, L:a: a tier under the disk
     * may hold it); c shares a's blocks and asks nothing. */
    if (strncmp(fs.order, "L:b S:b L:a S:a L:b S:c ", 24) != 0)
        fail_msg("disk operations in the order '%s'", fs.order);
    pthread_mutex_unlock(&fs.lock);
    set_fault(&fs, &fs.save_ms, 0);
    close_fixture(&f);
    fake_free(&fs);
}

static void drain_finishes_work_and_saves_everything(void **state)
{
    (void)state;
    fake_store fs;
    fake_init(&fs);
    fixture f;
    open_fixture(&f, &fs, 512);
    int32_t p[20];
    prompt_of(p, 20, 9);
    gen_params q = {.agent_id = "ivy", .prompt = p, .n_prompt = 20, .max_tokens = 30};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, NULL), SEM_OK);
    assert_int_equal(engine_drain(f.e, 5000), 0);
    gen_result res = f.gp.ops->result(f.gp.self, r);
    assert_int_equal(res.finish, GEN_LENGTH); /* it had time to finish */
    assert_true(fake_has(&fs, "ivy"));
    sem_err err = {0};
    gen_request *late = NULL;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &late, &err), SEM_EBUSY);
    assert_contains(err.detail, "draining");
    assert_true(engine_get_stats(f.e).draining);
    f.gp.ops->release(f.gp.self, r);
    close_fixture(&f);
    fake_free(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_survives_a_new_engine),
        cmocka_unit_test(pressure_saves_before_it_frees),
        cmocka_unit_test(a_bad_file_is_a_miss),
        cmocka_unit_test(a_failed_write_keeps_the_copy_in_memory),
        cmocka_unit_test(the_agent_store_lists_evicts_and_removes),
        cmocka_unit_test(removing_a_running_agent_cancels_it),
        cmocka_unit_test(anonymous_requests_reuse_hot_prefixes),
        cmocka_unit_test(a_request_stops_its_agents_save),
        cmocka_unit_test(loads_go_ahead_of_queued_saves),
        cmocka_unit_test(drain_finishes_work_and_saves_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
