/*
 * serving_stack.h - the serving stack the long-lived commands share: a model, its
 * backend (forward pass), the block pool, the warm store (the disk, and
 * under it a remote tier shared by several servers when --cache-remote is
 * given: adapters/store/tiered_store.h), the batching engine and the
 * prompt port. `serve` puts HTTP in front of it;
 * `run --agent` submits one request to it.
 *
 * Threads: built and torn down on the caller's thread; the engine and the
 * store then run their own threads (see their headers).
 */
#ifndef SEM_CLI_SERVING_STACK_H
#define SEM_CLI_SERVING_STACK_H

#include <stdint.h>

#include "adapters/model/model.h"
#include "adapters/model/model_backend.h"
#include "adapters/model/model_prompts.h"
#include "adapters/remote/redis_tier.h"
#include "adapters/store/disk_store.h"
#include "adapters/store/tiered_store.h"
#include "app/engine.h"

typedef struct serving_stack_opts {
    const char *model_path;
    const char *cache_dir;     /* NULL: the default (serving_stack_default_cache_dir); "" = no persistence */
    uint64_t pool_mb;          /* KV pool; 0: from the model: max_batch sequences of ctx
                                  tokens, at most half of MemAvailable, at least one */
    uint64_t pin_mb;           /* pool memory pins may hold; 0: half the pool */
    uint64_t disk_mb;          /* 0: unlimited */
    const char *cache_type;    /* on disk: f16, q8_0 (default), q4_0 */
    cache_kv_type kv_type;     /* in memory */
    uint32_t ctx;              /* tokens per sequence; 0: the model's, at most 4096; more
                                  than the model was trained for is refused (SEM_EINVAL) */
    uint32_t max_batch, chunk, max_queue;
    int threads;               /* 0: all cores */
    const char *isa;           /* NULL: best */
    const char *chat_template; /* a built-in's name; NULL: the model's */
    const char *chat_template_file; /* a Jinja template file to use instead (not with
                                       chat_template); one that does not parse is an error */
    const char *cache_remote;  /* a Redis URL (adapters/remote/redis_tier.h); NULL or "": no
                                  remote tier. Needs the disk tier (SEM_EINVAL without) */
    uint64_t remote_mb;        /* byte budget of the remote tier, MiB (0: none) */
    uint32_t remote_ttl_s;     /* remote keys expire this long after their last use (0: never) */
    uint32_t remote_drain_ms;  /* at close, time queued remote writes get to finish */
    int quiet;                 /* no log lines on stderr */
} serving_stack_opts;

serving_stack_opts serving_stack_defaults(void);

typedef struct serving_stack {
    model *m;
    model_backend *backend;
    block_pool *pool;
    disk_store *store;
    redis_tier *redis;      /* NULL: no remote tier */
    tiered_store *tiered;   /* the warm store over store and redis; NULL without redis */
    warm_store warm;
    engine *e;
    model_prompts *prompts;
    uint32_t ctx;
    sem_err template_warning; /* why the chat template is a fallback (status SEM_OK: it is not) */
    uint32_t remote_drain_ms;
    int pool_capped; /* the pool sized from the model was cut to half of MemAvailable */
    int store_borrowed; /* the warm store belongs to another stack (open_serving_from) */
    char cache_dir[4096];
} serving_stack;

sem_status serving_stack_open(serving_stack *s, const serving_stack_opts *o, sem_err *err);
/* serving_stack_open in two steps: the model, its backend and the pool
 * (the slow part, which touches no shared folder), then the warm store,
 * the engine and the prompts (which lock the cache folder). A reload
 * takes the first step beside the running stack and the second once the
 * old stack let go of the folder. On failure each step closes s. */
sem_status serving_stack_open_model(serving_stack *s, const serving_stack_opts *o, sem_err *err);
sem_status serving_stack_open_serving(serving_stack *s, const serving_stack_opts *o, sem_err *err);
/* The second step over the warm store of the running stack `from`, of
 * the same model (fingerprint and KV geometry; else SEM_EINVAL): both
 * engines use one store (disk_store and tiered_store are thread-safe;
 * an agent used on both is last writer wins, and a file is only used for
 * the prompt prefix it matches). The store then belongs to s: from must be
 * closed before s. On failure s is closed and from is untouched. */
sem_status serving_stack_open_serving_from(serving_stack *s, serving_stack *from,
                                           const serving_stack_opts *o, sem_err *err);
/* Memory the stack holds: the model file (mapped) and the KV pool, bytes. */
uint64_t serving_stack_ram_bytes(const serving_stack *s);
/* Drains (writing unsaved agent memory) and frees everything. */
void serving_stack_close(serving_stack *s, uint32_t drain_ms);

/* The remote tier's state, counters and queued writes; state REMOTE_OFF
 * and zeros without one. Never blocks on the network. */
void serving_stack_remote_stats(const serving_stack *s, remote_stats *out, uint32_t *queued);

/* url with its password (and user) replaced by "***", for logs: a URL's
 * credentials are never logged. */
void serving_stack_redact_url(const char *url, char *out, size_t cap);

/* $XDG_DATA_HOME/semantic/cache, else $HOME/.local/share/semantic/cache. */
sem_status serving_stack_default_cache_dir(char *out, size_t cap, sem_err *err);

#endif
