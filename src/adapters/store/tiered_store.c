/*
 * tiered_store.c - the warm store as the disk plus a remote tier under it
 * (tiered_store.h; the remote layout and consistency: docs/remote-tier.md).
 *
 * State and its lock: `lock` guards the write queue (a ring of keys, at
 * most max_queue, no key twice), the key being written (inflight, and
 * whether a remove came for it meanwhile), the stop flag, the dropped
 * count and the learned spec. It is never held across disk or network
 * I/O. The disk store and the remote tier lock themselves.
 *
 * Threads: every port operation runs on its caller's thread; remote
 * writes run on the store's one writer thread, which exports the agent's
 * files from the disk (the latest version saved, whatever was queued) and
 * puts them. A write that fails is counted by the tier and not retried:
 * the agent's next save writes it again. A remove that arrives while its
 * key is being written removes the remote copy again once the put ends,
 * so a removed agent does not come back from the remote tier.
 *
 * The remote names: space = "<fingerprint>.<geometry hash>.<payload>.<ns>"
 * (16 hex digits each, the payload's name, the agent key's namespace), so
 * two models, two geometries, two payload types or two namespaces never
 * share an entry. An agent is put as an index blob (below) and its shared
 * chunk files as they are on disk.
 *
 * Index blob, version 1 (little-endian):
 *   0   8   magic "SEMRI\r\n\x1a"
 *   8   4   version 1
 *   12  4   n_tokens of the agent
 *   16  4   n_chunks (the shared chunks its file names, in order)
 *   20  4   0
 *   24  8   file_bytes (the agent file, at the end of the blob)
 *   32  8   chunk_bytes (the chunks' total)
 *   40  8   saved_ms (unix ms of the put)
 *   48  32n the chunks' names, 32 hex digits each
 *   ..  8   XXH64 (seed 0) of every byte before it
 *   ..      the agent file's bytes
 */
#include "tiered_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/deadline.h"
#include "kv_chunk.h"

#define BLOB_MAGIC "SEMRI\r\n\x1a"
#define BLOB_VERSION 1
#define BLOB_FIXED 48
#define NAME_HEX 32
#define SPACE_CAP (3 * 17 + 8 + WARM_KEY_MAX + 1)
#define DEFAULT_QUEUE 64

struct tiered_store {
    disk_store *disk;
    warm_store dport;
    remote_tier remote;
    uint64_t fingerprint;
    uint32_t max_queue;
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
    pthread_t writer;
    int has_writer;

    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the writer: work queued, or stop */
    char **queue;             /* ring [max_queue]: keys waiting for their remote write */
    size_t head, n;
    char *inflight;           /* the key the writer is putting, or NULL */
    int inflight_removed;     /* a remove came for it meanwhile */
    int stop;
    double drain_deadline;    /* deadline_now_ms() after which queued writes are dropped */
    uint64_t dropped;
    int have_spec;
    cache_spec spec;
};

