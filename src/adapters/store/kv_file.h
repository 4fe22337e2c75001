/*
 * kv_file.h - the cache file codec: one agent's tokens and KV on disk.
 *
 * A cache file holds a sequence's token ids and, for every layer, the K and
 * V rows of the tokens that layer keeps (all tokens on a global layer, the
 * last `window` on a sliding one: cache_spec_kept_tokens), with the model's
 * fingerprint, the KV geometry and checksums. docs/cache-format.md gives
 * the layout byte by byte; in short:
 *
 *   header   magic, version, preamble check, fingerprint, geometry,
 *            payload type, chunk size, token count, file size,
 *            per-layer kind and window, the tokens, XXH64 of all of it
 *            (version 2, shared: the names of the shared chunks)
 *   payload  per layer, per chunk of up to chunk_tokens kept tokens
 *            (version 2, shared: on global layers only the tokens past
 *            the shared chunks):
 *            K[n_kv_heads][chunk][row] then V[n_kv_heads][chunk][row],
 *            rows in the payload type, then the chunk's XXH64
 *
 * Bytes per token on disk: every layer that keeps the token stores
 * n_kv_heads * (row(k_head_dim) + row(v_head_dim)), where row(d) is 2d for
 * f16, 34d/32 for q8_0 and 18d/32 for q4_0; plus 4 bytes of token id and
 * 8 bytes of checksum per chunk of each layer.
 *
 * Writing reads rows straight out of the table's pool blocks and converts
 * each to the payload type; reading checks everything before it trusts
 * anything (preamble, version, header checksum, field ranges, exact file
 * size, fingerprint, geometry, every chunk checksum) and writes rows
 * straight into the blocks of a table made with block_table_restore,
 * converting to the pool's kv_type and re-blocking to its block_tokens.
 *
 * Errors: SEM_ECORRUPT for damage (the detail names the check and the byte
 * offset), SEM_EINCOMPAT for a file of a version this build does not read
 * (kv_file_version_is_newer() tells a later release's file from one no
 * release wrote), another model (fingerprint) or another KV geometry, SEM_EIO for the operating
 * system's failures (errno text), SEM_EPOOL / SEM_ENOMEM from the pool and
 * allocations. A failed read destroys the table it was building; a failed
 * write leaves a partial file that the caller deletes.
 *
 * Threads: every function is reentrant. Writing only reads the table and
 * its blocks; the caller keeps them unchanged meanwhile. Reading a file
 * that names shared chunks may start up to 3 threads of its own for the
 * chunks and joins them before it returns, so the source's open() must be
 * reentrant (kv_file.c, "shared chunks"). Rows are kept in
 * host byte order in blocks and little-endian in files: the codec assumes
 * a little-endian host (checked at compile time).
 */
#ifndef SEM_KV_FILE_H
#define SEM_KV_FILE_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "domain/block_pool.h"
#include "domain/block_table.h"
#include "domain/cache_spec.h"
#include "domain/status.h"

/* The version written, and the oldest one read: every version from
 * KV_FILE_MIN_VERSION to KV_FILE_VERSION loads (kv_file.c, "format
 * versions"). KV_FILE_MIN_VERSION never rises: what a release wrote, later
 * releases read. */
#define KV_FILE_VERSION 2
#define KV_FILE_MIN_VERSION 1
/* Flag of version 2: the global layers' whole chunks are not in the file
 * but in shared chunk files (kv_chunk.h), named after the tokens. */
#define KV_FILE_FLAG_SHARED 1u
#define KV_FILE_MAGIC "SEMKV\r\n\x1a" /* 8 bytes, no terminator in files */
#define KV_FILE_FIXED_BYTES 64        /* fixed part of the header */
#define KV_FILE_DEFAULT_CHUNK_TOKENS 128
#define KV_FILE_MAX_CHUNK_TOKENS 65536
/* A chunk is verified before use, so it is held in memory: at most this
 * much unless one token alone is larger. */
#define KV_FILE_MAX_CHUNK_BYTES (16u << 20)

/* A shared chunk's name: XXH3-128 of what it is made from (kv_chunk.h),
 * in XXH128's canonical (big-endian) byte order. */
#define KV_CHUNK_NAME_BYTES 16
typedef struct kv_chunk_name {
    uint8_t b[KV_CHUNK_NAME_BYTES];
} kv_chunk_name;

