/*
 * fuzz_kv_file.c - libFuzzer target: any bytes as an agent's cache file,
 * read into a block pool by kv_file_read.
 *
 * Each input is read twice: as given (almost every mutation then fails a
 * checksum, which is the first thing a damaged file meets) and repaired,
 * with the preamble check, file_bytes, the length, the header checksum and
 * every chunk checksum made to agree with the header's fields, so that the
 * field checks, the geometry comparison, the restore into the pool and the
 * row conversions see every value the fuzzer invents.
 *
 * The pool takes its geometry from the file's header (when it is one a
 * pool can have) and its KV type and block size from bits of the
 * fingerprint: bit 0 q8_0 (else f16), bits 1-2 block_tokens 16 << n, bit 3
 * one block fewer than the file needs (the pool-full path). The expected
 * fingerprint is the file's own, so a mismatch is never why it fails.
 *
 * A read either loads a table that passes block_table_check and holds the
 * file's tokens, or fails with a file's status (corrupt, incompatible,
 * pool full) and leaves the pool as it found it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "adapters/store/kv_file.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPAIR_MAX_BYTES (1u << 20) /* a repaired file is at most this long */
#define POOL_MAX_BYTES (8u << 20)

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* The header's fields as they stand (nothing verified); 0 if too short. */
static int decode(const uint8_t *d, size_t n, kv_file_header *h)
{
    memset(h, 0, sizeof *h);
    if (n < KV_FILE_FIXED_BYTES)
        return 0;
    h->fingerprint = get64(d + 16);
    h->n_layers = get32(d + 24);
    h->n_kv_heads = get32(d + 28);
    h->k_head_dim = get32(d + 32);
    h->v_head_dim = get32(d + 36);
    h->payload = (kv_payload)get32(d + 40);
    h->chunk_tokens = get32(d + 44);
    h->n_tokens = get32(d + 48);
    for (uint32_t l = 0; l < h->n_layers && l < CACHE_SPEC_MAX_LAYERS; l++) {
        size_t off = KV_FILE_FIXED_BYTES + (size_t)l * 8;
        if (off + 8 <= n) {
            h->layers[l].kind = (cache_attn_kind)get32(d + off);
            h->layers[l].window = get32(d + off + 4);
        }
    }
    return 1;
}

/*
 * A copy of d made self-consistent (see the file comment), in *out; 0 when
 * the header's sizes are beyond what a repair tries.
 */
static size_t repair(const uint8_t *d, size_t n, uint8_t **out)
{
    kv_file_header h;
    if (!decode(d, n, &h) || h.n_layers == 0 || h.n_layers > CACHE_SPEC_MAX_LAYERS ||
        h.n_kv_heads > CACHE_SPEC_MAX_KV_HEADS || h.k_head_dim > CACHE_SPEC_MAX_HEAD_DIM ||
        h.v_head_dim > CACHE_SPEC_MAX_HEAD_DIM || h.chunk_tokens == 0 ||
        h.n_tokens > REPAIR_MAX_BYTES / 4)
        return 0;
    uint64_t size = kv_file_size_for(&h);
    uint64_t header =
        KV_FILE_FIXED_BYTES + (uint64_t)h.n_layers * 8 + (uint64_t)h.n_tokens * 4 + 8;
    if (size == 0 || size > REPAIR_MAX_BYTES || header > size)
        return 0;
    uint8_t *b = calloc(1, size);
    FUZZ_CHECK(b != NULL, "out of memory");
    memcpy(b, d, n < size ? n : size);
    put64(b + 56, size);
    put32(b + 12, XXH32(b, 12, 0));
    uint64_t checksum = XXH64(b, header - 8, 0);
    put64(b + header - 8, checksum);
    uint64_t per_token = (uint64_t)h.n_kv_heads * (kv_payload_row_bytes(h.payload, h.k_head_dim) +
                                                   kv_payload_row_bytes(h.payload, h.v_head_dim));
    uint64_t off = header;
    for (uint32_t l = 0; l < h.n_layers; l++) {
        const cache_layer *ly = &h.layers[l];
        uint32_t kept =
            ly->kind == CACHE_ATTN_SLIDING && h.n_tokens > ly->window ? ly->window : h.n_tokens;
        uint32_t c = 0;
        for (uint64_t a = h.n_tokens - kept; a < h.n_tokens; a += h.chunk_tokens, c++) {
            uint64_t m = h.n_tokens - a > h.chunk_tokens ? h.chunk_tokens : h.n_tokens - a;
            uint64_t bytes = m * per_token;
            FUZZ_CHECK(off + bytes + 8 <= size, "the repair walked past the file's size");
            put64(b + off + bytes, XXH64(b + off, bytes, checksum ^ ((uint64_t)l << 32 | c)));
            off += bytes + 8;
        }
    }
    FUZZ_CHECK(off == size, "the chunks add up to %llu bytes, kv_file_size_for says %llu",
               (unsigned long long)off, (unsigned long long)size);
    *out = b;
    return size;
}

/* The pool the file is read into (see the file comment). The last few are
 * kept for inputs of the same geometry and size: making one zeroes its
 * arena, which would otherwise cost more than the read. */
