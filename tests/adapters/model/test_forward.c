/*
 * Specification of forward.h beyond the golden numbers: bad batches are
 * refused without writing anything, results do not depend on the thread
 * count, and sequences batched together compute what they compute alone.
 */
#include "../../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "adapters/model/forward.h"
#include "adapters/model/model.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"
#define QWEN SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"

typedef struct fixture {
    model *m;
    block_pool *pool;
    uint32_t V;
} fixture;

static fixture open_model(const char *path, uint32_t blocks)
{
    sem_err err = {0};
    fixture f = {0};
    f.m = model_load(path, &err);
    if (!f.m)
        fail_msg("%s", err.detail);
    f.V = model_hparams_of(f.m)->n_vocab;
    cache_spec s = model_cache_spec(f.m, 16, CACHE_KV_F16);
    f.pool = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, &err);
    assert_non_null(f.pool);
    return f;
}

static void close_model(fixture *f)
{
    block_pool_destroy(f->pool);
    model_free(f->m);
}

static forward_ctx *ctx_for(const fixture *f, int threads, uint32_t max_tokens)
{
    sem_err err = {0};
    forward_opts o = {.n_threads = threads, .isa = cpu_isa_best(), .max_tokens = max_tokens};
    forward_ctx *c = forward_ctx_create(f->m, &o, &err);
    if (!c)
        fail_msg("%s", err.detail);
    return c;
}

static block_table *seq_of(const fixture *f, uint32_t n, uint32_t salt)
{
    block_table *t = block_table_create(f->pool, "seq", NULL);
    assert_non_null(t);
    int32_t tok[256];
    for (uint32_t i = 0; i < n; i++)
        tok[i] = (int32_t)((i * 37 + salt * 11 + 5) % f->V);
    assert_int_equal(block_table_append(t, tok, n, NULL), SEM_OK);
    return t;
}

