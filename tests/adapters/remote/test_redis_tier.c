/*
 * The remote tier on Redis (adapters/remote/redis_tier.h), against a real
 * redis-server that each test starts on a free 127.0.0.1 port and kills:
 * put/get/remove, spaces that never see each other, shared chunks
 * counted by reference, a dead server (EIO, then EBUSY while backing off,
 * then recovery), a restart that lost everything, Redis at maxmemory, a
 * slow Redis, the LRU byte budget and the TTL. Without redis-server the
 * tests that need it skip, saying how to install it.
 */
#include "../../test_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/remote/redis_tier.h"
#include "base/deadline.h"
#include "remote_test_util.h"

/* ------------------------------------------------------------ helpers */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static redis_tier *open_tier(const redis_process *p, uint64_t budget, uint32_t ttl,
                             uint32_t timeout_ms)
{
    redis_tier_opts o = {.url = redis_process_url(p), .budget_bytes = budget, .ttl_s = ttl,
                         .timeout_ms = timeout_ms};
    sem_err err = {0};
    redis_tier *r = redis_tier_open(&o, &err);
    if (!r)
        fail_msg("open: %s", err.detail);
    return r;
}

/* A blob of n bytes whose content depends on seed. */
static uint8_t *blob(size_t n, unsigned seed)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        b[i] = (uint8_t)(x >> 24);
    }
    return b;
}

typedef struct agent_blobs {
    uint8_t *index;
    size_t index_len;
    remote_blob chunks[4];
    char *names[4];
    size_t n;
} agent_blobs;

/* An agent whose chunk i is named after chunk_seed[i] (same seed, same chunk). */
static agent_blobs make_agent(size_t index_len, size_t chunk_len, const unsigned *chunk_seed,
                              size_t n)
{
    agent_blobs a = {.index = blob(index_len, 1000 + (unsigned)index_len), .index_len = index_len,
                     .n = n};
    for (size_t i = 0; i < n; i++) {
        a.names[i] = malloc(33);
        assert_non_null(a.names[i]);
        snprintf(a.names[i], 33, "%032x", chunk_seed[i]);
        a.chunks[i] = (remote_blob){a.names[i], blob(chunk_len, chunk_seed[i]), chunk_len};
    }
    return a;
}

static void free_agent(agent_blobs *a)
{
    free(a->index);
    for (size_t i = 0; i < a->n; i++) {
        free((void *)a->chunks[i].data);
        free(a->names[i]);
    }
}

static sem_status put(remote_tier t, const char *space, const char *key, const agent_blobs *a)
{
    sem_err err = {0};
    sem_status st = t.ops->put_agent(t.self, space, key, a->index, a->index_len, a->chunks, a->n,
                                     &err);
    if (st != SEM_OK)
        print_message("put %s/%s: %s\n", space, key, err.detail);
    return st;
}

static sem_status get(remote_tier t, const char *space, const char *key, const agent_blobs *want)
{
    uint8_t *data = NULL;
    size_t len = 0;
    sem_err err = {0};
    sem_status st = t.ops->get_agent(t.self, space, key, &data, &len, &err);
    if (st == SEM_OK && want) {
        assert_int_equal(len, want->index_len);
        assert_memory_equal(data, want->index, len);
    }
    free(data);
    return st;
}

static sem_status get_chunk(remote_tier t, const char *space, const remote_blob *want)
{
    uint8_t *data = NULL;
    size_t len = 0;
    sem_status st = t.ops->get_chunk(t.self, space, want->name, &data, &len, NULL);
    if (st == SEM_OK) {
        assert_int_equal(len, want->len);
        assert_memory_equal(data, want->data, len);
    }
    free(data);
    return st;
}

