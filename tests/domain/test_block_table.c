/* Specification of block_table.h. */
#include "../test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/block_table.h"

/* Spec: 3 layers, block of 16 tokens; layer 2 slides with a window of 20. */
static cache_spec hybrid_spec(void)
{
    cache_spec s = test_spec(3, 16);
    s.layers[2].kind = CACHE_ATTN_SLIDING;
    s.layers[2].window = 20;
    return s;
}

static block_pool *pool_for(const cache_spec *s, uint32_t blocks)
{
    block_pool *p = block_pool_create(s, cache_spec_block_bytes(s) * blocks, NULL);
    assert_non_null(p);
    return p;
}

static void assert_table_ok(const block_table *t)
{
    sem_err err = {0};
    if (block_table_check(t, &err) != SEM_OK)
        fail_msg("table invariant: %s", err.detail);
}

static void append_seq(block_table *t, uint32_t from, uint32_t n)
{
    int32_t tok[512];
    assert_true(n <= 512);
    for (uint32_t i = 0; i < n; i++)
        tok[i] = (int32_t)(from + i);
    sem_err err = {0};
    if (block_table_append(t, tok, n, &err) != SEM_OK)
        fail_msg("append: %s", err.detail);
}

static void append_allocates_blocks_on_every_layer(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 64);
    block_table *t = block_table_create(p, "a", NULL);
    assert_non_null(t);
    append_seq(t, 100, 1);
    assert_int_equal(block_table_n_blocks(t, 0), 1);
    assert_int_equal(block_table_n_blocks(t, 1), 1);
    append_seq(t, 101, 15); /* 16 tokens: still one block */
    assert_int_equal(block_table_total_blocks(t), 2);
    append_seq(t, 116, 1); /* 17th token opens block 1 on both layers */
    assert_int_equal(block_table_total_blocks(t), 4);
    assert_int_equal(block_table_n_tokens(t), 17);
    assert_int_equal(block_table_tokens(t)[16], 116);
    assert_int_equal(block_table_block_for(t, 1, 16), block_table_blocks(t, 1)[1]);
    assert_int_equal(block_table_block_for(t, 1, 17), UINT32_MAX);
    block_pool_usage u;
    block_pool_usage_of(p, block_table_owner(t), &u, NULL);
    assert_int_equal(u.blocks, 4);
    assert_table_ok(t);
    block_table_destroy(t);
    assert_int_equal(block_pool_free_count(p), 64);
    assert_int_equal(block_pool_owner_count(p), 0);
    block_pool_destroy(p);
}

static void append_refuses_bad_arguments(void **state)
{
    (void)state;
    cache_spec s = test_spec(1, 16);
    block_pool *p = pool_for(&s, 4);
    block_table *t = block_table_create(p, "a", NULL);
    int32_t tok[1] = {5};
    sem_err err = {0};
    assert_int_equal(block_table_append(t, tok, 0, &err), SEM_EINVAL);
    assert_contains(err.detail, "0 tokens");
    assert_int_equal(block_table_append(t, NULL, 1, &err), SEM_EINVAL);
    assert_int_equal(block_table_append(NULL, tok, 1, &err), SEM_EINVAL);
    assert_null(block_table_create(NULL, "x", &err));
    assert_int_equal(block_table_n_tokens(t), 0);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void a_failed_append_changes_nothing(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 6);
    block_table *t = block_table_create(p, "a", NULL);
    block_table *other = block_table_create(p, "b", NULL);
    append_seq(t, 0, 20); /* 2 blocks x 2 layers */
    sem_err err = {0};
    int32_t tok[40] = {0};
    /* 20 + 40 tokens need 4 blocks per layer: 4 more blocks, 2 free. */
    assert_int_equal(block_table_append(t, tok, 40, &err), SEM_EPOOL);
    assert_contains(err.detail, "4 blocks needed for 'a', 2 free of 6 total");
    assert_int_equal(block_table_n_tokens(t), 20);
    assert_int_equal(block_table_total_blocks(t), 4);
    assert_int_equal(block_pool_free_count(p), 2);
    assert_table_ok(t);
    /* The pool and other tables are untouched and still usable. */
    append_seq(other, 0, 1);
    assert_int_equal(block_pool_free_count(p), 0);
    assert_int_equal(block_table_append(other, tok, 16, &err), SEM_EPOOL);
    block_table_destroy(other);
    append_seq(t, 20, 5);
    assert_table_ok(t);
    block_table_destroy(t);
    assert_int_equal(block_pool_free_count(p), 6);
    block_pool_destroy(p);
}

