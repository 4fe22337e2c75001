/*
 * model_port.h - the model as the generation engine sees it.
 *
 * The engine batches sequences and samples tokens; it does not know GGUF,
 * kernels or tokenizers. This port gives it the few things it needs: one
 * batched forward pass over sequences whose KV lives in block tables, the
 * vocabulary size, which tokens end generation, and each token's text.
 *
 * Threads: forward() is called by the engine thread only (one call at a
 * time). The other operations are read-only and may be called from any
 * thread.
 */
#ifndef SEM_MODEL_PORT_H
#define SEM_MODEL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "domain/block_table.h"
#include "domain/status.h"

/* One sequence of a batch: the last n_new tokens of kv are evaluated (their
 * K/V written into its blocks) and logits of the last n_logits returned. */
typedef struct model_port_seq {
    block_table *kv;
    uint32_t n_new;
    uint32_t n_logits;
    float *logits; /* [n_logits][n_vocab] */
} model_port_seq;

typedef struct model_port_ops {
    sem_status (*forward)(void *self, model_port_seq *seqs, uint32_t n_seqs, sem_err *err);
    uint32_t (*n_vocab)(void *self);
    /* Most tokens one forward call may evaluate (sum over sequences). */
    uint32_t (*max_batch_tokens)(void *self);
    /* Longest sequence the model supports. */
    uint32_t (*n_ctx)(void *self);
    int (*is_eog)(void *self, int32_t token);
    /* Bytes of the token's text (special tokens rendered); NULL if invalid. */
    const char *(*piece)(void *self, int32_t token, size_t *len);
    /* 1 for control tokens (turn markers and the like); may be NULL: none. */
    int (*is_control)(void *self, int32_t token);
    /* 1 when the vocabulary writes a space as U+2581 (SentencePiece); may
     * be NULL: it does not. */
    int (*spaces_marked)(void *self);
} model_port_ops;

typedef struct model_port {
    const model_port_ops *ops;
    void *self;
} model_port;

#endif