/* Element type of the rows in a file. The values are the file's codes. */
typedef enum kv_payload {
    KV_PAYLOAD_DEFAULT = 0, /* in options only: q8_0; never in a file */
    KV_PAYLOAD_F16 = 1,
    KV_PAYLOAD_Q8_0 = 2,
    KV_PAYLOAD_Q4_0 = 3,
} kv_payload;

/* "f16", "q8_0", "q4_0"; "unknown" otherwise. */
const char *kv_payload_name(kv_payload p);
/* Parses a name above; SEM_EINVAL for anything else. */
sem_status kv_payload_parse(const char *name, kv_payload *out, sem_err *err);
/* Bytes of one row of `dim` elements (dim a multiple of 32 for q8_0, q4_0). */
size_t kv_payload_row_bytes(kv_payload p, uint32_t dim);
/* Whether rows of k_dim and v_dim can be stored as p (q8_0, q4_0: multiples of 32). */
int kv_payload_fits(kv_payload p, uint32_t k_dim, uint32_t v_dim);

/* The header of a file, as read and verified (tokens aside). */
typedef struct kv_file_header {
    uint32_t version;
    uint64_t fingerprint;
    uint32_t n_layers;
    uint32_t n_kv_heads;
    uint32_t k_head_dim;
    uint32_t v_head_dim;
    kv_payload payload;
    uint32_t chunk_tokens;
    uint32_t n_tokens;
    uint32_t n_shared;     /* whole chunks held in shared chunk files: tokens
                              [0, n_shared * chunk_tokens) of every global layer */
    uint64_t file_bytes;   /* exact size of the whole file */
    uint64_t header_bytes; /* fixed part + layers + tokens + checksum */
    uint64_t checksum;     /* XXH64 of the header; seeds the chunk checksums */
    cache_layer layers[CACHE_SPEC_MAX_LAYERS]; /* [n_layers] */
} kv_file_header;

/*
 * Called before each write(2) of `bytes` at `offset` into `path`; a nonzero
 * return is taken as that write's errno (tests return ENOSPC to simulate a
 * full disk), 0 lets the write proceed.
 */
typedef int (*kv_write_hook)(void *ctx, const char *path, uint64_t offset, size_t bytes);

typedef struct kv_file_write_opts {
    uint64_t fingerprint;  /* the model's (GGUF layout hash) */
    kv_payload payload;    /* DEFAULT: q8_0; a quantized type the head dims
                              cannot take (not multiples of 32) falls back to f16 */
    uint32_t chunk_tokens; /* 0: KV_FILE_DEFAULT_CHUNK_TOKENS; lowered so a
                              chunk stays within KV_FILE_MAX_CHUNK_BYTES */
    kv_write_hook hook;    /* optional */
    void *hook_ctx;
    const atomic_int *stop; /* optional: nonzero stops the write before the next
                               chunk with SEM_ECANCELLED */
    /* Shared chunks: when share is nonzero and the model has a global
     * layer, the file names the n_tokens / chunk_tokens whole chunks
     * instead of holding their global layers' rows. kv_file_plan says how
     * many (n_shared); kv_file_write then takes their names in names[]
     * (kv_chunk_names), and the caller writes the chunk files. */
    int share;
    const kv_chunk_name *names;
} kv_file_write_opts;

/* The header kv_file_write would write for t (its file_bytes is the size
 * of the whole file), without writing anything. */
sem_status kv_file_plan(const block_table *t, const kv_file_write_opts *o, kv_file_header *out,
                        sem_err *err);

/* The same for a sequence of n_tokens (>= 1) of this geometry: payload
 * type, chunk size and shared chunks as a file of it would have them. */
sem_status kv_file_plan_spec(const cache_spec *spec, uint32_t n_tokens,
                             const kv_file_write_opts *o, kv_file_header *out, sem_err *err);

/*
 * Writes table t (n_tokens >= 1) to fd, which must be an empty file open
 * for writing, from offset 0; `path` names it in messages. Does not fsync
 * or close fd. On success *file_bytes (may be NULL) is the size written and
 * *payload_out (may be NULL) the payload type used. SEM_EINVAL for an
 * empty table or bad options, SEM_EIO when a write fails.
 */

sem_status kv_file_write(int fd, const char *path, const block_table *t,
                         const kv_file_write_opts *o, uint64_t *file_bytes,
                         kv_payload *payload_out, sem_err *err);

