/*
 * Specification of tokenizer.h: the outputs of llama.cpp 91f8c9c5f.
 *
 * Vectors (see shared/golden/README-tokenizer-chat.md and README-data.md):
 *   <vocab>.gguf.inp/.out   46 texts each, add_special = parse_special = 0
 *   <vocab>.extra.json      78 cases: tokens, pieces, decode, decode-all,
 *                           plus the vocabulary's special ids and EOG set
 *   model-vocab-tokens/     14 texts per model vocabulary, add_special = 1
 * tests/data/tokenizer holds the small vocabularies (SPM: llama-spm, phi-3;
 * BPE: gpt-2, deepseek-coder; the model vocabularies as vocab-only files),
 * so the default run is self-contained; the full suite (10 vocabularies,
 * every model file) runs when $SEMANTIC_TESTDATA or ../shared/golden exists.
 * The streaming detokenizer is checked against decode on every case.
 */
#include "tokenizer_test_util.h"

#include <jansson.h>
#include <pthread.h>
#include <time.h>

#include "adapters/text/detok_stream.h"

typedef struct tally {
    int cases, failures;
} tally;

#define CHECK(t, cond, ...)                                                                   \
    do {                                                                                      \
        (t)->cases++;                                                                         \
        if (!(cond)) {                                                                        \
            (t)->failures++;                                                                  \
            if ((t)->failures <= 10)                                                          \
                print_message(__VA_ARGS__);                                                   \
        }                                                                                     \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void ids_text(const int32_t *ids, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 16 < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%d", i ? " " : "", ids[i]);
}

/* Stream-decodes ids and checks the concatenation against `want`. */
static int stream_matches(const tokenizer *tk, const int32_t *ids, size_t n, int remove_special,
                          int unparse_special, const char *want, size_t want_len)
{
    sem_err err = {0};
    detok_stream *s = detok_stream_new(tk, remove_special, unparse_special, &err);
    assert_non_null(s);
    char *acc = malloc(want_len * 3 + 64);
    size_t al = 0;
    const char *text;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(detok_stream_feed(s, ids[i], &text, &len, &err), SEM_OK);
        memcpy(acc + al, text, len);
        al += len;
    }
    assert_int_equal(detok_stream_finish(s, &text, &len, &err), SEM_OK);
    memcpy(acc + al, text, len);
    al += len;
    int ok = al == want_len && memcmp(acc, want, al) == 0;
    free(acc);
    detok_stream_free(s);
    return ok;
}

/* ---------------------------------------------------------------- .inp / .out */

static void check_inp_out(const tokenizer *tk, const char *gguf_path, tally *t)
{
    char path[1200];
    size_t ni = 0, no = 0;
    snprintf(path, sizeof path, "%s.inp", gguf_path);
    char *inp = tt_slurp(path, &ni);
    snprintf(path, sizeof path, "%s.out", gguf_path);
    char *out = tt_slurp(path, &no);
    if (!inp || !out)
        fail_msg("missing %s.inp/.out", gguf_path);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *ip = inp, *op = out;
    /* One .out line per case; the last case may run to the end of .inp. */
    while (*op) {
        char *nl = strchr(op, '\n');
        if (!nl)
            break;
        *nl = '\0';
        char *e = strstr(ip, sep);
        size_t len = e ? (size_t)(e - ip) : strlen(ip);
        int32_t *ids = NULL;
        size_t n = 0;
        sem_err err = {0};
        assert_int_equal(tokenizer_encode(tk, ip, len, 0, 0, &ids, &n, &err), SEM_OK);
        char got[16384];
        ids_text(ids, n, got, sizeof got);
        const char *want = op;
        while (*want == ' ')
            want++;
        CHECK(t, strcmp(got, want) == 0, "  %s: text \"%.*s\"\n    want %s\n    got  %s",
              gguf_path, (int)len, ip, want, got);
        free(ids);
        op = nl + 1;
        ip = e ? e + strlen(sep) : ip + len;
    }
    free(inp);
    free(out);
}

/* ---------------------------------------------------------------- .extra.json */

static int json_i(json_t *o, const char *k) { return (int)json_integer_value(json_object_get(o, k)); }

