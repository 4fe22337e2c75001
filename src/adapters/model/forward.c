/*
 * forward.c - one batched forward pass: embeddings, transformer blocks,
 * logits. The order of the code follows the order of the computation.
 *
 * Per-architecture differences come from model_arch_info flags: biases,
 * Q/K norms, post-norms, embedding scale, GELU or SiLU, dense FFN or
 * experts, and which layers slide.
 */
#include "forward.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/kernels/attention.h"
#include "adapters/kernels/ops.h"
#include "adapters/kernels/thread_pool.h"
#include "adapters/kernels/vec.h"

#define LOGIT_CHUNK 32 /* rows of logits computed per output matmul */

struct forward_ctx {
    const model *m;
    const model_hparams *hp;
    const model_arch_info *arch;
    thread_pool *tp;
    matmul_ctx *mm;
    const vec_ops *vo;
    cpu_isa isa;
    uint32_t max_tokens;
    uint32_t n_ffn; /* widest feed-forward hidden size */

    /* The wave of activations, T = tokens in the call (<= max_tokens). */
    float *x;    /* [T][n_embd] residual stream */
    float *xn;   /* [T][n_embd] normed input of a sublayer */
    float *q;    /* [T][n_head][head_dim_k] */
    float *k;    /* [T][n_head_kv][head_dim_k] */
    float *v;    /* [T][n_head_kv][head_dim_v] */
    float *att;  /* [T][n_head][head_dim_v] */
    float *out;  /* [T][n_embd] sublayer output */
    float *ga;   /* [T][n_ffn] gate activations */
    float *up;   /* [T][n_ffn] up projections */
    /* Experts. */
    float *router;    /* [T][n_expert] */
    int32_t *sel;     /* [T][n_expert_used] chosen experts */
    float *sel_w;     /* [T][n_expert_used] their weights */
    float *xe;        /* [T][n_embd] inputs routed to one expert */
    float *ye;        /* [T][n_embd] that expert's outputs */
    uint32_t *rows;   /* [T] token index of each routed row */
    float *row_w;     /* [T] routing weight of each routed row */
    /* Per token. */
    const block_table **seq_kv; /* [T] */
    uint32_t *pos;              /* [T] */
    float *rope_g;              /* [T][n_rot / 2][2] global layers */
    float *rope_s;              /* [T][n_rot / 2][2] sliding layers */
    float *inv_freq_g;          /* [n_rot / 2] */
    float *inv_freq_s;          /* [n_rot / 2] */
    /* Per thread. */
    float *scores; /* [n_threads][scores_per_thread]: attention scratch */
    size_t scores_per_thread;
    uint32_t *tile_t0, *tile_n; /* [n_tiles]: attention's query tiles (first token, length) */
    /* Logits. */
    float *hid;    /* [LOGIT_CHUNK][n_embd] */
    float *logit;  /* [LOGIT_CHUNK][n_vocab] */
};

/* ---------------------------------------------------------------- setup */

/* 64-byte aligned scratch of n elements of `size` bytes; clears *ok on failure. */
static void *scratch(size_t n, size_t size, int *ok)
{
    void *p = aligned_alloc(64, (n * size + 63) / 64 * 64 + 64);
    if (!p)
        *ok = 0;
    return p;
}

