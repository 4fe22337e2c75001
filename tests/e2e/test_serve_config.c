/*
 * `semantic serve` configured as a service runs it (docs/install.md):
 *
 *   - a --config file sets the port, the models (repeated lines add up)
 *     and the API keys, and an --api-key-file adds keys: a request without
 *     a key is 401, each key is accepted, another is refused;
 *   - precedence: the environment wins over the file, and a flag over both
 *     (port, keys and models);
 *   - a bad line stops the start with exit 2 and FILE:LINE in the message;
 *     a missing config or key file, or a key file without a key, too;
 *   - SIGHUP rescans the config's models folder and the server goes on;
 *     SIGTERM still drains and exits 0;
 *   - under MemoryDenyWriteExecute (the kernel's PR_SET_MDWE, which refuses
 *     what systemd's option refuses: memory both writable and executable)
 *     the server answers as it does without it: PCRE2's JIT is refused and
 *     its interpreter splits the same tokens.
 *
 * The servers are started with the exact argv a unit would use, so this
 * test spawns them itself (server_spawn) on ports it picks, with the
 * SEMANTIC_ variables of its own environment removed first.
 */
#include "e2e_util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#define MDWE_REFUSE_EXEC_GAIN 1

/* A regex pre-tokenizer (qwen2): the model whose tokenizer asks for the JIT. */
#define QWEN SEM_TEST_DATA "/models/tiny-qwen2-q8_0.gguf"

static char dir[512];
static char self_exe[512];

