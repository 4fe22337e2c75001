/*
 * The semantic command line, run as a user runs it: each test executes the
 * real binary and checks its output, its JSON and its exit code, for the
 * happy paths and for every kind of bad input the commands promise to
 * reject with a clear message.
 */
#include "../test_util.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../golden.h"
#include "adapters/gguf/gguf.h"
#include "adapters/gguf/gguf_writer.h"
#include "adapters/kernels/tensor_type.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"
#define LLAMA_VOCAB SEM_TEST_DATA "/tokenizer/tiny-llama.vocab.gguf"

typedef struct cli_result {
    int code;
    char *out; /* stdout, NUL-terminated */
    char *err; /* stderr */
} cli_result;

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    ssize_t got;
    while ((got = read(fd, b + n, cap - n - 1)) > 0) {
        n += (size_t)got;
        if (cap - n - 1 == 0)
            b = realloc(b, cap *= 2);
    }
    b[n] = '\0';
    return b;
}

/* Runs the binary with argv (NULL-terminated, without argv[0]). The
 * command dies with this test if the test dies first (serve included). */
static cli_result run(const char *const *args)
{
    char out_path[] = "/tmp/sem-cli-out-XXXXXX", err_path[] = "/tmp/sem-cli-err-XXXXXX";
    int out = mkstemp(out_path), err = mkstemp(err_path);
    assert_true(out >= 0 && err >= 0);
    const char *argv[64] = {SEMANTIC_BIN};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        execv(SEMANTIC_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    lseek(out, 0, SEEK_SET);
    lseek(err, 0, SEEK_SET);
    cli_result r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                    .out = slurp_fd(out),
                    .err = slurp_fd(err)};
    close(out);
    close(err);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void done(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* The JSON object on the last line of stdout. */
static json_t *last_json(const cli_result *r)
{
    const char *s = r->out + strlen(r->out);
    while (s > r->out && s[-1] == '\n')
        s--;
    while (s > r->out && s[-1] != '\n')
        s--;
    json_t *j = json_loads(s, 0, NULL);
    if (!j)
        fail_msg("no JSON on the last line of: %s", r->out);
    return j;
}

static void expect_failure(const char *const *args, int code, const char *needle)
{
    cli_result r = run(args);
    if (r.code != code || !strstr(r.err, needle))
        fail_msg("expected exit %d and '%s', got %d: %s", code, needle, r.code, r.err);
    done(&r);
}

/* ---------------------------------------------------------------- run */

static void stories_greedy_matches_the_reference_story(void **state)
{
    (void)state;
    char gpath[4096];
    assert_true(golden_find(gpath, sizeof gpath, "logits/stories260K/story200.json",
                            "golden/logits/stories260K/story200.json"));
    json_t *g = golden_load_json(gpath);
    const char *args[] = {"run", "-m", STORIES, "-p", "Once upon a time", "-n", "200",
                          "--temp", "0", "--json", NULL};
    cli_result r = run(args);
    assert_int_equal(r.code, 0);
    json_t *j = last_json(&r);
    assert_true(json_equal(json_object_get(j, "tokens"), json_object_get(g, "greedy_tokens")));
    assert_string_equal(json_string_value(json_object_get(j, "text")),
                        json_string_value(json_object_get(g, "greedy_text")));
    assert_true(json_equal(json_object_get(j, "prompt_tokens"), json_object_get(g, "tokens")));
    assert_string_equal(json_string_value(json_object_get(j, "finish_reason")), "length");
    /* The streamed text precedes the JSON line, identical. */
    assert_true(strncmp(r.out, json_string_value(json_object_get(g, "greedy_text")), 100) == 0);
    json_decref(j);
    json_decref(g);
    done(&r);
}

static void echo_logprobs_follow_the_reference_logits(void **state)
{
    (void)state;
    char jpath[4096], fpath[4096];
    assert_true(golden_find(jpath, sizeof jpath, "logits/stories260K/short.json",
                            "golden/logits/stories260K/short.json"));
    assert_true(golden_find(fpath, sizeof fpath, "logits/stories260K/short.f32",
                            "golden/logits/stories260K/short.f32"));
    json_t *g = golden_load_json(jpath);
    json_t *toks = json_object_get(g, "tokens");
    size_t n = json_array_size(toks), V = 512;
    float *gl = golden_load_f32(fpath, n * V);
    assert_non_null(gl);
    const char *args[] = {"run", "-m", STORIES, "-p", "Once upon a time", "-n", "1",
                          "--temp", "0", "--json", "--echo-logprobs", NULL};
    cli_result r = run(args);
    assert_int_equal(r.code, 0);
    json_t *j = last_json(&r);
    json_t *lp = json_object_get(j, "prompt_logprobs");
    assert_int_equal(json_array_size(lp), n);
    assert_true(json_is_null(json_array_get(lp, 0)));
    for (size_t i = 1; i < n; i++) {
        const float *row = gl + (i - 1) * V;
        double max = row[0], sum = 0;
        for (size_t v = 1; v < V; v++)
            max = row[v] > max ? row[v] : max;
        for (size_t v = 0; v < V; v++)
            sum += exp(row[v] - max);
        double want = row[json_integer_value(json_array_get(toks, i))] - max - log(sum);
        double got = json_real_value(json_array_get(lp, i));
        if (fabs(got - want) > 0.02)
            fail_msg("prompt logprob %zu: %f, reference %f", i, got, want);
    }
    free(gl);
    json_decref(j);
    json_decref(g);
    done(&r);
}

/* The prompt's scores do not depend on how much is generated after it. */
static void echo_logprobs_do_not_depend_on_n(void **state)
{
    (void)state;
    json_t *lp[2];
    const char *n[2] = {"1", "24"};
    for (int k = 0; k < 2; k++) {
        const char *args[] = {"run", "-m", STORIES, "-p", "Q: What is 17 * 23? A:", "-n", n[k],
                              "--temp", "0", "--json", "--echo-logprobs", NULL};
        cli_result r = run(args);
        assert_int_equal(r.code, 0);
        json_t *j = last_json(&r);
        lp[k] = json_incref(json_object_get(j, "prompt_logprobs"));
        json_decref(j);
        done(&r);
    }
    assert_true(json_array_size(lp[0]) > 5);
    assert_int_equal(json_array_size(lp[0]), json_array_size(lp[1]));
    for (size_t i = 1; i < json_array_size(lp[0]); i++) {
        double a = json_real_value(json_array_get(lp[0], i));
        double b = json_real_value(json_array_get(lp[1], i));
        if (fabs(a - b) > 1e-9)
            fail_msg("prompt logprob %zu: %f with -n 1, %f with -n 24", i, a, b);
    }
    json_decref(lp[0]);
    json_decref(lp[1]);
}

static void stop_strings_end_the_text_before_them(void **state)
{
    (void)state;
    const char *args[] = {"run", "-m", STORIES, "-p", "Once upon a time", "-n", "50", "--temp",
                          "0", "--stop", "girl", "--json", NULL};
    cli_result r = run(args);
    assert_int_equal(r.code, 0);
    json_t *j = last_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "text")),
                        ", there was a little ");
    assert_string_equal(json_string_value(json_object_get(j, "finish_reason")), "stop");
    assert_null(strstr(r.out, "girl")); /* not even streamed */
    json_decref(j);
    done(&r);
}