static void bad_batches_are_refused(void **state)
{
    (void)state;
    fixture f = open_model(STORIES, 64);
    forward_ctx *c = ctx_for(&f, 1, 8);
    block_table *t = seq_of(&f, 10, 0);
    float *logits = calloc(10 * f.V, sizeof(float));
    sem_err err = {0};
    forward_seq s = {.kv = t, .n_new = 0, .n_logits = 0, .logits = logits};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "n_new 0");
    s = (forward_seq){.kv = t, .n_new = 11, .n_logits = 1, .logits = logits};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "table of 10 tokens");
    s = (forward_seq){.kv = t, .n_new = 4, .n_logits = 5, .logits = logits};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    s = (forward_seq){.kv = t, .n_new = 4, .n_logits = 1, .logits = NULL};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    s = (forward_seq){.kv = t, .n_new = 10, .n_logits = 1, .logits = logits};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "batch of 10 tokens, limit 8");
    for (size_t i = 0; i < 10 * (size_t)f.V; i++)
        assert_true(logits[i] == 0.0f); /* nothing was written */

    /* A table from a pool of another geometry. */
    fixture g = open_model(QWEN, 16);
    block_table *other = seq_of(&g, 3, 0);
    s = (forward_seq){.kv = other, .n_new = 3, .n_logits = 1, .logits = logits};
    assert_int_equal(forward_run(c, &s, 1, &err), SEM_EINVAL);
    assert_contains(err.detail, "does not match the model");
    block_table_destroy(other);
    close_model(&g);

    forward_opts o = {.n_threads = 1, .isa = cpu_isa_best(), .max_tokens = 0};
    assert_null(forward_ctx_create(f.m, &o, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    free(logits);
    block_table_destroy(t);
    forward_ctx_destroy(c);
    close_model(&f);
}

/* Logits of the last token of each of n sequences of the given lengths. */
static void run_batch(const fixture *f, forward_ctx *c, const uint32_t *lens, uint32_t n,
                      int together, float *out)
{
    block_table *t[8];
    forward_seq s[8];
    for (uint32_t i = 0; i < n; i++) {
        t[i] = seq_of(f, lens[i], i);
        s[i] = (forward_seq){.kv = t[i], .n_new = lens[i], .n_logits = 1,
                             .logits = out + (size_t)i * f->V};
    }
    sem_err err = {0};
    if (together) {
        if (forward_run(c, s, n, &err) != SEM_OK)
            fail_msg("%s", err.detail);
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (forward_run(c, &s[i], 1, &err) != SEM_OK)
                fail_msg("%s", err.detail);
    }
    for (uint32_t i = 0; i < n; i++)
        block_table_destroy(t[i]);
}

static void thread_count_does_not_change_the_result(void **state)
{
    (void)state;
    fixture f = open_model(QWEN, 64);
    uint32_t lens[2] = {33, 5};
    float *a = malloc(2 * f.V * sizeof(float)), *b = malloc(2 * f.V * sizeof(float));
    forward_ctx *c1 = ctx_for(&f, 1, 64), *c3 = ctx_for(&f, 3, 64);
    run_batch(&f, c1, lens, 2, 1, a);
    run_batch(&f, c3, lens, 2, 1, b);
    assert_memory_equal(a, b, 2 * f.V * sizeof(float));
    forward_ctx_destroy(c1);
    forward_ctx_destroy(c3);
    free(a);
    free(b);
    close_model(&f);
}

/* A decode step (one new token after 40) gives the same logits, bit for
 * bit, on any thread count: how its KV heads are dealt (runs of heads,
 * groups cut) changes with the count, each head's arithmetic must not.
 * stories260K has 4 KV heads of 2 query heads, tiny-qwen2 2 of 2. */
static void a_decode_step_is_the_same_on_any_thread_count(void **state)
{
    (void)state;
    const char *paths[] = {STORIES, QWEN};
    for (size_t mi = 0; mi < 2; mi++) {
        fixture f = open_model(paths[mi], 64);
        float *want = malloc(f.V * sizeof(float)), *got = malloc(f.V * sizeof(float));
        for (int threads = 1; threads <= 6; threads++) {
            forward_ctx *c = ctx_for(&f, threads, 64);
            block_table *t = seq_of(&f, 40, 3);
            sem_err err = {0};
            forward_seq s = {.kv = t, .n_new = 40};
            if (forward_run(c, &s, 1, &err) != SEM_OK)
                fail_msg("%s", err.detail);
            int32_t next = 7;
            assert_int_equal(block_table_append(t, &next, 1, NULL), SEM_OK);
            s = (forward_seq){.kv = t, .n_new = 1, .n_logits = 1,
                              .logits = threads == 1 ? want : got};
            if (forward_run(c, &s, 1, &err) != SEM_OK)
                fail_msg("%s", err.detail);
            if (threads > 1)
                assert_memory_equal(got, want, f.V * sizeof(float));
            forward_ctx_destroy(c);
            block_table_destroy(t);
        }
        free(want);
        free(got);
        close_model(&f);
    }
}

/*
 * Batch neighbours change which kernel a matmul uses (decode or prefill)
 * and so the last bits of the sums; with activations rounded to Q8_0 or
 * f16 before each matmul, a last-bit change can flip one rounding and
 * grow. The promise is the golden tolerance and the same greedy token.
 */
static void check_batched_equals_alone(const char *path, double tol)
{
    fixture f = open_model(path, 256);
    uint32_t lens[5] = {40, 1, 17, 3, 64};
    float *alone = malloc(5 * f.V * sizeof(float)), *batch = malloc(5 * f.V * sizeof(float));
    forward_ctx *c = ctx_for(&f, 2, 200);
    run_batch(&f, c, lens, 5, 0, alone);
    run_batch(&f, c, lens, 5, 1, batch);
    for (uint32_t s = 0; s < 5; s++) {
        const float *a = alone + (size_t)s * f.V, *b = batch + (size_t)s * f.V;
        double max = 0;
        for (uint32_t v = 0; v < f.V; v++)
            max = fmax(max, fabs((double)a[v] - b[v]));
        if (max > tol)
            fail_msg("%s: sequence %u: batched logits differ by %g", path, s, max);
        uint32_t best = 0, second = 1;
        for (uint32_t v = 0; v < f.V; v++) {
            if (a[v] > a[best]) {
                second = best;
                best = v;
            } else if (v != best && a[v] > a[second]) {
                second = v;
            }
        }
        uint32_t best_b = 0;
        for (uint32_t v = 1; v < f.V; v++)
            if (b[v] > b[best_b])
                best_b = v;
        if (a[best] - a[second] > tol)
            assert_int_equal(best, best_b);
    }
    forward_ctx_destroy(c);
    free(alone);
    free(batch);
    close_model(&f);
}

static void batched_sequences_equal_their_runs_alone(void **state)
{
    (void)state;
    check_batched_equals_alone(STORIES, 1e-3);  /* f32 weights: no activation rounding */
    check_batched_equals_alone(QWEN, 0.6);      /* Q8_0: the golden tolerance */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_batches_are_refused),
        cmocka_unit_test(thread_count_does_not_change_the_result),
        cmocka_unit_test(a_decode_step_is_the_same_on_any_thread_count),
        cmocka_unit_test(batched_sequences_equal_their_runs_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