static void logf_(const tiered_store *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const tiered_store *t, const char *fmt, ...)
{
    if (!t->log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->log(t->log_ctx, msg);
}

/* ------------------------------------------------------------ names */

/* The remote space of agent `key` for files of header h. */
static void space_of(const kv_file_header *h, const char *key, char out[SPACE_CAP])
{
    uint32_t geo[5 + 2 * CACHE_SPEC_MAX_LAYERS];
    uint32_t n = 0;
    geo[n++] = h->n_layers;
    geo[n++] = h->n_kv_heads;
    geo[n++] = h->k_head_dim;
    geo[n++] = h->v_head_dim;
    geo[n++] = h->chunk_tokens;
    for (uint32_t l = 0; l < h->n_layers && l < CACHE_SPEC_MAX_LAYERS; l++) {
        geo[n++] = (uint32_t)h->layers[l].kind;
        geo[n++] = h->layers[l].window;
    }
    uint64_t g = XXH3_64bits(geo, n * sizeof *geo);
    snprintf(out, SPACE_CAP, "%016llx.%016llx.%s.%.*s", (unsigned long long)h->fingerprint,
             (unsigned long long)g, kv_payload_name(h->payload), (int)kv_chunk_ns_len(key), key);
}

static void learn_spec(tiered_store *t, const cache_spec *spec)
{
    pthread_mutex_lock(&t->lock);
    if (!t->have_spec)
        t->spec = *spec;
    t->have_spec = 1;
    pthread_mutex_unlock(&t->lock);
}

/* The space readers of this store use for key; 0 while no spec is known. */
static int reader_space(tiered_store *t, const char *key, char out[SPACE_CAP])
{
    pthread_mutex_lock(&t->lock);
    int have = t->have_spec;
    cache_spec spec;
    if (have)
        spec = t->spec;
    pthread_mutex_unlock(&t->lock);
    kv_file_header *h = have ? malloc(sizeof *h) : NULL;
    int ok = h && disk_store_plan_header(t->disk, &spec, h, NULL) == SEM_OK;
    if (ok) {
        h->fingerprint = t->fingerprint;
        space_of(h, key, out);
    }
    free(h);
    return ok;
}

/* ------------------------------------------------------------ index blob */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The index blob of exported agent a (malloc'd). */
static uint8_t *blob_encode(const disk_store_agent *a, size_t *len)
{
    size_t head = BLOB_FIXED + (size_t)NAME_HEX * a->n_chunks;
    uint8_t *b = malloc(head + 8 + a->file_len);
    if (!b)
        return NULL;
    uint64_t chunk_bytes = 0;
    for (uint32_t i = 0; i < a->n_chunks; i++)
        chunk_bytes += a->chunks[i].len;
    memcpy(b, BLOB_MAGIC, 8);
    put32(b + 8, BLOB_VERSION);
    put32(b + 12, a->header.n_tokens);
    put32(b + 16, a->n_chunks);
    put32(b + 20, 0);
    put64(b + 24, a->file_len);
    put64(b + 32, chunk_bytes);
    put64(b + 40, (uint64_t)deadline_wall_ms());
    for (uint32_t i = 0; i < a->n_chunks; i++)
        memcpy(b + BLOB_FIXED + (size_t)NAME_HEX * i, a->chunks[i].name, NAME_HEX);
    put64(b + head, XXH64(b, head, 0));
    memcpy(b + head + 8, a->file, a->file_len);
    *len = head + 8 + a->file_len;
    return b;
}

typedef struct blob_view {
    uint32_t n_tokens, n_chunks;
    uint64_t chunk_bytes, saved_ms;
    const uint8_t *names; /* n_chunks x 32 hex digits */
    const uint8_t *file;
    size_t file_len;
} blob_view;

static sem_status blob_decode(const uint8_t *b, size_t len, const char *key, blob_view *v,
                              sem_err *err)
{
    if (len < BLOB_FIXED + 8 || memcmp(b, BLOB_MAGIC, 8) != 0 || get32(b + 8) != BLOB_VERSION)
        return sem_err_set(err, SEM_ECORRUPT, "remote index of agent '%s': %zu bytes without "
                           "the magic and version 1 of an index blob", key, len);
    v->n_tokens = get32(b + 12);
    v->n_chunks = get32(b + 16);
    uint64_t file_len = get64(b + 24);
    size_t head = BLOB_FIXED + (size_t)NAME_HEX * v->n_chunks;
    if (v->n_chunks > (len - BLOB_FIXED - 8) / NAME_HEX || file_len != len - head - 8)
        return sem_err_set(err, SEM_ECORRUPT, "remote index of agent '%s': %u chunks and a "
                           "file of %llu bytes do not fit its %zu bytes", key, v->n_chunks,
                           (unsigned long long)file_len, len);
    if (get64(b + head) != XXH64(b, head, 0))
        return sem_err_set(err, SEM_ECORRUPT, "remote index of agent '%s': header checksum "
                           "mismatch at offset %zu", key, head);
    v->chunk_bytes = get64(b + 32);
    v->saved_ms = get64(b + 40);
    v->names = b + BLOB_FIXED;
    v->file = b + head + 8;
    v->file_len = (size_t)file_len;
    return SEM_OK;
}

/* ------------------------------------------------------------ writes */

/* Exports key from the disk and puts it in the remote tier. */
static void write_one(tiered_store *t, const char *key)
{
    sem_err err = {0};
    disk_store_agent a;
    sem_status st = disk_store_export(t->disk, key, &a, &err);
    if (st == SEM_ENOTFOUND)
        return; /* removed since it was queued */
    if (st != SEM_OK) {
        logf_(t, "remote write of agent '%s' skipped: %s", key, sem_err_text(&err));
        return;
    }
    char space[SPACE_CAP];
    space_of(&a.header, key, space);
    size_t len = 0;
    uint8_t *index = blob_encode(&a, &len);
    remote_blob *chunks = a.n_chunks ? malloc(a.n_chunks * sizeof *chunks) : NULL;
    if (index && (chunks || !a.n_chunks)) {
        for (uint32_t i = 0; i < a.n_chunks; i++)
            chunks[i] = (remote_blob){a.chunks[i].name, a.chunks[i].data, a.chunks[i].len};
        t->remote.ops->put_agent(t->remote.self, space, key, index, len, chunks, a.n_chunks,
                                 &err); /* failures are counted by the tier */
    } else {
        logf_(t, "remote write of agent '%s' skipped: out of memory", key);
    }
    free(chunks);
    free(index);
    disk_store_agent_free(&a);
}

/* Takes the next key to write (NULL: stop), dropping and counting what
 * is left once stopped past the drain deadline. With the lock held. */
static char *next_key(tiered_store *t)
{
    while (t->n == 0 && !t->stop)
        pthread_cond_wait(&t->wake, &t->lock);
    if (t->n && t->stop && deadline_now_ms() > t->drain_deadline) {
        t->dropped += t->n;
        for (; t->n; t->n--, t->head = (t->head + 1) % t->max_queue)
            free(t->queue[t->head]);
    }
    if (t->n == 0)
        return NULL;
    char *key = t->queue[t->head];
    t->head = (t->head + 1) % t->max_queue;
    t->n--;
    return key;
}

static void *writer_main(void *arg)
{
    tiered_store *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        char *key = next_key(t);
        if (!key)
            break;
        t->inflight = key;
        t->inflight_removed = 0;
        pthread_mutex_unlock(&t->lock);
        write_one(t, key);
        pthread_mutex_lock(&t->lock);
        int removed = t->inflight_removed;
        t->inflight = NULL;
        if (removed) {
            pthread_mutex_unlock(&t->lock);
            char space[SPACE_CAP];
            if (reader_space(t, key, space))
                t->remote.ops->remove_agent(t->remote.self, space, key, NULL);
            pthread_mutex_lock(&t->lock);
        }
        free(key);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Queues key's remote write (once); the oldest is dropped when full. */
static void enqueue(tiered_store *t, const char *key)
{
    char *copy = strdup(key);
    if (!copy) {
        logf_(t, "remote write of agent '%s' dropped: out of memory", key);
        return;
    }
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->queue[(t->head + i) % t->max_queue], key) == 0) {
            pthread_mutex_unlock(&t->lock); /* its write will read the latest file */
            free(copy);
            return;
        }
    if (t->n == t->max_queue) {
        free(t->queue[t->head]);
        t->head = (t->head + 1) % t->max_queue;
        t->n--;
        t->dropped++;
    }
    t->queue[(t->head + t->n) % t->max_queue] = copy;
    t->n++;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
}

/* Forgets key's queued write; marks a write in flight as removed. */
static void unqueue(tiered_store *t, const char *key)
{
    pthread_mutex_lock(&t->lock);
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        char *k = t->queue[(t->head + i) % t->max_queue];
        if (strcmp(k, key) == 0)
            free(k);
        else
            t->queue[(t->head + kept++) % t->max_queue] = k;
    }
    t->n = kept;
    if (t->inflight && strcmp(t->inflight, key) == 0)
        t->inflight_removed = 1;
    pthread_mutex_unlock(&t->lock);
}

