/*
 * redis_tier.c - the remote tier on Redis over one redis_conn, TCP or TLS
 * (redis_tier.h; the key layout, consistency and budget are in
 * docs/remote-tier.md).
 *
 * State and its lock: everything below `lock` in struct redis_tier (the
 * connection, the backoff, the counters) is guarded by that one mutex,
 * held for the whole of each operation, so commands of different threads
 * never interleave on the connection. Each operation ends by copying the
 * counters to `shown` (under `shown_lock`), which stats() reads, so a
 * readiness probe never waits for a command in flight. The rest is
 * read-only after open.
 *
 * Connection states:
 *
 *   DOWN (c closed, retry_at in the future)  --time passes-->  DOWN, may retry
 *   DOWN, may retry  --connect (and TLS), AUTH, SELECT ok-->  OK (c open)
 *   DOWN, may retry  --any failure-->  DOWN, retry_at = now + backoff, backoff doubles
 *   OK  --I/O error or timeout-->  DOWN (c closed), as above
 *   OK  --a command that succeeds-->  OK, backoff back to BACKOFF_MIN_MS
 *
 * While DOWN and before retry_at, every operation answers SEM_EBUSY at
 * once without touching the network, so a dead Redis costs a request
 * nothing. A reply that is an error (OOM at maxmemory, a script's refusal)
 * leaves the connection up: Redis answered, it just said no.
 */
#include "redis_tier.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/deadline.h"
#include "redis_conn.h"
#include "redis_scripts.h"
#include "redis_tls.h"
#include "redis_url.h"

#define KEY_PREFIX "sem:v1:"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DEFAULT_TIMEOUT_MS 500
/* A chunk written ahead of its index expires after this long unless a
 * commit claims it, so a writer killed between the two leaks nothing. */
#define PENDING_CHUNK_MS 600000
#define NAME_MAX_BYTES 512
#define N_BOOK_KEYS 5

struct redis_tier {
    redis_url url;
    char where[REDIS_URL_HOST_MAX + REDIS_URL_CRED_MAX + 64]; /* the URL without its password */
    uint64_t budget;
    uint32_t ttl_s;
    uint32_t timeout_ms;
    void (*log)(void *ctx, const char *message);
    void *log_ctx;

    redis_tls *tls;       /* rediss://: the TLS context; NULL for redis:// */

    pthread_mutex_t lock;
    redis_conn *c;        /* closed while DOWN */
    double retry_at;      /* deadline_now_ms() before which no reconnect is tried */
    uint32_t backoff_ms;  /* the next backoff */
    int was_up;           /* for logging state changes once */
    remote_stats st;

    /* The counters as of the last operation's end, for stats(): readiness
     * and metrics read them without waiting for a command in flight. */
    pthread_mutex_t shown_lock;
    remote_stats shown;
};

static const char *const BOOK_KEYS[N_BOOK_KEYS] = {
    KEY_PREFIX "lru", KEY_PREFIX "agents", KEY_PREFIX "refs", KEY_PREFIX "sizes",
    KEY_PREFIX "bytes",
};

/* Ends an operation: publishes the counters for stats(), then unlocks. */
static void unlock_publish(redis_tier *r)
{
    pthread_mutex_lock(&r->shown_lock);
    r->shown = r->st;
    pthread_mutex_unlock(&r->shown_lock);
    pthread_mutex_unlock(&r->lock);
}

