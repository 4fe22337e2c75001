/*
 * redis_process.c - spawn and stop a throwaway redis-server (see
 * redis_process.h). The child gets PR_SET_PDEATHSIG so a test that
 * crashes or is killed takes its Redis with it.
 */
#include "redis_process.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_process {
    pid_t pid;
    int port;
    int tls_port; /* 0: no TLS */
    char dir[512];
    char conf[600];
    char url[64];
    redisContext *sleeper; /* the connection that sent DEBUG SLEEP */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int redis_process_available(void)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/redis-server", d);
        if (access(exe, X_OK) == 0)
            return 1;
    }
    return 0;
}

int redis_process_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int pings(const redis_process *p)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", p->port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static int spawn(redis_process *p)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        char log[600];
        snprintf(log, sizeof log, "%s/stdout.log", p->dir);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(1);
        execlp("redis-server", "redis-server", p->conf, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    for (int i = 0; i < 250; i++) {
        if (pings(p))
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    return -1;
}

/* The last non-empty lines of redis-server's output, joined by " / ". */
static void last_lines(const redis_process *p, char *out, size_t cap)
{
    char path[600], buf[400];
    snprintf(path, sizeof path, "%s/stdout.log", p->dir);
    snprintf(out, cap, "no output");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, n > (long)sizeof buf - 1 ? n - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    size_t used = 0;
    out[0] = '\0';
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? " / " : "", l);
}

redis_process *redis_process_start(const char *extra_conf, char *why, size_t cap)
{
    if (!redis_process_available()) {
        snprintf(why, cap, "%s", REDIS_PROCESS_INSTALL_HINT);
        return NULL;
    }
    redis_process *p = calloc(1, sizeof *p);
    const char *base = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/semredis-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(p->dir)) {
        snprintf(why, cap, "mkdtemp %s: %s", p->dir, strerror(errno));
        free(p);
        return NULL;
    }
    p->port = redis_process_free_port();
    snprintf(p->conf, sizeof p->conf, "%s/redis.conf", p->dir);
    snprintf(p->url, sizeof p->url, "redis://127.0.0.1:%d", p->port);
    FILE *f = fopen(p->conf, "w");
    if (!f) {
        snprintf(why, cap, "create %s: %s", p->conf, strerror(errno));
        redis_process_stop(p);
        return NULL;
    }
    fprintf(f, "port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\ndaemonize no\n"
               "enable-debug-command yes\nlogfile \"\"\n%s\n",
            p->port, p->dir, extra_conf ? extra_conf : "");
    fclose(f);
    if (spawn(p) != 0) {
        char out[400];
        last_lines(p, out, sizeof out);
        snprintf(why, cap, "redis-server did not start on port %d: %s", p->port, out);
        redis_process_stop(p);
        return NULL;
    }
    return p;
}

redis_process *redis_process_start_tls(const char *dir, const char *cert, const char *ca,
                                       int auth_clients, int *no_tls, char *why, size_t cap)
{
    char conf[2400];
    int tls_port = redis_process_free_port();
    snprintf(conf, sizeof conf,
             "tls-port %d\ntls-cert-file %s/%s.pem\ntls-key-file %s/%s.key\n"
             "tls-ca-cert-file %s/%s.pem\ntls-auth-clients %s\n",
             tls_port, dir, cert, dir, cert, dir, ca, auth_clients ? "yes" : "no");
    *no_tls = 0;
    redis_process *p = redis_process_start(conf, why, cap);
    if (!p) {
        *no_tls = redis_process_available() && strstr(why, "tls-port") &&
                  strstr(why, "Bad directive");
        return NULL;
    }
    p->tls_port = tls_port;
    return p;
}

int redis_process_tls_port(const redis_process *p) { return p->tls_port; }

void redis_process_kill(redis_process *p)
{
    if (p->sleeper) {
        redisFree(p->sleeper);
        p->sleeper = NULL;
    }
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
}

int redis_process_restart(redis_process *p)
{
    redis_process_kill(p);
    return spawn(p);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void redis_process_stop(redis_process *p)
{
    if (!p)
        return;
    redis_process_kill(p);
    nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(p);
}

int redis_process_port(const redis_process *p) { return p->port; }
const char *redis_process_url(const redis_process *p) { return p->url; }

int redis_process_cmd(const redis_process *p, char *reply, size_t cap, const char *fmt, ...)
{
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", p->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (reply && cap) {
        reply[0] = '\0';
        if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                  r->type == REDIS_REPLY_ERROR))
            snprintf(reply, cap, "%.*s", (int)r->len, r->str);
        else if (r && r->type == REDIS_REPLY_INTEGER)
            snprintf(reply, cap, "%lld", (long long)r->integer);
        else if (r && r->type == REDIS_REPLY_ARRAY && r->elements &&
                 r->element[0]->type == REDIS_REPLY_STRING)
            snprintf(reply, cap, "%s", r->element[0]->str); /* the first of a list */
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

void redis_process_sleep(redis_process *p, double seconds)
{
    struct timeval tv = {.tv_sec = 5};
    if (p->sleeper)
        redisFree(p->sleeper);
    p->sleeper = redisConnectWithTimeout("127.0.0.1", p->port, tv);
    if (!p->sleeper || p->sleeper->err)
        return;
    redisAppendCommand(p->sleeper, "DEBUG SLEEP %.3f", seconds);
    int done = 0;
    while (!done && redisBufferWrite(p->sleeper, &done) == REDIS_OK)
        ;
}
