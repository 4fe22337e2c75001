/*
 * model_registry.c - served models, their loads, reloads and unloads.
 *
 * State, all under r->mu:
 *   entry      one served name. live: the instance requests get; pending:
 *              a reload's new instance, model loaded, waiting for the old
 *              one to let go of the cache folder; waiters: exchanges
 *              parked until the entry settles (loaded or failed).
 *   instance   one loaded file: a serving stack and the backend over it,
 *              with a count of leases. Retired (no longer an entry's live
 *              instance) it is freed by the registry thread once its
 *              leases reach 0.
 *
 * The registry thread takes one job at a time, in this order: free a
 * retired instance nobody holds (and whose warm store no other instance
 * borrows); finish a reload whose old instance is gone; start a reload
 * (of the same model: switch at once, sharing the store); load a model
 * someone asked for. Slow work (model
 * load, agent writes) runs with the lock released; the entry's flags keep
 * other jobs off it meanwhile (busy). Every change broadcasts r->cv, on
 * which both the thread and model_registry_open wait.
 */
#include "model_registry.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "adapters/http/http_api.h"
#include "base/deadline.h"
#include "base/fs_dirs.h"
#include "base/sem_mutex.h"

typedef struct entry entry;

typedef struct instance {
    serving_stack st;
    http_backend be;
    model_registry *r;
    entry *owner;
    uint32_t leases;
    uint64_t ram;            /* bytes: serving_stack_ram_bytes */
    struct instance *next;   /* in r->retired */
} instance;

typedef struct waiter {
    void (*wake)(void *);
    void *arg;
} waiter;

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct entry {
    char name[HTTP_MODEL_NAME_MAX];
    char path[PATH_MAX];
    int from_dir;     /* found in --models-dir (a rescan may drop it) */
    int gone;         /* its file left the folder: not served */
    file_id id;
    instance *live;
    instance *pending;
    int want_load, want_reload;
    int busy;         /* the thread works on it with the lock released */
    int preload;      /* a -m model: loaded at start */
    waiter *waiters;
    size_t n_waiters, cap_waiters;
    /* Figures of the last load, kept while unloaded for GET /v1/models. */
    uint32_t n_ctx, n_ctx_train, loads;
    uint64_t pool_bytes;
    char arch[32], tmpl[64], error[256];
    sem_status error_status; /* of the last failed load */
    int error_is_room; /* the last load failed for want of room under the budget */
    int64_t loaded_at, last_used;
};

struct model_registry {
    model_registry_opts o;
    sem_mutex mu;
    pthread_cond_t cv;
    entry **models; /* in listing order: -m models, then the folder's by name */
    size_t n_models;
    instance *retired;
    pthread_t thread;
    int thread_started, stop;
    int single; /* one -m model and no folder: its memory is the cache folder itself */
};

/* ---------------------------------------------------------------- logging, names */

static void log_line(const char *level, const char *message)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "level", level, "source", "models", "message", message);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s) {
        fprintf(stderr, "%s\n", s);
        free(s);
    }
}

static void logf_(model_registry *r, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(model_registry *r, const char *level, const char *fmt, ...)
{
    if (r->o.stack.quiet)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line(level, msg);
}

void model_registry_name_of(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

/* Served names are metric labels and path segments: [A-Za-z0-9._:+-],
 * not starting with '.'. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= HTTP_MODEL_NAME_MAX || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._:+-", *p)))
            return 0;
    return 1;
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int stat_id(const char *path, file_id *id)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    if (S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    *id = (file_id){sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim};
    return 0;
}

static int same_id(const file_id *a, const file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The served entry of that exact name (not gone), or NULL. */
static entry *find(model_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_models; i++)
        if (!r->models[i]->gone && strcmp(r->models[i]->name, name) == 0)
            return r->models[i];
    return NULL;
}

static entry *find_any(model_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_models; i++)
        if (strcmp(r->models[i]->name, name) == 0)
            return r->models[i];
    return NULL;
}

/* ---------------------------------------------------------------- waiters */

static void wake_all(entry *e)
{
    for (size_t i = 0; i < e->n_waiters; i++)
        e->waiters[i].wake(e->waiters[i].arg);
    e->n_waiters = 0;
}

static sem_status add_waiter(entry *e, void (*wake)(void *), void *arg, sem_err *err)
{
    for (size_t i = 0; i < e->n_waiters; i++)
        if (e->waiters[i].arg == arg)
            return SEM_OK;
    if (e->n_waiters == e->cap_waiters) {
        size_t cap = e->cap_waiters ? e->cap_waiters * 2 : 8;
        waiter *w = realloc(e->waiters, cap * sizeof *w);
        if (!w)
            return sem_err_set(err, SEM_ENOMEM, "out of memory");
        e->waiters = w;
        e->cap_waiters = cap;
    }
    e->waiters[e->n_waiters++] = (waiter){wake, arg};
    return SEM_OK;
}

