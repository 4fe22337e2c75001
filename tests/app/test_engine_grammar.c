/*
 * Specification of constrained decoding and log probabilities in the
 * engine (engine_sample.c), on a fake model port: a small vocabulary with
 * multi-byte, empty and end-of-generation tokens, and logits that are a
 * fixed pseudo-random function of the position (plus per-token biases and
 * an optional script of tokens it prefers), so tests can recompute them.
 */
#include "../test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "app/engine.h"
#include "app/grammar.h"

/* ---------------------------------------------------------------- the fake model */

static const char *VOCAB[] = {
    "<s>", "</s>", "{", "}", "\"", ":", ",", " ", "a", "b", "ab", "{\"", "\":", "true", "1",
    "23", "x", "<tool>", "<to", "ol>", "ol>x", "hello", "\n", "\xC3", "\xA9", "", "\"}", "}x",
    "c", "hi", "[", "]", "yz", "\"a\"", "!", "!0", "!1", "!2", "!3", "!4", "!5", "!6", "!7",
    "!8", "!9", "!10", "!11", "!12", "!13", "!14", "!15", "!16", "!17", "!18", "!19",
    "<nul>", /* spelled "a\0b" (fake_piece) */
};
enum { N_VOCAB = sizeof VOCAB / sizeof *VOCAB, EOG = 1, EMPTY = 25 };

typedef struct fake_model {
    float bias[N_VOCAB];      /* added at every position */
    const int32_t *script;    /* script[i] gets +30 at generated position i */
    uint32_t n_script, n_prompt;
} fake_model;

static int32_t tok_of(const char *text)
{
    for (int32_t t = 0; t < N_VOCAB; t++)
        if (strcmp(VOCAB[t], text) == 0 && t != 0)
            return t;
    fail_msg("no token \"%s\"", text);
    return -1;
}

/* The logit of token t when the sequence holds pos tokens. */
static float fake_logit(const fake_model *m, uint32_t pos, int32_t t)
{
    uint64_t h = (uint64_t)pos * 0x9E3779B97F4A7C15ULL + (uint64_t)t * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 29;
    float v = (float)(h % 8001) / 1000.0f - 4.0f + m->bias[t];
    uint32_t g = pos - m->n_prompt;
    if (pos >= m->n_prompt && g < m->n_script && m->script[g] == t)
        v += 30.0f;
    return v;
}

static sem_status fake_forward(void *self, model_port_seq *seqs, uint32_t n, sem_err *err)
{
    (void)err;
    fake_model *m = self;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pos = block_table_n_tokens(seqs[i].kv);
        for (uint32_t k = 0; k < seqs[i].n_logits; k++)
            for (int32_t t = 0; t < N_VOCAB; t++)
                seqs[i].logits[(size_t)k * N_VOCAB + t] = fake_logit(m, pos, t);
    }
    return SEM_OK;
}

static uint32_t fake_n_vocab(void *self) { (void)self; return N_VOCAB; }
static uint32_t fake_max_batch(void *self) { (void)self; return 4096; }
static uint32_t fake_n_ctx(void *self) { (void)self; return 1024; }
static int fake_is_eog(void *self, int32_t t) { (void)self; return t == EOG; }

static const char *fake_piece(void *self, int32_t t, size_t *len)
{
    (void)self;
    if (t < 0 || t >= N_VOCAB)
        return NULL;
    if (strcmp(VOCAB[t], "<nul>") == 0) {
        *len = 3;
        return "a\0b";
    }
    *len = strlen(VOCAB[t]);
    return VOCAB[t];
}

static const model_port_ops FAKE_OPS = {
    .forward = fake_forward, .n_vocab = fake_n_vocab, .max_batch_tokens = fake_max_batch,
    .n_ctx = fake_n_ctx, .is_eog = fake_is_eog, .piece = fake_piece,
};

/* ---------------------------------------------------------------- fixture */

typedef struct fixture {
    fake_model m;
    block_pool *pool;
    engine *e;
    generation_port gp;
} fixture;

