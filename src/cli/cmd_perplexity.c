/*
 * cmd_perplexity.c - `semantic perplexity -m MODEL -f TEXT_FILE [-c CTX]`.
 *
 * The text is tokenized once (without BOS) and cut into non-overlapping
 * windows of CTX tokens; when the model adds BOS, each window starts with
 * BOS followed by CTX - 1 text tokens. Every token after the first of a
 * window is scored with the log-probability the model gave it; the
 * perplexity is exp(mean negative log-probability) over all scored tokens.
 * This is the tool for measuring what weight or KV quantization costs.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"
#include "session.h"

typedef struct ppl_state {
    const int32_t *win; /* the window's tokens */
    uint32_t n;
    uint32_t n_vocab;
    double nll;
    uint64_t count;
} ppl_state;

static void score(void *user, uint32_t pos, const float *logits)
{
    ppl_state *p = user;
    if (pos + 1 < p->n) {
        p->nll -= eval_logprob(logits, p->n_vocab, p->win[pos + 1]);
        p->count++;
    }
}

typedef struct kv_diff {
    double kl;       /* sum of KL(f16 || other) */
    double max_diff; /* largest |logit difference| */
    uint64_t agree, count;
} kv_diff;

static void compare_rows(const float *a, const float *b, uint32_t V, kv_diff *d)
{
    float ma = a[0], mb = b[0];
    uint32_t ta = 0, tb = 0;
    for (uint32_t v = 1; v < V; v++) {
        if (a[v] > ma) {
            ma = a[v];
            ta = v;
        }
        if (b[v] > mb) {
            mb = b[v];
            tb = v;
        }
    }
    double sa = 0, sb = 0;
    for (uint32_t v = 0; v < V; v++) {
        sa += exp((double)a[v] - ma);
        sb += exp((double)b[v] - mb);
        double diff = fabs((double)a[v] - b[v]);
        d->max_diff = diff > d->max_diff ? diff : d->max_diff;
    }
    double la = log(sa), lb = log(sb), kl = 0;
    for (uint32_t v = 0; v < V; v++) {
        double lpa = a[v] - ma - la, lpb = b[v] - mb - lb;
        kl += exp(lpa) * (lpa - lpb);
    }
    d->kl += kl;
    d->agree += ta == tb;
    d->count++;
}

/* Evaluates one window in both sessions, chunk by chunk. */
static sem_status compare_window(session *a, session *b, const int32_t *win, uint32_t n,
                                 ppl_state *pa, ppl_state *pb, kv_diff *d, sem_err *err)
{
    uint32_t chunk = forward_max_tokens(a->fc);
    block_table_clear(a->seq);
    block_table_clear(b->seq);
    for (uint32_t done = 0; done < n; done += chunk) {
        uint32_t k = n - done < chunk ? n - done : chunk;
        sem_status st = eval_tokens(a->fc, a->seq, win + done, k, 1, a->logits, a->n_vocab,
                                    score, pa, err);
        if (st == SEM_OK)
            st = eval_tokens(b->fc, b->seq, win + done, k, 1, b->logits, b->n_vocab, score, pb,
                             err);
        if (st != SEM_OK)
            return st;
        for (uint32_t j = 0; j < k; j++)
            if (done + j + 1 < n)
                compare_rows(a->logits + (size_t)j * a->n_vocab, b->logits + (size_t)j * b->n_vocab,
                             a->n_vocab, d);
    }
    return SEM_OK;
}

static void usage(void)
{
    printf("usage: semantic perplexity -m MODEL -f TEXT_FILE [-c CTX] [-t THREADS] "
                    "[--kv-type f16|q8_0] [--kv-compare] [--isa NAME]\n"
                    "  -c CTX         window length in tokens (default 512)\n"
                    "  --kv-compare   also run with f16 KV and report KL divergence against it\n");
}

enum { O_KV = 256, O_ISA, O_CMP };

