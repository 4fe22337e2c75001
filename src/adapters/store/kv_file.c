/*
 * kv_file.c - encoding and decoding cache files (format in kv_file.h and
 * docs/cache-format.md).
 *
 * The writer builds the whole header in memory (one write), then one chunk
 * at a time: rows gathered from the pool blocks and converted into a
 * buffer, the checksum appended, one write. The reader mirrors it: the
 * fixed header, the rest of the header, every check that needs no payload,
 * then the table is restored and each chunk is read, verified and only
 * then scattered into the table's blocks.
 *
 * Checks run in an order that gives each kind of damage its status: a
 * bit flip anywhere in the header fails the preamble check or the header
 * checksum (SEM_ECORRUPT) before the version, fingerprint or geometry is
 * believed; only a header that verifies can be SEM_EINCOMPAT.
 */
#include "kv_file.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "kv_chunk.h"
#include "kv_rows.h"
#include "adapters/kernels/quant.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kv_file: rows are copied as stored in blocks; a little-endian host is assumed"
#endif

/* Offsets in the fixed header (docs/cache-format.md). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_PREAMBLE_CHECK = 12,
    OFF_FINGERPRINT = 16,
    OFF_N_LAYERS = 24,
    OFF_N_KV_HEADS = 28,
    OFF_K_HEAD_DIM = 32,
    OFF_V_HEAD_DIM = 36,
    OFF_PAYLOAD = 40,
    OFF_CHUNK_TOKENS = 44,
    OFF_N_TOKENS = 48,
    OFF_FLAGS = 52,
    OFF_FILE_BYTES = 56,
    PREAMBLE_BYTES = 12, /* magic + version: what the preamble check covers */
    LAYER_ENTRY_BYTES = 8,
    CHECKSUM_BYTES = 8,
};

_Static_assert(sizeof(KV_FILE_MAGIC) - 1 == 8, "the magic is 8 bytes");

/* ------------------------------------------------------------ payload types */

const char *kv_payload_name(kv_payload p)
{
    switch (p) {
    case KV_PAYLOAD_F16: return "f16";
    case KV_PAYLOAD_Q8_0: return "q8_0";
    case KV_PAYLOAD_Q4_0: return "q4_0";
    case KV_PAYLOAD_DEFAULT: break;
    }
    return "unknown";
}

sem_status kv_payload_parse(const char *name, kv_payload *out, sem_err *err)
{
    static const kv_payload all[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, kv_payload_name(all[i])) == 0) {
            *out = all[i];
            return SEM_OK;
        }
    }
    return sem_err_set(err, SEM_EINVAL, "payload type '%s' is not one of: f16, q8_0, q4_0",
                       name ? name : "(null)");
}

static int payload_valid(uint32_t p)
{
    return p == KV_PAYLOAD_F16 || p == KV_PAYLOAD_Q8_0 || p == KV_PAYLOAD_Q4_0;
}

size_t kv_payload_row_bytes(kv_payload p, uint32_t dim)
{
    switch (p) {
    case KV_PAYLOAD_Q8_0: return (size_t)(dim / QUANT_QK) * QUANT_Q8_0_BYTES;
    case KV_PAYLOAD_Q4_0: return (size_t)(dim / QUANT_QK) * QUANT_Q4_0_BYTES;
    default: return (size_t)dim * 2;
    }
}

int kv_payload_fits(kv_payload p, uint32_t k_dim, uint32_t v_dim)
{
    if (p == KV_PAYLOAD_F16)
        return 1;
    if (p == KV_PAYLOAD_Q8_0 || p == KV_PAYLOAD_Q4_0)
        return k_dim % QUANT_QK == 0 && v_dim % QUANT_QK == 0;
    return 0;
}

/* ------------------------------------------------------------ geometry */

/* The first token layer l holds in the file itself: past the window's
 * start on a sliding layer, past the shared chunks on a global one. */
static uint32_t first_inline(const kv_file_header *h, uint32_t l)
{
    const cache_layer *ly = &h->layers[l];
    if (ly->kind == CACHE_ATTN_SLIDING)
        return h->n_tokens > ly->window ? h->n_tokens - ly->window : 0;
    return h->n_shared * h->chunk_tokens;
}

static uint64_t header_bytes_for(uint32_t n_layers, uint32_t n_tokens, uint32_t n_shared)
{
    return KV_FILE_FIXED_BYTES + (uint64_t)n_layers * LAYER_ENTRY_BYTES +
           (uint64_t)n_tokens * 4 + (uint64_t)n_shared * KV_CHUNK_NAME_BYTES + CHECKSUM_BYTES;
}

