/*
 * model.c - loading a GGUF model: architecture table, hyperparameters,
 * tensor binding with shape checks.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/kernels/tensor_type.h"

static const model_arch_info arch_table[MODEL_ARCH_COUNT] = {
    [MODEL_ARCH_LLAMA] = {.name = "llama", .rope = ROPE_ADJACENT, .act = FFN_SILU},
    [MODEL_ARCH_QWEN2] = {.name = "qwen2", .rope = ROPE_HALVES, .act = FFN_SILU, .qkv_bias = 1},
    [MODEL_ARCH_GEMMA3] = {.name = "gemma3", .rope = ROPE_HALVES, .act = FFN_GELU, .qk_norm = 1,
                           .post_norms = 1, .embd_scale = 1, .sliding_pattern = 6},
    [MODEL_ARCH_QWEN2MOE] = {.name = "qwen2moe", .rope = ROPE_HALVES, .act = FFN_SILU,
                             .qkv_bias = 1, .moe = 1, .needs_output = 1},
};

#define MAX_OWNED_VECTORS 4096

struct model {
    gguf_file *gguf;
    tokenizer *tok;
    model_hparams hp;
    const model_arch_info *arch;
    char *name;
    char *chat_template;
    matmul_weight tok_embd, output;
    const float *output_norm;
    const float *rope_factors;
    uint8_t *sliding;      /* [n_layer] 1 = sliding-window layer */
    layer_weights *layers; /* [n_layer] */
    float *owned[MAX_OWNED_VECTORS];
    size_t n_owned;
};

const char *model_supported_archs(void) { return "llama, qwen2, gemma3, qwen2moe"; }

/* ---------------------------------------------------------------- metadata */

static sem_status get_arch_u32(const model *m, const char *suffix, uint32_t *out, int required,
                               sem_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch->name, suffix);
    sem_status st = gguf_get_u32(m->gguf, key, out, err);
    if (st == SEM_ENOTFOUND && !required) {
        sem_err_clear(err);
        return SEM_OK;
    }
    return st;
}

static sem_status get_arch_f32(const model *m, const char *suffix, float *out, int required,
                               sem_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch->name, suffix);
    sem_status st = gguf_get_f32(m->gguf, key, out, err);
    if (st == SEM_ENOTFOUND && !required) {
        sem_err_clear(err);
        return SEM_OK;
    }
    return st;
}

static sem_status find_arch(model *m, sem_err *err)
{
    gguf_str a;
    sem_status st = gguf_get_str(m->gguf, "general.architecture", &a, err);
    if (st != SEM_OK)
        return st;
    for (int i = 0; i < MODEL_ARCH_COUNT; i++) {
        if (gguf_str_eq(a, arch_table[i].name)) {
            m->arch = &arch_table[i];
            m->hp.arch = (model_arch)i;
            return SEM_OK;
        }
    }
    return sem_err_set(err, SEM_EUNSUPPORTED,
                       "model %s: architecture '%.*s' is not supported (supported: %s)",
                       gguf_name(m->gguf), (int)(a.len > 64 ? 64 : a.len), a.ptr,
                       model_supported_archs());
}

static sem_status read_rope_scaling(model *m, sem_err *err)
{
    model_hparams *hp = &m->hp;
    hp->rope_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch->name);
    gguf_str type = {"none", 4};
    sem_status st = gguf_get_str(m->gguf, key, &type, err);
    if (st != SEM_OK && st != SEM_ENOTFOUND)
        return st;
    sem_err_clear(err);
    float factor = 0.0f;
    if ((st = get_arch_f32(m, "rope.scaling.factor", &factor, 0, err)) != SEM_OK)
        return st;
    if (factor == 0.0f && (st = get_arch_f32(m, "rope.scale_linear", &factor, 0, err)) != SEM_OK)
        return st;
    if (gguf_str_eq(type, "none") || factor == 0.0f || factor == 1.0f)
        return SEM_OK;
    if (gguf_str_eq(type, "linear")) {
        hp->rope_scale = 1.0f / factor;
        return SEM_OK;
    }
    return sem_err_set(err, SEM_EUNSUPPORTED,
                       "model %s: rope scaling '%.*s' is not supported (none and linear are)",
                       gguf_name(m->gguf), (int)(type.len > 32 ? 32 : type.len), type.ptr);
}

