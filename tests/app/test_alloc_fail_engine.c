/*
 * Allocation failures in the generation engine, on the bundled model.
 *
 * Submission: with the k-th allocation of submit failing (on the calling
 * thread), submit reports SEM_ENOMEM, nothing is queued or running, no
 * block is taken, and the engine serves the next request as before.
 *
 * A whole request: with the k-th allocation of any thread failing from
 * submit on (the engine thread's admission, its sequence and sampler, the
 * generated text, the anonymous cache or the agent's table afterwards),
 * the request either ends as it ends with memory to spare (same tokens)
 * or fails with SEM_ENOMEM, at submit or as its result; either way the
 * engine then serves a request exactly as before, holds no block beyond
 * what its idle sequences keep, and frees everything when destroyed
 * (LSan in the ASan build).
 *
 * An agent's memory on disk: the same, for a request whose agent is loaded
 * from a disk store (a file and its SQLite index, read on the engine's I/O
 * thread) and saved again after it; the file is never quarantined for the
 * reader's lack of memory and the agent stays known.
 */
#include "../test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <ftw.h>
#include <pthread.h>

#include "adapters/model/model_backend.h"
#include "adapters/store/disk_store.h"
#include "alloc_fail.h"
#include "app/engine.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"
#define N_PROMPT 24
#define MAX_TOKENS 6

typedef struct fixture {
    model *m;
    model_backend *mb;
    block_pool *pool;
    engine *e;
    generation_port gp;
    agent_store as;
    char dir[256];
    disk_store *ds;
    warm_store ws;
    pthread_mutex_t log_lock;
    char log[8192];
} fixture;

static void store_log(void *ctx, const char *msg)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->log_lock);
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s\n", msg);
    pthread_mutex_unlock(&f->log_lock);
}

static void engine_log(void *ctx, const char *level, const char *msg)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->log_lock);
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s: %s\n", level, msg);
    pthread_mutex_unlock(&f->log_lock);
}

/* warm: with a disk store in a new temporary folder. */
static void open_fixture_with(fixture *f, int warm)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->log_lock, NULL);
    sem_err err = {0};
    f->m = model_load(STORIES, &err);
    if (!f->m)
        fail_msg("%s", err.detail);
    forward_opts fo = {.n_threads = 1, .isa = cpu_isa_best(), .max_tokens = 64};
    f->mb = model_backend_create(f->m, &fo, 512, &err);
    assert_non_null(f->mb);
    cache_spec s = model_cache_spec(f->m, 16, CACHE_KV_F16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * 256, &err);
    assert_non_null(f->pool);
    engine_opts o = engine_defaults();
    o.max_batch = 4;
    o.chunk = 32;
    o.save_delay_ms = 0;
    o.log = engine_log;
    o.log_user = f;
    if (warm) {
        snprintf(f->dir, sizeof f->dir, "%s/semengine-XXXXXX",
                 getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        disk_store_opts so = {.dir = f->dir, .fingerprint = model_fingerprint(f->m),
                              .log = store_log, .log_ctx = f};
        f->ds = disk_store_open(&so, &err);
        if (!f->ds)
            fail_msg("%s", err.detail);
        f->ws = disk_store_port(f->ds);
        o.warm = &f->ws;
    }
    f->e = engine_create(model_backend_port(f->mb), f->pool, &o, &err);
    if (!f->e)
        fail_msg("%s", err.detail);
    f->gp = engine_generation_port(f->e);
    f->as = engine_agent_store(f->e);
}

