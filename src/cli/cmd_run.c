/*
 * cmd_run.c - `semantic run`: complete one prompt and stream the text.
 *
 *   semantic run -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P]
 *                [--min-p P] [--repeat-penalty R] [--presence-penalty P]
 *                [--frequency-penalty F] [--seed S] [--stop TEXT]... [-t THREADS]
 *                [-c CTX] [--special] [--json] [--echo-logprobs]
 *
 * The prompt is tokenized with BOS as the model's metadata says, evaluated
 * in chunks, and tokens are sampled until an end-of-generation token, a
 * stop string, N tokens or the context limit. Text is streamed to stdout
 * as complete UTF-8; with --json a last line reports tokens and timings.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/model/chat_prompt.h"
#include "base/deadline.h"
#include "adapters/text/detok_stream.h"
#include "app/sampler.h"
#include "app/stop_strings.h"
#include "base/utf8.h"
#include "domain/agent_id.h"
#include "cli.h"
#include "eval.h"
#include "session.h"
#include "serving_stack.h"

typedef struct run_args {
    session_opts so;
    const char *prompt;
    uint32_t n_predict;
    sampler_params sp;
    const char *stops[STOP_STRINGS_MAX];
    size_t n_stops;
    int special, json, echo_logprobs, seed_given, chat;
    const char *system, *chat_template;
    const char *agent, *cache_dir, *cache_type;
} run_args;

typedef struct run_state {
    session s;
    int32_t *prompt;
    size_t n_prompt;
    double *prompt_lp;   /* [n_prompt] log-probabilities, [0] unused */
    const float *last;   /* logits after the last evaluated token */
    int32_t *gen;        /* [n_predict] generated tokens */
    size_t n_gen;
    char *text;          /* generated text (stop string removed) */
    size_t text_len, text_cap, shown;
    const char *finish;
    double t_start, t_first, t_end;
} run_state;

static void usage(void)
{
    fprintf(stderr,
            "usage: semantic run -m MODEL -p PROMPT [options]\n"
            "  -n, --n-predict N        tokens to generate (default 128)\n"
            "  -c, --ctx N              context length (default: model's, at most 4096)\n"
            "  -t, --threads N          threads (default: all cores)\n"
            "      --temp T             temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K            (default 40, 0 = off)\n"
            "      --top-p P            (default 0.95)\n"
            "      --min-p P            (default 0.05)\n"
            "      --repeat-penalty R   (default 1.0 = off), over the last 64 tokens\n"
            "      --presence-penalty P, --frequency-penalty F   (default 0)\n"
            "      --seed S             sampling seed (default: random)\n"
            "      --stop TEXT          stop string, not printed (repeatable, up to 16)\n"
            "      --special            parse special-token text in the prompt\n"
            "      --chat               render PROMPT as a one-turn chat with the model's template\n"
            "      --system TEXT        with --chat: a system message\n"
            "      --chat-template NAME with --chat: use a built-in template instead\n"
            "      --kv-type TYPE       f16 (default) or q8_0\n"
            "      --isa NAME           kernels: portable, avx2, avx512 (default: best)\n"
            "      --agent ID           use and keep agent ID's memory (KV reused across runs)\n"
            "      --cache-dir DIR      with --agent: where agent memory lives on disk\n"
            "                           (default: $XDG_DATA_HOME/semantic/cache)\n"
            "      --cache-type TYPE    with --agent: f16, q8_0 (default) or q4_0 on disk\n"
            "      --json               print a JSON summary as the last line\n"
            "      --echo-logprobs      with --json: log-probability of each prompt token\n");
}

enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_REP, O_PRES, O_FREQ, O_SEED, O_STOP,
       O_SPECIAL, O_JSON, O_ECHO, O_KV, O_ISA, O_CHAT, O_SYSTEM, O_TEMPLATE, O_AGENT, O_CDIR,
       O_CTYPE };

