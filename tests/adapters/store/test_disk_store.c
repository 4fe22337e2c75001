/* Specification of disk_store.h: the warm store on disk. */
#include "store_test_util.h"

#include <dirent.h>
#include <xxhash.h>

#include "adapters/store/disk_store.h"

#define FP 0x5eed5eed5eed5eedull
#define FP_OTHER 0x0123456789abcdefull

typedef struct fixture {
    char *dir;
    disk_store *ds;
    warm_store ws;
    block_pool *pool; /* loads land here: f16, blocks of 16 */
    int64_t clock;    /* ms; every reading advances it by one */
    int fail_at;      /* fail the fail_at-th write from now with ENOSPC; 0 never */
    int stop_at;      /* set stop at the stop_at-th write from now; 0 never */
    int writes;
    atomic_int stop;
    int fsync_fail;   /* errno every folder fsync fails with; 0: they succeed */
    int fsyncs;       /* folder fsyncs asked for */
    int n_log;
    char last_log[1024];
    char all_log[8192]; /* every log line, newline separated (the last ones when long) */
} fixture;

static int64_t fake_clock(void *ctx)
{
    fixture *f = ctx;
    return ++f->clock;
}

static int fault(void *ctx, const char *path, uint64_t offset, size_t bytes)
{
    (void)path;
    (void)offset;
    (void)bytes;
    fixture *f = ctx;
    ++f->writes;
    if (f->stop_at && f->writes == f->stop_at)
        atomic_store(&f->stop, 1);
    return f->fail_at && f->writes == f->fail_at ? ENOSPC : 0;
}

static int fsync_fault(void *ctx, const char *dir)
{
    (void)dir;
    fixture *f = ctx;
    f->fsyncs++;
    return f->fsync_fail;
}

static void logger(void *ctx, const char *msg)
{
    fixture *f = ctx;
    f->n_log++;
    snprintf(f->last_log, sizeof f->last_log, "%s", msg);
    size_t len = strlen(f->all_log), add = strlen(msg) + 1;
    if (len + add + 1 > sizeof f->all_log)
        len = 0;
    snprintf(f->all_log + len, sizeof f->all_log - len, "%s\n", msg);
}

static disk_store_opts opts_for(fixture *f, uint64_t fp, uint64_t budget)
{
    return (disk_store_opts){
        .dir = f->dir, .fingerprint = fp, .budget_bytes = budget, .chunk_tokens = 16,
        .whole_files = 1, /* shared chunks: test_disk_store_shared */
        .write_hook = fault, .write_hook_ctx = f,
        .fsync_hook = fsync_fault, .fsync_hook_ctx = f,
        .now_ms = fake_clock, .now_ctx = f,
        .log = logger, .log_ctx = f,
    };
}

static void close_store(fixture *f)
{
    disk_store_close(f->ds);
    f->ds = NULL;
}

static void open_store_with(fixture *f, const disk_store_opts *o)
{
    close_store(f);
    sem_err err = {0};
    f->ds = disk_store_open(o, &err);
    if (!f->ds)
        fail_msg("open: %s", err.detail);
    f->ws = disk_store_port(f->ds);
}

static void open_store(fixture *f, uint64_t fp, uint64_t budget)
{
    disk_store_opts o = opts_for(f, fp, budget);
    open_store_with(f, &o);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    f->clock = 1000000;
    f->pool = store_pool(16, CACHE_KV_F16, 256);
    open_store(f, FP, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close_store(f);
    assert_int_equal(block_pool_used(f->pool), 0);
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    block_pool_destroy(f->pool);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void save(fixture *f, const char *key, uint64_t seed, uint32_t n)
{
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, seed, n, 1);
    sem_err err = {0};
    if (f->ws.ops->save(f->ws.self, key, t, NULL, &err) != SEM_OK)
        fail_msg("save %s: %s", key, err.detail);
    block_table_destroy(t);
    block_pool_destroy(p);
}

/* Loads key and checks it holds seed's n tokens (q8_0 on disk by default). */
static void load_is(fixture *f, const char *key, uint64_t seed, uint32_t n)
{
    block_table *t = NULL;
    sem_err err = {0};
    if (f->ws.ops->load(f->ws.self, key, f->pool, &t, &err) != SEM_OK)
        fail_msg("load %s: %s", key, err.detail);
    assert_table_is(t, seed, n, 2.0 / 1024 + 1.0 / 127);
    block_table_destroy(t);
}

static void path_of(const fixture *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, name);
}