forward_ctx *forward_ctx_create(const model *m, const forward_opts *opts, sem_err *err)
{
    if (!m || !opts || opts->max_tokens == 0 || opts->n_threads < 1) {
        sem_err_set(err, SEM_EINVAL, "forward: need a model, max_tokens >= 1 and threads >= 1");
        return NULL;
    }
    forward_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        sem_err_set(err, SEM_ENOMEM, "forward: out of memory");
        return NULL;
    }
    const model_hparams *hp = model_hparams_of(m);
    c->m = m;
    c->hp = hp;
    c->arch = model_arch_of(m);
    c->isa = opts->isa;
    c->max_tokens = opts->max_tokens;
    c->vo = vec_ops_for(opts->isa);
    if (!c->vo || cpu_isa_check(opts->isa, err) != SEM_OK) {
        if (!c->vo && err && err->status == SEM_OK)
            sem_err_set(err, SEM_EUNSUPPORTED, "forward: kernels '%s' cannot run on this CPU",
                        cpu_isa_name(opts->isa));
        goto fail;
    }
    c->tp = thread_pool_create(opts->n_threads, err);
    if (!c->tp)
        goto fail;
    size_t T = opts->max_tokens, E = hp->n_embd;
    size_t max_in = E;
    if ((size_t)hp->n_head * hp->head_dim_v > max_in)
        max_in = (size_t)hp->n_head * hp->head_dim_v;
    c->n_ffn = hp->n_ff;
    if (hp->n_ff_exp > c->n_ffn)
        c->n_ffn = hp->n_ff_exp;
    if (hp->n_ff_shexp > c->n_ffn)
        c->n_ffn = hp->n_ff_shexp;
    if (c->n_ffn > max_in)
        max_in = c->n_ffn;
    c->mm = matmul_ctx_create(opts->isa, T > LOGIT_CHUNK ? T : LOGIT_CHUNK, max_in, c->tp, err);
    if (!c->mm)
        goto fail;

    int ok = 1;
    size_t hq = (size_t)hp->n_head * hp->head_dim_k, hk = (size_t)hp->n_head_kv * hp->head_dim_k;
    size_t hv = (size_t)hp->n_head_kv * hp->head_dim_v, ho = (size_t)hp->n_head * hp->head_dim_v;
    size_t nx = hp->n_expert ? hp->n_expert : 1, nu = hp->n_expert_used ? hp->n_expert_used : 1;
    c->x = scratch(T * E, sizeof *c->x, &ok);
    c->xn = scratch(T * E, sizeof *c->xn, &ok);
    c->q = scratch(T * hq, sizeof *c->q, &ok);
    c->k = scratch(T * hk, sizeof *c->k, &ok);
    c->v = scratch(T * hv, sizeof *c->v, &ok);
    c->att = scratch(T * ho, sizeof *c->att, &ok);
    c->out = scratch(T * E, sizeof *c->out, &ok);
    c->ga = scratch(T * c->n_ffn, sizeof *c->ga, &ok);
    c->up = scratch(T * c->n_ffn, sizeof *c->up, &ok);
    c->router = scratch(T * nx, sizeof *c->router, &ok);
    c->sel = scratch(T * nu, sizeof *c->sel, &ok);
    c->sel_w = scratch(T * nu, sizeof *c->sel_w, &ok);
    c->xe = scratch(T * E, sizeof *c->xe, &ok);
    c->ye = scratch(T * E, sizeof *c->ye, &ok);
    c->rows = scratch(T, sizeof *c->rows, &ok);
    c->row_w = scratch(T, sizeof *c->row_w, &ok);
    c->seq_kv = calloc(T, sizeof *c->seq_kv);
    c->pos = scratch(T, sizeof *c->pos, &ok);
    c->rope_g = scratch(T * hp->n_rot, sizeof *c->rope_g, &ok);
    c->rope_s = scratch(T * hp->n_rot, sizeof *c->rope_s, &ok);
    c->inv_freq_g = scratch(hp->n_rot / 2 + 1, sizeof *c->inv_freq_g, &ok);
    c->inv_freq_s = scratch(hp->n_rot / 2 + 1, sizeof *c->inv_freq_s, &ok);
    c->scores_per_thread = attention_scratch_floats(hp->head_dim_k, hp->head_dim_v);
    c->tile_t0 = scratch(T, sizeof *c->tile_t0, &ok);
    c->tile_n = scratch(T, sizeof *c->tile_n, &ok);
    c->scores = scratch((size_t)opts->n_threads * c->scores_per_thread, sizeof *c->scores, &ok);
    c->hid = scratch((size_t)LOGIT_CHUNK * E, sizeof *c->hid, &ok);
    c->logit = scratch((size_t)LOGIT_CHUNK * hp->n_vocab, sizeof *c->logit, &ok);
    if (!ok || !c->seq_kv) {
        sem_err_set(err, SEM_ENOMEM, "forward: cannot allocate scratch for %zu tokens", T);
        goto fail;
    }
    ops_rope_inv_freq(c->inv_freq_g, hp->n_rot, hp->rope_base, model_rope_factors(m));
    ops_rope_inv_freq(c->inv_freq_s, hp->n_rot, hp->rope_base_swa, model_rope_factors(m));
    return c;
fail:
    forward_ctx_destroy(c);
    return NULL;
}

