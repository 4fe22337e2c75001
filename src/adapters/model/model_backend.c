/*
 * model_backend.c - model_port over model + forward_ctx.
 */
#include "model_backend.h"

#include <string.h>

#include <stdlib.h>

struct model_backend {
    const model *m;
    forward_ctx *fc;
    uint32_t n_ctx;
};

static sem_status be_forward(void *self, model_port_seq *seqs, uint32_t n, sem_err *err)
{
    model_backend *b = self;
    return forward_run(b->fc, seqs, n, err);
}

static uint32_t be_n_vocab(void *self)
{
    return model_hparams_of(((model_backend *)self)->m)->n_vocab;
}

static uint32_t be_max_batch(void *self) { return forward_max_tokens(((model_backend *)self)->fc); }
static uint32_t be_n_ctx(void *self) { return ((model_backend *)self)->n_ctx; }

static int be_is_eog(void *self, int32_t token)
{
    return tokenizer_is_eog(model_tokenizer(((model_backend *)self)->m), token);
}

static int be_spaces_marked(void *self)
{
    return strcmp(tokenizer_kind(model_tokenizer(((model_backend *)self)->m)), "spm") == 0;
}

static int be_is_control(void *self, int32_t token)
{
    const tokenizer *tk = model_tokenizer(((model_backend *)self)->m);
    if (token < 0 || (size_t)token >= tokenizer_n_vocab(tk))
        return 0;
    return (tokenizer_token_attr(tk, token) & TOKEN_ATTR_CONTROL) != 0;
}

static const char *be_piece(void *self, int32_t token, size_t *len)
{
    const tokenizer *tk = model_tokenizer(((model_backend *)self)->m);
    if (token < 0 || (size_t)token >= tokenizer_n_vocab(tk))
        return NULL;
    return tokenizer_piece(tk, token, len);
}

static const model_port_ops backend_ops = {
    .forward = be_forward,
    .n_vocab = be_n_vocab,
    .max_batch_tokens = be_max_batch,
    .n_ctx = be_n_ctx,
    .is_eog = be_is_eog,
    .piece = be_piece,
    .is_control = be_is_control,
    .spaces_marked = be_spaces_marked,
};

model_backend *model_backend_create(const model *m, const forward_opts *opts, uint32_t n_ctx,
                                    sem_err *err)
{
    model_backend *b = calloc(1, sizeof *b);
    if (!b) {
        sem_err_set(err, SEM_ENOMEM, "model backend: out of memory");
        return NULL;
    }
    b->m = m;
    b->n_ctx = n_ctx ? n_ctx : model_hparams_of(m)->n_ctx_train;
    b->fc = forward_ctx_create(m, opts, err);
    if (!b->fc) {
        free(b);
        return NULL;
    }
    return b;
}

void model_backend_destroy(model_backend *b)
{
    if (!b)
        return;
    forward_ctx_destroy(b->fc);
    free(b);
}

model_port model_backend_port(model_backend *b) { return (model_port){&backend_ops, b}; }