static void logf_(const redis_tier *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const redis_tier *r, const char *fmt, ...)
{
    if (!r->log)
        return;
    char msg[REDIS_URL_PATH_MAX * 3 + 1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->log(r->log_ctx, msg);
}

/* ------------------------------------------------------------ connection */

/* Drops the connection after `what` failed (why: the detail) and
 * schedules the next try. Returns SEM_EIO with the detail in err. Call
 * with the lock held. */
static sem_status conn_fail(redis_tier *r, const char *what, const char *why, int timed_out,
                            sem_err *err)
{
    if (timed_out)
        r->st.timeouts++;
    redis_conn_close(r->c);
    r->st.state = REMOTE_DOWN;
    r->retry_at = deadline_now_ms() + r->backoff_ms;
    uint32_t waited = r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    if (r->was_up)
        logf_(r, "remote tier %s is down (%s: %s%s); retrying with backoff", r->where, what,
              why, timed_out ? ", timed out" : "");
    r->was_up = 0;
    return sem_err_set(err, SEM_EIO, "remote tier %s: %s: %s%s (next try in %u ms)", r->where,
                       what, why, timed_out ? " (timed out)" : "", waited);
}

/* The connection's own failure e (it closed itself) as conn_fail. */
static sem_status io_fail(redis_tier *r, const char *what, const sem_err *e, sem_err *err)
{
    return conn_fail(r, what, e->detail, redis_conn_timed_out(r->c), err);
}

/* Sends argv and reads its reply; NULL after conn_fail (err set). */
static redisReply *run(redis_tier *r, const char *what, int argc, const char **argv,
                       const size_t *lens, sem_err *err)
{
    sem_err e = {0};
    redisReply *rep = NULL;
    if (redis_conn_command(r->c, argc, argv, lens, &rep, &e) != SEM_OK)
        io_fail(r, what, &e, err);
    return rep;
}

/* A setup command (AUTH, SELECT) whose reply must not be an error. */
static sem_status setup_command(redis_tier *r, const char *what, int argc, const char **argv,
                                sem_err *err)
{
    redisReply *rep = run(r, what, argc, argv, NULL, err);
    if (!rep)
        return SEM_EIO;
    char why[160] = "";
    if (rep->type == REDIS_REPLY_ERROR)
        snprintf(why, sizeof why, "refused (%.100s)", rep->str);
    else if (rep->type != REDIS_REPLY_STATUS && rep->type != REDIS_REPLY_INTEGER)
        snprintf(why, sizeof why, "unexpected reply type %d", rep->type);
    freeReplyObject(rep);
    return why[0] ? conn_fail(r, what, why, 0, err) : SEM_OK;
}

/* Connects (with the TLS handshake for rediss://), authenticates and
 * selects the database. With the lock held. */
static sem_status conn_open(redis_tier *r, sem_err *err)
{
    sem_err e = {0};
    if (redis_conn_connect(r->c, &e) != SEM_OK)
        return io_fail(r, "connect", &e, err);
    if (r->url.has_password) {
        const char *auth_user[3] = {"AUTH", r->url.user, r->url.password};
        const char *auth[2] = {"AUTH", r->url.password};
        sem_status st = r->url.user[0] ? setup_command(r, "AUTH", 3, auth_user, err)
                                       : setup_command(r, "AUTH", 2, auth, err);
        if (st != SEM_OK)
            return st;
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *select[2] = {"SELECT", db};
        if (setup_command(r, "SELECT", 2, select, err) != SEM_OK)
            return SEM_EIO;
    }
    return SEM_OK;
}

/* The connection, opened if the backoff allows; SEM_EBUSY while backing off. */
static sem_status conn_get(redis_tier *r, sem_err *err)
{
    if (redis_conn_is_open(r->c))
        return SEM_OK;
    double now = deadline_now_ms();
    if (now < r->retry_at)
        return sem_err_set(err, SEM_EBUSY, "remote tier %s is down; next try in %.0f ms",
                           r->where, r->retry_at - now);
    return conn_open(r, err);
}

/* After a command that succeeded. */
static void conn_good(redis_tier *r)
{
    r->backoff_ms = BACKOFF_MIN_MS;
    r->st.state = REMOTE_OK;
    if (!r->was_up) {
        char how[REDIS_URL_PATH_MAX * 3 + 256];
        redis_url_describe_tls(&r->url, how, sizeof how);
        logf_(r, "remote tier %s is up%s%s%s", r->where, how[0] ? " (" : "", how,
              how[0] ? ")" : "");
    }
    r->was_up = 1;
}

/* Whether a reply is Redis refusing a write at maxmemory. */
static int is_oom(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "OOM", 3) == 0;
}

