/*
 * The engine with the real disk store: agent memory survives a restart in
 * every cache type, a damaged file is a miss that the server survives, and
 * the RAM (pool) and disk budgets hold with 200 agents.
 */
#include "../test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/model/model_backend.h"
#include "adapters/store/disk_store.h"
#include "app/engine.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"
#define QWEN SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"

typedef struct fixture {
    model *m;
    model_backend *mb;
    block_pool *pool;
    disk_store *ds;
    warm_store ws;
    engine *e;
    generation_port gp;
    char dir[64];
} fixture;

static void start(fixture *f, const char *dir, kv_payload payload, uint64_t budget,
                  uint32_t blocks)
{
    sem_err err = {0};
    cache_spec s = model_cache_spec(f->m, 16, CACHE_KV_F16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, &err);
    assert_non_null(f->pool);
    disk_store_opts d = {.dir = dir, .fingerprint = model_fingerprint(f->m), .payload = payload,
                         .budget_bytes = budget};
    f->ds = disk_store_open(&d, &err);
    if (!f->ds)
        fail_msg("%s", err.detail);
    f->ws = disk_store_port(f->ds);
    engine_opts o = engine_defaults();
    o.max_batch = 4;
    o.chunk = 32;
    o.save_delay_ms = 0;
    o.warm = &f->ws;
    f->e = engine_create(model_backend_port(f->mb), f->pool, &o, &err);
    assert_non_null(f->e);
    f->gp = engine_generation_port(f->e);
}

static void stop(fixture *f)
{
    assert_int_equal(engine_drain(f->e, 5000), 0);
    engine_destroy(f->e);
    disk_store_close(f->ds);
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    block_pool_destroy(f->pool);
}

static void open_fixture(fixture *f, const char *model_path)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sem-engine-disk-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    sem_err err = {0};
    f->m = model_load(model_path, &err);
    assert_non_null(f->m);
    forward_opts fo = {.n_threads = 2, .isa = cpu_isa_best(), .max_tokens = 64};
    f->mb = model_backend_create(f->m, &fo, 512, &err);
    assert_non_null(f->mb);
}

static void remove_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void close_fixture(fixture *f)
{
    model_backend_destroy(f->mb);
    model_free(f->m);
    remove_tree(f->dir);
}

static gen_result generate(fixture *f, const char *agent, const int32_t *p, uint32_t n,
                           uint32_t max, int32_t *out, uint32_t *n_out)
{
    gen_params q = {.agent_id = agent, .prompt = p, .n_prompt = n, .max_tokens = max};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    gen_request *r = NULL;
    sem_err err = {0};
    if (f->gp.ops->submit(f->gp.self, &q, &r, &err) != SEM_OK)
        fail_msg("submit: %s", err.detail);
    char buf[4096];
    size_t got;
    while (!f->gp.ops->read(f->gp.self, r, buf, sizeof buf, &got, -1)) {
    }
    gen_result res = f->gp.ops->result(f->gp.self, r);
    if (out) {
        int32_t *t;
        assert_int_equal(f->gp.ops->tokens(f->gp.self, r, &t, n_out, NULL), SEM_OK);
        memcpy(out, t, *n_out * sizeof *t);
        free(t);
    }
    f->gp.ops->release(f->gp.self, r);
    return res;
}

static void prompt_of(int32_t *p, uint32_t n, uint32_t salt, uint32_t vocab)
{
    p[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        p[i] = (int32_t)(3 + (i * 131 + salt * 977) % (vocab - 3));
}

/* An agent's conversation continues after a restart, for each cache type. */
static void memory_survives_restarts_in_every_cache_type(void **state)
{
    (void)state;
    static const kv_payload types[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
    for (int t = 0; t < 3; t++) {
        fixture f;
        open_fixture(&f, QWEN); /* head dim 64: q8_0 and q4_0 apply */
        uint32_t V = model_hparams_of(f.m)->n_vocab;
        int32_t p[200], gen[32];
        uint32_t n_gen = 0;
        prompt_of(p, 100, (uint32_t)t, V);
        start(&f, f.dir, types[t], 0, 512);
        gen_result a = generate(&f, "agent", p, 100, 16, gen, &n_gen);
        assert_int_equal(a.cached_tokens, 0);
        stop(&f);
        memcpy(p + 100, gen, n_gen * sizeof *gen);
        uint32_t n = 100 + n_gen;
        p[n++] = 5;
        start(&f, f.dir, types[t], 0, 512); /* a new pool, the same folder */
        int32_t again[32], fresh[32];
        uint32_t n_again = 0, n_fresh = 0;
        gen_result b = generate(&f, "agent", p, n, 12, again, &n_again);
        assert_int_equal(b.cached_tokens, 100 + n_gen - 1);
        /* Another namespace shares nothing: a fresh computation. */
        gen_result c = generate(&f, "elsewhere.fresh", p, n, 12, fresh, &n_fresh);
        assert_int_equal(c.cached_tokens, 0);
        if (types[t] == KV_PAYLOAD_F16) /* lossless: exactly what a fresh run gives */
            assert_memory_equal(again, fresh, n_fresh * sizeof *fresh);
        stop(&f);
        close_fixture(&f);
    }
}

static void a_damaged_file_is_quarantined_and_recomputed(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES);
    int32_t p[60];
    prompt_of(p, 60, 9, 512);
    start(&f, f.dir, KV_PAYLOAD_DEFAULT, 0, 256);
    generate(&f, "zed", p, 60, 8, NULL, NULL);
    stop(&f);
    /* Flip a byte in the payload. */
    char path[128];
    snprintf(path, sizeof path, "%s/zed.kv", f.dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, -40, SEEK_END);
    int ch = fgetc(fp);
    fseek(fp, -40, SEEK_END);
    fputc(ch ^ 0x10, fp);
    fclose(fp);
    start(&f, f.dir, KV_PAYLOAD_DEFAULT, 0, 256);
    gen_result r = generate(&f, "zed", p, 60, 8, NULL, NULL);
    assert_int_equal(r.finish, GEN_LENGTH);
    assert_int_equal(r.cached_tokens, 0);
    engine_stats st = engine_get_stats(f.e);
    assert_int_equal(st.load_failures, 1);
    /* The bad file went to quarantine; the fresh KV was saved again. */
    snprintf(path, sizeof path, "%s/quarantine", f.dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));)
        files += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    r = generate(&f, "zed", p, 60, 8, NULL, NULL);
    assert_int_equal(r.cached_tokens, 59);
    stop(&f);
    close_fixture(&f);
}