static sem_status parse_args(int argc, char **argv, run_args *a, sem_err *err)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'}, {"ctx", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'}, {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP}, {"repeat-penalty", required_argument, 0, O_REP},
        {"presence-penalty", required_argument, 0, O_PRES},
        {"frequency-penalty", required_argument, 0, O_FREQ},
        {"seed", required_argument, 0, O_SEED}, {"stop", required_argument, 0, O_STOP},
        {"special", no_argument, 0, O_SPECIAL}, {"json", no_argument, 0, O_JSON},
        {"echo-logprobs", no_argument, 0, O_ECHO}, {"kv-type", required_argument, 0, O_KV},
        {"isa", required_argument, 0, O_ISA},   {"chat", no_argument, 0, O_CHAT},
        {"system", required_argument, 0, O_SYSTEM},
        {"chat-template", required_argument, 0, O_TEMPLATE},
        {"agent", required_argument, 0, O_AGENT}, {"cache-dir", required_argument, 0, O_CDIR},
        {"cache-type", required_argument, 0, O_CTYPE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *a = (run_args){.so = session_defaults(), .n_predict = 128, .sp = sampler_defaults()};
    a->sp.repeat_penalty = 1.0f;
    uint32_t threads = 0;
    sem_status st = SEM_OK;
    int c;
    optind = 1;
    while (st == SEM_OK && (c = getopt_long(argc, argv, "m:p:n:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->so.model_path = optarg; break;
        case 'p': a->prompt = optarg; break;
        case 'n': st = cli_parse_u32("-n", optarg, 0, 1u << 24, &a->n_predict, err); break;
        case 'c': st = cli_parse_u32("--ctx", optarg, 1, 1u << 24, &a->so.ctx, err); break;
        case 't':
            st = cli_parse_u32("--threads", optarg, 1, 1024, &threads, err);
            a->so.threads = (int)threads;
            break;
        case O_TEMP: st = cli_parse_f32("--temp", optarg, 0, 100, &a->sp.temperature, err); break;
        case O_TOPK: st = cli_parse_u32("--top-k", optarg, 0, 1u << 30, &a->sp.top_k, err); break;
        case O_TOPP: st = cli_parse_f32("--top-p", optarg, 1e-6f, 1, &a->sp.top_p, err); break;
        case O_MINP: st = cli_parse_f32("--min-p", optarg, 0, 1, &a->sp.min_p, err); break;
        case O_REP:
            st = cli_parse_f32("--repeat-penalty", optarg, 1e-3f, 10, &a->sp.repeat_penalty, err);
            break;
        case O_PRES:
            st = cli_parse_f32("--presence-penalty", optarg, -2, 2, &a->sp.presence_penalty, err);
            break;
        case O_FREQ:
            st = cli_parse_f32("--frequency-penalty", optarg, -2, 2, &a->sp.frequency_penalty,
                               err);
            break;
        case O_SEED:
            st = cli_parse_u64("--seed", optarg, &a->sp.seed, err);
            a->seed_given = 1;
            break;
        case O_STOP:
            if (a->n_stops == STOP_STRINGS_MAX)
                st = sem_err_set(err, SEM_EINVAL, "at most %d --stop strings", STOP_STRINGS_MAX);
            else
                a->stops[a->n_stops++] = optarg;
            break;
        case O_SPECIAL: a->special = 1; break;
        case O_JSON: a->json = 1; break;
        case O_ECHO: a->echo_logprobs = 1; break;
        case O_KV: st = cache_kv_type_parse(optarg, &a->so.kv_type, err); break;
        case O_ISA: a->so.isa = optarg; break;
        case O_CHAT: a->chat = 1; break;
        case O_SYSTEM: a->system = optarg; break;
        case O_TEMPLATE: a->chat_template = optarg; break;
        case O_AGENT: a->agent = optarg; break;
        case O_CDIR: a->cache_dir = optarg; break;
        case O_CTYPE: a->cache_type = optarg; break;
        case 'h': usage(); exit(0);
        default: return sem_err_set(err, SEM_EINVAL, "unknown option (see --help)");
        }
    }
    if (st != SEM_OK)
        return st;
    if (!a->so.model_path || !a->prompt || optind != argc)
        return sem_err_set(err, SEM_EINVAL, "-m MODEL and -p PROMPT are required (see --help)");
    if (a->echo_logprobs && !a->json)
        return sem_err_set(err, SEM_EINVAL, "--echo-logprobs needs --json");
    if ((a->system || a->chat_template) && !a->chat)
        return sem_err_set(err, SEM_EINVAL, "--system and --chat-template need --chat");
    if ((a->cache_dir || a->cache_type) && !a->agent)
        return sem_err_set(err, SEM_EINVAL, "--cache-dir and --cache-type need --agent");
    if (a->agent && a->echo_logprobs)
        return sem_err_set(err, SEM_EINVAL, "--echo-logprobs cannot be used with --agent");
    if (a->agent && agent_id_validate(a->agent, err) != SEM_OK)
        return SEM_EINVAL;
    if (!a->seed_given)
        a->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    a->so.progress = isatty(2);
    return SEM_OK;
}

/* ---------------------------------------------------------------- prompt */

static void on_prompt_logits(void *user, uint32_t pos, const float *logits)
{
    run_state *r = user;
    if (pos + 1 < r->n_prompt)
        r->prompt_lp[pos + 1] = eval_logprob(logits, r->s.n_vocab, r->prompt[pos + 1]);
    if (pos + 1 == r->n_prompt)
        r->last = logits;
}

/* The prompt as one user turn (after an optional system turn). */
static sem_status chat_tokens(const model *m, const run_args *a, int32_t **out, size_t *n,
                              sem_err *err)
{
    sem_err warning = {0};
    chat_template *t = chat_prompt_template(m, a->chat_template, &warning, err);
    if (!t)
        return err->status;
    if (warning.status != SEM_OK)
        fprintf(stderr, "semantic run: warning: %s\n", sem_err_text(&warning));
    json_t *msgs = json_array();
    if (a->system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", a->system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", a->prompt));
    sem_status st = chat_prompt_tokens(m, t, msgs, NULL, NULL, true, NULL, out, n, err);
    json_decref(msgs);
    chat_template_free(t);
    return st;
}

