/*
 * serving_stack.c - assembling and tearing down the serving stack.
 *
 * Order: model, backend, pool, disk store, remote tier, tiered store,
 * engine, prompts; torn down in reverse, so the engine's last saves reach
 * the tiered store, which hands its queued remote writes to the tier
 * before the tier and then the disk close.
 */
#include "serving_stack.h"
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STACK_MAX_CTX 4096

serving_stack_opts serving_stack_defaults(void)
{
    return (serving_stack_opts){.kv_type = CACHE_KV_F16, .max_batch = 8, .chunk = 512, .max_queue = 256};
}

sem_status serving_stack_default_cache_dir(char *out, size_t cap, sem_err *err)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg)
        n = snprintf(out, cap, "%s/semantic/cache", xdg);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.local/share/semantic/cache", home);
    else
        return sem_err_set(err, SEM_EINVAL, "no cache directory: set --cache-dir, "
                                            "XDG_DATA_HOME or HOME");
    if (n < 0 || (size_t)n >= cap)
        return sem_err_set(err, SEM_EINVAL, "the cache directory path is too long");
    return SEM_OK;
}

/* One JSON line on stderr, as every log line of semantic. */
static void log_line(void *user, const char *level, const char *message)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "level", level, "source", (const char *)user,
                          "message", message);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
}

static void store_log(void *ctx, const char *message) { log_line(ctx, "warning", message); }

void serving_stack_redact_url(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    /* The credentials end at the last '@' before the path, the query
     * (rediss:// options name files, which may hold '@') or a fragment. */
    size_t authority = strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < host + authority; p++)
        if (*p == '@')
            at = p;
    if (!at) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s***@%s", (int)(host - url), url, at + 1);
}

/* The remote tier and the tiered store over the disk (--cache-remote). */
static sem_status open_remote(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    redis_tier_opts r = {.url = o->cache_remote,
                         .budget_bytes = o->remote_mb << 20,
                         .ttl_s = o->remote_ttl_s};
    tiered_store_opts t = {.disk = s->store,
                           .fingerprint = model_fingerprint(s->m),
                           .spec = block_pool_spec(s->pool)};
    if (!o->quiet) {
        r.log = t.log = store_log;
        r.log_ctx = t.log_ctx = (void *)"remote";
    }
    s->redis = redis_tier_open(&r, err);
    if (!s->redis) {
        char shown[512];
        serving_stack_redact_url(o->cache_remote, shown, sizeof shown);
        return sem_err_wrap(err, "--cache-remote %s", shown);
    }
    t.remote = redis_tier_port(s->redis);
    s->tiered = tiered_store_open(&t, err);
    if (!s->tiered)
        return err->status;
    s->warm = tiered_store_port(s->tiered);
    return SEM_OK;
}

void serving_stack_remote_stats(const serving_stack *s, remote_stats *out, uint32_t *queued)
{
    memset(out, 0, sizeof *out);
    *queued = 0;
    out->state = REMOTE_OFF;
    if (s->tiered)
        tiered_store_stats(s->tiered, out, queued);
}

static sem_status open_store(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    int remote = o->cache_remote && *o->cache_remote;
    if (o->cache_dir && !*o->cache_dir) {
        if (remote)
            return sem_err_set(err, SEM_EINVAL,
                               "--cache-remote needs the disk tier: the remote tier sits under "
                               "it, but --cache-dir is '' (persistence off)");
        return SEM_OK; /* persistence off */
    }
    if (o->cache_dir)
        snprintf(s->cache_dir, sizeof s->cache_dir, "%s", o->cache_dir);
    else if (serving_stack_default_cache_dir(s->cache_dir, sizeof s->cache_dir, err) != SEM_OK)
        return err->status;
    kv_payload payload = KV_PAYLOAD_DEFAULT;
    if (o->cache_type && kv_payload_parse(o->cache_type, &payload, err) != SEM_OK)
        return err->status;
    disk_store_opts d = {.dir = s->cache_dir, .fingerprint = model_fingerprint(s->m),
                         .payload = payload, .budget_bytes = o->disk_mb << 20};
    if (!o->quiet) {
        d.log = store_log;
        d.log_ctx = (void *)"store";
    }
    s->store = disk_store_open(&d, err);
    if (!s->store)
        return err->status;
    s->warm = disk_store_port(s->store);
    return remote ? open_remote(s, o, err) : SEM_OK;
}

