/*
 * Shared prefix chunks on disk (docs/cache-format.md, "Shared chunks"):
 * agents whose sequences start alike store their common whole chunks once;
 * the index counts who names each chunk; a bad chunk is never served; a
 * crash between a chunk and its agent costs a recount; load_prefix finds
 * the longest stored start of a prompt.
 *
 * Agents here are built like store_test_util.h's tables, except that token
 * p and its rows come from the common seed below `common` and from the
 * agent's own seed past it: agents with one common seed agree on their
 * first `common` tokens and on those tokens' K/V, as a model makes them.
 */
#include "store_test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include "adapters/store/agent_index.h"
#include "adapters/store/disk_store.h"

#define FP 0x5a5a5a5a12345678ull
#define COMMON_SEED 77
#define PREFIX 3000
#define OWN 200

typedef struct agent {
    const char *key;
    uint64_t seed;   /* of its own tokens */
    uint32_t common; /* tokens from COMMON_SEED */
    uint32_t n;
} agent;

static uint64_t seed_at(const agent *a, uint32_t p)
{
    return p < a->common ? COMMON_SEED : a->seed;
}

/* All layers global (sliding = 0) or the store spec's sliding layer 2. */
static cache_spec spec_of(int sliding, cache_kv_type kv)
{
    cache_spec s = store_spec(16, kv);
    if (!sliding) {
        s.layers[2].kind = CACHE_ATTN_GLOBAL;
        s.layers[2].window = 0;
    }
    return s;
}

static block_pool *pool_of(int sliding, cache_kv_type kv, uint32_t blocks)
{
    cache_spec s = spec_of(sliding, kv);
    block_pool *p = block_pool_create(&s, cache_spec_block_bytes(&s) * blocks, NULL);
    assert_non_null(p);
    return p;
}

static block_table *make_agent(block_pool *pool, const agent *a)
{
    const cache_spec *s = block_pool_spec(pool);
    block_table *t = block_table_create(pool, a->key, NULL);
    assert_non_null(t);
    int32_t *tok = malloc(a->n * sizeof *tok);
    assert_non_null(tok);
    for (uint32_t p = 0; p < a->n; p++)
        tok[p] = test_token(seed_at(a, p), p);
    assert_int_equal(block_table_append(t, tok, a->n, NULL), SEM_OK);
    free(tok);
    float row[64];
    for (uint32_t l = 0; l < s->n_layers; l++)
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = 0; p < a->n; p++) {
                    for (uint32_t i = 0; i < dim; i++)
                        row[i] = pattern(seed_at(a, p), l, v, h, p, i);
                    assert_int_equal(quant_quantize_row(kv_tensor_of(s->kv_type), row,
                                                        row_ptr(t, l, v, h, p), dim, NULL),
                                     SEM_OK);
                }
        }
    assert_int_equal(block_table_release_window(t, NULL), SEM_OK);
    return t;
}

/* t holds a's first n tokens with every kept row within rel of its pattern. */
static void assert_agent(const block_table *t, const agent *a, uint32_t n, double rel)
{
    const cache_spec *s = block_pool_spec(block_table_pool(t));
    assert_int_equal(block_table_n_tokens(t), n);
    for (uint32_t p = 0; p < n; p++)
        assert_int_equal(block_table_tokens(t)[p], test_token(seed_at(a, p), p));
    float row[64];
    for (uint32_t l = 0; l < s->n_layers; l++) {
        uint32_t first = n - (uint32_t)cache_spec_kept_tokens(s, l, n);
        for (int v = 0; v < 2; v++) {
            uint32_t dim = v ? s->v_head_dim : s->k_head_dim;
            for (uint32_t h = 0; h < s->n_kv_heads; h++)
                for (uint32_t p = first; p < n; p++) {
                    const uint8_t *src = row_ptr(t, l, v, h, p);
                    assert_non_null(src);
                    quant_dequantize_row_unchecked(kv_tensor_of(s->kv_type), src, row, dim);
                    for (uint32_t i = 0; i < dim; i++) {
                        double want = pattern(seed_at(a, p), l, v, h, p, i);
                        if (fabs(row[i] - want) > rel + 1e-4)
                            fail_msg("%s: layer %u %c head %u token %u [%u] = %g, expected %g",
                                     a->key, l, v ? 'V' : 'K', h, p, i, row[i], want);
                    }
                }
        }
    }
}

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    char *dir;
    disk_store *ds;
    warm_store ws;
    _Atomic int64_t clock; /* saves on several threads read it (saves_of_one_chunk_at_once) */
    int fail_at, writes; /* the fail_at-th write of file data fails with ENOSPC */
    char last_log[1024];
} fixture;

