/* Specification of gguf.h: valid files read back; malformed files fail with
 * a message naming what is wrong, never with a crash. */
#include "../../test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "adapters/gguf/gguf.h"
#include "adapters/gguf/gguf_writer.h"
#include "adapters/kernels/tensor_type.h"

static float weights[2][32];
static uint8_t q8[2 * 34];

/* A small valid file: a few keys of each type and two tensors. */
static uint8_t *sample(size_t *len)
{
    gguf_writer *w = gguf_writer_create(NULL);
    gguf_writer_str(w, "general.architecture", "llama");
    gguf_writer_u32(w, "llama.block_count", 2);
    gguf_writer_i32(w, "signed", -7);
    gguf_writer_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_writer_bool(w, "flag", 1);
    int32_t arr[3] = {1, 2, 3};
    gguf_writer_array(w, "ints", GGUF_INT32, arr, 3);
    uint64_t ne[2] = {32, 2};
    gguf_writer_tensor(w, "w.f32", TENSOR_F32, 2, ne, weights, sizeof weights);
    gguf_writer_tensor(w, "w.q8", TENSOR_Q8_0, 2, ne, q8, sizeof q8);
    uint8_t *buf;
    assert_int_equal(gguf_writer_to_memory(w, &buf, len, NULL), SEM_OK);
    gguf_writer_free(w);
    return buf;
}

static void expect_corrupt(const uint8_t *data, size_t len, const char *needle)
{
    sem_err err = {0};
    gguf_file *f = gguf_open_memory(data, len, "bad.gguf", &err);
    if (f)
        fail_msg("expected failure containing '%s'", needle);
    assert_true(err.status == SEM_ECORRUPT || err.status == SEM_EUNSUPPORTED);
    assert_contains(err.detail, needle);
}

static void a_valid_file_reads_back(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    sem_err err = {0};
    gguf_file *f = gguf_open_memory(buf, len, "ok.gguf", &err);
    assert_non_null(f);
    gguf_prefault(f); /* a buffer in memory: nothing to map */
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_n_kv(f), 6);
    assert_int_equal(gguf_n_tensors(f), 2);
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "llama.block_count", &u, &err), SEM_OK);
    assert_int_equal(u, 2);
    int32_t i;
    assert_int_equal(gguf_get_i32(f, "signed", &i, &err), SEM_OK);
    assert_int_equal(i, -7);
    float fl;
    assert_int_equal(gguf_get_f32(f, "llama.rope.freq_base", &fl, &err), SEM_OK);
    assert_true(fl == 10000.0f);
    int b;
    assert_int_equal(gguf_get_bool(f, "flag", &b, &err), SEM_OK);
    assert_int_equal(b, 1);
    char *s;
    assert_int_equal(gguf_get_cstr(f, "general.architecture", &s, &err), SEM_OK);
    assert_string_equal(s, "llama");
    free(s);
    const void *data;
    uint64_t n;
    assert_int_equal(gguf_get_array(f, "ints", GGUF_INT32, &data, &n, &err), SEM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(gguf_array_i64(GGUF_INT32, data, 2), 3);
    const gguf_tensor *t = gguf_find_tensor(f, "w.q8");
    assert_non_null(t);
    assert_int_equal(t->type, TENSOR_Q8_0);
    assert_int_equal(t->size, sizeof q8);
    assert_int_equal(t->offset % 32, 0);
    assert_ptr_equal(t->data, buf + t->offset);
    assert_null(gguf_find_tensor(f, "nope"));
    gguf_close(f);
    free(buf);
}

