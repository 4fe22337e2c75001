/*
 * Specification of server_process.h: a test's server and its temporary
 * files never outlive the test, however the test ends.
 *
 * Each case forks a helper that starts a server through server_start(),
 * reports the server's pid, port, cache folder and log, and then ends one
 * way: SIGKILL (nothing of its own runs), abort() (a failed assert),
 * SIGTERM, or exit() without stopping the server (a cmocka run with
 * failures returns from main). This process is a child subreaper, so the
 * orphaned server and reaper become its children and their end can be
 * waited for exactly (a zombie would still answer kill(pid, 0)).
 */
#include "../test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "server_process.h"

#define STORIES SEM_TEST_DATA "/models/stories260K.gguf"

typedef enum ending { END_SIGKILL, END_ABORT, END_SIGTERM, END_EXIT } ending;

typedef struct started {
    pid_t helper, server;
    uint16_t port;
    char cache_dir[512], log_path[512];
} started;

static int exists(const char *path)
{
    struct stat sb;
    return path[0] && stat(path, &sb) == 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Forks a helper that starts a server and waits to be ended `how`. */
static started start_in_helper(ending how)
{
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid_t helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        close(up[0]);
        close(go[1]);
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none); /* abort() leaves no core file */
        server_proc s;
        static const char *const args[] = {"--pool-mb", "16", NULL};
        if (server_start(&s, SEMANTIC_BIN, STORIES, args, NULL, 1) != 0)
            _exit(99);
        started info = {.server = s.pid, .port = s.port};
        snprintf(info.cache_dir, sizeof info.cache_dir, "%s", s.cache_dir);
        snprintf(info.log_path, sizeof info.log_path, "%s", s.log_path);
        if (write(up[1], &info, sizeof info) != (ssize_t)sizeof info)
            _exit(98);
        char c;
        if (read(go[0], &c, 1) != 1) /* the test says when */
            _exit(97);
        if (how == END_ABORT)
            abort();
        if (how == END_SIGTERM)
            raise(SIGTERM);
        exit(3); /* END_EXIT: returns through atexit, the server still running */
    }
    close(up[1]);
    close(go[0]);
    started info;
    ssize_t got = read(up[0], &info, sizeof info);
    close(up[0]);
    if (got != (ssize_t)sizeof info) {
        int status;
        waitpid(helper, &status, 0);
        fail_msg("the helper could not start a server (exit %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    info.helper = helper;
    /* The server runs and answers; its files exist. */
    assert_int_equal(kill(info.server, 0), 0);
    assert_true(exists(info.cache_dir));
    assert_true(exists(info.log_path));
    http_response r;
    assert_int_equal(hc_call(info.port, "GET", "/health/ready", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    hc_free(&r);
    /* A server in its own process group, apart from the test's. */
    assert_int_equal(getpgid(info.server), info.server);
    if (how == END_SIGKILL)
        kill(helper, SIGKILL);
    else if (write(go[1], "x", 1) != 1)
        fail_msg("cannot signal the helper");
    close(go[1]);
    return info;
}

/*
 * Waits up to 10 s for every child of this process (the helper, and the
 * orphaned server and reaper, re-parented here) to end; returns the
 * server's wait status, or -1 if it was reaped by its own parent.
 */
static int reap_all(const started *s, int *helper_status)
{
    int server_status = -1;
    double t0 = now_ms();
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == s->server)
            server_status = status;
        if (pid == s->helper)
            *helper_status = status;
        if (pid < 0 && errno == ECHILD)
            return server_status;
        if (now_ms() - t0 > 10000)
            fail_msg("children still running 10 s after the test ended");
        if (pid <= 0)
            usleep(5000);
    }
}

static void assert_nothing_left(const started *s)
{
    /* Every child has ended, so the reaper is done. */
    assert_false(exists(s->cache_dir));
    assert_false(exists(s->log_path));
    errno = 0;
    assert_int_equal(kill(s->server, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static void a_sigkilled_test_takes_its_server_and_files_with_it(void **state)
{
    (void)state;
    started s = start_in_helper(END_SIGKILL);
    int helper_status = 0;
    int server_status = reap_all(&s, &helper_status);
    assert_true(WIFSIGNALED(helper_status) && WTERMSIG(helper_status) == SIGKILL);
    /* Killed by the parent-death signal, not left running under PID 1. */
    assert_true(server_status != -1);
    assert_true(WIFSIGNALED(server_status));
    assert_int_equal(WTERMSIG(server_status), SIGKILL);
    assert_nothing_left(&s);
}

static void an_aborted_test_takes_its_server_and_files_with_it(void **state)
{
    (void)state;
    started s = start_in_helper(END_ABORT);
    int helper_status = 0;
    int server_status = reap_all(&s, &helper_status);
    assert_true(WIFSIGNALED(helper_status) && WTERMSIG(helper_status) == SIGABRT);
    assert_true(server_status != -1 && WIFSIGNALED(server_status));
    assert_nothing_left(&s);
}

static void a_terminated_test_takes_its_server_and_files_with_it(void **state)
{
    (void)state;
    started s = start_in_helper(END_SIGTERM);
    int helper_status = 0;
    int server_status = reap_all(&s, &helper_status);
    assert_true(WIFSIGNALED(helper_status) && WTERMSIG(helper_status) == SIGTERM);
    assert_true(server_status != -1 && WIFSIGNALED(server_status));
    assert_nothing_left(&s);
}

/* A test run that returns without stopping its server: atexit stops it
 * and removes its files before the process is gone. */
static void an_exiting_test_stops_its_server_before_it_ends(void **state)
{
    (void)state;
    started s = start_in_helper(END_EXIT);
    int status;
    assert_int_equal(waitpid(s.helper, &status, 0), s.helper);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    /* Already done when the helper has exited: the helper reaped it. */
    assert_false(exists(s.cache_dir));
    assert_false(exists(s.log_path));
    errno = 0;
    assert_int_equal(kill(s.server, 0), -1);
    assert_int_equal(errno, ESRCH);
    int helper_status = status;
    assert_int_equal(reap_all(&s, &helper_status), -1); /* only the reaper was left */
    assert_nothing_left(&s);
}

int main(void)
{
    /* Orphans of the helpers become children of this process. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_sigkilled_test_takes_its_server_and_files_with_it),
        cmocka_unit_test(an_aborted_test_takes_its_server_and_files_with_it),
        cmocka_unit_test(a_terminated_test_takes_its_server_and_files_with_it),
        cmocka_unit_test(an_exiting_test_stops_its_server_before_it_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
