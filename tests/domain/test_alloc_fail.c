/*
 * Allocation failures in the block pool and block tables: for every k, the
 * k-th allocation of an operation fails; the operation reports SEM_ENOMEM
 * and leaves the table and the pool exactly as they were (length, tokens,
 * every layer's blocks, the pool's used count and owners), and nothing
 * leaks (LSan in the ASan build). The loop ends at the first k the
 * operation does not reach: it then succeeds with every allocation.
 */
#include "../test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc_fail.h"
#include "domain/block_table.h"

/* 3 layers, blocks of 16 tokens; layer 2 slides with a window of 20. */
static cache_spec hybrid_spec(void)
{
    cache_spec s = test_spec(3, 16);
    s.layers[2].kind = CACHE_ATTN_SLIDING;
    s.layers[2].window = 20;
    return s;
}

/* What a failed operation must leave as it was. */
typedef struct snapshot {
    uint32_t n_tokens;
    int32_t tokens[1024];
    uint32_t first[4], n[4];
    uint32_t blocks[4][128];
    uint32_t used, owners;
} snapshot;

static void take(snapshot *s, block_table *t, block_pool *p)
{
    memset(s, 0, sizeof *s);
    s->used = block_pool_used(p);
    s->owners = block_pool_owner_count(p);
    if (!t)
        return;
    s->n_tokens = block_table_n_tokens(t);
    assert_true(s->n_tokens <= 1024);
    if (s->n_tokens)
        memcpy(s->tokens, block_table_tokens(t), s->n_tokens * sizeof s->tokens[0]);
    const cache_spec *spec = block_pool_spec(p);
    for (uint32_t l = 0; l < spec->n_layers; l++) {
        s->first[l] = block_table_first_block(t, l);
        s->n[l] = block_table_n_blocks(t, l);
        assert_true(s->n[l] <= 128);
        if (s->n[l])
            memcpy(s->blocks[l], block_table_blocks(t, l), s->n[l] * sizeof s->blocks[l][0]);
    }
}

static void assert_unchanged(const snapshot *before, block_table *t, block_pool *p)
{
    snapshot now;
    take(&now, t, p);
    assert_int_equal(now.used, before->used);
    assert_int_equal(now.owners, before->owners);
    assert_int_equal(now.n_tokens, before->n_tokens);
    assert_memory_equal(now.tokens, before->tokens, sizeof now.tokens);
    assert_memory_equal(now.first, before->first, sizeof now.first);
    assert_memory_equal(now.n, before->n, sizeof now.n);
    assert_memory_equal(now.blocks, before->blocks, sizeof now.blocks);
    sem_err err = {0};
    if (t && block_table_check(t, &err) != SEM_OK)
        fail_msg("table invariant after a failed operation: %s", err.detail);
    if (block_pool_check(p, &err) != SEM_OK)
        fail_msg("pool invariant after a failed operation: %s", err.detail);
}

typedef sem_status (*table_op)(block_table *t, const int32_t *tokens, uint32_t n, sem_err *err);

/*
 * Runs op(t, tokens[from..from+n)) with its k-th allocation failing, for
 * k = 1, 2, ... until it runs without reaching k; returns how many
 * allocations the operation makes.
 */
static uint64_t under_injection(block_table *t, block_pool *p, table_op op, uint32_t from,
                                uint32_t n)
{
    int32_t tok[512];
    assert_true(n <= 512);
    for (uint32_t i = 0; i < n; i++)
        tok[i] = (int32_t)(from + i);
    for (uint64_t k = 1;; k++) {
        snapshot before;
        take(&before, t, p);
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        sem_status st = op(t, tok, n, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            if (st != SEM_OK)
                fail_msg("without a failed allocation: %s", err.detail);
            assert_int_equal(block_table_n_tokens(t), before.n_tokens + n);
            return k - 1;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failed: %s (%s), expected out of memory",
                     (unsigned long long)k, sem_status_name(st), err.detail);
        assert_true(err.detail[0] != '\0');
        assert_unchanged(&before, t, p);
    }
}

static void pool_create_fails_cleanly(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    for (uint64_t k = 1;; k++) {
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 64, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_non_null(p);
            block_pool_destroy(p);
            break;
        }
        assert_null(p);
        assert_int_equal(err.status, SEM_ENOMEM);
    }
}

static void create_fails_cleanly(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 64, NULL);
    assert_non_null(p);
    /* Enough owners that the owner table grows (16 slots, then 32). */
    block_table *keep[20];
    for (int i = 0; i < 20; i++) {
        for (uint64_t k = 1;; k++) {
            snapshot before;
            take(&before, NULL, p);
            sem_err err = {0};
            alloc_fail_arm(k, 0);
            keep[i] = block_table_create(p, "t", &err);
            int hit = alloc_fail_hit();
            alloc_fail_disarm();
            if (!hit) {
                assert_non_null(keep[i]);
                break;
            }
            assert_null(keep[i]);
            assert_int_equal(err.status, SEM_ENOMEM);
            assert_unchanged(&before, NULL, p);
        }
    }
    for (int i = 0; i < 20; i++)
        block_table_destroy(keep[i]);
    assert_int_equal(block_pool_owner_count(p), 0);
    block_pool_destroy(p);
}

/* Appends that grow every array (tokens, each layer's blocks, the scratch
 * list) from empty, across block boundaries and after the sliding layer
 * released its oldest blocks. */
static void append_fails_cleanly_at_every_growth(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 256, NULL);
    block_table *t = block_table_create(p, "grow", NULL);
    assert_non_null(t);
    static const uint32_t steps[] = {1, 15, 1, 16, 40, 3, 100, 1, 200, 7};
    uint32_t from = 0;
    uint64_t allocations = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        allocations += under_injection(t, p, block_table_append, from, steps[i]);
        from += steps[i];
        if (i == 5)
            assert_int_equal(block_table_release_window(t, NULL), SEM_OK);
    }
    assert_true(allocations > 0); /* the loop did inject */
    assert_int_equal(block_table_n_tokens(t), from);
    /* Truncate and grow again into the capacity already held, then past it. */
    assert_int_equal(block_table_truncate(t, 0, NULL), SEM_OK);
    under_injection(t, p, block_table_append, 0, 300);
    under_injection(t, p, block_table_append, 300, 500);
    block_table_destroy(t);
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

static void restore_fails_cleanly(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 128, NULL);
    static const uint32_t lengths[] = {1, 16, 17, 45, 300};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        block_table *t = block_table_create(p, "restored", NULL);
        under_injection(t, p, block_table_restore, 7, lengths[i]);
        sem_err err = {0};
        assert_int_equal(block_table_check(t, &err), SEM_OK);
        block_table_destroy(t);
    }
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_create_fails_cleanly),
        cmocka_unit_test(create_fails_cleanly),
        cmocka_unit_test(append_fails_cleanly_at_every_growth),
        cmocka_unit_test(restore_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