static remote_stats stats_of(remote_tier t)
{
    remote_stats s;
    t.ops->stats(t.self, &s);
    return s;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 0);
    remote_tier t = redis_tier_port(r);
    assert_int_equal(stats_of(t).state, REMOTE_OK);
    unsigned seeds[3] = {1, 2, 3};
    agent_blobs a = make_agent(5000, 70000, seeds, 3);
    assert_int_equal(get(t, "S1", "alice", NULL), SEM_ENOTFOUND);
    assert_int_equal(put(t, "S1", "alice", &a), SEM_OK);
    assert_int_equal(get(t, "S1", "alice", &a), SEM_OK);
    for (size_t i = 0; i < a.n; i++)
        assert_int_equal(get_chunk(t, "S1", &a.chunks[i]), SEM_OK);
    /* Last writer wins; the chunks it no longer names go. */
    unsigned seeds2[1] = {9};
    agent_blobs b = make_agent(3000, 1000, seeds2, 1);
    assert_int_equal(put(t, "S1", "alice", &b), SEM_OK);
    assert_int_equal(get(t, "S1", "alice", &b), SEM_OK);
    assert_int_equal(get_chunk(t, "S1", &a.chunks[0]), SEM_ENOTFOUND);
    remote_stats s = stats_of(t);
    assert_int_equal(s.puts, 2);
    assert_int_equal(s.bytes, 3000 + 1000);
    assert_int_equal(t.ops->remove_agent(t.self, "S1", "alice", NULL), SEM_OK);
    assert_int_equal(get(t, "S1", "alice", NULL), SEM_ENOTFOUND);
    assert_int_equal(get_chunk(t, "S1", &b.chunks[0]), SEM_ENOTFOUND);
    assert_int_equal(t.ops->remove_agent(t.self, "S1", "alice", NULL), SEM_ENOTFOUND);
    char reply[64];
    assert_int_equal(redis_process_cmd(p, reply, sizeof reply, "GET sem:v1:bytes"), 0);
    assert_string_equal(reply, "0");
    s = stats_of(t);
    assert_int_equal(s.gets, 4);
    assert_int_equal(s.get_hits, 2);
    assert_int_equal(s.get_failures, 0);
    free_agent(&a);
    free_agent(&b);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_spaces_apart(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 0);
    remote_tier t = redis_tier_port(r);
    unsigned seeds[1] = {5};
    agent_blobs a = make_agent(100, 100, seeds, 1);
    assert_int_equal(put(t, "modelA.ns1", "k", &a), SEM_OK);
    assert_int_equal(get(t, "modelB.ns1", "k", NULL), SEM_ENOTFOUND);
    assert_int_equal(get(t, "modelA.ns2", "k", NULL), SEM_ENOTFOUND);
    assert_int_equal(get_chunk(t, "modelB.ns1", &a.chunks[0]), SEM_ENOTFOUND);
    assert_int_equal(get(t, "modelA.ns1", "k", &a), SEM_OK);
    /* Names Lua or the key layout could misread are refused. */
    assert_int_equal(put(t, "a b", "k", &a), SEM_EINVAL);
    assert_int_equal(put(t, "s", "", &a), SEM_EINVAL);
    free_agent(&a);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_shared_chunks_counted(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 0);
    remote_tier t = redis_tier_port(r);
    unsigned sa[2] = {1, 2}, sb[2] = {1, 3};
    agent_blobs a = make_agent(100, 1000, sa, 2), b = make_agent(200, 1000, sb, 2);
    assert_int_equal(put(t, "S", "a", &a), SEM_OK);
    assert_int_equal(put(t, "S", "b", &b), SEM_OK);
    assert_int_equal(stats_of(t).bytes, 100 + 200 + 3 * 1000); /* chunk 1 once */
    assert_int_equal(t.ops->remove_agent(t.self, "S", "a", NULL), SEM_OK);
    assert_int_equal(get_chunk(t, "S", &a.chunks[0]), SEM_OK); /* b still names it */
    assert_int_equal(get_chunk(t, "S", &a.chunks[1]), SEM_ENOTFOUND);
    assert_int_equal(get(t, "S", "b", &b), SEM_OK);
    free_agent(&a);
    free_agent(&b);
    redis_tier_close(r);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ faults */