static int exists(const fixture *f, const char *name)
{
    char p[700];
    path_of(f, name, p, sizeof p);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static uint64_t size_of(const fixture *f, const char *name)
{
    char p[700];
    path_of(f, name, p, sizeof p);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* Regular files in dir (or dir/sub) whose name contains `part`. */
static int count_files(const fixture *f, const char *sub, const char *part)
{
    char p[700];
    if (sub)
        path_of(f, sub, p, sizeof p);
    else
        snprintf(p, sizeof p, "%s", f->dir);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_REG && strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static int quarantined(const fixture *f)
{
    return count_files(f, "quarantine", ".kv.");
}

static void flip_bit(const fixture *f, const char *name, uint64_t off, int bit)
{
    char p[700];
    path_of(f, name, p, sizeof p);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void truncate_file(const fixture *f, const char *name, uint64_t size)
{
    char p[700];
    path_of(f, name, p, sizeof p);
    assert_int_equal(truncate(p, (off_t)size), 0);
}

/*
 * Loading key fails with `want`; the file went to quarantine, the index row
 * is gone, the pool holds nothing and the next load is a plain miss.
 */
static void load_fails_and_quarantines(fixture *f, const char *key, sem_status want,
                                       const char *detail)
{
    int before = quarantined(f);
    block_table *t = (block_table *)1;
    sem_err err = {0};
    sem_status st = f->ws.ops->load(f->ws.self, key, f->pool, &t, &err);
    if (st != want)
        fail_msg("load %s: %s (%s), expected %s", key, sem_status_name(st), err.detail,
                 sem_status_name(want));
    assert_null(t);
    if (detail)
        assert_contains(err.detail, detail);
    assert_contains(err.detail, "moved to quarantine/");
    assert_int_equal(quarantined(f), before + 1);
    char name[256];
    snprintf(name, sizeof name, "%s.kv", key);
    assert_false(exists(f, name));
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, key, &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(block_pool_used(f->pool), 0);
    assert_int_equal(block_pool_owner_count(f->pool), 0);
    assert_int_equal(f->ws.ops->load(f->ws.self, key, f->pool, &t, NULL), SEM_ENOTFOUND);
    assert_contains(f->last_log, "quarantined");
}

/* Offsets where chunks start in a file of n tokens in chunks of 16 with
 * the default (q8_0) payload; returns how many (the last is the size). */
static size_t chunk_offsets(uint32_t n, uint64_t *out)
{
    cache_spec s = store_spec(16, CACHE_KV_F16);
    uint64_t per_token = s.n_kv_heads * (kv_payload_row_bytes(KV_PAYLOAD_Q8_0, s.k_head_dim) +
                                         kv_payload_row_bytes(KV_PAYLOAD_Q8_0, s.v_head_dim));
    uint64_t off = 64 + 8 * s.n_layers + 4 * n + 8;
    size_t k = 0;
    out[k++] = off;
    for (uint32_t l = 0; l < s.n_layers; l++) {
        uint64_t kept = cache_spec_kept_tokens(&s, l, n);
        for (uint64_t a = 0; a < kept; a += 16) {
            uint64_t len = kept - a < 16 ? kept - a : 16;
            off += len * per_token + 8;
            out[k++] = off;
        }
    }
    return k;
}

/* ------------------------------------------------------------ the port */

static void save_load_get_touch_list_remove(void **state)
{
    fixture *f = *state;
    const warm_store_ops *ops = f->ws.ops;
    void *self = f->ws.self;
    save(f, "alice", 1, 100);
    assert_true(exists(f, "alice.kv"));
    warm_info info;
    assert_int_equal(ops->get(self, "alice", &info, NULL), SEM_OK);
    assert_string_equal(info.key, "alice");
    assert_int_equal(info.tokens, 100);
    assert_int_equal(info.bytes, size_of(f, "alice.kv"));
    assert_int_equal(info.hits, 0);
    assert_int_equal(ops->disk_bytes(self), info.bytes);
    int64_t created = info.created_ms;
    assert_int_equal(info.last_use_ms, created);

    load_is(f, "alice", 1, 100); /* a load sets the last use; hits come from touch() */
    assert_int_equal(ops->get(self, "alice", &info, NULL), SEM_OK);
    assert_int_equal(info.hits, 0);
    assert_true(info.last_use_ms > created);
    assert_int_equal(info.created_ms, created);

    assert_int_equal(ops->touch(self, "alice", 60, NULL), SEM_OK);
    assert_int_equal(ops->get(self, "alice", &info, NULL), SEM_OK);
    assert_int_equal(info.hits, 1);
    assert_int_equal(info.tokens_saved, 60);
    assert_int_equal(ops->touch(self, "bob", 1, NULL), SEM_ENOTFOUND);

    int32_t *tok = NULL;
    uint32_t n = 0;
    assert_int_equal(ops->peek(self, "alice", &tok, &n, NULL), SEM_OK);
    assert_int_equal(n, 100);
    assert_int_equal(tok[99], test_token(1, 99));
    free(tok);

    save(f, "bob", 2, 5);
    warm_info *list = NULL;
    size_t count = 0;
    assert_int_equal(ops->list(self, "", &list, &count, NULL), SEM_OK);
    assert_int_equal(count, 2);
    assert_string_equal(list[0].key, "alice"); /* used before bob was saved */
    assert_string_equal(list[1].key, "bob");
    free(list);
    assert_int_equal(ops->list(self, "bo", &list, &count, NULL), SEM_OK);
    assert_int_equal(count, 1);
    free(list);

    assert_int_equal(ops->remove(self, "alice", NULL), SEM_OK);
    assert_false(exists(f, "alice.kv"));
    sem_err err = {0};
    assert_int_equal(ops->remove(self, "alice", &err), SEM_ENOTFOUND);
    assert_int_equal(ops->get(self, "alice", &info, NULL), SEM_ENOTFOUND);
    block_table *t = NULL;
    assert_int_equal(ops->load(self, "alice", f->pool, &t, &err), SEM_ENOTFOUND);
    assert_contains(err.detail, "'alice' has no saved memory");
    assert_int_equal(ops->peek(self, "alice", &tok, &n, NULL), SEM_ENOTFOUND);
    assert_int_equal(ops->disk_bytes(self), size_of(f, "bob.kv"));
}

/* A second save replaces the first whole; created is kept; no temp file stays. */
static void save_replaces_the_old_file(void **state)
{
    fixture *f = *state;
    save(f, "a", 1, 100);
    warm_info before, after;
    assert_int_equal(f->ws.ops->get(f->ws.self, "a", &before, NULL), SEM_OK);
    save(f, "a", 2, 17);
    load_is(f, "a", 2, 17);
    assert_int_equal(f->ws.ops->get(f->ws.self, "a", &after, NULL), SEM_OK);
    assert_int_equal(after.tokens, 17);
    assert_int_equal(after.bytes, size_of(f, "a.kv"));
    assert_int_equal(after.created_ms, before.created_ms);
    assert_int_equal(count_files(f, NULL, ".tmp-"), 0);
}

static void every_payload_type_round_trips(void **state)
{
    fixture *f = *state;
    static const kv_payload P[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
    static const double REL[] = {2.0 / 1024, 2.0 / 1024 + 1.0 / 127, 2.0 / 1024 + 1.0 / 7};
    for (int i = 0; i < 3; i++) {
        disk_store_opts o = opts_for(f, FP, 0);
        o.payload = P[i];
        open_store_with(f, &o);
        save(f, "p", 40 + (uint64_t)i, 33);
        block_table *t = NULL;
        assert_int_equal(f->ws.ops->load(f->ws.self, "p", f->pool, &t, NULL), SEM_OK);
        assert_table_is(t, 40 + (uint64_t)i, 33, REL[i]);
        block_table_destroy(t);
    }
}

static void bad_keys_are_refused(void **state)
{
    fixture *f = *state;
    const warm_store_ops *ops = f->ws.ops;
    void *self = f->ws.self;
    char long_key[WARM_KEY_MAX + 2];
    memset(long_key, 'k', WARM_KEY_MAX + 1);
    long_key[WARM_KEY_MAX + 1] = '\0';
    const char *bad[] = {"../x", "", "a/b", ".hidden", long_key, "a b", "x\n", "..", "/abs"};
    block_pool *p = store_pool(16, CACHE_KV_F16, 16);
    block_table *t = make_table(p, 1, 3, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sem_err err = {0};
        block_table *out = NULL;
        int32_t *tok = NULL;
        uint32_t n = 0;
        warm_info info;
        assert_int_equal(ops->save(self, bad[i], t, NULL, &err), SEM_EREQUEST);
        assert_contains(err.detail, "agent key");
        assert_int_equal(ops->load(self, bad[i], f->pool, &out, NULL), SEM_EREQUEST);
        assert_int_equal(ops->peek(self, bad[i], &tok, &n, NULL), SEM_EREQUEST);
        assert_int_equal(ops->remove(self, bad[i], NULL), SEM_EREQUEST);
        assert_int_equal(ops->get(self, bad[i], &info, NULL), SEM_EREQUEST);
        assert_int_equal(ops->touch(self, bad[i], 1, NULL), SEM_EREQUEST);
    }
    assert_int_equal(ops->save(self, NULL, t, NULL, NULL), SEM_EREQUEST);
    /* Nothing was written anywhere, in the folder or beside it. */
    assert_int_equal(count_files(f, NULL, ".kv"), 0);
    char parent_x[700];
    snprintf(parent_x, sizeof parent_x, "%s/../x.kv", f->dir);
    struct stat sb;
    assert_int_not_equal(stat(parent_x, &sb), 0);
    /* The longest key and every allowed character work. */
    long_key[WARM_KEY_MAX] = '\0';
    assert_int_equal(ops->save(self, long_key, t, NULL, NULL), SEM_OK);
    assert_int_equal(ops->save(self, "Az09_.-x", t, NULL, NULL), SEM_OK);
    block_table *out = NULL;
    assert_int_equal(ops->load(self, long_key, f->pool, &out, NULL), SEM_OK);
    block_table_destroy(out);
    assert_int_equal(ops->remove(self, long_key, NULL), SEM_OK);
    block_table_destroy(t);
    block_pool_destroy(p);
}

static void an_empty_table_is_not_saved(void **state)
{
    fixture *f = *state;
    block_table *t = block_table_create(f->pool, "empty", NULL);
    sem_err err = {0};
    assert_int_equal(f->ws.ops->save(f->ws.self, "e", t, NULL, &err), SEM_EINVAL);
    assert_contains(err.detail, "no tokens");
    assert_false(exists(f, "e.kv"));
    block_table_destroy(t);
}

/* ------------------------------------------------------------ bad files */

/* Truncated at every chunk boundary (and one byte either side), inside the
 * header and at random offsets: corrupt, quarantined, row gone. */
static void truncated_files_are_quarantined(void **state)
{
    fixture *f = *state;
    uint64_t offs[64];
    size_t k = chunk_offsets(100, offs);
    assert_int_equal(k, 1 + 7 + 7 + 2);
    uint64_t cuts[256];
    size_t n = 0;
    for (size_t i = 0; i + 1 < k; i++) { /* every boundary but the end of the file */
        cuts[n++] = offs[i];
        cuts[n++] = offs[i] - 1;
        cuts[n++] = offs[i] + 1;
    }
    cuts[n++] = offs[k - 1] - 1; /* one byte short */
    static const uint64_t HEADER_CUTS[] = {0, 1, 8, 12, 63, 64, 70, 100};
    for (size_t i = 0; i < sizeof HEADER_CUTS / sizeof HEADER_CUTS[0]; i++)
        cuts[n++] = HEADER_CUTS[i];
    uint64_t rng = 99;
    for (int i = 0; i < 12; i++)
        cuts[n++] = test_rand(&rng) % offs[k - 1];
    for (size_t i = 0; i < n; i++) {
        save(f, "t", 3, 100);
        assert_int_equal(size_of(f, "t.kv"), offs[k - 1]);
        truncate_file(f, "t.kv", cuts[i]);
        load_fails_and_quarantines(f, "t", SEM_ECORRUPT, "truncated");
    }
}

static void bit_flips_are_quarantined(void **state)
{
    fixture *f = *state;
    uint64_t offs[64];
    size_t k = chunk_offsets(100, offs);
    uint64_t header = offs[0];
    /* Header: magic, version, preamble check, fingerprint, geometry, payload,
     * chunk size, tokens count, flags, file size, layer table, tokens, checksum. */
    static const uint64_t HEADER_OFFS[] = {0, 7, 8, 12, 16, 23, 24, 28, 32, 36, 40,
                                           44, 48, 52, 56, 64, 80, 88, 200, 487, 488, 495};
    for (size_t i = 0; i < sizeof HEADER_OFFS / sizeof HEADER_OFFS[0]; i++) {
        assert_true(HEADER_OFFS[i] < header);
        save(f, "b", 4, 100);
        flip_bit(f, "b.kv", HEADER_OFFS[i], (int)(i % 8));
        load_fails_and_quarantines(f, "b", SEM_ECORRUPT, "offset");
    }
    uint64_t rng = 5;
    for (int i = 0; i < 16; i++) {
        uint64_t off = header + test_rand(&rng) % (offs[k - 1] - header);
        save(f, "b", 4, 100);
        flip_bit(f, "b.kv", off, i % 8);
        load_fails_and_quarantines(f, "b", SEM_ECORRUPT, "fails its checksum");
    }
    /* peek reads only the header, and quarantines a bad one too. */
    save(f, "b", 4, 100);
    flip_bit(f, "b.kv", 300, 0); /* a token */
    int32_t *tok = NULL;
    uint32_t n = 0;
    sem_err err = {0};
    assert_int_equal(f->ws.ops->peek(f->ws.self, "b", &tok, &n, &err), SEM_ECORRUPT);
    assert_null(tok);
    assert_contains(err.detail, "checksum");
    assert_false(exists(f, "b.kv"));
}

/* A file of another model: left alone by open, never listed, but counted
 * in the folder's disk budget; a load quarantines it. */
static void another_models_file_is_never_served(void **state)
{
    fixture *f = *state;
    save(f, "m", 1, 20);
    open_store(f, FP_OTHER, 0);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.foreign, 1);
    assert_int_equal(rep.files, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_true(exists(f, "m.kv"));
    warm_info *list = NULL;
    size_t count = 9;
    assert_int_equal(f->ws.ops->list(f->ws.self, "", &list, &count, NULL), SEM_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), size_of(f, "m.kv"));
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "m", &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(f->ws.ops->touch(f->ws.self, "m", 1, NULL), SEM_ENOTFOUND);
    load_fails_and_quarantines(f, "m", SEM_EINCOMPAT, "another model");
    /* The first model no longer finds it either. */
    open_store(f, FP, 0);
    assert_int_equal(f->ws.ops->get(f->ws.self, "m", &info, NULL), SEM_ENOTFOUND);
}

/* Rewrites the version of file `name` (with a valid preamble check). */
static void set_version(const fixture *f, const char *name, uint32_t version)
{
    char p[700];
    path_of(f, name, p, sizeof p);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t pre[16];
    assert_int_equal(pread(fd, pre, 16, 0), 16);
    memcpy(pre + 8, &version, 4);
    uint32_t check = XXH32(pre, 12, 0);
    memcpy(pre + 12, &check, 4);
    assert_int_equal(pwrite(fd, pre, 16, 0), 16);
    close(fd);
}

/* Version 0 passes the preamble check but no release wrote it: quarantined. */
static void a_version_no_release_wrote_is_quarantined_on_load(void **state)
{
    fixture *f = *state;
    save(f, "v", 1, 20);
    set_version(f, "v.kv", 0);
    load_fails_and_quarantines(f, "v", SEM_EINCOMPAT, "format version 0");
}

/* A file a later release wrote, met by load or peek: not loaded, not
 * quarantined, kept where it is and counted; the agent's next save
 * replaces it, remove deletes it. */
static void a_newer_version_met_at_load_is_kept_and_counted(void **state)
{
    fixture *f = *state;
    save(f, "v", 1, 20);
    uint64_t size = size_of(f, "v.kv");
    set_version(f, "v.kv", KV_FILE_VERSION + 1);
    for (int peek = 0; peek < 2; peek++) {
        block_table *t = (block_table *)1;
        sem_err err = {0};
        int32_t *tok = NULL;
        uint32_t n = 0;
        sem_status st = peek ? f->ws.ops->peek(f->ws.self, "v", &tok, &n, &err)
                             : f->ws.ops->load(f->ws.self, "v", f->pool, &t, &err);
        assert_int_equal(st, SEM_EINCOMPAT);
        assert_contains(err.detail, "is newer than this build reads");
        assert_contains(err.detail, "kept on disk");
        assert_contains(f->last_log, "agent 'v' not loaded");
        assert_null(tok);
        assert_int_equal(block_pool_used(f->pool), 0);
        assert_true(exists(f, "v.kv"));
        assert_int_equal(quarantined(f), 0);
        assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), size);
    }
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "v", &info, NULL), SEM_ENOTFOUND);
    /* A save replaces it: counted once, as the new file. */
    save(f, "v", 2, 30);
    load_is(f, "v", 2, 30);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), size_of(f, "v.kv"));
    /* Remove deletes one like any agent file. */
    set_version(f, "v.kv", KV_FILE_VERSION + 1);
    block_table *t = NULL;
    assert_int_equal(f->ws.ops->load(f->ws.self, "v", f->pool, &t, NULL), SEM_EINCOMPAT);
    assert_int_equal(f->ws.ops->remove(f->ws.self, "v", NULL), SEM_OK);
    assert_false(exists(f, "v.kv"));
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), 0);
}