static void truncate_frees_whole_blocks_past_n(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 16);
    block_table *t = block_table_create(p, "a", NULL);
    append_seq(t, 0, 50); /* 4 blocks per layer */
    assert_int_equal(block_table_total_blocks(t), 8);
    sem_err err = {0};
    assert_int_equal(block_table_truncate(t, 33, &err), SEM_OK);
    assert_int_equal(block_table_n_tokens(t), 33);
    assert_int_equal(block_table_total_blocks(t), 6); /* blocks 0..2 */
    assert_int_equal(block_table_truncate(t, 32, &err), SEM_OK);
    assert_int_equal(block_table_total_blocks(t), 4);
    assert_int_equal(block_table_truncate(t, 32, &err), SEM_OK); /* no-op */
    assert_int_equal(block_table_truncate(t, 40, &err), SEM_EINVAL);
    assert_contains(err.detail, "cannot truncate 32 tokens to 40");
    assert_int_equal(block_table_truncate(NULL, 0, &err), SEM_EINVAL);
    assert_int_equal(block_table_truncate(t, 0, &err), SEM_OK);
    assert_int_equal(block_table_total_blocks(t), 0);
    assert_int_equal(block_pool_free_count(p), 16);
    /* The table is reusable after truncation to zero. */
    append_seq(t, 7, 3);
    assert_int_equal(block_table_tokens(t)[0], 7);
    assert_table_ok(t);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void clear_drops_everything(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 32);
    block_table *t = block_table_create(p, "a", NULL);
    append_seq(t, 0, 100);
    block_table_release_window(t, NULL);
    block_table_clear(t);
    assert_int_equal(block_table_n_tokens(t), 0);
    assert_int_equal(block_table_total_blocks(t), 0);
    assert_int_equal(block_table_first_block(t, 2), 0);
    assert_int_equal(block_pool_free_count(p), 32);
    append_seq(t, 0, 1);
    assert_table_ok(t);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void sliding_layers_release_what_the_window_cannot_see(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 128);
    block_table *t = block_table_create(p, "a", NULL);
    append_seq(t, 0, 100); /* 7 blocks per layer until released */
    assert_int_equal(block_table_n_blocks(t, 2), 7);
    assert_int_equal(block_table_release_window(t, NULL), SEM_OK);
    /* Window of 20 over 100 tokens: tokens 80..99 = blocks 5, 6. */
    assert_int_equal(block_table_first_block(t, 2), 5);
    assert_int_equal(block_table_n_blocks(t, 2), 2);
    assert_int_equal(block_table_n_blocks(t, 0), 7); /* global layers keep all */
    assert_int_equal(block_table_block_for(t, 2, 79), UINT32_MAX);
    assert_int_not_equal(block_table_block_for(t, 2, 80), UINT32_MAX);
    assert_int_equal(block_pool_used(p), 7 + 7 + 2);
    assert_table_ok(t);

    /* Memory stays bounded as the sequence grows. */
    for (uint32_t i = 0; i < 50; i++) {
        append_seq(t, 100 + i * 10, 10);
        block_table_release_window(t, NULL);
        assert_true(block_table_n_blocks(t, 2) <= cache_spec_max_blocks_for(&s, 2, 1u << 20));
        assert_table_ok(t);
    }
    block_table_destroy(t);
    assert_int_equal(block_pool_free_count(p), 128);
    block_pool_destroy(p);
}