static sem_status read_sliding(model *m, sem_err *err)
{
    model_hparams *hp = &m->hp;
    m->sliding = calloc(hp->n_layer, 1);
    if (!m->sliding)
        return sem_err_set(err, SEM_ENOMEM, "model: out of memory");
    if (!m->arch->sliding_pattern)
        return SEM_OK;
    sem_status st = get_arch_u32(m, "attention.sliding_window", &hp->sliding_window, 1, err);
    if (st != SEM_OK)
        return st;
    if (hp->sliding_window == 0)
        return SEM_OK;
    /* A per-layer bool array wins; else a period; else the architecture's. */
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", m->arch->name);
    const void *arr;
    uint64_t n;
    if (gguf_get_array(m->gguf, key, GGUF_BOOL, &arr, &n, NULL) == SEM_OK) {
        if (n != hp->n_layer)
            return sem_err_set(err, SEM_ECORRUPT, "model %s: '%s' has %llu entries for %u layers",
                               gguf_name(m->gguf), key, (unsigned long long)n, hp->n_layer);
        for (uint32_t l = 0; l < hp->n_layer; l++)
            m->sliding[l] = ((const uint8_t *)arr)[l] != 0;
        return SEM_OK;
    }
    uint32_t period = (uint32_t)m->arch->sliding_pattern;
    if ((st = get_arch_u32(m, "attention.sliding_window_pattern", &period, 0, err)) != SEM_OK)
        return st;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        m->sliding[l] = period == 0 ? 0 : (l + 1) % period != 0;
    return SEM_OK;
}

static sem_status read_hparams(model *m, sem_err *err)
{
    model_hparams *hp = &m->hp;
    sem_status st;
    if ((st = get_arch_u32(m, "embedding_length", &hp->n_embd, 1, err)) != SEM_OK ||
        (st = get_arch_u32(m, "block_count", &hp->n_layer, 1, err)) != SEM_OK ||
        (st = get_arch_u32(m, "attention.head_count", &hp->n_head, 1, err)) != SEM_OK ||
        (st = get_arch_f32(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, 1, err)) != SEM_OK)
        return st;
    hp->n_ctx_train = 2048;
    hp->n_head_kv = hp->n_head;
    hp->rope_base = 10000.0f;
    hp->rope_base_swa = 10000.0f;
    if ((st = get_arch_u32(m, "context_length", &hp->n_ctx_train, 0, err)) != SEM_OK ||
        (st = get_arch_u32(m, "feed_forward_length", &hp->n_ff, 0, err)) != SEM_OK ||
        (st = get_arch_u32(m, "attention.head_count_kv", &hp->n_head_kv, 0, err)) != SEM_OK ||
        (st = get_arch_f32(m, "rope.freq_base", &hp->rope_base, 0, err)) != SEM_OK ||
        (st = get_arch_f32(m, "rope.freq_base_swa", &hp->rope_base_swa, 0, err)) != SEM_OK)
        return st;
    if (hp->n_embd == 0 || hp->n_layer == 0 || hp->n_layer > CACHE_SPEC_MAX_LAYERS ||
        hp->n_head == 0 || hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0)
        return sem_err_set(err, SEM_ECORRUPT,
                           "model %s: impossible shape: n_embd %u, n_layer %u (max %d), "
                           "n_head %u, n_head_kv %u (must divide n_head)",
                           gguf_name(m->gguf), hp->n_embd, hp->n_layer, CACHE_SPEC_MAX_LAYERS,
                           hp->n_head, hp->n_head_kv);
    hp->head_dim_k = hp->n_embd / hp->n_head;
    if ((st = get_arch_u32(m, "attention.key_length", &hp->head_dim_k, 0, err)) != SEM_OK)
        return st;
    hp->head_dim_v = hp->head_dim_k;
    hp->n_rot = hp->head_dim_k;
    if ((st = get_arch_u32(m, "attention.value_length", &hp->head_dim_v, 0, err)) != SEM_OK ||
        (st = get_arch_u32(m, "rope.dimension_count", &hp->n_rot, 0, err)) != SEM_OK)
        return st;
    if (hp->head_dim_k == 0 || hp->head_dim_v == 0 || hp->n_rot > hp->head_dim_k ||
        hp->n_rot % 2 || hp->head_dim_k > CACHE_SPEC_MAX_HEAD_DIM ||
        hp->head_dim_v > CACHE_SPEC_MAX_HEAD_DIM)
        return sem_err_set(err, SEM_ECORRUPT,
                           "model %s: impossible head shape: key %u, value %u, rotary %u",
                           gguf_name(m->gguf), hp->head_dim_k, hp->head_dim_v, hp->n_rot);
    if (hp->rms_eps <= 0.0f || !(hp->rope_base > 0.0f))
        return sem_err_set(err, SEM_ECORRUPT, "model %s: rms epsilon %g / rope base %g invalid",
                           gguf_name(m->gguf), hp->rms_eps, hp->rope_base);
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim_k);
    if (hp->arch == MODEL_ARCH_GEMMA3 && hp->n_layer == 62) /* Gemma 3 27B scales by n_embd/n_head */
        hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    if (m->arch->moe) {
        if ((st = get_arch_u32(m, "expert_count", &hp->n_expert, 1, err)) != SEM_OK ||
            (st = get_arch_u32(m, "expert_used_count", &hp->n_expert_used, 1, err)) != SEM_OK ||
            (st = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, 1, err)) != SEM_OK)
            return st;
        hp->n_ff_shexp = hp->n_ff;
        if ((st = get_arch_u32(m, "expert_shared_feed_forward_length", &hp->n_ff_shexp, 0, err)))
            return st;
        if (hp->n_expert == 0 || hp->n_expert > 256 || hp->n_expert_used == 0 ||
            hp->n_expert_used > hp->n_expert)
            return sem_err_set(err, SEM_ECORRUPT, "model %s: %u experts, %u used per token",
                               gguf_name(m->gguf), hp->n_expert, hp->n_expert_used);
    }
    if ((st = read_rope_scaling(m, err)) != SEM_OK)
        return st;
    return read_sliding(m, err);
}