static void test_dead_server(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 300);
    remote_tier t = redis_tier_port(r);
    unsigned seeds[1] = {1};
    agent_blobs a = make_agent(100, 100, seeds, 1);
    assert_int_equal(put(t, "S", "k", &a), SEM_OK);
    redis_process_kill(p);
    double t0 = deadline_now_ms();
    assert_int_equal(get(t, "S", "k", NULL), SEM_EIO);
    assert_int_equal(stats_of(t).state, REMOTE_DOWN);
    assert_int_equal(get(t, "S", "k", NULL), SEM_EBUSY); /* backing off: at once */
    assert_int_equal(put(t, "S", "k", &a), SEM_EBUSY);
    assert_true(deadline_now_ms() - t0 < 300);
    sleep_ms(150); /* past the first backoff (100 ms): tries, fails, backs off 200 ms */
    assert_int_equal(get(t, "S", "k", NULL), SEM_EIO);
    assert_int_equal(get(t, "S", "k", NULL), SEM_EBUSY);
    /* Restarted without persistence: up again, and empty. */
    assert_int_equal(redis_process_restart(p), 0);
    sem_status st = SEM_EBUSY;
    for (int i = 0; i < 100 && st == SEM_EBUSY; i++) {
        st = get(t, "S", "k", NULL);
        if (st == SEM_EBUSY)
            sleep_ms(20);
    }
    assert_int_equal(st, SEM_ENOTFOUND);
    assert_int_equal(stats_of(t).state, REMOTE_OK);
    assert_int_equal(put(t, "S", "k", &a), SEM_OK);
    assert_int_equal(get(t, "S", "k", &a), SEM_OK);
    remote_stats s = stats_of(t);
    assert_true(s.get_failures >= 3);
    assert_int_equal(s.put_failures, 1);
    free_agent(&a);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_open_while_down(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_process_kill(p);
    redis_tier *r = open_tier(p, 0, 0, 200); /* not an error: starts DOWN */
    remote_tier t = redis_tier_port(r);
    assert_int_equal(stats_of(t).state, REMOTE_DOWN);
    assert_int_equal(get(t, "S", "k", NULL), SEM_EBUSY);
    assert_int_equal(redis_process_restart(p), 0);
    sleep_ms(150);
    assert_int_equal(get(t, "S", "k", NULL), SEM_ENOTFOUND);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_maxmemory(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip("maxmemory 2mb\nmaxmemory-policy noeviction");
    redis_tier *r = open_tier(p, 0, 0, 0);
    remote_tier t = redis_tier_port(r);
    int failed = 0;
    for (unsigned i = 0; i < 20; i++) {
        unsigned seeds[1] = {100 + i};
        agent_blobs a = make_agent(1000, 256 * 1024, seeds, 1);
        char key[16];
        snprintf(key, sizeof key, "k%u", i);
        sem_status st = put(t, "S", key, &a);
        assert_true(st == SEM_OK || st == SEM_EIO);
        failed += st != SEM_OK;
        free_agent(&a);
    }
    remote_stats s = stats_of(t);
    assert_true(failed > 0);
    assert_int_equal(s.put_failures, (uint64_t)failed);
    assert_true(s.full > 0);
    assert_int_equal(s.state, REMOTE_OK); /* Redis answered: the connection is fine */
    assert_int_equal(get(t, "S", "k0", NULL), SEM_OK); /* reads still work */
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_slow_server(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 200);
    remote_tier t = redis_tier_port(r);
    unsigned seeds[1] = {1};
    agent_blobs a = make_agent(100, 100, seeds, 1);
    assert_int_equal(put(t, "S", "k", &a), SEM_OK);
    redis_process_sleep(p, 1.0);
    sleep_ms(20); /* the sleep has begun */
    double t0 = deadline_now_ms();
    assert_int_equal(get(t, "S", "k", NULL), SEM_EIO);
    double took = deadline_now_ms() - t0;
    print_message("a read from a sleeping Redis returned after %.0f ms (timeout 200 ms)\n", took);
    assert_true(took < 200 + 150);
    assert_true(stats_of(t).timeouts >= 1);
    assert_int_equal(get(t, "S", "k", NULL), SEM_EBUSY);
    sem_status st = SEM_EIO;
    for (int i = 0; i < 100 && st != SEM_OK; i++) {
        st = get(t, "S", "k", &a);
        if (st != SEM_OK)
            sleep_ms(50);
    }
    assert_int_equal(st, SEM_OK);
    free_agent(&a);
    redis_tier_close(r);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ budget, TTL */

static void test_budget_lru(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    /* Each agent: 1000 bytes of index and a chunk of its own of 10000. */
    redis_tier *r = open_tier(p, 3 * 11000 + 500, 0, 0);
    remote_tier t = redis_tier_port(r);
    agent_blobs ag[4];
    const char *keys[4] = {"a", "b", "c", "d"};
    for (unsigned i = 0; i < 4; i++) {
        unsigned seeds[1] = {10 + i};
        ag[i] = make_agent(1000, 10000, seeds, 1);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(put(t, "S", keys[i], &ag[i]), SEM_OK);
        sleep_ms(5);
    }
    assert_int_equal(get(t, "S", "a", &ag[0]), SEM_OK); /* a is now newer than b */
    sleep_ms(5);
    assert_int_equal(put(t, "S", "d", &ag[3]), SEM_OK);
    assert_int_equal(get(t, "S", "b", NULL), SEM_ENOTFOUND);
    assert_int_equal(get_chunk(t, "S", &ag[1].chunks[0]), SEM_ENOTFOUND);
    assert_int_equal(get(t, "S", "a", &ag[0]), SEM_OK);
    assert_int_equal(get(t, "S", "c", &ag[2]), SEM_OK);
    assert_int_equal(get(t, "S", "d", &ag[3]), SEM_OK);
    remote_stats s = stats_of(t);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.bytes, 3 * 11000);
    for (int i = 0; i < 4; i++)
        free_agent(&ag[i]);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_ttl(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 1, 0);
    remote_tier t = redis_tier_port(r);
    unsigned seeds[1] = {1};
    agent_blobs a = make_agent(100, 100, seeds, 1);
    assert_int_equal(put(t, "S", "k", &a), SEM_OK);
    char reply[64];
    assert_int_equal(redis_process_cmd(p, reply, sizeof reply, "TTL sem:v1:S:a:k"), 0);
    assert_int_equal(get(t, "S", "k", &a), SEM_OK);
    assert_int_equal(get_chunk(t, "S", &a.chunks[0]), SEM_OK);
    sleep_ms(2200);
    assert_int_equal(get(t, "S", "k", NULL), SEM_ENOTFOUND);
    assert_int_equal(get_chunk(t, "S", &a.chunks[0]), SEM_ENOTFOUND);
    /* The bookkeeping of an expired agent goes at the next write. */
    unsigned seeds2[1] = {2};
    agent_blobs b = make_agent(50, 50, seeds2, 1);
    assert_int_equal(put(t, "S", "k2", &b), SEM_OK);
    assert_int_equal(stats_of(t).bytes, 100);
    free_agent(&a);
    free_agent(&b);
    redis_tier_close(r);
    redis_process_stop(p);
}

static void test_chunk_vanished_before_commit(void **state)
{
    (void)state;
    redis_process *p = rt_start_or_skip(NULL);
    redis_tier *r = open_tier(p, 0, 0, 0);
    remote_tier t = redis_tier_port(r);
    unsigned seeds[1] = {1};
    agent_blobs a = make_agent(100, 100, seeds, 1);
    assert_int_equal(put(t, "S", "a", &a), SEM_OK);
    /* A chunk deleted by hand (or evicted by Redis) is a miss for readers and
     * is written again by the next writer. */
    assert_int_equal(redis_process_cmd(p, NULL, 0, "DEL sem:v1:S:c:%s", a.names[0]), 0);
    assert_int_equal(get_chunk(t, "S", &a.chunks[0]), SEM_ENOTFOUND);
    assert_int_equal(put(t, "S", "b", &a), SEM_OK);
    assert_int_equal(get_chunk(t, "S", &a.chunks[0]), SEM_OK);
    assert_int_equal(stats_of(t).bytes, 100 + 100 + 100);
    free_agent(&a);
    redis_tier_close(r);
    redis_process_stop(p);
}

int main(void)
{
    /* As semantic serve does: a write to a Redis that was killed must be
     * an error, not a signal that ends the process (redis_tier.h). */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_spaces_apart),
        cmocka_unit_test(test_shared_chunks_counted),
        cmocka_unit_test(test_dead_server),
        cmocka_unit_test(test_open_while_down),
        cmocka_unit_test(test_maxmemory),
        cmocka_unit_test(test_slow_server),
        cmocka_unit_test(test_budget_lru),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_chunk_vanished_before_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