static void seeded_sampling_is_reproducible(void **state)
{
    (void)state;
    const char *args[] = {"run", "-m", STORIES, "-p", "Once upon a time", "-n", "30",
                          "--temp", "1.0", "--seed", "42", "--json", NULL};
    cli_result a = run(args), b = run(args);
    assert_int_equal(a.code, 0);
    json_t *ja = last_json(&a), *jb = last_json(&b);
    assert_true(json_equal(json_object_get(ja, "tokens"), json_object_get(jb, "tokens")));
    json_decref(ja);
    json_decref(jb);
    done(&a);
    done(&b);
}

static void run_rejects_bad_input(void **state)
{
    (void)state;
    const char *no_model[] = {"run", "-m", "/nonexistent.gguf", "-p", "x", NULL};
    expect_failure(no_model, 3, "cannot open /nonexistent.gguf");
    const char *no_prompt[] = {"run", "-m", STORIES, NULL};
    expect_failure(no_prompt, 2, "-p PROMPT are required");
    const char *bad_temp[] = {"run", "-m", STORIES, "-p", "x", "--temp", "hot", NULL};
    expect_failure(bad_temp, 2, "--temp: 'hot' is not a number");
    const char *bad_n[] = {"run", "-m", STORIES, "-p", "x", "-n", "-5", NULL};
    expect_failure(bad_n, 2, "-n: '-5' is not a non-negative integer");
    const char *bad_kv[] = {"run", "-m", STORIES, "-p", "x", "--kv-type", "q4", NULL};
    expect_failure(bad_kv, 2, "KV type 'q4' is not one of");
    const char *bad_isa[] = {"run", "-m", STORIES, "-p", "x", "--isa", "neon", NULL};
    expect_failure(bad_isa, 2, "neon");
    const char *long_prompt[] = {"run", "-m", STORIES, "-p",
                                 "Once upon a time there was a very long prompt", "-c", "8",
                                 NULL};
    expect_failure(long_prompt, 6, "the context holds 8");
    const char *vocab_only[] = {"run", "-m", LLAMA_VOCAB, "-p", "x", NULL};
    expect_failure(vocab_only, 2, "no tensors");
    const char *echo_alone[] = {"run", "-m", STORIES, "-p", "x", "--echo-logprobs", NULL};
    expect_failure(echo_alone, 2, "--echo-logprobs needs --json");
}