static void check_vocab_info(const tokenizer *tk, json_t *vi, const char *name, tally *t)
{
    CHECK(t, tokenizer_n_vocab(tk) == (size_t)json_i(vi, "n_tokens"), "  %s: n_tokens", name);
    const char *kind = json_string_value(json_object_get(vi, "vocab_type"));
    CHECK(t, strcmp(kind, "SPM") == 0 ? strcmp(tokenizer_kind(tk), "spm") == 0
                                      : strcmp(tokenizer_kind(tk), "bpe") == 0,
          "  %s: vocab_type %s vs %s", name, kind, tokenizer_kind(tk));
    CHECK(t, tokenizer_bos(tk) == json_i(vi, "bos"), "  %s: bos %d", name, tokenizer_bos(tk));
    CHECK(t, tokenizer_eos(tk) == json_i(vi, "eos"), "  %s: eos %d", name, tokenizer_eos(tk));
    CHECK(t, tokenizer_eot(tk) == json_i(vi, "eot"), "  %s: eot %d", name, tokenizer_eot(tk));
    CHECK(t, tokenizer_nl(tk) == json_i(vi, "nl"), "  %s: nl %d", name, tokenizer_nl(tk));
    CHECK(t, tokenizer_pad(tk) == json_i(vi, "pad"), "  %s: pad %d", name, tokenizer_pad(tk));
    CHECK(t, tokenizer_sep(tk) == json_i(vi, "sep"), "  %s: sep %d", name, tokenizer_sep(tk));
    CHECK(t, tokenizer_add_bos(tk) == json_is_true(json_object_get(vi, "add_bos")),
          "  %s: add_bos", name);
    CHECK(t, tokenizer_add_eos(tk) == json_is_true(json_object_get(vi, "add_eos")),
          "  %s: add_eos", name);
    json_t *eog = json_object_get(vi, "eog_ids");
    size_t n_eog = 0;
    for (size_t id = 0; id < tokenizer_n_vocab(tk); id++)
        n_eog += (size_t)tokenizer_is_eog(tk, (int32_t)id);
    CHECK(t, n_eog == json_array_size(eog), "  %s: %zu eog ids, want %zu", name, n_eog,
          json_array_size(eog));
    for (size_t i = 0; i < json_array_size(eog); i++) {
        int id = (int)json_integer_value(json_array_get(eog, i));
        CHECK(t, tokenizer_is_eog(tk, id), "  %s: %d should be eog", name, id);
    }
}

static void check_extra(const tokenizer *tk, const char *json_path, const char *name, tally *t)
{
    json_error_t jerr;
    json_t *root = json_load_file(json_path, JSON_ALLOW_NUL, &jerr);
    if (!root)
        fail_msg("%s: %s (line %d)", json_path, jerr.text, jerr.line);
    check_vocab_info(tk, json_object_get(root, "vocab_info"), name, t);
    json_t *cases = json_object_get(root, "cases");
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        const char *id = json_string_value(json_object_get(cs, "id"));
        json_t *jt = json_object_get(cs, "text");
        const char *text = json_string_value(jt);
        size_t tlen = json_string_length(jt);
        int as = json_is_true(json_object_get(cs, "add_special"));
        int ps = json_is_true(json_object_get(cs, "parse_special"));
        json_t *want = json_object_get(cs, "tokens");
        int32_t *ids = NULL;
        size_t n = 0;
        sem_err err = {0};
        assert_int_equal(tokenizer_encode(tk, text, tlen, as, ps, &ids, &n, &err), SEM_OK);
        int same = n == json_array_size(want);
        for (size_t i = 0; same && i < n; i++)
            same = ids[i] == (int32_t)json_integer_value(json_array_get(want, i));
        char got[16384];
        ids_text(ids, n, got, sizeof got);
        CHECK(t, same, "  %s [%s as=%d ps=%d]: tokens differ: got %s", name, id, as, ps, got);
        /* Everything below runs on the expected tokens. */
        size_t nw = json_array_size(want);
        int32_t *wids = malloc((nw + 1) * sizeof *wids);
        for (size_t i = 0; i < nw; i++)
            wids[i] = (int32_t)json_integer_value(json_array_get(want, i));
        json_t *ph = json_object_get(cs, "pieces_hex");
        for (size_t i = 0; i < nw; i++) {
            size_t pl = 0;
            const char *p = tokenizer_piece(tk, wids[i], &pl);
            char hex[4096];
            tt_hex(p, pl < 2000 ? pl : 2000, hex);
            CHECK(t, strcmp(hex, json_string_value(json_array_get(ph, i))) == 0,
                  "  %s [%s]: piece of %d is %s", name, id, wids[i], hex);
        }
        const char *fields[2] = {"detokenized", "detokenized_all"};
        int rs[2] = {as, 0}, us[2] = {ps, 1};
        for (int k = 0; k < 2; k++) {
            json_t *jd = json_object_get(cs, fields[k]);
            char *dec = NULL;
            size_t dl = 0;
            assert_int_equal(tokenizer_decode(tk, wids, nw, rs[k], us[k], &dec, &dl, &err), SEM_OK);
            CHECK(t, json_is_string(jd) && dl == json_string_length(jd) &&
                         memcmp(dec, json_string_value(jd), dl) == 0,
                  "  %s [%s]: %s is \"%s\"", name, id, fields[k], dec);
            if (json_is_string(jd))
                CHECK(t, stream_matches(tk, wids, nw, rs[k], us[k], json_string_value(jd),
                                        json_string_length(jd)),
                      "  %s [%s]: the stream differs from %s", name, id, fields[k]);
            free(dec);
        }
        free(wids);
        free(ids);
    }
    json_decref(root);
}

