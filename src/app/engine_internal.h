/*
 * engine_internal.h - the engine's own structures, shared by its files:
 *
 *   engine.c          the scheduler loop, admission and batches
 *   engine_request.c  request objects and the generation port
 *   engine_agents.c   agents, the anonymous cache, reclaiming, the agent
 *                     store port
 *   engine_io.c       the I/O thread: saves, loads, removals, touches
 *
 * Nothing here is used outside src/app/engine*.c.
 */
#ifndef SEM_ENGINE_INTERNAL_H
#define SEM_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine.h"
#include "base/deadline.h"
#include "sampler.h"
#include "stop_strings.h"
#include "domain/block_table.h"
#include "base/sem_mutex.h"
#include "base/strbuf.h"
#include "base/thread_mark.h"

#define AGENT_BUCKETS 1024

typedef struct agent agent;
typedef struct io_job io_job;
typedef struct engine_msg engine_msg;

typedef enum req_phase {
    PHASE_WAITING,
    PHASE_LOADING, /* admitted; its agent's KV is being read from disk */
    PHASE_PREFILL,
    PHASE_DECODE,
    PHASE_DONE
} req_phase;

struct gen_request {
    engine *e;
    atomic_int refs;         /* the caller's and, until finished, the engine's */
    atomic_int cancel;
    /* Immutable after submit. */
    char agent_id[WARM_KEY_MAX + 1]; /* "" for anonymous */
    char scope[GEN_SCOPE_MAX + 1];   /* anonymous prefix reuse happens within it */
    int32_t *prompt;         /* [n_prompt] */
    uint32_t n_prompt;
    sampler_params sp;
    uint32_t max_tokens;
    int prefill_only;
    stop_set stops;
    double t_submit;
    /* Engine thread only. */
    gen_request *next;       /* inbox / waiting list */
    req_phase phase;
    agent *ag;               /* NULL for anonymous */
    block_table *kv;         /* the agent's table or the request's own */
    sampler *smp;
    uint32_t n_evaluated;    /* prompt tokens with KV */
    uint32_t limit;          /* tokens the sequence may reach */
    uint64_t peak_blocks;    /* blocks reserved for the sequence at its limit */
    int32_t pending;         /* sampled token not yet evaluated, or -1 */
    uint32_t n_gen;
    int32_t *gen;            /* [max_tokens] generated tokens */
    char utf8_tail[8];       /* bytes of an incomplete UTF-8 character */
    size_t tail_len;
    size_t scan_from;        /* stop strings cannot begin before this */
    int32_t stop_index;      /* the stop string that ended the request, or -1 */
    double t_admit, t_first;
    /* Shared with readers, guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    strbuf text;             /* generated text */
    size_t visible;          /* bytes readers may see */
    size_t read_pos;         /* bytes the reader has taken */
    int finished;
    gen_result result;
    void (*notify)(void *user); /* called under lock; cleared by release */
    void *notify_user;
};

/*
 * An agent's states and the moves between them (engine thread only):
 *
 *            admit                      load needed
 *   IDLE ────────────▶ RUNNING ──────────────────────▶ LOADING
 *    ▲ │  ◀────────────   │ ▲  ◀──────────────────────    │
 *    │ │  request done,   │ │        load done            │
 *    │ │  failed, or no   │ └─────────────────────────────┘
 *    │ │  room after all  │
 *    │ │ save dispatched (write-behind, LRU reclaim, evict)
 *    │ └──────────────────▶ SAVING
 *    └──────────────────────┘ save done, failed or stopped
 *
 * Only an IDLE agent is saved, reclaimed or freed at once. A removal in
 * another state marks it doomed; the end of that state frees it. A
 * request of the agent that arrives while it is SAVING sets save_stop and
 * waits for IDLE. agent_set_state() asserts every move (debug builds).
 */
typedef enum agent_state {
    AGENT_IDLE,
    AGENT_RUNNING,           /* a request of the agent is admitted */
    AGENT_SAVING,            /* the I/O thread is reading its table */
    AGENT_LOADING,           /* the I/O thread is building its table */
} agent_state;

struct agent {
    char key[WARM_KEY_MAX + 1];
    block_table *kv;         /* hot KV, or NULL */
    agent_state state;
    int dirty;               /* hot KV newer than the file */
    int warm;                /* a file exists */
    int doomed;              /* removed: free when the current operation ends */
    int evict_after_save;    /* drop the hot KV once the save succeeds */
    atomic_int save_stop;    /* set by the engine thread when a request wants
                                the agent back while it is SAVING; read by
                                the I/O thread's save */
    double save_due;         /* monotonic ms when a write-behind save is due; 0: none */
    uint32_t warm_tokens;
    uint64_t warm_bytes;
    int64_t last_use_ms;     /* unix ms */
    uint64_t last_step;      /* engine step of the last use (LRU) */
    uint64_t hits, tokens_saved;
    agent *next;             /* hash chain */
    engine_msg *io_done;     /* the report of its save or load: there is one at a
                                time, dispatched while IDLE and handled before
                                the agent leaves SAVING or LOADING */
};