static void other_geometry_is_quarantined_on_load(void **state)
{
    fixture *f = *state;
    save(f, "g", 1, 20);
    cache_spec s = store_spec(16, CACHE_KV_F16);
    s.layers[2].window = 32;
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * 32, NULL);
    block_pool *mine = f->pool;
    f->pool = p;
    load_fails_and_quarantines(f, "g", SEM_EINCOMPAT, "layer 2");
    f->pool = mine;
    block_pool_destroy(p);
}

/* A pool without room is SEM_EPOOL: the file is fine and stays. */
static void a_full_pool_is_not_the_files_fault(void **state)
{
    fixture *f = *state;
    save(f, "big", 1, 100);
    block_pool *small = store_pool(16, CACHE_KV_F16, 4);
    block_table *t = NULL;
    assert_int_equal(f->ws.ops->load(f->ws.self, "big", small, &t, NULL), SEM_EPOOL);
    assert_int_equal(block_pool_used(small), 0);
    block_pool_destroy(small);
    assert_true(exists(f, "big.kv"));
    assert_int_equal(quarantined(f), 0);
    load_is(f, "big", 1, 100);
}

/* ------------------------------------------------------------ reconcile */

static void open_reconciles_folder_and_index(void **state)
{
    fixture *f = *state;
    save(f, "x", 1, 40);
    save(f, "w", 2, 100);
    save(f, "z", 3, 10);
    save(f, "trunc", 4, 30);
    save(f, "a.kv.tmp-1", 5, 3); /* a valid key that looks like a temp name */
    load_is(f, "w", 2, 100);
    assert_int_equal(f->ws.ops->touch(f->ws.self, "w", 0, NULL), SEM_OK); /* hits 1: kept when its row is re-read */
    close_store(f);

    char a[700], b[700];
    size_t n;
    /* y.kv: a copy of x with no row. */
    path_of(f, "x.kv", a, sizeof a);
    uint8_t *bytes = read_file(a, &n);
    path_of(f, "y.kv", b, sizeof b);
    write_file(b, bytes, n);
    /* w.kv replaced by x's content: its row disagrees. */
    path_of(f, "w.kv", b, sizeof b);
    write_file(b, bytes, n);
    free(bytes);
    /* z.kv deleted: a row without a file. */
    path_of(f, "z.kv", a, sizeof a);
    assert_int_equal(unlink(a), 0);
    /* trunc.kv truncated: a row whose file is damaged. */
    truncate_file(f, "trunc.kv", 300);
    /* junk.kv: garbage without a row. */
    path_of(f, "junk.kv", a, sizeof a);
    write_file(a, "not a cache file", 16);
    /* Interrupted saves. */
    path_of(f, "x.kv.tmp-00112233aabbccdd", a, sizeof a);
    write_file(a, "partial", 7);
    path_of(f, "new.kv.tmp-0", a, sizeof a);
    write_file(a, "", 0);
    /* Not ours: left alone. */
    path_of(f, "notes.txt", a, sizeof a);
    write_file(a, "hello", 5);
    path_of(f, ".hidden.kv", a, sizeof a);
    write_file(a, "hello", 5);

    open_store(f, FP, 0);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.temp_removed, 2);
    assert_int_equal(rep.reindexed, 1);
    assert_int_equal(rep.rows_updated, 1);
    assert_int_equal(rep.rows_dropped, 2); /* z (missing), trunc (quarantined) */
    assert_int_equal(rep.quarantined, 2);  /* trunc, junk */
    assert_int_equal(rep.files, 4);        /* x, y, w, a.kv.tmp-1 */
    assert_false(exists(f, "x.kv.tmp-00112233aabbccdd"));
    assert_false(exists(f, "new.kv.tmp-0"));
    assert_true(exists(f, "a.kv.tmp-1.kv"));
    assert_int_equal(quarantined(f), 2);
    assert_true(exists(f, "notes.txt"));
    assert_true(exists(f, ".hidden.kv"));

    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "y", &info, NULL), SEM_OK);
    assert_int_equal(info.tokens, 40);
    assert_int_equal(info.bytes, size_of(f, "y.kv"));
    assert_int_equal(f->ws.ops->get(f->ws.self, "w", &info, NULL), SEM_OK);
    assert_int_equal(info.tokens, 40);
    assert_int_equal(info.bytes, size_of(f, "w.kv"));
    assert_int_equal(info.hits, 1);
    assert_int_equal(f->ws.ops->get(f->ws.self, "z", &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(f->ws.ops->get(f->ws.self, "trunc", &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(f->ws.ops->get(f->ws.self, "junk", &info, NULL), SEM_ENOTFOUND);
    load_is(f, "y", 1, 40);
    load_is(f, "w", 1, 40);
    load_is(f, "a.kv.tmp-1", 5, 3);
    warm_info *list = NULL;
    size_t count = 0;
    assert_int_equal(f->ws.ops->list(f->ws.self, "", &list, &count, NULL), SEM_OK);
    assert_int_equal(count, 4);
    free(list);
    /* The budget counts the quarantined files too (trunc: 300 bytes, junk: 16). */
    assert_int_equal(rep.in_quarantine, 2);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self),
                     size_of(f, "x.kv") + size_of(f, "y.kv") + size_of(f, "w.kv") +
                         size_of(f, "a.kv.tmp-1.kv") + 300 + 16);

    /* A clean folder reopens with nothing to repair. */
    open_store(f, FP, 0);
    rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.files, 4);
    assert_int_equal(rep.reindexed + rep.rows_updated + rep.rows_dropped + rep.quarantined +
                         rep.temp_removed,
                     0);
}

