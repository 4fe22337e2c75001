/*
 * redis_scripts.c - the Lua of redis_scripts.h. Redis caches a script by
 * its SHA1 after the first EVAL; the text is a few hundred bytes, so the
 * tier sends it with every call rather than tracking EVALSHA misses.
 *
 * forget() is the one place where an agent leaves the tier: its index,
 * its LRU entry and its row go, each chunk it names loses a reference,
 * and a chunk at zero references is deleted with its size subtracted.
 * A chunk deleted by hand (or by report_corrupt) keeps its accounting
 * until its last reference goes, so the byte count never drifts.
 */
#include "redis_scripts.h"

#define PRELUDE                                                                        \
    "local lru, agents, refs, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n" \
    "local function forget(key)\n"                                                     \
    "  local meta = redis.call('HGET', agents, key)\n"                                 \
    "  local was = redis.call('DEL', key)\n"                                           \
    "  redis.call('ZREM', lru, key)\n"                                                 \
    "  if not meta then return was end\n"                                              \
    "  redis.call('HDEL', agents, key)\n"                                              \
    "  local freed, first = 0, true\n"                                                 \
    "  for w in string.gmatch(meta, '%S+') do\n"                                       \
    "    if first then freed = freed + tonumber(w); first = false\n"                   \
    "    elseif redis.call('HINCRBY', refs, w, -1) <= 0 then\n"                        \
    "      freed = freed + tonumber(redis.call('HGET', sizes, w) or '0')\n"            \
    "      redis.call('HDEL', refs, w); redis.call('HDEL', sizes, w)\n"                \
    "      redis.call('DEL', w)\n"                                                     \
    "    end\n"                                                                        \
    "  end\n"                                                                          \
    "  redis.call('DECRBY', total, freed)\n"                                           \
    "  return 1\n"                                                                     \
    "end\n"

const char REDIS_SCRIPT_COMMIT[] =
    PRELUDE
    "local key, blob = ARGV[1], ARGV[2]\n"
    "local now, budget, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "for i = 6, #ARGV do\n"
    "  if redis.call('EXISTS', ARGV[i]) == 0 then\n"
    "    return redis.error_reply('SEMMISSING ' .. ARGV[i])\n"
    "  end\n"
    "end\n"
    /* The new version's references first: chunks it shares with the old stay. */
    "local added, words = #blob, {tostring(#blob)}\n"
    "for i = 6, #ARGV do\n"
    "  local c = ARGV[i]\n"
    "  if redis.call('HINCRBY', refs, c, 1) == 1 then\n"
    "    local n = redis.call('STRLEN', c)\n"
    "    redis.call('HSET', sizes, c, n)\n"
    "    added = added + n\n"
    "  end\n"
    "  if ttl > 0 then redis.call('EXPIRE', c, ttl) else redis.call('PERSIST', c) end\n"
    "  words[#words + 1] = c\n"
    "end\n"
    "forget(key)\n"
    "if ttl > 0 then redis.call('SET', key, blob, 'EX', ttl) else redis.call('SET', key, blob) end\n"
    "redis.call('HSET', agents, key, table.concat(words, ' '))\n"
    "redis.call('ZADD', lru, now, key)\n"
    "redis.call('INCRBY', total, added)\n"
    /* Oldest first: agents whose index expired, then, over the budget, any. */
    "local evicted = 0\n"
    "while true do\n"
    "  local v = redis.call('ZRANGE', lru, 0, 0)\n"
    "  if #v == 0 or v[1] == key then break end\n"
    "  local live = redis.call('EXISTS', v[1]) == 1\n"
    "  local held = tonumber(redis.call('GET', total) or '0')\n"
    "  if live and (budget == 0 or held <= budget) then break end\n"
    "  forget(v[1])\n"
    "  if live then evicted = evicted + 1 end\n"
    "end\n"
    "return {tonumber(redis.call('GET', total) or '0'), evicted}\n";

const char REDIS_SCRIPT_GET[] =
    PRELUDE
    "local key, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local b = redis.call('GET', key)\n"
    "if not b then return false end\n"
    "redis.call('ZADD', lru, 'XX', now, key)\n"
    "if ttl > 0 then redis.call('EXPIRE', key, ttl) end\n"
    "return b\n";

const char REDIS_SCRIPT_FORGET[] =
    PRELUDE
    "return forget(ARGV[1])\n";
