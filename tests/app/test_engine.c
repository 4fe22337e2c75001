/*
 * Specification of the batching engine (engine.h), run on real models:
 * batching does not change what a sequence generates, long prompts do not
 * stall decoding, an agent's requests run in order and reuse its KV,
 * cancellation and pool pressure leave nothing behind, and any number of
 * threads may submit at once.
 */
#include "../test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../golden.h"
#include "adapters/model/model_backend.h"
#include "app/engine.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"

typedef struct fixture {
    model *m;
    model_backend *mb;
    block_pool *pool;
    engine *e;
    generation_port gp;
} fixture;

/* A model, a pool of `blocks` 16-token blocks, an engine. */
static void open_fixture(fixture *f, const char *path, uint32_t blocks, engine_opts o)
{
    sem_err err = {0};
    memset(f, 0, sizeof *f);
    f->m = model_load(path, &err);
    if (!f->m)
        fail_msg("%s", err.detail);
    forward_opts fo = {.n_threads = 2, .isa = cpu_isa_best(), .max_tokens = o.chunk + o.max_batch};
    f->mb = model_backend_create(f->m, &fo, 512, &err);
    assert_non_null(f->mb);
    cache_spec s = model_cache_spec(f->m, 16, CACHE_KV_F16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, &err);
    assert_non_null(f->pool);
    f->e = engine_create(model_backend_port(f->mb), f->pool, &o, &err);
    if (!f->e)
        fail_msg("%s", err.detail);
    f->gp = engine_generation_port(f->e);
}

static void close_fixture(fixture *f)
{
    engine_destroy(f->e);
    /* Nothing leaked: every block is back and every owner gone. */
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    block_pool_destroy(f->pool);
    model_backend_destroy(f->mb);
    model_free(f->m);
}

static engine_opts opts(uint32_t max_batch, uint32_t chunk)
{
    engine_opts o = engine_defaults();
    o.max_batch = max_batch;
    o.chunk = chunk;
    return o;
}

