/*
 * kv_rows.h - moving K/V rows between a table's pool blocks and the
 * payload of a file (agent files, kv_file.h, and shared chunks,
 * kv_chunk.h), and the little-endian integers of both formats.
 *
 * A run of tokens [a, b) of one layer is laid out in a file as
 * K[n_kv_heads][b - a][row(k_head_dim)] then V[n_kv_heads][b - a][row(v_head_dim)]
 * in the payload type; rows are converted to or from the pool's KV type
 * (bit-exact when the types agree).
 *
 * Threads: every function is reentrant; the caller keeps the table and
 * its blocks unchanged while rows move out of them.
 */
#ifndef SEM_KV_ROWS_H
#define SEM_KV_ROWS_H

#include <stdint.h>

#include "kv_file.h"
#include "adapters/kernels/vec.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kv_rows: rows are copied as stored in blocks; a little-endian host is assumed"
/* pwrite()s n bytes at *off (advanced), calling hook first (its nonzero
 * return is that write's errno); SEM_EIO with the errno text. */
sem_status kv_rows_write(int fd, const char *path, const void *buf, size_t n, uint64_t *off,
                         kv_write_hook hook, void *hook_ctx, sem_err *err);

/* pread()s exactly n bytes at off; a short read is SEM_ECORRUPT
 * (truncated inside `what`), a failed one SEM_EIO. */
sem_status kv_rows_read(int fd, const char *path, void *buf, size_t n, uint64_t off,
                        const char *what, sem_err *err);

#endif

static inline void kv_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void kv_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t kv_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t kv_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The SIMD conversions of this CPU. */
const vec_ops *kv_rows_ops(void);

/* Payload bytes of one token of one layer that keeps it. */
uint64_t kv_rows_token_bytes(const kv_file_header *h);

/*
 * Moves the rows of tokens [a, b) of layer l between t's blocks and buf
 * (laid out as above, (b - a) * kv_rows_token_bytes(h) bytes): into buf
 * when to_file, out of it (a verified run) otherwise.
 */
void kv_rows_move(const vec_ops *vo, const block_table *t, const kv_file_header *h, uint32_t l,
                  uint32_t a, uint32_t b, uint8_t *buf, int to_file);

/* pwrite()s n bytes at *off (advanced), calling hook first (its nonzero
 * return is that write's errno); SEM_EIO with the errno text. */
sem_status kv_rows_write(int fd, const char *path, const void *buf, size_t n, uint64_t *off,
                         kv_write_hook hook, void *hook_ctx, sem_err *err);

/* pread()s exactly n bytes at off; a short read is SEM_ECORRUPT
 * (truncated inside `what`), a failed one SEM_EIO. */
sem_status kv_rows_read(int fd, const char *path, void *buf, size_t n, uint64_t off,
                        const char *what, sem_err *err);

#endif