/* ------------------------------------------------------------ reads */

/* The chunks named by v, fetched into a (a->chunks allocated). */
static sem_status fetch_chunks(tiered_store *t, const char *space, const char *key,
                               const blob_view *v, disk_store_agent *a, sem_err *err)
{
    if (v->n_chunks && !(a->chunks = calloc(v->n_chunks, sizeof *a->chunks)))
        return sem_err_set(err, SEM_ENOMEM, "agent '%s': out of memory for %u chunks", key,
                           v->n_chunks);
    for (uint32_t i = 0; i < v->n_chunks; i++) {
        disk_store_chunk *c = &a->chunks[i];
        memcpy(c->name, v->names + (size_t)NAME_HEX * i, NAME_HEX);
        c->name[NAME_HEX] = '\0';
        a->n_chunks = i + 1;
        sem_status st = t->remote.ops->get_chunk(t->remote.self, space, c->name, &c->data,
                                                 &c->len, err);
        if (st != SEM_OK)
            return st;
    }
    return SEM_OK;
}

/* After a copy failed verification: drop the blob to blame remotely. */
static void blame(tiered_store *t, const char *space, const char *key, const char *chunk)
{
    t->remote.ops->report_corrupt(t->remote.self, space, chunk ? chunk : key);
}

/* A memory file holding bytes, for the codec, which reads file descriptors:
 * -1 with err on failure. */
