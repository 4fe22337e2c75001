/*
 * server_process.c - spawn, watch and stop `semantic serve`, and make sure
 * no server or temporary file outlives the test (design in
 * server_process.h).
 *
 * The registry below lists, for the current process, the servers still
 * running (process ids, which are also their process group ids) and the
 * temporary paths still on disk (cache folders, logs). Every change is
 * mirrored to the reaper as one line on its pipe ("P pid", "p pid",
 * "D path", "d path": add or drop), so the reaper always knows what to
 * clean up when the pipe closes. A process made by fork() from a test
 * starts with an empty registry and a reaper of its own.
 */
#include "server_process.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

#define MAX_SERVERS 64
#define MAX_PATHS 128
#define PATH_CAP 512

static struct {
    pid_t owner;                        /* the process this registry belongs to */
    int reaper_fd;                      /* write end of the reaper's pipe; -1: none */
    volatile sig_atomic_t pids[MAX_SERVERS]; /* running servers; 0: free slot */
    char paths[MAX_PATHS][PATH_CAP];    /* temporary files and folders; "": free */
} reg = {.reaper_fd = -1};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf path (a file or a folder). */
static void remove_tree(const char *path)
{
    if (path[0])
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether pid has ended (gone, or a zombie nobody reaped yet). */
static int process_ended(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return !paren || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

/* ---------------------------------------------------------------- the reaper */

/*
 * The reaper's whole life: read registry lines until end-of-file (the test
 * process is gone), then kill the servers left with their groups, wait for
 * them to end and remove the paths left. It ignores the terminal's signals
 * so a Ctrl-C that kills the test does not kill it before it has cleaned up.
 */
static void reaper_main(int rfd)
{
    static pid_t pids[MAX_SERVERS];
    static char paths[MAX_PATHS][PATH_CAP];
    static char line[PATH_CAP + 8];
    size_t len = 0;
    char c;
    for (;;) {
        ssize_t r = read(rfd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (c != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = c;
            continue;
        }
        line[len] = '\0';
        len = 0;
        if (line[0] == 'P' || line[0] == 'p') {
            pid_t pid = (pid_t)atoi(line + 2);
            for (int i = 0; i < MAX_SERVERS; i++) {
                if (line[0] == 'P' && pids[i] == 0) {
                    pids[i] = pid;
                    break;
                }
                if (line[0] == 'p' && pids[i] == pid)
                    pids[i] = 0;
            }
        } else if (line[0] == 'D' || line[0] == 'd') {
            for (int i = 0; i < MAX_PATHS; i++) {
                if (line[0] == 'D' && paths[i][0] == '\0') {
                    snprintf(paths[i], PATH_CAP, "%.*s", PATH_CAP - 1, line + 2);
                    break;
                }
                if (line[0] == 'd' && strcmp(paths[i], line + 2) == 0)
                    paths[i][0] = '\0';
            }
        }
    }
    for (int i = 0; i < MAX_SERVERS; i++)
        if (pids[i]) {
            kill(-pids[i], SIGKILL);
            kill(pids[i], SIGKILL);
        }
    for (int i = 0; i < MAX_SERVERS; i++)
        for (int t = 0; pids[i] && t < 1000 && !process_ended(pids[i]); t++)
            sleep_ms(10);
    for (int i = 0; i < MAX_PATHS; i++)
        remove_tree(paths[i]);
    _exit(0);
}

/* Forks the reaper; returns the write end of its pipe, or -1. */
static int reaper_start(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        prctl(PR_SET_NAME, "e2e-reaper");
        /* Nothing of the test's but the pipe: no write end of its own pipe,
         * no test output pipe that would keep a test runner waiting. */
        int null = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3; fd++)
            dup2(null, fd);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[0])
                close(fd);
        reaper_main(fds[0]);
    }
    close(fds[0]);
    return fds[1];
}

static void reaper_say(char op, const char *arg)
{
    if (reg.reaper_fd < 0)
        return;
    char line[PATH_CAP + 8];
    int n = snprintf(line, sizeof line, "%c %s\n", op, arg);
    if (n > 0 && (size_t)n < sizeof line && write(reg.reaper_fd, line, (size_t)n) < 0)
        fprintf(stderr, "server_process: the reaper is gone: %s\n", strerror(errno));
}

