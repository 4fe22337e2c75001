/* Specification of kv_file.h: the cache file codec. */
#include "store_test_util.h"

#include <xxhash.h>

#define FP 0x1234abcd5678ef01ull

typedef struct fixture {
    char *dir;
    char path[600];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    snprintf(f->path, sizeof f->path, "%s/a.kv", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* Writes t to path; returns the file size. */
static uint64_t write_table(const char *path, const block_table *t, kv_payload payload,
                            uint32_t chunk, kv_payload *used)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    kv_file_write_opts o = {.fingerprint = FP, .payload = payload, .chunk_tokens = chunk};
    uint64_t bytes = 0;
    sem_err err = {0};
    if (kv_file_write(fd, path, t, &o, &bytes, used, &err) != SEM_OK)
        fail_msg("write: %s", err.detail);
    close(fd);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, bytes);
    return bytes;
}

/* Reads path into pool; the status, and *out on success. */
static sem_status read_table(const char *path, uint64_t fp, block_pool *pool, block_table **out,
                             sem_err *err)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    sem_status st = kv_file_read(fd, path, fp, pool, "loaded", out, NULL, err);
    close(fd);
    return st;
}

static void assert_pool_empty(block_pool *p)
{
    assert_int_equal(block_pool_used(p), 0);
    assert_int_equal(block_pool_owner_count(p), 0);
}

/* ------------------------------------------------------------ round trips */

