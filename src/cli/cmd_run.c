/*
 * cmd_run.c - `semantic run`: complete one prompt and stream the text.
 *
 *   semantic run -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P]
 *                [--min-p P] [--repeat-penalty R] [--presence-penalty P]
 *                [--frequency-penalty F] [--seed S] [--stop TEXT]... [-t THREADS]
 *                [-c CTX] [--special] [--json] [--echo-logprobs]
 *
 * The prompt is tokenized with BOS as the model's metadata says (or
 * rendered as a chat turn) and submitted to the batching engine, the same
 * generation loop the server runs (one sampler, detokenizer and stop-string
 * scanner): tokens are sampled until an end-of-generation token, a stop
 * string, N tokens or the context limit. Text is streamed to stdout as
 * complete UTF-8; with --json a last line reports tokens and timings. With
 * --agent the agent's memory is reused and kept on disk; without it nothing
 * is written. --echo-logprobs scores the prompt in a teacher-forced pass of
 * its own (cli/eval.h).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/sampler.h"
#include "app/stop_strings.h"
#include "base/deadline.h"
#include "base/strbuf.h"
#include "cli.h"
#include "domain/agent_id.h"
#include "eval.h"
#include "serving_stack.h"

typedef struct run_args {
    const char *model_path, *isa;
    uint32_t ctx, threads;
    cache_kv_type kv_type;
    const char *prompt;
    uint32_t n_predict;
    sampler_params sp;
    const char *stops[STOP_STRINGS_MAX];
    size_t n_stops;
    int special, json, echo_logprobs, seed_given, chat;
    const char *system, *chat_template, *chat_template_file;
    const char *agent, *cache_dir, *cache_type;
} run_args;

static void usage(void)
{
    printf(
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
            "      --chat-template-file PATH  with --chat: use this Jinja template instead\n"
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
       O_CTYPE, O_TEMPLATE_FILE };

/* 0, or the exit code of a usage error (already reported). */
static int parse_args(int argc, char **argv, run_args *a)
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
        {"chat-template-file", required_argument, 0, O_TEMPLATE_FILE},
        {"agent", required_argument, 0, O_AGENT}, {"cache-dir", required_argument, 0, O_CDIR},
        {"cache-type", required_argument, 0, O_CTYPE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *a = (run_args){.kv_type = CACHE_KV_F16, .n_predict = 128, .sp = sampler_defaults()};
    a->sp.repeat_penalty = 1.0f;
    sem_err e = {0}, *err = &e;
    sem_status st = SEM_OK;
    int c;
    optind = 1;
    opterr = 0;
    while (st == SEM_OK && (c = getopt_long(argc, argv, ":m:p:n:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model_path = optarg; break;
        case 'p': a->prompt = optarg; break;
        case 'n': st = cli_parse_u32("-n", optarg, 0, 1u << 24, &a->n_predict, err); break;
        case 'c': st = cli_parse_u32("--ctx", optarg, 1, 1u << 24, &a->ctx, err); break;
        case 't': st = cli_parse_u32("--threads", optarg, 1, 1024, &a->threads, err); break;
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
                return cli_usage_error("run", "at most %d --stop strings", STOP_STRINGS_MAX);
            else
                a->stops[a->n_stops++] = optarg;
            break;
        case O_SPECIAL: a->special = 1; break;
        case O_JSON: a->json = 1; break;
        case O_ECHO: a->echo_logprobs = 1; break;
        case O_KV: st = cache_kv_type_parse(optarg, &a->kv_type, err); break;
        case O_ISA: a->isa = optarg; break;
        case O_CHAT: a->chat = 1; break;
        case O_SYSTEM: a->system = optarg; break;
        case O_TEMPLATE: a->chat_template = optarg; break;
        case O_TEMPLATE_FILE: a->chat_template_file = optarg; break;
        case O_AGENT: a->agent = optarg; break;
        case O_CDIR: a->cache_dir = optarg; break;
        case O_CTYPE: a->cache_type = optarg; break;
        case 'h': usage(); exit(0);
        default: return cli_option_error("run", c, argc, argv);
        }
    }
    if (st != SEM_OK)
        return cli_usage_fail("run", err);
    if (!a->model_path || !a->prompt)
        return cli_usage_error("run", "-m MODEL and -p PROMPT are required");
    if (optind != argc)
        return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (a->echo_logprobs && !a->json)
        return cli_usage_error("run", "--echo-logprobs needs --json");
    if ((a->system || a->chat_template || a->chat_template_file) && !a->chat)
        return cli_usage_error("run", "--system, --chat-template and --chat-template-file need --chat");
    if (a->chat_template && a->chat_template_file)
        return cli_usage_error("run", "--chat-template and --chat-template-file: give one of them");
    if ((a->cache_dir || a->cache_type) && !a->agent)
        return cli_usage_error("run", "--cache-dir and --cache-type need --agent");
    if (a->agent && agent_id_validate(a->agent, err) != SEM_OK)
        return cli_usage_fail("run", err);
    if (!a->seed_given)
        a->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

/* ---------------------------------------------------------------- prompt */

/* The prompt as one user turn (after an optional system turn), rendered by
 * the stack's prompt port (the model's template, --chat-template or
 * --chat-template-file). */
static sem_status chat_tokens(serving_stack *st, const run_args *a, int32_t **out, size_t *n,
                              sem_err *err)
{
    if (st->template_warning.status != SEM_OK)
        fprintf(stderr, "semantic run: warning: %s\n", sem_err_text(&st->template_warning));
    json_t *msgs = json_array();
    if (a->system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", a->system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", a->prompt));
    json_t *conv = json_pack("{s:o}", "messages", msgs);
    char *text = conv ? json_dumps(conv, JSON_COMPACT) : NULL;
    json_decref(conv);
    if (!text)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    prompt_port pp = model_prompts_port(st->prompts);
    sem_status s = pp.ops->chat(pp.self, text, strlen(text), 1, out, n, NULL, err);
    free(text);
    return s;
}

/* The prompt's tokens: a chat turn, or the text with BOS as the model says. */
static sem_status prompt_tokens(serving_stack *st, const run_args *a, int32_t **out, size_t *n,
                                sem_err *err)
{
    if (a->chat)
        return chat_tokens(st, a, out, n, err);
    sem_status s = tokenizer_encode(model_tokenizer(st->m), a->prompt, strlen(a->prompt), 1,
                                    a->special, out, n, err);
    if (s == SEM_OK && *n == 0)
        s = sem_err_set(err, SEM_EINVAL, "the prompt is empty and the model adds no BOS");
    return s;
}

/* --echo-logprobs: the prompt scored in a pass of its own. */
static sem_status score_prompt(serving_stack *st, const run_args *a, const int32_t *prompt,
                               size_t n, double **lp, sem_err *err)
{
    forward_opts fo = {.n_threads = a->threads ? (int)a->threads
                                               : (int)sysconf(_SC_NPROCESSORS_ONLN),
                       .isa = cpu_isa_best(), .max_tokens = 512};
    if (a->isa && cpu_isa_parse(a->isa, &fo.isa, err) != SEM_OK)
        return err->status;
    if (!(*lp = malloc(n * sizeof **lp)))
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    return eval_prompt_logprobs(st->m, &fo, prompt, (uint32_t)n, *lp, err);
}

/* ---------------------------------------------------------------- generation */

typedef struct run_out {
    int32_t *prompt, *gen;
    size_t n_prompt;
    uint32_t n_gen;
    double *prompt_lp; /* [n_prompt], [0] unused; NULL without --echo-logprobs */
    char *text;        /* what was printed */
    size_t len;
    gen_result res;
    double total_ms;
} run_out;

/* Submits, prints the text as it comes, and collects the result. */
static sem_status generate(serving_stack *st, const run_args *a, run_out *o, sem_err *err)
{
    generation_port gp = engine_generation_port(st->e);
    gen_params p = {.agent_id = a->agent, .prompt = o->prompt, .n_prompt = (uint32_t)o->n_prompt,
                    .max_tokens = a->n_predict, .prefill_only = a->n_predict == 0,
                    .stop = a->stops, .n_stop = a->n_stops};
    p.sampling = (gen_sampling){a->sp.temperature, a->sp.top_p, a->sp.min_p, a->sp.top_k,
                                a->sp.repeat_penalty, a->sp.presence_penalty,
                                a->sp.frequency_penalty, a->sp.repeat_last_n, a->sp.seed};
    gen_request *r = NULL;
    sem_status s = gp.ops->submit(gp.self, &p, &r, err);
    strbuf text = {0};
    while (s == SEM_OK) {
        char buf[4096];
        size_t n = 0;
        int done = gp.ops->read(gp.self, r, buf, sizeof buf, &n, -1);
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
        strbuf_append(&text, buf, n);
        if (done)
            break;
    }
    if (s == SEM_OK && text.oom)
        s = sem_err_set(err, SEM_ENOMEM, "out of memory for the generated text");
    if (r) {
        o->res = gp.ops->result(gp.self, r);
        if (s == SEM_OK && o->res.finish == GEN_ERROR) {
            *err = o->res.error;
            s = err->status;
        }
        if (s == SEM_OK)
            s = gp.ops->tokens(gp.self, r, &o->gen, &o->n_gen, err);
        gp.ops->release(gp.self, r);
    }
    o->text = text.data;
    o->len = text.len;
    return s;
}

/* ---------------------------------------------------------------- report */

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void print_json(const run_out *o, const run_args *a)
{
    const gen_result *res = &o->res;
    json_t *j = json_object();
    json_object_set_new(j, "prompt_tokens", int_array(o->prompt, o->n_prompt));
    json_object_set_new(j, "tokens", int_array(o->gen, o->n_gen));
    json_object_set_new(j, "text", json_stringn(o->text ? o->text : "", o->len));
    json_object_set_new(j, "finish_reason", json_string(gen_finish_name(res->finish)));
    json_object_set_new(j, "cached_tokens", json_integer(res->cached_tokens));
    json_object_set_new(j, "ttft_ms", json_real(res->ttft_ms));
    double prefill_s = res->ttft_ms / 1e3, decode_s = (res->total_ms - res->ttft_ms) / 1e3;
    uint32_t computed = (uint32_t)o->n_prompt - res->cached_tokens;
    json_object_set_new(j, "prefill_tok_s", json_real(prefill_s > 0 ? computed / prefill_s : 0));
    json_object_set_new(j, "decode_tok_s", json_real(decode_s > 0 && o->n_gen > 1
                                                         ? (o->n_gen - 1) / decode_s : 0));
    json_object_set_new(j, "total_ms", json_real(o->total_ms));
    if (a->echo_logprobs) {
        json_t *lp = json_array();
        for (size_t i = 0; i < o->n_prompt; i++)
            json_array_append_new(lp, i == 0 ? json_null() : json_real(o->prompt_lp[i]));
        json_object_set_new(j, "prompt_logprobs", lp);
    }
    char *d = json_dumps(j, JSON_COMPACT);
    printf("%s\n", d ? d : "{}");
    free(d);
    json_decref(j);
}

/* ---------------------------------------------------------------- command */

static serving_stack_opts stack_opts_for(const run_args *a)
{
    serving_stack_opts so = serving_stack_defaults();
    so.model_path = a->model_path;
    so.cache_dir = a->agent ? a->cache_dir : ""; /* without --agent nothing is written */
    so.cache_type = a->cache_type;
    so.kv_type = a->kv_type;
    so.ctx = a->ctx;
    so.threads = (int)a->threads;
    so.isa = a->isa;
    so.chat_template = a->chat_template;
    so.chat_template_file = a->chat_template_file;
    so.max_batch = 1;
    so.quiet = !isatty(2);
    return so;
}

int cmd_run(int argc, char **argv)
{
    run_args a;
    sem_err err = {0};
    int code = parse_args(argc, argv, &a);
    if (code != 0)
        return code;
    serving_stack_opts so = stack_opts_for(&a);
    serving_stack st;
    if (serving_stack_open(&st, &so, &err) != SEM_OK)
        return cli_fail("run", &err);
    run_out o = {0};
    double t0 = deadline_now_ms();
    sem_status s = prompt_tokens(&st, &a, &o.prompt, &o.n_prompt, &err);
    if (s == SEM_OK && a.echo_logprobs)
        s = score_prompt(&st, &a, o.prompt, o.n_prompt, &o.prompt_lp, &err);
    if (s == SEM_OK)
        s = generate(&st, &a, &o, &err);
    o.total_ms = deadline_now_ms() - t0;
    if (s == SEM_OK) {
        printf("\n");
        if (a.json)
            print_json(&o, &a);
    }
    free(o.prompt);
    free(o.gen);
    free(o.prompt_lp);
    free(o.text);
    serving_stack_close(&st, 10000); /* writes the agent's memory before exiting */
    return s == SEM_OK ? 0 : cli_fail("run", &err);
}