/* Files of a newer version are a later semantic's: open keeps them where
 * they are, counts them, says so, and never indexes them. */
static void open_keeps_and_counts_newer_versions(void **state)
{
    fixture *f = *state;
    save(f, "n", 1, 20);
    close_store(f);
    set_version(f, "n.kv", KV_FILE_VERSION + 1);
    f->all_log[0] = '\0';
    open_store(f, FP, 0);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.newer, 1);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.files, 0);
    assert_true(exists(f, "n.kv"));
    assert_contains(f->all_log, "kept, counted in the disk budget, never loaded");
    assert_contains(f->all_log, "is newer than this build reads");
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "n", &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), size_of(f, "n.kv"));
    /* And again at the next open: still there, still counted. */
    open_store(f, FP, 0);
    assert_int_equal(disk_store_open_report(f->ds).newer, 1);
    assert_true(exists(f, "n.kv"));
}

static void a_folder_serves_one_store_at_a_time(void **state)
{
    fixture *f = *state;
    disk_store_opts o = opts_for(f, FP, 0);
    sem_err err = {0};
    assert_null(disk_store_open(&o, &err));
    assert_int_equal(err.status, SEM_EBUSY);
    assert_contains(err.detail, "in use");
    close_store(f);
    disk_store *s = disk_store_open(&o, &err);
    assert_non_null(s);
    disk_store_close(s);
    open_store(f, FP, 0);
}

