/*
 * gguf.c - GGUF parsing and validation.
 *
 * Layout (all little-endian):
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv    x { string key | u32 type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to `general.alignment` (default 32) | tensor data
 * A string is u64 length + bytes; an array is u32 element type + u64 count
 * + elements. Every read goes through the cursor, which refuses to step
 * past the end, so validation is a single forward pass.
 */
#include "gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "adapters/kernels/tensor_type.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 4
#define GGUF_NAME_MAX 256

struct gguf_file {
    char name[GGUF_NAME_MAX];
    const uint8_t *base;
    uint64_t size;
    int mapped;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;          /* [n_kv] */
    gguf_tensor *tensors; /* [n_tensors] */
    uint64_t data_offset;
};

typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
    const char *name;
    sem_err *err;
} cursor;

__attribute__((format(printf, 3, 4)))
static sem_status corrupt(cursor *c, uint64_t at, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sem_err_set(c->err, SEM_ECORRUPT, "gguf: %s: %s (at byte offset %llu of %llu)",
                       c->name, msg, (unsigned long long)at, (unsigned long long)c->size);
}

static int need(cursor *c, uint64_t n) { return n <= c->size - c->pos; }

static sem_status read_bytes(cursor *c, void *dst, uint64_t n, const char *what)
{
    if (!need(c, n))
        return corrupt(c, c->pos, "file ends inside %s", what);
    memcpy(dst, c->base + c->pos, n);
    c->pos += n;
    return SEM_OK;
}

static sem_status read_u32(cursor *c, uint32_t *v, const char *what)
{
    return read_bytes(c, v, 4, what);
}

static sem_status read_u64(cursor *c, uint64_t *v, const char *what)
{
    return read_bytes(c, v, 8, what);
}

static sem_status read_str(cursor *c, gguf_str *s, const char *what)
{
    uint64_t at = c->pos, len = 0;
    sem_status st = read_u64(c, &len, what);
    if (st != SEM_OK)
        return st;
    if (!need(c, len))
        return corrupt(c, at, "%s: string length %llu exceeds the file", what,
                       (unsigned long long)len);
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return SEM_OK;
}