uint64_t kv_file_size_for(const kv_file_header *h)
{
    if (h->n_layers > CACHE_SPEC_MAX_LAYERS || h->chunk_tokens == 0 ||
        (uint64_t)h->n_shared * h->chunk_tokens > h->n_tokens)
        return 0;
    uint64_t total = header_bytes_for(h->n_layers, h->n_tokens, h->n_shared);
    uint64_t per_token = kv_rows_token_bytes(h);
    for (uint32_t l = 0; l < h->n_layers; l++) {
        uint64_t kept = h->n_tokens - first_inline(h, l);
        uint64_t chunks = (kept + h->chunk_tokens - 1) / h->chunk_tokens;
        /* kept < 2^32, per_token < 2^32: the product fits; 256 layers of it too. */
        total += kept * per_token + chunks * CHECKSUM_BYTES;
    }
    return total;
}

static uint64_t chunk_seed(uint64_t header_checksum, uint32_t layer, uint32_t chunk)
{
    return header_checksum ^ ((uint64_t)layer << 32 | chunk);
}

/* ------------------------------------------------------------ writing */

/* Encodes h, tokens and the shared chunks' names into buf (h->header_bytes
 * long) and sets h->checksum. */
static void encode_header(kv_file_header *h, const int32_t *tokens, const kv_chunk_name *names,
                          uint8_t *buf)
{
    memset(buf, 0, KV_FILE_FIXED_BYTES);
    memcpy(buf + OFF_MAGIC, KV_FILE_MAGIC, 8);
    kv_put32(buf + OFF_VERSION, h->version);
    kv_put32(buf + OFF_PREAMBLE_CHECK, XXH32(buf, PREAMBLE_BYTES, 0));
    kv_put64(buf + OFF_FINGERPRINT, h->fingerprint);
    kv_put32(buf + OFF_N_LAYERS, h->n_layers);
    kv_put32(buf + OFF_N_KV_HEADS, h->n_kv_heads);
    kv_put32(buf + OFF_K_HEAD_DIM, h->k_head_dim);
    kv_put32(buf + OFF_V_HEAD_DIM, h->v_head_dim);
    kv_put32(buf + OFF_PAYLOAD, (uint32_t)h->payload);
    kv_put32(buf + OFF_CHUNK_TOKENS, h->chunk_tokens);
    kv_put32(buf + OFF_N_TOKENS, h->n_tokens);
    kv_put32(buf + OFF_FLAGS, h->n_shared ? KV_FILE_FLAG_SHARED : 0);
    kv_put64(buf + OFF_FILE_BYTES, h->file_bytes);
    uint8_t *p = buf + KV_FILE_FIXED_BYTES;
    for (uint32_t l = 0; l < h->n_layers; l++, p += LAYER_ENTRY_BYTES) {
        kv_put32(p, (uint32_t)h->layers[l].kind);
        kv_put32(p + 4, h->layers[l].window);
    }
    for (uint32_t i = 0; i < h->n_tokens; i++, p += 4)
        kv_put32(p, (uint32_t)tokens[i]);
    for (uint32_t i = 0; i < h->n_shared; i++, p += KV_CHUNK_NAME_BYTES)
        memcpy(p, names[i].b, KV_CHUNK_NAME_BYTES);
    h->checksum = XXH64(buf, (size_t)(p - buf), 0);
    kv_put64(p, h->checksum);
}

