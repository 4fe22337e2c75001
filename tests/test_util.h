/*
 * test_util.h - small helpers shared by the cmocka tests.
 */
#ifndef SEM_TEST_UTIL_H
#define SEM_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domain/cache_spec.h"

/* A valid spec: n_layers global layers of 2 KV heads x 8 dims, f16. */
static inline cache_spec test_spec(uint32_t n_layers, uint32_t block_tokens)
{
    cache_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = n_layers;
    s.n_kv_heads = 2;
    s.k_head_dim = 8;
    s.v_head_dim = 8;
    s.block_tokens = block_tokens;
    s.kv_type = CACHE_KV_F16;
    return s;
}

/* Asserts that `text` contains `needle`, printing both when it does not. */
#define assert_contains(text, needle)                                                 \
    do {                                                                              \
        const char *t_ = (text), *n_ = (needle);                                      \
        if (!strstr(t_, n_))                                                          \
            fail_msg("expected \"%s\" to contain \"%s\"", t_, n_);                    \
    } while (0)

/* A whole file as a NUL-terminated string (malloc'd); fails the test when
 * it cannot be read. */
static inline char *test_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

#ifdef SEM_TEST_DATA
/* The golden chat template tests/data/chat/STEM.jinja (malloc'd). */
static inline char *test_golden_template(const char *stem)
{
    char path[512];
    snprintf(path, sizeof path, "%s/chat/%s.jinja", SEM_TEST_DATA, stem);
    return test_read_text(path);
}
#endif

/* Deterministic xorshift64* for property tests. */
static inline uint64_t test_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