/* ---------------------------------------------------------------- instances */

static void backend_remote(void *user, metrics_remote *out)
{
    instance *in = user;
    serving_stack_remote_stats(&in->st, &out->stats, &out->queued);
    out->enabled = out->stats.state != REMOTE_OFF;
    out->budget_bytes = in->r->o.remote_budget;
}

static void backend_stats(void *user, metrics_engine *out)
{
    instance *in = user;
    engine_stats st = engine_get_stats(in->st.e);
    *out = (metrics_engine){.available = 1,
                            .model = in->owner->name,
                            .ram_bytes = in->ram,
                            .running = st.running,
                            .waiting = st.waiting,
                            .agents_hot = st.agents_hot,
                            .agents_warm = st.agents_warm,
                            .pool_used = st.pool_used,
                            .pool_total = st.pool_total,
                            .pool_shared = st.pool_shared,
                            .pool_pinned = st.pool_pinned,
                            .forks = st.forks,
                            .pool_block_bytes = block_pool_block_bytes(in->st.pool),
                            .hits_hot = st.hits_hot,
                            .hits_warm = st.hits_warm,
                            .misses = st.misses,
                            .evictions = st.evictions,
                            .saves = st.saves,
                            .save_failures = st.save_failures,
                            .saves_stopped = st.saves_stopped,
                            .load_failures = st.load_failures,
                            .io_in_flight = st.io_in_flight};
    if (in->st.store)
        out->disk_bytes = in->st.warm.ops->disk_bytes(in->st.warm.self);
    out->disk_budget = in->r->o.disk_budget;
    backend_remote(user, &out->remote);
}

/* The stack options of entry e: its file and its cache folder. */
static serving_stack_opts stack_opts(const model_registry *r, const entry *e, char *dir, size_t cap)
{
    serving_stack_opts so = r->o.stack;
    so.model_path = e->path;
    if (!*r->o.cache_dir || r->single)
        snprintf(dir, cap, "%s", r->o.cache_dir);
    else
        snprintf(dir, cap, "%s/models/%s", r->o.cache_dir, e->name);
    so.cache_dir = dir;
    return so;
}

/* One full-context sequence must fit the pool (what admission reserves). */
static sem_status check_pool(const serving_stack *st, const serving_stack_opts *so, sem_err *err)
{
    uint64_t need = cache_spec_peak_blocks(block_pool_spec(st->pool), st->ctx, so->chunk);
    if (need <= block_pool_total(st->pool))
        return SEM_OK;
    return sem_err_set(err, SEM_EINVAL,
                       "--pool-mb %llu holds %u KV blocks; one sequence of the full context "
                       "(%u tokens) needs %llu: raise --pool-mb or lower --ctx",
                       (unsigned long long)so->pool_mb, block_pool_total(st->pool), st->ctx,
                       (unsigned long long)need);
}

/* Makes the backend of a fully opened instance and records its figures. */
static void publish(model_registry *r, entry *e, instance *in)
{
    serving_stack *st = &in->st;
    in->ram = serving_stack_ram_bytes(st);
    in->be = (http_backend){.model_id = e->name,
                            .gen = engine_generation_port(st->e),
                            .agents = engine_agent_store(st->e),
                            .prompts = model_prompts_port(st->prompts),
                            .stats = backend_stats,
                            .stats_user = in,
                            .remote = st->tiered ? backend_remote : NULL,
                            .persistent = st->store != NULL,
                            .responses = r->o.responses};
    const model_hparams *hp = model_hparams_of(st->m);
    e->n_ctx = st->ctx;
    e->n_ctx_train = hp->n_ctx_train;
    e->pool_bytes = in->ram - gguf_file_size(model_gguf(st->m));
    snprintf(e->arch, sizeof e->arch, "%s", model_arch_of(st->m)->name);
    const serving_stack_opts *so = &r->o.stack;
    snprintf(e->tmpl, sizeof e->tmpl, "%s",
             so->chat_template_file                    ? "file"
             : so->chat_template                       ? so->chat_template
             : st->template_warning.status != SEM_OK ? "chatml"
                                                       : "model");
    e->live = in;
    e->loads++;
    e->loaded_at = now_s();
    e->error[0] = '\0';
    e->error_is_room = 0;
}

