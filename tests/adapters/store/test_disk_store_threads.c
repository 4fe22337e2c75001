/*
 * Specification of disk_store under threads: any thread may call any
 * operation; one key's operations are serialized, different keys run side
 * by side. Run under TSan (label concurrency).
 *
 * cmocka's asserts are not thread-safe, so the workers record failures and
 * the main thread asserts.
 */
#include "store_test_util.h"

#include <dirent.h>
#include <pthread.h>

#include "adapters/store/disk_store.h"

#define FP 0x7777aaaa5555ccccull
#define THREADS 4
#define KEYS_PER_THREAD 3

/* A table of seed's n tokens, without cmocka (NULL on failure). */
static block_table *build(block_pool *pool, uint64_t seed, uint32_t n)
{
    const cache_spec *s = block_pool_spec(pool);
    block_table *t = block_table_create(pool, "src", NULL);
    int32_t tok[64];
    if (!t || n > 64)
        goto fail;
    for (uint32_t p = 0; p < n; p++)
        tok[p] = test_token(seed, p);
    if (block_table_append(t, tok, n, NULL) != SEM_OK)
        goto fail;
    float row[64];
    for (uint32_t l = 0; l < s->n_layers; l++)
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = 0; p < n; p++) {
                    for (uint32_t i = 0; i < dim; i++)
                        row[i] = pattern(seed, l, v, h, p, i);
                    quant_quantize_row(TENSOR_F16, row, row_ptr(t, l, v, h, p), dim, NULL);
                }
        }
    block_table_release_window(t, NULL);
    return t;
fail:
    block_table_destroy(t);
    return NULL;
}

/* Whether t holds seed's n tokens with rows bit for bit (f16 throughout). */
static int matches(const block_table *t, uint64_t seed, uint32_t n)
{
    const cache_spec *s = block_pool_spec(block_table_pool(t));
    if (block_table_n_tokens(t) != n)
        return 0;
    for (uint32_t p = 0; p < n; p++)
        if (block_table_tokens(t)[p] != test_token(seed, p))
            return 0;
    float row[64];
    uint8_t want[128];
    for (uint32_t l = 0; l < s->n_layers; l++) {
        uint32_t first = n - (uint32_t)cache_spec_kept_tokens(s, l, n);
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = first; p < n; p++) {
                    for (uint32_t i = 0; i < dim; i++)
                        row[i] = pattern(seed, l, v, h, p, i);
                    quant_quantize_row(TENSOR_F16, row, want, dim, NULL);
                    const uint8_t *got = row_ptr(t, l, v, h, p);
                    if (!got || memcmp(got, want, dim * 2) != 0)
                        return 0;
                }
        }
    }
    return 1;
}

static uint32_t length_of(uint64_t seed)
{
    return 1 + (uint32_t)(seed % 50);
}

typedef struct worker {
    warm_store ws;
    block_pool *src;  /* shared: tables to save */
    block_pool *dst;  /* shared: loaded tables */
    int id;
    int iterations;
    int strict;       /* own keys only, no budget: every result is known */
    uint64_t rng;
    int failures;
    char why[1024];
} worker;

#define FAIL(w, ...)                                                   \
    do {                                                               \
        if (!(w)->failures++)                                          \
            snprintf((w)->why, sizeof (w)->why, __VA_ARGS__);          \
    } while (0)

/* Own keys "t<id>-<k>": the worker knows what each holds. */
static void *own_keys(void *arg)
{
    worker *w = arg;
    const warm_store_ops *ops = w->ws.ops;
    void *self = w->ws.self;
    uint64_t saved[KEYS_PER_THREAD] = {0};
    int has[KEYS_PER_THREAD] = {0};
    for (int i = 0; i < w->iterations; i++) {
        uint64_t r = test_rand(&w->rng);
        int k = (int)(r % KEYS_PER_THREAD);
        char key[32];
        snprintf(key, sizeof key, "t%d-%d", w->id, k);
        sem_err err = {0};
        switch ((r >> 8) % 8) {
        case 0:
        case 1:
        case 2: {
            uint64_t seed = (uint64_t)w->id * 1000 + (uint64_t)i;
            block_table *t = build(w->src, seed, length_of(seed));
            if (!t) {
                FAIL(w, "build failed");
                break;
            }
            if (ops->save(self, key, t, NULL, &err) != SEM_OK)
                FAIL(w, "save %s: %s", key, err.detail);
            saved[k] = seed;
            has[k] = 1;
            block_table_destroy(t);
            break;
        }
        case 3:
        case 4: {
            block_table *t = NULL;
            sem_status st = ops->load(self, key, w->dst, &t, &err);
            if (has[k] && (st != SEM_OK || !matches(t, saved[k], length_of(saved[k]))))
                FAIL(w, "load %s: %s %s", key, sem_status_name(st), err.detail);
            if (!has[k] && st != SEM_ENOTFOUND)
                FAIL(w, "load of removed %s: %s", key, sem_status_name(st));
            block_table_destroy(t);
            break;
        }
        case 5: {
            int32_t *tok = NULL;
            uint32_t n = 0;
            sem_status st = ops->peek(self, key, &tok, &n, &err);
            if (has[k] && (st != SEM_OK || n != length_of(saved[k]) ||
                           tok[0] != test_token(saved[k], 0)))
                FAIL(w, "peek %s: %s %s", key, sem_status_name(st), err.detail);
            if (!has[k] && st != SEM_ENOTFOUND)
                FAIL(w, "peek of removed %s: %s", key, sem_status_name(st));
            free(tok);
            break;
        }
        case 6: {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "t%d-", w->id);
            warm_info *list = NULL;
            size_t n = 0;
            if (ops->list(self, prefix, &list, &n, &err) != SEM_OK)
                FAIL(w, "list: %s", err.detail);
            size_t want = 0;
            for (int j = 0; j < KEYS_PER_THREAD; j++)
                want += (size_t)has[j];
            if (n != want)
                FAIL(w, "list %s: %zu agents, expected %zu", prefix, n, want);
            free(list);
            warm_info info;
            sem_status st = ops->get(self, key, &info, NULL);
            if (st != (has[k] ? SEM_OK : SEM_ENOTFOUND))
                FAIL(w, "get %s: %s", key, sem_status_name(st));
            st = ops->touch(self, key, 3, NULL);
            if (st != (has[k] ? SEM_OK : SEM_ENOTFOUND))
                FAIL(w, "touch %s: %s", key, sem_status_name(st));
            ops->disk_bytes(self);
            break;
        }
        default: {
            sem_status st = ops->remove(self, key, &err);
            if (st != (has[k] ? SEM_OK : SEM_ENOTFOUND))
                FAIL(w, "remove %s: %s %s", key, sem_status_name(st), err.detail);
            has[k] = 0;
            break;
        }
        }
    }
    return NULL;
}