/* ------------------------------------------------------------ names */

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

static sem_status names_ok(const char *space, const char *key, sem_err *err)
{
    if (!name_ok(space) || !name_ok(key))
        return sem_err_set(err, SEM_EINVAL,
                           "remote tier: space and key must be 1..%d bytes without spaces or "
                           "control characters", NAME_MAX_BYTES);
    return SEM_OK;
}

/* "sem:v1:<space>:<kind>:<name>", malloc'd. */
static char *key_of(const char *space, char kind, const char *name)
{
    size_t cap = sizeof KEY_PREFIX + strlen(space) + strlen(name) + 8;
    char *k = malloc(cap);
    if (k)
        snprintf(k, cap, KEY_PREFIX "%s:%c:%s", space, kind, name);
    return k;
}

/* EVAL script with the bookkeeping keys and args[0..n). */
static redisReply *eval(redis_tier *r, const char *what, const char *script,
                        const char **args, const size_t *lens, int n, sem_err *err)
{
    int argc = 3 + N_BOOK_KEYS + n;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *alen = malloc((size_t)argc * sizeof *alen);
    if (!argv || !alen) {
        free(argv);
        free(alen);
        sem_err_set(err, SEM_ENOMEM, "remote tier: %s: out of memory", what);
        return NULL;
    }
    char nkeys[8];
    snprintf(nkeys, sizeof nkeys, "%d", N_BOOK_KEYS);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = nkeys;
    for (int i = 0; i < N_BOOK_KEYS; i++)
        argv[3 + i] = BOOK_KEYS[i];
    for (int i = 0; i < 3 + N_BOOK_KEYS; i++)
        alen[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++) {
        argv[3 + N_BOOK_KEYS + i] = args[i];
        alen[3 + N_BOOK_KEYS + i] = lens ? lens[i] : strlen(args[i]);
    }
    redisReply *rep = run(r, what, argc, argv, alen, err);
    free(argv);
    free(alen);
    return rep;
}

/* ------------------------------------------------------------ put */

/* Which of keys[0..n) Redis lacks (one pipelined round trip of EXISTS). */
static sem_status chunks_missing(redis_tier *r, char **keys, size_t n, int *missing,
                                 sem_err *err)
{
    sem_err e = {0};
    for (size_t i = 0; i < n; i++) {
        const char *argv[2] = {"EXISTS", keys[i]};
        if (redis_conn_append(r->c, 2, argv, NULL, &e) != SEM_OK)
            return io_fail(r, "EXISTS of a chunk", &e, err);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (redis_conn_read(r->c, &rep, &e) != SEM_OK)
            return io_fail(r, "EXISTS of a chunk", &e, err);
        missing[i] = !(rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);
        freeReplyObject(rep);
    }
    return SEM_OK;
}

/* SET NX PX of the missing chunks, pipelined. */
static sem_status chunks_write(redis_tier *r, char **keys, const remote_blob *chunks, size_t n,
                               const int *missing, sem_err *err)
{
    char px[24];
    snprintf(px, sizeof px, "%d", PENDING_CHUNK_MS);
    size_t sent = 0;
    sem_err e = {0};
    for (size_t i = 0; i < n; i++) {
        if (!missing[i])
            continue;
        const char *argv[6] = {"SET", keys[i], (const char *)chunks[i].data, "NX", "PX", px};
        size_t lens[6] = {3, strlen(keys[i]), chunks[i].len, 2, 2, strlen(px)};
        if (redis_conn_append(r->c, 6, argv, lens, &e) != SEM_OK)
            return io_fail(r, "SET of a chunk", &e, err);
        sent++;
    }
    sem_status st = SEM_OK;
    for (size_t i = 0; i < sent; i++) {
        redisReply *rep = NULL;
        if (redis_conn_read(r->c, &rep, &e) != SEM_OK)
            return io_fail(r, "SET of a chunk", &e, err);
        if (st == SEM_OK && rep->type == REDIS_REPLY_ERROR) {
            if (is_oom(rep))
                r->st.full++;
            st = sem_err_set(err, SEM_EIO, "remote tier %s: SET of a chunk refused: %s",
                             r->where, rep->str);
        }
        freeReplyObject(rep);
    }
    return st;
}