static int64_t fake_clock(void *ctx) { return atomic_fetch_add(&((fixture *)ctx)->clock, 1) + 1; }

static void logger(void *ctx, const char *msg)
{
    snprintf(((fixture *)ctx)->last_log, sizeof ((fixture *)ctx)->last_log, "%s", msg);
}

static int fault(void *ctx, const char *path, uint64_t offset, size_t bytes)
{
    (void)path;
    (void)offset;
    (void)bytes;
    fixture *f = ctx;
    return f->fail_at && ++f->writes == f->fail_at ? ENOSPC : 0;
}

static void reopen(fixture *f, kv_payload payload, uint64_t budget)
{
    disk_store_close(f->ds);
    disk_store_opts o = {.dir = f->dir, .fingerprint = FP, .payload = payload,
                         .budget_bytes = budget, .now_ms = fake_clock, .now_ctx = f,
                         .log = logger, .log_ctx = f, .write_hook = fault, .write_hook_ctx = f};
    sem_err err = {0};
    f->ds = disk_store_open(&o, &err);
    if (!f->ds)
        fail_msg("open: %s", err.detail);
    f->ws = disk_store_port(f->ds);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir();
    atomic_init(&f->clock, 1000000);
    reopen(f, KV_PAYLOAD_Q8_0, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    disk_store_close(f->ds);
    remove_dir(f->dir);
    free(f);
    return 0;
}

static void save_agent(fixture *f, block_pool *pool, const agent *a)
{
    block_table *t = make_agent(pool, a);
    sem_err err = {0};
    if (f->ws.ops->save(f->ws.self, a->key, t, NULL, &err) != SEM_OK)
        fail_msg("save %s: %s", a->key, err.detail);
    block_table_destroy(t);
}

static sem_status load(fixture *f, block_pool *pool, const char *key, block_table **t,
                       sem_err *err)
{
    *t = NULL;
    return f->ws.ops->load(f->ws.self, key, pool, t, err);
}

static void loads_as(fixture *f, block_pool *pool, const agent *a, double rel)
{
    block_table *t = NULL;
    sem_err err = {0};
    if (load(f, pool, a->key, &t, &err) != SEM_OK)
        fail_msg("load %s: %s", a->key, err.detail);
    assert_agent(t, a, a->n, rel);
    block_table_destroy(t);
}

/* Files in dir/sub ending in suffix. */
static int count_in(const fixture *f, const char *sub, const char *suffix)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", f->dir, sub);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        n += len > sl && strcmp(e->d_name + len - sl, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/*
 * The index's chunk rows are exactly the files in chunks/ (name and size),
 * and each row's refs is the number of agent files in the folder naming it.
 * Returns how many chunk files there are.
 */
static int assert_counts_match(fixture *f)
{
    char path[700];
    snprintf(path, sizeof path, "%s/index.sqlite", f->dir);
    sem_err err = {0};
    agent_index *ix = agent_index_open(path, &err);
    assert_non_null(ix);
    agent_chunk_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(agent_index_chunks_all(ix, &rows, &n, &err), SEM_OK);
    int64_t *refs = calloc(n + 1, sizeof *refs);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".kv") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
        int fd = open(path, O_RDONLY);
        kv_file_header h;
        kv_chunk_name *names = NULL;
        assert_int_equal(kv_file_read_header_names(fd, path, &h, NULL, &names, NULL), SEM_OK);
        close(fd);
        for (uint32_t i = 0; i < h.n_shared; i++) {
            char hex[KV_CHUNK_HEX_BYTES];
            kv_chunk_hex(&names[i], hex);
            size_t j = 0;
            while (j < n && strcmp(rows[j].name, hex) != 0)
                j++;
            if (j == n)
                fail_msg("%s names chunk %s, which the index lacks", e->d_name, hex);
            refs[j]++;
        }
        free(names);
    }
    closedir(d);
    for (size_t j = 0; j < n; j++) {
        if (rows[j].refs != refs[j])
            fail_msg("chunk %s: the index counts %lld users, the files %lld", rows[j].name,
                     (long long)rows[j].refs, (long long)refs[j]);
        struct stat sb;
        snprintf(path, sizeof path, "%s/chunks/%s.kvc", f->dir, rows[j].name);
        if (stat(path, &sb) != 0)
            fail_msg("chunk %s is indexed, its file is missing", rows[j].name);
        assert_int_equal((uint64_t)sb.st_size, rows[j].bytes);
    }
    assert_int_equal(count_in(f, "chunks", ".kvc"), (int)n);
    free(refs);
    free(rows);
    agent_index_close(ix);
    return (int)n;
}