static void truncation_respects_released_windows(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 64);
    block_table *t = block_table_create(p, "a", NULL);
    append_seq(t, 0, 100);
    block_table_release_window(t, NULL); /* layer 2 holds from token 80 */
    /* A prefix of n needs tokens n-20 .. n-1: n >= 100 is the only option
     * above 80 + 20; anything shorter is not reusable. */
    assert_int_equal(block_table_reusable(t, 100), 100);
    assert_int_equal(block_table_reusable(t, 500), 100);
    assert_int_equal(block_table_reusable(t, 99), 0);
    sem_err err = {0};
    assert_int_equal(block_table_truncate(t, 99, &err), SEM_EINVAL);
    assert_contains(err.detail, "sliding-window layer");
    assert_int_equal(block_table_n_tokens(t), 100);
    assert_table_ok(t);

    /* Grow to 130 and release: layer 2 keeps tokens 110..129 (blocks 6..8). */
    append_seq(t, 100, 30);
    block_table_release_window(t, NULL);
    assert_int_equal(block_table_first_block(t, 2), 6);
    assert_int_equal(block_table_reusable(t, 120), 120); /* 96 + 20 <= 120 */
    assert_int_equal(block_table_reusable(t, 115), 0);
    assert_int_equal(block_table_truncate(t, 120, &err), SEM_OK);
    assert_int_equal(block_table_n_blocks(t, 2), 2); /* blocks 6, 7 */
    assert_int_equal(block_table_n_blocks(t, 0), 8);
    assert_table_ok(t);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void a_short_sequence_never_releases(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 16);
    block_table *t = block_table_create(p, "a", NULL);
    append_seq(t, 0, 20);
    block_table_release_window(t, NULL);
    assert_int_equal(block_table_first_block(t, 2), 0);
    assert_int_equal(block_table_reusable(t, 5), 5);
    assert_int_equal(block_table_truncate(t, 5, NULL), SEM_OK);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void restore_allocates_only_the_kept_blocks(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 64);
    block_table *t = block_table_create(p, "a", NULL);
    int32_t tok[100];
    for (int i = 0; i < 100; i++)
        tok[i] = i;
    sem_err err = {0};
    assert_int_equal(block_table_restore(t, tok, 100, &err), SEM_OK);
    assert_int_equal(block_table_n_tokens(t), 100);
    assert_int_equal(block_table_n_blocks(t, 0), 7);
    assert_int_equal(block_table_first_block(t, 2), 5); /* tokens 80..99 */
    assert_int_equal(block_table_n_blocks(t, 2), 2);
    assert_int_equal(block_pool_used(p), 16);
    assert_table_ok(t);
    /* Only into an empty table. */
    assert_int_equal(block_table_restore(t, tok, 10, &err), SEM_EINVAL);
    assert_contains(err.detail, "restore into a table of 100 tokens");
    /* It continues like any table. */
    append_seq(t, 100, 30);
    assert_table_ok(t);
    block_table_clear(t);
    /* Exhaustion changes nothing. */
    block_table *u = block_table_create(p, "b", NULL);
    append_seq(u, 0, 16 * 20); /* 20 blocks x 3 layers = 60 of 64 */
    assert_int_equal(block_table_restore(t, tok, 100, &err), SEM_EPOOL);
    assert_int_equal(block_table_n_tokens(t), 0);
    assert_int_equal(block_pool_used(p), 60);
    assert_int_equal(block_table_restore(t, tok, 0, &err), SEM_EINVAL);
    block_table_destroy(u);
    block_table_destroy(t);
    assert_int_equal(block_pool_free_count(p), 64);
    block_pool_destroy(p);
}

/* 20k random operations over 16 tables sharing one pool. */
static void random_operations_keep_the_invariants(void **state)
{
    (void)state;
    enum { TABLES = 16, OPS = 20000 };
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 300);
    block_table *t[TABLES];
    for (int i = 0; i < TABLES; i++)
        assert_non_null(t[i] = block_table_create(p, "prop", NULL));
    uint64_t rng = 7;
    int32_t tok[64] = {0};
    int exhausted = 0;
    for (int op = 0; op < OPS; op++) {
        block_table *x = t[test_rand(&rng) % TABLES];
        uint32_t len = block_table_n_tokens(x);
        switch (test_rand(&rng) % 5) {
        case 0:
        case 1: {
            uint32_t n = (uint32_t)(test_rand(&rng) % 64) + 1;
            uint32_t free_before = block_pool_free_count(p);
            sem_status st = block_table_append(x, tok, n, NULL);
            if (st == SEM_EPOOL) {
                exhausted++;
                assert_int_equal(block_table_n_tokens(x), len);
                assert_int_equal(block_pool_free_count(p), free_before);
            } else {
                assert_int_equal(st, SEM_OK);
                assert_int_equal(block_table_n_tokens(x), len + n);
            }
            break;
        }
        case 2: {
            uint32_t n = len ? (uint32_t)(test_rand(&rng) % (len + 1)) : 0;
            uint32_t ok = block_table_reusable(x, n);
            assert_int_equal(block_table_truncate(x, ok, NULL), SEM_OK);
            assert_int_equal(block_table_n_tokens(x), ok);
            break;
        }
        case 3:
            assert_int_equal(block_table_release_window(x, NULL), SEM_OK);
            break;
        default:
            if (test_rand(&rng) % 8 == 0)
                block_table_clear(x);
            break;
        }
        assert_table_ok(x);
        if (op % 16 == 0) {
            sem_err err = {0};
            if (block_pool_check(p, &err) != SEM_OK)
                fail_msg("pool: %s", err.detail);
            uint32_t sum = 0;
            for (int i = 0; i < TABLES; i++)
                sum += block_table_total_blocks(t[i]);
            assert_int_equal(sum, block_pool_used(p));
        }
    }
    assert_true(exhausted > 0); /* the run did reach exhaustion */
    for (int i = 0; i < TABLES; i++)
        block_table_destroy(t[i]);
    assert_int_equal(block_pool_free_count(p), 300);
    assert_int_equal(block_pool_owner_count(p), 0);
    block_pool_destroy(p);
}