sem_status kv_file_plan_spec(const cache_spec *spec, uint32_t n, const kv_file_write_opts *o,
                             kv_file_header *out, sem_err *err)
{
    const char *path = "kv file";
    if (!spec || !o)
        return sem_err_set(err, SEM_EINVAL, "kv_file_plan: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "the table holds no tokens; nothing to save");
    kv_payload payload = o->payload == KV_PAYLOAD_DEFAULT ? KV_PAYLOAD_Q8_0 : o->payload;
    if (!payload_valid(payload))
        return sem_err_set(err, SEM_EINVAL, "%s: payload type %d is not f16, q8_0 or q4_0",
                           path, (int)o->payload);
    if (!kv_payload_fits(payload, spec->k_head_dim, spec->v_head_dim))
        payload = KV_PAYLOAD_F16;

    kv_file_header h;
    memset(&h, 0, sizeof h);
    h.version = KV_FILE_VERSION;
    h.fingerprint = o->fingerprint;
    h.n_layers = spec->n_layers;
    h.n_kv_heads = spec->n_kv_heads;
    h.k_head_dim = spec->k_head_dim;
    h.v_head_dim = spec->v_head_dim;
    h.payload = payload;
    h.n_tokens = n;
    memcpy(h.layers, spec->layers, spec->n_layers * sizeof h.layers[0]);
    uint64_t per_token = kv_rows_token_bytes(&h);
    uint64_t chunk = o->chunk_tokens ? o->chunk_tokens : KV_FILE_DEFAULT_CHUNK_TOKENS;
    if (chunk > KV_FILE_MAX_CHUNK_TOKENS)
        chunk = KV_FILE_MAX_CHUNK_TOKENS;
    if (chunk * per_token > KV_FILE_MAX_CHUNK_BYTES)
        chunk = per_token >= KV_FILE_MAX_CHUNK_BYTES ? 1 : KV_FILE_MAX_CHUNK_BYTES / per_token;
    h.chunk_tokens = (uint32_t)chunk;
    h.n_shared = o->share && kv_chunk_has_global(&h) ? n / h.chunk_tokens : 0;
    h.header_bytes = header_bytes_for(h.n_layers, n, h.n_shared);
    h.file_bytes = kv_file_size_for(&h);

    *out = h;
    return SEM_OK;
}

sem_status kv_file_plan(const block_table *t, const kv_file_write_opts *o, kv_file_header *out,
                        sem_err *err)
{
    if (!t || !o)
        return sem_err_set(err, SEM_EINVAL, "kv_file_plan: NULL argument");
    return kv_file_plan_spec(block_pool_spec(block_table_pool(t)), block_table_n_tokens(t), o,
                             out, err);
}

sem_status kv_file_write(int fd, const char *path, const block_table *t,
                         const kv_file_write_opts *o, uint64_t *file_bytes,
                         kv_payload *payload_out, sem_err *err)
{
    if (!t || !o || !path)
        return sem_err_set(err, SEM_EINVAL, "kv_file_write: NULL argument");
    uint32_t n = block_table_n_tokens(t);
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "%s: the table holds no tokens; nothing to save",
                           path);
    kv_file_header h;
    sem_status pst = kv_file_plan(t, o, &h, err);
    if (pst != SEM_OK)
        return pst;
    if (h.n_shared && !o->names)
        return sem_err_set(err, SEM_EINVAL, "%s: %u shared chunks and no names for them", path,
                           h.n_shared);
    kv_payload payload = h.payload;
    uint64_t per_token = kv_rows_token_bytes(&h);
    uint64_t chunk = h.chunk_tokens;

    uint8_t *hbuf = malloc(h.header_bytes);
    uint8_t *cbuf = malloc(chunk * per_token + CHECKSUM_BYTES);
    sem_status st = SEM_OK;
    if (!hbuf || !cbuf) {
        st = sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a chunk of %llu bytes", path,
                         (unsigned long long)(chunk * per_token));
        goto done;
    }
    encode_header(&h, block_table_tokens(t), o->names, hbuf);
    uint64_t off = 0;
    const vec_ops *vo = kv_rows_ops();
    st = kv_rows_write(fd, path, hbuf, h.header_bytes, &off, o->hook, o->hook_ctx, err);
    for (uint32_t l = 0; st == SEM_OK && l < h.n_layers; l++) {
        uint32_t first = first_inline(&h, l);
        for (uint32_t a = first, c = 0; st == SEM_OK && a < n; a += h.chunk_tokens, c++) {
            uint32_t b = n - a > h.chunk_tokens ? a + h.chunk_tokens : n;
            size_t bytes = (size_t)((b - a) * per_token);
            if (o->stop && atomic_load_explicit(o->stop, memory_order_relaxed)) {
                st = sem_err_set(err, SEM_ECANCELLED, "%s: the write was stopped", path);
                break;
            }
            kv_rows_move(vo, t, &h, l, a, b, cbuf, 1);
            kv_put64(cbuf + bytes, XXH64(cbuf, bytes, chunk_seed(h.checksum, l, c)));
            st = kv_rows_write(fd, path, cbuf, bytes + CHECKSUM_BYTES, &off, o->hook, o->hook_ctx, err);
        }
    }
    if (st == SEM_OK && off != h.file_bytes)
        st = sem_err_set(err, SEM_EINTERNAL, "%s: wrote %llu bytes, the header says %llu", path,
                         (unsigned long long)off, (unsigned long long)h.file_bytes);
    if (st == SEM_OK) {
        if (file_bytes)
            *file_bytes = h.file_bytes;
        if (payload_out)
            *payload_out = payload;
    }
done:
    free(hbuf);
    free(cbuf);
    return st;
}

/* ------------------------------------------------------------ reading */

/* ------------------------------------------------------------ format versions */

/*
 * The versions this build reads, one row each, oldest first. The writer
 * writes KV_FILE_VERSION only; the reader takes every version from
 * KV_FILE_MIN_VERSION to KV_FILE_VERSION through its row: how that
 * version's fixed header decodes into a kv_file_header and which flags it
 * defines. A new version adds a row (and, if it changes the layer table,
 * the tokens or the payload, a decoder for them beside it) and keeps every
 * earlier row, so a file any release wrote stays readable; a file of an
 * earlier version loads as it is and its agent's next save rewrites it in
 * the current version. A version above KV_FILE_VERSION is a later
 * release's: SEM_EINCOMPAT, never guessed at (docs/cache-format.md,
 * "Compatibility").
 */
typedef struct kv_format {
    uint32_t version;
    void (*decode_fixed)(const uint8_t *fixed, kv_file_header *h, uint32_t *flags);
    uint32_t flags_defined; /* the flag bits this version gives a meaning */
} kv_format;