static block_pool *pool_for(const kv_file_header *h, size_t file_bytes)
{
    enum { KEEP = 4 };
    static struct {
        block_pool *pool;
        cache_spec spec;
        size_t budget;
    } kept[KEEP];
    static unsigned next;
    cache_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = h->n_layers;
    s.n_kv_heads = h->n_kv_heads;
    s.k_head_dim = h->k_head_dim;
    s.v_head_dim = h->v_head_dim;
    s.block_tokens = 16u << ((h->fingerprint >> 1) & 3);
    s.kv_type = h->fingerprint & 1 ? CACHE_KV_Q8_0 : CACHE_KV_F16;
    if (s.n_layers <= CACHE_SPEC_MAX_LAYERS)
        memcpy(s.layers, h->layers, s.n_layers * sizeof s.layers[0]);
    if (cache_spec_validate(&s, NULL) != SEM_OK)
        s.kv_type = CACHE_KV_F16;
    uint64_t blocks = 0;
    size_t block = 0;
    if (cache_spec_validate(&s, NULL) == SEM_OK) {
        block = (cache_spec_block_bytes(&s) + 63) / 64 * 64; /* the pool's block stride */
        blocks = cache_spec_total_blocks_for(&s, h->n_tokens);
        if (h->fingerprint & 8 && blocks > 1)
            blocks--;
        /* A file too short for its own token list fails before the pool is
         * touched: spare making (and zeroing) a large one for it. */
        uint64_t listed = KV_FILE_FIXED_BYTES + (uint64_t)h->n_layers * 8 + (uint64_t)h->n_tokens * 4;
        if (listed > file_bytes)
            blocks = 1;
    }
    if (block == 0 || block > POOL_MAX_BYTES || blocks == 0 || blocks > POOL_MAX_BYTES / block) {
        /* Not a pool this input can have: one that refuses its geometry. */
        memset(&s, 0, sizeof s);
        s = (cache_spec){.n_layers = 2, .n_kv_heads = 2, .k_head_dim = 32, .v_head_dim = 32,
                         .block_tokens = 16, .kv_type = CACHE_KV_F16};
        s.layers[1] = (cache_layer){CACHE_ATTN_SLIDING, 24};
        block = (cache_spec_block_bytes(&s) + 63) / 64 * 64;
        blocks = 8;
    }
    size_t budget = (size_t)blocks * block;
    for (unsigned i = 0; i < KEEP; i++)
        if (kept[i].pool && kept[i].budget == budget && memcmp(&s, &kept[i].spec, sizeof s) == 0)
            return kept[i].pool;
    unsigned i = next++ % KEEP;
    block_pool_destroy(kept[i].pool);
    sem_err err = {0};
    kept[i].pool = block_pool_create(&s, budget, &err);
    FUZZ_CHECK(kept[i].pool != NULL, "%s", err.detail);
    kept[i].spec = s;
    kept[i].budget = budget;
    return kept[i].pool;
}

static void read_one(int fd, const uint8_t *d, size_t n)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, d, n, 0) == (ssize_t)n, "memfd write");
    kv_file_header raw;
    decode(d, n, &raw);
    block_pool *pool = pool_for(&raw, n);
    block_table *t = NULL;
    kv_file_header h;
    sem_err err = {0};
    sem_status st = kv_file_read(fd, "fuzz.kv", raw.fingerprint, pool, "fuzz", &t, &h, &err);
    FUZZ_NOTE("  %s: %s", sem_status_name(st), st == SEM_OK ? "loaded" : err.detail);
    if (st == SEM_OK) {
        FUZZ_CHECK(t != NULL, "success without a table");
        FUZZ_CHECK(block_table_check(t, &err) == SEM_OK, "%s", err.detail);
        FUZZ_CHECK(block_table_n_tokens(t) == h.n_tokens, "%u tokens, the header says %u",
                   block_table_n_tokens(t), h.n_tokens);
        FUZZ_CHECK(h.file_bytes == n, "file_bytes %llu of a %zu-byte file",
                   (unsigned long long)h.file_bytes, n);
        const int32_t *tok = block_table_tokens(t);
        for (uint32_t i = 0; i < h.n_tokens; i++)
            FUZZ_CHECK(tok[i] == (int32_t)get32(d + KV_FILE_FIXED_BYTES + (size_t)h.n_layers * 8 +
                                                (size_t)i * 4),
                       "token %u differs from the file", i);
        FUZZ_CHECK(block_pool_used(pool) == block_table_total_blocks(t),
                   "the pool lends %u blocks, the table holds %u", block_pool_used(pool),
                   block_table_total_blocks(t));
        block_table_destroy(t);
    } else {
        FUZZ_CHECK(t == NULL, "a failed read returned a table");
        FUZZ_CHECK(st == SEM_ECORRUPT || st == SEM_EINCOMPAT || st == SEM_EPOOL ||
                       st == SEM_ENOMEM,
                   "%s: %s", sem_status_name(st), err.detail);
        FUZZ_CHECK(err.detail[0] != '\0', "an error without a message");
    }
    FUZZ_CHECK(block_pool_used(pool) == 0 && block_pool_owner_count(pool) == 0,
               "the pool keeps %u blocks and %u owners", block_pool_used(pool),
               block_pool_owner_count(pool));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_kv_file", 0);
        FUZZ_CHECK(fd >= 0, "memfd_create");
    }
    read_one(fd, data, size);
    uint8_t *fixed = NULL;
    size_t n = repair(data, size, &fixed);
    if (n) {
        read_one(fd, fixed, n);
        free(fixed);
    }
    return 0;
}