static void open_refuses_bad_options(void **state)
{
    fixture *f = *state;
    sem_err err = {0};
    assert_null(disk_store_open(NULL, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    disk_store_opts o = opts_for(f, FP, 0);
    o.payload = (kv_payload)7;
    assert_null(disk_store_open(&o, &err));
    assert_int_equal(err.status, SEM_EINVAL);
    o = opts_for(f, FP, 0);
    o.dir = "/proc/semantic-cannot-be-here/x";
    assert_null(disk_store_open(&o, &err));
    assert_int_equal(err.status, SEM_EIO);
    assert_contains(err.detail, "/proc/semantic-cannot-be-here");
}

/* The folder is created with its parents. */
static void open_creates_the_folder(void **state)
{
    fixture *f = *state;
    char sub[700];
    snprintf(sub, sizeof sub, "%s/deep/er/agents", f->dir);
    disk_store_opts o = opts_for(f, FP, 0);
    o.dir = sub;
    disk_store *s = disk_store_open(&o, NULL);
    assert_non_null(s);
    disk_store_close(s);
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

/* ------------------------------------------------------------ disk full */

static void a_full_disk_changes_nothing(void **state)
{
    fixture *f = *state;
    save(f, "a", 1, 100);
    warm_info before, after;
    assert_int_equal(f->ws.ops->get(f->ws.self, "a", &before, NULL), SEM_OK);
    for (int at = 1; at <= 3; at++) { /* the header write, the first chunk, a later one */
        f->writes = 0;
        f->fail_at = at * at;
        block_pool *p = store_pool(16, CACHE_KV_F16, 64);
        block_table *t = make_table(p, 2, 60, 1);
        sem_err err = {0};
        assert_int_equal(f->ws.ops->save(f->ws.self, "a", t, NULL, &err), SEM_EIO);
        assert_contains(err.detail, "saving agent 'a'");
        assert_contains(err.detail, "No space left on device");
        block_table_destroy(t);
        block_pool_destroy(p);
        assert_int_equal(count_files(f, NULL, ".tmp-"), 0);
        assert_int_equal(f->ws.ops->get(f->ws.self, "a", &after, NULL), SEM_OK);
        assert_memory_equal(&before, &after, sizeof before);
    }
    f->fail_at = 0;
    load_is(f, "a", 1, 100);
    /* A new key that fails leaves no file and no row. */
    f->writes = 0;
    f->fail_at = 1;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 3, 10, 0);
    assert_int_equal(f->ws.ops->save(f->ws.self, "b", t, NULL, NULL), SEM_EIO);
    block_table_destroy(t);
    block_pool_destroy(p);
    assert_false(exists(f, "b.kv"));
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "b", &info, NULL), SEM_ENOTFOUND);
    /* Room again: the next save succeeds. */
    f->fail_at = 0;
    save(f, "a", 2, 60);
    load_is(f, "a", 2, 60);
    save(f, "b", 3, 10);
    load_is(f, "b", 3, 10);
}