/* Version 1: the layout of docs/cache-format.md, no flags. */
static void decode_fixed_v1(const uint8_t *fixed, kv_file_header *h, uint32_t *flags)
{
    h->fingerprint = kv_get64(fixed + OFF_FINGERPRINT);
    h->n_layers = kv_get32(fixed + OFF_N_LAYERS);
    h->n_kv_heads = kv_get32(fixed + OFF_N_KV_HEADS);
    h->k_head_dim = kv_get32(fixed + OFF_K_HEAD_DIM);
    h->v_head_dim = kv_get32(fixed + OFF_V_HEAD_DIM);
    h->payload = (kv_payload)kv_get32(fixed + OFF_PAYLOAD);
    h->chunk_tokens = kv_get32(fixed + OFF_CHUNK_TOKENS);
    h->n_tokens = kv_get32(fixed + OFF_N_TOKENS);
    h->file_bytes = kv_get64(fixed + OFF_FILE_BYTES);
    *flags = kv_get32(fixed + OFF_FLAGS);
}

/* Version 2: version 1's layout, and the flag KV_FILE_FLAG_SHARED: the
 * header names the n_tokens / chunk_tokens whole chunks whose global
 * layers' rows are in shared chunk files. */
static void decode_fixed_v2(const uint8_t *fixed, kv_file_header *h, uint32_t *flags)
{
    decode_fixed_v1(fixed, h, flags);
    if ((*flags & KV_FILE_FLAG_SHARED) && h->chunk_tokens)
        h->n_shared = h->n_tokens / h->chunk_tokens;
}

static const kv_format FORMATS[] = {
    {1, decode_fixed_v1, 0},
    {2, decode_fixed_v2, KV_FILE_FLAG_SHARED},
};

_Static_assert(sizeof FORMATS / sizeof FORMATS[0] == KV_FILE_VERSION - KV_FILE_MIN_VERSION + 1,
               "one row per version read");

static const kv_format *format_of(uint32_t version)
{
    for (size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++)
        if (FORMATS[i].version == version)
            return &FORMATS[i];
    return NULL;
}

int kv_file_version_is_newer(uint32_t version)
{
    return version > KV_FILE_VERSION;
}

/* Field ranges of a header whose checksum verified; ECORRUPT names the field. */
static sem_status check_fields(const kv_file_header *h, const char *path, uint32_t flags,
                               sem_err *err)
{
#define BAD(off, fmt, ...)                                                               \
    sem_err_set(err, SEM_ECORRUPT, "%s: corrupt header at offset %d: " fmt, path, (int)(off), \
                __VA_ARGS__)
    if (h->n_kv_heads == 0 || h->n_kv_heads > CACHE_SPEC_MAX_KV_HEADS)
        return BAD(OFF_N_KV_HEADS, "n_kv_heads = %u", h->n_kv_heads);
    if (h->k_head_dim == 0 || h->k_head_dim > CACHE_SPEC_MAX_HEAD_DIM)
        return BAD(OFF_K_HEAD_DIM, "k_head_dim = %u", h->k_head_dim);
    if (h->v_head_dim == 0 || h->v_head_dim > CACHE_SPEC_MAX_HEAD_DIM)
        return BAD(OFF_V_HEAD_DIM, "v_head_dim = %u", h->v_head_dim);
    if (!payload_valid(h->payload) || !kv_payload_fits(h->payload, h->k_head_dim, h->v_head_dim))
        return BAD(OFF_PAYLOAD, "payload type %u for head dims %u/%u", (unsigned)h->payload,
                   h->k_head_dim, h->v_head_dim);
    if (h->chunk_tokens == 0 || h->chunk_tokens > KV_FILE_MAX_CHUNK_TOKENS ||
        (h->chunk_tokens > 1 && h->chunk_tokens * kv_rows_token_bytes(h) > KV_FILE_MAX_CHUNK_BYTES))
        return BAD(OFF_CHUNK_TOKENS, "chunk_tokens = %u", h->chunk_tokens);
    if (h->n_tokens == 0)
        return BAD(OFF_N_TOKENS, "n_tokens = %u", h->n_tokens);
    const kv_format *f = format_of(h->version);
    if (!f || (flags & ~f->flags_defined) != 0)
        return BAD(OFF_FLAGS, "flags = 0x%x, version %u defines 0x%x", flags, h->version,
                   f ? f->flags_defined : 0);
    for (uint32_t l = 0; l < h->n_layers; l++) {
        const cache_layer *ly = &h->layers[l];
        int ok = (ly->kind == CACHE_ATTN_GLOBAL && ly->window == 0) ||
                 (ly->kind == CACHE_ATTN_SLIDING && ly->window != 0);
        if (!ok)
            return BAD(KV_FILE_FIXED_BYTES + l * LAYER_ENTRY_BYTES, "layer %u kind %u window %u",
                       l, (unsigned)ly->kind, ly->window);
    }
    if ((flags & KV_FILE_FLAG_SHARED) && (h->n_shared == 0 || !kv_chunk_has_global(h)))
        return BAD(OFF_FLAGS, "flags = 0x%x: shared chunks for %u tokens of %u, %s", flags,
                   h->n_tokens, h->chunk_tokens,
                   kv_chunk_has_global(h) ? "less than a chunk" : "no global layer");
#undef BAD
    return SEM_OK;
}

