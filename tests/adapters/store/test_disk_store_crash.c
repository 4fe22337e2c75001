/*
 * Specification of disk_store's durability: a process killed with SIGKILL
 * at any moment of a save (or a remove) leaves a folder that the next open
 * turns into a consistent store, in which every file loads and holds one
 * of the versions that were written.
 *
 * Each trial forks a child that saves new versions of 4 agents in a loop
 * (and now and then removes one), kills it at a random moment, reopens
 * the store and checks it. 50 trials by default; SEM_STORE_SOAK=N runs N.
 */
#include "store_test_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "adapters/store/disk_store.h"

#define FP 0xc0ffee00c0ffee00ull
#define KEYS 4
#define SAVES_PER_CHILD 200 /* seeds stay below 20000 (test_token) */

/* Version `seed` is agent "k<seed % KEYS>" with this many tokens. */
static uint32_t length_of(uint64_t seed)
{
    return 1 + (uint32_t)(seed * 37 % 120);
}

static disk_store_opts opts(const char *dir)
{
    return (disk_store_opts){.dir = dir, .fingerprint = FP, .payload = KV_PAYLOAD_F16,
                             .chunk_tokens = 16};
}

/* The child: saves until killed. Never returns. */
static void child(const char *dir, uint64_t first_seed)
{
    disk_store_opts o = opts(dir);
    disk_store *s = disk_store_open(&o, NULL);
    if (!s)
        _exit(2);
    warm_store ws = disk_store_port(s);
    block_pool *p = store_pool(16, CACHE_KV_F16, 64);
    for (uint64_t i = 0; i < SAVES_PER_CHILD; i++) {
        uint64_t seed = first_seed + i;
        char key[16];
        snprintf(key, sizeof key, "k%d", (int)(seed % KEYS));
        if (i % 9 == 8) {
            ws.ops->remove(ws.self, key, NULL);
            continue;
        }
        block_table *t = make_table(p, seed, length_of(seed), 1);
        if (ws.ops->save(ws.self, key, t, NULL, NULL) != SEM_OK)
            _exit(3);
        block_table_destroy(t);
    }
    _exit(0);
}

typedef struct totals {
    uint32_t temp_removed, reindexed, rows_updated, rows_dropped, quarantined, loaded;
} totals;

/* Reopens the store in dir and checks files, contents and index agree. */
static void verify(const char *dir, block_pool *pool, totals *tot)
{
    disk_store_opts o = opts(dir);
    sem_err err = {0};
    disk_store *s = disk_store_open(&o, &err);
    if (!s)
        fail_msg("reopen: %s", err.detail);
    warm_store ws = disk_store_port(s);
    disk_store_report rep = disk_store_open_report(s);
    tot->temp_removed += rep.temp_removed;
    tot->reindexed += rep.reindexed;
    tot->rows_updated += rep.rows_updated;
    tot->rows_dropped += rep.rows_dropped;
    tot->quarantined += rep.quarantined;

    int on_disk = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".tmp-"))
            fail_msg("temp file %s survived the reopen", e->d_name);
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".kv") != 0)
            continue;
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(len - 3), e->d_name);
        block_table *t = NULL;
        sem_status st = ws.ops->load(ws.self, key, pool, &t, &err);
        if (st == SEM_ECORRUPT) { /* allowed, if quarantined */
            tot->quarantined++;
            continue;
        }
        if (st != SEM_OK)
            fail_msg("load %s: %s", key, err.detail);
        uint32_t n = block_table_n_tokens(t);
        uint64_t seed = (uint64_t)(block_table_tokens(t)[0] / 100000);
        /* One of the versions written for this key, whole. */
        assert_int_equal(seed % KEYS, (uint64_t)(key[1] - '0'));
        assert_int_equal(n, length_of(seed));
        assert_table_is(t, seed, n, 1.0 / 1024);
        block_table_destroy(t);
        warm_info info;
        assert_int_equal(ws.ops->get(ws.self, key, &info, NULL), SEM_OK);
        assert_int_equal(info.tokens, n);
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(info.bytes, (uint64_t)sb.st_size);
        on_disk++;
        tot->loaded++;
    }
    closedir(d);
    /* The index lists exactly the files. */
    warm_info *list = NULL;
    size_t n = 0;
    assert_int_equal(ws.ops->list(ws.self, "", &list, &n, NULL), SEM_OK);
    assert_int_equal(n, (size_t)on_disk);
    for (size_t i = 0; i < n; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.kv", dir, list[i].key);
        struct stat sb;
        if (stat(path, &sb) != 0)
            fail_msg("index lists %s without a file", list[i].key);
    }
    free(list);
    disk_store_close(s);
    assert_int_equal(block_pool_used(pool), 0);
}

static void kill_9_during_saves_never_leaves_a_bad_store(void **state)
{
    (void)state;
    const char *soak = getenv("SEM_STORE_SOAK");
    int trials = soak && atoi(soak) > 0 ? atoi(soak) : 50;
    char *dir = temp_dir();
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    uint64_t rng = (uint64_t)time(NULL) | 1;
    printf("crash trials: %d, seed %llu\n", trials, (unsigned long long)rng);
    totals tot = {0};
    for (int trial = 0; trial < trials; trial++) {
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child(dir, (uint64_t)(trial % 100) * SAVES_PER_CHILD);
        /* Some trials die while opening, most in the middle of saving. */
        useconds_t wait = (useconds_t)(test_rand(&rng) % 25000);
        usleep(wait);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            fail_msg("trial %d: the child failed (exit %d)", trial, WEXITSTATUS(status));
        verify(dir, pool, &tot);
    }
    printf("crash totals: %u files loaded and verified, %u temp files removed, %u re-indexed, "
           "%u rows updated, %u rows dropped, %u quarantined\n",
           tot.loaded, tot.temp_removed, tot.reindexed, tot.rows_updated, tot.rows_dropped,
           tot.quarantined);
    block_pool_destroy(pool);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_9_during_saves_never_leaves_a_bad_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
