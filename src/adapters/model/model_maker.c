/*
 * model_maker.c - random weights, quantized, in GGUF layout.
 *
 * Every tensor is generated row by row from one seeded generator (so a
 * spec and a seed always give the same file), quantized into a buffer that
 * lives until the file is written.
 */
#include "model_maker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/gguf/gguf_writer.h"
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"

#define PROJ_STD 0.02f
#define EMBD_STD 0.02f

typedef struct maker {
    const model_maker_spec *spec;
    gguf_writer *w;
    void **bufs; /* tensor data kept for the write */
    size_t n_bufs, cap_bufs;
    uint64_t rng;
    uint32_t n_fallback;
    sem_err *err;
} maker;

sem_status model_maker_preset(const char *name, model_maker_spec *out, sem_err *err)
{
    if (strcmp(name, "llama-1b") == 0) {
        *out = (model_maker_spec){.arch = MODEL_ARCH_LLAMA, .n_embd = 2048, .n_layer = 16,
                                  .n_head = 32, .n_head_kv = 8, .head_dim = 64, .n_ff = 8192,
                                  .n_ctx = 131072, .weight_type = TENSOR_Q4_0,
                                  .embd_type = TENSOR_Q4_0, .tied = 1, .rope_base = 500000.0f,
                                  .rms_eps = 1e-5f, .seed = 1};
        return SEM_OK;
    }
    if (strcmp(name, "qwen-0.5b") == 0) {
        *out = (model_maker_spec){.arch = MODEL_ARCH_QWEN2, .n_embd = 896, .n_layer = 24,
                                  .n_head = 14, .n_head_kv = 2, .head_dim = 64, .n_ff = 4864,
                                  .n_ctx = 32768, .weight_type = TENSOR_Q4_0,
                                  .embd_type = TENSOR_Q4_0, .tied = 1, .rope_base = 1000000.0f,
                                  .rms_eps = 1e-6f, .seed = 1};
        return SEM_OK;
    }
    return sem_err_set(err, SEM_EINVAL, "unknown preset '%s' (llama-1b, qwen-0.5b)", name);
}