/* ---------------------------------------------------------------- bad files */

/* Writes a copy of the stories model with one change, for error paths. */
typedef enum mutation { MUT_TRUNCATE, MUT_MAGIC, MUT_COUNT, MUT_ARCH, MUT_TYPE } mutation;

static void write_mutant(const char *path, mutation m)
{
    sem_err err = {0};
    gguf_file *src = gguf_open(STORIES, &err);
    assert_non_null(src);
    gguf_writer *w = gguf_writer_create(&err);
    for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        if (m == MUT_ARCH && gguf_str_eq(kv->key, "general.architecture"))
            gguf_writer_str(w, "general.architecture", "mamba");
        else
            gguf_writer_copy_kv(w, kv);
    }
    static uint8_t junk[1 << 16];
    for (uint64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (m == MUT_TYPE && strcmp(name, "blk.0.attn_q.weight") == 0) {
            uint64_t rows = t->ne[1];
            size_t size = tensor_type_row_bytes(TENSOR_Q4_1, t->ne[0]) * rows;
            gguf_writer_tensor(w, name, TENSOR_Q4_1, t->n_dims, t->ne, junk, size);
        } else {
            gguf_writer_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->size);
        }
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(gguf_writer_to_memory(w, &buf, &len, &err), SEM_OK);
    gguf_writer_free(w);
    gguf_close(src);
    if (m == MUT_TRUNCATE)
        len = len * 2 / 3;
    if (m == MUT_MAGIC)
        memcpy(buf, "GGML", 4);
    if (m == MUT_COUNT) {
        uint64_t absurd = 1ull << 50;
        memcpy(buf + 8, &absurd, 8);
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

static void malformed_models_give_clear_errors(void **state)
{
    (void)state;
    static const struct {
        mutation m;
        int code;
        const char *needle;
    } cases[] = {
        {MUT_TRUNCATE, 4, "runs past the end of the file"},
        {MUT_MAGIC, 4, "not a GGUF file (bad magic at offset 0)"},
        {MUT_COUNT, 4, "absurd counts"},
        {MUT_ARCH, 5, "architecture 'mamba' is not supported (supported: llama, qwen2, gemma3, "
                      "qwen2moe)"},
        {MUT_TYPE, 5, "tensor 'blk.0.attn_q.weight' has type Q4_1, which is not supported"},
    };
    char path[] = "/tmp/sem-bad-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_mutant(path, cases[i].m);
        const char *runa[] = {"run", "-m", path, "-p", "x", NULL};
        expect_failure(runa, cases[i].code, cases[i].needle);
        const char *infoa[] = {"info", path, NULL};
        cli_result r = run(infoa);
        assert_int_equal(r.code, cases[i].code);
        assert_true(strstr(r.err, cases[i].needle) || strstr(r.out, cases[i].needle));
        done(&r);
    }
    unlink(path);
}

/* ---------------------------------------------------------------- other commands */

static void tokenize_reads_vocabulary_only_files(void **state)
{
    (void)state;
    const char *a[] = {"tokenize", "-m", LLAMA_VOCAB, "--json", "Once upon a time", NULL};
    cli_result r = run(a);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "{\"tokens\":[1,1551,346,2501,263,931]}\n");
    done(&r);
    const char *nobos[] = {"tokenize", "-m", LLAMA_VOCAB, "--no-bos", "Once upon a time", NULL};
    r = run(nobos);
    assert_string_equal(r.out, "1551 346 2501 263 931\n");
    done(&r);
    /* Special-token text is literal unless --special. */
    const char *lit[] = {"tokenize", "-m", LLAMA_VOCAB, "--no-bos", "</s>", NULL};
    r = run(lit);
    assert_string_not_equal(r.out, "2\n");
    done(&r);
    const char *sp[] = {"tokenize", "-m", LLAMA_VOCAB, "--no-bos", "--special", "</s>", NULL};
    r = run(sp);
    assert_string_equal(r.out, "2\n");
    done(&r);
    const char *missing[] = {"tokenize", "-m", LLAMA_VOCAB, NULL};
    expect_failure(missing, 2, "the TEXT to tokenize is missing");
}

static void info_describes_models_and_vocabularies(void **state)
{
    (void)state;
    const char *a[] = {"info", STORIES, NULL};
    cli_result r = run(a);
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "architecture: llama");
    assert_contains(r.out, "5 layers, embedding 64, 8 heads (4 KV), head dim 8/8");
    assert_contains(r.out, "tokenizer:    spm");
    assert_contains(r.out, "512 tokens");
    assert_contains(r.out, "chat template: absent");
    assert_contains(r.out, "F32 48");
    assert_contains(r.out, "KV f16");
    done(&r);
    const char *v[] = {"info", LLAMA_VOCAB, NULL};
    r = run(v);
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "vocabulary only");
    done(&r);
}