/* ---------------------------------------------------------------- sharing */

/* Writes a recognisable byte into every block of t's layer l. */
static void stamp(block_table *t, uint32_t l, uint8_t v)
{
    for (uint32_t i = 0; i < block_table_n_blocks(t, l); i++)
        block_pool_data(block_table_pool(t), block_table_blocks(t, l)[i])[0] = v;
}

static void share_takes_no_block_and_copies_on_write(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 32);
    block_table *a = block_table_create(p, "a", NULL), *b = block_table_create(p, "b", NULL);
    append_seq(a, 0, 40); /* blocks 0, 1 full; 2 holds 8 tokens */
    stamp(a, 0, 0xA1);
    uint32_t free_before = block_pool_free_count(p);
    sem_err err = {0};
    assert_int_equal(block_table_share(b, a, 40, &err), SEM_OK);
    assert_int_equal(block_pool_free_count(p), free_before);
    assert_int_equal(block_table_n_tokens(b), 40);
    assert_memory_equal(block_table_tokens(b), block_table_tokens(a), 40 * sizeof(int32_t));
    assert_int_equal(block_table_blocks(b, 1)[2], block_table_blocks(a, 1)[2]);
    assert_int_equal(block_table_shared_tokens(a), 40);
    assert_int_equal(block_table_cow_blocks(b), 2); /* the partial block, both layers */
    assert_table_ok(a);
    assert_table_ok(b);
    /* b writes: its last block is copied (bytes and all), a's is untouched. */
    uint32_t a_last = block_table_blocks(a, 0)[2];
    append_seq(b, 500, 1);
    assert_int_equal(block_pool_free_count(p), free_before - 2);
    assert_int_not_equal(block_table_blocks(b, 0)[2], a_last);
    assert_int_equal(block_table_blocks(b, 0)[1], block_table_blocks(a, 0)[1]);
    assert_int_equal(block_pool_data(p, block_table_blocks(b, 0)[2])[0], 0xA1);
    block_pool_data(p, block_table_blocks(b, 0)[2])[0] = 0xB2;
    assert_int_equal(block_pool_data(p, a_last)[0], 0xA1);
    assert_int_equal(block_pool_refs(p, a_last), 1);
    assert_int_equal(block_table_cow_blocks(b), 0);
    assert_int_equal(block_table_shared_tokens(a), 32);
    assert_int_equal(block_table_shared_tokens(b), 32);
    /* a writes too: its last block is its own again, no copy. */
    uint32_t free_mid = block_pool_free_count(p);
    append_seq(a, 40, 1);
    assert_int_equal(block_pool_free_count(p), free_mid);
    assert_int_equal(block_table_blocks(a, 0)[2], a_last);
    /* a goes: b keeps every block it shares, valid. */
    block_table_destroy(a);
    assert_table_ok(b);
    assert_int_equal(block_table_shared_tokens(b), 0);
    assert_int_equal(block_pool_used(p), block_table_total_blocks(b));
    block_table_destroy(b);
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

static void sharing_whole_blocks_needs_no_copy(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 32);
    block_table *a = block_table_create(p, "a", NULL), *b = block_table_create(p, "b", NULL);
    append_seq(a, 0, 40);
    assert_int_equal(block_table_share(b, a, 32, NULL), SEM_OK);
    assert_int_equal(block_table_cow_blocks(b), 0);
    uint32_t free_before = block_pool_free_count(p);
    append_seq(b, 900, 1); /* a new block on each layer, nothing copied */
    assert_int_equal(block_pool_free_count(p), free_before - 2);
    assert_int_equal(block_pool_refs(p, block_table_blocks(a, 0)[2]), 1);
    /* Truncating into a shared block copies nothing until the next write. */
    assert_int_equal(block_table_truncate(b, 20, NULL), SEM_OK);
    assert_int_equal(block_table_cow_blocks(b), 2);
    append_seq(b, 700, 3);
    assert_int_equal(block_table_cow_blocks(b), 0);
    assert_int_equal(block_pool_refs(p, block_table_blocks(a, 0)[1]), 1);
    assert_table_ok(a);
    assert_table_ok(b);
    block_table_destroy(a);
    block_table_destroy(b);
    block_pool_destroy(p);
}