/* ---------------------------------------------------------------- random */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Standard normal by Box-Muller. */
static float normal(uint64_t *s)
{
    double u1 = ((next_u64(s) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (next_u64(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---------------------------------------------------------------- tensors */

static void *keep(maker *mk, size_t bytes)
{
    if (mk->n_bufs == mk->cap_bufs) {
        size_t cap = mk->cap_bufs ? mk->cap_bufs * 2 : 64;
        void **b = realloc(mk->bufs, cap * sizeof *b);
        if (!b)
            return NULL;
        mk->bufs = b;
        mk->cap_bufs = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        mk->bufs[mk->n_bufs++] = p;
    return p;
}

/* The type to store a matrix of rows of n_in in: the wanted one if its
 * block divides the rows, else Q8_0, else F16. */
static uint32_t fit_type(maker *mk, uint32_t want, uint64_t n_in)
{
    if (tensor_type_row_bytes(want, n_in))
        return want;
    mk->n_fallback++;
    return tensor_type_row_bytes(TENSOR_Q8_0, n_in) ? TENSOR_Q8_0 : TENSOR_F16;
}

static sem_status matrix(maker *mk, const char *name, uint64_t n_in, uint64_t n_out,
                         uint32_t want, float std)
{
    uint32_t type = fit_type(mk, want, n_in);
    size_t row = tensor_type_row_bytes(type, n_in);
    uint8_t *data = keep(mk, row * n_out);
    float *tmp = malloc(n_in * sizeof *tmp);
    if (!data || !tmp) {
        free(tmp);
        return sem_err_set(mk->err, SEM_ENOMEM, "mkmodel: out of memory for '%s'", name);
    }
    sem_status st = SEM_OK;
    for (uint64_t r = 0; r < n_out && st == SEM_OK; r++) {
        for (uint64_t i = 0; i < n_in; i++)
            tmp[i] = normal(&mk->rng) * std;
        st = quant_quantize_row(type, tmp, data + r * row, n_in, mk->err);
    }
    free(tmp);
    uint64_t ne[2] = {n_in, n_out};
    gguf_writer_tensor(mk->w, name, type, 2, ne, data, row * n_out);
    return st;
}

static sem_status vector(maker *mk, const char *name, uint64_t n, float mean, float std)
{
    float *v = keep(mk, n * sizeof *v);
    if (!v)
        return sem_err_set(mk->err, SEM_ENOMEM, "mkmodel: out of memory for '%s'", name);
    for (uint64_t i = 0; i < n; i++)
        v[i] = mean + normal(&mk->rng) * std;
    gguf_writer_tensor(mk->w, name, TENSOR_F32, 1, &n, v, n * sizeof *v);
    return SEM_OK;
}

static sem_status layer(maker *mk, uint32_t l)
{
    const model_maker_spec *s = mk->spec;
    uint64_t e = s->n_embd, q = (uint64_t)s->n_head * s->head_dim;
    uint64_t kv = (uint64_t)s->n_head_kv * s->head_dim;
    char n[96];
    sem_status st = SEM_OK;
#define NAME(x) (snprintf(n, sizeof n, "blk.%u." x, l), n)
    if (st == SEM_OK) st = vector(mk, NAME("attn_norm.weight"), e, 1.0f, 0.0f);
    if (st == SEM_OK) st = matrix(mk, NAME("attn_q.weight"), e, q, s->weight_type, PROJ_STD);
    if (st == SEM_OK) st = matrix(mk, NAME("attn_k.weight"), e, kv, s->weight_type, PROJ_STD);
    if (st == SEM_OK) st = matrix(mk, NAME("attn_v.weight"), e, kv, s->weight_type, PROJ_STD);
    if (st == SEM_OK) st = matrix(mk, NAME("attn_output.weight"), q, e, s->weight_type, PROJ_STD);
    if (st == SEM_OK && s->arch == MODEL_ARCH_QWEN2) {
        st = vector(mk, NAME("attn_q.bias"), q, 0.0f, 0.02f);
        if (st == SEM_OK) st = vector(mk, NAME("attn_k.bias"), kv, 0.0f, 0.02f);
        if (st == SEM_OK) st = vector(mk, NAME("attn_v.bias"), kv, 0.0f, 0.02f);
    }
    if (st == SEM_OK) st = vector(mk, NAME("ffn_norm.weight"), e, 1.0f, 0.0f);
    if (st == SEM_OK) st = matrix(mk, NAME("ffn_gate.weight"), e, s->n_ff, s->weight_type, PROJ_STD);
    if (st == SEM_OK) st = matrix(mk, NAME("ffn_up.weight"), e, s->n_ff, s->weight_type, PROJ_STD);
    if (st == SEM_OK) st = matrix(mk, NAME("ffn_down.weight"), s->n_ff, e, s->weight_type, PROJ_STD);
#undef NAME
    return st;
}

/* ---------------------------------------------------------------- metadata */

static sem_status metadata(maker *mk, const gguf_file *vocab, uint64_t *n_vocab)
{
    const model_maker_spec *s = mk->spec;
    const char *a = s->arch == MODEL_ARCH_QWEN2 ? "qwen2" : "llama";
    char k[128];
    gguf_writer_str(mk->w, "general.architecture", a);
    gguf_writer_str(mk->w, "general.name", "semantic random weights");
#define KEY(x) (snprintf(k, sizeof k, "%s." x, a), k)
    gguf_writer_u32(mk->w, KEY("context_length"), s->n_ctx);
    gguf_writer_u32(mk->w, KEY("embedding_length"), s->n_embd);
    gguf_writer_u32(mk->w, KEY("block_count"), s->n_layer);
    gguf_writer_u32(mk->w, KEY("feed_forward_length"), s->n_ff);
    gguf_writer_u32(mk->w, KEY("attention.head_count"), s->n_head);
    gguf_writer_u32(mk->w, KEY("attention.head_count_kv"), s->n_head_kv);
    gguf_writer_u32(mk->w, KEY("attention.key_length"), s->head_dim);
    gguf_writer_u32(mk->w, KEY("attention.value_length"), s->head_dim);
    gguf_writer_u32(mk->w, KEY("rope.dimension_count"), s->head_dim);
    gguf_writer_f32(mk->w, KEY("rope.freq_base"), s->rope_base);
    gguf_writer_f32(mk->w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
#undef KEY
    gguf_str *toks = NULL;
    sem_status st = gguf_get_str_array(vocab, "tokenizer.ggml.tokens", &toks, n_vocab, mk->err);
    free(toks);
    if (st != SEM_OK)
        return st;
    for (uint64_t i = 0; i < gguf_n_kv(vocab); i++) {
        const gguf_kv *kv = gguf_kv_at(vocab, i);
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0)
            gguf_writer_copy_kv(mk->w, kv);
    }
    return SEM_OK;
}

static sem_status validate(const model_maker_spec *s, sem_err *err)
{
    if (s->arch != MODEL_ARCH_LLAMA && s->arch != MODEL_ARCH_QWEN2)
        return sem_err_set(err, SEM_EUNSUPPORTED, "mkmodel: only llama and qwen2 shapes");
    if (!s->n_embd || !s->n_layer || !s->n_head || !s->n_head_kv || !s->head_dim || !s->n_ff ||
        s->n_head % s->n_head_kv || s->head_dim % 2 || s->n_layer > CACHE_SPEC_MAX_LAYERS)
        return sem_err_set(err, SEM_EINVAL,
                           "mkmodel: impossible shape (embd %u, layers %u, heads %u/%u, head dim "
                           "%u, ffn %u)",
                           s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->head_dim, s->n_ff);
    if (!tensor_type_supported(s->weight_type) || !tensor_type_supported(s->embd_type))
        return sem_err_set(err, SEM_EINVAL, "mkmodel: weight type not supported");
    return SEM_OK;
}

sem_status model_maker_write(const model_maker_spec *spec, const char *vocab_path,
                             const char *path, uint32_t *n_fallback, sem_err *err)
{
    sem_status st = validate(spec, err);
    if (st != SEM_OK)
        return st;
    gguf_file *vocab = gguf_open(vocab_path, err);
    if (!vocab)
        return err->status;
    maker mk = {.spec = spec, .rng = spec->seed * 2654435761u + 1, .err = err};
    mk.w = gguf_writer_create(err);
    uint64_t n_vocab = 0;
    st = mk.w ? metadata(&mk, vocab, &n_vocab) : SEM_ENOMEM;
    if (st == SEM_OK)
        st = matrix(&mk, "token_embd.weight", spec->n_embd, n_vocab, spec->embd_type, EMBD_STD);
    if (st == SEM_OK)
        st = vector(&mk, "output_norm.weight", spec->n_embd, 1.0f, 0.0f);
    if (st == SEM_OK && !spec->tied)
        st = matrix(&mk, "output.weight", spec->n_embd, n_vocab, spec->embd_type, EMBD_STD);
    for (uint32_t l = 0; st == SEM_OK && l < spec->n_layer; l++)
        st = layer(&mk, l);
    if (st == SEM_OK)
        st = gguf_writer_write(mk.w, path, err);
    if (n_fallback)
        *n_fallback = mk.n_fallback;
    gguf_writer_free(mk.w);
    for (size_t i = 0; i < mk.n_bufs; i++)
        free(mk.bufs[i]);
    free(mk.bufs);
    gguf_close(vocab);
    return st;
}
