/*
 * disk_store.c - the warm store as files plus an SQLite index.
 *
 * State and the lock that guards it:
 *
 *   dir, dir_fd, lock_fd, fingerprint, payload,   set at open, read-only after;
 *   budget, chunk size, hooks, report             no lock
 *   busy[] (keys with an operation in flight)     busy_lock (+ busy_cond)
 *   the index's connection and statements         the index's own db_lock
 *   seq (names of temp and quarantined files)     atomic
 *   a key's file <dir>/<key>.kv                   the key's busy mark
 *
 * save, load, peek and remove mark their key busy for their whole run
 * (waiting on busy_cond while another operation holds it), so one key's
 * file and row change in one order; busy_lock itself is held only to
 * edit the busy list, never across I/O. No operation waits for a key
 * while it holds one: budget eviction runs after the save has released
 * its key and marks one victim at a time, so marks cannot deadlock. The
 * index lock is a leaf, held only inside agent_index calls. get, list, touch and
 * disk_bytes read or update the index alone.
 *
 * Durability order of a save: write <key>.kv.tmp-<random>, fsync it,
 * rename it to <key>.kv, fsync the folder, update the index. A crash
 * before the rename leaves a temp file (deleted at the next open) and the
 * old file; after it, the new file, which reconcile indexes if the index
 * update was lost. A failure before the rename deletes the temp file and
 * changes nothing else.
 */
#include "disk_store.h"
#include "base/deadline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_index.h"
#include "domain/agent_id.h"

#define INDEX_NAME "index.sqlite"
#define LOCK_NAME "LOCK"
#define QUARANTINE_DIR "quarantine"
#define FILE_SUFFIX ".kv"
#define TEMP_INFIX ".kv.tmp-"
#define NAME_CAP 256 /* a key (160) plus any suffix we add fits in NAME_MAX */

struct disk_store {
    /* Read-only after open. */
    char *dir;
    int dir_fd;
    int lock_fd;
    uint64_t fingerprint;
    kv_payload payload;
    uint64_t budget;
    uint32_t chunk_tokens;
    kv_write_hook write_hook;
    void *write_hook_ctx;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
    disk_store_report report;

    agent_index *index; /* locked inside */

    pthread_mutex_t busy_lock; /* guards busy, n_busy, cap_busy */
    pthread_cond_t busy_cond;  /* signalled when a key is released */
    char **busy;
    size_t n_busy, cap_busy;

    atomic_uint_fast64_t seq;
};

/* ------------------------------------------------------------ small helpers */

static int64_t now_ms(const disk_store *s)
{
    if (s->now_ms)
        return s->now_ms(s->now_ctx);
    return deadline_wall_ms();
}

static void logf_(const disk_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const disk_store *s, const char *fmt, ...)
{
    if (!s->log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, msg);
}

static uint64_t random64(disk_store *s)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    uint64_t n = atomic_fetch_add(&s->seq, 1);
    return (uint64_t)now_ms(s) * 0x9E3779B97F4A7C15ull ^ (n + (uint64_t)getpid());
}

static void file_name(char *out, size_t cap, const char *key)
{
    snprintf(out, cap, "%s" FILE_SUFFIX, key);
}

