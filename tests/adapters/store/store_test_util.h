/*
 * store_test_util.h - tables with known KV, folders to throw away, and
 * comparisons with the tolerance each conversion allows.
 *
 * The spec of every store test: 3 layers (0 and 1 global, 2 sliding with a
 * window of 20), 2 KV heads, K rows of 32 and V rows of 64 elements (K and
 * V dims differ on purpose), blocks of 16 tokens unless a test says
 * otherwise. Element i of the K (v = 0) or V (v = 1) row of head h for
 * token p on layer l is pattern(seed, l, v, h, p, i), a hash in [-1, 1];
 * token p is test_token(seed, p), so a table's seed can be read back from
 * its first token.
 */
#ifndef SEM_STORE_TEST_UTIL_H
#define SEM_STORE_TEST_UTIL_H

#include "../../test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"
#include "adapters/store/kv_file.h"
#include "domain/block_table.h"

#define STORE_TEST_WINDOW 20

static inline cache_spec store_spec(uint32_t block_tokens, cache_kv_type kv)
{
    cache_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = 3;
    s.n_kv_heads = 2;
    s.k_head_dim = 32;
    s.v_head_dim = 64;
    s.block_tokens = block_tokens;
    s.kv_type = kv;
    s.layers[2].kind = CACHE_ATTN_SLIDING;
    s.layers[2].window = STORE_TEST_WINDOW;
    return s;
}

static inline block_pool *store_pool(uint32_t block_tokens, cache_kv_type kv, uint32_t blocks)
{
    cache_spec s = store_spec(block_tokens, kv);
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, NULL);
    assert_non_null(p);
    return p;
}

static inline int32_t test_token(uint64_t seed, uint32_t p)
{
    return (int32_t)((seed % 20000) * 100000 + p);
}

static inline float pattern(uint64_t seed, uint32_t l, int v, uint32_t h, uint32_t p, uint32_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)l << 56 | (uint64_t)v << 55 |
                                                  (uint64_t)h << 40 | (uint64_t)p << 12 | i);
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (float)((double)(x >> 40) / (double)(1u << 24) * 2.0 - 1.0);
}

static inline uint32_t kv_tensor_of(cache_kv_type t)
{
    return t == CACHE_KV_Q8_0 ? TENSOR_Q8_0 : TENSOR_F16;
}

/* Pointer to the K or V row of head h for token p on layer l (NULL if not held). */
static inline uint8_t *row_ptr(const block_table *t, uint32_t l, int v, uint32_t h, uint32_t p)
{
    block_pool *pool = block_table_pool(t);
    const cache_spec *s = block_pool_spec(pool);
    uint32_t b = block_table_block_for(t, l, p);
    if (b == UINT32_MAX)
        return NULL;
    uint32_t slot = p % s->block_tokens;
    return block_pool_data(pool, b) +
           (v ? cache_spec_v_offset(s, h, slot) : cache_spec_k_offset(s, h, slot));
}

/* A table of n tokens of `seed` with every held row written; sliding
 * windows released when `release`. */
static inline block_table *make_table(block_pool *pool, uint64_t seed, uint32_t n, int release)
{
    const cache_spec *s = block_pool_spec(pool);
    block_table *t = block_table_create(pool, "src", NULL);
    assert_non_null(t);
    int32_t *tok = malloc(n * sizeof *tok);
    assert_non_null(tok);
    for (uint32_t p = 0; p < n; p++)
        tok[p] = test_token(seed, p);
    sem_err err = {0};
    if (block_table_append(t, tok, n, &err) != SEM_OK)
        fail_msg("append: %s", err.detail);
    free(tok);
    float row[64];
    for (uint32_t l = 0; l < s->n_layers; l++)
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = 0; p < n; p++) {
                    for (uint32_t i = 0; i < dim; i++)
                        row[i] = pattern(seed, l, v, h, p, i);
                    assert_int_equal(quant_quantize_row(kv_tensor_of(s->kv_type), row,
                                                        row_ptr(t, l, v, h, p), dim, NULL),
                                     SEM_OK);
                }
        }
    if (release)
        assert_int_equal(block_table_release_window(t, NULL), SEM_OK);
    return t;
}