/* ------------------------------------------------------------ stop */

static void a_stopped_save_changes_nothing(void **state)
{
    fixture *f = *state;
    f->writes = 0;
    save(f, "a", 1, 100);
    int n_writes = f->writes;
    assert_true(n_writes > 2);
    warm_info before, after;
    assert_int_equal(f->ws.ops->get(f->ws.self, "a", &before, NULL), SEM_OK);
    /* Stopped before it starts, at the header, at the first chunk, at the last write (seen
     * by the check before fsync). */
    const int at[] = {0, 1, 2, n_writes};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        f->writes = 0;
        f->stop_at = at[i];
        atomic_store(&f->stop, at[i] == 0);
        block_pool *p = store_pool(16, CACHE_KV_F16, 64);
        block_table *t = make_table(p, 2, 100, 1);
        sem_err err = {0};
        assert_int_equal(f->ws.ops->save(f->ws.self, "a", t, &f->stop, &err), SEM_ECANCELLED);
        assert_contains(err.detail, "stopped");
        block_table_destroy(t);
        block_pool_destroy(p);
        assert_int_equal(count_files(f, NULL, ".tmp-"), 0);
        assert_int_equal(f->ws.ops->get(f->ws.self, "a", &after, NULL), SEM_OK);
        assert_memory_equal(&before, &after, sizeof before);
    }
    f->stop_at = 0;
    atomic_store(&f->stop, 0);
    load_is(f, "a", 1, 100);
    /* Not stopped: the save goes through. */
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 2, 100, 1);
    assert_int_equal(f->ws.ops->save(f->ws.self, "a", t, &f->stop, NULL), SEM_OK);
    block_table_destroy(t);
    block_pool_destroy(p);
    load_is(f, "a", 2, 100);
}

/* ------------------------------------------------------------ budget */

/* Appends ",name" (or "name" first) to out. */
static void join(char *out, size_t cap, const char *name)
{
    size_t len = strlen(out), add = strlen(name);
    assert_true(len + add + 2 < cap);
    if (len)
        out[len++] = ',';
    memcpy(out + len, name, add + 1);
}

/* The keys of the agent files in the folder, sorted, comma-separated. */
static void folder_keys(const fixture *f, char *out, size_t cap)
{
    DIR *d = opendir(f->dir);
    char names[64][64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (e->d_type == DT_REG && len > 3 && strcmp(e->d_name + len - 3, ".kv") == 0)
            snprintf(names[n++], 64, "%.*s", (int)(len - 3), e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        join(out, cap, names[i]);
}

static void listed_keys(fixture *f, char *out, size_t cap)
{
    warm_info *list = NULL;
    size_t n = 0;
    assert_int_equal(f->ws.ops->list(f->ws.self, "", &list, &n, NULL), SEM_OK);
    char names[64][64];
    for (size_t i = 0; i < n; i++)
        snprintf(names[i], 64, "%.60s", list[i].key);
    free(list);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        join(out, cap, names[i]);
}

static void the_budget_evicts_least_recently_used_first(void **state)
{
    fixture *f = *state;
    save(f, "probe", 1, 40);
    uint64_t one = size_of(f, "probe.kv");
    assert_int_equal(f->ws.ops->remove(f->ws.self, "probe", NULL), SEM_OK);
    uint64_t budget = 3 * one + one / 2;
    open_store(f, FP, budget);
    char dir_keys[1024], idx_keys[1024];
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "a%d", i);
        save(f, key, (uint64_t)i, 40);
        if (i >= 1)
            load_is(f, "a0", 0, 40); /* a0 stays the most recently used but one */
        uint64_t total = f->ws.ops->disk_bytes(f->ws.self);
        assert_true(total <= budget);
        folder_keys(f, dir_keys, sizeof dir_keys);
        listed_keys(f, idx_keys, sizeof idx_keys);
        assert_string_equal(dir_keys, idx_keys);
        uint64_t on_disk = 0;
        warm_info *list = NULL;
        size_t n = 0;
        assert_int_equal(f->ws.ops->list(f->ws.self, "", &list, &n, NULL), SEM_OK);
        for (size_t j = 0; j < n; j++) {
            char name[64];
            snprintf(name, sizeof name, "%.60s.kv", list[j].key);
            on_disk += size_of(f, name);
        }
        free(list);
        assert_int_equal(on_disk, total);
    }
    assert_string_equal(dir_keys, "a0,a8,a9");
    /* A file that alone exceeds the budget is refused, and nothing is lost
     * for it: the budget holds at every moment. */
    sem_err err = {0};
    block_pool *hp = store_pool(16, CACHE_KV_F16, 64);
    block_table *huge = make_table(hp, 7, 200, 1);
    assert_int_equal(f->ws.ops->save(f->ws.self, "huge", huge, NULL, &err), SEM_ETOOLARGE);
    assert_contains(err.detail, "exceeds the disk budget");
    block_table_destroy(huge);
    block_pool_destroy(hp);
    folder_keys(f, dir_keys, sizeof dir_keys);
    assert_string_equal(dir_keys, "a0,a8,a9");
    /* A lower budget holds from the next open: the least recently used go. */
    open_store(f, FP, one + one / 2);
    folder_keys(f, dir_keys, sizeof dir_keys);
    assert_string_equal(dir_keys, "a0");
    assert_true(f->ws.ops->disk_bytes(f->ws.self) <= one + one / 2);
}