static fixture *open_fixture(void)
{
    fixture *f = calloc(1, sizeof *f);
    cache_spec s = test_spec(1, 16);
    f->pool = block_pool_create(&s, cache_spec_block_bytes(&s) * 512, NULL);
    assert_non_null(f->pool);
    engine_opts o = engine_defaults();
    o.max_batch = 4;
    o.chunk = 64;
    f->e = engine_create((model_port){&FAKE_OPS, &f->m}, f->pool, &o, NULL);
    assert_non_null(f->e);
    f->gp = engine_generation_port(f->e);
    return f;
}

static void close_fixture(fixture *f)
{
    engine_destroy(f->e);
    assert_int_equal(block_pool_free_count(f->pool), block_pool_total(f->pool));
    block_pool_destroy(f->pool);
    free(f);
}

static const int32_t PROMPT[] = {0, 7, 8, 9};
enum { N_PROMPT = 4 };

static gen_params params(const char *gtext, uint32_t max_tokens, float temperature, uint64_t seed)
{
    gen_params p = {.prompt = PROMPT, .n_prompt = N_PROMPT, .max_tokens = max_tokens,
                    .grammar = gtext};
    p.sampling = (gen_sampling){.temperature = temperature, .top_p = 1, .repeat_penalty = 1,
                                .seed = seed};
    return p;
}

typedef struct outcome {
    char text[2048];
    size_t len;
    gen_result res;
    int32_t toks[512];
    uint32_t n_toks;
} outcome;

/* Submits, reads everything, collects the result and tokens. */
static void run(fixture *f, const gen_params *p, outcome *o)
{
    gen_request *r = NULL;
    sem_err err = {0};
    if (f->gp.ops->submit(f->gp.self, p, &r, &err) != SEM_OK)
        fail_msg("submit: %s", err.detail);
    o->len = 0;
    for (;;) {
        size_t n = 0;
        int done = f->gp.ops->read(f->gp.self, r, o->text + o->len, sizeof o->text - 1 - o->len,
                                   &n, -1);
        o->len += n;
        if (done)
            break;
    }
    o->text[o->len] = 0;
    o->res = f->gp.ops->result(f->gp.self, r);
    int32_t *t;
    assert_int_equal(f->gp.ops->tokens(f->gp.self, r, &t, &o->n_toks, NULL), SEM_OK);
    memcpy(o->toks, t, o->n_toks * sizeof *t);
    free(t);
    f->gp.ops->release(f->gp.self, r);
}

/* 1: a whole sentence of the grammar, 0: a prefix only, -1: not even that. */
static int judge(const char *gtext, const char *s, size_t len)
{
    grammar *g = grammar_parse(gtext, strlen(gtext), NULL);
    assert_non_null(g);
    grammar_state *st = grammar_state_new(g, NULL);
    int r = grammar_state_accept(st, s, len) ? grammar_state_can_end(st) : -1;
    grammar_state_free(st);
    grammar_free(g);
    return r;
}

/* ---------------------------------------------------------------- grammars */

static const char *OBJECT_GRAMMAR =
    "root  ::= \"{\" pair (\",\" \" \"? pair){0,2} \"}\"\n"
    "pair  ::= \"\\\"\" chars \"\\\":\" \" \"? value\n"
    "chars ::= ([a-c] | [x-z] | [\\xC3] [\\xA0-\\xBF]){1,6}\n"
    "value ::= \"true\" | [0-9]{1,3} | \"\\\"\" chars \"\\\"\"\n";

static void a_constrained_request_produces_only_sentences(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    outcome o;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        gen_params p = params(OBJECT_GRAMMAR, 200, 1.0f, seed);
        run(f, &p, &o);
        if (judge(OBJECT_GRAMMAR, o.text, o.len) != 1)
            fail_msg("seed %llu: \"%s\" is not a sentence", (unsigned long long)seed, o.text);
        /* The grammar admits nothing after '}': the request ends there, with
         * no end-of-generation token. */
        assert_int_equal(o.res.finish, GEN_STOP);
        assert_int_equal(o.res.stop_index, -1);
        assert_int_equal(o.res.completion_tokens, o.n_toks);
        assert_true(o.n_toks > 0 && o.toks[o.n_toks - 1] != EOG);
        assert_int_equal(o.text[o.len - 1], '}');
    }
    engine_stats st = engine_get_stats(f->e);
    assert_true(st.grammar_tokens >= 30 && st.grammar_masks > 0);
    assert_true(st.grammar_masks <= st.grammar_tokens && st.grammar_ms > 0);
    /* Without the grammar the same model writes anything. */
    gen_params p = params(NULL, 40, 1.0f, 3);
    run(f, &p, &o);
    assert_int_equal(judge(OBJECT_GRAMMAR, o.text, o.len), -1);
    close_fixture(f);
}