static void sleep_10ms(void)
{
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

/* A file of this test's folder: its path in out. */
static void make_file(char *out, size_t cap, const char *name, const char *text)
{
    snprintf(out, cap, "%s/%s", dir, name);
    write_text(out, text);
}

/* A config file for a server on port, with model, a cache folder of its own and these lines. */
static void make_config(char *out, size_t cap, const char *name, uint16_t port, const char *model,
                        const char *lines)
{
    static int n;
    char text[2048];
    snprintf(text, sizeof text,
             "# a test server\n"
             "\n"
             "port = %u\n"
             "model = %s\n"
             "cache-dir = %s/cache-%d\n"
             "pool-mb = 16\n"
             "max-batch = 2\n"
             "%s",
             (unsigned)port, model, dir, n++, lines);
    make_file(out, cap, name, text);
}

/* Polls /health/ready on port until 200 (0), or until the process ends or 60 s pass (-1). */
static int wait_ready(server_proc *s, uint16_t port)
{
    for (double t0 = hc_now_ms(); hc_now_ms() - t0 < 60000; sleep_10ms()) {
        http_response r;
        int ok = hc_call(port, "GET", "/health/ready", NULL, NULL, &r) == 0 && r.status == 200;
        hc_free(&r);
        if (ok)
            return 0;
        if (server_exited(s))
            break;
    }
    char *log = server_log(s);
    fprintf(stderr, "the server did not become ready on port %u; its log:\n%s\n", port, log);
    free(log);
    return -1;
}

/* Waits up to 10 s for text to appear in the server's log. */
static int wait_log(const server_proc *s, const char *text)
{
    for (double t0 = hc_now_ms(); hc_now_ms() - t0 < 10000; sleep_10ms()) {
        char *log = server_log(s);
        int found = strstr(log, text) != NULL;
        free(log);
        if (found)
            return 0;
    }
    return -1;
}

/* The ids GET /v1/models lists, sorted and comma separated, in out. */
static void model_ids(uint16_t port, const char *key, char *out, size_t cap)
{
    char h[256];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", key);
    http_response r = e2e_call(port, "GET", "/v1/models", h, NULL);
    if (r.status != 200)
        fail_msg("GET /v1/models: %d %s", r.status, r.body);
    json_t *j = e2e_json(&r);
    json_t *data = json_object_get(j, "data");
    const char *ids[16];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(data) && n < 16; i++)
        ids[n++] = json_string_value(json_object_get(json_array_get(data, i), "id"));
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
        for (size_t k = i; k > 0 && strcmp(ids[k - 1], ids[k]) > 0; k--) {
            const char *t = ids[k];
            ids[k] = ids[k - 1];
            ids[k - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", ids[i]);
    json_decref(j);
    hc_free(&r);
}

/* The status of GET /v1/models with key (NULL: none). */
static int models_status(uint16_t port, const char *key)
{
    char h[256] = "";
    if (key)
        snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", key);
    http_response r = e2e_call(port, "GET", "/v1/models", key ? h : NULL, NULL);
    int st = r.status;
    hc_free(&r);
    return st;
}

/* Spawns argv (a NULL-terminated list) and waits for readiness on port. */
static void start(server_proc *s, const char *const *argv, uint16_t port)
{
    assert_int_equal(server_spawn(s, argv), 0);
    if (wait_ready(s, port) != 0)
        fail_msg("%s did not start", argv[0]);
}

/* Runs argv, which must fail at start: returns its exit code, its log in *log. */
static int start_fails(const char *const *argv, char **log)
{
    server_proc s;
    assert_int_equal(server_spawn(&s, argv), 0);
    int rc = server_stop(&s, 0, 30000); /* no signal: waits for the exit */
    *log = server_log(&s);
    server_discard_log(&s);
    return rc;
}

/* ---------------------------------------------------------------- the tests */

static void a_config_file_and_a_key_file_set_port_and_keys(void **state)
{
    (void)state;
    uint16_t port = server_free_port();
    char conf[600], keys[600];
    make_config(conf, sizeof conf, "a.conf", port, STORIES,
                "api-key = from-the-config\nmodel = second=" STORIES "\n");
    make_file(keys, sizeof keys, "keys", "# the team's keys\nkey-one\n\n  key-two  \n# old-key\n");
    const char *argv[] = {SEMANTIC_BIN, "serve", "--config", conf, "--api-key-file", keys, NULL};
    server_proc s;
    start(&s, argv, port);
    char want[128];
    snprintf(want, sizeof want, "listening on http://127.0.0.1:%u (API keys required", port);
    assert_int_equal(wait_log(&s, want), 0);
    assert_int_equal(models_status(port, NULL), 401);
    assert_int_equal(models_status(port, "key-one"), 200);
    assert_int_equal(models_status(port, "key-two"), 200);
    assert_int_equal(models_status(port, "from-the-config"), 200);
    assert_int_equal(models_status(port, "old-key"), 401); /* a comment is no key */
    assert_int_equal(models_status(port, "# old-key"), 401);
    char ids[256];
    model_ids(port, "key-one", ids, sizeof ids);
    assert_string_equal(ids, "second,stories260K"); /* both model lines */
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    server_discard_log(&s);
}

static void the_environment_wins_over_the_file_and_a_flag_over_both(void **state)
{
    (void)state;
    uint16_t p_conf = server_free_port(), p_env = server_free_port();
    while (p_env == p_conf)
        p_env = server_free_port();
    char conf[600], env_port[64];
    make_config(conf, sizeof conf, "b.conf", p_conf, STORIES, "api-key = conf-key\n");
    snprintf(env_port, sizeof env_port, "SEMANTIC_PORT=%u", p_env);
    /* The environment's port and key replace the file's. */
    const char *argv_env[] = {"/usr/bin/env", env_port, "SEMANTIC_API_KEY=env-key",
                              "SEMANTIC_MODEL=env-model=" STORIES, SEMANTIC_BIN, "serve",
                              "--config", conf, NULL};
    server_proc s;
    start(&s, argv_env, p_env);
    assert_int_equal(models_status(p_env, "env-key"), 200);
    assert_int_equal(models_status(p_env, "conf-key"), 401);
    char ids[256];
    model_ids(p_env, "env-key", ids, sizeof ids);
    assert_string_equal(ids, "env-model");
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    server_discard_log(&s);
    /* A flag's port and key replace both. */
    uint16_t p_flag = server_free_port();
    char flag_port[16];
    snprintf(flag_port, sizeof flag_port, "%u", p_flag);
    const char *argv_flag[] = {"/usr/bin/env", env_port, "SEMANTIC_API_KEY=env-key",
                               "SEMANTIC_MODEL=env-model=" STORIES, SEMANTIC_BIN, "serve",
                               "--config", conf, "--port", flag_port, "--api-key", "flag-key",
                               "-m", "flag-model=" STORIES, NULL};
    start(&s, argv_flag, p_flag);
    assert_int_equal(models_status(p_flag, "flag-key"), 200);
    model_ids(p_flag, "flag-key", ids, sizeof ids);
    assert_string_equal(ids, "flag-model");
    assert_int_equal(models_status(p_flag, "env-key"), 401);
    assert_int_equal(models_status(p_flag, "conf-key"), 401);
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    server_discard_log(&s);
    /* SEMANTIC_CONFIG names the file when no flag does. */
    char env_conf[700];
    snprintf(env_conf, sizeof env_conf, "SEMANTIC_CONFIG=%s", conf);
    const char *argv_cfg_env[] = {"/usr/bin/env", env_conf, SEMANTIC_BIN, "serve", NULL};
    start(&s, argv_cfg_env, p_conf);
    assert_int_equal(models_status(p_conf, "conf-key"), 200);
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    server_discard_log(&s);
}

static void a_bad_line_stops_the_start_naming_file_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *lines, *why;
    } cases[] = {
        {"max-batch = lots\n", "--max-batch"},
        {"prot = 8000\n", "unknown option 'prot'"},
        {"port 8000\n", "no '='"},
        {"config = other.conf\n", "cannot be set in a config file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char conf[600], where[700], *log;
        make_config(conf, sizeof conf, "bad.conf", server_free_port(), STORIES, cases[i].lines);
        const char *argv[] = {SEMANTIC_BIN, "serve", "--config", conf, NULL};
        int rc = start_fails(argv, &log);
        snprintf(where, sizeof where, "semantic serve: --config: %s:8: ", conf); /* line 8 */
        if (rc != 2 || !strstr(log, where) || !strstr(log, cases[i].why))
            fail_msg("case %zu: exit %d, expected 2 and \"%s...%s\"; log:\n%s", i, rc, where,
                     cases[i].why, log);
        assert_null(strstr(log, "listening on")); /* refused before the port opened */
        free(log);
    }
}

static void missing_or_empty_files_stop_the_start(void **state)
{
    (void)state;
    char conf[600], empty[600], absent[600], *log;
    make_config(conf, sizeof conf, "c.conf", server_free_port(), STORIES, "");
    make_file(empty, sizeof empty, "no-keys", "# nobody yet\n\n");
    snprintf(absent, sizeof absent, "%s/absent", dir);
    /* A config file that is not there: 3, not found. */
    const char *argv1[] = {SEMANTIC_BIN, "serve", "--config", absent, NULL};
    assert_int_equal(start_fails(argv1, &log), 3);
    assert_contains(log, "--config: cannot open");
    assert_contains(log, absent);
    free(log);
    /* A key file that is not there (a credential systemd did not pass). */
    const char *argv2[] = {SEMANTIC_BIN, "serve", "--config", conf, "--api-key-file", absent,
                           NULL};
    assert_int_equal(start_fails(argv2, &log), 3);
    assert_contains(log, "--api-key-file: cannot open");
    free(log);
    /* A key file without a key would leave the server open: refused. */
    const char *argv3[] = {SEMANTIC_BIN, "serve", "--config", conf, "--api-key-file", empty,
                           NULL};
    assert_int_equal(start_fails(argv3, &log), 2);
    assert_contains(log, "holds no key");
    assert_null(strstr(log, "listening on"));
    free(log);
}

/* Copies the file at from to to. */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        fail_msg("cannot copy %s to %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            fail_msg("cannot write %s", to);
    fclose(in);
    if (fclose(out) != 0)
        fail_msg("cannot write %s", to);
}

static void sighup_rescans_the_models_folder_and_the_server_goes_on(void **state)
{
    (void)state;
    uint16_t port = server_free_port();
    char conf[600], models[600], line[700], added[700];
    snprintf(models, sizeof models, "%s/models", dir);
    assert_int_equal(mkdir(models, 0755), 0);
    snprintf(line, sizeof line, "models-dir = %s\n", models);
    make_config(conf, sizeof conf, "d.conf", port, STORIES, line);
    const char *argv[] = {SEMANTIC_BIN, "serve", "--config", conf, NULL};
    server_proc s;
    start(&s, argv, port);
    snprintf(added, sizeof added, "%s/added.gguf", models);
    copy_file(STORIES, added);
    assert_int_equal(kill(s.pid, SIGHUP), 0); /* what ExecReload sends */
    assert_int_equal(wait_log(&s, "\"SIGHUP: models rescanned: 1 added, 0 removed"), 0);
    assert_int_equal(kill(s.pid, SIGHUP), 0);
    assert_int_equal(wait_log(&s, "\"SIGHUP: models rescanned: 0 added, 0 removed"), 0);
    e2e_assert_healthy(port);
    http_response r = e2e_call(port, "GET", "/health/ready", NULL, NULL);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    assert_int_equal(server_stop(&s, SIGTERM, 30000), 0);
    char *log = server_log(&s);
    assert_contains(log, "SIGTERM: draining");
    assert_contains(log, "\"stopped\"");
    free(log);
    server_discard_log(&s);
}

/* The text of a greedy completion of a prompt the regex splits. */
static char *greedy_completion(uint16_t port, json_int_t *prompt_tokens)
{
    http_response r = e2e_call(port, "POST", "/v1/completions", NULL,
                               "{\"prompt\":\"Hello, World! It's 2025: naïve café 12345 ok\","
                               "\"max_tokens\":12,\"temperature\":0}");
    if (r.status != 200)
        fail_msg("completion: %d %s", r.status, r.body);
    json_t *j = e2e_json(&r);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    char *text = strdup(json_string_value(json_object_get(c, "text")));
    *prompt_tokens = json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "prompt_tokens"));
    json_decref(j);
    hc_free(&r);
    return text;
}

