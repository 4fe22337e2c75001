/*
 * The tiered warm store (adapters/store/tiered_store.h): two disk stores in
 * two folders, like two servers, over one real redis-server started on a
 * free 127.0.0.1 port by each test. An agent saved by the first node loads
 * in the second bit for bit; a blob corrupted by hand in Redis is reported,
 * dropped and missed, never served; Redis killed while the writer thread
 * writes leaves nothing half-written that a node would load; remove
 * removes both copies; a dead Redis never fails what the disk can serve.
 * Without redis-server the tests skip, saying how to install it.
 *
 * SEM_REMOTE_MEASURE=1 adds a measurement: a 4096-token agent of the 1B
 * shape (16 layers, 8 KV heads of 64) imported from Redis on loopback
 * against a load from the local disk.
 */
#include "store_test_util.h"

#include <signal.h>
#include <time.h>

#include "adapters/remote/redis_tier.h"
#include "adapters/store/disk_store.h"
#include "adapters/store/tiered_store.h"
#include "base/deadline.h"
#include "../remote/redis_process.h"

#define FP 0x0123456789abcdefull
#define CHUNK 32

typedef struct node {
    char *dir;
    disk_store *disk;
    redis_tier *redis;
    tiered_store *tiered;
    warm_store ws;
} node;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static redis_process *start_or_skip(const char *conf)
{
    char why[512];
    redis_process *p = redis_process_start(conf, why, sizeof why);
    if (!p) {
        print_message("skipped: %s\n", why);
        skip();
    }
    return p;
}

static void node_open(node *n, const redis_process *p, kv_payload payload, uint32_t chunk)
{
    memset(n, 0, sizeof *n);
    n->dir = temp_dir();
    disk_store_opts d = {.dir = n->dir, .fingerprint = FP, .payload = payload,
                         .chunk_tokens = chunk};
    sem_err err = {0};
    n->disk = disk_store_open(&d, &err);
    if (!n->disk)
        fail_msg("disk: %s", err.detail);
    redis_tier_opts r = {.url = redis_process_url(p), .timeout_ms = 1000};
    n->redis = redis_tier_open(&r, &err);
    assert_non_null(n->redis);
    tiered_store_opts t = {.disk = n->disk, .remote = redis_tier_port(n->redis),
                           .fingerprint = FP};
    n->tiered = tiered_store_open(&t, &err);
    if (!n->tiered)
        fail_msg("tiered: %s", err.detail);
    n->ws = tiered_store_port(n->tiered);
}

static void node_close(node *n)
{
    tiered_store_close(n->tiered, 2000);
    redis_tier_close(n->redis);
    disk_store_close(n->disk);
    remove_dir(n->dir);
}

static remote_stats stats_of(node *n, uint32_t *queued)
{
    remote_stats s;
    tiered_store_stats(n->tiered, &s, queued);
    return s;
}

/* Waits until the writer has tried `writes` puts in all (10 s at most). */
static void wait_writes(node *n, uint64_t writes)
{
    for (int i = 0; i < 1000; i++) {
        remote_stats s = stats_of(n, NULL);
        if (s.puts + s.put_failures >= writes)
            return;
        sleep_ms(10);
    }
    fail_msg("the writer did not get to %llu writes", (unsigned long long)writes);
}

static void save(node *n, const char *key, const block_table *t)
{
    sem_err err = {0};
    if (n->ws.ops->save(n->ws.self, key, t, NULL, &err) != SEM_OK)
        fail_msg("save %s: %s", key, err.detail);
}

static sem_status load(node *n, block_pool *pool, const char *key, block_table **t, sem_err *err)
{
    *t = NULL;
    return n->ws.ops->load(n->ws.self, key, pool, t, err);
}

/* The first Redis key matching pattern (KEYS), or "" */
static void key_matching(const redis_process *p, const char *pattern, char *out, size_t cap)
{
    assert_int_equal(redis_process_cmd(p, out, cap, "KEYS %s", pattern), 0);
}

/* ------------------------------------------------------------ tests */