/* 200 agents through a small pool and a small disk budget. */
static void budgets_hold_under_two_hundred_agents(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES);
    const uint64_t budget = 1024 * 1024; /* about 30 agents' files of ~32 KiB */
    start(&f, f.dir, KV_PAYLOAD_DEFAULT, budget, 60); /* 12 blocks per layer */
    int32_t p[64];
    for (int i = 0; i < 200; i++) {
        char id[24];
        snprintf(id, sizeof id, "agent-%03d", i);
        prompt_of(p, 40 + (uint32_t)(i % 20), (uint32_t)i, 512);
        gen_result r = generate(&f, id, p, 40 + (uint32_t)(i % 20), 8, NULL, NULL);
        assert_int_equal(r.finish, GEN_LENGTH);
        engine_stats st = engine_get_stats(f.e);
        assert_true(st.pool_used <= st.pool_total);
        assert_true(f.ws.ops->disk_bytes(f.ws.self) <= budget);
    }
    /* Saves are written behind: the count is final once every one is done. */
    assert_int_equal(engine_drain(f.e, 30000), 0);
    engine_stats st = engine_get_stats(f.e);
    assert_true(st.evictions > 150);
    assert_true(st.saves >= 190);
    assert_true(st.agents_warm <= 200);
    warm_info *list;
    size_t n;
    assert_int_equal(f.ws.ops->list(f.ws.self, "", &list, &n, NULL), SEM_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += list[i].bytes;
    free(list);
    assert_true(n > 5 && n < 200);
    assert_true(total <= budget);
    stop(&f);
    close_fixture(&f);
}

/* After a restart, a new agent whose prompt starts like an agent on disk
 * reads the shared chunks of that start instead of computing them, within
 * its namespace only, and decodes what a fresh computation decodes. */
static void a_new_agent_reads_shared_chunks_from_disk(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES);
    uint32_t V = model_hparams_of(f.m)->n_vocab;
    int32_t p[300];
    prompt_of(p, 300, 0, V);
    start(&f, f.dir, KV_PAYLOAD_F16, 0, 512);
    generate(&f, "ns.first", p, 300, 4, NULL, NULL);
    stop(&f);
    start(&f, f.dir, KV_PAYLOAD_F16, 0, 512); /* nothing hot */
    for (uint32_t i = 280; i < 300; i++)
        p[i] = (int32_t)(3 + i % 7);
    int32_t got[8], fresh[8];
    uint32_t n_got = 0, n_fresh = 0;
    gen_result b = generate(&f, "ns.second", p, 300, 8, got, &n_got);
    assert_int_equal(b.cached_tokens, 256); /* two whole chunks of 128 */
    assert_true(engine_get_stats(f.e).hits_shared >= 1);
    gen_result c = generate(&f, "other.third", p, 300, 8, fresh, &n_fresh);
    assert_int_equal(c.cached_tokens, 0);
    assert_int_equal(n_got, n_fresh);
    assert_memory_equal(got, fresh, n_got * sizeof *got);
    stop(&f);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_survives_restarts_in_every_cache_type),
        cmocka_unit_test(a_damaged_file_is_quarantined_and_recomputed),
        cmocka_unit_test(budgets_hold_under_two_hundred_agents),
        cmocka_unit_test(a_new_agent_reads_shared_chunks_from_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