static void perplexity_scores_windows(void **state)
{
    (void)state;
    char path[] = "/tmp/sem-ppl-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park. One day, she saw a big, red ball. She wanted to "
                       "play with it, but it was too high.";
    assert_true(write(fd, text, strlen(text)) > 0);
    close(fd);
    const char *a[] = {"perplexity", "-m", STORIES, "-f", path, "-c", "16", NULL};
    cli_result r = run(a);
    assert_int_equal(r.code, 0);
    double ppl = 0;
    unsigned long long count = 0, windows = 0;
    assert_int_equal(sscanf(r.out, "perplexity: %lf over %llu tokens in %llu windows", &ppl, &count,
                            &windows), 3);
    assert_true(ppl > 1.0 && ppl < 20.0); /* the story is in-distribution for this model */
    assert_int_equal(count, windows * 15);
    done(&r);
    /* q8_0 KV measured against f16 (tiny-qwen2: head dim 64). */
    const char *cmp[] = {"perplexity", "-m", SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf", "-f",
                         path, "-c", "16", "--kv-type", "q8_0", "--kv-compare", NULL};
    r = run(cmp);
    assert_int_equal(r.code, 0);
    const char *line = strstr(r.out, "kv q8_0 vs f16:");
    assert_non_null(line);
    double p8, p16, kl, maxd, agree;
    assert_int_equal(sscanf(line, "kv q8_0 vs f16: perplexity %lf vs %lf, mean KL %lf, max "
                            "|dlogit| %lf, top-1 agreement %lf%%", &p8, &p16, &kl, &maxd, &agree),
                     5);
    assert_true(kl >= 0 && kl < 0.01);
    assert_true(maxd < 1.0);
    assert_true(agree > 80.0);
    done(&r);
    /* stories260K's heads of 8 cannot be stored as q8_0 (blocks of 32). */
    const char *q8[] = {"perplexity", "-m", STORIES, "-f", path, "-c", "16", "--kv-type",
                        "q8_0", NULL};
    expect_failure(q8, 2, "divisible by 32");
    const char *big[] = {"perplexity", "-m", STORIES, "-f", path, "-c", "1024", NULL};
    expect_failure(big, 2, "fewer than one window");
    const char *none[] = {"perplexity", "-m", STORIES, "-f", "/nonexistent.txt", NULL};
    expect_failure(none, 3, "cannot open /nonexistent.txt");
    unlink(path);
}

static void chat_mode_renders_the_template(void **state)
{
    (void)state;
    /* stories260K has no template: chatml with a warning; its prompt holds
     * the system and user texts between chatml markers. */
    const char *a[] = {"run", "-m", STORIES, "--chat", "--system", "Be kind", "-p", "Hi", "-n",
                       "2", "--temp", "0", "--json", NULL};
    cli_result r = run(a);
    assert_int_equal(r.code, 0);
    assert_contains(r.err, "warning");
    assert_contains(r.err, "chatml");
    json_t *j = last_json(&r);
    assert_true(json_array_size(json_object_get(j, "prompt_tokens")) > 10);
    json_decref(j);
    done(&r);
    const char *named[] = {"run", "-m", STORIES, "--chat", "--chat-template", "llama3", "-p",
                           "Hi", "-n", "1", NULL};
    r = run(named);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.err, "warning"));
    done(&r);
    const char *bad[] = {"run", "-m", STORIES, "--chat", "--chat-template", "nope", "-p", "Hi",
                         NULL};
    expect_failure(bad, 2, "chat template 'nope' is not one of: llama3, chatml");
    const char *nochat[] = {"run", "-m", STORIES, "--system", "x", "-p", "Hi", NULL};
    expect_failure(nochat, 2, "need --chat");

    /* --chat-template-file: the file's template, no fallback warning; one
     * that does not parse is an error naming where; not with a name. */
    char path[] = "/tmp/sem-tmpl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char tmpl[] = "{% for m in messages %}{{ m.content }}{% endfor %}";
    assert_int_equal(write(fd, tmpl, sizeof tmpl - 1), (ssize_t)(sizeof tmpl - 1));
    close(fd);
    const char *file[] = {"run", "-m", STORIES, "--chat", "--chat-template-file", path, "-p", "Hi",
                          "-n", "1", NULL};
    r = run(file);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.err, "warning"));
    done(&r);
    const char *both[] = {"run", "-m", STORIES, "--chat", "--chat-template", "llama3",
                          "--chat-template-file", path, "-p", "Hi", NULL};
    expect_failure(both, 2, "give one of them");
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{% for %}", 9), 9);
    close(fd);
    expect_failure(file, 2, "line 1");
    unlink(path);
}