/* Relative error (of the block's largest |x|) each element type may add. */
static inline double type_error(uint32_t type)
{
    switch (type) {
    case TENSOR_Q8_0: return 1.0 / 127.0;
    case TENSOR_Q4_0: return 1.0 / 7.0;
    default: return 1.0 / 1024.0;
    }
}

static inline uint32_t payload_tensor_of(kv_payload p)
{
    return p == KV_PAYLOAD_Q8_0 ? TENSOR_Q8_0 : p == KV_PAYLOAD_Q4_0 ? TENSOR_Q4_0 : TENSOR_F16;
}

/*
 * Checks that t holds n tokens of `seed`, that every layer holds exactly
 * the blocks a restored sequence keeps, and that every kept row is within
 * `rel` of the pattern (per 32-value block, relative to its largest |x|).
 */
static inline void assert_table_is(const block_table *t, uint64_t seed, uint32_t n, double rel)
{
    const cache_spec *s = block_pool_spec(block_table_pool(t));
    assert_int_equal(block_table_n_tokens(t), n);
    for (uint32_t p = 0; p < n; p++)
        if (block_table_tokens(t)[p] != test_token(seed, p))
            fail_msg("token %u is %d, expected %d", p, block_table_tokens(t)[p],
                     test_token(seed, p));
    float row[64];
    for (uint32_t l = 0; l < s->n_layers; l++) {
        assert_int_equal(block_table_first_block(t, l), cache_spec_first_block(s, l, n));
        assert_int_equal(block_table_n_blocks(t, l), cache_spec_blocks_for(s, l, n));
        uint32_t first = n - (uint32_t)cache_spec_kept_tokens(s, l, n);
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = first; p < n; p++) {
                    const uint8_t *src = row_ptr(t, l, v, h, p);
                    assert_non_null(src);
                    quant_dequantize_row_unchecked(kv_tensor_of(s->kv_type), src, row, dim);
                    for (uint32_t b = 0; b < dim; b += 32) {
                        float amax = 0;
                        for (uint32_t i = b; i < b + 32; i++)
                            amax = fmaxf(amax, fabsf(pattern(seed, l, v, h, p, i)));
                        double tol = amax * rel + 1e-4;
                        for (uint32_t i = b; i < b + 32; i++) {
                            double want = pattern(seed, l, v, h, p, i);
                            if (fabs(row[i] - want) > tol)
                                fail_msg("layer %u %c head %u token %u [%u] = %g, expected %g "
                                         "within %g",
                                         l, v ? 'V' : 'K', h, p, i, row[i], want, tol);
                        }
                    }
                }
        }
    }
}

/* Checks that the kept rows of a and b (same kv_type) are byte for byte equal. */
static inline void assert_rows_identical(const block_table *a, const block_table *b)
{
    const cache_spec *sa = block_pool_spec(block_table_pool(a));
    const cache_spec *sb = block_pool_spec(block_table_pool(b));
    assert_int_equal(sa->kv_type, sb->kv_type);
    uint32_t n = block_table_n_tokens(a);
    assert_int_equal(block_table_n_tokens(b), n);
    assert_memory_equal(block_table_tokens(a), block_table_tokens(b), n * sizeof(int32_t));
    for (uint32_t l = 0; l < sa->n_layers; l++) {
        uint32_t first = n - (uint32_t)cache_spec_kept_tokens(sa, l, n);
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? sa->v_head_dim : sa->k_head_dim;
            size_t bytes = cache_spec_row_bytes(sa->kv_type, dim);
            for (uint32_t h = 0; h < sa->n_kv_heads; h++)
                for (uint32_t p = first; p < n; p++)
                    if (memcmp(row_ptr(a, l, v, h, p), row_ptr(b, l, v, h, p), bytes) != 0)
                        fail_msg("layer %u %c head %u token %u differs", l, v ? 'V' : 'K', h,
                                 p);
        }
    }
}

/* ------------------------------------------------------------ folders */

static inline char *temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/semstore-XXXXXX", base && base[0] ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void remove_dir(char *dir)
{
    if (dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Whole file into memory; *n its size. */
static inline uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static inline void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("create %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

#endif
