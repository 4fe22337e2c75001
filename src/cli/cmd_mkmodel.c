/*
 * cmd_mkmodel.c - `semantic mkmodel`: write a random-weight GGUF model of a
 * real shape, with the vocabulary of another GGUF, for benchmarks.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapters/model/model_maker.h"
#include "adapters/kernels/tensor_type.h"
#include "cli.h"

static void usage(void)
{
    printf("usage: semantic mkmodel --vocab VOCAB.gguf -o OUT.gguf [--preset NAME] [options]\n"
            "  --preset NAME     llama-1b (Llama-3.2-1B shape) or qwen-0.5b (Qwen2.5-0.5B)\n"
            "  --type TYPE       matrix type: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K (Q4_0)\n"
            "  --embd-type TYPE  token embedding type (default: --type)\n"
            "  --arch A          llama or qwen2     --embd N  --layers N  --heads N\n"
            "  --kv-heads N      --head-dim N       --ffn N   --untied   --seed N\n");
}

static sem_status parse_type(const char *s, uint32_t *out, sem_err *err)
{
    for (uint32_t t = 0; t < TENSOR_TYPE_MAX; t++) {
        const char *n = tensor_type_name(t);
        if (n && tensor_type_supported(t) && strcasecmp(n, s) == 0) {
            *out = t;
            return SEM_OK;
        }
    }
    return sem_err_set(err, SEM_EINVAL, "--type: '%s' is not one of F32 F16 BF16 Q8_0 Q4_0 "
                       "Q4_K Q5_K Q6_K", s);
}

enum { O_PRESET = 256, O_TYPE, O_ETYPE, O_ARCH, O_EMBD, O_LAYERS, O_HEADS, O_KV, O_HD, O_FFN,
       O_UNTIED, O_SEED, O_VOCAB };

int cmd_mkmodel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preset", required_argument, 0, O_PRESET}, {"type", required_argument, 0, O_TYPE},
        {"embd-type", required_argument, 0, O_ETYPE}, {"arch", required_argument, 0, O_ARCH},
        {"embd", required_argument, 0, O_EMBD},     {"layers", required_argument, 0, O_LAYERS},
        {"heads", required_argument, 0, O_HEADS},   {"kv-heads", required_argument, 0, O_KV},
        {"head-dim", required_argument, 0, O_HD},   {"ffn", required_argument, 0, O_FFN},
        {"untied", no_argument, 0, O_UNTIED},       {"seed", required_argument, 0, O_SEED},
        {"vocab", required_argument, 0, O_VOCAB},   {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    model_maker_spec s;
    sem_err err = {0};
    model_maker_preset("llama-1b", &s, NULL);
    const char *vocab = NULL, *out = NULL, *etype = NULL;
    sem_status st = SEM_OK;
    int c;
    optind = 1;
    opterr = 0;
    while (st == SEM_OK && (c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_PRESET: st = model_maker_preset(optarg, &s, &err); break;
        case O_TYPE: st = parse_type(optarg, &s.weight_type, &err); break;
        case O_ETYPE: etype = optarg; break;
        case O_ARCH:
            if (strcmp(optarg, "llama") == 0)
                s.arch = MODEL_ARCH_LLAMA;
            else if (strcmp(optarg, "qwen2") == 0)
                s.arch = MODEL_ARCH_QWEN2;
            else
                st = sem_err_set(&err, SEM_EINVAL, "--arch: '%s' is not llama or qwen2", optarg);
            break;
        case O_EMBD: st = cli_parse_u32("--embd", optarg, 32, 65536, &s.n_embd, &err); break;
        case O_LAYERS: st = cli_parse_u32("--layers", optarg, 1, 256, &s.n_layer, &err); break;
        case O_HEADS: st = cli_parse_u32("--heads", optarg, 1, 1024, &s.n_head, &err); break;
        case O_KV: st = cli_parse_u32("--kv-heads", optarg, 1, 1024, &s.n_head_kv, &err); break;
        case O_HD: st = cli_parse_u32("--head-dim", optarg, 2, 1024, &s.head_dim, &err); break;
        case O_FFN: st = cli_parse_u32("--ffn", optarg, 1, 1u << 20, &s.n_ff, &err); break;
        case O_UNTIED: s.tied = 0; break;
        case O_SEED: st = cli_parse_u64("--seed", optarg, &s.seed, &err); break;
        case O_VOCAB: vocab = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(); return 0;
        default: return cli_option_error("mkmodel", c, argc, argv);
        }
    }
    if (st == SEM_OK)
        st = etype ? parse_type(etype, &s.embd_type, &err) : SEM_OK;
    if (st == SEM_OK && !etype)
        s.embd_type = s.weight_type;
    if (st != SEM_OK)
        return cli_usage_fail("mkmodel", &err);
    if (!vocab)
        return cli_usage_error("mkmodel", "--vocab VOCAB.gguf is required");
    if (!out)
        return cli_usage_error("mkmodel", "-o OUT.gguf is required");
    if (optind != argc)
        return cli_usage_error("mkmodel", "unexpected argument '%s'", argv[optind]);
    uint32_t fallback = 0;
    if (model_maker_write(&s, vocab, out, &fallback, &err) != SEM_OK)
        return cli_fail("mkmodel", &err);
    printf("wrote %s: %s, %u layers, embedding %u, %u/%u heads, ffn %u, %s weights%s\n", out,
           s.arch == MODEL_ARCH_QWEN2 ? "qwen2" : "llama", s.n_layer, s.n_embd, s.n_head,
           s.n_head_kv, s.n_ff, tensor_type_name(s.weight_type),
           fallback ? " (some matrices in Q8_0: rows not a multiple of the block)" : "");
    return 0;
}