static void close_instance(instance *in)
{
    /* Nothing runs on it (no lease): the drain only writes its agents. */
    serving_stack_close(&in->st, 10000);
    free(in);
}

static void retire(model_registry *r, instance *in)
{
    in->next = r->retired;
    r->retired = in;
}

/* Whether another instance borrows in's warm store (it must go first). */
static int lends(const model_registry *r, const instance *in)
{
    const disk_store *store = in->st.store;
    if (!store || in->st.store_borrowed)
        return 0;
    for (const instance *o = r->retired; o; o = o->next)
        if (o != in && o->st.store == store && o->st.store_borrowed)
            return 1;
    for (size_t i = 0; i < r->n_models; i++) {
        const instance *o = r->models[i]->live;
        if (o && o != in && o->st.store == store && o->st.store_borrowed)
            return 1;
    }
    return 0;
}

static int has_retired(const model_registry *r, const entry *e)
{
    for (const instance *in = r->retired; in; in = in->next)
        if (in->owner == e)
            return 1;
    return 0;
}

/* Bytes held by every instance, live, pending or retired. */
static uint64_t ram_used(const model_registry *r)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < r->n_models; i++) {
        const entry *e = r->models[i];
        sum += (e->live ? e->live->ram : 0) + (e->pending ? e->pending->ram : 0);
    }
    for (const instance *in = r->retired; in; in = in->next)
        sum += in->ram;
    return sum;
}

/* The least recently used loaded model other than e that nothing holds. */
static entry *idle_victim(model_registry *r, const entry *e)
{
    entry *best = NULL;
    for (size_t i = 0; i < r->n_models; i++) {
        entry *v = r->models[i];
        if (v == e || !v->live || v->live->leases || v->busy || v->pending)
            continue;
        int64_t used = v->last_used ? v->last_used : v->loaded_at;
        int64_t best_used = best ? (best->last_used ? best->last_used : best->loaded_at) : 0;
        if (!best || used < best_used)
            best = v;
    }
    return best;
}

/* After a load: the pool's size is known only once the model is, so the
 * first load of a model may pass the budget; idle models make room. */
static void trim(model_registry *r, const entry *e)
{
    entry *v;
    while (r->o.ram_budget && ram_used(r) > r->o.ram_budget && (v = idle_victim(r, e))) {
        logf_(r, "info", "unloading %s (least recently used) to keep --models-ram", v->name);
        retire(r, v->live);
        v->live = NULL;
    }
}

/* ---------------------------------------------------------------- jobs (registry thread) */

static void fail_entry(model_registry *r, entry *e, const sem_err *err, int room)
{
    snprintf(e->error, sizeof e->error, "%s", sem_err_text(err));
    e->error_status = err->status;
    e->error_is_room = room;
    e->want_load = 0;
    logf_(r, "error", "model %s: %s", e->name, e->error);
    wake_all(e);
}

/* Loads e (lock held on entry and exit; released while loading). */
static void job_load(model_registry *r, entry *e)
{
    double t0 = deadline_now_ms();
    char dir[PATH_MAX];
    serving_stack_opts so = stack_opts(r, e, dir, sizeof dir);
    e->busy = 1;
    sem_mutex_unlock(&r->mu);
    sem_err err = {0};
    instance *in = calloc(1, sizeof *in);
    sem_status st = in ? serving_stack_open(&in->st, &so, &err)
                       : sem_err_set(&err, SEM_ENOMEM, "out of memory");
    if (st == SEM_OK && (st = check_pool(&in->st, &so, &err)) != SEM_OK)
        serving_stack_close(&in->st, 0);
    sem_mutex_lock(&r->mu);
    e->busy = 0;
    if (st != SEM_OK) {
        free(in);
        sem_err_wrap(&err, "loading %s", e->path);
        fail_entry(r, e, &err, 0);
        return;
    }
    in->r = r;
    in->owner = e;
    e->want_load = 0;
    publish(r, e, in);
    trim(r, e);
    logf_(r, "info",
          "loaded %s in %.0f ms: context %u, %.1f MiB (weights and a pool of %u KV blocks of "
          "%zu bytes), agent memory in %s",
          e->name, deadline_now_ms() - t0, in->st.ctx, (double)in->ram / (1 << 20),
          block_pool_total(in->st.pool), block_pool_block_bytes(in->st.pool),
          *dir ? dir : "RAM only");
    wake_all(e);
}

/*
 * A load under the budget: 1 when e may load now; else 0, having retired
 * the least recently used idle model (its free comes first), left it to
 * wait for a retired model to be freed, or failed it.
 */