/* One vocabulary: dir/name.gguf with its .inp/.out and .extra.json. */
static void run_vocab(const char *dir, const char *name)
{
    char path[1024], json[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    snprintf(json, sizeof json, "%s/%s.extra.json", dir, name);
    double t0 = now_s();
    tokenizer *tk = tt_load(path);
    double t1 = now_s();
    tally io = {0}, ex = {0};
    check_inp_out(tk, path, &io);
    check_extra(tk, json, name, &ex);
    print_message("%-28s load %6.1f ms  inp/out %d/%d  extra checks %d/%d\n", name,
                  (t1 - t0) * 1e3, io.cases - io.failures, io.cases, ex.cases - ex.failures,
                  ex.cases);
    tokenizer_free(tk);
    if (io.failures || ex.failures)
        fail_msg("%s: %d + %d failures", name, io.failures, ex.failures);
}

static void local_vocab_vectors(void **state)
{
    (void)state;
    static const char *const names[] = {"ggml-vocab-llama-spm", "ggml-vocab-phi-3",
                                        "ggml-vocab-gpt-2", "ggml-vocab-deepseek-coder"};
    for (size_t i = 0; i < 4; i++)
        run_vocab(LOCAL_TOKENIZER_DATA, names[i]);
}

static void golden_vocab_vectors(void **state)
{
    (void)state;
    const char *g = tt_golden_dir();
    if (!g) {
        print_message("skipped: no golden data (set SEMANTIC_TESTDATA to shared/golden)\n");
        skip();
    }
    static const char *const names[] = {
        "ggml-vocab-llama-spm",   "ggml-vocab-phi-3",      "ggml-vocab-gpt-2",
        "ggml-vocab-deepseek-coder", "ggml-vocab-deepseek-llm", "ggml-vocab-falcon",
        "ggml-vocab-starcoder",   "vocab-llama3",          "vocab-qwen2",
        "vocab-gemma3"};
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/tokenizer", g);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        run_vocab(dir, names[i]);
}

/* ---------------------------------------------------------------- model vocabularies */

static void check_model_vocab(const char *json_path, const char *gguf_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(json_path, JSON_ALLOW_NUL, &jerr);
    if (!root)
        fail_msg("%s: %s", json_path, jerr.text);
    tokenizer *tk = tt_load(gguf_path);
    assert_int_equal(tokenizer_n_vocab(tk), json_i(root, "n_vocab"));
    assert_int_equal(tokenizer_bos(tk), json_i(root, "bos_token_id"));
    assert_int_equal(tokenizer_eos(tk), json_i(root, "eos_token_id"));
    assert_int_equal(tokenizer_add_bos(tk), json_is_true(json_object_get(root, "add_bos")));
    tally t = {0};
    json_t *cases = json_object_get(root, "cases");
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        json_t *jt = json_object_get(cs, "text");
        json_t *want = json_object_get(cs, "tokens");
        json_t *ph = json_object_get(cs, "pieces_hex");
        int32_t *ids = NULL;
        size_t n = 0;
        sem_err err = {0};
        assert_int_equal(tokenizer_encode(tk, json_string_value(jt), json_string_length(jt), 1, 0,
                                          &ids, &n, &err),
                         SEM_OK);
        int same = n == json_array_size(want);
        for (size_t i = 0; same && i < n; i++) {
            same = ids[i] == (int32_t)json_integer_value(json_array_get(want, i));
            size_t pl = 0;
            const char *p = tokenizer_piece(tk, ids[i], &pl);
            char hex[4096];
            tt_hex(p, pl < 2000 ? pl : 2000, hex);
            same = same && strcmp(hex, json_string_value(json_array_get(ph, i))) == 0;
        }
        char got[16384];
        ids_text(ids, n, got, sizeof got);
        CHECK(&t, same, "  %s: \"%s\": got %s", gguf_path, json_string_value(jt), got);
        free(ids);
    }
    print_message("%-40s %d/%d\n", strrchr(gguf_path, '/') + 1, t.cases - t.failures, t.cases);
    tokenizer_free(tk);
    json_decref(root);
    if (t.failures)
        fail_msg("%s: %d failures", gguf_path, t.failures);
}

static void local_model_vocabs(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"tiny-llama", LOCAL_TOKENIZER_DATA "/tiny-llama.vocab.gguf"},
        {"tiny-gemma3", LOCAL_TOKENIZER_DATA "/tiny-gemma3.vocab.gguf"},
        {"tiny-qwen2", LOCAL_TOKENIZER_DATA "/tiny-qwen2.vocab.gguf"},
        {"stories260K", SEM_TEST_DATA "/models/stories260K.gguf"},
    };
    for (size_t i = 0; i < 4; i++) {
        char json[1024];
        snprintf(json, sizeof json, LOCAL_TOKENIZER_DATA "/model-vocab-tokens/%s.json", pairs[i][0]);
        check_model_vocab(json, pairs[i][1]);
    }
}

