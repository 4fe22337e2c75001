/*
 * tiered_store.h - the warm store as a composition of tiers: this node's
 * disk (disk_store) and, under it, a remote tier shared by several servers
 * (ports/remote_tier.h). The engine sees one warm_store; the tier policy
 * lives here and nowhere else:
 *
 *   save     to disk, then (behind it, on the store's writer thread) the
 *            agent's file and its shared chunks to the remote tier;
 *   load     from disk; on a miss, from the remote tier: the blobs are
 *            written into the disk store (verified by the file codec) and
 *            loaded from there, so what is served was always checked;
 *   get      disk, else the remote tier (warm_info.remote);
 *   remove   both tiers;
 *   list, disk_bytes, load_prefix, peek, touch: the disk's.
 *
 * A remote tier that is down, slow or full never fails an operation that
 * the disk can serve: its failures are counted (tiered_store_stats) and
 * the tier backs off; a remote write that fails is not retried (the
 * agent's next save writes it). A remote copy that fails verification is
 * reported to the tier (dropped there) and the load is a miss
 * (SEM_ECORRUPT). docs/remote-tier.md has the layout and the policy.
 *
 * Threads: every port operation may be called from any thread (load and
 * get of an agent held only remotely do network and disk I/O on the
 * caller's thread); remote writes run on the store's own writer thread.
 * The caller owns the store; the disk store and the remote tier outlive it.
 */
#ifndef SEM_TIERED_STORE_H
#define SEM_TIERED_STORE_H

#include "disk_store.h"
#include "ports/remote_tier.h"
#include "ports/warm_store.h"

typedef struct tiered_store tiered_store;

typedef struct tiered_store_opts {
    disk_store *disk;       /* borrowed; outlives the tiered store */
    remote_tier remote;     /* ops NULL: no remote tier (a plain disk store) */
    uint64_t fingerprint;   /* the model's, part of every remote name */
    /* The pool's KV geometry, part of every remote name with the payload
     * type the disk writes. NULL: learned from the first table saved or
     * pool loaded into; until then get() and remove() see the disk only. */
    const cache_spec *spec;
    uint32_t max_queue;     /* remote writes waiting; beyond it the oldest is dropped (0: 64) */
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
} tiered_store_opts;

/* The tiered store over o->disk (and o->remote). SEM_EINVAL without a
 * disk, SEM_ENOMEM, SEM_EIO when the writer thread cannot start. */
tiered_store *tiered_store_open(const tiered_store_opts *o, sem_err *err);
/* Finishes queued remote writes for up to drain_ms (the rest are dropped
 * and counted), stops the writer thread, then frees. */
void tiered_store_close(tiered_store *t, uint32_t drain_ms);
warm_store tiered_store_port(tiered_store *t);
/* The remote tier's state and counters (dropped: the writes this store
 * dropped), plus the writes still queued. */
void tiered_store_stats(tiered_store *t, remote_stats *out, uint32_t *queued);

#endif