static int room_for(model_registry *r, entry *e)
{
    if (!r->o.ram_budget)
        return 1;
    uint64_t need = (uint64_t)e->id.size +
                    (e->pool_bytes ? e->pool_bytes : r->o.stack.pool_mb << 20);
    if (ram_used(r) + need <= r->o.ram_budget)
        return 1;
    entry *v = idle_victim(r, e);
    if (v) {
        logf_(r, "info", "unloading %s (least recently used) to make room for %s", v->name,
              e->name);
        retire(r, v->live);
        v->live = NULL;
        return 0;
    }
    if (r->retired)
        return 0; /* wait: a retired model's memory comes back when it is freed */
    sem_err err = {0};
    sem_err_set(&err, SEM_EBUSY,
                "no room for model %s (%.0f MiB) under --models-ram %llu MiB: the loaded models "
                "hold %.0f MiB and each has requests running",
                e->name, (double)need / (1 << 20),
                (unsigned long long)(r->o.ram_budget >> 20), (double)ram_used(r) / (1 << 20));
    fail_entry(r, e, &err, 1);
    return 0;
}

/*
 * A reload of the same model (fingerprint): the new file gets an engine
 * over the old file's warm store and serves new requests at once, while
 * the old one finishes its running requests (lock held on entry and
 * exit; released while the engine starts). The registry thread alone
 * frees instances, so old stays valid meanwhile.
 */
static void switch_now(model_registry *r, entry *e, instance *in, instance *old,
                       const serving_stack_opts *so)
{
    uint32_t running = old->leases;
    e->busy = 1;
    sem_mutex_unlock(&r->mu);
    /* Idle agents' memory is written first, so that the new engine finds
     * it in the store it shares (it lists the store when it starts). */
    engine_save_idle(old->st.e);
    sem_err err = {0};
    sem_status st = check_pool(&in->st, so, &err);
    if (st != SEM_OK)
        serving_stack_close(&in->st, 0);
    else
        st = serving_stack_open_serving_from(&in->st, &old->st, so, &err); /* closes in on failure */
    sem_mutex_lock(&r->mu);
    e->busy = 0;
    if (st != SEM_OK) {
        free(in);
        sem_err_wrap(&err, "reloading %s", e->path);
        snprintf(e->error, sizeof e->error, "%s", sem_err_text(&err));
        logf_(r, "error", "model %s: %s; the loaded file keeps serving", e->name, e->error);
        return;
    }
    if (e->live == old) /* else a rescan retired it meanwhile */
        retire(r, old);
    if (e->gone) {
        retire(r, in);
        e->live = NULL;
        return;
    }
    publish(r, e, in);
    logf_(r, "info", "model %s: now serving the new file; %u running requests finish on the old one",
          e->name, running);
    wake_all(e);
}

/* Loads e's file again beside its live instance (lock held on entry and exit). */
static void job_reload(model_registry *r, entry *e)
{
    e->want_reload = 0;
    char dir[PATH_MAX];
    serving_stack_opts so = stack_opts(r, e, dir, sizeof dir);
    e->busy = 1;
    sem_mutex_unlock(&r->mu);
    sem_err err = {0};
    instance *in = calloc(1, sizeof *in);
    sem_status st = in ? serving_stack_open_model(&in->st, &so, &err)
                       : sem_err_set(&err, SEM_ENOMEM, "out of memory");
    sem_mutex_lock(&r->mu);
    e->busy = 0;
    if (st != SEM_OK) {
        free(in);
        sem_err_wrap(&err, "reloading %s", e->path);
        snprintf(e->error, sizeof e->error, "%s", sem_err_text(&err));
        logf_(r, "error", "model %s: %s; the loaded file keeps serving", e->name, e->error);
        return;
    }
    in->r = r;
    in->owner = e;
    in->ram = serving_stack_ram_bytes(&in->st);
    instance *old = e->live;
    if (old && model_fingerprint(old->st.m) == model_fingerprint(in->st.m)) {
        switch_now(r, e, in, old, &so);
        return;
    }
    if (old && model_fingerprint(old->st.m) != model_fingerprint(in->st.m))
        logf_(r, "info",
              "model %s: the new file is another model (fingerprint changed): its agents start "
              "cold; the old agents stay on disk until the disk budget removes them", e->name);
    if (old) {
        retire(r, old);
        e->live = NULL;
    }
    e->pending = in;
    logf_(r, "info", "model %s: new file loaded; switching once %u running requests end",
          e->name, old ? old->leases : 0);
}

