/*
 * kv_chunk.c - shared chunk files (format in kv_chunk.h and
 * docs/cache-format.md, "Shared chunks").
 *
 * The reader builds the header it expects from what the agent file says
 * (geometry, index, names, tokens) and compares the file's bytes with it:
 * any difference, whatever its cause, is SEM_ECORRUPT at the offset of the
 * first differing byte, and the header's checksum then seeds the rows'.
 */
#include "kv_chunk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation per name */
#include <xxhash.h>

#include "kv_rows.h"

/* Offsets in the fixed header (docs/cache-format.md, "Shared chunks"). */
enum {
    C_MAGIC = 0,
    C_VERSION = 8,
    C_PREAMBLE = 12,
    C_FINGERPRINT = 16,
    C_N_LAYERS = 24,
    C_N_KV_HEADS = 28,
    C_K_HEAD_DIM = 32,
    C_V_HEAD_DIM = 36,
    C_PAYLOAD = 40,
    C_CHUNK_TOKENS = 44,
    C_INDEX = 48,
    C_FLAGS = 52,
    C_FILE_BYTES = 56,
    C_NAME = 64,
    C_PARENT = 80,
    C_PREAMBLE_BYTES = 12,
    C_LAYER_BYTES = 8,
    C_CHECKSUM_BYTES = 8,
};

_Static_assert(C_PARENT + KV_CHUNK_NAME_BYTES == KV_CHUNK_FIXED_BYTES, "fixed header size");

#define ROOT_TAG "semantic shared KV chunk, root v1"

size_t kv_chunk_ns_len(const char *key)
{
    return strcspn(key, ".");
}

int kv_chunk_has_global(const kv_file_header *g)
{
    for (uint32_t l = 0; l < g->n_layers; l++)
        if (g->layers[l].kind == CACHE_ATTN_GLOBAL)
            return 1;
    return 0;
}

static uint32_t n_global(const kv_file_header *g)
{
    uint32_t n = 0;
    for (uint32_t l = 0; l < g->n_layers; l++)
        n += g->layers[l].kind == CACHE_ATTN_GLOBAL;
    return n;
}

static void name_of(XXH128_hash_t h, kv_chunk_name *out)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out->b, c.digest, KV_CHUNK_NAME_BYTES);
}

void kv_chunk_root(const kv_file_header *g, const char *ns, size_t ns_len, kv_chunk_name *root)
{
    /* Everything a chunk's rows depend on besides the tokens, as bytes. */
    uint8_t buf[sizeof ROOT_TAG + 48 + CACHE_SPEC_MAX_LAYERS * C_LAYER_BYTES];
    uint8_t *p = buf;
    memcpy(p, ROOT_TAG, sizeof ROOT_TAG);
    p += sizeof ROOT_TAG;
    kv_put64(p, g->fingerprint);
    kv_put32(p + 8, g->n_layers);
    kv_put32(p + 12, g->n_kv_heads);
    kv_put32(p + 16, g->k_head_dim);
    kv_put32(p + 20, g->v_head_dim);
    kv_put32(p + 24, (uint32_t)g->payload);
    kv_put32(p + 28, g->chunk_tokens);
    kv_put64(p + 32, (uint64_t)ns_len);
    p += 40;
    for (uint32_t l = 0; l < g->n_layers && l < CACHE_SPEC_MAX_LAYERS; l++, p += C_LAYER_BYTES) {
        kv_put32(p, (uint32_t)g->layers[l].kind);
        kv_put32(p + 4, g->layers[l].window);
    }
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, buf, (size_t)(p - buf));
    XXH3_128bits_update(&st, ns, ns_len);
    name_of(XXH3_128bits_digest(&st), root);
}

void kv_chunk_names(const kv_file_header *g, const char *ns, size_t ns_len,
                    const int32_t *tokens, uint32_t k, kv_chunk_name *names)
{
    kv_chunk_name parent;
    kv_chunk_root(g, ns, ns_len, &parent);
    size_t c = g->chunk_tokens;
    for (uint32_t i = 0; i < k; i++) {
        /* Token ids hash as their little-endian bytes, as files store them
         * (kv_rows.h checks the host is little-endian). */
        XXH3_state_t st;
        XXH3_128bits_reset(&st);
        XXH3_128bits_update(&st, parent.b, KV_CHUNK_NAME_BYTES);
        XXH3_128bits_update(&st, tokens + i * c, c * sizeof *tokens);
        name_of(XXH3_128bits_digest(&st), &names[i]);
        parent = names[i];
    }
}