/* The prompt's tokens: a chat turn, or the text with BOS as the model says. */
static sem_status prompt_tokens(const model *m, const run_args *a, int32_t **out, size_t *n,
                                sem_err *err)
{
    if (a->chat)
        return chat_tokens(m, a, out, n, err);
    return tokenizer_encode(model_tokenizer(m), a->prompt, strlen(a->prompt), 1, a->special, out,
                            n, err);
}

static sem_status prefill(run_state *r, const run_args *a, sem_err *err)
{
    sem_status st = prompt_tokens(r->s.m, a, &r->prompt, &r->n_prompt, err);
    if (st != SEM_OK)
        return st;
    if (r->n_prompt == 0)
        return sem_err_set(err, SEM_EINVAL, "the prompt is empty and the model adds no BOS");
    if (r->n_prompt > r->s.ctx)
        return sem_err_set(err, SEM_ETOOLARGE,
                           "the prompt is %zu tokens, longer than the context of %u (use --ctx)",
                           r->n_prompt, r->s.ctx);
    r->prompt_lp = calloc(r->n_prompt, sizeof *r->prompt_lp);
    if (!r->prompt_lp)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    return eval_tokens(r->s.fc, r->s.seq, r->prompt, (uint32_t)r->n_prompt, a->echo_logprobs,
                       r->s.logits, r->s.n_vocab, on_prompt_logits, r, err);
}

/* ---------------------------------------------------------------- decode */

static sem_status append_text(run_state *r, const char *s, size_t n, sem_err *err)
{
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t)
            return sem_err_set(err, SEM_ENOMEM, "out of memory");
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return SEM_OK;
}

/* Shows text up to `upto` (it never splits a character: see detok_stream). */
static void show(run_state *r, size_t upto)
{
    if (upto > r->shown) {
        fwrite(r->text + r->shown, 1, upto - r->shown, stdout);
        fflush(stdout);
        r->shown = upto;
    }
}

