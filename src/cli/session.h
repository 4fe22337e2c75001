/*
 * session.h - one model with one sequence's KV, for the commands that run a
 * single sequence (run, perplexity, bench).
 *
 * Threads: the caller's thread only.
 */
#ifndef SEM_CLI_SESSION_H
#define SEM_CLI_SESSION_H

#include <stdint.h>

#include "adapters/kernels/cpu.h"
#include "adapters/model/forward.h"
#include "adapters/model/model.h"
#include "domain/block_table.h"

typedef struct session_opts {
    const char *model_path;
    uint32_t ctx;        /* 0: the model's context, capped at SESSION_DEFAULT_CTX */
    uint32_t chunk;      /* prefill tokens per forward call */
    uint32_t block_tokens;
    int threads;         /* 0: all cores */
    const char *isa;     /* NULL: best available */
    cache_kv_type kv_type;
    int progress;        /* print loading progress to stderr */
} session_opts;

#define SESSION_DEFAULT_CTX 4096
#define SESSION_DEFAULT_CHUNK 512

typedef struct session {
    model *m;
    block_pool *pool;
    block_table *seq;
    forward_ctx *fc;
    float *logits;   /* [chunk][n_vocab] */
    uint32_t ctx;    /* tokens the sequence may hold */
    uint32_t n_vocab;
} session;

sem_status session_open(session *s, const session_opts *o, sem_err *err);
void session_close(session *s);

/* Reads the common flags' defaults: SESSION_DEFAULT_CHUNK, 256-token blocks, f16. */
session_opts session_defaults(void);

#endif