void kv_chunk_hex(const kv_chunk_name *name, char out[KV_CHUNK_HEX_BYTES])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < KV_CHUNK_NAME_BYTES; i++) {
        out[2 * i] = digits[name->b[i] >> 4];
        out[2 * i + 1] = digits[name->b[i] & 15];
    }
    out[2 * KV_CHUNK_NAME_BYTES] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int kv_chunk_parse_hex(const char *s, kv_chunk_name *out)
{
    if (strlen(s) != 2 * KV_CHUNK_NAME_BYTES)
        return 0;
    for (int i = 0; i < KV_CHUNK_NAME_BYTES; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

static uint64_t header_bytes(const kv_file_header *g)
{
    return KV_CHUNK_FIXED_BYTES + (uint64_t)g->n_layers * C_LAYER_BYTES +
           (uint64_t)g->chunk_tokens * 4 + C_CHECKSUM_BYTES;
}

uint64_t kv_chunk_size_for(const kv_file_header *g)
{
    uint32_t global = n_global(g);
    if (!global)
        return 0;
    return header_bytes(g) +
           global * ((uint64_t)g->chunk_tokens * kv_rows_token_bytes(g) + C_CHECKSUM_BYTES);
}

/* The header of chunk `index` into buf (header_bytes(g) long); returns its checksum. */
static uint64_t encode_header(const kv_file_header *g, uint32_t index, const kv_chunk_name *name,
                              const kv_chunk_name *parent, const int32_t *tokens, uint8_t *buf)
{
    memset(buf, 0, KV_CHUNK_FIXED_BYTES);
    memcpy(buf + C_MAGIC, KV_CHUNK_MAGIC, 8);
    kv_put32(buf + C_VERSION, KV_CHUNK_VERSION);
    kv_put32(buf + C_PREAMBLE, XXH32(buf, C_PREAMBLE_BYTES, 0));
    kv_put64(buf + C_FINGERPRINT, g->fingerprint);
    kv_put32(buf + C_N_LAYERS, g->n_layers);
    kv_put32(buf + C_N_KV_HEADS, g->n_kv_heads);
    kv_put32(buf + C_K_HEAD_DIM, g->k_head_dim);
    kv_put32(buf + C_V_HEAD_DIM, g->v_head_dim);
    kv_put32(buf + C_PAYLOAD, (uint32_t)g->payload);
    kv_put32(buf + C_CHUNK_TOKENS, g->chunk_tokens);
    kv_put32(buf + C_INDEX, index);
    kv_put32(buf + C_FLAGS, 0);
    kv_put64(buf + C_FILE_BYTES, kv_chunk_size_for(g));
    memcpy(buf + C_NAME, name->b, KV_CHUNK_NAME_BYTES);
    memcpy(buf + C_PARENT, parent->b, KV_CHUNK_NAME_BYTES);
    uint8_t *p = buf + KV_CHUNK_FIXED_BYTES;
    for (uint32_t l = 0; l < g->n_layers; l++, p += C_LAYER_BYTES) {
        kv_put32(p, (uint32_t)g->layers[l].kind);
        kv_put32(p + 4, g->layers[l].window);
    }
    for (uint32_t i = 0; i < g->chunk_tokens; i++, p += 4)
        kv_put32(p, (uint32_t)tokens[i]);
    uint64_t sum = XXH64(buf, (size_t)(p - buf), 0);
    kv_put64(p, sum);
    return sum;
}

static uint64_t layer_seed(uint64_t header_checksum, uint32_t layer)
{
    return header_checksum ^ ((uint64_t)layer << 32);
}

/* Buffers of one chunk's header and one layer's rows. */
static sem_status alloc_bufs(const kv_file_header *g, const char *path, uint8_t **hbuf,
                             uint8_t **rows, sem_err *err)
{
    *hbuf = malloc(header_bytes(g));
    *rows = malloc(g->chunk_tokens * kv_rows_token_bytes(g) + C_CHECKSUM_BYTES);
    if (*hbuf && *rows)
        return SEM_OK;
    free(*hbuf);
    free(*rows);
    *hbuf = *rows = NULL;
    return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a chunk of %llu bytes", path,
                       (unsigned long long)kv_chunk_size_for(g));
}

sem_status kv_chunk_write(int fd, const char *path, const block_table *t,
                          const kv_file_header *g, uint32_t index, const kv_chunk_name *name,
                          const kv_chunk_name *parent, kv_write_hook hook, void *hook_ctx,
                          const atomic_int *stop, sem_err *err)
{
    uint32_t c = g->chunk_tokens, a = index * c;
    if (!n_global(g) || (uint64_t)a + c > block_table_n_tokens(t))
        return sem_err_set(err, SEM_EINVAL, "%s: chunk %u of %u tokens is past the table's %u",
                           path, index, c, block_table_n_tokens(t));
    uint8_t *hbuf, *rows;
    sem_status st = alloc_bufs(g, path, &hbuf, &rows, err);
    if (st != SEM_OK)
        return st;
    uint64_t sum = encode_header(g, index, name, parent, block_table_tokens(t) + a, hbuf);
    uint64_t off = 0;
    st = kv_rows_write(fd, path, hbuf, header_bytes(g), &off, hook, hook_ctx, err);
    const vec_ops *vo = kv_rows_ops();
    size_t bytes = (size_t)(c * kv_rows_token_bytes(g));
    for (uint32_t l = 0; st == SEM_OK && l < g->n_layers; l++) {
        if (g->layers[l].kind != CACHE_ATTN_GLOBAL)
            continue;
        if (stop && atomic_load_explicit(stop, memory_order_relaxed)) {
            st = sem_err_set(err, SEM_ECANCELLED, "%s: the write was stopped", path);
            break;
        }
        kv_rows_move(vo, t, g, l, a, a + c, rows, 1);
        kv_put64(rows + bytes, XXH64(rows, bytes, layer_seed(sum, l)));
        st = kv_rows_write(fd, path, rows, bytes + C_CHECKSUM_BYTES, &off, hook, hook_ctx, err);
    }
    free(hbuf);
    free(rows);
    return st;
}

/* Compares the file's header with the expected one; ECORRUPT at the first difference. */
static sem_status check_header(int fd, const char *path, const uint8_t *want, size_t n,
                               uint64_t file_bytes, sem_err *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return sem_err_set(err, SEM_EIO, "stat %s: %s", path, strerror(errno));
    uint8_t *got = malloc(n);
    if (!got)
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a header of %zu bytes", path,
                           n);
    sem_status st = SEM_OK;
    if ((uint64_t)sb.st_size != file_bytes)
        st = sem_err_set(err, SEM_ECORRUPT,
                         "%s: the chunk file is %llu bytes, a chunk of this geometry is %llu",
                         path, (unsigned long long)sb.st_size, (unsigned long long)file_bytes);
    if (st == SEM_OK)
        st = kv_rows_read(fd, path, got, n, 0, "chunk header", err);
    if (st == SEM_OK && memcmp(got, want, n) != 0) {
        size_t at = 0;
        while (got[at] == want[at])
            at++;
        st = sem_err_set(err, SEM_ECORRUPT,
                         "%s: the chunk's header differs at offset %zu from the one its agent "
                         "expects (%s)",
                         path, at,
                         at < C_PREAMBLE + 4       ? "magic or version"
                         : at < C_NAME             ? "geometry, payload, index or size"
                         : at < C_PARENT           ? "its name"
                         : at < KV_CHUNK_FIXED_BYTES ? "its parent: the tokens before it"
                         : at < n - 8              ? "layers or tokens"
                                                   : "header checksum");
    }
    free(got);
    return st;
}