/* Opens the pending instance's store and engine (the old one is freed). */
static void job_finish(model_registry *r, entry *e)
{
    instance *in = e->pending;
    char dir[PATH_MAX];
    serving_stack_opts so = stack_opts(r, e, dir, sizeof dir);
    e->busy = 1;
    sem_mutex_unlock(&r->mu);
    sem_err err = {0};
    sem_status st = serving_stack_open_serving(&in->st, &so, &err);
    if (st == SEM_OK && (st = check_pool(&in->st, &so, &err)) != SEM_OK)
        serving_stack_close(&in->st, 0);
    sem_mutex_lock(&r->mu);
    e->busy = 0;
    e->pending = NULL;
    if (st != SEM_OK) {
        free(in);
        sem_err_wrap(&err, "reloading %s", e->path);
        fail_entry(r, e, &err, 0);
        return;
    }
    publish(r, e, in);
    logf_(r, "info", "model %s: now serving the new file", e->name);
    wake_all(e);
}

/* Runs one job if there is one (lock held); 0 when there was none. */
static int run_one_job(model_registry *r)
{
    for (instance **p = &r->retired; *p; p = &(*p)->next) {
        instance *in = *p;
        if (in->leases || lends(r, in))
            continue;
        *p = in->next;
        sem_mutex_unlock(&r->mu);
        close_instance(in);
        sem_mutex_lock(&r->mu);
        return 1;
    }
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        if (e->busy)
            continue;
        if (e->pending && !has_retired(r, e)) {
            job_finish(r, e);
            return 1;
        }
        if (e->want_reload && e->live && !e->pending) {
            job_reload(r, e);
            return 1;
        }
    }
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        if (e->busy || !e->want_load || e->live || e->pending || has_retired(r, e))
            continue;
        if (e->gone) {
            e->want_load = 0;
            wake_all(e);
            return 1;
        }
        if (room_for(r, e))
            job_load(r, e);
        return 1;
    }
    return 0;
}

static void *registry_main(void *arg)
{
    model_registry *r = arg;
    sem_mutex_lock(&r->mu);
    while (!r->stop) {
        if (run_one_job(r))
            pthread_cond_broadcast(&r->cv);
        else
            sem_mutex_wait(&r->mu, &r->cv);
    }
    sem_mutex_unlock(&r->mu);
    return NULL;
}

/* ---------------------------------------------------------------- the port */

static sem_status op_resolve(void *self, const char *name, int use_default, char *served,
                             sem_err *err)
{
    model_registry *r = self;
    sem_status st = SEM_OK;
    const char *target = NULL;
    sem_mutex_lock(&r->mu);
    if (name && *name && find(r, name)) {
        target = name;
    } else if (name && *name) {
        for (size_t i = 0; i < r->o.n_aliases && !target; i++)
            if (fnmatch(r->o.aliases[i].pattern, name, 0) == 0)
                target = r->o.aliases[i].target;
        if (!target && use_default)
            target = r->o.default_model;
    } else {
        target = r->o.default_model;
        for (size_t i = 0; i < r->n_models && !target; i++)
            if (!r->models[i]->gone)
                target = r->models[i]->name;
    }
    if (!target)
        st = name && *name ? sem_err_set(err, SEM_ENOTFOUND,
                                         "model '%s' is not served here (GET /v1/models lists "
                                         "the served models)", name)
                           : sem_err_set(err, SEM_ENOTFOUND, "no model is served");
    else if (!find(r, target))
        st = sem_err_set(err, SEM_ENOTFOUND, "model '%s' (for '%s') is not served any more",
                         target, name ? name : "");
    else
        snprintf(served, HTTP_MODEL_NAME_MAX, "%s", target);
    sem_mutex_unlock(&r->mu);
    return st;
}

static sem_status op_acquire(void *self, const char *served, int load, const http_backend **be,
                             void **lease, void (*wake)(void *), void *arg, sem_err *err)
{
    model_registry *r = self;
    sem_status st;
    sem_mutex_lock(&r->mu);
    entry *e = find(r, served);
    if (!e) {
        st = sem_err_set(err, SEM_ENOTFOUND, "model '%s' is not served here", served);
    } else if (e->live) {
        e->live->leases++;
        e->last_used = now_s();
        *be = &e->live->be;
        *lease = e->live;
        st = SEM_OK;
    } else if (wake && (e->want_load || e->pending || (load && !r->stop))) {
        if (!e->want_load && !e->pending) {
            e->want_load = 1;
            e->error[0] = '\0';
            pthread_cond_broadcast(&r->cv);
        }
        st = add_waiter(e, wake, arg, err);
        if (st == SEM_OK)
            st = sem_err_set(err, SEM_EAGAIN, "model '%s' is loading", served);
    } else {
        st = sem_err_set(err, SEM_EBUSY, "model '%s' is not loaded%s%s", served,
                         e->error[0] ? ": " : "", e->error);
    }
    sem_mutex_unlock(&r->mu);
    return st;
}