static agent eight[8] = {
    {"team.w0", 1000, PREFIX, PREFIX + OWN}, {"team.w1", 1001, PREFIX, PREFIX + OWN},
    {"team.w2", 1002, PREFIX, PREFIX + OWN}, {"team.w3", 1003, PREFIX, PREFIX + OWN},
    {"team.w4", 1004, PREFIX, PREFIX + OWN}, {"team.w5", 1005, PREFIX, PREFIX + OWN},
    {"team.w6", 1006, PREFIX, PREFIX + OWN}, {"team.w7", 1007, PREFIX, PREFIX + OWN},
};

/* Size of one agent of n tokens in a file of its own (no sharing: today's
 * layout), in this payload. */
static uint64_t whole_file_bytes(block_pool *pool, uint32_t n, kv_payload payload)
{
    kv_file_write_opts o = {.fingerprint = FP, .payload = payload};
    kv_file_header h;
    assert_int_equal(kv_file_plan_spec(block_pool_spec(pool), n, &o, &h, NULL), SEM_OK);
    return h.file_bytes;
}

/* ------------------------------------------------------------ tests */

static void eight_agents_store_their_prefix_once(kv_payload payload, fixture *f)
{
    reopen(f, payload, 0);
    block_pool *pool = pool_of(0, CACHE_KV_F16, 1400);
    for (int i = 0; i < 8; i++)
        save_agent(f, pool, &eight[i]);
    uint64_t disk = f->ws.ops->disk_bytes(f->ws.self);
    uint64_t goal = whole_file_bytes(pool, PREFIX + OWN, payload) +
                    7 * whole_file_bytes(pool, OWN, payload);
    double ratio = (double)disk / (double)goal;
    printf("8 agents of %u + %u tokens, %s: %llu bytes on disk; one agent plus 7 suffixes "
           "%llu; ratio %.3f (8 whole files: %.3f)\n",
           PREFIX, OWN, kv_payload_name(payload), (unsigned long long)disk,
           (unsigned long long)goal, ratio,
           8.0 * (double)whole_file_bytes(pool, PREFIX + OWN, payload) / (double)goal);
    assert_true(ratio <= 1.3);
    assert_int_equal(assert_counts_match(f), PREFIX / 128 + 8 * ((PREFIX + OWN) / 128 - PREFIX / 128));
    double rel = payload == KV_PAYLOAD_F16 ? 1.0 / 1024 : 2.0 / 127;
    for (int i = 0; i < 8; i++)
        loads_as(f, pool, &eight[i], rel);
    if (payload == KV_PAYLOAD_F16) { /* bit-exact: f16 pool, f16 on disk */
        for (int i = 0; i < 8; i++) {
            block_table *src = make_agent(pool, &eight[i]), *t = NULL;
            assert_int_equal(load(f, pool, eight[i].key, &t, NULL), SEM_OK);
            assert_rows_identical(t, src);
            block_table_destroy(t);
            block_table_destroy(src);
        }
    }
    assert_int_equal(block_pool_used(pool), 0);
    block_pool_destroy(pool);
}

static void eight_agents_q8_0(void **state) { eight_agents_store_their_prefix_once(KV_PAYLOAD_Q8_0, *state); }
static void eight_agents_f16_bit_exact(void **state) { eight_agents_store_their_prefix_once(KV_PAYLOAD_F16, *state); }

static void two_namespaces_share_nothing(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 200);
    agent a = {"alice.x", 1, 1000, 1000}, b = {"bob.x", 1, 1000, 1000},
          c = {"alice.y", 1, 1000, 1000}, d = {"bob", 1, 1000, 1000};
    save_agent(f, pool, &a);
    assert_int_equal(assert_counts_match(f), 1000 / 128);
    save_agent(f, pool, &b); /* same tokens, another key: nothing shared */
    assert_int_equal(assert_counts_match(f), 2 * (1000 / 128));
    save_agent(f, pool, &c); /* alice's namespace: shares alice.x's chunks */
    assert_int_equal(assert_counts_match(f), 2 * (1000 / 128));
    save_agent(f, pool, &d); /* "bob" is bob's namespace */
    assert_int_equal(assert_counts_match(f), 2 * (1000 / 128));
    loads_as(f, pool, &a, 2.0 / 127);
    loads_as(f, pool, &b, 2.0 / 127);
    block_pool_destroy(pool);
}

