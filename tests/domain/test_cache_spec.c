/* Specification of cache_spec.h: validation and block arithmetic. */
#include "../test_util.h"

#include "domain/cache_spec.h"

static void expect_invalid(const cache_spec *s, const char *field)
{
    sem_err err = {0};
    assert_int_equal(cache_spec_validate(s, &err), SEM_EINVAL);
    assert_contains(err.detail, field);
}

static void a_valid_spec_passes(void **state)
{
    (void)state;
    cache_spec s = test_spec(4, 256);
    sem_err err = {0};
    assert_int_equal(cache_spec_validate(&s, &err), SEM_OK);
}

static void validation_names_the_bad_field(void **state)
{
    (void)state;
    cache_spec s;
    s = test_spec(0, 256);
    expect_invalid(&s, "n_layers = 0");
    s = test_spec(CACHE_SPEC_MAX_LAYERS + 1, 256);
    expect_invalid(&s, "n_layers");
    s = test_spec(2, 256);
    s.n_kv_heads = 0;
    expect_invalid(&s, "n_kv_heads = 0");
    s = test_spec(2, 256);
    s.k_head_dim = 0;
    expect_invalid(&s, "k_head_dim = 0");
    s = test_spec(2, 256);
    s.v_head_dim = CACHE_SPEC_MAX_HEAD_DIM + 1;
    expect_invalid(&s, "v_head_dim");
    s = test_spec(2, 100);
    expect_invalid(&s, "block_tokens = 100");
    s = test_spec(2, 8);
    expect_invalid(&s, "block_tokens = 8");
    s = test_spec(2, 2048);
    expect_invalid(&s, "block_tokens = 2048");
    s = test_spec(2, 256);
    s.kv_type = (cache_kv_type)7;
    expect_invalid(&s, "kv_type");
    s = test_spec(2, 256);
    s.kv_type = CACHE_KV_Q8_0; /* head dim 8 is not a multiple of 32 */
    expect_invalid(&s, "divisible by 32");
    s = test_spec(2, 256);
    s.layers[1].kind = CACHE_ATTN_SLIDING;
    expect_invalid(&s, "layers[1].window = 0");
    s = test_spec(2, 256);
    s.layers[0].window = 5;
    expect_invalid(&s, "layers[0].window = 5 on a global layer");
    s = test_spec(2, 256);
    s.layers[1].kind = (cache_attn_kind)9;
    expect_invalid(&s, "layers[1].kind");
    expect_invalid(NULL, "NULL");
}

static void block_sizes_follow_the_layout(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    s.n_kv_heads = 4;
    s.k_head_dim = 64;
    s.v_head_dim = 32; /* K and V dims may differ */
    assert_int_equal(cache_spec_row_bytes(CACHE_KV_F16, 64), 128);
    assert_int_equal(cache_spec_block_k_bytes(&s), 4 * 16 * 128);
    assert_int_equal(cache_spec_block_v_bytes(&s), 4 * 16 * 64);
    assert_int_equal(cache_spec_block_bytes(&s), 4 * 16 * 192);
    assert_int_equal(cache_spec_k_offset(&s, 1, 3), (16 + 3) * 128);
    assert_int_equal(cache_spec_v_offset(&s, 2, 5), 4 * 16 * 128 + (32 + 5) * 64);

    s.kv_type = CACHE_KV_Q8_0; /* 32 values = 2-byte scale + 32 bytes */
    assert_int_equal(cache_spec_row_bytes(CACHE_KV_Q8_0, 64), 68);
    assert_int_equal(cache_spec_block_bytes(&s), 4 * 16 * (68 + 34));
}

static void global_layers_need_every_block(void **state)
{
    (void)state;
    cache_spec s = test_spec(1, 16);
    assert_int_equal(cache_spec_blocks_for(&s, 0, 0), 0);
    assert_int_equal(cache_spec_blocks_for(&s, 0, 1), 1);
    assert_int_equal(cache_spec_blocks_for(&s, 0, 16), 1);
    assert_int_equal(cache_spec_blocks_for(&s, 0, 17), 2);
    assert_int_equal(cache_spec_blocks_for(&s, 0, 1000), 63);
    assert_int_equal(cache_spec_first_block(&s, 0, 1000), 0);
}

static void sliding_layers_need_only_their_window(void **state)
{
    (void)state;
    cache_spec s = test_spec(2, 16);
    s.layers[1].kind = CACHE_ATTN_SLIDING;
    s.layers[1].window = 20;
    /* Up to the window, a sliding layer is like a global one. */
    assert_int_equal(cache_spec_blocks_for(&s, 1, 20), 2);
    assert_int_equal(cache_spec_kept_tokens(&s, 1, 10), 10);
    /* 100 tokens: keep tokens 80..99, which live in blocks 5 and 6. */
    assert_int_equal(cache_spec_kept_tokens(&s, 1, 100), 20);
    assert_int_equal(cache_spec_first_block(&s, 1, 100), 5);
    assert_int_equal(cache_spec_blocks_for(&s, 1, 100), 2);
    /* 109 tokens: keep 89..108, blocks 5, 6 (ends at 111). */
    assert_int_equal(cache_spec_blocks_for(&s, 1, 109), 2);
    /* 113 tokens: keep 93..112, blocks 5, 6, 7: three blocks. */
    assert_int_equal(cache_spec_blocks_for(&s, 1, 113), 3);
    assert_int_equal(cache_spec_max_blocks_for(&s, 1, 100000), 3);
    assert_int_equal(cache_spec_total_blocks_for(&s, 100), 7 + 2);
    /* The bound holds at every length. */
    for (uint64_t n = 0; n < 400; n++)
        assert_true(cache_spec_blocks_for(&s, 1, n) <= cache_spec_max_blocks_for(&s, 1, 400));
}

static void kv_type_names_round_trip(void **state)
{
    (void)state;
    cache_kv_type t;
    sem_err err = {0};
    assert_int_equal(cache_kv_type_parse("q8_0", &t, &err), SEM_OK);
    assert_int_equal(t, CACHE_KV_Q8_0);
    assert_string_equal(cache_kv_type_name(t), "q8_0");
    assert_int_equal(cache_kv_type_parse("f16", &t, &err), SEM_OK);
    assert_string_equal(cache_kv_type_name(t), "f16");
    assert_int_equal(cache_kv_type_parse("q4_0", &t, &err), SEM_EINVAL);
    assert_contains(err.detail, "'q4_0'");
    assert_int_equal(cache_kv_type_parse(NULL, &t, &err), SEM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_spec_passes),
        cmocka_unit_test(validation_names_the_bad_field),
        cmocka_unit_test(block_sizes_follow_the_layout),
        cmocka_unit_test(global_layers_need_every_block),
        cmocka_unit_test(sliding_layers_need_only_their_window),
        cmocka_unit_test(kv_type_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