static void a_copy_that_does_not_fit_changes_nothing(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 6);
    block_table *a = block_table_create(p, "a", NULL), *b = block_table_create(p, "b", NULL);
    append_seq(a, 0, 40); /* 6 blocks: the pool is full */
    assert_int_equal(block_table_share(b, a, 40, NULL), SEM_OK);
    sem_err err = {0};
    int32_t tok = 1;
    assert_int_equal(block_table_append(b, &tok, 1, &err), SEM_EPOOL);
    assert_int_equal(block_table_n_tokens(b), 40);
    assert_int_equal(block_table_blocks(b, 0)[2], block_table_blocks(a, 0)[2]);
    assert_int_equal(block_table_cow_blocks(b), 2);
    assert_table_ok(b);
    block_table_destroy(a); /* a's references go; b's blocks are b's alone */
    assert_int_equal(block_table_cow_blocks(b), 0);
    append_seq(b, 40, 1);
    assert_table_ok(b);
    block_table_destroy(b);
    block_pool_destroy(p);
}

static void share_refuses_what_it_cannot_give(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec(); /* layer 2 keeps a window of 20 */
    block_pool *p = pool_for(&s, 64);
    block_table *a = block_table_create(p, "a", NULL), *b = block_table_create(p, "b", NULL);
    append_seq(a, 0, 100);
    assert_int_equal(block_table_release_window(a, NULL), SEM_OK);
    sem_err err = {0};
    assert_int_equal(block_table_share(b, a, 101, &err), SEM_EINVAL);
    assert_int_equal(block_table_share(b, a, 0, &err), SEM_EINVAL);
    assert_int_equal(block_table_share(b, a, 99, &err), SEM_EINVAL); /* window released */
    assert_non_null(strstr(err.detail, "sliding"));
    assert_int_equal(block_table_share(b, a, 100, &err), SEM_OK);
    /* The sliding layer shares only the blocks its window needs. */
    assert_int_equal(block_table_n_blocks(b, 0), 7);
    assert_int_equal(block_table_first_block(b, 2), (uint32_t)cache_spec_first_block(&s, 2, 100));
    assert_table_ok(b);
    assert_int_equal(block_table_share(b, a, 50, &err), SEM_EINVAL); /* b is not empty */
    block_pool *other = pool_for(&s, 8);
    block_table *c = block_table_create(other, "c", NULL);
    assert_int_equal(block_table_share(c, a, 10, &err), SEM_EINVAL); /* another pool */
    block_table_destroy(c);
    block_pool_destroy(other);
    block_table_destroy(a);
    append_seq(b, 100, 20);
    assert_int_equal(block_table_release_window(b, NULL), SEM_OK);
    assert_table_ok(b);
    block_table_destroy(b);
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

/* Tables fork from one another and write, truncate and die at random;
 * every table's K/V stays what it wrote (a byte per token), whoever
 * shares it. */
static void random_forks_never_see_each_others_writes(void **state)
{
    (void)state;
    enum { TABLES = 8, OPS = 4000 };
    cache_spec s = test_spec(2, 16);
    block_pool *p = pool_for(&s, 400);
    block_table *t[TABLES];
    for (int i = 0; i < TABLES; i++)
        t[i] = block_table_create(p, "fork", NULL);
    uint64_t rng = 99;
    size_t tok_bytes = cache_spec_block_bytes(&s) / 16 / 2; /* one token's slice of K */
    for (int op = 0; op < OPS; op++) {
        int i = (int)(test_rand(&rng) % TABLES), j = (int)(test_rand(&rng) % TABLES);
        uint32_t n = block_table_n_tokens(t[i]);
        int kind = (int)(test_rand(&rng) % 4);
        if (kind == 0 && i != j && block_table_n_tokens(t[j]) > 0) {
            block_table_clear(t[i]);
            uint32_t at = 1 + (uint32_t)(test_rand(&rng) % block_table_n_tokens(t[j]));
            assert_int_equal(block_table_share(t[i], t[j], at, NULL), SEM_OK);
        } else if (kind == 1 && n > 0) {
            assert_int_equal(block_table_truncate(t[i], (uint32_t)(test_rand(&rng) % n), NULL),
                             SEM_OK);
        } else if (kind == 2 && n + 8 < 200) {
            int32_t tok[8];
            uint32_t k = 1 + (uint32_t)(test_rand(&rng) % 8);
            for (uint32_t q = 0; q < k; q++)
                tok[q] = (int32_t)(test_rand(&rng) % 250);
            if (block_table_append(t[i], tok, k, NULL) != SEM_OK)
                continue;
            /* Write each new token's byte on layer 0, as a forward pass would. */
            for (uint32_t q = 0; q < k; q++) {
                uint32_t pos = n + q;
                uint8_t *blk = block_pool_data(p, block_table_block_for(t[i], 0, pos));
                blk[(pos % 16) * tok_bytes] = (uint8_t)tok[q];
            }
        } else if (kind == 3) {
            block_table_clear(t[i]);
        }
        for (int k = 0; k < TABLES; k++) {
            const int32_t *tk = block_table_tokens(t[k]);
            for (uint32_t pos = 0; pos < block_table_n_tokens(t[k]); pos++) {
                uint8_t *blk = block_pool_data(p, block_table_block_for(t[k], 0, pos));
                assert_int_equal(blk[(pos % 16) * tok_bytes], (uint8_t)tk[pos]);
            }
            assert_table_ok(t[k]);
        }
    }
    for (int i = 0; i < TABLES; i++)
        block_table_destroy(t[i]);
    assert_int_equal(block_pool_used(p), 0);
    block_pool_destroy(p);
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
    block_pool *pool;
    uint64_t seed;
    int failures;
} worker;

static void *cycle(void *arg)
{
    worker *w = arg;
    char name[32];
    snprintf(name, sizeof name, "worker-%llu", (unsigned long long)w->seed);
    block_table *t = block_table_create(w->pool, name, NULL);
    if (!t) {
        w->failures++;
        return NULL;
    }
    int32_t tok[40] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t r = (uint32_t)test_rand(&w->seed);
        sem_status st = SEM_OK;
        switch (r % 4) {
        case 0:
        case 1:
            st = block_table_append(t, tok, r % 40 + 1, NULL);
            if (st == SEM_EPOOL)
                st = SEM_OK;
            break;
        case 2:
            st = block_table_truncate(t, block_table_reusable(t, (r >> 8) % 64), NULL);
            break;
        default:
            st = block_table_release_window(t, NULL);
            break;
        }
        if (st != SEM_OK)
            w->failures++;
        if (block_table_n_tokens(t) > 400)
            block_table_clear(t);
    }
    if (block_table_check(t, NULL) != SEM_OK)
        w->failures++;
    block_table_destroy(t);
    return NULL;
}