/* Reads and decodes the fixed header into h and raw (its flags into *flags);
 * checks the preamble and the version. */
static sem_status read_fixed(int fd, const char *path, kv_file_header *h,
                             uint8_t fixed[KV_FILE_FIXED_BYTES], uint32_t *flags, sem_err *err)
{
    sem_status st = kv_rows_read(fd, path, fixed, KV_FILE_FIXED_BYTES, 0, "fixed header", err);
    if (st != SEM_OK)
        return st;
    if (memcmp(fixed + OFF_MAGIC, KV_FILE_MAGIC, 8) != 0)
        return sem_err_set(err, SEM_ECORRUPT,
                           "%s: not a semantic KV cache file (bad magic at offset 0)", path);
    if (kv_get32(fixed + OFF_PREAMBLE_CHECK) != XXH32(fixed, PREAMBLE_BYTES, 0))
        return sem_err_set(err, SEM_ECORRUPT,
                           "%s: corrupt header: preamble check at offset %d does not match "
                           "the magic and version",
                           path, OFF_PREAMBLE_CHECK);
    h->version = kv_get32(fixed + OFF_VERSION);
    if (kv_file_version_is_newer(h->version))
        return sem_err_set(err, SEM_EINCOMPAT,
                           "%s: format version %u (offset %d) is newer than this build reads "
                           "(%d..%d): written by a later semantic",
                           path, h->version, OFF_VERSION, KV_FILE_MIN_VERSION, KV_FILE_VERSION);
    const kv_format *f = format_of(h->version);
    if (!f)
        return sem_err_set(err, SEM_EINCOMPAT,
                           "%s: format version %u (offset %d) was never written by semantic "
                           "(versions %d..%d exist)",
                           path, h->version, OFF_VERSION, KV_FILE_MIN_VERSION, KV_FILE_VERSION);
    f->decode_fixed(fixed, h, flags);
    return SEM_OK;
}

sem_status kv_file_read_fixed(int fd, const char *path, kv_file_header *h, sem_err *err)
{
    uint8_t fixed[KV_FILE_FIXED_BYTES];
    uint32_t flags;
    memset(h, 0, sizeof *h);
    return read_fixed(fd, path, h, fixed, &flags, err);
}

sem_status kv_file_read_header(int fd, const char *path, kv_file_header *h, int32_t **tokens,
                               sem_err *err)
{
    return kv_file_read_header_names(fd, path, h, tokens, NULL, err);
}