/* Sum of the sizes of every file in the folder and in quarantine/. */
static uint64_t folder_bytes(const fixture *f)
{
    uint64_t total = 0;
    for (int q = 0; q < 2; q++) {
        char p[700];
        if (q)
            path_of(f, "quarantine", p, sizeof p);
        else
            snprintf(p, sizeof p, "%s", f->dir);
        DIR *d = opendir(p);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (e->d_type != DT_REG || (!q && (len < 3 || strcmp(e->d_name + len - 3, ".kv"))))
                continue;
            char fp[1000];
            snprintf(fp, sizeof fp, "%s/%s", p, e->d_name);
            struct stat sb;
            assert_int_equal(stat(fp, &sb), 0);
            total += (uint64_t)sb.st_size;
        }
        closedir(d);
    }
    return total;
}

/*
 * The budget is the folder's: agent files of every model, files of a
 * newer version and quarantined files all count, and all can go. Under
 * pressure the quarantined files go first, then the newer ones, then
 * agents of any model, least recently used first.
 */
static void the_budget_counts_every_file_and_evicts_the_useless_first(void **state)
{
    fixture *f = *state;
    save(f, "probe", 1, 40);
    uint64_t one = size_of(f, "probe.kv");
    assert_int_equal(f->ws.ops->remove(f->ws.self, "probe", NULL), SEM_OK);
    open_store(f, FP_OTHER, 0);
    save(f, "foreign", 1, 40); /* another model's agent, the least recently used */
    open_store(f, FP, 0);
    save(f, "q", 2, 40);
    flip_bit(f, "q.kv", size_of(f, "q.kv") - 20, 3);
    load_fails_and_quarantines(f, "q", SEM_ECORRUPT, "checksum");
    save(f, "n", 3, 40);
    save(f, "mine", 4, 40);
    close_store(f);
    set_version(f, "n.kv", KV_FILE_VERSION + 1);

    uint64_t budget = 4 * one + one / 2;
    open_store(f, FP, budget);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.files, 1);
    assert_int_equal(rep.foreign, 1);
    assert_int_equal(rep.newer, 1);
    assert_int_equal(rep.in_quarantine, 1);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), 4 * one);
    assert_int_equal(folder_bytes(f), 4 * one);

    static const struct {
        const char *save;
        const char *keys; /* agent files left (.kv in the folder) */
        int quarantined;
    } steps[] = {
        {"x1", "foreign,mine,n,x1", 0},  /* the quarantined file went */
        {"x2", "foreign,mine,x1,x2", 0}, /* then the newer one */
        {"x3", "mine,x1,x2,x3", 0},      /* then the least recently used agent, of any model */
        {"x4", "x1,x2,x3,x4", 0},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        save(f, steps[i].save, 10 + i, 40);
        char keys[1024];
        folder_keys(f, keys, sizeof keys);
        assert_string_equal(keys, steps[i].keys);
        assert_int_equal(quarantined(f), steps[i].quarantined);
        uint64_t total = f->ws.ops->disk_bytes(f->ws.self);
        assert_true(total <= budget);
        assert_int_equal(total, folder_bytes(f));
    }
    assert_contains(f->all_log, "deleted");
    assert_contains(f->all_log, "an agent of another model");
}

/* A file that cannot be read is left where it is, counted, and deleted
 * when the budget needs room. (Root reads anything: skipped as root.) */
static void unreadable_files_are_counted_and_evictable(void **state)
{
    fixture *f = *state;
    if (geteuid() == 0)
        skip();
    save(f, "u", 1, 40);
    uint64_t one = size_of(f, "u.kv");
    assert_int_equal(f->ws.ops->remove(f->ws.self, "u", NULL), SEM_OK);
    save(f, "u", 1, 40);
    close_store(f);
    char p[700];
    path_of(f, "u.kv", p, sizeof p);
    /* No row for it either: the index forgot it. */
    path_of(f, "index.sqlite", p, sizeof p);
    assert_int_equal(unlink(p), 0);
    path_of(f, "u.kv", p, sizeof p);
    assert_int_equal(chmod(p, 0), 0);
    open_store(f, FP, 2 * one + one / 2);
    assert_int_equal(disk_store_open_report(f->ds).unreadable, 1);
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), one);
    assert_contains(f->all_log, "cannot read");
    save(f, "a", 2, 40);
    assert_true(exists(f, "u.kv"));
    save(f, "b", 3, 40); /* needs room: the unreadable file goes first */
    assert_false(exists(f, "u.kv"));
    assert_true(exists(f, "a.kv") && exists(f, "b.kv"));
}

/* ------------------------------------------------------------ fsync */

/*
 * Every folder fsync is checked. A save or a remove whose fsync fails
 * returns SEM_EIO saying what is done and what may not survive a power
 * cut; a quarantine says so in its error; all are counted and logged.
 */