static const uint32_t LENGTHS[] = {1, 15, 16, 17, 100};
static const kv_payload PAYLOADS[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
static const cache_kv_type KV_TYPES[] = {CACHE_KV_F16, CACHE_KV_Q8_0};

/* Every payload from every pool type, into a pool like the source: tokens
 * identical, rows bit-exact where nothing is converted, else within the
 * error of each conversion; sliding layers hold exactly their window. */
static void round_trip_every_payload_pool_type_and_length(void **state)
{
    fixture *f = *state;
    for (size_t k = 0; k < 2; k++)
        for (size_t pl = 0; pl < 3; pl++)
            for (size_t li = 0; li < 5; li++) {
                uint32_t n = LENGTHS[li];
                uint64_t seed = 10 * k + pl + 100 * li + 1;
                block_pool *src_pool = store_pool(16, KV_TYPES[k], 64);
                block_pool *dst_pool = store_pool(16, KV_TYPES[k], 64);
                block_table *src = make_table(src_pool, seed, n, 1);
                kv_payload used;
                write_table(f->path, src, PAYLOADS[pl], 0, &used);
                assert_int_equal(used, PAYLOADS[pl]);
                block_table *dst = NULL;
                sem_err err = {0};
                if (read_table(f->path, FP, dst_pool, &dst, &err) != SEM_OK)
                    fail_msg("read: %s", err.detail);
                uint32_t pool_t = kv_tensor_of(KV_TYPES[k]);
                uint32_t pay_t = payload_tensor_of(PAYLOADS[pl]);
                if (pool_t == pay_t)
                    assert_rows_identical(src, dst);
                double rel = type_error(pool_t) * 2 + (pool_t == pay_t ? 0 : type_error(pay_t));
                assert_table_is(dst, seed, n, rel);
                assert_int_equal(block_pool_used(dst_pool),
                                 cache_spec_total_blocks_for(block_pool_spec(dst_pool), n));
                assert_int_equal(block_table_check(dst, NULL), SEM_OK);
                block_table_destroy(dst);
                block_table_destroy(src);
                block_pool_destroy(src_pool);
                block_pool_destroy(dst_pool);
            }
}

/* The file does not depend on the source's block size: a file loads into
 * pools of other block sizes and KV types, re-blocked and converted. */
static void loads_into_other_block_sizes_and_kv_types(void **state)
{
    fixture *f = *state;
    static const uint32_t BTS[] = {16, 32, 64, 256};
    for (size_t k = 0; k < 2; k++)
        for (size_t b = 0; b < 4; b++)
            for (size_t pl = 0; pl < 3; pl++) {
                uint32_t n = 100;
                uint64_t seed = 7 + k * 13 + b * 3 + pl;
                block_pool *src_pool = store_pool(16, CACHE_KV_F16, 64);
                block_table *src = make_table(src_pool, seed, n, 0);
                write_table(f->path, src, PAYLOADS[pl], 16, NULL);
                block_pool *dst_pool = store_pool(BTS[b], KV_TYPES[k], 32);
                block_table *dst = NULL;
                sem_err err = {0};
                if (read_table(f->path, FP, dst_pool, &dst, &err) != SEM_OK)
                    fail_msg("read into bt %u: %s", BTS[b], err.detail);
                double rel = type_error(TENSOR_F16) + type_error(payload_tensor_of(PAYLOADS[pl])) +
                             type_error(kv_tensor_of(KV_TYPES[k]));
                assert_table_is(dst, seed, n, rel);
                if (KV_TYPES[k] == CACHE_KV_F16 && PAYLOADS[pl] == KV_PAYLOAD_F16)
                    assert_rows_identical(src, dst);
                block_table_destroy(dst);
                block_table_destroy(src);
                block_pool_destroy(src_pool);
                block_pool_destroy(dst_pool);
            }
}

/* A sliding layer is restored with only its window: 100 tokens, window 20,
 * blocks of 16: tokens 80..99 in blocks 5 and 6. */
static void sliding_layers_hold_exactly_their_window(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(p, 3, 100, 1);
    write_table(f->path, src, KV_PAYLOAD_F16, 0, NULL);
    block_table *dst = NULL;
    assert_int_equal(read_table(f->path, FP, p, &dst, NULL), SEM_OK);
    assert_int_equal(block_table_first_block(dst, 2), 5);
    assert_int_equal(block_table_n_blocks(dst, 2), 2);
    assert_int_equal(block_table_n_blocks(dst, 0), 7);
    assert_int_equal(block_table_total_blocks(dst), 16);
    block_table_destroy(dst);
    block_table_destroy(src);
    block_pool_destroy(p);
}

/* The size of a file is the documented formula. */
static void file_size_is_the_documented_formula(void **state)
{
    fixture *f = *state;
    /* Row bytes of 32 / 64 values: f16 64/128, q8_0 34/68, q4_0 18/36. */
    static const uint64_t TOKEN_BYTES[] = {2 * (64 + 128), 2 * (34 + 68), 2 * (18 + 36)};
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 5, 100, 0);
    for (size_t pl = 0; pl < 3; pl++) {
        uint64_t size = write_table(f->path, t, PAYLOADS[pl], 16, NULL);
        uint64_t header = 64 + 3 * 8 + 100 * 4 + 8;
        /* Layers 0, 1 keep 100 tokens (7 chunks of 16), layer 2 keeps 20 (2 chunks). */
        uint64_t payload = (100 + 100 + 20) * TOKEN_BYTES[pl] + (7 + 7 + 2) * 8;
        assert_int_equal(size, header + payload);
    }
    assert_int_equal(kv_payload_row_bytes(KV_PAYLOAD_F16, 64), 128);
    assert_int_equal(kv_payload_row_bytes(KV_PAYLOAD_Q8_0, 64), 68);
    assert_int_equal(kv_payload_row_bytes(KV_PAYLOAD_Q4_0, 64), 36);
    block_table_destroy(t);
    block_pool_destroy(p);
}