void forward_ctx_destroy(forward_ctx *c)
{
    if (!c)
        return;
    float *bufs[] = {c->x,      c->xn,    c->q,          c->k,          c->v,      c->att,
                     c->out,    c->ga,    c->up,         c->router,     c->sel_w,  c->xe,
                     c->ye,     c->row_w, c->rope_g,     c->rope_s,     c->scores, c->hid,
                     c->logit,  c->inv_freq_g, c->inv_freq_s};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c->sel);
    free(c->rows);
    free(c->pos);
    free(c->tile_t0);
    free(c->tile_n);
    free((void *)c->seq_kv);
    matmul_ctx_destroy(c->mm);
    thread_pool_destroy(c->tp);
    free(c);
}

uint32_t forward_max_tokens(const forward_ctx *c) { return c->max_tokens; }
cpu_isa forward_isa(const forward_ctx *c) { return c->isa; }
int forward_threads(const forward_ctx *c) { return thread_pool_size(c->tp); }

/* ---------------------------------------------------------------- checks */

static sem_status check_batch(const forward_ctx *c, const forward_seq *seqs, uint32_t n_seqs,
                              uint32_t *n_tokens, sem_err *err)
{
    const model_hparams *hp = c->hp;
    uint64_t total = 0;
    for (uint32_t s = 0; s < n_seqs; s++) {
        const forward_seq *fs = &seqs[s];
        if (!fs->kv || fs->n_new == 0 || fs->n_new > block_table_n_tokens(fs->kv) ||
            fs->n_logits > fs->n_new || (fs->n_logits && !fs->logits))
            return sem_err_set(err, SEM_EINVAL,
                               "forward: sequence %u: n_new %u, n_logits %u, table of %u tokens",
                               s, fs->n_new, fs->n_logits,
                               fs->kv ? block_table_n_tokens(fs->kv) : 0);
        const cache_spec *cs = block_pool_spec(block_table_pool(fs->kv));
        if (cs->n_layers != hp->n_layer || cs->n_kv_heads != hp->n_head_kv ||
            cs->k_head_dim != hp->head_dim_k || cs->v_head_dim != hp->head_dim_v)
            return sem_err_set(err, SEM_EINVAL,
                               "forward: sequence %u: KV geometry does not match the model", s);
        /* The first new token's window must still be held on every layer. */
        uint32_t p0 = block_table_n_tokens(fs->kv) - fs->n_new;
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            uint32_t w = cs->layers[l].window;
            uint32_t lo = (w && p0 + 1 > w) ? p0 + 1 - w : 0;
            if (block_table_block_for(fs->kv, l, lo) == UINT32_MAX)
                return sem_err_set(err, SEM_EINVAL,
                                   "forward: sequence %u: layer %u no longer holds position %u",
                                   s, l, lo);
        }
        total += fs->n_new;
    }
    if (total == 0 || total > c->max_tokens)
        return sem_err_set(err, SEM_EINVAL, "forward: batch of %llu tokens, limit %u",
                           (unsigned long long)total, c->max_tokens);
    *n_tokens = (uint32_t)total;
    return SEM_OK;
}

/* ---------------------------------------------------------------- steps */

static void embed(forward_ctx *c, const forward_seq *seqs, uint32_t n_seqs)
{
    const model_hparams *hp = c->hp;
    const float scale = c->arch->embd_scale ? sqrtf((float)hp->n_embd) : 1.0f;
    uint32_t t = 0;
    for (uint32_t s = 0; s < n_seqs; s++) {
        const block_table *kv = seqs[s].kv;
        uint32_t p0 = block_table_n_tokens(kv) - seqs[s].n_new;
        const int32_t *tok = block_table_tokens(kv);
        for (uint32_t i = 0; i < seqs[s].n_new; i++, t++) {
            uint32_t p = p0 + i;
            c->seq_kv[t] = kv;
            c->pos[t] = p;
            float *xt = c->x + (size_t)t * hp->n_embd;
            matmul_weight_row(model_tok_embd(c->m), (uint64_t)tok[p], xt);
            if (scale != 1.0f)
                for (uint32_t d = 0; d < hp->n_embd; d++)
                    xt[d] *= scale;
            size_t r = (size_t)t * hp->n_rot;
            ops_rope_angles(c->rope_g + r, c->inv_freq_g, hp->n_rot, (float)p, hp->rope_scale);
            ops_rope_angles(c->rope_s + r, c->inv_freq_s, hp->n_rot, (float)p, 1.0f);
        }
    }
}