static void failed_folder_fsyncs_are_reported(void **state)
{
    fixture *f = *state;
    save(f, "a", 1, 40);
    save(f, "b", 2, 40);
    f->fsync_fail = EIO;
    f->fsyncs = 0;
    uint64_t before = disk_store_fsync_failures(f->ds);
    /* save: the file is in place and indexed, but the caller hears of it. */
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 5, 30, 1);
    sem_err err = {0};
    assert_int_equal(f->ws.ops->save(f->ws.self, "c", t, NULL, &err), SEM_EIO);
    assert_contains(err.detail, "fsync");
    assert_contains(err.detail, "may not survive a power cut");
    block_table_destroy(t);
    block_pool_destroy(p);
    assert_int_equal(disk_store_fsync_failures(f->ds), before + 1);
    assert_contains(f->last_log, "Input/output error");
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "c", &info, NULL), SEM_OK);
    /* remove: the file and its row are gone; SEM_EIO says the deletion may come back. */
    err = (sem_err){0};
    assert_int_equal(f->ws.ops->remove(f->ws.self, "a", &err), SEM_EIO);
    assert_contains(err.detail, "removing agent 'a': fsync");
    assert_false(exists(f, "a.kv"));
    assert_int_equal(f->ws.ops->get(f->ws.self, "a", &info, NULL), SEM_ENOTFOUND);
    assert_int_equal(disk_store_fsync_failures(f->ds), before + 2);
    /* quarantine: the load fails as it would, and the error adds the fsync. */
    flip_bit(f, "b.kv", size_of(f, "b.kv") - 20, 1);
    block_table *lt = NULL;
    err = (sem_err){0};
    assert_int_equal(f->ws.ops->load(f->ws.self, "b", f->pool, &lt, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "moved to quarantine/");
    assert_contains(err.detail, "fsync");
    assert_int_equal(disk_store_fsync_failures(f->ds), before + 3);
    assert_int_equal(f->fsyncs, 3);
    /* Room again: everything works and nothing more is counted. */
    f->fsync_fail = 0;
    save(f, "a", 3, 40);
    load_is(f, "a", 3, 40);
    assert_int_equal(disk_store_fsync_failures(f->ds), before + 3);
}

/* Making room for a save deletes files; when that deletion cannot be made
 * durable the save is not made (SEM_EIO) and the old files stay as they are. */
static void a_failed_fsync_while_making_room_stops_the_save(void **state)
{
    fixture *f = *state;
    save(f, "probe", 1, 40);
    uint64_t one = size_of(f, "probe.kv");
    assert_int_equal(f->ws.ops->remove(f->ws.self, "probe", NULL), SEM_OK);
    open_store(f, FP, 2 * one + one / 2);
    save(f, "a", 1, 40);
    save(f, "b", 2, 40);
    f->fsync_fail = EIO;
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = make_table(p, 5, 40, 1);
    sem_err err = {0};
    assert_int_equal(f->ws.ops->save(f->ws.self, "c", t, NULL, &err), SEM_EIO);
    assert_contains(err.detail, "making room under the disk budget");
    assert_contains(err.detail, "the save was not made");
    block_table_destroy(t);
    block_pool_destroy(p);
    assert_false(exists(f, "c.kv"));
    assert_false(exists(f, "a.kv")); /* the victim is gone */
    assert_true(exists(f, "b.kv"));
    assert_int_equal(count_files(f, NULL, ".tmp-"), 0);
    f->fsync_fail = 0;
    save(f, "c", 5, 40);
    load_is(f, "c", 5, 40);
}

/* Open repairs what it finds; an fsync failure there is logged and
 * counted, and the store opens (the repairs are redone next time). */
static void open_survives_a_failed_fsync(void **state)
{
    fixture *f = *state;
    save(f, "a", 1, 10);
    close_store(f);
    char p[700];
    path_of(f, "a.kv.tmp-00ff", p, sizeof p);
    write_file(p, "partial", 7);
    f->fsync_fail = EIO;
    open_store(f, FP, 0);
    f->fsync_fail = 0;
    assert_int_equal(disk_store_open_report(f->ds).temp_removed, 1);
    assert_int_equal(disk_store_fsync_failures(f->ds), 1);
    assert_contains(f->all_log, "after reconciling the folder: Input/output error");
    load_is(f, "a", 1, 10);
}

/* ------------------------------------------------------------ restarts */

static void the_index_survives_a_restart(void **state)
{
    fixture *f = *state;
    save(f, "r", 1, 30);
    load_is(f, "r", 1, 30);
    assert_int_equal(f->ws.ops->touch(f->ws.self, "r", 25, NULL), SEM_OK);
    warm_info before, after;
    assert_int_equal(f->ws.ops->get(f->ws.self, "r", &before, NULL), SEM_OK);
    open_store(f, FP, 0);
    assert_int_equal(f->ws.ops->get(f->ws.self, "r", &after, NULL), SEM_OK);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(after.hits, 1);
    assert_int_equal(after.tokens_saved, 25);
    load_is(f, "r", 1, 30);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(save_load_get_touch_list_remove),
        T(save_replaces_the_old_file),
        T(every_payload_type_round_trips),
        T(bad_keys_are_refused),
        T(an_empty_table_is_not_saved),
        T(truncated_files_are_quarantined),
        T(bit_flips_are_quarantined),
        T(another_models_file_is_never_served),
        T(a_version_no_release_wrote_is_quarantined_on_load),
        T(a_newer_version_met_at_load_is_kept_and_counted),
        T(other_geometry_is_quarantined_on_load),
        T(a_full_pool_is_not_the_files_fault),
        T(open_reconciles_folder_and_index),
        T(open_keeps_and_counts_newer_versions),
        T(a_folder_serves_one_store_at_a_time),
        T(open_refuses_bad_options),
        T(open_creates_the_folder),
        T(a_full_disk_changes_nothing),
        T(a_stopped_save_changes_nothing),
        T(the_budget_evicts_least_recently_used_first),
        T(the_budget_counts_every_file_and_evicts_the_useless_first),
        T(unreadable_files_are_counted_and_evictable),
        T(failed_folder_fsyncs_are_reported),
        T(a_failed_fsync_while_making_room_stops_the_save),
        T(open_survives_a_failed_fsync),
        T(the_index_survives_a_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