/* Every model file in shared/models against its vocabulary's vectors. */
static void golden_model_vocabs(void **state)
{
    (void)state;
    const char *g = tt_golden_dir();
    if (!g) {
        print_message("skipped: no golden data (set SEMANTIC_TESTDATA to shared/golden)\n");
        skip();
    }
    static const char *const pairs[][2] = {
        {"tiny-llama", "tiny-llama.gguf"},         {"tiny-llama", "tiny-llama-bf16.gguf"},
        {"tiny-llama", "tiny-llama-q8_0.gguf"},    {"tiny-llama", "tiny-llama-q6_k.gguf"},
        {"tiny-llama", "tiny-llama-q5_k_m.gguf"},  {"tiny-llama", "tiny-llama-q4_k_m.gguf"},
        {"tiny-llama", "tiny-llama-q4_0.gguf"},    {"tiny-llama", "tiny-llama31.gguf"},
        {"tiny-qwen2", "tiny-qwen2.gguf"},         {"tiny-qwen2", "tiny-qwen2-q8_0.gguf"},
        {"tiny-qwen2", "tiny-qwen2moe.gguf"},      {"tiny-gemma3", "tiny-gemma3.gguf"},
        {"stories260K", "stories260K.gguf"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char json[1200], model[1200];
        snprintf(json, sizeof json, "%s/model-vocab-tokens/%s.json", g, pairs[i][0]);
        snprintf(model, sizeof model, "%s/../models/%s", g, pairs[i][1]);
        if (!tt_is_file(model)) {
            print_message("  %s: not present, skipped\n", model);
            continue;
        }
        check_model_vocab(json, model);
    }
}

/* ---------------------------------------------------------------- behaviour */

static tokenizer *local(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, LOCAL_TOKENIZER_DATA "/%s.gguf", name);
    return tt_load(path);
}

static void empty_text(void **state)
{
    (void)state;
    tokenizer *spm = local("ggml-vocab-llama-spm"), *bpe = local("ggml-vocab-gpt-2");
    int32_t *ids = NULL;
    size_t n = 99;
    sem_err err = {0};
    assert_int_equal(tokenizer_encode(spm, "", 0, 0, 0, &ids, &n, &err), SEM_OK);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(tokenizer_encode(spm, "", 0, 1, 0, &ids, &n, &err), SEM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], tokenizer_bos(spm));
    free(ids);
    assert_int_equal(tokenizer_encode(bpe, NULL, 0, 1, 1, &ids, &n, &err), SEM_OK);
    assert_int_equal(n, 0); /* gpt-2 adds no BOS */
    free(ids);
    char *s = NULL;
    size_t sl = 9;
    assert_int_equal(tokenizer_decode(bpe, NULL, 0, 0, 0, &s, &sl, &err), SEM_OK);
    assert_string_equal(s, "");
    assert_int_equal(sl, 0);
    free(s);
    tokenizer_free(spm);
    tokenizer_free(bpe);
}

static void invalid_ids_are_refused(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-gpt-2");
    sem_err err = {0};
    int32_t bad[] = {15496, 50257, 11};
    char *s = NULL;
    assert_int_equal(tokenizer_decode(tk, bad, 3, 0, 0, &s, NULL, &err), SEM_EINVAL);
    assert_null(s);
    assert_contains(err.detail, "50257");
    assert_contains(err.detail, "index 1");
    int32_t neg = -1;
    assert_int_equal(tokenizer_decode(tk, &neg, 1, 0, 0, &s, NULL, &err), SEM_EINVAL);
    assert_contains(err.detail, "-1");
    size_t len = 7;
    assert_null(tokenizer_piece(tk, 50257, &len));
    assert_int_equal(len, 0);
    assert_null(tokenizer_piece(tk, -5, &len));
    assert_null(tokenizer_token_text(tk, 1 << 30, &len));
    assert_false(tokenizer_is_eog(tk, -1));
    assert_false(tokenizer_is_control(tk, 99999999));
    assert_non_null(tokenizer_piece(tk, 0, &len));
    tokenizer_free(tk);
}

/* Invalid UTF-8 is tokenized as llama.cpp does it: BPE reads each bad byte as
 * U+FFFD, SPM falls back to byte tokens. */