static void open_fixture(fixture *f) { open_fixture_with(f, 0); }

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void close_fixture(fixture *f)
{
    engine_destroy(f->e);
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    block_pool_destroy(f->pool);
    if (f->ds) {
        disk_store_close(f->ds);
        nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    model_backend_destroy(f->mb);
    model_free(f->m);
    pthread_mutex_destroy(&f->log_lock);
}

static gen_params params(const int32_t *prompt, const char *agent)
{
    static const char *stops[] = {"zzz", "\n\n\n"};
    gen_params q = {.agent_id = agent, .prompt = prompt, .n_prompt = N_PROMPT,
                    .max_tokens = MAX_TOKENS, .stop = stops, .n_stop = 2};
    q.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    return q;
}

typedef struct outcome {
    sem_status submit;
    gen_result res;
    char text[1024];
    size_t len;
} outcome;

/* Reads r to its end (at most 5 s: a request the engine forgot fails). */
static void read_all(fixture *f, gen_request *r, outcome *o)
{
    for (int waited = 0;; waited += 100) {
        size_t got = 0;
        int done = f->gp.ops->read(f->gp.self, r, o->text + o->len, sizeof o->text - 1 - o->len,
                                   &got, 100);
        o->len += got;
        if (done)
            break;
        if (waited > 5000)
            fail_msg("the request did not finish");
    }
    o->text[o->len] = '\0';
    o->res = f->gp.ops->result(f->gp.self, r);
}

static outcome run(fixture *f, const int32_t *prompt, const char *agent)
{
    outcome o;
    memset(&o, 0, sizeof o);
    gen_params q = params(prompt, agent);
    gen_request *r = NULL;
    sem_err err = {0};
    o.submit = f->gp.ops->submit(f->gp.self, &q, &r, &err);
    if (o.submit != SEM_OK)
        fail_msg("submit: %s", err.detail);
    read_all(f, r, &o);
    f->gp.ops->release(f->gp.self, r);
    return o;
}

static void assert_same_text(const outcome *got, const outcome *want)
{
    assert_int_equal(got->res.finish, want->res.finish);
    assert_int_equal(got->res.completion_tokens, want->res.completion_tokens);
    assert_string_equal(got->text, want->text);
}

/* Waits until nothing is queued or running. */
static engine_stats settle(fixture *f)
{
    for (int i = 0; i < 10000; i++) {
        engine_stats st = engine_get_stats(f->e);
        if (st.running == 0 && st.waiting == 0)
            return st;
        usleep(1000);
    }
    fail_msg("the engine did not settle");
    return engine_get_stats(f->e);
}

static void prompt_of(int32_t *p, uint32_t salt)
{
    p[0] = 1;
    for (uint32_t i = 1; i < N_PROMPT; i++)
        p[i] = (int32_t)(3 + (i * 131 + salt * 977) % 509);
}

static void submit_fails_cleanly(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f);
    int32_t p[N_PROMPT];
    prompt_of(p, 1);
    outcome want = run(&f, p, NULL);
    static const char *const agents[] = {NULL, "agent-1"};
    for (int a = 0; a < 2; a++) {
        for (uint64_t k = 1;; k++) {
            engine_stats before = settle(&f);
            gen_params q = params(p, agents[a]);
            gen_request *r = NULL;
            sem_err err = {0};
            alloc_fail_arm(k, 0);
            sem_status st = f.gp.ops->submit(f.gp.self, &q, &r, &err);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (!hit) {
                assert_int_equal(st, SEM_OK);
                outcome o = {0};
                read_all(&f, r, &o);
                f.gp.ops->release(f.gp.self, r);
                assert_same_text(&o, &want);
                break;
            }
            if (st != SEM_ENOMEM)
                fail_msg("allocation %llu failed: submit gave %s (%s)", (unsigned long long)k,
                         sem_status_name(st), err.detail);
            assert_null(r);
            engine_stats after = settle(&f);
            assert_int_equal(after.pool_used, before.pool_used);
            assert_int_equal(after.agents, before.agents);
        }
    }
    outcome again = run(&f, p, NULL);
    assert_same_text(&again, &want);
    close_fixture(&f);
}

static void a_whole_request_fails_cleanly(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f);
    int32_t p[N_PROMPT], q[N_PROMPT];
    prompt_of(p, 2);
    prompt_of(q, 3);
    outcome want_p = run(&f, p, NULL), want_q = run(&f, q, NULL);
    /* Anonymous with a prefix in the cache and with a new prompt each time
     * (nothing to reuse); a new agent; an agent's second request. */
    static const char *const agents[] = {NULL, NULL, "agent-1", "agent-2"};
    for (int a = 0; a < 4; a++) {
        uint64_t k = 1, failed = 0;
        for (;; k++) {
            settle(&f);
            outcome o;
            memset(&o, 0, sizeof o);
            int32_t fresh[N_PROMPT];
            prompt_of(fresh, 100 + (uint32_t)k);
            const int32_t *prompt = a == 1 ? fresh : p;
            gen_params gp = params(prompt, agents[a]);
            gen_request *r = NULL;
            sem_err err = {0};
            alloc_fail_arm(k, ALLOC_FAIL_ANY_THREAD);
            o.submit = f.gp.ops->submit(f.gp.self, &gp, &r, &err);
            if (o.submit == SEM_OK)
                read_all(&f, r, &o);
            settle(&f);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (r)
                f.gp.ops->release(f.gp.self, r);
            if (o.submit != SEM_OK) {
                if (!hit || o.submit != SEM_ENOMEM)
                    fail_msg("allocation %llu failed: submit gave %s (%s)",
                             (unsigned long long)k, sem_status_name(o.submit), err.detail);
                failed++;
            } else if (o.res.finish == GEN_ERROR) {
                if (!hit || o.res.error.status != SEM_ENOMEM)
                    fail_msg("allocation %llu failed: the request failed with %s (%s)",
                             (unsigned long long)k, sem_status_name(o.res.error.status),
                             o.res.error.detail);
                failed++;
            } else {
                outcome want = a == 1 ? run(&f, fresh, NULL) : want_p;
                assert_same_text(&o, &want);
            }
            /* Whatever happened, the engine serves the next request as before. */
            outcome next = run(&f, q, NULL);
            assert_same_text(&next, &want_q);
            if (!hit)
                break;
        }
        printf("%s: %llu allocations, %llu requests failed\n",
               a == 0 ? "anonymous, prefix cached" : a == 1 ? "anonymous, new prompt"
                                                            : agents[a],
               (unsigned long long)k - 1, (unsigned long long)failed);
        assert_true(failed > 0);
    }
    close_fixture(&f);
}