/* Head dims that q8_0 / q4_0 cannot take are stored as f16. */
static void quantized_payload_falls_back_to_f16_for_odd_dims(void **state)
{
    fixture *f = *state;
    cache_spec s = test_spec(2, 16); /* head dims 8 */
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 8, NULL);
    block_table *t = block_table_create(p, "a", NULL);
    int32_t tok[3] = {1, 2, 3};
    assert_int_equal(block_table_append(t, tok, 3, NULL), SEM_OK);
    kv_payload used = KV_PAYLOAD_DEFAULT;
    write_table(f->path, t, KV_PAYLOAD_Q4_0, 0, &used);
    assert_int_equal(used, KV_PAYLOAD_F16);
    block_table *u = NULL;
    assert_int_equal(read_table(f->path, FP, p, &u, NULL), SEM_OK);
    assert_memory_equal(block_table_tokens(u), tok, sizeof tok);
    block_table_destroy(u);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void header_alone_gives_the_tokens(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_Q8_0, 64);
    block_table *t = make_table(p, 9, 37, 1);
    uint64_t size = write_table(f->path, t, KV_PAYLOAD_Q4_0, 0, NULL);
    int fd = open(f->path, O_RDONLY);
    kv_file_header h;
    int32_t *tok = NULL;
    assert_int_equal(kv_file_read_header(fd, f->path, &h, &tok, NULL), SEM_OK);
    assert_int_equal(h.n_tokens, 37);
    assert_int_equal(h.file_bytes, size);
    assert_int_equal(h.payload, KV_PAYLOAD_Q4_0);
    assert_int_equal(h.fingerprint, FP);
    assert_int_equal(h.layers[2].window, STORE_TEST_WINDOW);
    assert_memory_equal(tok, block_table_tokens(t), 37 * sizeof *tok);
    free(tok);
    kv_file_header fixed;
    assert_int_equal(kv_file_read_fixed(fd, f->path, &fixed, NULL), SEM_OK);
    assert_int_equal(fixed.n_tokens, 37);
    assert_int_equal(fixed.file_bytes, size);
    close(fd);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void writing_an_empty_table_is_refused(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 8);
    block_table *t = block_table_create(p, "a", NULL);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    kv_file_write_opts o = {.fingerprint = FP};
    sem_err err = {0};
    assert_int_equal(kv_file_write(fd, f->path, t, &o, NULL, NULL, &err), SEM_EINVAL);
    assert_contains(err.detail, "no tokens");
    close(fd);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static int fail_second_write(void *ctx, const char *path, uint64_t offset, size_t bytes)
{
    (void)path;
    (void)bytes;
    int *calls = ctx;
    return ++*calls == 2 && offset > 0 ? ENOSPC : 0;
}

static void a_failing_write_is_an_io_error(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 2, 50, 0);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int calls = 0;
    kv_file_write_opts o = {.fingerprint = FP, .hook = fail_second_write, .hook_ctx = &calls};
    sem_err err = {0};
    assert_int_equal(kv_file_write(fd, f->path, t, &o, NULL, NULL, &err), SEM_EIO);
    assert_contains(err.detail, "No space left on device");
    assert_contains(err.detail, "a.kv at offset");
    close(fd);
    block_table_destroy(t);
    block_pool_destroy(p);
}

/* ------------------------------------------------------------ damage */

/* A good file of 40 tokens in chunks of 16: its bytes and size. */
static uint8_t *good_file(fixture *f, block_pool *p, uint64_t seed, size_t *n)
{
    block_table *t = make_table(p, seed, 40, 1);
    write_table(f->path, t, KV_PAYLOAD_Q8_0, 16, NULL);
    block_table_destroy(t);
    return read_file(f->path, n);
}

/* Truncating the file at every byte offset is SEM_ECORRUPT, and the pool
 * is left as it was. */
static void truncation_at_every_offset_is_corrupt(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    uint8_t *bytes = good_file(f, p, 4, &n);
    int fd = open(f->path, O_RDWR);
    for (size_t cut = n; cut-- > 0;) {
        assert_int_equal(ftruncate(fd, (off_t)cut), 0);
        block_table *t = (block_table *)1;
        sem_err err = {0};
        sem_status st = kv_file_read(fd, f->path, FP, p, "x", &t, NULL, &err);
        if (st != SEM_ECORRUPT)
            fail_msg("cut at %zu: %s: %s", cut, sem_status_name(st), err.detail);
        assert_null(t);
        assert_contains(err.detail, "truncated");
        assert_pool_empty(p);
    }
    close(fd);
    free(bytes);
    block_pool_destroy(p);
}

/* Flipping any bit of the header, and sampled bits of the payload, is
 * SEM_ECORRUPT; the detail names an offset. */
