/*
 * tokenizer_test_util.h - shared by the tokenizer tests: file loading, the
 * golden-data location, hex, and a builder for small GGUF files in memory.
 */
#ifndef SEM_TOKENIZER_TEST_UTIL_H
#define SEM_TOKENIZER_TEST_UTIL_H

#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "adapters/gguf/gguf.h"
#include "adapters/text/tokenizer.h"

#define LOCAL_TOKENIZER_DATA SEM_TEST_DATA "/tokenizer"

static inline char *tt_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return b;
}

static inline int tt_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static inline int tt_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The full golden suite: $SEMANTIC_TESTDATA, else ../shared/golden beside the
 * project root. NULL when neither has a tokenizer/ folder. */
static inline const char *tt_golden_dir(void)
{
    static char dir[1024];
    const char *env = getenv("SEMANTIC_TESTDATA");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : SEM_GOLDEN_DEFAULT);
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/tokenizer", dir);
    return tt_is_dir(probe) ? dir : NULL;
}

static inline tokenizer *tt_load(const char *path)
{
    sem_err err = {0};
    gguf_file *f = gguf_open(path, &err);
    if (!f)
        fail_msg("gguf_open(%s): %s", path, err.detail);
    tokenizer *tk = tokenizer_load(f, &err);
    gguf_close(f); /* the tokenizer keeps its own copies */
    if (!tk)
        fail_msg("tokenizer_load(%s): %s", path, err.detail);
    return tk;
}

static inline void tt_hex(const void *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- a GGUF v3 file with metadata only, built in memory */

typedef struct gguf_builder {
    uint8_t *v;
    size_t n, cap;
    uint64_t n_kv;
} gguf_builder;

static inline void gb_put(gguf_builder *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->v = realloc(b->v, b->cap);
        assert_non_null(b->v);
    }
    memcpy(b->v + b->n, p, n);
    b->n += n;
}

static inline void gb_u32(gguf_builder *b, uint32_t x) { gb_put(b, &x, 4); }
static inline void gb_u64(gguf_builder *b, uint64_t x) { gb_put(b, &x, 8); }

static inline void gb_strn(gguf_builder *b, const char *s, size_t n)
{
    gb_u64(b, n);
    gb_put(b, s, n);
}

static inline void gb_str(gguf_builder *b, const char *s) { gb_strn(b, s, strlen(s)); }

static inline void gb_key(gguf_builder *b, const char *key, gguf_value_type t)
{
    gb_str(b, key);
    gb_u32(b, (uint32_t)t);
    b->n_kv++;
}

static inline void kv_str(gguf_builder *b, const char *key, const char *v)
{
    gb_key(b, key, GGUF_STRING);
    gb_str(b, v);
}

static inline void kv_u32(gguf_builder *b, const char *key, uint32_t v)
{
    gb_key(b, key, GGUF_UINT32);
    gb_u32(b, v);
}

static inline void kv_bool(gguf_builder *b, const char *key, int v)
{
    uint8_t x = (uint8_t)(v != 0);
    gb_key(b, key, GGUF_BOOL);
    gb_put(b, &x, 1);
}

static inline void kv_strs(gguf_builder *b, const char *key, const char *const *v, size_t n)
{
    gb_key(b, key, GGUF_ARRAY);
    gb_u32(b, GGUF_STRING);
    gb_u64(b, n);
    for (size_t i = 0; i < n; i++)
        gb_str(b, v[i]);
}

static inline void kv_f32s(gguf_builder *b, const char *key, const float *v, size_t n)
{
    gb_key(b, key, GGUF_ARRAY);
    gb_u32(b, GGUF_FLOAT32);
    gb_u64(b, n);
    gb_put(b, v, n * 4);
}

static inline void kv_i32s(gguf_builder *b, const char *key, const int32_t *v, size_t n)
{
    gb_key(b, key, GGUF_ARRAY);
    gb_u32(b, GGUF_INT32);
    gb_u64(b, n);
    gb_put(b, v, n * 4);
}

/* The finished file (header + metadata); the caller frees it. */
static inline uint8_t *gb_finish(gguf_builder *b, size_t *size)
{
    uint8_t *out = malloc(24 + b->n);
    assert_non_null(out);
    memcpy(out, "GGUF", 4);
    uint32_t version = 3;
    uint64_t n_tensors = 0;
    memcpy(out + 4, &version, 4);
    memcpy(out + 8, &n_tensors, 8);
    memcpy(out + 16, &b->n_kv, 8);
    memcpy(out + 24, b->v, b->n);
    *size = 24 + b->n;
    free(b->v);
    memset(b, 0, sizeof *b);
    return out;
}

/* Loads a tokenizer from builder contents; NULL with err set on failure. */
static inline tokenizer *gb_load(gguf_builder *b, sem_err *err)
{
    size_t size = 0;
    uint8_t *bytes = gb_finish(b, &size);
    gguf_file *f = gguf_open_memory(bytes, size, "in-memory.gguf", err);
    tokenizer *tk = f ? tokenizer_load(f, err) : NULL;
    gguf_close(f);
    free(bytes);
    return tk;
}

#endif
