/*
 * model_maker.h - writing random-weight GGUF models of real shapes.
 *
 * Benchmarks need models of the size people run (a Llama-3.2-1B or a
 * Qwen2.5-0.5B shape) without shipping gigabytes: this writes a model of
 * any llama or qwen2 shape with normally distributed weights quantized to
 * a chosen type, and the vocabulary (every tokenizer.* key) copied from an
 * existing GGUF. The outputs are meaningless; the compute and memory
 * traffic are those of the real model.
 *
 * Threads: the caller's thread; no shared state.
 */
#ifndef SEM_MODEL_MAKER_H
#define SEM_MODEL_MAKER_H

#include <stdint.h>

#include "model.h"
#include "domain/status.h"

typedef struct model_maker_spec {
    model_arch arch;      /* MODEL_ARCH_LLAMA or MODEL_ARCH_QWEN2 */
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    uint32_t weight_type; /* tensor_type of the matrices */
    uint32_t embd_type;   /* token embeddings (and tied output) */
    int tied;             /* no separate output.weight */
    float rope_base, rms_eps;
    uint64_t seed;
} model_maker_spec;

/* Named shapes: "llama-1b" (Llama-3.2-1B) and "qwen-0.5b" (Qwen2.5-0.5B).
 * Types default to Q4_0. SEM_EINVAL for another name. */
sem_status model_maker_preset(const char *name, model_maker_spec *out, sem_err *err);

/*
 * Writes the model to `path` (atomically: temp file and rename). Matrices
 * whose row length the chosen block size does not divide fall back to
 * Q8_0 (then F16); *n_fallback counts them.
 */
sem_status model_maker_write(const model_maker_spec *spec, const char *vocab_path,
                             const char *path, uint32_t *n_fallback, sem_err *err);

#endif
