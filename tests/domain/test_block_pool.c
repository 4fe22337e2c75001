/* Specification of block_pool.h. */
#include "../test_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "domain/block_pool.h"

/* A pool of exactly n blocks of the test spec. */
static block_pool *pool_of(uint32_t n)
{
    cache_spec s = test_spec(1, 16);
    size_t bytes = cache_spec_block_bytes(&s); /* 2 heads x 16 x 8 x 2 x 2 = 1024 */
    sem_err err = {0};
    block_pool *p = block_pool_create(&s, bytes * n, &err);
    assert_non_null(p);
    assert_int_equal(block_pool_total(p), n);
    return p;
}

static block_owner owner(block_pool *p, const char *name)
{
    block_owner o;
    assert_int_equal(block_pool_owner_add(p, name, &o, NULL), SEM_OK);
    assert_int_not_equal(o, BLOCK_OWNER_NONE);
    return o;
}

static void assert_pool_ok(block_pool *p)
{
    sem_err err = {0};
    if (block_pool_check(p, &err) != SEM_OK)
        fail_msg("pool invariant: %s", err.detail);
    assert_int_equal(block_pool_used(p) + block_pool_free_count(p), block_pool_total(p));
}

static void create_rejects_bad_specs_and_budgets(void **state)
{
    (void)state;
    sem_err err = {0};
    cache_spec s = test_spec(1, 16);
    assert_null(block_pool_create(&s, 100, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    assert_contains(err.detail, "holds no block");
    s.n_layers = 0;
    assert_null(block_pool_create(&s, 1 << 20, &err));
    assert_contains(err.detail, "n_layers");
}

static void blocks_are_real_aligned_disjoint_memory(void **state)
{
    (void)state;
    block_pool *p = pool_of(4);
    size_t bb = block_pool_block_bytes(p);
    assert_true(bb >= cache_spec_block_bytes(block_pool_spec(p)));
    for (uint32_t b = 0; b < 4; b++) {
        uint8_t *d = block_pool_data(p, b);
        assert_int_equal((uintptr_t)d % 64, 0);
        memset(d, (int)b + 1, bb); /* ASan would catch an overlap past the arena */
    }
    for (uint32_t b = 0; b < 4; b++)
        assert_int_equal(block_pool_data(p, b)[bb - 1], b + 1);
    block_pool_destroy(p);
}

static void alloc_and_free_account_per_owner(void **state)
{
    (void)state;
    block_pool *p = pool_of(10);
    block_owner a = owner(p, "a"), b = owner(p, "b");
    uint32_t xa[3], xb[5];
    assert_int_equal(block_pool_alloc(p, 3, a, xa, NULL), SEM_OK);
    assert_int_equal(block_pool_alloc(p, 5, b, xb, NULL), SEM_OK);
    block_pool_usage u;
    assert_int_equal(block_pool_usage_of(p, a, &u, NULL), SEM_OK);
    assert_int_equal(u.blocks, 3);
    assert_int_equal(u.bytes, 3 * block_pool_block_bytes(p));
    assert_int_equal(block_pool_used(p), 8);
    assert_int_equal(block_pool_owner_of(p, xa[0]), a);
    assert_int_equal(block_pool_owner_of(p, xb[4]), b);
    assert_pool_ok(p);

    assert_int_equal(block_pool_free(p, 3, xa, a, NULL), SEM_OK);
    assert_int_equal(block_pool_owner_of(p, xa[0]), BLOCK_OWNER_NONE);
    assert_int_equal(block_pool_usage_of(p, a, &u, NULL), SEM_OK);
    assert_int_equal(u.blocks, 0);
    /* Freed storage is available at once. */
    uint32_t again[5];
    assert_int_equal(block_pool_alloc(p, 5, a, again, NULL), SEM_OK);
    assert_int_equal(block_pool_free_count(p), 0);
    assert_pool_ok(p);
    assert_int_equal(block_pool_free(p, 5, again, a, NULL), SEM_OK);
    assert_int_equal(block_pool_free(p, 5, xb, b, NULL), SEM_OK);
    assert_int_equal(block_pool_free_count(p), 10);
    block_pool_destroy(p);
}

static void zero_counts_and_null_arguments_are_refused(void **state)
{
    (void)state;
    block_pool *p = pool_of(4);
    block_owner a = owner(p, "a");
    uint32_t x[1];
    sem_err err = {0};
    assert_int_equal(block_pool_alloc(p, 0, a, x, &err), SEM_EINVAL);
    assert_contains(err.detail, "0 blocks");
    assert_int_equal(block_pool_free(p, 0, x, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "0 blocks");
    assert_int_equal(block_pool_alloc(p, 1, a, NULL, &err), SEM_EINVAL);
    assert_int_equal(block_pool_free(p, 1, NULL, a, &err), SEM_EINVAL);
    assert_int_equal(block_pool_owner_add(p, "x", NULL, &err), SEM_EINVAL);
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

static void unknown_and_stale_owners_are_refused(void **state)
{
    (void)state;
    block_pool *p = pool_of(4);
    sem_err err = {0};
    uint32_t x[1];
    assert_int_equal(block_pool_alloc(p, 1, BLOCK_OWNER_NONE, x, &err), SEM_EINVAL);
    assert_contains(err.detail, "unknown owner");
    assert_int_equal(block_pool_alloc(p, 1, 0x00ABCDEF, x, &err), SEM_EINVAL);
    block_owner a = owner(p, "a");
    assert_int_equal(block_pool_owner_remove(p, a, &err), SEM_OK);
    /* The slot is reused, but the old handle stays dead. */
    block_owner b = owner(p, "b");
    assert_int_not_equal(a, b);
    assert_int_equal(block_pool_alloc(p, 1, a, x, &err), SEM_EINVAL);
    assert_contains(err.detail, "unknown owner");
    block_pool_usage u;
    assert_int_equal(block_pool_usage_of(p, a, &u, &err), SEM_ENOTFOUND);
    assert_int_equal(block_pool_owner_remove(p, a, &err), SEM_EINVAL);
    assert_int_equal(block_pool_owner_count(p), 1);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

static void an_owner_with_blocks_cannot_be_removed(void **state)
{
    (void)state;
    block_pool *p = pool_of(4);
    block_owner a = owner(p, "agent-7");
    uint32_t x[2];
    sem_err err = {0};
    assert_int_equal(block_pool_alloc(p, 2, a, x, NULL), SEM_OK);
    assert_int_equal(block_pool_owner_remove(p, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "'agent-7' still holds 2 blocks");
    assert_int_equal(block_pool_free(p, 2, x, a, NULL), SEM_OK);
    assert_int_equal(block_pool_owner_remove(p, a, &err), SEM_OK);
    block_pool_destroy(p);
}

static void exhaustion_reports_the_numbers_and_changes_nothing(void **state)
{
    (void)state;
    block_pool *p = pool_of(8);
    block_owner a = owner(p, "a"), b = owner(p, "big");
    uint32_t x[8];
    assert_int_equal(block_pool_alloc(p, 5, a, x, NULL), SEM_OK);
    uint32_t y[8] = {0};
    sem_err err = {0};
    assert_int_equal(block_pool_alloc(p, 4, b, y, &err), SEM_EPOOL);
    assert_contains(err.detail, "4 blocks needed for 'big', 3 free of 8 total");
    for (int i = 0; i < 8; i++)
        assert_int_equal(y[i], 0); /* nothing written */
    assert_int_equal(block_pool_free_count(p), 3);
    block_pool_usage u;
    block_pool_usage_of(p, b, &u, NULL);
    assert_int_equal(u.blocks, 0);
    assert_pool_ok(p);
    /* What does fit still works. */
    assert_int_equal(block_pool_alloc(p, 3, b, y, NULL), SEM_OK);
    assert_int_equal(block_pool_alloc(p, 1, b, y + 3, &err), SEM_EPOOL);
    assert_contains(err.detail, "0 free of 8");
    block_pool_destroy(p);
}

static void bad_frees_are_refused_whole(void **state)
{
    (void)state;
    block_pool *p = pool_of(8);
    block_owner a = owner(p, "alice"), b = owner(p, "bob");
    uint32_t xa[3], xb[2];
    block_pool_alloc(p, 3, a, xa, NULL);
    block_pool_alloc(p, 2, b, xb, NULL);
    sem_err err = {0};

    /* A foreign block in the middle: nothing is freed. */
    uint32_t mixed[3] = {xa[0], xb[0], xa[1]};
    assert_int_equal(block_pool_free(p, 3, mixed, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "belongs to owner 'bob', not to 'alice'");
    assert_int_equal(block_pool_owner_of(p, xa[0]), a);
    assert_int_equal(block_pool_used(p), 5);

    /* Out of range. */
    uint32_t far[2] = {xa[0], 99};
    assert_int_equal(block_pool_free(p, 2, far, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "block 99 out of range (8 blocks)");
    assert_int_equal(block_pool_owner_of(p, xa[0]), a);

    /* Listed twice in one call. */
    uint32_t twice[3] = {xa[0], xa[1], xa[0]};
    assert_int_equal(block_pool_free(p, 3, twice, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "listed twice");
    assert_int_equal(block_pool_owner_of(p, xa[1]), a);

    /* Double free. */
    assert_int_equal(block_pool_free(p, 1, xa, a, NULL), SEM_OK);
    assert_int_equal(block_pool_free(p, 1, xa, a, &err), SEM_EINVAL);
    assert_contains(err.detail, "already free (double free)");

    /* Unknown owner. */
    assert_int_equal(block_pool_free(p, 1, xa + 1, 0x7777, &err), SEM_EINVAL);
    assert_contains(err.detail, "unknown owner");

    assert_int_equal(block_pool_used(p), 4);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

static void transfer_moves_ownership_whole(void **state)
{
    (void)state;
    block_pool *p = pool_of(6);
    block_owner a = owner(p, "a"), b = owner(p, "b");
    uint32_t x[3];
    block_pool_alloc(p, 3, a, x, NULL);
    assert_int_equal(block_pool_transfer(p, 2, x, a, b, NULL), SEM_OK);
    assert_int_equal(block_pool_owner_of(p, x[0]), b);
    assert_int_equal(block_pool_owner_of(p, x[2]), a);
    sem_err err = {0};
    /* x[0] is b's now: a transfer from a of {x[2], x[0]} fails and changes nothing. */
    uint32_t bad[2] = {x[2], x[0]};
    assert_int_equal(block_pool_transfer(p, 2, bad, a, b, &err), SEM_EINVAL);
    assert_int_equal(block_pool_owner_of(p, x[2]), a);
    assert_int_equal(block_pool_transfer(p, 1, x, b, 0x1234, &err), SEM_EINVAL);
    assert_int_equal(block_pool_transfer(p, 0, x, b, a, &err), SEM_EINVAL);
    block_pool_usage u;
    block_pool_usage_of(p, b, &u, NULL);
    assert_int_equal(u.blocks, 2);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

/* 20k random alloc/free operations over 16 owners; invariants after each. */
static void random_operations_keep_the_invariants(void **state)
{
    (void)state;
    enum { OWNERS = 16, TOTAL = 200, OPS = 20000 };
    block_pool *p = pool_of(TOTAL);
    block_owner o[OWNERS];
    uint32_t held[OWNERS][TOTAL];
    uint32_t n_held[OWNERS] = {0};
    for (int i = 0; i < OWNERS; i++)
        o[i] = owner(p, "prop");
    uint64_t rng = 42;
    for (int op = 0; op < OPS; op++) {
        int w = (int)(test_rand(&rng) % OWNERS);
        uint32_t n = (uint32_t)(test_rand(&rng) % 12) + 1;
        if (test_rand(&rng) % 2) {
            uint32_t before = block_pool_free_count(p);
            sem_status st = block_pool_alloc(p, n, o[w], held[w] + n_held[w], NULL);
            if (n <= before) {
                assert_int_equal(st, SEM_OK);
                n_held[w] += n;
            } else {
                assert_int_equal(st, SEM_EPOOL);
                assert_int_equal(block_pool_free_count(p), before);
            }
        } else if (n_held[w] > 0) {
            if (n > n_held[w])
                n = n_held[w];
            /* Free n blocks from a random position. */
            uint32_t at = (uint32_t)(test_rand(&rng) % (n_held[w] - n + 1));
            assert_int_equal(block_pool_free(p, n, held[w] + at, o[w], NULL), SEM_OK);
            memmove(held[w] + at, held[w] + at + n, (n_held[w] - at - n) * sizeof(uint32_t));
            n_held[w] -= n;
        }
        assert_pool_ok(p);
        uint32_t sum = 0;
        for (int i = 0; i < OWNERS; i++)
            sum += n_held[i];
        assert_int_equal(block_pool_used(p), sum);
    }
    for (int i = 0; i < OWNERS; i++) {
        if (n_held[i])
            assert_int_equal(block_pool_free(p, n_held[i], held[i], o[i], NULL), SEM_OK);
        assert_int_equal(block_pool_owner_remove(p, o[i], NULL), SEM_OK);
    }
    assert_int_equal(block_pool_free_count(p), TOTAL);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

/* ---------------------------------------------------------------- sharing */

static void shared_blocks_are_freed_by_their_last_holder(void **state)
{
    (void)state;
    block_pool *p = pool_of(8);
    block_owner a = owner(p, "a"), b = owner(p, "b"), c = owner(p, "c");
    uint32_t blk[3];
    assert_int_equal(block_pool_alloc(p, 3, a, blk, NULL), SEM_OK);
    assert_int_equal(block_pool_share(p, 2, blk, b, NULL), SEM_OK);
    assert_int_equal(block_pool_share(p, 1, blk, c, NULL), SEM_OK);
    assert_pool_ok(p);
    /* Counted once in the pool, once per holder in usage. */
    assert_int_equal(block_pool_used(p), 3);
    assert_int_equal(block_pool_shared_count(p), 2);
    assert_int_equal(block_pool_refs(p, blk[0]), 3);
    assert_int_equal(block_pool_refs(p, blk[1]), 2);
    assert_int_equal(block_pool_refs(p, blk[2]), 1);
    assert_int_equal(block_pool_owner_of(p, blk[0]), BLOCK_OWNER_SHARED);
    assert_int_equal(block_pool_owner_of(p, blk[2]), a);
    block_pool_usage u;
    assert_int_equal(block_pool_usage_of(p, b, &u, NULL), SEM_OK);
    assert_int_equal(u.blocks, 2);
    /* The first holder goes: nothing is freed that others hold. */
    assert_int_equal(block_pool_free(p, 3, blk, a, NULL), SEM_OK);
    assert_int_equal(block_pool_used(p), 2);
    assert_int_equal(block_pool_shared_count(p), 1);
    assert_pool_ok(p);
    assert_int_equal(block_pool_free(p, 2, blk, b, NULL), SEM_OK);
    assert_int_equal(block_pool_used(p), 1);
    assert_int_equal(block_pool_shared_count(p), 0);
    assert_int_equal(block_pool_free(p, 1, blk, c, NULL), SEM_OK);
    assert_int_equal(block_pool_used(p), 0);
    assert_pool_ok(p);
    /* Every reference is gone: one more free is a double free. */
    sem_err err = {0};
    assert_int_equal(block_pool_free(p, 1, blk, c, &err), SEM_EINVAL);
    assert_non_null(strstr(err.detail, "double free"));
    block_pool_destroy(p);
}

static void bad_shares_are_refused_whole(void **state)
{
    (void)state;
    block_pool *p = pool_of(8);
    block_owner a = owner(p, "a"), b = owner(p, "b");
    uint32_t blk[2], free_one;
    assert_int_equal(block_pool_alloc(p, 2, a, blk, NULL), SEM_OK);
    assert_int_equal(block_pool_alloc(p, 1, a, &free_one, NULL), SEM_OK);
    assert_int_equal(block_pool_free(p, 1, &free_one, a, NULL), SEM_OK);
    sem_err err = {0};
    uint32_t with_free[2] = {blk[0], free_one};
    assert_int_equal(block_pool_share(p, 2, with_free, b, &err), SEM_EINVAL);
    assert_non_null(strstr(err.detail, "is free"));
    uint32_t twice[2] = {blk[1], blk[1]};
    assert_int_equal(block_pool_share(p, 2, twice, b, &err), SEM_EINVAL);
    assert_non_null(strstr(err.detail, "listed twice"));
    assert_int_equal(block_pool_share(p, 1, blk, a, &err), SEM_EINVAL); /* its own */
    uint32_t out_of_range = 99;
    assert_int_equal(block_pool_share(p, 1, &out_of_range, b, &err), SEM_EINVAL);
    assert_int_equal(block_pool_share(p, 1, blk, 12345, &err), SEM_EINVAL);
    assert_int_equal(block_pool_share(p, 0, blk, b, &err), SEM_EINVAL);
    /* Nothing changed. */
    assert_int_equal(block_pool_refs(p, blk[0]), 1);
    assert_int_equal(block_pool_refs(p, blk[1]), 1);
    assert_int_equal(block_pool_shared_count(p), 0);
    block_pool_usage u;
    assert_int_equal(block_pool_usage_of(p, b, &u, NULL), SEM_OK);
    assert_int_equal(u.blocks, 0);
    assert_pool_ok(p);
    /* A holder cannot free more references than it holds. */
    assert_int_equal(block_pool_share(p, 1, blk, b, NULL), SEM_OK);
    assert_int_equal(block_pool_free(p, 2, blk, b, &err), SEM_EINVAL);
    assert_int_equal(block_pool_refs(p, blk[0]), 2);
    assert_pool_ok(p);
    assert_int_equal(block_pool_free(p, 1, blk, b, NULL), SEM_OK);
    assert_int_equal(block_pool_free(p, 2, blk, a, NULL), SEM_OK);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

/* Allocations, shares and frees at random by 12 owners; the invariants and
 * the holders' own tally of references agree after every step. */
static void random_sharing_keeps_the_invariants(void **state)
{
    (void)state;
    enum { OWNERS = 12, TOTAL = 64, OPS = 20000 };
    block_pool *p = pool_of(TOTAL);
    block_owner o[OWNERS];
    uint32_t held[OWNERS][TOTAL];
    uint32_t n_held[OWNERS] = {0};
    uint32_t refs[TOTAL] = {0};
    for (int i = 0; i < OWNERS; i++)
        o[i] = owner(p, "share");
    uint64_t rng = 7;
    for (int op = 0; op < OPS; op++) {
        int w = (int)(test_rand(&rng) % OWNERS), v = (int)(test_rand(&rng) % OWNERS);
        int kind = (int)(test_rand(&rng) % 3);
        if (kind == 0 && n_held[w] < TOTAL && block_pool_free_count(p) > 0) {
            uint32_t b;
            assert_int_equal(block_pool_alloc(p, 1, o[w], &b, NULL), SEM_OK);
            held[w][n_held[w]++] = b;
            refs[b]++;
        } else if (kind == 1 && n_held[v] > 0 && w != v) {
            uint32_t b = held[v][test_rand(&rng) % n_held[v]];
            int has = 0;
            for (uint32_t i = 0; i < n_held[w]; i++)
                has |= held[w][i] == b;
            if (!has) {
                assert_int_equal(block_pool_share(p, 1, &b, o[w], NULL), SEM_OK);
                held[w][n_held[w]++] = b;
                refs[b]++;
            }
        } else if (n_held[w] > 0) {
            uint32_t at = (uint32_t)(test_rand(&rng) % n_held[w]);
            uint32_t b = held[w][at];
            assert_int_equal(block_pool_free(p, 1, &b, o[w], NULL), SEM_OK);
            held[w][at] = held[w][--n_held[w]];
            refs[b]--;
        }
        uint32_t used = 0, shared = 0;
        for (uint32_t b = 0; b < TOTAL; b++) {
            assert_int_equal(block_pool_refs(p, b), refs[b]);
            used += refs[b] > 0;
            shared += refs[b] > 1;
        }
        assert_int_equal(block_pool_used(p), used);
        assert_int_equal(block_pool_shared_count(p), shared);
        if (op % 64 == 0)
            assert_pool_ok(p);
    }
    for (int i = 0; i < OWNERS; i++) {
        if (n_held[i])
            assert_int_equal(block_pool_free(p, n_held[i], held[i], o[i], NULL), SEM_OK);
        assert_int_equal(block_pool_owner_remove(p, o[i], NULL), SEM_OK);
    }
    assert_int_equal(block_pool_free_count(p), TOTAL);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
    block_pool *pool;
    uint64_t seed;
    int failures;
} worker;

static void *churn(void *arg)
{
    worker *w = arg;
    block_owner me;
    if (block_pool_owner_add(w->pool, "thread", &me, NULL) != SEM_OK) {
        w->failures++;
        return NULL;
    }
    uint32_t held[64];
    uint32_t n = 0;
    for (int i = 0; i < 10000; i++) {
        uint32_t k = (uint32_t)(test_rand(&w->seed) % 8) + 1;
        if (n + k <= 64 && test_rand(&w->seed) % 2) {
            sem_status st = block_pool_alloc(w->pool, k, me, held + n, NULL);
            if (st == SEM_OK)
                n += k;
            else if (st != SEM_EPOOL)
                w->failures++;
        } else if (n > 0) {
            k = k > n ? n : k;
            if (block_pool_free(w->pool, k, held + n - k, me, NULL) != SEM_OK)
                w->failures++;
            n -= k;
        }
        /* Touch the data of a held block: ownership means exclusive access. */
        if (n > 0)
            block_pool_data(w->pool, held[0])[i % 64] = (uint8_t)i;
    }
    if (n > 0 && block_pool_free(w->pool, n, held, me, NULL) != SEM_OK)
        w->failures++;
    if (block_pool_owner_remove(w->pool, me, NULL) != SEM_OK)
        w->failures++;
    return NULL;
}

static void eight_threads_share_one_pool(void **state)
{
    (void)state;
    block_pool *p = pool_of(256);
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){.pool = p, .seed = 1000u + (uint64_t)i, .failures = 0};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(block_pool_free_count(p), 256);
    assert_int_equal(block_pool_owner_count(p), 0);
    assert_pool_ok(p);
    block_pool_destroy(p);
}

typedef struct sharer {
    block_pool *pool;
    const uint32_t *common; /* [16] blocks a parent holds throughout */
    uint64_t seed;
    int failures;
} sharer;

/* Shares and lets go of the common blocks while allocating its own, and
 * reads the common blocks' bytes (shared blocks are read-only). */
static void *share_churn(void *arg)
{
    sharer *w = arg;
    block_owner me;
    if (block_pool_owner_add(w->pool, "sharer", &me, NULL) != SEM_OK) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < 5000; i++) {
        uint32_t at = (uint32_t)(test_rand(&w->seed) % 12);
        uint32_t k = 1 + (uint32_t)(test_rand(&w->seed) % 4);
        if (block_pool_share(w->pool, k, w->common + at, me, NULL) != SEM_OK)
            w->failures++;
        uint32_t own;
        sem_status st = block_pool_alloc(w->pool, 1, me, &own, NULL);
        if (st == SEM_OK) {
            memcpy(block_pool_data(w->pool, own), block_pool_data(w->pool, w->common[at]), 64);
            if (block_pool_free(w->pool, 1, &own, me, NULL) != SEM_OK)
                w->failures++;
        } else if (st != SEM_EPOOL) {
            w->failures++;
        }
        if (block_pool_refs(w->pool, w->common[at]) < 2)
            w->failures++;
        if (block_pool_free(w->pool, k, w->common + at, me, NULL) != SEM_OK)
            w->failures++;
    }
    if (block_pool_owner_remove(w->pool, me, NULL) != SEM_OK)
        w->failures++;
    return NULL;
}

static void eight_threads_share_common_blocks(void **state)
{
    (void)state;
    block_pool *p = pool_of(64);
    block_owner parent = owner(p, "parent");
    uint32_t common[16];
    assert_int_equal(block_pool_alloc(p, 16, parent, common, NULL), SEM_OK);
    for (int i = 0; i < 16; i++)
        memset(block_pool_data(p, common[i]), i, 64);
    pthread_t th[8];
    sharer w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (sharer){.pool = p, .common = common, .seed = 77u + (uint64_t)i};
        assert_int_equal(pthread_create(&th[i], NULL, share_churn, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    for (int i = 0; i < 16; i++)
        assert_int_equal(block_pool_refs(p, common[i]), 1);
    assert_int_equal(block_pool_shared_count(p), 0);
    assert_pool_ok(p);
    assert_int_equal(block_pool_free(p, 16, common, parent, NULL), SEM_OK);
    assert_int_equal(block_pool_free_count(p), 64);
    block_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_rejects_bad_specs_and_budgets),
        cmocka_unit_test(blocks_are_real_aligned_disjoint_memory),
        cmocka_unit_test(alloc_and_free_account_per_owner),
        cmocka_unit_test(zero_counts_and_null_arguments_are_refused),
        cmocka_unit_test(unknown_and_stale_owners_are_refused),
        cmocka_unit_test(an_owner_with_blocks_cannot_be_removed),
        cmocka_unit_test(exhaustion_reports_the_numbers_and_changes_nothing),
        cmocka_unit_test(bad_frees_are_refused_whole),
        cmocka_unit_test(transfer_moves_ownership_whole),
        cmocka_unit_test(random_operations_keep_the_invariants),
        cmocka_unit_test(shared_blocks_are_freed_by_their_last_holder),
        cmocka_unit_test(bad_shares_are_refused_whole),
        cmocka_unit_test(random_sharing_keeps_the_invariants),
        cmocka_unit_test(eight_threads_share_one_pool),
        cmocka_unit_test(eight_threads_share_common_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
