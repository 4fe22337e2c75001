/*
 * fake_warm_store.h - an in-memory warm store for engine tests: it copies
 * a table's tokens and the f16 K/V rows of its kept tokens, and builds
 * tables back from them exactly, so tests can check the engine's use of
 * the warm tier without a disk. Faults can be switched on.
 */
#ifndef SEM_FAKE_WARM_STORE_H
#define SEM_FAKE_WARM_STORE_H

#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "ports/warm_store.h"

#define FAKE_MAX 64

typedef struct fake_entry {
    warm_info info;
    int32_t *tokens;
    uint8_t *rows; /* [n_layers][kept tokens][n_kv_heads][K row + V row] */
} fake_entry;

typedef struct fake_store {
    pthread_mutex_t lock;
    fake_entry e[FAKE_MAX];
    int n;
    int fail_saves;   /* save returns SEM_EIO */
    int corrupt_next; /* the next load returns SEM_ECORRUPT and drops the entry */
    int save_ms;      /* a save takes this long (polling stop every ms) */
    int hold_saves;   /* a save that starts waits (polling stop) until this is 0 */
    int saves, loads, stopped, started;
    char order[512];  /* "S:key L:key ...": saves and loads as they began */
} fake_store;

static fake_entry *fake_find(fake_store *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->e[i].info.key, key) == 0)
            return &f->e[i];
    return NULL;
}

static void fake_drop(fake_store *f, fake_entry *x)
{
    free(x->tokens);
    free(x->rows);
    *x = f->e[--f->n];
}

/* Bytes of one token's K and V rows for all heads on a layer. */
static size_t fake_row_bytes(const cache_spec *s)
{
    return (cache_spec_row_bytes(s->kv_type, s->k_head_dim) +
            cache_spec_row_bytes(s->kv_type, s->v_head_dim)) * s->n_kv_heads;
}

/* Copies rows between a table and a flat buffer (to_table selects the way). */
static void fake_copy(const block_table *t, uint8_t *rows, int to_table)
{
    block_pool *pool = block_table_pool(t);
    const cache_spec *s = block_pool_spec(pool);
    size_t kb = cache_spec_row_bytes(s->kv_type, s->k_head_dim);
    size_t vb = cache_spec_row_bytes(s->kv_type, s->v_head_dim);
    uint32_t n = block_table_n_tokens(t);
    for (uint32_t l = 0; l < s->n_layers; l++) {
        uint32_t kept = (uint32_t)cache_spec_kept_tokens(s, l, n);
        for (uint32_t p = n - kept; p < n; p++) {
            uint8_t *blk = block_pool_data(pool, block_table_block_for(t, l, p));
            for (uint32_t h = 0; h < s->n_kv_heads; h++) {
                uint8_t *k = blk + cache_spec_k_offset(s, h, p % s->block_tokens);
                uint8_t *v = blk + cache_spec_v_offset(s, h, p % s->block_tokens);
                if (to_table) {
                    memcpy(k, rows, kb);
                    memcpy(v, rows + kb, vb);
                } else {
                    memcpy(rows, k, kb);
                    memcpy(rows + kb, v, vb);
                }
                rows += kb + vb;
            }
        }
    }
}

static size_t fake_total_rows(const cache_spec *s, uint32_t n)
{
    size_t rows = 0;
    for (uint32_t l = 0; l < s->n_layers; l++)
        rows += cache_spec_kept_tokens(s, l, n);
    return rows;
}