static void mkmodel_writes_a_runnable_model_and_bench_measures_it(void **state)
{
    (void)state;
    char path[] = "/tmp/sem-mk-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const char *mk[] = {"mkmodel", "--vocab", LLAMA_VOCAB, "-o", path, "--embd", "64",
                        "--layers", "2", "--heads", "4", "--kv-heads", "2", "--head-dim", "16",
                        "--ffn", "96", "--type", "Q4_K", NULL};
    cli_result r = run(mk);
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "some matrices in Q8_0"); /* 64 and 96 are not multiples of 256 */
    done(&r);
    const char *bench[] = {"bench", "-m", path, "-p", "16", "-n", "4", "-r", "2", "--json", NULL};
    r = run(bench);
    assert_int_equal(r.code, 0);
    json_t *j = last_json(&r);
    double pp = json_real_value(json_object_get(json_object_get(j, "pp_tok_s"), "median"));
    json_t *tg = json_object_get(j, "tg_tok_s");
    assert_true(pp > 0);
    assert_true(json_real_value(json_object_get(tg, "min")) <=
                json_real_value(json_object_get(tg, "max")));
    json_decref(j);
    done(&r);
    /* tg after a context already in place (-d): a rate, and the depth. */
    const char *deep[] = {"bench", "-m", path, "-p", "0", "-n", "4", "-d", "40", "-r", "2",
                          "--json", NULL};
    r = run(deep);
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "after 40 tokens (-d)");
    j = last_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "depth")), 40);
    assert_true(json_real_value(json_object_get(json_object_get(j, "tg_tok_s"), "min")) > 0);
    json_decref(j);
    done(&r);
    const char *bad_type[] = {"mkmodel", "--vocab", LLAMA_VOCAB, "-o", path, "--type", "Q3_K",
                              NULL};
    expect_failure(bad_type, 2, "'Q3_K' is not one of");
    const char *bad_shape[] = {"mkmodel", "--vocab", LLAMA_VOCAB, "-o", path, "--heads", "5",
                               "--kv-heads", "2", NULL};
    expect_failure(bad_shape, 2, "impossible shape");
    unlink(path);
}

static void an_agent_continues_in_a_second_process(void **state)
{
    (void)state;
    char dir[] = "/tmp/sem-cli-agents-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *first[] = {"run", "-m", STORIES, "-p", "Once upon a time", "-n", "8", "--temp",
                           "0", "--agent", "story-1", "--cache-dir", dir, "--json", NULL};
    cli_result r = run(first);
    assert_int_equal(r.code, 0);
    json_t *j = last_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "cached_tokens")), 0);
    char text[512];
    snprintf(text, sizeof text, "Once upon a time%s and",
             json_string_value(json_object_get(j, "text")));
    json_decref(j);
    done(&r);
    /* A new process: the story so far, plus more. */
    const char *second[] = {"run", "-m", STORIES, "-p", text, "-n", "8", "--temp", "0",
                            "--agent", "story-1", "--cache-dir", dir, "--json", NULL};
    r = run(second);
    assert_int_equal(r.code, 0);
    j = last_json(&r);
    assert_true(json_integer_value(json_object_get(j, "cached_tokens")) >= 10);
    json_decref(j);
    done(&r);
    /* The agents command sees it. */
    const char *ls[] = {"agents", "ls", "--cache-dir", dir, "--json", NULL};
    r = run(ls);
    assert_int_equal(r.code, 0);
    j = json_loads(r.out, 0, NULL);
    json_t *agents = json_object_get(j, "agents");
    assert_int_equal(json_array_size(agents), 1);
    json_t *a0 = json_array_get(agents, 0);
    assert_string_equal(json_string_value(json_object_get(a0, "id")), "story-1");
    assert_int_equal(json_integer_value(json_object_get(a0, "hits")), 1);
    json_decref(j);
    done(&r);
    const char *show[] = {"agents", "show", "--cache-dir", dir, "story-1", NULL};
    r = run(show);
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "\"ok\"");
    done(&r);
    /* A damaged file is a miss, not a failure, and is moved aside. */
    char path[256];
    snprintf(path, sizeof path, "%s/story-1.kv", dir);
    FILE *f = fopen(path, "r+b");
    fseek(f, -20, SEEK_END);
    fputc(0x5a, f);
    fclose(f);
    r = run(second);
    assert_int_equal(r.code, 0);
    j = last_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "cached_tokens")), 0);
    json_decref(j);
    done(&r);
    const char *rm[] = {"agents", "rm", "--cache-dir", dir, "story-1", NULL};
    r = run(rm);
    assert_int_equal(r.code, 0);
    done(&r);
    const char *rm_again[] = {"agents", "rm", "--cache-dir", dir, "story-1", NULL};
    expect_failure(rm_again, 3, "not found");
    /* A file the index does not list (a later release's format) is removed too. */
    snprintf(path, sizeof path, "%s/from-the-future.kv", dir);
    f = fopen(path, "wb");
    fputs("SEMKV from a later release", f);
    fclose(f);
    r = run((const char *[]){"agents", "rm", "--cache-dir", dir, "from-the-future", NULL});
    assert_int_equal(r.code, 0);
    assert_contains(r.out, "removed from-the-future");
    assert_int_equal(access(path, F_OK), -1);
    done(&r);
    const char *bad_id[] = {"run", "-m", STORIES, "-p", "x", "--agent", "../../etc/passwd",
                            NULL};
    expect_failure(bad_id, 2, "agent id has character");
    const char *no_agent[] = {"run", "-m", STORIES, "-p", "x", "--cache-dir", dir, NULL};
    expect_failure(no_agent, 2, "need --agent");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The server itself is specified by tests/e2e; here, its command line. */