static void test_two_nodes_bit_exact(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    node_open(&b, p, KV_PAYLOAD_F16, CHUNK);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, 7, 100, 1);
    save(&a, "alice.w1", src);
    wait_writes(&a, 1);
    remote_stats s = stats_of(&a, NULL);
    assert_int_equal(s.puts, 1);
    assert_int_equal(s.state, REMOTE_OK);

    /* b knows the agent only remotely until it loads it. */
    warm_info wi;
    sem_err err = {0};
    assert_int_equal(b.ws.ops->get(b.ws.self, "alice.w1", &wi, &err), SEM_ENOTFOUND);
    block_table *got = NULL;
    if (load(&b, pool, "alice.w1", &got, &err) != SEM_OK)
        fail_msg("load on b: %s", err.detail);
    assert_rows_identical(src, got);
    assert_table_is(got, 7, 100, 1.0 / 1024);
    block_table_destroy(got);
    /* Read into RAM only: b's disk gets it when the engine saves it. */
    assert_int_equal(b.ws.ops->get(b.ws.self, "alice.w1", &wi, &err), SEM_OK);
    assert_int_equal(wi.remote, 1);
    save(&b, "alice.w1", src);
    assert_int_equal(b.ws.ops->get(b.ws.self, "alice.w1", &wi, &err), SEM_OK);
    assert_int_equal(wi.remote, 0);
    assert_int_equal(wi.tokens, 100);

    /* A third node with the spec given learns of it through get(). */
    node c;
    node_open(&c, p, KV_PAYLOAD_F16, CHUNK);
    tiered_store_close(c.tiered, 0);
    cache_spec spec = store_spec(16, CACHE_KV_F16);
    tiered_store_opts t = {.disk = c.disk, .remote = redis_tier_port(c.redis),
                           .fingerprint = FP, .spec = &spec};
    c.tiered = tiered_store_open(&t, &err);
    c.ws = tiered_store_port(c.tiered);
    assert_int_equal(c.ws.ops->get(c.ws.self, "alice.w1", &wi, &err), SEM_OK);
    assert_int_equal(wi.remote, 1);
    assert_int_equal(wi.tokens, 100);
    assert_int_equal(c.ws.ops->get(c.ws.self, "bob.w1", &wi, &err), SEM_ENOTFOUND);
    /* Another namespace never reads alice's entries. */
    assert_int_equal(load(&c, pool, "bob.w1", &got, &err), SEM_ENOTFOUND);

    /* Another payload type (another space) does not see it either. */
    node d;
    node_open(&d, p, KV_PAYLOAD_Q8_0, CHUNK);
    assert_int_equal(load(&d, pool, "alice.w1", &got, &err), SEM_ENOTFOUND);

    block_table_destroy(src);
    node_close(&a);
    node_close(&b);
    node_close(&c);
    node_close(&d);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

static void test_corrupt_index_by_hand(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    node_open(&b, p, KV_PAYLOAD_F16, CHUNK);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, 8, 100, 1);
    save(&a, "k1", src);
    wait_writes(&a, 1);
    char key[512];
    key_matching(p, "sem:v1:*:a:k1", key, sizeof key);
    assert_true(key[0]);
    assert_int_equal(redis_process_cmd(p, NULL, 0, "SET %s garbage", key), 0);
    block_table *got = NULL;
    sem_err err = {0};
    assert_int_equal(load(&b, pool, "k1", &got, &err), SEM_ECORRUPT);
    assert_null(got);
    print_message("corrupt index: %s\n", err.detail);
    assert_int_equal(stats_of(&b, NULL).corrupt, 1);
    /* Dropped: the next load is a plain miss, and b's disk holds nothing. */
    assert_int_equal(load(&b, pool, "k1", &got, &err), SEM_ENOTFOUND);
    warm_info wi;
    assert_int_equal(disk_store_port(b.disk).ops->get(b.disk, "k1", &wi, NULL), SEM_ENOTFOUND);
    block_table_destroy(src);
    node_close(&a);
    node_close(&b);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

static void test_corrupt_chunk_by_hand(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    node_open(&b, p, KV_PAYLOAD_F16, CHUNK);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, 9, 100, 1);
    save(&a, "k2", src);
    wait_writes(&a, 1);
    char key[512];
    key_matching(p, "sem:v1:*:c:*", key, sizeof key);
    assert_true(key[0]);
    /* A flipped byte deep in the rows: headers pass, the codec's row
     * checksum fails on the load after the import. */
    assert_int_equal(redis_process_cmd(p, NULL, 0, "SETRANGE %s 3000 XYZ", key), 0);
    block_table *got = NULL;
    sem_err err = {0};
    assert_int_equal(load(&b, pool, "k2", &got, &err), SEM_ECORRUPT);
    assert_null(got);
    print_message("corrupt chunk: %s\n", err.detail);
    assert_int_equal(stats_of(&b, NULL).corrupt, 1);
    char exists[32];
    assert_int_equal(redis_process_cmd(p, exists, sizeof exists, "EXISTS %s", key), 0);
    assert_string_equal(exists, "0"); /* b dropped it */
    assert_int_equal(load(&b, pool, "k2", &got, &err), SEM_ENOTFOUND); /* chunk gone: a miss */
    warm_info wi;
    assert_int_equal(disk_store_port(b.disk).ops->get(b.disk, "k2", &wi, NULL), SEM_ENOTFOUND);
    /* The next save of the agent writes the chunk again, and it serves. */
    save(&a, "k2", src);
    wait_writes(&a, 2);
    assert_int_equal(load(&b, pool, "k2", &got, &err), SEM_OK);
    assert_rows_identical(src, got);
    block_table_destroy(got);
    block_table_destroy(src);
    node_close(&a);
    node_close(&b);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