static void op_cancel_wait(void *self, void *arg)
{
    model_registry *r = self;
    sem_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        for (size_t j = 0; j < e->n_waiters; j++)
            if (e->waiters[j].arg == arg)
                e->waiters[j--] = e->waiters[--e->n_waiters];
    }
    sem_mutex_unlock(&r->mu);
}

static void op_release(void *self, void *lease)
{
    model_registry *r = self;
    instance *in = lease;
    sem_mutex_lock(&r->mu);
    assert(in->leases > 0);
    if (--in->leases == 0)
        pthread_cond_broadcast(&r->cv); /* a retired instance may go, a load find room */
    sem_mutex_unlock(&r->mu);
}

static void info_of(const model_registry *r, const entry *e, http_model_info *o)
{
    *o = (http_model_info){.state = e->live                        ? HTTP_MODEL_LOADED
                                    : e->want_load || e->pending ? HTTP_MODEL_LOADING
                                                                 : HTTP_MODEL_AVAILABLE,
                           .file_bytes = (uint64_t)e->id.size,
                           .ram_bytes = e->live ? e->live->ram : 0,
                           .n_ctx = e->n_ctx,
                           .n_ctx_train = e->n_ctx_train,
                           .running = e->live ? e->live->leases : 0,
                           .loads = e->loads,
                           .loaded_at = e->live ? e->loaded_at : 0,
                           .last_used = e->last_used,
                           .is_default = r->o.default_model &&
                                         strcmp(r->o.default_model, e->name) == 0};
    snprintf(o->id, sizeof o->id, "%s", e->name);
    snprintf(o->arch, sizeof o->arch, "%s", e->arch);
    snprintf(o->chat_template, sizeof o->chat_template, "%s", e->tmpl);
    snprintf(o->error, sizeof o->error, "%s", e->error);
}

static size_t op_list(void *self, http_model_info *out, size_t cap)
{
    model_registry *r = self;
    size_t n = 0;
    sem_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_models; i++) {
        if (r->models[i]->gone)
            continue;
        if (n < cap)
            info_of(r, r->models[i], &out[n]);
        n++;
    }
    sem_mutex_unlock(&r->mu);
    return n;
}

static sem_status op_reload(void *self, const char *served, sem_err *err)
{
    model_registry *r = self;
    sem_status st = SEM_OK;
    sem_mutex_lock(&r->mu);
    entry *e = find(r, served);
    if (!e) {
        st = sem_err_set(err, SEM_ENOTFOUND, "model '%s' is not served here", served);
    } else {
        if (stat_id(e->path, &e->id) != 0)
            st = sem_err_set(err, SEM_ENOTFOUND, "%s: %s", e->path, strerror(errno));
        else if (e->live || e->busy)
            e->want_reload = 1; /* not loaded: its next load reads the file anyway */
        pthread_cond_broadcast(&r->cv);
    }
    sem_mutex_unlock(&r->mu);
    return st;
}

/* ---------------------------------------------------------------- the folder */

static sem_status add_entry(model_registry *r, const char *name, const char *path, int from_dir,
                            entry **out, sem_err *err)
{
    if (r->n_models == MODEL_REGISTRY_MAX)
        return sem_err_set(err, SEM_ETOOLARGE, "at most %d models", MODEL_REGISTRY_MAX);
    entry **grown = realloc(r->models, (r->n_models + 1) * sizeof *grown);
    if (!grown)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    r->models = grown;
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->from_dir = from_dir;
    r->models[r->n_models++] = e;
    *out = e;
    return SEM_OK;
}

typedef struct dir_file {
    char name[HTTP_MODEL_NAME_MAX];
    char path[PATH_MAX];
    file_id id;
} dir_file;

static int dir_file_cmp(const void *a, const void *b)
{
    return strcmp(((const dir_file *)a)->name, ((const dir_file *)b)->name);
}

