/*
 * Allocation failures in the warm store: for every k, the k-th allocation
 * of reading a cache file (kv_file_read, every payload type into every
 * pool type), writing one (kv_file_write) and loading or saving an agent
 * through the disk store (its SQLite index included) fails. A failed read
 * or load reports SEM_ENOMEM and leaves the pool as it was; a failed write
 * or save leaves the table, and the agent's previous file, as they were; a
 * file is never quarantined for the reader's lack of memory; nothing leaks
 * (LSan in the ASan build).
 */
#include "store_test_util.h"

#include "adapters/store/disk_store.h"
#include "alloc_fail.h"

#define FP 0x5eed5eed12345678ull
#define SEED 5
#define N_TOKENS 45

static void assert_pool_empty(block_pool *p)
{
    assert_int_equal(block_pool_used(p), 0);
    assert_int_equal(block_pool_owner_count(p), 0);
}

static uint64_t write_kv(const char *path, const block_table *t, kv_payload payload)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    kv_file_write_opts o = {.fingerprint = FP, .payload = payload, .chunk_tokens = 16};
    uint64_t bytes = 0;
    sem_err err = {0};
    if (kv_file_write(fd, path, t, &o, &bytes, NULL, &err) != SEM_OK)
        fail_msg("write: %s", err.detail);
    close(fd);
    return bytes;
}

static void read_fails_cleanly_for_every_payload_and_pool(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/a.kv", dir);
    static const kv_payload payloads[] = {KV_PAYLOAD_F16, KV_PAYLOAD_Q8_0, KV_PAYLOAD_Q4_0};
    static const cache_kv_type kvs[] = {CACHE_KV_F16, CACHE_KV_Q8_0};
    static const uint32_t block_tokens[] = {16, 32};
    block_pool *src_pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(src_pool, SEED, N_TOKENS, 1);
    for (size_t pl = 0; pl < 3; pl++) {
        write_kv(path, src, payloads[pl]);
        for (size_t kv = 0; kv < 2; kv++)
            for (size_t bt = 0; bt < 2; bt++) {
                block_pool *pool = store_pool(block_tokens[bt], kvs[kv], 64);
                int fd = open(path, O_RDONLY);
                assert_true(fd >= 0);
                for (uint64_t k = 1;; k++) {
                    block_table *t = (block_table *)1;
                    sem_err err = {0};
                    alloc_fail_arm(k, 0);
                    sem_status st = kv_file_read(fd, path, FP, pool, "loaded", &t, NULL, &err);
                    int hit = alloc_fail_hit();
                    alloc_fail_disarm();
                    if (!hit) {
                        if (st != SEM_OK)
                            fail_msg("read: %s", err.detail);
                        assert_table_is(t, SEED, N_TOKENS,
                                        type_error(payload_tensor_of(payloads[pl])) +
                                            type_error(kv_tensor_of(kvs[kv])) +
                                            type_error(TENSOR_F16));
                        block_table_destroy(t);
                        assert_true(k > 1); /* the loop did inject */
                        break;
                    }
                    if (st != SEM_ENOMEM)
                        fail_msg("allocation %llu failed: read gave %s (%s)",
                                 (unsigned long long)k, sem_status_name(st), err.detail);
                    assert_null(t);
                    assert_pool_empty(pool);
                }
                close(fd);
                block_pool_destroy(pool);
            }
    }
    block_table_destroy(src);
    block_pool_destroy(src_pool);
    remove_dir(dir);
}

static void header_read_fails_cleanly(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/a.kv", dir);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, SEED, N_TOKENS, 0);
    write_kv(path, src, KV_PAYLOAD_Q8_0);
    int fd = open(path, O_RDONLY);
    for (uint64_t k = 1;; k++) {
        kv_file_header h;
        int32_t *tokens = (int32_t *)1;
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        sem_status st = kv_file_read_header(fd, path, &h, &tokens, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_int_equal(st, SEM_OK);
            assert_int_equal(h.n_tokens, N_TOKENS);
            assert_int_equal(tokens[N_TOKENS - 1], test_token(SEED, N_TOKENS - 1));
            free(tokens);
            break;
        }
        assert_int_equal(st, SEM_ENOMEM);
        assert_null(tokens);
    }
    close(fd);
    block_table_destroy(src);
    block_pool_destroy(pool);
    remove_dir(dir);
}