static void norm_rows(float *y, const float *x, const float *w, uint32_t n_rows, uint32_t n,
                      float eps)
{
    for (uint32_t t = 0; t < n_rows; t++)
        ops_rmsnorm(y + (size_t)t * n, x + (size_t)t * n, w, n, eps);
}

static void add_bias(float *y, const float *b, uint32_t n_rows, uint32_t n)
{
    if (!b)
        return;
    for (uint32_t t = 0; t < n_rows; t++)
        for (uint32_t i = 0; i < n; i++)
            y[(size_t)t * n + i] += b[i];
}

/* Q/K norms, RoPE and the attention scale on this layer's projections. */
static void position_qk(forward_ctx *c, const layer_weights *w, int sliding, uint32_t T)
{
    const model_hparams *hp = c->hp;
    const uint32_t dk = hp->head_dim_k;
    const int halves = c->arch->rope == ROPE_HALVES;
    const float *angles = sliding ? c->rope_s : c->rope_g;
    for (uint32_t t = 0; t < T; t++) {
        const float *cs = angles + (size_t)t * hp->n_rot;
        for (uint32_t h = 0; h < hp->n_head; h++) {
            float *q = c->q + ((size_t)t * hp->n_head + h) * dk;
            if (w->q_norm)
                ops_rmsnorm(q, q, w->q_norm, dk, hp->rms_eps);
            ops_rope(q, cs, hp->n_rot, halves);
            for (uint32_t d = 0; d < dk; d++)
                q[d] *= hp->attn_scale;
        }
        for (uint32_t h = 0; h < hp->n_head_kv; h++) {
            float *k = c->k + ((size_t)t * hp->n_head_kv + h) * dk;
            if (w->k_norm)
                ops_rmsnorm(k, k, w->k_norm, dk, hp->rms_eps);
            ops_rope(k, cs, hp->n_rot, halves);
        }
    }
}

/* Writes each new token's K and V rows into its block on `layer`. */
static void store_kv(forward_ctx *c, uint32_t layer, uint32_t T)
{
    const model_hparams *hp = c->hp;
    for (uint32_t t = 0; t < T; t++) {
        const block_table *kv = c->seq_kv[t];
        block_pool *pool = block_table_pool(kv);
        const cache_spec *cs = block_pool_spec(pool);
        uint32_t p = c->pos[t], slot = p % cs->block_tokens;
        uint8_t *blk = block_pool_data(pool, block_table_block_for(kv, layer, p));
        for (uint32_t h = 0; h < hp->n_head_kv; h++) {
            const float *k = c->k + ((size_t)t * hp->n_head_kv + h) * hp->head_dim_k;
            const float *v = c->v + ((size_t)t * hp->n_head_kv + h) * hp->head_dim_v;
            uint8_t *kd = blk + cache_spec_k_offset(cs, h, slot);
            uint8_t *vd = blk + cache_spec_v_offset(cs, h, slot);
            if (cs->kv_type == CACHE_KV_Q8_0) {
                c->vo->quantize_q8_0(kd, k, hp->head_dim_k);
                c->vo->quantize_q8_0(vd, v, hp->head_dim_v);
            } else {
                c->vo->f32_to_f16((uint16_t *)kd, k, hp->head_dim_k);
                c->vo->f32_to_f16((uint16_t *)vd, v, hp->head_dim_v);
            }
        }
    }
}

typedef struct attn_job {
    forward_ctx *c;
    uint32_t layer, window, n_tiles;
    uint32_t heads; /* KV heads per item (runs of consecutive heads) */
    uint32_t split; /* parts each KV head's group of query heads is cut into (heads == 1) */
} attn_job;

/* Thread body: items (query tile, run of KV heads, part of their query
 * heads) are dealt round-robin to threads. */
