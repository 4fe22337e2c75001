/*
 * The definition of a correct engine: for every model and case in the
 * golden data, the prompt tokenizes to the reference ids, the logits at
 * every stored position are within the tolerance of README-data.md, and
 * greedy decoding with teacher forcing picks the reference token wherever
 * the reference's top-1/top-2 margin exceeds that tolerance.
 *
 * The models and cases copied into tests/data always run; the others run
 * when ../shared/golden (or $SEMANTIC_TESTDATA) is present. Each runs with the
 * portable kernels and with the best kernels of this CPU, through 16-token
 * KV blocks and 7-token prefill chunks so paging and chunking are exercised.
 */
#include "../../test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../golden.h"
#include "adapters/model/forward.h"
#include "adapters/model/model.h"
#include "domain/block_table.h"

typedef struct golden_model {
    const char *name;
    float tol;   /* logit tolerance */
    int local;   /* copied into tests/data: must be present */
} golden_model;

static const golden_model models[] = {
    {"stories260K", 0.1f, 1},       {"tiny-llama-q4_0", 0.6f, 1},
    {"tiny-llama-q4_k_m", 0.6f, 1}, {"tiny-llama-q5_k_m", 0.6f, 1},
    {"tiny-llama-q8_0", 0.6f, 0},   {"tiny-qwen2-q8_0", 0.6f, 1},
    {"tiny-llama", 0.1f, 0},        {"tiny-llama-bf16", 0.1f, 0},
    {"tiny-llama-q6_k", 0.6f, 0},   {"tiny-llama31", 0.1f, 0},
    {"tiny-qwen2", 0.1f, 0},        {"tiny-gemma3", 0.1f, 0},
    {"tiny-qwen2moe", 0.1f, 0},
};
static const char *cases[] = {"short", "long", "unicode", "story200"};

#define BLOCK_TOKENS 16
#define CHUNK 7

typedef struct runner {
    model *m;
    block_pool *pool;
    block_table *seq;
    forward_ctx *fc;
    float *logits; /* [CHUNK][n_vocab] */
    uint32_t n_vocab;
} runner;

static void runner_open(runner *r, const char *path, cpu_isa isa)
{
    sem_err err = {0};
    r->m = model_load(path, &err);
    if (!r->m)
        fail_msg("load %s: %s", path, err.detail);
    r->n_vocab = model_hparams_of(r->m)->n_vocab;
    cache_spec spec = model_cache_spec(r->m, BLOCK_TOKENS, CACHE_KV_F16);
    r->pool = block_pool_create(&spec, cache_spec_block_bytes(&spec) * spec.n_layers * 40, &err);
    assert_non_null(r->pool);
    r->seq = block_table_create(r->pool, "golden", &err);
    forward_opts fo = {.n_threads = 2, .isa = isa, .max_tokens = CHUNK};
    r->fc = forward_ctx_create(r->m, &fo, &err);
    if (!r->fc)
        fail_msg("forward ctx: %s", err.detail);
    r->logits = malloc((size_t)CHUNK * r->n_vocab * sizeof(float));
}

static void runner_close(runner *r)
{
    free(r->logits);
    forward_ctx_destroy(r->fc);
    block_table_destroy(r->seq);
    block_pool_destroy(r->pool);
    model_free(r->m);
}

/* Appends n tokens and evaluates them; logits of all of them land in out[n][V]. */
static void eval(runner *r, const int32_t *tok, uint32_t n, float *out)
{
    sem_err err = {0};
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < CHUNK ? n - done : CHUNK;
        if (block_table_append(r->seq, tok + done, k, &err) != SEM_OK)
            fail_msg("append: %s", err.detail);
        forward_seq fs = {.kv = r->seq, .n_new = k, .n_logits = k, .logits = r->logits};
        if (forward_run(r->fc, &fs, 1, &err) != SEM_OK)
            fail_msg("forward: %s", err.detail);
        assert_int_equal(block_table_release_window(r->seq, &err), SEM_OK);
        memcpy(out + (size_t)done * r->n_vocab, r->logits, (size_t)k * r->n_vocab * sizeof(float));
        done += k;
    }
}