/* Frees the agent's KV (saving it first if needed) and waits until it is
 * only on disk (a save may still be under way; an older file is there). */
static void evict_to_disk(fixture *f, const char *key)
{
    for (int i = 0; i < 10000; i++) {
        sem_err err = {0};
        sem_status st = f->as.ops->evict(f->as.self, key, &err);
        agent_info ai;
        if (st != SEM_EBUSY && f->as.ops->get(f->as.self, key, &ai, NULL) == SEM_OK &&
            ai.tier == AGENT_TIER_WARM && !ai.busy && ai.disk_bytes > 0)
            return;
        usleep(1000);
    }
    fail_msg("agent '%s' did not go to disk", key);
}

static void an_agent_on_disk_fails_cleanly(void **state)
{
    (void)state;
    fixture f;
    open_fixture_with(&f, 1);
    int32_t p[N_PROMPT];
    prompt_of(p, 4);
    outcome want = run(&f, p, "disk-1");
    uint64_t k = 1, failed = 0;
    for (;; k++) {
        evict_to_disk(&f, "disk-1");
        outcome o;
        memset(&o, 0, sizeof o);
        gen_params gp = params(p, "disk-1");
        gen_request *r = NULL;
        sem_err err = {0};
        alloc_fail_arm(k, ALLOC_FAIL_ANY_THREAD);
        o.submit = f.gp.ops->submit(f.gp.self, &gp, &r, &err);
        if (o.submit == SEM_OK)
            read_all(&f, r, &o);
        settle(&f);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (r)
            f.gp.ops->release(f.gp.self, r);
        if (o.submit != SEM_OK) {
            if (!hit || o.submit != SEM_ENOMEM)
                fail_msg("allocation %llu failed: submit gave %s (%s)", (unsigned long long)k,
                         sem_status_name(o.submit), err.detail);
            failed++;
        } else if (o.res.finish == GEN_ERROR) {
            if (!hit || o.res.error.status != SEM_ENOMEM)
                fail_msg("allocation %llu failed: the request failed with %s (%s)",
                         (unsigned long long)k, sem_status_name(o.res.error.status),
                         o.res.error.detail);
            failed++;
        } else {
            assert_same_text(&o, &want);
        }
        /* The agent is still known, with its file, and its memory still serves it. */
        agent_info ai;
        assert_int_equal(f.as.ops->get(f.as.self, "disk-1", &ai, NULL), SEM_OK);
        if (ai.disk_bytes == 0)
            fail_msg("allocation %llu failed: the engine forgot the agent's file",
                     (unsigned long long)k);
        outcome next = run(&f, p, "disk-1");
        assert_same_text(&next, &want);
        pthread_mutex_lock(&f.log_lock);
        int quarantined = strstr(f.log, "quarantin") != NULL;
        pthread_mutex_unlock(&f.log_lock);
        if (quarantined)
            fail_msg("allocation %llu failed and a file was quarantined:\n%s",
                     (unsigned long long)k, f.log);
        if (!hit)
            break;
    }
    printf("agent on disk: %llu allocations, %llu requests failed\n", (unsigned long long)k - 1,
           (unsigned long long)failed);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submit_fails_cleanly),
        cmocka_unit_test(a_whole_request_fails_cleanly),
        cmocka_unit_test(an_agent_on_disk_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