static void attn_worker(void *arg, int ith, int nth)
{
    const attn_job *j = arg;
    forward_ctx *c = j->c;
    const model_hparams *hp = c->hp;
    const uint32_t group = hp->n_head / hp->n_head_kv;
    const uint32_t runs = (hp->n_head_kv + j->heads - 1) / j->heads;
    const size_t q_stride = (size_t)hp->n_head * hp->head_dim_k;
    const size_t o_stride = (size_t)hp->n_head * hp->head_dim_v;
    float *scratch = c->scores + (size_t)ith * c->scores_per_thread;
    uint64_t n_items = (uint64_t)j->n_tiles * runs * j->split;
    for (uint64_t i = (uint64_t)ith; i < n_items; i += (uint64_t)nth) {
        uint32_t part = (uint32_t)(i % j->split);
        uint64_t tr = i / j->split;
        uint32_t tile = (uint32_t)(tr / runs), kvh = (uint32_t)(tr % runs) * j->heads;
        uint32_t n_kv = hp->n_head_kv - kvh < j->heads ? hp->n_head_kv - kvh : j->heads;
        assert(j->split == 1 || j->heads == 1);
        uint32_t t = c->tile_t0[tile];
        uint32_t h0 = kvh * group + group * part / j->split;
        uint32_t h1 = kvh * group + group * (part + 1) / j->split;
        attention_args a = {.vo = c->vo, .kv = c->seq_kv[t], .layer = j->layer,
                            .window = j->window, .kv_head = kvh, .pos = c->pos[t]};
        attention_tile(&a, c->tile_n[tile], n_kv, n_kv > 1 ? group : h1 - h0,
                       c->q + (size_t)t * q_stride + (size_t)h0 * hp->head_dim_k, q_stride,
                       c->att + (size_t)t * o_stride + (size_t)h0 * hp->head_dim_v, o_stride,
                       scratch);
    }
}

/* Cuts the batch into query tiles: runs of consecutive positions of one
 * sequence (a prefill chunk), at most max_pos long; a decode token is a
 * tile of its own. Returns the number of tiles. */
static uint32_t query_tiles(forward_ctx *c, uint32_t T, uint32_t max_pos)
{
    uint32_t n = 0;
    for (uint32_t t = 0; t < T;) {
        uint32_t len = 1;
        while (t + len < T && len < max_pos && c->seq_kv[t + len] == c->seq_kv[t] &&
               c->pos[t + len] == c->pos[t] + len)
            len++;
        c->tile_t0[n] = t;
        c->tile_n[n] = len;
        n++;
        t += len;
    }
    return n;
}

static void attention_block(forward_ctx *c, uint32_t l, uint32_t T)
{
    const model_hparams *hp = c->hp;
    const layer_weights *w = model_layer(c->m, l);
    const uint32_t E = hp->n_embd;
    const int sliding = model_layer_is_sliding(c->m, l);

    norm_rows(c->xn, c->x, w->attn_norm, T, E, hp->rms_eps);
    matmul(c->mm, &w->wq, c->xn, T, c->q, w->wq.n_out);
    matmul(c->mm, &w->wk, c->xn, T, c->k, w->wk.n_out);
    matmul(c->mm, &w->wv, c->xn, T, c->v, w->wv.n_out);
    add_bias(c->q, w->bq, T, (uint32_t)w->wq.n_out);
    add_bias(c->k, w->bk, T, (uint32_t)w->wk.n_out);
    add_bias(c->v, w->bv, T, (uint32_t)w->wv.n_out);
    position_qk(c, w, sliding, T);
    store_kv(c, l, T);

    /* Whole groups of query heads, over as many positions as fit a tile,
     * share each K/V row read. When there are fewer (tile, KV head) items
     * than threads, as in a decode step of one sequence, an item takes a
     * run of KV heads so each thread reads one contiguous part of every
     * block; and when there are fewer tiles than threads and one KV head
     * (a one-sequence decode of a model with one KV head), groups are cut. */
    uint32_t group = hp->n_head / hp->n_head_kv;
    uint32_t max_pos = group >= ATTENTION_MAX_ROWS ? 1 : ATTENTION_MAX_ROWS / group;
    uint32_t n_tiles = query_tiles(c, T, max_pos), longest = 1;
    for (uint32_t i = 0; i < n_tiles; i++)
        longest = c->tile_n[i] > longest ? c->tile_n[i] : longest;
    uint32_t nth = (uint32_t)thread_pool_size(c->tp), split = 1;
    uint32_t fit = group * longest >= ATTENTION_MAX_ROWS ? 1 : ATTENTION_MAX_ROWS / (group * longest);
    uint32_t runs = (nth + n_tiles - 1) / n_tiles; /* runs of KV heads per tile */
    if (runs < (hp->n_head_kv + fit - 1) / fit)
        runs = (hp->n_head_kv + fit - 1) / fit;
    if (runs > hp->n_head_kv)
        runs = hp->n_head_kv;
    uint32_t heads = (hp->n_head_kv + runs - 1) / runs;
    uint32_t items = n_tiles * ((hp->n_head_kv + heads - 1) / heads);
    if (items < nth && heads == 1) /* a run of several heads takes whole groups */
        split = (nth + items - 1) / items < group ? (nth + items - 1) / items : group;
    /* a group larger than a tile holds is always cut */
    while ((group + split - 1) / split > ATTENTION_MAX_ROWS)
        split++;
    attn_job job = {.c = c, .layer = l, .window = sliding ? hp->sliding_window : 0,
                    .n_tiles = n_tiles, .heads = heads, .split = split};
    thread_pool_run(c->tp, attn_worker, &job);

    matmul(c->mm, &w->wo, c->att, T, c->out, E);
    if (w->post_attn_norm)
        norm_rows(c->out, c->out, w->post_attn_norm, T, E, hp->rms_eps);
    for (size_t i = 0; i < (size_t)T * E; i++)
        c->x[i] += c->out[i];
}