/* The folder's GGUF files with a servable name, sorted by name. */
static sem_status read_folder(const char *dir, dir_file **out, size_t *n, sem_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return sem_err_set(err, SEM_EIO, "--models-dir %s: %s", dir, strerror(errno));
    size_t cap = 0;
    sem_status st = SEM_OK;
    struct dirent *de;
    while (st == SEM_OK && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".gguf") != 0)
            continue;
        dir_file f;
        model_registry_name_of(de->d_name, f.name, sizeof f.name);
        if (snprintf(f.path, sizeof f.path, "%s/%s", dir, de->d_name) >= (int)sizeof f.path ||
            !name_ok(f.name) || stat_id(f.path, &f.id) != 0)
            continue; /* not a name a client can send, or not a file */
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            dir_file *g = realloc(*out, cap * sizeof *g);
            if (!g) {
                st = sem_err_set(err, SEM_ENOMEM, "out of memory");
                break;
            }
            *out = g;
        }
        (*out)[(*n)++] = f;
    }
    closedir(d);
    if (st == SEM_OK && *n)
        qsort(*out, *n, sizeof **out, dir_file_cmp);
    return st;
}

/* Applies the folder's listing (lock held). */
static sem_status apply_folder(model_registry *r, const dir_file *files, size_t n, uint32_t *added,
                               uint32_t *removed, uint32_t *changed, sem_err *err)
{
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        int seen = 0;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(files[j].name, e->name) == 0;
        if (!e->from_dir || seen || e->gone)
            continue;
        e->gone = 1;
        (*removed)++;
        if (e->live) {
            retire(r, e->live);
            e->live = NULL;
        }
        e->want_reload = 0;
        wake_all(e); /* waiters find it gone: 404 */
    }
    for (size_t j = 0; j < n; j++) {
        entry *e = find_any(r, files[j].name);
        if (e && !e->from_dir)
            continue; /* a -m model of that name wins over the folder's file */
        if (!e) {
            sem_status st = add_entry(r, files[j].name, files[j].path, 1, &e, err);
            if (st != SEM_OK)
                return st;
            e->id = files[j].id;
            (*added)++;
        } else if (e->gone) {
            e->gone = 0;
            e->id = files[j].id;
            (*added)++;
        } else if (!same_id(&e->id, &files[j].id)) {
            e->id = files[j].id;
            if (e->live || e->busy)
                e->want_reload = 1;
            (*changed)++;
        }
    }
    pthread_cond_broadcast(&r->cv);
    return SEM_OK;
}

static sem_status op_rescan(void *self, uint32_t *added, uint32_t *removed, uint32_t *changed,
                            sem_err *err)
{
    model_registry *r = self;
    *added = *removed = *changed = 0;
    if (!r->o.models_dir)
        return sem_err_set(err, SEM_EREQUEST, "the server has no --models-dir to rescan");
    dir_file *files = NULL;
    size_t n = 0;
    sem_status st = read_folder(r->o.models_dir, &files, &n, err);
    if (st == SEM_OK) {
        sem_mutex_lock(&r->mu);
        st = apply_folder(r, files, n, added, removed, changed, err);
        sem_mutex_unlock(&r->mu);
    }
    free(files);
    if (st == SEM_OK && (*added || *removed || *changed))
        logf_(r, "info", "rescan of %s: %u added, %u removed, %u changed", r->o.models_dir,
              *added, *removed, *changed);
    return st;
}

static const http_models_ops registry_ops = {op_resolve, op_acquire, op_cancel_wait, op_release,
                                             op_list,    op_reload,  op_rescan};

http_models model_registry_port(model_registry *r)
{
    return (http_models){.ops = &registry_ops, .self = r};
}

/* ---------------------------------------------------------------- open, close */

static sem_status add_specs(model_registry *r, sem_err *err)
{
    for (size_t i = 0; i < r->o.n_models; i++) {
        const model_spec *s = &r->o.models[i];
        char name[HTTP_MODEL_NAME_MAX];
        if (s->name)
            snprintf(name, sizeof name, "%s", s->name);
        else
            model_registry_name_of(s->path, name, sizeof name);
        if (!name_ok(name))
            return sem_err_set(err, SEM_EINVAL,
                               "-m %s: the model name '%s' may hold only letters, digits and "
                               "._:+- (name it with -m NAME=PATH)", s->path, name);
        if (find(r, name))
            return sem_err_set(err, SEM_EINVAL, "-m: two models are named '%s'", name);
        entry *e = NULL;
        if (add_entry(r, name, s->path, 0, &e, err) != SEM_OK)
            return err->status;
        errno = 0;
        if (stat_id(s->path, &e->id) != 0)
            return sem_err_set(err, errno == ENOENT ? SEM_ENOTFOUND : SEM_EINVAL, "-m %s: %s",
                               s->path, strerror(errno));
        e->preload = 1;
    }
    return SEM_OK;
}

