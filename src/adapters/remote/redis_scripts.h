/*
 * redis_scripts.h - the Lua scripts the Redis tier runs with EVAL, so that
 * several servers updating one Redis keep its bookkeeping consistent: each
 * script runs atomically in Redis (docs/remote-tier.md, "Key layout").
 *
 * Every script takes the same five KEYS, the tier's bookkeeping:
 *   KEYS[1] <prefix>lru     ZSET  index key -> last use (unix ms)
 *   KEYS[2] <prefix>agents  HASH  index key -> "<index bytes> <chunk key>..."
 *   KEYS[3] <prefix>refs    HASH  chunk key -> agents naming it
 *   KEYS[4] <prefix>sizes   HASH  chunk key -> its bytes
 *   KEYS[5] <prefix>bytes   STRING bytes of every index and chunk counted
 *
 * REDIS_SCRIPT_COMMIT  ARGV: index key, index blob, now ms, budget bytes,
 *   ttl s, chunk keys... Fails with "SEMMISSING <key>" when a chunk is
 *   absent (nothing changed); else stores the index, counts references,
 *   releases the previous version's, drops agents whose index expired
 *   and, over the budget, the least recently used agents (and the chunks
 *   nobody names any more). Returns {bytes, evicted}.
 * REDIS_SCRIPT_GET     ARGV: index key, now ms, ttl s. The index blob (nil
 *   when absent); refreshes its LRU score and TTL.
 * REDIS_SCRIPT_FORGET  ARGV: index key. Drops the agent and releases its
 *   chunks; returns 1 when it was there, else 0.
 *
 * Threads: constant strings.
 */
#ifndef SEM_REDIS_SCRIPTS_H
#define SEM_REDIS_SCRIPTS_H

extern const char REDIS_SCRIPT_COMMIT[];
extern const char REDIS_SCRIPT_GET[];
extern const char REDIS_SCRIPT_FORGET[];

#endif
