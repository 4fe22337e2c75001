/*
 * model.h - a loaded GGUF model: hyperparameters, weights and tokenizer.
 *
 * model_load() opens the file (weights stay in the read-only mapping, used
 * in place), reads the architecture's hyperparameters from metadata, binds
 * and shape-checks every tensor, and loads the tokenizer. Differences
 * between architectures are data (model_arch_info) read by one shared
 * forward pass (forward.h), never copies of it.
 *
 * Threads: a loaded model is immutable; any number of threads may read it.
 * The caller owns the model and frees it after every forward context that
 * uses it.
 */
#ifndef SEM_MODEL_H
#define SEM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/gguf/gguf.h"
#include "adapters/kernels/matmul.h"
#include "adapters/text/tokenizer.h"
#include "domain/cache_spec.h"
#include "domain/status.h"

typedef enum model_arch {
    MODEL_ARCH_LLAMA,
    MODEL_ARCH_QWEN2,
    MODEL_ARCH_GEMMA3,
    MODEL_ARCH_QWEN2MOE,
    MODEL_ARCH_COUNT
} model_arch;

typedef enum rope_style {
    ROPE_ADJACENT, /* rotates pairs (2i, 2i+1): llama */
    ROPE_HALVES,   /* rotates pairs (i, i + n_rot/2): qwen2, gemma3 ("neox") */
} rope_style;

typedef enum ffn_act {
    FFN_SILU, /* down(silu(gate x) * up x) */
    FFN_GELU, /* down(gelu_tanh(gate x) * up x) */
} ffn_act;

/* What makes one architecture differ from another. */
typedef struct model_arch_info {
    const char *name; /* general.architecture */
    rope_style rope;
    ffn_act act;
    int qkv_bias;        /* attn_{q,k,v}.bias present */
    int qk_norm;         /* per-head RMS norm of Q and K before RoPE */
    int post_norms;      /* post_attention_norm and post_ffw_norm */
    int embd_scale;      /* multiply embeddings by sqrt(n_embd) */
    int moe;             /* routed experts + gated shared expert */
    int sliding_pattern; /* every Nth layer global, others sliding; 0 = none */
    int needs_output;    /* output.weight required (no tying) */
} model_arch_info;

typedef struct model_hparams {
    model_arch arch;
    uint32_t n_vocab;
    uint32_t n_ctx_train;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim_k; /* key/query head size */
    uint32_t head_dim_v;
    uint32_t n_rot;      /* rotary dims per head (<= head_dim_k) */
    uint32_t n_ff;
    float rms_eps;
    float rope_base;      /* global layers */
    float rope_base_swa;  /* sliding-window layers */
    float rope_scale;     /* position multiplier of global layers (1 / linear factor) */
    float attn_scale;     /* multiplies Q.K */
    uint32_t sliding_window; /* 0 = none */
    uint32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
} model_hparams;

/* One transformer block. Vectors are f32 owned by the model; matrices are
 * views of the mapping. Absent parts have NULL data. */
typedef struct layer_weights {
    const float *attn_norm;      /* [n_embd] */
    matmul_weight wq;            /* [n_head * head_dim_k][n_embd] */
    matmul_weight wk;            /* [n_head_kv * head_dim_k][n_embd] */
    matmul_weight wv;            /* [n_head_kv * head_dim_v][n_embd] */
    matmul_weight wo;            /* [n_embd][n_head * head_dim_v] */
    const float *bq, *bk, *bv;   /* biases, or NULL */
    const float *q_norm, *k_norm; /* [head_dim_k], or NULL */
    const float *post_attn_norm; /* [n_embd], or NULL */
    const float *ffn_norm;       /* [n_embd] */
    const float *post_ffn_norm;  /* [n_embd], or NULL */
    matmul_weight ffn_gate;      /* [n_ff][n_embd] (dense) */
    matmul_weight ffn_up;        /* [n_ff][n_embd] */
    matmul_weight ffn_down;      /* [n_embd][n_ff] */
    /* Mixture of experts: expert e's matrix is row block e of these. */
    matmul_weight router;        /* [n_expert][n_embd] */
    matmul_weight gate_exps;     /* [n_expert * n_ff_exp][n_embd] */
    matmul_weight up_exps;       /* [n_expert * n_ff_exp][n_embd] */
    matmul_weight down_exps;     /* [n_expert * n_embd][n_ff_exp] */
    matmul_weight gate_shexp;    /* [n_ff_shexp][n_embd] */
    matmul_weight up_shexp;      /* [n_ff_shexp][n_embd] */
    matmul_weight down_shexp;    /* [n_embd][n_ff_shexp] */
    const float *shexp_gate;     /* [n_embd]: sigmoid(x . g) scales the shared expert */
} layer_weights;

typedef struct model model;

model *model_load(const char *path, sem_err *err);
void model_free(model *m);

const model_hparams *model_hparams_of(const model *m);
const model_arch_info *model_arch_of(const model *m);
const tokenizer *model_tokenizer(const model *m);
const gguf_file *model_gguf(const model *m);
const layer_weights *model_layer(const model *m, uint32_t layer);
const matmul_weight *model_tok_embd(const model *m); /* [n_vocab][n_embd] */
const matmul_weight *model_output(const model *m);   /* [n_vocab][n_embd] */
const float *model_output_norm(const model *m);      /* [n_embd] */
const float *model_rope_factors(const model *m);     /* [n_rot / 2] or NULL */
int model_layer_is_sliding(const model *m, uint32_t layer);

/* The model's KV geometry for the block pool. */
cache_spec model_cache_spec(const model *m, uint32_t block_tokens, cache_kv_type kv_type);

/* Identifies the model for saved KV caches (gguf_layout_hash). */
uint64_t model_fingerprint(const model *m);

/* The chat template text from metadata, or NULL. */
const char *model_chat_template(const model *m);
/* general.name, or the architecture name. */
const char *model_name(const model *m);

/* Names of the supported architectures, comma separated. */
const char *model_supported_archs(void);

#endif
