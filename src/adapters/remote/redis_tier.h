/*
 * redis_tier.h - the remote tier (ports/remote_tier.h) on Redis or Valkey,
 * through hiredis.
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   (port 6379, db 0)
 *
 * The password may also come from the URL given in SEMANTIC_CACHE_REMOTE
 * (the caller chooses). Timeouts bound every command; after a failure the
 * tier backs off (doubling, up to a limit) and answers SEM_EBUSY at once
 * meanwhile, so requests never wait on a dead Redis.
 *
 * hiredis writes with write(): a write to a connection Redis has closed
 * raises SIGPIPE, so the process must ignore it (semantic serve does, at
 * start); the write then fails with EPIPE and is counted like any other.
 */
#ifndef SEM_REDIS_TIER_H
#define SEM_REDIS_TIER_H

#include <stdint.h>

#include "domain/status.h"
#include "ports/remote_tier.h"

typedef struct redis_tier redis_tier;

typedef struct redis_tier_opts {
    const char *url;
    uint64_t budget_bytes;  /* bytes of agents and chunks kept; LRU by agent beyond it (0: no budget) */
    uint32_t ttl_s;         /* keys expire this long after their last write or read (0: never) */
    uint32_t timeout_ms;    /* per command (0: 500) */
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
} redis_tier_opts;

/* Parses the URL and connects (a failed first connection is not an
 * error: the tier starts DOWN and retries). SEM_EINVAL for a bad URL,
 * SEM_EUNSUPPORTED for rediss:// (this hiredis has no TLS). The caller
 * owns the tier and closes it after every user of its port is done. */
redis_tier *redis_tier_open(const redis_tier_opts *o, sem_err *err);
void redis_tier_close(redis_tier *r);
remote_tier redis_tier_port(redis_tier *r);

#endif
