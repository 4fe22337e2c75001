/*
 * cmd_info.c - `semantic info MODEL.gguf`: what a GGUF file holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/gguf/gguf.h"
#include "adapters/model/model.h"
#include "adapters/kernels/tensor_type.h"
#include "adapters/text/tokenizer.h"
#include "cli.h"

#define INFO_CTX 4096

static void print_tensor_types(const gguf_file *f)
{
    uint64_t count[TENSOR_TYPE_MAX] = {0};
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        count[t->type]++;
        bytes += t->size;
    }
    printf("tensors:      %llu (", (unsigned long long)gguf_n_tensors(f));
    const char *sep = "";
    for (int ty = 0; ty < TENSOR_TYPE_MAX; ty++) {
        if (!count[ty])
            continue;
        printf("%s%s %llu%s", sep, tensor_type_name((uint32_t)ty), (unsigned long long)count[ty],
               tensor_type_supported((uint32_t)ty) ? "" : " [unsupported]");
        sep = ", ";
    }
    printf("), %.1f MiB of weights\n", (double)bytes / (1 << 20));
}

static void print_tokenizer(const gguf_file *f)
{
    sem_err err = {0};
    tokenizer *tk = tokenizer_load(f, &err);
    if (!tk) {
        printf("tokenizer:    unusable: %s\n", sem_err_text(&err));
        return;
    }
    printf("tokenizer:    %s (pre-tokenizer %s), %zu tokens, bos %d, eos %d, eot %d, "
           "add bos %s\n",
           tokenizer_kind(tk), tokenizer_pre(tk), tokenizer_n_vocab(tk), tokenizer_bos(tk),
           tokenizer_eos(tk), tokenizer_eot(tk), tokenizer_add_bos(tk) ? "yes" : "no");
    tokenizer_free(tk);
}

static void print_model(const model *m)
{
    const model_hparams *hp = model_hparams_of(m);
    printf("architecture: %s (%s)\n", model_arch_of(m)->name, model_name(m));
    printf("shape:        %u layers, embedding %u, %u heads (%u KV), head dim %u/%u, "
           "rotary %u, context %u\n",
           hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim_k, hp->head_dim_v,
           hp->n_rot, hp->n_ctx_train);
    if (hp->n_expert)
        printf("ffn:          %u experts (%u per token) of %u, shared expert %u\n", hp->n_expert,
               hp->n_expert_used, hp->n_ff_exp, hp->n_ff_shexp);
    else
        printf("ffn:          %u\n", hp->n_ff);
    printf("rope:         base %g", hp->rope_base);
    if (hp->rope_scale != 1.0f)
        printf(", linear scale %g", 1.0f / hp->rope_scale);
    if (model_rope_factors(m))
        printf(", frequency factors");
    printf("; rms eps %g\n", hp->rms_eps);
    if (hp->sliding_window) {
        uint32_t n = 0;
        for (uint32_t l = 0; l < hp->n_layer; l++)
            n += model_layer_is_sliding(m, l) != 0;
        printf("attention:    sliding window %u on %u of %u layers (rope base %g there)\n",
               hp->sliding_window, n, hp->n_layer, hp->rope_base_swa);
    }
    cache_spec cs = model_cache_spec(m, CACHE_SPEC_DEFAULT_BLOCK_TOKENS, CACHE_KV_F16);
    uint64_t ctx = hp->n_ctx_train < INFO_CTX ? hp->n_ctx_train : INFO_CTX;
    uint64_t blocks = cache_spec_total_blocks_for(&cs, ctx);
    double kv = (double)blocks * (double)cache_spec_block_bytes(&cs);
    double per_tok = (double)(cache_spec_row_bytes(CACHE_KV_F16, hp->head_dim_k) +
                              cache_spec_row_bytes(CACHE_KV_F16, hp->head_dim_v)) *
                     hp->n_head_kv * hp->n_layer;
    printf("memory:       weights mapped from the file; KV f16 %.1f KiB per token, "
           "%.1f MiB for %llu tokens\n",
           per_tok / 1024.0, kv / (1 << 20), (unsigned long long)ctx);
}

int cmd_info(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: semantic info MODEL.gguf\n"
               "  architecture, hyperparameters, tokenizer, tensor types and KV memory\n");
        return 0;
    }
    if (argc < 2)
        return cli_usage_error("info", "the MODEL.gguf to describe is missing");
    if (argv[1][0] == '-')
        return cli_usage_error("info", "unknown option '%s'", argv[1]);
    if (argc > 2)
        return cli_usage_error("info", "one MODEL.gguf only ('%s' is a second argument)",
                               argv[2]);
    sem_err err = {0};
    gguf_file *f = gguf_open(argv[1], &err);
    if (!f)
        return cli_fail("info", &err);
    printf("file:         %s (%.1f MiB, GGUF v%u, %llu metadata keys)\n", argv[1],
           (double)gguf_file_size(f) / (1 << 20), gguf_version(f),
           (unsigned long long)gguf_n_kv(f));
    gguf_str chat;
    int has_chat = gguf_get_str(f, "tokenizer.chat_template", &chat, NULL) == SEM_OK;
    int rc = 0;
    if (gguf_n_tensors(f) == 0) {
        gguf_str arch = {"unknown", 7};
        gguf_get_str(f, "general.architecture", &arch, NULL);
        printf("architecture: %.*s (vocabulary only: no tensors)\n", (int)arch.len, arch.ptr);
    } else {
        model *m = model_load(argv[1], &err);
        if (m) {
            print_model(m);
            model_free(m);
        } else {
            printf("model:        cannot be run: %s\n", sem_err_text(&err));
            rc = cli_exit_code(err.status);
        }
    }
    print_tokenizer(f);
    printf("chat template: %s\n", has_chat ? "present" : "absent");
    if (gguf_n_tensors(f) > 0)
        print_tensor_types(f);
    gguf_close(f);
    return rc;
}