static gen_params greedy(const char *agent, const int32_t *prompt, uint32_t n, uint32_t max)
{
    gen_params p = {.agent_id = agent, .prompt = prompt, .n_prompt = n, .max_tokens = max};
    p.sampling = (gen_sampling){.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    return p;
}

static gen_request *submit(fixture *f, const gen_params *p)
{
    gen_request *r = NULL;
    sem_err err = {0};
    if (f->gp.ops->submit(f->gp.self, p, &r, &err) != SEM_OK)
        fail_msg("submit: %s", err.detail);
    return r;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads everything; returns the text (malloc'd). */
static char *read_all(fixture *f, gen_request *r)
{
    size_t cap = 1024, len = 0;
    char *text = malloc(cap);
    for (;;) {
        if (cap - len < 256)
            text = realloc(text, cap *= 2);
        size_t n = 0;
        int done = f->gp.ops->read(f->gp.self, r, text + len, cap - len - 1, &n, -1);
        len += n;
        if (done)
            break;
    }
    text[len] = '\0';
    return text;
}

static uint32_t tokens_of(fixture *f, gen_request *r, int32_t *out)
{
    int32_t *t;
    uint32_t n;
    assert_int_equal(f->gp.ops->tokens(f->gp.self, r, &t, &n, NULL), SEM_OK);
    memcpy(out, t, n * sizeof *t);
    free(t);
    return n;
}

/* A deterministic prompt of n tokens. */
static void prompt_of(int32_t *p, uint32_t n, uint32_t salt, uint32_t vocab)
{
    p[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        p[i] = (int32_t)(3 + (i * 131 + salt * 977) % (vocab - 3));
}

/* ---------------------------------------------------------------- batching */

/* k sequences of different prompt lengths generate the same tokens alone
 * and all together. */
static void check_batched_equals_alone(const char *path, uint32_t k)
{
    fixture f;
    open_fixture(&f, path, 512, opts(8, 64));
    uint32_t V = model_hparams_of(f.m)->n_vocab;
    enum { GEN = 12 };
    int32_t prompts[8][80], alone[8][GEN], together[8][GEN];
    uint32_t lens[8], n_alone[8];
    for (uint32_t i = 0; i < k; i++) {
        lens[i] = 20 + i * 7; /* 20 .. 69: longer than gemma3's window of 16 */
        prompt_of(prompts[i], lens[i], i, V);
        gen_params p = greedy(NULL, prompts[i], lens[i], GEN);
        gen_request *r = submit(&f, &p);
        free(read_all(&f, r));
        n_alone[i] = tokens_of(&f, r, alone[i]);
        f.gp.ops->release(f.gp.self, r);
    }
    gen_request *rs[8];
    for (uint32_t i = 0; i < k; i++) {
        gen_params p = greedy(NULL, prompts[i], lens[i], GEN);
        rs[i] = submit(&f, &p);
    }
    for (uint32_t i = 0; i < k; i++) {
        free(read_all(&f, rs[i]));
        uint32_t n = tokens_of(&f, rs[i], together[i]);
        assert_int_equal(n, n_alone[i]);
        if (memcmp(alone[i], together[i], n * sizeof(int32_t)) != 0)
            fail_msg("%s: sequence %u of %u generated other tokens in a batch", path, i, k);
        f.gp.ops->release(f.gp.self, rs[i]);
    }
    close_fixture(&f);
}

static void batched_sequences_generate_what_they_generate_alone(void **state)
{
    (void)state;
    for (uint32_t k = 1; k <= 8; k++)
        check_batched_equals_alone(STORIES, k);
    static const char *shared[] = {"tiny-llama", "tiny-gemma3", "tiny-qwen2moe"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096], rel[256];
        snprintf(rel, sizeof rel, "../models/%s.gguf", shared[i]);
        if (!golden_full_root() || !golden_find(path, sizeof path, rel, "none")) {
            printf("  %s: skipped (no ../shared)\n", shared[i]);
            continue;
        }
        check_batched_equals_alone(path, 1);
        check_batched_equals_alone(path, 3);
        check_batched_equals_alone(path, 8);
    }
}

/* ---------------------------------------------------------------- interleaving */

typedef struct step_log {
    pthread_mutex_t lock;
    engine_step_info steps[4096];
    uint32_t n;
} step_log;

static void record_step(void *user, const engine_step_info *info)
{
    step_log *l = user;
    pthread_mutex_lock(&l->lock);
    if (l->n < 4096)
        l->steps[l->n++] = *info;
    pthread_mutex_unlock(&l->lock);
}

static void a_long_prefill_does_not_stall_decoding(void **state)
{
    (void)state;
    static step_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    engine_opts o = opts(4, 16);
    o.on_step = record_step;
    o.on_step_user = &log;
    fixture f;
    open_fixture(&f, STORIES, 512, o);
    int32_t short_p[8], long_p[300];
    prompt_of(short_p, 8, 1, 512);
    prompt_of(long_p, 300, 2, 512);
    gen_params a = greedy(NULL, short_p, 8, 200), b = greedy(NULL, short_p, 6, 200);
    gen_request *ra = submit(&f, &a), *rb = submit(&f, &b);
    /* Wait until both decode. */
    for (;;) {
        pthread_mutex_lock(&log.lock);
        int ready = log.n > 0 && log.steps[log.n - 1].n_decode == 2;
        pthread_mutex_unlock(&log.lock);
        if (ready)
            break;
        usleep(1000);
    }
    pthread_mutex_lock(&log.lock);
    uint32_t from = log.n;
    pthread_mutex_unlock(&log.lock);
    gen_params c = greedy(NULL, long_p, 300, 4);
    gen_request *rc = submit(&f, &c);
    free(read_all(&f, rc));
    /* Every step that evaluated prompt tokens also decoded both others,
     * and no step took more than one chunk of prompt. */
    uint32_t prefill_steps = 0;
    pthread_mutex_lock(&log.lock);
    for (uint32_t i = from; i < log.n; i++) {
        const engine_step_info *s = &log.steps[i];
        assert_true(s->prefill_tokens <= 16);
        if (s->prefill_tokens > 0) {
            prefill_steps++;
            assert_int_equal(s->n_decode, 2);
        }
    }
    pthread_mutex_unlock(&log.lock);
    assert_true(prefill_steps >= 300 / 16);
    f.gp.ops->release(f.gp.self, ra);
    f.gp.ops->release(f.gp.self, rb);
    f.gp.ops->release(f.gp.self, rc);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- agents */

static void an_agent_runs_in_order_and_reuses_its_kv(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES, 512, opts(8, 64));
    int32_t p1[40];
    prompt_of(p1, 40, 3, 512);
    gen_params a = greedy("agent-1", p1, 40, 10);
    gen_request *r1 = submit(&f, &a);
    free(read_all(&f, r1));
    int32_t gen1[10];
    uint32_t n1 = tokens_of(&f, r1, gen1);
    gen_result res1 = f.gp.ops->result(f.gp.self, r1);
    assert_int_equal(res1.cached_tokens, 0);

    /* The conversation continues: prompt 1, its answer, more. */
    int32_t p2[80];
    memcpy(p2, p1, sizeof p1);
    memcpy(p2 + 40, gen1, n1 * sizeof(int32_t));
    for (uint32_t i = 0; i < 5; i++)
        p2[40 + n1 + i] = 100 + (int32_t)i;
    uint32_t n2 = 40 + n1 + 5;
    gen_params b = greedy("agent-1", p2, n2, 8);
    /* Three requests of the agent submitted at once finish in order. */
    double t2 = now_ms();
    gen_request *r2 = submit(&f, &b);
    double t3 = now_ms();
    gen_request *r3 = submit(&f, &b);
    gen_request *r4 = submit(&f, &b);
    double t4 = now_ms();
    free(read_all(&f, r4));
    gen_result res2 = f.gp.ops->result(f.gp.self, r2), res3 = f.gp.ops->result(f.gp.self, r3),
               res4 = f.gp.ops->result(f.gp.self, r4);
    assert_int_not_equal(res2.finish, GEN_RUNNING);
    assert_int_not_equal(res3.finish, GEN_RUNNING);
    /* Each waited for the one before to finish. The engine times each from
     * its own submit, so a request's admission (its submit + queue_ms) is
     * compared with the previous one's finish (its submit + total_ms) with
     * the gap between the submits bounded from above by the clock around
     * them: on a busy machine (sanitizers) submits are milliseconds apart. */
    assert_true(res3.queue_ms + (t4 - t2) + 1.0 >= res2.total_ms);
    assert_true(res4.queue_ms + (t4 - t3) + 1.0 >= res3.total_ms);
    /* r2 reused everything the agent had evaluated: prompt 1 and all but
     * the last generated token (sampled, never evaluated). */
    assert_int_equal(res2.cached_tokens, 40 + n1 - 1);
    /* r3 and r4 send the same prompt again: all but its last token. */
    assert_int_equal(res3.cached_tokens, n2 - 1);
    assert_int_equal(res4.cached_tokens, n2 - 1);

    /* Reuse gives the tokens a fresh sequence gives. */
    int32_t reused[8], fresh[8];
    uint32_t nr = tokens_of(&f, r3, reused);
    gen_params c = greedy(NULL, p2, n2, 8);
    gen_request *r5 = submit(&f, &c);
    free(read_all(&f, r5));
    uint32_t nf = tokens_of(&f, r5, fresh);
    assert_int_equal(nr, nf);
    assert_memory_equal(reused, fresh, nf * sizeof(int32_t));

    /* An edit in the middle keeps only the prefix before it. */
    p2[20] = (p2[20] + 1) % 512;
    gen_params d = greedy("agent-1", p2, n2, 4);
    gen_request *r6 = submit(&f, &d);
    free(read_all(&f, r6));
    assert_int_equal(f.gp.ops->result(f.gp.self, r6).cached_tokens, 20);
    /* ... and still gives what a fresh sequence gives for the edited prompt. */
    gen_params e = greedy(NULL, p2, n2, 4);
    gen_request *r7 = submit(&f, &e);
    free(read_all(&f, r7));
    nr = tokens_of(&f, r6, reused);
    nf = tokens_of(&f, r7, fresh);
    assert_int_equal(nr, nf);
    assert_memory_equal(reused, fresh, nf * sizeof(int32_t));
    gen_request *all[] = {r1, r2, r3, r4, r5, r6, r7};
    for (int i = 0; i < 7; i++)
        f.gp.ops->release(f.gp.self, all[i]);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- cancel */

static void cancellation_mid_prefill_and_mid_decode(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES, 512, opts(4, 8));
    int32_t p[400];
    prompt_of(p, 400, 4, 512);
    gen_params a = greedy(NULL, p, 400, 50);
    gen_request *r = submit(&f, &a);
    usleep(2000);
    f.gp.ops->cancel(f.gp.self, r);
    free(read_all(&f, r));
    gen_result res = f.gp.ops->result(f.gp.self, r);
    assert_int_equal(res.finish, GEN_CANCELLED);
    f.gp.ops->release(f.gp.self, r);

    gen_params b = greedy("agent-x", p, 10, 400);
    r = submit(&f, &b);
    char buf[64];
    size_t n = 0, got = 0;
    while (got < 20) { /* some text has streamed: it is decoding */
        f.gp.ops->read(f.gp.self, r, buf, sizeof buf, &n, -1);
        got += n;
    }
    f.gp.ops->cancel(f.gp.self, r);
    free(read_all(&f, r));
    res = f.gp.ops->result(f.gp.self, r);
    assert_int_equal(res.finish, GEN_CANCELLED);
    assert_true(res.completion_tokens > 0 && res.completion_tokens < 400);
    f.gp.ops->release(f.gp.self, r);
    /* Releasing a running request cancels it too. */
    r = submit(&f, &b);
    f.gp.ops->release(f.gp.self, r);
    engine_stats st = engine_get_stats(f.e);
    for (int i = 0; i < 10000 && st.running > 0; i++) { /* the engine sees it at its next step */
        usleep(1000);
        st = engine_get_stats(f.e);
    }
    assert_int_equal(st.running, 0);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- pool */

static void pool_pressure_queues_reclaims_and_refuses(void **state)
{
    (void)state;
    fixture f;
    /* stories260K: 5 layers; 40 blocks hold 8 x 16-token blocks per layer. */
    open_fixture(&f, STORIES, 40, opts(8, 16));
    int32_t p[200];
    prompt_of(p, 200, 5, 512);
    sem_err err = {0};
    gen_request *r = NULL;
    /* Can never fit: 200 + 100 tokens need 19 blocks per layer. */
    gen_params big = greedy(NULL, p, 200, 100);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &big, &r, &err), SEM_ETOOLARGE);
    assert_contains(err.detail, "needs 95 KV blocks (200 prompt + 100 generated tokens); the "
                                "whole pool has 40");
    /* Each of these needs 5 blocks per layer (25): one at a time. */
    gen_request *rs[4];
    for (int i = 0; i < 4; i++) {
        gen_params q = greedy(NULL, p + i, 60, 10);
        rs[i] = submit(&f, &q);
    }
    for (int i = 0; i < 4; i++) {
        free(read_all(&f, rs[i]));
        assert_int_not_equal(f.gp.ops->result(f.gp.self, rs[i]).finish, GEN_ERROR);
        f.gp.ops->release(f.gp.self, rs[i]);
    }
    /* Agents keep their KV while idle, and are reclaimed for newcomers. */
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i);
        gen_params q = greedy(id, p + 10 * i, 60, 10);
        r = submit(&f, &q);
        free(read_all(&f, r));
        assert_int_not_equal(f.gp.ops->result(f.gp.self, r).finish, GEN_ERROR);
        f.gp.ops->release(f.gp.self, r);
    }
    engine_stats st = engine_get_stats(f.e);
    assert_true(st.evictions >= 2);
    assert_true(st.agents_hot >= 1);
    close_fixture(&f);
}

