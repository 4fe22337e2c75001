/*
 * kv_rows.c - row movement between pool blocks and file payloads
 * (kv_rows.h).
 */
#include "kv_rows.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "adapters/kernels/cpu.h"
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"

static uint32_t payload_tensor(kv_payload p)
{
    return p == KV_PAYLOAD_Q8_0 ? TENSOR_Q8_0 : p == KV_PAYLOAD_Q4_0 ? TENSOR_Q4_0 : TENSOR_F16;
}

static uint32_t kv_tensor(cache_kv_type t)
{
    return t == CACHE_KV_Q8_0 ? TENSOR_Q8_0 : TENSOR_F16;
}

const vec_ops *kv_rows_ops(void) { return vec_ops_for(cpu_isa_best()); }

uint64_t kv_rows_token_bytes(const kv_file_header *h)
{
    return (uint64_t)h->n_kv_heads * (kv_payload_row_bytes(h->payload, h->k_head_dim) +
                                      kv_payload_row_bytes(h->payload, h->v_head_dim));
}

/*
 * RUN_VALUES values at most are converted at a time, through f32 on the
 * stack: a move goes run by run (a head's rows within one block, up to
 * block_tokens of them, contiguous on both sides), so a 4096-token
 * 1B-shape agent converts 67 M values in 16 K calls rather than one per
 * 64-value row (1 M); per-row calls and block lookups were nearly a third of a
 * load's CPU time (docs/performance.md, "Agent memory").
 */
#define RUN_VALUES 2048
_Static_assert(RUN_VALUES >= CACHE_SPEC_MAX_HEAD_DIM, "a run piece holds a whole row");

/*
 * n values (whole rows) from type `from` to type `to`; bit-exact copy when
 * they agree. The f16 and q8_0 steps use SIMD, q4_0 is scalar.
 */
static void convert_values(const vec_ops *vo, uint32_t from, const uint8_t *src, uint32_t to,
                           uint8_t *dst, size_t n, float *f)
{
    if (from == TENSOR_F16)
        vo->f16_to_f32(f, (const uint16_t *)src, n);
    else if (from == TENSOR_Q8_0)
        vo->q8_0_to_f32(f, src, n);
    else
        quant_dequantize_row_unchecked(from, src, f, n);
    if (to == TENSOR_F16)
        vo->f32_to_f16((uint16_t *)dst, f, n);
    else if (to == TENSOR_Q8_0)
        vo->quantize_q8_0(dst, f, n);
    else
        quant_quantize_row(to, f, dst, n, NULL);
}

/*
 * n bytes to a pool cell on load. The rows of a load are not read again
 * until the agent's next forward pass, and a 4096-token agent writes
 * 134 MB of them (1B shape, f16 pool), far more than the caches hold: so
 * where the cell allows, they go out with non-temporal stores, which skip
 * reading each line before writing it and halve the memory traffic
 * (measured: the load's row moves 25-30 ms -> 17-19 ms, docs/performance.md).
 * kv_rows_move fences them before it returns.
 */
static void store_cell(uint8_t *dst, const uint8_t *src, size_t n)
{
#if defined(__SSE2__)
    if ((uintptr_t)dst % 16 == 0 && n % 16 == 0) {
        for (size_t i = 0; i < n; i += 16)
            _mm_stream_si128((__m128i *)(void *)(dst + i),
                             _mm_loadu_si128((const __m128i *)(const void *)(src + i)));
        return;
    }
#endif
    memcpy(dst, src, n);
}

static void fence_cells(void)
{
#if defined(__SSE2__)
    _mm_sfence(); /* the streamed rows are visible before the table is handed on */
#endif
}

/* n rows of dim values, src (type `from`, frow bytes each) to dst (type
 * `to`, trow bytes each); dst is a pool cell when `cell` (stored with
 * store_cell) and file payload otherwise. */