static uint64_t scalar_size(gguf_value_type t)
{
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Skips (validating) one value of type t; key names the entry in errors. */
static sem_status skip_value(cursor *c, uint32_t t, const char *key, int depth)
{
    if (t >= GGUF_VALUE_TYPE_COUNT) {
        return corrupt(c, c->pos, "key '%s': unknown value type %u", key, t);
    }
    if (t == GGUF_STRING) {
        gguf_str s;
        return read_str(c, &s, key);
    }
    if (t != GGUF_ARRAY) {
        uint64_t n = scalar_size(t);
        if (!need(c, n))
            return corrupt(c, c->pos, "file ends inside the value of key '%s'", key);
        c->pos += n;
        return SEM_OK;
    }
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return corrupt(c, c->pos, "key '%s': arrays nested too deeply", key);
    uint64_t at = c->pos;
    uint32_t et = 0;
    uint64_t n = 0;
    sem_status st = read_u32(c, &et, key);
    if (st == SEM_OK)
        st = read_u64(c, &n, key);
    if (st != SEM_OK)
        return st;
    if (et >= GGUF_VALUE_TYPE_COUNT) {
        return corrupt(c, at, "key '%s': unknown array element type %u", key, et);
    }
    uint64_t es = scalar_size(et);
    if (es) {
        if (n > (c->size - c->pos) / es)
            return corrupt(c, at, "key '%s': array count %llu exceeds the file", key,
                           (unsigned long long)n);
        c->pos += n * es;
        return SEM_OK;
    }
    /* Strings and nested arrays take at least 8 bytes each. */
    if (n > (c->size - c->pos) / 8)
        return corrupt(c, at, "key '%s': array count %llu exceeds the file", key,
                           (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        st = skip_value(c, et, key, depth + 1);
        if (st != SEM_OK)
            return st;
    }
    return SEM_OK;
}

/* A NUL-terminated, printable copy of a key or name for messages. */
static void printable(gguf_str s, char *out, size_t cap)
{
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[n] = '\0';
}

static sem_status parse_kv(gguf_file *f, cursor *c)
{
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        kv->offset = c->pos;
        sem_status st = read_str(c, &kv->key, "a metadata key");
        if (st != SEM_OK)
            return st;
        char key[128];
        printable(kv->key, key, sizeof key);
        uint32_t t = 0;
        if ((st = read_u32(c, &t, key)) != SEM_OK)
            return st;
        uint64_t value_at = c->pos;
        if ((st = skip_value(c, t, key, 0)) != SEM_OK)
            return st;
        kv->type = (gguf_value_type)t;
        kv->data = c->base + value_at;
        if (t == GGUF_ARRAY) {
            uint32_t et;
            memcpy(&et, c->base + value_at, 4);
            memcpy(&kv->arr_n, c->base + value_at + 4, 8);
            kv->arr_type = (gguf_value_type)et;
            kv->data = c->base + value_at + 12;
        }
        for (uint64_t j = 0; j < i; j++)
            if (f->kv[j].key.len == kv->key.len &&
                memcmp(f->kv[j].key.ptr, kv->key.ptr, kv->key.len) == 0)
                return corrupt(c, kv->offset, "duplicate key '%s'", key);
    }
    return SEM_OK;
}

static sem_status parse_tensor_info(gguf_file *f, cursor *c, gguf_tensor *t)
{
    uint64_t at = c->pos;
    sem_status st = read_str(c, &t->name, "a tensor name");
    if (st != SEM_OK)
        return st;
    char name[128];
    printable(t->name, name, sizeof name);
    if ((st = read_u32(c, &t->n_dims, name)) != SEM_OK)
        return st;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
        return corrupt(c, at, "tensor '%s': %u dimensions (1..4 allowed)", name, t->n_dims);
    }
    uint64_t count = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && (st = read_u64(c, &t->ne[d], name)) != SEM_OK)
            return st;
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || count > (1ull << 42) / t->ne[d])
            return corrupt(c, at, "tensor '%s': absurd dimension ne[%u] = %llu", name, d,
                           (unsigned long long)t->ne[d]);
        count *= t->ne[d];
    }
    if ((st = read_u32(c, &t->type, name)) != SEM_OK ||
        (st = read_u64(c, &t->offset, name)) != SEM_OK)
        return st;
    const char *tname = tensor_type_name(t->type);
    if (!tname) {
        return corrupt(c, at, "tensor '%s': unknown type id %u", name, t->type);
    }
    size_t row = tensor_type_row_bytes(t->type, t->ne[0]);
    if (row == 0)
        return corrupt(c, at, "tensor '%s': row length %llu is not a multiple of the %s block size",
                       name, (unsigned long long)t->ne[0], tname);
    t->size = (uint64_t)row * (count / t->ne[0]);
    if (t->offset % f->alignment)
        return corrupt(c, at, "tensor '%s': data offset %llu is not aligned to %u", name,
                       (unsigned long long)t->offset, f->alignment);
    for (gguf_tensor *o = f->tensors; o < t; o++)
        if (o->name.len == t->name.len && memcmp(o->name.ptr, t->name.ptr, t->name.len) == 0)
            return corrupt(c, at, "duplicate tensor '%s'", name);
    return SEM_OK;
}