static sem_status fake_save(void *self, const char *key, const block_table *t,
                            const atomic_int *stop, sem_err *err)
{
    fake_store *f = self;
    const cache_spec *s = block_pool_spec(block_table_pool(t));
    uint32_t n = block_table_n_tokens(t);
    pthread_mutex_lock(&f->lock);
    int save_ms = f->save_ms;
    f->started++;
    size_t used = strlen(f->order);
    snprintf(f->order + used, sizeof f->order - used, "S:%s ", key);
    pthread_mutex_unlock(&f->lock);
    for (int ms = 0;; ms++) {
        pthread_mutex_lock(&f->lock);
        int held = f->hold_saves;
        pthread_mutex_unlock(&f->lock);
        if (ms >= save_ms && !held)
            break;
        if (stop && atomic_load(stop)) {
            pthread_mutex_lock(&f->lock);
            f->stopped++;
            pthread_mutex_unlock(&f->lock);
            return sem_err_set(err, SEM_ECANCELLED, "saving %s was stopped", key);
        }
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    pthread_mutex_lock(&f->lock);
    if (f->fail_saves) {
        pthread_mutex_unlock(&f->lock);
        return sem_err_set(err, SEM_EIO, "cannot write %s.kv: No space left on device", key);
    }
    fake_entry *x = fake_find(f, key);
    if (!x) {
        x = &f->e[f->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->info.key, sizeof x->info.key, "%s", key);
    }
    free(x->tokens);
    free(x->rows);
    size_t bytes = fake_total_rows(s, n) * fake_row_bytes(s);
    x->tokens = malloc(n * sizeof *x->tokens);
    x->rows = malloc(bytes ? bytes : 1);
    memcpy(x->tokens, block_table_tokens(t), n * sizeof *x->tokens);
    fake_copy(t, x->rows, 0);
    x->info.tokens = n;
    x->info.bytes = bytes;
    f->saves++;
    pthread_mutex_unlock(&f->lock);
    return SEM_OK;
}

static sem_status fake_load(void *self, const char *key, block_pool *pool, block_table **out,
                            sem_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    size_t used = strlen(f->order);
    snprintf(f->order + used, sizeof f->order - used, "L:%s ", key);
    fake_entry *x = fake_find(f, key);
    sem_status st = SEM_OK;
    if (!x) {
        st = sem_err_set(err, SEM_ENOTFOUND, "no file for %s", key);
    } else if (f->corrupt_next) {
        f->corrupt_next = 0;
        fake_drop(f, x);
        st = sem_err_set(err, SEM_ECORRUPT, "%s.kv: checksum mismatch in chunk 0 (quarantined)",
                         key);
    } else {
        block_table *t = block_table_create(pool, key, err);
        if (!t || block_table_restore(t, x->tokens, x->info.tokens, err) != SEM_OK) {
            block_table_destroy(t);
            st = err->status;
        } else {
            fake_copy(t, x->rows, 1);
            f->loads++;
            *out = t;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return st;
}

static sem_status fake_peek(void *self, const char *key, int32_t **tokens, uint32_t *n,
                            sem_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    fake_entry *x = fake_find(f, key);
    sem_status st = x ? SEM_OK : sem_err_set(err, SEM_ENOTFOUND, "no file for %s", key);
    if (x) {
        *tokens = malloc(x->info.tokens * sizeof **tokens + 1);
        memcpy(*tokens, x->tokens, x->info.tokens * sizeof **tokens);
        *n = x->info.tokens;
    }
    pthread_mutex_unlock(&f->lock);
    return st;
}

static sem_status fake_remove(void *self, const char *key, sem_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    fake_entry *x = fake_find(f, key);
    if (x)
        fake_drop(f, x);
    pthread_mutex_unlock(&f->lock);
    return x ? SEM_OK : sem_err_set(err, SEM_ENOTFOUND, "no file for %s", key);
}

static sem_status fake_list(void *self, const char *prefix, warm_info **out, size_t *n,
                            sem_err *err)
{
    (void)err;
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    *out = calloc((size_t)f->n + 1, sizeof **out);
    *n = 0;
    for (int i = 0; i < f->n; i++)
        if (strncmp(f->e[i].info.key, prefix, strlen(prefix)) == 0)
            (*out)[(*n)++] = f->e[i].info;
    pthread_mutex_unlock(&f->lock);
    return SEM_OK;
}

static sem_status fake_get(void *self, const char *key, warm_info *out, sem_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    fake_entry *x = fake_find(f, key);
    if (x)
        *out = x->info;
    pthread_mutex_unlock(&f->lock);
    return x ? SEM_OK : sem_err_set(err, SEM_ENOTFOUND, "no file for %s", key);
}

static sem_status fake_touch(void *self, const char *key, uint32_t saved, sem_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->lock);
    fake_entry *x = fake_find(f, key);
    if (x) {
        x->info.hits++;
        x->info.tokens_saved += saved;
    }
    pthread_mutex_unlock(&f->lock);
    return x ? SEM_OK : sem_err_set(err, SEM_ENOTFOUND, "no file for %s", key);
}

static uint64_t fake_disk_bytes(void *self)
{
    fake_store *f = self;
    uint64_t b = 0;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->n; i++)
        b += f->e[i].info.bytes;
    pthread_mutex_unlock(&f->lock);
    return b;
}

static const warm_store_ops fake_ops = {.save = fake_save,     .load = fake_load,
                                        .peek = fake_peek,     .remove = fake_remove,
                                        .list = fake_list,     .get = fake_get,
                                        .touch = fake_touch,   .disk_bytes = fake_disk_bytes};

static void fake_init(fake_store *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
}

static void fake_free(fake_store *f)
{
    while (f->n)
        fake_drop(f, &f->e[0]);
    pthread_mutex_destroy(&f->lock);
}

static int fake_has(fake_store *f, const char *key)
{
    pthread_mutex_lock(&f->lock);
    int has = fake_find(f, key) != NULL;
    pthread_mutex_unlock(&f->lock);
    return has;
}

#endif
