/*
 * server_process.c - spawn, watch and stop `semantic serve`.
 */
#include "server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

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
    if (s->log_path[0])
        unlink(s->log_path);
    s->log_path[0] = '\0';
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int server_start(server_proc *s, const char *bin, const char *model, const char *const *args,
                 const char *const *env, int wait_ready)
{
    memset(s, 0, sizeof *s);
    static const char *tmp_default = "/tmp";
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : tmp_default;
    snprintf(s->log_path, sizeof s->log_path, "%s/semantic-e2e-%d-XXXXXX", tmp, (int)getpid());
    int lfd = mkstemp(s->log_path);
    if (lfd < 0)
        return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "serve";
    argv[n++] = "-m";
    argv[n++] = model;
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
            return -1;
        }
        argv[n++] = "--cache-dir";
        argv[n++] = s->cache_dir;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        dup2(lfd, 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    s->pid = pid;
    /* The port, from the "listening on http://127.0.0.1:PORT" line. */
    for (int tries = 0; tries < 3000 && !s->port; tries++) {
        char *log = server_log(s);
        const char *at = strstr(log, "listening on http://127.0.0.1:");
        if (at)
            s->port = (uint16_t)atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        int status;
        if (!s->port && waitpid(pid, &status, WNOHANG) == pid) {
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
        sleep_ms(10);
    }
fail : {
    char *log = server_log(s);
    fprintf(stderr, "semantic serve did not start; its log:\n%s\n", log);
    free(log);
    if (s->pid)
        server_stop(s, SIGKILL, 5000);
    return -1;
}
}

static void remove_cache_dir(server_proc *s)
{
    if (!s->cache_dir[0])
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->cache_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", s->cache_dir);
    s->cache_dir[0] = '\0';
}

int server_stop(server_proc *s, int sig, int timeout_ms)
{
    int rc = server_stop_keep(s, sig, timeout_ms);
    remove_cache_dir(s);
    return rc;
}

int server_stop_keep(server_proc *s, int sig, int timeout_ms)
{
    if (!s->pid)
        return -1;
    kill(s->pid, sig);
    int status = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}
