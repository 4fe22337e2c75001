/*
 * disk_store.c - the warm store as files plus an SQLite index.
 *
 * State and the lock that guards it:
 *
 *   dir, dir_fd, lock_fd, fingerprint, payload,   set at open, read-only after;
 *   budget, chunk size, hooks, report             no lock
 *   busy[] (keys with an operation in flight)     busy_lock (+ busy_cond)
 *   the index's connection and statements         the index's own db_lock
 *   other[] (counted files the index lacks)       other_lock (a leaf)
 *   pins[] (chunks a save or load_prefix is using) chunk_lock (a leaf but
 *                                                 for the index's db_lock)
 *   a chunk file's deletion                       chunk_lock
 *   seq (names of temp and quarantined files)     atomic
 *   fsync_failures                                atomic
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
 * changes nothing else. Every fsync of the folder is checked: a save or a
 * remove whose folder fsync fails returns SEM_EIO (what it did stays
 * done and indexed); where the operation has already failed or has no
 * caller to tell (quarantine, reconcile, eviction after a save), the
 * failure is logged and counted (disk_store_fsync_failures).
 *
 * Shared chunks (kv_chunk.h) live in <dir>/chunks/<name>.kvc. A save
 * pins the names of its chunks, writes those whose file is missing (temp,
 * fsync, rename, folder fsync) BEFORE the agent file that names them, then
 * records the agent and its links in one index transaction and unpins. A
 * chunk no agent names (refs 0 in the index) is deleted by
 * collect_chunks, under chunk_lock, only when nobody pins it: a save that
 * pinned a name before checking its file either sees the file (which then
 * stays) or writes it again; two saves that write one chunk at once rename
 * identical content over each other. A chunk's refs change only in the
 * transaction of an agent's save or deletion, and reconcile recounts them
 * from the agent files, so a crash at any point leaves at worst a chunk
 * nobody names (deleted at open) or an agent whose chunk is missing
 * (dropped at open; until then its load fails with SEM_ECORRUPT).
 *
 * The disk budget covers every file of the store in the folder: agent
 * files of every model (the index's rows), and the files the index does
 * not describe, kept in other[]: files of a newer format version (a later
 * release's: kept, never loaded), files that cannot be read, and
 * quarantined files. Under budget pressure the quarantined files go
 * first, oldest first, then newer and unreadable files, then agents of
 * any model, least recently used first.
 */
#include "disk_store.h"
#include "base/deadline.h"
#include "base/fs_dirs.h"

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
#include "kv_chunk.h"
#include "kv_rows.h"
#include "domain/agent_id.h"

#define INDEX_NAME "index.sqlite"
#define LOCK_NAME "LOCK"
#define QUARANTINE_DIR "quarantine"
#define CHUNK_DIR "chunks"
#define CHUNK_SUFFIX ".kvc"
#define CHUNK_TEMP_INFIX ".kvc.tmp-"
#define CHUNK_NAME_CAP (KV_CHUNK_HEX_BYTES + 32)
#define FILE_SUFFIX ".kv"
#define TEMP_INFIX ".kv.tmp-"
#define NAME_CAP 256 /* a key (160) plus any suffix we add fits in NAME_MAX */
#define OTHER_NAME_CAP (NAME_CAP + 64)

/* A file counted in the budget that has no index row. */
typedef enum other_kind {
    OTHER_QUARANTINED, /* quarantine/<key>.kv.<ms>-<n>: failed a check */
    OTHER_NEWER,       /* <key>.kv of a format version a later release wrote */
    OTHER_UNREADABLE,  /* <key>.kv that cannot be opened or read */
} other_kind;

typedef struct other_file {
    char name[OTHER_NAME_CAP];  /* relative to the folder */
    char key[WARM_KEY_MAX + 1]; /* the agent's key; "" for a quarantined file */
    other_kind kind;
    uint64_t bytes;
    int64_t mtime_ms;
} other_file;

struct disk_store {
    /* Read-only after open. */
    char *dir;
    int dir_fd;
    int lock_fd;
    uint64_t fingerprint;
    kv_payload payload;
    uint64_t budget;
    uint32_t chunk_tokens;
    int whole_files;
    kv_write_hook write_hook;
    void *write_hook_ctx;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    void (*log)(void *ctx, const char *message);
    void *log_ctx;
    int (*fsync_hook)(void *ctx, const char *dir);
    void *fsync_hook_ctx;
    disk_store_report report;

    agent_index *index; /* locked inside */
    int chunks_fd;      /* <dir>/chunks */

    pthread_mutex_t chunk_lock; /* guards pins, n_pins, cap_pins; held across a chunk's deletion */
    kv_chunk_name *pins;        /* a multiset: one entry per pin */
    size_t n_pins, cap_pins;

    pthread_mutex_t busy_lock; /* guards busy, n_busy, cap_busy */
    pthread_cond_t busy_cond;  /* signalled when a key is released */
    char **busy;
    size_t n_busy, cap_busy;