/* ---------------------------------------------------------------- the registry */

static void kill_all_groups(void)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        pid_t pid = reg.pids[i];
        if (pid) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
}

/* At exit (a test run that returns, a failure included): nothing left behind. */
static void at_exit(void)
{
    if (reg.owner != getpid())
        return; /* a forked child that never started a server */
    kill_all_groups();
    for (int i = 0; i < MAX_SERVERS; i++)
        if (reg.pids[i]) {
            waitpid(reg.pids[i], NULL, 0);
            reg.pids[i] = 0;
        }
    for (int i = 0; i < MAX_PATHS; i++) {
        remove_tree(reg.paths[i]);
        reg.paths[i][0] = '\0';
    }
    if (reg.reaper_fd >= 0)
        close(reg.reaper_fd); /* nothing left for it: it exits */
    reg.reaper_fd = -1;
}

/* SIGTERM, SIGINT, SIGABRT: kill the servers (async-signal-safe calls only),
 * then die of the signal as the process would have; the reaper removes the
 * files. */
static void on_fatal_signal(int sig)
{
    kill_all_groups();
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns */
}

static void registry_init(void)
{
    if (reg.owner == getpid())
        return;
    /* First use in this process: a fork of a test inherits its parent's
     * registry, which is not its own. */
    if (reg.reaper_fd >= 0)
        close(reg.reaper_fd);
    memset((void *)reg.pids, 0, sizeof reg.pids);
    memset(reg.paths, 0, sizeof reg.paths);
    reg.owner = getpid();
    reg.reaper_fd = reaper_start();
    if (reg.reaper_fd < 0)
        fprintf(stderr, "server_process: no reaper (%s): a SIGKILLed test would leave its "
                        "temporary files\n", strerror(errno));
    static int registered = 0;
    if (!registered) { /* atexit handlers survive fork: once is enough */
        atexit(at_exit);
        registered = 1;
    }
    static const int sigs[] = {SIGTERM, SIGINT, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO)) {
            struct sigaction sa = {.sa_handler = on_fatal_signal};
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[i], &sa, NULL);
        }
    }
}

static void pid_add(pid_t pid)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (reg.pids[i] == 0) {
            reg.pids[i] = pid;
            break;
        }
    char s[32];
    snprintf(s, sizeof s, "%d", (int)pid);
    reaper_say('P', s);
}

static void pid_drop(pid_t pid)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (reg.pids[i] == pid)
            reg.pids[i] = 0;
    char s[32];
    snprintf(s, sizeof s, "%d", (int)pid);
    reaper_say('p', s);
}

static void path_add(const char *path)
{
    for (int i = 0; i < MAX_PATHS; i++)
        if (reg.paths[i][0] == '\0') {
            snprintf(reg.paths[i], PATH_CAP, "%s", path);
            break;
        }
    reaper_say('D', path);
}

/* Forgets path (remove: deletes it first). */
static void path_drop(const char *path, int remove)
{
    if (!path[0])
        return;
    if (remove)
        remove_tree(path);
    for (int i = 0; i < MAX_PATHS; i++)
        if (strcmp(reg.paths[i], path) == 0)
            reg.paths[i][0] = '\0';
    reaper_say('d', path);
}

/* ---------------------------------------------------------------- the server */