/* MemAvailable from /proc/meminfo in bytes; 0 when it cannot be read. */
static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb << 10;
}

/*
 * The pool, sized by --pool-mb or else from the model: every batch slot
 * can hold one sequence of the whole context with a prefill chunk in
 * flight (cache_spec_peak_blocks, what admission reserves for the longest
 * request), so max_batch full-context requests run at once and whatever
 * they leave free keeps idle agents hot. That is at most half of
 * MemAvailable, but never less than one full-context sequence (the least
 * a server can work with). The pool is touched at start, so its size is
 * resident memory from the first second.
 */
static sem_status open_pool(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    cache_spec spec = model_cache_spec(s->m, CACHE_SPEC_DEFAULT_BLOCK_TOKENS, o->kv_type);
    if (cache_spec_validate(&spec, err) != SEM_OK)
        return err->status;
    uint64_t stride = (cache_spec_block_bytes(&spec) + 63) / 64 * 64;
    uint64_t one = cache_spec_peak_blocks(&spec, s->ctx, o->chunk) * stride;
    uint64_t bytes = o->pool_mb << 20;
    s->pool_capped = 0;
    if (bytes == 0) {
        bytes = one * (o->max_batch ? o->max_batch : 1);
        uint64_t avail = mem_available();
        if (avail && bytes > avail / 2) {
            bytes = avail / 2 > one ? avail / 2 : one;
            s->pool_capped = 1;
        }
    }
    s->pool = block_pool_create(&spec, bytes, err);
    return s->pool ? SEM_OK : err->status;
}

/* The text of --chat-template-file (read before the model loads, so a
 * wrong path fails at once), or NULL with *src NULL when there is none. */
static sem_status read_template_file(const serving_stack_opts *o, char **src, sem_err *err)
{
    *src = NULL;
    if (!o->chat_template_file)
        return SEM_OK;
    if (o->chat_template)
        return sem_err_set(err, SEM_EINVAL, "--chat-template and --chat-template-file: give one of them");
    size_t len;
    if (cli_read_file(o->chat_template_file, src, &len, err) != SEM_OK)
        return sem_err_wrap(err, "--chat-template-file");
    return SEM_OK;
}

/* The prompt port: the template file's text, a built-in, or the model's. */
static sem_status open_prompts(serving_stack *s, const serving_stack_opts *o, const char *tmpl_src,
                               sem_err *err)
{
    if (tmpl_src) {
        s->prompts = model_prompts_create_source(s->m, tmpl_src, s->ctx, err);
        if (!s->prompts)
            return sem_err_wrap(err, "--chat-template-file %s", o->chat_template_file);
        return SEM_OK;
    }
    s->prompts = model_prompts_create(s->m, o->chat_template, s->ctx, &s->template_warning, err);
    if (!s->prompts)
        return err->status;
    if (s->template_warning.status != SEM_OK && !o->quiet)
        log_line((void *)"model", "warning", sem_err_text(&s->template_warning));
    return SEM_OK;
}

sem_status serving_stack_open_model(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    memset(s, 0, sizeof *s);
    s->remote_drain_ms = o->remote_drain_ms;
    char *tmpl_src = NULL; /* read now only so that a wrong path fails before the load */
    sem_status st = read_template_file(o, &tmpl_src, err);
    free(tmpl_src);
    if (st != SEM_OK)
        return st;
    s->m = model_load(o->model_path, err);
    if (!s->m)
        return err->status;
    const model_hparams *hp = model_hparams_of(s->m);
    s->ctx = o->ctx ? o->ctx : (hp->n_ctx_train < STACK_MAX_CTX ? hp->n_ctx_train : STACK_MAX_CTX);
    cpu_isa isa = cpu_isa_best();
    if ((st = cli_check_ctx(s->ctx, hp->n_ctx_train, o->model_path, err)) != SEM_OK ||
        (o->isa && (st = cpu_isa_parse(o->isa, &isa, err)) != SEM_OK))
        goto fail;
    forward_opts fo = {.n_threads = o->threads > 0 ? o->threads
                                                    : (int)sysconf(_SC_NPROCESSORS_ONLN),
                       .isa = isa, .max_tokens = o->chunk + o->max_batch};
    s->backend = model_backend_create(s->m, &fo, s->ctx, err);
    if (!s->backend || (st = open_pool(s, o, err)) != SEM_OK)
        goto fail_status;
    return SEM_OK;
fail_status:
    st = err->status ? err->status : SEM_EINTERNAL;
fail:
    serving_stack_close(s, 0);
    return st;
}