static void serve_lists_its_options_and_refuses_bad_ones(void **state)
{
    (void)state;
    cli_result r = run((const char *[]){"serve", "--help", NULL});
    assert_int_equal(r.code, 0);
    static const char *expect[] = {"--host ADDR", "SEMANTIC_HOST", "default: 127.0.0.1",
                                   "--port N", "SEMANTIC_PORT", "default: 8000", "--api-key KEY",
                                   "SEMANTIC_API_KEY", "--admin-key", "--cache-dir", "--disk-mb",
                                   "--cache-type", "--pool-mb", "--max-batch", "--ctx",
                                   "--kv-type", "--chat-template", "--chat-template-file PATH",
                                   "SEMANTIC_CHAT_TEMPLATE_FILE", "--threads", "--drain-timeout",
                                   "--max-body-bytes", "--max-header-bytes", "--max-connections",
                                   "--read-timeout", "--idle-timeout"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_contains(r.out, expect[i]);
    done(&r);
    r = run((const char *[]){"serve", NULL});
    assert_int_equal(r.code, 2);
    assert_contains(r.err, "-m MODEL");
    done(&r);
    r = run((const char *[]){"serve", "-m", STORIES, "--port", "70000", NULL});
    assert_int_equal(r.code, 2);
    assert_contains(r.err, "--port");
    done(&r);
    r = run((const char *[]){"serve", "-m", STORIES, "--cache-type", "f32", NULL});
    assert_int_equal(r.code, 2);
    assert_contains(r.err, "--cache-type");
    done(&r);
    r = run((const char *[]){"serve", "-m", STORIES, "--pin-mb", "0", NULL});
    assert_int_equal(r.code, 2);
    assert_contains(r.err, "--pin-mb: 0 is outside 1..");
    done(&r);
    /* A bad value from the environment names the variable. */
    setenv("SEMANTIC_MAX_BATCH", "many", 1);
    r = run((const char *[]){"serve", "-m", STORIES, NULL});
    unsetenv("SEMANTIC_MAX_BATCH");
    assert_int_equal(r.code, 2);
    assert_contains(r.err, "SEMANTIC_MAX_BATCH");
    done(&r);
    /* A model that is not there: the listener was up, loading fails. */
    r = run((const char *[]){"serve", "-m", "/nonexistent.gguf", "--port", "0", NULL});
    assert_int_equal(r.code, 3);
    assert_contains(r.err, "/nonexistent.gguf");
    done(&r);
}

/* ---------------------------------------------------------------- usage errors */

/* A usage error is two lines on stderr: the reason, then where the usage
 * is; no usage text, nothing on stdout, exit 2. */
static void expect_usage_error(const char *const *args, const char *cmd, const char *reason)
{
    cli_result r = run(args);
    char first[512], hint[128];
    snprintf(first, sizeof first, "semantic%s%s: %s", cmd ? " " : "", cmd ? cmd : "", reason);
    snprintf(hint, sizeof hint, "Run 'semantic%s%s --help' for the usage.\n", cmd ? " " : "",
             cmd ? cmd : "");
    const char *nl = strchr(r.err, '\n');
    if (r.code != 2 || !nl || strncmp(r.err, first, strlen(first)) != 0 ||
        strcmp(nl + 1, hint) != 0 || r.out[0] != '\0' || strstr(r.err, "usage:"))
        fail_msg("expected exit 2 with \"%s\" then \"%s\", got %d:\n%s", first, hint, r.code,
                 r.err);
    done(&r);
}

/* --help prints the whole usage on stdout and exits 0. */
static void expect_help(const char *const *args, const char *needle)
{
    cli_result r = run(args);
    if (r.code != 0 || !strstr(r.out, "usage: semantic") || !strstr(r.out, needle) ||
        r.err[0] != '\0')
        fail_msg("expected the usage on stdout and exit 0, got %d: %s%s", r.code, r.out, r.err);
    done(&r);
}

static void usage_errors_say_why_first_and_where_the_usage_is(void **state)
{
    (void)state;
    expect_usage_error((const char *[]){NULL}, NULL, "a command is required: run, serve");
    expect_usage_error((const char *[]){"frobnicate", NULL}, NULL,
                       "unknown command 'frobnicate'");
    /* tokenize */
    expect_usage_error((const char *[]){"tokenize", "x", NULL}, "tokenize",
                       "-m MODEL is required");
    expect_usage_error((const char *[]){"tokenize", "-m", LLAMA_VOCAB, "a", "b", NULL},
                       "tokenize", "one TEXT only");
    expect_usage_error((const char *[]){"tokenize", "--nope", NULL}, "tokenize",
                       "unknown option '--nope'");
    expect_usage_error((const char *[]){"tokenize", "-m", NULL}, "tokenize",
                       "option '-m' needs a value");
    expect_help((const char *[]){"tokenize", "--help", NULL}, "--no-bos");
    /* run */
    expect_usage_error((const char *[]){"run", "-p", "x", NULL}, "run",
                       "-m MODEL and -p PROMPT are required");
    expect_usage_error((const char *[]){"run", "-m", STORIES, "-p", "x", "--bogus", NULL}, "run",
                       "unknown option '--bogus'");
    expect_usage_error((const char *[]){"run", "-m", STORIES, "-p", "x", "-n", NULL}, "run",
                       "option '-n' needs a value");
    expect_usage_error((const char *[]){"run", "-m", STORIES, "-p", "x", "--temp", "hot", NULL},
                       "run", "--temp: 'hot' is not a number");
    expect_usage_error((const char *[]){"run", "-m", STORIES, "-p", "x", "extra", NULL}, "run",
                       "unexpected argument 'extra'");
    expect_help((const char *[]){"run", "--help", NULL}, "--echo-logprobs");
    /* info */
    expect_usage_error((const char *[]){"info", NULL}, "info", "the MODEL.gguf to describe");
    expect_usage_error((const char *[]){"info", STORIES, STORIES, NULL}, "info",
                       "one MODEL.gguf only");
    expect_usage_error((const char *[]){"info", "-v", NULL}, "info", "unknown option '-v'");
    expect_help((const char *[]){"info", "--help", NULL}, "MODEL.gguf");
    /* perplexity */
    expect_usage_error((const char *[]){"perplexity", "-m", STORIES, NULL}, "perplexity",
                       "-f TEXT_FILE is required");
    expect_usage_error((const char *[]){"perplexity", "-m", STORIES, "-f", "x", "-c", "0", NULL},
                       "perplexity", "-c: 0 is outside 2..");
    expect_usage_error((const char *[]){"perplexity", "-m", STORIES, "--ctx", NULL},
                       "perplexity", "option '--ctx' needs a value");
    expect_help((const char *[]){"perplexity", "-h", NULL}, "--kv-compare");
    /* bench */
    expect_usage_error((const char *[]){"bench", NULL}, "bench", "-m MODEL is required");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "-r", "many", NULL}, "bench",
                       "-r: 'many' is not a non-negative integer");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "-p", "0", "-n", "0", NULL},
                       "bench", "-p 0 and -n 0 leave nothing to measure");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "--memory", "8,x", NULL}, "bench",
                       "--memory: '8,x' is not a list of token counts");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "--shared", "3000,200", NULL},
                       "bench", "--shared: '3000,200' is not PREFIX,SUFFIX,AGENTS[,FORK]");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "--shared", "8,1,8", NULL},
                       "bench", "--shared: prefix >= 16, suffix >= 1, 2..64 agents");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "-qx", NULL}, "bench",
                       "unknown option '-q'");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "-d", "64", "--parallel", "2",
                                        NULL},
                       "bench", "-d D goes with tg alone");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "-d", "64", "-n", "0", NULL},
                       "bench", "-d D goes with tg alone");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "--kv-type", "q8_0", NULL},
                       "bench", "--kv-type goes with --memory");
    expect_usage_error((const char *[]){"bench", "-m", STORIES, "--memory", "64", "--kv-type",
                                        "f32", NULL},
                       "bench", "KV type 'f32' is not one of");
    expect_help((const char *[]){"bench", "--help", NULL}, "--parallel");
    /* mkmodel */
    expect_usage_error((const char *[]){"mkmodel", "-o", "/tmp/never.gguf", NULL}, "mkmodel",
                       "--vocab VOCAB.gguf is required");
    expect_usage_error((const char *[]){"mkmodel", "--vocab", LLAMA_VOCAB, NULL}, "mkmodel",
                       "-o OUT.gguf is required");
    expect_usage_error((const char *[]){"mkmodel", "--layers", "0", NULL}, "mkmodel",
                       "--layers: 0 is outside 1..256");
    expect_help((const char *[]){"mkmodel", "--help", NULL}, "--preset");
    /* agents */
    expect_usage_error((const char *[]){"agents", NULL}, "agents", "a verb is required");
    expect_usage_error((const char *[]){"agents", "list", NULL}, "agents",
                       "unknown verb 'list': ls, show or rm");
    expect_usage_error((const char *[]){"agents", "show", NULL}, "agents",
                       "show takes one agent ID");
    expect_usage_error((const char *[]){"agents", "rm", "--cache-dir", "/tmp", NULL}, "agents",
                       "rm needs the IDs");
    expect_usage_error((const char *[]){"agents", "ls", "--cache-dir", NULL}, "agents",
                       "option '--cache-dir' needs a value");
    expect_usage_error((const char *[]){"agents", "ls", "x", NULL}, "agents",
                       "ls takes no agent ID ('x')");
    expect_help((const char *[]){"agents", "--help", NULL}, "--cache-dir");
    /* serve */
    expect_usage_error((const char *[]){"serve", NULL}, "serve", "-m MODEL");
    expect_usage_error((const char *[]){"serve", "-m", STORIES, "--bogus=1", NULL}, "serve",
                       "unknown option '--bogus'");
    expect_usage_error((const char *[]){"serve", "-m", STORIES, "--port", NULL}, "serve",
                       "option '--port' needs a value");
    expect_usage_error((const char *[]){"serve", "-m", STORIES, "--port", "70000", NULL},
                       "serve", "--port: 70000 is outside 0..65535");
    expect_usage_error((const char *[]){"serve", "-m", STORIES, "extra", NULL}, "serve",
                       "unexpected argument 'extra'");
}