sem_status kv_file_read_header_names(int fd, const char *path, kv_file_header *h,
                                     int32_t **tokens, kv_chunk_name **names, sem_err *err)
{
    if (tokens)
        *tokens = NULL;
    if (names)
        *names = NULL;
    memset(h, 0, sizeof *h);
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return sem_err_set(err, SEM_EIO, "stat %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)sb.st_size;

    uint8_t fixed[KV_FILE_FIXED_BYTES];
    uint32_t flags = 0;
    sem_status st = read_fixed(fd, path, h, fixed, &flags, err);
    if (st != SEM_OK)
        return st;

    /* Sizes that decide how much more to read, before any allocation. */
    if (h->n_layers == 0 || h->n_layers > CACHE_SPEC_MAX_LAYERS)
        return sem_err_set(err, SEM_ECORRUPT, "%s: corrupt header at offset %d: n_layers = %u",
                           path, OFF_N_LAYERS, h->n_layers);
    h->header_bytes = header_bytes_for(h->n_layers, h->n_tokens, h->n_shared);
    if (h->header_bytes > size)
        return sem_err_set(err, SEM_ECORRUPT,
                           "%s: truncated: the file is %llu bytes, its header alone needs %llu "
                           "(n_tokens = %u at offset %d)",
                           path, (unsigned long long)size, (unsigned long long)h->header_bytes,
                           h->n_tokens, OFF_N_TOKENS);

    uint8_t *buf = malloc(h->header_bytes);
    int32_t *tok = tokens ? malloc((size_t)h->n_tokens * sizeof *tok + 1) : NULL;
    kv_chunk_name *nm = names && h->n_shared ? malloc(h->n_shared * sizeof *nm) : NULL;
    if (!buf || (tokens && !tok) || (names && h->n_shared && !nm)) {
        free(buf);
        free(tok);
        free(nm);
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a header of %llu bytes",
                           path, (unsigned long long)h->header_bytes);
    }
    memcpy(buf, fixed, sizeof fixed);
    size_t rest = (size_t)h->header_bytes - sizeof fixed;
    st = kv_rows_read(fd, path, buf + sizeof fixed, rest, sizeof fixed, "header", err);
    if (st != SEM_OK)
        goto fail;
    size_t body = (size_t)h->header_bytes - CHECKSUM_BYTES;
    h->checksum = kv_get64(buf + body);
    if (XXH64(buf, body, 0) != h->checksum) {
        st = sem_err_set(err, SEM_ECORRUPT,
                         "%s: corrupt header: checksum at offset %zu does not match bytes "
                         "0..%zu (layer table or tokens damaged)",
                         path, body, body);
        goto fail;
    }
    const uint8_t *p = buf + KV_FILE_FIXED_BYTES;
    for (uint32_t l = 0; l < h->n_layers; l++, p += LAYER_ENTRY_BYTES) {
        h->layers[l].kind = (cache_attn_kind)kv_get32(p);
        h->layers[l].window = kv_get32(p + 4);
    }
    for (uint32_t i = 0; tok && i < h->n_tokens; i++)
        tok[i] = (int32_t)kv_get32(p + 4 * (size_t)i);
    p += 4 * (size_t)h->n_tokens;
    for (uint32_t i = 0; nm && i < h->n_shared; i++)
        memcpy(nm[i].b, p + (size_t)i * KV_CHUNK_NAME_BYTES, KV_CHUNK_NAME_BYTES);
    st = check_fields(h, path, flags, err);
    if (st != SEM_OK)
        goto fail;
    uint64_t expect = kv_file_size_for(h);
    if (expect != h->file_bytes) {
        st = sem_err_set(err, SEM_ECORRUPT,
                         "%s: corrupt header: file_bytes at offset %d is %llu, the geometry "
                         "gives %llu",
                         path, OFF_FILE_BYTES, (unsigned long long)h->file_bytes,
                         (unsigned long long)expect);
        goto fail;
    }
    if (size != expect) {
        st = sem_err_set(err, SEM_ECORRUPT,
                         size < expect ? "%s: truncated: the file is %llu bytes, its header "
                                         "describes %llu (data missing from offset %llu)"
                                       : "%s: the file is %llu bytes, its header describes "
                                         "%llu (unexpected data from offset %llu)",
                         path, (unsigned long long)size, (unsigned long long)expect,
                         (unsigned long long)(size < expect ? size : expect));
        goto fail;
    }
    free(buf);
    if (tokens)
        *tokens = tok;
    if (names)
        *names = nm;
    return SEM_OK;
fail:
    free(buf);
    free(tok);
    free(nm);
    return st;
}

sem_status kv_file_check(const kv_file_header *h, const char *path, uint64_t fingerprint,
                         const cache_spec *spec, sem_err *err)
{
    if (h->fingerprint != fingerprint)
        return sem_err_set(err, SEM_EINCOMPAT,
                           "%s: written for another model (fingerprint %016llx, this model's "
                           "is %016llx)",
                           path, (unsigned long long)h->fingerprint,
                           (unsigned long long)fingerprint);
    if (!spec)
        return SEM_OK;
    if (h->n_layers != spec->n_layers || h->n_kv_heads != spec->n_kv_heads ||
        h->k_head_dim != spec->k_head_dim || h->v_head_dim != spec->v_head_dim)
        return sem_err_set(err, SEM_EINCOMPAT,
                           "%s: KV geometry %u layers x %u KV heads x %u/%u dims, the pool "
                           "has %u x %u x %u/%u",
                           path, h->n_layers, h->n_kv_heads, h->k_head_dim, h->v_head_dim,
                           spec->n_layers, spec->n_kv_heads, spec->k_head_dim,
                           spec->v_head_dim);
    for (uint32_t l = 0; l < h->n_layers; l++)
        if (h->layers[l].kind != spec->layers[l].kind ||
            h->layers[l].window != spec->layers[l].window)
            return sem_err_set(err, SEM_EINCOMPAT,
                               "%s: layer %u is %s with window %u, the pool's is %s with "
                               "window %u",
                               path, l, h->layers[l].kind == CACHE_ATTN_SLIDING ? "sliding"
                                                                                 : "global",
                               h->layers[l].window,
                               spec->layers[l].kind == CACHE_ATTN_SLIDING ? "sliding" : "global",
                               spec->layers[l].window);
    return SEM_OK;
}

/* ------------------------------------------------------------ shared chunks */

/*
 * A file's shared chunks are read by up to SHARED_READERS threads (the
 * caller and helpers it starts for this read), at least SHARED_PER_READER
 * chunks each: a load is bound by copying, checking and widening rows,
 * and a 4096-token agent's 31 chunks load in about half the time on two
 * threads (docs/performance.md, "Agent memory"). The readers take chunks
 * in order from a shared counter; each writes only its chunks' rows of
 * the table being built (blocks no one else can see yet) and its own
 * buffers. The error reported is that of the first chunk in order that
 * fails, as a single reader would report it: a reader stops at its first
 * failure, and no reader starts a chunk after the first failed one.
 */