/* Four agents: 600 common tokens (4 chunks), 300 own each. */
static agent four[4] = {
    {"ns.a", 11, 600, 900}, {"ns.b", 12, 600, 900}, {"ns.c", 13, 600, 900}, {"ns.d", 14, 600, 900},
};
#define FOUR_CHUNKS(k) (600 / 128 + (k) * (900 / 128 - 600 / 128))

static void chunks_go_with_their_last_user(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 400);
    for (int i = 0; i < 4; i++)
        save_agent(f, pool, &four[i]);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(4));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f->ws.ops->remove(f->ws.self, four[i].key, NULL), SEM_OK);
        assert_int_equal(assert_counts_match(f), i == 3 ? 0 : FOUR_CHUNKS(3 - i));
        for (int j = i + 1; j < 4; j++)
            loads_as(f, pool, &four[j], 2.0 / 127);
    }
    assert_int_equal(f->ws.ops->disk_bytes(f->ws.self), 0);
    block_pool_destroy(pool);
}

static void the_budget_evicts_chunks_with_their_last_user(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 400);
    save_agent(f, pool, &four[0]);
    uint64_t one = f->ws.ops->disk_bytes(f->ws.self);
    save_agent(f, pool, &four[1]);
    uint64_t two = f->ws.ops->disk_bytes(f->ws.self);
    assert_true(two - one < one / 2); /* the second agent adds its own part only */
    /* Room for two agents: each save from now on evicts the least recently used. */
    reopen(f, KV_PAYLOAD_Q8_0, two + (two - one) / 2);
    save_agent(f, pool, &four[2]);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(2));
    warm_info info;
    assert_int_equal(f->ws.ops->get(f->ws.self, "ns.a", &info, NULL), SEM_ENOTFOUND);
    save_agent(f, pool, &four[3]);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(2));
    assert_true(f->ws.ops->disk_bytes(f->ws.self) <= two + (two - one) / 2);
    /* An agent that shares nothing evicts both, and their common chunks go. */
    agent lone = {"ns.lone", 99, 0, 1100};
    save_agent(f, pool, &lone);
    assert_int_equal(assert_counts_match(f), 1100 / 128);
    loads_as(f, pool, &lone, 2.0 / 127);
    block_pool_destroy(pool);
}

/* Flips one bit of the payload of chunk file `index` of agent a. */
/* The path of chunk `index` of the agent stored under key, and its hex name. */
static void chunk_path(const fixture *f, const char *key, uint32_t index, char *path, size_t cap,
                       char hex[KV_CHUNK_HEX_BYTES])
{
    snprintf(path, cap, "%s/%s.kv", f->dir, key);
    int fd = open(path, O_RDONLY);
    kv_file_header h;
    kv_chunk_name *names = NULL;
    assert_int_equal(kv_file_read_header_names(fd, path, &h, NULL, &names, NULL), SEM_OK);
    close(fd);
    assert_true(index < h.n_shared);
    kv_chunk_hex(&names[index], hex);
    free(names);
    snprintf(path, cap, "%s/chunks/%s.kvc", f->dir, hex);
}

static void corrupt_chunk(fixture *f, const agent *a, block_pool *pool, uint32_t index)
{
    char path[700], hex[KV_CHUNK_HEX_BYTES];
    chunk_path(f, a->key, index, path, sizeof path, hex);
    size_t n = 0;
    uint8_t *bytes = read_file(path, &n);
    bytes[n - 100] ^= 4;
    write_file(path, bytes, n);
    free(bytes);
    (void)pool;
}

