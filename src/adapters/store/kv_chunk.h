/*
 * kv_chunk.h - the shared chunk codec: the K/V of one whole chunk of a
 * sequence on its global layers, stored once for every agent whose
 * sequence starts alike (docs/cache-format.md, "Shared chunks").
 *
 * A chunk i holds tokens [i*C, (i+1)*C) (C = chunk_tokens) of every global
 * layer. Its name is a chain of XXH3-128 hashes:
 *
 *   root      = XXH3-128(tag, fingerprint, geometry, payload, C, namespace)
 *   name(0)   = XXH3-128(root      || tokens [0, C))
 *   name(i)   = XXH3-128(name(i-1) || tokens [i*C, (i+1)*C))
 *
 * so name(i) depends on the model, the KV geometry, the payload type, the
 * namespace and every token from 0 to (i+1)*C: two agents of one
 * namespace whose sequences agree on their first (i+1)*C tokens name chunk
 * i alike; two namespaces never do. The file repeats what it was made of
 * (fingerprint, geometry, payload, C, index, its name, its parent's name,
 * its tokens) under a header checksum, and each layer's rows carry their
 * XXH64, so a reader that compares the header with what it expects catches
 * a hash collision, a file under the wrong name and a flipped bit alike.
 *
 * Threads: every function is reentrant. Errors as kv_file.h.
 */
#ifndef SEM_KV_CHUNK_H
#define SEM_KV_CHUNK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_file.h"

#define KV_CHUNK_VERSION 1
#define KV_CHUNK_MAGIC "SEMKC\r\n\x1a" /* 8 bytes, no terminator in files */
#define KV_CHUNK_FIXED_BYTES 96
#define KV_CHUNK_HEX_BYTES (2 * KV_CHUNK_NAME_BYTES + 1)

/* Length of the namespace of an agent key: the part before its first '.'. */
size_t kv_chunk_ns_len(const char *key);

/* Whether the geometry has a global layer (only those are shared). */
int kv_chunk_has_global(const kv_file_header *g);

/*
 * The root name of namespace ns[0..ns_len) for geometry g (fingerprint,
 * layers, heads, dims, payload, chunk_tokens), and the names of chunks
 * 0..k-1 of tokens (k * g->chunk_tokens of them) into names[k].
 */
void kv_chunk_root(const kv_file_header *g, const char *ns, size_t ns_len, kv_chunk_name *root);
void kv_chunk_names(const kv_file_header *g, const char *ns, size_t ns_len,
                    const int32_t *tokens, uint32_t k, kv_chunk_name *names);

/* 32 lowercase hex digits and a NUL. */
void kv_chunk_hex(const kv_chunk_name *name, char out[KV_CHUNK_HEX_BYTES]);
/* Parses 32 hex digits (exactly); 0 when s is not that. */
int kv_chunk_parse_hex(const char *s, kv_chunk_name *out);

/* Size of a chunk file of geometry g (0 when g has no global layer). */
uint64_t kv_chunk_size_for(const kv_file_header *g);

/*
 * Writes chunk `index` of table t (which holds its tokens on every global
 * layer) as a chunk file of geometry g into fd (empty, open for writing),
 * named `name` with parent `parent` (the root for chunk 0). hook and stop
 * as kv_file_write_opts. Does not fsync or close fd.
 */
sem_status kv_chunk_write(int fd, const char *path, const block_table *t,
                          const kv_file_header *g, uint32_t index, const kv_chunk_name *name,
                          const kv_chunk_name *parent, kv_write_hook hook, void *hook_ctx,
                          const atomic_int *stop, sem_err *err);

/*
 * Reads chunk `index` from fd into t's blocks (t restored to at least
 * (index+1) * C tokens), after checking that its header is exactly the one
 * a chunk of geometry g, this index, name, parent and tokens (C of them)
 * has, that its size is right and, before each layer's rows are used,
 * their checksum. buf holds C * token bytes + 8. SEM_ECORRUPT names the
 * check and the offset.
 */
sem_status kv_chunk_read(int fd, const char *path, const kv_file_header *g, uint32_t index,
                         const kv_chunk_name *name, const kv_chunk_name *parent,
                         const int32_t *tokens, block_table *t, uint8_t *buf, sem_err *err);

#endif