static void write_fails_cleanly(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/a.kv", dir);
    block_pool *pool = store_pool(16, CACHE_KV_Q8_0, 64);
    block_table *src = make_table(pool, SEED, N_TOKENS, 1);
    uint32_t used = block_pool_used(pool);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    kv_file_write_opts o = {.fingerprint = FP, .payload = KV_PAYLOAD_Q4_0, .chunk_tokens = 16};
    for (uint64_t k = 1;; k++) {
        assert_int_equal(ftruncate(fd, 0), 0);
        uint64_t bytes = 0;
        sem_err err = {0};
        alloc_fail_arm(k, 0);
        sem_status st = kv_file_write(fd, path, src, &o, &bytes, NULL, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        assert_int_equal(block_pool_used(pool), used);
        assert_int_equal(block_table_n_tokens(src), N_TOKENS);
        if (!hit) {
            assert_int_equal(st, SEM_OK);
            struct stat sb;
            assert_int_equal(fstat(fd, &sb), 0);
            assert_int_equal((uint64_t)sb.st_size, bytes);
            break;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failed: write gave %s (%s)", (unsigned long long)k,
                     sem_status_name(st), err.detail);
    }
    close(fd);
    block_table_destroy(src);
    block_pool_destroy(pool);
    remove_dir(dir);
}

/* ------------------------------------------------------------ the disk store */

typedef struct store_log {
    int n;
    char last[512];
} store_log;

static void logger(void *ctx, const char *msg)
{
    store_log *l = ctx;
    l->n++;
    snprintf(l->last, sizeof l->last, "%s", msg);
}

static void assert_agent_intact(warm_store *ws, block_pool *pool, uint64_t seed, uint32_t n)
{
    block_table *t = NULL;
    sem_err err = {0};
    if (ws->ops->load(ws->self, "agent-1", pool, &t, &err) != SEM_OK)
        fail_msg("load after the failures: %s", err.detail);
    assert_table_is(t, seed, n, type_error(TENSOR_Q8_0) + type_error(TENSOR_F16));
    block_table_destroy(t);
}

static void store_load_and_save_fail_cleanly(void **state)
{
    (void)state;
    char *dir = temp_dir();
    store_log log = {0};
    disk_store_opts o = {.dir = dir, .fingerprint = FP, .chunk_tokens = 16, .log = logger,
                         .log_ctx = &log};
    sem_err err = {0};
    disk_store *ds = disk_store_open(&o, &err);
    if (!ds)
        fail_msg("open: %s", err.detail);
    warm_store ws = disk_store_port(ds);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *src = make_table(pool, SEED, N_TOKENS, 0);
    assert_int_equal(ws.ops->save(ws.self, "agent-1", src, NULL, &err), SEM_OK);
    block_table_destroy(src);

    for (uint64_t k = 1;; k++) {
        block_table *t = NULL;
        alloc_fail_arm(k, 0);
        sem_status st = ws.ops->load(ws.self, "agent-1", pool, &t, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (st == SEM_OK) {
            /* The index's bookkeeping may have failed (logged); the table is whole. */
            assert_table_is(t, SEED, N_TOKENS, type_error(TENSOR_Q8_0) + type_error(TENSOR_F16));
            block_table_destroy(t);
            if (!hit)
                break;
            continue;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failed: load gave %s (%s)", (unsigned long long)k,
                     sem_status_name(st), err.detail);
        assert_null(t);
        assert_pool_empty(pool);
    }
    assert_int_equal(disk_store_open_report(ds).quarantined, 0);
    assert_agent_intact(&ws, pool, SEED, N_TOKENS);

    /*
     * A new version of the agent: a save that fails before its rename keeps
     * the old file; one that fails after it (the index's update) has put
     * the new file in place and says so (the files are the truth: the next
     * open re-indexes it). Either way the agent loads whole.
     */
    block_table *next = make_table(pool, SEED + 1, N_TOKENS + 10, 0);
    int after_rename = 0;
    for (uint64_t k = 1;; k++) {
        alloc_fail_arm(k, 0);
        sem_status st = ws.ops->save(ws.self, "agent-1", next, NULL, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (!hit) {
            assert_int_equal(st, SEM_OK);
            break;
        }
        if (st == SEM_OK) {
            /* A failure the save absorbs: after the agent is saved (the
             * deletion of chunks no agent names, logged and redone by the
             * next save or open) or one SQLite recovers from itself. The
             * save is whole. */
            assert_agent_intact(&ws, pool, SEED + 1, N_TOKENS + 10);
            block_table *old = make_table(pool, SEED, N_TOKENS, 0);
            assert_int_equal(ws.ops->save(ws.self, "agent-1", old, NULL, &err), SEM_OK);
            block_table_destroy(old);
            continue;
        }
        if (st != SEM_ENOMEM)
            fail_msg("allocation %llu failed: save gave %s (%s)", (unsigned long long)k,
                     sem_status_name(st), err.detail);
        if (strstr(err.detail, "the file is saved, the index is not")) {
            after_rename++;
            assert_agent_intact(&ws, pool, SEED + 1, N_TOKENS + 10);
            block_table *old = make_table(pool, SEED, N_TOKENS, 0);
            assert_int_equal(ws.ops->save(ws.self, "agent-1", old, NULL, &err), SEM_OK);
            block_table_destroy(old);
        } else {
            assert_agent_intact(&ws, pool, SEED, N_TOKENS);
        }
    }
    assert_true(after_rename > 0);
    assert_agent_intact(&ws, pool, SEED + 1, N_TOKENS + 10);
    block_table_destroy(next);
    assert_pool_empty(pool);
    disk_store_close(ds);
    block_pool_destroy(pool);
    remove_dir(dir);
}

/*
 * Opening a store whose index was lost: the files are read back into a new
 * index. A failed open reports SEM_ENOMEM and never quarantines a file for
 * its own lack of memory; the open that succeeds finds every agent whole.
 */
static void store_open_fails_cleanly(void **state)
{
    (void)state;
    char *dir = temp_dir();
    store_log log = {0};
    disk_store_opts o = {.dir = dir, .fingerprint = FP, .chunk_tokens = 16, .log = logger,
                         .log_ctx = &log};
    sem_err err = {0};
    disk_store *ds = disk_store_open(&o, &err);
    assert_non_null(ds);
    warm_store ws = disk_store_port(ds);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    for (uint64_t a = 0; a < 3; a++) {
        char key[32];
        snprintf(key, sizeof key, "agent-%llu", (unsigned long long)a + 1);
        block_table *t = make_table(pool, SEED + a, N_TOKENS + (uint32_t)a, 0);
        assert_int_equal(ws.ops->save(ws.self, key, t, NULL, &err), SEM_OK);
        block_table_destroy(t);
    }
    disk_store_close(ds);
    for (uint64_t k = 1;; k++) {
        char path[700];
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/index.sqlite%s", dir, suffixes[i]);
            unlink(path);
        }
        alloc_fail_arm(k, 0);
        ds = disk_store_open(&o, &err);
        int hit = alloc_fail_hit();
        alloc_fail_disarm();
        if (ds) {
            disk_store_report rep = disk_store_open_report(ds);
            assert_int_equal(rep.quarantined, 0);
            if (!hit) {
                assert_int_equal(rep.files, 3);
                break;
            }
            disk_store_close(ds);
            continue;
        }
        if (err.status != SEM_ENOMEM)
            fail_msg("allocation %llu failed: open gave %s (%s)", (unsigned long long)k,
                     sem_status_name(err.status), err.detail);
    }
    ws = disk_store_port(ds);
    assert_agent_intact(&ws, pool, SEED, N_TOKENS);
    assert_pool_empty(pool);
    disk_store_close(ds);
    block_pool_destroy(pool);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_fails_cleanly_for_every_payload_and_pool),
        cmocka_unit_test(header_read_fails_cleanly),
        cmocka_unit_test(write_fails_cleanly),
        cmocka_unit_test(store_load_and_save_fail_cleanly),
        cmocka_unit_test(store_open_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