static sem_status parse(gguf_file *f, sem_err *err)
{
    cursor c = {.base = f->base, .size = f->size, .pos = 0, .name = f->name, .err = err};
    char magic[4];
    sem_status st = read_bytes(&c, magic, 4, "the magic");
    if (st != SEM_OK)
        return st;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0)
        return sem_err_set(err, SEM_ECORRUPT, "gguf: %s: not a GGUF file (bad magic at offset 0)",
                           f->name);
    if ((st = read_u32(&c, &f->version, "the version")) != SEM_OK)
        return st;
    if (f->version == 1 || (f->version > 3 && (f->version & 0xFFFF) == 0))
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "gguf: %s: version %u is not supported (2 and 3 are; a value like "
                           "this also means a big-endian file)", f->name, f->version);
    if (f->version != 2 && f->version != 3)
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "gguf: %s: version %u is not supported (2 and 3 are)", f->name,
                           f->version);
    if ((st = read_u64(&c, &f->n_tensors, "the tensor count")) != SEM_OK ||
        (st = read_u64(&c, &f->n_kv, "the metadata count")) != SEM_OK)
        return st;
    /* Each entry takes at least 12 (kv) or 24 (tensor) bytes. */
    if (f->n_kv > c.size / 12 || f->n_tensors > c.size / 24)
        return corrupt(&c, 8, "absurd counts: %llu tensors, %llu metadata keys do not fit the file",
                       (unsigned long long)f->n_tensors, (unsigned long long)f->n_kv);
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors)
        return sem_err_set(err, SEM_ENOMEM, "gguf: %s: out of memory", f->name);
    if ((st = parse_kv(f, &c)) != SEM_OK)
        return st;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_UINT32)
            return corrupt(&c, al->offset, "key 'general.alignment' must be uint32");
        memcpy(&f->alignment, al->data, 4);
        if (f->alignment == 0 || (f->alignment & (f->alignment - 1)) || f->alignment > 65536)
            return corrupt(&c, al->offset, "key 'general.alignment' = %u is not a power of two "
                           "<= 65536", f->alignment);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if ((st = parse_tensor_info(f, &c, &f->tensors[i])) != SEM_OK)
            return st;

    uint64_t data = (c.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors > 0 && data > c.size)
        return corrupt(&c, c.pos, "file ends before the tensor data");
    f->data_offset = data;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t avail = c.size - data;
        if (t->offset > avail || t->size > avail - t->offset) {
            char name[128];
            printable(t->name, name, sizeof name);
            return corrupt(&c, data + t->offset, "tensor '%s': data (%llu bytes) runs past the end "
                           "of the file", name, (unsigned long long)t->size);
        }
        t->offset += data;
        t->data = f->base + t->offset;
    }
    return SEM_OK;
}

static gguf_file *finish_open(gguf_file *f, sem_err *err)
{
    if (parse(f, err) != SEM_OK) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_prefault(const gguf_file *f)
{
    if (!f->mapped)
        return;
#ifdef MADV_POPULATE_READ
    madvise((void *)f->base, (size_t)f->size, MADV_POPULATE_READ);
#endif
    /* A read of one byte per page, also after the madvise: that maps the
     * pages, but the first access to each still walked the page tables to
     * set its accessed bit, which in a VM (the AMD EPYC Zen 5) cost about
     * 1 us per 4 KiB page, 150 ms over a 585 MB model, in the first
     * forward pass. On kernels before 5.14 the reads are what maps. */
    long page = sysconf(_SC_PAGESIZE);
    volatile uint8_t sink = 0;
    for (uint64_t o = 0; page > 0 && o < f->size; o += (uint64_t)page)
        sink ^= ((const volatile uint8_t *)f->base)[o];
    (void)sink;
}

gguf_file *gguf_open_memory(const void *data, size_t size, const char *name, sem_err *err)
{
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        sem_err_set(err, SEM_ENOMEM, "gguf: out of memory");
        return NULL;
    }
    snprintf(f->name, sizeof f->name, "%s", name ? name : "(memory)");
    f->base = data;
    f->size = size;
    return finish_open(f, err);
}