static sem_status decode(run_state *r, const run_args *a, sem_err *err)
{
    const tokenizer *tk = model_tokenizer(r->s.m);
    sampler *smp = sampler_create(&a->sp, r->s.n_vocab, err);
    detok_stream *ds = smp ? detok_stream_new_continuation(tk, 0, 1, err) : NULL;
    stop_set stops;
    sem_status st = SEM_OK;
    if (!smp || !ds || (st = stop_set_init(&stops, a->stops, a->n_stops, err)) != SEM_OK) {
        st = err->status;
        goto done;
    }
    r->gen = malloc((a->n_predict ? a->n_predict : 1) * sizeof *r->gen);
    if (!r->gen) {
        st = sem_err_set(err, SEM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < r->n_prompt; i++)
        sampler_accept(smp, r->prompt[i]);
    r->finish = "length";
    const float *logits = r->last;
    while (r->n_gen < a->n_predict) {
        int32_t tok = sampler_sample(smp, logits);
        if (r->n_gen == 0)
            r->t_first = deadline_now_ms();
        if (tokenizer_is_eog(tk, tok)) {
            r->finish = "stop";
            break;
        }
        r->gen[r->n_gen++] = tok;
        sampler_accept(smp, tok);
        const char *piece;
        size_t plen;
        if ((st = detok_stream_feed(ds, tok, &piece, &plen, err)) != SEM_OK ||
            (st = append_text(r, piece, plen, err)) != SEM_OK)
            goto done;
        stop_scan_result sr = stop_set_scan(&stops, r->text, r->text_len, r->shown);
        if (sr.found) {
            r->text_len = sr.at;
            r->text[sr.at] = '\0';
            r->finish = "stop";
            break;
        }
        show(r, sr.safe);
        if (r->n_gen == a->n_predict)
            break;
        if (block_table_n_tokens(r->s.seq) >= r->s.ctx)
            break; /* context full: finish "length" */
        if ((st = eval_tokens(r->s.fc, r->s.seq, &tok, 1, 0, r->s.logits, r->s.n_vocab,
                              on_prompt_logits, r, err)) != SEM_OK)
            goto done;
        logits = r->s.logits;
    }
    if (strcmp(r->finish, "stop") != 0) {
        const char *tail;
        size_t tlen;
        if ((st = detok_stream_finish(ds, &tail, &tlen, err)) != SEM_OK ||
            (st = append_text(r, tail, tlen, err)) != SEM_OK)
            goto done;
    }
    show(r, r->text_len);
done:
    detok_stream_free(ds);
    sampler_free(smp);
    return st;
}

/* ---------------------------------------------------------------- report */

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void print_json(const run_state *r, const run_args *a)
{
    double prefill_ms = r->t_first - r->t_start;
    double decode_ms = r->t_end - r->t_first;
    json_t *o = json_object();
    json_object_set_new(o, "prompt_tokens", int_array(r->prompt, r->n_prompt));
    json_object_set_new(o, "tokens", int_array(r->gen, r->n_gen));
    char *clean = malloc(3 * r->text_len + 1);
    size_t clen = clean ? utf8_sanitize(r->text ? r->text : "", r->text_len, clean) : 0;
    json_object_set_new(o, "text", json_stringn(clean ? clean : "", clen));
    free(clean);
    json_object_set_new(o, "finish_reason", json_string(r->finish));
    json_object_set_new(o, "ttft_ms", json_real(prefill_ms));
    json_object_set_new(o, "prefill_tok_s",
                        json_real(prefill_ms > 0 ? r->n_prompt / (prefill_ms / 1e3) : 0));
    json_object_set_new(o, "decode_tok_s", json_real(r->n_gen > 1 && decode_ms > 0
                                                         ? (r->n_gen - 1) / (decode_ms / 1e3)
                                                         : 0));
    if (a->echo_logprobs) {
        json_t *lp = json_array();
        for (size_t i = 0; i < r->n_prompt; i++)
            json_array_append_new(lp, i == 0 ? json_null() : json_real(r->prompt_lp[i]));
        json_object_set_new(o, "prompt_logprobs", lp);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    printf("\n%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
}

/* ---------------------------------------------------------------- agent path */

/*
 * With --agent the request goes through the batching engine and the
 * agent's memory: the KV kept from earlier runs (on disk between
 * processes) is reused up to the first token that differs.
 */
static int run_with_agent(const run_args *a)
{
    serving_stack_opts so = serving_stack_defaults();
    so.model_path = a->so.model_path;
    so.cache_dir = a->cache_dir;
    so.cache_type = a->cache_type;
    so.kv_type = a->so.kv_type;
    so.ctx = a->so.ctx;
    so.threads = a->so.threads;
    so.isa = a->so.isa;
    so.max_batch = 1;
    so.quiet = !isatty(2);
    serving_stack st;
    sem_err err = {0};
    if (serving_stack_open(&st, &so, &err) != SEM_OK)
        return cli_fail("run", &err);
    int32_t *prompt = NULL, *gen = NULL;
    size_t n_prompt = 0;
    uint32_t n_gen = 0;
    gen_request *r = NULL;
    generation_port gp = engine_generation_port(st.e);
    double t0 = deadline_now_ms();
    sem_status s = prompt_tokens(st.m, a, &prompt, &n_prompt, &err);
    if (s == SEM_OK) {
        gen_params p = {.agent_id = a->agent, .prompt = prompt, .n_prompt = (uint32_t)n_prompt,
                        .max_tokens = a->n_predict, .stop = a->stops, .n_stop = a->n_stops};
        p.sampling = (gen_sampling){a->sp.temperature, a->sp.top_p, a->sp.min_p, a->sp.top_k,
                                    a->sp.repeat_penalty, a->sp.presence_penalty,
                                    a->sp.frequency_penalty, a->sp.repeat_last_n, a->sp.seed};
        s = gp.ops->submit(gp.self, &p, &r, &err);
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    while (s == SEM_OK) {
        if (cap - len < 4096 && !(text = realloc(text, cap = cap * 2 + 8192))) {
            s = sem_err_set(&err, SEM_ENOMEM, "out of memory");
            break;
        }
        size_t n = 0;
        int done = gp.ops->read(gp.self, r, text + len, cap - len - 1, &n, -1);
        fwrite(text + len, 1, n, stdout);
        fflush(stdout);
        len += n;
        if (done)
            break;
    }
    gen_result res = r ? gp.ops->result(gp.self, r) : (gen_result){0};
    if (s == SEM_OK && res.finish == GEN_ERROR) {
        err = res.error;
        s = err.status;
    }
    if (s == SEM_OK)
        s = gp.ops->tokens(gp.self, r, &gen, &n_gen, &err);
    double total = deadline_now_ms() - t0;
    printf("\n");
    if (s == SEM_OK && a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "prompt_tokens", int_array(prompt, n_prompt));
        json_object_set_new(o, "tokens", int_array(gen, n_gen));
        json_object_set_new(o, "text", json_stringn(text ? text : "", len));
        json_object_set_new(o, "finish_reason", json_string(gen_finish_name(res.finish)));
        json_object_set_new(o, "cached_tokens", json_integer(res.cached_tokens));
        json_object_set_new(o, "ttft_ms", json_real(res.ttft_ms));
        double prefill_s = res.ttft_ms / 1e3, decode_s = (res.total_ms - res.ttft_ms) / 1e3;
        json_object_set_new(o, "prefill_tok_s",
                            json_real(prefill_s > 0 ? (n_prompt - res.cached_tokens) / prefill_s : 0));
        json_object_set_new(o, "decode_tok_s",
                            json_real(decode_s > 0 && n_gen > 1 ? (n_gen - 1) / decode_s : 0));
        json_object_set_new(o, "total_ms", json_real(total));
        char *d = json_dumps(o, JSON_COMPACT);
        printf("%s\n", d ? d : "{}");
        free(d);
        json_decref(o);
    }
    if (r)
        gp.ops->release(gp.self, r);
    free(text);
    free(gen);
    free(prompt);
    serving_stack_close(&st, 10000); /* writes the agent's memory before exiting */
    return s == SEM_OK ? 0 : cli_fail("run", &err);
}

int cmd_run(int argc, char **argv)
{
    run_args a;
    run_state r = {0};
    sem_err err = {0};
    if (parse_args(argc, argv, &a, &err) != SEM_OK) {
        usage();
        return cli_fail("run", &err);
    }
    if (a.agent)
        return run_with_agent(&a);
    if (session_open(&r.s, &a.so, &err) != SEM_OK)
        return cli_fail("run", &err);
    r.t_start = deadline_now_ms();
    r.finish = "length";
    sem_status st = prefill(&r, &a, &err);
    r.t_first = deadline_now_ms();
    if (st == SEM_OK)
        st = decode(&r, &a, &err);
    r.t_end = deadline_now_ms();
    if (st == SEM_OK && a.json)
        print_json(&r, &a);
    else if (st == SEM_OK)
        printf("\n");
    free(r.prompt);
    free(r.prompt_lp);
    free(r.gen);
    free(r.text);
    session_close(&r.s);
    return st == SEM_OK ? 0 : cli_fail("run", &err);
}