static sem_status check_names(model_registry *r, sem_err *err)
{
    for (size_t i = 0; i < r->o.n_aliases; i++)
        if (!find(r, r->o.aliases[i].target))
            return sem_err_set(err, SEM_EINVAL, "--alias %s=%s: no model is named '%s'",
                               r->o.aliases[i].pattern, r->o.aliases[i].target,
                               r->o.aliases[i].target);
    if (r->o.default_model && !find(r, r->o.default_model))
        return sem_err_set(err, SEM_EINVAL, "--default-model %s: no model is named so",
                           r->o.default_model);
    if (r->n_models == 0 && !r->o.models_dir)
        return sem_err_set(err, SEM_EINVAL, "no model: give -m PATH or --models-dir DIR");
    return SEM_OK;
}

/* Loads the -m models at start, in order; one that does not fit the
 * budget is left to load on demand, any other failure is fatal. */
static sem_status preload(model_registry *r, sem_err *err)
{
    sem_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        if (!e->preload)
            continue;
        e->want_load = 1;
        pthread_cond_broadcast(&r->cv);
        while (e->want_load)
            sem_mutex_wait(&r->mu, &r->cv);
        if (!e->live && !e->error_is_room) {
            sem_err_set(err, e->error_status ? e->error_status : SEM_EINVAL, "%s", e->error);
            sem_mutex_unlock(&r->mu);
            return err->status;
        }
        if (!e->live)
            logf_(r, "info", "%s is left to load on its first request: %s", e->name, e->error);
    }
    sem_mutex_unlock(&r->mu);
    return SEM_OK;
}

model_registry *model_registry_open(const model_registry_opts *o, sem_err *err)
{
    model_registry *r = calloc(1, sizeof *r);
    if (!r) {
        sem_err_set(err, SEM_ENOMEM, "out of memory");
        return NULL;
    }
    r->o = *o;
    r->single = o->n_models == 1 && !o->models_dir;
    sem_mutex_init(&r->mu);
    pthread_cond_init(&r->cv, NULL);
    uint32_t a, b, c;
    sem_status st = add_specs(r, err);
    if (st == SEM_OK && r->single && !r->o.default_model)
        r->o.default_model = r->models[0]->name; /* one model answers every name, as before */
    if (st != SEM_OK ||
        (o->models_dir && op_rescan(r, &a, &b, &c, err) != SEM_OK) || check_names(r, err) != SEM_OK)
        goto fail;
    if (*o->cache_dir && fs_make_dirs(o->cache_dir) != 0) {
        sem_err_set(err, SEM_EIO, "--cache-dir %s: %s", o->cache_dir, strerror(errno));
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, registry_main, r) != 0) {
        sem_err_set(err, SEM_ENOMEM, "cannot start the model registry's thread");
        goto fail;
    }
    r->thread_started = 1;
    if (preload(r, err) != SEM_OK)
        goto fail;
    return r;
fail:
    model_registry_close(r);
    return NULL;
}

uint32_t model_registry_drain(model_registry *r, uint32_t drain_ms)
{
    uint32_t failed = 0;
    sem_mutex_lock(&r->mu);
    r->stop = 1; /* no load starts from now on */
    pthread_cond_broadcast(&r->cv);
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        wake_all(e);
        engine *eng = e->live ? e->live->st.e : NULL;
        if (!eng)
            continue;
        /* The instance cannot go while its entry holds it and the
         * thread is stopping; drain without the lock (it waits). */
        sem_mutex_unlock(&r->mu);
        failed += engine_drain(eng, drain_ms);
        sem_mutex_lock(&r->mu);
    }
    sem_mutex_unlock(&r->mu);
    return failed;
}

void model_registry_close(model_registry *r)
{
    if (!r)
        return;
    if (r->thread_started) {
        sem_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        sem_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    /* The HTTP server has stopped: no lease is left. Every instance is
     * closed, a store's borrowers before its owner. */
    for (size_t i = 0; i < r->n_models; i++) {
        entry *e = r->models[i];
        if (e->live)
            retire(r, e->live);
        e->live = NULL;
        if (e->pending) {
            serving_stack_close(&e->pending->st, 0); /* no store yet */
            free(e->pending);
        }
    }
    while (r->retired) {
        instance **p = &r->retired;
        while (lends(r, *p))
            p = &(*p)->next; /* some instance lends nothing: the borrowers form chains */
        instance *in = *p;
        *p = in->next;
        close_instance(in);
    }
    for (size_t i = 0; i < r->n_models; i++) {
        free(r->models[i]->waiters);
        free(r->models[i]);
    }
    free(r->models);
    pthread_cond_destroy(&r->cv);
    sem_mutex_destroy(&r->mu);
    free(r);
}