/* The engine over the pool and warm store, and the prompts. */
static sem_status open_engine(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    char *tmpl_src = NULL;
    sem_status st = read_template_file(o, &tmpl_src, err);
    if (st != SEM_OK)
        goto fail;
    engine_opts eo = engine_defaults();
    eo.max_batch = o->max_batch;
    eo.chunk = o->chunk;
    eo.max_queue = o->max_queue;
    eo.n_ctx = s->ctx;
    eo.warm = s->store ? &s->warm : NULL;
    eo.pin_budget_blocks = (o->pin_mb << 20) / block_pool_block_bytes(s->pool);
    if (o->pin_mb && eo.pin_budget_blocks == 0)
        eo.pin_budget_blocks = 1;
    if (!o->quiet) {
        eo.log = log_line;
        eo.log_user = (void *)"engine";
    }
    s->e = engine_create(model_backend_port(s->backend), s->pool, &eo, err);
    if (!s->e || (st = open_prompts(s, o, tmpl_src, err)) != SEM_OK)
        goto fail_status;
    free(tmpl_src);
    return SEM_OK;
fail_status:
    st = err->status ? err->status : SEM_EINTERNAL;
fail:
    free(tmpl_src);
    serving_stack_close(s, 0);
    return st;
}

sem_status serving_stack_open_serving(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    sem_status st = open_store(s, o, err);
    if (st != SEM_OK) {
        serving_stack_close(s, 0);
        return st;
    }
    return open_engine(s, o, err);
}

sem_status serving_stack_open_serving_from(serving_stack *s, serving_stack *from,
                                           const serving_stack_opts *o, sem_err *err)
{
    if (model_fingerprint(s->m) != model_fingerprint(from->m) ||
        cache_spec_block_bytes(block_pool_spec(s->pool)) !=
            cache_spec_block_bytes(block_pool_spec(from->pool))) {
        serving_stack_close(s, 0);
        return sem_err_set(err, SEM_EINVAL, "the stacks serve different models: no store to share");
    }
    s->store = from->store;
    s->redis = from->redis;
    s->tiered = from->tiered;
    s->warm = from->warm;
    snprintf(s->cache_dir, sizeof s->cache_dir, "%s", from->cache_dir);
    s->store_borrowed = 1; /* a failure below leaves from's store alone */
    sem_status st = open_engine(s, o, err);
    if (st != SEM_OK)
        return st;
    s->store_borrowed = 0;
    from->store_borrowed = 1;
    return SEM_OK;
}

sem_status serving_stack_open(serving_stack *s, const serving_stack_opts *o, sem_err *err)
{
    sem_status st = serving_stack_open_model(s, o, err);
    return st == SEM_OK ? serving_stack_open_serving(s, o, err) : st;
}

uint64_t serving_stack_ram_bytes(const serving_stack *s)
{
    uint64_t pool = s->pool ? (uint64_t)block_pool_total(s->pool) * block_pool_block_bytes(s->pool)
                            : 0;
    return pool + (s->m ? gguf_file_size(model_gguf(s->m)) : 0);
}

void serving_stack_close(serving_stack *s, uint32_t drain_ms)
{
    if (s->e && drain_ms)
        engine_drain(s->e, drain_ms);
    model_prompts_destroy(s->prompts);
    engine_destroy(s->e);
    if (s->store_borrowed) {
        /* Another stack owns the warm store. */
    } else {
        if (s->tiered)
            tiered_store_close(s->tiered, s->remote_drain_ms);
        if (s->redis)
            redis_tier_close(s->redis);
        disk_store_close(s->store);
    }
    block_pool_destroy(s->pool);
    model_backend_destroy(s->backend);
    model_free(s->m);
    memset(s, 0, sizeof *s);
}