static void invalid_utf8(void **state)
{
    (void)state;
    static const char text[] = "\xff\xfe abc \xc3( \xe2\x82 \xf0\x9f\x98 end \xed\xa0\x80\xf7\xbf\xbf\xbf";
    size_t tl = sizeof text - 1;
    tokenizer *bpe = local("ggml-vocab-gpt-2"), *spm = local("ggml-vocab-llama-spm");
    sem_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    char *s = NULL;
    size_t sl = 0;
    assert_int_equal(tokenizer_encode(spm, text, tl, 0, 0, &ids, &n, &err), SEM_OK);
    assert_int_equal(tokenizer_decode(spm, ids, n, 0, 0, &s, &sl, &err), SEM_OK);
    /* SPM splits the space-escaped text by lead byte, so a bad lead byte
     * (\xff, or \xe2 / \xf0 missing continuation bytes) swallows the bytes
     * of the U+2581 after it, which then come back as bytes, not a space. */
    static const char want_spm[] =
        "\xff\xfe\xe2\x96\x81" "abc \xc3( \xe2\x82\xe2\x96\x81\xf0\x9f\x98\xe2\x96\x81" "end "
        "\xed\xa0\x80\xf7\xbf\xbf\xbf";
    assert_int_equal(sl, sizeof want_spm - 1);
    assert_memory_equal(s, want_spm, sl);
    free(ids);
    free(s);
    assert_int_equal(tokenizer_encode(bpe, text, tl, 0, 0, &ids, &n, &err), SEM_OK);
    assert_int_equal(tokenizer_decode(bpe, ids, n, 0, 0, &s, &sl, &err), SEM_OK);
    /* lenient decoding: \xc3( and \xe2\x82 and \xf0\x9f\x98 are invalid byte
     * by byte; \xed\xa0\x80 is a (surrogate) code point llama.cpp accepts;
     * \xf7\xbf\xbf\xbf decodes above U+10FFFF, which we read as U+FFFD. */
    static const char want[] =
        "\xef\xbf\xbd\xef\xbf\xbd abc \xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd "
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end \xed\xa0\x80\xef\xbf\xbd";
    assert_int_equal(sl, sizeof want - 1);
    assert_memory_equal(s, want, sl);
    free(ids);
    free(s);
    /* Many bad lead bytes before spaces: more SPM symbols than characters. */
    size_t rl = 30000;
    char *rep = malloc(rl);
    for (size_t i = 0; i < rl; i += 3)
        memcpy(rep + i, "\xc3 \xe2", 3);
    assert_int_equal(tokenizer_encode(spm, rep, rl, 1, 1, &ids, &n, &err), SEM_OK);
    assert_true(n >= rl);
    free(ids);
    assert_int_equal(tokenizer_encode(bpe, rep, rl, 1, 1, &ids, &n, &err), SEM_OK);
    free(ids);
    free(rep);
    tokenizer_free(bpe);
    tokenizer_free(spm);
}

/* Long inputs: the cost is near-linear (timings are printed, not asserted). */
static void long_inputs(void **state)
{
    (void)state;
    static const char *const vocabs[] = {"ggml-vocab-llama-spm", "ggml-vocab-phi-3",
                                         "ggml-vocab-gpt-2", "ggml-vocab-deepseek-coder",
                                         "tiny-qwen2.vocab"};
    static const char *const units[] = {"a", " ", "1", "\n", "\xc3\xa9", "\xf0\x9f\x98\x80",
                                        "ab ", "<s>", "<|user|>", "\t ", "!", "\xe6\x97\xa5"};
    size_t total = 100000;
    char *text = malloc(total * 4 + 8);
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        tokenizer *tk = local(vocabs[v]);
        double worst = 0;
        const char *worst_unit = "";
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t ul = strlen(units[u]), len = 0;
            while (len + ul <= total) {
                memcpy(text + len, units[u], ul);
                len += ul;
            }
            int32_t *ids = NULL;
            size_t n = 0;
            sem_err err = {0};
            double t0 = now_s();
            assert_int_equal(tokenizer_encode(tk, text, len, 1, 1, &ids, &n, &err), SEM_OK);
            double dt = now_s() - t0;
            assert_true(n > 0);
            char *back = NULL;
            size_t bl = 0;
            assert_int_equal(tokenizer_decode(tk, ids, n, 1, 1, &back, &bl, &err), SEM_OK);
            free(back);
            free(ids);
            if (dt > worst) {
                worst = dt;
                worst_unit = units[u];
            }
        }
        print_message("%-28s 100 kB inputs: slowest %.1f ms (unit \"%s\")\n", vocabs[v],
                      worst * 1e3, worst_unit);
        tokenizer_free(tk);
    }
    free(text);
}

/* Random bytes mixed with special-token text: every call succeeds, decode
 * and the stream agree (a small fuzz run; ASan checks the memory). */