/* An anonymous sequence kept for prefix reuse. */
typedef struct anon_seq {
    block_table *kv;
    char scope[GEN_SCOPE_MAX + 1]; /* of the request that left it */
    uint64_t last_step;
} anon_seq;

typedef enum io_kind { IO_SAVE, IO_LOAD, IO_REMOVE, IO_TOUCH } io_kind;

struct io_job {
    io_kind kind;
    agent *ag;               /* SAVE / LOAD */
    char key[WARM_KEY_MAX + 1];
    uint32_t saved;          /* TOUCH */
    io_job *next;
};

typedef enum msg_kind { MSG_IO_DONE, MSG_CALL } msg_kind;

/* Messages to the engine thread (besides new requests). */
struct engine_msg {
    msg_kind kind;
    /* MSG_IO_DONE */
    io_kind io;
    agent *ag;
    sem_status status;
    sem_err err;
    block_table *loaded;
    /* MSG_CALL: fn runs on the engine thread; the caller waits on done. */
    void (*fn)(engine *e, void *arg);
    void *arg;
    int done;
    engine_msg *next;
};

struct engine {
    model_port mp;
    block_pool *pool;
    const cache_spec *spec;
    engine_opts o;
    uint32_t n_vocab;
    pthread_t thread, io_thread;

    sem_mutex inbox;         /* guards the fields up to `stats`, and msg->done */
    pthread_cond_t wake;     /* the engine thread waits on it */
    pthread_cond_t called;   /* callers of engine_call wait on it */
    gen_request *inbox_head, *inbox_tail;
    engine_msg *msg_head, *msg_tail;
    int stop, draining;
    uint32_t n_pending;      /* submitted, not yet admitted */
    engine_stats stats;

    pthread_mutex_t io_lock; /* guards the I/O queue */
    pthread_cond_t io_wake;
    io_job *io_head, *io_tail;
    int io_stop;
    uint32_t io_busy;        /* jobs queued or running */

    /* The engine thread (the creator until it starts, the destroyer after
     * it ends); fields below are its alone. */
    thread_mark owner;
    gen_request *wait_head, *wait_tail;
    gen_request **running;   /* [max_batch] in admission order */
    uint32_t n_running;
    agent *agents[AGENT_BUCKETS];
    uint32_t n_agents;
    anon_seq *anon;          /* [anon_keep] */
    uint32_t n_anon;
    uint64_t step;
    model_port_seq *batch;   /* [max_batch] */
    gen_request **batch_req;
    float *logits;           /* [max_batch][n_vocab] */
};

/* engine.c */
void engine_log(engine *e, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void engine_wake(engine *e);
/* Runs fn(e, arg) on the engine thread and waits for it. */
void engine_call(engine *e, void (*fn)(engine *e, void *arg), void *arg);

/* engine_request.c */
void request_unref(gen_request *r);
void request_finish(engine *e, gen_request *r, gen_finish why, const sem_err *error);
void request_fail(engine *e, gen_request *r, sem_status st, const sem_err *err);
void request_take_token(engine *e, gen_request *r, int32_t tok);

/* Asserts (debug builds) that the caller is the engine's owner thread. */
#define ENGINE_THREAD_ONLY(e) THREAD_MARK_ASSERT(&(e)->owner)

/* engine_agents.c */
/* Moves a from `from` (asserted) to `to`, a move the diagram above allows. */
void agent_set_state(agent *a, agent_state from, agent_state to);
/* Keeps in t the longest reusable prefix of r's prompt (up to the first
 * differing token, never the last prompt token unless prefill_only) and
 * sets r->n_evaluated; idempotent. */
sem_status agents_reuse_prefix(gen_request *r, block_table *t, sem_err *err);
agent *agents_find(engine *e, const char *key);
agent *agents_get(engine *e, const char *key, sem_err *err);
void agents_load_warm(engine *e);
void agents_free_all(engine *e);
int agents_make_room(engine *e, uint64_t need);
uint64_t agents_outstanding(const engine *e);
block_table *anon_take(engine *e, const gen_request *r, sem_err *err);
void anon_put(engine *e, block_table *t, const char *scope);
void agents_request_done(engine *e, agent *a, uint32_t cached);
void agents_due_saves(engine *e, int all);
double agents_next_due(engine *e);
void agents_io_done(engine *e, engine_msg *m);
void agents_publish(engine *e, engine_stats *s);

/* engine_io.c */
sem_status io_start(engine *e, sem_err *err);
void io_stop(engine *e); /* finishes queued jobs; later pushes run inline */
void io_free(engine *e);
void io_push(engine *e, io_kind kind, agent *a, const char *key, uint32_t saved);
uint32_t io_busy(engine *e);

#endif