/* ---------------------------------------------------------------- tensors */

static const gguf_tensor *find_tensor(const model *m, const char *name)
{
    return gguf_find_tensor(m->gguf, name);
}

static sem_status check_type(const model *m, const gguf_tensor *t, const char *name, sem_err *err)
{
    if (tensor_type_supported(t->type))
        return SEM_OK;
    return sem_err_set(err, SEM_EUNSUPPORTED,
                       "model %s: tensor '%s' has type %s, which is not supported "
                       "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)",
                       gguf_name(m->gguf), name, tensor_type_name(t->type));
}

static sem_status shape_error(const model *m, const gguf_tensor *t, const char *name,
                              uint64_t e0, uint64_t e1, uint64_t e2, sem_err *err)
{
    return sem_err_set(err, SEM_ECORRUPT,
                       "model %s: tensor '%s' has shape [%llu, %llu, %llu], expected "
                       "[%llu, %llu, %llu]",
                       gguf_name(m->gguf), name, (unsigned long long)t->ne[0],
                       (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                       (unsigned long long)e0, (unsigned long long)e1, (unsigned long long)e2);
}

/* Binds a matrix of ne = [n_in, n_out, n_mat] (n_mat = 1 for 2-D). */
static sem_status bind_matrix(model *m, const char *name, uint64_t n_in, uint64_t n_out,
                              uint64_t n_mat, int required, matmul_weight *w, sem_err *err)
{
    memset(w, 0, sizeof *w);
    const gguf_tensor *t = find_tensor(m, name);
    if (!t) {
        if (!required)
            return SEM_OK;
        return sem_err_set(err, SEM_ECORRUPT, "model %s: tensor '%s' is missing",
                           gguf_name(m->gguf), name);
    }
    sem_status st = check_type(m, t, name, err);
    if (st != SEM_OK)
        return st;
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_mat || t->ne[3] != 1)
        return shape_error(m, t, name, n_in, n_out, n_mat, err);
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out * n_mat;
    w->data = t->data;
    w->row_bytes = tensor_type_row_bytes(t->type, n_in);
    return SEM_OK;
}

/* Binds a vector of n values as owned f32 (any float type is converted). */
static sem_status bind_vector(model *m, const char *name, uint64_t n, int required,
                              const float **out, sem_err *err)
{
    *out = NULL;
    const gguf_tensor *t = find_tensor(m, name);
    if (!t) {
        if (!required)
            return SEM_OK;
        return sem_err_set(err, SEM_ECORRUPT, "model %s: tensor '%s' is missing",
                           gguf_name(m->gguf), name);
    }
    sem_status st = check_type(m, t, name, err);
    if (st != SEM_OK)
        return st;
    if (t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] != n || t->ne[0] != n)
        return shape_error(m, t, name, n, 1, 1, err);
    if (m->n_owned == MAX_OWNED_VECTORS)
        return sem_err_set(err, SEM_EUNSUPPORTED, "model: more than %d vector tensors",
                           MAX_OWNED_VECTORS);
    float *v = malloc(n * sizeof *v);
    if (!v)
        return sem_err_set(err, SEM_ENOMEM, "model: out of memory");
    matmul_weight view = {.type = t->type, .n_in = n, .n_out = 1, .data = t->data,
                          .row_bytes = tensor_type_row_bytes(t->type, n)};
    matmul_weight_row(&view, 0, v);
    m->owned[m->n_owned++] = v;
    *out = v;
    return SEM_OK;
}