static void random_bytes(void **state)
{
    (void)state;
    static const char *const vocabs[] = {"ggml-vocab-llama-spm", "ggml-vocab-phi-3",
                                         "ggml-vocab-gpt-2", "ggml-vocab-deepseek-coder"};
    static const char *const bits[] = {"<s>", "</s>", "<|user|>", "<|end|>", " ", "  ", "\n",
                                       "'s", "\xe2\x96\x81", "\xf0\x9f", "\xc3", "<|endoftext|>",
                                       "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"};
    uint64_t rng = 7;
    char text[512];
    for (size_t v = 0; v < 4; v++) {
        tokenizer *tk = local(vocabs[v]);
        for (int round = 0; round < 300; round++) {
            size_t len = 0, parts = test_rand(&rng) % 12;
            for (size_t p = 0; p < parts; p++) {
                if (test_rand(&rng) % 2) {
                    const char *b = bits[test_rand(&rng) % (sizeof bits / sizeof bits[0])];
                    memcpy(text + len, b, strlen(b));
                    len += strlen(b);
                } else {
                    size_t k = test_rand(&rng) % 8;
                    for (size_t i = 0; i < k; i++)
                        text[len++] = (char)(test_rand(&rng) & 0xFF);
                }
            }
            for (int flags = 0; flags < 4; flags++) {
                int32_t *ids = NULL;
                size_t n = 0;
                sem_err err = {0};
                assert_int_equal(tokenizer_encode(tk, text, len, flags & 1, flags >> 1, &ids, &n, &err),
                                 SEM_OK);
                char *dec = NULL;
                size_t dl = 0;
                assert_int_equal(tokenizer_decode(tk, ids, n, flags & 1, flags >> 1, &dec, &dl, &err),
                                 SEM_OK);
                /* the stream equals decode up to U+FFFD for ill-formed bytes */
                detok_stream *s = detok_stream_new(tk, flags & 1, flags >> 1, &err);
                const char *t;
                size_t tl2;
                for (size_t i = 0; i < n; i++)
                    assert_int_equal(detok_stream_feed(s, ids[i], &t, &tl2, &err), SEM_OK);
                assert_int_equal(detok_stream_finish(s, &t, &tl2, &err), SEM_OK);
                detok_stream_free(s);
                free(dec);
                free(ids);
            }
        }
        tokenizer_free(tk);
    }
}

/* Special-token text: control tokens only with parse_special, user-defined
 * always; phi-3's rstrip; the tokens decode back with unparse_special. */
static void special_tokens(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-phi-3");
    static const char text[] = "<|user|>\n  Hi<|end|>\n<|assistant|>";
    sem_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(tokenizer_encode(tk, text, sizeof text - 1, 0, 1, &ids, &n, &err), SEM_OK);
    /* rstrip: the white space after <|user|> and <|end|> is dropped */
    size_t tl = 0;
    assert_true(n >= 4);
    const char *t0 = tokenizer_token_text(tk, ids[0], &tl);
    assert_int_equal(tl, 8);
    assert_memory_equal(t0, "<|user|>", 8);
    assert_true(tokenizer_is_control(tk, ids[0]));
    assert_true(tokenizer_token_attr(tk, ids[0]) & TOKEN_ATTR_RSTRIP);
    char *s = NULL;
    assert_int_equal(tokenizer_decode(tk, ids, n, 0, 1, &s, NULL, &err), SEM_OK);
    assert_string_equal(s, "<|user|> Hi<|end|><|assistant|>");
    free(s);
    assert_int_equal(tokenizer_decode(tk, ids, n, 0, 0, &s, NULL, &err), SEM_OK);
    assert_string_equal(s, " Hi"); /* control tokens are not rendered */
    free(s);
    free(ids);
    /* without parse_special the text is ordinary text */
    assert_int_equal(tokenizer_encode(tk, text, sizeof text - 1, 0, 0, &ids, &n, &err), SEM_OK);
    for (size_t i = 0; i < n; i++)
        assert_false(tokenizer_is_control(tk, ids[i]));
    free(ids);
    assert_true(tokenizer_is_eog(tk, 32007)); /* <|end|> */
    assert_int_equal(tokenizer_eot(tk), 32007);
    tokenizer_free(tk);
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
    const tokenizer *tk;
    const char *text;
    const int32_t *want;
    size_t n_want;
    int ok;
} worker;

static void *encode_many(void *arg)
{
    worker *w = arg;
    w->ok = 1;
    for (int r = 0; r < 50 && w->ok; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        sem_err err = {0};
        if (tokenizer_encode(w->tk, w->text, strlen(w->text), 1, 1, &ids, &n, &err) != SEM_OK ||
            n != w->n_want || memcmp(ids, w->want, n * sizeof *ids) != 0)
            w->ok = 0;
        char *s = NULL;
        if (tokenizer_decode(w->tk, ids, n, 0, 1, &s, NULL, &err) != SEM_OK)
            w->ok = 0;
        free(s);
        free(ids);
    }
    return NULL;
}

static void shared_between_threads(void **state)
{
    (void)state;
    tokenizer *tk = local("ggml-vocab-deepseek-coder");
    static const char text[] = "def f(x):\n    return x ** 2  # \xe6\x97\xa5\xe6\x9c\xac 12345 "
                               "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
    int32_t *want = NULL;
    size_t n = 0;
    sem_err err = {0};
    assert_int_equal(tokenizer_encode(tk, text, strlen(text), 1, 1, &want, &n, &err), SEM_OK);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){tk, text, want, n, 0};
        assert_int_equal(pthread_create(&th[i], NULL, encode_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(w[i].ok);
    }
    free(want);
    tokenizer_free(tk);
}