/* ---------------------------------------------------------------- context */

/* A context longer than the model was trained for (stories260K: 2048) is
 * refused by every command, naming both numbers; the trained length works. */
static void a_context_past_the_trained_one_is_refused(void **state)
{
    (void)state;
    const char *msg = "a context of 100000 tokens is more than stories260K.gguf was trained "
                      "for (2048 tokens)";
    expect_failure((const char *[]){"run", "-m", STORIES, "-p", "x", "-c", "100000", NULL}, 2,
                   msg);
    expect_failure((const char *[]){"run", "-m", STORIES, "-p", "x", "-c", "100000", "--agent",
                                    "a", "--cache-dir", "", NULL},
                   2, msg);
    expect_failure((const char *[]){"serve", "-m", STORIES, "-c", "100000", "--port", "0",
                                    "--cache-dir", "", NULL},
                   2, msg);
    expect_failure((const char *[]){"run", "-m", STORIES, "-p", "x", "-c", "2049", NULL}, 2,
                   "a context of 2049 tokens is more than stories260K.gguf was trained for "
                   "(2048 tokens)");
    expect_failure((const char *[]){"bench", "-m", STORIES, "-p", "4096", "-n", "1", NULL}, 2,
                   "a context of 4097 tokens is more than stories260K.gguf");
    expect_failure((const char *[]){"bench", "-m", STORIES, "-p", "0", "-n", "8", "-d", "2048",
                                    NULL},
                   2, "a context of 2057 tokens is more than stories260K.gguf");
    char path[] = "/tmp/sem-ctx-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "Once upon a time", 16) == 16);
    close(fd);
    expect_failure((const char *[]){"perplexity", "-m", STORIES, "-f", path, "-c", "4096", NULL},
                   2, "a context of 4096 tokens is more than stories260K.gguf");
    unlink(path);
    cli_result r = run((const char *[]){"run", "-m", STORIES, "-p", "Once", "-n", "2", "-c",
                                        "2048", NULL});
    assert_int_equal(r.code, 0);
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories_greedy_matches_the_reference_story),
        cmocka_unit_test(echo_logprobs_follow_the_reference_logits),
        cmocka_unit_test(echo_logprobs_do_not_depend_on_n),
        cmocka_unit_test(stop_strings_end_the_text_before_them),
        cmocka_unit_test(seeded_sampling_is_reproducible),
        cmocka_unit_test(run_rejects_bad_input),
        cmocka_unit_test(malformed_models_give_clear_errors),
        cmocka_unit_test(tokenize_reads_vocabulary_only_files),
        cmocka_unit_test(info_describes_models_and_vocabularies),
        cmocka_unit_test(perplexity_scores_windows),
        cmocka_unit_test(chat_mode_renders_the_template),
        cmocka_unit_test(mkmodel_writes_a_runnable_model_and_bench_measures_it),
        cmocka_unit_test(an_agent_continues_in_a_second_process),
        cmocka_unit_test(serve_lists_its_options_and_refuses_bad_ones),
        cmocka_unit_test(usage_errors_say_why_first_and_where_the_usage_is),
        cmocka_unit_test(a_context_past_the_trained_one_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