static void eight_threads_cycle_their_own_tables(void **state)
{
    (void)state;
    cache_spec s = hybrid_spec();
    block_pool *p = pool_for(&s, 200);
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){.pool = p, .seed = 77u + (uint64_t)i, .failures = 0};
        assert_int_equal(pthread_create(&th[i], NULL, cycle, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    sem_err err = {0};
    assert_int_equal(block_pool_check(p, &err), SEM_OK);
    assert_int_equal(block_pool_free_count(p), 200);
    block_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_allocates_blocks_on_every_layer),
        cmocka_unit_test(append_refuses_bad_arguments),
        cmocka_unit_test(a_failed_append_changes_nothing),
        cmocka_unit_test(truncate_frees_whole_blocks_past_n),
        cmocka_unit_test(clear_drops_everything),
        cmocka_unit_test(sliding_layers_release_what_the_window_cannot_see),
        cmocka_unit_test(truncation_respects_released_windows),
        cmocka_unit_test(a_short_sequence_never_releases),
        cmocka_unit_test(restore_allocates_only_the_kept_blocks),
        cmocka_unit_test(random_operations_keep_the_invariants),
        cmocka_unit_test(share_takes_no_block_and_copies_on_write),
        cmocka_unit_test(sharing_whole_blocks_needs_no_copy),
        cmocka_unit_test(a_copy_that_does_not_fit_changes_nothing),
        cmocka_unit_test(share_refuses_what_it_cannot_give),
        cmocka_unit_test(random_forks_never_see_each_others_writes),
        cmocka_unit_test(eight_threads_cycle_their_own_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