/* ---------------------------------------------------------------- bad vocabularies */

#define K "tokenizer.ggml."

/* A valid SPM vocabulary: <unk> <s> </s>, 256 byte tokens, a few pieces. */
static void spm_base(gguf_builder *b, int with_scores, int with_types)
{
    static const char *toks[262];
    static char bytes[256][8];
    float scores[262];
    int32_t types[262];
    toks[0] = "<unk>";
    toks[1] = "<s>";
    toks[2] = "</s>";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        toks[3 + i] = bytes[i];
    }
    toks[259] = "\xe2\x96\x81h";
    toks[260] = "i";
    toks[261] = "\xe2\x96\x81hi";
    for (int i = 0; i < 262; i++) {
        scores[i] = i < 259 ? 0.0f : -(float)(i - 258);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    kv_str(b, "general.architecture", "llama");
    kv_str(b, K "model", "llama");
    kv_strs(b, K "tokens", toks, 262);
    if (with_scores)
        kv_f32s(b, K "scores", scores, 262);
    if (with_types)
        kv_i32s(b, K "token_type", types, 262);
}

static void tiny_spm_vocab_works(void **state)
{
    (void)state;
    gguf_builder b = {0};
    spm_base(&b, 1, 1);
    sem_err err = {0};
    tokenizer *tk = gb_load(&b, &err);
    if (!tk)
        fail_msg("%s", err.detail);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(tokenizer_encode(tk, "hi!", 3, 1, 0, &ids, &n, &err), SEM_OK);
    /* <s> "\u2581hi" then '!' as byte token 0x21 */
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 261);
    assert_int_equal(ids[2], 3 + '!');
    char *s = NULL;
    assert_int_equal(tokenizer_decode(tk, ids, n, 1, 0, &s, NULL, &err), SEM_OK);
    assert_string_equal(s, " hi!"); /* a removed BOS keeps the prefix space */
    free(s);
    assert_int_equal(tokenizer_decode(tk, ids + 1, n - 1, 1, 0, &s, NULL, &err), SEM_OK);
    assert_string_equal(s, "hi!");
    free(s);
    free(ids);
    assert_string_equal(tokenizer_kind(tk), "spm");
    tokenizer_free(tk);
}

static void expect_load_error(gguf_builder *b, sem_status want, const char *needle1,
                              const char *needle2)
{
    sem_err err = {0};
    tokenizer *tk = gb_load(b, &err);
    if (tk) {
        tokenizer_free(tk);
        fail_msg("loaded, but expected %s", sem_status_name(want));
    }
    if (err.status != want)
        fail_msg("status %s (%s), expected %s", sem_status_name(err.status), err.detail,
                 sem_status_name(want));
    assert_contains(err.detail, needle1);
    if (needle2)
        assert_contains(err.detail, needle2);
}

static void unsupported_model_and_pre(void **state)
{
    (void)state;
    gguf_builder b = {0};
    static const char *toks[] = {"a", "b"};
    kv_str(&b, K "model", "bert");
    kv_strs(&b, K "tokens", toks, 2);
    expect_load_error(&b, SEM_EUNSUPPORTED, "'bert'", "gpt2");

    static const char *bt[] = {"a", "b", "ab"};
    static const char *merges[] = {"a b"};
    kv_str(&b, K "model", "gpt2");
    kv_str(&b, K "pre", "nonsense-pre");
    kv_strs(&b, K "tokens", bt, 3);
    kv_strs(&b, K "merges", merges, 1);
    expect_load_error(&b, SEM_EUNSUPPORTED, "'nonsense-pre'", "qwen2");
}

