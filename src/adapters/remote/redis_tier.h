/*
 * redis_tier.h - the remote tier (ports/remote_tier.h) on Redis or Valkey,
 * over TCP or TLS (redis_conn.h).
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   (port 6379, db 0)
 *   rediss://...[?cacert=PATH&cert=PATH&key=PATH&insecure=1]   (TLS; redis_url.h)
 *
 * The password may also come from the URL given in SEMANTIC_CACHE_REMOTE
 * (the caller chooses). Timeouts bound every command (and the TLS
 * handshake); after a failure the tier backs off (doubling, up to a
 * limit) and answers SEM_EBUSY at once meanwhile, so requests never wait
 * on a dead Redis. A TLS server that fails verification is a failure like
 * any other: the tier stays down and logs why.
 *
 * Writes never raise SIGPIPE (send with MSG_NOSIGNAL, also under TLS): a
 * write to a connection Redis has closed fails with EPIPE and is counted.
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

/* Parses the URL, reads its TLS certificates and connects (a failed
 * first connection, TLS verification included, is not an error: the tier
 * starts DOWN and retries). SEM_EINVAL for a bad URL or a certificate or
 * key file that cannot be used (named in err). With insecure=1 it logs a
 * warning. The caller owns the tier and closes it after every user of its
 * port is done. */
redis_tier *redis_tier_open(const redis_tier_opts *o, sem_err *err);
void redis_tier_close(redis_tier *r);
remote_tier redis_tier_port(redis_tier *r);

#endif