gguf_file *gguf_open(const char *path, sem_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sem_err_set(err, errno == ENOENT ? SEM_ENOTFOUND : SEM_EIO, "gguf: cannot open %s: %s",
                    path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        sem_err_set(err, SEM_EIO, "gguf: %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (sb.st_size < 24) {
        sem_err_set(err, SEM_ECORRUPT, "gguf: %s: file of %lld bytes is too short for a header",
                    path, (long long)sb.st_size);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        sem_err_set(err, SEM_EIO, "gguf: cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, (size_t)sb.st_size);
        sem_err_set(err, SEM_ENOMEM, "gguf: out of memory");
        return NULL;
    }
    snprintf(f->name, sizeof f->name, "%s", path);
    f->base = map;
    f->size = (uint64_t)sb.st_size;
    f->mapped = 1;
    return finish_open(f, err);
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap((void *)f->base, f->size);
    free(f->kv);
    free(f->tensors);
    free(f);
}

uint64_t gguf_layout_hash(const gguf_file *f)
{
    uint64_t end = f->n_tensors ? f->data_offset : f->size;
    return XXH64(f->base, (size_t)end, 0);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
const char *gguf_name(const gguf_file *f) { return f->name; }
uint64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i)
{
    return i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

int gguf_str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key))
            return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

/* ---------------------------------------------------------------- getters */

const char *gguf_value_type_name(gguf_value_type t)
{
    static const char *names[GGUF_VALUE_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64"};
    return (unsigned)t < GGUF_VALUE_TYPE_COUNT ? names[t] : "unknown";
}

static const gguf_kv *find_typed(const gguf_file *f, const char *key, sem_err *err)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        sem_err_set(err, SEM_ENOTFOUND, "gguf: %s: key '%s' is missing", f->name, key);
    return kv;
}

static sem_status wrong_type(const gguf_file *f, const gguf_kv *kv, const char *key,
                             const char *want, sem_err *err)
{
    return sem_err_set(err, SEM_ECORRUPT, "gguf: %s: key '%s' (offset %llu) is %s, expected %s",
                       f->name, key, (unsigned long long)kv->offset,
                       gguf_value_type_name(kv->type), want);
}

int64_t gguf_array_i64(gguf_value_type type, const void *data, uint64_t i)
{
    const uint8_t *p = (const uint8_t *)data + i * scalar_size(type);
    switch (type) {
    case GGUF_UINT8: return *p;
    case GGUF_INT8: return (int8_t)*p;
    case GGUF_BOOL: return *p != 0;
    case GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); return v > INT64_MAX ? INT64_MAX : (int64_t)v; }
    case GGUF_INT64: { int64_t v; memcpy(&v, p, 8); return v; }
    case GGUF_FLOAT32: { float v; memcpy(&v, p, 4); return (int64_t)v; }
    case GGUF_FLOAT64: { double v; memcpy(&v, p, 8); return (int64_t)v; }
    default: return 0;
    }
}

double gguf_array_f64(gguf_value_type type, const void *data, uint64_t i)
{
    const uint8_t *p = (const uint8_t *)data + i * scalar_size(type);
    if (type == GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    if (type == GGUF_FLOAT64) {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    return (double)gguf_array_i64(type, data, i);
}

static int is_int_type(gguf_value_type t)
{
    return t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_UINT16 || t == GGUF_INT16 ||
           t == GGUF_UINT32 || t == GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

/* An integer value as signed 128-ish: (negative flag, magnitude). */
static sem_status get_int(const gguf_file *f, const char *key, int *neg, uint64_t *mag,
                          sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (!is_int_type(kv->type))
        return wrong_type(f, kv, key, "an integer", err);
    if (kv->type == GGUF_UINT64) {
        memcpy(mag, kv->data, 8);
        *neg = 0;
        return SEM_OK;
    }
    int64_t v = gguf_array_i64(kv->type, kv->data, 0);
    *neg = v < 0;
    *mag = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    return SEM_OK;
}

sem_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, sem_err *err)
{
    int neg = 0;
    uint64_t mag = 0;
    sem_status st = get_int(f, key, &neg, &mag, err);
    if (st != SEM_OK)
        return st;
    if (neg)
        return sem_err_set(err, SEM_ECORRUPT, "gguf: %s: key '%s' is negative", f->name, key);
    *out = mag;
    return SEM_OK;
}

sem_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, sem_err *err)
{
    uint64_t v = 0;
    sem_status st = gguf_get_u64(f, key, &v, err);
    if (st != SEM_OK)
        return st;
    if (v > UINT32_MAX)
        return sem_err_set(err, SEM_ECORRUPT, "gguf: %s: key '%s' = %llu does not fit 32 bits",
                           f->name, key, (unsigned long long)v);
    *out = (uint32_t)v;
    return SEM_OK;
}

sem_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, sem_err *err)
{
    int neg = 0;
    uint64_t mag = 0;
    sem_status st = get_int(f, key, &neg, &mag, err);
    if (st != SEM_OK)
        return st;
    if ((!neg && mag > INT32_MAX) || (neg && mag > (uint64_t)INT32_MAX + 1))
        return sem_err_set(err, SEM_ECORRUPT, "gguf: %s: key '%s' does not fit 32 bits", f->name,
                           key);
    *out = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
    return SEM_OK;
}