static void the_server_runs_where_memory_cannot_be_writable_and_executable(void **state)
{
    (void)state;
    if (prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0 && errno == EINVAL) {
        printf("skipped: this kernel has no PR_SET_MDWE (Linux 6.3 or later has)\n");
        skip();
    }
    uint16_t p_free = server_free_port(), p_mdwe = server_free_port();
    while (p_mdwe == p_free)
        p_mdwe = server_free_port();
    char conf_free[600], conf_mdwe[600];
    make_config(conf_free, sizeof conf_free, "free.conf", p_free, QWEN, "");
    make_config(conf_mdwe, sizeof conf_mdwe, "mdwe.conf", p_mdwe, QWEN, "");
    const char *argv_free[] = {SEMANTIC_BIN, "serve", "--config", conf_free, NULL};
    const char *argv_mdwe[] = {self_exe, "--mdwe-exec", SEMANTIC_BIN, "serve", "--config",
                               conf_mdwe, NULL};
    server_proc a, b;
    start(&a, argv_free, p_free);
    start(&b, argv_mdwe, p_mdwe);
    json_int_t n_free, n_mdwe;
    char *t_free = greedy_completion(p_free, &n_free);
    char *t_mdwe = greedy_completion(p_mdwe, &n_mdwe);
    assert_true(n_free > 10);
    assert_int_equal(n_mdwe, n_free);
    assert_string_equal(t_mdwe, t_free);
    free(t_free);
    free(t_mdwe);
    assert_int_equal(server_stop(&a, SIGTERM, 30000), 0);
    assert_int_equal(server_stop(&b, SIGTERM, 30000), 0);
    server_discard_log(&a);
    server_discard_log(&b);
}