static void a_corrupt_chunk_is_never_served(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 400);
    agent other = {"else.z", 5, 0, 700};
    for (int i = 0; i < 3; i++)
        save_agent(f, pool, &four[i]);
    save_agent(f, pool, &other);
    corrupt_chunk(f, &four[0], pool, 2); /* common to the three */
    for (int i = 0; i < 3; i++) {
        block_table *t = (block_table *)1;
        sem_err err = {0};
        assert_int_equal(load(f, pool, four[i].key, &t, &err), SEM_ECORRUPT);
        assert_null(t);
        assert_int_equal(block_pool_used(pool), 0);
        if (i == 0)
            assert_contains(err.detail, "moved to quarantine/");
        else
            assert_contains(err.detail, "is missing");
    }
    assert_int_equal(count_in(f, "quarantine", "") >= 1, 1);
    loads_as(f, pool, &other, 2.0 / 127);
    /* A new save of one of them writes the chunk again: all three load. */
    save_agent(f, pool, &four[1]);
    for (int i = 0; i < 3; i++)
        loads_as(f, pool, &four[i], 2.0 / 127);
    assert_counts_match(f);
    block_pool_destroy(pool);
}

static void a_chunk_without_its_agent_is_deleted_at_open(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 400);
    save_agent(f, pool, &four[0]);
    save_agent(f, pool, &four[1]);
    /* A save that fails writing its agent file, after its chunks. */
    agent c = {"ns.c", 13, 600, 1000};
    block_table *t = make_agent(pool, &c);
    f->fail_at = (1000 / 128 - 600 / 128) * 4 + 1; /* past the new chunks' writes */
    f->writes = 0;
    sem_err err = {0};
    assert_int_equal(f->ws.ops->save(f->ws.self, "ns.c", t, NULL, &err), SEM_EIO);
    f->fail_at = 0;
    block_table_destroy(t);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(2)); /* its chunks went with it */
    /* A crash after the chunks, before the agent file: what is left when the
     * agent file goes missing. */
    disk_store_close(f->ds);
    f->ds = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/ns.b.kv", f->dir);
    assert_int_equal(unlink(path), 0);
    reopen(f, KV_PAYLOAD_Q8_0, 0);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.chunks_removed, 900 / 128 - 600 / 128);
    assert_int_equal(rep.rows_dropped, 1);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(1));
    loads_as(f, pool, &four[0], 2.0 / 127);
    block_pool_destroy(pool);
}

static void an_agent_whose_chunk_is_missing_fails_cleanly(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 400);
    save_agent(f, pool, &four[0]);
    save_agent(f, pool, &four[1]);
    agent other = {"else.z", 5, 0, 700};
    save_agent(f, pool, &other);
    char path[700];
    snprintf(path, sizeof path, "%s/ns.a.kv", f->dir);
    int fd = open(path, O_RDONLY);
    kv_file_header h;
    kv_chunk_name *names = NULL;
    assert_int_equal(kv_file_read_header_names(fd, path, &h, NULL, &names, NULL), SEM_OK);
    close(fd);
    char hex[KV_CHUNK_HEX_BYTES];
    kv_chunk_hex(&names[0], hex);
    free(names);
    snprintf(path, sizeof path, "%s/chunks/%s.kvc", f->dir, hex);
    assert_int_equal(unlink(path), 0);
    block_table *t = NULL;
    sem_err err = {0};
    assert_int_equal(load(f, pool, "ns.a", &t, &err), SEM_ECORRUPT);
    assert_contains(err.detail, "is missing");
    assert_int_equal(block_pool_used(pool), 0);
    /* Reconcile drops both agents that name it and the chunks only they named. */
    reopen(f, KV_PAYLOAD_Q8_0, 0);
    disk_store_report rep = disk_store_open_report(f->ds);
    assert_int_equal(rep.missing_chunks, 2);
    assert_int_equal(assert_counts_match(f), 700 / 128);
    assert_int_equal(load(f, pool, "ns.b", &t, &err), SEM_ENOTFOUND);
    loads_as(f, pool, &other, 2.0 / 127);
    block_pool_destroy(pool);
}

/* 23 chunks load on more than one thread (kv_file.c): whichever thread
 * meets which bad chunk first, the error is the first bad chunk's in
 * order, as one thread reading them in order would report. */