static void getters_name_missing_keys_and_wrong_types(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    gguf_file *f = gguf_open_memory(buf, len, "ok.gguf", NULL);
    sem_err err = {0};
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "missing.key", &u, &err), SEM_ENOTFOUND);
    assert_contains(err.detail, "'missing.key' is missing");
    assert_int_equal(gguf_get_u32(f, "general.architecture", &u, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "is string, expected an integer");
    assert_int_equal(gguf_get_u32(f, "signed", &u, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "negative");
    gguf_str str;
    assert_int_equal(gguf_get_str(f, "flag", &str, &err), SEM_ECORRUPT);
    const void *data;
    uint64_t n;
    assert_int_equal(gguf_get_array(f, "ints", GGUF_FLOAT32, &data, &n, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "array of int32, expected array of float32");
    gguf_close(f);
    free(buf);
}

static void every_truncation_fails_cleanly(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    /* The file is valid from the end of the last tensor's data on (only
     * alignment padding follows); every shorter prefix must fail. */
    gguf_file *whole = gguf_open_memory(buf, len, "whole.gguf", NULL);
    assert_non_null(whole);
    const gguf_tensor *last = gguf_tensor_at(whole, gguf_n_tensors(whole) - 1);
    size_t end = (size_t)(last->offset + last->size);
    gguf_close(whole);
    for (size_t cut = 0; cut < end; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan catches any overread */
        memcpy(copy, buf, cut);
        sem_err err = {0};
        gguf_file *f = gguf_open_memory(copy, cut, "cut.gguf", &err);
        if (f)
            fail_msg("truncation at %zu of %zu was accepted", cut, len);
        assert_int_not_equal(err.status, SEM_OK);
        assert_contains(err.detail, "cut.gguf");
        free(copy);
    }
    free(buf);
}

static void bad_headers_are_named(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    uint8_t *b = malloc(len);

    memcpy(b, buf, len);
    memcpy(b, "GGUX", 4);
    expect_corrupt(b, len, "bad magic");

    memcpy(b, buf, len);
    uint32_t v1 = 1;
    memcpy(b + 4, &v1, 4);
    expect_corrupt(b, len, "version 1 is not supported");

    memcpy(b, buf, len);
    uint32_t big_endian = 0x03000000;
    memcpy(b + 4, &big_endian, 4);
    expect_corrupt(b, len, "big-endian");

    memcpy(b, buf, len);
    uint64_t absurd = 1ull << 60;
    memcpy(b + 8, &absurd, 8);
    expect_corrupt(b, len, "absurd counts");

    memcpy(b, buf, len);
    memcpy(b + 16, &absurd, 8);
    expect_corrupt(b, len, "absurd counts");

    /* First key's string length made absurd. */
    memcpy(b, buf, len);
    memcpy(b + 24, &absurd, 8);
    expect_corrupt(b, len, "string length");
    free(b);
    free(buf);
}

/* Builds a file with one tensor described by the arguments. */
static uint8_t *one_tensor(uint32_t type, uint64_t ne0, uint64_t ne1, size_t *len)
{
    gguf_writer *w = gguf_writer_create(NULL);
    uint64_t ne[2] = {ne0, ne1};
    gguf_writer_tensor(w, "t", type, 2, ne, weights, sizeof weights);
    uint8_t *buf;
    assert_int_equal(gguf_writer_to_memory(w, &buf, len, NULL), SEM_OK);
    gguf_writer_free(w);
    return buf;
}

static void bad_tensors_are_named(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_tensor(99, 32, 2, &len);
    expect_corrupt(b, len, "tensor 't': unknown type id 99");
    free(b);
    b = one_tensor(TENSOR_Q8_0, 33, 2, &len);
    expect_corrupt(b, len, "not a multiple of the Q8_0 block size");
    free(b);
    b = one_tensor(TENSOR_F32, 32, 100, &len); /* 12800 bytes claimed, 256 present */
    expect_corrupt(b, len, "runs past the end");
    free(b);
    b = one_tensor(TENSOR_F32, 0, 2, &len);
    expect_corrupt(b, len, "absurd dimension");
    free(b);
}

static void duplicates_are_refused(void **state)
{
    (void)state;
    gguf_writer *w = gguf_writer_create(NULL);
    gguf_writer_u32(w, "k", 1);
    gguf_writer_u32(w, "k", 2);
    uint8_t *buf;
    size_t len;
    assert_int_equal(gguf_writer_to_memory(w, &buf, &len, NULL), SEM_OK);
    gguf_writer_free(w);
    expect_corrupt(buf, len, "duplicate key 'k'");
    free(buf);

    w = gguf_writer_create(NULL);
    uint64_t ne[1] = {32};
    gguf_writer_tensor(w, "t", TENSOR_F32, 1, ne, weights, 128);
    gguf_writer_tensor(w, "t", TENSOR_F32, 1, ne, weights, 128);
    assert_int_equal(gguf_writer_to_memory(w, &buf, &len, NULL), SEM_OK);
    gguf_writer_free(w);
    expect_corrupt(buf, len, "duplicate tensor 't'");
    free(buf);
}

static void files_on_disk_open_and_bad_paths_fail(void **state)
{
    (void)state;
    char path[] = "/tmp/sem-gguf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gguf_writer *w = gguf_writer_create(NULL);
    gguf_writer_str(w, "general.architecture", "llama");
    uint64_t ne[2] = {32, 2};
    gguf_writer_tensor(w, "w", TENSOR_F32, 2, ne, weights, sizeof weights);
    assert_int_equal(gguf_writer_write(w, path, NULL), SEM_OK);
    gguf_writer_free(w);
    sem_err err = {0};
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    assert_int_equal(gguf_n_tensors(f), 1);
    gguf_prefault(f); /* maps the pages; the data reads the same after it */
    const gguf_tensor *t = gguf_find_tensor(f, "w");
    assert_non_null(t);
    assert_memory_equal(t->data, weights, sizeof weights);
    gguf_close(f);
    unlink(path);
    assert_null(gguf_open("/nonexistent/model.gguf", &err));
    assert_int_equal(err.status, SEM_ENOTFOUND);
    assert_null(gguf_open("/tmp", &err));
    assert_int_equal(err.status, SEM_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_file_reads_back),
        cmocka_unit_test(getters_name_missing_keys_and_wrong_types),
        cmocka_unit_test(every_truncation_fails_cleanly),
        cmocka_unit_test(bad_headers_are_named),
        cmocka_unit_test(bad_tensors_are_named),
        cmocka_unit_test(duplicates_are_refused),
        cmocka_unit_test(files_on_disk_open_and_bad_paths_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
