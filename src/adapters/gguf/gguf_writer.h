/*
 * gguf_writer.h - building GGUF v3 files: metadata, tensor infos and data.
 *
 * Used by `semantic mkmodel` (random-weight models of real shapes) and by
 * tests that need well-formed or deliberately broken files. Metadata is
 * serialized into memory as it is added; tensor data is referenced, not
 * copied, and streamed to the file by gguf_writer_write().
 *
 * Threads: a writer belongs to one thread.
 */
#ifndef SEM_GGUF_WRITER_H
#define SEM_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "domain/status.h"

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(sem_err *err);
void gguf_writer_free(gguf_writer *w);

/* Metadata. Keys and strings are copied. The first failure sticks: later
 * calls do nothing and gguf_writer_write() reports it. */
void gguf_writer_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_bool(gguf_writer *w, const char *key, int v);
void gguf_writer_str(gguf_writer *w, const char *key, const char *v);
/* An array of fixed-size elements (`n` elements of `type` at data). */
void gguf_writer_array(gguf_writer *w, const char *key, gguf_value_type type, const void *data,
                       uint64_t n);
/* Copies one entry (any type, arrays of strings included) from another file. */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);

/*
 * Adds a tensor of `type` with ne[0..n_dims) whose `size` bytes are at
 * data (kept by reference until the write). The name is copied.
 */
void gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                        const uint64_t *ne, const void *data, uint64_t size);

/* Writes the whole file (temp file + rename). */
sem_status gguf_writer_write(gguf_writer *w, const char *path, sem_err *err);

/* Serializes the whole file into a malloc'd buffer (for tests). */
sem_status gguf_writer_to_memory(gguf_writer *w, uint8_t **out, size_t *len, sem_err *err);

#endif