    pthread_mutex_t other_lock; /* guards other, n_other, cap_other */
    other_file *other;
    size_t n_other, cap_other;

    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t fsync_failures;
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

static int64_t mtime_ms_of(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

/*
 * fsyncs a folder of the store (fd; sub names it under the store's folder),
 * so that the renames and deletions before it survive a power cut. Returns
 * 0 or the errno; a failure is counted and logged with `what` (what the
 * fsync was for), and the caller decides what it means for its operation.
 */
static int sync_folder(disk_store *s, int fd, const char *sub, const char *what)
{
    int e = s->fsync_hook ? s->fsync_hook(s->fsync_hook_ctx, s->dir) : 0;
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (e) {
        atomic_fetch_add(&s->fsync_failures, 1);
        logf_(s, "fsync %s%s after %s: %s", s->dir, sub, what, strerror(e));
    }
    return e;
}

/* The store's folder, where agent files are renamed into place. */
static int sync_dir(disk_store *s, const char *what) { return sync_folder(s, s->dir_fd, "", what); }

/* The same for chunks/, where chunk files are renamed into place. */
static int sync_chunks(disk_store *s, const char *what)
{
    return sync_folder(s, s->chunks_fd, "/" CHUNK_DIR, what);
}

/* "<32 hex>.kvc", the chunk's file in chunks/. */
static void chunk_file(char out[CHUNK_NAME_CAP], const kv_chunk_name *n)
{
    char hex[KV_CHUNK_HEX_BYTES];
    kv_chunk_hex(n, hex);
    snprintf(out, CHUNK_NAME_CAP, "%s" CHUNK_SUFFIX, hex);
}

/* ------------------------------------------------------------ chunk pins */

/* Pins names[0..n) (a save or load_prefix is using them); 0 when out of memory. */
static int pins_add(disk_store *s, const kv_chunk_name *names, size_t n)
{
    if (n == 0)
        return 1;
    pthread_mutex_lock(&s->chunk_lock);
    if (s->n_pins + n > s->cap_pins) {
        size_t cap = s->cap_pins ? s->cap_pins : 64;
        while (cap < s->n_pins + n)
            cap *= 2;
        kv_chunk_name *g = realloc(s->pins, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&s->chunk_lock);
            return 0;
        }
        s->pins = g;
        s->cap_pins = cap;
    }
    memcpy(s->pins + s->n_pins, names, n * sizeof *names);
    s->n_pins += n;
    pthread_mutex_unlock(&s->chunk_lock);
    return 1;
}

static void pins_drop(disk_store *s, const kv_chunk_name *names, size_t n)
{
    pthread_mutex_lock(&s->chunk_lock);
    for (size_t i = 0; i < n; i++)
        for (size_t j = s->n_pins; j-- > 0;)
            if (memcmp(&s->pins[j], &names[i], sizeof names[i]) == 0) {
                s->pins[j] = s->pins[--s->n_pins];
                break;
            }
    pthread_mutex_unlock(&s->chunk_lock);
}

/* Call under chunk_lock. */
static int pinned(const disk_store *s, const kv_chunk_name *name)
{
    for (size_t i = 0; i < s->n_pins; i++)
        if (memcmp(&s->pins[i], name, sizeof *name) == 0)
            return 1;
    return 0;
}

/*
 * Deletes every chunk no agent names and nobody pins: its row first, then
 * its file (a crash between leaves a file nobody names, which the next
 * open deletes). Returns how many went; failures are logged.
 */
static size_t collect_chunks(disk_store *s)
{
    sem_err ierr = {0};
    agent_chunk_row *rows = NULL;
    size_t n = 0, gone = 0;
    char failure[SEM_ERR_DETAIL_MAX] = ""; /* logged once the lock is released */
    pthread_mutex_lock(&s->chunk_lock);
    if (agent_index_chunks_unused(s->index, &rows, &n, &ierr) != SEM_OK)
        snprintf(failure, sizeof failure, "%s", ierr.detail);
    for (size_t i = 0; i < n; i++) {
        kv_chunk_name name;
        int dropped = 0;
        if (!kv_chunk_parse_hex(rows[i].name, &name) || pinned(s, &name))
            continue;
        if (agent_index_chunk_drop_unused(s->index, rows[i].name, &dropped, &ierr) != SEM_OK) {
            snprintf(failure, sizeof failure, "%s", ierr.detail);
            break;
        }
        char file[CHUNK_NAME_CAP];
        chunk_file(file, &name);
        if (dropped && unlinkat(s->chunks_fd, file, 0) != 0 && errno != ENOENT)
            snprintf(failure, sizeof failure, "delete %s/" CHUNK_DIR "/%s: %s", s->dir, file,
                     strerror(errno));
        gone += (size_t)dropped;
    }
    pthread_mutex_unlock(&s->chunk_lock);
    free(rows);
    if (failure[0])
        logf_(s, "shared chunks: %s", failure);
    if (gone)
        sync_chunks(s, "deleting chunks no agent names"); /* logged and counted */
    return gone;
}

/*
 * After a failed save: deletes the files of names[0..n) that no index row
 * describes and nobody pins (chunks the save wrote for nothing), so that
 * every chunk file stays counted.
 */
static void drop_unindexed(disk_store *s, const kv_chunk_name *names, size_t n)
{
    pthread_mutex_lock(&s->chunk_lock);
    for (size_t i = 0; i < n; i++) {
        char hex[KV_CHUNK_HEX_BYTES], file[CHUNK_NAME_CAP];
        agent_chunk_row row;
        kv_chunk_hex(&names[i], hex);
        if (pinned(s, &names[i]) ||
            agent_index_chunk_get(s->index, hex, &row, NULL) != SEM_ENOTFOUND)
            continue;
        chunk_file(file, &names[i]);
        unlinkat(s->chunks_fd, file, 0);
    }
    pthread_mutex_unlock(&s->chunk_lock);
}

/* ------------------------------------------------------------ other files */

/* Index of name in other[], or -1; call under other_lock. */
static ssize_t other_find(const disk_store *s, const char *name)
{
    for (size_t i = 0; i < s->n_other; i++)
        if (strcmp(s->other[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Counts file `name` (replacing what was known of it). 0 when out of memory
 * (logged: the file is then not counted until the next open). */
static int other_put(disk_store *s, const char *name, const char *key, other_kind kind,
                     uint64_t bytes, int64_t mtime_ms)
{
    pthread_mutex_lock(&s->other_lock);
    ssize_t i = other_find(s, name);
    if (i < 0) {
        if (s->n_other == s->cap_other) {
            size_t cap = s->cap_other ? s->cap_other * 2 : 16;
            other_file *g = realloc(s->other, cap * sizeof *g);
            if (!g) {
                pthread_mutex_unlock(&s->other_lock);
                logf_(s, "out of memory: %s/%s is not counted in the disk budget", s->dir, name);
                return 0;
            }
            s->other = g;
            s->cap_other = cap;
        }
        i = (ssize_t)s->n_other++;
    }
    other_file *o = &s->other[i];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->key, sizeof o->key, "%s", key);
    o->kind = kind;
    o->bytes = bytes;
    o->mtime_ms = mtime_ms;
    pthread_mutex_unlock(&s->other_lock);
    return 1;
}

/* Stops counting file `name` (deleted, replaced, moved); returns its bytes. */
static uint64_t other_drop(disk_store *s, const char *name)
{
    uint64_t bytes = 0;
    pthread_mutex_lock(&s->other_lock);
    ssize_t i = other_find(s, name);
    if (i >= 0) {
        bytes = s->other[i].bytes;
        s->other[i] = s->other[--s->n_other];
    }
    pthread_mutex_unlock(&s->other_lock);
    return bytes;
}

static uint64_t other_bytes(disk_store *s, const char *name)
{
    pthread_mutex_lock(&s->other_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < s->n_other; i++)
        if (!name || strcmp(s->other[i].name, name) == 0)
            total += s->other[i].bytes;
    pthread_mutex_unlock(&s->other_lock);
    return total;
}

/* Eviction order of other files: quarantined first, then the rest; oldest first. */
static int cmp_other_victim(const void *a, const void *b)
{
    const other_file *x = a, *y = b;
    int px = x->kind != OTHER_QUARANTINED, py = y->kind != OTHER_QUARANTINED;
    if (px != py)
        return px - py;
    if (x->mtime_ms != y->mtime_ms)
        return x->mtime_ms < y->mtime_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* A copy of other[] in eviction order (malloc'd; NULL with *n 0 when empty). */
static other_file *other_snapshot(disk_store *s, size_t *n)
{
    pthread_mutex_lock(&s->other_lock);
    other_file *copy = s->n_other ? malloc(s->n_other * sizeof *copy) : NULL;
    *n = copy ? s->n_other : 0;
    if (copy)
        memcpy(copy, s->other, s->n_other * sizeof *copy);
    pthread_mutex_unlock(&s->other_lock);
    if (copy)
        qsort(copy, *n, sizeof *copy, cmp_other_victim);
    return copy;
}

static const char *other_kind_name(other_kind k)
{
    switch (k) {
    case OTHER_QUARANTINED: return "quarantined";
    case OTHER_NEWER: return "of a newer format version";
    case OTHER_UNREADABLE: return "unreadable";
    }
    return "?";
}

/* What the budget counts: every row of the index, every other file. */
static sem_status counted_total(disk_store *s, uint64_t *out, sem_err *err)
{
    uint64_t rows = 0;
    sem_status st = agent_index_total_bytes_all(s->index, &rows, err);
    if (st == SEM_OK)
        *out = rows + other_bytes(s, NULL);
    return st;
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
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    snprintf(target, sizeof target, QUARANTINE_DIR "/%s.%lld-%llu", base, (long long)now_ms(s),
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
        struct stat sb;
        if (fstatat(s->dir_fd, target, &sb, AT_SYMLINK_NOFOLLOW) == 0) /* still counted */
            other_put(s, target, "", OTHER_QUARANTINED, (uint64_t)sb.st_size, mtime_ms_of(&sb));
    } else {
        int e = errno;
        unlinkat(s->dir_fd, name, 0);
        err_append(err, " (deleted: it could not be quarantined: %s)", strerror(e));
        logf_(s, "deleted %s/%s, which could not be moved to %s (%s): %s", s->dir, name, target,
              strerror(e), reason);
    }
    other_drop(s, name);
    int e = sync_dir(s, "quarantining a file");
    if (e)
        err_append(err, "; fsync %s: %s (the move may not survive a power cut)", s->dir,
                   strerror(e));
    if (base != name)
        sync_chunks(s, "quarantining a chunk"); /* logged and counted */
    if (key[0]) {
        sem_err ierr = {0};
        if (agent_index_delete(s->index, key, NULL, &ierr) != SEM_OK)
            logf_(s, "%s", ierr.detail);
    }
}

/*
 * A shared chunk that failed a check (or is missing, `missing`): moved to
 * quarantine/ (when there), and its row says its file is gone, so that no
 * load_prefix offers it and the next save that names it writes it again.
 * Every agent that names it fails to load until then.
 */
static void quarantine_chunk(disk_store *s, const kv_chunk_name *name, int missing, sem_err *err)
{
    char file[CHUNK_NAME_CAP], rel[CHUNK_NAME_CAP + 16], hex[KV_CHUNK_HEX_BYTES];
    chunk_file(file, name);
    kv_chunk_hex(name, hex);
    snprintf(rel, sizeof rel, CHUNK_DIR "/%s", file);
    if (!missing)
        quarantine(s, rel, "", err);
    sem_err ierr = {0};
    if (agent_index_chunk_lost(s->index, hex, &ierr) != SEM_OK)
        logf_(s, "%s", ierr.detail);
}

/* ------------------------------------------------------------ budget */

/*
 * Deletes counted files, never `keep`'s, until the total plus `delta` (the
 * growth a save about to happen brings) fits the budget or nothing else is
 * left: quarantined files (oldest first), then files of a newer version
 * and unreadable ones (oldest first), then agents of every model, least
 * recently used first. Called with no key marked; it marks one key at a
 * time (waiting for an operation on it to end), so it cannot deadlock. A
 * candidate that changed after the listing (an agent used or replaced
 * since, another file replaced by a save) is skipped, and the listing is
 * redone while that leaves the total over budget (a few passes at most).
 * Returns 0, or the errno of the folder fsync that makes the deletions
 * durable (counted and logged).
 */
static int enforce_budget(disk_store *s, const char *keep, int64_t delta)
{
    sem_err ierr = {0};
    int deleted = 0;
    for (int pass = 0; pass < 4; pass++) {
        uint64_t total = 0;
        if (counted_total(s, &total, &ierr) != SEM_OK) {
            logf_(s, "disk budget: %s", ierr.detail);
            break;
        }
        if ((int64_t)total + delta <= (int64_t)s->budget)
            break;
        int skipped = 0;
        /* Files nobody here can load. */
        size_t n_other = 0;
        other_file *others = other_snapshot(s, &n_other);
        for (size_t i = 0; i < n_other && (int64_t)total + delta > (int64_t)s->budget; i++) {
            const other_file *o = &others[i];
            if (o->key[0] && (strcmp(o->key, keep) == 0 || !key_mark(s, o->key)))
                continue;
            pthread_mutex_lock(&s->other_lock);
            ssize_t at = other_find(s, o->name);
            int same = at >= 0 && s->other[at].bytes == o->bytes && s->other[at].kind == o->kind;
            pthread_mutex_unlock(&s->other_lock);
            if (!same) {
                skipped = 1;
            } else if (unlinkat(s->dir_fd, o->name, 0) == 0 || errno == ENOENT) {
                uint64_t b = other_drop(s, o->name);
                total -= b < total ? b : total;
                deleted = 1;
                logf_(s, "disk budget: deleted %s/%s (%s, %llu bytes)", s->dir, o->name,
                      other_kind_name(o->kind), (unsigned long long)o->bytes);
            } else {
                logf_(s, "disk budget: delete %s/%s: %s", s->dir, o->name, strerror(errno));
            }
            if (o->key[0])
                key_release(s, o->key);
        }
        free(others);
        /* Agents of every model, least recently used first. */
        agent_row *rows = NULL;
        size_t n = 0;
        if ((int64_t)total + delta > (int64_t)s->budget &&
            agent_index_lru_all(s->index, &rows, &n, &ierr) != SEM_OK) {
            logf_(s, "disk budget: %s", ierr.detail);
            break;
        }
        for (size_t i = 0; i < n && (int64_t)total + delta > (int64_t)s->budget; i++) {
            const char *key = rows[i].key;
            if (strcmp(key, keep) == 0)
                continue;
            if (!key_mark(s, key))
                break; /* out of memory: try again at the next save */
            agent_row cur;
            if (agent_index_get(s->index, key, &cur, NULL) != SEM_OK ||
                cur.fingerprint != rows[i].fingerprint || cur.last_use_ms != rows[i].last_use_ms ||
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
                if (collect_chunks(s)) /* the chunks only it named went too */
                    counted_total(s, &total, &ierr);
                deleted = 1;
                if (cur.fingerprint != s->fingerprint)
                    logf_(s, "disk budget: deleted %s/%s, an agent of another model (%016llx)",
                          s->dir, name, (unsigned long long)cur.fingerprint);
            } else {
                logf_(s, "disk budget: delete %s/%s: %s", s->dir, name, strerror(errno));
            }
            key_release(s, key);
        }
        free(rows);
        if (!skipped)
            break;
    }
    return deleted ? sync_dir(s, "deletions for the disk budget") : 0;
}

/* ------------------------------------------------------------ save */

/* What a save writes: the agent file's header, its shared chunks' names. */
typedef struct save_plan {
    kv_file_header h;
    kv_chunk_name root;                  /* parent of chunk 0 */
    kv_chunk_name *names;                /* [h.n_shared] */
    char (*hex)[KV_CHUNK_HEX_BYTES];     /* [h.n_shared] */
    uint64_t chunk_bytes;                /* size of one chunk file */
} save_plan;

static void plan_free(save_plan *p)
{
    free(p->names);
    free(p->hex);
    p->names = NULL;
    p->hex = NULL;
}

static kv_file_write_opts write_opts(const disk_store *s, const atomic_int *stop)
{
    return (kv_file_write_opts){
        .fingerprint = s->fingerprint,
        .payload = s->payload,
        .chunk_tokens = s->chunk_tokens,
        .hook = s->write_hook,
        .hook_ctx = s->write_hook_ctx,
        .stop = stop,
        .share = !s->whole_files,
    };
}

static sem_status plan_save(disk_store *s, const char *key, const block_table *t, save_plan *p,
                            sem_err *err)
{
    memset(p, 0, sizeof *p);
    kv_file_write_opts wo = write_opts(s, NULL);
    sem_status st = kv_file_plan(t, &wo, &p->h, err);
    if (st != SEM_OK)
        return st;
    uint32_t n = p->h.n_shared;
    p->chunk_bytes = kv_chunk_size_for(&p->h);
    p->names = n ? malloc(n * sizeof *p->names) : NULL;
    p->hex = n ? malloc(n * sizeof *p->hex) : NULL;
    if (n && (!p->names || !p->hex)) {
        plan_free(p);
        return sem_err_set(err, SEM_ENOMEM, "saving agent '%s': out of memory for %u chunk names",
                           key, n);
    }
    kv_chunk_root(&p->h, key, kv_chunk_ns_len(key), &p->root);
    kv_chunk_names(&p->h, key, kv_chunk_ns_len(key), block_table_tokens(t), n, p->names);
    for (uint32_t i = 0; i < n; i++)
        kv_chunk_hex(&p->names[i], p->hex[i]);
    return SEM_OK;
}

/* Bytes the save adds besides the agent file: its chunks the index lacks. */
static uint64_t new_chunk_bytes(disk_store *s, const save_plan *p)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < p->h.n_shared; i++) {
        agent_chunk_row c;
        if (agent_index_chunk_get(s->index, p->hex[i], &c, NULL) != SEM_OK || c.bytes == 0)
            bytes += p->chunk_bytes;
    }
    return bytes;
}

/* Writes chunk i of the plan as chunks/<name>.kvc: temp file, fsync, rename. */
static sem_status write_chunk(disk_store *s, const block_table *t, const save_plan *p,
                              uint32_t i, const atomic_int *stop, sem_err *err)
{
    char file[CHUNK_NAME_CAP], tmp[CHUNK_NAME_CAP + 32], tmp_path[PATH_MAX];
    chunk_file(file, &p->names[i]);
    snprintf(tmp, sizeof tmp, "%s" CHUNK_TEMP_INFIX "%016llx", p->hex[i],
             (unsigned long long)random64(s));
    snprintf(tmp_path, sizeof tmp_path, "%s/" CHUNK_DIR "/%s", s->dir, tmp);
    int fd = openat(s->chunks_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return sem_err_set(err, SEM_EIO, "create %s: %s", tmp_path, strerror(errno));
    sem_status st = kv_chunk_write(fd, tmp_path, t, &p->h, i, &p->names[i],
                                   i ? &p->names[i - 1] : &p->root, s->write_hook,
                                   s->write_hook_ctx, stop, err);
    if (st == SEM_OK && fsync(fd) != 0)
        st = sem_err_set(err, SEM_EIO, "fsync %s: %s", tmp_path, strerror(errno));
    if (close(fd) != 0 && st == SEM_OK)
        st = sem_err_set(err, SEM_EIO, "close %s: %s", tmp_path, strerror(errno));
    if (st == SEM_OK && renameat(s->chunks_fd, tmp, s->chunks_fd, file) != 0)
        st = sem_err_set(err, SEM_EIO, "rename %s to %s: %s", tmp_path, file, strerror(errno));
    if (st != SEM_OK)
        unlinkat(s->chunks_fd, tmp, 0);
    return st;
}

/*
 * Writes every chunk of the plan whose file is missing or of the wrong
 * size (the names are pinned), then fsyncs chunks/ so that they are
 * durable before the agent file that names them.
 */
static sem_status write_chunks(disk_store *s, const block_table *t, const save_plan *p,
                               const atomic_int *stop, sem_err *err)
{
    uint32_t written = 0;
    sem_status st = SEM_OK;
    for (uint32_t i = 0; st == SEM_OK && i < p->h.n_shared; i++) {
        char file[CHUNK_NAME_CAP];
        struct stat sb;
        chunk_file(file, &p->names[i]);
        if (fstatat(s->chunks_fd, file, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            (uint64_t)sb.st_size == p->chunk_bytes)
            continue;
        st = write_chunk(s, t, p, i, stop, err);
        written++;
    }
    if (st == SEM_OK && written) {
        int e = sync_chunks(s, "writing shared chunks");
        if (e)
            st = sem_err_set(err, SEM_EIO, "fsync %s/" CHUNK_DIR ": %s", s->dir, strerror(e));
    }
    return st;
}

/* *in_place: whether the new agent file was renamed into place (its
 * chunks are then in use, indexed or not). */
static sem_status save_marked(disk_store *s, const char *key, const block_table *t,
                              const save_plan *p, const atomic_int *stop, int *in_place,
                              sem_err *err)
{
    *in_place = 0;
    char tmp[NAME_CAP], final[NAME_CAP], tmp_path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s" TEMP_INFIX "%016llx", key, (unsigned long long)random64(s));
    file_name(final, sizeof final, key);
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", s->dir, tmp);

    sem_status st = write_chunks(s, t, p, stop, err);
    if (st != SEM_OK) {
        if (st == SEM_EIO || st == SEM_ENOMEM || st == SEM_EINTERNAL)
            sem_err_wrap(err, "saving agent '%s'", key);
        return st;
    }
    int fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return sem_err_set(err, SEM_EIO, "saving agent '%s': create %s: %s", key, tmp_path,
                           strerror(errno));
    kv_file_write_opts wo = write_opts(s, stop);
    wo.names = p->names;
    uint64_t bytes = 0;
    kv_payload payload = s->payload;
    st = kv_file_write(fd, tmp_path, t, &wo, &bytes, &payload, err);
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
    /* The new file is in place (it replaced a newer or unreadable file, if
     * one was there): from here on the index must describe it. */
    *in_place = 1;
    other_drop(s, final);
    int dir_errno = sync_dir(s, "renaming a saved file");
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
    st = agent_index_put_chunks(s->index, &r, (const char(*)[KV_CHUNK_HEX_BYTES])p->hex,
                                p->h.n_shared, p->chunk_bytes, err);
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

/* Makes room under the budget for the plan's files, before they are written. */
static sem_status make_room(disk_store *s, const char *key, const save_plan *p, sem_err *err)
{
    uint64_t need = p->h.file_bytes + new_chunk_bytes(s, p);
    if (need > s->budget)
        return sem_err_set(err, SEM_ETOOLARGE,
                           "saving agent '%s': the size of its files, %llu bytes, exceeds the disk "
                           "budget of %llu bytes",
                           key, (unsigned long long)need, (unsigned long long)s->budget);
    /* What the new file replaces: the key's file, whatever it is. */
    agent_row old;
    char name[NAME_CAP];
    file_name(name, sizeof name, key);
    uint64_t old_bytes = other_bytes(s, name);
    if (agent_index_get(s->index, key, &old, NULL) == SEM_OK)
        old_bytes += old.bytes;
    int e = enforce_budget(s, key, (int64_t)need - (int64_t)old_bytes);
    if (e)
        return sem_err_set(err, SEM_EIO,
                           "saving agent '%s': making room under the disk budget: fsync %s: "
                           "%s (files were deleted; the save was not made)",
                           key, s->dir, strerror(e));
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
    save_plan p;
    sem_status st = plan_save(s, key, t, &p, err);
    if (st == SEM_OK && s->budget) /* make room first, so the files never exceed the budget */
        st = make_room(s, key, &p, err);
    if (st == SEM_OK)
        st = key_begin(s, key, err);
    if (st != SEM_OK) {
        plan_free(&p);
        return st;
    }
    if (!pins_add(s, p.names, p.h.n_shared)) {
        st = sem_err_set(err, SEM_ENOMEM, "saving agent '%s': out of memory", key);
    } else {
        int in_place = 0;
        st = save_marked(s, key, t, &p, stop, &in_place, err);
        pins_drop(s, p.names, p.h.n_shared);
        if (st != SEM_OK && !in_place)
            drop_unindexed(s, p.names, p.h.n_shared);
    }
    key_release(s, key);
    plan_free(&p);
    collect_chunks(s); /* the chunks it no longer names, or wrote in vain */
    if (st == SEM_OK && s->budget)
        enforce_budget(s, key, 0); /* a race's excess; an fsync failure is logged and counted */
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

/*
 * key's file `name` is of a format version a later release wrote: it stays
 * where it is, counted in the budget, and is not loaded; an index row that
 * came to describe it is dropped (the index lists what this build loads).
 * The file goes when the agent is saved again (replaced), removed, or
 * evicted under budget pressure.
 */
static void keep_newer(disk_store *s, const char *key, const char *name, sem_err *err)
{
    struct stat sb;
    if (fstatat(s->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        other_put(s, name, key, OTHER_NEWER, (uint64_t)sb.st_size, mtime_ms_of(&sb));
    agent_index_delete(s->index, key, NULL, NULL);
    err_append(err, " (kept on disk, counted in the disk budget, not loaded)");
    logf_(s, "agent '%s' not loaded: %s", key, err->detail);
}

/* kv_chunk_source of the store's chunks/ folder. */
static sem_status open_chunk(void *ctx, const kv_chunk_name *name, int *fd, char *path,
                             size_t cap, sem_err *err)
{
    disk_store *s = ctx;
    char file[CHUNK_NAME_CAP];
    chunk_file(file, name);
    snprintf(path, cap, "%s/" CHUNK_DIR "/%s", s->dir, file);
    *fd = openat(s->chunks_fd, file, O_RDONLY | O_CLOEXEC);
    if (*fd >= 0)
        return SEM_OK;
    if (errno == ENOENT)
        return sem_err_set(err, SEM_ENOTFOUND, "%s is missing", path);
    return sem_err_set(err, SEM_EIO, "open %s: %s", path, strerror(errno));
}

/* The namespace of key (its part before the first '.') into ns. */
static void ns_of(const char *key, char ns[WARM_KEY_MAX + 1])
{
    size_t n = kv_chunk_ns_len(key);
    memcpy(ns, key, n);
    ns[n] = '\0';
}

sem_status disk_store_load_fault(disk_store *s, const char *key, block_pool *pool,
                                 block_table **out, kv_read_fault *blame, sem_err *err)
{
    if (blame)
        memset(blame, 0, sizeof *blame);
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
        if (h)
            h->version = 0;
        char ns[WARM_KEY_MAX + 1];
        ns_of(key, ns);
        kv_chunk_source src = {.ctx = s, .open = open_chunk};
        kv_read_fault fault = {0};
        st = h ? kv_file_read_from(fd, path, s->fingerprint, ns, &src, pool, key, out, h,
                                   &fault, err)
               : sem_err_set(err, SEM_ENOMEM, "agent '%s': out of memory", key);
        close(fd);
        char name[NAME_CAP];
        file_name(name, sizeof name, key);
        if (st != SEM_OK && fault.in_chunk && is_bad_file(st)) {
            /* The agent file is sound; the chunk is not served to anyone. */
            quarantine_chunk(s, &fault.name, fault.missing, err);
            sem_err_wrap(err, "agent '%s'", key);
        } else if (st == SEM_EINCOMPAT && kv_file_version_is_newer(h->version)) {
            keep_newer(s, key, name, err);
            collect_chunks(s);
        } else if (is_bad_file(st)) {
            quarantine(s, name, key, err);
            collect_chunks(s);
        } else if (st == SEM_OK) {
            if (h->version < KV_FILE_VERSION)
                logf_(s, "agent '%s': read %s in format version %u; its next save writes "
                         "version %d", key, path, h->version, KV_FILE_VERSION);
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
        if (blame)
            *blame = fault;
    }
    key_release(s, key);
    return st;
}

static sem_status ds_load(void *self, const char *key, block_pool *pool, block_table **out,
                          sem_err *err)
{
    return disk_store_load_fault(self, key, pool, out, NULL, err);
}

/* ------------------------------------------------------------ shared prefixes */

/* Whether ns can be a namespace: what a key may hold before its first '.'. */
static int ns_valid(const char *ns)
{
    size_t n = strlen(ns);
    if (n > WARM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = ns[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* How many of names[0..k) the index holds with a file, from the first. */
static uint32_t indexed_run(disk_store *s, const kv_chunk_name *names, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        char hex[KV_CHUNK_HEX_BYTES];
        agent_chunk_row row;
        kv_chunk_hex(&names[i], hex);
        if (agent_index_chunk_get(s->index, hex, &row, NULL) != SEM_OK || row.bytes == 0)
            return i;
    }
    return k;
}

/*
 * Reads chunks 0..*k-1 into t (restored to *k chunks). A missing file
 * shortens the run (*k, t truncated; the index learns it is gone); a bad
 * one is quarantined and fails the read.
 */
static sem_status read_prefix(disk_store *s, const kv_file_header *h, const int32_t *tokens,
                              const kv_chunk_name *root, const kv_chunk_name *names,
                              block_table *t, uint32_t *k, sem_err *err)
{
    uint8_t *buf = malloc(h->chunk_tokens * kv_rows_token_bytes(h) + 8);
    sem_status st = SEM_OK;
    if (!buf)
        st = sem_err_set(err, SEM_ENOMEM, "load_prefix: out of memory for a chunk");
    for (uint32_t i = 0; st == SEM_OK && i < *k; i++) {
        char path[PATH_MAX];
        int fd = -1;
        st = open_chunk(s, &names[i], &fd, path, sizeof path, err);
        if (st == SEM_ENOTFOUND) {
            quarantine_chunk(s, &names[i], 1, NULL);
            *k = i;
            st = i ? block_table_truncate(t, i * h->chunk_tokens, err) : st;
            break;
        }
        if (st != SEM_OK)
            break;
        st = kv_chunk_read(fd, path, h, i, &names[i], i ? &names[i - 1] : root,
                           tokens + (size_t)i * h->chunk_tokens, t, buf, err);
        close(fd);
        if (is_bad_file(st))
            quarantine_chunk(s, &names[i], 0, err);
    }
    free(buf);
    return st;
}

static sem_status ds_load_prefix(void *self, const char *ns, const int32_t *tokens, uint32_t n,
                                 block_pool *pool, const char *name, block_table **out,
                                 sem_err *err)
{
    disk_store *s = self;
    sem_err local = {0}; /* the detail goes into the quarantine log even without err */
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    if (!ns || !pool || !out || (!tokens && n))
        return sem_err_set(err, SEM_EINVAL, "load_prefix: NULL argument");
    if (!ns_valid(ns))
        return sem_err_set(err, SEM_EINVAL, "load_prefix: '%.40s' is not a namespace", ns);
    const cache_spec *spec = block_pool_spec(pool);
    for (uint32_t l = 0; l < spec->n_layers; l++)
        if (spec->layers[l].kind == CACHE_ATTN_SLIDING)
            return sem_err_set(err, SEM_ENOTFOUND,
                               "load_prefix: layer %u is sliding-window; its window is each "
                               "agent's own, never shared", l);
    kv_file_write_opts wo = write_opts(s, NULL);
    kv_file_header h;
    if (n == 0 || kv_file_plan_spec(spec, n, &wo, &h, NULL) != SEM_OK || h.n_shared == 0)
        return sem_err_set(err, SEM_ENOTFOUND,
                           "load_prefix: %u tokens hold no whole chunk of %u", n,
                           n ? h.chunk_tokens : 0);
    kv_chunk_name root, *names = malloc(h.n_shared * sizeof *names);
    if (!names)
        return sem_err_set(err, SEM_ENOMEM, "load_prefix: out of memory for %u names",
                           h.n_shared);
    kv_chunk_root(&h, ns, strlen(ns), &root);
    kv_chunk_names(&h, ns, strlen(ns), tokens, h.n_shared, names);
    uint32_t k = indexed_run(s, names, h.n_shared);
    sem_status st = SEM_OK;
    block_table *t = NULL;
    if (k == 0)
        st = sem_err_set(err, SEM_ENOTFOUND, "load_prefix: no shared chunk starts these tokens");
    else if (!pins_add(s, names, k))
        st = sem_err_set(err, SEM_ENOMEM, "load_prefix: out of memory");
    if (st != SEM_OK) {
        free(names);
        return st;
    }
    uint32_t n_pinned = k;
    t = block_table_create(pool, name, err);
    st = t ? block_table_restore(t, tokens, k * h.chunk_tokens, err)
           : (err->status ? err->status : SEM_ENOMEM);
    if (st == SEM_OK)
        st = read_prefix(s, &h, tokens, &root, names, t, &k, err);
    if (st == SEM_OK && k == 0)
        st = sem_err_set(err, SEM_ENOTFOUND, "load_prefix: the first shared chunk is gone");
    pins_drop(s, names, n_pinned);
    free(names);
    if (st != SEM_OK) {
        block_table_destroy(t);
        return st;
    }
    *out = t;
    return SEM_OK;
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
            char name[NAME_CAP];
            file_name(name, sizeof name, key);
            if (h && st == SEM_EINCOMPAT && kv_file_version_is_newer(h->version))
                keep_newer(s, key, name, err);
            else if (is_bad_file(st))
                quarantine(s, name, key, err);
            collect_chunks(s);
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
        int dir_errno = 0;
        if (had_file) {
            other_drop(s, name); /* it may have been a newer or unreadable file */
            dir_errno = sync_dir(s, "removing a file");
        }
        int had_row = 0;
        st = agent_index_delete(s->index, key, &had_row, err);
        if (st == SEM_OK && !had_file && !had_row)
            st = sem_err_set(err, SEM_ENOTFOUND, "agent '%s' has no saved memory", key);
        else if (st == SEM_OK && dir_errno)
            st = sem_err_set(err, SEM_EIO,
                             "removing agent '%s': fsync %s: %s (the file is deleted, but the "
                             "deletion may not survive a power cut)",
                             key, s->dir, strerror(dir_errno));
    }
    key_release(s, key);
    collect_chunks(s); /* the chunks only it named */
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
    if (counted_total(s, &total, &err) != SEM_OK) {
        logf_(s, "%s", err.detail);
        return 0;
    }
    return total;
}

static const warm_store_ops DISK_STORE_OPS = {
    .save = ds_save,
    .load = ds_load,
    .load_prefix = ds_load_prefix,
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

uint64_t disk_store_fsync_failures(const disk_store *s)
{
    return atomic_load(&s->fsync_failures);
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

/*
 * An agent file that cannot be opened or read (permissions, I/O errors):
 * left where it is and counted in the budget; through its row when it has
 * one (the row is kept: the file may become readable), else as an
 * unreadable file, which budget pressure may delete.
 */
static void keep_unreadable(disk_store *s, const char *name, const char *key,
                            const agent_row *row, const char *why)
{
    struct stat sb;
    s->report.unreadable++;
    if (!row && fstatat(s->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        other_put(s, name, key, OTHER_UNREADABLE, (uint64_t)sb.st_size, mtime_ms_of(&sb));
    logf_(s, "reconcile: cannot read %s/%s (%s); left as it is, counted in the disk budget",
          s->dir, name, why);
}

/* One agent file at open: keep, index, update its row, quarantine, or
 * keep it counted but unused (a newer version, unreadable). */
static sem_status reconcile_file(disk_store *s, const char *name, const char *key,
                                 const agent_row *row, sem_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    disk_store_report *rep = &s->report;
    int fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        keep_unreadable(s, name, key, row, strerror(e));
        return SEM_OK;
    }
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
    } else if (st == SEM_EINCOMPAT && kv_file_version_is_newer(h->version)) {
        /* A later release's file: not ours to judge; kept and counted. */
        rep->newer++;
        if (row) {
            agent_index_delete(s->index, key, NULL, NULL);
            rep->rows_dropped++;
        }
        other_put(s, name, key, OTHER_NEWER, (uint64_t)sb.st_size, mtime_ms_of(&sb));
        logf_(s, "reconcile: kept, counted in the disk budget, never loaded: %s", ferr.detail);
    } else if (st == SEM_EINCOMPAT) { /* a version no release wrote */
        quarantine(s, name, key, &ferr);
        rep->quarantined++;
        if (row)
            rep->rows_dropped++;
    } else if (st != SEM_OK) {
        keep_unreadable(s, name, key, row, ferr.detail);
    } else {
        int64_t mtime = mtime_ms_of(&sb);
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

/* Counts every file already in quarantine/ (they stay until the budget needs room). */
static void count_quarantine(disk_store *s)
{
    int qfd = openat(s->dir_fd, QUARANTINE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = qfd >= 0 ? fdopendir(qfd) : NULL;
    if (!d) {
        if (qfd >= 0)
            close(qfd);
        if (errno != ENOENT)
            logf_(s, "reconcile: cannot list %s/" QUARANTINE_DIR ": %s", s->dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        char name[OTHER_NAME_CAP];
        if (snprintf(name, sizeof name, QUARANTINE_DIR "/%s", e->d_name) >= (int)sizeof name ||
            fstatat(s->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (other_put(s, name, "", OTHER_QUARANTINED, (uint64_t)sb.st_size, mtime_ms_of(&sb)))
            s->report.in_quarantine++;
    }
    closedir(d);
}

static int cmp_chunk_row(const void *a, const void *b)
{
    return strcmp(((const agent_chunk_row *)a)->name, ((const agent_chunk_row *)b)->name);
}

/* Grows *arr (of elem bytes) to hold n + 1; 0 when out of memory. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 1;
    size_t c = *cap ? *cap * 2 : 64;
    void *g = realloc(*arr, c * elem);
    if (!g)
        return 0;
    *arr = g;
    *cap = c;
    return 1;
}

/* The chunk files in chunks/ (by name), deleting interrupted writes. */
static sem_status list_chunk_files(disk_store *s, agent_chunk_row **out, size_t *n, sem_err *err)
{
    *out = NULL;
    *n = 0;
    int dfd = dup(s->chunks_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return sem_err_set(err, SEM_EIO, "list %s/" CHUNK_DIR ": %s", s->dir, strerror(errno));
    }
    rewinddir(d);
    agent_chunk_row *rows = NULL;
    size_t count = 0, cap = 0;
    sem_status st = SEM_OK;
    struct dirent *e;
    while (st == SEM_OK && (e = readdir(d)) != NULL) {
        struct stat sb;
        char hex[KV_CHUNK_HEX_BYTES];
        size_t len = strlen(e->d_name);
        kv_chunk_name name;
        if (fstatat(s->chunks_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (strstr(e->d_name, CHUNK_TEMP_INFIX)) {
            if (unlinkat(s->chunks_fd, e->d_name, 0) == 0)
                s->report.temp_removed++;
            continue;
        }
        if (len != KV_CHUNK_HEX_BYTES - 1 + sizeof CHUNK_SUFFIX - 1 ||
            strcmp(e->d_name + KV_CHUNK_HEX_BYTES - 1, CHUNK_SUFFIX) != 0)
            continue;
        memcpy(hex, e->d_name, KV_CHUNK_HEX_BYTES - 1);
        hex[KV_CHUNK_HEX_BYTES - 1] = '\0';
        if (!kv_chunk_parse_hex(hex, &name))
            continue;
        if (!grow((void **)&rows, &cap, count, sizeof *rows)) {
            st = sem_err_set(err, SEM_ENOMEM, "reconcile: out of memory");
            break;
        }
        memset(&rows[count], 0, sizeof rows[count]);
        memcpy(rows[count].name, hex, sizeof hex);
        rows[count++].bytes = (uint64_t)sb.st_size;
    }
    closedir(d);
    if (st != SEM_OK) {
        free(rows);
        return st;
    }
    if (count)
        qsort(rows, count, sizeof *rows, cmp_chunk_row);
    *out = rows;
    *n = count;
    return SEM_OK;
}

/*
 * The shared chunks agent key's file names, appended to *links; 0 when the
 * file names none. An agent whose header fails is quarantined; one that
 * names a chunk no file holds can never load and is deleted (-1).
 */
static int agent_links(disk_store *s, const char *key, const agent_chunk_row *files,
                       size_t n_files, agent_chunk_link **links, size_t *n_links,
                       size_t *cap_links, sem_status *st, sem_err *err)
{
    char name[NAME_CAP], path[PATH_MAX];
    file_name(name, sizeof name, key);
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    int fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* counted as it is by reconcile_file */
    kv_file_header *h = malloc(sizeof *h);
    kv_chunk_name *names = NULL;
    sem_err ferr = {0};
    sem_status rs = h ? kv_file_read_fixed(fd, path, h, &ferr) : SEM_ENOMEM;
    if (rs == SEM_OK && h->n_shared)
        rs = kv_file_read_header_names(fd, path, h, NULL, &names, &ferr);
    close(fd);
    int result = 0;
    if (rs == SEM_ENOMEM) {
        *st = sem_err_set(err, SEM_ENOMEM, "reconcile: out of memory");
    } else if (is_bad_file(rs)) {
        quarantine(s, name, key, &ferr);
        s->report.quarantined++;
        s->report.rows_dropped++;
    } else if (rs == SEM_OK) {
        for (uint32_t i = 0; i < h->n_shared; i++) {
            agent_chunk_row want;
            kv_chunk_hex(&names[i], want.name);
            if (!bsearch(&want, files, n_files, sizeof *files, cmp_chunk_row)) {
                result = -1;
                logf_(s, "reconcile: deleted %s: its shared chunk %u (%s) is missing", path, i,
                      want.name);
                break;
            }
        }
        for (uint32_t i = 0; result == 0 && i < h->n_shared; i++) {
            if (!grow((void **)links, cap_links, *n_links, sizeof **links)) {
                *st = sem_err_set(err, SEM_ENOMEM, "reconcile: out of memory");
                break;
            }
            agent_chunk_link *l = &(*links)[(*n_links)++];
            snprintf(l->key, sizeof l->key, "%s", key);
            l->pos = i;
            kv_chunk_hex(&names[i], l->name);
        }
    }
    if (result < 0) {
        unlinkat(s->dir_fd, name, 0);
        agent_index_delete(s->index, key, NULL, NULL);
        s->report.rows_dropped++;
        s->report.missing_chunks++;
    }
    free(h);
    free(names);
    return result;
}

/* Rebuilds the chunk tables from chunks/ and the agent files; deletes the
 * chunks no agent names. */
static sem_status reconcile_chunks(disk_store *s, sem_err *err)
{
    agent_chunk_row *files = NULL;
    agent_row *rows = NULL;
    agent_chunk_link *links = NULL;
    size_t n_files = 0, n_rows = 0, n_links = 0, cap_links = 0;
    sem_status st = list_chunk_files(s, &files, &n_files, err);
    if (st == SEM_OK)
        st = agent_index_all(s->index, &rows, &n_rows, err);
    for (size_t i = 0; st == SEM_OK && i < n_rows; i++)
        agent_links(s, rows[i].key, files, n_files, &links, &n_links, &cap_links, &st, err);
    if (st == SEM_OK)
        st = agent_index_chunks_rebuild(s->index, files, n_files, links, n_links, err);
    if (st == SEM_OK) {
        size_t gone = collect_chunks(s);
        s->report.chunks = (uint32_t)(n_files - gone);
        s->report.chunks_removed = (uint32_t)gone;
    }
    free(files);
    free(rows);
    free(links);
    return st;
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
    if (st == SEM_OK)
        st = reconcile_chunks(s, err);
    if (st == SEM_OK)
        count_quarantine(s);
    if (s->report.temp_removed || s->report.quarantined || s->report.missing_chunks)
        sync_dir(s, "reconciling the folder"); /* logged and counted; they are redone next open */
    free(rows);
    names_free(&files);
    return st;
}

/* ------------------------------------------------------------ open, close */

void disk_store_close(disk_store *s)
{
    if (!s)
        return;
    agent_index_close(s->index);
    if (s->chunks_fd >= 0)
        close(s->chunks_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    for (size_t i = 0; i < s->n_busy; i++)
        free(s->busy[i]);
    free(s->busy);
    free(s->other);
    free(s->pins);
    pthread_mutex_destroy(&s->chunk_lock);
    pthread_cond_destroy(&s->busy_cond);
    pthread_mutex_destroy(&s->busy_lock);
    pthread_mutex_destroy(&s->other_lock);
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
    s->dir_fd = s->lock_fd = s->chunks_fd = -1;
    s->fingerprint = o->fingerprint;
    s->payload = payload;
    s->budget = o->budget_bytes;
    s->chunk_tokens = o->chunk_tokens;
    s->whole_files = o->whole_files;
    s->write_hook = o->write_hook;
    s->write_hook_ctx = o->write_hook_ctx;
    s->now_ms = o->now_ms;
    s->now_ctx = o->now_ctx;
    s->log = o->log;
    s->log_ctx = o->log_ctx;
    s->fsync_hook = o->fsync_hook;
    s->fsync_hook_ctx = o->fsync_hook_ctx;
    pthread_mutex_init(&s->busy_lock, NULL);
    pthread_cond_init(&s->busy_cond, NULL);
    pthread_mutex_init(&s->other_lock, NULL);
    pthread_mutex_init(&s->chunk_lock, NULL);
    atomic_init(&s->seq, 0);
    atomic_init(&s->fsync_failures, 0);

    if (fs_make_dirs(s->dir) != 0) {
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
    if (mkdirat(s->dir_fd, CHUNK_DIR, 0755) != 0 && errno != EEXIST) {
        sem_err_set(err, SEM_EIO, "disk store: create %s/" CHUNK_DIR ": %s", s->dir,
                    strerror(errno));
        goto fail;
    }
    s->chunks_fd = openat(s->dir_fd, CHUNK_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->chunks_fd < 0) {
        sem_err_set(err, SEM_EIO, "disk store: open %s/" CHUNK_DIR ": %s", s->dir,
                    strerror(errno));
        goto fail;
    }
    char index_path[PATH_MAX];
    snprintf(index_path, sizeof index_path, "%s/" INDEX_NAME, s->dir);
    s->index = agent_index_open(index_path, err);
    if (!s->index)
        goto fail;
    if (reconcile(s, err) != SEM_OK)
        goto fail;
    if (s->budget) /* a lowered budget, files found: the folder fits from the start */
        enforce_budget(s, "", 0);
    return s;
fail:
    disk_store_close(s);
    return NULL;
}

/* ------------------------------------------------------------ transfer
 *
 * Export reads an agent's files under its key mark, so they are one
 * version; import writes them as a save does (budget first, chunks before
 * the agent file, temp files, fsync, rename, folder fsync, index), and
 * renames nothing whose header fails a check. The rows' checksums are
 * left to the codec on the load that follows (disk_store_load_fault says
 * which file failed), so a copy is verified once, not twice.
 */

/* Reads n bytes at offset 0 of fd. */
static sem_status read_all(int fd, const char *path, uint8_t *buf, size_t n, sem_err *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, buf + done, n - done, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return sem_err_set(err, SEM_EIO, "read %s: %s", path, strerror(errno));
        if (got == 0)
            return sem_err_set(err, SEM_ECORRUPT, "read %s: %zu bytes, expected %zu", path,
                               done, n);
        done += (size_t)got;
    }
    return SEM_OK;
}

void disk_store_agent_free(disk_store_agent *a)
{
    if (!a)
        return;
    free(a->file);
    for (uint32_t i = 0; a->chunks && i < a->n_chunks; i++)
        free(a->chunks[i].data);
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

/* Reads shared chunk `name` (which an agent names) into c. */
static sem_status export_chunk(disk_store *s, const kv_chunk_name *name, disk_store_chunk *c,
                               sem_err *err)
{
    char path[PATH_MAX];
    int fd;
    kv_chunk_hex(name, c->name);
    sem_status st = open_chunk(s, name, &fd, path, sizeof path, err);
    if (st == SEM_ENOTFOUND)
        return sem_err_set(err, SEM_ECORRUPT, "%s is missing", path);
    if (st != SEM_OK)
        return st;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        st = sem_err_set(err, SEM_EIO, "stat %s: %s", path, strerror(errno));
    else if (!(c->data = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)))
        st = sem_err_set(err, SEM_ENOMEM, "%s: out of memory for %lld bytes", path,
                         (long long)sb.st_size);
    else {
        c->len = (size_t)sb.st_size;
        st = read_all(fd, path, c->data, c->len, err);
    }
    close(fd);
    return st;
}

/* Export with key marked: the file, then its chunks. */
static sem_status export_marked(disk_store *s, const char *key, disk_store_agent *out,
                                sem_err *err)
{
    char path[PATH_MAX];
    int fd;
    sem_status st = open_file(s, key, path, &fd, err);
    if (st != SEM_OK)
        return st;
    kv_chunk_name *names = NULL;
    st = kv_file_read_header_names(fd, path, &out->header, NULL, &names, err);
    if (st == SEM_OK)
        st = kv_file_check(&out->header, path, s->fingerprint, NULL, err);
    if (st == SEM_OK && !(out->file = malloc(out->header.file_bytes)))
        st = sem_err_set(err, SEM_ENOMEM, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)out->header.file_bytes);
    if (st == SEM_OK) {
        out->file_len = (size_t)out->header.file_bytes;
        st = read_all(fd, path, out->file, out->file_len, err);
    }
    close(fd);
    uint32_t n = out->header.n_shared;
    if (st == SEM_OK && n && !(out->chunks = calloc(n, sizeof *out->chunks)))
        st = sem_err_set(err, SEM_ENOMEM, "%s: out of memory for %u chunks", path, n);
    for (uint32_t i = 0; st == SEM_OK && i < n; i++) {
        out->n_chunks = i + 1;
        st = export_chunk(s, &names[i], &out->chunks[i], err);
    }
    free(names);
    return st;
}

sem_status disk_store_export(disk_store *s, const char *key, disk_store_agent *out,
                             sem_err *err)
{
    memset(out, 0, sizeof *out);
    sem_status st = key_begin(s, key, err);
    if (st != SEM_OK)
        return st;
    st = export_marked(s, key, out, err);
    key_release(s, key);
    if (st != SEM_OK) {
        sem_err_wrap(err, "exporting agent '%s'", key);
        disk_store_agent_free(out);
    }
    return st;
}

sem_status disk_store_plan_header(const disk_store *s, const cache_spec *spec,
                                  kv_file_header *out, sem_err *err)
{
    kv_file_write_opts wo = write_opts(s, NULL);
    return kv_file_plan_spec(spec, 1, &wo, out, err);
}