/* Redis with an append-only file synced at every write, so that a SIGKILL
 * keeps exactly what was written before it. */
#define AOF_CONF "appendonly yes\nappendfsync always"

static void test_killed_mid_save(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(AOF_CONF);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    node_open(&b, p, KV_PAYLOAD_F16, CHUNK);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 2048);
    enum { N = 8, TOKENS = 1500 };
    block_table *src[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "ns%d.k", i);
        src[i] = make_table(pool, 20 + (uint64_t)i, TOKENS, 1);
        save(&a, keys[i], src[i]);
    }
    sleep_ms(5); /* the writer is on its first agents */
    redis_process_kill(p);
    wait_writes(&a, N);
    assert_int_equal(redis_process_restart(p), 0); /* with what the AOF kept */
    int loaded = 0;
    for (int i = 0; i < N; i++) {
        block_table *got = NULL;
        sem_err err = {0};
        sem_status st = SEM_ENOTFOUND;
        for (int tries = 0; tries < 200; tries++) {
            st = load(&b, pool, keys[i], &got, &err);
            if (st == SEM_OK || stats_of(&b, NULL).state == REMOTE_OK)
                break;
            sleep_ms(25); /* b's tier backs off after the kill */
        }
        if (st == SEM_OK) {
            assert_rows_identical(src[i], got);
            block_table_destroy(got);
            loaded++;
        } else {
            assert_int_equal(st, SEM_ENOTFOUND); /* a miss, never corrupt or partial */
        }
    }
    print_message("after the kill: %d of %d agents loaded whole, the rest missed\n", loaded, N);
    assert_int_equal(stats_of(&b, NULL).corrupt, 0);
    for (int i = 0; i < N; i++)
        block_table_destroy(src[i]);
    node_close(&a);
    node_close(&b);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

static void test_remove_removes_both(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    node_open(&b, p, KV_PAYLOAD_F16, CHUNK);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, 11, 100, 1);
    save(&a, "gone", src);
    wait_writes(&a, 1);
    sem_err err = {0};
    assert_int_equal(a.ws.ops->remove(a.ws.self, "gone", &err), SEM_OK);
    block_table *got = NULL;
    assert_int_equal(load(&a, pool, "gone", &got, &err), SEM_ENOTFOUND);
    assert_int_equal(load(&b, pool, "gone", &got, &err), SEM_ENOTFOUND);
    char reply[64];
    assert_int_equal(redis_process_cmd(p, reply, sizeof reply, "GET sem:v1:bytes"), 0);
    assert_string_equal(reply, "0"); /* its chunks went with it */
    /* Removing what only the remote tier holds succeeds too. */
    save(&a, "there", src);
    wait_writes(&a, 2);
    assert_int_equal(b.ws.ops->remove(b.ws.self, "there", &err), SEM_OK);
    assert_int_equal(load(&b, pool, "there", &got, &err), SEM_ENOTFOUND);
    block_table_destroy(src);
    node_close(&a);
    node_close(&b);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

static void test_dead_redis_disk_serves(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    redis_process_kill(p);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, 12, 100, 1);
    save(&a, "local", src);
    wait_writes(&a, 1);
    block_table *got = NULL;
    sem_err err = {0};
    assert_int_equal(load(&a, pool, "local", &got, &err), SEM_OK);
    assert_rows_identical(src, got);
    block_table_destroy(got);
    assert_int_equal(load(&a, pool, "never", &got, &err), SEM_ENOTFOUND);
    remote_stats s = stats_of(&a, NULL);
    assert_int_equal(s.state, REMOTE_DOWN);
    assert_int_equal(s.put_failures, 1);
    assert_int_equal(a.ws.ops->remove(a.ws.self, "local", &err), SEM_OK);
    block_table_destroy(src);
    node_close(&a);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