/*
 * Reads and verifies fd's header: preamble, version, header checksum,
 * field ranges and that the file's size is exactly what the header
 * describes. Does not compare fingerprint or geometry (kv_file_check).
 * With tokens non-NULL, *tokens receives the token ids (malloc'd, the
 * caller frees; h->n_tokens of them). SEM_ECORRUPT, SEM_EINCOMPAT (unknown
 * version), SEM_EIO, SEM_ENOMEM.
 */
sem_status kv_file_read_header(int fd, const char *path, kv_file_header *h, int32_t **tokens,
                               sem_err *err);

/* As kv_file_read_header; with names non-NULL, *names receives the names
 * of the h->n_shared shared chunks (malloc'd; NULL when there are none). */
sem_status kv_file_read_header_names(int fd, const char *path, kv_file_header *h,
                                     int32_t **tokens, kv_chunk_name **names, sem_err *err);

/*
 * Reads only the fixed part of the header (KV_FILE_FIXED_BYTES): magic,
 * preamble check and version are verified, nothing else is (no checksum;
 * layers and header_bytes/checksum are left zero). For cheap comparisons
 * with an index, never for trusting a file.
 */
sem_status kv_file_read_fixed(int fd, const char *path, kv_file_header *h, sem_err *err);

/*
 * SEM_EINCOMPAT unless the header's fingerprint is `fingerprint` and, when
 * spec is non-NULL, its geometry equals spec's (layers, kinds, windows,
 * KV heads, head dims; block_tokens and kv_type may differ).
 */
sem_status kv_file_check(const kv_file_header *h, const char *path, uint64_t fingerprint,
                         const cache_spec *spec, sem_err *err);

/*
 * Reads a whole file into a new table of `pool` whose owner is named
 * `owner_name`: verifies the header, kv_file_check against the pool's
 * spec, restores the table (only the kept blocks) and fills it chunk by
 * chunk, each verified before use. On success *out owns the table and *h
 * (may be NULL) the header. On any failure *out is NULL, nothing is left
 * allocated in the pool and h->version is the version read (0 when the
 * preamble could not be read).
 */
sem_status kv_file_read(int fd, const char *path, uint64_t fingerprint, block_pool *pool,
                        const char *owner_name, block_table **out, kv_file_header *h,
                        sem_err *err);

/*
 * Where a reader finds shared chunk files: open() opens the file of chunk
 * `name` for reading into *fd, with its path for messages in path[cap];
 * SEM_ENOTFOUND when there is no such file, SEM_EIO otherwise. It is
 * called from several threads at once.
 */
typedef struct kv_chunk_source {
    void *ctx;
    sem_status (*open)(void *ctx, const kv_chunk_name *name, int *fd, char *path, size_t cap,
                       sem_err *err);
} kv_chunk_source;

/* Which file a failed read blames. */
typedef struct kv_read_fault {
    int in_chunk;       /* 1: shared chunk `name` (else the agent's own file) */
    int missing;        /* 1: that chunk's file does not exist */
    kv_chunk_name name;
} kv_read_fault;

/*
 * kv_file_read for files that may name shared chunks: ns is the namespace
 * of the agent (its key's part before the first '.'; the names the file
 * gives must be those of its tokens in ns, else SEM_ECORRUPT), src opens
 * the chunk files, each verified against what the agent file says it
 * holds (kv_chunk_read). A missing chunk is SEM_ECORRUPT. On failure
 * *fault (may be NULL) says which file is to blame. kv_file_read is this
 * with no source: a file naming shared chunks is then SEM_EINCOMPAT.
 */
sem_status kv_file_read_from(int fd, const char *path, uint64_t fingerprint, const char *ns,
                             const kv_chunk_source *src, block_pool *pool,
                             const char *owner_name, block_table **out, kv_file_header *h,
                             kv_read_fault *fault, sem_err *err);

/* Whether a file of this format version was written by a later release
 * than this build (SEM_EINCOMPAT from the readers, not damage): such a file
 * is kept, never loaded and never rewritten by guesswork. */
int kv_file_version_is_newer(uint32_t version);

/* Size of a file of this geometry, payload, chunk size and length (0 on overflow). */
uint64_t kv_file_size_for(const kv_file_header *h);

#endif