#define SHARED_READERS 4
#define SHARED_PER_READER 8

typedef struct shared_read {
    const kv_file_header *h;
    const char *path; /* the agent's file */
    const kv_chunk_source *src;
    const int32_t *tokens;
    const kv_chunk_name *names, *want; /* the file's names; the expected parents (want[i]) */
    block_table *t;
    _Atomic uint32_t next;   /* the next chunk to take */
    _Atomic uint32_t failed; /* the first chunk known to fail, UINT32_MAX: none */
} shared_read;

typedef struct shared_reader {
    shared_read *r;
    uint8_t *cbuf;
    pthread_t thread;
    int started;
    uint32_t failed; /* its failed chunk, UINT32_MAX: none */
    sem_status st;
    kv_read_fault fault;
    sem_err err;
} shared_reader;

static sem_status read_one_chunk(shared_reader *w, uint32_t i)
{
    const shared_read *r = w->r;
    char cpath[PATH_MAX];
    int cfd = -1;
    sem_status st = r->src->open(r->src->ctx, &r->names[i], &cfd, cpath, sizeof cpath, &w->err);
    if (st == SEM_OK) {
        st = kv_chunk_read(cfd, cpath, r->h, i, &r->names[i], &r->want[i],
                           r->tokens + (size_t)i * r->h->chunk_tokens, r->t, w->cbuf,
                           &w->err);
        close(cfd);
    } else if (st == SEM_ENOTFOUND) {
        char hex[KV_CHUNK_HEX_BYTES];
        kv_chunk_hex(&r->names[i], hex);
        st = sem_err_set(&w->err, SEM_ECORRUPT, "%s: shared chunk %u (%s) is missing", r->path,
                         i, hex);
        w->fault.missing = 1;
    }
    if (st != SEM_OK && st != SEM_ENOMEM) {
        w->fault.in_chunk = 1;
        w->fault.name = r->names[i];
    }
    return st;
}

static void *shared_reader_run(void *arg)
{
    shared_reader *w = arg;
    shared_read *r = w->r;
    for (;;) {
        uint32_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->h->n_shared || i > atomic_load(&r->failed))
            return NULL;
        w->st = read_one_chunk(w, i);
        if (w->st != SEM_OK) {
            w->failed = i;
            uint32_t f = atomic_load(&r->failed);
            while (i < f && !atomic_compare_exchange_weak(&r->failed, &f, i))
                ;
            return NULL;
        }
    }
}

/* Readers for n chunks: one per SHARED_PER_READER, at most SHARED_READERS
 * and the CPUs online. */
static int shared_readers_for(uint32_t n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int k = (int)(n / SHARED_PER_READER) + 1;
    if (k > SHARED_READERS)
        k = SHARED_READERS;
    return cpus > 0 && k > cpus ? (int)cpus : k;
}

/* The reader that failed on the earliest chunk, NULL if none failed. */
static const shared_reader *first_failure(const shared_reader *w, int k)
{
    const shared_reader *first = NULL;
    for (int i = 0; i < k; i++)
        if (w[i].failed != UINT32_MAX && (!first || w[i].failed < first->failed))
            first = &w[i];
    return first;
}

/*
 * Checks that names[] are the names of h's shared chunks in namespace ns
 * (so a file read under another namespace's key never serves its chunks)
 * and reads each chunk into t through src. cbuf serves the calling
 * reader; helpers get their own.
 */
static sem_status read_shared(const kv_file_header *h, const char *path, const char *ns,
                              const kv_chunk_source *src, const int32_t *tokens,
                              const kv_chunk_name *names, block_table *t, uint8_t *cbuf,
                              size_t cbuf_bytes, kv_read_fault *fault, sem_err *err)
{
    kv_chunk_name *want = malloc((h->n_shared + 1) * sizeof *want);
    if (!want)
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for %u chunk names", path,
                           h->n_shared);
    kv_chunk_root(h, ns, strlen(ns), &want[0]);
    kv_chunk_names(h, ns, strlen(ns), tokens, h->n_shared, want + 1);
    if (memcmp(want + 1, names, h->n_shared * sizeof *names) != 0) {
        free(want);
        return sem_err_set(err, SEM_ECORRUPT,
                           "%s: the shared chunks it names are not those of its tokens in "
                           "namespace '%s'",
                           path, ns);
    }
    shared_read r = {.h = h, .path = path, .src = src, .tokens = tokens, .names = names,
                     .want = want, .t = t};
    atomic_init(&r.next, 0);
    atomic_init(&r.failed, UINT32_MAX);
    shared_reader w[SHARED_READERS];
    int k = shared_readers_for(h->n_shared);
    memset(w, 0, sizeof w);
    for (int i = 0; i < k; i++) {
        w[i].r = &r;
        w[i].failed = UINT32_MAX;
    }
    w[0].cbuf = cbuf;
    for (int i = 1; i < k; i++) { /* a helper that cannot start leaves its share to the others */
        w[i].cbuf = malloc(cbuf_bytes);
        w[i].started = w[i].cbuf &&
                       pthread_create(&w[i].thread, NULL, shared_reader_run, &w[i]) == 0;
    }
    shared_reader_run(&w[0]);
    for (int i = 1; i < k; i++) {
        if (w[i].started)
            pthread_join(w[i].thread, NULL);
        free(w[i].cbuf);
    }
    sem_status st = SEM_OK;
    const shared_reader *first = first_failure(w, k);
    if (first) {
        st = first->st;
        if (err)
            *err = first->err;
        if (fault)
            *fault = first->fault;
    }
    free(want);
    return st;
}

