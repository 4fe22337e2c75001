/*
 * gguf_writer.c - GGUF v3 serialization.
 *
 * The header and metadata are kept in a growing byte buffer; tensor infos
 * are kept as records and serialized at write time, when their offsets
 * (aligned to 32 bytes) are known.
 */
#include "gguf_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/kernels/tensor_type.h"
#include "base/strbuf.h"

#define ALIGNMENT 32

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t size;
} wtensor;

struct gguf_writer {
    strbuf kv;
    uint64_t n_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    int failed;
};

static void put(gguf_writer *w, strbuf *b, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    strbuf_append(b, p, n);
    w->failed = b->oom;
}

static void put_u32(gguf_writer *w, strbuf *b, uint32_t v) { put(w, b, &v, 4); }
static void put_u64(gguf_writer *w, strbuf *b, uint64_t v) { put(w, b, &v, 8); }

static void put_str(gguf_writer *w, strbuf *b, const char *s, uint64_t len)
{
    put_u64(w, b, len);
    put(w, b, s, len);
}

static void key(gguf_writer *w, const char *k, gguf_value_type t)
{
    put_str(w, &w->kv, k, strlen(k));
    put_u32(w, &w->kv, (uint32_t)t);
    w->n_kv++;
}

gguf_writer *gguf_writer_create(sem_err *err)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        sem_err_set(err, SEM_ENOMEM, "gguf writer: out of memory");
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    strbuf_free(&w->kv);
    free(w);
}

void gguf_writer_u32(gguf_writer *w, const char *k, uint32_t v)
{
    key(w, k, GGUF_UINT32);
    put_u32(w, &w->kv, v);
}

void gguf_writer_i32(gguf_writer *w, const char *k, int32_t v)
{
    key(w, k, GGUF_INT32);
    put(w, &w->kv, &v, 4);
}

void gguf_writer_f32(gguf_writer *w, const char *k, float v)
{
    key(w, k, GGUF_FLOAT32);
    put(w, &w->kv, &v, 4);
}

void gguf_writer_bool(gguf_writer *w, const char *k, int v)
{
    uint8_t b = v != 0;
    key(w, k, GGUF_BOOL);
    put(w, &w->kv, &b, 1);
}

void gguf_writer_str(gguf_writer *w, const char *k, const char *v)
{
    key(w, k, GGUF_STRING);
    put_str(w, &w->kv, v, strlen(v));
}

static size_t elem_size(gguf_value_type t)
{
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

void gguf_writer_array(gguf_writer *w, const char *k, gguf_value_type type, const void *data,
                       uint64_t n)
{
    if (!elem_size(type)) {
        w->failed = 1;
        return;
    }
    key(w, k, GGUF_ARRAY);
    put_u32(w, &w->kv, (uint32_t)type);
    put_u64(w, &w->kv, n);
    put(w, &w->kv, data, (size_t)n * elem_size(type));
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv)
{
    /* The value bytes run from the type field to the next entry; re-walk
     * them with the same rules the reader validated. */
    put_str(w, &w->kv, kv->key.ptr, kv->key.len);
    put_u32(w, &w->kv, (uint32_t)kv->type);
    w->n_kv++;
    if (kv->type == GGUF_STRING) {
        uint64_t len;
        memcpy(&len, kv->data, 8);
        put(w, &w->kv, kv->data, 8 + len);
        return;
    }
    if (kv->type != GGUF_ARRAY) {
        put(w, &w->kv, kv->data, elem_size(kv->type));
        return;
    }
    put_u32(w, &w->kv, (uint32_t)kv->arr_type);
    put_u64(w, &w->kv, kv->arr_n);
    if (kv->arr_type != GGUF_STRING) {
        if (!elem_size(kv->arr_type)) {
            w->failed = 1; /* nested arrays are not copied */
            return;
        }
        put(w, &w->kv, kv->data, (size_t)kv->arr_n * elem_size(kv->arr_type));
        return;
    }
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        uint64_t len;
        memcpy(&len, p, 8);
        put(w, &w->kv, p, 8 + len);
        p += 8 + len;
    }
}

void gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                        const uint64_t *ne, const void *data, uint64_t size)
{
    if (w->failed)
        return;
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS) {
        w->failed = 1;
        return;
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) {
            w->failed = 1;
            return;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) {
        w->failed = 1;
        return;
    }
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->size = size;
    w->n_tensors++;
}

static uint64_t align_up(uint64_t x) { return (x + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT; }

/* Header + metadata + tensor infos + padding, as one buffer. */
static sem_status build_head(gguf_writer *w, strbuf *h, sem_err *err)
{
    put(w, h, "GGUF", 4);
    put_u32(w, h, 3);
    put_u64(w, h, w->n_tensors);
    put_u64(w, h, w->n_kv);
    put(w, h, w->kv.data, w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        put_str(w, h, t->name, strlen(t->name));
        put_u32(w, h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(w, h, t->ne[d]);
        put_u32(w, h, t->type);
        put_u64(w, h, off);
        off = align_up(off + t->size);
    }
    static const uint8_t zeros[ALIGNMENT] = {0};
    put(w, h, zeros, align_up(h->len) - h->len);
    if (w->failed)
        return sem_err_set(err, SEM_ENOMEM, "gguf writer: out of memory or invalid input");
    return SEM_OK;
}

sem_status gguf_writer_to_memory(gguf_writer *w, uint8_t **out, size_t *len, sem_err *err)
{
    strbuf h = {0};
    sem_status st = build_head(w, &h, err);
    static const uint8_t zeros[ALIGNMENT] = {0};
    for (size_t i = 0; st == SEM_OK && i < w->n_tensors; i++) {
        put(w, &h, w->tensors[i].data, w->tensors[i].size);
        put(w, &h, zeros, align_up(h.len) - h.len);
    }
    if (st == SEM_OK && w->failed)
        st = sem_err_set(err, SEM_ENOMEM, "gguf writer: out of memory");
    if (st != SEM_OK) {
        strbuf_free(&h);
        return st;
    }
    *out = (uint8_t *)h.data;
    *len = h.len;
    return SEM_OK;
}

sem_status gguf_writer_write(gguf_writer *w, const char *path, sem_err *err)
{
    strbuf h = {0};
    sem_status st = build_head(w, &h, err);
    if (st != SEM_OK) {
        strbuf_free(&h);
        return st;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        strbuf_free(&h);
        return sem_err_set(err, SEM_EIO, "cannot create %s: %s", tmp, strerror(errno));
    }
    static const uint8_t zeros[ALIGNMENT] = {0};
    int ok = fwrite(h.data, 1, h.len, f) == h.len;
    uint64_t pos = h.len;
    strbuf_free(&h);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        ok = fwrite(t->data, 1, t->size, f) == t->size;
        pos += t->size;
        size_t pad = (size_t)(align_up(pos) - pos);
        ok = ok && fwrite(zeros, 1, pad, f) == pad;
        pos += pad;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sem_err_set(err, SEM_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return SEM_OK;
}