static int32_t *json_ints(json_t *a, size_t *n)
{
    *n = json_array_size(a);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static void check_case(runner *r, const golden_model *gm, const char *dir, const char *cs)
{
    char path[8192];
    if (snprintf(path, sizeof path, "%s/%s.json", dir, cs) >= (int)sizeof path ||
        !golden_exists(path))
        return; /* this model has no such case */
    json_t *g = golden_load_json(path);
    assert_non_null(g);
    sem_err err = {0};
    const char *prompt = json_string_value(json_object_get(g, "prompt"));
    size_t n_ref;
    int32_t *ref = json_ints(json_object_get(g, "tokens"), &n_ref);

    /* 1. Tokens. */
    int32_t *tok = NULL;
    size_t n_tok = 0;
    assert_int_equal(tokenizer_encode(model_tokenizer(r->m), prompt, strlen(prompt), 1, 0, &tok,
                                      &n_tok, &err), SEM_OK);
    assert_int_equal(n_tok, n_ref);
    assert_memory_equal(tok, ref, n_ref * sizeof *tok);

    /* 2. Logits at the stored positions. */
    json_t *pos = json_object_get(g, "logit_positions");
    size_t n_pos = json_array_size(pos);
    if (snprintf(path, sizeof path, "%s/%s.f32", dir, cs) >= (int)sizeof path)
        fail_msg("path too long");
    float *gl = golden_load_f32(path, n_pos * r->n_vocab);
    assert_non_null(gl);
    float *ours = malloc(n_tok * r->n_vocab * sizeof(float));
    block_table_clear(r->seq);
    eval(r, tok, (uint32_t)n_tok, ours);
    double max_diff = 0;
    for (size_t i = 0; i < n_pos; i++) {
        size_t p = (size_t)json_integer_value(json_array_get(pos, i));
        for (uint32_t v = 0; v < r->n_vocab; v++) {
            double d = fabs((double)ours[p * r->n_vocab + v] - gl[i * r->n_vocab + v]);
            max_diff = d > max_diff ? d : max_diff;
        }
    }
    if (!(max_diff <= gm->tol))
        fail_msg("%s/%s: max logit difference %.4f exceeds %.2f", gm->name, cs, max_diff, gm->tol);

    /* 3. Greedy continuation with teacher forcing. */
    size_t n_gen;
    int32_t *gen = json_ints(json_object_get(g, "greedy_tokens"), &n_gen);
    json_t *top1 = json_object_get(g, "greedy_top1_logit");
    json_t *top2 = json_object_get(g, "greedy_top2_logit");
    float *step = malloc(r->n_vocab * sizeof(float));
    memcpy(step, ours + (n_tok - 1) * r->n_vocab, r->n_vocab * sizeof(float));
    size_t ties = 0;
    for (size_t i = 0; i < n_gen; i++) {
        int32_t best = 0;
        for (uint32_t v = 1; v < r->n_vocab; v++)
            if (step[v] > step[best])
                best = (int32_t)v;
        double margin = json_real_value(json_array_get(top1, i)) -
                        json_real_value(json_array_get(top2, i));
        if (best != gen[i]) {
            if (margin > gm->tol)
                fail_msg("%s/%s: greedy step %zu chose %d, reference %d (margin %.4f)", gm->name,
                         cs, i, best, gen[i], margin);
            ties++;
        }
        double d = fabs((double)step[gen[i]] - json_real_value(json_array_get(top1, i)));
        if (!(d <= gm->tol))
            fail_msg("%s/%s: step %zu top logit differs by %.4f", gm->name, cs, i, d);
        eval(r, &gen[i], 1, step); /* teacher forcing: continue with the reference token */
    }
    printf("  %-20s %-9s %3zu tokens, max |dlogit| %.4f, %zu/%zu greedy ties\n", gm->name, cs,
           n_tok, max_diff, ties, n_gen);
    free(step);
    free(gen);
    free(ours);
    free(gl);
    free(tok);
    free(ref);
    json_decref(g);
}

static void check_model(void **state)
{
    const golden_model *gm = *state;
    char model_path[4096], dir[4096], rel[512], rel_local[512];
    snprintf(rel, sizeof rel, "../models/%s.gguf", gm->name);
    snprintf(rel_local, sizeof rel_local, "models/%s.gguf", gm->name);
    int have_model = golden_find(model_path, sizeof model_path, rel, rel_local);
    snprintf(rel, sizeof rel, "logits/%s", gm->name);
    snprintf(rel_local, sizeof rel_local, "golden/logits/%s", gm->name);
    int have_dir = golden_find(dir, sizeof dir, rel, rel_local);
    if (!have_model || !have_dir) {
        if (gm->local)
            fail_msg("%s: test data missing from tests/data", gm->name);
        printf("  %s: skipped (no ../shared/golden; set SEMANTIC_TESTDATA)\n", gm->name);
        skip();
    }
    /* Every tier this CPU runs: portable, AVX2, AVX-512. */
    for (int isa = CPU_ISA_PORTABLE; isa <= (int)cpu_isa_best(); isa++) {
        printf("  [%s kernels]\n", cpu_isa_name((cpu_isa)isa));
        runner r;
        runner_open(&r, model_path, (cpu_isa)isa);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            check_case(&r, gm, dir, cases[c]);
        runner_close(&r);
    }
}

int main(void)
{
    enum { N = sizeof models / sizeof models[0] };
    struct CMUnitTest tests[N];
    for (size_t i = 0; i < N; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(check_model, (void *)&models[i]);
        tests[i].name = models[i].name;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