static int mem_file(const uint8_t *data, size_t len, const char *what, sem_err *err)
{
    int fd = memfd_create("semantic-remote", MFD_CLOEXEC);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            fd = -1;
            break;
        }
        done += (size_t)n;
    }
    if (fd < 0)
        sem_err_set(err, SEM_EIO, "%s: cannot hold %zu bytes in memory: %s", what, len,
                    strerror(errno));
    return fd;
}

/* The codec's chunk source over fetched chunks (kv_chunk_source). */
static sem_status open_fetched(void *ctx, const kv_chunk_name *name, int *fd, char *path,
                               size_t cap, sem_err *err)
{
    const disk_store_agent *a = ctx;
    char hex[KV_CHUNK_HEX_BYTES];
    kv_chunk_hex(name, hex);
    snprintf(path, cap, "remote chunk %s", hex);
    for (uint32_t i = 0; i < a->n_chunks; i++) {
        if (strcmp(a->chunks[i].name, hex) != 0)
            continue;
        *fd = mem_file(a->chunks[i].data, a->chunks[i].len, path, err);
        return *fd >= 0 ? SEM_OK : SEM_EIO;
    }
    return sem_err_set(err, SEM_ENOTFOUND, "%s is missing", path);
}

/*
 * Fetches key from the remote tier and reads it into a table of pool
 * straight from the fetched bytes, verified by the codec exactly as a file
 * on disk is. Nothing is written here: the engine writes the agent to this
 * node's disk behind its request, as it writes any agent, so the disk
 * write is off the request's path.
 */
static sem_status fetch_read(tiered_store *t, const char *space, const char *key,
                             block_pool *pool, block_table **out, sem_err *err)
{
    uint8_t *index = NULL;
    size_t len = 0;
    sem_status st = t->remote.ops->get_agent(t->remote.self, space, key, &index, &len, err);
    if (st != SEM_OK)
        return st;
    blob_view v;
    st = blob_decode(index, len, key, &v, err);
    if (st != SEM_OK) {
        blame(t, space, key, NULL);
        free(index);
        return st;
    }
    disk_store_agent a;
    memset(&a, 0, sizeof a);
    st = fetch_chunks(t, space, key, &v, &a, err);
    int fd = st == SEM_OK ? mem_file(v.file, v.file_len, key, err) : -1;
    if (fd >= 0) {
        char ns[WARM_KEY_MAX + 1];
        size_t n = kv_chunk_ns_len(key);
        memcpy(ns, key, n);
        ns[n] = '\0';
        kv_chunk_source src = {.ctx = &a, .open = open_fetched};
        kv_read_fault fault = {0};
        char path[WARM_KEY_MAX + 32];
        snprintf(path, sizeof path, "remote agent %s", key);
        st = kv_file_read_from(fd, path, t->fingerprint, ns, &src, pool, key, out, NULL, &fault,
                               err);
        close(fd);
        if (st == SEM_ECORRUPT || st == SEM_EINCOMPAT) {
            char hex[KV_CHUNK_HEX_BYTES];
            kv_chunk_hex(&fault.name, hex);
            blame(t, space, key, fault.in_chunk ? hex : NULL);
            st = SEM_ECORRUPT;
        }
    } else if (st == SEM_OK) {
        st = SEM_EIO;
    }
    disk_store_agent_free(&a);
    free(index);
    return st;
}