static sem_status bind_layer(model *m, uint32_t l, sem_err *err)
{
    const model_hparams *hp = &m->hp;
    const model_arch_info *a = m->arch;
    layer_weights *w = &m->layers[l];
    uint64_t e = hp->n_embd, q = (uint64_t)hp->n_head * hp->head_dim_k;
    uint64_t k = (uint64_t)hp->n_head_kv * hp->head_dim_k;
    uint64_t v = (uint64_t)hp->n_head_kv * hp->head_dim_v;
    uint64_t o = (uint64_t)hp->n_head * hp->head_dim_v;
    char n[96];
    sem_status st = SEM_OK;
#define NAME(s) (snprintf(n, sizeof n, "blk.%u." s, l), n)
#define TRY(call)                                                                        \
    do {                                                                                 \
        if ((st = (call)) != SEM_OK)                                                     \
            return st;                                                                   \
    } while (0)
    TRY(bind_vector(m, NAME("attn_norm.weight"), e, 1, &w->attn_norm, err));
    TRY(bind_matrix(m, NAME("attn_q.weight"), e, q, 1, 1, &w->wq, err));
    TRY(bind_matrix(m, NAME("attn_k.weight"), e, k, 1, 1, &w->wk, err));
    TRY(bind_matrix(m, NAME("attn_v.weight"), e, v, 1, 1, &w->wv, err));
    TRY(bind_matrix(m, NAME("attn_output.weight"), o, e, 1, 1, &w->wo, err));
    TRY(bind_vector(m, NAME("attn_q.bias"), q, a->qkv_bias, &w->bq, err));
    TRY(bind_vector(m, NAME("attn_k.bias"), k, a->qkv_bias, &w->bk, err));
    TRY(bind_vector(m, NAME("attn_v.bias"), v, a->qkv_bias, &w->bv, err));
    if (a->qk_norm) {
        TRY(bind_vector(m, NAME("attn_q_norm.weight"), hp->head_dim_k, 1, &w->q_norm, err));
        TRY(bind_vector(m, NAME("attn_k_norm.weight"), hp->head_dim_k, 1, &w->k_norm, err));
    }
    if (a->post_norms) {
        TRY(bind_vector(m, NAME("post_attention_norm.weight"), e, 1, &w->post_attn_norm, err));
        TRY(bind_vector(m, NAME("post_ffw_norm.weight"), e, 1, &w->post_ffn_norm, err));
    }
    TRY(bind_vector(m, NAME("ffn_norm.weight"), e, 1, &w->ffn_norm, err));
    if (!a->moe) {
        if (hp->n_ff == 0)
            return sem_err_set(err, SEM_ECORRUPT, "model %s: feed_forward_length is missing",
                               gguf_name(m->gguf));
        TRY(bind_matrix(m, NAME("ffn_gate.weight"), e, hp->n_ff, 1, 1, &w->ffn_gate, err));
        TRY(bind_matrix(m, NAME("ffn_up.weight"), e, hp->n_ff, 1, 1, &w->ffn_up, err));
        TRY(bind_matrix(m, NAME("ffn_down.weight"), hp->n_ff, e, 1, 1, &w->ffn_down, err));
        return SEM_OK;
    }
    uint64_t x = hp->n_expert, f = hp->n_ff_exp, s = hp->n_ff_shexp;
    TRY(bind_matrix(m, NAME("ffn_gate_inp.weight"), e, x, 1, 1, &w->router, err));
    TRY(bind_matrix(m, NAME("ffn_gate_exps.weight"), e, f, x, 1, &w->gate_exps, err));
    TRY(bind_matrix(m, NAME("ffn_up_exps.weight"), e, f, x, 1, &w->up_exps, err));
    TRY(bind_matrix(m, NAME("ffn_down_exps.weight"), f, e, x, 1, &w->down_exps, err));
    TRY(bind_matrix(m, NAME("ffn_gate_shexp.weight"), e, s, 1, 0, &w->gate_shexp, err));
    if (w->gate_shexp.data) {
        TRY(bind_matrix(m, NAME("ffn_up_shexp.weight"), e, s, 1, 1, &w->up_shexp, err));
        TRY(bind_matrix(m, NAME("ffn_down_shexp.weight"), s, e, 1, 1, &w->down_shexp, err));
        TRY(bind_vector(m, NAME("ffn_gate_inp_shexp.weight"), e, 0, &w->shexp_gate, err));
    }
#undef NAME
#undef TRY
    return SEM_OK;
}