static void end_of_generation_only_where_the_grammar_can_end(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    f->m.bias[EOG] = 50.0f; /* the model wants to stop at once */
    const char *g = "root ::= (\"ab\" | \"a\" \"b\" | \"hello\") \"c\"? \" \"*";
    outcome o;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        gen_params p = params(g, 50, seed % 2 ? 0.0f : 1.0f, seed);
        run(f, &p, &o);
        assert_int_equal(o.res.finish, GEN_STOP);
        assert_int_equal(judge(g, o.text, o.len), 1);
        /* It stopped as soon as it could: "ab" or "hello", nothing more. */
        assert_true(!strcmp(o.text, "ab") || !strcmp(o.text, "hello"));
        for (uint32_t i = 0; i < o.n_toks; i++)
            assert_int_not_equal(o.toks[i], EOG);
    }
    /* Without a grammar it stops before a single token. */
    gen_params p = params(NULL, 50, 0.0f, 1);
    run(f, &p, &o);
    assert_int_equal(o.res.finish, GEN_STOP);
    assert_int_equal(o.res.completion_tokens, 0);
    close_fixture(f);
}

static void a_grammar_that_is_done_ends_the_request(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    outcome o;
    gen_params p = params("root ::= \"hello\" | \"hi\"", 50, 1.0f, 7);
    run(f, &p, &o);
    assert_true(!strcmp(o.text, "hello") || !strcmp(o.text, "hi"));
    assert_int_equal(o.res.finish, GEN_STOP);
    /* A token limit still applies first. */
    p = params("root ::= \"a\"{10}", 3, 0.0f, 7);
    run(f, &p, &o);
    assert_int_equal(o.res.finish, GEN_LENGTH);
    assert_string_equal(o.text, "aaa");
    close_fixture(f);
}