static sem_status ts_load(void *self, const char *key, block_pool *pool, block_table **out,
                          sem_err *err)
{
    tiered_store *t = self;
    sem_status st = t->dport.ops->load(t->dport.self, key, pool, out, err);
    if (st != SEM_ENOTFOUND || !t->remote.ops || !pool)
        return st;
    learn_spec(t, block_pool_spec(pool));
    char space[SPACE_CAP];
    if (!reader_space(t, key, space))
        return st;
    sem_err rerr = {0};
    sem_status rst = fetch_read(t, space, key, pool, out, &rerr);
    if (rst == SEM_OK)
        return SEM_OK;
    if (rst == SEM_ECORRUPT) {
        if (err)
            *err = rerr;
        return SEM_ECORRUPT;
    }
    /* not there, or the tier failed: a miss, as the disk said */
    return rst == SEM_ENOTFOUND ? st
                                : sem_err_set(err, SEM_ENOTFOUND, "agent '%s' has no saved "
                                              "memory here; the remote tier: %s", key,
                                              rerr.detail);
}

static sem_status ts_get(void *self, const char *key, warm_info *out, sem_err *err)
{
    tiered_store *t = self;
    sem_status st = t->dport.ops->get(t->dport.self, key, out, err);
    char space[SPACE_CAP];
    if (st != SEM_ENOTFOUND || !t->remote.ops || !reader_space(t, key, space))
        return st;
    uint8_t *index = NULL;
    size_t len = 0;
    sem_err rerr = {0};
    if (t->remote.ops->get_agent(t->remote.self, space, key, &index, &len, &rerr) != SEM_OK)
        return st;
    blob_view v;
    if (blob_decode(index, len, key, &v, &rerr) != SEM_OK) {
        free(index);
        return st;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", key);
    out->tokens = v.n_tokens;
    out->bytes = v.file_len + v.chunk_bytes;
    out->created_ms = out->last_use_ms = (int64_t)v.saved_ms;
    out->remote = 1;
    free(index);
    if (err)
        sem_err_clear(err);
    return SEM_OK;
}

/* ------------------------------------------------------------ the rest of the port */

static sem_status ts_save(void *self, const char *key, const block_table *tb,
                          const atomic_int *stop, sem_err *err)
{
    tiered_store *t = self;
    sem_status st = t->dport.ops->save(t->dport.self, key, tb, stop, err);
    if (st == SEM_OK && t->remote.ops) {
        learn_spec(t, block_pool_spec(block_table_pool(tb)));
        enqueue(t, key);
    }
    return st;
}

static sem_status ts_remove(void *self, const char *key, sem_err *err)
{
    tiered_store *t = self;
    sem_status st = t->dport.ops->remove(t->dport.self, key, err);
    char space[SPACE_CAP];
    if (!t->remote.ops || (st != SEM_OK && st != SEM_ENOTFOUND) || !reader_space(t, key, space))
        return st;
    unqueue(t, key);
    sem_err rerr = {0};
    sem_status rst = t->remote.ops->remove_agent(t->remote.self, space, key, &rerr);
    if (rst != SEM_OK && rst != SEM_ENOTFOUND)
        logf_(t, "agent '%s' removed here, not from the remote tier: %s", key, rerr.detail);
    if (st == SEM_ENOTFOUND && rst == SEM_OK) {
        if (err)
            sem_err_clear(err);
        return SEM_OK;
    }
    return st;
}

static sem_status ts_load_prefix(void *self, const char *ns, const int32_t *tokens, uint32_t n,
                                 block_pool *pool, const char *name, block_table **out,
                                 sem_err *err)
{
    tiered_store *t = self;
    return t->dport.ops->load_prefix(t->dport.self, ns, tokens, n, pool, name, out, err);
}

static sem_status ts_peek(void *self, const char *key, int32_t **tokens, uint32_t *n,
                          sem_err *err)
{
    tiered_store *t = self;
    return t->dport.ops->peek(t->dport.self, key, tokens, n, err);
}

static sem_status ts_list(void *self, const char *prefix, warm_info **out, size_t *n,
                          sem_err *err)
{
    tiered_store *t = self;
    return t->dport.ops->list(t->dport.self, prefix, out, n, err);
}

static sem_status ts_touch(void *self, const char *key, uint32_t saved, sem_err *err)
{
    tiered_store *t = self;
    return t->dport.ops->touch(t->dport.self, key, saved, err);
}

static uint64_t ts_disk_bytes(void *self)
{
    tiered_store *t = self;
    return t->dport.ops->disk_bytes(t->dport.self);
}

static const warm_store_ops TIERED_STORE_OPS = {
    .save = ts_save,
    .load = ts_load,
    .load_prefix = ts_load_prefix,
    .peek = ts_peek,
    .remove = ts_remove,
    .list = ts_list,
    .get = ts_get,
    .touch = ts_touch,
    .disk_bytes = ts_disk_bytes,
};

/* ------------------------------------------------------------ lifetime */

tiered_store *tiered_store_open(const tiered_store_opts *o, sem_err *err)
{
    if (!o || !o->disk)
        return sem_err_set(err, SEM_EINVAL, "tiered store: no disk store"), NULL;
    tiered_store *t = calloc(1, sizeof *t);
    if (!t)
        return sem_err_set(err, SEM_ENOMEM, "tiered store: out of memory"), NULL;
    t->disk = o->disk;
    t->dport = disk_store_port(o->disk);
    t->remote = o->remote;
    t->fingerprint = o->fingerprint;
    t->max_queue = o->max_queue ? o->max_queue : DEFAULT_QUEUE;
    t->log = o->log;
    t->log_ctx = o->log_ctx;
    if (o->spec) {
        t->spec = *o->spec;
        t->have_spec = 1;
    }
    t->queue = calloc(t->max_queue, sizeof *t->queue);
    if (!t->queue || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->queue);
        free(t);
        return sem_err_set(err, SEM_ENOMEM, "tiered store: out of memory"), NULL;
    }
    pthread_cond_init(&t->wake, NULL);
    if (t->remote.ops) {
        int e = pthread_create(&t->writer, NULL, writer_main, t);
        if (e) {
            tiered_store_close(t, 0);
            return sem_err_set(err, SEM_EIO, "tiered store: cannot start its writer thread: %s",
                               strerror(e)), NULL;
        }
        t->has_writer = 1;
    }
    return t;
}

void tiered_store_close(tiered_store *t, uint32_t drain_ms)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = 1;
    t->drain_deadline = deadline_now_ms() + drain_ms;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    if (t->has_writer)
        pthread_join(t->writer, NULL);
    for (; t->n; t->n--, t->head = (t->head + 1) % t->max_queue)
        free(t->queue[t->head]);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t->queue);
    free(t);
}

warm_store tiered_store_port(tiered_store *t)
{
    return (warm_store){.ops = &TIERED_STORE_OPS, .self = t};
}

void tiered_store_stats(tiered_store *t, remote_stats *out, uint32_t *queued)
{
    memset(out, 0, sizeof *out);
    if (t->remote.ops)
        t->remote.ops->stats(t->remote.self, out);
    else
        out->state = REMOTE_OFF;
    pthread_mutex_lock(&t->lock);
    out->dropped = t->dropped;
    if (queued)
        *queued = (uint32_t)t->n;
    pthread_mutex_unlock(&t->lock);
}