typedef struct gate_job {
    const forward_ctx *c;
    float *g;
    const float *u;
    size_t n;
} gate_job;

/* Thread body: an equal slice of the elements each (elementwise, so the
 * results do not depend on the split). */
static void gate_worker(void *arg, int ith, int nth)
{
    const gate_job *j = arg;
    size_t i0 = j->n * (size_t)ith / (size_t)nth, i1 = j->n * ((size_t)ith + 1) / (size_t)nth;
    if (j->c->arch->act == FFN_GELU)
        ops_gelu_mul(j->g + i0, j->u + i0, i1 - i0);
    else
        j->c->vo->silu_mul_f32(j->g + i0, j->u + i0, i1 - i0);
}

/* The gate's expf/tanhf dominate the work outside the matmuls when a step
 * carries several tokens: shared by the pool from GATE_PARALLEL_MIN
 * elements on (below it waking the pool costs more). */
#define GATE_PARALLEL_MIN 16384

static void gated_act(const forward_ctx *c, float *g, const float *u, size_t n)
{
    gate_job job = {c, g, u, n};
    if (n >= GATE_PARALLEL_MIN)
        thread_pool_run(c->tp, gate_worker, &job);
    else
        gate_worker(&job, 0, 1);
}

/* out[T][E] = down(act(gate x) * up x) for a dense FFN or one expert. */
static void ffn(forward_ctx *c, const matmul_weight *gate, const matmul_weight *up,
                const matmul_weight *down, const float *x, uint32_t T, float *out)
{
    size_t f = gate->n_out;
    matmul(c->mm, gate, x, T, c->ga, f);
    matmul(c->mm, up, x, T, c->up, f);
    gated_act(c, c->ga, c->up, (size_t)T * f);
    matmul(c->mm, down, c->ga, T, out, down->n_out);
}

/* Rows [e * n, (e + 1) * n) of a stacked expert matrix. */
static matmul_weight expert_view(const matmul_weight *w, uint32_t e, uint64_t n)
{
    matmul_weight v = *w;
    v.n_out = n;
    v.data = (const uint8_t *)w->data + (size_t)e * n * w->row_bytes;
    return v;
}

static void route(forward_ctx *c, const layer_weights *w, uint32_t T)
{
    const model_hparams *hp = c->hp;
    const uint32_t nx = hp->n_expert, nu = hp->n_expert_used;
    matmul(c->mm, &w->router, c->xn, T, c->router, nx);
    for (uint32_t t = 0; t < T; t++) {
        float *p = c->router + (size_t)t * nx;
        ops_softmax(p, nx);
        /* Top-k by probability; ties go to the lower expert id. */
        for (uint32_t k = 0; k < nu; k++) {
            int32_t best = -1;
            for (uint32_t e = 0; e < nx; e++) {
                int taken = 0;
                for (uint32_t j = 0; j < k; j++)
                    taken |= c->sel[(size_t)t * nu + j] == (int32_t)e;
                if (!taken && (best < 0 || p[e] > p[best]))
                    best = (int32_t)e;
            }
            c->sel[(size_t)t * nu + k] = best;
            c->sel_w[(size_t)t * nu + k] = p[best];
        }
    }
}