static void of_two_bad_chunks_the_first_in_order_is_reported(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 1200);
    agent a = {"one.a", 21, 0, PREFIX}, b = {"two.b", 22, 0, PREFIX};
    save_agent(f, pool, &a);
    save_agent(f, pool, &b);
    char path[700], hex_a[KV_CHUNK_HEX_BYTES], hex_b[KV_CHUNK_HEX_BYTES];
    /* a: chunk 4 corrupt, chunk 17 missing */
    chunk_path(f, a.key, 17, path, sizeof path, hex_a);
    assert_int_equal(unlink(path), 0);
    corrupt_chunk(f, &a, pool, 4);
    chunk_path(f, a.key, 4, path, sizeof path, hex_a);
    /* b: chunk 4 missing, chunk 17 corrupt */
    corrupt_chunk(f, &b, pool, 17);
    chunk_path(f, b.key, 4, path, sizeof path, hex_b);
    assert_int_equal(unlink(path), 0);

    block_table *t = (block_table *)1;
    sem_err err = {0};
    assert_int_equal(load(f, pool, a.key, &t, &err), SEM_ECORRUPT);
    assert_null(t);
    assert_contains(err.detail, hex_a);
    assert_contains(err.detail, "fails its checksum");
    assert_int_equal(block_pool_used(pool), 0);

    assert_int_equal(load(f, pool, b.key, &t, &err), SEM_ECORRUPT);
    assert_null(t);
    assert_contains(err.detail, "shared chunk 4");
    assert_contains(err.detail, "is missing");
    assert_int_equal(block_pool_used(pool), 0);
    block_pool_destroy(pool);
}

static sem_status prefix(fixture *f, const char *ns, const agent *a, uint32_t n,
                         block_pool *pool, block_table **t)
{
    int32_t *tok = malloc((n + 1) * sizeof *tok);
    for (uint32_t p = 0; p < n; p++)
        tok[p] = test_token(seed_at(a, p), p);
    *t = NULL;
    sem_status st = f->ws.ops->load_prefix(f->ws.self, ns, tok, n, pool, "new", t, NULL);
    free(tok);
    return st;
}

static void load_prefix_finds_the_longest_stored_start(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 1400);
    save_agent(f, pool, &eight[0]); /* 3200 tokens: 25 chunks of 128 */
    block_table *t = NULL;
    /* Another agent of the namespace: its 3000 common tokens + its own. */
    assert_int_equal(prefix(f, "team", &eight[1], PREFIX + OWN, pool, &t), SEM_OK);
    assert_int_equal(block_table_n_tokens(t), PREFIX / 128 * 128);
    assert_agent(t, &eight[1], PREFIX / 128 * 128, 2.0 / 127);
    block_table_destroy(t);
    /* The whole stored sequence and more. */
    agent longer = eight[0];
    longer.n = 5000;
    assert_int_equal(prefix(f, "team", &longer, 5000, pool, &t), SEM_OK);
    assert_int_equal(block_table_n_tokens(t), 3200);
    block_table_destroy(t);
    /* No match, another namespace, a prompt shorter than one chunk. */
    agent stranger = {"team.s", 555, 0, 1000};
    assert_int_equal(prefix(f, "team", &stranger, 1000, pool, &t), SEM_ENOTFOUND);
    assert_int_equal(prefix(f, "other", &eight[1], 1000, pool, &t), SEM_ENOTFOUND);
    assert_int_equal(prefix(f, "team", &eight[1], 127, pool, &t), SEM_ENOTFOUND);
    assert_int_equal(prefix(f, "team", &eight[1], 128, pool, &t), SEM_OK);
    block_table_destroy(t);
    assert_int_equal(prefix(f, "te.am", &eight[1], 1000, pool, &t), SEM_EINVAL);
    assert_null(t);
    assert_int_equal(block_pool_used(pool), 0);
    block_pool_destroy(pool);
    /* A model with sliding-window layers: never from shared chunks. */
    block_pool *sliding = pool_of(1, CACHE_KV_F16, 1400);
    assert_int_equal(prefix(f, "team", &eight[1], 1000, sliding, &t), SEM_ENOTFOUND);
    block_pool_destroy(sliding);
}

static void a_gemma_like_geometry_round_trips(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(1, CACHE_KV_F16, 400);
    agent a = {"g.a", 21, 600, 900}, b = {"g.b", 22, 600, 700}, c = {"g.c", 23, 0, 100};
    save_agent(f, pool, &a);
    save_agent(f, pool, &b);
    save_agent(f, pool, &c);
    /* Global layers 0 and 1 share the common chunks; layer 2's windows are each agent's. */
    assert_int_equal(assert_counts_match(f), 900 / 128 + 700 / 128 - 600 / 128);
    loads_as(f, pool, &a, 2.0 / 127);
    loads_as(f, pool, &b, 2.0 / 127);
    loads_as(f, pool, &c, 2.0 / 127);
    assert_int_equal(block_pool_used(pool), 0);
    block_pool_destroy(pool);
}

