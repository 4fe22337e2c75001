/*
 * session.c - model, pool, sequence and forward context for one sequence.
 */
#include "cli.h"
#include "base/deadline.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

session_opts session_defaults(void)
{
    return (session_opts){.chunk = SESSION_DEFAULT_CHUNK,
                          .block_tokens = CACHE_SPEC_DEFAULT_BLOCK_TOKENS,
                          .kv_type = CACHE_KV_F16};
}

sem_status session_open(session *s, const session_opts *o, sem_err *err)
{
    *s = (session){0};
    double t0 = deadline_now_ms();
    if (o->progress)
        fprintf(stderr, "loading %s ...\n", o->model_path);
    s->m = model_load(o->model_path, err);
    if (!s->m)
        return err->status;
    const model_hparams *hp = model_hparams_of(s->m);
    s->n_vocab = hp->n_vocab;
    s->ctx = o->ctx;
    if (s->ctx == 0)
        s->ctx = hp->n_ctx_train < SESSION_DEFAULT_CTX ? hp->n_ctx_train : SESSION_DEFAULT_CTX;

    cpu_isa isa = cpu_isa_best();
    sem_status st;
    if ((st = cli_check_ctx(s->ctx, hp->n_ctx_train, o->model_path, err)) != SEM_OK)
        goto fail;
    if (o->isa && (st = cpu_isa_parse(o->isa, &isa, err)) != SEM_OK)
        goto fail;
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t chunk = o->chunk < s->ctx ? o->chunk : s->ctx;

    /* Room for ctx tokens on every layer, plus one chunk in flight. */
    cache_spec spec = model_cache_spec(s->m, o->block_tokens, o->kv_type);
    if ((st = cache_spec_validate(&spec, err)) != SEM_OK)
        goto fail;
    uint64_t per_layer = (s->ctx + chunk + o->block_tokens - 1) / o->block_tokens + 1;
    size_t bytes = (size_t)(per_layer * spec.n_layers) * ((cache_spec_block_bytes(&spec) + 63) / 64 * 64);
    s->pool = block_pool_create(&spec, bytes, err);
    if (!s->pool)
        goto fail_status;
    s->seq = block_table_create(s->pool, "session", err);
    if (!s->seq)
        goto fail_status;
    forward_opts fo = {.n_threads = threads, .isa = isa, .max_tokens = chunk};
    s->fc = forward_ctx_create(s->m, &fo, err);
    if (!s->fc)
        goto fail_status;
    s->logits = malloc((size_t)chunk * s->n_vocab * sizeof *s->logits);
    if (!s->logits) {
        sem_err_set(err, SEM_ENOMEM, "out of memory for logits of %u tokens", chunk);
        goto fail_status;
    }
    if (o->progress)
        fprintf(stderr, "loaded %s in %.0f ms (%s, %d threads, %s kernels)\n", model_name(s->m),
                deadline_now_ms() - t0, model_arch_of(s->m)->name, threads, cpu_isa_name(isa));
    return SEM_OK;
fail_status:
    st = err->status;
fail:
    session_close(s);
    return st;
}

void session_close(session *s)
{
    free(s->logits);
    forward_ctx_destroy(s->fc);
    block_table_destroy(s->seq);
    block_pool_destroy(s->pool);
    model_free(s->m);
    *s = (session){0};
}