static void test_queue_drops_oldest(void **state)
{
    (void)state;
    redis_process *p = start_or_skip(NULL);
    node a;
    node_open(&a, p, KV_PAYLOAD_F16, CHUNK);
    tiered_store_close(a.tiered, 0);
    tiered_store_opts t = {.disk = a.disk, .remote = redis_tier_port(a.redis),
                           .fingerprint = FP, .max_queue = 2};
    sem_err err = {0};
    a.tiered = tiered_store_open(&t, &err);
    a.ws = tiered_store_port(a.tiered);
    redis_process_sleep(p, 0.5); /* the writer stalls on its first put */
    block_pool *pool = store_pool(16, CACHE_KV_F16, 256);
    block_table *src = make_table(pool, 13, 100, 1);
    char key[16];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "q%d", i);
        save(&a, key, src);
    }
    save(&a, "q5", src); /* queued once */
    uint32_t queued = 0;
    remote_stats s = stats_of(&a, &queued);
    assert_true(queued <= 2);
    assert_true(s.dropped >= 3);
    block_table_destroy(src);
    node_close(&a);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

/* ------------------------------------------------------------ measurement */

static double ms_since(double t0) { return deadline_now_ms() - t0; }

static void test_measure_4k_1b(void **state)
{
    (void)state;
    if (!getenv("SEM_REMOTE_MEASURE")) {
        print_message("skipped: set SEM_REMOTE_MEASURE=1 to measure a 4K-token 1B agent\n");
        skip();
    }
    redis_process *p = start_or_skip(NULL);
    node a, b;
    node_open(&a, p, KV_PAYLOAD_Q8_0, 0);
    node_open(&b, p, KV_PAYLOAD_Q8_0, 0);
    cache_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.n_layers = 16;
    spec.n_kv_heads = 8;
    spec.k_head_dim = spec.v_head_dim = 64;
    spec.block_tokens = 16;
    spec.kv_type = CACHE_KV_Q8_0;
    /* A block is 16 tokens of one layer: two 4096-token tables at once. */
    block_pool *pool = block_pool_create(&spec, cache_spec_block_bytes(&spec) * (4096 * 2 + 64),
                                         NULL);
    assert_non_null(pool);
    block_table *src = make_table(pool, 3, 4096, 1);
    save(&a, "big", src);
    wait_writes(&a, 1);
    enum { RUNS = 5 };
    double local = 1e9, remote = 1e9;
    for (int r = 0; r < RUNS; r++) {
        block_table *got = NULL;
        sem_err err = {0};
        double t0 = deadline_now_ms();
        assert_int_equal(load(&a, pool, "big", &got, &err), SEM_OK);
        double l = ms_since(t0);
        block_table_destroy(got);
        disk_store_port(b.disk).ops->remove(b.disk, "big", NULL); /* b forgets its copy */
        t0 = deadline_now_ms();
        if (load(&b, pool, "big", &got, &err) != SEM_OK)
            fail_msg("remote load: %s", err.detail);
        double rm = ms_since(t0);
        if (r == 0)
            assert_rows_identical(src, got);
        block_table_destroy(got);
        local = l < local ? l : local;
        remote = rm < remote ? rm : remote;
    }
    print_message("4096-token agent, 16 layers x 8 KV heads x 64, q8_0 (%llu bytes on disk): "
                  "local load %.1f ms, from Redis on loopback (fetch, import, load) %.1f ms "
                  "(%.2fx), best of %d\n",
                  (unsigned long long)disk_store_port(a.disk).ops->disk_bytes(a.disk), local,
                  remote, remote / local, RUNS);
    block_table_destroy(src);
    node_close(&a);
    node_close(&b);
    block_pool_destroy(pool);
    redis_process_stop(p);
}

int main(void)
{
    /* As semantic serve does: a write to a Redis that was killed must be
     * an error, not a signal that ends the process (redis_tier.h). */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_bit_exact),
        cmocka_unit_test(test_corrupt_index_by_hand),
        cmocka_unit_test(test_corrupt_chunk_by_hand),
        cmocka_unit_test(test_killed_mid_save),
        cmocka_unit_test(test_remove_removes_both),
        cmocka_unit_test(test_dead_redis_disk_serves),
        cmocka_unit_test(test_queue_drops_oldest),
        cmocka_unit_test(test_measure_4k_1b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