static void move_run(const vec_ops *vo, uint32_t from, const uint8_t *src, size_t frow,
                     uint32_t to, uint8_t *dst, size_t trow, uint32_t n, uint32_t dim, int cell)
{
    if (from == to) {
        if (cell)
            store_cell(dst, src, n * trow);
        else
            memcpy(dst, src, n * trow);
        return;
    }
    _Alignas(64) float f[RUN_VALUES];
    _Alignas(64) uint8_t out[2 * RUN_VALUES]; /* the widest row type here: f16 */
    uint32_t per = RUN_VALUES / dim;          /* rows per piece */
    for (uint32_t i = 0; i < n; i += per) {
        uint32_t k = n - i < per ? n - i : per;
        uint8_t *to_buf = cell ? out : dst + (size_t)i * trow;
        convert_values(vo, from, src + (size_t)i * frow, to, to_buf, (size_t)k * dim, f);
        if (cell)
            store_cell(dst + (size_t)i * trow, out, (size_t)k * trow);
    }
}

void kv_rows_move(const vec_ops *vo, const block_table *t, const kv_file_header *h, uint32_t l,
                  uint32_t a, uint32_t b, uint8_t *buf, int to_file)
{
    block_pool *pool = block_table_pool(t);
    const cache_spec *spec = block_pool_spec(pool);
    uint32_t kv = kv_tensor(spec->kv_type), file = payload_tensor(h->payload);
    const uint32_t bt = spec->block_tokens;
    for (int v = 0; v < 2; v++) {
        uint32_t dim = v ? h->v_head_dim : h->k_head_dim;
        size_t frow = kv_payload_row_bytes(h->payload, dim);
        size_t kv_row = cache_spec_row_bytes(spec->kv_type, dim);
        assert(kv_row <= 2 * RUN_VALUES && frow <= 2 * RUN_VALUES);
        for (uint32_t head = 0; head < h->n_kv_heads; head++) {
            for (uint32_t p = a; p < b;) { /* a run: the head's rows in one block */
                uint32_t slot = p % bt, n = bt - slot < b - p ? bt - slot : b - p;
                size_t off = v ? cache_spec_v_offset(spec, head, slot)
                               : cache_spec_k_offset(spec, head, slot);
                uint8_t *cell = block_pool_data(pool, block_table_block_for(t, l, p)) + off;
                if (to_file)
                    move_run(vo, kv, cell, kv_row, file, buf, frow, n, dim, 0);
                else
                    move_run(vo, file, buf, frow, kv, cell, kv_row, n, dim, 1);
                buf += n * frow;
                p += n;
            }
        }
    }
    if (!to_file)
        fence_cells();
}

sem_status kv_rows_write(int fd, const char *path, const void *buf, size_t n, uint64_t *off,
                         kv_write_hook hook, void *hook_ctx, sem_err *err)
{
    const uint8_t *p = buf;
    while (n > 0) {
        int e = hook ? hook(hook_ctx, path, *off, n) : 0;
        ssize_t w = -1;
        if (e == 0) {
            w = pwrite(fd, p, n, (off_t)*off);
            e = w < 0 ? errno : 0;
        }
        if (e == EINTR)
            continue;
        if (e != 0)
            return sem_err_set(err, SEM_EIO, "write %s at offset %llu: %s", path,
                               (unsigned long long)*off, strerror(e));
        if (w == 0)
            return sem_err_set(err, SEM_EIO, "write %s at offset %llu: wrote nothing", path,
                               (unsigned long long)*off);
        p += w;
        n -= (size_t)w;
        *off += (uint64_t)w;
    }
    return SEM_OK;
}

/* Reads exactly n bytes at off; a short read is SEM_ECORRUPT (truncated). */
sem_status kv_rows_read(int fd, const char *path, void *buf, size_t n, uint64_t off,
                        const char *what, sem_err *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sem_err_set(err, SEM_EIO, "read %s at offset %llu: %s", path,
                               (unsigned long long)off, strerror(errno));
        if (r == 0)
            return sem_err_set(err, SEM_ECORRUPT, "%s: truncated: the file ends at offset %llu "
                               "inside the %s", path, (unsigned long long)off, what);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return SEM_OK;
}