/* EVAL of the commit script: the index, references, budget. */
static sem_status commit(redis_tier *r, const char *ikey, const uint8_t *index, size_t len,
                         char **ckeys, size_t n, sem_err *err)
{
    char now[24], budget[24], ttl[16];
    snprintf(now, sizeof now, "%lld", (long long)deadline_wall_ms());
    snprintf(budget, sizeof budget, "%llu", (unsigned long long)r->budget);
    snprintf(ttl, sizeof ttl, "%u", r->ttl_s);
    const char **args = malloc((5 + n) * sizeof *args);
    size_t *lens = malloc((5 + n) * sizeof *lens);
    if (!args || !lens) {
        free(args);
        free(lens);
        return sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory for %zu chunk names", n);
    }
    const char *fixed[5] = {ikey, (const char *)index, now, budget, ttl};
    for (size_t i = 0; i < 5; i++) {
        args[i] = fixed[i];
        lens[i] = i == 1 ? len : strlen(fixed[i]);
    }
    for (size_t i = 0; i < n; i++) {
        args[5 + i] = ckeys[i];
        lens[5 + i] = strlen(ckeys[i]);
    }
    redisReply *rep = eval(r, "commit of an agent", REDIS_SCRIPT_COMMIT, args, lens, (int)(5 + n),
                           err);
    free(args);
    free(lens);
    if (!rep)
        return err ? err->status : SEM_EIO;
    sem_status st = SEM_OK;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        r->st.bytes = (uint64_t)rep->element[0]->integer;
        r->st.evictions += (uint64_t)rep->element[1]->integer;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        if (is_oom(rep))
            r->st.full++;
        st = sem_err_set(err, SEM_EIO, "remote tier %s: commit of '%s' refused: %s", r->where,
                         ikey, rep->str);
    } else {
        st = sem_err_set(err, SEM_EIO, "remote tier %s: commit of '%s': unexpected reply",
                         r->where, ikey);
    }
    freeReplyObject(rep);
    return st;
}

static void free_keys(char **keys, size_t n)
{
    if (keys)
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
    free(keys);
}

static sem_status put_locked(redis_tier *r, const char *space, const char *key,
                             const uint8_t *index, size_t index_len, const remote_blob *chunks,
                             size_t n, sem_err *err)
{
    char *ikey = key_of(space, 'a', key);
    char **ckeys = calloc(n ? n : 1, sizeof *ckeys);
    int *missing = calloc(n ? n : 1, sizeof *missing);
    sem_status st = ikey && ckeys && missing ? SEM_OK
                                             : sem_err_set(err, SEM_ENOMEM, "remote tier: out of "
                                                           "memory writing agent '%s'", key);
    for (size_t i = 0; st == SEM_OK && i < n; i++) {
        if (!name_ok(chunks[i].name))
            st = sem_err_set(err, SEM_EINVAL, "remote tier: chunk %zu of '%s' has a bad name",
                             i, key);
        else if (!(ckeys[i] = key_of(space, 'c', chunks[i].name)))
            st = sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory");
    }
    if (st == SEM_OK)
        st = conn_get(r, err);
    if (st == SEM_OK && n)
        st = chunks_missing(r, ckeys, n, missing, err);
    if (st == SEM_OK && n)
        st = chunks_write(r, ckeys, chunks, n, missing, err);
    if (st == SEM_OK)
        st = commit(r, ikey, index, index_len, ckeys, n, err);
    free(ikey);
    free_keys(ckeys, n);
    free(missing);
    return st;
}