/* Appends " (text)" to err's detail, keeping its status. */
static void err_append(sem_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_append(sem_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    size_t len = strlen(err->detail);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail + len, sizeof err->detail - len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ key marks */

static ssize_t busy_find(const disk_store *s, const char *key)
{
    for (size_t i = 0; i < s->n_busy; i++)
        if (strcmp(s->busy[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

/* Marks key busy, first waiting until no other operation holds it.
 * Returns 1 when marked, 0 when out of memory. */
static int key_mark(disk_store *s, const char *key)
{
    char *copy = strdup(key);
    if (!copy)
        return 0;
    pthread_mutex_lock(&s->busy_lock);
    while (busy_find(s, key) >= 0)
        pthread_cond_wait(&s->busy_cond, &s->busy_lock);
    if (s->n_busy == s->cap_busy) {
        size_t cap = s->cap_busy ? s->cap_busy * 2 : 8;
        char **g = realloc(s->busy, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&s->busy_lock);
            free(copy);
            return 0;
        }
        s->busy = g;
        s->cap_busy = cap;
    }
    s->busy[s->n_busy++] = copy;
    pthread_mutex_unlock(&s->busy_lock);
    return 1;
}

static void key_release(disk_store *s, const char *key)
{
    pthread_mutex_lock(&s->busy_lock);
    ssize_t i = busy_find(s, key);
    if (i >= 0) {
        free(s->busy[i]);
        s->busy[i] = s->busy[--s->n_busy];
    }
    pthread_cond_broadcast(&s->busy_cond);
    pthread_mutex_unlock(&s->busy_lock);
}

/* Validates key and marks it busy (waiting). */
static sem_status key_begin(disk_store *s, const char *key, sem_err *err)
{
    if (agent_key_validate(key, err) != SEM_OK)
        return SEM_EREQUEST;
    if (!key_mark(s, key))
        return sem_err_set(err, SEM_ENOMEM, "agent '%s': out of memory", key);
    return SEM_OK;
}

/* ------------------------------------------------------------ quarantine */

/*
 * Moves file `name` (of `key`, "" when it has none) out of the way into
 * quarantine/, drops key's row, and appends where it went to err's detail.
 * When the move fails the file is deleted: a bad file is never served.
 */
static void quarantine(disk_store *s, const char *name, const char *key, sem_err *err)
{
    char target[NAME_CAP + 64];
    snprintf(target, sizeof target, QUARANTINE_DIR "/%s.%lld-%llu", name, (long long)now_ms(s),
             (unsigned long long)atomic_fetch_add(&s->seq, 1));
    const char *why = err ? err->detail : "failed a check";
    char reason[SEM_ERR_DETAIL_MAX];
    snprintf(reason, sizeof reason, "%s", why);
    if (mkdirat(s->dir_fd, QUARANTINE_DIR, 0755) != 0 && errno != EEXIST) {
        logf_(s, "cannot create %s/" QUARANTINE_DIR ": %s", s->dir, strerror(errno));
    }
    if (renameat(s->dir_fd, name, s->dir_fd, target) == 0) {
        err_append(err, " (moved to %s)", target);
        logf_(s, "quarantined %s/%s as %s: %s", s->dir, name, target, reason);
    } else {
        int e = errno;
        unlinkat(s->dir_fd, name, 0);
        err_append(err, " (deleted: it could not be quarantined: %s)", strerror(e));
        logf_(s, "deleted %s/%s, which could not be moved to %s (%s): %s", s->dir, name, target,
              strerror(e), reason);
    }
    fsync(s->dir_fd);
    if (key[0]) {
        sem_err ierr = {0};
        if (agent_index_delete(s->index, key, NULL, &ierr) != SEM_OK)
            logf_(s, "%s", ierr.detail);
    }
}

/* ------------------------------------------------------------ budget */

/*
 * Deletes least recently used files of this model, never `keep`, until the
 * total plus `delta` (the growth a save about to happen brings) fits the
 * budget or only `keep` is left. Called with no key marked;
 * it marks one key at a time (waiting for an operation on it to end), so
 * it cannot deadlock. A candidate whose row changed after the listing was
 * just used (or replaced, or removed) and is skipped; the listing is
 * redone while that leaves the total over budget (a few passes at most).
 */
static void enforce_budget(disk_store *s, const char *keep, int64_t delta)
{
    sem_err ierr = {0};
    int deleted = 0;
    for (int pass = 0; pass < 4; pass++) {
        uint64_t total = 0;
        if (agent_index_total_bytes(s->index, s->fingerprint, &total, &ierr) != SEM_OK) {
            logf_(s, "disk budget: %s", ierr.detail);
            break;
        }
        if ((int64_t)total + delta <= (int64_t)s->budget)
            break;
        agent_row *rows = NULL;
        size_t n = 0;
        if (agent_index_list(s->index, s->fingerprint, "", &rows, &n, &ierr) != SEM_OK) {
            logf_(s, "disk budget: %s", ierr.detail);
            break;
        }
        int skipped = 0;
        for (size_t i = 0; i < n && (int64_t)total + delta > (int64_t)s->budget; i++) {
            const char *key = rows[i].key;
            if (strcmp(key, keep) == 0)
                continue;
            if (!key_mark(s, key))
                break; /* out of memory: try again at the next save */
            agent_row cur;
            if (agent_index_get(s->index, key, &cur, NULL) != SEM_OK ||
                cur.fingerprint != s->fingerprint || cur.last_use_ms != rows[i].last_use_ms ||
                cur.bytes != rows[i].bytes) {
                skipped = 1;
                key_release(s, key);
                continue;
            }
            char name[NAME_CAP];
            file_name(name, sizeof name, key);
            if (unlinkat(s->dir_fd, name, 0) == 0 || errno == ENOENT) {
                if (agent_index_delete(s->index, key, NULL, &ierr) != SEM_OK)
                    logf_(s, "disk budget: %s", ierr.detail);
                total -= cur.bytes < total ? cur.bytes : total;
                deleted = 1;
            } else {
                logf_(s, "disk budget: delete %s/%s: %s", s->dir, name, strerror(errno));
            }
            key_release(s, key);
        }
        free(rows);
        if (!skipped)
            break;
    }
    if (deleted)
        fsync(s->dir_fd);
}

/* ------------------------------------------------------------ save */

static sem_status save_marked(disk_store *s, const char *key, const block_table *t,
                              const atomic_int *stop, sem_err *err)
{
    char tmp[NAME_CAP], final[NAME_CAP], tmp_path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s" TEMP_INFIX "%016llx", key, (unsigned long long)random64(s));
    file_name(final, sizeof final, key);
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", s->dir, tmp);

    int fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return sem_err_set(err, SEM_EIO, "saving agent '%s': create %s: %s", key, tmp_path,
                           strerror(errno));
    kv_file_write_opts wo = {
        .fingerprint = s->fingerprint,
        .payload = s->payload,
        .chunk_tokens = s->chunk_tokens,
        .hook = s->write_hook,
        .hook_ctx = s->write_hook_ctx,
        .stop = stop,
    };
    uint64_t bytes = 0;
    kv_payload payload = s->payload;
    sem_status st = kv_file_write(fd, tmp_path, t, &wo, &bytes, &payload, err);
    if (st == SEM_OK && stop && atomic_load_explicit(stop, memory_order_relaxed))
        st = sem_err_set(err, SEM_ECANCELLED, "%s: the write was stopped", tmp_path);
    if (st == SEM_OK && fsync(fd) != 0)
        st = sem_err_set(err, SEM_EIO, "fsync %s: %s", tmp_path, strerror(errno));
    if (close(fd) != 0 && st == SEM_OK)
        st = sem_err_set(err, SEM_EIO, "close %s: %s", tmp_path, strerror(errno));
    if (st == SEM_OK && renameat(s->dir_fd, tmp, s->dir_fd, final) != 0)
        st = sem_err_set(err, SEM_EIO, "rename %s to %s: %s", tmp_path, final, strerror(errno));
    if (st != SEM_OK) {
        unlinkat(s->dir_fd, tmp, 0);
        if (st == SEM_EIO || st == SEM_ENOMEM || st == SEM_EINTERNAL)
            sem_err_wrap(err, "saving agent '%s'", key);
        return st;
    }
    /* The new file is in place: from here on the index must describe it. */
    int dir_errno = fsync(s->dir_fd) == 0 ? 0 : errno;
    int64_t now = now_ms(s);
    agent_row r = {
        .tokens = block_table_n_tokens(t),
        .bytes = bytes,
        .fingerprint = s->fingerprint,
        .payload = payload,
        .created_ms = now,
        .last_use_ms = now,
    };
    snprintf(r.key, sizeof r.key, "%s", key);
    file_name(r.file, sizeof r.file, key);
    st = agent_index_put(s->index, &r, err);
    if (st != SEM_OK) {
        sem_err_wrap(err, "saving agent '%s': the file is saved, the index is not (the next "
                          "open re-indexes it)", key);
        return st;
    }
    if (dir_errno)
        return sem_err_set(err, SEM_EIO,
                           "saving agent '%s': fsync %s: %s (the new file is in place but its "
                           "rename may not survive a power cut)",
                           key, s->dir, strerror(dir_errno));
    return SEM_OK;
}

static sem_status ds_save(void *self, const char *key, const block_table *t,
                          const atomic_int *stop, sem_err *err)
{
    disk_store *s = self;
    if (agent_key_validate(key, err) != SEM_OK)
        return SEM_EREQUEST;
    if (!t)
        return sem_err_set(err, SEM_EINVAL, "saving agent '%s': NULL table", key);
    if (block_table_n_tokens(t) == 0)
        return sem_err_set(err, SEM_EINVAL, "saving agent '%s': the table holds no tokens", key);
    if (s->budget) {
        /* Make room first, so the files never exceed the budget. */
        kv_file_write_opts wo = {.fingerprint = s->fingerprint, .payload = s->payload,
                                 .chunk_tokens = s->chunk_tokens};
        kv_file_header h;
        sem_status pst = kv_file_plan(t, &wo, &h, err);
        if (pst != SEM_OK)
            return pst;
        if (h.file_bytes > s->budget)
            return sem_err_set(err, SEM_ETOOLARGE,
                               "saving agent '%s': its file of %llu bytes exceeds the disk "
                               "budget of %llu bytes",
                               key, (unsigned long long)h.file_bytes,
                               (unsigned long long)s->budget);
        agent_row old;
        uint64_t old_bytes = 0;
        if (agent_index_get(s->index, key, &old, NULL) == SEM_OK && old.fingerprint == s->fingerprint)
            old_bytes = old.bytes;
        enforce_budget(s, key, (int64_t)h.file_bytes - (int64_t)old_bytes);
    }
    sem_status st = key_begin(s, key, err);
    if (st != SEM_OK)
        return st;
    st = save_marked(s, key, t, stop, err);
    key_release(s, key);
    if (st == SEM_OK && s->budget)
        enforce_budget(s, key, 0);
    return st;
}

/* ------------------------------------------------------------ load, peek */

/* Opens key's file for reading; ENOTFOUND (and its stale row dropped) when missing. */
static sem_status open_file(disk_store *s, const char *key, char path[PATH_MAX], int *fd,
                            sem_err *err)
{
    char name[NAME_CAP];
    file_name(name, sizeof name, key);
    snprintf(path, PATH_MAX, "%s/%s", s->dir, name);
    *fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (*fd >= 0)
        return SEM_OK;
    if (errno != ENOENT)
        return sem_err_set(err, SEM_EIO, "agent '%s': open %s: %s", key, path, strerror(errno));
    int dropped = 0;
    agent_index_delete(s->index, key, &dropped, NULL);
    if (dropped)
        logf_(s, "agent '%s': dropped its index row: %s is missing", key, path);
    return sem_err_set(err, SEM_ENOTFOUND, "agent '%s' has no saved memory", key);
}

static int is_bad_file(sem_status st)
{
    return st == SEM_ECORRUPT || st == SEM_EINCOMPAT;
}

static sem_status ds_load(void *self, const char *key, block_pool *pool, block_table **out,
                          sem_err *err)
{
    disk_store *s = self;
    sem_err local = {0}; /* the detail goes into the quarantine log even without err */
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    if (!pool || !out)
        return sem_err_set(err, SEM_EINVAL, "load: NULL pool or out");
    sem_status st = key_begin(s, key, err);
    if (st != SEM_OK)
        return st;
    char path[PATH_MAX];
    int fd;
    st = open_file(s, key, path, &fd, err);
    if (st == SEM_OK) {
        kv_file_header *h = malloc(sizeof *h);
        st = h ? kv_file_read(fd, path, s->fingerprint, pool, key, out, h, err)
               : sem_err_set(err, SEM_ENOMEM, "agent '%s': out of memory", key);
        close(fd);
        if (is_bad_file(st)) {
            char name[NAME_CAP];
            file_name(name, sizeof name, key);
            quarantine(s, name, key, err);
        } else if (st == SEM_OK) {
            int64_t now = now_ms(s);
            sem_err ierr = {0};
            sem_status ist = agent_index_touch(s->index, key, s->fingerprint, now, 0, 0, &ierr);
            if (ist == SEM_ENOTFOUND) { /* a file the index lost: describe it again */
                agent_row r = {.tokens = h->n_tokens, .bytes = h->file_bytes,
                               .fingerprint = h->fingerprint, .payload = h->payload,
                               .created_ms = now, .last_use_ms = now};
                snprintf(r.key, sizeof r.key, "%s", key);
                file_name(r.file, sizeof r.file, key);
                ist = agent_index_put(s->index, &r, &ierr);
            }
            if (ist != SEM_OK)
                logf_(s, "agent '%s' loaded, but its use was not recorded: %s", key, ierr.detail);
        }
        free(h);
    }
    key_release(s, key);
    return st;
}

static sem_status ds_peek(void *self, const char *key, int32_t **tokens, uint32_t *n,
                          sem_err *err)
{
    disk_store *s = self;
    sem_err local = {0}; /* the detail goes into the quarantine log even without err */
    if (!err)
        err = &local;
    if (!tokens || !n)
        return sem_err_set(err, SEM_EINVAL, "peek: NULL output");
    *tokens = NULL;
    *n = 0;
    sem_status st = key_begin(s, key, err);
    if (st != SEM_OK)
        return st;
    char path[PATH_MAX];
    int fd;
    st = open_file(s, key, path, &fd, err);
    if (st == SEM_OK) {
        kv_file_header *h = malloc(sizeof *h);
        int32_t *tok = NULL;
        st = h ? kv_file_read_header(fd, path, h, &tok, err)
               : sem_err_set(err, SEM_ENOMEM, "agent '%s': out of memory", key);
        if (st == SEM_OK)
            st = kv_file_check(h, path, s->fingerprint, NULL, err);
        close(fd);
        if (st == SEM_OK) {
            *tokens = tok;
            *n = h->n_tokens;
        } else {
            free(tok);
            if (is_bad_file(st)) {
                char name[NAME_CAP];
                file_name(name, sizeof name, key);
                quarantine(s, name, key, err);
            }
        }
        free(h);
    }
    key_release(s, key);
    return st;
}

/* ------------------------------------------------------------ remove */

static sem_status ds_remove(void *self, const char *key, sem_err *err)
{
    disk_store *s = self;
    sem_status st = key_begin(s, key, err);
    if (st != SEM_OK)
        return st;
    char name[NAME_CAP];
    file_name(name, sizeof name, key);
    int had_file = unlinkat(s->dir_fd, name, 0) == 0;
    int e = had_file ? 0 : errno;
    if (!had_file && e != ENOENT) {
        st = sem_err_set(err, SEM_EIO, "removing agent '%s': delete %s/%s: %s", key, s->dir,
                         name, strerror(e));
    } else {
        if (had_file)
            fsync(s->dir_fd);
        int had_row = 0;
        st = agent_index_delete(s->index, key, &had_row, err);
        if (st == SEM_OK && !had_file && !had_row)
            st = sem_err_set(err, SEM_ENOTFOUND, "agent '%s' has no saved memory", key);
    }
    key_release(s, key);
    return st;
}

/* ------------------------------------------------------------ index views */

static void info_of(const agent_row *r, warm_info *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->key, sizeof w->key, "%s", r->key);
    w->tokens = r->tokens;
    w->bytes = r->bytes;
    w->created_ms = r->created_ms;
    w->last_use_ms = r->last_use_ms;
    w->hits = r->hits;
    w->tokens_saved = r->tokens_saved;
}

static sem_status ds_list(void *self, const char *prefix, warm_info **out, size_t *n,
                          sem_err *err)
{
    disk_store *s = self;
    if (!out || !n)
        return sem_err_set(err, SEM_EINVAL, "list: NULL output");
    *out = NULL;
    *n = 0;
    agent_row *rows = NULL;
    size_t count = 0;
    sem_status st = agent_index_list(s->index, s->fingerprint, prefix, &rows, &count, err);
    if (st != SEM_OK || count == 0) {
        free(rows);
        return st;
    }
    warm_info *w = malloc(count * sizeof *w);
    if (!w) {
        free(rows);
        return sem_err_set(err, SEM_ENOMEM, "list: out of memory for %zu agents", count);
    }
    for (size_t i = 0; i < count; i++)
        info_of(&rows[i], &w[i]);
    free(rows);
    *out = w;
    *n = count;
    return SEM_OK;
}

static sem_status ds_get(void *self, const char *key, warm_info *out, sem_err *err)
{
    disk_store *s = self;
    if (agent_key_validate(key, err) != SEM_OK)
        return SEM_EREQUEST;
    agent_row r;
    sem_status st = agent_index_get(s->index, key, &r, err);
    if (st == SEM_OK && r.fingerprint != s->fingerprint)
        st = sem_err_set(err, SEM_ENOTFOUND, "agent '%s' is saved for another model only", key);
    if (st == SEM_OK)
        info_of(&r, out);
    return st;
}

static sem_status ds_touch(void *self, const char *key, uint32_t saved, sem_err *err)
{
    disk_store *s = self;
    if (agent_key_validate(key, err) != SEM_OK)
        return SEM_EREQUEST;
    return agent_index_touch(s->index, key, s->fingerprint, now_ms(s), 1, saved, err);
}

static uint64_t ds_disk_bytes(void *self)
{
    disk_store *s = self;
    uint64_t total = 0;
    sem_err err = {0};
    if (agent_index_total_bytes(s->index, s->fingerprint, &total, &err) != SEM_OK) {
        logf_(s, "%s", err.detail);
        return 0;
    }
    return total;
}

static const warm_store_ops DISK_STORE_OPS = {
    .save = ds_save,
    .load = ds_load,
    .peek = ds_peek,
    .remove = ds_remove,
    .list = ds_list,
    .get = ds_get,
    .touch = ds_touch,
    .disk_bytes = ds_disk_bytes,
};

warm_store disk_store_port(disk_store *s)
{
    return (warm_store){.ops = &DISK_STORE_OPS, .self = s};
}

disk_store_report disk_store_open_report(const disk_store *s)
{
    return s->report;
}

/* ------------------------------------------------------------ reconcile */

typedef struct name_list {
    char **names;
    size_t n, cap;
} name_list;

static int names_add(name_list *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **g = realloc(l->names, cap * sizeof *g);
        if (!g)
            return 0;
        l->names = g;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return 0;
    l->n++;
    return 1;
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_row_key(const void *key, const void *row)
{
    return strcmp(key, ((const agent_row *)row)->key);
}

/* The key of an agent file name "<key>.kv" into key; 0 when it is not one. */
static int key_of_file(const char *name, char key[WARM_KEY_MAX + 1])
{
    size_t n = strlen(name), sfx = sizeof FILE_SUFFIX - 1;
    if (n <= sfx || n - sfx > WARM_KEY_MAX || strcmp(name + n - sfx, FILE_SUFFIX) != 0)
        return 0;
    memcpy(key, name, n - sfx);
    key[n - sfx] = '\0';
    return (agent_key_validate(key, NULL) == SEM_OK);
}

/*
 * Whether name is a save's temp file: it ends in ".kv.tmp-" and 1..16 hex
 * digits. An agent file always ends in ".kv", so no key (even one that
 * contains ".kv.tmp-") is ever mistaken for one.
 */
static int is_temp_name(const char *name)
{
    const char *last = NULL;
    for (const char *p = name; (p = strstr(p, TEMP_INFIX)) != NULL; p++)
        last = p;
    if (!last)
        return 0;
    const char *hex = last + sizeof TEMP_INFIX - 1;
    size_t n = strlen(hex);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return 1;
}

/* Whether the file's fixed header agrees with its row and its size. */
static int row_agrees(int fd, const char *path, const agent_row *r, uint64_t size)
{
    kv_file_header h;
    if (r->bytes != size || kv_file_read_fixed(fd, path, &h, NULL) != SEM_OK)
        return 0;
    return h.n_tokens == r->tokens && h.fingerprint == r->fingerprint &&
           h.payload == r->payload && h.file_bytes == size;
}

/* One agent file at open: keep, index, update its row, or quarantine. */
static sem_status reconcile_file(disk_store *s, const char *name, const char *key,
                                 const agent_row *row, sem_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    int fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        logf_(s, "reconcile: cannot open %s: %s; left as it is", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return SEM_OK;
    }
    disk_store_report *rep = &s->report;
    if (row && row_agrees(fd, path, row, (uint64_t)sb.st_size)) {
        close(fd);
        if (row->fingerprint == s->fingerprint)
            rep->files++;
        else
            rep->foreign++;
        return SEM_OK;
    }
    kv_file_header *h = malloc(sizeof *h);
    if (!h) {
        close(fd);
        return sem_err_set(err, SEM_ENOMEM, "reconcile: out of memory");
    }
    sem_err ferr = {0};
    sem_status st = kv_file_read_header(fd, path, h, NULL, &ferr);
    close(fd);
    if (st == SEM_ECORRUPT) {
        quarantine(s, name, key, &ferr);
        rep->quarantined++;
        if (row)
            rep->rows_dropped++;
    } else if (st == SEM_EINCOMPAT) { /* another format version: not ours to judge */
        rep->newer++;
        if (row) {
            agent_index_delete(s->index, key, NULL, NULL);
            rep->rows_dropped++;
        }
        logf_(s, "reconcile: left alone: %s", ferr.detail);
    } else if (st != SEM_OK) {
        logf_(s, "reconcile: %s; left as it is", ferr.detail);
    } else {
        int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        agent_row r = {.tokens = h->n_tokens, .bytes = h->file_bytes,
                       .fingerprint = h->fingerprint, .payload = h->payload,
                       .created_ms = mtime, .last_use_ms = row ? row->last_use_ms : mtime};
        snprintf(r.key, sizeof r.key, "%s", key);
        snprintf(r.file, sizeof r.file, "%s", name);
        st = agent_index_put(s->index, &r, err);
        if (st == SEM_OK) {
            if (row)
                rep->rows_updated++;
            else
                rep->reindexed++;
            if (h->fingerprint == s->fingerprint)
                rep->files++;
            else
                rep->foreign++;
            logf_(s, "reconcile: %s %s from its header (%u tokens, %llu bytes)",
                  row ? "updated the index row of" : "indexed", path, h->n_tokens,
                  (unsigned long long)h->file_bytes);
        }
    }
    free(h);
    return st == SEM_ECORRUPT || st == SEM_EINCOMPAT || st == SEM_EIO ? SEM_OK : st;
}

static sem_status reconcile(disk_store *s, sem_err *err)
{
    int dfd = dup(s->dir_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return sem_err_set(err, SEM_EIO, "list %s: %s", s->dir, strerror(errno));
    }
    rewinddir(d);
    name_list files = {0};
    sem_status st = SEM_OK;
    struct dirent *e;
    while (st == SEM_OK && (e = readdir(d)) != NULL) {
        struct stat sb;
        if (fstatat(s->dir_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        char key[WARM_KEY_MAX + 1];
        if (is_temp_name(e->d_name)) {
            if (unlinkat(s->dir_fd, e->d_name, 0) == 0) {
                s->report.temp_removed++;
                logf_(s, "reconcile: deleted %s/%s, left by an interrupted save", s->dir,
                      e->d_name);
            }
        } else if (key_of_file(e->d_name, key) && !names_add(&files, e->d_name)) {
            st = sem_err_set(err, SEM_ENOMEM, "reconcile: out of memory");
        }
    }
    closedir(d);
    agent_row *rows = NULL;
    size_t n_rows = 0;
    if (st == SEM_OK)
        st = agent_index_all(s->index, &rows, &n_rows, err);
    if (st == SEM_OK && files.n)
        qsort(files.names, files.n, sizeof *files.names, cmp_name);
    /* Rows whose file is gone. */
    for (size_t i = 0; st == SEM_OK && i < n_rows; i++) {
        char name[NAME_CAP];
        file_name(name, sizeof name, rows[i].key);
        const char *pn = name;
        if (files.n && bsearch(&pn, files.names, files.n, sizeof *files.names, cmp_name))
            continue;
        st = agent_index_delete(s->index, rows[i].key, NULL, err);
        s->report.rows_dropped++;
        logf_(s, "reconcile: dropped the index row of agent '%s': %s/%s is missing",
              rows[i].key, s->dir, name);
    }
    /* Files with no row, or whose row disagrees. rows[] is in key order
     * (SQLite's binary collation is strcmp's for these ASCII keys). */
    for (size_t i = 0; st == SEM_OK && i < files.n; i++) {
        char key[WARM_KEY_MAX + 1];
        key_of_file(files.names[i], key);
        const agent_row *row = n_rows ? bsearch(key, rows, n_rows, sizeof *rows, cmp_row_key)
                                      : NULL;
        st = reconcile_file(s, files.names[i], key, row, err);
    }
    if (s->report.temp_removed || s->report.quarantined)
        fsync(s->dir_fd);
    free(rows);
    names_free(&files);
    return st;
}

/* ------------------------------------------------------------ open, close */

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

void disk_store_close(disk_store *s)
{
    if (!s)
        return;
    agent_index_close(s->index);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    for (size_t i = 0; i < s->n_busy; i++)
        free(s->busy[i]);
    free(s->busy);
    pthread_cond_destroy(&s->busy_cond);
    pthread_mutex_destroy(&s->busy_lock);
    free(s->dir);
    free(s);
}

disk_store *disk_store_open(const disk_store_opts *o, sem_err *err)
{
    if (!o || !o->dir || !o->dir[0]) {
        sem_err_set(err, SEM_EINVAL, "disk store: no folder given");
        return NULL;
    }
    kv_payload payload = o->payload == KV_PAYLOAD_DEFAULT ? KV_PAYLOAD_Q8_0 : o->payload;
    if (payload != KV_PAYLOAD_F16 && payload != KV_PAYLOAD_Q8_0 && payload != KV_PAYLOAD_Q4_0) {
        sem_err_set(err, SEM_EINVAL, "disk store: payload type %d is not f16, q8_0 or q4_0",
                    (int)o->payload);
        return NULL;
    }
    if (strlen(o->dir) > PATH_MAX - NAME_CAP - 64) {
        sem_err_set(err, SEM_EINVAL, "disk store: folder path of %zu characters is too long",
                    strlen(o->dir));
        return NULL;
    }
    disk_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(o->dir))) {
        free(s);
        sem_err_set(err, SEM_ENOMEM, "disk store: out of memory");
        return NULL;
    }
    s->dir_fd = s->lock_fd = -1;
    s->fingerprint = o->fingerprint;
    s->payload = payload;
    s->budget = o->budget_bytes;
    s->chunk_tokens = o->chunk_tokens;
    s->write_hook = o->write_hook;
    s->write_hook_ctx = o->write_hook_ctx;
    s->now_ms = o->now_ms;
    s->now_ctx = o->now_ctx;
    s->log = o->log;
    s->log_ctx = o->log_ctx;
    pthread_mutex_init(&s->busy_lock, NULL);
    pthread_cond_init(&s->busy_cond, NULL);
    atomic_init(&s->seq, 0);

    if (make_dirs(s->dir) != 0) {
        sem_err_set(err, SEM_EIO, "disk store: create folder %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        sem_err_set(err, SEM_EIO, "disk store: open folder %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    s->lock_fd = openat(s->dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        sem_err_set(err, SEM_EIO, "disk store: create %s/" LOCK_NAME ": %s", s->dir,
                    strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        sem_err_set(err, errno == EWOULDBLOCK ? SEM_EBUSY : SEM_EIO,
                    "disk store: %s is in use by another store (lock %s/" LOCK_NAME ": %s)",
                    s->dir, s->dir, strerror(errno));
        goto fail;
    }
    char index_path[PATH_MAX];
    snprintf(index_path, sizeof index_path, "%s/" INDEX_NAME, s->dir);
    s->index = agent_index_open(index_path, err);
    if (!s->index)
        goto fail;
    if (reconcile(s, err) != SEM_OK)
        goto fail;
    return s;
fail:
    disk_store_close(s);
    return NULL;
}