sem_status kv_chunk_read(int fd, const char *path, const kv_file_header *g, uint32_t index,
                         const kv_chunk_name *name, const kv_chunk_name *parent,
                         const int32_t *tokens, block_table *t, uint8_t *buf, sem_err *err)
{
    size_t hn = (size_t)header_bytes(g);
    uint8_t *want = malloc(hn);
    if (!want)
        return sem_err_set(err, SEM_ENOMEM, "%s: out of memory for a header of %zu bytes", path,
                           hn);
    uint64_t sum = encode_header(g, index, name, parent, tokens, want);
    sem_status st = check_header(fd, path, want, hn, kv_chunk_size_for(g), err);
    free(want);
    uint32_t c = g->chunk_tokens, a = index * c;
    size_t bytes = (size_t)(c * kv_rows_token_bytes(g));
    uint64_t off = hn;
    const vec_ops *vo = kv_rows_ops();
    for (uint32_t l = 0; st == SEM_OK && l < g->n_layers; l++) {
        if (g->layers[l].kind != CACHE_ATTN_GLOBAL)
            continue;
        st = kv_rows_read(fd, path, buf, bytes + C_CHECKSUM_BYTES, off, "payload", err);
        if (st != SEM_OK)
            break;
        if (XXH64(buf, bytes, layer_seed(sum, l)) != kv_get64(buf + bytes)) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "%s: corrupt payload: layer %u (tokens %u..%u) at offset "
                             "%llu..%llu fails its checksum",
                             path, l, a, a + c - 1, (unsigned long long)off,
                             (unsigned long long)(off + bytes + C_CHECKSUM_BYTES - 1));
            break;
        }
        kv_rows_move(vo, t, g, l, a, a + c, buf, 0);
        off += bytes + C_CHECKSUM_BYTES;
    }
    return st;
}