sem_status gguf_get_f32(const gguf_file *f, const char *key, float *out, sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (kv->type == GGUF_FLOAT32 || kv->type == GGUF_FLOAT64 || is_int_type(kv->type)) {
        *out = (float)gguf_array_f64(kv->type, kv->data, 0);
        return SEM_OK;
    }
    return wrong_type(f, kv, key, "a number", err);
}

sem_status gguf_get_bool(const gguf_file *f, const char *key, int *out, sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (kv->type != GGUF_BOOL)
        return wrong_type(f, kv, key, "bool", err);
    *out = kv->data[0] != 0;
    return SEM_OK;
}

sem_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (kv->type != GGUF_STRING)
        return wrong_type(f, kv, key, "string", err);
    memcpy(&out->len, kv->data, 8);
    out->ptr = (const char *)kv->data + 8;
    return SEM_OK;
}

sem_status gguf_get_cstr(const gguf_file *f, const char *key, char **out, sem_err *err)
{
    gguf_str s;
    sem_status st = gguf_get_str(f, key, &s, err);
    if (st != SEM_OK)
        return st;
    char *p = malloc(s.len + 1);
    if (!p)
        return sem_err_set(err, SEM_ENOMEM, "gguf: out of memory copying '%s'", key);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    *out = p;
    return SEM_OK;
}

sem_status gguf_get_array(const gguf_file *f, const char *key, gguf_value_type type,
                          const void **data, uint64_t *n, sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (kv->type != GGUF_ARRAY || kv->arr_type != type || !scalar_size(type)) {
        char want[48];
        snprintf(want, sizeof want, "array of %s", gguf_value_type_name(type));
        if (kv->type == GGUF_ARRAY)
            return sem_err_set(err, SEM_ECORRUPT,
                               "gguf: %s: key '%s' is an array of %s, expected %s", f->name, key,
                               gguf_value_type_name(kv->arr_type), want);
        return wrong_type(f, kv, key, want, err);
    }
    *data = kv->data;
    *n = kv->arr_n;
    return SEM_OK;
}

sem_status gguf_get_str_array(const gguf_file *f, const char *key, gguf_str **out, uint64_t *n,
                              sem_err *err)
{
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv)
        return SEM_ENOTFOUND;
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING)
        return wrong_type(f, kv, key, "array of string", err);
    gguf_str *v = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *v);
    if (!v)
        return sem_err_set(err, SEM_ENOMEM, "gguf: out of memory reading '%s'", key);
    /* Already validated at open: lengths stay inside the mapping. */
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        memcpy(&v[i].len, p, 8);
        v[i].ptr = (const char *)p + 8;
        p += 8 + v[i].len;
    }
    *out = v;
    *n = kv->arr_n;
    return SEM_OK;
}