static void bad_requests_are_refused_at_submit(void **state)
{
    (void)state;
    engine_opts o = opts(2, 16);
    o.max_queue = 2;
    fixture f;
    open_fixture(&f, STORIES, 256, o);
    int32_t p[600];
    prompt_of(p, 600, 6, 512);
    sem_err err = {0};
    gen_request *r = NULL;
    gen_params q = greedy("../etc", p, 10, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "agent key starts with a dot");
    q = greedy("a/b", p, 10, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "character 0x2f at position 1");
    q = greedy("", p, 10, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    q = greedy(NULL, p, 0, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "empty");
    q = greedy(NULL, p, 512, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_ETOOLARGE);
    assert_contains(err.detail, "the context holds 512");
    int32_t bad_tok[2] = {1, 99999};
    q = greedy(NULL, bad_tok, 2, 4);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "outside the vocabulary");
    q = greedy(NULL, p, 10, 0);
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    q = greedy(NULL, p, 10, 4);
    q.scope = "0123456789abcdef0123456789abcdef!"; /* 33 bytes */
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "scope");
    q = greedy(NULL, p, 10, 4);
    q.sampling.top_p = 0;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "top_p");
    const char *stops[] = {""};
    q = greedy(NULL, p, 10, 4);
    q.stop = stops;
    q.n_stop = 1;
    assert_int_equal(f.gp.ops->submit(f.gp.self, &q, &r, &err), SEM_EREQUEST);
    /* The admission queue is bounded. */
    gen_request *held[8];
    int accepted = 0, busy = 0;
    for (int i = 0; i < 8; i++) {
        q = greedy(NULL, p, 300, 100);
        sem_status st = f.gp.ops->submit(f.gp.self, &q, &held[accepted], &err);
        if (st == SEM_OK)
            accepted++;
        else if (st == SEM_EBUSY)
            busy++;
    }
    assert_true(busy > 0);
    assert_contains(err.detail, "admission queue is full");
    for (int i = 0; i < accepted; i++)
        f.gp.ops->release(f.gp.self, held[i]);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- stop strings */