int cmd_perplexity(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"ctx", required_argument, 0, 'c'},   {"threads", required_argument, 0, 't'},
        {"kv-type", required_argument, 0, O_KV}, {"isa", required_argument, 0, O_ISA},
        {"kv-compare", no_argument, 0, O_CMP},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    session_opts so = session_defaults();
    const char *file = NULL;
    uint32_t ctx = 512, threads = 0;
    int compare = 0;
    sem_err err = {0};
    sem_status st = SEM_OK;
    int c;
    optind = 1;
    opterr = 0;
    while (st == SEM_OK && (c = getopt_long(argc, argv, ":m:f:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': so.model_path = optarg; break;
        case 'f': file = optarg; break;
        case 'c': st = cli_parse_u32("-c", optarg, 2, 1u << 20, &ctx, &err); break;
        case 't': st = cli_parse_u32("-t", optarg, 1, 1024, &threads, &err); break;
        case O_KV: st = cache_kv_type_parse(optarg, &so.kv_type, &err); break;
        case O_ISA: so.isa = optarg; break;
        case O_CMP: compare = 1; break;
        case 'h': usage(); return 0;
        default: return cli_option_error("perplexity", c, argc, argv);
        }
    }
    if (st != SEM_OK)
        return cli_usage_fail("perplexity", &err);
    if (!so.model_path)
        return cli_usage_error("perplexity", "-m MODEL is required");
    if (!file)
        return cli_usage_error("perplexity", "-f TEXT_FILE is required");
    if (optind != argc)
        return cli_usage_error("perplexity", "unexpected argument '%s'", argv[optind]);
    so.ctx = ctx;
    so.threads = (int)threads;
    so.progress = isatty(2);

    char *text = NULL;
    size_t len = 0;
    if (cli_read_file(file, &text, &len, &err) != SEM_OK)
        return cli_fail("perplexity", &err);
    session s, base = {0};
    session_opts bo = so;
    bo.kv_type = CACHE_KV_F16;
    if (session_open(&s, &so, &err) != SEM_OK ||
        (compare && session_open(&base, &bo, &err) != SEM_OK)) {
        free(text);
        session_close(&s);
        return cli_fail("perplexity", &err);
    }
    const tokenizer *tk = model_tokenizer(s.m);
    int32_t *toks = NULL;
    size_t n = 0;
    st = tokenizer_encode(tk, text, len, 0, 0, &toks, &n, &err);
    free(text);
    int bos = tokenizer_add_bos(tk) && tokenizer_bos(tk) >= 0;
    uint32_t body = ctx - (uint32_t)bos; /* text tokens per window */
    int32_t *win = malloc(ctx * sizeof *win);
    ppl_state p = {.win = win, .n_vocab = s.n_vocab}, pb = {.win = win, .n_vocab = s.n_vocab};
    kv_diff diff = {0};
    uint64_t windows = 0;
    if (st == SEM_OK && !win)
        st = sem_err_set(&err, SEM_ENOMEM, "out of memory");
    if (st == SEM_OK && n < body)
        st = sem_err_set(&err, SEM_EINVAL, "the text has %zu tokens, fewer than one window of %u",
                         n, body);
    for (size_t at = 0; st == SEM_OK && at + body <= n; at += body) {
        if (bos)
            win[0] = tokenizer_bos(tk);
        memcpy(win + bos, toks + at, body * sizeof *win);
        p.n = pb.n = ctx;
        block_table_clear(s.seq);
        if (compare)
            st = compare_window(&base, &s, win, ctx, &pb, &p, &diff, &err);
        else
            st = eval_tokens(s.fc, s.seq, win, ctx, 1, s.logits, s.n_vocab, score, &p, &err);
        windows++;
        if (st == SEM_OK && isatty(2))
            fprintf(stderr, "\rwindow %llu: running perplexity %.4f", (unsigned long long)windows,
                    exp(p.nll / (double)p.count));
    }
    if (isatty(2))
        fprintf(stderr, "\n");
    if (st == SEM_OK)
        printf("perplexity: %.4f over %llu tokens in %llu windows of %u\n",
               exp(p.nll / (double)p.count), (unsigned long long)p.count,
               (unsigned long long)windows, ctx);
    if (st == SEM_OK && compare)
        printf("kv %s vs f16: perplexity %.4f vs %.4f, mean KL %.6f, max |dlogit| %.4f, "
               "top-1 agreement %.2f%% over %llu positions\n",
               cache_kv_type_name(so.kv_type), exp(p.nll / (double)p.count),
               exp(pb.nll / (double)pb.count), diff.kl / (double)diff.count, diff.max_diff,
               100.0 * (double)diff.agree / (double)diff.count, (unsigned long long)diff.count);
    free(win);
    free(toks);
    session_close(&s);
    if (compare)
        session_close(&base);
    return st == SEM_OK ? 0 : cli_fail("perplexity", &err);
}
