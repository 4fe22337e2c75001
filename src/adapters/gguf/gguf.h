/*
 * gguf.h - a validating reader of GGUF model files (versions 2 and 3).
 *
 * The file is mapped read-only and every count, length, offset, type and
 * size is checked against the mapping before it is used, so a truncated or
 * malformed file gives an error naming the key or tensor and the byte
 * offset, never an out-of-bounds read. Tensor data is used in place: the
 * pointers returned point into the mapping and live as long as the file.
 *
 * Strings are views (gguf_str) into the mapping and are NOT NUL-terminated.
 *
 * Threads: opening is single-threaded; an open gguf_file is immutable and
 * may be read from any number of threads. The caller owns the gguf_file and
 * closes it after every pointer into it is dropped.
 */
#ifndef SEM_GGUF_H
#define SEM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

typedef struct gguf_file gguf_file;

typedef enum gguf_value_type {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_VALUE_TYPE_COUNT
} gguf_value_type;

typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* One metadata entry. For arrays, `arr_type`, `arr_n` and `data` (the first
 * element) describe the elements; for scalars `data` points at the value. */
typedef struct gguf_kv {
    gguf_str key;
    gguf_value_type type;
    gguf_value_type arr_type;
    uint64_t arr_n;
    const uint8_t *data;
    uint64_t offset; /* of the key in the file */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t type;    /* tensor_type id */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    uint64_t offset;  /* of the data, from the start of the file */
    uint64_t size;    /* bytes */
    const void *data; /* in the mapping */
} gguf_tensor;

/* Maps and validates a file. */
gguf_file *gguf_open(const char *path, sem_err *err);
/* Validates a buffer in memory (not copied; must outlive the result). */
gguf_file *gguf_open_memory(const void *data, size_t size, const char *name, sem_err *err);
void gguf_close(gguf_file *f);

/* Maps every page of a mapped file now (reading it from disk where the
 * page cache does not hold it) and reads a byte of each, so that the first
 * pass over the weights neither takes a page fault per few pages nor
 * walks the page tables once per page: a model's first request on a new
 * engine paid about 14 ms for the faults on a 585 MB file already in the
 * page cache, and in a VM another 150 ms for the walks (docs/performance.md,
 * "Agent memory"). Nothing changes if the kernel refuses the mapping
 * hint. No-op on a file opened from memory. */
void gguf_prefault(const gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
const char *gguf_name(const gguf_file *f); /* the path or the given name */

/* XXH64 of everything before the tensor data: metadata and tensor infos
 * (names, types, shapes, offsets). Two files with the same value hold the
 * same model layout; it identifies the model of a saved KV cache. */
uint64_t gguf_layout_hash(const gguf_file *f);

uint64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);

uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/*
 * Typed getters. Each returns SEM_ENOTFOUND when the key is absent and
 * SEM_ECORRUPT (naming key, expected and actual type) when it has another
 * type. Integer getters accept any integer type whose value fits.
 */
sem_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, sem_err *err);
sem_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, sem_err *err);
sem_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, sem_err *err);
sem_status gguf_get_f32(const gguf_file *f, const char *key, float *out, sem_err *err);
sem_status gguf_get_bool(const gguf_file *f, const char *key, int *out, sem_err *err);
sem_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, sem_err *err);
/* Copies a string value into a new NUL-terminated buffer the caller frees. */
sem_status gguf_get_cstr(const gguf_file *f, const char *key, char **out, sem_err *err);

/* An array of fixed-size elements of `type`: *data points at element 0. */
sem_status gguf_get_array(const gguf_file *f, const char *key, gguf_value_type type,
                          const void **data, uint64_t *n, sem_err *err);
/* An array of strings as views; *out is malloc'd [n], the caller frees it. */
sem_status gguf_get_str_array(const gguf_file *f, const char *key, gguf_str **out, uint64_t *n,
                              sem_err *err);

/* Element i of a fixed-size numeric array returned by gguf_get_array, as a
 * double / int64 (unaligned-safe). */
double gguf_array_f64(gguf_value_type type, const void *data, uint64_t i);
int64_t gguf_array_i64(gguf_value_type type, const void *data, uint64_t i);

const char *gguf_value_type_name(gguf_value_type t);
/* 1 when the key of kv equals the C string. */
int gguf_str_eq(gguf_str s, const char *c);

#endif