static void the_result_names_the_stop_string_that_ended_it(void **state)
{
    (void)state;
    fixture f;
    open_fixture(&f, STORIES, 512, opts(4, 64));
    int32_t p[20];
    prompt_of(p, 20, 5, 512);
    gen_params q = greedy(NULL, p, 20, 24);
    gen_request *r = submit(&f, &q);
    char *text = read_all(&f, r);
    gen_result res = f.gp.ops->result(f.gp.self, r);
    assert_int_equal(res.stop_index, -1); /* max_tokens or end of generation */
    f.gp.ops->release(f.gp.self, r);
    assert_true(strlen(text) > 6);
    char stop[3] = {text[4], text[5], 0};
    const char *stops[] = {"\x01never", stop};
    q.stop = stops;
    q.n_stop = 2;
    r = submit(&f, &q);
    char *cut = read_all(&f, r);
    res = f.gp.ops->result(f.gp.self, r);
    assert_int_equal(res.finish, GEN_STOP);
    assert_int_equal(res.stop_index, 1);
    assert_int_equal(strlen(cut), (size_t)(strstr(text, stop) - text));
    f.gp.ops->release(f.gp.self, r);
    free(cut);
    free(text);
    close_fixture(&f);
}

/* ---------------------------------------------------------------- load */