sem_status kv_file_read(int fd, const char *path, uint64_t fingerprint, block_pool *pool,
                        const char *owner_name, block_table **out, kv_file_header *hout,
                        sem_err *err)
{
    return kv_file_read_from(fd, path, fingerprint, "", NULL, pool, owner_name, out, hout, NULL,
                             err);
}

sem_status kv_file_read_from(int fd, const char *path, uint64_t fingerprint, const char *ns,
                             const kv_chunk_source *src, block_pool *pool,
                             const char *owner_name, block_table **out, kv_file_header *hout,
                             kv_read_fault *fault, sem_err *err)
{
    *out = NULL;
    if (fault)
        memset(fault, 0, sizeof *fault);
    if (!pool || !path || !ns)
        return sem_err_set(err, SEM_EINVAL, "kv_file_read: NULL argument");
    kv_file_header *h = malloc(sizeof *h);
    if (!h)
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory", path);
    int32_t *tokens = NULL;
    kv_chunk_name *names = NULL;
    uint8_t *cbuf = NULL;
    block_table *t = NULL;
    const cache_spec *spec = block_pool_spec(pool);
    sem_status st = kv_file_read_header_names(fd, path, h, &tokens, &names, err);
    if (st == SEM_OK)
        st = kv_file_check(h, path, fingerprint, spec, err);
    if (st == SEM_OK && h->n_shared && !src)
        st = sem_err_set(err, SEM_EINCOMPAT,
                         "%s: names %u shared chunks; only its store reads it", path,
                         h->n_shared);
    if (st != SEM_OK)
        goto done;

    uint64_t per_token = kv_rows_token_bytes(h);
    size_t cbuf_bytes = (size_t)(h->chunk_tokens * per_token + CHECKSUM_BYTES);
    cbuf = malloc(cbuf_bytes);
    if (!cbuf) {
        st = sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a chunk of %llu bytes", path,
                         (unsigned long long)(h->chunk_tokens * per_token));
        goto done;
    }
    t = block_table_create(pool, owner_name, err);
    if (!t) {
        st = err ? err->status : SEM_ENOMEM;
        goto done;
    }
    st = block_table_restore(t, tokens, h->n_tokens, err);
    uint64_t off = h->header_bytes;
    const vec_ops *vo = kv_rows_ops();
    uint32_t n = h->n_tokens;
    for (uint32_t l = 0; st == SEM_OK && l < h->n_layers; l++) {
        uint32_t first = first_inline(h, l);
        for (uint32_t a = first, c = 0; st == SEM_OK && a < n; a += h->chunk_tokens, c++) {
            uint32_t b = n - a > h->chunk_tokens ? a + h->chunk_tokens : n;
            size_t bytes = (size_t)((b - a) * per_token);
            st = kv_rows_read(fd, path, cbuf, bytes + CHECKSUM_BYTES, off, "payload", err);
            if (st != SEM_OK)
                break;
            uint64_t want = kv_get64(cbuf + bytes);
            if (XXH64(cbuf, bytes, chunk_seed(h->checksum, l, c)) != want) {
                st = sem_err_set(err, SEM_ECORRUPT,
                                 "%s: corrupt payload: layer %u chunk %u (tokens %u..%u) at "
                                 "offset %llu..%llu fails its checksum",
                                 path, l, c, a, b - 1, (unsigned long long)off,
                                 (unsigned long long)(off + bytes + CHECKSUM_BYTES - 1));
                break;
            }
            kv_rows_move(vo, t, h, l, a, b, cbuf, 0);
            off += bytes + CHECKSUM_BYTES;
        }
    }
    if (st == SEM_OK && h->n_shared)
        st = read_shared(h, path, ns, src, tokens, names, t, cbuf, cbuf_bytes, fault, err);
done:
    if (st == SEM_OK) {
        *out = t;
        if (hout)
            *hout = *h;
    } else {
        block_table_destroy(t);
        if (hout)
            hout->version = h->version; /* what the caller needs to tell newer from bad */
    }
    free(h);
    free(tokens);
    free(names);
    free(cbuf);
    return st;
}
