/*
 * block_pool.c - arena, free stack and owner accounting.
 *
 * Bookkeeping, all guarded by pool->lock:
 *   free_stack[0..n_free)  indices of free blocks (pop to allocate)
 *   refs[block]            references held: 0 free, 1 one holder, more shared
 *   owner_of[block]        the one holder while the block has never been
 *                          shared since it was allocated; SHARED once it
 *                          has been (holders are then counted, not named);
 *                          BLOCK_OWNER_NONE when free
 *   mark[block]            scratch of free/transfer: "listed in this call"
 *   slots[]                registered owners: generation, references held, name
 *
 * A block's life:
 *
 *              alloc                 share                share
 *   FREE ───────────────▶ HELD(1) ──────────▶ SHARED(2) ──────────▶ SHARED(k+1)
 *    ▲                      │                   │  ◀──────────────────  │
 *    │      free (last)     │                   │      free (k > 1)     │
 *    └──────────────────────┴───────────────────┘
 *
 * A SHARED block that drops back to one reference stays SHARED (its holder
 * is not named); it returns to FREE when its last reference goes.
 *
 * An owner handle is (generation << SLOT_BITS) | (slot + 1). Removing an
 * owner bumps the slot's generation, so an old handle no longer matches.
 */
#include "block_pool.h"
#include "base/sem_mutex.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLOT_BITS 20u
#define SLOT_MASK ((1u << SLOT_BITS) - 1u)
#define MAX_SLOTS (SLOT_MASK - 1u) /* keeps SHARED out of the handle space */
#define GEN_MASK ((1u << (32u - SLOT_BITS)) - 1u)
#define SHARED 0xFFFFFFFFu         /* owner_of of a block that has been shared */
#define REFS_MAX UINT16_MAX
#define ARENA_ALIGN 64u
#define OWNER_NAME_MAX 48

typedef struct owner_slot {
    uint32_t gen;    /* 1.. GEN_MASK, bumped on removal */
    uint32_t blocks; /* blocks held */
    int live;
    char name[OWNER_NAME_MAX];
} owner_slot;

struct block_pool {
    cache_spec spec;
    size_t block_bytes; /* stride between blocks, a multiple of ARENA_ALIGN */
    uint32_t total;
    uint8_t *arena; /* [total][block_bytes] */

    sem_mutex lock; /* guards everything below */
    uint32_t *free_stack; /* [total] */
    uint32_t n_free;
    block_owner *owner_of; /* [total] */
    uint16_t *refs;        /* [total] */
    uint8_t *mark;         /* [total], all 0 between calls */
    uint32_t n_shared;     /* blocks with refs > 1 */
    owner_slot *slots;
    uint32_t n_slots, cap_slots;
    uint32_t *free_slots; /* [cap_slots] reusable slot indices */
    uint32_t n_free_slots;
    uint32_t n_owners;
};

/* ---------------------------------------------------------------- owners */

static block_owner handle_of(uint32_t slot, uint32_t gen)
{
    return (gen << SLOT_BITS) | (slot + 1u);
}

/* Slot of a live owner handle, or NULL. Caller holds the lock. */
static owner_slot *slot_of(block_pool *pool, block_owner owner)
{
    SEM_MUTEX_ASSERT_HELD(&pool->lock);
    uint32_t s = owner & SLOT_MASK;
    if (s == 0 || s > pool->n_slots)
        return NULL;
    owner_slot *os = &pool->slots[s - 1];
    if (!os->live || os->gen != owner >> SLOT_BITS)
        return NULL;
    return os;
}

static const char *owner_name(block_pool *pool, block_owner owner)
{
    owner_slot *os = slot_of(pool, owner);
    return os && os->name[0] ? os->name : "?";
}