static sem_status bind_all(model *m, sem_err *err)
{
    const model_hparams *hp = &m->hp;
    sem_status st = bind_matrix(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, 1,
                                &m->tok_embd, err);
    if (st != SEM_OK)
        return st;
    if ((st = bind_matrix(m, "output.weight", hp->n_embd, hp->n_vocab, 1, m->arch->needs_output,
                          &m->output, err)) != SEM_OK)
        return st;
    if (!m->output.data)
        m->output = m->tok_embd; /* tied embeddings */
    if ((st = bind_vector(m, "output_norm.weight", hp->n_embd, 1, &m->output_norm, err)) !=
            SEM_OK ||
        (st = bind_vector(m, "rope_freqs.weight", hp->n_rot / 2, 0, &m->rope_factors, err)) !=
            SEM_OK)
        return st;
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return sem_err_set(err, SEM_ENOMEM, "model: out of memory");
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if ((st = bind_layer(m, l, err)) != SEM_OK)
            return st;
    return SEM_OK;
}

/* ---------------------------------------------------------------- life */

model *model_load(const char *path, sem_err *err)
{
    model *m = calloc(1, sizeof *m);
    if (!m) {
        sem_err_set(err, SEM_ENOMEM, "model: out of memory");
        return NULL;
    }
    sem_status st = SEM_OK;
    m->gguf = gguf_open(path, err);
    if (!m->gguf)
        goto fail;
    gguf_prefault(m->gguf);
    if (gguf_n_tensors(m->gguf) == 0) {
        sem_err_set(err, SEM_EINVAL, "model %s: the file has no tensors (a vocabulary-only file?)",
                    path);
        goto fail;
    }
    if ((st = find_arch(m, err)) != SEM_OK || (st = read_hparams(m, err)) != SEM_OK)
        goto fail;
    m->tok = tokenizer_load(m->gguf, err);
    if (!m->tok)
        goto fail;
    m->hp.n_vocab = (uint32_t)tokenizer_n_vocab(m->tok);
    if ((st = bind_all(m, err)) != SEM_OK)
        goto fail;
    if (gguf_get_cstr(m->gguf, "general.name", &m->name, NULL) != SEM_OK)
        m->name = NULL;
    if (gguf_get_cstr(m->gguf, "tokenizer.chat_template", &m->chat_template, NULL) != SEM_OK)
        m->chat_template = NULL;
    return m;
fail:
    model_free(m);
    return NULL;
}

void model_free(model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->layers);
    free(m->sliding);
    free(m->name);
    free(m->chat_template);
    tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m);
}

const model_hparams *model_hparams_of(const model *m) { return &m->hp; }
const model_arch_info *model_arch_of(const model *m) { return m->arch; }
const tokenizer *model_tokenizer(const model *m) { return m->tok; }
const gguf_file *model_gguf(const model *m) { return m->gguf; }
const layer_weights *model_layer(const model *m, uint32_t layer) { return &m->layers[layer]; }
const matmul_weight *model_tok_embd(const model *m) { return &m->tok_embd; }
const matmul_weight *model_output(const model *m) { return &m->output; }
const float *model_output_norm(const model *m) { return m->output_norm; }
const float *model_rope_factors(const model *m) { return m->rope_factors; }
int model_layer_is_sliding(const model *m, uint32_t layer) { return m->sliding[layer]; }
const char *model_chat_template(const model *m) { return m->chat_template; }
uint64_t model_fingerprint(const model *m) { return gguf_layout_hash(m->gguf); }
const char *model_name(const model *m) { return m->name ? m->name : m->arch->name; }

cache_spec model_cache_spec(const model *m, uint32_t block_tokens, cache_kv_type kv_type)
{
    cache_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = m->hp.n_layer;
    s.n_kv_heads = m->hp.n_head_kv;
    s.k_head_dim = m->hp.head_dim_k;
    s.v_head_dim = m->hp.head_dim_v;
    s.block_tokens = block_tokens;
    s.kv_type = kv_type;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        if (m->sliding[l]) {
            s.layers[l].kind = CACHE_ATTN_SLIDING;
            s.layers[l].window = m->hp.sliding_window;
        }
    }
    return s;
}