typedef struct submitter {
    fixture *f;
    int id, failures, done;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    uint64_t rng = 99 + (uint64_t)s->id;
    int count = getenv("SEM_STRESS") ? 1250 : 125; /* make stress: 10,000 requests */
    for (int i = 0; i < count; i++) {
        int32_t p[64];
        uint32_t n = (uint32_t)(test_rand(&rng) % 60) + 2;
        prompt_of(p, n, (uint32_t)test_rand(&rng), 512);
        char id[16];
        snprintf(id, sizeof id, "t%d-%d", s->id, (int)(test_rand(&rng) % 3));
        gen_params q = greedy(test_rand(&rng) % 2 ? id : NULL, p, n,
                              (uint32_t)(test_rand(&rng) % 12) + 1);
        q.sampling.temperature = 0.7f;
        q.sampling.seed = test_rand(&rng);
        q.sampling.top_k = 20;
        gen_request *r = NULL;
        sem_err err = {0};
        sem_status st = s->f->gp.ops->submit(s->f->gp.self, &q, &r, &err);
        if (st == SEM_EBUSY) {
            usleep(1000);
            i--;
            continue;
        }
        if (st != SEM_OK) {
            s->failures++;
            continue;
        }
        if (test_rand(&rng) % 10 == 0) {
            s->f->gp.ops->release(s->f->gp.self, r); /* walks away */
            continue;
        }
        free(read_all(s->f, r));
        gen_result res = s->f->gp.ops->result(s->f->gp.self, r);
        if (res.finish == GEN_ERROR || res.finish == GEN_RUNNING)
            s->failures++;
        s->done++;
        s->f->gp.ops->release(s->f->gp.self, r);
    }
    return NULL;
}

/* 8 threads x 125 = 1000 mixed requests; TSan and ASan builds run this. */
static void a_thousand_requests_from_eight_threads(void **state)
{
    (void)state;
    engine_opts o = opts(8, 32);
    o.max_queue = 64;
    fixture f;
    open_fixture(&f, STORIES, 400, o);
    pthread_t th[8];
    submitter s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (submitter){.f = &f, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &s[i]), 0);
    }
    int done = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].failures, 0);
        done += s[i].done;
    }
    assert_true(done > (getenv("SEM_STRESS") ? 8000 : 800));
    close_fixture(&f); /* checks that every block came back */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batched_sequences_generate_what_they_generate_alone),
        cmocka_unit_test(a_long_prefill_does_not_stall_decoding),
        cmocka_unit_test(an_agent_runs_in_order_and_reuses_its_kv),
        cmocka_unit_test(cancellation_mid_prefill_and_mid_decode),
        cmocka_unit_test(pool_pressure_queues_reclaims_and_refuses),
        cmocka_unit_test(bad_requests_are_refused_at_submit),
        cmocka_unit_test(the_result_names_the_stop_string_that_ended_it),
        cmocka_unit_test(a_thousand_requests_from_eight_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