sem_status block_pool_owner_add(block_pool *pool, const char *name, block_owner *out, sem_err *err)
{
    if (!pool || !out)
        return sem_err_set(err, SEM_EINVAL, "block_pool_owner_add: NULL argument");
    sem_mutex_lock(&pool->lock);
    uint32_t s;
    if (pool->n_free_slots > 0) {
        s = pool->free_slots[--pool->n_free_slots];
    } else {
        if (pool->n_slots == pool->cap_slots) {
            if (pool->cap_slots >= MAX_SLOTS) {
                sem_mutex_unlock(&pool->lock);
                return sem_err_set(err, SEM_EPOOL, "block pool: owner table is full (%u owners)",
                                   pool->n_owners);
            }
            uint32_t cap = pool->cap_slots ? pool->cap_slots * 2 : 16;
            if (cap > MAX_SLOTS)
                cap = MAX_SLOTS;
            owner_slot *slots = realloc(pool->slots, cap * sizeof *slots);
            if (slots)
                pool->slots = slots;
            uint32_t *fs = slots ? realloc(pool->free_slots, cap * sizeof *fs) : NULL;
            if (!fs) {
                sem_mutex_unlock(&pool->lock);
                return sem_err_set(err, SEM_ENOMEM, "block pool: cannot grow owner table to %u",
                                   cap);
            }
            pool->free_slots = fs;
            pool->cap_slots = cap;
        }
        s = pool->n_slots++;
        pool->slots[s].gen = 1;
    }
    owner_slot *os = &pool->slots[s];
    os->live = 1;
    os->blocks = 0;
    snprintf(os->name, sizeof os->name, "%s", name ? name : "");
    pool->n_owners++;
    *out = handle_of(s, os->gen);
    sem_mutex_unlock(&pool->lock);
    return SEM_OK;
}