static void bit_flips_are_corrupt(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    uint8_t *bytes = good_file(f, p, 6, &n);
    size_t header = 64 + 3 * 8 + 40 * 4 + 8;
    int fd = open(f->path, O_RDWR);
    for (size_t off = 0; off < n; off += off < header ? 1 : 13) {
        for (int bit = 0; bit < 8; bit += off < header ? 1 : 3) {
            uint8_t b = bytes[off] ^ (uint8_t)(1u << bit);
            assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
            block_table *t = NULL;
            sem_err err = {0};
            sem_status st = kv_file_read(fd, f->path, FP, p, "x", &t, NULL, &err);
            if (st != SEM_ECORRUPT)
                fail_msg("flip of bit %d at %zu: %s: %s", bit, off, sem_status_name(st),
                         err.detail);
            assert_null(t);
            assert_pool_empty(p);
            if (off >= header)
                assert_contains(err.detail, "fails its checksum");
            assert_int_equal(pwrite(fd, &bytes[off], 1, (off_t)off), 1);
        }
    }
    /* Restored, it reads. */
    block_table *t = NULL;
    assert_int_equal(kv_file_read(fd, f->path, FP, p, "x", &t, NULL, NULL), SEM_OK);
    block_table_destroy(t);
    close(fd);
    free(bytes);
    block_pool_destroy(p);
}

/* Swapping two chunks of equal size fails: a chunk's checksum is bound to
 * its place and its file. */