static sem_status rt_put_agent(void *self, const char *space, const char *key,
                               const uint8_t *index, size_t index_len, const remote_blob *chunks,
                               size_t n_chunks, sem_err *err)
{
    redis_tier *r = self;
    if (names_ok(space, key, err) != SEM_OK)
        return SEM_EINVAL;
    pthread_mutex_lock(&r->lock);
    sem_status st = put_locked(r, space, key, index, index_len, chunks, n_chunks, err);
    if (st == SEM_OK) {
        r->st.puts++;
        conn_good(r);
    } else {
        r->st.put_failures++;
    }
    unlock_publish(r);
    return st;
}

/* ------------------------------------------------------------ get, remove */

/* Copies a string reply into a malloc'd buffer. */
static sem_status take_blob(redisReply *rep, uint8_t **data, size_t *len, const char *what,
                            sem_err *err)
{
    if (rep->type == REDIS_REPLY_NIL)
        return sem_err_set(err, SEM_ENOTFOUND, "remote tier: %s is not there", what);
    if (rep->type != REDIS_REPLY_STRING)
        return sem_err_set(err, SEM_EIO, "remote tier: %s: unexpected reply type %d", what,
                           rep->type);
    *data = malloc(rep->len ? rep->len : 1);
    if (!*data)
        return sem_err_set(err, SEM_ENOMEM, "remote tier: %s: out of memory for %zu bytes",
                           what, rep->len);
    memcpy(*data, rep->str, rep->len);
    *len = rep->len;
    return SEM_OK;
}

static sem_status get_agent_locked(redis_tier *r, const char *ikey, uint8_t **index,
                                   size_t *len, sem_err *err)
{
    sem_status st = conn_get(r, err);
    if (st != SEM_OK)
        return st;
    char now[24], ttl[16];
    snprintf(now, sizeof now, "%lld", (long long)deadline_wall_ms());
    snprintf(ttl, sizeof ttl, "%u", r->ttl_s);
    const char *args[3] = {ikey, now, ttl};
    redisReply *rep = eval(r, "read of an agent", REDIS_SCRIPT_GET, args, NULL, 3, err);
    if (!rep)
        return err ? err->status : SEM_EIO;
    conn_good(r);
    st = take_blob(rep, index, len, ikey, err);
    freeReplyObject(rep);
    return st;
}

static sem_status rt_get_agent(void *self, const char *space, const char *key, uint8_t **index,
                               size_t *len, sem_err *err)
{
    redis_tier *r = self;
    *index = NULL;
    *len = 0;
    if (names_ok(space, key, err) != SEM_OK)
        return SEM_EINVAL;
    char *ikey = key_of(space, 'a', key);
    if (!ikey)
        return sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory");
    pthread_mutex_lock(&r->lock);
    r->st.gets++;
    sem_status st = get_agent_locked(r, ikey, index, len, err);
    if (st == SEM_OK)
        r->st.get_hits++;
    else if (st != SEM_ENOTFOUND)
        r->st.get_failures++;
    unlock_publish(r);
    free(ikey);
    return st;
}

static sem_status get_chunk_locked(redis_tier *r, const char *ckey, uint8_t **data, size_t *len,
                                   sem_err *err)
{
    sem_status st = conn_get(r, err);
    if (st != SEM_OK)
        return st;
    const char *argv[2] = {"GET", ckey};
    redisReply *rep = run(r, "read of a chunk", 2, argv, NULL, err);
    if (!rep)
        return err ? err->status : SEM_EIO;
    conn_good(r);
    st = take_blob(rep, data, len, ckey, err);
    freeReplyObject(rep);
    if (st == SEM_OK && r->ttl_s) {
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%u", r->ttl_s);
        const char *expire[3] = {"EXPIRE", ckey, ttl};
        redisReply *e = run(r, "EXPIRE of a chunk", 3, expire, NULL, NULL);
        if (e) /* else the connection is down; the read itself succeeded */
            freeReplyObject(e);
    }
    return st;
}