sem_status block_pool_owner_remove(block_pool *pool, block_owner owner, sem_err *err)
{
    if (!pool)
        return sem_err_set(err, SEM_EINVAL, "block_pool_owner_remove: NULL pool");
    sem_mutex_lock(&pool->lock);
    owner_slot *os = slot_of(pool, owner);
    sem_status st = SEM_OK;
    if (!os) {
        st = sem_err_set(err, SEM_EINVAL, "block pool: unknown owner handle 0x%08x", owner);
    } else if (os->blocks > 0) {
        st = sem_err_set(err, SEM_EINVAL, "block pool: owner '%s' still holds %u blocks",
                         os->name, os->blocks);
    } else {
        os->live = 0;
        os->gen = (os->gen % GEN_MASK) + 1; /* 1..GEN_MASK, never 0 */
        pool->free_slots[pool->n_free_slots++] = (owner & SLOT_MASK) - 1;
        pool->n_owners--;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

/* ---------------------------------------------------------------- life */

/*
 * The arena: aligned to 2 MiB, asked for in transparent huge pages (where
 * the kernel leaves them to madvise) and touched once here, so the pool's
 * RAM is committed at start and no request pays for first-touch page
 * faults. Left untouched, the first load of a 4096-token 1B-shape agent
 * after a restart spent as long faulting in its 134 MB (4 KiB pages) as
 * reading and converting its file, and huge pages faulted on demand made
 * small loads erratic (synchronous compaction).
 */
#define ARENA_HUGE (2u << 20)

static void *arena_alloc(size_t bytes)
{
    size_t len = (bytes + ARENA_HUGE - 1) / ARENA_HUGE * ARENA_HUGE;
    void *p = aligned_alloc(ARENA_HUGE, len);
    if (p) {
        madvise(p, len, MADV_HUGEPAGE); /* a hint: failure changes nothing */
        memset(p, 0, len);
    }
    return p;
}

block_pool *block_pool_create(const cache_spec *spec, size_t budget_bytes, sem_err *err)
{
    if (cache_spec_validate(spec, err) != SEM_OK)
        return NULL;
    size_t raw = cache_spec_block_bytes(spec);
    size_t stride = (raw + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    size_t n = budget_bytes / stride;
    if (n == 0) {
        sem_err_set(err, SEM_EINVAL,
                    "block pool: budget of %zu bytes holds no block (one block is %zu bytes)",
                    budget_bytes, stride);
        return NULL;
    }
    if (n > UINT32_MAX - 1)
        n = UINT32_MAX - 1;

    block_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        sem_err_set(err, SEM_ENOMEM, "block pool: out of memory");
        return NULL;
    }
    pool->spec = *spec;
    pool->block_bytes = stride;
    pool->total = (uint32_t)n;
    pool->arena = arena_alloc(n * stride);
    pool->free_stack = malloc(n * sizeof *pool->free_stack);
    pool->owner_of = calloc(n, sizeof *pool->owner_of);
    pool->refs = calloc(n, sizeof *pool->refs);
    pool->mark = calloc(n, 1);
    if (!pool->arena || !pool->free_stack || !pool->owner_of || !pool->refs || !pool->mark) {
        sem_err_set(err, SEM_ENOMEM, "block pool: cannot allocate %zu blocks of %zu bytes (%zu MiB)",
                    n, stride, n * stride >> 20);
        free(pool->arena);
        free(pool->free_stack);
        free(pool->owner_of);
        free(pool->refs);
        free(pool->mark);
        free(pool);
        return NULL;
    }
    /* Stack top is the lowest index, so a fresh pool hands out 0, 1, 2, ... */
    for (uint32_t i = 0; i < pool->total; i++)
        pool->free_stack[i] = pool->total - 1 - i;
    pool->n_free = pool->total;
    sem_mutex_init(&pool->lock);
    return pool;
}

void block_pool_destroy(block_pool *pool)
{
    if (!pool)
        return;
    sem_mutex_destroy(&pool->lock);
    free(pool->arena);
    free(pool->free_stack);
    free(pool->owner_of);
    free(pool->refs);
    free(pool->mark);
    free(pool->slots);
    free(pool->free_slots);
    free(pool);
}

/* ---------------------------------------------------------------- alloc/free */

sem_status block_pool_alloc(block_pool *pool, uint32_t n, block_owner owner, uint32_t *out,
                            sem_err *err)
{
    if (!pool || !out)
        return sem_err_set(err, SEM_EINVAL, "block_pool_alloc: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block pool: allocation of 0 blocks");
    sem_mutex_lock(&pool->lock);
    owner_slot *os = slot_of(pool, owner);
    sem_status st = SEM_OK;
    if (!os) {
        st = sem_err_set(err, SEM_EINVAL, "block pool: unknown owner handle 0x%08x", owner);
    } else if (n > pool->n_free) {
        st = sem_err_set(err, SEM_EPOOL,
                         "block pool exhausted: %u blocks needed for '%s', %u free of %u total "
                         "(%zu bytes each)",
                         n, os->name, pool->n_free, pool->total, pool->block_bytes);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t b = pool->free_stack[--pool->n_free];
            pool->owner_of[b] = owner;
            pool->refs[b] = 1;
            out[i] = b;
        }
        os->blocks += n;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

/* Clears the marks claim_blocks set on blocks[0..n). */
static void unmark(block_pool *pool, uint32_t n, const uint32_t *blocks)
{
    for (uint32_t i = 0; i < n; i++)
        if (blocks[i] < pool->total)
            pool->mark[blocks[i]] = 0;
}

/*
 * First pass of free/transfer: checks every block (in range, allocated,
 * held by owner as far as the pool can tell, not listed twice) and that
 * the owner holds at least n references; marks them, and unmarks all on
 * failure. Caller holds the lock; the caller unmarks after its second
 * pass.
 */
static sem_status claim_blocks(block_pool *pool, uint32_t n, const uint32_t *blocks,
                               block_owner owner, const owner_slot *os, sem_err *err)
{
    SEM_MUTEX_ASSERT_HELD(&pool->lock);
    sem_status st = SEM_OK;
    uint32_t i;
    for (i = 0; i < n; i++) {
        uint32_t b = blocks[i];
        if (b >= pool->total) {
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u out of range (%u blocks)", b,
                             pool->total);
            break;
        }
        block_owner cur = pool->owner_of[b];
        if (pool->mark[b])
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u listed twice", b);
        else if (pool->refs[b] == 0)
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u is already free (double free)",
                             b);
        else if (cur != owner && cur != SHARED)
            st = sem_err_set(err, SEM_EINVAL,
                             "block pool: block %u belongs to owner '%s', not to '%s'", b,
                             owner_name(pool, cur), owner_name(pool, owner));
        if (st != SEM_OK)
            break;
        pool->mark[b] = 1;
    }
    if (st == SEM_OK && os->blocks < n)
        st = sem_err_set(err, SEM_EINVAL, "block pool: owner '%s' holds %u references, not %u",
                         os->name, os->blocks, n);
    if (st != SEM_OK)
        unmark(pool, i < n ? i : n, blocks);
    return st;
}

sem_status block_pool_free(block_pool *pool, uint32_t n, const uint32_t *blocks,
                           block_owner owner, sem_err *err)
{
    if (!pool || (n && !blocks))
        return sem_err_set(err, SEM_EINVAL, "block_pool_free: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block pool: free of 0 blocks");
    sem_mutex_lock(&pool->lock);
    owner_slot *os = slot_of(pool, owner);
    sem_status st;
    if (!os)
        st = sem_err_set(err, SEM_EINVAL, "block pool: unknown owner handle 0x%08x", owner);
    else
        st = claim_blocks(pool, n, blocks, owner, os, err);
    if (st == SEM_OK) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t b = blocks[i];
            pool->mark[b] = 0;
            if (pool->refs[b] == 2)
                pool->n_shared--;
            if (--pool->refs[b] > 0)
                continue;
            pool->owner_of[b] = BLOCK_OWNER_NONE;
            pool->free_stack[pool->n_free++] = b;
        }
        os->blocks -= n;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

sem_status block_pool_transfer(block_pool *pool, uint32_t n, const uint32_t *blocks,
                               block_owner from, block_owner to, sem_err *err)
{
    if (!pool || (n && !blocks))
        return sem_err_set(err, SEM_EINVAL, "block_pool_transfer: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block pool: transfer of 0 blocks");
    sem_mutex_lock(&pool->lock);
    owner_slot *src = slot_of(pool, from);
    owner_slot *dst = slot_of(pool, to);
    sem_status st;
    if (!src || !dst)
        st = sem_err_set(err, SEM_EINVAL, "block pool: unknown owner handle 0x%08x",
                         src ? to : from);
    else
        st = claim_blocks(pool, n, blocks, from, src, err);
    if (st == SEM_OK) {
        for (uint32_t i = 0; i < n; i++) {
            pool->mark[blocks[i]] = 0;
            if (pool->owner_of[blocks[i]] == from)
                pool->owner_of[blocks[i]] = to;
        }
        src->blocks -= n;
        dst->blocks += n;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

sem_status block_pool_share(block_pool *pool, uint32_t n, const uint32_t *blocks,
                            block_owner owner, sem_err *err)
{
    if (!pool || (n && !blocks))
        return sem_err_set(err, SEM_EINVAL, "block_pool_share: NULL argument");
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL, "block pool: share of 0 blocks");
    sem_mutex_lock(&pool->lock);
    owner_slot *os = slot_of(pool, owner);
    sem_status st = SEM_OK;
    uint32_t i = 0;
    if (!os)
        st = sem_err_set(err, SEM_EINVAL, "block pool: unknown owner handle 0x%08x", owner);
    for (; st == SEM_OK && i < n; i++) {
        uint32_t b = blocks[i];
        if (b >= pool->total)
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u out of range (%u blocks)", b,
                             pool->total);
        else if (pool->mark[b])
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u listed twice", b);
        else if (pool->refs[b] == 0)
            st = sem_err_set(err, SEM_EINVAL, "block pool: block %u is free; only a held block "
                             "can be shared", b);
        else if (pool->owner_of[b] == owner)
            st = sem_err_set(err, SEM_EINVAL, "block pool: owner '%s' already holds block %u",
                             os->name, b);
        else if (pool->refs[b] == REFS_MAX)
            st = sem_err_set(err, SEM_EPOOL, "block pool: block %u has %u holders, the most "
                             "one block may have", b, (unsigned)REFS_MAX);
        else
            pool->mark[b] = 1;
    }
    if (st != SEM_OK) {
        unmark(pool, i ? i - 1 : 0, blocks);
    } else {
        for (i = 0; i < n; i++) {
            uint32_t b = blocks[i];
            pool->mark[b] = 0;
            if (++pool->refs[b] == 2)
                pool->n_shared++;
            pool->owner_of[b] = SHARED;
        }
        os->blocks += n;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

/* ---------------------------------------------------------------- queries */

uint8_t *block_pool_data(const block_pool *pool, uint32_t block)
{
    return pool->arena + (size_t)block * pool->block_bytes;
}

const cache_spec *block_pool_spec(const block_pool *pool) { return &pool->spec; }
size_t block_pool_block_bytes(const block_pool *pool) { return pool->block_bytes; }
uint32_t block_pool_total(const block_pool *pool) { return pool->total; }

uint32_t block_pool_free_count(block_pool *pool)
{
    sem_mutex_lock(&pool->lock);
    uint32_t n = pool->n_free;
    sem_mutex_unlock(&pool->lock);
    return n;
}

uint32_t block_pool_used(block_pool *pool)
{
    return pool->total - block_pool_free_count(pool);
}

block_owner block_pool_owner_of(block_pool *pool, uint32_t block)
{
    if (block >= pool->total)
        return BLOCK_OWNER_NONE;
    sem_mutex_lock(&pool->lock);
    block_owner o = pool->owner_of[block];
    sem_mutex_unlock(&pool->lock);
    return o == SHARED ? BLOCK_OWNER_SHARED : o;
}

uint32_t block_pool_refs(block_pool *pool, uint32_t block)
{
    if (block >= pool->total)
        return 0;
    sem_mutex_lock(&pool->lock);
    uint32_t r = pool->refs[block];
    sem_mutex_unlock(&pool->lock);
    return r;
}

uint32_t block_pool_shared_count(block_pool *pool)
{
    sem_mutex_lock(&pool->lock);
    uint32_t n = pool->n_shared;
    sem_mutex_unlock(&pool->lock);
    return n;
}

sem_status block_pool_usage_of(block_pool *pool, block_owner owner, block_pool_usage *out,
                               sem_err *err)
{
    sem_mutex_lock(&pool->lock);
    owner_slot *os = slot_of(pool, owner);
    sem_status st = SEM_OK;
    if (!os) {
        st = sem_err_set(err, SEM_ENOTFOUND, "block pool: unknown owner handle 0x%08x", owner);
    } else {
        out->blocks = os->blocks;
        out->bytes = (size_t)os->blocks * pool->block_bytes;
    }
    sem_mutex_unlock(&pool->lock);
    return st;
}

uint32_t block_pool_owner_count(block_pool *pool)
{
    sem_mutex_lock(&pool->lock);
    uint32_t n = pool->n_owners;
    sem_mutex_unlock(&pool->lock);
    return n;
}

static sem_status check_locked(block_pool *pool, sem_err *err)
{
    SEM_MUTEX_ASSERT_HELD(&pool->lock);
    uint32_t used = 0, shared = 0;
    uint64_t refs = 0;
    for (uint32_t b = 0; b < pool->total; b++) {
        block_owner o = pool->owner_of[b];
        if (pool->mark[b])
            return sem_err_set(err, SEM_EINTERNAL, "block pool: block %u left marked", b);
        if ((o == BLOCK_OWNER_NONE) != (pool->refs[b] == 0))
            return sem_err_set(err, SEM_EINTERNAL, "block pool: block %u has %u references "
                               "and owner 0x%08x", b, pool->refs[b], o);
        if (o == BLOCK_OWNER_NONE)
            continue;
        if (o != SHARED && (pool->refs[b] != 1 || !slot_of(pool, o)))
            return sem_err_set(err, SEM_EINTERNAL, "block pool: block %u held by dead owner 0x%08x",
                               b, o);
        used++;
        refs += pool->refs[b];
        shared += pool->refs[b] > 1;
    }
    if (shared != pool->n_shared)
        return sem_err_set(err, SEM_EINTERNAL, "block pool: %u shared blocks, %u counted", shared,
                           pool->n_shared);
    if (used + pool->n_free != pool->total)
        return sem_err_set(err, SEM_EINTERNAL,
                           "block pool: used %u + free %u != total %u", used, pool->n_free,
                           pool->total);
    uint8_t *seen = calloc(pool->total, 1);
    if (!seen)
        return sem_err_set(err, SEM_ENOMEM, "block pool check: out of memory");
    for (uint32_t i = 0; i < pool->n_free; i++) {
        uint32_t b = pool->free_stack[i];
        if (b >= pool->total || pool->owner_of[b] != BLOCK_OWNER_NONE || seen[b]) {
            free(seen);
            return sem_err_set(err, SEM_EINTERNAL, "block pool: free stack entry %u (block %u) "
                               "is not a free block, or is listed twice", i, b);
        }
        seen[b] = 1;
    }
    free(seen);
    uint64_t owned = 0;
    uint32_t live = 0;
    for (uint32_t s = 0; s < pool->n_slots; s++) {
        if (!pool->slots[s].live)
            continue;
        live++;
        owned += pool->slots[s].blocks;
    }
    if (owned != refs)
        return sem_err_set(err, SEM_EINTERNAL,
                           "block pool: owners account for %llu references, blocks have %llu",
                           (unsigned long long)owned, (unsigned long long)refs);
    if (live != pool->n_owners)
        return sem_err_set(err, SEM_EINTERNAL, "block pool: %u live slots, %u owners counted",
                           live, pool->n_owners);
    return SEM_OK;
}

sem_status block_pool_check(block_pool *pool, sem_err *err)
{
    sem_mutex_lock(&pool->lock);
    sem_status st = check_locked(pool, err);
    sem_mutex_unlock(&pool->lock);
    return st;
}