static void swapped_chunks_are_corrupt(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    uint8_t *bytes = good_file(f, p, 8, &n);
    size_t header = 64 + 3 * 8 + 40 * 4 + 8;
    size_t chunk = 16 * 2 * (34 + 68) + 8; /* full chunks of layer 0 */
    uint8_t *swapped = malloc(n);
    memcpy(swapped, bytes, n);
    memcpy(swapped + header, bytes + header + chunk, chunk);
    memcpy(swapped + header + chunk, bytes + header, chunk);
    write_file(f->path, swapped, n);
    block_table *t = NULL;
    sem_err err = {0};
    assert_int_equal(read_table(f->path, FP, p, &t, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "layer 0 chunk 0 (tokens 0..15)");
    assert_pool_empty(p);
    free(swapped);
    free(bytes);
    block_pool_destroy(p);
}

static void another_model_is_incompatible(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    free(good_file(f, p, 1, &n));
    block_table *t = NULL;
    sem_err err = {0};
    assert_int_equal(read_table(f->path, FP ^ 1, p, &t, &err), SEM_EINCOMPAT);
    assert_contains(err.detail, "another model");
    assert_null(t);
    assert_pool_empty(p);
    block_pool_destroy(p);
}

/* A version above this build's, with a valid preamble check, is
 * SEM_EINCOMPAT (a later semantic wrote it), not damage; the header says
 * which version it was, so the store can keep it. Version 0, which no
 * release wrote, is incompatible too, but not newer. */
static void a_newer_version_is_incompatible_and_says_so(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    uint8_t *bytes = good_file(f, p, 1, &n);
    static const struct {
        uint32_t version;
        int newer;
        const char *detail;
    } cases[] = {
        {KV_FILE_VERSION + 1, 1, "is newer than this build reads"},
        {77, 1, "format version 77 (offset 8) is newer than this build reads (1..2)"},
        {0, 0, "format version 0 (offset 8) was never written by semantic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t v = cases[i].version;
        memcpy(bytes + 8, &v, 4);
        uint32_t check = XXH32(bytes, 12, 0);
        memcpy(bytes + 12, &check, 4);
        write_file(f->path, bytes, n);
        block_table *t = NULL;
        sem_err err = {0};
        kv_file_header h;
        memset(&h, 0xff, sizeof h);
        int fd = open(f->path, O_RDONLY);
        assert_int_equal(kv_file_read(fd, f->path, FP, p, "x", &t, &h, &err), SEM_EINCOMPAT);
        close(fd);
        assert_null(t);
        assert_contains(err.detail, cases[i].detail);
        assert_int_equal(h.version, v);
        assert_int_equal(kv_file_version_is_newer(h.version), cases[i].newer);
        fd = open(f->path, O_RDONLY);
        assert_int_equal(kv_file_read_header(fd, f->path, &h, NULL, &err), SEM_EINCOMPAT);
        assert_int_equal(h.version, v);
        assert_int_equal(kv_file_read_fixed(fd, f->path, &h, &err), SEM_EINCOMPAT);
        close(fd);
        assert_pool_empty(p);
    }
    assert_false(kv_file_version_is_newer(KV_FILE_VERSION));
    assert_false(kv_file_version_is_newer(KV_FILE_MIN_VERSION));
    free(bytes);
    block_pool_destroy(p);
}

/* ------------------------------------------------------------ earlier versions */

/*
 * The compatibility promise (docs/cache-format.md): every file any release
 * wrote loads in every later release. fixtures/ holds files written by
 * each format version, never rewritten: v<version>-<payload>.kv, 24
 * tokens of seed 4242 in chunks of 16 from an f16 pool of the store spec
 * (sliding layer 2 keeps 20 tokens), fingerprint FIXTURE_FP. A new version
 * adds its own files (SEM_WRITE_KV_FIXTURES=1 writes those of
 * KV_FILE_VERSION into fixtures/, once) and keeps the old ones.
 */
#define FIXTURE_DIR SEM_TEST_DATA "/../adapters/store/fixtures"
#define FIXTURE_FP 0x0fedcba987654321ull
#define FIXTURE_SEED 4242
#define FIXTURE_TOKENS 24

static void every_version_ever_written_still_loads(void **state)
{
    (void)state;
    static const kv_payload payloads[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
    if (getenv("SEM_WRITE_KV_FIXTURES")) {
        block_pool *src_pool = store_pool(16, CACHE_KV_F16, 64);
        block_table *src = make_table(src_pool, FIXTURE_SEED, FIXTURE_TOKENS, 1);
        for (size_t i = 0; i < 3; i++) {
            char path[700];
            snprintf(path, sizeof path, FIXTURE_DIR "/v%d-%s.kv", KV_FILE_VERSION,
                     kv_payload_name(payloads[i]));
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0)
                fail_msg("%s: %s (fixtures are written once, never replaced)", path,
                         strerror(errno));
            kv_file_write_opts o = {.fingerprint = FIXTURE_FP, .payload = payloads[i],
                                    .chunk_tokens = 16};
            assert_int_equal(kv_file_write(fd, path, src, &o, NULL, NULL, NULL), SEM_OK);
            close(fd);
        }
        block_table_destroy(src);
        block_pool_destroy(src_pool);
    }
    int checked = 0;
    for (uint32_t v = KV_FILE_MIN_VERSION; v <= KV_FILE_VERSION; v++)
        for (size_t i = 0; i < 3; i++) {
            char path[700];
            snprintf(path, sizeof path, FIXTURE_DIR "/v%u-%s.kv", v,
                     kv_payload_name(payloads[i]));
            for (size_t k = 0; k < 2; k++) {
                cache_kv_type kv = k ? CACHE_KV_Q8_0 : CACHE_KV_F16;
                block_pool *p = store_pool(16, kv, 64);
                block_table *t = NULL;
                kv_file_header h;
                sem_err err = {0};
                int fd = open(path, O_RDONLY);
                if (fd < 0)
                    fail_msg("%s: %s (every version keeps its fixtures)", path, strerror(errno));
                if (kv_file_read(fd, path, FIXTURE_FP, p, "old", &t, &h, &err) != SEM_OK)
                    fail_msg("a version %u file no longer loads: %s", v, err.detail);
                close(fd);
                assert_int_equal(h.version, v);
                assert_int_equal(h.payload, payloads[i]);
                uint32_t pool_t = kv_tensor_of(kv), pay_t = payload_tensor_of(payloads[i]);
                double rel = type_error(TENSOR_F16) + type_error(pay_t) +
                             (pool_t == pay_t ? 0 : type_error(pool_t));
                assert_table_is(t, FIXTURE_SEED, FIXTURE_TOKENS, rel);
                block_table_destroy(t);
                block_pool_destroy(p);
                checked++;
            }
        }
    assert_int_equal(checked, 6 * (KV_FILE_VERSION - KV_FILE_MIN_VERSION + 1));
}

/* Geometry must match the pool's, except block size and KV type. */
static void other_geometry_is_incompatible(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    free(good_file(f, p, 1, &n));
    for (int change = 0; change < 5; change++) {
        cache_spec s = store_spec(16, CACHE_KV_F16);
        const char *what = NULL;
        switch (change) {
        case 0: s.v_head_dim = 32; what = "KV geometry"; break;
        case 1: s.n_kv_heads = 4; what = "KV geometry"; break;
        case 2: s.n_layers = 4; what = "KV geometry"; break;
        case 3: s.layers[2].window = 24; what = "layer 2 is sliding with window 20"; break;
        default: s.layers[1].kind = CACHE_ATTN_SLIDING; s.layers[1].window = 20;
                 what = "layer 1 is global"; break;
        }
        block_pool *q = block_pool_create(&s, cache_spec_block_bytes(&s) * 64, NULL);
        assert_non_null(q);
        block_table *t = NULL;
        sem_err err = {0};
        assert_int_equal(read_table(f->path, FP, q, &t, &err), SEM_EINCOMPAT);
        assert_contains(err.detail, what);
        assert_pool_empty(q);
        block_pool_destroy(q);
    }
    block_pool_destroy(p);
}

/* A full pool is SEM_EPOOL and keeps nothing; the file is fine. */
static void a_full_pool_keeps_nothing(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    size_t n;
    free(good_file(f, p, 1, &n));
    block_pool *small = store_pool(16, CACHE_KV_F16, 4);
    block_table *t = NULL;
    sem_err err = {0};
    assert_int_equal(read_table(f->path, FP, small, &t, &err), SEM_EPOOL);
    assert_null(t);
    assert_pool_empty(small);
    block_pool_destroy(small);
    block_pool_destroy(p);
}

static void garbage_and_empty_files_are_corrupt(void **state)
{
    fixture *f = *state;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = NULL;
    sem_err err = {0};
    write_file(f->path, "", 0);
    assert_int_equal(read_table(f->path, FP, p, &t, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "truncated");
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 31);
    write_file(f->path, junk, sizeof junk);
    assert_int_equal(read_table(f->path, FP, p, &t, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "bad magic at offset 0");
    assert_pool_empty(p);
    block_pool_destroy(p);
}

static void payload_names_parse(void **state)
{
    (void)state;
    kv_payload p;
    assert_int_equal(kv_payload_parse("q4_0", &p, NULL), SEM_OK);
    assert_int_equal(p, KV_PAYLOAD_Q4_0);
    assert_string_equal(kv_payload_name(KV_PAYLOAD_Q8_0), "q8_0");
    sem_err err = {0};
    assert_int_equal(kv_payload_parse("q5_0", &p, &err), SEM_EINVAL);
    assert_contains(err.detail, "f16, q8_0, q4_0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_every_payload_pool_type_and_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(loads_into_other_block_sizes_and_kv_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(sliding_layers_hold_exactly_their_window, setup, teardown),
        cmocka_unit_test_setup_teardown(file_size_is_the_documented_formula, setup, teardown),
        cmocka_unit_test_setup_teardown(quantized_payload_falls_back_to_f16_for_odd_dims, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(header_alone_gives_the_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(writing_an_empty_table_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failing_write_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(truncation_at_every_offset_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(bit_flips_are_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(swapped_chunks_are_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(another_model_is_incompatible, setup, teardown),
        cmocka_unit_test_setup_teardown(a_newer_version_is_incompatible_and_says_so, setup,
                                        teardown),
        cmocka_unit_test(every_version_ever_written_still_loads),
        cmocka_unit_test_setup_teardown(other_geometry_is_incompatible, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_pool_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_and_empty_files_are_corrupt, setup, teardown),
        cmocka_unit_test(payload_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
