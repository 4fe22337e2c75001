/*
 * generation_port.h - text generation as the services (HTTP routes, CLI)
 * see it: submit a request, read its text as it streams, cancel it, get
 * its result. One implementation: the batching engine (app/engine.h).
 *
 * A request is a handle owned by the caller until released; the
 * generator keeps its own reference while it works on it, so releasing
 * early is safe (the request is cancelled if still running).
 *
 * Threads: every operation may be called from any thread. Reading one
 * request from two threads at once is not supported.
 */
#ifndef SEM_GENERATION_PORT_H
#define SEM_GENERATION_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

/* Sampling parameters; see app/sampler.h for their meaning. */
typedef struct gen_sampling {
    float temperature, top_p, min_p;
    uint32_t top_k;
    float repeat_penalty, presence_penalty, frequency_penalty;
    uint32_t repeat_last_n;
    uint64_t seed;
} gen_sampling;

#define GEN_AGENT_ID_MAX 128
#define GEN_SCOPE_MAX 32
#define GEN_PINS_MAX 4

/* A cache breakpoint: keep the KV of the prompt's first `tokens` tokens
 * from reclaim for ttl_s seconds after the request (Anthropic's
 * cache_control). */
typedef struct gen_pin {
    uint32_t tokens;  /* 1..n_prompt */
    uint32_t ttl_s;   /* > 0 */
} gen_pin;


typedef struct gen_params {
    const char *agent_id;         /* NULL: anonymous (never persisted) */
    /* Anonymous requests reuse the KV of earlier anonymous requests of the
     * same scope only (the HTTP server passes the API key's namespace, so
     * one key's prompts are never reused, nor their reuse observable, by
     * another). NULL is the empty scope; at most GEN_SCOPE_MAX bytes. */
    const char *scope;
    const int32_t *prompt;        /* copied at submit */
    uint32_t n_prompt;
    gen_sampling sampling;
    uint32_t max_tokens;          /* 0 with prefill_only */
    const char *const *stop;      /* copied at submit */
    size_t n_stop;
    int prefill_only;             /* compute the prompt's KV, generate nothing */
    /*
     * Constrained decoding: the text of a grammar (app/grammar.h gives the
     * dialect, rule "root" is the start). Every generated token keeps the
     * output a prefix of a sentence of the grammar; an end-of-generation
     * token is allowed only where the sentence may end, and the request
     * ends (GEN_STOP) once the grammar admits nothing more. NULL: free.
     * Copied at submit; a grammar that does not parse fails the submit
     * with SEM_EREQUEST.
     */
    const char *grammar;
    /*
     * Lazy grammar: with triggers, the output is free until one of these
     * strings appears in it; from the trigger's first byte on, the output
     * must follow the grammar (whose sentences therefore start with the
     * trigger). A trigger that starts with '^' counts only at the start of
     * the output (after leading whitespace), without the '^'. Copied at
     * submit.
     */
    const char *const *grammar_triggers;
    size_t n_grammar_triggers;
    /* Log probabilities of the chosen tokens (read with logprobs()), with
     * top_logprobs (0..GEN_TOP_LOGPROBS_MAX) most likely alternatives each.
     * Off (0) costs nothing. */
    int logprobs;
    uint32_t top_logprobs;
    /* Cache breakpoints, up to GEN_PINS_MAX, in any order. The prefix each
     * names is kept hot (its blocks shared, never copied) until its TTL
     * ends, within the pin budget (beyond it a breakpoint is skipped), and
     * reused by any later request of the same scope or agent namespace
     * whose prompt starts with it. */
    gen_pin pins[GEN_PINS_MAX];
    uint32_t n_pins;
    /*
     * Called on the generator's thread whenever new text is readable and
     * once when the request finishes, so that a reader need not wait in
     * read(): it reads what is there and sleeps until notified. It runs
     * under the request's lock: it must be cheap, must not block and must
     * not call this port (it may only wake the reader, which then reads).
     * A notification may find nothing new to read. After release() returns
     * it is never called again, so notify_user may be freed then. May be
     * NULL.
     */
    void (*notify)(void *user);
    void *notify_user;
} gen_params;

typedef enum gen_finish {
    GEN_RUNNING = 0,
    GEN_STOP,      /* end-of-generation token or stop string */
    GEN_LENGTH,    /* max_tokens or the context limit */
    GEN_CANCELLED,
    GEN_ERROR,
} gen_finish;

typedef struct gen_result {
    gen_finish finish;
    sem_err error;              /* when finish == GEN_ERROR */
    uint32_t prompt_tokens;
    uint32_t cached_tokens;     /* prompt tokens whose KV was reused */
    uint32_t completion_tokens;
    int32_t stop_index;         /* GEN_STOP by a stop string: its index in gen_params.stop;
                                   -1 otherwise (end-of-generation token) */
    double queue_ms;            /* submit to admission */
    double ttft_ms;             /* submit to first token (0 if none) */
    double total_ms;            /* submit to finish */
} gen_result;

#define GEN_TOP_LOGPROBS_MAX 20

/* One generated token's log probability (natural log, after penalties,
 * before temperature and truncation) and the most likely alternatives. */
typedef struct gen_logprob {
    int32_t token;
    float logprob;
    uint32_t n_top;
    struct {
        int32_t token;
        float logprob;
    } top[GEN_TOP_LOGPROBS_MAX];
} gen_logprob;

typedef struct gen_request gen_request;

typedef struct generation_port_ops {
    sem_status (*submit)(void *self, const gen_params *p, gen_request **out, sem_err *err);
    /*
     * Copies up to cap bytes of text not read yet into buf (*n bytes; whole
     * UTF-8 characters, stop strings removed). Waits up to timeout_ms (-1:
     * forever) while there is none and the request runs. Returns 1 once the
     * request has finished and every byte was read.
     */
    int (*read)(void *self, gen_request *r, char *buf, size_t cap, size_t *n, int timeout_ms);
    void (*cancel)(void *self, gen_request *r);
    /* The result; finish == GEN_RUNNING until the request is done. */
    gen_result (*result)(void *self, gen_request *r);
    /* Generated token ids so far (copied into a malloc'd array). */
    sem_status (*tokens)(void *self, gen_request *r, int32_t **out, uint32_t *n, sem_err *err);
    void (*release)(void *self, gen_request *r);
    /*
     * Log probabilities of generated tokens from..from+cap-1 (requests
     * submitted with logprobs) into out; returns how many there
     * are (0 for a request without logprobs). Tokens whose text is not
     * readable yet may be included.
     */
    uint32_t (*logprobs)(void *self, gen_request *r, uint32_t from, gen_logprob *out, uint32_t cap);
} generation_port_ops;

typedef struct generation_port {
    const generation_port_ops *ops;
    void *self;
} generation_port;

/* "stop", "length", "cancelled", "error" or "running". */
static inline const char *gen_finish_name(gen_finish f)
{
    switch (f) {
    case GEN_STOP: return "stop";
    case GEN_LENGTH: return "length";
    case GEN_CANCELLED: return "cancelled";
    case GEN_ERROR: return "error";
    default: return "running";
    }
}

#endif