char *server_log(const server_proc *s)
{
    FILE *f = fopen(s->log_path, "rb");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

void server_discard_log(server_proc *s)
{
    path_drop(s->log_path, 1);
    s->log_path[0] = '\0';
}

int server_start(server_proc *s, const char *bin, const char *model, const char *const *args,
                 const char *const *env, int wait_ready)
{
    memset(s, 0, sizeof *s);
    registry_init();
    static const char *tmp_default = "/tmp";
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : tmp_default;
    snprintf(s->log_path, sizeof s->log_path, "%s/semantic-e2e-%d-XXXXXX", tmp, (int)getpid());
    int lfd = mkstemp(s->log_path);
    if (lfd < 0)
        return -1;
    path_add(s->log_path);
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "serve";
    if (model) {
        argv[n++] = "-m";
        argv[n++] = model;
    }
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = "0";
    int own_dir = 1;
    for (int i = 0; args && args[i] && n < 60; i++) {
        own_dir &= strcmp(args[i], "--cache-dir") != 0;
        argv[n++] = args[i];
    }
    if (own_dir) { /* agent memory of this server only, never the user's */
        snprintf(s->cache_dir, sizeof s->cache_dir, "%s/semantic-e2e-cache-XXXXXX", tmp);
        if (!mkdtemp(s->cache_dir)) {
            close(lfd);
            s->cache_dir[0] = '\0';
            return -1;
        }
        path_add(s->cache_dir);
        argv[n++] = "--cache-dir";
        argv[n++] = s->cache_dir;
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        /* Its own group, so it and anything it starts are killed together;
         * killed by the kernel when the thread that started it dies. If that
         * happened before prctl, getppid() is no longer the parent. */
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(lfd, 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid); /* as the child does: whichever runs first */
    close(lfd);
    s->pid = pid;
    pid_add(pid);
    /* The port, from the "listening on http://127.0.0.1:PORT" line. */
    for (int tries = 0; tries < 3000 && !s->port; tries++) {
        char *log = server_log(s);
        const char *at = strstr(log, "listening on http://127.0.0.1:");
        if (at)
            s->port = (uint16_t)atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        int status;
        if (!s->port && waitpid(pid, &status, WNOHANG) == pid) {
            pid_drop(pid);
            s->pid = 0;
            break;
        }
        if (!s->port)
            sleep_ms(10);
    }
    if (!s->port)
        goto fail;
    if (!wait_ready)
        return 0;
    for (int tries = 0; tries < 3000; tries++) {
        http_response r;
        int ok = hc_call(s->port, "GET", "/health/ready", NULL, NULL, &r) == 0 && r.status == 200;
        hc_free(&r);
        if (ok)
            return 0;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) { /* it gave up: no use waiting */
            pid_drop(s->pid);
            s->pid = 0;
            break;
        }
        sleep_ms(10);
    }
fail : {
    char *log = server_log(s);
    fprintf(stderr, "semantic serve did not start; its log:\n%s\n", log);
    free(log);
    if (s->pid)
        server_stop(s, SIGKILL, 5000);
    path_drop(s->cache_dir, 1);
    s->cache_dir[0] = '\0';
    server_discard_log(s);
    return -1;
}
}

int server_stop(server_proc *s, int sig, int timeout_ms)
{
    int rc = server_stop_keep(s, sig, timeout_ms);
    path_drop(s->cache_dir, 1);
    s->cache_dir[0] = '\0';
    return rc;
}

int server_stop_keep(server_proc *s, int sig, int timeout_ms)
{
    if (!s->pid)
        return -1;
    pid_t pid = s->pid;
    if (sig)
        kill(pid, sig);
    int status = 0, rc = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        sleep_ms(10);
    }
    if (rc < 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    pid_drop(pid);
    s->pid = 0;
    return rc;
}

/* ---------------------------------------------------------------- other programs */

int server_spawn(server_proc *s, const char *const *argv)
{
    memset(s, 0, sizeof *s);
    registry_init();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(s->log_path, sizeof s->log_path, "%s/semantic-e2e-%d-XXXXXX", tmp, (int)getpid());
    int lfd = mkstemp(s->log_path);
    if (lfd < 0)
        return -1;
    path_add(s->log_path);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        server_discard_log(s);
        return -1;
    }
    if (pid == 0) { /* as in server_start */
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(lfd, 1);
        dup2(lfd, 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    close(lfd);
    s->pid = pid;
    pid_add(pid);
    return 0;
}

int server_exited(server_proc *s)
{
    int status;
    if (!s->pid)
        return 1;
    if (waitpid(s->pid, &status, WNOHANG) != s->pid)
        return 0;
    pid_drop(s->pid);
    s->pid = 0;
    return 1;
}

int server_temp_dir(const char *name, char *out, size_t cap)
{
    registry_init();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int n = snprintf(out, cap, "%s/semantic-e2e-%s-XXXXXX", tmp, name);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= PATH_CAP || !mkdtemp(out))
        return -1;
    path_add(out);
    return 0;
}

void server_temp_dir_remove(const char *path) { path_drop(path, 1); }

uint16_t server_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}