static sem_status rt_get_chunk(void *self, const char *space, const char *name, uint8_t **data,
                               size_t *len, sem_err *err)
{
    redis_tier *r = self;
    *data = NULL;
    *len = 0;
    if (names_ok(space, name, err) != SEM_OK)
        return SEM_EINVAL;
    char *ckey = key_of(space, 'c', name);
    if (!ckey)
        return sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory");
    pthread_mutex_lock(&r->lock);
    sem_status st = get_chunk_locked(r, ckey, data, len, err);
    if (st != SEM_OK && st != SEM_ENOTFOUND)
        r->st.get_failures++;
    unlock_publish(r);
    free(ckey);
    return st;
}

/* FORGET of an agent's index key; *was whether it was there. */
static sem_status forget_locked(redis_tier *r, const char *ikey, int *was, sem_err *err)
{
    sem_status st = conn_get(r, err);
    if (st != SEM_OK)
        return st;
    const char *args[1] = {ikey};
    redisReply *rep = eval(r, "removal of an agent", REDIS_SCRIPT_FORGET, args, NULL, 1, err);
    if (!rep)
        return err ? err->status : SEM_EIO;
    if (rep->type == REDIS_REPLY_INTEGER) {
        *was = rep->integer != 0;
        conn_good(r);
    } else {
        st = sem_err_set(err, SEM_EIO, "remote tier %s: removal of '%s' refused: %s", r->where,
                         ikey, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    freeReplyObject(rep);
    return st;
}

static sem_status rt_remove_agent(void *self, const char *space, const char *key, sem_err *err)
{
    redis_tier *r = self;
    if (names_ok(space, key, err) != SEM_OK)
        return SEM_EINVAL;
    char *ikey = key_of(space, 'a', key);
    if (!ikey)
        return sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory");
    int was = 0;
    pthread_mutex_lock(&r->lock);
    sem_status st = forget_locked(r, ikey, &was, err);
    unlock_publish(r);
    free(ikey);
    if (st == SEM_OK && !was)
        return sem_err_set(err, SEM_ENOTFOUND, "remote tier: agent '%s' is not there", key);
    return st;
}

/* A chunk's name: 32 lowercase hex digits (kv_chunk.h). */
static int is_chunk_name(const char *s)
{
    size_t n = strlen(s);
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/*
 * A blob that failed verification: a chunk's name (32 hex digits) deletes
 * that chunk (its accounting stays until its last agent goes, and the next
 * writer of that content writes it again); anything else is an agent key,
 * whose agent is forgotten.
 */
static void rt_report_corrupt(void *self, const char *space, const char *key_or_chunk)
{
    redis_tier *r = self;
    if (names_ok(space, key_or_chunk, NULL) != SEM_OK)
        return;
    int chunk = is_chunk_name(key_or_chunk);
    char *k = key_of(space, chunk ? 'c' : 'a', key_or_chunk);
    if (!k)
        return;
    pthread_mutex_lock(&r->lock);
    r->st.corrupt++;
    if (chunk) {
        if (conn_get(r, NULL) == SEM_OK) {
            const char *argv[2] = {"DEL", k};
            redisReply *rep = run(r, "DEL of a corrupt chunk", 2, argv, NULL, NULL);
            if (rep)
                freeReplyObject(rep);
        }
    } else {
        int was = 0;
        forget_locked(r, k, &was, NULL);
    }
    unlock_publish(r);
    logf_(r, "remote tier %s: dropped %s, which failed verification", r->where, k);
    free(k);
}

static void rt_stats(void *self, remote_stats *out)
{
    redis_tier *r = self;
    pthread_mutex_lock(&r->shown_lock);
    *out = r->shown;
    pthread_mutex_unlock(&r->shown_lock);
}

static const remote_tier_ops REDIS_TIER_OPS = {
    .put_agent = rt_put_agent,
    .get_agent = rt_get_agent,
    .get_chunk = rt_get_chunk,
    .remove_agent = rt_remove_agent,
    .report_corrupt = rt_report_corrupt,
    .stats = rt_stats,
};

/* ------------------------------------------------------------ lifetime */

/* The TLS context (rediss://) and the connection, still closed. */
static sem_status open_transport(redis_tier *r, sem_err *err)
{
    if (r->url.tls) {
        redis_tls_opts t = {.ca_file = r->url.tls_ca, .cert_file = r->url.tls_cert,
                            .key_file = r->url.tls_key, .insecure = r->url.tls_insecure};
        sem_err e = {0};
        r->tls = redis_tls_new(&t, &e);
        if (!r->tls)
            return sem_err_set(err, e.status, "%s", e.detail);
        if (r->url.tls_insecure)
            logf_(r, "remote tier %s: insecure=1: the server's certificate and name are NOT "
                     "verified; the link is encrypted, but anyone on the path can pose as "
                     "the server", r->where);
    }
    redis_conn_opts c = {.host = r->url.host, .port = r->url.port, .timeout_ms = r->timeout_ms,
                         .tls = r->tls};
    r->c = redis_conn_new(&c, err);
    return r->c ? SEM_OK : err ? err->status : SEM_ENOMEM;
}

/* Frees what open made, for an open that failed part-way. */
static void open_undo(redis_tier *r, int locks)
{
    redis_conn_free(r->c);
    redis_tls_free(r->tls);
    if (locks > 1)
        pthread_mutex_destroy(&r->shown_lock);
    if (locks > 0)
        pthread_mutex_destroy(&r->lock);
    memset(&r->url, 0, sizeof r->url);
    free(r);
}

redis_tier *redis_tier_open(const redis_tier_opts *o, sem_err *err)
{
    if (!o)
        return sem_err_set(err, SEM_EINVAL, "remote tier: NULL options"), NULL;
    redis_tier *r = calloc(1, sizeof *r);
    if (!r)
        return sem_err_set(err, SEM_ENOMEM, "remote tier: out of memory"), NULL;
    if (redis_url_parse(o->url, &r->url, err) != SEM_OK) {
        open_undo(r, 0);
        return NULL;
    }
    redis_url_describe(&r->url, r->where, sizeof r->where);
    r->budget = o->budget_bytes;
    r->ttl_s = o->ttl_s;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->log = o->log;
    r->log_ctx = o->log_ctx;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->was_up = 1; /* so that a first failure is logged */
    r->st.state = REMOTE_DOWN;
    if (open_transport(r, err) != SEM_OK) {
        open_undo(r, 0);
        return NULL;
    }
    int locks = pthread_mutex_init(&r->lock, NULL) == 0;
    locks += locks && pthread_mutex_init(&r->shown_lock, NULL) == 0;
    if (locks < 2) {
        open_undo(r, locks);
        return sem_err_set(err, SEM_ENOMEM, "remote tier: cannot create its lock"), NULL;
    }
    pthread_mutex_lock(&r->lock);
    if (conn_get(r, NULL) == SEM_OK) {
        const char *ping[1] = {"PING"};
        redisReply *rep = run(r, "PING", 1, ping, NULL, NULL);
        if (rep) {
            freeReplyObject(rep);
            conn_good(r);
        }
    }
    unlock_publish(r);
    return r;
}

void redis_tier_close(redis_tier *r)
{
    if (!r)
        return;
    redis_conn_free(r->c);
    redis_tls_free(r->tls); /* after its last session */
    pthread_mutex_destroy(&r->shown_lock);
    pthread_mutex_destroy(&r->lock);
    memset(&r->url, 0, sizeof r->url); /* the password does not linger in freed memory */
    free(r);
}

remote_tier redis_tier_port(redis_tier *r)
{
    return (remote_tier){.ops = &REDIS_TIER_OPS, .self = r};
}