static void bad_grammars_fail_the_submit(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    gen_request *r = NULL;
    sem_err err = {0};
    gen_params p = params("root ::= item\n", 10, 0, 0);
    assert_int_equal(f->gp.ops->submit(f->gp.self, &p, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "line 1 col 10: rule \"item\" is used but not defined");
    p = params("root ::= root \"a\"", 10, 0, 0);
    assert_int_equal(f->gp.ops->submit(f->gp.self, &p, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "left-recursive");
    const char *trig[] = {"<tool>"}, *empty[] = {"^"};
    p = params(NULL, 10, 0, 0);
    p.grammar_triggers = trig;
    p.n_grammar_triggers = 1;
    assert_int_equal(f->gp.ops->submit(f->gp.self, &p, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "triggers without a grammar");
    p = params("root ::= \"a\"", 10, 0, 0);
    p.grammar_triggers = empty;
    p.n_grammar_triggers = 1;
    assert_int_equal(f->gp.ops->submit(f->gp.self, &p, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "grammar trigger 0 is 0 bytes");
    p = params(NULL, 10, 0, 0);
    p.logprobs = 1;
    p.top_logprobs = GEN_TOP_LOGPROBS_MAX + 1;
    assert_int_equal(f->gp.ops->submit(f->gp.self, &p, &r, &err), SEM_EREQUEST);
    assert_contains(err.detail, "top_logprobs");
    close_fixture(f);
}

/* A grammar whose bytes no token spells fails the request, not the engine. */
static void a_grammar_the_vocabulary_cannot_spell_fails_the_request(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    outcome o;
    gen_params p = params("root ::= \"a\" \"Q\"", 10, 0.0f, 1);
    run(f, &p, &o);
    assert_int_equal(o.res.finish, GEN_ERROR);
    assert_int_equal(o.res.error.status, SEM_EREQUEST);
    assert_contains(o.res.error.detail, "admits no token");
    assert_string_equal(o.text, "a");
    close_fixture(f);
}

/* ---------------------------------------------------------------- lazy grammars */

static const char *TOOL_GRAMMAR = "root ::= \"<tool>{\" [a-c]{1,3} \"}\"";

static void scripted(fixture *f, int32_t *buf, const char *const *words, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        buf[i] = tok_of(words[i]);
    f->m.script = buf;
    f->m.n_script = n;
    f->m.n_prompt = N_PROMPT;
}

static outcome *lazy_run(fixture *f, const char *trigger, uint32_t max_tokens)
{
    static outcome o;
    const char *trig[] = {trigger};
    gen_params p = params(TOOL_GRAMMAR, max_tokens, 0.0f, 1);
    p.grammar_triggers = trig;
    p.n_grammar_triggers = 1;
    run(f, &p, &o);
    return &o;
}

/* A model that writes U+0000 is answered with U+FFFD: the APIs' readers
 * refuse "\u0000", and the answer must be sendable back. */
static void a_nul_is_never_written(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    int32_t script[16];
    const char *a[] = {"hi", "<nul>", "x"};
    scripted(f, script, a, 3);
    outcome o;
    gen_params p = params(NULL, 3, 0.0f, 1);
    run(f, &p, &o);
    assert_int_equal(o.len, 2 + 5 + 1);
    assert_memory_equal(o.text, "hia\xEF\xBF\xBD" "bx", 8);
    assert_null(memchr(o.text, 0, o.len));
    close_fixture(f);
}

static void a_lazy_grammar_applies_from_its_trigger(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    int32_t script[16];
    /* Free text, then the trigger split over two tokens, then the grammar. */
    const char *a[] = {"hi", " ", "<to", "ol>", "{", "ab", "}", "x", "x"};
    scripted(f, script, a, 9);
    outcome *o = lazy_run(f, "<tool>", 30);
    assert_string_equal(o->text, "hi <tool>{ab}");
    assert_int_equal(o->res.finish, GEN_STOP);
    /* After the trigger the grammar masks: "x" cannot follow "<tool>". */
    const char *b[] = {"x", "<tool>", "x", "x", "x", "x", "x", "x"};
    scripted(f, script, b, 8);
    o = lazy_run(f, "<tool>", 30);
    assert_int_equal(strncmp(o->text, "x<tool>{", 8), 0);
    assert_int_equal(judge(TOOL_GRAMMAR, o->text + 1, o->len - 1), 1);
    assert_int_equal(o->res.finish, GEN_STOP);
    /* Before the trigger, an end-of-generation token ends the request. */
    const char *c[] = {"hi", "</s>"};
    scripted(f, script, c, 2);
    o = lazy_run(f, "<tool>", 30);
    assert_string_equal(o->text, "hi");
    assert_int_equal(o->res.finish, GEN_STOP);
    /* No trigger: free to the end. */
    const char *d[] = {"x", "x", "x"};
    scripted(f, script, d, 3);
    o = lazy_run(f, "<tool>", 3);
    assert_string_equal(o->text, "xxx");
    assert_int_equal(o->res.finish, GEN_LENGTH);
    close_fixture(f);
}

static void a_token_that_completes_a_trigger_into_bad_text_is_redrawn(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    int32_t script[16];
    /* "ol>x" would make "<tool>x": refused; "ol>" is the next best. */
    f->m.bias[tok_of("ol>")] = 20.0f;
    const char *a[] = {"<to", "ol>x", "{", "c", "}"};
    scripted(f, script, a, 5);
    outcome *o = lazy_run(f, "<tool>", 30);
    assert_string_equal(o->text, "<tool>{c}");
    assert_int_equal(o->res.finish, GEN_STOP);
    /* Twenty likely tokens all complete the trigger "!" into text the
     * grammar refuses: after a few redraws every token is checked at once. */
    for (int t = 0; t < N_VOCAB; t++)
        f->m.bias[t] = VOCAB[t][0] == '!' ? 10.0f : -20.0f;
    f->m.bias[tok_of("!")] = 0.0f; /* below every "!N" */
    f->m.script = NULL;
    f->m.n_script = 0;
    const char *trig[] = {"!"};
    gen_params p = params("root ::= \"!!\"", 12, 0.0f, 1);
    p.grammar_triggers = trig;
    p.n_grammar_triggers = 1;
    run(f, &p, o);
    assert_string_equal(o->text, "!!");
    assert_int_equal(o->res.finish, GEN_STOP);
    close_fixture(f);
}

static void an_anchored_trigger_counts_only_at_the_start(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    int32_t script[16];
    const char *a[] = {"hello", "<tool>", "x", "x"};
    scripted(f, script, a, 4);
    outcome *o = lazy_run(f, "^<tool>", 4);
    assert_string_equal(o->text, "hello<tool>xx");
    assert_int_equal(o->res.finish, GEN_LENGTH);
    const char *b[] = {" ", "\n", "<tool>", "{", "a", "}", "x"};
    scripted(f, script, b, 7);
    o = lazy_run(f, "^<tool>", 30);
    assert_string_equal(o->text, " \n<tool>{a}");
    assert_int_equal(o->res.finish, GEN_STOP);
    close_fixture(f);
}

/* ---------------------------------------------------------------- log probabilities */

static uint32_t logprobs_of(fixture *f, const gen_params *p, outcome *o, gen_logprob *lp,
                            uint32_t cap)
{
    gen_request *r = NULL;
    assert_int_equal(f->gp.ops->submit(f->gp.self, p, &r, NULL), SEM_OK);
    char buf[256];
    size_t n;
    while (!f->gp.ops->read(f->gp.self, r, buf, sizeof buf, &n, -1)) {
    }
    o->res = f->gp.ops->result(f->gp.self, r);
    int32_t *t;
    assert_int_equal(f->gp.ops->tokens(f->gp.self, r, &t, &o->n_toks, NULL), SEM_OK);
    memcpy(o->toks, t, o->n_toks * sizeof *t);
    free(t);
    uint32_t k = f->gp.ops->logprobs(f->gp.self, r, 0, lp, cap);
    /* A window reads the same records. */
    if (k >= 4) {
        gen_logprob two[2];
        assert_int_equal(f->gp.ops->logprobs(f->gp.self, r, 2, two, 2), 2);
        assert_memory_equal(two, lp + 2, sizeof two);
    }
    assert_int_equal(f->gp.ops->logprobs(f->gp.self, r, k, lp + k, cap - k), 0);
    f->gp.ops->release(f->gp.self, r);
    return k;
}

/* log-softmax over the tokens the state allows (all when s is NULL). */
static float expected_logprob(const fake_model *m, uint32_t pos, int32_t tok, grammar_state *s,
                              grammar_vocab *v)
{
    double sum = 0;
    for (int32_t t = 0; t < N_VOCAB; t++)
        if (!s || grammar_state_allows(s, v, t))
            sum += exp((double)fake_logit(m, pos, t));
    return fake_logit(m, pos, tok) - (float)log(sum);
}

static void check_logprobs(const fixture *f, const char *gtext, const outcome *o,
                           const gen_logprob *lp, uint32_t k, int top_n)
{
    assert_int_equal(k, o->n_toks);
    grammar *g = gtext ? grammar_parse(gtext, strlen(gtext), NULL) : NULL;
    grammar_state *s = g ? grammar_state_new(g, NULL) : NULL;
    grammar_vocab *v = grammar_vocab_new(N_VOCAB, fake_piece, fake_is_eog, NULL, NULL);
    for (uint32_t i = 0; i < k; i++) {
        assert_int_equal(lp[i].token, o->toks[i]);
        float want = expected_logprob(&f->m, N_PROMPT + i, lp[i].token, s, v);
        if (fabsf(lp[i].logprob - want) > 1e-3f)
            fail_msg("token %u: logprob %g, expected %g", i, lp[i].logprob, want);
        assert_true(lp[i].logprob <= 0.0f);
        assert_true(lp[i].n_top <= (uint32_t)top_n);
        for (uint32_t j = 0; j < lp[i].n_top; j++) {
            float w = expected_logprob(&f->m, N_PROMPT + i, lp[i].top[j].token, s, v);
            assert_true(fabsf(lp[i].top[j].logprob - w) < 1e-3f);
            if (j > 0)
                assert_true(lp[i].top[j].logprob <= lp[i].top[j - 1].logprob);
            if (s)
                assert_true(grammar_state_allows(s, v, lp[i].top[j].token));
        }
        if (lp[i].n_top)
            assert_true(lp[i].top[0].logprob >= lp[i].logprob);
        if (s) {
            size_t len;
            const char *text = grammar_vocab_text(v, lp[i].token, &len);
            assert_true(grammar_state_accept(s, text, len));
        }
    }
    grammar_vocab_free(v);
    grammar_state_free(s);
    grammar_free(g);
}

static void log_probabilities_are_recorded_per_token(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    static gen_logprob lp[256];
    outcome o;
    gen_params p = params(NULL, 20, 0.9f, 5);
    p.logprobs = 1;
    p.top_logprobs = 3;
    uint32_t k = logprobs_of(f, &p, &o, lp, 256);
    assert_true(k > 0);
    check_logprobs(f, NULL, &o, lp, k, 3);
    for (uint32_t i = 0; i < k; i++)
        assert_int_equal(lp[i].n_top, 3);
    /* Under a grammar they are of the masked distribution. */
    p = params(OBJECT_GRAMMAR, 200, 1.0f, 6);
    p.logprobs = 1;
    p.top_logprobs = GEN_TOP_LOGPROBS_MAX;
    k = logprobs_of(f, &p, &o, lp, 256);
    check_logprobs(f, OBJECT_GRAMMAR, &o, lp, k, GEN_TOP_LOGPROBS_MAX);
    /* Zero alternatives: only the chosen token's. */
    p = params(NULL, 5, 0.0f, 1);
    p.logprobs = 1;
    p.top_logprobs = 0;
    k = logprobs_of(f, &p, &o, lp, 256);
    assert_int_equal(k, 5);
    check_logprobs(f, NULL, &o, lp, k, 0);
    /* None asked: none kept. */
    p = params(NULL, 5, 0.0f, 1);
    assert_int_equal(logprobs_of(f, &p, &o, lp, 256), 0);
    close_fixture(f);
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
    fixture *f;
    int id, bad;
} worker;

static void *constrained_worker(void *arg)
{
    worker *w = arg;
    static outcome outs[4];
    outcome *o = &outs[w->id];
    for (int i = 0; i < 8; i++) {
        gen_params p = params(OBJECT_GRAMMAR, 200, 1.0f, (uint64_t)(w->id * 100 + i));
        p.logprobs = i % 2;
        p.top_logprobs = 2;
        run(w->f, &p, o);
        if (o->res.finish != GEN_STOP || judge(OBJECT_GRAMMAR, o->text, o->len) != 1)
            w->bad++;
    }
    return NULL;
}

/* The first requests with grammars arrive together; the engine builds one
 * vocabulary and they share it. TSan runs this. */
static void constrained_requests_from_several_threads(void **state)
{
    (void)state;
    fixture *f = open_fixture();
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.f = f, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, constrained_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    close_fixture(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_constrained_request_produces_only_sentences),
        cmocka_unit_test(end_of_generation_only_where_the_grammar_can_end),
        cmocka_unit_test(a_grammar_that_is_done_ends_the_request),
        cmocka_unit_test(bad_grammars_fail_the_submit),
        cmocka_unit_test(a_grammar_the_vocabulary_cannot_spell_fails_the_request),
        cmocka_unit_test(a_lazy_grammar_applies_from_its_trigger),
        cmocka_unit_test(a_nul_is_never_written),
        cmocka_unit_test(a_token_that_completes_a_trigger_into_bad_text_is_redrawn),
        cmocka_unit_test(an_anchored_trigger_counts_only_at_the_start),
        cmocka_unit_test(log_probabilities_are_recorded_per_token),
        cmocka_unit_test(constrained_requests_from_several_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