/* ---------------------------------------------------------------- main */

/* `test_serve_config --mdwe-exec PROGRAM ARGS...`: PROGRAM under PR_SET_MDWE. */
static int mdwe_exec(char **argv)
{
    if (prctl(PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0 ||
        prctl(PR_GET_MDWE, 0, 0, 0, 0) != MDWE_REFUSE_EXEC_GAIN) {
        perror("PR_SET_MDWE");
        return 126;
    }
    execv(argv[0], argv);
    perror(argv[0]);
    return 127;
}

/* The SEMANTIC_ variables of the caller's environment would change what is tested. */
static void clear_semantic_environment(void)
{
    extern char **environ;
    for (size_t i = 0; environ[i];) {
        if (strncmp(environ[i], "SEMANTIC_", 9) != 0) {
            i++;
            continue;
        }
        char name[256];
        size_t n = strcspn(environ[i], "=");
        snprintf(name, sizeof name, "%.*s", (int)n, environ[i]);
        unsetenv(name);
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--mdwe-exec") == 0)
        return mdwe_exec(argv + 2);
    clear_semantic_environment();
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0 || server_temp_dir("config", dir, sizeof dir) != 0) {
        fprintf(stderr, "cannot find this program or make a temporary folder\n");
        return 1;
    }
    self_exe[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_config_file_and_a_key_file_set_port_and_keys),
        cmocka_unit_test(the_environment_wins_over_the_file_and_a_flag_over_both),
        cmocka_unit_test(a_bad_line_stops_the_start_naming_file_and_line),
        cmocka_unit_test(missing_or_empty_files_stop_the_start),
        cmocka_unit_test(sighup_rescans_the_models_folder_and_the_server_goes_on),
        cmocka_unit_test(the_server_runs_where_memory_cannot_be_writable_and_executable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