/* A version 1 file (an earlier release's) loads through the store; its next
 * save writes version 2 with shared chunks. */
#define FIXTURE_DIR SEM_TEST_DATA "/../adapters/store/fixtures"
static void a_version_1_file_loads_and_migrates(void **state)
{
    fixture *f = *state;
    disk_store_close(f->ds);
    f->ds = NULL;
    size_t n = 0;
    uint8_t *bytes = read_file(FIXTURE_DIR "/v1-q8_0.kv", &n);
    char path[700];
    snprintf(path, sizeof path, "%s/old.kv", f->dir);
    write_file(path, bytes, n);
    free(bytes);
    disk_store_opts o = {.dir = f->dir, .fingerprint = 0x0fedcba987654321ull, .chunk_tokens = 16,
                         .log = logger, .log_ctx = f};
    sem_err err = {0};
    f->ds = disk_store_open(&o, &err);
    assert_non_null(f->ds);
    f->ws = disk_store_port(f->ds);
    block_pool *pool = store_pool(16, CACHE_KV_F16, 64);
    block_table *t = NULL;
    if (load(f, pool, "old", &t, &err) != SEM_OK)
        fail_msg("load: %s", err.detail);
    assert_table_is(t, 4242, 24, 1.0 / 1024 + 1.0 / 127);
    assert_contains(f->last_log, "format version 1");
    assert_int_equal(f->ws.ops->save(f->ws.self, "old", t, NULL, &err), SEM_OK);
    block_table_destroy(t);
    int fd = open(path, O_RDONLY);
    kv_file_header h;
    assert_int_equal(kv_file_read_header(fd, path, &h, NULL, NULL), SEM_OK);
    close(fd);
    assert_int_equal(h.version, KV_FILE_VERSION);
    assert_int_equal(h.n_shared, 1); /* 24 tokens, chunks of 16 */
    assert_int_equal(load(f, pool, "old", &t, &err), SEM_OK);
    assert_table_is(t, 4242, 24, 1.0 / 1024 + 2.0 / 127);
    block_table_destroy(t);
    block_pool_destroy(pool);
}

/* Saves of agents that write the same chunks at once. */
typedef struct racer {
    fixture *f;
    block_pool *pool;
    const agent *a;
    int rounds;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    block_table *t = make_agent(r->pool, r->a);
    for (int i = 0; i < r->rounds; i++) {
        sem_err err = {0};
        if (r->f->ws.ops->save(r->f->ws.self, r->a->key, t, NULL, &err) != SEM_OK)
            fail_msg("save %s: %s", r->a->key, err.detail);
        if (i % 3 == 2)
            r->f->ws.ops->remove(r->f->ws.self, r->a->key, NULL);
    }
    block_table_destroy(t);
    return NULL;
}

static void saves_of_one_chunk_at_once_are_safe(void **state)
{
    fixture *f = *state;
    block_pool *pool = pool_of(0, CACHE_KV_F16, 1200);
    pthread_t th[4];
    racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){f, pool, &four[i], 12};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        save_agent(f, pool, &four[i]);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(4));
    for (int i = 0; i < 4; i++)
        loads_as(f, pool, &four[i], 2.0 / 127);
    reopen(f, KV_PAYLOAD_Q8_0, 0); /* the recount agrees */
    assert_int_equal(disk_store_open_report(f->ds).chunks_removed, 0);
    assert_int_equal(assert_counts_match(f), FOUR_CHUNKS(4));
    block_pool_destroy(pool);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(eight_agents_q8_0),
        T(eight_agents_f16_bit_exact),
        T(two_namespaces_share_nothing),
        T(chunks_go_with_their_last_user),
        T(the_budget_evicts_chunks_with_their_last_user),
        T(a_corrupt_chunk_is_never_served),
        T(a_chunk_without_its_agent_is_deleted_at_open),
        T(an_agent_whose_chunk_is_missing_fails_cleanly),
        T(of_two_bad_chunks_the_first_in_order_is_reported),
        T(load_prefix_finds_the_longest_stored_start),
        T(a_gemma_like_geometry_round_trips),
        T(a_version_1_file_loads_and_migrates),
        T(saves_of_one_chunk_at_once_are_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
