/*
 * make_kv_seeds.c - writes the seed corpus of fuzz_kv_file: small cache
 * files of a few geometries, payload types, lengths and chunk sizes, rows
 * of reproducible values.
 *
 *   make_kv_seeds DIR
 *
 * The fingerprint's low bits pick the fuzzer's pool (fuzz_kv_file.c): the
 * seeds cover f16 and q8_0 pools, block sizes 16 to 128, and a pool one
 * block short.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/kernels/fp16.h"
#include "adapters/store/kv_file.h"

typedef struct seed {
    const char *name;
    uint32_t n_layers, n_kv_heads, k_dim, v_dim, window; /* window: layer 1 slides */
    uint32_t n_tokens, chunk;
    kv_payload payload;
    uint64_t fingerprint;
} seed;

static const seed SEEDS[] = {
    {"f16_one_token", 1, 1, 32, 32, 0, 1, 0, KV_PAYLOAD_F16, 0x100},
    {"f16_two_layers", 2, 2, 32, 32, 0, 20, 8, KV_PAYLOAD_F16, 0x200},
    {"f16_odd_dims", 1, 2, 24, 40, 0, 9, 4, KV_PAYLOAD_F16, 0x302},
    {"q8_0_sliding", 2, 1, 32, 32, 6, 21, 8, KV_PAYLOAD_Q8_0, 0x401},
    {"q4_0_sliding", 3, 1, 64, 32, 4, 17, 5, KV_PAYLOAD_Q4_0, 0x505},
    {"q8_0_pool_short", 2, 1, 32, 32, 0, 18, 16, KV_PAYLOAD_Q8_0, 0x608},
    {"f16_mqa_chunk1", 2, 1, 32, 64, 3, 7, 1, KV_PAYLOAD_F16, 0x706},
};

static int write_seed(const char *dir, const seed *s)
{
    cache_spec spec = {.n_layers = s->n_layers,
                       .n_kv_heads = s->n_kv_heads,
                       .k_head_dim = s->k_dim,
                       .v_head_dim = s->v_dim,
                       .block_tokens = 16,
                       .kv_type = CACHE_KV_F16};
    if (s->window)
        spec.layers[1] = (cache_layer){CACHE_ATTN_SLIDING, s->window};
    sem_err err = {0};
    block_pool *pool = block_pool_create(&spec, 64 * cache_spec_block_bytes(&spec), &err);
    block_table *t = pool ? block_table_create(pool, "seed", &err) : NULL;
    int32_t tokens[64];
    for (uint32_t i = 0; i < s->n_tokens; i++)
        tokens[i] = (int32_t)(i * 7 + 1);
    if (!t || block_table_append(t, tokens, s->n_tokens, &err) != SEM_OK) {
        fprintf(stderr, "%s: %s\n", s->name, err.detail);
        return 1;
    }
    /* Every element of every held block: a reproducible value in [-2, 2). */
    uint32_t x = 12345;
    for (uint32_t l = 0; l < s->n_layers; l++) {
        const uint32_t *blocks = block_table_blocks(t, l);
        for (uint32_t b = 0; b < block_table_n_blocks(t, l); b++) {
            uint16_t *e = (uint16_t *)block_pool_data(pool, blocks[b]);
            for (size_t i = 0; i < cache_spec_block_bytes(&spec) / 2; i++) {
                x = x * 1103515245u + 12345u;
                e[i] = fp16_from_f32((float)(x >> 16 & 0xffff) / 16384.0f - 2.0f);
            }
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s.kv", dir, s->name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    kv_file_write_opts o = {.fingerprint = s->fingerprint, .payload = s->payload,
                            .chunk_tokens = s->chunk};
    int bad = fd < 0 || kv_file_write(fd, path, t, &o, NULL, NULL, &err) != SEM_OK;
    if (bad)
        fprintf(stderr, "%s: %s\n", path, fd < 0 ? "cannot create" : err.detail);
    if (fd >= 0)
        close(fd);
    block_table_destroy(t);
    block_pool_destroy(pool);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_kv_seeds DIR\n");
        return 2;
    }
    int bad = 0;
    for (size_t i = 0; i < sizeof SEEDS / sizeof SEEDS[0]; i++)
        bad |= write_seed(argv[1], &SEEDS[i]);
    return bad;
}