static void malformed_metadata(void **state)
{
    (void)state;
    gguf_builder b = {0};
    /* no tokenizer at all */
    kv_str(&b, "general.architecture", "llama");
    expect_load_error(&b, SEM_ECORRUPT, K "model", NULL);
    /* no tokens */
    kv_str(&b, K "model", "llama");
    expect_load_error(&b, SEM_ECORRUPT, K "tokens", "missing");
    /* tokens of the wrong type */
    int32_t nums[3] = {1, 2, 3};
    kv_str(&b, K "model", "llama");
    kv_i32s(&b, K "tokens", nums, 3);
    expect_load_error(&b, SEM_ECORRUPT, K "tokens", NULL);
    /* scores / types of the wrong length */
    spm_base(&b, 0, 1);
    float few[3] = {0, 0, 0};
    kv_f32s(&b, K "scores", few, 3);
    expect_load_error(&b, SEM_ECORRUPT, K "scores", "262");
    spm_base(&b, 1, 0);
    kv_i32s(&b, K "token_type", nums, 3);
    expect_load_error(&b, SEM_ECORRUPT, K "token_type", "262");
    /* an unknown token type */
    int32_t types[262];
    for (int i = 0; i < 262; i++)
        types[i] = i == 100 ? 9 : 1;
    spm_base(&b, 1, 0);
    kv_i32s(&b, K "token_type", types, 262);
    expect_load_error(&b, SEM_ECORRUPT, K "token_type", "type 9");
    /* special ids out of range */
    spm_base(&b, 1, 1);
    kv_u32(&b, K "bos_token_id", 262);
    expect_load_error(&b, SEM_ECORRUPT, K "bos_token_id", "262");
    spm_base(&b, 1, 1);
    kv_u32(&b, K "eos_token_id", 5000);
    expect_load_error(&b, SEM_ECORRUPT, K "eos_token_id", "5000");
    /* ... but 0xFFFFFFFF means "none", as converters write it */
    spm_base(&b, 1, 1);
    kv_u32(&b, K "padding_token_id", 0xFFFFFFFFu);
    sem_err err = {0};
    tokenizer *tk = gb_load(&b, &err);
    assert_non_null(tk);
    assert_int_equal(tokenizer_pad(tk), -1);
    tokenizer_free(tk);
    /* a bool of the wrong type */
    spm_base(&b, 1, 1);
    kv_u32(&b, K "add_bos_token", 1);
    expect_load_error(&b, SEM_ECORRUPT, K "add_bos_token", NULL);
    /* duplicate token texts */
    static const char *dup[] = {"<unk>", "x", "y", "x"};
    kv_str(&b, K "model", "llama");
    kv_strs(&b, K "tokens", dup, 4);
    expect_load_error(&b, SEM_ECORRUPT, "'x' twice", "ids 1 and 3");
    /* BPE: merges missing, malformed, or naming unknown tokens */
    static const char *bt[] = {"a", "b", "ab"};
    kv_str(&b, K "model", "gpt2");
    kv_str(&b, K "pre", "gpt-2");
    kv_strs(&b, K "tokens", bt, 3);
    expect_load_error(&b, SEM_ECORRUPT, K "merges", "missing");
    static const char *m1[] = {"a b", "a c"};
    kv_str(&b, K "model", "gpt2");
    kv_strs(&b, K "tokens", bt, 3);
    kv_strs(&b, K "merges", m1, 2);
    expect_load_error(&b, SEM_ECORRUPT, "entry 1 ('a c') names 'c'", K "merges");
    static const char *m2[] = {"b a"};
    kv_str(&b, K "model", "gpt2");
    kv_strs(&b, K "tokens", bt, 3);
    kv_strs(&b, K "merges", m2, 1);
    expect_load_error(&b, SEM_ECORRUPT, K "merges", "'ba'");
    static const char *m3[] = {"ab"};
    kv_str(&b, K "model", "gpt2");
    kv_strs(&b, K "tokens", bt, 3);
    kv_strs(&b, K "merges", m3, 1);
    expect_load_error(&b, SEM_ECORRUPT, K "merges", "separated by a space");
    /* add_bos without a BOS: the BPE default (11) is outside 3 tokens */
    static const char *m4[] = {"a b"};
    kv_str(&b, K "model", "gpt2");
    kv_strs(&b, K "tokens", bt, 3);
    kv_strs(&b, K "merges", m4, 1);
    kv_bool(&b, K "add_bos_token", 1);
    expect_load_error(&b, SEM_ECORRUPT, "add_bos_token", "bos_token_id");
}

/* A truncated file is refused by the GGUF reader, not read past its end. */
static void truncated_file(void **state)
{
    (void)state;
    gguf_builder b = {0};
    spm_base(&b, 1, 1);
    size_t size = 0;
    uint8_t *bytes = gb_finish(&b, &size);
    for (size_t cut = 0; cut < size; cut += size / 37 + 1) {
        sem_err err = {0};
        gguf_file *f = gguf_open_memory(bytes, cut, "cut.gguf", &err);
        if (f) { /* a prefix that happens to parse must still load or fail cleanly */
            tokenizer *tk = tokenizer_load(f, &err);
            tokenizer_free(tk);
            gguf_close(f);
        } else {
            assert_int_equal(err.status, SEM_ECORRUPT);
        }
    }
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_vocab_vectors),
        cmocka_unit_test(local_model_vocabs),
        cmocka_unit_test(golden_vocab_vectors),
        cmocka_unit_test(golden_model_vocabs),
        cmocka_unit_test(empty_text),
        cmocka_unit_test(invalid_ids_are_refused),
        cmocka_unit_test(invalid_utf8),
        cmocka_unit_test(special_tokens),
        cmocka_unit_test(random_bytes),
        cmocka_unit_test(long_inputs),
        cmocka_unit_test(shared_between_threads),
        cmocka_unit_test(tiny_spm_vocab_works),
        cmocka_unit_test(unsupported_model_and_pre),
        cmocka_unit_test(malformed_metadata),
        cmocka_unit_test(truncated_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