/* Shared keys "s0".."s3" under a small budget: results vary, but a load
 * is a miss or exactly one saved version, never damage. */
static void *shared_keys(void *arg)
{
    worker *w = arg;
    const warm_store_ops *ops = w->ws.ops;
    void *self = w->ws.self;
    for (int i = 0; i < w->iterations; i++) {
        uint64_t r = test_rand(&w->rng);
        char key[8];
        snprintf(key, sizeof key, "s%d", (int)(r % 4));
        sem_err err = {0};
        switch ((r >> 8) % 6) {
        case 0:
        case 1: {
            uint64_t seed = 10000 + (uint64_t)w->id * 1000 + (uint64_t)i;
            block_table *t = build(w->src, seed, length_of(seed));
            if (!t || ops->save(self, key, t, NULL, &err) != SEM_OK)
                FAIL(w, "save %s: %s", key, err.detail);
            block_table_destroy(t);
            break;
        }
        case 2:
        case 3: {
            block_table *t = NULL;
            sem_status st = ops->load(self, key, w->dst, &t, &err);
            if (st == SEM_OK) {
                uint64_t seed = (uint64_t)(block_table_tokens(t)[0] / 100000);
                if (!matches(t, seed, length_of(seed)))
                    FAIL(w, "load %s: content of version %llu is wrong", key,
                         (unsigned long long)seed);
            } else if (st != SEM_ENOTFOUND) {
                FAIL(w, "load %s: %s %s", key, sem_status_name(st), err.detail);
            }
            block_table_destroy(t);
            break;
        }
        case 4: {
            warm_info *list = NULL;
            size_t n = 0;
            if (ops->list(self, "", &list, &n, &err) != SEM_OK)
                FAIL(w, "list: %s", err.detail);
            free(list);
            break;
        }
        default: {
            sem_status st = ops->remove(self, key, &err);
            if (st != SEM_OK && st != SEM_ENOTFOUND)
                FAIL(w, "remove %s: %s", key, err.detail);
            break;
        }
        }
    }
    return NULL;
}

static void run_workers(void *(*fn)(void *), uint64_t budget, int iterations)
{
    char *dir = temp_dir();
    disk_store_opts o = {.dir = dir, .fingerprint = FP, .payload = KV_PAYLOAD_F16,
                         .budget_bytes = budget, .chunk_tokens = 16};
    sem_err err = {0};
    disk_store *s = disk_store_open(&o, &err);
    if (!s)
        fail_msg("open: %s", err.detail);
    block_pool *src = store_pool(16, CACHE_KV_F16, 256);
    block_pool *dst = store_pool(16, CACHE_KV_F16, 256);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.ws = disk_store_port(s), .src = src, .dst = dst, .id = i,
                        .iterations = iterations, .rng = 1234567u + (uint64_t)i * 7919};
        assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures)
            fail_msg("worker %d: %d failures, first: %s", i, w[i].failures, w[i].why);
    }
    disk_store_close(s);
    assert_int_equal(block_pool_used(src), 0);
    assert_int_equal(block_pool_used(dst), 0);
    /* Reopened, the folder needs no repair: nothing half-done was left. */
    s = disk_store_open(&o, &err);
    assert_non_null(s);
    disk_store_report rep = disk_store_open_report(s);
    assert_int_equal(rep.temp_removed + rep.reindexed + rep.rows_updated + rep.rows_dropped +
                         rep.quarantined,
                     0);
    if (budget) { /* one quiet save: afterwards the budget holds */
        warm_store ws = disk_store_port(s);
        block_table *t = build(src, 1, 50);
        assert_int_equal(ws.ops->save(ws.self, "last", t, NULL, NULL), SEM_OK);
        block_table_destroy(t);
        assert_true(ws.ops->disk_bytes(ws.self) <= budget);
    }
    disk_store_close(s);
    block_pool_destroy(src);
    block_pool_destroy(dst);
    remove_dir(dir);
}

static void four_threads_on_their_own_keys(void **state)
{
    (void)state;
    run_workers(own_keys, 0, 150);
}

/* A file of 50 tokens is about 60 KB: the budget holds two or three. */
static void four_threads_on_shared_keys_under_a_budget(void **state)
{
    (void)state;
    run_workers(shared_keys, 150000, 150);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(four_threads_on_their_own_keys),
        cmocka_unit_test(four_threads_on_shared_keys_under_a_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