static void moe(forward_ctx *c, const layer_weights *w, uint32_t T)
{
    const model_hparams *hp = c->hp;
    const uint32_t E = hp->n_embd, nu = hp->n_expert_used;
    route(c, w, T);
    memset(c->out, 0, (size_t)T * E * sizeof *c->out);
    for (uint32_t e = 0; e < hp->n_expert; e++) {
        uint32_t n = 0;
        for (uint32_t t = 0; t < T; t++) {
            for (uint32_t k = 0; k < nu; k++) {
                if (c->sel[(size_t)t * nu + k] != (int32_t)e)
                    continue;
                c->rows[n] = t;
                c->row_w[n] = c->sel_w[(size_t)t * nu + k];
                memcpy(c->xe + (size_t)n * E, c->xn + (size_t)t * E, E * sizeof(float));
                n++;
            }
        }
        if (n == 0)
            continue; /* an unused expert's weights are never read */
        matmul_weight g = expert_view(&w->gate_exps, e, hp->n_ff_exp);
        matmul_weight u = expert_view(&w->up_exps, e, hp->n_ff_exp);
        matmul_weight d = expert_view(&w->down_exps, e, E);
        ffn(c, &g, &u, &d, c->xe, n, c->ye);
        for (uint32_t r = 0; r < n; r++)
            c->vo->axpy_f32(c->out + (size_t)c->rows[r] * E, c->row_w[r], c->ye + (size_t)r * E, E);
    }
    if (!w->gate_shexp.data)
        return;
    ffn(c, &w->gate_shexp, &w->up_shexp, &w->down_shexp, c->xn, T, c->ye);
    for (uint32_t t = 0; t < T; t++) {
        const float *xt = c->xn + (size_t)t * E;
        float g = w->shexp_gate ? ops_sigmoid(c->vo->dot_f32(w->shexp_gate, xt, E)) : 1.0f;
        c->vo->axpy_f32(c->out + (size_t)t * E, g, c->ye + (size_t)t * E, E);
    }
}

static void ffn_block(forward_ctx *c, uint32_t l, uint32_t T)
{
    const model_hparams *hp = c->hp;
    const layer_weights *w = model_layer(c->m, l);
    const uint32_t E = hp->n_embd;
    norm_rows(c->xn, c->x, w->ffn_norm, T, E, hp->rms_eps);
    if (c->arch->moe)
        moe(c, w, T);
    else
        ffn(c, &w->ffn_gate, &w->ffn_up, &w->ffn_down, c->xn, T, c->out);
    if (w->post_ffn_norm)
        norm_rows(c->out, c->out, w->post_ffn_norm, T, E, hp->rms_eps);
    for (size_t i = 0; i < (size_t)T * E; i++)
        c->x[i] += c->out[i];
}

/* Final norm and output projection for the rows whose logits are wanted. */
static void logits(forward_ctx *c, forward_seq *seqs, uint32_t n_seqs)
{
    const model_hparams *hp = c->hp;
    const uint32_t E = hp->n_embd, V = hp->n_vocab;
    float *dst[LOGIT_CHUNK];
    uint32_t n = 0, t0 = 0;
    for (uint32_t s = 0; s < n_seqs; s++) {
        const forward_seq *fs = &seqs[s];
        for (uint32_t i = fs->n_new - fs->n_logits; i < fs->n_new; i++) {
            ops_rmsnorm(c->hid + (size_t)n * E, c->x + (size_t)(t0 + i) * E,
                        model_output_norm(c->m), E, hp->rms_eps);
            dst[n++] = fs->logits + (size_t)(i - (fs->n_new - fs->n_logits)) * V;
            if (n == LOGIT_CHUNK) {
                matmul(c->mm, model_output(c->m), c->hid, n, c->logit, V);
                for (uint32_t r = 0; r < n; r++)
                    memcpy(dst[r], c->logit + (size_t)r * V, V * sizeof(float));
                n = 0;
            }
        }
        t0 += fs->n_new;
    }
    if (n > 0) {
        matmul(c->mm, model_output(c->m), c->hid, n, c->logit, V);
        for (uint32_t r = 0; r < n; r++)
            memcpy(dst[r], c->logit + (size_t)r * V, V * sizeof(float));
    }
}

sem_status forward_run(forward_ctx *c, forward_seq *seqs, uint32_t n_seqs, sem_err *err)
{
    uint32_t T = 0;
    sem_status st = check_batch(c, seqs, n_seqs, &T, err);
    if (st != SEM_OK)
        return st;
    embed(c, seqs, n_seqs);
    for (uint32_t l = 0; l < c->hp->n_layer; l++) {
        attention_block(c, l, T);
        ffn_block(c, l, T);
    }
    logits(c, seqs, n_seqs);
    return SEM_OK;
}
